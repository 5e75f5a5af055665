"""bfrope itself on a vector set, through `bfrope apply`, in any precision and on any backend.

  python tools/runners/bfrope_runner.py DIR RESULTS --impl exact|fast|hf [--backend cpu|gpu]
         [--adapter SUBSTRING] [--bfrope PATH]

Each group's input and table go to `bfrope apply` as a safetensors file of their own (--cos and
--sin by name, --rotation, --rotary-dim, --inverse as the group says). `exact` must grade as a
pass on every backend; `fast` is plain f32 arithmetic on the GPU (driver-dependent); `hf` is
transformers' eager arithmetic, bit for bit.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from safetensors.torch import load_file, save_file

from common import groups, write


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vectors")
    ap.add_argument("results")
    ap.add_argument("--impl", choices=["exact", "fast", "hf"], required=True)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--adapter")
    ap.add_argument("--bfrope", default="bfrope", help="the bfrope binary (default: on PATH)")
    a = ap.parse_args()
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for g in groups(a.vectors):
            src = os.path.join(tmp, "in.safetensors")
            dst = os.path.join(tmp, "out.safetensors")
            save_file({"x": g.x.contiguous(), "cos": g.cos.contiguous(), "sin": g.table_sin.contiguous()}, src)
            cmd = [a.bfrope, "apply", src, "-o", dst, "--tensors", "x", "--cos", "cos", "--sin", "sin",
                   "--rotation", g.pairing, "--rotary-dim", str(g.rotary_dim), "--precision", a.impl,
                   "--backend", a.backend]
            if g.inverse:
                cmd.append("--inverse")
            if a.adapter:
                cmd += ["--adapter", a.adapter]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"{g.name}: {' '.join(cmd)}: {r.stderr.strip()}")
            outputs[g.output] = load_file(dst)["x"]
    write(a.results, outputs)


if __name__ == "__main__":
    main()
