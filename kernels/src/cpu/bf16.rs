//! bf16 operands for the Winograd GEMM (`--precision bf16`): the transformed weights U and the
//! transformed input tiles V are rounded to bfloat16 (crate `half`'s rounding: to nearest, ties
//! to even) and stored in channel pairs; products are summed in f32. On CPUs with AVX-512-BF16
//! one `vdpbf16ps` does 32 bf16 multiplies with f32 accumulation (twice the work of an f32 FMA
//! instruction, on operands half the size). Elsewhere the pairs are widened to f32 (exactly)
//! and multiplied with f32 FMAs: the same products (up to the order of the sums, and
//! `vdpbf16ps` flushing subnormals), no faster than f32, and slower below AVX-512.
//!
//! A pair is one `u32`: the even channel's bf16 in the low half, the odd channel's in the high
//! half, the order `vdpbf16ps` reads. Layouts:
//! - U panel: `C2 × MR` pairs, C2 = ⌈C/2⌉ (for each channel pair, the MR rows' pairs);
//! - V panel: `C2 × NR` pairs (for each channel pair, NR tiles);
//! - M: MR rows of NR (or NR/2) f32 at row stride `ldm`, overwritten.

#[cfg(target_arch = "x86_64")]
use super::packed_gemm::store_avx512;
use super::packed_gemm::{MR, NR, U_AHEAD};
use super::simd::SimdLevel;
use half::bf16;

/// The number format of the Winograd GEMM operands (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 operands (the default; the reference tests' precision).
    F32,
    /// bf16 operands (8-bit significand), f32 accumulation. Applies to f32 data only.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = crate::ParseOptionError;
    /// `f32` or `bf16` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(crate::ParseOptionError::new("precision", s, "f32 or bf16")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// How the bf16 products are computed, slowest first. [`kernel`] and [`pack_pairs`] cap the
/// path they are given at what this CPU has ([`Bf16Path::at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bf16Path {
    /// Plain Rust.
    Portable,
    /// The plain Rust compiled for AVX2 + FMA.
    Avx2,
    /// AVX-512F: pairs widened to f32 by shifts, then f32 FMAs.
    Avx512,
    /// AVX-512-BF16 `vdpbf16ps`.
    Dot,
}

// The SIMD kernels hold NR columns as two vectors of 16 lanes.
const _: () = assert!(NR == 32);

impl Bf16Path {
    /// The fastest path at instruction-set `level` (capped at this CPU's); `Dot` also needs
    /// AVX-512-BF16, which `NST_SIMD=avx512` leaves on (cap below AVX-512 to turn it off).
    pub fn at(level: SimdLevel) -> Bf16Path {
        match level.min(SimdLevel::detected()) {
            SimdLevel::Avx512 if has_dot() => Bf16Path::Dot,
            SimdLevel::Avx512 => Bf16Path::Avx512,
            SimdLevel::Avx2Fma => Bf16Path::Avx2,
            SimdLevel::Portable => Bf16Path::Portable,
        }
    }

    /// Every path this CPU can run, slowest first (tests run each).
    pub fn available() -> Vec<Bf16Path> {
        let top = Bf16Path::at(SimdLevel::Avx512);
        [
            Bf16Path::Portable,
            Bf16Path::Avx2,
            Bf16Path::Avx512,
            Bf16Path::Dot,
        ]
        .into_iter()
        .filter(|&p| p <= top)
        .collect()
    }

    /// Lower-case name (`avx512-bf16`, `avx512`, `avx2`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            Bf16Path::Dot => "avx512-bf16",
            Bf16Path::Avx512 => "avx512",
            Bf16Path::Avx2 => "avx2",
            Bf16Path::Portable => "portable",
        }
    }

    /// This path, capped at what this CPU has (so a caller's choice never runs instructions
    /// the CPU lacks).
    fn capped(self) -> Bf16Path {
        self.min(Bf16Path::at(SimdLevel::Avx512))
    }
}

/// Whether this CPU has AVX-512-BF16 (`vdpbf16ps`).
pub fn has_dot() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU's vendor is AMD (CPUID leaf 0: "AuthenticAMD"): on Zen 4/5 bf16 input
/// gradients through `vdpbf16ps` were faster than f32, on an Intel Xeon mostly slower
/// (`engine::cpu_bf16_is_faster`).
pub fn cpu_is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let r = std::arch::x86_64::__cpuid(0);
        let bytes = [r.ebx, r.edx, r.ecx].map(u32::to_le_bytes).concat();
        bytes == b"AuthenticAMD"
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `even` and `odd` rounded to bf16 (`half::bf16::from_f32`) in one pair.
#[inline]
pub fn pair(even: f32, odd: f32) -> u32 {
    u32::from(bf16::from_f32(even).to_bits()) | (u32::from(bf16::from_f32(odd).to_bits()) << 16)
}

