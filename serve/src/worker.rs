//! The worker: one std::thread that takes queued jobs one at a time (on the CPU or the GPU the
//! job asks for: the network is copied to a GPU once, on its first job there) and runs `nst::transfer::run` on them (which uses rayon; never tokio's threads), writing
//! previews, snapshots and the result into the job directory.

use super::assets::gallery;
use super::decode::{decode, png, DecodeError};
use super::params::Limits;
use super::record::{InputImage, ProgressInfo, Status};
use super::store::{Store, Taken};
use nst::engine::{ConvConfig, Device};
use nst::fast::ArbitraryStyle;
use nst::image::{write_atomic, RgbImage};
use nst::transfer::scale_sizes;
use nst::vgg19::Vgg19;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Start the worker thread. `vgg` is the network on the CPU; every job's convolutions run as
/// `conv` says (the server's `--precision`).
pub fn spawn(
    store: Arc<Store>,
    vgg: Arc<Vgg19>,
    fast: Option<Arc<ArbitraryStyle>>,
    limits: Limits,
    conv: ConvConfig,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("nst-worker".into())
        .spawn(move || {
            let mut networks: HashMap<Device, Arc<Vgg19>> = HashMap::new();
            networks.insert(Device::Cpu, vgg);
            loop {
                let job = store.take();
                let id = job.rec.id.clone();
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let vgg = network(&mut networks, &job)?;
                    run_job(&store, &vgg, fast.as_deref(), &job, &limits, conv)
                }));
                let (status, error, result) = match outcome {
                    Ok(Ok(Finished { size, cancelled })) => {
                        let s = if cancelled {
                            Status::Cancelled
                        } else {
                            Status::Done
                        };
                        (s, None, size)
                    }
                    Ok(Err(e)) => (Status::Failed, Some(e), None),
                    Err(_) => (
                        Status::Failed,
                        Some("internal error while running the job".into()),
                        None,
                    ),
                };
                store.finish(&id, status, error, result);
            }
        })?;
    Ok(())
}

/// The network on the job's device, copied there on first use.
fn network(networks: &mut HashMap<Device, Arc<Vgg19>>, job: &Taken) -> Result<Arc<Vgg19>, String> {
    let device = job.rec.params.engine_device()?;
    if let Some(v) = networks.get(&device) {
        return Ok(v.clone());
    }
    let cpu = networks[&Device::Cpu].clone();
    let v = Arc::new(
        cpu.to_device(device)
            .map_err(|e| format!("moving the network to {device}: {e}"))?,
    );
    networks.insert(device, v.clone());
    Ok(v)
}

struct Finished {
    /// Size of result.png (None when the job was deleted while it ran).
    size: Option<(usize, usize)>,
    cancelled: bool,
}

fn load_input(
    store: &Store,
    id: &str,
    img: &InputImage,
    limits: &Limits,
    longest: usize,
) -> Result<RgbImage, String> {
    let bytes: Cow<[u8]> = match (img.source.as_str(), &img.file) {
        ("gallery", _) => Cow::Borrowed(
            gallery(&img.name)
                .ok_or_else(|| format!("no gallery image {:?}", img.name))?
                .bytes,
        ),
        ("upload", Some(file)) => {
            let path = store.job_dir(id).join(file);
            Cow::Owned(
                std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?,
            )
        }
        _ => return Err(format!("input {:?} has no data", img.name)),
    };
    // The gallery is trusted whatever --max-pixels says (as when the job was created).
    let max_pixels = match img.source.as_str() {
        "gallery" => u64::MAX,
        _ => limits.max_pixels,
    };
    decode(&bytes, max_pixels, Some(longest)).map_err(|e| match e {
        DecodeError::NotImage(m) | DecodeError::TooLarge(m) | DecodeError::Corrupt(m) => {
            format!("{}: {m}", img.name)
        }
    })
}

