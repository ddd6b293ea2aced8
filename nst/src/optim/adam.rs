//! Adam (Kingma & Ba 2015), exactly as PyTorch's `torch.optim.Adam` (no weight decay, no amsgrad).

use crate::error::Result;
use engine::ops::optim::AdamParams;
use engine::Tensor;

/// Adam state for one parameter tensor, kept on the parameter's device: the update is
/// [`Tensor::adam_step`] (one fused kernel on a GPU), so no data leaves the device.
///
/// Per step t (from 1): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `x ← x − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)`.
#[derive(Clone, Debug)]
pub struct Adam {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// First and second moment estimates (created at the first step).
    moments: Option<(Tensor, Tensor)>,
    t: i32,
}

impl Adam {
    /// Adam with PyTorch's defaults β = (0.9, 0.999), ε = 1e-8 and the given learning rate
    /// (in the units of the parameters: for Caffe-preprocessed images, pixel values 0–255).
    pub fn new(learning_rate: f64) -> Adam {
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            moments: None,
            t: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> i32 {
        self.t
    }

    /// One update of `x` from its gradient `grad` (same shape, dtype and device); `x` is
    /// replaced by the updated tensor. The first call fixes the shape.
    /// Errors: engine errors (shape, dtype or device mismatch with `grad` or earlier steps).
    pub fn step(&mut self, x: &mut Tensor, grad: &Tensor) -> Result<()> {
        let (m, v) = match self.moments.take() {
            Some(mv) => mv,
            None => {
                let z = Tensor::zeros(x.shape(), x.dtype())?.to_device(x.device())?;
                (z.clone(), z)
            }
        };
        let p = AdamParams {
            learning_rate: self.learning_rate,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            t: self.t + 1,
        };
        let (nx, m, v) = engine::no_grad(|| x.detach().adam_step(&grad.detach(), &m, &v, p))?;
        self.t += 1;
        self.moments = Some((m, v));
        *x = nx;
        Ok(())
    }

    /// [`Adam::step`] on host vectors (f32), for small problems and tests.
    pub fn step_slice(&mut self, x: &mut [f32], grad: &[f32]) -> Result<()> {
        let mut t = Tensor::from_slice(x, &[x.len()])?;
        self.step(&mut t, &Tensor::from_slice(grad, &[grad.len()])?)?;
        x.copy_from_slice(&t.to_vec::<f32>()?);
        Ok(())
    }
}
