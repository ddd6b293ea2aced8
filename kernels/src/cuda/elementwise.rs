//! Elementwise launch wrappers (`kernels/elementwise.cu`): unary and binary maps, broadcasting
//! through strides, strided copies, f32 ↔ f64 casts. Results are new contiguous buffers.

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use crate::ops::{BinaryOp, UnaryOp};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// Maximum rank of a strided operand (`MAX_DIMS` in common.cuh).
pub const MAX_DIMS: usize = 8;

/// The op code and two scalars of `unary_*` in elementwise.cu (`U_*`) for `op`.
fn unary_code(op: UnaryOp) -> (i32, f64, f64) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::AddScalar(s) => (1, s, 0.0),
        UnaryOp::MulScalar(s) => (2, s, 0.0),
        UnaryOp::Square => (3, 0.0, 0.0),
        UnaryOp::Sqrt => (4, 0.0, 0.0),
        UnaryOp::Abs => (5, 0.0, 0.0),
        UnaryOp::Relu => (6, 0.0, 0.0),
        UnaryOp::Sigmoid => (7, 0.0, 0.0),
        UnaryOp::Clamp { min, max } => (8, min, max),
        UnaryOp::ClampGrad { min, max } => (9, min, max),
    }
}

/// The op code of `binary_*` in elementwise.cu (`B_*`) for `op`.
fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::ReluGrad => 4,
        BinaryOp::AbsGrad => 5,
        BinaryOp::SigmoidGrad => 6,
    }
}

/// Shape and two sets of strides, as `StridedMeta` in common.cuh (field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct StridedMeta {
    ndim: i64,
    shape: [i64; MAX_DIMS],
    stride_a: [i64; MAX_DIMS],
    stride_b: [i64; MAX_DIMS],
    offset_a: i64,
    offset_b: i64,
}

// SAFETY: plain-old-data, #[repr(C)], laid out as the C struct (all 8-byte integers).
unsafe impl DeviceRepr for StridedMeta {}

impl StridedMeta {
    fn new(
        op: &'static str,
        shape: &[usize],
        (sa, oa): (&[usize], usize),
        (sb, ob): (&[usize], usize),
    ) -> Result<StridedMeta, CudaError> {
        let nd = shape.len();
        if nd > MAX_DIMS || sa.len() != nd || sb.len() != nd {
            return Err(CudaError::InvalidArgument {
                op,
                msg: format!(
                    "rank {nd} (strides {sa:?}, {sb:?}): at most {MAX_DIMS} dims with one stride each"
                ),
            });
        }
        let mut m = StridedMeta {
            ndim: nd as i64,
            shape: [1; MAX_DIMS],
            stride_a: [0; MAX_DIMS],
            stride_b: [0; MAX_DIMS],
            offset_a: oa as i64,
            offset_b: ob as i64,
        };
        for d in 0..nd {
            m.shape[d] = shape[d] as i64;
            m.stride_a[d] = sa[d] as i64;
            m.stride_b[d] = sb[d] as i64;
        }
        Ok(m)
    }
}

/// Largest element index a strided view touches, plus one (0 for an empty shape).
fn extent(shape: &[usize], strides: &[usize], offset: usize) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    offset
        + shape
            .iter()
            .zip(strides)
            .map(|(&d, &s)| (d - 1) * s)
            .sum::<usize>()
        + 1
}

/// Row-major strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// `out[i] = op(x[i])` for the first `n` elements of `x`.
pub fn unary<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    n: usize,
    op: UnaryOp,
) -> Result<CudaSlice<T>, CudaError> {
    check_len("unary", "x", x.len(), n)?;
    // SAFETY: every one of the n elements is written below.
    let out = unsafe { dev.alloc::<T>(n) }?;
    if n == 0 {
        return Ok(out);
    }
    let f = typed(dev, Module::Elementwise, "unary", T::SUFFIX)?;
    let (px, po, n64) = (dev.ptr(x, 0), dev.ptr(&out, 0), n as i64);
    let (code, s0, s1) = unary_code(op);
    let mut b = dev.stream().launch_builder(&f);
    b.arg(&px).arg(&po).arg(&n64).arg(&code).arg(&s0).arg(&s1);
    // SAFETY: matches `unary_<t>(const T*, T*, i64, int, double, double)`; both buffers hold
    // n elements.
    unsafe { launch::launch(dev, "unary", b, launch::elementwise(n)) }?;
    Ok(out)
}

