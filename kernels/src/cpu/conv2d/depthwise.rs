//! Depthwise conv2d (groups = C_in = C_out: one KH×KW filter per channel, MobileNet's 3×3
//! layers) as a direct kernel. It does KH·KW multiply-adds per output, too few for a GEMM to
//! pay off, and is memory-bound, so each (n, c) plane is one rayon task: an output row is the
//! sum over taps of a scaled input row (contiguous, SIMD across the width: the per-plane bodies
//! are compiled inside named AVX-512 / AVX2 functions, [`plane_avx512`] and [`plane_avx2`]).
//! For stride s > 1 each input row is first split into its s phases (`x[s·k + r]` for r < s),
//! so every tap still reads a contiguous run.

use super::{valid_range, Conv2dParams};
use crate::cpu::simd::SimdLevel;
use crate::cpu::Float;
use rayon::prelude::*;

/// `dst[i] += a · src[i]` (vectorises).
#[inline(always)]
fn axpy<T: Float>(dst: &mut [T], a: T, src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// The input plane laid out for contiguous tap reads: for stride 1 the plane itself (row
/// length W); otherwise row y's phase r at `(y·s + r)·wp`, `wp = ⌈W/s⌉` (zero-filled tail).
fn phases<'a, T: Float>(p: &Conv2dParams, plane: &'a [T], buf: &'a mut Vec<T>) -> (&'a [T], usize) {
    let s = p.stride_w;
    if s == 1 {
        return (plane, p.w);
    }
    let wp = p.w.div_ceil(s);
    buf.clear();
    buf.resize(p.h * s * wp, T::ZERO);
    for (row, dst) in plane.chunks_exact(p.w).zip(buf.chunks_exact_mut(s * wp)) {
        if s == 2 {
            // Even and odd columns without a division per pixel (MobileNet's stride).
            let (even, odd) = dst.split_at_mut(wp);
            for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
                (*e, *o) = (pair[0], pair[1]);
            }
            if p.w % 2 == 1 {
                even[wp - 1] = row[p.w - 1];
            }
            continue;
        }
        for (x, &v) in row.iter().enumerate() {
            dst[(x % s) * wp + x / s] = v;
        }
    }
    (buf, wp)
}

/// Where tap column `j` reads in a phase row: (phase r, offset m) with input column
/// `s·ox + j − pad = s·(ox + m) + r`.
fn tap_phase(j: usize, pad: usize, s: usize) -> (usize, isize) {
    let q = j as isize - pad as isize;
    (q.rem_euclid(s as isize) as usize, q.div_euclid(s as isize))
}

/// Where tap column j acts in an output row, the same for every row and plane: output pixels
/// `lo..hi` read phase row `r` from column `start` on ([`valid_range`], [`tap_phase`]; computed
/// once per call, not per row: their divisions cost more than an 8-pixel row's multiply-adds).
/// The forward and both gradients walk the taps by it.
#[derive(Clone, Copy)]
struct TapCols {
    lo: usize,
    hi: usize,
    r: usize,
    start: usize,
}

fn tap_cols(p: &Conv2dParams) -> Vec<TapCols> {
    let (ow, s) = (p.out_w(), p.stride_w);
    (0..p.kw)
        .map(|j| {
            let (lo, hi) = valid_range(j, p.pad_w, s, p.w, ow);
            let (r, m) = tap_phase(j, p.pad_w, s);
            let start = if hi > lo {
                (lo as isize + m) as usize
            } else {
                0
            };
            TapCols { lo, hi, r, start }
        })
        .collect()
}

/// Forward: `out[n,c,y,x] = bias[c] + Σ_{i,j} w[c,0,i,j]·x[n,c,y·s_h+i−p_h, x·s_w+j−p_w]`.
pub(super) fn forward<T: Float>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let (oh, ow, hw, kk) = (p.out_h(), p.out_w(), p.h * p.w, p.kh * p.kw);
    if oh * ow == 0 {
        return;
    }
    let level = SimdLevel::current();
    let cols = &tap_cols(p);
    out.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each_init(Vec::new, |buf, (plane, o)| {
            let c = plane % p.c_in;
            let (src, wp) = phases(p, &input[plane * hw..][..hw], buf);
            let w = &weight[c * kk..][..kk];
            let b = bias.map_or(T::ZERO, |b| b[c]);
            run_plane(
                level,
                Plane::Fwd {
                    p,
                    src,
                    wp,
                    w,
                    b,
                    o,
                    cols,
                },
            );
        });
}

/// Input gradient: every output gradient scattered back through its taps, one plane per task
/// (the planes are disjoint, so no conflicts).
pub(super) fn backward_input<T: Float>(
    p: &Conv2dParams,
    grad_out: &[T],
    weight: &[T],
    grad_in: &mut [T],
) {
    let (oh, ow, hw, kk) = (p.out_h(), p.out_w(), p.h * p.w, p.kh * p.kw);
    let level = SimdLevel::current();
    let cols = &tap_cols(p);
    grad_in
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(plane, gi)| {
            gi.fill(T::ZERO);
            let c = plane % p.c_in;
            let g = &grad_out[plane * oh * ow..][..oh * ow];
            let w = &weight[c * kk..][..kk];
            run_plane(level, Plane::Bwd { p, g, w, gi, cols });
        });
}

