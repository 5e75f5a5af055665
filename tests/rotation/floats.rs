//! f16 and f32 tensors: the CPU path against the independent oracle, bit for bit.
//!
//! - every one of the 65,536 f16 patterns as `x0` against edge `x1` values at angles chosen to
//!   hit the edges of the arithmetic (identity, quarter turn, large positions, subnormal and
//!   huge table values), forward and inverse;
//! - random f32 bit patterns (specials and subnormals included) with random and edge tables;
//! - near-cancellation (`x1 ≈ x0·cos/sin`, so `y0` cancels almost completely) in f16 and f32;
//! - a general view (BHSD, half-split pairs over part of the head, per-token positions).
//!
//! 0 mismatches; every NaN is the canonical `0x7E00` / `0x7FC00000` (the oracle's).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::sync::OnceLock;

use bfrope::cpu;
use bfrope::{
    Direction, Dtype, Pairing, Positions, Precision, RopeCall, RopeTable, Rotation, TensorView,
};
use common::oracle::{oracle_pair_f16, oracle_pair_f32};
use common::record::gpu_view;
use common::rng;
use common::sweep::{self, par_map, Angle, PerDirection, Sweep, EDGE_X1_F16};
use rand::Rng;

/// Seeded random `x1` patterns added to [`EDGE_X1_F16`].
const RANDOM_X1: usize = 2;

/// The angles, as `(name, cos, sin)` f32 values: the table's edges included.
fn angles() -> Vec<Angle> {
    let of = |name: &str, a: f64| (name.to_string(), a.cos() as f32, a.sin() as f32);
    vec![
        ("angle=0".to_string(), 1.0, 0.0),
        of("angle=pi/4", std::f64::consts::FRAC_PI_4),
        // cos(π/2) rounds to a tiny normal f32 (6.1e-17), not 0.
        of("angle=pi/2", std::f64::consts::FRAC_PI_2),
        of("pos=1e5,theta=1", 1e5),
        of("angle=2.5rad", 2.5),
        // A subnormal sin (no flush) beside cos just below 1.
        (
            "tiny_sin=1e-40".to_string(),
            1.0 - f32::EPSILON / 2.0,
            1e-40,
        ),
        ("angle=pi,sin=-0".to_string(), -1.0, -0.0),
        // Huge table values (attention scaling run wild): products overflow f16, not f64.
        ("huge=3e38,-1e30".to_string(), 3.0e38, -1.0e30),
        // The smallest subnormal and the smallest normal f32: products far below f16's grid.
        (
            "tiny=min_sub,min_normal".to_string(),
            f32::from_bits(1),
            f32::MIN_POSITIVE,
        ),
        // A table value that makes exact f16 midpoints (1 + 2⁻¹¹) and 0.5.
        ("mid=1+2^-11,0.5".to_string(), 1.0 + 2f32.powi(-11), 0.5),
    ]
}

/// All 65,536 f16 `x0` × the `x1` partners × the angles, as one `[1, angles, heads, 2]` view.
fn f16_cases() -> &'static Sweep {
    static CASES: OnceLock<Sweep> = OnceLock::new();
    CASES.get_or_init(|| Sweep::new(0xF16, &EDGE_X1_F16, RANDOM_X1, angles()))
}

/// Panics with the first mismatches (named by `name(pair index)`) unless `got == want`.
fn compare<T: PartialEq + Copy + std::fmt::LowerHex>(
    case: &str,
    got: &[T],
    want: &[T],
    name: impl Fn(usize) -> String,
) {
    sweep::compare(case, "oracle", got, want, name);
}

/// The oracle's output for the exhaustive f16 tensor, computed once per direction.
fn f16_expected(direction: Direction) -> &'static [u16] {
    static EXPECTED: PerDirection<Vec<u16>> = PerDirection::new();
    EXPECTED.get(direction, || {
        f16_cases().expected(direction, oracle_pair_f16)
    })
}

fn f16_exhaustive(direction: Direction) {
    let c = f16_cases();
    let table = c.table(1);
    let positions = Positions::Offset(0);
    let mut rotation = Rotation::new(2);
    rotation.direction = direction;
    let call = RopeCall {
        view: c.view(2),
        rotation,
        positions: &positions,
        table: &table,
    };
    let mut got = c.x.clone();
    cpu::apply_in_place(&call.with_dtype(Dtype::F16), &mut got).unwrap();
    let want = f16_expected(direction);
    compare(
        &format!("f16 all patterns, {direction:?}"),
        &got,
        want,
        |w| c.name(w, "f16,", direction),
    );
}

#[test]
fn f16_every_pattern_against_edge_partners_forward() {
    f16_exhaustive(Direction::Forward);
}

#[test]
fn f16_every_pattern_against_edge_partners_inverse() {
    f16_exhaustive(Direction::Inverse);
}

/// Rotates `x` (pairs `(x[2w], x[2w+1])`, pair `w` at table row `w / (pairs / rows)`) with the
/// CPU path, or with `gpu`'s general kernel out of place (sentinel-filled output) and in
/// place, and compares with the oracle.
fn f32_pairs(
    case: &str,
    x: &[u32],
    cos: &[f32],
    sin: &[f32],
    direction: Direction,
    gpu: Option<&bfrope::Gpu>,
) {
    let rows = cos.len();
    let pairs = x.len() / 2;
    assert_eq!(pairs % rows, 0);
    let table = RopeTable::from_cos_sin(cos, sin, rows, 1).unwrap();
    let positions = Positions::Offset(0);
    let mut rotation = Rotation::new(2);
    rotation.direction = direction;
    let call = RopeCall {
        view: TensorView::bshd(1, rows, pairs / rows, 2),
        rotation,
        positions: &positions,
        table: &table,
    };
    let call = call.with_dtype(Dtype::F32);
    let runs: Vec<(String, Vec<u32>)> = match gpu {
        None => {
            let mut got = x.to_vec();
            cpu::apply_in_place(&call, &mut got).unwrap();
            vec![(case.to_string(), got)]
        }
        Some(gpu) => [false, true]
            .into_iter()
            .map(|in_place| {
                let got = gpu_view(
                    gpu,
                    x,
                    call.view,
                    call.rotation,
                    &positions,
                    &table,
                    in_place,
                );
                (format!("{case}, GPU, in_place={in_place}"), got)
            })
            .collect(),
    };
    let heads = pairs / rows;
    let inverse = direction == Direction::Inverse;
    let want: Vec<[u32; 2]> = par_map(pairs, |w| {
        let row = w / heads;
        let (y0, y1) = oracle_pair_f32(
            x[2 * w],
            x[2 * w + 1],
            cos[row].to_bits(),
            sin[row].to_bits(),
            inverse,
        );
        [y0, y1]
    });
    let want = want.concat();
    for (case, got) in runs {
        compare(&case, &got, &want, |w| {
            let row = w / heads;
            format!(
                "rope[f32,x0={:#010x},x1={:#010x},cos={:e},sin={:e},{direction:?}]",
                x[2 * w],
                x[2 * w + 1],
                cos[row],
                sin[row]
            )
        });
    }
}

