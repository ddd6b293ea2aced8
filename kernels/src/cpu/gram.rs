//! Gram matrices of feature maps and their gradient, for the style loss (Gatys, Ecker & Bethge
//! 2015, eq. 3): `G = s·F Fᵀ` (C×C) from F (C×K, row-major, K = H·W), and the backward
//! product `dF = S·F` for a C×C matrix S (the symmetrised, scaled output gradient).
//!
//! A general GEMM (matrixmultiply) packs both operands, i.e. copies F twice per product, which
//! for VGG's shallow layers (C = 64, K = H·W large) costs as much as the arithmetic. Here:
//! - `G`: dot products of F's rows read in place, 4×4 rows at a time with AVX-512, over
//!   chunks of K that stay in cache, the upper triangle only (G is symmetric), then mirrored;
//! - `S·F`: the Winograd micro-kernel ([`packed_gemm::kernel_vs`]) with S packed (small) and
//!   F's columns copied, about 64 KB of NR-column panels per task (F's rows two panels ahead
//!   prefetched), then each MR-row block of S run along them.
//!
//! Other instruction sets and types use the general GEMM.

use super::gemm::{gemm, gemm_rm, MatLayout};
use super::packed_gemm::{self, MR, NR};
use super::simd::SimdLevel;
use super::{is_f32, prefetch, Float, SendPtr};
use rayon::prelude::*;

/// `g (C×C) = scale · f fᵀ` for row-major `f` (C×K). `g` is overwritten.
///
/// # Panics
/// If `f.len() != c·k` or `g.len() != c·c`.
pub fn gram<T: Float>(f: &[T], c: usize, k: usize, scale: T, g: &mut [T]) {
    assert_eq!(f.len(), c * k, "gram: f length");
    assert_eq!(g.len(), c * c, "gram: g length");
    #[cfg(target_arch = "x86_64")]
    if is_f32::<T>() && SimdLevel::current() == SimdLevel::Avx512 && c.is_multiple_of(4) && k > 0 {
        let (fp, gp) = (f.as_ptr() as *const f32, g.as_mut_ptr() as *mut f32);
        let s = scale.to_f64() as f32;
        // SAFETY: T is f32, AVX-512 detected, lengths checked above, c a multiple of 4.
        unsafe { gram_avx512(fp, c, k, s, gp) };
        return;
    }
    gemm_rm(c, k, c, scale, f, false, f, true, T::ZERO, g);
}

/// `out (C×K) = s (C×C) · f (C×K)`, row-major. `out` is overwritten.
///
/// # Panics
/// If `s.len() != c·c`, or `f`, `out` are not `c·k` long.
pub fn gram_backward<T: Float>(s: &[T], f: &[T], c: usize, k: usize, out: &mut [T]) {
    assert_eq!(s.len(), c * c, "gram_backward: s length");
    assert_eq!(f.len(), c * k, "gram_backward: f length");
    assert_eq!(out.len(), c * k, "gram_backward: out length");
    let level = SimdLevel::current();
    if !is_f32::<T>() || level == SimdLevel::Portable || k < NR {
        gemm_rm(c, c, k, T::ONE, s, false, f, false, T::ZERO, out);
        return;
    }
    // S packed into MR-row panels (zero rows past C).
    let cp = c.div_ceil(MR) * MR;
    let mut up = vec![T::ZERO; cp * c];
    packed_gemm::pack_u(s, c, c, &mut up);
    let full = k / NR * NR;
    // Chunks of column panels of NR: each task copies F's panels (their C rows lie K apart,
    // often a multiple of 4 KiB, so read in place they shared a few cache sets and left L1
    // between the cp/MR products that reuse them), then runs each block of MR rows of S over
    // the chunk, so its stores stream along MR rows of `out` (per single panel they went to
    // all C rows at once, more streams than the prefetchers follow). It writes its own
    // columns of every row of `out`.
    let ch = (GRAM_CHUNK_BYTES / (c * NR * std::mem::size_of::<T>())).max(1);
    let panels = full / NR;
    let op = SendPtr(out.as_mut_ptr());
    (0..panels.div_ceil(ch)).into_par_iter().for_each_init(
        || vec![T::ZERO; ch * c * NR],
        // The copies compiled for `level` (SimdLevel::run): as a plain closure they were
        // 16-byte SSE moves, 4× as many as with AVX-512.
        |buf, chunk| {
            level.run(
                #[inline(always)]
                || {
                    let jps = chunk * ch..((chunk + 1) * ch).min(panels);
                    for (jp, panel) in jps.clone().zip(buf.chunks_exact_mut(c * NR)) {
                        let j0 = jp * NR;
                        for (ci, row) in panel.chunks_exact_mut(NR).enumerate() {
                            row.copy_from_slice(&f[ci * k + j0..][..NR]);
                            if j0 + (PANELS_AHEAD + 1) * NR <= full {
                                let at = ci * k + j0 + PANELS_AHEAD * NR;
                                prefetch(f[at..].as_ptr(), NR);
                            }
                        }
                    }
                    let mut m = [T::ZERO; MR * NR];
                    for kb in 0..cp / MR {
                        let u = &up[kb * c * MR..(kb + 1) * c * MR];
                        for (jp, panel) in jps.clone().zip(buf.chunks_exact(c * NR)) {
                            let j0 = jp * NR;
                            packed_gemm::kernel_vs(level, c, u, panel, NR, &mut m, NR);
                            for r in 0..MR.min(c - kb * MR) {
                                let row = kb * MR + r;
                                // SAFETY: columns j0..j0+NR of row `row` belong to this task only.
                                let dst = unsafe {
                                    std::slice::from_raw_parts_mut({ op }.0.add(row * k + j0), NR)
                                };
                                dst.copy_from_slice(&m[r * NR..(r + 1) * NR]);
                            }
                        }
                    }
                },
            )
        },
    );
    // The last K mod NR columns, as strided views of f and out (no copies).
    if full < k {
        let cols = MatLayout {
            rows: c,
            cols: k - full,
            rs: k,
            cs: 1,
        };
        let ls = MatLayout::row_major(c, c);
        gemm(
            T::ONE,
            s,
            ls,
            &f[full..],
            cols,
            T::ZERO,
            &mut out[full..],
            cols,
        );
    }
}

