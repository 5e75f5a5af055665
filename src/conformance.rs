//! Conformance data: the inputs `bfrope conform` and the web page run on a real adapter and
//! compare bit for bit with the CPU path.
//!
//! - [`special_sweep`]: every one of the 65,536 bf16 bit patterns as `x0` against each `x1` in
//!   [`SWEEP_X1`] (signed zeros, ±1, the smallest and largest subnormals, the smallest normal,
//!   a large finite value, ±inf and NaN), at each angle of [`SWEEP_ANGLES`].
//! - [`random_case`]: seeded random bf16 data of normal magnitude with special values
//!   sprinkled in, rotated by an exact base-10000 table at an offset.
//! - [`random_bits_case`]: seeded random bit patterns with a torch-mode table far out.
//! - [`special_table_case`]: every pair of 24 special bf16 values against 196 special
//!   `(cos, sin)` pairs (tables need not be rotations).
//!
//! [`suite`] lists them, one suite for both callers; [`FINGERPRINTS`] pins the CPU path's
//! output on each, so a build that checks itself against its own CPU path (the page on its
//! CPU fallback) still has a reference.
//!
//! Everything here is plain computation (no files, no threads), so it builds for wasm32.

use crate::error::Result;
use crate::shape::{Direction, Precision, RopeShape};
use crate::spec::{Positions, RopeCall};
use crate::table::{AngleMode, RopeTable, TableSpec};

/// The `x1` partners of the sweep: +0, −0, +1, −1, the smallest subnormal `0x0001`, the largest
/// subnormal `0x007F`, the smallest normal `0x0080`, a large finite `0x7F7F`, +inf, −inf, NaN.
pub const SWEEP_X1: [u16; 11] = [
    0x0000, 0x8000, 0x3F80, 0xBF80, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0,
];

/// The angles of the sweep, in radians, with their names: 0, π/4, π/2, 1 rad, and the
/// angles of positions 10⁵ and 10⁶ at frequency 1 (large arguments of cos and sin).
pub const SWEEP_ANGLES: [(&str, f64); 6] = [
    ("0", 0.0),
    ("pi/4", core::f64::consts::FRAC_PI_4),
    ("pi/2", core::f64::consts::FRAC_PI_2),
    ("1 rad", 1.0),
    ("pos 1e5", 1.0e5),
    ("pos 1e6", 1.0e6),
];

/// Head dimension of the sweep tensor.
pub const SWEEP_HEAD_DIM: usize = 128;

/// One conformance input: a contiguous BSHD tensor, its table and where its tokens are.
#[derive(Debug, Clone)]
pub struct Case {
    /// A short name for reports.
    pub name: String,
    /// The tensor shape.
    pub shape: RopeShape,
    /// The rotation table.
    pub table: RopeTable,
    /// The table row of each token.
    pub positions: Positions,
    /// The input bits, `shape.elements()` of them.
    pub x: Vec<u16>,
}

impl Case {
    /// The call that rotates this case: interleaved over the whole head, in `direction`
    /// and `precision`.
    pub fn call(&self, direction: Direction, precision: Precision) -> RopeCall<'_> {
        RopeCall::new(self.shape.into(), &self.positions, &self.table)
            .with_direction(direction)
            .with_precision(precision)
    }

    /// Rotates on the CPU path, the reference every adapter must match.
    pub fn expected(&self, direction: Direction) -> Result<Vec<u16>> {
        crate::cpu::apply(&self.call(direction, Precision::Exact), &self.x)
    }

    /// The inputs of the pair holding element `index`: `(x0, x1, cos, sin)`.
    pub fn pair_inputs(&self, index: usize) -> (u16, u16, f32, f32) {
        let first = index & !1;
        let token = index / (self.shape.heads * self.shape.head_dim);
        let seq = self.shape.seq;
        let row = self.positions.row(token / seq, token % seq, seq);
        let column = (index % self.shape.head_dim) / 2;
        let [c, sn] = self.table.get(row, column);
        (self.x[first], self.x[first + 1], c, sn)
    }

    /// Compares `got` with `expected` pair by pair; returns the number of differing pairs
    /// and the first `keep` of them.
    pub fn compare(
        &self,
        direction: Direction,
        expected: &[u16],
        got: &[u16],
        keep: usize,
    ) -> (usize, Vec<Mismatch>) {
        let mut count = 0;
        let mut first = Vec::new();
        for (p, (e, g)) in expected
            .chunks_exact(2)
            .zip(got.chunks_exact(2))
            .enumerate()
        {
            if e != g {
                count += 1;
                if first.len() < keep {
                    let (x0, x1, cos, sin) = self.pair_inputs(2 * p);
                    first.push(Mismatch {
                        index: 2 * p,
                        x0,
                        x1,
                        cos,
                        sin,
                        direction,
                        expected: (e[0], e[1]),
                        got: (g[0], g[1]),
                    });
                }
            }
        }
        if expected.len() != got.len() {
            count += expected.len().abs_diff(got.len()).div_ceil(2);
        }
        (count, first)
    }
}

