//! `vgg19.safetensors`: our 32 f32 tensors (OIHW) with `__metadata__`
//! `{format: "nst-vgg19", format_version: "1", preprocessing: "caffe"|"torch", source, layout: "OIHW"}`;
//! also reading foreign safetensors files (torchvision/timm `features.N` names).

use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::pickle::DType;
use super::torch::{RawTensor, TensorMap};
use super::{from_tensor_map, Preprocessing, VggWeights, WeightTensor};
use crate::error::{Error, Result};

/// `__metadata__["format"]` of our files.
pub const FORMAT: &str = "nst-vgg19";
/// `__metadata__["format_version"]` written (and the only one read).
pub const FORMAT_VERSION: &str = "1";

/// Serialises validated weights to safetensors bytes (see the module docs for the metadata).
/// The output is deterministic: header keys sorted, tensors in key order, header padded with
/// spaces to a multiple of 8 bytes (so the f32 data is aligned), as the format specifies.
pub fn to_bytes(w: &VggWeights) -> Result<Vec<u8>> {
    w.validate()?;
    let meta: BTreeMap<&str, &str> = [
        ("format", FORMAT),
        ("format_version", FORMAT_VERSION),
        ("preprocessing", w.preprocessing.as_str()),
        ("source", w.source.as_str()),
        ("layout", "OIHW"),
    ]
    .into_iter()
    .collect();
    tensors_to_bytes(&meta, &w.tensors)
}

/// Serialises f32 tensors with `meta` as `__metadata__`: header keys sorted, tensors in key
/// order, header padded with spaces to a multiple of 8 bytes (so the data is aligned).
pub fn tensors_to_bytes(
    meta: &BTreeMap<&str, &str>,
    tensors: &BTreeMap<String, WeightTensor>,
) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(meta));
    let mut offset = 0usize;
    for (key, t) in tensors {
        let end = offset + t.data.len() * 4;
        header.insert(
            key.clone(),
            serde_json::json!({ "dtype": "F32", "shape": t.shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    // Keys are inserted in sorted order (metadata first), so the JSON is the same with or
    // without serde_json's `preserve_order`.
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::Safetensors(e.to_string()))?;
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for t in tensors.values() {
        for x in &t.data {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(out)
}

/// Validates `w` and writes it to `path` atomically (see [`write_atomic`]).
pub fn write(w: &VggWeights, path: &Path) -> Result<()> {
    let bytes = to_bytes(w)?;
    write_atomic(path, |f| f.write_all(&bytes))
}

/// Reads and validates a safetensors file (ours, or foreign with torchvision/timm names).
pub fn read(path: &Path) -> Result<VggWeights> {
    let bytes = crate::fsutil::read_regular_file(path)?;
    let name = path.display().to_string();
    from_bytes(&bytes, &name, None)
}

/// Reads weights from safetensors bytes. A file with our `format` metadata must carry
/// `format_version` 1, a `preprocessing` and our key names; other files go through
/// [`from_tensor_map`] (so torchvision/timm names work; `preprocessing` overrides the default).
pub fn from_bytes(
    bytes: &[u8],
    name: &str,
    preprocessing: Option<Preprocessing>,
) -> Result<VggWeights> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::Safetensors(format!("{name}: {e}")))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Safetensors(format!("{name}: {e}")))?;
    let meta = metadata.metadata().clone().unwrap_or_default();

    let mut map = TensorMap::new();
    for (key, view) in st.iter() {
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F64 => DType::F64,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::U8 => DType::U8,
            Dtype::I64 => DType::I64,
            other => {
                return Err(Error::Dtype {
                    key: key.to_string(),
                    found: format!("{other:?}"),
                    expected: "a float type (f32, f64, f16, bf16)".into(),
                })
            }
        };
        map.insert(
            key.to_string(),
            RawTensor {
                dtype,
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            },
        );
    }

    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return from_tensor_map(map, preprocessing, &format!("safetensors {name}"));
    }
    let version = meta
        .get("format_version")
        .map(String::as_str)
        .unwrap_or("<none>");
    if version != FORMAT_VERSION {
        return Err(Error::Safetensors(format!(
            "{name}: format_version {version:?}, this build reads {FORMAT_VERSION:?}"
        )));
    }
    let recorded = meta
        .get("preprocessing")
        .ok_or_else(|| Error::Safetensors(format!("{name}: no `preprocessing` in the metadata")))?
        .parse::<Preprocessing>()?;
    let mut w = from_tensor_map(map, Some(preprocessing.unwrap_or(recorded)), name)?;
    if let Some(source) = meta.get("source") {
        w.source = source.clone();
    }
    Ok(w)
}

