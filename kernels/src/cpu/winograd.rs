//! Winograd convolution for 3×3, stride 1, padding 1 (Lavin & Gray 2016, "Fast Algorithms for
//! Convolutional Neural Networks"): F(m×m, 3×3) computes each m×m output tile from an
//! (m+2)×(m+2) input tile with (m+2)² multiplies per channel pair instead of 9m².
//!
//! `Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. The sum over channels is one GEMM per transform point
//! ξ ∈ (m+2)²: `M[ξ] (K×P) = U[ξ] (K×C) · V[ξ] (C×P)` over a block of P tiles. Weights are
//! transformed and packed once ([`WinogradWeights::new`]) and reused (VGG's weights are
//! frozen); the input transform writes V straight into the GEMM micro-kernel's panel layout
//! ([`packed_gemm`]), so nothing is repacked per call. Transforms and the micro-kernel are
//! compiled for AVX-512, AVX2+FMA and portable code and chosen at run time ([`SimdLevel`]).
//! The input gradient of such a convolution is the same convolution of the output gradient with
//! the flipped, transposed weights. [`conv3x3_winograd_input_grad`] computes it from the
//! forward's packed U (read transposed, tiles mirrored), so one transform serves both (in
//! f32; with a bf16 input gradient, [`WinogradWeights::with_precision`], a bf16 copy of Uᵀ);
//! [`WinogradWeights::new_input_grad`] builds separate ones for channel counts it cannot serve.

use super::bf16::{self, Bf16Path, Precision};
use super::packed_gemm::{self, MR, NR};
use super::simd::SimdLevel;
use super::{is_f32, Float, SendPtr};
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

/// F(4×4, 3×3) on the points 0, 1, −1, 2, −1/2 and ∞ rather than Lavin & Gray's 0, ±1, ±2, ∞:
/// half the rounding error once the operands are rounded to bf16 (relative L2 error of a
/// convolution of ReLU-like data 1.2% instead of 2.3%), the same sparsity in Aᵀ and G and
/// 26 instead of 22 nonzeros in Bᵀ (Barabasz et al. 2020, "Error analysis and improving the
/// accuracy of Winograd convolution for deep neural networks"). Rows 1–4 of Bᵀ are scaled to
/// small integers, with G's rows divided to match.
const F4: Mats = Mats {
    m: 4,
    a: 6,
    bt: &[
        1., 1.5, -2., -1.5, 1., 0., //
        0., 2., 5., 1., -2., 0., //
        0., 2., 1., -5., 2., 0., //
        0., -1., -2., 1., 2., 0., //
        0., -2., 1., 2., -1., 0., //
        0., 1., 1.5, -2., -1.5, 1.,
    ],
    g: &[
        1.,
        0.,
        0., //
        1. / 6.,
        1. / 6.,
        1. / 6., //
        1. / 6.,
        -1. / 6.,
        1. / 6., //
        1. / 30.,
        1. / 15.,
        2. / 15., //
        16. / 15.,
        -8. / 15.,
        4. / 15., //
        0.,
        0.,
        1.,
    ],
    at: &[
        1., 1., 1., 1., 1., 0., //
        0., 1., -1., 2., -0.5, 0., //
        0., 1., 1., 4., 0.25, 0., //
        0., 1., -1., 8., -0.125, 1.,
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

/// Transformed 3×3 weights `U[ξ] = (G g Gᵀ)[ξ]`: (m+2)² matrices of K×C, each packed into
/// panels of [`MR`] rows ([`packed_gemm::pack_u`]; K padded to a multiple of MR), or, after
/// [`WinogradWeights::with_precision`], into bf16 channel-pair panels ([`bf16::pack_u`]).
pub struct WinogradWeights<T> {
    tile: WinogradTile,
    k: usize,
    c: usize,
    /// K rounded up to a multiple of MR.
    kp: usize,
    /// f32/f64 panels (empty once no use needs them: see `with_precision`).
    u: Vec<T>,
    /// The forward's and the input gradient's GEMM precision.
    fwd: Precision,
    grad: Precision,
    /// bf16: the forward's panels, per ξ `kp × ⌈C/2⌉` pairs.
    ub: Vec<u32>,
    /// bf16: the input gradient's panels of Uᵀ (pairs along K), per ξ `C × K/2`; empty unless
    /// [`shares_input_grad`].
    ubt: Vec<u32>,
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
        let kp = k.div_ceil(MR) * MR;
        // Straight into pack_u's layout: u[ξ][kb][i][r] for output channel o = kb·MR + r
        // (rows past K stay zero). Parallel over panels kb, which own disjoint ranges.
        let mut packed = vec![T::ZERO; a * a * kp * c];
        let dst = SendPtr(packed.as_mut_ptr());
        (0..kp / MR).into_par_iter().for_each(|kb| {
            let mut tmp = vec![T::ZERO; a * 3];
            for o in kb * MR..(kb * MR + MR).min(k) {
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
                            let xi = r * a + q;
                            let at = xi * kp * c + (kb * c + i) * MR + o % MR;
                            // SAFETY: `at` < a²·kp·c, and only this task writes panel kb.
                            unsafe { *{ dst }.0.add(at) = s };
                        }
                    }
                }
            }
        });
        WinogradWeights {
            tile,
            k,
            c,
            kp,
            u: packed,
            fwd: Precision::F32,
            grad: Precision::F32,
            ub: Vec::new(),
            ubt: Vec::new(),
        }
    }

    /// These weights with their GEMM operands in `forward` precision for
    /// [`conv3x3_winograd`] (and its ReLU and masked forms) and in `input_grad` precision for
    /// [`conv3x3_winograd_input_grad`]. `Bf16` rounds U to bf16 in channel pairs (for the
    /// input gradient: Uᵀ, pairs along K, built only where [`shares_input_grad`]); the
    /// convolution then rounds its transformed tiles V to bf16 too and sums in f32 ([`bf16`]
    /// module). The f32 panels are dropped when neither use needs them. Applies to f32
    /// weights; f64 ones stay as they are.
    ///
    /// Why the two are separate: rounding the *forward* to bf16 makes the loss itself noisy
    /// (≈1% per F(4×4) layer), which a style loss compares against fixed targets; in a
    /// 300-step Adam run at 256 px that noise took the loss 7–11% above f32's after step
    /// 250. Rounding only the input gradient perturbs the gradient in proportion to its size,
    /// and the loss curve stayed within 0.1% of f32's (benches/README.md).
    ///
    /// # Panics
    /// If a use that is already bf16 is asked for F32 again (bf16 is final per use).
    pub fn with_precision(mut self, forward: Precision, input_grad: Precision) -> Self {
        use Precision::{Bf16, F32};
        if !is_f32::<T>() {
            return self;
        }
        let shares = self.shares_input_grad();
        let input_grad = if shares { input_grad } else { F32 };
        assert!(
            (forward == Bf16 || self.fwd == F32) && (input_grad == Bf16 || self.grad == F32),
            "winograd: bf16 weights cannot return to f32"
        );
        // The f32 panels are still there: they are dropped only when the forward is bf16 and
        // the input gradient is bf16 or not shared, after which the assert above allows no use
        // to need them again.
        let (u, k, c, kp, a2) = (&self.u, self.k, self.c, self.kp, mats(self.tile).a.pow(2));
        // U[ξ][row][ci] in pack_u's layout (T is f32: the conversion is exact).
        let at = |xi: usize, row: usize, ci: usize| {
            u[xi * kp * c + ((row / MR) * c + ci) * MR + row % MR].to_f64() as f32
        };
        // bf16 panels of a rows × cols matrix per ξ: U for the forward, Uᵀ for the input
        // gradient.
        let pack = |rows: usize, cols: usize, get: &(dyn Fn(usize, usize, usize) -> f32 + Sync)| {
            let per_xi = rows.div_ceil(MR) * MR * cols.div_ceil(2);
            let mut out = vec![0u32; a2 * per_xi];
            out.par_chunks_mut(per_xi).enumerate().for_each(|(xi, o)| {
                bf16::pack_u(rows, cols, |r, col| get(xi, r, col), o);
            });
            out
        };
        if forward == Bf16 && self.fwd == F32 {
            self.ub = pack(k, c, &at);
        }
        if input_grad == Bf16 && self.grad == F32 {
            self.ubt = pack(c, k, &|xi, ci, row| at(xi, row, ci));
        }
        (self.fwd, self.grad) = (forward, input_grad);
        if forward == Bf16 && (input_grad == Bf16 || !shares) {
            self.u = Vec::new();
        }
        self
    }

    /// The GEMM operands' number format in the forward and in the input gradient
    /// ([`WinogradWeights::with_precision`]; the input gradient's is F32 where it is not
    /// shared).
    pub fn precision(&self) -> (Precision, Precision) {
        (self.fwd, self.grad)
    }

    /// Output channels K.
    pub fn out_channels(&self) -> usize {
        self.k
    }
    /// Input channels C.
    pub fn in_channels(&self) -> usize {
        self.c
    }
    /// Whether [`conv3x3_winograd_input_grad`] can use these weights ([`shares_input_grad`]).
    pub fn shares_input_grad(&self) -> bool {
        shares_input_grad(self.k, self.c)
    }
}

