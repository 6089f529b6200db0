"""A checkpoint's own weight storage from its ``config.json`` ``quantization_config``.

A pre-quantized checkpoint is loaded in the format it was saved in (transformers' ``HfQuantizer`` for
``quant_method``), so that format, not the compute dtype, decides its weights unless the user overrides it with
``--dtype`` or ``--quant``. Each method maps onto a storage format of ``memory/weights.py``, read from how
transformers' quantizers create the modules they load into (transformers 5.24.0):

* ``fp8`` (``FineGrainedFP8Config``, DeepSeek-V3/R1, Qwen3-*-FP8): ``integrations/finegrained_fp8.py``
  ``replace_with_fp8_linear`` swaps every ``type(module) is nn.Linear`` and every ``*.experts`` module for
  ``FP8Linear`` / ``FP8Experts``: e4m3 weights (1 B) and one fp32 ``weight_scale_inv`` per
  ``weight_block_size`` block (``fp8-block``; 128 × 128 in every published checkpoint), or one per tensor
  without a block size (``fp8``). Routers (``*TopkRouter``, not ``nn.Linear``) stay in the compute dtype;
* ``compressed-tensors`` with 8-bit float weights: ``strategy`` ``tensor`` → ``fp8``, ``channel`` →
  ``fp8-channel``, ``block`` → ``fp8-block``; its ``pack-quantized`` integer schemes are ``ct-<bits>bit-g<group>``
  (``-asym`` with zero points; ``memory/weights.py``);
* ``gptq``: ``gptq-<bits>bit-g<group_size>`` (packed int32 ``qweight``, ``qzeros``, fp16 ``scales``,
  ``g_idx``); ``awq``: ``awq-<bits>bit-g<group_size>`` (or ``w_bit`` / ``q_group_size``);
* ``bitsandbytes``: ``load_in_4bit`` → ``nf4`` / ``fp4`` (``-dq`` with ``bnb_4bit_use_double_quant``), else
  ``int8``;
* ``mxfp4`` (gpt-oss): ``integrations/mxfp4.py`` ``replace_with_mxfp4_linear`` converts only the experts:
  ``*_blocks`` (two fp4 values per byte) and ``*_scales`` (one e8m0 byte per 32 values);
* ``modelopt`` (NVIDIA TensorRT Model Optimizer exports: ``nvidia/*-FP8``, ``nvidia/*-FP4`` / ``-NVFP4``):
  transformers 5.24 has no quantizer for it (``quantizers/auto.py`` warns "Unknown quantization type" and skips
  the config), so the layout is vLLM's (``model_executor/layers/quantization/modelopt.py`` at vllm-project/vllm
  c9a59901113c, ``ModelOptQuantConfigBase.from_config``): either ``config.json``'s flat form (``quant_algo``,
  ``ignore``, ``group_size``, ``kv_cache_quant_algo``, or as vLLM 0.33.0 reads it a ``kv_cache_scheme`` of 8-bit
  floats) or ``hf_quant_config.json``'s nested
  ``{"quantization": {"quant_algo", "exclude_modules", "group_size", "kv_cache_quant_algo"}}`` (read beside a
  local config.json: ``sources/local.py``). ``quant_algo`` ``NVFP4`` → ``nvfp4`` (group size 16, vLLM's
  default), ``FP8`` → ``modelopt-fp8``, ``FP8_PER_CHANNEL_PER_TOKEN`` → ``fp8-channel``, ``FP8_PB_WO`` →
  ``fp8-block`` (``memory/weights.py``); a whole-model ``W4A16_NVFP4`` or ``MXFP8`` is not modelled. Its
  exclude patterns are matched as vLLM does (``is_layer_excluded``): a pattern that occurs in the module name,
  or an ``fnmatch`` wildcard.

  ``quant_algo: MIXED_PRECISION`` (``nvidia/Qwen3.6-*-NVFP4``, ``NVIDIA-Nemotron-3.5-Lightning-*-NVFP4``) →
  ``modelopt-mixed``, read as vLLM 0.33.0's ``ModelOptMixedPrecisionConfig`` reads it
  (``model_executor/layers/quantization/modelopt.py``): ``quantized_layers`` (in ``quantization`` of the
  sidecar, else at the top of config.json's flat form; vLLM refuses an empty one) maps each checkpoint module
  to its own ``quant_algo``: ``FP8`` → ``modelopt-fp8``, ``NVFP4`` → ``nvfp4``, ``W4A16_NVFP4`` →
  ``nvfp4-a16`` (the same packing without the activation ``input_scale``), ``FP8_PER_CHANNEL_PER_TOKEN`` →
  ``fp8-channel``, ``FP8_PB_WO`` → ``fp8-block``; a mapping naming any other algorithm (``MXFP8``, the b12x
  block codecs) is not modelled. ``get_quant_method``: an excluded module, and a linear that the mapping does
  not name, stay in the compute dtype; a named ``lm_head`` is quantized. ``_resolve_quant_algo`` finds a
  module's entry by its own name, a fused projection's shards (``gate_up_proj`` → ``gate_proj`` /
  ``up_proj``, ``qkv_proj`` → ``q/k/v_proj``), or for routed experts any entry under ``<...>.experts.``
  (:func:`layer_format`); checkpoint names are matched after the renames vLLM's model classes apply
  (``nemotron_h.py`` ``hf_to_vllm_mapper``: ``backbone.`` → ``model.``).

``modules_to_not_convert`` (``llm_int8_skip_modules`` for bitsandbytes, ``ignore`` for compressed-tensors) stay
in the compute dtype; transformers also always keeps the output head (``quantizers/base.py``:
``get_keys_to_not_convert``). A pattern matches a module's full name from its start up to a module boundary
or as a suffix (``quantizers_utils.py: should_convert_module``); patterns are matched literally, never run as
regular expressions. HQQ, torchao and the other methods are not modelled: their checkpoints are counted in the
compute dtype and the estimate says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

#: the most skip patterns read, and their longest length
MAX_SKIP = 256
MAX_PATTERN = 200


@dataclass(frozen=True)
class CheckpointQuant:
    """How a pre-quantized checkpoint stores its weights."""

    method: str  # quantization_config.quant_method, as written
    format: str  # a memory/weights.py storage format; "" when the method is not modelled
    skip: tuple[str, ...] = ()  # modules kept in the compute dtype
    kv: str = ""  # the KV cache dtype the checkpoint asks for ("fp8": ModelOpt's kv_cache_quant_algo FP8)
    #: ModelOpt MIXED_PRECISION: (checkpoint module, memory/weights.py format) for each quantized_layers entry
    layers: tuple[tuple[str, str], ...] = ()


def _int(value: Any, allowed: tuple[int, ...], default: int) -> int:
    return value if type(value) is int and value in allowed else default


def _group(value: Any) -> int:
    return value if type(value) is int and value in (-1, 32, 64, 128, 256, 512, 1024) else 128


#: ModelOpt exports list every excluded module (nvidia/DeepSeek-R1-FP4: about 500): a longer bound for them
MAX_MODELOPT_SKIP = 10_000
#: ModelOpt exclude patterns are marked with this prefix: :func:`skipped` matches them as vLLM does
GLOB = "modelopt:"
#: vLLM c9a59901113c ``modelopt.py`` ``QUANT_ALGOS`` → storage formats of ``memory/weights.py``
MODELOPT_ALGOS = {"NVFP4": "nvfp4", "FP8": "modelopt-fp8", "FP8_PER_CHANNEL_PER_TOKEN": "fp8-channel",
                  "FP8_PB_WO": "fp8-block"}
#: vLLM 0.33.0 ``modelopt.py`` ``LINEAR_ALGOS`` a MIXED_PRECISION layer may name → storage formats (MXFP8 absent:
#: not modelled)
MIXED_ALGOS = {**MODELOPT_ALGOS, "W4A16_NVFP4": "nvfp4-a16"}
#: the most quantized_layers entries read (Nemotron-3.5-Lightning lists about 6,000: one per expert projection)
MAX_MODELOPT_LAYERS = 100_000


def _bad(origin: str, key: str, value: Any, allowed: str) -> Exception:
    from ..errors import VramscopeError
    from ..units import shown

    return VramscopeError("config_bad_value", origin=origin, key=key, value=shown(value), allowed=allowed)


def _mixed_layers(src: dict[str, Any], origin: str, prefix: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``modelopt-mixed`` and its (module, format) pairs, or ``""`` when a layer names an algorithm that is not
    modelled; a missing, empty or malformed ``quantized_layers`` is refused (vLLM 0.33.0 ``_from_config``)."""
    layers = src.get("quantized_layers")
    ok = isinstance(layers, dict) and 0 < len(layers) <= MAX_MODELOPT_LAYERS and all(
        isinstance(k, str) and 0 < len(k) <= MAX_PATTERN and isinstance(v, dict) and isinstance(v.get("quant_algo"), str)
        for k, v in layers.items())
    if not ok:
        raise _bad(origin, prefix + "quantized_layers", layers,
                   f"a non-empty object of at most {MAX_MODELOPT_LAYERS} module names, each "
                   '{"quant_algo": "FP8" / "NVFP4" / "W4A16_NVFP4", ...}')
    out: list[tuple[str, str]] = []
    for module, recipe in layers.items():
        fmt = MIXED_ALGOS.get(recipe["quant_algo"].strip().upper(), "")
        group = recipe.get("group_size")
        if fmt.startswith("nvfp4") and group not in (None, 16):
            fmt = ""  # NVFP4 is defined with 16-value blocks
        if not fmt:
            return "", ()
        out.append((module, fmt))
    return "modelopt-mixed", tuple(out)


