//! The style-transfer objective (Gatys, Ecker & Bethge 2016, "Image Style Transfer Using
//! Convolutional Neural Networks"): content, style and total-variation terms behind one
//! [`Loss`] trait, so research users can add terms without touching the engine.
//!
//! Formulas (as tests/data/README.md): content `mean((F_x − F_c)²)`; Gram style
//! `mean((G_x − G_s)²)` with `G = F Fᵀ / (C·H·W)`; TV `mean(Δ_y x²) + mean(Δ_x x²)`.

mod temporal;
pub use temporal::TemporalLoss;

use crate::error::{Error, Result};
use crate::vgg19::Vgg19;
use engine::Tensor;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub mod guided;
pub mod mrf;
pub mod sliced_w;
pub mod w2;

/// Feature maps by VGG layer name (e.g. `relu4_2` → 1×512×H/8×W/8).
pub type Features = BTreeMap<String, Tensor>;

/// One weighted scalar term of the objective.
pub struct LossTerm {
    /// Name for logs: `content`, `style.relu1_1`, `tv`, or a custom term's.
    pub name: String,
    /// The unweighted value: a one-element tensor, differentiable w.r.t. the image.
    pub value: Tensor,
    /// Its weight in the total.
    pub weight: f64,
}

/// A term of the objective: a function of named feature maps and of the image.
pub trait Loss: Send + Sync {
    /// The VGG layers this loss reads (the network runs up to the deepest one asked for).
    fn layers(&self) -> Vec<String>;
    /// The weighted terms for the current image `x` (1×3×H×W, preprocessed) and its features.
    fn terms(&self, features: &Features, x: &Tensor) -> Result<Vec<LossTerm>>;
    /// Called by the optimisation loop before each iteration (from 1; evaluations before the
    /// first call see 0). A stochastic loss (sliced-w's random directions) keeps its draw fixed
    /// within an iteration, so that a line search compares values of one function, and returns
    /// true when its function changed (the optimiser must then re-evaluate at x).
    fn start_iteration(&self, _iteration: u64) -> bool {
        false
    }
}

fn feature<'a>(features: &'a Features, layer: &str) -> Result<&'a Tensor> {
    features
        .get(layer)
        .ok_or_else(|| Error::InvalidArgument(format!("feature {layer} was not computed")))
}

/// Content loss `mean((F_x − F_c)²)` at one layer (Gatys et al. 2016, eq. 1, averaged).
pub struct ContentLoss {
    pub layer: String,
    /// The content image's features at `layer` (no grad).
    pub target: Tensor,
    pub weight: f64,
}

impl Loss for ContentLoss {
    fn layers(&self) -> Vec<String> {
        vec![self.layer.clone()]
    }
    fn terms(&self, features: &Features, _x: &Tensor) -> Result<Vec<LossTerm>> {
        let f = feature(features, &self.layer)?;
        if f.shape() != self.target.shape() {
            return Err(Error::InvalidArgument(format!(
                "content loss at {}: image features {:?} vs target {:?} (content and output sizes must match)",
                self.layer,
                f.shape(),
                self.target.shape()
            )));
        }
        let name = if self.layer == "relu4_2" {
            "content".to_string()
        } else {
            format!("content.{}", self.layer)
        };
        Ok(vec![LossTerm {
            name,
            value: f.mse_loss(&self.target)?,
            weight: self.weight,
        }])
    }
}

/// Which statistics of the feature maps the style loss matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StyleLossKind {
    /// Gram matrices `F Fᵀ / (C·H·W)` (Gatys et al. 2016, eq. 3–5).
    #[default]
    Gram,
    /// Per-channel mean and standard deviation (the AdaIN statistics of Huang & Belongie 2017):
    /// `mean((μ_x − μ_s)²) + mean((σ_x − σ_s)²)`.
    MeanStd,
    /// Wasserstein-2 distance between Gaussians fitted to the features (mean and covariance;
    /// crowsonkb's style-transfer-pytorch): see [`w2`].
    W2,
    /// Sliced Wasserstein distance between the feature distributions (Heitz et al., CVPR
    /// 2021): see [`sliced_w`].
    SlicedW,
    /// Nearest 3×3 feature patches (Li & Wand 2016): [`mrf::MrfLoss`].
    Mrf,
}

