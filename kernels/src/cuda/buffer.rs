//! `CudaBuffer`: one device allocation of f32 or f64 elements.

use super::CudaElem;
use cudarc::driver::CudaSlice;

#[derive(Debug)]
pub(crate) enum CudaData {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
}

/// A flat buffer of `len` f32 or f64 elements in the memory of one GPU, freed (stream-ordered)
/// when dropped. Created by [`super::CudaDevice::htod`] or returned by the kernel wrappers.
#[derive(Debug)]
pub struct CudaBuffer {
    pub(crate) len: usize,
    pub(crate) data: CudaData,
}

impl CudaBuffer {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Index of the GPU holding it (`cuda:N`).
    pub fn device(&self) -> usize {
        match &self.data {
            CudaData::F32(s) => s.ordinal(),
            CudaData::F64(s) => s.ordinal(),
        }
    }
    /// Size of one element in bytes (4 or 8).
    pub fn elem_size(&self) -> usize {
        match &self.data {
            CudaData::F32(_) => 4,
            CudaData::F64(_) => 8,
        }
    }
    /// True for f64 elements, false for f32.
    pub fn is_f64(&self) -> bool {
        matches!(self.data, CudaData::F64(_))
    }
    /// The typed slice (`None` when the buffer holds the other type).
    pub fn slice<T: CudaElem>(&self) -> Option<&CudaSlice<T>> {
        T::buffer_slice(self)
    }
    /// The typed slice, mutably (for in-place kernels such as [`super::adam_step`]).
    pub fn slice_mut<T: CudaElem>(&mut self) -> Option<&mut CudaSlice<T>> {
        T::buffer_slice_mut(self)
    }
    /// Wrap a slice of which the first `len` elements are the buffer.
    pub fn from_slice<T: CudaElem>(s: CudaSlice<T>, len: usize) -> CudaBuffer {
        T::into_buffer(s, len)
    }
}