def _modelopt(q: dict[str, Any], origin: str) -> tuple[str, tuple[str, ...], str, tuple[tuple[str, str], ...]]:
    """The storage format and exclude patterns of a ModelOpt ``quantization_config`` (flat config.json form, or
    the nested ``quantization`` object of ``hf_quant_config.json``); bad values are refused as vLLM refuses
    them (``ModelOptQuantConfigBase.from_config``)."""
    inner = q.get("quantization")
    nested = "quantization" in q
    if nested and not isinstance(inner, dict):
        raise _bad(origin, "quantization_config.quantization", inner, "an object")
    src, prefix = (inner, "quantization_config.quantization.") if nested else (q, "quantization_config.")
    excl_key = "exclude_modules" if nested else "ignore"
    algo = src.get("quant_algo")
    if not isinstance(algo, str) or not algo.strip():
        raise _bad(origin, prefix + "quant_algo", algo, "a string such as " + " / ".join(MODELOPT_ALGOS))
    excl = src.get(excl_key, [])  # vLLM reads only this key of each form
    if not isinstance(excl, list) or len(excl) > MAX_MODELOPT_SKIP \
            or any(not isinstance(p, str) or not 0 < len(p) <= MAX_PATTERN for p in excl):
        raise _bad(origin, prefix + excl_key, excl, f"a list of at most {MAX_MODELOPT_SKIP} module patterns "
                                                   f"(strings of 1 to {MAX_PATTERN} characters)")
    group = src.get("group_size")
    if group is not None and (type(group) is not int or group < 1):
        raise _bad(origin, prefix + "group_size", group, "a positive integer (16 for NVFP4)")
    kv = src.get("kv_cache_quant_algo")
    if kv is not None and not isinstance(kv, str):
        raise _bad(origin, prefix + "kv_cache_quant_algo", kv, "a string (FP8) or null")
    scheme = src.get("kv_cache_scheme")
    if not nested and kv is None and isinstance(scheme, dict) and scheme.get("type") == "float" \
            and scheme.get("num_bits") == 8:
        kv = "FP8"  # vLLM 0.33.0 ModelOptQuantConfigBase.from_config: the flat form's kv_cache_scheme
    layers: tuple[tuple[str, str], ...] = ()
    if algo.strip().upper() == "MIXED_PRECISION":
        fmt, layers = _mixed_layers(src, origin, prefix)
    else:
        fmt = MODELOPT_ALGOS.get(algo.strip().upper(), "")
    if fmt == "nvfp4" and group not in (None, 16):
        fmt = ""  # NVFP4 is defined with 16-value blocks; another group size is not a layout vLLM ships
    # vLLM (vllm/utils/torch_utils.py get_kv_cache_quant_algo_string, read at 0024350b5da3): "fp8" → fp8_e4m3
    return (fmt, tuple(dict.fromkeys(GLOB + p for p in excl)), "fp8" if (kv or "").strip().lower() == "fp8" else "",
            layers)


