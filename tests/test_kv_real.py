"""vramscope's per-layer KV cache bytes equal what transformers' own cache objects hold after a real forward.

For every catalog family transformers builds natively (remote-code families as the native architecture they are
equivalent to, ``trace/build.py``), the catalog config is shrunk (tiny widths, two to six layers, windows of
5 tokens) keeping what decides the cache: the layer-type pattern, the sliding window gating, the ratio of query
to key/value heads, Falcon's decoder architecture, MLA's latent split, encoder-decoder cross-attention. The
model is built with real CPU tensors, a prompt is prefilled and three tokens decoded through the cache object
``generate()`` would create, and each layer's bytes are read from the storage of its tensors (a sliding layer's
``keys`` is a view: its storage, not its shape, is what the device holds). The installed transformers is the
version modelled (``memory/kv_cache.py: transformers_version``).
"""

from __future__ import annotations

import copy

import pytest

from conftest import distinct_storage_bytes, requires_torch
from vramscope.memory.kv_cache import layer_kv_bytes, transformers_layout
from vramscope.sources import catalog
from vramscope.sources.hf_config import spec_from_config

pytestmark = [requires_torch, pytest.mark.trace]

HEAD_DIM = 16
WINDOW = 5
PROMPT = 12  # longer than the window: the sliding layers drop tokens
SHORT = 3  # shorter than the window
STEPS = 3
WHISPER_FRAMES = 6  # the encoder's positions (max_source_positions): 2 × as many mel frames go in
BATCH = 2


def _signature(cfg: dict) -> tuple:
    """What decides a config's cache layout; one catalog entry per distinct signature is run."""
    text = cfg.get("text_config") or {}
    return (cfg.get("model_type"), text.get("model_type"), cfg.get("sliding_window") is not None,
            cfg.get("use_sliding_window"), cfg.get("new_decoder_architecture"), cfg.get("multi_query"),
            "q_lora_rank" in cfg and cfg["q_lora_rank"] is None, cfg.get("multi_query_attention"),
            cfg.get("num_key_value_heads", cfg.get("num_kv_heads")) == cfg.get("num_attention_heads"),
            "layer_types" in cfg, bool(text.get("num_kv_shared_layers")))


def _entries() -> list[dict]:
    seen, out = set(), []
    for e in catalog.entries():
        cfg = e["config"]
        if cfg.get("model_type") in ("bert", "roberta"):  # encoder-only: no cache (test_kv_cache.py)
            continue
        sig = _signature(cfg)
        if sig not in seen:
            seen.add(sig)
            out.append(e)
    return out


ENTRIES = _entries()


def _set_first(cfg: dict, keys: tuple[str, ...], value) -> None:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            cfg[k] = value
            return


