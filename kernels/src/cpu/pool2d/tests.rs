//! Unit tests of `pool2d` against naive f64 references.
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn params(
    (n, c, h, w): (usize, usize, usize, usize),
    (kh, kw): (usize, usize),
    (stride_h, stride_w): (usize, usize),
    (pad_h, pad_w): (usize, usize),
) -> Pool2dParams {
    Pool2dParams {
        n,
        c,
        h,
        w,
        kh,
        kw,
        stride_h,
        stride_w,
        pad_h,
        pad_w,
    }
}

/// Odd, non-square, strided, padded (0/1/2), windows 1×1 / 2×2 / 3×3 / 5×3, batch 1 and 3.
fn shapes() -> Vec<Pool2dParams> {
    vec![
        params((1, 3, 7, 9), (2, 2), (2, 2), (0, 0)),
        params((3, 5, 8, 6), (3, 3), (2, 2), (1, 1)),
        params((1, 4, 11, 13), (5, 3), (1, 1), (2, 1)),
        params((3, 2, 9, 9), (3, 3), (1, 2), (1, 1)),
        params((1, 1, 4, 4), (1, 1), (1, 1), (0, 0)),
        params((1, 7, 6, 5), (2, 2), (1, 1), (0, 0)),
        params((3, 3, 5, 7), (5, 5), (2, 2), (2, 2)),
        params((1, 6, 32, 30), (2, 2), (2, 2), (0, 0)),
        params((2, 3, 13, 67), (2, 2), (2, 2), (0, 0)),
        params((3, 9, 10, 3), (3, 3), (1, 1), (1, 1)),
        params((1, 2, 3, 3), (5, 3), (2, 1), (2, 1)),
    ]
}

fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Calls `f(plane, k, iy, ix)` for output element k (flat index) and every input cell of its
/// window, padding cells as `None`, in row-major window order.
fn for_each_window_cell(p: &Pool2dParams, mut f: impl FnMut(usize, usize, Option<(usize, usize)>)) {
    let (oh, ow) = (p.out_h(), p.out_w());
    for plane in 0..p.n * p.c {
        for oy in 0..oh {
            for ox in 0..ow {
                let k = (plane * oh + oy) * ow + ox;
                for i in 0..p.kh {
                    for j in 0..p.kw {
                        let iy = (oy * p.stride_h + i) as isize - p.pad_h as isize;
                        let ix = (ox * p.stride_w + j) as isize - p.pad_w as isize;
                        let inside =
                            iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w;
                        f(plane, k, inside.then_some((iy as usize, ix as usize)));
                    }
                }
            }
        }
    }
}

fn naive_max(p: &Pool2dParams, x: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let mut out = vec![f64::NEG_INFINITY; p.output_len()];
    let mut arg = vec![u32::MAX; p.output_len()];
    for_each_window_cell(p, |plane, k, cell| {
        if let Some((y, x_)) = cell {
            let v = x[(plane * p.h + y) * p.w + x_];
            if arg[k] == u32::MAX || v > out[k] {
                out[k] = v;
                arg[k] = (y * p.w + x_) as u32;
            }
        }
    });
    (out, arg)
}

fn naive_max_backward(p: &Pool2dParams, go: &[f64], arg: &[u32]) -> Vec<f64> {
    let mut gi = vec![0.0; p.input_len()];
    let ohw = p.out_h() * p.out_w();
    for (k, (&g, &a)) in go.iter().zip(arg).enumerate() {
        gi[(k / ohw) * p.h * p.w + a as usize] += g;
    }
    gi
}

fn naive_avg(p: &Pool2dParams, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; p.output_len()];
    let div = (p.kh * p.kw) as f64;
    for_each_window_cell(p, |plane, k, cell| {
        if let Some((y, x_)) = cell {
            out[k] += x[(plane * p.h + y) * p.w + x_] / div;
        }
    });
    out
}

/// The adjoint of the average, as a scatter.
fn naive_avg_backward(p: &Pool2dParams, go: &[f64]) -> Vec<f64> {
    let mut gi = vec![0.0; p.input_len()];
    let div = (p.kh * p.kw) as f64;
    for_each_window_cell(p, |plane, k, cell| {
        if let Some((y, x_)) = cell {
            gi[(plane * p.h + y) * p.w + x_] += go[k] / div;
        }
    });
    gi
}

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
fn max_pool_forward_matches_naive_with_argmax() {
    let mut rng = StdRng::seed_from_u64(21);
    for p in shapes() {
        // Small integers: many ties, so the first-maximum rule is exercised.
        for x in [
            random(&mut rng, p.input_len()),
            (0..p.input_len())
                .map(|_| rng.gen_range(0..3) as f64)
                .collect(),
        ] {
            let (want, want_arg) = naive_max(&p, &x);
            let mut out = vec![f64::NAN; p.output_len()];
            let mut arg = vec![7u32; p.output_len()];
            max_pool2d_forward(&p, &x, &mut out, &mut arg);
            assert_eq!(out, want, "max {p:?}");
            assert_eq!(arg, want_arg, "argmax {p:?}");

            let mut out32 = vec![f32::NAN; p.output_len()];
            let mut arg32 = vec![7u32; p.output_len()];
            max_pool2d_forward(&p, &to_f32(&x), &mut out32, &mut arg32);
            assert_close(&out32, &want, 1e-7, &format!("max f32 {p:?}"));
            assert_eq!(arg32, want_arg, "argmax f32 {p:?}");
        }
    }
}

