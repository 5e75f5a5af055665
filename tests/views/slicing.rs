//! Tensors larger than one storage binding: the library splits a call into dispatches at
//! aligned binding offsets (src/gpu/plan.rs). With [`Gpu::with_max_binding`] forcing small
//! limits, every split (one token per dispatch, a few tokens, whole sequences, a window that
//! starts mid-alignment) must give the unsliced result bit for bit, equal to the CPU path and
//! the independent oracle; and a tensor over lavapipe's real 128 MiB binding limit rotates.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::{
    cpu, Direction, Dtype, Gpu, Pairing, Positions, Precision, RopeArgs, RopeCall, RopeShape,
    RopeTable, Rotation, TableSpec, TensorView, ViewArgs, ViewTensor,
};
use common::oracle::{self, oracle_pair_in, oracle_rotate_view, OracleView};
use common::oracle_rotate;
use wgpu::util::DeviceExt;

fn table(rows: usize, pairs: usize) -> RopeTable {
    let mut spec = TableSpec::new(2 * pairs, rows);
    spec.base = 500.0;
    spec.first_position = 3;
    RopeTable::build(&spec).unwrap()
}

/// Dispatches a `record` of this call takes on `gpu`.
fn dispatches(gpu: &Gpu, shape: RopeShape, t: &RopeTable, row_offset: usize) -> usize {
    let buf = |bytes: u64| {
        gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.max(16),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let bytes = shape.elements() as u64 * 2;
    let (input, output, tb) = (buf(bytes), buf(bytes), buf(t.as_bytes().len() as u64));
    gpu.kernels()
        .validate(&RopeArgs {
            input: &input,
            output: &output,
            table: &tb,
            table_rows: t.rows(),
            row_offset,
            shape,
            direction: Direction::Forward,
            precision: Precision::Exact,
            dtype: bfrope::Dtype::Bf16,
            pairing: bfrope::Pairing::Interleaved,
            table_in_range: t.in_fast_range(),
        })
        .unwrap()
}

#[test]
fn slicing_forced_small_limits_give_the_unsliced_bits() {
    let Some(gpu) = common::gpu() else { return };
    let align = gpu.device().limits().min_storage_buffer_offset_alignment as u64;
    let align = align.max(16);
    // (dims, row_offset): odd token sizes (36 bytes: the scalar kernel), vec4 heads, one head.
    let cases: &[([usize; 4], usize)] = &[
        ([2, 7, 3, 6], 0),
        ([2, 7, 3, 6], 5),
        ([3, 5, 2, 8], 2),
        ([1, 40, 4, 16], 1),
        ([4, 3, 1, 2], 0),
        ([2, 9, 1, 128], 7),
    ];
    for &(dims, row_offset) in cases {
        let shape = RopeShape::from_dims(&dims).unwrap();
        let t = table(row_offset + shape.seq + 2, shape.pairs());
        let x = bfrope::conformance::random_bf16(
            dims.iter().product::<usize>() as u64,
            shape.elements(),
        );
        let positions = Positions::Offset(row_offset);
        let call = RopeCall::new(shape.into(), &positions, &t);
        let whole = gpu.apply_blocking(&call, &x).unwrap();
        let on_cpu = cpu::apply(&call, &x).unwrap();
        let oracle = oracle_rotate(
            &x,
            dims,
            |r, i| {
                let [c, s] = t.get(r, i);
                (c.to_bits(), s.to_bits())
            },
            row_offset,
            false,
        );
        assert_eq!(whole, oracle, "{dims:?}: unsliced GPU vs oracle");
        assert_eq!(on_cpu, oracle, "{dims:?}: CPU path vs oracle");
        let token = (shape.heads * shape.head_dim * 2) as u64;
        let row = (shape.pairs() * 8) as u64;
        let unit = token.max(row);
        for limit in [
            align + unit,
            align + 3 * unit + 4,
            align + shape.seq as u64 * unit,
            align + (shape.seq as u64 + 1) * unit,
        ] {
            let small = gpu.clone().with_max_binding(limit);
            let n = dispatches(&small, shape, &t, row_offset);
            for direction in [Direction::Forward, Direction::Inverse] {
                let call = call.with_direction(direction);
                let got = small.apply_blocking(&call, &x).unwrap();
                let want = if direction == Direction::Forward {
                    whole.clone()
                } else {
                    cpu::apply(&call, &x).unwrap()
                };
                let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(
                    bad, 0,
                    "{dims:?} offset {row_offset} limit {limit} ({n} dispatches) {direction:?}: {bad} mismatches"
                );
            }
            if limit == align + unit {
                assert_eq!(
                    n,
                    shape.tokens(),
                    "{dims:?}: one token per dispatch at limit {limit}"
                );
            }
        }
    }
}

#[test]
fn slicing_a_token_larger_than_the_limit_is_refused_naming_it() {
    let Some(gpu) = common::gpu() else { return };
    let shape = RopeShape::new(1, 4, 2, 64).unwrap();
    let t = table(4, 32);
    let x = vec![0x3F80u16; shape.elements()];
    let small = gpu.clone().with_max_binding(64);
    let positions = Positions::Offset(0);
    let e = small
        .apply_blocking(&RopeCall::new(shape.into(), &positions, &t), &x)
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, bfrope::Error::Limit(_)), "{msg}");
    assert!(
        msg.contains("256 bytes") && msg.contains("64 bytes"),
        "{msg}"
    );
}

