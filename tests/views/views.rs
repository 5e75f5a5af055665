//! Every layout the general call describes (docs/CONTRACT.md §8): BSHD, BHSD and strided views at
//! any element offset (q inside a fused QKV buffer), interleaved and half-split pairs, partial
//! rotary_dim, positions from an offset or one offset per batch row, forward and inverse:
//! GPU == CPU path == the independent oracle, 0 mismatches, with the elements outside the
//! view (and, on the recording path, a sentinel-filled output) checked too.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::{
    cpu, Direction, Pairing, Positions, Precision, RopeCall, RopeTable, Rotation, TableSpec,
    TensorView, ViewArgs, ViewTensor,
};
use common::oracle::{oracle_rotate_view, OracleView};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    dims: [usize; 4],
    /// 0: BSHD, 1: BHSD, 2: strided inside a larger buffer (fused QKV-like).
    layout: u8,
    pad: [usize; 3],
    offset: usize,
    half: bool,
    rotary_dim: usize,
    /// 0: offset `first`; 1: per batch row `starts`; 2: per token (`ids`, scattered).
    mode: u8,
    starts: Vec<usize>,
    ids: Vec<usize>,
    first: usize,
    inverse: bool,
    seed: u64,
}

impl Case {
    fn view(&self) -> TensorView {
        let [b, s, h, d] = self.dims;
        match self.layout {
            0 => TensorView::bshd(b, s, h, d).with_offset(self.offset),
            1 => TensorView::bhsd(b, h, s, d).with_offset(self.offset),
            _ => {
                // Heads padded apart, tokens padded apart, batches padded apart.
                let sh = d + self.pad[0];
                let ss = h * sh + self.pad[1];
                let sb = s * ss + self.pad[2];
                TensorView {
                    dims: self.dims,
                    strides: [sb, ss, sh],
                    offset: self.offset,
                }
            }
        }
    }

    fn positions(&self) -> Positions {
        match self.mode {
            0 => Positions::Offset(self.first),
            1 => Positions::PerBatch(self.starts.clone()),
            _ => Positions::PerToken(self.ids.clone()),
        }
    }

    /// The table row of every token, from the definitions (not from `Positions::row`).
    fn rows(&self) -> Vec<usize> {
        let [b, s, _, _] = self.dims;
        let mut rows = Vec::new();
        for bi in 0..b {
            for si in 0..s {
                rows.push(match self.mode {
                    0 => self.first + si,
                    1 => self.starts[bi] + si,
                    _ => self.ids[bi * s + si],
                });
            }
        }
        rows
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        (
            1usize..4,
            1usize..7,
            1usize..5,
            prop::sample::select(vec![2usize, 4, 6, 8, 12, 16, 64]),
        ),
        0u8..3,
        ([0usize..5, 0usize..9, 0usize..7], 0usize..11),
        any::<bool>(),
        0usize..100,
        (
            0u8..3,
            prop::collection::vec(0usize..40, 3),
            prop::collection::vec(0usize..60, 18),
            0usize..40,
        ),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                dims,
                layout,
                (pad, offset),
                half,
                rfrac,
                (mode, starts, ids, first),
                inverse,
                seed,
            )| {
                let (b, s, h, d) = dims;
                // rotary_dim: an even number in 2..=d.
                let rotary_dim = 2 * (1 + rfrac % (d / 2));
                Case {
                    dims: [b, s, h, d],
                    layout,
                    pad,
                    offset,
                    half,
                    rotary_dim,
                    mode,
                    starts: starts[..b].to_vec(),
                    ids: ids[..b * s].to_vec(),
                    first,
                    inverse,
                    seed,
                }
            },
        )
}

fn table(rows: usize, pairs: usize) -> RopeTable {
    let mut spec = TableSpec::new(2 * pairs, rows);
    spec.base = 300.0;
    spec.first_position = 11;
    RopeTable::build(&spec).unwrap()
}

