"""Hugging Face ``config.json`` → :class:`ModelSpec`.

One reader for every place a config comes from (the built-in catalog, a local file, the Hub), so a model read
from the catalog and the same model read from its config.json are the same spec. Each family's defaults are the
defaults of its transformers configuration class (``transformers/models/<family>/configuration_<family>.py``);
families that ship as remote code (InternLM2, Baichuan, ChatGLM) are read from their published config keys and
mapped onto the native layout with the same tensors (their code is never executed).
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import VramscopeError
from ..model.spec import FULL, SLIDING, MLASpec, ModelSpec, MoESpec, VisionSpec

Config = dict[str, Any]


class _Reader:
    """Typed access to config keys with clear errors naming the missing or bad key."""

    def __init__(self, cfg: Config, origin: str) -> None:
        self.cfg = cfg
        self.origin = origin

    def get(self, *keys: str, default: Any = None) -> Any:
        for k in keys:
            if k in self.cfg and self.cfg[k] is not None:
                return self.cfg[k]
        return default

    def int(self, *keys: str, default: Any = ..., minimum: int = 1) -> int:
        value = self.get(*keys)
        if value is None:
            if default is ...:
                raise VramscopeError("config_missing", key=" / ".join(keys), origin=self.origin)
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise VramscopeError("config_bad_value", key=keys[0], value=value, origin=self.origin,
                                 allowed="an integer")
        if value < minimum or value > 10**9:
            raise VramscopeError("config_bad_value", key=keys[0], value=value, origin=self.origin,
                                 allowed=f"an integer from {minimum} to 10^9")
        return int(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.cfg.get(key)
        return default if value is None else bool(value)


def _common(r: _Reader, name: str, model_type: str, **kw: Any) -> dict[str, Any]:
    hidden = r.int("hidden_size", "n_embd", "d_model")
    heads = r.int("num_attention_heads", "n_head", "num_heads")
    kv_heads = r.int("num_key_value_heads", "num_kv_heads", "multi_query_group_num", default=heads)
    head_dim = r.int("head_dim", "kv_channels", default=0, minimum=0) or hidden // heads
    if heads % kv_heads:
        raise VramscopeError("config_bad_value", key="num_key_value_heads", value=kv_heads, origin=r.origin,
                             allowed=f"a divisor of num_attention_heads ({heads})")
    arch = (r.get("architectures") or [""])[0]
    d = dict(
        name=name, model_type=model_type, architecture=arch,
        num_layers=r.int("num_hidden_layers", "n_layer", "num_layers"),
        hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim,
        intermediate_size=r.int("intermediate_size", "ffn_hidden_size", "n_inner", "d_ff", default=4 * hidden),
        vocab_size=r.int("vocab_size", "padded_vocab_size"),
        max_position_embeddings=r.int("max_position_embeddings", "n_positions", "seq_length",
                                      "model_max_length", default=0, minimum=0),
        dtype=str(r.get("torch_dtype", "dtype", default="")),
        quant_method=str((r.get("quantization_config") or {}).get("quant_method", "")),
        activation=str(r.get("hidden_act", "hidden_activation", "activation_function", default="silu")),
    )
    d.update(kw)
    return d


def _layer_types(r: _Reader, n_layers: int, sliding: int | None, pattern: Callable[[int], bool] | None) -> tuple:
    given = r.get("layer_types")
    if given:
        if len(given) < n_layers or any(t not in (FULL, SLIDING, "chunked_attention") for t in given[:n_layers]):
            raise VramscopeError("config_bad_value", key="layer_types", value=str(given)[:80], origin=r.origin,
                                 allowed=f"{n_layers} entries of full_attention / sliding_attention")
        return tuple(SLIDING if t != FULL else FULL for t in given[:n_layers])
    if sliding and pattern is not None:
        return tuple(SLIDING if pattern(i) else FULL for i in range(n_layers))
    return ()


def _llama_like(r: _Reader, name: str, model_type: str, *, tie: bool = False, qkv_bias: Any = None,
                o_bias: Any = None, norms: int = 2, qk_norm: bool = False, sliding: Any = "config",
                pattern: Callable[[int], bool] | None = None, **kw: Any) -> ModelSpec:
    attention_bias = r.bool("attention_bias", False)
    d = _common(r, name, model_type)
    window = r.get("sliding_window") if sliding == "config" else sliding
    if model_type in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe") and not r.bool("use_sliding_window", False):
        window = None
    if window is not None and window >= 10**9:
        window = None
    if pattern is None and window and model_type.startswith("qwen"):
        mwl = r.int("max_window_layers", default=0, minimum=0)
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
    only = set(r.get("mlp_only_layers", default=[]) or [])
    step = r.int("decoder_sparse_step", default=1)
    return tuple(i for i in range(n_layers) if i in only or (i + 1) % step != 0)


def _mixtral(r: _Reader, name: str, mt: str) -> ModelSpec:
    moe = MoESpec(num_experts=r.int("num_local_experts"), experts_per_token=r.int("num_experts_per_tok"),
                  expert_intermediate_size=r.int("intermediate_size"))
    return _llama_like(r, name, mt, moe=moe)


def _qwen_moe(r: _Reader, name: str, mt: str) -> ModelSpec:
    n = r.int("num_hidden_layers")
    shared = r.int("shared_expert_intermediate_size", default=0, minimum=0) if mt == "qwen2_moe" else 0
    moe = MoESpec(num_experts=r.int("num_experts"), experts_per_token=r.int("num_experts_per_tok"),
                  expert_intermediate_size=r.int("moe_intermediate_size"), shared_intermediate_size=shared,
                  shared_expert_gate=bool(shared), dense_layers=_moe_dense_layers(r, n))
    if mt == "qwen2_moe":
        return _llama_like(r, name, mt, qkv_bias=r.bool("qkv_bias", True), o_bias=False, moe=moe)
    return _llama_like(r, name, mt, qk_norm=True, moe=moe)


def _deepseek(r: _Reader, name: str, mt: str) -> ModelSpec:
    n = r.int("num_hidden_layers")
    mla = MLASpec(q_lora_rank=r.get("q_lora_rank"), kv_lora_rank=r.int("kv_lora_rank"),
                  qk_nope_head_dim=r.int("qk_nope_head_dim"), qk_rope_head_dim=r.int("qk_rope_head_dim"),
                  v_head_dim=r.int("v_head_dim"))
    moe = None
    experts = r.int("n_routed_experts", default=0, minimum=0)
    if experts:
        first_dense = r.int("first_k_dense_replace", default=0, minimum=0)
        moe_i = r.int("moe_intermediate_size")
        moe = MoESpec(num_experts=experts, experts_per_token=r.int("num_experts_per_tok"),
                      expert_intermediate_size=moe_i,
                      shared_intermediate_size=moe_i * r.int("n_shared_experts", default=0, minimum=0),
                      dense_layers=tuple(range(min(first_dense, n))))
    spec = _llama_like(r, name, mt, mla=mla, moe=moe, head_dim=mla.qk_head_dim)
    notes = ()
    if r.int("num_nextn_predict_layers", default=0, minimum=0):
        notes = ("checkpoint also holds multi-token-prediction layers that transformers does not load",)
    return spec.with_overrides(notes=notes)


#: Class defaults for keys that published configs leave out (Gemma 3 relies on them):
#: transformers ``Gemma3TextConfig`` and ``SiglipVisionConfig``.
_DEFAULTS: dict[str, Config] = {
    "gemma3_text": {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                    "max_position_embeddings": 131072, "sliding_window": 4096,
                    "hidden_activation": "gelu_pytorch_tanh"},
    "siglip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                            "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 16},
}


def _gemma3(r: _Reader, name: str, mt: str) -> ModelSpec:
    text = r.get("text_config")
    if mt == "gemma3" and isinstance(text, dict):
        tr = _Reader({**_DEFAULTS["gemma3_text"], **text, "architectures": r.get("architectures")}, r.origin)
        tspec = _gemma3(tr, name, "gemma3_text")
        v = r.get("vision_config") or {}
        vr = _Reader({**_DEFAULTS["siglip_vision_model"], **v}, r.origin + " (vision_config)")
        vision = VisionSpec(hidden_size=vr.int("hidden_size"), intermediate_size=vr.int("intermediate_size"),
                            num_layers=vr.int("num_hidden_layers"), num_heads=vr.int("num_attention_heads"),
                            image_size=vr.int("image_size"), patch_size=vr.int("patch_size"),
                            num_channels=vr.int("num_channels", default=3), text_hidden_size=tspec.hidden_size)
        return tspec.with_overrides(model_type="gemma3", vision=vision)
    pat = r.int("sliding_window_pattern", default=6)
    return _llama_like(r, name, "gemma3_text" if mt == "gemma3" else mt, tie=True, norms=4, qk_norm=True,
                       pattern=lambda i: bool((i + 1) % pat), mlp_gated=True)


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
    heads = r.int("num_attention_heads", "n_head")
    if new_arch:
        kv = r.int("num_kv_heads", default=heads)
    elif r.bool("multi_query", True):
        kv = 1
    else:
        kv = heads
    parallel = r.bool("parallel_attn", True)
    n_ln = r.get("num_ln_in_parallel_attn")
    if n_ln is None and new_arch:
        n_ln = 2
    norms = 3 if not parallel else (2 if n_ln == 2 else 1)
    d = _common(r, name, mt, num_kv_heads=kv)
    d.update(head_dim=d["hidden_size"] // heads, layout="falcon", tie_embeddings=r.bool("tie_word_embeddings", True),
             mlp_gated=False, norm="layernorm", norm_bias=True, norms_per_layer=norms,
             qkv_bias=r.bool("bias", False), o_bias=r.bool("bias", False), mlp_bias=r.bool("bias", False),
             activation="gelu")
    if r.get("ffn_hidden_size") is None:
        d["intermediate_size"] = 4 * d["hidden_size"]
    return ModelSpec(**d)


def _gpt2(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    d.update(layout="gpt2", tie_embeddings=True, mlp_gated=False, norm="layernorm", norm_bias=True,
             qkv_bias=True, o_bias=True, mlp_bias=True, learned_positions=r.int("n_positions",
                                                                                "max_position_embeddings"),
             activation="gelu_new")
    return ModelSpec(**d)


def _bert(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    arch = d["architecture"]
    d.update(kind="encoder", layout="bert", tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=False,
             norm="layernorm", norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True,
             learned_positions=r.int("max_position_embeddings"), token_types=r.int("type_vocab_size", default=2,
                                                                                   minimum=0),
             mlm_head=arch.endswith("ForMaskedLM") or arch.endswith("ForPreTraining"),
             pooler=not arch.endswith("ForMaskedLM"), activation="gelu")
    return ModelSpec(**d)


def _t5(r: _Reader, name: str, mt: str) -> ModelSpec:
    d = _common(r, name, mt)
    ff = str(r.get("feed_forward_proj", default="relu"))
    d.update(kind="encoder-decoder", layout="t5", head_dim=r.int("d_kv", default=64),
             num_decoder_layers=r.int("num_decoder_layers", default=d["num_layers"]),
             relative_attention_buckets=r.int("relative_attention_num_buckets", default=32),
             tie_embeddings=r.bool("tie_word_embeddings", True), mlp_gated=ff.startswith("gated"),
             activation=ff.split("-")[-1], norm="rmsnorm")
    return ModelSpec(**d)


def _internlm2(r: _Reader, name: str, mt: str) -> ModelSpec:
    bias = r.bool("bias", False)
    return _llama_like(r, name, mt, qkv_bias=bias, o_bias=bias, fused_qkv=True,
                       notes=("remote-code family: read as the Llama layout it is equivalent to (wqkv = q,k,v)",))


def _baichuan(r: _Reader, name: str, mt: str) -> ModelSpec:
    return _llama_like(r, name, mt, fused_qkv=True,
                       notes=("remote-code family: read as the Llama layout it is equivalent to (W_pack = q,k,v)",))


def _chatglm(r: _Reader, name: str, mt: str) -> ModelSpec:
    bias = r.bool("add_qkv_bias", False)
    mq = r.bool("multi_query_attention", False)
    heads = r.int("num_attention_heads")
    spec = _llama_like(r, name, mt, qkv_bias=bias, o_bias=r.bool("add_bias_linear", False), fused_qkv=True,
                       fused_gate_up=True, tie=False,
                       num_kv_heads=r.int("multi_query_group_num") if mq else heads,
                       notes=("remote-code family: read as the GLM layout it is equivalent to",))
    return spec


_FAMILIES: dict[str, Callable[[_Reader, str, str], ModelSpec]] = {
    "llama": lambda r, n, mt: _llama_like(r, n, mt),
    "mistral": lambda r, n, mt: _llama_like(r, n, mt),
    "ministral": lambda r, n, mt: _llama_like(r, n, mt),
    "yi": lambda r, n, mt: _llama_like(r, n, mt),
    "qwen2": lambda r, n, mt: _llama_like(r, n, mt, qkv_bias=True, o_bias=False),
    "qwen3": lambda r, n, mt: _llama_like(r, n, mt, qk_norm=True),
    "gemma": lambda r, n, mt: _llama_like(r, n, mt, tie=True, sliding=None),
    "gemma2": lambda r, n, mt: _llama_like(r, n, mt, tie=True, norms=4, pattern=lambda i: bool((i + 1) % 2),
                                           attn_softcap=r.get("attn_logit_softcapping", default=50.0) is not None,
                                           logit_softcap=r.get("final_logit_softcapping", default=30.0) is not None),
    "gemma3_text": _gemma3,
    "gemma3": _gemma3,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "phi3": _phi3,
    "phi": _phi,
    "falcon": _falcon,
    "gpt2": _gpt2,
    "bert": _bert,
    "roberta": _bert,
    "t5": _t5,
    "glm": lambda r, n, mt: _llama_like(r, n, mt, o_bias=False, fused_gate_up=True),
    "glm4": lambda r, n, mt: _llama_like(r, n, mt, o_bias=False, fused_gate_up=True, norms=4),
    "internlm2": _internlm2,
    "internlm3": lambda r, n, mt: _llama_like(r, n, mt, qkv_bias=r.bool("qkv_bias", False),
                                              o_bias=r.bool("bias", False)),
    "baichuan": _baichuan,
    "chatglm": _chatglm,
}

SUPPORTED_MODEL_TYPES = tuple(sorted(_FAMILIES))


def spec_from_config(cfg: Config, name: str, origin: str = "config.json") -> ModelSpec:
    """Read a Hugging Face config dict into a :class:`ModelSpec`; unknown families get a clear error."""
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=origin)
    model_type = cfg.get("model_type")
    if not model_type and isinstance(cfg.get("text_config"), dict):
        model_type = cfg["text_config"].get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise VramscopeError("config_missing", key="model_type", origin=origin)
    fam = _FAMILIES.get(model_type)
    if fam is None:
        raise VramscopeError("unsupported_model_type", model_type=model_type, origin=origin,
                             allowed=", ".join(SUPPORTED_MODEL_TYPES))
    r = _Reader({**_DEFAULTS.get(model_type, {}), **cfg}, origin)
    spec = fam(r, name, model_type)
    return spec.with_overrides(source=origin)
