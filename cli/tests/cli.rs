//! nst-cli end to end: bad inputs give one clear error line and a non-zero exit (never a panic),
//! `--seed` determinism, Ctrl-C saves the current image, and `features` matches the reference.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::*;

/// `assets/NAME`, embedded in the test binary and written to a temporary directory.
fn image(name: &str) -> PathBuf {
    nst_tests::asset_path(name)
}

fn content() -> String {
    image("chelsea.png").display().to_string()
}
fn style() -> String {
    image("the_scream.jpg").display().to_string()
}

#[test]
fn bad_images_give_one_clear_line() {
    let d = tmp("badimg");
    let out = d.join("out.png").display().to_string();
    let missing = d.join("missing.jpg").display().to_string();
    std::fs::write(d.join("empty.png"), b"").unwrap();
    std::fs::write(d.join("text.jpg"), b"this is not an image at all").unwrap();
    let png = std::fs::read(image("chelsea.png")).unwrap();
    std::fs::write(d.join("cut.png"), &png[..png.len() / 3]).unwrap();
    // A JPEG cut at 3/4: the decoder alone would fill the rest with grey and succeed.
    let jpg = std::fs::read(image("the_scream.jpg")).unwrap();
    std::fs::write(d.join("cut.jpg"), &jpg[..jpg.len() * 3 / 4]).unwrap();
    let p = |n: &str| d.join(n).display().to_string();
    // Image errors come before the weights are needed, so these run without weights too.
    for (input, needle) in [
        (missing.as_str(), "no such file"),
        (&p("empty.png"), "empty file"),
        (&p("text.jpg"), "not an image"),
        (&p("cut.png"), "corrupt"),
        (&p("cut.jpg"), "truncated JPEG"),
    ] {
        assert_one_line_error(&nst(&["transfer", input, &style(), "-o", &out]), needle);
        assert_one_line_error(&nst(&["transfer", &content(), input, "-o", &out]), needle);
    }
    assert_one_line_error(
        &nst(&[
            "transfer",
            &content(),
            &style(),
            "-o",
            &out,
            "--max-pixels",
            "1000",
        ]),
        "over the limit",
    );
    assert!(!d.join("out.png").exists());
}

