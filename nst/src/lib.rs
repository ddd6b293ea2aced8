//! Neural style transfer on the nst engine (Gatys, Ecker & Bethge 2015/2016).
pub use engine;
pub mod config;
pub use engine::ParseOptionError;
pub mod error;
pub mod eval;
pub mod fast;
pub mod fsutil;
pub mod image;
pub mod loss;
pub mod optim;
pub mod plan;
pub mod provenance;
pub mod transfer;
pub mod vgg19;
pub mod video;
pub mod weights;

pub use error::{ConfigError, ConfigField, Error, Result};
