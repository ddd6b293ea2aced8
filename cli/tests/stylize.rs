//! `nst-cli stylize` end to end: the built-in network's picture against onnxruntime's golden
//! (through the PNG), folders in and out with a per-file error summary, standard input and
//! output, strength, and one-line errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::*;
const GOLDEN: &[u8] = include_bytes!("../../tests/data/fast_golden.safetensors");

fn golden(key: &str) -> (Vec<u8>, Vec<usize>) {
    let st = safetensors::SafeTensors::deserialize(GOLDEN).unwrap();
    let t = st.tensor(key).unwrap();
    (t.data().to_vec(), t.shape().to_vec())
}

/// The golden's 64×48 content as a PNG file.
fn golden_content(d: &Path) -> PathBuf {
    let (px, shape) = golden("multistyle26.content_rgb_u8");
    let img = image::RgbImage::from_raw(shape[1] as u32, shape[0] as u32, px).unwrap();
    let p = d.join("chelsea64.png");
    img.save(&p).unwrap();
    p
}

#[test]
fn builtin_style_matches_the_golden_through_the_png() {
    if !fast_weights_present() {
        return;
    }
    let d = tmp("golden");
    let content = golden_content(&d);
    let out = d.join("out.png");
    let o = nst(&[
        "stylize",
        &content.display().to_string(),
        "--style",
        "19",
        "-o",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(
        img.dimensions(),
        (64, 48),
        "not resampled: already under 1024 px"
    );
    let (bytes, _) = golden("multistyle26.style19.output");
    let want: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut worst = 0.0f32;
    for (i, p) in img.pixels().enumerate() {
        let (y, x) = (i / 64, i % 64);
        for c in 0..3 {
            let w = want[(c * 48 + y) * 64 + x] * 255.0;
            worst = worst.max((p[c] as f32 - w).abs());
        }
    }
    assert!(worst <= 0.51, "worst pixel {worst} levels from the golden");
    // A blend of two styles and strength 0 (the photo itself).
    let o = nst(&[
        "stylize",
        &content.display().to_string(),
        "--style",
        "3:0.5,12:0.5",
        "--strength",
        "0",
        "-o",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let same = image::open(&out).unwrap().to_rgb8();
    let orig = image::open(&content).unwrap().to_rgb8();
    assert_eq!(same, orig, "strength 0 gives the photo back");
}

#[test]
fn folders_in_and_out_with_a_summary_of_failures() {
    if !fast_weights_present() {
        return;
    }
    let d = tmp("folder");
    let inputs = d.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::copy(golden_content(&d), inputs.join("a.png")).unwrap();
    std::fs::write(inputs.join("b.png"), b"not an image").unwrap();
    std::fs::copy(nst_tests::asset_path("rocket.jpg"), inputs.join("c.jpg")).unwrap();
    std::fs::write(inputs.join("notes.txt"), b"skipped: not an image extension").unwrap();
    let out = d.join("out");
    let o = nst(&[
        "stylize",
        &inputs.display().to_string(),
        "--style-image",
        &nst_tests::asset_path("the_scream.jpg")
            .display()
            .to_string(),
        "-o",
        &out.display().to_string(),
        "--size",
        "96",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("failed: ") && err.contains("b.png") && err.contains("not an image"),
        "{err}"
    );
    assert!(
        err.trim()
            .lines()
            .last()
            .unwrap()
            .starts_with("error: 1 of 3 pictures failed"),
        "{err}"
    );
    for (name, size) in [("a.png", (96, 72)), ("c.png", (96, 64))] {
        let img = image::open(out.join(name)).unwrap();
        assert_eq!((img.width(), img.height()), size, "{name}");
    }
    assert!(!out.join("b.png").exists());
    // -o an existing folder with one input: <stem>.png there.
    let o = nst(&[
        "stylize",
        &inputs.join("a.png").display().to_string(),
        "--style",
        "0",
        "-o",
        &out.display().to_string(),
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(out.join("a.png")).unwrap().width(), 64);
}

#[test]
fn standard_input_to_standard_output() {
    if !fast_weights_present() {
        return;
    }
    let d = tmp("stdio");
    let png = std::fs::read(golden_content(&d)).unwrap();
    let mut child = Command::new(BIN)
        .args(["stylize", "-", "--style", "5", "-o", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&png).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::load_from_memory(&o.stdout).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
}

#[test]
fn bad_requests_give_one_line() {
    let d = tmp("bad");
    let c = nst_tests::asset_path("chelsea.png").display().to_string();
    let out = d.join("o.png").display().to_string();
    let style = nst_tests::asset_path("the_scream.jpg")
        .display()
        .to_string();
    for (args, needle) in [
        (vec!["stylize", &c, "-o", &out], "give the style"),
        (
            vec!["stylize", &c, "--style", "26", "-o", &out],
            "numbered 0–25",
        ),
        (
            vec!["stylize", &c, "--style", "x", "-o", &out],
            "numbered 0–25",
        ),
        (
            vec!["stylize", &c, "--style", "3:-1", "-o", &out],
            "finite number ≥ 0",
        ),
        (
            vec!["stylize", &c, "--style", "3:0", "-o", &out],
            "must not all be 0",
        ),
        (
            vec!["stylize", &c, "--style", "1", "--strength", "2", "-o", &out],
            "between 0 and 1",
        ),
        (
            vec![
                "stylize",
                &c,
                "--style",
                "1",
                "--strength",
                "nan",
                "-o",
                &out,
            ],
            "between 0 and 1",
        ),
        (
            vec!["stylize", &c, "--style", "1", "--size", "10", "-o", &out],
            "at least 32 px",
        ),
        (
            vec!["stylize", &c, "--style", "1", "-o", &c],
            "also an input",
        ),
        (
            vec!["stylize", &c, "--style-image", &style, "-o", &style],
            "also an input",
        ),
        (
            vec![
                "stylize",
                &c,
                "--style",
                "1",
                "-o",
                &d.join("x.gif").display().to_string(),
            ],
            "extension",
        ),
        (
            vec![
                "stylize",
                &d.display().to_string(),
                "--style",
                "1",
                "-o",
                &out,
            ],
            "no images in this folder",
        ),
        (
            vec!["stylize", &c, &c, "--style", "1", "-o", "-"],
            "standard output takes one picture",
        ),
    ] {
        assert_one_line_error(&nst(&args), needle);
    }
    assert!(!d.join("o.png").exists());
    // No weights: the message says how to get them.
    let home = tmp("nohome");
    let o = Command::new(BIN)
        .args(["stylize", &c, "--style", "1", "-o", &out])
        .env("NST_HOME", &home)
        .output()
        .unwrap();
    assert_one_line_error(&o, "nst-cli weights fetch");
    if fast_weights_present() {
        let tiny = d.join("tiny.png");
        image::RgbImage::new(10, 10).save(&tiny).unwrap();
        assert_one_line_error(
            &nst(&[
                "stylize",
                &tiny.display().to_string(),
                "--style",
                "1",
                "-o",
                &out,
            ]),
            "≥ 32 px",
        );
    }
}

#[test]
fn styles_writes_a_labelled_contact_sheet() {
    if !fast_weights_present() {
        return;
    }
    let d = tmp("sheet");
    let content = golden_content(&d);
    let out = d.join("sheet.png");
    let o = nst(&[
        "styles",
        &content.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--tile",
        "64",
        "--columns",
        "9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sheet = image::open(&out).unwrap().to_rgb8();
    // 27 tiles of 64×48 in rows of 9 with 4-px gaps: 9·68 + 4 by 3·52 + 4.
    assert_eq!(sheet.dimensions(), (616, 160));
    // The first tile is the photo itself; the second is style 0 with its label's black box.
    let photo = image::open(&content).unwrap().to_rgb8();
    assert_eq!(sheet.get_pixel(4 + 30, 4 + 20), photo.get_pixel(30, 20));
    assert_eq!(sheet.get_pixel(4 + 68, 4).0, [0, 0, 0]);
    assert_one_line_error(
        &nst(&[
            "styles",
            &content.display().to_string(),
            "-o",
            &out.display().to_string(),
            "--tile",
            "8",
        ]),
        "--tile 8",
    );
}

#[test]
fn transfer_can_start_from_the_feed_forward_picture() {
    if !fast_weights_present() || nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("initfast");
    let out = d.join("o.png");
    let log = d.join("log.json");
    let c = nst_tests::asset_path("chelsea.png").display().to_string();
    let s = nst_tests::asset_path("starry_night.jpg")
        .display()
        .to_string();
    let run = |init: &str| {
        let o = nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &out.display().to_string(),
            "--size",
            "64",
            "--scales",
            "1",
            "--iterations",
            "1",
            "--init",
            init,
            "--log-json",
            &log.display().to_string(),
            "--overwrite",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let line = std::fs::read_to_string(&log).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        v["total"].as_f64().unwrap()
    };
    // The feed-forward picture is already stylised: its first loss is far below the content's.
    let (content, fast) = (run("content"), run("fast"));
    assert!(
        fast < 0.5 * content,
        "fast {fast:.4e} vs content {content:.4e}"
    );
}
