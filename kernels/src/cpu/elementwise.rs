//! Elementwise maps, strided copies and reductions on flat buffers, parallel with rayon for large
//! sizes. Inner loops run over contiguous runs so that they auto-vectorise.

use super::Float;
use crate::ops::{BinaryOp, UnaryOp};
use rayon::prelude::*;

/// Elements per rayon task; below this a loop stays on the calling thread.
pub const PAR_CHUNK: usize = 1 << 15;

/// `out[i] = f(x[i])`.
pub fn unary<T: Float, F: Fn(T) -> T + Sync>(x: &[T], out: &mut [T], f: F) {
    assert_eq!(x.len(), out.len());
    if x.len() <= PAR_CHUNK {
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(x.par_chunks(PAR_CHUNK))
            .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v)));
    }
}

/// `x[i] = f(x[i])`, in place.
pub fn unary_in_place<T: Float, F: Fn(T) -> T + Sync>(x: &mut [T], f: F) {
    if x.len() <= PAR_CHUNK {
        x.iter_mut().for_each(|v| *v = f(*v));
    } else {
        x.par_chunks_mut(PAR_CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
    }
}

/// `out[i] = f(a[i], b[i])` for equal-length contiguous inputs.
pub fn binary<T: Float, F: Fn(T, T) -> T + Sync>(a: &[T], b: &[T], out: &mut [T], f: F) {
    assert!(a.len() == out.len() && b.len() == out.len());
    let body = |(o, (a, b)): (&mut [T], (&[T], &[T]))| {
        for i in 0..o.len() {
            o[i] = f(a[i], b[i]);
        }
    };
    if a.len() <= PAR_CHUNK {
        body((out, (a, b)));
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(a.par_chunks(PAR_CHUNK).zip(b.par_chunks(PAR_CHUNK)))
            .for_each(body);
    }
}

/// `acc[i] += x[i]` for equal-length buffers, in place (the tape's gradient sums: no output
/// buffer to allocate and zero, one stream fewer than `binary`).
///
/// # Panics
/// If the lengths differ.
pub fn add_assign<T: Float>(acc: &mut [T], x: &[T]) {
    assert_eq!(acc.len(), x.len(), "add_assign: lengths");
    let body = |(a, x): (&mut [T], &[T])| {
        for (a, &x) in a.iter_mut().zip(x) {
            *a += x;
        }
    };
    if acc.len() <= PAR_CHUNK {
        body((acc, x));
    } else {
        acc.par_chunks_mut(PAR_CHUNK)
            .zip(x.par_chunks(PAR_CHUNK))
            .for_each(body);
    }
}

/// ReLU's backward from its output: `out[i] = grad[i]` where `y[i] > 0`, else 0.
pub fn relu_backward<T: Float>(grad: &[T], y: &[T], out: &mut [T]) {
    binary(grad, y, out, |g, y| if y > T::ZERO { g } else { T::ZERO });
}

/// Offset of each "row" (all dims but the last) of a strided view, in row-major order.
fn row_offsets(shape: &[usize], strides: &[usize], offset: usize) -> Vec<usize> {
    let nd = shape.len();
    let rows: usize = shape[..nd.saturating_sub(1)].iter().product();
    let mut offs = Vec::with_capacity(rows);
    let mut idx = vec![0usize; nd.saturating_sub(1)];
    for _ in 0..rows {
        offs.push(offset + idx.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    offs
}

/// Gather a strided view (`shape`, `strides` in elements, starting at `offset`) of `src` into
/// the contiguous row-major `out` (length = product of `shape`).
pub fn copy_strided<T: Float>(
    src: &[T],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
    out: &mut [T],
) {
    let n: usize = shape.iter().product();
    assert_eq!(out.len(), n);
    if n == 0 {
        return;
    }
    if shape.is_empty() {
        out[0] = src[offset];
        return;
    }
    let last = *shape.last().unwrap();
    let ls = *strides.last().unwrap();
    let offs = row_offsets(shape, strides, offset);
    let row = |(o, &base): (&mut [T], &usize)| {
        if ls == 1 {
            o.copy_from_slice(&src[base..base + last]);
        } else {
            for (j, v) in o.iter_mut().enumerate() {
                *v = src[base + j * ls];
            }
        }
    };
    if n <= PAR_CHUNK || last == 0 {
        out.chunks_mut(last).zip(&offs).for_each(row);
    } else {
        out.par_chunks_mut(last).zip(offs.par_iter()).for_each(row);
    }
}

/// Scatter the contiguous row-major `src` into the strided view (`shape`, `strides`, `offset`)
/// of `dst` (the inverse of [`copy_strided`]); other elements of `dst` are left as they are.
pub fn copy_to_strided<T: Float>(
    src: &[T],
    dst: &mut [T],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) {
    let n: usize = shape.iter().product();
    assert_eq!(src.len(), n);
    if n == 0 {
        return;
    }
    if shape.is_empty() {
        dst[offset] = src[0];
        return;
    }
    let last = *shape.last().unwrap();
    let ls = *strides.last().unwrap();
    for (row, base) in src.chunks(last).zip(row_offsets(shape, strides, offset)) {
        for (j, &v) in row.iter().enumerate() {
            dst[base + j * ls] = v;
        }
    }
}

/// `out = f(a, b)` over the row-major index space `shape`, reading `a` and `b` through strided
/// views (a stride of 0 broadcasts that dimension).
#[allow(clippy::too_many_arguments)]
pub fn binary_strided<T: Float, F: Fn(T, T) -> T + Sync>(
    shape: &[usize],
    a: &[T],
    a_strides: &[usize],
    a_offset: usize,
    b: &[T],
    b_strides: &[usize],
    b_offset: usize,
    out: &mut [T],
    f: F,
) {
    let n: usize = shape.iter().product();
    assert_eq!(out.len(), n);
    if n == 0 {
        return;
    }
    if shape.is_empty() {
        out[0] = f(a[a_offset], b[b_offset]);
        return;
    }
    let last = *shape.last().unwrap();
    let (sa, sb) = (*a_strides.last().unwrap(), *b_strides.last().unwrap());
    let oa = row_offsets(shape, a_strides, a_offset);
    let ob = row_offsets(shape, b_strides, b_offset);
    let row = |(o, (&pa, &pb)): (&mut [T], (&usize, &usize))| match (sa, sb) {
        (1, 1) => {
            let (a, b) = (&a[pa..pa + last], &b[pb..pb + last]);
            for j in 0..last {
                o[j] = f(a[j], b[j]);
            }
        }
        (1, 0) => {
            let (a, bv) = (&a[pa..pa + last], b[pb]);
            for j in 0..last {
                o[j] = f(a[j], bv);
            }
        }
        (0, 1) => {
            let (av, b) = (a[pa], &b[pb..pb + last]);
            for j in 0..last {
                o[j] = f(av, b[j]);
            }
        }
        _ => {
            for (j, v) in o.iter_mut().enumerate() {
                *v = f(a[pa + j * sa], b[pb + j * sb]);
            }
        }
    };
    if n <= PAR_CHUNK {
        out.chunks_mut(last).zip(oa.iter().zip(&ob)).for_each(row);
    } else {
        out.par_chunks_mut(last)
            .zip(oa.par_iter().zip(ob.par_iter()))
            .for_each(row);
    }
}

/// An op with data (a scalar, bounds) as a closure that rebuilds the variant around its
/// captured values, so that `apply`'s `match` folds inside it ([`per_variant`]).
#[derive(Clone, Copy)]
struct Bound<F>(F);

impl<F> Bound<F> {
    #[inline(always)]
    fn apply<T>(self, v: T) -> T
    where
        F: Fn(T) -> T,
    {
        (self.0)(v)
    }
}

/// Runs `$call` with `$o` bound to `$op` re-built per variant, so that each variant's loop is
/// compiled on its own (the `match` in `apply` folds away, and the loop vectorises). Variants
/// without data are bound as constants: a closure that captured the op as a value read its
/// discriminant from memory and dispatched through a jump table on every element (the
/// closure's loop runs inside rayon, where the op's invariance was not visible); variants with
/// data as a [`Bound`] closure over their values.
macro_rules! per_variant {
    (unary $op:expr, $o:ident => $call:expr) => {
        match $op {
            UnaryOp::Neg => {
                #[allow(non_upper_case_globals)]
                const $o: UnaryOp = UnaryOp::Neg;
                $call
            }
            UnaryOp::AddScalar(s) => {
                let $o = Bound(move |v| UnaryOp::AddScalar(s).apply(v));
                $call
            }
            UnaryOp::MulScalar(s) => {
                let $o = Bound(move |v| UnaryOp::MulScalar(s).apply(v));
                $call
            }
            UnaryOp::Square => {
                #[allow(non_upper_case_globals)]
                const $o: UnaryOp = UnaryOp::Square;
                $call
            }
            UnaryOp::Sqrt => {
                #[allow(non_upper_case_globals)]
                const $o: UnaryOp = UnaryOp::Sqrt;
                $call
            }
            UnaryOp::Abs => {
                #[allow(non_upper_case_globals)]
                const $o: UnaryOp = UnaryOp::Abs;
                $call
            }
            UnaryOp::Relu => {
                #[allow(non_upper_case_globals)]
                const $o: UnaryOp = UnaryOp::Relu;
                $call
            }
            UnaryOp::Sigmoid => {
                #[allow(non_upper_case_globals)]
                const $o: UnaryOp = UnaryOp::Sigmoid;
                $call
            }
            UnaryOp::Clamp { min, max } => {
                let $o = Bound(move |v| UnaryOp::Clamp { min, max }.apply(v));
                $call
            }
            UnaryOp::ClampGrad { min, max } => {
                let $o = Bound(move |v| UnaryOp::ClampGrad { min, max }.apply(v));
                $call
            }
        }
    };
    (binary $op:expr, $o:ident => $call:expr) => {
        match $op {
            BinaryOp::Add => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::Add;
                $call
            }
            BinaryOp::Sub => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::Sub;
                $call
            }
            BinaryOp::Mul => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::Mul;
                $call
            }
            BinaryOp::Div => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::Div;
                $call
            }
            BinaryOp::ReluGrad => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::ReluGrad;
                $call
            }
            BinaryOp::AbsGrad => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::AbsGrad;
                $call
            }
            BinaryOp::SigmoidGrad => {
                #[allow(non_upper_case_globals)]
                const $o: BinaryOp = BinaryOp::SigmoidGrad;
                $call
            }
        }
    };
}

