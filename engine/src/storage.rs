//! Tensor storage: a flat buffer on one device, shared between views through an `Arc`.

use crate::{DType, Device, EngineError, Result};
use kernels::cuda::{CudaBuffer, CudaSlice};
use std::sync::atomic::{AtomicUsize, Ordering};

static LIVE_BUFFERS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Number of storage buffers alive in this process (all devices). Used to check that training
/// loops do not leak: it must stay flat across iterations.
pub fn live_buffers() -> usize {
    LIVE_BUFFERS.load(Ordering::Relaxed)
}

/// Bytes held by live storage buffers in this process.
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// The most bytes live storage buffers held at once since the process started or since the
/// last [`reset_peak_live_bytes`] (the tensors' share of peak memory; work buffers and weight
/// transforms are not counted).
pub fn peak_live_bytes() -> usize {
    PEAK_BYTES.load(Ordering::Relaxed)
}

/// Start a new [`peak_live_bytes`] window at the bytes live now.
pub fn reset_peak_live_bytes() {
    PEAK_BYTES.store(live_bytes(), Ordering::Relaxed);
}

/// Flat element buffer. Immutable once wrapped in a tensor (ops allocate their outputs), but
/// for the tape's gradient sums into a buffer nothing else holds (`Tensor::add_grad`).
#[derive(Debug)]
pub enum Storage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<half::f16>),
    BF16(Vec<half::bf16>),
    /// f32 or f64 elements in the memory of GPU `cuda:N` (`N = buffer.device()`), freed when the
    /// last tensor viewing it is dropped. Host code never reads it directly: only
    /// `Tensor::to_device`/`to_vec*`/`item` copy it to the host.
    Cuda(CudaBuffer),
}

impl Storage {
    pub(crate) fn new(s: Storage) -> Storage {
        LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
        let bytes = s.len() * s.dtype().size_bytes();
        let now = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
        s
    }
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::Cuda(b) if b.is_f64() => DType::F64,
            Storage::Cuda(_) => DType::F32,
        }
    }
    pub fn device(&self) -> Device {
        match self {
            Storage::Cuda(b) => Device::Cuda(b.device()),
            _ => Device::Cpu,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::F16(v) => v.len(),
            Storage::BF16(v) => v.len(),
            Storage::Cuda(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.len() * self.dtype().size_bytes(), Ordering::Relaxed);
    }
}

/// A float element type the engine computes on (f32, f64): how to view and build storage, on
/// the host and on a GPU.
pub trait Element: kernels::cuda::CudaElem {
    const DTYPE: DType;
    fn slice(s: &Storage) -> Option<&[Self]>;
    fn into_storage(v: Vec<Self>) -> Storage;
    /// The device slice of CUDA storage of this element type.
    fn cuda_slice(s: &Storage) -> Option<&CudaSlice<Self>> {
        match s {
            Storage::Cuda(b) => b.slice::<Self>(),
            _ => None,
        }
    }
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn slice(s: &Storage) -> Option<&[f32]> {
        match s {
            Storage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn into_storage(v: Vec<f32>) -> Storage {
        Storage::F32(v)
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn slice(s: &Storage) -> Option<&[f64]> {
        match s {
            Storage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn into_storage(v: Vec<f64>) -> Storage {
        Storage::F64(v)
    }
}

impl Device {
    /// Every usable CUDA device, `Cuda(0) .. Cuda(n−1)`: empty when there is no driver, no GPU,
    /// no libnvrtc or no libcublas (see [`Device::cuda_unavailable_reason`]).
    pub fn cuda_devices() -> Vec<Device> {
        if !kernels::cuda::is_available() {
            return Vec::new();
        }
        (0..kernels::cuda::device_count().unwrap_or(0))
            .map(Device::Cuda)
            .collect()
    }

    /// Why no CUDA device can be used here, or `None` when at least one can.
    pub fn cuda_unavailable_reason() -> Option<String> {
        kernels::cuda::unavailable_reason()
    }

    /// Name, compute capability and memory of a CUDA device (read from the driver; creates no
    /// context). Errors: `DeviceUnavailable` for the CPU, a missing driver or index.
    pub fn cuda_info(self) -> Result<kernels::cuda::DeviceInfo> {
        match self {
            Device::Cpu => Err(EngineError::DeviceUnavailable {
                device: self,
                reason: "the CPU is not a CUDA device".into(),
            }),
            Device::Cuda(n) => {
                kernels::cuda::device_info(n).map_err(|e| EngineError::from_cuda("cuda_info", n, e))
            }
        }
    }
}

/// Run `$body` with `$T` bound to the Rust type of `$dtype` (f32 or f64); other dtypes return
/// `EngineError::UnsupportedDType` from the enclosing function.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_float {
    ($op:expr, $dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            other => {
                return Err($crate::EngineError::UnsupportedDType {
                    op: $op,
                    dtype: other,
                }
                .into())
            }
        }
    };
}
