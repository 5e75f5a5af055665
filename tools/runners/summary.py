"""The grade table of docs/VECTORS.md from `bfrope grade --json` files.

  python tools/runners/summary.py GRADE.json ...      (each file named <implementation>.json)

Per implementation and dtype: the share of outputs that differ from the correctly rounded
result and the worst difference in ulps, over all outputs and per class.
"""

import json
import os
import sys

CLASSES = ["nan-input", "inf-input", "signed-zero", "subnormal-input", "subnormal-result", "overflow", "tie",
           "cancellation", "long-context", "every-x0", "model-table", "pass-through", "special-table"]


def cell(outputs, mismatches, worst, nan):
    if outputs == 0:
        return "—"
    if mismatches == 0:
        return "0"
    share = 100.0 * mismatches / outputs
    s = f"{share:.0f}%" if share >= 10 else f"{share:.2g}%" if share >= 0.01 else f"{mismatches}/{outputs}"
    w = f"{worst}" + ("+NaN" if nan else "")
    return f"{s} ({w})"


def main():
    rows = {}
    for path in sys.argv[1:]:
        name = os.path.basename(path).removesuffix(".json")
        g = json.load(open(path))
        for grp in g["groups"]:
            d = grp["dtype"]
            acc = rows.setdefault((d, name), {"all": [0, 0, 0, 0]})
            for key, c in [("all", grp["all"])] + list(grp["classes"].items()):
                a = acc.setdefault(key, [0, 0, 0, 0])
                a[0] += c["outputs"]
                a[1] += c["mismatches"]
                a[2] = max(a[2], c["worst_ulp"])
                a[3] += c["nan_mismatches"]
    for d in ["bf16", "f16", "f32"]:
        names = [n for (dd, n) in rows if dd == d]
        if not names:
            continue
        cols = ["all"] + [c for c in CLASSES if any(c in rows[(d, n)] for n in names)]
        print(f"\n**{d}** — share of outputs that differ (worst ulps; +NaN: a NaN where a number is due or the reverse)\n")
        print("| implementation | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for n in names:
            r = rows[(d, n)]
            print(f"| {n} | " + " | ".join(cell(*r[c]) if c in r else "—" for c in cols) + " |")


if __name__ == "__main__":
    main()
