//! The `hf` precision (docs/CONTRACT.md §2): transformers' eager arithmetic, bit for bit, on
//! bf16, f16 and f32 and on twelve real models.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod bf16;
mod floats;
mod models;
