//! The block driver: per block of tiles, the input transform (parallel over input channels),
//! one GEMM per transform point and the output transform (parallel over output channels),
//! with the per-thread scratch buffers and the geometry the transforms share.

use super::matrices::{mats, sparse_rows};
use super::transform::{input_transform, output_transform, Epilogue};
use super::WinogradWeights;
use crate::cpu::amx;
use crate::cpu::bf16::{self, Bf16Path, Precision};
use crate::cpu::buffers::{align_pad, aligned, BufferPool};
use crate::cpu::packed_gemm::{self, MR, NR};
use crate::cpu::simd::SimdLevel;
use crate::cpu::{is_f32, Float, SendPtr};
use rayon::prelude::*;

/// Tiles per block: as many as fit a working set (V and M) of `budget` bytes, rounded up to a
/// multiple of the micro-kernel's [`NR`] columns.
fn block_tiles(c: usize, k: usize, a: usize, tiles: usize, budget: usize) -> usize {
    let per_tile = a * a * (c + k) * std::mem::size_of::<f32>();
    let pb = (budget / per_tile.max(1)).max(64).min(tiles).max(1);
    pb.div_ceil(NR) * NR
}

/// Working-set budget for one block's V and M, in bytes. 8 MiB keeps a block's tiles in the
/// last-level cache between the input transform that writes them and the GEMMs that read
/// them: `nst-cli bench` at 512 px took 0.74–0.76 s/it with 8 MiB against 0.78–0.93 with
/// 24 MiB (alternated runs), at 256 px no slower, and peak RSS fell by ≈ 45 MB.
pub(super) const BLOCK_BUDGET: usize = 8 << 20;

/// The block budget the convolutions use: [`BLOCK_BUDGET`], or `NST_WINOGRAD_BLOCK_MIB` MiB
/// (1–256) where that environment variable is set, for measuring another CPU's best size
/// (an Intel Xeon has 2 MiB of L2 per core, this Zen 5 1 MiB) without a rebuild. Read once.
pub(super) fn block_budget() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("NST_WINOGRAD_BLOCK_MIB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|m| (1..=256).contains(m))
            .map_or(BLOCK_BUDGET, |m| m << 20)
    })
}

/// Elements (64 bytes of f32 or u32) between one transform point's V (or M) and the next,
/// beyond the point's own `depth·pb`: without them the 36 points' rows lie a multiple of 4 KiB
/// apart (C and pb are multiples of 32), so the input transform's 36 stores of one vector of
/// tiles and the output transform's 36 loads all fall in one cache set (12 ways in L1, 16 in
/// L2) and evict each other.
pub(super) const XI_PAD: usize = 16;

/// What [`winograd_impl`] computes besides the plain convolution.
#[derive(Clone, Copy)]
pub(super) struct Opts<'a, T> {
    /// Working-set budget for one block's V and M, in bytes (tests use a small one to run
    /// several blocks of tiles).
    pub(super) budget: usize,
    /// ReLU on the output.
    pub(super) relu: bool,
    /// The input is used where `mask > 0`, else 0.
    pub(super) mask: Option<&'a [T]>,
    /// The input gradient of the convolution `ww` describes (C←K, flipped weights), from the
    /// same packed U: the GEMMs read U transposed, and the tiles are mirrored (the input
    /// transform's Bᵀ with its columns reversed, the output's Aᵀ with its rows reversed), which
    /// turns correlation with `g` into correlation with the flipped `g`.
    pub(super) input_grad: bool,
    /// The padding mirrors the input (PyTorch's `padding_mode="reflect"`) instead of zeros.
    pub(super) reflect: bool,
}

impl<T> Opts<'_, T> {
    pub(super) fn plain() -> Self {
        Opts {
            budget: block_budget(),
            relu: false,
            mask: None,
            input_grad: false,
            reflect: false,
        }
    }
}

