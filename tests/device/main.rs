//! The device (docs/CONTRACT.md §6): the WGSL sources through naga on every backend, and a
//! lost device surfacing as an error.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod device_loss;
mod shaders;