/// A Rotator fed pieces of whole tokens ([`Positions::piece`] places each) gives the whole
/// call's bits: contiguous calls at an offset (the fast kernels), per-batch offsets and
/// half-split partial rotary (the general kernel), all with the one resident table.
#[test]
fn slicing_a_rotator_rotates_piece_by_piece_like_the_whole() {
    let Some(gpu) = common::gpu() else { return };
    let shape = RopeShape::new(3, 50, 4, 32).unwrap();
    let t = table(60, 16);
    let half_table = table(60, 8);
    let x = bfrope::conformance::random_bf16(77, shape.elements());
    let at_4 = Positions::Offset(4);
    let per_batch = Positions::PerBatch(vec![9, 0, 3]);
    let calls = [
        RopeCall::new(shape.into(), &at_4, &t),
        RopeCall::new(shape.into(), &per_batch, &t).with_direction(Direction::Inverse),
        RopeCall::new(shape.into(), &at_4, &half_table)
            .with_pairing(Pairing::HalfSplit)
            .with_rotary_dim(16),
    ];
    for call in &calls {
        let want = cpu::apply(call, &x).unwrap();
        let mut rotator = gpu.rotator_blocking(call.table).unwrap();
        for max_tokens in [1, 7, 50, 120, 1000] {
            let mut got = vec![0u16; x.len()];
            for r in shape.token_ranges(max_tokens) {
                let e = r.elements(&shape);
                let positions = call.positions.piece(shape.seq, &r);
                let piece = RopeCall {
                    view: r.shape(&shape).into(),
                    positions: &positions,
                    ..*call
                };
                rotator
                    .apply_into_blocking(&piece, &x[e.clone()], &mut got[e])
                    .unwrap();
            }
            assert_eq!(
                got, want,
                "{:?} {:?}: pieces of at most {max_tokens} tokens",
                call.positions, call.rotation
            );
        }
    }
}

