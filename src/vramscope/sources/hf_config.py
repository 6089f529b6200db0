"""Hugging Face ``config.json`` → :class:`ModelSpec`.

One reader for every place a config comes from (the built-in catalog, a local file, the Hub), so a model read
from the catalog and the same model read from its config.json are the same spec. Each family's defaults are the
defaults of its transformers configuration class (``transformers/models/<family>/configuration_<family>.py``);
families that ship as remote code (InternLM2, Baichuan, ChatGLM) are read from their published config keys and
mapped onto the native layout with the same tensors (their code is never executed).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

from ..errors import Phrase, VramscopeError
from ..model.families import by_model_type, slides
from ..model.limits import LIMITS, shown
from ..model.spec import FULL, SLIDING, MLASpec, ModelSpec, MoESpec, VisionSpec, check_int

Config = dict[str, Any]
Keys = Union[str, tuple[str, ...]]

#: a required key: no default
REQUIRED: Any = ...

#: ``sliding_window`` at or above this means "no window" (configs write 2^32 - 1 or 10^9 for none)
NO_WINDOW = 10**9

#: the longest string read from a config (dtype, activation, architecture and quantization names)
MAX_STR = 200

LAYER_TYPES = (FULL, SLIDING, "chunked_attention")


# ---- the typed accessors: every read of a config value goes through one of these ---------------------------
#
# Each takes the config dict, the key (or alternative keys, the first one present wins), where the config came
# from (for the message) and what is allowed; a wrong JSON type or a value out of range raises one keyed
# VramscopeError naming the key and the allowed values, quoting at most 40 characters of what was there.

def _find(cfg: Config, keys: Keys) -> tuple[str, Any]:
    """``(key, value)`` of the first key with a non-null value, else ``(first key, None)``."""
    if isinstance(keys, str):
        keys = (keys,)
    for k in keys:
        v = cfg.get(k)
        if v is not None:
            return k, v
    return keys[0], None


def _missing(keys: Keys, origin: str) -> VramscopeError:
    return VramscopeError("config_missing", key=keys if isinstance(keys, str) else " / ".join(keys), origin=origin)


def _default(keys: Keys, origin: str, default: Any) -> Any:
    """What a null or absent key gives: ``default``, or an error naming the key when it is required."""
    if default is REQUIRED:
        raise _missing(keys, origin)
    return default


def get_int(cfg: Config, keys: Keys, limit: str, *, origin: str, default: Any = REQUIRED,
            minimum: Optional[int] = None, prefix: str = "") -> Any:
    """A whole number inside ``LIMITS[limit]`` (``minimum`` lowers or raises its lower end); ``32.0`` counts
    as 32, but not ``32.5``, ``true`` or ``"32"``. Null or absent: ``default``, or an error when required."""
    key, value = _find(cfg, keys)
    if value is None:
        return _default(keys, origin, default)
    given = value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return check_int(f"{origin} ", prefix + key, value, limit, minimum, given)


def get_float(cfg: Config, keys: Keys, lo: float, hi: float, *, origin: str, default: Any = REQUIRED,
              prefix: str = "") -> Any:
    """A finite number from ``lo`` to ``hi`` (or ``default`` when null or absent)."""
    key, value = _find(cfg, keys)
    if value is None:
        return _default(keys, origin, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VramscopeError("shape_not_number", where=f"{origin} ", field=prefix + key, value=shown(value),
                             minimum=f"{lo:g}", maximum=f"{hi:g}")
    if value < lo:
        raise VramscopeError("shape_too_small", where=f"{origin} ", field=prefix + key, value=shown(value),
                             minimum=f"{lo:g}", maximum=f"{hi:g}")
    if value > hi:
        raise VramscopeError("shape_too_large", where=f"{origin} ", field=prefix + key, value=shown(value),
                             minimum=f"{lo:g}", maximum=f"{hi:g}", real=f"{hi:g}")
    return float(value)


def get_bool(cfg: Config, key: str, default: bool, *, origin: str, prefix: str = "") -> bool:
    """JSON ``true`` or ``false`` (``default`` when null or absent); ``"false"``, 0 or 1 are refused."""
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise VramscopeError("shape_not_bool", where=f"{origin} ", field=prefix + key, value=shown(value))
    return value


def get_str(cfg: Config, keys: Keys, *, origin: str, default: Any = "", max_len: int = MAX_STR,
            prefix: str = "") -> Any:
    """A string of at most ``max_len`` characters (``default`` when null or absent)."""
    key, value = _find(cfg, keys)
    if value is None:
        return _default(keys, origin, default)
    if not isinstance(value, str) or len(value) > max_len:
        raise VramscopeError("shape_not_str", where=f"{origin} ", field=prefix + key, value=shown(value),
                             maximum=max_len)
    return value


def get_str_list(cfg: Config, key: str, *, origin: str, max_items: int = 1024, max_len: int = MAX_STR,
                 prefix: str = "") -> Optional[list[str]]:
    """A list of strings (None when null or absent)."""
    value = cfg.get(key)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) > max_items
            or any(not isinstance(v, str) or len(v) > max_len for v in value)):
        raise VramscopeError("shape_not_str_list", where=f"{origin} ", field=prefix + key, value=shown(value))
    return value


def get_dict(cfg: Config, key: str, *, origin: str, prefix: str = "") -> Optional[Config]:
    """A JSON object (None when null or absent)."""
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise VramscopeError("shape_not_object", where=f"{origin} ", field=prefix + key, value=shown(value))
    return value


def get_layer_list(cfg: Config, key: str, *, origin: str, prefix: str = "") -> list[int]:
    """A list of layer numbers, each from 0 to the layer limit (empty when null or absent)."""
    value = cfg.get(key)
    if value is None:
        return []
    top = LIMITS["num_layers"].maximum - 1
    if (not isinstance(value, list) or len(value) > top + 1
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= top for i in value)):
        raise VramscopeError("shape_not_layers", where=f"{origin} ", field=prefix + key, value=shown(value),
                             maximum=top)
    return value


class _Reader:
    """A config and where it came from, with the typed accessors above bound to them."""

    def __init__(self, cfg: Config, origin: str, prefix: str = "") -> None:
        self.cfg = cfg
        self.origin = origin
        self.prefix = prefix  # "text_config." for keys read from a nested config, as messages name them

    def present(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def int(self, *keys: str, limit: str, default: Any = REQUIRED, minimum: Optional[int] = None) -> Any:
        return get_int(self.cfg, keys, limit, origin=self.origin, default=default, minimum=minimum,
                       prefix=self.prefix)

    def float(self, key: str, lo: float, hi: float, default: Any = REQUIRED) -> Any:
        return get_float(self.cfg, key, lo, hi, origin=self.origin, default=default, prefix=self.prefix)

    def bool(self, key: str, default: bool) -> bool:
        return get_bool(self.cfg, key, default, origin=self.origin, prefix=self.prefix)

    def str(self, *keys: str, default: Any = "") -> Any:
        return get_str(self.cfg, keys, origin=self.origin, default=default, prefix=self.prefix)

    def str_list(self, key: str) -> Optional[list[str]]:
        return get_str_list(self.cfg, key, origin=self.origin, prefix=self.prefix)

    def dict(self, key: str) -> Optional[Config]:
        return get_dict(self.cfg, key, origin=self.origin, prefix=self.prefix)

    def layer_list(self, key: str) -> list[int]:
        return get_layer_list(self.cfg, key, origin=self.origin, prefix=self.prefix)

    def window(self) -> Optional[int]:
        """``sliding_window``: None when absent, null or at least :data:`NO_WINDOW`; else 1 to 10^9 - 1."""
        _, value = _find(self.cfg, "sliding_window")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= NO_WINDOW:
            return None
        return self.int("sliding_window", limit="sliding_window", default=None)

    def nested(self, key: str, defaults: Config, extra: Config) -> "_Reader":
        """A reader for the nested config ``key`` (an object, or absent: then ``defaults`` alone)."""
        sub = self.dict(key) or {}
        return _Reader({**defaults, **sub, **extra}, self.origin, f"{self.prefix}{key}.")


def _common(r: _Reader, name: str, model_type: str, **kw: Any) -> dict[str, Any]:
    hidden = r.int("hidden_size", "n_embd", "d_model", limit="hidden_size")
    heads = r.int("num_attention_heads", "n_head", "num_heads", limit="num_heads")
    kv_heads = r.int("num_key_value_heads", "num_kv_heads", "multi_query_group_num", limit="num_kv_heads",
                     default=heads)
    head_dim = r.int("head_dim", "kv_channels", limit="head_dim", default=0, minimum=0)  # 0: hidden / heads
    if not head_dim:
        head_dim = _derived_head_dim(r, hidden, heads)
    if heads % kv_heads:
        key, _ = _find(r.cfg, ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"))
        raise VramscopeError("shape_kv_heads", where=f"{r.origin} ", field=r.prefix + key, kv=kv_heads, heads=heads)
    arch = (r.str_list("architectures") or [""])[0]
    quant = r.dict("quantization_config") or {}
    rope = r.dict("rope_scaling")
    if rope is not None:  # not used for memory, but transformers refuses a malformed one: so do we
        rr = _Reader(rope, r.origin, f"{r.prefix}rope_scaling.")
        rr.str("rope_type", "type")
        rr.float("factor", 0.001, 1e6, default=None)
    d = dict(
        name=name, model_type=model_type, architecture=arch, source=r.origin,
        num_layers=r.int("num_hidden_layers", "n_layer", "num_layers", limit="num_layers"),
        hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim,
        intermediate_size=r.int("intermediate_size", "ffn_hidden_size", "n_inner", "d_ff", limit="intermediate_size",
                                default=4 * hidden),
        vocab_size=r.int("vocab_size", "padded_vocab_size", limit="vocab_size"),
        max_position_embeddings=r.int("max_position_embeddings", "n_positions", "seq_length", "model_max_length",
                                      limit="max_position_embeddings", default=0),
        dtype=r.str("torch_dtype", "dtype"),
        quant_method=get_str(quant, "quant_method", origin=r.origin, prefix=f"{r.prefix}quantization_config."),
        **_checkpoint_storage(quant, r.origin),
        activation=r.str("hidden_act", "hidden_activation", "activation_function", default="silu"),
    )
    d.update(kw)
    return d


def _checkpoint_storage(quant: Config, origin: str = "config.json") -> dict[str, Any]:
    """``quant_format`` / ``quant_skip``: how a pre-quantized checkpoint stores its weights
    (``sources/quant_config.py``)."""
    from .quant_config import checkpoint_quant

    cq = checkpoint_quant(quant, origin)
    return {} if cq is None else {"quant_format": cq.format, "quant_skip": cq.skip, "kv_quant": cq.kv,
                                "quant_layers": cq.layers}


def _derived_head_dim(r: _Reader, hidden: int, heads: int) -> int:
    """``hidden // heads``, refused when it is 0 (fewer hidden units than heads)."""
    if hidden // heads < 1:
        key, _ = _find(r.cfg, ("num_attention_heads", "n_head", "num_heads"))
        raise VramscopeError("shape_head_dim_zero", where=f"{r.origin} ", field=r.prefix + key, hidden=hidden,
                             heads=heads)
    return hidden // heads


