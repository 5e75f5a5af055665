//! The `bfrope` binary as a user runs it (docs/CONTRACT.md §7): every subcommand, its files,
//! exit codes and messages.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../common/mod.rs"]
mod common;

mod apply;
mod bench;
mod conform;
mod dtypes;
mod explain;
mod files;
mod layouts;
mod memory;
mod onnx;
mod tables;
