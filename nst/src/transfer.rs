//! The style-transfer loop (Gatys, Ecker & Bethge 2016): optimise an image so that its VGG-19
//! features keep the content image's and its feature statistics match the style images', at one
//! or several scales (coarse to fine), calling back after every iteration.

use crate::error::{ConfigError, ConfigField, Error, Result};
use crate::image::{fit_longest, original_colors, RgbImage};
use crate::loss::{ContentLoss, Evaluation, Loss, Objective, StyleLoss, StyleLossKind, TvLoss};
use crate::optim::{Adam, Lbfgs};
use crate::vgg19::{layer_names, Vgg19};
use engine::{DType, Tensor};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

/// The optimiser and its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// L-BFGS with an Armijo line search, keeping `history` curvature pairs.
    Lbfgs { history: usize },
    /// Adam; `learning_rate` in preprocessed pixel units (0–255 scale for Caffe weights).
    Adam { learning_rate: f64 },
}

impl Optimizer {
    /// Which optimiser this is.
    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Lbfgs { .. } => OptimizerKind::Lbfgs,
            Optimizer::Adam { .. } => OptimizerKind::Adam,
        }
    }
}

/// The optimiser without its settings: what a user names (`lbfgs`, `adam`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OptimizerKind {
    #[default]
    Lbfgs,
    Adam,
}

impl OptimizerKind {
    /// The optimiser with its settings: `history` for L-BFGS, `learning_rate` for Adam (the
    /// other is ignored).
    pub fn with(self, history: usize, learning_rate: f64) -> Optimizer {
        match self {
            OptimizerKind::Lbfgs => Optimizer::Lbfgs { history },
            OptimizerKind::Adam => Optimizer::Adam { learning_rate },
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = engine::ParseOptionError;
    /// `lbfgs` (also `l-bfgs`) or `adam`; any case.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "lbfgs" | "l-bfgs" => Ok(OptimizerKind::Lbfgs),
            "adam" => Ok(OptimizerKind::Adam),
            _ => Err(engine::ParseOptionError::new(
                "optimizer",
                s,
                "lbfgs or adam",
            )),
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptimizerKind::Lbfgs => "lbfgs",
            OptimizerKind::Adam => "adam",
        })
    }
}

/// The image the optimisation starts from (at the first scale).
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// The content image.
    Content,
    /// Gaussian noise around mid-gray (seeded).
    Noise,
    /// The (first) style image, resized to the output size.
    Style,
    /// A given image, resized to the output size.
    Image(RgbImage),
}

impl std::str::FromStr for Init {
    type Err = engine::ParseOptionError;
    /// `content`, `noise` (also `random`) or `style`, any case; an [`Init::Image`] is built
    /// from an image, not parsed.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "content" => Ok(Init::Content),
            "noise" | "random" => Ok(Init::Noise),
            "style" => Ok(Init::Style),
            _ => Err(engine::ParseOptionError::new(
                "init",
                s,
                "content, noise or style",
            )),
        }
    }
}

impl std::fmt::Display for Init {
    /// `content`, `noise`, `style`, or `image` for a given image.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Init::Content => "content",
            Init::Noise => "noise",
            Init::Style => "style",
            Init::Image(_) => "image",
        })
    }
}

/// Everything a run needs besides the images and the network. `Default` gives the CLI's
/// defaults (see README, "Defaults").
#[derive(Clone, Debug)]
pub struct StyleTransferConfig {
    /// Longest side of the output, in pixels.
    pub size_px: usize,
    /// Style images are resized to `style_scale · size_px` on their longest side.
    pub style_scale: f64,
    pub content_layers: Vec<String>,
    pub style_layers: Vec<String>,
    /// Per style layer (same length as `style_layers`), multiplied by `style_weight`.
    pub style_layer_weights: Vec<f64>,
    pub content_weight: f64,
    pub style_weight: f64,
    pub tv_weight: f64,
    /// One weight per style image (normalised to sum 1).
    pub style_blend_weights: Vec<f64>,
    pub style_loss: StyleLossKind,
    pub optimizer: Optimizer,
    /// Iterations at each scale (L-BFGS: steps; Adam: updates).
    pub iterations: usize,
    pub init: Init,
    pub seed: u64,
    /// Keep the content's colours (luminance-only transfer).
    pub original_colors: bool,
    /// Number of scales, coarse to fine; each halves the previous side (never below 64 px).
    pub scales: usize,
    /// How the network's convolutions run on the CPU: algorithm and input-gradient precision
    /// (bf16 input gradients: faster on CPUs with AVX-512-BF16, loss within 0.2% of f32's).
    pub conv: engine::ConvConfig,
}