def _layer_types(r: _Reader, n_layers: int, sliding: int | None, pattern: Callable[[int], bool] | None) -> tuple:
    given = r.cfg.get("layer_types")
    if given is not None and given != []:
        if (not isinstance(given, list) or len(given) < n_layers
                or any(not isinstance(t, str) or t not in LAYER_TYPES for t in given[:n_layers])):
            raise VramscopeError("shape_layer_types", where=f"{r.origin} ", field=r.prefix + "layer_types",
                                 value=shown(given), layers=n_layers, allowed=" / ".join(LAYER_TYPES))
        return tuple(SLIDING if t != FULL else FULL for t in given[:n_layers])
    if sliding and pattern is not None:
        return tuple(SLIDING if pattern(i) else FULL for i in range(n_layers))
    return ()


def _llama_like(r: _Reader, name: str, model_type: str, *, tie: bool = False, qkv_bias: Any = None,
                o_bias: Any = None, norms: int = 2, qk_norm: bool = False, sliding: Any = "config",
                pattern: Callable[[int], bool] | None = None, **kw: Any) -> ModelSpec:
    attention_bias = r.bool("attention_bias", False)
    d = _common(r, name, model_type)
    window = r.window() if sliding == "config" else sliding
    fam = by_model_type(model_type)
    if fam.sliding_gate and not r.bool(fam.sliding_gate, False):
        window = None
    if pattern is None and window and fam.sliding_from:
        mwl = r.int(fam.sliding_from, limit="num_layers", default=0, minimum=0)
        pattern = lambda i: i >= mwl  # noqa: E731
    types = _layer_types(r, d["num_layers"], window, pattern)
    d.update(
        tie_embeddings=r.bool("tie_word_embeddings", tie),
        qkv_bias=attention_bias if qkv_bias is None else qkv_bias,
        o_bias=attention_bias if o_bias is None else o_bias,
        mlp_bias=r.bool("mlp_bias", False),
        norms_per_layer=norms, qk_norm=qk_norm,
        sliding_window=window if (window and (types and SLIDING in types or not types)) else None,
        layer_types=types,
    )
    d.update(kw)
    return ModelSpec(**d)


