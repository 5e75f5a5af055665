//! GPU benchmark: RoPE (exact and fast) beside a vec4 copy of the same bytes, timed with GPU
//! timestamp queries in one run.
//!
//! Run: `cargo run --release --example bench [-- --adapter SUBSTRING] [--reps N] [--quick]`.
//! Prints, per shape, the median GPU time of each kernel, GB/s (tensor read + written once,
//! table read once; the copy moves the tensor bytes once each way) and RoPE's share of the
//! copy's GB/s, then the decode-size dispatch time.

use bfrope::gpu::{Gpu, RopeArgs, ViewArgs, ViewTensor};
use bfrope::{
    Direction, Pairing, Positions, Precision, RopeShape, RopeTable, Rotation, TableSpec, TensorView,
};

struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    cap: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let reps: u32 = get("--reps").map(|s| s.parse()).transpose()?.unwrap_or(20);
    let quick = args.iter().any(|a| a == "--quick");
    let gpu = Gpu::new_blocking(get("--adapter").as_deref())?;
    println!("adapter: {}", gpu.adapter().summary());
    if !gpu.adapter().timestamps {
        anyhow::bail!("this adapter has no timestamp queries; the benchmark needs them");
    }
    let device = gpu.device();
    let queue = gpu.queue();
    let period = queue.get_timestamp_period() as f64;
    let cap = 2 * reps;
    let timer = Timer {
        set: device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("bench"),
            ty: wgpu::QueryType::Timestamp,
            count: cap,
        }),
        resolve: device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench resolve"),
            size: cap as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }),
        cap,
    };
    // Runs `reps` timed passes recorded by `f` and returns the median pass time in seconds.
    let time = |f: &dyn Fn(
        &mut wgpu::CommandEncoder,
        wgpu::ComputePassTimestampWrites,
    ) -> bfrope::Result<()>|
     -> anyhow::Result<f64> {
        let mut enc = device.create_command_encoder(&Default::default());
        for r in 0..reps {
            f(
                &mut enc,
                wgpu::ComputePassTimestampWrites {
                    query_set: &timer.set,
                    beginning_of_pass_write_index: Some(2 * r),
                    end_of_pass_write_index: Some(2 * r + 1),
                },
            )?;
        }
        enc.resolve_query_set(&timer.set, 0..timer.cap, &timer.resolve, 0);
        let words = pollster::block_on(gpu.read_back(enc, &timer.resolve, timer.cap as u64 * 8))?;
        let ts: &[u64] = bytemuck::cast_slice(&words);
        // The first pass warms caches and clocks; it is not counted.
        let times = (1..reps as usize)
            .map(|r| (ts[2 * r + 1].wrapping_sub(ts[2 * r])) as f64 * period * 1e-9)
            .collect();
        Ok(median(times))
    };

    let shapes: Vec<[usize; 4]> = if quick {
        vec![[1, 256, 8, 128], [64, 1, 32, 128]]
    } else {
        vec![
            [1, 4096, 32, 128],
            [4, 3000, 32, 128],
            [8, 4096, 32, 128],
            [16, 4096, 32, 128],
            [64, 1, 32, 128],
        ]
    };
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "shape",
        "copy us",
        "fast us",
        "exact us",
        "copy GB/s",
        "fast GB/s",
        "exact GB/s",
        "exact/cp",
        "ex/fast"
    );
    for dims in shapes {
        let shape = RopeShape::from_dims(&dims)?;
        let bytes = shape.elements() as u64 * 2;
        let table = RopeTable::build(&TableSpec::new(shape.head_dim, shape.seq))?;
        // Realistic data: normal bf16 values of mixed signs and magnitudes.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u16> = (0..shape.elements())
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 8.0;
                half::bf16::from_f32(v as f32).to_bits()
            })
            .collect();
        use wgpu::util::DeviceExt;
        let storage = wgpu::BufferUsages::STORAGE;
        let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("bench input"),
            contents: bytemuck::cast_slice(&data),
            usage: storage,
        });
        let output = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench output"),
            size: bytes,
            usage: storage | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let table_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("bench table"),
            contents: table.as_bytes(),
            usage: storage,
        });
        let rope_args = |precision| RopeArgs {
            input: &input,
            output: &output,
            table: &table_buf,
            table_rows: table.rows(),
            row_offset: 0,
            shape,
            direction: Direction::Forward,
            precision,
        };
        let kernels = gpu.kernels();
        let t_copy =
            time(&|e, ts| kernels.record_copy(e, &input, &output, bytes / 16 * 16, Some(ts)))?;
        let t_fast = time(&|e, ts| kernels.record_timed(e, &rope_args(Precision::Fast), ts))?;
        let t_exact = time(&|e, ts| kernels.record_timed(e, &rope_args(Precision::Exact), ts))?;
        let moved = (2 * bytes) as f64;
        let rope_moved = moved + table.as_bytes().len() as f64;
        let gbs = |b: f64, t: f64| b / t / 1e9;
        println!(
            "{:<20} {:>10.1} {:>10.1} {:>10.1} {:>9.0} {:>9.0} {:>10.0} {:>7.1}% {:>7.1}%",
            format!("{dims:?}"),
            t_copy * 1e6,
            t_fast * 1e6,
            t_exact * 1e6,
            gbs(moved, t_copy),
            gbs(rope_moved, t_fast),
            gbs(rope_moved, t_exact),
            100.0 * gbs(rope_moved, t_exact) / gbs(moved, t_copy),
            100.0 * t_exact / t_fast - 100.0,
        );
        // Exactness on this device, for the same data: GPU exact == CPU path.
        let from_0 = bfrope::Positions::Offset(0);
        let call = bfrope::RopeCall::new(shape.into(), &from_0, &table);
        let gpu_bits = gpu.apply_blocking(&call, &data)?;
        let cpu_bits = bfrope::cpu::apply(&call, &data)?;
        let fast_bits = gpu.apply_blocking(&call.with_precision(Precision::Fast), &data)?;
        let diff = |a: &[u16]| a.iter().zip(&cpu_bits).filter(|(x, y)| x != y).count();
        println!(
            "{:<20} exact vs CPU path: {} mismatches of {}; fast vs CPU path: {} mismatches",
            "",
            diff(&gpu_bits),
            cpu_bits.len(),
            diff(&fast_bits)
        );
    }

    // The general kernel (any view, pairing, rotary_dim): Hugging Face's BHSD half-split,
    // out of place and in place, beside the same copy.
    let dims = if quick {
        [1, 8, 256, 128]
    } else {
        [4, 32, 3000, 128]
    };
    let [b, h, sq, d] = dims;
    let view = TensorView::bhsd(b, h, sq, d);
    let bytes = (view.span() * 2) as u64;
    let table = RopeTable::build(&TableSpec::new(d, sq))?;
    let data = bfrope::conformance::random_bf16(3, view.span());
    use wgpu::util::DeviceExt;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bench general input"),
        contents: bytemuck::cast_slice(&data),
        usage,
    });
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench general output"),
        size: bytes,
        usage,
        mapped_at_creation: false,
    });
    let table_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bench table"),
        contents: table.as_bytes(),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let positions = Positions::Offset(0);
    let kernels = gpu.kernels();
    fn general<'a>(
        input: &'a wgpu::Buffer,
        output: &'a wgpu::Buffer,
        table: &'a wgpu::Buffer,
        table_rows: usize,
        view: TensorView,
        positions: &'a Positions,
        precision: Precision,
    ) -> ViewArgs<'a> {
        ViewArgs {
            q: ViewTensor {
                input,
                output,
                view,
            },
            k: None,
            table,
            table_rows,
            rotation: Rotation {
                pairing: Pairing::HalfSplit,
                rotary_dim: view.head_dim(),
                direction: Direction::Forward,
                precision,
            },
            positions,
            device_rows: None,
        }
    }
    let timed_view = |args: ViewArgs| {
        time(&|e, ts| {
            let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bench general"),
                timestamp_writes: Some(ts),
            });
            kernels.record_view_in_pass(&mut pass, &args)
        })
    };
    let t_copy = time(&|e, ts| kernels.record_copy(e, &input, &output, bytes / 16 * 16, Some(ts)))?;
    let rows_n = table.rows();
    let (tb, pos) = (&table_buf, &positions);
    let t_fast = timed_view(general(
        &input,
        &output,
        tb,
        rows_n,
        view,
        pos,
        Precision::Fast,
    ))?;
    let t_exact = timed_view(general(
        &input,
        &output,
        tb,
        rows_n,
        view,
        pos,
        Precision::Exact,
    ))?;
    let t_in_place = timed_view(general(
        &input,
        &input,
        tb,
        rows_n,
        view,
        pos,
        Precision::Exact,
    ))?;
    let gbs = |t: f64| (2 * bytes) as f64 / t / 1e9;
    println!(
        "general kernel, BHSD half-split {dims:?}: copy {:.1} us ({:.0} GB/s); fast {:.1} us ({:.0} GB/s); exact {:.1} us ({:.0} GB/s, {:.1}% of copy); exact in place {:.1} us ({:.0} GB/s)",
        t_copy * 1e6,
        gbs(t_copy),
        t_fast * 1e6,
        gbs(t_fast),
        t_exact * 1e6,
        gbs(t_exact),
        100.0 * t_copy / t_exact,
        t_in_place * 1e6,
        gbs(t_in_place),
    );

    // Decode: q [64, 1, 32, 128] and k [64, 1, 8, 128] in one dispatch, positions in a GPU
    // buffer, `calls` calls recorded into one compute pass.
    let calls = 100u32;
    let (qv, kv) = (
        TensorView::bshd(64, 1, 32, 128),
        TensorView::bshd(64, 1, 8, 128),
    );
    let buf = |n: usize| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("bench decode"),
            contents: bytemuck::cast_slice(&bfrope::conformance::random_bf16(n as u64, n)),
            usage,
        })
    };
    let (qi, qo, ki, ko) = (
        buf(qv.span()),
        buf(qv.span()),
        buf(kv.span()),
        buf(kv.span()),
    );
    let ids: Vec<u32> = (0..64).map(|i| 100 + i).collect();
    let rows = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bench decode ids"),
        contents: bytemuck::cast_slice(&ids),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let decode_table = RopeTable::build(&TableSpec::new(128, 4096))?;
    let decode_table_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bench decode table"),
        contents: decode_table.as_bytes(),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let decode = ViewArgs {
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
        table: &decode_table_buf,
        table_rows: decode_table.rows(),
        rotation: Rotation::new(128),
        positions: &positions,
        device_rows: Some(&rows),
    };
    let host = std::cell::Cell::new(0f64);
    let t_decode = time(&|e, ts| {
        let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench decode"),
            timestamp_writes: Some(ts),
        });
        let t0 = std::time::Instant::now();
        for _ in 0..calls {
            kernels.record_view_in_pass(&mut pass, &decode)?;
        }
        host.set(t0.elapsed().as_secs_f64() / calls as f64);
        Ok(())
    })?;
    println!(
        "decode q [64,1,32,128] + k [64,1,8,128], one dispatch per call, {calls} calls in one pass: {:.2} us of GPU time per call; recording one call on the host: {:.2} us",
        t_decode / calls as f64 * 1e6,
        host.get() * 1e6
    );
    Ok(())
}
