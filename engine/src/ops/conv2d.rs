//! conv2d (cross-correlation) on NCHW input with OIHW weights, optional bias, optional channel
//! groups (grouped and depthwise convolutions); gradients for input, weight and bias, each its
//! own kernel.

use super::check_same;
use super::conv_algo::{self, ConvConfig, Prepared};
use super::record;
use crate::autograd::is_grad_enabled;
use crate::backend::{backend_of_conv, ConvCall};
use crate::{Device, EngineError, Pad2d, PadMode, Result, Tensor};
use kernels::cpu::conv2d::Conv2dParams;
use kernels::window::{Window2d, WindowError};
use std::sync::Arc;

/// Stride and padding of a conv2d, per spatial axis (height, width), what the padding holds,
/// channel groups, and how it runs on the CPU ([`ConvConfig`]: algorithm, input-gradient
/// precision; per call). With `groups` g the weight is O×(C/g)×KH×KW and output channel group
/// k sees input channel group k only (PyTorch's `groups`); g = C = O is a depthwise
/// convolution. Asymmetric padding (TF "SAME" with stride 2) is [`Tensor::pad2d`] followed by
/// a convolution without padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    /// Zeros (the default), or [`PadMode::Reflect`]: the input mirrored without repeating the
    /// edge pixel, as PyTorch's `Conv2d(padding_mode="reflect")` (each pad < the input's side).
    pub padding_mode: PadMode,
    /// Channel groups, ≥ 1 (1: an ordinary convolution).
    pub groups: usize,
    pub config: ConvConfig,
}

impl Default for Conv2dOptions {
    /// Stride 1, no padding, the default [`ConvConfig`].
    fn default() -> Self {
        Conv2dOptions::new(1, 0)
    }
}

impl Conv2dOptions {
    /// Same stride `s` and zero padding `p` on both axes, one group, the default
    /// [`ConvConfig`].
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dOptions {
            stride: (stride, stride),
            padding: (padding, padding),
            padding_mode: PadMode::Zero,
            groups: 1,
            config: ConvConfig::default(),
        }
    }

    /// These options with the padding filled by `mode` ([`PadMode::Reflect`]: PyTorch's
    /// `padding_mode="reflect"`). On the CPU, without a tape to record, the convolutions that
    /// can (Winograd 3×3 and the packed-panel path) read the reflection in place; everywhere
    /// else it is [`Tensor::pad2d`] and then the convolution with no padding.
    pub fn with_padding_mode(self, mode: PadMode) -> Self {
        Conv2dOptions {
            padding_mode: mode,
            ..self
        }
    }

    /// These options with `groups` channel groups (C for a depthwise convolution).
    pub fn with_groups(self, groups: usize) -> Self {
        Conv2dOptions { groups, ..self }
    }

    /// These options with `config` (CPU algorithm and input-gradient precision).
    pub fn with_config(self, config: ConvConfig) -> Self {
        Conv2dOptions { config, ..self }
    }
}

