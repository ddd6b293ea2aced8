//! CUDA kernels through cudarc (driver API, NVRTC, cuBLAS), loaded dynamically: this module
//! builds everywhere, and on a machine without a driver, a GPU, libnvrtc or libcublas every entry
//! point returns a [`CudaError`] (never a panic or a hang).
//!
//! Organisation:
//! - [`device`]: one [`CudaDevice`] per GPU, created on first use and kept for the process: its
//!   context, one stream (all work on a device is ordered on it), a lazily created cuBLAS handle,
//!   and the loaded modules / kernel functions.
//! - [`nvrtc`]: the `.cu` sources (`kernels/src/cuda/kernels/`, embedded with `include_str!`),
//!   compiled once per process and architecture with NVRTC, for the device's compute capability.
//! - [`CudaBuffer`]: a device allocation of f32 or f64 elements.
//! - launch wrappers, one file per op family: [`gemm`] (cuBLAS, row-major by operand swap),
//!   [`conv2d`] (im2col/col2im + GEMM), [`pool2d`], [`elementwise`], [`reduce`] (deterministic
//!   two-pass sums), [`adam`] (fused update).
//!
//! Every wrapper takes the [`CudaDevice`] to run on and device buffers, allocates its outputs
//! and returns them; nothing here copies between host and device except [`CudaDevice::htod`] and
//! [`CudaDevice::dtoh`].

pub mod adam;
mod buffer;
pub mod conv2d;
pub mod device;
pub mod elementwise;
pub mod gemm;
pub mod grouped_conv;
pub mod index;
mod launch;
pub mod norm;
pub mod nvrtc;
pub mod pool2d;
pub mod reduce;
pub mod sort;
pub mod spatial;

pub use adam::{adam_step, adam_update, AdamStep};
pub use buffer::CudaBuffer;
/// The device slice type of the wrappers' arguments and results (re-exported so that callers
/// need no direct cudarc dependency).
pub use cudarc::driver::CudaSlice;
pub use device::{device, CudaDevice};

use cudarc::cublas::{CudaBlas, Gemm, StridedBatchedConfig};
use cudarc::driver::{CudaView, CudaViewMut, DeviceRepr, ValidAsZeroBits};
use std::sync::OnceLock;

/// Errors of the CUDA backend. Messages name the device, the op and, for memory, the bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CudaError {
    /// No usable NVIDIA driver (libcuda not loadable, or it failed to initialise).
    #[error("no CUDA driver: {0}")]
    NoDriver(String),
    /// A CUDA library other than the driver is missing (libnvrtc, libcublas).
    #[error("{lib} not found: {hint}")]
    MissingLibrary {
        lib: &'static str,
        hint: &'static str,
    },
    /// The driver works but there is no device with this index.
    #[error("no CUDA device cuda:{index} ({count} device(s) present)")]
    NoDevice { index: usize, count: usize },
    /// An allocation did not fit in the device's memory.
    #[error(
        "cuda:{device}: out of GPU memory allocating {bytes} bytes ({}); {} free of {} on the device",
        human_bytes(*.bytes),
        human_bytes(*.free),
        human_bytes(*.total)
    )]
    OutOfMemory {
        device: usize,
        bytes: usize,
        free: usize,
        total: usize,
    },
    /// A driver call failed (a launch, a copy, an asynchronous kernel fault reported later).
    #[error("cuda:{device}: {op}: {msg}")]
    Driver {
        device: usize,
        op: &'static str,
        msg: String,
    },
    /// cuBLAS returned an error.
    #[error("cuda:{device}: cuBLAS {op}: {msg}")]
    Cublas {
        device: usize,
        op: &'static str,
        msg: String,
    },
    /// NVRTC rejected a kernel source (a bug in a `.cu` file, or an architecture it lacks).
    #[error("NVRTC could not compile {module}.cu for {arch}: {log}")]
    Compile {
        module: &'static str,
        arch: String,
        log: String,
    },
    /// Arguments the kernels cannot take (sizes over cuBLAS's 32-bit limits, short buffers).
    #[error("{op}: {msg}")]
    InvalidArgument { op: &'static str, msg: String },
}

