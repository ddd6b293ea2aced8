//! Adam's update as one fused kernel (`kernels/adam.cu`): per element, one read of x, g, m, v
//! and one write of x, m, v. Same arithmetic, in the same order, as `nst::optim::Adam::step`
//! (PyTorch's Adam without weight decay or amsgrad).

use super::launch::{self, check_len, typed};
use super::nvrtc::Module;
use super::{CudaDevice, CudaElem, CudaError};
use cudarc::driver::{CudaSlice, PushKernelArg};

pub use crate::ops::AdamStep;

/// # Safety
/// All seven addresses must hold `n` elements of `T`.
unsafe fn launch_adam<T: CudaElem>(
    dev: &CudaDevice,
    ptrs: [u64; 7],
    n: usize,
    hp: &AdamStep,
) -> Result<(), CudaError> {
    if n == 0 {
        return Ok(());
    }
    if hp.t < 1 {
        return Err(CudaError::InvalidArgument {
            op: "adam_step",
            msg: format!("step t = {} must be ≥ 1", hp.t),
        });
    }
    let f = typed(dev, Module::Adam, "adam", T::SUFFIX)?;
    let c = hp.constants::<T>();
    let n64 = n as i64;
    let mut l = dev.stream().launch_builder(&f);
    for p in &ptrs {
        l.arg(p);
    }
    l.arg(&n64);
    for v in &c {
        l.arg(v);
    }
    // `adam_<t>(x, g, m, v, x_out, m_out, v_out, i64 n, T b1, b2, c1, c2, step, bc2_sqrt, eps)`.
    launch::launch(dev, "adam", l, launch::elementwise(n))
}

fn check(n: usize, bufs: &[(&str, usize)]) -> Result<(), CudaError> {
    for &(what, len) in bufs {
        check_len("adam_step", what, len, n)?;
    }
    Ok(())
}

/// One Adam step in place on the first `n` elements: `x`, `m`, `v` are updated from `grad`
/// (`m`, `v` start as zeros). Errors: `InvalidArgument` for short buffers or `t < 1`.
pub fn adam_step<T: CudaElem>(
    dev: &CudaDevice,
    x: &mut CudaSlice<T>,
    grad: &CudaSlice<T>,
    m: &mut CudaSlice<T>,
    v: &mut CudaSlice<T>,
    n: usize,
    hp: &AdamStep,
) -> Result<(), CudaError> {
    check(
        n,
        &[
            ("x", x.len()),
            ("grad", grad.len()),
            ("m", m.len()),
            ("v", v.len()),
        ],
    )?;
    let (px, pg, pm, pv) = (
        dev.ptr(x, 0),
        dev.ptr(grad, 0),
        dev.ptr(m, 0),
        dev.ptr(v, 0),
    );
    // SAFETY: every buffer holds n elements; outputs alias inputs element for element, which
    // the kernel allows (it reads element i before writing it, and no pointer is __restrict__).
    unsafe { launch_adam::<T>(dev, [px, pg, pm, pv, px, pm, pv], n, hp) }
}

/// Updated (x, m, v) from [`adam_update`].
pub type AdamState<T> = (CudaSlice<T>, CudaSlice<T>, CudaSlice<T>);