/// A Rotator runs only calls on the table it holds: another table of the same size is
/// refused (its values are not on the GPU), naming both.
#[test]
fn slicing_a_rotator_refuses_a_call_on_another_table() {
    let Some(gpu) = common::gpu() else { return };
    let shape = RopeShape::new(1, 4, 2, 8).unwrap();
    let (t, other) = (table(4, 4), table(4, 4));
    let x = vec![0x3F80u16; shape.elements()];
    let mut out = vec![0u16; x.len()];
    let positions = Positions::Offset(0);
    let mut rotator = gpu.rotator_blocking(&t).unwrap();
    let e = rotator
        .apply_into_blocking(
            &RopeCall::new(shape.into(), &positions, &other),
            &x,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(e, bfrope::Error::Argument(_)), "{e}");
    assert!(
        e.to_string().contains("not the table this Rotator holds"),
        "{e}"
    );
    let e = rotator
        .apply_into_blocking(
            &RopeCall::new(shape.into(), &positions, &t),
            &x,
            &mut out[1..],
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("holds 63 elements but the input holds 64"),
        "{e}"
    );
}

/// Over the adapter's real binding limit (128 MiB on lavapipe): several dispatches, the same
/// bits as the CPU path.
#[test]
fn slicing_over_the_real_binding_limit() {
    let Some(gpu) = common::gpu() else { return };
    let limit = gpu.adapter().max_storage_binding;
    let token = 32 * 128 * 2u64;
    let seq = (limit / token + 3) as usize;
    if (seq as u64 * token) > gpu.adapter().max_buffer.min(1 << 30) {
        eprintln!("SKIP: binding limit {limit} too large for a quick over-the-limit test here");
        return;
    }
    let shape = RopeShape::new(1, seq, 32, 128).unwrap();
    let t = table(seq, 64);
    let x = bfrope::conformance::random_bf16(5, shape.elements());
    assert!(
        dispatches(&gpu, shape, &t, 0) > 1,
        "split over {limit} bytes"
    );
    let positions = Positions::Offset(0);
    let call = RopeCall::new(shape.into(), &positions, &t);
    let got = gpu.apply_blocking(&call, &x).unwrap();
    let want = cpu::apply(&call, &x).unwrap();
    let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        bad,
        0,
        "{} elements over {limit} bytes: {bad} differ",
        x.len()
    );
}

/// The table row of every token `b · seq + s`, from the definitions of the positions.
fn token_rows(p: &Positions, batch: usize, seq: usize) -> Vec<usize> {
    (0..batch * seq)
        .map(|t| match p {
            Positions::Offset(o) => o + t % seq,
            Positions::PerBatch(v) => v[t / seq] + t % seq,
            Positions::PerToken(ids) => ids[t],
        })
        .collect()
}

/// The oracle's answer for `view` of `x`.
fn oracle_view(
    x: &[u16],
    view: &TensorView,
    rot: &Rotation,
    p: &Positions,
    t: &RopeTable,
) -> Vec<u16> {
    let rows = token_rows(p, view.batch(), view.seq());
    oracle_rotate_view(
        x,
        &OracleView {
            dims: view.dims,
            strides: view.strides,
            offset: view.offset,
            half_split: rot.pairing == Pairing::HalfSplit,
            rotary_dim: rot.rotary_dim,
            rows: &rows,
            inverse: rot.direction == Direction::Inverse,
        },
        |r, i| {
            let [c, s] = t.get(r, i);
            (c.to_bits(), s.to_bits())
        },
    )
}

/// A storage buffer holding `x` (padded to whole words).
fn upload(gpu: &Gpu, x: &[u16]) -> wgpu::Buffer {
    let mut v = x.to_vec();
    v.resize(x.len().div_ceil(2) * 2, 0);
    gpu.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&v),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        })
}

/// Records `args` on `gpu`, reads back `buffers`' first `lens` elements.
fn run_view(gpu: &Gpu, args: &ViewArgs, buffers: &[(&wgpu::Buffer, usize)]) -> Vec<Vec<u16>> {
    let mut encoder = gpu
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    gpu.kernels().record(&mut encoder, args).unwrap();
    gpu.queue().submit([encoder.finish()]);
    buffers
        .iter()
        .map(|&(b, len)| {
            let enc = gpu
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            let words =
                pollster::block_on(gpu.read_back(enc, b, (len.div_ceil(2) * 4) as u64)).unwrap();
            bytemuck::cast_slice::<u32, u16>(&words)[..len].to_vec()
        })
        .collect()
}

