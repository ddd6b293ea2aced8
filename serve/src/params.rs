//! A job's settings as the API takes them (multipart text fields) and as job.json keeps them, and
//! their translation into an [`nst::transfer::StyleTransferConfig`].

use nst::engine::{Device, DeviceChoice, DeviceChoiceError};
use nst::loss::StyleLossKind;
use nst::transfer::{Init, OptimizerKind, StyleTransferConfig};
use nst::{ConfigField, ParseOptionError};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The settings of one job. Defaults are `nst-cli transfer`'s (the library's
/// `StyleTransferConfig::default()`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Params {
    /// Longest side of the output, px.
    pub size: usize,
    /// Iterations at each scale (the cap when `tolerance` > 0).
    pub iterations: usize,
    /// Stop a scale once the objective fell by less than this fraction over the library's
    /// window (`StyleTransferConfig::tolerance_window`); 0: run all `iterations`.
    pub tolerance: f64,
    /// Coarse-to-fine scales.
    pub scales: usize,
    /// "lbfgs" or "adam".
    pub optimizer: String,
    /// Adam step size (0–255 pixel units).
    pub learning_rate: f64,
    /// Keep the content's colours (luminance-only transfer).
    pub original_colors: bool,
    /// "cpu" (the only backend built).
    pub device: String,
    pub content_weight: f64,
    pub style_weight: f64,
    pub tv_weight: f64,
    /// Style images are resized to this fraction of `size`.
    pub style_scale: f64,
    /// One weight per style image (normalised to sum 1); empty: equal.
    pub style_weights: Vec<f64>,
    /// "content", "noise" or "style".
    pub init: String,
    /// "gram", "mean-std", "w2", "sliced-w" or "mrf" (`nst::loss::StyleLossKind`).
    pub style_loss: String,
    pub seed: u64,
    /// A preview image every this many iterations.
    pub preview_every: usize,
    /// Keep the preview on disk as an intermediate image every this many iterations (0: never).
    pub snapshot_every: usize,
}

impl Default for Params {
    fn default() -> Self {
        let d = StyleTransferConfig::default();
        Params {
            size: d.size_px,
            iterations: d.iterations,
            tolerance: d.tolerance,
            scales: d.scales,
            optimizer: "lbfgs".into(),
            learning_rate: 10.0,
            original_colors: d.original_colors,
            device: "cpu".into(),
            content_weight: d.content_weight,
            style_weight: d.style_weight,
            tv_weight: d.tv_weight,
            style_scale: d.style_scale,
            style_weights: vec![],
            init: "content".into(),
            style_loss: "gram".into(),
            seed: d.seed,
            preview_every: 5,
            snapshot_every: 50,
        }
    }
}

/// Server-wide caps a job's settings must respect.
#[derive(Clone, Debug, Serialize)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub max_pixels: u64,
    pub max_size: usize,
    pub max_iterations: usize,
    pub max_queued: usize,
}

fn num<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("field {field}: {v:?} is not a valid number"))
}

/// `v` of API field `field` parsed with its option type's `FromStr` (the same spellings as the
/// CLI's flags); the error names the field.
fn parse_field<T: FromStr<Err = ParseOptionError>>(field: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|e: ParseOptionError| e.named(field))
}

fn finite(field: &str, v: &str) -> Result<f64, String> {
    let x: f64 = num(field, v)?;
    if !x.is_finite() || x < 0.0 {
        return Err(format!(
            "field {field}: must be a finite number ≥ 0, got {v}"
        ));
    }
    Ok(x)
}

