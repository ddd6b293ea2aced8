use super::testutil::*;
use super::*;

#[test]
fn reads_a_small_model() {
    let m = parse(&tiny_model()).unwrap();
    assert_eq!(m.ir_version, 8);
    assert_eq!(m.producer, "nst-test");
    assert_eq!(m.opsets, vec![(String::new(), 15)]);
    let g = &m.graph;
    assert_eq!(
        (g.inputs.as_slice(), g.outputs.as_slice()),
        (&["x".to_string()][..], &["y".to_string()][..])
    );
    assert_eq!(g.nodes.len(), 3);
    let conv = &g.nodes[2];
    assert_eq!(
        (conv.op_type.as_str(), conv.name.as_str()),
        ("Conv", "conv")
    );
    assert_eq!(conv.inputs, ["x", "w_dq", "b_dq"]);
    assert_eq!(conv.outputs, ["y"]);
    assert_eq!(conv.ints_or("pads", &[0; 4]).unwrap(), [0, 0, 1, 1]);
    assert_eq!(conv.ints_or("dilations", &[1, 1]).unwrap(), [1, 1]);
    assert_eq!(conv.int_or("group", 7).unwrap(), 1);
    assert_eq!(conv.attr("alpha"), Some(&AttrValue::Float(0.5)));
    // A wrongly typed attribute is an error naming it.
    let e = conv.int_or("pads", 0).unwrap_err().to_string();
    assert!(e.contains("attribute pads is ints, expected int"), "{e}");

    let w = &g.initializers["w"];
    assert_eq!(w.dims, [2, 1, 3, 3]);
    assert_eq!(w.numel(), 18);
    let want: Vec<i8> = (0..18).map(|i| i as i8 - 9).collect();
    assert_eq!(w.data, TensorData::I8(want));
    assert_eq!(g.initializers["ws"].data, TensorData::F32(vec![0.5, 0.25]));
    assert_eq!(g.initializers["b"].data, TensorData::I32(vec![-4, 8]));
}

#[test]
fn typed_fields_scalars_and_other_types() {
    let inits = vec![
        // float_data packed, and one unpacked value after it.
        Msg::new()
            .packed_ints(1, &[3])
            .int(2, 1)
            .str(8, "f")
            .packed_f32(4, &[1.0, 2.0])
            .f32(4, 3.0),
        // int32_data holding int8 values (the ONNX way), dims unpacked.
        Msg::new()
            .int(1, 2)
            .int(2, 3)
            .str(8, "q")
            .packed_ints(5, &[-128, 127]),
        Msg::new()
            .int(1, 2)
            .int(2, 6)
            .str(8, "i32")
            .packed_ints(5, &[-5, 1 << 30]),
        Msg::new()
            .int(1, 1)
            .int(2, 7)
            .str(8, "i64")
            .int(7, -(1 << 40)),
        // A scalar (no dims): one value.
        Msg::new().int(2, 1).str(8, "s").f32(4, 6.5),
        // A data type the reader does not decode (double) is kept as its number.
        Msg::new()
            .int(1, 1)
            .int(2, 11)
            .str(8, "d")
            .bytes(9, &[0; 8]),
    ];
    let g = parse(&model(vec![], inits, &[], &[])).unwrap().graph;
    assert_eq!(
        g.initializers["f"].data,
        TensorData::F32(vec![1.0, 2.0, 3.0])
    );
    assert_eq!(g.initializers["q"].data, TensorData::I8(vec![-128, 127]));
    assert_eq!(
        g.initializers["i32"].data,
        TensorData::I32(vec![-5, 1 << 30])
    );
    assert_eq!(
        g.initializers["i64"].data,
        TensorData::I64(vec![-(1 << 40)])
    );
    assert_eq!(g.initializers["s"].dims, Vec::<usize>::new());
    assert_eq!(g.initializers["s"].data, TensorData::F32(vec![6.5]));
    assert_eq!(g.initializers["d"].data, TensorData::Other(11));
}

