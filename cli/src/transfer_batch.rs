//! `nst-cli transfer --content PHOTO|FOLDER… STYLE… -o DIR`: many photos in one command. The
//! style images and VGG-19 are read once; each photo is optimised in turn and written to
//! `DIR/<stem>.png` as soon as it is done, atomically.
//!
//! Resuming: a picture already in DIR with nst's mark ([`nst::provenance`]) is skipped, so
//! running the same command again after Ctrl-C or a crash continues where it stopped (an
//! atomic write leaves either the whole picture or nothing). A picture interrupted by Ctrl-C is
//! *not* written — unlike a single `transfer`, which saves the picture so far — so that a
//! half-optimised picture never counts as done. Whatever settings made an existing picture,
//! it counts as done: change the folder, or add `--overwrite` (which redoes every picture),
//! after changing the settings.

use crate::batch::{existing, expand_inputs, outputs_in, Existing, Summary};
use crate::common::{check_device, is_input, parse_precision};
use crate::transfer::{
    load_network, load_styles, loss_line, other_inputs, prepare_content, print_above,
    progress_text, stop_flag, TransferArgs,
};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nst::image::RgbImage;
use nst::transfer::{run as optimise, StyleTransferConfig};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Progress-bar units per picture: the bar moves through picture k's share as its iterations
/// (weighted by their pixel count) are done.
const UNITS: u64 = 1000;

/// The flags that write one file per run, refused with `--content`.
fn refuse_single_picture_flags(args: &TransferArgs) -> Result<()> {
    if args.log_json.is_some() {
        bail!("--log-json logs one picture: it cannot be used with --content");
    }
    if args.save_every > 0 {
        bail!("--save-every snapshots one picture: it cannot be used with --content");
    }
    Ok(())
}

/// The output folder and each photo's picture in it, checked before any work: never over an
/// input, never into a folder of photos (its pictures would be read as photos next time).
fn plan(args: &TransferArgs, photos: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let dir = &args.output;
    let ext = dir.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if !dir.exists() && ["png", "jpg", "jpeg"].contains(&ext.to_ascii_lowercase().as_str()) {
        bail!(
            "-o {}: with --content, -o names a folder (it gets <photo>.png for each photo)",
            dir.display()
        );
    }
    let outputs = outputs_in(dir, photos)?;
    let folders: Vec<&Path> = args.contents.iter().map(PathBuf::as_path).collect();
    if is_input(dir, &folders) {
        bail!(
            "-o {} is also an input folder; choose another folder for the pictures",
            dir.display()
        );
    }
    let mut inputs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
    inputs.extend(other_inputs(args));
    for o in &outputs {
        if is_input(o, &inputs) {
            bail!(
                "output {} is also an input; choose another folder",
                o.display()
            );
        }
    }
    Ok(outputs)
}

/// The work of optimising one picture at `sizes`: iterations × pixels, per scale.
fn work(cfg: &StyleTransferConfig, sizes: &[(usize, usize)]) -> u64 {
    sizes
        .iter()
        .map(|&(w, h)| (cfg.iterations * w * h) as u64)
        .sum::<u64>()
        .max(1)
}

/// How one picture ended.
enum Done {
    /// Written, at this size, after this many iterations.
    Written((usize, usize), usize),
    /// Stopped by a signal after this many iterations; nothing written.
    Interrupted(usize),
}

