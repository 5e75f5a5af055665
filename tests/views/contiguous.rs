//! The contiguous vec4 kernels beyond interleaved BSHD: the
//! half-split vec4 kernel (8 + 8 elements per invocation) and contiguous BHSD tensors, which
//! `RopeCall::contiguous_pairs` maps to BSHD with `batch · heads` one-head sequences (whole
//! tokens per workgroup). GPU (convenience path, and recording into a sentinel-filled output)
//! == CPU == the independent oracle, bit for bit: every bf16 code, special table values, and
//! seeded shapes that cross workgroup, sequence and head boundaries.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::gpu::{Kernel, KernelKey};
use bfrope::{
    cpu, Direction, Dtype, Pairing, Positions, Precision, RopeArgs, RopeCall, RopeShape, RopeTable,
    TableSpec, TensorView,
};
use common::oracle::{oracle_rotate_view, OracleView};
use common::{gpu, rng};
use rand::Rng;
use wgpu::util::DeviceExt;

/// The oracle's output for `call` on `x` (positions `offset + s`).
fn oracle(call: &RopeCall, x: &[u16], offset: usize) -> Vec<u16> {
    let v = call.view;
    let rows: Vec<usize> = (0..v.batch() * v.seq())
        .map(|t| offset + t % v.seq())
        .collect();
    let pairs = call.table.pairs();
    let cs = call.table.cos_sin();
    oracle_rotate_view(
        x,
        &OracleView {
            dims: v.dims,
            strides: v.strides,
            offset: v.offset,
            half_split: call.rotation.pairing == Pairing::HalfSplit,
            rotary_dim: call.rotation.rotary_dim,
            rows: &rows,
            inverse: call.rotation.direction == Direction::Inverse,
        },
        |r, i| {
            let [c, s] = cs[r * pairs + i];
            (c.to_bits(), s.to_bits())
        },
    )
}

/// Counts mismatches, naming the first few by element index.
fn compare(case: &str, got: &[u16], want: &[u16]) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    let bad: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .take(8)
        .map(|(i, (g, w))| format!("element {i}: {g:#06x}, oracle {w:#06x}"))
        .collect();
    let count = got.iter().zip(want).filter(|(g, w)| g != w).count();
    assert!(
        count == 0,
        "{case}: {count} mismatches, first:\n{}",
        bad.join("\n")
    );
}

/// Records the call through `RopeKernels::record` (the contiguous kernels alone) into an
/// output filled with the sentinel `u32::MAX`, and returns what the kernel wrote; with
/// `table_in_range` the kernel skips testing table values (the pipeline `Gpu::apply` runs for
/// a table in range), without it tests them (a raw table not known to be).
fn record_sentinel(
    gpu: &bfrope::Gpu,
    call: &RopeCall,
    x: &[u16],
    offset: usize,
    table_in_range: bool,
) -> Vec<u16> {
    let (shape, row_offset, pairing) = call.contiguous_pairs().expect("a contiguous call");
    let device = gpu.device();
    let storage = wgpu::BufferUsages::STORAGE;
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("contiguous input"),
        contents: bytemuck::cast_slice(x),
        usage: storage,
    });
    let table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("contiguous table"),
        contents: call.table.as_bytes(),
        usage: storage,
    });
    let sentinel = vec![u32::MAX; x.len() / 2];
    let output = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("contiguous output (sentinel)"),
        contents: bytemuck::cast_slice(&sentinel),
        usage: storage | wgpu::BufferUsages::COPY_SRC,
    });
    assert_eq!(row_offset, offset);
    let mut encoder = device.create_command_encoder(&Default::default());
    gpu.kernels()
        .record(
            &mut encoder,
            &RopeArgs {
                input: &input,
                output: &output,
                table: &table,
                table_rows: call.table.rows(),
                row_offset,
                shape,
                direction: call.rotation.direction,
                precision: Precision::Exact,
                pairing,
                dtype: call.rotation.dtype,
                table_in_range,
            },
        )
        .unwrap();
    let words = pollster::block_on(gpu.read_back(encoder, &output, x.len() as u64 * 2)).unwrap();
    let unwritten = words.iter().filter(|&&w| w == u32::MAX).count();
    assert_eq!(unwritten, 0, "{unwritten} words still hold the sentinel");
    bytemuck::cast_slice(&words).to_vec()
}

/// CPU, GPU (both paths) and oracle on one call.
fn check_all(case: &str, call: &RopeCall, x: &[u16], offset: usize, want_kernel: Kernel) {
    let (shape, _, pairing) = call.contiguous_pairs().expect("a contiguous call");
    let key = KernelKey::for_contiguous(&shape, pairing, Precision::Exact, call.rotation.dtype)
        .expect("a kernel");
    assert_eq!(key.kernel, want_kernel, "{case}: kernel");
    let want = oracle(call, x, offset);
    compare(
        &format!("{case}[cpu]"),
        &cpu::apply(call, x).unwrap(),
        &want,
    );
    let Some(gpu) = gpu() else { return };
    compare(
        &format!("{case}[gpu apply]"),
        &gpu.apply_blocking(call, x).unwrap(),
        &want,
    );
    compare(
        &format!("{case}[gpu record, sentinel, table tested]"),
        &record_sentinel(&gpu, call, x, offset, false),
        &want,
    );
    if call.table.in_fast_range() {
        compare(
            &format!("{case}[gpu record, sentinel, table in range]"),
            &record_sentinel(&gpu, call, x, offset, true),
            &want,
        );
    }
}