/// `(x, cos, sin)`: pairs `(x[2w], x[2w+1])`, pair `w` at table row `w / (pairs / rows)`.
type F32Data = (Vec<u32>, Vec<f32>, Vec<f32>);

/// Random f32 bit patterns (specials and subnormals included) against edge, random and
/// random-bit table values.
fn f32_random_bits_data() -> F32Data {
    let mut r = rng(0xF32);
    let mut cos: Vec<f32> = angles().iter().map(|a| a.1).collect();
    let mut sin: Vec<f32> = angles().iter().map(|a| a.2).collect();
    for _ in 0..6 {
        let a: f64 = r.random_range(-1e4..1e4);
        cos.push(a.cos() as f32);
        sin.push(a.sin() as f32);
    }
    // Random bit patterns as table values too (the kernel's contract is relative to any table).
    for _ in 0..4 {
        cos.push(f32::from_bits(r.random::<u32>() & 0x7F7F_FFFF));
        sin.push(f32::from_bits(r.random::<u32>()));
    }
    let per_row = 12_000;
    let x: Vec<u32> = (0..2 * per_row * cos.len()).map(|_| r.random()).collect();
    (x, cos, sin)
}

#[test]
fn f32_random_bit_patterns_with_edge_and_random_tables() {
    let (x, cos, sin) = f32_random_bits_data();
    for direction in [Direction::Forward, Direction::Inverse] {
        let case = format!("f32 random bits, {direction:?}");
        f32_pairs(&case, &x, &cos, &sin, direction, None);
    }
}

/// Normal f32 data with 2% specials (zeros, subnormals, extremes, infinities, NaNs).
fn f32_normal_data() -> F32Data {
    let mut r = rng(0xF32_0002);
    #[rustfmt::skip]
    let specials: [u32; 12] = [
        0x0000_0000, 0x8000_0000, 0x0000_0001, 0x807F_FFFF, 0x0080_0000, 0x7F7F_FFFF,
        0xFF7F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFF80_0001, 0x3F80_0000,
    ];
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..16)
        .map(|k| {
            let a = k as f64 * 0.7 + 0.1;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip();
    let per_row = 10_000;
    let x: Vec<u32> = (0..2 * per_row * cos.len())
        .map(|_| {
            if r.random_ratio(1, 50) {
                specials[r.random_range(0..specials.len())]
            } else {
                (r.random::<f32>() * 8.0 - 4.0).to_bits()
            }
        })
        .collect();
    (x, cos, sin)
}

#[test]
fn f32_normal_data_with_specials_and_subnormals() {
    let (x, cos, sin) = f32_normal_data();
    f32_pairs(
        "f32 normal + specials",
        &x,
        &cos,
        &sin,
        Direction::Forward,
        None,
    );
}

/// Pairs whose `y0` cancels almost completely.
fn f32_cancellation_data() -> F32Data {
    // x1 = x0·cos/sin rounded, nudged by a few ulps: y0 = x0·cos − x1·sin cancels almost
    // completely, leaving the low bits of the exact products (where the sum of f32 products
    // is wrong by up to ~10⁹ ulp).
    let mut r = rng(0xCA9C);
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..16)
        .map(|k| {
            let a = 0.05 + k as f64 * 0.37;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip();
    let per_row = 10_000;
    let mut x = Vec::with_capacity(2 * per_row * cos.len());
    for row in 0..cos.len() {
        for _ in 0..per_row {
            let x0: f32 = r.random_range(-100.0..100.0);
            let x1 = (x0 as f64 * cos[row] as f64 / sin[row] as f64) as f32;
            let nudge: i32 = r.random_range(-2..=2);
            x.push(x0.to_bits());
            x.push((x1.to_bits() as i32 + nudge) as u32);
        }
    }
    (x, cos, sin)
}

#[test]
fn f32_near_cancellation() {
    let (x, cos, sin) = f32_cancellation_data();
    f32_pairs(
        "f32 near cancellation",
        &x,
        &cos,
        &sin,
        Direction::Forward,
        None,
    );
}

#[test]
fn f16_near_cancellation_and_random_data() {
    let mut r = rng(0xF16_CA9C);
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..16)
        .map(|k| {
            let a = 0.05 + k as f64 * 0.37;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip();
    let per_row = 20_000;
    let mut x: Vec<u16> = Vec::with_capacity(2 * per_row * cos.len());
    for row in 0..cos.len() {
        for k in 0..per_row {
            let x0 = half::f16::from_f32(r.random_range(-1000.0..1000.0));
            let x1 = if k % 2 == 0 {
                let t = half::f16::from_f64(x0.to_f64() * cos[row] as f64 / sin[row] as f64);
                t.to_bits()
                    .wrapping_add(r.random_range(0..3u16))
                    .wrapping_sub(1)
            } else {
                r.random()
            };
            x.push(x0.to_bits());
            x.push(x1);
        }
    }
    let table = RopeTable::from_cos_sin(&cos, &sin, cos.len(), 1).unwrap();
    let positions = Positions::Offset(0);
    let call = RopeCall {
        view: TensorView::bshd(1, cos.len(), per_row, 2),
        rotation: Rotation::new(2),
        positions: &positions,
        table: &table,
    };
    let mut got = x.clone();
    cpu::apply_in_place(&call.with_dtype(Dtype::F16), &mut got).unwrap();
    let want: Vec<[u16; 2]> = par_map(x.len() / 2, |w| {
        let row = w / per_row;
        let (a, b) = oracle_pair_f16(
            x[2 * w],
            x[2 * w + 1],
            cos[row].to_bits(),
            sin[row].to_bits(),
            false,
        );
        [a, b]
    });
    compare(
        "f16 near cancellation + random",
        &got,
        &want.concat(),
        |w| {
            format!(
                "rope[f16,x0={:#06x},x1={:#06x},row={}]",
                x[2 * w],
                x[2 * w + 1],
                w / per_row
            )
        },
    );
}

/// The strided case two tests share: BHSD `[2, 3, 5, 12]` at element offset 7 in a buffer 5
/// elements longer, half-split pairs over 8 of 12 dims, inverse, random per-token rows of a
/// random 9-row table.
struct StridedCase {
    view: TensorView,
    len: usize,
    table: RopeTable,
    ids: Vec<usize>,
    positions: Positions,
    rotation: Rotation,
}

fn strided_half_split_case(r: &mut impl Rng) -> StridedCase {
    let (b, h, s, d, rot) = (2usize, 3usize, 5usize, 12usize, 8usize);
    let rows = 9;
    let pairs = rot / 2;
    let cos: Vec<f32> = (0..rows * pairs)
        .map(|_| r.random_range(-1.5..1.5))
        .collect();
    let sin: Vec<f32> = (0..rows * pairs)
        .map(|_| r.random_range(-1.5..1.5))
        .collect();
    let ids: Vec<usize> = (0..b * s).map(|_| r.random_range(0..rows)).collect();
    let mut rotation = Rotation::new(rot);
    rotation.pairing = Pairing::HalfSplit;
    rotation.direction = Direction::Inverse;
    StridedCase {
        view: TensorView::bhsd(b, h, s, d).with_offset(7),
        len: 7 + b * h * s * d + 5,
        table: RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap(),
        positions: Positions::PerToken(ids.clone()),
        ids,
        rotation,
    }
}

/// A general view for both dtypes: BHSD `[2, 3, 5, 12]` at an offset in a larger buffer,
/// half-split pairs over 8 of 12 dims, per-token positions. Everything outside the rotated
/// dims must stay as it was.
#[test]
fn general_view_half_split_partial_per_token_both_dtypes() {
    let mut r = rng(0x71E3);
    let (b, h, s, d, rot) = (2usize, 3usize, 5usize, 12usize, 8usize);
    let StridedCase {
        view,
        len,
        table,
        ids,
        positions,
        rotation,
    } = strided_half_split_case(&mut r);
    let pairs = rot / 2;
    let call = RopeCall {
        view,
        rotation,
        positions: &positions,
        table: &table,
    };
    // Where each rotated pair lies, from first principles: (element a, element c, row, freq).
    let mut pairs_at = Vec::new();
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                let base = 7 + bi * h * s * d + hi * s * d + si * d;
                for i in 0..pairs {
                    pairs_at.push((base + i, base + pairs + i, ids[bi * s + si], i));
                }
            }
        }
    }
    let x16: Vec<u16> = (0..len).map(|_| r.random()).collect();
    let mut got16 = x16.clone();
    cpu::apply_in_place(&call.with_dtype(Dtype::F16), &mut got16).unwrap();
    let mut want16 = x16.clone();
    for &(a, c, row, i) in &pairs_at {
        let (y0, y1) = oracle_pair_f16(
            x16[a],
            x16[c],
            table.get(row, i)[0].to_bits(),
            table.get(row, i)[1].to_bits(),
            true,
        );
        want16[a] = y0;
        want16[c] = y1;
    }
    compare("f16 general view", &got16, &want16, |w| {
        format!("element pair {w}")
    });
    let x32: Vec<u32> = (0..len).map(|_| r.random()).collect();
    let mut got32 = x32.clone();
    cpu::apply_in_place(&call.with_dtype(Dtype::F32), &mut got32).unwrap();
    let mut want32 = x32.clone();
    for &(a, c, row, i) in &pairs_at {
        let (y0, y1) = oracle_pair_f32(
            x32[a],
            x32[c],
            table.get(row, i)[0].to_bits(),
            table.get(row, i)[1].to_bits(),
            true,
        );
        want32[a] = y0;
        want32[c] = y1;
    }
    compare("f32 general view", &got32, &want32, |w| {
        format!("element pair {w}")
    });
}

