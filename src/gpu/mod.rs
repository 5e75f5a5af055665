//! The GPU path, one concern per file, in the order data flows:
//!
//! - [`adapter`]: finding adapters and choosing one by selector;
//! - [`plan`]: a call ([`RopeArgs`]) checked against its buffers and the device limits, and
//!   split into dispatches that fit one storage binding and one grid each;
//! - [`kernels`]: [`RopeKernels`] owns the shader modules, the explicit bind-group layouts
//!   and the pipelines cached by [`KernelKey`]; it records planned calls into the caller's
//!   `CommandEncoder` with the caller's buffers and never submits;
//! - [`device`]: [`Gpu`], the convenience layer (a device, its queue, uploads and read-backs
//!   through bounded staging, device loss and driver errors as [`Error`]s that
//!   name the adapter), [`Gpu::apply`] for any [`RopeCall`](crate::RopeCall), and
//!   [`Rotator`], which keeps a call's table and buffers on the GPU across calls (the
//!   streamed path). Everything is `async` at the core; blocking waits live only in native entry
//!   points (`*_blocking`).

pub mod adapter;
pub mod device;
pub mod kernels;
pub mod plan;

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::list_adapters;
pub use adapter::AdapterReport;
pub use device::{Gpu, Rotator, STAGING_BYTES};
pub use kernels::{Kernel, KernelKey, RopeKernels, VIEW_CACHE_ENTRIES};
pub use plan::{PlanLimits, RopeArgs, ViewArgs, ViewTensor};

use crate::error::{Error, Result};

/// Threads per workgroup of every kernel (the bench's copy yardstick included). 128 rather
/// than 256: on the H100 the exact vec4 kernels ran up to 2.5 points of a copy faster with it
/// and at most 0.7 slower on any row (BENCHMARKS.md, session 6) — plausibly because a
/// workgroup whose one lane runs the fix-up then keeps half as many thread slots waiting.
pub const WORKGROUP_SIZE: u32 = 128;

/// Splits `groups` workgroups into a balanced 2-D grid within the per-dimension limit:
/// `y = ceil(groups / max)` rows of `x = ceil(groups / y)`, so fewer than `y` workgroups are
/// wasted (65,536 groups launch as 32,768 × 2, not 65,535 × 2). Kernels index workgroups as
/// `wid.y * nwg.x + wid.x` and return past the end.
pub fn dispatch_grid(groups: u32, max_per_dim: u32) -> Result<(u32, u32)> {
    if groups == 0 {
        return Ok((0, 0));
    }
    let y = groups.div_ceil(max_per_dim.max(1));
    if y > max_per_dim {
        return Err(Error::Limit(format!(
            "{groups} workgroups exceed a {max_per_dim} x {max_per_dim} grid"
        )));
    }
    let x = groups.div_ceil(y);
    Ok((x, y))
}
