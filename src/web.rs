//! The browser entry: wasm-bindgen exports over [`Gpu`](crate::Gpu) and [`cpu`](crate::cpu).
//!
//! Thin on purpose (STYLE.md item 14): every export checks its arguments, runs the library on
//! the browser's WebGPU adapter when there is one (the CPU path compiled to wasm otherwise) and
//! returns `Result<_, JsValue>`. The page in `web/` and other pages import the same functions:
//!
//! - `rope_bf16(x, shape, cos, sin, inverse)` — rotate bf16 bit patterns (`Uint16Array`);
//! - `build_table(base, head_dim, first_position, rows, mode)` — `{cos, sin}` tables;
//! - `backend_info()` — which backend runs, and on what adapter;
//! - `run_conformance(full)` — the special-value suite against an exact integer reference;
//! - `precision_maps(...)` — ulp errors of bf16 RoPE computed three ways, for the page.

use std::cell::RefCell;

use half::bf16;
use js_sys::{Array, Float32Array, Object, Reflect, Uint16Array};
use wasm_bindgen::prelude::*;

use crate::cpu::{self, BF16_QNAN};
use crate::{AngleMode, Direction, Gpu, Precision, RopeShape, RopeTable, TableSpec};

/// What runs the kernels on this page.
#[derive(Clone)]
enum Backend {
    /// The browser's WebGPU adapter.
    WebGpu(Box<Gpu>),
    /// The CPU path compiled to wasm, and why WebGPU is not used.
    Cpu(String),
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// Installs a panic hook that writes panics to the console (runs when the module loads).
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("bfrope panicked: {info}")));
    }));
}

