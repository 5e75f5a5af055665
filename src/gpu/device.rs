//! The convenience layer: a device with its queue and kernels ([`Gpu`]), host data in and out
//! through bounded staging, and a [`Rotator`] that keeps a table and buffers on the GPU.
//!
//! Driver trouble never hangs or panics: every operation runs inside validation and
//! out-of-memory error scopes, a device-lost callback records the loss, uncaptured errors are
//! logged instead of wgpu's default panic, and each becomes an [`Error`] naming the adapter.

use std::future::Future;
use std::sync::{Arc, Mutex};

use half::bf16;

use crate::error::{Error, Result};
use crate::gpu::adapter::{instance, pick, AdapterReport};
use crate::gpu::kernels::RopeKernels;
use crate::gpu::plan::{RopeArgs, ViewArgs, ViewTensor};
use crate::shape::{Direction, Precision, RopeShape};
use crate::spec::RopeCall;
use crate::table::RopeTable;

/// The largest staging buffer an upload or a read-back uses: host data goes through the
/// queue and comes back in pieces of at most this many bytes.
pub const STAGING_BYTES: u64 = 16 << 20;

/// What the device's callbacks report, and whose turn it is.
#[derive(Debug, Default)]
struct DeviceState {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Option<String>>,
    turns: Mutex<Turns>,
}

/// Calls on one [`Gpu`] take turns: wgpu's error scopes must be popped in the order they
/// were pushed, and two `async` calls interleaved on one thread (the browser) would pop each
/// other's. A small fair queue: the first caller runs, the others wait for a message.
#[derive(Debug, Default)]
struct Turns {
    busy: bool,
    waiting: std::collections::VecDeque<futures_channel::oneshot::Sender<()>>,
}

/// The turn of one call; the next waiting call runs when it is dropped.
struct Turn<'a>(&'a DeviceState);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = locked(&self.0.turns);
        // Hand the turn over (busy stays set); a waiter that went away is skipped.
        while let Some(next) = turns.waiting.pop_front() {
            if next.send(()).is_ok() {
                return;
            }
        }
        turns.busy = false;
    }
}

impl DeviceState {
    async fn turn(&self) -> Turn<'_> {
        let wait = {
            let mut turns = locked(&self.turns);
            if turns.busy {
                let (tx, rx) = futures_channel::oneshot::channel();
                turns.waiting.push_back(tx);
                Some(rx)
            } else {
                turns.busy = true;
                None
            }
        };
        if let Some(rx) = wait {
            // The sender is only dropped after sending (or when the state is gone).
            let _ = rx.await;
        }
        Turn(self)
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A device with its queue and kernels: the convenience layer over [`RopeKernels`].
#[derive(Debug, Clone)]
pub struct Gpu {
    report: AdapterReport,
    device: wgpu::Device,
    queue: wgpu::Queue,
    kernels: Arc<RopeKernels>,
    state: Arc<DeviceState>,
}

impl Gpu {
    /// Opens the best adapter, or the first whose name, backend, driver or driver info
    /// contains `selector` (case-insensitive). With no selector on native, a real GPU is
    /// preferred over a CPU implementation such as lavapipe. A selector that matches no
    /// adapter is [`Error::Argument`] (the message lists the adapters); no adapter at all
    /// is [`Error::NoAdapter`].
    pub async fn new(selector: Option<&str>) -> Result<Self> {
        let inst = instance();
        let adapter = pick(&inst, selector).await?;
        Self::open(adapter).await
    }

    /// Opens a device on `adapter` with its full limits (large tensors need large bindings)
    /// and timestamp queries where offered.
    pub async fn open(adapter: wgpu::Adapter) -> Result<Self> {
        let report = AdapterReport::of(&adapter);
        let mut required_features = wgpu::Features::empty();
        if report.timestamps {
            required_features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("bfrope"),
                required_features,
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| {
                Error::Gpu(format!("cannot open a device on {}: {e}", report.summary()))
            })?;
        Ok(Self::from_parts(report, device, queue))
    }

