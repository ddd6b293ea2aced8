//! Shared helpers for the workspace's tests: the PyTorch float64 reference cases
//! (tests/data/README.md), the public-domain test images of `assets/`, and the converted VGG-19
//! weights.
//!
//! The reference files and images are compiled into the test binaries (`include_bytes!`), so a
//! test reads nothing outside the repository it was built from, and a test binary copied
//! elsewhere still reads its own data.

use nst::engine::{ConvConfig, Tensor};
use nst::loss::Objective;
use nst::transfer::{objective_from_tensors, reference_config, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::VggWeights;
use safetensors::SafeTensors;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// One PyTorch float64 reference case made by tests/data/make_reference.py: inputs, VGG-19
/// features, Gram matrices, losses, the input gradient and three Adam steps, stored as f32.
pub struct Reference {
    /// The file's stem, e.g. `chelsea64x48_starry80x50_max`.
    pub name: &'static str,
    /// The VGG-19 pooling the values were computed with.
    pub pooling: Pooling,
    bytes: &'static [u8],
}

/// chelsea.png 64×48 × starry_night.jpg 80×50, max pooling.
pub const CHELSEA_MAX: Reference = Reference {
    name: "chelsea64x48_starry80x50_max",
    pooling: Pooling::Max,
    bytes: include_bytes!("../data/chelsea64x48_starry80x50_max.safetensors"),
};

/// rocket.jpg 57×43 × the_scream.jpg 70×53 (odd sizes: floor-mode pooling), average pooling.
pub const ROCKET_AVG: Reference = Reference {
    name: "rocket57x43_scream70x53_avg",
    pooling: Pooling::Avg,
    bytes: include_bytes!("../data/rocket57x43_scream70x53_avg.safetensors"),
};

/// The w2 and sliced-w losses' PyTorch float64 goldens (tests/data/make_loss_golden.py).
pub const LOSS_GOLDEN: &[u8] = include_bytes!("../data/loss_golden.safetensors");

/// Entry `key` of the safetensors `st` (named `file` in panics) as f64 values and its shape
/// (F32, F64 or U8 entries).
pub fn safetensor_f64(st: &SafeTensors, file: &str, key: &str) -> (Vec<f64>, Vec<usize>) {
    let t = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("{file} key {key}: {e}"));
    let v = match t.dtype() {
        safetensors::Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        safetensors::Dtype::U8 => t.data().iter().map(|&b| b as f64).collect(),
        d => panic!("{file} key {key}: unexpected dtype {d:?}"),
    };
    (v, t.shape().to_vec())
}

/// The MRF and guided style losses' golden values (tests/data/make_mrf_guided_golden.py):
/// feature maps made from assets/ images, no network (`pooling` is unused), stored as f64.
pub const MRF_GUIDED: Reference = Reference {
    name: "mrf_guided_golden",
    pooling: Pooling::Max,
    bytes: include_bytes!("../data/mrf_guided_golden.safetensors"),
};

/// Every reference case.
pub const REFERENCES: [Reference; 2] = [CHELSEA_MAX, ROCKET_AVG];

