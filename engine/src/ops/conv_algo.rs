//! Choice of CPU convolution algorithm, and the cache of transformed weights for Winograd.
//!
//! 3×3, stride 1, padding 1 convolutions (all of VGG-19's) with at least
//! [`WINOGRAD_MIN_CHANNELS`] input channels run as Winograd F(m×m, 3×3) (Lavin & Gray 2016);
//! everything else as im2col + GEMM. The forward and the input gradient both use it (the input
//! gradient of such a convolution is a 3×3 convolution with flipped, transposed weights).
//! Transformed weights of tensors that do not require grad are computed once and cached; the
//! input gradient reads the forward's (`conv3x3_winograd_input_grad`) where the channel counts
//! are multiples of 8, so VGG keeps one set (≈ 4× the weights for F(4,3)); with
//! [`Precision::Bf16`] input gradients, plus a bf16 copy of Uᵀ (half that).

use crate::storage::{Element, Storage};
use crate::Tensor;
pub use kernels::cpu::bf16::Precision;
use kernels::cpu::conv2d::{self as k, Conv2dParams};
use kernels::cpu::winograd::{
    conv3x3_winograd, conv3x3_winograd_input_grad, conv3x3_winograd_masked, conv3x3_winograd_relu,
    shares_input_grad, WinogradTile, WinogradWeights,
};
use std::any::Any;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// CPU convolution algorithm for 3×3 stride-1 padding-1 convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Winograd F(4×4, 3×3) where it applies (the default).
    Auto,
    /// Always im2col + GEMM.
    Im2col,
    /// Winograd F(2×2, 3×3) where it applies.
    WinogradF2,
    /// Winograd F(4×4, 3×3) where it applies.
    WinogradF4,
}

impl std::str::FromStr for ConvAlgorithm {
    type Err = kernels::ParseOptionError;
    /// `auto`, `im2col`, `winograd-f2` or `winograd-f4` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ConvAlgorithm::Auto),
            "im2col" => Ok(ConvAlgorithm::Im2col),
            "winograd-f2" => Ok(ConvAlgorithm::WinogradF2),
            "winograd-f4" => Ok(ConvAlgorithm::WinogradF4),
            _ => Err(kernels::ParseOptionError::new(
                "conv algorithm",
                s,
                "auto, im2col, winograd-f2 or winograd-f4",
            )),
        }
    }
}

impl std::fmt::Display for ConvAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConvAlgorithm::Auto => "auto",
            ConvAlgorithm::Im2col => "im2col",
            ConvAlgorithm::WinogradF2 => "winograd-f2",
            ConvAlgorithm::WinogradF4 => "winograd-f4",
        })
    }
}

/// Convolutions with fewer input channels than this use im2col (Winograd's transforms cost
/// more than they save when the GEMMs are that thin).
pub const WINOGRAD_MIN_CHANNELS: usize = 16;

static ALGO: AtomicU8 = AtomicU8::new(0);

/// Set the process-wide CPU convolution algorithm (benchmarks, tests, `--conv` flags).
pub fn set_conv_algorithm(a: ConvAlgorithm) {
    ALGO.store(a as u8, Ordering::Relaxed);
}

