"""llama.cpp (and Ollama, which embeds it): model, KV and compute buffers per device.

What llama.cpp prints at load time, and how vramscope computes each (``src/llama-model.cpp``,
``src/llama-kv-cache.cpp``, ``src/llama-context.cpp``, ``ggml/src/ggml-alloc.c``):

* ``CUDA0 model buffer``: the tensors of the offloaded layers. With ``-ngl N`` the last ``N`` layers run on the
  GPU (``i_gpu_start = n_layer - N``); the output layer joins them when ``N > n_layer``; the token embedding
  always stays in host memory (the input layer runs on the CPU). Per-tensor types come from the GGUF header, or
  without a file from llama.cpp's quantization mix (``memory/gguf_mix.py``).
* ``KV buffer``: ``n_ctx`` cells per layer, each ``n_embd_k_gqa`` keys of ``--cache-type-k`` and
  ``n_embd_v_gqa`` values of ``--cache-type-v`` (f16 by default; q8_0 is 34 bytes per 32 values). Layers on
  the GPU keep their cache there. Sliding-window layers (Gemma 2/3, ``llama_kv_cache_iswa``) keep
  ``n_swa + n_ubatch`` cells. MLA (DeepSeek) caches the latent: ``kv_lora_rank + n_rot`` per cell for K and
  ``kv_lora_rank`` for V.
* ``compute buffer``: ggml's graph allocator reuses memory, so the buffer is the largest set of f32
  intermediates alive at once for one micro-batch of ``n_ubatch`` tokens. Without flash attention that is the
  attention scores (``n_kv × n_ubatch × n_head``) plus the KQ mask (``n_kv × n_ubatch``) and four
  ``n_embd × n_ubatch`` activations; or the logits (``n_vocab × n_ubatch``) plus one activation when the
  output layer is on the GPU; or the FFN (two ``n_ff × n_ubatch`` plus two activations). With ``-fa`` the
  scores are never materialized (an f16 mask ``n_kv × n_ubatch`` remains). Checked against llama.cpp's printed
  buffers for LLaMA-7B (164.00 MiB at n_ctx 2048, 70.50 MiB at 512; ``docs/accuracy.md``).
* plus the CUDA context and cuBLAS workspace (``memory/overhead.py``).
"""

from __future__ import annotations

import re
from typing import Optional

from ..memory.gguf_mix import gguf_tensors
from ..memory.kv_cache import KV_DTYPE_BYTES
from ..model.spec import SLIDING, ModelSpec
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..workload import Workload

_BLK = re.compile(r"(?:^|\.)(?:blk|layers|h|layer|block)\.(\d+)\.")


def _layer_of(name: str) -> Optional[int]:
    m = _BLK.search(name)
    return int(m.group(1)) if m else None


def _tensor_bytes(model: ResolvedModel, w: Workload) -> list[tuple[str, Optional[int], int]]:
    """(name, layer, bytes) of every tensor as llama.cpp holds it."""
    if model.kind == "gguf" and model.stored is not None and w.quant == "none":
        return [(t.name, _layer_of(t.name), t.nbytes) for t in model.stored]
    ftype = w.quant if w.quant != "none" else {"fp32": "F32", "bf16": "BF16"}.get(w.dtype or "", "F16")
    return [(t.name, t.layer, t.nbytes) for t in gguf_tensors(model.spec, ftype)]


def _is_input(name: str) -> bool:
    return name in ("token_embd.weight", "model.embed_tokens.weight", "transformer.wte.weight",
                    "transformer.word_embeddings.weight", "model.language_model.embed_tokens.weight") \
        or name.startswith(("token_embd", "per_layer_token_embd"))


