//! F(4×4, 3×3) on f32 with x86 vectors: the input and output transforms unrolled in
//! registers, written once over a vector type ([`Lanes`]) and compiled for AVX-512 (16 tiles per
//! zmm) and AVX2+FMA (16 tiles per pair of ymm); with AVX-512 also the gather and scatter between image
//! rows and tile rows.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The vector operations the unrolled transforms use (a vector of f32 lanes).
///
/// # Safety
/// Every method needs the vector's instruction set (AVX-512F for `__m512`, AVX2+FMA for
/// `__m256`); pointers are readable/writable for a vector's floats.
#[cfg(target_arch = "x86_64")]
pub(super) trait Lanes: Copy {
    unsafe fn splat(x: f32) -> Self;
    unsafe fn add(a: Self, b: Self) -> Self;
    unsafe fn sub(a: Self, b: Self) -> Self;
    /// `a·b + c`.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    /// `c − a·b`.
    unsafe fn fnma(a: Self, b: Self, c: Self) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(p: *mut f32, v: Self);
}

#[cfg(target_arch = "x86_64")]
impl Lanes for __m512 {
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn fnma(a: Self, b: Self, c: Self) -> Self {
        _mm512_fnmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        _mm512_storeu_ps(p, v)
    }
}

/// Two ymm side by side: 16 tiles for AVX2, so that each store fills a whole 64-byte line
/// of a V panel row (with one ymm per call, the 36 rows' lines, often in one cache set, were
/// each written in two halves by calls 36 stores apart; the input transform took 9.4% of a
/// 256-px bench's samples at `NST_SIMD=avx2`, against the generic code's share).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Ymm2(__m256, __m256);

#[cfg(target_arch = "x86_64")]
impl Lanes for Ymm2 {
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Ymm2(_mm256_set1_ps(x), _mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Ymm2(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1))
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        Ymm2(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1))
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Ymm2(
            _mm256_fmadd_ps(a.0, b.0, c.0),
            _mm256_fmadd_ps(a.1, b.1, c.1),
        )
    }
    #[inline(always)]
    unsafe fn fnma(a: Self, b: Self, c: Self) -> Self {
        Ymm2(
            _mm256_fnmadd_ps(a.0, b.0, c.0),
            _mm256_fnmadd_ps(a.1, b.1, c.1),
        )
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Ymm2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        _mm256_storeu_ps(p, v.0);
        _mm256_storeu_ps(p.add(8), v.1);
    }
}

/// `Bᵀ x` for F(4×4)'s Bᵀ (the [`F4`](super::matrices::F4) constant), written out.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bt4<V: Lanes>(x: [V; 6]) -> [V; 6] {
    let c = |v| V::splat(v);
    let (add, sub, fma) = (V::add, V::sub, V::fma);
    let two = c(2.0);
    [
        // x0 + 1.5 x1 − 2 x2 − 1.5 x3 + x4
        fma(c(1.5), sub(x[1], x[3]), V::fnma(two, x[2], add(x[0], x[4]))),
        // 2 x1 + 5 x2 + x3 − 2 x4
        fma(c(5.0), x[2], fma(two, sub(x[1], x[4]), x[3])),
        // 2 x1 + x2 − 5 x3 + 2 x4
        V::fnma(c(5.0), x[3], fma(two, add(x[1], x[4]), x[2])),
        // −x1 − 2 x2 + x3 + 2 x4
        fma(two, sub(x[4], x[2]), sub(x[3], x[1])),
        // −2 x1 + x2 + 2 x3 − x4
        fma(two, sub(x[3], x[1]), sub(x[2], x[4])),
        // x1 + 1.5 x2 − 2 x3 − 1.5 x4 + x5
        fma(c(1.5), sub(x[2], x[4]), V::fnma(two, x[3], add(x[1], x[5]))),
    ]
}

