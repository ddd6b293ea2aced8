//! The CUDA backend: `kernels::cuda` launch wrappers on device buffers. Strided inputs are
//! read through their strides where a kernel can (binary, matmul) and gathered otherwise.
//! Where the CPU has a fused or dedicated kernel and the GPU does not, the GPU composes
//! existing ones (conv2d + ReLU, Gram as a batched GEMM).

use super::{Argmax, Backend, ConvCall};
use crate::ops::broadcast_strides;
use crate::ops::optim::AdamParams;
use crate::ops::sort::{IndexData, Indices};
use crate::storage::{Element, Storage};
use crate::tensor::contiguous_strides;
use crate::{dispatch_float, DType, EngineError, Result, Tensor};
use kernels::cpu::conv2d::Conv2dParams;
use kernels::cpu::pool2d::Pool2dParams;
use kernels::cuda::gemm::{GemmMath, MatDesc};
use kernels::cuda::{self as cu, CudaBuffer, CudaDevice, CudaError, CudaSlice};
use kernels::{BinaryOp, Float as _, UnaryOp};
use std::ops::Deref;
use std::sync::Arc;

/// One GPU.
pub(crate) struct Cuda {
    dev: Arc<CudaDevice>,
}

/// `map_err` adapter: a CUDA error of `op` on `dev` as an engine error.
pub(crate) fn err(op: &'static str, dev: &CudaDevice) -> impl Fn(CudaError) -> EngineError {
    let n = dev.index();
    move |e| EngineError::from_cuda(op, n, e)
}

/// A contiguous device slice: the tensor's own buffer, or a gathered copy of a strided view.
pub(crate) enum DevData<'a, T> {
    Borrowed(&'a CudaSlice<T>),
    Owned(CudaSlice<T>),
}

impl<T> Deref for DevData<'_, T> {
    type Target = CudaSlice<T>;
    fn deref(&self) -> &CudaSlice<T> {
        match self {
            DevData::Borrowed(s) => s,
            DevData::Owned(s) => s,
        }
    }
}

/// The whole device slice behind `t` (any view of it): for strided kernels.
fn storage_slice<'a, T: Element>(op: &'static str, t: &'a Tensor) -> Result<&'a CudaSlice<T>> {
    T::cuda_slice(&t.0.storage).ok_or(EngineError::DTypeMismatch {
        op,
        lhs: t.dtype(),
        rhs: T::DTYPE,
    })
}

/// `t`'s elements in row-major order on its GPU: borrowed when contiguous, gathered otherwise.
pub(crate) fn contiguous<'a, T: Element>(
    op: &'static str,
    dev: &CudaDevice,
    t: &'a Tensor,
) -> Result<DevData<'a, T>> {
    let s = storage_slice::<T>(op, t)?;
    if t.is_contiguous() {
        return Ok(DevData::Borrowed(s));
    }
    cu::elementwise::copy_strided(dev, s, t.shape(), t.strides(), t.offset())
        .map(DevData::Owned)
        .map_err(err(op, dev))
}

/// A new contiguous tensor over a kernel's result (`shape`'s element count of it).
pub(super) fn wrap<T: Element>(s: CudaSlice<T>, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_storage(Storage::Cuda(CudaBuffer::from_slice(s, n)), shape)
}

impl Cuda {
    /// GPU `n`. Errors: `DeviceUnavailable` (no driver, libraries or such GPU).
    pub(crate) fn open(op: &'static str, n: usize) -> Result<Cuda> {
        let dev = cu::device(n).map_err(|e| EngineError::from_cuda(op, n, e))?;
        Ok(Cuda { dev })
    }

    /// A host tensor copied to this GPU (contiguous).
    pub(crate) fn upload(&self, op: &'static str, t: &Tensor) -> Result<Tensor> {
        let buf = dispatch_float!(op, t.dtype(), T => {
            let data = t.contiguous_data::<T>(op)?;
            self.dev.htod::<T>(&data).map_err(err(op, &self.dev))?
        });
        Ok(Tensor::from_storage(Storage::Cuda(buf), t.shape()))
    }