/// A pair whose result differs from the reference, with its inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mismatch {
    /// Element index of `y0` in the tensor.
    pub index: usize,
    /// Input bits.
    pub x0: u16,
    /// Input bits.
    pub x1: u16,
    /// Table cosine.
    pub cos: f32,
    /// Table sine (before the inverse negates it).
    pub sin: f32,
    /// Direction of the run.
    pub direction: Direction,
    /// Reference `(y0, y1)` bits.
    pub expected: (u16, u16),
    /// The adapter's `(y0, y1)` bits.
    pub got: (u16, u16),
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "element {}: x0=0x{:04X} x1=0x{:04X} cos={:e} (0x{:08X}) sin={:e} (0x{:08X}) {:?}: expected (0x{:04X}, 0x{:04X}), got (0x{:04X}, 0x{:04X})",
            self.index,
            self.x0,
            self.x1,
            self.cos,
            self.cos.to_bits(),
            self.sin,
            self.sin.to_bits(),
            self.direction,
            self.expected.0,
            self.expected.1,
            self.got.0,
            self.got.1
        )
    }
}

/// The special-value sweep: shape `[1, 6, 11264, 128]`, one sequence position per angle of
/// [`SWEEP_ANGLES`] (every column of a row has that angle); in each token, pair `p` holds
/// `x0 = p / 11` (all 65,536 patterns) and `x1 = SWEEP_X1[p % 11]`.
pub fn special_sweep() -> Case {
    let pairs_per_token = 65_536 * SWEEP_X1.len();
    let pairs = SWEEP_HEAD_DIM / 2;
    let heads = pairs_per_token / pairs;
    let shape =
        RopeShape::new(1, SWEEP_ANGLES.len(), heads, SWEEP_HEAD_DIM).expect("valid sweep shape");
    let mut cos = Vec::with_capacity(SWEEP_ANGLES.len() * pairs);
    let mut sin = Vec::with_capacity(SWEEP_ANGLES.len() * pairs);
    for &(_, a) in &SWEEP_ANGLES {
        cos.extend(core::iter::repeat_n(libm::cos(a) as f32, pairs));
        sin.extend(core::iter::repeat_n(libm::sin(a) as f32, pairs));
    }
    let table =
        RopeTable::from_cos_sin(&cos, &sin, SWEEP_ANGLES.len(), pairs).expect("valid sweep table");
    let mut token = Vec::with_capacity(2 * pairs_per_token);
    for p in 0..pairs_per_token {
        token.push((p / SWEEP_X1.len()) as u16);
        token.push(SWEEP_X1[p % SWEEP_X1.len()]);
    }
    let mut x = Vec::with_capacity(shape.elements());
    for _ in 0..SWEEP_ANGLES.len() {
        x.extend_from_slice(&token);
    }
    Case {
        name: "special-value sweep".into(),
        shape,
        table,
        positions: Positions::Offset(0),
        x,
    }
}

/// A small deterministic generator (SplitMix64), the same on every target.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller with `libm`, identical bits on every target).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
    }
}

/// Special values sprinkled into random data: signed zeros, subnormals, ±inf, NaNs, extremes.
pub const SPRINKLE: [u16; 12] = [
    0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81,
];

/// `n` seeded bf16 values, normal with standard deviation 1 (activation-like), with one in
/// about every 1000 replaced by a value of [`SPRINKLE`].
pub fn random_bf16(seed: u64, n: usize) -> Vec<u16> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if r % 1000 == 0 {
                SPRINKLE[((r >> 32) % SPRINKLE.len() as u64) as usize]
            } else {
                half::bf16::from_f64(rng.next_normal()).to_bits()
            }
        })
        .collect()
}

