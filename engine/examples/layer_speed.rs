//! Speed and memory of the feed-forward style networks' heaviest layers on the CPU (f32,
//! inference under `no_grad`): GFLOP/s (2·MACs / median wall time of 5 runs after a warm-up)
//! and the process's peak resident memory (VmHWM) after each layer.
//! Run: `cargo run --release -p nst-engine --example layer_speed`.

use engine::{Conv2dOptions, DType, Pad2d, PadMode, Tensor};
use std::time::Instant;

/// Peak resident set size of this process in MiB (Linux `VmHWM`), 0 elsewhere.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn bench(name: &str, macs: f64, mut f: impl FnMut() -> Tensor) {
    let _ = f();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let y = f();
            let dt = t.elapsed().as_secs_f64();
            drop(y);
            dt
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let med = times[2];
    println!(
        "{name:<48} {:>8.2} ms {:>7.1} GFLOP/s   peak RSS {:>7.1} MiB   peak tensors {:>7.1} MiB",
        med * 1e3,
        2.0 * macs / med / 1e9,
        peak_rss_mib(),
        engine::peak_live_bytes() as f64 / (1 << 20) as f64,
    );
}

fn main() -> engine::Result<()> {
    let _g = engine::no_grad_guard();
    println!("rayon threads: {}", rayon::current_num_threads());
    let conv = |x: &Tensor, w: &Tensor, o: Conv2dOptions| x.conv2d(w, None, o).expect("conv");
    // 9×9 3→32 stride 1 at 1024×683 on a reflect-padded input (as multistyle26's first layer).
    let x = Tensor::randn(&[1, 3, 683, 1024], 1.0, 1, DType::F32)?
        .pad2d(Pad2d::uniform(4), PadMode::Reflect)?;
    let w = Tensor::randn(&[32, 3, 9, 9], 0.1, 2, DType::F32)?;
    let macs = 32.0 * 3.0 * 81.0 * 683.0 * 1024.0;
    engine::reset_peak_live_bytes();
    println!("before: peak RSS {:.1} MiB", peak_rss_mib());
    bench("conv 9x9 3->32 s1 @1024x683", macs, || {
        conv(&x, &w, Conv2dOptions::new(1, 0))
    });
    // 9×9 32→3 and 8→3 (the last layers) at the same size.
    for c in [32usize, 8] {
        let x = Tensor::randn(&[1, c, 683, 1024], 1.0, 3, DType::F32)?
            .pad2d(Pad2d::uniform(4), PadMode::Reflect)?;
        let w = Tensor::randn(&[3, c, 9, 9], 0.1, 4, DType::F32)?;
        let macs = 3.0 * c as f64 * 81.0 * 683.0 * 1024.0;
        engine::reset_peak_live_bytes();
        bench(&format!("conv 9x9 {c}->3 s1 @1024x683"), macs, || {
            conv(&x, &w, Conv2dOptions::new(1, 0))
        });
    }
    // 3×3 32→32 stride 2 at 512×344 (contract layers), reflect pad 1 first.
    let x = Tensor::randn(&[1, 32, 344, 512], 1.0, 5, DType::F32)?
        .pad2d(Pad2d::uniform(1), PadMode::Reflect)?;
    let w = Tensor::randn(&[32, 32, 3, 3], 0.1, 6, DType::F32)?;
    let macs = 32.0 * 32.0 * 9.0 * 172.0 * 256.0;
    engine::reset_peak_live_bytes();
    bench("conv 3x3 32->32 s2 @512x344", macs, || {
        conv(&x, &w, Conv2dOptions::new(2, 0))
    });
    // Depthwise 3×3 at 144×128×128, stride 1 pad 1 and stride 2 TF SAME.
    let x = Tensor::randn(&[1, 144, 128, 128], 1.0, 7, DType::F32)?;
    let w = Tensor::randn(&[144, 1, 3, 3], 0.1, 8, DType::F32)?;
    let dw = Conv2dOptions::new(1, 1).with_groups(144);
    engine::reset_peak_live_bytes();
    bench(
        "depthwise 3x3 144ch s1 @128x128",
        144.0 * 9.0 * 128.0 * 128.0,
        || conv(&x, &w, dw),
    );
    let xp = x.pad2d(Pad2d::new(0, 1, 0, 1), PadMode::Zero)?;
    let dw2 = Conv2dOptions::new(2, 0).with_groups(144);
    bench(
        "depthwise 3x3 144ch s2 @128x128",
        144.0 * 9.0 * 64.0 * 64.0,
        || conv(&xp, &w, dw2),
    );
    // The other layer kernels at multistyle26's sizes.
    let x = Tensor::randn(&[1, 32, 344, 512], 1.0, 9, DType::F32)?;
    let g = Tensor::randn(&[32], 1.0, 10, DType::F32)?;
    bench(
        "instance_norm 32ch @512x344 (GFLOP/s: elems)",
        32.0 * 344.0 * 512.0 / 2.0,
        || x.instance_norm(&g, &g, 1e-5).expect("norm"),
    );
    bench(
        "reflect pad 4, 32ch @512x344 (elems)",
        32.0 * 352.0 * 520.0 / 2.0,
        || x.pad2d(Pad2d::uniform(4), PadMode::Reflect).expect("pad"),
    );
    let x = Tensor::randn(&[1, 32, 172, 256], 1.0, 11, DType::F32)?;
    bench(
        "upsample x2, 32ch 256x172 (elems)",
        32.0 * 344.0 * 512.0 / 2.0,
        || x.upsample_nearest(2).expect("up"),
    );
    Ok(())
}
