//! The twelve real model configurations of `tests/data/golden/hf_models.safetensors`
//! (`tests/data/golden/README.md`): each case's q and k in the model's layout (BHSD for Hugging Face models,
//! BSHD for the seed's), its pairing and rotary_dim, fed the model's own float32 tables, one
//! row per token (HF's repeated-halves `[B, S, R]` form, or the seed's `[B, S, R/2]`): the
//! GPU and the CPU path equal the independent oracle on every output. Also reported: how
//! often the model's own bf16 forward (`.q_hf`, `.k_hf`) differs from the exact result.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use bfrope::{
    cpu, Direction, Pairing, Positions, Precision, RopeCall, RopeTable, Rotation, TensorView,
};
use common::oracle::{oracle_rotate_view, OracleView};
use common::{is_nan, Golden};

#[test]
fn hf_models_fed_their_own_tables_are_exact_on_gpu_and_cpu() {
    let g = Golden::named("hf_models.safetensors");
    let gpu = common::gpu();
    let cases = g.cases();
    assert_eq!(cases.len(), 12, "twelve model cases: {cases:?}");
    for case in &cases {
        let meta = g.case_meta(case);
        let layout = meta["layout"].as_str().unwrap();
        let pairing: Pairing = meta["rotation"].as_str().unwrap().parse().unwrap();
        let rotary_dim = meta["rotary_dim"].as_u64().unwrap() as usize;
        let cos = g.f32_bits(&format!("{case}.cos"));
        let sin = g.f32_bits(&format!("{case}.sin"));
        let [tb, ts, width] = cos.shape[..] else {
            panic!("{case}: cos shape {:?}", cos.shape)
        };
        let f = |v: &[u32]| v.iter().map(|&b| f32::from_bits(b)).collect::<Vec<f32>>();
        let table = if width == rotary_dim {
            RopeTable::from_repeated_halves(&f(&cos.data), &f(&sin.data), tb * ts, width)
        } else {
            RopeTable::from_cos_sin(&f(&cos.data), &f(&sin.data), tb * ts, width)
        }
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(table.pairs(), rotary_dim / 2, "{case}: table width");
        for t in ["q", "k"] {
            let x = g.bf16(&format!("{case}.{t}"));
            let dims: [usize; 4] = x.shape[..].try_into().unwrap();
            let view = match layout {
                "bhsd" => TensorView::bhsd(dims[0], dims[1], dims[2], dims[3]),
                "bshd" => TensorView::bshd(dims[0], dims[1], dims[2], dims[3]),
                other => panic!("{case}: layout {other}"),
            };
            let [b, s, _, _] = view.dims;
            assert_eq!((b, s), (tb, ts), "{case}.{t}: one table row per token");
            let rows: Vec<usize> = (0..b * s).collect();
            let positions = Positions::PerToken(rows.clone());
            let call = RopeCall {
                view,
                rotation: Rotation {
                    pairing,
                    rotary_dim,
                    direction: Direction::Forward,
                    precision: Precision::Exact,
                    dtype: bfrope::Dtype::Bf16,
                },
                positions: &positions,
                table: &table,
            };
            let want = oracle_rotate_view(
                &x.data,
                &OracleView {
                    dims: view.dims,
                    strides: view.strides,
                    offset: 0,
                    half_split: pairing == Pairing::HalfSplit,
                    rotary_dim,
                    rows: &rows,
                    inverse: false,
                },
                |r, i| {
                    let [c, s] = table.get(r, i);
                    (c.to_bits(), s.to_bits())
                },
            );
            let on_cpu = cpu::apply(&call, &x.data).unwrap();
            let bad = on_cpu.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(bad, 0, "{case}.{t}: CPU path vs oracle");
            if let Some(gpu) = &gpu {
                let on_gpu = gpu.apply_blocking(&call, &x.data).unwrap();
                let bad = on_gpu.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(bad, 0, "{case}.{t}: GPU vs oracle");
            }
            // DeepSeek's interleave returns its output in half-split order: not comparable
            // element by element.
            if !case.starts_with("deepseek") {
                let hf = g.bf16(&format!("{case}.{t}_hf"));
                let differ = hf
                    .data
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| a != b && !(is_nan(**a) && is_nan(**b)))
                    .count();
                eprintln!(
                    "{case}.{t}: exact on GPU and CPU; the model's own bf16 forward differs in {differ} of {} ({:.1}%)",
                    want.len(),
                    100.0 * differ as f64 / want.len() as f64
                );
            }
        }
    }
}