/// The kernel parameters of `x ⋆ w (+ bias)` after every check: dtypes and devices agree
/// (named `op`), shapes, stride and window fit.
fn params(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    o: Conv2dOptions,
) -> Result<Conv2dParams> {
    check_same(op, x, w)?;
    if let Some(b) = bias {
        check_same(op, x, b)?;
    }
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
    let g = o.groups;
    if g == 0 || !xs[1].is_multiple_of(g) || !ws[0].is_multiple_of(g) {
        return Err(EngineError::InvalidArgument {
            op: "conv2d",
            msg: format!(
                "groups {g} must be ≥ 1 and divide the {} input and {} output channels",
                xs[1], ws[0]
            ),
            shape: xs.to_vec(),
        });
    }
    if xs[1] != ws[1] * g {
        return Err(bad(format!(
            "input has {} channels, weight expects {} ({} per group × {g} groups)",
            xs[1],
            ws[1] * g,
            ws[1]
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
    let window = Window2d {
        kernel: (ws[2], ws[3]),
        stride: o.stride,
        padding: o.padding,
    };
    match window.check(xs[2], xs[3]) {
        Ok(()) => {}
        // A zero kernel is an empty weight, refused above.
        Err(WindowError::ZeroKernel | WindowError::ZeroStride) => {
            return Err(EngineError::InvalidArgument {
                op: "conv2d",
                msg: format!("stride {:?} must be ≥ 1", o.stride),
                shape: xs.to_vec(),
            })
        }
        Err(WindowError::KernelTooLarge) => {
            return Err(bad(format!(
                "kernel larger than the padded input (padding {:?})",
                o.padding
            )))
        }
    }
    if o.padding_mode == PadMode::Reflect && (o.padding.0 >= xs[2] || o.padding.1 >= xs[3]) {
        return Err(EngineError::InvalidArgument {
            op: "conv2d",
            msg: format!(
                "reflect padding {:?} must be smaller than the input's height and width",
                o.padding
            ),
            shape: xs.to_vec(),
        });
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
        groups: g,
        pad_mode: o.padding_mode,
    })
}

/// For reflect padding that the kernels will not read in place here (a GPU, a tape to record,
/// a path that pads with zeros): `x` padded by [`Tensor::pad2d`] and the options without
/// padding. `None`: run as asked (zero padding, or reflection read in place).
fn reflect_padded_first(
    x: &Tensor,
    p: &Conv2dParams,
    o: Conv2dOptions,
    recording: bool,
) -> Result<Option<(Tensor, Conv2dOptions)>> {
    if !p.mirrors() {
        return Ok(None);
    }
    if !recording
        && x.device() == Device::Cpu
        && conv_algo::reflect_in_place(p, o.config, x.dtype())
    {
        return Ok(None);
    }
    let (ph, pw) = o.padding;
    let xp = x.pad2d(Pad2d::new(ph, ph, pw, pw), PadMode::Reflect)?;
    let o = Conv2dOptions {
        padding: (0, 0),
        padding_mode: PadMode::Zero,
        ..o
    };
    Ok(Some((xp, o)))
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch/Caffe): input N×C×H×W, weight
    /// O×(C/groups)×KH×KW, optional bias [O]; output N×O×OH×OW with
    /// `OH = (H + 2·pad − KH)/stride + 1`. Grouped convolutions run per group on the CPU
    /// (im2col + GEMM), depthwise ones (groups = C = O) as a direct kernel; on a GPU both as
    /// direct kernels. Errors: `ShapeMismatch` (ranks, channels, bias, kernel larger than the
    /// padded input), `InvalidArgument` (stride 0, groups 0 or not dividing C and O), `Empty`,
    /// `DTypeMismatch`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        let p = params("conv2d", self, weight, bias, opts)?;
        let need = (
            self.requires_grad(),
            weight.requires_grad(),
            bias.is_some_and(|b| b.requires_grad()),
        );
        let recording = is_grad_enabled() && (need.0 || need.1 || need.2);
        if let Some((xp, o)) = reflect_padded_first(self, &p, opts, recording)? {
            return xp.conv2d(weight, bias, o);
        }
        let op = "conv2d";
        let cfg = opts.config;
        let call = ConvCall {
            p: &p,
            cfg,
            prepared: None,
        };
        let out = backend_of_conv(op, self, weight)?.conv2d(op, self, weight, bias, call, false)?;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let w = weight.clone();
        // Save the input only when the weight gradient needs it.
        let x_saved = need.1.then(|| self.detach());
        let has_bias = bias.is_some();
        Ok(record(op, out, &inputs, move |g| {
            let op = "conv2d_backward";
            let be = backend_of_conv(op, g, &w)?;
            let call = ConvCall {
                p: &p,
                cfg,
                prepared: None,
            };
            let gx = need
                .0
                .then(|| be.conv2d_backward_input(op, g, &w, call, None))
                .transpose()?;
            let gw = x_saved
                .as_ref()
                .map(|x| be.conv2d_backward_weight(op, x, g, &p))
                .transpose()?;
            let mut grads = vec![gx, gw];
            if has_bias {
                grads.push(
                    need.2
                        .then(|| be.conv2d_backward_bias(op, g, &p))
                        .transpose()?,
                );
            }
            Ok(grads)
        }))
    }
}

/// The forward of a conv2d with frozen weights (ReLU fused in when `relu`), its input-only
/// backward recorded when `x` requires grad (`prepared`: a frozen convolution's Winograd
/// transforms, else built per call on the CPU). The output of a fused conv + ReLU is saved
/// for the ReLU mask; nothing else is.
pub(super) fn frozen(
    op: &'static str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: Conv2dOptions,
    prepared: Option<Arc<Prepared>>,
    relu: bool,
) -> Result<Tensor> {
    let p = params(op, x, weight, bias, opts)?;
    let recording = is_grad_enabled() && x.requires_grad();
    if let Some((xp, o)) = reflect_padded_first(x, &p, opts, recording)? {
        return frozen(op, &xp, weight, bias, o, prepared, relu);
    }
    let cfg = opts.config;
    let call = ConvCall {
        p: &p,
        cfg,
        prepared: prepared.as_deref(),
    };
    let out = backend_of_conv(op, x, weight)?.conv2d(op, x, weight, bias, call, relu)?;
    if !x.requires_grad() {
        return Ok(out);
    }
    let y = relu.then(|| out.clone());
    let w = weight.clone();
    Ok(record(op, out, &[x], move |g| {
        let call = ConvCall {
            p: &p,
            cfg,
            prepared: prepared.as_deref(),
        };
        let gx = backend_of_conv(op, g, &w)?.conv2d_backward_input(op, g, &w, call, y.as_ref())?;
        Ok(vec![Some(gx)])
    }))
}

impl Tensor {
    /// `relu(conv2d(self, weight, bias))` as one op (VGG's conv + ReLU pairs): the same values
    /// and gradients as `self.conv2d(weight, bias, opts)?.relu()`, without the intermediate
    /// tensor. With frozen weights (neither `weight` nor `bias` requires grad) the tape holds
    /// one node that saves only the output (for the ReLU mask), and on the CPU the ReLU runs
    /// inside the convolution's output pass; with trainable weights it is the two ops. Weights used again and again belong in a [`FrozenConv2d`](super::FrozenConv2d),
    /// which keeps their Winograd transforms. Errors: as [`Tensor::conv2d`].
    pub fn conv2d_relu(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        let trainable = weight.requires_grad() || bias.is_some_and(|b| b.requires_grad());
        if trainable {
            return self.conv2d(weight, bias, opts)?.relu();
        }
        frozen("conv2d_relu", self, weight, bias, opts, None, true)
    }
}
