//! The engine's ops, one module per op family (mirroring `engine/src/ops/`). Each family has one
//! `test_device!` body, run on the CPU and on every GPU present (the `cuda` variant prints
//! "skipped: no CUDA device" where none is), that checks on its device:
//! (a) values against a naive reference or known numbers, where there is one;
//! (b) gradients against f64 central differences (`grad_check`, tolerance 1e-6) on several
//!     small shapes (odd sizes, non-square, stride 1 and 2, padding 0/1/2, batch > 1,
//!     broadcasting, views);
//! (c) on a GPU, parity with the CPU on random f32 inputs, forward and backward (`parity`,
//!     relative error ≤ 1e-4).
//!
//! Tests of the GPU as a device rather than of one op (determinism, out-of-memory errors, device
//! moves, a whole style step) are in `cuda_device.rs`.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in these tables

mod common;

mod conv2d;
mod convert;
mod elementwise;
mod index;
mod linalg;
mod loss;
mod matmul;
mod norm;
mod optim;
mod pool2d;
mod reduce;
mod shape;
mod sort;
mod spatial;
