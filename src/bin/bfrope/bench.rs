//! `bfrope bench`: exact, fast and a copy of the same bytes, side by side in one run, timed with
//! GPU timestamp queries (docs/CONTRACT.md §5, §7).
//!
//! For every shape × layout × pairing × dtype it times the kernel the library picks for the
//! call (a contiguous vec4 kernel for contiguous BSHD and BHSD tensors, interleaved or half-split,
//! also the general kernel there; the
//! general kernel otherwise) in `fast` and `exact` mode beside a vec4 copy of the tensor's
//! bytes, then checks the exact output against the CPU path. `--dtypes bf16,f16,f32`: each
//! dtype has its own seeded random data (mixed magnitudes, a sprinkle of specials) and
//! buffers, and its copy moves the same bytes as its kernel (f32 tensors are twice the bytes
//! of bf16 ones); f32 has no contiguous kernel, so its rows time the general kernel alone. Decode — q `[64,1,32,128]` and
//! GQA k `[64,1,8,128]` in one dispatch, positions in a GPU buffer — records many calls into
//! one compute pass and reports GPU µs per call and host µs to record one call.
//!
//! Bytes counted: a RoPE call reads and writes the tensor once and reads its table once; the
//! copy reads and writes the tensor once. Timings are medians over passes (the first pass of
//! each series warms clocks and caches and is not counted).

use std::process::ExitCode;
use std::time::Instant;

use bfrope::gpu::{Gpu, RecordTarget, RopeArgs, ViewArgs, ViewTensor};
use bfrope::{
    Direction, Pairing, Positions, Precision, RopeCall, RopeShape, RopeTable, Rotation, TableSpec,
    TensorView,
};

use crate::{CliError, CliResult};

/// The default shapes: four model-sized tensors and a 2 GiB one.
const FULL_SHAPES: [[usize; 4]; 5] = [
    [1, 4096, 32, 128],
    [4, 3000, 32, 128],
    [8, 4096, 32, 128],
    [16, 4096, 32, 128],
    [64, 4096, 32, 128],
];
/// `--quick`: small enough for lavapipe in seconds; an odd sequence length and head_dim 64.
const QUICK_SHAPES: [[usize; 4]; 2] = [[1, 256, 8, 128], [2, 100, 4, 64]];

/// Tensor layouts the bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// `[batch, seq, heads, head_dim]` in memory.
    Bshd,
    /// `[batch, heads, seq, head_dim]` in memory (Hugging Face's).
    Bhsd,
}

/// Pair conventions the bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PairingArg {
    /// `(x[2i], x[2i+1])`.
    Interleaved,
    /// `(x[i], x[i + R/2])`.
    Half,
}

/// Element types. bf16 and f16 take the contiguous vec4 kernels where the call allows; f32
/// (one element per word) always takes the general kernel, and its rows say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeArg {
    /// bfloat16, two per word.
    Bf16,
    /// IEEE half, two per word.
    F16,
    /// IEEE single, one per word.
    F32,
}

impl DtypeArg {
    fn name(self) -> &'static str {
        match self {
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
            Self::F32 => "f32",
        }
    }

    fn bytes(self) -> usize {
        self.dtype().size()
    }

    fn dtype(self) -> bfrope::Dtype {
        match self {
            Self::Bf16 => bfrope::Dtype::Bf16,
            Self::F16 => bfrope::Dtype::F16,
            Self::F32 => bfrope::Dtype::F32,
        }
    }
}

/// A tensor's host bits: bf16 or f16 patterns, or f32 patterns.
enum HostData {
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl HostData {
    fn bytes(&self) -> &[u8] {
        match self {
            HostData::U16(v) => bytemuck::cast_slice(v),
            HostData::U32(v) => bytemuck::cast_slice(v),
        }
    }

    /// The CPU path's output for `call` on these bits.
    fn expected(&self, call: &RopeCall) -> bfrope::Result<HostData> {
        Ok(match self {
            HostData::U16(v) => HostData::U16(bfrope::cpu::apply(call, v)?),
            HostData::U32(v) => HostData::U32(bfrope::cpu::apply(call, v)?),
        })
    }

    /// Elements of `got` (little-endian bytes, at least as long) that differ from these.
    fn mismatches(&self, got: &[u8]) -> usize {
        match self {
            HostData::U16(want) => got
                .chunks_exact(2)
                .zip(want)
                .filter(|(g, w)| u16::from_le_bytes([g[0], g[1]]) != **w)
                .count(),
            HostData::U32(want) => got
                .chunks_exact(4)
                .zip(want)
                .filter(|(g, w)| u32::from_le_bytes([g[0], g[1], g[2], g[3]]) != **w)
                .count(),
        }
    }
}

/// The input of a `dtype` tensor of `n` elements.
fn make_host_data(kind: Data, dtype: DtypeArg, n: usize) -> HostData {
    match (dtype, kind) {
        (DtypeArg::Bf16, _) => HostData::U16(make_data(kind, n)),
        (DtypeArg::F16, Data::Random) => HostData::U16(random_pieces(n, random_f16)),
        (DtypeArg::F16, Data::Normal) => HostData::U16(random_pieces(n, normal_f16)),
        (DtypeArg::F16, Data::Zeros) => HostData::U16(vec![0; n]),
        (DtypeArg::F16, Data::Constant) => HostData::U16(vec![0x3C00; n]),
        (DtypeArg::F32, Data::Random) => HostData::U32(random_pieces(n, random_f32)),
        (DtypeArg::F32, Data::Normal) => HostData::U32(random_pieces(n, normal_f32)),
        (DtypeArg::F32, Data::Zeros) => HostData::U32(vec![0; n]),
        (DtypeArg::F32, Data::Constant) => HostData::U32(vec![0x3F80_0000; n]),
    }
}

/// Special f16 values sprinkled into random data: signed zeros, subnormals, the largest
/// finite values, ±inf, NaNs.
const SPRINKLE_F16: [u16; 12] = [
    0x0000, 0x8000, 0x0001, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01,
];

/// Special f32 values sprinkled into random data.
const SPRINKLE_F32: [u32; 12] = [
    0x0000_0000,
    0x8000_0000,
    0x0000_0001,
    0x807F_FFFF,
    0x0080_0000,
    0x7F7F_FFFF,
    0xFF7F_FFFF,
    0x7F80_0000,
    0xFF80_0000,
    0x7FC0_0000,
    0xFFC0_0001,
    0x7F80_0001,
];

/// `n` seeded f16 values: normal of standard deviation 2^k, k in −8..=8 (mixed magnitudes
/// well inside f16's range), one in about every 1000 a value of [`SPRINKLE_F16`].
fn random_f16(seed: u64, n: usize) -> Vec<u16> {
    let mut rng = bfrope::conformance::SplitMix64(seed ^ 0xF16F_16F1_6F16_F16F);
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if r % 1000 == 0 {
                SPRINKLE_F16[((r >> 32) % SPRINKLE_F16.len() as u64) as usize]
            } else {
                let k = ((r >> 16) % 17) as i32 - 8;
                half::f16::from_f64(rng.next_normal() * 2f64.powi(k)).to_bits()
            }
        })
        .collect()
}

