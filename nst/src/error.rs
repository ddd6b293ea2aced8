//! The `nst` crate's error type: one enum, each variant naming what failed and where.

use std::path::PathBuf;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the `nst` library returns. Messages name the file, key, offset or shapes involved,
/// so that the CLI can print one clear line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed. (The I/O error is part of the message, not a separate
    /// `source`, so a printed chain names the cause once.)
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },

    /// The input ended (or a declared length runs) past the end of the data.
    #[error("{what}: truncated at byte {offset}: needs {needed} bytes, {available} left")]
    Truncated {
        /// What was being read (e.g. "pickle BINUNICODE", "storage 42").
        what: String,
        /// Byte offset where the read started.
        offset: u64,
        /// Bytes the format says follow.
        needed: u64,
        /// Bytes actually left.
        available: u64,
    },

    /// A pickle opcode outside the small subset that weight files use.
    #[error("pickle: unsupported opcode 0x{opcode:02x} ({}) at byte {offset}", opcode_label(*opcode))]
    PickleOpcode {
        /// The opcode byte.
        opcode: u8,
        /// Its offset in the input.
        offset: u64,
    },

    /// A pickle GLOBAL outside the whitelist (never imported or called).
    #[error("pickle: global `{module}.{name}` at byte {offset} is not allowed (only tensor-rebuilding globals are)")]
    PickleGlobal {
        /// The module named by the pickle.
        module: String,
        /// The attribute named by the pickle.
        name: String,
        /// Offset of the GLOBAL opcode.
        offset: u64,
    },

    /// A pickle that is well-formed byte-wise but not what a weights file contains
    /// (wrong argument types, a limit exceeded, a dangling memo reference, ...).
    #[error("pickle: {reason} (at byte {offset})")]
    Pickle {
        /// What is wrong.
        reason: String,
        /// Offset of the opcode that failed.
        offset: u64,
    },

    /// An ONNX file that is well-formed byte-wise up to `offset` but not what the reader
    /// accepts there (bad varint, wrong wire type, dims that disagree with the data, …).
    #[error("onnx: {reason} (at byte {offset})")]
    Onnx {
        /// What is wrong.
        reason: String,
        /// Offset of the field or message that failed.
        offset: u64,
    },

    /// A PyTorch checkpoint whose framing is wrong: bad magic, missing storage, sizes that disagree.
    #[error("checkpoint: {0}")]
    Checkpoint(String),

    /// A tensor with an element type the converter cannot use there.
    #[error("tensor `{key}` has dtype {found}, expected {expected}")]
    Dtype {
        /// Tensor name in the source file.
        key: String,
        /// Its dtype.
        found: String,
        /// What was expected.
        expected: String,
    },

    /// A VGG-19 tensor that the file lacks.
    #[error("weights: missing tensor `{key}`")]
    MissingWeight {
        /// Our key (`conv1_1.weight`) or the source file's key.
        key: String,
    },

    /// A tensor whose shape is not VGG-19's.
    #[error("weights: `{key}` has shape {found:?}, VGG-19 needs {expected:?}")]
    WeightShape {
        /// The tensor's key.
        key: String,
        /// VGG-19's shape (OIHW for weights, O for biases).
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },

    /// A tensor holding NaN or ±∞.
    #[error("weights: `{key}` holds a non-finite value at element {index}")]
    NonFinite {
        /// The tensor's key.
        key: String,
        /// Flat index of the first bad element.
        index: usize,
    },

    /// A file whose content matches none of the supported weight formats, or whose tensors are
    /// named in no scheme we know.
    #[error("{what}: {reason}")]
    UnknownFormat {
        /// The file (or "input").
        what: String,
        /// What was seen.
        reason: String,
    },

    /// A tensor that VGG-19's 16 conv layers do not have.
    #[error("weights: unexpected tensor `{key}` (VGG-19 has conv1_1.weight … conv5_4.bias only)")]
    UnexpectedWeight {
        /// Its key.
        key: String,
    },

    /// Weights of a feed-forward style network (`nst::fast`) that do not fit its architecture
    /// table: a tensor missing, extra, of the wrong shape or non-finite, or an ONNX graph whose
    /// layers disagree with the table.
    #[error("{net} weights: {reason}")]
    NetworkWeights {
        /// The network (`multistyle26`, `arbitrary_predict`, `arbitrary_transform`).
        net: String,
        /// What is wrong, naming the tensor or node.
        reason: String,
    },

    /// A safetensors file the `safetensors` crate rejects, or whose metadata is wrong.
    #[error("safetensors: {0}")]
    Safetensors(String),

    /// A zip archive (wheel or zip checkpoint) that cannot be read.
    #[error("zip: {0}")]
    Zip(String),

    /// A download whose SHA-256 is not the pinned one.
    #[error("sha256 of {what} is {found}, expected {expected}")]
    Checksum {
        /// What was hashed.
        what: String,
        /// The pinned digest.
        expected: String,
        /// The digest found.
        found: String,
    },

    /// Downloading the weights failed (for nst-cli: python3 or pip missing, no network, no wheel).
    #[error("fetch: {0}")]
    Fetch(String),

    /// A tensor op failed (the engine's error names the op and shapes).
    #[error(transparent)]
    Engine(#[from] engine::EngineError),

    /// A layer past the end of a [`crate::vgg19::Vgg19::truncated`] network.
    #[error("VGG-19 layer {name} was cut off when the network was loaded (its last conv is {last}); load it without `truncated`, or with {name} among the layers")]
    LayerNotLoaded {
        /// The layer asked for.
        name: String,
        /// The last convolution kept.
        last: String,
    },

    /// A layer name that VGG-19 does not have.
    #[error("unknown VGG-19 layer {name:?}; known layers: {known}")]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// The valid names.
        known: String,
    },

    /// An image too small for the deepest layer asked for: every pooling before it halves the
    /// height and width (rounding down), so both must be at least `min_px`.
    #[error(
        "{what} is {width}×{height} px, too small for VGG-19's {layer}: both sides must be at \
         least {min_px} px"
    )]
    InputTooSmall {
        /// Which image (e.g. "the input", "the content image at scale 1 of 2").
        what: String,
        width: usize,
        height: usize,
        /// The smallest side that reaches `layer`.
        min_px: usize,
        /// The deepest layer the run reads.
        layer: String,
    },

    /// A [`crate::transfer::StyleTransferConfig`] field with a bad value.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A bad argument (option value, shape, size) with what is wrong.
    #[error("{0}")]
    InvalidArgument(String),

    /// An image that cannot be read, decoded or written.
    #[error("{}: {msg}", path.display())]
    Image {
        /// The file involved.
        path: PathBuf,
        /// What is wrong, and what to do.
        msg: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// A field of [`crate::transfer::StyleTransferConfig`] (plus the style images a run is given),
/// for [`ConfigError`]. Front ends map it to their own word for it (a CLI flag, a JSON field);
/// [`ConfigField::name`] is the library's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigField {
    SizePx,
    StyleScale,
    ContentLayers,
    StyleLayers,
    StyleLayerWeights,
    ContentWeight,
    StyleWeight,
    TvWeight,
    StyleBlendWeights,
    StyleLoss,
    ContentMasks,
    StyleMasks,
    Optimizer,
    /// `Optimizer::Lbfgs { history }`.
    LbfgsHistory,
    /// `Optimizer::Adam { learning_rate }`.
    LearningRate,
    Iterations,
    Tolerance,
    ToleranceWindow,
    Init,
    Seed,
    OriginalColors,
    Scales,
    /// The style images passed to [`crate::transfer::run`] (not a config field as such).
    StyleImages,
}

