//! What one call describes (docs/CONTRACT.md §8), as types the CPU path, the GPU path, the CLI and
//! the test oracle all take: which elements pair up and how many dims rotate
//! ([`Rotation`]), where the tensor lies in its buffer ([`TensorView`]), where each token
//! is ([`Positions`]) and the table. [`RopeCall::validate`] is the one place that checks a
//! call, with messages that print the values.

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::shape::{Direction, Precision, TokenRange};
use crate::table::{RopeTable, TableRecipe};

/// Which two elements of a head form a rotated pair, over the first `rotary_dim` dims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Pairing {
    /// `(x[2i], x[2i+1])`: the seed, GPT-J, Meta, Moshi, GLM, DeepSeek.
    #[default]
    Interleaved,
    /// `(x[i], x[i + R/2])`: GPT-NeoX and Hugging Face's `rotate_half` (Llama, Qwen,
    /// Mistral, Gemma, Phi).
    HalfSplit,
}

impl Pairing {
    /// The CLI's name: `interleaved` or `half`.
    pub fn name(self) -> &'static str {
        match self {
            Pairing::Interleaved => "interleaved",
            Pairing::HalfSplit => "half",
        }
    }

    /// Offsets within the head of pair `i`'s two elements, for `pairs = R/2` pairs.
    #[inline]
    pub fn elements(self, i: usize, pairs: usize) -> (usize, usize) {
        match self {
            Pairing::Interleaved => (2 * i, 2 * i + 1),
            Pairing::HalfSplit => (i, i + pairs),
        }
    }
}

impl std::str::FromStr for Pairing {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "interleaved" => Ok(Pairing::Interleaved),
            "half" | "half-split" => Ok(Pairing::HalfSplit),
            other => Err(Error::Parameter(format!(
                "rotation {other:?} is not a pairing; expected interleaved or half"
            ))),
        }
    }
}

/// How to rotate: pairing, how many dims, which way, in what arithmetic, on elements of
/// which dtype (the output has the input's dtype).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rotation {
    /// Which elements pair up.
    pub pairing: Pairing,
    /// Dims rotated at the start of each head (even, ≤ head_dim); the rest pass through.
    pub rotary_dim: usize,
    /// Forward or inverse.
    pub direction: Direction,
    /// Exact (the contract), plain f32 or `hf`.
    pub precision: Precision,
    /// The elements' dtype, in and out (docs/CONTRACT.md §8). Host buffers hold the raw bits:
    /// `u16` for bf16 and f16, `u32` for f32; GPU buffers pack bf16 and f16 two per `u32`
    /// word (element `2k` in the low half) and f32 one per word.
    pub dtype: Dtype,
}

impl Rotation {
    /// Interleaved, forward, exact over `rotary_dim` dims.
    pub fn new(rotary_dim: usize) -> Self {
        Self {
            pairing: Pairing::Interleaved,
            rotary_dim,
            direction: Direction::Forward,
            precision: Precision::Exact,
            dtype: Dtype::Bf16,
        }
    }

    /// Rotated pairs per head: `rotary_dim / 2`, the width of a table row.
    pub fn pairs(&self) -> usize {
        self.rotary_dim / 2
    }
}

/// A logical `[batch, seq, heads, head_dim]` tensor inside a buffer of elements: its dims,
/// the strides of batch, seq and head in elements (head_dim is contiguous), and the element
/// offset of `[0, 0, 0, 0]`. q and k inside one fused QKV buffer are two views of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorView {
    /// `[batch, seq, heads, head_dim]`.
    pub dims: [usize; 4],
    /// Element strides of batch, seq and head.
    pub strides: [usize; 3],
    /// Element offset of the first element.
    pub offset: usize,
}

impl From<crate::shape::RopeShape> for TensorView {
    /// The contiguous BSHD view of a [`RopeShape`](crate::shape::RopeShape).
    fn from(s: crate::shape::RopeShape) -> Self {
        Self::bshd(s.batch, s.seq, s.heads, s.head_dim)
    }
}

