//! conv2d forward as im2col into packed panels + the Winograd GEMM micro-kernel
//! ([`packed_gemm`]): for each NR = 32 output pixels of one output row, the K×NR im2col panel
//! (K = C_in·KH·KW, plus a row of ones that carries the bias) is written straight into the
//! micro-kernel's V layout in a per-task buffer (K·NR floats: 31 KiB for 9×9×3, in L1/L2) and
//! multiplied by the weights, packed once per call into MR = 8-row panels. Unlike im2col of a
//! band + a general GEMM, nothing the size of the image is written or packed twice: the 9×9
//! 3→32 / 3→8 layers and the stride-2 3×3 layers of the style networks at 1024 px were
//! memory-bound there. Parallel over output rows.
//!
//! Used for one-group convolutions with C_out a multiple of MR and OW ≥ NR (narrower outputs
//! keep the band path: a panel must lie inside one output row).

use super::{source_index, Conv2dParams};
use crate::cpu::packed_gemm::{self, MR, NR};
use crate::cpu::simd::SimdLevel;
use crate::cpu::spatial::PadMode;
use crate::cpu::{is_f32, prefetch, Float, SendPtr};
use rayon::prelude::*;

/// Whether [`forward`] runs this convolution.
pub(super) fn applies(p: &Conv2dParams) -> bool {
    p.groups == 1 && p.c_out.is_multiple_of(MR) && p.c_out > 0 && p.out_w() >= NR && p.out_h() > 0
}

/// `out[n,o,y,x] = bias[o] + Σ_{c,i,j} w[o,c,i,j]·x[n,c,y·s_h+i−p_h, x·s_w+j−p_w]` (zero
/// outside the input, or mirrored with `p.pad_mode` reflect; then `max(0, ·)` when `relu`;
/// `applies(p)` holds; lengths checked by the caller).
pub(super) fn forward<T: Float>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    relu: bool,
) {
    assert!(applies(p), "panel conv2d: {p:?}");
    let (oh, ow) = (p.out_h(), p.out_w());
    let k = p.c_in * p.kh * p.kw;
    // K + 1 rows: the last is the bias (times a row of ones in V).
    let k1 = k + 1;
    let mut wb = vec![T::ZERO; p.c_out * k1];
    for (o, row) in wb.chunks_exact_mut(k1).enumerate() {
        row[..k].copy_from_slice(&weight[o * k..(o + 1) * k]);
        row[k] = bias.map_or(T::ZERO, |b| b[o]);
    }
    let mut u = vec![T::ZERO; p.c_out * k1];
    packed_gemm::pack_u(&wb, p.c_out, k1, &mut u);
    let level = SimdLevel::current();
    let dst = &SendPtr(out.as_mut_ptr());
    let in_per = p.c_in * p.h * p.w;
    let starts: Vec<usize> = super::block_starts(ow, NR).collect();
    // Each panel row's valid span depends on (start, j) only: computed once here (two integer
    // divisions each, which cost as much as the fill itself when done per row).
    let spans: Vec<Span> = starts
        .iter()
        .flat_map(|&x0| (0..p.kw).map(move |j| row_span(p, j, x0)))
        .collect();
    // Panels of one output row in chunks of about PANEL_CHUNK_BYTES: all of a chunk's panels are
    // filled, then each block of MR output channels runs over them, so the stores go to MR
    // channel planes at a time, along the row (64 planes at once, per panel, left the
    // hardware prefetchers behind: conv1_1's 50 MB output at 512 px).
    let per_panel = k1 * NR;
    let chunk = (PANEL_CHUNK_BYTES / (per_panel * std::mem::size_of::<T>())).clamp(1, starts.len());
    (0..p.n * oh).into_par_iter().for_each_init(
        || {
            // Each panel's last row is the bias's row of ones; fill_panel writes the K above.
            let mut v = vec![T::ZERO; chunk * per_panel];
            for pv in v.chunks_exact_mut(per_panel) {
                pv[k * NR..].fill(T::ONE);
            }
            (v, [T::ZERO; MR * NR])
        },
        |(v, m), row| {
            let (img, y) = (row / oh, row % oh);
            let x = &input[img * in_per..(img + 1) * in_per];
            level.run(
                #[inline(always)]
                || {
                    for c0 in (0..starts.len()).step_by(chunk) {
                        let cs = &starts[c0..(c0 + chunk).min(starts.len())];
                        for (ci, pv) in v.chunks_exact_mut(per_panel).take(cs.len()).enumerate() {
                            let sp = &spans[(c0 + ci) * p.kw..][..p.kw];
                            fill_panel(p, x, y, sp, &mut pv[..k * NR]);
                        }
                        for ob in 0..p.c_out / MR {
                            let u = &u[ob * k1 * MR..];
                            for (&x0, pv) in cs.iter().zip(v.chunks_exact(per_panel)) {
                                packed_gemm::kernel(level, k1, u, pv, m, NR);
                                for (r, mr) in m.chunks_exact(NR).enumerate() {
                                    let at = ((img * p.c_out + ob * MR + r) * oh + y) * ow + x0;
                                    // SAFETY: row y of channel ob·MR + r of image img, pixels
                                    // [x0, x0 + NR) ⊂ [0, OW): only this task writes row
                                    // (img, y); overlapping panels of one row are written in
                                    // turn by this task, with the same values.
                                    let d = unsafe {
                                        std::slice::from_raw_parts_mut(dst.0.add(at), NR)
                                    };
                                    if relu {
                                        for (d, &v) in d.iter_mut().zip(mr.iter()) {
                                            *d = v.max(T::ZERO);
                                        }
                                    } else {
                                        d.copy_from_slice(mr);
                                    }
                                }
                            }
                        }
                    }
                },
            )
        },
    );
}