/// The current CPU convolution algorithm.
pub fn conv_algorithm() -> ConvAlgorithm {
    match ALGO.load(Ordering::Relaxed) {
        1 => ConvAlgorithm::Im2col,
        2 => ConvAlgorithm::WinogradF2,
        3 => ConvAlgorithm::WinogradF4,
        _ => ConvAlgorithm::Auto,
    }
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Set the process-wide number format of the CPU Winograd input gradients (`--precision`):
/// with [`Precision::Bf16`], the input gradient of each f32 Winograd convolution (its share of
/// the backward pass, about half of an iteration's arithmetic) rounds its transformed weights
/// and tiles to bf16 and sums in f32 (AVX-512-BF16 `vdpbf16ps` where the CPU has it). The
/// forward stays f32 so that losses are computed exactly as in f32 (bf16 noise in the forward
/// made Adam unstable near convergence; see `WinogradWeights::with_precision`). Everything
/// else (im2col convolutions, activations, losses, the optimiser) stays f32; f64 is never
/// rounded. Transforms cached in the other format are replaced on next use.
pub fn set_cpu_precision(p: Precision) {
    PRECISION.store(p as u8, Ordering::Relaxed);
}

/// The current CPU GEMM number format ([`set_cpu_precision`]; `F32` by default).
pub fn cpu_precision() -> Precision {
    match PRECISION.load(Ordering::Relaxed) {
        1 => Precision::Bf16,
        _ => Precision::F32,
    }
}

/// Whether this CPU has AVX-512-BF16 dot products (so that [`Precision::Bf16`] runs faster
/// than f32, not only rounds like bf16); honours the `NST_SIMD` cap.
pub fn cpu_has_bf16_dot() -> bool {
    use kernels::cpu::bf16::Bf16Path;
    Bf16Path::at(kernels::cpu::simd::SimdLevel::current()) == Bf16Path::Dot
}

fn winograd_tile(p: &Conv2dParams, in_channels: usize) -> Option<WinogradTile> {
    let fits = p.kh == 3
        && p.kw == 3
        && p.stride_h == 1
        && p.stride_w == 1
        && p.pad_h == 1
        && p.pad_w == 1;
    if !fits || in_channels < WINOGRAD_MIN_CHANNELS {
        return None;
    }
    match conv_algorithm() {
        ConvAlgorithm::Im2col => None,
        ConvAlgorithm::WinogradF2 => Some(WinogradTile::F2),
        ConvAlgorithm::Auto | ConvAlgorithm::WinogradF4 => Some(WinogradTile::F4),
    }
}

struct Entry {
    storage: Weak<Storage>,
    offset: usize,
    input_grad: bool,
    tile: WinogradTile,
    precision: Precision,
    value: Arc<dyn Any + Send + Sync>,
}

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Transformed weights for `weight`, from the cache when the weight is frozen.
fn transformed<T: Element>(
    weight: &Tensor,
    w: &[T],
    p: &Conv2dParams,
    tile: WinogradTile,
    input_grad: bool,
) -> Arc<WinogradWeights<T>> {
    let precision = cpu_precision();
    let build = || {
        let ww = if input_grad {
            WinogradWeights::new_input_grad(tile, w, p.c_out, p.c_in)
        } else {
            WinogradWeights::new(tile, w, p.c_out, p.c_in)
        };
        // bf16 serves the input gradient only (WinogradWeights::with_precision says why): the
        // forward transforms keep f32 for the forward, the input-gradient ones are all bf16.
        Arc::new(if input_grad {
            ww.with_precision(precision, precision)
        } else {
            ww.with_precision(Precision::F32, precision)
        })
    };
    // The input gradient reads the forward transforms where the channels allow
    // (`input_grad_winograd`); the separate input-gradient transforms (4× the weights for
    // F(4,3)) are built and cached only for the other layers.
    if weight.requires_grad() {
        return build();
    }
    let key = Arc::downgrade(&weight.0.storage);
    let same = |e: &Entry| {
        e.storage.ptr_eq(&key)
            && e.offset == weight.offset()
            && e.input_grad == input_grad
            && e.tile == tile
    };
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    // Dead weights' entries go, and so does a transform of these weights in the other
    // precision: it is replaced, not kept beside the new one (the precision is switched
    // between runs, not within one).
    cache.retain(|e| e.storage.strong_count() > 0 && !(same(e) && e.precision != precision));
    for e in cache.iter().filter(|e| same(e)) {
        if let Ok(v) = e.value.clone().downcast::<WinogradWeights<T>>() {
            return v;
        }
    }
    let v = build();
    cache.push(Entry {
        storage: key,
        offset: weight.offset(),
        input_grad,
        tile,
        precision,
        value: v.clone(),
    });
    v
}

/// conv2d forward on the CPU with the chosen algorithm (`out` overwritten), followed by ReLU
/// when `relu` (inside Winograd's output transform, else one pass over `out`).
pub(crate) fn forward<T: Element>(
    p: &Conv2dParams,
    weight: &Tensor,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    out: &mut [T],
    relu: bool,
) {
    match winograd_tile(p, p.c_in) {
        Some(tile) => {
            let ww = transformed(weight, w, p, tile, false);
            if relu {
                conv3x3_winograd_relu(&ww, x, b, p.n, p.h, p.w, out)
            } else {
                conv3x3_winograd(&ww, x, b, p.n, p.h, p.w, out)
            }
        }
        None => {
            k::conv2d_forward(p, x, w, b, out);
            if relu {
                use rayon::prelude::*;
                out.par_chunks_mut(1 << 16)
                    .for_each(|c| c.iter_mut().for_each(|v| *v = v.max(T::ZERO)));
            }
        }
    }
}

/// The input gradient by Winograd of `grad_out · [mask > 0]` (mask optional): from the
/// forward's transformed weights when their channels allow, else from input-gradient ones.
fn input_grad_winograd<T: Element>(
    p: &Conv2dParams,
    tile: WinogradTile,
    weight: &Tensor,
    w: &[T],
    grad_out: &[T],
    mask: Option<&[T]>,
    grad_in: &mut [T],
) {
    if shares_input_grad(p.c_out, p.c_in) {
        let ww = transformed(weight, w, p, tile, false);
        return conv3x3_winograd_input_grad(&ww, grad_out, mask, p.n, p.h, p.w, grad_in);
    }
    let wg = transformed(weight, w, p, tile, true);
    match mask {
        Some(y) => conv3x3_winograd_masked(&wg, grad_out, y, None, p.n, p.h, p.w, grad_in),
        None => conv3x3_winograd(&wg, grad_out, None, p.n, p.h, p.w, grad_in),
    }
}

/// The input gradient of `relu(conv2d(x))` from the gradient `grad_out` of its output `y`:
/// `backward_input` of `grad_out · [y > 0]`, the mask applied inside Winograd's gather (no
/// masked copy) where Winograd applies.
pub(crate) fn backward_input_relu<T: Element>(
    p: &Conv2dParams,
    weight: &Tensor,
    grad_out: &[T],
    y: &[T],
    w: &[T],
    grad_in: &mut [T],
) {
    match winograd_tile(p, p.c_out) {
        Some(tile) => input_grad_winograd(p, tile, weight, w, grad_out, Some(y), grad_in),
        None => {
            let mut gm = vec![T::ZERO; grad_out.len()];
            kernels::cpu::elementwise::relu_backward(grad_out, y, &mut gm);
            k::conv2d_backward_input(p, &gm, w, grad_in)
        }
    }
}

/// conv2d input gradient on the CPU with the chosen algorithm (`grad_in` overwritten).
pub(crate) fn backward_input<T: Element>(
    p: &Conv2dParams,
    weight: &Tensor,
    grad_out: &[T],
    w: &[T],
    grad_in: &mut [T],
) {
    // The input gradient is a convolution over C_out channels.
    match winograd_tile(p, p.c_out) {
        Some(tile) => input_grad_winograd(p, tile, weight, w, grad_out, None, grad_in),
        None => k::conv2d_backward_input(p, grad_out, w, grad_in),
    }
}