/// `out[i] = op(a[i], b[i])` for the first `n` elements (same shapes, both contiguous).
pub fn binary<T: CudaElem>(
    dev: &CudaDevice,
    op: BinaryOp,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    n: usize,
) -> Result<CudaSlice<T>, CudaError> {
    check_len("binary", "a", a.len(), n)?;
    check_len("binary", "b", b.len(), n)?;
    // SAFETY: every one of the n elements is written below.
    let out = unsafe { dev.alloc::<T>(n) }?;
    if n == 0 {
        return Ok(out);
    }
    let f = typed(dev, Module::Elementwise, "binary", T::SUFFIX)?;
    let (pa, pb, po, n64, code) = (
        dev.ptr(a, 0),
        dev.ptr(b, 0),
        dev.ptr(&out, 0),
        n as i64,
        binary_code(op),
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&pa).arg(&pb).arg(&po).arg(&n64).arg(&code);
    // SAFETY: matches `binary_<t>(const T*, const T*, T*, i64, int)`; all hold n elements.
    unsafe { launch::launch(dev, "binary", l, launch::elementwise(n)) }?;
    Ok(out)
}

/// Broadcasting binary map: `out` (contiguous, `shape`) at index i is `op(a[..], b[..])` with
/// the operands read through (strides, offset) per operand; stride 0 broadcasts.
#[allow(clippy::too_many_arguments)]
pub fn binary_strided<T: CudaElem>(
    dev: &CudaDevice,
    op: BinaryOp,
    shape: &[usize],
    a: &CudaSlice<T>,
    a_strides: &[usize],
    a_offset: usize,
    b: &CudaSlice<T>,
    b_strides: &[usize],
    b_offset: usize,
) -> Result<CudaSlice<T>, CudaError> {
    let meta = StridedMeta::new(
        "binary_strided",
        shape,
        (a_strides, a_offset),
        (b_strides, b_offset),
    )?;
    check_len(
        "binary_strided",
        "a",
        a.len(),
        extent(shape, a_strides, a_offset),
    )?;
    check_len(
        "binary_strided",
        "b",
        b.len(),
        extent(shape, b_strides, b_offset),
    )?;
    let n: usize = shape.iter().product();
    // SAFETY: every one of the n elements is written below.
    let out = unsafe { dev.alloc::<T>(n) }?;
    if n == 0 {
        return Ok(out);
    }
    let f = typed(dev, Module::Elementwise, "binary_strided", T::SUFFIX)?;
    let (pa, pb, po, n64, code) = (
        dev.ptr(a, 0),
        dev.ptr(b, 0),
        dev.ptr(&out, 0),
        n as i64,
        binary_code(op),
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&pa).arg(&pb).arg(&po).arg(&n64).arg(&code).arg(&meta);
    // SAFETY: matches `binary_strided_<t>(const T*, const T*, T*, i64, int, StridedMeta)`;
    // the extents were checked above.
    unsafe { launch::launch(dev, "binary_strided", l, launch::elementwise(n)) }?;
    Ok(out)
}

/// Gather the strided view (`shape`, `strides`, `offset`) of `src` into a new contiguous buffer.
pub fn copy_strided<T: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> Result<CudaSlice<T>, CudaError> {
    let n: usize = shape.iter().product();
    // SAFETY: the copy writes all n elements (the destination view is contiguous).
    let mut out = unsafe { dev.alloc::<T>(n) }?;
    copy_into_strided(
        dev,
        src,
        (strides, offset),
        &mut out,
        (&contiguous_strides(shape), 0),
        shape,
    )?;
    Ok(out)
}

