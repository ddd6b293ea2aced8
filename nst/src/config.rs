//! The style-transfer configuration: optimiser, initial image, loss weights and layers, scales,
//! and how the convolutions run; its validation (typed [`ConfigError`]s that name the field).

use crate::error::{ConfigError, ConfigField, Error, Result};
use crate::image::RgbImage;
use crate::loss::StyleLossKind;
use crate::vgg19::layer_names;

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

/// The default weight of each of the default style layers (relu1_1 … relu5_1) under relative
/// losses (README, "Defaults, and why"); [`default_style_layer_weights`] gives 1 to any other.
pub const DEFAULT_STYLE_LAYER_WEIGHTS: [(&str, f64); 5] = [
    ("relu1_1", 4.0),
    ("relu2_1", 0.8),
    ("relu3_1", 0.4),
    ("relu4_1", 2.0),
    ("relu5_1", 0.4),
];

/// The default weight of each of `layers`: [`DEFAULT_STYLE_LAYER_WEIGHTS`] for relu1_1 …
/// relu5_1, 1 for any other layer.
pub fn default_style_layer_weights<S: AsRef<str>>(layers: &[S]) -> Vec<f64> {
    layers
        .iter()
        .map(|l| {
            DEFAULT_STYLE_LAYER_WEIGHTS
                .iter()
                .find(|(n, _)| *n == l.as_ref())
                .map_or(1.0, |(_, w)| *w)
        })
        .collect()
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
    /// Scale-free losses: the content term and each style layer's term are divided by their
    /// target's mean square (so they are `content_rel²` and `gram_rel²`), and the weights
    /// balance relative errors the same way on every pair. Off: jcjohnson/neural-style's
    /// absolute units ([`crate::transfer::absolute_weights`]).
    pub relative_losses: bool,
    /// One weight per style image (normalised to sum 1).
    pub style_blend_weights: Vec<f64>,
    pub style_loss: StyleLossKind,
    /// Guided transfer (Gatys et al. 2017, [`crate::loss::guided`]): empty, or one mask per
    /// style image, white where that style applies in the picture (the content's aspect ratio
    /// within 2%, any size). Only the gram and mean-std style losses take masks.
    pub content_masks: Vec<RgbImage>,
    /// With `content_masks`: empty (all of each style image), or one mask per style image,
    /// white = the part of the painting whose statistics are matched (its aspect ratio).
    pub style_masks: Vec<RgbImage>,
    pub optimizer: Optimizer,
    /// Iterations at each scale (L-BFGS: steps; Adam: updates): the cap, when `tolerance`
    /// stops a scale earlier.
    pub iterations: usize,
    /// The stopping rule: a scale ends once the total objective fell by less than this
    /// fraction of its value over the last `tolerance_window` iterations ([`crate::transfer::StopRule`];
    /// 0: every scale runs all `iterations`).
    pub tolerance: f64,
    /// The window of the stopping rule, in iterations; no scale stops before `tolerance_window + 1`.
    pub tolerance_window: usize,
    pub init: Init,
    pub seed: u64,
    /// Keep the content's colours (luminance-only transfer).
    pub original_colors: bool,
    /// Number of scales, coarse to fine; each halves the previous side (never below 64 px).
    pub scales: usize,
    /// How the network's convolutions run: the CPU's algorithm, and the precision (CPU: bf16
    /// input gradients, faster with AVX-512-BF16, loss within 0.2% of f32's; GPU: TF32 GEMMs).
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
            style_layer_weights: DEFAULT_STYLE_LAYER_WEIGHTS.map(|(_, w)| w).to_vec(),
            content_weight: 1.0,
            style_weight: 1.0,
            tv_weight: 1e-5,
            relative_losses: true,
            style_blend_weights: vec![],
            style_loss: StyleLossKind::Gram,
            content_masks: vec![],
            style_masks: vec![],
            optimizer: Optimizer::Lbfgs { history: 10 },
            iterations: 100,
            tolerance: 0.05,
            tolerance_window: 10,
            init: Init::Content,
            seed: 0,
            original_colors: false,
            scales: 3,
            conv: engine::ConvConfig::default(),
        }
    }
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
        if let Some(w) = self
            .style_layer_weights
            .iter()
            .find(|w| !w.is_finite() || **w < 0.0)
        {
            return bad(
                ConfigField::StyleLayerWeights,
                format!("must be finite numbers ≥ 0, got {w}"),
            );
        }
        if self.iterations == 0 {
            return bad(ConfigField::Iterations, "must be ≥ 1".into());
        }
        if !self.tolerance.is_finite() || !(0.0..1.0).contains(&self.tolerance) {
            return bad(
                ConfigField::Tolerance,
                format!("must be a number in [0, 1), got {}", self.tolerance),
            );
        }
        if self.tolerance_window == 0 {
            return bad(ConfigField::ToleranceWindow, "must be ≥ 1".into());
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
        if let Some(w) = self
            .style_blend_weights
            .iter()
            .find(|w| !w.is_finite() || **w < 0.0)
        {
            return bad(
                ConfigField::StyleBlendWeights,
                format!("must be finite numbers ≥ 0, got {w}"),
            );
        }
        if !self.style_blend_weights.is_empty()
            && self.style_blend_weights.iter().sum::<f64>() <= 0.0
        {
            return bad(ConfigField::StyleBlendWeights, "must not all be 0".into());
        }
        crate::loss::guided::check_config(self, n_styles)?;
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

/// The convolutions' reduced precision that `--precision` names (the CLI's and the server's
/// flag): `f32`, `bf16`, or `auto`. On the CPU `bf16` rounds the input gradients' Winograd
/// operands to bf16; on a GPU it runs the convolutions' GEMMs (forward and input gradient) on
/// TF32 tensor cores ([`engine::ConvConfig`]). `auto` is bf16 on a GPU, and on a CPU where
/// bf16 is faster ([`engine::cpu_bf16_is_faster`]: AMX, or AVX-512-BF16 on an AMD; it honours
/// `NST_SIMD` and `NST_AMX`), else f32. `auto` is the default of `transfer`, `video` and
/// `serve`: on an AMD Zen 5 it took 17–19% less CPU time per 512-px run with the same measures
/// of the picture, and on an H200 TF32 took 0.59–0.67× the time of f32 per iteration (README,
/// "Defaults, and why"; benches/README.md).
///
/// # Errors
/// A string that is none of the three (any case), naming them.
pub fn precision_choice(
    s: &str,
    device: engine::Device,
) -> std::result::Result<engine::Precision, engine::ParseOptionError> {
    use engine::Precision;
    if s.eq_ignore_ascii_case("auto") {
        let bf16 = device != engine::Device::Cpu || engine::cpu_bf16_is_faster();
        return Ok(if bf16 {
            Precision::Bf16
        } else {
            Precision::F32
        });
    }
    s.parse::<Precision>()
        .map_err(|_| engine::ParseOptionError::new("precision", s, "auto, f32 or bf16"))
}

/// What a front end notes after [`precision_choice`] resolved `s` to `p` for `device`: an
/// explicit `bf16` on a CPU where it is not faster ([`engine::cpu_bf16_is_faster`]) runs (it
/// rounds the same) but at or below f32's speed. `auto` never asks for it there, so it never
/// gets the note.
pub fn precision_note(
    s: &str,
    p: engine::Precision,
    device: engine::Device,
) -> Option<&'static str> {
    let explicit_bf16 = p == engine::Precision::Bf16
        && !s.eq_ignore_ascii_case("auto")
        && device == engine::Device::Cpu;
    (explicit_bf16 && !engine::cpu_bf16_is_faster()).then_some(
        "note: --precision bf16 is not faster than f32 on this CPU (that needs AMX, or AVX-512-BF16 on an AMD; NST_SIMD or NST_AMX=0 may cap it): it rounds as asked",
    )
}