/// Every layout of the general call split over many binding windows (limits from one head
/// per dispatch up): BHSD, BSHD at an odd offset (16-bit halves), padded strides, packed
/// per-token positions, half-split and interleaved, partial rotary_dim, forward and
/// inverse; out of place (into a sentinel-filled output: nothing outside the view written)
/// and in place; each dispatch's window starts at an aligned offset, so heads sit at any
/// place in it. GPU == CPU path == oracle, 0 mismatches.
#[test]
fn slicing_every_layout_over_many_windows() {
    let Some(gpu) = common::gpu() else { return };
    let align = (gpu.device().limits().min_storage_buffer_offset_alignment as u64).max(16);
    let half = |r| Rotation {
        pairing: Pairing::HalfSplit,
        ..Rotation::new(r)
    };
    let inverse = |r: Rotation| Rotation {
        direction: Direction::Inverse,
        ..r
    };
    let packed = Positions::from_cu_seqlens(&[0, 3, 3, 10, 13], 13, 2).unwrap();
    #[rustfmt::skip]
    let cases: Vec<(&str, TensorView, Rotation, Positions)> = vec![
        ("bhsd,half,d=16", TensorView::bhsd(2, 3, 7, 16), half(16), Positions::Offset(4)),
        ("bhsd,half,d=12,r=8,per_batch,inverse", TensorView::bhsd(3, 2, 5, 12), inverse(half(8)), Positions::PerBatch(vec![9, 0, 3])),
        ("bshd,offset=3,half,d=8", TensorView::bshd(2, 5, 3, 8).with_offset(3), half(8), Positions::Offset(1)),
        ("bshd,interleaved,d=6,r=4,offset=1", TensorView::bshd(2, 7, 3, 6).with_offset(1), Rotation::new(4), Positions::Offset(0)),
        ("strided,half,d=6", TensorView { dims: [2, 4, 3, 6], strides: [131, 29, 9], offset: 5 }, half(6), Positions::PerToken((0..8).map(|t| (t * 5) % 11).collect())),
        ("strided,words,interleaved,d=8", TensorView { dims: [2, 3, 4, 8], strides: [150, 44, 10], offset: 2 }, inverse(Rotation::new(8)), Positions::Offset(2)),
        ("packed thd,half,d=16,r=12", TensorView::bshd(1, 13, 2, 16), half(12), packed.clone()),
    ];
    for (name, view, rot, positions) in &cases {
        let rows = token_rows(positions, view.batch(), view.seq());
        let t = table(rows.iter().max().unwrap() + 3, rot.pairs());
        let len = view.span() + 3;
        let x = bfrope::conformance::random_bf16(len as u64, len);
        let call = RopeCall {
            view: *view,
            rotation: *rot,
            positions,
            table: &t,
        };
        let want = oracle_view(&x, view, rot, positions, &t);
        assert_eq!(
            cpu::apply(&call, &x).unwrap(),
            want,
            "{name}: CPU path vs oracle"
        );
        let head = (view.head_dim() * 2 + 4) as u64;
        let row = (rot.pairs() * 8) as u64;
        let unit = head.max(row);
        let tb = gpu
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: t.as_bytes(),
                usage: wgpu::BufferUsages::STORAGE,
            });
        for limit in [
            align + unit,
            align + 2 * unit + 6,
            align + 5 * unit,
            u64::MAX,
        ] {
            let small = gpu.clone().with_max_binding(limit);
            let got = small.apply_blocking(&call, &x).unwrap();
            let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(bad, 0, "{name} limit {limit}: apply: {bad} mismatches");
            // Out of place into a sentinel-filled output.
            let input = upload(&small, &x);
            let output = upload(&small, &vec![0xEEEE; len]);
            let args = ViewArgs {
                q: ViewTensor {
                    input: &input,
                    output: &output,
                    view: *view,
                },
                k: None,
                table: &tb,
                table_rows: t.rows(),
                rotation: *rot,
                positions,
                device_rows: None,
                table_in_range: false,
            };
            let n = small.kernels().validate(&args).unwrap();
            if limit == align + unit {
                assert!(
                    n >= view.batch() * view.seq(),
                    "{name}: {n} dispatches at limit {limit}"
                );
            }
            if limit == u64::MAX {
                assert_eq!(n, 1, "{name}: one dispatch without a limit");
            }
            let got = &run_view(&small, &args, &[(&output, len)])[0];
            let mut in_view = vec![false; len];
            let [nb, ns, nh, d] = view.dims;
            for b in 0..nb {
                for s in 0..ns {
                    for h in 0..nh {
                        let e = view.head_start(b, s, h);
                        in_view[e..e + d].iter_mut().for_each(|v| *v = true);
                    }
                }
            }
            for (e, &inside) in in_view.iter().enumerate() {
                let expect = if inside { want[e] } else { 0xEEEE };
                assert_eq!(
                    got[e], expect,
                    "{name} limit {limit} ({n} dispatches): out of place, element {e} (in view: {inside})"
                );
            }
            // In place.
            let buf = upload(&small, &x);
            let args = ViewArgs {
                q: ViewTensor {
                    input: &buf,
                    output: &buf,
                    view: *view,
                },
                ..args
            };
            let got = &run_view(&small, &args, &[(&buf, len)])[0];
            let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                bad, 0,
                "{name} limit {limit} ({n} dispatches): in place: {bad} mismatches"
            );
        }
    }
}

