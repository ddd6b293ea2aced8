//! Instance normalisation with external per-channel scale and shift (conditional instance norm,
//! Dumoulin et al. 2017, "A Learned Representation for Artistic Style"; Ghiasi et al. 2017's
//! style-prediction network supplies γ and β the same way).

use super::{check_same, record};
use crate::backend::{backend_of, NormArgs};
use crate::{autograd, EngineError, Result, Tensor};

/// γ or β as N×C: `[N, C]` as is, `[C]` broadcast over the batch (a view).
fn per_plane(op: &'static str, x: &Tensor, t: &Tensor, what: &str) -> Result<Tensor> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    match t.shape() {
        [k] if *k == c => t.reshape(&[1, c])?.expand(&[n, c]),
        [a, b] if *a == n && *b == c => Ok(t.clone()),
        _ => Err(EngineError::ShapeMismatch {
            op,
            lhs: x.shape().to_vec(),
            rhs: t.shape().to_vec(),
            detail: format!("{what} must be [C] or [N, C] = [{n}, {c}]"),
        }),
    }
}

impl Tensor {
    /// Instance normalisation of an N×C×H×W tensor with per-channel scale `gamma` and shift
    /// `beta` (each `[C]`, or `[N, C]` for one set per image, as conditional instance norm
    /// computes them from a style vector): `y = (x − μ)/√(σ² + eps)·γ + β`, with μ and the
    /// biased variance σ² of each (n, c) plane over H×W (PyTorch `InstanceNorm2d` with
    /// external affine parameters; the style networks use eps = 1e-5). Statistics are summed in
    /// f64. Gradients flow to `x`, `gamma` and `beta`; under [`crate::no_grad`] (or when none
    /// requires grad) nothing is saved. Errors: `InvalidArgument` (rank, eps ≤ 0 or NaN),
    /// `ShapeMismatch` (γ/β shapes), `Empty`, `DTypeMismatch`/`DeviceMismatch`.
    pub fn instance_norm(&self, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        self.instance_norm_impl("instance_norm", gamma, beta, eps, false)
    }

    /// `self.instance_norm(gamma, beta, eps)?.relu()` (same arguments, errors and values), in
    /// one pass over the tensor when nothing is recorded (inference: the style networks' every
    /// instance norm but the residual blocks' second is followed by a ReLU). When a gradient is
    /// needed it records the two ops, so the backward is theirs.
    pub fn instance_norm_relu(&self, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        if self.norm_recorded(gamma, beta) {
            return self.instance_norm(gamma, beta, eps)?.relu();
        }
        self.instance_norm_impl("instance_norm_relu", gamma, beta, eps, true)
    }

    /// [`Tensor::instance_norm`] taking the input by value: the same values, gradients and
    /// errors, but when nothing is recorded and this tensor is the only holder of its
    /// contiguous CPU storage (a layer's output passed on, `x = x.into_instance_norm(..)?`),
    /// the result is written over it: no new buffer, no zeroing, half the memory traffic
    /// (a 32×384×512 f32 plane set: 2.2 → 1.1 ms), and one activation less at the peak.
    /// Otherwise it is `instance_norm`. Profiled as `instance_norm`.
    pub fn into_instance_norm(self, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        self.into_norm(gamma, beta, eps, false)
    }

    /// [`Tensor::instance_norm_relu`] taking the input by value, written over it where
    /// [`Tensor::into_instance_norm`] would be.
    pub fn into_instance_norm_relu(
        self,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        self.into_norm(gamma, beta, eps, true)
    }

    /// The by-value instance norm (+ ReLU): written over `self` where nothing is recorded and
    /// [`Tensor::writable_storage`] allows on the CPU; else the by-reference op, which records
    /// what the tape needs.
    fn into_norm(mut self, gamma: &Tensor, beta: &Tensor, eps: f64, relu: bool) -> Result<Tensor> {
        let by_ref = |x: &Tensor| {
            if relu {
                x.instance_norm_relu(gamma, beta, eps)
            } else {
                x.instance_norm(gamma, beta, eps)
            }
        };
        let cpu = self.device() == crate::Device::Cpu;
        if self.norm_recorded(gamma, beta) || !cpu || self.writable_storage().is_none() {
            return by_ref(&self);
        }
        let op = if relu {
            "instance_norm_relu"
        } else {
            "instance_norm"
        };
        let (g2, b2) = self.norm_checks(op, gamma, beta, eps)?;
        let shape = self.shape().to_vec();
        let be = backend_of(op, &self)?;
        let args = NormArgs {
            gamma: &g2,
            beta: &b2,
            eps,
            relu,
        };
        let st = self.writable_storage().expect("checked above");
        if be.instance_norm_in_place(op, st, &shape, args)? {
            return Ok(self);
        }
        drop(be);
        by_ref(&self)
    }

    /// Whether an instance norm of `self` with `gamma`, `beta` goes on the tape.
    fn norm_recorded(&self, gamma: &Tensor, beta: &Tensor) -> bool {
        autograd::is_grad_enabled() && [self, gamma, beta].iter().any(|t| t.requires_grad())
    }

    /// Instance norm's argument checks; γ and β as N×C.
    fn norm_checks(
        &self,
        op: &'static str,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f64,
    ) -> Result<(Tensor, Tensor)> {
        check_same(op, self, gamma)?;
        check_same(op, self, beta)?;
        let s = self.shape();
        let bad = |msg: String| EngineError::InvalidArgument {
            op,
            msg,
            shape: s.to_vec(),
        };
        if s.len() != 4 {
            return Err(bad("input must be N×C×H×W".into()));
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(bad(format!("eps {eps} must be > 0")));
        }
        if self.numel() == 0 {
            return Err(EngineError::Empty {
                op,
                shape: s.to_vec(),
            });
        }
        Ok((
            per_plane(op, self, gamma, "gamma")?,
            per_plane(op, self, beta, "beta")?,
        ))
    }

    fn instance_norm_impl(
        &self,
        op: &'static str,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f64,
        relu: bool,
    ) -> Result<Tensor> {
        let (g2, b2) = self.norm_checks(op, gamma, beta, eps)?;
        let inputs = [self, gamma, beta];
        let need = self.norm_recorded(gamma, beta);
        let args = NormArgs {
            gamma: &g2,
            beta: &b2,
            eps,
            relu,
        };
        let (out, stats) = backend_of(op, self)?.instance_norm(op, self, args, need)?;
        let Some(stats) = stats else {
            return Ok(out);
        };
        let (x, gm) = (self.detach(), g2.detach());
        let (gs, bs) = (gamma.shape().to_vec(), beta.shape().to_vec());
        let want = inputs.map(|t| t.requires_grad());
        Ok(record(op, out, &inputs, move |g| {
            let op = "instance_norm_backward";
            let d = backend_of(op, g)?.instance_norm_backward(op, g, &x, &gm, &stats)?;
            // A [C] parameter's gradient sums its [N, C] one over the batch.
            let gg = want[1].then(|| d.gamma.sum_to_shape(&gs)).transpose()?;
            let gb = want[2].then(|| d.beta.sum_to_shape(&bs)).transpose()?;
            Ok(vec![want[0].then_some(d.x), gg, gb])
        }))
    }
}
