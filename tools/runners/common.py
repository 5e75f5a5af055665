"""Reading a bfrope vector set and writing a results file, for the runners beside this file.

A vector set is the folder `bfrope vectors -o DIR` writes (docs/VECTORS.md): vectors.json lists
the groups; vectors.safetensors holds, per group, `<g>.input` ([B, S, H, D], BSHD), `<g>.cos`
and `<g>.sin` (F32 [S, rotary_dim/2], row s for token s). A runner rotates every input its
implementation supports and writes `<g>.output` (same dtype and shape) to a safetensors file
that `bfrope grade DIR RESULTS` grades.
"""

import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


class Group:
    """One group of the set: its tensors as torch tensors on `device`, and its rotation."""

    def __init__(self, entry, tensors, device):
        self.name = entry["name"]
        self.dtype = DTYPES[entry["dtype"]]
        self.dtype_name = entry["dtype"]
        self.shape = entry["shape"]
        self.pairing = entry["pairing"]  # "interleaved" or "half"
        self.rotary_dim = entry["rotary_dim"]
        self.inverse = entry["direction"] == "inverse"
        self.output = entry["output"]
        self.x = tensors[entry["input"]].to(device)
        self.cos = tensors[entry["cos"]].to(device)
        # the table as the set gives it, and sin signed for the direction (inverse: -angle)
        self.table_sin = tensors[entry["sin"]].to(device)
        self.sin = -self.table_sin if self.inverse else self.table_sin

    def to_interleaved(self, x):
        """The rotated dims of x [..., D] with pairs adjacent: (x0, x1) of pair i at 2i, 2i+1."""
        r = x[..., : self.rotary_dim]
        if self.pairing == "interleaved":
            return r
        h = self.rotary_dim // 2
        return torch.stack((r[..., :h], r[..., h:]), dim=-1).flatten(-2)

    def to_half(self, x):
        """The rotated dims of x [..., D] in half-split order: x0 of every pair, then x1."""
        r = x[..., : self.rotary_dim]
        if self.pairing == "half":
            return r
        return torch.cat((r[..., 0::2], r[..., 1::2]), dim=-1)

    def from_interleaved(self, y, x):
        """y (rotated dims, pairs adjacent) back in the group's order, pass-through dims of x."""
        if self.pairing == "half":
            y = torch.cat((y[..., 0::2], y[..., 1::2]), dim=-1)
        return torch.cat((y, x[..., self.rotary_dim :]), dim=-1)

    def from_half(self, y, x):
        """y (rotated dims, half-split) back in the group's order, pass-through dims of x."""
        if self.pairing == "interleaved":
            h = self.rotary_dim // 2
            y = torch.stack((y[..., :h], y[..., h:]), dim=-1).flatten(-2)
        return torch.cat((y, x[..., self.rotary_dim :]), dim=-1)


def args(description, impls):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("vectors", help="the folder bfrope vectors wrote")
    ap.add_argument("results", help="the results file to write (safetensors)")
    ap.add_argument("--impl", choices=impls, required=True)
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    return ap.parse_args()


def groups(folder, device="cpu"):
    """Every group of the set in `folder`."""
    with open(os.path.join(folder, "vectors.json")) as f:
        index = json.load(f)
    if index.get("format") != "bfrope-rope-vectors":
        sys.exit(f"{folder}/vectors.json is not a bfrope vector set")
    tensors = load_file(os.path.join(folder, "vectors.safetensors"))
    return [Group(e, tensors, device) for e in index["groups"]]


def write(path, outputs):
    """Writes {name: tensor} as safetensors (moved to the CPU, contiguous)."""
    save_file({k: v.detach().to("cpu").contiguous() for k, v in outputs.items()}, path)
    print(f"wrote {len(outputs)} outputs to {path}", file=sys.stderr)