/// q and k in one call over many windows: separate buffers (BHSD q, BSHD k at an odd
/// offset, GQA head counts) out of place and in place, and q and k inside one fused QKV
/// buffer rotated in place; each view is cut on its own. == oracle.
#[test]
fn slicing_q_and_k_over_many_windows() {
    let Some(gpu) = common::gpu() else { return };
    let align = (gpu.device().limits().min_storage_buffer_offset_alignment as u64).max(16);
    let (b, s, d) = (2usize, 5usize, 16usize);
    let rot = Rotation {
        pairing: Pairing::HalfSplit,
        ..Rotation::new(d)
    };
    let positions = Positions::PerBatch(vec![3, 10]);
    let t = table(20, d / 2);
    let tb = gpu
        .device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: t.as_bytes(),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let qv = TensorView::bhsd(b, 6, s, d);
    let kv = TensorView::bshd(b, s, 2, d).with_offset(3);
    let xq = bfrope::conformance::random_bf16(1, qv.span());
    let xk = bfrope::conformance::random_bf16(2, kv.span() + 1);
    let (want_q, want_k) = (
        oracle_view(&xq, &qv, &rot, &positions, &t),
        oracle_view(&xk, &kv, &rot, &positions, &t),
    );
    // Fused [b, s, 3 * h, d]: q heads 0..4, k heads 4..6 (v after).
    let fused_h = 8;
    let fq = TensorView {
        dims: [b, s, 4, d],
        strides: [s * fused_h * d, fused_h * d, d],
        offset: 0,
    };
    let fk = TensorView {
        dims: [b, s, 2, d],
        offset: 4 * d,
        ..fq
    };
    let xf = bfrope::conformance::random_bf16(3, b * s * fused_h * d);
    let want_f = oracle_view(
        &oracle_view(&xf, &fq, &rot, &positions, &t),
        &fk,
        &rot,
        &positions,
        &t,
    );
    let limit = align + 3 * (d as u64 * 4);
    let small = gpu.clone().with_max_binding(limit);
    for in_place in [false, true] {
        let (qi, ki) = (upload(&small, &xq), upload(&small, &xk));
        let (qo, ko) = if in_place {
            (qi.clone(), ki.clone())
        } else {
            (upload(&small, &vec![0; xq.len()]), upload(&small, &xk))
        };
        let args = ViewArgs {
            q: ViewTensor {
                input: &qi,
                output: &qo,
                view: qv,
            },
            k: Some(ViewTensor {
                input: &ki,
                output: &ko,
                view: kv,
            }),
            table: &tb,
            table_rows: t.rows(),
            rotation: rot,
            positions: &positions,
            device_rows: None,
            table_in_range: false,
        };
        let n = small.kernels().validate(&args).unwrap();
        assert!(n > 4, "{n} dispatches at limit {limit}");
        let got = run_view(&small, &args, &[(&qo, xq.len()), (&ko, xk.len())]);
        assert_eq!(got[0], want_q, "q, in place {in_place}, {n} dispatches");
        assert_eq!(got[1], want_k, "k, in place {in_place}, {n} dispatches");
    }
    let buf = upload(&small, &xf);
    let args = ViewArgs {
        q: ViewTensor {
            input: &buf,
            output: &buf,
            view: fq,
        },
        k: Some(ViewTensor {
            input: &buf,
            output: &buf,
            view: fk,
        }),
        table: &tb,
        table_rows: t.rows(),
        rotation: rot,
        positions: &positions,
        device_rows: None,
        table_in_range: false,
    };
    let got = run_view(&small, &args, &[(&buf, xf.len())]);
    assert_eq!(got[0], want_f, "fused QKV in place");
}

