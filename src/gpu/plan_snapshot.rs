//! The planner's regression test: the plans of representative calls (kernel labels, binding
//! windows, grids, uniform bytes, copies) against `tests/data/plans.txt`. Contiguous BSHD
//! calls in every dtype, pairing and arithmetic, views with strides and offsets, varlen
//! positions, q and k together, device rows, calls over the binding and grid limits, and
//! calls routed as `Gpu::apply` routes them. `BFROPE_BLESS_PLANS=1` rewrites the file.

use crate::dtype::Dtype;
use crate::gpu::call::{BufferCall, GpuCall, RopeArgs, ViewArgs, ViewTensor};
use crate::gpu::plan::{plan, Plan, PlanLimits};
use crate::shape::{Direction, Precision, RopeShape};
use crate::spec::{Pairing, Positions, RopeCall, Rotation, TensorView};
use crate::table::{RopeTable, TableSpec};
use std::fmt::Write;

const BIG: PlanLimits = PlanLimits {
    max_binding: 1 << 27,
    offset_alignment: 256,
    max_workgroups_per_dim: 65535,
};
const SMALL: PlanLimits = PlanLimits {
    max_binding: 4096,
    offset_alignment: 256,
    max_workgroups_per_dim: 65535,
};
const TINY: PlanLimits = PlanLimits {
    max_binding: 512,
    offset_alignment: 16,
    max_workgroups_per_dim: 65535,
};
const GRID: PlanLimits = PlanLimits {
    max_binding: 1 << 27,
    offset_alignment: 64,
    max_workgroups_per_dim: 6,
};