/// Seeded random data `[2, 1024, 8, 128]` with an exact base-10000 table whose rows start at
/// position 0 and are read from row 4000 on (positions 4000..5024).
pub fn random_case(seed: u64) -> Case {
    let shape = RopeShape::new(2, 1024, 8, 128).expect("valid shape");
    let row_offset = 4000;
    let mut spec = TableSpec::new(shape.head_dim, row_offset + shape.seq);
    spec.angles = AngleMode::Exact;
    let table = RopeTable::build(&spec).expect("valid table");
    let x = random_bf16(seed, shape.elements());
    Case {
        name: format!("random data (seed {seed})"),
        shape,
        table,
        positions: Positions::Offset(row_offset),
        x,
    }
}

/// Seeded uniformly random bit patterns `[1, 512, 8, 128]` (every class: subnormals, NaN
/// payloads, huge and tiny values) with a torch-mode base-500000 table at positions
/// 100000..100512.
pub fn random_bits_case(seed: u64) -> Case {
    let shape = RopeShape::new(1, 512, 8, 128).expect("valid shape");
    let spec = TableSpec {
        base: 500_000.0,
        rotary_dim: shape.head_dim,
        first_position: 100_000,
        rows: shape.seq,
        angles: AngleMode::Torch,
    };
    let table = RopeTable::build(&spec).expect("valid table");
    let mut rng = SplitMix64(seed ^ 0xB175_B175_B175_B175);
    let mut x = Vec::with_capacity(shape.elements());
    while x.len() < shape.elements() {
        let r = rng.next_u64();
        x.extend([
            r as u16,
            (r >> 16) as u16,
            (r >> 32) as u16,
            (r >> 48) as u16,
        ]);
    }
    x.truncate(shape.elements());
    Case {
        name: format!("random bit patterns (seed {seed})"),
        shape,
        table,
        positions: Positions::Offset(0),
        x,
    }
}

/// The special bf16 inputs of [`special_table_case`]: signed zeros, the smallest and largest
/// subnormals, the smallest normals, ±1 and neighbours, π, the largest finite values, ±inf,
/// NaNs with and without payload, and a few ordinary values.
pub const SPECIAL_BF16: [u16; 24] = [
    0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x8080, 0x3F80, 0xBF80, 0x3F81, 0x3FC0, 0x4049,
    0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0100, 0x1F80, 0x5F80, 0x3DCD, 0xC2F7,
];

/// The special table values of [`special_table_case`]: signed zeros, ±1, 1/2, ±1/√2, the
/// smallest normal and subnormal f32, the f32 just below 1, 2⁻¹³, 0.1, −√3/2 and 1/3.
pub const SPECIAL_TABLE_F32: [f32; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    core::f32::consts::FRAC_1_SQRT_2,
    -core::f32::consts::FRAC_1_SQRT_2,
    f32::MIN_POSITIVE,
    1.0e-45,
    1.0 - f32::EPSILON / 2.0,
    1.0 / 8192.0,
    0.1,
    -0.866_025_4,
    1.0 / 3.0,
];

/// Every pair of [`SPECIAL_BF16`] values against every `(cos, sin)` pair of
/// [`SPECIAL_TABLE_F32`] values (tables need not be unit rotations): shape
/// `[1, 196, 1, 1152]`, row `s` of the table holds the `s`-th `(cos, sin)` combination in
/// every column, and every token holds the 576 input pairs.
pub fn special_table_case() -> Case {
    let n = SPECIAL_BF16.len();
    let pairs = n * n;
    let combos: Vec<(f32, f32)> = SPECIAL_TABLE_F32
        .iter()
        .flat_map(|&c| SPECIAL_TABLE_F32.iter().map(move |&s| (c, s)))
        .collect();
    let shape = RopeShape::new(1, combos.len(), 1, 2 * pairs).expect("valid shape");
    let mut cos = Vec::with_capacity(combos.len() * pairs);
    let mut sin = Vec::with_capacity(combos.len() * pairs);
    for &(c, s) in &combos {
        cos.extend(core::iter::repeat_n(c, pairs));
        sin.extend(core::iter::repeat_n(s, pairs));
    }
    let table = RopeTable::from_cos_sin(&cos, &sin, combos.len(), pairs).expect("valid table");
    let token: Vec<u16> = (0..pairs)
        .flat_map(|k| [SPECIAL_BF16[k / n], SPECIAL_BF16[k % n]])
        .collect();
    let x = token
        .iter()
        .copied()
        .cycle()
        .take(shape.elements())
        .collect();
    Case {
        name: "special values x special tables".into(),
        shape,
        table,
        positions: Positions::Offset(0),
        x,
    }
}

/// How much of the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// The special tables and random bit patterns (under a million elements): what the web
    /// page runs when it loads.
    Quick,
    /// Every case: the 65,536-pattern sweep first, then random data, random bit patterns
    /// and the special tables. `bfrope conform` and the page's "full suite" run it.
    Full,
}

