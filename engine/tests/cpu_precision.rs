//! `ConvConfig { precision: Bf16, .. }` per call: the forward is bit-identical to f32's, the
//! input gradient differs from f32's by bf16 rounding (more than f32 noise, well under a few
//! percent); one frozen convolution serves both precisions, in any order, each with its own
//! prepared transforms, and gives the same bits as the unprepared op.

use engine::testing::rel_error;
use engine::{Conv2dOptions, ConvConfig, DType, FrozenConv2d, Precision, Tensor};

/// relu(conv(relu(conv(x)))) like VGG's first layers: 3 → 16 (im2col forward, Winograd input
/// gradient from separate transforms) → 32 (Winograd both ways, shared transforms); returns
/// the output and d(Σ r·y)/dx. `frozen`: through FrozenConv2d, else Tensor::conv2d_relu.
fn run(
    x: &Tensor,
    convs: &[FrozenConv2d; 2],
    r: &Tensor,
    precision: Precision,
    frozen: bool,
) -> (Vec<f64>, Vec<f64>) {
    let x = x.detach().requires_grad_();
    let config = ConvConfig {
        precision,
        ..ConvConfig::default()
    };
    let o = Conv2dOptions::new(1, 1).with_config(config);
    let layer = |h: &Tensor, c: &FrozenConv2d| {
        if frozen {
            c.forward_relu(h, o)
        } else {
            h.conv2d_relu(c.weight(), c.bias(), o)
        }
    };
    let h = layer(&x, &convs[0]).unwrap();
    let y = layer(&h, &convs[1]).unwrap();
    y.mul(r).unwrap().sum().unwrap().backward().unwrap();
    // f32 values widened exactly, so equality below is still bit equality.
    let g = x.grad().unwrap().to_vec_f64().unwrap();
    (y.to_vec_f64().unwrap(), g)
}

#[test]
fn bf16_rounds_the_input_gradient_only() {
    let t = |shape: &[usize], std: f64, seed: u64| Tensor::randn(shape, std, seed, DType::F32);
    let x = t(&[2, 3, 21, 30], 1.0, 1).unwrap();
    let convs = [
        FrozenConv2d::new(t(&[16, 3, 3, 3], 0.3, 2).unwrap(), None).unwrap(),
        FrozenConv2d::new(
            t(&[32, 16, 3, 3], 0.1, 3).unwrap(),
            Some(t(&[32], 0.1, 4).unwrap()),
        )
        .unwrap(),
    ];
    let r = t(&[2, 32, 21, 30], 1.0, 5).unwrap();
    let (y32, g32) = run(&x, &convs, &r, Precision::F32, true);
    let (y16, g16) = run(&x, &convs, &r, Precision::Bf16, true);
    let (y32b, g32b) = run(&x, &convs, &r, Precision::F32, true);
    assert_eq!(y16, y32, "the forward stays f32");
    assert_eq!(
        (y32b, g32b),
        (y32.clone(), g32.clone()),
        "back to f32: the f32 transforms again"
    );
    // The unprepared op (transforms built per call) gives the same bits in both precisions.
    assert_eq!(
        run(&x, &convs, &r, Precision::F32, false),
        (y32, g32.clone())
    );
    assert_eq!(
        run(&x, &convs, &r, Precision::Bf16, false),
        (y16, g16.clone())
    );
    // Two bf16 input gradients (≈0.4–1.7% relative error each on random data).
    let e = rel_error(&g16, &g32);
    assert!(1e-3 < e && e < 4e-2, "bf16 input gradient vs f32: {e}");
}
