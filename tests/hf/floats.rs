//! The `hf` precision on f16 and f32 tensors (docs/CONTRACT.md §2): transformers' eager
//! `apply_rotary_pos_emb` on a tensor of that dtype, bit for bit, against an independent
//! oracle (`tests/common/oracle.rs`, `hf_*_in`: every torch step the exact value formed with
//! `BigInt`s, rounded to f32, then to the dtype), not only GPU == CPU:
//!
//! - every one of the 65,536 f16 patterns as `x0` against edge `x1` values at angles chosen to
//!   hit each torch step's edges (cos/sin rounding to f16 ties, subnormals, zero and ±inf;
//!   products overflowing f16; exact cancellations), forward and inverse, interleaved and
//!   half-split: the CPU path (in place and out of place, on every core) and every GPU kernel
//!   that serves f16 `hf` (contiguous scalar, vec4, half-split vec4; the general kernel on
//!   words and on halves, in place, q and k in one dispatch);
//! - seeded random f32 bit patterns (specials, subnormals, near-cancellation) with tables
//!   holding random f32 bits, on a strided view large enough for the CPU path's threads:
//!   CPU and the GPU's general f32 modules (out of place, in place, q and k);
//! - and the exact mode's vectorised CPU heads (blocks of 8 pairs) against the exact oracle.
//!
//! 0 mismatches; every NaN is the dtype's canonical one (`0x7E00`, `0x7FC00000`).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::sync::OnceLock;

use bfrope::gpu::{Kernel, KernelKey};
use bfrope::{
    cpu, Direction, Dtype, Pairing, Positions, Precision, RopeCall, RopeShape, RopeTable,
    TensorView,
};
use common::oracle::{hf_mul_in, hf_pair_in, hf_sums_in, hf_table_in, F16, F32};
use common::record::gpu_views;
use common::rng;
use common::sweep::{self, par_map, Angle, PerDirection, Sweep, EDGE_X1_F16};
use rand::Rng;

// ---------------------------------------------------------------------------------------------
// The oracle itself, on hand-derived cases and against f64 where f64 is provably exact.

/// `(a, b, torch's a*b on f16 tensors)`, hand-derived.
#[rustfmt::skip]
const F16_MUL: &[(u16, u16, u16)] = &[
    (0x3C00, 0x3C00, 0x3C00), // 1·1 = 1
    (0x3C01, 0x3C01, 0x3C02), // (1+2^-10)^2 = 1 + 2^-9 + 2^-20: below the midpoint -> 1+2^-9
    (0x3C03, 0x3E00, 0x3E04), // (1+3·2^-10)·1.5 = 1.5 + 4.5·2^-10: tie between 1.5+2^-8 (even) and 1.5+5·2^-10 -> even
    (0x0001, 0x3800, 0x0000), // 2^-24 · 0.5: a tie between 0 and 2^-24 -> +0 (even)
    (0x0001, 0x3A00, 0x0001), // 2^-24 · 0.75 -> 2^-24
    (0x8001, 0x3800, 0x8000), // -2^-24 · 0.5 -> -0
    (0x7BFF, 0x4000, 0x7C00), // 65504 · 2 overflows to +inf
    (0x5BFF, 0x5BFF, 0x7BFE), // 255.875^2 = 65472 + 2^-6: f16 spacing 32 there, 65472 on the grid -> 65472
    (0x7C00, 0x0000, 0x7E00), // inf · 0 = NaN (canonical)
    (0xFC00, 0xBC00, 0x7C00), // -inf · -1 = +inf
    (0x8000, 0x3C00, 0x8000), // -0 · 1 = -0
];

#[test]
fn hf_oracle_f16_products() {
    for &(a, b, want) in F16_MUL {
        assert_eq!(
            hf_mul_in(F16, a as u64, b as u64),
            want as u64,
            "{a:#06x} * {b:#06x}"
        );
    }
}

