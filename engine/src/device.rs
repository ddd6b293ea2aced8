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

const DEVICE_VALUES: &str = "cpu, cuda, cuda:N or auto";

impl std::str::FromStr for Device {
    type Err = kernels::ParseOptionError;
    /// `cpu`, `cuda` (= `cuda:0`) or `cuda:N` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            d => match d.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => Err(kernels::ParseOptionError::new(
                    "device",
                    s,
                    "cpu, cuda or cuda:N",
                )),
            },
        }
    }
}

/// A device as a user asks for it: a given one, or `auto` (the first GPU if there is one, else
/// the CPU). [`DeviceChoice::resolve`] checks it against the GPUs present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceChoice {
    /// The first usable GPU, else the CPU.
    Auto,
    /// This device.
    Exact(Device),
}

impl Default for DeviceChoice {
    /// The CPU.
    fn default() -> Self {
        DeviceChoice::Exact(Device::Cpu)
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = kernels::ParseOptionError;
    /// `cpu`, `cuda`, `cuda:N` or `auto` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(DeviceChoice::Auto);
        }
        s.parse::<Device>()
            .map(DeviceChoice::Exact)
            .map_err(|_| kernels::ParseOptionError::new("device", s, DEVICE_VALUES))
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Exact(d) => d.fmt(f),
        }
    }
}

/// Why a [`DeviceChoice`] cannot be used on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChoiceError {
    /// A GPU was asked for and none is usable; the reason (driver, libraries).
    NoGpu(String),
    /// `cuda:index` with only `present` GPUs.
    NoSuchGpu { index: usize, present: usize },
}

impl DeviceChoice {
    /// The engine device, checked against the GPUs present; the `bool` is true when `auto`
    /// fell back to the CPU.
    pub fn resolve(self) -> Result<(Device, bool), DeviceChoiceError> {
        let index = match self {
            DeviceChoice::Exact(Device::Cpu) => return Ok((Device::Cpu, false)),
            DeviceChoice::Auto => {
                return Ok(match Device::cuda_devices().first() {
                    Some(&d) => (d, false),
                    None => (Device::Cpu, true),
                })
            }
            DeviceChoice::Exact(Device::Cuda(n)) => n,
        };
        let present = Device::cuda_devices().len();
        if present == 0 {
            let reason = Device::cuda_unavailable_reason().unwrap_or_default();
            return Err(DeviceChoiceError::NoGpu(reason));
        }
        if index >= present {
            return Err(DeviceChoiceError::NoSuchGpu { index, present });
        }
        Ok((Device::Cuda(index), false))
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
