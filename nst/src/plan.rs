//! Before a run starts: will it work, and will it fit? Every scale's picture and every resized
//! style image must reach the deepest layer the objective reads, and the run's estimated peak
//! memory must fit in the memory this machine has available, so that an oversized request is
//! one clear error instead of an allocation failure that kills the process (or the server).

use crate::config::StyleTransferConfig;
use crate::error::{ConfigError, ConfigField, Error, Result};
use crate::image::fit_longest;
use crate::vgg19::min_input_side;

/// Fixed part of a run's peak memory: the VGG-19 weights up to relu5_1, their Winograd
/// transforms and the process (bytes). Measured with `/usr/bin/time` on nst-cli transfer
/// (2026-11-29, chelsea × starry_night, 1 scale, L-BFGS): 380 MB at 256×170, 633 MB at
/// 512×341, 1065 MB at 768×511 (style images of 1.19× the picture's pixels); 527 MB at 256 px
/// with style_scale 3. Fitted: ≈ 300 MB + 1.56 KB per picture pixel + 0.33 KB per style pixel.
const BASE_BYTES: f64 = 300e6;
/// Peak bytes per pixel of the picture being optimised (activations kept for the backward
/// pass, their gradients, L-BFGS history), rounded up from the fit above.
const BYTES_PER_PICTURE_PX: f64 = 1700.0;
/// Peak bytes per pixel of a resized style image (its forward runs without the tape), rounded
/// up from the fit above.
const BYTES_PER_STYLE_PX: f64 = 400.0;

/// Checks a run before it starts, from the images' sizes alone (width, height in pixels: the
/// style images as given, `sizes` from [`crate::transfer::scale_sizes`] of the content's), so a
/// server can refuse a request before decoding anything: [`check_sizes`], then [`estimate_peak_bytes`] against
/// [`available_memory_bytes`] (where the OS says). Errors: [`Error::Config`] naming `size_px`
/// or `style_scale`, with a size that would do.
pub fn check(
    styles: &[(usize, usize)],
    cfg: &StyleTransferConfig,
    sizes: &[(usize, usize)],
) -> Result<()> {
    check_sizes(styles, cfg, sizes)?;
    let need = estimate_peak_bytes(styles, cfg, sizes);
    let Some(avail) = available_memory_bytes() else {
        return Ok(());
    };
    if need.total() <= avail as f64 {
        return Ok(());
    }
    let gb = |b: f64| b / 1e9;
    let &(w, h) = sizes.last().expect("at least one scale");
    let spare = (avail as f64 - BASE_BYTES).max(0.0);
    let what = format!(
        "needs about {:.1} GB of memory ({w}×{h} px picture, style images of {:.1} Mpx at the \
         largest scale{}) but {:.1} GB are available",
        gb(need.total()),
        need.style_px as f64 / 1e6,
        if need.mrf > 0.0 {
            format!(", {:.1} GB of it for the mrf loss's patches", gb(need.mrf))
        } else {
            String::new()
        },
        gb(avail as f64)
    );
    // Both the picture and the style images grow with the square of size_px (the styles are
    // resized to style_scale × the picture's side), so the size that fits scales by the root.
    let fit_size =
        (cfg.size_px as f64 * (spare / (need.picture + need.mrf + need.styles)).sqrt()).floor();
    let err = if need.styles > need.picture {
        let fit_scale =
            cfg.style_scale * ((spare - need.picture - need.mrf).max(0.0) / need.styles).sqrt();
        // A smaller picture shrinks the styles too; say so only when that size is usable.
        let or_size = if fit_size >= 64.0 {
            format!(" (or a picture size of at most {fit_size} px)")
        } else {
            String::new()
        };
        ConfigError {
            field: ConfigField::StyleScale,
            reason: format!(
                "{} {what}: use a style scale of at most {fit_scale:.2}{or_size}",
                cfg.style_scale
            ),
        }
    } else {
        ConfigError {
            field: ConfigField::SizePx,
            reason: format!("{} {what}: use at most {fit_size} px", cfg.size_px),
        }
    };
    Err(Error::Config(err))
}

