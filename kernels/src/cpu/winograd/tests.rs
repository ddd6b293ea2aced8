use super::driver::BLOCK_BUDGET;
use super::*;
use crate::cpu::bf16::Precision;
use crate::cpu::buffers::BufferPool;
use crate::cpu::conv2d::{conv2d_backward_input, conv2d_forward, Conv2dParams};
use rand::{Rng, SeedableRng};

fn params(n: usize, c: usize, h: usize, w: usize, k: usize) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in: c,
        h,
        w,
        c_out: k,
        kh: 3,
        kw: 3,
        stride_h: 1,
        stride_w: 1,
        pad_h: 1,
        pad_w: 1,
        groups: 1,
        pad_mode: crate::cpu::spatial::PadMode::Zero,
    }
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

#[test]
fn forward_and_input_grad_match_direct_convolution() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        for &(n, c, h, w, k) in &[
            (1, 1, 1, 1, 1),
            (1, 3, 5, 7, 4),
            (2, 5, 9, 6, 3),
            (1, 16, 13, 17, 8),
            (1, 8, 32, 24, 40),
            (2, 17, 38, 35, 9),
            (2, 24, 11, 9, 16),
            (1, 64, 21, 70, 8),
        ] {
            let p = params(n, c, h, w, k);
            let x: Vec<f64> = (0..p.input_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let wt: Vec<f64> = (0..p.weight_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let b: Vec<f64> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut want = vec![0.0; p.output_len()];
            conv2d_forward(&BufferPool::new(), &p, &x, &wt, Some(&b), &mut want);
            let ww = WinogradWeights::new(tile, &wt, k, c);
            let mut got = vec![0.0; p.output_len()];
            conv3x3_winograd(&BufferPool::new(), &ww, &x, Some(&b), n, h, w, &mut got);
            assert!(
                rel(&got, &want) < 1e-12,
                "{tile:?} fwd f64 {n}x{c}x{h}x{w}→{k}: {}",
                rel(&got, &want)
            );
            // f32
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let ww32 = WinogradWeights::new(tile, &w32, k, c);
            for level in SimdLevel::available() {
                // The default budget (one block) and a tiny one (several blocks of 64 tiles).
                for budget in [BLOCK_BUDGET, 1] {
                    let mut got32 = vec![0.0f32; p.output_len()];
                    let o = Opts {
                        budget,
                        ..Opts::plain()
                    };
                    let dims = (n, h, w);
                    winograd_impl(
                        &BufferPool::new(),
                        level,
                        &ww32,
                        &x32,
                        Some(&b32),
                        dims,
                        &mut got32,
                        o,
                    );
                    let g64: Vec<f64> = got32.iter().map(|&v| v as f64).collect();
                    let tol = if tile == WinogradTile::F2 { 1e-6 } else { 1e-5 };
                    assert!(
                        rel(&g64, &want) < tol,
                        "{tile:?} {level:?} budget {budget} fwd f32 {n}x{c}x{h}x{w}→{k}: {}",
                        rel(&g64, &want)
                    );
                }
            }
            // fused ReLU
            let mut gr = vec![0.0f32; p.output_len()];
            conv3x3_winograd_relu(
                &BufferPool::new(),
                &ww32,
                &x32,
                Some(&b32),
                n,
                h,
                w,
                &mut gr,
            );
            let gr64: Vec<f64> = gr.iter().map(|&v| v as f64).collect();
            let want_r: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
            assert!(
                gr.iter().all(|&v| v >= 0.0),
                "{tile:?} relu output negative"
            );
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            let worst = gr64
                .iter()
                .zip(&want_r)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-5 * scale,
                "{tile:?} fused relu: max error {worst}"
            );
            // masked input (as a ReLU backward feeds it)
            let mk: Vec<f32> = (0..x32.len())
                .map(|i| if i % 3 == 0 { -1.0 } else { 0.5 })
                .collect();
            let xm: Vec<f32> = x32
                .iter()
                .zip(&mk)
                .map(|(&v, &m)| if m > 0.0 { v } else { 0.0 })
                .collect();
            let (mut a, mut bm) = (vec![0.0f32; p.output_len()], vec![0.0f32; p.output_len()]);
            conv3x3_winograd(&BufferPool::new(), &ww32, &xm, None, n, h, w, &mut a);
            conv3x3_winograd_masked(&BufferPool::new(), &ww32, &x32, &mk, None, n, h, w, &mut bm);
            assert_eq!(a, bm, "{tile:?} masked input");
            // input gradient
            let go: Vec<f64> = (0..p.output_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let mut want_gi = vec![0.0; p.input_len()];
            conv2d_backward_input(&BufferPool::new(), &p, &go, &wt, &mut want_gi);
            let wg = WinogradWeights::new_input_grad(tile, &wt, k, c);
            assert_eq!((wg.out_channels(), wg.in_channels()), (c, k));
            let mut gi = vec![0.0; p.input_len()];
            conv3x3_winograd(&BufferPool::new(), &wg, &go, None, n, h, w, &mut gi);
            assert!(
                rel(&gi, &want_gi) < 1e-12,
                "{tile:?} input grad: {}",
                rel(&gi, &want_gi)
            );
            // The input gradient from the forward weights (transposed U, mirrored tiles).
            assert_eq!(ww.shares_input_grad(), k % 8 == 0 && c % 8 == 0);
            if !ww.shares_input_grad() {
                continue;
            }
            let mut gs = vec![0.0; p.input_len()];
            conv3x3_winograd_input_grad(&BufferPool::new(), &ww, &go, None, n, h, w, &mut gs);
            assert!(
                rel(&gs, &want_gi) < 1e-12,
                "{tile:?} shared input grad f64 {n}x{c}x{h}x{w}→{k}: {}",
                rel(&gs, &want_gi)
            );
            let go32: Vec<f32> = go.iter().map(|&v| v as f32).collect();
            let mko: Vec<f32> = (0..go.len())
                .map(|i| if i % 5 == 1 { 0.0 } else { 1.0 })
                .collect();
            let go_m: Vec<f64> = go
                .iter()
                .zip(&mko)
                .map(|(&v, &m)| if m > 0.0 { v } else { 0.0 })
                .collect();
            let mut want_m = vec![0.0; p.input_len()];
            conv2d_backward_input(&BufferPool::new(), &p, &go_m, &wt, &mut want_m);
            for level in SimdLevel::available() {
                for budget in [BLOCK_BUDGET, 1] {
                    for mask in [None, Some(&mko[..])] {
                        let mut g32 = vec![f32::NAN; p.input_len()];
                        let o = Opts {
                            budget,
                            mask,
                            input_grad: true,
                            ..Opts::plain()
                        };
                        winograd_impl(
                            &BufferPool::new(),
                            level,
                            &ww32,
                            &go32,
                            None,
                            (n, h, w),
                            &mut g32,
                            o,
                        );
                        let g64: Vec<f64> = g32.iter().map(|&v| v as f64).collect();
                        let want = if mask.is_some() { &want_m } else { &want_gi };
                        let tol = if tile == WinogradTile::F2 { 1e-6 } else { 1e-5 };
                        assert!(
                            rel(&g64, want) < tol,
                            "{tile:?} {level:?} budget {budget} mask {} shared input grad \
                             f32 {n}x{c}x{h}x{w}→{k}: {}",
                            mask.is_some(),
                            rel(&g64, want)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn bf16_forward_and_input_grad_stay_within_bf16_rounding_of_direct_convolution() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    // (n, c, h, w, k): odd C (a zero-padded pair), K not a multiple of 8, and shared
    // input gradients (K, C multiples of 8).
    for &(n, c, h, w, k) in &[
        (1, 3, 5, 7, 4),
        (2, 17, 38, 35, 9),
        (1, 64, 21, 70, 8),
        (2, 24, 11, 9, 16),
        // Where the CPU has AMX: both GEMMs on tiles (rows and channel pairs multiples of 16).
        (1, 64, 13, 18, 32),
    ] {
        let p = params(n, c, h, w, k);
        let x: Vec<f64> = (0..p.input_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let wt: Vec<f64> = (0..p.weight_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let b: Vec<f64> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let go: Vec<f64> = (0..p.output_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let mut want = vec![0.0; p.output_len()];
        conv2d_forward(&BufferPool::new(), &p, &x, &wt, Some(&b), &mut want);
        let mut want_gi = vec![0.0; p.input_len()];
        conv2d_backward_input(&BufferPool::new(), &p, &go, &wt, &mut want_gi);
        let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let (x32, w32, b32, go32) = (f32s(&x), f32s(&wt), f32s(&b), f32s(&go));
        for tile in [WinogradTile::F2, WinogradTile::F4] {
            use Precision::{Bf16, F32};
            let w_f32 = WinogradWeights::new(tile, &w32, k, c);
            let shares = w_f32.shares_input_grad();
            let ww = WinogradWeights::new(tile, &w32, k, c).with_precision(Bf16, Bf16);
            assert_eq!(ww.precision(), (Bf16, if shares { Bf16 } else { F32 }));
            assert!(ww.u.is_empty(), "the f32 panels are dropped when unused");
            if crate::cpu::amx::available() && (c, k) == (64, 32) {
                assert!(!ww.ua.is_empty() && !ww.uat.is_empty(), "AMX panels");
                println!("{tile:?}: AMX tiles in the forward and the input gradient");
            }
            // Only the input gradient in bf16: the forward is exactly the f32 one.
            let wg_only = WinogradWeights::new(tile, &w32, k, c).with_precision(F32, Bf16);
            let (mut y0, mut y1) = (vec![0f32; p.output_len()], vec![0f32; p.output_len()]);
            conv3x3_winograd(
                &BufferPool::new(),
                &w_f32,
                &x32,
                Some(&b32),
                n,
                h,
                w,
                &mut y0,
            );
            conv3x3_winograd(
                &BufferPool::new(),
                &wg_only,
                &x32,
                Some(&b32),
                n,
                h,
                w,
                &mut y1,
            );
            assert_eq!(
                y0, y1,
                "{tile:?} forward of input-gradient-only bf16 weights"
            );
            // bf16 keeps 8 significant bits (relative rounding 2⁻⁹ per operand). Measured
            // here: ≈0.4% (F2) and ≈1.7% (F4, whose transforms amplify rounding) relative
            // L2 error on random data; f32 gives ≈1e-6, so `lo` shows the rounding happens.
            let lo = 1e-3;
            let hi = if tile == WinogradTile::F2 { 8e-3 } else { 3e-2 };
            for level in SimdLevel::available() {
                for budget in [BLOCK_BUDGET, 1] {
                    let mut got = vec![f32::NAN; p.output_len()];
                    let o = Opts {
                        budget,
                        ..Opts::plain()
                    };
                    winograd_impl(
                        &BufferPool::new(),
                        level,
                        &ww,
                        &x32,
                        Some(&b32),
                        (n, h, w),
                        &mut got,
                        o,
                    );
                    let e = rel(&got.iter().map(|&v| v as f64).collect::<Vec<_>>(), &want);
                    assert!(
                        lo < e && e < hi,
                        "{tile:?} {level:?} budget {budget} bf16 fwd {n}x{c}x{h}x{w}→{k}: {e}"
                    );
                }
            }
            // The input gradient: from the forward's pair panels (Uᵀ, pairs along K)
            // where shared, else from its own bf16 transforms.
            let mut gi = vec![f32::NAN; p.input_len()];
            if shares {
                // The output gradient where a ReLU mask is positive (every 5th zeroed).
                let mko: Vec<f32> = (0..go.len()).map(|i| (i % 5 != 1) as u8 as f32).collect();
                let go_m: Vec<f64> = go.iter().zip(&mko).map(|(&v, &m)| v * m as f64).collect();
                let mut want_m = vec![0.0; p.input_len()];
                conv2d_backward_input(&BufferPool::new(), &p, &go_m, &wt, &mut want_m);
                for level in SimdLevel::available() {
                    for (ws, budget, mask) in [
                        (&ww, BLOCK_BUDGET, None),
                        (&wg_only, BLOCK_BUDGET, None),
                        (&wg_only, 1, None),
                        (&wg_only, 1, Some(&mko[..])),
                    ] {
                        let o = Opts {
                            budget,
                            mask,
                            input_grad: true,
                            ..Opts::plain()
                        };
                        winograd_impl(
                            &BufferPool::new(),
                            level,
                            ws,
                            &go32,
                            None,
                            (n, h, w),
                            &mut gi,
                            o,
                        );
                        let want = if mask.is_some() { &want_m } else { &want_gi };
                        let e = rel(&gi.iter().map(|&v| v as f64).collect::<Vec<_>>(), want);
                        let masked = mask.is_some();
                        assert!(
                            lo < e && e < hi,
                            "{tile:?} {level:?} budget {budget} mask {masked} bf16 input grad: {e}"
                        );
                    }
                }
            } else {
                let wg =
                    WinogradWeights::new_input_grad(tile, &w32, k, c).with_precision(Bf16, Bf16);
                conv3x3_winograd(&BufferPool::new(), &wg, &go32, None, n, h, w, &mut gi);
                let e = rel(&gi.iter().map(|&v| v as f64).collect::<Vec<_>>(), &want_gi);
                assert!(lo < e && e < hi, "{tile:?} bf16 input grad: {e}");
            }
        }
    }
}

#[test]
fn deferred_bf16_input_grad_panels_are_built_on_first_use_and_give_the_same_result() {
    use super::weights::DeferUt;
    use Precision::{Bf16, F32};
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    // Shared input gradients (K, C multiples of 8); the second fits AMX tiles.
    for &(n, c, h, w, k) in &[(2, 24, 11, 9, 16), (1, 64, 13, 18, 32)] {
        let p = params(n, c, h, w, k);
        let w32: Vec<f32> = (0..p.weight_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let go: Vec<f32> = (0..p.output_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let mask: Vec<f32> = (0..go.len()).map(|i| (i % 3 != 0) as u8 as f32).collect();
        let tile = WinogradTile::F4;
        let eager = WinogradWeights::new(tile, &w32, k, c).with_precision(F32, Bf16);
        let lazy =
            WinogradWeights::new(tile, &w32, k, c).with_precision_impl(F32, Bf16, DeferUt::Always);
        assert!(lazy.ubt_built().is_none(), "deferred: not built yet");
        assert_eq!(lazy.precision(), eager.precision());
        for level in SimdLevel::available() {
            for m in [None, Some(&mask[..])] {
                let o = Opts {
                    mask: m,
                    input_grad: true,
                    ..Opts::plain()
                };
                let run = |ww: &WinogradWeights<f32>| {
                    let mut gi = vec![f32::NAN; p.input_len()];
                    winograd_impl(
                        &BufferPool::new(),
                        level,
                        ww,
                        &go,
                        None,
                        (n, h, w),
                        &mut gi,
                        o,
                    );
                    gi
                };
                // The same panels, so the same bits, whenever they were built.
                assert_eq!(run(&eager), run(&lazy), "{level:?} mask {}", m.is_some());
            }
        }
        // Every level ran, and at least the portable one packs pairs without AMX.
        assert_eq!(lazy.ubt_built(), eager.ubt_built());
        // With AMX, production defers them where the tiles take the GEMM: built only by the
        // paths without AMX above, never at the AVX-512-BF16 level alone.
        let amx_only = WinogradWeights::new(tile, &w32, k, c).with_precision(F32, Bf16);
        if crate::cpu::amx::available() && !amx_only.uat.is_empty() {
            let mut gi = vec![f32::NAN; p.input_len()];
            let o = Opts {
                input_grad: true,
                ..Opts::plain()
            };
            let top = SimdLevel::detected();
            winograd_impl(
                &BufferPool::new(),
                top,
                &amx_only,
                &go,
                None,
                (n, h, w),
                &mut gi,
                o,
            );
            assert!(
                amx_only.ubt_built().is_none(),
                "AMX ran without the VNNI copy"
            );
            println!("{n}x{c}x{h}x{w}→{k}: input gradient on AMX without Uᵀ's VNNI panels");
        }
    }
}

/// A pool whose idle buffers are NaN (f32) or NaN bf16 pairs (u32), several sizes: what the
/// driver takes from it unzeroed must be written before it is read.
fn poisoned_pool() -> BufferPool {
    let pool = BufferPool::new();
    for n in [300_000, 1_000_000, 3_000_000] {
        pool.recycle(vec![f32::NAN; n]);
        pool.recycle(vec![f32::NAN; n + 7]);
        pool.recycle(vec![0x7fc0_7fc0u32; n]);
    }
    pool
}

#[test]
fn stale_work_buffers_never_reach_the_output() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for &(c, k, h, w) in &[(64, 64, 37, 45), (32, 16, 20, 70), (16, 48, 9, 130)] {
        let x: Vec<f32> = (0..c * h * w).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let wt: Vec<f32> = (0..k * c * 9).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let g: Vec<f32> = (0..k * h * w).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mk: Vec<f32> = (0..k * h * w).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for prec in [Precision::F32, Precision::Bf16] {
            let ww = WinogradWeights::new(WinogradTile::F4, &wt, k, c).with_precision(prec, prec);
            for level in SimdLevel::available() {
                for budget in [BLOCK_BUDGET, 1] {
                    let run = |pool: &BufferPool, input_grad: bool| {
                        let (src, len, mask) = if input_grad {
                            (&g, c * h * w, Some(&mk[..]))
                        } else {
                            (&x, k * h * w, None)
                        };
                        let mut out = vec![0.0f32; len];
                        let o = Opts {
                            budget,
                            relu: !input_grad,
                            mask,
                            input_grad,
                            reflect: false,
                        };
                        winograd_impl(pool, level, &ww, src, None, (1, h, w), &mut out, o);
                        out
                    };
                    for input_grad in [false, true] {
                        let clean = run(&BufferPool::new(), input_grad);
                        let dirty = run(&poisoned_pool(), input_grad);
                        assert!(clean.iter().all(|v| v.is_finite()));
                        assert!(
                            clean
                                .iter()
                                .zip(&dirty)
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{c}->{k} {h}x{w} {prec:?} {level:?} budget {budget} \
                             input_grad {input_grad}: stale values changed the output"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn reflect_padding_matches_a_reflect_padded_copy() {
    use crate::cpu::spatial::{pad2d_forward, Pad2dParams, PadMode};
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    for tile in [WinogradTile::F2, WinogradTile::F4] {
        // Sides that tiles divide and that they do not, down to 2×2; several blocks of tiles.
        for &(n, c, h, w, k) in &[
            (1, 3, 2, 2, 4),
            (1, 8, 4, 8, 8),
            (2, 5, 9, 6, 3),
            (1, 16, 13, 17, 8),
            (1, 32, 22, 34, 32),
            (2, 17, 38, 35, 9),
        ] {
            let p = params(n, c, h, w, k);
            let x: Vec<f64> = (0..p.input_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let wt: Vec<f64> = (0..p.weight_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let b: Vec<f64> = (0..k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            // Reference: ReflectionPad2d(1), then a padding-0 convolution.
            let pp = Pad2dParams {
                n,
                c,
                h,
                w,
                top: 1,
                bottom: 1,
                left: 1,
                right: 1,
                mode: PadMode::Reflect,
            };
            let mut xp = vec![0.0; n * c * (h + 2) * (w + 2)];
            pad2d_forward(&pp, &x, &mut xp);
            let mut want = vec![0.0; p.output_len()];
            conv2d_forward(
                &BufferPool::new(),
                &p.padded_first(),
                &xp,
                &wt,
                Some(&b),
                &mut want,
            );
            let ww = WinogradWeights::new(tile, &wt, k, c);
            let mut got = vec![0.0; p.output_len()];
            let pool = BufferPool::new();
            conv3x3_winograd_reflect(&pool, &ww, &x, Some(&b), n, h, w, &mut got, false);
            let what = format!("{tile:?} {n}x{c}x{h}x{w}→{k}");
            assert!(rel(&got, &want) < 1e-12, "{what} f64: {}", rel(&got, &want));
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let ww32 = WinogradWeights::new(tile, &w32, k, c);
            for level in SimdLevel::available() {
                for budget in [BLOCK_BUDGET, 1] {
                    let mut got32 = vec![0.0f32; p.output_len()];
                    let o = Opts {
                        budget,
                        reflect: true,
                        ..Opts::plain()
                    };
                    let dims = (n, h, w);
                    winograd_impl(&pool, level, &ww32, &x32, Some(&b32), dims, &mut got32, o);
                    let g64: Vec<f64> = got32.iter().map(|&v| v as f64).collect();
                    let r = rel(&g64, &want);
                    assert!(r < 1e-5, "{what} f32 {level:?} budget {budget}: {r}");
                }
            }
            // With the fused ReLU.
            let mut gr = vec![0.0f32; p.output_len()];
            conv3x3_winograd_reflect(&pool, &ww32, &x32, Some(&b32), n, h, w, &mut gr, true);
            let worst = gr
                .iter()
                .zip(&want)
                .fold(0.0f64, |m, (&a, b)| m.max((a as f64 - b.max(0.0)).abs()));
            assert!(worst < 1e-4, "{what} reflect + relu: max error {worst}");
        }
    }
}
