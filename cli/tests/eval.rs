//! `nst-cli eval` end to end: a small run's picture evaluated (the objective against the run's
//! last logged value), `--json` fields, `--sheet`'s size, and bad inputs as one `error:` line.

use std::path::Path;

mod common;
use common::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Size in pixels of a PNG file.
fn png_size(p: &Path) -> (usize, usize) {
    let img = image::open(p).unwrap();
    (img.width() as usize, img.height() as usize)
}

#[test]
fn a_small_runs_picture_is_evaluated() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("run");
    let (content, style) = (
        nst_tests::asset_path("chelsea.png"),
        nst_tests::asset_path("starry_night.jpg"),
    );
    let (pic, log) = (d.join("x.png"), d.join("x.json"));
    let o = nst(&[
        "transfer",
        &s(&content),
        &s(&style),
        "-o",
        &s(&pic),
        "--size",
        "64",
        "--iterations",
        "20",
        "--log-json",
        &s(&log),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let base = [
        "eval".to_string(),
        s(&pic),
        "--content".into(),
        s(&content),
        "--style".into(),
        s(&style),
        "--log-json".into(),
        s(&log),
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.iter().map(String::as_str).collect();
        a.extend(extra);
        nst(&a)
    };

    // The table: a header and one row.
    let o = with(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].contains("gram relu1_1") && lines[0].contains("ssim"));
    assert!(lines[1].starts_with(&s(&pic)), "{table}");

    // JSON lines: the fields, and the objective of the saved picture against the run's last.
    let o = with(&["--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [
        "picture",
        "width",
        "height",
        "total",
        "content",
        "style",
        "tv",
        "terms",
        "gram_rel",
        "gram_rel_mean",
        "content_rel",
        "content_rel_layers",
        "ssim",
        "seconds",
        "iterations",
    ] {
        assert!(v.get(k).is_some(), "no {k} in {v}");
    }
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(64), Some(43))
    );
    assert_eq!(v["gram_rel"].as_object().unwrap().len(), 5);
    assert_eq!(v["iterations"].as_u64(), Some(20));
    let last: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let (eval_total, log_total) = (
        v["total"].as_f64().unwrap(),
        last["total"].as_f64().unwrap(),
    );
    assert!(
        (eval_total - log_total).abs() < 0.01 * log_total,
        "eval {eval_total} vs the log's {log_total}"
    );
    assert_eq!(v["seconds"].as_f64(), last["elapsed_seconds"].as_f64());
    let ssim = v["ssim"].as_f64().unwrap();
    assert!(ssim > 0.0 && ssim < 1.0, "{ssim}");

    // The sheet: content | style | picture at height 192, labels, and the curves.
    let sheet = d.join("sheet.png");
    let o = with(&["--sheet", &s(&sheet)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h = 192; // the picture's 43 px, clamped to 192..=512
    let at_h = |p: &Path| {
        let (w, hh) = png_size(p);
        ((w as f64 * h as f64 / hh as f64).round() as usize).max(280)
    };
    let width = 12
        + [&content, &style, &pic]
            .map(|p| at_h(p) + 12)
            .iter()
            .sum::<usize>();
    let height = 12 + h + 6 + 5 * 20 + 12 + 320 + 12;
    assert_eq!(png_size(&sheet), (width.max(760), height));
    assert!(nst::provenance::written_by_nst(&sheet));

    // A log that is not JSON lines.
    let bad = d.join("bad.json");
    std::fs::write(&bad, "iteration 1: total 3.2e6\n").unwrap();
    let o = nst(&[
        "eval",
        &s(&pic),
        "--content",
        &s(&content),
        "--style",
        &s(&style),
        "--log-json",
        &s(&bad),
    ]);
    assert_one_line_error(&o, "line 1 is not a line of `transfer --log-json`");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_pictures_give_one_line() {
    let d = tmp("bad");
    let (content, style) = (
        nst_tests::asset_path("chelsea.png"),
        nst_tests::asset_path("starry_night.jpg"),
    );
    let missing = d.join("missing.png");
    let o = nst(&[
        "eval",
        &s(&missing),
        "--content",
        &s(&content),
        "--style",
        &s(&style),
    ]);
    assert_one_line_error(&o, "missing.png");
    // The style image as a picture of the cat: another aspect ratio.
    let o = nst(&[
        "eval",
        &s(&style),
        "--content",
        &s(&content),
        "--style",
        &s(&style),
    ]);
    assert_one_line_error(&o, "different aspect ratio");
    std::fs::remove_dir_all(&d).unwrap();
}
