//! Optimisers over a flat parameter vector (the image being optimised): Adam and L-BFGS.

mod adam;
mod lbfgs;

pub use adam::Adam;
pub use lbfgs::{Lbfgs, LbfgsStep};

/// Dot product accumulated in f64.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}
