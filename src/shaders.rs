//! The single place where WGSL sources are included, composed and named.
//!
//! Shaders live in `shaders/*.wgsl`, in layers: the arithmetic ([`arithmetic`]: 64-bit
//! integers, the codecs, the exact integer path, the proven f32 stages, the `fast` and `hf`
//! modes), then [`ROPE_WGSL`] (one pair in the mode a kernel is compiled for), then a kernel's
//! own files. A module is its layers concatenated (WGSL needs no declaration order, so no
//! preprocessor). Entry points and the
//! pipeline-overridable constants each kernel reads are listed here, and the tests validate
//! every composed module with naga.

/// Unsigned 64-bit integers as `vec2<u32>`.
pub const U64_WGSL: &str = include_str!("../shaders/u64.wgsl");
/// bf16, f16 and f32 patterns: special values, decoding, widening, narrowing.
pub const CODEC_WGSL: &str = include_str!("../shaders/codec.wgsl");
/// The correctly rounded two-product sum on integer bits alone.
pub const EXACT_WGSL: &str = include_str!("../shaders/exact.wgsl");
/// The f32 stages in front of the integer path: proven roundings and error-free steps.
pub const PROOF_WGSL: &str = include_str!("../shaders/proof.wgsl");
/// The `fast` mode: plain f32 arithmetic.
pub const FAST_WGSL: &str = include_str!("../shaders/fast.wgsl");
/// The `hf` mode: transformers' eager arithmetic on the bits.
pub const HF_WGSL: &str = include_str!("../shaders/hf.wgsl");
/// Rotating one pair, shared by every RoPE kernel (needs [`arithmetic`] before it and a kernel
/// that declares `params` after it).
pub const ROPE_WGSL: &str = include_str!("../shaders/rope.wgsl");
/// The uniform block of the contiguous kernels (scalar and vec4).
pub const ROPE_CONTIGUOUS_WGSL: &str = include_str!("../shaders/rope_contiguous.wgsl");
/// The general kernel's uniform block, bindings and index map.
pub const ROPE_GENERAL_WGSL: &str = include_str!("../shaders/rope_general.wgsl");
/// Its entry on 16-bit halves (any view).
pub const ROPE_GENERAL_HALVES_WGSL: &str = include_str!("../shaders/rope_general_halves.wgsl");
/// Its entry on whole words (heads on word boundaries).
pub const ROPE_GENERAL_WORDS_WGSL: &str = include_str!("../shaders/rope_general_words.wgsl");
/// Its entry on f32 tensors (one element per word).
pub const ROPE_GENERAL_F32_WGSL: &str = include_str!("../shaders/rope_general_f32.wgsl");
/// Entry file: one pair per invocation, any shape.
pub const ROPE_SCALAR_WGSL: &str = include_str!("../shaders/rope_scalar.wgsl");
/// Entry file: four pairs per invocation with 16-byte accesses (pairs per head % 4 == 0).
pub const ROPE_VEC4_WGSL: &str = include_str!("../shaders/rope_vec4.wgsl");
/// Entry file: half-split pairs, 4 + 4 elements per invocation with 8-byte accesses (the host
/// keeps pairs per head % 4 == 0).
pub const ROPE_VEC4_HALF_WGSL: &str = include_str!("../shaders/rope_vec4_half.wgsl");
/// Entry file: the f16/f32 arithmetic on a list of operands (conformance and tests).
pub const FLOAT_CHECK_WGSL: &str = include_str!("../shaders/float_check.wgsl");
/// A vec4 copy kernel: the bandwidth yardstick of the benchmarks.
pub const COPY_WGSL: &str = include_str!("../shaders/copy.wgsl");

/// Entry point of the scalar RoPE kernel ([`rope_source`]).
pub const ROPE_ENTRY: &str = "rope_scalar";
/// Entry point of the vec4 RoPE kernel ([`rope_vec4_source`]).
pub const ROPE_VEC4_ENTRY: &str = "rope_vec4";
/// Entry point of the half-split vec4 RoPE kernel ([`rope_vec4_half_source`]).
pub const ROPE_VEC4_HALF_ENTRY: &str = "rope_vec4_half";

/// Entry point of the general RoPE kernel ([`rope_general_source`]).
pub const ROPE_GENERAL_ENTRY: &str = "rope_general";
/// Entry point of the f16/f32 arithmetic check kernel ([`float_check_source`]).
pub const FLOAT_CHECK_ENTRY: &str = "float_check";
/// Entry point of the copy kernel.
pub const COPY_ENTRY: &str = "copy";

