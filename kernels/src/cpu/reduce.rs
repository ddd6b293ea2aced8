//! Reductions on contiguous slices: the sum of all elements and sums along one axis, with
//! several accumulators (vectorised, better rounding than one running sum) and rayon over
//! chunks. Mirrors `cuda/reduce.rs` and `engine/src/ops/reduce.rs`.

use super::elementwise::PAR_CHUNK;
use super::Float;
use rayon::prelude::*;

/// Sum of all elements, in chunks (pairwise across chunks) for accuracy and parallelism.
pub fn sum_all<T: Float>(x: &[T]) -> T {
    if x.len() <= PAR_CHUNK {
        sum_chunk(x)
    } else {
        let partials: Vec<T> = x.par_chunks(PAR_CHUNK / 4).map(sum_chunk).collect();
        sum_chunk(&partials)
    }
}

/// Sum with 8 independent accumulators (vectorises; better rounding than one running sum).
fn sum_chunk<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = T::ZERO;
    for v in chunks.remainder() {
        s += *v;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + s
}

/// Reduce the middle axis of a contiguous `outer × len × inner` array:
/// `out[o·inner + i] = Σ_l x[(o·len + l)·inner + i]`.
pub fn sum_axis<T: Float>(x: &[T], outer: usize, len: usize, inner: usize, out: &mut [T]) {
    assert_eq!(x.len(), outer * len * inner);
    assert_eq!(out.len(), outer * inner);
    if inner == 1 {
        let body = |(o, xs): (&mut T, &[T])| *o = sum_chunk(xs);
        if x.len() <= PAR_CHUNK || len == 0 {
            out.iter_mut().zip(x.chunks(len.max(1))).for_each(body);
        } else {
            out.par_iter_mut().zip(x.par_chunks(len)).for_each(body);
        }
        return;
    }
    let body = |(o, xs): (&mut [T], &[T])| {
        o.fill(T::ZERO);
        for l in 0..len {
            let row = &xs[l * inner..(l + 1) * inner];
            for i in 0..inner {
                o[i] += row[i];
            }
        }
    };
    if x.len() <= PAR_CHUNK || len == 0 {
        out.chunks_mut(inner)
            .zip(x.chunks((len * inner).max(1)))
            .for_each(body);
    } else {
        out.par_chunks_mut(inner)
            .zip(x.par_chunks(len * inner))
            .for_each(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_naive() {
        let x: Vec<f64> = (0..100_003)
            .map(|i| ((i * 7919) % 1000) as f64 * 0.001 - 0.5)
            .collect();
        let naive: f64 = x.iter().sum();
        assert!((sum_all(&x) - naive).abs() < 1e-8);
        // axis sums over a 7×11×13 array, every axis position
        let y: Vec<f64> = (0..7 * 11 * 13).map(|i| (i as f64).sin()).collect();
        let mut out = vec![0.0; 7 * 13];
        sum_axis(&y, 7, 11, 13, &mut out);
        for o in 0..7 {
            for i in 0..13 {
                let want: f64 = (0..11).map(|l| y[(o * 11 + l) * 13 + i]).sum();
                assert!((out[o * 13 + i] - want).abs() < 1e-12);
            }
        }
        let mut out1 = vec![0.0; 7 * 11];
        sum_axis(&y, 7 * 11, 13, 1, &mut out1);
        assert!((out1[5] - y[65..78].iter().sum::<f64>()).abs() < 1e-12);
    }
}