/// Runs one case on the CPU path, the GPU convenience path and the recording path with a
/// sentinel-filled output, against the oracle.
fn check(gpu: Option<&bfrope::Gpu>, c: &Case) -> Result<(), String> {
    let view = c.view();
    let rotation = Rotation {
        pairing: if c.half {
            Pairing::HalfSplit
        } else {
            Pairing::Interleaved
        },
        rotary_dim: c.rotary_dim,
        direction: if c.inverse {
            Direction::Inverse
        } else {
            Direction::Forward
        },
        precision: Precision::Exact,
        dtype: bfrope::Dtype::Bf16,
    };
    let positions = c.positions();
    let rows = c.rows();
    let t = table(rows.iter().max().unwrap() + 2, c.rotary_dim / 2);
    let len = view.span() + 5;
    let mut x = bfrope::conformance::random_bf16(c.seed, len);
    // Some special values among the data.
    for (k, s) in [0x7F80u16, 0xFF80, 0x7FC0, 0x0001, 0x8000]
        .iter()
        .enumerate()
    {
        let at = (c.seed as usize).wrapping_add(k * 7919) % len;
        x[at] = *s;
    }
    let call = RopeCall {
        view,
        rotation,
        positions: &positions,
        table: &t,
    };
    let want = oracle_rotate_view(
        &x,
        &OracleView {
            dims: c.dims,
            strides: view.strides,
            offset: view.offset,
            half_split: c.half,
            rotary_dim: c.rotary_dim,
            rows: &rows,
            inverse: c.inverse,
        },
        |r, i| {
            let [cs, sn] = t.get(r, i);
            (cs.to_bits(), sn.to_bits())
        },
    );
    let count = |got: &[u16]| got.iter().zip(&want).filter(|(a, b)| a != b).count();
    let on_cpu = cpu::apply(&call, &x).map_err(|e| e.to_string())?;
    if count(&on_cpu) != 0 {
        return Err(format!("{c:?}: CPU path: {} mismatches", count(&on_cpu)));
    }
    let Some(gpu) = gpu else { return Ok(()) };
    let on_gpu = gpu.apply_blocking(&call, &x).map_err(|e| e.to_string())?;
    if count(&on_gpu) != 0 {
        return Err(format!("{c:?}: GPU: {} mismatches", count(&on_gpu)));
    }
    // The recording path into a sentinel-filled output: every element of the view written,
    // nothing else touched.
    let device = gpu.device();
    let bytes = (len.div_ceil(2) * 4) as u64;
    let buffer = |contents: &[u8], usage| {
        use wgpu::util::DeviceExt;
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage,
        })
    };
    let mut xin = x.clone();
    xin.resize(len.div_ceil(2) * 2, 0);
    let storage = wgpu::BufferUsages::STORAGE;
    let input = buffer(bytemuck::cast_slice(&xin), storage);
    let output = buffer(
        &vec![0xEEu8; bytes as usize],
        storage | wgpu::BufferUsages::COPY_SRC,
    );
    let tb = buffer(t.as_bytes(), storage);
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    gpu.kernels()
        .record(
            &mut encoder,
            &ViewArgs {
                q: ViewTensor {
                    input: &input,
                    output: &output,
                    view,
                },
                k: None,
                table: &tb,
                table_rows: t.rows(),
                rotation,
                positions: &positions,
                device_rows: None,
                table_in_range: false,
            },
        )
        .map_err(|e| e.to_string())?;
    let words =
        pollster::block_on(gpu.read_back(encoder, &output, bytes)).map_err(|e| e.to_string())?;
    let got: &[u16] = bytemuck::cast_slice(&words);
    let mut in_view = vec![false; len];
    let [nb, ns, nh, d] = c.dims;
    for b in 0..nb {
        for s in 0..ns {
            for h in 0..nh {
                let base = view.head_start(b, s, h);
                in_view[base..base + d].iter_mut().for_each(|e| *e = true);
            }
        }
    }
    for (k, &inside) in in_view.iter().enumerate() {
        let expect = if inside { want[k] } else { 0xEEEE };
        if got[k] != expect {
            return Err(format!(
                "{c:?}: record: element {k} ({}) is {:#06x}, expected {:#06x}",
                if inside {
                    "in the view"
                } else {
                    "outside the view"
                },
                got[k],
                expect
            ));
        }
    }
    // In place: the buffer itself, its own pipeline; elements outside the view unchanged. This
    // one skips testing table values (`table_in_range`, as `Gpu::apply` above does for its
    // table); the recording above tests them: both pipelines against the oracle.
    assert!(t.in_fast_range(), "a built table is in the proof's range");
    let buf = buffer(
        bytemuck::cast_slice(&xin),
        storage | wgpu::BufferUsages::COPY_SRC,
    );
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    gpu.kernels()
        .record(
            &mut encoder,
            &ViewArgs {
                q: ViewTensor {
                    input: &buf,
                    output: &buf,
                    view,
                },
                k: None,
                table: &tb,
                table_rows: t.rows(),
                rotation,
                positions: &positions,
                device_rows: None,
                table_in_range: true,
            },
        )
        .map_err(|e| e.to_string())?;
    let words =
        pollster::block_on(gpu.read_back(encoder, &buf, bytes)).map_err(|e| e.to_string())?;
    let got: &[u16] = bytemuck::cast_slice(&words);
    if got[..len] != want[..] {
        let bad = got[..len].iter().zip(&want).filter(|(a, b)| a != b).count();
        return Err(format!("{c:?}: in place: {bad} mismatches"));
    }
    Ok(())
}

