//! The wasm library itself, in a real browser (`wasm-bindgen-test`, run by `web/test.sh`):
//! the CPU path on wasm32 gives the native bits, exact and torch tables are libm's bits,
//! when the browser has WebGPU the kernel matches the CPU path on the special-value sweep, and
//! the JS entry `rope(x, options)` gives `cpu::apply`'s bits on the same description.
//!
//! ```text
//! CHROMEDRIVER=/usr/bin/chromedriver \
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test --target wasm32-unknown-unknown --test wasm
//! ```
#![cfg(target_arch = "wasm32")]

use bfrope::conformance::{random_bf16, special_sweep, SWEEP_X1};
use bfrope::table::torch_inv_freq;
use bfrope::{
    cpu, AngleMode, Direction, Gpu, Pairing, Positions, Precision, RopeCall, RopeTable, Rotation,
    TableSpec, TensorView,
};
use js_sys::{Array, Float32Array, Object, Reflect, Uint16Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// FNV-1a over the little-endian bytes, the same on every target.
fn fnv1a(bits: &[u16]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bits {
        for byte in b.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

fn is_finite_nonzero(b: u16) -> bool {
    b & 0x7FFF != 0 && b & 0x7F80 != 0x7F80
}

/// Angle 0 is the identity and a quarter turn swaps with a sign, exactly, for every finite
/// non-zero pair of the sweep (the results are representable, so rounding plays no part).
#[wasm_bindgen_test]
fn cpu_exact_quarter_turns() {
    let mut checked = 0usize;
    for x0 in 0..=u16::MAX {
        for &x1 in &SWEEP_X1 {
            if !is_finite_nonzero(x0) || !is_finite_nonzero(x1) {
                continue;
            }
            for direction in [Direction::Forward, Direction::Inverse] {
                assert_eq!(
                    cpu::rotate_pair(x0, x1, 1.0, 0.0, direction),
                    (x0, x1),
                    "identity, x0=0x{x0:04X} x1=0x{x1:04X} {direction:?}"
                );
            }
            let (x0n, x1n) = (x0 ^ 0x8000, x1 ^ 0x8000);
            assert_eq!(
                cpu::rotate_pair(x0, x1, 0.0, 1.0, Direction::Forward),
                (x1n, x0),
                "+pi/2, x0=0x{x0:04X} x1=0x{x1:04X}"
            );
            assert_eq!(
                cpu::rotate_pair(x0, x1, 0.0, 1.0, Direction::Inverse),
                (x1, x0n),
                "-pi/2, x0=0x{x0:04X} x1=0x{x1:04X}"
            );
            checked += 1;
        }
    }
    console_log!("cpu: {checked} finite non-zero pairs exact at 0 and ±pi/2");
    assert_eq!(checked, (65_536 - 2 - 256) * 6);
}

/// The whole special-value sweep on the wasm CPU path hashes to the bits the native CPU path
/// gives (hashes computed natively with the same FNV-1a), both directions.
#[wasm_bindgen_test]
fn cpu_sweep_matches_native_bits() {
    let case = special_sweep();
    for (direction, native) in [
        (Direction::Forward, 0x851B_CF8F_6E56_5959_u64),
        (Direction::Inverse, 0xB2C1_7593_7942_44E1_u64),
    ] {
        let got = case.expected(direction).expect("cpu rotate");
        assert_eq!(got.len(), case.shape.elements());
        let hash = fnv1a(&got);
        console_log!(
            "cpu sweep {direction:?}: {} elements, FNV-1a 0x{hash:016X}",
            got.len()
        );
        assert_eq!(
            hash, native,
            "{direction:?}: wasm CPU bits differ from native"
        );
    }
}

/// Built tables are exactly libm's bits, computed here inline, in both angle modes.
#[wasm_bindgen_test]
fn tables_are_libm_bits() {
    for (base, dim, first) in [(10000.0, 128, 0u64), (500000.0, 64, (1 << 24) - 3)] {
        let spec = TableSpec {
            base,
            rotary_dim: dim,
            first_position: first,
            rows: 7,
            angles: AngleMode::Exact,
        };
        let table = RopeTable::build(&spec).expect("exact table");
        let torch = RopeTable::build(&TableSpec {
            angles: AngleMode::Torch,
            ..spec
        })
        .expect("torch table");
        let pairs = dim / 2;
        let inv_f32 = torch_inv_freq(base, dim);
        for r in 0..spec.rows {
            let pos = first + r as u64;
            for (i, &freq32) in inv_f32.iter().enumerate().take(pairs) {
                let angle = pos as f64 * libm::pow(base, -((2 * i) as f64) / dim as f64);
                let want = [libm::cos(angle) as f32, libm::sin(angle) as f32];
                let got = table.get(r, i);
                assert_eq!(
                    got.map(f32::to_bits),
                    want.map(f32::to_bits),
                    "exact base {base} row {r} pair {i}"
                );
                let a32 = (pos as f32 * freq32) as f64;
                let want = [libm::cos(a32) as f32, libm::sin(a32) as f32];
                assert_eq!(
                    torch.get(r, i).map(f32::to_bits),
                    want.map(f32::to_bits),
                    "torch base {base} row {r} pair {i}"
                );
            }
        }
    }
}

/// With WebGPU: the kernel on the special-value sweep, both directions, 0 mismatching pairs
/// against the CPU path. Without WebGPU the test says so loudly and passes (the CPU tests
/// above still ran).
#[wasm_bindgen_test]
async fn webgpu_sweep_matches_cpu() {
    let gpu = match Gpu::new(None).await {
        Ok(gpu) => gpu,
        Err(e) => {
            console_log!("!!!!!!!! NO WEBGPU in this browser ({e}); GPU test SKIPPED, CPU tests only !!!!!!!!");
            return;
        }
    };
    console_log!("webgpu adapter: {}", gpu.adapter().summary());
    let case = special_sweep();
    for direction in [Direction::Forward, Direction::Inverse] {
        let expected = case.expected(direction).expect("cpu rotate");
        let got = gpu
            .apply(&case.call(direction, Precision::Exact), &case.x)
            .await
            .expect("gpu rotate");
        let (count, first) = case.compare(direction, &expected, &got, 5);
        console_log!(
            "webgpu sweep {direction:?}: {} pairs, {count} mismatches",
            expected.len() / 2
        );
        for m in &first {
            console_log!("  {m}");
        }
        assert_eq!(count, 0, "{direction:?}: WebGPU differs from the CPU path");
    }
}

// ---------------------------------------------------------------------------------------------
// `rope(x, options)`: the JS entry against `cpu::apply` on the same description.

/// A plain JS object from `(key, value)` pairs.
fn obj(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        Reflect::set(&o, &JsValue::from_str(k), v).expect("set a property");
    }
    o.into()
}

fn nums(v: &[usize]) -> JsValue {
    v.iter()
        .map(|&n| JsValue::from_f64(n as f64))
        .collect::<Array>()
        .into()
}

/// `{cos, sin, width, rows}` of `table`, or of its Hugging Face form (halves repeated).
fn table_values(table: &RopeTable, repeated_halves: bool) -> JsValue {
    let pairs = table.pairs();
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for row in table.cos_sin().chunks_exact(pairs) {
        for _ in 0..if repeated_halves { 2 } else { 1 } {
            cos.extend(row.iter().map(|p| p[0]));
            sin.extend(row.iter().map(|p| p[1]));
        }
    }
    let width = if repeated_halves { 2 * pairs } else { pairs };
    obj(&[
        ("cos", Float32Array::from(&cos[..]).into()),
        ("sin", Float32Array::from(&sin[..]).into()),
        ("width", JsValue::from_f64(width as f64)),
        ("rows", JsValue::from_f64(table.rows() as f64)),
    ])
}

fn message(e: JsValue) -> String {
    e.dyn_into::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|v| format!("not an Error: {v:?}"))
}

async fn rope(x: &[u16], options: JsValue) -> Result<Vec<u16>, String> {
    let y = bfrope::web::rope(Uint16Array::from(x).into(), options)
        .await
        .map_err(message)?;
    Ok(y.dyn_into::<Uint16Array>()
        .map_err(|v| format!("rope() of a Uint16Array returned {v:?}"))?
        .to_vec())
}

/// `rope()` on a `Float32Array`: the f32 values of the result.
async fn rope_f32(x: &[f32], options: JsValue) -> Result<Vec<f32>, String> {
    let y = bfrope::web::rope(Float32Array::from(x).into(), options)
        .await
        .map_err(message)?;
    Ok(y.dyn_into::<Float32Array>()
        .map_err(|v| format!("rope() of a Float32Array returned {v:?}"))?
        .to_vec())
}

/// `rope()`'s output is `cpu::apply`'s on `call`, rotated where the view is (so the test
/// sees a rotation happen) and unchanged outside the rotated dims.
fn check_rope(what: &str, x: &[u16], got: &[u16], call: &RopeCall) {
    let want = cpu::apply(call, x).expect("cpu apply");
    assert_eq!(got.len(), x.len(), "{what}: length");
    let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    let moved = want.iter().zip(x).filter(|(a, b)| a != b).count();
    console_log!(
        "rope {what}: {} elements, {moved} rotated, {diff} differ from cpu::apply",
        x.len()
    );
    for (k, (g, w)) in got
        .iter()
        .zip(&want)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .take(8)
    {
        console_log!(
            "  element {k}: x 0x{:04X}, rope() 0x{g:04X}, cpu::apply 0x{w:04X}",
            x[k]
        );
    }
    assert!(moved > 0, "{what}: the description rotates nothing");
    assert_eq!(diff, 0, "{what}: rope() differs from cpu::apply");
}

async fn log_backend() {
    let info = bfrope::web::backend_info().await.expect("backend");
    let get = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
    };
    console_log!(
        "rope() backend: {} ({})",
        get("backend").unwrap_or_default(),
        get("adapter").unwrap_or_default()
    );
}

