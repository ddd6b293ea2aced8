//! `set_cpu_precision(Bf16)`: the forward is bit-identical to f32's, the input gradient
//! differs from f32's by bf16 rounding (more than f32 noise, well under a few percent). Its own
//! test binary: it sets the process-wide precision.

use engine::testing::rel_error;
use engine::{set_cpu_precision, Conv2dOptions, DType, Precision, Tensor};

/// relu(conv(relu(conv(x)))) like VGG's first layers: 3 → 16 (im2col forward, Winograd input
/// gradient from separate transforms) → 32 (Winograd both ways, shared transforms); returns
/// the output and d(Σ r·y)/dx.
fn run(x: &Tensor, w1: &Tensor, w2: &Tensor, b: &Tensor, r: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let x = x.detach().requires_grad_();
    let o = Conv2dOptions::new(1, 1);
    let h = x.conv2d_relu(w1, None, o).unwrap();
    let y = h.conv2d_relu(w2, Some(b), o).unwrap();
    y.mul(r).unwrap().sum().unwrap().backward().unwrap();
    // f32 values widened exactly, so equality below is still bit equality.
    let g = x.grad().unwrap().to_vec_f64().unwrap();
    (y.to_vec_f64().unwrap(), g)
}

#[test]
fn bf16_rounds_the_input_gradient_only() {
    let t = |shape: &[usize], std: f64, seed: u64| Tensor::randn(shape, std, seed, DType::F32);
    let x = t(&[2, 3, 21, 30], 1.0, 1).unwrap();
    let w1 = t(&[16, 3, 3, 3], 0.3, 2).unwrap();
    let w2 = t(&[32, 16, 3, 3], 0.1, 3).unwrap();
    let b = t(&[32], 0.1, 4).unwrap();
    let r = t(&[2, 32, 21, 30], 1.0, 5).unwrap();
    let (y32, g32) = run(&x, &w1, &w2, &b, &r);
    set_cpu_precision(Precision::Bf16);
    let (y16, g16) = run(&x, &w1, &w2, &b, &r);
    set_cpu_precision(Precision::F32);
    let (y32b, g32b) = run(&x, &w1, &w2, &b, &r);
    assert_eq!(y16, y32, "the forward stays f32");
    assert_eq!(
        (y32b, g32b),
        (y32, g32.clone()),
        "back to f32: the f32 transforms again"
    );
    // Two bf16 input gradients (≈0.4–1.7% relative error each on random data).
    let e = rel_error(&g16, &g32);
    assert!(1e-3 < e && e < 4e-2, "bf16 input gradient vs f32: {e}");
}
