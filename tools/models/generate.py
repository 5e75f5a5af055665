"""Reference data: how every transformers model type applies rotary position embedding.

Regenerates tests/data/models/ from the installed transformers (5.17.0) and torch (2.11, CPU):

  model_types.json         every model type in CONFIG_MAPPING_NAMES, classified as rope
                           "applied" / "none" / "unknown" for its text attention, with the rotary
                           class and apply function (or the positional scheme used instead)
  cases.json               one case per rope model type (its config class defaults), flagship
                           published config.json files, and a few no-rope configs
  reference.safetensors    for every case layer that rotates: x (BF16 [S,H,D] query heads),
                           y (F32 [S,H,D], what the model's own code makes of x.float()),
                           cos / sin (F32 [S,W], as the model's rotary module returned them)

Needs: pip install "torch==2.11.*" "transformers==5.17.0" safetensors   (CPU only; no model weights)
Run:   python tools/models/generate.py            (full run, about 25 minutes on 2 cores)
       python tools/models/generate.py --reuse-survey
                         (skip the slow survey: reuse tools/models/survey.json from the last full run)

How it works.  The survey builds every model type's default model on the meta device (no weights,
no memory) and records which rotary modules exist and where (text model vs vision / audio tower).
Each case then builds its model on the meta device again, takes the text model's rotary module and
re-creates it on the CPU with the same config object (real inv_freq buffers), walks the text decoder
layers to find each layer's attention module, groups layers by rotary behaviour (rope on/off,
layer_type, attention class), and for the first layer of each group runs:

    cos, sin = rotary(x, position_ids[, layer_type])      # the model's own rotary module
    y = <the attention forward's steps around the model's own apply function>(x, cos, sin)

The steps between projection and attention differ per model; ADAPTERS holds each variant and RULES
says which model uses which (default: the Llama path, apply_rotary_pos_emb(q, k, cos, sin)).
Everything is deterministic: x comes from a generator seeded with crc32(case name + layer).
"""

import argparse
import inspect
import json
import os
import re
import signal
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor

import torch
import transformers
from safetensors.torch import save_file
from transformers import logging as hf_logging
from transformers.models.auto import modeling_auto
from transformers.models.auto.configuration_auto import (
    CONFIG_MAPPING,
    CONFIG_MAPPING_NAMES,
    model_type_to_module_name,
)

hf_logging.set_verbosity_error()
import warnings  # noqa: E402

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "data", "models")
SURVEY = os.path.join(HERE, "survey.json")
TF_MODELS = os.path.join(os.path.dirname(transformers.__file__), "models")

POSITIONS = [0, 1, 2, 5, 63, 1000, 4097, 40000]
SHORT_POSITIONS = [0, 1, 2, 3, 5, 8, 13, 21]
HEADS_DEFAULTS = 1  # defaults cases: one head keeps the file small
HEADS_CARDS = 2

# --------------------------------------------------------------------------------------------
# survey: meta-device instantiation of every model type
# --------------------------------------------------------------------------------------------

MODEL_MAPPINGS = [
    "MODEL_MAPPING_NAMES",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES",
    "MODEL_FOR_CTC_MAPPING_NAMES",
]


def model_class_name(mt):
    for name in MODEL_MAPPINGS:
        m = getattr(modeling_auto, name, {})
        if mt in m:
            v = m[mt]
            return v[0] if isinstance(v, (list, tuple)) else v
    return None


def meta_model(mt, cfg):
    clsname = model_class_name(mt)
    if clsname is None:
        raise LookupError(f"no model class for {mt}")
    cls = getattr(transformers, clsname)
    with torch.device("meta"):
        return cls._from_config(cfg) if hasattr(cls, "_from_config") else cls(cfg)


def is_rotary_class(cn):
    return bool(re.search(r"Rotary|Rope|RoPE", cn)) and "Attention" not in cn


def is_rotary_module(name, mod):
    return is_rotary_class(type(mod).__name__) and not isinstance(mod, torch.nn.ModuleList)


# standalone vision / keypoint models whose only attention rotary is a 2-D (axial) image rope
VISION_ONLY = {"dinov3_vit", "efficientloftr", "lightglue", "kimi_k25_vision", "muse_glimmer_vision",
               "sam3_vit_model", "sapiens2", "sapiens2_head", "vjepa2", "eomt_dinov3", "pixtral", "mlcd"}

