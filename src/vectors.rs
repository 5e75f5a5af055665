//! Conformance vectors for any RoPE implementation, and the grader of its results.
//!
//! A vector set is a list of groups. Each group is one rotation: an input tensor (BSHD in
//! memory), a table of `(cos, sin)` values (F32 `[S, rotary_dim/2]`, row `s` for token `s`), how
//! pairs are formed, which dims rotate and in which direction; with it come the correctly rounded
//! output (docs/CONTRACT.md §2, from the CPU path) and, per output element, a bitmask of the
//! [`CLASSES`] it belongs to (special inputs, subnormal results, ties, cancellation, ...). An
//! implementation reads the groups, rotates each input and writes its outputs; [`grade_group`]
//! compares them with the expected bits, per group and per class, and says which of the
//! differences each peer's test tolerance would have accepted.
//!
//! Everything here is plain computation on bit patterns (no files), so it builds for wasm32;
//! the CLI (`bfrope vectors`, `bfrope grade`) reads and writes the files.

use half::{bf16, f16};
use serde_json::{json, Value};

use crate::conformance::SplitMix64;
use crate::error::{Error, Result};
use crate::shape::Direction;
use crate::spec::{Pairing, Positions, RopeCall, TensorView};
use crate::table::{HfRope, RopeTable};
use crate::Dtype;

/// The `format` of `vectors.json`.
pub const FORMAT: &str = "bfrope-rope-vectors";
/// The `version` of `vectors.json`.
pub const VERSION: u64 = 1;

/// The contract the expected outputs follow, in a few sentences (written into `vectors.json`).
pub const CONTRACT: &str = "Each output is the correctly rounded value (round to nearest, ties to \
even, in the tensor's dtype) of the real-number rotation y0 = x0*cos - x1*sin, y1 = x0*sin + \
x1*cos (inverse: sin -> -sin) of the input pair with the table's f32 cos and sin taken as exact \
numbers. Subnormal inputs and results are kept (never flushed); a result beyond the dtype's \
largest finite value is an infinity of its sign; the sign of a zero result follows IEEE (x0*cos \
+ (-x1*sin) is -0 only when both terms are -0). Any NaN input of a pair, or an infinite product \
that meets a zero or the opposite infinity, makes that output NaN; bfrope emits the canonical \
quiet NaN, and the grader compares NaN by NaN-ness. Elements past rotary_dim are copied \
unchanged, bit for bit.";

/// One output class: bit `bit` of an element's class mask.
#[derive(Debug, Clone, Copy)]
pub struct Class {
    /// The bit in the class mask.
    pub bit: u16,
    /// Short name (used in reports and results).
    pub name: &'static str,
    /// What the class holds.
    pub description: &'static str,
}

/// Every class, by bit.
pub const CLASSES: [Class; 13] = [
    Class {
        bit: 0,
        name: "nan-input",
        description: "an input of the output's pair is NaN",
    },
    Class {
        bit: 1,
        name: "inf-input",
        description: "an input of the output's pair is infinite",
    },
    Class {
        bit: 2,
        name: "signed-zero",
        description: "the correctly rounded output is +0 or -0 (its sign is part of the result)",
    },
    Class {
        bit: 3,
        name: "subnormal-input",
        description: "an input of the output's pair is subnormal",
    },
    Class {
        bit: 4,
        name: "subnormal-result",
        description: "the correctly rounded output is subnormal",
    },
    Class {
        bit: 5,
        name: "overflow",
        description: "finite inputs whose exact result is beyond the largest finite value: ±inf",
    },
    Class {
        bit: 6,
        name: "tie",
        description: "rounding the exact result first to a wider format (f32 for bf16 and f16 \
                      tensors, f64 for f32 tensors) and then to the dtype gives another answer \
                      than rounding once: ties and near-ties",
    },
    Class {
        bit: 7,
        name: "cancellation",
        description: "the result is below 2^-8 of |x0*cos| + |x1*sin|: the two products cancel",
    },
    Class {
        bit: 8,
        name: "long-context",
        description: "a real model's table at positions of 2^20 and beyond",
    },
    Class {
        bit: 9,
        name: "every-x0",
        description: "every bit pattern of the dtype as x0, against special and random partners",
    },
    Class {
        bit: 10,
        name: "model-table",
        description: "random normal data rotated by a real model's table (llama3, YaRN, LongRoPE)",
    },
    Class {
        bit: 11,
        name: "pass-through",
        description: "an element past rotary_dim: copied unchanged",
    },
    Class {
        bit: 12,
        name: "special-table",
        description: "table values that are not a rotation: zeros, subnormals, huge values, ±1",
    },
];

const NAN_INPUT: u16 = 1 << 0;
const INF_INPUT: u16 = 1 << 1;
const SIGNED_ZERO: u16 = 1 << 2;
const SUBNORMAL_INPUT: u16 = 1 << 3;
const SUBNORMAL_RESULT: u16 = 1 << 4;
const OVERFLOW: u16 = 1 << 5;
const TIE: u16 = 1 << 6;
const CANCELLATION: u16 = 1 << 7;
const LONG_CONTEXT: u16 = 1 << 8;
const EVERY_X0: u16 = 1 << 9;
const MODEL_TABLE: u16 = 1 << 10;
const PASS_THROUGH: u16 = 1 << 11;
const SPECIAL_TABLE: u16 = 1 << 12;

/// A tensor of a vector set or a results file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its name in the safetensors file.
    pub name: String,
    /// `BF16`, `F16`, `F32` or `U16` (the safetensors dtype name).
    pub dtype: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Little-endian bytes.
    pub bytes: Vec<u8>,
}

