"""llama.cpp (and Ollama, which embeds it): model, KV and compute buffers per device.

What llama.cpp prints at load time, and how vramscope computes each. The rules below were read in ggml-org/llama.cpp
at commit 82bb48500 (2026-08-07): ``src/llama-model.cpp`` (``llama_model_base::load_tensors``),
``src/llama-model-loader.cpp`` (``llama_model_loader::create_tensor``), ``src/llama-kv-cache.cpp``
(``llama_kv_cache::llama_kv_cache``), ``src/llama-hparams.cpp`` and ``src/models/deepseek2.cpp``; the compute
buffer in ``src/llama-context.cpp`` and ``ggml/src/ggml-alloc.c``.

* ``CUDA0 model buffer``: the tensors of the offloaded layers. ``load_tensors`` puts layer ``il`` (``0 …
  n_layer - 1`` the repeating layers, ``n_layer`` the output layer) on the GPU when
  ``il >= i_gpu_start = n_layer + 1 - ngl``, so ``-ngl N`` offloads the output layer first and then the last
  ``N - 1`` repeating layers; ``-ngl 0`` keeps everything in host memory, and the default (every layer) is
  ``n_layer + 1``. (Before llama.cpp #18148, 2025-12-18, ``i_gpu_start`` was ``n_layer - ngl``: the last
  ``N`` repeating layers, the output layer only from ``N > n_layer`` on.) The token embedding always stays in
  host memory (the input layer runs on the CPU). Per-tensor types come from the GGUF header, or without a
  file from llama.cpp's quantization mix (``memory/gguf_mix.py``).
* Tied embeddings: a model with no ``output.weight`` (Gemma, tied Llama/Qwen) creates its output layer from
  ``token_embd.weight`` again with ``TENSOR_DUPLICATED``. ``create_tensor`` places that copy by the *output*
  layer's buffer list and reuses the input tensor only when both land in the same buffer type, so with the
  output layer on the GPU (``-ngl`` ≥ 1) the embedding is held twice: once in host memory (input) and once,
  whole and in its stored type, in the GPU model buffer (output); with ``-ngl 0`` it is held once. The same
  rule applies without a file (the catalog's ``tie_embeddings``). Encoder-only architectures (BERT family)
  have no output layer, and ``bitnet`` multiplies by ``tok_embd`` directly: no copy. The per-layer RoPE
  factors (``rope_freqs``, ``rope_factors_long/short``, one tensor in the file) are created for every layer
  with ``TENSOR_DUPLICATED`` as well: one copy on each device that holds a repeating layer.
* ``KV buffer``: ``n_ctx`` cells per layer, each ``n_embd_k_gqa = n_embd_head_k × n_head_kv`` keys of
  ``--cache-type-k`` and ``n_embd_v_gqa`` values of ``--cache-type-v`` (f16 by default; q8_0 is 34 bytes per
  32 values). Layers on the GPU keep their cache there. Sliding-window layers (Gemma 2/3,
  ``llama_kv_cache_iswa``) keep ``n_swa + n_ubatch`` cells.
* DeepSeek-V2/V3 (``deepseek2``): ``hparams.is_mla()`` is true when the GGUF has
  ``attention.key_length_mla`` / ``value_length_mla`` (converted since llama.cpp #12801, 2025-04-15; the
  attention is MQA over the latent, ``key_length`` = ``kv_lora_rank + n_rot``, one KV head). Then the cache
  holds ``kv_lora_rank + n_rot`` K values per cell and no V at all (``has_v = !is_mla``, since #19067,
  2026-01-25, with or without flash attention; before it, V held ``kv_lora_rank`` more). A GGUF converted
  before (no ``*_mla`` keys, one ``attn_kv_b`` per layer, which is how vramscope recognises it: a file
  llama.cpp loads has ``attn_kv_b`` exactly when the keys are absent) runs without absorption as plain
  multi-head attention: ``n_head_kv × key_length`` keys and ``n_head_kv × value_length`` values per cell.
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..memory.gguf_mix import gguf_tensors
from ..memory.kv_cache import KV_DTYPE_BYTES
from ..model.spec import SLIDING, ModelSpec
from ..result import Assumption
from ..gpus import Gpu
from ..result import Estimate
from ..sources.base import ResolvedModel
from ..units import parse_int
from ..options import Option
from .base import Candidate, Engine, EngineReport, Phases, Record

if TYPE_CHECKING:
    from ..workload import Workload

#: llama.cpp --cache-type-k/-v (common/arg.cpp kv_cache_types)
LLAMA_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")

@dataclass(frozen=True, kw_only=True)
class Buffers(Record):
    """llama.cpp's buffers on one device, as its load log prints them."""

    model_buffer_bytes: int
    kv_buffer_bytes: int
    compute_buffer_bytes: int


