//! Symmetric eigendecomposition and matrix square root (`engine/src/ops/linalg.rs`).

use crate::common::*;
use engine::{test_device, DType, Tensor};

/// `B Bᵀ / m + shift·I` for B n×m: symmetric positive semi-definite (definite when shift > 0),
/// of rank min(n, m) + (shift > 0 ? n : 0).
fn spd(b: &Tensor, shift: f64) -> engine::Result<Tensor> {
    let (n, m) = (b.shape()[0], b.shape()[1]);
    let eye: Vec<f64> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { shift } else { 0.0 })
        .collect();
    let eye = Tensor::from_vec(eye, &[n, n])?
        .cast(b.dtype())?
        .to_device(b.device())?;
    b.matmul(&b.transpose(0, 1)?)?
        .mul_scalar(1.0 / m as f64)?
        .add(&eye)
}

test_device!(checks, |dev| {
    // (a) known eigenvalues, X·X = A for full-rank and rank-deficient A, diagonal case.
    let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 2.0], &[2, 2])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let (w, v) = a.sym_eig().unwrap();
    assert_close(&w.to_vec_f64().unwrap(), &[1.0, 3.0], 1e-15, "eigenvalues");
    assert_eq!(v.shape(), &[2, 2]);
    for (n, m, shift) in [(6, 9, 0.0), (8, 3, 0.0), (5, 5, 0.5), (1, 1, 0.0)] {
        let a = spd(&randn(&[n, m], n as u64 + 7 * m as u64, dev), shift).unwrap();
        let x = a.sqrtm().unwrap();
        let xx = x.matmul(&x).unwrap().to_vec_f64().unwrap();
        assert_close(
            &xx,
            &a.to_vec_f64().unwrap(),
            1e-12,
            &format!("sqrtm² {n}×{m}"),
        );
        let xt = x
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .unwrap()
            .to_vec_f64()
            .unwrap();
        assert_close(&xt, &x.to_vec_f64().unwrap(), 1e-13, "sqrtm symmetric");
    }
    let d = Tensor::from_vec(
        vec![4.0f64, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.25],
        &[3, 3],
    )
    .unwrap()
    .to_device(dev)
    .unwrap();
    let expect = [2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.5];
    let got = d.sqrtm().unwrap().to_vec_f64().unwrap();
    assert!(
        got.iter().zip(expect).all(|(g, e)| (g - e).abs() < 1e-15),
        "{got:?}"
    );
    // Errors: not square, not finite.
    assert!(randn(&[2, 3], 1, dev).sqrtm().is_err());
    let nan = Tensor::full(&[2, 2], f64::NAN, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap();
    assert!(nan.sqrtm().unwrap_err().to_string().contains("NaN"));

    // (b) gradients: w.r.t. A directly (its symmetric part is used), and through A = B Bᵀ/m.
    let a = spd(&randn(&[5, 7], 31, dev), 0.3).unwrap();
    grad_check(|t| project(&t[0].sqrtm()?), &[a], EPS, TOL);
    grad_check(
        |t| project(&spd(&t[0], 0.1)?.sqrtm()?),
        &[randn(&[4, 6], 32, dev)],
        EPS,
        TOL,
    );
    // The W2 trace term's shape: tr(√(S A S)) for a fixed S.
    let s = spd(&randn(&[4, 5], 33, dev), 0.2).unwrap().sqrtm().unwrap();
    grad_check(
        |t| {
            let a = spd(&t[0], 0.1)?;
            s.matmul(&a)?
                .matmul(&s)?
                .sqrtm()?
                .mul(&eye_like(4, t[0].device()))?
                .sum()
        },
        &[randn(&[4, 9], 34, dev)],
        EPS,
        TOL,
    );

    // (c) CPU vs GPU.
    if is_gpu(dev) {
        let b = randn_f32(&[16, 20], 41);
        parity("sqrtm", dev, &[b], |t| spd(&t[0], 0.1)?.sqrtm());
    }
});

fn eye_like(n: usize, dev: engine::Device) -> Tensor {
    let v: Vec<f64> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_vec(v, &[n, n])
        .unwrap()
        .to_device(dev)
        .unwrap()
}