#[test]
fn views_random_layouts_gpu_eq_cpu_eq_oracle() {
    let gpu = common::gpu();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    runner
        .run(&case_strategy(), |c| {
            check(gpu.as_ref(), &c).map_err(TestCaseError::fail)
        })
        .unwrap();
}

/// Pinned cases of the models of tests/data/golden/README.md: Hugging Face BHSD half-split GQA, GPT-NeoX's
/// 25% partial rotary, GLM-4's interleaved 50%, q inside a fused QKV buffer, per-batch offsets.
#[test]
fn views_pinned_model_layouts() {
    let gpu = common::gpu();
    #[rustfmt::skip]
    let cases = [
        // HF Llama-like: BHSD, half-split, full head, two batch rows at different offsets.
        Case { dims: [2, 5, 4, 128], layout: 1, pad: [0; 3], offset: 0, half: true, rotary_dim: 128, mode: 1, starts: vec![0, 1000], ids: vec![], first: 0, inverse: false, seed: 1 },
        // GPT-NeoX / Pythia: 25% rotary, half-split.
        Case { dims: [1, 7, 3, 128], layout: 1, pad: [0; 3], offset: 0, half: true, rotary_dim: 32, mode: 0, starts: vec![], ids: vec![], first: 3, inverse: false, seed: 2 },
        // GLM-4: interleaved on the first 64 of 128 dims.
        Case { dims: [1, 6, 2, 128], layout: 0, pad: [0; 3], offset: 0, half: false, rotary_dim: 64, mode: 0, starts: vec![], ids: vec![], first: 9, inverse: true, seed: 3 },
        // q of a fused [S, (Hq + 2 Hk) · D] QKV buffer: heads apart by D, tokens by the row.
        Case { dims: [1, 9, 4, 64], layout: 2, pad: [0, 4 * 64, 0], offset: 0, half: true, rotary_dim: 64, mode: 0, starts: vec![], ids: vec![], first: 0, inverse: false, seed: 4 },
        // ... and k of it, at an odd element offset into the buffer.
        Case { dims: [2, 3, 1, 6], layout: 2, pad: [2, 3, 1], offset: 5, half: false, rotary_dim: 4, mode: 1, starts: vec![7, 2], ids: vec![], first: 0, inverse: false, seed: 5 },
    ];
    for c in &cases {
        check(gpu.as_ref(), c).unwrap();
    }
}

