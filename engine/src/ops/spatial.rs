//! Spatial re-indexing on NCHW: 2-D padding ([`PadMode::Zero`] or [`PadMode::Reflect`], each
//! side its own amount) and nearest-neighbour upsampling by an integer factor.

use super::record;
use crate::backend::backend_of;
use crate::{EngineError, Result, Tensor};
pub use kernels::cpu::spatial::PadMode;
use kernels::cpu::spatial::{Pad2dParams, UpsampleParams};

/// How many cells a 2-D padding adds on each side of the H×W plane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pad2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Pad2d {
    /// `top`, `bottom`, `left`, `right` (TF "SAME" with stride 2 on an even size:
    /// `Pad2d::new(0, 1, 0, 1)`).
    pub fn new(top: usize, bottom: usize, left: usize, right: usize) -> Self {
        Pad2d {
            top,
            bottom,
            left,
            right,
        }
    }

    /// `p` cells on every side (`ReflectionPad2d(p)`).
    pub fn uniform(p: usize) -> Self {
        Pad2d::new(p, p, p, p)
    }
}

/// Rank-4 and non-empty, else the error naming `op`.
fn nchw(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    let s = x.shape();
    if s.len() != 4 {
        return Err(EngineError::InvalidArgument {
            op,
            msg: "input must be N×C×H×W".into(),
            shape: s.to_vec(),
        });
    }
    if x.numel() == 0 {
        return Err(EngineError::Empty {
            op,
            shape: s.to_vec(),
        });
    }
    Ok([s[0], s[1], s[2], s[3]])
}

impl Tensor {
    /// Pads the H×W planes of an N×C×H×W tensor: N×C×(top+H+bottom)×(left+W+right).
    /// [`PadMode::Zero`] fills zeros; [`PadMode::Reflect`] mirrors without repeating the edge
    /// (PyTorch `ReflectionPad2d`: `x[−1] = x[1]`), which needs every pad smaller than its axis.
    /// Backward: each input cell's gradient is the sum over the output cells that copied it.
    /// Errors: `InvalidArgument` (rank, reflect pad ≥ the axis size), `Empty`.
    pub fn pad2d(&self, pads: Pad2d, mode: PadMode) -> Result<Tensor> {
        let op = "pad2d";
        let [n, c, h, w] = nchw(op, self)?;
        let p = Pad2dParams {
            n,
            c,
            h,
            w,
            top: pads.top,
            bottom: pads.bottom,
            left: pads.left,
            right: pads.right,
            mode,
        };
        p.check().map_err(|msg| EngineError::InvalidArgument {
            op,
            msg,
            shape: self.shape().to_vec(),
        })?;
        let out = backend_of(op, self)?.pad2d(op, self, &p)?;
        Ok(record(op, out, &[self], move |g| {
            let op = "pad2d_backward";
            Ok(vec![Some(backend_of(op, g)?.pad2d_backward(op, g, &p)?)])
        }))
    }

    /// Nearest-neighbour upsampling by the integer factor `scale`: N×C×H×W →
    /// N×C×(s·H)×(s·W), `out[y][x] = in[y/s][x/s]` (PyTorch `Upsample(scale_factor=s,
    /// mode="nearest")`). Backward: s×s sum pooling. Errors: `InvalidArgument` (rank,
    /// `scale` 0), `Empty`.
    pub fn upsample_nearest(&self, scale: usize) -> Result<Tensor> {
        let op = "upsample_nearest";
        let [n, c, h, w] = nchw(op, self)?;
        if scale == 0 {
            return Err(EngineError::InvalidArgument {
                op,
                msg: "scale factor must be ≥ 1".into(),
                shape: self.shape().to_vec(),
            });
        }
        let p = UpsampleParams { n, c, h, w, scale };
        let out = backend_of(op, self)?.upsample_nearest(op, self, &p)?;
        Ok(record(op, out, &[self], move |g| {
            let op = "upsample_nearest_backward";
            let be = backend_of(op, g)?;
            Ok(vec![Some(be.upsample_nearest_backward(op, g, &p)?)])
        }))
    }
}