/// Whether the forward weights of a K×C convolution can serve its input gradient
/// ([`conv3x3_winograd_input_grad`]): K and C multiples of 8, the micro-kernel's row panel.
pub fn shares_input_grad(k: usize, c: usize) -> bool {
    k.is_multiple_of(MR) && c.is_multiple_of(MR)
}

/// Tiles per block: as many as fit a working set (V and M) of `budget` bytes, rounded up to a
/// multiple of the micro-kernel's [`NR`] columns.
fn block_tiles(c: usize, k: usize, a: usize, tiles: usize, budget: usize) -> usize {
    let per_tile = a * a * (c + k) * std::mem::size_of::<f32>();
    let pb = (budget / per_tile.max(1)).max(64).min(tiles).max(1);
    pb.div_ceil(NR) * NR
}

/// `out (N×K×H×W) = conv3×3(input (N×C×H×W), stride 1, padding 1) + bias`, by Winograd.
/// `out` is overwritten. Blocks of tiles run one after another; inside a block the input
/// transform is parallel over input channels, the GEMMs over transform points and the output
/// transform over output channels. Uses the best instruction set of this CPU.
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
    let (level, dims) = (SimdLevel::current(), (n, h, w));
    winograd_impl(level, ww, input, bias, dims, out, Opts::plain())
}

/// [`conv3x3_winograd`] of `input · [mask > 0]` (elementwise; `mask` has the input's shape):
/// the input gradient of a conv + ReLU pair, with the ReLU's mask applied while the tiles are
/// gathered, so the masked gradient is never stored.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_winograd_masked<T: Float>(
    ww: &WinogradWeights<T>,
    input: &[T],
    mask: &[T],
    bias: Option<&[T]>,
    n: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    let (level, dims) = (SimdLevel::current(), (n, h, w));
    let o = Opts {
        mask: Some(mask),
        ..Opts::plain()
    };
    winograd_impl(level, ww, input, bias, dims, out, o)
}

/// [`conv3x3_winograd`] followed by ReLU, fused into the output transform:
/// `out = max(conv3×3(input) + bias, 0)`.
pub fn conv3x3_winograd_relu<T: Float>(
    ww: &WinogradWeights<T>,
    input: &[T],
    bias: Option<&[T]>,
    n: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    let (level, dims) = (SimdLevel::current(), (n, h, w));
    let o = Opts {
        relu: true,
        ..Opts::plain()
    };
    winograd_impl(level, ww, input, bias, dims, out, o)
}

/// The input gradient of the convolution with the *forward* weights `ww` (K×C):
/// `grad_in (N×C×H×W) = conv3×3(grad_out · [mask > 0], flipped transposed weights)`, with
/// `grad_out` N×K×H×W and the mask (a ReLU's output, same shape) optional. It reads the
/// forward's packed U transposed, so no second set of transformed weights is built or kept
/// (for VGG-19 at F(4×4) that is ≈200 MB); the tiles are mirrored instead of the weights
/// flipped, which keeps the forward's rounding behaviour. `grad_in` is overwritten.
///
/// # Panics
/// If K or C is not a multiple of 8 ([`WinogradWeights::shares_input_grad`]; use
/// [`WinogradWeights::new_input_grad`] then), or on lengths that do not match.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_winograd_input_grad<T: Float>(
    ww: &WinogradWeights<T>,
    grad_out: &[T],
    mask: Option<&[T]>,
    n: usize,
    h: usize,
    w: usize,
    grad_in: &mut [T],
) {
    let (level, dims) = (SimdLevel::current(), (n, h, w));
    let o = Opts {
        mask,
        input_grad: true,
        ..Opts::plain()
    };
    winograd_impl(level, ww, grad_out, None, dims, grad_in, o)
}

/// Working-set budget for one block's V and M, in bytes. 8 MiB keeps a block's tiles in the
/// last-level cache between the input transform that writes them and the GEMMs that read
/// them: `nst-cli bench` at 512 px took 0.74–0.76 s/it with 8 MiB against 0.78–0.93 with
/// 24 MiB (alternated runs), at 256 px no slower, and peak RSS fell by ≈ 45 MB.
const BLOCK_BUDGET: usize = 8 << 20;

/// What [`winograd_impl`] computes besides the plain convolution.
#[derive(Clone, Copy)]
struct Opts<'a, T> {
    /// Working-set budget for one block's V and M, in bytes (tests use a small one to run
    /// several blocks of tiles).
    budget: usize,
    /// ReLU on the output.
    relu: bool,
    /// The input is used where `mask > 0`, else 0.
    mask: Option<&'a [T]>,
    /// The input gradient of the convolution `ww` describes (C←K, flipped weights), from the
    /// same packed U: the GEMMs read U transposed, and the tiles are mirrored (the input
    /// transform's Bᵀ with its columns reversed, the output's Aᵀ with its rows reversed), which
    /// turns correlation with `g` into correlation with the flipped `g`.
    input_grad: bool,
}

