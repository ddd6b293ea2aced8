//! Raw compute kernels for nst, on plain slices: no `Tensor` type, no autodiff.
//!
//! Layout conventions: images are NCHW, convolution weights OIHW, matrices row-major
//! unless a stride argument says otherwise. Every kernel is generic over [`Float`]
//! (f32 for real work, f64 for gradient checks) and has a naive reference in its unit tests.

pub mod cpu;
pub mod cuda;
pub mod ops;
pub mod options;
pub mod window;

pub use cpu::Float;
pub use ops::{BinaryOp, UnaryOp};
pub use options::ParseOptionError;
pub use window::Window2d;
