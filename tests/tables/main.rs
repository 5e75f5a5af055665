//! Tables (docs/CONTRACT.md §3): every rope type, real models' configs against their own
//! transformers code, and the native side of the page's tables.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod model_configs;
mod models;
mod tables;
mod web_recipes;
