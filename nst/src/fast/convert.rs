//! ONNX → [`FastWeights`]: finds each layer of the architecture table in the parsed graph by
//! following node inputs (conv node → its weight and bias inputs → float initializers, or
//! `DequantizeLinear` of int8/int32 initializers), dequantises once (`q × scale[c]` per output
//! channel; every zero point must be 0), and checks the conv's attributes and shapes against the
//! table. Names identify only the conv weights (`ConvSpec::source`); biases are whatever the
//! conv node reads (some zero biases share one tensor in the predictor and transformer).

use std::collections::HashMap;

use super::arch::{ConvSpec, Norm, N_STYLES, STYLE_DIM};
use super::weights::{FastNet, FastWeights};
use crate::error::{Error, Result};
use crate::weights::onnx::{Graph, Model, Node, Tensor, TensorData};
use crate::weights::WeightTensor;

/// Converts a parsed ONNX model into `net`'s weights (validated). `source` and `source_sha256`
/// are recorded as given. Errors: [`Error::NetworkWeights`] naming the layer, node or
/// initializer that is missing or disagrees with the architecture table.
pub fn convert(
    model: &Model,
    net: FastNet,
    source: &str,
    source_sha256: &str,
) -> Result<FastWeights> {
    let g = Lookup::new(&model.graph, net);
    let mut tensors = std::collections::BTreeMap::new();
    for spec in net.layers() {
        let n = &spec.name;
        let conv = g.conv_for(&spec.source)?;
        g.check_conv(conv, spec)?;
        let w = g.value(&conv.inputs[1], &spec.weight_shape())?;
        tensors.insert(format!("{n}.w"), w);
        let bias = conv.inputs.get(2).filter(|b| !b.is_empty());
        match (spec.bias, bias) {
            (true, Some(b)) => {
                tensors.insert(format!("{n}.b"), g.value(b, &[spec.out_channels])?);
            }
            (false, None) => {}
            (want, _) => {
                return Err(g.err(format!(
                    "conv {:?} (layer {n}) {} a bias, the architecture table says {}",
                    conv.name,
                    if want { "has no" } else { "has" },
                    if want { "it has one" } else { "none" }
                )))
            }
        }
        let c = spec.out_channels;
        match spec.norm {
            Norm::None => {}
            Norm::Conditional => {
                for p in ["gamma", "beta"] {
                    let key = format!("{n}.norm.{p}");
                    tensors.insert(key.clone(), g.value(&key, &[N_STYLES, c])?);
                }
            }
            Norm::Style => {
                // γ comes from the `Conv_1` projection, β from `Conv` (1×1 convs on 1×1×100).
                for (p, which) in [("gamma", "Conv_1"), ("beta", "Conv")] {
                    let src = format!("{}/{which}/weights", spec.norm_source);
                    let proj = g.conv_for(&src)?;
                    let mut w = g.value(&proj.inputs[1], &[c, STYLE_DIM, 1, 1])?;
                    w.shape = vec![c, STYLE_DIM];
                    tensors.insert(format!("{n}.norm.{p}.w"), w);
                    let b = proj
                        .inputs
                        .get(2)
                        .filter(|b| !b.is_empty())
                        .ok_or_else(|| {
                            g.err(format!("StyleNorm projection {:?} has no bias", proj.name))
                        })?;
                    tensors.insert(format!("{n}.norm.{p}.b"), g.value(b, &[c])?);
                }
            }
        }
    }
    let w = FastWeights {
        net,
        tensors,
        source: source.to_string(),
        source_sha256: source_sha256.to_string(),
    };
    w.validate()?;
    Ok(w)
}

/// The graph with its value producers and conv nodes indexed.
struct Lookup<'a> {
    g: &'a Graph,
    net: FastNet,
    /// Output value name → the node producing it.
    producer: HashMap<&'a str, &'a Node>,
    /// Name of the initializer behind a conv's weight → that conv node.
    conv_by_weight: HashMap<&'a str, &'a Node>,
}

