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
            Error::Checkpoint(format!("storage {key:?} is listed but no tensor uses it"))
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
    let mut out: BTreeMap<String, TensorRef> = BTreeMap::new();
    for (k, v) in pairs {
        let (Some(name), Value::Tensor(t)) = (p.as_str(*k), p.get(*v)) else {
            continue;
        };
        out.insert(name.to_string(), t.clone());
    }
    Ok(out.into_iter().collect())
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
mod tests {
    use super::*;
    use crate::weights::testutil::{legacy_file, zip_checkpoint, Entry, PickleWriter};

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry::new(
                "a.weight",
                DType::F32,
                &[2, 3],
                f32_bytes(&[1., 2., 3., 4., 5., 6.]),
            ),
            Entry::new("a.q", DType::U8, &[4], vec![9, 8, 7, 6]),
        ]
    }

    #[test]
    fn legacy_round_trip() {
        let bytes = legacy_file(&entries());
        let m = read_legacy(&bytes, &|_| true).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["a.weight"].shape, vec![2, 3]);
        assert_eq!(m["a.weight"].data, f32_bytes(&[1., 2., 3., 4., 5., 6.]));
        assert_eq!(m["a.q"].data, vec![9, 8, 7, 6]);
        let only = read_legacy(&bytes, &|n| n == "a.q").unwrap();
        assert_eq!(only.keys().collect::<Vec<_>>(), ["a.q"]);
    }

    #[test]
    fn zip_round_trip_and_strided_views() {
        let bytes = zip_checkpoint(&entries(), "archive");
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let m = read_zip(&mut z, &|_| true).unwrap();
        assert_eq!(m["a.weight"].data, f32_bytes(&[1., 2., 3., 4., 5., 6.]));

        // A transposed view (stride 1, 3) of a 6-element storage, offset 0 → 3×2.
        let t = TensorRef {
            storage: crate::weights::pickle::StorageRef {
                key: "0".into(),
                dtype: DType::F32,
                numel: 6,
            },
            offset: 0,
            shape: vec![3, 2],
            stride: vec![1, 3],
        };
        let r = materialise("t", &t, &f32_bytes(&[1., 2., 3., 4., 5., 6.])).unwrap();
        assert_eq!(r.data, f32_bytes(&[1., 4., 2., 5., 3., 6.]));
    }

    #[test]
    fn views_past_the_storage_are_errors() {
        let storage = f32_bytes(&[0.; 6]);
        let mk = |offset, shape: Vec<usize>, stride| TensorRef {
            storage: crate::weights::pickle::StorageRef {
                key: "0".into(),
                dtype: DType::F32,
                numel: 6,
            },
            offset,
            shape,
            stride,
        };
        for (t, needle) in [
            (mk(1, vec![2, 3], vec![3, 1]), "reach element 6"),
            (mk(0, vec![7], vec![1]), "only 6"),
            (mk(0, vec![3], vec![usize::MAX]), "overflow"),
            (mk(0, vec![2], vec![usize::MAX]), "past the storage"),
            (mk(0, vec![1 << 20, 1 << 20], vec![0, 0]), "only 6"),
            (mk(0, vec![usize::MAX, 3], vec![0, 0]), "overflows"),
        ] {
            let e = materialise("w", &t, &storage).unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
            assert!(e.to_string().contains("`w`"), "{e}");
        }
    }

    #[test]
    fn legacy_truncated_at_every_region() {
        let bytes = legacy_file(&entries());
        for cut in [
            0,
            5,
            14,
            15,
            20,
            136,
            bytes.len() / 2,
            bytes.len() - 30,
            bytes.len() - 9,
            bytes.len() - 1,
        ] {
            let e = read_legacy(&bytes[..cut], &|_| true).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Truncated { .. } | Error::Pickle { .. } | Error::Checkpoint(_)
                ),
                "cut {cut}: {e}"
            );
        }
    }

    #[test]
    fn legacy_storage_size_past_the_end() {
        let mut bytes = legacy_file(&entries());
        // The last storage is "1" (u8 × 4): its count sits 12 bytes from the end. Claim 2^40.
        let at = bytes.len() - 12;
        assert_eq!(bytes[at..at + 8], 4u64.to_le_bytes());
        bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let e = read_legacy(&bytes, &|_| true).unwrap_err();
        assert!(
            e.to_string().contains("holds 1099511627776 elements"),
            "{e}"
        );
        // The pickle and the stream agree on a huge count: the data runs past the end.
        let huge =
            vec![Entry::new("x", DType::F32, &[2], f32_bytes(&[1., 2.])).with_numel(u64::MAX / 2)];
        let bytes = legacy_file(&huge);
        let e = read_legacy(&bytes, &|_| true).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
        let huge =
            vec![Entry::new("x", DType::F32, &[2], f32_bytes(&[1., 2.])).with_numel(1 << 50)];
        let e = read_legacy(&legacy_file(&huge), &|_| true).unwrap_err();
        assert!(
            matches!(e, Error::Truncated { needed, .. } if needed == 4 << 50),
            "{e}"
        );
    }

    #[test]
    fn legacy_wrong_magic_and_endianness() {
        let mut bytes = legacy_file(&entries());
        bytes[4] ^= 1;
        let e = read_legacy(&bytes, &|_| true).unwrap_err();
        assert!(e.to_string().contains("magic"), "{e}");
        let mut w = PickleWriter::new();
        w.bytes.extend_from_slice(&LEGACY_PREFIX);
        w.proto().int(1001).stop();
        w.proto()
            .op(b'}')
            .unicode("little_endian")
            .op(0x89)
            .op(b's')
            .stop();
        let e = read_legacy(&w.bytes, &|_| true).unwrap_err();
        assert!(e.to_string().contains("big-endian"), "{e}");
    }

    #[test]
    fn zip_hostile_variants() {
        // Storage entry shorter than declared.
        let mut es = entries();
        es[0] = es[0].clone().with_numel(60);
        let bytes = zip_checkpoint(&es, "archive");
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let e = read_zip(&mut z, &|_| true).unwrap_err();
        assert!(e.to_string().contains("declares 240"), "{e}");
        // Missing data.pkl.
        let bytes =
            crate::weights::testutil::zip_of(&[("archive/data/0", b"abcd".to_vec(), false)]);
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert!(read_zip(&mut z, &|_| true)
            .unwrap_err()
            .to_string()
            .contains("no data.pkl"));
        // Compressed storage.
        let pkl = crate::weights::testutil::state_dict_pickle(&entries()[1..], false);
        let bytes = crate::weights::testutil::zip_of(&[
            ("archive/data.pkl", pkl, false),
            ("archive/data/0", vec![1, 2, 3, 4], true),
        ]);
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let e = read_zip(&mut z, &|_| true).unwrap_err();
        assert!(e.to_string().contains("compressed"), "{e}");
        // Big-endian byteorder.
        let pkl = crate::weights::testutil::state_dict_pickle(&entries()[1..], false);
        let bytes = crate::weights::testutil::zip_of(&[
            ("archive/data.pkl", pkl, false),
            ("archive/byteorder", b"big".to_vec(), false),
            ("archive/data/0", vec![1, 2, 3, 4], false),
        ]);
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert!(read_zip(&mut z, &|_| true)
            .unwrap_err()
            .to_string()
            .contains("byteorder"));
    }

    #[test]
    fn nested_state_dict_is_found() {
        let inner = crate::weights::testutil::state_dict_pickle(&entries(), true);
        // {"epoch": 3, "state_dict": <inner>} — splice the inner dict (minus its STOP) in.
        let mut w = PickleWriter::new();
        w.proto()
            .op(b'}')
            .mark()
            .unicode("epoch")
            .int(3)
            .unicode("state_dict");
        w.raw(&inner[2..inner.len() - 1]).op(b'u').stop();
        let p = Pickle::parse(&w.bytes, 0).unwrap();
        let refs = tensor_refs(&p).unwrap();
        let names: Vec<_> = refs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.q", "a.weight"]);
    }
}
