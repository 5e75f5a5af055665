//! The rotation itself (docs/CONTRACT.md §2): the CPU path and the GPU kernels against the
//! independent oracle and PyTorch's reference, bit for bit — special values, f16 and f32, the
//! vectorised blocks, and the conformance vectors.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod floats;
mod golden;
mod simd;
mod specials;
mod vectors;
