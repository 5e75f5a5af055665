//! The GPU path: adapter selection, the pipeline owner, recording, and the convenience layer.
//!
//! - [`RopeKernels`] owns the shader module, the explicit bind-group layout and the pipelines,
//!   cached by [`KernelKey`]; [`RopeKernels::record`] records one dispatch into the caller's
//!   `CommandEncoder` with the caller's buffers and never submits.
//! - [`Gpu`] is the convenience layer for the CLI, the tests and the web page: it owns a
//!   device, uploads host slices, runs, and reads back. Everything is `async` at the core;
//!   blocking waits live only in native entry points (`*_blocking`).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

use half::bf16;
use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::shaders;
use crate::shape::{Direction, Precision, RopeShape};
use crate::table::RopeTable;

/// Threads per workgroup of every kernel.
pub const WORKGROUP_SIZE: u32 = 256;

/// The uniform block of `rope.wgsl` (`Params`), byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RopeParams {
    words: u32,
    pairs: u32,
    heads: u32,
    seq: u32,
    row_offset: u32,
    sin_sign: u32,
    token_words: u32,
    tokens: u32,
    inv_pairs: f32,
    pad: [u32; 3],
}

/// The uniform block of `copy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    count: u32,
    pad: [u32; 3],
}

/// What selects a RoPE pipeline: the values of its override constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelKey {
    /// Exact (the contract) or plain f32.
    pub precision: Precision,
    /// Consecutive words per invocation: 1 (scalar module) or 4 (vec4 module).
    pub words_per_thread: u32,
}

impl KernelKey {
    /// The widest variant the shape allows.
    pub fn for_shape(shape: &RopeShape, precision: Precision) -> Self {
        // The vec4 kernel divides in-token indices with an f32 reciprocal: exact below 2^24,
        // and its x grid must fit one dimension.
        let token_words = shape.heads * shape.pairs();
        let vec4 = shape.pairs() % 4 == 0 && token_words < (1 << 24);
        let words_per_thread = if vec4 { 4 } else { 1 };
        Self {
            precision,
            words_per_thread,
        }
    }

    /// A label naming the kernel and its constants, shown in validation errors.
    pub fn label(&self) -> String {
        let mode = match self.precision {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
        };
        let variant = if self.words_per_thread == 4 {
            "vec4"
        } else {
            "scalar"
        };
        format!("bfrope::rope_{variant}[{mode},wg={WORKGROUP_SIZE}]")
    }
}

/// One RoPE dispatch: the caller's buffers and what to do with them.
#[derive(Debug, Clone, Copy)]
pub struct RopeArgs<'a> {
    /// Packed bf16 input (`STORAGE`), at least `shape.elements() * 2` bytes.
    pub input: &'a wgpu::Buffer,
    /// Packed bf16 output (`STORAGE`), same size; must not be `input`.
    pub output: &'a wgpu::Buffer,
    /// `(cos, sin)` f32 pairs (`STORAGE`), `table_rows × shape.pairs()` of them.
    pub table: &'a wgpu::Buffer,
    /// Rows in `table`.
    pub table_rows: usize,
    /// Table row of sequence index 0 (the position offset for a table starting at 0).
    pub row_offset: usize,
    /// The tensor's shape.
    pub shape: RopeShape,
    /// Forward or inverse.
    pub direction: Direction,
    /// Exact (default) or plain f32.
    pub precision: Precision,
}

impl RopeArgs<'_> {
    /// Bytes bound for the tensor (input and output alike) and for the table.
    fn binding_bytes(&self) -> (u64, u64) {
        let tensor = self.shape.elements() as u64 * 2;
        let table = (self.table_rows * self.shape.pairs()) as u64 * 8;
        (tensor, table)
    }
}

