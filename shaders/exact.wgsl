// exact.wgsl — the correctly rounded two-product sum a·b + c·d on integer bits alone.
//
// The decision of last resort for every exact output (docs/CONTRACT.md §2): exact products as
// 64-bit integers, one rounding to the tensor's format (nearest, ties to even), IEEE special
// values and the canonical NaN. WGSL lets implementations flush subnormals, assume no NaN or
// infinity and contract `a*b + c*d` into FMAs; none of that can reach integer arithmetic.

// Correctly rounded bf16 (nearest, ties to even) of the exact value a*b + c*d, with IEEE
// special values and the canonical NaN. Integer arithmetic only.
fn dot2_exact(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFu;
    let bm = b & 0x7FFFFFFFu;
    let cm = c & 0x7FFFu;
    let dm = d & 0x7FFFFFFFu;
    if (am > BF16_INF || bm > F32_INF || cm > BF16_INF || dm > F32_INF) {
        return BF16_QNAN;
    }
    let s1 = ((a >> 15u) ^ (b >> 31u)) & 1u;
    let s2 = ((c >> 15u) ^ (d >> 31u)) & 1u;

    // Infinite products: inf * 0 is NaN, inf - inf is NaN, otherwise the infinity wins.
    let inf1 = am == BF16_INF || bm == F32_INF;
    let inf2 = cm == BF16_INF || dm == F32_INF;
    if ((inf1 && (am == 0u || bm == 0u)) || (inf2 && (cm == 0u || dm == 0u))) {
        return BF16_QNAN;
    }
    if (inf1 || inf2) {
        if (inf1 && inf2 && s1 != s2) {
            return BF16_QNAN;
        }
        return (select(s2, s1, inf1) << 15u) | BF16_INF;
    }

    // Exact products: 8-bit by 24-bit significands fit in 32 bits.
    let da = decode_bf16(am);
    let db = decode_f32(bm);
    let dc = decode_bf16(cm);
    let dd = decode_f32(dm);
    var m1 = da.sig * db.sig;
    var e1 = da.exp + db.exp;
    var m2 = dc.sig * dd.sig;
    var e2 = dc.exp + dd.exp;
    if (m1 == 0u && m2 == 0u) {
        // IEEE: the sum of two zeros is -0 only when both are -0.
        return (s1 & s2) << 15u;
    }
    // Normalise so that the leading one sits at bit 31: value = m * 2^e.
    if (m1 != 0u) {
        let n = countLeadingZeros(m1);
        m1 = m1 << n;
        e1 = e1 - i32(n);
    }
    if (m2 != 0u) {
        let n = countLeadingZeros(m2);
        m2 = m2 << n;
        e2 = e2 - i32(n);
    }
    // Order by magnitude: (mb, eb, sb) is the larger term.
    let swap = m1 == 0u || (m2 != 0u && (e2 > e1 || (e2 == e1 && m2 > m1)));
    let mb = select(m1, m2, swap);
    let eb = select(e1, e2, swap);
    let sb = select(s1, s2, swap);
    let ms = select(m2, m1, swap);
    let es = select(e2, e1, swap);
    let ss = select(s2, s1, swap);

    // Fixed point with the unit 2^(eb - 31): A = mb * 2^31 < 2^63, B <= A, so A + B < 2^64.
    // When the smaller term reaches below the unit, its lost bits are a sticky bit: the true
    // sum lies strictly between R and R + 1.
    let big = shl64(mb, 31u);
    var small = vec2<u32>(0u, 0u);
    var sticky = false;
    if (ms != 0u) {
        let gap = u32(eb - es);
        if (gap <= 31u) {
            small = shl64(ms, 31u - gap);
        } else if (gap < 63u) {
            small = vec2<u32>(ms >> (gap - 31u), 0u);
            sticky = (ms << (63u - gap)) != 0u;
        } else {
            sticky = true;
        }
    }
    var r: vec2<u32>;
    if (sb != ss) {
        r = sub64(big, small);
        if (sticky) {
            r = sub64(r, vec2<u32>(1u, 0u));
        }
    } else {
        r = add64(big, small);
    }
    if (r.x == 0u && r.y == 0u && !sticky) {
        // Exact cancellation rounds to +0.
        return 0u;
    }

    // Round R (plus sticky) to 8 significant bits, or to the subnormal grid 2^-133.
    var lead: i32;
    if (r.y != 0u) {
        lead = 63 - i32(countLeadingZeros(r.y));
    } else {
        lead = 31 - i32(countLeadingZeros(r.x));
    }
    let shift = max(lead - 7, -102 - eb);
    var q: u32;
    if (shift <= 0) {
        // Exact: at most 8 significant bits and no sticky (sticky implies lead >= 62).
        q = r.x << u32(-shift);
    } else if (shift >= 65) {
        q = 0u;
    } else {
        let k = u32(shift);
        let half = bit64(r, k - 1u);
        q = select(shr64_low(r, k), 0u, k == 64u);
        let rest = sticky || low_bits_nonzero(r, k - 1u);
        if (half == 1u && (rest || (q & 1u) == 1u)) {
            q = q + 1u;
        }
    }
    // value = q * 2^u with u = shift + eb - 31; q in [128, 256] is normal, q < 128 subnormal,
    // and ((u + 133) << 7) + q is the bf16 pattern in both cases (a carry to 256 bumps the
    // exponent; reaching 0x7F80 is the IEEE overflow to infinity).
    let biased = shift + eb + 102;
    var mag = BF16_INF;
    if (biased < 255) {
        mag = min((u32(biased) << 7u) + q, BF16_INF);
    }
    return (sb << 15u) | mag;
}

