//! Helpers shared by the op families' tests.

use engine::{DType, Device, Tensor};

pub use engine::testing::{assert_close, grad_check, parity};

/// Finite-difference step and tolerance of the f64 gradient checks.
pub const EPS: f64 = 1e-6;
pub const TOL: f64 = 1e-6;

/// Standard normal f64 values on `dev` (for gradient checks).
pub fn randn(shape: &[usize], seed: u64, dev: Device) -> Tensor {
    Tensor::randn(shape, 1.0, seed, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

/// Standard normal f32 values on the CPU (for CPU-vs-GPU parity; `parity` moves them).
pub fn randn_f32(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 1.0, seed, DType::F32).unwrap()
}

/// A fixed random projection turning any output into a scalar with non-uniform weights, so that
/// every output element's gradient matters.
pub fn project(y: &Tensor) -> engine::Result<Tensor> {
    let w = Tensor::randn(y.shape(), 1.0, 999, DType::F64)?.to_device(y.device())?;
    y.mul(&w)?.sum()
}

/// Whether `dev` is a GPU: then a body also checks parity with the CPU.
pub fn is_gpu(dev: Device) -> bool {
    matches!(dev, Device::Cuda(_))
}
