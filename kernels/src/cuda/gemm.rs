//! Matrix products through cuBLAS (`sgemm`/`dgemm`, strided-batched), on row-major operands.
//!
//! cuBLAS is column-major. A row-major `C = A·B` (m×n) is, read column-major, `Cᵀ = Bᵀ·Aᵀ`
//! (n×m, leading dimension = C's row stride), so we call cuBLAS with the operands swapped. Each
//! operand may be a strided view: row-major (column stride 1) is passed untransposed with
//! ld = row stride, column-major (row stride 1, e.g. a transposed view) is passed with op = T and
//! ld = column stride; any other layout needs a contiguous copy first ([`MatDesc::blas_layout`]
//! says which).

use super::{CudaDevice, CudaElem, CudaError};
use cudarc::cublas::sys::{cublasMath_t, cublasOperation_t};
use cudarc::cublas::{GemmConfig, StridedBatchedConfig};
use cudarc::driver::CudaSlice;

/// One operand: matrix `i` of a batch starts at element `offset + i·batch_stride`; its element
/// (r, c) is at `+ r·rs + c·cs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatDesc {
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
    pub batch_stride: usize,
}

impl MatDesc {
    /// A contiguous row-major `rows × cols` matrix at `offset` (batch stride rows·cols).
    pub fn row_major(offset: usize, rows: usize, cols: usize) -> MatDesc {
        MatDesc {
            offset,
            rows,
            cols,
            rs: cols,
            cs: 1,
            batch_stride: rows * cols,
        }
    }