/// [`crate::fsutil::write_atomic`], creating the directory first.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::fsutil::write_atomic(path, fill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::testutil::{synthetic_vgg, TempDir};

    #[test]
    fn round_trip_keeps_values_metadata_and_shapes() {
        let dir = TempDir::new("st-rt");
        let w = synthetic_vgg(Preprocessing::Caffe);
        let path = dir.path().join("vgg19.safetensors");
        write(&w, &path).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back, w);
        let bytes = std::fs::read(&path).unwrap();
        let (_, m) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = m.metadata().clone().unwrap();
        assert_eq!(m["format"], "nst-vgg19");
        assert_eq!(m["format_version"], "1");
        assert_eq!(m["preprocessing"], "caffe");
        assert_eq!(m["source"], "synthetic");
        // Deterministic: the same weights give the same bytes.
        assert_eq!(bytes, to_bytes(&w).unwrap());
        // Nothing else left in the directory (no temp files).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Overwriting works too.
        let w2 = synthetic_vgg(Preprocessing::Torch);
        write(&w2, &path).unwrap();
        assert_eq!(read(&path).unwrap().preprocessing, Preprocessing::Torch);
    }

    #[test]
    fn refuses_to_write_invalid_weights() {
        let dir = TempDir::new("st-invalid");
        let mut w = synthetic_vgg(Preprocessing::Caffe);
        w.tensors.get_mut("conv3_2.weight").unwrap().shape = vec![256, 128, 3, 3];
        let path = dir.path().join("vgg19.safetensors");
        let e = write(&w, &path).unwrap_err();
        assert!(e.to_string().contains("conv3_2.weight"), "{e}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn interrupted_write_leaves_no_file_and_keeps_the_old_one() {
        let dir = TempDir::new("st-atomic");
        let path = dir.path().join("out.bin");
        let e = write_atomic(&path, |f| {
            f.write_all(b"half of it")?;
            Err(std::io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        std::fs::write(&path, b"old").unwrap();
        write_atomic(&path, |_| Err(std::io::Error::other("again"))).unwrap_err();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn metadata_errors() {
        let w = synthetic_vgg(Preprocessing::Torch);
        let good = to_bytes(&w).unwrap();
        let st = SafeTensors::deserialize(&good).unwrap();
        let tensors: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
        let with_meta = |pairs: &[(&str, &str)]| {
            let meta: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            safetensors::serialize(tensors.clone(), Some(meta)).unwrap()
        };
        let b = with_meta(&[
            ("format", "nst-vgg19"),
            ("format_version", "2"),
            ("preprocessing", "torch"),
        ]);
        assert!(from_bytes(&b, "x", None)
            .unwrap_err()
            .to_string()
            .contains("format_version \"2\""));
        let b = with_meta(&[("format", "nst-vgg19"), ("format_version", "1")]);
        assert!(from_bytes(&b, "x", None)
            .unwrap_err()
            .to_string()
            .contains("no `preprocessing`"));
        let b = with_meta(&[
            ("format", "nst-vgg19"),
            ("format_version", "1"),
            ("preprocessing", "bgr"),
        ]);
        assert!(from_bytes(&b, "x", None)
            .unwrap_err()
            .to_string()
            .contains("\"bgr\""));
        // Our names without our metadata: needs a preprocessing from the caller.
        let b = safetensors::serialize(tensors.clone(), None).unwrap();
        assert!(from_bytes(&b, "x", None)
            .unwrap_err()
            .to_string()
            .contains("no preprocessing recorded"));
        let back = from_bytes(&b, "x", Some(Preprocessing::Torch)).unwrap();
        assert_eq!(back.tensors, w.tensors);
    }

    #[test]
    fn foreign_torchvision_names_and_dtypes() {
        let w = synthetic_vgg(Preprocessing::Torch);
        let entries = crate::weights::testutil::torchvision_entries(&w);
        // conv weights as f16 (exactly representable values are not needed: compare to rounding).
        let f16_bytes: HashMap<String, Vec<u8>> = entries
            .iter()
            .map(|e| {
                let b = e
                    .data
                    .chunks_exact(4)
                    .flat_map(|c| {
                        half::f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()
                    })
                    .collect();
                (e.name.clone(), b)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = entries
            .iter()
            .map(|e| {
                let v = safetensors::tensor::TensorView::new(
                    Dtype::F16,
                    e.shape.clone(),
                    &f16_bytes[&e.name],
                )
                .unwrap();
                (e.name.clone(), v)
            })
            .chain(std::iter::once((
                "head.fc.bias".to_string(),
                safetensors::tensor::TensorView::new(Dtype::F32, vec![1], &[0, 0, 0, 0]).unwrap(),
            )))
            .collect();
        let bytes = safetensors::serialize(views, None).unwrap();
        assert_eq!(
            crate::weights::detect_format(&bytes),
            Some(crate::weights::WeightsFormat::Safetensors)
        );
        let back = crate::weights::import_bytes(&bytes, "timm.safetensors", None).unwrap();
        assert_eq!(back.preprocessing, Preprocessing::Torch);
        assert!(back.source.contains("timm.safetensors"), "{}", back.source);
        let (a, b) = (
            &back.tensors["conv4_2.weight"].data,
            &w.tensors["conv4_2.weight"].data,
        );
        assert!(a
            .iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-3 * y.abs().max(1e-2)));

        // An integer conv weight is a dtype error naming the key.
        let views = vec![(
            "features.0.weight".to_string(),
            safetensors::tensor::TensorView::new(Dtype::I64, vec![1], &[0; 8]).unwrap(),
        )];
        let bytes = safetensors::serialize(views, None).unwrap();
        let e = crate::weights::import_bytes(&bytes, "x", None).unwrap_err();
        assert!(
            matches!(&e, Error::Dtype { key, found, .. } if key == "features.0.weight" && found == "i64"),
            "{e}"
        );
    }
}
