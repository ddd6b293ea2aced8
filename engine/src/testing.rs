//! Test helpers shared by the engine's and the workspace's tests: relative-error comparison,
//! a finite-difference gradient check in f64, CPU-vs-GPU parity of an op's values and
//! gradients, and `test_device!` to run one test body on every device present.

use crate::{DType, Device, Result, Tensor};

/// Relative error `‖a − b‖₂ / ‖b‖₂` (absolute `‖a − b‖₂` when `b` is all zeros).
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_error: lengths differ");
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if norm == 0.0 {
        diff
    } else {
        diff / norm
    }
}

/// Panic with a readable message unless `rel_error(actual, expected) ≤ tol` and no value is NaN.
#[track_caller]
pub fn assert_close(actual: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    assert!(
        actual.iter().all(|v| v.is_finite()),
        "{what}: non-finite value in the result"
    );
    let e = rel_error(actual, expected);
    // Shown with `--nocapture`: the measured error, not just pass/fail.
    eprintln!("{what}: relative error {e:.2e} (tolerance {tol:.0e})");
    assert!(
        e <= tol,
        "{what}: relative error {e:.3e} > {tol:.1e}\n  first actual   {:?}\n  first expected {:?}",
        &actual[..actual.len().min(6)],
        &expected[..expected.len().min(6)]
    );
}

/// Compare two tensors by relative error (shapes must match).
#[track_caller]
pub fn assert_tensor_close(actual: &Tensor, expected: &Tensor, tol: f64, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    assert_close(
        &actual.to_vec_f64().unwrap(),
        &expected.to_vec_f64().unwrap(),
        tol,
        what,
    );
}

/// Finite-difference gradient check in f64.
///
/// `f` maps the inputs to a scalar loss. Each input is cast to f64 and made a leaf requiring
/// grad (on the input's device; perturbed copies go to the same device); the autodiff gradient
/// is compared with central differences
/// `(f(x + εeᵢ) − f(x − εeᵢ)) / 2ε` for every element, by relative error ≤ `tol`.
/// Returns the largest relative error seen over the inputs.
pub fn grad_check(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    eps: f64,
    tol: f64,
) -> f64 {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.cast(DType::F64).unwrap().detach().requires_grad_())
        .collect();
    let loss = f(&leaves).expect("grad_check: forward failed");
    assert_eq!(loss.numel(), 1, "grad_check: f must return a scalar");
    loss.backward().expect("grad_check: backward failed");
    let mut worst = 0.0f64;
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = leaf
            .grad()
            .map(|g| g.to_vec_f64().unwrap())
            .unwrap_or_else(|| vec![0.0; leaf.numel()]);
        let base = leaf.to_vec_f64().unwrap();
        let mut numeric = vec![0.0; base.len()];
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut args: Vec<Tensor> = leaves.iter().map(|l| l.detach()).collect();
                args[i] = Tensor::from_vec(v, leaf.shape())
                    .unwrap()
                    .to_device(leaf.device())
                    .unwrap();
                crate::no_grad(|| f(&args)).unwrap().item().unwrap()
            };
            numeric[j] = (eval(eps) - eval(-eps)) / (2.0 * eps);
        }
        let e = rel_error(&analytic, &numeric);
        assert!(
            e <= tol,
            "grad_check: input {i} (shape {:?}): relative error {e:.3e} > {tol:.1e}\n  analytic {:?}\n  numeric  {:?}",
            leaf.shape(),
            &analytic[..analytic.len().min(8)],
            &numeric[..numeric.len().min(8)]
        );
        worst = worst.max(e);
    }
    worst
}

/// Tolerance of [`parity`]: relative L2 error between CPU and GPU results in f32.
pub const PARITY_TOL: f64 = 1e-4;

/// Values and input gradients of `f` on `dev`: the inputs are moved there and made leaves; the
/// loss is Σ y·w for a fixed random w (so every output's gradient matters).
fn values_and_grads(
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

/// Forward and backward of `f` agree between the CPU and `gpu` (relative error ≤
/// [`PARITY_TOL`] for the values and each input's gradient; an input has a gradient on both
/// devices or on neither).
#[track_caller]
pub fn parity(what: &str, gpu: Device, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let (y_cpu, g_cpu) = values_and_grads(&f, inputs, Device::Cpu);
    let (y_gpu, g_gpu) = values_and_grads(&f, inputs, gpu);
    assert_close(&y_gpu, &y_cpu, PARITY_TOL, &format!("{what}: forward"));
    for (i, (a, b)) in g_gpu.iter().zip(&g_cpu).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => {
                assert_close(a, b, PARITY_TOL, &format!("{what}: grad of input {i}"))
            }
            (None, None) => {}
            _ => panic!("{what}: input {i} has a gradient on one device only"),
        }
    }
}

/// The devices present in this process: the CPU always, then every usable CUDA device (when a
/// driver, a GPU, libnvrtc and libcublas are all present; see `Device::cuda_devices`).
pub fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(Device::cuda_devices());
    d
}

/// The first usable CUDA device, or `None` after printing "skipped: no CUDA device (why)" (for
/// tests that compare a GPU with the CPU).
pub fn first_gpu_or_skip() -> Option<Device> {
    let d = Device::cuda_devices().into_iter().next();
    if d.is_none() {
        eprintln!(
            "skipped: no CUDA device ({})",
            Device::cuda_unavailable_reason().unwrap_or_default()
        );
    }
    d
}

/// Define one `#[test]` per device for a body taking a [`Device`]:
/// `test_device!(name, |dev| { ... });` creates `name::cpu` and `name::cuda` (the latter prints
/// "skipped: no CUDA device" where none is present).
#[macro_export]
macro_rules! test_device {
    ($name:ident, |$dev:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($dev: $crate::Device) $body
            #[test]
            fn cpu() {
                run($crate::Device::Cpu)
            }
            #[test]
            fn cuda() {
                match $crate::testing::devices().into_iter().find(|d| matches!(d, $crate::Device::Cuda(_))) {
                    Some(d) => run(d),
                    None => eprintln!("skipped: no CUDA device"),
                }
            }
        }
    };
}
