//! The exhaustive 16-bit sweep shared by `specials`, `hf_mode` (bf16), `floats` and
//! `hf_floats` (f16): every one of the 65,536 patterns as `x0` against a list of edge (and
//! seeded random) `x1` partners at a list of angles, as interleaved pairs in one tensor
//! `[1, angles, heads, head_dim]` whose table row `a` holds angle `a` in every frequency.
//!
//! What differs between the tests (the dtype's edge partners, the seed, how many random
//! partners, the angles, the oracle) is passed in; the layout, the table, the parallel oracle
//! evaluation, the case names and the bit comparison are written once here.

use std::sync::OnceLock;

use bfrope::{Direction, Pairing, RopeShape, RopeTable, TensorView};
use rand::Rng;

/// An angle of the sweep: `(name, cos, sin)` as f32 values.
pub type Angle = (String, f32, f32);

/// The bf16 `x1` partners of every `x0` pattern.
#[rustfmt::skip]
pub const EDGE_X1_BF16: [(u16, &str); 13] = [
    (0x0000, "+0"),
    (0x8000, "-0"),
    (0x3F80, "+1"),
    (0xBF80, "-1"),
    (0x0001, "min_subnormal"),
    (0x8001, "-min_subnormal"),
    (0x007F, "max_subnormal"),
    (0x0080, "min_normal"),
    (0x7F7F, "max_finite"),
    (0x7F80, "+inf"),
    (0xFF80, "-inf"),
    (0x7FC0, "nan"),
    (0xFFA5, "-nan_payload"),
];

/// The f16 `x1` partners of every `x0` pattern.
#[rustfmt::skip]
pub const EDGE_X1_F16: [(u16, &str); 14] = [
    (0x0000, "+0"),
    (0x8000, "-0"),
    (0x3C00, "+1"),
    (0xBC00, "-1"),
    (0x0001, "min_subnormal"),
    (0x8001, "-min_subnormal"),
    (0x03FF, "max_subnormal"),
    (0x0400, "min_normal"),
    (0x7BFF, "max_finite"),
    (0xFBFF, "-max_finite"),
    (0x7C00, "+inf"),
    (0xFC00, "-inf"),
    (0x7E00, "nan"),
    (0xFD01, "-snan_payload"),
];

/// Every 16-bit `x0` × the `x1` partners × the angles, as interleaved pairs.
pub struct Sweep {
    /// The partners, named: the edges, then the seeded random ones.
    pub x1: Vec<(u16, String)>,
    pub angles: Vec<Angle>,
    /// Pairs per angle: 65,536 × |x1|.
    pub per_angle: usize,
    /// Pair `a·per_angle + j` = (x0 = j % 65536, x1 = x1[j / 65536]), interleaved.
    pub x: Vec<u16>,
}

impl Sweep {
    /// The sweep of `edges` plus `random_x1` partners drawn from `rng(seed)`, at `angles`.
    pub fn new(seed: u64, edges: &[(u16, &str)], random_x1: usize, angles: Vec<Angle>) -> Self {
        let mut r = super::rng(seed);
        let mut x1: Vec<(u16, String)> = edges.iter().map(|&(b, n)| (b, n.to_string())).collect();
        for _ in 0..random_x1 {
            let b: u16 = r.random();
            x1.push((b, format!("random_{b:#06x}")));
        }
        let per_angle = 65536 * x1.len();
        let mut x = Vec::with_capacity(2 * per_angle * angles.len());
        for _ in &angles {
            for &(b, _) in &x1 {
                for x0 in 0..=u16::MAX {
                    x.push(x0);
                    x.push(b);
                }
            }
        }
        Self {
            x1,
            angles,
            per_angle,
            x,
        }
    }

    /// Heads of `head_dim` per token.
    pub fn heads(&self, head_dim: usize) -> usize {
        2 * self.per_angle / head_dim
    }

    /// `[1, angles, heads, head_dim]`: token `a` holds angle `a`'s cases.
    pub fn shape(&self, head_dim: usize) -> RopeShape {
        RopeShape::new(1, self.angles.len(), self.heads(head_dim), head_dim).unwrap()
    }

    /// The contiguous BSHD view of [`Sweep::shape`].
    pub fn view(&self, head_dim: usize) -> TensorView {
        TensorView::bshd(1, self.angles.len(), self.heads(head_dim), head_dim)
    }

    /// Row `a` holds angle `a` in each of the `pairs` frequencies.
    pub fn table(&self, pairs: usize) -> RopeTable {
        let rep = |f: fn(&Angle) -> f32| -> Vec<f32> {
            self.angles
                .iter()
                .flat_map(|a| std::iter::repeat_n(f(a), pairs))
                .collect()
        };
        RopeTable::from_cos_sin(&rep(|a| a.1), &rep(|a| a.2), self.angles.len(), pairs).unwrap()
    }

