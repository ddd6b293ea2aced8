//! The hostile-input suite: well over 100 bad requests to `nst-cli` (bad and odd images in every
//! place an image is read, hostile weights files in every place weights are read, bad flags,
//! outputs that would replace a file), each from fixtures generated here. Every case must:
//! exit 1 with exactly one `error:` line naming the cause (exit 2 with clap's usage text for
//! malformed command lines), never panic, never hang, leave every file byte-identical and
//! leave no file behind.
//!
//! Every case runs with `NST_HOME` pointing at an empty directory, so a case that wrongly got
//! past its check would fail on the missing weights instead of starting a transfer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nst-cli");

/// What a case must end with.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exit 1, one line `error: …` containing the needle.
    Refused(&'static str),
    /// Exit 2 (clap's usage error), first line `error: …` containing the needle.
    Usage(&'static str),
}

struct Case {
    name: String,
    args: Vec<String>,
    expect: Expect,
}

/// CRC-32 (ISO-HDLC, as PNG uses), bitwise: only for building fixtures.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(&body);
    c.extend_from_slice(&crc32(&body).to_be_bytes());
    c
}

/// A PNG whose header claims `w`×`h` RGB pixels, with `idat` as its only data.
fn png_claiming(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend(png_chunk(b"IHDR", &ihdr));
    b.extend(png_chunk(b"IDAT", idat));
    b.extend(png_chunk(b"IEND", &[]));
    b
}

fn encode(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A safetensors file with `header` as its JSON header and `data` after it.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

/// The bad or odd images, by file name, with what refusing each must say. Written into `dir`.
fn bad_images(dir: &Path) -> Vec<(String, &'static str)> {
    let chelsea = nst_tests::asset_bytes("chelsea.png");
    let scream = nst_tests::asset_bytes("the_scream.jpg");
    let files: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("empty.png", vec![], "empty file"),
        (
            "text.jpg",
            b"this is not an image at all".to_vec(),
            "not an image",
        ),
        ("zeros.png", vec![0; 4096], "not an image"),
        (
            "cut-third.png",
            chelsea[..chelsea.len() / 3].to_vec(),
            "corrupt",
        ),
        ("cut-header.png", chelsea[..20].to_vec(), "corrupt"),
        (
            "cut.jpg",
            scream[..scream.len() * 3 / 4].to_vec(),
            "truncated JPEG",
        ),
        ("soi-only.jpg", vec![0xFF, 0xD8], "not an image"),
        (
            "jpeg-garbage.jpg",
            [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x55; 300]].concat(),
            "corrupt",
        ),
        (
            "bomb.png",
            png_claiming(100_000, 100_000, &[0; 16]),
            "over the limit",
        ),
        ("zero-width.png", png_claiming(0, 10, &[0; 16]), "corrupt"),
        ("bad-idat.png", png_claiming(8, 8, &[0x55; 64]), "corrupt"),
        (
            "gif-header.gif",
            b"GIF89a\x10\x00\x10\x00".to_vec(),
            "corrupt",
        ),
        (
            "riff.webp",
            b"RIFF\x10\x00\x00\x00WEBPVP8 ".to_vec(),
            "corrupt",
        ),
        (
            "tiff.tif",
            b"II*\x00\x08\x00\x00\x00\xff\xff".to_vec(),
            "corrupt",
        ),
        ("bmp.bmp", b"BM\x10\x00\x00\x00".to_vec(), "corrupt"),
        (
            "renamed.png",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
            "not an image",
        ),
    ];
    let mut out = vec![];
    for (name, bytes, needle) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
        out.push((name.to_string(), needle));
    }
    std::fs::create_dir_all(dir.join("a-directory.png")).unwrap();
    out.push(("a-directory.png".into(), "is a directory"));
    out.push(("missing.png".into(), "no such file"));
    // A FIFO would block a reader forever; devices never end.
    if mkfifo(&dir.join("pipe.png")) {
        out.push(("pipe.png".into(), "not a regular file"));
    }
    out.push(("/dev/zero".into(), "not a regular file"));
    std::os::unix::fs::symlink("loop-b.png", dir.join("loop-a.png")).unwrap();
    std::os::unix::fs::symlink("loop-a.png", dir.join("loop-b.png")).unwrap();
    out.push(("loop-a.png".into(), "symbolic links"));
    out
}