impl ConfigField {
    /// The library's name: the `StyleTransferConfig` field (`size_px`, `style_blend_weights`),
    /// `optimizer.history`/`optimizer.learning_rate` for the optimiser's settings.
    pub fn name(self) -> &'static str {
        use ConfigField::*;
        match self {
            SizePx => "size_px",
            StyleScale => "style_scale",
            ContentLayers => "content_layers",
            StyleLayers => "style_layers",
            StyleLayerWeights => "style_layer_weights",
            ContentWeight => "content_weight",
            StyleWeight => "style_weight",
            TvWeight => "tv_weight",
            StyleBlendWeights => "style_blend_weights",
            StyleLoss => "style_loss",
            ContentMasks => "content_masks",
            StyleMasks => "style_masks",
            Optimizer => "optimizer",
            LbfgsHistory => "optimizer.history",
            LearningRate => "optimizer.learning_rate",
            Iterations => "iterations",
            Tolerance => "tolerance",
            ToleranceWindow => "tolerance_window",
            Init => "init",
            Seed => "seed",
            OriginalColors => "original_colors",
            Scales => "scales",
            StyleImages => "style images",
        }
    }
}

impl std::fmt::Display for ConfigField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A configuration value that is out of range. `reason` reads after the field's name
/// ("4 is too small (at least 16 px)"), so a front end can print `{its name} {reason}`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct ConfigError {
    /// The field.
    pub field: ConfigField,
    /// What is wrong with its value, without the field's name.
    pub reason: String,
}

/// A printable name for a pickle opcode byte (the character pickletools shows, or its hex).
fn opcode_label(op: u8) -> String {
    if op.is_ascii_graphic() {
        format!("'{}'", op as char)
    } else {
        "non-ASCII".to_string()
    }
}
