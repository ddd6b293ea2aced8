//! Ops: validate, one call into the device's backend (`crate::backend`), and a backward
//! recorded on the tape (when an input requires grad) that calls named backend methods.
//! One file per op family.

pub mod activation;
pub mod conv2d;
pub mod conv_algo;
mod convert;
pub mod elementwise;
mod frozen_conv2d;
mod index;
pub mod linalg;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod pool2d;
pub mod reduce;
pub mod shape;
pub mod sort;
pub mod spatial;

use crate::{EngineError, Result, Tensor};

pub use conv2d::Conv2dOptions;
pub use conv_algo::{ConvAlgorithm, ConvConfig, Precision};
pub use frozen_conv2d::FrozenConv2d;
pub use pool2d::Pool2dOptions;
pub use sort::Indices;
pub use spatial::{Pad2d, PadMode};

pub(crate) use crate::autograd::{record, record_view};

/// Error unless `a` and `b` share dtype and device.
pub(crate) fn check_same(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(EngineError::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    if a.device() != b.device() {
        return Err(EngineError::DeviceMismatch {
            op,
            lhs: a.device(),
            rhs: b.device(),
        });
    }
    Ok(())
}

/// NumPy broadcasting: align shapes on the right; each pair of dims must be equal or one of them 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let nd = a.len().max(b.len());
    let mut out = vec![0; nd];
    for i in 0..nd {
        let da = if i + a.len() >= nd {
            a[i + a.len() - nd]
        } else {
            1
        };
        let db = if i + b.len() >= nd {
            b[i + b.len() - nd]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(EngineError::ShapeMismatch {
                    op,
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                    detail: "not broadcastable".into(),
                })
            }
        };
    }
    Ok(out)
}

/// Strides that read `t` as if it had shape `out` (broadcast dims get stride 0).
pub(crate) fn broadcast_strides(t: &Tensor, out: &[usize]) -> Vec<usize> {
    let nd = out.len();
    let lead = nd - t.ndim();
    (0..nd)
        .map(|i| {
            if i < lead || t.shape()[i - lead] == 1 {
                0
            } else {
                t.strides()[i - lead]
            }
        })
        .collect()
}
