//! `nst-cli devices`: the GPUs this build can use (name, compute capability, memory).

use anyhow::Result;
use nst::engine::Device;

/// Print one line per usable CUDA device, or why there is none. Never fails for a missing
/// driver or GPU: that is an answer, not an error (exit 0).
pub fn run() -> Result<()> {
    let devices = Device::cuda_devices();
    if devices.is_empty() {
        let reason = Device::cuda_unavailable_reason().unwrap_or_default();
        let what = if kernels_missing_driver(&reason) {
            "no CUDA device found (driver not loaded)"
        } else {
            "no usable CUDA device found"
        };
        println!("{what}\n  {reason}");
        return Ok(());
    }
    for d in devices {
        let info = d.cuda_info()?;
        let (major, minor) = info.compute_capability;
        println!(
            "{d}: {}, compute capability {major}.{minor}, {:.1} GiB",
            info.name,
            info.total_memory_bytes as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// Whether the reason is the driver library itself being absent.
fn kernels_missing_driver(reason: &str) -> bool {
    reason.starts_with("no CUDA driver")
}
