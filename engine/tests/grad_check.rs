//! Finite-difference gradient checks in f64 for every op, on several small random shapes
//! (odd sizes, non-square, stride 1 and 2, padding 0/1/2, batch > 1, broadcasting).

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in these tables

use engine::testing::grad_check;
use engine::{test_device, Conv2dOptions, DType, Device, Pool2dOptions, Tensor};

const EPS: f64 = 1e-6;
const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64, dev: Device) -> Tensor {
    Tensor::randn(shape, 1.0, seed, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

/// A fixed random projection turning any output into a scalar with non-uniform weights, so that
/// every output element's gradient matters.
fn project(y: &Tensor) -> engine::Result<Tensor> {
    let w = Tensor::randn(y.shape(), 1.0, 999, DType::F64)?.to_device(y.device())?;
    y.mul(&w)?.sum()
}

test_device!(elementwise_broadcasting, |dev| {
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[2, 3, 5], &[5]),
        (&[4, 1], &[1, 3]),
        (&[2, 1, 3], &[4, 1]),
        (&[3], &[]),
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        let (a, b) = (randn(sa, i as u64, dev), randn(sb, 100 + i as u64, dev));
        grad_check(
            |t| project(&t[0].add(&t[1])?),
            &[a.clone(), b.clone()],
            EPS,
            TOL,
        );
        grad_check(
            |t| project(&t[0].sub(&t[1])?),
            &[a.clone(), b.clone()],
            EPS,
            TOL,
        );
        grad_check(
            |t| project(&t[0].mul(&t[1])?),
            &[a.clone(), b.clone()],
            EPS,
            TOL,
        );
        // keep the divisor away from zero
        let b_pos = b.abs().unwrap().add_scalar(0.5).unwrap();
        grad_check(
            |t| project(&t[0].div(&t[1])?),
            &[a.clone(), b_pos],
            EPS,
            TOL,
        );
    }
});

test_device!(unary_and_scalar_ops, |dev| {
    let x = randn(&[3, 5, 2], 7, dev);
    grad_check(|t| project(&t[0].neg()?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].add_scalar(2.5)?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].mul_scalar(-1.5)?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].square()?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].abs()?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].relu()?), &[x.clone()], EPS, TOL);
    let pos = x.abs().unwrap().add_scalar(0.3).unwrap();
    grad_check(|t| project(&t[0].sqrt()?), &[pos], EPS, TOL);
});

test_device!(reductions, |dev| {
    let x = randn(&[3, 4, 5], 11, dev);
    grad_check(|t| t[0].sum(), &[x.clone()], EPS, TOL);
    grad_check(|t| t[0].mean()?.mul_scalar(3.0), &[x.clone()], EPS, TOL);
    for axis in 0..3 {
        for keep in [false, true] {
            grad_check(
                |t| project(&t[0].sum_axis(axis, keep)?),
                &[x.clone()],
                EPS,
                TOL,
            );
            grad_check(
                |t| project(&t[0].mean_axis(axis, keep)?),
                &[x.clone()],
                EPS,
                TOL,
            );
        }
    }
});

test_device!(shape_ops, |dev| {
    let x = randn(&[2, 3, 4], 13, dev);
    grad_check(|t| project(&t[0].reshape(&[6, 4])?), &[x.clone()], EPS, TOL);
    grad_check(
        |t| project(&t[0].permute(&[2, 0, 1])?),
        &[x.clone()],
        EPS,
        TOL,
    );
    grad_check(
        |t| project(&t[0].transpose(0, 2)?.contiguous()?),
        &[x.clone()],
        EPS,
        TOL,
    );
    grad_check(|t| project(&t[0].narrow(2, 1, 2)?), &[x.clone()], EPS, TOL);
    grad_check(
        |t| project(&t[0].narrow(1, 0, 2)?.reshape(&[16])?),
        &[x.clone()],
        EPS,
        TOL,
    );
    let col = randn(&[3, 1], 14, dev);
    grad_check(|t| project(&t[0].expand(&[2, 3, 5])?), &[col], EPS, TOL);
    // a reshape of a non-contiguous view copies, and still differentiates
    grad_check(
        |t| project(&t[0].transpose(1, 2)?.reshape(&[2, 12])?),
        &[x.clone()],
        EPS,
        TOL,
    );
});

