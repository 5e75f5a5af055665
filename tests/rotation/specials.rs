//! Special values, exhaustively: every one of the 65,536 bf16 patterns as `x0` against a set
//! of edge `x1` values, at angles chosen to hit the edges of the arithmetic (identity, exact
//! quarter turn, large unreduced positions, a subnormal sin, a negative cos), forward and
//! inverse, on the GPU (exact kernel, both entry points) and on the CPU path: 0 mismatches
//! against the independent oracle, NaN exactly `0x7FC0`.
//!
//! All cases of one direction travel in one tensor, `[1, angles, heads, head_dim]`, whose
//! table row `a` holds angle `a` in every frequency, so each GPU run is one large dispatch.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::sync::OnceLock;

use bfrope::{cpu, Direction, Precision, RopeArgs, RopeShape, RopeTable};
use common::sweep::{compare, Angle, PerDirection, Sweep, EDGE_X1_BF16};
use common::{bshd_call, gpu, oracle_dot2, oracle_pair, rng};
use rand::Rng;
use wgpu::util::DeviceExt;

/// Seeded random `x1` patterns added to [`EDGE_X1_BF16`].
const RANDOM_X1: usize = 3;

/// The angles, as `(name, cos, sin)` f32 values.
fn angles() -> Vec<Angle> {
    let of = |name: &str, a: f64| (name.to_string(), a.cos() as f32, a.sin() as f32);
    vec![
        ("angle=0".to_string(), 1.0, 0.0),
        of("angle=pi/4", std::f64::consts::FRAC_PI_4),
        // cos(π/2) rounds to a tiny normal f32 (6.1e-17), not 0.
        of("angle=pi/2", std::f64::consts::FRAC_PI_2),
        of("angle=1rad", 1.0),
        // theta = 1: the angle is the position, cos/sin of the f64 angle rounded to f32.
        of("pos=1e5,theta=1", 1e5),
        of("pos=1e6,theta=1", 1e6),
        // A subnormal f32 sin (the kernel must not flush it) beside cos just below 1.
        (
            "tiny_sin=1e-40".to_string(),
            1.0 - f32::EPSILON / 2.0,
            1e-40,
        ),
        // Negative cos and positive sin; then an exact half turn with a negative zero sin.
        of("angle=2.5rad", 2.5),
        ("angle=pi,sin=-0".to_string(), -1.0, -0.0),
    ]
}

/// Every bf16 `x0` × the edge and random partners × the angles.
fn cases() -> &'static Sweep {
    static CASES: OnceLock<Sweep> = OnceLock::new();
    CASES.get_or_init(|| Sweep::new(0x5EC1A1, &EDGE_X1_BF16, RANDOM_X1, angles()))
}

/// The oracle's output for the whole tensor, computed once per direction on every core.
fn expected(direction: Direction) -> &'static [u16] {
    static EXPECTED: PerDirection<Vec<u16>> = PerDirection::new();
    EXPECTED.get(direction, || cases().expected(direction, oracle_pair))
}

fn shape_for(head_dim: usize) -> RopeShape {
    cases().shape(head_dim)
}

/// Row `a` holds angle `a` in each of the `pairs` frequencies.
fn table_for(pairs: usize) -> RopeTable {
    cases().table(pairs)
}

/// Compares `got` with the oracle; panics listing the first mismatches by their parameters.
fn check(case: &str, got: &[u16], direction: Direction) {
    let want = expected(direction);
    compare(case, "oracle", got, want, |w| {
        cases().name(w, "", direction)
    });
}

fn run_gpu(head_dim: usize, direction: Direction) {
    let Some(gpu) = gpu() else { return };
    let c = cases();
    let shape = shape_for(head_dim);
    let table = table_for(head_dim / 2);
    let t = std::time::Instant::now();
    let got = gpu
        .apply_blocking(&bshd_call(shape, &table, direction), &c.x)
        .unwrap();
    eprintln!("GPU {shape:?} {direction:?}: {:.2?}", t.elapsed());
    check(
        &format!("specials_gpu[d={head_dim},{direction:?},exact]"),
        &got,
        direction,
    );
}