def _moe_dense_layers(r: _Reader, n_layers: int) -> tuple[int, ...]:
    only = set(r.layer_list("mlp_only_layers"))
    step = r.int("decoder_sparse_step", limit="num_layers", default=1)
    return tuple(i for i in range(n_layers) if i in only or (i + 1) % step != 0)


def _top_k(r: _Reader, experts: int) -> int:
    """``num_experts_per_tok``: 1 to the number of experts."""
    k = r.int("num_experts_per_tok", limit="experts_per_token")
    if k > experts:
        raise VramscopeError("shape_top_k", where=f"{r.origin} ", field=r.prefix + "num_experts_per_tok", k=k,
                             n=experts)
    return k


def _mixtral(r: _Reader, name: str, mt: str) -> ModelSpec:
    experts = r.int("num_local_experts", limit="num_experts")
    moe = MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts),
                  expert_intermediate_size=r.int("intermediate_size", limit="expert_intermediate_size"))
    return _llama_like(r, name, mt, moe=moe)


def _qwen_moe(r: _Reader, name: str, mt: str) -> ModelSpec:
    n = r.int("num_hidden_layers", limit="num_layers")
    shared = r.int("shared_expert_intermediate_size", limit="shared_intermediate_size", default=0) \
        if mt == "qwen2_moe" else 0
    experts = r.int("num_experts", limit="num_experts")
    moe = MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts),
                  expert_intermediate_size=r.int("moe_intermediate_size", limit="expert_intermediate_size"),
                  shared_intermediate_size=shared, shared_expert_gate=bool(shared),
                  dense_layers=_moe_dense_layers(r, n))
    if mt == "qwen2_moe":
        return _llama_like(r, name, mt, qkv_bias=r.bool("qkv_bias", True), o_bias=False, moe=moe)
    return _llama_like(r, name, mt, qk_norm=True, moe=moe)


def _deepseek(r: _Reader, name: str, mt: str) -> ModelSpec:
    n = r.int("num_hidden_layers", limit="num_layers")
    # an absent q_lora_rank is the configuration class's default (DeepseekV2Config / DeepseekV3Config: 1536);
    # only an explicit null means "no query compression" (DeepSeek-V2-Lite)
    q_rank = r.int("q_lora_rank", limit="q_lora_rank", default=None) if "q_lora_rank" in r.cfg else 1536
    mla = MLASpec(q_lora_rank=q_rank,
                  kv_lora_rank=r.int("kv_lora_rank", limit="kv_lora_rank"),
                  qk_nope_head_dim=r.int("qk_nope_head_dim", limit="qk_nope_head_dim"),
                  qk_rope_head_dim=r.int("qk_rope_head_dim", limit="qk_rope_head_dim"),
                  v_head_dim=r.int("v_head_dim", limit="v_head_dim"))
    moe = None
    experts = r.int("n_routed_experts", limit="num_experts", default=0, minimum=0)
    if experts:
        first_dense = r.int("first_k_dense_replace", limit="num_layers", default=0, minimum=0)
        moe_i = r.int("moe_intermediate_size", limit="expert_intermediate_size")
        moe = MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts),
                      expert_intermediate_size=moe_i,
                      shared_intermediate_size=moe_i * r.int("n_shared_experts", limit="num_experts", default=0,
                                                             minimum=0),
                      dense_layers=tuple(range(min(first_dense, n))))
    spec = _llama_like(r, name, mt, mla=mla, moe=moe, head_dim=mla.qk_head_dim)
    notes = ()
    if r.int("num_nextn_predict_layers", limit="num_layers", default=0, minimum=0):
        notes = (Phrase("n_mtp"),)
    return spec.with_overrides(notes=notes)