/// The most common RoPE bug is mixing the pairings up: half-split on x is interleaved on x
/// with its rotated dims permuted (element i ↔ 2i, i + R/2 ↔ 2i + 1), and not the same thing.
#[test]
fn views_half_split_is_interleaved_after_the_permutation() {
    let (b, s, h, d, r) = (2, 5, 3, 16, 12);
    let t = table(s + 3, r / 2);
    let positions = Positions::Offset(2);
    let x = bfrope::conformance::random_bf16(99, b * s * h * d);
    let permute = |x: &[u16]| -> Vec<u16> {
        let mut y = x.to_vec();
        for head in 0..b * s * h {
            let base = head * d;
            for i in 0..r / 2 {
                y[base + 2 * i] = x[base + i];
                y[base + 2 * i + 1] = x[base + r / 2 + i];
            }
        }
        y
    };
    let unpermute = |y: &[u16]| -> Vec<u16> {
        let mut x = y.to_vec();
        for head in 0..b * s * h {
            let base = head * d;
            for i in 0..r / 2 {
                x[base + i] = y[base + 2 * i];
                x[base + r / 2 + i] = y[base + 2 * i + 1];
            }
        }
        x
    };
    let call = |pairing| RopeCall {
        view: TensorView::bshd(b, s, h, d),
        rotation: Rotation {
            pairing,
            rotary_dim: r,
            direction: Direction::Forward,
            precision: Precision::Exact,
            dtype: bfrope::Dtype::Bf16,
        },
        positions: &positions,
        table: &t,
    };
    let half = cpu::apply(&call(Pairing::HalfSplit), &x).unwrap();
    let inter = cpu::apply(&call(Pairing::Interleaved), &permute(&x)).unwrap();
    assert_eq!(
        half,
        unpermute(&inter),
        "half-split == P⁻¹ · interleaved · P"
    );
    let wrong = cpu::apply(&call(Pairing::Interleaved), &x).unwrap();
    let differ = wrong.iter().zip(&half).filter(|(a, b)| a != b).count();
    assert!(
        differ > x.len() / 2,
        "the mix-up changes most outputs: {differ}"
    );
    if let Some(gpu) = common::gpu() {
        assert_eq!(
            gpu.apply_blocking(&call(Pairing::HalfSplit), &x).unwrap(),
            half
        );
        assert_eq!(
            gpu.apply_blocking(&call(Pairing::Interleaved), &permute(&x))
                .unwrap(),
            inter
        );
    }
}

/// Bad calls are refused naming the value, on both paths.
#[test]
fn views_bad_calls_name_the_value() {
    let t = table(8, 4);
    let positions = Positions::Offset(0);
    let ok = RopeCall {
        view: TensorView::bshd(1, 4, 2, 8),
        rotation: Rotation::new(8),
        positions: &positions,
        table: &t,
    };
    let x = [0x3F80u16; 64];
    let err = |call: &RopeCall, len: usize| cpu::apply(call, &x[..len]).unwrap_err().to_string();
    assert!(err(&ok, 63).contains("64"), "{}", err(&ok, 63));
    let odd = RopeCall {
        rotation: Rotation::new(6),
        ..ok
    };
    assert!(err(&odd, 64).contains("pairs per row"), "{}", err(&odd, 64));
    let t3 = table(8, 3);
    let r3 = RopeCall {
        rotation: Rotation::new(3),
        table: &t3,
        ..ok
    };
    assert!(err(&r3, 64).contains("rotary_dim 3"), "{}", err(&r3, 64));
    let per = Positions::PerBatch(vec![0, 1]);
    let p2 = RopeCall {
        positions: &per,
        ..ok
    };
    assert!(err(&p2, 64).contains("2 per-batch"), "{}", err(&p2, 64));
    // A view that overlaps itself (the seed's [69, 18, 8] strides on [3, 4, 2, 8]).
    let overlapping = RopeCall {
        view: TensorView {
            dims: [3, 4, 2, 8],
            strides: [69, 18, 8],
            offset: 0,
        },
        ..ok
    };
    let e = cpu::apply(&overlapping, &[0u16; 300])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("overlap itself") && e.contains("batch stride 69"),
        "{e}"
    );
    let far = Positions::Offset(5);
    let p3 = RopeCall {
        positions: &far,
        ..ok
    };
    assert!(err(&p3, 64).contains("from position 5"), "{}", err(&p3, 64));
}

