//! Winograd convolution for 3×3, stride 1, padding 1 (Lavin & Gray 2016, "Fast Algorithms for
//! Convolutional Neural Networks"): F(m×m, 3×3) computes each m×m output tile from an
//! (m+2)×(m+2) input tile with (m+2)² multiplies per channel pair instead of 9m².
//!
//! `Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. The sum over channels is one GEMM per transform point
//! ξ ∈ (m+2)²: `M[ξ] (K×P) = U[ξ] (K×C) · V[ξ] (C×P)` over a block of P tiles. Weights are
//! transformed once ([`WinogradWeights::new`]) and reused (VGG's weights are frozen).
//! The input gradient of such a convolution is the same convolution of the output gradient with
//! the flipped, transposed weights ([`WinogradWeights::new_input_grad`]).

use super::gemm::{gemm, MatLayout};
use super::Float;
use rayon::prelude::*;

/// Output tile size m of F(m×m, 3×3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradTile {
    /// F(2×2, 3×3): 16 transform points, 2.25× fewer multiplies; exact to f32 rounding.
    F2,
    /// F(4×4, 3×3): 36 transform points, 4× fewer multiplies; slightly larger rounding error.
    F4,
}

struct Mats {
    m: usize,
    a: usize,
    bt: &'static [f64],
    g: &'static [f64],
    at: &'static [f64],
}

const F2: Mats = Mats {
    m: 2,
    a: 4,
    bt: &[
        1., 0., -1., 0., 0., 1., 1., 0., 0., -1., 1., 0., 0., 1., 0., -1.,
    ],
    g: &[1., 0., 0., 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0., 0., 1.],
    at: &[1., 1., 1., 0., 0., 1., -1., -1.],
};

const F4: Mats = Mats {
    m: 4,
    a: 6,
    bt: &[
        4., 0., -5., 0., 1., 0., //
        0., -4., -4., 1., 1., 0., //
        0., 4., -4., -1., 1., 0., //
        0., -2., -1., 2., 1., 0., //
        0., 2., -1., -2., 1., 0., //
        0., 4., 0., -5., 0., 1.,
    ],
    g: &[
        1. / 4.,
        0.,
        0., //
        -1. / 6.,
        -1. / 6.,
        -1. / 6., //
        -1. / 6.,
        1. / 6.,
        -1. / 6., //
        1. / 24.,
        1. / 12.,
        1. / 6., //
        1. / 24.,
        -1. / 12.,
        1. / 6., //
        0.,
        0.,
        1.,
    ],
    at: &[
        1., 1., 1., 1., 1., 0., //
        0., 1., -1., 2., -2., 0., //
        0., 1., 1., 4., 4., 0., //
        0., 1., -1., 8., -8., 1.,
    ],
};

fn mats(t: WinogradTile) -> &'static Mats {
    match t {
        WinogradTile::F2 => &F2,
        WinogradTile::F4 => &F4,
    }
}

/// Nonzero entries of a row-major `rows × cols` matrix, per row: (col, value).
fn sparse_rows<T: Float>(m: &[f64], rows: usize, cols: usize) -> Vec<Vec<(usize, T)>> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .filter(|&c| m[r * cols + c] != 0.0)
                .map(|c| (c, T::from_f64(m[r * cols + c])))
                .collect()
        })
        .collect()
}

/// Transformed 3×3 weights `U[ξ] = (G g Gᵀ)[ξ]`, stored as (m+2)² matrices of K×C.
pub struct WinogradWeights<T> {
    tile: WinogradTile,
    k: usize,
    c: usize,
    u: Vec<T>,
}

impl<T: Float> WinogradWeights<T> {
    /// From OIHW weights `K×C×3×3` (K output, C input channels).
    ///
    /// # Panics
    /// If `weight.len() != k·c·9`.
    pub fn new(tile: WinogradTile, weight: &[T], k: usize, c: usize) -> Self {
        assert_eq!(weight.len(), k * c * 9, "winograd: weight length");
        Self::build(tile, k, c, |o, i, y, x| {
            weight[((o * c + i) * 3 + y) * 3 + x]
        })
    }

    /// For the input gradient of the convolution with OIHW `weight` (K×C×3×3): the weights of
    /// the convolution C←K with `w'[c][k][y][x] = w[k][c][2−y][2−x]`.
    pub fn new_input_grad(tile: WinogradTile, weight: &[T], k: usize, c: usize) -> Self {
        assert_eq!(weight.len(), k * c * 9, "winograd: weight length");
        Self::build(tile, c, k, |o, i, y, x| {
            weight[((i * c + o) * 3 + (2 - y)) * 3 + (2 - x)]
        })
    }