/// The memory orders with names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// `[batch, seq, heads, head_dim]` in memory (the seed's, Moshi's, flash-attn's).
    #[default]
    Bshd,
    /// `[batch, heads, seq, head_dim]` in memory (Hugging Face's).
    Bhsd,
}

impl TensorView {
    /// A contiguous `[batch, seq, heads, head_dim]` tensor at offset 0.
    pub fn bshd(batch: usize, seq: usize, heads: usize, head_dim: usize) -> Self {
        Self {
            dims: [batch, seq, heads, head_dim],
            strides: [seq * heads * head_dim, heads * head_dim, head_dim],
            offset: 0,
        }
    }

    /// A contiguous `[batch, heads, seq, head_dim]` tensor (Hugging Face's) at offset 0,
    /// seen as logical `[batch, seq, heads, head_dim]`.
    pub fn bhsd(batch: usize, heads: usize, seq: usize, head_dim: usize) -> Self {
        Self {
            dims: [batch, seq, heads, head_dim],
            strides: [heads * seq * head_dim, head_dim, seq * head_dim],
            offset: 0,
        }
    }

    /// A contiguous tensor whose memory shape `dims` is in `layout`'s order.
    pub fn contiguous(layout: Layout, dims: [usize; 4]) -> Self {
        match layout {
            Layout::Bshd => Self::bshd(dims[0], dims[1], dims[2], dims[3]),
            Layout::Bhsd => Self::bhsd(dims[0], dims[1], dims[2], dims[3]),
        }
    }

    /// The same view `offset` elements further into the buffer.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// `batch`.
    pub fn batch(&self) -> usize {
        self.dims[0]
    }

    /// `seq`.
    pub fn seq(&self) -> usize {
        self.dims[1]
    }

    /// `heads`.
    pub fn heads(&self) -> usize {
        self.dims[2]
    }

    /// `head_dim`.
    pub fn head_dim(&self) -> usize {
        self.dims[3]
    }

    /// Element index of `[b, s, h, 0]`.
    #[inline]
    pub fn head_start(&self, b: usize, s: usize, h: usize) -> usize {
        self.offset + b * self.strides[0] + s * self.strides[1] + h * self.strides[2]
    }

    /// Elements the buffer must hold: one past the view's last element.
    pub fn span(&self) -> usize {
        let [b, s, h, d] = self.dims;
        self.head_start(b - 1, s - 1, h - 1) + d
    }

    /// Whether this is a contiguous BSHD tensor at offset 0 (the fast kernels' case).
    pub fn is_contiguous_bshd(&self) -> bool {
        let [b, s, h, d] = self.dims;
        *self == Self::bshd(b, s, h, d)
    }
}

/// Where each token is: the table row of token `(b, s)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Positions {
    /// Token `(b, s)` at row `offset + s` in every batch row.
    Offset(usize),
    /// Token `(b, s)` at row `starts[b] + s`: one start per batch row (streams at different
    /// points, as Moshi runs them).
    PerBatch(Vec<usize>),
    /// Token `(b, s)` at row `ids[b · seq + s]`: explicit ids (a decode step with a KV cache,
    /// packed sequences, or tables with one row per token).
    PerToken(Vec<usize>),
}

impl Positions {
    /// The table row of token `(b, s)` of a view with `seq` tokens per batch row.
    #[inline]
    pub fn row(&self, b: usize, s: usize, seq: usize) -> usize {
        match self {
            Positions::Offset(o) => o + s,
            Positions::PerBatch(v) => v[b] + s,
            Positions::PerToken(ids) => ids[b * seq + s],
        }
    }