/// The convolution at instruction-set `level` (capped at what this CPU has), as `o` says.
#[allow(clippy::too_many_arguments)]
pub(super) fn winograd_impl<T: Float>(
    pool: &BufferPool,
    level: SimdLevel,
    ww: &WinogradWeights<T>,
    input: &[T],
    bias: Option<&[T]>,
    (n, h, w): (usize, usize, usize),
    out: &mut [T],
    o: Opts<'_, T>,
) {
    let level = level.min(SimdLevel::detected());
    // k: output channels of this call (rows of M), c: input channels (the GEMMs' depth).
    let (k, c, kp) = if o.input_grad {
        assert!(
            ww.shares_input_grad(),
            "winograd: K, C not multiples of {MR}"
        );
        (ww.c, ww.k, ww.c)
    } else {
        (ww.k, ww.c, ww.kp)
    };
    assert_eq!(input.len(), n * c * h * w, "winograd: input length");
    assert_eq!(out.len(), n * k * h * w, "winograd: output length");
    if let Some(b) = bias {
        assert_eq!(b.len(), k, "winograd: bias length");
    }
    if let Some(mk) = o.mask {
        assert_eq!(mk.len(), input.len(), "winograd: mask length");
    }
    assert!(
        !o.reflect || (o.mask.is_none() && !o.input_grad && h >= 2 && w >= 2),
        "winograd: reflect padding is for a forward on an input of at least 2×2"
    );
    let mt = mats(ww.tile);
    let (m, a) = (mt.m, mt.a);
    let tiles = h.div_ceil(m) * w.div_ceil(m);
    let (bt, at) = if o.input_grad {
        // Bᵀ with reversed columns, Aᵀ with reversed rows.
        let bt: Vec<f64> = (0..a * a)
            .map(|i| mt.bt[i / a * a + a - 1 - i % a])
            .collect();
        let at: Vec<f64> = (0..m * a)
            .map(|i| mt.at[(m - 1 - i / a) * a + i % a])
            .collect();
        (sparse_rows(&bt, a, a), sparse_rows(&at, m, a))
    } else {
        (sparse_rows(mt.bt, a, a), sparse_rows(mt.at, m, a))
    };
    let pb = block_tiles(c, k, a, tiles, o.budget);
    let groups = pb / NR;
    // The unrolled F(4×4) transforms on f32 (with AVX-512 also the strided gather/scatter).
    let x4 = match level {
        _ if m != 4 || !is_f32::<T>() => Unrolled::No,
        SimdLevel::Avx512 => Unrolled::Avx512,
        SimdLevel::Avx2Fma => Unrolled::Avx2,
        SimdLevel::Portable => Unrolled::No,
    };
    let mirror = o.input_grad;
    let g = Geom {
        h,
        w,
        m,
        a,
        x4,
        mirror,
        reflect: o.reflect,
    };
    // V[ξ][group][ci][NR] (the micro-kernel's panels); M[ξ][row < kp][pb].
    // Work buffers from the pool, not zeroed: every value read is written first (panel lanes
    // past the block's tiles and M rows past K hold stale values no output reads).
    // bf16 (T is f32 then): V holds channel pairs (u32), ⌈C/2⌉ rows per panel.
    let bf = Precision::Bf16 == if o.input_grad { ww.grad } else { ww.fwd };
    debug_assert!(
        !bf || is_f32::<T>(),
        "bf16 panels exist for f32 weights only"
    );
    let (path, c2) = (Bf16Path::at(level), c.div_ceil(2));
    // Per transform point ξ: V[ξ] (depth·pb), M[ξ] (kp·pb), each then XI_PAD apart.
    let (vs, vbs, ms) = (c * pb + XI_PAD, c2 * pb + XI_PAD, kp * pb + XI_PAD);
    let v_len = if bf { 0 } else { a * a * vs };
    let vb_len = if bf { a * a * vbs } else { 0 };
    // Each starts on a cache line (buffers::aligned): the panels' rows are 128-byte multiples.
    let mut v_buf = pool.scratch::<T>(v_len + align_pad::<T>());
    let mut vb_buf = pool.scratch::<u32>(vb_len + align_pad::<u32>());
    let mut mm_buf = pool.scratch::<T>(a * a * ms + align_pad::<T>());
    let v = aligned(&mut v_buf, v_len);
    let vb = aligned(&mut vb_buf, vb_len);
    let mm = aligned(&mut mm_buf, a * a * ms);
    for img in 0..n {
        let x = &input[img * c * h * w..(img + 1) * c * h * w];
        let y = &mut out[img * k * h * w..(img + 1) * k * h * w];
        for t0 in (0..tiles).step_by(pb) {
            let p = pb.min(tiles - t0);
            let used_groups = p.div_ceil(NR);
            let plane = |ci: usize| &x[ci * h * w..(ci + 1) * h * w];
            let mask = |ci: usize| o.mask.map(|m| &m[img * c * h * w + ci * h * w..][..h * w]);
            if bf {
                // Per channel pair: both channels' tiles in f32, then rounded into pair rows.
                let rows = a * a * groups;
                let vp = SendPtr(vb.as_mut_ptr());
                (0..c2).into_par_iter().for_each_init(
                    || (Scratch::new(a, pb), vec![T::ZERO; 2 * rows * NR]),
                    |(s, pairs), cp| {
                        let base = SendPtr(pairs.as_mut_ptr());
                        for (half, ci) in (2 * cp..(2 * cp + 2).min(c)).enumerate() {
                            // Disjoint NR-wide rows of this task's own buffer.
                            let row = |xi: usize, grp: usize| unsafe {
                                let at = ((half * a * a + xi) * groups + grp) * NR;
                                std::slice::from_raw_parts_mut({ base }.0.add(at), NR)
                            };
                            level.run(
                                #[inline(always)]
                                || input_transform(plane(ci), mask(ci), &g, &bt, t0, p, s, row),
                            );
                        }
                        // SAFETY: T is f32 (bf16 weights exist for f32 only).
                        let f = pairs.as_ptr() as *const f32;
                        for xi in 0..a * a {
                            for grp in 0..used_groups {
                                let r = xi * groups + grp;
                                let even = unsafe { std::slice::from_raw_parts(f.add(r * NR), NR) };
                                let odd = (2 * cp + 1 < c).then(|| unsafe {
                                    std::slice::from_raw_parts(f.add((rows + r) * NR), NR)
                                });
                                // Panel row (ξ, group, cp) is written by this pair's task only.
                                let dst = unsafe {
                                    std::slice::from_raw_parts_mut(
                                        { vp }.0.add(xi * vbs + (grp * c2 + cp) * NR),
                                        NR,
                                    )
                                };
                                bf16::pack_pairs(path, even, odd, dst);
                            }
                        }
                    },
                );
            } else {
                // Channels are independent; each writes its own rows of every panel.
                let vp = SendPtr(v.as_mut_ptr());
                (0..c).into_par_iter().for_each_init(
                    || Scratch::new(a, pb),
                    |s, ci| {
                        // Panel row (ξ, group, ci) is written by this channel's task only.
                        let row = |xi: usize, grp: usize| unsafe {
                            std::slice::from_raw_parts_mut(
                                { vp }.0.add(xi * vs + (grp * c + ci) * NR),
                                NR,
                            )
                        };
                        level.run(
                            #[inline(always)]
                            || input_transform(plane(ci), mask(ci), &g, &bt, t0, p, s, row),
                        );
                    },
                );
            }
            // M[ξ] = U[ξ] · V[ξ] (or U[ξ]ᵀ · V[ξ]): per transform point, MR rows × NR tiles
            // at a time. At most 16 tiles left in a panel: half the work (deep layers).
            let cols = |grp: usize| if p - grp * NR <= NR / 2 { NR / 2 } else { NR };
            if bf {
                // SAFETY: T is f32 (bf16 weights exist for f32 only).
                let mm32 = unsafe {
                    std::slice::from_raw_parts_mut(mm.as_mut_ptr() as *mut f32, mm.len())
                };
                // Per ξ: kp × C2 pairs (input gradient: C × K/2 of Uᵀ).
                let per_xi = kp * c2;
                let ua = if o.input_grad { &ww.uat } else { &ww.ua };
                // The AMX copy exists only where AMX is available (WinogradWeights::ua).
                if path == Bf16Path::Dot && !ua.is_empty() {
                    // AMX: U's rows 32 (or 16) at a time, the V panels as they are.
                    let tr = amx::TILE_ROWS;
                    mm32.par_chunks_mut(ms)
                        .zip(vb.par_chunks(vbs))
                        .enumerate()
                        .for_each(|(xi, (mx, vx))| {
                            amx::with_tiles(|t| {
                                // 32 rows at a time (each V tile feeds two A tiles), a last
                                // 16 where kp is an odd number of 16s.
                                let mut rb = 0;
                                while rb < kp / tr {
                                    let two = rb + 2 <= kp / tr;
                                    let rows = if two { 2 * tr } else { tr };
                                    let ab = &ua[xi * per_xi + rb * tr * c2..][..rows * c2];
                                    for grp in 0..used_groups {
                                        let panel = &vx[grp * c2 * NR..(grp + 1) * c2 * NR];
                                        let out = &mut mx[rb * tr * pb + grp * NR..];
                                        if two {
                                            t.block32(c2, ab, panel, out, pb, cols(grp));
                                        } else {
                                            t.block(c2, ab, panel, out, pb, cols(grp));
                                        }
                                    }
                                    rb += if two { 2 } else { 1 };
                                }
                            })
                        });
                } else {
                    // Uᵀ's panels may be built here, on first use (WinogradWeights::ubt).
                    let ub = if o.input_grad { ww.ubt() } else { &ww.ub[..] };
                    for_each_panel(
                        mm32,
                        vb,
                        c2,
                        kp,
                        pb,
                        (ms, vbs),
                        used_groups,
                        |xi, kb, grp, panel, out| {
                            let up = &ub[xi * per_xi + kb * c2 * MR..][..c2 * MR];
                            bf16::kernel(path, c2, up, panel, out, pb, cols(grp));
                        },
                    );
                }
            } else {
                // U's row panels are `ps` apart (WinogradWeights::panel_stride).
                let ps = ww.panel_stride();
                let per_xi = ww.kp / MR * ps;
                for_each_panel(
                    mm,
                    v,
                    c,
                    kp,
                    pb,
                    (ms, vs),
                    used_groups,
                    |xi, kb, grp, panel, out| {
                        let u = &ww.u[xi * per_xi..(xi + 1) * per_xi];
                        if o.input_grad {
                            let up = &u[kb * MR * MR..];
                            packed_gemm::kernel_t(level, c / MR, up, ps, panel, out, pb, cols(grp));
                        } else {
                            let up = &u[kb * ps..][..c * MR];
                            if cols(grp) < NR {
                                packed_gemm::kernel_half(level, c, up, panel, out, pb);
                            } else {
                                packed_gemm::kernel(level, c, up, panel, out, pb);
                            }
                        }
                    },
                );
            }
            // Output tiles, per output channel (disjoint planes of y).
            y.par_chunks_mut(h * w).enumerate().for_each_init(
                || Scratch::new(a, pb),
                |s, (ko, plane)| {
                    let b = bias.map_or(T::ZERO, |b| b[ko]);
                    let e = Epilogue {
                        bias: b,
                        relu: o.relu,
                    };
                    level.run(
                        #[inline(always)]
                        || output_transform(mm, ms, ko, &g, &at, t0, p, pb, e, s, plane),
                    );
                },
            );
        }
    }
    pool.recycle(v_buf);
    pool.recycle(vb_buf);
    pool.recycle(mm_buf);
}

