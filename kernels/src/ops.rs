//! What every device's kernels share: the elementwise op codes [`UnaryOp`] and [`BinaryOp`],
//! each with its scalar definition (`apply`, what the CPU kernels run; the CUDA kernels map the
//! same enums to the op codes of `cuda/kernels/elementwise.cu`), and Adam's [`AdamStep`].

use crate::Float;

/// Unary maps `f(x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Neg,
    AddScalar(f64),
    MulScalar(f64),
    Square,
    Sqrt,
    Abs,
    Relu,
    /// `1 / (1 + e^(−v))`.
    Sigmoid,
    /// `min(max(v, min), max)` (`torch.clamp`; ReLU6 is `Clamp { min: 0, max: 6 }`).
    Clamp {
        min: f64,
        max: f64,
    },
    /// The derivative of [`UnaryOp::Clamp`] at `v`: 1 where `min ≤ v ≤ max`, else 0 (the
    /// bounds pass the gradient, as `torch.clamp`'s backward).
    ClampGrad {
        min: f64,
        max: f64,
    },
}

impl UnaryOp {
    /// The map's name in snake case (`mul_scalar`, `square`, …), for profiles and messages.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::MulScalar(_) => "mul_scalar",
            UnaryOp::Square => "square",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Clamp { .. } => "clamp",
            UnaryOp::ClampGrad { .. } => "clamp_grad",
        }
    }

    /// `f(v)` (the scalar is rounded to `T` first, as on a GPU).
    #[inline(always)]
    pub fn apply<T: Float>(self, v: T) -> T {
        match self {
            UnaryOp::Neg => -v,
            UnaryOp::AddScalar(s) => v + T::from_f64(s),
            UnaryOp::MulScalar(s) => v * T::from_f64(s),
            UnaryOp::Square => v * v,
            UnaryOp::Sqrt => v.sqrt(),
            UnaryOp::Abs => v.abs(),
            UnaryOp::Relu => {
                if v > T::ZERO {
                    v
                } else {
                    T::ZERO
                }
            }
            UnaryOp::Sigmoid => T::ONE / (T::ONE + (-v).exp()),
            UnaryOp::Clamp { min, max } => v.max(T::from_f64(min)).min(T::from_f64(max)),
            UnaryOp::ClampGrad { min, max } => {
                if v >= T::from_f64(min) && v <= T::from_f64(max) {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
        }
    }
}

/// Binary maps `f(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// ReLU backward: `b > 0 ? a : 0` with a the upstream gradient, b the ReLU output.
    ReluGrad,
    /// |x| backward: `sign(b)·a` with a the upstream gradient, b the input (0 at 0).
    AbsGrad,
    /// sigmoid backward: `a·b·(1 − b)` with a the upstream gradient, b the sigmoid output.
    SigmoidGrad,
}

impl BinaryOp {
    /// `f(a, b)`.
    #[inline(always)]
    pub fn apply<T: Float>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::ReluGrad => {
                if b > T::ZERO {
                    a
                } else {
                    T::ZERO
                }
            }
            BinaryOp::AbsGrad => {
                if b > T::ZERO {
                    a
                } else if b < T::ZERO {
                    -a
                } else {
                    T::ZERO
                }
            }
            BinaryOp::SigmoidGrad => a * b * (T::ONE - b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_definitions() {
        assert_eq!(UnaryOp::AddScalar(0.5).apply(1.0f32), 1.5);
        assert_eq!(UnaryOp::Relu.apply(-2.0f64), 0.0);
        assert_eq!(UnaryOp::Sqrt.apply(4.0f64), 2.0);
        assert_eq!(BinaryOp::AbsGrad.apply(3.0f32, -1.0), -3.0);
        assert_eq!(BinaryOp::AbsGrad.apply(3.0f32, 0.0), 0.0);
        assert_eq!(BinaryOp::ReluGrad.apply(3.0f64, 1.0), 3.0);
        assert_eq!(BinaryOp::Div.apply(3.0f64, 2.0), 1.5);
        assert_eq!(UnaryOp::Sigmoid.apply(0.0f64), 0.5);
        assert!((UnaryOp::Sigmoid.apply(2.0f64) - 0.8807970779778823).abs() < 1e-15);
        assert_eq!(UnaryOp::Sigmoid.apply(-200.0f32), 0.0);
        let relu6 = UnaryOp::Clamp { min: 0.0, max: 6.0 };
        assert_eq!([-1.0f32, 3.0, 7.0].map(|v| relu6.apply(v)), [0.0, 3.0, 6.0]);
        let d = UnaryOp::ClampGrad { min: 0.0, max: 6.0 };
        assert_eq!(
            [-1.0f64, 0.0, 3.0, 6.0, 7.0].map(|v| d.apply(v)),
            [0.0, 1.0, 1.0, 1.0, 0.0]
        );
        assert_eq!(BinaryOp::SigmoidGrad.apply(2.0f64, 0.25), 0.375);
    }
}

/// Hyper-parameters of step `t` (from 1): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `x ← x − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Step number, 1 for the first update.
    pub t: i32,
}

impl AdamStep {
    /// The update's constants (b1, b2, c1, c2, step, √(1−β₂ᵗ), ε), computed in f64 and cast
    /// once: the CPU kernel (`cpu::adam`) and the CUDA one (`cuda::adam`) both use them.
    pub fn constants<T: Float>(&self) -> [T; 7] {
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(self.t);
        let bc2 = 1.0 - b2.powi(self.t);
        [
            T::from_f64(b1),
            T::from_f64(b2),
            T::from_f64(1.0 - b1),
            T::from_f64(1.0 - b2),
            T::from_f64(self.learning_rate / bc1),
            T::from_f64(bc2.sqrt()),
            T::from_f64(self.eps),
        ]
    }
}
