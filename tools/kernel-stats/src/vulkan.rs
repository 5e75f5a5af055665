//! The Vulkan side through ash: pick a device, create it with
//! `VK_KHR_pipeline_executable_properties`, build one compute pipeline per kernel with
//! `VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR` and read its executables' statistics.

use crate::compile::{Binding, Target};
use anyhow::{bail, Context, Result};
use ash::{ext, khr, vk};
use naga::back::spv::Capability;
use std::ffi::{CStr, CString};

/// The Vulkan API version this tool asks for (it needs 1.1 at least).
const WANTED_API: u32 = vk::API_VERSION_1_3;

/// The error of a Vulkan call, naming the call.
fn call<T>(what: &str, r: ash::prelude::VkResult<T>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("{what} failed: {e:?} ({})", e.as_raw()))
}

/// What a physical device is and has.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub kind: String,
    pub vendor_id: u32,
    pub device_id: u32,
    pub api_version: u32,
    pub driver_version: u32,
    /// `VkPhysicalDeviceDriverProperties` (Vulkan 1.2): driver name and info.
    pub driver_name: String,
    pub driver_info: String,
    /// The device extension and its `pipelineExecutableInfo` feature.
    pub executable_properties: bool,
}

impl DeviceInfo {
    /// "major.minor.patch" of the API version.
    pub fn api(&self) -> String {
        format!(
            "{}.{}.{}",
            vk::api_version_major(self.api_version),
            vk::api_version_minor(self.api_version),
            vk::api_version_patch(self.api_version)
        )
    }
}

/// The features this tool may enable, as queried from or given to the device.
#[derive(Clone, Copy, Default)]
struct Features {
    core: vk::PhysicalDeviceFeatures,
    v11: vk::PhysicalDeviceVulkan11Features<'static>,
    v12: vk::PhysicalDeviceVulkan12Features<'static>,
    executable_info: bool,
    robust_buffer_access2: bool,
}

/// One executable of a pipeline and its statistics.
#[derive(Clone, Debug)]
pub struct Executable {
    pub name: String,
    pub description: String,
    pub subgroup_size: u32,
    pub statistics: Vec<Statistic>,
}

/// One statistic as the driver gives it.
#[derive(Clone, Debug)]
pub struct Statistic {
    pub name: String,
    pub description: String,
    pub value: Value,
}

/// A statistic's value in its format.
#[derive(Clone, Copy, Debug)]
pub enum Value {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
}

