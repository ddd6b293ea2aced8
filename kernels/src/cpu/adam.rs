//! The Adam update on host slices (Kingma & Ba 2015, PyTorch's arithmetic), in place. Mirrors
//! `cuda/adam.rs` / `kernels/adam.cu`; the engine's `Tensor::adam_step` calls it through the
//! CPU backend.

use super::Float;
pub use crate::ops::AdamStep;

/// One Adam step in place, elementwise over equal-length slices:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `x ← x − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`. The constants are computed in f64 and
/// cast once ([`AdamStep::constants`], as the CUDA kernel does).
///
/// # Panics
/// If the slices' lengths differ.
pub fn adam_step<T: Float>(x: &mut [T], g: &[T], m: &mut [T], v: &mut [T], hp: &AdamStep) {
    let n = x.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "adam_step: lengths x {n}, g {}, m {}, v {}",
        g.len(),
        m.len(),
        v.len()
    );
    let [b1, b2, c1, c2, step, bc2_sqrt, eps] = hp.constants::<T>();
    for i in 0..n {
        let gi = g[i];
        m[i] = b1 * m[i] + c1 * gi;
        v[i] = b2 * v[i] + c2 * gi * gi;
        x[i] -= step * m[i] / (v[i].sqrt() / bc2_sqrt + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_the_textbook_formulas() {
        // Five steps with changing gradients against Kingma & Ba's algorithm written plainly
        // (m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), x −= lr·m̂/(√v̂ + ε)), in f64.
        let (lr, b1, b2, eps) = (0.5, 0.9, 0.999, 1e-8);
        let mut x = vec![1.0f64, -2.0, 0.5, 0.0];
        let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
        let (mut xr, mut mr, mut vr) = (x.clone(), m.clone(), v.clone());
        for t in 1..=5i32 {
            let g: Vec<f64> = (0..4).map(|i| ((i * 3 + t) as f64).sin() * 2.0).collect();
            let hp = AdamStep {
                learning_rate: lr,
                beta1: b1,
                beta2: b2,
                eps,
                t,
            };
            adam_step(&mut x, &g, &mut m, &mut v, &hp);
            for i in 0..4 {
                mr[i] = b1 * mr[i] + (1.0 - b1) * g[i];
                vr[i] = b2 * vr[i] + (1.0 - b2) * g[i] * g[i];
                let mh = mr[i] / (1.0 - b1.powi(t));
                let vh = vr[i] / (1.0 - b2.powi(t));
                xr[i] -= lr * mh / (vh.sqrt() + eps);
            }
        }
        for i in 0..4 {
            assert!((x[i] - xr[i]).abs() < 1e-9, "{i}: {} vs {}", x[i], xr[i]);
        }
        // With a constant gradient each bias-corrected step moves x by ≈ lr·sign(g).
        let (mut x1, mut m1, mut v1) = ([0.0f32], [0.0f32], [0.0f32]);
        for t in 1..=3 {
            let hp = AdamStep {
                learning_rate: 0.25,
                beta1: b1,
                beta2: b2,
                eps,
                t,
            };
            adam_step(&mut x1, &[-3.0], &mut m1, &mut v1, &hp);
        }
        assert!((x1[0] - 0.75).abs() < 1e-5, "{}", x1[0]);
    }
}