#[test]
fn hf_oracle_f16_sums_and_table() {
    let add = |a: u16, b: u16| common::oracle::hf_add_in(F16, a as u64, b as u64) as u16;
    assert_eq!(add(0x3C00, 0xBC00), 0x0000); // 1 - 1 = +0
    assert_eq!(add(0x8000, 0x8000), 0x8000); // -0 + -0 = -0
    assert_eq!(add(0x7C00, 0xFC00), 0x7E00); // inf - inf = NaN
    assert_eq!(add(0x3C00, 0x1000), 0x3C00); // 1 + 2^-11: a tie -> 1 (even)
    assert_eq!(add(0x3C01, 0x1000), 0x3C02); // (1+2^-10) + 2^-11: a tie -> 1+2^-9 (even)
    assert_eq!(add(0x7BFF, 0x4C00), 0x7C00); // 65504 + 16 = 65520: the overflow tie -> inf
    assert_eq!(add(0x0400, 0x8001), 0x03FF); // min normal - min subnormal = max subnormal
                                             // cos/sin rounded to f16 first: 1 + 2^-11 ties to 1; 1 + 3·2^-11 ties up to 1 + 2^-9;
                                             // 65520 overflows to inf; 65519.996 stays 65504; an f32 subnormal becomes +0; −sin for
                                             // the inverse.
    let t = |c: f32, s: f32, inv: bool| {
        let (c, s) = hf_table_in(F16, c.to_bits(), s.to_bits(), inv);
        (c as u16, s as u16)
    };
    assert_eq!(t(1.0 + 2f32.powi(-11), 65520.0, false), (0x3C00, 0x7C00));
    assert_eq!(
        t(1.0 + 3.0 * 2f32.powi(-11), 65519.996, true),
        (0x3C02, 0xFBFF)
    );
    assert_eq!(t(1e-40, -0.0, false), (0x0000, 0x8000));
}

#[test]
fn hf_oracle_f32_steps() {
    let mul = |a: u32, b: u32| hf_mul_in(F32, a as u64, b as u64) as u32;
    let add = |a: u32, b: u32| common::oracle::hf_add_in(F32, a as u64, b as u64) as u32;
    // (1+2^-23)² = 1 + 2^-22 + 2^-46 -> 1 + 2^-22: the product is rounded before the sum.
    assert_eq!(mul(0x3F80_0001, 0x3F80_0001), 0x3F80_0002);
    // 1 + 2^-24: a tie -> 1; 1 + 2^-24·(1+2^-23) -> 1 + 2^-23.
    assert_eq!(add(0x3F80_0000, 0x3380_0000), 0x3F80_0000);
    assert_eq!(add(0x3F80_0000, 0x3380_0001), 0x3F80_0001);
    // Subnormal products kept (no flush): 2^-149 · 0.5 is a tie -> +0; 3·2^-149 · 0.5 -> 2·2^-149.
    assert_eq!(mul(1, 0x3F00_0000), 0);
    assert_eq!(mul(3, 0x3F00_0000), 2);
    assert_eq!(mul(0x7F7F_FFFF, 0x4000_0000), 0x7F80_0000);
    assert_eq!(mul(0x7F80_0000, 0), 0x7FC0_0000);
    // y0 = fl(fl(x0·c) + fl(−x1·s)) differs from the exact x0·c − x1·s: x0 = x1 = 1 + 2^-23,
    // c = 1 + 2^-23, s = 1: fl(x0·c) = 1 + 2^-22, so y0 = 2^-23 where the exact value is
    // 2^-23 + 2^-46.
    let (y0, _) = hf_pair_in(
        F32,
        0x3F80_0001,
        0x3F80_0001,
        0x3F80_0001,
        0x3F80_0000,
        false,
    );
    assert_eq!(y0, 0x3400_0000);
}