/// How many column panels ahead [`gram_backward`] prefetches F's rows: the C rows are C
/// streams K apart, more than the hardware prefetchers follow.
const PANELS_AHEAD: usize = 2;

/// About how many bytes of F's column panels one [`gram_backward`] task copies before running
/// S's row blocks over them (64 KB: 8 panels at C = 64, one at C = 512).
const GRAM_CHUNK_BYTES: usize = 64 << 10;

/// Floats of K per chunk so that one chunk of all C rows is about 512 KB (stays in L2).
fn chunk_len(c: usize) -> usize {
    ((128 * 1024) / c.max(1)).clamp(256, 1 << 16) / 16 * 16
}

/// # Safety
/// AVX-512F; `f` readable for c·k floats, `g` writable for c·c; c a multiple of 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gram_avx512(f: *const f32, c: usize, k: usize, scale: f32, g: *mut f32) {
    let nb = c / 4;
    // Upper-triangle block pairs (I ≤ J) of 4×4 rows, grouped by I for the tasks.
    std::slice::from_raw_parts_mut(g, c * c).fill(0.0);
    let fp = SendPtr(f as *mut f32);
    let gp = SendPtr(g);
    let kc = chunk_len(c);
    let parts = rayon::current_num_threads();
    if c <= 128 && parts > 1 && k >= 4 * parts * kc {
        // Few channels, long K: each thread takes a stretch of K (whole chunks) and all the
        // blocks, into its own C×C sums, added at the end (no fork-join per chunk, no
        // imbalance between the triangle's long and short rows).
        let chunks = k.div_ceil(kc);
        let per = chunks.div_ceil(parts);
        let partial: Vec<Vec<f32>> = (0..parts)
            .into_par_iter()
            .map(|t| {
                let mut gt = vec![0.0f32; c * c];
                for ch in (t * per..((t + 1) * per).min(chunks)).map(|ch| ch * kc) {
                    let len = kc.min(k - ch);
                    for bi in 0..nb {
                        for bj in bi..nb {
                            // SAFETY: gt is this task's own.
                            unsafe {
                                block4x4({ fp }.0, k, 4 * bi, 4 * bj, ch, len, gt.as_mut_ptr(), c)
                            };
                        }
                    }
                }
                gt
            })
            .collect();
        let g = std::slice::from_raw_parts_mut(g, c * c);
        for gt in &partial {
            super::elementwise::add_assign(g, gt);
        }
    } else {
        for p0 in (0..k).step_by(kc) {
            let len = kc.min(k - p0);
            (0..nb).into_par_iter().for_each(|bi| {
                for bj in bi..nb {
                    // SAFETY: block (bi, bj) of g is written by this task only.
                    unsafe { block4x4({ fp }.0, k, 4 * bi, 4 * bj, p0, len, { gp }.0, c) };
                }
            });
        }
    }
    // Mirror the upper triangle into the lower one, then scale: rows in parallel, each task
    // writing its own rows only (a single-threaded mirror of column-strided writes took most
    // of the time at C = 512 with a short K: 1.16 of 1.16 ms at K = 192).
    let gp = SendPtr(g);
    (0..c).into_par_iter().with_min_len(16).for_each(|i| {
        for j in 0..i {
            // SAFETY: row i (< c) is written by this task only; g[j][i] (j < i) lies in the
            // upper triangle, which no task writes in this pass.
            unsafe { *{ gp }.0.add(i * c + j) = *{ gp }.0.add(j * c + i) };
        }
    });
    std::slice::from_raw_parts_mut(g, c * c)
        .par_chunks_mut(c)
        .for_each(|row| row.iter_mut().for_each(|v| *v *= scale));
}

