//! The pipeline owner: shader modules, explicit bind-group layouts and pipelines cached by
//! [`KernelKey`]; recording a planned call into the caller's encoder (never submitting), and
//! the copy kernel the benchmarks measure against.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gpu::plan::{
    plan, plan_view, Plan, PlanLimits, RopeArgs, RopeParams, ViewArgs, ViewParams,
};
use crate::gpu::{dispatch_grid, WORKGROUP_SIZE};
use crate::shaders;
use crate::shape::{Precision, RopeShape};
use crate::spec::Pairing;

/// The uniform block of `copy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    count: u32,
    pad: [u32; 3],
}

/// Which RoPE kernel module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Contiguous BSHD, interleaved, whole head: one word (pair) per invocation, any shape.
    Scalar,
    /// Contiguous BSHD, interleaved, whole head: four words per invocation, 16-byte accesses
    /// (pairs per head a multiple of 4).
    Vec4,
    /// Any view, pairing and rotary_dim, positions per batch row: one pair per invocation.
    General(Pairing),
}

/// What selects a RoPE pipeline: the module and the values of its override constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelKey {
    /// Exact (the contract) or plain f32.
    pub precision: Precision,
    /// The kernel module.
    pub kernel: Kernel,
}

impl KernelKey {
    /// The widest contiguous variant the shape allows.
    pub fn for_shape(shape: &RopeShape, precision: Precision) -> Self {
        // The vec4 kernel divides in-token indices with an f32 reciprocal: exact below 2^24,
        // and its x grid must fit one dimension.
        let token_words = shape.heads * shape.pairs();
        let vec4 = shape.pairs() % 4 == 0 && token_words < (1 << 24);
        Self {
            precision,
            kernel: if vec4 { Kernel::Vec4 } else { Kernel::Scalar },
        }
    }

    /// A label naming the kernel and its constants, shown in validation errors.
    pub fn label(&self) -> String {
        let mode = match self.precision {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
        };
        match self.kernel {
            Kernel::Scalar => format!("bfrope::rope_scalar[{mode},wg={WORKGROUP_SIZE}]"),
            Kernel::Vec4 => format!("bfrope::rope_vec4[{mode},wg={WORKGROUP_SIZE}]"),
            Kernel::General(p) => {
                format!(
                    "bfrope::rope_general[{},{mode},wg={WORKGROUP_SIZE}]",
                    p.name()
                )
            }
        }
    }
}

/// Owner of the RoPE and copy pipelines of one device.
#[derive(Debug)]
pub struct RopeKernels {
    device: wgpu::Device,
    /// Scalar (index 0), vec4 (index 1) and general (index 2) modules.
    variants: [RopeVariant; 3],
    pipelines: Mutex<HashMap<KernelKey, wgpu::ComputePipeline>>,
    copy: Mutex<Option<(wgpu::BindGroupLayout, wgpu::ComputePipeline)>>,
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
            RopeVariant::new(
                device,
                "rope_general",
                shaders::rope_general_source(),
                shaders::ROPE_GENERAL_ENTRY,
                std::mem::size_of::<ViewParams>() as u64,
                &[
                    storage_entry(1, true, 8),
                    storage_entry(2, true, 4),
                    storage_entry(3, false, 4),
                    storage_entry(4, true, 4),
                ],
            ),
        ];
        Self {
            device: device.clone(),
            variants,
            pipelines: Mutex::new(HashMap::new()),
            copy: Mutex::new(None),
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
        &self.variants[match key.kernel {
            Kernel::Scalar => 0,
            Kernel::Vec4 => 1,
            Kernel::General(_) => 2,
        }]
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
                let mut constants =
                    vec![("EXACT", exact), ("WORKGROUP_SIZE", WORKGROUP_SIZE as f64)];
                if let Kernel::General(pairing) = key.kernel {
                    let half = f64::from(u8::from(pairing == Pairing::HalfSplit));
                    constants.push(("HALF_SPLIT", half));
                }
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

    /// Checks `args` against the buffers, the table and the device limits, with messages
    /// that name the offending values; returns the number of dispatches the call takes.
    pub fn validate(&self, args: &RopeArgs) -> Result<usize> {
        Ok(plan(args, self.limits)?.dispatches.len())
    }

    /// Records one RoPE call into `encoder`, one compute pass with as many dispatches as the
    /// binding and grid limits need. Does not submit.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, args: &RopeArgs) -> Result<()> {
        let plan = plan(args, self.limits)?;
        self.record_plan(encoder, args, &plan, None)
    }

    /// Like [`record`](Self::record), with timestamps written at the start and end of the
    /// pass (the adapter needs `TIMESTAMP_QUERY`).
    pub fn record_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        args: &RopeArgs,
        timestamps: wgpu::ComputePassTimestampWrites,
    ) -> Result<()> {
        let plan = plan(args, self.limits)?;
        self.record_plan(encoder, args, &plan, Some(timestamps))
    }

    /// Records a call on any view ([`ViewArgs`]: strides and offset, pairing, rotary_dim,
    /// positions per batch row) with the general kernel, into `encoder`. Every element of the
    /// view in `output` is written (rotated or, past rotary_dim, copied); the rest of
    /// `output` is left as it is. Does not submit.
    pub fn record_view(&self, encoder: &mut wgpu::CommandEncoder, args: &ViewArgs) -> Result<()> {
        let plan = plan_view(args, self.limits)?;
        let label = plan.key.label();
        let pipeline = self.pipeline(plan.key);
        let uniform = self.uniform(&label, bytemuck::bytes_of(&plan.params))?;
        let own_rows = match &plan.rows {
            Some(rows) => Some(self.storage(&label, bytemuck::cast_slice(rows))?),
            None => None,
        };
        let rows = match (&own_rows, args.device_rows) {
            (Some(b), _) | (None, Some(b)) => b,
            (None, None) => unreachable!("a plan without host rows has device rows"),
        };
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: &self.variant(plan.key).layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                binding(1, args.table, plan.table),
                binding(2, args.input, plan.tensor),
                binding(3, args.output, plan.tensor),
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: rows.as_entire_binding(),
                },
            ],
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&label),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(plan.grid.0, plan.grid.1, 1);
        Ok(())
    }

    fn record_plan(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        args: &RopeArgs,
        plan: &Plan,
        timestamps: Option<wgpu::ComputePassTimestampWrites>,
    ) -> Result<()> {
        let key = plan.key;
        let label = key.label();
        let pipeline = self.pipeline(key);
        let groups = plan
            .dispatches
            .iter()
            .map(|d| {
                let uniform = self.uniform(&label, bytemuck::bytes_of(&d.params))?;
                let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&label),
                    layout: &self.variant(key).layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: uniform.as_entire_binding(),
                        },
                        binding(1, args.table, d.table),
                        binding(2, args.input, d.tensor),
                        binding(3, args.output, d.tensor),
                    ],
                });
                Ok((bind, d.grid))
            })
            .collect::<Result<Vec<(wgpu::BindGroup, (u32, u32, u32))>>>()?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&label),
            timestamp_writes: timestamps,
        });
        pass.set_pipeline(&pipeline);
        for (bind, grid) in &groups {
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(grid.0, grid.1, grid.2);
        }
        Ok(())
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
            return Err(Error::Argument(format!(
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
                binding(1, src, (0, bytes)),
                binding(2, dst, (0, bytes)),
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