/// Hostile weights files, by name, with what refusing each must say.
fn bad_weights(dir: &Path) -> Vec<(String, &'static str)> {
    // A pickle that would run os.system("true") if it were executed.
    let evil_pickle =
        b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.".to_vec();
    let files: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("empty.safetensors", vec![], "empty"),
        (
            "text.pth",
            b"hello, these are not weights".to_vec(),
            "safetensors",
        ),
        (
            "header-only.safetensors",
            100u64.to_le_bytes().to_vec(),
            "safetensors",
        ),
        (
            "huge-header.safetensors",
            u64::MAX.to_le_bytes().to_vec(),
            "safetensors",
        ),
        (
            "bad-json.safetensors",
            safetensors("{not json", &[]),
            "safetensors",
        ),
        (
            "offsets-past-end.safetensors",
            safetensors(
                r#"{"features.0.weight":{"dtype":"F32","shape":[64,3,3,3],"data_offsets":[0,6912]}}"#,
                &[0; 16],
            ),
            "safetensors",
        ),
        (
            "wrong-shape.safetensors",
            safetensors(
                r#"{"features.0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
                &[0; 16],
            ),
            "missing tensor",
        ),
        (
            "no-vgg-keys.safetensors",
            safetensors(
                r#"{"fc.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            "features.0.weight",
        ),
        ("evil.pth", evil_pickle, "PyTorch checkpoint"),
        (
            "not-a-checkpoint.zip",
            zip_with("readme.txt", b"hello"),
            "PyTorch checkpoint",
        ),
    ];
    let mut out = vec![];
    for (name, bytes, needle) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
        out.push((name.to_string(), needle));
    }
    if mkfifo(&dir.join("pipe.safetensors")) {
        out.push(("pipe.safetensors".into(), "not a regular file"));
    }
    std::fs::create_dir_all(dir.join("dir.safetensors")).unwrap();
    out.push(("dir.safetensors".into(), "is a directory"));
    out.push(("missing.safetensors".into(), "o"));
    out
}

/// Makes a FIFO at `path`; false where `mkfifo` is missing.
fn mkfifo(path: &Path) -> bool {
    Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

fn zip_with(name: &str, bytes: &[u8]) -> Vec<u8> {
    // A stored (uncompressed) single-entry zip, written by hand: local header, data, central
    // directory, end record.
    let crc = crc32(bytes).to_le_bytes();
    let (n, len) = (name.len() as u16, bytes.len() as u32);
    let mut z = vec![];
    z.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend_from_slice(&crc);
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(bytes);
    let cd_at = z.len() as u32;
    let mut cd = b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    cd.extend_from_slice(&crc);
    cd.extend_from_slice(&len.to_le_bytes());
    cd.extend_from_slice(&len.to_le_bytes());
    cd.extend_from_slice(&n.to_le_bytes());
    cd.extend_from_slice(&[0; 12]);
    cd.extend_from_slice(&0u32.to_le_bytes());
    cd.extend_from_slice(name.as_bytes());
    let cd_len = cd.len() as u32;
    z.extend(cd);
    z.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd_at.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z
}

/// Every file under `dir` (recursively, not following links) with its bytes; links and
/// directories by their kind.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = p.symlink_metadata().unwrap();
            if m.is_dir() {
                out.insert(p.clone(), b"<dir>".to_vec());
                stack.push(p);
            } else if m.is_file() {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            } else {
                out.insert(p.clone(), b"<other>".to_vec());
            }
        }
    }
    out
}

