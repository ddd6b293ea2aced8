//! Convolution (`engine/src/ops/conv2d.rs`, `frozen_conv2d.rs`): conv2d with and without bias,
//! every gradient; the fused conv2d_relu and FrozenConv2d against conv2d then relu; grouped and
//! depthwise convolutions (`grouped`), and TF "SAME" stride-2 convolutions as pad2d + conv2d.

use crate::common::*;
use engine::{test_device, Conv2dOptions, DType, Device, Pad2d, PadMode, Tensor};

/// The grouped convolution written as `groups` ordinary ones on channel slices, concatenated
/// (the reference for values).
fn per_group_reference(x: &Tensor, w: &Tensor, b: &Tensor, o: Conv2dOptions) -> Vec<f64> {
    let g = o.groups;
    let (cg, og) = (x.shape()[1] / g, w.shape()[0] / g);
    let one = Conv2dOptions { groups: 1, ..o };
    let parts: Vec<Vec<f64>> = (0..g)
        .map(|k| {
            let xk = x.narrow(1, k * cg, cg).unwrap();
            let wk = w.narrow(0, k * og, og).unwrap();
            let bk = b.narrow(0, k * og, og).unwrap();
            xk.conv2d(&wk, Some(&bk), one)
                .unwrap()
                .to_vec_f64()
                .unwrap()
        })
        .collect();
    // Interleave back to N×O×OH×OW: image by image, group by group.
    let n = x.shape()[0];
    let per = parts[0].len() / n;
    (0..n)
        .flat_map(|i| {
            parts
                .iter()
                .flat_map(move |p| p[i * per..(i + 1) * per].to_vec())
        })
        .collect()
}

/// Grouped and depthwise convolutions: values against per-group convolutions, gradients for
/// input, weight and bias, errors, and CPU-vs-GPU parity.
fn grouped(dev: Device) {
    // (n, c, h, w, o, groups, k, stride, pad): depthwise 3×3 s1/s2, a channel multiplier,
    // general groups, 1×1 grouped.
    let cases = [
        (1, 4, 9, 7, 4, 4, 3, 1, 1),
        (2, 6, 8, 9, 6, 6, 3, 2, 1),
        (1, 3, 7, 6, 6, 3, 3, 1, 1),
        (2, 4, 6, 7, 6, 2, 3, 2, 0),
        (1, 6, 5, 5, 4, 2, 1, 1, 0),
    ];
    for (i, &(n, c, h, w, o, g, k, s, p)) in cases.iter().enumerate() {
        let seed = 500 + 10 * i as u64;
        let x = randn(&[n, c, h, w], seed, dev);
        let wt = randn(&[o, c / g, k, k], seed + 1, dev);
        let b = randn(&[o], seed + 2, dev);
        let opts = Conv2dOptions::new(s, p).with_groups(g);
        let y = x.conv2d(&wt, Some(&b), opts).unwrap();
        let want = per_group_reference(&x, &wt, &b, opts);
        assert_close(
            &y.to_vec_f64().unwrap(),
            &want,
            1e-13,
            &format!("grouped {i}"),
        );
        grad_check(
            |t| project(&t[0].conv2d(&t[1], Some(&t[2]), opts)?),
            &[x.clone(), wt.clone(), b.clone()],
            EPS,
            TOL,
        );
    }
    // TF "SAME" with stride 2 on an even size: pad bottom/right by 1, then no padding.
    let x = randn(&[1, 3, 8, 6], 600, dev);
    let wt = randn(&[3, 1, 3, 3], 601, dev);
    let same = |t: &[Tensor]| {
        t[0].pad2d(Pad2d::new(0, 1, 0, 1), PadMode::Zero)?.conv2d(
            &t[1],
            None,
            Conv2dOptions::new(2, 0).with_groups(3),
        )
    };
    assert_eq!(
        same(&[x.clone(), wt.clone()]).unwrap().shape(),
        [1, 3, 4, 3]
    );
    grad_check(|t| project(&same(t)?), &[x.clone(), wt.clone()], EPS, TOL);
    // Errors: groups 0, not dividing, weight channels not C/groups.
    for (g, wshape) in [(0, [3, 1, 3, 3]), (2, [3, 1, 3, 3]), (3, [3, 3, 3, 3])] {
        let wt = randn(&wshape, 602, dev);
        let opts = Conv2dOptions::new(1, 1).with_groups(g);
        assert!(
            x.conv2d(&wt, None, opts).is_err(),
            "groups {g}, weight {wshape:?}"
        );
    }

    if is_gpu(dev) {
        for (i, &(n, c, h, w, o, g, k, s, p)) in [
            (1, 32, 64, 48, 32, 32, 3, 1, 1),
            (1, 144, 32, 32, 144, 144, 3, 2, 1),
            (2, 8, 17, 13, 16, 4, 3, 2, 0),
            (1, 6, 9, 9, 4, 2, 1, 1, 0),
        ]
        .iter()
        .enumerate()
        {
            let x = randn_f32(&[n, c, h, w], 700 + i as u64);
            let wt = randn_f32(&[o, c / g, k, k], 710 + i as u64);
            let b = randn_f32(&[o], 720 + i as u64);
            let opts = Conv2dOptions::new(s, p).with_groups(g);
            parity("grouped conv2d", dev, &[x, wt, b], move |t| {
                t[0].conv2d(&t[1], Some(&t[2]), opts)
            });
        }
    }
}