/// `1234567` → `"1.2 MB"`: sizes in error messages.
pub fn human_bytes(b: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// How to get libnvrtc, for error messages.
pub const NVRTC_HINT: &str = "install it with `python3 -m pip install nvidia-cuda-nvrtc` and add \
    the directory holding libnvrtc.so.* (site-packages/nvidia/cu13/lib) to LD_LIBRARY_PATH, or \
    install the CUDA toolkit";
/// How to get libcublas, for error messages.
pub const CUBLAS_HINT: &str = "install it with `python3 -m pip install nvidia-cublas` and add the \
    directory holding libcublas.so.* (site-packages/nvidia/cu13/lib) to LD_LIBRARY_PATH, or \
    install the CUDA toolkit";

/// Whether libcuda (the driver library) can be loaded. Checked once; never panics.
pub fn driver_present() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to dlopen the candidate library names and closes them again.
    *P.get_or_init(|| unsafe { cudarc::driver::sys::is_culib_present() })
}

/// Whether libnvrtc can be loaded (needed to build the kernels). Checked once; never panics.
pub fn nvrtc_present() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    // SAFETY: as in `driver_present`.
    *P.get_or_init(|| unsafe { cudarc::nvrtc::sys::is_culib_present() })
}

/// Whether libcublas can be loaded (needed for matmul and conv2d). Checked once; never panics.
pub fn cublas_present() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    // SAFETY: as in `driver_present`.
    *P.get_or_init(|| unsafe { cudarc::cublas::sys::is_culib_present() })
}

/// Run a cudarc call that may panic (a symbol missing from an old driver) as a `Result`.
pub(crate) fn no_panic<R>(
    what: &'static str,
    f: impl FnOnce() -> Result<R, CudaError>,
) -> Result<R, CudaError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(CudaError::NoDriver(format!("{what}: {msg}")))
    })
}

/// Number of CUDA devices. `Err(NoDriver)` without a driver; `Ok(0)` when the driver reports
/// none. The answer is computed once per process.
pub fn device_count() -> Result<usize, CudaError> {
    static COUNT: OnceLock<Result<usize, CudaError>> = OnceLock::new();
    COUNT
        .get_or_init(|| {
            if !driver_present() {
                return Err(CudaError::NoDriver(
                    "libcuda.so (the NVIDIA driver library) could not be loaded".into(),
                ));
            }
            no_panic("cuInit", || {
                use cudarc::driver::sys::CUresult;
                match cudarc::driver::result::init() {
                    Ok(()) => {}
                    Err(e) if e.0 == CUresult::CUDA_ERROR_NO_DEVICE => return Ok(0),
                    Err(e) => return Err(CudaError::NoDriver(format!("cuInit failed: {e}"))),
                }
                cudarc::driver::result::device::get_count()
                    .map(|n| n.max(0) as usize)
                    .map_err(|e| CudaError::NoDriver(format!("cuDeviceGetCount failed: {e}")))
            })
        })
        .clone()
}

/// Why the backend cannot run here (no driver, no device, no NVRTC, no cuBLAS), or `None` when
/// at least one device is usable.
pub fn unavailable_reason() -> Option<String> {
    match device_count() {
        Err(e) => return Some(e.to_string()),
        Ok(0) => return Some("the driver reports no CUDA device".into()),
        Ok(_) => {}
    }
    if !nvrtc_present() {
        return Some(format!("libnvrtc not found: {NVRTC_HINT}"));
    }
    if !cublas_present() {
        return Some(format!("libcublas not found: {CUBLAS_HINT}"));
    }
    None
}

/// True when a driver, at least one device, libnvrtc and libcublas are all present.
pub fn is_available() -> bool {
    unavailable_reason().is_none()
}

/// What `nst-cli devices` lists about a GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub index: usize,
    pub name: String,
    /// (major, minor), e.g. (9, 0) for an H100.
    pub compute_capability: (u32, u32),
    pub total_memory_bytes: usize,
}