/// `Aᵀ x` for F(4×4)'s Aᵀ (the [`F4`](super::matrices::F4) constant), written out.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn at4<V: Lanes>(x: [V; 6]) -> [V; 4] {
    let c = |v| V::splat(v);
    let (add, sub, fma) = (V::add, V::sub, V::fma);
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

/// `[V::load(p + off[0]), …, V::load(p + off[5])]`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load6<V: Lanes>(p: *const f32, off: [usize; 6]) -> [V; 6] {
    [
        V::load(p.add(off[0])),
        V::load(p.add(off[1])),
        V::load(p.add(off[2])),
        V::load(p.add(off[3])),
        V::load(p.add(off[4])),
        V::load(p.add(off[5])),
    ]
}

/// Row r of six columns: `[t[0][r], …, t[5][r]]`.
#[inline(always)]
fn row<V: Copy, const K: usize>(t: &[[V; K]; 6], r: usize) -> [V; 6] {
    [t[0][r], t[1][r], t[2][r], t[3][r], t[4][r], t[5][r]]
}

/// F(4×4) input transform `V = Bᵀ d B` of one vector of tiles in registers: patch element (i, q) of
/// the tiles is at `d + (i·6 + q)·pb`, V[ξ] goes to `v[ξ] + off`. `MIRROR` (an input
/// gradient: Bᵀ with reversed columns) is the same transform of the patch reversed in both
/// directions.
///
/// # Safety
/// `V`'s instruction set; `d + (i·6 + q)·pb` readable and each `v[ξ] + off` writable for
/// a vector's floats.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop)] // r indexes tmp's second dimension
unsafe fn input4<V: Lanes, const MIRROR: bool>(
    d: *const f32,
    pb: usize,
    v: &[*mut f32; 36],
    off: usize,
) {
    let rev = |i: usize| if MIRROR { 5 - i } else { i };
    // tmp[q][r] = Σ_i Bᵀ[r][i] d[i][q], column by column.
    // Not zeroed first (a zeroed [[Ymm2; 6]; 6] was a 2.3 kB memset per call), and no
    // intrinsics inside closures (a closure may be compiled apart, without the target features).
    let at = |q: usize, i: usize| (rev(i) * 6 + rev(q)) * pb;
    let mut tmp = [bt4::<V>(load6(d, [0, 1, 2, 3, 4, 5].map(|i| at(0, i)))); 6];
    for (q, t) in tmp.iter_mut().enumerate().skip(1) {
        *t = bt4(load6(d, [0, 1, 2, 3, 4, 5].map(|i| at(q, i))));
    }
    // V[r][q] = Σ_i tmp[i][r] Bᵀ[q][i], row by row.
    for r in 0..6 {
        let y = bt4(row(&tmp, r));
        for q in 0..6 {
            V::store(v[r * 6 + q].add(off), y[q]);
        }
    }
}

/// F(4×4) output transform `Y = Aᵀ M A` of one vector of tiles in registers: M[ξ]'s values are at
/// `mm + ξ·stride`, output element (r, q) goes to `y + (r·4 + q)·pb`. `MIRROR` (Aᵀ with
/// reversed rows) is the same transform with the output reversed in both directions.
///
/// # Safety
/// `V`'s instruction set; `mm + ξ·stride` readable and `y + (r·4 + q)·pb` writable for a
/// vector's floats.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn output4<V: Lanes, const MIRROR: bool>(
    mm: *const f32,
    stride: usize,
    y: *mut f32,
    pb: usize,
) {
    let rev = |i: usize| if MIRROR { 3 - i } else { i };
    // tmp[q][r] = Σ_i Aᵀ[r][i] M[i][q], column by column.
    let at = |q: usize, i: usize| (i * 6 + q) * stride;
    let mut tmp = [at4::<V>(load6(mm, [0, 1, 2, 3, 4, 5].map(|i| at(0, i)))); 6];
    for (q, t) in tmp.iter_mut().enumerate().skip(1) {
        *t = at4(load6(mm, [0, 1, 2, 3, 4, 5].map(|i| at(q, i))));
    }
    for r in 0..4 {
        let out = at4(row(&tmp, r));
        for (q, o) in out.into_iter().enumerate() {
            V::store(y.add((rev(r) * 4 + rev(q)) * pb), o);
        }
    }
}