/// Hugging Face's case: half-split pairs in a BHSD tensor with partial rotary_dim, the table
/// built for positions 7.. (and, the second time, supplied in HF's repeated-halves form).
#[wasm_bindgen_test]
async fn rope_half_split_bhsd_partial_rotary() {
    log_backend().await;
    let (b, h, s, d, r, start) = (2, 3, 5, 16, 8, 7);
    let x = random_bf16(21, b * h * s * d);
    let table = RopeTable::build(&TableSpec::new(r, start + s)).expect("table");
    let positions = Positions::Offset(start);
    for direction in [Direction::Forward, Direction::Inverse] {
        let call = RopeCall {
            view: TensorView::bhsd(b, h, s, d),
            rotation: Rotation {
                pairing: Pairing::HalfSplit,
                direction,
                ..Rotation::new(r)
            },
            positions: &positions,
            table: &table,
        };
        let inverse = JsValue::from_bool(direction == Direction::Inverse);
        let common = [
            ("dims", nums(&[b, s, h, d])),
            ("layout", "bhsd".into()),
            ("rotation", "half".into()),
            ("rotaryDim", JsValue::from_f64(r as f64)),
            ("inverse", inverse),
        ];
        let mut built = common.to_vec();
        built.push(("positions", JsValue::from_f64(start as f64)));
        built.push(("table", obj(&[("base", JsValue::from_f64(10000.0))])));
        let got = rope(&x, obj(&built)).await.expect("rope, built table");
        check_rope(
            &format!("half bhsd r={r} built {direction:?}"),
            &x,
            &got,
            &call,
        );

        let mut hf = common.to_vec();
        hf.push(("positions", JsValue::from_f64(start as f64)));
        hf.push(("table", table_values(&table, true)));
        let got = rope(&x, obj(&hf)).await.expect("rope, HF table");
        check_rope(
            &format!("half bhsd r={r} HF table {direction:?}"),
            &x,
            &got,
            &call,
        );
    }
}

