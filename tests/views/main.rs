//! What one call describes (docs/CONTRACT.md §8): layouts, strided views, offsets, shapes,
//! the contiguous kernels and calls larger than one binding.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod contiguous;
mod shapes;
mod slicing;
mod views;
