//! Finding adapters: what `bfrope info` and the page report, and the choice by selector.

use crate::error::{Error, Result};

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
    pub(crate) fn of(adapter: &wgpu::Adapter) -> Self {
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

pub(crate) fn instance() -> wgpu::Instance {
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

/// The best adapter, or the best whose name, backend, driver or driver info contains
/// `selector`. A real GPU is preferred over a CPU implementation such as lavapipe.
///
/// No adapter at all is [`Error::NoAdapter`]; a selector that matches none of the adapters
/// there are is the caller's mistake, [`Error::Argument`], and the message lists them.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn pick(inst: &wgpu::Instance, selector: Option<&str>) -> Result<wgpu::Adapter> {
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
        Error::Argument(format!(
            "no adapter matches {:?}; the adapters here are: {}",
            selector.unwrap_or_default(),
            names.join("; ")
        ))
    })
}

/// The browser's adapter, if it matches `selector`.
#[cfg(target_arch = "wasm32")]
pub(crate) async fn pick(inst: &wgpu::Instance, selector: Option<&str>) -> Result<wgpu::Adapter> {
    let adapter = inst
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::NoAdapter(format!("the browser offers no WebGPU adapter ({e})")))?;
    if let Some(s) = selector {
        let report = AdapterReport::of(&adapter);
        if !report.matches(s) {
            return Err(Error::Argument(format!(
                "the browser's adapter {} does not match {s:?}",
                report.summary()
            )));
        }
    }
    Ok(adapter)
}
