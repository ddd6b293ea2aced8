//! The GEMM micro-kernel of the Winograd convolution, on operands packed once by their producers
//! (so no per-call packing, unlike a general GEMM): `M[8 rows][32 cols] = Uᵀpanel · Vpanel`.
//!
//! - U panel: `C × MR` (for each c, the MR = 8 rows' values in a row), packed once per weight.
//! - V panel: `C × NR` (for each c, NR = 32 tiles in a row), written in that layout by the
//!   Winograd input transform.
//! - M: 8 rows of 32 values, row stride `ldm`, overwritten (the sum over C is complete inside).
//!
//! Kernels for AVX-512 (8×2 zmm accumulators; the forward prefetches U [`U_AHEAD`] channels
//! ahead, the transposed [`T_AHEAD`] blocks), AVX2+FMA (register blocks of 6 rows × 16
//! columns in 12 ymm accumulators, then 2 rows × 32, with software prefetch of the next U and V
//! rows; see [`kernel_avx2_walk`]) and portable Rust, chosen at run time ([`SimdLevel`]). f64
//! always uses the portable one.

use super::simd::SimdLevel;
use super::{is_f32, Float};

/// Rows of M per kernel call.
pub const MR: usize = 8;
/// Columns (tiles) of M per kernel call.
pub const NR: usize = 32;

/// How many channels ahead the forward kernels prefetch U (4 KiB of panel at MR = 8): the
/// deep layers' U (36 MiB per 512→512 layer at F(4×4)) is far larger than the last-level
/// cache and read once per block of tiles, so it streams from memory. On the Zen 5 here
/// (`packed_gemm_speed`, one thread, C = K = 512) AVX-512 went from 139 to 214–218 GFLOP/s at
/// 48 tiles and from 53 to 114–127 at 12 (32 channels ahead: 162 and 76; 256–512: no better),
/// AVX2 from 100 to 111 (it prefetched 32 ahead before).
pub(crate) const U_AHEAD: usize = 128;

/// How many MR×MR blocks of U ahead the AVX-512 transposed kernel prefetches (each block sits
/// in its own row panel, `us` apart, a stride no hardware prefetcher follows).
/// `packed_gemm_speed` (one thread, C = K = 512): 193–199 → 205–220 GFLOP/s at 48 tiles and
/// 71–80 → 85–95 at 12 (2 and 4 blocks ahead: a little less).
const T_AHEAD: usize = 8;

/// Pack row-major `u` (K×C) into panels of MR rows: `out[(kb·C + c)·MR + r] = u[kb·MR + r][c]`,
/// with zero rows past K. `out.len()` must be `K.div_ceil(MR)·MR·C`.
pub fn pack_u<T: Float>(u: &[T], k: usize, c: usize, out: &mut [T]) {
    let kp = k.div_ceil(MR) * MR;
    assert_eq!(u.len(), k * c, "pack_u: u length");
    assert_eq!(out.len(), kp * c, "pack_u: out length");
    for kb in 0..kp / MR {
        for ci in 0..c {
            for r in 0..MR {
                let row = kb * MR + r;
                out[(kb * c + ci) * MR + r] = if row < k { u[row * c + ci] } else { T::ZERO };
            }
        }
    }
}

/// `m[r·ldm + j] = Σ_c u[c·MR + r] · v[c·NR + j]` for r < MR, j < NR.
///
/// # Panics
/// If `u` is shorter than `c·MR`, `v` than `c·NR`, or `m` than `(MR−1)·ldm + NR`.
#[inline]
pub fn kernel<T: Float>(level: SimdLevel, c: usize, u: &[T], v: &[T], m: &mut [T], ldm: usize) {
    kernel_vs(level, c, u, v, NR, m, ldm)
}

/// [`kernel`] with V's rows `vs` apart instead of NR (V read in place from a row-major matrix
/// with `vs` columns): `m[r·ldm + j] = Σ_c u[c·MR + r] · v[c·vs + j]` for r < MR, j < NR.
///
/// # Panics
/// If `u` is shorter than `c·MR`, `vs < NR`, `v` shorter than `(c−1)·vs + NR`, or `m` than
/// `(MR−1)·ldm + NR`.
#[inline]
pub fn kernel_vs<T: Float>(
    level: SimdLevel,
    c: usize,
    u: &[T],
    v: &[T],
    vs: usize,
    m: &mut [T],
    ldm: usize,
) {
    assert!(
        u.len() >= c * MR && vs >= NR && (c == 0 || v.len() >= (c - 1) * vs + NR),
        "packed_gemm: panels"
    );
    assert!(
        ldm >= NR && m.len() >= (MR - 1) * ldm + NR,
        "packed_gemm: output"
    );
    if is_f32::<T>() {
        let (u, v, mp) = (
            u.as_ptr() as *const f32,
            v.as_ptr() as *const f32,
            m.as_mut_ptr() as *mut f32,
        );
        match level {
            // SAFETY: the features were detected at run time (SimdLevel), the lengths checked
            // above, and T is f32.
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => return unsafe { kernel_avx512::<2>(c, u, v, vs, mp, ldm) },
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => return unsafe { kernel_avx2(c, u, v, vs, mp, ldm, NR / 8) },
            _ => {}
        }
    }
    kernel_portable(c, u, v, vs, m, ldm, NR)
}

