//! Reductions: sum and mean over the whole tensor or along one axis, and `sum_to_shape`
//! (the adjoint of broadcasting).

use super::record;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};

impl Tensor {
    /// Σ of all elements; shape `[]`. Backward broadcasts the gradient.
    pub fn sum(&self) -> Result<Tensor> {
        let out = backend_of("sum", self)?.sum_all("sum", self)?;
        let shape = self.shape().to_vec();
        Ok(record("sum", out, &[self], move |g| {
            Ok(vec![Some(g.expand(&shape)?.contiguous()?)])
        }))
    }

    /// Mean of all elements; shape `[]`. Errors: `Empty` for a tensor with no elements.
    pub fn mean(&self) -> Result<Tensor> {
        if self.numel() == 0 {
            return Err(EngineError::Empty {
                op: "mean",
                shape: self.shape().to_vec(),
            });
        }
        self.sum()?.mul_scalar(1.0 / self.numel() as f64)
    }

    /// Σ along `axis`; the axis is kept with length 1 when `keepdim`, else removed.
    /// Errors: `InvalidArgument` when `axis ≥ ndim`.
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        if axis >= self.ndim() {
            return Err(EngineError::InvalidArgument {
                op: "sum_axis",
                msg: format!("axis {axis} out of range"),
                shape: self.shape().to_vec(),
            });
        }
        let s = self.shape();
        let mut out_shape = s.to_vec();
        if keepdim {
            out_shape[axis] = 1;
        } else {
            out_shape.remove(axis);
        }
        let out = backend_of("sum_axis", self)?.sum_axis("sum_axis", self, axis, &out_shape)?;
        let in_shape = s.to_vec();
        Ok(record("sum_axis", out, &[self], move |g| {
            let mut kept = in_shape.clone();
            kept[axis] = 1;
            Ok(vec![Some(
                g.reshape(&kept)?.expand(&in_shape)?.contiguous()?,
            )])
        }))
    }

    /// Mean along `axis` (see [`Tensor::sum_axis`]). Errors: `Empty` when the axis has length 0.
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor> {
        let len = *self.shape().get(axis).unwrap_or(&1);
        if len == 0 {
            return Err(EngineError::Empty {
                op: "mean_axis",
                shape: self.shape().to_vec(),
            });
        }
        self.sum_axis(axis, keepdim)?.mul_scalar(1.0 / len as f64)
    }

    /// Sum a broadcast result back down to `shape` (the adjoint of broadcasting `shape` up to
    /// `self.shape()`). Errors: `ShapeMismatch` when `shape` does not broadcast to this shape.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let nd = self.ndim();
        if shape.len() > nd {
            return Err(EngineError::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
                detail: "target has more dims".into(),
            });
        }
        let lead = nd - shape.len();
        let mut t = self.clone();
        for d in (0..nd).rev() {
            let target = if d < lead { 1 } else { shape[d - lead] };
            if t.shape()[d] != target {
                if target != 1 {
                    return Err(EngineError::ShapeMismatch {
                        op: "sum_to_shape",
                        lhs: self.shape().to_vec(),
                        rhs: shape.to_vec(),
                        detail: format!("dim {d}"),
                    });
                }
                t = t.sum_axis(d, true)?;
            }
        }
        t.reshape(shape)
    }
}

impl Tensor {
    /// The dot product Σᵢ aᵢ·bᵢ of two tensors of one shape, dtype and device, accumulated in
    /// f64 and returned as a host scalar (a single 8-byte read from a GPU). Not recorded on
    /// the tape: for optimisers (L-BFGS), not for losses. Deterministic on every device.
    /// Errors: `ShapeMismatch`, `DTypeMismatch`, `DeviceMismatch`.
    pub fn dot(&self, other: &Tensor) -> Result<f64> {
        let op = "dot";
        super::check_same(op, self, other)?;
        if self.shape() != other.shape() {
            return Err(EngineError::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
                detail: "dot needs two tensors of one shape".into(),
            });
        }
        backend_of(op, self)?.dot(op, self, other)
    }
}
