//! Reductions (`engine/src/ops/reduce.rs`): sum, mean, sum_axis, mean_axis and dot.

use crate::common::*;
use engine::{test_device, DType, Tensor};

test_device!(checks, |dev| {
    // (a) values: dot accumulates in f64 and checks its operands.
    // 2^20 + 3 elements of 0.1·0.3 each: an f32 running sum would drift by ~1e-3 relative.
    let n = (1 << 20) + 3;
    let on = |t: Tensor| t.to_device(dev).unwrap();
    let a = on(Tensor::full(&[n], 0.1, DType::F32).unwrap());
    let b = on(Tensor::full(&[n], 0.3, DType::F32).unwrap());
    let want = n as f64 * (0.1f32 as f64) * (0.3f32 as f64);
    let got = a.dot(&b).unwrap();
    assert!((got - want).abs() / want < 1e-12, "dot {got} vs {want}");
    let c = on(Tensor::full(&[n - 1], 0.3, DType::F32).unwrap());
    assert!(a.dot(&c).is_err());
    let d = on(Tensor::full(&[n], 0.3, DType::F64).unwrap());
    assert!(a.dot(&d).is_err());

    // (b) gradients
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

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let x = randn_f32(&[4, 300, 7], 21);
        parity("sum", dev, &[x.clone()], |t| t[0].sum());
        parity("mean", dev, &[x.clone()], |t| t[0].mean());
        for axis in 0..3 {
            for keep in [false, true] {
                parity("sum_axis", dev, &[x.clone()], move |t| {
                    t[0].sum_axis(axis, keep)
                });
                parity("mean_axis", dev, &[x.clone()], move |t| {
                    t[0].mean_axis(axis, keep)
                });
            }
        }
        // a long innermost axis (one block per row) and a big full sum (many blocks)
        let long = randn_f32(&[3, 5000], 22);
        parity("sum_axis long rows", dev, &[long], |t| {
            t[0].sum_axis(1, false)
        });
        let big = randn_f32(&[1 << 20], 23);
        parity("sum of 2^20", dev, &[big], |t| t[0].sum());

        // dot (not on the tape): the GPU's f64 accumulation against the CPU's
        let a = randn_f32(&[3, 1000, 77], 301);
        let b = randn_f32(&[3, 1000, 77], 302);
        let cpu = a.dot(&b).unwrap();
        let on_gpu = a
            .to_device(dev)
            .unwrap()
            .dot(&b.to_device(dev).unwrap())
            .unwrap();
        assert!(
            (cpu - on_gpu).abs() <= 1e-9 * cpu.abs().max(1.0),
            "{cpu} vs {on_gpu}"
        );
    }
});
