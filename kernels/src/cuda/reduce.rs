//! Deterministic sums (`kernels/reduce.cu`): the same input gives the same bits on every run.
//! A full sum is two passes of block tree reductions over a grid fixed by the length; an axis
//! sum is one thread (or, when the axis is the last and long, one block) per output.

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use cudarc::driver::{CudaSlice, PushKernelArg};

/// An axis at least this long and innermost (`inner == 1`) is summed one block per output.
const ROW_BLOCK_MIN_LEN: usize = 128;

/// Σ of the first `n` elements of `x`, as a one-element device buffer.
pub fn sum_all<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    n: usize,
) -> Result<CudaSlice<T>, CudaError> {
    check_len("sum_all", "x", x.len(), n)?;
    if n == 0 {
        return dev.alloc_zeros::<T>(1);
    }
    let f = typed(dev, Module::Reduce, "sum_partial", T::SUFFIX)?;
    let blocks = launch::sum_blocks(n);
    // SAFETY: pass 1 writes one partial per block, all `blocks` of them.
    let partials = unsafe { dev.alloc::<T>(blocks) }?;
    // SAFETY: pass 2 (one block) writes the single output.
    let out = unsafe { dev.alloc::<T>(1) }?;
    for (src, len, dst, grid) in [
        (dev.ptr(x, 0), n, dev.ptr(&partials, 0), blocks),
        (dev.ptr(&partials, 0), blocks, dev.ptr(&out, 0), 1),
    ] {
        let len = len as i64;
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&src).arg(&dst).arg(&len);
        // SAFETY: matches `sum_partial_<t>(const T*, T*, i64)`; `dst` holds `grid` elements.
        unsafe { launch::launch(dev, "sum_partial", l, launch::reduce(grid)) }?;
    }
    Ok(out)
}

/// Middle-axis sum of a contiguous `outer × len × inner` array:
/// `out[o·inner + i] = Σ_l x[(o·len + l)·inner + i]`, `outer·inner` outputs.
pub fn sum_axis<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    outer: usize,
    len: usize,
    inner: usize,
) -> Result<CudaSlice<T>, CudaError> {
    check_len("sum_axis", "x", x.len(), outer * len * inner)?;
    let n_out = outer * inner;
    if len == 0 {
        return dev.alloc_zeros::<T>(n_out);
    }
    // SAFETY: one value per output is written below.
    let out = unsafe { dev.alloc::<T>(n_out) }?;
    if n_out == 0 {
        return Ok(out);
    }
    let (px, po) = (dev.ptr(x, 0), dev.ptr(&out, 0));
    if inner == 1 && len >= ROW_BLOCK_MIN_LEN {
        let f = typed(dev, Module::Reduce, "sum_rows", T::SUFFIX)?;
        let (rows, len) = (outer as i64, len as i64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&px).arg(&po).arg(&rows).arg(&len);
        // SAFETY: matches `sum_rows_<t>(const T*, T*, i64, i64)`.
        unsafe { launch::launch(dev, "sum_rows", l, launch::reduce(outer)) }?;
    } else {
        let f = typed(dev, Module::Reduce, "sum_axis", T::SUFFIX)?;
        let (o, l64, i) = (outer as i64, len as i64, inner as i64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&px).arg(&po).arg(&o).arg(&l64).arg(&i);
        // SAFETY: matches `sum_axis_<t>(const T*, T*, i64, i64, i64)`.
        unsafe { launch::launch(dev, "sum_axis", l, launch::elementwise(n_out)) }?;
    }
    Ok(out)
}