def _skip(q: dict[str, Any], *keys: str) -> tuple[str, ...]:
    out: list[str] = []
    for k in keys:
        v = q.get(k)
        if isinstance(v, list):
            out += [p for p in v if isinstance(p, str) and 0 < len(p) <= MAX_PATTERN]
    return tuple(dict.fromkeys(out))[:MAX_SKIP]


def _packed(method: str, bits: int, group: int) -> str:
    if method == "awq" and bits != 4:
        return ""
    return f"{method}-{bits}bit" + ("" if group == 128 else f"-g{group}")


def _compressed_tensors(q: dict[str, Any]) -> str:
    groups = q.get("config_groups")
    if not isinstance(groups, dict):
        return ""
    for g in groups.values():
        w = g.get("weights") if isinstance(g, dict) else None
        if not isinstance(w, dict):
            continue
        bits, kind, strategy = w.get("num_bits"), w.get("type"), w.get("strategy")
        if not isinstance(strategy, str) or type(bits) is not int:
            return ""
        if bits == 8 and kind == "float":
            return {"tensor": "fp8", "channel": "fp8-channel", "block": "fp8-block"}.get(strategy, "")
        if kind == "int" and bits in (4, 8) and strategy in ("group", "channel"):
            group = _group(w.get("group_size")) if strategy == "group" else -1
            fmt = q.get("format")
            if isinstance(fmt, str) and fmt not in ("pack-quantized", "mixed-precision"):
                return ""  # int-quantized / naive / marlin-24 layouts are not modelled
            return f"ct-{bits}bit" + ("" if group == 128 else f"-g{group}") \
                + ("-asym" if w.get("symmetric") is False else "")
        return ""
    return ""


