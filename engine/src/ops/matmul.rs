//! Matrix multiply: 2-D `m×k · k×n`, batched `b×m×k · b×k×n`, and `b×m×k · k×n`.
//! Operands are read through their strides (a transposed view costs no copy).

use super::check_same;
use super::cuda::{self as dev_ops, device_of};
use super::record;
use crate::storage::Element;
use crate::{dispatch_float, EngineError, Result, Tensor};
use kernels::cpu::gemm::{gemm, MatLayout};
use kernels::cuda::gemm::MatDesc;
use kernels::cuda::CudaDevice;

/// Layout of matrix `i` of a 2-D or 3-D tensor (the last two dims).
fn layout(t: &Tensor) -> MatLayout {
    let nd = t.ndim();
    MatLayout {
        rows: t.shape()[nd - 2],
        cols: t.shape()[nd - 1],
        rs: t.strides()[nd - 2],
        cs: t.strides()[nd - 1],
    }
}

fn matmul_forward<T: Element>(
    a: &Tensor,
    b: &Tensor,
    batch: usize,
    m: usize,
    n: usize,
) -> Result<Vec<T>> {
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

/// The product on the GPU through cuBLAS. Operands are read through their strides when cuBLAS
/// can (row- or column-major views, e.g. transposes); other views are made contiguous first.
fn matmul_cuda<T: Element>(
    dev: &CudaDevice,
    a: &Tensor,
    b: &Tensor,
    batch: usize,
    out_shape: &[usize],
) -> Result<Tensor> {
    let op = "matmul";
    let (m, n) = (a.shape()[a.ndim() - 2], b.shape()[b.ndim() - 1]);
    let k = a.shape()[a.ndim() - 1];
    if k == 0 {
        let z = dev
            .alloc_zeros::<T>(batch * m * n)
            .map_err(dev_ops::err(op, dev))?;
        return Ok(dev_ops::wrap(z, out_shape));
    }
    let desc = |t: &Tensor| {
        let l = layout(t);
        MatDesc {
            offset: t.offset(),
            rows: l.rows,
            cols: l.cols,
            rs: l.rs,
            cs: l.cs,
            batch_stride: if t.ndim() == 3 { t.strides()[0] } else { 0 },
        }
    };
    // A view cuBLAS cannot read (general strides, stride-0 rows) is copied first.
    let usable = |t: &Tensor| -> Result<Tensor> {
        if desc(t).blas_layout().is_some() {
            Ok(t.clone())
        } else {
            t.detach().contiguous()
        }
    };
    let (a, b) = (usable(a)?, usable(b)?);
    let (sa, sb) = (
        dev_ops::storage_slice::<T>(op, &a)?,
        dev_ops::storage_slice::<T>(op, &b)?,
    );
    // Zeroed (cheap next to the product) so that no uninitialised memory is ever exposed.
    let mut out = dev
        .alloc_zeros::<T>(batch * m * n)
        .map_err(dev_ops::err(op, dev))?;
    kernels::cuda::gemm::gemm(
        dev,
        batch,
        T::ONE,
        sa,
        desc(&a),
        sb,
        desc(&b),
        T::ZERO,
        &mut out,
        MatDesc::row_major(0, m, n),
    )
    .map_err(dev_ops::err(op, dev))?;
    Ok(dev_ops::wrap(out, out_shape))
}

impl Tensor {
    /// Matrix product. Shapes: `m×k · k×n → m×n`; `b×m×k · b×k×n → b×m×n`;
    /// `b×m×k · k×n → b×m×n`. Errors: `ShapeMismatch` on other ranks or inner dims that differ.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        check_same("matmul", self, other)?;
        let (sa, sb) = (self.shape(), other.shape());
        let bad = |detail: &str| EngineError::ShapeMismatch {
            op: "matmul",
            lhs: sa.to_vec(),
            rhs: sb.to_vec(),
            detail: detail.into(),
        };
        let batch = match (sa.len(), sb.len()) {
            (2, 2) => 1,
            (3, 2) => sa[0],
            (3, 3) if sa[0] == sb[0] => sa[0],
            (3, 3) => return Err(bad("batch sizes differ")),
            _ => return Err(bad("needs 2-D or 3-D operands")),
        };
        let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
        if sb[sb.len() - 2] != k {
            return Err(bad("inner dimensions differ"));
        }
        let out_shape: Vec<usize> = if sa.len() == 3 {
            vec![batch, m, n]
        } else {
            vec![m, n]
        };
        let out = if let Some(dev) = device_of("matmul", self)? {
            dispatch_float!("matmul", self.dtype(), T => {
                matmul_cuda::<T>(&dev, self, other, batch, &out_shape)?
            })
        } else {
            dispatch_float!("matmul", self.dtype(), T => {
                Tensor::from_vec(matmul_forward::<T>(self, other, batch, m, n)?, &out_shape)?
            })
        };
        let (a, b) = (self.clone(), other.clone());
        Ok(record("matmul", out, &[self, other], move |g| {
            let nb = b.ndim();
            // dA = dC · Bᵀ ; dB = Aᵀ · dC (summed over the batch when B is shared).
            let ga = if a.requires_grad() {
                Some(g.matmul(&b.transpose(nb - 2, nb - 1)?)?)
            } else {
                None
            };
            let gb = if !b.requires_grad() {
                None
            } else if a.ndim() == 3 && nb == 2 {
                let a2 = a.reshape(&[batch * m, k])?;
                let g2 = g.reshape(&[batch * m, n])?;
                Some(a2.transpose(0, 1)?.matmul(&g2)?)
            } else {
                let na = a.ndim();
                Some(a.transpose(na - 2, na - 1)?.matmul(g)?)
            };
            Ok(vec![ga, gb])
        }))
    }
}
