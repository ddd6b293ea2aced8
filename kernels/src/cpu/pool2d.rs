//! 2-D max and average pooling on NCHW, forward and backward, parallel over (n, c) planes.

use super::simd::SimdLevel;
use super::{is_f32, Float};
use crate::window::Window2d;
use rayon::prelude::*;

/// Shapes of one pooling: input N×C×H×W, window KH×KW, stride, zero padding (padding cells
/// never win a max and count as zeros in the average, as PyTorch's `count_include_pad=True`).
/// Output N×C×OH×OW, `OH = (H + 2·pad_h − KH) / stride_h + 1` (floor mode; the [`Window2d`] of
/// [`Pool2dParams::window`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
}

impl Pool2dParams {
    /// The pooling window: KH×KW, stride, padding.
    pub fn window(&self) -> Window2d {
        Window2d {
            kernel: (self.kh, self.kw),
            stride: (self.stride_h, self.stride_w),
            padding: (self.pad_h, self.pad_w),
        }
    }
    /// Output height; the caller validates the window first ([`Window2d::check`]).
    pub fn out_h(&self) -> usize {
        self.window().out_h(self.h)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        self.window().out_w(self.w)
    }
    pub fn input_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.n * self.c * self.out_h() * self.out_w()
    }
}

/// Sentinel argmax of a window that holds no input cell (only possible when padding ≥ window):
/// its output is −∞ and the backward pass gives it no input.
const NO_ARGMAX: u32 = u32::MAX;

/// Rayon tasks should touch at least this many elements.
const MIN_TASK_ELEMS: usize = 4096;

/// The input cells `[lo, hi)` along one axis that window `o` covers: `o·stride − pad + [0, k)`,
/// clipped to `[0, size)` (empty when the window lies wholly in the padding).
fn window(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> (usize, usize) {
    let start = o * stride;
    let lo = start.saturating_sub(pad).min(size);
    let hi = (start + k).saturating_sub(pad).min(size);
    (lo, hi.max(lo))
}

/// Planes per rayon task, so that each task has at least [`MIN_TASK_ELEMS`] of work.
fn planes_per_task(p: &Pool2dParams) -> usize {
    (MIN_TASK_ELEMS / (p.h * p.w).max(p.out_h() * p.out_w()).max(1)).max(1)
}

/// A 2×2 window, stride 2, no padding (VGG's pools): the windows tile the plane without
/// overlap and every one lies inside it.
fn is_2x2_stride_2(p: &Pool2dParams) -> bool {
    (p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w) == (2, 2, 2, 2, 0, 0)
}

fn check_lens(op: &str, p: &Pool2dParams, lens: &[(&str, usize, usize)]) {
    for &(name, got, want) in lens {
        assert_eq!(
            got, want,
            "{op}: {name} has {got} elements, expected {want} for {p:?}"
        );
    }
}

fn is_nan<T: Float>(v: T) -> bool {
    v.partial_cmp(&v).is_none()
}

/// Max pooling. `argmax[k]` receives, for output element k, the index *within its H×W input
/// plane* (`y·W + x`) of the winning input (first maximum on ties). `out`, `argmax` overwritten.
pub fn max_pool2d_forward<T: Float>(
    p: &Pool2dParams,
    input: &[T],
    out: &mut [T],
    argmax: &mut [u32],
) {
    check_lens(
        "max_pool2d_forward",
        p,
        &[
            ("input", input.len(), p.input_len()),
            ("out", out.len(), p.output_len()),
            ("argmax", argmax.len(), p.output_len()),
        ],
    );
    let (hw, oh, ow) = (p.h * p.w, p.out_h(), p.out_w());
    assert!(
        hw <= NO_ARGMAX as usize,
        "max_pool2d_forward: H·W = {hw} does not fit the u32 argmax"
    );
    if oh * ow == 0 || hw == 0 {
        out.fill(T::NEG_INFINITY);
        argmax.fill(NO_ARGMAX);
        return;
    }
    let two_by_two = is_2x2_stride_2(p);
    out.par_chunks_mut(oh * ow)
        .zip(argmax.par_chunks_mut(oh * ow))
        .zip(input.par_chunks(hw))
        .with_min_len(planes_per_task(p))
        .for_each(|((out, argmax), plane)| {
            if two_by_two {
                return max_pool_2x2(plane, p.w, oh, ow, out, argmax);
            }
            for oy in 0..oh {
                let (y0, y1) = window(oy, p.kh, p.stride_h, p.pad_h, p.h);
                for ox in 0..ow {
                    let (x0, x1) = window(ox, p.kw, p.stride_w, p.pad_w, p.w);
                    let (mut best, mut arg) = (T::NEG_INFINITY, NO_ARGMAX);
                    for y in y0..y1 {
                        for (x, &v) in (x0..x1).zip(&plane[y * p.w + x0..y * p.w + x1]) {
                            // Strictly greater: the first maximum wins ties. A NaN wins (and
                            // then stays), so NaNs propagate as in PyTorch.
                            if arg == NO_ARGMAX || (!is_nan(best) && (v > best || is_nan(v))) {
                                (best, arg) = (v, (y * p.w + x) as u32);
                            }
                        }
                    }
                    out[oy * ow + ox] = best;
                    argmax[oy * ow + ox] = arg;
                }
            }
        });
}

/// [`max_pool2d_forward`]'s loop for one plane of width `w` with a 2×2 window, stride 2 and
/// no padding (VGG's pools; every window lies inside the plane): the same first-maximum and
/// NaN rules, as selects rather than branches.
fn max_pool_2x2<T: Float>(
    plane: &[T],
    w: usize,
    oh: usize,
    ow: usize,
    out: &mut [T],
    argmax: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    let simd = is_f32::<T>() && SimdLevel::current() == SimdLevel::Avx512;
    for oy in 0..oh {
        let (r0, r1) = (
            &plane[2 * oy * w..][..2 * ow],
            &plane[(2 * oy + 1) * w..][..2 * ow],
        );
        let (out, argmax) = (&mut out[oy * ow..][..ow], &mut argmax[oy * ow..][..ow]);
        let base = (2 * oy * w) as u32;
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: AVX-512F detected and T is f32 (checked above); the slices' lengths bound
            // every access (the kernel reads 2·16 floats of each row per 16 outputs).
            done = unsafe {
                max_2x2_avx512(
                    std::slice::from_raw_parts(r0.as_ptr() as *const f32, r0.len()),
                    std::slice::from_raw_parts(r1.as_ptr() as *const f32, r1.len()),
                    base,
                    w as u32,
                    std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len()),
                    argmax,
                )
            };
        }
        for ox in done..ow {
            let x = 2 * ox;
            let (mut best, mut arg) = (r0[x], base + x as u32);
            for (v, at) in [
                (r0[x + 1], base + x as u32 + 1),
                (r1[x], base + (w + x) as u32),
                (r1[x + 1], base + (w + x) as u32 + 1),
            ] {
                let take = !is_nan(best) && (v > best || is_nan(v));
                best = if take { v } else { best };
                arg = if take { at } else { arg };
            }
            out[ox] = best;
            argmax[ox] = arg;
        }
    }
}