def checkpoint_quant(q: Optional[dict[str, Any]], origin: str = "config.json") -> Optional[CheckpointQuant]:
    """The storage a ``quantization_config`` object describes (None when there is none); ``origin`` names the
    file in a refusal."""
    if not isinstance(q, dict) or not q:
        return None
    method = q.get("quant_method")
    method = method.strip().lower() if isinstance(method, str) else ""
    fmt, kv = "", ""
    layers: tuple[tuple[str, str], ...] = ()
    skip = _skip(q, "modules_to_not_convert")
    if method == "fp8":
        # FineGrainedFP8Config: weight_block_size defaults to (128, 128); an explicit null is one scale per tensor
        # ("ignored_layers" is read as modules_to_not_convert when that is absent)
        block = q.get("weight_block_size", [128, 128])
        if block is None:
            fmt = "fp8"
        elif isinstance(block, list) and block == [128, 128]:
            fmt = "fp8-block"
        skip = skip or _skip(q, "ignored_layers")
    elif method == "compressed-tensors":
        fmt = _compressed_tensors(q)
        skip = _skip(q, "ignore")
    elif method in ("gptq", "awq"):
        bits = _int(q.get("bits", q.get("w_bit")), (2, 3, 4, 8), 4)
        fmt = _packed(method, bits, _group(q.get("group_size", q.get("q_group_size"))))
    elif method == "bitsandbytes":
        if q.get("load_in_4bit") is True or q.get("_load_in_4bit") is True:
            kind = q.get("bnb_4bit_quant_type")
            fmt = (kind if kind in ("nf4", "fp4") else "nf4") + ("-dq" if q.get("bnb_4bit_use_double_quant") is True
                                                                  else "")
        elif q.get("load_in_8bit") is True or q.get("_load_in_8bit") is True:
            fmt = "int8"
        skip = _skip(q, "llm_int8_skip_modules")
    elif method == "mxfp4":
        fmt = "mxfp4"
    elif method in ("modelopt", "modelopt_fp4"):  # vLLM's two names for it
        fmt, skip, kv, layers = _modelopt(q, origin)
    return CheckpointQuant(method or "?", fmt, skip, kv, layers)


