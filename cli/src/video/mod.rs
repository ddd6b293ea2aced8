//! `nst-cli video IN -o OUT (--style N | --style-image PAINTING) [--mode fast|optimise]`:
//! stylise a video frame by frame. `fast`: the feed-forward networks of `stylize` per frame,
//! with temporal smoothing of still pixels ([`nst::video::smooth`]); `optimise`: Gatys per
//! frame (`nst::transfer`), each frame started from the previous result, with the temporal
//! loss of Ruder et al. 2016 ([`nst::loss::TemporalLoss`]). Frames come and go through ffmpeg
//! ([`ffmpeg`]) or, for animated GIF/WebP, the `image` crate ([`anim`]).

mod anim;
mod ffmpeg;
mod frames;

use crate::common::{
    check_device, check_output, in_flag_words, load_vgg, parse_fraction, parse_number,
    parse_precision,
};
use crate::stylize::{parse_strength, style_image_paths, weighted, Style};
use anyhow::{bail, Context, Result};
use clap::Args;
use frames::{extension, Input, Sink};
use indicatif::{ProgressBar, ProgressStyle};
use nst::image::{fit_longest, RgbImage, DEFAULT_MAX_PIXELS};
use nst::loss::{Loss, TemporalLoss};
use nst::transfer::{Init, StyleTransferConfig};
use nst::video::{smooth, still_mask, DEFAULT_SMOOTH, DEFAULT_STILL_TAU};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Output extensions: ffmpeg's containers and GIF.
const OUTPUTS: [&str; 6] = ["mp4", "m4v", "mov", "mkv", "webm", "gif"];
/// `--size` when not given: fast mode keeps the video's size up to this; optimise uses it.
const FAST_MAX_SIDE: usize = 640;
const OPTIMISE_SIDE: usize = 256;
/// The temporal loss's default weight (see `--temporal-weight`).
const DEFAULT_TEMPORAL_WEIGHT: &str = "0.02";