/// Every bf16 code as the first-half element of a pair, against edge and random partners, at
/// angles that reach the arithmetic's edges: the half-split vec4 kernel, forward and inverse.
#[test]
fn contiguous_half_split_all_codes_d16() {
    #[rustfmt::skip]
    let partners: [u16; 8] = [
        0x0000, // +0
        0x8000, // -0
        0x3F80, // +1
        0x0001, // smallest subnormal
        0x7F7F, // largest finite
        0xFF80, // -inf
        0x7FC0, // NaN
        0xC2F7, // -123.5, an ordinary value
    ];
    #[rustfmt::skip]
    let angles: [(f32, f32); 6] = [
        (1.0, 0.0),                                            // position 0: a zero sin
        (0.707_106_77, 0.707_106_77),                          // pi/4
        (6.123_234e-17, 1.0),                                  // pi/2: a tiny normal cos
        (0.540_302_3, 0.841_470_96),                           // 1 rad
        (1.0 - f32::EPSILON / 2.0, 1e-40),                     // a subnormal sin
        (-0.801_143_6, 0.598_472_1),                           // 2.5 rad: negative cos
    ];
    let pairs = 8;
    let head_dim = 2 * pairs;
    // One head holds 8 pairs: x0 codes in its first half, their partners in its second.
    let per_angle = 65536 * partners.len();
    let heads = per_angle / pairs;
    let mut x = Vec::with_capacity(angles.len() * per_angle * 2);
    for _ in &angles {
        for h in 0..heads {
            let first = h * pairs;
            let codes = (first..first + pairs).map(|j| (j % 65536) as u16);
            let mates = (first..first + pairs).map(|j| partners[j / 65536]);
            x.extend(codes);
            x.extend(mates);
        }
    }
    let cos: Vec<f32> = angles.iter().flat_map(|a| [a.0; 8]).collect();
    let sin: Vec<f32> = angles.iter().flat_map(|a| [a.1; 8]).collect();
    let table = RopeTable::from_cos_sin(&cos, &sin, angles.len(), pairs).unwrap();
    let positions = Positions::Offset(0);
    for direction in [Direction::Forward, Direction::Inverse] {
        let call = RopeCall::new(
            TensorView::bshd(1, angles.len(), heads, head_dim),
            &positions,
            &table,
        )
        .with_pairing(Pairing::HalfSplit)
        .with_direction(direction);
        check_all(
            &format!("rope[half,d=16,all codes,{direction:?}]"),
            &call,
            &x,
            0,
            Kernel::Vec4Half,
        );
    }
}

/// Table values the f32 proof must not trust — zeros, subnormals, values past 2^16, infinities
/// and NaN — in every slot of a vec4 of table entries, through both vec4 kernels.
#[test]
fn contiguous_special_table_values_both_pairings() {
    #[rustfmt::skip]
    let specials: [f32; 10] = [
        0.0, -0.0, 1e-40, -1e-40, f32::MIN_POSITIVE, 70000.0, -3e38, f32::INFINITY, f32::NAN, 0.75,
    ];
    let pairs = 16;
    let rows = 12;
    let mut r = rng(0xC0_57);
    // Each row mixes special and ordinary values at different slots.
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for row in 0..rows {
        for i in 0..pairs {
            let pick = |k: usize| specials[k % specials.len()];
            let ordinary = 0.5 + (i as f32) / 64.0;
            cos.push(if (i + row) % 3 == 0 {
                pick(i + row)
            } else {
                ordinary
            });
            sin.push(if (i * 7 + row) % 4 == 0 {
                pick(i * 3 + row)
            } else {
                -ordinary / 2.0
            });
        }
    }
    let table = RopeTable::from_cos_sin(&cos, &sin, rows, pairs).unwrap();
    let positions = Positions::Offset(2);
    let [b, s, h, d] = [2, 10, 3, 2 * pairs];
    let x: Vec<u16> = (0..b * s * h * d).map(|_| r.random()).collect();
    for (pairing, kernel) in [
        (Pairing::Interleaved, Kernel::Vec4),
        (Pairing::HalfSplit, Kernel::Vec4Half),
    ] {
        for direction in [Direction::Forward, Direction::Inverse] {
            let call = RopeCall::new(TensorView::bshd(b, s, h, d), &positions, &table)
                .with_pairing(pairing)
                .with_direction(direction);
            check_all(
                &format!("rope[{},special tables,{direction:?}]", pairing.name()),
                &call,
                &x,
                2,
                kernel,
            );
        }
    }
}