@lru_cache(maxsize=64)
def _split(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``patterns`` as (ModelOpt literals, ModelOpt wildcards, the other methods' literal patterns)."""
    mo = [p[len(GLOB):] for p in patterns if p.startswith(GLOB)]
    wild = tuple(p for p in mo if "*" in p or "?" in p or "[" in p)
    return tuple(p for p in mo if p not in wild), wild, tuple(p for p in patterns if not p.startswith(GLOB))


def skipped(module: str, patterns: tuple[str, ...]) -> bool:
    """Whether the module ``module`` (its full name) matches one of ``patterns`` (module docstring)."""
    literal, wild, plain = _split(patterns)
    # vLLM's ModelOpt rule: a pattern that occurs in the name (matched as text), or an fnmatch wildcard
    if any(p in module for p in literal):
        return True
    if wild:
        from fnmatch import fnmatchcase

        if any(p in module or fnmatchcase(module, p) for p in wild):
            return True
    for p in plain:
        if module == p or module.endswith(p) or (module.startswith(p) and (p.endswith(".")
                                                                          or module[len(p)] == ".")):
            return True
    return False


#: vLLM 0.33.0 ``_resolve_quant_algo`` step 4: fused projections whose checkpoint lists the shards
_FUSED_SHARDS = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
#: checkpoint → transformers module renames vLLM's model classes apply to quantized_layers and exclude_modules
#: (``apply_vllm_mapper``; vLLM 0.33.0 ``models/nemotron_h.py``: ``backbone`` → ``model``)
_RENAMES = (("backbone.", "model."),)


@lru_cache(maxsize=16)
def _layer_index(layers: tuple[tuple[str, str], ...]) -> tuple[dict[str, str], dict[str, str]]:
    """(exact module → format, dotted ancestor → the format of its first entry) of a MIXED_PRECISION mapping,
    with the checkpoint names renamed as vLLM renames them."""
    exact: dict[str, str] = {}
    under: dict[str, str] = {}
    for module, fmt in layers:
        for old, new in _RENAMES:
            if module.startswith(old):
                module = new + module[len(old):]
        exact.setdefault(module, fmt)
        parts = module.split(".")
        for i in range(1, len(parts)):
            under.setdefault(".".join(parts[:i]), fmt)
    return exact, under


def _unrenamed(module: str) -> tuple[str, ...]:
    return (module,) + tuple(old + module[len(new):] for old, new in _RENAMES if module.startswith(new))


def layer_format(module: str, layers: tuple[tuple[str, str], ...], skip: tuple[str, ...] = (),
                 expert: bool = False) -> str:
    """The storage format of ``module`` (a transformers module name; ``expert``: the routed experts' fused
    ``<...>.experts.<proj>``) in a MIXED_PRECISION checkpoint, ``""`` for the compute dtype (module docstring,
    vLLM 0.33.0 ``get_quant_method`` / ``_resolve_quant_algo``)."""
    if skip and any(skipped(m, skip) for m in _unrenamed(module)):
        return ""
    exact, under = _layer_index(layers)
    if expert and ".experts." in module:
        base, proj = module[:module.index(".experts.") + len(".experts")], module.rsplit(".", 1)[-1]
        if base in exact:  # one entry for the fused experts (Qwen3.6-35B-A3B: "<...>.mlp.experts")
            return exact[base]
        for p in _FUSED_SHARDS.get(proj, (proj,)):  # per-expert entries ("<...>.experts.0.up_proj")
            hit = next((f for m, f in exact.items() if m.startswith(base + ".") and m.endswith("." + p)), "")
            if hit:
                return hit
        return under.get(base, "")
    if module in exact:
        return exact[module]
    parent, _, proj = module.rpartition(".")
    shards = {exact[parent + "." + s] for s in _FUSED_SHARDS.get(proj, ()) if parent + "." + s in exact}
    if len(shards) == 1:
        return shards.pop()
    return under.get(module, "")  # a parent module whose children are listed (vLLM step 3)
