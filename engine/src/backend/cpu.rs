//! The CPU backend: `kernels::cpu` on host vectors (and `ops/conv_algo.rs` for convolutions:
//! Winograd or im2col, prepared weight transforms, fused ReLU).

use super::{Argmax, Backend, ConvCall};
use crate::ops::broadcast_strides;
use crate::ops::conv_algo;
use crate::ops::optim::AdamParams;
use crate::ops::sort::{IndexData, Indices};
use crate::storage::Element;
use crate::tensor::contiguous_strides;
use crate::{dispatch_float, DType, EngineError, Result, Storage, Tensor};
use kernels::cpu::buffers::BufferPool;
use kernels::cpu::conv2d::{self as conv, Conv2dParams};
use kernels::cpu::elementwise as ew;
use kernels::cpu::gemm::{gemm, MatLayout};
use kernels::cpu::gram;
use kernels::cpu::pool2d::{self as pool, Pool2dParams};
use kernels::cpu::{adam as adam_kernel, reduce, sort, symeig};
use kernels::{BinaryOp, Float as _, UnaryOp};

/// The host, with its work-buffer pool (im2col columns and Winograd tiles reused from one call
/// to the next: see `kernels::cpu::buffers`).
pub(crate) struct Cpu {
    buffers: &'static BufferPool,
}

/// The host's work buffers: one pool for the host device, owned here and lent to the kernels
/// through [`Cpu`] (the kernels hold no pool of their own).
static HOST_BUFFERS: BufferPool = BufferPool::new();

impl Cpu {
    /// The backend of the host device.
    pub(crate) fn host() -> Cpu {
        Cpu {
            buffers: &HOST_BUFFERS,
        }
    }
}

/// Layout of the matrices of a 2-D or 3-D tensor (the last two dims).
fn layout(t: &Tensor) -> MatLayout {
    let nd = t.ndim();
    MatLayout {
        rows: t.shape()[nd - 2],
        cols: t.shape()[nd - 1],
        rs: t.strides()[nd - 2],
        cs: t.strides()[nd - 1],
    }
}

fn matmul<T: Element>(a: &Tensor, b: &Tensor, batch: usize, m: usize, n: usize) -> Result<Vec<T>> {
    let (ad, bd) = (
        a.storage_slice::<T>("matmul")?,
        b.storage_slice::<T>("matmul")?,
    );
    let (la, lb) = (layout(a), layout(b));
    let a_bs = if a.ndim() == 3 { a.strides()[0] } else { 0 };
    let b_bs = if b.ndim() == 3 { b.strides()[0] } else { 0 };
    let mut out = vec![T::ZERO; batch * m * n];
    for i in 0..batch {
        gemm(
            T::ONE,
            &ad[a.offset() + i * a_bs..],
            la,
            &bd[b.offset() + i * b_bs..],
            lb,
            T::ZERO,
            &mut out[i * m * n..(i + 1) * m * n],
            MatLayout::row_major(m, n),
        );
    }
    Ok(out)
}

/// The update with nst's Adam arithmetic (`kernels::cpu::adam`), as new tensors.
fn adam<T: Element>(
    x: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    p: &AdamParams,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "adam_step";
    let (mut xs, gs) = (x.to_vec::<T>()?, g.contiguous_data::<T>(op)?);
    let (mut ms, mut vs) = (m.to_vec::<T>()?, v.to_vec::<T>()?);
    adam_kernel::adam_step(&mut xs, &gs, &mut ms, &mut vs, p);
    let s = x.shape();
    Ok((
        Tensor::from_vec(xs, s)?,
        Tensor::from_vec(ms, s)?,
        Tensor::from_vec(vs, s)?,
    ))
}

/// The host values of `idx`, or `DeviceMismatch` when they live on a GPU.
fn host_indices<'a>(op: &'static str, x: &Tensor, idx: &'a Indices) -> Result<&'a [u32]> {
    match &*idx.data {
        IndexData::Host(v) => Ok(v),
        IndexData::Device(on, _) => Err(EngineError::DeviceMismatch {
            op,
            lhs: x.device(),
            rhs: *on,
        }),
    }
}

