//! Symmetric matrix square root with its backward, for the Wasserstein-2 style loss
//! (Gaussian W2 distance, as crowsonkb's style-transfer-pytorch `StyleLossW2`).
//!
//! **Method.** An eigendecomposition `A = V diag(λ) Vᵀ` (`Backend::sym_eig`: Householder +
//! implicit QL in f64 on the host, `kernels::cpu::symeig`; on a GPU the n×n matrix is copied to
//! the host and back, n ≤ 512 for VGG), then `√A = V diag(√max(λ, 0)) Vᵀ`. It was chosen over
//! Newton–Schulz iterations after measuring both on the covariances of VGG-19 features
//! (chelsea × starry_night at 256 px, eps·I = 1e-4·I added): the trace term of W2 computed with
//! coupled Newton–Schulz in f32 is off by 7e-4 … 3e-2 (relative) after 15–20 iterations and
//! diverges (NaN) after 30, because the matrices' condition numbers reach 1e12 (relu5_1 has
//! 512 channels but few pixels); the eigendecomposition in f64 is exact to rounding.
//! **Cost**: ≈ 9n³ flops per call (n = 512: 0.09 s on one core,
//! `kernels/examples/symeig_speed.rs`), once per style layer and evaluation; the backward
//! reuses the forward's eigenvectors (four n×n matmuls).
//!
//! **Backward** (Ionescu, Vantzos & Sminchisescu, *Matrix Backpropagation for Deep Networks
//! with Structured Layers*, ICCV 2015): for `X = √A`, `dA = X dX + dX X`, so in the eigenbasis
//! `∂L/∂A = V ((Vᵀ Ḡ V) ⊘ (dᵢ + dⱼ)) Vᵀ` with `Ḡ = (G + Gᵀ)/2` and `d = √λ`; entries with
//! `dᵢ + dⱼ = 0` (two zero eigenvalues: the derivative is infinite there) are set to 0. Callers
//! that differentiate through rank-deficient matrices add `eps·I` first.

use super::record;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};

impl Tensor {
    /// Eigendecomposition of the symmetric n×n `self` (its symmetric part `(A + Aᵀ)/2` is
    /// used): (eigenvalues `[n]` ascending, eigenvectors `[n, n]` as columns), in `self`'s dtype
    /// and on its device, not differentiable. Errors: `InvalidArgument` unless square 2-D or
    /// when an entry is not finite, `Empty`.
    pub fn sym_eig(&self) -> Result<(Tensor, Tensor)> {
        let op = "sym_eig";
        check_square(op, self)?;
        backend_of(op, self)?.sym_eig(op, &self.detach())
    }

    /// Principal square root `√A = V diag(√max(λ, 0)) Vᵀ` of the symmetric positive
    /// semi-definite n×n `self` (of its symmetric part), n×n; differentiable (see the module
    /// docs for the method, cost and backward). Errors: as [`Tensor::sym_eig`].
    pub fn sqrtm(&self) -> Result<Tensor> {
        let op = "sqrtm";
        let (vals, vecs) = self.sym_eig()?;
        let d: Vec<f64> = vals
            .to_vec_f64()?
            .iter()
            .map(|l| l.max(0.0).sqrt())
            .collect();
        let n = d.len();
        let row = Tensor::from_vec(d.clone(), &[1, n])?
            .cast(self.dtype())?
            .to_device(self.device())?;
        let out = vecs.mul(&row)?.matmul(&vecs.transpose(0, 1)?)?;
        let mut recip = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                let s = d[i] + d[j];
                recip[i * n + j] = if s > 0.0 { 1.0 / s } else { 0.0 };
            }
        }
        let recip = Tensor::from_vec(recip, &[n, n])?
            .cast(self.dtype())?
            .to_device(self.device())?;
        Ok(record(op, out, &[self], move |g| {
            let vt = vecs.transpose(0, 1)?;
            let gs = g.add(&g.transpose(0, 1)?)?.mul_scalar(0.5)?;
            let inner = vt.matmul(&gs)?.matmul(&vecs)?.mul(&recip)?;
            Ok(vec![Some(vecs.matmul(&inner)?.matmul(&vt)?)])
        }))
    }
}

fn check_square(op: &'static str, a: &Tensor) -> Result<()> {
    let s = a.shape();
    if s.len() != 2 || s[0] != s[1] {
        return Err(EngineError::InvalidArgument {
            op,
            msg: "needs a square n×n matrix".into(),
            shape: s.to_vec(),
        });
    }
    if a.numel() == 0 {
        return Err(EngineError::Empty {
            op,
            shape: s.to_vec(),
        });
    }
    Ok(())
}