#[test]
fn bad_outputs_and_flags_give_one_clear_line() {
    let d = tmp("badflags");
    let out = d.join("out.png").display().to_string();
    let c = content();
    let s = style();
    // Never over an input, whatever the spelling of the path.
    let copy = d.join("c.png");
    std::fs::copy(image("chelsea.png"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let dotted = format!("{}/./c.png", d.display());
    assert_one_line_error(
        &nst(&["transfer", &copy.display().to_string(), &s, "-o", &dotted]),
        "also an input",
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    assert_one_line_error(
        &nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &d.join("x.gif").display().to_string(),
        ]),
        "extension",
    );
    assert_one_line_error(
        &nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &d.join("no/dir/x.png").display().to_string(),
        ]),
        "does not exist",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--optimizer", "sgd"]),
        "--optimizer",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--precision", "fp8"]),
        "expected auto, f32 or bf16",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--style-layers", "relu9_9"]),
        "relu9_9",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--pooling", "min"]),
        "pooling",
    );
    assert_one_line_error(
        &nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &out,
            "--style-layer-weights",
            "1,2",
        ]),
        "--style-layer-weights",
    );
    assert_one_line_error(
        &nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &out,
            "--style-blend-weights",
            "1,2",
        ]),
        "--style-blend-weights",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--style-weight=-1"]),
        "--style-weight",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--size", "4"]),
        "--size",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--device", "cuda:99"]),
        "cuda:99",
    );
    assert_one_line_error(
        &nst(&["transfer", &c, &s, "-o", &out, "--device", "tpu"]),
        "--device",
    );
    assert_one_line_error(
        &nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &out,
            "--weights",
            "/nonexistent/w.safetensors",
        ]),
        "does not exist",
    );
    // Weights missing from the cache: say how to fetch them.
    let empty_home = d.join("home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let o = Command::new(BIN)
        .args(["transfer", &c, &s, "-o", &out])
        .env("NST_HOME", &empty_home)
        .output()
        .unwrap();
    assert_one_line_error(&o, "nst-cli weights fetch");
    // A corrupt weights file.
    let bad_w = d.join("bad.safetensors");
    std::fs::write(&bad_w, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ").unwrap();
    assert_one_line_error(
        &nst(&[
            "transfer",
            &c,
            &s,
            "-o",
            &out,
            "--weights",
            &bad_w.display().to_string(),
        ]),
        "bad.safetensors",
    );
    // clap's own errors: exit code 2.
    let o = nst(&["transfer", &c, "-o", &out]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = nst(&["transfer", &c, &s, "-o", &out, "--iterations", "many"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("out.png").exists());
}

/// Runs nst-cli, failing (and killing it) if it has not exited after 20 s.
fn nst_with_deadline(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("nst-cli {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn fifos_and_devices_are_refused_not_read_forever() {
    let d = tmp("fifo");
    let fifo = d.join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo unavailable");
        return;
    }
    let (f, out) = (
        fifo.display().to_string(),
        d.join("o.png").display().to_string(),
    );
    let (c, s) = (content(), style());
    for args in [
        vec!["weights", "info", &f],
        vec!["transfer", &c, &s, "-o", &out, "--weights", &f],
        vec!["transfer", &f, &s, "-o", &out],
        vec!["transfer", &c, "/dev/zero", "-o", &out],
    ] {
        let o = nst_with_deadline(&args);
        assert_one_line_error(&o, "not a regular file");
        // The cause is printed once, not once per layer of context.
        let err = stderr(&o);
        assert_eq!(err.matches("not a regular file").count(), 1, "{err}");
    }
    assert!(!d.join("o.png").exists());
}

#[test]
fn a_full_stderr_or_stdout_is_an_error_not_a_panic() {
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(dev_full) = full() else {
        eprintln!("skipped: no /dev/full");
        return;
    };
    // Absurd thread counts are refused instead of started.
    assert_one_line_error(
        &nst(&[
            "bench",
            "--content",
            &content(),
            "--style",
            &style(),
            "--threads",
            "100000",
        ]),
        "--threads 100000: at most",
    );
    // An error message that cannot be written: exit 1, not a panic's 101.
    let o = Command::new(BIN)
        .args(["weights", "info", "/no/such/file"])
        .stderr(dev_full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // stdout full: the one error line says it was standard output.
    if nst_tests::weights_or_skip().is_some() {
        let o = Command::new(BIN)
            .args(["weights", "info"])
            .stdout(full().unwrap())
            .output()
            .unwrap();
        assert_one_line_error(&o, "writing to standard output");
    }
}

#[test]
fn no_command_writes_over_a_file_it_reads() {
    let d = tmp("overwrite");
    let p = |n: &str| d.join(n).display().to_string();
    for n in ["c.png", "init.png", "out_0002.png"] {
        std::fs::copy(image("chelsea.png"), d.join(n)).unwrap();
    }
    let w = d.join("w.safetensors");
    std::fs::write(&w, b"not really weights").unwrap();
    let snapshot = |n: &str| std::fs::read(d.join(n)).unwrap();
    let before: Vec<Vec<u8>> = ["c.png", "init.png", "out_0002.png", "w.safetensors"]
        .map(snapshot)
        .to_vec();
    let s = style();
    // -o equal to the --init image.
    assert_one_line_error(
        &nst(&[
            "transfer",
            &p("c.png"),
            &s,
            "-o",
            &p("init.png"),
            "--init",
            &p("init.png"),
        ]),
        "also an input",
    );
    // A --save-every snapshot name equal to an input.
    assert_one_line_error(
        &nst(&[
            "transfer",
            &p("out_0002.png"),
            &s,
            "-o",
            &p("out.png"),
            "--save-every",
            "2",
        ]),
        "--save-every: snapshot output",
    );
    // features -o equal to --weights.
    let wp = w.display().to_string();
    assert_one_line_error(
        &nst(&[
            "features",
            &p("c.png"),
            "--layers",
            "relu1_1",
            "-o",
            &wp,
            "--weights",
            &wp,
        ]),
        "also an input",
    );
    // weights import -o: not over the input, not another kind of file, no new directories.
    assert_one_line_error(
        &nst(&["weights", "import", &wp, "-o", &wp]),
        "also an input",
    );
    assert_one_line_error(
        &nst(&["weights", "import", &wp, "-o", &p("photo.jpg")]),
        "extension",
    );
    assert_one_line_error(
        &nst(&["weights", "import", &wp, "-o", &p("no/dir/w.safetensors")]),
        "does not exist",
    );
    let after: Vec<Vec<u8>> = ["c.png", "init.png", "out_0002.png", "w.safetensors"]
        .map(snapshot)
        .to_vec();
    assert_eq!(before, after, "inputs byte-identical");
    assert!(!d.join("out.png").exists() && !d.join("no").exists());
}

#[test]
fn sizes_too_small_and_bad_numbers_are_refused_before_any_work() {
    let d = tmp("toosmall");
    let out = d.join("out.png").display().to_string();
    let (c, s) = (content(), style());
    let transfer = |extra: &[&str]| {
        let mut args = vec!["transfer", &c, &s, "-o", &out];
        args.extend_from_slice(extra);
        nst(&args)
    };
    for (extra, needle) in [
        (&["--iterations", "0"][..], "--iterations must be ≥ 1"),
        (
            &["--style-layer-weights", "nan,1,1,1,1"],
            "--style-layer-weights must be finite",
        ),
        (
            &["--style-layer-weights=-1,1,1,1,1"],
            "--style-layer-weights must be finite",
        ),
        (
            &["--style-blend-weights", "0"],
            "--style-blend-weights must not all be 0",
        ),
    ] {
        assert_one_line_error(&transfer(extra), needle);
    }
    // Sizes are checked once the network's layers are known, before the first iteration.
    if nst_tests::weights_or_skip().is_some() {
        // Sizes that cannot fit in memory are refused before anything is allocated (they used
        // to abort the process on a failed 10 GB allocation).
        assert_one_line_error(&transfer(&["--size", "100000"]), "GB of memory");
        assert_one_line_error(
            &transfer(&["--size", "1024", "--style-scale", "1000"]),
            "--style-scale 1000 needs about",
        );
        // chelsea is 451×300: at 16 px it is 16×11, under relu5_1's 16.
        assert_one_line_error(&transfer(&["--size", "16"]), "use at least 24");
        assert_one_line_error(
            &transfer(&["--size", "256", "--style-scale", "0.01"]),
            "--style-scale 0.01 makes style image 1",
        );
        let f = d.join("f.safetensors").display().to_string();
        assert_one_line_error(
            &nst(&[
                "features", &c, "--layers", "relu5_1", "--size", "12", "-o", &f,
            ]),
            "too small for VGG-19's relu5_1",
        );
        assert!(!d.join("f.safetensors").exists());
    }
    assert!(!d.join("out.png").exists());
}

#[test]
fn bench_profile_splits_the_iterations_by_op_and_adds_up() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let (c, s) = (content(), style());
    let args = [
        "bench",
        "--content",
        &c,
        "--style",
        &s,
        "--size",
        "64",
        "--iterations",
        "2",
    ];
    let o = nst(&[&args[..], &["--profile"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    // stdout keeps its one JSON line; the table goes to stderr.
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["iterations"], 2);
    let err = stderr(&o);
    let mut lines = err
        .lines()
        .skip_while(|l| !l.starts_with("profile over 2 iterations"));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no profile header: {err}"));
    let avg: f64 = header
        .split('(')
        .nth(1)
        .unwrap()
        .split(" ms")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rows: Vec<Vec<&str>> = lines
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Every row's ms/it (ops, the rows under 0.5%, the time outside ops) adds up to the
    // average iteration, to the table's rounding (0.005 ms a row).
    let sum: f64 = rows.iter().map(|r| r[0].parse::<f64>().unwrap()).sum();
    assert!(
        (sum - avg).abs() <= 0.05 + 0.006 * rows.len() as f64,
        "{sum} vs {avg}: {err}"
    );
    // VGG-19 at 64×43: conv4_2…conv4_4 (512→512 on 5×8) run 3 times an iteration, forward
    // and, for the image's gradient, backward.
    for phase in ["forward", "backward"] {
        let row = rows.iter().find(|r| {
            r.len() == 8
                && r[3] == phase
                && r[4] == "conv2d_relu"
                && r[5] == "1×512×5×8"
                && r[7] == "512×512×3×3"
        });
        assert_eq!(row.map(|r| r[2]), Some("3.0"), "{phase}: {err}");
    }
    // The feed-forward network too: its 3×3 32→32 convolutions at a quarter of the photo
    // (16×11; their reflect padding read in place, so no pad2d row), 12 a picture (as measured
    // at 512 px too).
    if !fast_weights_present() {
        return;
    }
    let fast = [
        "bench",
        "--content",
        &c,
        "--network",
        "multistyle26",
        "--size",
        "64",
    ];
    let o = nst(&[&fast[..], &["--iterations", "2", "--profile"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let row = err
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|r| r.len() == 8 && r[4] == "conv2d" && r[5] == "1×32×11×16" && r[2] == "12.0");
    assert!(row.is_some(), "no residual-block row: {err}");
    let padded = err
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .any(|r| r.len() == 6 && r[4] == "pad2d" && r[5] == "1×32×11×16");
    assert!(!padded, "the residual blocks' padding was copied: {err}");
}

#[test]
fn help_lists_every_option_with_defaults() {
    let o = nst(&["transfer", "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--size",
        "--style-scale",
        "--content-layers",
        "--style-layers",
        "--style-layer-weights",
        "--content-weight",
        "--style-weight",
        "--tv-weight",
        "--style-blend-weights",
        "--optimizer",
        "--lbfgs-history",
        "--learning-rate",
        "--iterations",
        "--init",
        "--seed",
        "--pooling",
        "--original-colors",
        "--scales",
        "--style-loss",
        "--save-every",
        "--print-every",
        "--log-json",
        "--precision",
        "--device",
        "--weights",
        "--max-pixels",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(
        help.contains("[default: 512]") && help.contains("[default: lbfgs]"),
        "{help}"
    );
}

fn small_run(d: &Path, name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out = d.join(name);
    let mut args = vec![
        "transfer".to_string(),
        content(),
        style(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    for (flag, value) in [("--size", "48"), ("--iterations", "3"), ("--scales", "1")] {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    (Command::new(BIN).args(&args).output().unwrap(), out)
}

#[test]
fn same_seed_same_bytes_and_outputs_look_right() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("seed");
    let (o1, p1) = small_run(&d, "a.png", &["--init", "noise", "--seed", "7"]);
    assert!(o1.status.success(), "{}", stderr(&o1));
    let (o2, p2) = small_run(&d, "b.png", &["--init", "noise", "--seed", "7"]);
    assert!(o2.status.success(), "{}", stderr(&o2));
    let (o3, p3) = small_run(&d, "c.png", &["--init", "noise", "--seed", "8"]);
    assert!(o3.status.success(), "{}", stderr(&o3));
    let (a, b, c) = (
        std::fs::read(&p1).unwrap(),
        std::fs::read(&p2).unwrap(),
        std::fs::read(&p3).unwrap(),
    );
    assert_eq!(a, b, "same seed and flags must give byte-identical output");
    assert_ne!(a, c, "a different seed should change the noise init");
    let img = image::open(&p1).unwrap();
    assert_eq!((img.width(), img.height()), (48, 32)); // chelsea is 451×300
                                                       // JPEG output, Adam, multi-scale, save-every, log-json, two styles, original colours.
    let log = d.join("log.jsonl");
    let (o, p) = small_run(
        &d,
        "d.jpg",
        &[
            "--optimizer",
            "adam",
            "--scales",
            "2",
            "--size",
            "96",
            "--save-every",
            "2",
            "--log-json",
            &log.display().to_string(),
            "--original-colors",
            "--style-loss",
            "mean-std",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(&p).unwrap().width(), 96);
    let lines: Vec<serde_json_value::Line> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(serde_json_value::parse)
        .collect();
    assert_eq!(lines.len(), 6, "3 iterations × 2 scales");
    assert!(
        lines.iter().all(|l| l.has_all),
        "missing keys in the JSON log"
    );
    assert!(d.join("d_0002.jpg").exists() && d.join("d_0006.jpg").exists());
    let (o, _) = small_run(&d, "e.png", &["--style-blend-weights", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `--style-loss w2` and `sliced-w` run end to end (L-BFGS, 2 scales, 48 px: relu5_1 has 3×2
/// pixels, a rank-deficient covariance), sliced-w's seeded directions give the same bytes twice,
/// and `eval` evaluates the pictures under the same losses.
#[test]
fn w2_and_sliced_w_style_losses_run_end_to_end() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("new_losses");
    for (i, loss) in ["w2", "sliced-w", "sliced-w"].into_iter().enumerate() {
        let name = format!("{loss}_{i}.png");
        let extra = ["--style-loss", loss, "--scales", "2", "--size", "64"];
        let (o, p) = small_run(&d, &name, &extra);
        assert!(o.status.success(), "{loss}: {}", stderr(&o));
        assert_eq!(image::open(&p).unwrap().width(), 64);
        let e = Command::new(BIN)
            .args([
                "eval",
                &p.display().to_string(),
                "--content",
                &content(),
                "--style",
            ])
            .args([style(), "--style-loss".into(), loss.into()])
            .output()
            .unwrap();
        assert!(e.status.success(), "eval {loss}: {}", stderr(&e));
    }
    let a = std::fs::read(d.join("sliced-w_1.png")).unwrap();
    assert_eq!(
        a,
        std::fs::read(d.join("sliced-w_2.png")).unwrap(),
        "sliced-w is seeded"
    );
}

/// Tiny JSON-lines check without a JSON dependency in the test: the keys the log must carry.
mod serde_json_value {
    pub struct Line {
        pub has_all: bool,
    }
    pub fn parse(s: &str) -> Line {
        let keys = [
            "\"iteration\"",
            "\"scale\"",
            "\"total\"",
            "\"content\"",
            "\"style.relu1_1\"",
            "\"style.relu5_1\"",
            "\"tv\"",
            "\"elapsed_seconds\"",
        ];
        Line {
            has_all: s.starts_with('{') && keys.iter().all(|k| s.contains(k)),
        }
    }
}

#[test]
fn ctrl_c_saves_the_current_image() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    // SIGINT (Ctrl-C), SIGTERM (timeout, systemd) and SIGHUP (a closed terminal) alike.
    for signal in ["INT", "TERM", "HUP"] {
        let d = tmp(&format!("sig{signal}"));
        let out = d.join("out.png");
        let log = d.join("log.jsonl");
        let child = Command::new(BIN)
            .args([
                "transfer",
                &content(),
                &style(),
                "-o",
                &out.display().to_string(),
                "--size",
                "64",
                "--scales",
                "1",
            ])
            .args([
                "--iterations",
                "100000",
                "--log-json",
                &log.display().to_string(),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until a few iterations have run.
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
            < 3
        {
            assert!(start.elapsed().as_secs() < 120, "no progress");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(130), "SIG{signal}: {}", stderr(&o));
        assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
        let img = image::open(&out).unwrap();
        assert_eq!(img.width(), 64, "SIG{signal}");
    }
}

#[test]
fn features_command_matches_the_reference() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("features");
    let r = &nst_tests::CHELSEA_MAX;
    let (px, shape) = r.tensor("content_rgb_u8");
    let rgb: Vec<u8> = px.iter().map(|&v| v as u8).collect();
    let png = d.join("content.png");
    image::RgbImage::from_raw(shape[1] as u32, shape[0] as u32, rgb)
        .unwrap()
        .save(&png)
        .unwrap();
    let out = d.join("f.safetensors");
    let o = nst(&[
        "features",
        &png.display().to_string(),
        "--layers",
        "relu3_1,relu4_2,pool5",
        "-o",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fb = std::fs::read(&out).unwrap();
    let f = safetensors::SafeTensors::deserialize(&fb).unwrap();
    for layer in ["relu3_1", "relu4_2", "pool5"] {
        let t = f.tensor(layer).unwrap();
        let got: Vec<f64> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect();
        let (want, wshape) = r.tensor(&format!("content_features.{layer}"));
        assert_eq!(t.shape(), &wshape[..]);
        nst::engine::testing::assert_close(&got, &want, 1e-4, layer);
    }
    // --gram gives C×C matrices
    let out2 = d.join("g.safetensors");
    let o = nst(&[
        "features",
        &png.display().to_string(),
        "--layers",
        "relu2_1",
        "--gram",
        "-o",
        &out2.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let gb = std::fs::read(&out2).unwrap();
    assert_eq!(
        safetensors::SafeTensors::deserialize(&gb)
            .unwrap()
            .tensor("relu2_1")
            .unwrap()
            .shape(),
        &[128, 128]
    );
    // a bad layer name
    assert_one_line_error(
        &nst(&[
            "features",
            &png.display().to_string(),
            "--layers",
            "fc7",
            "-o",
            &out2.display().to_string(),
        ]),
        "fc7",
    );
}

#[test]
fn nst_replaces_its_own_outputs_only_and_a_failing_log_keeps_the_picture() {
    if nst_tests::weights_or_skip().is_none() {
        return;
    }
    let d = tmp("replace");
    // A second run over the first run's output (it carries nst's mark) just replaces it.
    for format in ["png", "jpg"] {
        let name = format!("out.{format}");
        let (o, out) = small_run(&d, &name, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(nst::provenance::written_by_nst(&out));
        let (o, _) = small_run(&d, &name, &["--seed", "1", "--init", "noise"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // The user's own picture of that name: refused, then replaced with --overwrite.
    std::fs::copy(image("chelsea.png"), d.join("theirs.png")).unwrap();
    let before = std::fs::read(d.join("theirs.png")).unwrap();
    let (o, _) = small_run(&d, "theirs.png", &[]);
    assert_one_line_error(&o, "exists and was not written by nst");
    assert_eq!(std::fs::read(d.join("theirs.png")).unwrap(), before);
    let (o, out) = small_run(&d, "theirs.png", &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(nst::provenance::written_by_nst(&out));
    // A log that cannot be written (a full disk: /dev/full): the run goes on, the picture is
    // saved, a warning says so once and the one error line ends with exit 1.
    if Path::new("/dev/full").exists() {
        let log = d.join("log.json");
        std::os::unix::fs::symlink("/dev/full", &log).unwrap();
        let log = log.display().to_string();
        let (o, out) = small_run(&d, "logged.png", &["--log-json", &log, "--overwrite"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.trim().lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with("warning: --log-json") && lines[0].contains("iteration 1"));
        assert!(
            lines[1].starts_with("error: --log-json")
                && lines[1].contains("the picture was written to"),
            "{err}"
        );
        let img = image::open(&out).unwrap();
        assert_eq!((img.width(), img.height()), (48, 32));
    }
}
