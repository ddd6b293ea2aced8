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
}

impl UnaryOp {
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
