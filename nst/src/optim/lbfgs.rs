//! L-BFGS (Nocedal 1980; Nocedal & Wright, "Numerical Optimization", alg. 7.4/7.5) with a
//! backtracking Armijo line search, so an accepted step never increases the loss.

use super::dot;
use crate::error::Result;
use std::collections::VecDeque;

/// What one [`Lbfgs::step`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsStep {
    /// The loss at the new point (or the old one if no step was accepted).
    pub loss: f64,
    /// Objective evaluations this step used (line search included).
    pub evaluations: usize,
    /// False when the line search found no decrease (the point did not move; history reset).
    pub accepted: bool,
}

/// L-BFGS state for one flat parameter vector. History pairs are kept in f32 (a pair costs
/// 8 bytes per parameter); dot products accumulate in f64.
pub struct Lbfgs {
    history: usize,
    s: VecDeque<Vec<f32>>,
    y: VecDeque<Vec<f32>>,
    /// Loss and gradient at the current x, from the last evaluation.
    current: Option<(f64, Vec<f32>)>,
    /// Armijo sufficient-decrease constant.
    c1: f64,
    max_backtracks: usize,
}

impl Lbfgs {
    /// L-BFGS keeping the last `history` (s, y) pairs (at least 1).
    pub fn new(history: usize) -> Lbfgs {
        Lbfgs {
            history: history.max(1),
            s: VecDeque::new(),
            y: VecDeque::new(),
            current: None,
            c1: 1e-4,
            max_backtracks: 25,
        }
    }

    /// Forget the curvature history and the cached evaluation (call after changing `x` by hand).
    pub fn reset(&mut self) {
        self.s.clear();
        self.y.clear();
        self.current = None;
    }

    /// d = −H·g by the two-loop recursion, H₀ = γI with γ = sᵀy / yᵀy of the newest pair.
    fn direction(&self, g: &[f32]) -> Vec<f32> {
        let k = self.s.len();
        let mut q: Vec<f32> = g.to_vec();
        let mut alpha = vec![0.0f64; k];
        let rho: Vec<f64> = (0..k).map(|i| 1.0 / dot(&self.y[i], &self.s[i])).collect();
        for i in (0..k).rev() {
            alpha[i] = rho[i] * dot(&self.s[i], &q);
            let a = alpha[i] as f32;
            q.iter_mut().zip(&self.y[i]).for_each(|(q, &y)| *q -= a * y);
        }
        let gamma = if k > 0 {
            dot(&self.s[k - 1], &self.y[k - 1]) / dot(&self.y[k - 1], &self.y[k - 1])
        } else {
            1.0
        };
        q.iter_mut().for_each(|v| *v *= gamma as f32);
        for i in 0..k {
            let beta = rho[i] * dot(&self.y[i], &q);
            let c = (alpha[i] - beta) as f32;
            q.iter_mut().zip(&self.s[i]).for_each(|(q, &s)| *q += c * s);
        }
        q.iter_mut().for_each(|v| *v = -*v);
        q
    }

