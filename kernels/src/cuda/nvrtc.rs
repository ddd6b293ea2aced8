//! The kernel sources and their compilation with NVRTC.
//!
//! Each `.cu` file in `kernels/src/cuda/kernels/` is one [`Module`], embedded in the binary with
//! `include_str!` and compiled at run time, once per process and target architecture, with
//! `common.cuh` prepended. For a device the target is its own `sm_XY` (a CUBIN: no PTX JIT in the
//! driver, so a driver older than NVRTC still loads it); when NVRTC does not know that
//! architecture, `compute_XY` PTX is tried. `kernels/tests/nvrtc.rs` compiles every module for
//! compute_80/compute_90 (PTX) and sm_80/sm_90 (CUBIN) on machines without a GPU.

use super::{nvrtc_present, CudaError, NVRTC_HINT};
use cudarc::nvrtc::{result, sys};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

const COMMON: &str = include_str!("kernels/common.cuh");

/// One `.cu` file: a CUDA module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    Elementwise,
    Reduce,
    Conv2d,
    Pool2d,
    Adam,
    Spatial,
    Norm,
    GroupedConv,
    Sort,
    Index,
}

impl Module {
    pub const ALL: [Module; 10] = [
        Module::Elementwise,
        Module::Reduce,
        Module::Conv2d,
        Module::Pool2d,
        Module::Adam,
        Module::Spatial,
        Module::Norm,
        Module::GroupedConv,
        Module::Sort,
        Module::Index,
    ];

    /// File stem: `elementwise` for `kernels/elementwise.cu`.
    pub fn name(self) -> &'static str {
        match self {
            Module::Elementwise => "elementwise",
            Module::Reduce => "reduce",
            Module::Conv2d => "conv2d",
            Module::Pool2d => "pool2d",
            Module::Adam => "adam",
            Module::Spatial => "spatial",
            Module::Norm => "norm",
            Module::GroupedConv => "grouped_conv",
            Module::Sort => "sort",
            Module::Index => "index",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Module::Elementwise => include_str!("kernels/elementwise.cu"),
            Module::Reduce => include_str!("kernels/reduce.cu"),
            Module::Conv2d => include_str!("kernels/conv2d.cu"),
            Module::Pool2d => include_str!("kernels/pool2d.cu"),
            Module::Adam => include_str!("kernels/adam.cu"),
            Module::Spatial => include_str!("kernels/spatial.cu"),
            Module::Norm => include_str!("kernels/norm.cu"),
            Module::GroupedConv => include_str!("kernels/grouped_conv.cu"),
            Module::Sort => include_str!("kernels/sort.cu"),
            Module::Index => include_str!("kernels/index.cu"),
        }
    }

    /// The source NVRTC compiles: `common.cuh`, then the file (with `#line` so that compiler
    /// messages point into the right file).
    pub fn source(self) -> String {
        format!(
            "#line 1 \"common.cuh\"\n{COMMON}\n#line 1 \"{}.cu\"\n{}",
            self.name(),
            self.body()
        )
    }

    /// Every `extern "C"` kernel the module defines (the launch wrappers use these names).
    pub fn kernels(self) -> Vec<String> {
        let templated: &[&str] = match self {
            Module::Elementwise => &["unary", "binary", "binary_strided", "copy_strided"],
            Module::Reduce => &["sum_partial", "sum_rows", "sum_axis"],
            Module::Conv2d => &["im2col", "col2im", "bias_add", "bias_grad"],
            Module::Pool2d => &[
                "max_pool_fwd",
                "max_pool_bwd",
                "avg_pool_fwd",
                "avg_pool_bwd",
            ],
            Module::Adam => &["adam"],
            Module::Spatial => &["pad_fwd", "pad_bwd", "upsample_fwd", "upsample_bwd"],
            Module::Norm => &["inorm_fwd", "inorm_bwd"],
            Module::GroupedConv => &["gconv_fwd", "gconv_bwd_input", "gconv_bwd_weight"],
            Module::Sort => &[
                "sort_init",
                "bitonic_step",
                "sort_copy_out",
                "gather_last",
                "scatter_add_last",
            ],
            Module::Index => &["argmax_axis", "index_select"],
        };
        let mut names: Vec<String> = templated
            .iter()
            .flat_map(|k| [format!("{k}_f32"), format!("{k}_f64")])
            .collect();
        if self == Module::Elementwise {
            names.extend(["cast_f32_f64".to_string(), "cast_f64_f32".to_string()]);
        }
        names
    }
}

/// What NVRTC produced: a CUBIN (`sm_XY`) or NUL-free PTX text (`compute_XY`).
#[derive(Clone, Debug)]
pub enum Image {
    Cubin(Vec<u8>),
    Ptx(String),
}

