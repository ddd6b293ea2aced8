//! `nst-cli transfer CONTENT STYLE… -o OUT`: Gatys et al. style transfer. Flag names follow
//! jcjohnson/neural-style where one exists.

use crate::common::{
    check_device, check_output, in_flag_words, load_vgg, parse_flag, parse_precision,
};
use crate::objective::ObjectiveArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::transfer::{run, Init, OptimizerKind, StyleTransferConfig};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Options of `nst-cli transfer`.
#[derive(Debug, Args)]
#[command(
    override_usage = "nst-cli transfer CONTENT STYLE... -o OUT [OPTIONS]\n       \
                            nst-cli transfer --content PHOTO|FOLDER... STYLE... -o DIR [OPTIONS]"
)]
pub struct TransferArgs {
    /// The content photo (with --content, the first style image).
    #[arg(required_unless_present = "contents")]
    pub content: Option<PathBuf>,
    /// One or more style images (paintings).
    #[arg(required_unless_present = "contents")]
    pub styles: Vec<PathBuf>,
    /// Many pictures: a photo, or a folder of photos, repeated for each
    /// (`--content a.jpg --content photos/`). Then every positional argument is a style image
    /// and -o names a folder (made if missing) that gets <photo stem>.png per photo. One
    /// progress bar; a photo that fails is listed and skipped (exit 1). A picture nst already
    /// wrote there is skipped, so re-running the command resumes an interrupted batch.
    #[arg(long = "content", value_name = "PHOTO|FOLDER")]
    pub contents: Vec<PathBuf>,
    /// Output image (.png or .jpg); written atomically, never over an input, and over an
    /// existing file only if nst wrote it (or with --overwrite). With --content: a folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace existing output, snapshot and log files even if nst did not write them (never
    /// an input). With --content: redo every picture, including those already done.
    #[arg(long)]
    pub overwrite: bool,
    /// Longest side of the output, in pixels.
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    // The objective's layers, weights, statistics and network (shared with eval).
    #[command(flatten)]
    pub objective: ObjectiveArgs,
    /// Guided transfer (Gatys et al. 2017): one mask per style image, in the style images'
    /// order (repeat the flag), white where that style applies in the picture; any size with
    /// the content's aspect ratio (within 2%). Only with --style-loss gram or mean-std.
    #[arg(long = "content-mask", value_name = "MASK")]
    pub content_masks: Vec<PathBuf>,
    /// With --content-mask: one mask per style image (repeat the flag), white = the part of the
    /// painting to use, with its aspect ratio [default: all of each painting].
    #[arg(long = "style-mask", value_name = "MASK")]
    pub style_masks: Vec<PathBuf>,
    /// lbfgs (with line search) or adam.
    #[arg(long, default_value = "lbfgs")]
    pub optimizer: String,
    /// L-BFGS: curvature pairs kept (memory: 8 bytes × pixels × 3 each).
    #[arg(long, default_value_t = 10)]
    pub lbfgs_history: usize,
    /// Adam: step size, in 0–255 pixel units.
    #[arg(long, default_value_t = 10.0)]
    pub learning_rate: f64,
    /// Iterations at each scale: the most, when --tolerance stops a scale earlier.
    #[arg(long, default_value_t = StyleTransferConfig::default().iterations)]
    pub iterations: usize,
    /// Stop a scale once the objective fell by less than this fraction over the last
    /// --tolerance-window iterations (0: run all --iterations at every scale).
    #[arg(long, default_value_t = StyleTransferConfig::default().tolerance)]
    pub tolerance: f64,
    /// The stopping rule's window, in iterations (no scale stops before window + 1).
    #[arg(long, default_value_t = StyleTransferConfig::default().tolerance_window)]
    pub tolerance_window: usize,
    /// Start from: content, noise, style, fast (the feed-forward networks' picture of the
    /// content in the style images' style, as `stylize --style-image`), or an image FILE.
    #[arg(long, default_value = "content")]
    pub init: String,
    /// Random seed (noise init); the same seed and flags give the same output on one machine.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the content's colours (luminance-only transfer).
    #[arg(long)]
    pub original_colors: bool,
    /// Coarse-to-fine scales: optimise at --size/2^(N−1), upsample, continue, … up to --size.
    #[arg(long, default_value_t = StyleTransferConfig::default().scales)]
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
    /// Number format of the convolutions: auto (bf16 on a GPU, with AMX, and on an AMD with AVX-512-BF16, else
    /// f32), f32, or bf16 (CPU: the input gradients' operands in bf16, f32
    /// sums, the forward and the losses stay f32; GPU: the convolutions' GEMMs on TF32 tensor
    /// cores, as PyTorch's default).
    #[arg(long, default_value = "auto")]
    pub precision: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
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

/// The files next to `output` named as a snapshot of step `k·every` ≤ `steps` would be
/// ([`save_path`]).
fn existing_snapshots(output: &Path, every: usize, steps: usize) -> Result<Vec<PathBuf>> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = output.file_stem().unwrap_or_default().to_string_lossy();
    let ext = output.extension().unwrap_or_default().to_string_lossy();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut found = vec![];
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let step = name
            .strip_prefix(&format!("{stem}_"))
            .and_then(|r| r.strip_suffix(&format!(".{ext}")))
            .filter(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(k) = step.filter(|&k| k > 0 && k % every == 0 && k <= steps) {
            if save_path(output, k).file_name() == Some(e.file_name().as_os_str()) {
                found.push(e.path());
            }
        }
    }
    Ok(found)
}

