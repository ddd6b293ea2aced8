//! VGG-19 (Simonyan & Zisserman 2014) as a feature extractor: the 16 conv3×3 layers (stride 1,
//! padding 1, bias), each followed by ReLU, and a 2×2 stride-2 pooling after each of the five
//! blocks (2, 2, 4, 4, 4 convs). Layers are named `conv{B}_{I}`, `relu{B}_{I}`, `pool{B}`.
//! The network used by Gatys et al. for style transfer.

use crate::error::{Error, Result};
use crate::weights::{ChannelOrder, Preprocessing, VggWeights};
use engine::{Conv2dOptions, ConvConfig, FrozenConv2d, Pool2dOptions, Tensor};
use std::collections::BTreeMap;

/// Convs per block.
const BLOCKS: [usize; 5] = [2, 2, 4, 4, 4];

/// Pooling between VGG blocks: max (the original network) or average (Gatys et al. found it
/// gives slightly smoother results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pooling {
    #[default]
    Max,
    Avg,
}

impl std::str::FromStr for Pooling {
    type Err = engine::ParseOptionError;
    /// `max`, `avg` or `average` (any case).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "max" => Ok(Pooling::Max),
            "avg" | "average" => Ok(Pooling::Avg),
            _ => Err(engine::ParseOptionError::new("pooling", s, "max or avg")),
        }
    }
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::Max => "max",
            Pooling::Avg => "avg",
        })
    }
}

/// Every tap name in network order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, …, pool5.
pub fn layer_names() -> Vec<String> {
    let mut names = Vec::new();
    for (b, &n) in BLOCKS.iter().enumerate() {
        for i in 1..=n {
            names.push(format!("conv{}_{i}", b + 1));
            names.push(format!("relu{}_{i}", b + 1));
        }
        names.push(format!("pool{}", b + 1));
    }
    names
}

/// The smallest height and width (px) of an input that reaches the deepest of `layers`, and
/// that layer's name: each pooling before it (and the layer itself, if a pool) halves the
/// sides, rounding down, so relu5_1 (after four) needs 16 px, pool5 32, relu1_1 1.
/// Errors: `UnknownLayer`.
pub fn min_input_side(layers: &[&str]) -> Result<(usize, String)> {
    let names = layer_names();
    let deepest = deepest_layer(&names, layers)?;
    Ok((side_for(&names, deepest), names[deepest].clone()))
}

/// `InputTooSmall` unless a `width`×`height` image reaches the deepest of `layers`.
pub fn check_input_size(what: &str, width: usize, height: usize, layers: &[&str]) -> Result<()> {
    let names = layer_names();
    let deepest = deepest_layer(&names, layers)?;
    check_size_at(what, width, height, &names, deepest)
}

/// [`min_input_side`] of `names[deepest]`: 2 to the number of pools up to it.
fn side_for(names: &[String], deepest: usize) -> usize {
    1 << names[..=deepest]
        .iter()
        .filter(|n| n.starts_with("pool"))
        .count()
}

/// [`check_input_size`] for a deepest layer already looked up in `names`.
fn check_size_at(
    what: &str,
    width: usize,
    height: usize,
    names: &[String],
    deepest: usize,
) -> Result<()> {
    let min_px = side_for(names, deepest);
    if width < min_px || height < min_px {
        return Err(Error::InputTooSmall {
            what: what.to_string(),
            width,
            height,
            min_px,
            layer: names[deepest].clone(),
        });
    }
    Ok(())
}

/// The index in `names` ([`layer_names`]) of the deepest of `layers` (0 when empty).
/// Errors: `UnknownLayer`.
fn deepest_layer(names: &[String], layers: &[&str]) -> Result<usize> {
    let mut deepest = 0;
    for l in layers {
        let pos = names
            .iter()
            .position(|n| n == l)
            .ok_or_else(|| Error::UnknownLayer {
                name: l.to_string(),
                known: names.join(", "),
            })?;
        deepest = deepest.max(pos);
    }
    Ok(deepest)
}

/// VGG-19's convolutional part with frozen weights (tensors that never require grad); each
/// layer keeps its prepared CPU forms (Winograd transforms, see [`FrozenConv2d`]).
pub struct Vgg19 {
    /// (name, weight O×I×3×3 and bias O) for conv1_1 … conv5_4.
    convs: Vec<(String, FrozenConv2d)>,
    pooling: Pooling,
    preprocessing: Preprocessing,
}

