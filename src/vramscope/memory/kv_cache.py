"""KV cache: the keys and values kept for every past token, per layer.

For standard attention (MHA, GQA, MQA) each layer keeps ``2 × kv_heads × head_dim`` values per token, with
``head_dim`` taken from the config when it is explicit (Gemma, Qwen3, Mistral-Nemo) rather than
``hidden / heads``. Sliding-window layers keep at most ``sliding_window`` tokens. Summed over layers:

    kv_bytes = batch × Σ_layers min(tokens, window_l) × 2 × kv_heads × head_dim × bytes_per_value

MLA (DeepSeek-V2/V3) depends on the engine: vLLM and llama.cpp cache the compressed latent
(``kv_lora_rank + qk_rope_head_dim`` values per token and layer, arXiv 2405.04434 §2.1.2), while transformers
decompresses and caches per-head keys (``qk_nope + qk_rope`` dims) and values (``v_head_dim``)
(``modeling_deepseek_v3.py``). Encoder-decoder models add a cross-attention cache of the encoder length.
Encoder-only models keep no cache.

Sources: Llama-2-7B fp16 at 4,096 tokens is 32 × 4096 × 2 × 32 × 128 × 2 B = 2 GiB exactly; vLLM
``vllm/v1/kv_cache_interface.py`` (``page_size_bytes``), transformers ``cache_utils.py`` (``DynamicCache``).
"""

from __future__ import annotations

from ..model.spec import SLIDING, ModelSpec

#: bytes per cached value for each --kv-dtype; llama.cpp block types are size-per-block / block-length
KV_DTYPE_BYTES = {
    "fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0, "int8": 1.0,
    "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32,
}


def values_per_token(spec: ModelSpec, layer: int, latent_mla: bool) -> int:
    """Cached values (keys + values) per token in one layer."""
    if spec.mla is not None:
        m = spec.mla
        if latent_mla:
            return m.kv_lora_rank + m.qk_rope_head_dim
        return spec.num_heads * (m.qk_head_dim + m.v_head_dim)
    return 2 * spec.num_kv_heads * spec.head_dim


def kv_bytes_per_token(spec: ModelSpec, bytes_per_value: float, layers: int | None = None, *,
                       latent_mla: bool = False) -> int:
    """Cached bytes per token over ``layers`` layers (all of them by default), no sliding-window cap: what a
    paged engine (vLLM) reserves a token's block slot for."""
    n = spec.num_layers if layers is None else layers
    return int(n * values_per_token(spec, 0, latent_mla) * bytes_per_value)


def kv_cache_bytes(spec: ModelSpec, tokens: int, batch: int, bytes_per_value: float, *,
                   latent_mla: bool = False, cap_sliding: bool = True, encoder_tokens: int = 0) -> int:
    """Exact KV cache bytes for ``batch`` sequences of ``tokens`` tokens (formula in the module docstring)."""
    if spec.kind == "encoder":
        return 0
    n_layers = spec.num_decoder_layers if spec.kind == "encoder-decoder" else spec.num_layers
    # every layer caches the same values per token; sliding-window layers keep at most the window
    sliding = 0
    if cap_sliding and spec.sliding_window:
        sliding = spec.layer_types[:n_layers].count(SLIDING) if spec.layer_types else n_layers
    kept = (n_layers - sliding) * tokens + sliding * min(tokens, spec.sliding_window or 0)
    values = kept * values_per_token(spec, 0, latent_mla)
    if spec.kind == "encoder-decoder":
        values += n_layers * encoder_tokens * 2 * spec.num_kv_heads * spec.head_dim
    return int(batch * values * bytes_per_value)