/// The reference objective of tests/data (make_reference.py) and of the PyTorch speed anchor:
/// content relu4_2 ×1, Gram style relu1_1…relu5_1 ×1e-2 each, TV ×10 (the defaults otherwise).
pub fn reference_config() -> StyleTransferConfig {
    StyleTransferConfig {
        content_weight: 1.0,
        style_weight: 1e-2,
        tv_weight: 10.0,
        relative_losses: false,
        style_layer_weights: vec![1.0; 5],
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
        // Bad numbers that used to run (to a NaN picture, or to the resized content).
        check(
            StyleTransferConfig {
                iterations: 0,
                ..d()
            },
            1,
            ConfigField::Iterations,
        );
        for bad in [f64::NAN, -1.0, f64::INFINITY] {
            check(
                StyleTransferConfig {
                    style_layer_weights: vec![1.0, bad, 1.0, 1.0, 1.0],
                    ..d()
                },
                1,
                ConfigField::StyleLayerWeights,
            );
            check(
                StyleTransferConfig {
                    style_blend_weights: vec![1.0, bad],
                    ..d()
                },
                2,
                ConfigField::StyleBlendWeights,
            );
        }
        check(
            StyleTransferConfig {
                style_blend_weights: vec![0.0, 0.0],
                ..d()
            },
            2,
            ConfigField::StyleBlendWeights,
        );
        let e = StyleTransferConfig { scales: 9, ..d() }
            .validate(1)
            .unwrap_err();
        assert_eq!(e.to_string(), "scales must be 1..=8, got 9");
    }

    /// `--precision auto` is bf16 on a GPU and where bf16 is faster on the CPU; f32 and bf16
    /// are taken as given; anything else names the three.
    #[test]
    fn precision_choice_resolves_auto_by_device_and_cpu() {
        use engine::{Device, Precision};
        let here = if engine::cpu_bf16_is_faster() {
            Precision::Bf16
        } else {
            Precision::F32
        };
        assert_eq!(precision_choice("auto", Device::Cpu), Ok(here));
        assert_eq!(
            precision_choice("AUTO", Device::Cuda(0)),
            Ok(Precision::Bf16)
        );
        assert_eq!(
            precision_choice("bf16", Device::Cuda(0)),
            Ok(Precision::Bf16)
        );
        assert_eq!(precision_choice("F32", Device::Cpu), Ok(Precision::F32));
        // The "not faster here" note: only for an explicit bf16 on a CPU where bf16 is not faster.
        assert_eq!(precision_note("auto", here, Device::Cpu), None);
        assert_eq!(precision_note("f32", Precision::F32, Device::Cpu), None);
        assert_eq!(
            precision_note("BF16", Precision::Bf16, Device::Cpu).is_some(),
            !engine::cpu_bf16_is_faster()
        );
        // On a GPU bf16 means TF32 tensor cores: never "not faster".
        assert_eq!(
            precision_note("bf16", Precision::Bf16, Device::Cuda(0)),
            None
        );
        let e = precision_choice("fp8", Device::Cpu).unwrap_err();
        assert_eq!(
            e.named("--precision"),
            "--precision \"fp8\": expected auto, f32 or bf16"
        );
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
                ("w2", StyleLossKind::W2),
                ("sliced-w", StyleLossKind::SlicedW),
                ("slicedw", StyleLossKind::SlicedW),
                ("swd", StyleLossKind::SlicedW),
                ("mrf", StyleLossKind::Mrf),
            ],
            "l1",
            "gram, mean-std, w2, sliced-w or mrf",
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
