//! Neural style transfer on the nst engine (Gatys, Ecker & Bethge 2015/2016).
pub use engine;
