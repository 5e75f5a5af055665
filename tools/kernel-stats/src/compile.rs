//! WGSL to SPIR-V with naga, the way wgpu-hal 30's Vulkan backend does it
//! (`vulkan/adapter.rs` builds the `spv::Options`, `vulkan/device.rs::compile_stage` applies
//! the overrides and writes one entry point).

use anyhow::{bail, Context, Result};
use ash::vk;
use naga::back::spv;

/// A parsed and validated WGSL module.
pub struct Wgsl {
    module: naga::Module,
    info: naga::valid::ModuleInfo,
}

/// The SPIR-V writer settings that depend on the device.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// SPIR-V version, from the Vulkan API version as wgpu picks it.
    pub lang_version: (u8, u8),
    /// Whether the device has `robustBufferAccess2` (then wgpu leaves buffer accesses
    /// unchecked in the SPIR-V: the driver clamps them).
    pub robust_buffer_access2: bool,
}

impl Target {
    /// wgpu's choice for a device of Vulkan API `api` (`vk::make_api_version` form).
    pub fn new(api: u32, robust_buffer_access2: bool) -> Self {
        let minor = (vk::api_version_major(api), vk::api_version_minor(api));
        let lang_version = match minor {
            (1, 0) => (1, 0),
            (1, 1) => (1, 3),
            (1, 2) => (1, 5),
            _ => (1, 6),
        };
        Self {
            lang_version,
            robust_buffer_access2,
        }
    }
}

/// One resource binding of a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub group: u32,
    /// The WGSL `@binding`.
    pub binding: u32,
    /// The Vulkan binding: wgpu-hal numbers a set's bindings densely in order.
    pub vk_binding: u32,
    pub ty: vk::DescriptorType,
}