    fn build(
        tile: WinogradTile,
        k: usize,
        c: usize,
        w: impl Fn(usize, usize, usize, usize) -> T + Sync,
    ) -> Self {
        let mt = mats(tile);
        let a = mt.a;
        let g: Vec<T> = mt.g.iter().map(|&v| T::from_f64(v)).collect();
        let mut u = vec![T::ZERO; a * a * k * c];
        // u[ξ][o][i]; parallel over output channels o.
        let per_o: Vec<Vec<T>> = (0..k)
            .into_par_iter()
            .map(|o| {
                let mut out = vec![T::ZERO; a * a * c];
                let mut tmp = vec![T::ZERO; a * 3];
                for i in 0..c {
                    // tmp = G g  (a×3)
                    for r in 0..a {
                        for x in 0..3 {
                            let mut s = T::ZERO;
                            for y in 0..3 {
                                s += g[r * 3 + y] * w(o, i, y, x);
                            }
                            tmp[r * 3 + x] = s;
                        }
                    }
                    // (G g) Gᵀ  (a×a)
                    for r in 0..a {
                        for q in 0..a {
                            let mut s = T::ZERO;
                            for x in 0..3 {
                                s += tmp[r * 3 + x] * g[q * 3 + x];
                            }
                            out[(r * a + q) * c + i] = s;
                        }
                    }
                }
                out
            })
            .collect();
        for (o, block) in per_o.iter().enumerate() {
            for xi in 0..a * a {
                u[(xi * k + o) * c..(xi * k + o + 1) * c]
                    .copy_from_slice(&block[xi * c..(xi + 1) * c]);
            }
        }
        WinogradWeights { tile, k, c, u }
    }

    /// Output channels K.
    pub fn out_channels(&self) -> usize {
        self.k
    }
    /// Input channels C.
    pub fn in_channels(&self) -> usize {
        self.c
    }
}

/// Tiles per block: as many as fit a working set (V and M) of about 24 MB, so each of the
/// (m+2)² GEMMs per block is large (matrixmultiply packs its operands on every call).
fn block_tiles(c: usize, k: usize, a: usize, tiles: usize) -> usize {
    let per_tile = a * a * (c + k) * std::mem::size_of::<f32>();
    ((24 << 20) / per_tile.max(1)).max(64).min(tiles).max(1)
}

/// `out (N×K×H×W) = conv3×3(input (N×C×H×W), stride 1, padding 1) + bias`, by Winograd.
/// `out` is overwritten. Blocks of tiles run one after another; inside a block the input
/// transform is parallel over input channels, the GEMMs over transform points and the output
/// transform over output channels.
///
/// # Panics
/// On buffer lengths that do not match `n, h, w` and the weights' K, C.
pub fn conv3x3_winograd<T: Float>(
    ww: &WinogradWeights<T>,
    input: &[T],
    bias: Option<&[T]>,
    n: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    let (k, c) = (ww.k, ww.c);
    assert_eq!(input.len(), n * c * h * w, "winograd: input length");
    assert_eq!(out.len(), n * k * h * w, "winograd: output length");
    if let Some(b) = bias {
        assert_eq!(b.len(), k, "winograd: bias length");
    }
    let mt = mats(ww.tile);
    let (m, a) = (mt.m, mt.a);
    let tiles = h.div_ceil(m) * w.div_ceil(m);
    let bt: Vec<Vec<(usize, T)>> = sparse_rows(mt.bt, a, a);
    let at: Vec<Vec<(usize, T)>> = sparse_rows(mt.at, m, a);
    let pb = block_tiles(c, k, a, tiles);
    let g = Geom { h, w, m, a };
    let mut v = vec![T::ZERO; a * a * c * pb];
    let mut mm = vec![T::ZERO; a * a * k * pb];
    for img in 0..n {
        let x = &input[img * c * h * w..(img + 1) * c * h * w];
        let y = &mut out[img * k * h * w..(img + 1) * k * h * w];
        for t0 in (0..tiles).step_by(pb) {
            let p = pb.min(tiles - t0);
            // V[ξ][ci][j]: channels are independent; each writes its own rows of V.
            let vp = SendPtr(v.as_mut_ptr());
            (0..c).into_par_iter().for_each_init(
                || Scratch::new(a, pb),
                |s, ci| {
                    let plane = &x[ci * h * w..(ci + 1) * h * w];
                    // Row (ξ, ci) of V is written by this channel's task only.
                    let row = |xi: usize| unsafe {
                        std::slice::from_raw_parts_mut({ vp }.0.add((xi * c + ci) * pb), p)
                    };
                    input_transform(plane, &g, &bt, t0, p, s, row);
                },
            );
            // M[ξ] = U[ξ] · V[ξ], one GEMM per transform point.
            mm.par_chunks_mut(k * pb)
                .zip(v.par_chunks(c * pb))
                .enumerate()
                .for_each(|(xi, (mx, vx))| {
                    gemm(
                        T::ONE,
                        &ww.u[xi * k * c..(xi + 1) * k * c],
                        MatLayout::row_major(k, c),
                        vx,
                        MatLayout {
                            rows: c,
                            cols: p,
                            rs: pb,
                            cs: 1,
                        },
                        T::ZERO,
                        mx,
                        MatLayout {
                            rows: k,
                            cols: p,
                            rs: pb,
                            cs: 1,
                        },
                    )
                });
            // Output tiles, per output channel (disjoint planes of y).
            y.par_chunks_mut(h * w).enumerate().for_each_init(
                || Scratch::new(a, pb),
                |s, (ko, plane)| {
                    let b = bias.map_or(T::ZERO, |b| b[ko]);
                    output_transform(&mm, k, ko, &g, &at, t0, p, pb, b, s, plane);
                },
            );
        }
    }
}

