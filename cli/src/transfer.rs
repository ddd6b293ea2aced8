//! `nst-cli transfer CONTENT STYLE… -o OUT`: Gatys et al. style transfer. Flag names follow
//! jcjohnson/neural-style where one exists.

use crate::common::{
    check_device, check_output, in_flag_words, load_vgg, parse_flag, parse_precision,
};
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::loss::StyleLossKind;
use nst::transfer::{run, Init, OptimizerKind, StyleTransferConfig};
use nst::vgg19::Pooling;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Options of `nst-cli transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The content photo.
    pub content: PathBuf,
    /// One or more style images (paintings).
    #[arg(required = true)]
    pub styles: Vec<PathBuf>,
    /// Output image (.png or .jpg); written atomically, never over an input.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Longest side of the output, in pixels.
    #[arg(long, default_value_t = 512)]
    pub size: usize,
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
    /// lbfgs (with line search) or adam.
    #[arg(long, default_value = "lbfgs")]
    pub optimizer: String,
    /// L-BFGS: curvature pairs kept (memory: 8 bytes × pixels × 3 each).
    #[arg(long, default_value_t = 10)]
    pub lbfgs_history: usize,
    /// Adam: step size, in 0–255 pixel units.
    #[arg(long, default_value_t = 10.0)]
    pub learning_rate: f64,
    /// Iterations at each scale.
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
    /// Start from: content, noise, style, or an image FILE.
    #[arg(long, default_value = "content")]
    pub init: String,
    /// Random seed (noise init); the same seed and flags give the same output on one machine.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pooling in VGG-19: max or avg.
    #[arg(long, default_value = "max")]
    pub pooling: String,
    /// Keep the content's colours (luminance-only transfer).
    #[arg(long)]
    pub original_colors: bool,
    /// Coarse-to-fine scales: optimise at --size/2^(N−1), upsample, continue, … up to --size.
    #[arg(long, default_value_t = 2)]
    pub scales: usize,
    /// Save the current image every N iterations as OUT-stem_NNNN.ext (0: never).
    #[arg(long, default_value_t = 0)]
    pub save_every: usize,
    /// Print the losses every N iterations (0: only the progress bar).
    #[arg(long, default_value_t = 0)]
    pub print_every: usize,
    /// Write every iteration's losses, elapsed seconds and scale as JSON lines to FILE.
    #[arg(long)]
    pub log_json: Option<PathBuf>,
    /// Number format of the CPU convolutions' input gradients (the backward pass): f32, or bf16
    /// (bf16 operands, f32 sums; faster on CPUs with AVX-512-BF16). The forward and the losses
    /// stay f32.
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// VGG-19 weights (.safetensors from `nst-cli weights`) [default: the cache].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Refuse input images with more pixels than this (checked before decoding).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

fn save_path(output: &Path, step: usize) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = output
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}_{step:04}.{ext}"))
}

impl TransferArgs {
    fn config(&self, n_styles: usize) -> Result<StyleTransferConfig> {
        let optimizer = parse_flag::<OptimizerKind>("--optimizer", &self.optimizer)?
            .with(self.lbfgs_history, self.learning_rate);
        // A keyword (content, noise, style), else an image file.
        let init = match self.init.parse::<Init>() {
            Ok(init) => init,
            Err(_) => Init::Image(
                RgbImage::load(Path::new(&self.init), self.max_pixels).context("--init")?,
            ),
        };
        let cfg = StyleTransferConfig {
            size_px: self.size,
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
            optimizer,
            iterations: self.iterations,
            init,
            seed: self.seed,
            original_colors: self.original_colors,
            scales: self.scales,
            // --precision is set by run_transfer, which knows the device.
            conv: Default::default(),
        };
        cfg.validate(n_styles).map_err(in_flag_words)?;
        Ok(cfg)
    }
}

/// A note when the finest scale will take long on a CPU: a rough time from this project's 2-core
/// measurement (≈ 0.45 s per L-BFGS iteration at 512×341, growing with the pixel count).
fn warn_if_slow(sizes: &[(usize, usize)], cfg: &StyleTransferConfig, device: nst::engine::Device) {
    let (Some(&(w, h)), nst::engine::Device::Cpu) = (sizes.last(), device) else {
        return;
    };
    let secs_per_it = 0.45 * (w * h) as f64 / (512.0 * 341.0);
    let minutes = secs_per_it * cfg.iterations as f64 / 60.0;
    if minutes > 15.0 {
        note!(
            "note: a {w}×{h} px picture takes roughly {secs_per_it:.0} s per iteration on a \
             2-core CPU ({minutes:.0} min for {} iterations); try a smaller --size first",
            cfg.iterations
        );
    }
}

/// Run the command; returns whether it was interrupted (Ctrl-C) after saving.
pub fn run_transfer(args: TransferArgs) -> Result<bool> {
    let device = check_device(&args.device)?;
    let precision = parse_precision(&args.precision, device)?;
    let mut inputs: Vec<&Path> = vec![&args.content];
    inputs.extend(args.styles.iter().map(PathBuf::as_path));
    if let Some(f) = args.weights.as_deref() {
        inputs.push(f);
    }
    // An --init image is read too (anything but the keywords is a file).
    let init_file = Path::new(&args.init);
    if args.init.parse::<Init>().is_err() {
        inputs.push(init_file);
    }
    check_output(&args.output, &inputs, &["png", "jpg", "jpeg"])?;
    if let Some(log) = &args.log_json {
        check_output(log, &inputs, &["json", "jsonl", "log", "txt"])?;
    }
    // Snapshots (--save-every) never write over an input either: check every name a run of
    // `iterations` × `scales` steps can use.
    if args.save_every > 0 {
        let steps = args.iterations.saturating_mul(args.scales.max(1));
        for step in (args.save_every..=steps).step_by(args.save_every) {
            let path = save_path(&args.output, step);
            if let Err(e) = check_output(&path, &inputs, &["png", "jpg", "jpeg"]) {
                bail!("--save-every: snapshot {e}");
            }
        }
    }
    let pooling: Pooling = parse_flag("--pooling", &args.pooling)?;
    let mut cfg = args.config(args.styles.len())?;
    cfg.conv.precision = precision;
    let content = RgbImage::load(&args.content, args.max_pixels)?;
    let styles = args
        .styles
        .iter()
        .map(|s| RgbImage::load(s, args.max_pixels))
        .collect::<Result<Vec<_>, _>>()?;
    // Sizes and memory first (run checks them too), so a refused run prints only its error.
    let sizes = nst::transfer::scale_sizes(&content, cfg.size_px, cfg.scales);
    nst::plan::check(&styles, &cfg, &sizes).map_err(in_flag_words)?;
    warn_if_slow(&sizes, &cfg, device);
    // Only the layers the objective reads are kept (conv5_2–5_4 are never used by default).
    let vgg = load_vgg(args.weights.as_deref(), pooling)?.truncated(&cfg.layers())?;
    let vgg = Arc::new(vgg.to_device(device)?);

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // Ctrl-C, SIGTERM or SIGHUP (ctrlc's "termination" feature) stops after the current
        // iteration and saves; a second one while saving is ignored.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let mut log = match &args.log_json {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let total_iters =
        cfg.iterations * nst::transfer::scale_sizes(&content, cfg.size_px, cfg.scales).len();
    let bar = ProgressBar::new(total_iters as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} ({per_sec}, ETA {eta})",
        )
        .expect("static template"),
    );
    let mut step = 0usize;
    let mut failure: Option<anyhow::Error> = None;
    let image = run(vgg, &content, &styles, &cfg, |p| {
        step += 1;
        let e = p.eval;
        let style: f64 = e
            .terms
            .iter()
            .filter(|(n, _)| n.starts_with("style"))
            .map(|(_, v)| v)
            .sum();
        let content_l: f64 = e
            .terms
            .iter()
            .filter(|(n, _)| n.starts_with("content"))
            .map(|(_, v)| v)
            .sum();
        bar.set_message(format!(
            "scale {}/{} {}×{} loss {:.4e} (content {:.3e}, style {:.3e})",
            p.scale + 1,
            p.scales,
            p.size.0,
            p.size.1,
            e.total,
            content_l,
            style
        ));
        bar.inc(1);
        if args.print_every > 0 && step.is_multiple_of(args.print_every) {
            let terms: Vec<String> = e
                .terms
                .iter()
                .map(|(n, v)| format!("{n} {v:.4e}"))
                .collect();
            let line = format!(
                "iteration {step}/{total_iters}: total {:.6e}; {}",
                e.total,
                terms.join(", ")
            );
            if bar.is_hidden() {
                note!("{line}");
            } else {
                bar.println(line);
            }
        }
        if let Some(w) = log.as_mut() {
            let mut obj = serde_json::Map::new();
            obj.insert("iteration".into(), step.into());
            obj.insert("scale".into(), p.scale.into());
            obj.insert("width".into(), p.size.0.into());
            obj.insert("height".into(), p.size.1.into());
            obj.insert("total".into(), e.total.into());
            for (n, v) in &e.terms {
                obj.insert(n.clone(), (*v).into());
            }
            obj.insert("evaluations".into(), p.evaluations.into());
            obj.insert("elapsed_seconds".into(), p.elapsed_seconds.into());
            // One whole line per iteration, flushed, so the log can be followed live.
            if let Err(err) =
                writeln!(w, "{}", serde_json::Value::Object(obj)).and_then(|()| w.flush())
            {
                failure = Some(anyhow::anyhow!("writing the JSON log: {err}"));
                return ControlFlow::Break(());
            }
        }
        if args.save_every > 0 && step.is_multiple_of(args.save_every) {
            let path = save_path(&args.output, step);
            if let Err(err) = p.image().and_then(|img| img.save(&path)) {
                failure = Some(anyhow::anyhow!("saving {}: {err}", path.display()));
                return ControlFlow::Break(());
            }
        }
        if interrupted.load(Ordering::SeqCst) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .map_err(in_flag_words)?;
    bar.finish_and_clear();
    if let Some(w) = log.as_mut() {
        w.flush().context("writing the JSON log")?;
    }
    image.save(&args.output)?;
    if let Some(err) = failure {
        note!("saved the current image to {}", args.output.display());
        return Err(err);
    }
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    if was_interrupted {
        note!(
            "interrupted after {step} of {total_iters} iterations; saved the current image to {}",
            args.output.display()
        );
    } else {
        note!(
            "wrote {} ({}×{}) after {step} iterations",
            args.output.display(),
            image.width,
            image.height
        );
    }
    Ok(was_interrupted)
}