/// `out[i] = op(x[i])` ([`UnaryOp::apply`]).
pub fn unary_op<T: Float>(op: UnaryOp, x: &[T], out: &mut [T]) {
    per_variant!(unary op, o => unary(x, out, move |v| o.apply(v)))
}

/// `x[i] = op(x[i])` ([`UnaryOp::apply`]), in place.
pub fn unary_op_in_place<T: Float>(op: UnaryOp, x: &mut [T]) {
    per_variant!(unary op, o => unary_in_place(x, move |v| o.apply(v)))
}

/// `out[i] = op(a[i], b[i])` ([`BinaryOp::apply`]) for equal-length contiguous inputs.
pub fn binary_op<T: Float>(op: BinaryOp, a: &[T], b: &[T], out: &mut [T]) {
    per_variant!(binary op, o => binary(a, b, out, move |p, q| o.apply(p, q)))
}

/// [`binary_strided`] with `f` = `op` ([`BinaryOp::apply`]).
#[allow(clippy::too_many_arguments)]
pub fn binary_strided_op<T: Float>(
    op: BinaryOp,
    shape: &[usize],
    a: &[T],
    a_strides: &[usize],
    a_offset: usize,
    b: &[T],
    b_strides: &[usize],
    b_offset: usize,
    out: &mut [T],
) {
    per_variant!(binary op, o => binary_strided(
        shape, a, a_strides, a_offset, b, b_strides, b_offset, out, move |p, q| o.apply(p, q)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_strided_transposes() {
        // 2×3 row-major, read as its 3×2 transpose.
        let src = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 6];
        copy_strided(&src, &[3, 2], &[1, 3], 0, &mut out);
        assert_eq!(out, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        // a 1-D slice with offset and stride 2
        let mut out2 = [0.0; 2];
        copy_strided(&src, &[2], &[2], 1, &mut out2);
        assert_eq!(out2, [1.0, 3.0]);
    }

    #[test]
    fn binary_strided_broadcasts_rows_and_columns() {
        let a = [1.0f64, 2.0, 3.0]; // column 3×1
        let b = [10.0f64, 20.0]; // row 1×2
        let mut out = [0.0; 6];
        binary_strided(&[3, 2], &a, &[1, 0], 0, &b, &[0, 1], 0, &mut out, |x, y| {
            x + y
        });
        assert_eq!(out, [11.0, 21.0, 12.0, 22.0, 13.0, 23.0]);
    }
}