    /// The transpose of this operand, as a view (no copy).
    pub fn t(self) -> MatDesc {
        MatDesc {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// How cuBLAS can read this operand in the swapped (column-major) call: `(transpose, ld)`;
    /// `None` when it is neither row- nor column-major (make it contiguous first).
    pub fn blas_layout(&self) -> Option<(bool, usize)> {
        let (rows, cols) = (self.rows.max(1), self.cols.max(1));
        if self.cols <= 1 || self.cs == 1 {
            let ld = if self.rows <= 1 { cols } else { self.rs };
            if ld >= cols {
                return Some((false, ld));
            }
        }
        if self.rows <= 1 || self.rs == 1 {
            let ld = if self.cols <= 1 { rows } else { self.cs };
            if ld >= rows {
                return Some((true, ld));
            }
        }
        None
    }

    /// One past the last element any matrix of a `batch` touches (0 when empty).
    fn extent(&self, batch: usize) -> usize {
        if self.rows == 0 || self.cols == 0 || batch == 0 {
            return 0;
        }
        self.offset
            + (batch - 1) * self.batch_stride
            + (self.rows - 1) * self.rs
            + (self.cols - 1) * self.cs
            + 1
    }
}

fn to_i32(op: &'static str, what: &str, v: usize) -> Result<i32, CudaError> {
    i32::try_from(v).map_err(|_| CudaError::InvalidArgument {
        op,
        msg: format!("{what} = {v} exceeds cuBLAS's 32-bit limit"),
    })
}

/// The cuBLAS call for the row-major product described by (da, db, dc): checks shapes, layouts,
/// 32-bit limits and buffer lengths, and swaps the operands. `Ok(None)` when there is nothing to
/// compute (an empty batch or output). Pure: unit-tested against a reference BLAS below.
#[allow(clippy::too_many_arguments)]
fn blas_config<T: Copy>(
    batch: usize,
    alpha: T,
    (da, a_len): (MatDesc, usize),
    (db, b_len): (MatDesc, usize),
    beta: T,
    (dc, c_len): (MatDesc, usize),
) -> Result<Option<StridedBatchedConfig<T>>, CudaError> {
    const OP: &str = "gemm";
    let (m, k, n) = (da.rows, da.cols, db.cols);
    if db.rows != k || dc.rows != m || dc.cols != n {
        return Err(CudaError::InvalidArgument {
            op: OP,
            msg: format!(
                "shapes {}×{} · {}×{} → {}×{}",
                da.rows, da.cols, db.rows, db.cols, dc.rows, dc.cols
            ),
        });
    }
    if batch == 0 || m == 0 || n == 0 {
        return Ok(None);
    }
    if k == 0 {
        return Err(CudaError::InvalidArgument {
            op: OP,
            msg: "inner dimension 0 (fill the output instead)".into(),
        });
    }
    let bad_layout = |what: &str, d: &MatDesc| CudaError::InvalidArgument {
        op: OP,
        msg: format!("{what} layout {d:?} is neither row- nor column-major"),
    };
    let (ta, lda) = da.blas_layout().ok_or_else(|| bad_layout("A", &da))?;
    let (tb, ldb) = db.blas_layout().ok_or_else(|| bad_layout("B", &db))?;
    if !(dc.cs == 1 || n == 1) || (m > 1 && dc.rs < n) {
        return Err(bad_layout("C", &dc));
    }
    let ldc = if m > 1 { dc.rs } else { n };
    for (what, len, d) in [("A", a_len, da), ("B", b_len, db), ("C", c_len, dc)] {
        super::launch::check_len(OP, what, len, d.extent(batch))?;
    }
    let op = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    // Swapped: Cᵀ (n×m) = op(B-side) (n×k) · op(A-side) (k×m).
    Ok(Some(StridedBatchedConfig {
        gemm: GemmConfig {
            transa: op(tb),
            transb: op(ta),
            m: to_i32(OP, "n", n)?,
            n: to_i32(OP, "m", m)?,
            k: to_i32(OP, "k", k)?,
            alpha,
            lda: to_i32(OP, "ld(B)", ldb)?,
            ldb: to_i32(OP, "ld(A)", lda)?,
            beta,
            ldc: to_i32(OP, "ld(C)", ldc)?,
        },
        batch_size: to_i32(OP, "batch", batch)?,
        stride_a: db.batch_stride as i64,
        stride_b: da.batch_stride as i64,
        stride_c: dc.batch_stride as i64,
    }))
}

/// How cuBLAS may compute an f32 product (f64 products are always exact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GemmMath {
    /// IEEE f32 multiply-adds (`CUBLAS_DEFAULT_MATH`).
    #[default]
    Exact,
    /// TF32 tensor cores: operands rounded to 10-bit mantissas, f32 sums
    /// (`CUBLAS_TF32_TENSOR_OP_MATH`; Ampere and later, elsewhere the same as `Exact`). What
    /// PyTorch uses for convolutions by default (`torch.backends.cudnn.allow_tf32`).
    Tf32,
}

/// `C[i] = alpha·A[i]·B[i] + beta·C[i]` for `i < batch`, with A `m×k`, B `k×n` (from their
/// descriptors) and C row-major `m×n` with row stride `dc.rs` (≥ n), column stride 1, computed
/// as `math` says (f32 only; f64 is always exact).
/// Errors: `InvalidArgument` for layouts cuBLAS cannot read (see [`MatDesc::blas_layout`]),
/// an inner dimension of 0, sizes over i32, or buffers too short; `Cublas`, `MissingLibrary`.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: CudaElem>(
    math: GemmMath,
    dev: &CudaDevice,
    batch: usize,
    alpha: T,
    a: &CudaSlice<T>,
    da: MatDesc,
    b: &CudaSlice<T>,
    db: MatDesc,
    beta: T,
    c: &mut CudaSlice<T>,
    dc: MatDesc,
) -> Result<(), CudaError> {
    let Some(cfg) = blas_config(
        batch,
        alpha,
        (da, a.len()),
        (db, b.len()),
        beta,
        (dc, c.len()),
    )?
    else {
        return Ok(());
    };
    let blas = dev.blas()?;
    let (va, vb) = (b.slice(db.offset..), a.slice(da.offset..));
    let mut vc = c.slice_mut(dc.offset..);
    let cublas_err = |op: &'static str, msg: String| CudaError::Cublas {
        device: dev.index(),
        op,
        msg,
    };
    // The math mode is the handle's: set for this call (under the handle's lock) and put back.
    let set_math = |m: GemmMath| {
        let mode = match m {
            GemmMath::Exact => cublasMath_t::CUBLAS_DEFAULT_MATH,
            GemmMath::Tf32 => cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
        };
        // SAFETY: a live handle (held under its lock for the whole call).
        let status = unsafe { cudarc::cublas::sys::cublasSetMathMode(*blas.handle(), mode) };
        status
            .result()
            .map_err(|e| cublas_err("cublasSetMathMode", e.to_string()))
    };
    if math != GemmMath::Exact {
        set_math(math)?;
    }
    // SAFETY: blas_config checked the extents of all three operands against their buffers and
    // the leading dimensions against the matrix shapes.
    let done = unsafe { T::gemm_strided_batched(&blas, cfg, &va, &vb, &mut vc) }
        .map_err(|e| cublas_err("gemmStridedBatched", e.to_string()));
    if math != GemmMath::Exact {
        set_math(GemmMath::Exact)?;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let rm = MatDesc::row_major(0, 3, 4);
        assert_eq!(rm.blas_layout(), Some((false, 4)));
        assert_eq!(rm.t().blas_layout(), Some((true, 4)));
        // a row vector and a column vector with odd strides
        let row = MatDesc {
            offset: 0,
            rows: 1,
            cols: 5,
            rs: 0,
            cs: 1,
            batch_stride: 0,
        };
        assert_eq!(row.blas_layout(), Some((false, 5)));
        let col = MatDesc {
            offset: 0,
            rows: 5,
            cols: 1,
            rs: 3,
            cs: 7,
            batch_stride: 0,
        };
        assert_eq!(col.blas_layout(), Some((false, 3)));
        // padded rows (a narrowed view) keep their ld
        let padded = MatDesc {
            offset: 2,
            rows: 3,
            cols: 4,
            rs: 10,
            cs: 1,
            batch_stride: 30,
        };
        assert_eq!(padded.blas_layout(), Some((false, 10)));
        assert_eq!(padded.extent(2), 2 + 30 + 20 + 3 + 1);
        // expanded (stride 0) rows and general strides need a copy
        let expanded = MatDesc {
            offset: 0,
            rows: 3,
            cols: 4,
            rs: 0,
            cs: 1,
            batch_stride: 0,
        };
        assert_eq!(expanded.blas_layout(), None);
        let general = MatDesc {
            offset: 0,
            rows: 3,
            cols: 4,
            rs: 8,
            cs: 2,
            batch_stride: 0,
        };
        assert_eq!(general.blas_layout(), None);
    }

    /// `cublas<t>gemmStridedBatched` by its definition (column-major, op ∈ {N, T}).
    fn reference_blas(cfg: &StridedBatchedConfig<f64>, a: &[f64], b: &[f64], c: &mut [f64]) {
        let g = &cfg.gemm;
        let (m, n, k) = (g.m as usize, g.n as usize, g.k as usize);
        let at = |t: cublasOperation_t, x: &[f64], ld: i32, base: usize, i: usize, j: usize| {
            // element (i, j) of op(X)
            let ld = ld as usize;
            match t {
                cublasOperation_t::CUBLAS_OP_N => x[base + i + j * ld],
                _ => x[base + j + i * ld],
            }
        };
        for bi in 0..cfg.batch_size as usize {
            let (oa, ob, oc) = (
                bi * cfg.stride_a as usize,
                bi * cfg.stride_b as usize,
                bi * cfg.stride_c as usize,
            );
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|l| {
                            at(g.transa, a, g.lda, oa, i, l) * at(g.transb, b, g.ldb, ob, l, j)
                        })
                        .sum();
                    let ci = oc + i + j * g.ldc as usize;
                    c[ci] = g.alpha * s + g.beta * c[ci];
                }
            }
        }
    }

    /// Run the row-major product through blas_config + the reference BLAS, against naive loops.
    fn check(batch: usize, a: &[f64], da: MatDesc, b: &[f64], db: MatDesc) {
        let (m, n) = (da.rows, db.cols);
        let dc = MatDesc::row_major(0, m, n);
        let mut c = vec![0.0; batch * m * n];
        let cfg = blas_config(batch, 1.0, (da, a.len()), (db, b.len()), 0.0, (dc, c.len()))
            .unwrap()
            .unwrap();
        // the swap: cuBLAS's "A" is our B-side, its "B" our A-side
        let (a_view, b_view) = (&b[db.offset..], &a[da.offset..]);
        reference_blas(&cfg, a_view, b_view, &mut c);
        for bi in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..da.cols)
                        .map(|l| {
                            a[da.offset + bi * da.batch_stride + i * da.rs + l * da.cs]
                                * b[db.offset + bi * db.batch_stride + l * db.rs + j * db.cs]
                        })
                        .sum();
                    let got = c[bi * m * n + i * n + j];
                    assert!(
                        (got - want).abs() < 1e-9,
                        "{da:?} {db:?} [{bi},{i},{j}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn operand_swap_computes_the_row_major_product() {
        let data = |n: usize| {
            (0..n)
                .map(|i| ((i * 37) % 11) as f64 - 5.0)
                .collect::<Vec<_>>()
        };
        let (a, b) = (data(200), data(300));
        let (m, k, n) = (3, 4, 5);
        let rm = MatDesc::row_major;
        // all four transpose combinations
        check(1, &a, rm(0, m, k), &b, rm(0, k, n));
        check(1, &a, rm(0, k, m).t(), &b, rm(0, k, n));
        check(1, &a, rm(0, m, k), &b, rm(0, n, k).t());
        check(1, &a, rm(0, k, m).t(), &b, rm(0, n, k).t());
        // offsets, padded rows, batches, a shared (stride 0) operand
        let padded = MatDesc {
            offset: 7,
            rows: m,
            cols: k,
            rs: 9,
            cs: 1,
            batch_stride: 40,
        };
        check(
            3,
            &a,
            padded,
            &b,
            MatDesc {
                batch_stride: 0,
                ..rm(2, k, n)
            },
        );
        check(2, &a, rm(1, k, m).t(), &b, rm(5, k, n));
        // vectors
        check(1, &a, rm(0, 1, k), &b, rm(0, k, 1));
        check(1, &a, rm(0, m, 1), &b, rm(0, 1, n));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let rm = MatDesc::row_major;
        let cfg =
            |da, la, db, lb| blas_config(1, 1.0f32, (da, la), (db, lb), 0.0, (rm(0, 2, 2), 4));
        assert!(cfg(rm(0, 2, 3), 6, rm(0, 2, 2), 4).is_err()); // inner dims differ
        assert!(cfg(rm(0, 2, 2), 3, rm(0, 2, 2), 4).is_err()); // A too short
        let general = MatDesc {
            offset: 0,
            rows: 2,
            cols: 2,
            rs: 4,
            cs: 2,
            batch_stride: 0,
        };
        assert!(cfg(general, 100, rm(0, 2, 2), 4).is_err());
        assert!(cfg(rm(0, 2, 0), 0, rm(0, 0, 2), 0).is_err()); // k = 0
        assert!(blas_config(
            0,
            1.0f32,
            (rm(0, 2, 2), 4),
            (rm(0, 2, 2), 4),
            0.0,
            (rm(0, 2, 2), 4)
        )
        .unwrap()
        .is_none());
    }
}