test_device!(matmul_2d_and_batched, |dev| {
    let (a, b) = (randn(&[3, 5], 21, dev), randn(&[5, 4], 22, dev));
    grad_check(
        |t| project(&t[0].matmul(&t[1])?),
        &[a.clone(), b.clone()],
        EPS,
        TOL,
    );
    // transposed views as operands
    let bt = randn(&[4, 5], 23, dev);
    grad_check(
        |t| project(&t[0].matmul(&t[1].transpose(0, 1)?)?),
        &[a.clone(), bt],
        EPS,
        TOL,
    );
    let (ba, bb) = (randn(&[2, 3, 5], 24, dev), randn(&[2, 5, 7], 25, dev));
    grad_check(
        |t| project(&t[0].matmul(&t[1])?),
        &[ba.clone(), bb],
        EPS,
        TOL,
    );
    grad_check(|t| project(&t[0].matmul(&t[1])?), &[ba, b], EPS, TOL);
});

test_device!(conv2d_all_gradients, |dev| {
    // (n, c_in, h, w, c_out, kh, kw, stride, pad)
    let cases = [
        (1, 1, 5, 5, 1, 3, 3, 1, 1),
        (2, 3, 7, 6, 4, 3, 3, 1, 1),
        (1, 2, 9, 7, 3, 3, 3, 2, 0),
        (3, 2, 6, 8, 2, 3, 3, 2, 2),
        (1, 3, 5, 7, 5, 1, 1, 1, 0),
        (2, 2, 8, 5, 3, 5, 3, 1, 2),
    ];
    for (i, &(n, ci, h, w, co, kh, kw, s, p)) in cases.iter().enumerate() {
        let seed = 300 + 10 * i as u64;
        let x = randn(&[n, ci, h, w], seed, dev);
        let wt = randn(&[co, ci, kh, kw], seed + 1, dev);
        let b = randn(&[co], seed + 2, dev);
        let opts = Conv2dOptions::new(s, p);
        grad_check(
            |t| project(&t[0].conv2d(&t[1], Some(&t[2]), opts)?),
            &[x.clone(), wt.clone(), b],
            EPS,
            TOL,
        );
        grad_check(
            |t| project(&t[0].conv2d(&t[1], None, opts)?),
            &[x, wt],
            EPS,
            TOL,
        );
    }
});

test_device!(pooling, |dev| {
    // (n, c, h, w, k, s, p)
    for (i, &(n, c, h, w, k, s, p)) in [
        (1, 2, 4, 4, 2, 2, 0),
        (2, 3, 7, 5, 3, 2, 1),
        (1, 1, 9, 6, 2, 1, 1),
        (2, 2, 5, 7, 3, 3, 0),
    ]
    .iter()
    .enumerate()
    {
        // Distinct values (a permutation) so the max is never tied: the derivative exists.
        let len = n * c * h * w;
        let vals: Vec<f64> = (0..len)
            .map(|j| ((j * 7919 + 13 * i) % len) as f64 * 0.1 - 1.0)
            .collect();
        let x = Tensor::from_vec(vals, &[n, c, h, w])
            .unwrap()
            .to_device(dev)
            .unwrap();
        let opts = Pool2dOptions::new(k, s, p);
        grad_check(
            |t| project(&t[0].max_pool2d(opts)?),
            &[x.clone()],
            1e-4,
            TOL,
        );
        grad_check(|t| project(&t[0].avg_pool2d(opts)?), &[x.clone()], EPS, TOL);
    }
});

test_device!(objective_terms, |dev| {
    let f = randn(&[1, 4, 3, 5], 41, dev);
    let target = randn(&[4, 4], 42, dev);
    grad_check(
        |t| t[0].gram_matrix()?.mse_loss(&t[1]),
        &[f.clone(), target],
        EPS,
        TOL,
    );
    let fb = randn(&[2, 3, 2, 3], 43, dev);
    grad_check(|t| project(&t[0].gram_matrix()?), &[fb], EPS, TOL);
    let other = randn(&[1, 4, 3, 5], 44, dev);
    grad_check(|t| t[0].mse_loss(&t[1]), &[f.clone(), other], EPS, TOL);
    let img = randn(&[2, 3, 5, 4], 45, dev);
    grad_check(|t| t[0].tv_loss(), &[img], EPS, TOL);
});

