//! Shapes, offsets and tables: random shapes (proptest, fixed seed) where GPU bits == CPU
//! bits == oracle, host validation errors that name the offending values, and the 2-D
//! dispatch grid past 65,535 workgroups.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::gpu::dispatch_grid;
use bfrope::{
    cpu, AngleMode, Direction, Error, Positions, Precision, RopeArgs, RopeCall, RopeShape,
    RopeTable, TableSpec,
};
use common::{gpu, oracle_rotate, rng};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use rand::Rng;

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    dims: [usize; 4],
    row_offset: usize,
    extra_rows: usize,
    direction: Direction,
    /// 0: built `exact` table (base 1e4 or 5e5, positions from `first_position`);
    /// 1: built `torch` table; 2: random f32 bit patterns (specials included).
    table_kind: u8,
    first_position: u64,
    seed: u64,
}

impl Case {
    fn name(&self) -> String {
        let [b, s, h, d] = self.dims;
        format!(
            "rope[b={b},s={s},h={h},d={d},offset={},rows={},table={},first={},{:?},seed={}]",
            self.row_offset,
            self.rows(),
            ["exact", "torch", "random_bits"][self.table_kind as usize],
            self.first_position,
            self.direction,
            self.seed
        )
    }

    fn rows(&self) -> usize {
        self.row_offset + self.dims[1] + self.extra_rows
    }

    fn table(&self) -> RopeTable {
        let d = self.dims[3];
        let rows = self.rows();
        match self.table_kind {
            0 | 1 => RopeTable::build(&TableSpec {
                base: if self.seed % 2 == 0 { 1e4 } else { 5e5 },
                rotary_dim: d,
                first_position: self.first_position,
                rows,
                angles: if self.table_kind == 0 {
                    AngleMode::Exact
                } else {
                    AngleMode::Torch
                },
            })
            .unwrap(),
            _ => {
                let mut r = rng(self.seed ^ 0x7AB1E);
                let n = rows * d / 2;
                let cos: Vec<f32> = (0..n).map(|_| f32::from_bits(r.random())).collect();
                let sin: Vec<f32> = (0..n).map(|_| f32::from_bits(r.random())).collect();
                RopeTable::from_cos_sin(&cos, &sin, rows, d / 2).unwrap()
            }
        }
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        (1usize..=3, 1usize..=40, 1usize..=5, 1usize..=80),
        (0usize..=30, 0usize..=20, any::<bool>()),
        (0u8..=2, 0u64..=2_000_000, any::<u64>()),
    )
        .prop_map(
            |(
                (b, s, h, half),
                (row_offset, extra_rows, inverse),
                (table_kind, first_position, seed),
            )| Case {
                dims: [b, s, h, 2 * half],
                row_offset,
                extra_rows,
                direction: if inverse {
                    Direction::Inverse
                } else {
                    Direction::Forward
                },
                table_kind,
                first_position,
                seed,
            },
        )
}

fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let name = case.name();
    let shape = RopeShape::from_dims(&case.dims).unwrap();
    let table = case.table();
    let mut r = rng(case.seed);
    let x: Vec<u16> = (0..shape.elements()).map(|_| r.random()).collect();
    let inverse = case.direction == Direction::Inverse;
    let want = oracle_rotate(
        &x,
        case.dims,
        |row, i| {
            let [c, s] = table.get(row, i);
            (c.to_bits(), s.to_bits())
        },
        case.row_offset,
        inverse,
    );
    let positions = Positions::Offset(case.row_offset);
    let call = RopeCall::new(shape.into(), &positions, &table).with_direction(case.direction);
    let ours = cpu::apply(&call, &x).unwrap();
    let first_bad = |got: &[u16]| got.iter().zip(&want).position(|(g, w)| g != w);
    prop_assert!(
        first_bad(&ours).is_none(),
        "{name}: CPU differs from the oracle at element {:?}",
        first_bad(&ours)
    );
    if let Some(gpu) = gpu() {
        let got = gpu.apply_blocking(&call, &x).unwrap();
        prop_assert!(
            first_bad(&got).is_none(),
            "{name}: GPU differs from the oracle at element {:?}",
            first_bad(&got)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 24,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xB0F_0BE),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn shapes_random_gpu_eq_cpu_eq_oracle(case in case_strategy()) {
        check_case(&case)?;
    }
}

/// Pinned shapes: head_dim not divisible by 8 (scalar kernel), divisible by 8 (vec4 kernel),
/// the smallest, and a table offset at the last possible row.
#[rustfmt::skip]
const PINNED: &[([usize; 4], usize, usize)] = &[
    // (dims, row_offset, extra rows)
    ([1, 1, 1, 2], 0, 0),        // one pair, one row
    ([1, 3, 2, 6], 5, 0),        // head_dim 6: pairs % 4 != 0, offset at the table's end
    ([2, 5, 3, 10], 0, 7),       // head_dim 10: scalar kernel
    ([3, 7, 5, 8], 2, 1),        // head_dim 8: vec4 kernel, 4 pairs
    ([1, 40, 5, 160], 17, 0),    // largest generated dims
    ([2, 9, 1, 126], 1, 3),      // 63 pairs: odd pair count
];

