"""KV cache bytes are exact: GQA, explicit head_dim, sliding windows, MLA, KV dtypes."""

import pytest

from vramscope.memory.kv_cache import KV_DTYPE_BYTES, kv_cache_bytes
from vramscope.sources import resolve


def kv(name, tokens, batch=1, dtype="fp16", **kw):
    return kv_cache_bytes(resolve(name).spec, tokens, batch, KV_DTYPE_BYTES[dtype], **kw)


def test_llama2_7b_fp16_4096():
    assert kv("meta-llama/Llama-2-7b-hf", 4096) == 2_147_483_648


def test_llama3_8b_fp16_8192():
    assert kv("meta-llama/Meta-Llama-3-8B", 8192) == 1_073_741_824


def test_batch_scales_linearly():
    assert kv("llama-3-8b", 1000, batch=7) == 7 * kv("llama-3-8b", 1000)


def test_gemma2_explicit_head_dim_and_sliding_window():
    # 42 layers alternate sliding (4096) and global; 8 KV heads × head_dim 256
    per_token_layer = 2 * 8 * 256 * 2
    assert kv("google/gemma-2-9b", 8192) == per_token_layer * (21 * 4096 + 21 * 8192)
    assert kv("google/gemma-2-9b", 8192, cap_sliding=False) == per_token_layer * 42 * 8192


def test_qwen3_explicit_head_dim():
    spec = resolve("Qwen/Qwen3-8B").spec
    assert spec.head_dim == 128 and spec.num_kv_heads == 8 and spec.num_layers == 36
    assert kv("Qwen/Qwen3-8B", 4096) == 36 * 4096 * 2 * 8 * 128 * 2


def test_deepseek_mla_latent_vs_decompressed():
    spec = resolve("deepseek-ai/DeepSeek-V3").spec
    # latent: (kv_lora_rank 512 + rope 64) per token and layer, 61 layers
    assert kv("deepseek-ai/DeepSeek-V3", 1000, latent_mla=True) == 61 * 1000 * 576 * 2
    # transformers: 128 heads × (k 192 + v 128)
    assert kv("deepseek-ai/DeepSeek-V3", 1000) == 61 * 1000 * 128 * (192 + 128) * 2
    assert spec.mla.qk_head_dim == 192


def test_fp8_and_q8_0_kv():
    base = kv("llama-3-8b", 4096)
    assert kv("llama-3-8b", 4096, dtype="fp8") == base // 2
    assert kv("llama-3-8b", 4096, dtype="q8_0") == int(32 * 4096 * 2 * 8 * 128 * 34 / 32)


def test_encoder_has_no_cache_and_t5_has_cross_attention():
    assert kv("bert-base-uncased", 512) == 0
    t5 = kv("t5-base", 100, encoder_tokens=200)
    assert t5 == 12 * (100 + 200) * 2 * 12 * 64 * 2


@pytest.mark.parametrize("name", ["mistralai/Mistral-7B-v0.1"])
def test_mistral_window(name):
    spec = resolve(name).spec
    assert spec.sliding_window == 4096
    assert kv(name, 8192) == kv(name, 4096)


# ---- transformers' layout per version (memory/kv_cache.py: transformers_layout; tests/test_kv_real.py runs the
# installed version for real) -----------------------------------------------------------------------------------

def _tf(name, version, phase, tokens=4096, cache="dynamic", kv_dtype=""):
    from vramscope.memory.kv_cache import transformers_layout

    spec = resolve(name).spec
    layout = transformers_layout(spec, version, phase, cache, kv_dtype)
    return kv_cache_bytes(spec, tokens, 1, KV_DTYPE_BYTES[kv_dtype or "bf16"], layout=layout)


def test_sliding_layers_by_version():
    # Gemma 3 1B: 22 of 26 layers slide over 512 tokens, 1 KV head of 256
    per_token_layer = 2 * 1 * 256 * 2
    assert _tf("gemma-3-1b", "5.24.0", "prefill") == 26 * 4096 * per_token_layer
    assert _tf("gemma-3-1b", "5.24.0", "decode") == (4 * 4096 + 22 * 512) * per_token_layer
    assert _tf("gemma-3-1b", "4.56.0", "decode") == (4 * 4096 + 22 * 512) * per_token_layer
    assert _tf("gemma-3-1b", "4.55.4", "decode") == 26 * 4096 * per_token_layer  # no DynamicSlidingWindowLayer
    assert _tf("gemma-3-1b", "5.24.0", "prefill", cache="static") == (4 * 4096 + 22 * 512) * per_token_layer