impl<T> Opts<'_, T> {
    fn plain() -> Self {
        Opts {
            budget: BLOCK_BUDGET,
            relu: false,
            mask: None,
            input_grad: false,
        }
    }
}

/// The convolution at instruction-set `level` (capped at what this CPU has), as `o` says.
fn winograd_impl<T: Float>(
    level: SimdLevel,
    ww: &WinogradWeights<T>,
    input: &[T],
    bias: Option<&[T]>,
    (n, h, w): (usize, usize, usize),
    out: &mut [T],
    o: Opts<'_, T>,
) {
    let level = level.min(SimdLevel::detected());
    // k: output channels of this call (rows of M), c: input channels (the GEMMs' depth).
    let (k, c, kp) = if o.input_grad {
        assert!(
            ww.shares_input_grad(),
            "winograd: K, C not multiples of {MR}"
        );
        (ww.c, ww.k, ww.c)
    } else {
        (ww.k, ww.c, ww.kp)
    };
    assert_eq!(input.len(), n * c * h * w, "winograd: input length");
    assert_eq!(out.len(), n * k * h * w, "winograd: output length");
    if let Some(b) = bias {
        assert_eq!(b.len(), k, "winograd: bias length");
    }
    if let Some(mk) = o.mask {
        assert_eq!(mk.len(), input.len(), "winograd: mask length");
    }
    let mt = mats(ww.tile);
    let (m, a) = (mt.m, mt.a);
    let tiles = h.div_ceil(m) * w.div_ceil(m);
    let (bt, at) = if o.input_grad {
        // Bᵀ with reversed columns, Aᵀ with reversed rows.
        let bt: Vec<f64> = (0..a * a)
            .map(|i| mt.bt[i / a * a + a - 1 - i % a])
            .collect();
        let at: Vec<f64> = (0..m * a)
            .map(|i| mt.at[(m - 1 - i / a) * a + i % a])
            .collect();
        (sparse_rows(&bt, a, a), sparse_rows(&at, m, a))
    } else {
        (sparse_rows(mt.bt, a, a), sparse_rows(mt.at, m, a))
    };
    let pb = block_tiles(c, k, a, tiles, o.budget);
    let groups = pb / NR;
    // The AVX-512 strided gather/scatter for F(4×4) on f32.
    let simd4 = level == SimdLevel::Avx512 && m == 4 && is_f32::<T>();
    let mirror = o.input_grad;
    let g = Geom {
        h,
        w,
        m,
        a,
        simd4,
        mirror,
    };
    // V[ξ][group][ci][NR] (the micro-kernel's panels); M[ξ][row < kp][pb].
    // Work buffers from the pool, not zeroed: every value read is written first (panel lanes
    // past the block's tiles and M rows past K hold stale values no output reads).
    // bf16 (T is f32 then): V holds channel pairs (u32), ⌈C/2⌉ rows per panel.
    let bf = Precision::Bf16 == if o.input_grad { ww.grad } else { ww.fwd };
    debug_assert!(
        !bf || is_f32::<T>(),
        "bf16 panels exist for f32 weights only"
    );
    let (path, c2) = (Bf16Path::at(level), c.div_ceil(2));
    let v_len = if bf { 0 } else { a * a * c * pb };
    let vb_len = if bf { a * a * c2 * pb } else { 0 };
    let mut v_buf = super::pool::scratch::<T>(v_len);
    let mut vb_buf = super::pool::scratch::<u32>(vb_len);
    let mut mm_buf = super::pool::scratch::<T>(a * a * kp * pb);
    let v = &mut v_buf[..v_len];
    let vb = &mut vb_buf[..vb_len];
    let mm = &mut mm_buf[..a * a * kp * pb];
    for img in 0..n {
        let x = &input[img * c * h * w..(img + 1) * c * h * w];
        let y = &mut out[img * k * h * w..(img + 1) * k * h * w];
        for t0 in (0..tiles).step_by(pb) {
            let p = pb.min(tiles - t0);
            let used_groups = p.div_ceil(NR);
            let plane = |ci: usize| &x[ci * h * w..(ci + 1) * h * w];
            let mask = |ci: usize| o.mask.map(|m| &m[img * c * h * w + ci * h * w..][..h * w]);
            if bf {
                // Per channel pair: both channels' tiles in f32, then rounded into pair rows.
                let rows = a * a * groups;
                let vp = SendPtr(vb.as_mut_ptr());
                (0..c2).into_par_iter().for_each_init(
                    || (Scratch::new(a, pb), vec![T::ZERO; 2 * rows * NR]),
                    |(s, pairs), cp| {
                        let base = SendPtr(pairs.as_mut_ptr());
                        for (half, ci) in (2 * cp..(2 * cp + 2).min(c)).enumerate() {
                            // Disjoint NR-wide rows of this task's own buffer.
                            let row = |xi: usize, grp: usize| unsafe {
                                let at = ((half * a * a + xi) * groups + grp) * NR;
                                std::slice::from_raw_parts_mut({ base }.0.add(at), NR)
                            };
                            level.run(
                                #[inline(always)]
                                || input_transform(plane(ci), mask(ci), &g, &bt, t0, p, s, row),
                            );
                        }
                        // SAFETY: T is f32 (bf16 weights exist for f32 only).
                        let f = pairs.as_ptr() as *const f32;
                        for xi in 0..a * a {
                            for grp in 0..used_groups {
                                let r = xi * groups + grp;
                                let even = unsafe { std::slice::from_raw_parts(f.add(r * NR), NR) };
                                let odd = (2 * cp + 1 < c).then(|| unsafe {
                                    std::slice::from_raw_parts(f.add((rows + r) * NR), NR)
                                });
                                // Panel row (ξ, group, cp) is written by this pair's task only.
                                let dst = unsafe {
                                    std::slice::from_raw_parts_mut(
                                        { vp }.0.add((r * c2 + cp) * NR),
                                        NR,
                                    )
                                };
                                bf16::pack_pairs(path, even, odd, dst);
                            }
                        }
                    },
                );
            } else {
                // Channels are independent; each writes its own rows of every panel.
                let vp = SendPtr(v.as_mut_ptr());
                (0..c).into_par_iter().for_each_init(
                    || Scratch::new(a, pb),
                    |s, ci| {
                        // Panel row (ξ, group, ci) is written by this channel's task only.
                        let row = |xi: usize, grp: usize| unsafe {
                            std::slice::from_raw_parts_mut(
                                { vp }.0.add(((xi * groups + grp) * c + ci) * NR),
                                NR,
                            )
                        };
                        level.run(
                            #[inline(always)]
                            || input_transform(plane(ci), mask(ci), &g, &bt, t0, p, s, row),
                        );
                    },
                );
            }
            // M[ξ] = U[ξ] · V[ξ] (or U[ξ]ᵀ · V[ξ]): per transform point, MR rows × NR tiles
            // at a time. At most 16 tiles left in a panel: half the work (deep layers).
            let cols = |grp: usize| if p - grp * NR <= NR / 2 { NR / 2 } else { NR };
            if bf {
                // SAFETY: T is f32 (bf16 weights exist for f32 only).
                let mm32 = unsafe {
                    std::slice::from_raw_parts_mut(mm.as_mut_ptr() as *mut f32, mm.len())
                };
                // Per ξ: kp × C2 pairs (input gradient: C × K/2 of Uᵀ).
                let (ub, per_xi) = (if o.input_grad { &ww.ubt } else { &ww.ub }, kp * c2);
                for_each_panel(
                    mm32,
                    vb,
                    c2,
                    kp,
                    pb,
                    used_groups,
                    |xi, kb, grp, panel, out| {
                        let up = &ub[xi * per_xi + kb * c2 * MR..][..c2 * MR];
                        bf16::kernel(path, c2, up, panel, out, pb, cols(grp));
                    },
                );
            } else {
                for_each_panel(mm, v, c, kp, pb, used_groups, |xi, kb, grp, panel, out| {
                    let u = &ww.u[xi * ww.kp * ww.c..(xi + 1) * ww.kp * ww.c];
                    if o.input_grad {
                        let (up, us) = (&u[kb * MR * MR..], ww.c * MR);
                        packed_gemm::kernel_t(level, c / MR, up, us, panel, out, pb, cols(grp));
                    } else {
                        let up = &u[kb * c * MR..(kb + 1) * c * MR];
                        if cols(grp) < NR {
                            packed_gemm::kernel_half(level, c, up, panel, out, pb);
                        } else {
                            packed_gemm::kernel(level, c, up, panel, out, pb);
                        }
                    }
                });
            }
            // Output tiles, per output channel (disjoint planes of y).
            y.par_chunks_mut(h * w).enumerate().for_each_init(
                || Scratch::new(a, pb),
                |s, (ko, plane)| {
                    let b = bias.map_or(T::ZERO, |b| b[ko]);
                    let e = Epilogue {
                        bias: b,
                        relu: o.relu,
                    };
                    level.run(
                        #[inline(always)]
                        || output_transform(mm, kp, ko, &g, &at, t0, p, pb, e, s, plane),
                    );
                },
            );
        }
    }
    super::pool::recycle(v_buf);
    super::pool::recycle(vb_buf);
    super::pool::recycle(mm_buf);
}