/// The pair's two values as f32 (exact): `[even, odd]`.
#[inline(always)]
pub fn unpair(p: u32) -> [f32; 2] {
    [f32::from_bits(p << 16), f32::from_bits(p & 0xFFFF_0000)]
}

/// `out[j] = pair(even[j], odd[j])` (odd 0 when `None`) for j < `out.len()`.
///
/// # Panics
/// If `even` (or `odd`) is shorter than `out`.
pub fn pack_pairs(path: Bf16Path, even: &[f32], odd: Option<&[f32]>, out: &mut [u32]) {
    let n = out.len();
    assert!(
        even.len() >= n && odd.is_none_or(|o| o.len() >= n),
        "bf16: pairs"
    );
    #[cfg(target_arch = "x86_64")]
    if path != Bf16Path::Portable {
        let odd = odd.map_or(std::ptr::null(), |o| o.as_ptr());
        // SAFETY: AVX-512F detected (every path but Portable needs it), lengths checked.
        return unsafe { pack_pairs_avx512(even.as_ptr(), odd, n, out.as_mut_ptr()) };
    }
    let _ = path;
    match odd {
        Some(o) => {
            for ((d, &e), &o) in out.iter_mut().zip(even).zip(o) {
                *d = pair(e, o);
            }
        }
        None => {
            for (d, &e) in out.iter_mut().zip(even) {
                *d = pair(e, 0.0);
            }
        }
    }
}

/// bf16 bits of each lane (in its low 16 bits), rounded as [`half::bf16::from_f32`] does:
/// to nearest, ties to even; NaN stays NaN (quiet bit set).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn round_bf16_avx512(v: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    let x = _mm512_castps_si512(v);
    let top = _mm512_srli_epi32::<16>(x);
    let lsb = _mm512_and_si512(top, _mm512_set1_epi32(1));
    let bias = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb);
    let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(x, bias));
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    let quiet = _mm512_or_si512(top, _mm512_set1_epi32(0x40));
    _mm512_mask_mov_epi32(rounded, nan, quiet)
}

/// [`pack_pairs`] with AVX-512F; `odd` may be null (zeros).
///
/// # Safety
/// AVX-512F; `even` (and `odd` unless null) readable and `out` writable for `n` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_pairs_avx512(even: *const f32, odd: *const f32, n: usize, out: *mut u32) {
    use std::arch::x86_64::*;
    let steps = n / 16;
    for s in 0..steps {
        let e = round_bf16_avx512(_mm512_loadu_ps(even.add(16 * s)));
        let p = if odd.is_null() {
            e
        } else {
            let o = round_bf16_avx512(_mm512_loadu_ps(odd.add(16 * s)));
            _mm512_or_si512(e, _mm512_slli_epi32::<16>(o))
        };
        _mm512_storeu_si512(out.add(16 * s) as *mut _, p);
    }
    for j in steps * 16..n {
        let o = if odd.is_null() { 0.0 } else { *odd.add(j) };
        *out.add(j) = pair(*even.add(j), o);
    }
}

/// Pack a K×C matrix (`at(k, c)`) into panels of MR rows and channel pairs:
/// `out[(kb·C2 + cp)·MR + r] = pair(U[kb·MR + r][2cp], U[kb·MR + r][2cp + 1])`, zero past K
/// and C. `out.len()` must be `K.div_ceil(MR)·MR·C.div_ceil(2)`.
pub fn pack_u(k: usize, c: usize, at: impl Fn(usize, usize) -> f32, out: &mut [u32]) {
    let (kp, c2) = (k.div_ceil(MR) * MR, c.div_ceil(2));
    assert_eq!(out.len(), kp * c2, "bf16::pack_u: out length");
    for kb in 0..kp / MR {
        for cp in 0..c2 {
            for r in 0..MR {
                let row = kb * MR + r;
                let get = |ci: usize| if row < k && ci < c { at(row, ci) } else { 0.0 };
                out[(kb * c2 + cp) * MR + r] = pair(get(2 * cp), get(2 * cp + 1));
            }
        }
    }
}

