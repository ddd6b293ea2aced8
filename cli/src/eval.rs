//! `nst-cli eval PICTURE… --content C --style S…`: the measures of finished pictures
//! ([`nst::eval::evaluate`]) as a table or JSON lines, the run time from each picture's
//! `transfer --log-json`, and a contact sheet (`--sheet`, [`crate::sheet`]).

use crate::common::{check_device, check_output, in_flag_words, load_vgg};
use crate::objective::ObjectiveArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use nst::eval::Measures;
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::transfer::StyleTransferConfig;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `nst-cli eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Finished pictures of CONTENT (as `transfer` saved them), evaluated at their own size.
    #[arg(required = true)]
    pub pictures: Vec<PathBuf>,
    /// The content photo the pictures were made from.
    #[arg(long)]
    pub content: PathBuf,
    /// The style images the pictures were made with (one or more, as given to `transfer`).
    #[arg(long, required_unless_present = "flicker", num_args = 1..)]
    pub style: Vec<PathBuf>,
    /// The pictures are stylised videos (`nst-cli video` outputs) and --content the video they
    /// were made from: report each one's flicker, the mean absolute change of the output
    /// between consecutive frames on pixels whose input changed by less than 2/255 (lower is
    /// better).
    #[arg(long, conflicts_with_all = ["style", "log_json", "sheet"])]
    pub flicker: bool,
    /// Longest side of the pictures, in pixels (as `transfer --size`; sets the style images'
    /// size) [default: each picture's longest side].
    #[arg(long)]
    pub size: Option<usize>,
    #[command(flatten)]
    pub objective: ObjectiveArgs,
    /// Each picture's `transfer --log-json` file, in the pictures' order (one per picture):
    /// gives the run time and, with --sheet, the loss curves.
    #[arg(long, num_args = 1..)]
    pub log_json: Vec<PathBuf>,
    /// Print one JSON object per picture (JSON lines) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a contact sheet (.png): content | styles | pictures, labelled with their
    /// scores, and the loss curves of the --log-json files.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Replace an existing --sheet file even if nst did not write it (never an input).
    #[arg(long)]
    pub overwrite: bool,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Refuse input images with more pixels than this (checked before decoding).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// One iteration of a `transfer --log-json` file.
#[derive(Clone, Copy, Debug)]
pub struct LogPoint {
    /// Iteration over all scales, from 1.
    pub iteration: u64,
    /// Seconds since the run started.
    pub seconds: f64,
    /// The objective's total.
    pub total: f64,
}

/// A picture and what is known of it.
pub struct Evaluated {
    pub path: PathBuf,
    pub image: RgbImage,
    pub measures: Measures,
    /// Its run's log, when one was given.
    pub log: Option<Vec<LogPoint>>,
}

impl Evaluated {
    /// The run's time: the log's last `elapsed_seconds`.
    pub fn seconds(&self) -> Option<f64> {
        self.log.as_ref().and_then(|l| l.last()).map(|p| p.seconds)
    }
}

/// The iterations of a `transfer --log-json` file: every non-empty line must be a JSON object
/// with numbers `iteration`, `total` and `elapsed_seconds`.
pub fn read_log(path: &Path) -> Result<Vec<LogPoint>> {
    let bytes = nst::fsutil::read_regular_file(path).context("--log-json")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("--log-json {}: not UTF-8 text", path.display()))?;
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| {
            anyhow::anyhow!(
                "--log-json {}: line {} is not a line of `transfer --log-json` ({why})",
                path.display(),
                i + 1
            )
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let num = |k: &str| v.get(k).and_then(Value::as_f64).filter(|x| x.is_finite());
        let (Some(iteration), Some(total), Some(seconds)) = (
            v.get("iteration").and_then(Value::as_u64),
            num("total"),
            num("elapsed_seconds"),
        ) else {
            return Err(bad(
                "it needs the numbers iteration, total and elapsed_seconds",
            ));
        };
        points.push(LogPoint {
            iteration,
            seconds,
            total,
        });
    }
    if points.is_empty() {
        bail!("--log-json {}: no iterations in the log", path.display());
    }
    Ok(points)
}

/// One picture's measures as a JSON object (the `--json` line).
fn to_json(e: &Evaluated) -> Value {
    let m = &e.measures;
    let obj = |pairs: &[(String, f64)]| -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
    };
    let terms: Map<String, Value> = m
        .terms
        .iter()
        .map(|t| (t.name.clone(), json!(t.value)))
        .collect();
    json!({
        "picture": e.path.display().to_string(),
        "width": m.size.0,
        "height": m.size.1,
        "total": m.total,
        "content": m.weighted("content"),
        "style": m.weighted("style"),
        "tv": m.weighted("tv"),
        "terms": terms,
        "gram_rel": obj(&m.gram_rel),
        "gram_rel_mean": m.gram_rel_mean,
        "content_rel": content_rel(m),
        "content_rel_layers": obj(&m.content_rel),
        "ssim": m.ssim,
        "seconds": e.seconds(),
        "iterations": e.log.as_ref().and_then(|l| l.last()).map(|p| p.iteration),
    })
}

/// The mean relative content error over the content layers (relu4_2's by default).
pub fn content_rel(m: &Measures) -> f64 {
    m.content_rel.iter().map(|(_, v)| v).sum::<f64>() / m.content_rel.len().max(1) as f64
}

/// The table: one row per picture, columns padded to their widest cell.
fn table(rows: &[Evaluated]) -> String {
    let layers: Vec<String> = rows[0]
        .measures
        .gram_rel
        .iter()
        .map(|(l, _)| format!("gram {l}"))
        .collect();
    let mut header: Vec<String> = ["picture", "size", "total", "content", "style", "tv"]
        .map(String::from)
        .to_vec();
    header.extend(layers);
    header.extend(["gram mean", "content_rel", "ssim", "seconds"].map(String::from));
    let mut cells = vec![header];
    for e in rows {
        let m = &e.measures;
        let mut r = vec![
            e.path.display().to_string(),
            format!("{}×{}", m.size.0, m.size.1),
            format!("{:.4e}", m.total),
            format!("{:.4e}", m.weighted("content")),
            format!("{:.4e}", m.weighted("style")),
            format!("{:.4e}", m.weighted("tv")),
        ];
        r.extend(m.gram_rel.iter().map(|(_, v)| format!("{v:.4}")));
        r.push(format!("{:.4}", m.gram_rel_mean));
        r.push(format!("{:.4}", content_rel(m)));
        r.push(format!("{:.4}", m.ssim));
        r.push(e.seconds().map_or("-".into(), |s| format!("{s:.1}")));
        cells.push(r);
    }
    let n = cells[0].len();
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (s, w))| {
                let pad = " ".repeat(w - s.chars().count());
                if c == 0 {
                    format!("{s}{pad}")
                } else {
                    format!("{pad}{s}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Run the command.
pub fn run(args: EvalArgs) -> Result<()> {
    if args.flicker {
        return run_flicker(&args);
    }
    let device = check_device(&args.device)?;
    let pooling = args.objective.pooling()?;
    if !args.log_json.is_empty() && args.log_json.len() != args.pictures.len() {
        bail!(
            "--log-json: {} logs for {} pictures (give one per picture, in the pictures' order)",
            args.log_json.len(),
            args.pictures.len()
        );
    }
    if let Some(sheet) = &args.sheet {
        let mut inputs: Vec<&Path> = vec![&args.content];
        inputs.extend(args.style.iter().map(PathBuf::as_path));
        inputs.extend(args.pictures.iter().map(PathBuf::as_path));
        inputs.extend(args.log_json.iter().map(PathBuf::as_path));
        inputs.extend(args.objective.weights.as_deref());
        check_output(sheet, &inputs, &["png"], args.overwrite).context("--sheet")?;
    }
    let logs = args
        .log_json
        .iter()
        .map(|p| read_log(p))
        .collect::<Result<Vec<_>>>()?;
    let content = RgbImage::load(&args.content, args.max_pixels)?;
    let styles = args
        .style
        .iter()
        .map(|s| RgbImage::load(s, args.max_pixels))
        .collect::<Result<Vec<_>, _>>()?;
    let pictures = args
        .pictures
        .iter()
        .map(|p| RgbImage::load(p, args.max_pixels))
        .collect::<Result<Vec<_>, _>>()?;
    let config = |picture: &RgbImage| -> Result<StyleTransferConfig> {
        let base = StyleTransferConfig {
            size_px: args.size.unwrap_or(picture.width.max(picture.height)),
            ..StyleTransferConfig::default()
        };
        let cfg = args.objective.config(base)?;
        cfg.validate(styles.len()).map_err(in_flag_words)?;
        Ok(cfg)
    };
    // Every picture's size and shape before the network loads.
    let mut cfgs = Vec::with_capacity(pictures.len());
    for (path, image) in args.pictures.iter().zip(&pictures) {
        let cfg = config(image)?;
        nst::eval::check_picture(image, &content, &cfg)
            .map_err(in_flag_words)
            .with_context(|| format!("picture {}", path.display()))?;
        cfgs.push(cfg);
    }
    let vgg = load_vgg(args.objective.weights.as_deref(), pooling)?.truncated(&cfgs[0].layers())?;
    let vgg = Arc::new(vgg.to_device(device)?);
    let mut rows = Vec::with_capacity(pictures.len());
    for (i, ((path, image), cfg)) in args.pictures.iter().zip(pictures).zip(cfgs).enumerate() {
        let measures = nst::eval::evaluate(vgg.clone(), &image, &content, &styles, &cfg)
            .map_err(in_flag_words)
            .with_context(|| format!("picture {}", path.display()))?;
        rows.push(Evaluated {
            path: path.clone(),
            image,
            measures,
            log: logs.get(i).cloned(),
        });
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for e in &rows {
            writeln!(out, "{}", to_json(e))?;
        }
    } else {
        write!(out, "{}", table(&rows))?;
    }
    out.flush()?;
    if let Some(sheet) = &args.sheet {
        let styles: Vec<(String, RgbImage)> = args
            .style
            .iter()
            .map(|p| file_name(p))
            .zip(styles)
            .collect();
        let name = file_name(&args.content);
        let img = crate::sheet::draw((&name, &content), &styles, &rows)?;
        img.save(sheet)?;
        note!("wrote {} ({}×{})", sheet.display(), img.width, img.height);
    }
    Ok(())
}

/// The file name of `p`, for labels.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// `eval --flicker`: one line (or JSON object) per video.
fn run_flicker(args: &EvalArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for p in &args.pictures {
        let (flicker, frames, still) = crate::video::flicker(p, &args.content, args.max_pixels)?;
        if args.json {
            writeln!(
                out,
                "{}",
                json!({"video": p.display().to_string(), "frames": frames,
                       "flicker": flicker, "still_fraction": still})
            )?;
        } else {
            let f = flicker.map_or("n/a (no still pixels)".into(), |f| {
                format!("{f:.5} ({:.2}/255)", f * 255.0)
            });
            let still = still.map_or("n/a".into(), |s| format!("{:.1}%", 100.0 * s));
            writeln!(
                out,
                "{}: flicker {f} over {frames} frames; still pixels {still}",
                p.display()
            )?;
        }
    }
    Ok(())
}
