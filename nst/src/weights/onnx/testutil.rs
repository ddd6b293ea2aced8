//! A tiny protobuf/ONNX writer for tests: builds the messages [`super::parse`] reads.

/// Appends a base-128 varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A message under construction (fields appended in call order).
#[derive(Debug, Clone, Default)]
pub struct Msg(pub Vec<u8>);

impl Msg {
    pub fn new() -> Self {
        Msg(Vec::new())
    }
    fn tag(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }
    /// A varint field (int32/int64/enum; negative values as 64-bit two's complement).
    pub fn int(mut self, field: u32, v: i64) -> Self {
        self.tag(field, 0);
        varint(&mut self.0, v as u64);
        self
    }
    /// A length-delimited field.
    pub fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.tag(field, 2);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    pub fn msg(self, field: u32, m: Msg) -> Self {
        self.bytes(field, &m.0)
    }
    /// A fixed32 field holding a float.
    pub fn f32(mut self, field: u32, v: f32) -> Self {
        self.tag(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A packed repeated varint field.
    pub fn packed_ints(self, field: u32, v: &[i64]) -> Self {
        let mut b = Vec::new();
        for &x in v {
            varint(&mut b, x as u64);
        }
        self.bytes(field, &b)
    }
    /// A packed repeated float field.
    pub fn packed_f32(self, field: u32, v: &[f32]) -> Self {
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.bytes(field, &b)
    }
}

/// TensorProto with `raw_data`: data type 1 (f32).
pub fn tensor_f32(name: &str, dims: &[i64], v: &[f32]) -> Msg {
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Msg::new()
        .packed_ints(1, dims)
        .int(2, 1)
        .str(8, name)
        .bytes(9, &raw)
}

/// TensorProto with `raw_data`: data type 3 (int8).
pub fn tensor_i8(name: &str, dims: &[i64], v: &[i8]) -> Msg {
    let raw: Vec<u8> = v.iter().map(|&x| x as u8).collect();
    Msg::new()
        .packed_ints(1, dims)
        .int(2, 3)
        .str(8, name)
        .bytes(9, &raw)
}

/// TensorProto with `raw_data`: data type 6 (int32).
pub fn tensor_i32(name: &str, dims: &[i64], v: &[i32]) -> Msg {
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Msg::new()
        .packed_ints(1, dims)
        .int(2, 6)
        .str(8, name)
        .bytes(9, &raw)
}

/// An INTS attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> Msg {
    Msg::new().str(1, name).int(20, 7).packed_ints(8, v)
}

/// An INT attribute.
pub fn attr_int(name: &str, v: i64) -> Msg {
    Msg::new().str(1, name).int(20, 2).int(3, v)
}

/// A NodeProto.
pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Msg>) -> Msg {
    let mut m = Msg::new();
    for i in inputs {
        m = m.str(1, i);
    }
    for o in outputs {
        m = m.str(2, o);
    }
    m = m.str(3, name).str(4, op);
    for a in attrs {
        m = m.msg(5, a);
    }
    m
}

/// A ModelProto (ir_version 8, opset 15) around a graph of `nodes` and `inits`.
pub fn model(nodes: Vec<Msg>, inits: Vec<Msg>, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
    let mut g = Msg::new();
    for n in nodes {
        g = g.msg(1, n);
    }
    g = g.str(2, "g");
    for t in inits {
        g = g.msg(5, t);
    }
    for i in inputs {
        g = g.msg(11, Msg::new().str(1, i));
    }
    for o in outputs {
        g = g.msg(12, Msg::new().str(1, o));
    }
    Msg::new()
        .int(1, 8)
        .str(2, "nst-test")
        .msg(7, g)
        .msg(8, Msg::new().str(1, "").int(2, 15))
        .0
}

/// A small quantised conv model: x → Conv(DQ(w int8 [2,1,3,3] × s [2]), DQ(b int32 × s)) → y,
/// with a float initializer, stride 2, TF SAME pads (0,0,1,1) and group 1. Used by the reader's
/// tests and as the fuzz seed.
pub fn tiny_model() -> Vec<u8> {
    let w: Vec<i8> = (0..18).map(|i| i as i8 - 9).collect();
    model(
        vec![
            node(
                "DequantizeLinear",
                "dq_w",
                &["w", "ws", "wz"],
                &["w_dq"],
                vec![attr_int("axis", 0)],
            ),
            node(
                "DequantizeLinear",
                "dq_b",
                &["b", "bs", "bz"],
                &["b_dq"],
                vec![attr_int("axis", 0)],
            ),
            node(
                "Conv",
                "conv",
                &["x", "w_dq", "b_dq"],
                &["y"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("strides", &[2, 2]),
                    attr_ints("pads", &[0, 0, 1, 1]),
                    attr_int("group", 1),
                    Msg::new().str(1, "alpha").int(20, 1).f32(2, 0.5),
                ],
            ),
        ],
        vec![
            tensor_i8("w", &[2, 1, 3, 3], &w),
            tensor_f32("ws", &[2], &[0.5, 0.25]),
            tensor_i8("wz", &[2], &[0, 0]),
            tensor_i32("b", &[2], &[-4, 8]),
            tensor_f32("bs", &[2], &[0.125, 0.125]),
            tensor_i32("bz", &[2], &[0, 0]),
        ],
        &["x"],
        &["y"],
    )
}