#[test]
fn shapes_pinned_both_directions() {
    for &(dims, row_offset, extra_rows) in PINNED {
        for direction in [Direction::Forward, Direction::Inverse] {
            for table_kind in 0..=2 {
                let case = Case {
                    dims,
                    row_offset,
                    extra_rows,
                    direction,
                    table_kind,
                    first_position: 65535,
                    seed: 42,
                };
                check_case(&case).unwrap_or_else(|e| panic!("{}: {e}", case.name()));
            }
        }
    }
}

fn assert_err_names(result: Result<impl std::fmt::Debug, Error>, needles: &[&str]) {
    let err = result.expect_err("expected an error");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not name {n:?}");
    }
}

#[test]
fn shapes_validation_errors_name_the_values() {
    // Odd head_dim.
    assert_err_names(RopeShape::new(1, 2, 3, 7), &["7", "odd"]);
    // A zero dimension.
    assert_err_names(RopeShape::new(1, 0, 3, 8), &["[1, 0, 3, 8]"]);
    // Wrong number of dimensions.
    assert_err_names(RopeShape::from_dims(&[2, 3, 4]), &["[2, 3, 4]", "3"]);

    let shape = RopeShape::new(1, 8, 2, 8).unwrap();
    let x = vec![0x3F80u16; shape.elements()];
    let at = |offset: usize, table| (Positions::Offset(offset), table);
    fn call(shape: RopeShape, (positions, table): &(Positions, RopeTable)) -> RopeCall<'_> {
        RopeCall::new(shape.into(), positions, table).with_rotary_dim(8)
    }
    // Table too short: 4 rows, sequence 8.
    let short = at(0, RopeTable::build(&TableSpec::new(8, 4)).unwrap());
    assert_err_names(cpu::apply(&call(shape, &short), &x), &["4 rows", "8"]);
    // Long enough, but not at this offset: rows 10, offset 3 needs 11.
    let ten = at(3, RopeTable::build(&TableSpec::new(8, 10)).unwrap());
    assert_err_names(
        cpu::apply(&call(shape, &ten), &x),
        &["10 rows", "position 3", "11"],
    );
    // Wrong pairs: the table is for head_dim 6 (3 pairs), the tensor has head_dim 8.
    let narrow = at(0, RopeTable::build(&TableSpec::new(6, 8)).unwrap());
    assert_err_names(cpu::apply(&call(shape, &narrow), &x), &["3 pairs", "8"]);
    // Data length: 10 elements for a shape that needs 128.
    let table = RopeTable::build(&TableSpec::new(8, 8)).unwrap();
    let fits = at(0, table.clone());
    assert_err_names(cpu::apply(&call(shape, &fits), &x[..10]), &["10", "128"]);
    // Table construction.
    assert_err_names(
        RopeTable::from_cos_sin(&[1.0; 6], &[0.0; 5], 2, 3),
        &["6", "5", "[2, 3]"],
    );
    assert_err_names(RopeTable::build(&TableSpec::new(7, 4)), &["7"]);
    assert_err_names(
        RopeTable::build(&TableSpec {
            base: -1.0,
            ..TableSpec::new(8, 4)
        }),
        &["-1"],
    );

    // The GPU path refuses the same inputs before touching the device.
    let Some(gpu) = gpu() else { return };
    let p = Precision::Exact;
    let f = Direction::Forward;
    assert_err_names(
        gpu.apply_blocking(&call(shape, &short), &x),
        &["4 rows", "8"],
    );
    assert_err_names(
        gpu.apply_blocking(&call(shape, &narrow), &x),
        &["3 pairs", "8"],
    );
    assert_err_names(
        gpu.apply_blocking(&call(shape, &fits), &x[..10]),
        &["10", "128"],
    );

    // Recording with buffers that do not match what the arguments claim.
    let device = gpu.device();
    let buf = |bytes: u64| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (input, output) = (buf(256), buf(256));
    let small_table = buf(8 * 4 * 4); // 4 rows of 4 pairs
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    let args = RopeArgs {
        input: &input,
        output: &output,
        table: &small_table,
        table_rows: 8,
        row_offset: 0,
        shape,
        direction: f,
        precision: p,
        dtype: bfrope::Dtype::Bf16,
        pairing: bfrope::Pairing::Interleaved,
        table_in_range: false,
    };
    // The arguments claim 8 rows (256 bytes) but the table buffer holds 128 bytes.
    assert_err_names(
        gpu.kernels().record(&mut encoder, &args),
        &["table", "128", "256"],
    );
    // Claimed rows too few for the offset.
    let args = RopeArgs {
        table_rows: 4,
        row_offset: 1,
        ..args
    };
    assert_err_names(
        gpu.kernels().record(&mut encoder, &args),
        &["4 rows", "offset 1"],
    );
}

