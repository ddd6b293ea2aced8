//! Guided (masked) style transfer: Gatys, Ecker, Bethge, Hertzmann & Shechtman, *Controlling
//! Perceptual Factors in Neural Style Transfer* (CVPR 2017), spatial control with guided Gram
//! matrices (sec. 4.1). Each style image r comes with a content mask `m_r` (white = where its
//! style applies in the picture) and optionally a style mask (white = the part of the painting
//! to use; default all of it). Masks are resized to each layer's feature size by an exact area
//! resize ([`GrayMask::area_resize`]: each feature cell gets the mean of the mask over the
//! pixels it covers), and the style statistics are computed per region:
//! - Gram: `G_r = (F∘m_r)(F∘m_r)ᵀ / (C · Σ m_r)` — for a binary mask, the Gram matrix of the
//!   region's own features, normalised as the plain Gram (`m ≡ 1` gives `F Fᵀ / (C·H·W)`);
//! - mean-std: `μ_r = Σ m_r F / Σ m_r`, `σ_r = √(Σ m_r (F − μ_r)² / Σ m_r + 10⁻⁵)` per channel.
//!
//! A layer's term sums over regions: `Σ_r mean((S_r(x) − S_r(style_r))²)` (each divided by the
//! mean square of its target under relative losses). Regions may overlap or leave parts of the
//! picture without style (there only the content and TV terms act). Only the `gram` and
//! `mean-std` style losses take masks ([`supports_masks`]).

use super::{feature, mean_square, Features, Loss, LossTerm, StyleLossKind};
use crate::config::StyleTransferConfig;
use crate::error::{ConfigError, ConfigField, Error, Result};
use crate::image::RgbImage;
use engine::Tensor;
use std::sync::Mutex;

/// Largest relative difference between a mask's aspect ratio and its image's (2%): a mask
/// within it is resized to the image, one outside is refused.
pub const ASPECT_TOLERANCE: f64 = 0.02;

/// Whether a style loss takes masks: `gram` and `mean-std`.
pub fn supports_masks(kind: StyleLossKind) -> bool {
    matches!(kind, StyleLossKind::Gram | StyleLossKind::MeanStd)
}

/// A grey-level mask, values in 0..1 (white = 1), row-major `height × width`.
#[derive(Clone, Debug, PartialEq)]
pub struct GrayMask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl GrayMask {
    /// The mean of each pixel's R, G and B (0..1).
    pub fn from_image(img: &RgbImage) -> GrayMask {
        GrayMask {
            width: img.width,
            height: img.height,
            data: img
                .data
                .chunks_exact(3)
                .map(|p| (p[0] + p[1] + p[2]) / 3.0)
                .collect(),
        }
    }

    /// Area resize to `w × h`: output cell (y, x) covers the source rectangle
    /// `[x·W/w, (x+1)·W/w) × [y·H/h, (y+1)·H/h)` and gets the mean of the mask over it (pixels
    /// cut by the edge count by the fraction inside). Row-major `h × w`.
    pub fn area_resize(&self, w: usize, h: usize) -> Vec<f64> {
        let wx = area_weights(self.width, w);
        let wy = area_weights(self.height, h);
        // Columns first (H × w), then rows.
        let mut cols = vec![0.0f64; self.height * w];
        for y in 0..self.height {
            let row = &self.data[y * self.width..(y + 1) * self.width];
            for (x, taps) in wx.iter().enumerate() {
                cols[y * w + x] = taps.iter().map(|&(i, a)| a * row[i] as f64).sum();
            }
        }
        let mut out = vec![0.0f64; h * w];
        for (y, taps) in wy.iter().enumerate() {
            for x in 0..w {
                out[y * w + x] = taps.iter().map(|&(i, a)| a * cols[i * w + x]).sum();
            }
        }
        out
    }

    /// [`GrayMask::area_resize`] as a 1×1×h×w tensor of `like`'s dtype and device, and its sum.
    fn tensor(&self, w: usize, h: usize, like: &Tensor) -> Result<(Tensor, f64)> {
        let v = self.area_resize(w, h);
        let mass = v.iter().sum();
        let t = Tensor::from_vec(v, &[1, 1, h, w])?
            .cast(like.dtype())?
            .to_device(like.device())?;
        Ok((t, mass))
    }
}

