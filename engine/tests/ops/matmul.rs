//! Matrix products (`engine/src/ops/matmul.rs`): 2-D, batched, batched × shared, views.

use crate::common::*;
use engine::test_device;

test_device!(checks, |dev| {
    // (b) gradients
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

    // (c) CPU vs GPU
    if is_gpu(dev) {
        parity(
            "2-D",
            dev,
            &[randn_f32(&[37, 19], 41), randn_f32(&[19, 23], 42)],
            |t| t[0].matmul(&t[1]),
        );
        parity(
            "batched",
            dev,
            &[randn_f32(&[3, 5, 7], 43), randn_f32(&[3, 7, 4], 44)],
            |t| t[0].matmul(&t[1]),
        );
        parity(
            "batched × shared",
            dev,
            &[randn_f32(&[3, 5, 7], 45), randn_f32(&[7, 4], 46)],
            |t| t[0].matmul(&t[1]),
        );
        parity(
            "transposed operands",
            dev,
            &[randn_f32(&[19, 37], 47), randn_f32(&[23, 19], 48)],
            |t| t[0].transpose(0, 1)?.matmul(&t[1].transpose(0, 1)?),
        );
        parity(
            "narrowed rows (ld > cols)",
            dev,
            &[randn_f32(&[8, 12], 49), randn_f32(&[5, 6], 50)],
            |t| t[0].narrow(1, 3, 5)?.matmul(&t[1]),
        );
        parity(
            "expanded (needs a copy)",
            dev,
            &[randn_f32(&[1, 6], 51), randn_f32(&[6, 3], 52)],
            |t| t[0].expand(&[4, 6])?.matmul(&t[1]),
        );
        parity(
            "vector shapes",
            dev,
            &[randn_f32(&[1, 9], 53), randn_f32(&[9, 1], 54)],
            |t| t[0].matmul(&t[1]),
        );
    }
});
