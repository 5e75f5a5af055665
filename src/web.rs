//! The browser entry: wasm-bindgen exports over [`Gpu`](crate::Gpu) and [`cpu`](crate::cpu).
//!
//! Thin on purpose (STYLE.md item 14): every export checks its arguments, runs the library on
//! the browser's WebGPU adapter when there is one (the CPU path compiled to wasm otherwise) and
//! returns `Result<_, JsValue>`. The page in `web/` and other pages import the same functions:
//!
//! - `rope(x, options)` — the library's whole call description (`RopeCall`: view, pairing,
//!   rotary_dim, positions, cu_seqlens, table, direction, precision) from a plain object,
//!   typed as `RopeOptions` in the generated `bfrope.d.ts`;
//! - `rope_bf16(x, shape, cos, sin, inverse)` — rotate contiguous `[B,S,H,D]` bf16 bit
//!   patterns (`Uint16Array`) interleaved, from position 0;
//! - `build_table(base, head_dim, first_position, rows, mode)` — `{cos, sin}` tables;
//! - `backend_info()` — which backend runs, and on what adapter;
//! - `run_conformance(full)` — the library's conformance suite ([`conformance::suite`], the
//!   one `bfrope conform` runs) on this page's backend;
//! - `precision_maps(...)` — ulp errors of bf16 RoPE computed three ways (exact kernel, `hf`,
//!   plain f32), for the page;
//! - `ropeFromConfig(json)`, `frequenciesFor(recipe, maxPosition)`, `tableFor(recipe,
//!   positions)` — a model's table recipe from its `config.json` (scaling variant, rotary dim,
//!   pairing, axes, attention factor), its inverse frequencies, and its rows; `rope` takes a
//!   recipe as `options.table`.

use std::cell::RefCell;

use js_sys::{Array, Float32Array, Object, Reflect, Uint16Array};
use wasm_bindgen::prelude::*;

use crate::conformance::{self, Case, Suite};
use crate::cpu;
use crate::{
    AngleMode, Direction, Gpu, Layout, Pairing, Positions, Precision, RopeCall, RopeShape,
    RopeTable, Rotation, TableSpec, TensorView,
};

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

/// Runs `call` on this page's backend: the library's calls on one Gpu take turns (their
/// error scopes nest); the CPU path returns the same bits.
async fn run<E: crate::Bits>(call: &RopeCall<'_>, x: &[E]) -> Result<Vec<E>, JsValue> {
    match backend().await {
        Backend::WebGpu(gpu) => gpu.apply(call, x).await,
        Backend::Cpu(_) => cpu::apply(call, x),
    }
    .map_err(js_err)
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
    let positions = Positions::Offset(0);
    let call = RopeCall::new(shape.into(), &positions, &table).with_direction(dir);
    let y = run(&call, &x.to_vec()).await?;
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
// `rope(x, options)`: the library's call description (`RopeCall`) from a plain JS object.

#[wasm_bindgen(typescript_custom_section)]
const ROPE_OPTIONS_TS: &'static str = r#"
/** A table supplied by the caller: `cos` and `sin` of `rows × width` f32 values, row-major,
 * row `r` used by position `r`. `width` is `rotaryDim / 2`, or `rotaryDim` with the two
 * halves repeated as Hugging Face's `cos`/`sin` give them (the halves must be equal). */
export interface RopeTableValues {
  cos: Float32Array;
  sin: Float32Array;
  width: number;
  /** Defaults to `cos.length / width`. */
  rows?: number;
}

/** A table built for the positions the call uses: θᵢ = base^(−2i/rotaryDim), angles in f64
 * (`"exact"`, the default) or as PyTorch computes them in f32 (`"torch"`). */
export interface RopeTableBuild {
  base: number;
  angles?: "exact" | "torch";
}

/** What `rope` rotates and how: the library's `RopeCall`. */
export interface RopeOptions {
  /** The logical shape `[batch, seq, heads, headDim]`, whatever the memory order. */
  dims: [number, number, number, number];
  /** Memory order of a contiguous tensor: `"bshd"` (default) or `"bhsd"` (Hugging Face's).
   * Not with `strides`. */
  layout?: "bshd" | "bhsd";
  /** Element strides of batch, seq and head (headDim is contiguous). Not with `layout`. */
  strides?: [number, number, number];
  /** Element offset of `[0, 0, 0, 0]` in `x` (default 0). */
  offset?: number;
  /** Pairs `(x[2i], x[2i+1])` (`"interleaved"`, default) or `(x[i], x[i + rotaryDim/2])`
   * (`"half"`, GPT-NeoX / Hugging Face `rotate_half`). */
  rotation?: "interleaved" | "half";
  /** Dims rotated at the start of each head (even, default headDim); the rest are copied. */
  rotaryDim?: number;
  /** Rotate by −angle (the backward pass). */
  inverse?: boolean;
  /** `"exact"` (default: correctly rounded), `"fast"` (plain f32, WebGPU only; the CPU
   * fallback is always exact) or `"hf"` (Hugging Face transformers' eager bf16 arithmetic,
   * bit for bit: cos, sin, each product and the sum rounded to bf16; WebGPU and CPU alike). */
  precision?: "exact" | "fast" | "hf";
  /** The elements' dtype, output in the same dtype: a `Uint16Array` holds `"bf16"` (default)
   * or `"f16"` bit patterns; a `Float32Array` holds f32 values (`"f32"`, the default for it).
   * The same contract for each: correctly rounded in that dtype (`"hf"`: transformers'
   * arithmetic on a tensor of that dtype). */
  dtype?: "bf16" | "f16" | "f32";
  /** A number: token `s` of every batch row is at `positions + s` (default 0; with
   * `cuSeqlens`, the position of each sequence's first token). An array: one start per batch
   * row (`positionsPer: "batch"`, token `s` of row `b` at `positions[b] + s`) or one id per
   * token (`positionsPer: "token"`, `batch × seq` ids in `[b][s]` order). */
  positions?: number | ArrayLike<number>;
  /** What an array of `positions` holds; required with an array, refused with a number. */
  positionsPer?: "batch" | "token";
  /** Packed sequences (flash-attn's varlen): `dims` is `[1, tokens, heads, headDim]` and
   * sequence `i` holds tokens `cuSeqlens[i] .. cuSeqlens[i + 1]`, each starting at position
   * `positions` (a number). */
  cuSeqlens?: ArrayLike<number>;
  /** The `(cos, sin)` table: supplied values, a base to build one from, or a model's recipe
   * (`ropeFromConfig(json).recipe`: scaling variant and attention factor; one axis). */
  table: RopeTableValues | RopeTableBuild | RopeRecipe;
}
"#;

const OPTION_KEYS: [&str; 13] = [
    "dims",
    "layout",
    "strides",
    "offset",
    "rotation",
    "rotaryDim",
    "inverse",
    "precision",
    "positions",
    "positionsPer",
    "cuSeqlens",
    "table",
    "dtype",
];
const TABLE_KEYS: [&str; 9] = [
    "cos",
    "sin",
    "rows",
    "width",
    "base",
    "angles",
    "variant",
    "rotaryDim",
    "axes",
];
/// Keys of `options.table` that make it a recipe to build from (`RopeRecipe`).
const RECIPE_TABLE_KEYS: [&str; 5] = ["base", "angles", "variant", "rotaryDim", "axes"];

/// A JS value as a short text for error messages: strings quoted, the rest as JSON.
fn show(v: &JsValue) -> String {
    if let Some(s) = v.as_string() {
        return format!("{s:?}");
    }
    if v.is_undefined() {
        return "undefined".into();
    }
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| format!("{v:?}"))
}