    /// One L-BFGS iteration on `x` in place. `f(x)` returns the loss and its gradient.
    /// The first step is scaled to `min(1, 1/‖g‖₁)` as in PyTorch; later steps try 1 first and
    /// halve until the Armijo condition `f(x + t·d) ≤ f(x) + c₁·t·gᵀd` holds.
    /// Errors: whatever `f` returns.
    pub fn step(
        &mut self,
        x: &mut [f32],
        f: &mut impl FnMut(&[f32]) -> Result<(f64, Vec<f32>)>,
    ) -> Result<LbfgsStep> {
        let mut evaluations = 0;
        let (loss, g) = match self.current.take() {
            Some(c) => c,
            None => {
                evaluations += 1;
                f(x)?
            }
        };
        let mut d = self.direction(&g);
        let mut gd = dot(&g, &d);
        if gd >= 0.0 || !gd.is_finite() {
            // Not a descent direction (bad curvature history): restart from steepest descent.
            self.s.clear();
            self.y.clear();
            d = g.iter().map(|v| -v).collect();
            gd = dot(&g, &d);
        }
        if gd == 0.0 {
            self.current = Some((loss, g));
            return Ok(LbfgsStep {
                loss,
                evaluations,
                accepted: false,
            });
        }
        let mut t = if self.s.is_empty() {
            let l1: f64 = g.iter().map(|v| v.abs() as f64).sum();
            (1.0f64).min(1.0 / l1)
        } else {
            1.0
        };
        let x0 = x.to_vec();
        for _ in 0..self.max_backtracks {
            for i in 0..x.len() {
                x[i] = x0[i] + (t as f32) * d[i];
            }
            evaluations += 1;
            let (new_loss, new_g) = f(x)?;
            if new_loss.is_finite() && new_loss <= loss + self.c1 * t * gd {
                let s: Vec<f32> = x.iter().zip(&x0).map(|(a, b)| a - b).collect();
                let y: Vec<f32> = new_g.iter().zip(&g).map(|(a, b)| a - b).collect();
                if dot(&y, &s) > 1e-10 {
                    if self.s.len() == self.history {
                        self.s.pop_front();
                        self.y.pop_front();
                    }
                    self.s.push_back(s);
                    self.y.push_back(y);
                }
                self.current = Some((new_loss, new_g));
                return Ok(LbfgsStep {
                    loss: new_loss,
                    evaluations,
                    accepted: true,
                });
            }
            t *= 0.5;
        }
        // No decrease found: stay put, forget the history.
        x.copy_from_slice(&x0);
        self.s.clear();
        self.y.clear();
        self.current = Some((loss, g));
        Ok(LbfgsStep {
            loss,
            evaluations,
            accepted: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Adam;
    use super::*;

    fn rosenbrock(x: &[f32]) -> Result<(f64, Vec<f32>)> {
        let (a, b) = (x[0] as f64, x[1] as f64);
        let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let ga = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        let gb = 200.0 * (b - a * a);
        Ok((f, vec![ga as f32, gb as f32]))
    }

    /// f(x) = ½ Σ cᵢ (xᵢ − i)², minimum 0 at xᵢ = i; condition number 100.
    fn quadratic(x: &[f32]) -> Result<(f64, Vec<f32>)> {
        let mut f = 0.0;
        let mut g = vec![0.0f32; x.len()];
        for (i, &v) in x.iter().enumerate() {
            let c = 1.0 + 99.0 * i as f64 / (x.len() - 1) as f64;
            let d = v as f64 - i as f64;
            f += 0.5 * c * d * d;
            g[i] = (c * d) as f32;
        }
        Ok((f, g))
    }

    #[test]
    fn lbfgs_reaches_rosenbrock_minimum_without_ever_increasing_the_loss() {
        let mut x = vec![-1.2f32, 1.0];
        let mut opt = Lbfgs::new(10);
        let mut last = rosenbrock(&x).unwrap().0;
        for _ in 0..200 {
            let s = opt.step(&mut x, &mut rosenbrock).unwrap();
            assert!(s.loss <= last, "loss increased: {last} → {}", s.loss);
            last = s.loss;
        }
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 2e-3,
            "x = {x:?}"
        );
        assert!(last < 1e-6, "loss {last}");
    }

    #[test]
    fn lbfgs_solves_an_ill_conditioned_quadratic() {
        let mut x = vec![0.0f32; 20];
        let mut opt = Lbfgs::new(5);
        let mut last = f64::INFINITY;
        for _ in 0..60 {
            let s = opt.step(&mut x, &mut quadratic).unwrap();
            assert!(s.loss <= last);
            last = s.loss;
        }
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f32).abs() < 1e-3, "x[{i}] = {v}");
        }
    }

    #[test]
    fn adam_reaches_the_minima() {
        let mut x = vec![0.0f32; 20];
        let mut adam = Adam::new(0.1);
        for _ in 0..3000 {
            let (_, g) = quadratic(&x).unwrap();
            adam.step(&mut x, &g);
        }
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f32).abs() < 1e-2, "quadratic x[{i}] = {v}");
        }
        let mut r = vec![-1.2f32, 1.0];
        let mut adam = Adam::new(0.01);
        for _ in 0..20000 {
            let (_, g) = rosenbrock(&r).unwrap();
            adam.step(&mut r, &g);
        }
        assert!(
            (r[0] - 1.0).abs() < 2e-2 && (r[1] - 1.0).abs() < 4e-2,
            "rosenbrock x = {r:?}"
        );
    }

    #[test]
    fn adam_first_step_moves_each_coordinate_by_the_learning_rate() {
        // With bias correction, step 1 is lr·g/(|g| + ε): exactly lr against the gradient's sign.
        let mut x = vec![0.0f32, 0.0, 0.0];
        Adam::new(0.5).step(&mut x, &[3.0, -0.01, 100.0]);
        assert!(
            (x[0] + 0.5).abs() < 1e-6 && (x[1] - 0.5).abs() < 1e-4 && (x[2] + 0.5).abs() < 1e-6,
            "{x:?}"
        );
    }
}