/// `m[r·ldm + j] = Σ_cp Σ_h u[cp·MR + r]_h · v[cp·NR + j]_h` (h: the pair's halves) for r < MR
/// and j < `cols` (NR, or NR/2 for a block's last, half-empty panel); f32 sums.
///
/// # Panics
/// If `cols` is not NR or NR/2, `u` is shorter than `c2·MR`, `v` than `c2·NR`, `ldm < cols`,
/// or `m` is shorter than `(MR−1)·ldm + cols`.
#[allow(clippy::too_many_arguments)]
pub fn kernel(
    path: Bf16Path,
    c2: usize,
    u: &[u32],
    v: &[u32],
    m: &mut [f32],
    ldm: usize,
    cols: usize,
) {
    assert!(cols == NR || cols == NR / 2, "bf16 kernel: cols");
    assert!(
        u.len() >= c2 * MR && v.len() >= c2 * NR,
        "bf16 kernel: panels"
    );
    assert!(
        ldm >= cols && m.len() >= (MR - 1) * ldm + cols,
        "bf16 kernel: output"
    );
    let (up, vp, mp) = (u.as_ptr(), v.as_ptr(), m.as_mut_ptr());
    match (path.capped(), cols == NR) {
        // SAFETY: `capped` keeps only paths whose features this CPU has; lengths checked above.
        #[cfg(target_arch = "x86_64")]
        (Bf16Path::Dot, true) => unsafe { kernel_dot::<2>(c2, up, vp, mp, ldm) },
        #[cfg(target_arch = "x86_64")]
        (Bf16Path::Dot, false) => unsafe { kernel_dot::<1>(c2, up, vp, mp, ldm) },
        #[cfg(target_arch = "x86_64")]
        (Bf16Path::Avx512, true) => unsafe { kernel_avx512::<2>(c2, up, vp, mp, ldm) },
        #[cfg(target_arch = "x86_64")]
        (Bf16Path::Avx512, false) => unsafe { kernel_avx512::<1>(c2, up, vp, mp, ldm) },
        #[cfg(target_arch = "x86_64")]
        (Bf16Path::Avx2, _) => SimdLevel::Avx2Fma.run(
            #[inline(always)]
            || kernel_portable(c2, u, v, m, ldm, cols),
        ),
        _ => kernel_portable(c2, u, v, m, ldm, cols),
    }
}

#[inline(always)]
fn kernel_portable(c2: usize, u: &[u32], v: &[u32], m: &mut [f32], ldm: usize, cols: usize) {
    let mut acc = [[0f32; NR]; MR];
    for cp in 0..c2 {
        let vr = &v[cp * NR..][..cols];
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let [ue, uo] = unpair(u[cp * MR + r]);
            for (a, &x) in acc_r.iter_mut().zip(vr) {
                let [xe, xo] = unpair(x);
                *a += ue * xe + uo * xo;
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        m[r * ldm..][..cols].copy_from_slice(&a[..cols]);
    }
}

/// `V` vectors of 16 columns with `vdpbf16ps`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel_dot<const V: usize>(
    c2: usize,
    u: *const u32,
    v: *const u32,
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); V]; MR];
    for cp in 0..c2 {
        // U streams from memory in the deep layers, as in the f32 kernel
        // (packed_gemm::U_AHEAD): 64 pairs = 128 channels ahead (2 KiB of bf16 panel). A hint
        // only: addresses past U's end are not dereferenced.
        _mm_prefetch::<_MM_HINT_T0>(u.wrapping_add((cp + U_AHEAD / 2) * MR) as *const i8);
        let x: [__m512bh; V] = std::array::from_fn(|i| {
            let raw = _mm512_loadu_si512(v.add(cp * NR + 16 * i) as *const _);
            std::mem::transmute::<__m512i, __m512bh>(raw)
        });
        let up = u.add(cp * MR);
        for (r, a) in acc.iter_mut().enumerate() {
            let b = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*up.add(r) as i32));
            for i in 0..V {
                a[i] = _mm512_dpbf16_ps(a[i], b, x[i]);
            }
        }
    }
    store_avx512(&acc, m, ldm);
}

/// `V` vectors of 16 columns with AVX-512F: each pair widened to two f32 vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const V: usize>(
    c2: usize,
    u: *const u32,
    v: *const u32,
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::*;
    let high = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
    let mut acc = [[_mm512_setzero_ps(); V]; MR];
    for cp in 0..c2 {
        let mut xe = [_mm512_setzero_ps(); V];
        let mut xo = [_mm512_setzero_ps(); V];
        for i in 0..V {
            let raw = _mm512_loadu_si512(v.add(cp * NR + 16 * i) as *const _);
            xe[i] = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(raw));
            xo[i] = _mm512_castsi512_ps(_mm512_and_si512(raw, high));
        }
        let up = u.add(cp * MR);
        for (r, a) in acc.iter_mut().enumerate() {
            let [ue, uo] = unpair(*up.add(r));
            let (be, bo) = (_mm512_set1_ps(ue), _mm512_set1_ps(uo));
            for i in 0..V {
                a[i] = _mm512_fmadd_ps(be, xe[i], a[i]);
                a[i] = _mm512_fmadd_ps(bo, xo[i], a[i]);
            }
        }
    }
    store_avx512(&acc, m, ldm);
}