/// `n` seeded f32 values: normal of standard deviation 2^k, k in −20..=20, one in about
/// every 1000 a value of [`SPRINKLE_F32`].
fn random_f32(seed: u64, n: usize) -> Vec<u32> {
    let mut rng = bfrope::conformance::SplitMix64(seed ^ 0xF32F_32F3_2F32_F32F);
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if r % 1000 == 0 {
                SPRINKLE_F32[((r >> 32) % SPRINKLE_F32.len() as u64) as usize]
            } else {
                let k = ((r >> 16) % 41) as i32 - 20;
                ((rng.next_normal() * 2f64.powi(k)) as f32).to_bits()
            }
        })
        .collect()
}

/// How the input buffer gets its bytes (a diagnostic: large-buffer behaviour may depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fill {
    /// `queue.write_buffer` in pieces of 64 MiB.
    Write,
    /// `create_buffer_init` (`mapped_at_creation`).
    Mapped,
    /// Never written by the host: wgpu zero-fills it on first use.
    None,
}

/// What the input tensor holds (a diagnostic: the memory system may compress simple data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Data {
    /// Seeded random bf16 values (normal, mixed magnitudes, a sprinkle of specials).
    Random,
    /// Seeded normal values with standard deviation 1 and no specials (activation-like),
    /// for every dtype.
    Normal,
    /// All zeros.
    Zeros,
    /// Every element 1.0 (0x3F80).
    Constant,
}

fn make_data(kind: Data, n: usize) -> Vec<u16> {
    match kind {
        Data::Random => random_data(n),
        Data::Normal => random_pieces(n, normal_bf16),
        Data::Zeros => vec![0; n],
        Data::Constant => vec![0x3F80; n],
    }
}

/// How a series of timed runs is recorded (a diagnostic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Timing {
    /// One compute pass per run, every run in one command encoder and one submit.
    Passes,
    /// One compute pass per run, each run its own submit and wait.
    Submits,
}

/// Arguments of `bfrope bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Run on the adapter whose name, backend or driver contains SUBSTRING (default: the best).
    #[arg(long, value_name = "SUBSTRING")]
    adapter: Option<String>,
    /// Logical shapes [batch, seq, heads, head_dim] as BxSxHxD, comma-separated (default:
    /// 1x4096x32x128, 4x3000x32x128, 8x4096x32x128, 16x4096x32x128, 64x4096x32x128).
    #[arg(long, value_delimiter = ',', value_parser = parse_shape, value_name = "BxSxHxD,...")]
    shapes: Vec<[usize; 4]>,
    /// Memory layouts (default both).
    #[arg(long, value_enum, value_delimiter = ',')]
    layouts: Vec<LayoutArg>,
    /// Pair conventions (default both).
    #[arg(long, value_enum, value_delimiter = ',')]
    pairings: Vec<PairingArg>,
    /// Element types, comma-separated: bf16, f16, f32 (default bf16).
    #[arg(long, value_enum, value_delimiter = ',')]
    dtypes: Vec<DtypeArg>,
    /// Timed passes per measurement (default 20; 5 with --quick); the first is not counted.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    reps: Option<u32>,
    /// Decode calls recorded into one compute pass (default 100; 10 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100000))]
    calls: Option<u32>,
    /// GPU time each series first runs untimed, so the GPU's clocks are up when timing starts
    /// (default 300; 20 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(0..=60000))]
    warmup_ms: Option<u32>,
    /// Small shapes and few passes (runs on lavapipe in seconds).
    #[arg(long)]
    quick: bool,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Skip the decode measurement.
    #[arg(long)]
    no_decode: bool,
    /// Skip checking the exact output against the CPU path.
    #[arg(long)]
    no_verify: bool,
    /// How the input buffer is filled (diagnostic).
    #[arg(long, value_enum, default_value = "write", hide = true)]
    fill: Fill,
    /// What the input holds (diagnostic): seeded random bf16, zeros, or one constant (1.0).
    #[arg(long, value_enum, default_value = "random", hide = true)]
    data: Data,
    /// How runs are recorded and submitted (diagnostic).
    #[arg(long, value_enum, default_value = "passes", hide = true)]
    timing: Timing,
    /// Kernel variants to time beside the contiguous kernel (kernel work): NAME=FILE, a
    /// complete WGSL module with a vec4 kernel's entry (`rope_vec4` or `rope_vec4_half`),
    /// bindings and grid, timed on the tensors that kernel runs; its exact output is checked
    /// like the built-in one's.
    #[arg(long, hide = true, value_parser = parse_variant, value_name = "NAME=FILE")]
    variant: Vec<(String, String)>,
    /// Have the contiguous kernels test every unit's table values, as they do for a table
    /// not known to be in range (diagnostic: what `RopeArgs::table_in_range` saves).
    #[arg(long, hide = true)]
    table_tested: bool,
    /// Only the copy, for every fill and timing, per shape (the large-buffer diagnosis).
    #[arg(long, hide = true)]
    probe: bool,
    /// Only the copy between N buffers of each shape's size, all alive at once, buffer i to
    /// buffer i+1 (does the speed follow a buffer?).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=64))]
    probe_buffers: Option<u32>,
}