/// One start per batch row, a strided view at an element offset inside a larger buffer (the
/// rest of the buffer comes back as it was), a supplied `[rows, R/2]` table.
#[wasm_bindgen_test]
async fn rope_per_batch_positions_strided() {
    let (b, s, h, d) = (3, 4, 2, 8);
    let strides = [s * (h * d + 2) + 5, h * d + 2, d];
    let offset = 11;
    let view = TensorView {
        dims: [b, s, h, d],
        strides,
        offset,
    };
    let x = random_bf16(22, view.span() + 13);
    let starts = vec![0, 9, 100];
    let table = RopeTable::build(&TableSpec::new(d, 104)).expect("table");
    let positions = Positions::PerBatch(starts.clone());
    let call = RopeCall {
        view,
        rotation: Rotation::new(d),
        positions: &positions,
        table: &table,
    };
    let options = obj(&[
        ("dims", nums(&[b, s, h, d])),
        ("strides", nums(&strides)),
        ("offset", JsValue::from_f64(offset as f64)),
        ("positions", nums(&starts)),
        ("positionsPer", "batch".into()),
        ("table", table_values(&table, false)),
    ]);
    let got = rope(&x, options).await.expect("rope");
    check_rope("per-batch strided", &x, &got, &call);
    assert_eq!(got[..offset], x[..offset], "elements before the view");
}