/// Normal f16 / f32 values whose products and sums are exact in f64: torch's steps are then
/// f64 products and sums with one rounding each (for f16 the f32 step of a sum cannot matter
/// here: the sum is exact in f32 too).
#[test]
fn hf_oracle_matches_f64_where_f64_is_exact() {
    let mut r = rng(0xF1F64);
    for _ in 0..20_000 {
        let h = |r: &mut rand_chacha::ChaCha8Rng| {
            let v: u16 = r.random_range(0x3000..0x5000);
            v | (r.random::<u16>() & 0x8000)
        };
        let (x0, x1) = (h(&mut r), h(&mut r));
        let (c, s): (f32, f32) = (r.random_range(-1.0..1.0), r.random_range(-1.0..1.0));
        let f = |b: u16| half::f16::from_bits(b).to_f64();
        let (cb, sb) = (half::f16::from_f32(c), half::f16::from_f32(s));
        let p = |a: f64, b: half::f16| half::f16::from_f64(a * b.to_f64()).to_f64();
        let y0 = half::f16::from_f64(p(f(x0), cb) + p(-f(x1), sb)).to_bits();
        let y1 = half::f16::from_f64(p(f(x1), cb) + p(f(x0), sb)).to_bits();
        let got = hf_pair_in(F16, x0 as u64, x1 as u64, c.to_bits(), s.to_bits(), false);
        assert_eq!(
            got,
            (y0 as u64, y1 as u64),
            "f16 {x0:#06x} {x1:#06x} {c} {s}"
        );

        let g = |r: &mut rand_chacha::ChaCha8Rng| -> f32 {
            let m: f32 = r.random_range(0.5..2.0);
            if r.random() {
                -m
            } else {
                m
            }
        };
        let (a, b) = (g(&mut r), g(&mut r));
        let q = |a: f32, b: f32| (a as f64 * b as f64) as f32;
        let y0 = (q(a, c) as f64 + q(-b, s) as f64) as f32;
        let y1 = (q(b, c) as f64 + q(a, s) as f64) as f32;
        let got = hf_pair_in(
            F32,
            a.to_bits() as u64,
            b.to_bits() as u64,
            c.to_bits(),
            s.to_bits(),
            false,
        );
        assert_eq!(
            got,
            (y0.to_bits() as u64, y1.to_bits() as u64),
            "f32 {a} {b} {c} {s}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// f16: every pattern against edge partners.

/// The table values, `(name, cos, sin)` f32: what their f16 roundings and products exercise.
fn angles() -> Vec<Angle> {
    let of = |name: &str, a: f64| (name.to_string(), a.cos() as f32, a.sin() as f32);
    let v = |name: &str, c: f32, s: f32| (name.to_string(), c, s);
    vec![
        // x·1 and x·0: the signed zeros of the products.
        v("angle=0", 1.0, 0.0),
        // c = s: x0·c − x1·s cancels exactly when x0 = x1 (+0).
        of("angle=pi/4", std::f64::consts::FRAC_PI_4),
        // cos(π/2) is a tiny f32 (6.1e-17) that rounds to f16 +0.
        of("angle=pi/2", std::f64::consts::FRAC_PI_2),
        of("pos=1e5,theta=1", 1e5),
        // cos a tie that rounds to even (1), sin 0.75·2⁻²⁴ rounding up to f16's smallest
        // subnormal: products in f16's subnormal range.
        v(
            "cos=tie_even,sin=0.75*2^-24",
            1.0 + 2f32.powi(-11),
            0.75 * 2f32.powi(-24),
        ),
        // cos a tie that rounds up (1 + 2⁻⁹); sin 65520 overflows to f16 inf: x·inf, 0·inf.
        v("cos=tie_up,sin=65520", 1.0 + 3.0 * 2f32.powi(-11), 65520.0),
        // sin just below the overflow tie stays 65504 (products overflow f16); cos an f32
        // subnormal that rounds to f16 +0.
        v("cos=1e-40,sin=-65519.99", 1e-40, -65519.99),
        v("angle=pi,sin=-0", -1.0, -0.0),
        // Attention scaling run wild: cos overflows f16 to inf, sin a plain value.
        v("cos=3e38,sin=0.3", 3.0e38, 0.3),
    ]
}

/// Every f16 `x0` × the edge partners and one seeded random one × the angles.
fn f16_cases() -> &'static Sweep {
    static CASES: OnceLock<Sweep> = OnceLock::new();
    CASES.get_or_init(|| Sweep::new(0x4F16, &EDGE_X1_F16, 1, angles()))
}

/// The oracle's output for the f16 cases (interleaved pairs), once per direction. The
/// products depend on one f16 operand and the angle's rounded cos or sin only, so the
/// oracle's `hf_mul_in` is evaluated once per (pattern, angle) and looked up; the sums are
/// the oracle's `hf_sums_in` per pair.
fn f16_expected(direction: Direction) -> &'static [u16] {
    static EXPECTED: PerDirection<Vec<u16>> = PerDirection::new();
    EXPECTED.get(direction, || {
        let c = f16_cases();
        let inverse = direction == Direction::Inverse;
        // products[a][0][x] = x·c, products[a][1][x] = x·s (torch's f16 products).
        let products: Vec<[Vec<u16>; 2]> = c
            .angles
            .iter()
            .map(|(_, cos, sin)| {
                let (cb, sb) = hf_table_in(F16, cos.to_bits(), sin.to_bits(), inverse);
                let row = |t: u64| par_map(65536, |x| hf_mul_in(F16, x as u64, t) as u16);
                [row(cb), row(sb)]
            })
            .collect();
        let pairs: Vec<[u16; 2]> = par_map(c.x.len() / 2, |w| {
            let [pc, ps] = &products[w / c.per_angle];
            let (x0, x1) = (c.x[2 * w] as usize, c.x[2 * w + 1] as usize);
            let (y0, y1) = hf_sums_in(
                F16,
                pc[x0] as u64,
                ps[x1 ^ 0x8000] as u64,
                pc[x1] as u64,
                ps[x0] as u64,
            );
            [y0 as u16, y1 as u16]
        });
        pairs.concat()
    })
}

/// Panics with the first mismatches (named by `name(pair index)`) unless `got == want`.
fn compare<T: PartialEq + Copy + std::fmt::LowerHex>(
    case: &str,
    got: &[T],
    want: &[T],
    name: impl Fn(usize) -> String,
) {
    sweep::compare(case, "hf oracle", got, want, name);
}

/// The name of pair `w` of the f16 cases.
fn f16_name(kernel: &str, direction: Direction) -> impl Fn(usize) -> String + use<'_> {
    move |w| f16_cases().name(w, &format!("f16,hf,{kernel},"), direction)
}

