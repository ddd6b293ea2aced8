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
