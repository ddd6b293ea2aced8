//! Sort along the last axis, gather along it, and scatter-add (`kernels/sort.cu`), with the
//! semantics of [`crate::cpu::sort`]: rows of a contiguous buffer, u32 indices. The sort is a
//! global-memory bitonic network over rows padded to a power of two (no row-length limit but
//! u32 indices; `rows · p` slots of scratch); the scatter-add is one thread per row (no
//! atomics, deterministic), so it is slow for few long rows but always correct.

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use cudarc::driver::{CudaSlice, PushKernelArg};

fn check_row_len(op: &'static str, len: usize) -> Result<(), CudaError> {
    if len > u32::MAX as usize / 2 {
        return Err(CudaError::InvalidArgument {
            op,
            msg: format!("row length {len} does not fit the u32 indices"),
        });
    }
    Ok(())
}

/// Each of the `rows` rows of `len` in `x` sorted ascending: (values, argsort indices).
pub fn sort_last<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    rows: usize,
    len: usize,
) -> Result<(CudaSlice<T>, CudaSlice<u32>), CudaError> {
    const OP: &str = "sort_last";
    check_row_len(OP, len)?;
    check_len(OP, "x", x.len(), rows * len)?;
    let n = rows * len;
    // SAFETY: both written whole by `sort_copy_out` below (or empty).
    let (vals, idx) = unsafe { (dev.alloc::<T>(n)?, dev.alloc::<u32>(n)?) };
    if n == 0 {
        return Ok((vals, idx));
    }
    let p = len.next_power_of_two();
    // SAFETY: written whole by `sort_init`.
    let (keys, kidx) = unsafe { (dev.alloc::<T>(rows * p)?, dev.alloc::<u32>(rows * p)?) };
    let (pk, pi) = (dev.ptr(&keys, 0), dev.ptr(&kidx, 0));
    let (r64, l64, p64) = (rows as i64, len as i64, p as i64);
    let cfg = launch::elementwise(rows * p);
    let f = typed(dev, Module::Sort, "sort_init", T::SUFFIX)?;
    let px = dev.ptr(x, 0);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&px).arg(&pk).arg(&pi).arg(&r64).arg(&l64).arg(&p64);
    // SAFETY: matches `sort_init_<t>(const T*, T*, unsigned*, i64, i64, i64)`; sizes checked.
    unsafe { launch::launch(dev, "sort_init", l, cfg) }?;
    let f = typed(dev, Module::Sort, "bitonic_step", T::SUFFIX)?;
    let mut k = 2i64;
    while k <= p64 {
        let mut j = k / 2;
        while j > 0 {
            let mut l = dev.stream().launch_builder(&f);
            l.arg(&pk)
                .arg(&pi)
                .arg(&r64)
                .arg(&l64)
                .arg(&p64)
                .arg(&j)
                .arg(&k);
            // SAFETY: matches `bitonic_step_<t>(T*, unsigned*, i64, i64, i64, i64, i64)`.
            unsafe { launch::launch(dev, "bitonic_step", l, cfg) }?;
            j /= 2;
        }
        k *= 2;
    }
    let f = typed(dev, Module::Sort, "sort_copy_out", T::SUFFIX)?;
    let (pv, po) = (dev.ptr(&vals, 0), dev.ptr(&idx, 0));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&pk)
        .arg(&pi)
        .arg(&pv)
        .arg(&po)
        .arg(&r64)
        .arg(&l64)
        .arg(&p64);
    // SAFETY: matches `sort_copy_out_<t>(const T*, const unsigned*, T*, unsigned*, i64, i64, i64)`.
    unsafe { launch::launch(dev, "sort_copy_out", l, launch::elementwise(n)) }?;
    Ok((vals, idx))
}

/// `out[r, j] = x[r, idx[r, j]]` for `rows` rows of `len` in `x` and of `k` in `idx`; the
/// caller guarantees every index < `len`.
pub fn gather_last<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    idx: &CudaSlice<u32>,
    rows: usize,
    len: usize,
    k: usize,
) -> Result<CudaSlice<T>, CudaError> {
    const OP: &str = "gather_last";
    check_len(OP, "x", x.len(), rows * len)?;
    check_len(OP, "idx", idx.len(), rows * k)?;
    let n = rows * k;
    // SAFETY: written whole by the kernel (or empty).
    let out = unsafe { dev.alloc::<T>(n) }?;
    if n > 0 {
        let f = typed(dev, Module::Sort, "gather_last", T::SUFFIX)?;
        let (px, pi, po) = (dev.ptr(x, 0), dev.ptr(idx, 0), dev.ptr(&out, 0));
        let (r, l64, k64) = (rows as i64, len as i64, k as i64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&px).arg(&pi).arg(&po).arg(&r).arg(&l64).arg(&k64);
        // SAFETY: matches `gather_last_<t>(const T*, const unsigned*, T*, i64, i64, i64)`.
        unsafe { launch::launch(dev, "gather_last", l, launch::elementwise(n)) }?;
    }
    Ok(out)
}

/// `out[r, idx[r, j]] += g[r, j]` into zeroed rows of `len` (the adjoint of [`gather_last`]).
pub fn scatter_add_last<T: CudaElem>(
    dev: &CudaDevice,
    g: &CudaSlice<T>,
    idx: &CudaSlice<u32>,
    rows: usize,
    k: usize,
    len: usize,
) -> Result<CudaSlice<T>, CudaError> {
    const OP: &str = "scatter_add_last";
    check_len(OP, "g", g.len(), rows * k)?;
    check_len(OP, "idx", idx.len(), rows * k)?;
    // SAFETY: every row is zeroed, then added to, by the kernel (or empty).
    let out = unsafe { dev.alloc::<T>(rows * len) }?;
    if rows * len > 0 {
        let f = typed(dev, Module::Sort, "scatter_add_last", T::SUFFIX)?;
        let (pg, pi, po) = (dev.ptr(g, 0), dev.ptr(idx, 0), dev.ptr(&out, 0));
        let (r, k64, l64) = (rows as i64, k as i64, len as i64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&pg).arg(&pi).arg(&po).arg(&r).arg(&k64).arg(&l64);
        // SAFETY: matches `scatter_add_last_<t>(const T*, const unsigned*, T*, i64, i64, i64)`.
        unsafe { launch::launch(dev, "scatter_add_last", l, launch::elementwise(rows)) }?;
    }
    Ok(out)
}

/// Host u32 indices to a new device buffer.
pub fn upload_indices(dev: &CudaDevice, data: &[u32]) -> Result<CudaSlice<u32>, CudaError> {
    // SAFETY: fully written by the copy below (or empty).
    let mut s = unsafe { dev.alloc::<u32>(data.len()) }?;
    if !data.is_empty() {
        let mut dst = s.slice_mut(0..data.len());
        dev.stream()
            .memcpy_htod(data, &mut dst)
            .map_err(|e| dev.driver_err("cuMemcpyHtoD", e))?;
    }
    Ok(s)
}

/// The first `len` device indices, on the host (waits for the stream).
pub fn download_indices(
    dev: &CudaDevice,
    s: &CudaSlice<u32>,
    len: usize,
) -> Result<Vec<u32>, CudaError> {
    check_len("download_indices", "indices", s.len(), len)?;
    let mut out = vec![0u32; len];
    if len > 0 {
        dev.stream()
            .memcpy_dtoh(&s.slice(0..len), &mut out)
            .map_err(|e| dev.driver_err("cuMemcpyDtoH", e))?;
        dev.synchronize()?;
    }
    Ok(out)
}
