"""Realistic GGUF files for the tests, written with gguf-py (the package llama.cpp's ``convert_hf_to_gguf.py``
uses), and an independent reader to check vramscope against.

Each model has the real vocabulary (32,000 to 256,000 tokens, with the token types, the scores of a
SentencePiece vocabulary or the merges of a BPE one), the ``general.*`` and ``<arch>.*`` keys the converter
writes (``gguf.constants.Keys``), real tensor names (``gguf.constants.TENSOR_NAMES``) with the real per-layer
shapes, and the ggml types ``llama-quantize`` gives them (Q4_K / Q6_K / Q8_0 mixes, F32 norms and biases, the
Q5_0 / Q8_0 fallbacks for rows that are not a multiple of 256). Only the number of blocks is reduced (2–4 of
the real 27–60), so ``block_count`` is the reduced count.

The files are honest: header, tensor records, offsets and alignment padding are byte for byte what gguf-py
writes for these tensors, and the file has the full length of its data section. The data itself is never
written: the section is a hole in a sparse file (zeros on read), so the 6 GB DeepSeek-V2 fixture takes the
disk space of its 4 MB header.

:class:`Writer` is ``gguf.GGUFWriter`` packing arrays longer than 1,024 elements in one go (the same bytes: a
test compares the two). :class:`RefReader` is ``gguf.GGUFReader`` with one change for speed: metadata arrays
longer than 1,024 elements are walked in bulk instead of one numpy view per element (the stock reader takes
~16 s over Llama 3's 408,000 tokens and merges). Tensor records and scalar metadata are read by gguf-py's own
code; the tests check that the override finds the same fields at the same offsets as the stock reader.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

F32, F16, Q4_K, Q5_0, Q6_K, Q8_0 = Q.F32, Q.F16, Q.Q4_K, Q.Q5_0, Q.Q6_K, Q.Q8_0
ALIGN = gguf.GGUF_DEFAULT_ALIGNMENT
BULK = 1024  # arrays longer than this are packed / walked in bulk (Writer, RefReader)


@dataclass
class Model:
    """One fixture: what it is modelled on, its keys (beyond the vocabulary) and its tensors."""

    name: str
    arch: str
    based_on: str
    real_layers: int
    layers: int
    vocab: int
    tokenizer: str  # "llama" (SentencePiece: scores) or "gpt2" (BPE: merges)
    merges: int
    file_type: int
    keys: Callable[[gguf.GGUFWriter], None]
    tensors: list[tuple[str, tuple[int, ...], Q]] = field(default_factory=list)  # numpy order (outer first)


def _pad(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _fallback(row: int, qt: Q) -> Q:
    """llama.cpp's ``tensor_type_fallback`` for a row that is not a multiple of the type's block."""
    if row % gguf.GGML_QUANT_SIZES[qt][0] == 0:
        return qt
    return {Q4_K: Q5_0, Q6_K: Q8_0}.get(qt, F16)


def _use_more_bits(i: int, n: int) -> bool:  # llama-quant.cpp
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


class _Tensors(list):
    def add(self, name: str, shape: tuple[int, ...], qt: Q) -> None:
        if len(shape) == 1:
            qt = F32  # norms and biases stay F32
        self.append((name, shape, _fallback(shape[-1], qt)))


def _attn_std(t: _Tensors, i: int, hidden: int, heads: int, kv: int, hd: int, mix: dict, bias: bool = False) -> None:
    t.add(f"blk.{i}.attn_norm.weight", (hidden,), F32)
    t.add(f"blk.{i}.attn_q.weight", (heads * hd, hidden), mix["q"])
    t.add(f"blk.{i}.attn_k.weight", (kv * hd, hidden), mix["k"])
    t.add(f"blk.{i}.attn_v.weight", (kv * hd, hidden), mix["v"](i))
    if bias:
        t.add(f"blk.{i}.attn_q.bias", (heads * hd,), F32)
        t.add(f"blk.{i}.attn_k.bias", (kv * hd,), F32)
        t.add(f"blk.{i}.attn_v.bias", (kv * hd,), F32)
    t.add(f"blk.{i}.attn_output.weight", (hidden, heads * hd), mix["o"])


def _ffn(t: _Tensors, i: int, hidden: int, ff: int, mix: dict, norm: str = "ffn_norm") -> None:
    t.add(f"blk.{i}.{norm}.weight", (hidden,), F32)
    t.add(f"blk.{i}.ffn_gate.weight", (ff, hidden), mix["up"])
    t.add(f"blk.{i}.ffn_up.weight", (ff, hidden), mix["up"])
    t.add(f"blk.{i}.ffn_down.weight", (hidden, ff), mix["down"](i))


def _q4_k_m(real_layers: int, n_expert: int = 0) -> dict:
    """The Q4_K_M mix of llama-quant.cpp for the kinds of tensors these models have."""
    more = lambda i: Q6_K if _use_more_bits(i, real_layers) else Q4_K  # noqa: E731
    mix = {"q": Q4_K, "k": Q4_K, "v": more, "o": Q4_K, "up": Q4_K, "down": more, "emb": Q4_K, "out": Q6_K}
    if n_expert == 8:  # the 8-expert special case: attn_v and attn_k Q8_0
        mix.update(k=Q8_0, v=lambda i: Q8_0)
    return mix


def _common(w: gguf.GGUFWriter, m: "Model", ctx: int, hidden: int, ff: int, heads: int, kv: Optional[int],
            rope_dims: int, rope_base: float, eps: float) -> None:
    w.add_name(m.based_on)
    w.add_basename(m.based_on.split("-")[0])
    w.add_size_label(m.based_on.split("-")[-1])
    w.add_license("other")
    w.add_file_type(m.file_type)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(ctx)
    w.add_embedding_length(hidden)
    w.add_block_count(m.layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    if kv is not None:
        w.add_head_count_kv(kv)
    w.add_rope_dimension_count(rope_dims)
    w.add_rope_freq_base(rope_base)
    w.add_layer_norm_rms_eps(eps)


def write_sparse(m: "Model", path: Path) -> Path:
    """:func:`write` for a test: the file's data section is a sparse hole, and the test is skipped where the file
    system keeps no sparse files."""
    import pytest

    if not sparse_files_work(path.parent):
        pytest.skip("this file system keeps no sparse files (the fixture's data section is a hole of gigabytes)")
    return write(m, path)


def llama2_7b() -> Model:
    m = Model("llama2-7b", "llama", "Llama-2-7B", 32, 4, 32000, "llama", 0, gguf.LlamaFileType.MOSTLY_Q4_K_M,
              lambda w: _common(w, m, 4096, 4096, 11008, 32, 32, 128, 10000.0, 1e-5))
    mix, t = _q4_k_m(32), _Tensors()
    t.add("token_embd.weight", (32000, 4096), mix["emb"])
    for i in range(m.layers):
        _attn_std(t, i, 4096, 32, 32, 128, mix)
        _ffn(t, i, 4096, 11008, mix)
    t.add("output_norm.weight", (4096,), F32)
    t.add("output.weight", (32000, 4096), mix["out"])
    m.tensors = t
    return m


def llama3_8b() -> Model:
    m = Model("llama3-8b", "llama", "Llama-3.1-8B", 32, 4, 128256, "gpt2", 280147, gguf.LlamaFileType.MOSTLY_Q4_K_M,
              lambda w: _common(w, m, 131072, 4096, 14336, 32, 8, 128, 500000.0, 1e-5))
    mix, t = _q4_k_m(32), _Tensors()
    t.add("rope_freqs.weight", (64,), F32)  # Llama 3.1's rope scaling factors
    t.add("token_embd.weight", (128256, 4096), mix["emb"])
    for i in range(m.layers):
        _attn_std(t, i, 4096, 32, 8, 128, mix)
        _ffn(t, i, 4096, 14336, mix)
    t.add("output_norm.weight", (4096,), F32)
    t.add("output.weight", (128256, 4096), mix["out"])
    m.tensors = t
    return m


def qwen2_7b() -> Model:
    m = Model("qwen2-7b", "qwen2", "Qwen2-7B", 28, 3, 152064, "gpt2", 151387, gguf.LlamaFileType.MOSTLY_Q8_0,
              lambda w: _common(w, m, 32768, 3584, 18944, 28, 4, 128, 1000000.0, 1e-6))
    mix = {k: Q8_0 for k in ("q", "k", "o", "up", "emb", "out")}
    mix.update(v=lambda i: Q8_0, down=lambda i: Q8_0)
    t = _Tensors()
    t.add("token_embd.weight", (152064, 3584), Q8_0)
    for i in range(m.layers):
        _attn_std(t, i, 3584, 28, 4, 128, mix, bias=True)
        _ffn(t, i, 3584, 18944, mix)
    t.add("output_norm.weight", (3584,), F32)
    t.add("output.weight", (152064, 3584), Q8_0)
    m.tensors = t
    return m


def gemma2_9b() -> Model:
    def keys(w: gguf.GGUFWriter) -> None:
        _common(w, m, 8192, 3584, 14336, 16, 8, 256, 10000.0, 1e-6)
        w.add_key_length(256)
        w.add_value_length(256)
        w.add_sliding_window(4096)
        w.add_attn_logit_softcapping(50.0)
        w.add_final_logit_softcapping(30.0)

    m = Model("gemma2-9b", "gemma2", "Gemma-2-9B", 42, 4, 256000, "llama", 0, gguf.LlamaFileType.MOSTLY_Q6_K, keys)
    mix = {k: Q6_K for k in ("q", "k", "o", "up")}
    mix.update(v=lambda i: Q6_K, down=lambda i: Q6_K)
    t = _Tensors()
    t.add("token_embd.weight", (256000, 3584), Q6_K)  # tied: also the output layer
    for i in range(m.layers):
        _attn_std(t, i, 3584, 16, 8, 256, mix)
        t.add(f"blk.{i}.post_attention_norm.weight", (3584,), F32)
        _ffn(t, i, 3584, 14336, mix)
        t.add(f"blk.{i}.post_ffw_norm.weight", (3584,), F32)
    t.add("output_norm.weight", (3584,), F32)
    m.tensors = t
    return m


def mixtral_8x7b() -> Model:
    def keys(w: gguf.GGUFWriter) -> None:
        _common(w, m, 32768, 4096, 14336, 32, 8, 128, 1000000.0, 1e-5)
        w.add_expert_count(8)
        w.add_expert_used_count(2)

    m = Model("mixtral-8x7b", "llama", "Mixtral-8x7B", 32, 2, 32000, "llama", 0, gguf.LlamaFileType.MOSTLY_Q4_K_M,
              keys)
    mix, t = _q4_k_m(32, n_expert=8), _Tensors()
    t.add("token_embd.weight", (32000, 4096), mix["emb"])
    for i in range(m.layers):
        _attn_std(t, i, 4096, 32, 8, 128, mix)
        t.add(f"blk.{i}.ffn_norm.weight", (4096,), F32)
        t.add(f"blk.{i}.ffn_gate_inp.weight", (8, 4096), F32)  # the router stays F32
        t.add(f"blk.{i}.ffn_gate_exps.weight", (8, 14336, 4096), Q4_K)
        t.add(f"blk.{i}.ffn_up_exps.weight", (8, 14336, 4096), Q4_K)
        t.add(f"blk.{i}.ffn_down_exps.weight", (8, 4096, 14336), mix["down"](i))
    t.add("output_norm.weight", (4096,), F32)
    t.add("output.weight", (32000, 4096), mix["out"])
    m.tensors = t
    return m


def _deepseek_moe(t: _Tensors, i: int, hidden: int, n_exp: int, eff: int, n_shared: int, mix: dict) -> None:
    t.add(f"blk.{i}.ffn_norm.weight", (hidden,), F32)
    t.add(f"blk.{i}.ffn_gate_inp.weight", (n_exp, hidden), F32)
    t.add(f"blk.{i}.ffn_gate_exps.weight", (n_exp, eff, hidden), Q4_K)
    t.add(f"blk.{i}.ffn_up_exps.weight", (n_exp, eff, hidden), Q4_K)
    t.add(f"blk.{i}.ffn_down_exps.weight", (n_exp, hidden, eff), mix["down"](i))
    t.add(f"blk.{i}.ffn_gate_shexp.weight", (n_shared * eff, hidden), Q4_K)
    t.add(f"blk.{i}.ffn_up_shexp.weight", (n_shared * eff, hidden), Q4_K)
    t.add(f"blk.{i}.ffn_down_shexp.weight", (hidden, n_shared * eff), mix["down"](i))


def deepseek_v2() -> Model:
    """DeepSeek-V2 (236B) as llama.cpp converts it since 2025: MLA as MQA over the latent (head_count_kv 1,
    key_length kv_lora_rank + rope = 576, value_length 512, per-head sizes under ``*_mla``), attn_kv_b split into
    attn_k_b / attn_v_b (3-D, one slice per head)."""
    h, heads, q_lora, kv_lora, rope, nope, v, ff, eff, n_exp, n_sh = 5120, 128, 1536, 512, 64, 128, 128, 12288, \
        1536, 160, 2

    def keys(w: gguf.GGUFWriter) -> None:
        _common(w, m, 163840, h, ff, heads, 1, rope, 10000.0, 1e-6)
        w.add_vocab_size(102400)
        w.add_leading_dense_block_count(1)
        w.add_q_lora_rank(q_lora)
        w.add_kv_lora_rank(kv_lora)
        w.add_key_length(kv_lora + rope)
        w.add_value_length(kv_lora)
        w.add_key_length_mla(nope + rope)
        w.add_value_length_mla(v)
        w.add_expert_feed_forward_length(eff)
        w.add_expert_count(n_exp)
        w.add_expert_shared_count(n_sh)
        w.add_expert_used_count(6)
        w.add_expert_weights_scale(16.0)
        w.add_expert_gating_func(gguf.ExpertGatingFuncType.SOFTMAX)

    m = Model("deepseek-v2", "deepseek2", "DeepSeek-V2-236B", 60, 3, 102400, "gpt2", 99757,
              gguf.LlamaFileType.MOSTLY_Q4_K_M, keys)
    mix, t = _q4_k_m(60), _Tensors()
    t.add("token_embd.weight", (102400, h), mix["emb"])
    for i in range(m.layers):
        t.add(f"blk.{i}.attn_norm.weight", (h,), F32)
        t.add(f"blk.{i}.attn_q_a.weight", (q_lora, h), Q4_K)
        t.add(f"blk.{i}.attn_q_a_norm.weight", (q_lora,), F32)
        t.add(f"blk.{i}.attn_q_b.weight", (heads * (nope + rope), q_lora), Q4_K)
        t.add(f"blk.{i}.attn_kv_a_mqa.weight", (kv_lora + rope, h), Q4_K)
        t.add(f"blk.{i}.attn_kv_a_norm.weight", (kv_lora,), F32)
        t.add(f"blk.{i}.attn_k_b.weight", (heads, kv_lora, nope), Q4_K)  # rows of 128: Q4_K falls back to Q5_0
        t.add(f"blk.{i}.attn_v_b.weight", (heads, v, kv_lora), mix["v"](i))
        t.add(f"blk.{i}.attn_output.weight", (h, heads * v), Q4_K)
        if i == 0:
            _ffn(t, i, h, ff, mix)
        else:
            _deepseek_moe(t, i, h, n_exp, eff, n_sh, mix)
    t.add("output_norm.weight", (h,), F32)
    t.add("output.weight", (102400, h), mix["out"])
    m.tensors = t
    return m


def deepseek_v2_lite_legacy() -> Model:
    """DeepSeek-V2-Lite (16B) as llama.cpp converted it before 2025: per-head MLA keys (head_count_kv 16,
    key_length 192, value_length 128), one attn_kv_b, no q LoRA; 10944 and 1408 wide rows take the fallbacks."""
    h, heads, kv_lora, rope, nope, v, ff, eff, n_exp, n_sh = 2048, 16, 512, 64, 128, 128, 10944, 1408, 64, 2

    def keys(w: gguf.GGUFWriter) -> None:
        _common(w, m, 163840, h, ff, heads, heads, rope, 10000.0, 1e-6)
        w.add_vocab_size(102400)
        w.add_leading_dense_block_count(1)
        w.add_kv_lora_rank(kv_lora)
        w.add_key_length(nope + rope)
        w.add_value_length(v)
        w.add_expert_feed_forward_length(eff)
        w.add_expert_count(n_exp)
        w.add_expert_shared_count(n_sh)
        w.add_expert_used_count(6)
        w.add_expert_weights_scale(1.0)

    m = Model("deepseek-v2-lite-legacy", "deepseek2", "DeepSeek-V2-Lite-16B", 27, 3, 102400, "gpt2", 99757,
              gguf.LlamaFileType.MOSTLY_Q4_K_M, keys)
    mix, t = _q4_k_m(27), _Tensors()
    t.add("token_embd.weight", (102400, h), mix["emb"])
    for i in range(m.layers):
        t.add(f"blk.{i}.attn_norm.weight", (h,), F32)
        t.add(f"blk.{i}.attn_q.weight", (heads * (nope + rope), h), Q4_K)
        t.add(f"blk.{i}.attn_kv_a_mqa.weight", (kv_lora + rope, h), Q4_K)
        t.add(f"blk.{i}.attn_kv_a_norm.weight", (kv_lora,), F32)
        t.add(f"blk.{i}.attn_kv_b.weight", (heads * (nope + v), kv_lora), mix["v"](i))
        t.add(f"blk.{i}.attn_output.weight", (h, heads * v), Q4_K)
        if i == 0:
            _ffn(t, i, h, ff, mix)
        else:
            _deepseek_moe(t, i, h, n_exp, eff, n_sh, mix)
    t.add("output_norm.weight", (h,), F32)
    t.add("output.weight", (102400, h), mix["out"])
    m.tensors = t
    return m


MODELS: dict[str, Callable[[], Model]] = {f().name: f for f in (
    llama2_7b, llama3_8b, qwen2_7b, gemma2_9b, mixtral_8x7b, deepseek_v2, deepseek_v2_lite_legacy)}


def _ssm_keys(w: gguf.GGUFWriter, m: "Model", hidden: int, d_conv: int, d_inner: int, d_state: int, dt_rank: int,
              groups: int = 0) -> None:
    """The keys convert_hf_to_gguf.py's MambaModel / Mamba2Model write: no attention (head_count 0, a
    feed_forward_length of 0), context_length 2**20, the ssm.* sizes."""
    w.add_name(m.based_on)
    w.add_file_type(m.file_type)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(2**20)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_block_count(m.layers)
    w.add_ssm_conv_kernel(d_conv)
    w.add_ssm_inner_size(d_inner)
    w.add_ssm_state_size(d_state)
    w.add_ssm_time_step_rank(dt_rank)
    if groups:
        w.add_ssm_group_count(groups)
    w.add_layer_norm_rms_eps(1e-5)


def mamba_130m() -> Model:
    """state-spaces/mamba-130m-hf: 24 layers of d_model 768, d_inner 1,536, d_state 16, d_conv 4, dt_rank 48; the
    GPT-NeoX vocabulary padded to a multiple of 8 (50,280); tied output (no output.weight); F16 with the
    converter's F32 conv, x, dt, A and D. All 24 blocks (the data section is a hole: the header is what counts)."""
    m = Model("mamba-130m", "mamba", "Mamba-130M", 24, 24, 50280, "gpt2", 50009, gguf.LlamaFileType.MOSTLY_F16,
              lambda w: _ssm_keys(w, m, 768, 4, 1536, 16, 48))
    t = _Tensors()
    t.add("token_embd.weight", (50280, 768), F16)
    for i in range(m.layers):
        t.add(f"blk.{i}.attn_norm.weight", (768,), F32)
        t.add(f"blk.{i}.ssm_in.weight", (2 * 1536, 768), F16)
        t.add(f"blk.{i}.ssm_conv1d.weight", (1536, 4), F32)
        t.add(f"blk.{i}.ssm_conv1d.bias", (1536,), F32)
        t.add(f"blk.{i}.ssm_x.weight", (48 + 2 * 16, 1536), F32)
        t.add(f"blk.{i}.ssm_dt.weight", (1536, 48), F32)
        t.add(f"blk.{i}.ssm_dt.bias", (1536,), F32)
        t.add(f"blk.{i}.ssm_a", (1536, 16), F32)
        t.add(f"blk.{i}.ssm_d", (1536,), F32)
        t.add(f"blk.{i}.ssm_out.weight", (768, 1536), F16)
    t.add("output_norm.weight", (768,), F32)
    m.tensors = t
    return m