/// About how many bytes of im2col panels [`forward`] fills before running the output
/// channels over them (in L1/L2: conv1_1's whole 512-px row of 16 panels is 57 KB).
const PANEL_CHUNK_BYTES: usize = 64 << 10;

/// The im2col panel of output row `y`, pixels `[x0, x0 + NR)`: `v[r·NR + t]` for the K rows
/// `r = (c, i, j)` = `x[c, y·s_h + i − p_h, (x0 + t)·s_w + j − p_w]`, zero outside the image.
/// `spans[j]` = [`row_span`]`(p, j, x0)`.
#[inline(always)]
fn fill_panel<T: Float>(p: &Conv2dParams, x: &[T], y: usize, spans: &[Span], v: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if is_f32::<T>() && SimdLevel::current() == SimdLevel::Avx512 {
        // SAFETY: T is f32 (checked), so the casts are identities; AVX-512F is present.
        unsafe {
            let x = std::slice::from_raw_parts(x.as_ptr() as *const f32, x.len());
            let v = std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len());
            return fill_panel_avx512(p, x, y, spans, v);
        }
    }
    for_each_row(p, x, y, v, |src, j, d| fill_row(p, src, spans[j], d));
}

/// Calls `f(input row or None when outside, j, panel row)` for the K rows `(c, i, j)`.
#[inline(always)]
fn for_each_row<T: Float>(
    p: &Conv2dParams,
    x: &[T],
    y: usize,
    v: &mut [T],
    mut f: impl FnMut(Option<&[T]>, usize, &mut [T]),
) {
    let hw = p.h * p.w;
    let mut rows = v.chunks_exact_mut(NR);
    for c in 0..p.c_in {
        let xc = &x[c * hw..(c + 1) * hw];
        for i in 0..p.kh {
            let iy = (y * p.stride_h + i) as isize - p.pad_h as isize;
            let src = source_index(iy, p.h, p.pad_mode).map(|iy| &xc[iy * p.w..(iy + 1) * p.w]);
            for j in 0..p.kw {
                f(src, j, rows.next().expect("K rows"));
            }
        }
    }
}