NON_TEXT_PATH = re.compile(
    r"vision|visual|image|patch|audio|protein|codec|speech_encoder|pos_emb$|acoustic|detector|tracker|memory_|"
    r"prompt_encoder|mask_decoder|backbone\.layers|encoder_transformer|decoder_transformer|geometry|semantic"
)


def survey_one(mt):
    r = {"model_type": mt}
    signal.alarm(240)
    try:
        cfg = CONFIG_MAPPING[mt]()
        m = meta_model(mt, cfg)
        r["model_class"] = type(m).__name__
        rot = {}
        for n, mod in m.named_modules():
            if is_rotary_module(n, mod):
                rot.setdefault(n, type(mod).__name__)
        r["rotary_modules"] = rot
    except BaseException as e:  # noqa: BLE001 - a survey records failures
        r["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)
    return r


def run_survey():
    mts = list(CONFIG_MAPPING_NAMES)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        res = list(ex.map(survey_one, mts, chunksize=4))
    out = {r["model_type"]: r for r in res}
    with open(SURVEY, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    return out


# --------------------------------------------------------------------------------------------
# static facts from the modeling sources
# --------------------------------------------------------------------------------------------

ROPE_MARKERS = ["apply_rotary_pos_emb", "RotaryEmbedding", "rotate_half", "rotate_every_two", "freqs_cis",
                "apply_multimodal_rotary_pos_emb", "apply_rotary_emb"]


def modeling_files(mt):
    d = os.path.join(TF_MODELS, model_type_to_module_name(mt))
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f.startswith("modeling_") and f.endswith(".py"))


def markers(mt):
    d = os.path.join(TF_MODELS, model_type_to_module_name(mt))
    found = set()
    for f in modeling_files(mt):
        s = open(os.path.join(d, f)).read()
        found |= {k for k in ROPE_MARKERS if k in s}
        for k, pat in [("alibi", r"\balibi\b"), ("relative_attention_bias", r"relative_attention_bias"),
                       ("sinusoidal", r"[Ss]inusoidal"), ("position_embeddings", r"nn\.Embedding\([^)]*max_position")]:
            if re.search(pat, s):
                found.add(k)
    return found


# --------------------------------------------------------------------------------------------
# adapters: the steps each attention forward takes around the model's own apply function.
# q is x.float() as [1, H, S, D] (batch, heads, seq, dim), the layout the Llama family uses.
# Each returns y in the same layout, in the dim order the attention then uses.
# --------------------------------------------------------------------------------------------


def _fn(ctx, name="apply_rotary_pos_emb"):
    return getattr(ctx["module"], name)


def ad_qk(ctx, q, cos, sin):
    """apply_rotary_pos_emb(q, k, cos, sin) on [B,H,S,D] (partial rotary, if any, inside it)."""
    return _fn(ctx)(q, q.clone(), cos, sin)[0]


def ad_single_bshd(ctx, q, cos, sin):
    """apply_rotary_pos_emb(x, cos, sin, unsqueeze_dim=2) on [B,S,H,D] (Gemma3n / Gemma4 style)."""
    return _fn(ctx)(q.transpose(1, 2), cos, sin, unsqueeze_dim=2).transpose(1, 2)


def ad_qk_bshd(ctx, q, cos, sin):
    """apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=2) on [B,S,H,D]."""
    qt = q.transpose(1, 2)
    return _fn(ctx)(qt, qt.clone(), cos, sin, unsqueeze_dim=2)[0].transpose(1, 2)


def ad_partial_attn(ctx, q, cos, sin):
    """attention splits q[..., :rotary_ndims] / rest, rotates the first part, concatenates."""
    nd = ctx["attn"].rotary_ndims
    rot, rest = q[..., :nd], q[..., nd:]
    r = _fn(ctx)(rot, rot.clone(), cos, sin)[0]
    return torch.cat((r, rest), dim=-1)


def ad_mla(ctx, q, cos, sin):
    """MLA: x is q_rot (the qk_rope_head_dim part); config.rope_interleave picks the interleaved apply."""
    if getattr(ctx["cfg"], "rope_interleave", False):
        return _fn(ctx, "apply_rotary_pos_emb_interleave")(q, q.clone(), cos, sin)[0]
    return _fn(ctx)(q, q.clone(), cos, sin)[0]


def ad_mla_interleave(ctx, q, cos, sin):
    """MLA that always uses apply_rotary_pos_emb_interleave (no rope_interleave switch)."""
    return _fn(ctx, "apply_rotary_pos_emb_interleave")(q, q.clone(), cos, sin)[0]


def ad_freqs_cis(ctx, q, cos, sin):
    """DeepSeek-V2: apply_rotary_emb(q_pe, k_pe, freqs_cis) on [B,H,S,D], complex pairs (2i, 2i+1)."""
    freqs = ctx["freqs_cis"]
    return _fn(ctx, "apply_rotary_emb")(q, q.clone(), freqs)[0]


def ad_llama4(ctx, q, cos, sin):
    """Llama4: apply_rotary_emb(xq, xk, freqs_cis) on [B,S,H,D], complex pairs (2i, 2i+1)."""
    qt = q.transpose(1, 2)
    return _fn(ctx, "apply_rotary_emb")(qt, qt.clone(), ctx["freqs_cis"])[0].transpose(1, 2)


def ad_gptj(ctx, q, cos, sin):
    """GPT-J / CodeGen: sincos table gathered per position, rotate_every_two on the first rotary_dim dims."""
    attn = ctx["attn"]
    sin_, cos_ = ctx["gptj_sin"], ctx["gptj_cos"]
    qb = q.transpose(1, 2)  # the attention keeps [B, S, H, D] here
    rd = attn.rotary_dim
    if rd is not None:
        r = _fn(ctx)(qb[..., :rd], sin_, cos_)
        out = torch.cat((r, qb[..., rd:]), dim=-1)
    else:
        out = _fn(ctx)(qb, sin_, cos_)
    return out.transpose(1, 2)


ADAPTERS = {
    "qk": ad_qk,
    "single_bshd": ad_single_bshd,
    "qk_bshd": ad_qk_bshd,
    "partial_attn": ad_partial_attn,
    "mla": ad_mla,
    "mla_interleave": ad_mla_interleave,
    "freqs_cis": ad_freqs_cis,
    "llama4": ad_llama4,
    "gptj": ad_gptj,
}

# attention class name -> adapter (everything else: "qk")
ADAPTER_BY_ATTN = {
    "PhiAttention": "partial_attn", "PersimmonAttention": "partial_attn", "StableLmAttention": "partial_attn",
    "GPTNeoXJapaneseAttention": "partial_attn",
    "DeepseekV3Attention": "mla", "Glm4MoeLiteAttention": "mla", "YoutuAttention": "mla", "AXK1Attention": "mla",
    "Mistral4Attention": "mla",
    "DeepseekV32Attention": "mla_interleave", "GlmMoeDsaAttention": "mla_interleave", "AXK2Attention": "mla_interleave",
    "LongcatFlashMLA": "mla_interleave",
    "MiniCPM3Attention": "qk", "HYV4Attention": "qk",
    "DeepseekV2Attention": "freqs_cis",
    "Llama4TextAttention": "llama4",
    "GPTJAttention": "gptj", "CodeGenAttention": "gptj",
    "Gemma3nTextAttention": "single_bshd", "Gemma4TextAttention": "single_bshd",
    "Gemma4UnifiedTextAttention": "single_bshd", "DiffusionGemmaEncoderTextAttention": "single_bshd",
    "DiffusionGemmaDecoderTextAttention": "single_bshd",
    "NeuCodecAttention": "qk_bshd", "Xcodec2Attention": "qk_bshd",
}
MLA_ADAPTERS = {"mla", "mla_interleave", "freqs_cis"}
MLA_ATTN = {"MiniCPM3Attention", "HYV4Attention"}  # MLA with the plain half-split apply


# per-layer "does this layer rotate": attention class -> predicate(attn, cfg, idx).  Default: True.
def _use_rope(a, c, i):
    return bool(a.use_rope)


ROPE_FLAG_BY_ATTN = {
    "Llama4TextAttention": _use_rope,
    "SmolLM3Attention": _use_rope,
    "Cohere2Attention": lambda a, c, i: a.sliding_window is not None,
    "Cohere2MoeAttention": lambda a, c, i: a.sliding_window is not None or bool(getattr(a, "force_rope", False)),
    "Exaone4Attention": lambda a, c, i: a.sliding_window is None or a.is_sliding,
    "ExaoneMoeAttention": lambda a, c, i: a.sliding_window is None or a.is_sliding,
    "Exaone4_5_Attention": lambda a, c, i: a.sliding_window is None or a.is_sliding,
    "AfmoeAttention": lambda a, c, i: bool(a.is_local_attention),
    "Zamba2Attention": lambda a, c, i: bool(c.use_mem_rope),
    "FalconAttention": lambda a, c, i: not c.alibi,
}


# --------------------------------------------------------------------------------------------
# running one case
# --------------------------------------------------------------------------------------------


class CaseError(Exception):
    pass


def build_config(mt, config_dict=None):
    cls = CONFIG_MAPPING[mt]
    cfg = cls() if config_dict is None else cls.from_dict(dict(config_dict))
    return cfg


def config_to_dict(cfg):
    return json.loads(json.dumps(cfg.to_dict(), default=str))


def get_module(model, path):
    m = model
    for p in path.split(".") if path else []:
        m = m[int(p)] if p.isdigit() else getattr(m, p)
    return m


def text_rotary(model, rot_path=None):
    cands = [(n, m) for n, m in model.named_modules() if is_rotary_module(n, m)]
    if rot_path is not None:
        return rot_path, get_module(model, rot_path)
    text = [(n, m) for n, m in cands if not NON_TEXT_PATH.search(n)]
    return text[0] if text else (None, None)


LAYER_LIST_NAMES = ["layers", "h", "layer", "blocks", "decoder.layers"]


def decoder_layers(model, rot_path):
    m = re.match(r"(.*?)\.?(layers|h|blocks)\.\d+\.", rot_path + ".")
    if m and re.search(r"\.\d+\.", rot_path):
        return get_module(model, (m.group(1) + "." if m.group(1) else "") + m.group(2))
    parent = rot_path.rsplit(".", 1)[0] if "." in rot_path else ""
    base = get_module(model, parent)
    for name in LAYER_LIST_NAMES:
        try:
            lst = get_module(base, name)
        except (AttributeError, IndexError):
            continue
        if isinstance(lst, torch.nn.ModuleList):
            return lst
    raise CaseError(f"no decoder layer list next to {rot_path}")


ATTN_NAMES = ["self_attn", "attention", "self_attention", "attn", "mixer", "mla", "self_attn_layer"]
NOT_ROPE_ATTN = re.compile(r"Linear|DeltaNet|Mamba|Cross|Conv|Lightning|Gdn|Indexer", re.I)


def layer_attention(layer):
    for name in ATTN_NAMES:
        a = getattr(layer, name, None)
        if isinstance(a, torch.nn.ModuleList) and len(a):  # LongCat-Flash: two attention blocks per layer
            a = a[0]
        if a is not None and ("Attention" in type(a).__name__ or "MLA" in type(a).__name__):
            return a
    for _, a in layer.named_children():
        if "Attention" in type(a).__name__:
            return a
    return None


def head_dim_of(attn, cfg, adapter):
    if adapter in MLA_ADAPTERS or type(attn).__name__ in MLA_ATTN:
        return int(cfg.qk_rope_head_dim)
    for k in ["head_dim", "head_size", "attention_head_size"]:
        v = getattr(attn, k, None)
        if isinstance(v, int):
            return v
    v = getattr(cfg, "head_dim", None)
    return int(v) if v else cfg.hidden_size // cfg.num_attention_heads


def table_form(cos, note=None):
    w = cos.shape[-1]
    if note:
        return note
    if w % 2 == 0 and torch.equal(cos[:, : w // 2], cos[:, w // 2:]):
        return "repeated halves"
    if w % 2 == 0 and torch.equal(cos[:, 0::2], cos[:, 1::2]):
        return "interleaved repeat"
    return "half"


def pairing(module, adapter):
    if adapter in ("mla_interleave",):
        return "interleaved input pairs (2i,2i+1), output written half-split (permuted)"
    if adapter in ("freqs_cis", "llama4"):
        return "interleaved pairs (2i,2i+1) as complex numbers"
    if adapter == "gptj":
        return "interleaved pairs (2i,2i+1), rotate_every_two"
    src = ""
    for n in ["rotate_half", "apply_rotary_pos_emb", "_apply_rotary_emb"]:
        f = getattr(module, n, None)
        if f is not None:
            src += inspect.getsource(f)
    if re.search(r"x\[\.\.\., *0?::2\]", src) or "repeat_interleave" in src:
        return "interleaved pairs (2i,2i+1)"
    if re.search(r"cat\(\(x2, -x1\)", src):
        return "half-split, rotate_half = cat(x2, -x1): sign flipped (rotates by -angle)"
    return "half-split (rotate_half)"


def run_case(case, heads):
    """Fill case['layers'] (and tensors) by running the model's own code."""
    mt = case["model_type"]
    cfg = build_config(mt, case["config"])
    rule = RULES.get(case.get("rule", mt), {})
    try:
        model = meta_model(mt, cfg)
    except Exception as e:  # wrapper whose vision side cannot be built here: build the text model alone
        tcfg = cfg.get_text_config(decoder=True)
        if tcfg is cfg:
            raise
        model = meta_model(tcfg.model_type, tcfg)
        case.setdefault("notes_list", []).append(f"full model not buildable here ({type(e).__name__}); text model {type(model).__name__} built from text_config")
    tensors = {}
    positions = case.get("positions", POSITIONS)
    S = len(positions)
    pos = torch.tensor(positions, dtype=torch.long)[None]

    if rule.get("gptj"):
        rot_meta, rot_path = None, None
        layers = get_module(model, rule["layers_path"])
    else:
        rot_path, rot_meta = text_rotary(model, rule.get("rot_path"))
        if rot_meta is None:
            raise CaseError("no text rotary module")
        layers = decoder_layers(model, rot_path)
    tcfg = getattr(rot_meta, "config", None) if rot_meta is not None else None
    if tcfg is None:
        tcfg = cfg.get_text_config(decoder=True)
    # the rotary module, re-made on the CPU
    rot = None
    if rot_meta is not None:
        try:
            rot = type(rot_meta)(config=tcfg)
        except TypeError:
            rot = type(rot_meta)(tcfg)
    groups = {}
    for i, layer in enumerate(layers):
        attn = layer_attention(layer)
        lts = getattr(tcfg, "layer_types", None)
        lt = lts[i] if lts is not None and i < len(lts) else None
        if attn is None or NOT_ROPE_ATTN.search(type(attn).__name__):
            key = (False, lt, type(attn).__name__ if attn is not None else None)
        else:
            flag = ROPE_FLAG_BY_ATTN.get(type(attn).__name__, lambda a, c, j: True)(attn, tcfg, i)
            key = (bool(flag), lt, type(attn).__name__)
        groups.setdefault(key, (i, attn))
    out_layers = []
    hows = set()
    for (flag, lt, acls), (i, attn) in sorted(groups.items(), key=lambda kv: kv[1][0]):
        entry = {"layer": i, "layer_type": lt, "rope": flag, "attention": acls}
        if not flag:
            out_layers.append(entry)
            continue
        module = sys.modules[type(attn).__module__]
        adapter = rule.get("adapter") or ADAPTER_BY_ATTN.get(acls, "qk")
        D = head_dim_of(attn, tcfg, adapter)
        g = torch.Generator().manual_seed(zlib.crc32(f"{case['name']}/{i}".encode()))
        x = torch.randn(S, heads, D, generator=g).to(torch.bfloat16)
        q = x.float().permute(1, 0, 2)[None].contiguous()  # [1, H, S, D]
        ctx = {"module": module, "attn": attn, "cfg": tcfg}
        tf_note = None
        call_kw = {}
        posarg = pos
        if adapter == "gptj":
            rd = attn.rotary_dim
            ep = module.create_sinusoidal_positions(attn.max_positions, rd or attn.embed_dim)
            ep = ep.repeat(pos.shape[0], 1, 1)
            sincos = torch.gather(ep, 1, pos.unsqueeze(-1).repeat(1, 1, ep.shape[-1]))
            sin_, cos_ = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
            ctx["gptj_sin"], ctx["gptj_cos"] = sin_, cos_
            cos, sin = cos_, sin_
            tf_note = "half (create_sinusoidal_positions: sin | cos halves of one table, one column per pair)"
            rot_cls = "create_sinusoidal_positions (no rotary module)"
        else:
            rot_cls = type(rot).__name__
            posarg = pos
            src = inspect.getsource(type(rot))
            if "mrope" in src or "mrope_section" in json.dumps(getattr(tcfg, "rope_parameters", None) or {}, default=str):
                posarg = pos[None].expand(3, 1, S)
            if isinstance(getattr(rot, "rope_type", None), dict) and lt is not None:
                call_kw["layer_type"] = lt
            with torch.no_grad():
                out = rot(q, posarg, **call_kw)
            if torch.is_tensor(out) and out.is_complex():
                ctx["freqs_cis"] = out
                cos, sin = out.real.float(), out.imag.float()
                tf_note = "half (complex freqs_cis: real = cos, imag = sin, one column per pair)"
            else:
                cos, sin = out
                if isinstance(cos, (tuple, list)):
                    raise CaseError("unexpected rotary output")
        with torch.no_grad():
            y = ADAPTERS[adapter](ctx, q, cos, sin)
        y = y[0].permute(1, 0, 2).contiguous().float()
        prefix = f"{case['name']}.l{i}"
        c2 = cos.reshape(-1, cos.shape[-1])[-S:].float().contiguous()
        s2 = sin.reshape(-1, sin.shape[-1])[-S:].float().contiguous()
        tensors[f"{prefix}.x"] = x.contiguous()
        tensors[f"{prefix}.y"] = y
        tensors[f"{prefix}.cos"] = c2
        tensors[f"{prefix}.sin"] = s2
        entry.update({"prefix": prefix, "heads": heads, "head_dim": D, "table_form": table_form(c2, tf_note),
                      "table_width": int(c2.shape[-1])})
        if call_kw:
            entry["rotary_called_with_layer_type"] = True
        if posarg.dim() == 3:
            entry["position_ids_shape"] = list(posarg.shape)
        out_layers.append(entry)
        fname = os.path.basename(module.__file__)
        apply_name = {"freqs_cis": "apply_rotary_emb", "llama4": "apply_rotary_emb",
                      "mla_interleave": "apply_rotary_pos_emb_interleave"}.get(adapter, "apply_rotary_pos_emb")
        if adapter == "mla" and getattr(tcfg, "rope_interleave", False):
            apply_name = "apply_rotary_pos_emb_interleave (config.rope_interleave)"
        pair = pairing(module, "mla_interleave" if "interleave" in apply_name else adapter)
        hows.add(f"{rot_cls} + {apply_name} ({fname}; {acls}): {pair}"
                 + ("; attention splits q[..., :rotary_ndims] first" if adapter == "partial_attn" else ""))
        if adapter in ("mla_interleave",) or (adapter == "mla" and getattr(tcfg, "rope_interleave", False)):
            case["output_order"] = "half-split permuted"
        case["head_dim"] = D
        if adapter in MLA_ADAPTERS or acls in MLA_ATTN:
            case["x_is"] = "q_pe / q_rot (MLA rope part, qk_rope_head_dim dims)"
        else:
            case["x_is"] = "q head"
    case["layers"] = out_layers
    case["how"] = " | ".join(sorted(hows)) if hows else case.get("how", "")
    if rule.get("notes"):
        case.setdefault("notes_list", []).append(rule["notes"])
    return tensors


# --------------------------------------------------------------------------------------------
# per model type rules (everything not listed: found automatically)
# --------------------------------------------------------------------------------------------

GPTJ_POSITIONS = [0, 1, 2, 5, 63, 1000, 2000, 2047]
RULES = {
    "gptj": {"gptj": True, "layers_path": "h", "positions": GPTJ_POSITIONS,
             "notes": "sin/cos come from a fixed create_sinusoidal_positions(max_position_embeddings, rotary_dim) "
                      "buffer gathered by position: positions >= max_position_embeddings (2048) are out of range, "
                      "so this case stops at 2047"},
    "codegen": {"gptj": True, "layers_path": "h", "positions": GPTJ_POSITIONS,
                "notes": "same sincos path as GPT-J (create_sinusoidal_positions(n_positions, rotary_dim), "
                         "rotate_every_two); positions limited to < n_positions (2048). CodeGen's fused qkv_proj "
                         "is split in mp_num=4 chunks before heads are formed; the rotation itself is GPT-J's"},
    "moonshine": {"rot_path": "decoder.rotary_emb",
                  "notes": "encoder (audio) and decoder share MoonshineRotaryEmbedding; this is the decoder's"},
    "moonshine_streaming": {"rot_path": "decoder.rotary_emb"},
    "lfm2_moe": {"rot_path": "pos_emb", "notes": "the text model's rotary module is named pos_emb"},
    "dia": {"rot_path": "decoder.rotary_emb", "notes": "encoder also rotates (DiaRotaryEmbedding); decoder shown"},
    "csm": {"rot_path": "backbone_model.rotary_emb"},
    "blt": {"rot_path": "global_transformer.rotary_emb"},
}

# wrapper / multimodal configs whose text attention is rope (survey cannot build them here)
KNOWN_APPLIED = {
    "chameleon", "cohere_compass", "cohere_compass_text", "hunyuan_v1_dense", "hunyuan_v1_moe", "hunyuan_vl",
    "hunyuan_vl_text", "nemotron", "ministral", "qwen4_exp", "qwen4_exp_text", "lfm2_moe", "dbrx", "dots1",
    "diffusion_gemma", "emu3", "deepseek_ocr2", "t5gemma2_encoder", "voxtral_realtime_text", "moonshine_streaming",
    "gemma3n", "granite4_vision", "idefics3", "smolvlm", "aya_vision", "perception_lm", "fast_vlm",
    "gemma4_assistant", "gemma4_unified_assistant", "gptj", "codegen", "esm",
}


# --------------------------------------------------------------------------------------------
# classification and main
# --------------------------------------------------------------------------------------------


def classify(mt, s):
    """rope for the text attention of model type mt, from the survey record s and the sources."""
    files = modeling_files(mt)
    rec = {"model_type": mt, "config_class": CONFIG_MAPPING_NAMES[mt], "modeling": files[0] if files else None}
    if len(files) > 1:
        rec["modeling_all"] = files
    mk = markers(mt)
    rots = {p: c for p, c in (s.get("rotary_modules") or {}).items() if is_rotary_class(c)}
    if mt in VISION_ONLY or ("vision" in mt and not any("language_model" in p for p in rots)):
        rots = {"vision:" + p: c for p, c in rots.items()}
    text = {p: c for p, c in rots.items() if not NON_TEXT_PATH.search(p)}
    other = {p: c for p, c in rots.items() if NON_TEXT_PATH.search(p)}
    if mt in ("gptj", "codegen"):
        rec.update(rope="applied", how="rotate_every_two + apply_rotary_pos_emb on create_sinusoidal_positions "
                                        "sincos (interleaved pairs), first rotary_dim dims")
    elif text:
        rec.update(rope="applied", how="rotary: " + ", ".join(f"{c} at {p or '<root>'}" for p, c in sorted(text.items())))
        if other:
            rec["how"] += "; also non-text rotary: " + ", ".join(f"{c} at {p}" for p, c in sorted(other.items()))
    elif other:
        rec.update(rope="none", how="vision-only rotary (2-D / axial image rope; counts as none for text attention): "
                   + ", ".join(f"{c} at {p}" for p, c in sorted(other.items())))
    elif "error" in s and mt in KNOWN_APPLIED:
        rec.update(rope="applied", how="rotary text attention (default model not buildable here: "
                   + s["error"][:120] + ")")
    elif "error" in s and mk & {"RotaryEmbedding", "apply_rotary_pos_emb", "freqs_cis"}:
        rec.update(rope="unknown", how="modeling code has rotary markers but the default model could not be "
                   "built here: " + s["error"][:150])
    else:
        if not files:
            scheme = "no modeling file (composite / config-only type)"
        elif "alibi" in mk:
            scheme = "ALiBi"
        elif "relative_attention_bias" in mk:
            scheme = "relative position bias (T5-style buckets)"
        elif "position_embeddings" in mk:
            scheme = "learned absolute position embeddings"
        elif "sinusoidal" in mk:
            scheme = "sinusoidal absolute position embeddings"
        elif mk & {"RotaryEmbedding", "apply_rotary_pos_emb", "rotate_half"}:
            scheme = "rotary code present but no rotary module in the default model (vision/audio or unused path)"
        else:
            scheme = "no rotary position embedding in the modeling code"
        if "error" in s:
            scheme += f" (default model not buildable here: {s['error'][:100]})"
        rec.update(rope="none", how=scheme)
    return rec


def longrope(cfg):
    rp = getattr(cfg.get_text_config(decoder=True), "rope_parameters", None) or {}
    return rp.get("rope_type") == "longrope"


def make_cases(model_types):
    import importlib.util

    spec = importlib.util.spec_from_file_location("cards", os.path.join(HERE, "cards.py"))
    cards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cards)
    cases = []
    for rec in model_types:
        if rec["rope"] != "applied":
            continue
        mt = rec["model_type"]
        c = {"name": mt, "model_type": mt, "source": f"defaults of {rec['config_class']} (transformers {transformers.__version__})",
             "rope": "applied", "heads": HEADS_DEFAULTS}
        try:
            c["config"] = config_to_dict(build_config(mt))
        except Exception as e:
            c["config"] = None
            c["error"] = f"config class defaults do not build: {type(e).__name__}: {str(e)[:160]}"
        if mt in RULES and "positions" in RULES[mt]:
            c["positions"] = RULES[mt]["positions"]
        cases.append(c)
    for repo, d, extra in cards.CARDS:
        c = {"name": f"card:{repo}", "model_type": d["model_type"], "source": f"config.json of {repo} as published",
             "config": d, "rope": "applied", "heads": HEADS_CARDS}
        c.update({k: v for k, v in extra.items() if k != "notes"})
        if extra.get("notes"):
            c["notes_list"] = [extra["notes"]]
        if d["model_type"] in RULES and "positions" in RULES[d["model_type"]]:
            c["positions"] = RULES[d["model_type"]]["positions"]
        cases.append(c)
    for name, d, what in cards.WRITTEN:
        # the whole config, as save_pretrained writes it, where the class reads that back (DBRX's
        # does not: then the written keys alone)
        full = config_to_dict(build_config(d["model_type"], d))
        try:
            build_config(d["model_type"], full)
        except Exception:
            full = d
        c = {"name": f"written:{name}", "model_type": d["model_type"],
             "source": f"a config written for this check: {what}", "config": full, "rope": "applied",
             "heads": HEADS_CARDS}
        if d["model_type"] in RULES and "positions" in RULES[d["model_type"]]:
            c["positions"] = RULES[d["model_type"]]["positions"]
        cases.append(c)
    for repo, d, extra in cards.REMOTE:
        cases.append({"name": f"card:{repo}", "model_type": d["model_type"],
                      "source": f"config.json of {repo} as published", "config": d, "rope": "remote code",
                      "layers": [], **extra})
    for repo, d, how in cards.NO_ROPE:
        cases.append({"name": f"card:{repo}", "model_type": d["model_type"],
                      "source": f"config.json of {repo} as published", "config": d, "rope": "none", "how": how,
                      "layers": []})
    return cases


def limit_memory(gib=14):
    """A model whose build allocates real memory must fail as a case, not take the machine down."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reuse-survey", action="store_true", help="reuse tools/models/survey.json")
    ap.add_argument("--only", nargs="*", help="run only these case names (debugging; writes to /tmp)")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.reuse_survey and os.path.exists(SURVEY):
        survey = json.load(open(SURVEY))
    else:
        survey = run_survey()
    model_types = [classify(mt, survey.get(mt, {"error": "not surveyed"})) for mt in CONFIG_MAPPING_NAMES]
    cases = make_cases(model_types)
    limit_memory()
    # LongRoPE: a second case in the short_factor regime
    extra = []
    for c in cases:
        if c.get("config") and c["rope"] == "applied":
            try:
                if longrope(build_config(c["model_type"], c["config"])):
                    s = dict(c, name=c["name"] + ":short", positions=SHORT_POSITIONS)
                    extra.append(s)
            except Exception:
                pass
    cases += extra
    if args.only:
        cases = [c for c in cases if c["name"] in args.only]
    tensors = {}
    for c in cases:
        if c["rope"] != "applied" or "layers" in c:
            continue
        if c.get("config") is None:
            c["layers"] = []
            c.setdefault("notes_list", []).append("not run: " + c.pop("error", "no config"))
            continue
        try:
            tensors.update(run_case(c, c.pop("heads")))
        except Exception as e:  # record, never skip silently
            c["layers"] = []
            c.setdefault("notes_list", []).append(f"not run here: {type(e).__name__}: {str(e)[:200]}")
            print(f"[{c['name']}] FAILED {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
        else:
            print(f"[{c['name']}] {len(c['layers'])} layer kinds", file=sys.stderr)
    by_type = {}
    for c in cases:
        c.pop("heads", None)
        c.pop("rule", None)
        notes = c.pop("notes_list", [])
        if notes:
            c["notes"] = "; ".join(notes)
        if c["name"] == c["model_type"] and c["layers"] and c.get("how"):
            by_type[c["model_type"]] = c["how"]
    for rec in model_types:  # the rotation actually run is the better "how"
        if rec["model_type"] in by_type:
            rec["how"] = by_type[rec["model_type"]]
    order = ["name", "model_type", "source", "config", "rope", "how", "head_dim", "x_is", "positions",
             "output_order", "layers", "notes"]
    cases = [{k: c[k] for k in order if k in c} for c in cases]
    out = OUT if not args.only else "/tmp/models-only"
    os.makedirs(out, exist_ok=True)
    if not args.only:
        with open(os.path.join(out, "model_types.json"), "w") as f:
            json.dump(model_types, f, indent=1)
            f.write("\n")
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                   "positions": POSITIONS, "cases": cases}, f, indent=1)
        f.write("\n")
    save_file(tensors, os.path.join(out, "reference.safetensors"), metadata={"format": "pt"})
    print(f"{len(model_types)} model types, {sum(r['rope'] == 'applied' for r in model_types)} applied; "
          f"{len(cases)} cases, {sum(1 for c in cases if any(l.get('prefix') for l in c['layers']))} with tensors",
          file=sys.stderr)


if __name__ == "__main__":
    main()