impl Default for StyleTransferConfig {
    fn default() -> Self {
        StyleTransferConfig {
            size_px: 512,
            style_scale: 1.0,
            content_layers: vec!["relu4_2".into()],
            style_layers: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
                .map(String::from)
                .to_vec(),
            style_layer_weights: vec![1.0; 5],
            content_weight: 5.0,
            style_weight: 100.0,
            tv_weight: 10.0,
            style_blend_weights: vec![],
            style_loss: StyleLossKind::Gram,
            optimizer: Optimizer::Lbfgs { history: 10 },
            iterations: 200,
            init: Init::Content,
            seed: 0,
            original_colors: false,
            scales: 2,
            conv: engine::ConvConfig::default(),
        }
    }
}

/// Passed to the callback after every iteration.
pub struct Progress<'a> {
    /// Iteration within the current scale, from 1.
    pub iteration: usize,
    pub iterations: usize,
    /// Scale index from 0, and the number of scales.
    pub scale: usize,
    pub scales: usize,
    /// (width, height) at this scale.
    pub size: (usize, usize),
    /// Objective evaluations so far in this scale (L-BFGS line searches may use several per step).
    pub evaluations: usize,
    /// The last evaluation's total and terms (unweighted).
    pub eval: &'a Evaluation,
    /// Seconds since the run started.
    pub elapsed_seconds: f64,
    x: &'a Tensor,
    vgg: &'a Vgg19,
    content: &'a RgbImage,
    original_colors: bool,
}

impl Progress<'_> {
    /// The current image (deprocessed, clamped, colours handled as the final output would be).
    pub fn image(&self) -> Result<RgbImage> {
        to_image(
            self.vgg,
            self.x,
            self.size,
            self.content,
            self.original_colors,
        )
    }
}

/// The image of the preprocessed 1×3×H×W tensor `x` (the one explicit device → host copy).
fn to_image(
    vgg: &Vgg19,
    x: &Tensor,
    (w, h): (usize, usize),
    content: &RgbImage,
    keep_colors: bool,
) -> Result<RgbImage> {
    let t = x.to_device(engine::Device::Cpu)?.reshape(&[1, 3, h, w])?;
    let data = vgg
        .deprocess(&t)?
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    let img = RgbImage {
        width: w,
        height: h,
        data,
    };
    Ok(if keep_colors {
        original_colors(&img, content)
    } else {
        img
    })
}

/// Sizes (w, h) of each scale, coarse to fine, for an output of `size_px` on the longest side.
pub fn scale_sizes(content: &RgbImage, size_px: usize, scales: usize) -> Vec<(usize, usize)> {
    let mut sides: Vec<usize> = (0..scales.max(1))
        .map(|i| (size_px >> (scales.max(1) - 1 - i)).max(64.min(size_px)))
        .collect();
    sides.dedup();
    sides
        .into_iter()
        .map(|s| fit_longest(content.width, content.height, s))
        .collect()
}

impl StyleTransferConfig {
    /// The VGG-19 layers the objective reads: the content layers, then the style layers (for
    /// [`crate::vgg19::Vgg19::truncated`]).
    pub fn layers(&self) -> Vec<&str> {
        self.content_layers
            .iter()
            .chain(&self.style_layers)
            .map(String::as_str)
            .collect()
    }