/// A decode step whose positions live on the GPU: one table row per token in a caller's
/// buffer. Ids past the table read its last row (the documented result), never out of
/// bounds; the rest match the oracle.
#[test]
fn views_positions_from_a_gpu_buffer() {
    let Some(gpu) = common::gpu() else { return };
    use wgpu::util::DeviceExt;
    let (b, s, h, d) = (4usize, 1usize, 8usize, 64usize);
    let t = table(50, d / 2);
    let ids: Vec<u32> = vec![3, 49, 1000, 17];
    let x = bfrope::conformance::random_bf16(31, b * s * h * d);
    let clamped: Vec<usize> = ids.iter().map(|&i| (i as usize).min(49)).collect();
    let want = oracle_rotate_view(
        &x,
        &OracleView {
            dims: [b, s, h, d],
            strides: [s * h * d, h * d, d],
            offset: 0,
            half_split: true,
            rotary_dim: d,
            rows: &clamped,
            inverse: false,
        },
        |r, i| {
            let [cs, sn] = t.get(r, i);
            (cs.to_bits(), sn.to_bits())
        },
    );
    let device = gpu.device();
    let buffer = |contents: &[u8], usage| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage,
        })
    };
    let storage = wgpu::BufferUsages::STORAGE;
    let input = buffer(bytemuck::cast_slice(&x), storage);
    let output = buffer(
        &vec![0u8; x.len() * 2],
        storage | wgpu::BufferUsages::COPY_SRC,
    );
    let tb = buffer(t.as_bytes(), storage);
    let rows = buffer(bytemuck::cast_slice(&ids), storage);
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    gpu.kernels()
        .record(
            &mut encoder,
            &ViewArgs {
                q: ViewTensor {
                    input: &input,
                    output: &output,
                    view: TensorView::bshd(b, s, h, d),
                },
                k: None,
                table: &tb,
                table_rows: t.rows(),
                rotation: Rotation {
                    pairing: Pairing::HalfSplit,
                    ..Rotation::new(d)
                },
                positions: &Positions::Offset(0),
                device_rows: Some(&rows),
                table_in_range: false,
            },
        )
        .unwrap();
    let words = pollster::block_on(gpu.read_back(encoder, &output, (x.len() * 2) as u64)).unwrap();
    let got: &[u16] = bytemuck::cast_slice(&words);
    assert_eq!(got, &want[..]);
}