/// A head (with its table row) larger than one binding window is refused, naming its size
/// and the limit: a head is never split. A call whose positions live in a GPU buffer is not
/// split either (its rows are indexed from the first token) and says so.
#[test]
fn slicing_views_refuse_what_cannot_be_split_naming_it() {
    let Some(gpu) = common::gpu() else { return };
    let view = TensorView::bhsd(1, 2, 4, 64);
    let t = table(8, 16);
    let x = vec![0x3F80u16; view.span()];
    let positions = Positions::Offset(0);
    let call = RopeCall::new(view, &positions, &t)
        .with_pairing(Pairing::HalfSplit)
        .with_rotary_dim(32);
    let e = gpu
        .clone()
        .with_max_binding(100)
        .apply_blocking(&call, &x)
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, bfrope::Error::Limit(_)), "{msg}");
    assert!(
        msg.contains("one head of 64 elements") && msg.contains("limit is 100 bytes"),
        "{msg}"
    );
    let small = gpu.clone().with_max_binding(600);
    let buf = upload(&small, &x);
    let ids = small
        .device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&[0u32, 1, 2, 3]),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let tb = upload(&small, bytemuck::cast_slice(t.as_bytes()));
    let args = ViewArgs {
        q: ViewTensor {
            input: &buf,
            output: &buf,
            view,
        },
        k: None,
        table: &tb,
        table_rows: t.rows(),
        rotation: call.rotation,
        positions: &positions,
        device_rows: Some(&ids),
        table_in_range: false,
    };
    let e = small.kernels().validate(&args).unwrap_err();
    assert!(
        matches!(e, bfrope::Error::Limit(_)) && e.to_string().contains("device_rows"),
        "{e}"
    );
}

/// A BHSD half-split view over the adapter's real binding limit (128 MiB on lavapipe):
/// several dispatches, the bits of the CPU path.
#[test]
fn slicing_a_bhsd_half_split_view_over_the_real_binding_limit() {
    let Some(gpu) = common::gpu() else { return };
    let limit = gpu.adapter().max_storage_binding;
    let token = 32 * 128 * 2u64;
    let seq = (limit / token + 3) as usize;
    if (seq as u64 * token) > gpu.adapter().max_buffer.min(1 << 30) {
        eprintln!("SKIP: binding limit {limit} too large for a quick over-the-limit test here");
        return;
    }
    let view = TensorView::bhsd(1, 32, seq, 128);
    let t = table(seq + 5, 64);
    let x = bfrope::conformance::random_bf16(6, view.span());
    let positions = Positions::Offset(5);
    let call = RopeCall::new(view, &positions, &t).with_pairing(Pairing::HalfSplit);
    let got = gpu.apply_blocking(&call, &x).unwrap();
    let want = cpu::apply(&call, &x).unwrap();
    let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        bad,
        0,
        "{} elements over {limit} bytes: {bad} differ",
        x.len()
    );
}