    /// Check option values. Errors: `UnknownLayer`, or [`Error::Config`] naming the field.
    pub fn validate(&self, n_styles: usize) -> Result<()> {
        let bad =
            |field: ConfigField, reason: String| Err(Error::Config(ConfigError { field, reason }));
        let known = layer_names();
        for l in self.layers() {
            if !known.iter().any(|k| k == l) {
                return Err(Error::UnknownLayer {
                    name: l.to_string(),
                    known: known.join(", "),
                });
            }
        }
        if self.size_px < 16 {
            return bad(
                ConfigField::SizePx,
                format!("{} is too small (at least 16 px)", self.size_px),
            );
        }
        if self.style_layer_weights.len() != self.style_layers.len() {
            return bad(
                ConfigField::StyleLayerWeights,
                format!(
                    "has {} values for {} style layers",
                    self.style_layer_weights.len(),
                    self.style_layers.len()
                ),
            );
        }
        if n_styles == 0 {
            return bad(
                ConfigField::StyleImages,
                "missing: at least one style image is needed".into(),
            );
        }
        if !self.style_blend_weights.is_empty() && self.style_blend_weights.len() != n_styles {
            return bad(
                ConfigField::StyleBlendWeights,
                format!(
                    "has {} values for {n_styles} style images",
                    self.style_blend_weights.len()
                ),
            );
        }
        for (field, v) in [
            (ConfigField::ContentWeight, self.content_weight),
            (ConfigField::StyleWeight, self.style_weight),
            (ConfigField::TvWeight, self.tv_weight),
            (ConfigField::StyleScale, self.style_scale),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, format!("must be a finite number ≥ 0, got {v}"));
            }
        }
        if self.style_scale <= 0.0 {
            return bad(ConfigField::StyleScale, "must be > 0".into());
        }
        if self.scales == 0 || self.scales > 8 {
            return bad(
                ConfigField::Scales,
                format!("must be 1..=8, got {}", self.scales),
            );
        }
        match self.optimizer {
            Optimizer::Lbfgs { history: 0 } => bad(ConfigField::LbfgsHistory, "must be ≥ 1".into()),
            Optimizer::Adam { learning_rate }
                if !(learning_rate > 0.0 && learning_rate.is_finite()) =>
            {
                bad(
                    ConfigField::LearningRate,
                    format!("must be > 0, got {learning_rate}"),
                )
            }
            _ => Ok(()),
        }
    }
}

