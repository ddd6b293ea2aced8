//! Memory stays flat while training: the number of live buffers after each iteration must not
//! grow. Its own test binary: `live_buffers` counts the whole process, so another test
//! allocating at the same moment would show up in the count.

use engine::{no_grad, Conv2dOptions, DType, Pool2dOptions, Tensor};

#[test]
fn memory_stays_flat_across_training_iterations() {
    // A small conv net trained for a few hundred iterations: the number of live buffers after
    // each iteration must not grow (the tape and saved activations are freed every backward).
    let mut w1 = Tensor::randn(&[4, 3, 3, 3], 0.3, 1, DType::F32).unwrap();
    let mut w2 = Tensor::randn(&[2, 4, 3, 3], 0.3, 2, DType::F32).unwrap();
    let x = Tensor::randn(&[2, 3, 12, 10], 1.0, 3, DType::F32).unwrap();
    let target = Tensor::randn(&[2, 2, 6, 5], 1.0, 4, DType::F32).unwrap();
    let mut counts = Vec::new();
    let mut losses = Vec::new();
    for _ in 0..300 {
        let (p1, p2) = (w1.requires_grad_(), w2.requires_grad_());
        let h = x
            .conv2d(&p1, None, Conv2dOptions::new(1, 1))
            .unwrap()
            .relu()
            .unwrap();
        let h = h.max_pool2d(Pool2dOptions::new(2, 2, 0)).unwrap();
        let y = h.conv2d(&p2, None, Conv2dOptions::new(1, 1)).unwrap();
        let loss = y
            .mse_loss(&target)
            .unwrap()
            .add(&y.tv_loss().unwrap())
            .unwrap();
        loss.backward().unwrap();
        losses.push(loss.item().unwrap());
        no_grad(|| {
            w1 = p1
                .sub(&p1.grad().unwrap().mul_scalar(0.05).unwrap())
                .unwrap();
            w2 = p2
                .sub(&p2.grad().unwrap().mul_scalar(0.05).unwrap())
                .unwrap();
        });
        drop((p1, p2, h, y, loss));
        counts.push(engine::live_buffers());
    }
    assert!(
        losses[299] < losses[0] * 0.9,
        "training did not reduce the loss: {} → {}",
        losses[0],
        losses[299]
    );
    let settled = counts[10];
    assert!(
        counts[10..].iter().all(|&c| c == settled),
        "live buffers grew: {:?} … {:?}",
        &counts[..12],
        &counts[290..]
    );
}