/// For each of `n` output cells along an axis of `src` cells: (source index, weight) pairs,
/// weights summing to 1.
fn area_weights(src: usize, n: usize) -> Vec<Vec<(usize, f64)>> {
    let scale = src as f64 / n as f64;
    (0..n)
        .map(|o| {
            let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
            let (first, last) = (a.floor() as usize, (b.ceil() as usize).min(src));
            (first..last)
                .filter_map(|i| {
                    let cover = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                    (cover > 0.0).then_some((i, cover / scale))
                })
                .collect()
        })
        .collect()
}

/// Error unless a `mw × mh` mask has the aspect ratio of its `w × h` image within
/// [`ASPECT_TOLERANCE`]; `what` names the mask ("content mask 2").
pub fn check_aspect(what: &str, (mw, mh): (usize, usize), (w, h): (usize, usize)) -> Result<()> {
    let (am, ai) = (mw as f64 / mh.max(1) as f64, w as f64 / h.max(1) as f64);
    if mw == 0 || mh == 0 || (am / ai - 1.0).abs() > ASPECT_TOLERANCE {
        return Err(Error::InvalidArgument(format!(
            "{what} is {mw}×{mh} (aspect {am:.3}) but its image is {w}×{h} (aspect {ai:.3}): a mask must have its image's aspect ratio (within {:.0}%)",
            ASPECT_TOLERANCE * 100.0
        )));
    }
    Ok(())
}

/// The masks of `cfg` for `n_styles` style images: none, or one content mask per style image
/// (and then no style masks or one per style image), with a style loss that takes masks and
/// no blend weights (each region has its own style). Sizes are checked by [`check_sizes`].
/// Errors: [`Error::Config`] naming `content_masks` or `style_masks`.
pub fn check_config(cfg: &StyleTransferConfig, n_styles: usize) -> Result<()> {
    let bad = |field, reason: String| Err(Error::Config(ConfigError { field, reason }));
    let (nc, ns) = (cfg.content_masks.len(), cfg.style_masks.len());
    if nc == 0 {
        if ns > 0 {
            return bad(
                ConfigField::StyleMasks,
                "needs content masks too (one per style image)".into(),
            );
        }
        return Ok(());
    }
    if nc != n_styles {
        return bad(
            ConfigField::ContentMasks,
            format!("has {nc} masks for {n_styles} style images: give one per style image"),
        );
    }
    if ns != 0 && ns != n_styles {
        return bad(
            ConfigField::StyleMasks,
            format!("has {ns} masks for {n_styles} style images: give none or one per style image"),
        );
    }
    if !supports_masks(cfg.style_loss) {
        return bad(
            ConfigField::ContentMasks,
            format!(
                "work with the gram and mean-std style losses, not {}",
                cfg.style_loss
            ),
        );
    }
    if !cfg.style_blend_weights.is_empty() {
        return bad(
            ConfigField::StyleBlendWeights,
            "do not apply with content masks (each mask has its own style image)".into(),
        );
    }
    Ok(())
}

/// Each mask against its image's size (`content`, `styles`: width, height): the aspect rule
/// of [`check_aspect`]. Errors: [`Error::Config`] naming the mask.
pub fn check_sizes(
    cfg: &StyleTransferConfig,
    content: (usize, usize),
    styles: &[(usize, usize)],
) -> Result<()> {
    let wrap = |field, e: Error| {
        Error::Config(ConfigError {
            field,
            reason: e.to_string(),
        })
    };
    for (i, m) in cfg.content_masks.iter().enumerate() {
        check_aspect(&format!("number {}", i + 1), m.size(), content)
            .map_err(|e| wrap(ConfigField::ContentMasks, e))?;
    }
    for (i, (m, s)) in cfg.style_masks.iter().zip(styles).enumerate() {
        check_aspect(&format!("number {}", i + 1), m.size(), *s)
            .map_err(|e| wrap(ConfigField::StyleMasks, e))?;
    }
    Ok(())
}

