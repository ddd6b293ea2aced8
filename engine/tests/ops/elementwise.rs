//! Elementwise ops (`engine/src/ops/elementwise.rs`, `activation.rs`): add, sub, mul, div with
//! broadcasting; neg, add_scalar, mul_scalar, square, abs, sqrt, relu,
//! sigmoid and clamp/relu6.

use crate::common::*;
use engine::{test_device, DType, Tensor};

test_device!(checks, |dev| {
    // (b) gradients: binary ops with broadcasting
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

    // (b) gradients: unary and scalar ops
    let x = randn(&[3, 5, 2], 7, dev);
    grad_check(|t| project(&t[0].neg()?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].add_scalar(2.5)?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].mul_scalar(-1.5)?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].square()?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].abs()?), &[x.clone()], EPS, TOL);
    grad_check(|t| project(&t[0].relu()?), &[x.clone()], EPS, TOL);
    let pos = x.abs().unwrap().add_scalar(0.3).unwrap();
    grad_check(|t| project(&t[0].sqrt()?), &[pos], EPS, TOL);
    grad_check(|t| project(&t[0].sigmoid()?), &[x.clone()], EPS, TOL);
    // Scaled so that values sit on both sides of both bounds (none within EPS of one).
    let wide = x.mul_scalar(4.0).unwrap();
    grad_check(
        |t| project(&t[0].clamp(-1.0, 2.5)?),
        &[wide.clone()],
        EPS,
        TOL,
    );
    grad_check(|t| project(&t[0].relu6()?), &[wide.clone()], EPS, TOL);

    // (a) values of sigmoid and clamp against f64 formulas
    let xs = wide.to_vec_f64().unwrap();
    let sig: Vec<f64> = xs.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    assert_close(
        &wide.sigmoid().unwrap().to_vec_f64().unwrap(),
        &sig,
        1e-15,
        "sigmoid",
    );
    let six: Vec<f64> = xs.iter().map(|v| v.clamp(0.0, 6.0)).collect();
    assert_eq!(wide.relu6().unwrap().to_vec_f64().unwrap(), six, "relu6");
    let big = engine::Tensor::from_vec(vec![-100.0f32, 100.0], &[2])
        .unwrap()
        .to_device(dev)
        .unwrap();
    assert_eq!(big.sigmoid().unwrap().to_vec_f32().unwrap(), [0.0, 1.0]);
    assert!(x.clamp(1.0, -1.0).is_err(), "clamp with min > max");
    assert!(x.clamp(f64::NAN, 1.0).is_err(), "clamp with a NaN bound");

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let cases: &[(&[usize], &[usize])] = &[
            (&[3, 4], &[3, 4]),
            (&[2, 3, 5], &[5]),
            (&[4, 1], &[1, 3]),
            (&[2, 1, 3], &[4, 1]),
            (&[3], &[]),
            (&[64, 33, 17], &[33, 1]),
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let (a, b) = (randn_f32(sa, i as u64), randn_f32(sb, 100 + i as u64));
            let b_pos = b.abs().unwrap().add_scalar(0.5).unwrap();
            parity("add", dev, &[a.clone(), b.clone()], |t| t[0].add(&t[1]));
            parity("sub", dev, &[a.clone(), b.clone()], |t| t[0].sub(&t[1]));
            parity("mul", dev, &[a.clone(), b.clone()], |t| t[0].mul(&t[1]));
            parity("div", dev, &[a.clone(), b_pos], |t| t[0].div(&t[1]));
        }
        // strided operands (a transposed view and a narrowed one)
        let a = randn_f32(&[5, 7], 7);
        let b = randn_f32(&[7, 9], 8);
        parity("add of views", dev, &[a, b], |t| {
            t[0].transpose(0, 1)?.add(&t[1].narrow(1, 2, 5)?)
        });

        let x = randn_f32(&[3, 50, 41], 11);
        let pos = x.abs().unwrap().add_scalar(0.1).unwrap();
        parity("neg", dev, &[x.clone()], |t| t[0].neg());
        parity("add_scalar", dev, &[x.clone()], |t| t[0].add_scalar(2.5));
        parity("mul_scalar", dev, &[x.clone()], |t| t[0].mul_scalar(-1.5));
        parity("square", dev, &[x.clone()], |t| t[0].square());
        parity("sqrt", dev, &[pos], |t| t[0].sqrt());
        parity("abs", dev, &[x.clone()], |t| t[0].abs());
        parity("relu", dev, &[x.clone()], |t| t[0].relu());
        let wide = x.mul_scalar(4.0).unwrap();
        parity("sigmoid", dev, &[wide.clone()], |t| t[0].sigmoid());
        parity("clamp", dev, &[wide.clone()], |t| t[0].clamp(-1.0, 2.5));
        parity("relu6", dev, &[wide], |t| t[0].relu6());
        parity("relu of a permuted view", dev, &[x], |t| {
            t[0].permute(&[2, 0, 1])?.relu()
        });
    }
});

