//! `bfrope` with no command: the main job. Rotates a realistic tensor on the best adapter and
//! on the CPU path, times both, and checks that the bits agree.

use std::process::ExitCode;
use std::time::Instant;

use bfrope::{
    conformance, cpu, Error, Gpu, Positions, Precision, RopeCall, RopeTable, TableSpec, TensorView,
};

use crate::{ms, CliResult};

/// The demo tensor `[batch, seq, heads, head_dim]`: a Llama-style query block.
const DIMS: [usize; 4] = [1, 2048, 32, 128];
const SEED: u64 = 0x5EED_0001;

fn rate(elements: usize, d: std::time::Duration) -> String {
    format!(
        "{:.0} M elements/s",
        elements as f64 / d.as_secs_f64() / 1e6
    )
}

/// Runs the demo.
pub fn run() -> CliResult<ExitCode> {
    let [b, seq, h, d] = DIMS;
    let n = b * seq * h * d;
    let table = RopeTable::build(&TableSpec::new(d, seq))?;
    let positions = Positions::Offset(0);
    let call = RopeCall::new(TensorView::bshd(b, seq, h, d), &positions, &table);
    let x = conformance::random_bf16(SEED, n);
    println!(
        "bfrope {}: correctly rounded bf16 RoPE",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "tensor:   {:?} bf16 (bshd, {n} elements, seeded normal data with special values), table exact base 10000, positions 0..{}",
        DIMS, seq
    );

    let t = Instant::now();
    let gpu = match Gpu::new_blocking(None) {
        Ok(gpu) => Some(gpu),
        Err(Error::NoAdapter(_)) => {
            eprintln!("no GPU adapter found; using the CPU path");
            None
        }
        Err(e) => {
            eprintln!("the GPU adapter could not be opened ({e}); using the CPU path");
            None
        }
    };
    let open_time = t.elapsed();

    let mut gpu_out = None;
    if let Some(gpu) = &gpu {
        println!(
            "adapter:  {} (opened in {})",
            gpu.adapter().summary(),
            ms(open_time)
        );
        let t = Instant::now();
        let y = gpu.apply_blocking(&call, &x)?;
        let cold = t.elapsed();
        let t = Instant::now();
        let y2 = gpu.apply_blocking(&call, &x)?;
        let warm = t.elapsed();
        println!(
            "GPU:      {} first run (pipeline compile, upload, kernel, readback)",
            ms(cold)
        );
        println!(
            "GPU:      {} warm run ({}, wall time incl. upload and readback)",
            ms(warm),
            rate(n, warm)
        );
        if y != y2 {
            return Err(crate::CliError::failure(
                "the adapter returned different bits on two runs of the same input",
            ));
        }
        let fast = gpu.apply_blocking(&call.with_precision(Precision::Fast), &x)?;
        let differ = fast.iter().zip(&y).filter(|(a, b)| a != b).count();
        println!("GPU:      plain f32 (--precision fast) on this adapter differs from exact in {differ} of {n} elements");
        gpu_out = Some(y);
    } else {
        println!("adapter:  none (CPU path only)");
    }

    let t = Instant::now();
    let y_cpu = cpu::apply(&call, &x)?;
    let cpu_time = t.elapsed();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "CPU path: {} ({}, {threads} threads)",
        ms(cpu_time),
        rate(n, cpu_time)
    );

    match gpu_out {
        Some(y) => {
            let differ = y.iter().zip(&y_cpu).filter(|(a, b)| a != b).count();
            if differ == 0 {
                println!("bit-identical: yes ({n} of {n} elements, GPU and CPU path)");
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "bit-identical: no ({differ} of {n} elements differ between GPU and CPU path)"
                );
                Ok(ExitCode::from(1))
            }
        }
        None => {
            println!("bit-identical: not compared (no GPU adapter to compare with the CPU path)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