/// The f16 cases laid out in heads of `head_dim` with `pairing`: the call (BSHD
/// `[1, angles, heads, head_dim]`, angle `a` at table row `a`), its table, the data, and where
/// element `e` of the interleaved pair list lies in that data.
struct F16Layout {
    view: TensorView,
    table: RopeTable,
    x: Vec<u16>,
    place: Box<dyn Fn(usize) -> usize + Sync>,
}

fn f16_layout(head_dim: usize, pairing: Pairing) -> F16Layout {
    let c = f16_cases();
    let view = c.view(head_dim);
    let table = c.table(head_dim / 2);
    let place: Box<dyn Fn(usize) -> usize + Sync> = Box::new(Sweep::place(head_dim, pairing));
    let x = c.laid_out(head_dim, pairing);
    F16Layout {
        view,
        table,
        x,
        place,
    }
}

fn hf_call<'a>(
    view: TensorView,
    pairing: Pairing,
    direction: Direction,
    dtype: Dtype,
    positions: &'a Positions,
    table: &'a RopeTable,
) -> RopeCall<'a> {
    RopeCall::new(view, positions, table)
        .with_pairing(pairing)
        .with_direction(direction)
        .with_precision(Precision::Hf)
        .with_dtype(dtype)
}

/// The CPU path, on every core: out of place (read from the input, no copy) and in place,
/// interleaved (d = 2) and half-split (d = 16), both directions.
#[test]
fn hf_f16_cpu_every_pattern_interleaved_and_half_split() {
    let positions = Positions::Offset(0);
    for (head_dim, pairing) in [(2, Pairing::Interleaved), (16, Pairing::HalfSplit)] {
        let l = f16_layout(head_dim, pairing);
        for direction in [Direction::Forward, Direction::Inverse] {
            let call = hf_call(l.view, pairing, direction, Dtype::F16, &positions, &l.table);
            let out = cpu::apply(&call, &l.x).unwrap();
            let mut in_place = l.x.clone();
            cpu::apply_in_place(&call, &mut in_place).unwrap();
            assert!(out == in_place, "CPU hf f16: out of place vs in place");
            let got: Vec<u16> = (0..out.len()).map(|e| out[(l.place)(e)]).collect();
            compare(
                &format!("f16 hf CPU [{pairing:?},d={head_dim},{direction:?}]"),
                &got,
                f16_expected(direction),
                f16_name("cpu", direction),
            );
        }
    }
}

