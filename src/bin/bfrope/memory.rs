//! Sizing a request before allocating it: what a table needs is computed from the flags and
//! refused in one sentence (exit 2) when it cannot fit in the memory available, instead of
//! an allocation failure aborting the process.

use crate::{CliError, CliResult};

/// Bytes of memory available to a new allocation: Linux's `MemAvailable` (free memory plus
/// what the kernel can reclaim), or `None` where it cannot be read.
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// `bytes` in the largest binary unit that keeps it at least 1, with one decimal.
pub fn size(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Refuses `what` (a phrase naming the request and the flag that sets it) when it needs
/// more than the memory available. Checked before anything is allocated or created.
pub fn check_fits(what: impl FnOnce() -> String, bytes: u128) -> CliResult<()> {
    match available() {
        Some(free) if bytes > u128::from(free) => Err(CliError::usage(format!(
            "{} needs {} of memory, more than the {} available",
            what(),
            size(bytes),
            size(u128::from(free))
        ))),
        _ => Ok(()),
    }
}