/// One (n, c) plane's work, for [`run_plane`].
enum Plane<'a, T> {
    /// Forward: output plane `o` (OH×OW) from the phase-split input `src` (rows of `wp`),
    /// the channel's `w` (KH·KW) and bias `b`.
    Fwd {
        p: &'a Conv2dParams,
        src: &'a [T],
        wp: usize,
        w: &'a [T],
        b: T,
        o: &'a mut [T],
        /// Per tap column j: [`TapCols`].
        cols: &'a [TapCols],
    },
    /// Input gradient: adds output gradient `g` (OH×OW) through the taps `w` into `gi` (H×W).
    Bwd {
        p: &'a Conv2dParams,
        g: &'a [T],
        w: &'a [T],
        gi: &'a mut [T],
        /// Per tap column j: [`TapCols`] (only `lo..hi` is read).
        cols: &'a [TapCols],
    },
}

/// `job` compiled for `level` (capped at this CPU's): named `#[target_feature]` functions with
/// the inlined body, not a closure given to `SimdLevel::run` (such a closure, not inlined, ran
/// as SSE2: `mulps`/`addps` on xmm in `perf annotate`).
fn run_plane<T: Float>(level: SimdLevel, job: Plane<'_, T>) {
    #[cfg(target_arch = "x86_64")]
    match level.min(SimdLevel::detected()) {
        // SAFETY: capped at the level detected on this CPU.
        SimdLevel::Avx512 => return unsafe { plane_avx512(job) },
        SimdLevel::Avx2Fma => return unsafe { plane_avx2(job) },
        SimdLevel::Portable => {}
    }
    plane(job)
}

/// [`plane`] with AVX-512F.
///
/// # Safety
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane_avx512<T: Float>(job: Plane<'_, T>) {
    plane(job)
}

/// [`plane`] with AVX2 and FMA.
///
/// # Safety
/// AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn plane_avx2<T: Float>(job: Plane<'_, T>) {
    plane(job)
}

/// The per-plane loops of [`forward`] and [`backward_input`].
#[inline(always)]
fn plane<T: Float>(job: Plane<'_, T>) {
    match job {
        Plane::Fwd {
            p,
            src,
            wp,
            w,
            b,
            o,
            cols,
        } => {
            let (ow, s) = (p.out_w(), p.stride_w);
            for (oy, orow) in o.chunks_exact_mut(ow).enumerate() {
                orow.fill(b);
                for i in 0..p.kh {
                    let Some(iy) = (oy * p.stride_h + i).checked_sub(p.pad_h) else {
                        continue;
                    };
                    if iy >= p.h {
                        continue;
                    }
                    for (j, &TapCols { lo, hi, r, start }) in cols.iter().enumerate() {
                        if hi <= lo {
                            continue;
                        }
                        let row = &src[(iy * s + r) * wp..][..wp];
                        axpy(
                            &mut orow[lo..hi],
                            w[i * p.kw + j],
                            &row[start..start + hi - lo],
                        );
                    }
                }
            }
        }
        Plane::Bwd { p, g, w, gi, cols } => {
            let (ow, sh, sw) = (p.out_w(), p.stride_h, p.stride_w);
            for (oy, grow) in g.chunks_exact(ow).enumerate() {
                for i in 0..p.kh {
                    let Some(iy) = (oy * sh + i).checked_sub(p.pad_h) else {
                        continue;
                    };
                    if iy >= p.h {
                        continue;
                    }
                    let dst = &mut gi[iy * p.w..][..p.w];
                    for (j, &TapCols { lo, hi, .. }) in cols.iter().enumerate() {
                        let a = w[i * p.kw + j];
                        if sw == 1 {
                            let start = lo + j - p.pad_w;
                            axpy(&mut dst[start..start + hi - lo], a, &grow[lo..hi]);
                        } else {
                            for ox in lo..hi {
                                dst[ox * sw + j - p.pad_w] += a * grow[ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Weight gradient: `gw[c,0,i,j] = Σ_{n,y,x} g[n,c,y,x]·x[n,c,y·s_h+i−p_h, x·s_w+j−p_w]`,
/// one channel per task (summed over the batch in image order).
pub(super) fn backward_weight<T: Float>(
    p: &Conv2dParams,
    input: &[T],
    grad_out: &[T],
    grad_w: &mut [T],
) {
    let (oh, ow, hw, kk) = (p.out_h(), p.out_w(), p.h * p.w, p.kh * p.kw);
    let s = p.stride_w;
    let cols = &tap_cols(p);
    grad_w.par_chunks_mut(kk).enumerate().for_each(|(c, gw)| {
        let mut acc = vec![0.0f64; kk];
        let mut buf = Vec::new();
        for img in 0..p.n {
            let plane = img * p.c_in + c;
            let (src, wp) = phases(p, &input[plane * hw..][..hw], &mut buf);
            let g = &grad_out[plane * oh * ow..][..oh * ow];
            for (oy, grow) in g.chunks_exact(ow).enumerate() {
                for i in 0..p.kh {
                    let Some(iy) = (oy * p.stride_h + i).checked_sub(p.pad_h) else {
                        continue;
                    };
                    if iy >= p.h {
                        continue;
                    }
                    for (j, &TapCols { lo, hi, r, start }) in cols.iter().enumerate() {
                        if hi <= lo {
                            continue;
                        }
                        let row = &src[(iy * s + r) * wp..][..wp];
                        let dot: T = grow[lo..hi]
                            .iter()
                            .zip(&row[start..start + hi - lo])
                            .map(|(&a, &b)| a * b)
                            .sum();
                        acc[i * p.kw + j] += dot.to_f64();
                    }
                }
            }
        }
        for (d, a) in gw.iter_mut().zip(acc) {
            *d = T::from_f64(a);
        }
    });
}
