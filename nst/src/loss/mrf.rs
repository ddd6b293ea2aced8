//! The MRF (patch) style loss of Li & Wand, *Combining Markov Random Fields and Convolutional
//! Neural Networks for Image Synthesis* (CVPR 2016), eq. 2–3, as pystiche's `MRFLoss` computes
//! it: every 3×3 patch Ψ_i(x) of the picture's features (stride 1) is matched to the style
//! patch Ψ_NN(i) with the highest normalised cross-correlation, and the term is
//! `mean_i,k (Ψ_i(x)_k − Ψ_NN(i)_k)²` (pystiche's `mrf_loss` default `reduction="mean"`; the mean
//! runs over all C·9·L patch entries). The nearest-patch search is a convolution of the
//! picture's features with the L2-normalised style patches as filters (one output channel per
//! style patch), then an argmax over the channels; it carries no gradient (pystiche:
//! `torch.no_grad()`), so the gradient is that of a squared distance to fixed targets.
//!
//! What differs from the paper: style patches are taken at stride [`MRF_STYLE_STRIDE`] (2), not
//! 1, and without the rotated and scaled copies of the style image (pystiche's
//! `target_transforms`); with several style images, their patches are pooled (blend weights
//! do not apply). Memory: the search's output is K × L (K style patches, L picture patches),
//! evaluated in chunks of at most [`NCC_CHUNK_ELEMS`] elements; see `crate::plan` for the
//! estimate.

use super::{feature, Features, Loss, LossTerm};
use crate::error::{Error, Result};
use engine::{Conv2dOptions, Tensor};

/// Side of a patch (the paper's 3×3).
pub const MRF_PATCH: usize = 3;
/// Stride between the style image's patches: 2 keeps a quarter of them (relu3_1 of a 512-px
/// style image: ≈ 3 100 patches instead of ≈ 12 300), which bounds the search's cost.
pub const MRF_STYLE_STRIDE: usize = 2;
/// The most elements of one chunk of the nearest-patch search's output (K_chunk × L): 2²⁵
/// (128 MiB in f32).
pub const NCC_CHUNK_ELEMS: usize = 1 << 25;

/// The layers and weights the front ends use for the mrf loss when none are given: relu3_1
/// and relu4_1, as pystiche's Li & Wand replication (the shallow layers' searches would cost
/// K·L·C·9 multiply-adds with K and L both ~ the pixel count: at 512 px, relu1_1's is ≈ 10¹³).
pub const MRF_DEFAULT_LAYERS: [(&str, f64); 2] = [("relu3_1", 1.0), ("relu4_1", 1.0)];

/// [`MRF_DEFAULT_LAYERS`] as a configuration's `(style_layers, style_layer_weights)`.
pub fn default_layers() -> (Vec<String>, Vec<f64>) {
    let l = MRF_DEFAULT_LAYERS;
    (
        l.map(|(n, _)| n.to_string()).to_vec(),
        l.map(|(_, w)| w).to_vec(),
    )
}

/// One layer's style patches.
pub struct MrfLayer {
    pub layer: String,
    /// The style patches as columns: (C·3·3) × K, rows in (c, i, j) order (as `unfold2d`).
    pub patches: Tensor,
    /// The same patches L2-normalised, as convolution filters: K × C × 3 × 3.
    pub filters: Tensor,
    /// The weight of this layer's term.
    pub weight: f64,
}

/// The MRF style loss over several layers: one term `style.<layer>` per layer.
pub struct MrfLoss {
    pub layers: Vec<MrfLayer>,
}

