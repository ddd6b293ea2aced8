//! [`LayerBackend`] on a GPU: `kernels::cuda::spatial` and `kernels::cuda::norm`.

use super::cuda::{err, wrap, Cuda};
use super::layers::{LayerBackend, NormArgs, NormGrads};
use crate::{dispatch_float, Result, Tensor};
use kernels::cpu::spatial::{Pad2dParams, UpsampleParams};
use kernels::cuda as cu;

impl LayerBackend for Cuda {
    fn pad2d(&self, op: &'static str, x: &Tensor, p: &Pad2dParams) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let o = cu::spatial::pad2d_forward(dev, p, &xd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.n, p.c, p.out_h(), p.out_w()]))
        })
    }

    fn pad2d_backward(&self, op: &'static str, g: &Tensor, p: &Pad2dParams) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, g.dtype(), T => {
            let gd = self.data::<T>(op, g)?;
            let gi = cu::spatial::pad2d_backward(dev, p, &gd).map_err(err(op, dev))?;
            Ok(wrap(gi, &[p.n, p.c, p.h, p.w]))
        })
    }

    fn upsample_nearest(&self, op: &'static str, x: &Tensor, p: &UpsampleParams) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let o = cu::spatial::upsample_nearest_forward(dev, p, &xd).map_err(err(op, dev))?;
            Ok(wrap(o, &[p.n, p.c, p.out_h(), p.out_w()]))
        })
    }

    fn upsample_nearest_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &UpsampleParams,
    ) -> Result<Tensor> {
        let dev = self.device();
        dispatch_float!(op, g.dtype(), T => {
            let gd = self.data::<T>(op, g)?;
            let gi = cu::spatial::upsample_nearest_backward(dev, p, &gd).map_err(err(op, dev))?;
            Ok(wrap(gi, &[p.n, p.c, p.h, p.w]))
        })
    }

    fn instance_norm(
        &self,
        op: &'static str,
        x: &Tensor,
        a: NormArgs<'_>,
        keep_stats: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (dev, s) = (self.device(), x.shape());
        let (planes, hw) = (s[0] * s[1], s[2] * s[3]);
        dispatch_float!(op, x.dtype(), T => {
            let xd = self.data::<T>(op, x)?;
            let (gd, bd) = (self.data::<T>(op, a.gamma)?, self.data::<T>(op, a.beta)?);
            let (o, st) = cu::norm::instance_norm_forward(dev, planes, hw, &xd, &gd, &bd, a.eps, a.relu, keep_stats)
                .map_err(err(op, dev))?;
            Ok((wrap(o, s), st.map(|st| wrap(st, &[s[0], s[1], 2]))))
        })
    }

    fn instance_norm_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        stats: &Tensor,
    ) -> Result<NormGrads> {
        let (dev, s) = (self.device(), x.shape());
        let (planes, hw) = (s[0] * s[1], s[2] * s[3]);
        dispatch_float!(op, g.dtype(), T => {
            let (gd, xd) = (self.data::<T>(op, g)?, self.data::<T>(op, x)?);
            let (gm, st) = (self.data::<T>(op, gamma)?, self.data::<T>(op, stats)?);
            let (gx, gg, gb) = cu::norm::instance_norm_backward(dev, planes, hw, &gd, &xd, &gm, &st)
                .map_err(err(op, dev))?;
            Ok(NormGrads {
                x: wrap(gx, s),
                gamma: wrap(gg, &s[..2]),
                beta: wrap(gb, &s[..2]),
            })
        })
    }
}