/// The API field that sets a configuration field (the library's name for those the API does
/// not expose).
pub fn json_field(field: ConfigField) -> &'static str {
    match field {
        ConfigField::SizePx => "size",
        ConfigField::StyleScale => "style_scale",
        ConfigField::ContentLayers => "content_layers",
        ConfigField::StyleLayers => "style_layers",
        ConfigField::StyleLayerWeights => "style_layer_weights",
        ConfigField::ContentWeight => "content_weight",
        ConfigField::StyleWeight => "style_weight",
        ConfigField::TvWeight => "tv_weight",
        ConfigField::StyleBlendWeights => "style_weights",
        ConfigField::StyleLoss => "style_loss",
        ConfigField::ContentMasks => "content_masks",
        ConfigField::StyleMasks => "style_masks",
        ConfigField::Optimizer => "optimizer",
        ConfigField::LbfgsHistory => "lbfgs_history",
        ConfigField::LearningRate => "learning_rate",
        ConfigField::Iterations => "iterations",
        ConfigField::Tolerance => "tolerance",
        ConfigField::ToleranceWindow => "tolerance_window",
        ConfigField::Init => "init",
        ConfigField::Seed => "seed",
        ConfigField::OriginalColors => "original_colors",
        ConfigField::Scales => "scales",
        ConfigField::StyleImages => "style",
    }
}

/// A library error in the API's words: a configuration error names the JSON field.
pub fn in_field_words(e: nst::Error) -> String {
    match e {
        nst::Error::Config(c) => format!("{} {}", json_field(c.field), c.reason),
        e => e.to_string(),
    }
}