/// Eigenvalues (ascending) and eigenvectors (columns, row-major n×n) of the symmetric part of
/// the row-major n×n `a`, in f64 (`kernels::cpu::symeig`); the CUDA backend calls it too.
pub(crate) fn sym_eig_host(op: &'static str, a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut sym = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            sym[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    let (mut vals, mut vecs) = (vec![0.0; n], vec![0.0; n * n]);
    symeig::sym_eig(&sym, n, &mut vals, &mut vecs).map_err(|e| EngineError::InvalidArgument {
        op,
        msg: e.to_string(),
        shape: vec![n, n],
    })?;
    Ok((vals, vecs))
}

impl Backend for Cpu {
    fn unary(&self, op: &'static str, f: UnaryOp, x: &Tensor) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            let data = x.contiguous_data::<T>(op)?;
            let mut out = vec![T::ZERO; data.len()];
            ew::unary_op(f, &data, &mut out);
            Tensor::from_vec(out, x.shape())
        })
    }

    fn binary(
        &self,
        op: &'static str,
        f: BinaryOp,
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
    ) -> Result<Tensor> {
        dispatch_float!(op, a.dtype(), T => {
            let mut out = vec![T::ZERO; shape.iter().product()];
            if a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous() {
                let (x, y) = (a.storage_slice::<T>(op)?, b.storage_slice::<T>(op)?);
                ew::binary_op(f, x, y, &mut out);
            } else {
                let (sa, sb) = (broadcast_strides(a, shape), broadcast_strides(b, shape));
                let (x, y) = (a.storage_slice::<T>(op)?, b.storage_slice::<T>(op)?);
                let (oa, ob) = (a.offset(), b.offset());
                ew::binary_strided_op(f, shape, x, &sa, oa, y, &sb, ob, &mut out);
            }
            Tensor::from_vec(out, shape)
        })
    }

    fn unary_in_place(&self, _op: &'static str, f: UnaryOp, x: &mut Storage) -> Result<bool> {
        match x {
            Storage::F32(v) => ew::unary_op_in_place(f, v),
            Storage::F64(v) => ew::unary_op_in_place(f, v),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn add_assign(&self, op: &'static str, acc: &mut Storage, g: &Tensor) -> Result<bool> {
        if !g.is_contiguous() || acc.len() != g.numel() || acc.dtype() != g.dtype() {
            return Ok(false);
        }
        match acc {
            Storage::F32(a) => ew::add_assign(a, g.storage_slice::<f32>(op)?),
            Storage::F64(a) => ew::add_assign(a, g.storage_slice::<f64>(op)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn contiguous(&self, op: &'static str, x: &Tensor) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            Tensor::from_vec(x.contiguous_data::<T>(op)?.into_owned(), x.shape())
        })
    }

    fn embed(
        &self,
        op: &'static str,
        src: &Tensor,
        shape: &[usize],
        offset: usize,
    ) -> Result<Tensor> {
        dispatch_float!(op, src.dtype(), T => {
            let mut full = vec![T::ZERO; shape.iter().product()];
            let strides = contiguous_strides(shape);
            let sd = src.contiguous_data::<T>(op)?;
            ew::copy_to_strided(&sd, &mut full, src.shape(), &strides, offset);
            Tensor::from_vec(full, shape)
        })
    }

    fn sum_all(&self, op: &'static str, x: &Tensor) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            let d = x.contiguous_data::<T>(op)?;
            Tensor::from_vec(vec![reduce::sum_all(&d)], &[])
        })
    }

    fn sum_axis(
        &self,
        op: &'static str,
        x: &Tensor,
        axis: usize,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let s = x.shape();
        let (outer, inner) = (
            s[..axis].iter().product(),
            s[axis + 1..].iter().product::<usize>(),
        );
        dispatch_float!(op, x.dtype(), T => {
            let d = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; outer * inner];
            reduce::sum_axis(&d, outer, s[axis], inner, &mut o);
            Tensor::from_vec(o, out_shape)
        })
    }

    fn dot(&self, op: &'static str, a: &Tensor, b: &Tensor) -> Result<f64> {
        dispatch_float!(op, a.dtype(), T => {
            let a = a.contiguous_data::<T>(op)?;
            let b = b.contiguous_data::<T>(op)?;
            // Fixed-size chunks, summed in order: the same bits for any thread count.
            use rayon::prelude::*;
            let partial: Vec<f64> = a
                .par_chunks(1 << 14)
                .zip(b.par_chunks(1 << 14))
                .map(|(x, y)| x.iter().zip(y).map(|(&p, &q)| p.to_f64() * q.to_f64()).sum())
                .collect();
            Ok(partial.iter().sum())
        })
    }

    fn matmul(
        &self,
        op: &'static str,
        a: &Tensor,
        b: &Tensor,
        batch: usize,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let (m, n) = (a.shape()[a.ndim() - 2], b.shape()[b.ndim() - 1]);
        dispatch_float!(op, a.dtype(), T => {
            Tensor::from_vec(matmul::<T>(a, b, batch, m, n)?, out_shape)
        })
    }

    fn conv2d(
        &self,
        op: &'static str,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        c: ConvCall<'_>,
        relu: bool,
    ) -> Result<Tensor> {
        let p = c.p;
        dispatch_float!(op, x.dtype(), T => {
            let (xd, wd) = (x.contiguous_data::<T>(op)?, w.contiguous_data::<T>(op)?);
            let b = b.map(|b| b.contiguous_data::<T>(op)).transpose()?;
            let mut o = vec![T::ZERO; p.output_len()];
            conv_algo::forward(self.buffers, p, c.cfg, c.prepared, &xd, &wd, b.as_deref(), &mut o, relu);
            Tensor::from_vec(o, &[p.n, p.c_out, p.out_h(), p.out_w()])
        })
    }

    fn conv2d_backward_input(
        &self,
        op: &'static str,
        g: &Tensor,
        w: &Tensor,
        c: ConvCall<'_>,
        relu_out: Option<&Tensor>,
    ) -> Result<Tensor> {
        let p = c.p;
        dispatch_float!(op, g.dtype(), T => {
            let gv = g.contiguous_data::<T>(op)?;
            let wd = w.contiguous_data::<T>(op)?;
            let mut gx = vec![T::ZERO; p.input_len()];
            let y = relu_out.map(|y| y.contiguous_data::<T>(op)).transpose()?;
            let (pool, cfg, prepared) = (self.buffers, c.cfg, c.prepared);
            conv_algo::backward_input(pool, p, cfg, prepared, &gv, y.as_deref(), &wd, &mut gx);
            Tensor::from_vec(gx, &[p.n, p.c_in, p.h, p.w])
        })
    }

    fn conv2d_backward_weight(
        &self,
        op: &'static str,
        x: &Tensor,
        g: &Tensor,
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        dispatch_float!(op, g.dtype(), T => {
            let (xd, gd) = (x.contiguous_data::<T>(op)?, g.contiguous_data::<T>(op)?);
            let mut o = vec![T::ZERO; p.weight_len()];
            conv::conv2d_backward_weight(self.buffers, p, &xd, &gd, &mut o);
            Tensor::from_vec(o, &[p.c_out, p.c_in_per_group(), p.kh, p.kw])
        })
    }

    fn conv2d_backward_bias(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        dispatch_float!(op, g.dtype(), T => {
            let gd = g.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; p.c_out];
            conv::conv2d_backward_bias(p, &gd, &mut o);
            Tensor::from_vec(o, &[p.c_out])
        })
    }

    fn sort_last(&self, op: &'static str, x: &Tensor) -> Result<(Tensor, Indices)> {
        let len = *x.shape().last().expect("checked by the op");
        let mut idx = vec![0u32; x.numel()];
        let vals = dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut v = vec![T::ZERO; xd.len()];
            sort::sort_rows(&xd, len, &mut v, &mut idx);
            Tensor::from_vec(v, x.shape())?
        });
        Ok((
            vals,
            Indices::from_data(IndexData::Host(idx), x.shape(), len),
        ))
    }

    fn gather_last(&self, op: &'static str, x: &Tensor, idx: &Indices) -> Result<Tensor> {
        let ix = host_indices(op, x, idx)?;
        let (len, k) = (
            *x.shape().last().expect("checked"),
            *idx.shape().last().expect("checked"),
        );
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; ix.len()];
            sort::gather_rows(&xd, len, ix, k, &mut o);
            Tensor::from_vec(o, idx.shape())
        })
    }

    fn scatter_add_last(
        &self,
        op: &'static str,
        g: &Tensor,
        idx: &Indices,
        len: usize,
    ) -> Result<Tensor> {
        let ix = host_indices(op, g, idx)?;
        let k = *idx.shape().last().expect("checked");
        let mut shape = idx.shape().to_vec();
        *shape.last_mut().expect("checked") = len;
        dispatch_float!(op, g.dtype(), T => {
            let gd = g.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; shape.iter().product()];
            sort::scatter_add_rows(&gd, ix, k, len, &mut o);
            Tensor::from_vec(o, &shape)
        })
    }

    fn sym_eig(&self, op: &'static str, a: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = a.shape()[0];
        let (vals, vecs) = sym_eig_host(op, &a.to_vec_f64()?, n)?;
        Ok((
            Tensor::from_vec(vals, &[n])?.cast(a.dtype())?,
            Tensor::from_vec(vecs, &[n, n])?.cast(a.dtype())?,
        ))
    }

    fn max_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        p: &Pool2dParams,
        keep_argmax: bool,
    ) -> Result<(Tensor, Option<Argmax>)> {
        let mut argmax = vec![0u32; p.output_len()];
        let out = dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; p.output_len()];
            pool::max_pool2d_forward(p, &xd, &mut o, &mut argmax);
            Tensor::from_vec(o, &[p.n, p.c, p.out_h(), p.out_w()])?
        });
        Ok((out, keep_argmax.then_some(Argmax::Host(argmax))))
    }

    fn max_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Pool2dParams,
        argmax: &Argmax,
    ) -> Result<Tensor> {
        let argmax = match argmax {
            Argmax::Host(a) => a,
            Argmax::Device(on, _) => {
                return Err(EngineError::DeviceMismatch {
                    op,
                    lhs: g.device(),
                    rhs: *on,
                })
            }
        };
        dispatch_float!(op, g.dtype(), T => {
            let gd = g.contiguous_data::<T>(op)?;
            let mut gi = vec![T::ZERO; p.input_len()];
            pool::max_pool2d_backward(p, &gd, argmax, &mut gi);
            Tensor::from_vec(gi, &[p.n, p.c, p.h, p.w])
        })
    }

    fn avg_pool2d(&self, op: &'static str, x: &Tensor, p: &Pool2dParams) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; p.output_len()];
            pool::avg_pool2d_forward(p, &xd, &mut o);
            Tensor::from_vec(o, &[p.n, p.c, p.out_h(), p.out_w()])
        })
    }

    fn avg_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &Pool2dParams,
    ) -> Result<Tensor> {
        dispatch_float!(op, g.dtype(), T => {
            let gd = g.contiguous_data::<T>(op)?;
            let mut gi = vec![T::ZERO; p.input_len()];
            pool::avg_pool2d_backward(p, &gd, &mut gi);
            Tensor::from_vec(gi, &[p.n, p.c, p.h, p.w])
        })
    }

    fn gram(&self, op: &'static str, f: &Tensor, scale: f64) -> Result<Tensor> {
        let (n, c, hw) = (f.shape()[0], f.shape()[1], f.shape()[2]);
        dispatch_float!(op, f.dtype(), T => {
            let fd = f.contiguous_data::<T>(op)?;
            let mut out = vec![T::ZERO; n * c * c];
            for (fb, gb) in fd.chunks(c * hw).zip(out.chunks_mut(c * c)) {
                gram::gram(fb, c, hw, T::from_f64(scale), gb);
            }
            Tensor::from_vec(out, &[n, c, c])
        })
    }

    fn gram_backward(&self, op: &'static str, s: &Tensor, f: &Tensor) -> Result<Tensor> {
        let (n, c, hw) = (f.shape()[0], f.shape()[1], f.shape()[2]);
        dispatch_float!(op, s.dtype(), T => {
            let sd = s.contiguous_data::<T>(op)?;
            let fd = f.contiguous_data::<T>(op)?;
            let mut out = vec![T::ZERO; n * c * hw];
            for ((sb, fb), ob) in sd.chunks(c * c).zip(fd.chunks(c * hw)).zip(out.chunks_mut(c * hw)) {
                gram::gram_backward(sb, fb, c, hw, ob);
            }
            Tensor::from_vec(out, &[n, c, hw])
        })
    }

    fn adam_step(
        &self,
        op: &'static str,
        x: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        p: &AdamParams,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        dispatch_float!(op, x.dtype(), T => adam::<T>(x, g, m, v, p))
    }

    fn cast(&self, op: &'static str, x: &Tensor, dtype: DType) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), S => {
            let data = x.contiguous_data::<S>(op)?;
            dispatch_float!(op, dtype, D => {
                let v: Vec<D> = data.iter().map(|x| D::from_f64(x.to_f64())).collect();
                Ok(Tensor::from_storage(D::into_storage(v), x.shape()))
            })
        })
    }
}
