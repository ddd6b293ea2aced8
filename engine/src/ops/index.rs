//! Patches and index selection: `unfold2d` (differentiable; its backward is `fold`),
//! `argmax_axis` and `index_select` (not differentiable: the MRF style loss of Li & Wand, CVPR
//! 2016, searches its nearest patches without gradient, as pystiche does under `no_grad`).
//! Indices travel as the tensor's float dtype (exact integers up to 2^24 in f32).

use super::{check_same, record};
use crate::autograd::is_grad_enabled;
use crate::backend::{backend_of, Axis3};
use crate::{EngineError, Result, Tensor};
use kernels::cpu::conv2d::Conv2dParams;
use kernels::window::Window2d;

/// The largest axis length whose indices f32 holds exactly.
const MAX_F32_INDEX: usize = 1 << 24;

fn bad(op: &'static str, t: &Tensor, msg: String) -> EngineError {
    EngineError::InvalidArgument {
        op,
        msg,
        shape: t.shape().to_vec(),
    }
}

/// `t`'s shape as `outer × n × inner` around `axis`.
fn axis3(op: &'static str, t: &Tensor, axis: usize) -> Result<Axis3> {
    let s = t.shape();
    if axis >= s.len() {
        return Err(bad(op, t, format!("axis {axis} out of range")));
    }
    Ok((
        s[..axis].iter().product(),
        s[axis],
        s[axis + 1..].iter().product(),
    ))
}

impl Tensor {
    /// Square patches of a batch of images (PyTorch's `F.unfold(x, kernel, padding=padding,
    /// stride=stride)`): N×C×H×W → N×(C·k·k)×L with `L = OH·OW` (floor mode, zero padding), row
    /// `c·k² + i·k + j` of column `oy·OW + ox` holding `x[n, c, oy·stride + i − padding,
    /// ox·stride + j − padding]`. Differentiable: the backward adds each column entry back to
    /// the position it came from (`fold`).
    /// Errors: `InvalidArgument` (rank, zero kernel or stride, window larger than the padded
    /// input), `Empty`.
    pub fn unfold2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        let op = "unfold2d";
        let s = self.shape();
        if s.len() != 4 {
            return Err(bad(op, self, "input must be N×C×H×W".into()));
        }
        if self.numel() == 0 {
            return Err(EngineError::Empty {
                op,
                shape: s.to_vec(),
            });
        }
        let window = Window2d {
            kernel: (kernel, kernel),
            stride: (stride, stride),
            padding: (padding, padding),
        };
        if window.check(s[2], s[3]).is_err() {
            return Err(bad(
                op,
                self,
                format!("kernel {kernel}, stride {stride}, padding {padding} do not fit"),
            ));
        }
        let p = Conv2dParams {
            n: s[0],
            c_in: s[1],
            h: s[2],
            w: s[3],
            c_out: 1,
            kh: kernel,
            kw: kernel,
            stride_h: stride,
            stride_w: stride,
            pad_h: padding,
            pad_w: padding,
            groups: 1,
            pad_mode: kernels::cpu::spatial::PadMode::Zero,
        };
        let out = backend_of(op, self)?.unfold(op, self, &p)?;
        Ok(record(op, out, &[self], move |g| {
            let op = "unfold2d_backward";
            Ok(vec![Some(backend_of(op, g)?.fold(op, g, &p)?)])
        }))
    }

    /// The maximum along `axis` and where it is (PyTorch's `torch.max(x, dim)`): (values,
    /// indices), each of `x`'s shape without `axis`; the index is the first one reaching the
    /// maximum, as a float of `x`'s dtype; NaNs never win. Not differentiable: both results are
    /// constants (never require grad).
    /// Errors: `InvalidArgument` (axis out of range, an f32 axis longer than 2^24), `Empty`.
    pub fn argmax_axis(&self, axis: usize) -> Result<(Tensor, Tensor)> {
        let op = "argmax_axis";
        let dims = axis3(op, self, axis)?;
        if self.numel() == 0 {
            return Err(EngineError::Empty {
                op,
                shape: self.shape().to_vec(),
            });
        }
        if dims.1 > MAX_F32_INDEX && self.dtype() == crate::DType::F32 {
            return Err(bad(
                op,
                self,
                format!("axis {axis} too long for f32 indices"),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape.remove(axis);
        backend_of(op, self)?.argmax_axis(op, self, dims, &shape)
    }

    /// Slices of `self` along `axis` picked by `idx` (PyTorch's `torch.index_select(x, axis,
    /// idx)`): `idx` is a 1-D tensor of integral values in `[0, n)` (as `argmax_axis` returns
    /// them), the result has `self`'s shape with `axis` of length `idx.len()`. Not
    /// differentiable (its output never requires grad): call it on a constant, or under
    /// `no_grad`.
    /// Errors: `InvalidArgument` (axis out of range, `idx` not 1-D, a host index that is not an
    /// integer in range; `self` requiring grad while grad is enabled), dtype or device
    /// mismatch. On a GPU, indices are not read back: one out of range selects zeros.
    pub fn index_select(&self, axis: usize, idx: &Tensor) -> Result<Tensor> {
        let op = "index_select";
        check_same(op, self, idx)?;
        let dims = axis3(op, self, axis)?;
        if idx.shape().len() != 1 {
            return Err(bad(op, idx, "indices must be 1-D".into()));
        }
        if self.requires_grad() && is_grad_enabled() {
            return Err(bad(
                op,
                self,
                "has no gradient: detach the input or call it under no_grad".into(),
            ));
        }
        if idx.device() == crate::Device::Cpu {
            let n = dims.1 as f64;
            if let Some(v) = idx
                .to_vec_f64()?
                .into_iter()
                .find(|v| !(v.fract() == 0.0 && *v >= 0.0 && *v < n))
            {
                return Err(bad(op, self, format!("index {v} not in 0..{}", dims.1)));
            }
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = idx.numel();
        backend_of(op, self)?.index_select(op, self, dims, idx, &shape)
    }
}