// The by-value ops (`into_add`, `into_relu`, `into_relu6`, `into_sigmoid`): the by-reference
// op's values; a tensor held elsewhere (a clone, a view) is left as it was; under the tape the
// op's own gradients.
test_device!(by_value, |dev| {
    for dtype in [DType::F64, DType::F32] {
        let on = |t: Tensor| t.to_device(dev).unwrap();
        let x = on(Tensor::randn(&[2, 3, 4, 5], 4.0, 71, dtype).unwrap());
        let r = on(Tensor::randn(&[2, 3, 4, 5], 1.0, 72, dtype).unwrap());
        let before = x.to_vec_f64().unwrap();
        type ByRef = fn(&Tensor, &Tensor) -> engine::Result<Tensor>;
        type ByValue = fn(Tensor, &Tensor) -> engine::Result<Tensor>;
        let cases: [(&str, ByRef, ByValue); 4] = [
            ("add", |a, b| a.add(b), |a, b| a.into_add(b)),
            ("relu", |a, _| a.relu(), |a, _| a.into_relu()),
            ("relu6", |a, _| a.relu6(), |a, _| a.into_relu6()),
            ("sigmoid", |a, _| a.sigmoid(), |a, _| a.into_sigmoid()),
        ];
        for (name, by_ref, by_value) in cases {
            let want = by_ref(&x, &r).unwrap().to_vec_f64().unwrap();
            let run = |t: Tensor| by_value(t, &r).unwrap().to_vec_f64().unwrap();
            assert_eq!(
                run(x.add_scalar(0.0).unwrap()),
                want,
                "{name} {dtype:?}: fresh"
            );
            assert_eq!(run(x.clone()), want, "{name} {dtype:?}: clone");
            let t = x.transpose(2, 3).unwrap();
            let rt = r.transpose(2, 3).unwrap();
            let want_t = by_ref(&t, &rt).unwrap().to_vec_f64().unwrap();
            let got_t = by_value(t.clone(), &rt).unwrap().to_vec_f64().unwrap();
            assert_eq!(got_t, want_t, "{name} {dtype:?}: view");
            assert_eq!(
                x.to_vec_f64().unwrap(),
                before,
                "{name} {dtype:?}: x changed"
            );
        }
        // A broadcast addend: the out-of-place sum.
        let row = on(Tensor::randn(&[5], 1.0, 73, dtype).unwrap());
        let want = x.add(&row).unwrap().to_vec_f64().unwrap();
        let got = x.add_scalar(0.0).unwrap().into_add(&row).unwrap();
        assert_eq!(got.to_vec_f64().unwrap(), want);
    }
    // Under the tape: gradients to both operands, f64 finite differences.
    let (a, b) = (randn(&[2, 3], 74, dev), randn(&[2, 3], 75, dev));
    grad_check(
        |t| project(&t[0].add_scalar(0.0)?.into_add(&t[1])?.into_sigmoid()?),
        &[a.clone(), b.clone()],
        EPS,
        TOL,
    );
    grad_check(
        |t| project(&t[0].mul_scalar(3.0)?.into_relu6()?.into_relu()?),
        &[a],
        EPS,
        TOL,
    );
});
