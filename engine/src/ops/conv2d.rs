//! conv2d (cross-correlation) on NCHW input with OIHW weights, optional bias; gradients for
//! input, weight and bias, each its own kernel.

use super::check_same;
use super::conv_algo::{self, ConvConfig, Prepared};
use super::cuda::{self as dev_ops, device_of};
use super::record;
use crate::{dispatch_float, EngineError, Result, Tensor};
use kernels::cpu::conv2d::{self as k, Conv2dParams};
use kernels::cuda::conv2d as cu;
use kernels::Float as _;

/// Stride and zero padding of a conv2d, per spatial axis (height, width), and how it runs on
/// the CPU ([`ConvConfig`]: algorithm, input-gradient precision; per call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub config: ConvConfig,
}

impl Default for Conv2dOptions {
    /// Stride 1, no padding, the default [`ConvConfig`].
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            config: ConvConfig::default(),
        }
    }
}

impl Conv2dOptions {
    /// Same stride `s` and padding `p` on both axes, the default [`ConvConfig`].
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dOptions {
            stride: (stride, stride),
            padding: (padding, padding),
            config: ConvConfig::default(),
        }
    }

    /// These options with `config` (CPU algorithm and input-gradient precision).
    pub fn with_config(self, config: ConvConfig) -> Self {
        Conv2dOptions { config, ..self }
    }
}

pub(super) fn params(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    o: Conv2dOptions,
) -> Result<Conv2dParams> {
    let bad = |detail: String| EngineError::ShapeMismatch {
        op: "conv2d",
        lhs: x.shape().to_vec(),
        rhs: w.shape().to_vec(),
        detail,
    };
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() != 4 || ws.len() != 4 {
        return Err(bad("input must be N×C×H×W and weight O×I×KH×KW".into()));
    }
    if xs[1] != ws[1] {
        return Err(bad(format!(
            "input has {} channels, weight expects {}",
            xs[1], ws[1]
        )));
    }
    if let Some(b) = bias {
        if b.shape() != [ws[0]] {
            return Err(bad(format!(
                "bias shape {:?} should be [{}]",
                b.shape(),
                ws[0]
            )));
        }
    }
    if x.numel() == 0 || w.numel() == 0 {
        return Err(EngineError::Empty {
            op: "conv2d",
            shape: if x.numel() == 0 { xs } else { ws }.to_vec(),
        });
    }
    if o.stride.0 == 0 || o.stride.1 == 0 {
        return Err(EngineError::InvalidArgument {
            op: "conv2d",
            msg: format!("stride {:?} must be ≥ 1", o.stride),
            shape: xs.to_vec(),
        });
    }
    if xs[2] + 2 * o.padding.0 < ws[2] || xs[3] + 2 * o.padding.1 < ws[3] {
        return Err(bad(format!(
            "kernel larger than the padded input (padding {:?})",
            o.padding
        )));
    }
    Ok(Conv2dParams {
        n: xs[0],
        c_in: xs[1],
        h: xs[2],
        w: xs[3],
        c_out: ws[0],
        kh: ws[2],
        kw: ws[3],
        stride_h: o.stride.0,
        stride_w: o.stride.1,
        pad_h: o.padding.0,
        pad_w: o.padding.1,
    })
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch/Caffe): input N×C×H×W, weight O×C×KH×KW,
    /// optional bias [O]; output N×O×OH×OW with `OH = (H + 2·pad − KH)/stride + 1`.
    /// Errors: `ShapeMismatch` (ranks, channels, bias, kernel larger than the padded input),
    /// `InvalidArgument` (stride 0), `Empty`, `DTypeMismatch`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        check_same("conv2d", self, weight)?;
        if let Some(b) = bias {
            check_same("conv2d", self, b)?;
        }
        let p = params(self, weight, bias, opts)?;
        let out_shape = [p.n, p.c_out, p.out_h(), p.out_w()];
        let out = if let Some(dev) = device_of("conv2d", self)? {
            dispatch_float!("conv2d", self.dtype(), T => {
                let op = "conv2d";
                let x = dev_ops::contiguous::<T>(op, &dev, self)?;
                let w = dev_ops::contiguous::<T>(op, &dev, weight)?;
                let b = bias.map(|b| dev_ops::contiguous::<T>(op, &dev, b)).transpose()?;
                let o = cu::conv2d_forward(&dev, &p, &x, &w, b.as_deref())
                    .map_err(dev_ops::err(op, &dev))?;
                dev_ops::wrap(o, &out_shape)
            })
        } else {
            cpu_forward("conv2d", self, weight, bias, &p, false, opts.config, None)?
        };
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let (x, w) = (self.clone(), weight.clone());
        let need = (
            self.requires_grad(),
            weight.requires_grad(),
            bias.is_some_and(|b| b.requires_grad()),
        );
        // Save the input only when the weight gradient needs it.
        let x_saved = need.1.then(|| x.detach());
        drop(x);
        let has_bias = bias.is_some();
        let cfg = opts.config;
        Ok(record("conv2d", out, &inputs, move |g| {
            if let Some(dev) = device_of("conv2d_backward", g)? {
                return dispatch_float!("conv2d_backward", g.dtype(), T => {
                    let op = "conv2d_backward";
                    let e = dev_ops::err(op, &dev);
                    let gd = dev_ops::contiguous::<T>(op, &dev, g)?;
                    let gx = if need.0 {
                        let wd = dev_ops::contiguous::<T>(op, &dev, &w)?;
                        let o = cu::conv2d_backward_input(&dev, &p, &gd, &wd).map_err(&e)?;
                        Some(dev_ops::wrap(o, &[p.n, p.c_in, p.h, p.w]))
                    } else {
                        None
                    };
                    let gw = match &x_saved {
                        Some(xs) => {
                            let xd = dev_ops::contiguous::<T>(op, &dev, xs)?;
                            let o = cu::conv2d_backward_weight(&dev, &p, &xd, &gd).map_err(&e)?;
                            Some(dev_ops::wrap(o, w.shape()))
                        }
                        None => None,
                    };
                    let mut grads = vec![gx, gw];
                    if has_bias {
                        grads.push(if need.2 {
                            let o = cu::conv2d_backward_bias(&dev, &p, &gd).map_err(&e)?;
                            Some(dev_ops::wrap(o, &[p.c_out]))
                        } else {
                            None
                        });
                    }
                    Ok(grads)
                });
            }
            dispatch_float!("conv2d_backward", g.dtype(), T => {
                let gd = g.contiguous_data::<T>("conv2d_backward")?;
                let gx = if need.0 {
                    let wd = w.contiguous_data::<T>("conv2d_backward")?;
                    let mut o = vec![T::ZERO; p.input_len()];
                    conv_algo::backward_input(&p, cfg, None, &gd, &wd, &mut o);
                    Some(Tensor::from_vec(o, &[p.n, p.c_in, p.h, p.w])?)
                } else {
                    None
                };
                let gw = match &x_saved {
                    Some(xs) => {
                        let xd = xs.contiguous_data::<T>("conv2d_backward")?;
                        let mut o = vec![T::ZERO; p.weight_len()];
                        k::conv2d_backward_weight(&p, &xd, &gd, &mut o);
                        Some(Tensor::from_vec(o, w.shape())?)
                    }
                    None => None,
                };
                let mut grads = vec![gx, gw];
                if has_bias {
                    grads.push(if need.2 {
                        let mut o = vec![T::ZERO; p.c_out];
                        k::conv2d_backward_bias(&p, &gd, &mut o);
                        Some(Tensor::from_vec(o, &[p.c_out])?)
                    } else {
                        None
                    });
                }
                Ok(grads)
            })
        }))
    }
}

