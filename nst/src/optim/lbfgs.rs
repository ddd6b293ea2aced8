//! L-BFGS (Nocedal 1980; Nocedal & Wright, "Numerical Optimization", alg. 7.4/7.5) with a
//! backtracking Armijo line search, so an accepted step never increases the loss; optionally
//! inside a box (projected L-BFGS): each trial point is projected onto the box, the direction is
//! built from the projected gradient (the ε-active bounds are held, as in Bertsekas'
//! projected Newton methods; L-BFGS-B, Byrd, Lu, Nocedal & Zhu 1995, is the full reference),
//! and only curvature pairs with sᵀy > 0 are kept. Style transfer uses the box of valid pixels,
//! so the picture written is the optimum found, not a clamped copy of it.

use crate::error::Result;
use engine::Tensor;
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

/// A box `lower ≤ x ≤ upper` (elementwise; each tensor broadcastable to the parameter's shape,
/// e.g. 1×3×1×1 per-channel bounds for a 1×3×H×W image, on the parameter's device).
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Elementwise lower bounds.
    pub lower: Tensor,
    /// Elementwise upper bounds.
    pub upper: Tensor,
}

impl Bounds {
    /// The nearest point of the box: `x − relu(x − upper) + relu(lower − x)` (no tape).
    pub fn project(&self, x: &Tensor) -> Result<Tensor> {
        let over = x.sub(&self.upper)?.relu()?;
        let under = self.lower.sub(x)?.relu()?;
        Ok(x.sub(&over)?.add(&under)?)
    }

    /// `v` as a move from `x` (inside the box) without the parts that would leave it: where
    /// `x` is within ε of a bound, the component of `v` pointing out through that bound is
    /// scaled by `1 − dist/ε` (removed at the bound itself):
    /// `v + r_l·relu(−v) − r_u·relu(v)`, `r_l = relu(ε − (x − lower))/ε`,
    /// `r_u = relu(ε − (upper − x))/ε`. With `v = −∇f` this is minus the projected gradient.
    fn hold(&self, x: &Tensor, v: &Tensor) -> Result<Tensor> {
        let ramp = |dist: Tensor| -> Result<Tensor> {
            Ok(dist
                .mul_scalar(-1.0 / ACTIVE_EPS)?
                .add_scalar(1.0)?
                .relu()?)
        };
        let r_l = ramp(x.sub(&self.lower)?)?;
        let r_u = ramp(self.upper.sub(x)?)?;
        let out_low = r_l.mul(&v.neg()?.relu()?)?;
        let out_high = r_u.mul(&v.relu()?)?;
        Ok(v.add(&out_low)?.sub(&out_high)?)
    }
}

/// ε of the ε-active set, in the parameter's units (for a preprocessed image: about 0.06 of
/// one 0–255 level with Caffe preprocessing).
const ACTIVE_EPS: f64 = 1e-3;

/// L-BFGS state for one parameter tensor. The history pairs (s, y) stay on the parameter's
/// device (a pair costs two parameter-sized tensors); the only reads back to the host are the
/// dot products (scalars, accumulated in f64, see [`Tensor::dot`]).
pub struct Lbfgs {
    history: usize,
    s: VecDeque<Tensor>,
    y: VecDeque<Tensor>,
    /// Loss and gradient at the current x, from the last evaluation.
    current: Option<(f64, Tensor)>,
    /// Armijo sufficient-decrease constant.
    c1: f64,
    max_backtracks: usize,
    /// The box the iterates stay in, if any.
    bounds: Option<Bounds>,
}