/// A plain JS object whose keys are checked against `known` (a misspelt option is refused,
/// not ignored), read by name.
struct Fields<'a> {
    obj: &'a JsValue,
    path: &'static str,
}

impl<'a> Fields<'a> {
    fn new(obj: &'a JsValue, path: &'static str, known: &[&str]) -> Result<Self, JsValue> {
        if !obj.is_object() || Array::is_array(obj) {
            return Err(js_err(format!(
                "{path} must be an object, not {}",
                show(obj)
            )));
        }
        for key in Object::keys(obj.unchecked_ref::<Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                return Err(js_err(format!(
                    "{path} has an unknown key {key:?}; expected one of {}",
                    known.join(", ")
                )));
            }
        }
        Ok(Self { obj, path })
    }

    /// The value of `key`, `None` when missing, undefined or null.
    fn get(&self, key: &str) -> Option<JsValue> {
        Reflect::get(self.obj, &JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    }

    fn name(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn uint(&self, key: &str) -> Result<Option<usize>, JsValue> {
        self.get(key).map(|v| uint(&v, &self.name(key))).transpose()
    }

    fn uints(&self, key: &str) -> Result<Option<Vec<usize>>, JsValue> {
        self.get(key)
            .map(|v| uints(&v, &self.name(key)))
            .transpose()
    }

    fn string(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.get(key)
            .map(|v| {
                v.as_string().ok_or_else(|| {
                    js_err(format!("{} {} is not a string", self.name(key), show(&v)))
                })
            })
            .transpose()
    }

    fn number(&self, key: &str) -> Result<Option<f64>, JsValue> {
        self.get(key)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    js_err(format!("{} {} is not a number", self.name(key), show(&v)))
                })
            })
            .transpose()
    }

    fn f32s(&self, key: &str) -> Result<Option<Vec<f32>>, JsValue> {
        self.get(key)
            .map(|v| {
                v.dyn_ref::<Float32Array>()
                    .map(Float32Array::to_vec)
                    .ok_or_else(|| {
                        js_err(format!(
                            "{} must be a Float32Array, not {}",
                            self.name(key),
                            show(&v)
                        ))
                    })
            })
            .transpose()
    }
}

/// A non-negative integer that fits the wasm32 address space.
fn uint(v: &JsValue, name: &str) -> Result<usize, JsValue> {
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= usize::MAX as f64)
        .map(|f| f as usize)
        .ok_or_else(|| js_err(format!("{name} {} is not a non-negative integer", show(v))))
}

/// An array or typed array of non-negative integers.
fn uints(v: &JsValue, name: &str) -> Result<Vec<usize>, JsValue> {
    if !Array::is_array(v) && !js_sys::ArrayBuffer::is_view(v) {
        return Err(js_err(format!(
            "{name} must be an array of integers, not {}",
            show(v)
        )));
    }
    Array::from(v)
        .iter()
        .enumerate()
        .map(|(i, e)| uint(&e, &format!("{name}[{i}]")))
        .collect()
}

/// Where the table comes from.
enum TableSource {
    /// Supplied `cos`, `sin` of `rows × width`.
    Values {
        cos: Vec<f32>,
        sin: Vec<f32>,
        rows: Option<usize>,
        width: usize,
    },
    /// Built from a recipe (base, variant, angle mode) for the positions used.
    Build(crate::TableRecipe),
}

/// Everything of a call but the table, parsed from the options object.
struct Request {
    view: TensorView,
    rotation: Rotation,
    positions: Positions,
    table: TableSource,
    /// `options.dtype`, when given (the array's type decides otherwise).
    dtype: Option<crate::Dtype>,
}