/// Packed sequences from `cu_seqlens` (one empty), each from position 2, a torch-mode table
/// built from base 500000, inverse, half-split.
#[wasm_bindgen_test]
async fn rope_cu_seqlens() {
    let (t, h, d) = (10, 2, 8);
    let cu = [0, 3, 3, 10];
    let x = random_bf16(23, t * h * d);
    let positions = Positions::from_cu_seqlens(&cu, t, 2).expect("positions");
    let table = RopeTable::build(&TableSpec {
        base: 500000.0,
        rotary_dim: d,
        first_position: 0,
        rows: 2 + 7,
        angles: AngleMode::Torch,
    })
    .expect("table");
    let call = RopeCall {
        view: TensorView::bshd(1, t, h, d),
        rotation: Rotation {
            pairing: Pairing::HalfSplit,
            direction: Direction::Inverse,
            ..Rotation::new(d)
        },
        positions: &positions,
        table: &table,
    };
    let options = obj(&[
        ("dims", nums(&[1, t, h, d])),
        ("cuSeqlens", nums(&cu)),
        ("positions", JsValue::from_f64(2.0)),
        ("rotation", "half".into()),
        ("inverse", JsValue::TRUE),
        (
            "table",
            obj(&[
                ("base", JsValue::from_f64(500000.0)),
                ("angles", "torch".into()),
            ]),
        ),
    ]);
    let got = rope(&x, options).await.expect("rope");
    check_rope("cu_seqlens", &x, &got, &call);
}

/// Bad options reject with one sentence naming the value.
#[wasm_bindgen_test]
async fn rope_rejects_bad_options() {
    let x = vec![0x3F80u16; 2 * 4 * 8];
    let table = || obj(&[("base", JsValue::from_f64(10000.0))]);
    let dims = || nums(&[1, 2, 4, 8]);
    let cases: Vec<(JsValue, &str)> = vec![
        (
            obj(&[
                ("dims", dims()),
                ("rotation", "sideways".into()),
                ("table", table()),
            ]),
            "rotation \"sideways\"",
        ),
        (
            obj(&[
                ("dims", dims()),
                ("rotaryDim", JsValue::from_f64(5.0)),
                ("table", table()),
            ]),
            "rotary_dim 5",
        ),
        (
            obj(&[
                ("dims", dims()),
                ("rotary_dim", JsValue::from_f64(4.0)),
                ("table", table()),
            ]),
            "unknown key \"rotary_dim\"",
        ),
        (
            obj(&[("dims", nums(&[1, 3, 4, 8])), ("table", table())]),
            "[1, 3, 4, 8]",
        ),
        (
            obj(&[
                ("dims", dims()),
                ("positions", nums(&[0, 1])),
                ("table", table()),
            ]),
            "positionsPer",
        ),
        (
            obj(&[
                ("dims", dims()),
                ("cuSeqlens", nums(&[0, 1, 3])),
                ("table", table()),
            ]),
            "cu_seqlens [0, 1, 3]",
        ),
    ];
    for (options, needle) in cases {
        let err = rope(&x, options)
            .await
            .expect_err("bad options are refused");
        console_log!("refused: {err}");
        assert!(err.contains(needle), "{err:?} should name {needle:?}");
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    }
}

