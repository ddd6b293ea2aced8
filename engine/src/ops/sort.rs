//! Sorting along the last axis (values + argsort) and gathering along it by an index tensor,
//! both differentiable: the backward of each is the scatter-add of the incoming gradient by the
//! indices (`Backend::scatter_add_last`). Used by the sliced Wasserstein style loss (Heitz et
//! al., CVPR 2021), which sorts projected features.
//!
//! The order is total and identical on every device: ascending, NaN after every number,
//! `-0 == +0`, ties broken by the original position (see `kernels::cpu::sort`).

use super::record;
use crate::backend::backend_of;
use crate::{Device, EngineError, Result, Tensor};
use kernels::cuda::CudaSlice;
use std::sync::Arc;

/// u32 indices along the last axis of a tensor (shape `[..., K]`), on one device: the argsort
/// that [`Tensor::sort_last`] returns and what [`Tensor::gather_last`] takes. Cheap to clone.
#[derive(Clone)]
pub struct Indices {
    shape: Vec<usize>,
    /// One more than the largest index (0 when empty): gather checks it against the row length.
    bound: usize,
    pub(crate) data: Arc<IndexData>,
}

/// Where an [`Indices`]' values live.
pub(crate) enum IndexData {
    Host(Vec<u32>),
    Device(Device, CudaSlice<u32>),
}

impl Indices {
    /// Host indices of `shape` (row-major). Errors: `InvalidArgument` when the length is not
    /// the shape's element count or `shape` has no axis.
    pub fn from_vec(data: Vec<u32>, shape: &[usize]) -> Result<Indices> {
        if shape.is_empty() || shape.iter().product::<usize>() != data.len() {
            return Err(EngineError::InvalidArgument {
                op: "Indices::from_vec",
                msg: format!("{} indices for shape {shape:?}", data.len()),
                shape: shape.to_vec(),
            });
        }
        let bound = data.iter().max().map_or(0, |m| *m as usize + 1);
        Ok(Indices {
            shape: shape.to_vec(),
            bound,
            data: Arc::new(IndexData::Host(data)),
        })
    }

    pub(crate) fn from_data(data: IndexData, shape: &[usize], bound: usize) -> Indices {
        Indices {
            shape: shape.to_vec(),
            bound,
            data: Arc::new(data),
        }
    }

    /// The shape `[..., K]`.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Where the indices live.
    pub fn device(&self) -> Device {
        match &*self.data {
            IndexData::Host(_) => Device::Cpu,
            IndexData::Device(d, _) => *d,
        }
    }

    /// The indices on the host, row-major. Errors: a device copy failing.
    pub fn to_vec(&self) -> Result<Vec<u32>> {
        crate::backend::indices_to_host("Indices::to_vec", self)
    }

    /// The indices on `device` (a copy unless already there). Errors: the device is unavailable.
    pub fn to_device(&self, device: Device) -> Result<Indices> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let data = crate::backend::indices_to_device("Indices::to_device", self, device)?;
        Ok(Indices::from_data(data, &self.shape, self.bound))
    }
}

fn last_len(op: &'static str, x: &Tensor) -> Result<usize> {
    let s = x.shape();
    match s.last() {
        None => Err(EngineError::InvalidArgument {
            op,
            msg: "needs at least one axis".into(),
            shape: s.to_vec(),
        }),
        Some(_) if x.numel() == 0 => Err(EngineError::Empty {
            op,
            shape: s.to_vec(),
        }),
        Some(&l) if l > u32::MAX as usize / 2 => Err(EngineError::InvalidArgument {
            op,
            msg: format!("last axis {l} too long for u32 indices"),
            shape: s.to_vec(),
        }),
        Some(&l) => Ok(l),
    }
}

impl Tensor {
    /// Each row along the last axis sorted ascending: (values, the argsort [`Indices`]), both
    /// of `self`'s shape, `values[.., j] = self[.., idx[.., j]]`. Differentiable w.r.t. the
    /// values: the gradient is scattered back to the positions the values came from.
    /// Errors: `InvalidArgument` for a 0-D tensor or a last axis over 2³¹, `Empty`.
    pub fn sort_last(&self) -> Result<(Tensor, Indices)> {
        let op = "sort_last";
        let len = last_len(op, self)?;
        let (vals, idx) = backend_of(op, self)?.sort_last(op, self)?;
        let saved = idx.clone();
        let vals = record(op, vals, &[self], move |g| {
            let op = "sort_last_backward";
            Ok(vec![Some(
                backend_of(op, g)?.scatter_add_last(op, g, &saved, len)?,
            )])
        });
        Ok((vals, idx))
    }

    /// `out[.., j] = self[.., idx[.., j]]` along the last axis: `idx` is `[..., K]` with the
    /// same leading axes as `self` (`[..., L]`), on the same device; returns `[..., K]`.
    /// Backward: the gradient scatter-added by `idx` (repeated indices add up).
    /// Errors: `ShapeMismatch` for other leading axes, `InvalidArgument` for an index ≥ L,
    /// `DeviceMismatch`, `Empty`.
    pub fn gather_last(&self, idx: &Indices) -> Result<Tensor> {
        let op = "gather_last";
        let len = last_len(op, self)?;
        let (s, is) = (self.shape(), idx.shape());
        if s.len() != is.len() || s[..s.len() - 1] != is[..is.len() - 1] {
            return Err(EngineError::ShapeMismatch {
                op,
                lhs: s.to_vec(),
                rhs: is.to_vec(),
                detail: "indices must have the input's leading axes".into(),
            });
        }
        if idx.bound > len {
            return Err(EngineError::InvalidArgument {
                op,
                msg: format!(
                    "index {} out of range for a last axis of {len}",
                    idx.bound - 1
                ),
                shape: s.to_vec(),
            });
        }
        if idx.device() != self.device() {
            return Err(EngineError::DeviceMismatch {
                op,
                lhs: self.device(),
                rhs: idx.device(),
            });
        }
        let out = backend_of(op, self)?.gather_last(op, self, idx)?;
        let saved = idx.clone();
        Ok(record(op, out, &[self], move |g| {
            let op = "gather_last_backward";
            Ok(vec![Some(
                backend_of(op, g)?.scatter_add_last(op, g, &saved, len)?,
            )])
        }))
    }
}