test_device!(checks, |dev| {
    grouped(dev);
    // (a) values: the fused conv2d + relu. Frozen weights (the fused path: one tape node on
    // every device): values and input gradients equal the two ops', for the CPU's Winograd
    // shapes (3×3, ≥16 channels) and im2col ones, in f64 and f32, through Tensor::conv2d_relu
    // and FrozenConv2d.
    for &(c, k, h, w, winograd_ok) in &[(16, 8, 9, 7, true), (3, 5, 6, 5, false)] {
        for dtype in [DType::F64, DType::F32] {
            let on = |t: Tensor| t.to_device(dev).unwrap();
            let x = on(Tensor::randn(&[2, c, h, w], 1.0, 11, dtype).unwrap());
            let wt = on(Tensor::randn(&[k, c, 3, 3], 0.3, 12, dtype).unwrap());
            let b = on(Tensor::randn(&[k], 0.5, 13, dtype).unwrap());
            let frozen = engine::FrozenConv2d::new(wt.clone(), Some(b.clone())).unwrap();
            let o = Conv2dOptions::new(1, 1);
            let run = |fused: u8| {
                let xl = x.detach().requires_grad_();
                let y = match fused {
                    0 => xl.conv2d(&wt, Some(&b), o).unwrap().relu().unwrap(),
                    1 => xl.conv2d_relu(&wt, Some(&b), o).unwrap(),
                    _ => frozen.forward_relu(&xl, o).unwrap(),
                };
                let g = on(Tensor::randn(y.shape(), 1.0, 14, dtype).unwrap());
                y.mul(&g).unwrap().sum().unwrap().backward().unwrap();
                (
                    y.to_vec_f64().unwrap(),
                    xl.grad().unwrap().to_vec_f64().unwrap(),
                )
            };
            let (yr, gr) = run(0);
            for fused in [1, 2] {
                let (yf, gf) = run(fused);
                let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
                assert_close(
                    &yf,
                    &yr,
                    tol,
                    &format!("fused relu values {c}ch {winograd_ok} ({fused})"),
                );
                assert_close(
                    &gf,
                    &gr,
                    tol,
                    &format!("fused relu grad {c}ch {winograd_ok} ({fused})"),
                );
                assert!(yf.iter().all(|&v| v >= 0.0));
            }
        }
    }

    // (b) gradients: every input of conv2d
    // (n, c_in, h, w, c_out, kh, kw, stride, pad)
    let cases = [
        (1, 1, 5, 5, 1, 3, 3, 1, 1),
        (2, 3, 7, 6, 4, 3, 3, 1, 1),
        (1, 2, 9, 7, 3, 3, 3, 2, 0),
        (3, 2, 6, 8, 2, 3, 3, 2, 2),
        (1, 3, 5, 7, 5, 1, 1, 1, 0),
        (2, 2, 8, 5, 3, 5, 3, 1, 2),
    ];
    for (i, &(n, ci, h, w, co, kh, kw, s, p)) in cases.iter().enumerate() {
        let seed = 300 + 10 * i as u64;
        let x = randn(&[n, ci, h, w], seed, dev);
        let wt = randn(&[co, ci, kh, kw], seed + 1, dev);
        let b = randn(&[co], seed + 2, dev);
        let opts = Conv2dOptions::new(s, p);
        grad_check(
            |t| project(&t[0].conv2d(&t[1], Some(&t[2]), opts)?),
            &[x.clone(), wt.clone(), b],
            EPS,
            TOL,
        );
        grad_check(
            |t| project(&t[0].conv2d(&t[1], None, opts)?),
            &[x, wt],
            EPS,
            TOL,
        );
    }
    // and of the fused op itself (f64)
    let wt = Tensor::randn(&[4, 16, 3, 3], 0.3, 21, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap();
    let x = Tensor::randn(&[1, 16, 5, 6], 1.0, 22, DType::F64)
        .unwrap()
        .to_device(dev)
        .unwrap();
    grad_check(
        |t| project(&t[0].conv2d_relu(&wt, None, Conv2dOptions::new(1, 1))?),
        &[x],
        EPS,
        TOL,
    );

    // (c) CPU vs GPU
    if is_gpu(dev) {
        // (n, c, h, w, o, k, stride, pad, bias)
        for (i, &(n, c, h, w, o, k, s, p, bias)) in [
            (1, 3, 8, 8, 4, 3, 1, 1, true),
            (2, 2, 7, 5, 3, 3, 2, 1, false),
            (1, 4, 6, 9, 2, 2, 1, 0, true),
            (2, 3, 9, 7, 5, 3, 2, 2, true),
            (2, 6, 5, 4, 3, 1, 1, 0, true), // 1×1, stride 1, no padding: the GEMM-only path
            (1, 16, 20, 24, 8, 3, 1, 1, true),
        ]
        .iter()
        .enumerate()
        {
            let x = randn_f32(&[n, c, h, w], 60 + i as u64);
            let wt = randn_f32(&[o, c, k, k], 70 + i as u64);
            let opts = Conv2dOptions::new(s, p);
            if bias {
                let b = randn_f32(&[o], 80 + i as u64);
                parity("conv2d+bias", dev, &[x, wt, b], move |t| {
                    t[0].conv2d(&t[1], Some(&t[2]), opts)
                });
            } else {
                parity("conv2d", dev, &[x, wt], move |t| {
                    t[0].conv2d(&t[1], None, opts)
                });
            }
        }
    }
});

// `padding_mode` reflect: the same values as `pad2d(reflect)` then a padding-0 conv2d, read in
// place on the CPU without a tape (Winograd 3×3, the packed-panel path; no pad2d op runs),
// padded first elsewhere (other shapes, a tape to record, a GPU), with the same gradients;
// a pad as large as the input is an error.
test_device!(reflect_padding_mode, |dev| {
    // (n, c, h, w, o, k, stride, pad, groups, read in place on the CPU)
    let cases = [
        (1, 16, 9, 13, 8, 3, 1, 1, 1, true),  // Winograd
        (2, 5, 17, 70, 16, 3, 2, 1, 1, true), // packed panels, stride 2
        (1, 5, 10, 40, 8, 9, 1, 4, 1, true),  // packed panels, 9×9
        (1, 3, 10, 12, 3, 9, 1, 4, 1, false), // 3 outputs: padded first
        (1, 4, 8, 40, 8, 3, 1, 1, 2, false),  // groups: padded first
    ];
    for (i, &(n, c, h, w, o, k, s, p, g, in_place)) in cases.iter().enumerate() {
        for dtype in [DType::F64, DType::F32] {
            let on = |t: Tensor| t.to_device(dev).unwrap();
            let seed = 800 + 10 * i as u64;
            let x = on(Tensor::randn(&[n, c, h, w], 1.0, seed, dtype).unwrap());
            let wt = on(Tensor::randn(&[o, c / g, k, k], 0.3, seed + 1, dtype).unwrap());
            let b = on(Tensor::randn(&[o], 0.5, seed + 2, dtype).unwrap());
            let zero = Conv2dOptions::new(s, 0).with_groups(g);
            let reflect = Conv2dOptions::new(s, p)
                .with_groups(g)
                .with_padding_mode(PadMode::Reflect);
            let xp = x.pad2d(Pad2d::uniform(p), PadMode::Reflect).unwrap();
            let want = xp
                .conv2d(&wt, Some(&b), zero)
                .unwrap()
                .to_vec_f64()
                .unwrap();
            let want_relu: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
            let tol = if dtype == DType::F64 { 1e-11 } else { 2e-5 };
            let what = format!("case {i} {dtype:?}");
            // Without a tape: through Tensor::conv2d and FrozenConv2d (with and without ReLU).
            let frozen = engine::FrozenConv2d::new(wt.clone(), Some(b.clone())).unwrap();
            engine::profile::start();
            let (got, got_frozen, got_relu) = engine::no_grad(|| {
                (
                    x.conv2d(&wt, Some(&b), reflect).unwrap(),
                    frozen.forward(&x, reflect).unwrap(),
                    frozen.forward_relu(&x, reflect).unwrap(),
                )
            });
            let padded = engine::profile::finish().iter().any(|r| r.op == "pad2d");
            assert_eq!(
                padded,
                !(in_place && dev == Device::Cpu),
                "{what}: pad2d ran"
            );
            assert_close(
                &got.to_vec_f64().unwrap(),
                &want,
                tol,
                &format!("{what} conv2d"),
            );
            let f = got_frozen.to_vec_f64().unwrap();
            assert_close(&f, &want, tol, &format!("{what} frozen"));
            let r = got_relu.to_vec_f64().unwrap();
            assert_close(&r, &want_relu, tol, &format!("{what} frozen relu"));
            // With a tape: values and the input's gradient as through pad2d.
            let grad = |reflect_mode: bool| {
                let xl = x.detach().requires_grad_();
                let y = if reflect_mode {
                    frozen.forward(&xl, reflect).unwrap()
                } else {
                    let xp = xl.pad2d(Pad2d::uniform(p), PadMode::Reflect).unwrap();
                    frozen.forward(&xp, zero).unwrap()
                };
                let gy = on(Tensor::randn(y.shape(), 1.0, seed + 3, dtype).unwrap());
                y.mul(&gy).unwrap().sum().unwrap().backward().unwrap();
                xl.grad().unwrap().to_vec_f64().unwrap()
            };
            assert_close(&grad(true), &grad(false), tol, &format!("{what} grad"));
        }
    }
    // Gradients of every input, f64 finite differences (padded first under the tape).
    let (x, wt, b) = (
        randn(&[1, 3, 5, 6], 871, dev),
        randn(&[4, 3, 3, 3], 872, dev),
        randn(&[4], 873, dev),
    );
    let o = Conv2dOptions::new(2, 2).with_padding_mode(PadMode::Reflect);
    grad_check(
        |t| project(&t[0].conv2d(&t[1], Some(&t[2]), o)?),
        &[x.clone(), wt.clone(), b],
        EPS,
        TOL,
    );
    // Reflection needs a pad smaller than each side.
    let big = Conv2dOptions::new(1, 5).with_padding_mode(PadMode::Reflect);
    let e = x.conv2d(&wt, None, big).unwrap_err().to_string();
    assert!(e.contains("reflect padding"), "{e}");
});