/// The style statistics of features `f` (1×C×H×W) inside mask `m` (1×1×H×W) of total `mass`
/// (see the module docs). Errors: a style loss that takes no masks, an empty mask, shapes.
pub fn masked_statistics(
    kind: StyleLossKind,
    f: &Tensor,
    m: &Tensor,
    mass: f64,
) -> Result<Vec<Tensor>> {
    let s = f.shape();
    if s.len() != 4 || s[0] != 1 || m.shape() != [1, 1, s[2], s[3]] {
        return Err(Error::InvalidArgument(format!(
            "masked statistics need 1×C×H×W features and a 1×1×H×W mask, got {s:?} and {:?}",
            m.shape()
        )));
    }
    if mass <= 0.0 {
        return Err(Error::InvalidArgument(
            "masked statistics of an empty mask".into(),
        ));
    }
    let (c, hw) = (s[1], s[2] * s[3]);
    match kind {
        StyleLossKind::Gram => {
            let g = f.mul(m)?.gram_matrix()?; // (F∘m)(F∘m)ᵀ / (C·H·W)
            Ok(vec![g.mul_scalar(hw as f64 / mass)?])
        }
        StyleLossKind::MeanStd => {
            let ff = f.reshape(&[c, hw])?;
            let mm = m.reshape(&[1, hw])?;
            let mean = ff.mul(&mm)?.sum_axis(1, true)?.mul_scalar(1.0 / mass)?;
            let var = ff
                .sub(&mean)?
                .square()?
                .mul(&mm)?
                .sum_axis(1, false)?
                .mul_scalar(1.0 / mass)?;
            Ok(vec![mean.reshape(&[c])?, var.add_scalar(1e-5)?.sqrt()?])
        }
        other => Err(Error::InvalidArgument(format!(
            "masks work with the gram and mean-std style losses, not {other}"
        ))),
    }
}

/// One region: its content mask and, per layer, the target statistics and the factor its
/// term is multiplied by (1, or 1/mean square of the target under relative losses).
struct Region {
    content_mask: GrayMask,
    targets: Vec<(Vec<Tensor>, f64)>,
}

/// The guided style loss: one term `style.<layer>` per layer, summed over regions.
pub struct GuidedStyleLoss {
    kind: StyleLossKind,
    /// (layer, weight).
    layers: Vec<(String, f64)>,
    regions: Vec<Region>,
    /// The content masks at each (region, layer)'s feature size, made on first use.
    cache: Mutex<Vec<Option<(Tensor, f64)>>>,
}

impl GuidedStyleLoss {
    /// Targets of each style image `styles[r]` at `layers` (layer, weight) inside its style
    /// mask (`style_masks[r]`, or all of it when `None`), for the region `content_masks[r]`.
    /// Errors: counts that differ, a style loss without masks, an empty style mask, a missing
    /// feature map.
    pub fn new(
        kind: StyleLossKind,
        layers: &[(String, f64)],
        styles: &[Features],
        content_masks: &[GrayMask],
        style_masks: &[Option<GrayMask>],
        relative: bool,
    ) -> Result<Self> {
        if !supports_masks(kind) {
            return Err(Error::InvalidArgument(format!(
                "masks work with the gram and mean-std style losses, not {kind}"
            )));
        }
        if content_masks.len() != styles.len() || style_masks.len() != styles.len() {
            return Err(Error::InvalidArgument(format!(
                "{} style images but {} content masks and {} style masks",
                styles.len(),
                content_masks.len(),
                style_masks.len()
            )));
        }
        let mut regions = Vec::with_capacity(styles.len());
        for (r, (feats, sm)) in styles.iter().zip(style_masks).enumerate() {
            let mut targets = Vec::with_capacity(layers.len());
            for (layer, _) in layers {
                let f = feature(feats, layer)?;
                let (h, w) = (f.shape()[2], f.shape()[3]);
                let full = GrayMask {
                    width: 1,
                    height: 1,
                    data: vec![1.0],
                };
                let (m, mass) = sm.as_ref().unwrap_or(&full).tensor(w, h, f)?;
                if mass <= 1e-6 {
                    return Err(Error::InvalidArgument(format!(
                        "the style mask of style image {} is empty (black) at {layer}",
                        r + 1
                    )));
                }
                let stats = masked_statistics(kind, f, &m, mass)?;
                let factor = if relative {
                    let ms = mean_square(&stats)?;
                    if ms > 0.0 {
                        1.0 / ms
                    } else {
                        1.0
                    }
                } else {
                    1.0
                };
                targets.push((stats, factor));
            }
            regions.push(Region {
                content_mask: content_masks[r].clone(),
                targets,
            });
        }
        Ok(GuidedStyleLoss {
            kind,
            layers: layers.to_vec(),
            cache: Mutex::new(vec![None; regions.len() * layers.len()]),
            regions,
        })
    }

