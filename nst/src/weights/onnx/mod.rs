//! A reader for the part of ONNX (`onnx.proto3`, IR version 8) that the feed-forward style
//! networks' files use: the model's opsets, the graph's initializers (TensorProto), nodes
//! (op type, inputs, outputs, name, attributes) and the names of its inputs and outputs.
//! Anything else (value infos, doc strings, metadata, functions, sparse initializers, subgraph
//! attributes) is skipped unread.
//!
//! Hostile input gives an error naming the byte offset, never a panic: every length is checked
//! against the bytes left ([`Error::Truncated`]), varints are at most 10 bytes, wire types must
//! match the schema, dims must be non-negative with a product that fits in `usize` and agrees
//! with the data length ([`Error::Onnx`]). Every value read consumes at least one input byte, so
//! memory stays proportional to the file. The reader descends only along the fixed path
//! Model → Graph → Node → Attribute → Tensor (subgraphs are not parsed), so nesting depth is at
//! most five whatever the input.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

mod tensor;
pub mod wire;
use tensor::parse_tensor;
use wire::Reader;

/// Most dimensions a tensor may have.
pub const MAX_NDIM: usize = 16;

/// An ONNX model: its opsets and its graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// `ir_version`.
    pub ir_version: i64,
    /// `producer_name` (e.g. "pytorch", "tf2onnx").
    pub producer: String,
    /// `(domain, version)` of each `opset_import` ("" is the default ONNX domain).
    pub opsets: Vec<(String, i64)>,
    /// The main graph.
    pub graph: Graph,
}

/// A graph: initializers by name, nodes in file (topological) order, input/output names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// `name`.
    pub name: String,
    /// The nodes in file order.
    pub nodes: Vec<Node>,
    /// The initializers, by name. A name given twice is an error.
    pub initializers: BTreeMap<String, Tensor>,
    /// Names of the graph inputs (`input[*].name`).
    pub inputs: Vec<String>,
    /// Names of the graph outputs.
    pub outputs: Vec<String>,
}

/// One node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// `name` (may be empty).
    pub name: String,
    /// `op_type`, e.g. "Conv", "DequantizeLinear".
    pub op_type: String,
    /// `domain` ("" for ONNX).
    pub domain: String,
    /// Input value names ("" for an omitted optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Attributes in file order.
    pub attributes: Vec<Attribute>,
    /// Offset of the node's message in the file, for errors.
    pub offset: u64,
}

impl Node {
    /// The attribute called `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }

    /// The `ints` attribute `name`, or `default` when absent; another type is an error.
    pub fn ints_or(&self, name: &str, default: &[i64]) -> Result<Vec<i64>> {
        match self.attr(name) {
            None => Ok(default.to_vec()),
            Some(AttrValue::Ints(v)) => Ok(v.clone()),
            Some(other) => Err(self.attr_type_error(name, "ints", other)),
        }
    }

    /// The `int` attribute `name`, or `default` when absent; another type is an error.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        match self.attr(name) {
            None => Ok(default),
            Some(AttrValue::Int(v)) => Ok(*v),
            Some(other) => Err(self.attr_type_error(name, "int", other)),
        }
    }

    fn attr_type_error(&self, name: &str, expected: &str, found: &AttrValue) -> Error {
        Error::Onnx {
            reason: format!(
                "node {:?} ({}): attribute {name} is {}, expected {expected}",
                self.name,
                self.op_type,
                found.kind()
            ),
            offset: self.offset,
        }
    }
}

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// `name`.
    pub name: String,
    /// The value, chosen by the attribute's `type`.
    pub value: AttrValue,
}

/// An attribute's value. Only the types the style networks use are read; the others are kept as
/// their `AttributeType` number.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// FLOAT (1).
    Float(f32),
    /// INT (2).
    Int(i64),
    /// STRING (3), as bytes.
    String(Vec<u8>),
    /// TENSOR (4), e.g. a `Constant` node's value.
    Tensor(Tensor),
    /// FLOATS (6).
    Floats(Vec<f32>),
    /// INTS (7).
    Ints(Vec<i64>),
    /// Any other type (GRAPH, STRINGS, TENSORS, …), not read.
    Other(i32),
}

impl AttrValue {
    /// The ONNX name of the type ("int", "ints", …).
    pub fn kind(&self) -> String {
        match self {
            AttrValue::Float(_) => "float".into(),
            AttrValue::Int(_) => "int".into(),
            AttrValue::String(_) => "string".into(),
            AttrValue::Tensor(_) => "tensor".into(),
            AttrValue::Floats(_) => "floats".into(),
            AttrValue::Ints(_) => "ints".into(),
            AttrValue::Other(t) => format!("type {t}"),
        }
    }
}

/// A tensor's values, by `TensorProto.DataType`.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// FLOAT (1).
    F32(Vec<f32>),
    /// INT8 (3).
    I8(Vec<i8>),
    /// INT32 (6).
    I32(Vec<i32>),
    /// INT64 (7).
    I64(Vec<i64>),
    /// Another data type (its number), values not read.
    Other(i32),
}

impl TensorData {
    /// The ONNX name of the element type.
    pub fn type_name(&self) -> String {
        match self {
            TensorData::F32(_) => "float32".into(),
            TensorData::I8(_) => "int8".into(),
            TensorData::I32(_) => "int32".into(),
            TensorData::I64(_) => "int64".into(),
            TensorData::Other(t) => format!("data type {t}"),
        }
    }
}

