//! The WGSL sources validate and translate with naga on every backend, without a GPU, and
//! the shader's bindings are the ones the Rust layout declares.
#![cfg(not(target_arch = "wasm32"))]

use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{Module, ShaderStage};

fn parse_and_validate(name: &str, source: &str) -> (Module, ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: validation error:\n{}", e.emit_to_string(source)));
    (module, info)
}

/// Overrides applied as `wgpu` applies them for a pipeline.
fn specialise(
    name: &str,
    module: &Module,
    info: &ModuleInfo,
    entry: &str,
    constants: &[(&str, f64)],
) -> (Module, ModuleInfo) {
    let mut pc = PipelineConstants::default();
    for &(k, v) in constants {
        pc.insert(k.to_string(), v);
    }
    let (m, i) = naga::back::pipeline_constants::process_overrides(
        module,
        info,
        Some((ShaderStage::Compute, entry)),
        &pc,
    )
    .unwrap_or_else(|e| panic!("{name}: overrides {constants:?}: {e}"));
    (m.into_owned(), i.into_owned())
}

fn translate_all(name: &str, module: &Module, info: &ModuleInfo, entry: &str) {
    // SPIR-V
    let spv = naga::back::spv::write_vec(module, info, &naga::back::spv::Options::default(), None)
        .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
    assert!(spv.len() > 100, "{name}: SPIR-V is {} words", spv.len());

    // MSL
    let (msl, _) = naga::back::msl::write_string(
        module,
        info,
        &naga::back::msl::Options::default(),
        &naga::back::msl::PipelineOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
    assert!(
        msl.contains(entry),
        "{name}: MSL lacks the entry point {entry}"
    );

    // HLSL
    let mut hlsl = String::new();
    let options = naga::back::hlsl::Options::default();
    let fragment_entry_point = None;
    let pipeline = naga::back::hlsl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, entry.to_string())),
    };
    let mut writer = naga::back::hlsl::Writer::new(&mut hlsl, &options, &pipeline);
    writer
        .write(module, info, fragment_entry_point)
        .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
    assert!(
        hlsl.contains(entry),
        "{name}: HLSL lacks the entry point {entry}"
    );

    // GLSL (one entry point per translation)
    for version in [
        naga::back::glsl::Version::Embedded {
            version: 310,
            is_webgl: false,
        },
        naga::back::glsl::Version::Desktop(430),
    ] {
        let mut glsl = String::new();
        let options = naga::back::glsl::Options {
            version,
            ..Default::default()
        };
        let pipeline = naga::back::glsl::PipelineOptions {
            shader_stage: ShaderStage::Compute,
            entry_point: entry.to_string(),
            multiview: None,
        };
        let mut writer = naga::back::glsl::Writer::new(
            &mut glsl,
            module,
            info,
            &options,
            &pipeline,
            naga::proc::BoundsCheckPolicies::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: GLSL {version:?}: {e}"));
        writer
            .write()
            .unwrap_or_else(|e| panic!("{name}: GLSL {version:?}: {e}"));
        assert!(
            glsl.contains("void main()"),
            "{name}: GLSL {version:?} has no main"
        );
    }
}

/// Every RoPE module and the copy module, as `(name, source, entry)`.
fn all_modules() -> Vec<(String, String, &'static str)> {
    let mut v: Vec<_> = bfrope::shaders::rope_modules()
        .into_iter()
        .map(|(n, s, e)| (n.to_string(), s, e))
        .collect();
    v.push((
        "copy".into(),
        bfrope::shaders::copy_source(),
        bfrope::shaders::COPY_ENTRY,
    ));
    v
}

