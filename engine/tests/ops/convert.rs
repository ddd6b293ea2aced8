//! Conversions (`engine/src/ops/convert.rs`): cast between dtypes. (`to_device` across devices,
//! its errors and its gradient are in `cuda_device.rs`.)

use crate::common::*;
use engine::{test_device, DType};

test_device!(checks, |dev| {
    // (b) gradients: cast is differentiable
    let x = randn(&[5], 50, dev);
    // f64 → f32 → f64 loses precision, so a looser tolerance
    grad_check(
        |t| project(&t[0].cast(DType::F32)?.square()?.cast(DType::F64)?),
        &[x],
        1e-3,
        1e-3,
    );

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let f = randn_f32(&[1, 8, 6, 5], 91);
        parity("cast round trip", dev, &[f], |t| {
            t[0].cast(DType::F64)?.square()?.cast(DType::F32)
        });
    }
});