/// `a + c·b` (no tape).
fn axpy(a: &Tensor, c: f64, b: &Tensor) -> Result<Tensor> {
    Ok(a.add(&b.mul_scalar(c)?)?)
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
            bounds: None,
        }
    }

    /// Keeps every iterate inside `bounds` (projected L-BFGS, see the module docs). The
    /// starting point is projected on the first step.
    pub fn with_bounds(mut self, bounds: Bounds) -> Lbfgs {
        self.bounds = Some(bounds);
        self
    }

    /// Forget the curvature history and the cached evaluation (call after changing `x` by hand).
    pub fn reset(&mut self) {
        self.s.clear();
        self.y.clear();
        self.current = None;
    }

    /// Forget the cached loss and gradient at the current x but keep the curvature history:
    /// call when the objective itself changed between iterations (a stochastic loss drew new
    /// random directions), so that the next step evaluates the new function at x first.
    pub fn forget_value(&mut self) {
        self.current = None;
    }

    /// d = −H·g by the two-loop recursion, H₀ = γI with γ = sᵀy / yᵀy of the newest pair.
    fn direction(&self, g: &Tensor) -> Result<Tensor> {
        let k = self.s.len();
        let mut q = g.clone();
        let mut alpha = vec![0.0f64; k];
        let mut rho = Vec::with_capacity(k);
        for i in 0..k {
            rho.push(1.0 / self.y[i].dot(&self.s[i])?);
        }
        for i in (0..k).rev() {
            alpha[i] = rho[i] * self.s[i].dot(&q)?;
            q = axpy(&q, -alpha[i], &self.y[i])?;
        }
        let gamma = if k > 0 {
            self.s[k - 1].dot(&self.y[k - 1])? / self.y[k - 1].dot(&self.y[k - 1])?
        } else {
            1.0
        };
        q = q.mul_scalar(gamma)?;
        for i in 0..k {
            let beta = rho[i] * self.y[i].dot(&q)?;
            q = axpy(&q, alpha[i] - beta, &self.s[i])?;
        }
        Ok(q.neg()?)
    }

    /// One L-BFGS iteration; `x` is replaced by the new point. `f(x)` returns the loss and its
    /// gradient (a tensor of `x`'s shape, dtype and device).
    /// The first step is scaled to `min(1, 1/‖g‖₁)` as in PyTorch; later steps try 1 first and
    /// halve until the Armijo condition `f(x + t·d) ≤ f(x) + c₁·t·gᵀd` holds.
    /// Errors: whatever `f` returns; engine errors.
    pub fn step(
        &mut self,
        x: &mut Tensor,
        f: &mut impl FnMut(&Tensor) -> Result<(f64, Tensor)>,
    ) -> Result<LbfgsStep> {
        // Nothing here is recorded: x is detached, and f's results carry no tape.
        *x = x.detach();
        let mut evaluations = 0;
        let (loss, g) = match self.current.take() {
            Some(c) => c,
            None => {
                if let Some(b) = &self.bounds {
                    *x = b.project(x)?;
                }
                evaluations += 1;
                f(x)?
            }
        };
        // In a box: the direction from the projected gradient, without its outward parts.
        let pg = match &self.bounds {
            Some(b) => b.hold(x, &g.neg()?)?.neg()?,
            None => g.clone(),
        };
        let outward_removed = |d: Tensor| -> Result<Tensor> {
            match &self.bounds {
                Some(b) => b.hold(x, &d),
                None => Ok(d),
            }
        };
        let mut d = outward_removed(self.direction(&pg)?)?;
        let mut gd = g.dot(&d)?;
        if gd >= 0.0 || !gd.is_finite() {
            // Not a descent direction (bad curvature history): restart from steepest descent.
            self.s.clear();
            self.y.clear();
            d = pg.neg()?;
            gd = g.dot(&d)?;
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
            // Without history: a first step that moves no pixel by more than 1 unit
            // (‖t·g‖∞ ≤ 1), whatever the objective's scale. (torch.optim.LBFGS caps this at 1,
            // which stalls objectives whose gradients are small, as relative losses' are:
            // measured, 33 iterations without progress at 512 px.)
            let l1 = g.abs()?.cast(engine::DType::F64)?.sum()?.item()?;
            if l1 > 0.0 && l1.is_finite() {
                1.0 / l1
            } else {
                1.0
            }
        } else {
            1.0
        };
        let x0 = x.clone();
        for _ in 0..self.max_backtracks {
            *x = axpy(&x0, (t as f32) as f64, &d)?;
            // Projected: the Armijo test uses the step actually taken, gᵀ(x − x₀).
            let decrease = match &self.bounds {
                Some(b) => {
                    *x = b.project(x)?;
                    g.dot(&x.sub(&x0)?)?
                }
                None => t * gd,
            };
            evaluations += 1;
            let (new_loss, new_g) = f(x)?;
            if new_loss.is_finite() && decrease < 0.0 && new_loss <= loss + self.c1 * decrease {
                let s = x.sub(&x0)?;
                let y = new_g.sub(&g)?;
                // Positive curvature, relative to the vectors' sizes (scale-free).
                let ys = y.dot(&s)?;
                if ys > 1e-10 * (y.dot(&y)? * s.dot(&s)?).sqrt() {
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
        *x = x0;
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

    fn rosenbrock_v(x: &[f32]) -> (f64, Vec<f32>) {
        let (a, b) = (x[0] as f64, x[1] as f64);
        let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let ga = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        let gb = 200.0 * (b - a * a);
        (f, vec![ga as f32, gb as f32])
    }

    /// f(x) = ½ Σ cᵢ (xᵢ − i)², minimum 0 at xᵢ = i; condition number 100.
    fn quadratic_v(x: &[f32]) -> (f64, Vec<f32>) {
        let mut f = 0.0;
        let mut g = vec![0.0f32; x.len()];
        for (i, &v) in x.iter().enumerate() {
            let c = 1.0 + 99.0 * i as f64 / (x.len() - 1) as f64;
            let d = v as f64 - i as f64;
            f += 0.5 * c * d * d;
            g[i] = (c * d) as f32;
        }
        (f, g)
    }

    /// A host function as a tensor objective.
    fn on_tensors(
        f: fn(&[f32]) -> (f64, Vec<f32>),
    ) -> impl FnMut(&Tensor) -> Result<(f64, Tensor)> {
        move |x: &Tensor| {
            let (l, g) = f(&x.to_vec::<f32>()?);
            Ok((l, Tensor::from_vec(g, x.shape())?))
        }
    }

    #[test]
    fn lbfgs_reaches_rosenbrock_minimum_without_ever_increasing_the_loss() {
        let mut x = Tensor::from_vec(vec![-1.2f32, 1.0], &[2]).unwrap();
        let mut opt = Lbfgs::new(10);
        let mut last = rosenbrock_v(&[-1.2, 1.0]).0;
        let mut f = on_tensors(rosenbrock_v);
        for _ in 0..200 {
            let s = opt.step(&mut x, &mut f).unwrap();
            assert!(s.loss <= last, "loss increased: {last} → {}", s.loss);
            last = s.loss;
        }
        let x = x.to_vec::<f32>().unwrap();
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 2e-3,
            "x = {x:?}"
        );
        assert!(last < 1e-6, "loss {last}");
    }

    #[test]
    fn lbfgs_solves_an_ill_conditioned_quadratic() {
        let mut x = Tensor::zeros(&[20], engine::DType::F32).unwrap();
        let mut opt = Lbfgs::new(5);
        let mut last = f64::INFINITY;
        let mut f = on_tensors(quadratic_v);
        for _ in 0..60 {
            let s = opt.step(&mut x, &mut f).unwrap();
            assert!(s.loss <= last);
            last = s.loss;
        }
        for (i, v) in x.to_vec::<f32>().unwrap().iter().enumerate() {
            assert!((v - i as f32).abs() < 1e-3, "x[{i}] = {v}");
        }
    }

    #[test]
    fn projected_lbfgs_stays_in_the_box_and_finds_the_constrained_minimum() {
        // The quadratic's minimum is xᵢ = i; in the box [2, 11] the minimum is clamp(i, 2, 11).
        let n = 20;
        let mut x = Tensor::from_vec(vec![5.0f32; n], &[n]).unwrap();
        let bounds = Bounds {
            lower: Tensor::from_vec(vec![2.0f32], &[1]).unwrap(),
            upper: Tensor::from_vec(vec![11.0f32], &[1]).unwrap(),
        };
        let mut opt = Lbfgs::new(5).with_bounds(bounds);
        let mut last = f64::INFINITY;
        let mut f = on_tensors(quadratic_v);
        for _ in 0..60 {
            let s = opt.step(&mut x, &mut f).unwrap();
            assert!(s.loss <= last, "loss increased: {last} → {}", s.loss);
            last = s.loss;
            for v in x.to_vec::<f32>().unwrap() {
                assert!((2.0..=11.0).contains(&v), "left the box: {v}");
            }
        }
        let want: Vec<f32> = (0..n).map(|i| (i as f32).clamp(2.0, 11.0)).collect();
        let (best, _) = quadratic_v(&want);
        for (i, v) in x.to_vec::<f32>().unwrap().iter().enumerate() {
            assert!((v - want[i]).abs() < 1e-3, "x[{i}] = {v}, want {}", want[i]);
        }
        assert!((last - best).abs() < 1e-6 * best, "{last} vs {best}");
        // The same problem unconstrained and then clamped is worse: the box matters here.
        let mut y = Tensor::from_vec(vec![5.0f32; n], &[n]).unwrap();
        let mut free = Lbfgs::new(5);
        for _ in 0..60 {
            free.step(&mut y, &mut f).unwrap();
        }
        let clamped: Vec<f32> = y
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.clamp(2.0, 11.0))
            .collect();
        assert!(quadratic_v(&clamped).0 >= best - 1e-9);
    }

    #[test]
    fn adam_reaches_the_minima() {
        let mut x = vec![0.0f32; 20];
        let mut adam = Adam::new(0.1);
        for _ in 0..3000 {
            let (_, g) = quadratic_v(&x);
            adam.step_slice(&mut x, &g).unwrap();
        }
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f32).abs() < 1e-2, "quadratic x[{i}] = {v}");
        }
        let mut r = vec![-1.2f32, 1.0];
        let mut adam = Adam::new(0.01);
        for _ in 0..20000 {
            let (_, g) = rosenbrock_v(&r);
            adam.step_slice(&mut r, &g).unwrap();
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
        Adam::new(0.5)
            .step_slice(&mut x, &[3.0, -0.01, 100.0])
            .unwrap();
        assert!(
            (x[0] + 0.5).abs() < 1e-6 && (x[1] - 0.5).abs() < 1e-4 && (x[2] + 0.5).abs() < 1e-6,
            "{x:?}"
        );
    }
}