/// [`max_pool_2x2`]'s row with AVX-512, 16 outputs at a time (the two input rows' pairs split
/// into even and odd columns by two-source permutes; the same first-maximum and NaN rules as
/// masks). Returns how many outputs it wrote (a multiple of 16; the caller does the rest).
///
/// # Safety
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_2x2_avx512(
    r0: &[f32],
    r1: &[f32],
    base: u32,
    w: u32,
    out: &mut [f32],
    argmax: &mut [u32],
) -> usize {
    use std::arch::x86_64::*;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let n = out
        .len()
        .min(argmax.len())
        .min(r0.len() / 2)
        .min(r1.len() / 2)
        / 16
        * 16;
    for ox in (0..n).step_by(16) {
        let ld = |r: &[f32], i: usize| _mm512_loadu_ps(r[2 * ox + 16 * i..][..16].as_ptr());
        let (a0, a1, b0, b1) = (ld(r0, 0), ld(r0, 1), ld(r1, 0), ld(r1, 1));
        let vs = [
            _mm512_permutex2var_ps(a0, odd, a1),
            _mm512_permutex2var_ps(b0, even, b1),
            _mm512_permutex2var_ps(b0, odd, b1),
        ];
        // Input index of each lane's top-left cell: base + 2·(ox + lane).
        let i0 = _mm512_add_epi32(_mm512_set1_epi32((base + 2 * ox as u32) as i32), even);
        let idx = [
            _mm512_add_epi32(i0, _mm512_set1_epi32(1)),
            _mm512_add_epi32(i0, _mm512_set1_epi32(w as i32)),
            _mm512_add_epi32(i0, _mm512_set1_epi32(w as i32 + 1)),
        ];
        let (mut best, mut arg) = (_mm512_permutex2var_ps(a0, even, a1), i0);
        for (v, at) in vs.into_iter().zip(idx) {
            // take = !isnan(best) && (v > best || isnan(v))
            let best_ok = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best);
            let bigger = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
            let v_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
            let take = best_ok & (bigger | v_nan);
            best = _mm512_mask_blend_ps(take, best, v);
            arg = _mm512_mask_blend_epi32(take, arg, at);
        }
        _mm512_storeu_ps(out[ox..][..16].as_mut_ptr(), best);
        _mm512_storeu_si512(argmax[ox..][..16].as_mut_ptr() as *mut _, arg);
    }
    n
}