/// `f(ξ, kb, grp, panel, out)` for every transform point ξ (in parallel over ξ), row panel
/// kb < kp/MR and tile group grp < `used_groups`: `panel` is the group's V panel (`depth` rows
/// of NR, from V[ξ] of `depth·pb` elements), `out` is M[ξ] (kp rows of pb) from row kb·MR,
/// column grp·NR. M[ξ] and V[ξ] start `strides` = (M's, V's) elements apart.
#[allow(clippy::too_many_arguments)]
fn for_each_panel<M: Send, V: Sync>(
    mm: &mut [M],
    v: &[V],
    depth: usize,
    kp: usize,
    pb: usize,
    strides: (usize, usize),
    used_groups: usize,
    f: impl Fn(usize, usize, usize, &[V], &mut [M]) + Sync,
) {
    mm.par_chunks_mut(strides.0)
        .zip(v.par_chunks(strides.1))
        .enumerate()
        .for_each(|(xi, (mx, vx))| {
            for kb in 0..kp / MR {
                for grp in 0..used_groups {
                    let panel = &vx[grp * depth * NR..(grp + 1) * depth * NR];
                    f(xi, kb, grp, panel, &mut mx[kb * MR * pb + grp * NR..]);
                }
            }
        });
}

/// Which unrolled F(4×4) f32 code ([`transform_x86`](super::transform_x86)) the transforms use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unrolled {
    /// The generic sparse-row transforms.
    No,
    /// 16 tiles per pair of ymm; the generic gather and scatter.
    Avx2,
    /// 16 tiles per zmm, with the AVX-512 gather and scatter.
    Avx512,
}

// `x4` and `mirror` are read by x86-64 code only.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) struct Geom {
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) m: usize,
    pub(super) a: usize,
    /// F(4×4) on f32: the unrolled transforms for this level, if any.
    pub(super) x4: Unrolled,
    /// The transforms are mirrored (an input gradient; [`Opts::input_grad`]).
    pub(super) mirror: bool,
    /// The padding mirrors the input ([`Opts::reflect`]).
    pub(super) reflect: bool,
}

/// Per-thread buffers, rows indexed by tile (`[..][j]`, j < pb) so transforms vectorise.
pub(super) struct Scratch<T> {
    pub(super) d: Vec<T>,
    pub(super) tmp: Vec<T>,
    /// One image row segment (input: zero-padded source; output: values before clipping).
    pub(super) row: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(a: usize, pb: usize) -> Self {
        Scratch {
            d: vec![T::ZERO; a * a * pb],
            // Sized on first use: the unrolled F(4×4) transforms need none.
            tmp: Vec::new(),
            row: Vec::new(),
        }
    }
}
