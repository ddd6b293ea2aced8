//! 2-D pooling on NCHW: max (saves argmax indices for its backward) and average.

use super::cuda::{self as dev_ops, device_of};
use super::record;
use crate::{dispatch_float, EngineError, Result, Tensor};
use kernels::cpu::pool2d::{self as k, Pool2dParams};
use kernels::cuda::pool2d as cu;
use kernels::cuda::CudaSlice;
use kernels::Float as _;

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
    if o.kernel.0 == 0 || o.kernel.1 == 0 || o.stride.0 == 0 || o.stride.1 == 0 {
        return Err(bad(format!(
            "kernel {:?} and stride {:?} must be ≥ 1",
            o.kernel, o.stride
        )));
    }
    if 2 * o.padding.0 > o.kernel.0 || 2 * o.padding.1 > o.kernel.1 {
        return Err(bad(format!(
            "padding {:?} must be at most half the kernel {:?}",
            o.padding, o.kernel
        )));
    }
    if s[2] + 2 * o.padding.0 < o.kernel.0 || s[3] + 2 * o.padding.1 < o.kernel.1 {
        return Err(bad(format!(
            "kernel {:?} larger than the padded input",
            o.kernel
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
        let p = params("max_pool2d", self, opts)?;
        let out_shape = [p.n, p.c, p.out_h(), p.out_w()];
        if let Some(dev) = device_of("max_pool2d", self)? {
            return self.max_pool2d_cuda(&dev, p, &out_shape);
        }
        let mut argmax = vec![0u32; p.output_len()];
        let out = dispatch_float!("max_pool2d", self.dtype(), T => {
            let x = self.contiguous_data::<T>("max_pool2d")?;
            let mut o = vec![T::ZERO; p.output_len()];
            k::max_pool2d_forward(&p, &x, &mut o, &mut argmax);
            Tensor::from_vec(o, &out_shape)?
        });
        let argmax = if self.requires_grad() {
            argmax
        } else {
            Vec::new()
        };
        Ok(record("max_pool2d", out, &[self], move |g| {
            dispatch_float!("max_pool2d_backward", g.dtype(), T => {
                let gd = g.contiguous_data::<T>("max_pool2d_backward")?;
                let mut gi = vec![T::ZERO; p.input_len()];
                k::max_pool2d_backward(&p, &gd, &argmax, &mut gi);
                Ok(vec![Some(Tensor::from_vec(gi, &[p.n, p.c, p.h, p.w])?)])
            })
        }))
    }

    /// Average pooling (divisor KH·KW, padding counted as zeros): N×C×H×W → N×C×OH×OW.
    /// Errors as [`Tensor::max_pool2d`].
    pub fn avg_pool2d(&self, opts: Pool2dOptions) -> Result<Tensor> {
        let p = params("avg_pool2d", self, opts)?;
        let out_shape = [p.n, p.c, p.out_h(), p.out_w()];
        let out = if let Some(dev) = device_of("avg_pool2d", self)? {
            dispatch_float!("avg_pool2d", self.dtype(), T => {
                let x = dev_ops::contiguous::<T>("avg_pool2d", &dev, self)?;
                let o = cu::avg_pool2d_forward(&dev, &p, &x)
                    .map_err(dev_ops::err("avg_pool2d", &dev))?;
                dev_ops::wrap(o, &out_shape)
            })
        } else {
            dispatch_float!("avg_pool2d", self.dtype(), T => {
                let x = self.contiguous_data::<T>("avg_pool2d")?;
                let mut o = vec![T::ZERO; p.output_len()];
                k::avg_pool2d_forward(&p, &x, &mut o);
                Tensor::from_vec(o, &out_shape)?
            })
        };
        Ok(record("avg_pool2d", out, &[self], move |g| {
            if let Some(dev) = device_of("avg_pool2d_backward", g)? {
                let op = "avg_pool2d_backward";
                return dispatch_float!(op, g.dtype(), T => {
                    let gd = dev_ops::contiguous::<T>(op, &dev, g)?;
                    let gi = cu::avg_pool2d_backward(&dev, &p, &gd).map_err(dev_ops::err(op, &dev))?;
                    Ok(vec![Some(dev_ops::wrap(gi, &[p.n, p.c, p.h, p.w]))])
                });
            }
            dispatch_float!("avg_pool2d_backward", g.dtype(), T => {
                let gd = g.contiguous_data::<T>("avg_pool2d_backward")?;
                let mut gi = vec![T::ZERO; p.input_len()];
                k::avg_pool2d_backward(&p, &gd, &mut gi);
                Ok(vec![Some(Tensor::from_vec(gi, &[p.n, p.c, p.h, p.w])?)])
            })
        }))
    }

    /// Max pooling on the GPU: the argmax stays on the device, kept only when a backward may
    /// need it.
    fn max_pool2d_cuda(
        &self,
        dev: &kernels::cuda::CudaDevice,
        p: Pool2dParams,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let op = "max_pool2d";
        let (out, argmax): (Tensor, CudaSlice<u32>) = dispatch_float!(op, self.dtype(), T => {
            let x = dev_ops::contiguous::<T>(op, dev, self)?;
            let (o, a) = cu::max_pool2d_forward(dev, &p, &x).map_err(dev_ops::err(op, dev))?;
            (dev_ops::wrap(o, out_shape), a)
        });
        let argmax = self.requires_grad().then_some(argmax);
        let on = self.device();
        Ok(record(op, out, &[self], move |g| {
            let op = "max_pool2d_backward";
            let Some(dev) = device_of(op, g)? else {
                // `record` moves the gradient to the output's device, so this is a GPU tensor.
                return Err(EngineError::DeviceMismatch {
                    op,
                    lhs: g.device(),
                    rhs: on,
                });
            };
            // Present: a backward runs only when the input required grad.
            let argmax = argmax.as_ref().ok_or(EngineError::GraphFreed)?;
            dispatch_float!(op, g.dtype(), T => {
                let gd = dev_ops::contiguous::<T>(op, &dev, g)?;
                let gi = cu::max_pool2d_backward(&dev, &p, &gd, argmax)
                    .map_err(dev_ops::err(op, &dev))?;
                Ok(vec![Some(dev_ops::wrap(gi, &[p.n, p.c, p.h, p.w]))])
            })
        }))
    }
}