#: Class defaults for keys that published configs leave out (Gemma 3 relies on them):
#: transformers ``Gemma3TextConfig`` and ``SiglipVisionConfig``.
_DEFAULTS: dict[str, Config] = {
    "gemma3_text": {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                    "max_position_embeddings": 131072, "sliding_window": 4096,
                    "hidden_activation": "gelu_pytorch_tanh"},
    # the configuration classes' defaults (transformers configuration_<family>.py) of the families read below
    "gpt_neox": {"vocab_size": 50432, "hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64,
                 "intermediate_size": 24576, "max_position_embeddings": 2048},
    "bloom": {"vocab_size": 250880, "hidden_size": 64, "n_layer": 2, "n_head": 8},
    "opt": {"vocab_size": 50272, "hidden_size": 768, "num_hidden_layers": 12, "ffn_dim": 3072,
            "num_attention_heads": 12, "max_position_embeddings": 2048},
    "gptj": {"vocab_size": 50400, "n_positions": 2048, "n_embd": 4096, "n_layer": 28, "n_head": 16},
    "gpt_bigcode": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
    "starcoder2": {"vocab_size": 49152, "hidden_size": 3072, "intermediate_size": 12288, "num_hidden_layers": 30,
                   "num_attention_heads": 24, "num_key_value_heads": 2, "max_position_embeddings": 4096},
    "olmo": {"vocab_size": 50304, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "max_position_embeddings": 2048},
    "olmo2": {"vocab_size": 50304, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
              "num_attention_heads": 32, "max_position_embeddings": 2048},
    "olmoe": {"vocab_size": 50304, "hidden_size": 2048, "intermediate_size": 2048, "num_hidden_layers": 16,
              "num_attention_heads": 16, "max_position_embeddings": 4096},
    "cohere": {"vocab_size": 256000, "hidden_size": 8192, "intermediate_size": 22528, "num_hidden_layers": 40,
               "num_attention_heads": 64, "max_position_embeddings": 8192},
    "cohere2": {"vocab_size": 256000, "hidden_size": 8192, "intermediate_size": 22528, "num_hidden_layers": 40,
                "num_attention_heads": 64, "max_position_embeddings": 8192, "sliding_window": 4096},
    "stablelm": {"vocab_size": 50304, "hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "max_position_embeddings": 4096},
    "granite": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                "num_attention_heads": 32, "max_position_embeddings": 2048},
    "granitemoe": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "max_position_embeddings": 2048, "num_local_experts": 8,
                   "num_experts_per_tok": 2},
    "gpt_oss": {"vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880, "num_hidden_layers": 36,
                "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "num_local_experts": 128,
                "num_experts_per_tok": 4, "sliding_window": 128, "max_position_embeddings": 131072},
    "smollm3": {"vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                "num_attention_heads": 16, "num_key_value_heads": 4, "max_position_embeddings": 32768},
    "llama4_text": {"vocab_size": 202048, "hidden_size": 5120, "intermediate_size": 8192,
                    "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
                    "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
                    "num_experts_per_tok": 1, "num_local_experts": 16},
    "llama4_vision_model": {"hidden_size": 768, "num_hidden_layers": 34, "num_attention_heads": 16,
                            "num_channels": 3, "intermediate_size": 5632, "vision_output_dim": 7680,
                            "image_size": 448, "patch_size": 14, "projector_input_dim": 4096,
                            "projector_output_dim": 4096},
    "phimoe": {"vocab_size": 32064, "hidden_size": 4096, "intermediate_size": 6400, "num_hidden_layers": 32,
               "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
               "num_local_experts": 16, "num_experts_per_tok": 2},
    "siglip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                            "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 16},
    # the vision-language models' configuration classes (transformers 5.24 configuration_<family>.py), their
    # text configs and their vision configs; read by sources/vision_config.py
    "qwen2_vl_text": {"vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568,
                      "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
                      "max_position_embeddings": 32768, "max_window_layers": 80},
    "qwen2_5_vl_text": {"vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568,
                        "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
                        "max_position_embeddings": 32768, "max_window_layers": 80},
    "qwen3_vl_text": {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
                      "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 128,
                      "max_position_embeddings": 128000},
    "mllama_text_model": {"vocab_size": 128256, "hidden_size": 4096, "num_hidden_layers": 40,
                          "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
                          "max_position_embeddings": 131072,
                          "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38]},
    "qwen2_vl_vision": {"depth": 32, "embed_dim": 1280, "hidden_size": 3584, "mlp_ratio": 4, "num_heads": 16,
                        "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    "qwen2_5_vl_vision": {"depth": 32, "hidden_size": 3584, "intermediate_size": 3420, "num_heads": 16,
                          "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                          "out_hidden_size": 3584},
    "qwen3_vl_vision": {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
                        "in_channels": 3, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                        "out_hidden_size": 3584, "num_position_embeddings": 2304,
                        "deepstack_visual_indexes": [8, 16, 24]},
    "clip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 32},
    # LlamaConfig's defaults, which a LLaVA text_config that names only a few keys (llava-1.5) builds on
    "llava_text": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "max_position_embeddings": 2048},
    # MistralConfig's defaults, under a LLaVA-NeXT text_config that names a few keys (llava-v1.6-mistral)
    "llava_mistral_text": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                           "max_position_embeddings": 131072, "sliding_window": 4096},
    # Qwen2Config's defaults, InternVLConfig's default language model
    "internvl_qwen2_text": {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016,
                            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                            "max_position_embeddings": 32768, "max_window_layers": 28},
    # LlavaConfig / LlavaNextConfig build a CLIP-L/14-336 tower when vision_config is absent
    "llava_clip": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                   "num_attention_heads": 16, "num_channels": 3, "image_size": 336, "patch_size": 14},
    "internvl_vision": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                        "intermediate_size": 4096, "image_size": [448, 448], "patch_size": [14, 14],
                        "num_channels": 3},
    "mllama_vision_model": {"hidden_size": 1280, "num_hidden_layers": 32, "num_global_layers": 8,
                            "attention_heads": 16, "num_channels": 3, "intermediate_size": 5120,
                            "vision_output_dim": 7680, "image_size": 448, "patch_size": 14, "max_num_tiles": 4,
                            "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1],
                                                        [4, 1]]},
}


