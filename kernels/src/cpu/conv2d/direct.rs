//! Direct conv2d forward (stride 1, no padding) where im2col + GEMM is memory-bound: few output
//! channels (C_out ≤ [`MAX_OUT`]: the style networks' last 9×9 layers, 32→3 and 8→3, and 3×3
//! 8→4, run after an explicit reflect pad), where each im2col element (C·KH·KW of them per
//! output pixel) is written, packed and read for only C_out multiply-adds; and, in f32 with
//! AVX-512, few input channels (C_in ≤ [`MAX_IN`], C_out a multiple of 8: the first 9×9 layers,
//! 3→32 and 3→8), where building the im2col panel costs as much as the product. Each output row
//! is computed in blocks of pixels × output channels held in registers (64 × C_out for few
//! outputs, 32 × 8 for few inputs), summing C·KH·KW shifted input rows (contiguous loads, one
//! broadcast weight per channel and tap), with no work buffer. Parallel over (image, output
//! row).

use super::Conv2dParams;
use crate::cpu::simd::SimdLevel;
use crate::cpu::{is_f32, Float, SendPtr};
use rayon::prelude::*;

/// Output channels up to which [`forward`] is used.
pub(super) const MAX_OUT: usize = 4;
/// Input channels up to which [`forward`] is used for C_out a multiple of 8 (f32, AVX-512).
pub(super) const MAX_IN: usize = 4;
/// Output pixels per register block with few outputs (4 AVX-512 vectors of f32).
const LANES: usize = 64;

/// Whether [`forward`] runs this convolution of `T`s.
pub(super) fn applies<T: Float>(p: &Conv2dParams) -> bool {
    let base = p.groups == 1
        && p.stride_h == 1
        && p.stride_w == 1
        && p.pad_h == 0
        && p.pad_w == 0
        && p.out_h() > 0;
    let few_out = p.c_out <= MAX_OUT && p.out_w() >= LANES;
    let few_in = p.c_in <= MAX_IN
        && p.c_out.is_multiple_of(8)
        && p.out_w() >= 32
        && is_f32::<T>()
        && SimdLevel::current() == SimdLevel::Avx512;
    base && (few_out || few_in)
}

/// `out[n,o,y,x] = bias[o] + Σ_{c,i,j} w[o,c,i,j]·x[n,c,y+i,x+j]` (`applies(p)` holds).
pub(super) fn forward<T: Float>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if is_f32::<T>() && SimdLevel::current() == SimdLevel::Avx512 {
        // SAFETY: T is f32 (so the casts are identities), AVX-512F is present (current() is
        // capped at what the CPU has), and `applies` holds.
        let (i, w, o) = unsafe {
            (
                std::slice::from_raw_parts(input.as_ptr() as *const f32, input.len()),
                std::slice::from_raw_parts(weight.as_ptr() as *const f32, weight.len()),
                std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len()),
            )
        };
        let b =
            bias.map(|b| unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f32, b.len()) });
        return match p.c_out {
            1 => run_avx512::<1, 4>(p, i, w, b, o),
            2 => run_avx512::<2, 4>(p, i, w, b, o),
            3 => run_avx512::<3, 4>(p, i, w, b, o),
            4 => run_avx512::<4, 4>(p, i, w, b, o),
            _ => run_avx512::<8, 2>(p, i, w, b, o),
        };
    }
    match p.c_out {
        1 => run::<T, 1>(p, input, weight, bias, out),
        2 => run::<T, 2>(p, input, weight, bias, out),
        3 => run::<T, 3>(p, input, weight, bias, out),
        _ => run::<T, 4>(p, input, weight, bias, out),
    }
}

