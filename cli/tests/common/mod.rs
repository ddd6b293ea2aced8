//! Helpers shared by the `cli/tests/*.rs` binaries (each one includes this module with
//! `mod common;`): running nst-cli, temporary directories, the one-line error check.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The nst-cli binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_nst-cli");

/// A fresh, empty temporary directory named after the test binary, `name` and this process;
/// removed when the returned guard is dropped at the end of the test, unless the test is
/// failing (then it is kept to look at). Derefs to its `Path`.
pub fn tmp(name: &str) -> TmpDir {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let d = std::env::temp_dir().join(format!("nst-{bin}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// A test's temporary directory (see [`tmp`]).
pub struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TmpDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TmpDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs nst-cli with `args`, collecting its output.
pub fn nst(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running nst-cli")
}

/// Its standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails unless the command exited 1 with exactly one `error:` line mentioning `needle`, and
/// did not panic.
#[track_caller]
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(o.status.code(), Some(1), "expected exit 1; stderr: {err}");
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "expected {needle:?} in: {err}"
    );
}

/// Whether the three feed-forward networks are in the weights cache; in CI (`CI` set) they
/// must be, elsewhere the test is skipped with a message.
pub fn fast_weights_present() -> bool {
    let dir = nst::weights::weights_cache_dir().unwrap();
    let ok = ["multistyle26", "arbitrary_predict", "arbitrary_transform"]
        .iter()
        .all(|n| dir.join(format!("{n}.safetensors")).exists());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "feed-forward weights missing in CI"
        );
        eprintln!("skipped: run `nst-cli weights fetch`");
    }
    ok
}
