//! Run-time CPU dispatch: the instruction set the hot kernels use, detected once per process
//! (no `target-cpu=native` at build time, so one binary runs on any x86-64 or other CPU).

use std::sync::atomic::{AtomicU8, Ordering};

/// The vector instruction set a kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Plain Rust, auto-vectorised for the build's baseline target (SSE2 on x86-64).
    Portable = 1,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2Fma = 2,
    /// x86-64 AVX-512F (512-bit).
    Avx512 = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

impl SimdLevel {
    /// The best level this CPU supports, capped by the environment variable `NST_SIMD`
    /// (`portable`, `avx2` or `avx512`; for benchmarks and tests). Detected once.
    pub fn current() -> SimdLevel {
        match LEVEL.load(Ordering::Relaxed) {
            1 => SimdLevel::Portable,
            2 => SimdLevel::Avx2Fma,
            3 => SimdLevel::Avx512,
            _ => {
                let mut l = SimdLevel::detected();
                if let Ok(cap) = std::env::var("NST_SIMD") {
                    let cap = match cap.trim().to_ascii_lowercase().as_str() {
                        "portable" => SimdLevel::Portable,
                        "avx2" => SimdLevel::Avx2Fma,
                        _ => SimdLevel::Avx512,
                    };
                    l = l.min(cap);
                }
                LEVEL.store(l as u8, Ordering::Relaxed);
                l
            }
        }
    }

    /// What the CPU supports, ignoring `NST_SIMD`.
    pub fn detected() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return SimdLevel::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return SimdLevel::Avx2Fma;
            }
        }
        SimdLevel::Portable
    }

    /// Every level this CPU can run, lowest first (tests run each kernel at each).
    pub fn available() -> Vec<SimdLevel> {
        let top = SimdLevel::detected();
        [SimdLevel::Portable, SimdLevel::Avx2Fma, SimdLevel::Avx512]
            .into_iter()
            .filter(|&l| l <= top)
            .collect()
    }

    /// `f()` called from a function with AVX-512F or AVX2+FMA enabled (capped at what this CPU
    /// has; plain code at `Portable`). Only code inlined into that function is vectorised for
    /// the level: the closure must be marked `#[inline(always)]` and call only
    /// `#[inline(always)]` bodies. A plain closure is compiled as a function of its own, for
    /// the build's baseline (SSE2 on x86-64), once it is more than a few lines: the direct and
    /// depthwise convolutions' loops ran that way (`mulps`/`addps` on xmm, no `vfmadd`). For a
    /// body of loops, prefer an `#[inline(always)]` fn called from named
    /// `#[target_feature(enable = "avx512f")]` / `"avx2,fma"` functions (as
    /// `conv2d::direct`'s `out_row_avx512`/`out_row_avx2` do), which cannot silently fall back.
    #[inline(always)]
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: capped at the level detected on this CPU.
            match self.min(SimdLevel::detected()) {
                SimdLevel::Avx512 => return unsafe { avx512(f) },
                SimdLevel::Avx2Fma => return unsafe { avx2(f) },
                SimdLevel::Portable => {}
            }
        }
        f()
    }

    /// Lower-case name (`portable`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2Fma => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }
}