/// The conformance suite, one list for `bfrope conform` and the web page; each case runs
/// forward and inverse. `seed` seeds the random cases ([`SUITE_SEED`] has fingerprints).
pub fn suite(size: Suite, seed: u64) -> Vec<Case> {
    match size {
        Suite::Quick => vec![special_table_case(), random_bits_case(seed)],
        Suite::Full => vec![
            special_sweep(),
            random_case(seed),
            random_bits_case(seed),
            special_table_case(),
        ],
    }
}

/// The seed whose random cases have [`FINGERPRINTS`].
pub const SUITE_SEED: u64 = 1;

/// FNV-1a (64-bit) of the little-endian bytes of `bits`, the same on every target.
pub fn fnv1a(bits: &[u16]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bits {
        for byte in b.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

/// [`fnv1a`] of the CPU path's output on each case of the full suite with [`SUITE_SEED`],
/// computed natively (where the CPU path is checked against an independent BigInt oracle)
/// and pinned by a test. A build whose CPU path gives other bits (the wasm page on its CPU
/// fallback, say) is caught by comparing with these rather than with itself.
pub const FINGERPRINTS: [(&str, Direction, u64); 8] = [
    (
        "special-value sweep",
        Direction::Forward,
        0x851B_CF8F_6E56_5959,
    ),
    (
        "special-value sweep",
        Direction::Inverse,
        0xB2C1_7593_7942_44E1,
    ),
    (
        "random data (seed 1)",
        Direction::Forward,
        0xBB71_B451_BB0E_E935,
    ),
    (
        "random data (seed 1)",
        Direction::Inverse,
        0x37CC_23E1_1EA7_B411,
    ),
    (
        "random bit patterns (seed 1)",
        Direction::Forward,
        0x2004_F907_9D0B_2AA1,
    ),
    (
        "random bit patterns (seed 1)",
        Direction::Inverse,
        0x670A_6750_8EBB_EAA9,
    ),
    (
        "special values x special tables",
        Direction::Forward,
        0x7145_D727_0EF3_EF73,
    ),
    (
        "special values x special tables",
        Direction::Inverse,
        0x0C47_FC97_4D58_6FE3,
    ),
];

impl Case {
    /// The recorded [`FINGERPRINTS`] entry of this case's CPU output in `direction`, if the
    /// case is one of the suite's with [`SUITE_SEED`].
    pub fn fingerprint(&self, direction: Direction) -> Option<u64> {
        FINGERPRINTS
            .iter()
            .find(|(name, d, _)| *name == self.name && *d == direction)
            .map(|&(_, _, h)| h)
    }
}

// ---------------------------------------------------------------------------------------------
// Error maps: bf16 RoPE computed three ways against the real-number result, in ulps (the page's
// precision maps).

/// bf16 RoPE outputs computed three ways, compared with the exact value of the same rotation
/// (real arithmetic on the same f32 table). Each map is `[rows, pairs]`: for each position and
/// frequency, the largest error over heads and both outputs, in bf16 ulps of the exact value.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorMaps {
    /// Positions (rows of each map).
    pub rows: usize,
    /// Frequencies per head (columns of each map).
    pub pairs: usize,
    /// Outputs compared (elements of the input).
    pub outputs: usize,
    /// The maps of the three ways, in the order of [`ERROR_MAP_NAMES`].
    pub maps: [Vec<f32>; 3],
    /// The largest entry of each map.
    pub max: [f32; 3],
    /// How many outputs of each way differ in their bits from the correctly rounded result.
    pub differ: [u32; 3],
}

/// The three ways of [`ErrorMaps`]: a kernel's output, the `hf` arithmetic's output, and plain
/// f32 arithmetic with one rounding to bf16 (what most frameworks' kernels do).
pub const ERROR_MAP_NAMES: [&str; 3] = ["kernel", "hf", "f32"];

/// `n` bf16 patterns of standard normal values, from `seed`.
pub fn normal_bf16(seed: u64, n: usize) -> Vec<u16> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|_| half::bf16::from_f64(rng.next_normal()).to_bits())
        .collect()
}

