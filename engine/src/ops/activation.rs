//! Activations: ReLU.

use super::elementwise::unary_raw;
use super::record;
use crate::backend::backend_of;
use crate::{Result, Tensor};
use kernels::UnaryOp;

impl Tensor {
    /// `max(x, 0)` elementwise. Backward: the gradient where the output is positive, else 0
    /// (0 at x = 0, as PyTorch). Saves only the output.
    pub fn relu(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Relu)?;
        let y = out.clone();
        Ok(record("relu", out, &[self], move |g| {
            let op = "relu_backward";
            Ok(vec![Some(backend_of(op, &y)?.relu_backward(op, g, &y)?)])
        }))
    }
}
