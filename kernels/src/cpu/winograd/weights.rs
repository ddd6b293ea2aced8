//! [`WinogradWeights`]: the weights' transform `G g Gᵀ`, packed into the micro-kernel's panels,
//! and their bf16 copies ([`WinogradWeights::with_precision`]).

use super::matrices::mats;
use super::{shares_input_grad, WinogradTile};
use crate::cpu::amx;
use crate::cpu::bf16::{self, Precision};
use crate::cpu::packed_gemm::MR;
use crate::cpu::{is_f32, Float, SendPtr};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Elements between two row panels of U beyond their `C·MR` (64 bytes in f32). Without them
/// the panels lie `C·32` bytes apart, a multiple of 4 KiB from C = 128 up, and the input
/// gradient's transposed GEMM, which reads one MR×MR block from each panel, had all its
/// blocks in one cache set (`packed_gemm_speed`, C = 128 and 512: `kernel_t` 3–8% faster).
pub const U_PAD: usize = 16;

/// Transformed 3×3 weights `U[ξ] = (G g Gᵀ)[ξ]`: (m+2)² matrices of K×C, each packed into
/// panels of [`MR`] rows ([`packed_gemm::pack_u`](crate::cpu::packed_gemm::pack_u); K padded to a multiple of MR), or, after
/// [`WinogradWeights::with_precision`], into bf16 channel-pair panels ([`bf16::pack_u`]).
pub struct WinogradWeights<T> {
    pub(super) tile: WinogradTile,
    pub(super) k: usize,
    pub(super) c: usize,
    /// K rounded up to a multiple of MR.
    pub(super) kp: usize,
    /// f32/f64 panels (empty once no use needs them: see `with_precision`): per ξ, kp/MR
    /// row panels of `C·MR` elements, [`WinogradWeights::panel_stride`] apart.
    pub(super) u: Vec<T>,
    /// The forward's and the input gradient's GEMM precision.
    pub(super) fwd: Precision,
    pub(super) grad: Precision,
    /// bf16: the forward's panels, per ξ `kp × ⌈C/2⌉` pairs.
    pub(super) ub: Vec<u32>,
    /// bf16: the input gradient's panels of Uᵀ (pairs along K), per ξ `C × K/2`; only where
    /// [`shares_input_grad`]. Built with the bf16 input gradient, or, where the AMX copy `uat`
    /// serves that GEMM and the f32 panels stay (forward in f32), only if a path without AMX
    /// asks ([`WinogradWeights::ubt`]): with AMX, 104 MB less for VGG-19's layers.
    ubt: OnceLock<Vec<u32>>,
    /// bf16 on AMX ([`amx::available`] and [`amx::fits`]): `ub`'s and `ubt`'s values again in
    /// the AMX A-tile layout ([`amx::pack_a`]), per ξ `kp × ⌈C/2⌉` and `C × K/2`; else empty.
    pub(super) ua: Vec<u32>,
    pub(super) uat: Vec<u32>,
}

