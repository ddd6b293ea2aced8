//! [`IndexBackend`] on a GPU: `kernels::cuda::index`.

use super::cuda::{err, wrap, Cuda};
use super::index::{Axis3, IndexBackend};
use crate::{dispatch_float, Result, Tensor};
use kernels::cpu::conv2d::Conv2dParams;
use kernels::cpu::index::unfold_rows;
use kernels::cuda as cu;

impl IndexBackend for Cuda {
    fn unfold(&self, op: &'static str, x: &Tensor, p: &Conv2dParams) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let o = cu::index::unfold(dev, p, &xd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.n, unfold_rows(p), p.out_h() * p.out_w()]))
        })
    }

    fn fold(&self, op: &'static str, cols: &Tensor, p: &Conv2dParams) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, cols.dtype(), T => {
            let cd = self.data::<T>(op, cols)?;
            let o = cu::index::fold(dev, p, &cd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.n, p.c_in, p.h, p.w]))
        })
    }

    fn argmax_axis(
        &self,
        op: &'static str,
        x: &Tensor,
        dims: Axis3,
        out_shape: &[usize],
    ) -> Result<(Tensor, Tensor)> {
        let dev = self.device();
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let (v, i) = cu::index::argmax_axis(dev, &xd, dims).map_err(err(op, dev))?;
            Ok((wrap(v, out_shape), wrap(i, out_shape)))
        })
    }

    fn index_select(
        &self,
        op: &'static str,
        x: &Tensor,
        dims: Axis3,
        idx: &Tensor,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, x.dtype(), T => {
            let (xd, id) = (self.data::<T>(op, x)?, self.data::<T>(op, idx)?);
            let o = cu::index::index_select(dev, &xd, dims, &id).map_err(err(op, dev))?;
            Ok(wrap(o, out_shape))
        })
    }
}
