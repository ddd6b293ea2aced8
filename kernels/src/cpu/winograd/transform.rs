//! The generic (any tile size, any element type) input and output transforms over a block of
//! tiles: sparse-row combinations vectorised across tiles. On x86-64 they hand F(4×4) on f32
//! to the AVX-512 or AVX2 code in [`transform_x86`](super::transform_x86).

use super::driver::{Geom, Scratch, Unrolled};
#[cfg(target_arch = "x86_64")]
use super::transform_x86::{
    gather4_avx512, input4_avx2, input4_avx512, output4_avx2, output4_avx512, scatter4_avx512,
};
use crate::cpu::packed_gemm::NR;
use crate::cpu::Float;

/// What the output transform adds after `Aᵀ M A`: the channel's bias, then ReLU if asked.
#[derive(Clone, Copy)]
pub(super) struct Epilogue<T> {
    pub(super) bias: T,
    pub(super) relu: bool,
}

/// The tiles t0..t0+p split into runs within one row of tiles: (first j, tile row, first tile
/// column, run length).
fn tile_runs(t0: usize, p: usize, tw: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut j = 0;
    std::iter::from_fn(move || {
        if j >= p {
            return None;
        }
        let t = t0 + j;
        let (ty, tx0) = (t / tw, t % tw);
        let len = (tw - tx0).min(p - j);
        let run = (j, ty, tx0, len);
        j += len;
        Some(run)
    })
}

/// `dst[j] = Σ (coef · src_row_i[j])` over a sparse row: the transforms' inner loop, over tiles.
#[inline(always)]
fn combine<T: Float>(
    dst: &mut [T],
    row: &[(usize, T)],
    src: impl Fn(usize) -> usize,
    buf: &[T],
    p: usize,
) {
    let dst = &mut dst[..p];
    match row {
        [(i, c0)] => {
            let s0 = &buf[src(*i)..][..p];
            for (d, &x) in dst.iter_mut().zip(s0) {
                *d = *c0 * x;
            }
        }
        [(i0, c0), (i1, c1)] => {
            let (s0, s1) = (&buf[src(*i0)..][..p], &buf[src(*i1)..][..p]);
            for ((d, &x), &y) in dst.iter_mut().zip(s0).zip(s1) {
                *d = *c0 * x + *c1 * y;
            }
        }
        [(i0, c0), (i1, c1), (i2, c2)] => {
            let (s0, s1, s2) = (
                &buf[src(*i0)..][..p],
                &buf[src(*i1)..][..p],
                &buf[src(*i2)..][..p],
            );
            for (((d, &x), &y), &z) in dst.iter_mut().zip(s0).zip(s1).zip(s2) {
                *d = *c0 * x + *c1 * y + *c2 * z;
            }
        }
        [(i0, c0), (i1, c1), (i2, c2), (i3, c3)] => {
            let (s0, s1, s2, s3) = (
                &buf[src(*i0)..][..p],
                &buf[src(*i1)..][..p],
                &buf[src(*i2)..][..p],
                &buf[src(*i3)..][..p],
            );
            for ((((d, &x), &y), &z), &u) in dst.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3) {
                *d = *c0 * x + *c1 * y + *c2 * z + *c3 * u;
            }
        }
        [(i0, c0), (i1, c1), (i2, c2), (i3, c3), (i4, c4)] => {
            let (s0, s1, s2, s3, s4) = (
                &buf[src(*i0)..][..p],
                &buf[src(*i1)..][..p],
                &buf[src(*i2)..][..p],
                &buf[src(*i3)..][..p],
                &buf[src(*i4)..][..p],
            );
            let it = dst.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3).zip(s4);
            for (((((d, &x), &y), &z), &u), &v) in it {
                *d = *c0 * x + *c1 * y + *c2 * z + *c3 * u + *c4 * v;
            }
        }
        _ => {
            dst.fill(T::ZERO);
            for &(i, coef) in row {
                for (d, &x) in dst.iter_mut().zip(&buf[src(i)..][..p]) {
                    *d += coef * x;
                }
            }
        }
    }
}

