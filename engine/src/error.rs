//! The engine's error type: every variant names the op and the shapes involved.

use crate::{DType, Device};

/// Errors from tensor construction, ops and autodiff. Returned, never panicked, on any path a
/// library user can reach with bad arguments.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EngineError {
    #[error("{op}: shapes {lhs:?} and {rhs:?} are incompatible{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        detail: String,
    },
    #[error("{op}: {msg} (shape {shape:?})")]
    InvalidArgument {
        op: &'static str,
        msg: String,
        shape: Vec<usize>,
    },
    #[error("{op}: empty tensor of shape {shape:?}")]
    Empty { op: &'static str, shape: Vec<usize> },
    #[error("{op}: {len} values do not fill shape {shape:?} ({expected} elements)")]
    LengthMismatch {
        op: &'static str,
        len: usize,
        shape: Vec<usize>,
        expected: usize,
    },
    #[error("{op}: dtypes {lhs:?} and {rhs:?} differ")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    #[error("{op}: dtype {dtype:?} is not supported")]
    UnsupportedDType { op: &'static str, dtype: DType },
    #[error("{op}: tensors on different devices ({lhs} and {rhs})")]
    DeviceMismatch {
        op: &'static str,
        lhs: Device,
        rhs: Device,
    },
    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable { device: Device, reason: String },
    /// A GPU allocation did not fit: `bytes` is the size of the allocation that failed.
    #[error("{op} on {device}: out of GPU memory allocating {bytes} bytes ({detail})")]
    OutOfMemory {
        op: &'static str,
        device: Device,
        bytes: usize,
        detail: String,
    },
    /// A CUDA driver, cuBLAS or NVRTC failure (a launch, a copy, a kernel fault), or host access
    /// to a CUDA tensor where only an explicit copy is allowed.
    #[error("{op} on {device}: {msg}")]
    Cuda {
        op: &'static str,
        device: Device,
        msg: String,
    },
    #[error("backward: the loss must be a scalar (one element), got shape {shape:?}")]
    NotScalar { shape: Vec<usize> },
    #[error(
        "backward: this graph was already used by a backward pass and freed; run the forward again"
    )]
    GraphFreed,
}

impl EngineError {
    /// The engine's form of a CUDA backend error from `op` on GPU `device`: no driver, device or
    /// library → `DeviceUnavailable`; out of memory → `OutOfMemory`; anything else → `Cuda`.
    pub(crate) fn from_cuda(op: &'static str, device: usize, e: kernels::cuda::CudaError) -> Self {
        use kernels::cuda::{human_bytes, CudaError as C};
        let dev = Device::Cuda(device);
        match e {
            C::NoDriver(_) | C::NoDevice { .. } | C::MissingLibrary { .. } => {
                EngineError::DeviceUnavailable {
                    device: dev,
                    reason: e.to_string(),
                }
            }
            C::OutOfMemory {
                device,
                bytes,
                free,
                total,
            } => EngineError::OutOfMemory {
                op,
                device: Device::Cuda(device),
                bytes,
                detail: format!(
                    "{}; {} free of {}",
                    human_bytes(bytes),
                    human_bytes(free),
                    human_bytes(total)
                ),
            },
            other => EngineError::Cuda {
                op,
                device: dev,
                msg: other.to_string(),
            },
        }
    }
}

/// Shorthand for `Result<T, EngineError>`.
pub type Result<T> = std::result::Result<T, EngineError>;
