//! `bfrope info [--json]`: the adapters wgpu finds and their limits.

use std::process::ExitCode;

use bfrope::AdapterReport;

use crate::CliResult;

/// Arguments of `bfrope info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn mib(bytes: u64) -> String {
    format!(
        "{bytes} bytes ({:.0} MiB)",
        bytes as f64 / (1u64 << 20) as f64
    )
}

/// One adapter as a JSON object.
pub fn adapter_json(r: &AdapterReport) -> serde_json::Value {
    let i = &r.info;
    serde_json::json!({
        "name": i.name,
        "backend": format!("{:?}", i.backend),
        "device_type": format!("{:?}", i.device_type),
        "driver": i.driver,
        "driver_info": i.driver_info,
        "vendor": i.vendor,
        "device": i.device,
        "max_storage_binding": r.max_storage_binding,
        "max_buffer": r.max_buffer,
        "max_workgroups_per_dim": r.max_workgroups_per_dim,
        "timestamps": r.timestamps,
        "summary": r.summary(),
    })
}

/// Runs `bfrope info`.
pub fn run(args: &InfoArgs) -> CliResult<ExitCode> {
    let adapters = pollster::block_on(bfrope::gpu::list_adapters());
    if args.json {
        let list: Vec<_> = adapters.iter().map(adapter_json).collect();
        let doc = serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "adapters": list });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if adapters.is_empty() {
        println!("no GPU adapter found: wgpu sees no Vulkan, Metal, DX12 or GL device; bfrope will use the CPU path");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} adapter{} found:",
        adapters.len(),
        if adapters.len() == 1 { "" } else { "s" }
    );
    for (k, r) in adapters.iter().enumerate() {
        let i = &r.info;
        println!();
        println!("[{k}] {}", i.name);
        println!("    backend:                {:?}", i.backend);
        println!("    device type:            {:?}", i.device_type);
        println!(
            "    driver:                 {} ({})",
            i.driver, i.driver_info
        );
        println!(
            "    vendor / device id:     0x{:04X} / 0x{:04X}",
            i.vendor, i.device
        );
        println!("    max storage binding:    {}", mib(r.max_storage_binding));
        println!("    max buffer:             {}", mib(r.max_buffer));
        println!("    max workgroups per dim: {}", r.max_workgroups_per_dim);
        println!(
            "    timestamp queries:      {}",
            if r.timestamps { "yes" } else { "no" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