/// Name, compute capability and memory of device `index`, read from the driver without
/// creating a context. Errors: `NoDriver`, `NoDevice`, `Driver`.
pub fn device_info(index: usize) -> Result<DeviceInfo, CudaError> {
    let count = device_count()?;
    if index >= count {
        return Err(CudaError::NoDevice { index, count });
    }
    no_panic("device_info", || {
        use cudarc::driver::result::device as d;
        use cudarc::driver::sys::CUdevice_attribute as A;
        let err = |op: &'static str| {
            move |e: cudarc::driver::DriverError| CudaError::Driver {
                device: index,
                op,
                msg: e.to_string(),
            }
        };
        let dev = d::get(index as i32).map_err(err("cuDeviceGet"))?;
        let name = d::get_name(dev).map_err(err("cuDeviceGetName"))?;
        // SAFETY: `dev` is a valid device handle from cuDeviceGet.
        let (major, minor, total) = unsafe {
            (
                d::get_attribute(dev, A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                    .map_err(err("cuDeviceGetAttribute"))?,
                d::get_attribute(dev, A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
                    .map_err(err("cuDeviceGetAttribute"))?,
                d::total_mem(dev).map_err(err("cuDeviceTotalMem"))?,
            )
        };
        Ok(DeviceInfo {
            index,
            name,
            compute_capability: (major.max(0) as u32, minor.max(0) as u32),
            total_memory_bytes: total,
        })
    })
}

/// An element type the CUDA kernels run on (f32, f64): its kernel-name suffix, how it sits in a
/// [`CudaBuffer`], and its cuBLAS GEMM.
pub trait CudaElem: crate::Float + DeviceRepr + ValidAsZeroBits + Default + Clone + Unpin {
    /// Suffix of the `extern "C"` kernel instantiations: `"f32"` or `"f64"`.
    const SUFFIX: &'static str;
    /// The typed device slice of `b`, when `b` holds this type.
    fn buffer_slice(b: &CudaBuffer) -> Option<&CudaSlice<Self>>;
    /// The typed device slice of `b`, mutably, when `b` holds this type.
    fn buffer_slice_mut(b: &mut CudaBuffer) -> Option<&mut CudaSlice<Self>>;
    /// Wrap a device slice holding `len` logical elements (the slice may be longer: an empty
    /// buffer is backed by one element, since CUDA cannot allocate zero bytes).
    fn into_buffer(s: CudaSlice<Self>, len: usize) -> CudaBuffer;
    /// `cublas<t>gemmStridedBatched`.
    ///
    /// # Safety
    /// The configuration must describe matrices inside the three views.
    unsafe fn gemm_strided_batched(
        blas: &CudaBlas,
        cfg: StridedBatchedConfig<Self>,
        a: &CudaView<'_, Self>,
        b: &CudaView<'_, Self>,
        c: &mut CudaViewMut<'_, Self>,
    ) -> Result<(), cudarc::cublas::result::CublasError>;
}

macro_rules! impl_cuda_elem {
    ($t:ty, $suffix:literal, $variant:ident) => {
        impl CudaElem for $t {
            const SUFFIX: &'static str = $suffix;
            fn buffer_slice(b: &CudaBuffer) -> Option<&CudaSlice<$t>> {
                match &b.data {
                    buffer::CudaData::$variant(s) => Some(s),
                    _ => None,
                }
            }
            fn buffer_slice_mut(b: &mut CudaBuffer) -> Option<&mut CudaSlice<$t>> {
                match &mut b.data {
                    buffer::CudaData::$variant(s) => Some(s),
                    _ => None,
                }
            }
            fn into_buffer(s: CudaSlice<$t>, len: usize) -> CudaBuffer {
                debug_assert!(s.len() >= len);
                CudaBuffer {
                    len,
                    data: buffer::CudaData::$variant(s),
                }
            }
            unsafe fn gemm_strided_batched(
                blas: &CudaBlas,
                cfg: StridedBatchedConfig<$t>,
                a: &CudaView<'_, $t>,
                b: &CudaView<'_, $t>,
                c: &mut CudaViewMut<'_, $t>,
            ) -> Result<(), cudarc::cublas::result::CublasError> {
                <CudaBlas as Gemm<$t>>::gemm_strided_batched(blas, cfg, a, b, c)
            }
        }
    };
}

impl_cuda_elem!(f32, "f32", F32);
impl_cuda_elem!(f64, "f64", F64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cuda_is_an_error_not_a_panic() {
        // On machines with a GPU this checks the positive path instead.
        match device_count() {
            Ok(n) => {
                for i in 0..n {
                    let info = device_info(i).unwrap();
                    assert!(info.total_memory_bytes > 0 && !info.name.is_empty());
                }
                assert!(matches!(
                    device_info(n),
                    Err(CudaError::NoDevice { index, count }) if index == n && count == n
                ));
            }
            Err(e) => {
                assert!(matches!(e, CudaError::NoDriver(_)));
                assert!(!is_available());
                assert!(unavailable_reason().unwrap().contains("driver"));
                assert!(device(0).is_err());
                assert!(device_info(0).is_err());
            }
        }
    }

    #[test]
    fn oom_message_names_the_bytes() {
        let e = CudaError::OutOfMemory {
            device: 0,
            bytes: 3_000_000_000,
            free: 1_500_000_000,
            total: 80_000_000_000,
        };
        let m = e.to_string();
        assert!(m.contains("3000000000 bytes (3.0 GB)"), "{m}");
        assert!(m.contains("1.5 GB free of 80.0 GB"), "{m}");
        assert_eq!(human_bytes(512), "512 B");
    }
}