/// The forward of conv2d on the CPU (ReLU fused in when `relu`), as a new N×O×OH×OW tensor;
/// Winograd transforms from `prepared` (a frozen convolution's) or built for this call.
#[allow(clippy::too_many_arguments)]
pub(super) fn cpu_forward(
    op: &'static str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    p: &Conv2dParams,
    relu: bool,
    cfg: ConvConfig,
    prepared: Option<&Prepared>,
) -> Result<Tensor> {
    dispatch_float!(op, x.dtype(), T => {
        let (xd, wd) = (x.contiguous_data::<T>(op)?, weight.contiguous_data::<T>(op)?);
        let b = bias.map(|b| b.contiguous_data::<T>(op)).transpose()?;
        let mut o = vec![T::ZERO; p.output_len()];
        conv_algo::forward(p, cfg, prepared, &xd, &wd, b.as_deref(), &mut o, relu);
        Tensor::from_vec(o, &[p.n, p.c_out, p.out_h(), p.out_w()])
    })
}

/// Records the input-only backward of a CPU conv2d with frozen weights (`relu_out`: the output
/// of a fused conv + ReLU, whose mask the gradient goes through).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_frozen_cpu(
    op: &'static str,
    out: Tensor,
    x: &Tensor,
    weight: &Tensor,
    p: Conv2dParams,
    cfg: ConvConfig,
    prepared: Option<std::sync::Arc<Prepared>>,
    relu: bool,
) -> Tensor {
    if !x.requires_grad() {
        return out;
    }
    let y = relu.then(|| out.clone());
    let w = weight.clone();
    record(op, out, &[x], move |g| {
        dispatch_float!(op, g.dtype(), T => {
            let gv = g.contiguous_data::<T>(op)?;
            let wd = w.contiguous_data::<T>(op)?;
            let mut gx = vec![T::ZERO; p.input_len()];
            let pr = prepared.as_deref();
            match &y {
                Some(y) => {
                    let yv = y.contiguous_data::<T>(op)?;
                    conv_algo::backward_input_relu(&p, cfg, pr, &gv, &yv, &wd, &mut gx)
                }
                None => conv_algo::backward_input(&p, cfg, pr, &gv, &wd, &mut gx),
            }
            Ok(vec![Some(Tensor::from_vec(gx, &[p.n, p.c_in, p.h, p.w])?)])
        })
    })
}

impl Tensor {
    /// `relu(conv2d(self, weight, bias))` as one op (VGG's conv + ReLU pairs): the same values
    /// and gradients as `self.conv2d(weight, bias, opts)?.relu()`, without the intermediate
    /// tensor. On the CPU with frozen weights (neither `weight` nor `bias` requires grad) the
    /// ReLU runs inside the convolution's output pass and the tape holds one node that saves
    /// only the output (for the ReLU mask); otherwise (a GPU, or trainable weights) it is the
    /// two ops. Weights used again and again belong in a [`FrozenConv2d`](super::FrozenConv2d),
    /// which keeps their Winograd transforms. Errors: as [`Tensor::conv2d`].
    pub fn conv2d_relu(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        let trainable = weight.requires_grad() || bias.is_some_and(|b| b.requires_grad());
        if self.device() != crate::Device::Cpu || trainable {
            return self.conv2d(weight, bias, opts)?.relu();
        }
        check_same("conv2d_relu", self, weight)?;
        if let Some(b) = bias {
            check_same("conv2d_relu", self, b)?;
        }
        let p = params(self, weight, bias, opts)?;
        let cfg = opts.config;
        let out = cpu_forward("conv2d_relu", self, weight, bias, &p, true, cfg, None)?;
        Ok(record_frozen_cpu(
            "conv2d_relu",
            out,
            self,
            weight,
            p,
            cfg,
            None,
            true,
        ))
    }
}
