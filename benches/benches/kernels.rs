//! Criterion benches of the hot CPU kernels, in f32:
//! - conv2d 3×3, stride 1, padding 1, forward and input-gradient, at the VGG-19 layer shapes of a
//!   256×256 image (batch 1): 3→64 @256², 64→64 @256², 128→128 @128², 256→256 @64², 512→512 @32²;
//! - sgemm 1024³ and 2048³ through `kernels::cpu::gemm::gemm_rm`.
//!
//! Throughput is reported as `Throughput::Elements(FLOPs)`, so criterion's "elem/s" is FLOP/s.
//! conv2d: FLOPs = 2·C_out·C_in·KH·KW·OH·OW (one multiply-add = 2 FLOPs; both directions cost the
//! same); gemm: 2·m·k·n. Run with `cargo bench -p nst-benches --bench kernels` (see ../README.md).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use kernels::cpu::buffers::BufferPool;
use kernels::cpu::conv2d::{conv2d_backward_input, conv2d_forward, Conv2dParams};
use kernels::cpu::gemm::gemm_rm;
use std::hint::black_box;
use std::time::Duration;

/// (C_in, C_out, H = W) of the distinct VGG-19 3×3 conv shapes for a 256×256 input.
const VGG19_SHAPES_256: [(usize, usize, usize); 5] = [
    (3, 64, 256),
    (64, 64, 256),
    (128, 128, 128),
    (256, 256, 64),
    (512, 512, 32),
];

/// Deterministic values in [−1, 1) (the kernels' speed does not depend on them; no NaNs/denormals).
fn filled(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn conv_params(c_in: usize, c_out: usize, size_px: usize) -> Conv2dParams {
    Conv2dParams {
        n: 1,
        c_in,
        h: size_px,
        w: size_px,
        c_out,
        kh: 3,
        kw: 3,
        stride_h: 1,
        stride_w: 1,
        pad_h: 1,
        pad_w: 1,
        groups: 1,
        pad_mode: kernels::cpu::spatial::PadMode::Zero,
    }
}

fn conv_flops(p: &Conv2dParams) -> u64 {
    (2 * p.c_out * p.c_in * p.kh * p.kw * p.out_h() * p.out_w()) as u64
}

fn bench_conv2d(c: &mut Criterion) {
    let pool = BufferPool::new();
    let mut group = c.benchmark_group("conv2d_3x3_s1_p1_f32");
    group.sampling_mode(SamplingMode::Flat);
    for (c_in, c_out, size_px) in VGG19_SHAPES_256 {
        let p = conv_params(c_in, c_out, size_px);
        let input = filled(p.input_len(), 1);
        let weight = filled(p.weight_len(), 2);
        let bias = filled(p.c_out, 3);
        let grad_out = filled(p.output_len(), 4);
        let mut out = vec![0.0f32; p.output_len()];
        let mut grad_in = vec![0.0f32; p.input_len()];
        group.throughput(Throughput::Elements(conv_flops(&p)));
        let shape = format!("{c_in}to{c_out}_{size_px}px");
        group.bench_function(format!("forward/{shape}"), |b| {
            b.iter(|| conv2d_forward(&pool, &p, black_box(&input), &weight, Some(&bias), &mut out))
        });
        group.bench_function(format!("backward_input/{shape}"), |b| {
            b.iter(|| conv2d_backward_input(&pool, &p, black_box(&grad_out), &weight, &mut grad_in))
        });
        black_box((&out, &grad_in));
    }
    group.finish();
}

fn bench_sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_f32");
    group.sampling_mode(SamplingMode::Flat);
    // 2048³ takes 0.1–0.5 s an iteration: 10 of them need more than the default window.
    group.measurement_time(Duration::from_secs(6));
    for n in [1024usize, 2048] {
        let a = filled(n * n, 5);
        let b = filled(n * n, 6);
        let mut out = vec![0.0f32; n * n];
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        group.bench_function(format!("gemm_rm/{n}x{n}x{n}"), |bch| {
            bch.iter(|| {
                gemm_rm(n, n, n, 1.0, black_box(&a), false, &b, false, 0.0, &mut out);
            })
        });
        black_box(&out);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Few samples and short windows: the whole run takes a few minutes on 2 cores.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_conv2d, bench_sgemm
}
criterion_main!(benches);