/// Contiguous BHSD tensors take the vec4 kernels as `batch · heads` one-head sequences (many
/// tokens per workgroup), and BSHD shapes whose tokens are shorter or longer than a
/// workgroup: seeded data, position offsets, both pairings and directions.
#[test]
fn contiguous_bhsd_and_token_lengths_gpu_eq_cpu_eq_oracle() {
    #[rustfmt::skip]
    let cases: [(&str, [usize; 4], usize); 10] = [
        // (layout, memory dims, position offset)
        ("bhsd", [2, 3, 37, 128], 0),
        ("bhsd", [1, 5, 19, 16], 3),    // two units per token: 64 tokens a workgroup
        ("bhsd", [2, 3, 11, 8], 1),     // pairs 4: one unit per token (both pairings)
        ("bshd", [2, 5, 3, 24], 4),     // pairs 12 (% 8 == 4): half-split units across heads
        ("bhsd", [3, 2, 1, 64], 7),     // decode: one token per sequence
        ("bhsd", [1, 1, 300, 48], 1),   // pairs 24: half-split units of 4 + 4 in a 24-pair head
        ("bshd", [3, 7, 3, 64], 0),
        ("bshd", [1, 9, 40, 128], 5),   // 640 vec4 per token: three workgroups, the last partial
        ("bshd", [2, 65, 1, 16], 0),    // one head of 16 per token
        ("bshd", [1, 3, 1024, 16], 2),  // units per token a whole number of workgroups
    ];
    let mut r = rng(0xB45D);
    for (layout, dims, offset) in cases {
        let view = match layout {
            "bhsd" => TensorView::bhsd(dims[0], dims[1], dims[2], dims[3]),
            _ => TensorView::bshd(dims[0], dims[1], dims[2], dims[3]),
        };
        let seq = view.seq();
        let d = view.head_dim();
        let mut spec = TableSpec::new(d, offset + seq);
        spec.base = 300.0;
        let table = RopeTable::build(&spec).unwrap();
        let n: usize = dims.iter().product();
        let x: Vec<u16> = (0..n)
            .map(|_| {
                // Mostly ordinary values of mixed magnitude, a sprinkle of any pattern.
                if r.random_range(0..50) == 0 {
                    r.random()
                } else {
                    let e: u16 = r.random_range(100..150);
                    (r.random::<u16>() & 0x807F) | (e << 7)
                }
            })
            .collect();
        let positions = Positions::Offset(offset);
        for pairing in [Pairing::Interleaved, Pairing::HalfSplit] {
            let kernel = match pairing {
                Pairing::Interleaved => Kernel::Vec4,
                Pairing::HalfSplit => Kernel::Vec4Half,
            };
            for direction in [Direction::Forward, Direction::Inverse] {
                let call = RopeCall::new(view, &positions, &table)
                    .with_pairing(pairing)
                    .with_direction(direction);
                let (shape, _, _) = call.contiguous_pairs().unwrap();
                if layout == "bhsd" {
                    assert_eq!(
                        shape,
                        RopeShape::new(dims[0] * dims[1], dims[2], 1, dims[3]).unwrap(),
                        "BHSD maps to batch · heads one-head sequences"
                    );
                }
                check_all(
                    &format!(
                        "rope[{layout},{dims:?},{},offset={offset},{direction:?}]",
                        pairing.name()
                    ),
                    &call,
                    &x,
                    offset,
                    kernel,
                );
            }
        }
    }
}

/// Half-split heads whose pairs are not a multiple of 4 have no vec4 kernel: the library
/// routes them to the general kernel (still exact), and the recording API refuses them with
/// a message naming the pair count.
#[test]
fn contiguous_half_split_without_vec4_kernel() {
    let shape = RopeShape::new(1, 4, 2, 12).unwrap();
    assert!(
        KernelKey::for_contiguous(&shape, Pairing::HalfSplit, Precision::Exact, Dtype::Bf16)
            .is_none()
    );
    let table = RopeTable::build(&TableSpec::new(12, 4)).unwrap();
    let positions = Positions::Offset(0);
    let call = RopeCall::new(shape.into(), &positions, &table).with_pairing(Pairing::HalfSplit);
    let x: Vec<u16> = (0..shape.elements() as u16).map(|i| 0x3F00 + i).collect();
    let want = oracle(&call, &x, 0);
    compare(
        "rope[half,d=12,cpu]",
        &cpu::apply(&call, &x).unwrap(),
        &want,
    );
    let Some(gpu) = gpu() else { return };
    compare(
        "rope[half,d=12,gpu general]",
        &gpu.apply_blocking(&call, &x).unwrap(),
        &want,
    );
    let device = gpu.device();
    let buf = |label| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: 4096,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (input, output, table_buf) = (buf("in"), buf("out"), buf("table"));
    let err = gpu
        .kernels()
        .validate(&RopeArgs {
            input: &input,
            output: &output,
            table: &table_buf,
            table_rows: 4,
            row_offset: 0,
            shape,
            direction: Direction::Forward,
            precision: Precision::Exact,
            pairing: Pairing::HalfSplit,
            dtype: Dtype::Bf16,
            table_in_range: false,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("pairs per head (6)"),
        "message names the pair count: {err}"
    );
}
