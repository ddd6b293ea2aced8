//! Quick timing of the style loss's Gram kernels at VGG-19's style layers (relu1_1 … relu5_1)
//! for a content image of SIDE × 3/4·SIDE pixels: `gram` (G = F Fᵀ, the upper triangle) and
//! `gram_backward` (dF = S·F), on all the threads rayon has.
//! `cargo run --release -p nst-kernels --example gram_speed [SIDE]` (default 512). Prints
//! GFLOP/s counted as 2·C²·K for both (the forward computes about half of that) and the
//! fastest of 7 runs.

use kernels::cpu::gram::{gram, gram_backward};
#[path = "util/timing.rs"]
mod timing;
use timing::time;

fn main() {
    let side: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let (h, w) = (side * 3 / 4, side);
    println!("GFLOP/s (2·C²·K), {} threads", rayon::current_num_threads());
    for (c, s) in [(64, 1), (128, 2), (256, 4), (512, 8), (512, 16)] {
        let k = (h / s) * (w / s);
        let f: Vec<f32> = (0..c * k)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect();
        let sm: Vec<f32> = (0..c * c)
            .map(|i| ((i * 104729) % 1000) as f32 * 1e-6)
            .collect();
        let mut g = vec![0f32; c * c];
        let mut out = vec![0f32; c * k];
        let flop = 2.0 * (c * c * k) as f64;
        let tf = time(|| gram(&f, c, k, 1.0, &mut g));
        let tb = time(|| gram_backward(&sm, &f, c, k, &mut out));
        println!(
            "C={c:3} K={k:6}: gram {:6.1} ({:6.2} ms)  gram_backward {:6.1} ({:6.2} ms)",
            flop / tf * 1e-9,
            tf * 1e3,
            flop / tb * 1e-9,
            tb * 1e3
        );
    }
}