/// One input row of [`max_unpool_2x2`] with AVX-512, 16 windows at a time, without branches
/// (the argmax cells are data-dependent, and branches on them mispredicted: a scalar loop ran
/// 14× slower in the pipeline than on a regular test pattern). `row` holds the row's first
/// 2·OW inputs, whose first has index `rb`. Returns how many windows it did (a multiple of 16).
///
/// # Safety
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn unpool_2x2_avx512(row: &mut [f32], rb: u32, g: &[f32], a: &[u32]) -> usize {
    use std::arch::x86_64::*;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // Lanes 0..16 of (v0, v1) interleaved: v0[0], v1[0], v0[1], v1[1], … (lo: 0..8, hi: 8..16).
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    let n = g.len().min(a.len()).min(row.len() / 2) / 16 * 16;
    for ox in (0..n).step_by(16) {
        let gv = _mm512_loadu_ps(g[ox..][..16].as_ptr());
        let av = _mm512_loadu_si512(a[ox..][..16].as_ptr() as *const _);
        let at = _mm512_add_epi32(_mm512_set1_epi32((rb + 2 * ox as u32) as i32), even);
        let v0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(av, at), gv);
        let at1 = _mm512_add_epi32(at, _mm512_set1_epi32(1));
        let v1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(av, at1), gv);
        let d = row[2 * ox..][..32].as_mut_ptr();
        _mm512_storeu_ps(d, _mm512_permutex2var_ps(v0, lo, v1));
        _mm512_storeu_ps(d.add(16), _mm512_permutex2var_ps(v0, hi, v1));
    }
    n
}

/// [`max_pool2d_backward`] for one plane of width `w` with a 2×2 window, stride 2 and no
/// padding: the windows do not overlap, so each input is written once, in order, with its
/// window's gradient where it is the argmax and 0 elsewhere (rows and columns past the last
/// window: 0), instead of zeroing the plane and scattering. Used for f32 with AVX-512 only: the
/// rows run in `unpool_2x2_avx512`, the scalar loop does the last < 16 windows of a row.
fn max_unpool_2x2<T: Float>(
    gin: &mut [T],
    w: usize,
    oh: usize,
    ow: usize,
    gout: &[T],
    arg: &[u32],
) {
    for oy in 0..oh {
        let (g, a) = (&gout[oy * ow..][..ow], &arg[oy * ow..][..ow]);
        for r in 0..2 {
            let row = &mut gin[(2 * oy + r) * w..][..w];
            let rb = ((2 * oy + r) * w) as u32;
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if is_f32::<T>() && SimdLevel::current() == SimdLevel::Avx512 {
                // SAFETY: AVX-512F detected and T is f32 (checked); lengths bound the accesses.
                done = unsafe {
                    unpool_2x2_avx512(
                        std::slice::from_raw_parts_mut(row.as_mut_ptr() as *mut f32, 2 * ow),
                        rb,
                        std::slice::from_raw_parts(g.as_ptr() as *const f32, ow),
                        a,
                    )
                };
            }
            let pairs = row[2 * done..2 * ow]
                .chunks_exact_mut(2)
                .zip(a[done..].iter().zip(&g[done..]));
            for (i, (d, (&a, &g))) in pairs.enumerate() {
                let ox = done + i;
                let at = rb + 2 * ox as u32;
                d[0] = if a == at { g } else { T::ZERO };
                d[1] = if a == at + 1 { g } else { T::ZERO };
            }
            row[2 * ow..].fill(T::ZERO);
        }
    }
    gin[2 * oh * w..].fill(T::ZERO);
}