/// The oracle itself on hand-derived cases, so that a wrong oracle cannot hide a wrong path.
#[rustfmt::skip]
#[test]
fn oracle_pins() {
    use common::oracle::{oracle_dot2_in, F16, F32};
    // f16: 65504 + 16 = 65520 ties to even 2¹⁶: +inf; 2⁻²⁴·0.5 ties to +0; inf·0 is 0x7E00.
    assert_eq!(oracle_dot2_in(F16, 0x7BFF, 1f32.to_bits(), 0x4C00, 1f32.to_bits()), 0x7C00);
    assert_eq!(oracle_dot2_in(F16, 0x0001, 0.5f32.to_bits(), 0, 0), 0);
    assert_eq!(oracle_dot2_in(F16, 0x7C00, 0, 0, 0), 0x7E00);
    // f32: the TwoSum case of src/cpu/exact.rs, below the midpoint: 1 + 2⁻²³.
    assert_eq!(oracle_dot2_in(F32, 0x3F80_0001, 1f32.to_bits(), 0x3380_0001, 0x3F7F_FFFE), 0x3F80_0001);
    // f32: the smallest subnormal survives; −0 + −0 = −0; inf − inf = 0x7FC00000.
    assert_eq!(oracle_dot2_in(F32, 1, 1f32.to_bits(), 0, 0), 1);
    assert_eq!(oracle_dot2_in(F32, 0x8000_0000, 1f32.to_bits(), 0x8000_0000, 1f32.to_bits()), 0x8000_0000);
    assert_eq!(oracle_dot2_in(F32, 0x7F80_0000, 1f32.to_bits(), 0x7F80_0000, (-1f32).to_bits()), 0x7FC0_0000);
}

// ---------------------------------------------------------------------------------------------
// GPU: the WGSL arithmetic (shaders/exact.wgsl and proof.wgsl through the float_check kernel) == CPU == oracle.

/// Runs the float_check kernel on `ops` (`(a, b, c, d)` quadruples) with `DTYPE` = `dtype`
/// (1 f16, 2 f32) and `FAST`; the output is pre-filled with the sentinel `u32::MAX`, a pattern
/// the kernel never writes, so an unwritten result is a mismatch.
fn gpu_dot2(gpu: &bfrope::Gpu, ops: &[[u32; 4]], dtype: u32, fast: u32) -> Vec<u32> {
    use wgpu::util::DeviceExt;
    let device = gpu.device();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("float_check"),
        source: wgpu::ShaderSource::Wgsl(bfrope::shaders::float_check_source().into()),
    });
    let constants = [
        ("DTYPE", dtype as f64),
        ("FAST", fast as f64),
        ("WORKGROUP_SIZE", 256.0),
    ];
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("float_check"),
        layout: None,
        module: &module,
        entry_point: Some(bfrope::shaders::FLOAT_CHECK_ENTRY),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            ..Default::default()
        },
        cache: None,
    });
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("float_check ops"),
        contents: bytemuck::cast_slice(ops),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let output = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("float_check out (sentinel)"),
        contents: bytemuck::cast_slice(&vec![u32::MAX; ops.len()]),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("float_check"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: output.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        let groups = (ops.len() as u32).div_ceil(256);
        let y = groups.div_ceil(65535);
        pass.dispatch_workgroups(groups.div_ceil(y), y, 1);
    }
    pollster::block_on(gpu.read_back(encoder, &output, 4 * ops.len() as u64)).unwrap()
}