/// One group: a rotation and its expected outputs.
#[derive(Debug, Clone)]
pub struct Group {
    /// Unique name; its tensors are `<name>.input`, `.cos`, `.sin`, `.expected`, `.classes`.
    pub name: String,
    /// The tensor's dtype.
    pub dtype: Dtype,
    /// `[B, S, H, D]`, BSHD in memory.
    pub shape: [usize; 4],
    /// How pairs are formed.
    pub pairing: Pairing,
    /// Rotated dims of each head (the rest pass through).
    pub rotary_dim: usize,
    /// Forward or inverse.
    pub direction: Direction,
    /// What the group holds, in a sentence.
    pub about: String,
    /// The input's bit patterns (u16 patterns widened for bf16 and f16).
    pub input: Vec<u32>,
    /// `[S, rotary_dim/2]` cos values.
    pub cos: Vec<f32>,
    /// `[S, rotary_dim/2]` sin values.
    pub sin: Vec<f32>,
    /// The correctly rounded output's bit patterns.
    pub expected: Vec<u32>,
    /// The class mask of each output element.
    pub classes: Vec<u16>,
}

impl Group {
    /// The name a results file must give this group's output.
    pub fn output_name(&self) -> String {
        format!("{}.output", self.name)
    }

    /// The group's entry in `vectors.json`.
    pub fn json(&self) -> Value {
        let n = &self.name;
        json!({
            "name": n,
            "dtype": self.dtype.name(),
            "shape": self.shape,
            "pairing": self.pairing.name(),
            "rotary_dim": self.rotary_dim,
            "direction": match self.direction {
                Direction::Forward => "forward",
                Direction::Inverse => "inverse",
            },
            "about": self.about,
            "input": format!("{n}.input"),
            "cos": format!("{n}.cos"),
            "sin": format!("{n}.sin"),
            "expected": format!("{n}.expected"),
            "classes": format!("{n}.classes"),
            "output": self.output_name(),
            "outputs": self.expected.len(),
        })
    }

    /// The group's tensors.
    pub fn tensors(&self) -> Vec<Tensor> {
        let dt = safetensors_name(self.dtype);
        let table = vec![self.shape[1], self.rotary_dim / 2];
        vec![
            Tensor {
                name: format!("{}.input", self.name),
                dtype: dt,
                shape: self.shape.to_vec(),
                bytes: pattern_bytes(self.dtype, &self.input),
            },
            Tensor {
                name: format!("{}.cos", self.name),
                dtype: "F32",
                shape: table.clone(),
                bytes: self.cos.iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
            Tensor {
                name: format!("{}.sin", self.name),
                dtype: "F32",
                shape: table,
                bytes: self.sin.iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
            Tensor {
                name: format!("{}.expected", self.name),
                dtype: dt,
                shape: self.shape.to_vec(),
                bytes: pattern_bytes(self.dtype, &self.expected),
            },
            Tensor {
                name: format!("{}.classes", self.name),
                dtype: "U16",
                shape: self.shape.to_vec(),
                bytes: self.classes.iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
        ]
    }
}

/// The safetensors dtype name of a tensor dtype.
pub fn safetensors_name(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::Bf16 => "BF16",
        Dtype::F16 => "F16",
        Dtype::F32 => "F32",
    }
}

fn pattern_bytes(dtype: Dtype, bits: &[u32]) -> Vec<u8> {
    match dtype {
        Dtype::F32 => bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
        _ => bits
            .iter()
            .flat_map(|&b| (b as u16).to_le_bytes())
            .collect(),
    }
}

/// Bit patterns from little-endian bytes of a tensor of `dtype`.
pub fn patterns(dtype: Dtype, bytes: &[u8]) -> Vec<u32> {
    match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .collect(),
    }
}

/// A vector set: its groups, in order.
#[derive(Debug, Clone)]
pub struct VectorSet {
    /// The groups.
    pub groups: Vec<Group>,
}

impl VectorSet {
    /// `vectors.json`: format, version, contract, classes and groups.
    pub fn json(&self) -> Value {
        let classes: serde_json::Map<String, Value> = CLASSES
            .iter()
            .map(|c| {
                (
                    c.bit.to_string(),
                    json!({"name": c.name, "description": c.description}),
                )
            })
            .collect();
        json!({
            "format": FORMAT,
            "version": VERSION,
            "contract": CONTRACT,
            "layout": "every tensor BSHD in memory; cos and sin F32 [S, rotary_dim/2], row s for \
                       token s of every batch row; classes U16, one bitmask per output element",
            "classes": classes,
            "groups": self.groups.iter().map(Group::json).collect::<Vec<_>>(),
        })
    }

    /// Every tensor of every group.
    pub fn tensors(&self) -> Vec<Tensor> {
        self.groups.iter().flat_map(Group::tensors).collect()
    }

