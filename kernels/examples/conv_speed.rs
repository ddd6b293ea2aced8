//! Quick timing of conv2d 3×3 forward at VGG-19 shapes: im2col + gemm vs Winograd F(2,3) and
//! F(4,3), and F(4,3)'s input gradient in f32 and with bf16 operands.
//! `cargo run --release -p nst-kernels --example conv_speed [SIDE]` (SIDE: input side of
//! conv1, default 256). Prints GFLOP/s counted as direct-convolution FLOPs (2·K·C·9·H·W).

use kernels::cpu::bf16::Precision;
use kernels::cpu::buffers::BufferPool;
use kernels::cpu::conv2d::{conv2d_forward, Conv2dParams};
use kernels::cpu::winograd::{
    conv3x3_winograd, conv3x3_winograd_input_grad, WinogradTile, WinogradWeights,
};
#[path = "util/timing.rs"]
mod timing;
use timing::time;

fn main() {
    // One work-buffer pool for every call, as the engine's CPU backend keeps one.
    let pool = BufferPool::new();
    let side: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    for &(c, k, s) in &[
        (3, 64, 1),
        (64, 64, 1),
        (128, 128, 2),
        (256, 256, 4),
        (512, 512, 8),
    ] {
        let hw = side / s;
        let p = Conv2dParams {
            n: 1,
            c_in: c,
            h: hw,
            w: hw,
            c_out: k,
            kh: 3,
            kw: 3,
            stride_h: 1,
            stride_w: 1,
            pad_h: 1,
            pad_w: 1,
            groups: 1,
            pad_mode: kernels::cpu::spatial::PadMode::Zero,
        };
        let x: Vec<f32> = (0..p.input_len())
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect();
        let w: Vec<f32> = (0..p.weight_len())
            .map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let mut out = vec![0.0f32; p.output_len()];
        let flops = 2.0 * (k * c * 9 * hw * hw) as f64;
        let t_im2col = time(|| conv2d_forward(&pool, &p, &x, &w, None, &mut out));
        let w2 = WinogradWeights::new(WinogradTile::F2, &w, k, c);
        let t_f2 = time(|| conv3x3_winograd(&pool, &w2, &x, None, 1, hw, hw, &mut out));
        let w4 = WinogradWeights::new(WinogradTile::F4, &w, k, c);
        let t_f4 = time(|| conv3x3_winograd(&pool, &w4, &x, None, 1, hw, hw, &mut out));
        // The input gradient from the forward's weights (where K, C are multiples of 8).
        // And with bf16 GEMM operands (`--precision bf16`).
        let (t_gi, t_gb) = if w4.shares_input_grad() {
            let mut gi = vec![0.0f32; p.input_len()];
            let t =
                time(|| conv3x3_winograd_input_grad(&pool, &w4, &out, None, 1, hw, hw, &mut gi));
            let wb = WinogradWeights::new(WinogradTile::F4, &w, k, c)
                .with_precision(Precision::F32, Precision::Bf16);
            let tb =
                time(|| conv3x3_winograd_input_grad(&pool, &wb, &out, None, 1, hw, hw, &mut gi));
            (t, tb)
        } else {
            (f64::NAN, f64::NAN)
        };
        println!(
            "{c:>3}→{k:<3} @{hw:>3}²  im2col {:6.1} GFLOP/s  F(2,3) {:6.1}  F(4,3) {:6.1}  F(4,3) input grad {:6.1}  bf16 {:6.1}   ({:.2} / {:.2} / {:.2} / {:.2} / {:.2} ms)",
            flops / t_im2col * 1e-9,
            flops / t_f2 * 1e-9,
            flops / t_f4 * 1e-9,
            flops / t_gi * 1e-9,
            flops / t_gb * 1e-9,
            t_im2col * 1e3,
            t_f2 * 1e3,
            t_f4 * 1e3,
            t_gi * 1e3,
            t_gb * 1e3
        );
    }
}
