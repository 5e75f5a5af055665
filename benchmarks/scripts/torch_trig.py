"""Are torch.cos / torch.sin on CPU float32 correctly rounded at the angles HF builds for the
yarn_x4 and longrope cases of ../shared/golden/hf_reference.safetensors? Reference: math.cos /
math.sin in float64 of the same f32 angle, rounded to f32. Also checks that the angles (and
cos * attention_scaling) reproduce the stored tables, so the angles are the ones HF used.
Usage: python3 torch_trig.py hf_reference.safetensors"""
import json, math, sys
import torch
from safetensors.torch import load_file
from safetensors import safe_open

path = sys.argv[1]
t = load_file(path)
with safe_open(path, "pt") as f:
    meta = f.metadata()
for case in ["yarn_x4", "longrope", "default_1e4", "llama3", "linear_x4", "dynamic_x2", "default_5e5_d64"]:
    if case + ".inv_freq" not in t:
        continue
    scale = json.loads(meta[case]).get("attention_scaling", 1.0)
    inv = t[case + ".inv_freq"].float()
    pos = t[case + ".positions"].float()
    # HF: (inv_freq[None, :, None] @ position_ids[:, None, :].float()).transpose(1, 2)
    freqs = (inv[None, :, None] @ pos[None, None, :]).transpose(1, 2)[0]
    emb = torch.cat((freqs, freqs), dim=-1)
    out = {}
    for name, fn, mfn in [("cos", torch.cos, math.cos), ("sin", torch.sin, math.sin)]:
        got = fn(emb)
        ref = torch.tensor([[mfn(float(a)) for a in row] for row in emb.tolist()], dtype=torch.float64).float()
        bad = (got.view(torch.int32) != ref.view(torch.int32))
        ulps = (got.view(torch.int32).long() - ref.view(torch.int32).long()).abs()
        hf = (got * scale).float()
        stored = t[f"{case}.{name}"].float()
        out[name] = dict(values=got.numel() // 2, not_correctly_rounded=int(bad[:, : emb.shape[1] // 2].sum()),
                         max_ulp=int(ulps.max()), hf_table_equals_stored=bool(torch.equal(hf, stored)))
    print(case, "scale", scale, json.dumps(out))
