//! `nst-cli bench`: seconds per style-transfer iteration on the reference objective, the same
//! measurement as the PyTorch anchor that benches/compare.sh runs (Adam, lr 1; content relu4_2
//! weight 1, Gram style relu1_1…relu5_1 weight 1e-2 each, TV weight 10; one warm-up step, then
//! the median of the timed steps), so the two can be run side by side. With `--network` it times
//! the feed-forward style networks instead (`bench_fast.rs`, benches/fast.sh).

use crate::common::{check_device, in_flag_words, load_vgg, parse_flag, parse_precision};
use anyhow::Result;
use clap::Args;
use nst::engine::{ConvAlgorithm, ConvConfig, Device, Tensor};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::optim::Adam;
use nst::transfer::{objective_from_tensors, reference_config};
use nst::vgg19::Pooling;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Options of `nst-cli bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Content image.
    #[arg(long)]
    pub content: PathBuf,
    /// Style image (the VGG bench).
    #[arg(long, required_unless_present = "network")]
    pub style: Option<PathBuf>,
    /// Time a feed-forward style network instead of the VGG objective: multistyle26 (a
    /// built-in style) or arbitrary (predictor on --style-image + transformer at the photo's
    /// size); seconds per picture, as benches/fast_onnxruntime.py measures onnxruntime.
    #[arg(long, conflicts_with = "style")]
    pub network: Option<String>,
    /// The painting for --network arbitrary.
    #[arg(long, requires = "network")]
    pub style_image: Option<PathBuf>,
    /// The built-in style (0–25) for --network multistyle26.
    #[arg(long, default_value_t = 19, requires = "network")]
    pub builtin: usize,
    /// Longest side of both images, in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Timed iterations (after one warm-up iteration).
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Worker threads, at most 4 × the cores [default: all cores].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// 3×3 convolution algorithm: auto (Winograd F(4,3)), im2col, winograd-f2, winograd-f4.
    #[arg(long, default_value = "auto")]
    pub conv: String,
    /// Number format of the convolutions: f32 (here the default, as PyTorch's f32 anchor), bf16
    /// (CPU: the input gradients' operands in bf16, f32 sums, faster with AMX or on an AMD with
    /// AVX-512-BF16, the forward and the losses stay f32; GPU: the convolutions' GEMMs on TF32
    /// tensor cores, as PyTorch's default), or auto (transfer's default: bf16 on a GPU, with AMX, and on an AMD with AVX-512-BF16).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print each timed iteration's loss to stderr (to compare loss curves, e.g. f32 vs bf16).
    #[arg(long)]
    pub print_losses: bool,
    /// The reference objective's style loss: gram, mean-std, w2, sliced-w or mrf (as `transfer
    /// --style-loss`; mrf on its own layers, relu3_1 and relu4_1), to time a loss against Gram.
    #[arg(long, default_value = "gram")]
    pub style_loss: String,
    /// VGG-19 weights [default: the cache].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Also print to stderr where the timed iterations (or pictures, with --network) went:
    /// wall time per op (forward and backward apart, by the op's input shape), a profile
    /// without perf. CPU only.
    #[arg(long)]
    pub profile: bool,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Peak resident set size of this process in MiB (Linux: VmHWM), if known.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(args: BenchArgs) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.threads > 4 * cores {
        anyhow::bail!(
            "--threads {}: at most {} (4 × the {cores} cores here); more only adds overhead",
            args.threads,
            4 * cores
        );
    }
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build_global()
            .ok();
    }
    if let Some(network) = &args.network {
        return crate::bench_fast::run(crate::bench_fast::FastBench {
            network,
            content: &args.content,
            style_image: args.style_image.as_deref(),
            builtin: args.builtin,
            size: args.size,
            iterations: args.iterations,
            device: &args.device,
            profile: args.profile,
        });
    }
    let Some(style) = &args.style else {
        anyhow::bail!("--style is required (or --network for the feed-forward networks)");
    };
    let algo: ConvAlgorithm = parse_flag("--conv", &args.conv)?;
    let device = check_device(&args.device)?;
    check_profile_device(args.profile, device)?;
    let precision = parse_precision(&args.precision, device)?;
    let mut cfg = reference_config();
    cfg.style_loss = parse_flag("--style-loss", &args.style_loss)?;
    if cfg.style_loss == nst::loss::StyleLossKind::Mrf {
        // As `transfer` and the server: the shallow layers' patch searches would take hours.
        (cfg.style_layers, cfg.style_layer_weights) = nst::loss::mrf::default_layers();
    }
    cfg.conv = ConvConfig {
        algorithm: algo,
        precision,
    };
    // The size and images first: a bad one is refused before the weights are read.
    cfg.size_px = args.size;
    cfg.validate(1).map_err(in_flag_words)?;
    let content = RgbImage::load(&args.content, DEFAULT_MAX_PIXELS)?.resize_longest(args.size);
    let style = RgbImage::load(style, DEFAULT_MAX_PIXELS)?.resize_longest(args.size);
    let sizes = [content.size()];
    nst::plan::check(&[style.size()], &cfg, &sizes).map_err(in_flag_words)?;
    let vgg = load_vgg(args.weights.as_deref(), Pooling::Max)?.truncated(&cfg.layers())?;
    let vgg = Arc::new(vgg.to_device(device)?);
    let (w, h) = (content.width, content.height);
    let xc = vgg.preprocess(&content.data, w, h)?;
    let xs = vgg.preprocess(&style.data, style.width, style.height)?;
    let objective = objective_from_tensors(vgg, &xc, &[xs], &[1.0], &cfg)?;
    // The image and Adam's state stay on the device: an iteration copies only loss scalars.
    let mut x = xc.to_device(device)?;
    let mut adam = Adam::new(1.0);
    let mut iteration = 0;
    let mut step = |x: &mut Tensor| -> Result<f64> {
        iteration += 1;
        objective.start_iteration(iteration);
        let e = objective.evaluate(x)?;
        adam.step(x, &e.grad)?;
        Ok(e.total)
    };
    step(&mut x)?; // warm-up (and Winograd weight transforms)
    let resident_mb = nst::engine::live_bytes() as f64 / MIB;
    nst::engine::reset_peak_live_bytes();
    let mut times = Vec::with_capacity(args.iterations);
    let mut loss = 0.0;
    if args.profile {
        nst::engine::profile::start();
    }
    for _ in 0..args.iterations {
        let t = Instant::now();
        loss = step(&mut x)?;
        times.push(t.elapsed().as_secs_f64());
        if args.print_losses {
            note!("{} {loss}", times.len());
        }
    }
    let profile = args.profile.then(nst::engine::profile::finish);
    times.sort_by(f64::total_cmp);
    let median = if times.is_empty() {
        f64::NAN
    } else {
        times[times.len() / 2]
    };
    println!(
        "{}",
        serde_json::json!({
            "framework": "nst", "version": env!("CARGO_PKG_VERSION"), "device": device.to_string(),
            "threads": rayon::current_num_threads(), "size": [h, w], "conv": algo.to_string(),
            "precision": precision.to_string(),
            "iterations": args.iterations, "sec_per_iter_median": median, "final_loss": loss,
            "peak_rss_mb": peak_rss_mib(),
            // Tensor storage only: held between iterations (weights, targets, image, Adam),
            // and the most held at once during an iteration.
            "tensor_resident_mb": resident_mb,
            "tensor_peak_mb": nst::engine::peak_live_bytes() as f64 / MIB,
        })
    );
    if let Some(rows) = profile {
        eprint!("{}", profile_table(&rows, &times));
    }
    Ok(())
}