fn has_webgpu() -> bool {
    let global = js_sys::global();
    Reflect::get(&global, &"navigator".into())
        .ok()
        .filter(|n| !n.is_undefined())
        .and_then(|n| Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

async fn backend() -> Backend {
    if let Some(b) = BACKEND.with(|b| b.borrow().clone()) {
        return b;
    }
    let b = if !has_webgpu() {
        Backend::Cpu("this browser has no WebGPU (navigator.gpu is missing)".into())
    } else {
        match Gpu::new(None).await {
            Ok(gpu) => Backend::WebGpu(Box::new(gpu)),
            Err(e) => Backend::Cpu(format!("WebGPU is present but unusable: {e}")),
        }
    };
    BACKEND.with(|slot| slot.borrow_mut().get_or_insert(b).clone())
}

fn info_object(b: &Backend) -> Object {
    let o = Object::new();
    match b {
        Backend::WebGpu(gpu) => {
            let r = gpu.adapter();
            set(&o, "backend", "webgpu");
            set(&o, "adapter", r.summary());
            set(&o, "name", r.info.name.clone());
            set(&o, "timestamps", r.timestamps);
            set(&o, "maxStorageBinding", r.max_storage_binding as f64);
            set(&o, "reason", JsValue::NULL);
        }
        Backend::Cpu(reason) => {
            set(&o, "backend", "cpu");
            set(&o, "adapter", "CPU path (wasm, one thread)");
            set(&o, "name", "cpu");
            set(&o, "timestamps", false);
            set(&o, "reason", reason.clone());
        }
    }
    o
}

/// Opens the backend (once) and describes it: `{backend: "webgpu"|"cpu", adapter, name,
/// timestamps, reason}`; `reason` says why the CPU path runs, `null` on WebGPU.
#[wasm_bindgen]
pub async fn backend_info() -> Result<JsValue, JsValue> {
    Ok(info_object(&backend().await).into())
}

fn shape_of(shape: &JsValue) -> Result<RopeShape, JsValue> {
    let arr: Array = shape
        .clone()
        .dyn_into()
        .map_err(|_| js_err("shape must be an array [B, S, H, D]"))?;
    let dims: Vec<usize> = arr
        .iter()
        .map(|v| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
                .map(|f| f as usize)
                .ok_or_else(|| js_err(format!("shape entry {v:?} is not a non-negative integer")))
        })
        .collect::<Result<_, _>>()?;
    RopeShape::from_dims(&dims).map_err(js_err)
}

async fn rotate(
    x: &[u16],
    shape: RopeShape,
    table: &RopeTable,
    row_offset: usize,
    direction: Direction,
) -> Result<Vec<u16>, JsValue> {
    match backend().await {
        Backend::WebGpu(gpu) => gpu
            .rotate_bits(x, shape, table, row_offset, direction, Precision::Exact)
            .await
            .map_err(js_err),
        Backend::Cpu(_) => cpu::rotate_bits(x, shape, table, row_offset, direction).map_err(js_err),
    }
}

/// Rotates bf16 bit patterns `x` in `[B,S,H,D]` order (`shape` an array `[B,S,H,D]`) by the
/// table `cos`/`sin` (`Float32Array`s `[rows ≥ S, D/2]`, token `s` uses row `s`), backwards
/// when `inverse`. Resolves to the correctly rounded bf16 bits, computed on WebGPU when the
/// browser has an adapter and on the CPU otherwise (the same bits either way).
#[wasm_bindgen]
pub async fn rope_bf16(
    x: Uint16Array,
    shape: JsValue,
    cos: Float32Array,
    sin: Float32Array,
    inverse: bool,
) -> Result<Uint16Array, JsValue> {
    let shape = shape_of(&shape)?;
    let pairs = shape.pairs();
    let (cos, sin) = (cos.to_vec(), sin.to_vec());
    if cos.len() % pairs != 0 {
        return Err(js_err(format!(
            "cos has {} values, not a multiple of D/2 = {pairs}",
            cos.len()
        )));
    }
    let table = RopeTable::from_cos_sin(&cos, &sin, cos.len() / pairs, pairs).map_err(js_err)?;
    let dir = if inverse {
        Direction::Inverse
    } else {
        Direction::Forward
    };
    let y = rotate(&x.to_vec(), shape, &table, 0, dir).await?;
    Ok(Uint16Array::from(&y[..]))
}

fn angle_mode(mode: &str) -> Result<AngleMode, JsValue> {
    mode.parse().map_err(js_err)
}

fn build(
    base: f64,
    head_dim: usize,
    first_position: f64,
    rows: usize,
    mode: &str,
) -> Result<RopeTable, JsValue> {
    if !(first_position >= 0.0
        && first_position.fract() == 0.0
        && first_position <= crate::table::MAX_POSITION as f64)
    {
        return Err(js_err(format!(
            "first position {first_position} must be an integer in 0..=2^53"
        )));
    }
    let spec = TableSpec {
        base,
        rotary_dim: head_dim,
        first_position: first_position as u64,
        rows,
        angles: angle_mode(mode)?,
    };
    RopeTable::build(&spec).map_err(js_err)
}

/// Builds a rotation table for positions `first_position .. first_position + rows`:
/// `{cos, sin}`, each a `Float32Array` `[rows, head_dim/2]`. `mode` is `"exact"` (f64 angles,
/// one rounding) or `"torch"` (PyTorch's f32 angles).
#[wasm_bindgen]
pub fn build_table(
    base: f64,
    head_dim: usize,
    first_position: f64,
    rows: usize,
    mode: &str,
) -> Result<JsValue, JsValue> {
    let table = build(base, head_dim, first_position, rows, mode)?;
    let (cos, sin): (Vec<f32>, Vec<f32>) = table.cos_sin().iter().map(|&[c, s]| (c, s)).unzip();
    let o = Object::new();
    set(&o, "cos", Float32Array::from(&cos[..]));
    set(&o, "sin", Float32Array::from(&sin[..]));
    set(&o, "rows", rows as u32);
    set(&o, "pairs", (head_dim / 2) as u32);
    Ok(o.into())
}

// ---------------------------------------------------------------------------------------------
// An exact reference, written independently of `cpu::dot2`: the two products are exact
// integers times powers of two, added in i128 and rounded to bf16 by integer arithmetic.

/// `(negative, significand, exponent)` of a finite f32: value = ±m·2^e.
fn split(x: f32) -> (bool, u64, i32) {
    let b = x.to_bits();
    let neg = b >> 31 == 1;
    let e = ((b >> 23) & 0xFF) as i32;
    let m = (b & 0x7F_FFFF) as u64;
    if e == 0 {
        (neg, m, -149)
    } else {
        (neg, m | 1 << 23, e - 150)
    }
}

/// Correctly rounded bf16 of ±n·2^e (n < 2^127), with `sign` used for zero.
fn round_int(n: i128, e: i32, zero_negative: bool) -> u16 {
    if n == 0 {
        return if zero_negative { 0x8000 } else { 0 };
    }
    let sign: u16 = if n < 0 { 0x8000 } else { 0 };
    let mag = n.unsigned_abs();
    let top = 127 - mag.leading_zeros() as i32 + e; // exponent of the leading bit
    let quantum = (top - 7).max(-133); // bf16 spacing at this magnitude
    let shift = quantum - e;
    let (mut kept, mut q) = if shift <= 0 {
        (mag << (-shift) as u32, quantum)
    } else if shift >= 128 {
        (0, quantum)
    } else {
        let k = mag >> shift as u32;
        let rem = mag & ((1u128 << shift as u32) - 1);
        let half = 1u128 << (shift as u32 - 1);
        let up = rem > half || (rem == half && k & 1 == 1);
        (k + up as u128, quantum)
    };
    if kept == 0 {
        return sign;
    }
    if kept >= 256 {
        kept >>= 1;
        q += 1;
    }
    if kept < 128 {
        return sign | kept as u16; // subnormal (q = −133)
    }
    let field = q + 7 + 127;
    if field >= 255 {
        return sign | 0x7F80;
    }
    sign | ((field as u16) << 7) | (kept as u16 & 0x7F)
}

/// The correctly rounded bf16 of `a·b + c·d` (`a`, `c` bf16 patterns, `b`, `d` f32), IEEE
/// special values, canonical NaN.
pub(crate) fn reference_dot2(a: u16, b: f32, c: u16, d: f32) -> u16 {
    let (fa, fc) = (
        f32::from_bits((a as u32) << 16),
        f32::from_bits((c as u32) << 16),
    );
    let approx = fa as f64 * b as f64 + fc as f64 * d as f64;
    if !approx.is_finite() {
        // A non-finite input gives a non-finite f64 expression, with IEEE's inf or NaN
        // (the products are exact, so finite inputs never overflow f64).
        return if approx.is_nan() {
            BF16_QNAN
        } else if approx > 0.0 {
            0x7F80
        } else {
            0xFF80
        };
    }
    let term = |x: f32, y: f32| {
        let (nx, mx, ex) = split(x);
        let (ny, my, ey) = split(y);
        let m = (mx * my) as i128; // < 2^48
        (if nx != ny { -m } else { m }, ex + ey)
    };
    let (p, ep) = term(fa, b);
    let (q, eq) = term(fc, d);
    // Exact zero: the f64 sum of the exact products has the IEEE sign of zero.
    let zero_negative = approx.is_sign_negative();
    let ((big, eb), (small, es)) = if p == 0 || (q != 0 && eq > ep) {
        ((q, eq), (p, ep))
    } else {
        ((p, ep), (q, eq))
    };
    if small == 0 {
        return round_int(big, eb, zero_negative);
    }
    let gap = eb - es;
    const K: i32 = 76; // 48 + 76 + 2 bits < 127
    if gap <= K {
        return round_int((big << gap) + small, es, zero_negative);
    }
    // The small term lies below every bit the rounding looks at: keep it as a sticky unit.
    let big_shifted = big << K;
    let sh = (gap - K) as u32;
    let mag = small.unsigned_abs();
    let (part, rest) = if sh >= 128 {
        (0, mag)
    } else {
        (mag >> sh, mag & ((1u128 << sh) - 1))
    };
    let part = if small < 0 {
        -(part as i128)
    } else {
        part as i128
    };
    let sticky = if rest == 0 {
        0
    } else if small < 0 {
        -1
    } else {
        1
    };
    round_int(2 * (big_shifted + part) + sticky, eb - K - 1, zero_negative)
}

fn reference_rotate(
    x: &[u16],
    shape: RopeShape,
    table: &RopeTable,
    row_offset: usize,
    dir: Direction,
) -> Vec<u16> {
    let mut out = x.to_vec();
    let token = shape.heads * shape.head_dim;
    for (t, tok) in out.chunks_exact_mut(token).enumerate() {
        let row = row_offset + t % shape.seq;
        for head in tok.chunks_exact_mut(shape.head_dim) {
            for (i, p) in head.chunks_exact_mut(2).enumerate() {
                let [c, s] = table.get(row, i);
                let s = if dir == Direction::Inverse { -s } else { s };
                let (x0, x1) = (p[0], p[1]);
                p[0] = reference_dot2(x0, c, x1, -s);
                p[1] = reference_dot2(x0, s, x1, c);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Conformance: special values and random data, checked bit for bit against the reference.

const SPECIAL_BF16: [u16; 24] = [
    0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x8080, 0x3F80, 0xBF80, 0x3F81, 0x3FC0, 0x4049,
    0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0100, 0x1F80, 0x5F80, 0x3DCD, 0xC2F7,
];

fn special_f32() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        std::f32::consts::FRAC_1_SQRT_2,
        -std::f32::consts::FRAC_1_SQRT_2,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        1.0 - f32::EPSILON / 2.0,
        1.0 / 8192.0,
        0.1,
        -0.866_025_4,
        1.0 / 3.0,
    ]
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Case {
    x: Vec<u16>,
    shape: RopeShape,
    table: RopeTable,
    row_offset: usize,
    dir: Direction,
}

fn conformance_cases(full: bool) -> Result<Vec<Case>, JsValue> {
    let mut cases = Vec::new();
    // Every pair of special inputs against every (cos, sin) pair of special table values.
    let cs = special_f32();
    let combos: Vec<(f32, f32)> = cs
        .iter()
        .flat_map(|&c| cs.iter().map(move |&s| (c, s)))
        .collect();
    let n = SPECIAL_BF16.len();
    let pairs = n * n;
    let shape = RopeShape::new(1, combos.len(), 1, 2 * pairs).map_err(js_err)?;
    let mut cos = Vec::with_capacity(combos.len() * pairs);
    let mut sin = Vec::with_capacity(combos.len() * pairs);
    for &(c, s) in &combos {
        cos.extend(std::iter::repeat_n(c, pairs));
        sin.extend(std::iter::repeat_n(s, pairs));
    }
    let table = RopeTable::from_cos_sin(&cos, &sin, combos.len(), pairs).map_err(js_err)?;
    let token: Vec<u16> = (0..pairs)
        .flat_map(|k| [SPECIAL_BF16[k / n], SPECIAL_BF16[k % n]])
        .collect();
    let x: Vec<u16> = token
        .iter()
        .copied()
        .cycle()
        .take(shape.elements())
        .collect();
    let dirs: &[Direction] = if full {
        &[Direction::Forward, Direction::Inverse]
    } else {
        &[Direction::Forward]
    };
    for &dir in dirs {
        cases.push(Case {
            x: x.clone(),
            shape,
            table: table.clone(),
            row_offset: 0,
            dir,
        });
    }
    // Random bit patterns of every exponent against built tables at short and long positions.
    let mut rng = Rng(0x6266_726F_7065);
    let configs: &[(usize, usize, usize, u64, AngleMode)] = if full {
        &[
            (2, 64, 4, 0, AngleMode::Exact),
            (2, 64, 4, 1 << 20, AngleMode::Torch),
            (1, 128, 8, 123_456_789, AngleMode::Exact),
        ]
    } else {
        &[
            (1, 64, 2, 0, AngleMode::Exact),
            (1, 64, 2, 1 << 20, AngleMode::Torch),
        ]
    };
    for &(b, s, h, first, angles) in configs {
        let d = 128;
        let shape = RopeShape::new(b, s, h, d).map_err(js_err)?;
        let table = RopeTable::build(&TableSpec {
            base: 10000.0,
            rotary_dim: d,
            first_position: first,
            rows: s + 3,
            angles,
        })
        .map_err(js_err)?;
        let x: Vec<u16> = (0..shape.elements()).map(|_| rng.next() as u16).collect();
        for &dir in dirs {
            cases.push(Case {
                x: x.clone(),
                shape,
                table: table.clone(),
                row_offset: 3,
                dir,
            });
        }
    }
    Ok(cases)
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// GPU time of one exact forward pass, from timestamp queries (ms), where the adapter has them.
async fn gpu_time_ms(gpu: &Gpu, case: &Case) -> Option<f64> {
    if !gpu.adapter().timestamps {
        return None;
    }
    let device = gpu.device();
    use wgpu::util::DeviceExt;
    let storage = wgpu::BufferUsages::STORAGE;
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bfrope::web::input"),
        contents: bytemuck::cast_slice(&case.x),
        usage: storage,
    });
    let table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bfrope::web::table"),
        contents: case.table.as_bytes(),
        usage: storage,
    });
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bfrope::web::output"),
        size: case.shape.elements() as u64 * 2,
        usage: storage,
        mapped_at_creation: false,
    });
    let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("bfrope::web::timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let resolve = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bfrope::web::resolve"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("bfrope::web::timed"),
    });
    gpu.kernels()
        .record_timed(
            &mut encoder,
            &crate::RopeArgs {
                input: &input,
                output: &output,
                table: &table,
                table_rows: case.table.rows(),
                row_offset: case.row_offset,
                shape: case.shape,
                direction: case.dir,
                precision: Precision::Exact,
            },
            wgpu::ComputePassTimestampWrites {
                query_set: &queries,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            },
        )
        .ok()?;
    encoder.resolve_query_set(&queries, 0..2, &resolve, 0);
    let words = gpu.read_back(encoder, &resolve, 16).await.ok()?;
    let t0 = words[0] as u64 | (words[1] as u64) << 32;
    let t1 = words[2] as u64 | (words[3] as u64) << 32;
    let ns = t1.checked_sub(t0)? as f64 * gpu.queue().get_timestamp_period() as f64;
    Some(ns / 1e6)
}

