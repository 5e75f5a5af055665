//! The CPU path beside candle 0.11's bf16 `candle_nn::rotary_emb::rope_i`, on the same data in
//! one process (docs/CONTRACT.md §5's CPU target: bfrope ≥ 3× candle, bit-exact).
//!
//! Run: `cargo run --release --manifest-path benches/candle/Cargo.toml [-- --reps N]
//! [--batch B --heads H --seq S --dim D]` (default `[1, 32, 4096, 128]`, 10 reps).
//!
//! The tensor is `[batch, heads, seq, head_dim]` (candle's layout; bfrope takes it as `batch ·
//! heads` sequences of one head, the same pairs at the same positions), bf16 activations drawn
//! from a fixed-seed normal distribution; the table is bfrope's exact-angle f32 table, which
//! candle receives rounded to bf16 (its bf16 path takes cos and sin in the tensor's dtype).
//! Both run multithreaded as they come (candle: rayon's pool; bfrope: one thread per core).
//! Prints the best of N reps of each in ms and GB/s (the tensor read and written once plus the
//! f32 table read once, the same byte count for all), the ratio to candle, and how many of
//! candle's outputs differ from bfrope's exact ones (also against the exact result with the
//! bf16-rounded table, which isolates candle's step-by-step bf16 arithmetic).

use std::time::Instant;

use bfrope::{cpu, Direction, Positions, RopeCall, RopeShape, RopeTable, TableSpec};
use candle_core::{Device, Tensor};
use half::bf16;

/// Token `s` of every sequence at table row `s`.
static FROM_0: Positions = Positions::Offset(0);

fn arg(args: &[String], flag: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} {v}: not a count"))
        })
        .unwrap_or(default)
}

/// Best wall time of `reps` runs of `f`, in seconds; `f` gets `true` for the timed part and
/// `false` for an untimed reset before it.
fn best_of(reps: usize, mut f: impl FnMut(bool)) -> f64 {
    (0..reps)
        .map(|_| {
            f(false);
            let t = Instant::now();
            f(true);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// bf16 `N(0, 1)` samples from a fixed seed (xorshift, Box–Muller).
fn activations(n: usize) -> Vec<u16> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) * 2f64.powi(-53)
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            let g = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            bf16::from_f64(g).to_bits()
        })
        .collect()
}

fn ulp_key(h: u16) -> i32 {
    // Ordered integer line of bf16 patterns: −0 and +0 both 0.
    if h & 0x8000 != 0 {
        -((h & 0x7FFF) as i32)
    } else {
        h as i32
    }
}

