//! Patch extraction and index selection on NCHW data (the MRF style loss of Li & Wand, CVPR
//! 2016, is built from these): `unfold` (PyTorch's `torch.nn.functional.unfold`, the im2col of
//! [`super::conv2d`] over whole images) and its adjoint `fold`, `argmax_axis` (PyTorch's
//! `torch.max(x, dim)`: values and first index of the maximum) and `index_select` (PyTorch's
//! `torch.index_select`). Plain slices in, caller-allocated outputs.

use super::conv2d::{col2im_add, im2col, Conv2dParams, Geom};
use super::Float;
use rayon::prelude::*;

/// Patches of every image: `x` N×C×H×W → `cols` N×(C·KH·KW)×(OH·OW), row `(c, i, j)` (row-major)
/// holding `x[n, c, oy·s_h + i − p_h, ox·s_w + j − p_w]` (zero outside), the geometry of `p`
/// (its `c_out` and `groups` unused).
///
/// # Panics
/// If a slice length does not match `p`.
pub fn unfold<T: Float>(p: &Conv2dParams, x: &[T], cols: &mut [T]) {
    let g = Geom::new(p, usize::MAX);
    let (chw, per) = (p.c_in * p.h * p.w, unfold_rows(p) * g.ohw());
    assert_eq!(x.len(), p.n * chw, "unfold: input length for {p:?}");
    assert_eq!(cols.len(), p.n * per, "unfold: output length for {p:?}");
    if per == 0 {
        return;
    }
    for (img, col) in x.chunks_exact(chw).zip(cols.chunks_exact_mut(per)) {
        im2col(p, &g, img, 0, g.oh_rows(), col);
    }
}

/// The adjoint of [`unfold`]: `gx` (N×C×H×W) is overwritten with, at each input position, the
/// sum of the `cols` entries that were gathered from it.
///
/// # Panics
/// If a slice length does not match `p`.
pub fn fold<T: Float>(p: &Conv2dParams, cols: &[T], gx: &mut [T]) {
    let g = Geom::new(p, usize::MAX);
    let (chw, per) = (p.c_in * p.h * p.w, unfold_rows(p) * g.ohw());
    assert_eq!(gx.len(), p.n * chw, "fold: output length for {p:?}");
    assert_eq!(cols.len(), p.n * per, "fold: input length for {p:?}");
    gx.fill(T::ZERO);
    if per == 0 {
        return;
    }
    for (col, img) in cols.chunks_exact(per).zip(gx.chunks_exact_mut(chw)) {
        col2im_add(p, &g, col, 0, g.oh_rows(), img);
    }
}

/// Rows of one image's unfolded matrix: C·KH·KW.
pub fn unfold_rows(p: &Conv2dParams) -> usize {
    p.c_in * p.kh * p.kw
}

/// Maximum over the middle axis of `x` viewed as `outer × n × inner`: `values[o, i]` and
/// `indices[o, i]` (the first `k` with the maximum, as a float; NaNs never win, an all-NaN
/// line gives index 0 and value NaN). Parallel over `inner`.
///
/// # Panics
/// If `n` is 0 or a slice length does not match.
pub fn argmax_axis<T: Float>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    values: &mut [T],
    indices: &mut [T],
) {
    assert!(n > 0, "argmax_axis: empty axis");
    assert_eq!(x.len(), outer * n * inner, "argmax_axis: input length");
    assert_eq!(values.len(), outer * inner, "argmax_axis: values length");
    assert_eq!(indices.len(), outer * inner, "argmax_axis: indices length");
    const CHUNK: usize = 1024;
    for o in 0..outer {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        let vals = &mut values[o * inner..(o + 1) * inner];
        let idx = &mut indices[o * inner..(o + 1) * inner];
        vals.par_chunks_mut(CHUNK)
            .zip(idx.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (v, ix))| {
                let i0 = c * CHUNK;
                let mut best_k = vec![0usize; v.len()];
                v.copy_from_slice(&block[i0..i0 + v.len()]);
                for k in 1..n {
                    let row = &block[k * inner + i0..k * inner + i0 + v.len()];
                    for ((b, bk), &r) in v.iter_mut().zip(best_k.iter_mut()).zip(row) {
                        // `!(r <= b)` would let NaN win; `b.is_nan()` lets a number replace
                        // a leading NaN.
                        if r > *b || (b.to_f64().is_nan() && !r.to_f64().is_nan()) {
                            *b = r;
                            *bk = k;
                        }
                    }
                }
                for (d, k) in ix.iter_mut().zip(best_k) {
                    *d = T::from_f64(k as f64);
                }
            });
    }
}

