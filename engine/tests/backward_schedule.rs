//! The backward pass's schedule: a loss branch on a shallow activation runs just before that
//! activation's producer, so its gradient is not held while the deeper layers run. Its own
//! test binary: it reads the process-wide tensor byte counters.

use engine::{live_bytes, peak_live_bytes, reset_peak_live_bytes, Tensor};

#[test]
fn a_shallow_loss_branch_runs_late_and_gradients_are_unchanged() {
    const N: usize = 1 << 18; // 1 MiB of f32
                              // Like VGG: a large shallow activation h1 (4N), then smaller deep ones (2N each).
    let x = Tensor::from_vec(vec![0.5f32; 4 * N], &[4 * N])
        .unwrap()
        .requires_grad_();
    let h1 = x.mul_scalar(2.0).unwrap().relu().unwrap();
    let mut h = h1.reshape(&[2 * N, 2]).unwrap().sum_axis(1, false).unwrap();
    for s in [0.5, 3.0, 0.25, 2.0] {
        h = h.mul_scalar(s).unwrap().relu().unwrap();
    }
    // A style-like term on h1 (through a view, made after the whole chain) and one at the end.
    let shallow = h1
        .reshape(&[2048, 512])
        .unwrap()
        .square()
        .unwrap()
        .sum()
        .unwrap();
    let loss = shallow.add(&h.sum().unwrap()).unwrap();
    drop(h);
    let before = live_bytes();
    reset_peak_live_bytes();
    loss.backward().unwrap();
    let extra = (peak_live_bytes() - before) as f64 / (4 * N * 4) as f64;
    // d/dx: h1 = 2x = 1 → shallow' = 2·h1·2 = 4; chain' = 2·(0.5·3·0.25·2) = 1.5.
    let g = x.grad().unwrap().to_vec::<f32>().unwrap();
    assert!(g.iter().all(|&v| v == 5.5), "gradient {}", g[0]);
    // Deep-first (this engine's order before the schedule), the shallow branch's gradient (the
    // size of h1) is held beside every deep layer's gradients: measured 3.0× h1 at once.
    // Scheduled late: 2.0× h1 (h1's two gradients and their sum at the end, when the deep
    // activations are gone).
    assert!(extra <= 2.25, "backward held {extra:.2}× h1 at once");
}