/// The contiguous kernels (`Gpu::apply` on a whole contiguous BSHD tensor): scalar (d = 2),
/// vec4 (d = 8), half-split vec4 (d = 16), each in one direction (the other direction runs
/// through the same code with the sign of sin flipped, and is covered on the CPU and by the
/// general kernel below).
#[test]
fn hf_f16_gpu_contiguous_kernels_every_pattern() {
    let Some(gpu) = common::gpu() else { return };
    let positions = Positions::Offset(0);
    #[rustfmt::skip]
    let kernels = [
        (2, Pairing::Interleaved, Kernel::Scalar, Direction::Forward),
        (8, Pairing::Interleaved, Kernel::Vec4, Direction::Inverse),
        (16, Pairing::HalfSplit, Kernel::Vec4Half, Direction::Forward),
    ];
    for (head_dim, pairing, kernel, direction) in kernels {
        let l = f16_layout(head_dim, pairing);
        let shape = RopeShape::from_dims(&l.view.dims).unwrap();
        let key = KernelKey::for_contiguous(&shape, pairing, Precision::Hf, Dtype::F16);
        assert_eq!(key.map(|k| k.kernel), Some(kernel));
        let call = hf_call(l.view, pairing, direction, Dtype::F16, &positions, &l.table);
        let out = gpu.apply_blocking(&call, &l.x).unwrap();
        let got: Vec<u16> = (0..out.len()).map(|e| out[(l.place)(e)]).collect();
        let name = format!("{kernel:?}").to_lowercase();
        compare(
            &format!("f16 hf GPU {name} kernel, {direction:?}"),
            &got,
            f16_expected(direction),
            f16_name(&name, direction),
        );
    }
}

/// The general kernel on f16 `hf` (`record` of a `ViewArgs`, which `Gpu::apply` takes when no
/// contiguous kernel does): half-split pairs on whole words (d = 4, two pairs per head: no
/// contiguous kernel takes it) out of place; q and k in one dispatch in place (k at an odd
/// offset, so the dispatch runs on 16-bit halves); one view in place on whole words. Both
/// directions across the runs (the halves entry out of place is checked against the CPU
/// path in tests/rotation/floats.rs).
#[test]
fn hf_f16_gpu_general_kernel_words_halves_in_place_q_and_k() {
    let Some(gpu) = common::gpu() else { return };
    let positions = Positions::Offset(0);

    let l = f16_layout(4, Pairing::HalfSplit);
    let shape = RopeShape::from_dims(&l.view.dims).unwrap();
    assert!(
        KernelKey::for_contiguous(&shape, Pairing::HalfSplit, Precision::Hf, Dtype::F16).is_none()
    );
    let direction = Direction::Inverse;
    let call = hf_call(
        l.view,
        Pairing::HalfSplit,
        direction,
        Dtype::F16,
        &positions,
        &l.table,
    );
    let out = gpu.apply_blocking(&call, &l.x).unwrap();
    let got: Vec<u16> = (0..out.len()).map(|e| out[(l.place)(e)]).collect();
    compare(
        "f16 hf GPU general words, half-split d=4, Inverse",
        &got,
        f16_expected(direction),
        f16_name("general_words", direction),
    );

    // q and k in one dispatch, in place: q the cases as they are, k the same after one
    // sentinel element (offset 1: the dispatch takes the 16-bit halves entry).
    let l = f16_layout(2, Pairing::Interleaved);
    let mut shifted = vec![0x1234u16];
    shifted.extend_from_slice(&l.x);
    let hf = |direction| {
        let call = hf_call(
            l.view,
            Pairing::Interleaved,
            direction,
            Dtype::F16,
            &positions,
            &l.table,
        );
        call.rotation
    };
    let direction = Direction::Forward;
    let (q, k) = gpu_views(
        &gpu,
        (&l.x, l.view),
        Some((&shifted, l.view.with_offset(1))),
        hf(direction),
        &positions,
        &l.table,
        true,
    );
    let k = k.unwrap();
    assert_eq!(k[0], 0x1234, "the element before k's view is left alone");
    compare(
        "f16 hf GPU general halves, in place, q, Forward",
        &q,
        f16_expected(direction),
        f16_name("general_halves_in_place_q", direction),
    );
    compare(
        "f16 hf GPU general halves, in place, k at offset 1, Forward",
        &k[1..],
        f16_expected(direction),
        f16_name("general_halves_in_place_k", direction),
    );
    // One view in place on whole words (interleaved d = 2 at offset 0).
    let direction = Direction::Inverse;
    let (q, _) = gpu_views(
        &gpu,
        (&l.x, l.view),
        None,
        hf(direction),
        &positions,
        &l.table,
        true,
    );
    compare(
        "f16 hf GPU general words, in place, Inverse",
        &q,
        f16_expected(direction),
        f16_name("general_words_in_place", direction),
    );
}