/// `out[o, j, i] = x[o, idx[j], i]` for `x` viewed as `outer × n_src × inner`; `out` is
/// `outer × idx.len() × inner`.
///
/// # Panics
/// If an index is ≥ `n_src` or a slice length does not match.
pub fn index_select<T: Float>(
    x: &[T],
    (outer, n_src, inner): (usize, usize, usize),
    idx: &[usize],
    out: &mut [T],
) {
    assert_eq!(x.len(), outer * n_src * inner, "index_select: input length");
    assert_eq!(
        out.len(),
        outer * idx.len() * inner,
        "index_select: output length"
    );
    if out.is_empty() {
        return;
    }
    let block = idx.len() * inner;
    out.par_chunks_mut(block).enumerate().for_each(|(o, dst)| {
        for (d, &s) in dst.chunks_exact_mut(inner).zip(idx) {
            assert!(s < n_src, "index_select: index {s} ≥ {n_src}");
            let src = (o * n_src + s) * inner;
            d.copy_from_slice(&x[src..src + inner]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
        pad: usize,
    ) -> Conv2dParams {
        Conv2dParams {
            n,
            c_in: c,
            h,
            w,
            c_out: 1,
            kh: k,
            kw: k,
            stride_h: s,
            stride_w: s,
            pad_h: pad,
            pad_w: pad,
            groups: 1,
            pad_mode: crate::cpu::spatial::PadMode::Zero,
        }
    }

    /// The definition, one element at a time.
    fn naive_unfold(p: &Conv2dParams, x: &[f64]) -> Vec<f64> {
        let (oh, ow) = (p.out_h(), p.out_w());
        let mut out = Vec::new();
        for n in 0..p.n {
            for c in 0..p.c_in {
                for i in 0..p.kh {
                    for j in 0..p.kw {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let y = (oy * p.stride_h + i) as isize - p.pad_h as isize;
                                let xx = (ox * p.stride_w + j) as isize - p.pad_w as isize;
                                let inside =
                                    y >= 0 && xx >= 0 && (y as usize) < p.h && (xx as usize) < p.w;
                                out.push(if inside {
                                    x[((n * p.c_in + c) * p.h + y as usize) * p.w + xx as usize]
                                } else {
                                    0.0
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn unfold_matches_the_definition_and_fold_is_its_adjoint() {
        for p in [
            params(2, 3, 5, 7, 3, 1, 0),
            params(1, 2, 6, 5, 3, 2, 1),
            params(1, 1, 3, 3, 3, 1, 0),
        ] {
            let x: Vec<f64> = (0..p.n * p.c_in * p.h * p.w)
                .map(|i| (i as f64 * 0.37).sin())
                .collect();
            let mut cols = vec![0.0; p.n * unfold_rows(&p) * p.out_h() * p.out_w()];
            unfold(&p, &x, &mut cols);
            assert_eq!(cols, naive_unfold(&p, &x), "{p:?}");
            // <unfold(x), c> = <x, fold(c)> for any c.
            let c: Vec<f64> = (0..cols.len()).map(|i| (i as f64 * 0.11).cos()).collect();
            let mut fx = vec![1.0; x.len()];
            fold(&p, &c, &mut fx);
            let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&fx).map(|(a, b)| a * b).sum();
            assert!(
                (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nans() {
        // outer 2 × n 3 × inner 2.
        let x = [
            1.0,
            5.0,
            3.0,
            5.0,
            3.0,
            f64::NAN,
            /* o=1 */ f64::NAN,
            0.0,
            2.0,
            -1.0,
            -4.0,
            0.0,
        ];
        let (mut v, mut i) = (vec![0.0; 4], vec![0.0; 4]);
        argmax_axis(&x, (2, 3, 2), &mut v, &mut i);
        assert_eq!(v, [3.0, 5.0, 2.0, 0.0]);
        assert_eq!(i, [1.0, 0.0, 1.0, 0.0]);
        // Longer than one chunk, f32.
        let inner = 2500;
        let x: Vec<f32> = (0..3 * inner).map(|t| ((t * 7919) % 1000) as f32).collect();
        let (mut v, mut i) = (vec![0.0f32; inner], vec![0.0f32; inner]);
        argmax_axis(&x, (1, 3, inner), &mut v, &mut i);
        for c in 0..inner {
            let col = [x[c], x[inner + c], x[2 * inner + c]];
            let k = (0..3).fold(0, |b, k| if col[k] > col[b] { k } else { b });
            assert_eq!((v[c], i[c]), (col[k], k as f32));
        }
    }

    #[test]
    fn index_select_copies_the_chosen_slices() {
        let x: Vec<f64> = (0..2 * 3 * 2).map(|v| v as f64).collect(); // 2 × 3 × 2
        let mut out = vec![0.0; 2 * 4 * 2];
        index_select(&x, (2, 3, 2), &[2, 0, 2, 1], &mut out);
        assert_eq!(
            out,
            [4.0, 5.0, 0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 10.0, 11.0, 6.0, 7.0, 10.0, 11.0, 8.0, 9.0]
        );
    }
}