impl Image {
    /// For `CudaContext::load_module`.
    pub(crate) fn to_ptx(&self) -> cudarc::nvrtc::Ptx {
        match self {
            Image::Cubin(b) => cudarc::nvrtc::Ptx::from_binary(b.clone()),
            Image::Ptx(s) => cudarc::nvrtc::Ptx::from_src(s.clone()),
        }
    }
}

/// NVRTC's version (major, minor). Errors: `MissingLibrary` when libnvrtc cannot be loaded.
pub fn version() -> Result<(i32, i32), CudaError> {
    check_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two valid out-pointers.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| CudaError::Compile {
            module: "-",
            arch: "-".into(),
            log: format!("nvrtcVersion: {e}"),
        })?;
    Ok((major, minor))
}

fn check_nvrtc() -> Result<(), CudaError> {
    if nvrtc_present() {
        Ok(())
    } else {
        Err(CudaError::MissingLibrary {
            lib: "libnvrtc",
            hint: NVRTC_HINT,
        })
    }
}

/// Frees an NVRTC program on every path out of [`compile`].
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by nvrtcCreateProgram and destroyed only here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// Compile `module` for `arch`: `"sm_90"` gives a CUBIN, `"compute_90"` PTX. Uncached (see
/// [`compile_cached`]). Errors: `MissingLibrary` without libnvrtc, `Compile` with NVRTC's log.
pub fn compile(module: Module, arch: &str) -> Result<Image, CudaError> {
    compile_with_log(module, arch).map(|(img, _)| img)
}

/// [`compile`], also returning NVRTC's log (warnings; empty for a clean compile).
pub fn compile_with_log(module: Module, arch: &str) -> Result<(Image, String), CudaError> {
    check_nvrtc()?;
    let fail = |log: String| CudaError::Compile {
        module: module.name(),
        arch: arch.to_string(),
        log,
    };
    let src = CString::new(module.source()).map_err(|_| fail("NUL byte in the source".into()))?;
    let name = CString::new(format!("{}.cu", module.name())).expect("no NUL in module names");
    let prog = Program(
        result::create_program(&src, Some(name.as_c_str()))
            .map_err(|e| fail(format!("nvrtcCreateProgram: {e}")))?,
    );
    let options = [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        // Line tables for compute-sanitizer / Nsight; no effect on the code.
        "--generate-line-info".to_string(),
    ];
    // SAFETY: `prog` is a live program; the options are NUL-free strings.
    let compiled = unsafe { result::compile_program(prog.0, &options) };
    // SAFETY: as above.
    let log = unsafe { result::get_program_log(prog.0) }
        .map(|raw| {
            // SAFETY: NVRTC returns a NUL-terminated log.
            unsafe { CStr::from_ptr(raw.as_ptr()) }
                .to_string_lossy()
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    if let Err(e) = compiled {
        return Err(fail(format!("{e}\n{log}")));
    }
    if arch.starts_with("sm_") {
        let mut size = 0usize;
        // SAFETY: `prog` compiled successfully for a real architecture, so it has a CUBIN.
        unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
            .result()
            .map_err(|e| fail(format!("nvrtcGetCUBINSize: {e}")))?;
        let mut cubin = vec![0u8; size];
        // SAFETY: `cubin` has the size NVRTC reported.
        unsafe { sys::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr().cast()) }
            .result()
            .map_err(|e| fail(format!("nvrtcGetCUBIN: {e}")))?;
        Ok((Image::Cubin(cubin), log))
    } else {
        // SAFETY: `prog` compiled successfully.
        let raw =
            unsafe { result::get_ptx(prog.0) }.map_err(|e| fail(format!("nvrtcGetPTX: {e}")))?;
        let bytes: Vec<u8> = raw
            .iter()
            .map(|&c| c as u8)
            .take_while(|&c| c != 0)
            .collect();
        let ptx = String::from_utf8(bytes).map_err(|_| fail("PTX is not UTF-8".into()))?;
        Ok((Image::Ptx(ptx), log))
    }
}

/// [`compile`], memoised per (module, arch) for the life of the process.
pub fn compile_cached(module: Module, arch: &str) -> Result<Arc<Image>, CudaError> {
    type Cache = Mutex<HashMap<(Module, String), Arc<Image>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (module, arch.to_string());
    if let Some(img) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(img.clone());
    }
    // Compile outside the lock (seconds); a racing thread at worst compiles twice.
    let img = Arc::new(compile(module, arch)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(img.clone());
    Ok(img)
}

/// Compile for a device of compute capability `(major, minor)`: `sm_XY` CUBIN, or `compute_XY`
/// PTX when NVRTC rejects `sm_XY` (an architecture newer than NVRTC).
pub fn compile_for_device(module: Module, cc: (u32, u32)) -> Result<Arc<Image>, CudaError> {
    let sm = format!("sm_{}{}", cc.0, cc.1);
    match compile_cached(module, &sm) {
        Ok(img) => Ok(img),
        Err(first) => {
            compile_cached(module, &format!("compute_{}{}", cc.0, cc.1)).map_err(|_| first)
        }
    }
}