/// Options of `nst-cli video`.
#[derive(Debug, Args)]
pub struct VideoArgs {
    /// The video: any file ffmpeg reads (mp4, mov, mkv, webm, …), or an animated GIF or WebP
    /// (read without ffmpeg).
    pub input: PathBuf,
    /// Output: .mp4/.m4v/.mov/.mkv (H.264 through ffmpeg, frame rate kept, audio copied
    /// unchanged), .webm (VP9, audio re-encoded as Opus) or .gif (no ffmpeg needed); written
    /// atomically, never over the input.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Built-in styles 0–25, optionally weighted: `19` or `3:0.5,12:0.5` (fast mode).
    #[arg(long, value_delimiter = ',', conflicts_with = "style_image")]
    pub style: Vec<String>,
    /// Paintings to take the style from, optionally weighted: `a.jpg` or `a.jpg:0.7,b.jpg:0.3`.
    #[arg(long, value_delimiter = ',')]
    pub style_image: Vec<String>,
    /// fast (the feed-forward networks per frame) or optimise (Gatys per frame, with a
    /// temporal loss; --style-image only).
    #[arg(long, default_value = "fast")]
    pub mode: String,
    /// Longest side of the output in pixels [default: fast: the video's own, at most 640;
    /// optimise: 256].
    #[arg(long)]
    pub size: Option<String>,
    /// Fast mode, 0–1: how much style (as `stylize --strength`).
    #[arg(long, default_value = "1")]
    pub strength: String,
    /// Fast mode, 0–1: temporal smoothing. Each frame's pixel whose input barely changed is
    /// blended with the previous output by this much (0: off).
    #[arg(long, default_value_t = DEFAULT_SMOOTH.to_string())]
    pub smooth: String,
    /// Optimise mode: L-BFGS iterations of the first frame (the stopping rule may end it
    /// earlier, as in `transfer`).
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Optimise mode: iterations of each later frame, started from the previous frame's
    /// result.
    #[arg(long, default_value_t = 10)]
    pub frame_iterations: usize,
    /// Optimise mode: weight of the temporal loss mean(c·(x − previous)²) in 0–255 units,
    /// c = 1 where the input pixel kept its value (0: off).
    #[arg(long, default_value = DEFAULT_TEMPORAL_WEIGHT)]
    pub temporal_weight: String,
    /// Optimise mode: every frame on its own (from its own content, --iterations each, no
    /// temporal loss): the per-frame baseline the temporal loss is measured against.
    #[arg(long)]
    pub independent: bool,
    /// Stop after this many frames (the video is cut there).
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// optimise mode: number format of the convolutions, as `transfer --precision`: auto (bf16
    /// on a GPU, with AMX, and on an AMD with AVX-512-BF16, else f32), f32 or bf16.
    #[arg(long, default_value = "auto")]
    pub precision: String,
    /// Replace an existing output even if nst did not write it (never the input).
    #[arg(long)]
    pub overwrite: bool,
    /// Refuse inputs with more pixels per frame than this.
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// How frames are stylised.
enum Mode {
    Fast {
        style: Style,
        strength: f32,
        smooth: f32,
    },
    Optimise(Box<Optimise>),
}

/// Gatys per frame: the network, the paintings and the settings.
struct Optimise {
    vgg: Arc<nst::vgg19::Vgg19>,
    paintings: Vec<RgbImage>,
    cfg: StyleTransferConfig,
    frame_iterations: usize,
    temporal_weight: f64,
    independent: bool,
}

/// The previous frame: its input and its output.
type Previous = Option<(RgbImage, RgbImage)>;

impl Mode {
    /// The stylised `frame`, or `None` when `stop` was raised during it.
    fn frame(
        &self,
        frame: &RgbImage,
        prev: &Previous,
        stop: &AtomicBool,
    ) -> Result<Option<RgbImage>> {
        match self {
            Mode::Fast {
                style,
                strength,
                smooth: s,
            } => {
                let out = style.apply(frame, *strength)?;
                Ok(Some(match prev {
                    Some((pi, po)) if *s > 0.0 => {
                        smooth(po, &out, pi, frame, *s, DEFAULT_STILL_TAU)?
                    }
                    _ => out,
                }))
            }
            Mode::Optimise(o) => o.frame(frame, prev, stop),
        }
    }
}

impl Optimise {
    fn frame(
        &self,
        frame: &RgbImage,
        prev: &Previous,
        stop: &AtomicBool,
    ) -> Result<Option<RgbImage>> {
        let mut cfg = self.cfg.clone();
        let (w, h) = frame.size();
        let prev = if self.independent { &None } else { prev };
        if let Some((_, po)) = prev {
            cfg.init = Init::Image(po.clone());
            cfg.iterations = self.frame_iterations;
            cfg.tolerance = 0.0;
        }
        let temporal = |(sw, sh): (usize, usize)| -> nst::Result<Vec<Box<dyn Loss>>> {
            let Some((pi, po)) = prev.as_ref().filter(|_| self.temporal_weight > 0.0) else {
                return Ok(vec![]);
            };
            debug_assert_eq!((sw, sh), (w, h));
            let p = self
                .vgg
                .preprocess(&po.data, w, h)?
                .to_device(self.vgg.device())?;
            let mask = still_mask(pi, frame, DEFAULT_STILL_TAU)?;
            Ok(vec![Box::new(TemporalLoss::new(
                p,
                &mask,
                self.temporal_weight,
            )?)])
        };
        let out = nst::transfer::run_with_losses(
            self.vgg.clone(),
            frame,
            &self.paintings,
            &cfg,
            temporal,
            |_| {
                if stop.load(Ordering::SeqCst) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .map_err(in_flag_words)?;
        Ok((!stop.load(Ordering::SeqCst)).then_some(out))
    }
}

/// The optimise mode's flags checked (before any file is read); returns the temporal weight.
fn check_optimise_flags(args: &VideoArgs) -> Result<f64> {
    if args.style_image.is_empty() {
        bail!("--mode optimise needs --style-image PAINTING (the built-in --style networks are fast mode's)");
    }
    let temporal_weight: f64 = parse_number("--temporal-weight", &args.temporal_weight)?;
    if !temporal_weight.is_finite() || temporal_weight < 0.0 {
        bail!(
            "--temporal-weight {}: must be a number ≥ 0",
            args.temporal_weight
        );
    }
    if args.iterations == 0 || args.frame_iterations == 0 {
        bail!("--iterations and --frame-iterations must be at least 1");
    }
    Ok(temporal_weight)
}

/// The optimise mode's settings and network (the paintings read with `max_pixels`).
fn optimise_mode(
    args: &VideoArgs,
    side: usize,
    device: nst::engine::Device,
    precision: nst::engine::Precision,
) -> Result<Optimise> {
    let temporal_weight = check_optimise_flags(args)?;
    let mut paintings = vec![];
    let mut blend = vec![];
    for item in &args.style_image {
        let (p, w) = weighted("--style-image", item)?;
        paintings.push(RgbImage::load(Path::new(&p), args.max_pixels)?);
        blend.push(w as f64);
    }
    let mut cfg = StyleTransferConfig {
        size_px: side,
        scales: 1,
        iterations: args.iterations,
        style_blend_weights: blend,
        ..StyleTransferConfig::default()
    };
    cfg.conv.precision = precision;
    cfg.validate(paintings.len()).map_err(in_flag_words)?;
    let vgg = load_vgg(None, nst::vgg19::Pooling::default())?.truncated(&cfg.layers())?;
    Ok(Optimise {
        vgg: Arc::new(vgg.to_device(device)?),
        paintings,
        cfg,
        frame_iterations: args.frame_iterations,
        temporal_weight,
        independent: args.independent,
    })
}

/// The output size: the longest side `side`, even sides for ffmpeg's yuv420p.
fn output_size(input: (usize, usize), side: usize, even: bool) -> (usize, usize) {
    let (w, h) = fit_longest(input.0, input.1, side);
    if even {
        ((w & !1).max(2), (h & !1).max(2))
    } else {
        (w, h)
    }
}

/// Runs the command; returns whether it was interrupted (Ctrl-C) after writing the frames
/// done so far.
pub fn run(args: VideoArgs) -> Result<bool> {
    let device = check_device(&args.device)?;
    let precision = parse_precision(&args.precision, device)?;
    let optimise = match args.mode.to_ascii_lowercase().as_str() {
        "fast" => false,
        "optimise" | "optimize" => true,
        _ => bail!("--mode {:?}: expected fast or optimise", args.mode),
    };
    if optimise {
        check_optimise_flags(&args)?;
    }
    let strength = parse_strength(&args.strength)?;
    let smooth_s = parse_fraction("--smooth", &args.smooth)?;
    let size: Option<usize> = args
        .size
        .as_deref()
        .map(|s| parse_number("--size", s))
        .transpose()?;
    let ext = extension(&args.output);
    if ext == "webp" {
        bail!("output {}: animated WebP is read but not written (the image crate does not encode it); use .gif or .mp4", args.output.display());
    }
    let mut inputs: Vec<PathBuf> = vec![args.input.clone()];
    inputs.extend(style_image_paths(&args.style_image));
    let read: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let ours =
        OUTPUTS.contains(&ext.as_str()) && ext != "gif" && ffmpeg::written_by_nst(&args.output);
    check_output(&args.output, &read, &OUTPUTS, args.overwrite || ours)?;

    let input = Input::open(&args.input, args.max_pixels)?;
    let (iw, ih) = input.size();
    let side = size.unwrap_or(if optimise {
        OPTIMISE_SIDE
    } else {
        iw.max(ih).min(FAST_MAX_SIDE)
    });
    let (w, h) = output_size((iw, ih), side, ext != "gif");
    let min = nst::fast::net::MIN_SIDE;
    if !optimise && w.min(h) < min {
        bail!("frames of {w}×{h}: the networks need both sides ≥ {min} px (raise --size)");
    }
    if input.has_audio() && ext == "gif" {
        note!("note: the audio is dropped (a GIF has none)");
    }
    let total = input
        .frames()
        .map(|n| args.max_frames.map_or(n, |m| n.min(m)));
    let rate = input.rate();
    let audio = (input.has_audio() && ext != "gif").then_some(args.input.as_path());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let flag = stop.clone();
        // Ctrl-C, SIGTERM or SIGHUP: finish the frames done so far into a playable file. Set
        // before ffmpeg starts, so that a signal while the networks load leaves no partial file.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let mut sink = Sink::create(&args.output, (w, h), &rate, audio)?;
    let mode = if optimise {
        Mode::Optimise(Box::new(optimise_mode(&args, w.max(h), device, precision)?))
    } else {
        let style = Style::load(&args.style, &args.style_image, args.max_pixels, device)?;
        Mode::Fast {
            style,
            strength,
            smooth: smooth_s,
        }
    };
    let mut source = input.frames_at(&args.input, (w, h))?;

    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} frames ({per_sec}, ETA {eta})",
        )
        .expect("static template"),
    );
    let start = Instant::now();
    let mut prev: Previous = None;
    let mut meter = nst::eval::FlickerMeter::new();
    let mut done = 0u64;
    let mut first_secs = 0.0;
    while args.max_frames.is_none_or(|m| done < m) && !stop.load(Ordering::SeqCst) {
        let Some((frame, delay)) = source.next_frame()? else {
            break;
        };
        let Some(out) = mode.frame(&frame, &prev, &stop)? else {
            break;
        };
        sink.write(&out, delay)?;
        meter.push(frame.clone(), out.clone())?;
        prev = Some((frame, out));
        done += 1;
        if done == 1 {
            first_secs = start.elapsed().as_secs_f64();
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(source);
    if done == 0 {
        bail!("no frame was stylised; nothing written");
    }
    sink.finish(&args.output)?;
    let secs = start.elapsed().as_secs_f64();
    let interrupted = stop.load(Ordering::SeqCst);
    // The flicker of the frames as computed, before the encoder's own losses.
    let flicker = meter
        .value()
        .map_or(String::new(), |f| format!(", flicker {:.2}/255", 255.0 * f));
    // Optimise mode's first frame runs many more iterations: the later frames' time apart.
    let later = if done > 1 {
        let rest = (secs - first_secs) / (done - 1) as f64;
        format!("; first frame {first_secs:.2} s, then {rest:.3} s/frame")
    } else {
        String::new()
    };
    note!(
        "{} {} ({w}×{h}, {done} frames{}, {:.2} frames/s{later}{flicker})",
        if interrupted {
            "interrupted; wrote the frames done so far to"
        } else {
            "wrote"
        },
        args.output.display(),
        match (audio.is_some(), frames::extension(&args.output).as_str()) {
            (true, "webm") => ", audio as Opus",
            (true, _) => ", audio copied",
            _ => "",
        },
        done as f64 / secs.max(1e-9)
    );
    Ok(interrupted)
}

/// The flicker of a stylised video against its input ([`nst::eval::FlickerMeter`]): the
/// input's frames are scaled to the output's size. Returns (flicker in 0–1 units, frames
/// compared, fraction of still pixels). Compared up to the output's end (a run with
/// `--max-frames` stops early); an input that ends first is compared up to its end, with a
/// note on stderr. Errors: unreadable files.
pub fn flicker(
    output: &Path,
    input: &Path,
    max_pixels: u64,
) -> Result<(Option<f64>, u64, Option<f64>)> {
    let out = Input::open(output, max_pixels).with_context(|| format!("{}", output.display()))?;
    let size = out.size();
    let inp = Input::open(input, max_pixels).context("--content")?;
    let mut a = out.frames_at(output, size)?;
    let mut b = inp.frames_at(input, size)?;
    let mut m = nst::eval::FlickerMeter::new();
    let mut n = 0u64;
    while let Some((o, _)) = a.next_frame()? {
        let Some((i, _)) = b.next_frame()? else {
            // A stylised video may stop early (--max-frames), its input may not: say so.
            eprintln!(
                "note: {} ends after {n} frames, before {}; only those were compared",
                input.display(),
                output.display()
            );
            break;
        };
        m.push(i, o)?;
        n += 1;
    }
    Ok((m.value(), n, m.still_fraction()))
}
