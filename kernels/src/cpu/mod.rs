//! CPU kernels: gemm (matrixmultiply), conv2d (im2col + gemm), pooling, elementwise, reductions.
//! Parallel with rayon; inner loops written so that they auto-vectorise.

pub mod adam;
pub mod amx;
pub mod bf16;
pub mod buffers;
pub mod conv2d;
pub mod elementwise;
pub mod float;
pub mod gemm;
pub mod gram;
pub mod index;
pub mod norm;
pub mod packed_gemm;
pub mod pool2d;
pub mod reduce;
pub mod simd;
pub mod sort;
pub mod spatial;
pub mod symeig;
pub mod winograd;

pub use float::Float;

/// A raw pointer that rayon tasks may share, for parallel writes to disjoint ranges of one
/// buffer (each use states why its ranges are disjoint).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// Whether `T` is `f32` (the element type the SIMD kernels are written for).
pub(crate) fn is_f32<T: 'static>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}

/// Prefetch the cache lines of `len` elements from `p` into L1, for reading: for rows a stride
/// apart that no hardware prefetcher follows. A hint only: it never faults, so `p` need not be
/// in bounds. Does nothing off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for q in (0..len).step_by((64 / std::mem::size_of::<T>()).max(1)) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetch instructions are hints and never fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(q) as *const i8) };
    }
    let _ = (p, len);
}
