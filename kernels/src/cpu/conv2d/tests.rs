//! Unit tests of `conv2d` against naive f64 references.
use super::*;
use crate::cpu::simd::SimdLevel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[allow(clippy::too_many_arguments)]
fn params(
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    (kh, kw): (usize, usize),
    (stride_h, stride_w): (usize, usize),
    (pad_h, pad_w): (usize, usize),
) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride_h,
        stride_w,
        pad_h,
        pad_w,
        groups: 1,
        pad_mode: crate::cpu::spatial::PadMode::Zero,
    }
}

/// Odd, non-square, strided, padded, 1×1 / 3×3 / 5×3, batch 1 and 3, channels not multiples of 8.
fn shapes() -> Vec<Conv2dParams> {
    vec![
        params(1, 3, 7, 9, 5, (3, 3), (1, 1), (1, 1)),
        params(3, 5, 8, 6, 7, (3, 3), (2, 2), (1, 1)),
        params(1, 10, 11, 13, 9, (5, 3), (1, 1), (2, 1)),
        params(3, 4, 9, 9, 6, (5, 3), (2, 1), (2, 2)),
        params(1, 3, 5, 5, 2, (3, 3), (1, 1), (0, 0)),
        params(3, 2, 4, 3, 3, (3, 3), (1, 2), (2, 2)),
        params(1, 13, 12, 10, 17, (3, 3), (2, 2), (0, 0)),
        params(1, 2, 3, 3, 3, (5, 3), (1, 1), (1, 1)),
        params(1, 7, 6, 5, 3, (1, 1), (1, 1), (0, 0)),
        params(3, 9, 5, 7, 11, (1, 1), (1, 1), (0, 0)),
        params(1, 6, 7, 8, 4, (1, 1), (2, 2), (0, 0)),
        params(3, 1, 6, 6, 2, (1, 1), (1, 1), (1, 1)),
        params(1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0)),
        params(1, 19, 17, 23, 12, (3, 3), (1, 1), (1, 1)),
        // ≤ 4 output channels, stride 1, no padding, OW ≥ 64: the direct forward (`direct.rs`;
        // OW not a multiple of its 64-pixel blocks).
        params(2, 5, 4, 70, 3, (3, 3), (1, 1), (0, 0)),
        params(1, 3, 11, 80, 4, (9, 9), (1, 1), (0, 0)),
        params(1, 2, 3, 64, 1, (1, 1), (1, 1), (0, 0)),
        // C_in ≤ 4, C_out a multiple of 8, stride 1, no padding, OW ≥ 32: in f32 with AVX-512
        // the direct forward's 32-pixel × 8-channel blocks (OW not a multiple of 32).
        params(2, 3, 12, 48, 16, (9, 9), (1, 1), (0, 0)),
        params(1, 1, 5, 40, 8, (3, 3), (1, 1), (0, 0)),
        // C_out a multiple of 8, OW ≥ 32: the panel forward (`panel.rs`; OW not a multiple of
        // its 32-pixel panels, padded, stride 2 with and without padding, 9×9, 1×1).
        params(2, 3, 6, 45, 8, (9, 9), (1, 1), (4, 4)),
        params(1, 5, 7, 70, 16, (3, 3), (2, 2), (0, 0)),
        params(1, 4, 5, 67, 8, (3, 3), (2, 2), (1, 1)),
        params(2, 6, 4, 40, 24, (1, 1), (1, 1), (0, 0)),
        params(1, 3, 3, 70, 8, (3, 5), (1, 2), (2, 3)),
    ]
}

/// im2col budgets to run every shape under: one band, one output row per band, and bands of
/// two rows (uneven last band when OH is odd).
fn budgets(p: &Conv2dParams) -> [usize; 3] {
    [COL_BUDGET, 1, 2 * p.c_in * p.kh * p.kw * p.out_w()]
}

fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Calls `f(n, o, c, oy, ox, i, j, iy, ix)` for every (output, tap) pair that reads a real
/// (non-padding) input cell (`c` ranges over output channel `o`'s group).
fn for_each_tap(p: &Conv2dParams, mut f: impl FnMut([usize; 9])) {
    let (cg, og) = (p.c_in / p.groups, p.c_out / p.groups);
    for n in 0..p.n {
        for o in 0..p.c_out {
            for oy in 0..p.out_h() {
                for ox in 0..p.out_w() {
                    for c in (o / og) * cg..(o / og + 1) * cg {
                        for i in 0..p.kh {
                            for j in 0..p.kw {
                                let iy = (oy * p.stride_h + i) as isize - p.pad_h as isize;
                                let ix = (ox * p.stride_w + j) as isize - p.pad_w as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w
                                {
                                    f([n, o, c, oy, ox, i, j, iy as usize, ix as usize]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn idx_in(p: &Conv2dParams, n: usize, c: usize, y: usize, x: usize) -> usize {
    ((n * p.c_in + c) * p.h + y) * p.w + x
}
fn idx_out(p: &Conv2dParams, n: usize, o: usize, y: usize, x: usize) -> usize {
    ((n * p.c_out + o) * p.out_h() + y) * p.out_w() + x
}
fn idx_w(p: &Conv2dParams, o: usize, c: usize, i: usize, j: usize) -> usize {
    let cg = p.c_in / p.groups;
    ((o * cg + c % cg) * p.kh + i) * p.kw + j
}

fn naive_forward(p: &Conv2dParams, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let ohw = p.out_h() * p.out_w();
    let mut out: Vec<f64> = (0..p.output_len())
        .map(|k| b.map_or(0.0, |b| b[(k / ohw) % p.c_out]))
        .collect();
    for_each_tap(p, |[n, o, c, oy, ox, i, j, iy, ix]| {
        out[idx_out(p, n, o, oy, ox)] += x[idx_in(p, n, c, iy, ix)] * w[idx_w(p, o, c, i, j)];
    });
    out
}

/// The adjoint of the forward, as a scatter.
fn naive_backward_input(p: &Conv2dParams, go: &[f64], w: &[f64]) -> Vec<f64> {
    let mut gi = vec![0.0; p.input_len()];
    for_each_tap(p, |[n, o, c, oy, ox, i, j, iy, ix]| {
        gi[idx_in(p, n, c, iy, ix)] += go[idx_out(p, n, o, oy, ox)] * w[idx_w(p, o, c, i, j)];
    });
    gi
}

fn naive_backward_weight(p: &Conv2dParams, x: &[f64], go: &[f64]) -> Vec<f64> {
    let mut gw = vec![0.0; p.weight_len()];
    for_each_tap(p, |[n, o, c, oy, ox, i, j, iy, ix]| {
        gw[idx_w(p, o, c, i, j)] += go[idx_out(p, n, o, oy, ox)] * x[idx_in(p, n, c, iy, ix)];
    });
    gw
}

fn naive_backward_bias(p: &Conv2dParams, go: &[f64]) -> Vec<f64> {
    let ohw = p.out_h() * p.out_w();
    let mut gb = vec![0.0; p.c_out];
    for (k, v) in go.iter().enumerate() {
        gb[(k / ohw) % p.c_out] += v;
    }
    gb
}

/// `|got − want| ≤ tol` elementwise, with a message naming the case and the index.
fn assert_close<T: Float>(got: &[T], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let g = g.to_f64();
        assert!(
            (g - w).abs() <= tol,
            "{what}[{k}]: got {g}, want {w} (tol {tol})"
        );
    }
}

#[test]
fn forward_matches_naive_f64_and_f32() {
    let mut rng = StdRng::seed_from_u64(11);
    for p in shapes() {
        let x = random(&mut rng, p.input_len());
        let w = random(&mut rng, p.weight_len());
        let b = random(&mut rng, p.c_out);
        let terms = (p.c_in * p.kh * p.kw) as f64;
        for bias in [None, Some(&b[..])] {
            let want = naive_forward(&p, &x, &w, bias);
            assert!(
                want.iter().any(|v| v.abs() > 0.1),
                "{p:?}: degenerate reference"
            );
            for budget in budgets(&p) {
                let what = format!("forward {p:?} bias={} budget={budget}", bias.is_some());
                let mut out = vec![f64::NAN; p.output_len()];
                forward_impl(
                    &BufferPool::new(),
                    &p,
                    &x,
                    &w,
                    bias,
                    &mut out,
                    budget,
                    false,
                );
                assert_close(&out, &want, 1e-13 * terms, &what);

                let b32 = bias.map(to_f32);
                let mut out32 = vec![f32::NAN; p.output_len()];
                forward_impl(
                    &BufferPool::new(),
                    &p,
                    &to_f32(&x),
                    &to_f32(&w),
                    b32.as_deref(),
                    &mut out32,
                    budget,
                    false,
                );
                assert_close(&out32, &want, 2e-6 * terms, &what);
            }
        }
    }
}

#[test]
fn forward_public_entry_matches_naive_on_a_hand_computed_case() {
    // 1×1×3×3 input 1..9, one 2×2 kernel of ones, stride 1, no padding: window sums.
    let p = params(1, 1, 3, 3, 1, (2, 2), (1, 1), (0, 0));
    let x: Vec<f64> = (1..=9).map(f64::from).collect();
    let mut out = vec![f64::NAN; 4];
    conv2d_forward(
        &BufferPool::new(),
        &p,
        &x,
        &[1.0; 4],
        Some(&[0.5]),
        &mut out,
    );
    assert_eq!(out, vec![12.5, 16.5, 24.5, 28.5]);
}

#[test]
fn backward_input_matches_naive_adjoint_f64_and_f32() {
    let mut rng = StdRng::seed_from_u64(12);
    for p in shapes() {
        let go = random(&mut rng, p.output_len());
        let w = random(&mut rng, p.weight_len());
        let want = naive_backward_input(&p, &go, &w);
        let terms = (p.c_out * p.kh * p.kw) as f64;
        for budget in budgets(&p) {
            let what = format!("backward_input {p:?} budget={budget}");
            let mut gi = vec![f64::NAN; p.input_len()];
            backward_input_impl(&BufferPool::new(), &p, &go, &w, &mut gi, budget);
            assert_close(&gi, &want, 1e-13 * terms, &what);

            let mut gi32 = vec![f32::NAN; p.input_len()];
            backward_input_impl(
                &BufferPool::new(),
                &p,
                &to_f32(&go),
                &to_f32(&w),
                &mut gi32,
                budget,
            );
            assert_close(&gi32, &want, 2e-6 * terms, &what);
        }
    }
}

#[test]
fn backward_weight_matches_naive_adjoint_f64_and_f32() {
    let mut rng = StdRng::seed_from_u64(13);
    for p in shapes() {
        let x = random(&mut rng, p.input_len());
        let go = random(&mut rng, p.output_len());
        let want = naive_backward_weight(&p, &x, &go);
        let terms = (p.n * p.out_h() * p.out_w()) as f64;
        for budget in budgets(&p) {
            let what = format!("backward_weight {p:?} budget={budget}");
            let mut gw = vec![f64::NAN; p.weight_len()];
            backward_weight_impl(&BufferPool::new(), &p, &x, &go, &mut gw, budget);
            assert_close(&gw, &want, 1e-13 * terms, &what);

            let mut gw32 = vec![f32::NAN; p.weight_len()];
            backward_weight_impl(
                &BufferPool::new(),
                &p,
                &to_f32(&x),
                &to_f32(&go),
                &mut gw32,
                budget,
            );
            assert_close(&gw32, &want, 2e-6 * terms, &what);
        }
    }
}

#[test]
fn backward_weight_single_thread_sums_the_batch() {
    // The serial path (one rayon thread) accumulates with beta = 1 after the first image.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(14);
    for p in [
        params(3, 5, 8, 6, 7, (3, 3), (2, 2), (1, 1)),
        params(3, 9, 5, 7, 11, (1, 1), (1, 1), (0, 0)),
    ] {
        let x = random(&mut rng, p.input_len());
        let go = random(&mut rng, p.output_len());
        let want = naive_backward_weight(&p, &x, &go);
        let mut gw = vec![f64::NAN; p.weight_len()];
        pool.install(|| backward_weight_impl(&BufferPool::new(), &p, &x, &go, &mut gw, 1));
        assert_close(&gw, &want, 1e-11, &format!("serial backward_weight {p:?}"));
    }
}

#[test]
fn backward_bias_matches_naive_f64_and_f32() {
    let mut rng = StdRng::seed_from_u64(15);
    for p in shapes() {
        let go = random(&mut rng, p.output_len());
        let want = naive_backward_bias(&p, &go);
        let terms = (p.n * p.out_h() * p.out_w()) as f64;
        let mut gb = vec![f64::NAN; p.c_out];
        conv2d_backward_bias(&p, &go, &mut gb);
        assert_close(&gb, &want, 1e-13 * terms, &format!("backward_bias {p:?}"));
        let mut gb32 = vec![f32::NAN; p.c_out];
        conv2d_backward_bias(&p, &to_f32(&go), &mut gb32);
        assert_close(
            &gb32,
            &want,
            2e-6 * terms,
            &format!("backward_bias f32 {p:?}"),
        );
    }
}

#[test]
fn gradients_match_finite_differences_f64() {
    // L = Σ r ⊙ conv(x, w, b); the kernels' gradients of L against central differences.
    let mut rng = StdRng::seed_from_u64(16);
    for p in [
        params(2, 3, 5, 6, 4, (3, 3), (2, 1), (1, 1)),
        params(1, 2, 4, 5, 3, (5, 3), (1, 1), (2, 1)),
    ] {
        let x = random(&mut rng, p.input_len());
        let w = random(&mut rng, p.weight_len());
        let b = random(&mut rng, p.c_out);
        let r = random(&mut rng, p.output_len());
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut out = vec![0.0; p.output_len()];
            conv2d_forward(&BufferPool::new(), &p, x, w, Some(b), &mut out);
            out.iter().zip(&r).map(|(o, r)| o * r).sum::<f64>()
        };
        let fd = |v: &[f64], at: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
            let h = 1e-5;
            (0..v.len())
                .map(|k| {
                    let (mut up, mut down) = (v.to_vec(), v.to_vec());
                    up[k] += h;
                    down[k] -= h;
                    (at(&up) - at(&down)) / (2.0 * h)
                })
                .collect()
        };
        let mut gi = vec![0.0; p.input_len()];
        conv2d_backward_input(&BufferPool::new(), &p, &r, &w, &mut gi);
        assert_close(
            &gi,
            &fd(&x, &|x| loss(x, &w, &b)),
            1e-7,
            &format!("fd input {p:?}"),
        );
        let mut gw = vec![0.0; p.weight_len()];
        conv2d_backward_weight(&BufferPool::new(), &p, &x, &r, &mut gw);
        assert_close(
            &gw,
            &fd(&w, &|w| loss(&x, w, &b)),
            1e-7,
            &format!("fd weight {p:?}"),
        );
        let mut gb = vec![0.0; p.c_out];
        conv2d_backward_bias(&p, &r, &mut gb);
        assert_close(
            &gb,
            &fd(&b, &|b| loss(&x, &w, b)),
            1e-7,
            &format!("fd bias {p:?}"),
        );
    }
}

#[test]
fn valid_range_is_exact() {
    for (tap, pad, stride, size, out) in [
        (0, 1, 1, 5, 5),
        (2, 1, 1, 5, 5),
        (0, 2, 2, 7, 5),
        (4, 2, 3, 6, 3),
    ] {
        let (lo, hi) = valid_range(tap, pad, stride, size, out);
        for o in 0..out {
            let pos = (o * stride + tap) as isize - pad as isize;
            assert_eq!(
                pos >= 0 && (pos as usize) < size,
                o >= lo && o < hi,
                "{tap} {pad} {stride} {size} {out} @ {o}"
            );
        }
    }
}

/// Grouped and depthwise shapes (groups, then the shape): depthwise 3×3 stride 1 and 2 with
/// pad 1 and TF "SAME"-like pad 0, odd sizes, batch 1 and 2, a channel multiplier, general
/// groups.
fn grouped_shapes() -> Vec<Conv2dParams> {
    let g = |groups, p: Conv2dParams| Conv2dParams { groups, ..p };
    vec![
        g(4, params(1, 4, 9, 11, 4, (3, 3), (1, 1), (1, 1))),
        g(5, params(2, 5, 8, 7, 5, (3, 3), (2, 2), (1, 1))),
        g(3, params(1, 3, 9, 9, 3, (3, 3), (2, 2), (0, 0))),
        g(6, params(2, 6, 7, 10, 6, (3, 3), (2, 2), (1, 1))),
        g(2, params(1, 2, 5, 6, 2, (5, 3), (1, 2), (2, 1))),
        g(3, params(2, 3, 6, 5, 6, (3, 3), (1, 1), (1, 1))),
        g(2, params(2, 4, 7, 6, 6, (3, 3), (2, 1), (1, 1))),
        g(4, params(1, 8, 6, 6, 4, (1, 1), (1, 1), (0, 0))),
    ]
}

#[test]
fn grouped_and_depthwise_match_naive_f64_and_f32() {
    let mut rng = StdRng::seed_from_u64(14);
    let pool = BufferPool::new();
    for p in grouped_shapes() {
        let x = random(&mut rng, p.input_len());
        let w = random(&mut rng, p.weight_len());
        let b = random(&mut rng, p.c_out);
        let go = random(&mut rng, p.output_len());
        let (x32, w32, b32, go32) = (to_f32(&x), to_f32(&w), to_f32(&b), to_f32(&go));
        let terms = (p.c_in * p.kh * p.kw + p.n * p.out_h() * p.out_w()) as f64;

        let want = naive_forward(&p, &x, &w, Some(&b));
        let mut out = vec![f64::NAN; p.output_len()];
        conv2d_forward(&pool, &p, &x, &w, Some(&b), &mut out);
        assert_close(
            &out,
            &want,
            1e-13 * terms,
            &format!("grouped forward {p:?}"),
        );
        let mut out32 = vec![f32::NAN; p.output_len()];
        conv2d_forward(&pool, &p, &x32, &w32, Some(&b32), &mut out32);
        assert_close(
            &out32,
            &want,
            2e-6 * terms,
            &format!("grouped forward f32 {p:?}"),
        );

        let want = naive_backward_input(&p, &go, &w);
        let mut gi = vec![f64::NAN; p.input_len()];
        conv2d_backward_input(&pool, &p, &go, &w, &mut gi);
        assert_close(
            &gi,
            &want,
            1e-13 * terms,
            &format!("grouped backward_input {p:?}"),
        );
        let mut gi32 = vec![f32::NAN; p.input_len()];
        conv2d_backward_input(&pool, &p, &go32, &w32, &mut gi32);
        assert_close(
            &gi32,
            &want,
            2e-6 * terms,
            &format!("grouped backward_input f32 {p:?}"),
        );

        let want = naive_backward_weight(&p, &x, &go);
        let mut gw = vec![f64::NAN; p.weight_len()];
        conv2d_backward_weight(&pool, &p, &x, &go, &mut gw);
        assert_close(
            &gw,
            &want,
            1e-13 * terms,
            &format!("grouped backward_weight {p:?}"),
        );
        let mut gw32 = vec![f32::NAN; p.weight_len()];
        conv2d_backward_weight(&pool, &p, &x32, &go32, &mut gw32);
        assert_close(
            &gw32,
            &want,
            2e-6 * terms,
            &format!("grouped backward_weight f32 {p:?}"),
        );

        let want = naive_backward_bias(&p, &go);
        let mut gb = vec![f64::NAN; p.c_out];
        conv2d_backward_bias(&p, &go, &mut gb);
        assert_close(
            &gb,
            &want,
            1e-13 * terms,
            &format!("grouped backward_bias {p:?}"),
        );
    }
}

#[test]
fn masked_input_gradient_through_panels_matches_float64() {
    let mut rng = StdRng::seed_from_u64(41);
    for p in [
        params(1, 3, 9, 40, 64, (3, 3), (1, 1), (1, 1)), // VGG-19 conv1_1's shape
        params(2, 3, 17, 70, 8, (3, 3), (1, 1), (1, 1)), // a last panel overlapping the one before
        params(1, 1, 5, 34, 16, (3, 3), (1, 1), (0, 0)),
        params(1, 2, 6, 37, 8, (5, 5), (1, 1), (2, 2)),
        params(1, 7, 8, 40, 16, (3, 3), (1, 1), (1, 1)), // K = 63
        params(1, 3, 9, 20, 64, (3, 3), (1, 1), (1, 1)), // OW < NR: the masked-copy path
    ] {
        let wide = p.out_w() >= 32;
        if SimdLevel::current() != SimdLevel::Portable {
            assert_eq!(panel_grad::applies::<f32>(&p), wide, "{p:?}");
        }
        let g: Vec<f64> = (0..p.output_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let y: Vec<f64> = (0..p.output_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let w: Vec<f64> = (0..p.weight_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let pool = BufferPool::new();
        for masked in [false, true] {
            let gm: Vec<f64> = if masked {
                g.iter()
                    .zip(&y)
                    .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
                    .collect()
            } else {
                g.clone()
            };
            let mut want = vec![0.0f64; p.input_len()];
            conv2d_backward_input(&pool, &p, &gm, &w, &mut want);
            let mut got = vec![f32::NAN; p.input_len()];
            let mask = masked.then(|| f32s(&y));
            conv2d_backward_input_masked(
                &pool,
                &p,
                &f32s(&g),
                mask.as_deref(),
                &f32s(&w),
                &mut got,
            );
            let err = got
                .iter()
                .zip(&want)
                .map(|(&a, &b)| (a as f64 - b).abs())
                .fold(0.0, f64::max);
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert!(
                err <= 1e-5 * scale,
                "{p:?} masked {masked}: max error {err}"
            );
        }
    }
}

#[test]
fn forward_relu_equals_forward_then_relu() {
    let mut rng = StdRng::seed_from_u64(43);
    for p in [
        params(1, 3, 9, 40, 64, (3, 3), (1, 1), (1, 1)), // packed panels: ReLU fused
        params(2, 5, 7, 9, 6, (3, 3), (1, 1), (1, 1)),   // im2col, then a pass
    ] {
        let x: Vec<f32> = (0..p.input_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let w: Vec<f32> = (0..p.weight_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let b: Vec<f32> = (0..p.c_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let pool = BufferPool::new();
        let mut want = vec![0.0f32; p.output_len()];
        conv2d_forward(&pool, &p, &x, &w, Some(&b), &mut want);
        assert!(
            want.iter().any(|&v| v < 0.0),
            "the test needs negative outputs"
        );
        want.iter_mut().for_each(|v| *v = v.max(0.0));
        let mut got = vec![f32::NAN; p.output_len()];
        conv2d_forward_relu(&pool, &p, &x, &w, Some(&b), &mut got);
        assert_eq!(got, want, "{p:?}");
    }
}

/// `x` reflect-padded by (pad_h, pad_w) on every side (PyTorch `ReflectionPad2d`).
fn reflect_pad(p: &Conv2dParams, x: &[f64]) -> Vec<f64> {
    use crate::cpu::spatial::{pad2d_forward, Pad2dParams, PadMode};
    let pp = Pad2dParams {
        n: p.n,
        c: p.c_in,
        h: p.h,
        w: p.w,
        top: p.pad_h,
        bottom: p.pad_h,
        left: p.pad_w,
        right: p.pad_w,
        mode: PadMode::Reflect,
    };
    let mut out = vec![0.0; pp.n * pp.c * pp.out_h() * pp.out_w()];
    pad2d_forward(&pp, x, &mut out);
    out
}

#[test]
fn reflect_padding_in_place_matches_a_padded_copy() {
    use crate::cpu::spatial::PadMode;
    let mut rng = StdRng::seed_from_u64(41);
    let reflect = |p: Conv2dParams| Conv2dParams {
        pad_mode: PadMode::Reflect,
        ..p
    };
    // The panel path: stride 2 (the style networks' contract layers), stride 1 with 8 outputs,
    // 9×9 with pad 4 (OW ≥ 32 each; the last panel of a row overlaps the one before).
    for p in [
        params(1, 5, 37, 70, 16, (3, 3), (2, 2), (1, 1)),
        params(2, 5, 9, 45, 8, (3, 3), (1, 1), (1, 1)),
        params(1, 5, 12, 40, 8, (9, 9), (1, 1), (4, 4)),
        params(1, 6, 6, 33, 8, (3, 5), (1, 1), (2, 2)),
    ] {
        let p = reflect(p);
        assert!(
            reflect_supported::<f32>(&p) && reflect_supported::<f64>(&p),
            "{p:?}"
        );
        let x = random(&mut rng, p.input_len());
        let w = random(&mut rng, p.weight_len());
        let b = random(&mut rng, p.c_out);
        // The reference: the naive convolution of the padded copy, padding 0.
        let want = naive_forward(&p.padded_first(), &reflect_pad(&p, &x), &w, Some(&b));
        let pool = BufferPool::new();
        let mut got = vec![0.0; p.output_len()];
        conv2d_forward(&pool, &p, &x, &w, Some(&b), &mut got);
        assert_close(&got, &want, 1e-12, &format!("f64 {p:?}"));
        // f32 at this CPU's level (the AVX-512 fill's edge rows take the reflecting path).
        let mut got32 = vec![0.0f32; p.output_len()];
        let (x32, w32, b32) = (to_f32(&x), to_f32(&w), to_f32(&b));
        conv2d_forward(&pool, &p, &x32, &w32, Some(&b32), &mut got32);
        // Sums of up to 405 products of magnitude ≤ 1: an absolute tolerance of 1e-4.
        assert_close(&got32, &want, 1e-4, &format!("f32 {p:?}"));
    }
    // Where reflection is not read in place: a pad as large as the input, the direct kernel's
    // shapes (padded: ≤ 4 outputs; or ≤ 4 inputs in f32 with AVX-512), groups.
    let few_in = params(1, 3, 12, 40, 8, (9, 9), (1, 1), (4, 4));
    assert_eq!(
        reflect_supported::<f32>(&reflect(few_in)),
        SimdLevel::current() != SimdLevel::Avx512
    );
    let no = [
        params(1, 3, 3, 40, 8, (3, 3), (1, 1), (3, 1)),
        params(1, 3, 8, 40, 4, (3, 3), (1, 1), (1, 1)),
        Conv2dParams {
            groups: 2,
            ..params(1, 4, 8, 40, 8, (3, 3), (1, 1), (1, 1))
        },
    ];
    for p in no {
        assert!(!reflect_supported::<f32>(&reflect(p)), "{p:?}");
    }
}

#[test]
#[should_panic(expected = "reflect padding on a path that pads with zeros")]
fn reflect_padding_where_unsupported_panics_rather_than_padding_with_zeros() {
    let p = Conv2dParams {
        pad_mode: crate::cpu::spatial::PadMode::Reflect,
        ..params(1, 3, 8, 40, 4, (3, 3), (1, 1), (1, 1))
    };
    let (x, w) = (vec![0.0f32; p.input_len()], vec![0.0f32; p.weight_len()]);
    let mut out = vec![0.0f32; p.output_len()];
    conv2d_forward(&BufferPool::new(), &p, &x, &w, None, &mut out);
}