impl<'a> Lookup<'a> {
    fn new(g: &'a Graph, net: FastNet) -> Self {
        let producer: HashMap<&str, &Node> = g
            .nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n)))
            .collect();
        let mut conv_by_weight = HashMap::new();
        for n in g.nodes.iter().filter(|n| n.op_type == "Conv") {
            let Some(w) = n.inputs.get(1) else { continue };
            let src = match producer.get(w.as_str()) {
                Some(p) if p.op_type == "DequantizeLinear" && !p.inputs.is_empty() => {
                    p.inputs[0].as_str()
                }
                _ => w.as_str(),
            };
            conv_by_weight.insert(src, n);
        }
        Lookup {
            g,
            net,
            producer,
            conv_by_weight,
        }
    }

    fn err(&self, reason: String) -> Error {
        Error::NetworkWeights {
            net: self.net.name().into(),
            reason,
        }
    }

    /// The conv node whose weight comes from initializer `source`.
    fn conv_for(&self, source: &str) -> Result<&'a Node> {
        self.conv_by_weight
            .get(source)
            .copied()
            .ok_or_else(|| self.err(format!("no Conv node reads the weight {source:?}")))
    }

    /// Checks kernel, stride, groups, dilation and the conv's own pads against the table.
    fn check_conv(&self, n: &Node, spec: &ConvSpec) -> Result<()> {
        let k = spec.kernel as i64;
        let s = spec.stride as i64;
        let checks: [(&str, Vec<i64>, Vec<i64>); 5] = [
            (
                "kernel_shape",
                n.ints_or("kernel_shape", &[k, k])?,
                vec![k, k],
            ),
            ("strides", n.ints_or("strides", &[1, 1])?, vec![s, s]),
            ("dilations", n.ints_or("dilations", &[1, 1])?, vec![1, 1]),
            (
                "pads",
                n.ints_or("pads", &[0; 4])?,
                spec.pad.onnx_pads().to_vec(),
            ),
            (
                "group",
                vec![n.int_or("group", 1)?],
                vec![spec.groups as i64],
            ),
        ];
        for (attr, found, want) in checks {
            if found != want {
                return Err(self.err(format!(
                    "conv {:?} (layer {}): {attr} {found:?}, the architecture table says {want:?}",
                    n.name, spec.name
                )));
            }
        }
        if n.inputs.len() < 2 {
            return Err(self.err(format!("conv {:?} has no weight input", n.name)));
        }
        Ok(())
    }

    fn initializer(&self, name: &str) -> Result<&'a Tensor> {
        self.g
            .initializers
            .get(name)
            .ok_or_else(|| self.err(format!("no initializer {name:?}")))
    }

    /// The f32 value of graph value `name` (an f32 initializer, or a DequantizeLinear of an
    /// int8/int32 initializer), which must have shape `shape`.
    fn value(&self, name: &str, shape: &[usize]) -> Result<WeightTensor> {
        let t = match self.producer.get(name) {
            Some(n) if n.op_type == "DequantizeLinear" => self.dequantise(n)?,
            Some(n) => {
                return Err(self.err(format!(
                "value {name:?} comes from a {} node, expected an initializer or DequantizeLinear",
                n.op_type
            )))
            }
            None => {
                let t = self.initializer(name)?;
                match &t.data {
                    TensorData::F32(v) => WeightTensor {
                        shape: t.dims.clone(),
                        data: v.clone(),
                    },
                    other => {
                        return Err(self.err(format!(
                            "initializer {name:?} is {}, expected float32",
                            other.type_name()
                        )))
                    }
                }
            }
        };
        if t.shape != shape {
            return Err(self.err(format!(
                "value {name:?} has shape {:?}, the architecture table needs {shape:?}",
                t.shape
            )));
        }
        Ok(t)
    }

    /// `x × scale` (per tensor, or per channel along `axis`) for a DequantizeLinear node whose
    /// inputs are initializers; the zero point (if any) must be all zeros.
    fn dequantise(&self, n: &Node) -> Result<WeightTensor> {
        let input = |i: usize| -> Result<&'a Tensor> {
            let name = n.inputs.get(i).filter(|s| !s.is_empty()).ok_or_else(|| {
                self.err(format!("DequantizeLinear {:?} lacks input {i}", n.name))
            })?;
            self.initializer(name)
        };
        let x = input(0)?;
        let scale = match &input(1)?.data {
            TensorData::F32(v) => v,
            other => {
                return Err(self.err(format!(
                    "DequantizeLinear {:?}: scale is {}, expected float32",
                    n.name,
                    other.type_name()
                )))
            }
        };
        if n.inputs.get(2).is_some_and(|z| !z.is_empty()) {
            let zero = match &input(2)?.data {
                TensorData::I8(v) => v.iter().all(|&z| z == 0),
                TensorData::I32(v) => v.iter().all(|&z| z == 0),
                _ => false,
            };
            if !zero {
                return Err(self.err(format!(
                    "DequantizeLinear {:?}: zero point is not int8/int32 zeros",
                    n.name
                )));
            }
        }
        let q: Vec<f32> = match &x.data {
            TensorData::I8(v) => v.iter().map(|&q| f32::from(q)).collect(),
            TensorData::I32(v) => v.iter().map(|&q| q as f32).collect(),
            other => {
                return Err(self.err(format!(
                    "DequantizeLinear {:?}: input {:?} is {}, expected int8 or int32",
                    n.name,
                    x.name,
                    other.type_name()
                )))
            }
        };
        let ndim = x.dims.len() as i64;
        let axis = n.int_or("axis", 1)?;
        let axis = if axis < 0 { axis + ndim } else { axis };
        let data = if scale.len() == 1 {
            q.iter().map(|v| v * scale[0]).collect()
        } else {
            let ok_axis = (0..ndim).contains(&axis);
            let channels = if ok_axis { x.dims[axis as usize] } else { 0 };
            if !ok_axis || scale.len() != channels {
                return Err(self.err(format!(
                    "DequantizeLinear {:?}: {} scales for axis {axis} of dims {:?}",
                    n.name,
                    scale.len(),
                    x.dims
                )));
            }
            let inner: usize = x.dims[axis as usize + 1..].iter().product();
            q.iter()
                .enumerate()
                .map(|(i, v)| v * scale[(i / inner.max(1)) % channels])
                .collect()
        };
        Ok(WeightTensor {
            shape: x.dims.clone(),
            data,
        })
    }
}