    /// Wraps a device the caller already has (tests inject their own this way). Installs a
    /// device-lost callback and an uncaptured-error handler on it (replacing any).
    pub fn from_parts(report: AdapterReport, device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let state = Arc::new(DeviceState::default());
        let lost = state.clone();
        device.set_device_lost_callback(move |reason, message| {
            *locked(&lost.lost) = Some(if message.is_empty() {
                format!("{reason:?}")
            } else {
                format!("{reason:?}: {message}")
            });
        });
        let uncaptured = state.clone();
        let name = report.summary();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("bfrope: uncaptured GPU error on {name}: {e}");
            *locked(&uncaptured.uncaptured) = Some(e.to_string());
        }));
        // On wasm32 wgpu's handles are neither Send nor Sync; the Arc only shares the cache
        // between clones of this Gpu there.
        #[allow(clippy::arc_with_non_send_sync)]
        let kernels = Arc::new(RopeKernels::new(&device));
        Self {
            report,
            device,
            queue,
            kernels,
            state,
        }
    }

    /// The same device with kernels that split every call at `bytes` per storage binding
    /// (clamped to the device's limit): the hook that lets tests cover slicing with small
    /// tensors on any adapter.
    pub fn with_max_binding(mut self, bytes: u64) -> Self {
        #[allow(clippy::arc_with_non_send_sync)]
        let kernels = Arc::new(RopeKernels::new(&self.device).with_max_binding(bytes));
        self.kernels = kernels;
        self
    }

    /// The adapter this device runs on.
    pub fn adapter(&self) -> &AdapterReport {
        &self.report
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The pipeline owner, for recording into your own encoders.
    pub fn kernels(&self) -> &RopeKernels {
        &self.kernels
    }

    /// [`Error::DeviceLost`] naming the adapter once the device is lost.
    pub fn check_alive(&self) -> Result<()> {
        match locked(&self.state.lost).as_ref() {
            Some(reason) => Err(Error::DeviceLost(format!(
                "{} ({reason})",
                self.report.summary()
            ))),
            None => Ok(()),
        }
    }

    /// The last GPU error no error scope caught (wgpu would otherwise panic on it), if any.
    pub fn uncaptured_error(&self) -> Option<String> {
        locked(&self.state.uncaptured).clone()
    }

    /// [`check_alive`](Self::check_alive) after a poll, which runs the device-lost callback
    /// of a device lost since the last one.
    fn check_alive_now(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.check_alive()
    }

    /// An error while `what`, named with the adapter; a lost device wins.
    fn failed(&self, what: &str, e: impl std::fmt::Display) -> Error {
        match self.check_alive_now() {
            Err(lost) => lost,
            Ok(()) => Error::Gpu(format!("{what} failed on {}: {e}", self.report.summary())),
        }
    }

    /// Runs `work` inside validation and out-of-memory error scopes: a driver error, a
    /// validation error or a lost device becomes an [`Error`] naming the adapter.
    /// Calls take turns (see `Turns`), so scopes always nest.
    async fn guarded<T>(&self, what: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        let _turn = self.state.turn().await;
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = work.await;
        let v = validation.pop().await;
        let o = oom.pop().await;
        if let Some(e) = v.or(o) {
            return Err(self.failed(what, e));
        }
        if result.is_err() {
            self.check_alive_now()?;
        }
        result
    }

    /// Waits for submitted work (native; the browser waits in `map_async`).
    fn wait(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| self.failed("waiting for the GPU", e))?;
        Ok(())
    }

    /// Writes `data` into `buffer` at offset 0 through the queue, at most
    /// [`STAGING_BYTES`] at a time (native waits between pieces so staging is freed).
    fn upload(&self, buffer: &wgpu::Buffer, data: &[u8]) -> Result<()> {
        let mut pieces = data.chunks(STAGING_BYTES as usize).peekable();
        let mut offset = 0u64;
        while let Some(piece) = pieces.next() {
            self.queue.write_buffer(buffer, offset, piece);
            offset += piece.len() as u64;
            if cfg!(not(target_arch = "wasm32")) && pieces.peek().is_some() {
                self.queue.submit([]);
                self.wait()?;
            }
        }
        Ok(())
    }

    /// A buffer of `bytes` (rounded up to 16) with `usage`.
    fn buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.div_ceil(16).max(1) * 16,
            usage,
            mapped_at_creation: false,
        })
    }

    /// A mappable read-back buffer for `bytes` of data: at most [`STAGING_BYTES`].
    fn staging(&self, bytes: u64) -> wgpu::Buffer {
        self.buffer(
            "bfrope::readback",
            bytes.min(STAGING_BYTES),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// Submits `first` (if any) with copies of `src` into `staging`, piece by piece, and
    /// fills `out` with the first `out.len()` bytes of `src`.
    async fn read_into(
        &self,
        mut first: Option<wgpu::CommandEncoder>,
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        out: &mut [u8],
    ) -> Result<()> {
        let cap = staging.size() as usize;
        for (k, piece) in out.chunks_mut(cap).enumerate() {
            let offset = (k * cap) as u64;
            let n = piece.len() as u64;
            let mut encoder = first.take().unwrap_or_else(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("bfrope::readback"),
                    })
            });
            encoder.copy_buffer_to_buffer(src, offset, staging, 0, n);
            self.queue.submit([encoder.finish()]);
            let slice = staging.slice(0..n);
            let (tx, rx) = futures_channel::oneshot::channel();
            slice.map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            self.wait()?;
            rx.await
                .map_err(|_| self.failed("reading the result back", "the mapping was cancelled"))?
                .map_err(|e| self.failed("reading the result back", e))?;
            {
                let view = slice
                    .get_mapped_range()
                    .map_err(|e| self.failed("reading the result back", e))?;
                piece.copy_from_slice(&view);
            }
            staging.unmap();
        }
        Ok(())
    }

    /// Submits `encoder` with a copy of `buffer` into mappable staging (at most
    /// [`STAGING_BYTES`] at a time), waits for the GPU and returns the first `bytes` bytes
    /// (a multiple of 4) as words.
    pub async fn read_back(
        &self,
        encoder: wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u32>> {
        if bytes % 4 != 0 || bytes > buffer.size() {
            return Err(Error::Argument(format!(
                "cannot read back {bytes} bytes of a {}-byte buffer (a multiple of 4 within it)",
                buffer.size()
            )));
        }
        self.guarded("reading back a buffer", async {
            let staging = self.staging(bytes);
            let mut words = vec![0u32; (bytes / 4) as usize];
            self.read_into(
                Some(encoder),
                buffer,
                &staging,
                bytemuck::cast_slice_mut(&mut words),
            )
            .await?;
            Ok(words)
        })
        .await
    }

    /// Uploads `table` once for many calls of one [`Rotator`].
    pub async fn rotator(&self, table: &RopeTable) -> Result<Rotator<'_>> {
        let bytes = table.as_bytes();
        if bytes.len() as u64 > self.report.max_buffer {
            return Err(Error::Limit(format!(
                "a table of {} bytes exceeds this device's max_buffer_size of {} bytes",
                bytes.len(),
                self.report.max_buffer
            )));
        }
        let buffer = self
            .guarded("uploading the table", async {
                let buffer = self.buffer(
                    "bfrope::table",
                    bytes.len() as u64,
                    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                );
                self.upload(&buffer, bytes)?;
                Ok(buffer)
            })
            .await?;
        Ok(Rotator {
            gpu: self,
            table: buffer,
            table_rows: table.rows(),
            pairs: table.pairs(),
            tensors: None,
            staging: None,
        })
    }

    /// Rotates host bf16 data on the GPU and returns the result.
    pub async fn rotate(
        &self,
        x: &[bf16],
        shape: RopeShape,
        table: &RopeTable,
        row_offset: usize,
        direction: Direction,
        precision: Precision,
    ) -> Result<Vec<bf16>> {
        let bits = self
            .rotate_bits(
                bytemuck::cast_slice(x),
                shape,
                table,
                row_offset,
                direction,
                precision,
            )
            .await?;
        Ok(bits.into_iter().map(bf16::from_bits).collect())
    }

    /// Rotates raw bf16 bit patterns on the GPU (what the web page and the CLI hold). Any
    /// size up to the device's `max_buffer_size`: the call is split into as many dispatches
    /// as the binding and grid limits need, and data moves through bounded staging.
    pub async fn rotate_bits(
        &self,
        x: &[u16],
        shape: RopeShape,
        table: &RopeTable,
        row_offset: usize,
        direction: Direction,
        precision: Precision,
    ) -> Result<Vec<u16>> {
        shape.check_len(x.len())?;
        table.check_fits(shape.seq, shape.pairs(), row_offset)?;
        let mut rotator = self.rotator(table).await?;
        let mut out = vec![0u16; x.len()];
        rotator
            .rotate_into(x, &mut out, shape, row_offset, direction, precision)
            .await?;
        Ok(out)
    }
}