/// `--profile` times ops on the CPU only: an error for any other device.
pub(crate) fn check_profile_device(profile: bool, device: Device) -> Result<()> {
    if profile && device != Device::Cpu {
        anyhow::bail!(
            "--profile times ops on the CPU only (a GPU runs them asynchronously); \
             drop --profile or use --device cpu"
        );
    }
    Ok(())
}

/// The `--profile` table: per row of `rows` (from `engine::profile`), milliseconds and calls per
/// iteration and the share of the timed iterations' wall time (`times`, seconds each); rows
/// under 0.5% are summed into one line, and the time outside any op (autograd bookkeeping,
/// reading loss values) is its own line.
pub(crate) fn profile_table(rows: &[nst::engine::profile::OpTime], times: &[f64]) -> String {
    use std::fmt::Write;
    if times.is_empty() {
        return "profile: no timed iterations (--iterations 0)\n".into();
    }
    let n = times.len() as f64;
    let total: f64 = times.iter().sum();
    let in_ops: f64 = rows.iter().map(|r| r.seconds).sum();
    let share = |s: f64| if total > 0.0 { 100.0 * s / total } else { 0.0 };
    let mut out = format!(
        "profile over {} iterations ({:.1} ms each on average; wall time per op):\n\
         {:>9}  {:>6}  {:>8}  {:<8}  {:<20}  input (NCHW; a convolution's OIHW weight after *)\n",
        times.len(),
        1e3 * total / n,
        "ms/it",
        "share",
        "calls/it",
        "phase",
        "op"
    );
    let (mut small, mut small_rows) = (0.0, 0);
    for r in rows {
        if share(r.seconds) < 0.5 {
            small += r.seconds;
            small_rows += 1;
            continue;
        }
        let _ = writeln!(
            out,
            "{:>9.2}  {:>5.1}%  {:>8.1}  {:<8}  {:<20}  {}",
            1e3 * r.seconds / n,
            share(r.seconds),
            r.calls as f64 / n,
            r.phase,
            r.op,
            r.input
        );
    }
    let mut line = |ms: f64, what: String| {
        let _ = writeln!(out, "{:>9.2}  {:>5.1}%  {what}", 1e3 * ms / n, share(ms));
    };
    if small_rows > 0 {
        line(small, format!("{small_rows} more rows under 0.5% each"));
    }
    line(
        total - in_ops,
        "outside ops (autograd bookkeeping, loss values, …)".into(),
    );
    out
}
