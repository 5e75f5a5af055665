//! The general kernel recorded by hand (`RopeKernels::record` of a `ViewArgs`) on test data: the output
//! buffers pre-filled with a sentinel, or the call in place, q and k in one dispatch.

use bfrope::{Bits, Positions, RopeTable, Rotation, TensorView};

/// Records the general kernel (`record` of a `ViewArgs`) on `q` and, when given, `k` (one dispatch),
/// each in its own buffer: out of place into outputs pre-filled with the sentinel byte
/// `0xEE`, or in place. Returns the buffers after the call.
#[allow(clippy::too_many_arguments)]
pub fn gpu_views<E: Bits>(
    gpu: &bfrope::Gpu,
    q: (&[E], TensorView),
    k: Option<(&[E], TensorView)>,
    rotation: Rotation,
    positions: &Positions,
    table: &RopeTable,
    in_place: bool,
) -> (Vec<E>, Option<Vec<E>>) {
    use wgpu::util::DeviceExt;
    let device = gpu.device();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let make = |x: &[E]| {
        let mut bytes: Vec<u8> = bytemuck::cast_slice(x).to_vec();
        bytes.resize(bytes.len().div_ceil(4) * 4, 0);
        let init = |contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents,
                usage,
            })
        };
        let input = init(&bytes);
        let output = if in_place {
            input.clone()
        } else {
            init(&vec![0xEE; bytes.len()])
        };
        (input, output, bytes.len() as u64)
    };
    let (qi, qo, qn) = make(q.0);
    let kb = k.map(|(x, _)| make(x));
    let tb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: table.as_bytes(),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    gpu.kernels()
        .record(
            &mut encoder,
            &bfrope::ViewArgs {
                q: bfrope::ViewTensor {
                    input: &qi,
                    output: &qo,
                    view: q.1,
                },
                k: k.zip(kb.as_ref())
                    .map(|((_, view), (ki, ko, _))| bfrope::ViewTensor {
                        input: ki,
                        output: ko,
                        view,
                    }),
                table: &tb,
                table_rows: table.rows(),
                rotation,
                positions,
                device_rows: None,
                table_in_range: false,
            },
        )
        .unwrap();
    let back = |encoder, buffer: &wgpu::Buffer, bytes, len| {
        let words = pollster::block_on(gpu.read_back(encoder, buffer, bytes)).unwrap();
        let mut out = vec![E::default(); len];
        let n = len * std::mem::size_of::<E>();
        bytemuck::cast_slice_mut::<E, u8>(&mut out)
            .copy_from_slice(&bytemuck::cast_slice(&words)[..n]);
        out
    };
    let qout = back(encoder, &qo, qn, q.0.len());
    let kout = k.zip(kb.as_ref()).map(|((x, _), (_, ko, kn))| {
        let encoder = device.create_command_encoder(&Default::default());
        back(encoder, ko, *kn, x.len())
    });
    (qout, kout)
}

/// [`gpu_views`] on `x` alone: out of place into an output pre-filled with the sentinel byte
/// `0xEE` (what the kernel leaves outside the view), or in place.
pub fn gpu_view<E: Bits>(
    gpu: &bfrope::Gpu,
    x: &[E],
    view: TensorView,
    rotation: Rotation,
    positions: &Positions,
    table: &RopeTable,
    in_place: bool,
) -> Vec<E> {
    gpu_views(gpu, (x, view), None, rotation, positions, table, in_place).0
}
