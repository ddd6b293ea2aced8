//! Instance normalisation (`engine/src/ops/norm.rs`) with external γ/β of shape [C] or [N, C].

use crate::common::*;
use engine::{test_device, DType, Tensor};

/// Naive f64 instance norm: μ, biased σ² per (n, c) plane; γ, β indexed per (n, c).
fn naive(x: &[f64], shape: [usize; 4], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let hw = h * w;
    let mut out = Vec::with_capacity(x.len());
    for p in 0..n * c {
        let plane = &x[p * hw..(p + 1) * hw];
        let mean = plane.iter().sum::<f64>() / hw as f64;
        let var = plane.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / hw as f64;
        let (g, b) = if gamma.len() == c {
            (gamma[p % c], beta[p % c])
        } else {
            (gamma[p], beta[p])
        };
        out.extend(
            plane
                .iter()
                .map(|v| (v - mean) / (var + eps).sqrt() * g + b),
        );
    }
    out
}

test_device!(checks, |dev| {
    // (a) values, f64 and f32 (with a large offset: f32 statistics must not lose it).
    for (i, &(n, c, h, w, per_image)) in [
        (1, 3, 5, 7, false),
        (2, 4, 6, 3, true),
        (1, 2, 64, 43, false),
    ]
    .iter()
    .enumerate()
    {
        let x = randn(&[n, c, h, w], 70 + i as u64, dev)
            .add_scalar(100.0)
            .unwrap();
        let pshape: Vec<usize> = if per_image { vec![n, c] } else { vec![c] };
        let g = randn(&pshape, 80 + i as u64, dev);
        let b = randn(&pshape, 90 + i as u64, dev);
        let (xv, gv, bv) = (
            x.to_vec_f64().unwrap(),
            g.to_vec_f64().unwrap(),
            b.to_vec_f64().unwrap(),
        );
        let want = naive(&xv, [n, c, h, w], &gv, &bv, 1e-5);
        let y = x.instance_norm(&g, &b, 1e-5).unwrap();
        assert_close(&y.to_vec_f64().unwrap(), &want, 1e-12, "instance_norm f64");
        let f = |t: &Tensor| t.cast(DType::F32).unwrap();
        let y32 = f(&x).instance_norm(&f(&g), &f(&b), 1e-5).unwrap();
        // Against the reference on the f32-rounded input (the rounding of x itself is ~1e-5
        // of σ at |x| ≈ 100).
        let xr = f(&x).to_vec_f64().unwrap();
        let want32 = naive(
            &xr,
            [n, c, h, w],
            &f(&g).to_vec_f64().unwrap(),
            &f(&b).to_vec_f64().unwrap(),
            1e-5,
        );
        assert_close(
            &y32.to_vec_f64().unwrap(),
            &want32,
            1e-6,
            "instance_norm f32",
        );
        // The fused ReLU: the one-pass kernel under no_grad, equal to max(0, naive).
        let relu = |v: &[f64]| v.iter().map(|&y| y.max(0.0)).collect::<Vec<_>>();
        let yr = engine::no_grad(|| x.instance_norm_relu(&g, &b, 1e-5)).unwrap();
        assert_close(
            &yr.to_vec_f64().unwrap(),
            &relu(&want),
            1e-12,
            "instance_norm_relu f64",
        );
        let yr32 = engine::no_grad(|| f(&x).instance_norm_relu(&f(&g), &f(&b), 1e-5)).unwrap();
        assert_close(
            &yr32.to_vec_f64().unwrap(),
            &relu(&want32),
            1e-6,
            "instance_norm_relu f32",
        );
        // Some outputs are zeroed and some are not, so the test can tell a missing ReLU.
        let zeros = yr
            .to_vec_f64()
            .unwrap()
            .iter()
            .filter(|&&v| v == 0.0)
            .count();
        assert!(zeros > 0 && zeros < yr.numel(), "{zeros} of {}", yr.numel());
    }
    // Errors: bad γ shape, rank, eps.
    let x = randn(&[2, 3, 4, 4], 1, dev);
    let g3 = randn(&[3], 2, dev);
    assert!(x.instance_norm(&randn(&[4], 3, dev), &g3, 1e-5).is_err());
    assert!(x.instance_norm(&g3, &randn(&[3, 2], 3, dev), 1e-5).is_err());
    assert!(x
        .reshape(&[6, 16])
        .unwrap()
        .instance_norm(&g3, &g3, 1e-5)
        .is_err());
    assert!(x.instance_norm(&g3, &g3, 0.0).is_err());
    // Under no_grad nothing is recorded even when inputs require grad.
    let xl = x.detach().requires_grad_();
    let y = engine::no_grad(|| xl.instance_norm(&g3, &g3, 1e-5)).unwrap();
    assert!(!y.requires_grad());

    // (b) gradients for x, γ, β; [C] and [N, C] parameters; a strided input.
    for (i, &(n, c, h, w, per_image)) in
        [(1, 2, 3, 4, false), (2, 3, 5, 2, true), (2, 2, 4, 4, false)]
            .iter()
            .enumerate()
    {
        let x = randn(&[n, c, h, w], 100 + i as u64, dev);
        let pshape: Vec<usize> = if per_image { vec![n, c] } else { vec![c] };
        let g = randn(&pshape, 110 + i as u64, dev);
        let b = randn(&pshape, 120 + i as u64, dev);
        grad_check(
            |t| project(&t[0].instance_norm(&t[1], &t[2], 1e-5)?),
            &[x.clone(), g.clone(), b.clone()],
            EPS,
            TOL,
        );
        grad_check(
            |t| project(&t[0].transpose(2, 3)?.instance_norm(&t[1], &t[2], 1e-3)?),
            &[x.clone(), g.clone(), b.clone()],
            EPS,
            TOL,
        );
        // Recording, the fused op is instance norm then ReLU, with their backward.
        grad_check(
            |t| project(&t[0].instance_norm_relu(&t[1], &t[2], 1e-5)?),
            &[x, g, b],
            EPS,
            TOL,
        );
    }

    // (c) CPU vs GPU
    if is_gpu(dev) {
        for (i, &(n, c, h, w, per_image)) in [
            (1, 32, 86, 128, false),
            (2, 16, 17, 9, true),
            (1, 3, 683, 1024, false),
        ]
        .iter()
        .enumerate()
        {
            let pshape: Vec<usize> = if per_image { vec![n, c] } else { vec![c] };
            let x = randn_f32(&[n, c, h, w], 130 + i as u64);
            let g = randn_f32(&pshape, 140 + i as u64);
            let b = randn_f32(&pshape, 150 + i as u64);
            parity(
                "instance_norm",
                dev,
                &[x.clone(), g.clone(), b.clone()],
                |t| t[0].instance_norm(&t[1], &t[2], 1e-5),
            );
            // The fused kernel (no_grad, so forward only) on both devices.
            let fused = |d: engine::Device| {
                let t: Vec<Tensor> = [&x, &g, &b].map(|t| t.to_device(d).unwrap()).to_vec();
                let y = engine::no_grad(|| t[0].instance_norm_relu(&t[1], &t[2], 1e-5));
                y.unwrap().to_vec_f64().unwrap()
            };
            let cpu = fused(engine::Device::Cpu);
            assert_close(&fused(dev), &cpu, 1e-4, "instance_norm_relu: CPU vs GPU");
        }
    }
});

