//! The convenience layer: a device with its queue and kernels ([`Gpu`]), host data in and out
//! through bounded staging, and a [`Rotator`] that keeps a table and buffers on the GPU.
//!
//! Driver trouble never hangs or panics: every operation runs inside validation and
//! out-of-memory error scopes, a device-lost callback records the loss, uncaptured errors are
//! logged instead of wgpu's default panic, and each becomes an [`Error`] naming the adapter.

use std::future::Future;
use std::sync::{Arc, Mutex};

use half::{bf16, f16};

use crate::dtype::{Bits, Dtype};

use crate::error::{Error, Result};
use crate::gpu::adapter::{instance, pick, AdapterReport};
use crate::gpu::call::BufferCall;
use crate::gpu::kernels::RopeKernels;
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

    /// Uploads `table` once for many calls of one [`Rotator`] (calls whose
    /// [`RopeCall::table`] is this table).
    pub async fn rotator<'a>(&'a self, table: &'a RopeTable) -> Result<Rotator<'a>> {
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
            host_table: table,
            table_in_range: table.in_fast_range(),
            table: buffer,
            tensors: None,
            staging: None,
        })
    }

    /// Rotates the view of `call` in a copy of `x` (raw bit patterns of the call's dtype,
    /// what the web page and the CLI hold: `u16` for bf16 and f16, `u32` for f32; output in
    /// the same dtype) and returns the buffer: elements outside the view, and dims past
    /// rotary_dim, come back bit for bit. Any view, pairing, rotary_dim and positions; any
    /// size up to the device's `max_buffer_size` (the library splits the work over the
    /// binding and grid limits; data moves through bounded staging). Contiguous BSHD
    /// and BHSD whole-head calls at an offset ([`RopeCall::contiguous_pairs`]; bf16 or f16,
    /// half-split with pairs per head a multiple of 4) take the vec4 kernels, others (and
    /// every f32 call) the general kernel, as the planner picks
    /// ([`kernel_for`](crate::gpu::plan::kernel_for)).
    pub async fn apply<E: Bits>(&self, call: &RopeCall<'_>, x: &[E]) -> Result<Vec<E>> {
        call.rotation.dtype.check_bits::<E>()?;
        call.validate(x.len())?;
        let mut rotator = self.rotator(call.table).await?;
        let mut out = vec![E::default(); x.len()];
        rotator.apply_into(call, x, &mut out).await?;
        Ok(out)
    }

    /// [`apply`](Self::apply) on `half::bf16` data, rotated as bf16 (the slice's type says
    /// so, whatever dtype the call names).
    pub async fn apply_bf16(&self, call: &RopeCall<'_>, x: &[bf16]) -> Result<Vec<bf16>> {
        let call = call.with_dtype(Dtype::Bf16);
        let bits = self.apply(&call, bytemuck::cast_slice::<_, u16>(x)).await?;
        Ok(bits.into_iter().map(bf16::from_bits).collect())
    }

    /// [`apply`](Self::apply) on `half::f16` data, rotated as f16.
    pub async fn apply_f16(&self, call: &RopeCall<'_>, x: &[f16]) -> Result<Vec<f16>> {
        let call = call.with_dtype(Dtype::F16);
        let bits = self.apply(&call, bytemuck::cast_slice::<_, u16>(x)).await?;
        Ok(bits.into_iter().map(f16::from_bits).collect())
    }

    /// [`apply`](Self::apply) on `f32` data, rotated as f32.
    pub async fn apply_f32(&self, call: &RopeCall<'_>, x: &[f32]) -> Result<Vec<f32>> {
        let call = call.with_dtype(Dtype::F32);
        let bits = self.apply(&call, bytemuck::cast_slice::<_, u32>(x)).await?;
        Ok(bits.into_iter().map(f32::from_bits).collect())
    }
}

/// A table kept on the GPU with input, output and staging buffers reused across calls: the
/// streaming form of [`Gpu::apply`] (the CLI rotates large tensors piece by piece through one
/// `Rotator`, so memory stays bounded by the piece size). It borrows the table it uploaded;
/// every call it runs must name that table.
#[derive(Debug)]
pub struct Rotator<'a> {
    gpu: &'a Gpu,
    host_table: &'a RopeTable,
    /// What [`RopeTable::in_fast_range`] says of it (the exact kernels then skip testing
    /// table values).
    table_in_range: bool,
    table: wgpu::Buffer,
    tensors: Option<(wgpu::Buffer, wgpu::Buffer)>,
    staging: Option<wgpu::Buffer>,
}