/// Runs one case with a deadline; returns a description of what went wrong, if anything.
fn run_case(case: &Case, home: &Path) -> Option<String> {
    let mut child = Command::new(BIN)
        .args(&case.args)
        .env("NST_HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            let _ = child.wait();
            return Some("hung (killed after 30 s)".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let o: Output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("panicked") || o.status.code() == Some(101) {
        return Some(format!("panicked: {err}"));
    }
    let lines: Vec<&str> = err.trim().lines().collect();
    let first = lines.first().copied().unwrap_or("");
    let (code, needle, one_line) = match case.expect {
        Expect::Refused(n) => (1, n, true),
        Expect::Usage(n) => (2, n, false),
    };
    if o.status.code() != Some(code) {
        return Some(format!(
            "exit {:?}, expected {code}; stderr: {err}",
            o.status.code()
        ));
    }
    if !first.starts_with("error: ") || !first.contains(needle) {
        return Some(format!("expected `error: …{needle}…`, got: {err}"));
    }
    if one_line && lines.len() != 1 {
        return Some(format!("expected one line, got {}: {err}", lines.len()));
    }
    None
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// All the cases over the fixtures in `d`.
fn cases(d: &Path) -> Vec<Case> {
    let p = |n: &str| s(&d.join(n));
    let good = p("good.png");
    let style = p("style.jpg");
    let out = p("out.png");
    let mut cases = vec![];
    let mut add =
        |name: String, args: Vec<String>, expect: Expect| cases.push(Case { name, args, expect });
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // Every bad image in every place an image is read.
    for (img, needle) in bad_images(d) {
        let f = p(&img);
        let small = ["--size", "64", "--iterations", "1"];
        let t = |c: &str, s: &[&str], extra: &[&str]| {
            let mut a = v(&["transfer", c]);
            a.extend(v(s));
            a.extend(v(&["-o", &out]));
            a.extend(v(&small));
            a.extend(v(extra));
            a
        };
        add(
            format!("content {img}"),
            t(&f, &[&style], &[]),
            Expect::Refused(needle),
        );
        add(
            format!("style {img}"),
            t(&good, &[&f], &[]),
            Expect::Refused(needle),
        );
        add(
            format!("second style {img}"),
            t(&good, &[&style, &f], &[]),
            Expect::Refused(needle),
        );
        add(
            format!("--init {img}"),
            t(&good, &[&style], &["--init", &f]),
            Expect::Refused(needle),
        );
        add(
            format!("features {img}"),
            v(&[
                "features",
                &f,
                "--layers",
                "relu1_1",
                "-o",
                &p("f.safetensors"),
            ]),
            Expect::Refused(needle),
        );
        add(
            format!("stylize --style-image {img}"),
            v(&["stylize", &good, "--style-image", &f, "-o", &out]),
            Expect::Refused(needle),
        );
        // A folder is a folder of photos to stylize (this one holds none).
        let photo_needle = if img == "a-directory.png" {
            "no images in this folder"
        } else {
            needle
        };
        add(
            format!("stylize {img}"),
            v(&["stylize", &f, "--style", "1", "-o", &out]),
            Expect::Refused(photo_needle),
        );
        add(
            format!("eval picture {img}"),
            v(&["eval", &f, "--content", &good, "--style", &style]),
            Expect::Refused(needle),
        );
        add(
            format!("eval content {img}"),
            v(&["eval", &good, "--content", &f, "--style", &style]),
            Expect::Refused(needle),
        );
        add(
            format!("bench content {img}"),
            v(&[
                "bench",
                "--content",
                &f,
                "--style",
                &style,
                "--size",
                "64",
                "--iterations",
                "1",
            ]),
            Expect::Refused(needle),
        );
    }
    // Images that decode but are too small or too thin for VGG-19's deepest layer.
    for (img, needle) in [("thin.png", "too small"), ("thin-wide.png", "too small")] {
        add(
            format!("content {img}"),
            v(&["transfer", &p(img), &style, "-o", &out, "--size", "64"]),
            Expect::Refused(needle),
        );
        add(
            format!("style {img}"),
            v(&["transfer", &good, &p(img), "-o", &out, "--size", "64"]),
            Expect::Refused(needle),
        );
    }
    // Every hostile weights file in every place weights are read.
    for (w, needle) in bad_weights(d) {
        let f = p(&w);
        add(
            format!("transfer --weights {w}"),
            v(&[
                "transfer",
                &good,
                &style,
                "-o",
                &out,
                "--size",
                "64",
                "--weights",
                &f,
            ]),
            Expect::Refused(needle),
        );
        add(
            format!("features --weights {w}"),
            v(&[
                "features",
                &good,
                "--layers",
                "relu1_1",
                "-o",
                &p("f.safetensors"),
                "--weights",
                &f,
            ]),
            Expect::Refused(needle),
        );
        add(
            format!("weights info {w}"),
            v(&["weights", "info", &f]),
            Expect::Refused(needle),
        );
        add(
            format!("weights import {w}"),
            v(&["weights", "import", &f, "-o", &p("imported.safetensors")]),
            Expect::Refused(needle),
        );
    }
    // Bad numbers and names.
    let transfer = |extra: &[&str]| {
        let mut a = v(&["transfer", &good, &style, "-o", &out]);
        a.extend(v(extra));
        a
    };
    for (extra, needle) in [
        (&["--size", "0"][..], "--size"),
        (&["--size", "8"], "at least 16 px"),
        (&["--size", "20"], "use at least"),
        (&["--size", "100000"], "GB of memory"),
        (
            &["--size", "1024", "--style-scale", "1000"],
            "--style-scale 1000 needs about",
        ),
        (&["--style-scale", "0"], "--style-scale"),
        (&["--style-scale", "nan"], "--style-scale"),
        (&["--style-scale", "inf"], "--style-scale"),
        (
            &["--style-scale", "0.01"],
            "--style-scale 0.01 makes style image",
        ),
        (&["--iterations", "0"], "--iterations must be ≥ 1"),
        (&["--content-weight", "nan"], "--content-weight"),
        (&["--style-weight=-1"], "--style-weight"),
        (&["--tv-weight", "inf"], "--tv-weight"),
        (
            &["--style-layer-weights", "nan,1,1,1,1"],
            "--style-layer-weights must be finite",
        ),
        (
            &["--style-layer-weights=-1,1,1,1,1"],
            "--style-layer-weights must be finite",
        ),
        (&["--style-layer-weights", "1,1"], "--style-layer-weights"),
        (
            &["--style-blend-weights", "0"],
            "--style-blend-weights must not all be 0",
        ),
        (&["--style-blend-weights", "1,1,1"], "--style-blend-weights"),
        (&["--style-layers", "relu9_9"], "relu9_9"),
        (&["--content-layers", "fc7"], "fc7"),
        (&["--style-layers", ""], "unknown VGG-19 layer"),
        (&["--optimizer", "sgd"], "--optimizer"),
        (&["--pooling", "median"], "--pooling"),
        (&["--style-loss", "wasserstein"], "--style-loss"),
        // Guided transfer: mask counts, aspect ratios, losses without masks, missing files.
        (
            &["--content-mask", &good, "--content-mask", &good],
            "--content-mask has 2 masks for 1 style images",
        ),
        (
            &["--content-mask", &style],
            "--content-mask number 1 is 48×40",
        ),
        (
            &["--content-mask", &good, "--style-mask", &good],
            "--style-mask number 1 is 40×30",
        ),
        (
            &["--style-mask", &good],
            "--style-mask needs content masks too",
        ),
        (
            &["--content-mask", &good, "--style-loss", "mrf"],
            "--content-mask work with the gram and mean-std style losses, not mrf",
        ),
        (
            &["--content-mask", &good, "--style-blend-weights", "1"],
            "--style-blend-weights do not apply with content masks",
        ),
        (&["--content-mask", "no-such-mask.png"], "--content-mask"),
        (&["--precision", "f16"], "--precision"),
        (&["--device", "tpu"], "--device"),
        (&["--device", "cuda:7"], "--device cuda:7"),
        (&["--lbfgs-history", "0"], "--lbfgs-history"),
        (
            &["--learning-rate", "0", "--optimizer", "adam"],
            "--learning-rate",
        ),
        (
            &["--learning-rate", "nan", "--optimizer", "adam"],
            "--learning-rate",
        ),
        (&["--scales", "0"], "--scales"),
        (&["--max-pixels", "10"], "over the limit"),
        (&["--init", "no-such-init.png"], "--init"),
        // A huge --iterations with --save-every: the snapshot names are checked from a directory
        // listing (one check per possible step would run for years).
        (
            &["--save-every", "1", "--iterations", "5000000000000000000"],
            "--save-every: snapshot",
        ),
    ] {
        add(
            format!("transfer {}", extra.join(" ")),
            transfer(extra),
            Expect::Refused(needle),
        );
    }
    // Malformed command lines: clap's usage errors.
    for (args, needle) in [
        (
            v(&["transfer", &good, &style, "-o", &out, "--size", "abc"]),
            "invalid value",
        ),
        (
            v(&["transfer", &good, &style, "-o", &out, "--size=-5"]),
            "invalid value",
        ),
        (v(&["transfer", &good, "-o", &out]), "required"),
        (v(&["transfer", &good, &style]), "required"),
        (v(&["transfer", "--content", &good, &style]), "required"),
        (
            v(&[
                "transfer", &good, &style, "-o", &out, "--size", "1", "--size", "2",
            ]),
            "multiple times",
        ),
        (
            v(&["transfer", &good, &style, "-o", &out, "--no-such-flag"]),
            "unexpected argument",
        ),
        (v(&["no-such-command"]), "unrecognized subcommand"),
        (v(&["bench", "--threads", "x"]), "invalid value"),
    ] {
        add(
            format!("usage {}", args.join(" ")),
            args,
            Expect::Usage(needle),
        );
    }
    // Outputs: never over an input, never over a file nst did not write, never nowhere.
    std::fs::write(d.join("mine.png"), nst_tests::asset_bytes("chelsea.png")).unwrap();
    std::fs::write(
        d.join("out_0002.png"),
        nst_tests::asset_bytes("chelsea.png"),
    )
    .unwrap();
    std::fs::write(d.join("notes.json"), b"my notes\n").unwrap();
    // A FIFO named like a log: refused as not nst's, without opening it (that would block).
    assert!(mkfifo(&d.join("pipe.json")), "mkfifo");
    std::fs::write(
        d.join("mine.safetensors"),
        safetensors(r#"{"__metadata__":{"format":"pt"}}"#, &[]),
    )
    .unwrap();
    for (extra_out, extra, needle) in [
        (good.as_str(), &[][..], "also an input"),
        (&style, &[], "also an input"),
        (&p("./good.png"), &[], "also an input"),
        (&p("mine.png"), &[], "exists and was not written by nst"),
        (
            &out,
            &["--save-every", "2", "--iterations", "4"][..],
            "--save-every: snapshot",
        ),
        (&out, &["--log-json", &p("notes.json")], "--log-json"),
        (
            &out,
            &["--log-json", &p("pipe.json")],
            "exists and was not written by nst",
        ),
        (&out, &["--log-json", &good], "extension"),
        (&out, &["--init", &out], "also an input"),
        (
            &out,
            &["--log-json", &p("g.json"), "--init", &p("g.json")],
            "also an input",
        ),
        (&p("out.gif"), &[], "extension"),
        (&p("no/such/dir/out.png"), &[], "does not exist"),
        (&p("a-directory.png"), &[], "is a directory"),
        (&d.display().to_string(), &[], "extension"),
    ] {
        let mut a = v(&["transfer", &good, &style, "-o", extra_out, "--size", "64"]);
        a.extend(v(extra));
        add(
            format!("output {extra_out} {}", extra.join(" ")),
            a,
            Expect::Refused(needle),
        );
    }
    // Many photos (`transfer --content`): what is refused before any work. The last case gets
    // past every check and fails on the missing weights, creating no output folder.
    let new_dir = p("batch-out");
    for (extra, needle) in [
        (
            &["--content", &good, &style, "-o", &out][..],
            "-o names a folder",
        ),
        (&["--content", &good, &style, "-o", &good], "this is a file"),
        (
            &["--content", &s(d), &style, "-o", &s(d)],
            "also an input folder",
        ),
        (&["--content", &good, &style, "-o", &s(d)], "also an input"),
        (
            &[
                "--content",
                &good,
                "--content",
                &good,
                &style,
                "-o",
                &new_dir,
            ],
            "two inputs would both be written to good.png",
        ),
        (
            &["--content", &p("a-directory.png"), &style, "-o", &new_dir],
            "no images in this folder",
        ),
        (
            &["--content", &good, "-o", &new_dir],
            "give one or more STYLE",
        ),
        (
            &["--content", &good, &p("a-directory.png"), "-o", &new_dir],
            "is a folder: style images are files",
        ),
        (
            &[
                "--content",
                &good,
                &style,
                "-o",
                &new_dir,
                "--log-json",
                &p("l.json"),
            ],
            "--log-json logs one picture",
        ),
        (
            &[
                "--content",
                &good,
                &style,
                "-o",
                &new_dir,
                "--save-every",
                "1",
            ],
            "--save-every snapshots one picture",
        ),
        (
            &["--content", &good, &style, "-o", &new_dir, "--size", "0"],
            "--size",
        ),
        (
            &["--content", &good, &style, "-o", &new_dir],
            "weights fetch",
        ),
    ] {
        let mut a = v(&["transfer"]);
        a.extend(v(extra));
        add(
            format!("batch {}", extra.join(" ")),
            a,
            Expect::Refused(needle),
        );
    }
    for (args, needle) in [
        (
            v(&[
                "features",
                &good,
                "--layers",
                "relu1_1",
                "-o",
                &p("g.safetensors"),
                "--weights",
                &p("g.safetensors"),
            ]),
            "also an input",
        ),
        (
            v(&[
                "features",
                &p("one-pixel.png"),
                "--layers",
                "relu2_1",
                "-o",
                &p("f.safetensors"),
            ]),
            "too small",
        ),
        (
            v(&[
                "features",
                &p("thin.png"),
                "--layers",
                "relu5_1",
                "-o",
                &p("f.safetensors"),
            ]),
            "too small",
        ),
        (
            v(&[
                "features",
                &good,
                "--layers",
                "relu5_1",
                "--size",
                "12",
                "-o",
                &p("f.safetensors"),
            ]),
            "too small",
        ),
        (
            v(&[
                "features",
                &good,
                "--layers",
                "relu1_1",
                "-o",
                &p("mine.safetensors"),
            ]),
            "exists and was not written by nst",
        ),
        (
            v(&["features", &good, "--layers", "relu1_1", "-o", &p("f.png")]),
            "extension",
        ),
        (
            v(&[
                "features",
                &good,
                "--layers",
                "relu9_9",
                "-o",
                &p("f.safetensors"),
            ]),
            "relu9_9",
        ),
        (
            v(&[
                "features",
                &good,
                "--layers",
                "relu5_1",
                "--size",
                "0",
                "-o",
                &p("f.safetensors"),
            ]),
            "--size",
        ),
        (
            v(&[
                "weights",
                "import",
                &p("g.safetensors"),
                "-o",
                &p("g.safetensors"),
            ]),
            "also an input",
        ),
        (
            v(&[
                "weights",
                "import",
                &p("text.pth"),
                "-o",
                &p("mine.safetensors"),
            ]),
            "exists and was not written by nst",
        ),
        (
            v(&["weights", "import", &p("text.pth"), "-o", &p("photo.jpg")]),
            "extension",
        ),
        (
            v(&[
                "weights",
                "import",
                &p("text.pth"),
                "-o",
                &p("new/dir/w.safetensors"),
            ]),
            "does not exist",
        ),
        (
            v(&[
                "bench",
                "--content",
                &good,
                "--style",
                &style,
                "--threads",
                "100000",
            ]),
            "--threads 100000: at most",
        ),
        (
            v(&[
                "bench",
                "--content",
                &good,
                "--style",
                &style,
                "--size",
                "0",
            ]),
            "--size",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--log-json",
                &p("g.json"),
            ]),
            "is not a line of `transfer --log-json`",
        ),
        (
            v(&[
                "eval",
                &good,
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--log-json",
                &p("g.json"),
            ]),
            "1 logs for 2 pictures",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--log-json",
                &p("missing.json"),
            ]),
            "--log-json",
        ),
        (
            v(&["eval", &style, "--content", &good, "--style", &style]),
            "different aspect ratio",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--size",
                "64",
            ]),
            "--size 64 differs from the picture's longest side",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--sheet",
                &good,
            ]),
            "also an input",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--sheet",
                &p("s.jpg"),
            ]),
            "extension",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--style-loss",
                "l1",
            ]),
            "--style-loss",
        ),
        (
            v(&[
                "eval",
                &good,
                "--content",
                &good,
                "--style",
                &style,
                "--style-layers",
                "relu9_9",
            ]),
            "relu9_9",
        ),
        (
            v(&["bench", "--content", &good, "--network", "vgg"]),
            "--network vgg: multistyle26 or arbitrary",
        ),
        (
            v(&["bench", "--content", &good, "--network", "arbitrary"]),
            "needs --style-image",
        ),
        (
            v(&[
                "bench",
                "--content",
                &good,
                "--network",
                "multistyle26",
                "--builtin",
                "26",
            ]),
            "--builtin 26",
        ),
        (
            v(&[
                "bench",
                "--content",
                &good,
                "--network",
                "multistyle26",
                "--size",
                "8",
            ]),
            "--size 8",
        ),
        (
            v(&["bench", "--content", &good, "--network", "multistyle26"]),
            "weights fetch",
        ),
        (
            v(&[
                "bench",
                "--content",
                &good,
                "--network",
                "arbitrary",
                "--style-image",
                &p("missing.jpg"),
            ]),
            "missing.jpg",
        ),
        (v(&["serve", "--weights", &p("text.pth")]), "safetensors"),
        (
            v(&["serve", "--weights", &p("evil.pth")]),
            "convert it once",
        ),
        (
            v(&["serve", "--weights", &p("missing.safetensors")]),
            "does not exist",
        ),
    ] {
        add(args.join(" "), args, Expect::Refused(needle));
    }
    // Video: files that are not videos, flags checked before any frame, outputs refused.
    let has_ffmpeg = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    let not_video = if has_ffmpeg {
        "not a video ffmpeg can read"
    } else {
        "apt-get install ffmpeg"
    };
    let vid = |input: &str, output: &str, extra: &[&str]| {
        let mut a = v(&["video", input, "-o", output, "--style", "1"]);
        a.extend(v(extra));
        a
    };
    let mp4 = p("out.mp4");
    for (args, needle) in [
        (vid(&p("missing.mp4"), &mp4, &[]), "No such file"),
        (vid(&p("empty.mp4"), &mp4, &[]), "empty file"),
        (vid(&p("text.mp4"), &mp4, &[]), not_video),
        (vid(&p("bad.gif"), &mp4, &[]), "corrupt"),
        (vid(&p("bad.gif"), &p("out.gif"), &[]), "corrupt"),
        (vid(&d.display().to_string(), &mp4, &[]), "is a directory"),
        (vid(&p("bad.gif"), &p("out.webp"), &[]), "not written"),
        (vid(&p("bad.gif"), &p("out.avi"), &[]), "must be one of"),
        (vid(&p("bad.gif"), &p("bad.gif"), &[]), "also an input"),
        (
            vid(&p("bad.gif"), &p("user.gif"), &[]),
            "not written by nst",
        ),
        (vid(&p("bad.gif"), &mp4, &["--mode", "slow"]), "--mode"),
        (
            vid(&p("bad.gif"), &mp4, &["--smooth", "1.5"]),
            "--smooth 1.5",
        ),
        (vid(&p("bad.gif"), &mp4, &["--strength", "2"]), "--strength"),
        (vid(&p("bad.gif"), &mp4, &["--size", "abc"]), "--size"),
        (
            vid(&p("bad.gif"), &mp4, &["--precision", "fp8"]),
            "--precision",
        ),
        (
            vid(&p("bad.gif"), &mp4, &["--mode", "optimise"]),
            "needs --style-image",
        ),
        (
            v(&["eval", &p("text.mp4"), "--content", &good, "--flicker"]),
            not_video,
        ),
    ] {
        add(args.join(" "), args, Expect::Refused(needle));
    }
    cases
}

