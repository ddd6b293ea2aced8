//! The style-transfer objective's building blocks: Gram matrix, mean squared error, total
//! variation (formulas as in tests/data/README.md).

use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};

impl Tensor {
    /// Gram matrix `G = F Fᵀ / (C·H·W)` of a 1×C×H×W feature map, F seen as C×(H·W); returns
    /// C×C. For N > 1, one Gram matrix per image: N×C×C. Gatys et al. 2015, eq. 3 (normalised).
    /// Errors: `InvalidArgument` unless 4-D, `Empty`.
    pub fn gram_matrix(&self) -> Result<Tensor> {
        let s = self.shape();
        if s.len() != 4 {
            return Err(EngineError::InvalidArgument {
                op: "gram_matrix",
                msg: "needs an N×C×H×W feature map".into(),
                shape: s.to_vec(),
            });
        }
        if self.numel() == 0 {
            return Err(EngineError::Empty {
                op: "gram_matrix",
                shape: s.to_vec(),
            });
        }
        let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
        let f = self.reshape(&[n, c, hw])?;
        let scale = 1.0 / (c * hw) as f64;
        // One op on the tape: the backward is one GEMM, dF = (dG + dGᵀ)·F / (C·H·W), instead
        // of matmul's two (dG·F and Fᵀ·dG, the second transposed and added elementwise).
        // On the CPU both products read F in place (kernels::cpu::gram: no packed copies of
        // F, the upper triangle of G only); on a GPU they are cuBLAS matmuls.
        let op = "gram_matrix";
        let f_saved = f.detach();
        let g = backend_of(op, &f)?.gram(op, &f_saved, scale)?;
        let g = super::record(op, g, &[&f], move |dg| {
            let sym = dg.add(&dg.transpose(1, 2)?)?.mul_scalar(scale)?;
            Ok(vec![Some(
                backend_of(op, &sym)?.gram_backward(op, &sym, &f_saved)?,
            )])
        });
        if n == 1 {
            g.reshape(&[c, c])
        } else {
            Ok(g)
        }
    }

    /// Mean squared error `mean((self − target)²)` over all elements; shape `[]`.
    /// Errors: `ShapeMismatch` unless the shapes are equal, `Empty`.
    pub fn mse_loss(&self, target: &Tensor) -> Result<Tensor> {
        if self.shape() != target.shape() {
            return Err(EngineError::ShapeMismatch {
                op: "mse_loss",
                lhs: self.shape().to_vec(),
                rhs: target.shape().to_vec(),
                detail: "shapes must be equal".into(),
            });
        }
        self.sub(target)?.square()?.mean()
    }

    /// Total variation of an N×C×H×W image:
    /// `mean((x[:,:,1:,:] − x[:,:,:-1,:])²) + mean((x[:,:,:,1:] − x[:,:,:,:-1])²)`; shape `[]`.
    /// Errors: `InvalidArgument` unless 4-D with H ≥ 2 and W ≥ 2.
    pub fn tv_loss(&self) -> Result<Tensor> {
        let s = self.shape();
        if s.len() != 4 || s[2] < 2 || s[3] < 2 {
            return Err(EngineError::InvalidArgument {
                op: "tv_loss",
                msg: "needs an N×C×H×W image with H, W ≥ 2".into(),
                shape: s.to_vec(),
            });
        }
        let (h, w) = (s[2], s[3]);
        let dy = self.narrow(2, 1, h - 1)?.sub(&self.narrow(2, 0, h - 1)?)?;
        let dx = self.narrow(3, 1, w - 1)?.sub(&self.narrow(3, 0, w - 1)?)?;
        dy.square()?.mean()?.add(&dx.square()?.mean()?)
    }
}