/// A panel row's valid pixels `[t_lo, t_hi)` and the first one's input column.
type Span = (usize, usize, usize);

/// The [`Span`] of a panel row (tap column `j`, panel start `x0`).
fn row_span(p: &Conv2dParams, j: usize, x0: usize) -> Span {
    // Columns (x0 + t)·s + j − p: valid for t in [t_lo, t_hi).
    let first = x0 * p.stride_w + j;
    let t_lo = p.pad_w.saturating_sub(first).div_ceil(p.stride_w).min(NR);
    let t_hi = if p.w + p.pad_w > first {
        (p.w + p.pad_w - first).div_ceil(p.stride_w).min(NR)
    } else {
        0
    }
    .max(t_lo);
    // Wrapping: with reflect padding an empty span's column may lie left of the input.
    let s0 = (first + t_lo * p.stride_w).wrapping_sub(p.pad_w);
    (t_lo, t_hi, s0)
}

/// One panel row, any stride and padding.
#[inline(always)]
fn fill_row<T: Float>(p: &Conv2dParams, src: Option<&[T]>, span: Span, d: &mut [T]) {
    let Some(src) = src else {
        d.fill(T::ZERO);
        return;
    };
    let (t_lo, t_hi, s0) = span;
    if p.pad_mode == PadMode::Reflect {
        // Pixel t reads column s0 + (t − t_lo)·stride, mirrored into the row where outside.
        for t in (0..t_lo).chain(t_hi..NR) {
            let col = s0 as isize + (t as isize - t_lo as isize) * p.stride_w as isize;
            d[t] = src[source_index(col, p.w, PadMode::Reflect).expect("mirrored")];
        }
    } else {
        d[..t_lo].fill(T::ZERO);
        d[t_hi..].fill(T::ZERO);
    }
    for (t, dv) in d[t_lo..t_hi].iter_mut().enumerate() {
        *dv = src[s0 + t * p.stride_w];
    }
}

/// [`fill_panel`] for f32 with AVX-512: full rows of stride 1 as two vector moves, of stride 2
/// as four loads and two two-source permutes (even lanes); the rest as [`fill_row`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_panel_avx512(p: &Conv2dParams, x: &[f32], y: usize, spans: &[Span], v: &mut [f32]) {
    use std::arch::x86_64::*;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for_each_row(p, x, y, v, |src, j, d| {
        if let Some(src) = src {
            let (t_lo, t_hi, s0) = spans[j];
            if (t_lo, t_hi) == (0, NR) {
                let s = src[s0..].as_ptr();
                let dp = d.as_mut_ptr();
                if p.stride_w == 1 && s0 + NR <= src.len() {
                    // SAFETY: src[s0..s0 + 32] and d[..32] are in bounds (checked, NR = 32).
                    unsafe {
                        _mm512_storeu_ps(dp, _mm512_loadu_ps(s));
                        _mm512_storeu_ps(dp.add(16), _mm512_loadu_ps(s.add(16)));
                    }
                    return;
                }
                if p.stride_w == 2 && s0 + 2 * NR <= src.len() {
                    // The same row two panels on: channel planes lie far apart, past what the
                    // hardware prefetchers follow.
                    prefetch(s.wrapping_add(4 * NR), 2 * NR);
                    // SAFETY: src[s0..s0 + 64] and d[..32] are in bounds (checked).
                    unsafe {
                        for h in 0..2 {
                            let a = _mm512_loadu_ps(s.add(32 * h));
                            let b = _mm512_loadu_ps(s.add(32 * h + 16));
                            _mm512_storeu_ps(dp.add(16 * h), _mm512_permutex2var_ps(a, even, b));
                        }
                    }
                    return;
                }
            }
        }
        fill_row(p, src, spans[j], d)
    });
}
