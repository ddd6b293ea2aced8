//! The style-transfer loop (Gatys, Ecker & Bethge 2016): optimise an image so that its VGG-19
//! features keep the content image's and its feature statistics match the style images', at one
//! or several scales (coarse to fine), calling back after every iteration.

pub use crate::config::{reference_config, Init, Optimizer, OptimizerKind, StyleTransferConfig};
use crate::error::Result;
use crate::image::{fit_longest, original_colors, RgbImage};
use crate::loss::guided::{GrayMask, GuidedStyleLoss};
use crate::loss::mrf::{MrfLoss, MRF_STYLE_STRIDE};
use crate::loss::{
    ContentLoss, Evaluation, Features, Loss, Objective, StyleLoss, StyleLossKind, TvLoss,
};
use crate::optim::{Adam, Bounds, Lbfgs};
use crate::vgg19::Vgg19;
use engine::{DType, Tensor};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

/// Passed to the callback after every iteration.
pub struct Progress<'a> {
    /// Iteration within the current scale, from 1.
    pub iteration: usize,
    pub iterations: usize,
    /// Scale index from 0, and the number of scales.
    pub scale: usize,
    pub scales: usize,
    /// (width, height) at this scale.
    pub size: (usize, usize),
    /// Objective evaluations so far in this scale (L-BFGS line searches may use several per step).
    pub evaluations: usize,
    /// The last evaluation's total and terms (unweighted).
    pub eval: &'a Evaluation,
    /// Seconds since the run started.
    pub elapsed_seconds: f64,
    /// True on the last iteration of a scale that the stopping rule ended before
    /// `iterations` ([`StopRule`]).
    pub converged: bool,
    x: &'a Tensor,
    vgg: &'a Vgg19,
    content: &'a RgbImage,
    original_colors: bool,
}

impl Progress<'_> {
    /// The current image (deprocessed, clamped, colours handled as the final output would be).
    pub fn image(&self) -> Result<RgbImage> {
        to_image(
            self.vgg,
            self.x,
            self.size,
            self.content,
            self.original_colors,
        )
    }
}

/// The image of the preprocessed 1×3×H×W tensor `x` (the one explicit device → host copy).
fn to_image(
    vgg: &Vgg19,
    x: &Tensor,
    (w, h): (usize, usize),
    content: &RgbImage,
    keep_colors: bool,
) -> Result<RgbImage> {
    let t = x.to_device(engine::Device::Cpu)?.reshape(&[1, 3, h, w])?;
    let data = vgg
        .deprocess(&t)?
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    let img = RgbImage {
        width: w,
        height: h,
        data,
    };
    Ok(if keep_colors {
        original_colors(&img, content)
    } else {
        img
    })
}

/// The stopping rule of a scale: stop once the objective fell by less than `tolerance` (a
/// fraction of its value `window` iterations before) over the last `window` iterations. It
/// never stops before `window + 1` iterations, nor while the objective is not finite; a
/// tolerance of 0 never stops.
#[derive(Clone, Debug)]
pub struct StopRule {
    tolerance: f64,
    window: usize,
    totals: std::collections::VecDeque<f64>,
}

impl StopRule {
    pub fn new(tolerance: f64, window: usize) -> StopRule {
        StopRule {
            tolerance,
            window: window.max(1),
            totals: std::collections::VecDeque::with_capacity(window.max(1) + 1),
        }
    }

    /// Record one iteration's total; true when the scale should stop here.
    pub fn observe(&mut self, total: f64) -> bool {
        if self.tolerance <= 0.0 {
            return false;
        }
        if self.totals.len() == self.window + 1 {
            self.totals.pop_front();
        }
        self.totals.push_back(total);
        if self.totals.len() < self.window + 1 {
            return false;
        }
        let (old, new) = (self.totals[0], total);
        if !old.is_finite() || !new.is_finite() || old == 0.0 {
            return false;
        }
        (old - new) / old.abs() < self.tolerance
    }
}