def mamba_codestral_7b() -> Model:
    """mistralai/Mamba-Codestral-7B-v0.1: 64 Mamba2 layers of d_model 4,096, d_inner 8,192 (128 heads of 64),
    8 groups, d_state 128, d_conv 4; vocabulary 32,768 (SentencePiece); its own output matrix; Q8_0 with F32
    conv, dt, A, D and norms. All 64 blocks."""
    m = Model("mamba-codestral-7b", "mamba2", "Mamba-Codestral-7B", 64, 64, 32768, "llama", 0,
              gguf.LlamaFileType.MOSTLY_Q8_0, lambda w: _ssm_keys(w, m, 4096, 4, 8192, 128, 128, 8))
    t = _Tensors()
    conv = 8192 + 2 * 8 * 128
    t.add("token_embd.weight", (32768, 4096), Q8_0)
    for i in range(m.layers):
        t.add(f"blk.{i}.attn_norm.weight", (4096,), F32)
        t.add(f"blk.{i}.ssm_in.weight", (2 * 8192 + 2 * 8 * 128 + 128, 4096), Q8_0)
        t.add(f"blk.{i}.ssm_conv1d.weight", (conv, 4), F32)
        t.add(f"blk.{i}.ssm_conv1d.bias", (conv,), F32)
        t.add(f"blk.{i}.ssm_dt.bias", (128,), F32)
        t.add(f"blk.{i}.ssm_a", (128, 1), F32)
        t.add(f"blk.{i}.ssm_d", (128, 1), F32)
        t.add(f"blk.{i}.ssm_norm.weight", (8, 1024), F32)
        t.add(f"blk.{i}.ssm_out.weight", (4096, 8192), Q8_0)
    t.add("output_norm.weight", (4096,), F32)
    t.add("output.weight", (32768, 4096), Q8_0)
    m.tensors = t
    return m