/// Runs the batch form of `transfer`; returns whether a signal stopped it.
pub fn run(args: TransferArgs) -> Result<bool> {
    let device = check_device(&args.device)?;
    let precision = parse_precision(&args.precision, device)?;
    refuse_single_picture_flags(&args)?;
    if args.styles.is_empty() {
        bail!("give one or more STYLE images after the options (with --content, every positional argument is a style image)");
    }
    if let Some(f) = args.styles.iter().find(|s| s.is_dir()) {
        bail!(
            "STYLE {} is a folder: style images are files (folders of photos go with --content)",
            f.display()
        );
    }
    let photos = expand_inputs(&args.contents)?;
    let outputs = plan(&args, &photos)?;
    let pooling = args.objective.pooling()?;
    let mut cfg = args.config(args.styles.len())?;
    cfg.conv.precision = precision;
    let styles = load_styles(&args)?;
    // What is left to do: pictures nst already wrote are done; someone else's file of that
    // name is this photo's failure (unless --overwrite).
    let mut summary = Summary::new(photos.len());
    let mut todo = vec![];
    for (photo, out) in photos.iter().zip(&outputs) {
        match (existing(out), args.overwrite) {
            (Existing::Ours, false) => summary.skip(),
            (Existing::Foreign, false) => summary.fail(
                photo,
                &anyhow::anyhow!(
                    "output {} exists and was not written by nst; choose another folder, or \
                     add --overwrite to replace it",
                    out.display()
                ),
            ),
            _ => todo.push((photo, out)),
        }
    }
    if todo.is_empty() {
        summary.finish()?;
        return Ok(false);
    }
    let vgg = load_network(&args, &cfg, pooling, device)?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let interrupted = stop_flag();
    let n = todo.len();
    let bar = ProgressBar::new(n as u64 * UNITS);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% picture {msg} (ETA {eta})",
        )
        .expect("static template"),
    );
    for (k, (photo, out)) in todo.into_iter().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            bar.finish_and_clear();
            note!("interrupted before picture {} of {n}", k + 1);
            report_on_stop(summary);
            return Ok(true);
        }
        let name = photo.file_name().unwrap_or_default().to_string_lossy();
        bar.set_position(k as u64 * UNITS);
        bar.set_message(format!("{}/{n} {name}", k + 1));
        let t = Instant::now();
        let result = (|| -> Result<Done> {
            let content = RgbImage::load(photo, args.max_pixels)?;
            let (sizes, cfg) = prepare_content(&args, &content, &styles, &cfg, device)?;
            let (total_work, total_iters) = (work(&cfg, &sizes), cfg.iterations * sizes.len());
            let (mut done, mut step) = (0u64, 0usize);
            let image = optimise(vgg.clone(), &content, &styles, &cfg, |p| {
                step += 1;
                let px = (p.size.0 * p.size.1) as u64;
                done += px;
                if p.converged {
                    done += (p.iterations - p.iteration) as u64 * px;
                }
                bar.set_position(k as u64 * UNITS + UNITS * done.min(total_work) / total_work);
                bar.set_message(format!("{}/{n} {name}: {}", k + 1, progress_text(p)));
                if args.print_every > 0 && step.is_multiple_of(args.print_every) {
                    print_above(
                        &bar,
                        format!("{name}: {}", loss_line(step, total_iters, p.eval)),
                    );
                }
                if interrupted.load(Ordering::SeqCst) {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
            .map_err(crate::common::in_flag_words)?;
            if interrupted.load(Ordering::SeqCst) {
                return Ok(Done::Interrupted(step));
            }
            image.save(out)?;
            Ok(Done::Written(image.size(), step))
        })();
        match result {
            Ok(Done::Written((w, h), steps)) => {
                let line = format!(
                    "wrote {} ({w}×{h}, {steps} iterations, {:.1} s)",
                    out.display(),
                    t.elapsed().as_secs_f64()
                );
                bar.suspend(|| note!("{line}"));
            }
            Ok(Done::Interrupted(steps)) => {
                bar.finish_and_clear();
                note!(
                    "interrupted during picture {} of {n} ({}) after {steps} iterations; it was \
                     not written: run the same command again to resume from it",
                    k + 1,
                    photo.display()
                );
                report_on_stop(summary);
                return Ok(true);
            }
            Err(e) => summary.fail(photo, &e),
        }
    }
    bar.finish_and_clear();
    summary.finish()?;
    Ok(false)
}

/// After a signal: what was skipped and what failed so far, as notes (the exit code is 130).
fn report_on_stop(summary: Summary) {
    if let Err(e) = summary.finish() {
        note!("error: {e:#}");
    }
}