impl std::str::FromStr for StyleLossKind {
    type Err = engine::ParseOptionError;
    /// `gram`, `mean-std` (also `meanstd`, `adain`), `w2`, `sliced-w` (also `slicedw`,
    /// `swd`) or `mrf`; any case.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "gram" => Ok(StyleLossKind::Gram),
            "mean-std" | "meanstd" | "adain" => Ok(StyleLossKind::MeanStd),
            "w2" => Ok(StyleLossKind::W2),
            "sliced-w" | "slicedw" | "swd" => Ok(StyleLossKind::SlicedW),
            "mrf" => Ok(StyleLossKind::Mrf),
            _ => Err(engine::ParseOptionError::new(
                "style loss",
                s,
                "gram, mean-std, w2, sliced-w or mrf",
            )),
        }
    }
}

impl std::fmt::Display for StyleLossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StyleLossKind::Gram => "gram",
            StyleLossKind::MeanStd => "mean-std",
            StyleLossKind::W2 => "w2",
            StyleLossKind::SlicedW => "sliced-w",
            StyleLossKind::Mrf => "mrf",
        })
    }
}

/// The statistics a style loss matches, of one feature map: a Gram matrix (C×C), the
/// per-channel means and standard deviations (each C), the mean and second raw moment (C and
/// C×C, for w2: [`w2::moments`]) or the features themselves (C×H·W, for sliced-w).
/// Errors: the mrf loss, which matches patches rather than statistics.
pub fn style_statistics(kind: StyleLossKind, f: &Tensor) -> Result<Vec<Tensor>> {
    match kind {
        StyleLossKind::Mrf => Err(Error::InvalidArgument(
            "the mrf loss matches patches, not statistics".into(),
        )),
        StyleLossKind::Gram => Ok(vec![f.gram_matrix()?]),
        StyleLossKind::MeanStd => {
            let s = f.shape();
            if s.len() != 4 || s[0] != 1 || s[2] * s[3] == 0 {
                return Err(Error::InvalidArgument(format!(
                    "mean-std statistics need 1×C×H×W, got {s:?}"
                )));
            }
            let m = f.reshape(&[s[1], s[2] * s[3]])?;
            let mean = m.mean_axis(1, true)?;
            let var = m.sub(&mean)?.square()?.mean_axis(1, false)?;
            // ε keeps the gradient of √ finite for dead (all-zero) channels.
            Ok(vec![mean.reshape(&[s[1]])?, var.add_scalar(1e-5)?.sqrt()?])
        }
        StyleLossKind::W2 => w2::moments(f),
        StyleLossKind::SlicedW => Ok(vec![sliced_w::style_matrix(f)?]),
    }
}

/// Style loss over several layers: for each layer, `mean((S_x − S_target)²)` summed over the
/// statistics `S` of [`style_statistics`] (gram, mean-std), [`w2::layer_loss`] or
/// [`sliced_w::layer_loss`]; one term per layer named `style.<layer>`.
pub struct StyleLoss {
    pub kind: StyleLossKind,
    /// (layer, target statistics, weight of the layer's term = style weight × layer weight);
    /// w2: [`w2::target`]'s four tensors, sliced-w: the (mixed) style features C×M.
    pub targets: Vec<(String, Vec<Tensor>, f64)>,
    /// The optimisation's iteration ([`Loss::start_iteration`]): sliced-w draws fresh
    /// directions for each ([`sliced_w::seed`]).
    pub iteration: AtomicU64,
}

