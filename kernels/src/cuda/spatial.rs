//! 2-D padding and nearest-upsampling launch wrappers (`kernels/spatial.cu`), with the
//! semantics of [`crate::cpu::spatial`]. The backward kernels gather (no atomics).

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use crate::cpu::spatial::{Pad2dParams, PadMode, UpsampleParams};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// Padding geometry, as `PadGeom` in spatial.cu (field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PadGeom {
    planes: i64,
    h: i64,
    w: i64,
    top: i64,
    bottom: i64,
    left: i64,
    right: i64,
    /// `PAD_ZERO` 0, `PAD_REFLECT` 1.
    mode: i64,
}

// SAFETY: plain-old-data, #[repr(C)], all 8-byte integers like the C struct.
unsafe impl DeviceRepr for PadGeom {}

fn pad_geom(op: &'static str, p: &Pad2dParams) -> Result<PadGeom, CudaError> {
    p.check()
        .map_err(|msg| CudaError::InvalidArgument { op, msg })?;
    Ok(PadGeom {
        planes: (p.n * p.c) as i64,
        h: p.h as i64,
        w: p.w as i64,
        top: p.top as i64,
        bottom: p.bottom as i64,
        left: p.left as i64,
        right: p.right as i64,
        mode: match p.mode {
            PadMode::Zero => 0,
            PadMode::Reflect => 1,
        },
    })
}

/// `pad_fwd` or `pad_bwd`: reads `src`, writes a new buffer of `out_len` (one thread each).
fn pad_launch<T: CudaElem>(
    dev: &CudaDevice,
    name: &'static str,
    g: &PadGeom,
    src: &CudaSlice<T>,
    out_len: usize,
) -> Result<CudaSlice<T>, CudaError> {
    // SAFETY: written whole by the kernel.
    let out = unsafe { dev.alloc::<T>(out_len) }?;
    if out_len > 0 {
        let f = typed(dev, Module::Spatial, name, T::SUFFIX)?;
        let (ps, po) = (dev.ptr(src, 0), dev.ptr(&out, 0));
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&ps).arg(&po).arg(g);
        // SAFETY: `<name>_<t>(const T*, T*, PadGeom)`; the caller checked the source length.
        unsafe { launch::launch(dev, name, l, launch::elementwise(out_len)) }?;
    }
    Ok(out)
}

/// Padding forward: N×C×(top+H+bottom)×(left+W+right).
pub fn pad2d_forward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Pad2dParams,
    x: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = pad_geom("pad2d_forward", p)?;
    check_len("pad2d_forward", "x", x.len(), p.input_len())?;
    pad_launch(dev, "pad_fwd", &g, x, p.output_len())
}

/// Padding backward: ∂L/∂x (N×C×H×W), each input cell the sum over the cells that copied it.
pub fn pad2d_backward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Pad2dParams,
    grad_out: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = pad_geom("pad2d_backward", p)?;
    check_len("pad2d_backward", "grad_out", grad_out.len(), p.output_len())?;
    pad_launch(dev, "pad_bwd", &g, grad_out, p.input_len())
}

fn upsample_launch<T: CudaElem>(
    dev: &CudaDevice,
    name: &'static str,
    p: &UpsampleParams,
    src: &CudaSlice<T>,
    out_len: usize,
) -> Result<CudaSlice<T>, CudaError> {
    if p.scale == 0 {
        return Err(CudaError::InvalidArgument {
            op: name,
            msg: "scale factor 0".into(),
        });
    }
    // SAFETY: written whole by the kernel.
    let out = unsafe { dev.alloc::<T>(out_len) }?;
    if out_len > 0 {
        let f = typed(dev, Module::Spatial, name, T::SUFFIX)?;
        let (ps, po) = (dev.ptr(src, 0), dev.ptr(&out, 0));
        let dims = [(p.n * p.c) as i64, p.h as i64, p.w as i64, p.scale as i64];
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&ps).arg(&po);
        for d in &dims {
            l.arg(d);
        }
        // SAFETY: `<name>_<t>(const T*, T*, i64 planes, i64 h, i64 w, i64 s)`; lengths checked
        // by the caller.
        unsafe { launch::launch(dev, name, l, launch::elementwise(out_len)) }?;
    }
    Ok(out)
}

/// Nearest upsampling forward: N×C×(s·H)×(s·W).
pub fn upsample_nearest_forward<T: CudaElem>(
    dev: &CudaDevice,
    p: &UpsampleParams,
    x: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    check_len("upsample_nearest_forward", "x", x.len(), p.input_len())?;
    upsample_launch(dev, "upsample_fwd", p, x, p.output_len())
}

/// Nearest upsampling backward: s×s sum pooling of ∂L/∂out.
pub fn upsample_nearest_backward<T: CudaElem>(
    dev: &CudaDevice,
    p: &UpsampleParams,
    grad_out: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let op = "upsample_nearest_backward";
    check_len(op, "grad_out", grad_out.len(), p.output_len())?;
    upsample_launch(dev, "upsample_bwd", p, grad_out, p.input_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_geom_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<PadGeom>(), 8 * 8);
    }
}
