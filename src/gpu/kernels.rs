//! The pipeline owner: shader modules, explicit bind-group layouts and pipelines cached by
//! [`KernelKey`]; recording a planned call (`plan::plan`) into the caller's encoder or compute
//! pass (never submitting), and the copy kernel the benchmarks measure against.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Mutex;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::gpu::call::GpuCall;
use crate::gpu::key::{Kernel, KernelKey, WORKGROUP_SIZE};
use crate::gpu::plan::{
    dispatch_grid, plan, Dispatch, Params, Plan, PlanLimits, RopeParams, ViewParams,
};
use crate::shaders;

/// The uniform block of `copy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    count: u32,
    pad: [u32; 3],
}

/// One dispatch of the copy: its pipeline, bind group and grid.
type CopyDispatch = (wgpu::ComputePipeline, wgpu::BindGroup, (u32, u32));

/// One dispatch of a plan ready to record: its pipeline, bind group and grid.
type Bound = (wgpu::ComputePipeline, wgpu::BindGroup, (u32, u32, u32));

/// Where [`RopeKernels::record`] records a call. `From` an encoder (a pass of its own) or an
/// open compute pass.
#[derive(Debug)]
pub enum RecordTarget<'r, 'p> {
    /// A compute pass of its own in this encoder.
    Encoder(&'r mut wgpu::CommandEncoder),
    /// A compute pass of its own in this encoder with timestamps written at its start and
    /// end (the adapter needs `TIMESTAMP_QUERY`).
    Timed(
        &'r mut wgpu::CommandEncoder,
        wgpu::ComputePassTimestampWrites<'r>,
    ),
    /// The caller's open compute pass (a decode loop pays no pass per call). A call whose
    /// plan copies its input first (a [`BufferCall`](crate::gpu::BufferCall)) cannot be
    /// recorded in a pass.
    Pass(&'r mut wgpu::ComputePass<'p>),
}

impl<'r> From<&'r mut wgpu::CommandEncoder> for RecordTarget<'r, 'static> {
    fn from(encoder: &'r mut wgpu::CommandEncoder) -> Self {
        RecordTarget::Encoder(encoder)
    }
}

impl<'r, 'p> From<&'r mut wgpu::ComputePass<'p>> for RecordTarget<'r, 'p> {
    fn from(pass: &'r mut wgpu::ComputePass<'p>) -> Self {
        RecordTarget::Pass(pass)
    }
}

/// Records bound dispatches into `pass`, setting a pipeline when it changes.
fn dispatch_all(pass: &mut wgpu::ComputePass, bound: &[Bound]) {
    let mut current: Option<&wgpu::ComputePipeline> = None;
    for (pipeline, bind, grid) in bound {
        if current != Some(pipeline) {
            pass.set_pipeline(pipeline);
            current = Some(pipeline);
        }
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(grid.0, grid.1, grid.2);
    }
}

/// Entries the view-call cache of [`RopeKernels`] holds before it is cleared.
pub const VIEW_CACHE_ENTRIES: usize = 64;

/// What makes two view calls bind the same things.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ViewCacheKey {
    key: KernelKey,
    params: ViewParams,
    rows: Option<Vec<u32>>,
    buffers: Vec<wgpu::Buffer>,
    windows: Vec<(u64, u64)>,
}