/// Test helpers shared with the AMX tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A C × NR f32 panel (row ci: channel ci of NR tiles) as the GEMM's V panel: ⌈C/2⌉ rows of
    /// NR channel pairs (the odd channel 0 past C).
    pub(crate) fn v_panel(c: usize, v: &[f32]) -> Vec<u32> {
        let c2 = c.div_ceil(2);
        let mut vp = vec![0u32; c2 * NR];
        for cp in 0..c2 {
            let odd = (2 * cp + 1 < c).then(|| &v[(2 * cp + 1) * NR..][..NR]);
            let (even, out) = (&v[2 * cp * NR..], &mut vp[cp * NR..][..NR]);
            pack_pairs(Bf16Path::Portable, even, odd, out);
        }
        vp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn pairs_round_to_nearest_even_on_every_path() {
        // 1 + 2⁻⁸ is halfway between bf16 1 and 1 + 2⁻⁷: ties go to the even 1.0; a hair
        // above rounds up. 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: up to even.
        assert_eq!(
            unpair(pair(1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8))),
            [1.0, 1.0 + 2f32.powi(-6)]
        );
        let up = f32::from_bits((1.0f32 + 2f32.powi(-8)).to_bits() + 1);
        assert_eq!(unpair(pair(up, -2.5)), [1.0 + 2f32.powi(-7), -2.5]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut even: Vec<f32> = (0..1000).map(|_| rng.gen_range(-1e3..1e3)).collect();
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN_POSITIVE / 3.0,
            -0.0,
            1.0 + 2f32.powi(-8),
        ];
        even[..specials.len()].copy_from_slice(&specials);
        let mut odd: Vec<f32> = even.iter().rev().map(|v| v * 0.37).collect();
        odd[10..10 + specials.len()].copy_from_slice(&specials);
        for path in Bf16Path::available() {
            for o in [Some(&odd[..]), None] {
                let mut got = vec![0u32; even.len() - 3];
                pack_pairs(path, &even, o, &mut got);
                for (j, &g) in got.iter().enumerate() {
                    let want = pair(even[j], o.map_or(0.0, |o| o[j]));
                    assert_eq!(g, want, "{path:?} [{j}]: {g:#x} vs {want:#x}");
                }
            }
        }
    }

    #[test]
    fn kernel_matches_a_product_of_the_rounded_operands_on_every_path() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for &(k, c) in &[(8usize, 1usize), (13, 5), (16, 64), (24, 301)] {
            let u: Vec<f32> = (0..k * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let c2 = c.div_ceil(2);
            let v: Vec<f32> = (0..c * NR).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let kp = k.div_ceil(MR) * MR;
            let mut up = vec![0u32; kp * c2];
            pack_u(k, c, |r, ci| u[r * c + ci], &mut up);
            let vp = testing::v_panel(c, &v);
            let r16 = |x: f32| bf16::from_f32(x).to_f64();
            for path in Bf16Path::available() {
                for cols in [NR, NR / 2] {
                    let ldm = NR + 3;
                    let mut m = vec![f32::NAN; kp * ldm];
                    for kb in 0..kp / MR {
                        let (ub, mb) = (&up[kb * c2 * MR..], &mut m[kb * MR * ldm..]);
                        kernel(path, c2, ub, &vp, mb, ldm, cols);
                    }
                    for row in 0..kp {
                        for j in 0..NR {
                            let got = m[row * ldm + j] as f64;
                            if j >= cols {
                                assert!(got.is_nan(), "{path:?} wrote column {j}");
                                continue;
                            }
                            let want: f64 = if row < k {
                                (0..c)
                                    .map(|ci| r16(u[row * c + ci]) * r16(v[ci * NR + j]))
                                    .sum()
                            } else {
                                0.0
                            };
                            assert!(
                                (got - want).abs() <= 1e-5 * (1.0 + want.abs()) * (c as f64).sqrt(),
                                "{path:?} k={k} c={c} [{row}][{j}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
