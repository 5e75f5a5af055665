//! safetensors in (memory-mapped) and out (streamed), with memory bounded by a piece size.
//!
//! The input is mapped, never read whole: its header is parsed by safetensors' own parser
//! and the tensors are read through the mapping, whose pages are released as soon as they
//! have been written out. The output is the input's header **verbatim** (same tensors, same
//! order, same shapes and offsets, same `__metadata__`, byte for byte) followed by the data
//! section in offset order: tensors that are not rotated are copied, rotated ones go through
//! in pieces of whole tokens. So the same input gives the same output bytes, and resident
//! memory stays at a few pieces whatever the file's size.

use std::io::Write;
use std::path::Path;

use memmap2::{Mmap, UncheckedAdvice};
use safetensors::tensor::{Metadata, SafeTensors, TensorInfo};

use crate::{CliError, CliResult};

/// Bytes of tensor data one piece holds: what is resident at a time, per buffer.
pub const PIECE_BYTES: usize = 32 << 20;

/// A safetensors file, mapped.
pub struct Input {
    map: Mmap,
    /// 8 + the header's length: where the data section starts.
    data_start: usize,
    metadata: Metadata,
}

impl Input {
    /// Maps and parses `path` (exit 2 for a file that is not safetensors).
    pub fn open(path: &Path) -> CliResult<Self> {
        let unreadable = |e: &dyn std::fmt::Display| {
            CliError::usage(format!("cannot read input file {}: {e}", path.display()))
        };
        let file = std::fs::File::open(path).map_err(|e| unreadable(&e))?;
        // SAFETY: the mapping is read-only; bfrope never writes the input, and a file changed
        // by another process while bfrope runs is outside what any reader can promise.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| unreadable(&e))?;
        let (n, metadata) = SafeTensors::read_metadata(&map).map_err(|e| {
            CliError::usage(format!(
                "{} is not a valid safetensors file: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            map,
            data_start: 8 + n,
            metadata,
        })
    }

    /// The file's size in bytes (what the output's size is too).
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// Tensor names in the order of their data.
    pub fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    /// The named tensor's dtype, shape and offsets.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    /// The named tensor's bytes, through the mapping.
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        let (s, e) = info.data_offsets;
        &self.map[self.data_start + s..self.data_start + e]
    }

    /// Tells the kernel the pages wholly inside `bytes` (a slice of this mapping) are no
    /// longer needed: they leave resident memory and are read again from the file if used.
    pub fn release(&self, bytes: &[u8]) {
        let base = self.map.as_ptr() as usize;
        let start = bytes.as_ptr() as usize - base;
        let page = 4096;
        let first = start.div_ceil(page) * page;
        let end = (start + bytes.len()) / page * page;
        if end > first {
            // SAFETY: a read-only file mapping; dropped pages are re-read from the file, and
            // no slice handed out is written through.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, first, end - first)
            };
        }
    }

    /// Writes the output (`shown` in messages): the header verbatim, then every tensor in
    /// data order, copied, or through `rotate(name, bytes, out)` for those in `rotated`.
    pub fn write_to(
        &self,
        out: &mut dyn Write,
        shown: &dyn std::fmt::Display,
        rotated: &[String],
        mut rotate: impl FnMut(&str, &[u8], &mut dyn Write) -> CliResult<()>,
    ) -> CliResult<()> {
        let write_err = |e: std::io::Error| CliError::failure(format!("cannot write {shown}: {e}"));
        out.write_all(&self.map[..self.data_start])
            .map_err(write_err)?;
        for name in self.names() {
            let info = self.info(&name).expect("a name of the header");
            let data = self.data(info);
            if rotated.contains(&name) {
                rotate(&name, data, out)?;
            } else {
                for piece in data.chunks(PIECE_BYTES) {
                    out.write_all(piece).map_err(write_err)?;
                    self.release(piece);
                }
            }
        }
        out.flush().map_err(write_err)
    }
}