#[test]
fn hostile_and_clumsy_input_is_refused_cleanly() {
    let root = std::env::temp_dir().join(format!("nst-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (d, home) = (root.join("files"), root.join("home"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(d.join("good.png"), encode(40, 30, image::ImageFormat::Png)).unwrap();
    std::fs::write(
        d.join("style.jpg"),
        encode(48, 40, image::ImageFormat::Jpeg),
    )
    .unwrap();
    std::fs::write(
        d.join("one-pixel.png"),
        encode(1, 1, image::ImageFormat::Png),
    )
    .unwrap();
    std::fs::write(d.join("thin.png"), encode(1, 4000, image::ImageFormat::Png)).unwrap();
    std::fs::write(
        d.join("thin-wide.png"),
        encode(3000, 2, image::ImageFormat::Png),
    )
    .unwrap();
    std::fs::write(d.join("g.json"), b"{}\n").unwrap();
    std::fs::write(d.join("empty.mp4"), b"").unwrap();
    std::fs::write(d.join("text.mp4"), b"this is not a video at all").unwrap();
    std::fs::write(d.join("bad.gif"), b"GIF89a\x10\x00\x10\x00garbage").unwrap();
    std::fs::write(d.join("user.gif"), encode(8, 8, image::ImageFormat::Gif)).unwrap();
    std::fs::write(d.join("g.safetensors"), safetensors("{}", &[])).unwrap();
    let cases = cases(&d);
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let before = snapshot(&root);
    let mut failures = vec![];
    for case in &cases {
        if let Some(why) = run_case(case, &home) {
            failures.push(format!("{}: {why}", case.name));
        }
        let after = snapshot(&root);
        if after != before {
            let changed: Vec<_> = after
                .keys()
                .chain(before.keys())
                .filter(|k| after.get(*k) != before.get(*k))
                .collect();
            failures.push(format!(
                "{}: files changed or left behind: {changed:?}",
                case.name
            ));
            // Put things back so the next case starts from the fixtures.
            for k in &changed {
                if !before.contains_key(*k) {
                    let _ = std::fs::remove_file(k).or_else(|_| std::fs::remove_dir_all(k));
                }
            }
        }
    }
    eprintln!("{} hostile cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    std::fs::remove_dir_all(&root).unwrap();
}
