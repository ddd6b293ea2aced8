//! 2-D max/avg pooling launch wrappers (`kernels/pool2d.cu`), with the semantics of
//! [`crate::cpu::pool2d`]: max pooling saves the argmax (index `y·W + x` within the input plane,
//! `u32::MAX` for a window over padding only) for its backward; the backward kernels gather, so
//! they are deterministic and need no atomics.

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use crate::cpu::pool2d::Pool2dParams;
use crate::window::WindowError;
use cudarc::driver::{CudaFunction, CudaSlice, DeviceRepr, PushKernelArg};

/// Pooling geometry, as `PoolGeom` in pool2d.cu (field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PoolGeom {
    planes: i64,
    h: i64,
    w: i64,
    kh: i64,
    kw: i64,
    stride_h: i64,
    stride_w: i64,
    pad_h: i64,
    pad_w: i64,
    out_h: i64,
    out_w: i64,
}

// SAFETY: plain-old-data, #[repr(C)], all 8-byte integers like the C struct.
unsafe impl DeviceRepr for PoolGeom {}

fn geom(op: &'static str, p: &Pool2dParams) -> Result<PoolGeom, CudaError> {
    let (out_h, out_w) = p.window().output_size(p.h, p.w).map_err(|e| {
        let msg = match e {
            WindowError::ZeroKernel | WindowError::ZeroStride => {
                format!("zero kernel or stride in {p:?}")
            }
            WindowError::KernelTooLarge => format!("window larger than the padded input in {p:?}"),
        };
        CudaError::InvalidArgument { op, msg }
    })?;
    if p.h * p.w > u32::MAX as usize {
        return Err(CudaError::InvalidArgument {
            op,
            msg: format!("H·W = {} does not fit the u32 argmax", p.h * p.w),
        });
    }
    Ok(PoolGeom {
        planes: (p.n * p.c) as i64,
        h: p.h as i64,
        w: p.w as i64,
        kh: p.kh as i64,
        kw: p.kw as i64,
        stride_h: p.stride_h as i64,
        stride_w: p.stride_w as i64,
        pad_h: p.pad_h as i64,
        pad_w: p.pad_w as i64,
        out_h: out_h as i64,
        out_w: out_w as i64,
    })
}

/// Launch `f(a, b, [c], geom)` over `n` threads' worth of elements.
///
/// # Safety
/// `ptrs` must match the kernel's pointer parameters and point into buffers large enough for
/// the geometry.
unsafe fn run(
    dev: &CudaDevice,
    name: &'static str,
    f: &CudaFunction,
    ptrs: &[u64],
    g: &PoolGeom,
    n: usize,
) -> Result<(), CudaError> {
    let mut l = dev.stream().launch_builder(f);
    for p in ptrs {
        l.arg(p);
    }
    l.arg(g);
    launch::launch(dev, name, l, launch::elementwise(n))
}

/// Max pooling forward: (output N×C×OH×OW, argmax).
pub fn max_pool2d_forward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Pool2dParams,
    x: &CudaSlice<T>,
) -> Result<(CudaSlice<T>, CudaSlice<u32>), CudaError> {
    let g = geom("max_pool2d_forward", p)?;
    check_len("max_pool2d_forward", "x", x.len(), p.input_len())?;
    let n = p.output_len();
    // SAFETY: both written whole by the kernel.
    let (out, argmax) = unsafe { (dev.alloc::<T>(n)?, dev.alloc::<u32>(n)?) };
    if n > 0 {
        let f = typed(dev, Module::Pool2d, "max_pool_fwd", T::SUFFIX)?;
        let ptrs = [dev.ptr(x, 0), dev.ptr(&out, 0), dev.ptr(&argmax, 0)];
        // SAFETY: `max_pool_fwd_<t>(const T*, T*, unsigned*, PoolGeom)`; sizes checked.
        unsafe { run(dev, "max_pool_fwd", &f, &ptrs, &g, n) }?;
    }
    Ok((out, argmax))
}

/// Max pooling backward: ∂L/∂x (N×C×H×W) from ∂L/∂out and the saved argmax.
pub fn max_pool2d_backward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Pool2dParams,
    grad_out: &CudaSlice<T>,
    argmax: &CudaSlice<u32>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = geom("max_pool2d_backward", p)?;
    check_len(
        "max_pool2d_backward",
        "grad_out",
        grad_out.len(),
        p.output_len(),
    )?;
    check_len(
        "max_pool2d_backward",
        "argmax",
        argmax.len(),
        p.output_len(),
    )?;
    let n = p.input_len();
    // SAFETY: written whole by the kernel.
    let gin = unsafe { dev.alloc::<T>(n) }?;
    if n > 0 {
        let f = typed(dev, Module::Pool2d, "max_pool_bwd", T::SUFFIX)?;
        let ptrs = [dev.ptr(grad_out, 0), dev.ptr(argmax, 0), dev.ptr(&gin, 0)];
        // SAFETY: `max_pool_bwd_<t>(const T*, const unsigned*, T*, PoolGeom)`; sizes checked.
        unsafe { run(dev, "max_pool_bwd", &f, &ptrs, &g, n) }?;
    }
    Ok(gin)
}

/// Average pooling forward (divisor KH·KW, padding counted as zeros).
pub fn avg_pool2d_forward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Pool2dParams,
    x: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = geom("avg_pool2d_forward", p)?;
    check_len("avg_pool2d_forward", "x", x.len(), p.input_len())?;
    let n = p.output_len();
    // SAFETY: written whole by the kernel.
    let out = unsafe { dev.alloc::<T>(n) }?;
    if n > 0 {
        let f = typed(dev, Module::Pool2d, "avg_pool_fwd", T::SUFFIX)?;
        let ptrs = [dev.ptr(x, 0), dev.ptr(&out, 0)];
        // SAFETY: `avg_pool_fwd_<t>(const T*, T*, PoolGeom)`; sizes checked.
        unsafe { run(dev, "avg_pool_fwd", &f, &ptrs, &g, n) }?;
    }
    Ok(out)
}

/// Average pooling backward: ∂L/∂x from ∂L/∂out.
pub fn avg_pool2d_backward<T: CudaElem>(
    dev: &CudaDevice,
    p: &Pool2dParams,
    grad_out: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let g = geom("avg_pool2d_backward", p)?;
    check_len(
        "avg_pool2d_backward",
        "grad_out",
        grad_out.len(),
        p.output_len(),
    )?;
    let n = p.input_len();
    // SAFETY: written whole by the kernel.
    let gin = unsafe { dev.alloc::<T>(n) }?;
    if n > 0 {
        let f = typed(dev, Module::Pool2d, "avg_pool_bwd", T::SUFFIX)?;
        let ptrs = [dev.ptr(grad_out, 0), dev.ptr(&gin, 0)];
        // SAFETY: `avg_pool_bwd_<t>(const T*, T*, PoolGeom)`; sizes checked.
        unsafe { run(dev, "avg_pool_bwd", &f, &ptrs, &g, n) }?;
    }
    Ok(gin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_geom_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<PoolGeom>(), 11 * 8);
    }
}