impl Reference {
    /// The parsed file.
    pub fn tensors(&self) -> SafeTensors<'static> {
        SafeTensors::deserialize(self.bytes)
            .unwrap_or_else(|e| panic!("reference {}: {e}", self.name))
    }

    /// The keys under `prefix.` (e.g. `content_features`), without the prefix, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .tensors()
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix(&format!("{prefix}.")).map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    /// Tensor `key` as f64 values and its shape (F32, F64 or U8 entries).
    pub fn tensor(&self, key: &str) -> (Vec<f64>, Vec<usize>) {
        safetensor_f64(&self.tensors(), self.name, key)
    }

    /// Tensor `key` as an f64 tensor of its shape.
    pub fn f64(&self, key: &str) -> Tensor {
        let (v, shape) = self.tensor(key);
        Tensor::from_vec(v, &shape).unwrap()
    }

    /// Tensor `key` as an f32 tensor of its shape.
    pub fn f32(&self, key: &str) -> Tensor {
        let (v, shape) = self.tensor(key);
        Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), &shape).unwrap()
    }

    /// VGG-19 with this case's pooling.
    pub fn vgg(&self, w: &VggWeights) -> Arc<Vgg19> {
        Arc::new(Vgg19::new(w, self.pooling).unwrap())
    }

    /// The reference objective (content relu4_2 ×1, Gram style relu1_1…relu5_1 ×1e-2 each,
    /// TV ×10) on this case's content and style inputs, built by the same library code the
    /// transfer loop uses.
    pub fn objective(&self, vgg: Arc<Vgg19>) -> Objective {
        self.objective_with(vgg, ConvConfig::default())
    }

    /// [`Reference::objective`] with the convolutions run as `conv` says.
    pub fn objective_with(&self, vgg: Arc<Vgg19>, conv: ConvConfig) -> Objective {
        let content = self.f32("content_input");
        let style = self.f32("style_input");
        let cfg = StyleTransferConfig {
            conv,
            ..reference_config()
        };
        objective_from_tensors(vgg, &content, &[style], &[1.0], &cfg).unwrap()
    }
}

/// The public-domain images of `assets/` that tests use, embedded.
const ASSETS: [(&str, &[u8]); 5] = [
    ("chelsea.png", include_bytes!("../../assets/chelsea.png")),
    (
        "starry_night.jpg",
        include_bytes!("../../assets/starry_night.jpg"),
    ),
    (
        "the_scream.jpg",
        include_bytes!("../../assets/the_scream.jpg"),
    ),
    (
        "shipwreck.jpg",
        include_bytes!("../../assets/shipwreck.jpg"),
    ),
    ("rocket.jpg", include_bytes!("../../assets/rocket.jpg")),
];

/// The bytes of `assets/NAME` (one of chelsea.png, starry_night.jpg, the_scream.jpg,
/// shipwreck.jpg, rocket.jpg).
pub fn asset_bytes(name: &str) -> &'static [u8] {
    ASSETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no embedded asset {name}"))
        .1
}

/// A file holding `assets/NAME`, for tests that pass paths (to nst-cli or the image loader):
/// the embedded copy written once per process to a temporary directory. The directories of
/// earlier test processes that have ended are removed first (on Linux, where `/proc` tells).
pub fn asset_path(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        remove_ended_asset_dirs();
        let d = std::env::temp_dir().join(format!("nst-test-assets-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (n, bytes) in ASSETS {
            std::fs::write(d.join(n), bytes).unwrap();
        }
        d
    });
    let p = dir.join(name);
    assert!(p.exists(), "no embedded asset {name}");
    p
}

/// Removes `nst-test-assets-PID` directories whose process no longer runs (a process cannot
/// remove its own at exit), so repeated test runs do not fill the temporary directory.
fn remove_ended_asset_dirs() {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("nst-test-assets-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The converted VGG-19 weights from the cache. In CI (env `CI` set) a missing file fails the
/// test; elsewhere it returns None after printing how to fetch them.
pub fn weights_or_skip() -> Option<VggWeights> {
    let path = nst::weights::default_weights_path().expect("no cache directory: set NST_HOME");
    if !path.exists() {
        let msg = format!(
            "VGG-19 weights missing at {}: run `nst-cli weights fetch`",
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

/// A converted feed-forward network's weights from the cache (`nst-cli weights fetch`), through
/// `load` (e.g. `Multistyle26Weights::load`). In CI a missing file fails the test; elsewhere it
/// returns None after printing how to fetch them.
pub fn fast_weights_or_skip<W>(
    net: nst::fast::FastNet,
    load: impl FnOnce(&std::path::Path) -> nst::Result<W>,
) -> Option<W> {
    let dir = nst::weights::weights_cache_dir().expect("no cache directory: set NST_HOME");
    let path = dir.join(net.file_name());
    if !path.exists() {
        let msg = format!(
            "{} weights missing at {}: run `nst-cli weights fetch`",
            net.name(),
            path.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return None;
    }
    Some(load(&path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display())))
}
