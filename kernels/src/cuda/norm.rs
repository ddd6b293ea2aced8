//! Instance-norm launch wrappers (`kernels/norm.cu`), with the semantics of
//! [`crate::cpu::norm`]: one block per (n, c) plane, statistics summed in f64 by block tree
//! reductions (deterministic, no atomics).

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use cudarc::driver::{CudaSlice, PushKernelArg};

/// Forward over `planes` planes of `hw` elements with one γ, β per plane: (output, stats)
/// where stats holds (μ, 1/√(σ² + eps)) per plane when `keep_stats`; `relu` fuses a following
/// ReLU into the output.
#[allow(clippy::too_many_arguments)]
pub fn instance_norm_forward<T: CudaElem>(
    dev: &CudaDevice,
    planes: usize,
    hw: usize,
    x: &CudaSlice<T>,
    gamma: &CudaSlice<T>,
    beta: &CudaSlice<T>,
    eps: f64,
    relu: bool,
    keep_stats: bool,
) -> Result<(CudaSlice<T>, Option<CudaSlice<T>>), CudaError> {
    let op = "instance_norm_forward";
    check_len(op, "x", x.len(), planes * hw)?;
    check_len(op, "gamma", gamma.len(), planes)?;
    check_len(op, "beta", beta.len(), planes)?;
    // SAFETY: written whole by the kernel (the stats by thread 0 of each plane's block).
    let out = unsafe { dev.alloc::<T>(planes * hw) }?;
    let stats = unsafe { dev.alloc::<T>(2 * planes.max(1)) }?;
    if planes * hw > 0 {
        let f = typed(dev, Module::Norm, "inorm_fwd", T::SUFFIX)?;
        let ptrs = [
            dev.ptr(x, 0),
            dev.ptr(gamma, 0),
            dev.ptr(beta, 0),
            dev.ptr(&out, 0),
            dev.ptr(&stats, 0),
        ];
        let (np, nhw, keep, relu) = (planes as i64, hw as i64, keep_stats as i32, relu as i32);
        let mut l = dev.stream().launch_builder(&f);
        for p in &ptrs {
            l.arg(p);
        }
        l.arg(&np).arg(&nhw).arg(&eps).arg(&keep).arg(&relu);
        // SAFETY: `inorm_fwd_<t>(const T* x, const T* γ, const T* β, T* out, T* stats, i64,
        // i64, double, int, int)`; lengths checked above.
        unsafe { launch::launch(dev, "inorm_fwd", l, launch::reduce(planes)) }?;
    }
    Ok((out, keep_stats.then_some(stats)))
}

/// Backward: (∂x over planes·hw, ∂γ per plane, ∂β per plane).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn instance_norm_backward<T: CudaElem>(
    dev: &CudaDevice,
    planes: usize,
    hw: usize,
    grad_out: &CudaSlice<T>,
    x: &CudaSlice<T>,
    gamma: &CudaSlice<T>,
    stats: &CudaSlice<T>,
) -> Result<(CudaSlice<T>, CudaSlice<T>, CudaSlice<T>), CudaError> {
    let op = "instance_norm_backward";
    check_len(op, "grad_out", grad_out.len(), planes * hw)?;
    check_len(op, "x", x.len(), planes * hw)?;
    check_len(op, "gamma", gamma.len(), planes)?;
    check_len(op, "stats", stats.len(), 2 * planes)?;
    if planes * hw == 0 {
        let z = || dev.alloc_zeros::<T>(planes);
        return Ok((dev.alloc_zeros::<T>(planes * hw)?, z()?, z()?));
    }
    // SAFETY: written whole by the kernel.
    let (gx, gg, gb) = unsafe {
        (
            dev.alloc::<T>(planes * hw)?,
            dev.alloc::<T>(planes)?,
            dev.alloc::<T>(planes)?,
        )
    };
    let f = typed(dev, Module::Norm, "inorm_bwd", T::SUFFIX)?;
    let ptrs = [
        dev.ptr(grad_out, 0),
        dev.ptr(x, 0),
        dev.ptr(gamma, 0),
        dev.ptr(stats, 0),
        dev.ptr(&gx, 0),
        dev.ptr(&gg, 0),
        dev.ptr(&gb, 0),
    ];
    let (np, nhw) = (planes as i64, hw as i64);
    let mut l = dev.stream().launch_builder(&f);
    for p in &ptrs {
        l.arg(p);
    }
    l.arg(&np).arg(&nhw);
    // SAFETY: `inorm_bwd_<t>(const T* g, const T* x, const T* γ, const T* stats, T* gx, T* gγ,
    // T* gβ, i64, i64)`; lengths checked above.
    unsafe { launch::launch(dev, "inorm_bwd", l, launch::reduce(planes)) }?;
    Ok((gx, gg, gb))
}