/// The original JS entry `rope_bf16(x, shape, cos, sin, inverse)` keeps working: contiguous
/// `[B,S,H,D]` interleaved from position 0, now a `RopeCall` inside, equal to `cpu::apply`
/// both ways; a table of the wrong width is refused naming its size.
#[wasm_bindgen_test]
async fn rope_bf16_keeps_its_signature_and_bits() {
    log_backend().await;
    let (b, s, h, d) = (2, 5, 3, 16);
    let x = random_bf16(33, b * s * h * d);
    let table = RopeTable::build(&TableSpec::new(d, s + 2)).expect("table");
    let (cos, sin): (Vec<f32>, Vec<f32>) = table.cos_sin().iter().map(|&[c, s]| (c, s)).unzip();
    let positions = Positions::Offset(0);
    for direction in [Direction::Forward, Direction::Inverse] {
        let call = RopeCall::new(TensorView::bshd(b, s, h, d), &positions, &table)
            .with_direction(direction);
        let got = bfrope::web::rope_bf16(
            Uint16Array::from(&x[..]),
            nums(&[b, s, h, d]),
            Float32Array::from(&cos[..]),
            Float32Array::from(&sin[..]),
            direction == Direction::Inverse,
        )
        .await
        .expect("rope_bf16")
        .to_vec();
        assert_eq!(got, cpu::apply(&call, &x).expect("cpu"), "{direction:?}");
    }
    let e = bfrope::web::rope_bf16(
        Uint16Array::from(&x[..]),
        nums(&[b, s, h, d]),
        Float32Array::from(&cos[..7]),
        Float32Array::from(&sin[..7]),
        false,
    )
    .await
    .expect_err("a table of 7 values");
    let msg = e.dyn_into::<js_sys::Error>().expect("an Error").message();
    assert!(
        String::from(msg).contains("7 values"),
        "refused naming the size"
    );
}

/// f16 (`Uint16Array` with `dtype: "f16"`) and f32 (`Float32Array`) through `rope()`: the
/// output has the input's type and `cpu::apply`'s bits in that dtype (exact and hf); a dtype
/// that does not match the array is refused naming both.
#[wasm_bindgen_test]
async fn rope_f16_and_f32_arrays() {
    log_backend().await;
    let (b, s, h, d) = (2usize, 3usize, 2usize, 8usize);
    let x16: Vec<u16> = random_bf16(0xF16, b * s * h * d);
    // Random f32 bit patterns: a random high half (bf16 patterns, specials included) over a
    // random low half.
    let lo = random_bf16(0xF33, b * s * h * d);
    let x32: Vec<u32> = random_bf16(0xF32, b * s * h * d)
        .iter()
        .zip(&lo)
        .map(|(&hi, &lo)| (u32::from(hi) << 16) | u32::from(lo))
        .collect();
    let positions = Positions::Offset(0);
    let table = RopeTable::build(&TableSpec::new(d, s)).expect("table");
    for precision in ["exact", "hf"] {
        let call = RopeCall::new(TensorView::bshd(b, s, h, d), &positions, &table)
            .with_pairing(Pairing::HalfSplit)
            .with_precision(precision.parse::<Precision>().expect("precision"));
        let options = |dtype: &str| {
            obj(&[
                ("dims", nums(&[b, s, h, d])),
                ("rotation", "half".into()),
                ("precision", precision.into()),
                ("dtype", dtype.into()),
                ("table", table_values(&table, false)),
            ])
        };
        let got = rope(&x16, options("f16")).await.expect("rope f16");
        check_rope(
            &format!("f16 {precision}"),
            &x16,
            &got,
            &call.with_dtype(bfrope::Dtype::F16),
        );
        let xf: Vec<f32> = x32.iter().map(|&w| f32::from_bits(w)).collect();
        let got = rope_f32(&xf, options("f32")).await.expect("rope f32");
        let want = cpu::apply(&call.with_dtype(bfrope::Dtype::F32), &x32).expect("cpu");
        let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "f32 {precision}: rope() differs from cpu::apply");
    }
    let plain = |dtype: &str| {
        obj(&[
            ("dims", nums(&[b, s, h, d])),
            ("dtype", dtype.into()),
            ("table", table_values(&table, false)),
        ])
    };
    let e = rope(&x16, plain("f32")).await.unwrap_err();
    assert!(e.contains("Float32Array") && e.contains("\"f32\""), "{e}");
    let xf = vec![1.0f32; b * s * h * d];
    let e = rope_f32(&xf, plain("f16")).await.unwrap_err();
    assert!(e.contains("Float32Array") && e.contains("f16"), "{e}");
    let e = rope(&x16, plain("f64")).await.unwrap_err();
    assert!(e.contains("dtype \"f64\""), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Table recipes: `ropeFromConfig`, `frequenciesFor`, `tableFor` and `rope`'s recipe table
// against the library's own `HfRope` / `TableRecipe` on the same config.json.

/// Llama-3.1-8B's rope settings, as its config.json gives them (transformers 4.x form).
const LLAMA31_CONFIG: &str = r#"{"hidden_size": 4096, "num_attention_heads": 32,
  "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
  "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
  "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#;

/// Qwen2.5-7B with YaRN x4 (the attention factor 0.1·ln 4 + 1 multiplied into cos and sin).
const QWEN25_YARN_CONFIG: &str = r#"{"hidden_size": 3584, "num_attention_heads": 28,
  "max_position_embeddings": 131072, "rope_theta": 1000000.0,
  "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}"#;

/// Positions on both sides of Llama 3.1's original context (8192) and up to its extended one.
const RECIPE_POSITIONS: [u64; 8] = [0, 1, 2047, 8191, 8192, 70000, 70001, 131071];

/// FNV-1a of the Llama-3.1 table's cos and sin bits at [`RECIPE_POSITIONS`], exact and torch
/// angles: the native library gives the same (`tests/tables/web_recipes.rs` checks it natively).
const LLAMA31_TABLE_FNV: [(&str, u64); 2] = [
    ("exact", LLAMA31_TABLE_FNV_EXACT),
    ("torch", LLAMA31_TABLE_FNV_TORCH),
];
const LLAMA31_TABLE_FNV_EXACT: u64 = 0x96c9_089d_6ce7_254f;
const LLAMA31_TABLE_FNV_TORCH: u64 = 0x6235_cc50_e2a8_09e8;

fn table_fnv(cos: &[f32], sin: &[f32]) -> u64 {
    let bits: Vec<u16> = cos
        .iter()
        .chain(sin)
        .flat_map(|v| {
            let b = v.to_bits();
            [b as u16, (b >> 16) as u16]
        })
        .collect();
    fnv1a(&bits)
}

fn field(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &k.into()).expect("a property")
}