/// The oracle's rotation of `view` inside `x` (raw bits of `dtype`, f16 or f32): every pair
/// through [`oracle_pair_in`] in the dtype's format; the rest of the buffer unchanged.
fn oracle_view_in(
    dtype: Dtype,
    x: &[u64],
    view: &TensorView,
    rot: &Rotation,
    positions: &Positions,
    t: &RopeTable,
) -> Vec<u64> {
    let fmt = match dtype {
        Dtype::F16 => oracle::F16,
        Dtype::F32 => oracle::F32,
        Dtype::Bf16 => oracle::BF16,
    };
    let mut y = x.to_vec();
    let pairs = rot.pairs();
    let [nb, ns, nh, _] = view.dims;
    for b in 0..nb {
        for s in 0..ns {
            let row = positions.row(b, s, ns);
            for h in 0..nh {
                let start = view.head_start(b, s, h);
                for i in 0..pairs {
                    let (e0, e1) = rot.pairing.elements(i, pairs);
                    let [c, sn] = t.cos_sin()[row * pairs + i];
                    (y[start + e0], y[start + e1]) = oracle_pair_in(
                        fmt,
                        x[start + e0],
                        x[start + e1],
                        c.to_bits(),
                        sn.to_bits(),
                        rot.direction == Direction::Inverse,
                    );
                }
            }
        }
    }
    y
}