    /// Total outputs over the groups.
    pub fn outputs(&self) -> usize {
        self.groups.iter().map(|g| g.expected.len()).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Values of a dtype.

/// The f64 value of a pattern of `dtype`.
pub fn value(dtype: Dtype, bits: u32) -> f64 {
    match dtype {
        Dtype::Bf16 => bf16::from_bits(bits as u16).to_f64(),
        Dtype::F16 => f16::from_bits(bits as u16).to_f64(),
        Dtype::F32 => f32::from_bits(bits) as f64,
    }
}

fn sign_bit(dtype: Dtype) -> u32 {
    match dtype {
        Dtype::F32 => 0x8000_0000,
        _ => 0x8000,
    }
}

fn exponent_mask(dtype: Dtype) -> u32 {
    match dtype {
        Dtype::Bf16 => 0x7F80,
        Dtype::F16 => 0x7C00,
        Dtype::F32 => 0x7F80_0000,
    }
}

fn is_nan(dtype: Dtype, b: u32) -> bool {
    let m = b & !sign_bit(dtype);
    m > exponent_mask(dtype)
}

fn is_inf(dtype: Dtype, b: u32) -> bool {
    b & !sign_bit(dtype) == exponent_mask(dtype)
}

fn is_subnormal(dtype: Dtype, b: u32) -> bool {
    let m = b & !sign_bit(dtype);
    m != 0 && m & exponent_mask(dtype) == 0
}

/// The distance in units in the last place between two non-NaN patterns of `dtype` (the
/// number of representable values between them, zeros counted once).
pub fn ulp_distance(dtype: Dtype, a: u32, b: u32) -> u64 {
    let key = |x: u32| -> i64 {
        let s = sign_bit(dtype);
        let m = (x & !s) as i64;
        if x & s != 0 {
            -m
        } else {
            m
        }
    };
    key(a).abs_diff(key(b))
}

/// Round an f64 to the dtype, to nearest, ties to even (f64 → f32 is `as`; bf16 and f16 from
/// the f32 that `x` already is, for the callers here).
fn round_from_f32(dtype: Dtype, x: f32) -> u32 {
    match dtype {
        Dtype::Bf16 => bf16::from_f32(x).to_bits() as u32,
        Dtype::F16 => f16::from_f32(x).to_bits() as u32,
        Dtype::F32 => x.to_bits(),
    }
}

// ---------------------------------------------------------------------------------------------
// Generating a set.

/// A pattern of `dtype` nearest a standard normal value from `rng`.
fn normal_bits(rng: &mut SplitMix64, dtype: Dtype) -> u32 {
    round_from_f32(dtype, rng.next_normal() as f32)
}

/// Special inputs of a dtype: signed zeros, the smallest and largest subnormals, the smallest
/// normal, ±1 and a value just above, the largest finite, ±inf, NaNs (canonical, with a
/// payload, signalling) and a few ordinary values.
fn special_inputs(dtype: Dtype) -> Vec<u32> {
    let one = round_from_f32(dtype, 1.0);
    let s = sign_bit(dtype);
    let e = exponent_mask(dtype);
    let top = e - 1; // the largest finite: exponent field one below all ones, mantissa all ones
    let min_normal = e & e.wrapping_neg(); // lowest exponent bit
    let mut v = vec![
        0,
        s,
        1,
        s | 1,
        min_normal - 1,
        min_normal,
        s | min_normal,
        one,
        s | one,
        one + 1,
        round_from_f32(dtype, 1.5),
        round_from_f32(dtype, core::f32::consts::PI),
        top,
        s | top,
        e,
        s | e,
        dtype.canonical_nan(),
        s | e | (dtype.canonical_nan() & !e) | 1,
        e | 1,
        round_from_f32(dtype, 0.1),
        round_from_f32(dtype, -61.6),
        round_from_f32(dtype, 256.0),
        round_from_f32(dtype, 2f32.powi(-13)),
        round_from_f32(dtype, 2f32.powi(-8)),
    ];
    v.dedup();
    v
}

/// Special table values: zeros, ±1, subnormal and tiny normal f32, sin and cos of common
/// angles, values above 1 and huge ones (products overflow the dtype).
const SPECIAL_TABLE_VALUES: [f32; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f32::from_bits(1),
    f32::MIN_POSITIVE,
    core::f32::consts::FRAC_1_SQRT_2,
    -core::f32::consts::FRAC_1_SQRT_2,
    0.5403023,
    0.84147096,
    6.123234e-17,
    1.0000001,
    65504.0,
    3.0e38,
    -1.0e30,
    1.0e-30,
];

/// The classes an input element puts its outputs in: NaN, infinite, subnormal.
fn input_classes(dtype: Dtype, x: u32) -> u16 {
    let mut c = 0;
    if is_nan(dtype, x) {
        c |= NAN_INPUT;
    }
    if is_inf(dtype, x) {
        c |= INF_INPUT;
    }
    if is_subnormal(dtype, x) {
        c |= SUBNORMAL_INPUT;
    }
    c
}

/// Builds the group from its inputs: expected outputs from the exact CPU path, classes from
/// the data.
#[allow(clippy::too_many_arguments)]
fn group(
    name: String,
    dtype: Dtype,
    shape: [usize; 4],
    pairing: Pairing,
    rotary_dim: usize,
    direction: Direction,
    about: &str,
    input: Vec<u32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    extra: u16,
) -> Result<Group> {
    let [b, s, h, d] = shape;
    let pairs = rotary_dim / 2;
    debug_assert_eq!(input.len(), b * s * h * d);
    debug_assert_eq!(cos.len(), s * pairs);
    let table = RopeTable::from_cos_sin(&cos, &sin, s, pairs)?;
    let positions = Positions::Offset(0);
    let call = RopeCall::new(TensorView::bshd(b, s, h, d), &positions, &table)
        .with_pairing(pairing)
        .with_rotary_dim(rotary_dim)
        .with_direction(direction)
        .with_dtype(dtype);
    let expected: Vec<u32> = match dtype {
        Dtype::F32 => crate::cpu::apply(&call, &input)?,
        _ => {
            let x: Vec<u16> = input.iter().map(|&v| v as u16).collect();
            crate::cpu::apply(&call, &x)?
                .into_iter()
                .map(u32::from)
                .collect()
        }
    };
    // Rounded first to the wider format: f32 (as a correctly rounded f32 rotation of the
    // widened inputs) for bf16 and f16; f64 for f32.
    let wider: Vec<u32> = match dtype {
        Dtype::F32 => Vec::new(),
        _ => {
            let wide: Vec<u32> = input
                .iter()
                .map(|&v| (value(dtype, v) as f32).to_bits())
                .collect();
            let c32 = call.with_dtype(Dtype::F32);
            crate::cpu::apply(&c32, &wide)?
        }
    };
    let sign = if direction == Direction::Inverse {
        -1.0
    } else {
        1.0
    };
    let mut classes = vec![extra; input.len()];
    for (e, class) in classes.iter_mut().enumerate() {
        let (head, k) = (e - e % d, e % d);
        let token = e / (h * d) % s;
        if k >= rotary_dim {
            *class |= PASS_THROUGH;
            *class |= input_classes(dtype, input[e]);
            continue;
        }
        let (i, second) = match pairing {
            Pairing::Interleaved => (k / 2, k % 2 == 1),
            Pairing::HalfSplit => (k % pairs, k >= pairs),
        };
        let (e0, e1) = pairing.elements(i, pairs);
        let (x0, x1) = (input[head + e0], input[head + e1]);
        *class |= input_classes(dtype, x0) | input_classes(dtype, x1);
        let y = expected[e];
        if y & !sign_bit(dtype) == 0 {
            *class |= SIGNED_ZERO;
        }
        if is_subnormal(dtype, y) {
            *class |= SUBNORMAL_RESULT;
        }
        let finite_in =
            !(is_nan(dtype, x0) || is_nan(dtype, x1) || is_inf(dtype, x0) || is_inf(dtype, x1));
        if finite_in && is_inf(dtype, y) {
            *class |= OVERFLOW;
        }
        let c = cos[token * pairs + i] as f64;
        let sn = sign * sin[token * pairs + i] as f64;
        let (v0, v1) = (value(dtype, x0), value(dtype, x1));
        // Exact in f64: a bf16, f16 or f32 times an f32.
        let (p, q) = if second {
            (v0 * sn, v1 * c)
        } else {
            (v0 * c, -(v1 * sn))
        };
        let once_wider = match dtype {
            Dtype::F32 => ((p + q) as f32).to_bits(),
            _ => round_from_f32(dtype, f32::from_bits(wider[e])),
        };
        if finite_in && !is_nan(dtype, y) && once_wider != y && !is_nan(dtype, once_wider) {
            *class |= TIE;
        }
        let size = p.abs() + q.abs();
        if finite_in && size.is_finite() && size > 0.0 && value(dtype, y).abs() < size / 256.0 {
            *class |= CANCELLATION;
        }
    }
    Ok(Group {
        name,
        dtype,
        shape,
        pairing,
        rotary_dim,
        direction,
        about: about.to_string(),
        input,
        cos,
        sin,
        expected,
        classes,
    })
}

/// The ulp of the dtype at 1 (the spacing of its values in [1, 2)), as an f64.
fn ulp_at_one(dtype: Dtype) -> f64 {
    2f64.powi(1 - dtype.precision_bits() as i32)
}

/// Configs of real models whose tables the model-table groups use.
const MODEL_CONFIGS: [(&str, &str, Pairing); 3] = [
    (
        "llama3",
        r#"{"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
            "max_position_embeddings": 131072, "rope_theta": 500000.0,
            "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"}}"#,
        Pairing::HalfSplit,
    ),
    (
        "yarn",
        r#"{"model_type": "qwen2", "hidden_size": 3584, "num_attention_heads": 28,
            "max_position_embeddings": 131072, "rope_theta": 1000000.0,
            "rope_scaling": {"factor": 4.0, "original_max_position_embeddings": 32768,
                             "type": "yarn"}}"#,
        Pairing::HalfSplit,
    ),
    (
        "deepseek-yarn",
        r#"{"model_type": "deepseek_v3", "hidden_size": 7168, "num_attention_heads": 128,
            "qk_rope_head_dim": 64, "max_position_embeddings": 163840, "rope_theta": 10000,
            "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                             "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                             "type": "yarn"}}"#,
        Pairing::Interleaved,
    ),
];