/// Override constants of the RoPE kernels: `EXACT` (the arithmetic: 1 exact, 0 plain f32,
/// 2 `hf`), `DTYPE` (0 bf16, 1 f16, 2 f32), `TABLE_IN_RANGE` (1: the host checked the table's
/// values, [`crate::RopeTable::in_fast_range`], and the kernel skips testing them),
/// `WORKGROUP_SIZE`.
pub const ROPE_OVERRIDES: [&str; 4] = ["EXACT", "DTYPE", "TABLE_IN_RANGE", "WORKGROUP_SIZE"];

/// Override constants of the general kernel: those of the others and `HALF_SPLIT` (its
/// `TABLE_IN_RANGE` as [`crate::gpu::ViewArgs::table_in_range`] says; the f32 modules ignore
/// it).
pub const ROPE_GENERAL_OVERRIDES: [&str; 5] = [
    "EXACT",
    "DTYPE",
    "HALF_SPLIT",
    "TABLE_IN_RANGE",
    "WORKGROUP_SIZE",
];

/// Override constants of the check kernel: `DTYPE` (1 f16, 2 f32), `FAST` (1: the f16 fast
/// path first, 0: the exact integer path alone), `WORKGROUP_SIZE`.
pub const FLOAT_CHECK_OVERRIDES: [&str; 3] = ["DTYPE", "FAST", "WORKGROUP_SIZE"];

/// Bindings of the check kernel: the operand quadruples `(a, b, c, d)` and one result each.
pub const FLOAT_CHECK_BINDINGS: [(u32, &str); 2] = [(0, "ops"), (1, "out")];

/// Bindings of the general kernel's out-of-place, one-view module: the contiguous kernels'
/// and the table rows of the batch rows or tokens (`rows`); [`general_io`] says what the
/// other modules bind.
pub const ROPE_GENERAL_BINDINGS: [(u32, &str); 5] = [
    (0, "params"),
    (1, "table"),
    (2, "src"),
    (3, "dst"),
    (4, "rows"),
];

/// Bindings of the RoPE kernel, as `(binding, name)`: the Rust bind-group layout in
/// `gpu/kernels.rs` is built from the same numbers and the shader tests check them against naga.
pub const ROPE_BINDINGS: [(u32, &str); 4] = [(0, "params"), (1, "table"), (2, "src"), (3, "dst")];

/// The arithmetic layers every module starts with, in order.
pub fn arithmetic() -> String {
    [
        U64_WGSL, CODEC_WGSL, EXACT_WGSL, PROOF_WGSL, FAST_WGSL, HF_WGSL,
    ]
    .join("\n")
}

/// The full source of the scalar RoPE module (entry [`ROPE_ENTRY`]).
pub fn rope_source() -> String {
    format!(
        "{}\n{ROPE_WGSL}\n{ROPE_CONTIGUOUS_WGSL}\n{ROPE_SCALAR_WGSL}",
        arithmetic()
    )
}

/// The full source of the vec4 RoPE kernel module (entry [`ROPE_VEC4_ENTRY`]).
pub fn rope_vec4_source() -> String {
    format!(
        "{}\n{ROPE_WGSL}\n{ROPE_CONTIGUOUS_WGSL}\n{ROPE_VEC4_WGSL}",
        arithmetic()
    )
}

/// The full source of the half-split vec4 RoPE kernel module (entry
/// [`ROPE_VEC4_HALF_ENTRY`]).
pub fn rope_vec4_half_source() -> String {
    format!(
        "{}\n{ROPE_WGSL}\n{ROPE_CONTIGUOUS_WGSL}\n{ROPE_VEC4_HALF_WGSL}",
        arithmetic()
    )
}

