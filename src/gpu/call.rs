//! What the GPU path is asked to do, on buffers: a contiguous tensor for the contiguous kernels
//! ([`RopeArgs`]), any views for the general kernel, q and k together ([`ViewArgs`]), or a
//! [`RopeCall`] on whole buffers whose kernel the planner picks ([`BufferCall`]); [`GpuCall`] is
//! any of them, what the planner and
//! [`RopeKernels::record`](crate::gpu::RopeKernels::record) take.

use crate::dtype::Dtype;
use crate::shape::{Direction, Precision, RopeShape};
use crate::spec::{Pairing, Positions, RopeCall, Rotation, TensorView};

/// One RoPE call on a contiguous tensor, for the contiguous kernels.
#[derive(Debug, Clone, Copy)]
pub struct RopeArgs<'a> {
    /// Packed bf16 input (`STORAGE`), at least `shape.elements() * 2` bytes.
    pub input: &'a wgpu::Buffer,
    /// Packed bf16 output (`STORAGE`), at least as large; must not be `input`.
    pub output: &'a wgpu::Buffer,
    /// `(cos, sin)` f32 pairs (`STORAGE`), `table_rows × shape.pairs()` of them.
    pub table: &'a wgpu::Buffer,
    /// Rows in `table`.
    pub table_rows: usize,
    /// Table row of sequence index 0 (the position offset for a table starting at 0).
    pub row_offset: usize,
    /// The tensor's shape.
    pub shape: RopeShape,
    /// Forward or inverse.
    pub direction: Direction,
    /// Exact (default), plain f32 or `hf`.
    pub precision: Precision,
    /// bf16 or f16 (both packed two per word; f32 tensors take [`ViewArgs`]).
    pub dtype: Dtype,
    /// Which elements pair up: interleaved (any shape) or half-split (pairs per head a
    /// multiple of 4: the half-split vec4 kernel).
    pub pairing: Pairing,
    /// Whether every value in `table` is zero or a normal f32 below 2^16 in magnitude, as
    /// [`RopeTable::in_fast_range`](crate::RopeTable::in_fast_range) says of a host table
    /// (`Gpu::apply` and the `Rotator` ask it of every table). `true` lets the exact kernels
    /// skip testing the table operands of each unit (a few points of a copy on the H100);
    /// `false` is always correct. `true` for a table with a subnormal, huge, infinite or NaN
    /// value breaks the exactness of the result.
    pub table_in_range: bool,
}

/// One tensor of a view call: its buffers and where it lies in them. `input == output`
/// rotates in place (its own pipeline: WebGPU bindings may not alias).
#[derive(Debug, Clone, Copy)]
pub struct ViewTensor<'a> {
    /// The buffer holding the view (`STORAGE`): bf16 and f16 elements packed two per word
    /// (element `2k` in the low half), f32 one per word ([`Rotation::dtype`]).
    pub input: &'a wgpu::Buffer,
    /// The buffer the view is written into (`STORAGE`), same layout; `input` for in place.
    pub output: &'a wgpu::Buffer,
    /// Where the tensor lies in both buffers.
    pub view: TensorView,
}

/// A call on any view, or on q and k together (one dispatch: different head counts,
/// strides and offsets; the same tokens, positions, table and rotation), for the general
/// kernel.
#[derive(Debug, Clone, Copy)]
pub struct ViewArgs<'a> {
    /// The (first) tensor.
    pub q: ViewTensor<'a>,
    /// The second tensor, rotated in the same dispatch (its batch and seq must match q's).
    pub k: Option<ViewTensor<'a>>,
    /// `(cos, sin)` f32 pairs (`STORAGE`), `table_rows × rotary_dim / 2` of them.
    pub table: &'a wgpu::Buffer,
    /// Rows in `table`.
    pub table_rows: usize,
    /// Pairing, rotary_dim, direction, arithmetic.
    pub rotation: Rotation,
    /// Where each token is (checked against the table on the host).
    pub positions: &'a Positions,
    /// Or: one table row per token (`u32`, `batch × seq` of them) in a GPU buffer
    /// (`STORAGE`), for a decode loop whose positions live on the GPU; `positions` is then
    /// ignored. Rows past the table read its last row (the host cannot check them).
    pub device_rows: Option<&'a wgpu::Buffer>,
    /// Whether every value in `table` is zero or a normal f32 below 2^16 in magnitude
    /// ([`RopeTable::in_fast_range`](crate::RopeTable::in_fast_range)), as for
    /// [`RopeArgs::table_in_range`]: `true` lets the exact bf16 and f16 kernels skip testing
    /// the table operands of each pair (f32 tensors test nothing there and ignore it);
    /// `false` is always correct, `true` for a table outside that range breaks exactness.
    pub table_in_range: bool,
}

/// A [`RopeCall`] on whole buffers, as [`Gpu::apply`](crate::Gpu::apply) and the
/// [`Rotator`](crate::Rotator) run it: `output` receives the first `bytes` of `input` with
/// the call's view rotated. The planner picks the kernel ([`kernel_for`](crate::gpu::kernel_for)): a contiguous
/// kernel when one serves the call (the bytes past the tensor are copied), else the general
/// kernel (the input is copied first, then the view rotated into the output).
#[derive(Debug, Clone, Copy)]
pub struct BufferCall<'a> {
    /// What to rotate; its table is the one in `table`.
    pub call: RopeCall<'a>,
    /// The data (`STORAGE | COPY_SRC`): elements of `call.rotation.dtype`, bf16 and f16 two
    /// per word, f32 one.
    pub input: &'a wgpu::Buffer,
    /// Where the result goes (`STORAGE | COPY_DST`); must not be `input`.
    pub output: &'a wgpu::Buffer,
    /// `call.table` on the GPU (`STORAGE`).
    pub table: &'a wgpu::Buffer,
    /// Bytes of data in `input` (a multiple of 4: whole words).
    pub bytes: u64,
    /// What [`RopeTable::in_fast_range`](crate::RopeTable::in_fast_range) says of the table
    /// (as [`RopeArgs::table_in_range`]).
    pub table_in_range: bool,
}

/// One call on GPU buffers: what [`RopeKernels::record`](crate::gpu::RopeKernels::record)
/// records and the planner plans. `From` a reference to any of the three argument types.
#[derive(Debug, Clone, Copy)]
pub enum GpuCall<'a> {
    /// A contiguous BSHD tensor on the contiguous kernels (bf16 or f16; half-split pairs
    /// need pairs per head a multiple of 4).
    Contiguous(RopeArgs<'a>),
    /// Any view, or q and k together, on the general kernel.
    View(ViewArgs<'a>),
    /// A [`RopeCall`] on whole buffers, on the kernel the planner picks.
    Buffer(BufferCall<'a>),
}

impl<'a> From<&RopeArgs<'a>> for GpuCall<'a> {
    fn from(args: &RopeArgs<'a>) -> Self {
        GpuCall::Contiguous(*args)
    }
}

impl<'a> From<&ViewArgs<'a>> for GpuCall<'a> {
    fn from(args: &ViewArgs<'a>) -> Self {
        GpuCall::View(*args)
    }
}

impl<'a> From<&BufferCall<'a>> for GpuCall<'a> {
    fn from(call: &BufferCall<'a>) -> Self {
        GpuCall::Buffer(*call)
    }
}

impl<'a> From<&GpuCall<'a>> for GpuCall<'a> {
    fn from(call: &GpuCall<'a>) -> Self {
        *call
    }
}
