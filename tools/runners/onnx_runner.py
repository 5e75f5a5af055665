"""ONNX's reference RotaryEmbedding (onnx.reference, numpy) on a bfrope vector set.

  python tools/runners/onnx_runner.py DIR RESULTS --impl reference

The input goes in as ONNX's 3-D [batch, seq, hidden] with num_heads (no transpose), the tables
as cos_cache/sin_cache [1, S, R/2] in the input's type (the operator's T): float32, float16, or
bfloat16 through ml_dtypes (numpy then rounds every product and sum to bf16). The inverse
rotation is the forward one with sin negated.
"""

import ml_dtypes
import numpy as np
import torch
from onnx.reference.ops.op_rotary_embedding import rotary_embedding

from common import args, groups, write

NP = {"bf16": ml_dtypes.bfloat16, "f16": np.float16, "f32": np.float32}
BITS = {"bf16": (torch.int16, np.int16), "f16": (torch.int16, np.int16), "f32": (torch.int32, np.int32)}


def to_numpy(t, name):
    ti, _ = BITS[name]
    return t.contiguous().view(ti).numpy().view(NP[name])


def to_torch(a, name, dtype):
    _, ni = BITS[name]
    return torch.from_numpy(np.ascontiguousarray(a).view(ni).copy()).view(dtype)


def main():
    a = args(__doc__.split("\n")[0], ["reference"])
    outputs = {}
    for g in groups(a.vectors):
        b, s, h, d = g.shape
        x = to_numpy(g.x, g.dtype_name).reshape(b, s, h * d)
        cos = to_numpy(g.cos.to(g.dtype), g.dtype_name)[None]
        sin = to_numpy(g.sin.to(g.dtype), g.dtype_name)[None]
        with np.errstate(all="ignore"):  # overflow and inf - inf are part of the vectors
            y = rotary_embedding(
                x, cos, sin, interleaved=g.pairing == "interleaved", rotary_embedding_dim=g.rotary_dim, num_heads=h
            )
        outputs[g.output] = to_torch(np.asarray(y, dtype=NP[g.dtype_name]).reshape(b, s, h, d), g.dtype_name, g.dtype)
    write(a.results, outputs)


if __name__ == "__main__":
    main()