/// A run's estimated peak memory, in bytes, split by cause.
#[derive(Clone, Copy, Debug)]
pub struct MemoryEstimate {
    /// The picture being optimised at its largest scale.
    pub picture: f64,
    /// The resized style images at the largest scale.
    pub styles: f64,
    /// Their pixels.
    pub style_px: usize,
    /// The mrf loss's patches and nearest-patch search ([`crate::loss::mrf::estimate_bytes`];
    /// 0 for other style losses).
    pub mrf: f64,
}

impl MemoryEstimate {
    /// Everything, with the fixed part ([`BASE_BYTES`]).
    pub fn total(&self) -> f64 {
        BASE_BYTES + self.picture + self.styles + self.mrf
    }
}

/// Estimated peak memory of a run whose scales are `sizes` (from
/// [`crate::transfer::scale_sizes`]): the largest scale dominates. A model fitted to
/// measurements (see [`BASE_BYTES`]): 4–8% above this machine's measured peaks.
pub fn estimate_peak_bytes(
    styles: &[(usize, usize)],
    cfg: &StyleTransferConfig,
    sizes: &[(usize, usize)],
) -> MemoryEstimate {
    let &(w, h) = sizes.last().expect("at least one scale");
    let side = style_side(cfg, w.max(h));
    let style_px: usize = styles
        .iter()
        .map(|&(width, height)| {
            let (sw, sh) = fit_longest(width, height, side);
            sw.saturating_mul(sh)
        })
        .fold(0, usize::saturating_add);
    let mrf = if cfg.style_loss == crate::loss::StyleLossKind::Mrf {
        let resized: Vec<_> = styles
            .iter()
            .map(|&(width, height)| fit_longest(width, height, side))
            .collect();
        crate::loss::mrf::estimate_bytes(&cfg.style_layers, (w, h), &resized)
    } else {
        0.0
    };
    MemoryEstimate {
        mrf,
        picture: (w * h) as f64 * BYTES_PER_PICTURE_PX,
        styles: style_px as f64 * BYTES_PER_STYLE_PX,
        style_px,
    }
}

/// The memory the OS says a new allocation can use without swapping (Linux: `MemAvailable`
/// in /proc/meminfo), in bytes; `None` where it does not say.
pub fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The side (px) the style images are resized to (longest side) for a scale whose content
/// picture has `side_px` as its longest side.
pub fn style_side(cfg: &StyleTransferConfig, side_px: usize) -> usize {
    ((side_px as f64 * cfg.style_scale).round() as usize).max(16)
}