/// The f16 exhaustive cases as dot2 operands: for each angle, y0 = x0·cos + x1·(−sin) and
/// y1 = x0·sin + x1·cos of every (x0, x1) pair, forward.
fn f16_ops_for_angle(angle: usize) -> Vec<[u32; 4]> {
    let c = f16_cases();
    let (_, cos, sin) = &c.angles[angle];
    let (cb, sb) = (cos.to_bits(), sin.to_bits());
    let mut ops = Vec::with_capacity(2 * c.per_angle);
    for w in 0..c.per_angle {
        let (x0, x1) = (c.x[2 * w] as u32, c.x[2 * w + 1] as u32);
        ops.push([x0, cb, x1, sb ^ 0x8000_0000]);
        ops.push([x0, sb, x1, cb]);
    }
    ops
}

#[test]
fn gpu_f16_every_pattern_against_edge_partners_fast_and_exact_paths() {
    let Some(gpu) = common::gpu() else { return };
    let c = f16_cases();
    for angle in 0..c.angles.len() {
        let ops = f16_ops_for_angle(angle);
        let want: Vec<u32> = par_map(ops.len(), |i| {
            let [a, b, cc, d] = ops[i];
            common::oracle::oracle_dot2_in(common::oracle::F16, a as u64, b, cc as u64, d) as u32
        });
        let cpu: Vec<u32> = ops
            .iter()
            .map(|&[a, b, cc, d]| {
                cpu::dot2_f16(a as u16, f32::from_bits(b), cc as u16, f32::from_bits(d)) as u32
            })
            .collect();
        // compare names outputs by pair: ops 2w and 2w + 1 are y0 and y1 of (x0, x1) pair w.
        let name = |w: usize| {
            format!(
                "rope[f16,x0={:#06x},x1={},{},forward]",
                c.x[2 * w],
                c.x1[w / 65536].1,
                c.angles[angle].0
            )
        };
        compare(
            &format!("f16 CPU dot2, {}", c.angles[angle].0),
            &cpu,
            &want,
            name,
        );
        for fast in [1, 0] {
            let got = gpu_dot2(&gpu, &ops, 1, fast);
            compare(
                &format!("f16 GPU fast={fast}, {}", c.angles[angle].0),
                &got,
                &want,
                name,
            );
        }
    }
}

/// The f32 -> f16 rounding of the `fast` and `hf` modes (`f32_to_f16_rne`, integer steps) on
/// every f32 sign, exponent and top 10 fraction bits (2¹⁹ heads) with low 13 bits that hit
/// each rounding case (exact, just above, just below, on and around the midpoint, all ones,
/// and seeded random ones): == `half`'s round-to-nearest-even conversion with NaN made
/// canonical, and == the exact integer path's 1·v + (−0)·0 that it replaced; the oracle
/// pins a sample of `half`'s results.
#[test]
fn gpu_f32_to_f16_rounding_every_head_and_rounding_case() {
    let Some(gpu) = common::gpu() else { return };
    let mut r = rng(0xF32_F16);
    let mut lows = vec![0u32, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x0800, 0x17FF];
    lows.extend((0..4).map(|_| r.random_range(0..0x2000u32)));
    let values: Vec<u32> = (0..1u32 << 19)
        .flat_map(|head| lows.iter().map(move |&low| (head << 13) | low))
        .collect();
    let want: Vec<u32> = values
        .iter()
        .map(|&v| {
            let f = f32::from_bits(v);
            if f.is_nan() {
                0x7E00
            } else {
                half::f16::from_f32(f).to_bits() as u32
            }
        })
        .collect();
    for (i, &v) in values.iter().enumerate().step_by(97) {
        let o = common::oracle::oracle_dot2_in(common::oracle::F16, 0x3C00, v, 0x8000, 0) as u32;
        assert_eq!(want[i], o, "half vs oracle at f32 {v:#010x}");
    }
    let ops: Vec<[u32; 4]> = values.iter().map(|&v| [0x3C00, v, 0x8000, 0]).collect();
    let name = |i: usize| format!("f32_to_f16_rne({:#010x})", values[i]);
    compare(
        "f32 -> f16 (fast, hf)",
        &gpu_stage(&gpu, &ops, 1, 3),
        &want,
        name,
    );
    compare(
        "f32 -> f16 through the exact path",
        &gpu_stage(&gpu, &ops, 1, 0),
        &want,
        name,
    );
}

#[test]
fn gpu_f32_random_bits_specials_and_near_cancellation() {
    let Some(gpu) = common::gpu() else { return };
    let mut r = rng(0x6F32);
    let tables: Vec<u32> = angles()
        .iter()
        .flat_map(|a| [a.1.to_bits(), a.2.to_bits(), (-a.2).to_bits()])
        .chain((0..8).map(|_| r.random::<u32>()))
        .collect();
    let mut ops = Vec::new();
    for _ in 0..200_000 {
        // Random bit patterns against edge and random table values.
        let b = tables[r.random_range(0..tables.len())];
        let d = tables[r.random_range(0..tables.len())];
        ops.push([r.random(), b, r.random(), d]);
    }
    for _ in 0..200_000 {
        // Near cancellation: a·b ≈ −c·d.
        let a: f32 = r.random_range(-100.0..100.0);
        let b: f32 = r.random_range(-1.0..1.0);
        let d: f32 = r.random_range(0.1..1.0);
        let c = -(a as f64 * b as f64 / d as f64) as f32;
        let nudge: i32 = r.random_range(-2..=2);
        ops.push([
            a.to_bits(),
            b.to_bits(),
            (c.to_bits() as i32 + nudge) as u32,
            d.to_bits(),
        ]);
    }
    // The TwoSum case (the f64 sum lands on the midpoint) and subnormal results.
    ops.push([0x3F80_0001, 1f32.to_bits(), 0x3380_0001, 0x3F7F_FFFE]);
    ops.push([1, 1f32.to_bits(), 0, 0]);
    ops.push([3, 0.5f32.to_bits(), 0x8000_0001, 0.25f32.to_bits()]);
    let want: Vec<u32> = par_map(ops.len(), |i| {
        let [a, b, c, d] = ops[i];
        common::oracle::oracle_dot2_in(common::oracle::F32, a as u64, b, c as u64, d) as u32
    });
    let cpu: Vec<u32> = ops
        .iter()
        .map(|&[a, b, c, d]| cpu::dot2_f32(a, f32::from_bits(b), c, f32::from_bits(d)))
        .collect();
    // compare names outputs by pairs of operand quadruples.
    let name = |w: usize| format!("dot2_f32{:x?} / {:x?}", ops[2 * w], ops.get(2 * w + 1));
    compare("f32 CPU dot2", &cpu, &want, name);
    let got = gpu_dot2(&gpu, &ops, 2, 0);
    compare("f32 GPU exact", &got, &want, name);
}

/// [`gpu_view`] for f16, out of place.
fn gpu_view_f16(
    gpu: &bfrope::Gpu,
    x: &[u16],
    view: TensorView,
    rotation: Rotation,
    positions: &Positions,
    table: &RopeTable,
) -> Vec<u16> {
    let rotation = Rotation {
        dtype: Dtype::F16,
        ..rotation
    };
    gpu_view(gpu, x, view, rotation, positions, table, false)
}