/// Runs the conformance suite on this page's backend: special values (every pair of 24 bf16
/// specials against 196 special `(cos, sin)` pairs) and random bit patterns at short and long
/// positions, each output compared bit for bit with an exact integer reference. `full` adds
/// the inverse direction and more random data. Resolves to `{checked, mismatches, backend,
/// adapter, ms, gpuMs, cpuMismatches, firstMismatch}`; `gpuMs` is the timestamp-query time of
/// one pass where the adapter has timestamps (`null` otherwise).
#[wasm_bindgen]
pub async fn run_conformance(full: bool) -> Result<JsValue, JsValue> {
    let b = backend().await;
    let cases = conformance_cases(full)?;
    let t0 = now_ms();
    let mut checked = 0u64;
    let mut mismatches = 0u64;
    let mut cpu_mismatches = 0u64;
    let mut first: Option<String> = None;
    let mut compute_ms = 0.0;
    for case in &cases {
        let want = reference_rotate(&case.x, case.shape, &case.table, case.row_offset, case.dir);
        let c0 = now_ms();
        let got = rotate(&case.x, case.shape, &case.table, case.row_offset, case.dir).await?;
        compute_ms += now_ms() - c0;
        let on_cpu = cpu::rotate_bits(&case.x, case.shape, &case.table, case.row_offset, case.dir)
            .map_err(js_err)?;
        for (k, (&g, &w)) in got.iter().zip(&want).enumerate() {
            checked += 1;
            if g != w {
                mismatches += 1;
                if first.is_none() {
                    let pair = k & !1;
                    let row = case.row_offset
                        + (k / (case.shape.heads * case.shape.head_dim)) % case.shape.seq;
                    let [c, s] = case.table.get(row, (k % case.shape.head_dim) / 2);
                    first = Some(format!(
                        "x = ({:#06x}, {:#06x}), cos = {c:e}, sin = {s:e}, {:?}: got {g:#06x}, want {w:#06x}",
                        case.x[pair],
                        case.x[pair + 1],
                        case.dir
                    ));
                }
            }
        }
        cpu_mismatches += on_cpu.iter().zip(&want).filter(|(a, b)| a != b).count() as u64;
    }
    let gpu_ms = match &b {
        Backend::WebGpu(gpu) => gpu_time_ms(gpu, &cases[0]).await,
        Backend::Cpu(_) => None,
    };
    let o = info_object(&b);
    set(&o, "checked", checked as f64);
    set(&o, "mismatches", mismatches as f64);
    set(&o, "cpuMismatches", cpu_mismatches as f64);
    set(&o, "cases", cases.len() as u32);
    set(&o, "ms", now_ms() - t0);
    set(&o, "computeMs", compute_ms);
    set(
        &o,
        "gpuMs",
        gpu_ms.map(JsValue::from_f64).unwrap_or(JsValue::NULL),
    );
    set(
        &o,
        "firstMismatch",
        first.map(JsValue::from).unwrap_or(JsValue::NULL),
    );
    Ok(o.into())
}