fn f32s(v: JsValue) -> Vec<f32> {
    v.dyn_into::<Float32Array>()
        .expect("a Float32Array")
        .to_vec()
}

/// The recipe `ropeFromConfig` reads from Llama-3.1's config.json is the native
/// `HfRope::from_config_json`'s: the same head dim, pairing and attention factor, the same
/// inverse frequencies (bits) at several largest positions, and `tableFor` gives the same
/// cos/sin bits as `TableRecipe::table_per_token`, in exact and torch angles, whose hash is
/// the native build's.
#[wasm_bindgen_test]
fn config_recipe_equals_native_bit_for_bit() {
    let native = bfrope::HfRope::from_config_json(LLAMA31_CONFIG).expect("native config");
    let cfg =
        bfrope::web::rope_from_config(LLAMA31_CONFIG, JsValue::UNDEFINED).expect("ropeFromConfig");
    assert_eq!(field(&cfg, "headDim").as_f64(), Some(128.0));
    assert_eq!(field(&cfg, "pairing").as_string().as_deref(), Some("half"));
    assert_eq!(field(&cfg, "attentionFactor").as_f64(), Some(1.0));
    assert_eq!(
        field(&cfg, "maxPositionEmbeddings").as_f64(),
        Some(131072.0)
    );
    let recipe = field(&cfg, "recipe");
    assert_eq!(field(&recipe, "rotaryDim").as_f64(), Some(128.0));
    assert_eq!(field(&recipe, "base").as_f64(), Some(500000.0));
    assert_eq!(
        field(&recipe, "axes").as_string().as_deref(),
        Some("single")
    );
    let variant = field(&recipe, "variant");
    assert_eq!(
        field(&variant, "type").as_string().as_deref(),
        Some("llama3")
    );
    assert_eq!(
        field(&variant, "originalMaxPositionEmbeddings").as_f64(),
        Some(8192.0)
    );

    for max in [0u64, 8191, 131071] {
        let f = bfrope::web::frequencies_for(recipe.clone(), max as f64).expect("frequenciesFor");
        let got = field(&f, "invFreq")
            .dyn_into::<js_sys::Float64Array>()
            .expect("Float64Array")
            .to_vec();
        let (want, _) = native.recipe.frequencies(max).expect("native frequencies");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want.inv_freq), "inv_freq at max {max}");
        let wl = field(&f, "wavelength")
            .dyn_into::<js_sys::Float64Array>()
            .expect("Float64Array")
            .to_vec();
        // Llama 3.1 keeps its fastest frequency and divides the slowest by 8.
        assert_eq!(wl[0], 2.0 * std::f64::consts::PI);
        let default_last = 2.0 * std::f64::consts::PI * 500000f64.powf(126.0 / 128.0);
        assert!((wl[63] / default_last - 8.0).abs() < 1e-9, "{}", wl[63]);
    }

    let positions: Array = RECIPE_POSITIONS
        .iter()
        .map(|&p| JsValue::from_f64(p as f64))
        .collect();
    for (angles, fnv) in LLAMA31_TABLE_FNV {
        Reflect::set(&recipe, &"angles".into(), &angles.into()).expect("set angles");
        let t = bfrope::web::table_for(recipe.clone(), positions.clone().into()).expect("tableFor");
        let mut r = native.recipe.clone();
        r.angles = angles.parse().expect("angle mode");
        let want = r.table_per_token(&RECIPE_POSITIONS).expect("native table");
        let (cos, sin) = (f32s(field(&t, "cos")), f32s(field(&t, "sin")));
        let (wc, ws): (Vec<f32>, Vec<f32>) = want.cos_sin().iter().map(|&[c, s]| (c, s)).unzip();
        let differ = cos
            .iter()
            .zip(&wc)
            .chain(sin.iter().zip(&ws))
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        let hash = table_fnv(&cos, &sin);
        console_log!(
            "tableFor(llama3.1, {angles}): {} rows x {} pairs, {differ} values differ from the library's, fnv {hash:#018x}",
            field(&t, "rows").as_f64().unwrap_or(0.0),
            field(&t, "pairs").as_f64().unwrap_or(0.0)
        );
        assert_eq!(cos.len(), RECIPE_POSITIONS.len() * 64);
        assert_eq!(
            differ, 0,
            "tableFor differs from TableRecipe::table_per_token"
        );
        assert_eq!(
            hash, fnv,
            "{angles} table hash differs from the native build's"
        );
    }
}

