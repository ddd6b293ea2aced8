//! Optimiser updates as single ops on tensors (no autodiff): Adam, fused into one kernel on a GPU.

use super::check_same;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};

/// One Adam step's hyper-parameters (PyTorch's `torch.optim.Adam` without weight decay):
/// the kernels' own [`kernels::ops::AdamStep`], passed to either backend as is.
pub type AdamParams = kernels::ops::AdamStep;

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
        backend_of(op, self)?.adam_step(op, self, grad, m, v, &p)
    }
}