impl Gpu {
    /// Rotates the view of `call` in a copy of `x` (any view, pairing, rotary_dim and
    /// positions per batch row) and returns the buffer: elements outside the view, and
    /// dims past rotary_dim, come back bit for bit. Contiguous BSHD interleaved whole-head
    /// calls take the fast kernels (split over any size); others the general kernel.
    pub async fn apply(&self, call: &RopeCall<'_>, x: &[u16]) -> Result<Vec<u16>> {
        call.validate(x.len())?;
        let v = call.view;
        let rot = call.rotation;
        if let Some((shape, offset)) = call.contiguous() {
            let span = shape.elements();
            let mut out = x.to_vec();
            let y = self
                .rotate_bits(
                    &x[..span],
                    shape,
                    call.table,
                    offset,
                    rot.direction,
                    rot.precision,
                )
                .await?;
            out[..span].copy_from_slice(&y);
            return Ok(out);
        }
        let words = x.len().div_ceil(2);
        let bytes = words as u64 * 4;
        if bytes > self.report.max_buffer {
            return Err(Error::Limit(format!(
                "a buffer of {bytes} bytes exceeds this device's max_buffer_size of {} bytes",
                self.report.max_buffer
            )));
        }
        self.guarded("rotating a view", async {
            let usage = wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC;
            let input = self.buffer("bfrope::input", bytes, usage);
            let output = self.buffer("bfrope::output", bytes, usage);
            let table = self.buffer(
                "bfrope::table",
                call.table.as_bytes().len() as u64,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            );
            let mut padded;
            let host: &[u16] = if x.len() % 2 == 0 {
                x
            } else {
                padded = x.to_vec();
                padded.push(0);
                &padded
            };
            self.upload(&input, bytemuck::cast_slice(host))?;
            self.upload(&table, call.table.as_bytes())?;
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("bfrope::apply"),
                });
            encoder.copy_buffer_to_buffer(&input, 0, &output, 0, bytes);
            self.kernels.record_view(
                &mut encoder,
                &ViewArgs {
                    q: ViewTensor {
                        input: &input,
                        output: &output,
                        view: v,
                    },
                    k: None,
                    table: &table,
                    table_rows: call.table.rows(),
                    rotation: rot,
                    positions: call.positions,
                    device_rows: None,
                },
            )?;
            let staging = self.staging(bytes);
            padded = vec![0u16; words * 2];
            self.read_into(
                Some(encoder),
                &output,
                &staging,
                bytemuck::cast_slice_mut(&mut padded),
            )
            .await?;
            padded.truncate(x.len());
            Ok(padded)
        })
        .await
    }
}