/// `g[i0+r][j0+s] += Σ_{p0 ≤ p < p0+len} f[i0+r][p] · f[j0+s][p]` for r, s < 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block4x4(
    f: *const f32,
    k: usize,
    i0: usize,
    j0: usize,
    p0: usize,
    len: usize,
    g: *mut f32,
    c: usize,
) {
    use std::arch::x86_64::*;
    let a: [*const f32; 4] = std::array::from_fn(|r| f.add((i0 + r) * k + p0));
    let b: [*const f32; 4] = std::array::from_fn(|s| f.add((j0 + s) * k + p0));
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    let full = len / 16 * 16;
    let mut p = 0;
    while p < full {
        let va: [__m512; 4] = std::array::from_fn(|r| _mm512_loadu_ps(a[r].add(p)));
        let vb: [__m512; 4] = std::array::from_fn(|s| _mm512_loadu_ps(b[s].add(p)));
        for (acc_r, &x) in acc.iter_mut().zip(&va) {
            for (a, &y) in acc_r.iter_mut().zip(&vb) {
                *a = _mm512_fmadd_ps(x, y, *a);
            }
        }
        p += 16;
    }
    if full < len {
        let mask: __mmask16 = (1u32 << (len - full)).wrapping_sub(1) as u16;
        let va: [__m512; 4] = std::array::from_fn(|r| _mm512_maskz_loadu_ps(mask, a[r].add(p)));
        let vb: [__m512; 4] = std::array::from_fn(|s| _mm512_maskz_loadu_ps(mask, b[s].add(p)));
        for (acc_r, &x) in acc.iter_mut().zip(&va) {
            for (a, &y) in acc_r.iter_mut().zip(&vb) {
                *a = _mm512_fmadd_ps(x, y, *a);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (s, &a) in acc_r.iter().enumerate() {
            *g.add((i0 + r) * c + j0 + s) += _mm512_reduce_add_ps(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn gram_and_its_backward_match_a_float64_product() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for &(c, k) in &[
            (4, 1),
            (8, 37),
            (12, 300),
            (64, 1000),
            (3, 50),
            (16, 70_000),
        ] {
            let f: Vec<f32> = (0..c * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let scale = 0.25f32;
            let mut g = vec![f32::NAN; c * c];
            gram(&f, c, k, scale, &mut g);
            for i in 0..c {
                for j in 0..c {
                    let want: f64 = (0..k)
                        .map(|p| f[i * k + p] as f64 * f[j * k + p] as f64)
                        .sum::<f64>()
                        * scale as f64;
                    let got = g[i * c + j] as f64;
                    assert!(
                        (got - want).abs() <= 2e-6 * (k as f64).sqrt() * (1.0 + want.abs()),
                        "gram c={c} k={k} [{i}][{j}]: {got} vs {want}"
                    );
                }
            }
            let s: Vec<f32> = (0..c * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut out = vec![f32::NAN; c * k];
            gram_backward(&s, &f, c, k, &mut out);
            for i in 0..c {
                for p in 0..k {
                    let want: f64 = (0..c)
                        .map(|q| s[i * c + q] as f64 * f[q * k + p] as f64)
                        .sum();
                    let got = out[i * k + p] as f64;
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "backward c={c} k={k} [{i}][{p}]: {got} vs {want}"
                    );
                }
            }
        }
    }
}
