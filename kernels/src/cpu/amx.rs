//! Intel AMX (Advanced Matrix Extensions) bf16 tiles for the Winograd GEMM's bf16 operands
//! ([`super::bf16`]): `tdpbf16ps` multiplies a 16×32 bf16 tile by a 32×16 one into a 16×16 f32
//! tile (8192 multiply-adds an instruction, against 32 for AVX-512-BF16's `vdpbf16ps`).
//! Sapphire Rapids and later Xeons have it.
//!
//! Availability ([`available`]): CPUID leaf 7 says AMX-TILE and AMX-BF16, and Linux grants the
//! process the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked
//! once; without it the first tile instruction is a fault). `NST_AMX=0` turns it off.
//!
//! Layouts (pairs are [`super::bf16`]'s: the even channel's bf16 in the low half):
//! - A (the weights U, [`pack_a`]): each row its `c2` pairs contiguous, read 16 rows a tile;
//! - B (the transformed tiles V): the bf16 module's panels as they are, `c2 × NR` pairs, which
//!   is the VNNI layout `tdpbf16ps` reads (row = channel pair, 16 columns per tile);
//! - M: 16 ([`Tiles::block`]) or 32 ([`Tiles::block32`]) rows of NR (or NR/2) f32 at row
//!   stride `ldm`, overwritten.
//!
//! The instructions are written with `asm!` (Rust's AMX intrinsics are not stable); the tile
//! registers are not visible to the compiler, which never uses them.

use super::packed_gemm::NR;

/// Rows of an A tile and of the output block.
pub const TILE_ROWS: usize = 16;
/// Channel pairs per tile step (64 bytes of a tile row).
pub const TILE_PAIRS: usize = 16;

/// Whether the AMX kernels can run: the CPU has AMX-TILE and AMX-BF16, the kernel granted the
/// tile state, and `NST_AMX` is not `0`. Decided once per process.
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if std::env::var("NST_AMX").is_ok_and(|v| v.trim() == "0") {
            return false;
        }
        detect()
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    let (max, l7) = (__cpuid_count(0, 0).eax, __cpuid_count(7, 0));
    let (amx_bf16, amx_tile) = (l7.edx & (1 << 22) != 0, l7.edx & (1 << 24) != 0);
    if max < 7 || !amx_bf16 || !amx_tile || !std::is_x86_feature_detected!("avx512f") {
        return false;
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with two integer arguments; it touches no memory of
    // ours. The kernel clobbers rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// Whether a GEMM with `rows` output rows and `c2` channel pairs fits the tiles: both whole
/// multiples of 16 (every VGG layer past conv1_1).
pub fn fits(rows: usize, c2: usize) -> bool {
    rows > 0 && c2 > 0 && rows.is_multiple_of(TILE_ROWS) && c2.is_multiple_of(TILE_PAIRS)
}

/// Pack a rows × C matrix (`at(row, c)`) into A's layout: `out[row·C2 + cp] =
/// pair(at(row, 2cp), at(row, 2cp + 1))` (0 past C). `out.len()` must be `rows·⌈C/2⌉`.
pub fn pack_a(rows: usize, c: usize, at: impl Fn(usize, usize) -> f32, out: &mut [u32]) {
    let c2 = c.div_ceil(2);
    assert_eq!(out.len(), rows * c2, "amx::pack_a: out length");
    for row in 0..rows {
        for cp in 0..c2 {
            let get = |ci: usize| if ci < c { at(row, ci) } else { 0.0 };
            out[row * c2 + cp] = super::bf16::pair(get(2 * cp), get(2 * cp + 1));
        }
    }
}

/// The 64-byte tile configuration (palette 1): all eight tiles 16 rows of 64 bytes (16 f32 or
/// 16 bf16 pairs a row). [`Tiles::block`] uses tmm0–1 (outputs), tmm2 (A), tmm3–4 (B);
/// [`Tiles::block32`] tmm0–3 (outputs), tmm4–5 (A), tmm6–7 (B).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn new() -> TileConfig {
        let mut c = [0u8; 64];
        c[0] = 1; // palette 1
        for t in 0..8 {
            // colsb (bytes per row) at 16 + 2t, rows at 48 + t
            c[16 + 2 * t] = 64;
            c[48 + t] = 16;
        }
        TileConfig(c)
    }
}

/// Runs `f` with the tile registers configured for [`Tiles::block`] and [`Tiles::block32`],
/// releasing them after (so a context switch saves no tile data).
///
/// # Panics
/// If AMX is not [`available`].
pub fn with_tiles<R>(f: impl FnOnce(&Tiles) -> R) -> R {
    assert!(available(), "amx: tiles used where AMX is not available");
    let cfg = TileConfig::new();
    // SAFETY: AMX is available and this thread has the tile permission (process-wide);
    // the configuration is a valid palette-1 layout.
    unsafe { ldtilecfg(&cfg) };
    let r = f(&Tiles(()));
    // SAFETY: as above; releasing returns the tiles to their initial state.
    unsafe { tilerelease() };
    r
}