impl Value {
    pub fn format(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool32",
            Value::I64(_) => "int64",
            Value::U64(_) => "uint64",
            Value::F64(_) => "float64",
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

fn c_string(chars: &[std::ffi::c_char]) -> String {
    // The arrays are fixed-size; stop at the first NUL or at the end.
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The loaded Vulkan instance with the chosen physical device.
pub struct Instance {
    _entry: ash::Entry,
    instance: ash::Instance,
    physical: vk::PhysicalDevice,
    pub info: DeviceInfo,
    supported: Features,
    /// min(instance API, device API): what the device may be used at.
    api: u32,
    queue_family: u32,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: every child object (the device) is destroyed before the instance: `Device`
        // borrows `Instance`.
        unsafe { self.instance.destroy_instance(None) };
    }
}

impl Instance {
    /// Loads Vulkan and picks a device: the first whose name contains `adapter`
    /// (case-insensitive) or else the first discrete GPU, integrated GPU, other, CPU, in
    /// that order.
    pub fn new(adapter: Option<&str>) -> Result<Self> {
        // SAFETY: loading the system's Vulkan loader; ash keeps the library alive in Entry.
        let entry = unsafe { ash::Entry::load() }
            .context("could not load the Vulkan loader (libvulkan.so.1)")?;
        // SAFETY: a global command with no preconditions.
        let loader = call("vkEnumerateInstanceVersion", unsafe {
            entry.try_enumerate_instance_version()
        })?
        .unwrap_or(vk::API_VERSION_1_0);
        if loader < vk::API_VERSION_1_1 {
            bail!("the Vulkan loader offers API 1.0 only; this tool needs Vulkan 1.1");
        }
        let instance_api = loader.min(WANTED_API);
        let app_name = c"bfrope-kernel-stats";
        let app = vk::ApplicationInfo::default()
            .application_name(app_name)
            .application_version(0)
            .engine_name(app_name)
            .api_version(instance_api);
        let create = vk::InstanceCreateInfo::default().application_info(&app);
        // SAFETY: valid create info; the instance is destroyed in Drop (or below on error).
        let instance = call("vkCreateInstance", unsafe {
            entry.create_instance(&create, None)
        })?;
        match Self::pick(&instance, instance_api, adapter) {
            Ok((physical, info, supported, api, queue_family)) => Ok(Self {
                _entry: entry,
                instance,
                physical,
                info,
                supported,
                api,
                queue_family,
            }),
            Err(e) => {
                // SAFETY: nothing was created from the instance.
                unsafe { instance.destroy_instance(None) };
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn pick(
        instance: &ash::Instance,
        instance_api: u32,
        adapter: Option<&str>,
    ) -> Result<(vk::PhysicalDevice, DeviceInfo, Features, u32, u32)> {
        // SAFETY: a valid instance.
        let physicals = call("vkEnumeratePhysicalDevices", unsafe {
            instance.enumerate_physical_devices()
        })?;
        if physicals.is_empty() {
            bail!("the Vulkan loader lists no physical device (no ICD installed?)");
        }
        let mut named = Vec::new();
        for &p in &physicals {
            // SAFETY: p comes from the instance.
            let props = unsafe { instance.get_physical_device_properties(p) };
            named.push((p, props));
        }
        let names: Vec<String> = named
            .iter()
            .map(|(_, props)| c_string(&props.device_name))
            .collect();
        let chosen = match adapter {
            Some(want) => {
                let want = want.to_lowercase();
                named
                    .iter()
                    .zip(&names)
                    .find(|(_, n)| n.to_lowercase().contains(&want))
                    .map(|(x, _)| *x)
                    .with_context(|| {
                        format!(
                            "no Vulkan device name contains \"{want}\" (devices: {})",
                            names.join(", ")
                        )
                    })?
            }
            None => {
                let rank = |t: vk::PhysicalDeviceType| match t {
                    vk::PhysicalDeviceType::DISCRETE_GPU => 0,
                    vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
                    vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
                    vk::PhysicalDeviceType::OTHER => 3,
                    _ => 4,
                };
                *named
                    .iter()
                    .min_by_key(|(_, props)| rank(props.device_type))
                    .context("the Vulkan loader lists no physical device")?
            }
        };
        let (physical, props) = chosen;
        let name = c_string(&props.device_name);
        let api = props.api_version.min(instance_api);
        if api < vk::API_VERSION_1_1 {
            bail!("the Vulkan device {name} supports API 1.0 only; this tool needs Vulkan 1.1");
        }

        // SAFETY: physical comes from the instance.
        let extensions = call("vkEnumerateDeviceExtensionProperties", unsafe {
            instance.enumerate_device_extension_properties(physical)
        })?;
        let has = |n: &CStr| {
            extensions
                .iter()
                .any(|e| e.extension_name_as_c_str() == Ok(n))
        };
        let has_exec = has(khr::pipeline_executable_properties::NAME);
        let has_robust2 = has(ext::robustness2::NAME);
        let v12 = api >= vk::API_VERSION_1_2;

        let mut exec = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
        let mut robust2 = vk::PhysicalDeviceRobustness2FeaturesEXT::default();
        let mut v11f = vk::PhysicalDeviceVulkan11Features::default();
        let mut v12f = vk::PhysicalDeviceVulkan12Features::default();
        let mut features2 = vk::PhysicalDeviceFeatures2::default();
        if has_exec {
            features2 = features2.push_next(&mut exec);
        }
        if has_robust2 {
            features2 = features2.push_next(&mut robust2);
        }
        if v12 {
            features2 = features2.push_next(&mut v11f).push_next(&mut v12f);
        }
        // SAFETY: the chain holds structs of extensions the device lists (or core 1.2 ones
        // on a 1.2 device), all alive for the call.
        unsafe { instance.get_physical_device_features2(physical, &mut features2) };
        let core = features2.features;

        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let mut props2 = vk::PhysicalDeviceProperties2::default();
        if v12 {
            props2 = props2.push_next(&mut driver);
        }
        // SAFETY: as above.
        unsafe { instance.get_physical_device_properties2(physical, &mut props2) };
        let (driver_name, driver_info) = if v12 {
            (c_string(&driver.driver_name), c_string(&driver.driver_info))
        } else {
            (String::new(), String::new())
        };

        let mut supported = Features {
            core,
            executable_info: has_exec && exec.pipeline_executable_info == vk::TRUE,
            robust_buffer_access2: has_robust2 && robust2.robust_buffer_access2 == vk::TRUE,
            ..Default::default()
        };
        if v12 {
            supported.v11 = v11f;
            supported.v11.p_next = std::ptr::null_mut();
            supported.v12 = v12f;
            supported.v12.p_next = std::ptr::null_mut();
        }

        // SAFETY: physical comes from the instance.
        let families = unsafe { instance.get_physical_device_queue_family_properties(physical) };
        let queue_family = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .with_context(|| format!("the Vulkan device {name} has no compute queue family"))?
            as u32;

        let info = DeviceInfo {
            name,
            kind: format!("{:?}", props.device_type),
            vendor_id: props.vendor_id,
            device_id: props.device_id,
            api_version: props.api_version,
            driver_version: props.driver_version,
            driver_name,
            driver_info,
            executable_properties: supported.executable_info,
        };
        Ok((physical, info, supported, api, queue_family))
    }

    /// The SPIR-V settings wgpu would use on this device.
    pub fn target(&self) -> Target {
        Target::new(self.api, self.supported.robust_buffer_access2)
    }

    /// Creates the device with the features that `capabilities` (of every module to be
    /// built) need, robust buffer access as wgpu enables it and, when `statistics`, the
    /// pipeline-executable-properties extension.
    pub fn device(&self, capabilities: &[Capability], statistics: bool) -> Result<Device<'_>> {
        let name = &self.info.name;
        let s = &self.supported;
        let mut e = Features::default();
        let v12 = self.api >= vk::API_VERSION_1_2;
        macro_rules! need {
            ($cap:expr, $group:ident . $field:ident, $vk:literal) => {{
                if s.$group.$field != vk::TRUE {
                    bail!(
                        "the SPIR-V needs capability {:?}, and the Vulkan device {name} lacks \
                         the feature {}",
                        $cap,
                        $vk
                    );
                }
                e.$group.$field = vk::TRUE;
            }};
        }
        for &cap in capabilities {
            match cap {
                Capability::Shader | Capability::Matrix => {}
                // Subgroup operations need no feature bit (the driver checks
                // VkPhysicalDeviceSubgroupProperties when it builds the pipeline).
                Capability::GroupNonUniform
                | Capability::GroupNonUniformVote
                | Capability::GroupNonUniformArithmetic
                | Capability::GroupNonUniformBallot
                | Capability::GroupNonUniformShuffle
                | Capability::GroupNonUniformShuffleRelative
                | Capability::GroupNonUniformClustered
                | Capability::GroupNonUniformQuad => {}
                Capability::Int64 => need!(cap, core.shader_int64, "shaderInt64"),
                Capability::Int16 => need!(cap, core.shader_int16, "shaderInt16"),
                Capability::Float64 => need!(cap, core.shader_float64, "shaderFloat64"),
                Capability::Float16 => need!(cap, v12.shader_float16, "shaderFloat16"),
                Capability::Int8 => need!(cap, v12.shader_int8, "shaderInt8"),
                Capability::Int64Atomics => need!(
                    cap,
                    v12.shader_buffer_int64_atomics,
                    "shaderBufferInt64Atomics"
                ),
                Capability::StorageBuffer16BitAccess => need!(
                    cap,
                    v11.storage_buffer16_bit_access,
                    "storageBuffer16BitAccess"
                ),
                Capability::UniformAndStorageBuffer16BitAccess => need!(
                    cap,
                    v11.uniform_and_storage_buffer16_bit_access,
                    "uniformAndStorageBuffer16BitAccess"
                ),
                Capability::StorageBuffer8BitAccess => need!(
                    cap,
                    v12.storage_buffer8_bit_access,
                    "storageBuffer8BitAccess"
                ),
                Capability::UniformAndStorageBuffer8BitAccess => need!(
                    cap,
                    v12.uniform_and_storage_buffer8_bit_access,
                    "uniformAndStorageBuffer8BitAccess"
                ),
                Capability::VulkanMemoryModel => {
                    need!(cap, v12.vulkan_memory_model, "vulkanMemoryModel")
                }
                other => bail!(
                    "the SPIR-V needs capability {other:?}, which this tool does not know how \
                     to enable"
                ),
            }
        }
        // As wgpu: robust buffer access when the device has it (it changes the code the
        // driver generates for buffer accesses).
        e.core.robust_buffer_access = s.core.robust_buffer_access;
        let robust2 = s.robust_buffer_access2;
        if statistics && !s.executable_info {
            bail!(
                "the Vulkan device {name} does not support VK_KHR_pipeline_executable_properties"
            );
        }

        let mut extensions: Vec<*const std::ffi::c_char> = Vec::new();
        if statistics {
            extensions.push(khr::pipeline_executable_properties::NAME.as_ptr());
        }
        if robust2 {
            extensions.push(ext::robustness2::NAME.as_ptr());
        }
        let priorities = [1.0f32];
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(self.queue_family)
            .queue_priorities(&priorities)];
        let mut exec = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default()
            .pipeline_executable_info(true);
        let mut robust =
            vk::PhysicalDeviceRobustness2FeaturesEXT::default().robust_buffer_access2(true);
        let mut features2 = vk::PhysicalDeviceFeatures2::default().features(e.core);
        let mut create = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_extension_names(&extensions)
            .push_next(&mut features2);
        if v12 {
            create = create.push_next(&mut e.v11).push_next(&mut e.v12);
        }
        if statistics {
            create = create.push_next(&mut exec);
        }
        if robust2 {
            create = create.push_next(&mut robust);
        }
        // SAFETY: valid create info with features the device reports; destroyed in Drop.
        let device = call("vkCreateDevice", unsafe {
            self.instance.create_device(self.physical, &create, None)
        })
        .with_context(|| format!("creating a logical device on {name}"))?;
        let exec_fns = statistics
            .then(|| khr::pipeline_executable_properties::Device::new(&self.instance, &device));
        Ok(Device {
            device,
            exec_fns,
            _instance: self,
        })
    }
}

/// A logical device.
pub struct Device<'a> {
    device: ash::Device,
    exec_fns: Option<khr::pipeline_executable_properties::Device>,
    _instance: &'a Instance,
}

impl Drop for Device<'_> {
    fn drop(&mut self) {
        // SAFETY: every object created from the device is destroyed by `Objects` before.
        unsafe { self.device.destroy_device(None) };
    }
}

/// The objects of one pipeline, destroyed in reverse order whatever happens.
struct Objects<'a> {
    device: &'a ash::Device,
    set_layouts: Vec<vk::DescriptorSetLayout>,
    pipeline_layout: vk::PipelineLayout,
    module: vk::ShaderModule,
    pipeline: vk::Pipeline,
}