/// When [`WinogradWeights::with_precision_impl`] leaves Uᵀ's bf16 panels for their first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DeferUt {
    /// Where the AMX copy takes the input gradient's GEMM (the panels are then built only if a
    /// path without AMX runs it, e.g. `NST_SIMD=avx2`).
    IfAmx,
    /// Always (tests: the deferred build on any CPU).
    #[cfg_attr(not(test), allow(dead_code))]
    Always,
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
        let ps = c * MR + U_PAD;
        let mut packed = vec![T::ZERO; a * a * (kp / MR) * ps];
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
                            let at = (xi * (kp / MR) + kb) * ps + i * MR + o % MR;
                            // SAFETY: `at` < a²·(kp/MR)·ps, and only this task writes panel kb.
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
            ubt: OnceLock::new(),
            ua: Vec::new(),
            uat: Vec::new(),
        }
    }

    /// These weights with their GEMM operands in `forward` precision for
    /// [`conv3x3_winograd`](super::conv3x3_winograd) (and its ReLU and masked forms) and in `input_grad` precision for
    /// [`conv3x3_winograd_input_grad`](super::conv3x3_winograd_input_grad). `Bf16` rounds U to bf16 in channel pairs (for the
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
    /// Where AMX takes the bf16 input gradient and the forward stays f32, Uᵀ's `vdpbf16ps`
    /// panels are built only if a path without AMX runs it (e.g. `NST_SIMD=avx2`): the AMX
    /// copy serves, and VGG-19 needs 104 MB less.
    ///
    /// # Panics
    /// If a use that is already bf16 is asked for F32 again (bf16 is final per use).
    pub fn with_precision(self, forward: Precision, input_grad: Precision) -> Self {
        self.with_precision_impl(forward, input_grad, DeferUt::IfAmx)
    }

    /// [`with_precision`](Self::with_precision), with Uᵀ's bf16 panels left for their first
    /// use ([`WinogradWeights::ubt`]) as `defer` says, where the forward stays f32 (U's f32
    /// panels, their source, stay then).
    pub(super) fn with_precision_impl(
        mut self,
        forward: Precision,
        input_grad: Precision,
        defer: DeferUt,
    ) -> Self {
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
        let (k, c, kp, a2) = (self.k, self.c, self.kp, mats(self.tile).a.pow(2));
        let at = |xi: usize, row: usize, ci: usize| self.u_at(xi, row, ci);
        // The AMX copy (rows padded with zeros to `rows_p`), where the tiles fit.
        let pack_amx = |rows: usize,
                        rows_p: usize,
                        cols: usize,
                        get: &(dyn Fn(usize, usize, usize) -> f32 + Sync)| {
            if !amx::available() || !amx::fits(rows_p, cols.div_ceil(2)) {
                return Vec::new();
            }
            let per_xi = rows_p * cols.div_ceil(2);
            let mut out = vec![0u32; a2 * per_xi];
            out.par_chunks_mut(per_xi).enumerate().for_each(|(xi, o)| {
                let v = |r: usize, col: usize| if r < rows { get(xi, r, col) } else { 0.0 };
                amx::pack_a(rows_p, cols, v, o);
            });
            out
        };
        let (mut ub, mut ua, mut ubt, mut uat) = (None, None, None, None);
        if forward == Bf16 && self.fwd == F32 {
            ub = Some(self.bf16_panels(k, c, &at));
            ua = Some(pack_amx(k, kp, c, &at));
        }
        if input_grad == Bf16 && self.grad == F32 {
            let at_t = |xi: usize, ci: usize, row: usize| at(xi, row, ci);
            let amx_t = pack_amx(c, c, k, &at_t);
            let deferred = forward == F32
                && match defer {
                    DeferUt::IfAmx => !amx_t.is_empty(),
                    DeferUt::Always => true,
                };
            if !deferred {
                ubt = Some(self.bf16_panels(c, k, &at_t));
            }
            uat = Some(amx_t);
        }
        if let Some(v) = ub {
            self.ub = v;
        }
        if let Some(v) = ua {
            self.ua = v;
        }
        if let Some(v) = ubt {
            self.ubt = OnceLock::from(v);
        }
        if let Some(v) = uat {
            self.uat = v;
        }
        (self.fwd, self.grad) = (forward, input_grad);
        if forward == Bf16 && (input_grad == Bf16 || !shares) {
            self.u = Vec::new();
        }
        self
    }

    /// U[ξ][row][ci] from the f32 panels (pack_u's layout; T is f32, so the conversion is
    /// exact).
    fn u_at(&self, xi: usize, row: usize, ci: usize) -> f32 {
        let i = (xi * (self.kp / MR) + row / MR) * self.panel_stride() + ci * MR + row % MR;
        self.u[i].to_f64() as f32
    }

    /// Elements from one row panel of the f32 panels `u` to the next (of ξ's, or the next ξ's
    /// first): `C·MR` + [`U_PAD`].
    pub(super) fn panel_stride(&self) -> usize {
        self.c * MR + U_PAD
    }

    /// bf16 panels ([`bf16::pack_u`]) of a rows × cols matrix per ξ, `get(ξ, row, col)`: U for
    /// the forward, Uᵀ for the input gradient.
    fn bf16_panels(
        &self,
        rows: usize,
        cols: usize,
        get: &(dyn Fn(usize, usize, usize) -> f32 + Sync),
    ) -> Vec<u32> {
        let a2 = mats(self.tile).a.pow(2);
        let per_xi = rows.div_ceil(MR) * MR * cols.div_ceil(2);
        let mut out = vec![0u32; a2 * per_xi];
        out.par_chunks_mut(per_xi).enumerate().for_each(|(xi, o)| {
            bf16::pack_u(rows, cols, |r, col| get(xi, r, col), o);
        });
        out
    }

    /// The input gradient's bf16 panels of Uᵀ, built now from U's f32 panels if
    /// [`with_precision`](Self::with_precision) left them for first use.
    ///
    /// # Panics
    /// If the input gradient is not bf16 and shared (no such panels are meant to exist).
    pub(super) fn ubt(&self) -> &[u32] {
        assert!(
            self.grad == Precision::Bf16 && self.shares_input_grad(),
            "winograd: no bf16 input-gradient panels"
        );
        self.ubt.get_or_init(|| {
            let at_t = |xi: usize, ci: usize, row: usize| self.u_at(xi, row, ci);
            self.bf16_panels(self.c, self.k, &at_t)
        })
    }

    /// Uᵀ's bf16 panels if built (tests: whether [`WinogradWeights::ubt`] deferred them).
    #[cfg(test)]
    pub(super) fn ubt_built(&self) -> Option<&[u32]> {
        self.ubt.get().map(|v| &v[..])
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
    /// Whether [`conv3x3_winograd_input_grad`](super::conv3x3_winograd_input_grad) can use these weights ([`shares_input_grad`]).
    pub fn shares_input_grad(&self) -> bool {
        shares_input_grad(self.k, self.c)
    }
}
