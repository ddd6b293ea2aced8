//! Measures of a finished picture (the "evaluate the results" step): the objective that
//! [`crate::transfer::run`] minimises, evaluated as its last scale would, and scale-free
//! measures that compare pictures made under different settings.
//!
//! - `gram_rel[l] = ‖G_l(picture) − A_l‖_F / ‖A_l‖_F` per style layer, with `A_l` the blended
//!   style Gram target and `G = F Fᵀ / (C·H·W)` (the loss's normalisation, [`crate::loss`]),
//!   whatever statistics the style loss matches; and their mean.
//! - `content_rel[l] = ‖F_l(picture) − P_l‖_F / ‖P_l‖_F` per content layer (relu4_2 by
//!   default), `P` the content image's features.
//! - `ssim`: SSIM ([`ssim`], Wang et al. 2004) of the luminance against the content image.
//!
//! The picture is evaluated at its own size, never resized: it is what `transfer` saved at its
//! last scale. So `size_px` must be the picture's longest side, and the content image is
//! resized (Lanczos3) to the picture's size, which must be the content's aspect ratio (the
//! size `transfer` gives it, within a pixel). The style images are resized as the last scale
//! resizes them ([`crate::transfer::style_tensors`]).

pub mod flicker;
pub mod ssim;
#[cfg(test)]
mod tests;

pub use flicker::{flicker, FlickerMeter};

use crate::config::StyleTransferConfig;
use crate::error::{ConfigError, ConfigField, Error, Result};
use crate::image::{fit_longest, RgbImage};
use crate::loss::{StyleLoss, StyleLossKind};
use crate::transfer::{
    absolute_weights, blend_weights, objective_from_features, style_tensors, target_features,
};
use crate::vgg19::Vgg19;
use engine::Tensor;
use std::sync::Arc;

/// One term of the objective.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// As in the run's log: `content` (relu4_2) or `content.<layer>`, `style.<layer>`, `tv`.
    pub name: String,
    /// Its unweighted value (as `transfer --log-json` records it).
    pub value: f64,
    /// Its weight in the total (content weight / number of content layers, style weight ×
    /// layer weight, TV weight).
    pub weight: f64,
}

/// What [`evaluate`] measures of one picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Measures {
    /// (width, height) in pixels: the picture's own size, at which everything is evaluated.
    pub size: (usize, usize),
    /// The objective, Σ weight · value over `terms`.
    pub total: f64,
    /// The objective's terms, in the objective's order.
    pub terms: Vec<Term>,
    /// (style layer, Gram relative error), in the configuration's order.
    pub gram_rel: Vec<(String, f64)>,
    /// The mean of `gram_rel`'s values.
    pub gram_rel_mean: f64,
    /// (content layer, relative feature error), in the configuration's order.
    pub content_rel: Vec<(String, f64)>,
    /// SSIM of the luminance (0..=1 units) against the content image at the picture's size.
    pub ssim: f64,
}

impl Measures {
    /// Σ weight · value of the terms named `group` or `group.…` (`content`, `style`, `tv`):
    /// the group's part of `total`.
    pub fn weighted(&self, group: &str) -> f64 {
        self.terms
            .iter()
            .filter(|t| {
                t.name == group
                    || t.name
                        .strip_prefix(group)
                        .is_some_and(|r| r.starts_with('.'))
            })
            .map(|t| t.weight * t.value)
            .sum()
    }
}

/// The weight of each term [`crate::transfer::objective_from_features`] builds, in its order.
fn term_weights(cfg: &StyleTransferConfig) -> Vec<f64> {
    let n_content = cfg.content_layers.len() as f64;
    let mut w: Vec<f64> = vec![cfg.content_weight / n_content; cfg.content_layers.len()];
    w.extend(
        cfg.style_layer_weights
            .iter()
            .map(|lw| lw * cfg.style_weight),
    );
    if cfg.tv_weight > 0.0 {
        w.push(cfg.tv_weight);
    }
    w
}

/// `‖a − b‖_F / ‖b‖_F` of two same-shaped tensors, summed in f64 on the host (∞ when `b` is
/// zero and `a` is not, 0 when both are).
fn rel_frobenius(a: &Tensor, b: &Tensor) -> Result<f64> {
    let a = a.to_device(engine::Device::Cpu)?.to_vec_f64()?;
    let b = b.to_device(engine::Device::Cpu)?.to_vec_f64()?;
    if a.len() != b.len() {
        return Err(Error::InvalidArgument(format!(
            "relative error of {} values against {}",
            a.len(),
            b.len()
        )));
    }
    let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    Ok(if diff == 0.0 {
        0.0
    } else {
        (diff / norm).sqrt()
    })
}

/// The feature map at `layer`, which the forward was asked for.
fn feature<'a>(feats: &'a crate::loss::Features, layer: &str) -> Result<&'a Tensor> {
    feats
        .get(layer)
        .ok_or_else(|| Error::InvalidArgument(format!("feature {layer} was not computed")))
}

