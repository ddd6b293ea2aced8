//! nst's tensor engine: NCHW tensors over shared storage, tape-based reverse-mode autodiff, and
//! ops (conv2d, pooling, ReLU, matmul, elementwise, reductions, losses), each with its backward.
//!
//! ```
//! use engine::{Tensor, DType};
//! let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], &[3]).unwrap().requires_grad_();
//! let loss = x.relu().unwrap().square().unwrap().sum().unwrap();
//! loss.backward().unwrap();
//! assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![2.0, 0.0, 6.0]);
//! ```

pub mod autograd;
mod backend;
mod device;
mod error;
pub mod ops;
pub mod profile;
mod storage;
mod tensor;
pub mod testing;

pub use autograd::{is_grad_enabled, no_grad, no_grad_guard};
pub use device::{DType, Device, DeviceChoice, DeviceChoiceError};
pub use error::{EngineError, Result};
pub use kernels::ParseOptionError;
pub use ops::conv_algo::{cpu_bf16_is_faster, WINOGRAD_MIN_CHANNELS};
pub use ops::{
    Conv2dOptions, ConvAlgorithm, ConvConfig, FrozenConv2d, Indices, Pad2d, PadMode, Pool2dOptions,
    Precision,
};
pub use storage::{
    live_buffers, live_bytes, peak_live_bytes, reset_peak_live_bytes, Element, Storage,
};
pub use tensor::{contiguous_strides, Tensor};
