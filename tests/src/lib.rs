//! Shared helpers for the workspace integration tests in tests/tests/: the PyTorch float64
//! reference (../shared/reference) and the converted VGG-19 weights.

use nst::engine::Tensor;
use nst::loss::Objective;
use nst::transfer::{objective_from_tensors, reference_config};
use nst::vgg19::Vgg19;
use nst::weights::VggWeights;
use std::path::PathBuf;
use std::sync::Arc;

/// `../shared/reference` beside the checkout.
pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")
}

/// The reference file's bytes (tests parse it with `safetensors`).
pub fn reference_bytes() -> Vec<u8> {
    let p = reference_dir().join("tubingen64x48_starry80x50_max.safetensors");
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Reference tensor `key` as f64 values and its shape (F64 or U8 entries).
pub fn reference_tensor(st: &safetensors::SafeTensors, key: &str) -> (Vec<f64>, Vec<usize>) {
    let t = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("reference key {key}: {e}"));
    let v = match t.dtype() {
        safetensors::Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        safetensors::Dtype::U8 => t.data().iter().map(|&b| b as f64).collect(),
        d => panic!("reference key {key}: unexpected dtype {d:?}"),
    };
    (v, t.shape().to_vec())
}

/// The converted VGG-19 weights from the cache. In CI (env `CI` set) a missing file fails the
/// test; elsewhere it returns None after printing how to fetch them.
pub fn weights_or_skip() -> Option<VggWeights> {
    let path = nst::weights::default_weights_path().expect("no cache directory: set NST_HOME");
    if !path.exists() {
        let msg = format!(
            "VGG-19 weights missing at {}: run `cargo run --release -p nst-cli -- weights fetch`",
            path.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return None;
    }
    Some(VggWeights::load(&path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display())))
}

/// Reference tensor `key` as an f32 tensor of its shape.
pub fn reference_f32(st: &safetensors::SafeTensors, key: &str) -> Tensor {
    let (v, shape) = reference_tensor(st, key);
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), &shape).unwrap()
}

/// The reference objective (content relu4_2 ×1, Gram style relu1_1…relu5_1 ×1e-2 each, TV ×10)
/// on the reference content and style inputs, built by the same library code the transfer
/// loop uses.
pub fn reference_objective(vgg: Arc<Vgg19>, st: &safetensors::SafeTensors) -> Objective {
    let content = reference_f32(st, "content_input");
    let style = reference_f32(st, "style_input");
    objective_from_tensors(vgg, &content, &[style], &[1.0], &reference_config()).unwrap()
}