/// The size checks of [`evaluate`], from the images alone (before loading a network):
/// `size_px` is the picture's longest side, and the picture has the content's aspect ratio
/// (within a pixel of `fit_longest`). Errors: [`Error::Config`] naming `size_px`,
/// [`Error::InvalidArgument`] for another aspect ratio.
pub fn check_picture(
    picture: &RgbImage,
    content: &RgbImage,
    cfg: &StyleTransferConfig,
) -> Result<()> {
    let (w, h) = picture.size();
    let side = w.max(h);
    if cfg.size_px != side {
        return Err(Error::Config(ConfigError {
            field: ConfigField::SizePx,
            reason: format!(
                "{} differs from the picture's longest side ({w}×{h} px): a picture is \
                 evaluated at its own size",
                cfg.size_px
            ),
        }));
    }
    let (ew, eh) = fit_longest(content.width, content.height, side);
    if ew.abs_diff(w) > 1 || eh.abs_diff(h) > 1 {
        return Err(Error::InvalidArgument(format!(
            "the picture is {w}×{h} px but the content image ({}×{}) at {side} px on its \
             longest side is {ew}×{eh}: a different aspect ratio, not a picture of this content",
            content.width, content.height
        )));
    }
    Ok(())
}

/// The objective of `cfg` at `picture` (as [`crate::transfer::run`]'s last scale evaluates
/// it) and the scale-free measures of the module docs. `picture` and `content` are RGB images
/// in 0..=1 (any sizes, see the module docs); `styles` are the style images as given to the
/// run (blended by `cfg.style_blend_weights`). `vgg` must reach every layer of `cfg`.
/// Errors: an invalid `cfg` ([`Error::Config`]: `size_px` when it is not the picture's longest
/// side), a picture of another aspect ratio than the content's, images too small for the
/// layers or too large for the memory ([`crate::plan::check`]), engine errors.
pub fn evaluate(
    vgg: Arc<Vgg19>,
    picture: &RgbImage,
    content: &RgbImage,
    styles: &[RgbImage],
    cfg: &StyleTransferConfig,
) -> Result<Measures> {
    cfg.validate(styles.len())?;
    check_picture(picture, content, cfg)?;
    let (w, h) = picture.size();
    let style_sizes: Vec<_> = styles.iter().map(RgbImage::size).collect();
    crate::plan::check(&style_sizes, cfg, &[(w, h)])?;
    let content_img = content.resize(w, h);
    let content_t = vgg.preprocess(&content_img.data, w, h)?;
    let picture_t = vgg.preprocess(&picture.data, w, h)?;
    let content_layers: Vec<&str> = cfg.content_layers.iter().map(String::as_str).collect();
    let style_layers: Vec<&str> = cfg.style_layers.iter().map(String::as_str).collect();
    let content_feats = target_features(&vgg, &content_t, &content_layers, cfg)?;
    let mut style_feats = Vec::with_capacity(styles.len());
    for st in style_tensors(&vgg, styles, cfg, w.max(h))? {
        style_feats.push(target_features(&vgg, &st, &style_layers, cfg)?);
    }
    let blend = blend_weights(cfg, styles.len());
    let objective =
        objective_from_features(vgg.clone(), &content_feats, &style_feats, &blend, cfg)?;
    let eval = objective.evaluate(&picture_t)?;
    // The weights the objective used (relative losses: divided by the targets' mean squares).
    let weights = term_weights(&absolute_weights(
        cfg,
        &content_feats,
        &style_feats,
        &blend,
    )?);
    if weights.len() != eval.terms.len() {
        return Err(Error::InvalidArgument(format!(
            "the objective has {} terms, the configuration weighs {}",
            eval.terms.len(),
            weights.len()
        )));
    }
    let terms = eval
        .terms
        .iter()
        .zip(weights)
        .map(|((name, value), weight)| Term {
            name: name.clone(),
            value: *value,
            weight,
        })
        .collect();

    // The scale-free measures, from the picture's features (no grad).
    let picture_feats = target_features(&vgg, &picture_t, &cfg.layers(), cfg)?;
    let unit: Vec<(String, f64)> = cfg.style_layers.iter().map(|l| (l.clone(), 1.0)).collect();
    let grams = engine::no_grad(|| {
        StyleLoss::from_styles(StyleLossKind::Gram, &unit, &style_feats, &blend)
    })?;
    let mut gram_rel = Vec::with_capacity(grams.targets.len());
    for (layer, target, _) in &grams.targets {
        let f = feature(&picture_feats, layer)?;
        let g = engine::no_grad(|| f.gram_matrix())?;
        gram_rel.push((layer.clone(), rel_frobenius(&g, &target[0])?));
    }
    let gram_rel_mean = gram_rel.iter().map(|(_, v)| v).sum::<f64>() / gram_rel.len() as f64;
    let content_rel = cfg
        .content_layers
        .iter()
        .map(|l| {
            Ok((
                l.clone(),
                rel_frobenius(feature(&picture_feats, l)?, feature(&content_feats, l)?)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let ssim = ssim::ssim(
        &ssim::luminance(picture),
        &ssim::luminance(&content_img),
        w,
        h,
        1.0,
    )?;
    Ok(Measures {
        size: (w, h),
        total: eval.total,
        terms,
        gram_rel,
        gram_rel_mean,
        content_rel,
        ssim,
    })
}