/// Owner of the RoPE and copy pipelines of one device.
#[derive(Debug)]
pub struct RopeKernels {
    device: wgpu::Device,
    /// Scalar (index 0), vec4 (index 1) and half-split vec4 (index 2).
    variants: [RopeVariant; 3],
    /// The general modules, built on first use: index 4·words + 2·in_place + (views − 1),
    /// then the f32 modules at 8 + 2·in_place + (views − 1).
    general: [std::sync::OnceLock<RopeVariant>; 12],
    pipelines: Mutex<HashMap<KernelKey, wgpu::ComputePipeline>>,
    /// Bind groups and parameter buffers of recent view calls, so a repeated call (a decode
    /// loop with positions on the GPU) allocates nothing. Holds at most
    /// [`VIEW_CACHE_ENTRIES`] entries (cleared when full); an entry keeps its buffers alive.
    view_cache: Mutex<HashMap<ViewCacheKey, wgpu::BindGroup>>,
    copy: Mutex<Option<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>>,
    /// Benchmark-only vec4 variants ([`RopeKernels::record_timed_variant`]), by source and
    /// the key they stand in for.
    variant_pipelines: Mutex<HashMap<(String, KernelKey), wgpu::ComputePipeline>>,
    limits: PlanLimits,
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
    /// A module and its layout: `entries` after the uniform block of `uniform` bytes.
    fn new(
        device: &wgpu::Device,
        name: &str,
        source: String,
        entry: &'static str,
        uniform: u64,
        entries: &[wgpu::BindGroupLayoutEntry],
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("bfrope::{name}")),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let mut all = vec![uniform_entry(0, uniform)];
        all.extend_from_slice(entries);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&format!("bfrope::{name} bind group layout")),
            entries: &all,
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

    /// A contiguous kernel: tensors of `element` bytes (4 scalar, 16 vec4), a table entry of
    /// `2 * element` (one pair scalar, four vec4).
    fn contiguous(
        device: &wgpu::Device,
        name: &str,
        source: String,
        entry: &'static str,
        element: u64,
    ) -> Self {
        Self::new(
            device,
            name,
            source,
            entry,
            std::mem::size_of::<RopeParams>() as u64,
            &[
                storage_entry(1, true, 2 * element),
                storage_entry(2, true, element),
                storage_entry(3, false, element),
            ],
        )
    }
}

/// The general module for in place or not, one view or two, on halves, words or (`f32`)
/// f32 elements, with its layout.
fn general(
    device: &wgpu::Device,
    in_place: bool,
    views: u32,
    words: bool,
    f32: bool,
) -> RopeVariant {
    let mut entries = vec![storage_entry(1, true, 8), storage_entry(4, true, 4)];
    let tensors: &[(u32, u32)] = if views == 2 {
        &[(2, 3), (5, 6)]
    } else {
        &[(2, 3)]
    };
    for &(src, dst) in tensors {
        if !in_place {
            entries.push(storage_entry(src, true, 4));
        }
        entries.push(storage_entry(dst, false, 4));
    }
    let source = if f32 {
        shaders::rope_general_f32_variant(in_place, views)
    } else {
        shaders::rope_general_variant(in_place, views, words)
    };
    RopeVariant::new(
        device,
        &format!(
            "rope_general[{},{},views={views}]",
            if f32 {
                "f32"
            } else if words {
                "words"
            } else {
                "halves"
            },
            if in_place { "in place" } else { "out of place" }
        ),
        source,
        shaders::ROPE_GENERAL_ENTRY,
        std::mem::size_of::<ViewParams>() as u64,
        &entries,
    )
}

impl RopeKernels {
    /// Builds the shader modules and bind-group layouts; pipelines are built on first use.
    pub fn new(device: &wgpu::Device) -> Self {
        let variants = [
            RopeVariant::contiguous(
                device,
                "rope_scalar",
                shaders::rope_source(),
                shaders::ROPE_ENTRY,
                4,
            ),
            RopeVariant::contiguous(
                device,
                "rope_vec4",
                shaders::rope_vec4_source(),
                shaders::ROPE_VEC4_ENTRY,
                16,
            ),
            RopeVariant::contiguous(
                device,
                "rope_vec4_half",
                shaders::rope_vec4_half_source(),
                shaders::ROPE_VEC4_HALF_ENTRY,
                16,
            ),
        ];
        Self {
            device: device.clone(),
            variants,
            pipelines: Mutex::new(HashMap::new()),
            view_cache: Mutex::new(HashMap::new()),
            general: Default::default(),
            copy: Mutex::new(None),
            variant_pipelines: Mutex::new(HashMap::new()),
            limits: PlanLimits::of(device),
        }
    }

    /// The same kernels with a smaller storage binding limit (clamped to the device's):
    /// larger calls are split into more dispatches. Tests use it to cover slicing with
    /// small tensors; it can also bound the size of each dispatch.
    pub fn with_max_binding(mut self, bytes: u64) -> Self {
        self.limits.max_binding = bytes.min(self.limits.max_binding);
        self
    }

    fn variant(&self, key: KernelKey) -> &RopeVariant {
        match key.kernel {
            Kernel::Scalar => &self.variants[0],
            Kernel::Vec4 => &self.variants[1],
            Kernel::Vec4Half => &self.variants[2],
            Kernel::General {
                in_place,
                views,
                words,
                ..
            } => {
                let f32 = key.dtype == Dtype::F32;
                let index = if f32 { 8 } else { 4 * usize::from(words) }
                    + 2 * usize::from(in_place)
                    + usize::from(views == 2);
                self.general[index]
                    .get_or_init(|| general(&self.device, in_place, views, words, f32))
            }
        }
    }