fn parse_shape(s: &str) -> Result<[usize; 4], String> {
    let parts: Vec<&str> = s.split('x').collect();
    let bad = || format!("shape '{s}' must be four positive integers BxSxHxD, e.g. 4x3000x32x128");
    if parts.len() != 4 {
        return Err(bad());
    }
    let mut dims = [0usize; 4];
    for (d, p) in dims.iter_mut().zip(&parts) {
        *d = p.trim().parse().map_err(|_| bad())?;
        if *d == 0 {
            return Err(bad());
        }
    }
    if dims[3] % 2 != 0 {
        return Err(format!("shape '{s}': head_dim {} must be even", dims[3]));
    }
    Ok(dims)
}

fn parse_variant(s: &str) -> Result<(String, String), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("variant {s:?} is not NAME=FILE"))?;
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read variant file {path:?}: {e}"))?;
    Ok((name.to_string(), source))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// GPU timestamps for a series of timed passes.
struct Timer<'g> {
    gpu: &'g Gpu,
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    reps: u32,
    timing: Timing,
    /// Seconds of GPU work run untimed before each series.
    warmup: f64,
    /// Nanoseconds per timestamp tick.
    period: f64,
}

type Recorder<'r> =
    dyn Fn(&mut wgpu::CommandEncoder, wgpu::ComputePassTimestampWrites) -> bfrope::Result<()> + 'r;

impl<'g> Timer<'g> {
    fn new(gpu: &'g Gpu, reps: u32, timing: Timing, warmup: f64) -> Self {
        let device = gpu.device();
        let count = 2 * reps;
        Self {
            gpu,
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("bfrope bench timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bfrope bench timestamps resolve"),
                size: count as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            reps,
            timing,
            warmup,
            period: gpu.queue().get_timestamp_period() as f64,
        }
    }

    fn writes(&self, r: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * r),
            end_of_pass_write_index: Some(2 * r + 1),
        }
    }

    /// Runs `reps` passes recorded by `f`; the median pass time in seconds (the first pass
    /// not counted). First the same passes run, untimed, until they add up to `warmup`
    /// seconds of GPU time: a GPU left idle while the host generates, uploads or checks data
    /// lowers its clocks, and a series of a few milliseconds does not raise them again (on
    /// the H100 the copy then measures ~1700 GB/s instead of ~3000, every kernel slower still).
    fn time(&self, f: &Recorder) -> CliResult<f64> {
        let mut warmed = 0.0;
        for _ in 0..10_000 {
            if warmed >= self.warmup {
                break;
            }
            let t: f64 = self.times(f)?.iter().sum();
            if t.is_nan() || t <= 0.0 {
                break;
            }
            warmed += t;
        }
        Ok(median(self.times(f)?))
    }

    /// Every counted pass time, in seconds, in the order run.
    fn times(&self, f: &Recorder) -> CliResult<Vec<f64>> {
        let ticks: Vec<u64> = match self.timing {
            Timing::Passes => {
                let mut enc = self
                    .gpu
                    .device()
                    .create_command_encoder(&Default::default());
                for r in 0..self.reps {
                    f(&mut enc, self.writes(r))?;
                }
                self.read(enc, 2 * self.reps)?
            }
            Timing::Submits => {
                let mut all = Vec::new();
                for _ in 0..self.reps {
                    let mut enc = self
                        .gpu
                        .device()
                        .create_command_encoder(&Default::default());
                    f(&mut enc, self.writes(0))?;
                    all.extend(self.read(enc, 2)?);
                }
                all
            }
        };
        Ok((1..self.reps as usize)
            .map(|r| ticks[2 * r + 1].wrapping_sub(ticks[2 * r]) as f64 * self.period * 1e-9)
            .collect())
    }

    fn read(&self, mut enc: wgpu::CommandEncoder, count: u32) -> CliResult<Vec<u64>> {
        enc.resolve_query_set(&self.set, 0..count, &self.resolve, 0);
        let words = pollster::block_on(self.gpu.read_back(enc, &self.resolve, count as u64 * 8))?;
        Ok(bytemuck::cast_slice::<u32, u64>(&words).to_vec())
    }
}

/// Seeded random bf16 data (normal values of mixed signs and magnitudes, a sprinkle of
/// specials), generated on every core.
fn random_data(n: usize) -> Vec<u16> {
    random_pieces(n, bfrope::conformance::random_bf16)
}

/// `n` seeded values of one element type, normal with standard deviation 1 and no specials
/// (`--data normal`): `to_bits` turns each f32 sample into the element's bits.
fn normal_values<E>(seed: u64, n: usize, to_bits: impl Fn(f32) -> E) -> Vec<E> {
    let mut rng = bfrope::conformance::SplitMix64(seed);
    (0..n).map(|_| to_bits(rng.next_normal() as f32)).collect()
}

fn normal_bf16(seed: u64, n: usize) -> Vec<u16> {
    normal_values(seed, n, |v| half::bf16::from_f32(v).to_bits())
}

