//! conv2d input gradient for few input channels (VGG-19's conv1_1: 3 ← 64) through packed
//! panels and the Winograd GEMM micro-kernel ([`packed_gemm`]), with a ReLU mask applied on
//! the way in. Per NR = 32 pixels of one output row: the C_out × NR panel of the output
//! gradient (times `[mask > 0]`) is copied into a per-task buffer (in L1), multiplied by Wᵀ
//! (K = C_in·KH·KW rows, packed once), and the K × NR result added into the input gradient
//! (col2im) straight away. Against im2col + GEMM per band (a masked copy of the whole output
//! gradient, the GEMM's own packed copy of it, a K × band column buffer, then col2im), nothing
//! the size of the image is written besides the result.
//!
//! Parallel over bands of output rows in two phases (even bands, then odd ones): a band of
//! `band` rows adds into `band + KH − 1` input rows, so bands two apart never touch the same
//! row when `band ≥ KH − 1`.

use super::{block_starts, Conv2dParams};
use crate::cpu::packed_gemm::{self, MR, NR};
use crate::cpu::simd::SimdLevel;
use crate::cpu::{is_f32, prefetch, Float, SendPtr};
use rayon::prelude::*;

/// The most rows K = C_in·KH·KW this path takes (the micro-kernel's M is K padded to MR).
const MAX_K: usize = 64;

/// Whether [`backward_input`] runs this input gradient: one group, stride 1, f32 with a SIMD
/// level, K ≤ [`MAX_K`], C_out a multiple of MR, OW ≥ NR.
pub(super) fn applies<T: Float>(p: &Conv2dParams) -> bool {
    is_f32::<T>()
        && SimdLevel::current() != SimdLevel::Portable
        && p.groups == 1
        && p.stride_h == 1
        && p.stride_w == 1
        && p.c_in * p.kh * p.kw <= MAX_K
        && p.c_out.is_multiple_of(MR)
        && p.c_out > 0
        && p.out_w() >= NR
        && p.out_h() > 0
}

/// `grad_in = ∂L/∂input` for `grad_out · [mask > 0]` (`mask`: e.g. the output of the ReLU
/// that follows the convolution; `None`: `grad_out` as it is). `grad_in` is overwritten.
/// `applies(p)` holds; lengths checked by the caller.
pub(super) fn backward_input<T: Float>(
    p: &Conv2dParams,
    grad_out: &[T],
    mask: Option<&[T]>,
    weight: &[T],
    grad_in: &mut [T],
) {
    assert!(applies::<T>(p), "panel conv2d input gradient: {p:?}");
    let (oh, ow) = (p.out_h(), p.out_w());
    let k = p.c_in * p.kh * p.kw;
    let kp = k.div_ceil(MR) * MR;
    // Wᵀ (K × C_out), packed into MR-row panels (rows past K zero).
    let mut wt = vec![T::ZERO; k * p.c_out];
    for (r, row) in wt.chunks_exact_mut(p.c_out).enumerate() {
        for (o, v) in row.iter_mut().enumerate() {
            *v = weight[o * k + r];
        }
    }
    let mut u = vec![T::ZERO; kp * p.c_out];
    packed_gemm::pack_u(&wt, k, p.c_out, &mut u);
    let level = SimdLevel::current();
    grad_in.fill(T::ZERO);
    let gi = &SendPtr(grad_in.as_mut_ptr());
    let starts: Vec<usize> = block_starts(ow, NR).collect();
    let band = p.kh.max(4);
    let bands = oh.div_ceil(band);
    let (in_per, out_per) = (p.c_in * p.h * p.w, p.c_out * oh * ow);
    for img in 0..p.n {
        let go = &grad_out[img * out_per..(img + 1) * out_per];
        let mk = mask.map(|m| &m[img * out_per..(img + 1) * out_per]);
        for phase in 0..2 {
            (phase..bands).into_par_iter().step_by(2).for_each_init(
                || (vec![T::ZERO; p.c_out * NR], [T::ZERO; MR * NR]),
                |(v, m), b| {
                    for oy in b * band..((b + 1) * band).min(oh) {
                        let mut done = 0usize; // pixels of row oy already added
                        for &x0 in &starts {
                            fill(p, go, mk, oy, x0, v);
                            for rb in 0..kp / MR {
                                packed_gemm::kernel(
                                    level,
                                    p.c_out,
                                    &u[rb * p.c_out * MR..],
                                    v,
                                    m,
                                    NR,
                                );
                                // SAFETY: this band's input rows belong to this task in
                                // this phase (module doc); image img's planes.
                                let dst = unsafe { { gi }.0.add(img * in_per) };
                                unsafe { col2im(p, m, rb, oy, x0, done.saturating_sub(x0), dst) };
                            }
                            done = x0 + NR;
                        }
                    }
                },
            );
        }
    }
}