    /// `t`'s elements on this GPU, contiguous (borrowed or gathered).
    pub(super) fn data<'a, T: Element>(
        &self,
        op: &'static str,
        t: &'a Tensor,
    ) -> Result<DevData<'a, T>> {
        contiguous::<T>(op, &self.dev, t)
    }

    /// This backend's GPU.
    pub(super) fn device(&self) -> &CudaDevice {
        &self.dev
    }

    fn zeros<T: Element>(&self, op: &'static str, shape: &[usize]) -> Result<CudaSlice<T>> {
        let n = shape.iter().product();
        self.dev.alloc_zeros::<T>(n).map_err(err(op, &self.dev))
    }
}

impl Cuda {
    /// Host indices copied to this GPU.
    pub(crate) fn upload_indices(&self, op: &'static str, v: &[u32]) -> Result<CudaSlice<u32>> {
        cu::sort::upload_indices(&self.dev, v).map_err(err(op, &self.dev))
    }

    /// The first `len` indices of a buffer on this GPU, on the host.
    pub(crate) fn download_indices(
        &self,
        op: &'static str,
        s: &CudaSlice<u32>,
        len: usize,
    ) -> Result<Vec<u32>> {
        cu::sort::download_indices(&self.dev, s, len).map_err(err(op, &self.dev))
    }
}

/// The device buffer of `idx`, or `DeviceMismatch` unless it is on `x`'s GPU.
fn device_indices<'a>(
    op: &'static str,
    x: &Tensor,
    idx: &'a Indices,
) -> Result<&'a CudaSlice<u32>> {
    match &*idx.data {
        IndexData::Device(on, s) if *on == x.device() => Ok(s),
        _ => Err(EngineError::DeviceMismatch {
            op,
            lhs: x.device(),
            rhs: idx.device(),
        }),
    }
}

/// A host copy of `t` (contiguous).
pub(crate) fn to_host(op: &'static str, t: &Tensor) -> Result<Tensor> {
    dispatch_float!(op, t.dtype(), T => Tensor::from_vec(t.to_vec::<T>()?, t.shape()))
}

