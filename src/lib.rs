//! # bfrope — correctly rounded RoPE on bfloat16, on any GPU and in the browser
//!
//! bfrope applies rotary position embedding (RoPE) to bf16 tensors with WGSL compute shaders
//! through wgpu (Vulkan, Metal, DX12, GL, WebGPU), with a CPU path that returns the same bits.
//! Every output is the correctly rounded bf16 (nearest, ties to even) of the exact value of
//!
//! ```text
//! y0 = x0·cos − x1·sin        y1 = x0·sin + x1·cos        (inverse: sin → −sin)
//! ```
//!
//! with IEEE special values and the canonical NaN `0x7FC0`, whatever the driver does with
//! subnormals or fused multiply-adds.
//!
//! ```
//! use bfrope::{cpu, Direction, RopeShape, RopeTable, TableSpec};
//! let shape = RopeShape::new(1, 4, 2, 8)?;
//! let table = RopeTable::build(&TableSpec::new(8, 4))?;
//! let x: Vec<u16> = (0..shape.elements()).map(|i| half::bf16::from_f32(i as f32).to_bits()).collect();
//! let y = cpu::rotate_bits(&x, shape, &table, 0, Direction::Forward)?;
//! let back = cpu::rotate_bits(&y, shape, &table, 0, Direction::Inverse)?;
//! assert_eq!(&y[..8], &x[..8]); // position 0 is the identity
//! # let _ = back;
//! # Ok::<(), bfrope::Error>(())
//! ```
//!
//! The modules follow the data: [`shape`] and [`table`] say what to compute, [`gpu`] records
//! and runs the kernels of [`shaders`], [`cpu`] is the same contract on the host.
#![warn(missing_docs)]

pub mod conformance;
pub mod cpu;
pub mod dtype;
pub mod error;
pub mod gpu;
pub mod shaders;
pub mod shape;
pub mod spec;
pub mod table;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use dtype::Dtype;
pub use error::{Error, Result};
pub use gpu::{
    AdapterReport, Gpu, KernelKey, RopeArgs, RopeKernels, Rotator, ViewArgs, ViewTensor,
};
pub use shape::{Direction, Precision, RopeShape, TokenRange};
pub use spec::{Layout, Pairing, Positions, RopeCall, Rotation, TensorView};
pub use table::{AngleMode, RopeTable, TableSpec};