test_device!(cast_is_differentiable, |dev| {
    let x = randn(&[5], 50, dev);
    // f64 → f32 → f64 loses precision, so a looser tolerance
    grad_check(
        |t| project(&t[0].cast(DType::F32)?.square()?.cast(DType::F64)?),
        &[x],
        1e-3,
        1e-3,
    );
});

#[test]
fn dot_accumulates_in_f64_and_checks_shapes() {
    // 2^20 + 3 elements of 0.1·0.3 each: an f32 running sum would drift by ~1e-3 relative.
    let n = (1 << 20) + 3;
    let a = Tensor::full(&[n], 0.1, DType::F32).unwrap();
    let b = Tensor::full(&[n], 0.3, DType::F32).unwrap();
    let want = n as f64 * (0.1f32 as f64) * (0.3f32 as f64);
    let got = a.dot(&b).unwrap();
    assert!((got - want).abs() / want < 1e-12, "dot {got} vs {want}");
    let c = Tensor::full(&[n - 1], 0.3, DType::F32).unwrap();
    assert!(a.dot(&c).is_err());
    let d = Tensor::full(&[n], 0.3, DType::F64).unwrap();
    assert!(a.dot(&d).is_err());
}

test_device!(fused_conv2d_relu_matches_conv2d_then_relu, |dev| {
    // Frozen weights (the fused path: one tape node on every device): values and input
    // gradients equal the two ops', for the CPU's Winograd shapes (3×3, ≥16 channels) and
    // im2col ones, in f64 and f32, through Tensor::conv2d_relu and FrozenConv2d.
    for &(c, k, h, w, winograd_ok) in &[(16, 8, 9, 7, true), (3, 5, 6, 5, false)] {
        for dtype in [DType::F64, DType::F32] {
            let on = |t: Tensor| t.to_device(dev).unwrap();
            let x = on(Tensor::randn(&[2, c, h, w], 1.0, 11, dtype).unwrap());
            let wt = on(Tensor::randn(&[k, c, 3, 3], 0.3, 12, dtype).unwrap());
            let b = on(Tensor::randn(&[k], 0.5, 13, dtype).unwrap());
            let frozen = engine::FrozenConv2d::new(wt.clone(), Some(b.clone())).unwrap();
            let o = Conv2dOptions::new(1, 1);
            let run = |fused: u8| {
                let xl = x.detach().requires_grad_();
                let y = match fused {
                    0 => xl.conv2d(&wt, Some(&b), o).unwrap().relu().unwrap(),
                    1 => xl.conv2d_relu(&wt, Some(&b), o).unwrap(),
                    _ => frozen.forward_relu(&xl, o).unwrap(),
                };
                let g = on(Tensor::randn(y.shape(), 1.0, 14, dtype).unwrap());
                y.mul(&g).unwrap().sum().unwrap().backward().unwrap();
                (
                    y.to_vec_f64().unwrap(),
                    xl.grad().unwrap().to_vec_f64().unwrap(),
                )
            };
            let (yr, gr) = run(0);
            for fused in [1, 2] {
                let (yf, gf) = run(fused);
                let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
                engine::testing::assert_close(
                    &yf,
                    &yr,
                    tol,
                    &format!("fused relu values {c}ch {winograd_ok} ({fused})"),
                );
                engine::testing::assert_close(
                    &gf,
                    &gr,
                    tol,
                    &format!("fused relu grad {c}ch {winograd_ok} ({fused})"),
                );
                assert!(yf.iter().all(|&v| v >= 0.0));
            }
        }
    }
    // And the finite-difference check of the fused op itself (f64).
    let wt = Tensor::randn(&[4, 16, 3, 3], 0.3, 21, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap();
    let x = Tensor::randn(&[1, 16, 5, 6], 1.0, 22, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap();
    grad_check(
        |t| project(&t[0].conv2d_relu(&wt, None, Conv2dOptions::new(1, 1))?),
        &[x],
        EPS,
        TOL,
    );
});