    /// Checks that per-batch offsets or per-token ids match a `batch × seq` view.
    fn check_len(&self, batch: usize, seq: usize) -> Result<()> {
        match self {
            Positions::PerBatch(v) if v.len() != batch => Err(Error::Parameter(format!(
                "{} per-batch position offsets for batch {batch}",
                v.len()
            ))),
            Positions::PerToken(ids) if ids.len() != batch * seq => Err(Error::Parameter(format!(
                "{} position ids for {} tokens (batch {batch} x seq {seq})",
                ids.len(),
                batch * seq
            ))),
            _ => Ok(()),
        }
    }

    /// The distinct positions of the tokens of a `batch × seq` view, in increasing order.
    pub fn used(&self, batch: usize, seq: usize) -> Result<Vec<usize>> {
        self.check_len(batch, seq)?;
        let mut used: Vec<usize> = (0..batch)
            .flat_map(|b| (0..seq).map(move |s| self.row(b, s, seq)))
            .collect();
        used.sort_unstable();
        used.dedup();
        Ok(used)
    }

    /// A table for exactly the positions of a `batch × seq` view — built as `recipe` says
    /// (base, rotary_dim, scaling variant, angle mode; one axis), one row per distinct
    /// position in increasing order (dynamic NTK and LongRoPE see the largest position of
    /// the call) — and these positions as rows of it (the same form: an offset stays an
    /// offset, since consecutive positions get consecutive rows).
    pub fn built_table(
        &self,
        recipe: &TableRecipe,
        batch: usize,
        seq: usize,
    ) -> Result<(RopeTable, Positions)> {
        let used = self.used(batch, seq)?;
        if recipe.axes.count() != 1 {
            return Err(Error::Parameter(format!(
                "axes {} need one position per axis and token; build the table with \
                 TableRecipe::table_per_token",
                recipe.axes.name()
            )));
        }
        let ids: Vec<u64> = used.iter().map(|&p| p as u64).collect();
        let table = recipe.table_per_token(&ids)?;
        // Every position of the view is in `used`.
        let row = |p: usize| used.binary_search(&p).unwrap_or(0);
        let positions = match self {
            Positions::Offset(o) => Positions::Offset(row(*o)),
            Positions::PerBatch(v) => Positions::PerBatch(v.iter().map(|&o| row(o)).collect()),
            Positions::PerToken(ids) => Positions::PerToken(ids.iter().map(|&p| row(p)).collect()),
        };
        Ok((table, positions))
    }

    /// The positions of the tokens of `range` (of a tensor with `seq` tokens per batch row)
    /// for that range rotated as a tensor of its own ([`TokenRange::shape`]): whole
    /// sequences keep their form; a piece of one sequence starts `seq_start` further.
    pub fn piece(&self, seq: usize, range: &TokenRange) -> Positions {
        let whole = range.seq_start == 0 && range.tokens % seq == 0;
        let b = range.first_token / seq;
        match self {
            Positions::Offset(o) if whole => Positions::Offset(*o),
            Positions::Offset(_) => Positions::Offset(self.row(b, range.seq_start, seq)),
            Positions::PerBatch(v) if whole => {
                Positions::PerBatch(v[b..b + range.tokens / seq].to_vec())
            }
            Positions::PerBatch(_) => Positions::Offset(self.row(b, range.seq_start, seq)),
            Positions::PerToken(ids) => Positions::PerToken(
                ids[range.first_token..range.first_token + range.tokens].to_vec(),
            ),
        }
    }

