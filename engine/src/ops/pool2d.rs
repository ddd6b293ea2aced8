//! 2-D pooling on NCHW: max (saves argmax indices for its backward), average, and global
//! average.

use super::record;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};
use kernels::cpu::pool2d::Pool2dParams;
use kernels::window::{Window2d, WindowError};

/// Window, stride and zero padding of a pooling, per axis (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
}

impl Pool2dOptions {
    /// Square window `k`, stride `s`, padding `p` on both axes (VGG: `new(2, 2, 0)`).
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        Pool2dOptions {
            kernel: (kernel, kernel),
            stride: (stride, stride),
            padding: (padding, padding),
        }
    }
}

fn params(op: &'static str, x: &Tensor, o: Pool2dOptions) -> Result<Pool2dParams> {
    let s = x.shape();
    let bad = |msg: String| EngineError::InvalidArgument {
        op,
        msg,
        shape: s.to_vec(),
    };
    if s.len() != 4 {
        return Err(bad("input must be N×C×H×W".into()));
    }
    if x.numel() == 0 {
        return Err(EngineError::Empty {
            op,
            shape: s.to_vec(),
        });
    }
    let window = Window2d {
        kernel: o.kernel,
        stride: o.stride,
        padding: o.padding,
    };
    match window.check(s[2], s[3]) {
        Ok(()) => {}
        Err(WindowError::ZeroKernel | WindowError::ZeroStride) => {
            return Err(bad(format!(
                "kernel {:?} and stride {:?} must be ≥ 1",
                o.kernel, o.stride
            )))
        }
        Err(WindowError::KernelTooLarge) => {
            return Err(bad(format!(
                "kernel {:?} larger than the padded input",
                o.kernel
            )))
        }
    }
    // Pooling only (PyTorch's rule); with it the window above can never be too large.
    if 2 * o.padding.0 > o.kernel.0 || 2 * o.padding.1 > o.kernel.1 {
        return Err(bad(format!(
            "padding {:?} must be at most half the kernel {:?}",
            o.padding, o.kernel
        )));
    }
    Ok(Pool2dParams {
        n: s[0],
        c: s[1],
        h: s[2],
        w: s[3],
        kh: o.kernel.0,
        kw: o.kernel.1,
        stride_h: o.stride.0,
        stride_w: o.stride.1,
        pad_h: o.padding.0,
        pad_w: o.padding.1,
    })
}

impl Tensor {
    /// Max pooling: N×C×H×W → N×C×OH×OW (floor mode). The backward routes each output
    /// gradient to the input that won (first maximum on ties), from argmax indices saved here.
    /// Errors: `InvalidArgument` (rank, zero kernel/stride, padding over half the kernel,
    /// window larger than the input), `Empty`.
    pub fn max_pool2d(&self, opts: Pool2dOptions) -> Result<Tensor> {
        let op = "max_pool2d";
        let p = params(op, self, opts)?;
        let (out, argmax) = backend_of(op, self)?.max_pool2d(op, self, &p, self.requires_grad())?;
        Ok(record(op, out, &[self], move |g| {
            let op = "max_pool2d_backward";
            // Present: a backward runs only when the input required grad.
            let argmax = argmax.as_ref().ok_or(EngineError::GraphFreed)?;
            Ok(vec![Some(
                backend_of(op, g)?.max_pool2d_backward(op, g, &p, argmax)?,
            )])
        }))
    }

    /// Average pooling (divisor KH·KW, padding counted as zeros): N×C×H×W → N×C×OH×OW.
    /// Errors as [`Tensor::max_pool2d`].
    pub fn avg_pool2d(&self, opts: Pool2dOptions) -> Result<Tensor> {
        let p = params("avg_pool2d", self, opts)?;
        let out = backend_of("avg_pool2d", self)?.avg_pool2d("avg_pool2d", self, &p)?;
        Ok(record("avg_pool2d", out, &[self], move |g| {
            let op = "avg_pool2d_backward";
            Ok(vec![Some(
                backend_of(op, g)?.avg_pool2d_backward(op, g, &p)?,
            )])
        }))
    }

    /// Global average pooling: N×C×H×W → N×C×1×1, the mean of each plane (MobileNetV2's
    /// head; ONNX `GlobalAveragePool`). Composed of `reshape` and `mean_axis` (one axis sum
    /// per plane), whose backward spreads g/(H·W) over the plane. Errors: `InvalidArgument`
    /// (rank), `Empty`.
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        let op = "global_avg_pool2d";
        let s = self.shape();
        if s.len() != 4 {
            return Err(EngineError::InvalidArgument {
                op,
                msg: "input must be N×C×H×W".into(),
                shape: s.to_vec(),
            });
        }
        if self.numel() == 0 {
            return Err(EngineError::Empty {
                op,
                shape: s.to_vec(),
            });
        }
        let (n, c) = (s[0], s[1]);
        self.reshape(&[n, c, s[2] * s[3]])?
            .mean_axis(2, false)?
            .reshape(&[n, c, 1, 1])
    }
}