    /// Where element `e` of the interleaved pair list (pair `e / 2`, half `e % 2`) lies in
    /// heads of `head_dim` with `pairing`: half-split heads keep pair `i`'s `x0` at `i` and its
    /// `x1` at `i + head_dim / 2`.
    pub fn place(head_dim: usize, pairing: Pairing) -> impl Fn(usize) -> usize + Copy + Sync {
        let pairs = head_dim / 2;
        move |e| match pairing {
            Pairing::Interleaved => e,
            Pairing::HalfSplit => {
                let (pair, half) = (e / 2, e % 2);
                (pair / pairs) * head_dim + pair % pairs + half * pairs
            }
        }
    }

    /// The sweep's data laid out in heads of `head_dim` with `pairing` (see [`Sweep::place`]).
    pub fn laid_out(&self, head_dim: usize, pairing: Pairing) -> Vec<u16> {
        let place = Self::place(head_dim, pairing);
        let mut x = vec![0u16; self.x.len()];
        for (e, &v) in self.x.iter().enumerate() {
            x[place(e)] = v;
        }
        x
    }

    /// The inverse of [`Sweep::laid_out`]: `y` back to interleaved pairs.
    pub fn gathered<T: Copy>(y: &[T], head_dim: usize, pairing: Pairing) -> Vec<T> {
        let place = Self::place(head_dim, pairing);
        (0..y.len()).map(|e| y[place(e)]).collect()
    }

    /// `oracle(x0, x1, cos bits, sin bits, inverse)` of every pair, interleaved, on every core.
    pub fn expected<T: Copy + Default + Send>(
        &self,
        direction: Direction,
        oracle: impl Fn(u16, u16, u32, u32, bool) -> (T, T) + Sync,
    ) -> Vec<T> {
        let inverse = direction == Direction::Inverse;
        let mut y = vec![T::default(); self.x.len()];
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.x.len().div_ceil(threads * 2) * 2;
        std::thread::scope(|s| {
            for (k, out) in y.chunks_mut(chunk).enumerate() {
                let oracle = &oracle;
                s.spawn(move || {
                    for (j, pair) in out.chunks_exact_mut(2).enumerate() {
                        let w = (k * chunk) / 2 + j;
                        let (_, cos, sin) = &self.angles[w / self.per_angle];
                        let (y0, y1) = oracle(
                            self.x[2 * w],
                            self.x[2 * w + 1],
                            cos.to_bits(),
                            sin.to_bits(),
                            inverse,
                        );
                        pair[0] = y0;
                        pair[1] = y1;
                    }
                });
            }
        });
        y
    }

    /// The name of pair `w`: `rope[{prefix}x0=…,x1=…,{angle},{direction}]`.
    pub fn name(&self, w: usize, prefix: &str, direction: Direction) -> String {
        let j = w % self.per_angle;
        format!(
            "rope[{prefix}x0={:#06x},x1={},{},{direction:?}]",
            j % 65536,
            self.x1[j / 65536].1,
            self.angles[w / self.per_angle].0
        )
    }
}

/// A value computed once per direction (the oracle's output of a sweep), in a `static`.
pub struct PerDirection<T> {
    forward: OnceLock<T>,
    inverse: OnceLock<T>,
}

impl<T> PerDirection<T> {
    pub const fn new() -> Self {
        Self {
            forward: OnceLock::new(),
            inverse: OnceLock::new(),
        }
    }

    /// The value of `direction`, computed by `init` on first use.
    pub fn get(&self, direction: Direction, init: impl FnOnce() -> T) -> &T {
        match direction {
            Direction::Forward => &self.forward,
            Direction::Inverse => &self.inverse,
        }
        .get_or_init(init)
    }
}

/// Runs `f(i)` for every `i < n` on every core, collecting the results in order.
pub fn par_map<T: Send + Default + Clone>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); n];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (k, part) in out.chunks_mut(chunk).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, o) in part.iter_mut().enumerate() {
                    *o = f(k * chunk + j);
                }
            });
        }
    });
    out
}

/// Panics with the first mismatches (element `i` named `name(i / 2).y{i % 2}`) unless
/// `got == want` bit for bit; `oracle` names the reference in the messages.
pub fn compare<T: PartialEq + Copy + std::fmt::LowerHex>(
    case: &str,
    oracle: &str,
    got: &[T],
    want: &[T],
    name: impl Fn(usize) -> String,
) {
    assert_eq!(got.len(), want.len(), "{case}: output length");
    // `0x` and every hex digit of the type: 0x7fc0, 0x7fc00000.
    let width = 2 + 2 * std::mem::size_of::<T>();
    let mut bad = Vec::new();
    let mut count = 0usize;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g != w {
            count += 1;
            if bad.len() < 12 {
                bad.push(format!(
                    "{}.y{} = {g:#0width$x}, {oracle} {w:#0width$x}",
                    name(i / 2),
                    i % 2
                ));
            }
        }
    }
    eprintln!(
        "{case}: {count} mismatches vs {oracle} over {} elements",
        got.len()
    );
    assert!(
        count == 0,
        "{case}: {count} mismatches vs {oracle}, first:\n{}",
        bad.join("\n")
    );
}