/// Splits `groups` workgroups into a 2-D grid within the per-dimension limit.
pub fn dispatch_grid(groups: u32, max_per_dim: u32) -> Result<(u32, u32)> {
    if groups == 0 {
        return Ok((0, 0));
    }
    let x = groups.min(max_per_dim);
    let y = groups.div_ceil(x);
    if y > max_per_dim {
        return Err(Error::Limit(format!(
            "{groups} workgroups exceed a {max_per_dim} x {max_per_dim} grid"
        )));
    }
    Ok((x, y))
}

/// Owner of the RoPE and copy pipelines of one device.
#[derive(Debug)]
pub struct RopeKernels {
    device: wgpu::Device,
    /// Scalar (index 0) and vec4 (index 1) module variants.
    variants: [RopeVariant; 2],
    pipelines: Mutex<HashMap<KernelKey, wgpu::ComputePipeline>>,
    copy: Mutex<Option<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>>,
}

fn storage_entry(binding: u32, read_only: bool, min: u64) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: NonZeroU64::new(min),
        },
        count: None,
    }
}

fn uniform_entry(binding: u32, size: u64) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: NonZeroU64::new(size),
        },
        count: None,
    }
}

/// One RoPE shader module with its explicit layout.
#[derive(Debug)]
struct RopeVariant {
    entry: &'static str,
    module: wgpu::ShaderModule,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
}

impl RopeVariant {
    /// `element`: bytes of one element of the tensor arrays (4 scalar, 16 vec4).
    fn new(
        device: &wgpu::Device,
        name: &str,
        source: String,
        entry: &'static str,
        element: u64,
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("bfrope::{name}")),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&format!("bfrope::{name} bind group layout")),
            entries: &[
                uniform_entry(0, std::mem::size_of::<RopeParams>() as u64),
                // One table entry: vec2<u32> (8 bytes) scalar, 4 pairs (32 bytes) vec4.
                storage_entry(1, true, 2 * element),
                storage_entry(2, true, element),
                storage_entry(3, false, element),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&format!("bfrope::{name} pipeline layout")),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        Self {
            entry,
            module,
            layout,
            pipeline_layout,
        }
    }
}

impl RopeKernels {
    /// Builds the shader modules and bind-group layouts; pipelines are built on first use.
    pub fn new(device: &wgpu::Device) -> Self {
        let variants = [
            RopeVariant::new(
                device,
                "rope_scalar",
                shaders::rope_source(),
                shaders::ROPE_ENTRY,
                4,
            ),
            RopeVariant::new(
                device,
                "rope_vec4",
                shaders::rope_vec4_source(),
                shaders::ROPE_VEC4_ENTRY,
                16,
            ),
        ];
        Self {
            device: device.clone(),
            variants,
            pipelines: Mutex::new(HashMap::new()),
            copy: Mutex::new(None),
        }
    }

    fn variant(&self, key: KernelKey) -> &RopeVariant {
        &self.variants[usize::from(key.words_per_thread == 4)]
    }