#[test]
fn gpu_general_kernel_f16_every_pattern_against_edge_partners() {
    let Some(gpu) = common::gpu() else { return };
    let c = f16_cases();
    let table = c.table(1);
    let positions = Positions::Offset(0);
    for direction in [Direction::Forward, Direction::Inverse] {
        let mut rotation = Rotation::new(2);
        rotation.direction = direction;
        let view = c.view(2);
        let got = gpu_view_f16(&gpu, &c.x, view, rotation, &positions, &table);
        compare(
            &format!("f16 GPU general kernel, all patterns, {direction:?}"),
            &got,
            f16_expected(direction),
            |w| c.name(w, "f16,gpu,", direction),
        );
    }
}

/// The general kernel's halves entry (odd offset, half-split over part of the head,
/// per-token positions, inverse) on f16 data, and the refusals.
#[test]
fn gpu_general_kernel_f16_strided_view_and_refusals() {
    let Some(gpu) = common::gpu() else { return };
    let mut r = rng(0x6E16);
    let (b, h, s, d, rot) = (2usize, 3usize, 5usize, 12usize, 8usize);
    let StridedCase {
        view,
        len,
        table,
        ids,
        positions,
        rotation,
    } = strided_half_split_case(&mut r);
    let pairs = rot / 2;
    let x: Vec<u16> = (0..len).map(|_| r.random()).collect();
    // Oracle, from first principles; elements outside the view keep the sentinel.
    let mut want = x.clone();
    for e in (0..7).chain(len - 5..len) {
        want[e] = 0xEEEE;
    }
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                let base = 7 + bi * h * s * d + hi * s * d + si * d;
                let row = ids[bi * s + si];
                for i in 0..pairs {
                    let (y0, y1) = oracle_pair_f16(
                        x[base + i],
                        x[base + pairs + i],
                        table.get(row, i)[0].to_bits(),
                        table.get(row, i)[1].to_bits(),
                        true,
                    );
                    want[base + i] = y0;
                    want[base + pairs + i] = y1;
                }
            }
        }
    }
    let got = gpu_view_f16(&gpu, &x, view, rotation, &positions, &table);
    compare("f16 GPU general kernel, strided view", &got, &want, |w| {
        format!("elements {} and {}", 2 * w, 2 * w + 1)
    });
    // The CPU path gives the same bits inside the view.
    let call = RopeCall {
        view,
        rotation,
        positions: &positions,
        table: &table,
    };
    let mut on_cpu = x.clone();
    cpu::apply_in_place(&call.with_dtype(Dtype::F16), &mut on_cpu).unwrap();
    assert_eq!(
        &on_cpu[7..len - 5],
        &got[7..len - 5],
        "CPU vs GPU inside the view"
    );

    // A host buffer whose element size is not the dtype's is refused, naming the dtype.
    let err = cpu::apply(&call.with_dtype(Dtype::F32), &x)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dtype f32"), "{err}");
    let err = gpu
        .apply_blocking(&call.with_dtype(Dtype::F16), &vec![0u32; len])
        .unwrap_err()
        .to_string();
    assert!(err.contains("dtype f16"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// GPU kernels on f16 and f32 tensors, the dtype named by the call (Rotation::dtype).

/// f32 through the general kernel's f32 modules: random bit patterns against edge, subnormal,
/// huge and random-bit tables (both directions), normal data with specials, near
/// cancellation; out of place into a sentinel-filled output and in place; == oracle.
#[test]
fn gpu_general_kernel_f32_random_bits_specials_cancellation_in_and_out_of_place() {
    let Some(gpu) = common::gpu() else { return };
    let (x, cos, sin) = f32_random_bits_data();
    for direction in [Direction::Forward, Direction::Inverse] {
        let case = format!("f32 random bits, {direction:?}");
        f32_pairs(&case, &x, &cos, &sin, direction, Some(&gpu));
    }
    let (x, cos, sin) = f32_normal_data();
    f32_pairs(
        "f32 normal + specials",
        &x,
        &cos,
        &sin,
        Direction::Forward,
        Some(&gpu),
    );
    let (x, cos, sin) = f32_cancellation_data();
    let case = "f32 near cancellation";
    f32_pairs(case, &x, &cos, &sin, Direction::Inverse, Some(&gpu));
}

/// Elements of `view` in a buffer of `len` elements.
fn in_view(view: &TensorView, len: usize) -> Vec<bool> {
    let mut inside = vec![false; len];
    let [b, s, h, d] = view.dims;
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                let start = view.head_start(bi, si, hi);
                inside[start..start + d].iter_mut().for_each(|e| *e = true);
            }
        }
    }
    inside
}

/// A strided view (odd offset, BHSD, half-split over part of the head, per-token positions,
/// inverse) in f16 and f32, in every arithmetic mode the GPU and the CPU share bit for bit
/// (exact, hf): GPU out of place (the sentinel outside the view) and in place == CPU.
#[test]
fn gpu_general_kernel_strided_view_f16_f32_exact_and_hf_equal_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let mut r = rng(0x57F32);
    let (b, h, s, d, rot) = (2usize, 3usize, 5usize, 12usize, 8usize);
    let rows = 9;
    let pairs = rot / 2;
    let cos: Vec<f32> = (0..rows * pairs)
        .map(|_| r.random_range(-1.5..1.5))
        .collect();
    let sin: Vec<f32> = (0..rows * pairs)
        .map(|_| r.random_range(-1.5..1.5))
        .collect();
    let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
    let ids: Vec<usize> = (0..b * s).map(|_| r.random_range(0..rows)).collect();
    let positions = Positions::PerToken(ids);
    for (view, pairing) in [
        (
            TensorView::bhsd(b, h, s, d).with_offset(7),
            Pairing::HalfSplit,
        ),
        (
            TensorView::bshd(b, s, h, d).with_offset(3),
            Pairing::Interleaved,
        ),
    ] {
        let len = view.span() + 5;
        let inside = in_view(&view, len);
        for precision in [Precision::Exact, Precision::Hf] {
            for direction in [Direction::Forward, Direction::Inverse] {
                let call = RopeCall::new(view, &positions, &table)
                    .with_pairing(pairing)
                    .with_rotary_dim(rot)
                    .with_precision(precision)
                    .with_direction(direction);
                let name = format!("{pairing:?},{precision:?},{direction:?}");
                let x16: Vec<u16> = (0..len).map(|_| r.random()).collect();
                let x32: Vec<u32> = (0..len).map(|_| r.random()).collect();
                let c16 = call.with_dtype(Dtype::F16);
                let c32 = call.with_dtype(Dtype::F32);
                let cpu16 = cpu::apply(&c16, &x16).unwrap();
                let cpu32 = cpu::apply(&c32, &x32).unwrap();
                for in_place in [false, true] {
                    let g16 =
                        gpu_view(&gpu, &x16, view, c16.rotation, &positions, &table, in_place);
                    let g32 =
                        gpu_view(&gpu, &x32, view, c32.rotation, &positions, &table, in_place);
                    let want16: Vec<u16> = (0..len)
                        .map(|e| {
                            if inside[e] || in_place {
                                cpu16[e]
                            } else {
                                0xEEEE
                            }
                        })
                        .collect();
                    let want32: Vec<u32> = (0..len)
                        .map(|e| {
                            if inside[e] || in_place {
                                cpu32[e]
                            } else {
                                0xEEEE_EEEE
                            }
                        })
                        .collect();
                    let at = |w: usize| format!("elements {} and {}", 2 * w, 2 * w + 1);
                    compare(
                        &format!("f16 GPU vs CPU [{name},in_place={in_place}]"),
                        &g16,
                        &want16,
                        at,
                    );
                    compare(
                        &format!("f32 GPU vs CPU [{name},in_place={in_place}]"),
                        &g32,
                        &want32,
                        at,
                    );
                }
            }
        }
    }
}

