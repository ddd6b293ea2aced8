//! Matrix multiply: 2-D `m×k · k×n`, batched `b×m×k · b×k×n`, and `b×m×k · k×n`.
//! Operands are read through their strides (a transposed view costs no copy).

use super::check_same;
use super::record;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};

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
        let out = backend_of("matmul", self)?.matmul("matmul", self, other, batch, &out_shape)?;
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
