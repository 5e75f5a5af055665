//! The twelve real model configurations of `../shared/golden/hf_models.safetensors`
//! (DESIGN.md §4): each case's q and k in the model's layout (BHSD for Hugging Face models,
//! BSHD for the seed's), its pairing and rotary_dim, fed the model's own float32 tables, one
//! row per token (HF's repeated-halves `[B, S, R]` form, or the seed's `[B, S, R/2]`): the
//! GPU and the CPU path equal the independent oracle on every output. Also reported: how
//! often the model's own bf16 forward (`.q_hf`, `.k_hf`) differs from the exact result.
#![cfg(not(target_arch = "wasm32"))]

mod common;

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