impl Request {
    fn parse(options: &JsValue) -> Result<Self, JsValue> {
        let o = Fields::new(options, "options", &OPTION_KEYS)?;
        let dims = o
            .uints("dims")?
            .ok_or_else(|| js_err("options.dims [batch, seq, heads, headDim] is missing"))?;
        let dims: [usize; 4] = dims.as_slice().try_into().map_err(|_| {
            js_err(format!(
                "options.dims {dims:?} must have 4 entries [batch, seq, heads, headDim]"
            ))
        })?;
        let [batch, seq, heads, head_dim] = dims;
        let layout = match o.string("layout")?.as_deref() {
            None | Some("bshd") => Layout::Bshd,
            Some("bhsd") => Layout::Bhsd,
            Some(other) => {
                return Err(js_err(format!(
                    "options.layout {other:?} is not a layout; expected bshd or bhsd"
                )))
            }
        };
        let mut view = match o.uints("strides")? {
            None => match layout {
                Layout::Bshd => TensorView::bshd(batch, seq, heads, head_dim),
                Layout::Bhsd => TensorView::bhsd(batch, heads, seq, head_dim),
            },
            Some(_) if o.get("layout").is_some() => {
                return Err(js_err(
                    "options.layout and options.strides are both given; give one of them",
                ))
            }
            Some(strides) => TensorView {
                dims,
                strides: strides.as_slice().try_into().map_err(|_| {
                    js_err(format!(
                        "options.strides {strides:?} must have 3 entries [batch, seq, head]"
                    ))
                })?,
                offset: 0,
            },
        };
        view.offset = o.uint("offset")?.unwrap_or(0);

        let mut rotation = Rotation::new(o.uint("rotaryDim")?.unwrap_or(head_dim));
        if let Some(r) = o.string("rotation")? {
            rotation.pairing = r.parse::<Pairing>().map_err(js_err)?;
        }
        if let Some(inv) = o.get("inverse") {
            let inv = inv.as_bool().ok_or_else(|| {
                js_err(format!("options.inverse {} is not a boolean", show(&inv)))
            })?;
            rotation.direction = if inv {
                Direction::Inverse
            } else {
                Direction::Forward
            };
        }
        rotation.precision = match o.string("precision")?.as_deref() {
            None => Precision::Exact,
            Some(p) => p.parse::<Precision>().map_err(|_| {
                js_err(format!(
                    "options.precision {p:?} is not a precision; expected exact, fast or hf"
                ))
            })?,
        };

        let dtype = match o.string("dtype")?.as_deref() {
            None => None,
            Some(d @ ("bf16" | "f16" | "f32")) => Some(d.parse::<crate::Dtype>().map_err(js_err)?),
            Some(other) => {
                return Err(js_err(format!(
                    "options.dtype {other:?} is not a dtype; expected bf16, f16 or f32"
                )))
            }
        };

        let per = o.string("positionsPer")?;
        let positions = match (o.uints("cuSeqlens")?, o.get("positions")) {
            (Some(_), _) if per.is_some() => {
                return Err(js_err(
                    "options.positionsPer does not apply with options.cuSeqlens (whose sequences each start at options.positions)",
                ))
            }
            (Some(cu), _) => {
                if batch != 1 {
                    return Err(js_err(format!(
                        "options.dims {dims:?} must be [1, tokens, heads, headDim] with options.cuSeqlens"
                    )));
                }
                let start = o.uint("positions")?.unwrap_or(0);
                Positions::from_cu_seqlens(&cu, seq, start).map_err(js_err)?
            }
            (None, None) if per.is_some() => {
                return Err(js_err(
                    "options.positionsPer is given without an array of options.positions",
                ))
            }
            (None, None) => Positions::Offset(0),
            (None, Some(p)) if p.as_f64().is_some() => {
                if let Some(per) = per {
                    return Err(js_err(format!(
                        "options.positionsPer {per:?} needs an array of options.positions, not the number {}",
                        show(&p)
                    )));
                }
                Positions::Offset(uint(&p, "options.positions")?)
            }
            (None, Some(p)) => {
                let ids = uints(&p, "options.positions")?;
                match per.as_deref() {
                    Some("batch") => Positions::PerBatch(ids),
                    Some("token") => Positions::PerToken(ids),
                    Some(other) => {
                        return Err(js_err(format!(
                            "options.positionsPer {other:?} is not batch or token"
                        )))
                    }
                    None => {
                        return Err(js_err(
                            "options.positions is an array but options.positionsPer (batch or token) is missing",
                        ))
                    }
                }
            }
        };

        let t = o
            .get("table")
            .ok_or_else(|| js_err("options.table ({cos, sin, width} or {base}) is missing"))?;
        let t = Fields::new(&t, "options.table", &TABLE_KEYS)?;
        let recipe_key = RECIPE_TABLE_KEYS.into_iter().find(|k| t.get(k).is_some());
        let table = match (t.get("cos").is_some() || t.get("sin").is_some(), recipe_key) {
            (true, Some("base")) => {
                return Err(js_err(
                    "options.table has both cos/sin and base; give the values or a base to build them from",
                ))
            }
            (false, None) => {
                return Err(js_err(
                    "options.table needs cos, sin and width, or a base to build it from",
                ))
            }
            (true, Some(k)) => {
                return Err(js_err(format!(
                    "options.table.{k} applies only to a table built from a base (a recipe), not to supplied cos/sin"
                )));
            }
            (true, None) => {
                TableSource::Values {
                    cos: t.f32s("cos")?.ok_or_else(|| js_err("options.table.cos is missing"))?,
                    sin: t.f32s("sin")?.ok_or_else(|| js_err("options.table.sin is missing"))?,
                    rows: t.uint("rows")?,
                    width: t
                        .uint("width")?
                        .ok_or_else(|| js_err("options.table.width is missing"))?,
                }
            }
            (false, Some(_)) => {
                if let Some(k) = ["rows", "width"].into_iter().find(|k| t.get(k).is_some()) {
                    return Err(js_err(format!(
                        "options.table.{k} applies only to supplied cos/sin values"
                    )));
                }
                TableSource::Build(recipe_from_fields(
                    &t,
                    "options.table.variant",
                    Some(rotation.rotary_dim),
                )?)
            }
        };
        Ok(Self {
            view,
            rotation,
            positions,
            table,
            dtype,
        })
    }

    /// The table, and the positions as rows of it: supplied values as they are; a built table
    /// holds one row per distinct position used (consecutive runs built together), so a call
    /// at position 10⁶ builds no million rows.
    fn table(&self, buffer_len: usize) -> Result<(RopeTable, Positions), JsValue> {
        let r = self.rotation.rotary_dim;
        match &self.table {
            TableSource::Values {
                cos,
                sin,
                rows,
                width,
            } => {
                if *width == 0 || cos.len() % width != 0 {
                    return Err(js_err(format!(
                        "options.table.cos has {} values, not a multiple of options.table.width {width}",
                        cos.len()
                    )));
                }
                let rows = rows.unwrap_or(cos.len() / width);
                let table = if *width == r {
                    RopeTable::from_repeated_halves(cos, sin, rows, *width)
                } else {
                    RopeTable::from_cos_sin(cos, sin, rows, *width)
                }
                .map_err(js_err)?;
                Ok((table, self.positions.clone()))
            }
            TableSource::Build(recipe) => {
                // The call's own checks first (shape, buffer, positions), for any table length.
                crate::spec::check(
                    &self.view,
                    &self.rotation,
                    &self.positions,
                    usize::MAX,
                    self.rotation.pairs(),
                    buffer_len,
                )
                .map_err(js_err)?;
                let (table, positions) = self
                    .positions
                    .built_table(recipe, self.view.batch(), self.view.seq())
                    .map_err(js_err)?;
                Ok((table, positions))
            }
        }
    }
}

