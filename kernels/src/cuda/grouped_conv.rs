//! Grouped conv2d on the GPU (`groups > 1`, depthwise included): direct kernels
//! (`kernels/grouped_conv.cu`) for the forward (bias added in the same pass), the input
//! gradient (a gather) and the weight gradient (one block per weight, deterministic). The
//! bias gradient is the ungrouped one (`conv2d::conv2d_backward_bias`). Called by the
//! `conv2d` wrappers after their shape checks, when `p.groups > 1`.

use super::launch::{self, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use crate::cpu::conv2d::Conv2dParams;
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// Geometry, as `GConvGeom` in grouped_conv.cu (field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct GConvGeom {
    n: i64,
    c: i64,
    h: i64,
    w: i64,
    o: i64,
    kh: i64,
    kw: i64,
    stride_h: i64,
    stride_w: i64,
    pad_h: i64,
    pad_w: i64,
    out_h: i64,
    out_w: i64,
    groups: i64,
}

// SAFETY: plain-old-data, #[repr(C)], all 8-byte integers like the C struct.
unsafe impl DeviceRepr for GConvGeom {}

/// The geometry of a checked `p` (valid window), or `InvalidArgument` when `groups` does not
/// divide both channel counts.
fn geom(op: &'static str, p: &Conv2dParams) -> Result<GConvGeom, CudaError> {
    if p.groups == 0 || !p.c_in.is_multiple_of(p.groups) || !p.c_out.is_multiple_of(p.groups) {
        return Err(CudaError::InvalidArgument {
            op,
            msg: format!("groups {} must divide C_in and C_out in {p:?}", p.groups),
        });
    }
    let i = |v: usize| v as i64;
    Ok(GConvGeom {
        n: i(p.n),
        c: i(p.c_in),
        h: i(p.h),
        w: i(p.w),
        o: i(p.c_out),
        kh: i(p.kh),
        kw: i(p.kw),
        stride_h: i(p.stride_h),
        stride_w: i(p.stride_w),
        pad_h: i(p.pad_h),
        pad_w: i(p.pad_w),
        out_h: i(p.out_h()),
        out_w: i(p.out_w()),
        groups: i(p.groups),
    })
}

/// Output N×O×OH×OW (lengths already checked by `conv2d_forward`).
pub(super) fn forward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    x: &CudaSlice<T>,
    w: &CudaSlice<T>,
    bias: Option<&CudaSlice<T>>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = geom("conv2d_forward", p)?;
    let n = p.output_len();
    // SAFETY: written whole by the kernel.
    let out = unsafe { dev.alloc::<T>(n) }?;
    if n == 0 {
        return Ok(out);
    }
    let f = typed(dev, Module::GroupedConv, "gconv_fwd", T::SUFFIX)?;
    // Without a bias the kernel never reads the pointer; x's stands in for it.
    let pb = bias.map_or(dev.ptr(x, 0), |b| dev.ptr(b, 0));
    let (px, pw, po, has) = (
        dev.ptr(x, 0),
        dev.ptr(w, 0),
        dev.ptr(&out, 0),
        bias.is_some() as i32,
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&px).arg(&pw).arg(&pb).arg(&po).arg(&has).arg(&g);
    // SAFETY: `gconv_fwd_<t>(const T*, const T*, const T*, T*, int, GConvGeom)`; sizes checked
    // by the caller (bias: O elements).
    unsafe { launch::launch(dev, "gconv_fwd", l, launch::elementwise(n)) }?;
    Ok(out)
}

/// ∂L/∂x (N×C×H×W) from ∂L/∂out and the weight.
pub(super) fn backward_input<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    grad_out: &CudaSlice<T>,
    w: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = geom("conv2d_backward_input", p)?;
    let n = p.input_len();
    // SAFETY: written whole by the kernel.
    let gin = unsafe { dev.alloc::<T>(n) }?;
    if n == 0 {
        return Ok(gin);
    }
    let f = typed(dev, Module::GroupedConv, "gconv_bwd_input", T::SUFFIX)?;
    let (pg, pw, pi) = (dev.ptr(grad_out, 0), dev.ptr(w, 0), dev.ptr(&gin, 0));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&pg).arg(&pw).arg(&pi).arg(&g);
    // SAFETY: `gconv_bwd_input_<t>(const T*, const T*, T*, GConvGeom)`; sizes checked.
    unsafe { launch::launch(dev, "gconv_bwd_input", l, launch::elementwise(n)) }?;
    Ok(gin)
}

/// ∂L/∂w (O×(C/g)×KH×KW) from the input and ∂L/∂out.
pub(super) fn backward_weight<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    x: &CudaSlice<T>,
    grad_out: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = geom("conv2d_backward_weight", p)?;
    let n = p.weight_len();
    // SAFETY: written whole by the kernel (one block per weight; zero sums when N·OH·OW = 0).
    let gw = unsafe { dev.alloc::<T>(n) }?;
    if n == 0 {
        return Ok(gw);
    }
    let f = typed(dev, Module::GroupedConv, "gconv_bwd_weight", T::SUFFIX)?;
    let (px, pg, pw) = (dev.ptr(x, 0), dev.ptr(grad_out, 0), dev.ptr(&gw, 0));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&px).arg(&pg).arg(&pw).arg(&g);
    // SAFETY: `gconv_bwd_weight_<t>(const T*, const T*, T*, GConvGeom)`; sizes checked.
    unsafe { launch::launch(dev, "gconv_bwd_weight", l, launch::reduce(n)) }?;
    Ok(gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gconv_geom_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<GConvGeom>(), 14 * 8);
    }
}
