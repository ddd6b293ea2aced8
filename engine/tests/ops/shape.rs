//! Shape ops and views (`engine/src/ops/shape.rs`): reshape, permute, transpose, narrow, expand,
//! contiguous.

use crate::common::*;
use engine::{test_device, Tensor};

test_device!(checks, |dev| {
    // (a) values: views share storage and read strided values right
    let x = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert!(p.shares_storage(&x) && !p.is_contiguous());
    assert_eq!(p.shape(), &[4, 2, 3]);
    let v = p.to_vec::<f32>().unwrap();
    // p[i, j, k] = x[j, k, i] = 12j + 4k + i
    assert_eq!(&v[..6], &[0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    assert_eq!(v[23], 23.0);
    let n = x.narrow(2, 1, 2).unwrap().narrow(0, 1, 1).unwrap();
    assert_eq!(
        n.to_vec::<f32>().unwrap(),
        vec![13.0, 14.0, 17.0, 18.0, 21.0, 22.0]
    );
    // broadcasting against a strided view
    let s = n
        .add(
            &Tensor::from_slice(&[100.0f32, 200.0], &[2])
                .unwrap()
                .to_device(dev)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        s.to_vec::<f32>().unwrap(),
        vec![113.0, 214.0, 117.0, 218.0, 121.0, 222.0]
    );

    // (b) gradients
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

    // (c) CPU vs GPU
    if is_gpu(dev) {
        let x = randn_f32(&[2, 3, 4], 31);
        parity("reshape", dev, &[x.clone()], |t| t[0].reshape(&[6, 4]));
        parity("permute", dev, &[x.clone()], |t| {
            t[0].permute(&[2, 0, 1])?.contiguous()
        });
        parity("transpose+reshape", dev, &[x.clone()], |t| {
            t[0].transpose(0, 2)?.reshape(&[4, 6])
        });
        parity("expand", dev, &[randn_f32(&[3, 1], 32)], |t| {
            t[0].expand(&[2, 3, 5])?.contiguous()
        });
        parity("narrow", dev, &[x.clone()], |t| t[0].narrow(2, 1, 2));
        parity("narrow twice", dev, &[x], |t| {
            t[0].narrow(1, 1, 2)?.narrow(0, 1, 1)?.contiguous()
        });
    }
});