/// [`kernel`] for the first `NR/2` = 16 columns only (a block's last, half-empty panel):
/// `m[r·ldm + j] = Σ_c u[c·MR + r] · v[c·NR + j]` for j < 16 (v keeps its NR-wide rows).
///
/// # Panics
/// As [`kernel`], with `m` at least `(MR−1)·ldm + 16` long.
#[inline]
pub fn kernel_half<T: Float>(
    level: SimdLevel,
    c: usize,
    u: &[T],
    v: &[T],
    m: &mut [T],
    ldm: usize,
) {
    const H: usize = NR / 2;
    assert!(
        u.len() >= c * MR && v.len() >= c * NR,
        "packed_gemm: panels"
    );
    assert!(
        ldm >= H && m.len() >= (MR - 1) * ldm + H,
        "packed_gemm: output"
    );
    #[cfg(target_arch = "x86_64")]
    if is_f32::<T>() {
        let (u, v, mp) = (
            u.as_ptr() as *const f32,
            v.as_ptr() as *const f32,
            m.as_mut_ptr() as *mut f32,
        );
        match level {
            // SAFETY: the features were detected at run time (SimdLevel), the lengths checked
            // above, and T is f32.
            SimdLevel::Avx512 => return unsafe { kernel_avx512::<1>(c, u, v, NR, mp, ldm) },
            SimdLevel::Avx2Fma => return unsafe { kernel_avx2(c, u, v, NR, mp, ldm, H / 8) },
            SimdLevel::Portable => {}
        }
    }
    let _ = level;
    kernel_portable(c, u, v, NR, m, ldm, H)
}

