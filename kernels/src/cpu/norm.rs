//! Instance normalisation with external per-(n, c) scale and shift (Ulyanov et al. 2016;
//! conditional instance norm, Dumoulin et al. 2017, supplies γ, β from a style vector):
//! `y = (x − μ)/√(σ² + eps)·γ + β`, μ and the biased σ² per (n, c) plane over H×W.
//! Statistics are summed in f64 in two passes (mean, then Σ(x − μ)²), so f32 planes of any size
//! keep full f32 accuracy. Parallel over planes; inner loops are 8-lane f64 accumulations.

use super::simd::SimdLevel;
use super::Float;
use rayon::prelude::*;

/// Σ v and Σ (v − m)² in f64 over `x` (8 independent lanes each, so the loops vectorise).
#[inline(always)]
fn sums<T: Float>(x: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += f(v);
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Mean and `1/√(σ² + eps)` of one plane (biased variance, two passes, f64).
#[inline(always)]
fn plane_stats<T: Float>(x: &[T], eps: f64) -> (f64, f64) {
    let m = x.len().max(1) as f64;
    let mean = sums(x, |v| v.to_f64()) / m;
    let var = sums(x, |v| {
        let d = v.to_f64() - mean;
        d * d
    }) / m;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `v` as `hi + lo` in `T`: `hi` rounded, `lo` the rest. For x near μ (|x − μ| within a
/// factor 2 of x, which holds for most of a plane) `x − hi` is exact (Sterbenz), so
/// `(x − hi) − lo` is x − μ rounded once: an f32 plane with |μ| ≫ σ loses nothing to the
/// rounding of μ itself (which alone would cost |μ|/σ·2⁻²⁴ relative).
fn split<T: Float>(v: f64) -> (T, T) {
    let hi = T::from_f64(v);
    (hi, T::from_f64(v - hi.to_f64()))
}

/// One plane: statistics, then `o = ((x − hi) − lo)·a + b` (max(0, ·) with `relu`), where x
/// is `src` and o is `out`, or, without `src`, both are `out` (in place); returns (μ, 1/σ).
#[inline(always)]
fn norm_plane<T: Float>(
    out: &mut [T],
    src: Option<&[T]>,
    g: T,
    b: T,
    eps: f64,
    relu: bool,
) -> (f64, f64) {
    let (mean, rstd) = plane_stats(src.unwrap_or(out), eps);
    // y = (x − μ)·a + β with a = r·γ, centred first (x·a − μ·a would cancel in f32 when
    // |μ| ≫ σ) and with μ as hi + lo in T, so x − μ keeps f64's μ (see `split`).
    let a = T::from_f64(rstd * g.to_f64());
    let (hi, lo) = split::<T>(mean);
    let f = |v: T| {
        let y = ((v - hi) - lo) * a + b;
        // max(0, y) with NaN → 0, as the ReLU op.
        match relu {
            true if y > T::ZERO => y,
            true => T::ZERO,
            false => y,
        }
    };
    match src {
        Some(xs) => {
            for (o, &v) in out.iter_mut().zip(xs) {
                *o = f(v);
            }
        }
        None => {
            for o in out.iter_mut() {
                *o = f(*o);
            }
        }
    }
    (mean, rstd)
}

/// [`norm_plane`] compiled with AVX-512F (a named function: a closure holding the loops would
/// be compiled without the feature).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn norm_plane_avx512<T: Float>(
    out: &mut [T],
    src: Option<&[T]>,
    g: T,
    b: T,
    eps: f64,
    relu: bool,
) -> (f64, f64) {
    norm_plane(out, src, g, b, eps, relu)
}

/// [`norm_plane`] compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn norm_plane_avx2<T: Float>(
    out: &mut [T],
    src: Option<&[T]>,
    g: T,
    b: T,
    eps: f64,
    relu: bool,
) -> (f64, f64) {
    norm_plane(out, src, g, b, eps, relu)
}

/// [`norm_plane`] of plane `p` at this CPU's level.
#[inline(always)]
fn norm_plane_at<T: Float>(
    level: SimdLevel,
    out: &mut [T],
    src: Option<&[T]>,
    (g, b): (T, T),
    eps: f64,
    relu: bool,
) -> (f64, f64) {
    match level {
        // SAFETY: `SimdLevel::current` is capped at what this CPU has.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { norm_plane_avx512(out, src, g, b, eps, relu) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => unsafe { norm_plane_avx2(out, src, g, b, eps, relu) },
        _ => norm_plane(out, src, g, b, eps, relu),
    }
}

fn check_len(op: &str, what: &str, got: usize, want: usize) {
    assert_eq!(
        got, want,
        "{op}: {what} has {got} elements, expected {want}"
    );
}

/// Instance norm forward over `planes` planes of `hw` elements: `out[p] = (x[p] − μ_p)·r_p·γ_p
/// + β_p` with `r_p = 1/√(σ²_p + eps)`. `gamma`, `beta`: one value per plane (N·C, row-major
/// N×C). With `relu`, `out[p] = max(0, …)` in the same pass (a following ReLU fused; NaN → 0
/// as [`crate::UnaryOp::Relu`]). When `stats` is given (2 per plane), it receives (μ_p, r_p)
/// of the normalisation (before any ReLU) for the backward. `out` is overwritten.
///
/// # Panics
/// If a length does not match.
#[allow(clippy::too_many_arguments)]
pub fn instance_norm_forward<T: Float>(
    planes: usize,
    hw: usize,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    eps: f64,
    relu: bool,
    out: &mut [T],
    stats: Option<&mut [T]>,
) {
    let op = "instance_norm_forward";
    check_len(op, "x", x.len(), planes * hw);
    check_len(op, "out", out.len(), planes * hw);
    check_len(op, "gamma", gamma.len(), planes);
    check_len(op, "beta", beta.len(), planes);
    if hw == 0 {
        return;
    }
    let level = SimdLevel::current();
    let st: Vec<(f64, f64)> = out
        .par_chunks_mut(hw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .map(|(p, (o, xs))| norm_plane_at(level, o, Some(xs), (gamma[p], beta[p]), eps, relu))
        .collect();
    if let Some(s) = stats {
        check_len(op, "stats", s.len(), 2 * planes);
        for (d, (m, r)) in s.chunks_exact_mut(2).zip(st) {
            d[0] = T::from_f64(m);
            d[1] = T::from_f64(r);
        }
    }
}

/// [`instance_norm_forward`] in place: `x` (planes × hw) is overwritten by its normalised
/// values (then max(0, ·) with `relu`), with no output buffer (half the memory traffic of a
/// fresh output, which must also be allocated and zeroed). No statistics are returned: this is
/// for inference.
///
/// # Panics
/// If a length does not match.
pub fn instance_norm_in_place<T: Float>(
    planes: usize,
    hw: usize,
    x: &mut [T],
    gamma: &[T],
    beta: &[T],
    eps: f64,
    relu: bool,
) {
    let op = "instance_norm_in_place";
    check_len(op, "x", x.len(), planes * hw);
    check_len(op, "gamma", gamma.len(), planes);
    check_len(op, "beta", beta.len(), planes);
    if hw == 0 {
        return;
    }
    let level = SimdLevel::current();
    x.par_chunks_mut(hw).enumerate().for_each(|(p, o)| {
        norm_plane_at(level, o, None, (gamma[p], beta[p]), eps, relu);
    });
}

/// Instance norm backward from the saved `stats` (μ_p, r_p per plane): with `x̂ = (x − μ)·r`
/// and M = H·W,
/// `∂x = γ·r·(g − Σg/M − x̂·Σ(g·x̂)/M)`, `∂γ_p = Σ g·x̂`, `∂β_p = Σ g` (sums over the plane,
/// in f64). `grad_x`, `grad_gamma`, `grad_beta` (one per plane) are overwritten.
///
/// # Panics
/// If a length does not match.
#[allow(clippy::too_many_arguments)]
pub fn instance_norm_backward<T: Float>(
    planes: usize,
    hw: usize,
    grad_out: &[T],
    x: &[T],
    gamma: &[T],
    stats: &[T],
    grad_x: &mut [T],
    grad_gamma: &mut [T],
    grad_beta: &mut [T],
) {
    let op = "instance_norm_backward";
    for (what, got, want) in [
        ("grad_out", grad_out.len(), planes * hw),
        ("x", x.len(), planes * hw),
        ("grad_x", grad_x.len(), planes * hw),
        ("gamma", gamma.len(), planes),
        ("stats", stats.len(), 2 * planes),
        ("grad_gamma", grad_gamma.len(), planes),
        ("grad_beta", grad_beta.len(), planes),
    ] {
        check_len(op, what, got, want);
    }
    if hw == 0 {
        grad_gamma.fill(T::ZERO);
        grad_beta.fill(T::ZERO);
        return;
    }
    let m = hw as f64;
    let sums_per_plane: Vec<(f64, f64)> = grad_x
        .par_chunks_mut(hw)
        .zip(grad_out.par_chunks(hw).zip(x.par_chunks(hw)))
        .enumerate()
        .map(|(p, (gx, (g, xs)))| {
            let (mean, rstd) = (stats[2 * p].to_f64(), stats[2 * p + 1].to_f64());
            let sg = sums(g, |v| v.to_f64());
            // Σ g·x̂ = r·Σ g·x − r·μ·Σ g, summed as Σ g·(x − μ) in f64.
            let mut acc = [0.0f64; 8];
            let (gc, xc) = (g.chunks_exact(8), xs.chunks_exact(8));
            let tail: f64 = gc
                .remainder()
                .iter()
                .zip(xc.remainder())
                .map(|(&a, &b)| a.to_f64() * (b.to_f64() - mean))
                .sum();
            for (a8, b8) in gc.zip(xc) {
                for ((s, &a), &b) in acc.iter_mut().zip(a8).zip(b8) {
                    *s += a.to_f64() * (b.to_f64() - mean);
                }
            }
            let sgx = (acc.iter().sum::<f64>() + tail) * rstd;
            // ∂x = k·g + c1·(x − μ) + c0 with k = γr, c1 = −k·r·Σgx̂/M, c0 = −k·Σg/M.
            let k = gamma[p].to_f64() * rstd;
            let c1 = -k * rstd * sgx / m;
            let c0 = -k * sg / m;
            let (k, c1, c0) = (T::from_f64(k), T::from_f64(c1), T::from_f64(c0));
            let (hi, lo) = split::<T>(mean);
            for ((d, &gv), &xv) in gx.iter_mut().zip(g).zip(xs) {
                *d = k * gv + c1 * ((xv - hi) - lo) + c0;
            }
            (sgx, sg)
        })
        .collect();
    for ((dg, db), (sgx, sg)) in grad_gamma
        .iter_mut()
        .zip(grad_beta.iter_mut())
        .zip(sums_per_plane)
    {
        *dg = T::from_f64(sgx);
        *db = T::from_f64(sg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive f64 instance norm of one plane.
    fn naive(x: &[f64], g: f64, b: f64, eps: f64) -> Vec<f64> {
        let m = x.len() as f64;
        let mean = x.iter().sum::<f64>() / m;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m;
        x.iter()
            .map(|v| (v - mean) / (var + eps).sqrt() * g + b)
            .collect()
    }

    fn data(len: usize, seed: usize, offset: f64) -> Vec<f64> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 31) % 1013) as f64 / 101.0 + offset)
            .collect()
    }

    #[test]
    fn forward_matches_naive_and_f32_keeps_accuracy_with_a_large_mean() {
        let (planes, hw) = (3, 37 * 23);
        // A mean far from zero (1e3 over values spread by ~10) would lose digits to
        // E[x²] − μ² in f32; the two-pass f64 statistics keep full f32 accuracy.
        let x = data(planes * hw, 1, 1000.0);
        let gamma = [1.5, -0.5, 2.0];
        let beta = [0.1, 0.0, -3.0];
        let want: Vec<f64> = (0..planes)
            .flat_map(|p| naive(&x[p * hw..(p + 1) * hw], gamma[p], beta[p], 1e-5))
            .collect();
        let mut out = vec![0.0; planes * hw];
        let mut st = vec![0.0; 2 * planes];
        instance_norm_forward(
            planes,
            hw,
            &x,
            &gamma,
            &beta,
            1e-5,
            false,
            &mut out,
            Some(&mut st),
        );
        let err = out
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "f64 error {err}");
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (gf, bf) = (gamma.map(|v| v as f32), beta.map(|v| v as f32));
        let mut of = vec![0.0f32; planes * hw];
        instance_norm_forward(planes, hw, &xf, &gf, &bf, 1e-5, false, &mut of, None);
        // Against the f64 result on the f32-rounded input.
        let xr: Vec<f64> = xf.iter().map(|&v| v as f64).collect();
        let err = (0..planes)
            .flat_map(|p| {
                let w = naive(&xr[p * hw..(p + 1) * hw], gamma[p], beta[p], 1e-5);
                let o = &of[p * hw..(p + 1) * hw];
                o.iter()
                    .zip(w)
                    .map(|(a, b)| (*a as f64 - b).abs())
                    .collect::<Vec<_>>()
            })
            .fold(0.0, f64::max);
        assert!(err < 2e-5, "f32 error {err}");
        // In place: bit for bit the out-of-place result, with and without the ReLU.
        for relu in [false, true] {
            let mut want = vec![0.0f32; planes * hw];
            instance_norm_forward(planes, hw, &xf, &gf, &bf, 1e-5, relu, &mut want, None);
            let mut got = xf.clone();
            instance_norm_in_place(planes, hw, &mut got, &gf, &bf, 1e-5, relu);
            assert_eq!(got, want, "in place, relu {relu}");
            assert!(!relu || got.iter().all(|&v| v >= 0.0));
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (planes, hw) = (2, 5 * 7);
        let x = data(planes * hw, 2, -0.3);
        let gamma = [1.3, -0.7];
        let beta = [0.2, 0.5];
        let g = data(planes * hw, 5, -4.0);
        let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
            let mut o = vec![0.0; planes * hw];
            instance_norm_forward(planes, hw, x, gamma, beta, 1e-5, false, &mut o, None);
            o.iter().zip(&g).map(|(a, b)| a * b).sum()
        };
        let mut st = vec![0.0; 2 * planes];
        let mut o = vec![0.0; planes * hw];
        instance_norm_forward(
            planes,
            hw,
            &x,
            &gamma,
            &beta,
            1e-5,
            false,
            &mut o,
            Some(&mut st),
        );
        let (mut gx, mut gg, mut gb) = (vec![0.0; planes * hw], [0.0; 2], [0.0; 2]);
        instance_norm_backward(planes, hw, &g, &x, &gamma, &st, &mut gx, &mut gg, &mut gb);
        let h = 1e-6;
        for j in [0, 3, hw, planes * hw - 1] {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (loss(&a, &gamma, &beta) - loss(&b, &gamma, &beta)) / (2.0 * h);
            assert!(
                (fd - gx[j]).abs() < 1e-6 * fd.abs().max(1.0),
                "x[{j}]: {fd} vs {}",
                gx[j]
            );
        }
        for p in 0..planes {
            let (mut a, mut b) = (gamma, gamma);
            a[p] += h;
            b[p] -= h;
            let fd = (loss(&x, &a, &beta) - loss(&x, &b, &beta)) / (2.0 * h);
            assert!((fd - gg[p]).abs() < 1e-6 * fd.abs().max(1.0));
            let (mut a, mut b) = (beta, beta);
            a[p] += h;
            b[p] -= h;
            let fd = (loss(&x, &gamma, &a) - loss(&x, &gamma, &b)) / (2.0 * h);
            assert!((fd - gb[p]).abs() < 1e-6 * fd.abs().max(1.0));
        }
    }
}
