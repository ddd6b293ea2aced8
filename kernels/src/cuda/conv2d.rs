//! conv2d on the GPU: im2col + cuBLAS GEMM per image (forward, weight gradient), GEMM + col2im
//! (input gradient, a gather: deterministic), bias kernels (`kernels/conv2d.cu`). Shapes and
//! semantics are those of [`crate::cpu::conv2d`] (cross-correlation, NCHW input, OIHW weight).
//! A 1×1 convolution with stride 1 and no padding skips im2col: the image is the matrix.
//!
//! Memory: one `(C·KH·KW) × (OH·OW)` column matrix is allocated per call. Grouped convolutions
//! (`groups > 1`) go to the direct kernels of [`super::grouped_conv`] after the same checks.

use super::gemm::{gemm, GemmMath, MatDesc};
use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use crate::cpu::conv2d::Conv2dParams;
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// Geometry of one image's convolution, as `ConvGeom` in conv2d.cu (field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvGeom {
    c: i64,
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
unsafe impl DeviceRepr for ConvGeom {}

impl ConvGeom {
    pub(crate) fn new(p: &Conv2dParams) -> ConvGeom {
        ConvGeom {
            c: p.c_in as i64,
            h: p.h as i64,
            w: p.w as i64,
            kh: p.kh as i64,
            kw: p.kw as i64,
            stride_h: p.stride_h as i64,
            stride_w: p.stride_w as i64,
            pad_h: p.pad_h as i64,
            pad_w: p.pad_w as i64,
            out_h: p.out_h() as i64,
            out_w: p.out_w() as i64,
        }
    }
}

/// Sizes: (C·KH·KW, OH·OW, C·H·W, O·OH·OW).
fn dims(p: &Conv2dParams) -> (usize, usize, usize, usize) {
    let ckk = p.c_in * p.kh * p.kw;
    let ohw = p.out_h() * p.out_w();
    (ckk, ohw, p.c_in * p.h * p.w, p.c_out * ohw)
}

/// The geometry first, then each buffer's length (`bufs` is called only for a valid geometry:
/// the lengths of outputs divide by the stride).
fn check_shapes<'a, T: 'a>(
    op: &'static str,
    p: &Conv2dParams,
    bufs: impl FnOnce() -> [(&'static str, &'a CudaSlice<T>, usize); 2],
) -> Result<(), CudaError> {
    if p.window().check(p.h, p.w).is_err() {
        return Err(CudaError::InvalidArgument {
            op,
            msg: format!("invalid geometry {p:?}"),
        });
    }
    for (what, s, need) in bufs() {
        check_len(op, what, s.len(), need)?;
    }
    Ok(())
}

/// conv2d.cu's two plane kernels: `im2col` (image → (C·KH·KW) × (OH·OW) columns) and `col2im`
/// (columns → C×H×W, a gather).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlaneKernel {
    Im2col,
    Col2im,
}

impl PlaneKernel {
    fn name(self) -> &'static str {
        match self {
            PlaneKernel::Im2col => "im2col",
            PlaneKernel::Col2im => "col2im",
        }
    }
}

/// Launch `kernel` on one image, from device address `src` to `dst`: the output's rows across
/// the grid's y (launch::planes). Errors: an image or output plane of 2^31 positions or more
/// (the kernels index inside a plane in 32 bits).
pub(crate) fn launch_plane_kernel<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    kernel: PlaneKernel,
    src: u64,
    dst: u64,
) -> Result<(), CudaError> {
    let (hw, ohw) = (p.h * p.w, p.out_h() * p.out_w());
    let (rows, per_row) = match kernel {
        PlaneKernel::Im2col => (p.c_in * p.kh * p.kw, ohw),
        PlaneKernel::Col2im => (p.c_in, hw),
    };
    let name = kernel.name();
    if hw.max(ohw) > i32::MAX as usize {
        return Err(CudaError::InvalidArgument {
            op: name,
            msg: format!("{}×{} image: planes of 2^31 positions or more", p.h, p.w),
        });
    }
    let f = typed(dev, Module::Conv2d, name, T::SUFFIX)?;
    let g = ConvGeom::new(p);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&src).arg(&dst).arg(&g);
    // SAFETY: matches `<name>_<t>(const T*, T*, ConvGeom)`; the callers check that one image
    // of src and of dst lies inside their buffers.
    unsafe { launch::launch(dev, name, l, launch::planes(rows, per_row)) }
}