// `into_instance_norm(_relu)`: the same values as `instance_norm(_relu)`; a tensor whose storage
// is shared (a clone, a view) is left as it was; under the tape the gradients are instance
// norm's.
test_device!(by_value, |dev| {
    for dtype in [DType::F64, DType::F32] {
        let on = |t: Tensor| t.to_device(dev).unwrap();
        let x = on(Tensor::randn(&[2, 3, 5, 7], 2.0, 61, dtype).unwrap());
        let g = on(Tensor::randn(&[3], 1.0, 62, dtype).unwrap());
        let b = on(Tensor::randn(&[3], 1.0, 63, dtype).unwrap());
        let before = x.to_vec_f64().unwrap();
        for relu in [false, true] {
            let want = if relu {
                x.instance_norm_relu(&g, &b, 1e-5)
            } else {
                x.instance_norm(&g, &b, 1e-5)
            }
            .unwrap()
            .to_vec_f64()
            .unwrap();
            let run = |t: Tensor| {
                if relu {
                    t.into_instance_norm_relu(&g, &b, 1e-5)
                } else {
                    t.into_instance_norm(&g, &b, 1e-5)
                }
                .unwrap()
                .to_vec_f64()
                .unwrap()
            };
            // A fresh copy nothing else holds (normalised in place on the CPU), a clone of x
            // and a non-contiguous view: each gives instance norm's values.
            let fresh = x.add_scalar(0.0).unwrap();
            assert_eq!(run(fresh), want, "{dtype:?} relu {relu}: fresh");
            assert_eq!(run(x.clone()), want, "{dtype:?} relu {relu}: clone");
            let t = x.transpose(2, 3).unwrap();
            let want_t = t.instance_norm(&g, &b, 1e-5).unwrap();
            let want_t = if relu { want_t.relu().unwrap() } else { want_t };
            assert_eq!(
                run(t.clone()),
                want_t.to_vec_f64().unwrap(),
                "{dtype:?} relu {relu}: view"
            );
            // x itself is untouched.
            assert_eq!(x.to_vec_f64().unwrap(), before);
        }
        // Errors as instance_norm's.
        let bad = on(Tensor::randn(&[4], 1.0, 64, dtype).unwrap());
        let e = x
            .add_scalar(0.0)
            .unwrap()
            .into_instance_norm(&bad, &b, 1e-5);
        assert!(e.is_err());
    }
    // Under the tape: instance norm's gradients (f64 finite differences).
    let (x, g, b) = (
        randn(&[1, 2, 4, 3], 65, dev),
        randn(&[2], 66, dev),
        randn(&[2], 67, dev),
    );
    grad_check(
        |t| {
            project(
                &t[0]
                    .add_scalar(0.0)?
                    .into_instance_norm_relu(&t[1], &t[2], 1e-5)?,
            )
        },
        &[x, g, b],
        EPS,
        TOL,
    );
});
