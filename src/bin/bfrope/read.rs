//! Reading small text inputs (a config.json) with a bound: only a regular file is read, and
//! at most [`MAX_TEXT_BYTES`] of it, so `/dev/zero`, a FIFO or a huge file is refused in one
//! sentence instead of filling memory or blocking.

use std::io::Read;
use std::path::Path;

use crate::{CliError, CliResult};

/// The largest text input read (16 MiB; a model's config.json is a few KiB).
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The UTF-8 text of the regular file `path`, at most `max` bytes; `flag` names it in errors
/// (`--hf-config`). Every refusal is exit 2 and names the path.
pub fn bounded_text(flag: &str, path: &Path, max: u64) -> CliResult<String> {
    let refuse = |what: String| CliError::usage(format!("{flag} {}: {what}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "{}, not a regular file; refusing to read it",
            crate::output::kind_of(&meta)
        )));
    }
    if meta.len() > max {
        return Err(refuse(format!(
            "{} bytes, more than the {} bytes read from a config",
            meta.len(),
            max
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    // The bound again while reading: the file may grow after the check.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!(
            "more than the {max} bytes read from a config"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}