impl StyleLoss {
    /// Targets blended from several style images' features: `Σ_k blend_k · S(F_k)` per layer
    /// (`blend` is normalised to sum to 1, as jcjohnson/neural-style's `-style_blend_weights`).
    /// `layers` gives (layer, weight) with the style weight already multiplied in.
    /// Errors: a missing feature map, empty or all-zero blend weights.
    pub fn from_styles(
        kind: StyleLossKind,
        layers: &[(String, f64)],
        styles: &[Features],
        blend: &[f64],
    ) -> Result<Self> {
        if styles.is_empty() || styles.len() != blend.len() {
            return Err(Error::InvalidArgument(format!(
                "{} style images but {} blend weights",
                styles.len(),
                blend.len()
            )));
        }
        let total: f64 = blend.iter().sum();
        if total <= 0.0 || blend.iter().any(|w| *w < 0.0 || !w.is_finite()) {
            return Err(Error::InvalidArgument(
                "style blend weights must be ≥ 0 and not all 0".into(),
            ));
        }
        let mut targets = Vec::new();
        for (layer, w) in layers {
            if kind == StyleLossKind::SlicedW {
                let per_style = styles
                    .iter()
                    .map(|f| sliced_w::style_matrix(feature(f, layer)?))
                    .collect::<Result<Vec<_>>>()?;
                let mix = sliced_w::mixture(&per_style, blend)?;
                targets.push((layer.clone(), vec![mix], *w));
                continue;
            }
            let mut acc: Option<Vec<Tensor>> = None;
            for (feats, b) in styles.iter().zip(blend) {
                let stats = style_statistics(kind, feature(feats, layer)?)?;
                let scaled: Vec<Tensor> = stats
                    .iter()
                    .map(|t| t.mul_scalar(b / total))
                    .collect::<std::result::Result<_, _>>()?;
                acc = Some(match acc {
                    None => scaled,
                    Some(prev) => prev
                        .iter()
                        .zip(&scaled)
                        .map(|(a, b)| a.add(b))
                        .collect::<std::result::Result<_, _>>()?,
                });
            }
            let mut stats = acc.expect("at least one style");
            if kind == StyleLossKind::W2 {
                stats = w2::target(&stats)?;
            }
            targets.push((layer.clone(), stats, *w));
        }
        Ok(StyleLoss {
            kind,
            targets,
            iteration: AtomicU64::new(0),
        })
    }
}

impl Loss for StyleLoss {
    fn layers(&self) -> Vec<String> {
        self.targets.iter().map(|(l, _, _)| l.clone()).collect()
    }
    fn start_iteration(&self, iteration: u64) -> bool {
        self.iteration.store(iteration, Ordering::Relaxed);
        self.kind == StyleLossKind::SlicedW
    }
    fn terms(&self, features: &Features, _x: &Tensor) -> Result<Vec<LossTerm>> {
        let mut out = Vec::with_capacity(self.targets.len());
        let iteration = self.iteration.load(Ordering::Relaxed);
        for (i, (layer, target, weight)) in self.targets.iter().enumerate() {
            let f = feature(features, layer)?;
            let special = match self.kind {
                StyleLossKind::W2 => Some(w2::layer_loss(f, target)?),
                StyleLossKind::SlicedW => {
                    let c = f.shape().get(1).copied().unwrap_or(0);
                    let dirs = sliced_w::directions(c, c, sliced_w::seed(iteration, i), f)?;
                    Some(sliced_w::layer_loss(f, &target[0], &dirs)?)
                }
                _ => None,
            };
            if let Some(value) = special {
                out.push(LossTerm {
                    name: format!("style.{layer}"),
                    value,
                    weight: *weight,
                });
                continue;
            }
            let stats = style_statistics(self.kind, f)?;
            let mut value: Option<Tensor> = None;
            for (s, t) in stats.iter().zip(target) {
                let l = s.mse_loss(t)?;
                value = Some(match value {
                    None => l,
                    Some(v) => v.add(&l)?,
                });
            }
            out.push(LossTerm {
                name: format!("style.{layer}"),
                value: value.expect("≥1 statistic"),
                weight: *weight,
            });
        }
        Ok(out)
    }
}

