//! Activations: ReLU.

use super::cuda::device_of;
use super::elementwise::{binary_cuda, unary_raw, Unary};
use super::record;
use crate::{dispatch_float, Result, Tensor};
use kernels::cpu::elementwise as k;
use kernels::cuda::elementwise::BinaryOp as CuBin;
use kernels::Float as _;

impl Tensor {
    /// `max(x, 0)` elementwise. Backward: the gradient where the output is positive, else 0
    /// (0 at x = 0, as PyTorch). Saves only the output.
    pub fn relu(&self) -> Result<Tensor> {
        let out = unary_raw(self, Unary::Relu)?;
        let y = out.clone();
        Ok(record("relu", out, &[self], move |g| {
            if let Some(dev) = device_of("relu_backward", &y)? {
                let gx = dispatch_float!("relu_backward", y.dtype(), T => {
                    binary_cuda::<T>(&dev, CuBin::ReluGrad, g, &y, y.shape())?
                });
                return Ok(vec![Some(gx)]);
            }
            let gx = dispatch_float!("relu_backward", y.dtype(), T => {
                let (gv, yv) = (g.contiguous_data::<T>("relu")?, y.contiguous_data::<T>("relu")?);
                let mut o = vec![T::ZERO; gv.len()];
                k::relu_backward(&gv, &yv, &mut o);
                Tensor::from_vec(o, y.shape())?
            });
            Ok(vec![Some(gx)])
        }))
    }
}