/// OIHW weights (`taps` = C·KH·KW values per output channel) as [block][c][i][j][o]: output
/// channels in blocks of `o_block`, the block's values of one tap side by side.
fn pack_weights<T: Float>(weight: &[T], taps: usize, o_block: usize) -> Vec<T> {
    let mut wt = vec![T::ZERO; weight.len()];
    for (oc, wo) in weight.chunks_exact(taps).enumerate() {
        let (blk, o) = (oc / o_block, oc % o_block);
        for (t, &v) in wo.iter().enumerate() {
            wt[(blk * taps + t) * o_block + o] = v;
        }
    }
    wt
}

fn run<T: Float, const O: usize>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    assert!(applies::<T>(p) && p.c_out == O, "direct conv2d: {p:?}");
    let (oh, kk) = (p.out_h(), p.kh * p.kw);
    let wt = pack_weights(weight, p.c_in * kk, O);
    let b: [T; O] = std::array::from_fn(|o| bias.map_or(T::ZERO, |b| b[o]));
    let dst = &SendPtr(out.as_mut_ptr());
    let level = SimdLevel::current();
    (0..p.n * oh).into_par_iter().for_each(|row| match level {
        // SAFETY: `SimdLevel::current` is capped at what this CPU has.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { out_row_avx512::<T, O>(p, input, &wt, &b, dst, row) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => unsafe { out_row_avx2::<T, O>(p, input, &wt, &b, dst, row) },
        _ => out_row::<T, O, false>(p, input, &wt, &b, dst, row),
    });
}

/// [`out_row`] compiled with AVX-512F (which has FMA). A named function with the feature, not
/// a closure run by `SimdLevel::run`: such a closure holding the loops was compiled apart
/// from the feature (SSE2, the sums on the stack; with `mul_add`, a library call per element).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn out_row_avx512<T: Float, const O: usize>(
    p: &Conv2dParams,
    input: &[T],
    wt: &[T],
    b: &[T; O],
    dst: &SendPtr<T>,
    row: usize,
) {
    out_row::<T, O, true>(p, input, wt, b, dst, row)
}

/// [`out_row`] compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn out_row_avx2<T: Float, const O: usize>(
    p: &Conv2dParams,
    input: &[T],
    wt: &[T],
    b: &[T; O],
    dst: &SendPtr<T>,
    row: usize,
) {
    out_row::<T, O, true>(p, input, wt, b, dst, row)
}

