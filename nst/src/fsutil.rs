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
/// `fill` writes a temporary file in the same directory (`.NAME.tmp-PID-N`, NAME cut to 200
/// bytes, unique per process
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
    // The temporary name keeps at most 200 bytes of the file name, so that any legal name
    // (up to 255 bytes) still has a legal temporary name beside it.
    let name = file_name.to_string_lossy();
    let mut keep = name.len().min(200);
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        &name[..keep],
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_name_of_the_longest_legal_length_is_written_atomically() {
        let dir = std::env::temp_dir().join(format!("nst-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 251 bytes + ".png" = 255, the usual NAME_MAX; multi-byte characters at the cut.
        let name = format!("{}é{}.png", "a".repeat(199), "b".repeat(50));
        assert_eq!(name.len(), 255);
        let path = dir.join(&name);
        write_atomic(&path, |f| f.write_all(b"picture")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"picture");
        // Nothing else is left in the directory.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1);
        // The written file is a regular file; a directory is refused.
        check_regular_file(&path).unwrap();
        assert!(check_regular_file(&dir)
            .unwrap_err()
            .to_string()
            .contains("is a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