/// `v[o·NR + t] = grad_out[o, oy, x0 + t]` (times `[mask > 0]`) for every output channel o.
#[inline(always)]
fn fill<T: Float>(p: &Conv2dParams, go: &[T], mk: Option<&[T]>, oy: usize, x0: usize, v: &mut [T]) {
    let plane = p.out_h() * p.out_w();
    let at = oy * p.out_w() + x0;
    // The C_out rows lie a plane apart (a multiple of 4 KiB at VGG's sizes): no hardware
    // prefetcher follows them, so the panel two ahead in this row is asked for here.
    let ahead = (x0 + 3 * NR <= p.out_w()).then_some(at + 2 * NR);
    for (o, d) in v.chunks_exact_mut(NR).enumerate() {
        if let Some(a) = ahead {
            prefetch(go[o * plane + a..][..NR].as_ptr(), NR);
            if let Some(mk) = mk {
                prefetch(mk[o * plane + a..][..NR].as_ptr(), NR);
            }
        }
        let g = &go[o * plane + at..][..NR];
        match mk {
            Some(mk) => {
                let mk = &mk[o * plane + at..][..NR];
                for ((d, &g), &y) in d.iter_mut().zip(g).zip(mk) {
                    *d = if y > T::ZERO { g } else { T::ZERO };
                }
            }
            None => d.copy_from_slice(g),
        }
    }
}

/// Adds rows `rb·MR..` of the K × NR product `m` (rows r = (c, i, j)) into the input gradient
/// of one image at `dst`: `dst[c, oy + i − p_h, x0 + t + j − p_w] += m[r][t]` for t ≥ `from`
/// (pixels before it were added with an earlier, overlapping panel) and inside the image.
///
/// # Safety
/// `dst` writable for the image's C_in·H·W floats, and no other thread writes the rows touched.
#[inline(always)]
unsafe fn col2im<T: Float>(
    p: &Conv2dParams,
    m: &[T],
    rb: usize,
    oy: usize,
    x0: usize,
    from: usize,
    dst: *mut T,
) {
    let k = p.c_in * p.kh * p.kw;
    for (r, mr) in m.chunks_exact(NR).enumerate() {
        let rr = rb * MR + r;
        if rr >= k {
            break;
        }
        let (c, i, j) = (rr / (p.kh * p.kw), rr / p.kw % p.kh, rr % p.kw);
        let Some(iy) = (oy + i).checked_sub(p.pad_h).filter(|&iy| iy < p.h) else {
            continue;
        };
        // Input column x0 + t + j − p_w: t from max(from, p_w − x0 − j) to below
        // min(NR, W + p_w − x0 − j).
        let lo = from.max((p.pad_w).saturating_sub(x0 + j));
        let hi = NR.min((p.w + p.pad_w).saturating_sub(x0 + j));
        if lo >= hi {
            continue;
        }
        let row = dst.add((c * p.h + iy) * p.w + x0 + j + lo - p.pad_w);
        let d = std::slice::from_raw_parts_mut(row, hi - lo);
        for (d, &s) in d.iter_mut().zip(&mr[lo..hi]) {
            *d += s;
        }
    }
}
