//! Direct conv2d forward for few output channels (C_out ≤ [`MAX_OUT`]; stride 1, no padding:
//! the style networks' last 9×9 layers, 32→3 and 8→3, and 3×3 8→4, run after an explicit
//! reflect pad). There im2col + GEMM is memory-bound: each im2col element (C·KH·KW of them per
//! output pixel) is written, packed and read for only C_out multiply-adds. Here each output row
//! is computed in blocks of [`LANES`] pixels × C_out channels held in registers, summing
//! C·KH·KW shifted input rows (contiguous loads, one broadcast weight per channel and tap),
//! with no work buffer. Parallel over (image, output row).

use super::Conv2dParams;
use crate::cpu::simd::SimdLevel;
use crate::cpu::{Float, SendPtr};
use rayon::prelude::*;

/// Output channels up to which [`forward`] is used.
pub(super) const MAX_OUT: usize = 4;
/// Output pixels per register block (4 AVX-512 vectors of f32).
const LANES: usize = 64;

/// Whether [`forward`] runs this convolution.
pub(super) fn applies(p: &Conv2dParams) -> bool {
    p.groups == 1
        && p.c_out <= MAX_OUT
        && p.stride_h == 1
        && p.stride_w == 1
        && p.pad_h == 0
        && p.pad_w == 0
        && p.out_w() >= LANES
        && p.out_h() > 0
}

/// `out[n,o,y,x] = bias[o] + Σ_{c,i,j} w[o,c,i,j]·x[n,c,y+i,x+j]` (`applies(p)` holds).
pub(super) fn forward<T: Float>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    match p.c_out {
        1 => run::<T, 1>(p, input, weight, bias, out),
        2 => run::<T, 2>(p, input, weight, bias, out),
        3 => run::<T, 3>(p, input, weight, bias, out),
        _ => run::<T, 4>(p, input, weight, bias, out),
    }
}

fn run<T: Float, const O: usize>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    assert!(applies(p) && p.c_out == O, "direct conv2d: {p:?}");
    let (oh, ow, kk) = (p.out_h(), p.out_w(), p.kh * p.kw);
    // Weights as [c][i][j][o]: the O values of one tap side by side.
    let mut wt = vec![T::ZERO; O * p.c_in * kk];
    for (o, wo) in weight.chunks_exact(p.c_in * kk).enumerate() {
        for (t, &v) in wo.iter().enumerate() {
            wt[t * O + o] = v;
        }
    }
    let b: [T; O] = std::array::from_fn(|o| bias.map_or(T::ZERO, |b| b[o]));
    let dst = &SendPtr(out.as_mut_ptr());
    let level = SimdLevel::current();
    (0..p.n * oh).into_par_iter().for_each(|row| {
        let (img, y) = (row / oh, row % oh);
        let plane = |c: usize| &input[(img * p.c_in + c) * p.h * p.w..][..p.h * p.w];
        level.run(|| {
            // Blocks at 0, LANES, …; the last one ends at OW (overlapping its neighbour).
            let starts = (0..ow - LANES)
                .step_by(LANES)
                .chain(std::iter::once(ow - LANES));
            for x0 in starts {
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
                                    *a += wv * v;
                                }
                            }
                        }
                    }
                }
                for (o, a) in acc.iter().enumerate() {
                    let at = ((img * O + o) * oh + y) * ow + x0;
                    // SAFETY: row (img, y) of channel o, pixels [x0, x0 + LANES) ⊂ [0, OW):
                    // only this task writes row (img, y); overlapping blocks of one row are
                    // written in turn by the same task, with the same values.
                    let d = unsafe { std::slice::from_raw_parts_mut(dst.0.add(at), LANES) };
                    for (d, &v) in d.iter_mut().zip(a) {
                        *d = v + b[o];
                    }
                }
            }
        })
    });
}
