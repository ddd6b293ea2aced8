//! A convolution whose weights never train (a pretrained network's layer): it owns its weight,
//! bias and prepared CPU forms (Winograd transforms, built on first use), so repeated calls
//! transform the weights once and nothing is cached process-wide.

use super::conv2d::frozen;
use super::conv_algo::Prepared;
use super::{check_same, Conv2dOptions};
use crate::{Device, EngineError, Result, Tensor};
use std::sync::Arc;

/// conv2d with a frozen O×C×KH×KW weight and optional bias [O] (neither ever requires grad);
/// the input gradient flows through it. On the CPU its Winograd transforms are built the first
/// time a (tile, precision) is used and kept for the value's lifetime (for VGG-19 at F(4,3):
/// ≈ 4× the weights).
pub struct FrozenConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    prepared: Arc<Prepared>,
}

impl FrozenConv2d {
    /// Freeze `weight` (O×C×KH×KW) and `bias` ([O]): both are detached. Errors:
    /// `ShapeMismatch` (weight not 4-D, bias not [O]), `Empty`, `DTypeMismatch` and
    /// `DeviceMismatch` between them.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<FrozenConv2d> {
        let ws = weight.shape().to_vec();
        if ws.len() != 4 {
            return Err(EngineError::ShapeMismatch {
                op: "FrozenConv2d",
                lhs: ws,
                rhs: vec![],
                detail: "weight must be O×I×KH×KW".into(),
            });
        }
        if weight.numel() == 0 {
            return Err(EngineError::Empty {
                op: "FrozenConv2d",
                shape: ws,
            });
        }
        if let Some(b) = &bias {
            check_same("FrozenConv2d", &weight, b)?;
            if b.shape() != [ws[0]] {
                return Err(EngineError::ShapeMismatch {
                    op: "FrozenConv2d",
                    lhs: ws.clone(),
                    rhs: b.shape().to_vec(),
                    detail: format!("bias shape {:?} should be [{}]", b.shape(), ws[0]),
                });
            }
        }
        Ok(FrozenConv2d {
            weight: weight.detach(),
            bias: bias.map(|b| b.detach()),
            prepared: Arc::default(),
        })
    }

    /// The O×C×KH×KW weight.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias [O], if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The device the weights are on.
    pub fn device(&self) -> Device {
        self.weight.device()
    }

    /// A copy with the weights on `device` (its own prepared forms). Errors: as
    /// [`Tensor::to_device`].
    pub fn to_device(&self, device: Device) -> Result<FrozenConv2d> {
        FrozenConv2d::new(
            self.weight.to_device(device)?,
            self.bias
                .as_ref()
                .map(|b| b.to_device(device))
                .transpose()?,
        )
    }

    /// `conv2d(x, weight, bias)`: N×C×H×W → N×O×OH×OW, as [`Tensor::conv2d`] (same values,
    /// same errors), with the prepared forms on the CPU.
    pub fn forward(&self, x: &Tensor, opts: Conv2dOptions) -> Result<Tensor> {
        self.run(x, opts, false)
    }

    /// `relu(conv2d(x, weight, bias))` as one op, as [`Tensor::conv2d_relu`] (on the CPU the
    /// ReLU runs inside the output transform and the tape saves only the output).
    pub fn forward_relu(&self, x: &Tensor, opts: Conv2dOptions) -> Result<Tensor> {
        self.run(x, opts, true)
    }

    fn run(&self, x: &Tensor, opts: Conv2dOptions, relu: bool) -> Result<Tensor> {
        let op = if relu { "conv2d_relu" } else { "conv2d" };
        let (w, b) = (&self.weight, self.bias.as_ref());
        frozen(op, x, w, b, opts, Some(self.prepared.clone()), relu)
    }
}
