//! The flags that define the objective, shared by `transfer` (which minimises it) and `eval`
//! (which measures finished pictures under it), so both read the same settings the same way.

use crate::common::parse_flag;
use anyhow::Result;
use clap::Args;
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
    /// Comma-separated VGG-19 layers for the style loss.
    #[arg(
        long,
        default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
        value_delimiter = ','
    )]
    pub style_layers: Vec<String>,
    /// Comma-separated weight per style layer [default: 1 each].
    #[arg(long, value_delimiter = ',')]
    pub style_layer_weights: Option<Vec<f64>>,
    /// Weight of the content loss (mean squared feature difference).
    #[arg(long, default_value_t = 5.0)]
    pub content_weight: f64,
    /// Weight of the style loss (mean squared Gram difference, summed over layers).
    #[arg(long, default_value_t = 100.0)]
    pub style_weight: f64,
    /// Weight of the total-variation loss (mean squared neighbour difference, preprocessed units).
    #[arg(long, default_value_t = 10.0)]
    pub tv_weight: f64,
    /// Comma-separated weight per style image (normalised to sum 1) [default: equal].
    #[arg(long, value_delimiter = ',')]
    pub style_blend_weights: Option<Vec<f64>>,
    /// Style statistics to match: gram (Gatys) or mean-std (AdaIN moments, Huang & Belongie).
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
        Ok(StyleTransferConfig {
            style_scale: self.style_scale,
            content_layers: self.content_layers.clone(),
            style_layers: self.style_layers.clone(),
            style_layer_weights: self
                .style_layer_weights
                .clone()
                .unwrap_or_else(|| vec![1.0; self.style_layers.len()]),
            content_weight: self.content_weight,
            style_weight: self.style_weight,
            tv_weight: self.tv_weight,
            style_blend_weights: self.style_blend_weights.clone().unwrap_or_default(),
            style_loss: parse_flag::<StyleLossKind>("--style-loss", &self.style_loss)?,
            ..base
        })
    }

    /// `--pooling` parsed.
    pub fn pooling(&self) -> Result<Pooling> {
        parse_flag("--pooling", &self.pooling)
    }
}
