//! How a CPU conv2d runs: the algorithm ([`ConvAlgorithm`]) and the number format of the
//! Winograd input gradients ([`Precision`]), chosen per call ([`ConvConfig`], carried by
//! [`Conv2dOptions`](super::Conv2dOptions)), and the prepared (Winograd-transformed) weights
//! a frozen convolution keeps ([`Prepared`], owned by [`FrozenConv2d`](super::FrozenConv2d)).
//!
//! 3×3, stride 1, padding 1 convolutions (all of VGG-19's) with at least
//! [`WINOGRAD_MIN_CHANNELS`] input channels run as Winograd F(m×m, 3×3) (Lavin & Gray 2016);
//! everything else as im2col + GEMM. The forward and the input gradient both use it (the input
//! gradient of such a convolution is a 3×3 convolution with flipped, transposed weights), the
//! input gradient only where the convolution also has that many input channels (its outputs).
//! A frozen convolution transforms its weights once per tile size and precision; the input
//! gradient reads the forward's transforms (`conv3x3_winograd_input_grad`) where the channel
//! counts are multiples of 8, so VGG keeps one set (≈ 4× the weights for F(4,3)); with
//! [`Precision::Bf16`] input gradients, plus a bf16 copy of Uᵀ (half that). Other weights are
//! transformed per call.

use crate::storage::Element;
use crate::DType;
pub use kernels::cpu::bf16::Precision;
use kernels::cpu::buffers::BufferPool;
use kernels::cpu::conv2d::{self as k, Conv2dParams};
use kernels::cpu::spatial::PadMode;
use kernels::cpu::winograd::{
    conv3x3_winograd, conv3x3_winograd_input_grad, conv3x3_winograd_masked,
    conv3x3_winograd_reflect, conv3x3_winograd_relu, shares_input_grad, WinogradTile,
    WinogradWeights,
};
use std::any::Any;
use std::sync::{Arc, Mutex};

/// CPU convolution algorithm for 3×3 stride-1 padding-1 convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Winograd F(4×4, 3×3) where it applies (the default).
    #[default]
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

/// How a conv2d runs, per call: on the CPU the algorithm for 3×3 stride-1 padding-1 layers and
/// the number format of their Winograd input gradients; on a GPU only the precision counts
/// ([`Precision::Bf16`] there: the forward and input-gradient GEMMs on TF32 tensor cores,
/// operands rounded to 10-bit significands, f32 sums). On the CPU, with
/// [`Precision::Bf16`] the input gradient of each f32 Winograd convolution (its share of the
/// backward pass, about half of an iteration's arithmetic) rounds its transformed weights and
/// tiles to bf16 and sums in f32 (AVX-512-BF16 `vdpbf16ps` where the CPU has it). The forward
/// stays f32 so that losses are computed exactly as in f32 (bf16 noise in the forward made Adam
/// unstable near convergence; see `WinogradWeights::with_precision`). Everything else (im2col
/// convolutions, activations, losses, the optimiser) stays f32; f64 is never rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvConfig {
    pub algorithm: ConvAlgorithm,
    pub precision: Precision,
}

impl Default for ConvConfig {
    /// Winograd F(4×4, 3×3) where it applies, f32 throughout.
    fn default() -> Self {
        ConvConfig {
            algorithm: ConvAlgorithm::Auto,
            precision: Precision::F32,
        }
    }
}

/// Whether [`Precision::Bf16`] runs faster than f32 on this CPU, not only rounds like bf16:
/// where it has AMX tiles ([`kernels::cpu::amx::available`]), or AVX-512-BF16 dot products on
/// an AMD CPU. On an Intel Xeon (Emerald Rapids, `NST_AMX=0`) `vdpbf16ps` took 10%, 16% and
/// 22% more time per iteration than f32 in three of four runs (5% less in the fourth;
/// benches/README.md), and on Zen 5 17–19% less. Honours the `NST_SIMD` cap (and `NST_AMX=0`).
pub fn cpu_bf16_is_faster() -> bool {
    use kernels::cpu::bf16::{self, Bf16Path};
    let dot = Bf16Path::at(kernels::cpu::simd::SimdLevel::current()) == Bf16Path::Dot;
    dot && (kernels::cpu::amx::available() || bf16::cpu_is_amd())
}

fn winograd_tile(
    p: &Conv2dParams,
    in_channels: usize,
    algo: ConvAlgorithm,
) -> Option<WinogradTile> {
    let fits = p.groups == 1
        && p.kh == 3
        && p.kw == 3
        && p.stride_h == 1
        && p.stride_w == 1
        && p.pad_h == 1
        && p.pad_w == 1;
    if !fits || in_channels < WINOGRAD_MIN_CHANNELS {
        return None;
    }
    match algo {
        ConvAlgorithm::Im2col => None,
        ConvAlgorithm::WinogradF2 => Some(WinogradTile::F2),
        ConvAlgorithm::Auto | ConvAlgorithm::WinogradF4 => Some(WinogradTile::F4),
    }
}

/// Whether the CPU forward reads `p`'s reflect padding in place (Winograd, or the kernels'
/// [`reflect_supported`](k::reflect_supported)) for an input of `dtype` under `cfg`.
pub(crate) fn reflect_in_place(p: &Conv2dParams, cfg: ConvConfig, dtype: DType) -> bool {
    let winograd = winograd_tile(p, p.c_in, cfg.algorithm).is_some() && p.h >= 2 && p.w >= 2;
    match dtype {
        DType::F32 => winograd || k::reflect_supported::<f32>(p),
        DType::F64 => winograd || k::reflect_supported::<f64>(p),
        _ => false,
    }
}

