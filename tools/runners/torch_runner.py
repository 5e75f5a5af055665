"""PyTorch RoPE implementations on a bfrope vector set: writes the results `bfrope grade` reads.

  python tools/runners/torch_runner.py DIR RESULTS --impl IMPL [--device cpu|cuda]

IMPL:
  seed        the complex-multiply RoPE with its bf16 fix: the pairs upcast to f32, torch.complex
              (view_as_complex), a complex multiply by freqs_cis = complex(cos, sin), back to the
              tensor's dtype
  hf          transformers' apply_rotary_pos_emb (models/llama) in the tensor's dtype, with cos and
              sin in that dtype as its rotary module hands them: q*cos + rotate_half(q)*sin
  hf-compile  torch.compile of the same function
  liger       Liger-Kernel's liger_rotary_pos_emb (Triton; CUDA)
  flash-attn  flash-attn's Triton apply_rotary (CUDA; `flash_attn.ops.triton.rotary`, or the file
              named by FLASH_ATTN_ROTARY=path/to/rotary.py)

Pairs that an implementation does not form itself (interleaved for the half-split ones, half-split
for the seed's) are permuted to its order and back; partial rotary dims are passed through around
it. Both permutations are exact, so the grade is the implementation's arithmetic.
"""

import importlib.util
import os

import torch

from common import args, groups, write


def seed(g):
    x = g.to_interleaved(g.x).float()
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    freqs = torch.complex(g.cos, g.sin)[None, :, None, :]  # [1, S, 1, R/2]
    y = torch.view_as_real(xc * freqs).flatten(-2).to(g.dtype)
    return g.from_interleaved(y, g.x)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def hf_apply(q, cos, sin):
    # transformers' apply_rotary_pos_emb (modeling_llama), unsqueeze_dim=1, q in [B, H, S, D]
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin)


def hf_with(fn):
    def run(g):
        q = g.to_half(g.x).transpose(1, 2)  # [B, H, S, R]
        cos = torch.cat((g.cos, g.cos), dim=-1)[None].to(g.dtype)  # [1, S, R], the model's dtype
        sin = torch.cat((g.sin, g.sin), dim=-1)[None].to(g.dtype)
        y = fn(q, cos, sin).transpose(1, 2)
        return g.from_half(y, g.x)

    return run


def liger(g):
    from liger_kernel.transformers.rope import liger_rotary_pos_emb

    q = g.to_half(g.x).transpose(1, 2).contiguous()
    cos = torch.cat((g.cos, g.cos), dim=-1)[None].to(g.dtype)
    sin = torch.cat((g.sin, g.sin), dim=-1)[None].to(g.dtype)
    y, _ = liger_rotary_pos_emb(q, q.clone(), cos, sin)
    return g.from_half(y.transpose(1, 2), g.x)


def flash_rotary():
    path = os.environ.get("FLASH_ATTN_ROTARY")
    if path:
        spec = importlib.util.spec_from_file_location("fa_rotary", path)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        return m.apply_rotary
    from flash_attn.ops.triton.rotary import apply_rotary

    return apply_rotary


def flash_attn(g):
    apply_rotary = flash_rotary()
    # [B, S, H, D] with cos/sin [S, R/2] in the tensor's dtype; partial rotary and both
    # pairings native; inverse by conjugate (sin already negated here, so conjugate=False)
    return apply_rotary(
        g.x.contiguous(),
        g.cos.to(g.dtype).contiguous(),
        g.sin.to(g.dtype).contiguous(),
        interleaved=g.pairing == "interleaved",
    )


def main():
    impls = {"seed": seed, "hf": hf_with(hf_apply), "liger": liger, "flash-attn": flash_attn}
    a = args(__doc__.split("\n")[0], list(impls) + ["hf-compile"])
    if a.impl == "hf-compile":
        run = hf_with(torch.compile(hf_apply, dynamic=True))
    else:
        run = impls[a.impl]
    outputs = {}
    with torch.no_grad():
        for g in groups(a.vectors, a.device):
            outputs[g.output] = run(g)
    write(a.results, outputs)


if __name__ == "__main__":
    main()