/// The scale of one layer's target statistics that relative loss weights divide by: the mean
/// square of the statistics (gram, mean-std: so the term is a relative error squared), or of the
/// style features (w2: [`w2::target_mean_square`]; sliced-w: its target is the features).
pub fn target_mean_square(kind: StyleLossKind, stats: &[Tensor]) -> Result<f64> {
    if kind == StyleLossKind::W2 {
        return w2::target_mean_square(stats);
    }
    mean_square(stats)
}

/// The mean square of all elements of `ts` together (0 when they have none).
pub fn mean_square(ts: &[Tensor]) -> Result<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for t in ts {
        let v = t.to_vec_f64()?;
        sum += v.iter().map(|x| x * x).sum::<f64>();
        n += v.len();
    }
    Ok(if n == 0 { 0.0 } else { sum / n as f64 })
}

/// Total variation `mean((x[:,:,1:,:] − x[:,:,:-1,:])²) + mean((x[:,:,:,1:] − x[:,:,:,:-1])²)`
/// of the image (a smoothness prior; Mahendran & Vedaldi 2015).
pub struct TvLoss {
    pub weight: f64,
}

impl Loss for TvLoss {
    fn layers(&self) -> Vec<String> {
        vec![]
    }
    fn terms(&self, _features: &Features, x: &Tensor) -> Result<Vec<LossTerm>> {
        Ok(vec![LossTerm {
            name: "tv".into(),
            value: x.tv_loss()?,
            weight: self.weight,
        }])
    }
}

/// The evaluated objective at one image.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Σ weight · value.
    pub total: f64,
    /// (name, unweighted value) of every term, in order.
    pub terms: Vec<(String, f64)>,
    /// ∂total/∂x: shape, dtype and device of x (1×3×H×W, on the network's device). Copy it
    /// to the host with `to_vec_f32` only when needed: optimisers take it as it is.
    pub grad: Tensor,
}

/// VGG-19 plus a list of losses: evaluates the total and its gradient w.r.t. the image.
pub struct Objective {
    pub vgg: Arc<Vgg19>,
    pub losses: Vec<Box<dyn Loss>>,
    /// How the network's convolutions run (CPU algorithm, input-gradient precision).
    pub conv: engine::ConvConfig,
}

impl Objective {
    /// Layers any loss reads.
    pub fn layers(&self) -> Vec<String> {
        let mut l: Vec<String> = self.losses.iter().flat_map(|l| l.layers()).collect();
        l.sort();
        l.dedup();
        l
    }

    /// Tells every loss that iteration `iteration` (from 1) starts ([`Loss::start_iteration`]);
    /// true when the objective changed (a cached value at x is stale).
    pub fn start_iteration(&self, iteration: u64) -> bool {
        let mut changed = false;
        for l in &self.losses {
            changed |= l.start_iteration(iteration);
        }
        changed
    }

    /// Total loss and its gradient at `x` (a 1×3×H×W preprocessed image; no grad needed, it is
    /// made a leaf here). Errors: engine errors, a loss's errors.
    pub fn evaluate(&self, x: &Tensor) -> Result<Evaluation> {
        let x = x.to_device(self.vgg.device())?.detach().requires_grad_();
        let layers = self.layers();
        let taps: Vec<&str> = layers.iter().map(String::as_str).collect();
        let features = self.vgg.forward_with(&x, &taps, self.conv)?;
        let mut total_t: Option<Tensor> = None;
        let mut terms = Vec::new();
        for loss in &self.losses {
            for t in loss.terms(&features, &x)? {
                terms.push((t.name, t.value.item()?));
                let w = t.value.mul_scalar(t.weight)?;
                total_t = Some(match total_t {
                    None => w,
                    Some(acc) => acc.add(&w)?,
                });
            }
        }
        drop(features);
        let total_t =
            total_t.ok_or_else(|| Error::InvalidArgument("the objective has no terms".into()))?;
        let total = total_t.item()?;
        total_t.backward()?;
        let grad = match x.grad() {
            Some(g) => g.detach(),
            None => Tensor::zeros(x.shape(), x.dtype())?.to_device(x.device())?,
        };
        Ok(Evaluation { total, terms, grad })
    }
}
