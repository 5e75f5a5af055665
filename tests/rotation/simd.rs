//! The CPU path's vectorised blocks (`src/cpu/simd.rs`, in place and from a source into a new
//! buffer) against the exact scalar reference
//! (`cpu::rotate_pair`, pair by pair) and the independent oracle: every one of the 65,536 bf16
//! patterns as `x0` against edge `x1` values and edge table values, seeded random bit patterns,
//! outputs constructed on and just beside bf16 midpoints (where the fast lanes must defer to
//! the fallback), subnormal results and overflow. Three answers, one set of bits.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::{cpu, Direction, RopeShape, RopeTable};
use common::{oracle_pair, rng};
use rand::Rng;

/// The `x1` partners of every `x0` pattern (tests/rotation/specials.rs has the same list).
#[rustfmt::skip]
const EDGE_X1: [u16; 13] = [
    0x0000, 0x8000,         // ±0
    0x3F80, 0xBF80,         // ±1
    0x0001, 0x8001,         // ±min subnormal
    0x007F, 0x0080,         // max subnormal, min normal
    0x7F7F,                 // max finite
    0x7F80, 0xFF80,         // ±inf
    0x7FC0, 0xFFA5,         // NaN, a negative NaN with a payload
];

/// Table values `(cos, sin, what)` that push results to the edges: identity, a quarter
/// turn, a large position, tiny values (subnormal results, a subnormal f32 table value),
/// huge ones (overflow), a negative half turn, and an infinite table value.
#[rustfmt::skip]
fn edge_tables() -> Vec<(f32, f32, &'static str)> {
    let a = 1e6f64;
    vec![
        (1.0, 0.0, "identity"),
        (std::f32::consts::FRAC_1_SQRT_2, std::f32::consts::FRAC_1_SQRT_2, "pi/4"),
        (a.cos() as f32, a.sin() as f32, "pos=1e6"),
        (1.5e-38, -3.0e-39, "tiny,subnormal_sin"),
        (0.75, 1e-40, "subnormal_sin"),
        (3.0e38, -1.7e38, "huge"),
        (-1.0, -0.0, "pi,sin=-0"),
        (f32::INFINITY, 0.5, "inf_cos"),
    ]
}