    /// The positions of a packed `[tokens, heads, head_dim]` batch (flash-attn's varlen):
    /// sequence `i` holds tokens `cu_seqlens[i] .. cu_seqlens[i + 1]` at positions
    /// `offset, offset + 1, ...`. Errors name a `cu_seqlens` that is not non-decreasing from
    /// 0 to `tokens`.
    pub fn from_cu_seqlens(cu_seqlens: &[usize], tokens: usize, offset: usize) -> Result<Self> {
        if cu_seqlens.len() < 2 || cu_seqlens[0] != 0 || cu_seqlens[cu_seqlens.len() - 1] != tokens
        {
            return Err(Error::Parameter(format!(
                "cu_seqlens {cu_seqlens:?} must run from 0 to the {tokens} tokens"
            )));
        }
        if let Some(w) = cu_seqlens.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::Parameter(format!(
                "cu_seqlens {cu_seqlens:?} decreases at index {}",
                w + 1
            )));
        }
        let mut ids = Vec::with_capacity(tokens);
        for w in cu_seqlens.windows(2) {
            ids.extend((0..w[1] - w[0]).map(|s| offset + s));
        }
        Ok(Positions::PerToken(ids))
    }
}

/// One call: a view of a buffer, the rotation, the positions and the table.
#[derive(Debug, Clone, Copy)]
pub struct RopeCall<'a> {
    /// Where the tensor lies.
    pub view: TensorView,
    /// How to rotate.
    pub rotation: Rotation,
    /// Where each token is.
    pub positions: &'a Positions,
    /// `(cos, sin)` per (row, frequency): `rotary_dim / 2` pairs per row.
    pub table: &'a RopeTable,
}

impl<'a> RopeCall<'a> {
    /// A call rotating `view` forward, exactly, in interleaved pairs over the whole head
    /// (`rotary_dim = head_dim`); the `with_*` methods change the rest.
    ///
    /// ```
    /// use bfrope::{Direction, Pairing, Positions, RopeCall, RopeTable, TableSpec, TensorView};
    /// let table = RopeTable::build(&TableSpec::new(32, 16))?;
    /// let positions = Positions::Offset(0);
    /// let call = RopeCall::new(TensorView::bhsd(1, 8, 16, 64), &positions, &table)
    ///     .with_pairing(Pairing::HalfSplit)
    ///     .with_rotary_dim(32)
    ///     .with_direction(Direction::Inverse);
    /// assert_eq!(call.rotation.pairs(), 16);
    /// # Ok::<(), bfrope::Error>(())
    /// ```
    pub fn new(view: TensorView, positions: &'a Positions, table: &'a RopeTable) -> Self {
        Self {
            view,
            rotation: Rotation::new(view.head_dim()),
            positions,
            table,
        }
    }

    /// The same call with `pairing`.
    pub fn with_pairing(mut self, pairing: Pairing) -> Self {
        self.rotation.pairing = pairing;
        self
    }

    /// The same call rotating the first `rotary_dim` dims of each head.
    pub fn with_rotary_dim(mut self, rotary_dim: usize) -> Self {
        self.rotation.rotary_dim = rotary_dim;
        self
    }

    /// The same call in `direction`.
    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.rotation.direction = direction;
        self
    }

    /// The same call in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.rotation.precision = precision;
        self
    }

    /// The same call on elements of `dtype` (bf16, f16 or f32), rotated in that dtype.
    pub fn with_dtype(mut self, dtype: Dtype) -> Self {
        self.rotation.dtype = dtype;
        self
    }

    /// The call as the contiguous kernels take it — a contiguous BSHD tensor at offset 0, or
    /// a contiguous BHSD one (Hugging Face's `[batch, heads, seq, head_dim]`, which is BSHD
    /// with `batch · heads` sequences of one head), interleaved pairs over the whole head,
    /// positions `offset + s` — as `(shape, row offset)`; `None` for every other call (the
    /// general paths).
    pub fn contiguous(&self) -> Option<(crate::shape::RopeShape, usize)> {
        match self.contiguous_pairs()? {
            (shape, offset, Pairing::Interleaved) => Some((shape, offset)),
            _ => None,
        }
    }

    /// [`contiguous`](Self::contiguous) for either pairing: `(shape, row offset, pairing)`
    /// for a contiguous BSHD or BHSD tensor at offset 0 rotated over the whole head at
    /// positions `offset + s`.
    pub fn contiguous_pairs(&self) -> Option<(crate::shape::RopeShape, usize, Pairing)> {
        let v = &self.view;
        let r = &self.rotation;
        let Positions::Offset(o) = self.positions else {
            return None;
        };
        if r.rotary_dim != v.head_dim() {
            return None;
        }
        let [b, s, h, d] = v.dims;
        let dims = if v.is_contiguous_bshd() {
            [b, s, h, d]
        } else if *v == TensorView::bhsd(b, h, s, d) {
            [b.checked_mul(h)?, s, 1, d]
        } else {
            return None;
        };
        crate::shape::RopeShape::from_dims(&dims)
            .ok()
            .map(|shape| (shape, *o, r.pairing))
    }

    /// Checks the call against a buffer of `buffer_len` elements: every dim non-zero, head_dim
    /// and rotary_dim even with `2 ≤ rotary_dim ≤ head_dim`, the view inside the buffer, the
    /// table as wide as `rotary_dim / 2` and as long as the positions need.
    pub fn validate(&self, buffer_len: usize) -> Result<()> {
        check(
            &self.view,
            &self.rotation,
            self.positions,
            self.table.rows(),
            self.table.pairs(),
            buffer_len,
        )
    }
}

