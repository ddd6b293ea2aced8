//! CPU kernels: gemm (matrixmultiply), conv2d (im2col + gemm), pooling, elementwise, reductions.
//! Parallel with rayon; inner loops written so that they auto-vectorise.

pub mod conv2d;
pub mod elementwise;
pub mod float;
pub mod gemm;
pub mod gram;
pub mod packed_gemm;
pub mod pool;
pub mod pool2d;
pub mod simd;
pub mod winograd;

pub use float::Float;
