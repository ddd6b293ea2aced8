//! Patch extraction and index selection on the GPU, with the semantics of
//! [`crate::cpu::index`]: `unfold`/`fold` launch conv2d.cu's `im2col`/`col2im` once per image
//! (`col2im` is a gather: deterministic, no atomics); `argmax_axis` and `index_select` are
//! `kernels/index.cu`.

use super::conv2d::{launch_plane_kernel, PlaneKernel};
use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use crate::cpu::conv2d::Conv2dParams;
use crate::cpu::index::unfold_rows;
use cudarc::driver::{CudaSlice, PushKernelArg};

fn check_geometry(op: &'static str, p: &Conv2dParams) -> Result<(usize, usize), CudaError> {
    if p.window().check(p.h, p.w).is_err() {
        return Err(CudaError::InvalidArgument {
            op,
            msg: format!("invalid geometry {p:?}"),
        });
    }
    Ok((p.c_in * p.h * p.w, unfold_rows(p) * p.out_h() * p.out_w()))
}

/// im2col (`forward`) or col2im of every image: `src` image b at `b·src_per`, `dst` at
/// `b·dst_per`, `dst_per` elements written per image.
fn per_image<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    kernel: PlaneKernel,
    src: &CudaSlice<T>,
    (src_per, dst_per): (usize, usize),
) -> Result<CudaSlice<T>, CudaError> {
    // SAFETY: every image's block is written whole by its launch.
    let out = unsafe { dev.alloc::<T>(p.n * dst_per) }?;
    if dst_per == 0 || src_per == 0 {
        return if dst_per == 0 {
            Ok(out)
        } else {
            dev.alloc_zeros::<T>(p.n * dst_per)
        };
    }
    for b in 0..p.n {
        // Image b of src and dst lie inside their buffers (lengths checked by the callers).
        let (ps, pd) = (dev.ptr(src, b * src_per), dev.ptr(&out, b * dst_per));
        launch_plane_kernel::<T>(dev, p, kernel, ps, pd)?;
    }
    Ok(out)
}

/// Patches: `x` N×C×H×W → N×(C·KH·KW)×(OH·OW), as [`crate::cpu::index::unfold`].
pub fn unfold<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    x: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let (chw, per) = check_geometry("unfold", p)?;
    check_len("unfold", "x", x.len(), p.n * chw)?;
    per_image(dev, p, PlaneKernel::Im2col, x, (chw, per))
}

/// The adjoint of [`unfold`]: N×C×H×W sums of the columns gathered from each position.
pub fn fold<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    cols: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let (chw, per) = check_geometry("fold", p)?;
    check_len("fold", "cols", cols.len(), p.n * per)?;
    per_image(dev, p, PlaneKernel::Col2im, cols, (per, chw))
}

/// Maximum over the middle axis of `x` (outer × n × inner): (values, indices as T), each
/// outer × inner, as [`crate::cpu::index::argmax_axis`].
pub fn argmax_axis<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    (outer, n, inner): (usize, usize, usize),
) -> Result<(CudaSlice<T>, CudaSlice<T>), CudaError> {
    let op = "argmax_axis";
    if n == 0 {
        return Err(CudaError::InvalidArgument {
            op,
            msg: "empty axis".into(),
        });
    }
    check_len(op, "x", x.len(), outer * n * inner)?;
    let m = outer * inner;
    // SAFETY: written whole by the kernel.
    let (values, indices) = unsafe { (dev.alloc::<T>(m)?, dev.alloc::<T>(m)?) };
    if m > 0 {
        let f = typed(dev, Module::Index, op, T::SUFFIX)?;
        let (px, pv, pi) = (dev.ptr(x, 0), dev.ptr(&values, 0), dev.ptr(&indices, 0));
        let dims = [outer as i64, n as i64, inner as i64];
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&px).arg(&pv).arg(&pi);
        for d in &dims {
            l.arg(d);
        }
        // SAFETY: `argmax_axis_<t>(const T*, T*, T*, i64 outer, i64 n, i64 inner)`; lengths
        // checked above.
        unsafe { launch::launch(dev, op, l, launch::elementwise(m)) }?;
    }
    Ok((values, indices))
}

/// `out[o, j, i] = x[o, idx[j], i]` (x: outer × n_src × inner; idx: n_idx indices as T; an
/// index outside `[0, n_src)` gives 0), as [`crate::cpu::index::index_select`].
pub fn index_select<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    (outer, n_src, inner): (usize, usize, usize),
    idx: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    let op = "index_select";
    check_len(op, "x", x.len(), outer * n_src * inner)?;
    let len = outer * idx.len() * inner;
    // SAFETY: written whole by the kernel.
    let out = unsafe { dev.alloc::<T>(len) }?;
    if len > 0 {
        let f = typed(dev, Module::Index, op, T::SUFFIX)?;
        let (px, pi, po) = (dev.ptr(x, 0), dev.ptr(idx, 0), dev.ptr(&out, 0));
        let dims = [outer as i64, n_src as i64, idx.len() as i64, inner as i64];
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&px).arg(&pi).arg(&po);
        for d in &dims {
            l.arg(d);
        }
        // SAFETY: `index_select_<t>(const T*, const T*, T*, i64 outer, i64 n_src, i64 n_idx,
        // i64 inner)`; lengths checked above.
        unsafe { launch::launch(dev, op, l, launch::elementwise(len)) }?;
    }
    Ok(out)
}
