//! [`IndexBackend`]: patch extraction (unfold/fold), the maximum along an axis and index
//! selection, a supertrait of [`Backend`](super::Backend) (CPU in `cpu_index.rs`, CUDA in
//! `cuda_index.rs`). Same conventions as `Backend`: `op` names the public op, inputs share dtype
//! and device, results are new contiguous tensors. Indices travel as the tensor's float dtype.

use crate::{Result, Tensor};
use kernels::cpu::conv2d::Conv2dParams;

/// A tensor viewed as `outer × n × inner` around one axis.
pub(crate) type Axis3 = (usize, usize, usize);

pub(crate) trait IndexBackend {
    /// Patches N×C×H×W → N×(C·KH·KW)×(OH·OW) (the geometry of `p`, already validated).
    fn unfold(&self, op: &'static str, x: &Tensor, p: &Conv2dParams) -> Result<Tensor>;
    /// The adjoint of `unfold`: N×(C·KH·KW)×(OH·OW) → N×C×H×W.
    fn fold(&self, op: &'static str, cols: &Tensor, p: &Conv2dParams) -> Result<Tensor>;
    /// Maximum over the middle of `x` viewed as `dims`: (values, first indices), each
    /// `outer × inner` elements, returned with shape `out_shape`.
    fn argmax_axis(
        &self,
        op: &'static str,
        x: &Tensor,
        dims: Axis3,
        out_shape: &[usize],
    ) -> Result<(Tensor, Tensor)>;
    /// `out[o, j, i] = x[o, idx[j], i]` for `x` viewed as `dims`, shape `out_shape`; `idx` holds
    /// integral values in `[0, n)` (checked by the caller on the host; 0 on a GPU otherwise).
    fn index_select(
        &self,
        op: &'static str,
        x: &Tensor,
        dims: Axis3,
        idx: &Tensor,
        out_shape: &[usize],
    ) -> Result<Tensor>;
}