impl Rotator<'_> {
    /// Rotates the view of `call` in `x` into `out` (as long as `x`): `out` receives `x`
    /// with the view rotated, as [`Gpu::apply`] returns it. `call.table` must be the table
    /// this Rotator was made from ([`Gpu::rotator`]); [`RopeCall::validate`] checks the rest.
    /// Uploads `x` (padded to whole words), records the call on the buffers
    /// ([`BufferCall`]: the planner picks the kernel and what to copy) and reads the output
    /// back; buffers grow to the largest call seen and are reused.
    pub async fn apply_into<E: Bits>(
        &mut self,
        call: &RopeCall<'_>,
        x: &[E],
        out: &mut [E],
    ) -> Result<()> {
        call.rotation.dtype.check_bits::<E>()?;
        call.validate(x.len())?;
        if out.len() != x.len() {
            return Err(Error::Argument(format!(
                "the output holds {} elements but the input holds {}",
                out.len(),
                x.len()
            )));
        }
        if !std::ptr::eq(call.table, self.host_table) {
            return Err(Error::Argument(format!(
                "the call's table ({} rows of {} pairs) is not the table this Rotator holds on the GPU ({} rows of {} pairs); make a Rotator for it",
                call.table.rows(),
                call.table.pairs(),
                self.host_table.rows(),
                self.host_table.pairs()
            )));
        }
        let gpu = self.gpu;
        let x: &[u8] = bytemuck::cast_slice(x);
        let out: &mut [u8] = bytemuck::cast_slice_mut(out);
        let words = x.len().div_ceil(4);
        let bytes = words as u64 * 4;
        if bytes > gpu.report.max_buffer {
            return Err(Error::Limit(format!(
                "a buffer of {bytes} bytes exceeds this device's max_buffer_size of {} bytes",
                gpu.report.max_buffer
            )));
        }
        self.grow(bytes);
        let (input, output) = self.tensors.as_ref().expect("grown above");
        let staging = self.staging.as_ref().expect("grown above");
        // Lengths that are not whole words travel padded: copies move whole words.
        let odd = x.len() % 4 != 0;
        let padded_in;
        let host: &[u8] = if odd {
            padded_in = [x, &[0; 3][..4 - x.len() % 4]].concat();
            &padded_in
        } else {
            x
        };
        let call = BufferCall {
            call: *call,
            input,
            output,
            table: &self.table,
            bytes,
            table_in_range: self.table_in_range,
        };
        gpu.guarded("rotating", async {
            gpu.upload(input, host)?;
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("bfrope::rotate"),
                });
            gpu.kernels.record(&mut encoder, &call)?;
            if odd {
                let mut padded_out = vec![0u32; words];
                gpu.read_into(
                    Some(encoder),
                    output,
                    staging,
                    bytemuck::cast_slice_mut(&mut padded_out),
                )
                .await?;
                out.copy_from_slice(&bytemuck::cast_slice::<u32, u8>(&padded_out)[..out.len()]);
                Ok(())
            } else {
                gpu.read_into(Some(encoder), output, staging, out).await
            }
        })
        .await
    }

    /// Input, output and staging buffers for calls of `bytes` bytes: grown to the largest
    /// call seen and reused.
    fn grow(&mut self, bytes: u64) {
        let gpu = self.gpu;
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
    }
}

/// Blocking forms for native callers (CLI, tests, benchmarks).
#[cfg(not(target_arch = "wasm32"))]
impl Gpu {
    /// [`Gpu::new`], blocking.
    pub fn new_blocking(selector: Option<&str>) -> Result<Self> {
        pollster::block_on(Self::new(selector))
    }

    /// [`Gpu::apply`], blocking.
    pub fn apply_blocking<E: Bits>(&self, call: &RopeCall<'_>, x: &[E]) -> Result<Vec<E>> {
        pollster::block_on(self.apply(call, x))
    }

    /// [`Gpu::apply_bf16`], blocking.
    pub fn apply_bf16_blocking(&self, call: &RopeCall<'_>, x: &[bf16]) -> Result<Vec<bf16>> {
        pollster::block_on(self.apply_bf16(call, x))
    }

    /// [`Gpu::apply_f16`], blocking.
    pub fn apply_f16_blocking(&self, call: &RopeCall<'_>, x: &[f16]) -> Result<Vec<f16>> {
        pollster::block_on(self.apply_f16(call, x))
    }

    /// [`Gpu::apply_f32`], blocking.
    pub fn apply_f32_blocking(&self, call: &RopeCall<'_>, x: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.apply_f32(call, x))
    }

    /// [`Gpu::rotator`], blocking.
    pub fn rotator_blocking<'a>(&'a self, table: &'a RopeTable) -> Result<Rotator<'a>> {
        pollster::block_on(self.rotator(table))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Rotator<'_> {
    /// [`Rotator::apply_into`], blocking.
    pub fn apply_into_blocking<E: Bits>(
        &mut self,
        call: &RopeCall<'_>,
        x: &[E],
        out: &mut [E],
    ) -> Result<()> {
        pollster::block_on(self.apply_into(call, x, out))
    }
}
