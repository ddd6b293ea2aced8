//! `nst-cli bench --network multistyle26|arbitrary`: seconds per picture of the feed-forward
//! style networks, warm and in process, the same measurement as benches/fast_onnxruntime.py
//! makes with onnxruntime (benches/fast.sh runs both side by side).
//!
//! - `multistyle26`: the photo resized to `--size` px on its longest side, stylised with the
//!   built-in style `--builtin` (what `nst-cli stylize --style N` does, without decoding and
//!   saving): reflect pad to multiples of 4, the network, crop, clamp.
//! - `arbitrary`: the painting's centre square resized to 256² → the predictor → the 100-d style
//!   vector; then the transformer on the photo at its own size (multiples of 4), i.e. what
//!   `nst-cli stylize --style-image` does.
//!
//! One warm-up picture (it also builds the layers' prepared transforms), then `--iterations`
//! timed pictures; the JSON line has the median seconds per picture (and per network for
//! `arbitrary`) and the process's peak RSS in MiB.

use crate::common::check_device;
use anyhow::{bail, Context, Result};
use nst::engine::Device;
use nst::fast::{
    Multistyle26, Multistyle26Weights, PredictWeights, StylePredictor, StyleTransformer,
    TransformWeights, N_STYLES,
};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use std::path::Path;
use std::time::Instant;

/// The network and its style input.
enum Mode<'a> {
    /// multistyle26 with this built-in style.
    Builtin(usize),
    /// The arbitrary-style networks with this painting.
    Painting(&'a Path),
}

/// What `bench --network` measures, as given on the command line.
pub struct FastBench<'a> {
    /// `multistyle26` or `arbitrary`.
    pub network: &'a str,
    pub content: &'a Path,
    /// The painting (`arbitrary` only).
    pub style_image: Option<&'a Path>,
    /// Built-in style index 0–25 (`multistyle26` only).
    pub builtin: usize,
    /// Longest side of the photo in pixels.
    pub size: usize,
    pub iterations: usize,
    pub device: &'a str,
    /// Also print the time per op of the timed pictures to stderr (`bench --profile`).
    pub profile: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn missing_weights(e: nst::Error) -> anyhow::Error {
    anyhow::anyhow!("{e} (run `nst-cli weights fetch` to get the feed-forward networks)")
}

/// Times `f` once warm-up and `n` times; returns the timings in seconds and the last result.
/// With `profile`, the ops of the timed calls are profiled (`engine::profile`, collected by
/// the caller's `finish`).
fn timed<T>(n: usize, profile: bool, mut f: impl FnMut() -> Result<T>) -> Result<(Vec<f64>, T)> {
    let mut last = f()?;
    if profile {
        nst::engine::profile::start();
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        last = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((times, last))
}

/// Runs the bench and prints its JSON line.
pub fn run(b: FastBench<'_>) -> Result<()> {
    let device: Device = check_device(b.device)?;
    crate::bench::check_profile_device(b.profile, device)?;
    // Every option first: a bad one is refused before the images and weights are read.
    let mode = match (b.network, b.style_image) {
        ("multistyle26", Some(_)) => {
            bail!("--style-image: multistyle26 takes a built-in style (--builtin N)")
        }
        ("multistyle26", None) if b.builtin >= N_STYLES => bail!(
            "--builtin {}: built-in styles are numbered 0–{}",
            b.builtin,
            N_STYLES - 1
        ),
        ("multistyle26", None) => Mode::Builtin(b.builtin),
        ("arbitrary", Some(painting)) => Mode::Painting(painting),
        ("arbitrary", None) => bail!("--network arbitrary needs --style-image PAINTING"),
        (other, _) => bail!("--network {other}: multistyle26 or arbitrary"),
    };
    if b.size < nst::fast::net::MIN_SIDE {
        bail!(
            "--size {}: the networks need at least {} px",
            b.size,
            nst::fast::net::MIN_SIDE
        );
    }
    let photo = RgbImage::load(b.content, DEFAULT_MAX_PIXELS)?.resize_longest(b.size);
    let mut json = serde_json::json!({
        "framework": "nst", "version": env!("CARGO_PKG_VERSION"), "device": device.to_string(),
        "threads": rayon::current_num_threads(), "network": b.network,
        "size": [photo.height, photo.width], "iterations": b.iterations,
    });
    // The last picture, and the timed pictures' seconds.
    let (out, times) = match mode {
        Mode::Builtin(builtin) => {
            let w = Multistyle26Weights::load_cached().map_err(missing_weights)?;
            let net = Multistyle26::new(&w, device)?;
            let mut s = vec![0.0f32; N_STYLES];
            s[builtin] = 1.0;
            let (times, out) = timed(b.iterations, b.profile, || Ok(net.stylize(&photo, &s)?))?;
            json["builtin"] = builtin.into();
            json["sec_median"] = median(times.clone()).into();
            (out, times)
        }
        Mode::Painting(painting) => {
            let painting = RgbImage::load(painting, DEFAULT_MAX_PIXELS)
                .with_context(|| format!("--style-image {}", painting.display()))?;
            let predict = StylePredictor::new(
                &PredictWeights::load_cached().map_err(missing_weights)?,
                device,
            )?;
            let transform = StyleTransformer::new(
                &TransformWeights::load_cached().map_err(missing_weights)?,
                device,
            )?;
            // The warm-up picture, then the timed ones.
            let mut out = transform.stylize(&photo, &predict.style_vector(&painting)?)?;
            if b.profile {
                nst::engine::profile::start();
            }
            let (mut tp, mut tt, mut total) = (vec![], vec![], vec![]);
            for _ in 0..b.iterations {
                let t0 = Instant::now();
                let v = predict.style_vector(&painting)?;
                let t1 = Instant::now();
                out = transform.stylize(&photo, &v)?;
                let t2 = Instant::now();
                tp.push((t1 - t0).as_secs_f64());
                tt.push((t2 - t1).as_secs_f64());
                total.push((t2 - t0).as_secs_f64());
            }
            json["sec_median"] = median(total.clone()).into();
            json["predict_sec_median"] = median(tp).into();
            json["transform_sec_median"] = median(tt).into();
            (out, total)
        }
    };
    let profile = b.profile.then(nst::engine::profile::finish);
    json["output"] = serde_json::json!([out.height, out.width]);
    json["peak_rss_mb"] = crate::bench::peak_rss_mib().into();
    // Not println!: a closed pipe is an error (main exits quietly), not a panic.
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{json}")?;
    if let Some(rows) = profile {
        eprint!("{}", crate::bench::profile_table(&rows, &times));
    }
    Ok(())
}