// The correctly rounded (nearest, ties to even) sum of two exact, finite products
// (-1)^s1 · m1 · 2^e1 + (-1)^s2 · m2 · 2^e2 (m1, m2 < 2^63), onto the grid of a format with
// `mbits` fraction bits, subnormal quantum 2^qmin and infinity pattern `inf`; the sign goes
// to bit `sbit`. IEEE zeros: -0 only when both products are -0; an exact cancellation is +0.
fn round_sum_wide(s1: u32, m1_in: vec2<u32>, e1_in: i32, s2: u32, m2_in: vec2<u32>, e2_in: i32,
                  mbits: u32, qmin: i32, inf: u32, sbit: u32) -> u32 {
    var m1 = m1_in;
    var e1 = e1_in;
    var m2 = m2_in;
    var e2 = e2_in;
    let z1 = m1.x == 0u && m1.y == 0u;
    let z2 = m2.x == 0u && m2.y == 0u;
    if (z1 && z2) {
        return (s1 & s2) << sbit;
    }
    // Normalise so that the leading one sits at bit 62: value = m · 2^e.
    if (!z1) {
        let n = clz64(m1) - 1u;
        m1 = shl64v(m1, n);
        e1 = e1 - i32(n);
    }
    if (!z2) {
        let n = clz64(m2) - 1u;
        m2 = shl64v(m2, n);
        e2 = e2 - i32(n);
    }
    // Order by magnitude: (mb, eb, sb) is the larger term.
    let swap = z1 || (!z2 && (e2 > e1 || (e2 == e1 && gt64(m2, m1))));
    let mb = select(m1, m2, swap);
    let eb = select(e1, e2, swap);
    let sb = select(s1, s2, swap);
    let ms = select(m2, m1, swap);
    let es = select(e2, e1, swap);
    let ss = select(s2, s1, swap);
    let zs = select(z2, z1, swap);

    // Fixed point with the unit 2^eb: the smaller term shifted right by the exponent gap; the
    // bits it loses (only for gaps > 15: a product has at most 48 bits) are a sticky bit, and
    // the true sum then lies strictly between R and R + 1.
    var small = vec2<u32>(0u, 0u);
    var sticky = false;
    if (!zs) {
        let gap = u32(eb - es);
        if (gap < 63u) {
            small = shr64v(ms, gap);
            sticky = low_bits_nonzero(ms, gap);
        } else {
            sticky = true;
        }
    }
    var r: vec2<u32>;
    if (sb != ss) {
        r = sub64(mb, small);
        if (sticky) {
            r = sub64(r, vec2<u32>(1u, 0u));
        }
    } else {
        r = add64(mb, small);
    }
    if (r.x == 0u && r.y == 0u && !sticky) {
        return 0u;
    }

    // Round R (plus sticky) to mbits + 1 significant bits, or to the subnormal quantum.
    let lead = 63 - i32(clz64(r));
    let shift = max(lead - i32(mbits), qmin - eb);
    var q: u32;
    if (shift <= 0) {
        // Exact: R has at most mbits + 1 bits and no sticky (sticky implies lead >= 61).
        q = r.x << u32(-shift);
    } else if (shift >= 65) {
        q = 0u;
    } else {
        let k = u32(shift);
        let half = bit64(r, k - 1u);
        q = select(shr64_low(r, k), 0u, k == 64u);
        let rest = sticky || low_bits_nonzero(r, k - 1u);
        if (half == 1u && (rest || (q & 1u) == 1u)) {
            q = q + 1u;
        }
    }
    // value = q · 2^(shift + eb); (shift + eb − qmin) << mbits plus q is the pattern of normal
    // (q in [2^mbits, 2^(mbits+1)]) and subnormal (shift + eb == qmin) results alike; a carry
    // bumps the exponent, and reaching `inf` is the IEEE overflow.
    let biased = shift + eb - qmin;
    var mag = inf;
    if (biased < i32(inf >> mbits)) {
        mag = min((u32(biased) << mbits) + q, inf);
    }
    return (sb << sbit) | mag;
}

