//! F(4×4, 3×3) on f32 with AVX-512: the input and output transforms unrolled in registers, 16
//! tiles per vector, and the gather and scatter between image rows and tile rows.

/// `Bᵀ x` for F(4×4)'s Bᵀ (the [`F4`](super::matrices::F4) constant), written out for AVX-512.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bt4_avx512(x: [std::arch::x86_64::__m512; 6]) -> [std::arch::x86_64::__m512; 6] {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let (add, sub, fma) = (_mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps);
    let two = c(2.0);
    [
        // x0 + 1.5 x1 − 2 x2 − 1.5 x3 + x4
        fma(
            c(1.5),
            sub(x[1], x[3]),
            _mm512_fnmadd_ps(two, x[2], add(x[0], x[4])),
        ),
        // 2 x1 + 5 x2 + x3 − 2 x4
        fma(c(5.0), x[2], fma(two, sub(x[1], x[4]), x[3])),
        // 2 x1 + x2 − 5 x3 + 2 x4
        _mm512_fnmadd_ps(c(5.0), x[3], fma(two, add(x[1], x[4]), x[2])),
        // −x1 − 2 x2 + x3 + 2 x4
        fma(two, sub(x[4], x[2]), sub(x[3], x[1])),
        // −2 x1 + x2 + 2 x3 − x4
        fma(two, sub(x[3], x[1]), sub(x[2], x[4])),
        // x1 + 1.5 x2 − 2 x3 − 1.5 x4 + x5
        fma(
            c(1.5),
            sub(x[2], x[4]),
            _mm512_fnmadd_ps(two, x[3], add(x[1], x[5])),
        ),
    ]
}

/// `Aᵀ x` for F(4×4)'s Aᵀ (the [`F4`](super::matrices::F4) constant), written out for AVX-512.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn at4_avx512(x: [std::arch::x86_64::__m512; 6]) -> [std::arch::x86_64::__m512; 4] {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let (add, sub, fma) = (_mm512_add_ps, _mm512_sub_ps, _mm512_fmadd_ps);
    let (s12, d12) = (add(x[1], x[2]), sub(x[1], x[2]));
    [
        // x0 + x1 + x2 + x3 + x4
        add(add(x[0], s12), add(x[3], x[4])),
        // x1 − x2 + 2 x3 − x4/2
        fma(c(2.0), x[3], fma(c(-0.5), x[4], d12)),
        // x1 + x2 + 4 x3 + x4/4
        fma(c(4.0), x[3], fma(c(0.25), x[4], s12)),
        // x1 − x2 + 8 x3 − x4/8 + x5
        fma(c(8.0), x[3], fma(c(-0.125), x[4], add(d12, x[5]))),
    ]
}

/// F(4×4) input transform `V = Bᵀ d B` of 16 tiles in registers: patch element (i, q) of
/// the 16 tiles is at `d + (i·6 + q)·pb`, V[ξ] goes to `v[ξ] + off`. `MIRROR` (an input
/// gradient: Bᵀ with reversed columns) is the same transform of the patch reversed in both
/// directions.
///
/// # Safety
/// AVX-512F; `d + (i·6 + q)·pb` readable and each `v[ξ] + off` writable for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // r indexes tmp's second dimension
pub(super) unsafe fn input4_avx512<const MIRROR: bool>(
    d: *const f32,
    pb: usize,
    v: &[*mut f32; 36],
    off: usize,
) {
    use std::arch::x86_64::*;
    let rev = |i: usize| if MIRROR { 5 - i } else { i };
    // tmp[q][r] = Σ_i Bᵀ[r][i] d[i][q], column by column.
    let mut tmp = [[_mm512_setzero_ps(); 6]; 6];
    for q in 0..6 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = _mm512_loadu_ps(d.add((rev(i) * 6 + rev(q)) * pb));
        }
        tmp[q] = bt4_avx512(x);
    }
    // V[r][q] = Σ_i tmp[i][r] Bᵀ[q][i], row by row.
    for r in 0..6 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = tmp[i][r];
        }
        let y = bt4_avx512(x);
        for q in 0..6 {
            _mm512_storeu_ps(v[r * 6 + q].add(off), y[q]);
        }
    }
}

/// F(4×4) output transform `Y = Aᵀ M A` of 16 tiles in registers: M[ξ]'s 16 values are at
/// `mm + ξ·stride`, output element (r, q) goes to `y + (r·4 + q)·pb`. `MIRROR` (Aᵀ with
/// reversed rows) is the same transform with the output reversed in both directions.
///
/// # Safety
/// AVX-512F; `mm + ξ·stride` readable and `y + (r·4 + q)·pb` writable for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // r indexes tmp's second dimension
pub(super) unsafe fn output4_avx512<const MIRROR: bool>(
    mm: *const f32,
    stride: usize,
    y: *mut f32,
    pb: usize,
) {
    use std::arch::x86_64::*;
    let rev = |i: usize| if MIRROR { 3 - i } else { i };
    // tmp[q][r] = Σ_i Aᵀ[r][i] M[i][q], column by column.
    let mut tmp = [[_mm512_setzero_ps(); 4]; 6];
    for q in 0..6 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = _mm512_loadu_ps(mm.add((i * 6 + q) * stride));
        }
        tmp[q] = at4_avx512(x);
    }
    for r in 0..4 {
        let mut x = [_mm512_setzero_ps(); 6];
        for i in 0..6 {
            x[i] = tmp[i][r];
        }
        let out = at4_avx512(x);
        for q in 0..4 {
            _mm512_storeu_ps(y.add((rev(r) * 4 + rev(q)) * pb), out[q]);
        }
    }
}

