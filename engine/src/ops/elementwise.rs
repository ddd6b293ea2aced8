//! Elementwise ops: add/sub/mul/div with NumPy broadcasting, scalar ops, neg, square, sqrt, abs.

use super::record;
use super::{broadcast_shapes, check_same};
use crate::autograd::is_grad_enabled;
use crate::backend::backend_of;
use crate::{Device, Result, Tensor};
use kernels::{BinaryOp, UnaryOp};

impl Tensor {
    /// `self + g` for the tape's gradient sums (same shape): in place where `self` is a
    /// contiguous tensor off the tape that nothing else holds, its storage included (a gradient a
    /// backward closure just made), and its device can add in place (the CPU); else
    /// [`Tensor::add`]. In place the sum needs no new buffer: no allocation, no zeroing, one
    /// stream fewer, and one activation-sized buffer less at the peak. Profiled as `add`.
    pub(crate) fn add_grad(mut self, g: &Tensor) -> Result<Tensor> {
        if self.shape() == g.shape() && self.dtype() == g.dtype() && self.device() == g.device() {
            if let Some(st) = self.writable_storage() {
                if backend_of("add", g)?.add_assign("add", st, g)? {
                    return Ok(self);
                }
            }
        }
        self.add(g)
    }

    /// This tensor's storage, where an op may write over it: contiguous, off the tape, and
    /// held by nobody else (neither another tensor nor a view). `None` otherwise.
    pub(crate) fn writable_storage(&mut self) -> Option<&mut crate::Storage> {
        if !self.is_contiguous() || self.0.node.is_some() {
            return None;
        }
        std::sync::Arc::get_mut(&mut self.0)
            .and_then(|inner| std::sync::Arc::get_mut(&mut inner.storage))
    }

    /// [`Tensor::add`] taking `self` by value: the same values, gradients and errors, but
    /// when nothing is recorded, `other` has `self`'s shape and dtype, and `self` holds its
    /// contiguous CPU storage alone (a layer's output; a residual sum), the sum is written
    /// over `self`: no new buffer. Profiled as `add`.
    pub fn into_add(self, other: &Tensor) -> Result<Tensor> {
        if is_grad_enabled() && (self.requires_grad() || other.requires_grad()) {
            return self.add(other);
        }
        self.add_grad(other)
    }

    /// `f(self)` written over `self` where [`Tensor::writable_storage`] allows and nothing is
    /// recorded; else `by_ref(&self)`, the op itself.
    pub(crate) fn into_unary(
        mut self,
        f: UnaryOp,
        by_ref: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let recorded = is_grad_enabled() && self.requires_grad();
        // CPU only (where the backend writes in place), so that a profile counts one call.
        if !recorded && self.device() == Device::Cpu && self.writable_storage().is_some() {
            let be = backend_of(f.name(), &self)?;
            let st = self.writable_storage().expect("checked above");
            if be.unary_in_place(f.name(), f, st)? {
                return Ok(self);
            }
        }
        by_ref(&self)
    }
}

fn binary(op_name: &'static str, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_same(op_name, a, b)?;
    let shape = broadcast_shapes(op_name, a.shape(), b.shape())?;
    let out = backend_of(op_name, a)?.binary(op_name, op, a, b, &shape)?;
    let (ac, bc) = (a.clone(), b.clone());
    let (need_a, need_b) = (a.requires_grad(), b.requires_grad());
    Ok(record(op_name, out, &[a, b], move |g| {
        let (sa, sb) = (ac.shape().to_vec(), bc.shape().to_vec());
        let (ga, gb) = match op {
            BinaryOp::Add => (need_a.then(|| g.clone()), need_b.then(|| g.clone())),
            BinaryOp::Sub => (
                need_a.then(|| g.clone()),
                need_b.then(|| g.neg()).transpose()?,
            ),
            BinaryOp::Mul => (
                need_a.then(|| g.mul(&bc)).transpose()?,
                need_b.then(|| g.mul(&ac)).transpose()?,
            ),
            BinaryOp::Div => (
                need_a.then(|| g.div(&bc)).transpose()?,
                // ∂(a/b)/∂b = −a/b²
                need_b
                    .then(|| g.mul(&ac)?.div(&bc.square()?)?.neg())
                    .transpose()?,
            ),
            // Backward maps, never recorded with a gradient of their own.
            BinaryOp::ReluGrad | BinaryOp::AbsGrad | BinaryOp::SigmoidGrad => (None, None),
        };
        Ok(vec![
            ga.map(|g| g.sum_to_shape(&sa)).transpose()?,
            gb.map(|g| g.sum_to_shape(&sb)).transpose()?,
        ])
    }))
}

/// Apply a unary map (no recording).
pub(crate) fn unary_raw(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    backend_of(op.name(), x)?.unary(op.name(), op, x)
}

impl Tensor {
    /// `self + other`, broadcasting (NumPy rules). Errors: `ShapeMismatch` if not broadcastable,
    /// `DTypeMismatch`/`DeviceMismatch`.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        binary("add", BinaryOp::Add, self, other)
    }
    /// `self − other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        binary("sub", BinaryOp::Sub, self, other)
    }
    /// `self · other` elementwise, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        binary("mul", BinaryOp::Mul, self, other)
    }
    /// `self / other` elementwise, broadcasting.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        binary("div", BinaryOp::Div, self, other)
    }
    /// `−self`.
    pub fn neg(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Neg)?;
        Ok(record("neg", out, &[self], |g| Ok(vec![Some(g.neg()?)])))
    }
    /// `self + s` for a scalar `s`.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::AddScalar(s))?;
        Ok(record("add_scalar", out, &[self], |g| {
            Ok(vec![Some(g.clone())])
        }))
    }
    /// `self · s` for a scalar `s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::MulScalar(s))?;
        Ok(record("mul_scalar", out, &[self], move |g| {
            Ok(vec![Some(g.mul_scalar(s)?)])
        }))
    }
    /// `self²` elementwise.
    pub fn square(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Square)?;
        let x = self.clone();
        Ok(record("square", out, &[self], move |g| {
            Ok(vec![Some(g.mul(&x)?.mul_scalar(2.0)?)])
        }))
    }
    /// `√self` elementwise (NaN below zero; the gradient at 0 is +∞ as in PyTorch).
    pub fn sqrt(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Sqrt)?;
        let y = out.clone();
        Ok(record("sqrt", out, &[self], move |g| {
            Ok(vec![Some(g.div(&y.mul_scalar(2.0)?)?)])
        }))
    }
    /// `|self|` elementwise (gradient sign(x), 0 at 0).
    pub fn abs(&self) -> Result<Tensor> {
        let out = unary_raw(self, UnaryOp::Abs)?;
        let x = self.clone();
        Ok(record("abs", out, &[self], move |g| {
            let op = "abs_backward";
            let gx = backend_of(op, &x)?.binary(op, BinaryOp::AbsGrad, g, &x, x.shape())?;
            Ok(vec![Some(gx)])
        }))
    }
}
