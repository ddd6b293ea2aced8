//! Sorting along the last axis (values and argsort), gathering along it by indices, and the
//! scatter-add that is the gather's adjoint. Rows are contiguous runs of `len` elements; rows
//! are processed in parallel with rayon.
//!
//! The order is total and the same as the CUDA kernels' (`cuda/kernels/sort.cu`): ascending by
//! value, NaN after every number, `-0 == +0`, and ties broken by the original index, so both
//! devices return the same indices.

use super::Float;
use rayon::prelude::*;

/// `(a, ia)` before `(b, ib)` in the sort order of the module docs.
pub fn sort_less<T: Float>(a: T, ia: u32, b: T, ib: u32) -> bool {
    // NaN is the one value not equal to itself (Float has no is_nan).
    let (na, nb) = (a.partial_cmp(&a).is_none(), b.partial_cmp(&b).is_none());
    match (na, nb) {
        (false, true) => true,
        (true, false) => false,
        (true, true) => ia < ib,
        (false, false) => a < b || (a == b && ia < ib),
    }
}

/// Bits of `v` whose unsigned order is the sort order of the module docs: negative values
/// reversed below positive ones, `-0` as `+0`, every NaN as the largest.
fn f32_order_bits(v: f32) -> u32 {
    if v.is_nan() {
        return u32::MAX;
    }
    let b = if v == 0.0 { 0 } else { v.to_bits() };
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Sorts each row of `x` (rows of `len`, `x.len()` a multiple of `len`) ascending into `vals`
/// and writes each value's position in its input row to `idx` (argsort).
///
/// # Panics
/// If `vals`/`idx` are not as long as `x`, or `len` does not divide `x.len()`, or `len` > u32::MAX.
pub fn sort_rows<T: Float>(x: &[T], len: usize, vals: &mut [T], idx: &mut [u32]) {
    assert!(
        vals.len() == x.len() && idx.len() == x.len(),
        "sort_rows: lengths"
    );
    if x.is_empty() || len == 0 {
        return;
    }
    assert!(
        x.len().is_multiple_of(len) && len <= u32::MAX as usize,
        "sort_rows: row length"
    );
    let f32_keys = super::is_f32::<T>();
    vals.par_chunks_mut(len)
        .zip(idx.par_chunks_mut(len))
        .zip(x.par_chunks(len))
        .for_each(|((v, ix), row)| {
            if f32_keys {
                // One u64 per element, (order-preserving bits of the value, index): a plain
                // integer sort, ≈ 3× faster than comparing through the indices.
                let mut keys: Vec<u64> = row
                    .iter()
                    .enumerate()
                    .map(|(i, &val)| {
                        (u64::from(f32_order_bits(val.to_f64() as f32)) << 32) | i as u64
                    })
                    .collect();
                keys.sort_unstable();
                for ((o, i), k) in v.iter_mut().zip(ix.iter_mut()).zip(&keys) {
                    *i = *k as u32;
                    *o = row[*i as usize];
                }
                return;
            }
            for (k, i) in ix.iter_mut().enumerate() {
                *i = k as u32;
            }
            ix.sort_unstable_by(|&a, &b| {
                let (va, vb) = (row[a as usize], row[b as usize]);
                if sort_less(va, a, vb, b) {
                    std::cmp::Ordering::Less
                } else if a == b {
                    std::cmp::Ordering::Equal
                } else {
                    std::cmp::Ordering::Greater
                }
            });
            for (o, &i) in v.iter_mut().zip(ix.iter()) {
                *o = row[i as usize];
            }
        });
}

/// `out[r, k] = x[r, idx[r, k]]`: rows of `len` in `x`, of `k` in `idx` and `out`.
///
/// # Panics
/// On inconsistent lengths or an index ≥ `len` (the engine checks indices first).
pub fn gather_rows<T: Float>(x: &[T], len: usize, idx: &[u32], k: usize, out: &mut [T]) {
    assert_eq!(idx.len(), out.len(), "gather_rows: lengths");
    if out.is_empty() {
        return;
    }
    assert_eq!(x.len() / len.max(1), idx.len() / k, "gather_rows: rows");
    out.par_chunks_mut(k)
        .zip(idx.par_chunks(k))
        .zip(x.par_chunks(len))
        .for_each(|((o, ix), row)| {
            for (v, &i) in o.iter_mut().zip(ix) {
                *v = row[i as usize];
            }
        });
}

/// The adjoint of [`gather_rows`]: `out[r, idx[r, j]] += g[r, j]` into zeroed rows of `len`
/// (repeated indices add up; within a row in order of `j`, so the result is deterministic).
///
/// # Panics
/// On inconsistent lengths or an index ≥ `len`.
pub fn scatter_add_rows<T: Float>(g: &[T], idx: &[u32], k: usize, len: usize, out: &mut [T]) {
    assert_eq!(idx.len(), g.len(), "scatter_add_rows: lengths");
    if out.is_empty() {
        return;
    }
    assert_eq!(
        out.len() / len,
        idx.len() / k.max(1),
        "scatter_add_rows: rows"
    );
    out.par_chunks_mut(len)
        .zip(idx.par_chunks(k.max(1)))
        .zip(g.par_chunks(k.max(1)))
        .for_each(|((o, ix), gr)| {
            o.fill(T::ZERO);
            for (&i, &v) in ix.iter().zip(gr) {
                o[i as usize] += v;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_rows_with_nan_last_and_ties_by_index() {
        let x = [3.0f64, f64::NAN, -0.0, 0.0, 1.0, 2.0, 2.0, -1.0];
        let (mut v, mut i) = (vec![0.0; 8], vec![0u32; 8]);
        sort_rows(&x, 4, &mut v, &mut i);
        assert_eq!(i, [2, 3, 0, 1, 3, 0, 1, 2]);
        assert_eq!(&v[..3], &[-0.0, 0.0, 3.0]);
        assert!(v[3].is_nan());
        assert_eq!(&v[4..], &[-1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn f32_rows_sort_as_the_generic_order() {
        // The f32 integer-key path against the comparator path (f64) on values with ties,
        // signed zeros, infinities and NaN.
        let x: Vec<f32> = (0..300)
            .map(|i| match i % 13 {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => f32::INFINITY,
                4 => f32::NEG_INFINITY,
                5 => 1.5,
                _ => ((i * 7919 % 101) as f32 - 50.0) / 7.0,
            })
            .collect();
        let (mut v, mut i) = (vec![0.0f32; 300], vec![0u32; 300]);
        sort_rows(&x, 100, &mut v, &mut i);
        let x64: Vec<f64> = x.iter().map(|&a| a as f64).collect();
        let (mut v64, mut i64) = (vec![0.0f64; 300], vec![0u32; 300]);
        sort_rows(&x64, 100, &mut v64, &mut i64);
        assert_eq!(i, i64);
        for (a, b) in v.iter().zip(&v64) {
            assert!(a.to_bits() == (*b as f32).to_bits(), "{a} vs {b}");
        }
    }

    #[test]
    fn gather_and_scatter_are_adjoint() {
        // <gather(x), g> == <x, scatter(g)> for any x, g: the defining property of the adjoint.
        let x: Vec<f64> = (0..10).map(|v| (v as f64 * 0.37).sin()).collect();
        let idx = [4u32, 4, 0, 1, 2, 3, 3, 0];
        let g: Vec<f64> = (0..8).map(|v| (v as f64 * 1.3).cos()).collect();
        let mut gx = vec![0.0; 8];
        gather_rows(&x, 5, &idx, 4, &mut gx);
        assert_eq!(gx[..4], [x[4], x[4], x[0], x[1]]);
        let mut sg = vec![1.0; 10];
        scatter_add_rows(&g, &idx, 4, 5, &mut sg);
        assert_eq!(sg[4], g[0] + g[1]);
        assert_eq!(sg[3], 0.0);
        let lhs: f64 = gx.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&sg).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12);
    }
}