/// The transposed product, reading U in the layout [`pack_u`] gives the *forward* weights, so
/// one packed copy serves a convolution and its input gradient:
/// `m[r·ldm + j] = Σ_{b<kb, l<MR} u[b·us + r·MR + l] · v[(b·MR + l)·NR + j]` for r < MR and
/// j < `cols` (NR, or NR/2 for a block's last, half-empty panel). With `u` pointing at
/// `pack_u`'s panel of rows k, `us = C·MR`, offset by `cb·MR·MR`, this is
/// `Σ_k U[k][cb·MR + r] · V[k][j]`, i.e. rows cb·MR.. of `Uᵀ·V`.
///
/// # Panics
/// If `cols` is not NR or NR/2, `us < MR·MR`, `u` is shorter than `(kb−1)·us + MR·MR`, `v` than
/// `kb·MR·NR`, or `m` than `(MR−1)·ldm + cols`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn kernel_t<T: Float>(
    level: SimdLevel,
    kb: usize,
    u: &[T],
    us: usize,
    v: &[T],
    m: &mut [T],
    ldm: usize,
    cols: usize,
) {
    assert!(cols == NR || cols == NR / 2, "packed_gemm: cols");
    assert!(
        kb == 0 || (us >= MR * MR && u.len() >= (kb - 1) * us + MR * MR),
        "packed_gemm: u panel"
    );
    assert!(v.len() >= kb * MR * NR, "packed_gemm: v panel");
    assert!(
        ldm >= cols && m.len() >= (MR - 1) * ldm + cols,
        "packed_gemm: output"
    );
    if is_f32::<T>() {
        let (u, v, mp) = (
            u.as_ptr() as *const f32,
            v.as_ptr() as *const f32,
            m.as_mut_ptr() as *mut f32,
        );
        match (level, cols == NR) {
            // SAFETY: the features were detected at run time (SimdLevel), the lengths checked
            // above, and T is f32.
            #[cfg(target_arch = "x86_64")]
            (SimdLevel::Avx512, true) => {
                return unsafe { kernel_t_avx512::<2>(kb, u, us, v, mp, ldm) }
            }
            #[cfg(target_arch = "x86_64")]
            (SimdLevel::Avx512, false) => {
                return unsafe { kernel_t_avx512::<1>(kb, u, us, v, mp, ldm) }
            }
            #[cfg(target_arch = "x86_64")]
            (SimdLevel::Avx2Fma, _) => {
                return unsafe { kernel_t_avx2(kb, u, us, v, mp, ldm, cols / 8) }
            }
            _ => {}
        }
    }
    let mut acc = [[T::ZERO; NR]; MR];
    for b in 0..kb {
        let ub: &[T; MR * MR] = u[b * us..][..MR * MR].try_into().unwrap();
        for l in 0..MR {
            let vr = &v[(b * MR + l) * NR..][..cols];
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let s = ub[r * MR + l];
                for (a, &x) in acc_r.iter_mut().zip(vr) {
                    *a += s * x;
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        m[r * ldm..][..cols].copy_from_slice(&a[..cols]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_t_avx512<const V: usize>(
    kb: usize,
    u: *const f32,
    us: usize,
    v: *const f32,
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); V]; MR];
    for b in 0..kb {
        let ub = u.add(b * us);
        // A hint only: addresses past U's end are not dereferenced.
        for q in 0..MR * MR / 16 {
            let ahead = u.wrapping_add((b + T_AHEAD) * us + 16 * q);
            _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        }
        for l in 0..MR {
            let vp = v.add((b * MR + l) * NR);
            let x: [__m512; V] = std::array::from_fn(|i| _mm512_loadu_ps(vp.add(16 * i)));
            for (r, a) in acc.iter_mut().enumerate() {
                let s = _mm512_set1_ps(*ub.add(r * MR + l));
                for i in 0..V {
                    a[i] = _mm512_fmadd_ps(s, x[i], a[i]);
                }
            }
        }
    }
    store_avx512(&acc, m, ldm);
}

/// `m[r·ldm + j] = Σ_c u[c·MR + r] · v[c·vs + j]` for r < MR, j < `cols` (≤ NR).
fn kernel_portable<T: Float>(
    c: usize,
    u: &[T],
    v: &[T],
    vs: usize,
    m: &mut [T],
    ldm: usize,
    cols: usize,
) {
    let mut acc = [[T::ZERO; NR]; MR];
    for ci in 0..c {
        let vr = &v[ci * vs..][..cols];
        let ur: &[T; MR] = u[ci * MR..][..MR].try_into().unwrap();
        for (acc_r, &b) in acc.iter_mut().zip(ur) {
            for (a, &x) in acc_r.iter_mut().zip(vr) {
                *a += b * x;
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        m[r * ldm..][..cols].copy_from_slice(&a[..cols]);
    }
}

/// `m[r·ldm + 16i..][..16] = acc[r][i]`: the AVX-512 micro-kernels' MR rows of `V` 16-lane
/// accumulators written out (here and in [`super::bf16`]).
///
/// # Safety
/// AVX-512F; `m` writable at `r·ldm + 16V` floats for every r < MR.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn store_avx512<const V: usize>(
    acc: &[[std::arch::x86_64::__m512; V]; MR],
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::*;
    for (r, a) in acc.iter().enumerate() {
        for (i, &x) in a.iter().enumerate() {
            _mm512_storeu_ps(m.add(r * ldm + 16 * i), x);
        }
    }
}

/// [`kernel_portable`] for f32 with AVX-512: `V` vectors of 16 columns (2: NR, 1: NR/2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const V: usize>(
    c: usize,
    u: *const f32,
    v: *const f32,
    vs: usize,
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); V]; MR];
    for ci in 0..c {
        // A hint only: addresses past U's end are not dereferenced.
        _mm_prefetch::<_MM_HINT_T0>(u.wrapping_add((ci + U_AHEAD) * MR) as *const i8);
        let x: [__m512; V] = std::array::from_fn(|i| _mm512_loadu_ps(v.add(ci * vs + 16 * i)));
        let up = u.add(ci * MR);
        for (r, a) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_ps(*up.add(r));
            for i in 0..V {
                a[i] = _mm512_fmadd_ps(b, x[i], a[i]);
            }
        }
    }
    store_avx512(&acc, m, ldm);
}

/// Where the AVX2 kernels read their operands: step `i = b·L + l` (b < `nb`, l < L) of the sum
/// multiplies U's values `u + b·ubs + l·ucs + r·rs` (row r) by V's row `v + b·vbs + l·vcs`.
/// The forward kernel has L = 1 (one step per channel), the transposed L = MR.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Walk {
    nb: usize,
    u: *const f32,
    ubs: usize,
    ucs: usize,
    rs: usize,
    v: *const f32,
    vbs: usize,
    vcs: usize,
}

