//! The one error type of the library: every variant names the offending value.

use thiserror::Error;

/// Everything the library can refuse or fail at.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A tensor shape that bfrope cannot rotate.
    #[error("invalid shape {shape:?}: {reason}")]
    Shape {
        /// The shape as given, `[batch, seq, heads, head_dim]`.
        shape: Vec<usize>,
        /// Why it is refused.
        reason: String,
    },
    /// The data length does not match the shape.
    #[error("data holds {got} elements but shape {shape:?} needs {expected}")]
    Length {
        /// The shape as given.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements provided.
        got: usize,
    },
    /// A rotation table that does not fit the tensor.
    #[error("invalid table: {0}")]
    Table(String),
    /// A table-construction parameter out of range (base, positions, dimension).
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// No adapter matched, or none exists.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The tensor or table is larger than the device allows in one binding.
    #[error("too large for the device: {0}")]
    Limit(String),
    /// A caller's mistake in using the library (a buffer too small or without `STORAGE`
    /// usage, input and output the same buffer): fix the call.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// The device was lost (destroyed, reset, driver crash); the message names the adapter.
    /// Open a new [`Gpu`](crate::Gpu) to go on.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The GPU or its driver reported an error (validation, out of memory, mapping); the
    /// message names the adapter.
    #[error("GPU error: {0}")]
    Gpu(String),
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;