    /// The pipeline for `key`, built once.
    pub fn pipeline(&self, key: KernelKey) -> wgpu::ComputePipeline {
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let label = key.label();
                let exact = if key.precision == Precision::Exact {
                    1.0
                } else {
                    0.0
                };
                let variant = self.variant(key);
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(&label),
                        layout: Some(&variant.pipeline_layout),
                        module: &variant.module,
                        entry_point: Some(variant.entry),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &[
                                ("EXACT", exact),
                                ("WORKGROUP_SIZE", WORKGROUP_SIZE as f64),
                            ],
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    })
            })
            .clone()
    }

    /// Checks `args` against the buffers and the device limits, with messages that name the
    /// offending values.
    pub fn validate(&self, args: &RopeArgs) -> Result<()> {
        let shape = &args.shape;
        if args.input == args.output {
            return Err(Error::Gpu(
                "input and output must be different buffers".into(),
            ));
        }
        let (bytes, table_bytes) = args.binding_bytes();
        let need_rows = args.row_offset.saturating_add(shape.seq);
        if need_rows > args.table_rows {
            return Err(Error::Table(format!(
                "table has {} rows but sequence length {} at position offset {} needs {need_rows}",
                args.table_rows, shape.seq, args.row_offset
            )));
        }
        if need_rows > u32::MAX as usize
            || (need_rows as u64) * (shape.pairs() as u64) > u32::MAX as u64
        {
            return Err(Error::Limit(format!(
                "table rows up to {need_rows} exceed 32-bit indexing"
            )));
        }
        for (name, buf, need) in [
            ("input", args.input, bytes),
            ("output", args.output, bytes),
            ("table", args.table, table_bytes),
        ] {
            if buf.size() < need {
                return Err(Error::Gpu(format!(
                    "{name} buffer holds {} bytes, needs {need}",
                    buf.size()
                )));
            }
            if !buf.usage().contains(wgpu::BufferUsages::STORAGE) {
                return Err(Error::Gpu(format!("{name} buffer lacks STORAGE usage")));
            }
        }
        let limit = self.device.limits().max_storage_buffer_binding_size;
        for (name, need) in [("tensor", bytes), ("table", table_bytes)] {
            if need > limit {
                return Err(Error::Limit(format!(
                    "{name} of {need} bytes exceeds this device's storage binding limit of {limit} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Records one RoPE dispatch into `encoder`. Does not submit.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, args: &RopeArgs) -> Result<()> {
        self.validate(args)?;
        self.record_inner(encoder, args, None)
    }

    fn record_inner(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        args: &RopeArgs,
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) -> Result<()> {
        let shape = &args.shape;
        let key = KernelKey::for_shape(shape, args.precision);
        let words = shape.words() as u32;
        let max_dim = self.device.limits().max_compute_workgroups_per_dimension;
        let grid = if key.words_per_thread == 4 {
            // x: the vec4s of one token; y, z: the tokens.
            let gx = ((shape.heads * shape.pairs()) as u32).div_ceil(4 * WORKGROUP_SIZE);
            let (gy, gz) = dispatch_grid((shape.batch * shape.seq) as u32, max_dim)?;
            (gx, gy, gz)
        } else {
            let (gx, gy) = dispatch_grid(words.div_ceil(WORKGROUP_SIZE), max_dim)?;
            (gx, gy, 1)
        };
        let params = RopeParams {
            words,
            pairs: shape.pairs() as u32,
            heads: shape.heads as u32,
            seq: shape.seq as u32,
            row_offset: args.row_offset as u32,
            sin_sign: match args.direction {
                Direction::Forward => 0,
                Direction::Inverse => 0x8000_0000,
            },
            token_words: (shape.heads * shape.pairs()) as u32,
            tokens: (shape.batch * shape.seq) as u32,
            inv_pairs: 1.0 / shape.pairs() as f32,
            pad: [0; 3],
        };
        let label = key.label();
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(&label),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let (bytes, table_bytes) = args.binding_bytes();
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: &self.variant(key).layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                binding(1, args.table, table_bytes),
                binding(2, args.input, bytes),
                binding(3, args.output, bytes),
            ],
        });
        let pipeline = self.pipeline(key);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&label),
            timestamp_writes: timestamps,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(grid.0, grid.1, grid.2);
        Ok(())
    }

    /// Records a vec4 copy of `bytes` bytes (a multiple of 16) from `src` to `dst`, optionally
    /// with timestamps: the yardstick the benchmarks measure RoPE against.
    pub fn record_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        bytes: u64,
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) -> Result<()> {
        if bytes % 16 != 0 || bytes == 0 {
            return Err(Error::Gpu(format!(
                "copy size {bytes} must be a non-zero multiple of 16"
            )));
        }
        let mut guard = self.copy.lock().unwrap_or_else(|e| e.into_inner());
        let (layout, pipeline) = guard.get_or_insert_with(|| {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("bfrope::copy.wgsl"),
                    source: wgpu::ShaderSource::Wgsl(shaders::copy_source().into()),
                });
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("bfrope::copy bind group layout"),
                    entries: &[
                        uniform_entry(0, std::mem::size_of::<CopyParams>() as u64),
                        storage_entry(1, true, 16),
                        storage_entry(2, false, 16),
                    ],
                });
            let pl = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some("bfrope::copy pipeline layout"),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("bfrope::copy[vec4]"),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(shaders::COPY_ENTRY),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &[("WORKGROUP_SIZE", WORKGROUP_SIZE as f64)],
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
            (layout, pipeline)
        });
        let count = (bytes / 16) as u32;
        let (gx, gy) = dispatch_grid(
            count.div_ceil(WORKGROUP_SIZE),
            self.device.limits().max_compute_workgroups_per_dimension,
        )?;
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("bfrope::copy params"),
                contents: bytemuck::bytes_of(&CopyParams { count, pad: [0; 3] }),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("bfrope::copy[vec4]"),
            layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                binding(1, src, bytes),
                binding(2, dst, bytes),
            ],
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bfrope::copy[vec4]"),
            timestamp_writes: timestamps,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
        Ok(())
    }

    /// Like [`record`](Self::record), with timestamps written at the start and end of the
    /// pass (the adapter needs `TIMESTAMP_QUERY`).
    pub fn record_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        args: &RopeArgs,
        timestamps: wgpu::ComputePassTimestampWrites,
    ) -> Result<()> {
        self.validate(args)?;
        self.record_inner(encoder, args, Some(timestamps))
    }
}

