//! TensorProto: dims, data type, `raw_data` or the typed repeated fields, checked against each
//! other (non-negative dims, product within `usize`, data length = product × element size).

use super::wire::Reader;
use super::{Tensor, TensorData, MAX_NDIM};
use crate::error::{Error, Result};

/// The fields of a TensorProto before they are checked against each other.
#[derive(Default)]
struct RawTensor<'a> {
    name: String,
    dims: Vec<i64>,
    data_type: i32,
    raw: Option<&'a [u8]>,
    floats: Vec<f32>,
    int32s: Vec<i64>,
    int64s: Vec<i64>,
    external: bool,
}

pub(super) fn parse_tensor(mut r: Reader<'_>) -> Result<Tensor> {
    const M: &str = "TensorProto";
    let offset = r.offset();
    let mut t = RawTensor::default();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => {
                f.push_varints(M, &mut t.dims)?;
                if t.dims.len() > MAX_NDIM {
                    return Err(Error::Onnx {
                        reason: format!("tensor with more than {MAX_NDIM} dims"),
                        offset: f.offset,
                    });
                }
            }
            2 => t.data_type = f.as_i32(M)?,
            4 => f.push_f32s(M, &mut t.floats)?,
            5 => f.push_varints(M, &mut t.int32s)?,
            7 => f.push_varints(M, &mut t.int64s)?,
            8 => t.name = f.as_string(M)?,
            9 => t.raw = Some(f.as_bytes(M)?.take_rest()),
            14 => t.external = f.as_varint(M)? == 1,
            _ => {}
        }
    }
    finish_tensor(t, offset)
}

fn finish_tensor(t: RawTensor<'_>, offset: u64) -> Result<Tensor> {
    let name = t.name;
    let err = |reason: String| Error::Onnx {
        reason: format!("tensor {name:?}: {reason}"),
        offset,
    };
    if t.external {
        return Err(err("data stored outside the file is not supported".into()));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut numel: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| err(format!("negative dimension {d}")))?;
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| err(format!("dims {:?} overflow", t.dims)))?;
        dims.push(d);
    }
    let elem = match t.data_type {
        1 | 6 => 4,
        3 => 1,
        7 => 8,
        other => {
            return Ok(Tensor {
                name,
                dims,
                data: TensorData::Other(other),
                offset,
            })
        }
    };
    let data = if let Some(raw) = t.raw {
        if numel.checked_mul(elem) != Some(raw.len()) {
            return Err(err(format!(
                "dims {dims:?} need {numel} × {elem} bytes, raw_data has {}",
                raw.len()
            )));
        }
        match t.data_type {
            1 => TensorData::F32(raw.chunks_exact(4).map(le_f32).collect()),
            3 => TensorData::I8(raw.iter().map(|&b| b as i8).collect()),
            6 => TensorData::I32(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            _ => TensorData::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
        }
    } else {
        let found = match t.data_type {
            1 => t.floats.len(),
            3 | 6 => t.int32s.len(),
            _ => t.int64s.len(),
        };
        if found != numel {
            return Err(err(format!(
                "dims {dims:?} need {numel} values, the typed field has {found}"
            )));
        }
        match t.data_type {
            1 => TensorData::F32(t.floats),
            3 => TensorData::I8(narrow(&t.int32s).map_err(|v| err(format!("{v} is not an int8")))?),
            6 => {
                TensorData::I32(narrow(&t.int32s).map_err(|v| err(format!("{v} is not an int32")))?)
            }
            _ => TensorData::I64(t.int64s),
        }
    };
    Ok(Tensor {
        name,
        dims,
        data,
        offset,
    })
}

fn le_f32(c: &[u8]) -> f32 {
    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
}

/// Converts each value to `T`, or returns the first that does not fit.
fn narrow<T: TryFrom<i64>>(v: &[i64]) -> std::result::Result<Vec<T>, i64> {
    v.iter().map(|&x| T::try_from(x).map_err(|_| x)).collect()
}
