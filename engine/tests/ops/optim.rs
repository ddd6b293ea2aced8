//! The fused Adam update (`engine/src/ops/optim.rs`): adam_step against its formula in f64, and
//! on a GPU against the CPU.

use crate::common::*;
use engine::ops::optim::AdamParams;
use engine::{test_device, Tensor};

test_device!(checks, |dev| {
    let (x, g) = (randn_f32(&[3, 50], 131), randn_f32(&[3, 50], 132));
    let (m, v) = (
        randn_f32(&[3, 50], 133).mul_scalar(0.1).unwrap(),
        randn_f32(&[3, 50], 134).abs().unwrap(),
    );
    let p = AdamParams {
        learning_rate: 0.5,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        t: 3,
    };
    let d = |t: &Tensor| t.to_device(dev).unwrap();
    let (x1, m1, v1) = d(&x).adam_step(&d(&g), &d(&m), &d(&v), p).unwrap();
    assert_eq!(x1.device(), dev);
    // (a) values: the formula in f64
    let (xs, gs, ms, vs) = (
        x.to_vec_f64().unwrap(),
        g.to_vec_f64().unwrap(),
        m.to_vec_f64().unwrap(),
        v.to_vec_f64().unwrap(),
    );
    let (bc1, bc2) = (1.0 - 0.9f64.powi(3), 1.0 - 0.999f64.powi(3));
    let want_m: Vec<f64> = (0..150).map(|i| 0.9 * ms[i] + 0.1 * gs[i]).collect();
    let want_v: Vec<f64> = (0..150)
        .map(|i| 0.999 * vs[i] + 0.001 * gs[i] * gs[i])
        .collect();
    let want_x: Vec<f64> = (0..150)
        .map(|i| xs[i] - 0.5 / bc1 * want_m[i] / ((want_v[i] / bc2).sqrt() + 1e-8))
        .collect();
    assert_close(&m1.to_vec_f64().unwrap(), &want_m, 1e-6, "adam m");
    assert_close(&v1.to_vec_f64().unwrap(), &want_v, 1e-6, "adam v");
    assert_close(&x1.to_vec_f64().unwrap(), &want_x, 1e-6, "adam x");
    assert!(d(&x)
        .adam_step(&d(&g), &d(&m), &d(&v), AdamParams { t: 0, ..p })
        .is_err());

    // (b) adam_step is not on the tape: no gradient check.

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let (cx, cm, cv) = x.adam_step(&g, &m, &v, p).unwrap();
        assert_close(
            &x1.to_vec_f64().unwrap(),
            &cx.to_vec_f64().unwrap(),
            1e-6,
            "gpu adam x",
        );
        assert_close(
            &m1.to_vec_f64().unwrap(),
            &cm.to_vec_f64().unwrap(),
            1e-6,
            "gpu adam m",
        );
        assert_close(
            &v1.to_vec_f64().unwrap(),
            &cv.to_vec_f64().unwrap(),
            1e-6,
            "gpu adam v",
        );
    }
});