/// f16 and f32 views split over many windows (`plan_view`'s pieces in the dtype's element
/// size: f16 two per word like bf16, f32 one per word, four bytes): a BHSD half-split view
/// and a padded strided one at an odd offset, in place and out of place into a
/// sentinel-filled output (nothing outside the view written), inverse too; GPU == CPU path
/// == oracle in the dtype, 0 mismatches.
#[test]
fn slicing_f16_and_f32_views_over_many_windows() {
    let Some(gpu) = common::gpu() else { return };
    let align = (gpu.device().limits().min_storage_buffer_offset_alignment as u64).max(16);
    let positions = Positions::PerBatch(vec![2, 7]);
    let half = Rotation {
        pairing: Pairing::HalfSplit,
        ..Rotation::new(16)
    };
    let inverse_partial = Rotation {
        direction: Direction::Inverse,
        ..Rotation::new(12)
    };
    #[rustfmt::skip]
    let cases = [
        ("bhsd,half,d=16", TensorView::bhsd(2, 3, 6, 16), half),
        ("strided,offset=7,half,d=16", TensorView { dims: [2, 6, 3, 16], strides: [401, 63, 19], offset: 7 }, half),
        ("strided,offset=3,interleaved,d=16,r=12,inverse", TensorView { dims: [2, 5, 3, 16], strides: [300, 57, 18], offset: 3 }, inverse_partial),
    ];
    for dtype in [Dtype::F16, Dtype::F32] {
        let size = dtype.size();
        for (name, view, rot) in cases {
            let rot = Rotation { dtype, ..rot };
            let t = table(20, rot.pairs());
            let tb = gpu
                .device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: None,
                    contents: t.as_bytes(),
                    usage: wgpu::BufferUsages::STORAGE,
                });
            let len = view.span() + 1;
            // Random bit patterns of the dtype (NaNs, infinities, subnormals included): f16
            // as they come, f32 two random 16-bit halves.
            let lo = bfrope::conformance::random_bf16(9, len);
            let hi = bfrope::conformance::random_bf16(10, len);
            let x: Vec<u64> = match dtype {
                Dtype::F32 => hi
                    .iter()
                    .zip(&lo)
                    .map(|(&h, &l)| (u64::from(h) << 16) | u64::from(l))
                    .collect(),
                _ => lo.iter().map(|&l| u64::from(l)).collect(),
            };
            let call = RopeCall {
                view,
                rotation: rot,
                positions: &positions,
                table: &t,
            };
            let want = oracle_view_in(dtype, &x, &view, &rot, &positions, &t);
            // Host bytes of the buffer, padded to whole words, and back.
            let bytes = |v: &[u64]| -> Vec<u8> {
                let mut b: Vec<u8> = v
                    .iter()
                    .flat_map(|&e| e.to_le_bytes()[..size].to_vec())
                    .collect();
                b.resize(b.len().div_ceil(4) * 4, 0);
                b
            };
            let elements = |b: &[u8]| -> Vec<u64> {
                b.chunks(size)
                    .take(len)
                    .map(|c| c.iter().rev().fold(0u64, |a, &v| (a << 8) | u64::from(v)))
                    .collect()
            };
            let cpu_bits = match dtype {
                Dtype::F32 => {
                    let x32: Vec<u32> = x.iter().map(|&e| e as u32).collect();
                    let y = cpu::apply(&call, &x32).unwrap();
                    y.iter().map(|&e| u64::from(e)).collect::<Vec<_>>()
                }
                _ => {
                    let x16: Vec<u16> = x.iter().map(|&e| e as u16).collect();
                    let y = cpu::apply(&call, &x16).unwrap();
                    y.iter().map(|&e| u64::from(e)).collect()
                }
            };
            let bad = cpu_bits.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                bad, 0,
                "{dtype} {name}: CPU path vs oracle: {bad} mismatches"
            );
            // One head of 16 elements (64 bytes in f32) or one table row (64 bytes) per
            // window at least, a few at most: many dispatches either way.
            let small = gpu.clone().with_max_binding(align + 2 * 64 + 4);
            let make = |contents: &[u8]| {
                small
                    .device()
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: None,
                        contents,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    })
            };
            let sentinel = vec![0xEEEE_EEEEu64 & ((1u64 << (8 * size)) - 1); len];
            let (input, output) = (make(&bytes(&x)), make(&bytes(&sentinel)));
            let buf = make(&bytes(&x));
            for in_place in [false, true] {
                let (src, dst) = if in_place {
                    (&buf, &buf)
                } else {
                    (&input, &output)
                };
                let args = ViewArgs {
                    q: ViewTensor {
                        input: src,
                        output: dst,
                        view,
                    },
                    k: None,
                    table: &tb,
                    table_rows: t.rows(),
                    rotation: rot,
                    positions: &positions,
                    device_rows: None,
                    table_in_range: false,
                };
                let n = small.kernels().validate(&args).unwrap();
                assert!(n > 4, "{dtype} {name}: {n} dispatches");
                let mut encoder = small
                    .device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
                small.kernels().record(&mut encoder, &args).unwrap();
                let words =
                    pollster::block_on(small.read_back(encoder, dst, bytes(&x).len() as u64))
                        .unwrap();
                let got = elements(bytemuck::cast_slice(&words));
                let inside = {
                    let mut v = vec![false; len];
                    let [nb, ns, nh, d] = view.dims;
                    for b in 0..nb {
                        for s in 0..ns {
                            for h in 0..nh {
                                let e = view.head_start(b, s, h);
                                v[e..e + d].iter_mut().for_each(|i| *i = true);
                            }
                        }
                    }
                    v
                };
                for e in 0..len {
                    let expect = if in_place || inside[e] {
                        want[e]
                    } else {
                        sentinel[e]
                    };
                    assert_eq!(
                        got[e], expect,
                        "{dtype} {name} (in place: {in_place}, {n} dispatches): element {e} (in view: {})",
                        inside[e]
                    );
                }
            }
        }
    }
}
