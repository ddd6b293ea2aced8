//! `--precision bf16` (`ConvConfig::precision`, per run): bf16 input gradients against the
//! PyTorch float64 reference, and a short Adam run on real images whose losses stay within 1%
//! of the f32 run's.

use engine::testing::rel_error as rel;
use engine::{ConvConfig, Precision};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::optim::Adam;
use nst::transfer::{objective_from_tensors, reference_config, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst_tests::{asset_path, weights_or_skip, CHELSEA_MAX};
use std::sync::Arc;

#[test]
fn bf16_gradient_and_adam_losses_stay_close_to_f32() {
    let Some(w) = weights_or_skip() else { return };
    let vgg = Arc::new(Vgg19::new(&w, Pooling::Max).unwrap());

    // 1. The input gradient at the reference point (64×48), against PyTorch's float64 one.
    let r = &CHELSEA_MAX;
    let (want, _) = r.tensor("grad_total_wrt_x");
    let x_ref = r.f32("x");
    let conv = |precision: Precision| ConvConfig {
        precision,
        ..Default::default()
    };
    let grad = |p: Precision| {
        let e = r
            .objective_with(vgg.clone(), conv(p))
            .evaluate(&x_ref)
            .unwrap();
        (e.total, e.grad.to_vec_f64().unwrap())
    };
    let (loss32, g32) = grad(Precision::F32);
    let (loss16, g16) = grad(Precision::Bf16);
    assert_eq!(loss16, loss32, "the forward (and so the loss) stays f32");
    let (e32, e16) = (rel(&g32, &want), rel(&g16, &want));
    eprintln!("gradient vs reference: f32 {e32:.2e}, bf16 {e16:.2e}");
    // f32 meets the reference's 1e-3; bf16 rounding of 15 input gradients measured 0.76%.
    assert!(e32 < 1e-3, "f32 gradient vs reference: {e32}");
    assert!(
        1e-3 < e16 && e16 < 3e-2,
        "bf16 gradient vs reference: {e16}"
    );

    // 2. Adam (lr 1) on chelsea × the_scream at 128 px, the reference objective: the bf16
    //    run's loss stays within 1% of the f32 run's at every step (measured: 0.12% at worst;
    //    the f32 loss falls by 19%).
    let load = |name: &str| {
        let img = RgbImage::load(&asset_path(name), DEFAULT_MAX_PIXELS).unwrap();
        let img = img.resize_longest(128);
        vgg.preprocess(&img.data, img.width, img.height).unwrap()
    };
    let (xc, xs) = (load("chelsea.png"), load("the_scream.jpg"));
    let run = |p: Precision| {
        let cfg = StyleTransferConfig {
            conv: conv(p),
            ..reference_config()
        };
        let objective =
            objective_from_tensors(vgg.clone(), &xc, std::slice::from_ref(&xs), &[1.0], &cfg)
                .unwrap();
        let (mut x, mut adam) = (xc.clone(), Adam::new(1.0));
        (0..150)
            .map(|_| {
                let e = objective.evaluate(&x).unwrap();
                adam.step(&mut x, &e.grad).unwrap();
                e.total
            })
            .collect::<Vec<f64>>()
    };
    let (l32, l16) = (run(Precision::F32), run(Precision::Bf16));
    assert!(
        l32[149] < 0.9 * l32[0],
        "the run makes progress: {} → {}",
        l32[0],
        l32[149]
    );
    let worst = l32
        .iter()
        .zip(&l16)
        .map(|(a, b)| (b - a).abs() / a)
        .fold(0.0, f64::max);
    assert!(
        worst < 0.01,
        "bf16 loss {worst:.4} away from f32's (relative)"
    );
}