def _vocab(w: gguf.GGUFWriter, m: Model) -> None:
    n = m.vocab
    if m.tokenizer == "llama":  # SentencePiece: <unk> <s> </s>, 256 byte tokens, then pieces with scores
        tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
        tokens += [f"\u2581p{i}" for i in range(n - len(tokens))]
        types = [2, 3, 3] + [6] * 256 + [1] * (n - 259)
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([0.0] * 259 + [-float(i) for i in range(n - 259)])
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    else:  # byte-level BPE: tokens, types, merges
        tokens = [f"\u0120t{i}" for i in range(n - 256)] + [f"<|reserved_special_token_{i}|>" for i in range(256)]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe" if m.arch == "llama" else m.arch)
        w.add_token_list(tokens)
        w.add_token_types([1] * (n - 256) + [3] * 256)
        w.add_token_merges([f"\u0120t{i % 5000} t{i}" for i in range(m.merges)])
        w.add_bos_token_id(n - 256)
        w.add_eos_token_id(n - 255)
    w.add_add_bos_token(True)
    w.add_chat_template("{% for message in messages %}{{ message['content'] }}{% endfor %}")


def llama_cpp_names(arch: str, n_layers: int) -> set[str]:
    """Every tensor name llama.cpp knows for ``arch`` (gguf.constants.MODEL_TENSORS / TENSOR_NAMES)."""
    a = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch]
    names = set()
    for t in gguf.MODEL_TENSORS[a]:
        pattern = gguf.TENSOR_NAMES[t]
        for bid in range(n_layers) if "{bid}" in pattern else [None]:
            base = pattern.format(bid=bid) if bid is not None else pattern
            names |= {base + ".weight", base + ".bias"}
    return names


