//! Adam (Kingma & Ba 2015), exactly as PyTorch's `torch.optim.Adam` (no weight decay, no amsgrad).

/// Adam state for one flat parameter vector.
///
/// Per step t (from 1): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `x ← x − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)`.
#[derive(Clone, Debug)]
pub struct Adam {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    /// Adam with PyTorch's defaults β = (0.9, 0.999), ε = 1e-8 and the given learning rate
    /// (in the units of the parameters: for Caffe-preprocessed images, pixel values 0–255).
    pub fn new(learning_rate: f64) -> Adam {
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> i32 {
        self.t
    }

    /// One update of `x` in place from its gradient. The first call fixes the length.
    ///
    /// # Panics
    /// If `grad` or a later `x` differs in length from the first `x` (a programming error).
    pub fn step(&mut self, x: &mut [f32], grad: &[f32]) {
        assert_eq!(x.len(), grad.len(), "Adam::step: x and grad lengths differ");
        if self.m.is_empty() {
            self.m = vec![0.0; x.len()];
            self.v = vec![0.0; x.len()];
        }
        assert_eq!(
            self.m.len(),
            x.len(),
            "Adam::step: parameter length changed"
        );
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(self.t);
        let bc2 = 1.0 - b2.powi(self.t);
        let step = (self.learning_rate / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        // 1 − β in f64 first: (1 − 0.9f32) is 0.100000024, which would bias every step.
        let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        let (b1, b2, eps) = (b1 as f32, b2 as f32, self.eps as f32);
        for i in 0..x.len() {
            let g = grad[i];
            let m = b1 * self.m[i] + c1 * g;
            let v = b2 * self.v[i] + c2 * g * g;
            self.m[i] = m;
            self.v[i] = v;
            x[i] -= step * m / (v.sqrt() / bc2_sqrt + eps);
        }
    }
}