/// The table of a model's config at `positions` (one row per position), as `(cos, sin)`
/// `[rows, pairs]` and the rotary dim.
fn model_table(config: &str, positions: &[u64]) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    let hf = HfRope::from_config_json(config)?;
    let table = hf.recipe.table_per_token(positions)?;
    let (cos, sin) = table.cos_sin().iter().map(|[c, s]| (*c, *s)).unzip();
    Ok((cos, sin, hf.recipe.rotary_dim))
}

/// Every group of one dtype.
fn groups_of(dtype: Dtype) -> Result<Vec<Group>> {
    let dn = dtype.name();
    let mut out = Vec::new();
    let mut rng = SplitMix64(0xB0F0_0000 ^ dtype.precision_bits() as u64);
    let specials = special_inputs(dtype);

    // Every pattern as x0 (bf16, f16): 4 rows (angles), each with all 65,536 patterns against a
    // partner that cycles through the special values and random normal values.
    if dtype != Dtype::F32 {
        let angles: [f64; 4] = [
            core::f64::consts::FRAC_PI_4,
            1.0,
            core::f64::consts::FRAC_PI_2,
            4097.25,
        ];
        let (s, h, d) = (angles.len(), 512, 256);
        let pairs = d / 2;
        let mut input = Vec::with_capacity(s * h * d);
        let mut cos = Vec::new();
        let mut sin = Vec::new();
        for (row, &a) in angles.iter().enumerate() {
            for x0 in 0..65536u32 {
                let j = x0 as usize + 3 * row;
                let x1 = if j % 3 == 0 {
                    normal_bits(&mut rng, dtype)
                } else {
                    specials[j % specials.len()]
                };
                input.extend([x0, x1]);
            }
            cos.extend(core::iter::repeat_n(libm::cos(a) as f32, pairs));
            sin.extend(core::iter::repeat_n(libm::sin(a) as f32, pairs));
        }
        out.push(group(
            format!("{dn}-every-x0"),
            dtype,
            [1, s, h, d],
            Pairing::Interleaved,
            d,
            Direction::Forward,
            "every bit pattern as x0 at four angles (pi/4, 1, pi/2 and 4097.25 rad), against \
             special partners and random normal ones",
            input,
            cos,
            sin,
            EVERY_X0,
        )?);
    }

    // Every special input against every special input, on every pair of special table values.
    {
        let n = specials.len();
        let (s, h, d) = (SPECIAL_TABLE_VALUES.len().pow(2), n, 2 * n);
        let mut input = Vec::with_capacity(s * h * d);
        let mut cos = Vec::new();
        let mut sin = Vec::new();
        for c in SPECIAL_TABLE_VALUES {
            for sn in SPECIAL_TABLE_VALUES {
                for &x0 in &specials {
                    for &x1 in &specials {
                        input.extend([x0, x1]);
                    }
                }
                cos.extend(core::iter::repeat_n(c, n));
                sin.extend(core::iter::repeat_n(sn, n));
            }
        }
        for direction in [Direction::Forward, Direction::Inverse] {
            let dir = if direction == Direction::Forward {
                "forward"
            } else {
                "inverse"
            };
            out.push(group(
                format!("{dn}-specials-{dir}"),
                dtype,
                [1, s, h, d],
                Pairing::Interleaved,
                d,
                direction,
                "every pair of special inputs (zeros, subnormals, ±1, the largest finite, ±inf, \
                 NaNs) on every pair of special table values",
                input.clone(),
                cos.clone(),
                sin.clone(),
                SPECIAL_TABLE,
            )?);
        }
    }

    // Ties: x0 = ±1.5·2^k and cos = 1 + q·u (q odd, u the dtype's ulp at 1) put x0·cos on a
    // midpoint of the dtype's grid; x1·sin, too small to move a rounding to the wider format,
    // decides the correct side.
    {
        let (s, h, d) = (64, 8, 64);
        let pairs = d / 2;
        let u = ulp_at_one(dtype);
        let tiny = match dtype {
            Dtype::F32 => 60,
            _ => 28,
        };
        let mut input = Vec::with_capacity(s * h * d);
        let mut cos = Vec::with_capacity(s * pairs);
        let mut sin = Vec::with_capacity(s * pairs);
        for row in 0..s {
            for i in 0..pairs {
                let q = (2 * ((row * pairs + i) % 21) + 1) as f64;
                let c = (1.0 + q * u) as f32;
                let e = tiny + ((row + i) % 12) as i32;
                let sn = if (row + i) % 2 == 0 { 1.0 } else { -1.0 } * 2f32.powi(-e);
                cos.push(c);
                sin.push(sn);
            }
        }
        for row in 0..s {
            for _ in 0..h {
                for _ in 0..pairs {
                    let k = (rng.next_u64() % 17) as i32 - 8;
                    let sign = if rng.next_u64() % 2 == 0 { 1.0 } else { -1.0 };
                    input.push(round_from_f32(dtype, sign * 1.5 * 2f32.powi(k)));
                    input.push(normal_bits(&mut rng, dtype));
                }
            }
            let _ = row;
        }
        out.push(group(
            format!("{dn}-ties"),
            dtype,
            [1, s, h, d],
            Pairing::Interleaved,
            d,
            Direction::Forward,
            "x0*cos on a midpoint of the dtype's grid and x1*sin below the wider format's \
             rounding: ties and near-ties (the tables are chosen for it, not rotations)",
            input,
            cos,
            sin,
            0,
        )?);
    }

    // Cancellation: x1 chosen so that x1*sin nearly equals x0*cos, on a real model's table.
    {
        let positions: Vec<u64> = (0..64).map(|p| p * 37 + 5).collect();
        let (cos, sin, r) = model_table(MODEL_CONFIGS[0].1, &positions)?;
        let (s, h, d) = (positions.len(), 4, r);
        let pairs = r / 2;
        let mut input = Vec::with_capacity(s * h * d);
        for row in 0..s {
            for _ in 0..h {
                let mut head = vec![0u32; d];
                for i in 0..pairs {
                    let (c, sn) = (cos[row * pairs + i] as f64, sin[row * pairs + i] as f64);
                    let x0 = normal_bits(&mut rng, dtype);
                    let x1 = if sn.abs() > 1e-3 {
                        round_from_f32(dtype, (value(dtype, x0) * c / sn) as f32)
                    } else {
                        normal_bits(&mut rng, dtype)
                    };
                    let (e0, e1) = Pairing::HalfSplit.elements(i, pairs);
                    head[e0] = x0;
                    head[e1] = x1;
                }
                input.extend(head);
            }
        }
        out.push(group(
            format!("{dn}-cancellation"),
            dtype,
            [1, s, h, d],
            Pairing::HalfSplit,
            d,
            Direction::Forward,
            "x1 = x0*cos/sin rounded, so that y0 = x0*cos - x1*sin nearly cancels, on Llama 3.1's \
             table",
            input,
            cos,
            sin,
            MODEL_TABLE,
        )?);
    }

    // Real models' tables: random normal data, forward and inverse; a long-context group.
    for (model, config, pairing) in MODEL_CONFIGS {
        let positions: Vec<u64> = [
            0, 1, 2, 3, 5, 8, 63, 64, 1000, 4095, 4096, 4097, 8191, 8192, 32767, 32768,
        ]
        .into_iter()
        .chain((0..48).map(|k| 100 + k * 2711))
        .collect();
        let (cos, sin, r) = model_table(config, &positions)?;
        let (s, h, d) = (positions.len(), 4, r);
        for direction in [Direction::Forward, Direction::Inverse] {
            let dir = if direction == Direction::Forward {
                "forward"
            } else {
                "inverse"
            };
            let input: Vec<u32> = (0..s * h * d)
                .map(|_| normal_bits(&mut rng, dtype))
                .collect();
            out.push(group(
                format!("{dn}-{model}-{dir}"),
                dtype,
                [1, s, h, d],
                pairing,
                d,
                direction,
                &format!("random normal data on the {model} table at positions 0 to 127,521"),
                input,
                cos.clone(),
                sin.clone(),
                MODEL_TABLE,
            )?);
        }
    }
    {
        let positions: Vec<u64> = (0..32).map(|k| (1 << 20) + k * 1_000_003).collect();
        let (cos, sin, r) = model_table(MODEL_CONFIGS[0].1, &positions)?;
        let (s, h, d) = (positions.len(), 4, r);
        let input: Vec<u32> = (0..s * h * d)
            .map(|_| normal_bits(&mut rng, dtype))
            .collect();
        out.push(group(
            format!("{dn}-long-context"),
            dtype,
            [1, s, h, d],
            Pairing::HalfSplit,
            d,
            Direction::Forward,
            "random normal data on Llama 3.1's table at positions from 2^20 to 32,049,669",
            input,
            cos,
            sin,
            LONG_CONTEXT | MODEL_TABLE,
        )?);
    }

    // Partial rotary: 32 of 128 dims rotate (GPT-NeoX's 25%), the rest pass through, specials
    // sprinkled into the pass-through part.
    {
        let positions: Vec<u64> = (0..32).map(|p| p * 131).collect();
        let config = r#"{"model_type": "gpt_neox", "hidden_size": 4096, "num_attention_heads": 32,
            "rotary_pct": 0.25, "rotary_emb_base": 10000, "max_position_embeddings": 8192}"#;
        let (cos, sin, r) = model_table(config, &positions)?;
        let (s, h, d) = (positions.len(), 4, 128);
        let input: Vec<u32> = (0..s * h * d)
            .map(|e| {
                if e % d >= r && e % 7 == 0 {
                    specials[e / 7 % specials.len()]
                } else {
                    normal_bits(&mut rng, dtype)
                }
            })
            .collect();
        out.push(group(
            format!("{dn}-partial"),
            dtype,
            [1, s, h, d],
            Pairing::HalfSplit,
            r,
            Direction::Forward,
            "GPT-NeoX's partial rotary: the first 32 of 128 dims rotate, the rest (special values \
             among them) pass through unchanged",
            input,
            cos,
            sin,
            MODEL_TABLE,
        )?);
    }
    Ok(out)
}

