//! CPU vs CUDA: every op, forward and backward, on random f32 inputs (relative error ≤ 1e-4),
//! plus determinism (same input → same bits), out-of-memory errors and device moves. Each test
//! prints "skipped: no CUDA device" and returns where no usable GPU is present.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in these tables

use engine::testing::assert_close;
use engine::{Conv2dOptions, DType, Device, EngineError, Pool2dOptions, Result, Tensor};

const TOL: f64 = 1e-4;

use engine::testing::first_gpu_or_skip as gpu;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 1.0, seed, DType::F32).unwrap()
}

/// Values and input gradients of `f` on `dev`: the inputs are moved there and made leaves; the
/// loss is Σ y·w for a fixed random w (so every output's gradient matters).
fn run(
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    dev: Device,
) -> (Vec<f64>, Vec<Option<Vec<f64>>>) {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(dev).unwrap().detach().requires_grad_())
        .collect();
    let y = f(&leaves).unwrap();
    assert_eq!(y.device(), dev, "output on the wrong device");
    let w = Tensor::randn(y.shape(), 1.0, 4242, y.dtype())
        .unwrap()
        .to_device(dev)
        .unwrap();
    y.mul(&w).unwrap().sum().unwrap().backward().unwrap();
    let grads = leaves
        .iter()
        .map(|l| {
            l.grad().map(|g| {
                assert_eq!(g.device(), dev, "gradient on the wrong device");
                g.to_vec_f64().unwrap()
            })
        })
        .collect();
    (y.to_vec_f64().unwrap(), grads)
}

/// Forward and backward of `f` agree between the CPU and `gpu`.
fn parity(what: &str, gpu: Device, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let (y_cpu, g_cpu) = run(&f, inputs, Device::Cpu);
    let (y_gpu, g_gpu) = run(&f, inputs, gpu);
    assert_close(&y_gpu, &y_cpu, TOL, &format!("{what}: forward"));
    for (i, (a, b)) in g_gpu.iter().zip(&g_cpu).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => assert_close(a, b, TOL, &format!("{what}: grad of input {i}")),
            (None, None) => {}
            _ => panic!("{what}: input {i} has a gradient on one device only"),
        }
    }
}

#[test]
fn elementwise_and_broadcasting() {
    let Some(dev) = gpu() else { return };
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[2, 3, 5], &[5]),
        (&[4, 1], &[1, 3]),
        (&[2, 1, 3], &[4, 1]),
        (&[3], &[]),
        (&[64, 33, 17], &[33, 1]),
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        let (a, b) = (randn(sa, i as u64), randn(sb, 100 + i as u64));
        let b_pos = b.abs().unwrap().add_scalar(0.5).unwrap();
        parity("add", dev, &[a.clone(), b.clone()], |t| t[0].add(&t[1]));
        parity("sub", dev, &[a.clone(), b.clone()], |t| t[0].sub(&t[1]));
        parity("mul", dev, &[a.clone(), b.clone()], |t| t[0].mul(&t[1]));
        parity("div", dev, &[a.clone(), b_pos], |t| t[0].div(&t[1]));
    }
    // strided operands (a transposed view and a narrowed one)
    let a = randn(&[5, 7], 7);
    let b = randn(&[7, 9], 8);
    parity("add of views", dev, &[a, b], |t| {
        t[0].transpose(0, 1)?.add(&t[1].narrow(1, 2, 5)?)
    });
}

#[test]
fn unary_ops_and_relu() {
    let Some(dev) = gpu() else { return };
    let x = randn(&[3, 50, 41], 11);
    let pos = x.abs().unwrap().add_scalar(0.1).unwrap();
    parity("neg", dev, &[x.clone()], |t| t[0].neg());
    parity("add_scalar", dev, &[x.clone()], |t| t[0].add_scalar(2.5));
    parity("mul_scalar", dev, &[x.clone()], |t| t[0].mul_scalar(-1.5));
    parity("square", dev, &[x.clone()], |t| t[0].square());
    parity("sqrt", dev, &[pos], |t| t[0].sqrt());
    parity("abs", dev, &[x.clone()], |t| t[0].abs());
    parity("relu", dev, &[x.clone()], |t| t[0].relu());
    parity("relu of a permuted view", dev, &[x], |t| {
        t[0].permute(&[2, 0, 1])?.relu()
    });
}

#[test]
fn reductions() {
    let Some(dev) = gpu() else { return };
    let x = randn(&[4, 300, 7], 21);
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
    let long = randn(&[3, 5000], 22);
    parity("sum_axis long rows", dev, &[long], |t| {
        t[0].sum_axis(1, false)
    });
    let big = randn(&[1 << 20], 23);
    parity("sum of 2^20", dev, &[big], |t| t[0].sum());
}

