//! Many pictures in, one folder out: what `stylize` and `transfer --content` share. Folders are
//! expanded to their images, each input gets `<stem>.png` in the output folder, an existing
//! output is classified for resuming, and the per-file failures end in one summary and a
//! non-zero exit.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Image file extensions taken from a folder.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif"];

/// The input files: files as given, folders expanded to their images (by extension, sorted by
/// name; sub-folders are not entered). Errors: a folder that cannot be listed or holds no image.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in inputs {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("listing {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                        })
                })
                .collect();
            if found.is_empty() {
                bail!("{}: no images in this folder", p.display());
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// `<input stem>.png` in `dir` for each input (`-`, standard input, is `stdin.png`). Errors:
/// `dir` is `-` or an existing file, or two inputs would share an output name.
pub fn outputs_in(dir: &Path, inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if dir.as_os_str() == "-" {
        bail!("-o -: standard output takes one picture; give a folder for several inputs");
    }
    if dir.exists() && !dir.is_dir() {
        bail!(
            "-o {}: the pictures go into a folder, and this is a file",
            dir.display()
        );
    }
    let mut seen = std::collections::HashSet::new();
    inputs
        .iter()
        .map(|i| {
            let stem = if i.as_os_str() == "-" {
                "stdin".into()
            } else {
                i.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            };
            if !seen.insert(stem.clone()) {
                bail!(
                    "two inputs would both be written to {}.png in {}; rename one",
                    stem,
                    dir.display()
                );
            }
            Ok(dir.join(format!("{stem}.png")))
        })
        .collect()
}

/// What an output path holds before a batch writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: the picture is to be made.
    Nothing,
    /// A picture carrying nst's mark ([`nst::provenance`]): done by an earlier run.
    Ours,
    /// Something else (the user's file, a folder, a link, a FIFO): not to be replaced unless
    /// `--overwrite`.
    Foreign,
}

/// What is at `output` now (without following a dangling link into a write).
pub fn existing(output: &Path) -> Existing {
    if output.symlink_metadata().is_err() {
        Existing::Nothing
    } else if nst::provenance::written_by_nst(output) {
        Existing::Ours
    } else {
        Existing::Foreign
    }
}

/// The tally of a batch: failures (input and why), pictures skipped as already done, and how
/// many inputs there were.
#[derive(Debug, Default)]
pub struct Summary {
    total: usize,
    failures: Vec<String>,
    skipped: usize,
}

impl Summary {
    /// A summary of `total` inputs.
    pub fn new(total: usize) -> Summary {
        Summary {
            total,
            ..Summary::default()
        }
    }

    /// `input` failed with `err` (named first, unless the message starts with its name).
    pub fn fail(&mut self, input: &Path, err: &anyhow::Error) {
        let (name, msg) = (input.display().to_string(), format!("{err:#}"));
        self.failures.push(if msg.starts_with(&name) {
            msg
        } else {
            format!("{name}: {msg}")
        });
    }

    /// One more picture skipped because an earlier run wrote it.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Prints what was skipped (`skipped k already done`), then ends the command: `Ok` when
    /// nothing failed; with one input, its error as the one error line; otherwise each failure
    /// on a `failed:` line and an error `k of n pictures failed`.
    pub fn finish(self) -> Result<()> {
        if self.skipped > 0 {
            note!(
                "skipped {} already done (pictures nst wrote earlier; --overwrite redoes them)",
                self.skipped
            );
        }
        match self.failures.len() {
            0 => Ok(()),
            1 if self.total == 1 => bail!("{}", self.failures[0]),
            n => {
                for f in &self.failures {
                    note!("failed: {f}");
                }
                bail!("{n} of {} pictures failed (listed above)", self.total)
            }
        }
    }
}
