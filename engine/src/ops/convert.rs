//! Moves between devices and float dtypes: `to_device` (host ↔ GPU, GPU → GPU through the host)
//! and `cast` (f32 ↔ f64). Both are views for the backward schedule: the gradient goes back
//! the same way.

use super::record_view;
use crate::backend::{self, backend_of};
use crate::{DType, Device, Result, Tensor};

impl Tensor {
    /// This tensor on `device`: itself when already there, else a contiguous copy (host → GPU,
    /// GPU → host, or GPU → GPU through the host). Differentiable: the gradient is copied back.
    /// These are the only host ↔ device copies the engine makes besides `to_vec*`/`item`.
    /// Errors: `DeviceUnavailable` (no driver, GPU, libnvrtc or libcublas, or no such index),
    /// `OutOfMemory` naming the bytes, `UnsupportedDType` (only f32/f64 go to a GPU).
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        let from = self.device();
        if device == from {
            return Ok(self.clone());
        }
        let out = backend::to_device("to_device", self, device)?;
        Ok(record_view("to_device", out, self, move |g| {
            Ok(vec![Some(g.to_device(from)?)])
        }))
    }

    /// Convert to another float dtype (differentiable: the gradient is cast back).
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let src = self.dtype();
        let out = backend_of("cast", self)?.cast("cast", self, dtype)?;
        Ok(record_view("cast", out, self, move |g| {
            Ok(vec![Some(g.cast(src)?)])
        }))
    }
}
