//! [`IndexBackend`] on the host: `kernels::cpu::index`.

use super::cpu::Cpu;
use super::index::{Axis3, IndexBackend};
use crate::{dispatch_float, Result, Tensor};
use kernels::cpu::conv2d::Conv2dParams;
use kernels::cpu::index as ix;
use kernels::Float as _;

impl IndexBackend for Cpu {
    fn unfold(&self, op: &'static str, x: &Tensor, p: &Conv2dParams) -> Result<Tensor> {
        let shape = [p.n, ix::unfold_rows(p), p.out_h() * p.out_w()];
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; shape.iter().product()];
            ix::unfold(p, &xd, &mut o);
            Tensor::from_vec(o, &shape)
        })
    }

    fn fold(&self, op: &'static str, cols: &Tensor, p: &Conv2dParams) -> Result<Tensor> {
        dispatch_float!(op, cols.dtype(), T => {
            let cd = cols.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; p.n * p.c_in * p.h * p.w];
            ix::fold(p, &cd, &mut o);
            Tensor::from_vec(o, &[p.n, p.c_in, p.h, p.w])
        })
    }

    fn argmax_axis(
        &self,
        op: &'static str,
        x: &Tensor,
        dims: Axis3,
        out_shape: &[usize],
    ) -> Result<(Tensor, Tensor)> {
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let m = dims.0 * dims.2;
            let (mut v, mut i) = (vec![T::ZERO; m], vec![T::ZERO; m]);
            ix::argmax_axis(&xd, dims, &mut v, &mut i);
            Ok((Tensor::from_vec(v, out_shape)?, Tensor::from_vec(i, out_shape)?))
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
        let idx: Vec<usize> = idx.to_vec_f64()?.iter().map(|&v| v as usize).collect();
        dispatch_float!(op, x.dtype(), T => {
            let xd = x.contiguous_data::<T>(op)?;
            let mut o = vec![T::ZERO; dims.0 * idx.len() * dims.2];
            ix::index_select(&xd, dims, &idx, &mut o);
            Tensor::from_vec(o, out_shape)
        })
    }
}
