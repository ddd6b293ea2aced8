//! SSIM against scikit-image; the measures on pictures whose answers are known; the objective
//! of a saved picture against the optimiser's last value.

use super::ssim::{luminance, ssim};
use super::*;
use crate::vgg19::Pooling;
use crate::weights::{default_weights_path, VggWeights};
use std::ops::ControlFlow;

/// The synthetic pair of the scikit-image reference below, 37×29, row-major.
fn synthetic() -> (Vec<f64>, Vec<f64>) {
    let (w, h) = (37, 29);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let (x, y) = (x as f64, y as f64);
            let av = 0.5 + 0.4 * (0.31 * x + 0.17 * y).sin();
            let bv = av + 0.15 * (0.73 * x - 0.41 * y).cos() + 0.05 * (1.9 * x * y / 37.0).sin();
            a.push(av);
            b.push(bv.clamp(0.0, 1.0));
        }
    }
    (a, b)
}

/// Computed once with scikit-image 0.26.0 (`python3 -m venv v && v/bin/pip install
/// scikit-image`, then `v/bin/python` on):
/// ```python
/// import numpy as np
/// from skimage.metrics import structural_similarity as ssim
/// y, x = np.mgrid[0:29, 0:37].astype(np.float64)
/// a = 0.5 + 0.4 * np.sin(0.31 * x + 0.17 * y)
/// b = np.clip(a + 0.15 * np.cos(0.73 * x - 0.41 * y) + 0.05 * np.sin(1.9 * x * y / 37.0), 0, 1)
/// kw = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
/// print(ssim(a, b, **kw), ssim(a, 1.0 - a, **kw))
/// ```
const SKIMAGE_SSIM_A_B: f64 = 0.7570557120748646;
const SKIMAGE_SSIM_A_INVERTED: f64 = -0.609295849255575;

#[test]
fn ssim_matches_scikit_image() {
    let (a, b) = synthetic();
    assert_eq!(ssim(&a, &a, 37, 29, 1.0).unwrap(), 1.0);
    let s = ssim(&a, &b, 37, 29, 1.0).unwrap();
    assert!((s - SKIMAGE_SSIM_A_B).abs() < 1e-12, "{s}");
    let inv: Vec<f64> = a.iter().map(|v| 1.0 - v).collect();
    let s = ssim(&a, &inv, 37, 29, 1.0).unwrap();
    assert!((s - SKIMAGE_SSIM_A_INVERTED).abs() < 1e-12, "{s}");
    // Symmetric in its arguments.
    let s2 = ssim(&b, &a, 37, 29, 1.0).unwrap();
    assert!((s2 - SKIMAGE_SSIM_A_B).abs() < 1e-12);
}

#[test]
fn ssim_refuses_bad_sizes() {
    let (a, _) = synthetic();
    assert!(ssim(&a, &a, 36, 29, 1.0).is_err());
    let small = vec![0.5; 10 * 40];
    let e = ssim(&small, &small, 40, 10, 1.0).unwrap_err().to_string();
    assert!(e.contains("smaller than the 11×11 window"), "{e}");
}

#[test]
fn luminance_is_bt601() {
    let img = RgbImage {
        width: 2,
        height: 1,
        data: vec![1.0, 0.0, 0.0, 0.2, 0.4, 0.6],
    };
    let y = luminance(&img);
    assert!((y[0] - 0.299).abs() < 1e-7);
    assert!((y[1] - (0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6)).abs() < 1e-7);
}

fn asset(bytes: &[u8]) -> RgbImage {
    RgbImage::from_dynamic(&image::load_from_memory(bytes).unwrap())
}

fn chelsea() -> RgbImage {
    asset(include_bytes!("../../../assets/chelsea.png"))
}

fn starry() -> RgbImage {
    asset(include_bytes!("../../../assets/starry_night.jpg"))
}