/// The error maps of `kernel` and `hf` (outputs of an interleaved bf16 rotation of `x`, shape
/// `shape` in BSHD, by `table` from row 0) and of plain f32 arithmetic, against the exact value;
/// `exact` is the correctly rounded output (the CPU path's), which `differ` counts against.
pub fn error_maps(
    table: &RopeTable,
    shape: RopeShape,
    x: &[u16],
    kernel: &[u16],
    hf: &[u16],
    exact: &[u16],
) -> ErrorMaps {
    fn widen(h: u16) -> f64 {
        f32::from_bits((h as u32) << 16) as f64
    }
    // bf16 ulp at the magnitude of v (the subnormal spacing below 2^-126).
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
    fn plain_f32(a: u16, b: f32, c: u16, d: f32) -> u16 {
        let y = f32::from_bits((a as u32) << 16) * b + f32::from_bits((c as u32) << 16) * d;
        half::bf16::from_f32(y).to_bits()
    }
    let (rows, head_dim, heads) = (shape.seq, shape.head_dim, shape.heads);
    let pairs = shape.pairs();
    let mut maps = [
        vec![0f32; rows * pairs],
        vec![0f32; rows * pairs],
        vec![0f32; rows * pairs],
    ];
    let mut differ = [0u32; 3];
    for (t, tok) in x.chunks_exact(heads * head_dim).enumerate().take(rows) {
        for (h, head) in tok.chunks_exact(head_dim).enumerate() {
            for i in 0..pairs {
                let [c, s] = table.get(t, i);
                let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                let real = [
                    widen(x0) * c as f64 - widen(x1) * s as f64,
                    widen(x0) * s as f64 + widen(x1) * c as f64,
                ];
                let k = (t * heads + h) * head_dim + 2 * i;
                let outs = [
                    [kernel[k], kernel[k + 1]],
                    [hf[k], hf[k + 1]],
                    [plain_f32(x0, c, x1, -s), plain_f32(x0, s, x1, c)],
                ];
                for ((m, n), out) in maps.iter_mut().zip(&mut differ).zip(outs) {
                    let e = ulps(out[0], real[0]).max(ulps(out[1], real[1]));
                    let cell = &mut m[t * pairs + i];
                    *cell = cell.max(e);
                    *n += (out[0] != exact[k]) as u32 + (out[1] != exact[k + 1]) as u32;
                }
            }
        }
    }
    let max = [0, 1, 2].map(|j| maps[j].iter().copied().fold(0f32, f32::max));
    ErrorMaps {
        rows,
        pairs,
        outputs: x.len(),
        maps,
        max,
        differ,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded fingerprints are the native CPU path's bits, case by case.
    #[test]
    fn fingerprints_match_the_native_cpu_path() {
        let cases = suite(Suite::Full, SUITE_SEED);
        let mut got = Vec::new();
        for case in &cases {
            for dir in [Direction::Forward, Direction::Inverse] {
                let hash = fnv1a(&case.expected(dir).expect("cpu rotate"));
                println!("(\"{}\", Direction::{dir:?}, 0x{hash:016X}),", case.name);
                got.push((case, dir, hash));
            }
        }
        assert_eq!(got.len(), FINGERPRINTS.len());
        for (case, dir, hash) in got {
            assert_eq!(
                case.fingerprint(dir),
                Some(hash),
                "{} {dir:?}: the CPU path's fingerprint changed",
                case.name
            );
        }
        let quick = suite(Suite::Quick, SUITE_SEED);
        assert!(quick
            .iter()
            .all(|c| c.fingerprint(Direction::Forward).is_some()));
    }

    /// The correctly rounded output is within half an ulp everywhere and differs from itself
    /// nowhere; plain f32 arithmetic with one rounding is not always correctly rounded.
    #[test]
    fn error_maps_of_the_exact_output() {
        let table = RopeTable::build(&TableSpec {
            base: 10000.0,
            rotary_dim: 64,
            first_position: 0,
            rows: 300,
            angles: AngleMode::Exact,
        })
        .unwrap();
        let shape = RopeShape::new(1, 300, 4, 64).unwrap();
        let x = normal_bf16(7, shape.elements());
        let positions = Positions::Offset(0);
        let call = RopeCall::new(shape.into(), &positions, &table);
        let exact = crate::cpu::apply(&call, &x).unwrap();
        let m = error_maps(&table, shape, &x, &exact, &exact, &exact);
        assert_eq!((m.rows, m.pairs, m.outputs), (300, 32, x.len()));
        assert_eq!(m.differ[0], 0);
        assert!(m.max[0] <= 0.5, "{}", m.max[0]);
        assert!(m.maps[0].iter().all(|&e| (0.0..=0.5).contains(&e)));
        assert!(
            m.differ[2] > 0 && m.max[2] > 0.5,
            "{:?} {:?}",
            m.differ,
            m.max
        );
    }
}