/// The checks of [`RopeCall::validate`] on the parts of a call (the GPU path has a table
/// buffer of `table_rows × table_pairs` pairs rather than a [`RopeTable`]).
pub fn check(
    view: &TensorView,
    rotation: &Rotation,
    positions: &Positions,
    table_rows: usize,
    table_pairs: usize,
    buffer_len: usize,
) -> Result<()> {
    let dims = view.dims;
    let shape_err = |reason: String| Error::Shape {
        shape: dims.to_vec(),
        reason,
    };
    if dims.contains(&0) {
        return Err(shape_err("every dimension must be at least 1".into()));
    }
    let d = view.head_dim();
    let r = rotation.rotary_dim;
    if d % 2 != 0 {
        return Err(shape_err(format!("head_dim {d} is odd")));
    }
    if r == 0 || r % 2 != 0 || r > d {
        return Err(shape_err(format!(
            "rotary_dim {r} must be even and between 2 and head_dim {d}"
        )));
    }
    let span = dims
        .iter()
        .zip([view.strides[0], view.strides[1], view.strides[2], 1])
        .try_fold(view.offset, |acc, (&n, st)| {
            (n - 1).checked_mul(st).and_then(|v| acc.checked_add(v))
        })
        .and_then(|v| v.checked_add(1));
    match span {
        Some(span) if span <= buffer_len => {}
        _ => {
            return Err(Error::Length {
                shape: dims.to_vec(),
                expected: span.unwrap_or(usize::MAX),
                got: buffer_len,
            })
        }
    }
    // No element may belong to two places of the view (rotated twice, or raced on the GPU):
    // with the dims ordered by stride, each stride must clear everything inside it.
    let mut outer: Vec<(usize, usize, &str)> = [
        (view.strides[0], dims[0], "batch"),
        (view.strides[1], dims[1], "seq"),
        (view.strides[2], dims[2], "head"),
    ]
    .into_iter()
    .filter(|&(_, n, _)| n > 1)
    .collect();
    outer.sort_by_key(|&(stride, _, _)| stride);
    let mut extent = d;
    for (stride, n, name) in outer {
        if stride < extent {
            return Err(shape_err(format!(
                "strides {:?} make the view overlap itself: the {name} stride {stride} is less than the {extent} elements inside it",
                view.strides
            )));
        }
        extent += stride * (n - 1);
    }
    if span.unwrap_or(0) > u32::MAX as usize {
        return Err(shape_err(
            "the view spans more than 2^32 - 1 elements".into(),
        ));
    }
    if table_pairs != rotation.pairs() {
        return Err(Error::Table(format!(
            "table has {table_pairs} pairs per row but rotary_dim {r} needs {}",
            rotation.pairs()
        )));
    }
    let seq = view.seq();
    let (max_row, at) = match positions {
        Positions::Offset(o) => (o.saturating_add(seq - 1), format!("from position {o}")),
        Positions::PerBatch(v) => {
            positions.check_len(view.batch(), seq)?;
            let (b, &o) = v
                .iter()
                .enumerate()
                .max_by_key(|(_, &o)| o)
                .expect("batch >= 1");
            (
                o.saturating_add(seq - 1),
                format!("from position {o} (batch row {b})"),
            )
        }
        Positions::PerToken(ids) => {
            positions.check_len(view.batch(), seq)?;
            let (t, &id) = ids
                .iter()
                .enumerate()
                .max_by_key(|(_, &id)| id)
                .expect("tokens >= 1");
            (id, format!("at position id {id} (token {t})"))
        }
    };
    let need = max_row.saturating_add(1);
    if need > table_rows {
        return Err(Error::Table(format!(
            "table has {table_rows} rows but sequence length {seq} {at} needs {need}"
        )));
    }
    if (need as u64).saturating_mul(rotation.pairs() as u64) > u32::MAX as u64 {
        return Err(Error::Limit(format!(
            "table rows up to {need} of {} pairs exceed 32-bit indexing",
            rotation.pairs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TableSpec;

    fn built_row(p: usize, rotary_dim: usize) -> Vec<[f32; 2]> {
        let spec = TableSpec {
            first_position: p as u64,
            ..TableSpec::new(rotary_dim, 1)
        };
        RopeTable::build(&spec).unwrap().cos_sin().to_vec()
    }

    /// A table for just the positions used holds, at each token's new row, the row a full
    /// table holds at its position; offsets stay offsets.
    #[test]
    fn spec_built_table_covers_just_the_positions_used() {
        let spec = TableSpec::new(8, 1);
        let ids = Positions::PerToken(vec![5, 100_000, 6, 5]);
        let (table, rows) = ids.built_table(&spec.recipe(), 2, 2).unwrap();
        assert_eq!(table.rows(), 3);
        assert_eq!(rows, Positions::PerToken(vec![0, 2, 1, 0]));
        for (t, p) in [5, 100_000, 6, 5].into_iter().enumerate() {
            let r = rows.row(t / 2, t % 2, 2);
            assert_eq!(
                &table.cos_sin()[r * 4..][..4],
                &built_row(p, 8)[..],
                "token {t}"
            );
        }
        let (table, rows) = Positions::Offset(7)
            .built_table(&spec.recipe(), 3, 4)
            .unwrap();
        assert_eq!((table.rows(), rows), (4, Positions::Offset(0)));
        assert_eq!(&table.cos_sin()[12..], &built_row(10, 8)[..]);
        let e = Positions::PerBatch(vec![1])
            .built_table(&spec.recipe(), 2, 2)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("1 per-batch position offsets for batch 2"),
            "{e}"
        );
    }

    /// A piece of whole tokens keeps the rows its tokens had in the whole call.
    #[test]
    fn spec_piece_positions_match_the_whole() {
        let (batch, seq) = (3, 5);
        let all = [
            Positions::Offset(4),
            Positions::PerBatch(vec![9, 0, 3]),
            Positions::PerToken((0..15).map(|t| (t * 7) % 11).collect()),
        ];
        let shape = crate::shape::RopeShape::new(batch, seq, 1, 2).unwrap();
        for p in &all {
            for max in [1, 2, 5, 7, 15] {
                for r in shape.token_ranges(max) {
                    let piece = p.piece(seq, &r);
                    let ps = r.shape(&shape);
                    for t in 0..r.tokens {
                        let whole = r.first_token + t;
                        assert_eq!(
                            piece.row(t / ps.seq, t % ps.seq, ps.seq),
                            p.row(whole / seq, whole % seq, seq),
                            "{p:?} max {max} {r:?} token {t}"
                        );
                    }
                }
            }
        }
    }
}