#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

struct Geom {
    h: usize,
    w: usize,
    m: usize,
    a: usize,
}

/// Per-thread buffers, rows indexed by tile (`[..][j]`, j < pb) so transforms vectorise.
struct Scratch<T> {
    d: Vec<T>,
    tmp: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(a: usize, pb: usize) -> Self {
        Scratch {
            d: vec![T::ZERO; a * a * pb],
            tmp: vec![T::ZERO; a * a * pb],
        }
    }
}

/// `dst[j] = Σ (coef · src_row_i[j])` over a sparse row: the transforms' inner loop, over tiles.
#[inline(always)]
fn combine<T: Float>(
    dst: &mut [T],
    row: &[(usize, T)],
    src: impl Fn(usize) -> usize,
    buf: &[T],
    p: usize,
) {
    let dst = &mut dst[..p];
    match row {
        [(i, c0)] => {
            let s0 = &buf[src(*i)..][..p];
            for (d, &x) in dst.iter_mut().zip(s0) {
                *d = *c0 * x;
            }
        }
        [(i0, c0), (i1, c1)] => {
            let (s0, s1) = (&buf[src(*i0)..][..p], &buf[src(*i1)..][..p]);
            for ((d, &x), &y) in dst.iter_mut().zip(s0).zip(s1) {
                *d = *c0 * x + *c1 * y;
            }
        }
        _ => {
            dst.fill(T::ZERO);
            for &(i, coef) in row {
                for (d, &x) in dst.iter_mut().zip(&buf[src(i)..][..p]) {
                    *d += coef * x;
                }
            }
        }
    }
}