/// Packed variable-length sequences (flash-attn's `[tokens, heads, head_dim]` with
/// `cu_seqlens`): each sequence restarts at the position offset.
#[test]
fn views_packed_sequences_from_cu_seqlens() {
    let cu = [0usize, 3, 3, 10, 12];
    let (tokens, h, d) = (12usize, 2usize, 8usize);
    let positions = Positions::from_cu_seqlens(&cu, tokens, 5).unwrap();
    // From the definition: token t of sequence i is at 5 + t - cu[i].
    let mut rows = Vec::new();
    for w in cu.windows(2) {
        for t in w[0]..w[1] {
            rows.push(5 + t - w[0]);
        }
    }
    let t = table(20, d / 2);
    let x = bfrope::conformance::random_bf16(41, tokens * h * d);
    let call = RopeCall {
        view: TensorView::bshd(1, tokens, h, d),
        rotation: Rotation::new(d),
        positions: &positions,
        table: &t,
    };
    let want = oracle_rotate_view(
        &x,
        &OracleView {
            dims: [1, tokens, h, d],
            strides: [tokens * h * d, h * d, d],
            offset: 0,
            half_split: false,
            rotary_dim: d,
            rows: &rows,
            inverse: false,
        },
        |r, i| {
            let [cs, sn] = t.get(r, i);
            (cs.to_bits(), sn.to_bits())
        },
    );
    assert_eq!(cpu::apply(&call, &x).unwrap(), want);
    if let Some(gpu) = common::gpu() {
        assert_eq!(gpu.apply_blocking(&call, &x).unwrap(), want);
    }
    for (bad, needle) in [
        (&[0usize, 3, 2, 12][..], "decreases at index 2"),
        (&[0usize, 3, 11][..], "from 0 to the 12 tokens"),
        (&[1usize, 12][..], "from 0 to the 12 tokens"),
    ] {
        let e = Positions::from_cu_seqlens(bad, tokens, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{bad:?}: {e}");
    }
}

/// q and k of different head counts in one dispatch (GQA 32/8, MQA 7/1; q BHSD, k BSHD at
/// an offset; out of place and in place), recorded many times into one caller's compute
/// pass: each equal to the oracle, and a repeated call adds nothing to the bind-group cache.
#[test]
fn views_q_and_k_in_one_dispatch_in_the_callers_pass() {
    let Some(gpu) = common::gpu() else { return };
    // Kernels of its own: the other tests of this binary share the common ones (and their
    // bind-group cache) from other threads.
    let gpu = gpu.with_max_binding(u64::MAX);
    use wgpu::util::DeviceExt;
    let device = gpu.device();
    let (b, s, d) = (2usize, 3usize, 64usize);
    let t = table(40, d / 2);
    let ids: Vec<u32> = vec![5, 6, 7, 20, 21, 22];
    let rows_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&ids),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let tb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: t.as_bytes(),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let rows: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
    for (hq, hk) in [(32usize, 8usize), (7, 1)] {
        let qv = TensorView::bhsd(b, hq, s, d);
        let kv = TensorView::bshd(b, s, hk, d).with_offset(3);
        let xq = bfrope::conformance::random_bf16(hq as u64, qv.span());
        let xk = bfrope::conformance::random_bf16(hk as u64, kv.span() + 1);
        let rotation = Rotation {
            pairing: Pairing::HalfSplit,
            ..Rotation::new(d)
        };
        let oracle = |x: &[u16], v: &TensorView| {
            oracle_rotate_view(
                x,
                &OracleView {
                    dims: v.dims,
                    strides: v.strides,
                    offset: v.offset,
                    half_split: true,
                    rotary_dim: d,
                    rows: &rows,
                    inverse: false,
                },
                |r, i| {
                    let [cs, sn] = t.get(r, i);
                    (cs.to_bits(), sn.to_bits())
                },
            )
        };
        let (want_q, want_k) = (oracle(&xq, &qv), oracle(&xk, &kv));
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let init = |x: &[u16]| {
            let mut v = x.to_vec();
            v.resize(x.len().div_ceil(2) * 2, 0);
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(&v),
                usage,
            })
        };
        for in_place in [false, true] {
            let (qi, ki) = (init(&xq), init(&xk));
            let (qo, ko) = if in_place {
                (qi.clone(), ki.clone())
            } else {
                (init(&vec![0; xq.len()]), init(&vec![0; xk.len()]))
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
                rotation,
                positions: &Positions::Offset(0),
                device_rows: Some(&rows_buf),
                table_in_range: false,
            };
            assert_eq!(gpu.kernels().validate(&args).unwrap(), 1, "one dispatch");
            // q and k written in one buffer: two dispatches (bindings may not alias).
            let shared = ViewArgs {
                k: Some(ViewTensor {
                    input: &ki,
                    output: &qo,
                    view: kv,
                }),
                ..args
            };
            if !in_place {
                assert_eq!(gpu.kernels().validate(&shared).unwrap(), 2);
            }
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("caller's pass"),
                    timestamp_writes: None,
                });
                gpu.kernels().record(&mut pass, &args).unwrap();
                let cached = gpu.kernels().cached_view_calls();
                // A decode loop: the same call again and again (in place it would rotate
                // again, so only out of place repeats), nothing new cached.
                if !in_place {
                    for _ in 0..50 {
                        gpu.kernels().record(&mut pass, &args).unwrap();
                    }
                }
                assert_eq!(
                    gpu.kernels().cached_view_calls(),
                    cached,
                    "repeats allocate nothing"
                );
            }
            let bytes_q = (xq.len().div_ceil(2) * 4) as u64;
            let words = pollster::block_on(gpu.read_back(encoder, &qo, bytes_q)).unwrap();
            let got: &[u16] = bytemuck::cast_slice(&words);
            assert_eq!(
                &got[..xq.len()],
                &want_q[..],
                "q {hq}/{hk} in place {in_place}"
            );
            let enc =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            let bytes_k = (xk.len().div_ceil(2) * 4) as u64;
            let words = pollster::block_on(gpu.read_back(enc, &ko, bytes_k)).unwrap();
            let got: &[u16] = bytemuck::cast_slice(&words);
            if in_place {
                assert_eq!(&got[..xk.len()], &want_k[..], "k {hq}/{hk} in place");
            } else {
                // Out of place the output keeps what it held (zeros) outside the view.
                for (e, (&g, &w)) in got[..xk.len()].iter().zip(&want_k).enumerate() {
                    let inside = e >= kv.offset && e < kv.span();
                    assert_eq!(g, if inside { w } else { 0 }, "k {hq}/{hk} element {e}");
                }
            }
        }
    }
}