/// The vector set for `dtypes`, in that order.
pub fn generate(dtypes: &[Dtype]) -> Result<VectorSet> {
    let mut groups = Vec::new();
    for &d in dtypes {
        groups.extend(groups_of(d)?);
    }
    Ok(VectorSet { groups })
}

// ---------------------------------------------------------------------------------------------
// Grading.

/// A peer's test tolerance: an output passes when |got − want| ≤ atol + rtol·|want|.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Whose test uses it.
    pub peer: &'static str,
    /// Per dtype `(atol, rtol)`: bf16, f16, f32.
    pub by_dtype: [(f64, f64); 3],
}

impl Tolerance {
    fn of(&self, dtype: Dtype) -> (f64, f64) {
        self.by_dtype[match dtype {
            Dtype::Bf16 => 0,
            Dtype::F16 => 1,
            Dtype::F32 => 2,
        }]
    }

    /// Whether `got` passes against `want` (NaN passes nothing: a mismatch with a NaN fails).
    pub fn accepts(&self, dtype: Dtype, got: u32, want: u32) -> bool {
        let (g, w) = (value(dtype, got), value(dtype, want));
        if g.is_nan() || w.is_nan() {
            return false;
        }
        if g.is_infinite() || w.is_infinite() {
            return g == w;
        }
        let (atol, rtol) = self.of(dtype);
        (g - w).abs() <= atol + rtol * w.abs()
    }
}