// ---------------------------------------------------------------------------------------------
// Precision maps: bf16 RoPE three ways against the exact value, in ulps.

fn widen(h: u16) -> f64 {
    f32::from_bits((h as u32) << 16) as f64
}

/// bf16 ulp at the magnitude of `v` (subnormal spacing below 2^−126).
fn ulp_at(v: f64) -> f64 {
    let a = v.abs();
    if a < f64::from(f32::MIN_POSITIVE) {
        return 2f64.powi(-133);
    }
    2f64.powi(a.log2().floor() as i32 - 7)
}

fn ulps(got: u16, exact: f64) -> f32 {
    let g = widen(got);
    if !g.is_finite() || !exact.is_finite() {
        return if g == exact { 0.0 } else { f32::INFINITY };
    }
    ((g - exact).abs() / ulp_at(exact)) as f32
}

/// Plain f32 math, then one rounding to bf16 (what most frameworks' kernels do).
fn plain_f32(a: u16, b: f32, c: u16, d: f32) -> u16 {
    let y = f32::from_bits((a as u32) << 16) * b + f32::from_bits((c as u32) << 16) * d;
    bf16::from_f32(y).to_bits()
}

/// Every step rounded to bf16: the table, each product, the sum (candle's CPU path).
fn bf16_steps(a: u16, b: f32, c: u16, d: f32) -> u16 {
    let (b, d) = (bf16::from_f32(b).to_bits(), bf16::from_f32(d).to_bits());
    let t1 = reference_dot2(a, f32::from_bits((b as u32) << 16), 0, 0.0);
    let t2 = reference_dot2(c, f32::from_bits((d as u32) << 16), 0, 0.0);
    reference_dot2(t1, 1.0, t2, 1.0)
}

