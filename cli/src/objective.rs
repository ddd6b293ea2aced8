//! The flags that define the objective, shared by `transfer` (which minimises it) and `eval`
//! (which measures finished pictures under it), so both read the same settings the same way.

use crate::common::parse_flag;
use anyhow::Result;
use clap::Args;
use nst::config::default_style_layer_weights;
use nst::loss::mrf;
use nst::loss::StyleLossKind;
use nst::transfer::StyleTransferConfig;
use nst::vgg19::Pooling;
use std::path::PathBuf;

/// The objective's layers, weights and statistics, and the network it reads.
#[derive(Debug, Args)]
pub struct ObjectiveArgs {
    /// Style images are resized to this fraction of --size (on their longest side).
    #[arg(long, default_value_t = 1.0)]
    pub style_scale: f64,
    /// Comma-separated VGG-19 layers for the content loss.
    #[arg(long, default_value = "relu4_2", value_delimiter = ',')]
    pub content_layers: Vec<String>,
    /// Comma-separated VGG-19 layers for the style loss [default:
    /// relu1_1,relu2_1,relu3_1,relu4_1,relu5_1; with --style-loss mrf: relu3_1,relu4_1].
    #[arg(long, value_delimiter = ',')]
    pub style_layers: Option<Vec<String>>,
    /// Comma-separated weight per style layer [default: 4,0.8,0.4,2,0.4 for relu1_1…relu5_1,
    /// 1 for any other layer; mrf: 1,1 for relu3_1,relu4_1].
    #[arg(long, value_delimiter = ',')]
    pub style_layer_weights: Option<Vec<f64>>,
    /// Weight of the content loss (relative: content_rel²; absolute: mean squared feature
    /// difference).
    #[arg(long, default_value_t = StyleTransferConfig::default().content_weight)]
    pub content_weight: f64,
    /// Weight of the style loss (relative: gram_rel² per layer; absolute: mean squared Gram
    /// difference), times each layer's weight, summed over layers.
    #[arg(long, default_value_t = StyleTransferConfig::default().style_weight)]
    pub style_weight: f64,
    /// Units of the content and style terms: relative (each divided by its target's mean
    /// square, so they are content_rel² and gram_rel², and the weights balance the same on every
    /// pair) or absolute (jcjohnson/neural-style's units).
    #[arg(long, default_value = "relative")]
    pub loss_scale: String,
    /// Weight of the total-variation loss (mean squared neighbour difference, preprocessed
    /// units, in both loss scales; jcjohnson-like absolute runs used 10).
    #[arg(long, default_value_t = StyleTransferConfig::default().tv_weight)]
    pub tv_weight: f64,
    /// Comma-separated weight per style image (normalised to sum 1) [default: equal].
    #[arg(long, value_delimiter = ',')]
    pub style_blend_weights: Option<Vec<f64>>,
    /// Style statistics to match: gram (Gram matrices; Gatys et al., CVPR 2016), mean-std
    /// (per-channel mean and std, the AdaIN moments; Huang & Belongie, ICCV 2017), w2 (the
    /// Wasserstein-2 distance between Gaussians fitted to the features, mean and covariance;
    /// crowsonkb's style-transfer-pytorch), sliced-w (sliced Wasserstein distance between the
    /// feature distributions over random directions redrawn every iteration; Heitz et al., CVPR
    /// 2021) or mrf (nearest 3×3 feature patches, Li & Wand, CVPR 2016; slower: see README).
    /// Masks (--content-mask) work with gram and mean-std only.
    #[arg(long, default_value = "gram")]
    pub style_loss: String,
    /// Pooling in VGG-19: max or avg.
    #[arg(long, default_value = "max")]
    pub pooling: String,
    /// VGG-19 weights (.safetensors from `nst-cli weights`) [default: the cache].
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

impl ObjectiveArgs {
    /// `base` with the objective's fields set from these flags (not validated).
    pub fn config(&self, base: StyleTransferConfig) -> Result<StyleTransferConfig> {
        let style_loss = parse_flag::<StyleLossKind>("--style-loss", &self.style_loss)?;
        let mrf = style_loss == StyleLossKind::Mrf;
        let style_layers = match (&self.style_layers, mrf) {
            (Some(l), _) => l.clone(),
            (None, true) => mrf::default_layers().0,
            (None, false) => base.style_layers.clone(),
        };
        let default_weights = || match (&self.style_layers, mrf) {
            (None, true) => mrf::default_layers().1,
            _ => default_style_layer_weights(&style_layers),
        };
        Ok(StyleTransferConfig {
            style_scale: self.style_scale,
            content_layers: self.content_layers.clone(),
            style_layer_weights: self
                .style_layer_weights
                .clone()
                .unwrap_or_else(default_weights),
            style_layers,
            content_weight: self.content_weight,
            style_weight: self.style_weight,
            tv_weight: self.tv_weight,
            relative_losses: match self.loss_scale.to_ascii_lowercase().as_str() {
                "relative" => true,
                "absolute" => false,
                other => anyhow::bail!("--loss-scale {other:?}: expected relative or absolute"),
            },
            style_blend_weights: self.style_blend_weights.clone().unwrap_or_default(),
            style_loss,
            ..base
        })
    }

    /// `--pooling` parsed.
    pub fn pooling(&self) -> Result<Pooling> {
        parse_flag("--pooling", &self.pooling)
    }
}