def _vision_spec(vr: _Reader, text_hidden_size: int, **extra: Any) -> VisionSpec:
    """A ViT tower's shape from its ``vision_config`` (SigLIP for Gemma 3, Llama 4's own), ``extra`` its own
    fields (Llama 4's output and projector widths)."""
    patch = vr.int("patch_size", limit="patch_size")
    return VisionSpec(hidden_size=vr.int("hidden_size", limit="hidden_size"),
                      intermediate_size=vr.int("intermediate_size", limit="intermediate_size"),
                      num_layers=vr.int("num_hidden_layers", limit="num_layers"),
                      num_heads=vr.int("num_attention_heads", limit="num_heads"),
                      image_size=vr.int("image_size", limit="image_size", minimum=patch), patch_size=patch,
                      num_channels=vr.int("num_channels", limit="num_channels", default=3),
                      text_hidden_size=text_hidden_size, **extra)


def _gemma3(r: _Reader, name: str, mt: str) -> ModelSpec:
    text = r.dict("text_config") if mt == "gemma3" else None
    if text is not None:
        tr = r.nested("text_config", _DEFAULTS["gemma3_text"], {"architectures": r.cfg.get("architectures")})
        tspec = _gemma3(tr, name, "gemma3_text")
        vr = r.nested("vision_config", _DEFAULTS["siglip_vision_model"], {})
        vision = _vision_spec(vr, tspec.hidden_size,
                              image_tokens=r.int("mm_tokens_per_image", limit="intermediate_size", default=256))
        return tspec.with_overrides(model_type="gemma3", vision=vision)
    fam = by_model_type(mt)
    pat = r.int("sliding_window_pattern", limit="num_layers", default=fam.swa_pattern)
    return _llama_like(r, name, "gemma3_text" if mt == "gemma3" else mt, tie=True, norms=fam.norms_per_layer,
                       qk_norm=True, pattern=lambda i: slides(pat, i), mlp_gated=True)


def _gemma2(r: _Reader, name: str, mt: str) -> ModelSpec:
    # a null soft-capping reads as the class default (50.0 / 30.0), as before
    attn_cap = r.float("attn_logit_softcapping", 0.001, 1e6, default=50.0)
    logit_cap = r.float("final_logit_softcapping", 0.001, 1e6, default=30.0)
    fam = by_model_type(mt)
    return _llama_like(r, name, mt, tie=True, norms=fam.norms_per_layer, pattern=lambda i: slides(fam.swa_pattern, i),
                       attn_softcap=attn_cap is not None, logit_softcap=logit_cap is not None)


def _phi3(r: _Reader, name: str, mt: str) -> ModelSpec:
    return _llama_like(r, name, mt, qkv_bias=False, o_bias=False, fused_qkv=True, fused_gate_up=True)