/// `dst[view d] = src[view s]` over `shape`, each view given as (strides, offset). The
/// destination view must not map two indices to one element (it never does for the contiguous
/// gathers and narrow scatters the engine makes).
pub fn copy_into_strided<T: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    (s_strides, s_offset): (&[usize], usize),
    dst: &mut CudaSlice<T>,
    (d_strides, d_offset): (&[usize], usize),
    shape: &[usize],
) -> Result<(), CudaError> {
    let meta = StridedMeta::new(
        "copy_strided",
        shape,
        (s_strides, s_offset),
        (d_strides, d_offset),
    )?;
    check_len(
        "copy_strided",
        "src",
        src.len(),
        extent(shape, s_strides, s_offset),
    )?;
    check_len(
        "copy_strided",
        "dst",
        dst.len(),
        extent(shape, d_strides, d_offset),
    )?;
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(());
    }
    let f = typed(dev, Module::Elementwise, "copy_strided", T::SUFFIX)?;
    let (ps, pd, n64) = (dev.ptr(src, 0), dev.ptr(dst, 0), n as i64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&ps).arg(&pd).arg(&n64).arg(&meta);
    // SAFETY: matches `copy_strided_<t>(const T*, T*, i64, StridedMeta)`; extents checked.
    unsafe { launch::launch(dev, "copy_strided", l, launch::elementwise(n)) }
}

/// Convert the first `n` f32 elements to f64.
pub fn cast_f32_to_f64(
    dev: &CudaDevice,
    x: &CudaSlice<f32>,
    n: usize,
) -> Result<CudaSlice<f64>, CudaError> {
    cast(dev, "cast_f32_f64", x, n)
}

/// Convert the first `n` f64 elements to f32 (round to nearest).
pub fn cast_f64_to_f32(
    dev: &CudaDevice,
    x: &CudaSlice<f64>,
    n: usize,
) -> Result<CudaSlice<f32>, CudaError> {
    cast(dev, "cast_f64_f32", x, n)
}

fn cast<S: CudaElem, D: CudaElem>(
    dev: &CudaDevice,
    name: &'static str,
    x: &CudaSlice<S>,
    n: usize,
) -> Result<CudaSlice<D>, CudaError> {
    check_len(name, "x", x.len(), n)?;
    // SAFETY: every one of the n elements is written below.
    let out = unsafe { dev.alloc::<D>(n) }?;
    if n == 0 {
        return Ok(out);
    }
    let f = dev.function(Module::Elementwise, name)?;
    let (px, po, n64) = (dev.ptr(x, 0), dev.ptr(&out, 0), n as i64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&px).arg(&po).arg(&n64);
    // SAFETY: matches `cast_<s>_<d>(const S*, D*, i64)`.
    unsafe { launch::launch(dev, name, l, launch::elementwise(n)) }?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_meta_matches_the_c_layout() {
        // 1 + 3·8 + 2 eight-byte fields, no padding.
        assert_eq!(
            std::mem::size_of::<StridedMeta>(),
            (1 + 3 * MAX_DIMS + 2) * 8
        );
        let m = StridedMeta::new("t", &[2, 3], (&[3, 1], 5), (&[0, 1], 0)).unwrap();
        assert_eq!(
            (m.ndim, m.shape[..3].to_vec(), m.offset_a),
            (2, vec![2, 3, 1], 5)
        );
        assert!(StridedMeta::new("t", &[1; 9], (&[1; 9], 0), (&[1; 9], 0)).is_err());
    }

    #[test]
    fn extents() {
        assert_eq!(extent(&[2, 3], &[3, 1], 0), 6);
        assert_eq!(extent(&[2, 3], &[1, 2], 4), 4 + 1 + 4 + 1);
        assert_eq!(extent(&[4, 3], &[0, 1], 0), 3);
        assert_eq!(extent(&[0, 3], &[3, 1], 7), 0);
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
