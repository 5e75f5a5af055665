// float_check.wgsl — the f16/f32 arithmetic on a list of operands, for conformance and tests:
// case i reads the four words ops[4i .. 4i + 4] = (a, b, c, d) and writes a·b + c·d,
// correctly rounded to the format DTYPE names (1: f16, 2: f32), to out[i] (which the caller
// fills with u32::MAX first). With FAST = 1 the
// f16 case takes the proven f32 path first (what the RoPE kernel does), with 0 the exact
// integer path alone, so both are checked on their own; 2 and 4 run the second (error-free)
// and first (f32 proof) stages alone (0x10000: undecided); 3 the f32 -> f16 rounding of the
// `fast` and `hf` modes alone (f32_to_f16_rne of b). DTYPE 0 (bf16) runs one stage of the
// bf16 arithmetic alone: FAST 0 dot2_exact, 1 dot2_fast, 2 dot2_split (0x10000: undecided).

override DTYPE: u32 = 1u;
override FAST: u32 = 1u;
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<storage, read> ops: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn float_check(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
    if (i >= arrayLength(&out)) {
        return;
    }
    zero_at_run_time = ~out[i];
    let o = ops[i];
    var y: u32;
    if (DTYPE == 0u) {
        // bf16: each stage alone; an undecided output is written as 0x10000.
        if (FAST == 1u) {
            y = dot2_fast(o.x, o.y, o.z, o.w);
        } else if (FAST == 2u) {
            y = dot2_split(o.x, o.y, o.z, o.w);
        } else {
            y = dot2_exact(o.x, o.y, o.z, o.w);
        }
        y = select(y, 0x10000u, y == UNDECIDED);
    } else if (DTYPE == 2u) {
        y = dot2_exact_f32(o.x, o.y, o.z, o.w);
    } else if (FAST == 3u) {
        y = f32_to_f16_rne(o.y);
    } else if (FAST == 2u || FAST == 4u) {
        // One f16 stage alone: 2 dot2_split_f16, 4 dot2_fast_f16 (0x10000: undecided).
        if (FAST == 2u) {
            y = dot2_split_f16(o.x, o.y, o.z, o.w);
        } else {
            y = dot2_fast_f16(o.x, o.y, o.z, o.w);
        }
        y = select(y, 0x10000u, y == UNDECIDED);
    } else if (FAST == 1u) {
        y = dot2_f16(o.x, o.y, o.z, o.w);
    } else {
        y = dot2_exact_f16(o.x, o.y, o.z, o.w);
    }
    out[i] = y;
}

// Zero at run time (proof.wgsl's `opaque`): the complement of the sentinel u32::MAX the caller
// fills `out` with, read before the result is written (a value the compiler cannot know;
// arrayLength(&out) >> 31 is not: Mesa folds it to 0 and then the error-free steps away).
var<private> zero_at_run_time: u32;

fn runtime_zero() -> u32 {
    return zero_at_run_time;
}