    /// The pipeline for `key`, built once.
    pub fn pipeline(&self, key: KernelKey) -> wgpu::ComputePipeline {
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let label = key.label();
                let variant = self.variant(key);
                let constants = key.overrides();
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(&label),
                        layout: Some(&variant.pipeline_layout),
                        module: &variant.module,
                        entry_point: Some(variant.entry),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &constants,
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    })
            })
            .clone()
    }

    /// The limits plans respect: the device's, or the smaller binding limit set with
    /// [`with_max_binding`](Self::with_max_binding).
    pub fn limits(&self) -> PlanLimits {
        self.limits
    }

    /// Checks `call` against its buffers, the table and the device limits, with messages
    /// that name the offending values; returns the number of dispatches it takes (a view
    /// call: 1, 2 when q and k share a buffer one of them writes, since bindings may not
    /// alias, more when a tensor is split over binding windows).
    pub fn validate<'a>(&self, call: impl Into<GpuCall<'a>>) -> Result<usize> {
        Ok(plan(&call.into(), self.limits)?.dispatches.len())
    }

    /// Records one call ([`GpuCall`]: from [`RopeArgs`](crate::gpu::RopeArgs),
    /// [`ViewArgs`](crate::gpu::ViewArgs) or [`BufferCall`](crate::gpu::BufferCall)) on the
    /// kernels its plan names, with as many dispatches as the binding and grid limits need,
    /// into `target`: a compute pass of its own in an encoder (optionally with timestamps),
    /// or the caller's open pass ([`RecordTarget`]). A view call writes every element of
    /// each view in its output (rotated or, past rotary_dim, copied) and leaves the rest of
    /// the buffer as it is. Bind groups and parameter buffers of general-kernel dispatches
    /// are cached: repeating a view call with the same buffers and parameters (positions in
    /// a GPU buffer) allocates nothing. Does not submit.
    pub fn record<'a, 'r, 'p: 'r>(
        &self,
        target: impl Into<RecordTarget<'r, 'p>>,
        call: impl Into<GpuCall<'a>>,
    ) -> Result<()> {
        let plan = plan(&call.into(), self.limits)?;
        let target = target.into();
        if let (RecordTarget::Pass(_), Some((_, bytes))) = (&target, plan.copy) {
            return Err(Error::Argument(format!(
                "this call copies {bytes} bytes of its input into its output before rotating; record it into an encoder, not an open compute pass"
            )));
        }
        let bound = self.bind(&plan)?;
        match target {
            RecordTarget::Encoder(encoder) => self.record_pass(encoder, &plan, &bound, None),
            RecordTarget::Timed(encoder, timestamps) => {
                self.record_pass(encoder, &plan, &bound, Some(timestamps))
            }
            RecordTarget::Pass(pass) => dispatch_all(pass, &bound),
        }
        Ok(())
    }

    /// Benchmarks only: [`record`](Self::record) with timestamps and the contiguous kernel's
    /// module replaced by `source` (a complete module with the same entry point, bindings,
    /// uniform block and grid as the kernel the plan picks), so `bfrope bench --variant` can
    /// time kernel variants beside the built-in one in one process. Not part of the API.
    #[doc(hidden)]
    pub fn record_timed_variant<'a>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: impl Into<GpuCall<'a>>,
        timestamps: wgpu::ComputePassTimestampWrites,
        source: &str,
    ) -> Result<()> {
        let plan = plan(&call.into(), self.limits)?;
        let key = plan.dispatches[0].key;
        if !key.kernel.is_contiguous()
            || plan.copy.is_some()
            || plan.dispatches.iter().any(|d| d.key != key)
        {
            return Err(Error::Argument(format!(
                "a kernel variant stands in for a contiguous kernel; this call takes {}",
                key.label()
            )));
        }
        let variant = self.variant(key);
        let pipeline = {
            let mut cache = self
                .variant_pipelines
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cache
                .entry((source.to_string(), key))
                .or_insert_with(|| {
                    let module = self
                        .device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some("bfrope::variant"),
                            source: wgpu::ShaderSource::Wgsl(source.to_string().into()),
                        });
                    // The key's overrides that the module declares (older variant files lack
                    // TABLE_IN_RANGE and keep their own table test).
                    let constants: Vec<_> = key
                        .overrides()
                        .into_iter()
                        .filter(|(name, _)| source.contains(&format!("override {name}")))
                        .collect();
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some("bfrope::variant"),
                            layout: Some(&variant.pipeline_layout),
                            module: &module,
                            entry_point: Some(variant.entry),
                            compilation_options: wgpu::PipelineCompilationOptions {
                                constants: &constants,
                                zero_initialize_workgroup_memory: false,
                            },
                            cache: None,
                        })
                })
                .clone()
        };
        let bound: Vec<Bound> = self
            .bind(&plan)?
            .into_iter()
            .map(|(_, bind, grid)| (pipeline.clone(), bind, grid))
            .collect();
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bfrope::variant"),
            timestamp_writes: Some(timestamps),
        });
        dispatch_all(&mut pass, &bound);
        Ok(())
    }

    /// Entries in the view-call cache (tests check that a repeated call adds none).
    pub fn cached_view_calls(&self) -> usize {
        self.view_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Records `plan` in a compute pass of its own in `encoder`, after its copy.
    fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &Plan,
        bound: &[Bound],
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) {
        if let Some((offset, bytes)) = plan.copy {
            let (input, output) = plan.tensors[0];
            encoder.copy_buffer_to_buffer(input, offset, output, offset, bytes);
        }
        // A contiguous plan's pass is named by its kernel, a general one's by the module.
        let label = match plan.dispatches.first() {
            Some(d) if d.key.kernel.is_contiguous() => d.key.label(),
            _ => "bfrope::rope_general".to_string(),
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&label),
            timestamp_writes: timestamps,
        });
        dispatch_all(&mut pass, bound);
    }

    /// The pipeline, bind group and grid of each dispatch of `plan`.
    fn bind(&self, plan: &Plan) -> Result<Vec<Bound>> {
        plan.dispatches
            .iter()
            .map(|d| Ok((self.pipeline(d.key), self.bind_group(plan, d)?, d.grid)))
            .collect()
    }

    /// The bind group of dispatch `d` of `plan`: its uniform block, the table window, the
    /// general kernel's rows, and each tensor's windows (input, unless in place, and output).
    /// General-kernel bind groups are cached by what they bind.
    fn bind_group(&self, plan: &Plan, d: &Dispatch) -> Result<wgpu::BindGroup> {
        let cache_key = match d.params {
            Params::General(params) => {
                let mut buffers = vec![plan.table.clone()];
                if let Some(rows) = plan.device_rows {
                    buffers.push(rows.clone());
                }
                for &n in &d.views {
                    buffers.push(plan.tensors[n].0.clone());
                    buffers.push(plan.tensors[n].1.clone());
                }
                let mut windows = d.tensors.clone();
                windows.push(d.table);
                Some(ViewCacheKey {
                    key: d.key,
                    params,
                    rows: d.rows.clone(),
                    buffers,
                    windows,
                })
            }
            Params::Contiguous(_) => None,
        };
        let mut cache = self.view_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bind) = cache_key.as_ref().and_then(|k| cache.get(k)) {
            return Ok(bind.clone());
        }
        let label = d.key.label();
        let uniform = self.uniform(&label, d.params.bytes())?;
        let own_rows = match &d.rows {
            Some(rows) => Some(self.storage(&label, bytemuck::cast_slice(rows))?),
            None => None,
        };
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            binding(1, plan.table, d.table),
        ];
        if let Params::General(_) = d.params {
            let rows = own_rows
                .as_ref()
                .or(plan.device_rows)
                .expect("a general dispatch without host rows has device rows");
            entries.push(wgpu::BindGroupEntry {
                binding: 4,
                resource: rows.as_entire_binding(),
            });
        }
        let in_place = matches!(d.key.kernel, Kernel::General { in_place: true, .. });
        for (slot, (&n, &window)) in d.views.iter().zip(&d.tensors).enumerate() {
            let (input, output) = plan.tensors[n];
            let (src, dst) = if slot == 0 { (2, 3) } else { (5, 6) };
            if !in_place {
                entries.push(binding(src, input, window));
            }
            entries.push(binding(dst, output, window));
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: &self.variant(d.key).layout,
            entries: &entries,
        });
        if let Some(key) = cache_key {
            if cache.len() >= VIEW_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, bind.clone());
        }
        Ok(bind)
    }

    /// A uniform buffer holding `contents`, written through a mapping at creation; an
    /// error (not wgpu's panic) when the device is gone.
    fn uniform(&self, label: &str, contents: &[u8]) -> Result<wgpu::Buffer> {
        self.buffer_init(label, contents, wgpu::BufferUsages::UNIFORM)
    }

    /// A read-only storage buffer holding `contents`.
    fn storage(&self, label: &str, contents: &[u8]) -> Result<wgpu::Buffer> {
        self.buffer_init(label, contents, wgpu::BufferUsages::STORAGE)
    }

    fn buffer_init(
        &self,
        label: &str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (contents.len() as u64).div_ceil(16).max(1) * 16,
            usage,
            mapped_at_creation: true,
        });
        buffer
            .get_mapped_range_mut(..)
            .map_err(|e| {
                Error::Gpu(format!(
                    "cannot write the {label} parameters ({e}); is the device lost?"
                ))
            })?
            .slice(..contents.len())
            .copy_from_slice(contents);
        buffer.unmap();
        Ok(buffer)
    }

    /// Records a vec4 copy of `bytes` bytes (a multiple of 16) from `src` to `dst` in a compute
    /// pass of its own, optionally with timestamps: the yardstick the benchmarks measure RoPE
    /// against.
    pub fn record_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        bytes: u64,
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) -> Result<()> {
        let windows = self.copy_windows(src, dst, bytes)?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bfrope::copy[vec4]"),
            timestamp_writes: timestamps,
        });
        self.record_windows(&mut pass, &windows);
        Ok(())
    }

    /// Records the same copy as [`record_copy`](Self::record_copy) into the caller's open
    /// compute pass (a benchmark records many into one pass).
    pub fn record_copy_in_pass(
        &self,
        pass: &mut wgpu::ComputePass,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<()> {
        let windows = self.copy_windows(src, dst, bytes)?;
        self.record_windows(pass, &windows);
        Ok(())
    }

    fn record_windows(&self, pass: &mut wgpu::ComputePass, windows: &[CopyDispatch]) {
        for (pipeline, bind, (gx, gy)) in windows {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(*gx, *gy, 1);
        }
    }

    /// The copy's dispatches: one per window of at most the storage binding limit, each
    /// with a balanced grid ([`dispatch_grid`]).
    fn copy_windows(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<CopyDispatch>> {
        if bytes % 16 != 0 || bytes == 0 {
            return Err(Error::Argument(format!(
                "copy size {bytes} must be a non-zero multiple of 16"
            )));
        }
        for (name, buf) in [("source", src), ("destination", dst)] {
            if buf.size() < bytes {
                return Err(Error::Argument(format!(
                    "copy of {bytes} bytes: the {name} buffer holds only {} bytes",
                    buf.size()
                )));
            }
        }
        if src == dst {
            return Err(Error::Argument(
                "copy source and destination must be different buffers (bindings may not alias)"
                    .into(),
            ));
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
        // Windows start at aligned offsets; each holds fewer than 2^32 vec4s.
        let align = self.limits.offset_alignment.max(16).next_power_of_two();
        let window = (self.limits.max_binding / align * align)
            .min((u32::MAX as u64) / align * align)
            .max(align);
        let dim = self.limits.max_workgroups_per_dim;
        let mut out = Vec::new();
        let mut offset = 0;
        while offset < bytes {
            let size = window.min(bytes - offset);
            let count = (size / 16) as u32;
            let (gx, gy) = dispatch_grid(count.div_ceil(WORKGROUP_SIZE), dim)?;
            let uniform = self.uniform(
                "bfrope::copy params",
                bytemuck::bytes_of(&CopyParams { count, pad: [0; 3] }),
            )?;
            let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("bfrope::copy[vec4]"),
                layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: uniform.as_entire_binding(),
                    },
                    binding(1, src, (offset, size)),
                    binding(2, dst, (offset, size)),
                ],
            });
            out.push((pipeline.clone(), bind, (gx, gy)));
            offset += size;
        }
        Ok(out)
    }
}

/// A binding of `window = (offset, size)` bytes of `buffer`.
fn binding(index: u32, buffer: &wgpu::Buffer, window: (u64, u64)) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding: index,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset: window.0,
            size: NonZeroU64::new(window.1),
        }),
    }
}