/// The grade of one (group, class) cell, or of a whole group (`class` None).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Outputs in the cell.
    pub outputs: u64,
    /// Outputs whose bits differ from the expected ones (NaN by NaN-ness).
    pub mismatches: u64,
    /// NaN outputs where a NaN was expected, with another payload than the canonical NaN (or the
    /// input's, passed through); not mismatches.
    pub noncanonical_nan: u64,
    /// The largest distance in ulps among mismatches where both are numbers; `None` if a
    /// mismatch involves NaN (reported as such).
    pub worst_ulp: u64,
    /// Mismatches where one side is NaN and the other is not.
    pub nan_mismatches: u64,
    /// Per peer tolerance (in [`TOLERANCES`] order): mismatches it would have accepted.
    pub accepted: Vec<u64>,
}

/// One group's grade: the whole group and each class present in it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupGrade {
    /// The group's name.
    pub group: String,
    /// Its dtype.
    pub dtype: Dtype,
    /// All of its outputs.
    pub all: Cell,
    /// `(class name, cell)` for each class with at least one output.
    pub classes: Vec<(&'static str, Cell)>,
    /// The first few mismatches, described.
    pub first: Vec<String>,
}

/// Peers' test tolerances for RoPE, as their own tests apply them (`docs/VECTORS.md` quotes
/// each): `|got − want| ≤ atol + rtol·|want|`. ONNX tests RotaryEmbedding in f32 only and
/// FlashInfer has no f32 test: their tolerance is applied to the other dtypes as written.
/// MLX's is absolute (`max |Δ| < tol`).
pub const TOLERANCES: [Tolerance; 5] = [
    Tolerance {
        peer: "ONNX",
        by_dtype: [(1e-7, 1e-3), (1e-7, 1e-3), (1e-7, 1e-3)],
    },
    Tolerance {
        peer: "Liger",
        by_dtype: [(1e-1, 1e-5), (1e-2, 1e-5), (1e-5, 1e-5)],
    },
    Tolerance {
        peer: "MLX",
        by_dtype: [(1e-2, 0.0), (1e-3, 0.0), (1e-6, 0.0)],
    },
    Tolerance {
        peer: "FlashInfer",
        by_dtype: [(1e-2, 1e-2), (1e-3, 1e-3), (1e-3, 1e-3)],
    },
    Tolerance {
        peer: "vLLM",
        by_dtype: [(1e-3, 1.6e-2), (1e-3, 1e-3), (1e-5, 1.3e-6)],
    },
];

