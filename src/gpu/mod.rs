//! The GPU path, one concern per file, in the order data flows:
//!
//! - [`adapter`]: finding adapters and choosing one by selector;
//! - [`key`]: what selects a pipeline ([`KernelKey`]: the kernel module and its override
//!   constants) and the label that names it;
//! - [`plan`]: the one planner: a call on GPU buffers ([`GpuCall`]: [`RopeArgs`],
//!   [`ViewArgs`] or a whole-buffer [`BufferCall`]) checked against its buffers and the
//!   device limits, given its kernel keys (a contiguous kernel when one serves the call, else
//!   the general one) and split into dispatches that fit one storage binding and one grid
//!   each;
//! - [`kernels`]: [`RopeKernels`] owns the shader modules, the explicit bind-group layouts
//!   and the pipelines cached by [`KernelKey`]; [`RopeKernels::record`] records a planned
//!   call into the caller's `CommandEncoder` or open compute pass with the caller's buffers
//!   and never submits;
//! - [`device`]: [`Gpu`], the convenience layer (a device, its queue, uploads and read-backs
//!   through bounded staging, device loss and driver errors as [`Error`](crate::Error)s that
//!   name the adapter), [`Gpu::apply`] for any [`RopeCall`](crate::RopeCall), and
//!   [`Rotator`], which keeps a call's table and buffers on the GPU across calls (the
//!   streamed path): upload, record a [`BufferCall`], read back. Everything is `async` at the
//!   core; blocking waits live only in native entry points (`*_blocking`).
//!
//! Imports run one way: `key` ← `plan` ← `kernels` ← `device`.

pub mod adapter;
pub mod call;
pub mod device;
pub mod kernels;
pub mod key;
pub mod plan;

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::list_adapters;
pub use adapter::AdapterReport;
pub use call::{BufferCall, GpuCall, RopeArgs, ViewArgs, ViewTensor};
pub use device::{Gpu, Rotator, STAGING_BYTES};
pub use kernels::{RecordTarget, RopeKernels, VIEW_CACHE_ENTRIES};
pub use key::{Kernel, KernelKey, WORKGROUP_SIZE};
pub use plan::{dispatch_grid, kernel_for, PlanLimits};

#[cfg(test)]
mod plan_snapshot;