/// f16 through the contiguous kernels (`Gpu::apply` on a contiguous BSHD whole-head call):
/// every f16 pattern against the edge partners, scalar (1 pair per head), vec4 (4 pairs per
/// head) and half-split vec4 (8 pairs per head, pair i = elements i and i + 8: the
/// `rope_vec4_half` kernel with DTYPE = 1) kernels, both directions, == oracle.
#[test]
fn gpu_contiguous_kernels_f16_every_pattern_against_edge_partners() {
    let Some(gpu) = common::gpu() else { return };
    let c = f16_cases();
    let positions = Positions::Offset(0);
    #[rustfmt::skip]
    let kernels = [
        (2, Pairing::Interleaved, "scalar"),
        (8, Pairing::Interleaved, "vec4"),
        (16, Pairing::HalfSplit, "vec4half"),
    ];
    for (d, pairing, kernel) in kernels {
        let view = c.view(d);
        // A head of d dims holds d / 2 consecutive pairs, all at the same angle (table row):
        // the table repeats the row's (cos, sin) for each pair.
        let table = c.table(d / 2);
        // Half-split heads keep pair i's x0 at i and its x1 at i + d / 2.
        let x = c.laid_out(d, pairing);
        let shape = bfrope::RopeShape::from_dims(&view.dims).unwrap();
        let key =
            bfrope::gpu::KernelKey::for_contiguous(&shape, pairing, Precision::Exact, Dtype::F16)
                .expect("a contiguous kernel");
        assert_eq!(format!("{:?}", key.kernel).to_lowercase(), kernel);
        for direction in [Direction::Forward, Direction::Inverse] {
            let call = RopeCall::new(view, &positions, &table)
                .with_pairing(pairing)
                .with_direction(direction)
                .with_dtype(Dtype::F16);
            assert!(call.contiguous_pairs().is_some());
            let out = gpu.apply_blocking(&call, &x).unwrap();
            let got = Sweep::gathered(&out, d, pairing);
            compare(
                &format!("f16 GPU {kernel} kernel, all patterns, {direction:?}"),
                &got,
                f16_expected(direction),
                |w| c.name(w, &format!("f16,{kernel},"), direction),
            );
        }
    }
    // f32 never takes a contiguous kernel (one element per word: the general kernel).
    let shape = bfrope::RopeShape::from_dims(&[1, 4, 2, 16]).unwrap();
    for pairing in [Pairing::Interleaved, Pairing::HalfSplit] {
        assert!(bfrope::gpu::KernelKey::for_contiguous(
            &shape,
            pairing,
            Precision::Exact,
            Dtype::F32
        )
        .is_none());
    }
}

/// `hf` on f16 tensors (transformers' f16 steps) on the GPU — the general kernel (halves and
/// words) and the contiguous kernels (scalar, half-split vec4) — equals the CPU path on every
/// f16 pattern against the edge partners at every angle, both directions.
#[test]
fn gpu_hf_f16_every_pattern_equals_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let c = f16_cases();
    let table = c.table(1);
    let positions = Positions::Offset(0);
    let view = c.view(2);
    for direction in [Direction::Forward, Direction::Inverse] {
        let call = RopeCall::new(view, &positions, &table)
            .with_direction(direction)
            .with_precision(Precision::Hf)
            .with_dtype(Dtype::F16);
        let want = cpu::apply(&call, &c.x).unwrap();
        let name = |w: usize| c.name(w, "f16,hf,", direction);
        let contiguous = gpu.apply_blocking(&call, &c.x).unwrap();
        compare(
            &format!("f16 hf contiguous, {direction:?}"),
            &contiguous,
            &want,
            name,
        );
        // The same data seen at an odd offset takes the general kernel on halves.
        let mut shifted = vec![0x1234u16];
        shifted.extend_from_slice(&c.x);
        let general = gpu_view(
            &gpu,
            &shifted,
            view.with_offset(1),
            call.rotation,
            &positions,
            &table,
            false,
        );
        compare(
            &format!("f16 hf general, {direction:?}"),
            &general[1..],
            &want,
            name,
        );
        // The same pairs in half-split heads of 16 (pair i = elements i and i + 8) take the
        // half-split vec4 kernel (rope_vec4_half, DTYPE = 1, hf): == the CPU path.
        let d = 16;
        let hs_view = c.view(d);
        let hs_table = c.table(d / 2);
        let hs_call = RopeCall::new(hs_view, &positions, &hs_table)
            .with_pairing(Pairing::HalfSplit)
            .with_direction(direction)
            .with_precision(Precision::Hf)
            .with_dtype(Dtype::F16);
        let shape = bfrope::RopeShape::from_dims(&hs_view.dims).unwrap();
        let key = bfrope::gpu::KernelKey::for_contiguous(
            &shape,
            Pairing::HalfSplit,
            Precision::Hf,
            Dtype::F16,
        );
        assert_eq!(key.map(|k| k.kernel), Some(bfrope::gpu::Kernel::Vec4Half));
        let x = c.laid_out(d, Pairing::HalfSplit);
        let hs_want = cpu::apply(&hs_call, &x).unwrap();
        let back = |y: &[u16]| Sweep::gathered(y, d, Pairing::HalfSplit);
        assert_eq!(
            back(&hs_want),
            want,
            "f16 hf CPU path: half-split heads vs interleaved ones"
        );
        let hs_got = gpu.apply_blocking(&hs_call, &x).unwrap();
        compare(
            &format!("f16 hf contiguous half-split vec4, {direction:?}"),
            &back(&hs_got),
            &want,
            name,
        );
    }
}