/// The prepared CPU forms of one frozen convolution's weights: Winograd transforms, built on
/// first use and kept, one per (tile, forward or input-gradient set, precision) in use.
#[derive(Default)]
pub(crate) struct Prepared {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    input_grad: bool,
    tile: WinogradTile,
    precision: Precision,
    value: Arc<dyn Any + Send + Sync>,
}

/// Transformed weights for `w`: from `prepared` when the weights are frozen (built there on
/// first use), else built for this call.
fn transformed<T: Element>(
    prepared: Option<&Prepared>,
    w: &[T],
    p: &Conv2dParams,
    tile: WinogradTile,
    input_grad: bool,
    precision: Precision,
) -> Arc<WinogradWeights<T>> {
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
    // F(4,3)) are built only for the other layers.
    let Some(prepared) = prepared else {
        return build();
    };
    let mut entries = prepared.entries.lock().unwrap_or_else(|e| e.into_inner());
    let same =
        |e: &&Entry| e.input_grad == input_grad && e.tile == tile && e.precision == precision;
    if let Some(v) = entries
        .iter()
        .filter(same)
        .find_map(|e| e.value.clone().downcast::<WinogradWeights<T>>().ok())
    {
        return v;
    }
    let v = build();
    entries.push(Entry {
        input_grad,
        tile,
        precision,
        value: v.clone(),
    });
    v
}

/// conv2d forward on the CPU with the chosen algorithm (`out` overwritten), followed by ReLU
/// when `relu` (inside Winograd's output transform, else one pass over `out`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Element>(
    pool: &BufferPool,
    p: &Conv2dParams,
    cfg: ConvConfig,
    prepared: Option<&Prepared>,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    out: &mut [T],
    relu: bool,
) {
    match winograd_tile(p, p.c_in, cfg.algorithm) {
        Some(tile) => {
            let ww = transformed(prepared, w, p, tile, false, cfg.precision);
            if p.pad_mode == PadMode::Reflect {
                conv3x3_winograd_reflect(pool, &ww, x, b, p.n, p.h, p.w, out, relu)
            } else if relu {
                conv3x3_winograd_relu(pool, &ww, x, b, p.n, p.h, p.w, out)
            } else {
                conv3x3_winograd(pool, &ww, x, b, p.n, p.h, p.w, out)
            }
        }
        None if relu => k::conv2d_forward_relu(pool, p, x, w, b, out),
        None => k::conv2d_forward(pool, p, x, w, b, out),
    }
}

/// The input gradient by Winograd of `grad_out · [mask > 0]` (mask optional): from the
/// forward's transformed weights when their channels allow, else from input-gradient ones.
#[allow(clippy::too_many_arguments)]
fn input_grad_winograd<T: Element>(
    pool: &BufferPool,
    p: &Conv2dParams,
    tile: WinogradTile,
    precision: Precision,
    prepared: Option<&Prepared>,
    w: &[T],
    grad_out: &[T],
    mask: Option<&[T]>,
    grad_in: &mut [T],
) {
    if shares_input_grad(p.c_out, p.c_in) {
        let ww = transformed(prepared, w, p, tile, false, precision);
        return conv3x3_winograd_input_grad(pool, &ww, grad_out, mask, p.n, p.h, p.w, grad_in);
    }
    let wg = transformed(prepared, w, p, tile, true, precision);
    match mask {
        Some(y) => conv3x3_winograd_masked(pool, &wg, grad_out, y, None, p.n, p.h, p.w, grad_in),
        None => conv3x3_winograd(pool, &wg, grad_out, None, p.n, p.h, p.w, grad_in),
    }
}

/// conv2d input gradient on the CPU with the chosen algorithm (`grad_in` overwritten), of
/// `grad_out · [relu_out > 0]` when `relu_out` (the output of a fused conv + ReLU) is given:
/// the mask is applied inside Winograd's gather (no masked copy) where Winograd applies.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_input<T: Element>(
    pool: &BufferPool,
    p: &Conv2dParams,
    cfg: ConvConfig,
    prepared: Option<&Prepared>,
    grad_out: &[T],
    relu_out: Option<&[T]>,
    w: &[T],
    grad_in: &mut [T],
) {
    // The input gradient is a convolution over C_out channels with C_in outputs: Winograd
    // only where both are wide enough. With few (VGG-19's first layer, 3←64) the transforms
    // of the C_out planes cost more than the thin GEMMs they feed: that input gradient took
    // 4.6–4.9 ms by Winograd and 2.5–2.7 by im2col at 256×192, 16–18 and 9.4–9.9 at 512×384
    // (`bench --profile`, alternated); through packed panels with the mask applied on the way
    // in (`conv2d_backward_input_masked`) 1.7–1.8 and 7.0–7.7.
    let tile = winograd_tile(p, p.c_out, cfg.algorithm).filter(|_| p.c_in >= WINOGRAD_MIN_CHANNELS);
    match (tile, relu_out) {
        (Some(tile), mask) => {
            let pr = cfg.precision;
            input_grad_winograd(pool, p, tile, pr, prepared, w, grad_out, mask, grad_in)
        }
        (None, mask) => k::conv2d_backward_input_masked(pool, p, grad_out, mask, w, grad_in),
    }
}