/// `--precision hf` (docs/CONTRACT.md §2) fed each case's own tables: for the ten Hugging Face
/// models the output is bit-identical (NaN by NaN-ness) to the model's own bf16 forward
/// (`.q_hf`, `.k_hf`; DeepSeek's comes in half-split order and is permuted back), on the GPU
/// and the CPU path, which both equal the independent hf oracle. The seed's two cases (whose
/// `_hf` come from the seed's own f32 code, not HF's bf16 arithmetic) are reported, not
/// forced. Also reported: how far hf is from exact (share of outputs differing, max ulp).
#[test]
fn hf_models_in_hf_mode_reproduce_the_models_bf16_forward() {
    use common::hf::hf_rotate_view;
    use common::ulp_distance;
    let g = Golden::named("hf_models.safetensors");
    let gpu = common::gpu();
    let (mut total, mut total_differ) = (0usize, 0usize);
    for case in &g.cases() {
        let meta = g.case_meta(case);
        let seed = meta["kind"].as_str() == Some("seed");
        let layout = meta["layout"].as_str().unwrap();
        let pairing: Pairing = meta["rotation"].as_str().unwrap().parse().unwrap();
        let rotary_dim = meta["rotary_dim"].as_u64().unwrap() as usize;
        let cos = g.f32_bits(&format!("{case}.cos"));
        let sin = g.f32_bits(&format!("{case}.sin"));
        let [tb, ts, width] = cos.shape[..] else {
            panic!("{case}: cos shape {:?}", cos.shape)
        };
        let f = |v: &[u32]| v.iter().map(|&b| f32::from_bits(b)).collect::<Vec<f32>>();
        let table = if width == rotary_dim {
            RopeTable::from_repeated_halves(&f(&cos.data), &f(&sin.data), tb * ts, width)
        } else {
            RopeTable::from_cos_sin(&f(&cos.data), &f(&sin.data), tb * ts, width)
        }
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        for t in ["q", "k"] {
            let x = g.bf16(&format!("{case}.{t}"));
            let dims: [usize; 4] = x.shape[..].try_into().unwrap();
            let view = match layout {
                "bhsd" => TensorView::bhsd(dims[0], dims[1], dims[2], dims[3]),
                _ => TensorView::bshd(dims[0], dims[1], dims[2], dims[3]),
            };
            let rows: Vec<usize> = (0..tb * ts).collect();
            let positions = Positions::PerToken(rows.clone());
            let rotation = |precision| Rotation {
                pairing,
                rotary_dim,
                direction: Direction::Forward,
                precision,
                dtype: bfrope::Dtype::Bf16,
            };
            let call = RopeCall {
                view,
                rotation: rotation(Precision::Hf),
                positions: &positions,
                table: &table,
            };
            let oracle_view = OracleView {
                dims: view.dims,
                strides: view.strides,
                offset: 0,
                half_split: pairing == Pairing::HalfSplit,
                rotary_dim,
                rows: &rows,
                inverse: false,
            };
            let bits = |r: usize, i: usize| {
                let [c, s] = table.get(r, i);
                (c.to_bits(), s.to_bits())
            };
            let want = hf_rotate_view(&x.data, &oracle_view, bits);
            let on_cpu = cpu::apply(&call, &x.data).unwrap();
            let bad = on_cpu.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(bad, 0, "{case}.{t}: CPU hf vs hf oracle");
            if let Some(gpu) = &gpu {
                let on_gpu = gpu.apply_blocking(&call, &x.data).unwrap();
                let bad = on_gpu.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(bad, 0, "{case}.{t}: GPU hf vs hf oracle");
            }
            // DeepSeek's interleave hands its output back in half-split order: pair i's
            // outputs at i and R/2 + i of each head.
            let mut ours = want.clone();
            if case.starts_with("deepseek") {
                let d = dims[3];
                let h = rotary_dim / 2;
                for (src, dst) in want.chunks_exact(d).zip(ours.chunks_exact_mut(d)) {
                    for i in 0..h {
                        dst[i] = src[2 * i];
                        dst[h + i] = src[2 * i + 1];
                    }
                }
            }
            let model = g.bf16(&format!("{case}.{t}_hf"));
            let differ = ours
                .iter()
                .zip(&model.data)
                .filter(|(a, b)| a != b && !(is_nan(**a) && is_nan(**b)))
                .count();
            // How far hf is from exact: the exact oracle on the same call.
            let exact = oracle_rotate_view(&x.data, &oracle_view, bits);
            let (mut off, mut max_ulp) = (0usize, 0u32);
            for (a, b) in want.iter().zip(&exact) {
                if a != b && !(is_nan(*a) && is_nan(*b)) {
                    off += 1;
                    max_ulp = max_ulp.max(ulp_distance(*a, *b));
                }
            }
            let n = want.len();
            eprintln!(
                "{case}.{t}: hf mode vs the model's bf16 forward: {differ} of {n} differ; hf vs exact: {off} of {n} ({:.1}%), max {max_ulp} ulp",
                100.0 * off as f64 / n as f64
            );
            if seed {
                // The seed's own f32 code is not HF's arithmetic: reported, not forced.
                continue;
            }
            assert_eq!(
                differ, 0,
                "{case}.{t}: hf mode vs the model's own bf16 forward"
            );
            total += n;
            total_differ += off;
        }
    }
    eprintln!(
        "HF models: hf mode bit-identical to the models' bf16 forward; differs from exact in {total_differ} of {total} outputs"
    );
}