/// `f(ξ, kb, grp, panel, out)` for every transform point ξ (in parallel over ξ), row panel
/// kb < kp/MR and tile group grp < `used_groups`: `panel` is the group's V panel (`depth` rows
/// of NR, from V[ξ] of `depth·pb` elements), `out` is M[ξ] (kp rows of pb) from row kb·MR,
/// column grp·NR.
fn for_each_panel<M: Send, V: Sync>(
    mm: &mut [M],
    v: &[V],
    depth: usize,
    kp: usize,
    pb: usize,
    used_groups: usize,
    f: impl Fn(usize, usize, usize, &[V], &mut [M]) + Sync,
) {
    mm.par_chunks_mut(kp * pb)
        .zip(v.par_chunks(depth * pb))
        .enumerate()
        .for_each(|(xi, (mx, vx))| {
            for kb in 0..kp / MR {
                for grp in 0..used_groups {
                    let panel = &vx[grp * depth * NR..(grp + 1) * depth * NR];
                    f(xi, kb, grp, panel, &mut mx[kb * MR * pb + grp * NR..]);
                }
            }
        });
}

/// What the output transform adds after `Aᵀ M A`: the channel's bias, then ReLU if asked.
#[derive(Clone, Copy)]
struct Epilogue<T> {
    bias: T,
    relu: bool,
}

// `simd4` and `mirror` are read by x86-64 code only.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Geom {
    h: usize,
    w: usize,
    m: usize,
    a: usize,
    /// F(4×4) on f32 with AVX-512: the tile gather and scatter use [`gather4_avx512`] and
    /// [`scatter4_avx512`], and the transforms [`input4_avx512`] and [`output4_avx512`].
    simd4: bool,
    /// The transforms are mirrored (an input gradient; [`Opts::input_grad`]).
    mirror: bool,
}

/// `Bᵀ x` for F(4×4)'s Bᵀ (the [`F4`] constant), written out for AVX-512.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bt4_avx512(x: [std::arch::x86_64::__m512; 6]) -> [std::arch::x86_64::__m512; 6] {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let (add, sub, fma) = (_mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps);
    let two = c(2.0);
    [
        // x0 + 1.5 x1 − 2 x2 − 1.5 x3 + x4
        fma(
            c(1.5),
            sub(x[1], x[3]),
            _mm512_fnmadd_ps(two, x[2], add(x[0], x[4])),
        ),
        // 2 x1 + 5 x2 + x3 − 2 x4
        fma(c(5.0), x[2], fma(two, sub(x[1], x[4]), x[3])),
        // 2 x1 + x2 − 5 x3 + 2 x4
        _mm512_fnmadd_ps(c(5.0), x[3], fma(two, add(x[1], x[4]), x[2])),
        // −x1 − 2 x2 + x3 + 2 x4
        fma(two, sub(x[4], x[2]), sub(x[3], x[1])),
        // −2 x1 + x2 + 2 x3 − x4
        fma(two, sub(x[3], x[1]), sub(x[2], x[4])),
        // x1 + 1.5 x2 − 2 x3 − 1.5 x4 + x5
        fma(
            c(1.5),
            sub(x[2], x[4]),
            _mm512_fnmadd_ps(two, x[3], add(x[1], x[5])),
        ),
    ]
}

/// `Aᵀ x` for F(4×4)'s Aᵀ (the [`F4`] constant), written out for AVX-512.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn at4_avx512(x: [std::arch::x86_64::__m512; 6]) -> [std::arch::x86_64::__m512; 4] {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let (add, sub, fma) = (_mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps);
    let (s12, d12) = (add(x[1], x[2]), sub(x[1], x[2]));
    [
        // x0 + x1 + x2 + x3 + x4
        add(add(x[0], s12), add(x[3], x[4])),
        // x1 − x2 + 2 x3 − x4/2
        fma(c(2.0), x[3], fma(c(-0.5), x[4], d12)),
        // x1 + x2 + 4 x3 + x4/4
        fma(c(4.0), x[3], fma(c(0.25), x[4], s12)),
        // x1 − x2 + 8 x3 − x4/8 + x5
        fma(c(8.0), x[3], fma(c(-0.125), x[4], add(d12, x[5]))),
    ]
}

