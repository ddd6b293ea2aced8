//! Shape ops: reshape, permute/transpose, expand (broadcast view), narrow (slice), contiguous.
//! Views share storage; their backward maps the gradient back to the input's shape.

use super::record_view;
use crate::backend::backend_of;
use crate::tensor::contiguous_strides;
use crate::{EngineError, Result, Tensor};
use std::sync::Arc;

impl Tensor {
    fn view_as(&self, shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), shape, strides, offset, None)
    }

    /// A contiguous copy (or `self` when already contiguous). Differentiable (identity).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let out = backend_of("contiguous", self)?.contiguous("contiguous", self)?;
        Ok(record_view("contiguous", out, self, |g| {
            Ok(vec![Some(g.clone())])
        }))
    }

    /// The same elements (row-major order) with a new shape of equal element count; a view when
    /// `self` is contiguous. Errors: `LengthMismatch`.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let expected: usize = shape.iter().product();
        if expected != self.numel() {
            return Err(EngineError::LengthMismatch {
                op: "reshape",
                len: self.numel(),
                shape: shape.to_vec(),
                expected,
            });
        }
        let src = if self.is_contiguous() {
            self.detach()
        } else {
            self.contiguous()?.detach()
        };
        let out = src.view_as(shape.to_vec(), contiguous_strides(shape), 0);
        let in_shape = self.shape().to_vec();
        Ok(record_view("reshape", out, self, move |g| {
            Ok(vec![Some(g.reshape(&in_shape)?)])
        }))
    }

    /// Reorder dimensions: output dim i is input dim `dims[i]` (a view). Errors: `InvalidArgument`
    /// unless `dims` is a permutation of 0..ndim.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let nd = self.ndim();
        let mut seen = vec![false; nd];
        if dims.len() != nd
            || dims
                .iter()
                .any(|&d| d >= nd || std::mem::replace(&mut seen[d], true))
        {
            return Err(EngineError::InvalidArgument {
                op: "permute",
                msg: format!("{dims:?} is not a permutation of 0..{nd}"),
                shape: self.shape().to_vec(),
            });
        }
        let shape = dims.iter().map(|&d| self.shape()[d]).collect();
        let strides = dims.iter().map(|&d| self.strides()[d]).collect();
        let out = self.view_as(shape, strides, self.offset());
        let mut inverse = vec![0; nd];
        for (i, &d) in dims.iter().enumerate() {
            inverse[d] = i;
        }
        Ok(record_view("permute", out, self, move |g| {
            Ok(vec![Some(g.permute(&inverse)?)])
        }))
    }

    /// Swap two dimensions (a view).
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Tensor> {
        let mut dims: Vec<usize> = (0..self.ndim()).collect();
        if d0 >= dims.len() || d1 >= dims.len() {
            return Err(EngineError::InvalidArgument {
                op: "transpose",
                msg: format!("dims {d0} and {d1} out of range"),
                shape: self.shape().to_vec(),
            });
        }
        dims.swap(d0, d1);
        self.permute(&dims)
    }

    /// Broadcast to `shape` (NumPy rules) as a view with zero strides; backward sums the
    /// gradient back. Errors: `ShapeMismatch` if not broadcastable to exactly `shape`.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        let b = super::broadcast_shapes("expand", self.shape(), shape)?;
        if b != shape {
            return Err(EngineError::ShapeMismatch {
                op: "expand",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
                detail: "cannot expand to a smaller shape".into(),
            });
        }
        let strides = super::broadcast_strides(self, shape);
        let out = self.view_as(shape.to_vec(), strides, self.offset());
        let in_shape = self.shape().to_vec();
        Ok(record_view("expand", out, self, move |g| {
            Ok(vec![Some(g.sum_to_shape(&in_shape)?)])
        }))
    }

    /// Elements `start .. start+len` along `dim` (a view). Errors: `InvalidArgument` when out
    /// of range.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        if dim >= self.ndim() || start + len > self.shape()[dim] {
            return Err(EngineError::InvalidArgument {
                op: "narrow",
                msg: format!("dim {dim}, range {start}..{}", start + len),
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = self.shape().to_vec();
        shape[dim] = len;
        let offset = self.offset() + start * self.strides()[dim];
        let out = self.view_as(shape, self.strides().to_vec(), offset);
        let in_shape = self.shape().to_vec();
        Ok(record_view("narrow", out, self, move |g| {
            // Scatter the gradient into zeros of the input's shape.
            let (op, offset) = (
                "narrow_backward",
                start * contiguous_strides(&in_shape)[dim],
            );
            let gi = backend_of(op, g)?.embed(op, g, &in_shape, offset)?;
            Ok(vec![Some(gi)])
        }))
    }

    /// True when two tensors share the same storage buffer.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
}
