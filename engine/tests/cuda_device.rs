//! The GPU as a device rather than one op: a whole style step against the CPU, determinism
//! (same input → same bits), out-of-memory errors and device moves. Each test prints "skipped:
//! no CUDA device" and returns where no usable GPU is present. Per-op CPU-vs-GPU parity is in
//! `ops/` (each family's `test_device!` body).

use engine::testing::{assert_close, first_gpu_or_skip as gpu, parity};
use engine::{Conv2dOptions, DType, Device, EngineError, Pool2dOptions, Tensor};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 1.0, seed, DType::F32).unwrap()
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
fn tf32_convolutions_stay_within_tf32_rounding() {
    // `Precision::Bf16` on a GPU: the forward and input-gradient GEMMs on TF32 tensor cores
    // (10-bit significands, f32 sums). Against the CPU's f64 result: clearly less exact than
    // IEEE f32 (so TF32 is really on), within TF32's rounding (2⁻¹¹ per operand, summed over
    // C·9 = 1152 products as a random walk: ~1e-3 relative).
    use engine::testing::rel_error;
    use engine::{ConvConfig, Precision};
    let Some(dev) = gpu() else { return };
    let x = randn(&[1, 128, 40, 40], 121);
    let w = randn(&[64, 128, 3, 3], 122).mul_scalar(0.05).unwrap();
    let g = randn(&[1, 64, 40, 40], 123);
    let f64s = |t: &Tensor| t.cast(DType::F64).unwrap();
    let (x64, w64, g64) = (f64s(&x).requires_grad_(), f64s(&w), f64s(&g));
    let y64 = x64.conv2d(&w64, None, Conv2dOptions::new(1, 1)).unwrap();
    y64.mul(&g64).unwrap().sum().unwrap().backward().unwrap();
    let want_y = y64.to_vec::<f64>().unwrap();
    let want_gx = x64.grad().unwrap().to_vec::<f64>().unwrap();
    let run = |precision: Precision| {
        let opts = Conv2dOptions::new(1, 1).with_config(ConvConfig {
            precision,
            ..ConvConfig::default()
        });
        let xd = x.to_device(dev).unwrap().requires_grad_();
        let y = xd.conv2d(&w.to_device(dev).unwrap(), None, opts).unwrap();
        let gd = g.to_device(dev).unwrap();
        y.mul(&gd).unwrap().sum().unwrap().backward().unwrap();
        let to64 = |t: Tensor| t.cast(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let (ey, egx) = (
            rel_error(&to64(y), &want_y),
            rel_error(&to64(xd.grad().unwrap()), &want_gx),
        );
        println!("{precision:?}: relative error forward {ey:.2e}, input gradient {egx:.2e}");
        (ey, egx)
    };
    let (exact_y, exact_gx) = run(Precision::F32);
    let (tf32_y, tf32_gx) = run(Precision::Bf16);
    assert!(
        exact_y < 1e-5 && exact_gx < 1e-5,
        "f32: {exact_y:e} {exact_gx:e}"
    );
    assert!(
        tf32_y < 3e-3 && tf32_gx < 3e-3,
        "tf32: {tf32_y:e} {tf32_gx:e}"
    );
    assert!(
        tf32_y > 10.0 * exact_y && tf32_gx > 10.0 * exact_gx,
        "TF32 no less exact than f32: tensor cores not used?"
    );
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
    // (f16/bf16 tensors cannot be made through the public API — `Tensor::zeros(.., F16)` is
    // itself `UnsupportedDType` — so a GPU move of one needs no test here.)
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