/// Proof that the tiles are configured (only [`with_tiles`] makes one).
pub struct Tiles(());

impl Tiles {
    /// `m[r·ldm + j] = Σ_cp Σ_h a[r·c2 + cp]_h · v[cp·NR + j]_h` for r < 16, j < `cols` (NR or
    /// NR/2): one 16-row block of A times one panel of V, f32 sums.
    ///
    /// # Panics
    /// If `c2` is not a positive multiple of 16, `cols` is not NR or NR/2, `a` is shorter than
    /// `16·c2`, `v` than `c2·NR`, `ldm < cols`, or `m` shorter than `15·ldm + cols`.
    pub fn block(&self, c2: usize, a: &[u32], v: &[u32], m: &mut [f32], ldm: usize, cols: usize) {
        assert!(c2 > 0 && c2.is_multiple_of(TILE_PAIRS), "amx block: c2");
        assert!(cols == NR || cols == NR / 2, "amx block: cols");
        assert!(
            a.len() >= TILE_ROWS * c2 && v.len() >= c2 * NR,
            "amx block: operands"
        );
        assert!(
            ldm >= cols && m.len() >= (TILE_ROWS - 1) * ldm + cols,
            "amx block: output"
        );
        // SAFETY: tiles configured (self), extents checked above: every A tile reads rows
        // r < 16 of 64 bytes at a + r·c2 + cp0 (cp0 + 16 ≤ c2), every B tile rows cp0..cp0+16
        // of 64 bytes at v + cp·NR (+16), every store 16 rows of 64 bytes at m + r·ldm
        // (+16 only when cols = NR).
        unsafe { block_raw(c2, a.as_ptr(), v.as_ptr(), m.as_mut_ptr(), ldm, cols == NR) }
    }

    /// [`Tiles::block`] for 32 rows: `a` holds 32 rows of `c2` pairs, `m` gets 32 rows. Each V
    /// tile serves both 16-row halves, so a product needs half the tile loads of two blocks.
    ///
    /// # Panics
    /// As [`Tiles::block`], with 32 rows (`a` at least `32·c2`, `m` at least `31·ldm + cols`).
    pub fn block32(&self, c2: usize, a: &[u32], v: &[u32], m: &mut [f32], ldm: usize, cols: usize) {
        assert!(c2 > 0 && c2.is_multiple_of(TILE_PAIRS), "amx block32: c2");
        assert!(cols == NR || cols == NR / 2, "amx block32: cols");
        assert!(
            a.len() >= 2 * TILE_ROWS * c2 && v.len() >= c2 * NR,
            "amx block32: operands"
        );
        assert!(
            ldm >= cols && m.len() >= (2 * TILE_ROWS - 1) * ldm + cols,
            "amx block32: output"
        );
        // SAFETY: tiles configured (self); as in `block`, with A rows r < 32 at a + r·c2 and
        // output rows r < 32 at m + r·ldm, all inside the checked extents.
        unsafe { block32_raw(c2, a.as_ptr(), v.as_ptr(), m.as_mut_ptr(), ldm, cols == NR) }
    }
}