/// F(4×4) input transform `V = Bᵀ d B` of 16 tiles in registers: patch element (i, q) of
/// the 16 tiles is at `d + (i·6 + q)·pb`, V[ξ] goes to `v[ξ] + off`. `MIRROR` (an input
/// gradient: Bᵀ with reversed columns) is the same transform of the patch reversed in both
/// directions.
///
/// # Safety
/// AVX-512F; `d + (i·6 + q)·pb` readable and each `v[ξ] + off` writable for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // r indexes tmp's second dimension
unsafe fn input4_avx512<const MIRROR: bool>(
    d: *const f32,
    pb: usize,
    v: &[*mut f32; 36],
    off: usize,
) {
    use std::arch::x86_64::*;
    let rev = |i: usize| if MIRROR { 5 - i } else { i };
    // tmp[q][r] = Σ_i Bᵀ[r][i] d[i][q], column by column.
    let mut tmp = [[_mm512_setzero_ps(); 6]; 6];
    for q in 0..6 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = _mm512_loadu_ps(d.add((rev(i) * 6 + rev(q)) * pb));
        }
        tmp[q] = bt4_avx512(x);
    }
    // V[r][q] = Σ_i tmp[i][r] Bᵀ[q][i], row by row.
    for r in 0..6 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = tmp[i][r];
        }
        let y = bt4_avx512(x);
        for q in 0..6 {
            _mm512_storeu_ps(v[r * 6 + q].add(off), y[q]);
        }
    }
}

/// F(4×4) output transform `Y = Aᵀ M A` of 16 tiles in registers: M[ξ]'s 16 values are at
/// `mm + ξ·stride`, output element (r, q) goes to `y + (r·4 + q)·pb`. `MIRROR` (Aᵀ with
/// reversed rows) is the same transform with the output reversed in both directions.
///
/// # Safety
/// AVX-512F; `mm + ξ·stride` readable and `y + (r·4 + q)·pb` writable for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // r indexes tmp's second dimension
unsafe fn output4_avx512<const MIRROR: bool>(
    mm: *const f32,
    stride: usize,
    y: *mut f32,
    pb: usize,
) {
    use std::arch::x86_64::*;
    let rev = |i: usize| if MIRROR { 3 - i } else { i };
    // tmp[q][r] = Σ_i Aᵀ[r][i] M[i][q], column by column.
    let mut tmp = [[_mm512_setzero_ps(); 4]; 6];
    for q in 0..6 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = _mm512_loadu_ps(mm.add((i * 6 + q) * stride));
        }
        tmp[q] = at4_avx512(x);
    }
    for r in 0..4 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = tmp[i][r];
        }
        let out = at4_avx512(x);
        for q in 0..4 {
            _mm512_storeu_ps(y.add((rev(r) * 4 + rev(q)) * pb), out[q]);
        }
    }
}

/// `row[4j + q] = epilogue(src[q][j])` for q < 4, j < len (the inverse of
/// [`gather4_avx512`] for F(4×4)'s 4×4 output tiles), with `+ bias` and ReLU if `relu`.
///
/// # Safety
/// AVX-512F; `src[q]` readable for `len` floats each, `row` writable for `4·len` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scatter4_avx512(src: [*const f32; 4], len: usize, bias: f32, relu: bool, row: *mut f32) {
    use std::arch::x86_64::*;
    let b = _mm512_set1_ps(bias);
    let zero = _mm512_setzero_ps();
    let ep = |v: __m512| {
        let y = _mm512_add_ps(v, b);
        if relu {
            _mm512_max_ps(y, zero)
        } else {
            y
        }
    };
    // Stage 1 pairs (q0, q1) and (q2, q3) tile by tile; stage 2 pairs those pairs, giving four
    // consecutive tiles' 4 values per 128-bit lane.
    let i_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let i_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let j_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    let j_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    let steps = len / 16;
    for s in 0..steps {
        let v: [__m512; 4] = std::array::from_fn(|q| ep(_mm512_loadu_ps(src[q].add(16 * s))));
        // a: q0,q1 interleaved (tiles 0..8 | 8..16); c: q2,q3 likewise.
        let (a0, a1) = (
            _mm512_permutex2var_ps(v[0], i_lo, v[1]),
            _mm512_permutex2var_ps(v[0], i_hi, v[1]),
        );
        let (c0, c1) = (
            _mm512_permutex2var_ps(v[2], i_lo, v[3]),
            _mm512_permutex2var_ps(v[2], i_hi, v[3]),
        );
        let out = row.add(64 * s);
        _mm512_storeu_ps(out, _mm512_permutex2var_ps(a0, j_lo, c0));
        _mm512_storeu_ps(out.add(16), _mm512_permutex2var_ps(a0, j_hi, c0));
        _mm512_storeu_ps(out.add(32), _mm512_permutex2var_ps(a1, j_lo, c1));
        _mm512_storeu_ps(out.add(48), _mm512_permutex2var_ps(a1, j_hi, c1));
    }
    for j in steps * 16..len {
        for (q, sp) in src.iter().enumerate() {
            let y = *sp.add(j) + bias;
            // NaN → 0 under ReLU, as `max` does above.
            *row.add(4 * j + q) = if !relu || y > 0.0 { y } else { 0.0 };
        }
    }
}

/// `dst[q][j] = row[4j + q]` for q < 6, j < len: the six columns of F(4×4)'s 6-wide tiles
/// at stride 4, sixteen tiles per step with two-source permutes.
///
/// # Safety
/// AVX-512F; `row` readable for `4·len + 4` floats (rounded up to whole steps of 64 + 4),
/// `dst[q]` writable for `len` floats each and disjoint.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather4_avx512(row: *const f32, len: usize, dst: [*mut f32; 6]) {
    use std::arch::x86_64::*;
    let steps = len / 16;
    for b in 0..steps {
        let p = row.add(64 * b);
        for (shift, qs) in [(0, 0..4), (4, 4..6)] {
            let v: [__m512; 4] = std::array::from_fn(|i| _mm512_loadu_ps(p.add(shift + 16 * i)));
            for q in qs {
                let ph = (q - shift) as i32;
                // Lanes 0..8 pick ph, ph+4, …, ph+28 from the pair's 32 floats.
                let idx = _mm512_setr_epi32(
                    ph,
                    ph + 4,
                    ph + 8,
                    ph + 12,
                    ph + 16,
                    ph + 20,
                    ph + 24,
                    ph + 28,
                    ph,
                    ph + 4,
                    ph + 8,
                    ph + 12,
                    ph + 16,
                    ph + 20,
                    ph + 24,
                    ph + 28,
                );
                let lo = _mm512_permutex2var_ps(v[0], idx, v[1]);
                let hi = _mm512_permutex2var_ps(v[2], idx, v[3]);
                // 128-bit lanes 0, 1 of lo, then 0, 1 of hi.
                let out = _mm512_shuffle_f32x4::<0b01_00_01_00>(lo, hi);
                _mm512_storeu_ps(dst[q].add(16 * b), out);
            }
        }
    }
    for j in steps * 16..len {
        for (q, d) in dst.iter().enumerate() {
            *d.add(j) = *row.add(4 * j + q);
        }
    }
}