/// `fast` on f16 and f32 tensors runs plain f32 arithmetic and writes every element. f16:
/// within one unit in the last place of the exact result (one f32 rounding, then one to
/// f16). f32: under cancellation plain f32 is far from exact (hundreds of ulp here), but on
/// an adapter that neither contracts into FMAs nor flushes (lavapipe) it is bit for bit
/// torch's f32 arithmetic, the `hf` mode on f32 (CPU path).
#[test]
fn gpu_fast_f16_f32_plain_arithmetic() {
    let Some(gpu) = common::gpu() else { return };
    let mut r = rng(0xFA57);
    let rows = 16;
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..rows * 4)
        .map(|k| ((k as f32 * 0.3).cos(), (k as f32 * 0.3).sin()))
        .unzip();
    let table = RopeTable::from_cos_sin(&cos, &sin, rows, 4).unwrap();
    let positions = Positions::Offset(0);
    let view = TensorView::bhsd(2, 3, rows, 8);
    let call = RopeCall::new(view, &positions, &table).with_pairing(Pairing::HalfSplit);
    let len = view.span();
    let x16: Vec<u16> = (0..len)
        .map(|_| half::f16::from_f32(r.random_range(-8.0..8.0)).to_bits())
        .collect();
    let x32: Vec<u32> = (0..len)
        .map(|_| r.random_range(-8.0f32..8.0).to_bits())
        .collect();
    let fast = call.with_precision(Precision::Fast);

    let got = gpu_view(
        &gpu,
        &x16,
        view,
        fast.with_dtype(Dtype::F16).rotation,
        &positions,
        &table,
        false,
    );
    let want = cpu::apply(&call.with_dtype(Dtype::F16), &x16).unwrap();
    let value = |h: u16| half::f16::from_bits(h).to_f64();
    let mut worst = 0f64;
    for (&g, &w) in got.iter().zip(&want) {
        // One f16 ulp at w's magnitude (subnormal quantum below 2⁻¹⁴).
        let ulp = 2f64.powi(value(w).abs().max(2f64.powi(-14)).log2().floor() as i32 - 10);
        worst = worst.max((value(g) - value(w)).abs() / ulp);
    }
    eprintln!("fast f16: worst {worst} ulp from exact over {len} outputs");
    assert!(worst <= 1.0, "fast f16: {worst} ulp from exact");

    let got = gpu_view(
        &gpu,
        &x32,
        view,
        fast.with_dtype(Dtype::F32).rotation,
        &positions,
        &table,
        false,
    );
    let exact = cpu::apply(&call.with_dtype(Dtype::F32), &x32).unwrap();
    let torch = cpu::apply(
        &call.with_dtype(Dtype::F32).with_precision(Precision::Hf),
        &x32,
    )
    .unwrap();
    let differ = got.iter().zip(&exact).filter(|(g, w)| g != w).count();
    eprintln!("fast f32: {differ} of {len} outputs differ from exact");
    assert!(
        got.iter().all(|&g| g != 0xEEEE_EEEE),
        "fast f32 left a sentinel"
    );
    if gpu.adapter().summary().contains("llvmpipe") {
        compare(
            "fast f32 on lavapipe vs torch's f32 steps",
            &got,
            &torch,
            |w| format!("elements {} and {}", 2 * w, 2 * w + 1),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// bf16's stages on their own (float_check with DTYPE 0): the first f32 stage (dot2_fast), the
// error-free second stage (dot2_split) and the integer path (dot2_exact) each decide only
// correct roundings, and the second stage leaves almost nothing to the integer path.

/// One stage over `ops` in pieces of 2^20 (lavapipe binds at most 128 MiB).
fn gpu_bf16_stage(gpu: &bfrope::Gpu, ops: &[[u32; 4]], stage: u32) -> Vec<u32> {
    gpu_stage(gpu, ops, 0, stage)
}

/// float_check with `DTYPE` = `dtype` and `FAST` = `stage` over `ops` in pieces of 2^20.
fn gpu_stage(gpu: &bfrope::Gpu, ops: &[[u32; 4]], dtype: u32, stage: u32) -> Vec<u32> {
    ops.chunks(1 << 20)
        .flat_map(|c| gpu_dot2(gpu, c, dtype, stage))
        .collect()
}

/// (outputs decided, outputs undecided); panics on a decided output that is not the oracle's.
fn check_stage(name: &str, got: &[u32], want: &[u32], ops: &[[u32; 4]]) -> (usize, usize) {
    let mut undecided = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g == 0x10000 {
            undecided += 1;
        } else if g != w {
            let [a, b, c, d] = ops[i];
            panic!(
                "{name}: {a:#06x}·{:e} + {c:#06x}·{:e} = {g:#06x}, oracle {w:#06x}",
                f32::from_bits(b),
                f32::from_bits(d)
            );
        }
    }
    (got.len() - undecided, undecided)
}

/// Pushes the two dot products of rotating (x0, x1) by (c, s): y0 = x0·c + x1·(−s), then
/// y1 = x0·s + x1·c.
fn push_rotation(ops: &mut Vec<[u32; 4]>, x0: u32, x1: u32, c: f32, s: f32) {
    ops.push([x0, c.to_bits(), x1, (-s).to_bits()]);
    ops.push([x0, s.to_bits(), x1, c.to_bits()]);
}

/// The first stage left `u1` outputs undecided (enough for the test to mean something) and
/// the second stage `u2` of those (at most one in 50).
fn assert_second_stage_decides(u1: usize, u2: usize) {
    assert!(
        u1 >= 100,
        "the first stage left only {u1} outputs undecided: the test lost its cases"
    );
    assert!(
        u2 * 50 <= u1,
        "the second stage left {u2} of the first stage's {u1} undecided"
    );
}

/// The (cos, sin) tables of the stage tests: identity, real angles, the second stages' range
/// edges (2^-90, 2^16), an f32 subnormal, an infinite and a NaN table value; then `makers`
/// (the format's midpoint makers).
fn stage_tables(makers: &[(f32, f32)]) -> Vec<(f32, f32)> {
    let mut t = vec![
        (1.0, 0.0),
        (1f64.cos() as f32, 1f64.sin() as f32),
        (1e6f64.cos() as f32, 1e6f64.sin() as f32),
        (
            std::f32::consts::FRAC_1_SQRT_2,
            std::f32::consts::FRAC_1_SQRT_2,
        ),
        (2f32.powi(-90), 65535.5),
        (f32::from_bits(0x0040_0000), -0.75),
        (f32::INFINITY, f32::NAN),
    ];
    t.extend_from_slice(makers);
    t
}

/// Every 16-bit x0 against each x1 of `x1s` at each (cos, sin) of `tables`, as dot products
/// (`push_rotation`).
fn every_x0_ops(x1s: &[u16], tables: &[(f32, f32)]) -> Vec<[u32; 4]> {
    let mut ops = Vec::new();
    for &(c, s) in tables {
        for &x1 in x1s {
            for x0 in 0..=u16::MAX {
                push_rotation(&mut ops, x0 as u32, x1 as u32, c, s);
            }
        }
    }
    ops
}

#[test]
fn gpu_bf16_stages_decide_only_correct_roundings() {
    let Some(gpu) = common::gpu() else { return };
    use common::oracle::oracle_dot2;
    // Every bf16 x0 against edge x1 values and tables (y0 = x0·cos + x1·(−sin), y1 =
    // x0·sin + x1·cos): identity, real angles, the second stage's range edges (2^-90, 2^16),
    // a subnormal, an infinite and a NaN table value, a midpoint maker (1 + 2^-9).
    let x1s: [u16; 8] = [
        0x0000, 0x8000, 0x0001, 0x0080, 0x3F9F, 0xBFC0, 0x7F7F, 0xFFC1,
    ];
    let tables = stage_tables(&[(1.0 + 2f32.powi(-9), -0.5)]);
    let mut ops = every_x0_ops(&x1s, &tables);
    let edge = ops.len();
    // Random normal data at random angles: where the stages' undecided outputs come from.
    let mut r = bfrope::conformance::SplitMix64(0x57A6E);
    let normal = |r: &mut bfrope::conformance::SplitMix64| {
        half::bf16::from_f32(r.next_normal() as f32).to_bits() as u32
    };
    for _ in 0..1 << 20 {
        let (x0, x1) = (normal(&mut r), normal(&mut r));
        let t = 1e4 * r.next_f64();
        push_rotation(&mut ops, x0, x1, t.cos() as f32, t.sin() as f32);
    }
    let want: Vec<u32> = par_map(ops.len(), |i| {
        let [a, b, c, d] = ops[i];
        oracle_dot2(a as u16, b, c as u16, d) as u32
    });
    let exact = gpu_bf16_stage(&gpu, &ops, 0);
    assert_eq!(check_stage("dot2_exact", &exact, &want, &ops).1, 0);
    let first = gpu_bf16_stage(&gpu, &ops, 1);
    check_stage("dot2_fast", &first, &want, &ops);
    let second = gpu_bf16_stage(&gpu, &ops, 2);
    check_stage("dot2_split", &second, &want, &ops);
    // On the random data the first stage leaves some outputs undecided (near a midpoint or
    // cancelling), and the second decides all but a few of those.
    let (_, u1) = check_stage(
        "dot2_fast, random",
        &first[edge..],
        &want[edge..],
        &ops[edge..],
    );
    let u2 = (edge..ops.len())
        .filter(|&i| first[i] == 0x10000 && second[i] == 0x10000)
        .count();
    eprintln!(
        "random normal data: {} outputs, first stage undecided {u1}, both {u2}",
        ops.len() - edge
    );
    assert_second_stage_decides(u1, u2);
}

// ---------------------------------------------------------------------------------------------
// f16's stages on their own (float_check with DTYPE 1): the f32 proof (dot2_fast_f16, FAST 4),
// the error-free second stage (dot2_split_f16, FAST 2) and the integer path (dot2_exact_f16,
// FAST 0) each decide only correct roundings, and the second stage leaves almost nothing with
// a normal f16 result to the integer path.

#[test]
fn gpu_f16_stages_decide_only_correct_roundings() {
    let Some(gpu) = common::gpu() else { return };
    use common::oracle::{oracle_dot2_in, F16};
    // Every f16 x0 against edge x1 values and tables (y0 = x0·cos + x1·(−sin), y1 =
    // x0·sin + x1·cos): zeros, the smallest subnormal and normal, 1, −1.5, the largest finite,
    // a NaN; identity, real angles, the second stage's range edges (2^-90, 2^16), an f32
    // subnormal, an infinite and a NaN table value, tie makers (1 + 2^-11: x·t exactly on an
    // f16 midpoint for odd x) and near-tie makers (1 + 2^-12 + 2^-23).
    let x1s: [u16; 8] = [
        0x0000, 0x8000, 0x0001, 0x0400, 0x3C00, 0xBE00, 0x7BFF, 0xFE01,
    ];
    let tables = stage_tables(&[
        (1.0 + 2f32.powi(-11), -0.5),
        (1.0 + 2f32.powi(-12) + 2f32.powi(-23), 2f32.powi(-12)),
    ]);
    let mut ops = every_x0_ops(&x1s, &tables);
    let edge = ops.len();
    // Random f16 data of mixed magnitudes at random angles: where the stages' undecided
    // outputs come from.
    let mut r = bfrope::conformance::SplitMix64(0xF16_57A6E);
    let value = |r: &mut bfrope::conformance::SplitMix64| {
        let k = (r.next_u64() % 9) as i32 - 4;
        half::f16::from_f64(r.next_normal() * 2f64.powi(k)).to_bits() as u32
    };
    for _ in 0..1 << 20 {
        let (x0, x1) = (value(&mut r), value(&mut r));
        let t = 1e4 * r.next_f64();
        push_rotation(&mut ops, x0, x1, t.cos() as f32, t.sin() as f32);
    }
    let want: Vec<u32> = par_map(ops.len(), |i| {
        let [a, b, c, d] = ops[i];
        oracle_dot2_in(F16, a as u64, b, c as u64, d) as u32
    });
    let exact = gpu_stage(&gpu, &ops, 1, 0);
    assert_eq!(check_stage("dot2_exact_f16", &exact, &want, &ops).1, 0);
    let first = gpu_stage(&gpu, &ops, 1, 4);
    check_stage("dot2_fast_f16", &first, &want, &ops);
    let second = gpu_stage(&gpu, &ops, 1, 2);
    let (decided, _) = check_stage("dot2_split_f16", &second, &want, &ops);
    let rescued = (0..edge)
        .filter(|&i| second[i] != 0x10000 && first[i] == 0x10000)
        .count();
    eprintln!("edge cases: second stage decided {decided}, {rescued} of them left by the first");
    // On the random data the first stage leaves some outputs undecided (near a midpoint or
    // cancelling), and the second decides all but a few of those with a normal f16 result.
    let (_, u1) = check_stage(
        "dot2_fast_f16, random",
        &first[edge..],
        &want[edge..],
        &ops[edge..],
    );
    let normal_result = |w: u32| (0x0400..0x7C00).contains(&(w & 0x7FFF));
    let u2 = (edge..ops.len())
        .filter(|&i| first[i] == 0x10000 && second[i] == 0x10000 && normal_result(want[i]))
        .count();
    eprintln!(
        "random f16 data: {} outputs, first stage undecided {u1}, both (normal result) {u2}",
        ops.len() - edge
    );
    assert_second_stage_decides(u1, u2);
    assert!(
        rescued >= 1000,
        "the second stage decided only {rescued} edge outputs the first left: lost its cases"
    );
}
