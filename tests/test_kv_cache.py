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