#[test]
fn shape_ops() {
    let Some(dev) = gpu() else { return };
    let x = randn(&[2, 3, 4], 31);
    parity("reshape", dev, &[x.clone()], |t| t[0].reshape(&[6, 4]));
    parity("permute", dev, &[x.clone()], |t| {
        t[0].permute(&[2, 0, 1])?.contiguous()
    });
    parity("transpose+reshape", dev, &[x.clone()], |t| {
        t[0].transpose(0, 2)?.reshape(&[4, 6])
    });
    parity("expand", dev, &[randn(&[3, 1], 32)], |t| {
        t[0].expand(&[2, 3, 5])?.contiguous()
    });
    parity("narrow", dev, &[x.clone()], |t| t[0].narrow(2, 1, 2));
    parity("narrow twice", dev, &[x], |t| {
        t[0].narrow(1, 1, 2)?.narrow(0, 1, 1)?.contiguous()
    });
}

#[test]
fn matmul_layouts() {
    let Some(dev) = gpu() else { return };
    parity(
        "2-D",
        dev,
        &[randn(&[37, 19], 41), randn(&[19, 23], 42)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "batched",
        dev,
        &[randn(&[3, 5, 7], 43), randn(&[3, 7, 4], 44)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "batched × shared",
        dev,
        &[randn(&[3, 5, 7], 45), randn(&[7, 4], 46)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "transposed operands",
        dev,
        &[randn(&[19, 37], 47), randn(&[23, 19], 48)],
        |t| t[0].transpose(0, 1)?.matmul(&t[1].transpose(0, 1)?),
    );
    parity(
        "narrowed rows (ld > cols)",
        dev,
        &[randn(&[8, 12], 49), randn(&[5, 6], 50)],
        |t| t[0].narrow(1, 3, 5)?.matmul(&t[1]),
    );
    parity(
        "expanded (needs a copy)",
        dev,
        &[randn(&[1, 6], 51), randn(&[6, 3], 52)],
        |t| t[0].expand(&[4, 6])?.matmul(&t[1]),
    );
    parity(
        "vector shapes",
        dev,
        &[randn(&[1, 9], 53), randn(&[9, 1], 54)],
        |t| t[0].matmul(&t[1]),
    );
}

#[test]
fn conv2d_all_gradients() {
    let Some(dev) = gpu() else { return };
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
        let x = randn(&[n, c, h, w], 60 + i as u64);
        let wt = randn(&[o, c, k, k], 70 + i as u64);
        let opts = Conv2dOptions::new(s, p);
        if bias {
            let b = randn(&[o], 80 + i as u64);
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

#[test]
fn pooling() {
    let Some(dev) = gpu() else { return };
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

#[test]
fn objective_terms_and_casts() {
    let Some(dev) = gpu() else { return };
    let f = randn(&[1, 8, 6, 5], 91);
    parity("gram_matrix", dev, &[f.clone()], |t| t[0].gram_matrix());
    parity(
        "gram_matrix batched",
        dev,
        &[randn(&[2, 4, 3, 5], 92)],
        |t| t[0].gram_matrix(),
    );
    parity(
        "mse_loss",
        dev,
        &[f.clone(), randn(&[1, 8, 6, 5], 93)],
        |t| t[0].mse_loss(&t[1]),
    );
    parity("tv_loss", dev, &[randn(&[2, 3, 9, 7], 94)], |t| {
        t[0].tv_loss()
    });
    parity("cast round trip", dev, &[f], |t| {
        t[0].cast(DType::F64)?.square()?.cast(DType::F32)
    });
}

#[test]
fn a_style_step_runs_on_the_gpu() {
    // conv → relu → pool → Gram + content loss, as in one transfer iteration, against the CPU.
    let Some(dev) = gpu() else { return };
    let img = randn(&[1, 3, 32, 32], 101);
    let w1 = randn(&[8, 3, 3, 3], 102).mul_scalar(0.3).unwrap();
    let w2 = randn(&[8, 8, 3, 3], 103).mul_scalar(0.2).unwrap();
    let target = randn(&[8, 8], 104).mul_scalar(0.01).unwrap();
    parity("style step", dev, &[img, w1, w2, target], |t| {
        let o = Conv2dOptions::new(1, 1);
        let a = t[0].conv2d(&t[1], None, o)?.relu()?;
        let b = a
            .max_pool2d(Pool2dOptions::new(2, 2, 0))?
            .conv2d(&t[2], None, o)?
            .relu()?;
        b.gram_matrix()?.mse_loss(&t[3])?.add(&b.square()?.mean()?)
    });
}

#[test]
fn results_are_deterministic() {
    let Some(dev) = gpu() else { return };
    let x = randn(&[1 << 22], 111).to_device(dev).unwrap();
    let s1 = x.sum().unwrap().to_vec::<f32>().unwrap();
    let s2 = x.sum().unwrap().to_vec::<f32>().unwrap();
    assert_eq!(s1[0].to_bits(), s2[0].to_bits(), "sum differs between runs");
    let img = randn(&[2, 16, 24, 24], 112).to_device(dev).unwrap();
    let w = randn(&[16, 16, 3, 3], 113).to_device(dev).unwrap();
    let grads = || {
        let (i, w) = (img.detach().requires_grad_(), w.detach().requires_grad_());
        let y = i.conv2d(&w, None, Conv2dOptions::new(1, 1)).unwrap();
        let y = y.max_pool2d(Pool2dOptions::new(2, 2, 0)).unwrap();
        y.square().unwrap().sum().unwrap().backward().unwrap();
        (
            i.grad().unwrap().to_vec::<f32>().unwrap(),
            w.grad().unwrap().to_vec::<f32>().unwrap(),
        )
    };
    let (a, b) = (grads(), grads());
    assert!(
        a.0 == b.0 && a.1 == b.1,
        "conv/pool gradients differ between runs"
    );
}

#[test]
fn out_of_memory_names_the_size() {
    let Some(dev) = gpu() else { return };
    let total = dev.cuda_info().unwrap().total_memory_bytes;
    // A one-element tensor broadcast to twice the GPU's memory: only the copy allocates.
    let n = total / 4 * 2;
    let x = Tensor::from_vec(vec![1.0f32], &[1])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let err = x.expand(&[n]).unwrap().contiguous().unwrap_err();
    match &err {
        EngineError::OutOfMemory { bytes, device, .. } => {
            assert_eq!((*bytes, *device), (n * 4, dev));
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&format!("{} bytes", n * 4)),
        "{err}"
    );
    // The device still works afterwards.
    assert_eq!(
        x.add_scalar(1.0).unwrap().to_vec::<f32>().unwrap(),
        vec![2.0]
    );
}

#[test]
fn device_moves_and_mismatches() {
    let Some(dev) = gpu() else {
        // Without a GPU, moving to one is a clear error, not a panic.
        let e = randn(&[2], 1).to_device(Device::Cuda(0)).unwrap_err();
        assert!(matches!(e, EngineError::DeviceUnavailable { .. }), "{e:?}");
        return;
    };
    let x = randn(&[3, 4], 121);
    let g = x.to_device(dev).unwrap();
    assert_eq!(g.device(), dev);
    assert_eq!(g.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    assert_eq!(
        g.to_device(Device::Cpu).unwrap().to_vec::<f32>().unwrap(),
        x.to_vec::<f32>().unwrap()
    );
    assert!(matches!(x.add(&g), Err(EngineError::DeviceMismatch { .. })));
    assert!(matches!(
        Tensor::zeros(&[2], DType::F16).unwrap().to_device(dev),
        Err(EngineError::UnsupportedDType { .. })
    ));
    let count = Device::cuda_devices().len();
    assert!(matches!(
        x.to_device(Device::Cuda(count)),
        Err(EngineError::DeviceUnavailable { .. })
    ));
    // gradients flow back across a move
    let leaf = x.requires_grad_();
    leaf.to_device(dev)
        .unwrap()
        .square()
        .unwrap()
        .sum()
        .unwrap()
        .backward()
        .unwrap();
    let gx = leaf.grad().unwrap();
    assert_eq!(gx.device(), Device::Cpu);
    let want: Vec<f64> = x.to_vec_f64().unwrap().iter().map(|v| 2.0 * v).collect();
    assert_close(
        &gx.to_vec_f64().unwrap(),
        &want,
        1e-6,
        "grad through to_device",
    );
}

#[test]
fn dot_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let a = randn(&[3, 1000, 77], 301);
    let b = randn(&[3, 1000, 77], 302);
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

#[test]
fn adam_step_matches_its_formula_and_the_gpu() {
    use engine::ops::optim::AdamParams;
    let (x, g) = (randn(&[3, 50], 131), randn(&[3, 50], 132));
    let (m, v) = (
        randn(&[3, 50], 133).mul_scalar(0.1).unwrap(),
        randn(&[3, 50], 134).abs().unwrap(),
    );
    let p = AdamParams {
        learning_rate: 0.5,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        t: 3,
    };
    let (x1, m1, v1) = x.adam_step(&g, &m, &v, p).unwrap();
    // the formula in f64
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
    assert!(x.adam_step(&g, &m, &v, AdamParams { t: 0, ..p }).is_err());
    let Some(dev) = gpu() else { return };
    let d = |t: &Tensor| t.to_device(dev).unwrap();
    let (gx, gm, gv) = d(&x).adam_step(&d(&g), &d(&m), &d(&v), p).unwrap();
    assert_eq!(gx.device(), dev);
    assert_close(
        &gx.to_vec_f64().unwrap(),
        &x1.to_vec_f64().unwrap(),
        1e-6,
        "gpu adam x",
    );
    assert_close(
        &gm.to_vec_f64().unwrap(),
        &m1.to_vec_f64().unwrap(),
        1e-6,
        "gpu adam m",
    );
    assert_close(
        &gv.to_vec_f64().unwrap(),
        &v1.to_vec_f64().unwrap(),
        1e-6,
        "gpu adam v",
    );
}