impl Drop for Objects<'_> {
    fn drop(&mut self) {
        // SAFETY: each handle is null or was created from `device` and is used by no
        // pending work (nothing is ever submitted); destroying null handles is allowed.
        unsafe {
            self.device.destroy_pipeline(self.pipeline, None);
            self.device.destroy_shader_module(self.module, None);
            self.device
                .destroy_pipeline_layout(self.pipeline_layout, None);
            for &l in &self.set_layouts {
                self.device.destroy_descriptor_set_layout(l, None);
            }
        }
    }
}

impl Device<'_> {
    /// Builds a compute pipeline from `spirv` with entry point `entry` and a layout of
    /// `bindings`, and returns its executables' statistics (none if the device was created
    /// without statistics: then this only checks that the driver compiles the kernel).
    pub fn pipeline_stats(
        &self,
        spirv: &[u32],
        entry: &str,
        bindings: &[Binding],
    ) -> Result<Vec<Executable>> {
        let d = &self.device;
        let mut o = Objects {
            device: d,
            set_layouts: Vec::new(),
            pipeline_layout: vk::PipelineLayout::null(),
            module: vk::ShaderModule::null(),
            pipeline: vk::Pipeline::null(),
        };
        let groups = bindings.iter().map(|b| b.group + 1).max().unwrap_or(0);
        for group in 0..groups {
            let entries: Vec<vk::DescriptorSetLayoutBinding> = bindings
                .iter()
                .filter(|b| b.group == group)
                .map(|b| {
                    vk::DescriptorSetLayoutBinding::default()
                        .binding(b.vk_binding)
                        .descriptor_type(b.ty)
                        .descriptor_count(1)
                        .stage_flags(vk::ShaderStageFlags::COMPUTE)
                })
                .collect();
            let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&entries);
            // SAFETY: valid create info; destroyed by `o`.
            let layout = call("vkCreateDescriptorSetLayout", unsafe {
                d.create_descriptor_set_layout(&info, None)
            })?;
            o.set_layouts.push(layout);
        }
        let info = vk::PipelineLayoutCreateInfo::default().set_layouts(&o.set_layouts);
        // SAFETY: valid create info; destroyed by `o`.
        o.pipeline_layout = call("vkCreatePipelineLayout", unsafe {
            d.create_pipeline_layout(&info, None)
        })?;
        let info = vk::ShaderModuleCreateInfo::default().code(spirv);
        // SAFETY: `spirv` is a whole SPIR-V module from naga; destroyed by `o`.
        o.module = call("vkCreateShaderModule", unsafe {
            d.create_shader_module(&info, None)
        })?;
        let entry_c = CString::new(entry).context("the entry point name has a NUL byte")?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(o.module)
            .name(&entry_c);
        let flags = if self.exec_fns.is_some() {
            vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR
        } else {
            vk::PipelineCreateFlags::empty()
        };
        let create = [vk::ComputePipelineCreateInfo::default()
            .flags(flags)
            .stage(stage)
            .layout(o.pipeline_layout)];
        // SAFETY: valid create info; destroyed by `o`.
        let pipelines =
            unsafe { d.create_compute_pipelines(vk::PipelineCache::null(), &create, None) }
                .map_err(|(_, e)| e);
        o.pipeline = call("vkCreateComputePipelines", pipelines)?
            .first()
            .copied()
            .context("vkCreateComputePipelines returned no pipeline")?;

        let Some(fns) = &self.exec_fns else {
            return Ok(Vec::new());
        };
        let pipeline_info = vk::PipelineInfoKHR::default().pipeline(o.pipeline);
        // SAFETY: the pipeline was created with CAPTURE_STATISTICS and the feature is on.
        let props = call("vkGetPipelineExecutablePropertiesKHR", unsafe {
            fns.get_pipeline_executable_properties(&pipeline_info)
        })?;
        let mut out = Vec::with_capacity(props.len());
        for (index, p) in props.iter().enumerate() {
            let exe = vk::PipelineExecutableInfoKHR::default()
                .pipeline(o.pipeline)
                .executable_index(index as u32);
            // SAFETY: index < the executable count the driver reported.
            let stats = call("vkGetPipelineExecutableStatisticsKHR", unsafe {
                fns.get_pipeline_executable_statistics(&exe)
            })?;
            let statistics = stats
                .iter()
                .map(|s| {
                    // SAFETY: the union member read is the one `format` names.
                    let value = unsafe {
                        match s.format {
                            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => {
                                Ok(Value::Bool(s.value.b32 != vk::FALSE))
                            }
                            vk::PipelineExecutableStatisticFormatKHR::INT64 => {
                                Ok(Value::I64(s.value.i64))
                            }
                            vk::PipelineExecutableStatisticFormatKHR::UINT64 => {
                                Ok(Value::U64(s.value.u64))
                            }
                            vk::PipelineExecutableStatisticFormatKHR::FLOAT64 => {
                                Ok(Value::F64(s.value.f64))
                            }
                            other => Err(other),
                        }
                    };
                    let name = c_string(&s.name);
                    match value {
                        Ok(value) => Ok(Statistic {
                            description: c_string(&s.description),
                            name,
                            value,
                        }),
                        Err(format) => Err(anyhow::anyhow!(
                            "the driver gave the statistic \"{name}\" in unknown format {}",
                            format.as_raw()
                        )),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(Executable {
                name: c_string(&p.name),
                description: c_string(&p.description),
                subgroup_size: p.subgroup_size,
                statistics,
            });
        }
        Ok(out)
    }
}