/// Output row `row` (= image·OH + y) of every channel, in blocks of [`LANES`] pixels with the
/// O × LANES sums in registers; `FMA`: fused multiply-adds (only inside a function that
/// enables FMA).
#[inline(always)]
fn out_row<T: Float, const O: usize, const FMA: bool>(
    p: &Conv2dParams,
    input: &[T],
    wt: &[T],
    b: &[T; O],
    dst: &SendPtr<T>,
    row: usize,
) {
    let (oh, ow) = (p.out_h(), p.out_w());
    let (img, y) = (row / oh, row % oh);
    let plane = |c: usize| &input[(img * p.c_in + c) * p.h * p.w..][..p.h * p.w];
    for x0 in super::block_starts(ow, LANES) {
        let mut acc = [[T::ZERO; LANES]; O];
        for c in 0..p.c_in {
            let xc = plane(c);
            for i in 0..p.kh {
                let src = &xc[(y + i) * p.w + x0..];
                for j in 0..p.kw {
                    let s: &[T; LANES] = src[j..j + LANES].try_into().expect("LANES");
                    let w = &wt[((c * p.kh + i) * p.kw + j) * O..][..O];
                    for o in 0..O {
                        let wv = w[o];
                        for (a, &v) in acc[o].iter_mut().zip(s) {
                            *a = if FMA { wv.mul_add(v, *a) } else { *a + wv * v };
                        }
                    }
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            let at = ((img * O + o) * oh + y) * ow + x0;
            // SAFETY: row (img, y) of channel o, pixels [x0, x0 + LANES) ⊂ [0, OW): only
            // this task writes row (img, y); overlapping blocks of one row are written in turn
            // by the same task, with the same values.
            let d = unsafe { std::slice::from_raw_parts_mut(dst.0.add(at), LANES) };
            for (d, &v) in d.iter_mut().zip(a) {
                *d = v + b[o];
            }
        }
    }
}

/// The f32 AVX-512 forward: output channels in blocks of `O` (C_out itself when ≤ 4, else 8),
/// pixels in blocks of 16·`V`, the O × V vectors of sums in registers.
#[cfg(target_arch = "x86_64")]
fn run_avx512<const O: usize, const V: usize>(
    p: &Conv2dParams,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let (oh, ow, kk) = (p.out_h(), p.out_w(), p.kh * p.kw);
    let lanes = 16 * V;
    assert!(
        p.c_out.is_multiple_of(O) && ow >= lanes && input.len() == p.n * p.c_in * p.h * p.w,
        "direct conv2d: {p:?}"
    );
    assert!(weight.len() == p.c_out * p.c_in * kk && out.len() == p.n * p.c_out * oh * ow);
    let blocks = p.c_out / O;
    let wt = pack_weights(weight, p.c_in * kk, O);
    let starts: Vec<usize> = super::block_starts(ow, lanes).collect();
    let dst = &SendPtr(out.as_mut_ptr());
    (0..p.n * oh).into_par_iter().for_each(|row| {
        let (img, y) = (row / oh, row % oh);
        let x = &input[img * p.c_in * p.h * p.w..][..p.c_in * p.h * p.w];
        for blk in 0..blocks {
            let w = &wt[blk * p.c_in * kk * O..][..p.c_in * kk * O];
            let b: [f32; O] = std::array::from_fn(|o| bias.map_or(0.0, |b| b[blk * O + o]));
            for &x0 in &starts {
                // SAFETY: AVX-512F (the caller checked); the block reads rows y..y+KH of each
                // input plane at [x0, x0 + lanes + KW − 1) ⊂ [0, W) (W = OW + KW − 1, no
                // padding) and writes row y of channels blk·O.. of image img at [x0, x0 +
                // lanes) ⊂ [0, OW): only this task writes row (img, y); overlapping blocks of
                // one row are written in turn by this task, with the same values.
                unsafe {
                    let o = dst.0.add(((img * p.c_out + blk * O) * oh + y) * ow + x0);
                    block_avx512::<O, V>(p, x.as_ptr(), w.as_ptr(), &b, y, x0, o, oh * ow)
                }
            }
        }
    });
}

/// One block: `out[o·plane + y·OW + t] = b[o] + Σ_{c,i,j} w[((c·KH + i)·KW + j)·O + o] ·
/// x[c·H·W + (y + i)·W + x0 + t + j]` for o < O, t < 16·V (`out` at the block's first pixel
/// of its first channel).
///
/// # Safety
/// AVX-512F; the reads and writes described are in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_avx512<const O: usize, const V: usize>(
    p: &Conv2dParams,
    x: *const f32,
    w: *const f32,
    b: &[f32; O],
    y: usize,
    x0: usize,
    out: *mut f32,
    plane: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); V]; O];
    for c in 0..p.c_in {
        for i in 0..p.kh {
            let src = x.add(c * p.h * p.w + (y + i) * p.w + x0);
            let wr = w.add((c * p.kh + i) * p.kw * O);
            for j in 0..p.kw {
                let s: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(src.add(j + 16 * v)));
                for (o, a) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*wr.add(j * O + o));
                    for v in 0..V {
                        a[v] = _mm512_fmadd_ps(wv, s[v], a[v]);
                    }
                }
            }
        }
    }
    for (o, a) in acc.iter().enumerate() {
        let bv = _mm512_set1_ps(b[o]);
        for (v, &av) in a.iter().enumerate() {
            _mm512_storeu_ps(out.add(o * plane + 16 * v), _mm512_add_ps(av, bv));
        }
    }
}
