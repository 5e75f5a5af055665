//! The `hf` precision (docs/CONTRACT.md §2): Hugging Face transformers' eager bf16
//! `apply_rotary_pos_emb`, bit for bit. GPU (every kernel: scalar, vec4, general on words and
//! on halves) == CPU path == the independent hf oracle (tests/common/hf.rs), 0 mismatches:
//! every one of the 65,536 bf16 patterns as `x0` against edge `x1` values and table values
//! chosen to hit the edges of each torch step (subnormal, tie and overflowing bf16 roundings
//! of cos/sin, subnormal products, exact cancellations), forward and inverse; seeded random bit
//! patterns everywhere (tables included); HF's own bf16 output of
//! `hf_reference.safetensors` (`hf_bf16_bhsd.*`); and the CLI's `--precision hf`.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::sync::OnceLock;

use bfrope::{
    cpu, Direction, Pairing, Positions, Precision, RopeCall, RopeShape, RopeTable, Rotation,
    TensorView,
};
use common::hf::{hf_pair, hf_rotate_view};
use common::oracle::OracleView;
use common::sweep::{compare, Angle, PerDirection, Sweep, EDGE_X1_BF16};
use common::{gpu, is_nan, rng, Golden};
use rand::Rng;

/// The table values, as `(name, cos, sin)` f32 values: what their bf16 roundings exercise.
fn angles() -> Vec<Angle> {
    let of = |name: &str, a: f64| (name.to_string(), a.cos() as f32, a.sin() as f32);
    let bits =
        |name: &str, c: u32, s: u32| (name.to_string(), f32::from_bits(c), f32::from_bits(s));
    vec![
        // The identity: x·1 and x·0 (signed zeros of the products).
        ("angle=0".to_string(), 1.0, 0.0),
        // c = s: x0·c − x1·s cancels exactly when x0 = x1 (+0).
        of("angle=pi/4", std::f64::consts::FRAC_PI_4),
        // cos(π/2) is a tiny normal f32 (6.1e-17): tiny products beside x·1.
        of("angle=pi/2", std::f64::consts::FRAC_PI_2),
        of("pos=1e6,theta=1", 1e6),
        of("angle=2.5rad", 2.5),
        // cos just below 1 rounds to bf16 1; sin an f32 subnormal rounding to bf16's smallest
        // subnormal: products deep in the f32 subnormal range.
        (
            "tiny_sin=1e-40".to_string(),
            1.0 - f32::EPSILON / 2.0,
            1e-40,
        ),
        // The largest f32 subnormal rounds up to bf16's smallest normal; cos an exact bf16
        // tie (0.75 + half an ulp) that rounds to even (0.75).
        bits(
            "sin=max_f32_subnormal,cos=tie_even",
            0x3F40_8000,
            0x007F_FFFF,
        ),
        // A tie that rounds up (to 0x3F42) and a negative tie.
        bits("cos=tie_up,sin=-tie", 0x3F41_8000, 0xBF20_8000),
        // The largest f32 rounds to bf16 infinity: x·inf, 0·inf = NaN.
        bits("cos=f32_max,sin=-2", 0x7F7F_FFFF, 0xC000_0000),
        // An exact half turn with a negative zero sin.
        ("angle=pi,sin=-0".to_string(), -1.0, -0.0),
    ]
}

/// Every bf16 `x0` × the edge and 3 seeded random partners × the angles.
fn cases() -> &'static Sweep {
    static CASES: OnceLock<Sweep> = OnceLock::new();
    CASES.get_or_init(|| Sweep::new(0x4F_5EC1, &EDGE_X1_BF16, 3, angles()))
}

/// The hf oracle's output for the whole tensor (interleaved words), once per direction.
fn expected(direction: Direction) -> &'static [u16] {
    static EXPECTED: PerDirection<Vec<u16>> = PerDirection::new();
    EXPECTED.get(direction, || cases().expected(direction, hf_pair))
}

/// `[1, angles, heads, head_dim]`: token `a` holds angle `a`'s cases.
fn shape_for(head_dim: usize) -> RopeShape {
    cases().shape(head_dim)
}

/// Row `a` holds angle `a` in each of the `pairs` frequencies.
fn table_for(pairs: usize) -> RopeTable {
    cases().table(pairs)
}