def tensor_bytes(shape: tuple[int, ...], qt: Q) -> int:
    """Bytes of a tensor from gguf-py's own type table (GGML_QUANT_SIZES)."""
    block, size = gguf.GGML_QUANT_SIZES[qt]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


class Writer(gguf.GGUFWriter):
    """``gguf.GGUFWriter``; arrays longer than :data:`BULK` are packed in one go (the stock writer packs one
    element per call, ~3 s for Qwen2's 455,000 tokens, types and merges). The bytes are the same: a test
    compares both writers."""

    def _pack_val(self, val: Any, vtype: V, add_vtype: bool, sub_type: Optional[V] = None) -> bytes:
        if vtype != V.ARRAY or sub_type is not None or not isinstance(val, list) or len(val) <= BULK:
            return super()._pack_val(val, vtype, add_vtype, sub_type)
        kinds = {type(x) for x in val}
        head = struct.pack("<I", V.ARRAY) if add_vtype else b""
        if kinds <= {str, bytes}:
            enc = [x.encode("utf-8") if isinstance(x, str) else x for x in val]
            return head + struct.pack("<IQ", V.STRING, len(enc)) + b"".join(
                struct.pack("<Q", len(e)) + e for e in enc)
        if kinds == {int}:
            return head + struct.pack("<IQ", V.INT32, len(val)) + struct.pack(f"<{len(val)}i", *val)
        if kinds == {float}:
            return head + struct.pack("<IQ", V.FLOAT32, len(val)) + struct.pack(f"<{len(val)}f", *val)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def sparse_files_work(folder: Path) -> bool:
    """Whether ``folder`` keeps a truncated-up file as a hole (ext4, XFS, btrfs, APFS, tmpfs do)."""
    probe = folder / "sparse-probe"
    with open(probe, "wb") as f:
        f.truncate(64 << 20)
    try:
        return getattr(os.stat(probe), "st_blocks", 0) * 512 < (1 << 20)
    finally:
        probe.unlink()