fn binding(index: u32, buffer: &wgpu::Buffer, size: u64) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding: index,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset: 0,
            size: NonZeroU64::new(size),
        }),
    }
}

/// What `bfrope info` and the web page report about an adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterReport {
    /// wgpu's description: name, backend, driver.
    pub info: wgpu::AdapterInfo,
    /// Largest storage binding, in bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, in bytes.
    pub max_buffer: u64,
    /// Workgroups per grid dimension.
    pub max_workgroups_per_dim: u32,
    /// Whether GPU timestamps can be taken in compute passes.
    pub timestamps: bool,
}

impl AdapterReport {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let limits = adapter.limits();
        Self {
            info: adapter.get_info(),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            timestamps: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }

    /// One line: `name (backend, driver driver_info, type)`.
    pub fn summary(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({:?}, {} {}, {:?})",
            i.name, i.backend, i.driver, i.driver_info, i.device_type
        )
    }

    /// Whether `needle` (case-insensitive) occurs in the name, backend, driver or driver info.
    pub fn matches(&self, needle: &str) -> bool {
        let i = &self.info;
        let hay =
            format!("{} {:?} {} {}", i.name, i.backend, i.driver, i.driver_info).to_lowercase();
        hay.contains(&needle.to_lowercase())
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter wgpu finds on this machine (native only: browsers expose one adapter).
#[cfg(not(target_arch = "wasm32"))]
pub async fn list_adapters() -> Vec<AdapterReport> {
    instance()
        .enumerate_adapters(wgpu::Backends::all())
        .await
        .iter()
        .map(AdapterReport::of)
        .collect()
}

/// A device with its queue and kernels: the convenience layer over [`RopeKernels`].
#[derive(Debug, Clone)]
pub struct Gpu {
    report: AdapterReport,
    device: wgpu::Device,
    queue: wgpu::Queue,
    kernels: Arc<RopeKernels>,
}

impl Gpu {
    /// Opens the best adapter, or the first whose name, backend, driver or driver info
    /// contains `selector` (case-insensitive). With no selector on native, a real GPU is
    /// preferred over a CPU implementation such as lavapipe.
    pub async fn new(selector: Option<&str>) -> Result<Self> {
        let inst = instance();
        let adapter = Self::pick(&inst, selector).await?;
        Self::open(adapter).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn pick(inst: &wgpu::Instance, selector: Option<&str>) -> Result<wgpu::Adapter> {
        let adapters = inst.enumerate_adapters(wgpu::Backends::all()).await;
        if adapters.is_empty() {
            return Err(Error::NoAdapter(
                "wgpu found no adapter on this machine".into(),
            ));
        }
        let rank = |a: &wgpu::Adapter| {
            let i = a.get_info();
            let kind = match i.device_type {
                wgpu::DeviceType::DiscreteGpu => 0,
                wgpu::DeviceType::IntegratedGpu => 1,
                wgpu::DeviceType::VirtualGpu => 2,
                wgpu::DeviceType::Other => 3,
                wgpu::DeviceType::Cpu => 4,
            };
            let backend = match i.backend {
                wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
                _ => 1,
            };
            (kind, backend)
        };
        let mut candidates: Vec<wgpu::Adapter> = match selector {
            Some(s) => adapters
                .iter()
                .filter(|a| AdapterReport::of(a).matches(s))
                .cloned()
                .collect(),
            None => adapters.clone(),
        };
        candidates.sort_by_key(rank);
        candidates.into_iter().next().ok_or_else(|| {
            let names: Vec<String> = adapters
                .iter()
                .map(|a| AdapterReport::of(a).summary())
                .collect();
            Error::NoAdapter(format!(
                "no adapter matches {:?}; available: {}",
                selector.unwrap_or_default(),
                names.join("; ")
            ))
        })
    }

    #[cfg(target_arch = "wasm32")]
    async fn pick(inst: &wgpu::Instance, selector: Option<&str>) -> Result<wgpu::Adapter> {
        let adapter = inst
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoAdapter(format!("the browser offers no WebGPU adapter ({e})")))?;
        if let Some(s) = selector {
            if !AdapterReport::of(&adapter).matches(s) {
                return Err(Error::NoAdapter(format!(
                    "the browser's adapter does not match {s:?}"
                )));
            }
        }
        Ok(adapter)
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

    /// Wraps a device the caller already has (tests inject their own this way).
    pub fn from_parts(report: AdapterReport, device: wgpu::Device, queue: wgpu::Queue) -> Self {
        // On wasm32 wgpu's handles are neither Send nor Sync; the Arc only shares the cache
        // between clones of this Gpu there.
        #[allow(clippy::arc_with_non_send_sync)]
        let kernels = Arc::new(RopeKernels::new(&device));
        Self {
            report,
            device,
            queue,
            kernels,
        }
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

    /// Rotates raw bf16 bit patterns on the GPU (what the web page and the CLI hold).
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
        let bytes = shape.elements() as u64 * 2;
        let storage = wgpu::BufferUsages::STORAGE;
        let input = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("bfrope::input"),
                contents: bytemuck::cast_slice(x),
                usage: storage,
            });
        let table_buf = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("bfrope::table"),
                contents: table.as_bytes(),
                usage: storage,
            });
        let output = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bfrope::output"),
            size: bytes,
            usage: storage | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bfrope::rotate"),
            });
        self.kernels.record(
            &mut encoder,
            &RopeArgs {
                input: &input,
                output: &output,
                table: &table_buf,
                table_rows: table.rows(),
                row_offset,
                shape,
                direction,
                precision,
            },
        )?;
        let words = self.read_back(encoder, &output, bytes).await?;
        Ok(bytemuck::cast_slice::<u32, u16>(&words).to_vec())
    }

    /// Submits `encoder` with a copy of `buffer` into a mappable buffer, waits for the GPU
    /// and returns the first `bytes` bytes as words.
    pub async fn read_back(
        &self,
        mut encoder: wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u32>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bfrope::readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        rx.await
            .map_err(|_| Error::Gpu("the buffer mapping was cancelled".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the result failed: {e}")))?;
        let words = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("{e}")))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        staging.unmap();
        Ok(words)
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
}