/// Per-thread buffers, rows indexed by tile (`[..][j]`, j < pb) so transforms vectorise.
struct Scratch<T> {
    d: Vec<T>,
    tmp: Vec<T>,
    /// One image row segment (input: zero-padded source; output: values before clipping).
    row: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(a: usize, pb: usize) -> Self {
        Scratch {
            d: vec![T::ZERO; a * a * pb],
            // Sized on first use: the unrolled AVX-512 F(4×4) transforms need none.
            tmp: Vec::new(),
            row: Vec::new(),
        }
    }
}

/// The tiles t0..t0+p split into runs within one row of tiles: (first j, tile row, first tile
/// column, run length).
fn tile_runs(t0: usize, p: usize, tw: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut j = 0;
    std::iter::from_fn(move || {
        if j >= p {
            return None;
        }
        let t = t0 + j;
        let (ty, tx0) = (t / tw, t % tw);
        let len = (tw - tx0).min(p - j);
        let run = (j, ty, tx0, len);
        j += len;
        Some(run)
    })
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
        [(i0, c0), (i1, c1), (i2, c2)] => {
            let (s0, s1, s2) = (
                &buf[src(*i0)..][..p],
                &buf[src(*i1)..][..p],
                &buf[src(*i2)..][..p],
            );
            for (((d, &x), &y), &z) in dst.iter_mut().zip(s0).zip(s1).zip(s2) {
                *d = *c0 * x + *c1 * y + *c2 * z;
            }
        }
        [(i0, c0), (i1, c1), (i2, c2), (i3, c3)] => {
            let (s0, s1, s2, s3) = (
                &buf[src(*i0)..][..p],
                &buf[src(*i1)..][..p],
                &buf[src(*i2)..][..p],
                &buf[src(*i3)..][..p],
            );
            for ((((d, &x), &y), &z), &u) in dst.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3) {
                *d = *c0 * x + *c1 * y + *c2 * z + *c3 * u;
            }
        }
        [(i0, c0), (i1, c1), (i2, c2), (i3, c3), (i4, c4)] => {
            let (s0, s1, s2, s3, s4) = (
                &buf[src(*i0)..][..p],
                &buf[src(*i1)..][..p],
                &buf[src(*i2)..][..p],
                &buf[src(*i3)..][..p],
                &buf[src(*i4)..][..p],
            );
            let it = dst.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3).zip(s4);
            for (((((d, &x), &y), &z), &u), &v) in it {
                *d = *c0 * x + *c1 * y + *c2 * z + *c3 * u + *c4 * v;
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

/// For one input channel: `out(ξ, grp)[j] = (Bᵀ d B)[ξ]` for tile t0 + grp·NR + j (j < NR;
/// lanes past the block's p tiles hold stale finite values that no output reads), d the a×a
/// patch whose top-left corner is (ty·m − 1, tx·m − 1), zero outside the image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn input_transform<'v, T: Float + 'v>(
    plane: &[T],
    mask: Option<&[T]>,
    g: &Geom,
    bt: &[Vec<(usize, T)>],
    t0: usize,
    p: usize,
    s: &mut Scratch<T>,
    out: impl Fn(usize, usize) -> &'v mut [T],
) {
    let (h, w, m, a) = (g.h, g.w, g.m, g.a);
    let pb = s.d.len() / (a * a);
    let tw = w.div_ceil(m);
    // d[r][q][j] = padded input (y0 + r − 1, x0 + q − 1): per run of tiles in one tile row,
    // copy each needed image row once (zero-padded), then gather with stride m.
    for (j, ty, tx0, len) in tile_runs(t0, p, tw) {
        let span = len * m + 2;
        // 64 floats of slack: the vector gather reads a little past the span.
        s.row.resize((span + 64).max(s.row.len()), T::ZERO);
        let x_start = (tx0 * m) as isize - 1;
        for r in 0..a {
            let yy = (ty * m + r).wrapping_sub(1);
            let rb = &mut s.row[..span];
            if yy < h {
                let src = &plane[yy * w..(yy + 1) * w];
                // rb[i] = src[x_start + i] where 0 ≤ x_start + i < w, else 0.
                let lo = (-x_start).max(0) as usize;
                let hi = ((w as isize - x_start).max(0) as usize).min(span);
                rb[..lo.min(span)].fill(T::ZERO);
                if hi > lo {
                    let x0 = (x_start + lo as isize) as usize;
                    let src = &src[x0..x0 + (hi - lo)];
                    match mask {
                        // The input where the mask is positive, else 0 (a ReLU's backward).
                        Some(mk) => {
                            let mk = &mk[yy * w + x0..][..hi - lo];
                            for ((d, &v), &k) in rb[lo..hi].iter_mut().zip(src).zip(mk) {
                                *d = if k > T::ZERO { v } else { T::ZERO };
                            }
                        }
                        None => rb[lo..hi].copy_from_slice(src),
                    }
                }
                rb[hi.max(lo)..].fill(T::ZERO);
            } else {
                rb.fill(T::ZERO);
            }
            #[cfg(target_arch = "x86_64")]
            if g.simd4 {
                let d = s.d.as_mut_ptr() as *mut f32;
                let dst = std::array::from_fn(|q| unsafe { d.add((r * a + q) * pb + j) });
                // SAFETY: AVX-512 detected (simd4), T is f32, `row` holds span + 64 floats,
                // the six destinations are distinct rows of d, each with len ≤ pb − j floats.
                unsafe { gather4_avx512(s.row.as_ptr() as *const f32, len, dst) };
                continue;
            }
            for q in 0..a {
                let dst = &mut s.d[(r * a + q) * pb + j..][..len];
                for (jj, d) in dst.iter_mut().enumerate() {
                    *d = rb[jj * m + q];
                }
            }
        }
    }
    let groups = p.div_ceil(NR);
    let pp = groups * NR;
    #[cfg(target_arch = "x86_64")]
    if g.simd4 {
        let d = s.d.as_ptr() as *const f32;
        for grp in 0..groups {
            let mut rows = [std::ptr::null_mut::<f32>(); 36];
            for (xi, r) in rows.iter_mut().enumerate() {
                *r = out(xi, grp).as_mut_ptr() as *mut f32;
            }
            for half in 0..NR / 16 {
                // SAFETY: AVX-512 detected (simd4), T is f32; d has a² rows of pb floats and
                // grp·NR + 16·half + 16 ≤ ⌈p/NR⌉·NR ≤ pb (pb is a multiple of NR); each panel
                // row holds NR floats, of which this writes 16 from 16·half.
                unsafe {
                    let dj = d.add(grp * NR + 16 * half);
                    if g.mirror {
                        input4_avx512::<true>(dj, pb, &rows, 16 * half)
                    } else {
                        input4_avx512::<false>(dj, pb, &rows, 16 * half)
                    }
                }
            }
        }
        return;
    }
    s.tmp.resize(a * a * pb, T::ZERO);
    // tmp[r][q] = Σ_i Bᵀ[r][i] d[i][q]
    for (r, row) in bt.iter().enumerate() {
        for q in 0..a {
            combine(
                &mut s.tmp[(r * a + q) * pb..],
                row,
                |i| (i * a + q) * pb,
                &s.d,
                pp,
            );
        }
    }
    // V[r][q] = Σ_i tmp[r][i] Bᵀ[q][i], NR tiles at a time into the panels.
    for r in 0..a {
        for (q, row) in bt.iter().enumerate() {
            for grp in 0..groups {
                combine(
                    out(r * a + q, grp),
                    row,
                    |i| (r * a + i) * pb + grp * NR,
                    &s.tmp,
                    NR,
                );
            }
        }
    }
}