// Correctly rounded f16 of the exact a·b + c·d (a, c f16; b, d f32), IEEE special values and
// the canonical NaN 0x7E00. Integer arithmetic only.
fn dot2_exact_f16(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFu;
    let bm = b & 0x7FFFFFFFu;
    let cm = c & 0x7FFFu;
    let dm = d & 0x7FFFFFFFu;
    if (am > F16_INF || bm > F32_INF || cm > F16_INF || dm > F32_INF) {
        return F16_QNAN;
    }
    let s1 = ((a >> 15u) ^ (b >> 31u)) & 1u;
    let s2 = ((c >> 15u) ^ (d >> 31u)) & 1u;
    let inf1 = am == F16_INF || bm == F32_INF;
    let inf2 = cm == F16_INF || dm == F32_INF;
    if ((inf1 && (am == 0u || bm == 0u)) || (inf2 && (cm == 0u || dm == 0u))) {
        return F16_QNAN;
    }
    if (inf1 || inf2) {
        if (inf1 && inf2 && s1 != s2) {
            return F16_QNAN;
        }
        return (select(s2, s1, inf1) << 15u) | F16_INF;
    }
    let da = decode_f16(am);
    let db = decode_f32(bm);
    let dc = decode_f16(cm);
    let dd = decode_f32(dm);
    return round_sum_wide(s1, mul64(da.sig, db.sig), da.exp + db.exp,
                          s2, mul64(dc.sig, dd.sig), dc.exp + dd.exp,
                          10u, -24, F16_INF, 15u);
}

// Correctly rounded f32 of the exact a·b + c·d (all f32), IEEE special values and the
// canonical NaN 0x7FC00000; subnormal inputs and results exact. Integer arithmetic only.
fn dot2_exact_f32(a: u32, b: u32, c: u32, d: u32) -> u32 {
    let am = a & 0x7FFFFFFFu;
    let bm = b & 0x7FFFFFFFu;
    let cm = c & 0x7FFFFFFFu;
    let dm = d & 0x7FFFFFFFu;
    if (am > F32_INF || bm > F32_INF || cm > F32_INF || dm > F32_INF) {
        return F32_QNAN;
    }
    let s1 = ((a ^ b) >> 31u) & 1u;
    let s2 = ((c ^ d) >> 31u) & 1u;
    let inf1 = am == F32_INF || bm == F32_INF;
    let inf2 = cm == F32_INF || dm == F32_INF;
    if ((inf1 && (am == 0u || bm == 0u)) || (inf2 && (cm == 0u || dm == 0u))) {
        return F32_QNAN;
    }
    if (inf1 || inf2) {
        if (inf1 && inf2 && s1 != s2) {
            return F32_QNAN;
        }
        return (select(s2, s1, inf1) << 31u) | F32_INF;
    }
    let da = decode_f32(am);
    let db = decode_f32(bm);
    let dc = decode_f32(cm);
    let dd = decode_f32(dm);
    return round_sum_wide(s1, mul64(da.sig, db.sig), da.exp + db.exp,
                          s2, mul64(dc.sig, dd.sig), dc.exp + dd.exp,
                          23u, -149, F32_INF, 31u);
}