def llamacpp_inference(model: ResolvedModel, w: Workload, notes: list[Assumption]) -> tuple[dict, dict]:
    """Phases (``load``, ``prefill``) and the engine fields (buffers per device)."""
    spec = model.spec
    n_layer = spec.num_layers
    ngl = n_layer + 1 if w.n_gpu_layers is None else min(w.n_gpu_layers, n_layer + 1)
    first_gpu = n_layer - min(ngl, n_layer)
    output_on_gpu = ngl > n_layer
    gpu_model = cpu_model = 0
    for name, layer, nbytes in _tensor_bytes(model, w):
        if _is_input(name):
            cpu_model += nbytes
        elif layer is None:
            if output_on_gpu:
                gpu_model += nbytes
            else:
                cpu_model += nbytes
        elif layer >= first_gpu:
            gpu_model += nbytes
        else:
            cpu_model += nbytes
    n_ctx = w.seq
    kv_default = "f16" if (w.kv_dtype in (None, "fp16", "bf16")) else w.kv_dtype
    ctk = w.cache_type_k or kv_default
    ctv = w.cache_type_v or kv_default
    bk, bv = KV_DTYPE_BYTES.get(ctk, 2.0), KV_DTYPE_BYTES.get(ctv, 2.0)
    gpu_kv = cpu_kv = 0
    for layer in range(n_layer):
        cells = n_ctx
        if spec.sliding_window and spec.layer_type(layer) == SLIDING:
            cells = min(n_ctx, spec.sliding_window + w.ubatch)
        if spec.mla is not None:
            k_dim = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim
            v_dim = 0 if w.flash_attn else spec.mla.kv_lora_rank
        else:
            k_dim = v_dim = spec.num_kv_heads * spec.head_dim
        nbytes = int(cells * (k_dim * bk + v_dim * bv))
        if layer >= first_gpu:
            gpu_kv += nbytes
        else:
            cpu_kv += nbytes
    gpu_compute = compute_buffer(spec, n_ctx, w.ubatch, w.flash_attn, output_on_gpu) if ngl > 0 else 0
    cpu_compute = int(w.ubatch * 4 * (spec.hidden_size * 2 + (0 if output_on_gpu else spec.vocab_size)))
    notes.append(Assumption("a_llamacpp", {"ngl": min(ngl, n_layer), "n_layer": n_layer, "ctx": n_ctx,
                                           "ctk": ctk, "ctv": ctv, "ub": w.ubatch,
                                           "fa": "on" if w.flash_attn else "off"}))
    phases = {"load": {"weights": gpu_model},
              "prefill": {"weights": gpu_model, "kv_cache": gpu_kv, "activations": gpu_compute}}
    engine = {"name": "llama.cpp", "n_gpu_layers": min(ngl, n_layer), "output_on_gpu": output_on_gpu,
              "n_ctx": n_ctx, "n_ubatch": w.ubatch, "cache_type_k": ctk, "cache_type_v": ctv,
              "flash_attn": w.flash_attn,
              "gpu": {"model_buffer_bytes": gpu_model, "kv_buffer_bytes": gpu_kv, "compute_buffer_bytes": gpu_compute},
              "host": {"model_buffer_bytes": cpu_model, "kv_buffer_bytes": cpu_kv,
                       "compute_buffer_bytes": cpu_compute},
              "host_bytes": cpu_model + cpu_kv + cpu_compute}
    return phases, engine


def compute_buffer(spec: ModelSpec, n_ctx: int, n_ubatch: int, flash_attn: bool, output_on_gpu: bool) -> int:
    """The GPU compute buffer for one micro-batch (formula in the module docstring)."""
    h, ub = spec.hidden_size, n_ubatch
    n_kv = -(-n_ctx // 256) * 256 if flash_attn else n_ctx
    act = h * ub * 4
    if flash_attn:
        attention = n_kv * ub * 2 + 4 * act
    else:
        attention = n_kv * ub * (spec.num_heads + 1) * 4 + 4 * act
    ffn_width = spec.intermediate_size
    if spec.moe is not None:
        ffn_width = max(ffn_width if spec.moe.dense_layers else 0,
                        spec.moe.experts_per_token * spec.moe.expert_intermediate_size)
    ffn = (2 * ffn_width) * ub * 4 + 2 * act
    logits = (spec.vocab_size * ub * 4 + act) if output_on_gpu else 0
    return int(max(attention, ffn, logits))
