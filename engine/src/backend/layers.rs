//! [`LayerBackend`]: the kernel families of the feed-forward style networks' layers (2-D
//! padding, nearest upsampling, instance normalisation), a supertrait of
//! [`Backend`](super::Backend) so that every backend implements them (CPU in `cpu_layers.rs`,
//! CUDA in `cuda_layers.rs`) and `backend_of` reaches them. Same conventions as `Backend`:
//! `op` names the public op, inputs share dtype and device, results are new contiguous tensors.

use crate::{Result, Storage, Tensor};
use kernels::cpu::spatial::{Pad2dParams, UpsampleParams};

/// Instance norm's parameters for one call on an N×C×H×W input: `gamma` and `beta` N×C
/// (views allowed).
#[derive(Clone, Copy)]
pub(crate) struct NormArgs<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub eps: f64,
    /// A following ReLU fused into the output (inference only: the backward is instance norm's).
    pub relu: bool,
}

/// Instance norm's gradients: ∂x (N×C×H×W), ∂γ and ∂β (N×C).
pub(crate) struct NormGrads {
    pub x: Tensor,
    pub gamma: Tensor,
    pub beta: Tensor,
}

pub(crate) trait LayerBackend {
    /// 2-D padding N×C×H×W → N×C×(top+H+bottom)×(left+W+right) (`p.check()` holds).
    fn pad2d(&self, op: &'static str, x: &Tensor, p: &Pad2dParams) -> Result<Tensor>;
    /// Padding's input gradient N×C×H×W from `g` (each input cell: Σ over its copies).
    fn pad2d_backward(&self, op: &'static str, g: &Tensor, p: &Pad2dParams) -> Result<Tensor>;
    /// Nearest upsampling N×C×H×W → N×C×(s·H)×(s·W).
    fn upsample_nearest(&self, op: &'static str, x: &Tensor, p: &UpsampleParams) -> Result<Tensor>;
    /// Nearest upsampling's input gradient (s×s sum pooling of `g`).
    fn upsample_nearest_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &UpsampleParams,
    ) -> Result<Tensor>;
    /// Instance norm forward of `x`: the output (shape of x) and, when `keep_stats`, the
    /// statistics N×C×2 (μ, 1/√(σ² + eps) per plane) its backward needs.
    fn instance_norm(
        &self,
        op: &'static str,
        x: &Tensor,
        a: NormArgs<'_>,
        keep_stats: bool,
    ) -> Result<(Tensor, Option<Tensor>)>;
    /// Instance norm forward written over the contiguous N×C×H×W values `x` of `shape` (owned
    /// by the caller alone; inference, no statistics); `Ok(false)`, `x` untouched, where this
    /// device does not (the caller then normalises out of place).
    fn instance_norm_in_place(
        &self,
        _op: &'static str,
        _x: &mut Storage,
        _shape: &[usize],
        _a: NormArgs<'_>,
    ) -> Result<bool> {
        Ok(false)
    }
    /// Instance norm backward from `g` (shape of x), x, γ (N×C) and the saved statistics.
    fn instance_norm_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        stats: &Tensor,
    ) -> Result<NormGrads>;
}