/// A table kept on the GPU with input, output and staging buffers reused across calls: the
/// streaming form of [`Gpu::rotate_bits`] (the CLI rotates large tensors piece by piece
/// through one `Rotator`, so memory stays bounded by the piece size).
#[derive(Debug)]
pub struct Rotator<'g> {
    gpu: &'g Gpu,
    table: wgpu::Buffer,
    table_rows: usize,
    pairs: usize,
    tensors: Option<(wgpu::Buffer, wgpu::Buffer)>,
    staging: Option<wgpu::Buffer>,
}

impl Rotator<'_> {
    /// Rotates `x` (the bits of a `shape` tensor) into `out` with table rows from
    /// `row_offset`.
    pub async fn rotate_into(
        &mut self,
        x: &[u16],
        out: &mut [u16],
        shape: RopeShape,
        row_offset: usize,
        direction: Direction,
        precision: Precision,
    ) -> Result<()> {
        shape.check_len(x.len())?;
        shape.check_len(out.len())?;
        let gpu = self.gpu;
        if self.pairs != shape.pairs() {
            return Err(Error::Table(format!(
                "table has {} pairs per row but head_dim {} needs {}",
                self.pairs,
                shape.head_dim,
                shape.pairs()
            )));
        }
        let bytes = shape.elements() as u64 * 2;
        if bytes > gpu.report.max_buffer {
            return Err(Error::Limit(format!(
                "a tensor of {bytes} bytes exceeds this device's max_buffer_size of {} bytes",
                gpu.report.max_buffer
            )));
        }
        let fits = |b: &Option<(wgpu::Buffer, wgpu::Buffer)>| {
            b.as_ref().is_some_and(|(i, _)| i.size() >= bytes)
        };
        if !fits(&self.tensors) {
            self.tensors = None;
            let usage = wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC;
            self.tensors = Some((
                gpu.buffer("bfrope::input", bytes, usage),
                gpu.buffer("bfrope::output", bytes, usage),
            ));
        }
        let want = bytes.min(STAGING_BYTES);
        if self.staging.as_ref().is_none_or(|s| s.size() < want) {
            self.staging = None;
            self.staging = Some(gpu.staging(want));
        }
        let (input, output) = self.tensors.as_ref().expect("allocated above");
        let staging = self.staging.as_ref().expect("allocated above");
        let table = &self.table;
        let table_rows = self.table_rows;
        gpu.guarded("rotating", async {
            gpu.upload(input, bytemuck::cast_slice(x))?;
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("bfrope::rotate"),
                });
            gpu.kernels.record(
                &mut encoder,
                &RopeArgs {
                    input,
                    output,
                    table,
                    table_rows,
                    row_offset,
                    shape,
                    direction,
                    precision,
                },
            )?;
            gpu.read_into(
                Some(encoder),
                output,
                staging,
                bytemuck::cast_slice_mut(out),
            )
            .await
        })
        .await
    }
}