impl Wgsl {
    /// Parses and validates `source`; `name` labels the error messages.
    pub fn parse(name: &str, source: &str) -> Result<Self> {
        let module = naga::front::wgsl::parse_str(source).map_err(|e| {
            anyhow::anyhow!(
                "{name}: the WGSL does not parse:\n{}",
                e.emit_to_string_with_path(source, name)
            )
        })?;
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| {
            anyhow::anyhow!(
                "{name}: the WGSL does not validate:\n{}",
                e.emit_to_string_with_path(source, name)
            )
        })?;
        Ok(Self { module, info })
    }

    /// The names of the module's pipeline-overridable constants.
    pub fn overrides(&self) -> Vec<String> {
        self.module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.clone())
            .collect()
    }

    /// Whether the module has a compute entry point named `entry`.
    pub fn has_compute_entry(&self, entry: &str) -> bool {
        self.module
            .entry_points
            .iter()
            .any(|e| e.name == entry && e.stage == naga::ShaderStage::Compute)
    }

    /// The names of the module's compute entry points.
    pub fn compute_entries(&self) -> Vec<String> {
        self.module
            .entry_points
            .iter()
            .filter(|e| e.stage == naga::ShaderStage::Compute)
            .map(|e| e.name.clone())
            .collect()
    }

    /// Every buffer binding the module declares (a superset of what `entry` uses, which is
    /// fine for a descriptor-set layout). Textures, samplers and the like are refused.
    pub fn bindings(&self) -> Result<Vec<Binding>> {
        let mut out = Vec::new();
        for (_, var) in self.module.global_variables.iter() {
            let Some(rb) = var.binding else { continue };
            let ty = match var.space {
                naga::AddressSpace::Uniform => vk::DescriptorType::UNIFORM_BUFFER,
                naga::AddressSpace::Storage { .. } => vk::DescriptorType::STORAGE_BUFFER,
                other => bail!(
                    "the global `{}` at @group({}) @binding({}) is in address space {other:?}; \
                     this tool lays out uniform and storage buffers only",
                    var.name.as_deref().unwrap_or("?"),
                    rb.group,
                    rb.binding
                ),
            };
            out.push(Binding {
                group: rb.group,
                binding: rb.binding,
                vk_binding: 0,
                ty,
            });
        }
        out.sort_by_key(|b| (b.group, b.binding));
        let mut next = (u32::MAX, 0);
        for b in &mut out {
            if b.group != next.0 {
                next = (b.group, 0);
            }
            b.vk_binding = next.1;
            next.1 += 1;
        }
        Ok(out)
    }

    /// Whether the module declares immediate data (push constants), which this tool does not
    /// lay out.
    pub fn has_immediates(&self) -> bool {
        self.module
            .global_variables
            .iter()
            .any(|(_, v)| v.space == naga::AddressSpace::Immediate)
    }

    /// SPIR-V words for `entry` with the overrides `constants` applied and the resources at
    /// `bindings` (from [`Wgsl::bindings`]).
    pub fn spirv(
        &self,
        entry: &str,
        constants: &[(String, f64)],
        bindings: &[Binding],
        target: Target,
    ) -> Result<Vec<u32>> {
        let mut map = naga::back::PipelineConstants::default();
        for (name, value) in constants {
            map.insert(name.clone(), *value);
        }
        let (module, info) = naga::back::pipeline_constants::process_overrides(
            &self.module,
            &self.info,
            Some((naga::ShaderStage::Compute, entry)),
            &map,
        )
        .with_context(|| format!("applying the overrides {constants:?}"))?;
        let options = spv::Options {
            lang_version: target.lang_version,
            // wgpu without InstanceFlags::DEBUG; LABEL_VARYINGS and FORCE_POINT_SIZE do
            // nothing to a compute entry point.
            flags: spv::WriterFlags::LABEL_VARYINGS | spv::WriterFlags::FORCE_POINT_SIZE,
            // None: naga emits the capabilities the module needs; the device check is ours.
            capabilities: None,
            bounds_check_policies: naga::proc::BoundsCheckPolicies {
                index: naga::proc::BoundsCheckPolicy::Restrict,
                buffer: if target.robust_buffer_access2 {
                    naga::proc::BoundsCheckPolicy::Unchecked
                } else {
                    naga::proc::BoundsCheckPolicy::Restrict
                },
                image_load: naga::proc::BoundsCheckPolicy::Restrict,
                binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
            },
            // bfrope creates its pipelines with zero_initialize_workgroup_memory: false.
            zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
            force_loop_bounding: true,
            ray_query_initialization_tracking: true,
            use_storage_input_output_16: false,
            fake_missing_bindings: false,
            // wgpu-hal maps every layout binding (pipeline layout creation).
            binding_map: bindings
                .iter()
                .map(|b| {
                    (
                        naga::ResourceBinding {
                            group: b.group,
                            binding: b.binding,
                        },
                        spv::BindingInfo {
                            descriptor_set: b.group,
                            binding: b.vk_binding,
                            binding_array_size: None,
                        },
                    )
                })
                .collect(),
            debug_info: None,
            task_dispatch_limits: None,
            mesh_shader_primitive_indices_clamp: true,
            trace_ray_argument_validation: true,
            emit_int_div_checks: true,
        };
        let pipeline = spv::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: entry.to_string(),
        };
        spv::write_vec(&module, &info, &options, Some(&pipeline))
            .with_context(|| format!("writing SPIR-V for the entry point `{entry}`"))
    }
}

/// The `OpCapability` operands of a SPIR-V module, in order.
pub fn capabilities(words: &[u32]) -> Result<Vec<spv::Capability>> {
    const OP_CAPABILITY: u32 = 17;
    if words.len() < 5 || words[0] != 0x0723_0203 {
        bail!("naga's output is not a SPIR-V module (bad header)");
    }
    let mut out = Vec::new();
    let mut at = 5;
    while at < words.len() {
        let count = (words[at] >> 16) as usize;
        let opcode = words[at] & 0xFFFF;
        if count == 0 || at + count > words.len() {
            bail!("naga's SPIR-V has a malformed instruction at word {at}");
        }
        if opcode == OP_CAPABILITY && count == 2 {
            let value = words[at + 1];
            let cap = spv::Capability::from_u32(value)
                .with_context(|| format!("unknown SPIR-V capability {value}"))?;
            out.push(cap);
        }
        at += count;
    }
    Ok(out)
}
