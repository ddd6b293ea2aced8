//! Activations: ReLU.

use super::elementwise::unary_raw;
use super::record;
use crate::backend::backend_of;
use crate::{Result, Tensor};
use kernels::{BinaryOp, UnaryOp};

impl Tensor {
    /// `max(x, 0)` elementwise. Backward: the gradient where the output is positive, else 0
    /// (0 at x = 0, as PyTorch). Saves only the output.
    pub fn relu(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Relu)?;
        let y = out.clone();
        Ok(record("relu", out, &[self], move |g| {
            let op = "relu_backward";
            // g where y > 0, else 0 (kernels::ops::BinaryOp::ReluGrad).
            let be = backend_of(op, &y)?;
            Ok(vec![Some(be.binary(
                op,
                BinaryOp::ReluGrad,
                g,
                &y,
                y.shape(),
            )?)])
        }))
    }
}
