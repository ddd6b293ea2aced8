//! PyTorch checkpoints without PyTorch: the legacy (pre-1.6, non-zip) stream and the zip format,
//! read through the safe [`pickle`](super::pickle) reader into plain little-endian tensors.
//!
//! Legacy stream (`torch.save(..., _use_new_zipfile_serialization=False)`): five pickles in a
//! row — magic number `0x1950a86a20f9469cfc6c`, protocol version 1001, sys_info (endianness),
//! the object (persistent ids name storages), the list of storage keys — then, for each key in
//! that order, an 8-byte little-endian element count followed by the raw elements.
//!
//! Zip format: `<prefix>/data.pkl` is the object pickle, `<prefix>/data/<key>` each storage's raw
//! bytes (stored uncompressed, as `torch.save` always writes them), `<prefix>/byteorder` says
//! `little` when present.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

use super::pickle::{DType, Id, Pickle, TensorRef, Value};
use crate::error::{Error, Result};

/// The magic number that opens a legacy PyTorch stream.
pub const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The protocol version pickled after the magic number.
pub const LEGACY_PROTOCOL: i128 = 1001;
/// The first 14 bytes of every legacy stream: PROTO 2, LONG1 10 bytes of [`LEGACY_MAGIC`], STOP.
pub const LEGACY_PREFIX: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
];
/// Largest pickle (`data.pkl`) read from a zip checkpoint.
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// A tensor read out of a checkpoint: contiguous (row-major), little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// `shape.iter().product() * dtype.size()` bytes.
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Tensors by name, as found in a checkpoint.
pub type TensorMap = BTreeMap<String, RawTensor>;

/// Reads a legacy (non-zip) checkpoint held in memory. Only tensors whose name passes `want`
/// are copied out. Errors name the pickle opcode, the storage or the tensor at fault.
pub fn read_legacy(bytes: &[u8], want: &dyn Fn(&str) -> bool) -> Result<TensorMap> {
    let magic = Pickle::parse(bytes, 0)?;
    if *magic.get(magic.root) != Value::Int(LEGACY_MAGIC) {
        return Err(Error::Checkpoint(
            "not a legacy PyTorch file (wrong magic number)".into(),
        ));
    }
    let proto = Pickle::parse(bytes, magic.end)?;
    if *proto.get(proto.root) != Value::Int(LEGACY_PROTOCOL) {
        return Err(Error::Checkpoint(format!(
            "legacy protocol version {:?}, expected {LEGACY_PROTOCOL}",
            proto.get(proto.root)
        )));
    }
    let sys_info = Pickle::parse(bytes, proto.end)?;
    if let Some(Value::Bool(false)) = dict_get(&sys_info, sys_info.root, "little_endian") {
        return Err(Error::Checkpoint(
            "big-endian checkpoint (unsupported)".into(),
        ));
    }
    let main = Pickle::parse(bytes, sys_info.end)?;
    let keys = Pickle::parse(bytes, main.end)?;
    let Value::List(key_ids) = keys.get(keys.root) else {
        return Err(Error::Checkpoint(format!(
            "storage key list is a {}",
            keys.get(keys.root).kind()
        )));
    };

    let tensors = tensor_refs(&main)?;
    let dtypes = storage_dtypes(&tensors)?;

    // Storages follow the key list, in its order: u64 element count, then the elements.
    let mut pos = keys.end;
    let mut storages: HashMap<&str, &[u8]> = HashMap::new();
    for &kid in key_ids {
        let key = keys
            .as_str(kid)
            .ok_or_else(|| Error::Checkpoint("storage key is not a str".into()))?;
        let (dtype, declared) = *dtypes.get(key).ok_or_else(|| {
            let short: String = key.chars().take(64).collect();
            Error::Checkpoint(format!("storage {short:?} is listed but no tensor uses it"))
        })?;
        let count = u64::from_le_bytes(
            slice_at(bytes, pos, 8, &format!("storage {key} size"))?
                .try_into()
                .expect("8 bytes"),
        );
        if count != declared {
            return Err(Error::Checkpoint(format!(
                "storage {key:?} holds {count} elements, the pickle declares {declared}"
            )));
        }
        let nbytes = count.checked_mul(dtype.size() as u64).ok_or_else(|| {
            Error::Checkpoint(format!("storage {key:?}: {count} elements overflow"))
        })?;
        let data = slice_at(bytes, pos + 8, nbytes, &format!("storage {key}"))?;
        if storages.insert(key, data).is_some() {
            return Err(Error::Checkpoint(format!("storage {key:?} listed twice")));
        }
        pos += 8 + nbytes as usize;
    }

    let mut out = TensorMap::new();
    for (name, t) in tensors {
        if !want(&name) {
            continue;
        }
        let storage = storages.get(t.storage.key.as_str()).ok_or_else(|| {
            Error::Checkpoint(format!(
                "tensor `{name}`: storage {:?} is not in the file",
                t.storage.key
            ))
        })?;
        out.insert(name.clone(), materialise(&name, &t, storage)?);
    }
    Ok(out)
}