/// `rope(x, {table: recipe})` with Qwen2.5's YaRN recipe (attention factor in cos/sin) at
/// scattered decode positions gives `cpu::apply`'s bits on the native recipe's table.
#[wasm_bindgen_test]
async fn rope_with_a_config_recipe() {
    let native = bfrope::HfRope::from_config_json(QWEN25_YARN_CONFIG).expect("native config");
    let cfg = bfrope::web::rope_from_config(QWEN25_YARN_CONFIG, JsValue::UNDEFINED)
        .expect("ropeFromConfig");
    let attention = field(&cfg, "attentionFactor").as_f64().expect("a number");
    assert!(
        (attention - (0.1 * 4f64.ln() + 1.0)).abs() < 1e-15,
        "{attention}"
    );
    let (b, h, s, d) = (2, 2, 3, 128);
    let ids = vec![0, 5, 32767, 32768, 100000, 131071];
    let x = random_bf16(31, b * h * s * d);
    let positions = Positions::PerToken(ids.clone());
    let (table, rows) = positions
        .built_table(&native.recipe, b, s)
        .expect("native table");
    let call = RopeCall {
        view: TensorView::bhsd(b, h, s, d),
        rotation: Rotation {
            pairing: Pairing::HalfSplit,
            ..Rotation::new(d)
        },
        positions: &rows,
        table: &table,
    };
    let got = rope(
        &x,
        obj(&[
            ("dims", nums(&[b, s, h, d])),
            ("layout", "bhsd".into()),
            ("rotation", "half".into()),
            ("positions", nums(&ids)),
            ("positionsPer", "token".into()),
            ("table", field(&cfg, "recipe")),
        ]),
    )
    .await
    .expect("rope with a recipe");
    check_rope("qwen2.5 yarn recipe, per-token positions", &x, &got, &call);
}

