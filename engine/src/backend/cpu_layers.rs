//! [`LayerBackend`] on the host: `kernels::cpu::spatial` and `kernels::cpu::norm`.

use super::cpu::Cpu;
use super::layers::{LayerBackend, NormArgs, NormGrads};
use crate::{dispatch_float, Result, Storage, Tensor};
use kernels::cpu::norm;
use kernels::cpu::spatial::{self as sp, Pad2dParams, UpsampleParams};
use kernels::Float as _;

impl LayerBackend for Cpu {
    fn pad2d(&self, op: &'static str, x: &Tensor, p: &Pad2dParams) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; p.output_len()];
            sp::pad2d_forward(p, &xd, &mut o);
            Tensor::from_vec(o, &[p.n, p.c, p.out_h(), p.out_w()])
        })
    }

    fn pad2d_backward(&self, op: &'static str, g: &Tensor, p: &Pad2dParams) -> Result<Tensor> {
        dispatch_float!(op, g.dtype(), T => {
            let gd = g.contiguous_data::<T>(op)?;
            let mut gi = vec![T::ZERO; p.input_len()];
            sp::pad2d_backward(p, &gd, &mut gi);
            Tensor::from_vec(gi, &[p.n, p.c, p.h, p.w])
        })
    }

    fn upsample_nearest(&self, op: &'static str, x: &Tensor, p: &UpsampleParams) -> Result<Tensor> {
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; p.output_len()];
            sp::upsample_nearest_forward(p, &xd, &mut o);
            Tensor::from_vec(o, &[p.n, p.c, p.out_h(), p.out_w()])
        })
    }

    fn upsample_nearest_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        p: &UpsampleParams,
    ) -> Result<Tensor> {
        dispatch_float!(op, g.dtype(), T => {
            let gd = g.contiguous_data::<T>(op)?;
            let mut gi = vec![T::ZERO; p.input_len()];
            sp::upsample_nearest_backward(p, &gd, &mut gi);
            Tensor::from_vec(gi, &[p.n, p.c, p.h, p.w])
        })
    }

    fn instance_norm(
        &self,
        op: &'static str,
        x: &Tensor,
        a: NormArgs<'_>,
        keep_stats: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let s = x.shape();
        let (planes, hw) = (s[0] * s[1], s[2] * s[3]);
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let gd = a.gamma.contiguous_data::<T>(op)?;
            let bd = a.beta.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; planes * hw];
            let mut st = keep_stats.then(|| vec![T::ZERO; 2 * planes]);
            norm::instance_norm_forward(planes, hw, &xd, &gd, &bd, a.eps, a.relu, &mut o, st.as_deref_mut());
            let stats = st.map(|v| Tensor::from_vec(v, &[s[0], s[1], 2])).transpose()?;
            Ok((Tensor::from_vec(o, s)?, stats))
        })
    }

    fn instance_norm_in_place(
        &self,
        op: &'static str,
        x: &mut Storage,
        shape: &[usize],
        a: NormArgs<'_>,
    ) -> Result<bool> {
        let (planes, hw) = (shape[0] * shape[1], shape[2] * shape[3]);
        if x.len() != planes * hw || x.dtype() != a.gamma.dtype() {
            return Ok(false);
        }
        match x {
            Storage::F32(v) => {
                let (g, b) = (
                    a.gamma.contiguous_data::<f32>(op)?,
                    a.beta.contiguous_data::<f32>(op)?,
                );
                norm::instance_norm_in_place(planes, hw, v, &g, &b, a.eps, a.relu);
            }
            Storage::F64(v) => {
                let (g, b) = (
                    a.gamma.contiguous_data::<f64>(op)?,
                    a.beta.contiguous_data::<f64>(op)?,
                );
                norm::instance_norm_in_place(planes, hw, v, &g, &b, a.eps, a.relu);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn instance_norm_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        stats: &Tensor,
    ) -> Result<NormGrads> {
        let s = x.shape();
        let (planes, hw) = (s[0] * s[1], s[2] * s[3]);
        dispatch_float!(op, g.dtype(), T => {
            let (gd, xd) = (g.contiguous_data::<T>(op)?, x.contiguous_data::<T>(op)?);
            let (gm, st) = (gamma.contiguous_data::<T>(op)?, stats.contiguous_data::<T>(op)?);
            let mut gx = vec![T::ZERO; planes * hw];
            let (mut gg, mut gb) = (vec![T::ZERO; planes], vec![T::ZERO; planes]);
            norm::instance_norm_backward(planes, hw, &gd, &xd, &gm, &st, &mut gx, &mut gg, &mut gb);
            Ok(NormGrads {
                x: Tensor::from_vec(gx, s)?,
                gamma: Tensor::from_vec(gg, &s[..2])?,
                beta: Tensor::from_vec(gb, &s[..2])?,
            })
        })
    }
}