@dataclass(frozen=True, kw_only=True)
class LlamacppReport(EngineReport):
    """llama.cpp's placement and buffers (``engine`` in the JSON)."""

    name: str = "llama.cpp"
    n_gpu_layers: int  # repeating layers on the GPU
    output_on_gpu: bool
    n_ctx: int
    n_ubatch: int
    cache_type_k: str
    cache_type_v: str
    flash_attn: bool
    gpu: Buffers
    host: Buffers
    host_bytes: int


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


_TOKEN_EMBD = ("token_embd.weight", "model.embed_tokens.weight", "transformer.wte.weight",
               "transformer.word_embeddings.weight", "model.language_model.embed_tokens.weight")
#: per-layer RoPE factors: one tensor in the file, created for every layer with TENSOR_DUPLICATED
_PER_LAYER_DUPLICATED = ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight")
#: llama.cpp architectures that never build an output layer from ``token_embd`` (src/models/*.cpp): the
#: encoder-only BERT family has no output layer, bitnet multiplies by ``tok_embd`` itself
_NO_DUPLICATED_OUTPUT = frozenset({"bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert",
                                   "jina-bert-v2", "jina-bert-v3", "eurobert", "t5encoder", "bitnet"})


def _is_input(name: str) -> bool:
    return name in _TOKEN_EMBD or name.startswith(("token_embd", "per_layer_token_embd"))


def gpu_layers(n_layer: int, n_gpu_layers: Optional[int]) -> tuple[int, int, bool]:
    """llama.cpp's placement for ``-ngl``: (ngl, first repeating layer on the GPU, output layer on the GPU).

    ``load_tensors``: ``i_gpu_start = n_layer + 1 - ngl`` over the ``n_layer + 1`` layers (the output layer is
    number ``n_layer``), ``ngl`` clamped to ``n_layer + 1``; a negative ``ngl`` means all of them
    (``llama_model::n_gpu_layers``)."""
    ngl = n_layer + 1 if n_gpu_layers is None or n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1)
    return ngl, n_layer + 1 - ngl, ngl >= 1


def duplicates_output(model: ResolvedModel) -> bool:
    """Whether llama.cpp loads ``token_embd`` a second time as the output layer (no ``output.weight``)."""
    spec = model.spec
    return spec.tie_embeddings and spec.kind != "encoder" and spec.architecture not in _NO_DUPLICATED_OUTPUT


def mla_absorbed(model: ResolvedModel) -> bool:
    """DeepSeek MLA as llama.cpp runs it: absorbed (latent cache) unless the GGUF predates the ``*_mla`` keys.

    llama.cpp decides by the keys (``hparams.is_mla()``); a file it can load holds ``attn_kv_b`` exactly when
    they are absent (``llama_model_deepseek2::load_arch_tensors``), and that is what vramscope reads."""
    if model.spec.mla is None:
        return False
    if model.kind == "gguf" and model.stored is not None:
        return not any(t.name.endswith(".attn_kv_b.weight") for t in model.stored)
    return True  # no file: today's converter writes the *_mla keys