/// One register block of the AVX2 kernels: rows `r0..r0 + R` of M, columns `j0..j0 + 8·S`,
/// summed over every step of `w` in `R·S` ymm accumulators (≤ 12, so with the S loaded V
/// vectors and a broadcast all stay in the 16 ymm registers), then stored. Each V vector
/// feeds R FMAs and each broadcast S. With `PF` (the first block over the operands) it also
/// prefetches, d steps of b ahead, U's values (forward: one line, d = [`U_AHEAD`] channels;
/// transposed: the 256-byte MR×MR block, d = 2 blocks) and the first 128 bytes of V's row: the
/// deep layers' panels come from L2 or memory (C = K = 512 at 48 tiles: 87 → 100 GFLOP/s
/// forward with d = 32, 111 with 128; transposed d tried at 2/4).
///
/// # Safety
/// AVX2 + FMA; `w` in bounds for rows r0..r0 + R and columns j0..j0 + 8·S; `m` writable there.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block_avx2<const L: usize, const R: usize, const S: usize, const PF: bool>(
    w: Walk,
    r0: usize,
    j0: usize,
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); S]; R];
    let (u, v) = (w.u.add(r0 * w.rs), w.v.add(j0));
    for b in 0..w.nb {
        if PF {
            let d = if L == 1 { U_AHEAD } else { 2 };
            _mm_prefetch::<_MM_HINT_T0>(w.u.wrapping_add((b + d) * w.ubs) as *const i8);
            if L > 1 {
                for q in 1..4 {
                    _mm_prefetch::<_MM_HINT_T0>(
                        w.u.wrapping_add((b + d) * w.ubs + 16 * q) as *const i8
                    );
                }
            }
            _mm_prefetch::<_MM_HINT_T0>(w.v.wrapping_add((b + d) * w.vbs) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(w.v.wrapping_add((b + d) * w.vbs + 16) as *const i8);
        }
        for l in 0..L {
            let up = u.add(b * w.ubs + l * w.ucs);
            let vp = v.add(b * w.vbs + l * w.vcs);
            let x: [__m256; S] = std::array::from_fn(|i| _mm256_loadu_ps(vp.add(8 * i)));
            for (r, a) in acc.iter_mut().enumerate() {
                let s = _mm256_broadcast_ss(&*up.add(r * w.rs));
                for i in 0..S {
                    a[i] = _mm256_fmadd_ps(s, x[i], a[i]);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (i, &x) in a.iter().enumerate() {
            _mm256_storeu_ps(m.add((r0 + r) * ldm + j0 + 8 * i), x);
        }
    }
}

/// The AVX2 kernels' MR rows × `8·strips` columns (strips 4: NR, 2: NR/2) of M over the walk
/// `w`, in register blocks of 12 or 8 ymm accumulators: for NR, rows 0..6 × columns 0..16 and
/// 16..32 (each V vector feeds 6 FMAs, each broadcast 2), then rows 6..8 × 32 columns; for
/// NR/2, rows 0..4 and 4..8 × 16 columns.
///
/// # Safety
/// AVX2 + FMA; `w` in bounds for MR rows and `8·strips` columns; `m` writable there.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel_avx2_walk<const L: usize>(w: Walk, m: *mut f32, ldm: usize, strips: usize) {
    if strips == NR / 8 {
        block_avx2::<L, 6, 2, true>(w, 0, 0, m, ldm);
        block_avx2::<L, 6, 2, false>(w, 0, 16, m, ldm);
        block_avx2::<L, 2, 4, false>(w, 6, 0, m, ldm);
    } else {
        debug_assert_eq!(strips, NR / 16);
        block_avx2::<L, 4, 2, true>(w, 0, 0, m, ldm);
        block_avx2::<L, 4, 2, false>(w, 4, 0, m, ldm);
    }
}

/// [`kernel_portable`] for f32 with AVX2 + FMA, over the first `8·strips` columns (4: NR, 2:
/// NR/2), in the register blocks of [`kernel_avx2_walk`].
///
/// # Safety
/// AVX2 + FMA; the bounds [`kernel_vs`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(
    c: usize,
    u: *const f32,
    v: *const f32,
    vs: usize,
    m: *mut f32,
    ldm: usize,
    strips: usize,
) {
    let w = Walk {
        nb: c,
        u,
        ubs: MR,
        ucs: 0,
        rs: 1,
        v,
        vbs: vs,
        vcs: 0,
    };
    kernel_avx2_walk::<1>(w, m, ldm, strips)
}

/// [`kernel_t`] for f32 with AVX2 + FMA over the first `8·strips` columns.
///
/// # Safety
/// AVX2 + FMA; the bounds [`kernel_t`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_t_avx2(
    kb: usize,
    u: *const f32,
    us: usize,
    v: *const f32,
    m: *mut f32,
    ldm: usize,
    strips: usize,
) {
    let w = Walk {
        nb: kb,
        u,
        ubs: us,
        ucs: 1,
        rs: MR,
        v,
        vbs: MR * NR,
        vcs: NR,
    };
    kernel_avx2_walk::<MR>(w, m, ldm, strips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn every_level_matches_a_naive_product() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for &(k, c) in &[
            (8, 1),
            (13, 5),
            (16, 64),
            (24, 300),
            (24, 16),
            (72, 16),
            (8, 136),
        ] {
            let u: Vec<f32> = (0..k * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let v: Vec<f32> = (0..c * NR).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let kp = k.div_ceil(MR) * MR;
            let mut up = vec![0.0; kp * c];
            pack_u(&u, k, c, &mut up);
            for level in SimdLevel::available() {
                let ldm = NR + 3;
                let mut m = vec![f32::NAN; kp * ldm];
                for kb in 0..kp / MR {
                    kernel(
                        level,
                        c,
                        &up[kb * c * MR..],
                        &v,
                        &mut m[kb * MR * ldm..],
                        ldm,
                    );
                }
                for row in 0..kp {
                    for j in 0..NR {
                        let want: f64 = if row < k {
                            (0..c)
                                .map(|ci| u[row * c + ci] as f64 * v[ci * NR + j] as f64)
                                .sum()
                        } else {
                            0.0
                        };
                        let got = m[row * ldm + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()) * (c as f64).sqrt(),
                            "{level:?} k={k} c={c} [{row}][{j}]: {got} vs {want}"
                        );
                    }
                    assert!(m[row * ldm + NR].is_nan(), "wrote past NR");
                }
                // Transposed: rows of Uᵀ (C of them, in blocks of MR) times a K×NR panel.
                if k % MR == 0 && c % MR == 0 {
                    let vt: Vec<f32> = (0..k * NR).map(|i| v[(i * 7) % (c * NR)]).collect();
                    for cols in [NR, NR / 2] {
                        let mut t = vec![f32::NAN; c * ldm];
                        for cb in 0..c / MR {
                            kernel_t(
                                level,
                                k / MR,
                                &up[cb * MR * MR..],
                                c * MR,
                                &vt,
                                &mut t[cb * MR * ldm..],
                                ldm,
                                cols,
                            );
                        }
                        for row in 0..c {
                            for j in 0..NR {
                                let got = t[row * ldm + j];
                                if j >= cols {
                                    assert!(got.is_nan(), "{level:?} transposed wrote column {j}");
                                    continue;
                                }
                                let want: f64 = (0..k)
                                    .map(|kk| u[kk * c + row] as f64 * vt[kk * NR + j] as f64)
                                    .sum();
                                assert!(
                                    (got as f64 - want).abs()
                                        <= 1e-5 * (1.0 + want.abs()) * (k as f64).sqrt(),
                                    "{level:?} transposed k={k} c={c} [{row}][{j}]"
                                );
                            }
                        }
                    }
                }
                // V read in place with rows vs > NR apart (the Gram backward's use).
                let vs = NR + 5;
                let mut vw = vec![f32::NAN; c * vs];
                for ci in 0..c {
                    vw[ci * vs..][..NR].copy_from_slice(&v[ci * NR..][..NR]);
                }
                let mut mv = vec![f32::NAN; kp * ldm];
                for kb in 0..kp / MR {
                    let (u, out) = (&up[kb * c * MR..], &mut mv[kb * MR * ldm..]);
                    kernel_vs(level, c, u, &vw, vs, out, ldm);
                }
                for (i, (&a, &b)) in mv.iter().zip(&m).enumerate() {
                    assert!(
                        a == b || (a.is_nan() && b.is_nan()),
                        "{level:?} kernel_vs [{i}]"
                    );
                }
                let mut h = vec![f32::NAN; kp * ldm];
                for kb in 0..kp / MR {
                    kernel_half(
                        level,
                        c,
                        &up[kb * c * MR..],
                        &v,
                        &mut h[kb * MR * ldm..],
                        ldm,
                    );
                }
                for row in 0..kp {
                    for j in 0..NR {
                        if j < NR / 2 {
                            let d = (h[row * ldm + j] - m[row * ldm + j]).abs();
                            assert!(d <= 1e-5 * (1.0 + m[row * ldm + j].abs()), "{level:?} half");
                        } else {
                            assert!(h[row * ldm + j].is_nan(), "half kernel wrote column {j}");
                        }
                    }
                }
            }
        }
    }
}