/// Sizes (w, h) of each scale, coarse to fine, for an output of `size_px` on the longest side.
pub fn scale_sizes(content: (usize, usize), size_px: usize, scales: usize) -> Vec<(usize, usize)> {
    let mut sides: Vec<usize> = (0..scales.max(1))
        .map(|i| (size_px >> (scales.max(1) - 1 - i)).max(64.min(size_px)))
        .collect();
    sides.dedup();
    sides
        .into_iter()
        .map(|s| fit_longest(content.0, content.1, s))
        .collect()
}

/// Run style transfer. `callback` sees every iteration and may stop the run early
/// (`ControlFlow::Break`), in which case the current image is returned.
/// Errors: invalid configuration, images too small for the chosen layers, engine errors.
pub fn run(
    vgg: Arc<Vgg19>,
    content: &RgbImage,
    styles: &[RgbImage],
    cfg: &StyleTransferConfig,
    callback: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<RgbImage> {
    run_with_losses(vgg, content, styles, cfg, |_| Ok(vec![]), callback)
}

/// [`run`] with extra terms in the objective: `extra((w, h))` gives them for each scale's
/// picture size (e.g. [`crate::loss::TemporalLoss`] for a video frame). Errors: as [`run`],
/// and `extra`'s.
pub fn run_with_losses(
    vgg: Arc<Vgg19>,
    content: &RgbImage,
    styles: &[RgbImage],
    cfg: &StyleTransferConfig,
    extra: impl Fn((usize, usize)) -> Result<Vec<Box<dyn Loss>>>,
    mut callback: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<RgbImage> {
    cfg.validate(styles.len())?;
    let start = Instant::now();
    let sizes = scale_sizes(content.size(), cfg.size_px, cfg.scales);
    let style_sizes: Vec<_> = styles.iter().map(RgbImage::size).collect();
    crate::loss::guided::check_sizes(cfg, content.size(), &style_sizes)?;
    crate::plan::check(&style_sizes, cfg, &sizes)?;
    let blend = blend_weights(cfg, styles.len());
    let device = vgg.device();
    // The optimisation stays inside the valid pixels (0..1 before preprocessing): the picture
    // written is the optimum found, not a clamped copy of an unconstrained one.
    let bounds = Bounds {
        lower: vgg.preprocess(&[0.0; 3], 1, 1)?.to_device(device)?,
        upper: vgg.preprocess(&[1.0; 3], 1, 1)?.to_device(device)?,
    };
    let mut x = Tensor::zeros(&[1, 3, 1, 1], DType::F32)?;
    let mut prev_size = (0, 0);
    for (scale, &(w, h)) in sizes.iter().enumerate() {
        let content_s = content.resize(w, h);
        let content_t = vgg.preprocess(&content_s.data, w, h)?;
        // Starting point: the init at the first scale, the previous result upsampled after.
        // Built on the host, copied to the device once per scale.
        let x_host = if scale == 0 {
            match &cfg.init {
                Init::Content => content_t.clone(),
                Init::Noise => {
                    let noise =
                        Tensor::randn(&[h * w * 3], 0.15, cfg.seed, DType::F32)?.to_vec::<f32>()?;
                    let rgb: Vec<f32> = noise.iter().map(|n| (0.5 + n).clamp(0.0, 1.0)).collect();
                    vgg.preprocess(&rgb, w, h)?
                }
                Init::Style => vgg.preprocess(&styles[0].resize(w, h).data, w, h)?,
                Init::Image(img) => vgg.preprocess(&img.resize(w, h).data, w, h)?,
            }
        } else {
            let prev = to_image(&vgg, &x, prev_size, content, false)?;
            vgg.preprocess(&prev.resize(w, h).data, w, h)?
        };
        x = x_host.to_device(device)?;
        prev_size = (w, h);
        let mut objective =
            build_objective(vgg.clone(), &content_t, styles, &blend, cfg, w.max(h))?;
        objective.losses.extend(extra((w, h))?);
        let evaluations = std::cell::Cell::new(0usize);
        let evaluate = |x: &Tensor| -> Result<Evaluation> {
            evaluations.set(evaluations.get() + 1);
            objective.evaluate(x)
        };
        let mut adam = match cfg.optimizer {
            Optimizer::Adam { learning_rate } => Some(Adam::new(learning_rate)),
            _ => None,
        };
        let mut lbfgs = match cfg.optimizer {
            Optimizer::Lbfgs { history } => Some(Lbfgs::new(history).with_bounds(bounds.clone())),
            _ => None,
        };
        let mut stop = StopRule::new(cfg.tolerance, cfg.tolerance_window);
        for it in 1..=cfg.iterations {
            if objective.start_iteration(it as u64) {
                if let Some(l) = lbfgs.as_mut() {
                    l.forget_value();
                }
            }
            let eval = if let Some(adam) = adam.as_mut() {
                let e = evaluate(&x)?;
                adam.step(&mut x, &e.grad)?;
                x = bounds.project(&x)?;
                e
            } else {
                let opt = lbfgs.as_mut().expect("one optimiser");
                let mut last: Option<Evaluation> = None;
                opt.step(&mut x, &mut |xs: &Tensor| {
                    let e = evaluate(xs)?;
                    let out = (e.total, e.grad.clone());
                    last = Some(e);
                    Ok(out)
                })?;
                match last {
                    Some(e) => e,
                    None => evaluate(&x)?,
                }
            };
            let converged = stop.observe(eval.total) && it < cfg.iterations;
            let p = Progress {
                iteration: it,
                iterations: cfg.iterations,
                scale,
                scales: sizes.len(),
                size: (w, h),
                evaluations: evaluations.get(),
                eval: &eval,
                elapsed_seconds: start.elapsed().as_secs_f64(),
                converged,
                x: &x,
                vgg: &vgg,
                content,
                original_colors: cfg.original_colors,
            };
            if callback(&p).is_break() {
                return to_image(&vgg, &x, (w, h), content, cfg.original_colors);
            }
            if converged {
                break;
            }
        }
    }
    to_image(&vgg, &x, prev_size, content, cfg.original_colors)
}

/// Content, style and TV losses for one scale.
fn build_objective(
    vgg: Arc<Vgg19>,
    content_t: &Tensor,
    styles: &[RgbImage],
    blend: &[f64],
    cfg: &StyleTransferConfig,
    side_px: usize,
) -> Result<Objective> {
    let style_ts = style_tensors(&vgg, styles, cfg, side_px)?;
    objective_from_tensors(vgg, content_t, &style_ts, blend, cfg)
}

/// The style images as the objective of a scale whose picture has `side_px` on its longest
/// side sees them: each resized (Lanczos3) to [`crate::plan::style_side`] on its longest side
/// and preprocessed (1×3×H'×W', on the host).
pub fn style_tensors(
    vgg: &Vgg19,
    styles: &[RgbImage],
    cfg: &StyleTransferConfig,
    side_px: usize,
) -> Result<Vec<Tensor>> {
    let side = crate::plan::style_side(cfg, side_px);
    styles
        .iter()
        .map(|s| {
            let (sw, sh) = fit_longest(s.width, s.height, side);
            vgg.preprocess(&s.resize(sw, sh).data, sw, sh)
        })
        .collect()
}

/// The blend weight of each of `n_styles` style images: `cfg.style_blend_weights`, or equal
/// weights when it is empty ([`StyleLoss::from_styles`] normalises them).
pub fn blend_weights(cfg: &StyleTransferConfig, n_styles: usize) -> Vec<f64> {
    if cfg.style_blend_weights.is_empty() {
        vec![1.0; n_styles]
    } else {
        cfg.style_blend_weights.clone()
    }
}

/// The objective of `cfg` (content layers and weight, style layers, layer weights, style
/// weight and statistics, TV weight) for a preprocessed content image (1×3×H×W) and style
/// images (1×3×H'×W', any size), moved to the network's device. Targets are computed here,
/// without grad; `blend` weighs the style images. Errors: engine errors, bad layer names.
pub fn objective_from_tensors(
    vgg: Arc<Vgg19>,
    content_t: &Tensor,
    style_ts: &[Tensor],
    blend: &[f64],
    cfg: &StyleTransferConfig,
) -> Result<Objective> {
    let content_layers: Vec<&str> = cfg.content_layers.iter().map(String::as_str).collect();
    let style_layers: Vec<&str> = cfg.style_layers.iter().map(String::as_str).collect();
    let content_feats = target_features(&vgg, content_t, &content_layers, cfg)?;
    let mut style_feats = Vec::with_capacity(style_ts.len());
    for st in style_ts {
        style_feats.push(target_features(&vgg, st, &style_layers, cfg)?);
    }
    objective_from_features(vgg, &content_feats, &style_feats, blend, cfg)
}

/// The features of a preprocessed image (1×3×H×W, any device) at `layers`, without grad: a
/// target of the objective.
pub fn target_features(
    vgg: &Vgg19,
    x: &Tensor,
    layers: &[&str],
    cfg: &StyleTransferConfig,
) -> Result<Features> {
    let x = x.to_device(vgg.device())?;
    engine::no_grad(|| vgg.forward_with(&x, layers, cfg.conv))
}

/// `cfg` with its weights in absolute units (jcjohnson/neural-style's): when
/// `cfg.relative_losses`, the content weight is divided by the mean square of the content
/// target's features and each style layer's weight by the mean square of its (blended) target
/// statistics, so that each term is the relative error squared (`content_rel²`, `gram_rel²`)
/// and the weights mean the same on every content × style pair; `relative_losses` is then
/// false. Otherwise `cfg` unchanged. Errors: a missing feature map, engine errors.
pub fn absolute_weights(
    cfg: &StyleTransferConfig,
    content_feats: &Features,
    style_feats: &[Features],
    blend: &[f64],
) -> Result<StyleTransferConfig> {
    let mut out = cfg.clone();
    if !cfg.relative_losses {
        return Ok(out);
    }
    out.relative_losses = false;
    let mean_square = crate::loss::mean_square;
    // Several content layers: each term is divided by its own target's mean square, and
    // the weight is split evenly as before; a uniform rescale keeps one weight per config.
    let mut content_ms = 0.0;
    for l in &cfg.content_layers {
        let t = content_feats.get(l).ok_or_else(|| {
            crate::Error::InvalidArgument(format!("content feature {l} was not computed"))
        })?;
        content_ms += mean_square(std::slice::from_ref(t))? / cfg.content_layers.len() as f64;
    }
    if content_ms > 0.0 {
        out.content_weight = cfg.content_weight / content_ms;
    }
    if !blends_statistics(cfg) {
        // The loss normalises its own terms (see `objective_from_features`).
        return Ok(out);
    }
    let unit: Vec<(String, f64)> = cfg.style_layers.iter().map(|l| (l.clone(), 1.0)).collect();
    let style =
        engine::no_grad(|| StyleLoss::from_styles(cfg.style_loss, &unit, style_feats, blend))?;
    for ((_, stats, _), w) in style.targets.iter().zip(out.style_layer_weights.iter_mut()) {
        let ms = crate::loss::target_mean_square(cfg.style_loss, stats)?;
        if ms > 0.0 {
            *w /= ms;
        }
    }
    Ok(out)
}

/// Whether the style loss of `cfg` matches statistics blended across the style images (Gram,
/// mean-std), whose relative weights [`absolute_weights`] computes; the mrf and guided
/// losses normalise their own terms.
fn blends_statistics(cfg: &StyleTransferConfig) -> bool {
    cfg.style_loss != StyleLossKind::Mrf && cfg.content_masks.is_empty()
}

/// [`objective_from_tensors`] from the targets' features ([`target_features`]): the content
/// image's at `cfg.content_layers`, each style image's at `cfg.style_layers`.
/// Errors: a missing feature map, bad blend weights, engine errors.
pub fn objective_from_features(
    vgg: Arc<Vgg19>,
    content_feats: &Features,
    style_feats: &[Features],
    blend: &[f64],
    cfg: &StyleTransferConfig,
) -> Result<Objective> {
    let relative = cfg.relative_losses;
    let abs = absolute_weights(cfg, content_feats, style_feats, blend)?;
    let cfg = &abs;
    let mut losses: Vec<Box<dyn Loss>> = Vec::new();
    let n_content = cfg.content_layers.len() as f64;
    for l in &cfg.content_layers {
        let target = content_feats.get(l).ok_or_else(|| {
            crate::Error::InvalidArgument(format!("content feature {l} was not computed"))
        })?;
        losses.push(Box::new(ContentLoss {
            layer: l.clone(),
            target: target.clone(),
            weight: cfg.content_weight / n_content,
        }));
    }
    let layers: Vec<(String, f64)> = cfg
        .style_layers
        .iter()
        .zip(&cfg.style_layer_weights)
        .map(|(l, w)| (l.clone(), w * cfg.style_weight))
        .collect();
    let style: Box<dyn Loss> = engine::no_grad(|| -> Result<Box<dyn Loss>> {
        Ok(match cfg.style_loss {
            _ if !cfg.content_masks.is_empty() => Box::new(GuidedStyleLoss::new(
                cfg.style_loss,
                &layers,
                style_feats,
                &cfg.content_masks
                    .iter()
                    .map(GrayMask::from_image)
                    .collect::<Vec<_>>(),
                &(0..style_feats.len())
                    .map(|i| cfg.style_masks.get(i).map(GrayMask::from_image))
                    .collect::<Vec<_>>(),
                relative,
            )?),
            StyleLossKind::Mrf => Box::new(MrfLoss::from_styles(
                &layers,
                style_feats,
                MRF_STYLE_STRIDE,
                relative,
            )?),
            kind => Box::new(StyleLoss::from_styles(kind, &layers, style_feats, blend)?),
        })
    })?;
    losses.push(style);
    if cfg.tv_weight > 0.0 {
        losses.push(Box::new(TvLoss {
            weight: cfg.tv_weight,
        }));
    }
    Ok(Objective {
        vgg,
        losses,
        conv: cfg.conv,
    })
}

#[cfg(test)]
mod tests {
    use super::StopRule;

    /// The iteration (from 1) at which the rule stops on `totals`, if it does.
    fn stops_at(tol: f64, window: usize, totals: impl IntoIterator<Item = f64>) -> Option<usize> {
        let mut rule = StopRule::new(tol, window);
        totals
            .into_iter()
            .position(|t| rule.observe(t))
            .map(|i| i + 1)
    }

    #[test]
    fn a_flat_objective_stops_right_after_the_window() {
        // Converged from the start: the first iteration that has a full window.
        assert_eq!(stops_at(1e-3, 10, std::iter::repeat_n(5.0, 100)), Some(11));
        assert_eq!(stops_at(1e-3, 1, [5.0, 5.0]), Some(2));
    }

    #[test]
    fn a_decreasing_objective_runs_until_the_decrease_is_below_the_tolerance() {
        // f_k = 1 + 100·0.9^k: the window's relative decrease is
        // 100·0.9^(k−w)·(1 − 0.9^w) / (1 + 100·0.9^(k−w)), which falls below 1e-2 first at the
        // iteration computed here by brute force, and never before.
        let f = |k: usize| 1.0 + 100.0 * 0.9f64.powi(k as i32);
        let w = 5;
        let first = (w + 1..1000)
            .find(|&k| (f(k - w) - f(k)) / f(k - w) < 1e-2)
            .unwrap();
        assert!(
            first > 40,
            "the example stops late enough to mean something: {first}"
        );
        // Iterations are numbered from 1, the totals f(1), f(2), ….
        assert_eq!(stops_at(1e-2, w, (1..1000).map(f)), Some(first));
    }

    #[test]
    fn a_steady_decrease_never_stops() {
        // 1% per iteration, window 20: ≈ 18% per window against a 1% tolerance.
        assert_eq!(stops_at(1e-2, 20, (0..2000).map(|k| 0.99f64.powi(k))), None);
    }

    #[test]
    fn a_pause_shorter_than_the_window_does_not_stop() {
        // Flat for 9 iterations between two descents: window 10 still sees the fall.
        let totals = (0..50)
            .map(|k| 100.0 - k as f64)
            .chain(std::iter::repeat_n(50.0, 9))
            .chain((0..50).map(|k| 49.0 - 0.5 * k as f64));
        assert_eq!(stops_at(1e-3, 10, totals), None);
    }

    #[test]
    fn zero_tolerance_or_non_finite_totals_never_stop() {
        assert_eq!(stops_at(0.0, 5, std::iter::repeat_n(1.0, 100)), None);
        assert_eq!(stops_at(1e-3, 5, std::iter::repeat_n(f64::NAN, 100)), None);
        assert_eq!(stops_at(1e-3, 5, std::iter::repeat_n(0.0, 100)), None);
    }
}