/// `row[4j + q] = epilogue(src[q][j])` for q < 4, j < len (the inverse of
/// [`gather4_avx512`] for F(4×4)'s 4×4 output tiles), with `+ bias` and ReLU if `relu`.
///
/// # Safety
/// AVX-512F; `src[q]` readable for `len` floats each, `row` writable for `4·len` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn scatter4_avx512(
    src: [*const f32; 4],
    len: usize,
    bias: f32,
    relu: bool,
    row: *mut f32,
) {
    use std::arch::x86_64::*;
    let b = _mm512_set1_ps(bias);
    let zero = _mm512_setzero_ps();
    let ep = |v: __m512| {
        let y = _mm512_add_ps(v, b);
        if relu {
            _mm512_max_ps(y, zero)
        } else {
            y
        }
    };
    // Stage 1 pairs (q0, q1) and (q2, q3) tile by tile; stage 2 pairs those pairs, giving four
    // consecutive tiles' 4 values per 128-bit lane.
    let i_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let i_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let j_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    let j_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    let steps = len / 16;
    for s in 0..steps {
        let v: [__m512; 4] = std::array::from_fn(|q| ep(_mm512_loadu_ps(src[q].add(16 * s))));
        // a: q0,q1 interleaved (tiles 0..8 | 8..16); c: q2,q3 likewise.
        let (a0, a1) = (
            _mm512_permutex2var_ps(v[0], i_lo, v[1]),
            _mm512_permutex2var_ps(v[0], i_hi, v[1]),
        );
        let (c0, c1) = (
            _mm512_permutex2var_ps(v[2], i_lo, v[3]),
            _mm512_permutex2var_ps(v[2], i_hi, v[3]),
        );
        let out = row.add(64 * s);
        _mm512_storeu_ps(out, _mm512_permutex2var_ps(a0, j_lo, c0));
        _mm512_storeu_ps(out.add(16), _mm512_permutex2var_ps(a0, j_hi, c0));
        _mm512_storeu_ps(out.add(32), _mm512_permutex2var_ps(a1, j_lo, c1));
        _mm512_storeu_ps(out.add(48), _mm512_permutex2var_ps(a1, j_hi, c1));
    }
    for j in steps * 16..len {
        for (q, sp) in src.iter().enumerate() {
            let y = *sp.add(j) + bias;
            // NaN → 0 under ReLU, as `max` does above.
            *row.add(4 * j + q) = if !relu || y > 0.0 { y } else { 0.0 };
        }
    }
}

/// `dst[q][j] = row[4j + q]` for q < 6, j < len: the six columns of F(4×4)'s 6-wide tiles
/// at stride 4, sixteen tiles per step with two-source permutes.
///
/// # Safety
/// AVX-512F; `row` readable for `4·len + 4` floats (rounded up to whole steps of 64 + 4),
/// `dst[q]` writable for `len` floats each and disjoint.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gather4_avx512(row: *const f32, len: usize, dst: [*mut f32; 6]) {
    use std::arch::x86_64::*;
    let steps = len / 16;
    for b in 0..steps {
        let p = row.add(64 * b);
        for (shift, qs) in [(0, 0..4), (4, 4..6)] {
            let v: [__m512; 4] = std::array::from_fn(|i| _mm512_loadu_ps(p.add(shift + 16 * i)));
            for q in qs {
                let ph = (q - shift) as i32;
                // Lanes 0..8 pick ph, ph+4, …, ph+28 from the pair's 32 floats.
                let idx = _mm512_setr_epi32(
                    ph,
                    ph + 4,
                    ph + 8,
                    ph + 12,
                    ph + 16,
                    ph + 20,
                    ph + 24,
                    ph + 28,
                    ph,
                    ph + 4,
                    ph + 8,
                    ph + 12,
                    ph + 16,
                    ph + 20,
                    ph + 24,
                    ph + 28,
                );
                let lo = _mm512_permutex2var_ps(v[0], idx, v[1]);
                let hi = _mm512_permutex2var_ps(v[2], idx, v[3]);
                // 128-bit lanes 0, 1 of lo, then 0, 1 of hi.
                let out = _mm512_shuffle_f32x4::<0b01_00_01_00>(lo, hi);
                _mm512_storeu_ps(dst[q].add(16 * b), out);
            }
        }
    }
    for j in steps * 16..len {
        for (q, d) in dst.iter().enumerate() {
            *d.add(j) = *row.add(4 * j + q);
        }
    }
}