impl TransferArgs {
    pub(crate) fn config(&self, n_styles: usize) -> Result<StyleTransferConfig> {
        let optimizer = parse_flag::<OptimizerKind>("--optimizer", &self.optimizer)?
            .with(self.lbfgs_history, self.learning_rate);
        // A keyword (content, noise, style; fast is made by run_transfer), else an image file.
        let init = match self.init.parse::<Init>() {
            _ if is_fast(&self.init) => Init::Content,
            Ok(init) => init,
            Err(_) => Init::Image(
                RgbImage::load(Path::new(&self.init), self.max_pixels).context("--init")?,
            ),
        };
        let base = StyleTransferConfig {
            size_px: self.size,
            optimizer,
            iterations: self.iterations,
            tolerance: self.tolerance,
            tolerance_window: self.tolerance_window,
            init,
            seed: self.seed,
            original_colors: self.original_colors,
            scales: self.scales,
            // --precision is set by run_transfer, which knows the device.
            conv: Default::default(),
            ..StyleTransferConfig::default()
        };
        let mut cfg = self.objective.config(base)?;
        let load = |paths: &[PathBuf], flag: &str| -> Result<Vec<RgbImage>> {
            paths
                .iter()
                .map(|p| RgbImage::load(p, self.max_pixels).context(flag.to_string()))
                .collect()
        };
        cfg.content_masks = load(&self.content_masks, "--content-mask")?;
        cfg.style_masks = load(&self.style_masks, "--style-mask")?;
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

/// `--init fast`: start from the feed-forward networks' picture.
fn is_fast(init: &str) -> bool {
    init.eq_ignore_ascii_case("fast")
}

/// The words for a `--log-json` write that failed at iteration `step`.
fn log_error(path: Option<&Path>, step: usize, err: &std::io::Error) -> String {
    let path = path.map(|p| p.display().to_string()).unwrap_or_default();
    format!("--log-json {path}: writing failed at iteration {step} ({err})")
}

/// The files a run reads besides its content photo(s): the style images, `--weights` and an
/// `--init` image (anything but the keywords is a file).
pub(crate) fn other_inputs(args: &TransferArgs) -> Vec<&Path> {
    let mut inputs: Vec<&Path> = args.styles.iter().map(PathBuf::as_path).collect();
    if let Some(f) = args.objective.weights.as_deref() {
        inputs.push(f);
    }
    inputs.extend(
        args.content_masks
            .iter()
            .chain(&args.style_masks)
            .map(PathBuf::as_path),
    );
    if args.init.parse::<Init>().is_err() && !is_fast(&args.init) {
        inputs.push(Path::new(&args.init));
    }
    inputs
}

/// The style images, read once per command.
pub(crate) fn load_styles(args: &TransferArgs) -> Result<Vec<RgbImage>> {
    Ok(args
        .styles
        .iter()
        .map(|s| RgbImage::load(s, args.max_pixels))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The checks and set-up of one content photo: its scale sizes, refused when too small or too
/// big for memory (as `run` would, so a refused run prints only its error), a note when it will
/// take long, and the configuration for it (`--init fast`: the feed-forward picture).
pub(crate) fn prepare_content(
    args: &TransferArgs,
    content: &RgbImage,
    styles: &[RgbImage],
    cfg: &StyleTransferConfig,
    device: nst::engine::Device,
) -> Result<(Vec<(usize, usize)>, StyleTransferConfig)> {
    let sizes = nst::transfer::scale_sizes(content.size(), cfg.size_px, cfg.scales);
    let style_sizes: Vec<_> = styles.iter().map(RgbImage::size).collect();
    nst::loss::guided::check_sizes(cfg, content.size(), &style_sizes).map_err(in_flag_words)?;
    nst::plan::check(&style_sizes, cfg, &sizes).map_err(in_flag_words)?;
    warn_if_slow(&sizes, cfg, device);
    let mut cfg = cfg.clone();
    if is_fast(&args.init) {
        // The feed-forward picture at the finest size; each scale resizes it.
        let photo = content.resize_longest(cfg.size_px);
        let picture =
            crate::stylize::fast_picture(&photo, styles, &cfg.style_blend_weights, device)
                .map_err(|e| anyhow::anyhow!("--init fast: {e:#}"))?;
        cfg.init = Init::Image(picture);
    }
    Ok((sizes, cfg))
}

/// VGG-19 on `device`, with only the layers the objective reads (conv5_2–5_4 are never used
/// by default).
pub(crate) fn load_network(
    args: &TransferArgs,
    cfg: &StyleTransferConfig,
    pooling: nst::vgg19::Pooling,
    device: nst::engine::Device,
) -> Result<Arc<nst::vgg19::Vgg19>> {
    let vgg = load_vgg(args.objective.weights.as_deref(), pooling)?.truncated(&cfg.layers())?;
    Ok(Arc::new(vgg.to_device(device)?))
}

/// A flag set by Ctrl-C, SIGTERM or SIGHUP (ctrlc's "termination" feature): the run stops
/// after the current iteration; a second signal while saving is ignored.
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    interrupted
}

/// The progress bar's words for an iteration: scale, size and losses.
pub(crate) fn progress_text(p: &nst::transfer::Progress) -> String {
    let e = p.eval;
    let sum = |prefix: &str| -> f64 {
        e.terms
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    format!(
        "scale {}/{} {}×{} loss {:.4e} (content {:.3e}, style {:.3e})",
        p.scale + 1,
        p.scales,
        p.size.0,
        p.size.1,
        e.total,
        sum("content"),
        sum("style")
    )
}

/// `--print-every`'s line for iteration `step` of `total_iters`: the total and every term.
pub(crate) fn loss_line(step: usize, total_iters: usize, e: &nst::loss::Evaluation) -> String {
    let terms: Vec<String> = e
        .terms
        .iter()
        .map(|(n, v)| format!("{n} {v:.4e}"))
        .collect();
    format!(
        "iteration {step}/{total_iters}: total {:.6e}; {}",
        e.total,
        terms.join(", ")
    )
}

/// Prints `line` above the progress bar (or plainly when the bar is hidden).
pub(crate) fn print_above(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        note!("{line}");
    } else {
        bar.println(line);
    }
}

/// Run the command; returns whether it was interrupted (Ctrl-C) after saving. With `--content`,
/// the batch form ([`crate::transfer_batch`]).
pub fn run_transfer(mut args: TransferArgs) -> Result<bool> {
    if !args.contents.is_empty() {
        // With --content, every positional argument is a style image.
        if let Some(first) = args.content.take() {
            args.styles.insert(0, first);
        }
        return crate::transfer_batch::run(args);
    }
    let content_path = args
        .content
        .clone()
        .expect("clap requires CONTENT without --content");
    if content_path.is_dir() {
        bail!(
            "{} is a directory: give a folder of photos as --content {} (then every positional \
             argument is a style image, and -o names a folder)",
            content_path.display(),
            content_path.display()
        );
    }
    let device = check_device(&args.device)?;
    let precision = parse_precision(&args.precision, device)?;
    let mut inputs: Vec<&Path> = vec![&content_path];
    inputs.extend(other_inputs(&args));
    let ow = args.overwrite;
    check_output(&args.output, &inputs, &["png", "jpg", "jpeg"], ow)?;
    if let Some(log) = &args.log_json {
        check_output(log, &inputs, &["json", "jsonl", "log", "txt"], ow).context("--log-json")?;
    }
    // Snapshots (--save-every) never write over an input or a file nst did not write either:
    // check every existing file whose name a snapshot of this run can take (a directory
    // listing, not one check per possible step: --iterations may be huge).
    if args.save_every > 0 {
        let steps = args.iterations.saturating_mul(args.scales.max(1));
        for path in existing_snapshots(&args.output, args.save_every, steps)? {
            if let Err(e) = check_output(&path, &inputs, &["png", "jpg", "jpeg"], ow) {
                bail!("--save-every: snapshot {e}");
            }
        }
    }
    let pooling = args.objective.pooling()?;
    let mut cfg = args.config(args.styles.len())?;
    cfg.conv.precision = precision;
    let content = RgbImage::load(&content_path, args.max_pixels)?;
    let styles = load_styles(&args)?;
    let (sizes, cfg) = prepare_content(&args, &content, &styles, &cfg, device)?;
    let vgg = load_network(&args, &cfg, pooling, device)?;
    let interrupted = stop_flag();
    let mut log = match &args.log_json {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let total_iters = cfg.iterations.saturating_mul(sizes.len());
    let bar = ProgressBar::new(total_iters as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} ({per_sec}, ETA {eta})",
        )
        .expect("static template"),
    );
    let mut step = 0usize;
    let mut failure: Option<anyhow::Error> = None;
    let mut log_failure: Option<String> = None;
    let image = run(vgg, &content, &styles, &cfg, |p| {
        step += 1;
        let e = p.eval;
        bar.set_message(progress_text(p));
        bar.inc(1);
        if p.converged {
            // The rest of this scale is skipped.
            bar.inc((p.iterations - p.iteration) as u64);
        }
        if args.print_every > 0 && step.is_multiple_of(args.print_every) {
            print_above(&bar, loss_line(step, total_iters, e));
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
            if p.converged {
                obj.insert("converged".into(), true.into());
            }
            // One whole line per iteration, flushed, so the log can be followed live. A log
            // that cannot be written (a full disk) stops logging, never the run.
            if let Err(err) =
                writeln!(w, "{}", serde_json::Value::Object(obj)).and_then(|()| w.flush())
            {
                log_failure = Some(log_error(args.log_json.as_deref(), step, &err));
                bar.suspend(|| {
                    note!(
                        "warning: {}; the run goes on without the log",
                        log_failure.as_ref().expect("set")
                    )
                });
                log = None;
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
    // The picture first: a log that fails to close must not cost it.
    image.save(&args.output)?;
    if let Some(mut w) = log.take() {
        if let Err(err) = w.flush() {
            log_failure = Some(log_error(args.log_json.as_deref(), step, &err));
        }
    }
    if let Some(err) = failure {
        note!("saved the current image to {}", args.output.display());
        return Err(err);
    }
    if let Some(err) = log_failure {
        bail!(
            "{err}: the log stops there; the picture was written to {}",
            args.output.display()
        );
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