/// Rotates the elements `x` (the whole buffer) as `options` describes: the view
/// (`dims`, `layout` or `strides`, `offset`), the pairing and `rotaryDim`, the positions
/// (an offset, one per batch row, one per token, or packed sequences from `cuSeqlens`), the
/// table (supplied `cos`/`sin`, or built from a base for the positions used), `inverse`,
/// `precision` and `dtype`; see the `RopeOptions` type. `x` is a `Uint16Array` of bf16
/// (default) or f16 bit patterns (`dtype: "f16"`), or a `Float32Array` (f32). Resolves to a
/// copy of `x` of the same type with the view rotated (every other element unchanged),
/// computed on WebGPU when the browser has an adapter and on the CPU path otherwise (the
/// same bits); rejects with one sentence naming the value.
#[wasm_bindgen(unchecked_return_type = "Uint16Array | Float32Array")]
pub async fn rope(
    #[wasm_bindgen(unchecked_param_type = "Uint16Array | Float32Array")] x: JsValue,
    #[wasm_bindgen(unchecked_param_type = "RopeOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let request = Request::parse(&options)?;
    let mut rotation = request.rotation;
    if let Some(a) = x.dyn_ref::<Float32Array>() {
        match request.dtype {
            None | Some(crate::Dtype::F32) => {}
            Some(other) => {
                return Err(js_err(format!(
                    "options.dtype {:?} does not match x, a Float32Array (f32 values); pass a Uint16Array of {other} bit patterns",
                    other.name()
                )))
            }
        }
        rotation.dtype = crate::Dtype::F32;
        let x: Vec<u32> = a.to_vec().into_iter().map(f32::to_bits).collect();
        let (table, positions) = request.table(x.len())?;
        let call = RopeCall {
            view: request.view,
            rotation,
            positions: &positions,
            table: &table,
        };
        let y: Vec<f32> = run(&call, &x)
            .await?
            .into_iter()
            .map(f32::from_bits)
            .collect();
        return Ok(Float32Array::from(&y[..]).into());
    }
    let Some(a) = x.dyn_ref::<Uint16Array>() else {
        return Err(js_err(format!(
            "x {} is not a Uint16Array (bf16 or f16 bit patterns) or a Float32Array",
            show(&x)
        )));
    };
    rotation.dtype = match request.dtype {
        None => crate::Dtype::Bf16,
        Some(crate::Dtype::F32) => {
            return Err(js_err(
                "options.dtype \"f32\" does not match x, a Uint16Array (16-bit patterns); pass a Float32Array",
            ))
        }
        Some(d) => d,
    };
    let x = a.to_vec();
    let (table, positions) = request.table(x.len())?;
    let call = RopeCall {
        view: request.view,
        rotation,
        positions: &positions,
        table: &table,
    };
    let y = run(&call, &x).await?;
    Ok(Uint16Array::from(&y[..]).into())
}