/// Rotates `x` (`[1, rows, heads, head_dim]`, row `r` at table row `r`) three ways — the CPU
/// path (its blocks), `rotate_pair` pair by pair, the oracle — and asserts one answer.
fn three_ways(case: &str, x: &[u16], shape: RopeShape, table: &RopeTable) {
    let [_, rows, _, head_dim] = shape.dims();
    let per_row = x.len() / rows;
    for direction in [Direction::Forward, Direction::Inverse] {
        let call = common::bshd_call(shape, table, direction);
        let fast = cpu::apply(&call, x).unwrap();
        let mut in_place = x.to_vec();
        cpu::apply_in_place(&call, &mut in_place).unwrap();
        let differ = fast.iter().zip(&in_place).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{case}[{direction:?}]: apply vs apply_in_place");
        // The reference and the oracle, on every core.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = x.len().div_ceil(threads * head_dim) * head_dim;
        let bad: Vec<(usize, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = x
                .chunks(chunk)
                .zip(fast.chunks(chunk))
                .enumerate()
                .map(|(k, (xs, ys))| {
                    s.spawn(move || {
                        let mut count = 0;
                        let mut first = String::new();
                        for (j, (p, y)) in xs.chunks_exact(2).zip(ys.chunks_exact(2)).enumerate() {
                            let at = k * chunk + 2 * j;
                            let [c, sn] = table.get(at / per_row, (at % head_dim) / 2);
                            let scalar = cpu::rotate_pair(p[0], p[1], c, sn, direction);
                            let exact = oracle_pair(
                                p[0],
                                p[1],
                                c.to_bits(),
                                sn.to_bits(),
                                direction == Direction::Inverse,
                            );
                            if (y[0], y[1]) != scalar || scalar != exact {
                                count += 1;
                                if first.is_empty() {
                                    first = format!(
                                        "rope[x0={:#06x},x1={:#06x},cos={c:e},sin={sn:e},{direction:?}]: \
                                         blocks ({:#06x}, {:#06x}), rotate_pair ({:#06x}, {:#06x}), \
                                         oracle ({:#06x}, {:#06x})",
                                        p[0], p[1], y[0], y[1], scalar.0, scalar.1, exact.0, exact.1
                                    );
                                }
                            }
                        }
                        (count, first)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let count: usize = bad.iter().map(|b| b.0).sum();
        eprintln!(
            "{case}[{direction:?}]: {count} mismatching pairs of {}",
            x.len() / 2
        );
        let first: Vec<&str> = bad
            .iter()
            .filter(|b| b.0 > 0)
            .map(|b| b.1.as_str())
            .collect();
        assert!(
            count == 0,
            "{case}: {count} mismatches, first:\n{}",
            first.join("\n")
        );
    }
}

/// A table whose row `r` holds `(cos[r], sin[r])` in every frequency.
fn rows_table(values: &[(f32, f32)], pairs: usize) -> RopeTable {
    let cos: Vec<f32> = values
        .iter()
        .flat_map(|v| std::iter::repeat_n(v.0, pairs))
        .collect();
    let sin: Vec<f32> = values
        .iter()
        .flat_map(|v| std::iter::repeat_n(v.1, pairs))
        .collect();
    RopeTable::from_cos_sin(&cos, &sin, values.len(), pairs).unwrap()
}

#[test]
fn cpu_simd_all_x0_against_edge_x1_and_tables() {
    let mut r = rng(0x51D0);
    let mut x1s: Vec<u16> = EDGE_X1.to_vec();
    x1s.extend((0..2).map(|_| r.random::<u16>()));
    let tables = edge_tables();
    let head_dim = 128;
    let mut row = Vec::with_capacity(2 * 65536 * x1s.len());
    for &x1 in &x1s {
        for x0 in 0..=u16::MAX {
            row.extend_from_slice(&[x0, x1]);
        }
    }
    let x: Vec<u16> = tables.iter().flat_map(|_| row.iter().copied()).collect();
    let shape = RopeShape::new(1, tables.len(), row.len() / head_dim, head_dim).unwrap();
    let values: Vec<(f32, f32)> = tables.iter().map(|t| (t.0, t.1)).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.2).collect();
    three_ways(
        &format!("cpu_simd[all_x0,x1=edges,tables={names:?},d={head_dim}]"),
        &x,
        shape,
        &rows_table(&values, head_dim / 2),
    );
}

/// Random bits everywhere, head dims that leave a tail after the blocks of eight pairs (2, 26,
/// 130) and that do not (16, 128).
#[test]
fn cpu_simd_random_bits() {
    let mut r = rng(0x51D1);
    for head_dim in [2usize, 16, 26, 128, 130] {
        let rows = 64;
        let heads = 4096 / head_dim + 1;
        let x: Vec<u16> = (0..rows * heads * head_dim).map(|_| r.random()).collect();
        let pairs = head_dim / 2;
        let cos: Vec<f32> = (0..rows * pairs)
            .map(|_| f32::from_bits(r.random()))
            .collect();
        let sin: Vec<f32> = (0..rows * pairs)
            .map(|_| f32::from_bits(r.random()))
            .collect();
        let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
        let shape = RopeShape::new(1, rows, heads, head_dim).unwrap();
        three_ways(
            &format!("cpu_simd[random_bits,d={head_dim}]"),
            &x,
            shape,
            &table,
        );
    }
}

/// Realistic data: bf16 activations of moderate size, an exact-angle table; and the same with
/// table-like values scaled so that results fall among the subnormals or overflow.
#[test]
fn cpu_simd_subnormal_results_and_overflow() {
    let mut r = rng(0x51D2);
    let head_dim = 128;
    let (rows, heads) = (64, 16);
    let pairs = head_dim / 2;
    for (what, scale, x_exp) in [
        ("subnormal_results", 2f32.powi(-120), -8..8),
        ("deep_subnormal_results", 2f32.powi(-126), -20..-2),
        ("overflow", 2f32.powi(120), 0..9),
    ] {
        let x: Vec<u16> = (0..rows * heads * head_dim)
            .map(|_| {
                let e = (127 + r.random_range(x_exp.clone())) as u16;
                (r.random::<u16>() & 0x807F) | (e << 7)
            })
            .collect();
        let angles: Vec<f64> = (0..rows * pairs).map(|_| r.random::<f64>() * 7.0).collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos() as f32 * scale).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin() as f32 * scale).collect();
        let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
        let shape = RopeShape::new(1, rows, heads, head_dim).unwrap();
        let y = cpu::apply(&common::bshd_call(shape, &table, Direction::Forward), &x).unwrap();
        // The case must reach what it is named for.
        let hits = y
            .iter()
            .filter(|&&h| match what {
                "overflow" => h & 0x7FFF == 0x7F80,
                _ => h & 0x7F80 == 0 && h & 0x7F != 0,
            })
            .count();
        assert!(
            hits > y.len() / 50,
            "{what}: only {hits} of {} outputs are {what}",
            y.len()
        );
        three_ways(&format!("cpu_simd[{what},d={head_dim}]"), &x, shape, &table);
    }
}

/// Whether the f64 sum `r` lies on a bf16 midpoint of the normal range (what the fast lanes
/// flag): its 45 dropped fraction bits are `10…0`.
fn on_midpoint(r: f64) -> bool {
    r.to_bits() & ((1 << 45) - 1) == 1 << 44
}

/// `y0 = x0·c − x1·s` built to land exactly on a bf16 midpoint `m` plus a perturbation
/// `x1·s ≈ ±ulp(m)·2^−j`, `j` from 0 to 80 (and 0 itself): far enough that the f64 sum
/// stays beside the midpoint (decided by the fast lanes) and so near that it rounds onto it
/// (undecided: the fallback's TwoSum picks the side). The same with the roles of `y0` and
/// `y1` swapped, and midpoints among the subnormals and at the overflow threshold.
#[test]
fn cpu_simd_near_midpoints() {
    let mut r = rng(0x51D3);
    let head_dim = 16;
    let pairs = head_dim / 2;
    let mut x = Vec::new();
    let mut table = Vec::new();
    let (mut onto, mut beside) = (0usize, 0usize);
    let mut add = |x0: u16, x1: u16, c: f32, s: f32, x: &mut Vec<u16>, t: &mut Vec<(f32, f32)>| {
        let sum0 = f32::from_bits((x0 as u32) << 16) as f64 * c as f64
            - f32::from_bits((x1 as u32) << 16) as f64 * s as f64;
        let sum1 = f32::from_bits((x0 as u32) << 16) as f64 * s as f64
            + f32::from_bits((x1 as u32) << 16) as f64 * c as f64;
        for v in [sum0, sum1] {
            if on_midpoint(v) {
                onto += 1;
            } else {
                beside += 1;
            }
        }
        x.extend_from_slice(&[x0, x1]);
        t.push((c, s));
    };
    let bf16_of = |v: f64| -> u16 { ((v as f32).to_bits() >> 16) as u16 };
    for n in 0..40_000 {
        // The midpoint: 9 significant bits, the last one set.
        let sig = (256 + 2 * r.random_range(0..128u32) + 1) as f64;
        let (m, ulp) = match n % 20 {
            // Among the subnormals: (2k + 1)·2^−134.
            0 => {
                let k = r.random_range(0..128u32) as f64;
                ((2.0 * k + 1.0) * 2f64.powi(-134), 2f64.powi(-133))
            }
            // The overflow threshold 2^128 − 2^119.
            1 => (2f64.powi(128) - 2f64.powi(119), 2f64.powi(120)),
            _ => {
                let e = r.random_range(-126..128i32);
                (sig * 2f64.powi(e - 8), 2f64.powi(e - 7))
            }
        };
        let m = if r.random() { m } else { -m };
        // x0 a power of two, c = m / x0 an f32 (9 bits): draw until m / x0 is one.
        let (x0, main) = loop {
            let k = r.random_range(-20..20i32);
            let main = (m / 2f64.powi(k)) as f32;
            if main as f64 * 2f64.powi(k) == m {
                break (bf16_of(2f64.powi(k)), main);
            }
        };
        let j = r.random_range(0..=81i32);
        let delta = if j == 81 {
            0.0
        } else {
            ulp * 2f64.powi(-j) * if r.random() { 1.0 } else { -1.0 }
        };
        // x1 of random significand, sized so that delta / x1 is a normal f32 near 1.
        let x1 = if delta == 0.0 {
            r.random::<u16>()
        } else {
            let e = (delta.abs().log2().floor() as i32 + r.random_range(-8..8)).clamp(-126, 127);
            (((r.random::<u16>() & 0x7F) as u32) | (((e + 127) as u32) << 7)) as u16
                | if delta < 0.0 { 0x8000 } else { 0 }
        };
        let partner = if delta == 0.0 {
            0.0
        } else {
            (delta / f32::from_bits((x1 as u32) << 16) as f64) as f32
        };
        if !partner.is_finite() {
            continue;
        }
        if n % 2 == 0 {
            // y0 = x0·main − x1·partner = m − delta (delta's sign is random).
            add(x0, x1, main, partner, &mut x, &mut table);
        } else {
            // y1 = x0·s + x1·c with s = main, c = partner.
            add(x0, x1, partner, main, &mut x, &mut table);
        }
    }
    assert!(
        onto > 5_000 && beside > 5_000,
        "the construction must reach both sides: {onto} f64 sums on a midpoint, {beside} beside"
    );
    eprintln!("cpu_simd[near_midpoints]: {onto} f64 sums on a midpoint, {beside} beside");
    // Every pair has its own (cos, sin): heads of eight pairs (one block), one head per
    // table row, the row holding the eight pairs' values.
    let cases = table.len() / pairs * pairs;
    x.truncate(2 * cases);
    table.truncate(cases);
    let rows = cases / pairs;
    let shape = RopeShape::new(1, rows, 1, head_dim).unwrap();
    let t = RopeTable::from_cos_sin(
        &table.iter().map(|v| v.0).collect::<Vec<_>>(),
        &table.iter().map(|v| v.1).collect::<Vec<_>>(),
        rows,
        pairs,
    )
    .unwrap();
    three_ways("cpu_simd[near_midpoints,d=16]", &x, shape, &t);
}

/// Checks `y` (the CPU path's answer for `call` on `x`) pair by pair against `rotate_pair`
/// and the oracle, on every core; `case` names the first mismatch.
fn check_view_pairs(case: &str, call: &bfrope::RopeCall, x: &[u16], y: &[u16]) {
    let v = call.view;
    let pairs = call.rotation.pairs();
    let direction = call.rotation.direction;
    let [nb, ns, nh, _] = v.dims;
    let heads: Vec<(usize, usize, usize)> = (0..nb)
        .flat_map(|b| (0..ns).flat_map(move |s| (0..nh).map(move |h| (b, s, h))))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<(usize, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = heads
            .chunks(heads.len().div_ceil(threads))
            .map(|part| {
                scope.spawn(move || {
                    let (mut count, mut first) = (0usize, String::new());
                    for &(b, s, h) in part {
                        let head = v.head_start(b, s, h);
                        let row = call.positions.row(b, s, ns);
                        for i in 0..pairs {
                            let (e0, e1) = call.rotation.pairing.elements(i, pairs);
                            let (x0, x1) = (x[head + e0], x[head + e1]);
                            let [c, sn] = call.table.get(row, i);
                            let scalar = cpu::rotate_pair(x0, x1, c, sn, direction);
                            let exact = oracle_pair(
                                x0,
                                x1,
                                c.to_bits(),
                                sn.to_bits(),
                                direction == Direction::Inverse,
                            );
                            let got = (y[head + e0], y[head + e1]);
                            if got != scalar || scalar != exact {
                                count += 1;
                                if first.is_empty() {
                                    first = format!(
                                        "rope[x0={x0:#06x},x1={x1:#06x},cos={c:e},sin={sn:e},{direction:?}] at head ({b},{s},{h}) pair {i}: \
                                         CPU path {got:04x?}, rotate_pair {scalar:04x?}, oracle {exact:04x?}"
                                    );
                                }
                            }
                        }
                    }
                    (count, first)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count: usize = results.iter().map(|r| r.0).sum();
    let first: Vec<&str> = results
        .iter()
        .filter(|r| r.0 > 0)
        .map(|r| r.1.as_str())
        .collect();
    assert!(
        count == 0,
        "{case}: {count} mismatches, first:\n{}",
        first.join("\n")
    );
    // Elements outside the rotated dims are untouched.
    let mut rotated = vec![false; x.len()];
    for b in 0..nb {
        for s in 0..ns {
            for h in 0..nh {
                let head = v.head_start(b, s, h);
                rotated[head..head + 2 * pairs]
                    .iter_mut()
                    .for_each(|e| *e = true);
            }
        }
    }
    let moved = (0..x.len())
        .filter(|&e| !rotated[e] && x[e] != y[e])
        .count();
    assert_eq!(
        moved, 0,
        "{case}: elements outside the rotated dims changed"
    );
}

/// Half-split pairs through the general loop's vectorised halves (`simd::rotate_halves`,
/// threaded over the heads of a BHSD view): every one of the 65,536 bf16 patterns as `x0`
/// against the edge `x1` values, under every edge table, forward and inverse; CPU path ==
/// `rotate_pair` == oracle.
#[test]
fn cpu_simd_half_split_all_x0_against_edge_x1_and_tables() {
    let head_dim = 128;
    let pairs = head_dim / 2;
    let tables = edge_tables();
    let values: Vec<(f32, f32)> = tables.iter().map(|t| (t.0, t.1)).collect();
    let table = rows_table(&values, pairs);
    let all: Vec<(u16, u16)> = EDGE_X1
        .iter()
        .flat_map(|&x1| (0..=u16::MAX).map(move |x0| (x0, x1)))
        .collect();
    let heads = all.len() / pairs;
    // BHSD [1, heads, tables, head_dim]: token s (table row s) of every head holds the pairs.
    let view = bfrope::TensorView::bhsd(1, heads, tables.len(), head_dim);
    let mut x = vec![0u16; view.span()];
    for s in 0..tables.len() {
        for (h, run) in all.chunks_exact(pairs).enumerate() {
            let at = view.head_start(0, s, h);
            for (i, &(x0, x1)) in run.iter().enumerate() {
                x[at + i] = x0;
                x[at + pairs + i] = x1;
            }
        }
    }
    let positions = bfrope::Positions::Offset(0);
    for direction in [Direction::Forward, Direction::Inverse] {
        let call = bfrope::RopeCall::new(view, &positions, &table)
            .with_pairing(bfrope::Pairing::HalfSplit)
            .with_direction(direction);
        let y = cpu::apply(&call, &x).unwrap();
        check_view_pairs(
            &format!("cpu_simd[half,bhsd,all_x0,x1=edges,d={head_dim},{direction:?}]"),
            &call,
            &x,
            &y,
        );
    }
}

/// Random bits through the threaded general loop: half-split and interleaved, rotary_dim
/// with and without a tail after the blocks of eight pairs, partial rotary, BHSD and padded
/// strided views at odd offsets with per-batch and per-token positions, each large enough to
/// be threaded (and with an outer dim that does not divide among the workers).
#[test]
fn cpu_simd_general_views_random_bits() {
    let mut r = rng(0x51D4);
    let pad_strided = |dims: [usize; 4], pad: usize, offset: usize| {
        let [_, s, h, d] = dims;
        let sh = d + pad;
        bfrope::TensorView {
            dims,
            strides: [s * (h * sh + 3) + 7, h * sh + 3, sh],
            offset,
        }
    };
    #[rustfmt::skip]
    let cases: Vec<(bfrope::TensorView, bfrope::Pairing, usize)> = vec![
        (bfrope::TensorView::bhsd(3, 5, 700, 130), bfrope::Pairing::HalfSplit, 130),
        (bfrope::TensorView::bhsd(1, 3, 4000, 128), bfrope::Pairing::HalfSplit, 96),
        (pad_strided([3, 600, 5, 128], 6, 11), bfrope::Pairing::HalfSplit, 26),
        (pad_strided([1, 900, 9, 130], 2, 1), bfrope::Pairing::Interleaved, 130),
    ];
    for (k, (view, pairing, rotary_dim)) in cases.into_iter().enumerate() {
        let [b, s, _, _] = view.dims;
        let pairs = rotary_dim / 2;
        let rows = 2 * s + 5;
        let cos: Vec<f32> = (0..rows * pairs)
            .map(|_| f32::from_bits(r.random()))
            .collect();
        let sin: Vec<f32> = (0..rows * pairs)
            .map(|_| f32::from_bits(r.random()))
            .collect();
        let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
        let positions = if k % 2 == 0 {
            bfrope::Positions::PerBatch((0..b).map(|i| (i * 3) % (s + 5)).collect())
        } else {
            bfrope::Positions::PerToken((0..b * s).map(|_| r.random_range(0..rows)).collect())
        };
        let x: Vec<u16> = (0..view.span() + 3).map(|_| r.random()).collect();
        assert!(
            x.len() >= 1 << 20,
            "case {k} is large enough to be threaded"
        );
        for direction in [Direction::Forward, Direction::Inverse] {
            let call = bfrope::RopeCall::new(view, &positions, &table)
                .with_pairing(pairing)
                .with_rotary_dim(rotary_dim)
                .with_direction(direction);
            let y = cpu::apply(&call, &x).unwrap();
            check_view_pairs(
                &format!("cpu_simd[general,{view:?},{pairing:?},r={rotary_dim},{direction:?}]"),
                &call,
                &x,
                &y,
            );
        }
    }
}