def llamacpp_inference(model: ResolvedModel, w: Workload, notes: list[Assumption]) -> tuple[Phases, LlamacppReport]:
    """Phases (``load``, ``prefill``) and the engine fields (buffers per device)."""
    spec = model.spec
    n_layer = spec.num_layers
    ngl, first_gpu, output_on_gpu = gpu_layers(n_layer, w.n_gpu_layers)
    any_gpu_layer, any_cpu_layer = first_gpu < n_layer, first_gpu > 0
    duplicated = output_on_gpu and duplicates_output(model)
    gpu_model = cpu_model = embd_copy = 0
    for name, layer, nbytes in _tensor_bytes(model, w):
        if _is_input(name):
            cpu_model += nbytes
            if duplicated and name in _TOKEN_EMBD:
                embd_copy += nbytes  # TENSOR_DUPLICATED: the output layer's own copy, in the GPU model buffer
        elif layer is None and name in _PER_LAYER_DUPLICATED:
            gpu_model += nbytes if any_gpu_layer else 0
            cpu_model += nbytes if any_cpu_layer else 0
        elif layer is None:
            if output_on_gpu:
                gpu_model += nbytes
            else:
                cpu_model += nbytes
        elif layer >= first_gpu:
            gpu_model += nbytes
        else:
            cpu_model += nbytes
    gpu_model += embd_copy
    n_ctx = w.seq
    kv_default = "f16" if (w.kv_dtype in (None, "fp16", "bf16")) else w.kv_dtype
    ctk = w.cache_type_k or kv_default
    ctv = w.cache_type_v or kv_default
    bk, bv = KV_DTYPE_BYTES.get(ctk, 2.0), KV_DTYPE_BYTES.get(ctv, 2.0)
    if spec.mla is not None and mla_absorbed(model):
        k_dim, v_dim = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim, 0  # the latent in K, no V cache
    elif spec.mla is not None:  # pre-*_mla GGUF: plain multi-head attention over decompressed heads
        k_dim, v_dim = spec.num_kv_heads * spec.head_dim, spec.num_kv_heads * spec.mla.v_head_dim
    else:
        k_dim = v_dim = spec.num_kv_heads * spec.head_dim
    gpu_kv = cpu_kv = 0
    for layer in range(n_layer):
        cells = n_ctx
        if spec.sliding_window and spec.layer_type(layer) == SLIDING:
            cells = min(n_ctx, spec.sliding_window + w.ubatch)
        nbytes = int(cells * (k_dim * bk + v_dim * bv))
        if layer >= first_gpu:
            gpu_kv += nbytes
        else:
            cpu_kv += nbytes
    gpu_compute = compute_buffer(spec, n_ctx, w.ubatch, w.flash_attn, output_on_gpu) if ngl > 0 else 0
    cpu_compute = int(w.ubatch * 4 * (spec.hidden_size * 2 + (0 if output_on_gpu else spec.vocab_size)))
    n_repeating = n_layer - min(first_gpu, n_layer)  # repeating layers on the GPU
    notes.append(Assumption("a_llamacpp", {"ngl": n_repeating, "n_layer": n_layer, "ctx": n_ctx,
                                           "ctk": ctk, "ctv": ctv, "ub": w.ubatch,
                                           "fa": "on" if w.flash_attn else "off"}))
    if 0 < ngl <= n_layer:
        notes.append(Assumption("a_llamacpp_output", {"ngl": ngl, "n": n_repeating}))
    if embd_copy:
        notes.append(Assumption("a_llamacpp_tied", {"size": f"{embd_copy / 2**20:,.2f} MiB"}))
    if spec.mla is not None and not mla_absorbed(model):
        notes.append(Assumption("a_llamacpp_no_mla", {"k": k_dim, "v": v_dim}))
    phases = {"load": {"weights": gpu_model},
              "prefill": {"weights": gpu_model, "kv_cache": gpu_kv, "activations": gpu_compute}}
    report = LlamacppReport(n_gpu_layers=n_repeating, output_on_gpu=output_on_gpu, n_ctx=n_ctx, n_ubatch=w.ubatch,
                            cache_type_k=ctk, cache_type_v=ctv, flash_attn=w.flash_attn,
                            gpu=Buffers(model_buffer_bytes=gpu_model, kv_buffer_bytes=gpu_kv,
                                        compute_buffer_bytes=gpu_compute),
                            host=Buffers(model_buffer_bytes=cpu_model, kv_buffer_bytes=cpu_kv,
                                         compute_buffer_bytes=cpu_compute),
                            host_bytes=cpu_model + cpu_kv + cpu_compute)
    return phases, report


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


def _bits(ftype: str) -> float:
    """Bits per weight of a llama.cpp file type's main tensor type."""
    from ..memory.gguf_mix import FTYPE_DEFAULT
    from ..sources.gguf import ggml_types

    info = next(t for t in ggml_types()["types"].values() if t["name"] == FTYPE_DEFAULT[ftype])
    return info["bytes"] * 8 / info["block"]


