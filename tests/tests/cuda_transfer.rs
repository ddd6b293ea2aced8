//! One whole style-transfer iteration on the GPU against the CPU (relative error ≤ 1e-4) and
//! against the PyTorch float64 reference: the reference objective's losses and input gradient,
//! one Adam step and one L-BFGS step, with the image and optimiser state kept on the device.
//! Prints "skipped: no CUDA device" and returns where no usable GPU is present.

use engine::testing::{assert_close, first_gpu_or_skip as gpu};
use engine::{Device, Tensor};
use nst::optim::{Adam, Lbfgs};
use nst::vgg19::{Pooling, Vgg19};
use nst_tests::reference_f32 as tensor;
use nst_tests::reference_objective as objective;
use nst_tests::{reference_bytes, reference_tensor, weights_or_skip};
use std::sync::Arc;

/// (losses, gradient, x after one Adam step, x after one L-BFGS step) on `device`.
fn one_iteration(
    device: Device,
    vgg: &Vgg19,
    st: &safetensors::SafeTensors,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let vgg = Arc::new(vgg.to_device(device).unwrap());
    let obj = objective(vgg, st);
    let x0 = tensor(st, "x").to_device(device).unwrap();
    let e = obj.evaluate(&x0).unwrap();
    assert_eq!(e.grad.device(), device, "the gradient stays on the device");
    let mut losses: Vec<f64> = e.terms.iter().map(|t| t.1).collect();
    losses.push(e.total);
    let mut xa = x0.clone();
    Adam::new(1.0).step(&mut xa, &e.grad).unwrap();
    assert_eq!(xa.device(), device, "Adam keeps x on the device");
    let mut xl = x0.clone();
    Lbfgs::new(10)
        .step(&mut xl, &mut |x: &Tensor| {
            let e = obj.evaluate(x)?;
            Ok((e.total, e.grad))
        })
        .unwrap();
    assert_eq!(xl.device(), device, "L-BFGS keeps x on the device");
    (
        losses,
        e.grad.to_vec_f64().unwrap(),
        xa.to_vec_f64().unwrap(),
        xl.to_vec_f64().unwrap(),
    )
}

#[test]
fn a_whole_iteration_on_the_gpu_matches_the_cpu_and_the_reference() {
    let Some(gpu) = gpu() else { return };
    let Some(w) = weights_or_skip() else { return };
    let bytes = reference_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let vgg = Vgg19::new(&w, Pooling::Max).unwrap();
    let (cl, cg, ca, cb) = one_iteration(Device::Cpu, &vgg, &st);
    let (gl, gg, ga, gb) = one_iteration(gpu, &vgg, &st);
    assert_close(&gl, &cl, 1e-4, "losses, GPU vs CPU");
    assert_close(&gg, &cg, 1e-4, "gradient, GPU vs CPU");
    assert_close(&ga, &ca, 1e-4, "x after one Adam step, GPU vs CPU");
    assert_close(&gb, &cb, 1e-4, "x after one L-BFGS step, GPU vs CPU");
    let (total, _) = reference_tensor(&st, "loss.total");
    assert_close(&gl[gl.len() - 1..], &total, 1e-4, "GPU total vs reference");
    let (grad, _) = reference_tensor(&st, "grad_total_wrt_x");
    assert_close(&gg, &grad, 1e-3, "GPU gradient vs reference");
}
