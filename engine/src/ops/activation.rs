//! Activations: ReLU.

use super::elementwise::{unary_raw, Unary};
use crate::autograd::record;
use crate::{dispatch_float, Result, Tensor};
use kernels::cpu::elementwise as k;
use kernels::Float as _;

impl Tensor {
    /// `max(x, 0)` elementwise. Backward: the gradient where the output is positive, else 0
    /// (0 at x = 0, as PyTorch). Saves only the output.
    pub fn relu(&self) -> Result<Tensor> {
        let out = unary_raw(self, Unary::Relu)?;
        let y = out.clone();
        Ok(record("relu", out, &[self], move |g| {
            let gx = dispatch_float!("relu_backward", y.dtype(), T => {
                let (gv, yv) = (g.contiguous_data::<T>("relu")?, y.contiguous_data::<T>("relu")?);
                let mut o = vec![T::ZERO; gv.len()];
                k::binary(&gv, &yv, &mut o, |g, y| if y > T::ZERO { g } else { T::ZERO });
                Tensor::from_vec(o, y.shape())?
            });
            Ok(vec![Some(gx)])
        }))
    }
}