impl MrfLoss {
    /// Patches of every style image's features at each of `layers` (layer, weight), pooled
    /// over the images, at stride `stride`. With `relative`, each layer's weight is divided by
    /// the mean square of its style patches (so that the term is a relative error squared, as
    /// the Gram loss under relative losses). Errors: a missing feature map, a feature map
    /// smaller than 3×3, no style images, engine errors.
    pub fn from_styles(
        layers: &[(String, f64)],
        styles: &[Features],
        stride: usize,
        relative: bool,
    ) -> Result<Self> {
        if styles.is_empty() {
            return Err(Error::InvalidArgument(
                "the mrf loss needs a style image".into(),
            ));
        }
        let mut out = Vec::with_capacity(layers.len());
        for (layer, w) in layers {
            let mut cols: Vec<f64> = Vec::new();
            let (mut rows, mut k, mut like) = (0, 0, None);
            for feats in styles {
                let f = feature(feats, layer)?;
                let s = f.shape();
                if s.len() != 4 || s[2] < MRF_PATCH || s[3] < MRF_PATCH {
                    return Err(Error::InvalidArgument(format!(
                        "mrf loss at {layer}: style features {s:?} are smaller than a {MRF_PATCH}×{MRF_PATCH} patch"
                    )));
                }
                let u = f.unfold2d(MRF_PATCH, stride, 0)?; // 1 × C·9 × K_i
                let (r, ki) = (u.shape()[1], u.shape()[2]);
                rows = r;
                // Row-major C·9 × K over all images: interleave each row's columns.
                let v = u.to_vec_f64()?;
                if cols.is_empty() {
                    cols = v;
                } else {
                    cols = (0..r)
                        .flat_map(|row| {
                            let a = &cols[row * k..(row + 1) * k];
                            let b = &v[row * ki..(row + 1) * ki];
                            a.iter().chain(b).copied().collect::<Vec<_>>()
                        })
                        .collect();
                }
                k += ki;
                like = Some(f.clone());
            }
            let like = like.expect("at least one style");
            let ms = cols.iter().map(|v| v * v).sum::<f64>() / cols.len().max(1) as f64;
            let patches = Tensor::from_vec(cols, &[rows, k])?
                .cast(like.dtype())?
                .to_device(like.device())?;
            let c = rows / (MRF_PATCH * MRF_PATCH);
            let bank = patches.transpose(0, 1)?.contiguous()?; // K × C·9
            let norms = bank.square()?.sum_axis(1, true)?.sqrt()?.add_scalar(1e-8)?;
            let filters = bank.div(&norms)?.reshape(&[k, c, MRF_PATCH, MRF_PATCH])?;
            let weight = if relative && ms > 0.0 { w / ms } else { *w };
            out.push(MrfLayer {
                layer: layer.clone(),
                patches,
                filters,
                weight,
            });
        }
        Ok(MrfLoss { layers: out })
    }

    /// For each 3×3 patch of `f` (1×C×H×W; stride 1, row-major over the (H−2)×(W−2)
    /// positions), the index of the style patch of `l` with the highest normalised
    /// cross-correlation: a 1-D tensor of L = (H−2)(W−2) indices (as floats, on `f`'s device).
    /// Without gradient. Errors: engine errors (shapes).
    pub fn nearest(l: &MrfLayer, f: &Tensor) -> Result<Tensor> {
        Self::nearest_in_chunks(l, f, NCC_CHUNK_ELEMS)
    }

    /// [`MrfLoss::nearest`] with the search's output in chunks of at most `budget` elements
    /// (at least one filter per chunk); chunks are merged on the host.
    pub fn nearest_in_chunks(l: &MrfLayer, f: &Tensor, budget: usize) -> Result<Tensor> {
        engine::no_grad(|| {
            let f = f.detach();
            let s = f.shape();
            let n_pos = s[2].saturating_sub(MRF_PATCH - 1) * s[3].saturating_sub(MRF_PATCH - 1);
            let k = l.filters.shape()[0];
            let chunk = (budget / n_pos.max(1)).clamp(1, k);
            let opts = Conv2dOptions::new(1, 0);
            if chunk == k {
                let (_, idx) = f.conv2d(&l.filters, None, opts)?.argmax_axis(1)?;
                return Ok(idx.reshape(&[n_pos])?);
            }
            // Chunks of filters; the best over chunks merged on the host (L values each).
            let mut best = vec![f64::NEG_INFINITY; n_pos];
            let mut best_k = vec![0.0f64; n_pos];
            for k0 in (0..k).step_by(chunk) {
                let kc = chunk.min(k - k0);
                let scores = f.conv2d(&l.filters.narrow(0, k0, kc)?, None, opts)?;
                let (v, i) = scores.argmax_axis(1)?;
                let (v, i) = (v.to_vec_f64()?, i.to_vec_f64()?);
                for (p, (&vp, &ip)) in v.iter().zip(&i).enumerate() {
                    if vp > best[p] {
                        best[p] = vp;
                        best_k[p] = ip + k0 as f64;
                    }
                }
            }
            let idx = Tensor::from_vec(best_k, &[n_pos])?.cast(f.dtype())?;
            Ok(idx.to_device(f.device())?)
        })
    }