// ---------------------------------------------------------------------------------------------
// Conformance: the library's suite (`bfrope conform`'s) on this page's backend.

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
    let (shape, row_offset) = case
        .call(Direction::Forward, Precision::Exact)
        .contiguous()?;
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
        size: shape.elements() as u64 * 2,
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
    let timestamps = wgpu::ComputePassTimestampWrites {
        query_set: &queries,
        beginning_of_pass_write_index: Some(0),
        end_of_pass_write_index: Some(1),
    };
    gpu.kernels()
        .record(
            crate::gpu::RecordTarget::Timed(&mut encoder, timestamps),
            &crate::RopeArgs {
                input: &input,
                output: &output,
                table: &table,
                table_rows: case.table.rows(),
                row_offset,
                shape,
                direction: Direction::Forward,
                precision: Precision::Exact,
                dtype: crate::Dtype::Bf16,
                pairing: crate::Pairing::Interleaved,
                table_in_range: case.table.in_fast_range(),
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

/// Runs the library's conformance suite (the one `bfrope conform` runs) on this page's
/// backend, each case forward and inverse. On WebGPU every output is compared bit for bit with
/// the CPU path; on every backend the CPU path's output is compared with the fingerprint the
/// native build recorded ([`conformance::FINGERPRINTS`]), so the CPU fallback is checked too.
/// `full` runs the full suite (with the 65,536-pattern sweep) instead of the quick one.
/// Resolves to `{checked, mismatches, fingerprints, fingerprintMismatches, cases, backend,
/// adapter, ms, computeMs, gpuMs, firstMismatch}`: `mismatches` counts pairs that differ from
/// the CPU path, `gpuMs` is the timestamp-query time of one pass of the first case where the
/// adapter has timestamps (`null` otherwise).
#[wasm_bindgen]
pub async fn run_conformance(full: bool) -> Result<JsValue, JsValue> {
    let b = backend().await;
    let size = if full { Suite::Full } else { Suite::Quick };
    let cases = conformance::suite(size, conformance::SUITE_SEED);
    let t0 = now_ms();
    let mut checked = 0u64;
    let mut mismatches = 0u64;
    let mut fingerprints = 0u64;
    let mut fingerprint_mismatches = 0u64;
    let mut first: Option<String> = None;
    let mut compute_ms = 0.0;
    for case in &cases {
        for dir in [Direction::Forward, Direction::Inverse] {
            let c0 = now_ms();
            let got = run(&case.call(dir, Precision::Exact), &case.x).await?;
            compute_ms += now_ms() - c0;
            checked += got.len() as u64;
            let on_cpu = match &b {
                Backend::WebGpu(_) => {
                    let want = case.expected(dir).map_err(js_err)?;
                    let (n, m) = case.compare(dir, &want, &got, 1);
                    mismatches += n as u64;
                    if let (None, Some(m)) = (&first, m.first()) {
                        first = Some(format!("{}: {m}", case.name));
                    }
                    want
                }
                Backend::Cpu(_) => got,
            };
            let recorded = case.fingerprint(dir);
            let hash = conformance::fnv1a(&on_cpu);
            fingerprints += 1;
            if recorded != Some(hash) {
                fingerprint_mismatches += 1;
                first.get_or_insert_with(|| {
                    format!(
                        "{}, {dir:?}: the CPU path's bits hash to {hash:#018x}, not the native {}",
                        case.name,
                        recorded.map_or("(none recorded)".into(), |h| format!("{h:#018x}"))
                    )
                });
            }
        }
    }
    let gpu_ms = match &b {
        Backend::WebGpu(gpu) => gpu_time_ms(gpu, &cases[0]).await,
        Backend::Cpu(_) => None,
    };
    let o = info_object(&b);
    set(&o, "checked", checked as f64);
    set(&o, "mismatches", mismatches as f64);
    set(&o, "fingerprints", fingerprints as f64);
    set(&o, "fingerprintMismatches", fingerprint_mismatches as f64);
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

/// Error maps of bf16 RoPE computed three ways, for positions `first_position ..+ rows`:
/// `heads` random vectors per position (bf16 values of a unit normal-ish distribution) are
/// rotated by bfrope's exact kernel and by its `hf` arithmetic (Hugging Face transformers'
/// eager bf16: cos, sin, each product and the sum rounded to bf16, as candle's CPU path does
/// too), both on this page's backend (WebGPU, else the CPU path), and by plain f32 math with
/// one rounding. Resolves to `{rows, pairs, kernel, hf, f32, max, differ, outputs}`: three
/// `Float32Array`s `[rows, head_dim/2]` holding, for each position and frequency, the largest
/// error over heads and both outputs in bf16 ulps of the exact value (real arithmetic on the
/// same f32 table); `max` the largest of each; `differ` how many of the `outputs` differ in
/// their bits from the correctly rounded result (the CPU path's exact arithmetic, independent
/// of the backend that ran the kernel).
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
    let x = conformance::normal_bf16(seed as u64 ^ 0x5EED, shape.elements());
    let positions = Positions::Offset(0);
    let call = RopeCall::new(shape.into(), &positions, &table);
    let kernel = run(&call, &x).await?;
    let hf = run(&call.with_precision(Precision::Hf), &x).await?;
    let exact = cpu::apply(&call, &x).map_err(js_err)?;
    let m = conformance::error_maps(&table, shape, &x, &kernel, &hf, &exact);
    let o = Object::new();
    set(&o, "rows", m.rows as u32);
    set(&o, "pairs", m.pairs as u32);
    set(&o, "outputs", m.outputs as u32);
    let max = Object::new();
    let diff = Object::new();
    for (j, name) in conformance::ERROR_MAP_NAMES.iter().enumerate() {
        set(&o, name, Float32Array::from(&m.maps[j][..]));
        set(&max, name, m.max[j]);
        set(&diff, name, m.differ[j]);
    }
    set(&o, "max", max);
    set(&o, "differ", diff);
    Ok(o.into())
}

// ---------------------------------------------------------------------------------------------
// Table recipes: a model's config.json, the scaling variants, tables and frequencies.

#[wasm_bindgen(typescript_custom_section)]
const RECIPE_TS: &'static str = r#"
/** How the inverse frequencies are scaled: transformers' rope types (docs/CONTRACT.md §3), or the
 * caller's own vector. Keys are transformers' `rope_parameters` in camelCase. */
export type RopeVariant =
  | { type: "default" }
  | { type: "linear"; factor: number }
  | { type: "dynamic"; factor: number; maxPositionEmbeddings: number }
  | { type: "yarn"; factor: number; originalMaxPositionEmbeddings: number; betaFast?: number;
      betaSlow?: number; mscale?: number; mscaleAllDim?: number; attentionFactor?: number;
      truncate?: boolean }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number;
      originalMaxPositionEmbeddings: number }
  | { type: "longrope"; shortFactor: ArrayLike<number>; longFactor: ArrayLike<number>;
      originalMaxPositionEmbeddings: number; factor: number; attentionFactor?: number }
  | { type: "dynamic-alpha"; alpha: number; factor: number; maxPositionEmbeddings: number }
  | { type: "proportional"; rotated: number; factor?: number }
  | { type: "custom"; invFreq: ArrayLike<number> };

/** Everything a model configures about its table (the library's `TableRecipe`). Also
 * accepted as `rope`'s `options.table` (one axis only; `rotaryDim` must match the call's). */
export interface RopeRecipe {
  /** `rope_theta` (default 10000). */
  base?: number;
  /** Rotated dimension R (even); the table has R/2 frequencies. */
  rotaryDim: number;
  /** Default `"default"`. */
  variant?: RopeVariant | "default";
  /** `"exact"` (f64 angles, default) or `"torch"` (PyTorch's f32 arithmetic). */
  angles?: "exact" | "torch";
  /** `"single"` (default), `"axial:8,12,12"`, `"mrope:16,24,24"`, `"mrope-interleaved:24,20,20"`. */
  axes?: string;
}

/** What a `config.json` says about the rotary embedding (`ropeFromConfig`). */
export interface RopeConfig {
  recipe: RopeRecipe & { base: number; variant: RopeVariant; angles: "exact" | "torch"; axes: string };
  headDim: number;
  /** `"half"` (Hugging Face's `rotate_half`) or `"interleaved"` (the model type's or `rope_interleave`). */
  pairing: "interleaved" | "half";
  /** `max_position_embeddings`, where given. */
  maxPositionEmbeddings: number | null;
  /** The multiplier of cos and sin (YaRN, LongRoPE; 1 otherwise). */
  attentionFactor: number;
  /** The model type read (a wrapper's text config's), or null where the config names none. */
  modelType: string | null;
  /** Why the pairing is what it is. */
  pairingReason: string;
  /** One line per group of layers that rotate alike. */
  layers: string[];
  /** Rope-related keys present but not read, and other warnings. */
  warnings: string[];
  /** The one-line summary the CLI prints. */
  summary: string;
}

/** `frequenciesFor`: the R/2 inverse frequencies for a call whose largest position is given. */
export interface RopeFrequencies {
  invFreq: Float64Array;
  /** 2π / invFreq, in positions per turn. */
  wavelength: Float64Array;
  /** The position axis each frequency takes. */
  axis: Uint32Array;
  attentionFactor: number;
}

/** `tableFor`: one row per token, `rows × pairs` f32 values each, attention factor included. */
export interface RopeTableRows {
  cos: Float32Array;
  sin: Float32Array;
  rows: number;
  pairs: number;
  attentionFactor: number;
}
"#;

const RECIPE_KEYS: [&str; 5] = ["base", "rotaryDim", "variant", "angles", "axes"];

/// The keys a variant object of `kind` may hold (with `type`).
fn variant_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "default" => &["type"],
        "linear" => &["type", "factor"],
        "dynamic" => &["type", "factor", "maxPositionEmbeddings"],
        "yarn" => &[
            "type",
            "factor",
            "originalMaxPositionEmbeddings",
            "betaFast",
            "betaSlow",
            "mscale",
            "mscaleAllDim",
            "attentionFactor",
            "truncate",
        ],
        "llama3" => &[
            "type",
            "factor",
            "lowFreqFactor",
            "highFreqFactor",
            "originalMaxPositionEmbeddings",
        ],
        "longrope" => &[
            "type",
            "shortFactor",
            "longFactor",
            "originalMaxPositionEmbeddings",
            "factor",
            "attentionFactor",
        ],
        "proportional" => &["type", "rotated", "factor"],
        "dynamic-alpha" => &["type", "alpha", "factor", "maxPositionEmbeddings"],
        "custom" => &["type", "invFreq"],
        _ => return None,
    })
}

