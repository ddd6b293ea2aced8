//! Pooling (`engine/src/ops/pool2d.rs`): max_pool2d, avg_pool2d and global_avg_pool2d.

use crate::common::*;
use engine::{test_device, Pool2dOptions, Tensor};

test_device!(checks, |dev| {
    // (b) gradients
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

    // global average pooling: values (plane means) and gradient
    let x = randn(&[2, 3, 5, 4], 33, dev);
    let xv = x.to_vec_f64().unwrap();
    let means: Vec<f64> = xv
        .chunks(20)
        .map(|p| p.iter().sum::<f64>() / 20.0)
        .collect();
    let gap = x.global_avg_pool2d().unwrap();
    assert_eq!(gap.shape(), [2, 3, 1, 1]);
    assert_close(
        &gap.to_vec_f64().unwrap(),
        &means,
        1e-14,
        "global_avg_pool2d",
    );
    grad_check(
        |t| project(&t[0].global_avg_pool2d()?),
        &[x.clone()],
        EPS,
        TOL,
    );
    assert!(x.reshape(&[6, 20]).unwrap().global_avg_pool2d().is_err());

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let x = randn_f32(&[1, 1280, 8, 8], 34);
        parity("global_avg_pool2d", dev, &[x], |t| t[0].global_avg_pool2d());
        for (i, &(n, c, h, w, k, s, p)) in [
            (1, 2, 4, 4, 2, 2, 0),
            (2, 3, 7, 5, 3, 2, 1),
            (1, 1, 9, 6, 2, 1, 1),
            (2, 2, 5, 7, 3, 3, 0),
            (1, 8, 32, 30, 2, 2, 0),
        ]
        .iter()
        .enumerate()
        {
            // Distinct values, so no max is tied and the argmax is the same on both devices.
            let len = n * c * h * w;
            let vals: Vec<f32> = (0..len)
                .map(|j| ((j * 7919 + 13 * i) % len) as f32 * 0.01 - 1.0)
                .collect();
            let x = Tensor::from_vec(vals, &[n, c, h, w]).unwrap();
            let opts = Pool2dOptions::new(k, s, p);
            parity("max_pool2d", dev, &[x.clone()], move |t| {
                t[0].max_pool2d(opts)
            });
            parity("avg_pool2d", dev, &[x], move |t| t[0].avg_pool2d(opts));
        }
    }
});