/// [`input4`] with AVX-512: 16 tiles.
///
/// # Safety
/// AVX-512F; as [`input4`] for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn input4_avx512<const MIRROR: bool>(
    d: *const f32,
    pb: usize,
    v: &[*mut f32; 36],
    off: usize,
) {
    input4::<__m512, MIRROR>(d, pb, v, off)
}

/// [`input4`] with AVX2+FMA: 16 tiles (two ymm each).
///
/// # Safety
/// AVX2 and FMA; as [`input4`] for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn input4_avx2<const MIRROR: bool>(
    d: *const f32,
    pb: usize,
    v: &[*mut f32; 36],
    off: usize,
) {
    input4::<Ymm2, MIRROR>(d, pb, v, off)
}

/// [`output4`] with AVX-512: 16 tiles.
///
/// # Safety
/// AVX-512F; as [`output4`] for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output4_avx512<const MIRROR: bool>(
    mm: *const f32,
    stride: usize,
    y: *mut f32,
    pb: usize,
) {
    output4::<__m512, MIRROR>(mm, stride, y, pb)
}

/// [`output4`] with AVX2+FMA: 16 tiles (two ymm each).
///
/// # Safety
/// AVX2 and FMA; as [`output4`] for 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn output4_avx2<const MIRROR: bool>(
    mm: *const f32,
    stride: usize,
    y: *mut f32,
    pb: usize,
) {
    output4::<Ymm2, MIRROR>(mm, stride, y, pb)
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
    // Two stages, as in scatter4_avx512 backwards: stage 1 splits each pair of vectors (8
    // tiles) into (q0 | q1) and (q2 | q3) halves, stage 2 joins the 8-tile halves of the two
    // pairs. Columns 4 and 5 are columns 0 and 1 of the row read 4 floats on. 12 two-source
    // shuffles per 16 tiles instead of 18 (one permute and a 128-bit shuffle per column).
    let i01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    let i23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    let steps = len / 16;
    for b in 0..steps {
        let p = row.add(64 * b);
        let v: [__m512; 4] = std::array::from_fn(|i| _mm512_loadu_ps(p.add(16 * i)));
        let w: [__m512; 4] = std::array::from_fn(|i| _mm512_loadu_ps(p.add(4 + 16 * i)));
        let (p01, p23) = (
            _mm512_permutex2var_ps(v[0], i01, v[1]),
            _mm512_permutex2var_ps(v[0], i23, v[1]),
        );
        let (r01, r23) = (
            _mm512_permutex2var_ps(v[2], i01, v[3]),
            _mm512_permutex2var_ps(v[2], i23, v[3]),
        );
        let (p45, r45) = (
            _mm512_permutex2var_ps(w[0], i01, w[1]),
            _mm512_permutex2var_ps(w[2], i01, w[3]),
        );
        // 128-bit lanes 0, 1 (the first column's 8 tiles) or 2, 3 (the second's) of each.
        let out = [
            _mm512_shuffle_f32x4::<0b01_00_01_00>(p01, r01),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(p01, r01),
            _mm512_shuffle_f32x4::<0b01_00_01_00>(p23, r23),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(p23, r23),
            _mm512_shuffle_f32x4::<0b01_00_01_00>(p45, r45),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(p45, r45),
        ];
        for (q, o) in out.into_iter().enumerate() {
            _mm512_storeu_ps(dst[q].add(16 * b), o);
        }
    }
    for j in steps * 16..len {
        for (q, d) in dst.iter().enumerate() {
            *d.add(j) = *row.add(4 * j + q);
        }
    }
}
