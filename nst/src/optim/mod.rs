//! Optimisers over one parameter tensor (the image being optimised): Adam and L-BFGS. Their
//! state lives on the parameter's device, so a GPU run never copies the image or its gradient
//! to the host between iterations.

mod adam;
mod lbfgs;

pub use adam::Adam;
pub use lbfgs::{Bounds, Lbfgs, LbfgsStep};