/// Elements that differ, and the largest distance in ulp among finite ones.
fn differences(a: &[u16], b: &[u16]) -> (usize, u32) {
    let mut count = 0;
    let mut max = 0;
    for (&x, &y) in a.iter().zip(b) {
        if x != y {
            count += 1;
            let finite = |h: u16| h & 0x7F80 != 0x7F80;
            if finite(x) && finite(y) {
                max = max.max(ulp_key(x).abs_diff(ulp_key(y)));
            }
        }
    }
    (count, max)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let reps = arg(&args, "--reps", 10).max(1);
    let batch = arg(&args, "--batch", 1);
    let heads = arg(&args, "--heads", 32);
    let seq = arg(&args, "--seq", 4096);
    let dim = arg(&args, "--dim", 128);
    let n = batch * heads * seq * dim;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "[{batch},{heads},{seq},{dim}] bf16, {cores} cores, best of {reps}; load average before: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );

    let x = activations(n);
    let table = RopeTable::build(&TableSpec::new(dim, seq))?;
    // Candle's layout [b, h, s, d] is `b · h` sequences of one head for bfrope.
    let shape = RopeShape::new(batch * heads, seq, 1, dim)?;
    let bytes = (2 * 2 * n + 8 * seq * dim / 2) as f64;

    // candle: x [b, h, s, d], cos and sin [s, d/2], all bf16.
    let dev = Device::Cpu;
    let xs: Vec<bf16> = x.iter().map(|&h| bf16::from_bits(h)).collect();
    let xt = Tensor::from_vec(xs, (batch, heads, seq, dim), &dev)?;
    let round = |k: usize| -> Vec<bf16> {
        table
            .cos_sin()
            .iter()
            .map(|cs| bf16::from_f32(cs[k]))
            .collect()
    };
    let (cos16, sin16) = (round(0), round(1));
    let cos = Tensor::from_vec(cos16.clone(), (seq, dim / 2), &dev)?;
    let sin = Tensor::from_vec(sin16.clone(), (seq, dim / 2), &dev)?;
    let mut candle_out = None;
    let t_candle = best_of(reps, |timed| {
        if timed {
            candle_out = Some(candle_nn::rotary_emb::rope_i(&xt, &cos, &sin).expect("rope_i"));
        }
    });
    let candle_bits: Vec<u16> = candle_out
        .expect("ran")
        .flatten_all()?
        .to_vec1::<bf16>()?
        .into_iter()
        .map(|v| v.to_bits())
        .collect();

    // bfrope, out of place (a new buffer, as candle returns one) and in place.
    let mut exact = Vec::new();
    let t_out = best_of(reps, |timed| {
        if timed {
            exact = cpu::apply(&RopeCall::new(shape.into(), &FROM_0, &table), &x).expect("rotate");
        }
    });
    let mut buf = x.clone();
    let t_in = best_of(reps, |timed| {
        if timed {
            cpu::apply_in_place(&RopeCall::new(shape.into(), &FROM_0, &table), &mut buf)
                .expect("rotate");
        } else {
            buf.copy_from_slice(&x);
        }
    });
    assert_eq!(buf, exact, "in place and out of place agree");

    // The exact scalar reference pair by pair on every core: the bits, and what the blocks save.
    let mut scalar = x.clone();
    let t_scalar = best_of(1, |timed| {
        if !timed {
            scalar.copy_from_slice(&x);
        } else {
            let per = (batch * heads * seq).div_ceil(cores) * dim;
            std::thread::scope(|s| {
                for (k, chunk) in scalar.chunks_mut(per).enumerate() {
                    let table = &table;
                    s.spawn(move || {
                        for (t, token) in chunk.chunks_exact_mut(dim).enumerate() {
                            let row = &table.cos_sin()[((k * per / dim + t) % seq) * (dim / 2)..];
                            for (p, &[c, sn]) in token.chunks_exact_mut(2).zip(row) {
                                let (a, b) =
                                    cpu::rotate_pair(p[0], p[1], c, sn, Direction::Forward);
                                p[0] = a;
                                p[1] = b;
                            }
                        }
                    });
                }
            });
        }
    });
    let (blocks_vs_scalar, _) = differences(&exact, &scalar);
    assert_eq!(
        blocks_vs_scalar, 0,
        "the blocks and rotate_pair agree bit for bit"
    );

    // The exact result with candle's bf16 table, to count what candle's arithmetic alone costs.
    let c32: Vec<f32> = cos16.iter().map(|v| v.to_f32()).collect();
    let s32: Vec<f32> = sin16.iter().map(|v| v.to_f32()).collect();
    let table16 = RopeTable::from_cos_sin(&c32, &s32, seq, dim / 2)?;
    let exact16 = cpu::apply(&RopeCall::new(shape.into(), &FROM_0, &table16), &x)?;

    let row = |name: &str, t: f64| {
        println!(
            "{name:<44} {:>8.2} ms {:>7.2} GB/s {:>6.2}x candle",
            t * 1e3,
            bytes / t * 1e-9,
            t_candle / t
        );
    };
    row("candle 0.11 rope_i bf16 (out of place)", t_candle);
    row("bfrope cpu::apply (out of place)", t_out);
    row("bfrope cpu::apply_in_place", t_in);
    row("bfrope rotate_pair per pair (1 rep)", t_scalar);
    let (d, u) = differences(&candle_bits, &exact);
    println!(
        "candle vs bfrope exact (f32 table): {d} of {n} outputs differ ({:.1}%), up to {u} ulp",
        100.0 * d as f64 / n as f64
    );
    let (d, u) = differences(&candle_bits, &exact16);
    println!(
        "candle vs exact with candle's bf16 table: {d} of {n} differ ({:.1}%), up to {u} ulp",
        100.0 * d as f64 / n as f64
    );
    println!("bfrope blocks vs rotate_pair: {blocks_vs_scalar} differ");
    Ok(())
}