// ---------------------------------------------------------------------------------------------
// f32: random bit patterns on a strided view big enough for the CPU path's threads.

/// Seeded random f32 data: a third random bit patterns (NaN, inf, subnormal, huge), a
/// third small normal values, a third near cancellation (x1 ≈ x0·cos/sin of its pair's
/// angle is not known here, so x1 = x0 with a few low bits flipped: y0 = x0·(c − s)
/// cancels at angles near π/4), sprinkled with ±0, ±inf, NaN and subnormals.
fn f32_data(r: &mut impl Rng, len: usize) -> Vec<u32> {
    let mut x = Vec::with_capacity(len);
    while x.len() < len {
        let v: u32 = match r.random_range(0..3) {
            0 => r.random(),
            1 => r.random_range(-4.0f32..4.0).to_bits(),
            _ => match x.last() {
                Some(&p) => p ^ r.random_range(0..16u32),
                None => 0x3F80_0000,
            },
        };
        let special = [
            0,
            0x8000_0000,
            0x7F80_0000,
            0xFF80_0000,
            0x7FC0_0000,
            1,
            0x807F_FFFF,
        ];
        x.push(if r.random_range(0..50) == 0 {
            special[r.random_range(0..special.len())]
        } else {
            v
        });
    }
    x
}

/// A table of `rows × pairs`: mostly angles (some at π/4 for cancellations), some random f32
/// bit patterns, some subnormal and huge values.
fn f32_table(r: &mut impl Rng, rows: usize, pairs: usize) -> RopeTable {
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for _ in 0..rows * pairs {
        let (c, s) = match r.random_range(0..8) {
            0 => (f32::from_bits(r.random()), f32::from_bits(r.random())),
            1 => (f32::from_bits(r.random_range(1..0x0080_0000)), 3.0e38),
            2 => {
                let a = std::f64::consts::FRAC_PI_4;
                (a.cos() as f32, a.sin() as f32)
            }
            _ => {
                let a: f64 = r.random_range(-1e4..1e4);
                (a.cos() as f32, a.sin() as f32)
            }
        };
        cos.push(c);
        sin.push(s);
    }
    RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap()
}

/// The oracle on a view of `x` (f32 bits): everything outside the rotated dims unchanged.
#[allow(clippy::too_many_arguments)]
fn f32_oracle(
    x: &[u32],
    view: TensorView,
    pairing: Pairing,
    rotary_dim: usize,
    ids: &[usize],
    table: &RopeTable,
    inverse: bool,
) -> Vec<u32> {
    let [b, s, h, _] = view.dims;
    let pairs = rotary_dim / 2;
    let mut heads = Vec::new();
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                heads.push((
                    view.offset
                        + bi * view.strides[0]
                        + si * view.strides[1]
                        + hi * view.strides[2],
                    ids[bi * s + si],
                ));
            }
        }
    }
    let rotated: Vec<Vec<(usize, u32)>> = par_map(heads.len(), |k| {
        let (base, row) = heads[k];
        let mut out = Vec::with_capacity(2 * pairs);
        for i in 0..pairs {
            let (e0, e1) = match pairing {
                Pairing::Interleaved => (base + 2 * i, base + 2 * i + 1),
                Pairing::HalfSplit => (base + i, base + pairs + i),
            };
            let [c, sn] = table.get(row, i);
            let (y0, y1) = hf_pair_in(
                F32,
                x[e0] as u64,
                x[e1] as u64,
                c.to_bits(),
                sn.to_bits(),
                inverse,
            );
            out.push((e0, y0 as u32));
            out.push((e1, y1 as u32));
        }
        out
    });
    let mut y = x.to_vec();
    for (e, v) in rotated.into_iter().flatten() {
        y[e] = v;
    }
    y
}