fn onnx_err(bytes: &[u8]) -> String {
    match parse(bytes) {
        Ok(m) => panic!("parsed: {m:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_truncation_is_an_error() {
    let full = tiny_model();
    assert!(parse(&full).is_ok());
    for n in 0..full.len() {
        // A cut inside a field leaves a length past the end; one between top-level fields
        // leaves a model without its graph or its opset (the writer puts the opset last).
        let e = onnx_err(&full[..n]);
        assert!(
            e.contains("truncated") || e.contains("no graph") || e.contains("no opset_import"),
            "cut at {n}: {e}"
        );
    }
}

#[test]
fn hostile_lengths_varints_and_wire_types() {
    // A length far past the end (and larger than any file): an error, no allocation.
    let mut b = vec![(7 << 3) | 2];
    varint(&mut b, u64::MAX >> 1);
    let e = onnx_err(&b);
    assert!(
        e.contains("truncated at byte 1") && e.contains("length-delimited"),
        "{e}"
    );
    // A truncated varint.
    let e = onnx_err(&[0x08, 0x80, 0x80]);
    assert!(e.contains("onnx varint: truncated at byte 1"), "{e}");
    // An over-long varint: 11 continuation bytes, and a 10th byte carrying bits past 64.
    let mut b = vec![0x08];
    b.extend([0xff; 11]);
    assert!(onnx_err(&b).contains("varint longer than 64 bits"));
    let mut b = vec![0x08];
    b.extend([0x80; 9]);
    b.push(0x02);
    assert!(onnx_err(&b).contains("varint longer than 64 bits"));
    // Field number 0 and group wire types.
    assert!(onnx_err(&[0x00]).contains("invalid field number 0"));
    assert!(onnx_err(&[0x0b]).contains("wire type 3"));
    // A known field with the wrong wire type: the graph as a varint.
    let e = onnx_err(&Msg::new().int(7, 5).0);
    assert!(
        e.contains("ModelProto field 7 has wire type 0, expected length-delimited"),
        "{e}"
    );
    // A name that is not UTF-8.
    let g = Msg::new().msg(1, Msg::new().bytes(3, &[0xff, 0xfe]));
    let e = onnx_err(&Msg::new().msg(7, g).0);
    assert!(e.contains("not UTF-8"), "{e}");
}

fn tensor_err(t: Msg) -> String {
    onnx_err(&model(vec![], vec![t], &[], &[]))
}

#[test]
fn dims_that_overflow_or_disagree_with_the_data() {
    let e = tensor_err(tensor_f32("big", &[1 << 62, 1 << 62], &[]));
    assert!(
        e.contains("tensor \"big\": dims") && e.contains("overflow"),
        "{e}"
    );
    let e = tensor_err(tensor_f32("neg", &[-1, 4], &[0.0; 4]));
    assert!(e.contains("negative dimension -1"), "{e}");
    let e = tensor_err(tensor_f32("short", &[2, 3], &[0.0; 5]));
    assert!(e.contains("need 6 × 4 bytes, raw_data has 20"), "{e}");
    let e = tensor_err(
        Msg::new()
            .packed_ints(1, &[4])
            .int(2, 1)
            .str(8, "typed")
            .packed_f32(4, &[1.0]),
    );
    assert!(e.contains("need 4 values, the typed field has 1"), "{e}");
    let e = tensor_err(
        Msg::new()
            .packed_ints(1, &[1])
            .int(2, 3)
            .str(8, "q")
            .packed_ints(5, &[300]),
    );
    assert!(e.contains("300 is not an int8"), "{e}");
    let e = tensor_err(Msg::new().packed_ints(1, &[1; 17]).int(2, 1).str(8, "deep"));
    assert!(e.contains("more than 16 dims"), "{e}");
    let e = tensor_err(Msg::new().int(2, 1).str(8, "odd").bytes(4, &[0; 6]));
    assert!(e.contains("not a multiple of 4"), "{e}");
    let e = tensor_err(tensor_f32("ext", &[1], &[0.0]).int(14, 1));
    assert!(e.contains("outside the file"), "{e}");
    // Two initializers with one name.
    let e = onnx_err(&model(
        vec![],
        vec![tensor_f32("a", &[1], &[0.0]), tensor_f32("a", &[1], &[1.0])],
        &[],
        &[],
    ));
    assert!(e.contains("initializer \"a\" given twice"), "{e}");
}

#[test]
fn unknown_fields_are_skipped_and_subgraphs_are_not_descended() {
    // Unknown fields of every wire type at every level.
    let extra = |m: Msg| {
        m.int(99, 1)
            .f32(98, 1.0)
            .bytes(97, b"junk")
            .msg(96, Msg::new().int(1, 2))
    };
    let n = extra(node(
        "Relu",
        "r",
        &["x"],
        &["y"],
        vec![extra(attr_int("k", 3))],
    ));
    let bytes = model(
        vec![n],
        vec![extra(tensor_f32("t", &[1], &[2.0]))],
        &["x"],
        &["y"],
    );
    let m = parse(&extra(Msg(bytes)).0).unwrap();
    assert_eq!(m.graph.nodes[0].attr("k"), Some(&AttrValue::Int(3)));
    assert_eq!(m.graph.initializers["t"].data, TensorData::F32(vec![2.0]));
    // A GRAPH attribute nested 10 000 deep: skipped unread (no recursion, no stack overflow).
    let mut inner = Msg::new();
    for _ in 0..10_000 {
        let n = node(
            "If",
            "",
            &[],
            &[],
            vec![Msg::new().str(1, "then_branch").int(20, 5).msg(6, inner)],
        );
        inner = Msg::new().msg(1, n);
    }
    let n = node(
        "If",
        "top",
        &[],
        &[],
        vec![Msg::new().str(1, "then_branch").int(20, 5).msg(6, inner)],
    );
    let m = parse(&model(vec![n], vec![], &[], &[])).unwrap();
    assert_eq!(m.graph.nodes.len(), 1);
    assert_eq!(
        m.graph.nodes[0].attr("then_branch"),
        Some(&AttrValue::Other(5))
    );
}

#[test]
fn attribute_errors() {
    let bad = |a: Msg| {
        onnx_err(&model(
            vec![node("X", "n", &[], &[], vec![a])],
            vec![],
            &[],
            &[],
        ))
    };
    assert!(bad(Msg::new().str(1, "k").int(3, 1)).contains("attribute \"k\" has no type"));
    assert!(bad(Msg::new().str(1, "k").int(20, 2)).contains("type int has no value"));
    assert!(
        bad(Msg::new().str(1, "k").int(20, 1).int(2, 1)).contains("wire type 0, expected fixed32")
    );
}

/// The fuzz target's ONNX seed is the tiny model (`NST_WRITE_SEEDS=1` rewrites it).
#[test]
fn fuzz_seed_is_the_tiny_model() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/tiny.onnx");
    if std::env::var_os("NST_WRITE_SEEDS").is_some() {
        std::fs::write(&path, tiny_model()).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        tiny_model(),
        "{}",
        path.display()
    );
}

/// A poor man's fuzz run (cargo-fuzz needs nightly): 20 000 random byte mutations of the tiny
/// model through the reader and the three networks' extraction; errors are fine, panics are not.
#[test]
fn random_mutations_never_panic() {
    let base = tiny_model();
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            match next() % 3 {
                0 => b[i] = next() as u8,
                1 => b[i] ^= 1 << (next() % 8),
                _ => b.insert(i, next() as u8),
            }
        }
        if let Ok(m) = parse(&b) {
            parsed += 1;
            for net in crate::fast::FastNet::ALL {
                assert!(crate::fast::convert::convert(&m, net, "", "").is_err());
            }
        }
    }
    assert!(parsed > 100, "{parsed}");
}