/// An array or typed array of finite numbers.
fn numbers(v: &JsValue, name: &str) -> Result<Vec<f64>, JsValue> {
    if !Array::is_array(v) && !js_sys::ArrayBuffer::is_view(v) {
        return Err(js_err(format!(
            "{name} must be an array of numbers, not {}",
            show(v)
        )));
    }
    Array::from(v)
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| js_err(format!("{name}[{i}] {} is not a finite number", show(&e))))
        })
        .collect()
}

/// A position: an integer in `0..=2^53`.
fn position(v: &JsValue, name: &str) -> Result<u64, JsValue> {
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= crate::table::MAX_POSITION as f64)
        .map(|f| f as u64)
        .ok_or_else(|| {
            js_err(format!(
                "{name} {} is not an integer position in 0..=2^53",
                show(v)
            ))
        })
}

impl Fields<'_> {
    fn required<T>(&self, key: &str, v: Option<T>) -> Result<T, JsValue> {
        v.ok_or_else(|| js_err(format!("{} is missing", self.name(key))))
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, JsValue> {
        self.get(key)
            .map(|v| position(&v, &self.name(key)))
            .transpose()
    }

    fn numbers(&self, key: &str) -> Result<Option<Vec<f64>>, JsValue> {
        self.get(key)
            .map(|v| numbers(&v, &self.name(key)))
            .transpose()
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, JsValue> {
        self.get(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    js_err(format!("{} {} is not a boolean", self.name(key), show(&v)))
                })
            })
            .transpose()
    }
}

/// A [`Variant`](crate::Variant) from `"default"` or a `{type, ...}` object at `path`.
fn variant_from(v: &JsValue, path: &'static str) -> Result<crate::Variant, JsValue> {
    use crate::Variant;
    if let Some(s) = v.as_string() {
        return match s.as_str() {
            "default" => Ok(Variant::Default),
            other if variant_keys(other).is_some() => Err(js_err(format!(
                "{path} {other:?} needs its parameters: give an object {{type: {other:?}, ...}}"
            ))),
            other => Err(js_err(format!(
                "{path} {other:?} is not a rope type; expected default, linear, dynamic, dynamic-alpha, yarn, llama3, longrope, proportional or custom"
            ))),
        };
    }
    let kind = Reflect::get(v, &"type".into())
        .ok()
        .filter(|t| !t.is_undefined())
        .ok_or_else(|| js_err(format!("{path}.type is missing")))?;
    let kind = kind
        .as_string()
        .ok_or_else(|| js_err(format!("{path}.type {} is not a string", show(&kind))))?;
    let keys = variant_keys(&kind).ok_or_else(|| {
        js_err(format!(
            "{path}.type {kind:?} is not a rope type; expected default, linear, dynamic, dynamic-alpha, yarn, llama3, longrope, proportional or custom"
        ))
    })?;
    let f = Fields::new(v, path, keys)?;
    let num = |k: &str| -> Result<f64, JsValue> { f.required(k, f.number(k)?) };
    let int = |k: &str| -> Result<u64, JsValue> { f.required(k, f.u64(k)?) };
    Ok(match kind.as_str() {
        "default" => Variant::Default,
        "linear" => Variant::Linear {
            factor: num("factor")?,
        },
        "dynamic" => Variant::Dynamic {
            factor: num("factor")?,
            max_position_embeddings: int("maxPositionEmbeddings")?,
        },
        "yarn" => Variant::Yarn {
            factor: num("factor")?,
            original_max_position_embeddings: int("originalMaxPositionEmbeddings")?,
            beta_fast: f.number("betaFast")?.unwrap_or(32.0),
            beta_slow: f.number("betaSlow")?.unwrap_or(1.0),
            mscale: f.number("mscale")?,
            mscale_all_dim: f.number("mscaleAllDim")?,
            attention_factor: f.number("attentionFactor")?,
            truncate: f.boolean("truncate")?.unwrap_or(true),
        },
        "llama3" => Variant::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("lowFreqFactor")?,
            high_freq_factor: num("highFreqFactor")?,
            original_max_position_embeddings: int("originalMaxPositionEmbeddings")?,
        },
        "longrope" => Variant::LongRope {
            short_factor: f.required("shortFactor", f.numbers("shortFactor")?)?,
            long_factor: f.required("longFactor", f.numbers("longFactor")?)?,
            original_max_position_embeddings: int("originalMaxPositionEmbeddings")?,
            factor: num("factor")?,
            attention_factor: f.number("attentionFactor")?,
        },
        "dynamic-alpha" => Variant::DynamicAlpha {
            alpha: num("alpha")?,
            factor: num("factor")?,
            max_position_embeddings: int("maxPositionEmbeddings")?,
        },
        "proportional" => Variant::Proportional {
            rotated: int("rotated")? as usize,
            factor: f.number("factor")?.unwrap_or(1.0),
        },
        _ => Variant::Custom(f.required("invFreq", f.numbers("invFreq")?)?),
    })
}