/// Reads a zip checkpoint (`torch.save` since PyTorch 1.6). Only tensors whose name passes
/// `want` are read. Storage entries must be stored uncompressed and exactly as large as their
/// pickle declares, so nothing larger than the archive is ever allocated.
pub fn read_zip<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    want: &dyn Fn(&str) -> bool,
) -> Result<TensorMap> {
    let pkl_name = find_data_pkl(zip)?;
    let prefix = pkl_name
        .strip_suffix("data.pkl")
        .expect("found by suffix")
        .to_string();
    if let Some(order) = read_small_entry(zip, &format!("{prefix}byteorder"))? {
        if order.trim_ascii() != b"little" {
            return Err(Error::Checkpoint(format!(
                "byteorder {:?} (only little-endian is supported)",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let pkl = read_entry(zip, &pkl_name, MAX_PICKLE_BYTES, None)?;
    let main = Pickle::parse(&pkl, 0)?;
    let tensors = tensor_refs(&main)?;
    let dtypes = storage_dtypes(&tensors)?;

    let mut cache: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = TensorMap::new();
    for (name, t) in &tensors {
        if !want(name) {
            continue;
        }
        let key = &t.storage.key;
        if !cache.contains_key(key) {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Error::Checkpoint(format!(
                    "storage key {key:?} is not a plain name"
                )));
            }
            let (dtype, numel) = dtypes[key.as_str()];
            let nbytes = numel.checked_mul(dtype.size() as u64).ok_or_else(|| {
                Error::Checkpoint(format!("storage {key:?}: {numel} elements overflow"))
            })?;
            let data = read_entry(zip, &format!("{prefix}data/{key}"), nbytes, Some(nbytes))?;
            cache.insert(key.clone(), data);
        }
        out.insert(name.clone(), materialise(name, t, &cache[key])?);
    }
    Ok(out)
}

/// The `.../data.pkl` entry of a zip checkpoint (exactly one, one folder deep at most).
pub fn find_data_pkl<R: Read + Seek>(zip: &zip::ZipArchive<R>) -> Result<String> {
    let mut found = None;
    for name in zip.file_names() {
        let name = name.map_err(|e| Error::Zip(e.to_string()))?;
        let depth = name.matches('/').count();
        if (name == "data.pkl" || name.ends_with("/data.pkl")) && depth <= 1 {
            if found.is_some() {
                return Err(Error::Checkpoint(
                    "more than one data.pkl in the archive".into(),
                ));
            }
            found = Some(name.to_string());
        }
    }
    found.ok_or_else(|| Error::Checkpoint("no data.pkl in the archive".into()))
}

/// Reads one zip entry, at most `limit` bytes (more is an error); `exact` also demands that size.
pub(crate) fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
    exact: Option<u64>,
) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| Error::Zip(format!("entry {name:?}: {e}")))?;
    if exact.is_some() && f.compression() != zip::CompressionMethod::Stored {
        return Err(Error::Checkpoint(format!(
            "entry {name:?} is compressed ({}); torch.save stores storages uncompressed",
            f.compression()
        )));
    }
    if let Some(n) = exact {
        if f.size() != n {
            return Err(Error::Checkpoint(format!(
                "entry {name:?} holds {} bytes, the pickle declares {n}",
                f.size()
            )));
        }
    }
    let mut buf = Vec::new();
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Zip(format!("entry {name:?}: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Error::Checkpoint(format!(
            "entry {name:?} is larger than {limit} bytes"
        )));
    }
    if let Some(n) = exact {
        if buf.len() as u64 != n {
            return Err(Error::Truncated {
                what: format!("zip entry {name}"),
                offset: 0,
                needed: n,
                available: buf.len() as u64,
            });
        }
    }
    Ok(buf)
}

fn read_small_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    if zip.index_for_name(name).is_none() {
        return Ok(None);
    }
    read_entry(zip, name, 64, None).map(Some)
}

fn slice_at<'a>(bytes: &'a [u8], pos: usize, n: u64, what: &str) -> Result<&'a [u8]> {
    let available = bytes.len().saturating_sub(pos) as u64;
    if n > available {
        return Err(Error::Truncated {
            what: what.to_string(),
            offset: pos as u64,
            needed: n,
            available,
        });
    }
    Ok(&bytes[pos..pos + n as usize])
}

