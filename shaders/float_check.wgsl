// float_check.wgsl — the f16/f32 arithmetic on a list of operands, for conformance and tests:
// case i reads the four words ops[4i .. 4i + 4] = (a, b, c, d) and writes a·b + c·d,
// correctly rounded to the format DTYPE names (1: f16, 2: f32), to out[i]. With FAST = 1 the
// f16 case takes the proven f32 path first (what the RoPE kernel does), with 0 the exact
// integer path alone, so both are checked on their own.

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
    let o = ops[i];
    var y: u32;
    if (DTYPE == 2u) {
        y = dot2_exact_f32(o.x, o.y, o.z, o.w);
    } else if (FAST == 1u) {
        y = dot2_f16(o.x, o.y, o.z, o.w);
    } else {
        y = dot2_exact_f16(o.x, o.y, o.z, o.w);
    }
    out[i] = y;
}
