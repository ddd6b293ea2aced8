//! `nst-cli transfer --content …`: many photos into one folder. A broken photo is listed and the
//! others are written (exit 1); re-running skips the pictures already written (their bytes and
//! modification times untouched) and `--overwrite` redoes them; a file nst did not write is that
//! photo's failure; Ctrl-C stops the batch without writing the interrupted picture. Tiny sizes
//! (48 px, 3 iterations, one scale) keep it fast.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

mod common;
use common::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `transfer --content IN STYLE -o OUT` at 48 px, 3 iterations, one scale, plus `extra`.
fn batch(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let style = nst_tests::asset_path("the_scream.jpg");
    let mut args = vec![
        "transfer".to_string(),
        "--content".into(),
        s(input),
        s(&style),
        "-o".into(),
        s(out),
    ];
    for a in ["--size", "48", "--iterations", "3", "--scales", "1"]
        .iter()
        .chain(extra)
    {
        args.push(a.to_string());
    }
    Command::new(BIN).args(&args).output().unwrap()
}

/// A folder `in/` with two good photos: a.png (chelsea, 451×300) and c.jpg (rocket).
fn good_photos(d: &Path) -> PathBuf {
    let inputs = d.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::copy(nst_tests::asset_path("chelsea.png"), inputs.join("a.png")).unwrap();
    std::fs::copy(nst_tests::asset_path("rocket.jpg"), inputs.join("c.jpg")).unwrap();
    inputs
}

/// [`good_photos`] and two bad ones: b.png is not an image, thin.png decodes but is too thin
/// for VGG-19 at 48 px.
fn photos(d: &Path) -> PathBuf {
    let inputs = good_photos(d);
    std::fs::write(inputs.join("b.png"), b"not an image").unwrap();
    image::RgbImage::new(4, 400)
        .save(inputs.join("thin.png"))
        .unwrap();
    inputs
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn broken_photos_are_listed_the_others_written_and_a_rerun_resumes() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("broken");
    let inputs = photos(&d);
    let out = d.join("out");
    let o = batch(&inputs, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for (name, why) in [("b.png", "not an image"), ("thin.png", "too small")] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("failed: ") && l.contains(name) && l.contains(why)),
            "{name}: {err}"
        );
    }
    assert!(
        err.trim()
            .lines()
            .last()
            .unwrap()
            .starts_with("error: 2 of 4 pictures failed"),
        "{err}"
    );
    let (a, c) = (out.join("a.png"), out.join("c.png"));
    for (p, size) in [(&a, (48, 32)), (&c, (48, 32))] {
        let img = image::open(p).unwrap();
        assert_eq!((img.width(), img.height()), size, "{}", p.display());
        assert!(nst::provenance::written_by_nst(p));
    }
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only the two pictures, no temporary files: {names:?}"
    );

    // Resume: the broken photos gone and c.png removed (as if the run had stopped before it):
    // a.png is skipped, untouched; c.png is made again.
    std::fs::remove_file(inputs.join("b.png")).unwrap();
    std::fs::remove_file(inputs.join("thin.png")).unwrap();
    std::fs::remove_file(&c).unwrap();
    let (bytes, time) = (std::fs::read(&a).unwrap(), mtime(&a));
    let o = batch(&inputs, &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("skipped 1 already done"), "{err}");
    assert!(!err.contains("a.png ("), "a.png was made again: {err}");
    assert!(err.contains("c.png (48×32"), "{err}");
    assert_eq!(std::fs::read(&a).unwrap(), bytes);
    assert_eq!(mtime(&a), time, "a finished picture is not written again");
    let c_time = mtime(&c);

    // All done: nothing to do, both skipped.
    let o = batch(&inputs, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped 2 already done"),
        "{}",
        stderr(&o)
    );
    assert_eq!((mtime(&a), mtime(&c)), (time, c_time));

    // --overwrite redoes them all.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = batch(&inputs, &out, &["--overwrite"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("skipped"), "{err}");
    assert!(mtime(&a) > time && mtime(&c) > c_time, "{err}");
    assert!(nst::provenance::written_by_nst(&a));
}

#[test]
fn a_file_nst_did_not_write_is_that_photos_failure() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("foreign");
    let inputs = good_photos(&d);
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The user's own picture where c's output goes.
    std::fs::copy(nst_tests::asset_path("chelsea.png"), out.join("c.png")).unwrap();
    let theirs = std::fs::read(out.join("c.png")).unwrap();
    let o = batch(&inputs, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("failed: ")
            && l.contains("c.jpg")
            && l.contains("exists and was not written by nst")),
        "{err}"
    );
    assert!(err.contains("error: 1 of 2 pictures failed"), "{err}");
    assert_eq!(std::fs::read(out.join("c.png")).unwrap(), theirs);
    assert!(nst::provenance::written_by_nst(&out.join("a.png")));
    // With --overwrite it is replaced.
    let o = batch(&inputs, &out, &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(nst::provenance::written_by_nst(&out.join("c.png")));
}

#[test]
fn ctrl_c_stops_the_batch_without_writing_the_interrupted_picture() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("sigint");
    let inputs = good_photos(&d);
    let out = d.join("out");
    let style = nst_tests::asset_path("the_scream.jpg");
    let mut child = Command::new(BIN)
        .args([
            "transfer",
            "--content",
            &s(&inputs),
            &s(&style),
            "-o",
            &s(&out),
        ])
        .args(["--size", "48", "--scales", "1", "--iterations", "100000"])
        .args(["--tolerance", "0", "--print-every", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a few iterations of the first picture (a guard against a hang, not a timing).
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let start = std::time::Instant::now();
    let mut seen = vec![];
    loop {
        let line = lines.next().expect("nst-cli ended early").unwrap();
        seen.push(line.clone());
        if line.contains("a.png: iteration 3/") {
            break;
        }
        assert!(start.elapsed().as_secs() < 120, "no progress: {seen:?}");
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let err = rest.join("\n");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted during picture 1 of 2") && err.contains("not written"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Nothing in the folder: the interrupted picture must not count as done on the next run.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