fn normal_f16(seed: u64, n: usize) -> Vec<u16> {
    normal_values(seed, n, |v| half::f16::from_f32(v).to_bits())
}

fn normal_f32(seed: u64, n: usize) -> Vec<u32> {
    normal_values(seed, n, f32::to_bits)
}

/// `n` values from `piece(seed, len)` over pieces of 4 Mi elements (seed 1000 + piece index),
/// generated on every core.
fn random_pieces<E: Copy + Default + Send>(n: usize, piece: fn(u64, usize) -> Vec<E>) -> Vec<E> {
    const PIECE: usize = 1 << 22;
    let mut data = vec![E::default(); n];
    std::thread::scope(|s| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces: Vec<(usize, &mut [E])> = data.chunks_mut(PIECE).enumerate().collect();
        let per = pieces.len().div_ceil(threads).max(1);
        let mut pieces = pieces.into_iter();
        loop {
            let batch: Vec<(usize, &mut [E])> = pieces.by_ref().take(per).collect();
            if batch.is_empty() {
                break;
            }
            s.spawn(move || {
                for (i, part) in batch {
                    let len = part.len();
                    part.copy_from_slice(&piece(1000 + i as u64, len));
                }
            });
        }
    });
    data
}

/// A storage buffer holding `data` (filled as `fill` says).
fn tensor_buffer(gpu: &Gpu, label: &str, bytes: &[u8], fill: Fill) -> CliResult<wgpu::Buffer> {
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let size = (bytes.len() as u64).div_ceil(16) * 16;
    let device = gpu.device();
    if fill == Fill::Mapped {
        use wgpu::util::DeviceExt;
        let mut padded = bytes.to_vec();
        padded.resize(size as usize, 0);
        return Ok(
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &padded,
                usage,
            }),
        );
    }
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: false,
    });
    if fill == Fill::Write {
        const PIECE: usize = 64 << 20;
        for (i, piece) in bytes.chunks(PIECE).enumerate() {
            let mut piece = piece.to_vec();
            piece.resize(piece.len().div_ceil(4) * 4, 0);
            gpu.queue()
                .write_buffer(&buffer, (i * PIECE) as u64, &piece);
            gpu.queue().submit([]);
            gpu.device()
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| CliError::failure(format!("waiting for an upload failed: {e}")))?;
        }
    }
    Ok(buffer)
}

