//! File-system helpers shared by the image and weights readers and writers.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Refuses anything but a regular file (following links) before it is opened: reading a FIFO
/// would block forever and a device (`/dev/zero`) never end. Errors: [`Error::Io`] naming the
/// file (not found, no permission, or not a regular file).
pub fn check_regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::other("is a directory, not a file"),
        ));
    }
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("not a regular file (a FIFO, device or socket); give a file"),
        ));
    }
    Ok(())
}

/// The bytes of the regular file `path` ([`check_regular_file`] first). Errors: [`Error::Io`].
pub fn read_regular_file(path: &Path) -> Result<Vec<u8>> {
    check_regular_file(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Writes a file so that `path` either keeps its old content or gets the complete new one:
/// `fill` writes a temporary file in the same directory (`.NAME.tmp-PID-N`, unique per process
/// and call, created with `create_new`), which is fsynced, renamed over `path`, and the
/// directory fsynced. On any error the temporary file is removed and `path` is untouched.
/// The directory must exist. Errors: [`Error::Io`] naming the file that failed.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("not a file path")))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        fill(&mut f).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. Directories cannot be opened this way everywhere.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
