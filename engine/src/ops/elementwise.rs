//! Elementwise ops: add/sub/mul/div with NumPy broadcasting, scalar ops, neg, square, sqrt, abs.

use super::cuda::{self as dev_ops, device_of};
use super::record;
use super::{broadcast_shapes, broadcast_strides, check_same};
use crate::storage::Element;
use crate::{dispatch_float, Result, Tensor};
use kernels::cpu::elementwise as k;
use kernels::cuda::elementwise::{self as cu, BinaryOp as CuBin, UnaryOp as CuUnary};
use kernels::cuda::CudaDevice;
use kernels::Float as _;

#[derive(Clone, Copy, Debug)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

fn binary_forward<T: Element>(
    op: BinOp,
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
) -> Result<Tensor> {
    let name = "binary";
    let mut out = vec![T::ZERO; shape.iter().product()];
    if a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous() {
        let (x, y) = (a.storage_slice::<T>(name)?, b.storage_slice::<T>(name)?);
        match op {
            BinOp::Add => k::binary(x, y, &mut out, |p, q| p + q),
            BinOp::Sub => k::binary(x, y, &mut out, |p, q| p - q),
            BinOp::Mul => k::binary(x, y, &mut out, |p, q| p * q),
            BinOp::Div => k::binary(x, y, &mut out, |p, q| p / q),
        }
    } else {
        let (sa, sb) = (broadcast_strides(a, shape), broadcast_strides(b, shape));
        let (x, y) = (a.storage_slice::<T>(name)?, b.storage_slice::<T>(name)?);
        let (oa, ob) = (a.offset(), b.offset());
        match op {
            BinOp::Add => k::binary_strided(shape, x, &sa, oa, y, &sb, ob, &mut out, |p, q| p + q),
            BinOp::Sub => k::binary_strided(shape, x, &sa, oa, y, &sb, ob, &mut out, |p, q| p - q),
            BinOp::Mul => k::binary_strided(shape, x, &sa, oa, y, &sb, ob, &mut out, |p, q| p * q),
            BinOp::Div => k::binary_strided(shape, x, &sa, oa, y, &sb, ob, &mut out, |p, q| p / q),
        }
    }
    Tensor::from_vec(out, shape)
}

/// `op(a, b)` on the GPU, broadcast to `shape`: the plain kernel when both operands are
/// contiguous and of that shape, the strided one otherwise (no copies).
pub(crate) fn binary_cuda<T: Element>(
    dev: &CudaDevice,
    op: CuBin,
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
) -> Result<Tensor> {
    let name = "binary";
    let (x, y) = (
        dev_ops::storage_slice::<T>(name, a)?,
        dev_ops::storage_slice::<T>(name, b)?,
    );
    let out = if a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()
    {
        cu::binary(dev, op, x, y, a.numel())
    } else {
        let (sa, sb) = (broadcast_strides(a, shape), broadcast_strides(b, shape));
        cu::binary_strided(dev, op, shape, x, &sa, a.offset(), y, &sb, b.offset())
    };
    Ok(dev_ops::wrap(out.map_err(dev_ops::err(name, dev))?, shape))
}