#[test]
fn max_pool_padding_never_wins() {
    // All inputs negative, 3×3 window, padding 1: a zero-padding cell would win if counted.
    let p = params((1, 1, 2, 3), (3, 3), (1, 1), (1, 1));
    let x = [-6.0, -5.0, -4.0, -3.0, -2.0, -1.0];
    let mut out = [0.0; 6];
    let mut arg = [0u32; 6];
    max_pool2d_forward(&p, &x, &mut out, &mut arg);
    assert_eq!(out, [-2.0, -1.0, -1.0, -2.0, -1.0, -1.0]);
    assert_eq!(arg, [4, 5, 5, 4, 5, 5]);
}

#[test]
fn max_pool_propagates_nan() {
    let p = params((1, 1, 2, 2), (2, 2), (2, 2), (0, 0));
    let mut out = [0.0f32];
    let mut arg = [0u32];
    max_pool2d_forward(&p, &[1.0, f32::NAN, 3.0, 2.0], &mut out, &mut arg);
    assert!(out[0].is_nan());
    assert_eq!(arg, [1]);
}

#[test]
fn max_pool_2x2_nan_wins_wherever_it_is_and_then_stays() {
    // 3×5 plane (odd: the last row and column are outside every window), windows of
    // (row 0, row 1) × (columns 0–1 | 2–3): a NaN first, a NaN in the second row with a larger
    // value after it, and a plain window.
    let p = params((1, 1, 3, 5), (2, 2), (2, 2), (0, 0));
    let nan = f32::NAN;
    #[rustfmt::skip]
    let x = [
        nan, 9.0, 1.0, 2.0, 99.0,
        5.0, 7.0, nan, 8.0, 99.0,
        99.0, 99.0, 99.0, 99.0, 99.0,
    ];
    let (mut out, mut arg) = ([0.0f32; 2], [0u32; 2]);
    max_pool2d_forward(&p, &x, &mut out, &mut arg);
    assert!(out[0].is_nan() && out[1].is_nan(), "{out:?}");
    assert_eq!(arg, [0, 7]);
    // Ties: the first maximum in row-major order.
    let x = [
        3.0f32, 3.0, 1.0, 4.0, 0.0, 4.0, 4.0, 4.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    max_pool2d_forward(&p, &x, &mut out, &mut arg);
    assert_eq!((out, arg), ([4.0, 4.0], [5, 3]));
}

#[test]
fn max_pool_backward_matches_naive_scatter() {
    let mut rng = StdRng::seed_from_u64(22);
    for p in shapes() {
        let x = random(&mut rng, p.input_len());
        let (_, arg) = naive_max(&p, &x);
        let go = random(&mut rng, p.output_len());
        let want = naive_max_backward(&p, &go, &arg);
        let mut gi = vec![f64::NAN; p.input_len()];
        max_pool2d_backward(&p, &go, &arg, &mut gi);
        assert_close(&gi, &want, 1e-14, &format!("max backward {p:?}"));
        let mut gi32 = vec![f32::NAN; p.input_len()];
        max_pool2d_backward(&p, &to_f32(&go), &arg, &mut gi32);
        assert_close(&gi32, &want, 1e-6, &format!("max backward f32 {p:?}"));
    }
}

#[test]
fn avg_pool_forward_matches_naive() {
    let mut rng = StdRng::seed_from_u64(23);
    for p in shapes() {
        let x = random(&mut rng, p.input_len());
        let want = naive_avg(&p, &x);
        let mut out = vec![f64::NAN; p.output_len()];
        avg_pool2d_forward(&p, &x, &mut out);
        assert_close(&out, &want, 1e-14, &format!("avg {p:?}"));
        let mut out32 = vec![f32::NAN; p.output_len()];
        avg_pool2d_forward(&p, &to_f32(&x), &mut out32);
        assert_close(&out32, &want, 1e-6, &format!("avg f32 {p:?}"));
    }
    // Hand-computed: 2×2 ones, 3×3 window with padding 1 → each output sees 4 ones / 9.
    let p = params((1, 1, 2, 2), (3, 3), (1, 1), (1, 1));
    let mut out = [0.0; 4];
    avg_pool2d_forward(&p, &[1.0; 4], &mut out);
    assert_eq!(out, [4.0 / 9.0; 4]);
}

#[test]
fn avg_pool_backward_matches_naive_scatter() {
    let mut rng = StdRng::seed_from_u64(24);
    for p in shapes() {
        let go = random(&mut rng, p.output_len());
        let want = naive_avg_backward(&p, &go);
        let mut gi = vec![f64::NAN; p.input_len()];
        avg_pool2d_backward(&p, &go, &mut gi);
        assert_close(&gi, &want, 1e-14, &format!("avg backward {p:?}"));
        let mut gi32 = vec![f32::NAN; p.input_len()];
        avg_pool2d_backward(&p, &to_f32(&go), &mut gi32);
        assert_close(&gi32, &want, 1e-6, &format!("avg backward f32 {p:?}"));
    }
}

#[test]
fn avg_pool_gradient_matches_finite_differences_f64() {
    let mut rng = StdRng::seed_from_u64(25);
    for p in [
        params((2, 3, 5, 6), (3, 3), (2, 1), (1, 1)),
        params((1, 2, 7, 4), (5, 3), (1, 2), (2, 1)),
    ] {
        let x = random(&mut rng, p.input_len());
        let r = random(&mut rng, p.output_len());
        let loss = |x: &[f64]| {
            let mut out = vec![0.0; p.output_len()];
            avg_pool2d_forward(&p, x, &mut out);
            out.iter().zip(&r).map(|(o, r)| o * r).sum::<f64>()
        };
        let h = 1e-5;
        let fd: Vec<f64> = (0..x.len())
            .map(|k| {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[k] += h;
                down[k] -= h;
                (loss(&up) - loss(&down)) / (2.0 * h)
            })
            .collect();
        let mut gi = vec![0.0; p.input_len()];
        avg_pool2d_backward(&p, &r, &mut gi);
        assert_close(&gi, &fd, 1e-8, &format!("fd avg {p:?}"));
    }
}

#[test]
fn max_pool_gradient_matches_finite_differences_f64() {
    // Away from ties (distinct random values), max pooling is locally linear.
    let mut rng = StdRng::seed_from_u64(26);
    let p = params((2, 3, 6, 5), (3, 3), (2, 2), (1, 1));
    let x = random(&mut rng, p.input_len());
    let r = random(&mut rng, p.output_len());
    let mut arg = vec![0u32; p.output_len()];
    let loss = |x: &[f64], arg: &mut [u32]| {
        let mut out = vec![0.0; p.output_len()];
        max_pool2d_forward(&p, x, &mut out, arg);
        out.iter().zip(&r).map(|(o, r)| o * r).sum::<f64>()
    };
    loss(&x, &mut arg);
    let mut gi = vec![0.0; p.input_len()];
    max_pool2d_backward(&p, &r, &arg, &mut gi);
    let h = 1e-7;
    let mut scratch = vec![0u32; p.output_len()];
    for k in 0..x.len() {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[k] += h;
        down[k] -= h;
        let fd = (loss(&up, &mut scratch) - loss(&down, &mut scratch)) / (2.0 * h);
        assert!((gi[k] - fd).abs() < 1e-6, "fd max [{k}]: {} vs {fd}", gi[k]);
    }
}

#[test]
fn window_clips_to_the_input() {
    assert_eq!(window(0, 3, 1, 1, 5), (0, 2));
    assert_eq!(window(4, 3, 1, 1, 5), (3, 5));
    assert_eq!(window(2, 2, 2, 0, 5), (4, 5));
    assert_eq!(window(0, 2, 1, 3, 5), (0, 0));
}

#[test]
fn max_pool_2x2_vector_rows_keep_the_nan_and_tie_rules() {
    // 2 × 70 (35 windows: two blocks of 16 for the vector path, 3 for the scalar tail) with
    // NaNs and ties placed in every cell position of some windows.
    let p = params((1, 1, 2, 70), (2, 2), (2, 2), (0, 0));
    let mut rng = StdRng::seed_from_u64(23);
    let mut x: Vec<f32> = (0..140).map(|_| rng.gen_range(0..3) as f32).collect();
    for (i, v) in x.iter_mut().enumerate() {
        if i % 7 == 3 || i % 11 == 0 {
            *v = f32::NAN;
        }
    }
    let (mut out, mut arg) = (vec![0.0f32; 35], vec![0u32; 35]);
    max_pool2d_forward(&p, &x, &mut out, &mut arg);
    for ox in 0..35 {
        let cells = [2 * ox, 2 * ox + 1, 70 + 2 * ox, 70 + 2 * ox + 1];
        let (mut best, mut at) = (x[cells[0]], cells[0]);
        for &c in &cells[1..] {
            if !best.is_nan() && (x[c] > best || x[c].is_nan()) {
                (best, at) = (x[c], c);
            }
        }
        assert_eq!(arg[ox] as usize, at, "window {ox}");
        assert!(
            out[ox] == best || (out[ox].is_nan() && best.is_nan()),
            "window {ox}"
        );
    }
}