#[test]
fn specials_gpu_scalar_kernel_d2_forward() {
    run_gpu(2, Direction::Forward);
}

#[test]
fn specials_gpu_scalar_kernel_d2_inverse() {
    run_gpu(2, Direction::Inverse);
}

#[test]
fn specials_gpu_vec4_kernel_d8_forward() {
    run_gpu(8, Direction::Forward);
}

#[test]
fn specials_gpu_vec4_kernel_d8_inverse() {
    run_gpu(8, Direction::Inverse);
}

/// The same cases recorded into our own encoder, with the output buffer pre-filled with the
/// sentinel `u32::MAX` (a NaN pattern the kernel never writes), proving every word is written.
#[test]
fn specials_gpu_record_sentinel_d8_forward_and_d2_inverse() {
    let Some(gpu) = gpu() else { return };
    let c = cases();
    for (head_dim, direction) in [(8usize, Direction::Forward), (2, Direction::Inverse)] {
        let shape = shape_for(head_dim);
        let table = table_for(head_dim / 2);
        let device = gpu.device();
        let storage = wgpu::BufferUsages::STORAGE;
        let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("specials input"),
            contents: bytemuck::cast_slice(&c.x),
            usage: storage,
        });
        let table_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("specials table"),
            contents: table.as_bytes(),
            usage: storage,
        });
        let sentinel = vec![u32::MAX; c.x.len() / 2];
        let output = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("specials output (sentinel)"),
            contents: bytemuck::cast_slice(&sentinel),
            usage: storage | wgpu::BufferUsages::COPY_SRC,
        });
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        gpu.kernels()
            .record(
                &mut encoder,
                &RopeArgs {
                    input: &input,
                    output: &output,
                    table: &table_buf,
                    table_rows: table.rows(),
                    row_offset: 0,
                    shape,
                    direction,
                    precision: Precision::Exact,
                    dtype: bfrope::Dtype::Bf16,
                    pairing: bfrope::Pairing::Interleaved,
                    table_in_range: table.in_fast_range(),
                },
            )
            .unwrap();
        let words =
            pollster::block_on(gpu.read_back(encoder, &output, (c.x.len() * 2) as u64)).unwrap();
        let unwritten = words.iter().filter(|&&w| w == u32::MAX).count();
        assert_eq!(
            unwritten, 0,
            "record[d={head_dim},{direction:?}]: {unwritten} words still hold the sentinel"
        );
        let got: &[u16] = bytemuck::cast_slice(&words);
        check(
            &format!("specials_gpu_record[d={head_dim},{direction:?},sentinel]"),
            got,
            direction,
        );
    }
}

#[test]
fn specials_cpu_d2_forward_and_d8_inverse() {
    let c = cases();
    for (head_dim, direction) in [(2usize, Direction::Forward), (8, Direction::Inverse)] {
        let shape = shape_for(head_dim);
        let table = table_for(head_dim / 2);
        let got = cpu::apply(&bshd_call(shape, &table, direction), &c.x).unwrap();
        check(
            &format!("specials_cpu[d={head_dim},{direction:?}]"),
            &got,
            direction,
        );
    }
}