/// im2col of image `b` of `x` into `cols` ((C·KH·KW) × (OH·OW), row-major).
fn im2col<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    x: &CudaSlice<T>,
    b: usize,
    cols: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    let chw = dims(p).2;
    let (px, pc) = (dev.ptr(x, b * chw), dev.ptr(cols, 0));
    launch_plane_kernel::<T>(dev, p, PlaneKernel::Im2col, px, pc)
}

/// Output N×O×OH×OW of the convolution of x (N×C×H×W) with w (O×C×KH×KW), plus bias [O],
/// the GEMMs computed as `math` says.
pub fn conv2d_forward<T: CudaElem>(
    math: GemmMath,
    dev: &CudaDevice,
    p: &Conv2dParams,
    x: &CudaSlice<T>,
    w: &CudaSlice<T>,
    bias: Option<&CudaSlice<T>>,
) -> Result<CudaSlice<T>, CudaError> {
    check_shapes("conv2d_forward", p, || {
        [("x", x, p.input_len()), ("w", w, p.weight_len())]
    })?;
    if p.groups > 1 {
        if let Some(b) = bias {
            check_len("conv2d_forward", "bias", b.len(), p.c_out)?;
        }
        return super::grouped_conv::forward(dev, p, x, w, bias);
    }
    // Sized once the geometry is known to be valid (a zero stride would divide by 0).
    let (ckk, ohw, chw, ochw) = dims(p);
    if let Some(b) = bias {
        check_len("conv2d_forward", "bias", b.len(), p.c_out)?;
    }
    // SAFETY: every image's GEMM (beta 0) writes its whole O×OH·OW block.
    let mut out = unsafe { dev.alloc::<T>(p.output_len()) }?;
    if p.output_len() == 0 {
        return Ok(out);
    }
    let wd = MatDesc::row_major(0, p.c_out, ckk);
    let pointwise = p.window().is_pointwise();
    let mut cols = if pointwise {
        None
    } else {
        // SAFETY: written whole by im2col before every read.
        Some(unsafe { dev.alloc::<T>(ckk * ohw) }?)
    };
    for b in 0..p.n {
        let od = MatDesc::row_major(b * ochw, p.c_out, ohw);
        match cols.as_mut() {
            None => {
                let xd = MatDesc::row_major(b * chw, ckk, ohw);
                gemm(math, dev, 1, T::ONE, w, wd, x, xd, T::ZERO, &mut out, od)?;
            }
            Some(cols) => {
                im2col(dev, p, x, b, cols)?;
                let cd = MatDesc::row_major(0, ckk, ohw);
                gemm(math, dev, 1, T::ONE, w, wd, cols, cd, T::ZERO, &mut out, od)?;
            }
        }
    }
    if let Some(bias) = bias {
        let f = typed(dev, Module::Conv2d, "bias_add", T::SUFFIX)?;
        let n = p.output_len();
        let (po, pb) = (dev.ptr(&out, 0), dev.ptr(bias, 0));
        let (n64, c64, plane) = (n as i64, p.c_out as i64, ohw as i64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&po).arg(&pb).arg(&n64).arg(&c64).arg(&plane);
        // SAFETY: matches `bias_add_<t>(T*, const T*, i64, i64, i64)`; sizes checked above.
        unsafe { launch::launch(dev, "bias_add", l, launch::elementwise(n)) }?;
    }
    Ok(out)
}

/// ∂L/∂x (N×C×H×W) from ∂L/∂out (N×O×OH×OW) and w: per image `cols = Wᵀ·g`, then col2im;
/// the GEMMs computed as `math` says.
pub fn conv2d_backward_input<T: CudaElem>(
    math: GemmMath,
    dev: &CudaDevice,
    p: &Conv2dParams,
    grad_out: &CudaSlice<T>,
    w: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    check_shapes("conv2d_backward_input", p, || {
        [
            ("grad_out", grad_out, p.output_len()),
            ("w", w, p.weight_len()),
        ]
    })?;
    if p.groups > 1 {
        return super::grouped_conv::backward_input(dev, p, grad_out, w);
    }
    // Sized once the geometry is known to be valid (a zero stride would divide by 0).
    let (ckk, ohw, chw, ochw) = dims(p);
    if ohw == 0 {
        return dev.alloc_zeros::<T>(p.input_len());
    }
    // SAFETY: every image's GEMM (pointwise) or col2im writes its whole C×H×W block.
    let mut gx = unsafe { dev.alloc::<T>(p.input_len()) }?;
    if p.input_len() == 0 {
        return Ok(gx);
    }
    let wt = MatDesc::row_major(0, p.c_out, ckk).t();
    // Image b's Wᵀ·g into `out` (described by `od`).
    let product = |b: usize, out: &mut CudaSlice<T>, od: MatDesc| {
        let gd = MatDesc::row_major(b * ochw, p.c_out, ohw);
        gemm(math, dev, 1, T::ONE, w, wt, grad_out, gd, T::ZERO, out, od)
    };
    if p.window().is_pointwise() {
        for b in 0..p.n {
            product(b, &mut gx, MatDesc::row_major(b * chw, ckk, ohw))?;
        }
        return Ok(gx);
    }
    // SAFETY: written whole by each GEMM (beta 0) before col2im reads it.
    let mut cols = unsafe { dev.alloc::<T>(ckk * ohw) }?;
    let cd = MatDesc::row_major(0, ckk, ohw);
    for b in 0..p.n {
        product(b, &mut cols, cd)?;
        let (pc, pg) = (dev.ptr(&cols, 0), dev.ptr(&gx, b * chw));
        launch_plane_kernel::<T>(dev, p, PlaneKernel::Col2im, pc, pg)?;
    }
    Ok(gx)
}