fn binary(op_name: &'static str, op: BinOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_same(op_name, a, b)?;
    let shape = broadcast_shapes(op_name, a.shape(), b.shape())?;
    let out = if let Some(dev) = device_of(op_name, a)? {
        let cop = match op {
            BinOp::Add => CuBin::Add,
            BinOp::Sub => CuBin::Sub,
            BinOp::Mul => CuBin::Mul,
            BinOp::Div => CuBin::Div,
        };
        dispatch_float!(op_name, a.dtype(), T => binary_cuda::<T>(&dev, cop, a, b, &shape)?)
    } else {
        dispatch_float!(op_name, a.dtype(), T => binary_forward::<T>(op, a, b, &shape)?)
    };
    let (ac, bc) = (a.clone(), b.clone());
    let (need_a, need_b) = (a.requires_grad(), b.requires_grad());
    Ok(record(op_name, out, &[a, b], move |g| {
        let (sa, sb) = (ac.shape().to_vec(), bc.shape().to_vec());
        let (ga, gb) = match op {
            BinOp::Add => (need_a.then(|| g.clone()), need_b.then(|| g.clone())),
            BinOp::Sub => (
                need_a.then(|| g.clone()),
                need_b.then(|| g.neg()).transpose()?,
            ),
            BinOp::Mul => (
                need_a.then(|| g.mul(&bc)).transpose()?,
                need_b.then(|| g.mul(&ac)).transpose()?,
            ),
            BinOp::Div => (
                need_a.then(|| g.div(&bc)).transpose()?,
                // ∂(a/b)/∂b = −a/b²
                need_b
                    .then(|| g.mul(&ac)?.div(&bc.square()?)?.neg())
                    .transpose()?,
            ),
        };
        Ok(vec![
            ga.map(|g| g.sum_to_shape(&sa)).transpose()?,
            gb.map(|g| g.sum_to_shape(&sb)).transpose()?,
        ])
    }))
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Unary {
    Neg,
    AddScalar(f64),
    MulScalar(f64),
    Square,
    Sqrt,
    Abs,
    Relu,
}

/// Apply a unary map (no recording).
pub(crate) fn unary_raw(x: &Tensor, u: Unary) -> Result<Tensor> {
    if let Some(dev) = device_of("unary", x)? {
        let op = match u {
            Unary::Neg => CuUnary::Neg,
            Unary::AddScalar(s) => CuUnary::AddScalar(s),
            Unary::MulScalar(s) => CuUnary::MulScalar(s),
            Unary::Square => CuUnary::Square,
            Unary::Sqrt => CuUnary::Sqrt,
            Unary::Abs => CuUnary::Abs,
            Unary::Relu => CuUnary::Relu,
        };
        return dispatch_float!("unary", x.dtype(), T => {
            let data = dev_ops::contiguous::<T>("unary", &dev, x)?;
            let out = cu::unary(&dev, &data, x.numel(), op).map_err(dev_ops::err("unary", &dev))?;
            Ok(dev_ops::wrap(out, x.shape()))
        });
    }
    dispatch_float!("unary", x.dtype(), T => {
        let data = x.contiguous_data::<T>("unary")?;
        let mut out = vec![T::ZERO; data.len()];
        match u {
            Unary::Neg => k::unary(&data, &mut out, |v| -v),
            Unary::AddScalar(s) => { let s = T::from_f64(s); k::unary(&data, &mut out, |v| v + s) }
            Unary::MulScalar(s) => { let s = T::from_f64(s); k::unary(&data, &mut out, |v| v * s) }
            Unary::Square => k::unary(&data, &mut out, |v| v * v),
            Unary::Sqrt => k::unary(&data, &mut out, |v| v.sqrt()),
            Unary::Abs => k::unary(&data, &mut out, |v| v.abs()),
            Unary::Relu => k::unary(&data, &mut out, |v| if v > T::ZERO { v } else { T::ZERO }),
        }
        Tensor::from_vec(out, x.shape())
    })
}

impl Tensor {
    /// `self + other`, broadcasting (NumPy rules). Errors: `ShapeMismatch` if not broadcastable,
    /// `DTypeMismatch`/`DeviceMismatch`.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        binary("add", BinOp::Add, self, other)
    }
    /// `self − other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        binary("sub", BinOp::Sub, self, other)
    }
    /// `self · other` elementwise, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        binary("mul", BinOp::Mul, self, other)
    }
    /// `self / other` elementwise, broadcasting.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        binary("div", BinOp::Div, self, other)
    }
    /// `−self`.
    pub fn neg(&self) -> Result<Tensor> {
        let out = unary_raw(self, Unary::Neg)?;
        Ok(record("neg", out, &[self], |g| Ok(vec![Some(g.neg()?)])))
    }
    /// `self + s` for a scalar `s`.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        let out = unary_raw(self, Unary::AddScalar(s))?;
        Ok(record("add_scalar", out, &[self], |g| {
            Ok(vec![Some(g.clone())])
        }))
    }
    /// `self · s` for a scalar `s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        let out = unary_raw(self, Unary::MulScalar(s))?;
        Ok(record("mul_scalar", out, &[self], move |g| {
            Ok(vec![Some(g.mul_scalar(s)?)])
        }))
    }
    /// `self²` elementwise.
    pub fn square(&self) -> Result<Tensor> {
        let out = unary_raw(self, Unary::Square)?;
        let x = self.clone();
        Ok(record("square", out, &[self], move |g| {
            Ok(vec![Some(g.mul(&x)?.mul_scalar(2.0)?)])
        }))
    }
    /// `√self` elementwise (NaN below zero; the gradient at 0 is +∞ as in PyTorch).
    pub fn sqrt(&self) -> Result<Tensor> {
        let out = unary_raw(self, Unary::Sqrt)?;
        let y = out.clone();
        Ok(record("sqrt", out, &[self], move |g| {
            Ok(vec![Some(g.div(&y.mul_scalar(2.0)?)?)])
        }))
    }
    /// `|self|` elementwise (gradient sign(x), 0 at 0).
    pub fn abs(&self) -> Result<Tensor> {
        let out = unary_raw(self, Unary::Abs)?;
        let x = self.clone();
        Ok(record("abs", out, &[self], move |g| {
            if let Some(dev) = device_of("abs_backward", &x)? {
                let gd = dispatch_float!("abs_backward", x.dtype(), T => {
                    binary_cuda::<T>(&dev, CuBin::AbsGrad, g, &x, x.shape())?
                });
                return Ok(vec![Some(gd)]);
            }
            let gd = dispatch_float!("abs_backward", x.dtype(), T => {
                let (gv, xv) = (g.contiguous_data::<T>("abs")?, x.contiguous_data::<T>("abs")?);
                let mut o = vec![T::ZERO; gv.len()];
                k::binary(&gv, &xv, &mut o, |g, x| if x > T::ZERO { g } else if x < T::ZERO { -g } else { T::ZERO });
                Tensor::from_vec(o, x.shape())?
            });
            Ok(vec![Some(gd)])
        }))
    }
}