def test_mla_latent_from_5_15():
    latent = 27 * 4096 * (512 + 64) * 2
    heads = 27 * 4096 * 16 * (192 + 128) * 2
    assert _tf("deepseek-v2-lite", "5.15.0", "decode") == latent
    assert _tf("deepseek-v2-lite", "5.14.1", "decode") == heads


def test_falcon_new_architecture_broadcasts_kv_heads():
    assert resolve("falcon-40b").spec.kv_broadcast and not resolve("falcon-7b").spec.kv_broadcast
    assert _tf("falcon-40b", "5.24.0", "decode", 2048) == 60 * 2048 * 2 * 128 * 64 * 2
    assert kv("falcon-40b", 2048) == 60 * 2048 * 2 * 8 * 64 * 2  # vLLM / llama.cpp: the real 8 KV heads


def test_legacy_tuples_hold_the_previous_step():
    one = 32 * 2 * 8 * 128 * 2
    assert _tf("llama-3-8b", "4.41.2", "decode") == (4096 + 4095) * one
    assert _tf("llama-3-8b", "4.41.2", "prefill") == 4096 * one
    assert _tf("llama-3-8b", "4.42.0", "decode") == 4096 * one


def test_fp8_quantized_cache_scales_and_windows():
    one = 32 * 2 * 8 * 128
    assert _tf("llama-3-8b", "5.21.0", "decode", kv_dtype="fp8") == 4096 * one + 32 * 8
    assert _tf("llama-3-8b", "5.20.0", "decode", kv_dtype="fp8") == 4096 * one
    # QuantizedCache refuses sliding layers: the dynamic layout stays
    assert _tf("gemma-3-1b", "5.24.0", "decode", kv_dtype="fp8") == (4 * 4096 + 22 * 512) * 2 * 256


def test_transformers_version_is_named_installed_or_modelled(monkeypatch):
    from vramscope.memory import kv_cache

    monkeypatch.delenv("VRAMSCOPE_TRANSFORMERS_VERSION", raising=False)
    assert kv_cache.transformers_version("4.57.1") == "4.57.1"
    monkeypatch.setenv("VRAMSCOPE_TRANSFORMERS_VERSION", "5.0.0")
    assert kv_cache.transformers_version() == "5.0.0"
    monkeypatch.setenv("VRAMSCOPE_TRANSFORMERS_VERSION", "not a version")
    assert kv_cache.parse_version(kv_cache.transformers_version()) is not None
    assert kv_cache.parse_version("5.0.0rc1") == (5, 0, 0) and kv_cache.parse_version("x") is None


def test_q_lora_rank_absent_is_the_config_class_default():
    from vramscope.sources.hf_config import spec_from_config

    cfg = dict(resolve("deepseek-v2-lite").hf_config)
    assert resolve("deepseek-v2-lite").spec.mla.q_lora_rank is None  # explicit null: no query compression
    cfg.pop("q_lora_rank")
    assert spec_from_config(cfg, "x").mla.q_lora_rank == 1536  # DeepseekV2Config's default


def test_transformers_version_option():
    import vramscope
    from vramscope.errors import VramscopeError

    old = vramscope.estimate("deepseek-v2-lite", transformers_version="5.14.1")
    new = vramscope.estimate("deepseek-v2-lite", transformers_version="5.15.0")
    assert old.phases["decode"]["kv_cache"] == 27 * 4096 * 16 * (192 + 128) * 2
    assert new.phases["decode"]["kv_cache"] == 27 * 4096 * (512 + 64) * 2
    assert any("5.14.1" in str(a) for a in old.to_dict()["assumptions"])
    with pytest.raises(VramscopeError, match="transformers version"):
        vramscope.estimate("llama-3-8b", transformers_version="latest")