/// The tensor bindings and the loads and stores of the general kernel: out of place
/// (`src` at binding 2, `dst` at 3; with two views also `src_k` at 5, `dst_k` at 6) or in
/// place (`dst` at 3, `dst_k` at 6: WebGPU bindings may not alias, so in place is its own
/// module); 16-bit halves with atomic stores (`load_half`/`store_half`), or whole words
/// (`load_word`/`store_word`, plain stores).
pub fn general_io(in_place: bool, views: u32, words: bool) -> String {
    let mut s = String::from(
        "// Written by src/shaders.rs (general_io): the general kernel's tensor bindings.\n",
    );
    let tensors: &[(&str, &str, u32, u32)] = if views == 2 {
        &[("src", "dst", 2, 3), ("src_k", "dst_k", 5, 6)]
    } else {
        &[("src", "dst", 2, 3)]
    };
    let element = if words { "u32" } else { "atomic<u32>" };
    for (src, dst, bs, bd) in tensors {
        if !in_place {
            s += &format!("@group(0) @binding({bs}) var<storage, read> {src}: array<u32>;\n");
        }
        s += &format!(
            "@group(0) @binding({bd}) var<storage, read_write> {dst}: array<{element}>;\n"
        );
    }
    let read = |src: &str, dst: &str, at: &str| match (in_place, words) {
        (true, false) => format!("atomicLoad(&{dst}[{at}])"),
        (true, true) => format!("{dst}[{at}]"),
        (false, _) => format!("{src}[{at}]"),
    };
    let pick = |at: &str| {
        if views == 2 {
            format!(
                "select({}, {}, view == 1u)",
                read("src", "dst", at),
                read("src_k", "dst_k", at)
            )
        } else {
            read("src", "dst", at)
        }
    };
    let per_view = |body: &dyn Fn(&str) -> String| {
        if views == 2 {
            format!(
                "    if (view == 0u) {{\n{}    }} else {{\n{}    }}\n",
                body("dst"),
                body("dst_k")
            )
        } else {
            body("dst")
        }
    };
    if words {
        s += &format!(
            "fn load_word(view: u32, w: u32) -> u32 {{\n    return {};\n}}\n",
            pick("w")
        );
        s += "fn store_word(view: u32, w: u32, bits: u32) {\n";
        s += &per_view(&|dst| format!("        {dst}[w] = bits;\n"));
        s += "}\n";
    } else {
        s += &format!(
            "fn load_half(view: u32, e: u32) -> u32 {{\n    return ({} >> ((e & 1u) * 16u)) & 0xFFFFu;\n}}\n",
            pick("e >> 1u")
        );
        s += "fn store_half(view: u32, e: u32, bits: u32) {\n    let shift = (e & 1u) * 16u;\n";
        s += &per_view(&|dst| {
            format!(
                "        atomicAnd(&{dst}[e >> 1u], ~(0xFFFFu << shift));\n        atomicOr(&{dst}[e >> 1u], bits << shift);\n"
            )
        });
        s += "}\n";
    }
    s
}

/// The full source of a general RoPE kernel module (entry [`ROPE_GENERAL_ENTRY`]): out of
/// place or in place, for one view or two (q and k), on halves or whole words.
pub fn rope_general_variant(in_place: bool, views: u32, words: bool) -> String {
    let entry = if words {
        ROPE_GENERAL_WORDS_WGSL
    } else {
        ROPE_GENERAL_HALVES_WGSL
    };
    format!(
        "{}\n{ROPE_WGSL}\n{ROPE_GENERAL_WGSL}\n{entry}\n{}",
        arithmetic(),
        general_io(in_place, views, words)
    )
}

/// The full source of a general RoPE module for f32 tensors (entry [`ROPE_GENERAL_ENTRY`]):
/// the f32 entry with the word io part (a word is an element), out of place or in place, one
/// view or two.
pub fn rope_general_f32_variant(in_place: bool, views: u32) -> String {
    format!(
        "{}\n{ROPE_WGSL}\n{ROPE_GENERAL_WGSL}\n{ROPE_GENERAL_F32_WGSL}\n{}",
        arithmetic(),
        general_io(in_place, views, true)
    )
}

/// The out-of-place, one-view general module on halves.
pub fn rope_general_source() -> String {
    rope_general_variant(false, 1, false)
}

/// Every general module as `(name, in_place, views, words, source)`, for validation.
pub fn rope_general_modules() -> Vec<(String, bool, u32, bool, String)> {
    let mut v = Vec::new();
    for words in [false, true] {
        for in_place in [false, true] {
            for views in [1, 2] {
                let name = format!(
                    "rope_general[{},{},views={views}]",
                    if words { "words" } else { "halves" },
                    if in_place { "in place" } else { "out of place" },
                );
                v.push((
                    name,
                    in_place,
                    views,
                    words,
                    rope_general_variant(in_place, views, words),
                ));
            }
        }
    }
    for in_place in [false, true] {
        for views in [1, 2] {
            let name = format!(
                "rope_general[f32,{},views={views}]",
                if in_place { "in place" } else { "out of place" },
            );
            v.push((
                name,
                in_place,
                views,
                true,
                rope_general_f32_variant(in_place, views),
            ));
        }
    }
    v
}

/// Every RoPE module as `(name, source, entry point)`, for validation and reports.
pub fn rope_modules() -> [(&'static str, String, &'static str); 3] {
    [
        ("rope_scalar", rope_source(), ROPE_ENTRY),
        ("rope_vec4", rope_vec4_source(), ROPE_VEC4_ENTRY),
        (
            "rope_vec4_half",
            rope_vec4_half_source(),
            ROPE_VEC4_HALF_ENTRY,
        ),
    ]
}

/// The full source of the f16/f32 arithmetic check module (entry [`FLOAT_CHECK_ENTRY`]).
pub fn float_check_source() -> String {
    format!("{}\n{FLOAT_CHECK_WGSL}", arithmetic())
}

/// The full source of the copy kernel module.
pub fn copy_source() -> String {
    COPY_WGSL.to_string()
}