#[test]
fn shader_rope_validates_and_translates_for_every_variant() {
    for (name, source, entry) in bfrope::shaders::rope_modules() {
        let (module, info) = parse_and_validate(name, &source);
        let declared: Vec<String> = module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.clone())
            .collect();
        let mut want: Vec<String> = bfrope::shaders::ROPE_OVERRIDES
            .iter()
            .map(|s| s.to_string())
            .collect();
        want.sort();
        let mut got = declared.clone();
        got.sort();
        assert_eq!(got, want, "{name}: override constants vs ROPE_OVERRIDES");
        for exact in [1.0, 0.0, 2.0] {
            for (wg, dtype, table) in [
                (64.0, 0.0, 0.0),
                (256.0, 0.0, 0.0),
                (128.0, 0.0, 1.0),
                (256.0, 1.0, 0.0),
                (128.0, 1.0, 1.0),
            ] {
                let case = format!("{name}[exact={exact},wg={wg},dtype={dtype},table={table}]");
                let constants: Vec<(&str, f64)> = bfrope::shaders::ROPE_OVERRIDES
                    .iter()
                    .map(|&k| match k {
                        "EXACT" => (k, exact),
                        "DTYPE" => (k, dtype),
                        "TABLE_IN_RANGE" => (k, table),
                        "WORKGROUP_SIZE" => (k, wg),
                        other => panic!("no test value for override {other}"),
                    })
                    .collect();
                let (m, i) = specialise(&case, &module, &info, entry, &constants);
                translate_all(&case, &m, &i, entry);
            }
        }
    }
}

#[test]
fn shader_copy_validates_and_translates() {
    let source = bfrope::shaders::copy_source();
    let (module, info) = parse_and_validate("copy.wgsl", &source);
    let case = "copy[wg=256]";
    let (m, i) = specialise(
        case,
        &module,
        &info,
        bfrope::shaders::COPY_ENTRY,
        &[("WORKGROUP_SIZE", 256.0)],
    );
    translate_all(case, &m, &i, bfrope::shaders::COPY_ENTRY);
}

#[test]
fn shader_rope_bindings_match_rust_layout() {
    for (name, source, _) in bfrope::shaders::rope_modules() {
        let (module, _) = parse_and_validate(name, &source);
        let mut found: Vec<(u32, u32, String)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                g.binding
                    .as_ref()
                    .map(|b| (b.group, b.binding, g.name.clone().unwrap_or_default()))
            })
            .collect();
        found.sort();
        let want: Vec<(u32, u32, String)> = bfrope::shaders::ROPE_BINDINGS
            .iter()
            .map(|&(b, n)| (0, b, n.to_string()))
            .collect();
        assert_eq!(
            found, want,
            "{name}: bindings (group, binding, name) vs ROPE_BINDINGS"
        );
    }
}

#[test]
fn shader_entry_points_are_compute() {
    for (name, source, entry) in all_modules() {
        let (module, _) = parse_and_validate(&name, &source);
        let eps: Vec<_> = module
            .entry_points
            .iter()
            .map(|e| (e.name.clone(), e.stage))
            .collect();
        assert_eq!(
            eps,
            vec![(entry.to_string(), ShaderStage::Compute)],
            "{name} entry points"
        );
    }
}

#[test]
fn shader_general_validates_translates_and_binds_as_declared() {
    let entry = bfrope::shaders::ROPE_GENERAL_ENTRY;
    for (name, in_place, views, _words, source) in bfrope::shaders::rope_general_modules() {
        let (module, info) = parse_and_validate(&name, &source);
        let mut got: Vec<String> = module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.clone())
            .collect();
        got.sort();
        let mut want: Vec<String> = bfrope::shaders::ROPE_GENERAL_OVERRIDES
            .iter()
            .map(|s| s.to_string())
            .collect();
        want.sort();
        assert_eq!(got, want, "{name}: override constants");
        for exact in [1.0, 0.0, 2.0] {
            for (half, dtype) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
                let case = format!("{name}[exact={exact},half={half},dtype={dtype}]");
                let constants = [
                    ("EXACT", exact),
                    ("DTYPE", dtype),
                    ("HALF_SPLIT", half),
                    ("WORKGROUP_SIZE", 256.0),
                ];
                let (m, i) = specialise(&case, &module, &info, entry, &constants);
                translate_all(&case, &m, &i, entry);
            }
        }
        let mut found: Vec<(u32, u32, String)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                g.binding
                    .as_ref()
                    .map(|b| (b.group, b.binding, g.name.clone().unwrap_or_default()))
            })
            .collect();
        found.sort();
        // The out-of-place one-view module binds ROPE_GENERAL_BINDINGS; in place drops the
        // read-only sources; two views add src_k (5) and dst_k (6).
        let mut want: Vec<(u32, u32, String)> = bfrope::shaders::ROPE_GENERAL_BINDINGS
            .iter()
            .filter(|&&(b, _)| !(in_place && b == 2))
            .map(|&(b, n)| (0, b, n.to_string()))
            .collect();
        if views == 2 {
            if !in_place {
                want.push((0, 5, "src_k".into()));
            }
            want.push((0, 6, "dst_k".into()));
        }
        want.sort();
        assert_eq!(found, want, "{name}: bindings");
    }
}