impl Cell {
    fn add(&mut self, dtype: Dtype, got: u32, want: u32) {
        if self.accepted.is_empty() {
            self.accepted = vec![0; TOLERANCES.len()];
        }
        self.outputs += 1;
        let (gn, wn) = (is_nan(dtype, got), is_nan(dtype, want));
        if gn && wn {
            // A NaN where one is due; its payload is counted apart, not as a difference (a
            // pass-through NaN keeps the input's payload, which is then the one expected).
            if got != want && got != dtype.canonical_nan() {
                self.noncanonical_nan += 1;
            }
            return;
        }
        if got == want {
            return;
        }
        self.mismatches += 1;
        if gn || wn {
            self.nan_mismatches += 1;
        } else {
            self.worst_ulp = self.worst_ulp.max(ulp_distance(dtype, got, want));
        }
        for (a, t) in self.accepted.iter_mut().zip(&TOLERANCES) {
            *a += t.accepts(dtype, got, want) as u64;
        }
    }
}

/// Grades one group's outputs (`got`, bit patterns) against its expected bits and classes.
pub fn grade_group(
    name: &str,
    dtype: Dtype,
    expected: &[u32],
    classes: &[u16],
    got: &[u32],
) -> GroupGrade {
    let mut all = Cell::default();
    let mut by_class: Vec<Cell> = vec![Cell::default(); CLASSES.len()];
    let mut first = Vec::new();
    for (e, ((&w, &g), &m)) in expected.iter().zip(got).zip(classes).enumerate() {
        let before = all.mismatches;
        all.add(dtype, g, w);
        for (c, cell) in CLASSES.iter().zip(&mut by_class) {
            if m & (1 << c.bit) != 0 {
                cell.add(dtype, g, w);
            }
        }
        if all.mismatches > before && first.len() < 5 {
            let names: Vec<&str> = CLASSES
                .iter()
                .filter(|c| m & (1 << c.bit) != 0)
                .map(|c| c.name)
                .collect();
            first.push(format!(
                "element {e}: got {g:#x}, expected {w:#x} ({})",
                if names.is_empty() {
                    "no class".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    GroupGrade {
        group: name.to_string(),
        dtype,
        all,
        classes: CLASSES
            .iter()
            .zip(by_class)
            .filter(|(_, c)| c.outputs > 0)
            .map(|(c, cell)| (c.name, cell))
            .collect(),
        first,
    }
}

/// What `vectors.json` says about one group, as the grader needs it.
#[derive(Debug, Clone)]
pub struct GroupEntry {
    /// The group's name.
    pub name: String,
    /// Its dtype.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Tensor names.
    pub expected: String,
    /// The class-mask tensor's name.
    pub classes: String,
    /// The name results must use.
    pub output: String,
}

/// The groups of a `vectors.json`, checked for format and version.
pub fn read_index(json: &Value) -> Result<Vec<GroupEntry>> {
    let bad = |what: String| Error::Parameter(format!("vectors.json {what}"));
    if json["format"] != FORMAT {
        return Err(bad(format!(
            "has format {} where {FORMAT:?} was expected",
            json["format"]
        )));
    }
    if json["version"] != VERSION {
        return Err(bad(format!(
            "has version {} where {VERSION} was expected",
            json["version"]
        )));
    }
    let groups = json["groups"]
        .as_array()
        .ok_or_else(|| bad("has no list of groups".into()))?;
    groups
        .iter()
        .map(|g| {
            let s = |k: &str| {
                g[k].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("group {} has no {k}", g["name"])))
            };
            let dtype: Dtype = s("dtype")?.parse()?;
            let shape = g["shape"]
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_u64().map(|v| v as usize)).collect())
                .ok_or_else(|| bad(format!("group {} has no shape", g["name"])))?;
            Ok(GroupEntry {
                name: s("name")?,
                dtype,
                shape,
                expected: s("expected")?,
                classes: s("classes")?,
                output: s("output")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Results files without the safetensors crate (for the page).

/// One tensor of a safetensors file: its dtype name, shape and bytes.
pub type RawTensor<'a> = (&'a str, Vec<usize>, &'a [u8]);

/// The tensors of a safetensors file, as `(name, tensor)` in the header's order (a minimal
/// reader: the 8-byte header length, the JSON header, the data offsets).
pub fn read_safetensors(bytes: &[u8]) -> Result<Vec<(String, RawTensor<'_>)>> {
    let bad = |why: &str| Error::Parameter(format!("not a safetensors file: {why}"));
    let n = bytes
        .get(..8)
        .map(|h| u64::from_le_bytes(h.try_into().unwrap()))
        .ok_or_else(|| bad("shorter than its 8-byte header length"))?;
    let end = 8usize
        .checked_add(usize::try_from(n).map_err(|_| bad("header too large"))?)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("the header runs past the end of the file"))?;
    let header: Value =
        // from_str, as the rest of the crate parses JSON (one deserializer in the wasm build)
        core::str::from_utf8(&bytes[8..end])
            .ok()
            .and_then(|h| serde_json::from_str(h).ok())
            .ok_or_else(|| bad("the header is not JSON"))?;
    let data = &bytes[end..];
    let mut out = Vec::new();
    for (name, t) in header
        .as_object()
        .ok_or_else(|| bad("the header is not an object"))?
    {
        if name == "__metadata__" {
            continue;
        }
        let dtype = match t["dtype"].as_str() {
            Some("BF16") => "BF16",
            Some("F16") => "F16",
            Some("F32") => "F32",
            Some("U16") => "U16",
            _ => "other",
        };
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .and_then(|a| a.iter().map(|v| v.as_u64().map(|v| v as usize)).collect())
            .ok_or_else(|| bad(&format!("tensor {name} has no shape")))?;
        let off = t["data_offsets"]
            .as_array()
            .and_then(|a| Some((a.first()?.as_u64()? as usize, a.get(1)?.as_u64()? as usize)))
            .filter(|&(a, b)| a <= b && b <= data.len())
            .ok_or_else(|| bad(&format!("tensor {name} lies outside the file")))?;
        out.push((name.clone(), (dtype, shape, &data[off.0..off.1])));
    }
    Ok(out)
}

/// A safetensors file of `tensors` with `metadata` (the header's keys in name order, the data
/// in the order given): the same bytes for the same tensors, every time.
pub fn write_safetensors(tensors: &[Tensor], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut offset = 0usize;
    for t in tensors {
        header.insert(
            t.name.clone(),
            json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.len()]}),
        );
        offset += t.bytes.len();
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).unwrap_or_default();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    for t in tensors {
        out.extend(&t.bytes);
    }
    out
}

/// The correctly rounded outputs of `set` as a results file: what a correct implementation
/// writes.
pub fn exact_results(set: &VectorSet) -> Vec<u8> {
    let outputs: Vec<Tensor> = set
        .groups
        .iter()
        .map(|g| Tensor {
            name: g.output_name(),
            dtype: safetensors_name(g.dtype),
            shape: g.shape.to_vec(),
            bytes: pattern_bytes(g.dtype, &g.expected),
        })
        .collect();
    write_safetensors(&outputs, &[])
}

fn find<'a>(list: &[(String, RawTensor<'a>)], name: &str) -> Option<RawTensor<'a>> {
    list.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone())
}