/// The JS object of a variant (the form [`variant_from`] reads back to the same value).
fn variant_object(v: &crate::Variant) -> Object {
    use crate::Variant;
    let o = Object::new();
    set(&o, "type", v.name());
    let list = |x: &[f64]| js_sys::Float64Array::from(x);
    let orig = |o: &Object, n: u64| set(o, "originalMaxPositionEmbeddings", n as f64);
    match v {
        Variant::Default => {}
        Variant::Linear { factor } => set(&o, "factor", *factor),
        Variant::Dynamic {
            factor,
            max_position_embeddings,
        } => {
            set(&o, "factor", *factor);
            set(&o, "maxPositionEmbeddings", *max_position_embeddings as f64);
        }
        Variant::Yarn {
            factor,
            original_max_position_embeddings,
            beta_fast,
            beta_slow,
            mscale,
            mscale_all_dim,
            attention_factor,
            truncate,
        } => {
            set(&o, "factor", *factor);
            orig(&o, *original_max_position_embeddings);
            set(&o, "betaFast", *beta_fast);
            set(&o, "betaSlow", *beta_slow);
            // Absent values stay absent, so the object reads back as the same variant.
            for (k, x) in [
                ("mscale", mscale),
                ("mscaleAllDim", mscale_all_dim),
                ("attentionFactor", attention_factor),
            ] {
                if let Some(x) = x {
                    set(&o, k, *x);
                }
            }
            set(&o, "truncate", *truncate);
        }
        Variant::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            set(&o, "factor", *factor);
            set(&o, "lowFreqFactor", *low_freq_factor);
            set(&o, "highFreqFactor", *high_freq_factor);
            orig(&o, *original_max_position_embeddings);
        }
        Variant::LongRope {
            short_factor,
            long_factor,
            original_max_position_embeddings,
            factor,
            attention_factor,
        } => {
            set(&o, "shortFactor", list(short_factor));
            set(&o, "longFactor", list(long_factor));
            orig(&o, *original_max_position_embeddings);
            set(&o, "factor", *factor);
            if let Some(a) = attention_factor {
                set(&o, "attentionFactor", *a);
            }
        }
        Variant::DynamicAlpha {
            alpha,
            factor,
            max_position_embeddings,
        } => {
            set(&o, "alpha", *alpha);
            set(&o, "factor", *factor);
            set(&o, "maxPositionEmbeddings", *max_position_embeddings as f64);
        }
        Variant::Proportional { rotated, factor } => {
            set(&o, "rotated", *rotated as f64);
            set(&o, "factor", *factor);
        }
        Variant::Custom(inv) => set(&o, "invFreq", list(inv)),
    }
    o
}