/// Run style transfer. `callback` sees every iteration and may stop the run early
/// (`ControlFlow::Break`), in which case the current image is returned.
/// Errors: invalid configuration, images too small for the chosen layers, engine errors.
pub fn run(
    vgg: Arc<Vgg19>,
    content: &RgbImage,
    styles: &[RgbImage],
    cfg: &StyleTransferConfig,
    mut callback: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<RgbImage> {
    cfg.validate(styles.len())?;
    let start = Instant::now();
    let sizes = scale_sizes(content, cfg.size_px, cfg.scales);
    let blend = if cfg.style_blend_weights.is_empty() {
        vec![1.0; styles.len()]
    } else {
        cfg.style_blend_weights.clone()
    };
    let device = vgg.device();
    let mut x = Tensor::zeros(&[1, 3, 1, 1], DType::F32)?;
    let mut prev_size = (0, 0);
    for (scale, &(w, h)) in sizes.iter().enumerate() {
        let content_s = content.resize(w, h);
        let content_t = vgg.preprocess(&content_s.data, w, h)?;
        // Starting point: the init at the first scale, the previous result upsampled after.
        // Built on the host, copied to the device once per scale.
        let x_host = if scale == 0 {
            match &cfg.init {
                Init::Content => content_t.clone(),
                Init::Noise => {
                    let noise =
                        Tensor::randn(&[h * w * 3], 0.15, cfg.seed, DType::F32)?.to_vec::<f32>()?;
                    let rgb: Vec<f32> = noise.iter().map(|n| (0.5 + n).clamp(0.0, 1.0)).collect();
                    vgg.preprocess(&rgb, w, h)?
                }
                Init::Style => vgg.preprocess(&styles[0].resize(w, h).data, w, h)?,
                Init::Image(img) => vgg.preprocess(&img.resize(w, h).data, w, h)?,
            }
        } else {
            let prev = to_image(&vgg, &x, prev_size, content, false)?;
            vgg.preprocess(&prev.resize(w, h).data, w, h)?
        };
        x = x_host.to_device(device)?;
        prev_size = (w, h);
        let objective = build_objective(vgg.clone(), &content_t, styles, &blend, cfg, w.max(h))?;
        let evaluations = std::cell::Cell::new(0usize);
        let evaluate = |x: &Tensor| -> Result<Evaluation> {
            evaluations.set(evaluations.get() + 1);
            objective.evaluate(x)
        };
        let mut adam = match cfg.optimizer {
            Optimizer::Adam { learning_rate } => Some(Adam::new(learning_rate)),
            _ => None,
        };
        let mut lbfgs = match cfg.optimizer {
            Optimizer::Lbfgs { history } => Some(Lbfgs::new(history)),
            _ => None,
        };
        for it in 1..=cfg.iterations {
            let eval = if let Some(adam) = adam.as_mut() {
                let e = evaluate(&x)?;
                adam.step(&mut x, &e.grad)?;
                e
            } else {
                let opt = lbfgs.as_mut().expect("one optimiser");
                let mut last: Option<Evaluation> = None;
                opt.step(&mut x, &mut |xs: &Tensor| {
                    let e = evaluate(xs)?;
                    let out = (e.total, e.grad.clone());
                    last = Some(e);
                    Ok(out)
                })?;
                match last {
                    Some(e) => e,
                    None => evaluate(&x)?,
                }
            };
            let p = Progress {
                iteration: it,
                iterations: cfg.iterations,
                scale,
                scales: sizes.len(),
                size: (w, h),
                evaluations: evaluations.get(),
                eval: &eval,
                elapsed_seconds: start.elapsed().as_secs_f64(),
                x: &x,
                vgg: &vgg,
                content,
                original_colors: cfg.original_colors,
            };
            if callback(&p).is_break() {
                return to_image(&vgg, &x, (w, h), content, cfg.original_colors);
            }
        }
    }
    to_image(&vgg, &x, prev_size, content, cfg.original_colors)
}

/// Content, style and TV losses for one scale.
fn build_objective(
    vgg: Arc<Vgg19>,
    content_t: &Tensor,
    styles: &[RgbImage],
    blend: &[f64],
    cfg: &StyleTransferConfig,
    side_px: usize,
) -> Result<Objective> {
    let style_side = ((side_px as f64 * cfg.style_scale).round() as usize).max(16);
    let mut style_ts = Vec::with_capacity(styles.len());
    for s in styles {
        let (sw, sh) = fit_longest(s.width, s.height, style_side);
        style_ts.push(vgg.preprocess(&s.resize(sw, sh).data, sw, sh)?);
    }
    objective_from_tensors(vgg, content_t, &style_ts, blend, cfg)
}

/// The objective of `cfg` (content layers and weight, style layers, layer weights, style
/// weight and statistics, TV weight) for a preprocessed content image (1×3×H×W) and style
/// images (1×3×H'×W', any size), moved to the network's device. Targets are computed here,
/// without grad; `blend` weighs the style images. Errors: engine errors, bad layer names.
pub fn objective_from_tensors(
    vgg: Arc<Vgg19>,
    content_t: &Tensor,
    style_ts: &[Tensor],
    blend: &[f64],
    cfg: &StyleTransferConfig,
) -> Result<Objective> {
    let content_layers: Vec<&str> = cfg.content_layers.iter().map(String::as_str).collect();
    let style_layers: Vec<&str> = cfg.style_layers.iter().map(String::as_str).collect();
    let content_t = content_t.to_device(vgg.device())?;
    let content_feats =
        engine::no_grad(|| vgg.forward_with(&content_t, &content_layers, cfg.conv))?;
    let mut style_feats = Vec::with_capacity(style_ts.len());
    for st in style_ts {
        let st = st.to_device(vgg.device())?;
        style_feats.push(engine::no_grad(|| {
            vgg.forward_with(&st, &style_layers, cfg.conv)
        })?);
    }
    let mut losses: Vec<Box<dyn Loss>> = Vec::new();
    let n_content = cfg.content_layers.len() as f64;
    for l in &cfg.content_layers {
        losses.push(Box::new(ContentLoss {
            layer: l.clone(),
            target: content_feats[l].clone(),
            weight: cfg.content_weight / n_content,
        }));
    }
    let layers: Vec<(String, f64)> = cfg
        .style_layers
        .iter()
        .zip(&cfg.style_layer_weights)
        .map(|(l, w)| (l.clone(), w * cfg.style_weight))
        .collect();
    let style =
        engine::no_grad(|| StyleLoss::from_styles(cfg.style_loss, &layers, &style_feats, blend))?;
    losses.push(Box::new(style));
    if cfg.tv_weight > 0.0 {
        losses.push(Box::new(TvLoss {
            weight: cfg.tv_weight,
        }));
    }
    Ok(Objective {
        vgg,
        losses,
        conv: cfg.conv,
    })
}

/// The reference objective of tests/data (make_reference.py) and of the PyTorch speed anchor:
/// content relu4_2 ×1, Gram style relu1_1…relu5_1 ×1e-2 each, TV ×10 (the defaults otherwise).
pub fn reference_config() -> StyleTransferConfig {
    StyleTransferConfig {
        content_weight: 1.0,
        style_weight: 1e-2,
        tv_weight: 10.0,
        ..StyleTransferConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field_in_library_words() {
        let check = |cfg: StyleTransferConfig, n: usize, field: ConfigField| match cfg
            .validate(n)
            .unwrap_err()
        {
            Error::Config(e) => {
                assert_eq!(e.field, field);
                assert!(e.to_string().starts_with(field.name()), "{e}");
                assert!(!e.to_string().contains("--"), "{e}");
            }
            e => panic!("not a config error: {e}"),
        };
        let d = StyleTransferConfig::default;
        d().validate(1).unwrap();
        check(
            StyleTransferConfig { size_px: 4, ..d() },
            1,
            ConfigField::SizePx,
        );
        check(d(), 0, ConfigField::StyleImages);
        check(
            StyleTransferConfig {
                style_blend_weights: vec![1.0],
                ..d()
            },
            2,
            ConfigField::StyleBlendWeights,
        );
        check(
            StyleTransferConfig {
                tv_weight: f64::NAN,
                ..d()
            },
            1,
            ConfigField::TvWeight,
        );
        check(
            StyleTransferConfig {
                optimizer: Optimizer::Lbfgs { history: 0 },
                ..d()
            },
            1,
            ConfigField::LbfgsHistory,
        );
        let e = StyleTransferConfig { scales: 9, ..d() }
            .validate(1)
            .unwrap_err();
        assert_eq!(e.to_string(), "scales must be 1..=8, got 9");
    }

    /// Every option type's spellings parse (any case), its Display parses back to itself, and
    /// an unknown value names the option and the accepted values.
    #[test]
    fn option_types_parse_their_spellings_and_display_round_trips() {
        use crate::loss::StyleLossKind;
        use crate::vgg19::Pooling;
        use engine::{ConvAlgorithm, Device, DeviceChoice, Precision};
        use std::fmt::Display;
        use std::str::FromStr;
        fn check<T>(spellings: &[(&str, T)], bad: &str, needle: &str)
        where
            T: FromStr<Err = engine::ParseOptionError> + Display + PartialEq + std::fmt::Debug,
        {
            for (s, v) in spellings {
                assert_eq!(&s.parse::<T>().unwrap(), v, "{s}");
                assert_eq!(&s.to_ascii_uppercase().parse::<T>().unwrap(), v, "{s}");
                assert_eq!(&v.to_string().parse::<T>().unwrap(), v);
            }
            let e = bad.parse::<T>().unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.named("--flag").starts_with("--flag \""), "{e}");
        }
        use OptimizerKind::*;
        check(
            &[("lbfgs", Lbfgs), ("l-bfgs", Lbfgs), ("adam", Adam)],
            "sgd",
            "lbfgs or adam",
        );
        check(
            &[
                ("content", Init::Content),
                ("noise", Init::Noise),
                ("random", Init::Noise),
                ("style", Init::Style),
            ],
            "x.png",
            "content, noise or style",
        );
        check(
            &[
                ("max", Pooling::Max),
                ("avg", Pooling::Avg),
                ("average", Pooling::Avg),
            ],
            "min",
            "max or avg",
        );
        check(
            &[
                ("gram", StyleLossKind::Gram),
                ("mean-std", StyleLossKind::MeanStd),
                ("meanstd", StyleLossKind::MeanStd),
                ("adain", StyleLossKind::MeanStd),
            ],
            "l1",
            "gram or mean-std",
        );
        check(
            &[("f32", Precision::F32), ("bf16", Precision::Bf16)],
            "fp8",
            "f32 or bf16",
        );
        check(
            &[
                ("auto", ConvAlgorithm::Auto),
                ("im2col", ConvAlgorithm::Im2col),
                ("winograd-f2", ConvAlgorithm::WinogradF2),
                ("winograd-f4", ConvAlgorithm::WinogradF4),
            ],
            "fft",
            "winograd-f4",
        );
        check(
            &[
                ("cpu", Device::Cpu),
                ("cuda", Device::Cuda(0)),
                ("cuda:3", Device::Cuda(3)),
            ],
            "tpu",
            "cuda:N",
        );
        check(
            &[
                ("auto", DeviceChoice::Auto),
                ("cpu", DeviceChoice::Exact(Device::Cpu)),
                ("cuda:1", DeviceChoice::Exact(Device::Cuda(1))),
            ],
            "cuda:x",
            "cpu, cuda, cuda:N or auto",
        );
        assert_eq!(
            DeviceChoice::default().resolve().unwrap(),
            (Device::Cpu, false)
        );
    }
}