/// Before any work: every scale's content picture and every style image, as resized for it,
/// must reach the deepest layer the objective reads. Errors: [`Error::Config`] naming
/// `size_px` (content) or `style_scale` (styles), with the size that would do.
fn check_sizes(
    styles: &[(usize, usize)],
    cfg: &StyleTransferConfig,
    sizes: &[(usize, usize)],
) -> Result<()> {
    let (min_px, layer) = min_input_side(&cfg.layers())?;
    let n = sizes.len();
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let halvings = 1usize << (n - 1 - i);
        if w.min(h) < min_px {
            let needed = (min_px * w.max(h)).div_ceil(w.min(h).max(1)) * halvings;
            return Err(Error::Config(ConfigError {
                field: ConfigField::SizePx,
                reason: format!(
                    "{} makes the picture {w}×{h} px at scale {} of {n}, too small for {layer} \
                     (both sides ≥ {min_px} px): use at least {needed}",
                    cfg.size_px,
                    i + 1
                ),
            }));
        }
        let side = style_side(cfg, w.max(h));
        for (k, &(width, height)) in styles.iter().enumerate() {
            let (sw, sh) = fit_longest(width, height, side);
            if sw.min(sh) < min_px {
                return Err(Error::Config(ConfigError {
                    field: ConfigField::StyleScale,
                    reason: format!(
                        "{} makes style image {} {sw}×{sh} px at scale {} of {n}, too small for \
                         {layer} (both sides ≥ {min_px} px)",
                        cfg.style_scale,
                        k + 1,
                        i + 1
                    ),
                }));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::scale_sizes;

    #[test]
    fn the_mrf_estimate_follows_the_measured_runs() {
        // Measured peak RSS (2026-11-29, 1 scale at 512 px, Adam, 11 iterations, default mrf
        // layers relu3_1 + relu4_1): chelsea × starry_night 1256 MB (gram: 617 MB).
        let cfg = StyleTransferConfig {
            size_px: 512,
            scales: 1,
            style_loss: crate::loss::StyleLossKind::Mrf,
            style_layers: vec!["relu3_1".into(), "relu4_1".into()],
            style_layer_weights: vec![1.0, 1.0],
            ..StyleTransferConfig::default()
        };
        let sizes = scale_sizes((451, 300), 512, 1);
        let est = estimate_peak_bytes(&[(1024, 640)], &cfg, &sizes);
        assert!(
            est.total() >= 1256e6 && est.total() < 1.25 * 1256e6,
            "{est:?}"
        );
        assert!((est.mrf - (1256e6 - 617e6)).abs() < 0.15 * 639e6, "{est:?}");
        // relu1_1 at 512 px: its patches alone are several GB more; a gram run has no share.
        let shallow = StyleTransferConfig {
            style_layers: vec!["relu1_1".into()],
            style_layer_weights: vec![1.0],
            ..cfg.clone()
        };
        assert!(estimate_peak_bytes(&[(1024, 640)], &shallow, &sizes).mrf > 1e9);
        let gram = StyleTransferConfig {
            style_loss: crate::loss::StyleLossKind::Gram,
            ..cfg
        };
        assert_eq!(estimate_peak_bytes(&[(1024, 640)], &gram, &sizes).mrf, 0.0);
    }

    #[test]
    fn the_estimate_follows_the_measured_runs_and_the_largest_scale() {
        let content = (451, 300);
        let style = [(400, 317)];
        let cfg = |size_px: usize, scales: usize| StyleTransferConfig {
            size_px,
            scales,
            ..StyleTransferConfig::default()
        };
        // Measured peak RSS (1 scale): 380 MB at 256 px, 633 MB at 512, 1065 MB at 768.
        for (size, measured) in [(256, 380e6), (512, 633e6), (768, 1065e6)] {
            let c = cfg(size, 1);
            let est = estimate_peak_bytes(&style, &c, &scale_sizes(content, size, 1)).total();
            assert!(
                est >= measured && est < 1.25 * measured,
                "{size}: {est} vs {measured}"
            );
        }
        // Two scales: the estimate is the finer one's.
        let one = estimate_peak_bytes(&style, &cfg(512, 1), &scale_sizes(content, 512, 1));
        let two = estimate_peak_bytes(&style, &cfg(512, 2), &scale_sizes(content, 512, 2));
        assert_eq!(one.total(), two.total());
        // Style images grow with style_scale².
        let big = StyleTransferConfig {
            style_scale: 2.0,
            ..cfg(512, 1)
        };
        let b = estimate_peak_bytes(&style, &big, &scale_sizes(content, 512, 1));
        assert!(
            (b.styles / one.styles - 4.0).abs() < 0.1,
            "{}",
            b.styles / one.styles
        );
    }

    #[test]
    fn a_run_too_big_for_memory_names_a_size_that_fits() {
        let content = (451, 300);
        let style = [(400, 317)];
        let cfg = StyleTransferConfig {
            size_px: 200_000,
            scales: 1,
            ..StyleTransferConfig::default()
        };
        let sizes = scale_sizes(content, cfg.size_px, 1);
        match check(&style, &cfg, &sizes) {
            // No /proc/meminfo here: nothing to check against.
            Ok(()) => assert!(available_memory_bytes().is_none()),
            Err(Error::Config(e)) => {
                assert_eq!(e.field, ConfigField::SizePx);
                let msg = e.to_string();
                assert!(
                    msg.contains("GB of memory") && msg.contains("use at most"),
                    "{msg}"
                );
                // The size it names fits.
                let fit: usize = msg
                    .rsplit("use at most ")
                    .next()
                    .unwrap()
                    .trim_end_matches(" px")
                    .parse()
                    .unwrap();
                let ok = StyleTransferConfig {
                    size_px: fit,
                    ..cfg.clone()
                };
                let need = estimate_peak_bytes(&style, &ok, &scale_sizes(content, fit, 1));
                assert!(need.total() <= available_memory_bytes().unwrap() as f64 * 1.01);
            }
            Err(e) => panic!("{e}"),
        }
    }
}
