//! 2-D max and average pooling on NCHW, forward and backward, parallel over (n, c) planes.

use super::Float;
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
    let two_by_two = (p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w) == (2, 2, 2, 2, 0, 0);
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
    for oy in 0..oh {
        let (r0, r1) = (
            &plane[2 * oy * w..][..2 * ow],
            &plane[(2 * oy + 1) * w..][..2 * ow],
        );
        let (out, argmax) = (&mut out[oy * ow..][..ow], &mut argmax[oy * ow..][..ow]);
        let base = (2 * oy * w) as u32;
        for ox in 0..ow {
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
    grad_in
        .par_chunks_mut(hw)
        .zip(grad_out.par_chunks(ohw))
        .zip(argmax.par_chunks(ohw))
        .with_min_len(planes_per_task(p))
        .for_each(|((gin, gout), arg)| {
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