    /// The content mask of region `r` at layer `l`'s size (h × w) as a tensor like `f`, and
    /// its mass; cached per (region, layer) and size.
    fn mask(&self, r: usize, l: usize, f: &Tensor) -> Result<(Tensor, f64)> {
        let (h, w) = (f.shape()[2], f.shape()[3]);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut cache[r * self.layers.len() + l];
        if let Some((t, mass)) = slot {
            if t.shape()[2..] == [h, w] {
                return Ok((t.clone(), *mass));
            }
        }
        let made = self.regions[r].content_mask.tensor(w, h, f)?;
        *slot = Some(made.clone());
        Ok(made)
    }
}

impl Loss for GuidedStyleLoss {
    fn layers(&self) -> Vec<String> {
        self.layers.iter().map(|(l, _)| l.clone()).collect()
    }
    fn terms(&self, features: &Features, _x: &Tensor) -> Result<Vec<LossTerm>> {
        let mut out = Vec::with_capacity(self.layers.len());
        for (li, (layer, weight)) in self.layers.iter().enumerate() {
            let f = feature(features, layer)?;
            let mut value: Option<Tensor> = None;
            for (r, region) in self.regions.iter().enumerate() {
                let (m, mass) = self.mask(r, li, f)?;
                if mass <= 1e-6 {
                    continue; // the region vanishes at this layer
                }
                let stats = masked_statistics(self.kind, f, &m, mass)?;
                let (target, factor) = &region.targets[li];
                for (s, t) in stats.iter().zip(target) {
                    let l = s.mse_loss(t)?.mul_scalar(*factor)?;
                    value = Some(match value {
                        None => l,
                        Some(v) => v.add(&l)?,
                    });
                }
            }
            let value = match value {
                Some(v) => v,
                None => f.sum()?.mul_scalar(0.0)?,
            };
            out.push(LossTerm {
                name: format!("style.{layer}"),
                value,
                weight: *weight,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_averages_what_each_cell_covers() {
        // 5 → 2 along x: cells cover [0, 2.5) and [2.5, 5).
        let m = GrayMask {
            width: 5,
            height: 1,
            data: vec![1.0, 0.0, 1.0, 1.0, 0.0],
        };
        let v = m.area_resize(2, 1);
        assert!((v[0] - (1.0 + 0.0 + 0.5) / 2.5).abs() < 1e-12, "{v:?}");
        assert!((v[1] - (0.5 + 1.0 + 0.0) / 2.5).abs() < 1e-12, "{v:?}");
        // A naive 2-D reference on a 7×5 → 3×4 case (both axes fractional, one up-sampled).
        let m = GrayMask {
            width: 7,
            height: 5,
            data: (0..35).map(|i| ((i * 13) % 7) as f32 / 6.0).collect(),
        };
        let (w, h) = (3, 4);
        let got = m.area_resize(w, h);
        for y in 0..h {
            for x in 0..w {
                // Integrate on a fine grid (each source pixel split 60×60).
                let (sx, sy) = (7.0 / w as f64, 5.0 / h as f64);
                let (mut acc, mut n) = (0.0, 0.0);
                let steps = 600;
                for j in 0..steps {
                    for i in 0..steps {
                        let px = (x as f64 + (i as f64 + 0.5) / steps as f64) * sx;
                        let py = (y as f64 + (j as f64 + 0.5) / steps as f64) * sy;
                        acc += m.data[py as usize * 7 + px as usize] as f64;
                        n += 1.0;
                    }
                }
                assert!(
                    (got[y * w + x] - acc / n).abs() < 2e-3,
                    "({x},{y}) {} vs {}",
                    got[y * w + x],
                    acc / n
                );
            }
        }
    }

    #[test]
    fn aspect_rule() {
        assert!(check_aspect("content mask 1", (451, 300), (451, 300)).is_ok());
        assert!(check_aspect("content mask 1", (902, 601), (451, 300)).is_ok());
        let e = check_aspect("content mask 2", (300, 300), (451, 300)).unwrap_err();
        assert!(e.to_string().contains("content mask 2 is 300×300"), "{e}");
    }
}