class LlamaCpp(Engine):
    name = "llama.cpp"
    multi_gpu = False  # one GPU and host memory (-ngl); no split across GPUs modelled
    aliases = ("llamacpp", "llama-cpp", "ollama")
    gguf_quants = True
    options = (
        Option("n_gpu_layers", ("--n-gpu-layers", "-ngl"), "int", None, group="llama.cpp", owner="llama.cpp", lo=0,
               hi=100_000, help_en="layers on the GPU (default: all, and the output layer)",
               help_zh="放在 GPU 上的层数（默认：全部，以及输出层）"),
        Option("cache_type_k", ("--cache-type-k", "-ctk"), "choice", None, group="llama.cpp", owner="llama.cpp",
               choices=LLAMA_CACHE_TYPES,
               help_en="f16 (default), q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, bf16, f32",
               help_zh="f16（默认）、q8_0、q4_0、q4_1、q5_0、q5_1、iq4_nl、bf16、f32"),
        Option("cache_type_v", ("--cache-type-v", "-ctv"), "choice", None, group="llama.cpp", owner="llama.cpp",
               choices=LLAMA_CACHE_TYPES, help_en="like --cache-type-k", help_zh="同 --cache-type-k"),
        Option("flash_attn", ("--flash-attn", "-fa"), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="flash attention", help_zh="flash attention（闪电注意力）"),
        Option("ubatch", ("--ubatch-size", "-ub"), "int", 512, group="llama.cpp", owner="llama.cpp", lo=1,
               hi=1_000_000, help_en="physical micro-batch (default 512)", help_zh="物理微批大小（默认 512）"),
    )

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        return llamacpp_inference(model, w, notes)

    def max_gpu_layers(self, model: ResolvedModel, w: Workload, usable: int,
                       needs: Callable[[Workload], int]) -> Optional[int]:
        """The most layers ``-ngl`` can put on this GPU (the rest run from host memory)."""
        from ..plan import largest_fitting

        n = largest_fitting(lambda k: needs(replace(w, n_gpu_layers=k)) <= usable, 0, model.spec.num_layers + 1)
        return n if n >= 0 else None

    def suggestions(self, model: ResolvedModel, w: Workload, usable: int,
                    needs: Callable[[Workload], int]) -> list[Candidate]:
        from ..memory.gguf_mix import FTYPE_DEFAULT

        cands: list[Candidate] = []
        for q in ("Q4_K_M", "Q3_K_M", "Q2_K"):
            if w.quant == "none" or (w.quant in FTYPE_DEFAULT and _bits(q) < _bits(w.quant)):
                cands.append(("s_quant", {"quant": q}, {"quant": q}, "quality"))
        if (w.cache_type_k or "f16") == "f16":
            cands.append(("s_kv_dtype", {"kv_dtype": "q8_0"}, {"cache_type_k": "q8_0", "cache_type_v": "q8_0",
                                                              "flash_attn": True}, "quality"))
        if not w.flash_attn:
            cands.append(("s_flash", {}, {"flash_attn": True}, "none"))
        ngl = self.max_gpu_layers(model, w, usable, needs)
        if ngl is not None and ngl <= model.spec.num_layers:  # -ngl N: the output layer, then N - 1 layers
            key = "s_ngl" if ngl else "s_ngl_cpu"
            cands.append((key, {"n": ngl, "layers": max(ngl - 1, 0), "total": model.spec.num_layers},
                          {"n_gpu_layers": ngl}, "speed"))
        return cands

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        host = e.engine["host"]
        return [t("llamacpp_host_line", lang, model=format_bytes(host["model_buffer_bytes"], units),
                  kv=format_bytes(host["kv_buffer_bytes"], units))]

    def record_options(self, src: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """llama.cpp's command-line arguments: the whole workload."""
        out: dict[str, Any] = dict(engine=self.name, seq=src.get("ctx_size", 4096), ubatch=src.get("n_ubatch", 512),
                                   flash_attn=bool(src.get("flash_attn")), cache_type_k=src.get("cache_type_k", "f16"),
                                   cache_type_v=src.get("cache_type_v", "f16"))
        if src.get("gguf_type") and src["gguf_type"] not in ("F16", "BF16", "F32"):
            out["quant"] = src["gguf_type"]
        if src.get("n_gpu_layers") is not None:
            out["n_gpu_layers"] = src["n_gpu_layers"]
        return out, True

    def printed_components(self, e: Estimate) -> dict[str, int]:
        """The GPU buffers of llama.cpp's load log."""
        g = e.engine["gpu"]
        return {"weights": g["model_buffer_bytes"], "kv_cache": g["kv_buffer_bytes"],
                "compute_buffer": g["compute_buffer_bytes"]}


ENGINE = LlamaCpp()