/// Bad configs and recipes are refused with one sentence naming the key.
/// `ropeFromConfig` reads a model's layers as the CLI does: a layer type or index where the
/// layers rotate differently, and refusals for layers and models without RoPE.
#[wasm_bindgen_test]
fn config_layers_and_models_without_rope() {
    let gemma3 = r#"{"model_type": "gemma3_text", "hidden_size": 1152, "num_attention_heads": 4,
        "head_dim": 256, "num_hidden_layers": 26, "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0}}"#;
    let err = message(
        bfrope::web::rope_from_config(gemma3, JsValue::UNDEFINED).expect_err("layers differ"),
    );
    assert!(
        err.contains("--layer-type sliding_attention|full_attention"),
        "{err}"
    );
    let base = |layer: JsValue| -> f64 {
        let c = bfrope::web::rope_from_config(gemma3, layer).expect("a layer");
        let recipe = Reflect::get(&c, &"recipe".into()).unwrap();
        Reflect::get(&recipe, &"base".into())
            .unwrap()
            .as_f64()
            .unwrap()
    };
    assert_eq!(base("sliding_attention".into()), 10000.0);
    assert_eq!(base("full_attention".into()), 1_000_000.0);
    assert_eq!(base(JsValue::from_f64(5.0)), 1_000_000.0);
    assert_eq!(base(JsValue::from_f64(4.0)), 10000.0);
    let bert = r#"{"model_type": "bert", "hidden_size": 768, "num_attention_heads": 12}"#;
    let err =
        message(bfrope::web::rope_from_config(bert, JsValue::UNDEFINED).expect_err("no RoPE"));
    assert!(err.contains("absolute position embeddings"), "{err}");
    let v3 = r#"{"model_type": "deepseek_v3", "hidden_size": 7168, "num_attention_heads": 128,
        "qk_rope_head_dim": 64, "rope_theta": 10000}"#;
    let c = bfrope::web::rope_from_config(v3, JsValue::UNDEFINED).expect("DeepSeek-V3");
    assert_eq!(
        Reflect::get(&c, &"pairing".into())
            .unwrap()
            .as_string()
            .as_deref(),
        Some("interleaved")
    );
}

#[wasm_bindgen_test]
fn config_and_recipe_errors_name_the_key() {
    let configs = [
        (
            LLAMA31_CONFIG.replace("\"llama3\"", "\"llama4\""),
            "rope_type \"llama4\"",
        ),
        (
            LLAMA31_CONFIG.replace("\"low_freq_factor\": 1.0,", ""),
            "low_freq_factor",
        ),
        (
            LLAMA31_CONFIG.replace("\"head_dim\": 128", "\"head_dim\": \"128\""),
            "head_dim",
        ),
        ("{\"rope_theta\": ".to_string(), "not valid JSON"),
    ];
    for (json, needle) in configs {
        let err =
            message(bfrope::web::rope_from_config(&json, JsValue::UNDEFINED).expect_err("refused"));
        console_log!("refused config: {err}");
        assert!(err.contains(needle), "{err:?} should name {needle:?}");
    }
    let recipes: Vec<(JsValue, &str)> = vec![
        (
            obj(&[("rotary_dim", JsValue::from_f64(64.0))]),
            "unknown key \"rotary_dim\"",
        ),
        (
            obj(&[("base", JsValue::from_f64(1e4))]),
            "recipe.rotaryDim is missing",
        ),
        (
            obj(&[
                ("rotaryDim", JsValue::from_f64(64.0)),
                (
                    "variant",
                    obj(&[("type", "yarn".into()), ("factor", JsValue::from_f64(4.0))]),
                ),
            ]),
            "recipe.variant.originalMaxPositionEmbeddings is missing",
        ),
        (
            obj(&[
                ("rotaryDim", JsValue::from_f64(64.0)),
                ("variant", "yarn".into()),
            ]),
            "needs its parameters",
        ),
        (
            obj(&[
                ("rotaryDim", JsValue::from_f64(8.0)),
                (
                    "variant",
                    obj(&[
                        ("type", "longrope".into()),
                        ("shortFactor", nums(&[1, 1, 1])),
                        ("longFactor", nums(&[1, 2, 3, 4])),
                        ("originalMaxPositionEmbeddings", JsValue::from_f64(4096.0)),
                        ("factor", JsValue::from_f64(32.0)),
                    ]),
                ),
            ]),
            "short_factor holds 3 values",
        ),
        (
            obj(&[
                ("rotaryDim", JsValue::from_f64(64.0)),
                ("axes", "radial:1,2".into()),
            ]),
            "recipe.axes \"radial:1,2\"",
        ),
    ];
    let positions: JsValue = nums(&[0, 1]);
    for (recipe, needle) in recipes {
        let err = message(bfrope::web::table_for(recipe, positions.clone()).expect_err("refused"));
        console_log!("refused recipe: {err}");
        assert!(err.contains(needle), "{err:?} should name {needle:?}");
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    }
}