def write(m: Model, path: Path, writer: type = Writer) -> Path:
    """Write ``m`` to ``path``: gguf-py writes the header, the data section is left a hole of its full length."""
    w = writer(str(path), m.arch)
    m.keys(w)
    _vocab(w, m)
    total = 0
    for name, shape, qt in m.tensors:
        nbytes = tensor_bytes(shape, qt)
        if qt in (F32, F16):
            w.add_tensor_info(name, shape, np.dtype(np.float32 if qt == F32 else np.float16), nbytes)
        else:  # byte shape: gguf-py turns it back into the element shape (quant_shape_from_byte_shape)
            block, size = gguf.GGML_QUANT_SIZES[qt]
            w.add_tensor_info(name, (*shape[:-1], shape[-1] // block * size), np.dtype(np.uint8), nbytes,
                              raw_dtype=qt)
        total += _pad(nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    f = w.fout[0]
    start = _pad(f.tell())
    f.truncate(start + total)  # the data section: every tensor, each padded to the alignment, as a hole
    w.close()
    return path


# ---- the independent reader -------------------------------------------------------------------------------


class RefReader(gguf.GGUFReader):
    """``gguf.GGUFReader``; arrays longer than :data:`BULK` are read in bulk (one part for all elements)."""

    def _get_field_parts(self, orig_offs: int, raw_type: int) -> tuple[int, list, list, list]:
        if raw_type != V.ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        itype, alen = self._get(orig_offs, np.uint32), self._get(orig_offs + 4, np.uint64)
        n, etype = int(alen[0]), V(int(itype[0]))
        if n <= BULK or etype == V.ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        offs = orig_offs + 12
        if etype == V.STRING:
            pos, unpack = offs, struct.Struct("<Q").unpack_from
            for _ in range(n):
                pos += 8 + unpack(self.data, pos)[0]
            payload = self._get(offs, np.uint8, pos - offs)
        else:
            payload = self._get(offs, self.gguf_scalar_to_np[etype], n)
            pos = offs + int(payload.nbytes)
        return pos - orig_offs, [itype, alen, payload], [2], [V.ARRAY, etype]


@dataclass
class Ref:
    """What the file holds, as gguf-py reads it."""

    path: Path
    size: int
    meta: dict[str, Any]  # scalars and strings as values; arrays as lists, long arrays as ("array", n)
    tensors: dict[str, dict[str, Any]]  # name -> type, ne (ggml order), n_elements, n_bytes, data_offset
    data_offset: int

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)

    def arch_key(self, key: str, default: Any = None) -> Any:
        return self.meta.get(f"{self.meta['general.architecture']}.{key}", default)


def reference(path: Path) -> Ref:
    r = RefReader(str(path))
    meta: dict[str, Any] = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        if f.types[0] == V.ARRAY:
            n = int(f.parts[4][0])  # parts: key length, key, value type, element type, count, ...
            meta[name] = ("array", n) if n > BULK else f.contents()
        else:
            meta[name] = f.contents()
    tensors = {t.name: {"type": t.tensor_type.name, "ne": tuple(int(x) for x in t.shape),
                        "n_elements": int(t.n_elements), "n_bytes": int(t.n_bytes),
                        "data_offset": int(t.data_offset)} for t in r.tensors}
    return Ref(Path(path), int(r.data.shape[0]), meta, tensors, int(r.data_offset))