/// An initializer or constant: name, dims (row-major) and values (`dims.iter().product()` of
/// them, checked; a tensor with no dims is a scalar holding one value).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// `name`.
    pub name: String,
    /// `dims`.
    pub dims: Vec<usize>,
    /// The values.
    pub data: TensorData,
    /// Offset of the tensor's message in the file, for errors.
    pub offset: u64,
}

impl Tensor {
    /// Number of elements: the product of `dims` (1 for a scalar).
    pub fn numel(&self) -> usize {
        // Checked when the tensor was read.
        self.dims.iter().product()
    }
}

/// Parses an ONNX model file. Errors: [`Error::Truncated`] and [`Error::Onnx`] naming the byte
/// offset; a file without a graph or without an `opset_import` is an error (so a model cut
/// short between its top-level fields does not pass for a smaller one).
pub fn parse(data: &[u8]) -> Result<Model> {
    let mut r = Reader::new(data);
    let mut m = Model::default();
    let mut graph = None;
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => m.ir_version = f.as_i64("ModelProto")?,
            2 => m.producer = f.as_string("ModelProto")?,
            7 => graph = Some(parse_graph(f.as_bytes("ModelProto")?)?),
            8 => m.opsets.push(parse_opset(f.as_bytes("ModelProto")?)?),
            _ => {}
        }
    }
    m.graph = graph.ok_or_else(|| Error::Onnx {
        reason: "no graph in the model (not an ONNX file?)".into(),
        offset: 0,
    })?;
    if m.opsets.is_empty() {
        return Err(Error::Onnx {
            reason: "no opset_import in the model".into(),
            offset: data.len() as u64,
        });
    }
    Ok(m)
}

fn parse_opset(mut r: Reader<'_>) -> Result<(String, i64)> {
    let (mut domain, mut version) = (String::new(), 0);
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => domain = f.as_string("OperatorSetIdProto")?,
            2 => version = f.as_i64("OperatorSetIdProto")?,
            _ => {}
        }
    }
    Ok((domain, version))
}

fn parse_graph(mut r: Reader<'_>) -> Result<Graph> {
    let mut g = Graph::default();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => g.nodes.push(parse_node(f.as_bytes("GraphProto")?)?),
            2 => g.name = f.as_string("GraphProto")?,
            5 => {
                let t = parse_tensor(f.as_bytes("GraphProto")?)?;
                if g.initializers.contains_key(&t.name) {
                    return Err(Error::Onnx {
                        reason: format!("initializer {:?} given twice", t.name),
                        offset: f.offset,
                    });
                }
                g.initializers.insert(t.name.clone(), t);
            }
            11 => g.inputs.push(value_info_name(f.as_bytes("GraphProto")?)?),
            12 => g.outputs.push(value_info_name(f.as_bytes("GraphProto")?)?),
            _ => {}
        }
    }
    Ok(g)
}

fn value_info_name(mut r: Reader<'_>) -> Result<String> {
    let mut name = String::new();
    while let Some(f) = r.next_field()? {
        if f.number == 1 {
            name = f.as_string("ValueInfoProto")?;
        }
    }
    Ok(name)
}

fn parse_node(mut r: Reader<'_>) -> Result<Node> {
    let mut n = Node {
        offset: r.offset(),
        ..Node::default()
    };
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => n.inputs.push(f.as_string("NodeProto")?),
            2 => n.outputs.push(f.as_string("NodeProto")?),
            3 => n.name = f.as_string("NodeProto")?,
            4 => n.op_type = f.as_string("NodeProto")?,
            5 => n
                .attributes
                .push(parse_attribute(f.as_bytes("NodeProto")?)?),
            7 => n.domain = f.as_string("NodeProto")?,
            _ => {}
        }
    }
    Ok(n)
}

/// What an AttributeProto may hold; `type` picks one at the end.
#[derive(Default)]
struct RawAttr {
    f: Option<f32>,
    i: Option<i64>,
    s: Option<Vec<u8>>,
    t: Option<Tensor>,
    floats: Vec<f32>,
    ints: Vec<i64>,
}

fn parse_attribute(mut r: Reader<'_>) -> Result<Attribute> {
    const M: &str = "AttributeProto";
    let offset = r.offset();
    let mut name = String::new();
    let mut ty = None;
    let mut raw = RawAttr::default();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => name = f.as_string(M)?,
            2 => raw.f = Some(f.as_f32(M)?),
            3 => raw.i = Some(f.as_i64(M)?),
            4 => raw.s = Some(f.as_bytes(M)?.take_rest().to_vec()),
            5 => raw.t = Some(parse_tensor(f.as_bytes(M)?)?),
            7 => f.push_f32s(M, &mut raw.floats)?,
            8 => f.push_varints(M, &mut raw.ints)?,
            20 => ty = Some(f.as_i32(M)?),
            _ => {}
        }
    }
    let missing = |what: &str| Error::Onnx {
        reason: format!("attribute {name:?} of type {what} has no value"),
        offset,
    };
    let value = match ty {
        Some(1) => AttrValue::Float(raw.f.ok_or_else(|| missing("float"))?),
        Some(2) => AttrValue::Int(raw.i.ok_or_else(|| missing("int"))?),
        Some(3) => AttrValue::String(raw.s.ok_or_else(|| missing("string"))?),
        Some(4) => AttrValue::Tensor(raw.t.ok_or_else(|| missing("tensor"))?),
        Some(6) => AttrValue::Floats(raw.floats),
        Some(7) => AttrValue::Ints(raw.ints),
        Some(t) => AttrValue::Other(t),
        None => {
            return Err(Error::Onnx {
                reason: format!("attribute {name:?} has no type"),
                offset,
            })
        }
    };
    Ok(Attribute { name, value })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
