//! Where a tensor lives and what its elements are.

use std::fmt;

/// The device a tensor's storage lives on. `Cuda(n)` is the n-th NVIDIA GPU (cudarc backend,
/// see docs/CUDA.md; `Tensor::to_device` returns `DeviceUnavailable` where there is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Element type. `F32` is the working precision, `F64` serves gradient checks and references;
/// `F16`/`BF16` (crate `half`) are reserved for reduced-precision storage and not yet computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::F16 | DType::BF16 => 2,
        }
    }
}