/// A storage buffer of at least `bytes` bytes that the host never writes (wgpu zero-fills it
/// on first use).
fn empty_buffer(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.div_ceil(16) * 16,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// One measured row: a kernel on one shape, layout, pairing and dtype.
struct Row {
    shape: [usize; 4],
    layout: LayoutArg,
    pairing: PairingArg,
    dtype: DtypeArg,
    kernel: &'static str,
    tensor_bytes: u64,
    table_bytes: u64,
    copy_s: f64,
    fast_s: f64,
    exact_s: f64,
    /// `None` when not checked.
    mismatches: Option<usize>,
    /// Why the kernel could not run this call (a library or device limit), if it could not.
    error: Option<String>,
}

impl Row {
    fn gbs(&self, seconds: f64, with_table: bool) -> f64 {
        let moved = 2 * self.tensor_bytes + if with_table { self.table_bytes } else { 0 };
        moved as f64 / seconds / 1e9
    }

    fn json(&self) -> serde_json::Value {
        let copy = self.gbs(self.copy_s, false);
        let exact = self.gbs(self.exact_s, true);
        serde_json::json!({
            "shape": self.shape,
            "layout": format!("{:?}", self.layout).to_lowercase(),
            "pairing": format!("{:?}", self.pairing).to_lowercase(),
            "dtype": self.dtype.name(),
            "kernel": self.kernel,
            "tensor_bytes": self.tensor_bytes,
            "table_bytes": self.table_bytes,
            "copy_us": self.copy_s * 1e6,
            "fast_us": self.fast_s * 1e6,
            "exact_us": self.exact_s * 1e6,
            "copy_gbs": copy,
            "fast_gbs": self.gbs(self.fast_s, true),
            "exact_gbs": exact,
            "exact_share_of_copy": exact / copy,
            "exact_over_fast": self.exact_s / self.fast_s - 1.0,
            "verified": self.mismatches.is_some(),
            "mismatches": self.mismatches,
            "error": self.error,
        })
    }
}

/// Decode: many calls recorded into one pass.
struct Decode {
    calls: u32,
    pass_s: f64,
    host_record_s: f64,
    copy_pass_s: f64,
}

/// `v`, or `all` when `v` is empty (a flag not given).
fn or_all<T: Clone>(v: &[T], all: &[T]) -> Vec<T> {
    if v.is_empty() { all } else { v }.to_vec()
}

/// Runs `bfrope bench`.
pub fn run(a: &BenchArgs) -> CliResult<ExitCode> {
    if let Some(d) = a.dtypes.iter().find(|d| **d != DtypeArg::Bf16) {
        if !a.variant.is_empty() {
            return Err(CliError::usage(format!(
                "--variant times bf16 vec4 kernel variants and does not apply to --dtypes {}",
                d.name()
            )));
        }
        if a.probe || a.probe_buffers.is_some() {
            return Err(CliError::usage(format!(
                "the copy probes copy bf16 tensors and do not apply to --dtypes {}",
                d.name()
            )));
        }
    }
    let gpu = match Gpu::new_blocking(a.adapter.as_deref()) {
        Ok(g) => g,
        Err(bfrope::Error::NoAdapter(m)) => {
            return Err(CliError::failure(format!(
                "no GPU adapter: {m}; bfrope bench times GPU kernels and needs one"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let report = gpu.adapter();
    if !report.timestamps {
        return Err(CliError::failure(format!(
            "adapter {} has no TIMESTAMP_QUERY feature; bfrope bench times kernels with GPU timestamp queries and cannot run on it",
            report.summary()
        )));
    }
    let reps = a.reps.unwrap_or(if a.quick { 5 } else { 20 });
    let calls = a.calls.unwrap_or(if a.quick { 10 } else { 100 });
    let shapes: Vec<[usize; 4]> = if !a.shapes.is_empty() {
        a.shapes.clone()
    } else if a.quick {
        QUICK_SHAPES.to_vec()
    } else {
        FULL_SHAPES.to_vec()
    };
    let layouts = or_all(&a.layouts, &[LayoutArg::Bshd, LayoutArg::Bhsd]);
    let pairings = or_all(&a.pairings, &[PairingArg::Interleaved, PairingArg::Half]);
    let dtypes = or_all(&a.dtypes, &[DtypeArg::Bf16]);
    let warmup_ms = a.warmup_ms.unwrap_or(if a.quick { 20 } else { 300 });
    let timer = Timer::new(&gpu, reps, a.timing, warmup_ms as f64 * 1e-3);
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let command: Vec<String> = std::env::args().collect();
    eprintln!("bfrope bench on {}", report.summary());

    if a.probe {
        return probe(&gpu, &shapes, reps, a.json, &started, &command);
    }
    if let Some(count) = a.probe_buffers {
        return probe_buffers(&gpu, &shapes, reps, count as usize);
    }

    let mut rows = Vec::new();
    let runs = shapes.len() * layouts.len() * pairings.len() * dtypes.len();
    let mut done = 0;
    for &dims in &shapes {
        let [b, s, h, d] = dims;
        let n = b * s * h * d;
        let table = RopeTable::build(&TableSpec::new(d, s))?;
        let table_in_range = table.in_fast_range() && !a.table_tested;
        let table_buf = {
            use wgpu::util::DeviceExt;
            gpu.device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("bfrope bench table"),
                    contents: table.as_bytes(),
                    usage: wgpu::BufferUsages::STORAGE,
                })
        };
        for &dtype in &dtypes {
            // Each dtype its own buffers: f32 tensors are twice the bytes.
            let data = make_host_data(a.data, dtype, n);
            let input = tensor_buffer(&gpu, "bfrope bench input", data.bytes(), a.fill)?;
            let output = empty_buffer(&gpu, "bfrope bench output", (n * dtype.bytes()) as u64);
            for &layout in &layouts {
                for &pairing in &pairings {
                    done += 1;
                    eprintln!(
                        "bench {done}/{runs}: {dims:?} {} {} {}",
                        format!("{layout:?}").to_lowercase(),
                        format!("{pairing:?}").to_lowercase(),
                        dtype.name()
                    );
                    let view = match layout {
                        LayoutArg::Bshd => TensorView::bshd(b, s, h, d),
                        LayoutArg::Bhsd => TensorView::bhsd(b, h, s, d),
                    };
                    let rotation = |precision| Rotation {
                        pairing: match pairing {
                            PairingArg::Interleaved => Pairing::Interleaved,
                            PairingArg::Half => Pairing::HalfSplit,
                        },
                        rotary_dim: d,
                        direction: Direction::Forward,
                        precision,
                        dtype: dtype.dtype(),
                    };
                    let positions = Positions::Offset(0);
                    let call = RopeCall {
                        view,
                        rotation: rotation(Precision::Exact),
                        positions: &positions,
                        table: &table,
                    };
                    let expected = if a.no_verify {
                        None
                    } else {
                        Some(data.expected(&call)?)
                    };
                    let tensor_bytes = (n * dtype.bytes()) as u64;
                    let kernels = gpu.kernels();
                    let copy_s = timer.time(&|e, ts| {
                        kernels.record_copy(e, &input, &output, tensor_bytes / 16 * 16, Some(ts))
                    })?;
                    let mut kinds: Vec<(&'static str, Option<&str>)> = vec![("general", None)];
                    // The kernel the planner picks; a contiguous one runs on the call's shape.
                    let picked = bfrope::gpu::kernel_for(&call).kernel;
                    let contiguous = call
                        .contiguous_pairs()
                        .filter(|_| picked.is_contiguous())
                        .map(|(shape, _, pairing)| (shape, pairing, picked));
                    if let Some((_, _, kernel)) = contiguous {
                        kinds.insert(0, (contiguous_name(kernel), None));
                        // A variant times in place of the vec4 kernel whose entry it defines
                        // (keeping that kernel's bindings, grid and indexing).
                        let entry = match kernel {
                            bfrope::gpu::Kernel::Vec4 => Some("fn rope_vec4("),
                            bfrope::gpu::Kernel::Vec4Half => Some("fn rope_vec4_half("),
                            _ => None,
                        };
                        let fits = |source: &str| entry.is_some_and(|e| source.contains(e));
                        for (name, source) in a.variant.iter().filter(|v| fits(&v.1)) {
                            let name: &'static str = Box::leak(format!("variant {name}").into());
                            kinds.insert(1, (name, Some(source.as_str())));
                        }
                    }
                    for (kernel, variant) in kinds {
                        let time_mode = |precision| -> CliResult<f64> {
                            if kernel == "general" {
                                let args = ViewArgs {
                                    q: ViewTensor {
                                        input: &input,
                                        output: &output,
                                        view,
                                    },
                                    k: None,
                                    table: &table_buf,
                                    table_rows: table.rows(),
                                    rotation: rotation(precision),
                                    positions: &positions,
                                    device_rows: None,
                                    table_in_range,
                                };
                                timer.time(&|e, ts| {
                                    let mut pass =
                                        e.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                            label: Some("bfrope bench general"),
                                            timestamp_writes: Some(ts),
                                        });
                                    kernels.record(&mut pass, &args)
                                })
                            } else {
                                let args = RopeArgs {
                                    input: &input,
                                    output: &output,
                                    table: &table_buf,
                                    table_rows: table.rows(),
                                    row_offset: 0,
                                    shape: contiguous
                                        .map_or(RopeShape::from_dims(&dims), |c| Ok(c.0))?,
                                    direction: Direction::Forward,
                                    precision,
                                    dtype: dtype.dtype(),
                                    pairing: contiguous.map_or(Pairing::Interleaved, |c| c.1),
                                    table_in_range,
                                };
                                match variant {
                                    Some(src) => timer.time(&|e, ts| {
                                        kernels.record_timed_variant(e, &args, ts, src)
                                    }),
                                    None => timer.time(&|e, ts| {
                                        kernels.record(RecordTarget::Timed(e, ts), &args)
                                    }),
                                }
                            }
                        };
                        // Exact last: the output buffer then holds the exact result.
                        let measured = time_mode(Precision::Fast).and_then(|fast_s| {
                            let exact_s = time_mode(Precision::Exact)?;
                            let mismatches = match &expected {
                                Some(want) => {
                                    let enc =
                                        gpu.device().create_command_encoder(&Default::default());
                                    let bytes = (tensor_bytes).div_ceil(4) * 4;
                                    let words =
                                        pollster::block_on(gpu.read_back(enc, &output, bytes))?;
                                    Some(want.mismatches(bytemuck::cast_slice(&words)))
                                }
                                None => None,
                            };
                            Ok((fast_s, exact_s, mismatches))
                        });
                        let (fast_s, exact_s, mismatches, error) = match measured {
                            Ok((f, e, m)) => (f, e, m, None),
                            Err(e) => {
                                eprintln!("bench: {kernel} kernel not measured: {}", e.message);
                                (f64::NAN, f64::NAN, None, Some(e.message))
                            }
                        };
                        let row = Row {
                            shape: dims,
                            layout,
                            pairing,
                            dtype,
                            kernel,
                            tensor_bytes,
                            table_bytes: table.as_bytes().len() as u64,
                            copy_s,
                            fast_s,
                            exact_s,
                            mismatches,
                            error,
                        };
                        if !a.json {
                            if rows.is_empty() {
                                print_header(&gpu, &started, reps, warmup_ms);
                            }
                            print_row(&row);
                        }
                        rows.push(row);
                    }
                }
            }
        }
    }

    let decode = if a.no_decode {
        None
    } else {
        eprintln!("bench: decode, {calls} calls in one pass");
        Some(decode(&gpu, &timer, calls)?)
    };
    let mismatches: usize = rows.iter().filter_map(|r| r.mismatches).sum();
    let errors = rows.iter().filter(|r| r.error.is_some()).count();
    if a.json {
        let doc = serde_json::json!({
            "tool": "bfrope bench",
            "version": env!("CARGO_PKG_VERSION"),
            "date": started,
            "command": command.join(" "),
            "card": report.info.name,
            "driver": format!("{} {}", report.info.driver, report.info.driver_info).trim(),
            "adapter": crate::info::adapter_json(report),
            "reps": reps,
            "warmup_ms": warmup_ms,
            "timing": format!("{:?}", a.timing).to_lowercase(),
            "fill": format!("{:?}", a.fill).to_lowercase(),
            "data": format!("{:?}", a.data).to_lowercase(),
            "bytes_counted": "RoPE: tensor read + written once, table read once; copy: tensor read + written once",
            "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "decode": decode.as_ref().map(|d| serde_json::json!({
                "q": [64, 1, 32, 128],
                "k": [64, 1, 8, 128],
                "calls_per_pass": d.calls,
                "gpu_us_per_call": d.pass_s / d.calls as f64 * 1e6,
                "host_record_us_per_call": d.host_record_s * 1e6,
                "copy_gpu_us_per_call": d.copy_pass_s / d.calls as f64 * 1e6,
            })),
            "mismatches": mismatches,
            "rows_not_measured": errors,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        );
    } else {
        if rows.is_empty() {
            print_header(&gpu, &started, reps, warmup_ms);
        }
        if let Some(d) = &decode {
            println!(
                "\ndecode q [64,1,32,128] + k [64,1,8,128] (GQA), one dispatch per call, {} calls in one pass:\n  {:.2} us of GPU time per call (a copy of the same bytes: {:.2} us); recording one call on the host: {:.2} us",
                d.calls,
                d.pass_s / d.calls as f64 * 1e6,
                d.copy_pass_s / d.calls as f64 * 1e6,
                d.host_record_s * 1e6
            );
        }
        if !a.no_verify {
            println!("\nexact output vs the CPU path: {mismatches} mismatching elements");
        }
    }
    if mismatches > 0 {
        eprintln!(
            "error: the GPU's exact output differs from the CPU path in {mismatches} elements"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn contiguous_name(kernel: bfrope::gpu::Kernel) -> &'static str {
    match kernel {
        bfrope::gpu::Kernel::Vec4 => "contiguous vec4",
        bfrope::gpu::Kernel::Vec4Half => "contiguous vec4 half",
        _ => "contiguous scalar",
    }
}

fn print_header(gpu: &Gpu, date: &str, reps: u32, warmup_ms: u32) {
    let i = &gpu.adapter().info;
    println!(
        "bfrope bench — {} ({:?}, {} {}), {date}, median of {} passes after {warmup_ms} ms of warm-up",
        i.name,
        i.backend,
        i.driver,
        i.driver_info,
        reps - 1
    );
    println!(
        "{:<20} {:<5} {:<11} {:<5} {:<17} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>6}",
        "shape",
        "lay",
        "pairing",
        "dtype",
        "kernel",
        "copy us",
        "fast us",
        "exact us",
        "copyGB/s",
        "fastGB/s",
        "exGB/s",
        "ex/cp",
        "ex/fast",
        "bits"
    );
}

/// GB/s with as many decimals as a small figure (lavapipe) needs.
fn gbs_text(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn print_row(r: &Row) {
    if let Some(e) = &r.error {
        println!(
            "{:<20} {:<5} {:<11} {:<5} {:<17} {:>9.1}  not measured: {e}",
            format!("{:?}", r.shape).replace(' ', ""),
            format!("{:?}", r.layout).to_lowercase(),
            format!("{:?}", r.pairing).to_lowercase(),
            r.dtype.name(),
            r.kernel,
            r.copy_s * 1e6,
        );
        return;
    }
    let copy = r.gbs(r.copy_s, false);
    let exact = r.gbs(r.exact_s, true);
    println!(
        "{:<20} {:<5} {:<11} {:<5} {:<17} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>8} {:>8} {:>6.1}% {:>+6.1}% {:>6}",
        format!("{:?}", r.shape).replace(' ', ""),
        format!("{:?}", r.layout).to_lowercase(),
        format!("{:?}", r.pairing).to_lowercase(),
        r.dtype.name(),
        r.kernel,
        r.copy_s * 1e6,
        r.fast_s * 1e6,
        r.exact_s * 1e6,
        gbs_text(copy),
        gbs_text(r.gbs(r.fast_s, true)),
        gbs_text(exact),
        100.0 * exact / copy,
        100.0 * (r.exact_s / r.fast_s - 1.0),
        match r.mismatches {
            Some(0) => "exact".to_string(),
            Some(m) => format!("{m} BAD"),
            None => "-".to_string(),
        }
    );
}

/// q `[64,1,32,128]` and k `[64,1,8,128]` in one dispatch, positions in a GPU buffer, `calls`
/// calls recorded into one compute pass; beside it the same number of copies of q's and k's
/// bytes in one pass.
fn decode(gpu: &Gpu, timer: &Timer, calls: u32) -> CliResult<Decode> {
    use wgpu::util::DeviceExt;
    let device = gpu.device();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let (qv, kv) = (
        TensorView::bshd(64, 1, 32, 128),
        TensorView::bshd(64, 1, 8, 128),
    );
    let buf = |n: usize, seed: u64| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("bfrope bench decode"),
            contents: bytemuck::cast_slice(&bfrope::conformance::random_bf16(seed, n)),
            usage,
        })
    };
    let (qi, qo, ki, ko) = (
        buf(qv.span(), 1),
        buf(qv.span(), 2),
        buf(kv.span(), 3),
        buf(kv.span(), 4),
    );
    let ids: Vec<u32> = (0..64).map(|i| 100 + 37 * i).collect();
    let rows = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bfrope bench decode positions"),
        contents: bytemuck::cast_slice(&ids),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let table = RopeTable::build(&TableSpec::new(128, 4096))?;
    let table_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bfrope bench decode table"),
        contents: table.as_bytes(),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let positions = Positions::Offset(0);
    let args = ViewArgs {
        q: ViewTensor {
            input: &qi,
            output: &qo,
            view: qv,
        },
        k: Some(ViewTensor {
            input: &ki,
            output: &ko,
            view: kv,
        }),
        table: &table_buf,
        table_rows: table.rows(),
        rotation: Rotation::new(128),
        positions: &positions,
        device_rows: Some(&rows),
        table_in_range: table.in_fast_range(),
    };
    let kernels = gpu.kernels();
    // One call outside the timing builds the pipeline and caches the bind group.
    {
        let mut enc = device.create_command_encoder(&Default::default());
        kernels.record(&mut enc, &args)?;
        gpu.queue().submit([enc.finish()]);
    }
    let host = std::cell::RefCell::new(Vec::new());
    let pass_s = timer.time(&|e, ts| {
        let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bfrope bench decode"),
            timestamp_writes: Some(ts),
        });
        let t0 = Instant::now();
        for _ in 0..calls {
            kernels.record(&mut pass, &args)?;
        }
        host.borrow_mut()
            .push(t0.elapsed().as_secs_f64() / calls as f64);
        Ok(())
    })?;
    let host_record_s = median(host.into_inner());
    let (q_bytes, k_bytes) = ((qv.span() * 2) as u64, (kv.span() * 2) as u64);
    let copy_pass_s = timer.time(&|e, ts| {
        let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bfrope bench decode copy"),
            timestamp_writes: Some(ts),
        });
        for _ in 0..calls {
            kernels.record_copy_in_pass(&mut pass, &qi, &qo, q_bytes)?;
            kernels.record_copy_in_pass(&mut pass, &ki, &ko, k_bytes)?;
        }
        Ok(())
    })?;
    Ok(Decode {
        calls,
        pass_s,
        host_record_s,
        copy_pass_s,
    })
}

