//! The single place where WGSL sources are included, composed and named.
//!
//! Shaders live in `shaders/*.wgsl`; a kernel module is the shared bf16 helpers followed by
//! the kernel, concatenated (few modules, so no preprocessor). Entry points and the
//! pipeline-overridable constants each kernel reads are listed here, and the tests validate
//! every composed module with naga.

/// bf16 codec, the exact two-product sum and the proven f32 fast path.
pub const BF16_WGSL: &str = include_str!("../shaders/bf16.wgsl");
/// The interleaved RoPE kernel (needs [`BF16_WGSL`]).
pub const ROPE_WGSL: &str = include_str!("../shaders/rope.wgsl");
/// A vec4 copy kernel: the bandwidth yardstick of the benchmarks.
pub const COPY_WGSL: &str = include_str!("../shaders/copy.wgsl");

/// Entry point of the RoPE kernel.
pub const ROPE_ENTRY: &str = "rope";
/// Entry point of the copy kernel.
pub const COPY_ENTRY: &str = "copy";

/// Override constants of the RoPE kernel: `EXACT` (1 exact, 0 plain f32), `WORKGROUP_SIZE`,
/// `WORDS_PER_THREAD` (1 or 4).
pub const ROPE_OVERRIDES: [&str; 3] = ["EXACT", "WORKGROUP_SIZE", "WORDS_PER_THREAD"];

/// Bindings of the RoPE kernel, as `(binding, name)`: the Rust bind-group layout in
/// `gpu.rs` is built from the same numbers and the shader tests check them against naga.
pub const ROPE_BINDINGS: [(u32, &str); 4] = [(0, "params"), (1, "table"), (2, "src"), (3, "dst")];

/// The full source of the RoPE kernel module.
pub fn rope_source() -> String {
    format!("{BF16_WGSL}\n{ROPE_WGSL}")
}

/// The full source of the copy kernel module.
pub fn copy_source() -> String {
    COPY_WGSL.to_string()
}