def shrink(cfg: dict) -> dict:
    """A tiny config with the same cache layout (module docstring)."""
    c = copy.deepcopy(cfg)
    for k in ("quantization_config", "auto_map", "transformers_version", "_name_or_path"):
        c.pop(k, None)
    if isinstance(c.get("vision_config"), dict):
        c["vision_config"] = _shrink_vision(c["vision_config"])
    if isinstance(c.get("audio_config"), dict):  # Gemma 4's conformer: one small layer (built, never run)
        c["audio_config"] = {**c["audio_config"], "hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1,
                             "output_proj_dims": 32, "subsampling_conv_channels": [8, 4]}
    if isinstance(c.get("text_config"), dict):
        from vramscope.sources.hf_config import _DEFAULTS  # the class defaults published configs leave out
        from vramscope.sources.vision_config import _QWEN_TEXT, _text_defaults

        text_type = c["text_config"].get("model_type") or {"gemma3": "gemma3_text", "mllama": "mllama_text_model",
                                                           "llava": "llama", "llava_next": "llama"}.get(
            c.get("model_type"), _QWEN_TEXT.get(c.get("model_type"), "gemma3_text"))
        defaults = _DEFAULTS.get(text_type) or _text_defaults(text_type)
        c["text_config"] = shrink({**defaults, "model_type": text_type, **c["text_config"]})
        if c["text_config"].get("cross_attention_layers"):  # Llama-3.2-Vision: one of the two layers cross-attends
            c["text_config"]["cross_attention_layers"] = [1]
        return c
    mt = c.get("model_type")
    if mt == "whisper":  # audio encoder-decoder: two layers each, an encoder of WHISPER_FRAMES positions
        c.update(d_model=64, encoder_attention_heads=4, decoder_attention_heads=4, encoder_layers=2,
                 decoder_layers=2, num_hidden_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=128,
                 max_source_positions=WHISPER_FRAMES, max_target_positions=64, pad_token_id=0, bos_token_id=0,
                 eos_token_id=0, decoder_start_token_id=0)
        for k in ("suppress_tokens", "begin_suppress_tokens", "forced_decoder_ids"):
            c.pop(k, None)
        return c
    heads = next(c[k] for k in ("num_attention_heads", "n_head", "num_heads") if c.get(k))
    if mt == "falcon" and not c.get("new_decoder_architecture"):
        kv = 1 if c.get("multi_query", True) else heads
    elif mt == "chatglm":
        kv = c["multi_query_group_num"] if c.get("multi_query_attention") else heads
    else:
        kv = next((c[k] for k in ("num_key_value_heads", "num_kv_heads") if c.get(k)), heads)
    kv2 = min(kv, 2)
    heads2 = kv2 * (heads // kv)
    _set_first(c, ("num_attention_heads", "n_head", "num_heads"), heads2)
    if isinstance(c.get("num_attention_heads_per_layer"), list):  # Laguna: query heads per layer, same ratio each
        c["num_attention_heads_per_layer"] = [kv2 * (h // kv) for h in c["num_attention_heads_per_layer"]]
    _set_first(c, ("num_key_value_heads", "num_kv_heads"), kv2)
    if "multi_query_group_num" in c:
        c["multi_query_group_num"] = kv2 if c.get("multi_query_attention") else c["multi_query_group_num"]
    explicit_head_dim = any(c.get(k) for k in ("head_dim", "kv_channels", "d_kv", "attention_head_dim"))
    old_head_dim = next((c[k] for k in ("head_dim", "kv_channels", "d_kv") if c.get(k)), None)
    for k in ("head_dim", "kv_channels", "d_kv", "attention_head_dim"):
        if k in c:
            c[k] = HEAD_DIM
    if c.get("rotary_dim") and old_head_dim:  # MiniMax-M2: partial RoPE as a width (64 of 128), kept in ratio
        c["rotary_dim"] = HEAD_DIM * c["rotary_dim"] // old_head_dim
    hidden = 64 if explicit_head_dim and mt not in ("chatglm", "t5") else heads2 * HEAD_DIM
    _set_first(c, ("hidden_size", "n_embd", "d_model"), hidden)
    _set_first(c, ("intermediate_size", "ffn_hidden_size", "n_inner", "d_ff"), 32)
    for k, v in (("moe_intermediate_size", 16), ("shared_expert_intermediate_size", 16),
                 ("moe_shared_expert_intermediate_size", 16), ("moe_latent_size", 16)):
        if k in c:
            c[k] = v
    for k in ("n_routed_experts", "num_local_experts", "num_experts"):
        if c.get(k):
            c[k] = 4
    if c.get("num_experts_per_tok"):
        c["num_experts_per_tok"] = min(c["num_experts_per_tok"], 2)
    for k in ("n_group", "topk_group"):
        if k in c:
            c[k] = 1
    if "compress_ratios" in c:  # DeepSeek-V4: tiny compressors and indexer, an HCA rate the prompt reaches
        c.update(q_lora_rank=24, o_lora_rank=16, o_groups=2, index_n_heads=2, index_head_dim=8, index_topk=4,
                 compress_rate_hca=8,
                 qk_rope_head_dim=max(2, HEAD_DIM * c.get("qk_rope_head_dim", 0) // (old_head_dim or HEAD_DIM)))
    if "kv_lora_rank" in c:  # MLA: its own split, and an explicit null q_lora_rank kept null
        c.update(kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8)
        if c.get("q_lora_rank") is not None:
            c["q_lora_rank"] = 24
        c["first_k_dense_replace"] = min(c.get("first_k_dense_replace", 0), 1)
    _set_first(c, ("vocab_size", "padded_vocab_size"), 128)
    for k in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
        if k in c:
            c[k] = 0
    if c.get("sliding_window") is not None:
        c["sliding_window"] = WINDOW
    if c.get("sliding_window_size") is not None:  # MiMo-V2-Flash: transformers' window is this + 1
        c["sliding_window_size"] = WINDOW - 1
    if c.get("v_head_dim") and "kv_lora_rank" not in c:  # values narrower than keys (MiMo-V2-Flash: 128 of 192)
        c["v_head_dim"] = HEAD_DIM // 2
    # enough layers for the real layer-type pattern: Gemma 3 slides 5 of every 6, Gemma 2 every other one
    layers = 6 if mt in ("gemma3_text",) else 2
    # and at least one attention layer where the pattern opens with others (LFM2: conv, conv, full_attention)
    kinds = c.get("layer_types") if isinstance(c.get("layer_types"), list) else []
    first_attn = next((i for i, t in enumerate(kinds) if "attention" in str(t) and "linear" not in str(t)), None)
    if first_attn is not None and first_attn >= layers:
        layers = first_attn + 1
    # and one layer of each attention type (Muse-Glimmer: three sliding layers, then a full one)
    attn_kinds = [t for t in dict.fromkeys(map(str, kinds)) if "attention" in t and "linear" not in t]
    if attn_kinds:
        layers = max(layers, max(list(map(str, kinds)).index(t) for t in attn_kinds) + 1)
    depth = next((c[k] for k in ("num_hidden_layers", "n_layer", "num_layers") if c.get(k)), 0)
    _shrink_states(c)
    # hybrids: up to the first attention layer, past the recurrent / MLP / MoE layers before it (Nemotron-H's
    # pattern string or block-type list; Qwen3-Next's every full_attention_interval-th layer)
    if c.get("full_attention_interval"):
        layers = c["full_attention_interval"]
    if isinstance(c.get("compress_ratios"), list):  # DeepSeek-V4: up to the first CSA and HCA layers
        ratios = c["compress_ratios"]
        layers = max(ratios.index(r) for r in set(ratios)) + 1
        c["compress_ratios"] = ratios[:layers]
    for key, attention in (("hybrid_override_pattern", "*"), ("layers_block_type", "attention")):
        if isinstance(c.get(key), (str, list)) and attention in c[key]:
            layers = list(c[key]).index(attention) + 1
            c[key] = c[key][:layers]
    if c.get("num_kv_shared_layers"):  # Gemma 4: two shared layers after an unshared one of each type
        first_full = kinds.index("full_attention") if "full_attention" in kinds else 0
        layers = max(layers, first_full + 3)
        c["num_kv_shared_layers"] = 2
    for k, v in (("hidden_size_per_layer_input", 8), ("vocab_size_per_layer_input", 128)):  # Gemma 4's PLE
        if c.get(k):
            c[k] = v
    if "max_window_layers" in c:
        c["max_window_layers"] = min(c["max_window_layers"], 1)
    _set_first(c, ("num_hidden_layers", "n_layer", "num_layers"), layers)
    if "num_decoder_layers" in c:
        c["num_decoder_layers"] = layers
    for key in ("layer_types", "mlp_layer_types"):  # GLM-5.2 names each layer's MLP (dense or sparse) too
        if isinstance(c.get(key), list):
            c[key] = c[key][:layers]
    _cut_per_layer(c, depth, layers)  # every other per-layer list (Laguna's heads and gating, Muse's RoPE thetas)
    rope = c.get("rope_scaling")
    if isinstance(rope, dict) and rope.get("mrope_section"):  # Qwen-VL: the sections split half the head size
        half = HEAD_DIM // 2
        c["rope_scaling"] = {**rope, "mrope_section": [half - 2 * (half // 4), half // 4, half // 4]}
    return c


def _cut_per_layer(c: dict, depth: int, layers: int) -> None:
    """Every list with one entry per layer of the full ``depth`` cut to the first ``layers`` (the per-layer lists
    transformers' configs check against ``num_hidden_layers``: ``layer_types``, ``num_attention_heads_per_layer``,
    ``gating_types``, ``layer_rope_theta``, a vision tower's ``layer_types``)."""
    if depth < 4 or layers >= depth:  # a short list could be a per-layer one by chance only at tiny depths
        return
    for k, v in list(c.items()):
        if isinstance(v, list) and len(v) == depth:
            c[k] = v[:layers]


def _shrink_states(c: dict) -> None:
    """A recurrent mixer's heads, head sizes, groups and state size made tiny, keeping the ratio of value to key
    heads (the gated delta net) and the conv kernel."""
    if c.get("linear_num_key_heads") and c.get("linear_num_value_heads"):
        c["linear_num_value_heads"] = 2 * (c["linear_num_value_heads"] // c["linear_num_key_heads"])
        c["linear_num_key_heads"] = 2
    for k, v in (("linear_key_head_dim", 16), ("linear_value_head_dim", 8), ("mamba_num_heads", 8),
                 ("mamba_head_dim", 16), ("ssm_state_size", 8), ("chunk_size", 8)):
        if c.get(k):
            c[k] = v
    if c.get("n_groups"):
        c["n_groups"] = min(c["n_groups"], 2)


def _shrink_vision(v: dict) -> dict:
    """A vision tower of one small layer (it is built, never run: the prompts are text)."""
    v = dict(v)
    depth = next((v[k] for k in ("depth", "num_hidden_layers") if isinstance(v.get(k), int)), 0)
    for k in ("depth", "num_hidden_layers", "num_global_layers"):
        if k in v:
            v[k] = 1
    _cut_per_layer(v, depth, 1)
    for k in ("num_heads", "num_attention_heads", "attention_heads"):
        if k in v:
            v[k] = 2
    for k, value in (("hidden_size", 32), ("embed_dim", 32), ("intermediate_size", 32), ("out_hidden_size", 32),
                     ("num_position_embeddings", 16), ("image_size", 56)):
        if k in v:
            v[k] = value
    for k in ("fullatt_block_indexes", "deepstack_visual_indexes", "intermediate_layers_indices"):
        if k in v:
            v[k] = [0]
    if "vision_output_dim" in v:  # Mllama: the last layer and the intermediate ones, concatenated
        v["vision_output_dim"] = v["hidden_size"] * 2
    return v


def _build(cfg: dict, dtype: str = "float32"):
    import torch
    import transformers

    from vramscope.trace.build import equivalent_config

    native, arch = equivalent_config(cfg)
    if native.get("model_type") == "gemma3":  # the language model holds the cache
        native, arch = native["text_config"], "Gemma3ForCausalLM"
    if native.get("model_type") == "llama4":  # likewise (a text-only forward of the whole model fails in 5.24)
        native, arch = native["text_config"], "Llama4ForCausalLM"
    native = {**native, "pad_token_id": 0}  # class defaults (GLM: 151329) lie outside the tiny vocabulary
    config = transformers.AutoConfig.for_model(**native)
    config._attn_implementation = "eager"
    cls = getattr(transformers, arch)
    torch.manual_seed(0)
    try:
        return cls._from_config(config, dtype=getattr(torch, dtype)).eval()
    except TypeError:  # transformers before 4.56 names it torch_dtype
        return cls._from_config(config, torch_dtype=getattr(torch, dtype)).eval()


_PARTS = ("keys", "values", "_quantized_keys", "_quantized_values")


def _storage_bytes(layer) -> int:
    """Bytes of the distinct storages a cache layer's key/value tensors keep alive (and a recurrent layer's conv
    and recurrent states: ``LinearAttentionLayer``; DeepSeek-V4's compressor buffers, entries and overlap)."""
    held = [getattr(layer, name, None) for name in _PARTS]
    for name in ("conv_states", "recurrent_states", "buffer_kv", "buffer_gate", "compressed_kv", "overlap_kv",
                 "overlap_gate"):
        held += list((getattr(layer, name, None) or {}).values())
    return distinct_storage_bytes(t for h in held for t in (h if isinstance(h, tuple) else (h,)))


def _measured(cache) -> list[int]:
    if hasattr(cache, "self_attention_cache"):
        own, cross = cache.self_attention_cache.layers, cache.cross_attention_cache.layers
        return [_storage_bytes(a) + _storage_bytes(b) for a, b in zip(own, cross)]
    return [_storage_bytes(layer) for layer in cache.layers]


def _run(model, cache, prompt: int, encoder: int, steps: int = STEPS):
    """Prefill ``prompt`` tokens then decode STEPS: the per-layer bytes after each."""
    import torch

    g = torch.Generator().manual_seed(1)
    vocab = model.config.get_text_config().vocab_size
    ids = torch.randint(1, vocab, (BATCH, prompt), generator=g)
    kw = {}
    if model.config.is_encoder_decoder:
        if model.config.model_type == "whisper":  # log-mel frames, halved by the encoder's strided conv
            kw["input_features"] = torch.randn(BATCH, model.config.num_mel_bins, 2 * encoder, generator=g)
        else:
            kw["input_ids"] = torch.randint(1, vocab, (BATCH, encoder), generator=g)
        first = {"decoder_input_ids": ids}
        step = lambda nxt: {"decoder_input_ids": nxt}  # noqa: E731
    else:
        first = {"input_ids": ids}
        step = lambda nxt: {"input_ids": nxt}  # noqa: E731
    with torch.no_grad():
        model(**kw, **first, past_key_values=cache, use_cache=True)
        after_prefill = _measured(cache)
        for _ in range(steps):
            nxt = torch.randint(1, vocab, (BATCH, 1), generator=g)
            model(**kw, **step(nxt), past_key_values=cache, use_cache=True)
    return after_prefill, _measured(cache)


def _run_or_known_bug(model, cache, prompt: int, encoder: int, cfg: dict):
    """``_run``; an error transformers itself raises in versions where it is a known bug of theirs is a skip:
    StaticCache could not hold MLA's keys and values of different head sizes (seen in 4.56.0) and DeepseekV2Moe
    lacked ``num_experts`` (5.0.0); both run in 5.14.1 and later."""
    import transformers

    from vramscope.memory.kv_cache import parse_version

    try:
        return _run(model, cache, prompt, encoder)
    except (RuntimeError, AttributeError) as e:
        if "kv_lora_rank" in cfg and parse_version(transformers.__version__) < (5, 14, 1):
            pytest.skip(f"transformers {transformers.__version__} fails on this model itself: {e}")
        raise


def _dynamic(model):
    from transformers import DynamicCache, EncoderDecoderCache

    if model.config.is_encoder_decoder:  # what generate() builds (generation/utils.py)
        return EncoderDecoderCache(DynamicCache(config=model.config), DynamicCache(config=model.config))
    return DynamicCache(config=model.config)


def _ours(cfg: dict, tokens: int, phase: str, cache: str, kv_dtype: str = "fp32", encoder: int = 0) -> list[int]:
    import transformers

    spec = spec_from_config(cfg, "tiny")
    layout = transformers_layout(spec, transformers.__version__, phase, cache, kv_dtype, kv_dtype)
    b = {"fp8": 1.0, "bf16": 2.0}.get(kv_dtype, 4.0)
    return layer_kv_bytes(spec, tokens, BATCH, b, layout, encoder_tokens=encoder)


@pytest.mark.parametrize("prompt", [PROMPT, SHORT])
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_dynamic_cache_bytes_per_layer(entry, prompt):
    cfg = shrink(entry["config"])
    model = _build(cfg)
    encoder = (WHISPER_FRAMES if cfg.get("model_type") == "whisper" else 7) if model.config.is_encoder_decoder else 0
    prefill, decode = _run_or_known_bug(model, _dynamic(model), prompt, encoder, cfg)
    assert prefill == _ours(cfg, prompt, "prefill", "dynamic", encoder=encoder)
    assert decode == _ours(cfg, prompt + STEPS, "decode", "dynamic", encoder=encoder)


# encoder-decoders: dynamic only; DeepSeek-V4's compressor state lives on its own dynamic cache layers:
# transformers 5.24 says they are "not compatible with StaticCache" (DeepseekV4PreTrainedModel), so generate()
# never builds one for it
STATIC = [e for e in ENTRIES if e["config"].get("model_type") not in ("t5", "whisper", "deepseek_v4")]


@pytest.mark.parametrize("entry", STATIC, ids=[e["id"] for e in STATIC])
def test_static_cache_bytes_per_layer(entry):
    from transformers import StaticCache

    cfg = shrink(entry["config"])
    model = _build(cfg)
    length = PROMPT + STEPS
    cache = StaticCache(config=model.config, max_cache_len=length)
    prefill, decode = _run_or_known_bug(model, cache, PROMPT, 0, cfg)
    assert prefill == _ours(cfg, length, "prefill", "static")
    assert decode == _ours(cfg, length, "decode", "static")


def _first(model_type: str, **keys) -> dict:
    return next(e for e in ENTRIES if e["config"].get("model_type") == model_type
                and all(e["config"].get(k) == v for k, v in keys.items()))


FP8 = [_first("llama"), _first("deepseek_v2"), _first("falcon", new_decoder_architecture=True)]


def _fp8_cache(model):
    import transformers
    from transformers import QuantizedCache

    from vramscope.memory.kv_cache import FP8_CACHE_SINCE, parse_version

    if parse_version(transformers.__version__) < FP8_CACHE_SINCE:
        pytest.skip("transformers before 5.21 has no fp8 cache backend")
    return QuantizedCache(backend="fp8", config=model.config.get_text_config(decoder=True))


@pytest.mark.parametrize("entry", FP8, ids=[e["id"] for e in FP8])
def test_fp8_quantized_cache_bytes_per_layer(entry):
    cfg = shrink(entry["config"])
    model = _build(cfg)
    prefill, decode = _run(model, _fp8_cache(model), PROMPT, 0)
    assert prefill == _ours(cfg, PROMPT, "prefill", "dynamic", "fp8")
    assert decode == _ours(cfg, PROMPT + STEPS, "decode", "dynamic", "fp8")


def test_fp8_quantized_cache_refuses_sliding_layers():
    """transformers builds no fp8 cache for a model with sliding layers; vramscope then keeps the windows and says
    so (engines/transformers.py: a_kv_fp8_sliding)."""
    import transformers

    cfg = shrink(_first("gemma3_text")["config"])
    model = _build(cfg)
    with pytest.raises(ValueError, match="only full attention"):
        _fp8_cache(model)
    spec = spec_from_config(cfg, "tiny")
    assert not transformers_layout(spec, transformers.__version__, "decode", "dynamic", "fp8").all_full


@pytest.mark.parametrize("prompt", [3, 8, 12, 16])
def test_deepseek_v4_compressed_caches_in_bf16(prompt):
    """DeepSeek-V4's CSA / HCA layers in bf16, at prompts shorter than the CSA rate, equal to either rate and
    between them, then five decode steps (a window closes on the way): the buffers' storage, the compressed
    entries and the overlap state (its gate float32 while the rest is bf16) equal vramscope's per layer."""
    cfg = shrink(_first("deepseek_v4")["config"])
    model = _build(cfg, "bfloat16")
    assert sorted(set(model.config.layer_types)) == ["compressed_sparse_attention", "heavily_compressed_attention",
                                                     "sliding_attention"]
    prefill, decode = _run(model, _dynamic(model), prompt, 0, steps=5)
    assert prefill == _ours(cfg, prompt, "prefill", "dynamic", "bf16")
    assert decode == _ours(cfg, prompt + 5, "decode", "dynamic", "bf16")


def test_deepseek_v4_static_cache_is_its_dynamic_cache():
    """transformers gives DeepSeek-V4 no static cache (its compressor state lives on its own dynamic layers; the
    static layer table has no compressed attention: ``StaticCache(config=...)`` raises), so ``--cache static``
    counts the dynamic cache."""
    import transformers
    from transformers import StaticCache

    cfg = shrink(_first("deepseek_v4")["config"])
    model = _build(cfg)
    with pytest.raises(KeyError, match="compressed_sparse_attention"):
        StaticCache(config=model.config, max_cache_len=PROMPT + STEPS)
    spec = spec_from_config(cfg, "tiny")
    for phase, tokens in (("prefill", PROMPT), ("decode", PROMPT + STEPS)):
        static = transformers_layout(spec, transformers.__version__, phase, "static", "fp32")
        dynamic = transformers_layout(spec, transformers.__version__, phase, "dynamic", "fp32")
        assert layer_kv_bytes(spec, tokens, BATCH, 4.0, static) == layer_kv_bytes(spec, tokens, BATCH, 4.0, dynamic)


def test_every_catalog_family_is_run():
    families = {e["config"].get("model_type") for e in catalog.entries()} - {"bert", "roberta"}
    assert families == {e["config"].get("model_type") for e in ENTRIES}


#: Gemma 4's cache quirks on the gemma-4-31B-it catalog config: KV-shared layers (num_kv_shared_layers, which
#: transformers 5.24 runs only with per-layer inputs: gemma-4-E2B's hidden_size_per_layer_input and
#: use_double_wide_mlp) store nothing; full-attention layers have their own heads x head size with K=V on or off
GEMMA4_VARIANTS = [(2, True), (3, False), (0, False)]


@pytest.mark.parametrize("shared,k_eq_v", GEMMA4_VARIANTS, ids=[f"shared{s}-keqv{k}" for s, k in GEMMA4_VARIANTS])
def test_gemma4_shared_and_global_layers(shared, k_eq_v):
    cfg = shrink(_first("gemma4")["config"])
    cfg["text_config"].update(num_hidden_layers=6, layer_types=["sliding_attention", "full_attention"] * 3,
                              num_kv_shared_layers=shared, attention_k_eq_v=k_eq_v,
                              hidden_size_per_layer_input=8 if shared else 0, use_double_wide_mlp=bool(shared),
                              vocab_size_per_layer_input=128)
    model = _build(cfg)
    prefill, decode = _run(model, _dynamic(model), PROMPT, 0)
    assert prefill == _ours(cfg, PROMPT, "prefill", "dynamic")
    assert decode == _ours(cfg, PROMPT + STEPS, "decode", "dynamic")
    assert prefill.count(0) == shared  # the shared layers' DummyLayer holds nothing
    assert prefill[1] != prefill[0]  # the global layer's own shape


def test_gemma4_layer_shapes_reach_the_engines_and_tensor_parallel():
    """The per-layer shapes the real cache matched are what llama.cpp's per-layer bytes and a tensor-parallel
    rank's slice use (an assumption for those engines, stated in the output), not the scalar head fields."""
    from vramscope.engines.llamacpp import layer_cache_bytes
    from vramscope.memory.parallel import tp_shard_spec

    spec = spec_from_config(_first("gemma4")["config"], "gemma-4-31B-it")
    assert spec.layer_kv[:6] == ((16, 256),) * 5 + ((4, 512),)
    kv_sliding, _ = layer_cache_bytes(spec, 0, 100, 1, 1, 1, 2.0, 2.0, 1)
    kv_full, _ = layer_cache_bytes(spec, 5, 100, 1, 1, 1, 2.0, 2.0, 1)
    assert (kv_sliding, kv_full) == (100 * 2 * 16 * 256 * 2, 100 * 2 * 4 * 512 * 2)
    assert tp_shard_spec(spec, 2).layer_kv[:6] == ((8, 256),) * 5 + ((2, 512),)


def test_sliding_layer_shows_window_minus_one_but_holds_window():
    """The figure vramscope counts is the storage: DynamicSlidingWindowLayer keeps a view of the last
    ``sliding_window - 1`` tokens of a ``sliding_window``-token concatenation."""
    cfg = shrink(_first("mistral", sliding_window=4096)["config"])
    model = _build(cfg)
    cache = _dynamic(model)
    _run(model, cache, PROMPT, 0)
    layer = cache.layers[0]
    assert layer.keys.shape[-2] == WINDOW - 1
    assert layer.keys.untyped_storage().nbytes() == layer.keys[..., :1, :].numel() * 4 * WINDOW


def test_installed_version_is_read_without_importing():
    import transformers

    from vramscope.memory.kv_cache import _installed

    assert _installed() == transformers.__version__