/// Grades a results file against a vector set's tensors file (`vectors.safetensors`), both as
/// bytes with the names messages give them: every group (a `<g>.expected` tensor, with
/// `<g>.classes`) must have its `<g>.output` in the results, of its dtype and shape, else an
/// error naming the outputs missing or the one misshapen. Groups in name order. `bfrope grade`
/// and the page both grade through here.
pub fn grade_files(
    vectors_name: &str,
    vectors: &[u8],
    results_name: &str,
    results: &[u8],
) -> Result<Vec<GroupGrade>> {
    let inner = |what: &str, e: Error| match e {
        Error::Parameter(m) => Error::Parameter(format!("{what}: {m}")),
        e => e,
    };
    let set = read_safetensors(vectors).map_err(|e| inner(vectors_name, e))?;
    let got = read_safetensors(results).map_err(|e| inner(results_name, e))?;
    let outputs: Vec<String> = set
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".expected"))
        .map(|g| format!("{g}.output"))
        .collect();
    let missing: Vec<&str> = outputs
        .iter()
        .filter(|o| find(&got, o).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let shown = &missing[..missing.len().min(4)];
        return Err(Error::Parameter(format!(
            "{results_name} lacks {} of the {} outputs: {}{}",
            missing.len(),
            outputs.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        )));
    }
    let mut grades = Vec::new();
    for (name, (dtype, shape, expected)) in &set {
        let Some(group) = name.strip_suffix(".expected") else {
            continue;
        };
        let dt = match *dtype {
            "BF16" => Dtype::Bf16,
            "F16" => Dtype::F16,
            "F32" => Dtype::F32,
            other => {
                return Err(Error::Parameter(format!(
                    "{vectors_name}: tensor {name} has dtype {other}"
                )))
            }
        };
        let classes = match find(&set, &format!("{group}.classes")) {
            Some(("U16", s, b)) if &s == shape => b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<u16>>(),
            _ => {
                return Err(Error::Parameter(format!(
                    "{vectors_name} has no U16 {group}.classes of shape {shape:?}"
                )))
            }
        };
        let output = format!("{group}.output");
        let (odt, oshape, obytes) = find(&got, &output).expect("checked above");
        if odt != *dtype || &oshape != shape {
            return Err(Error::Parameter(format!(
                "{results_name}: tensor {output} is {odt} {oshape:?} where {dtype} {shape:?} was expected"
            )));
        }
        grades.push(grade_group(
            group,
            dt,
            &patterns(dt, expected),
            &classes,
            &patterns(dt, obytes),
        ));
    }
    grades.sort_by(|a, b| a.group.cmp(&b.group));
    if grades.is_empty() {
        return Err(Error::Parameter(format!(
            "{vectors_name} holds no <group>.expected tensor"
        )));
    }
    Ok(grades)
}