    /// The term of one layer for features `f` (1×C×H×W): `mean((Ψ(f) − Ψ_NN)²)`.
    pub fn layer_value(l: &MrfLayer, f: &Tensor) -> Result<Tensor> {
        let s = f.shape();
        let c_rows = l.patches.shape()[0];
        if s.len() != 4 || s[0] != 1 || s[1] * MRF_PATCH * MRF_PATCH != c_rows {
            return Err(Error::InvalidArgument(format!(
                "mrf loss at {}: features {s:?} do not match the style patches ({c_rows} rows)",
                l.layer
            )));
        }
        if s[2] < MRF_PATCH || s[3] < MRF_PATCH {
            return Err(Error::InvalidArgument(format!(
                "mrf loss at {}: features {s:?} are smaller than a {MRF_PATCH}×{MRF_PATCH} patch",
                l.layer
            )));
        }
        let idx = Self::nearest(l, f)?;
        let target = l.patches.index_select(1, &idx)?; // C·9 × L
        let p = f.unfold2d(MRF_PATCH, 1, 0)?;
        let p = p.reshape(&p.shape()[1..])?;
        Ok(p.mse_loss(&target)?)
    }
}

impl Loss for MrfLoss {
    fn layers(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.layer.clone()).collect()
    }
    fn terms(&self, features: &Features, _x: &Tensor) -> Result<Vec<LossTerm>> {
        self.layers
            .iter()
            .map(|l| {
                Ok(LossTerm {
                    name: format!("style.{}", l.layer),
                    value: Self::layer_value(l, feature(features, &l.layer)?)?,
                    weight: l.weight,
                })
            })
            .collect()
    }
}

/// Peak bytes (f32) the mrf loss adds to a run at `layers` for a `picture` (w, h) and style
/// images of `styles` (w, h) pixels as resized, at stride [`MRF_STYLE_STRIDE`] (the planner's
/// estimate): per layer, kept for the run, the patches and filters (2 · C·9·K) and the picture's
/// patches and their difference on the tape (2 · C·9·L); plus, the largest over layers, while a
/// search runs, the host copy of the patches when they are built (f64: 2 · C·9·K), the
/// convolution's columns (C·9·L) and one chunk of scores (≤ [`NCC_CHUNK_ELEMS`]), for K style
/// patches and L picture patches of C channels. Layers that are not `reluB_j`/`convB_j` count 0.
pub fn estimate_bytes<S: AsRef<str>>(
    layers: &[S],
    picture: (usize, usize),
    styles: &[(usize, usize)],
) -> f64 {
    let (mut kept, mut transient) = (0.0f64, 0.0f64);
    for l in layers {
        let Some(block) = l
            .as_ref()
            .strip_prefix("relu")
            .or_else(|| l.as_ref().strip_prefix("conv"))
            .and_then(|r| r.split('_').next())
            .and_then(|b| b.parse::<u32>().ok())
            .filter(|b| (1..=5).contains(b))
        else {
            continue;
        };
        let c = [64.0, 128.0, 256.0, 512.0, 512.0][block as usize - 1];
        let c9 = c * (MRF_PATCH * MRF_PATCH) as f64;
        let at = |(w, h): (usize, usize)| (w >> (block - 1), h >> (block - 1));
        let (pw, ph) = at(picture);
        let l_pos = (pw.saturating_sub(2) * ph.saturating_sub(2)) as f64;
        let patches = |s: usize| {
            if s < MRF_PATCH {
                0
            } else {
                (s - MRF_PATCH) / MRF_STYLE_STRIDE + 1
            }
        };
        let k: f64 = styles
            .iter()
            .map(|&s| {
                let (sw, sh) = at(s);
                (patches(sw) * patches(sh)) as f64
            })
            .sum();
        kept += 4.0 * (2.0 * c9 * k + 2.0 * c9 * l_pos);
        let chunk = (k * l_pos).min(NCC_CHUNK_ELEMS as f64);
        transient = transient.max(16.0 * c9 * k + 4.0 * (c9 * l_pos + chunk));
    }
    kept + transient
}
