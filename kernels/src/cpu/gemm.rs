//! General matrix multiply on strided views: `C = alpha·A·B + beta·C`, A m×k, B k×n, C m×n.
//!
//! The micro-kernels are matrixmultiply's (run-time SIMD dispatch: AVX-512 / AVX2+FMA / SSE2 /
//! portable); this file adds rayon parallelism by splitting C into blocks of rows or columns.

use super::{Float, SendPtr};
use rayon::prelude::*;

/// A strided matrix view: element (i, j) lives at `i * rs + j * cs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatLayout {
    pub rows: usize,
    pub cols: usize,
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

impl MatLayout {
    /// Row-major contiguous `rows × cols`.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        MatLayout {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of this view (no data moves).
    pub fn t(self) -> Self {
        MatLayout {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// Smallest buffer length that holds every element of the view.
    pub fn min_len(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// Work (m·n·k multiply-adds) under which gemm stays on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// `C = alpha·A·B + beta·C` with A `m×k` (layout `la`), B `k×n` (`lb`), C `m×n` (`lc`).
///
/// Parallel over blocks of C's rows (or columns when C is wide) on the rayon pool. When `beta`
/// is zero, C's old contents are ignored (NaNs included).
///
/// # Panics
/// If the layouts disagree on m/k/n or a buffer is shorter than its view (a programming error
/// inside the crate's callers, never reachable from user input through the engine). C's view
/// must not alias itself (distinct (i, j) map to distinct offsets).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    alpha: T,
    a: &[T],
    la: MatLayout,
    b: &[T],
    lb: MatLayout,
    beta: T,
    c: &mut [T],
    lc: MatLayout,
) {
    let (m, k, n) = (la.rows, la.cols, lb.cols);
    assert_eq!(lb.rows, k, "gemm: inner dimensions differ");
    assert_eq!((lc.rows, lc.cols), (m, n), "gemm: output shape differs");
    assert!(a.len() >= la.min_len() && b.len() >= lb.min_len() && c.len() >= lc.min_len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // matrixmultiply handles k = 0 too, but be explicit: C = beta·C.
        for i in 0..m {
            for j in 0..n {
                let v = &mut c[i * lc.rs + j * lc.cs];
                *v = if beta == T::ZERO { T::ZERO } else { beta * *v };
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let work = m * n * k;
    let cp = SendPtr(c.as_mut_ptr());
    let run = |i0: usize, i1: usize, j0: usize, j1: usize| unsafe {
        #[allow(clippy::redundant_locals)] // captures the Send wrapper, not its raw-pointer field
        let cp = cp;
        T::gemm_raw(
            i1 - i0,
            k,
            j1 - j0,
            alpha,
            a.as_ptr().add(i0 * la.rs),
            la.rs as isize,
            la.cs as isize,
            b.as_ptr().add(j0 * lb.cs),
            lb.rs as isize,
            lb.cs as isize,
            beta,
            cp.0.add(i0 * lc.rs + j0 * lc.cs),
            lc.rs as isize,
            lc.cs as isize,
        )
    };
    if threads <= 1 || work < PARALLEL_MIN_WORK {
        run(0, m, 0, n);
        return;
    }
    // Blocks: a few per thread so rayon can balance; split the longer side of C.
    let parts = threads * 2;
    if m >= n {
        let block = m.div_ceil(parts).max(8);
        (0..m.div_ceil(block)).into_par_iter().for_each(|p| {
            let i0 = p * block;
            run(i0, (i0 + block).min(m), 0, n)
        });
    } else {
        let block = n.div_ceil(parts).max(16);
        (0..n.div_ceil(block)).into_par_iter().for_each(|p| {
            let j0 = p * block;
            run(0, m, j0, (j0 + block).min(n))
        });
    }
}

/// Row-major convenience: `C (m×n) = alpha·op(A)·op(B) + beta·C`, where `op` transposes when the
/// flag is set; A is stored `m×k` (or `k×m` if `trans_a`), B `k×n` (or `n×k` if `trans_b`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_rm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    trans_a: bool,
    b: &[T],
    trans_b: bool,
    beta: T,
    c: &mut [T],
) {
    let la = if trans_a {
        MatLayout::row_major(k, m).t()
    } else {
        MatLayout::row_major(m, k)
    };
    let lb = if trans_b {
        MatLayout::row_major(n, k).t()
    } else {
        MatLayout::row_major(k, n)
    };
    gemm(alpha, a, la, b, lb, beta, c, MatLayout::row_major(m, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(m: usize, k: usize, n: usize, a: &[f64], ta: bool, b: &[f64], tb: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av * bv;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn matches_naive_all_transposes_and_sizes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (64, 70, 130),
            (300, 40, 513),
            (9, 600, 2),
        ] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                let a: Vec<f64> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let b: Vec<f64> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let want = naive(m, k, n, &a, ta, &b, tb);
                let mut c = vec![f64::NAN; m * n];
                gemm_rm(m, k, n, 1.0, &a, ta, &b, tb, 0.0, &mut c);
                for (x, y) in c.iter().zip(&want) {
                    assert!(
                        (x - y).abs() < 1e-12 * (k as f64),
                        "{m}x{k}x{n} {ta}{tb}: {x} vs {y}"
                    );
                }
                // f32 path, and beta = 1 accumulation.
                let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                let mut c32 = vec![1.0f32; m * n];
                gemm_rm(m, k, n, 2.0, &a32, ta, &b32, tb, 1.0, &mut c32);
                for (x, y) in c32.iter().zip(&want) {
                    assert!((*x as f64 - (2.0 * y + 1.0)).abs() < 1e-5 * (k as f64 + 1.0));
                }
            }
        }
    }
}