/// ∂L/∂w (O×C×KH×KW) = Σ_b g_b · im2col(x_b)ᵀ, accumulated image by image in order.
pub fn conv2d_backward_weight<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    x: &CudaSlice<T>,
    grad_out: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    check_shapes("conv2d_backward_weight", p, || {
        [
            ("x", x, p.input_len()),
            ("grad_out", grad_out, p.output_len()),
        ]
    })?;
    if p.groups > 1 {
        return super::grouped_conv::backward_weight(dev, p, x, grad_out);
    }
    // Sized once the geometry is known to be valid (a zero stride would divide by 0).
    let (ckk, ohw, chw, ochw) = dims(p);
    if p.n == 0 || ohw == 0 {
        return dev.alloc_zeros::<T>(p.weight_len());
    }
    // SAFETY: the first image's GEMM has beta 0 and writes all of it.
    let mut gw = unsafe { dev.alloc::<T>(p.weight_len()) }?;
    if p.weight_len() == 0 {
        return Ok(gw);
    }
    let wd = MatDesc::row_major(0, p.c_out, ckk);
    let pointwise = p.window().is_pointwise();
    let mut cols = if pointwise {
        None
    } else {
        // SAFETY: written whole by im2col before every read.
        Some(unsafe { dev.alloc::<T>(ckk * ohw) }?)
    };
    for b in 0..p.n {
        let gd = MatDesc::row_major(b * ochw, p.c_out, ohw);
        let beta = if b == 0 { T::ZERO } else { T::ONE };
        // The columns of image b, transposed: the image itself for a pointwise conv.
        let (src, sd) = match cols.as_mut() {
            None => (x, MatDesc::row_major(b * chw, ckk, ohw).t()),
            Some(cols) => {
                im2col(dev, p, x, b, cols)?;
                (&*cols, MatDesc::row_major(0, ckk, ohw).t())
            }
        };
        gemm(
            GemmMath::Exact,
            dev,
            1,
            T::ONE,
            grad_out,
            gd,
            src,
            sd,
            beta,
            &mut gw,
            wd,
        )?;
    }
    Ok(gw)
}

/// ∂L/∂bias [O] = Σ over images and output pixels of ∂L/∂out: one block per channel.
pub fn conv2d_backward_bias<T: CudaElem>(
    dev: &CudaDevice,
    p: &Conv2dParams,
    grad_out: &CudaSlice<T>,
) -> Result<CudaSlice<T>, CudaError> {
    check_len(
        "conv2d_backward_bias",
        "grad_out",
        grad_out.len(),
        p.output_len(),
    )?;
    let ohw = p.out_h() * p.out_w();
    if p.n == 0 || ohw == 0 {
        return dev.alloc_zeros::<T>(p.c_out);
    }
    // SAFETY: one block per channel writes every element.
    let gb = unsafe { dev.alloc::<T>(p.c_out) }?;
    if p.c_out == 0 {
        return Ok(gb);
    }
    let f = typed(dev, Module::Conv2d, "bias_grad", T::SUFFIX)?;
    let (pg, pb) = (dev.ptr(grad_out, 0), dev.ptr(&gb, 0));
    let (n, c, plane) = (p.n as i64, p.c_out as i64, ohw as i64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&pg).arg(&pb).arg(&n).arg(&c).arg(&plane);
    // SAFETY: matches `bias_grad_<t>(const T*, T*, i64, i64, i64)`.
    unsafe { launch::launch(dev, "bias_grad", l, launch::reduce(p.c_out)) }?;
    Ok(gb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_geom_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<ConvGeom>(), 11 * 8);
    }
}
