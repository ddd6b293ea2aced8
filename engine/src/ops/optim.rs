//! Optimiser updates as single ops on tensors (no autodiff): Adam, fused into one kernel on a GPU.

use super::check_same;
use super::cuda::{self as dev_ops, device_of};
use crate::storage::Element;
use crate::{dispatch_float, EngineError, Result, Tensor};
use kernels::cuda::AdamStep;

/// One Adam step's hyper-parameters (PyTorch's `torch.optim.Adam` without weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Step number, 1 for the first update.
    pub t: i32,
}

impl Tensor {
    /// One Adam step of the parameter `self` from `grad`, with moment estimates `m`, `v` (zeros
    /// before the first step; all four tensors of one shape, dtype and device). Returns the new
    /// (parameter, m, v); nothing is recorded on the tape. Per element, as `nst::optim::Adam`:
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `x ← x − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`
    /// — on a GPU in one fused kernel. Errors: `ShapeMismatch`, `DTypeMismatch`,
    /// `DeviceMismatch`, `InvalidArgument` (t < 1).
    pub fn adam_step(
        &self,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        p: AdamParams,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "adam_step";
        for other in [grad, m, v] {
            check_same(op, self, other)?;
            if other.shape() != self.shape() {
                return Err(EngineError::ShapeMismatch {
                    op,
                    lhs: self.shape().to_vec(),
                    rhs: other.shape().to_vec(),
                    detail: "parameter, gradient and moments must have one shape".into(),
                });
            }
        }
        if p.t < 1 {
            return Err(EngineError::InvalidArgument {
                op,
                msg: format!("step t = {} must be ≥ 1", p.t),
                shape: self.shape().to_vec(),
            });
        }
        let hp = AdamStep {
            learning_rate: p.learning_rate,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            t: p.t,
        };
        let shape = self.shape();
        if let Some(dev) = device_of(op, self)? {
            return dispatch_float!(op, self.dtype(), T => {
                let x = dev_ops::contiguous::<T>(op, &dev, self)?;
                let g = dev_ops::contiguous::<T>(op, &dev, grad)?;
                let m = dev_ops::contiguous::<T>(op, &dev, m)?;
                let v = dev_ops::contiguous::<T>(op, &dev, v)?;
                let (x, m, v) = kernels::cuda::adam_update(&dev, &x, &g, &m, &v, self.numel(), &hp)
                    .map_err(dev_ops::err(op, &dev))?;
                Ok((dev_ops::wrap(x, shape), dev_ops::wrap(m, shape), dev_ops::wrap(v, shape)))
            });
        }
        dispatch_float!(op, self.dtype(), T => cpu_adam::<T>(self, grad, m, v, p))
    }
}

/// The CPU update, with nst's Adam arithmetic (constants in f64, cast once).
fn cpu_adam<T: Element>(
    x: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    p: AdamParams,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "adam_step";
    let (mut xs, gs) = (x.to_vec::<T>()?, g.contiguous_data::<T>(op)?);
    let (mut ms, mut vs) = (m.to_vec::<T>()?, v.to_vec::<T>()?);
    let bc1 = 1.0 - p.beta1.powi(p.t);
    let bc2 = 1.0 - p.beta2.powi(p.t);
    let f = T::from_f64;
    let (b1, b2, c1, c2) = (f(p.beta1), f(p.beta2), f(1.0 - p.beta1), f(1.0 - p.beta2));
    let (step, bc2_sqrt, eps) = (f(p.learning_rate / bc1), f(bc2.sqrt()), f(p.eps));
    for i in 0..xs.len() {
        let gi = gs[i];
        ms[i] = b1 * ms[i] + c1 * gi;
        vs[i] = b2 * vs[i] + c2 * gi * gi;
        xs[i] -= step * ms[i] / (vs[i].sqrt() / bc2_sqrt + eps);
    }
    let s = x.shape();
    Ok((
        Tensor::from_vec(xs, s)?,
        Tensor::from_vec(ms, s)?,
        Tensor::from_vec(vs, s)?,
    ))
}
