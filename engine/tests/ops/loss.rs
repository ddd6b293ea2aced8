//! Objective terms (`engine/src/ops/loss.rs`): gram_matrix, mse_loss, tv_loss.

use crate::common::*;
use engine::test_device;

test_device!(checks, |dev| {
    // (b) gradients
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

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let f = randn_f32(&[1, 8, 6, 5], 91);
        parity("gram_matrix", dev, &[f.clone()], |t| t[0].gram_matrix());
        parity(
            "gram_matrix batched",
            dev,
            &[randn_f32(&[2, 4, 3, 5], 92)],
            |t| t[0].gram_matrix(),
        );
        parity(
            "mse_loss",
            dev,
            &[f.clone(), randn_f32(&[1, 8, 6, 5], 93)],
            |t| t[0].mse_loss(&t[1]),
        );
        parity("tv_loss", dev, &[randn_f32(&[2, 3, 9, 7], 94)], |t| {
            t[0].tv_loss()
        });
    }
});
