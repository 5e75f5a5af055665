//! The single place where WGSL sources are included, composed and named.
//!
//! Shaders live in `shaders/*.wgsl`; a kernel module is the shared bf16 helpers followed by
//! the kernel, concatenated (few modules, so no preprocessor). Entry points and the
//! pipeline-overridable constants each kernel reads are listed here, and the tests validate
//! every composed module with naga.

/// bf16 codec, the exact two-product sum and the proven f32 fast path.
pub const BF16_WGSL: &str = include_str!("../shaders/bf16.wgsl");
/// Rotating one pair, shared by every RoPE kernel (needs [`BF16_WGSL`] before it and a kernel
/// that declares `params` after it).
pub const ROPE_WGSL: &str = include_str!("../shaders/rope.wgsl");
/// The uniform block of the contiguous kernels (scalar and vec4).
pub const ROPE_CONTIGUOUS_WGSL: &str = include_str!("../shaders/rope_contiguous.wgsl");
/// The general kernel: any view, pairing and rotary_dim, positions per batch row.
pub const ROPE_GENERAL_WGSL: &str = include_str!("../shaders/rope_general.wgsl");
/// Entry file: one pair per invocation, any shape.
pub const ROPE_SCALAR_WGSL: &str = include_str!("../shaders/rope_scalar.wgsl");
/// Entry file: four pairs per invocation with 16-byte accesses (pairs per head % 4 == 0).
pub const ROPE_VEC4_WGSL: &str = include_str!("../shaders/rope_vec4.wgsl");
/// A vec4 copy kernel: the bandwidth yardstick of the benchmarks.
pub const COPY_WGSL: &str = include_str!("../shaders/copy.wgsl");

/// Entry point of the scalar RoPE kernel ([`rope_source`]).
pub const ROPE_ENTRY: &str = "rope_scalar";
/// Entry point of the vec4 RoPE kernel ([`rope_vec4_source`]).
pub const ROPE_VEC4_ENTRY: &str = "rope_vec4";
/// Entry point of the general RoPE kernel ([`rope_general_source`]).
pub const ROPE_GENERAL_ENTRY: &str = "rope_general";
/// Entry point of the copy kernel.
pub const COPY_ENTRY: &str = "copy";

/// Override constants of the RoPE kernels: `EXACT` (1 exact, 0 plain f32), `WORKGROUP_SIZE`.
pub const ROPE_OVERRIDES: [&str; 2] = ["EXACT", "WORKGROUP_SIZE"];

/// Override constants of the general kernel: those of the others and `HALF_SPLIT`.
pub const ROPE_GENERAL_OVERRIDES: [&str; 3] = ["EXACT", "HALF_SPLIT", "WORKGROUP_SIZE"];

/// Bindings of the general kernel: the contiguous kernels' and the table rows of the batch
/// rows or tokens (`rows`).
pub const ROPE_GENERAL_BINDINGS: [(u32, &str); 5] = [
    (0, "params"),
    (1, "table"),
    (2, "src"),
    (3, "dst"),
    (4, "rows"),
];

/// Bindings of the RoPE kernel, as `(binding, name)`: the Rust bind-group layout in
/// `gpu.rs` is built from the same numbers and the shader tests check them against naga.
pub const ROPE_BINDINGS: [(u32, &str); 4] = [(0, "params"), (1, "table"), (2, "src"), (3, "dst")];

/// The full source of the scalar RoPE kernel module (entry [`ROPE_ENTRY`]).
pub fn rope_source() -> String {
    format!("{BF16_WGSL}\n{ROPE_WGSL}\n{ROPE_CONTIGUOUS_WGSL}\n{ROPE_SCALAR_WGSL}")
}

/// The full source of the vec4 RoPE kernel module (entry [`ROPE_VEC4_ENTRY`]).
pub fn rope_vec4_source() -> String {
    format!("{BF16_WGSL}\n{ROPE_WGSL}\n{ROPE_CONTIGUOUS_WGSL}\n{ROPE_VEC4_WGSL}")
}

/// The full source of the general RoPE kernel module (entry [`ROPE_GENERAL_ENTRY`]).
pub fn rope_general_source() -> String {
    format!("{BF16_WGSL}\n{ROPE_WGSL}\n{ROPE_GENERAL_WGSL}")
}

/// Every RoPE module as `(name, source, entry point)`, for validation and reports.
pub fn rope_modules() -> [(&'static str, String, &'static str); 2] {
    [
        ("rope_scalar", rope_source(), ROPE_ENTRY),
        ("rope_vec4", rope_vec4_source(), ROPE_VEC4_ENTRY),
    ]
}

/// The full source of the copy kernel module.
pub fn copy_source() -> String {
    COPY_WGSL.to_string()
}