/// For one input channel: `out(ξ)[j] = (Bᵀ d B)[ξ]` for tiles t0..t0+p, d the a×a patch
/// whose top-left corner is (ty·m − 1, tx·m − 1), zero outside the image.
fn input_transform<'v, T: Float + 'v>(
    plane: &[T],
    g: &Geom,
    bt: &[Vec<(usize, T)>],
    t0: usize,
    p: usize,
    s: &mut Scratch<T>,
    out: impl Fn(usize) -> &'v mut [T],
) {
    let (h, w, m, a) = (g.h, g.w, g.m, g.a);
    let pb = s.d.len() / (a * a);
    let tw = w.div_ceil(m);
    for j in 0..p {
        let t = t0 + j;
        let (y0, x0) = ((t / tw) * m, (t % tw) * m);
        if y0 >= 1 && x0 >= 1 && y0 + a - 1 <= h && x0 + a - 1 <= w {
            // Interior: a rows of a contiguous values.
            for r in 0..a {
                let row = &plane[(y0 + r - 1) * w + x0 - 1..][..a];
                for (q, &val) in row.iter().enumerate() {
                    s.d[(r * a + q) * pb + j] = val;
                }
            }
        } else {
            for r in 0..a {
                let yy = (y0 + r).wrapping_sub(1);
                for q in 0..a {
                    let xx = (x0 + q).wrapping_sub(1);
                    s.d[(r * a + q) * pb + j] = if yy < h && xx < w {
                        plane[yy * w + xx]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
    // tmp[r][q] = Σ_i Bᵀ[r][i] d[i][q]
    for (r, row) in bt.iter().enumerate() {
        for q in 0..a {
            combine(
                &mut s.tmp[(r * a + q) * pb..],
                row,
                |i| (i * a + q) * pb,
                &s.d,
                p,
            );
        }
    }
    // V[r][q] = Σ_i tmp[r][i] Bᵀ[q][i]
    for r in 0..a {
        for (q, row) in bt.iter().enumerate() {
            combine(out(r * a + q), row, |i| (r * a + i) * pb, &s.tmp, p);
        }
    }
}

/// For output channel `ko`: its plane's tiles t0..t0+p = Aᵀ M A + bias, clipped at the edges.
#[allow(clippy::too_many_arguments)]
fn output_transform<T: Float>(
    mm: &[T],
    k: usize,
    ko: usize,
    g: &Geom,
    at: &[Vec<(usize, T)>],
    t0: usize,
    p: usize,
    pb: usize,
    bias: T,
    s: &mut Scratch<T>,
    plane: &mut [T],
) {
    let (h, w, m, a) = (g.h, g.w, g.m, g.a);
    let tw = w.div_ceil(m);
    // tmp[r][q] = Σ_i Aᵀ[r][i] M[i][q]   (r < m)
    for (r, row) in at.iter().enumerate() {
        for q in 0..a {
            combine(
                &mut s.tmp[(r * a + q) * pb..],
                row,
                |i| ((i * a + q) * k + ko) * pb,
                mm,
                p,
            );
        }
    }
    // d[r][q] = Σ_i tmp[r][i] Aᵀ[q][i]   (r, q < m)
    for r in 0..m {
        for (q, row) in at.iter().enumerate() {
            combine(
                &mut s.d[(r * m + q) * pb..],
                row,
                |i| (r * a + i) * pb,
                &s.tmp,
                p,
            );
        }
    }
    for j in 0..p {
        let t = t0 + j;
        let (y0, x0) = ((t / tw) * m, (t % tw) * m);
        for r in 0..m.min(h - y0) {
            let out = &mut plane[(y0 + r) * w + x0..][..m.min(w - x0)];
            for (q, o) in out.iter_mut().enumerate() {
                *o = s.d[(r * m + q) * pb + j] + bias;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv2d::{conv2d_backward_input, conv2d_forward, Conv2dParams};
    use rand::{Rng, SeedableRng};

    fn params(n: usize, c: usize, h: usize, w: usize, k: usize) -> Conv2dParams {
        Conv2dParams {
            n,
            c_in: c,
            h,
            w,
            c_out: k,
            kh: 3,
            kw: 3,
            stride_h: 1,
            stride_w: 1,
            pad_h: 1,
            pad_w: 1,
        }
    }

    fn rel(a: &[f64], b: &[f64]) -> f64 {
        let d: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt();
        d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    }

    #[test]
    fn forward_and_input_grad_match_direct_convolution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for tile in [WinogradTile::F2, WinogradTile::F4] {
            for &(n, c, h, w, k) in &[
                (1, 1, 1, 1, 1),
                (1, 3, 5, 7, 4),
                (2, 5, 9, 6, 3),
                (1, 16, 13, 17, 8),
                (1, 8, 32, 24, 40),
            ] {
                let p = params(n, c, h, w, k);
                let x: Vec<f64> = (0..p.input_len())
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect();
                let wt: Vec<f64> = (0..p.weight_len())
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect();
                let b: Vec<f64> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let mut want = vec![0.0; p.output_len()];
                conv2d_forward(&p, &x, &wt, Some(&b), &mut want);
                let ww = WinogradWeights::new(tile, &wt, k, c);
                let mut got = vec![0.0; p.output_len()];
                conv3x3_winograd(&ww, &x, Some(&b), n, h, w, &mut got);
                assert!(
                    rel(&got, &want) < 1e-12,
                    "{tile:?} fwd f64 {n}x{c}x{h}x{w}→{k}: {}",
                    rel(&got, &want)
                );
                // f32
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let w32: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
                let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                let mut got32 = vec![0.0f32; p.output_len()];
                conv3x3_winograd(
                    &WinogradWeights::new(tile, &w32, k, c),
                    &x32,
                    Some(&b32),
                    n,
                    h,
                    w,
                    &mut got32,
                );
                let g64: Vec<f64> = got32.iter().map(|&v| v as f64).collect();
                let tol = if tile == WinogradTile::F2 { 1e-6 } else { 1e-5 };
                assert!(
                    rel(&g64, &want) < tol,
                    "{tile:?} fwd f32: {}",
                    rel(&g64, &want)
                );
                // input gradient
                let go: Vec<f64> = (0..p.output_len())
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect();
                let mut want_gi = vec![0.0; p.input_len()];
                conv2d_backward_input(&p, &go, &wt, &mut want_gi);
                let wg = WinogradWeights::new_input_grad(tile, &wt, k, c);
                assert_eq!((wg.out_channels(), wg.in_channels()), (c, k));
                let mut gi = vec![0.0; p.input_len()];
                conv3x3_winograd(&wg, &go, None, n, h, w, &mut gi);
                assert!(
                    rel(&gi, &want_gi) < 1e-12,
                    "{tile:?} input grad: {}",
                    rel(&gi, &want_gi)
                );
            }
        }
    }
}