/// Blocking forms for native callers (CLI, tests, benchmarks).
#[cfg(not(target_arch = "wasm32"))]
impl Gpu {
    /// [`Gpu::new`], blocking.
    pub fn new_blocking(selector: Option<&str>) -> Result<Self> {
        pollster::block_on(Self::new(selector))
    }

    /// [`Gpu::rotate_bits`], blocking.
    pub fn rotate_bits_blocking(
        &self,
        x: &[u16],
        shape: RopeShape,
        table: &RopeTable,
        row_offset: usize,
        direction: Direction,
        precision: Precision,
    ) -> Result<Vec<u16>> {
        pollster::block_on(self.rotate_bits(x, shape, table, row_offset, direction, precision))
    }

    /// [`Gpu::apply`], blocking.
    pub fn apply_blocking(&self, call: &RopeCall<'_>, x: &[u16]) -> Result<Vec<u16>> {
        pollster::block_on(self.apply(call, x))
    }

    /// [`Gpu::rotator`], blocking.
    pub fn rotator_blocking(&self, table: &RopeTable) -> Result<Rotator<'_>> {
        pollster::block_on(self.rotator(table))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Rotator<'_> {
    /// [`Rotator::rotate_into`], blocking.
    pub fn rotate_into_blocking(
        &mut self,
        x: &[u16],
        out: &mut [u16],
        shape: RopeShape,
        row_offset: usize,
        direction: Direction,
        precision: Precision,
    ) -> Result<()> {
        pollster::block_on(self.rotate_into(x, out, shape, row_offset, direction, precision))
    }
}