#[test]
fn shapes_dispatch_grid_splits_into_two_balanced_dimensions() {
    #[rustfmt::skip]
    let cases: &[(u32, u32, (u32, u32))] = &[
        (0, 65535, (0, 0)),              // nothing to do
        (1, 65535, (1, 1)),              // one workgroup
        (65535, 65535, (65535, 1)),      // exactly one full row
        (65536, 65535, (32768, 2)),      // one past the limit: two balanced rows, not 65535 × 2
        (70000, 65535, (35000, 2)),      // the brief's example
        (131071, 65535, (43691, 3)),     // 2·65535 + 1: three rows, 2 groups wasted
        (131072, 65535, (43691, 3)),     // [16,4096,32,128]'s copy: 1 group wasted
        (1000, 256, (250, 4)),           // a small limit
        (65535 * 65535, 65535, (65535, 65535)), // the largest grid
    ];
    for &(groups, max, want) in cases {
        let got = dispatch_grid(groups, max).unwrap();
        assert_eq!(got, want, "dispatch_grid[groups={groups},max={max}]");
        // The grid covers every group and wastes fewer workgroups than it has rows.
        let (x, y) = got;
        assert!(x as u64 * y as u64 >= groups as u64 && x <= max && y <= max);
        if groups > 0 {
            assert!((x as u64) * (y as u64) - (groups as u64) < y as u64);
        }
    }
    // 65535² + 1 groups do not fit a 65535 × 65535 grid.
    let too_many = 65535u32 * 65535 + 1;
    assert_err_names(
        dispatch_grid(too_many, 65535),
        &[&too_many.to_string(), "65535"],
    );
}

/// A tensor whose scalar dispatch needs more than 65,535 workgroups (16,777,216 + 65,536
/// pairs at 256 per workgroup): the 2-D grid must reach every word. GPU bits == CPU bits
/// (the CPU path is held to the oracle by the other tests).
#[test]
fn shapes_gpu_grid_beyond_65535_workgroups_d2() {
    let Some(gpu) = gpu() else { return };
    let pairs = 65535 * 256 + 65536 + 2;
    let shape = RopeShape::new(1, 1, pairs, 2).unwrap();
    let table = RopeTable::from_cos_sin(&[0.6], &[0.8], 1, 1).unwrap();
    let mut r = rng(65536);
    let x: Vec<u16> = (0..shape.elements()).map(|_| r.random()).collect();
    let t = std::time::Instant::now();
    let positions = Positions::Offset(0);
    let call = RopeCall::new(shape.into(), &positions, &table);
    let got = gpu.apply_blocking(&call, &x).unwrap();
    let gpu_time = t.elapsed();
    let want = cpu::apply(&call, &x).unwrap();
    let bad = got.iter().zip(&want).filter(|(g, w)| g != w).count();
    eprintln!(
        "grid test: {} words on the GPU in {gpu_time:.2?}, {bad} mismatches vs CPU",
        shape.words()
    );
    assert_eq!(
        bad,
        0,
        "rope[grid>65535,words={}]: {bad} words differ from the CPU path",
        shape.words()
    );
    // The tail beyond the first 65535 workgroups is where an unwritten word would be.
    let tail = 2 * 65535 * 256;
    assert_eq!(&got[tail..], &want[tail..]);
}

/// The `half::bf16` convenience forms return the bits of the bit-pattern forms, CPU and GPU.
#[test]
fn shapes_bf16_slices_give_the_same_bits() {
    let shape = RopeShape::new(2, 5, 3, 16).unwrap();
    let table = RopeTable::build(&TableSpec::new(16, 9)).unwrap();
    let positions = Positions::PerBatch(vec![4, 0]);
    let call = RopeCall::new(shape.into(), &positions, &table).with_direction(Direction::Inverse);
    let bits = bfrope::conformance::random_bf16(12, shape.elements());
    let x: Vec<half::bf16> = bits.iter().map(|&b| half::bf16::from_bits(b)).collect();
    let want = cpu::apply(&call, &bits).unwrap();
    let as_bits = |v: Vec<half::bf16>| v.into_iter().map(|h| h.to_bits()).collect::<Vec<u16>>();
    assert_eq!(as_bits(cpu::apply_bf16(&call, &x).unwrap()), want, "CPU");
    if let Some(gpu) = gpu() {
        assert_eq!(
            as_bits(gpu.apply_bf16_blocking(&call, &x).unwrap()),
            want,
            "GPU"
        );
    }
}