/// For one input channel: `out(ξ, grp)[j] = (Bᵀ d B)[ξ]` for tile t0 + grp·NR + j (j < NR;
/// lanes past the block's p tiles hold stale finite values that no output reads), d the a×a
/// patch whose top-left corner is (ty·m − 1, tx·m − 1), zero outside the image; with
/// `g.reflect` the padding row and column on each side mirror the image (row −1 is row 1, row
/// H is row H − 2) and only what lies further out, read by no kept output, is zero.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn input_transform<'v, T: Float + 'v>(
    plane: &[T],
    mask: Option<&[T]>,
    g: &Geom,
    bt: &[Vec<(usize, T)>],
    t0: usize,
    p: usize,
    s: &mut Scratch<T>,
    out: impl Fn(usize, usize) -> &'v mut [T],
) {
    let (h, w, m, a) = (g.h, g.w, g.m, g.a);
    let pb = s.d.len() / (a * a);
    let tw = w.div_ceil(m);
    // d[r][q][j] = padded input (y0 + r − 1, x0 + q − 1): per run of tiles in one tile row,
    // copy each needed image row once (zero-padded), then gather with stride m.
    for (j, ty, tx0, len) in tile_runs(t0, p, tw) {
        let span = len * m + 2;
        // 64 floats of slack: the vector gather reads a little past the span.
        s.row.resize((span + 64).max(s.row.len()), T::ZERO);
        let x_start = (tx0 * m) as isize - 1;
        for r in 0..a {
            let mut yy = (ty * m + r).wrapping_sub(1);
            if g.reflect && (yy == usize::MAX || yy == h) {
                yy = if yy == h { h - 2 } else { 1 };
            }
            let rb = &mut s.row[..span];
            if yy < h {
                let src = &plane[yy * w..(yy + 1) * w];
                // rb[i] = src[x_start + i] where 0 ≤ x_start + i < w, else 0.
                let lo = (-x_start).max(0) as usize;
                let hi = ((w as isize - x_start).max(0) as usize).min(span);
                rb[..lo.min(span)].fill(T::ZERO);
                if hi > lo {
                    let x0 = (x_start + lo as isize) as usize;
                    let src = &src[x0..x0 + (hi - lo)];
                    match mask {
                        // The input where the mask is positive, else 0 (a ReLU's backward).
                        Some(mk) => {
                            let mk = &mk[yy * w + x0..][..hi - lo];
                            for ((d, &v), &k) in rb[lo..hi].iter_mut().zip(src).zip(mk) {
                                *d = if k > T::ZERO { v } else { T::ZERO };
                            }
                        }
                        None => rb[lo..hi].copy_from_slice(src),
                    }
                }
                rb[hi.max(lo)..].fill(T::ZERO);
                if g.reflect {
                    // Columns −1 and W, where the span reaches them.
                    if lo == 1 {
                        rb[0] = src[1];
                    }
                    if hi < span && x_start + hi as isize == w as isize {
                        rb[hi] = src[w - 2];
                    }
                }
            } else {
                rb.fill(T::ZERO);
            }
            #[cfg(target_arch = "x86_64")]
            if g.x4 == Unrolled::Avx512 {
                let d = s.d.as_mut_ptr() as *mut f32;
                let dst = std::array::from_fn(|q| unsafe { d.add((r * a + q) * pb + j) });
                // SAFETY: AVX-512 detected (x4), T is f32, `row` holds span + 64 floats,
                // the six destinations are distinct rows of d, each with len ≤ pb − j floats.
                unsafe { gather4_avx512(s.row.as_ptr() as *const f32, len, dst) };
                continue;
            }
            for q in 0..a {
                let dst = &mut s.d[(r * a + q) * pb + j..][..len];
                for (jj, d) in dst.iter_mut().enumerate() {
                    *d = rb[jj * m + q];
                }
            }
        }
    }
    let groups = p.div_ceil(NR);
    let pp = groups * NR;
    #[cfg(target_arch = "x86_64")]
    if g.x4 != Unrolled::No {
        let d = s.d.as_ptr() as *const f32;
        // 16 tiles per call at both levels (AVX2: two ymm).
        let lanes = 16;
        for grp in 0..groups {
            let mut rows = [std::ptr::null_mut::<f32>(); 36];
            for (xi, r) in rows.iter_mut().enumerate() {
                *r = out(xi, grp).as_mut_ptr() as *mut f32;
            }
            for off in (0..NR).step_by(lanes) {
                // SAFETY: the level's instruction set detected (x4), T is f32; d has a² rows
                // of pb floats and grp·NR + off + lanes ≤ ⌈p/NR⌉·NR ≤ pb (pb is a multiple of
                // NR); each panel row holds NR floats, of which this writes `lanes` from off.
                unsafe {
                    let dj = d.add(grp * NR + off);
                    match (g.x4, g.mirror) {
                        (Unrolled::Avx512, true) => input4_avx512::<true>(dj, pb, &rows, off),
                        (Unrolled::Avx512, false) => input4_avx512::<false>(dj, pb, &rows, off),
                        (_, true) => input4_avx2::<true>(dj, pb, &rows, off),
                        (_, false) => input4_avx2::<false>(dj, pb, &rows, off),
                    }
                }
            }
        }
        return;
    }
    s.tmp.resize(a * a * pb, T::ZERO);
    // tmp[r][q] = Σ_i Bᵀ[r][i] d[i][q]
    for (r, row) in bt.iter().enumerate() {
        for q in 0..a {
            combine(
                &mut s.tmp[(r * a + q) * pb..],
                row,
                |i| (i * a + q) * pb,
                &s.d,
                pp,
            );
        }
    }
    // V[r][q] = Σ_i tmp[r][i] Bᵀ[q][i], NR tiles at a time into the panels.
    for r in 0..a {
        for (q, row) in bt.iter().enumerate() {
            for grp in 0..groups {
                combine(
                    out(r * a + q, grp),
                    row,
                    |i| (r * a + i) * pb + grp * NR,
                    &s.tmp,
                    NR,
                );
            }
        }
    }
}

