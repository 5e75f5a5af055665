// u64.wgsl — unsigned 64-bit integers as vec2<u32>(low, high), for the exact integer paths.
//
// WGSL masks shift amounts to 5 bits, so every shift helper handles shifts of 0 and >= 32
// explicitly. Nothing here touches the f32 unit.

// x << k for k in [0, 63].
fn shl64(x: u32, k: u32) -> vec2<u32> {
    if (k == 0u) {
        return vec2<u32>(x, 0u);
    }
    if (k < 32u) {
        return vec2<u32>(x << k, x >> (32u - k));
    }
    return vec2<u32>(0u, x << (k - 32u));
}

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

// The low 32 bits of r >> k, for k in [1, 63] (the callers' results fit 9 bits).
fn shr64_low(r: vec2<u32>, k: u32) -> u32 {
    if (k < 32u) {
        return (r.x >> k) | (r.y << (32u - k));
    }
    return r.y >> (k - 32u);
}

// Bit j of r, for j in [0, 63].
fn bit64(r: vec2<u32>, j: u32) -> u32 {
    if (j < 32u) {
        return (r.x >> j) & 1u;
    }
    return (r.y >> (j - 32u)) & 1u;
}

// Whether r mod 2^j is non-zero, for j in [0, 63].
fn low_bits_nonzero(r: vec2<u32>, j: u32) -> bool {
    if (j == 0u) {
        return false;
    }
    if (j < 32u) {
        return (r.x << (32u - j)) != 0u;
    }
    if (j == 32u) {
        return r.x != 0u;
    }
    return r.x != 0u || (r.y << (64u - j)) != 0u;
}

// The exact 64-bit product of two u32 values, as vec2<u32>(low, high), from 16-bit limbs:
// a·b = a0·b0 + (a0·b1 + a1·b0)·2^16 + a1·b1·2^32, every partial product below 2^32.
fn mul64(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let lo = a0 * b0;
    let m1 = a0 * b1;
    let m2 = a1 * b0;
    let mid = m1 + m2;
    // A carry out of the middle sum is worth 2^48.
    let mid_carry = select(0u, 0x10000u, mid < m1);
    let x = lo + (mid << 16u);
    let carry = select(0u, 1u, x < lo);
    return vec2<u32>(x, a1 * b1 + (mid >> 16u) + mid_carry + carry);
}

// Leading zeros of a 64-bit value (64 for zero).
fn clz64(v: vec2<u32>) -> u32 {
    if (v.y != 0u) {
        return countLeadingZeros(v.y);
    }
    return 32u + countLeadingZeros(v.x);
}

// v << k for k in [0, 63] (WGSL masks shift amounts to 5 bits: k = 0 and k >= 32 apart).
fn shl64v(v: vec2<u32>, k: u32) -> vec2<u32> {
    if (k == 0u) {
        return v;
    }
    if (k < 32u) {
        return vec2<u32>(v.x << k, (v.y << k) | (v.x >> (32u - k)));
    }
    return vec2<u32>(0u, v.x << (k - 32u));
}

// v >> k for k in [0, 63].
fn shr64v(v: vec2<u32>, k: u32) -> vec2<u32> {
    if (k == 0u) {
        return v;
    }
    if (k < 32u) {
        return vec2<u32>((v.x >> k) | (v.y << (32u - k)), v.y >> k);
    }
    return vec2<u32>(v.y >> (k - 32u), 0u);
}

// Whether a > b, 64-bit.
fn gt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x > b.x);
}