impl Vgg19 {
    /// Build from validated weights. Errors: the weights' validation errors.
    pub fn new(weights: &VggWeights, pooling: Pooling) -> Result<Vgg19> {
        weights.validate()?;
        let mut convs = Vec::with_capacity(16);
        for (b, &n) in BLOCKS.iter().enumerate() {
            for i in 1..=n {
                let name = format!("conv{}_{i}", b + 1);
                let (w, bias) = weights
                    .conv(&name)
                    .ok_or_else(|| Error::MissingWeight { key: name.clone() })?;
                let w = Tensor::from_slice(&w.data, &w.shape)?;
                let b = Tensor::from_slice(&bias.data, &bias.shape)?;
                convs.push((name, FrozenConv2d::new(w, Some(b))?));
            }
        }
        Ok(Vgg19 {
            convs,
            pooling,
            preprocessing: weights.preprocessing,
        })
    }

    /// A copy of the network with its weights on `device`. Errors: the device is unavailable.
    pub fn to_device(&self, device: engine::Device) -> Result<Vgg19> {
        let convs = self
            .convs
            .iter()
            .map(|(n, c)| Ok((n.clone(), c.to_device(device)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Vgg19 {
            convs,
            pooling: self.pooling,
            preprocessing: self.preprocessing,
        })
    }

    /// The network cut after the deepest of `layers` (names from [`layer_names`]): the
    /// convolutions past it are dropped, so their weights (and, on the CPU, their Winograd
    /// transforms) are never held. conv5_2–conv5_4 are 28 MB that Gatys' layers (up to
    /// relu5_1) never use. [`Vgg19::forward`] past the cut errors with `LayerNotLoaded`.
    /// Errors: `UnknownLayer`.
    pub fn truncated(mut self, layers: &[&str]) -> Result<Vgg19> {
        let names = layer_names();
        let deepest = deepest_layer(&names, layers)?;
        let convs_needed = names[..=deepest]
            .iter()
            .filter(|n| n.starts_with("conv"))
            .count();
        // At least conv1_1: the network's device is its first weight's.
        self.convs.truncate(convs_needed.max(1));
        Ok(self)
    }

    /// The device the weights live on (inputs to [`Vgg19::forward`] must be there too).
    pub fn device(&self) -> engine::Device {
        self.convs[0].1.device()
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// How input images must be prepared for these weights.
    pub fn preprocessing(&self) -> Preprocessing {
        self.preprocessing
    }

    /// Run the network on a preprocessed 1×3×H×W (or N×3×H×W) input and return the requested
    /// taps by name, computing only up to the deepest one, with the default [`ConvConfig`].
    /// Errors: `UnknownLayer` for a name not in [`layer_names`], engine errors (e.g. an input
    /// too small for the pooling: each pool halves H and W, so `pool5` needs H, W ≥ 32).
    pub fn forward(&self, x: &Tensor, taps: &[&str]) -> Result<BTreeMap<String, Tensor>> {
        self.forward_with(x, taps, ConvConfig::default())
    }

    /// [`Vgg19::forward`] with the convolutions run as `conv` says (CPU algorithm, input-gradient
    /// precision; the style-transfer config's `conv`).
    pub fn forward_with(
        &self,
        x: &Tensor,
        taps: &[&str],
        conv: ConvConfig,
    ) -> Result<BTreeMap<String, Tensor>> {
        let names = layer_names();
        let deepest = deepest_layer(&names, taps)?;
        let mut out = BTreeMap::new();
        if taps.is_empty() {
            return Ok(out);
        }
        let s = x.shape();
        if s.len() == 4 {
            check_size_at("the input", s[3], s[2], &names, deepest)?;
        }
        let mut h = x.clone();
        let mut convs = self.convs.iter();
        let conv_opts = Conv2dOptions::new(1, 1).with_config(conv);
        let pool_opts = Pool2dOptions::new(2, 2, 0);
        let mut fused_relu = false;
        for (i, name) in names[..=deepest].iter().enumerate() {
            h = if name.starts_with("conv") {
                let (_, c) = convs.next().ok_or_else(|| Error::LayerNotLoaded {
                    name: names[deepest].clone(),
                    last: self.convs.last().map_or("none".into(), |c| c.0.clone()),
                })?;
                // conv + ReLU as one op unless the pre-activation is a requested tap.
                fused_relu = i < deepest && !taps.contains(&name.as_str());
                if fused_relu {
                    c.forward_relu(&h, conv_opts)?
                } else {
                    c.forward(&h, conv_opts)?
                }
            } else if name.starts_with("relu") {
                if std::mem::take(&mut fused_relu) {
                    h
                } else {
                    h.relu()?
                }
            } else {
                match self.pooling {
                    Pooling::Max => h.max_pool2d(pool_opts)?,
                    Pooling::Avg => h.avg_pool2d(pool_opts)?,
                }
            };
            if taps.contains(&name.as_str()) {
                out.insert(name.clone(), h.clone());
            }
        }
        Ok(out)
    }

    /// Network input (1×3×H×W, f32) from an RGB image with values in 0..=1 (HWC, row-major),
    /// per the weights' [`Preprocessing`]: channel order, scale, mean, std.
    pub fn preprocess(&self, rgb: &[f32], width: usize, height: usize) -> Result<Tensor> {
        preprocess(self.preprocessing, rgb, width, height)
    }

    /// The inverse of [`Vgg19::preprocess`]: HWC RGB values (not clamped) from a 1×3×H×W tensor.
    pub fn deprocess(&self, x: &Tensor) -> Result<Vec<f32>> {
        deprocess(self.preprocessing, x)
    }
}

fn channel_src(p: Preprocessing, c: usize) -> usize {
    match p.channel_order() {
        ChannelOrder::Rgb => c,
        ChannelOrder::Bgr => 2 - c,
    }
}

/// See [`Vgg19::preprocess`]. Errors: `InvalidArgument` when `rgb.len() != 3·width·height`.
pub fn preprocess(p: Preprocessing, rgb: &[f32], width: usize, height: usize) -> Result<Tensor> {
    if rgb.len() != 3 * width * height {
        return Err(Error::InvalidArgument(format!(
            "preprocess: {} values for a {width}×{height} RGB image",
            rgb.len()
        )));
    }
    let (scale, mean, std) = (p.scale(), p.mean(), p.std());
    let plane = width * height;
    let mut out = vec![0.0f32; 3 * plane];
    for c in 0..3 {
        let src = channel_src(p, c);
        for i in 0..plane {
            out[c * plane + i] = (rgb[i * 3 + src] * scale - mean[c]) / std[c];
        }
    }
    Ok(Tensor::from_vec(out, &[1, 3, height, width])?)
}

/// See [`Vgg19::deprocess`]. Errors: `InvalidArgument` unless the shape is 1×3×H×W.
pub fn deprocess(p: Preprocessing, x: &Tensor) -> Result<Vec<f32>> {
    let s = x.shape();
    if s.len() != 4 || s[0] != 1 || s[1] != 3 {
        return Err(Error::InvalidArgument(format!(
            "deprocess: expected 1×3×H×W, got {s:?}"
        )));
    }
    let plane = s[2] * s[3];
    let v = x.to_vec_f32()?;
    let (scale, mean, std) = (p.scale(), p.mean(), p.std());
    let mut rgb = vec![0.0f32; 3 * plane];
    for c in 0..3 {
        let dst = channel_src(p, c);
        for i in 0..plane {
            rgb[i * 3 + dst] = (v[c * plane + i] * std[c] + mean[c]) / scale;
        }
    }
    Ok(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_input_halves_once_per_pooling() {
        let side = |l: &[&str]| min_input_side(l).unwrap();
        assert_eq!(side(&["relu1_1"]), (1, "relu1_1".into()));
        assert_eq!(side(&["pool1"]), (2, "pool1".into()));
        assert_eq!(side(&["conv2_1", "relu1_2"]), (2, "conv2_1".into()));
        assert_eq!(side(&["relu4_2", "relu5_1"]), (16, "relu5_1".into()));
        assert_eq!(side(&["pool5"]), (32, "pool5".into()));
        assert!(min_input_side(&["fc7"]).is_err());
        // 16×15 misses relu5_1 by one row (15 → 7 → 3 → 1 → 0).
        let e = check_input_size("x", 16, 15, &["relu5_1"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x is 16×15 px, too small for VGG-19's relu5_1: both sides must be at least 16 px"
        );
        check_input_size("x", 16, 16, &["relu5_1"]).unwrap();
    }
    use crate::weights::testutil::synthetic_vgg;

    #[test]
    fn a_truncated_network_gives_the_same_features_and_refuses_deeper_ones() {
        let w = synthetic_vgg(Preprocessing::Caffe);
        let full = Vgg19::new(&w, Pooling::Max).unwrap();
        let cut = Vgg19::new(&w, Pooling::Max)
            .unwrap()
            .truncated(&["relu2_1", "relu1_1"])
            .unwrap();
        assert_eq!(cut.convs.len(), 3, "conv1_1, conv1_2, conv2_1");
        let x = Tensor::from_vec(
            (0..3 * 20 * 24).map(|i| (i % 7) as f32 - 3.0).collect(),
            &[1, 3, 20, 24],
        )
        .unwrap();
        let a = full.forward(&x, &["relu2_1"]).unwrap()["relu2_1"].to_vec::<f32>();
        let b = cut.forward(&x, &["relu2_1"]).unwrap()["relu2_1"].to_vec::<f32>();
        assert_eq!(a.unwrap(), b.unwrap());
        let err = cut.forward(&x, &["relu2_2"]).unwrap_err().to_string();
        assert!(
            err.contains("relu2_2") && err.contains("conv2_1"),
            "error names the layer and the cut: {err}"
        );
        assert!(matches!(
            Vgg19::new(&w, Pooling::Max)
                .unwrap()
                .truncated(&["relu9_1"]),
            Err(Error::UnknownLayer { .. })
        ));
    }
}