/// One Adam step out of place: returns new (x, m, v) and leaves the inputs untouched.
pub fn adam_update<T: CudaElem>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    grad: &CudaSlice<T>,
    m: &CudaSlice<T>,
    v: &CudaSlice<T>,
    n: usize,
    hp: &AdamStep,
) -> Result<AdamState<T>, CudaError> {
    check(
        n,
        &[
            ("x", x.len()),
            ("grad", grad.len()),
            ("m", m.len()),
            ("v", v.len()),
        ],
    )?;
    // SAFETY: all three are written whole by the kernel.
    let (xo, mo, vo) = unsafe { (dev.alloc::<T>(n)?, dev.alloc::<T>(n)?, dev.alloc::<T>(n)?) };
    let ptrs = [
        dev.ptr(x, 0),
        dev.ptr(grad, 0),
        dev.ptr(m, 0),
        dev.ptr(v, 0),
        dev.ptr(&xo, 0),
        dev.ptr(&mo, 0),
        dev.ptr(&vo, 0),
    ];
    // SAFETY: every buffer holds n elements.
    unsafe { launch_adam::<T>(dev, ptrs, n, hp) }?;
    Ok((xo, mo, vo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_cpu_optimiser() {
        let hp = AdamStep {
            learning_rate: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 3,
        };
        let c = hp.constants::<f32>();
        assert_eq!(c[2], (1.0f64 - 0.9) as f32); // not 1 − 0.9f32
        assert_eq!(c[4], (0.1 / (1.0 - 0.9f64.powi(3))) as f32);
        assert_eq!(c[5], (1.0 - 0.999f64.powi(3)).sqrt() as f32);
    }

    #[test]
    fn fused_update_matches_the_cpu_optimiser_on_a_gpu() {
        if !crate::cuda::is_available() {
            eprintln!("skipped: no CUDA device");
            return;
        }
        let dev = crate::cuda::device(0).unwrap();
        let n = 10_001;
        let mut x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut dx = dev.htod(&x).unwrap();
        let mut dm = dev.htod(&m).unwrap();
        let mut dv = dev.htod(&v).unwrap();
        for t in 1..=3 {
            let g: Vec<f32> = (0..n).map(|i| ((i * t) as f32 * 0.11).cos()).collect();
            let dg = dev.htod(&g).unwrap();
            let hp = AdamStep {
                learning_rate: 2.0,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                t: t as i32,
            };
            // The CPU kernel is the reference for the fused one.
            crate::cpu::adam::adam_step(&mut x, &g, &mut m, &mut v, &hp);
            let (sx, sm, sv) = (
                dx.slice_mut::<f32>().unwrap(),
                dm.slice_mut::<f32>().unwrap(),
                dv.slice_mut::<f32>().unwrap(),
            );
            let sg = dg.slice::<f32>().unwrap();
            if t == 3 {
                // The out-of-place form, from the same state, gives the same step.
                let (xo, _, _) = adam_update(&dev, sx, sg, sm, sv, n, &hp).unwrap();
                assert_near("x (out of place)", &dev.dtoh(&xo, n).unwrap(), &x);
            }
            adam_step(&dev, sx, sg, sm, sv, n, &hp).unwrap();
        }
        assert_near("x", &dev.buffer_to_host::<f32>(&dx).unwrap(), &x);
        assert_near("m", &dev.buffer_to_host::<f32>(&dm).unwrap(), &m);
        assert_near("v", &dev.buffer_to_host::<f32>(&dv).unwrap(), &v);
    }

    /// Equal up to FMA contraction on the GPU: relative 1e-5.
    fn assert_near(what: &str, gpu: &[f32], cpu: &[f32]) {
        assert_eq!(gpu.len(), cpu.len());
        for (i, (a, b)) in gpu.iter().zip(cpu).enumerate() {
            let tol = 1e-5 * b.abs().max(1.0);
            assert!((a - b).abs() <= tol, "{what}[{i}]: gpu {a}, cpu {b}");
        }
    }

    #[test]
    fn out_of_memory_names_the_bytes_on_a_gpu() {
        if !crate::cuda::is_available() {
            eprintln!("skipped: no CUDA device");
            return;
        }
        let dev = crate::cuda::device(0).unwrap();
        let n = dev.info().total_memory_bytes / 4 * 2;
        match dev.alloc_zeros::<f32>(n) {
            Err(CudaError::OutOfMemory { bytes, .. }) => assert_eq!(bytes, n * 4),
            other => panic!("expected OutOfMemory, got {:?}", other.map(|s| s.len())),
        }
        // still usable
        let b = dev.htod(&[1.0f32, 2.0]).unwrap();
        assert_eq!(dev.buffer_to_host::<f32>(&b).unwrap(), vec![1.0, 2.0]);
    }
}