/// Max-pooling backward from the saved argmax: `grad_in` is overwritten with zeros, then each
/// `grad_out[k]` is added at its argmax.
pub fn max_pool2d_backward<T: Float>(
    p: &Pool2dParams,
    grad_out: &[T],
    argmax: &[u32],
    grad_in: &mut [T],
) {
    check_lens(
        "max_pool2d_backward",
        p,
        &[
            ("grad_out", grad_out.len(), p.output_len()),
            ("argmax", argmax.len(), p.output_len()),
            ("grad_in", grad_in.len(), p.input_len()),
        ],
    );
    let (hw, ohw) = (p.h * p.w, p.out_h() * p.out_w());
    if hw == 0 {
        return;
    }
    if ohw == 0 {
        grad_in.fill(T::ZERO);
        return;
    }
    // The 2×2 write-once path only where its rows run in AVX-512 (`unpool_2x2_avx512`): its
    // scalar form branches on data-dependent argmax cells and lost to zero-and-scatter.
    let two_by_two =
        is_2x2_stride_2(p) && is_f32::<T>() && SimdLevel::current() == SimdLevel::Avx512;
    grad_in
        .par_chunks_mut(hw)
        .zip(grad_out.par_chunks(ohw))
        .zip(argmax.par_chunks(ohw))
        .with_min_len(planes_per_task(p))
        .for_each(|((gin, gout), arg)| {
            if two_by_two {
                return max_unpool_2x2(gin, p.w, p.out_h(), p.out_w(), gout, arg);
            }
            gin.fill(T::ZERO);
            for (&g, &a) in gout.iter().zip(arg) {
                if a != NO_ARGMAX {
                    gin[a as usize] += g;
                }
            }
        });
}

/// Average pooling (divisor KH·KW, padding counted). `out` overwritten.
pub fn avg_pool2d_forward<T: Float>(p: &Pool2dParams, input: &[T], out: &mut [T]) {
    check_lens(
        "avg_pool2d_forward",
        p,
        &[
            ("input", input.len(), p.input_len()),
            ("out", out.len(), p.output_len()),
        ],
    );
    let (hw, oh, ow) = (p.h * p.w, p.out_h(), p.out_w());
    if oh * ow == 0 {
        return;
    }
    if hw == 0 {
        out.fill(T::ZERO);
        return;
    }
    let scale = T::ONE / T::from_f64((p.kh * p.kw) as f64);
    out.par_chunks_mut(oh * ow)
        .zip(input.par_chunks(hw))
        .with_min_len(planes_per_task(p))
        .for_each(|(out, plane)| {
            for oy in 0..oh {
                let (y0, y1) = window(oy, p.kh, p.stride_h, p.pad_h, p.h);
                for ox in 0..ow {
                    let (x0, x1) = window(ox, p.kw, p.stride_w, p.pad_w, p.w);
                    let mut s = T::ZERO;
                    for y in y0..y1 {
                        for &v in &plane[y * p.w + x0..y * p.w + x1] {
                            s += v;
                        }
                    }
                    out[oy * ow + ox] = s * scale;
                }
            }
        });
}

/// Average-pooling backward. `grad_in` overwritten.
pub fn avg_pool2d_backward<T: Float>(p: &Pool2dParams, grad_out: &[T], grad_in: &mut [T]) {
    check_lens(
        "avg_pool2d_backward",
        p,
        &[
            ("grad_out", grad_out.len(), p.output_len()),
            ("grad_in", grad_in.len(), p.input_len()),
        ],
    );
    let (hw, oh, ow) = (p.h * p.w, p.out_h(), p.out_w());
    if hw == 0 {
        return;
    }
    if oh * ow == 0 {
        grad_in.fill(T::ZERO);
        return;
    }
    let scale = T::ONE / T::from_f64((p.kh * p.kw) as f64);
    grad_in
        .par_chunks_mut(hw)
        .zip(grad_out.par_chunks(oh * ow))
        .with_min_len(planes_per_task(p))
        .for_each(|(gin, gout)| {
            gin.fill(T::ZERO);
            for oy in 0..oh {
                let (y0, y1) = window(oy, p.kh, p.stride_h, p.pad_h, p.h);
                for ox in 0..ow {
                    let (x0, x1) = window(ox, p.kw, p.stride_w, p.pad_w, p.w);
                    let g = gout[oy * ow + ox] * scale;
                    for y in y0..y1 {
                        for d in &mut gin[y * p.w + x0..y * p.w + x1] {
                            *d += g;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests;