/// Compares `got` (interleaved words) with the oracle; NaN must be exactly `0x7FC0`.
fn check(case: &str, got: &[u16], direction: Direction) {
    let want = expected(direction);
    compare(case, "hf oracle", got, want, |w| {
        cases().name(w, "hf,", direction)
    });
}

fn call<'a>(
    view: TensorView,
    pairing: Pairing,
    direction: Direction,
    positions: &'a Positions,
    table: &'a RopeTable,
) -> RopeCall<'a> {
    RopeCall {
        view,
        rotation: Rotation {
            pairing,
            rotary_dim: view.dims[3],
            direction,
            precision: Precision::Hf,
            dtype: bfrope::Dtype::Bf16,
        },
        positions,
        table,
    }
}

#[test]
fn hf_cpu_every_pattern_forward_and_inverse() {
    let c = cases();
    let positions = Positions::Offset(0);
    for (head_dim, direction) in [(2usize, Direction::Forward), (8, Direction::Inverse)] {
        let shape = shape_for(head_dim);
        let table = table_for(head_dim / 2);
        let view = TensorView::bshd(shape.batch, shape.seq, shape.heads, head_dim);
        let got = cpu::apply(
            &call(view, Pairing::Interleaved, direction, &positions, &table),
            &c.x,
        )
        .unwrap();
        check(
            &format!("hf_cpu[d={head_dim},{direction:?}]"),
            &got,
            direction,
        );
    }
}

/// The contiguous kernels: scalar (d = 2) and vec4 (d = 8).
fn run_gpu_contiguous(head_dim: usize, direction: Direction) {
    let Some(gpu) = gpu() else { return };
    let c = cases();
    let shape = shape_for(head_dim);
    let table = table_for(head_dim / 2);
    let t = std::time::Instant::now();
    let call = common::bshd_call(shape, &table, direction).with_precision(Precision::Hf);
    let got = gpu.apply_blocking(&call, &c.x).unwrap();
    eprintln!("GPU hf {shape:?} {direction:?}: {:.2?}", t.elapsed());
    check(
        &format!("hf_gpu[d={head_dim},{direction:?}]"),
        &got,
        direction,
    );
}

#[test]
fn hf_gpu_scalar_kernel_d2_forward() {
    run_gpu_contiguous(2, Direction::Forward);
}

#[test]
fn hf_gpu_vec4_kernel_d8_inverse() {
    run_gpu_contiguous(8, Direction::Inverse);
}

/// The general kernel: half-split pairs on whole words (d = 8), and interleaved pairs on
/// 16-bit halves (the view at an odd element offset, a sentinel element before it).
#[test]
fn hf_gpu_general_kernel_words_half_split_and_halves_odd_offset() {
    let Some(gpu) = gpu() else { return };
    let c = cases();
    let positions = Positions::Offset(0);
    let head_dim = 8;
    let shape = shape_for(head_dim);
    let table = table_for(head_dim / 2);
    let view = TensorView::bshd(shape.batch, shape.seq, shape.heads, head_dim);

    let x = c.laid_out(head_dim, Pairing::HalfSplit);
    let got = gpu
        .apply_blocking(
            &call(
                view,
                Pairing::HalfSplit,
                Direction::Forward,
                &positions,
                &table,
            ),
            &x,
        )
        .unwrap();
    check(
        "hf_gpu_general[words,half,d=8,Forward]",
        &Sweep::gathered(&got, head_dim, Pairing::HalfSplit),
        Direction::Forward,
    );

    let mut x = vec![0xABCDu16];
    x.extend_from_slice(&c.x);
    let got = gpu
        .apply_blocking(
            &call(
                view.with_offset(1),
                Pairing::Interleaved,
                Direction::Inverse,
                &positions,
                &table,
            ),
            &x,
        )
        .unwrap();
    assert_eq!(got[0], 0xABCD, "the element before the view is left alone");
    check(
        "hf_gpu_general[halves,offset=1,d=8,Inverse]",
        &got[1..],
        Direction::Inverse,
    );
}