def _phi(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    d.update(layout="phi", tie_embeddings=r.bool("tie_word_embeddings", False), mlp_gated=False,
             norm="layernorm", norm_bias=True, norms_per_layer=1, qkv_bias=True, o_bias=True, mlp_bias=True,
             lm_head_bias=True, qk_norm=r.bool("qk_layernorm", False))
    return ModelSpec(**d)


def _falcon(r: _Reader, name: str, mt: str) -> ModelSpec:
    new_arch = r.bool("new_decoder_architecture", False)
    heads = r.int("num_attention_heads", "n_head", limit="num_heads")
    if new_arch:
        kv = r.int("num_kv_heads", limit="num_kv_heads", default=heads)
    elif r.bool("multi_query", True):
        kv = 1
    else:
        kv = heads
    parallel = r.bool("parallel_attn", True)
    n_ln = r.int("num_ln_in_parallel_attn", limit="norms_per_layer", default=None)
    if n_ln is None and new_arch:
        n_ln = 2
    norms = 3 if not parallel else (2 if n_ln == 2 else 1)
    d = _common(r, name, mt, num_kv_heads=kv)
    d.update(head_dim=_derived_head_dim(r, d["hidden_size"], heads), layout="falcon",
             tie_embeddings=r.bool("tie_word_embeddings", True),
             mlp_gated=False, norm="layernorm", norm_bias=True, norms_per_layer=norms,
             qkv_bias=r.bool("bias", False), o_bias=r.bool("bias", False), mlp_bias=r.bool("bias", False),
             activation="gelu", kv_broadcast=new_arch and kv < heads)
    if not r.present("ffn_hidden_size"):
        d["intermediate_size"] = 4 * d["hidden_size"]
    return ModelSpec(**d)


def _gpt2(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    d.update(layout="gpt2", tie_embeddings=True, mlp_gated=False, norm="layernorm", norm_bias=True,
             qkv_bias=True, o_bias=True, mlp_bias=True,
             learned_positions=r.int("n_positions", "max_position_embeddings", limit="learned_positions", minimum=1),
             activation="gelu_new")
    return ModelSpec(**d)


def _bert(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    arch = d["architecture"]
    d.update(kind="encoder", layout="bert", tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=False,
             norm="layernorm", norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True,
             learned_positions=r.int("max_position_embeddings", limit="learned_positions", minimum=1),
             token_types=r.int("type_vocab_size", limit="token_types", default=2),
             mlm_head=arch.endswith("ForMaskedLM") or arch.endswith("ForPreTraining"),
             pooler=not arch.endswith("ForMaskedLM"), activation="gelu")
    return ModelSpec(**d)


def _t5(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    ff = r.str("feed_forward_proj", default="relu")
    d.update(kind="encoder-decoder", layout="t5", head_dim=r.int("d_kv", limit="head_dim", default=64),
             num_decoder_layers=r.int("num_decoder_layers", limit="num_decoder_layers", default=d["num_layers"],
                                      minimum=1),
             relative_attention_buckets=r.int("relative_attention_num_buckets", limit="relative_attention_buckets",
                                              default=32, minimum=1),
             tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=ff.startswith("gated"),
             activation=ff.split("-")[-1], norm="rmsnorm")
    return ModelSpec(**d)


def _internlm2(r: _Reader, name: str, mt: str) -> ModelSpec:
    bias = r.bool("bias", False)
    return _llama_like(r, name, mt, qkv_bias=bias, o_bias=bias, fused_qkv=True,
                       notes=(Phrase("n_remote_llama", packed="wqkv"),))


def _baichuan(r: _Reader, name: str, mt: str) -> ModelSpec:
    return _llama_like(r, name, mt, fused_qkv=True,
                       notes=(Phrase("n_remote_llama", packed="W_pack"),))


def _chatglm(r: _Reader, name: str, mt: str) -> ModelSpec:
    bias = r.bool("add_qkv_bias", False)
    mq = r.bool("multi_query_attention", False)
    heads = r.int("num_attention_heads", limit="num_heads")
    spec = _llama_like(r, name, mt, qkv_bias=bias, o_bias=r.bool("add_bias_linear", False), fused_qkv=True,
                       fused_gate_up=True, tie=False,
                       num_kv_heads=r.int("multi_query_group_num", limit="num_kv_heads") if mq else heads,
                       notes=(Phrase("n_remote_glm"),))
    return spec


def _gpt_neox(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    bias = r.bool("attention_bias", True)
    d.update(layout="gpt_neox", tie_embeddings=r.bool("tie_word_embeddings", False), mlp_gated=False,
             norm="layernorm", norm_bias=True, qkv_bias=bias, o_bias=bias, mlp_bias=True, activation="gelu")
    return ModelSpec(**d)


def _bloom(r: _Reader, name: str, mt: str) -> ModelSpec:
    # BloomConfig: a given n_embed wins over hidden_size (older checkpoints name it so)
    hidden = r.int("n_embed", "hidden_size", limit="hidden_size")
    d = _common(_Reader({**r.cfg, "hidden_size": hidden}, r.origin, r.prefix), name, mt)
    heads = d["num_heads"]
    d.update(layout="bloom", hidden_size=hidden, head_dim=_derived_head_dim(r, hidden, heads),
             num_kv_heads=heads, intermediate_size=4 * hidden, tie_embeddings=r.bool("tie_word_embeddings", True),
             mlp_gated=False, norm="layernorm", norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True,
             activation="gelu", max_position_embeddings=0)
    return ModelSpec(**d)


def _opt(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    hidden = d["hidden_size"]
    bias = r.bool("enable_bias", True)
    affine = r.bool("layer_norm_elementwise_affine", True)
    final = r.bool("do_layer_norm_before", True) and not r.bool("_remove_final_layer_norm", False)
    proj = r.int("word_embed_proj_dim", limit="hidden_size", default=hidden)
    d.update(layout="opt", intermediate_size=r.int("ffn_dim", limit="intermediate_size", default=3072),
             embed_dim=proj if proj != hidden else 0, final_norm=final and affine,
             learned_positions=r.int("max_position_embeddings", limit="learned_positions", default=2048, minimum=1),
             tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=False, norm="layernorm",
             norm_bias=affine, qkv_bias=bias, o_bias=bias, mlp_bias=bias, activation=r.str("activation_function",
                                                                                          default="relu"))
    if not affine:
        raise VramscopeError("shape_bad_choice", where=f"{r.origin} ", field=r.prefix + "layer_norm_elementwise_affine",
                             value="false", allowed="true")
    return ModelSpec(**d)


def _gptj(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    d.update(layout="gptj", intermediate_size=r.int("n_inner", limit="intermediate_size",
                                                    default=4 * d["hidden_size"]),
             tie_embeddings=r.bool("tie_word_embeddings", False), mlp_gated=False, norm="layernorm", norm_bias=True,
             mlp_bias=True, lm_head_bias=True, activation=r.str("activation_function", default="gelu_new"))
    return ModelSpec(**d)


def _gpt_bigcode(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    d.update(layout="gpt_bigcode", num_kv_heads=1 if r.bool("multi_query", True) else d["num_heads"],
             intermediate_size=r.int("n_inner", limit="intermediate_size", default=4 * d["hidden_size"]),
             learned_positions=r.int("n_positions", "max_position_embeddings", limit="learned_positions",
                                     default=1024, minimum=1),
             tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=False, norm="layernorm", norm_bias=True,
             qkv_bias=True, o_bias=True, mlp_bias=True,
             activation=r.str("activation_function", default="gelu_pytorch_tanh"))
    return ModelSpec(**d)


def _mpt(r: _Reader, name: str, mt: str) -> ModelSpec:
    hidden = r.int("d_model", limit="hidden_size", default=2048)
    heads = r.int("n_heads", limit="num_heads", default=16)
    d = _common(_Reader({**r.cfg, "hidden_size": hidden, "num_attention_heads": heads,
                         "num_hidden_layers": r.int("n_layers", limit="num_layers", default=24),
                         "vocab_size": r.int("vocab_size", limit="vocab_size", default=50368),
                         "max_position_embeddings": r.int("max_seq_len", limit="max_position_embeddings",
                                                          default=2048)}, r.origin, r.prefix), name, mt)
    # transformers modeling_mpt.py builds every linear and LayerNorm without bias and the MLP 4 × d_model wide,
    # whatever no_bias / expansion_ratio say (every published MPT has no_bias=true, expansion_ratio=4)
    d.update(layout="mpt", num_kv_heads=heads, head_dim=_derived_head_dim(r, hidden, heads),
             intermediate_size=4 * hidden, tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=False,
             norm="layernorm", norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False, activation="gelu")
    return ModelSpec(**d)


def _starcoder2(r: _Reader, name: str, mt: str) -> ModelSpec:
    bias = r.bool("use_bias", True)
    return _llama_like(r, name, mt, tie=True, qkv_bias=bias, o_bias=bias, mlp_bias=bias, mlp_gated=False,
                       norm="layernorm", norm_bias=True)


def _cohere(r: _Reader, name: str, mt: str) -> ModelSpec:
    fam = by_model_type(mt)
    pattern = None
    if mt == "cohere2":
        pat = r.int("sliding_window_pattern", limit="num_layers", default=fam.swa_pattern)
        pattern = lambda i: slides(pat, i)  # noqa: E731
    return _llama_like(r, name, mt, tie=True, norms=1, qk_norm=r.bool("use_qk_norm", False), norm="layernorm",
                       sliding="config" if mt == "cohere2" else None, pattern=pattern)


def _stablelm(r: _Reader, name: str, mt: str) -> ModelSpec:
    bias = r.bool("use_qkv_bias", False)
    return _llama_like(r, name, mt, qkv_bias=bias, o_bias=False, norm="layernorm", norm_bias=True,
                       norms=1 if r.bool("use_parallel_residual", False) else 2, qk_norm=r.bool("qk_layernorm", False),
                       sliding=None)


def _olmo(r: _Reader, name: str, mt: str) -> ModelSpec:
    kw: dict[str, Any] = dict(norm="layernorm" if mt == "olmo" else "rmsnorm", sliding=None)
    if mt == "olmoe":
        experts = r.int("num_experts", limit="num_experts", default=64)
        kw["moe"] = MoESpec(num_experts=experts, experts_per_token=r.int("num_experts_per_tok",
                                                                         limit="experts_per_token", default=8),
                            expert_intermediate_size=r.int("intermediate_size", limit="expert_intermediate_size",
                                                           default=2048))
        if kw["moe"].experts_per_token > experts:
            _top_k(r, experts)
    return _llama_like(r, name, mt, qk_norm=mt != "olmo", **kw)


def _gpt_oss(r: _Reader, name: str, mt: str) -> ModelSpec:
    experts = r.int("num_local_experts", limit="num_experts", default=128)
    moe = MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts),
                  expert_intermediate_size=r.int("intermediate_size", limit="expert_intermediate_size",
                                                 default=2880), router_bias=True)
    # GptOssConfig: without layer_types, even layers slide (sliding_attention if (i + 1) % 2 else full)
    return _llama_like(r, name, mt, qkv_bias=r.bool("attention_bias", True), o_bias=r.bool("attention_bias", True),
                       moe=moe, pattern=lambda i: i % 2 == 0)


def _llama4(r: _Reader, name: str, mt: str) -> ModelSpec:
    """Llama 4 (``Llama4TextConfig``): MoE layers from ``moe_layers`` or every ``interleave_moe_layer_step``-th
    layer, each with one shared expert as wide as a routed one; the dense layers' MLP is ``intermediate_size_mlp``
    wide. The multimodal config nests it in ``text_config`` beside ``vision_config``."""
    if mt == "llama4":
        tr = r.nested("text_config", _DEFAULTS["llama4_text"], {"architectures": r.cfg.get("architectures")})
        tspec = _llama4(tr, name, "llama4_text")
        vr = r.nested("vision_config", _DEFAULTS["llama4_vision_model"], {})
        vision = _vision_spec(vr, tspec.hidden_size, kind="llama4",
                              output_dim=vr.int("vision_output_dim", limit="intermediate_size"),
                              projector_input_dim=vr.int("projector_input_dim", limit="intermediate_size"),
                              projector_output_dim=vr.int("projector_output_dim", limit="intermediate_size"))
        return tspec.with_overrides(model_type="llama4", vision=vision)
    n = r.int("num_hidden_layers", limit="num_layers")
    experts = r.int("num_local_experts", limit="num_experts")
    step = r.int("interleave_moe_layer_step", limit="num_layers", default=1)
    moe_layers = set(r.layer_list("moe_layers")) if r.present("moe_layers") else set(range(step - 1, n, step))
    expert_i = r.int("intermediate_size", limit="expert_intermediate_size")
    moe = MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts), expert_intermediate_size=expert_i,
                  shared_intermediate_size=expert_i, dense_layers=tuple(i for i in range(n) if i not in moe_layers))
    return _llama_like(r, name, mt, moe=moe, sliding=None,
                       intermediate_size=r.int("intermediate_size_mlp", limit="intermediate_size"))


def _dbrx(r: _Reader, name: str, mt: str) -> ModelSpec:
    """DBRX (``DbrxConfig``): the attention and MoE shapes sit in ``attn_config`` and ``ffn_config``."""
    hidden = r.int("d_model", limit="hidden_size", default=2048)
    heads = r.int("n_heads", limit="num_heads", default=16)
    attn = r.nested("attn_config", {"kv_n_heads": 1}, {})
    ffn = r.nested("ffn_config", {"ffn_hidden_size": 3584, "moe_num_experts": 4, "moe_top_k": 1}, {})
    kv = attn.int("kv_n_heads", limit="num_kv_heads")
    experts = ffn.int("moe_num_experts", limit="num_experts")
    top_k = ffn.int("moe_top_k", limit="experts_per_token")
    if top_k > experts:
        raise VramscopeError("shape_top_k", where=f"{r.origin} ", field="ffn_config.moe_top_k", k=top_k, n=experts)
    inter = ffn.int("ffn_hidden_size", limit="expert_intermediate_size")
    d = _common(_Reader({**r.cfg, "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv,
                         "num_hidden_layers": r.int("n_layers", limit="num_layers", default=24),
                         "vocab_size": r.int("vocab_size", limit="vocab_size", default=32000),
                         "intermediate_size": inter,
                         "max_position_embeddings": r.int("max_seq_len", limit="max_position_embeddings",
                                                          default=2048)}, r.origin, r.prefix), name, mt)
    if heads % kv:
        raise VramscopeError("shape_kv_heads", where=f"{r.origin} ", field="attn_config.kv_n_heads", kv=kv,
                             heads=heads)
    d.update(layout="dbrx", head_dim=_derived_head_dim(r, hidden, heads),
             tie_embeddings=r.bool("tie_word_embeddings", False), norm="layernorm", norm_bias=False,
             moe=MoESpec(num_experts=experts, experts_per_token=top_k, expert_intermediate_size=inter))
    return ModelSpec(**d)


def _phimoe_moe(r: _Reader) -> MoESpec:
    experts = r.int("num_local_experts", limit="num_experts")
    return MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts),
                   expert_intermediate_size=r.int("intermediate_size", limit="expert_intermediate_size"))


def _granite(r: _Reader, name: str, mt: str) -> ModelSpec:
    if mt == "granitemoe":
        experts = r.int("num_local_experts", limit="num_experts", default=8)
        moe = MoESpec(num_experts=experts, experts_per_token=_top_k(r, experts),
                      expert_intermediate_size=r.int("intermediate_size", limit="expert_intermediate_size",
                                                     default=11008))
        return _llama_like(r, name, mt, moe=moe, sliding=None)
    return _llama_like(r, name, mt, sliding=None)


def _vision_families() -> dict[str, Callable[[_Reader, str, str], ModelSpec]]:
    from .vision_config import READERS

    return READERS


_FAMILIES: dict[str, Callable[[_Reader, str, str], ModelSpec]] = {
    "llama": lambda r, n, mt: _llama_like(r, n, mt),
    "mistral": lambda r, n, mt: _llama_like(r, n, mt),
    "ministral": lambda r, n, mt: _llama_like(r, n, mt),
    "yi": lambda r, n, mt: _llama_like(r, n, mt),
    "qwen2": lambda r, n, mt: _llama_like(r, n, mt, qkv_bias=True, o_bias=False),
    "qwen3": lambda r, n, mt: _llama_like(r, n, mt, qk_norm=True),
    "gemma": lambda r, n, mt: _llama_like(r, n, mt, tie=True, sliding=None),
    "gemma2": _gemma2,
    "gemma3_text": _gemma3,
    "gemma3": _gemma3,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "kimi_k2": _deepseek,  # remote code: DeepSeek-V3's configuration_deepseek.py / modeling_deepseek.py
    "phi3": _phi3,
    "phi": _phi,
    "falcon": _falcon,
    "gpt2": _gpt2,
    "bert": _bert,
    "roberta": _bert,
    "t5": _t5,
    "glm": lambda r, n, mt: _llama_like(r, n, mt, o_bias=False, fused_gate_up=True),
    "glm4": lambda r, n, mt: _llama_like(r, n, mt, o_bias=False, fused_gate_up=True,
                                         norms=by_model_type(mt).norms_per_layer),
    "internlm2": _internlm2,
    "internlm3": lambda r, n, mt: _llama_like(r, n, mt, qkv_bias=r.bool("qkv_bias", False),
                                              o_bias=r.bool("bias", False)),
    "baichuan": _baichuan,
    "chatglm": _chatglm,
    "gpt_neox": _gpt_neox,
    "bloom": _bloom,
    "opt": _opt,
    "gptj": _gptj,
    "gpt_bigcode": _gpt_bigcode,
    "mpt": _mpt,
    "starcoder2": _starcoder2,
    "cohere": _cohere,
    "cohere2": _cohere,
    "stablelm": _stablelm,
    "olmo": _olmo,
    "olmo2": _olmo,
    "olmoe": _olmo,
    "granite": _granite,
    "granitemoe": _granite,
    "gpt_oss": _gpt_oss,
    "llama4": _llama4,
    "dbrx": _dbrx,
    "phimoe": lambda r, n, mt: _llama_like(
        r, n, mt, norm="layernorm", norm_bias=True, lm_head_bias=r.bool("lm_head_bias", False),
        moe=_phimoe_moe(r)),
    "llama4_text": _llama4,
    **_vision_families(),
    # transformers modeling_smollm3.py: the Llama layer (NoPE layers change no tensor), embeddings tied by default
    "smollm3": lambda r, n, mt: _llama_like(r, n, mt, tie=True),
}

SUPPORTED_MODEL_TYPES = tuple(sorted(_FAMILIES))


def spec_from_config(cfg: Config, name: str, origin: str = "config.json") -> ModelSpec:
    """Read a Hugging Face config dict into a :class:`ModelSpec`; unknown families get a clear error."""
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=origin)
    # multimodal checkpoints nest the language model (and the vision tower) in objects of their own
    text = get_dict(cfg, "text_config", origin=origin)
    get_dict(cfg, "vision_config", origin=origin)
    model_type = get_str(cfg, "model_type", origin=origin, max_len=64)
    if not model_type and text is not None:
        model_type = get_str(text, "model_type", origin=origin, max_len=64, prefix="text_config.")
    if not model_type:
        raise VramscopeError("config_missing", key="model_type", origin=origin)
    fam = _FAMILIES.get(model_type)
    if fam is None:  # any architecture transformers ships: built on the meta device (the trace extra)
        from .meta_device import spec_from_meta

        return spec_from_meta(cfg, name, origin, model_type, len(SUPPORTED_MODEL_TYPES))
    r = _Reader({**_DEFAULTS.get(model_type, {}), **cfg}, origin)
    spec = fam(r, name, model_type)
    return spec.with_overrides(source=origin)