/// A [`TableRecipe`](crate::TableRecipe) from the fields of a recipe object; `rotary_dim`
/// (the call's, for `rope`'s `options.table`) is used when the object has none and must
/// agree with it otherwise.
fn recipe_from_fields(
    f: &Fields,
    variant_path: &'static str,
    rotary_dim: Option<usize>,
) -> Result<crate::TableRecipe, JsValue> {
    let r = match (f.uint("rotaryDim")?, rotary_dim) {
        (Some(a), Some(b)) if a != b => {
            return Err(js_err(format!(
                "{} {a} differs from the call's rotary dimension {b}",
                f.name("rotaryDim")
            )))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(js_err(format!("{} is missing", f.name("rotaryDim")))),
    };
    let mut recipe = crate::TableRecipe::new(r);
    if let Some(base) = f.number("base")? {
        recipe.base = base;
    }
    if let Some(v) = f.get("variant") {
        recipe.variant = variant_from(&v, variant_path)?;
    }
    if let Some(a) = f.string("angles")? {
        recipe.angles = a.parse().map_err(js_err)?;
    }
    recipe.axes = match f.string("axes")?.as_deref() {
        None | Some("single") => crate::Axes::Single,
        Some(a) => a
            .parse()
            .map_err(|e| js_err(format!("{} {a:?}: {e}", f.name("axes"))))?,
    };
    Ok(recipe)
}

/// A standalone recipe (`ropeFromConfig`'s, `tableFor`'s), its variant's own values (factor
/// lengths, signs) checked now. In `rope`'s `options.table` the call's checks come first.
fn recipe_from(v: &JsValue) -> Result<crate::TableRecipe, JsValue> {
    let f = Fields::new(v, "recipe", &RECIPE_KEYS)?;
    let recipe = recipe_from_fields(&f, "recipe.variant", None)?;
    recipe
        .frequencies(0)
        .map_err(|e| js_err(format!("recipe: {e}")))?;
    Ok(recipe)
}

/// The JS object of a recipe (the form [`recipe_from`] reads).
fn recipe_object(r: &crate::TableRecipe) -> Object {
    let o = Object::new();
    set(&o, "base", r.base);
    set(&o, "rotaryDim", r.rotary_dim as u32);
    set(&o, "variant", variant_object(&r.variant));
    set(&o, "angles", r.angles.name());
    set(&o, "axes", r.axes.name());
    o
}

/// Reads a Hugging Face `config.json` (its text) as the CLI's `--hf-config` does, for the
/// layer `layer` names where the model's layers rotate differently (a layer type of the
/// config's `layer_types`, or a 0-based layer index):
/// `{recipe, headDim, pairing, maxPositionEmbeddings, attentionFactor, modelType,
/// pairingReason, layers, warnings, summary}` (`RopeConfig`). A model or layer without RoPE,
/// an unknown model type, unknown rope types and inconsistent values throw one sentence
/// naming the key.
#[wasm_bindgen(js_name = ropeFromConfig, unchecked_return_type = "RopeConfig")]
pub fn rope_from_config(
    json: &str,
    #[wasm_bindgen(unchecked_param_type = "string | number | undefined")] layer: JsValue,
) -> Result<JsValue, JsValue> {
    let choice = if layer.is_undefined() || layer.is_null() {
        None
    } else if let Some(t) = layer.as_string() {
        Some(crate::table::Layer::Type(t))
    } else {
        Some(crate::table::Layer::Index(
            position(&layer, "layer")? as usize
        ))
    };
    let hf = crate::HfRope::from_config_json_for(json, choice.as_ref()).map_err(js_err)?;
    let (freqs, _) = hf.recipe.frequencies(0).map_err(js_err)?;
    let o = Object::new();
    set(&o, "recipe", recipe_object(&hf.recipe));
    set(&o, "headDim", hf.head_dim as u32);
    set(&o, "pairing", hf.pairing.name());
    set(
        &o,
        "maxPositionEmbeddings",
        hf.max_position_embeddings
            .map(|n| JsValue::from_f64(n as f64))
            .unwrap_or(JsValue::NULL),
    );
    let e = &hf.explanation;
    set(
        &o,
        "modelType",
        e.model_type
            .as_deref()
            .map(JsValue::from_str)
            .unwrap_or(JsValue::NULL),
    );
    set(&o, "pairingReason", e.pairing_reason.as_str());
    let strings = |v: &[String]| v.iter().map(|x| JsValue::from_str(x)).collect::<Array>();
    set(&o, "layers", strings(&e.layers));
    set(&o, "warnings", strings(&e.warnings));
    set(&o, "summary", hf.summary());
    set(&o, "attentionFactor", freqs.attention);
    Ok(o.into())
}

/// The inverse frequencies of `recipe` for a call whose largest position is `maxPosition`
/// (dynamic NTK and LongRoPE depend on it): `{invFreq, wavelength, axis, attentionFactor}`
/// (`RopeFrequencies`), for plotting how a variant bends the wavelengths.
#[wasm_bindgen(js_name = frequenciesFor, unchecked_return_type = "RopeFrequencies")]
pub fn frequencies_for(
    #[wasm_bindgen(unchecked_param_type = "RopeRecipe")] recipe: JsValue,
    #[wasm_bindgen(js_name = maxPosition)] max_position: f64,
) -> Result<JsValue, JsValue> {
    let recipe = recipe_from(&recipe)?;
    let max = position(&JsValue::from_f64(max_position), "maxPosition")?;
    let (f, axis) = recipe.frequencies(max).map_err(js_err)?;
    let wavelength: Vec<f64> = f
        .inv_freq
        .iter()
        .map(|&w| 2.0 * std::f64::consts::PI / w)
        .collect();
    let axis: Vec<u32> = axis.iter().map(|&a| a as u32).collect();
    let o = Object::new();
    set(&o, "invFreq", js_sys::Float64Array::from(&f.inv_freq[..]));
    set(
        &o,
        "wavelength",
        js_sys::Float64Array::from(&wavelength[..]),
    );
    set(&o, "axis", js_sys::Uint32Array::from(&axis[..]));
    set(&o, "attentionFactor", f.attention);
    Ok(o.into())
}

/// Builds the table of `recipe` with one row per token: `positions` holds one position per
/// token (one axis), or an array of `A` such arrays for a multi-axis recipe (`axes`). The
/// largest position decides dynamic NTK and LongRoPE, as in transformers. Returns
/// `{cos, sin, rows, pairs, attentionFactor}` (`RopeTableRows`), the attention factor already
/// multiplied into cos and sin.
#[wasm_bindgen(js_name = tableFor, unchecked_return_type = "RopeTableRows")]
pub fn table_for(
    #[wasm_bindgen(unchecked_param_type = "RopeRecipe")] recipe: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ArrayLike<number> | ArrayLike<number>[]")]
    positions: JsValue,
) -> Result<JsValue, JsValue> {
    let recipe = recipe_from(&recipe)?;
    let axes = recipe.axes.count();
    let rows: Vec<JsValue> = if axes == 1 {
        vec![positions.clone()]
    } else if Array::is_array(&positions) && Array::from(&positions).length() as usize == axes {
        Array::from(&positions).iter().collect()
    } else {
        return Err(js_err(format!(
            "positions must be an array of {axes} arrays (one per axis of {}), not {}",
            recipe.axes.name(),
            show(&positions)
        )));
    };
    let mut ids = Vec::new();
    let mut tokens = None;
    for (a, row) in rows.iter().enumerate() {
        let name = if axes == 1 {
            "positions".to_string()
        } else {
            format!("positions[{a}]")
        };
        let p = numbers(row, &name)?;
        if let Some(t) = tokens.filter(|&t| t != p.len()) {
            return Err(js_err(format!(
                "{name} holds {} positions but positions[0] holds {t}",
                p.len()
            )));
        }
        tokens = Some(p.len());
        for (i, &x) in p.iter().enumerate() {
            ids.push(position(&JsValue::from_f64(x), &format!("{name}[{i}]"))?);
        }
    }
    let table = recipe.table_per_token(&ids).map_err(js_err)?;
    let max = ids.iter().copied().max().unwrap_or(0);
    let (f, _) = recipe.frequencies(max).map_err(js_err)?;
    let (cos, sin): (Vec<f32>, Vec<f32>) = table.cos_sin().iter().map(|&[c, s]| (c, s)).unzip();
    let o = Object::new();
    set(&o, "cos", Float32Array::from(&cos[..]));
    set(&o, "sin", Float32Array::from(&sin[..]));
    set(&o, "rows", table.rows() as u32);
    set(&o, "pairs", table.pairs() as u32);
    set(&o, "attentionFactor", f.attention);
    Ok(o.into())
}

// ---------------------------------------------------------------------------------------------
// Conformance vectors: grading a results file (`bfrope grade`'s report, on the page).

/// Grades a results file against the conformance vectors (`bfrope vectors`' `vectors.safetensors`),
/// both as bytes: the same grader as `bfrope grade`. Resolves to `{pass, outputs, mismatches,
/// peers, groups: [{group, dtype, outputs, mismatches, worstUlp, nanMismatches,
/// noncanonicalNan, accepted, classes: {name: {...}}}]}`. A file that is not safetensors, or
/// results lacking an output or holding one of the wrong shape, reject with one sentence naming
/// it.
#[wasm_bindgen(js_name = gradeResults)]
pub fn grade_results(vectors: &[u8], results: &[u8]) -> Result<JsValue, JsValue> {
    use crate::vectors::{Cell, TOLERANCES};
    let grades =
        crate::vectors::grade_files("the vectors file", vectors, "the results file", results)
            .map_err(js_err)?;
    let cell = |c: &Cell| {
        let o = Object::new();
        set(&o, "outputs", c.outputs as f64);
        set(&o, "mismatches", c.mismatches as f64);
        set(&o, "worstUlp", c.worst_ulp as f64);
        set(&o, "nanMismatches", c.nan_mismatches as f64);
        set(&o, "noncanonicalNan", c.noncanonical_nan as f64);
        let acc = Array::new();
        for n in &c.accepted {
            acc.push(&JsValue::from_f64(*n as f64));
        }
        set(&o, "accepted", acc);
        o
    };
    let groups = Array::new();
    let (mut outputs, mut mismatches) = (0u64, 0u64);
    for g in &grades {
        outputs += g.all.outputs;
        mismatches += g.all.mismatches;
        let o = cell(&g.all);
        set(&o, "group", g.group.as_str());
        set(&o, "dtype", g.dtype.name());
        let classes = Object::new();
        for (name, c) in &g.classes {
            set(&classes, name, cell(c));
        }
        set(&o, "classes", classes);
        groups.push(&o);
    }
    let peers = Array::new();
    for t in &TOLERANCES {
        peers.push(&JsValue::from_str(t.peer));
    }
    let o = Object::new();
    set(&o, "pass", mismatches == 0);
    set(&o, "outputs", outputs as f64);
    set(&o, "mismatches", mismatches as f64);
    set(&o, "peers", peers);
    set(&o, "groups", groups);
    Ok(o.into())
}
