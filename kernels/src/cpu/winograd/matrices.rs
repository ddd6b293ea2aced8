//! The transform matrices Bᵀ, G and Aᵀ of F(2×2, 3×3) and F(4×4, 3×3), and their sparse rows.

use super::WinogradTile;
use crate::cpu::Float;

pub(super) struct Mats {
    pub(super) m: usize,
    pub(super) a: usize,
    pub(super) bt: &'static [f64],
    pub(super) g: &'static [f64],
    pub(super) at: &'static [f64],
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

pub(super) fn mats(t: WinogradTile) -> &'static Mats {
    match t {
        WinogradTile::F2 => &F2,
        WinogradTile::F4 => &F4,
    }
}

/// Nonzero entries of a row-major `rows × cols` matrix, per row: (col, value).
pub(super) fn sparse_rows<T: Float>(m: &[f64], rows: usize, cols: usize) -> Vec<Vec<(usize, T)>> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .filter(|&c| m[r * cols + c] != 0.0)
                .map(|c| (c, T::from_f64(m[r * cols + c])))
                .collect()
        })
        .collect()
}
