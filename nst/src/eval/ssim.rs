//! Structural similarity (SSIM) of two grey images: Wang, Bovik, Sheikh & Simoncelli, "Image
//! quality assessment: from error visibility to structural similarity", IEEE TIP 13(4), 2004,
//! eq. 13, with their standard settings: an 11×11 Gaussian window of σ = 1.5 (normalised to
//! sum 1), K1 = 0.01, K2 = 0.03, the mean over every window that lies inside the image ("valid"
//! positions). This is `skimage.metrics.structural_similarity(a, b, data_range=1,
//! gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`, which filters with 11 taps
//! and crops the 5-pixel border before taking the mean.

use crate::error::{Error, Result};
use crate::image::RgbImage;

/// Side of the Gaussian window, in pixels.
pub const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;
const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// The luminance of an RGB image (values 0..=1): `Y = 0.299 R + 0.587 G + 0.114 B` (ITU-R
/// BT.601), row-major, width × height values in 0..=1.
pub fn luminance(img: &RgbImage) -> Vec<f64> {
    img.data
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect()
}

/// SSIM of two `width × height` grey images (row-major) whose values span `data_range`
/// (1 for 0..=1): 1 for identical images, lower for less similar ones (it can be negative).
/// Errors: lengths that are not `width · height`, or a side under 11 px (no whole window).
pub fn ssim(a: &[f64], b: &[f64], width: usize, height: usize, data_range: f64) -> Result<f64> {
    if a.len() != width * height || b.len() != width * height {
        return Err(Error::InvalidArgument(format!(
            "ssim: {} and {} values for a {width}×{height} image",
            a.len(),
            b.len()
        )));
    }
    if width < WINDOW || height < WINDOW {
        return Err(Error::InvalidArgument(format!(
            "ssim: a {width}×{height} image is smaller than the {WINDOW}×{WINDOW} window"
        )));
    }
    let c1 = (K1 * data_range).powi(2);
    let c2 = (K2 * data_range).powi(2);
    let ab: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
    let aa: Vec<f64> = a.iter().map(|x| x * x).collect();
    let bb: Vec<f64> = b.iter().map(|y| y * y).collect();
    let [mu_a, mu_b, e_aa, e_bb, e_ab] =
        [a, b, &aa[..], &bb[..], &ab[..]].map(|p| filter_valid(p, width, height));
    let n = mu_a.len();
    let mut sum = 0.0;
    for i in 0..n {
        let (ma, mb) = (mu_a[i], mu_b[i]);
        let va = e_aa[i] - ma * ma;
        let vb = e_bb[i] - mb * mb;
        let cov = e_ab[i] - ma * mb;
        sum +=
            ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
    }
    Ok(sum / n as f64)
}

/// The normalised 1-D Gaussian of [`WINDOW`] taps and σ = 1.5 (the 2-D window is its outer
/// product).
fn gaussian() -> [f64; WINDOW] {
    let r = (WINDOW / 2) as f64;
    let mut g = [0.0; WINDOW];
    for (i, v) in g.iter_mut().enumerate() {
        let d = i as f64 - r;
        *v = (-d * d / (2.0 * SIGMA * SIGMA)).exp();
    }
    let s: f64 = g.iter().sum();
    g.map(|v| v / s)
}

/// The Gaussian-weighted mean of every window inside the image: (width − 10) × (height − 10)
/// values, row-major (separable: rows, then columns).
fn filter_valid(p: &[f64], width: usize, height: usize) -> Vec<f64> {
    let g = gaussian();
    let ow = width - WINDOW + 1;
    let oh = height - WINDOW + 1;
    let mut rows = vec![0.0; ow * height];
    for y in 0..height {
        let line = &p[y * width..(y + 1) * width];
        for x in 0..ow {
            rows[y * ow + x] = g.iter().zip(&line[x..x + WINDOW]).map(|(w, v)| w * v).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..WINDOW).map(|k| g[k] * rows[(y + k) * ow + x]).sum();
        }
    }
    out
}