fn hex(b: &[u8]) -> String {
    b.chunks(4)
        .map(|w| format!("{:08x}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Env {
    device: wgpu::Device,
}
impl Env {
    fn buf(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.div_ceil(16).max(1) * 16,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }
}

fn write_plan(out: &mut String, plan: Result<Plan, crate::Error>) {
    match plan {
        Err(e) => writeln!(out, "  error: {e}").unwrap(),
        Ok(p) => {
            for d in &p.dispatches {
                writeln!(
                    out,
                    "  {} {:?} grid={:?} tensors={:?} table={:?} rows={:?} views={:?} params={}",
                    d.key.label(),
                    d.key,
                    d.grid,
                    d.tensors,
                    d.table,
                    d.rows,
                    d.views,
                    hex(d.params.bytes())
                )
                .unwrap();
            }
            if let Some(copy) = p.copy {
                writeln!(out, "  copy={copy:?}").unwrap();
            }
        }
    }
}

fn contiguous(out: &mut String, name: &str, args: &RopeArgs, limits: PlanLimits) {
    writeln!(out, "contiguous {name} {:?} {limits:?}", args.shape).unwrap();
    write_plan(out, plan(&GpuCall::from(args), limits));
}

fn view(out: &mut String, name: &str, args: &ViewArgs, limits: PlanLimits) {
    writeln!(out, "view {name} {limits:?}").unwrap();
    write_plan(out, plan(&GpuCall::from(args), limits));
}

/// What the Rotator records for `call` on buffers holding `len` elements.
fn routed(
    out: &mut String,
    env: &Env,
    name: &str,
    call: &RopeCall,
    len: usize,
    limits: PlanLimits,
) {
    let bytes = (len * call.rotation.dtype.size()) as u64;
    let (input, output) = (env.buf(bytes), env.buf(bytes));
    let table = env.buf(call.table.as_bytes().len() as u64);
    writeln!(out, "call {name} {:?} {:?}", call.view, call.rotation).unwrap();
    let key = crate::gpu::plan::kernel_for(call);
    match call
        .contiguous_pairs()
        .filter(|_| key.kernel.is_contiguous())
    {
        Some((shape, _, _)) => writeln!(out, "contiguous {name} {shape:?} {limits:?}").unwrap(),
        None => writeln!(out, "view {name} {limits:?}").unwrap(),
    }
    let p = plan(
        &GpuCall::Buffer(BufferCall {
            call: *call,
            input: &input,
            output: &output,
            table: &table,
            bytes: bytes.div_ceil(4) * 4,
            table_in_range: call.table.in_fast_range(),
        }),
        limits,
    );
    if let Ok(p) = &p {
        assert!(
            p.dispatches.iter().all(|d| d.key == key),
            "{name}: kernel_for says {}",
            key.label()
        );
    }
    write_plan(out, p);
}

#[test]
fn plans_of_representative_calls_are_unchanged() {
    let gpu = match crate::gpu::Gpu::new_blocking(None) {
        Ok(gpu) => gpu,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: no GPU adapter ({e}); under CI=true this is a failure");
            return;
        }
        Err(e) => panic!("CI=true and no GPU adapter: {e}"),
    };
    let env = Env {
        device: gpu.device().clone(),
    };
    let mut out = String::new();
    // Contiguous calls.
    // (name, dims, pairing, arithmetic, dtype, direction, table in range, row offset, table
    // rows, limits)
    type Case = (
        &'static str,
        [usize; 4],
        Pairing,
        Precision,
        Dtype,
        Direction,
        bool,
        usize,
        usize,
        PlanLimits,
    );
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("vec4 bf16 exact", [2, 5, 3, 8], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 3, 20, BIG),
        ("vec4 bf16 exact in range", [2, 5, 3, 8], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, true, 3, 20, BIG),
        ("scalar bf16 fast", [1, 7, 3, 6], Pairing::Interleaved, Precision::Fast, Dtype::Bf16, Direction::Forward, false, 0, 7, BIG),
        ("vec4half f16 hf", [2, 4, 2, 16], Pairing::HalfSplit, Precision::Hf, Dtype::F16, Direction::Inverse, true, 1, 9, BIG),
        ("vec4half bf16 exact in range", [2, 4, 2, 16], Pairing::HalfSplit, Precision::Exact, Dtype::Bf16, Direction::Forward, true, 0, 4, BIG),
        ("half-split 6 pairs", [1, 3, 2, 12], Pairing::HalfSplit, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 0, 3, BIG),
        ("f32", [1, 3, 2, 8], Pairing::Interleaved, Precision::Exact, Dtype::F32, Direction::Forward, false, 0, 3, BIG),
        ("short table", [1, 9, 2, 8], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 4, 10, BIG),
        ("vec4 split", [3, 64, 4, 32], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 5, 80, SMALL),
        ("scalar split", [3, 64, 4, 6], Pairing::Interleaved, Precision::Fast, Dtype::F16, Direction::Forward, false, 0, 64, SMALL),
        ("vec4half split", [3, 64, 4, 32], Pairing::HalfSplit, Precision::Exact, Dtype::Bf16, Direction::Inverse, false, 2, 70, SMALL),
        ("vec4 long seq split", [1, 300, 1, 8], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 0, 300, TINY),
        ("vec4 grid", [2, 100, 8, 64], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 0, 100, GRID),
        ("scalar grid", [2, 50, 3, 6], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 0, 100, GRID),
        ("too small", [1, 2, 64, 128], Pairing::Interleaved, Precision::Exact, Dtype::Bf16, Direction::Forward, false, 0, 2, TINY),
    ];
    for (name, dims, pairing, precision, dtype, direction, tir, row_offset, table_rows, limits) in
        cases
    {
        let shape = RopeShape::from_dims(&dims).unwrap();
        let bytes = shape.elements() as u64 * 4;
        let (input, output, table) = (
            env.buf(bytes),
            env.buf(bytes),
            env.buf((table_rows * shape.pairs() * 8) as u64),
        );
        let args = RopeArgs {
            input: &input,
            output: &output,
            table: &table,
            table_rows,
            row_offset,
            shape,
            direction,
            precision,
            dtype,
            pairing,
            table_in_range: tir,
        };
        contiguous(&mut out, name, &args, limits);
    }
    // View calls.
    let rot = |pairing, rotary_dim, precision, dtype| Rotation {
        pairing,
        rotary_dim,
        direction: Direction::Forward,
        precision,
        dtype,
    };
    let strided = TensorView {
        dims: [2, 3, 4, 6],
        strides: [200, 60, 7],
        offset: 3,
    };
    // (name, q, k, rotation, positions, table rows, in place, k's buffers (0: its own, 1:
    // q's), device rows, limits)
    type ViewCase = (
        &'static str,
        TensorView,
        Option<TensorView>,
        Rotation,
        Positions,
        usize,
        bool,
        u8,
        bool,
        PlanLimits,
    );
    #[rustfmt::skip]
    let views: Vec<ViewCase> = vec![
        ("bshd out of place", TensorView::bshd(2, 5, 3, 8), None, rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::Offset(2), 10, false, 0, false, BIG),
        ("bhsd offset half-split rotary 4 fast", TensorView::bhsd(3, 7, 4, 6).with_offset(5), None, rot(Pairing::HalfSplit, 4, Precision::Fast, Dtype::Bf16), Positions::PerBatch(vec![0, 3, 1]), 8, false, 0, false, BIG),
        ("bhsd offset 4 half-split rotary 4", TensorView::bhsd(3, 7, 4, 8).with_offset(4), None, rot(Pairing::HalfSplit, 4, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 8, false, 0, false, BIG),
        ("strided f16 per token", strided, None, rot(Pairing::Interleaved, 6, Precision::Exact, Dtype::F16), Positions::PerToken((0..6).map(|i| 5 - i).collect()), 6, false, 0, false, BIG),
        ("f32 in place", TensorView::bshd(2, 3, 2, 8), None, rot(Pairing::HalfSplit, 8, Precision::Exact, Dtype::F32), Positions::Offset(0), 3, true, 0, false, BIG),
        ("f32 out of place rotary 4", TensorView::bshd(2, 3, 2, 8).with_offset(1), None, rot(Pairing::Interleaved, 4, Precision::Fast, Dtype::F32), Positions::Offset(1), 4, false, 0, false, BIG),
        ("varlen", TensorView::bshd(1, 10, 2, 8), None, rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::from_cu_seqlens(&[0, 3, 7, 10], 10, 1).unwrap(), 5, false, 0, false, BIG),
        ("in place halves", TensorView::bshd(2, 3, 2, 8).with_offset(1), None, rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 3, true, 0, false, BIG),
        ("in place words hf", TensorView::bshd(2, 3, 2, 8), None, rot(Pairing::HalfSplit, 8, Precision::Hf, Dtype::F16), Positions::Offset(0), 3, true, 0, false, BIG),
        ("exact table in range", TensorView::bshd(2, 3, 2, 8), None, rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 3, false, 0, false, BIG),
        ("q+k gqa", TensorView::bshd(2, 3, 4, 8), Some(TensorView::bshd(2, 3, 2, 8)), rot(Pairing::HalfSplit, 8, Precision::Exact, Dtype::Bf16), Positions::PerBatch(vec![1, 4]), 8, false, 0, false, BIG),
        ("q+k fused in place", TensorView { dims: [2, 3, 4, 8], strides: [3 * 64, 64, 8], offset: 0 }, Some(TensorView { dims: [2, 3, 2, 8], strides: [3 * 64, 64, 8], offset: 32 }), rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 3, true, 1, false, BIG),
        ("q+k device rows", TensorView::bshd(4, 1, 4, 8), Some(TensorView::bshd(4, 1, 2, 8)), rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 30, false, 0, true, BIG),
        ("bhsd split", TensorView::bhsd(2, 4, 8, 16), None, rot(Pairing::HalfSplit, 16, Precision::Exact, Dtype::Bf16), Positions::Offset(3), 12, false, 0, false, TINY),
        ("strided split per token", TensorView { dims: [3, 5, 4, 6], strides: [200, 30, 7], offset: 3 }, None, rot(Pairing::Interleaved, 4, Precision::Exact, Dtype::F16), Positions::PerToken((0..15).map(|i| (i * 7) % 15).collect()), 15, false, 0, false, TINY),
        ("q+k split", TensorView::bshd(2, 16, 4, 8), Some(TensorView::bshd(2, 16, 2, 8)), rot(Pairing::Interleaved, 8, Precision::Fast, Dtype::Bf16), Positions::PerBatch(vec![0, 2]), 20, false, 0, false, TINY),
        ("device rows split", TensorView::bshd(2, 16, 4, 8), None, rot(Pairing::Interleaved, 8, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 20, false, 0, true, TINY),
        ("view grid", TensorView::bshd(2, 100, 8, 64), None, rot(Pairing::Interleaved, 64, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 100, false, 0, false, GRID),
        ("bad rotary", TensorView::bshd(2, 3, 2, 8), None, rot(Pairing::Interleaved, 10, Precision::Exact, Dtype::Bf16), Positions::Offset(0), 3, false, 0, false, BIG),
    ];
    for (n, (name, q, k, rotation, positions, table_rows, in_place, k_shared, device, limits)) in
        views.into_iter().enumerate()
    {
        let size = rotation.dtype.size() as u64;
        let words = |v: &TensorView| (v.span() as u64 * size).div_ceil(4) * 4;
        let qi = env.buf(words(&q) + if k_shared == 1 { words(&k.unwrap()) } else { 0 });
        let qo = if in_place {
            qi.clone()
        } else {
            env.buf(words(&q))
        };
        let (ki, ko) = match k {
            Some(_) if k_shared == 1 => (qi.clone(), qo.clone()),
            Some(kv) => {
                let ki = env.buf(words(&kv));
                let ko = if in_place {
                    ki.clone()
                } else {
                    env.buf(words(&kv))
                };
                (ki, ko)
            }
            None => (qi.clone(), qo.clone()),
        };
        let table = env.buf((table_rows * rotation.pairs().max(1) * 8) as u64);
        let rows = env.buf((q.batch() * q.seq() * 4) as u64);
        let args = ViewArgs {
            q: ViewTensor {
                input: &qi,
                output: &qo,
                view: q,
            },
            k: k.map(|kv| ViewTensor {
                input: &ki,
                output: &ko,
                view: kv,
            }),
            table: &table,
            table_rows,
            rotation,
            positions: &positions,
            device_rows: device.then_some(&rows),
            table_in_range: n == 9 || n == 10,
        };
        view(&mut out, name, &args, limits);
    }
    // Calls as the Rotator (Gpu::apply) routes them.
    let t8 = RopeTable::build(&TableSpec::new(8, 40)).unwrap();
    let t16 = RopeTable::build(&TableSpec::new(16, 40)).unwrap();
    let t4 = RopeTable::build(&TableSpec::new(4, 40)).unwrap();
    let t12 = RopeTable::build(&TableSpec::new(12, 40)).unwrap();
    let t6 = RopeTable::build(&TableSpec::new(6, 40)).unwrap();
    let o3 = Positions::Offset(3);
    let pt = Positions::PerToken((0..8).collect());
    #[rustfmt::skip]
    let calls: Vec<(&str, RopeCall, usize, PlanLimits)> = vec![
        ("bshd vec4", RopeCall::new(TensorView::bshd(2, 4, 2, 8), &o3, &t8), 128, BIG),
        ("bshd vec4 tail", RopeCall::new(TensorView::bshd(2, 4, 2, 8), &o3, &t8), 140, BIG),
        ("bshd scalar fast", RopeCall::new(TensorView::bshd(2, 4, 2, 6), &o3, &t6).with_precision(Precision::Fast), 96, BIG),
        ("bhsd half f16", RopeCall::new(TensorView::bhsd(2, 3, 4, 16), &o3, &t16).with_pairing(Pairing::HalfSplit).with_dtype(Dtype::F16), 384, BIG),
        ("bhsd half f16 split", RopeCall::new(TensorView::bhsd(2, 3, 4, 16), &o3, &t16).with_pairing(Pairing::HalfSplit).with_dtype(Dtype::F16), 384, TINY),
        ("half 6 pairs", RopeCall::new(TensorView::bshd(2, 4, 2, 12), &o3, &t12).with_pairing(Pairing::HalfSplit), 192, BIG),
        ("rotary 4 of 8", RopeCall::new(TensorView::bshd(2, 4, 2, 8), &o3, &t4).with_rotary_dim(4), 128, BIG),
        ("f32 bshd", RopeCall::new(TensorView::bshd(2, 4, 2, 8), &o3, &t8).with_dtype(Dtype::F32), 128, BIG),
        ("offset view", RopeCall::new(TensorView::bshd(2, 4, 2, 8).with_offset(2), &o3, &t8), 130, BIG),
        ("per token", RopeCall::new(TensorView::bshd(2, 4, 2, 8), &pt, &t8).with_direction(Direction::Inverse), 128, BIG),
    ];
    for (name, call, len, limits) in calls {
        routed(&mut out, &env, name, &call, len, limits);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/plans.txt");
    if std::env::var("BFROPE_BLESS_PLANS").as_deref() == Ok("1") {
        std::fs::write(path, &out).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if let Ok(dump) = std::env::var("BFROPE_PLAN_DUMP") {
        std::fs::write(dump, &out).unwrap();
    }
    assert!(want == out, "the plans differ from {path} (BFROPE_BLESS_PLANS=1 rewrites it after a deliberate change); first difference at line {}", want.lines().zip(out.lines()).position(|(a, b)| a != b).unwrap_or(want.lines().count().min(out.lines().count())) + 1);
}
