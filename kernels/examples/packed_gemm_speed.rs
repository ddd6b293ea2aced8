//! Quick timing of the Winograd GEMM micro-kernels (`packed_gemm::kernel`/`kernel_half` and the
//! transposed `kernel_t`) at every SIMD level this CPU has, on VGG-19's F(4×4) shapes at
//! 256×170: C = K channels and the tiles per transform point, over 36 transform points, called
//! as the Winograd driver calls them (per point: row panels × tile groups, the last group half
//! wide when ≤ 16 tiles remain). One thread. Prints GFLOP/s (2·K·C·tiles·36 per product).
//! `cargo run --release -p nst-kernels --example packed_gemm_speed [ROUNDS]` (default 5; the
//! fastest round counts, the levels alternate within each round). First, the core's f32 FMA
//! ceiling at each vector width (independent FMA chains in registers, no loads), so the
//! kernels' figures read as a share of what this core can do (on a CPU with one 512-bit FMA
//! port, or clocked down for AVX-512, the AVX-512 ceiling is no higher than AVX2's).

use kernels::cpu::packed_gemm::{kernel, kernel_half, kernel_t, MR, NR};
use kernels::cpu::simd::SimdLevel;
use kernels::cpu::winograd::U_PAD;
use std::time::Instant;

/// (C = K, tiles) of the Winograd layers at 256×170 (conv1_2 … conv5_1).
const SHAPES: [(usize, usize); 5] = [(64, 2752), (128, 704), (256, 176), (512, 48), (512, 12)];
/// Transform points of F(4×4, 3×3).
const POINTS: usize = 36;

/// One layer's products at `level`: forward (`M = U·V`) or transposed (`M = Uᵀ·V`).
fn products(level: SimdLevel, c: usize, tiles: usize, transposed: bool, bufs: &mut Bufs) {
    let groups = tiles.div_ceil(NR);
    let pb = groups * NR;
    for xi in 0..POINTS {
        // U as WinogradWeights lays it out: row panels of C·MR, U_PAD apart.
        let ps = c * MR + U_PAD;
        let ux = &bufs.u[xi * (c / MR) * ps..][..(c / MR) * ps];
        let vx = &bufs.v[xi * c * pb..][..c * pb];
        let mx = &mut bufs.m[xi * c * pb..][..c * pb];
        for kb in 0..c / MR {
            for grp in 0..groups {
                let panel = &vx[grp * c * NR..][..c * NR];
                let out = &mut mx[kb * MR * pb + grp * NR..];
                let cols = if tiles - grp * NR <= NR / 2 {
                    NR / 2
                } else {
                    NR
                };
                if transposed {
                    kernel_t(level, c / MR, &ux[kb * MR * MR..], ps, panel, out, pb, cols);
                } else if cols < NR {
                    kernel_half(level, c, &ux[kb * ps..], panel, out, pb);
                } else {
                    kernel(level, c, &ux[kb * ps..], panel, out, pb);
                }
            }
        }
    }
}

struct Bufs {
    u: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let levels = SimdLevel::available();
    let names: Vec<&str> = levels.iter().map(|l| l.name()).collect();
    #[cfg(target_arch = "x86_64")]
    fma_ceiling(&levels);
    println!("GFLOP/s, one thread, levels {names:?}");
    for (c, tiles) in SHAPES {
        let pb = tiles.div_ceil(NR) * NR;
        let mut bufs = Bufs {
            u: (0..POINTS * (c / MR) * (c * MR + U_PAD))
                .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
                .collect(),
            v: (0..POINTS * c * pb)
                .map(|i| ((i * 104729) % 1000) as f32 * 1e-3)
                .collect(),
            m: vec![0.0; POINTS * c * pb],
        };
        let flop = 2.0 * (c * c * tiles * POINTS) as f64;
        for transposed in [false, true] {
            let mut best = vec![f64::INFINITY; levels.len()];
            for _ in 0..rounds {
                for (b, &level) in best.iter_mut().zip(&levels) {
                    let t = Instant::now();
                    products(level, c, tiles, transposed, &mut bufs);
                    *b = b.min(t.elapsed().as_secs_f64());
                }
            }
            let what = if transposed { "kernel_t" } else { "kernel  " };
            let mut line = format!("C=K={c:3} tiles={tiles:4} {what}:");
            for (name, b) in names.iter().zip(&best) {
                line += &format!("  {name} {:6.1}", flop / b * 1e-9);
            }
            println!("{line}");
        }
    }
}

/// Prints the one-thread f32 FMA ceiling at AVX2 (ymm) and AVX-512 (zmm), where available:
/// 12 / 16 independent accumulators (enough to cover the FMA latency on two ports), best of 5.
#[cfg(target_arch = "x86_64")]
fn fma_ceiling(levels: &[SimdLevel]) {
    let iters = 20_000_000usize;
    let best = |f: &dyn Fn() -> f32| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let mut line = String::from("f32 FMA ceiling, one thread (GFLOP/s):");
    if levels.contains(&SimdLevel::Avx2Fma) {
        // SAFETY: AVX2 and FMA were detected (SimdLevel::available).
        let t = best(&|| unsafe { fma_ymm(std::hint::black_box(iters)) });
        line += &format!("  avx2 {:.1}", (iters * 12 * 8 * 2) as f64 / t * 1e-9);
    }
    if levels.contains(&SimdLevel::Avx512) {
        // SAFETY: AVX-512F was detected (SimdLevel::available).
        let t = best(&|| unsafe { fma_zmm(std::hint::black_box(iters)) });
        line += &format!("  avx512 {:.1}", (iters * 16 * 16 * 2) as f64 / t * 1e-9);
    }
    println!("{line}");
}

/// `iters` rounds of 12 independent ymm FMAs (with the two constants, 14 of the 16 ymm
/// registers); returns a sum so nothing is optimised away.
///
/// # Safety
/// AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_ymm(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut s = [0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
    _mm256_storeu_ps(s.as_mut_ptr(), sum);
    s.iter().sum()
}

/// `iters` rounds of 16 independent zmm FMAs; returns a sum so nothing is optimised away.
///
/// # Safety
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_zmm(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); 16];
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &x| _mm512_add_ps(s, x));
    _mm512_reduce_add_ps(sum)
}