/// f32 `hf`: a BHSD view `[2, 4, 1100, 128]` at an odd offset inside a larger buffer,
/// half-split over 96 of 128 dims, per-token positions (1.1 M elements: the CPU path splits
/// it over every core), and a BSHD interleaved view. CPU (in place and out of place) and the
/// GPU's general f32 modules (out of place with a sentinel outside the view, in place, q and
/// k in one dispatch) == the hf oracle, both directions.
#[test]
fn hf_f32_random_bits_strided_views_cpu_and_gpu() {
    let mut r = rng(0x4F32);
    let gpu = common::gpu();
    let rows = 61;
    #[rustfmt::skip]
    let cases = [
        (TensorView::bhsd(2, 4, 1100, 128).with_offset(3), Pairing::HalfSplit, 96, Direction::Forward),
        (TensorView::bshd(2, 40, 3, 16).with_offset(1), Pairing::Interleaved, 16, Direction::Inverse),
    ];
    for (view, pairing, rotary_dim, direction) in cases {
        let table = f32_table(&mut r, rows, rotary_dim / 2);
        let [b, s, ..] = view.dims;
        let ids: Vec<usize> = (0..b * s).map(|_| r.random_range(0..rows)).collect();
        let positions = Positions::PerToken(ids.clone());
        let len = view.span() + 5;
        let x = f32_data(&mut r, len);
        let call = hf_call(view, pairing, direction, Dtype::F32, &positions, &table)
            .with_rotary_dim(rotary_dim);
        let inverse = direction == Direction::Inverse;
        let want = f32_oracle(&x, view, pairing, rotary_dim, &ids, &table, inverse);
        let case = format!(
            "f32 hf [{:?},{pairing:?},rd={rotary_dim},{direction:?}]",
            view.dims
        );
        let at = |w: usize| format!("elements {} and {}", 2 * w, 2 * w + 1);
        let on_cpu = cpu::apply(&call, &x).unwrap();
        compare(&format!("{case} CPU"), &on_cpu, &want, at);
        let mut in_place = x.clone();
        cpu::apply_in_place(&call, &mut in_place).unwrap();
        compare(&format!("{case} CPU in place"), &in_place, &want, at);
        let Some(gpu) = &gpu else { continue };
        let out = gpu.apply_blocking(&call, &x).unwrap();
        compare(&format!("{case} GPU"), &out, &want, at);
        // Out of place through record of a ViewArgs: the sentinel outside the view.
        let mut inside = vec![false; len];
        let [_, _, h, d] = view.dims;
        for bi in 0..b {
            for si in 0..s {
                for hi in 0..h {
                    let st = view.head_start(bi, si, hi);
                    inside[st..st + d].iter_mut().for_each(|e| *e = true);
                }
            }
        }
        let sentinel: Vec<u32> = (0..len)
            .map(|e| if inside[e] { want[e] } else { 0xEEEE_EEEE })
            .collect();
        let (q, _) = gpu_views(
            gpu,
            (&x, view),
            None,
            call.rotation,
            &positions,
            &table,
            false,
        );
        compare(
            &format!("{case} GPU out of place, sentinel"),
            &q,
            &sentinel,
            at,
        );
        // q and k in place in one dispatch: k the same data and view (its own buffer).
        let (q, k) = gpu_views(
            gpu,
            (&x, view),
            Some((&x, view)),
            call.rotation,
            &positions,
            &table,
            true,
        );
        compare(&format!("{case} GPU in place, q"), &q, &want, at);
        compare(&format!("{case} GPU in place, k"), &k.unwrap(), &want, at);
    }
}