/// For output channel `ko` (row ko of each M[ξ]: rows of `pb`, M[ξ] at `ξ·xs` in `mm`): its
/// plane's tiles t0..t0+p = Aᵀ M A + bias, clipped at the edges.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn output_transform<T: Float>(
    mm: &[T],
    xs: usize,
    ko: usize,
    g: &Geom,
    at: &[Vec<(usize, T)>],
    t0: usize,
    p: usize,
    pb: usize,
    e: Epilogue<T>,
    s: &mut Scratch<T>,
    plane: &mut [T],
) {
    let (h, w, m, a) = (g.h, g.w, g.m, g.a);
    let tw = w.div_ceil(m);
    let mut fused = false;
    #[cfg(target_arch = "x86_64")]
    if g.x4 != Unrolled::No {
        fused = true;
        let (mp, d) = (mm.as_ptr() as *const f32, s.d.as_mut_ptr() as *mut f32);
        // 16 tiles per call at both levels (AVX2: two ymm).
        let lanes = 16;
        for j in (0..p).step_by(lanes) {
            // SAFETY: the level's instruction set detected (x4), T is f32; M[ξ] rows and d's
            // rows hold pb floats, pb a multiple of NR (of 16), so j + lanes ≤ pb (lanes past p
            // are never scattered).
            unsafe {
                let (mj, dj) = (mp.add(ko * pb + j), d.add(j));
                match (g.x4, g.mirror) {
                    (Unrolled::Avx512, true) => output4_avx512::<true>(mj, xs, dj, pb),
                    (Unrolled::Avx512, false) => output4_avx512::<false>(mj, xs, dj, pb),
                    (_, true) => output4_avx2::<true>(mj, xs, dj, pb),
                    (_, false) => output4_avx2::<false>(mj, xs, dj, pb),
                }
            }
        }
    }
    if !fused {
        s.tmp.resize(a * a * pb, T::ZERO);
        // tmp[r][q] = Σ_i Aᵀ[r][i] M[i][q]   (r < m)
        for (r, row) in at.iter().enumerate() {
            for q in 0..a {
                combine(
                    &mut s.tmp[(r * a + q) * pb..],
                    row,
                    |i| (i * a + q) * xs + ko * pb,
                    mm,
                    p,
                );
            }
        }
        // d[r][q] = Σ_i tmp[r][i] Aᵀ[q][i]   (r, q < m)
        for r in 0..m {
            for (q, row) in at.iter().enumerate() {
                combine(
                    &mut s.d[(r * m + q) * pb..],
                    row,
                    |i| (r * a + i) * pb,
                    &s.tmp,
                    p,
                );
            }
        }
    }
    // Per run of tiles in one tile row: interleave each output row (stride m), then copy it
    // into the plane, clipped at the right and bottom edges.
    for (j, ty, tx0, len) in tile_runs(t0, p, tw) {
        let span = len * m;
        s.row.resize(span.max(s.row.len()), T::ZERO);
        let (y0, x0) = (ty * m, tx0 * m);
        let cols = span.min(w - x0);
        for r in 0..m.min(h - y0) {
            #[cfg(target_arch = "x86_64")]
            if g.x4 == Unrolled::Avx512 {
                let d = s.d.as_ptr() as *const f32;
                let src = std::array::from_fn(|q| unsafe { d.add((r * m + q) * pb + j) });
                let bias: f32 = e.bias.to_f64() as f32;
                // Unclipped rows go straight into the plane, clipped ones through `row`.
                let dst_row = &mut plane[(y0 + r) * w + x0..][..cols];
                let dst = if cols == span {
                    dst_row.as_mut_ptr() as *mut f32
                } else {
                    s.row.as_mut_ptr() as *mut f32
                };
                // SAFETY: AVX-512 detected (x4), T is f32, `dst` holds span floats (the
                // plane's row from x0 when cols == span, else `row`), the four sources are
                // rows of d with len ≤ pb − j floats each.
                unsafe { scatter4_avx512(src, len, bias, e.relu, dst) };
                if cols < span {
                    dst_row.copy_from_slice(&s.row[..cols]);
                }
                continue;
            }
            let rb = &mut s.row[..span];
            for q in 0..m {
                let src = &s.d[(r * m + q) * pb + j..][..len];
                if e.relu {
                    for (jj, &v) in src.iter().enumerate() {
                        let y = v + e.bias;
                        rb[jj * m + q] = if y > T::ZERO { y } else { T::ZERO };
                    }
                } else {
                    for (jj, &v) in src.iter().enumerate() {
                        rb[jj * m + q] = v + e.bias;
                    }
                }
            }
            plane[(y0 + r) * w + x0..][..cols].copy_from_slice(&rb[..cols]);
        }
    }
}