/// See [`Tiles::block32`]; `two`: both 16-column halves (cols = NR), else the first only.
#[cfg(target_arch = "x86_64")]
unsafe fn block32_raw(c2: usize, a: *const u32, v: *const u32, m: *mut f32, ldm: usize, two: bool) {
    use std::arch::asm;
    let (a_stride, v_stride, m_stride) = (c2 * 4, NR * 4, ldm * 4);
    let a_low = a.add(TILE_ROWS * c2);
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack, nomem)
    );
    for cp0 in (0..c2).step_by(TILE_PAIRS) {
        let vp = v.add(cp0 * NR);
        asm!(
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm5, [{b} + {sa}*1]",
            "tileloadd tmm6, [{v} + {sv}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm2, tmm5, tmm6",
            a = in(reg) a.add(cp0),
            b = in(reg) a_low.add(cp0),
            sa = in(reg) a_stride,
            v = in(reg) vp,
            sv = in(reg) v_stride,
            options(nostack, readonly)
        );
        if two {
            asm!(
                "tileloadd tmm7, [{v} + {sv}*1]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm3, tmm5, tmm7",
                v = in(reg) vp.add(TILE_PAIRS),
                sv = in(reg) v_stride,
                options(nostack, readonly)
            );
        }
    }
    let m_low = m.add(TILE_ROWS * ldm);
    asm!(
        "tilestored [{m} + {sm}*1], tmm0",
        "tilestored [{l} + {sm}*1], tmm2",
        m = in(reg) m,
        l = in(reg) m_low,
        sm = in(reg) m_stride,
        options(nostack)
    );
    if two {
        asm!(
            "tilestored [{m} + {sm}*1], tmm1",
            "tilestored [{l} + {sm}*1], tmm3",
            m = in(reg) m.add(TILE_PAIRS),
            l = in(reg) m_low.add(TILE_PAIRS),
            sm = in(reg) m_stride,
            options(nostack)
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn block32_raw(_: usize, _: *const u32, _: *const u32, _: *mut f32, _: usize, _: bool) {
    unreachable!("amx: not available off x86-64")
}

#[cfg(target_arch = "x86_64")]
unsafe fn ldtilecfg(cfg: &TileConfig) {
    std::arch::asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
}

#[cfg(target_arch = "x86_64")]
unsafe fn tilerelease() {
    std::arch::asm!("tilerelease", options(nostack, nomem));
}

/// See [`Tiles::block`]; `two`: both 16-column halves (cols = NR), else the first only.
#[cfg(target_arch = "x86_64")]
unsafe fn block_raw(c2: usize, a: *const u32, v: *const u32, m: *mut f32, ldm: usize, two: bool) {
    use std::arch::asm;
    let (a_stride, v_stride, m_stride) = (c2 * 4, NR * 4, ldm * 4);
    asm!("tilezero tmm0", "tilezero tmm1", options(nostack, nomem));
    for cp0 in (0..c2).step_by(TILE_PAIRS) {
        let (ap, vp) = (a.add(cp0), v.add(cp0 * NR));
        asm!(
            "tileloadd tmm2, [{a} + {sa}*1]",
            "tileloadd tmm3, [{v} + {sv}*1]",
            "tdpbf16ps tmm0, tmm2, tmm3",
            a = in(reg) ap,
            sa = in(reg) a_stride,
            v = in(reg) vp,
            sv = in(reg) v_stride,
            options(nostack, readonly)
        );
        if two {
            asm!(
                "tileloadd tmm4, [{v} + {sv}*1]",
                "tdpbf16ps tmm1, tmm2, tmm4",
                v = in(reg) vp.add(TILE_PAIRS),
                sv = in(reg) v_stride,
                options(nostack, readonly)
            );
        }
    }
    asm!(
        "tilestored [{m} + {sm}*1], tmm0",
        m = in(reg) m,
        sm = in(reg) m_stride,
        options(nostack)
    );
    if two {
        asm!(
            "tilestored [{m} + {sm}*1], tmm1",
            m = in(reg) m.add(TILE_PAIRS),
            sm = in(reg) m_stride,
            options(nostack)
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn ldtilecfg(_: &TileConfig) {
    unreachable!("amx: not available off x86-64")
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn tilerelease() {}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn block_raw(_: usize, _: *const u32, _: *const u32, _: *mut f32, _: usize, _: bool) {
    unreachable!("amx: not available off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::bf16::testing::v_panel;
    use half::bf16;
    use rand::{Rng, SeedableRng};

    #[test]
    fn config_and_fit() {
        let c = TileConfig::new();
        assert_eq!(
            (c.0[0], c.0[16], c.0[30], c.0[48], c.0[55]),
            (1, 64, 64, 16, 16)
        );
        assert_eq!((c.0[32], c.0[56]), (0, 0), "no tmm8");
        assert!(fits(64, 32) && fits(512, 256));
        assert!(!fits(24, 32) && !fits(64, 24) && !fits(0, 16));
    }

    #[test]
    fn blocks_match_a_product_of_the_rounded_operands() {
        if !available() {
            println!("skipped: no AMX (or NST_AMX=0)");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for &(rows, c) in &[(16usize, 32usize), (32, 64), (48, 512), (16, 96)] {
            let c2 = c.div_ceil(2);
            if !fits(rows, c2) {
                continue;
            }
            let u: Vec<f32> = (0..rows * c).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let v: Vec<f32> = (0..c * NR).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut a = vec![0u32; rows * c2];
            pack_a(rows, c, |r, ci| u[r * c + ci], &mut a);
            let vp = v_panel(c, &v);
            let r16 = |x: f32| bf16::from_f32(x).to_f64();
            for cols in [NR, NR / 2] {
                let ldm = NR + 5;
                let mut m = vec![f32::NAN; rows * ldm];
                // 32-row blocks where two are left, then a 16-row one (48 rows: both kinds).
                with_tiles(|t| {
                    let mut rb = 0;
                    while rb < rows / TILE_ROWS {
                        let (ab, mb) = (&a[rb * TILE_ROWS * c2..], &mut m[rb * TILE_ROWS * ldm..]);
                        if rb + 2 <= rows / TILE_ROWS {
                            t.block32(c2, ab, &vp, mb, ldm, cols);
                            rb += 2;
                        } else {
                            t.block(c2, ab, &vp, mb, ldm, cols);
                            rb += 1;
                        }
                    }
                });
                for row in 0..rows {
                    for j in 0..ldm {
                        let got = m[row * ldm + j] as f64;
                        if j >= cols {
                            assert!(got.is_nan(), "rows={rows} c={c}: wrote column {j}");
                            continue;
                        }
                        let want: f64 = (0..c)
                            .map(|ci| r16(u[row * c + ci]) * r16(v[ci * NR + j]))
                            .sum();
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()) * (c as f64).sqrt(),
                            "rows={rows} c={c} cols={cols} [{row}][{j}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
        println!("AMX blocks checked");
    }
}
