//! One whole style-transfer iteration on the GPU against the CPU (relative error ≤ 1e-4) and
//! against the PyTorch float64 reference: the reference objective's losses and input gradient,
//! one Adam step and one L-BFGS step, with the image and optimiser state kept on the device.
//! Prints "skipped: no CUDA device" and returns where no usable GPU is present.

use engine::testing::{assert_close, first_gpu_or_skip as gpu};
use engine::{Device, Tensor};
use nst::optim::{Adam, Lbfgs};
use nst::vgg19::Vgg19;
use nst_tests::{weights_or_skip, Reference, REFERENCES};
use std::sync::Arc;

/// (losses, gradient, x after one Adam step, x after one L-BFGS step) on `device`.
fn one_iteration(
    device: Device,
    vgg: &Vgg19,
    r: &Reference,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let vgg = Arc::new(vgg.to_device(device).unwrap());
    let obj = r.objective(vgg);
    let x0 = r.f32("x").to_device(device).unwrap();
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
    for r in &REFERENCES {
        let vgg = Vgg19::new(&w, r.pooling).unwrap();
        let (cl, cg, ca, cb) = one_iteration(Device::Cpu, &vgg, r);
        let (gl, gg, ga, gb) = one_iteration(gpu, &vgg, r);
        let n = r.name;
        assert_close(&gl, &cl, 1e-4, &format!("{n} losses, GPU vs CPU"));
        assert_close(&gg, &cg, 1e-4, &format!("{n} gradient, GPU vs CPU"));
        assert_close(
            &ga,
            &ca,
            1e-4,
            &format!("{n} x after one Adam step, GPU vs CPU"),
        );
        assert_close(
            &gb,
            &cb,
            1e-4,
            &format!("{n} x after one L-BFGS step, GPU vs CPU"),
        );
        let (total, _) = r.tensor("loss.total");
        assert_close(
            &gl[gl.len() - 1..],
            &total,
            1e-4,
            &format!("{n} GPU total vs reference"),
        );
        let (grad, _) = r.tensor("grad_total_wrt_x");
        assert_close(&gg, &grad, 1e-3, &format!("{n} GPU gradient vs reference"));
    }
}
