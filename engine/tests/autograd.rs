//! The tape: recording rules, no_grad, accumulation, freeing (memory staying flat: memory_flat.rs).

use engine::{no_grad, Conv2dOptions, DType, EngineError, Pool2dOptions, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

#[test]
fn chain_rule_on_a_shared_subexpression() {
    // y = x·x + 3x, used twice: L = sum(y) + sum(y·2) → dL/dx = 3·(2x + 3)
    let x = t(&[1.0, -2.0, 0.5], &[3]).requires_grad_();
    let y = x.mul(&x).unwrap().add(&x.mul_scalar(3.0).unwrap()).unwrap();
    let l = y
        .sum()
        .unwrap()
        .add(&y.mul_scalar(2.0).unwrap().sum().unwrap())
        .unwrap();
    l.backward().unwrap();
    assert_eq!(
        x.grad().unwrap().to_vec::<f32>().unwrap(),
        vec![15.0, -3.0, 12.0]
    );
}

#[test]
fn no_grad_records_nothing_and_frozen_inputs_get_no_grad() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let frozen = t(&[3.0, 4.0], &[2]);
    let y = no_grad(|| x.mul(&frozen).unwrap());
    assert!(!y.requires_grad());
    let z = x.mul(&frozen).unwrap().sum().unwrap();
    assert!(z.requires_grad());
    z.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    assert!(frozen.grad().is_none());
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let x = t(&[2.0], &[1]).requires_grad_();
    for _ in 0..2 {
        x.square().unwrap().sum().unwrap().backward().unwrap();
    }
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![8.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn backward_needs_a_scalar_and_frees_the_tape() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.square().unwrap();
    assert!(matches!(y.backward(), Err(EngineError::NotScalar { .. })));
    let l = y.sum().unwrap();
    l.backward().unwrap();
    assert_eq!(l.backward(), Err(EngineError::GraphFreed));
}

#[test]
fn errors_name_the_op_and_shapes_and_never_panic() {
    let a = t(&[1.0; 6], &[2, 3]);
    let b = t(&[1.0; 4], &[2, 2]);
    let e = a.add(&b).unwrap_err();
    assert!(
        e.to_string().contains("add") && e.to_string().contains("[2, 3]"),
        "{e}"
    );
    assert!(matches!(
        a.matmul(&b),
        Err(EngineError::ShapeMismatch { op: "matmul", .. })
    ));
    assert!(matches!(
        Tensor::from_vec(vec![1.0f32; 5], &[2, 3]),
        Err(EngineError::LengthMismatch { .. })
    ));
    assert!(a.reshape(&[4]).is_err());
    assert!(a.permute(&[0, 0]).is_err());
    assert!(a.narrow(1, 2, 2).is_err());
    let img = t(&[1.0; 2 * 3 * 4 * 4], &[2, 3, 4, 4]);
    let w = t(&[1.0; 5 * 2 * 3 * 3], &[5, 2, 3, 3]);
    let e = img.conv2d(&w, None, Conv2dOptions::new(1, 1)).unwrap_err();
    assert!(
        e.to_string().contains("conv2d") && e.to_string().contains("channels"),
        "{e}"
    );
    let w3 = t(&[1.0; 5 * 3 * 3 * 3], &[5, 3, 3, 3]);
    assert!(img.conv2d(&w3, None, Conv2dOptions::new(0, 1)).is_err());
    assert!(img
        .conv2d(&w3, Some(&t(&[0.0; 4], &[4])), Conv2dOptions::new(1, 1))
        .is_err());
    let big = t(&[1.0; 7 * 3 * 9 * 9], &[7, 3, 9, 9]);
    assert!(img.conv2d(&big, None, Conv2dOptions::new(1, 0)).is_err());
    assert!(img.max_pool2d(Pool2dOptions::new(5, 1, 0)).is_err());
    assert!(img.max_pool2d(Pool2dOptions::new(2, 1, 2)).is_err());
    assert!(img.avg_pool2d(Pool2dOptions::new(2, 0, 0)).is_err());
    // The feed-forward networks' layers.
    let e = img
        .conv2d(&w3, None, Conv2dOptions::new(1, 1).with_groups(2))
        .unwrap_err();
    assert!(e.to_string().contains("groups 2"), "{e}");
    let e = img
        .pad2d(engine::Pad2d::uniform(4), engine::PadMode::Reflect)
        .unwrap_err();
    assert!(
        e.to_string().contains("pad2d") && e.to_string().contains("reflect"),
        "{e}"
    );
    assert!(a
        .pad2d(engine::Pad2d::uniform(1), engine::PadMode::Zero)
        .is_err());
    assert!(img.upsample_nearest(0).is_err() && a.upsample_nearest(2).is_err());
    let gamma = t(&[1.0; 3], &[3]);
    let e = img
        .instance_norm(&t(&[1.0; 2], &[2]), &gamma, 1e-5)
        .unwrap_err();
    assert!(
        e.to_string().contains("instance_norm") && e.to_string().contains("gamma"),
        "{e}"
    );
    assert!(img.instance_norm(&gamma, &gamma, -1.0).is_err());
    assert!(a.clamp(2.0, 1.0).is_err() && a.global_avg_pool2d().is_err());
    let empty = Tensor::zeros(&[1, 3, 0, 4], DType::F32).unwrap();
    assert!(matches!(
        empty.conv2d(&w3, None, Conv2dOptions::new(1, 1)),
        Err(EngineError::Empty { .. })
    ));
    assert!(matches!(
        Tensor::zeros(&[0], DType::F32).unwrap().mean(),
        Err(EngineError::Empty { .. })
    ));
    let f64t = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    assert!(matches!(
        a.add(&f64t),
        Err(EngineError::DTypeMismatch { .. })
    ));
    assert!(matches!(
        a.to_device(engine::Device::Cuda(99)),
        Err(EngineError::DeviceUnavailable { .. })
    ));
    assert!(a.gram_matrix().is_err() && a.tv_loss().is_err());
}

/// y = x·2 feeds four terms, so y's gradient is a sum of four, made in place after the first
/// (`Tensor::add_grad`); the leaf's gradient, which the caller holds, is summed out of place.
#[test]
fn gradient_sums_are_exact_and_leave_held_gradients_alone() {
    let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3])
        .unwrap()
        .requires_grad_();
    let loss = |x: &Tensor| -> engine::Result<Tensor> {
        let y = x.mul_scalar(2.0)?;
        let terms = y.mul_scalar(3.0)?.add(&y.square()?)?.add(&y)?;
        terms.add(&y.mul(&y.mul_scalar(0.5)?)?)?.sum()
    };
    // d/dy (3y + y² + y + y²/2) = 4 + 3y; dy/dx = 2.
    let want: Vec<f64> = [1.0f64, -2.0, 3.0]
        .iter()
        .map(|&v| 2.0 * (4.0 + 3.0 * 2.0 * v))
        .collect();
    loss(&x).unwrap().backward().unwrap();
    let first = x.grad().unwrap();
    assert_eq!(first.to_vec::<f64>().unwrap(), want);
    loss(&x).unwrap().backward().unwrap();
    let twice: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), twice);
    assert_eq!(
        first.to_vec::<f64>().unwrap(),
        want,
        "held gradient changed"
    );
}