/// VGG-19 from the cache, or `None` (skipped) when it is missing, a failure when `CI` is set.
fn vgg_or_skip() -> Option<Arc<Vgg19>> {
    let path = default_weights_path().expect("cache dir");
    if !path.exists() {
        let msg = format!("{} is missing: run `nst-cli weights fetch`", path.display());
        assert!(std::env::var_os("CI").is_none(), "{msg} (CI is set)");
        println!("skipped: {msg}");
        return None;
    }
    let w = VggWeights::load(&path).unwrap();
    Some(Arc::new(Vgg19::new(&w, Pooling::Max).unwrap()))
}

fn cfg_at(size_px: usize) -> StyleTransferConfig {
    StyleTransferConfig {
        size_px,
        ..StyleTransferConfig::default()
    }
}

#[test]
fn the_content_against_itself_and_a_style_against_itself() {
    let Some(vgg) = vgg_or_skip() else { return };
    let content = chelsea();
    let picture = content.resize_longest(64);
    let m = evaluate(vgg.clone(), &picture, &content, &[starry()], &cfg_at(64)).unwrap();
    assert_eq!(m.size, picture.size());
    assert_eq!(m.content_rel, vec![("relu4_2".to_string(), 0.0)]);
    assert_eq!(m.ssim, 1.0);
    assert_eq!(m.weighted("content"), 0.0);
    assert!(m.weighted("style") > 0.0 && m.gram_rel_mean > 0.1, "{m:?}");
    let sum = m.weighted("content") + m.weighted("style") + m.weighted("tv");
    assert!(
        (sum - m.total).abs() <= 1e-6 * m.total,
        "{sum} vs {}",
        m.total
    );

    // The style image as picture, content and style, at its own size: every Gram target is
    // the picture's own Gram matrix.
    let style = starry().resize_longest(64);
    let m = evaluate(
        vgg,
        &style,
        &style,
        std::slice::from_ref(&style),
        &cfg_at(64),
    )
    .unwrap();
    assert_eq!(m.gram_rel.len(), 5);
    for (layer, v) in &m.gram_rel {
        assert!(*v < 1e-6, "{layer}: {v}");
    }
    assert_eq!(m.weighted("style"), 0.0);
    assert!((m.total - m.weighted("tv")).abs() <= 1e-6 * m.total);
}

#[test]
fn pictures_of_another_size_or_shape_are_refused() {
    let Some(vgg) = vgg_or_skip() else { return };
    let content = chelsea();
    let picture = content.resize_longest(64);
    let e = evaluate(vgg.clone(), &picture, &content, &[starry()], &cfg_at(96)).unwrap_err();
    assert!(
        matches!(&e, Error::Config(c) if c.field == ConfigField::SizePx),
        "{e}"
    );
    let square = content.resize(64, 64);
    let e = evaluate(vgg, &square, &content, &[starry()], &cfg_at(64))
        .unwrap_err()
        .to_string();
    assert!(e.contains("different aspect ratio"), "{e}");
}

/// The picture `transfer::run` returns, saved as 8 bits and evaluated, has the objective the
/// optimiser last logged (the run stays in the pixel box, so only the rounding differs).
#[test]
fn a_saved_picture_has_the_optimisers_last_objective() {
    let Some(vgg) = vgg_or_skip() else { return };
    let (content, styles) = (chelsea(), vec![starry()]);
    let cfg = StyleTransferConfig {
        iterations: 10,
        scales: 1,
        ..cfg_at(64)
    };
    let mut last = 0.0;
    let picture = crate::transfer::run(vgg.clone(), &content, &styles, &cfg, |p| {
        last = p.eval.total;
        ControlFlow::Continue(())
    })
    .unwrap();
    let saved = RgbImage::from_u8(picture.width, picture.height, &picture.to_u8()).unwrap();
    let m = evaluate(vgg, &saved, &content, &styles, &cfg).unwrap();
    let rel = (m.total - last).abs() / last;
    assert!(
        rel < 0.01,
        "eval {} vs the optimiser's {last}: {rel}",
        m.total
    );
}
