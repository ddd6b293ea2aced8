//! Glue between tensors and `kernels::cuda`: the device of a tensor, its data as a contiguous
//! device slice, wrapping kernel results as tensors, error conversion. Each op's CUDA branch is
//! in its own file next to the CPU one.

use crate::storage::{Element, Storage};
use crate::{Device, EngineError, Result, Tensor};
use kernels::cuda::{CudaBuffer, CudaDevice, CudaError, CudaSlice};
use std::ops::Deref;
use std::sync::Arc;

/// The GPU `t` lives on, or `None` for a CPU tensor.
pub(crate) fn device_of(op: &'static str, t: &Tensor) -> Result<Option<Arc<CudaDevice>>> {
    match t.device() {
        Device::Cpu => Ok(None),
        Device::Cuda(n) => kernels::cuda::device(n)
            .map(Some)
            .map_err(|e| EngineError::from_cuda(op, n, e)),
    }
}

/// `map_err` adapter: a CUDA error of `op` on `dev` as an engine error.
pub(crate) fn err(op: &'static str, dev: &CudaDevice) -> impl Fn(CudaError) -> EngineError {
    let n = dev.index();
    move |e| EngineError::from_cuda(op, n, e)
}

/// A contiguous device slice: the tensor's own buffer, or a gathered copy of a strided view.
pub(crate) enum DevData<'a, T> {
    Borrowed(&'a CudaSlice<T>),
    Owned(CudaSlice<T>),
}

impl<T> Deref for DevData<'_, T> {
    type Target = CudaSlice<T>;
    fn deref(&self) -> &CudaSlice<T> {
        match self {
            DevData::Borrowed(s) => s,
            DevData::Owned(s) => s,
        }
    }
}

/// The whole device slice behind `t` (any view of it): for strided kernels.
pub(crate) fn storage_slice<'a, T: Element>(
    op: &'static str,
    t: &'a Tensor,
) -> Result<&'a CudaSlice<T>> {
    T::cuda_slice(&t.0.storage).ok_or(EngineError::DTypeMismatch {
        op,
        lhs: t.dtype(),
        rhs: T::DTYPE,
    })
}

/// `t`'s elements in row-major order on its GPU: borrowed when contiguous, gathered otherwise.
pub(crate) fn contiguous<'a, T: Element>(
    op: &'static str,
    dev: &CudaDevice,
    t: &'a Tensor,
) -> Result<DevData<'a, T>> {
    let s = storage_slice::<T>(op, t)?;
    if t.is_contiguous() {
        return Ok(DevData::Borrowed(s));
    }
    kernels::cuda::elementwise::copy_strided(dev, s, t.shape(), t.strides(), t.offset())
        .map(DevData::Owned)
        .map_err(err(op, dev))
}

/// A new contiguous tensor over a kernel's result (`shape`'s element count of it).
pub(crate) fn wrap<T: Element>(s: CudaSlice<T>, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_storage(Storage::Cuda(CudaBuffer::from_slice(s, n)), shape)
}