/// The Rust uniform structs and the WGSL `Params` blocks they fill: the same members at the
/// same byte offsets and the same size, read from naga's layout of the WGSL struct.
#[test]
fn shader_uniform_structs_match_rust_byte_for_byte() {
    for (kernel, size, members) in bfrope::gpu::plan::uniform_layouts() {
        let source = match kernel {
            "contiguous" => bfrope::shaders::rope_source(),
            "general" => bfrope::shaders::rope_general_source(),
            other => panic!("no WGSL module for uniform block {other}"),
        };
        let (module, _) = parse_and_validate(kernel, &source);
        let params = module
            .global_variables
            .iter()
            .find(|(_, g)| g.name.as_deref() == Some("params"))
            .map(|(_, g)| g.ty)
            .unwrap_or_else(|| panic!("{kernel}: no `params` uniform"));
        let ty = &module.types[params];
        let naga::TypeInner::Struct {
            members: wgsl,
            span,
        } = &ty.inner
        else {
            panic!("{kernel}: params is not a struct");
        };
        let wgsl: Vec<(String, usize)> = wgsl
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
            .collect();
        let rust: Vec<(String, usize)> = members.iter().map(|&(n, o)| (n.to_string(), o)).collect();
        assert_eq!(rust, wgsl, "{kernel}: Rust members vs WGSL Params");
        assert_eq!(size, *span as usize, "{kernel}: Rust size vs WGSL span");
    }
}

/// The f16/f32 arithmetic module: validates and translates for each dtype and path, and
/// binds what the Rust side declares.
#[test]
fn shader_float_check_validates_translates_and_binds_as_declared() {
    let name = "float_check";
    let entry = bfrope::shaders::FLOAT_CHECK_ENTRY;
    let source = bfrope::shaders::float_check_source();
    let (module, info) = parse_and_validate(name, &source);
    let mut got: Vec<String> = module
        .overrides
        .iter()
        .filter_map(|(_, o)| o.name.clone())
        .collect();
    got.sort();
    let mut want: Vec<String> = bfrope::shaders::FLOAT_CHECK_OVERRIDES
        .iter()
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(got, want, "{name}: override constants");
    for dtype in [1.0, 2.0] {
        for fast in [0.0, 1.0] {
            let case = format!("{name}[dtype={dtype},fast={fast}]");
            let constants = [("DTYPE", dtype), ("FAST", fast), ("WORKGROUP_SIZE", 64.0)];
            let (m, i) = specialise(&case, &module, &info, entry, &constants);
            translate_all(&case, &m, &i, entry);
        }
    }
    let mut found: Vec<(u32, u32, String)> = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| {
            g.binding
                .as_ref()
                .map(|b| (b.group, b.binding, g.name.clone().unwrap_or_default()))
        })
        .collect();
    found.sort();
    let want: Vec<(u32, u32, String)> = bfrope::shaders::FLOAT_CHECK_BINDINGS
        .iter()
        .map(|&(b, n)| (0, b, n.to_string()))
        .collect();
    assert_eq!(found, want, "{name}: bindings");
}