// ---------------------------------------------------------------------------------------------
// The exact mode's vectorised heads (blocks of 8 pairs) against the exact oracle.

/// The CPU path's exact f16/f32 heads of 128 dims (16 blocks of 8 pairs each way, plus a
/// rotary_dim of 120: a tail of 4 pairs after 7 blocks) on random bit patterns, values near
/// 1 and their neighbours (cancellations), tiny and huge values, with tables of angles and
/// random f32 bits, interleaved and half-split, both directions: == the BigInt oracle of the
/// contract (`oracle_pair_in`), which shares nothing with the blocks' proof.
#[test]
fn exact_f16_f32_vectorised_heads_match_the_oracle() {
    use common::oracle::oracle_pair_in;
    let mut r = rng(0xB10C);
    let (b, h, s, d) = (1usize, 4usize, 48usize, 128usize);
    let view = TensorView::bhsd(b, h, s, d);
    let n = view.span();
    for dtype in [Dtype::F16, Dtype::F32] {
        for (pairing, rotary_dim) in [(Pairing::Interleaved, 128), (Pairing::HalfSplit, 120)] {
            let pairs = rotary_dim / 2;
            let (cos, sin): (Vec<f32>, Vec<f32>) = (0..s * pairs)
                .map(|_| {
                    if r.random_range(0..16) == 0 {
                        (f32::from_bits(r.random()), f32::from_bits(r.random()))
                    } else {
                        let a: f64 = r.random_range(-1e4..1e4);
                        (a.cos() as f32, a.sin() as f32)
                    }
                })
                .unzip();
            let table = RopeTable::from_cos_sin(&cos, &sin, s, pairs).unwrap();
            let positions = Positions::Offset(0);
            let bits: Vec<u32> = match dtype {
                Dtype::F32 => f32_data(&mut r, n),
                _ => (0..n)
                    .map(|i| match i % 4 {
                        0 => r.random::<u16>() as u32,
                        1 => r.random_range(0x3800..0x4000u32) | (r.random::<u32>() & 0x8000),
                        _ => r.random_range(0x3B00..0x3C10u32),
                    })
                    .collect(),
            };
            let fmt = if dtype == Dtype::F16 { F16 } else { F32 };
            for direction in [Direction::Forward, Direction::Inverse] {
                let call = RopeCall::new(view, &positions, &table)
                    .with_pairing(pairing)
                    .with_rotary_dim(rotary_dim)
                    .with_direction(direction)
                    .with_dtype(dtype);
                let mut want = bits.clone();
                for bi in 0..b {
                    for si in 0..s {
                        for hi in 0..h {
                            let base = view.head_start(bi, si, hi);
                            for i in 0..pairs {
                                let (e0, e1) = match pairing {
                                    Pairing::Interleaved => (base + 2 * i, base + 2 * i + 1),
                                    Pairing::HalfSplit => (base + i, base + pairs + i),
                                };
                                let [c, sn] = table.get(si, i);
                                let inverse = direction == Direction::Inverse;
                                let (y0, y1) = oracle_pair_in(
                                    fmt,
                                    bits[e0] as u64,
                                    bits[e1] as u64,
                                    c.to_bits(),
                                    sn.to_bits(),
                                    inverse,
                                );
                                (want[e0], want[e1]) = (y0 as u32, y1 as u32);
                            }
                        }
                    }
                }
                let case = format!("exact {dtype} [{pairing:?},rd={rotary_dim},{direction:?}]");
                let at = |w: usize| format!("elements {} and {}", 2 * w, 2 * w + 1);
                let got: Vec<u32> = match dtype {
                    Dtype::F32 => cpu::apply(&call, &bits).unwrap(),
                    _ => {
                        let x: Vec<u16> = bits.iter().map(|&v| v as u16).collect();
                        let mut y = cpu::apply(&call, &x).unwrap();
                        let mut z = x.clone();
                        cpu::apply_in_place(&call, &mut z).unwrap();
                        assert_eq!(y, z, "{case}: out of place vs in place");
                        y.drain(..).map(u32::from).collect()
                    }
                };
                compare(&case, &got, &want, at);
            }
        }
    }
}