/// For output channel `ko` (row ko of each M[ξ], which has `k` rows): its plane's tiles
/// t0..t0+p = Aᵀ M A + bias, clipped at the edges.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform<T: Float>(
    mm: &[T],
    k: usize,
    ko: usize,
    g: &Geom,
    at: &[Vec<(usize, T)>],
    t0: usize,
    p: usize,
    pb: usize,
    e: Epilogue<T>,
    s: &mut Scratch<T>,
    plane: &mut [T],
) {
    let (h, w, m, a) = (g.h, g.w, g.m, g.a);
    let tw = w.div_ceil(m);
    let mut fused = false;
    #[cfg(target_arch = "x86_64")]
    if g.simd4 {
        fused = true;
        let (mp, d) = (mm.as_ptr() as *const f32, s.d.as_mut_ptr() as *mut f32);
        for j in (0..p).step_by(16) {
            // SAFETY: AVX-512 detected (simd4), T is f32; M[ξ] rows and d's rows hold pb
            // floats, pb a multiple of NR, so j + 16 ≤ pb (lanes past p are never scattered).
            unsafe {
                let (mj, dj) = (mp.add(ko * pb + j), d.add(j));
                if g.mirror {
                    output4_avx512::<true>(mj, k * pb, dj, pb)
                } else {
                    output4_avx512::<false>(mj, k * pb, dj, pb)
                }
            }
        }
    }
    if !fused {
        s.tmp.resize(a * a * pb, T::ZERO);
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
    }
    // Per run of tiles in one tile row: interleave each output row (stride m), then copy it
    // into the plane, clipped at the right and bottom edges.
    for (j, ty, tx0, len) in tile_runs(t0, p, tw) {
        let span = len * m;
        s.row.resize(span.max(s.row.len()), T::ZERO);
        let (y0, x0) = (ty * m, tx0 * m);
        let cols = span.min(w - x0);
        for r in 0..m.min(h - y0) {
            #[cfg(target_arch = "x86_64")]
            if g.simd4 {
                let d = s.d.as_ptr() as *const f32;
                let src = std::array::from_fn(|q| unsafe { d.add((r * m + q) * pb + j) });
                let bias: f32 = e.bias.to_f64() as f32;
                // Unclipped rows go straight into the plane, clipped ones through `row`.
                let dst_row = &mut plane[(y0 + r) * w + x0..][..cols];
                let dst = if cols == span {
                    dst_row.as_mut_ptr() as *mut f32
                } else {
                    s.row.as_mut_ptr() as *mut f32
                };
                // SAFETY: AVX-512 detected (simd4), T is f32, `dst` holds span floats (the
                // plane's row from x0 when cols == span, else `row`), the four sources are
                // rows of d with len ≤ pb − j floats each.
                unsafe { scatter4_avx512(src, len, bias, e.relu, dst) };
                if cols < span {
                    dst_row.copy_from_slice(&s.row[..cols]);
                }
                continue;
            }
            let rb = &mut s.row[..span];
            for q in 0..m {
                let src = &s.d[(r * m + q) * pb + j..][..len];
                if e.relu {
                    for (jj, &v) in src.iter().enumerate() {
                        let y = v + e.bias;
                        rb[jj * m + q] = if y > T::ZERO { y } else { T::ZERO };
                    }
                } else {
                    for (jj, &v) in src.iter().enumerate() {
                        rb[jj * m + q] = v + e.bias;
                    }
                }
            }
            plane[(y0 + r) * w + x0..][..cols].copy_from_slice(&rb[..cols]);
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
                (2, 17, 38, 35, 9),
                (2, 24, 11, 9, 16),
                (1, 64, 21, 70, 8),
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
                let ww32 = WinogradWeights::new(tile, &w32, k, c);
                for level in SimdLevel::available() {
                    // The default budget (one block) and a tiny one (several blocks of 64 tiles).
                    for budget in [BLOCK_BUDGET, 1] {
                        let mut got32 = vec![0.0f32; p.output_len()];
                        let o = Opts {
                            budget,
                            ..Opts::plain()
                        };
                        let dims = (n, h, w);
                        winograd_impl(level, &ww32, &x32, Some(&b32), dims, &mut got32, o);
                        let g64: Vec<f64> = got32.iter().map(|&v| v as f64).collect();
                        let tol = if tile == WinogradTile::F2 { 1e-6 } else { 1e-5 };
                        assert!(
                            rel(&g64, &want) < tol,
                            "{tile:?} {level:?} budget {budget} fwd f32 {n}x{c}x{h}x{w}→{k}: {}",
                            rel(&g64, &want)
                        );
                    }
                }
                // fused ReLU
                let mut gr = vec![0.0f32; p.output_len()];
                conv3x3_winograd_relu(&ww32, &x32, Some(&b32), n, h, w, &mut gr);
                let gr64: Vec<f64> = gr.iter().map(|&v| v as f64).collect();
                let want_r: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
                assert!(
                    gr.iter().all(|&v| v >= 0.0),
                    "{tile:?} relu output negative"
                );
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let worst = gr64
                    .iter()
                    .zip(&want_r)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    worst <= 1e-5 * scale,
                    "{tile:?} fused relu: max error {worst}"
                );
                // masked input (as a ReLU backward feeds it)
                let mk: Vec<f32> = (0..x32.len())
                    .map(|i| if i % 3 == 0 { -1.0 } else { 0.5 })
                    .collect();
                let xm: Vec<f32> = x32
                    .iter()
                    .zip(&mk)
                    .map(|(&v, &m)| if m > 0.0 { v } else { 0.0 })
                    .collect();
                let (mut a, mut bm) = (vec![0.0f32; p.output_len()], vec![0.0f32; p.output_len()]);
                conv3x3_winograd(&ww32, &xm, None, n, h, w, &mut a);
                conv3x3_winograd_masked(&ww32, &x32, &mk, None, n, h, w, &mut bm);
                assert_eq!(a, bm, "{tile:?} masked input");
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
                // The input gradient from the forward weights (transposed U, mirrored tiles).
                assert_eq!(ww.shares_input_grad(), k % 8 == 0 && c % 8 == 0);
                if !ww.shares_input_grad() {
                    continue;
                }
                let mut gs = vec![0.0; p.input_len()];
                conv3x3_winograd_input_grad(&ww, &go, None, n, h, w, &mut gs);
                assert!(
                    rel(&gs, &want_gi) < 1e-12,
                    "{tile:?} shared input grad f64 {n}x{c}x{h}x{w}→{k}: {}",
                    rel(&gs, &want_gi)
                );
                let go32: Vec<f32> = go.iter().map(|&v| v as f32).collect();
                let mko: Vec<f32> = (0..go.len())
                    .map(|i| if i % 5 == 1 { 0.0 } else { 1.0 })
                    .collect();
                let go_m: Vec<f64> = go
                    .iter()
                    .zip(&mko)
                    .map(|(&v, &m)| if m > 0.0 { v } else { 0.0 })
                    .collect();
                let mut want_m = vec![0.0; p.input_len()];
                conv2d_backward_input(&p, &go_m, &wt, &mut want_m);
                for level in SimdLevel::available() {
                    for budget in [BLOCK_BUDGET, 1] {
                        for mask in [None, Some(&mko[..])] {
                            let mut g32 = vec![f32::NAN; p.input_len()];
                            let o = Opts {
                                budget,
                                mask,
                                input_grad: true,
                                ..Opts::plain()
                            };
                            winograd_impl(level, &ww32, &go32, None, (n, h, w), &mut g32, o);
                            let g64: Vec<f64> = g32.iter().map(|&v| v as f64).collect();
                            let want = if mask.is_some() { &want_m } else { &want_gi };
                            let tol = if tile == WinogradTile::F2 { 1e-6 } else { 1e-5 };
                            assert!(
                                rel(&g64, want) < tol,
                                "{tile:?} {level:?} budget {budget} mask {} shared input grad \
                                 f32 {n}x{c}x{h}x{w}→{k}: {}",
                                mask.is_some(),
                                rel(&g64, want)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_forward_and_input_grad_stay_within_bf16_rounding_of_direct_convolution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        // (n, c, h, w, k): odd C (a zero-padded pair), K not a multiple of 8, and shared
        // input gradients (K, C multiples of 8).
        for &(n, c, h, w, k) in &[
            (1, 3, 5, 7, 4),
            (2, 17, 38, 35, 9),
            (1, 64, 21, 70, 8),
            (2, 24, 11, 9, 16),
        ] {
            let p = params(n, c, h, w, k);
            let x: Vec<f64> = (0..p.input_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let wt: Vec<f64> = (0..p.weight_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let b: Vec<f64> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let go: Vec<f64> = (0..p.output_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let mut want = vec![0.0; p.output_len()];
            conv2d_forward(&p, &x, &wt, Some(&b), &mut want);
            let mut want_gi = vec![0.0; p.input_len()];
            conv2d_backward_input(&p, &go, &wt, &mut want_gi);
            let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let (x32, w32, b32, go32) = (f32s(&x), f32s(&wt), f32s(&b), f32s(&go));
            for tile in [WinogradTile::F2, WinogradTile::F4] {
                use Precision::{Bf16, F32};
                let w_f32 = WinogradWeights::new(tile, &w32, k, c);
                let shares = w_f32.shares_input_grad();
                let ww = WinogradWeights::new(tile, &w32, k, c).with_precision(Bf16, Bf16);
                assert_eq!(ww.precision(), (Bf16, if shares { Bf16 } else { F32 }));
                assert!(ww.u.is_empty(), "the f32 panels are dropped when unused");
                // Only the input gradient in bf16: the forward is exactly the f32 one.
                let wg_only = WinogradWeights::new(tile, &w32, k, c).with_precision(F32, Bf16);
                let (mut y0, mut y1) = (vec![0f32; p.output_len()], vec![0f32; p.output_len()]);
                conv3x3_winograd(&w_f32, &x32, Some(&b32), n, h, w, &mut y0);
                conv3x3_winograd(&wg_only, &x32, Some(&b32), n, h, w, &mut y1);
                assert_eq!(
                    y0, y1,
                    "{tile:?} forward of input-gradient-only bf16 weights"
                );
                // bf16 keeps 8 significant bits (relative rounding 2⁻⁹ per operand). Measured
                // here: ≈0.4% (F2) and ≈1.7% (F4, whose transforms amplify rounding) relative
                // L2 error on random data; f32 gives ≈1e-6, so `lo` shows the rounding happens.
                let lo = 1e-3;
                let hi = if tile == WinogradTile::F2 { 8e-3 } else { 3e-2 };
                for level in SimdLevel::available() {
                    for budget in [BLOCK_BUDGET, 1] {
                        let mut got = vec![f32::NAN; p.output_len()];
                        let o = Opts {
                            budget,
                            ..Opts::plain()
                        };
                        winograd_impl(level, &ww, &x32, Some(&b32), (n, h, w), &mut got, o);
                        let e = rel(&got.iter().map(|&v| v as f64).collect::<Vec<_>>(), &want);
                        assert!(
                            lo < e && e < hi,
                            "{tile:?} {level:?} budget {budget} bf16 fwd {n}x{c}x{h}x{w}→{k}: {e}"
                        );
                    }
                }
                // The input gradient: from the forward's pair panels (Uᵀ, pairs along K)
                // where shared, else from its own bf16 transforms.
                let mut gi = vec![f32::NAN; p.input_len()];
                if shares {
                    // The output gradient where a ReLU mask is positive (every 5th zeroed).
                    let mko: Vec<f32> = (0..go.len()).map(|i| (i % 5 != 1) as u8 as f32).collect();
                    let go_m: Vec<f64> = go.iter().zip(&mko).map(|(&v, &m)| v * m as f64).collect();
                    let mut want_m = vec![0.0; p.input_len()];
                    conv2d_backward_input(&p, &go_m, &wt, &mut want_m);
                    for level in SimdLevel::available() {
                        for (ws, budget, mask) in [
                            (&ww, BLOCK_BUDGET, None),
                            (&wg_only, BLOCK_BUDGET, None),
                            (&wg_only, 1, None),
                            (&wg_only, 1, Some(&mko[..])),
                        ] {
                            let o = Opts {
                                budget,
                                mask,
                                input_grad: true,
                                ..Opts::plain()
                            };
                            winograd_impl(level, ws, &go32, None, (n, h, w), &mut gi, o);
                            let want = if mask.is_some() { &want_m } else { &want_gi };
                            let e = rel(&gi.iter().map(|&v| v as f64).collect::<Vec<_>>(), want);
                            let masked = mask.is_some();
                            assert!(
                                lo < e && e < hi,
                                "{tile:?} {level:?} budget {budget} mask {masked} bf16 input grad: {e}"
                            );
                        }
                    }
                } else {
                    let wg = WinogradWeights::new_input_grad(tile, &w32, k, c)
                        .with_precision(Bf16, Bf16);
                    conv3x3_winograd(&wg, &go32, None, n, h, w, &mut gi);
                    let e = rel(&gi.iter().map(|&v| v as f64).collect::<Vec<_>>(), &want_gi);
                    assert!(lo < e && e < hi, "{tile:?} bf16 input grad: {e}");
                }
            }
        }
    }
}
