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
//! Every call is one description, [`RopeCall`]: where the tensor lies ([`TensorView`]), how
//! it rotates ([`Rotation`]), where each token is ([`Positions`]) and the table. The CPU path
//! ([`cpu::apply`]), the GPU path ([`Gpu::apply`], [`Rotator::apply_into`]), the CLI, the
//! page and the test oracle all take it:
//!
//! ```
//! use bfrope::{cpu, Direction, Pairing, Positions, RopeCall, RopeTable, TableSpec, TensorView};
//! let table = RopeTable::build(&TableSpec::new(8, 4))?;
//! let from_0 = Positions::Offset(0);
//! let call = RopeCall::new(TensorView::bshd(1, 4, 2, 8), &from_0, &table);
//! let x: Vec<u16> = (0..64).map(|i| half::bf16::from_f32(i as f32).to_bits()).collect();
//! let y = cpu::apply(&call, &x)?;
//! assert_eq!(&y[..16], &x[..16]); // position 0 is the identity
//! let back = cpu::apply(&call.with_direction(Direction::Inverse), &y)?;
//! # let _ = back;
//! // Hugging Face's [batch, heads, seq, head_dim] with rotate_half pairs, half the head:
//! let half = RopeTable::build(&TableSpec::new(4, 4))?;
//! let hf = RopeCall::new(TensorView::bhsd(1, 2, 4, 8), &from_0, &half)
//!     .with_pairing(Pairing::HalfSplit)
//!     .with_rotary_dim(4);
//! let z = cpu::apply(&hf, &x)?;
//! assert_eq!(z[4..8], x[4..8]); // dims past rotary_dim pass through
//! # Ok::<(), bfrope::Error>(())
//! ```
//!
//! The modules follow the data: [`spec`], [`shape`] and [`table`] say what to compute,
//! [`gpu`] records and runs the kernels of [`shaders`], [`cpu`] is the same contract on the
//! host, [`conformance`] is the suite `bfrope conform` and the page share.
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
pub mod vectors;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use cpu::hf;
pub use dtype::{Bits, Dtype};
pub use error::{Error, Result};
pub use gpu::{
    AdapterReport, BufferCall, Gpu, GpuCall, KernelKey, RecordTarget, RopeArgs, RopeKernels,
    Rotator, ViewArgs, ViewTensor,
};
pub use shape::{Direction, Precision, RopeShape, TokenRange};
pub use spec::{Layout, Pairing, Positions, RopeCall, Rotation, TensorView};
pub use table::{AngleMode, Axes, HfRope, RopeTable, TableRecipe, TableSpec, Variant};