impl Params {
    /// Set one field from a multipart text value. Errors: an unknown field or a bad value, with
    /// the field's name.
    pub fn set(&mut self, field: &str, v: &str) -> Result<(), String> {
        match field {
            "size" => self.size = num(field, v)?,
            "iterations" => self.iterations = num(field, v)?,
            "tolerance" => self.tolerance = finite(field, v)?,
            "scales" => self.scales = num(field, v)?,
            "optimizer" => self.optimizer = v.trim().to_ascii_lowercase(),
            "learning_rate" => self.learning_rate = finite(field, v)?,
            "original_colors" => {
                self.original_colors = match v.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "on" | "yes" => true,
                    "" | "0" | "false" | "off" | "no" => false,
                    _ => return Err(format!("field {field}: expected true or false, got {v:?}")),
                }
            }
            "device" => self.device = v.trim().to_ascii_lowercase(),
            "content_weight" => self.content_weight = finite(field, v)?,
            "style_weight" => self.style_weight = finite(field, v)?,
            "tv_weight" => self.tv_weight = finite(field, v)?,
            "style_scale" => self.style_scale = finite(field, v)?,
            "style_weights" => {
                self.style_weights = v
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| finite(field, s))
                    .collect::<Result<_, _>>()?
            }
            "init" => self.init = v.trim().to_ascii_lowercase(),
            "style_loss" => self.style_loss = v.trim().to_ascii_lowercase(),
            "seed" => self.seed = num(field, v)?,
            "preview_every" => self.preview_every = num(field, v)?,
            "snapshot_every" => self.snapshot_every = num(field, v)?,
            _ => return Err(format!("unknown field {field:?}")),
        }
        Ok(())
    }

    /// The device this job runs on: `cpu`, `cuda` (= `cuda:0`), `cuda:N`, or `auto` (the first
    /// GPU if there is one, else the CPU). Errors: one message naming the device and, when no
    /// GPU is usable, why.
    pub fn engine_device(&self) -> Result<Device, String> {
        let d = self.device.as_str();
        match parse_field::<DeviceChoice>("device", d)?.resolve() {
            Ok((device, _)) => Ok(device),
            Err(DeviceChoiceError::NoGpu(why)) => Err(format!(
                "device {d}: no CUDA device on this server ({why}); use cpu"
            )),
            Err(DeviceChoiceError::NoSuchGpu { present, .. }) => Err(format!(
                "device {d}: this server has {present} CUDA device(s)"
            )),
        }
    }

    /// Check the settings against `limits` and build the transfer configuration for
    /// `n_styles` style images. Errors: one message naming the field.
    pub fn config(&self, n_styles: usize, limits: &Limits) -> Result<StyleTransferConfig, String> {
        self.engine_device()?;
        if !(16..=limits.max_size).contains(&self.size) {
            return Err(format!(
                "size {} px: must be 16..={} px on this server",
                self.size, limits.max_size
            ));
        }
        if !(1..=limits.max_iterations).contains(&self.iterations) {
            return Err(format!(
                "iterations {}: must be 1..={} on this server",
                self.iterations, limits.max_iterations
            ));
        }
        if !(1..=4).contains(&self.scales) {
            return Err(format!("scales {}: must be 1..=4", self.scales));
        }
        if self.preview_every == 0 {
            return Err("preview_every must be ≥ 1".into());
        }
        if !self.style_weights.is_empty() {
            if self.style_weights.len() != n_styles {
                return Err(format!(
                    "style_weights has {} values for {n_styles} style images",
                    self.style_weights.len()
                ));
            }
            if self.style_weights.iter().sum::<f64>() <= 0.0 {
                return Err("style_weights: at least one must be > 0".into());
            }
        }
        let d = StyleTransferConfig::default();
        let history = match d.optimizer {
            nst::transfer::Optimizer::Lbfgs { history } => history,
            _ => 10,
        };
        let optimizer = parse_field::<OptimizerKind>("optimizer", &self.optimizer)?
            .with(history, self.learning_rate);
        // `fast` (the instant picture) is built by the worker, which has the networks.
        let init: Init = match self.init.as_str() {
            "fast" => Init::Content,
            other => parse_field("init", other)?,
        };
        let style_loss: StyleLossKind = parse_field("style_loss", &self.style_loss)?;
        // The mrf loss reads its own layers (the shallow ones would take hours).
        let (style_layers, style_layer_weights) = if style_loss == StyleLossKind::Mrf {
            nst::loss::mrf::default_layers()
        } else {
            (d.style_layers.clone(), d.style_layer_weights.clone())
        };
        let cfg = StyleTransferConfig {
            style_layers,
            style_layer_weights,
            size_px: self.size,
            style_scale: self.style_scale,
            content_weight: self.content_weight,
            style_weight: self.style_weight,
            tv_weight: self.tv_weight,
            style_blend_weights: self.style_weights.clone(),
            style_loss,
            optimizer,
            iterations: self.iterations,
            tolerance: self.tolerance,
            init,
            seed: self.seed,
            original_colors: self.original_colors,
            scales: self.scales,
            ..d
        };
        cfg.validate(n_styles).map_err(in_field_words)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_upload_bytes: 1 << 20,
            max_pixels: 1 << 20,
            max_size: 1024,
            max_iterations: 1000,
            max_queued: 8,
        }
    }

    #[test]
    fn fields_parse_and_map_onto_the_config() {
        let mut p = Params::default();
        for (k, v) in [
            ("size", "48"),
            ("iterations", "7"),
            ("optimizer", "Adam"),
            ("learning_rate", "2.5"),
            ("original_colors", "on"),
            ("style_weights", "1,3"),
        ] {
            p.set(k, v).unwrap();
        }
        let cfg = p.config(2, &limits()).unwrap();
        assert_eq!(cfg.size_px, 48);
        assert_eq!(cfg.iterations, 7);
        assert_eq!(
            cfg.optimizer,
            nst::transfer::Optimizer::Adam { learning_rate: 2.5 }
        );
        assert!(cfg.original_colors);
        assert_eq!(cfg.style_blend_weights, vec![1.0, 3.0]);
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut p = Params::default();
        assert!(p.set("size", "big").unwrap_err().contains("size"));
        assert!(p.set("nope", "1").unwrap_err().contains("unknown field"));
        assert!(p.set("tv_weight", "-1").unwrap_err().contains("tv_weight"));
        p.size = 4096;
        assert!(p.config(1, &limits()).unwrap_err().contains("size 4096"));
        p.size = 64;
        p.device = "tpu".into();
        assert!(p
            .config(1, &limits())
            .unwrap_err()
            .contains("expected cpu, cuda"));
        p.device = "cuda:99".into();
        assert!(p.config(1, &limits()).unwrap_err().contains("cuda:99"));
        p.device = "auto".into();
        assert!(p.engine_device().is_ok());
        p.device = "cpu".into();
        p.style_weights = vec![1.0];
        assert!(p
            .config(2, &limits())
            .unwrap_err()
            .contains("style_weights"));
        // The library's checks are reported with the API's field names, never a CLI flag.
        p.style_weights = vec![];
        p.style_scale = 0.0;
        let e = p.config(1, &limits()).unwrap_err();
        assert!(e.starts_with("style_scale "), "{e}");
        assert!(!e.contains("--"), "{e}");
    }
}
