"""Writes src/table/model_defaults.json: what transformers' config class of every model type
assumes about its rotary embedding when a config.json leaves a key out.

For each model type of transformers' CONFIG_MAPPING, the class is instantiated with its
defaults (the text config of a wrapper) and the rope-related attributes are recorded:

  theta   the default base (`default_theta`): a number, or one per layer type
  params  the default `rope_parameters` a config.json without `rope_parameters` and
          `rope_scaling` gets (rope_theta left out: `theta` says it), when not just "default"
  prf     the default `partial_rotary_factor`, where the class has one
  interleave  the default `rope_interleave`, where the class has one
  text    the model type of a wrapper's text config
  alias   the class's `attribute_map` entries for the keys the table builder reads
          (`hidden_size` is `n_embd` in GPT-J's config.json, `head_dim` is `kv_channels` in
          JetMoE's, ...)

Run with transformers installed (no model weights are loaded):

    python tools/models/defaults.py > src/table/model_defaults.json
"""
import json
import logging
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from transformers import __version__
from transformers.models.auto.configuration_auto import CONFIG_MAPPING, CONFIG_MAPPING_NAMES


def attr(cfg, key):
    try:
        return getattr(cfg, key, None)
    except Exception:  # per-layer attributes of heterogeneous configs refuse global access
        return None


def entry(mt):
    try:
        c = CONFIG_MAPPING[mt]()
    except Exception:
        return None
    out = {}
    tc = attr(c, "text_config")
    if tc is not None and not isinstance(tc, dict) and hasattr(tc, "model_type"):
        out["text"] = tc.model_type
        c = tc
    amap = getattr(type(c), "attribute_map", {}) or {}
    wanted = ("hidden_size", "num_attention_heads", "head_dim", "max_position_embeddings",
              "rope_theta", "partial_rotary_factor", "num_hidden_layers")
    alias = {k: v for k, v in amap.items() if k in wanted}
    if alias:
        out["alias"] = alias
    theta = attr(c, "default_theta")
    if isinstance(theta, dict) or (theta is not None and theta != 10000.0):
        out["theta"] = theta
    rp = attr(c, "rope_parameters")
    if isinstance(rp, dict) and "rope_type" in rp:
        extra = {k: v for k, v in rp.items() if k not in ("rope_theta", "partial_rotary_factor")}
        if extra != {"rope_type": "default"}:
            out["params"] = extra
    elif isinstance(rp, dict) and rp:
        # One set per layer type: its non-theta keys, where not just "default".
        per = {}
        for lt, p in rp.items():
            if isinstance(p, dict):
                extra = {k: v for k, v in p.items() if k not in ("rope_theta",)}
                if extra != {"rope_type": "default"}:
                    per[lt] = extra
        if per:
            out["params"] = per
    prf = attr(c, "partial_rotary_factor")
    if prf is None and isinstance(rp, dict) and "partial_rotary_factor" in rp:
        prf = rp["partial_rotary_factor"]
    if prf is not None and prf != 1.0:
        out["prf"] = prf
    inter = attr(c, "rope_interleave")
    if inter is not None:
        out["interleave"] = inter
    return out or None


table = {}
for mt in sorted(CONFIG_MAPPING_NAMES):
    e = entry(mt)
    if e:
        table[mt] = e
print(json.dumps({"transformers": __version__, "models": table}, indent=0, sort_keys=True))