/// `cpu::dot2` against the oracle on seeded random bit patterns: fully random bits, table-like
/// operands (|b|, |d| ≤ 1), and near-cancellations (c·d ≈ −a·b).
#[test]
fn specials_cpu_dot2_random_bits_3m() {
    let n_per_thread = 1_500_000usize;
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                s.spawn(move || {
                    let mut r = rng(0xD072 + t);
                    let mut count = 0;
                    let mut bad = Vec::new();
                    for i in 0..n_per_thread {
                        let a: u16 = r.random();
                        let mut c: u16 = r.random();
                        let (b, mut d): (u32, u32) = match i % 3 {
                            0 => (r.random(), r.random()),
                            1 => ((r.random::<u32>() % 0x3F80_0001) | (r.random::<u32>() & 0x8000_0000), r.random::<u32>() % 0x3F80_0001),
                            _ => {
                                let b: u32 = r.random::<u32>() % 0x3F80_0001;
                                (b, b)
                            }
                        };
                        if i % 3 == 2 {
                            // c ≈ −a with a nearby b: the products nearly cancel.
                            c = (a ^ 0x8000).wrapping_add(r.random_range(0..3)).wrapping_sub(1);
                            d = d.wrapping_add(r.random_range(0..64)).wrapping_sub(32);
                        }
                        let want = oracle_dot2(a, b, c, d);
                        let got = cpu::dot2(a, f32::from_bits(b), c, f32::from_bits(d));
                        if got != want {
                            count += 1;
                            if bad.len() < 8 {
                                bad.push(format!("dot2({a:#06x}, {b:#010x}, {c:#06x}, {d:#010x}) = {got:#06x}, oracle {want:#06x}"));
                            }
                        }
                    }
                    (count, bad)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count: usize = results.iter().map(|r| r.0).sum();
    let bad: Vec<String> = results.into_iter().flat_map(|r| r.1).collect();
    eprintln!(
        "specials_cpu_dot2[random,n={}]: {count} mismatches",
        2 * n_per_thread
    );
    assert!(count == 0, "{count} mismatches, first:\n{}", bad.join("\n"));
}

/// Tables may hold NaN, infinities, zeros, subnormals and huge values (a user's table, a
/// scaling gone wrong): the contract's IEEE rules apply to them as to `x` (NaN in → NaN
/// out, inf·0 → NaN, inf − inf → NaN), on both kernels and the CPU path, against the oracle.
#[test]
fn specials_non_finite_tables_follow_the_contract() {
    #[rustfmt::skip]
    let table_values: [u32; 12] = [
        0x7FC0_0000, 0x7F80_0001, 0xFFC0_0000, // NaNs, one with a payload, one negative
        0x7F80_0000, 0xFF80_0000,              // ±inf
        0x0000_0000, 0x8000_0000,              // ±0
        0x3F80_0000, 0x3F00_0000,              // 1, 0.5
        0x7F7F_FFFF, 0x0000_0001, 0xBF35_04F3, // max finite, min subnormal, -cos(π/4)
    ];
    let xs: Vec<u16> = EDGE_X1_BF16.iter().map(|&(b, _)| b).collect();
    let mut pair_x = Vec::new();
    for &a in &xs {
        for &b in &xs {
            pair_x.extend_from_slice(&[a, b]);
        }
    }
    let combos: Vec<(u32, u32)> = table_values
        .iter()
        .flat_map(|&c| table_values.iter().map(move |&s| (c, s)))
        .collect();
    // One more pair makes the scalar kernel's shape (pairs per head not a multiple of 4).
    for extra in [0usize, 1] {
        let mut head = pair_x.clone();
        head.extend(std::iter::repeat_n(0x3F80u16, 2 * extra));
        let pairs = head.len() / 2;
        let shape = RopeShape::new(1, combos.len(), 1, head.len()).unwrap();
        let x: Vec<u16> = (0..combos.len())
            .flat_map(|_| head.iter().copied())
            .collect();
        let cos: Vec<f32> = combos
            .iter()
            .flat_map(|&(c, _)| std::iter::repeat_n(f32::from_bits(c), pairs))
            .collect();
        let sin: Vec<f32> = combos
            .iter()
            .flat_map(|&(_, s)| std::iter::repeat_n(f32::from_bits(s), pairs))
            .collect();
        let table = RopeTable::from_cos_sin(&cos, &sin, combos.len(), pairs).unwrap();
        for direction in [Direction::Forward, Direction::Inverse] {
            let want = common::oracle_rotate(
                &x,
                shape.dims(),
                |r, _| combos[r],
                0,
                direction == Direction::Inverse,
            );
            let call = bshd_call(shape, &table, direction);
            let on_cpu = cpu::apply(&call, &x).unwrap();
            let bad = on_cpu.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                bad, 0,
                "CPU path, pairs {pairs}, {direction:?}: {bad} mismatches"
            );
            if let Some(g) = gpu() {
                let got = g.apply_blocking(&call, &x).unwrap();
                let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(
                    bad, 0,
                    "GPU, pairs {pairs}, {direction:?}: {bad} mismatches"
                );
            }
        }
    }
}