fn dict_get<'p>(p: &'p Pickle, dict: Id, key: &str) -> Option<&'p Value> {
    let Value::Dict(pairs) = p.get(dict) else {
        return None;
    };
    pairs
        .iter()
        .rev()
        .find(|(k, _)| p.as_str(*k) == Some(key))
        .map(|(_, v)| p.get(*v))
}

/// The tensors of a state dict: the root dict's tensor values (or those of its `state_dict` /
/// `model` entry when the root is a training checkpoint). Non-tensor values are skipped.
fn tensor_refs(p: &Pickle) -> Result<Vec<(String, TensorRef)>> {
    let mut dict = p.root;
    for nested in ["state_dict", "model"] {
        if let Value::Dict(pairs) = p.get(dict) {
            if let Some((_, v)) = pairs.iter().find(|(k, _)| p.as_str(*k) == Some(nested)) {
                if matches!(p.get(*v), Value::Dict(_)) {
                    dict = *v;
                }
            }
        }
    }
    let Value::Dict(pairs) = p.get(dict) else {
        return Err(Error::Checkpoint(format!(
            "the checkpoint holds a {}, not a dict of tensors",
            p.get(dict).kind()
        )));
    };
    // Borrow first, copy once: a name repeated in many pairs (later wins) costs nothing extra.
    let mut out: BTreeMap<&str, &TensorRef> = BTreeMap::new();
    for (k, v) in pairs {
        let (Some(name), Value::Tensor(t)) = (p.as_str(*k), p.get(*v)) else {
            continue;
        };
        out.insert(name, t);
    }
    Ok(out
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect())
}

/// Each storage key's dtype and declared element count; the same key must agree everywhere.
fn storage_dtypes(tensors: &[(String, TensorRef)]) -> Result<HashMap<&str, (DType, u64)>> {
    let mut m: HashMap<&str, (DType, u64)> = HashMap::new();
    for (name, t) in tensors {
        let s = &t.storage;
        match m.get(s.key.as_str()) {
            Some(&prev) if prev != (s.dtype, s.numel) => {
                return Err(Error::Checkpoint(format!(
                    "tensor `{name}`: storage {:?} is {} × {} here but {} × {} elsewhere",
                    s.key,
                    s.numel,
                    s.dtype.name(),
                    prev.1,
                    prev.0.name()
                )))
            }
            _ => {
                m.insert(&s.key, (s.dtype, s.numel));
            }
        }
    }
    Ok(m)
}

/// Copies a (possibly strided) tensor view out of its storage bytes, every index bounds-checked.
fn materialise(name: &str, t: &TensorRef, storage: &[u8]) -> Result<RawTensor> {
    let es = t.storage.dtype.size();
    let storage_numel = (storage.len() / es) as u64;
    let oob = |detail: String| Error::Checkpoint(format!("tensor `{name}`: {detail}"));
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| oob(format!("shape {:?} overflows", t.shape)))?;
    if numel > storage_numel {
        return Err(oob(format!(
            "shape {:?} has {numel} elements, its storage only {storage_numel}",
            t.shape
        )));
    }
    let mut data = Vec::with_capacity(numel as usize * es);
    if numel > 0 {
        // Largest element index touched: offset + Σ (size_k − 1)·stride_k.
        let mut last = t.offset;
        for (&d, &s) in t.shape.iter().zip(&t.stride) {
            last = (d as u64 - 1)
                .checked_mul(s as u64)
                .and_then(|x| x.checked_add(last))
                .ok_or_else(|| oob("strides overflow".into()))?;
        }
        if last >= storage_numel {
            return Err(oob(format!(
                "offset {} size {:?} stride {:?} reach element {last}, past the storage's {storage_numel}",
                t.offset, t.shape, t.stride
            )));
        }
        let contiguous = contiguous_strides(&t.shape);
        if t.stride == contiguous || t.shape.len() <= 1 && t.stride.first() == Some(&1) {
            let start = t.offset as usize * es;
            data.extend_from_slice(&storage[start..start + numel as usize * es]);
        } else {
            let mut index = vec![0usize; t.shape.len()];
            for _ in 0..numel {
                let e = t.offset as usize
                    + index
                        .iter()
                        .zip(&t.stride)
                        .map(|(i, s)| i * s)
                        .sum::<usize>();
                data.extend_from_slice(&storage[e * es..(e + 1) * es]);
                for k in (0..index.len()).rev() {
                    index[k] += 1;
                    if index[k] < t.shape[k] {
                        break;
                    }
                    index[k] = 0;
                }
            }
        }
    }
    Ok(RawTensor {
        dtype: t.storage.dtype,
        shape: t.shape.clone(),
        data,
    })
}

/// Row-major strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

#[cfg(test)]
mod tests;