/// Seeded random bit patterns for x and for the table (any f32: NaN, inf, subnormal, huge),
/// half-split over rotary_dim 12 of 16 dims in BHSD: GPU == CPU == hf oracle.
#[test]
fn hf_random_bits_everywhere_gpu_cpu_oracle() {
    let (b, h, s, d, rd) = (2usize, 3usize, 64usize, 16usize, 12usize);
    let mut r = rng(0x4F_4A4D);
    let rows = 97;
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for _ in 0..rows * rd / 2 {
        // Mostly table-like values, some arbitrary bit patterns.
        if r.random_range(0..4) == 0 {
            cos.push(f32::from_bits(r.random()));
            sin.push(f32::from_bits(r.random()));
        } else {
            let a: f64 = r.random_range(-1e4..1e4);
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    let table = RopeTable::from_cos_sin(&cos, &sin, rows, rd / 2).unwrap();
    let x: Vec<u16> = (0..b * h * s * d)
        .map(|i| {
            let v: u16 = r.random();
            // Every third element near its neighbour's value: cancellations.
            if i % 3 == 2 {
                v & 0x80FF | 0x3F00
            } else {
                v
            }
        })
        .collect();
    let ids: Vec<usize> = (0..b * s).map(|_| r.random_range(0..rows)).collect();
    let positions = Positions::PerToken(ids.clone());
    let view = TensorView::bhsd(b, h, s, d);
    for direction in [Direction::Forward, Direction::Inverse] {
        let mut rope = call(view, Pairing::HalfSplit, direction, &positions, &table);
        rope.rotation.rotary_dim = rd;
        let want = hf_rotate_view(
            &x,
            &OracleView {
                dims: view.dims,
                strides: view.strides,
                offset: 0,
                half_split: true,
                rotary_dim: rd,
                rows: &ids,
                inverse: direction == Direction::Inverse,
            },
            |row, i| {
                let [c, s] = table.get(row, i);
                (c.to_bits(), s.to_bits())
            },
        );
        let on_cpu = cpu::apply(&rope, &x).unwrap();
        let bad = on_cpu.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(bad, 0, "hf random bits, CPU vs hf oracle, {direction:?}");
        if let Some(gpu) = gpu() {
            let on_gpu = gpu.apply_blocking(&rope, &x).unwrap();
            let bad = on_gpu.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(bad, 0, "hf random bits, GPU vs hf oracle, {direction:?}");
        }
    }
}

/// `hf_reference.safetensors`' `hf_bf16_bhsd.*`: transformers' `apply_rotary_pos_emb` on
/// bf16 q/k `[2, 4, 64, 128]` (BHSD, half-split) with per-batch offsets 0 and 1000, fed its own
/// bf16 cos/sin: bfrope's hf mode gives HF's bits on the GPU and the CPU path (NaN by NaN-ness).
#[test]
fn hf_reference_bf16_bhsd_is_bit_identical() {
    let g = Golden::named("hf_reference.safetensors");
    let gpu = gpu();
    let widen = |t: &common::Tensor<u16>| -> Vec<f32> {
        t.data
            .iter()
            .map(|&h| f32::from_bits((h as u32) << 16))
            .collect()
    };
    let cos = g.bf16("hf_bf16_bhsd.cos_bf16");
    let sin = g.bf16("hf_bf16_bhsd.sin_bf16");
    let [tb, ts, width] = cos.shape[..] else {
        panic!("cos shape {:?}", cos.shape)
    };
    let table =
        RopeTable::from_repeated_halves(&widen(&cos), &widen(&sin), tb * ts, width).unwrap();
    let positions = Positions::PerToken((0..tb * ts).collect());
    for t in ["q", "k"] {
        let x = g.bf16(&format!("hf_bf16_bhsd.{t}"));
        let want = g.bf16(&format!("hf_bf16_bhsd.{t}_out"));
        let [b, h, s, d] = x.shape[..] else { panic!() };
        assert_eq!((b, s, d), (tb, ts, width));
        let view = TensorView::bhsd(b, h, s, d);
        let rope = call(
            view,
            Pairing::HalfSplit,
            Direction::Forward,
            &positions,
            &table,
        );
        let same = |got: &[u16]| {
            got.iter()
                .zip(&want.data)
                .filter(|(a, b)| a != b && !(is_nan(**a) && is_nan(**b)))
                .count()
        };
        let on_cpu = cpu::apply(&rope, &x.data).unwrap();
        assert_eq!(same(&on_cpu), 0, "hf_bf16_bhsd.{t}: CPU hf vs HF");
        if let Some(gpu) = &gpu {
            let on_gpu = gpu.apply_blocking(&rope, &x.data).unwrap();
            assert_eq!(same(&on_gpu), 0, "hf_bf16_bhsd.{t}: GPU hf vs HF");
        }
        eprintln!(
            "hf_bf16_bhsd.{t}: bit-identical to HF on {} outputs",
            want.data.len()
        );
    }
}

/// `bfrope apply --precision hf` on a real model's q/k and tables (llama31_gqa of
/// hf_models.safetensors, BHSD, half-split, HF's per-token repeated-halves tables): the
/// output is the model's own bf16 forward, on the CPU path and the GPU.
#[test]
fn hf_cli_precision_hf_reproduces_the_model() {
    use safetensors::tensor::{Dtype, TensorView as StView};
    let g = Golden::named("hf_models.safetensors");
    let case = "llama31_gqa";
    let q = g.bf16(&format!("{case}.q"));
    let k = g.bf16(&format!("{case}.k"));
    let cos = g.f32_bits(&format!("{case}.cos"));
    let sin = g.f32_bits(&format!("{case}.sin"));
    let le16 = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|b| b.to_le_bytes()).collect() };
    let le32 = |v: &[u32]| -> Vec<u8> { v.iter().flat_map(|b| b.to_le_bytes()).collect() };
    let bytes = [
        le16(&q.data),
        le16(&k.data),
        le32(&cos.data),
        le32(&sin.data),
    ];
    let views = vec![
        (
            "q".to_string(),
            StView::new(Dtype::BF16, q.shape.clone(), &bytes[0]).unwrap(),
        ),
        (
            "k".to_string(),
            StView::new(Dtype::BF16, k.shape.clone(), &bytes[1]).unwrap(),
        ),
        (
            "cos".to_string(),
            StView::new(Dtype::F32, cos.shape.clone(), &bytes[2]).unwrap(),
        ),
        (
            "sin".to_string(),
            StView::new(Dtype::F32, sin.shape.clone(), &bytes[3]).unwrap(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    std::fs::write(&input, safetensors::serialize(views, None).unwrap()).unwrap();
    let has_gpu = gpu().is_some();
    for backend in ["cpu", "gpu"] {
        if backend == "gpu" && !has_gpu {
            continue;
        }
        let output = dir.path().join(format!("out_{backend}.safetensors"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_bfrope"))
            .args([
                "apply",
                input.to_str().unwrap(),
                "-o",
                output.to_str().unwrap(),
            ])
            .args(["--tensors", "q,k", "--layout", "bhsd", "--rotation", "half"])
            .args([
                "--cos",
                "cos",
                "--sin",
                "sin",
                "--precision",
                "hf",
                "--backend",
                backend,
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = std::fs::read(&output).unwrap();
        let st = safetensors::SafeTensors::deserialize(&out).unwrap();
        for t in ["q", "k"] {
            let got: Vec<u16> = st
                .tensor(t)
                .unwrap()
                .data()
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            let want = g.bf16(&format!("{case}.{t}_hf"));
            let differ = got
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| a != b && !(is_nan(**a) && is_nan(**b)))
                .count();
            assert_eq!(
                differ, 0,
                "bfrope apply --precision hf --backend {backend}: {t} vs {case}.{t}_hf"
            );
        }
    }
    // The name is refused with a sentence naming it.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bfrope"))
        .args([
            "apply",
            input.to_str().unwrap(),
            "-o",
            "-",
            "--precision",
            "hugging",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("hugging"));
}

/// The names the CLI and the JS API use.
#[test]
fn hf_precision_names_parse() {
    for p in [Precision::Exact, Precision::Fast, Precision::Hf] {
        assert_eq!(p.name().parse::<Precision>().unwrap(), p);
    }
    let e = "bf16".parse::<Precision>().unwrap_err().to_string();
    assert!(e.contains("\"bf16\"") && e.contains("hf"), "{e}");
}