/// Error maps of bf16 RoPE computed three ways, for positions `first_position ..+ rows`:
/// `heads` random vectors per position (bf16 values of a unit normal-ish distribution) are
/// rotated by bfrope's kernel (on this page's backend), by plain f32 math with one rounding,
/// and with every step rounded to bf16. Resolves to `{rows, pairs, kernel, f32, bf16, max}`:
/// three `Float32Array`s `[rows, head_dim/2]` holding, for each position and frequency, the
/// largest error over heads and both outputs in bf16 ulps of the exact value (real arithmetic
/// on the same f32 table), and `max` the largest of each.
#[wasm_bindgen]
pub async fn precision_maps(
    base: f64,
    head_dim: usize,
    first_position: f64,
    rows: usize,
    mode: &str,
    heads: usize,
    seed: u32,
) -> Result<JsValue, JsValue> {
    let table = build(base, head_dim, first_position, rows, mode)?;
    let shape = RopeShape::new(1, rows, heads.max(1), head_dim).map_err(js_err)?;
    let mut rng = Rng(seed as u64 ^ 0x5EED);
    let x: Vec<u16> = (0..shape.elements())
        .map(|_| {
            let (u, v) = (rng.unit().max(1e-12), rng.unit());
            let g = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            bf16::from_f32(g as f32).to_bits()
        })
        .collect();
    let kernel = rotate(&x, shape, &table, 0, Direction::Forward).await?;
    let pairs = shape.pairs();
    let mut maps = [
        vec![0f32; rows * pairs],
        vec![0f32; rows * pairs],
        vec![0f32; rows * pairs],
    ];
    for (t, tok) in x.chunks_exact(shape.heads * head_dim).enumerate() {
        for (h, head) in tok.chunks_exact(head_dim).enumerate() {
            for i in 0..pairs {
                let [c, s] = table.get(t, i);
                let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                let exact = [
                    widen(x0) * c as f64 - widen(x1) * s as f64,
                    widen(x0) * s as f64 + widen(x1) * c as f64,
                ];
                let k = (t * shape.heads + h) * head_dim + 2 * i;
                let outs = [
                    [kernel[k], kernel[k + 1]],
                    [plain_f32(x0, c, x1, -s), plain_f32(x0, s, x1, c)],
                    [bf16_steps(x0, c, x1, -s), bf16_steps(x0, s, x1, c)],
                ];
                for (m, out) in maps.iter_mut().zip(outs) {
                    let e = ulps(out[0], exact[0]).max(ulps(out[1], exact[1]));
                    let cell = &mut m[t * pairs + i];
                    *cell = cell.max(e);
                }
            }
        }
    }
    let o = Object::new();
    set(&o, "rows", rows as u32);
    set(&o, "pairs", pairs as u32);
    let max = Object::new();
    for (name, m) in ["kernel", "f32", "bf16"].iter().zip(&maps) {
        set(&o, name, Float32Array::from(&m[..]));
        set(&max, name, m.iter().copied().fold(0f32, f32::max));
    }
    set(&o, "max", max);
    Ok(o.into())
}
