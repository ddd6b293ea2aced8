//! Moves between devices and float dtypes: `to_device` (host ↔ GPU, GPU → GPU through the host)
//! and `cast` (f32 ↔ f64). Both are views for the backward schedule: the gradient goes back
//! the same way.

use super::cuda::device_of;
use super::record_view;
use crate::storage::{Element, Storage};
use crate::{dispatch_float, DType, Device, EngineError, Result, Tensor};
use kernels::Float as _;

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
        let out = match (from, device) {
            (Device::Cuda(_), Device::Cuda(_)) => {
                // GPU → GPU: through the host (peer copies are not worth the complexity here).
                return self.to_device(Device::Cpu)?.to_device(device);
            }
            (Device::Cpu, Device::Cuda(n)) => {
                let op = "to_device";
                let dev = kernels::cuda::device(n).map_err(|e| EngineError::from_cuda(op, n, e))?;
                let buf = dispatch_float!(op, self.dtype(), T => {
                    let data = self.contiguous_data::<T>(op)?;
                    dev.htod::<T>(&data).map_err(|e| EngineError::from_cuda(op, n, e))?
                });
                Tensor::from_storage(Storage::Cuda(buf), self.shape())
            }
            (_, Device::Cpu) => dispatch_float!("to_device", self.dtype(), T => {
                Tensor::from_vec(self.to_vec::<T>()?, self.shape())?
            }),
        };
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
        let out = if let Some(dev) = device_of("cast", self)? {
            self.cast_cuda(&dev, dtype)?
        } else {
            dispatch_float!("cast", src, S => {
                let data = self.contiguous_data::<S>("cast")?;
                dispatch_float!("cast", dtype, D => {
                    let v: Vec<D> = data.iter().map(|x| D::from_f64(x.to_f64())).collect();
                    Tensor::from_storage(D::into_storage(v), self.shape())
                })
            })
        };
        Ok(record_view("cast", out, self, move |g| {
            Ok(vec![Some(g.cast(src)?)])
        }))
    }
}

impl Tensor {
    /// f32 ↔ f64 on the GPU.
    fn cast_cuda(&self, dev: &kernels::cuda::CudaDevice, dtype: DType) -> Result<Tensor> {
        use super::cuda::{contiguous, err, wrap};
        use kernels::cuda::elementwise as ew;
        let n = self.numel();
        match (self.dtype(), dtype) {
            (DType::F32, DType::F64) => {
                let x = contiguous::<f32>("cast", dev, self)?;
                let y = ew::cast_f32_to_f64(dev, &x, n).map_err(err("cast", dev))?;
                Ok(wrap(y, self.shape()))
            }
            (DType::F64, DType::F32) => {
                let x = contiguous::<f64>("cast", dev, self)?;
                let y = ew::cast_f64_to_f32(dev, &x, n).map_err(err("cast", dev))?;
                Ok(wrap(y, self.shape()))
            }
            (_, other) => Err(EngineError::UnsupportedDType {
                op: "cast",
                dtype: other,
            }),
        }
    }
}