fn run_job(
    store: &Store,
    vgg: &Arc<Vgg19>,
    fast: Option<&ArbitraryStyle>,
    job: &Taken,
    limits: &Limits,
    conv: ConvConfig,
) -> Result<Finished, String> {
    let rec = &job.rec;
    let id = rec.id.as_str();
    let p = &rec.params;
    let mut cfg = p.config(rec.styles.len(), limits)?;
    cfg.conv = conv;
    // `--precision` is the CPU jobs' setting; GPU jobs keep exact f32 GEMMs.
    if vgg.device() != Device::Cpu {
        cfg.conv.precision = nst::engine::Precision::F32;
    }
    // Inputs larger than needed are shrunk once here: the transfer resizes them to the size of
    // each scale anyway, and this keeps a 25-megapixel upload from costing gigabytes.
    let content = load_input(store, id, &rec.content, limits, cfg.size_px)?;
    let style_side = nst::plan::style_side(&cfg, cfg.size_px);
    let styles = rec
        .styles
        .iter()
        .map(|s| load_input(store, id, s, limits, style_side))
        .collect::<Result<Vec<_>, _>>()?;
    if p.init == "fast" {
        // Refining the instant picture: the optimisation starts from it.
        let nets = fast.ok_or_else(|| crate::upload::NO_FAST.to_string())?;
        let photo = content.resize_longest(cfg.size_px);
        let picture = nets
            .picture(&photo, &styles, &cfg.style_blend_weights)
            .map_err(|e| format!("the instant picture: {e}"))?;
        cfg.init = nst::transfer::Init::Image(picture);
    }
    let sizes = scale_sizes(content.size(), cfg.size_px, cfg.scales);
    let pixels: Vec<f64> = sizes.iter().map(|&(w, h)| (w * h) as f64).collect();
    let iterations = cfg.iterations as f64;
    let total_work = pixels.iter().sum::<f64>() * iterations;
    let dir = store.job_dir(id);
    let mut failure: Option<String> = None;
    let image = nst::transfer::run(vgg.clone(), &content, &styles, &cfg, |pr| {
        let step = pr.scale * pr.iterations + pr.iteration;
        let done_work = pixels[..pr.scale.min(pixels.len())].iter().sum::<f64>() * iterations
            + pr.iteration as f64 * pixels.get(pr.scale).copied().unwrap_or(0.0);
        let eta = (done_work > 0.0)
            .then(|| pr.elapsed_seconds * (total_work - done_work).max(0.0) / done_work);
        store.progress(
            id,
            ProgressInfo {
                step,
                total_steps: pr.iterations * pr.scales,
                scale: pr.scale,
                scales: pr.scales,
                width: pr.size.0,
                height: pr.size.1,
                loss: pr.eval.total,
                terms: pr.eval.terms.iter().cloned().collect(),
                evaluations: pr.evaluations,
                elapsed_seconds: pr.elapsed_seconds,
                eta_seconds: eta,
            },
        );
        if job.cancel.load(Ordering::SeqCst) {
            return ControlFlow::Break(());
        }
        if step % p.preview_every == 0 || pr.iteration == pr.iterations || pr.converged {
            let snapshot = p.snapshot_every > 0 && step % p.snapshot_every == 0;
            let written = pr.image().map_err(|e| e.to_string()).and_then(|img| {
                let bytes = png(&img);
                write_atomic(&dir.join("preview.png"), &bytes).map_err(|e| e.to_string())?;
                if snapshot {
                    let snaps = dir.join("snapshots");
                    std::fs::create_dir_all(&snaps).map_err(|e| e.to_string())?;
                    write_atomic(&snaps.join(snapshot_name(step)), &bytes)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            });
            match written {
                Ok(()) => store.preview(id, step, snapshot),
                Err(e) => {
                    failure = Some(format!("writing the preview: {e}"));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })
    .map_err(super::params::in_field_words)?;
    if let Some(e) = failure {
        return Err(e);
    }
    let cancelled = job.cancel.load(Ordering::SeqCst);
    if !store.contains(id) {
        return Ok(Finished {
            size: None,
            cancelled,
        });
    }
    write_atomic(&dir.join("result.png"), &png(&image))
        .map_err(|e| format!("writing the result: {e}"))?;
    Ok(Finished {
        size: Some((image.width, image.height)),
        cancelled,
    })
}

/// File name of the snapshot taken at `step`, in the job's `snapshots/` directory.
pub fn snapshot_name(step: usize) -> String {
    format!("{step:05}.png")
}
