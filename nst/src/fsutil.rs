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
    let prefix = format!(".{}.tmp-", &name[..keep]);
    remove_dead_temporaries(&dir, &prefix);
    let tmp = dir.join(format!(
        "{prefix}{}-{}",
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

/// Removes `PREFIX<pid>-<n>` files in `dir` left by processes that no longer exist (a writer
/// killed between creating its temporary file and renaming it). Only where /proc tells which
/// processes exist (Linux); elsewhere nothing is removed.
fn remove_dead_temporaries(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
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

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("nst-fsutil-tmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A PID above the kernel's maximum (4 194 304) never exists; ours does.
        let dead = dir.join(".out.png.tmp-4999999-0");
        let alive = dir.join(format!(".out.png.tmp-{}-999", std::process::id()));
        let other = dir.join(".other.png.tmp-4999999-0");
        for p in [&dead, &alive, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        write_atomic(&dir.join("out.png"), |f| f.write_all(b"x")).unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists(), "a dead writer's temporary is removed");
        }
        assert!(
            alive.exists() && other.exists(),
            "a live one and other files stay"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