impl Backend for Cuda {
    fn unary(&self, op: &'static str, f: UnaryOp, x: &Tensor) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, x.dtype(), T => {
            let data = self.data::<T>(op, x)?;
            let out = cu::elementwise::unary(dev, &data, x.numel(), f).map_err(err(op, dev))?;
            Ok(wrap(out, x.shape()))
        })
    }

    /// The plain kernel when both operands are contiguous and of `shape`, the strided one
    /// otherwise (no copies).
    fn binary(
        &self,
        op: &'static str,
        f: BinaryOp,
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
    ) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, a.dtype(), T => {
            let (x, y) = (storage_slice::<T>(op, a)?, storage_slice::<T>(op, b)?);
            let out = if a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous() {
                cu::elementwise::binary(dev, f, x, y, a.numel())
            } else {
                let (sa, sb) = (broadcast_strides(a, shape), broadcast_strides(b, shape));
                cu::elementwise::binary_strided(dev, f, shape, x, &sa, a.offset(), y, &sb, b.offset())
            };
            Ok(wrap(out.map_err(err(op, dev))?, shape))
        })
    }

    fn contiguous(&self, op: &'static str, x: &Tensor) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            let s = storage_slice::<T>(op, x)?;
            let o = cu::elementwise::copy_strided(&self.dev, s, x.shape(), x.strides(), x.offset())
                .map_err(err(op, &self.dev))?;
            Ok(wrap(o, x.shape()))
        })
    }

    fn embed(
        &self,
        op: &'static str,
        src: &Tensor,
        shape: &[usize],
        offset: usize,
    ) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, src.dtype(), T => {
            let strides = contiguous_strides(shape);
            let mut full = self.zeros::<T>(op, shape)?;
            let s = storage_slice::<T>(op, src)?;
            cu::elementwise::copy_into_strided(
                dev,
                s,
                (src.strides(), src.offset()),
                &mut full,
                (&strides, offset),
                src.shape(),
            )
            .map_err(err(op, dev))?;
            Ok(wrap(full, shape))
        })
    }

    fn sum_all(&self, op: &'static str, x: &Tensor) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, x.dtype(), T => {
            let d = self.data::<T>(op, x)?;
            let s = cu::reduce::sum_all(dev, &d, x.numel()).map_err(err(op, dev))?;
            Ok(wrap(s, &[]))
        })
    }

    fn sum_axis(
        &self,
        op: &'static str,
        x: &Tensor,
        axis: usize,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let (dev, s) = (&self.dev, x.shape());
        let (outer, inner) = (s[..axis].iter().product(), s[axis + 1..].iter().product());
        dispatch_float!(op, x.dtype(), T => {
            let d = self.data::<T>(op, x)?;
            let o = cu::reduce::sum_axis(dev, &d, outer, s[axis], inner).map_err(err(op, dev))?;
            Ok(wrap(o, out_shape))
        })
    }

    /// f64 on the device, then one deterministic tree reduction.
    fn dot(&self, op: &'static str, a: &Tensor, b: &Tensor) -> Result<f64> {
        let (a, b) = (a.detach(), b.detach());
        let cast = |t: &Tensor| {
            if t.dtype() == DType::F64 {
                Ok(t.clone())
            } else {
                self.cast(op, t, DType::F64)
            }
        };
        let (a, b) = (cast(&a)?, cast(&b)?);
        let prod = self.binary(op, BinaryOp::Mul, &a, &b, a.shape())?;
        self.sum_all(op, &prod)?.item()
    }

    /// cuBLAS reads row- or column-major views (e.g. transposes) in place; other views are
    /// made contiguous first.
    fn matmul(
        &self,
        op: &'static str,
        a: &Tensor,
        b: &Tensor,
        batch: usize,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let dev = &self.dev;
        let (m, n) = (a.shape()[a.ndim() - 2], b.shape()[b.ndim() - 1]);
        let k = a.shape()[a.ndim() - 1];
        dispatch_float!(op, a.dtype(), T => {
            if k == 0 {
                return Ok(wrap(self.zeros::<T>(op, &[batch, m, n])?, out_shape));
            }
            let desc = |t: &Tensor| {
                let nd = t.ndim();
                MatDesc {
                    offset: t.offset(),
                    rows: t.shape()[nd - 2],
                    cols: t.shape()[nd - 1],
                    rs: t.strides()[nd - 2],
                    cs: t.strides()[nd - 1],
                    batch_stride: if nd == 3 { t.strides()[0] } else { 0 },
                }
            };
            // A view cuBLAS cannot read (general strides, stride-0 rows) is copied first.
            let usable = |t: &Tensor| -> Result<Tensor> {
                if desc(t).blas_layout().is_some() {
                    Ok(t.clone())
                } else {
                    self.contiguous(op, t)
                }
            };
            let (a, b) = (usable(a)?, usable(b)?);
            let (sa, sb) = (storage_slice::<T>(op, &a)?, storage_slice::<T>(op, &b)?);
            // Zeroed (cheap next to the product) so that no uninitialised memory is ever exposed.
            let mut out = self.zeros::<T>(op, &[batch, m, n])?;
            let od = MatDesc::row_major(0, m, n);
            cu::gemm::gemm(GemmMath::Exact, dev, batch, T::ONE, sa, desc(&a), sb, desc(&b), T::ZERO, &mut out, od)
                .map_err(err(op, dev))?;
            Ok(wrap(out, out_shape))
        })
    }

    /// im2col + cuBLAS, then a separate ReLU when `relu` (`c.cfg.precision` picks the GEMMs'
    /// math, [`gemm_math`]; `c.cfg.algorithm` and `c.prepared` are the CPU's).
    fn conv2d(
        &self,
        op: &'static str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        c: ConvCall<'_>,
        relu: bool,
    ) -> Result<Tensor> {
        let (dev, p) = (&self.dev, c.p);
        let y = dispatch_float!(op, x.dtype(), T => {
            let (xd, wd) = (self.data::<T>(op, x)?, self.data::<T>(op, w)?);
            let bd = b.map(|b| self.data::<T>(op, b)).transpose()?;
            let o = cu::conv2d::conv2d_forward(gemm_math(&c), dev, p, &xd, &wd, bd.as_deref()).map_err(err(op, dev))?;
            wrap(o, &[p.n, p.c_out, p.out_h(), p.out_w()])
        });
        if relu {
            self.unary(op, UnaryOp::Relu, &y)
        } else {
            Ok(y)
        }
    }

    fn conv2d_backward_input(
        &self,
        op: &'static str,
        g: &Tensor,
        w: &Tensor,
        c: ConvCall<'_>,
        relu_out: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (dev, p) = (&self.dev, c.p);
        let masked = relu_out
            .map(|y| self.binary(op, BinaryOp::ReluGrad, g, y, y.shape()))
            .transpose()?;
        let g = masked.as_ref().unwrap_or(g);
        dispatch_float!(op, g.dtype(), T => {
            let (gd, wd) = (self.data::<T>(op, g)?, self.data::<T>(op, w)?);
            let o = cu::conv2d::conv2d_backward_input(gemm_math(&c), dev, p, &gd, &wd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.n, p.c_in, p.h, p.w]))
        })
    }

    fn conv2d_backward_weight(
        &self,
        op: &'static str,
        x: &Tensor,
        g: &Tensor,
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, g.dtype(), T => {
            let (xd, gd) = (self.data::<T>(op, x)?, self.data::<T>(op, g)?);
            let o = cu::conv2d::conv2d_backward_weight(dev, p, &xd, &gd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.c_out, p.c_in_per_group(), p.kh, p.kw]))
        })
    }

    fn conv2d_backward_bias(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, g.dtype(), T => {
            let gd = self.data::<T>(op, g)?;
            let o = cu::conv2d::conv2d_backward_bias(dev, p, &gd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.c_out]))
        })
    }

    fn sort_last(&self, op: &'static str, x: &Tensor) -> Result<(Tensor, Indices)> {
        let dev = &self.dev;
        let len = *x.shape().last().expect("checked by the op");
        let rows = x.numel() / len;
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let (v, i) = cu::sort::sort_last(dev, &xd, rows, len).map_err(err(op, dev))?;
            Ok((wrap(v, x.shape()), Indices::from_data(IndexData::Device(x.device(), i), x.shape(), len)))
        })
    }

    fn gather_last(&self, op: &'static str, x: &Tensor, idx: &Indices) -> Result<Tensor> {
        let dev = &self.dev;
        let ix = device_indices(op, x, idx)?;
        let (len, k) = (
            *x.shape().last().expect("checked"),
            *idx.shape().last().expect("checked"),
        );
        let rows = x.numel() / len;
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let o = cu::sort::gather_last(dev, &xd, ix, rows, len, k).map_err(err(op, dev))?;
            Ok(wrap(o, idx.shape()))
        })
    }

    fn scatter_add_last(
        &self,
        op: &'static str,
        g: &Tensor,
        idx: &Indices,
        len: usize,
    ) -> Result<Tensor> {
        let dev = &self.dev;
        let ix = device_indices(op, g, idx)?;
        let k = *idx.shape().last().expect("checked");
        let rows = g.numel() / k.max(1);
        let mut shape = idx.shape().to_vec();
        *shape.last_mut().expect("checked") = len;
        dispatch_float!(op, g.dtype(), T => {
            let gd = self.data::<T>(op, g)?;
            let o = cu::sort::scatter_add_last(dev, &gd, ix, rows, k, len).map_err(err(op, dev))?;
            Ok(wrap(o, &shape))
        })
    }

    /// No GPU eigensolver: the n×n matrix (n ≤ 512 in VGG) goes to the host and back.
    fn sym_eig(&self, op: &'static str, a: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = a.shape()[0];
        let (vals, vecs) = super::cpu::sym_eig_host(op, &a.to_vec_f64()?, n)?;
        let vals = self.upload(op, &Tensor::from_vec(vals, &[n])?.cast(a.dtype())?)?;
        let vecs = self.upload(op, &Tensor::from_vec(vecs, &[n, n])?.cast(a.dtype())?)?;
        Ok((vals, vecs))
    }

    fn max_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        p: &Pool2dParams,
        keep_argmax: bool,
    ) -> Result<(Tensor, Option<Argmax>)> {
        let dev = &self.dev;
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let (o, a) = cu::pool2d::max_pool2d_forward(dev, p, &xd).map_err(err(op, dev))?;
            Ok((wrap(o, &[p.n, p.c, p.out_h(), p.out_w()]), keep_argmax.then_some(Argmax::Device(x.device(), a))))
        })
    }

    fn max_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Pool2dParams,
        argmax: &Argmax,
    ) -> Result<Tensor> {
        let Argmax::Device(_, argmax) = argmax else {
            return Err(EngineError::DeviceMismatch {
                op,
                lhs: g.device(),
                rhs: crate::Device::Cpu,
            });
        };
        let dev = &self.dev;
        dispatch_float!(op, g.dtype(), T => {
            let gd = self.data::<T>(op, g)?;
            let gi = cu::pool2d::max_pool2d_backward(dev, p, &gd, argmax).map_err(err(op, dev))?;
            Ok(wrap(gi, &[p.n, p.c, p.h, p.w]))
        })
    }

    fn avg_pool2d(&self, op: &'static str, x: &Tensor, p: &Pool2dParams) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let o = cu::pool2d::avg_pool2d_forward(dev, p, &xd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.n, p.c, p.out_h(), p.out_w()]))
        })
    }

    fn avg_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Pool2dParams,
    ) -> Result<Tensor> {
        let dev = &self.dev;
        dispatch_float!(op, g.dtype(), T => {
            let gd = self.data::<T>(op, g)?;
            let gi = cu::pool2d::avg_pool2d_backward(dev, p, &gd).map_err(err(op, dev))?;
            Ok(wrap(gi, &[p.n, p.c, p.h, p.w]))
        })
    }

    /// A batched cuBLAS GEMM with F and its transposed view, then the scale.
    fn gram(&self, op: &'static str, f: &Tensor, scale: f64) -> Result<Tensor> {
        let (n, c) = (f.shape()[0], f.shape()[1]);
        let ft = f.detach().transpose(1, 2)?;
        let g = self.matmul(op, f, &ft, n, &[n, c, c])?;
        self.unary(op, UnaryOp::MulScalar(scale), &g)
    }

    fn gram_backward(&self, op: &'static str, s: &Tensor, f: &Tensor) -> Result<Tensor> {
        let (n, c, hw) = (f.shape()[0], f.shape()[1], f.shape()[2]);
        self.matmul(op, s, f, n, &[n, c, hw])
    }

    /// One fused kernel.
    fn adam_step(
        &self,
        op: &'static str,
        x: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        p: &AdamParams,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (dev, shape) = (&self.dev, x.shape());
        dispatch_float!(op, x.dtype(), T => {
            let (xd, gd) = (self.data::<T>(op, x)?, self.data::<T>(op, g)?);
            let (md, vd) = (self.data::<T>(op, m)?, self.data::<T>(op, v)?);
            let (x, m, v) = cu::adam_update(dev, &xd, &gd, &md, &vd, x.numel(), p).map_err(err(op, dev))?;
            Ok((wrap(x, shape), wrap(m, shape), wrap(v, shape)))
        })
    }

    fn cast(&self, op: &'static str, x: &Tensor, dtype: DType) -> Result<Tensor> {
        let (dev, n) = (&self.dev, x.numel());
        match (x.dtype(), dtype) {
            (DType::F32, DType::F64) => {
                let d = self.data::<f32>(op, x)?;
                let y = cu::elementwise::cast_f32_to_f64(dev, &d, n).map_err(err(op, dev))?;
                Ok(wrap(y, x.shape()))
            }
            (DType::F64, DType::F32) => {
                let d = self.data::<f64>(op, x)?;
                let y = cu::elementwise::cast_f64_to_f32(dev, &d, n).map_err(err(op, dev))?;
                Ok(wrap(y, x.shape()))
            }
            (_, other) => Err(EngineError::UnsupportedDType { op, dtype: other }),
        }
    }
}

/// How cuBLAS computes a convolution's f32 GEMMs (forward and input gradient) for `c.cfg`:
/// [`Precision::Bf16`](crate::Precision) (`--precision bf16`, and `auto` on a GPU) is TF32
/// tensor-core math (operands rounded to 10-bit significands, f32 sums: what PyTorch uses for
/// convolutions by default); `F32` is IEEE f32. f64 is always exact.
fn gemm_math(c: &ConvCall<'_>) -> GemmMath {
    match c.cfg.precision {
        crate::Precision::Bf16 => GemmMath::Tf32,
        crate::Precision::F32 => GemmMath::Exact,
    }
}
