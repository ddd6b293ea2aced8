//! Activations: ReLU, sigmoid, clamp (ReLU6).

use super::elementwise::unary_raw;
use super::record;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};
use kernels::{BinaryOp, UnaryOp};

impl Tensor {
    /// `max(x, 0)` elementwise. Backward: the gradient where the output is positive, else 0
    /// (0 at x = 0, as PyTorch). Saves only the output.
    pub fn relu(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Relu)?;
        let y = out.clone();
        Ok(record("relu", out, &[self], move |g| {
            let op = "relu_backward";
            // g where y > 0, else 0 (kernels::ops::BinaryOp::ReluGrad).
            let be = backend_of(op, &y)?;
            Ok(vec![Some(be.binary(
                op,
                BinaryOp::ReluGrad,
                g,
                &y,
                y.shape(),
            )?)])
        }))
    }

    /// `1 / (1 + e^(−x))` elementwise. Backward: `g·y·(1 − y)` from the output y, which is
    /// all it saves.
    pub fn sigmoid(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Sigmoid)?;
        let y = out.clone();
        Ok(record("sigmoid", out, &[self], move |g| {
            let op = "sigmoid_backward";
            let be = backend_of(op, &y)?;
            let gx = be.binary(op, BinaryOp::SigmoidGrad, g, &y, y.shape())?;
            Ok(vec![Some(gx)])
        }))
    }

    /// `min(max(x, min), max)` elementwise (`torch.clamp`). Backward: the gradient where
    /// `min ≤ x ≤ max`, else 0 (the bounds pass it, as PyTorch's clamp); saves the input.
    /// Errors: `InvalidArgument` when `min > max` or either is NaN.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(EngineError::InvalidArgument {
                op: "clamp",
                msg: format!("min {min} must be ≤ max {max}"),
                shape: self.shape().to_vec(),
            });
        }
        let out = unary_raw(self, UnaryOp::Clamp { min, max })?;
        let x = self.clone();
        Ok(record("clamp", out, &[self], move |g| {
            let op = "clamp_backward";
            let be = backend_of(op, &x)?;
            let mask = be.unary(op, UnaryOp::ClampGrad { min, max }, &x)?;
            Ok(vec![Some(be.binary(
                op,
                BinaryOp::Mul,
                g,
                &mask,
                x.shape(),
            )?)])
        }))
    }

    /// ReLU6, `min(max(x, 0), 6)` (MobileNetV2's activation): [`Tensor::clamp`]`(0, 6)`.
    pub fn relu6(&self) -> Result<Tensor> {
        self.clamp(0.0, 6.0)
    }

    /// [`Tensor::relu`] taking `self` by value: the same values, gradients and errors, but
    /// written over `self` when nothing is recorded and `self` holds its contiguous CPU
    /// storage alone (a layer's output passed on): no new buffer, half the memory traffic.
    pub fn into_relu(self) -> Result<Tensor> {
        self.into_unary(UnaryOp::Relu, Tensor::relu)
    }

    /// [`Tensor::sigmoid`] by value, written over `self` where [`Tensor::into_relu`] would be.
    pub fn into_sigmoid(self) -> Result<Tensor> {
        self.into_unary(UnaryOp::Sigmoid, Tensor::sigmoid)
    }

    /// [`Tensor::relu6`] by value, written over `self` where [`Tensor::into_relu`] would be.
    pub fn into_relu6(self) -> Result<Tensor> {
        self.into_unary(UnaryOp::Clamp { min: 0.0, max: 6.0 }, Tensor::relu6)
    }
}