/// Copies between `count` buffers of each shape's size, all alive at once (printed as text).
fn probe_buffers(gpu: &Gpu, shapes: &[[usize; 4]], reps: u32, count: usize) -> CliResult<ExitCode> {
    let kernels = gpu.kernels();
    let timer = Timer::new(gpu, reps, Timing::Passes, 0.0);
    println!("buffer probe on {}", gpu.adapter().summary());
    for &dims in shapes {
        let n: usize = dims.iter().product();
        let bytes = (n as u64 * 2) / 16 * 16;
        let data = random_data(n);
        let buffers = (0..count)
            .map(|_| {
                tensor_buffer(
                    gpu,
                    "bfrope probe buffer",
                    bytemuck::cast_slice(&data),
                    Fill::Write,
                )
            })
            .collect::<CliResult<Vec<_>>>()?;
        let gbs = |t: f64, b: u64| 2.0 * b as f64 / t / 1e9;
        for i in 0..count {
            let j = (i + 1) % count;
            let t = timer
                .time(&|e, ts| kernels.record_copy(e, &buffers[i], &buffers[j], bytes, Some(ts)))?;
            println!(
                "{:<20} buffer {i:>2} -> {j:>2}: {:>8.1} us {:>6.0} GB/s",
                format!("{dims:?}").replace(' ', ""),
                t * 1e6,
                gbs(t, bytes),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The large-buffer diagnosis: the copy alone, per shape, for every way of filling the input
/// and of recording the runs, and many copies in one pass.
fn probe(
    gpu: &Gpu,
    shapes: &[[usize; 4]],
    reps: u32,
    json: bool,
    date: &str,
    command: &[String],
) -> CliResult<ExitCode> {
    let kernels = gpu.kernels();
    // (shape, case, timing, median seconds, bytes copied, every pass).
    let mut out = Vec::new();
    for &dims in shapes {
        let n: usize = dims.iter().product();
        let bytes = (n as u64 * 2) / 16 * 16;
        let cases = [
            ("random, write_buffer", Data::Random, Fill::Write, bytes),
            (
                "random, mapped at creation",
                Data::Random,
                Fill::Mapped,
                bytes,
            ),
            ("zeros, write_buffer", Data::Zeros, Fill::Write, bytes),
            ("1.0, write_buffer", Data::Constant, Fill::Write, bytes),
            (
                "never written (wgpu zero-fills)",
                Data::Zeros,
                Fill::None,
                bytes,
            ),
            (
                "random, first half of the buffers",
                Data::Random,
                Fill::Write,
                bytes / 32 * 16,
            ),
        ];
        let mut data_kind = None;
        let mut data = Vec::new();
        for (case, kind, fill, copied) in cases {
            if data_kind != Some(kind) {
                data = make_data(kind, n);
                data_kind = Some(kind);
            }
            let input =
                tensor_buffer(gpu, "bfrope probe input", bytemuck::cast_slice(&data), fill)?;
            let output = empty_buffer(gpu, "bfrope probe output", n as u64 * 2);
            let timer = Timer::new(gpu, reps, Timing::Passes, 0.0);
            let all =
                timer.times(&|e, ts| kernels.record_copy(e, &input, &output, copied, Some(ts)))?;
            out.push((dims, case, "passes", median(all.clone()), copied, all));
            // `reps` copies in one pass, one timestamp pair around them all.
            let timer = Timer::new(gpu, 2, Timing::Passes, 0.0);
            let t = timer.time(&|e, ts| {
                let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("bfrope probe one pass"),
                    timestamp_writes: Some(ts),
                });
                for _ in 0..reps {
                    kernels.record_copy_in_pass(&mut pass, &input, &output, copied)?;
                }
                Ok(())
            })? / reps as f64;
            out.push((dims, case, "one pass", t, copied, vec![t]));
            eprintln!("probe: {dims:?} {case} done");
        }
    }
    let gbs = |t: f64, b: u64| 2.0 * b as f64 / t / 1e9;
    if json {
        let rows: Vec<_> = out
            .iter()
            .map(|(dims, case, timing, t, b, all)| {
                serde_json::json!({
                    "shape": dims, "case": case, "timing": timing,
                    "copy_us": t * 1e6, "copy_gbs": gbs(*t, *b), "bytes": b,
                    "passes_us": all.iter().map(|x| x * 1e6).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "tool": "bfrope bench --probe",
            "date": date,
            "command": command.join(" "),
            "adapter": crate::info::adapter_json(gpu.adapter()),
            "probe": rows,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        );
    } else {
        println!("copy probe on {}, {date}", gpu.adapter().summary());
        for (dims, case, timing, t, b, _) in &out {
            println!(
                "{:<20} {:<34} {:<9} {:>9.1} us {:>7.0} GB/s",
                format!("{dims:?}").replace(' ', ""),
                case,
                timing,
                t * 1e6,
                gbs(*t, *b)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--data normal` is what it says: finite, nonzero, normal bf16 values of both signs
    /// spread around 1, none of the specials `--data random` sprinkles in; f16 and f32 too.
    #[test]
    fn normal_data_has_no_specials() {
        let f16 = match make_host_data(Data::Normal, DtypeArg::F16, 1 << 16) {
            HostData::U16(v) => v,
            HostData::U32(_) => panic!("f16 data is 16-bit"),
        };
        // f16's normal range starts at 2^-14: a few samples below it are subnormal there (as
        // real activations would be), none is zero, infinite or NaN.
        assert!(f16.iter().all(|&b| {
            let v = half::f16::from_bits(b);
            v.is_finite() && v != half::f16::ZERO // -0 == 0 too
        }));
        let f32s = match make_host_data(Data::Normal, DtypeArg::F32, 1 << 16) {
            HostData::U32(v) => v,
            HostData::U16(_) => panic!("f32 data is 32-bit"),
        };
        assert!(f32s.iter().all(|&b| f32::from_bits(b).is_normal()));
        let n = 1 << 20;
        let x = make_data(Data::Normal, n);
        assert_eq!(x.len(), n);
        let exponent = |b: u16| (b >> 7) & 0xFF;
        assert!(x.iter().all(|&b| exponent(b) != 0 && exponent(b) != 0xFF));
        let negative = x.iter().filter(|&&b| b & 0x8000 != 0).count();
        assert!(
            (n * 49 / 100..n * 51 / 100).contains(&negative),
            "{negative}"
        );
        let within_one = x.iter().filter(|&&b| b & 0x7FFF <= 0x3F80).count();
        // P(|z| <= 1) = 0.683 for a standard normal.
        assert!(
            (n * 67 / 100..n * 70 / 100).contains(&within_one),
            "{within_one}"
        );
        // The random data does hold specials (one in about 1000).
        let r = make_data(Data::Random, n);
        let specials = r
            .iter()
            .filter(|&&b| exponent(b) == 0 || exponent(b) == 0xFF)
            .count();
        assert!((n / 2000..n / 500).contains(&specials), "{specials}");
    }
}
