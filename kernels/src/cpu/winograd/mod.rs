//! Winograd convolution for 3×3, stride 1, padding 1 (Lavin & Gray 2016, "Fast Algorithms for
//! Convolutional Neural Networks"): F(m×m, 3×3) computes each m×m output tile from an
//! (m+2)×(m+2) input tile with (m+2)² multiplies per channel pair instead of 9m².
//!
//! `Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. The sum over channels is one GEMM per transform point
//! ξ ∈ (m+2)²: `M[ξ] (K×P) = U[ξ] (K×C) · V[ξ] (C×P)` over a block of P tiles. Weights are
//! transformed and packed once ([`WinogradWeights::new`]) and reused (VGG's weights are
//! frozen); the input transform writes V straight into the GEMM micro-kernel's panel layout
//! ([`packed_gemm`](super::packed_gemm)), so nothing is repacked per call. Transforms and the micro-kernel are
//! compiled for AVX-512, AVX2+FMA and portable code and chosen at run time ([`SimdLevel`]).
//! The input gradient of such a convolution is the same convolution of the output gradient with
//! the flipped, transposed weights. [`conv3x3_winograd_input_grad`] computes it from the
//! forward's packed U (read transposed, tiles mirrored), so one transform serves both (in
//! f32; with a bf16 input gradient, [`WinogradWeights::with_precision`], a bf16 copy of Uᵀ);
//! [`WinogradWeights::new_input_grad`] builds separate ones for channel counts it cannot serve.

mod driver;
mod matrices;
#[cfg(test)]
mod tests;
mod transform;
mod transform_x86;
mod weights;

pub use weights::{WinogradWeights, U_PAD};

use super::buffers::BufferPool;
use super::packed_gemm::MR;
use super::simd::SimdLevel;
use super::Float;
use driver::{winograd_impl, Opts};

/// Output tile size m of F(m×m, 3×3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradTile {
    /// F(2×2, 3×3): 16 transform points, 2.25× fewer multiplies; exact to f32 rounding.
    F2,
    /// F(4×4, 3×3): 36 transform points, 4× fewer multiplies; slightly larger rounding error.
    F4,
}

/// Whether the forward weights of a K×C convolution can serve its input gradient
/// ([`conv3x3_winograd_input_grad`]): K and C multiples of 8, the micro-kernel's row panel.
pub fn shares_input_grad(k: usize, c: usize) -> bool {
    k.is_multiple_of(MR) && c.is_multiple_of(MR)
}

/// `out (N×K×H×W) = conv3×3(input (N×C×H×W), stride 1, padding 1) + bias`, by Winograd.
/// `out` is overwritten. Blocks of tiles run one after another; inside a block the input
/// transform is parallel over input channels, the GEMMs over transform points and the output
/// transform over output channels. Uses the best instruction set of this CPU; work buffers come
/// from `pool`.
///
/// # Panics
/// On buffer lengths that do not match `n, h, w` and the weights' K, C.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_winograd<T: Float>(
    pool: &BufferPool,
    ww: &WinogradWeights<T>,
    input: &[T],
    bias: Option<&[T]>,
    n: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    let (level, dims) = (SimdLevel::current(), (n, h, w));
    winograd_impl(pool, level, ww, input, bias, dims, out, Opts::plain())
}

/// [`conv3x3_winograd`] of `input · [mask > 0]` (elementwise; `mask` has the input's shape):
/// the input gradient of a conv + ReLU pair, with the ReLU's mask applied while the tiles are
/// gathered, so the masked gradient is never stored.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_winograd_masked<T: Float>(
    pool: &BufferPool,
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
    winograd_impl(pool, level, ww, input, bias, dims, out, o)
}

/// [`conv3x3_winograd`] followed by ReLU, fused into the output transform:
/// `out = max(conv3×3(input) + bias, 0)`.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_winograd_relu<T: Float>(
    pool: &BufferPool,
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
    winograd_impl(pool, level, ww, input, bias, dims, out, o)
}

/// [`conv3x3_winograd`] (then ReLU when `relu`) with reflect padding instead of zeros: row and
/// column −1 read row and column 1, H and W read H − 2 and W − 2 (PyTorch's
/// `Conv2d(padding_mode="reflect")`, i.e. `ReflectionPad2d(1)` then a padding-0 convolution),
/// read in place, with no padded copy of the input.
///
/// # Panics
/// On buffer lengths that do not match `n, h, w` and the weights' K, C, or H or W below 2.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_winograd_reflect<T: Float>(
    pool: &BufferPool,
    ww: &WinogradWeights<T>,
    input: &[T],
    bias: Option<&[T]>,
    n: usize,
    h: usize,
    w: usize,
    out: &mut [T],
    relu: bool,
) {
    let (level, dims) = (SimdLevel::current(), (n, h, w));
    let o = Opts {
        relu,
        reflect: true,
        ..Opts::plain()
    };
    winograd_impl(pool, level, ww, input, bias, dims, out, o)
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
    pool: &BufferPool,
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
    winograd_impl(pool, level, ww, grad_out, None, dims, grad_in, o)
}
