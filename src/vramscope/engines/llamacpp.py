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
  buffers for LLaMA-7B (164.00 MiB at n_ctx 2048, 70.50 MiB at 512; ``docs/accuracy.md``). With layers in
  host memory (``-ngl 0`` or partial offload) the GPU still computes their prompt batches of 32 tokens or more,
  copying their weights and K/V views into its compute buffer (op offload, ``OP_OFFLOAD_MIN_BATCH`` below);
  vramscope does not size those copies and says so (``a_llamacpp_op_offload`` at ``-ngl 0``, where it counts 0;
  ``a_llamacpp_op_offload_partial`` otherwise), since no decoder's log reproduces a formula (``docs/accuracy.md``);
  ``--no-op-offload`` keeps those ops on the CPU.
* plus the CUDA context (``memory/overhead.py``; no torch, so no torch cuBLAS workspace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..memory.gguf_mix import gguf_tensors
from ..memory.kv_cache import KV_DTYPE_BYTES
from . import llamacpp_kv  # noqa: F401 - registers its messages
from ..model.spec import SLIDING, ModelSpec
from ..result import Assumption
from ..errors import Opt
from ..gpus import Gpu
from ..result import Estimate
from ..sources.base import ResolvedModel
from ..units import parse_int
from ..options import Option
from .base import Candidate, Engine, EngineReport, Phases, Record

if TYPE_CHECKING:
    from ..workload import Workload

#: ``ggml_backend_cuda_device_offload_op``'s ``min_batch_size`` (ggml-cuda.cu; Vulkan's is the same, both read at
#: 82bb48500, ``GGML_OP_OFFLOAD_MIN_BATCH`` overriding it): with op offload on (llama.cpp's default) an op whose
#: weight sits in a host buffer runs on the GPU once its batch has this many rows, and pass 2 of
#: ``ggml_backend_sched_split_graph`` spreads the GPU over the ops around it, so a host layer's whole prompt graph
#: runs there; ``ggml_backend_sched`` copies each host weight (a new split per weight, ``need_new_split``, so the
#: copies' memory is reused), the layer's K/V cache views and the KQ mask into the GPU compute buffer, unless the GPU
#: reads that host buffer in place (``ggml_backend_sched_buffer_supported``: integrated devices). So ``-ngl 0`` and
#: partial offload reserve GPU memory vramscope does not size (issue #17): llama-server's reserve keeps the output
#: head on the CPU there (``server_n_outputs_max``: n_parallel rows, below 32), which is why HilbertRaum#391's
#: 498.5 MiB for Qwen3.5-9B holds no logits, but that figure is the peak of a hybrid layer graph
#: ``compute_buffer`` does not model, and the figures reproduced (BERT-family embedders in llama.cpp's CI, build
#: 3851: bge-small 16.28 MiB, jina-reranker-v1-tiny 223.28 MiB) have no KV cache and no output head
#: (``docs/accuracy.md``).
OP_OFFLOAD_MIN_BATCH = 32

#: llama.cpp --cache-type-k/-v (common/arg.cpp kv_cache_types)
LLAMA_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")

@dataclass(frozen=True, kw_only=True)
class Buffers(Record):
    """llama.cpp's buffers on one device, as its load log prints them."""

    model_buffer_bytes: int
    kv_buffer_bytes: int
    compute_buffer_bytes: int
    #: a recurrent / hybrid model's ``RS buffer`` (``llama_memory_recurrent``), included in ``kv_buffer_bytes``
    rs_buffer_bytes: Optional[int] = None


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
    # several devices (issue #17): the split, each device's buffers (``gpu`` is then the fullest device's)
    split_mode: Optional[str] = None
    tensor_split: Optional[list[float]] = None
    main_gpu: Optional[int] = None
    pipeline_parallel: Optional[bool] = None
    devices: Optional[list["DeviceBuffers"]] = None
    host_model_buffer: Optional[str] = None  # mmap (file-backed, the default), allocated (--no-mmap), locked (--mlock)
    fit: Optional["FitReport"] = None  # --fit on: what common_fit_params decided


@dataclass(frozen=True, kw_only=True)
class FitReport(Record):
    """llama.cpp's ``--fit`` (``common/fit.cpp``): its decision and what it prints."""

    status: str  # unchanged (fits as given) | fitted | failed (the parameters as given)
    target_mib: list[int]  # --fit-target per device
    free_bytes: list[int]  # free memory per device it fitted to
    n_gpu_layers: Optional[int] = None  # -ngl it set (None: unchanged)
    tensor_split: Optional[list[int]] = None  # layers per device it set
    overflowing: int = 0  # partial layers (their FFN tensors in host memory or the next device)
    n_ctx: Optional[int] = None  # the context it set (with -c 0)
    reason: Optional[str] = None
    trace: list[str]


_BLK = re.compile(r"(?:^|\.)(?:blk|layers|h|layer|block)\.(\d+)\.")


def _layer_of(name: str) -> Optional[int]:
    m = _BLK.search(name)
    return int(m.group(1)) if m else None


def _tensor_bytes(model: ResolvedModel, w: Workload) -> list[tuple[str, Optional[int], int]]:
    """(name, layer, bytes) of every tensor as llama.cpp holds it."""
    if model.kind == "gguf" and model.stored is not None and w.quant == "none":
        return [(t.name, _layer_of(t.name), t.nbytes) for t in model.stored]
    ftype = w.quant if w.quant != "none" else {"fp32": "F32", "bf16": "BF16"}.get(w.dtype or "", "F16")
    return [(t.name, t.layer, t.nbytes) for t in _mix(model.spec, ftype)]


@lru_cache(maxsize=32)
def _mix(spec: ModelSpec, ftype: str) -> tuple:
    """llama.cpp's quantization mix of a model without a file (the same for every trial of ``--fit``)."""
    return tuple(gguf_tensors(spec, ftype))


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


#: ``llama_memory_recurrent``'s ``r_l`` / ``s_l`` types (``llama_model::create_memory``: ``GGML_TYPE_F32`` both)
RS_BYTES = 4
_STATE_LAYERS = ("state", "hybrid", "hybrid_sliding")


def layer_cache_bytes(spec: ModelSpec, layer: int, n_ctx: int, ub: int, k_dim: int, v_dim: int, bk: float,
                      bv: float, n_seq: int, flash_attn: bool = True, unified: bool = False,
                      swa_full: bool = False) -> tuple[int, int]:
    """(KV bytes, RS bytes) of one layer. The KV cache keeps ``GGML_PAD(n_ctx, 256)`` cells (one stream per
    sequence of ``GGML_PAD(n_ctx / n_seq, 256)`` without ``--kv-unified``), sliding layers
    ``GGML_PAD(min(kv_size, n_swa + n_ubatch), 256)`` per stream (``--swa-full``: ``kv_size``), each layer its own K/V widths (MiMo-V2-Flash,
    Gemma 4; its KV-shared layers none) and without flash attention every V padded to the widest, DeepSeek-V4 its
    compressed caches (:mod:`vramscope.engines.llamacpp_kv`, read at 82bb48500). A recurrent / hybrid model
    (``llm_arch_is_recurrent`` / ``llm_arch_is_hybrid``) keeps keys and values only in
    its attention layers (``llama_memory_hybrid``'s ``filter_attn``: ``!hparams.is_recr(il)``; Falcon-H1 every
    layer, Nemotron-H none in its MLP layers) and in each recurrent layer ``llama_memory_recurrent``'s ``r_l``
    (``n_embd_r() = (ssm_d_conv − 1) × (ssm_d_inner + 2 × ssm_n_group × ssm_d_state)``; LFM2
    ``n_embd × (L_cache − 1)``) and ``s_l`` (``n_embd_s() = ssm_d_state × ssm_d_inner``), f32, for
    ``mem_size = max(1, n_seq_max)`` sequences (``n_rs_seq`` 0: no rollback rows). Read at ggml-org/llama.cpp
    d32676d (2026-08-18): src/llama-memory-recurrent.cpp, src/llama-hparams.cpp, src/llama-model.cpp."""
    from .llamacpp_kv import dsv4_layer_bytes, is_sliding, standard_layer_bytes

    st = spec.state
    kv = rs = 0
    if spec.compressed is not None and spec.mla is None and st is None:
        raw, state = dsv4_layer_bytes(spec, layer, n_ctx, ub, bk, n_seq)
        return raw + state, 0
    if spec.mla is None and st is None:
        widths = _widths(spec)
    else:
        widths = [(k_dim, v_dim)] * spec.num_layers
    if st is None or st.has_kv(layer):
        sliding = st.slides(layer) if st is not None else is_sliding(spec, layer)
        kv = standard_layer_bytes(spec, layer, widths, n_ctx, ub, bk, bv, n_seq, flash_attn, sliding, unified,
                                  swa_full)
    if st is not None and st.kinds[layer] in _STATE_LAYERS:
        rs = (st.engine_conv_values(layer) + st.recurrent_values[layer]) * RS_BYTES * max(1, n_seq)
    return kv, rs


@lru_cache(maxsize=32)
def _widths(spec: ModelSpec) -> list:
    from .llamacpp_kv import layer_widths

    return layer_widths(spec)


def llama_sequences(w: Workload) -> tuple[int, bool]:
    """``(n_seq_max, kv_unified)``: ``-np`` and ``-kvu`` as given; llama-server (``--llama-server``) with ``-np``
    left at auto runs 4 sequences over a unified cache (common/arg.cpp ``params.n_parallel = -1`` for
    LLAMA_EXAMPLE_SERVER, tools/server/server.cpp "n_parallel is set to auto, using n_parallel = 4 and
    kv_unified = true"); other programs one sequence."""
    n = getattr(w, "n_parallel", None)
    unified = bool(getattr(w, "kv_unified", False))
    if n is None and getattr(w, "llama_server", False):
        return 4, True
    return (n or 1), unified


def llama_outputs(w: Workload) -> Optional[int]:
    """Rows of the logits the reserved graph holds: ``n_outputs = min(n_tokens, n_outputs_max)``; llama-server
    sets ``n_outputs_max = n_parallel × (1 + speculative n_max)`` (``server_n_outputs_max``, llama.cpp#23861,
    2026-06-01; speculative decoding off by default, so ``n_parallel``), llama-cli and the library ``n_batch``
    (every token of the micro-batch: None)."""
    if not getattr(w, "llama_server", False):
        return None
    return llama_sequences(w)[0]


def llama_n_ctx(w: Workload) -> int:
    """The context ``llama_context`` sizes its caches and graph for: ``GGML_PAD(n_ctx, 256)`` (src/llama-context.cpp,
    #17046, 2025-11-07: ``-c 35000`` keeps 35072 cells); builds before it kept ``n_ctx`` as given
    (``--llamacpp-unpadded-ctx``, the older logs)."""
    from .llamacpp_kv import _pad

    return w.seq if getattr(w, "llamacpp_unpadded_ctx", False) else _pad(max(1, w.seq))


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
    n_ctx = llama_n_ctx(w)
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
    gpu_kv = cpu_kv = gpu_rs = cpu_rs = 0
    n_seq, unified = llama_sequences(w)
    swa_full = bool(getattr(w, "swa_full", False))
    for layer in range(n_layer):
        kv, rs = layer_cache_bytes(spec, layer, n_ctx, w.ubatch, k_dim, v_dim, bk, bv, n_seq, w.flash_attn,
                                   unified, swa_full)
        if layer >= first_gpu:
            gpu_kv += kv + rs
            gpu_rs += rs
        else:
            cpu_kv += kv + rs
            cpu_rs += rs
    outs = llama_outputs(w)
    gpu_compute = compute_buffer(spec, n_ctx, w.ubatch, w.flash_attn, output_on_gpu, outs) if ngl > 0 else 0
    cpu_compute = host_compute(spec, n_ctx, w.ubatch, w.flash_attn, output_on_gpu, ngl > 0, outs)
    n_repeating = n_layer - min(first_gpu, n_layer)  # repeating layers on the GPU
    notes.append(Assumption("a_llamacpp", {"ngl": n_repeating, "n_layer": n_layer, "ctx": n_ctx,
                                           "ctk": ctk, "ctv": ctv, "ub": w.ubatch,
                                           "fa": "on" if w.flash_attn else "off"}))
    if 0 < ngl <= n_layer:
        notes.append(Assumption("a_llamacpp_output", {"ngl": Opt("n_gpu_layers", ngl, flag="-ngl"), "n": n_repeating}))
    op_offload = min(w.ubatch, n_ctx) >= OP_OFFLOAD_MIN_BATCH and not getattr(w, "no_op_offload", False)
    if ngl == 0 and op_offload:
        notes.append(Assumption("a_llamacpp_op_offload", {"ngl": Opt("n_gpu_layers", 0, flag="-ngl"),
                                                          "n": OP_OFFLOAD_MIN_BATCH}))
    elif 0 < ngl <= n_layer and op_offload:  # layers left in host memory: their prompt ops run on the GPU too
        notes.append(Assumption("a_llamacpp_op_offload_partial", {
            "ngl": Opt("n_gpu_layers", ngl, flag="-ngl"), "n": n_layer - n_repeating, "m": OP_OFFLOAD_MIN_BATCH,
            "o_off": Opt("no_op_offload")}))
    if embd_copy:
        notes.append(Assumption("a_llamacpp_tied", {"size": f"{embd_copy / 2**20:,.2f} MiB"}))
    if spec.mla is not None and not mla_absorbed(model):
        notes.append(Assumption("a_llamacpp_no_mla", {"k": k_dim, "v": v_dim}))
    if spec.state is not None:
        state_note(spec, n_seq, notes)
    _layout_note(spec, n_ctx, w.ubatch, bk, n_seq, notes)
    phases = {"load": {"weights": gpu_model},
              "prefill": {"weights": gpu_model, "kv_cache": gpu_kv, "activations": gpu_compute}}
    report = LlamacppReport(n_gpu_layers=n_repeating, output_on_gpu=output_on_gpu, n_ctx=n_ctx, n_ubatch=w.ubatch,
                            cache_type_k=ctk, cache_type_v=ctv, flash_attn=w.flash_attn,
                            gpu=Buffers(model_buffer_bytes=gpu_model, kv_buffer_bytes=gpu_kv,
                                        compute_buffer_bytes=gpu_compute,
                                        rs_buffer_bytes=gpu_rs if spec.state is not None else None),
                            host=Buffers(model_buffer_bytes=cpu_model, kv_buffer_bytes=cpu_kv,
                                         compute_buffer_bytes=cpu_compute,
                                         rs_buffer_bytes=cpu_rs if spec.state is not None else None),
                            host_bytes=cpu_model + cpu_kv + cpu_compute)
    return phases, report


def _layout_note(spec: ModelSpec, n_ctx: int, ub: int, bk: float, n_seq: int, notes: list[Assumption]) -> None:
    from .llamacpp_kv import layout_note

    note = layout_note(spec, n_ctx, ub, bk, n_seq)
    if note is not None:
        notes.append(Assumption(*note))


def state_note(spec: ModelSpec, n_seq: int, notes: list[Assumption]) -> None:
    st = spec.state
    rec = [i for i, k in enumerate(st.kinds) if k in _STATE_LAYERS]
    r = sum(st.engine_conv_values(i) for i in rec) * RS_BYTES * max(1, n_seq)
    s_ = sum(st.recurrent_values[i] for i in rec) * RS_BYTES * max(1, n_seq)
    notes.append(Assumption("a_llamacpp_recurrent", {
        "layers": len(rec), "attn": sum(1 for i in range(len(st.kinds)) if st.has_kv(i)), "n": len(st.kinds),
        "r": f"{r / 2**20:,.2f} MiB", "s": f"{s_ / 2**20:,.2f} MiB", "seqs": max(1, n_seq),
        "o_np": Opt("n_parallel")}))


def compute_buffer(spec: ModelSpec, n_ctx: int, n_ubatch: int, flash_attn: bool, output_on_gpu: bool,
                   n_outputs: Optional[int] = None) -> int:
    """The GPU compute buffer for one micro-batch (formula in the module docstring); the logits have ``n_outputs``
    rows (:func:`llama_outputs`; ``n_ubatch`` when not given)."""
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
    rows = ub if n_outputs is None else min(ub, n_outputs)
    logits = (spec.vocab_size * rows * 4 + h * rows * 4) if output_on_gpu else 0
    return int(max(attention, ffn, logits))


def host_compute(spec: ModelSpec, n_ctx: int, n_ubatch: int, flash_attn: bool, output_on_gpu: bool,
                 gpu_graph: bool = True, n_outputs: Optional[int] = None) -> int:
    """The host (``CUDA_Host``) compute buffer when the GPU runs the graph: the graph's inputs, which the scheduler
    places in host memory, the KQ mask (``n_kv × n_ubatch``, f32, f16 under flash attention, whose ``n_kv`` is
    padded to 256) and the input embeddings (``n_embd × n_ubatch`` f32), plus the logits when the output layer
    stays on the CPU. Published logs: 62.63 MiB for Qwen3-30B-A3B at n_ctx 30016 under ``-sm row``
    (ggml-org/llama.cpp#13661: 30016 × 512 × 4 + 2048 × 512 × 4 bytes = 62.625 MiB), 12.01 and 72.01 MiB for a
    4096-wide 7B at n_ctx 2048 and 32768 (fedora-copr/logdetective#106). Without a GPU graph (``-ngl 0``) the
    inputs and logits only (the CPU graph's own buffer is not modelled)."""
    h, ub = spec.hidden_size, n_ubatch
    logits = 0 if output_on_gpu else spec.vocab_size * (ub if n_outputs is None else min(ub, n_outputs)) * 4
    if not gpu_graph:
        return int(ub * 4 * h * 2 + logits)
    n_kv = -(-n_ctx // 256) * 256 if flash_attn else n_ctx
    return int(n_kv * ub * (2 if flash_attn else 4) + h * ub * 4 + logits)


def _bits(ftype: str) -> float:
    """Bits per weight of a llama.cpp file type's main tensor type."""
    from ..memory.gguf_mix import FTYPE_DEFAULT
    from ..sources.gguf import ggml_types

    info = next(t for t in ggml_types()["types"].values() if t["name"] == FTYPE_DEFAULT[ftype])
    return info["bytes"] * 8 / info["block"]


# ---- several devices: --split-mode, --tensor-split, --main-gpu, --no-kv-offload, -b (issue #17) ----------------
#
# Read in ggml-org/llama.cpp (src/llama-model.cpp ``llama_model::load_tensors`` and ``make_gpu_buft_list``,
# src/llama.cpp ``llama_model_load_from_file_impl``, src/llama-context.cpp, ggml/src/ggml-cuda/ggml-cuda.cu
# ``get_row_split``; the same code at commit 82bb48500 and at a5410f046):
#
# * ``--split-mode none`` keeps only the ``--main-gpu`` device (``main_gpu < 0``: none, all on the CPU);
#   ``layer`` (default) and ``row`` keep every device.
# * The split points are the normalized running sums of ``--tensor-split`` (float32), or, when it is not given or
#   all zero, of each device's free memory. Layer ``il`` of the ``n_layer + 1`` (the output layer is number
#   ``n_layer``) goes to the CPU when ``il < i_gpu_start = max(n_layer + 1 - ngl, 0)``, else to device
#   ``upper_bound(splits, (il - i_gpu_start) / act_gpu_layers)`` with ``act_gpu_layers = min(ngl, n_layer + 1)``.
#   A layer's tensors and its KV cells live on its device; the token embedding stays on the CPU.
# * ``row``: every device's buffer list starts with the backend's split buffer type, which takes the 2-D matrix
#   weights (``GGML_OP_MUL_MAT``; 3-D expert tensors and 1-D norms/biases are not supported by it and fall back to
#   the layer's own device) and spreads their rows over all devices: device ``id`` holds rows
#   ``[nrows·ts[id], nrows·ts[id+1])`` with ``ts`` the running sums *before* each device (all zero: the devices'
#   total memory), both ends rounded down to ``get_row_rounding`` (the largest ``mmq_y`` of the devices with a
#   share: 128 on NVIDIA Volta and newer, 64 before), the last device taking the rest.
# * ``--no-kv-offload`` (``offload_kqv = false``): the KV cache of every layer stays in host memory.
# * Pipeline parallelism (``llama_context``): more than one device, every layer and the output offloaded
#   (``ngl > n_layer``), ``--split-mode layer`` and the KV cache offloaded. The scheduler then keeps
#   ``GGML_SCHED_MAX_COPIES = 4`` copies of each graph input per backend (``n_copies``), so the inputs of one
#   micro-batch on each device (the KQ mask, ``n_kv × n_ubatch``, and the hidden state crossing into it,
#   ``n_embd × n_ubatch`` f32) are held four times.
# * ``-b`` (``n_batch``): ``n_ubatch`` is clamped to it (``cparams.n_ubatch = min(n_batch, n_ubatch)``).
# * Compute buffers: each device's graph allocator holds the largest set of intermediates of *its* part of the
#   graph: attention and FFN when it holds a repeating layer, the logits when it holds the output layer.

SPLIT_MODES = ("none", "layer", "row")


def _read_tensor_split(value: Any, field: str) -> tuple[float, ...]:
    """``-ts 3,1`` (or ``3/1``, or a list): proportions of zero or more, at most 128 (GGML_CUDA_MAX_DEVICES)."""
    from ..errors import VramscopeError
    from ..units import shown

    items = re.split(r"[,/]", value.strip()) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not 1 <= len([x for x in items if str(x).strip()]) <= 128:
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed="proportions such as 1,1 or 3,1")
    out = []
    for x in items:
        if isinstance(x, str) and not x.strip():
            continue
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise VramscopeError("bad_choice", field=field, value=shown(value),
                                 allowed="proportions such as 1,1 or 3,1") from None
        if not 0 <= f < 1e12 or isinstance(x, bool):
            raise VramscopeError("bad_choice", field=field, value=shown(value),
                                 allowed="proportions of zero or more, such as 1,1 or 3,1")
        out.append(f)
    if not any(out):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed="at least one proportion above 0")
    return tuple(out)
def _read_fit_target(value: Any, field: str) -> tuple[int, ...]:
    """``--fit-target 1024`` or ``1024,2048`` (MiB per device, common/arg.cpp)."""
    from ..errors import VramscopeError
    from ..units import shown

    items = re.split(r"[,/]", value.strip()) if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    try:
        out = tuple(int(str(x).strip()) for x in items if str(x).strip())
    except (TypeError, ValueError):
        out = ()
    if not out or len(out) > 128 or any(x < 0 or x > 10**7 for x in out):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed="MiB such as 1024 or 1024,2048")
    return out


#: ggml-backend.h GGML_SCHED_MAX_COPIES: input copies per backend under pipeline parallelism
SCHED_MAX_COPIES = 4


def _f32(x: float) -> float:
    import struct

    return struct.unpack("f", struct.pack("f", x))[0]


def split_points(weights: "list[float]") -> list[float]:
    """``load_tensors``' split points: the running sums of the weights, divided by their total, in float32."""
    total, sums = 0.0, []
    for x in weights:
        total = _f32(total + _f32(x))
        sums.append(total)
    return [_f32(s / total) for s in sums]


def layer_devices(n_layer: int, n_gpu_layers: Optional[int], splits: "list[float]") -> list[Optional[int]]:
    """The device of each of the ``n_layer + 1`` layers (the last is the output layer); None: the CPU."""
    import bisect

    ngl = n_layer + 1 if n_gpu_layers is None or n_gpu_layers < 0 else n_gpu_layers
    i_gpu_start = max(n_layer + 1 - ngl, 0)
    act = min(ngl, n_layer + 1) if splits else 0
    out: list[Optional[int]] = []
    for il in range(n_layer + 1):
        if il < i_gpu_start or il - i_gpu_start >= act:
            out.append(None)
        else:
            out.append(bisect.bisect_right(splits, _f32(_f32(float(il - i_gpu_start)) / _f32(float(act)))))
    return out


def row_rounding(compute_capability: str) -> int:
    """``get_mmq_y_host`` on NVIDIA: 128 rows from Volta (7.0) on, 64 before."""
    try:
        major = int(str(compute_capability).split(".")[0])
    except ValueError:
        major = 7
    return 128 if major >= 7 else 64


def row_split(nrows: int, shares: "list[float]", rounding: int) -> list[int]:
    """Rows of one matrix on each device under ``--split-mode row`` (``get_row_split``)."""
    n = len(shares)
    total = sum(shares)
    starts, run = [], 0.0
    for s in shares:
        starts.append(_f32(run / total))
        run += s
    out = []
    for i in range(n):
        low = 0 if i == 0 else int(nrows * starts[i])
        low -= low % rounding
        if i == n - 1:
            high = nrows
        else:
            high = int(nrows * starts[i + 1])
            high -= high % rounding
        out.append(max(0, high - low))
    return out


@dataclass(frozen=True, kw_only=True)
class DeviceBuffers(Record):
    """llama.cpp's buffers on one GPU of several (``CUDA<i> model/KV/compute buffer size``)."""

    device: int
    layers: int  # repeating layers assigned to it
    output_layer: bool
    model_buffer_bytes: int
    kv_buffer_bytes: int
    compute_buffer_bytes: int

    @property
    def total(self) -> int:
        return self.model_buffer_bytes + self.kv_buffer_bytes + self.compute_buffer_bytes


def _is_matrix(name: str, shape: tuple[int, ...], count: int, stored: bool) -> bool:
    """A weight the split buffer type takes: 2-D, a matrix product's weight (not a norm or bias)."""
    if count > 1 or name.endswith(".bias") or "norm" in name:
        return False
    dims = [d for d in shape if d > 1]
    return len(dims) == 2 and len(shape) == 2


def _tensors_shaped(model: ResolvedModel, w: Workload) -> list[tuple[str, Optional[int], int, int, bool]]:
    """(name, layer, bytes, rows, is a row-splittable matrix) of every tensor as llama.cpp holds it."""
    if model.kind == "gguf" and model.stored is not None and w.quant == "none":
        out = []
        for t in model.stored:
            rows = t.shape[1] if len(t.shape) >= 2 else 1
            out.append((t.name, _layer_of(t.name), t.nbytes, rows, _is_matrix(t.name, t.shape, 1, True)))
        return out
    ftype = w.quant if w.quant != "none" else {"fp32": "F32", "bf16": "BF16"}.get(w.dtype or "", "F16")
    return [(t.name, t.layer, t.nbytes, t.shape[0] if len(t.shape) == 2 else 1,
             _is_matrix(t.name, t.shape, t.count, False)) for t in _mix(model.spec, ftype)]


def _device_kv(model: ResolvedModel, w: Workload, dev_of: list, used: list, kv_offload: bool,
               ub: int) -> tuple[dict, int, str, str]:
    """The KV cache per layer on the layer's device (``--no-kv-offload``: host memory): (bytes per device, host
    bytes, the K and V cache types)."""
    spec, n_ctx = model.spec, llama_n_ctx(w)
    kv_default = "f16" if (w.kv_dtype in (None, "fp16", "bf16")) else w.kv_dtype
    ctk, ctv = w.cache_type_k or kv_default, w.cache_type_v or kv_default
    bk, bv = KV_DTYPE_BYTES.get(ctk, 2.0), KV_DTYPE_BYTES.get(ctv, 2.0)
    if spec.mla is not None and mla_absorbed(model):
        k_dim, v_dim = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim, 0
    elif spec.mla is not None:
        k_dim, v_dim = spec.num_kv_heads * spec.head_dim, spec.num_kv_heads * spec.mla.v_head_dim
    else:
        k_dim = v_dim = spec.num_kv_heads * spec.head_dim
    kv_b = {d: 0 for d in used}
    cpu_kv = 0
    n_seq, unified = llama_sequences(w)
    swa_full = bool(getattr(w, "swa_full", False))
    for layer in range(spec.num_layers):
        nbytes = sum(layer_cache_bytes(spec, layer, n_ctx, ub, k_dim, v_dim, bk, bv, n_seq, w.flash_attn,
                                       unified, swa_full))
        d = dev_of[layer]
        if d is None or not kv_offload:
            cpu_kv += nbytes
        else:
            kv_b[d] += nbytes
    return kv_b, cpu_kv, ctk, ctv


def _device_compute(spec: ModelSpec, w: Workload, dev_of: list, d: int, has_out: bool, pipeline: bool,
                    kv_offload: bool, ub: int) -> int:
    """Device ``d``'s compute buffer: its layers' graph (the logits too when it holds the output layer), and under
    pipeline parallelism the extra copies of its graph inputs."""
    n_layer, n_ctx, fa = spec.num_layers, llama_n_ctx(w), w.flash_attn
    n_rep = sum(1 for x in dev_of[:n_layer] if x == d)
    if not n_rep and not has_out:
        return 0
    copies = SCHED_MAX_COPIES if pipeline else 1
    n_kv = -(-n_ctx // 256) * 256 if fa else n_ctx
    inputs = n_kv * ub * (2 if fa else 4) + spec.hidden_size * ub * 4  # KQ mask + the hidden state coming in
    full = compute_buffer(spec, n_ctx, ub, fa, has_out, llama_outputs(w))
    if not n_rep:  # the output layer alone: the logits
        full = spec.vocab_size * ub * 4 + spec.hidden_size * ub * 4
    elif not kv_offload:  # attention runs where the cache is: the GPU keeps the FFN and the logits
        h = spec.hidden_size * ub * 4
        ffn = compute_buffer(spec, 1, ub, True, False)
        full = max(ffn, spec.vocab_size * ub * 4 + h if has_out else 0)
    return int(full + (copies - 1) * inputs)


#: ``common/fit.cpp`` ``common_layer_fraction_t``: which FFN tensors of a layer a tensor override moves
#: (``get_overflow_pattern``): ATTN every ``ffn_(gate|up|gate_up|down)`` tensor (the router ``ffn_gate_inp`` and
#: shared experts too: the pattern is searched, ``ffn_gate.*``), UP those but ``ffn_up*``, GATE ``ffn_down*``
#: only, MOE the expert tensors ``ffn_(up|down|gate_up|gate)_(ch|)exps``
LAYER_FRACTION_ATTN, LAYER_FRACTION_UP, LAYER_FRACTION_GATE, LAYER_FRACTION_MOE = 1, 2, 3, 4
_HF_FFN = {"gate_proj": "gate", "up_proj": "up", "down_proj": "down", "gate_up_proj": "gate_up", "w1": "gate",
           "w3": "up", "w2": "down", "fc1": "up", "fc2": "down", "dense_h_to_4h": "up", "dense_4h_to_h": "down",
           "c_fc": "up", "gate": "gate", "shared_expert_gate": "gate"}
_GGUF_FFN = re.compile(r"\.ffn_(gate_up|gate|up|down)(_(?:ch|)exps)?")


def ffn_part(name: str) -> Optional[tuple[str, bool]]:
    """(``gate`` | ``up`` | ``down`` | ``gate_up``, whether an expert tensor) of an FFN weight, GGUF or Hugging Face
    named; None for any other tensor."""
    m = _GGUF_FFN.search(name)
    if m:
        return m.group(1), m.group(2) is not None
    parts = name.split(".")
    if len(parts) >= 2 and parts[-1] in ("weight", "bias") and parts[-2] in _HF_FFN:
        within_ffn = any(p in ("mlp", "feed_forward", "block_sparse_moe", "ffn", "moe") for p in parts)
        if within_ffn or parts[-2] not in ("gate", "w1", "w2", "w3"):
            expert = ".experts." in name and "shared" not in name
            return _HF_FFN[parts[-2]], expert
    return None


def fraction_moves(fraction: int, name: str) -> bool:
    """Whether ``fit``'s override pattern for ``fraction`` matches this tensor."""
    part = ffn_part(name)
    if part is None:
        return False
    kind, expert = part
    if fraction == LAYER_FRACTION_MOE:
        return expert
    if fraction == LAYER_FRACTION_ATTN:
        return True
    if fraction == LAYER_FRACTION_UP:
        return kind != "up"
    if fraction == LAYER_FRACTION_GATE:
        return kind == "down"
    return False


def llamacpp_devices(model: ResolvedModel, w: Workload, n_devices: int, *, split_mode: str = "layer",
                     tensor_split: Optional["list[float]"] = None, main_gpu: int = 0, kv_offload: bool = True,
                     n_batch: Optional[int] = None, free_bytes: Optional["list[int]"] = None,
                     compute_capability: str = "",
                     overrides: Optional[dict[int, tuple[int, Optional[int]]]] = None,
                     tensors: Optional[list] = None,
                     ) -> tuple[list[DeviceBuffers], Buffers, dict[str, Any]]:
    """llama.cpp's buffers on each of ``n_devices`` GPUs and in host memory (rules above).

    Returns (one :class:`DeviceBuffers` per device in use, the host buffers, facts: the devices used, whether
    pipeline parallelism is on, the effective ``n_ubatch``). ``free_bytes``: each device's free memory, the default
    split (equal when not given). ``overrides``: ``-ot``-style tensor buffer overrides as ``fit`` writes them,
    layer -> (a ``LAYER_FRACTION_*``, the device its matching FFN tensors go to, None: host memory); the layer's
    other tensors and its KV cache stay on its own device. ``tensors``: :func:`_tensors_shaped` of the model, when
    the caller measures many trials of one model."""
    spec = model.spec
    n_layer = spec.num_layers
    if split_mode not in SPLIT_MODES:
        raise ValueError(split_mode)
    if split_mode == "none":
        used = [] if main_gpu < 0 else [main_gpu]
    else:
        used = list(range(n_devices))
    ts = list(tensor_split or [])[:n_devices]
    ts += [0.0] * (n_devices - len(ts))
    if split_mode == "none" or not any(ts):
        shares = [float(b) for b in (free_bytes or [1] * n_devices)]
    else:
        shares = [float(x) for x in ts]
    splits = split_points([shares[d] for d in used]) if used else []
    placed = layer_devices(n_layer, w.n_gpu_layers, splits)
    dev_of = [None if p is None else used[p] for p in placed]  # device index per layer (None: CPU)
    output_dev = dev_of[n_layer]
    ngl = n_layer + 1 if w.n_gpu_layers is None or w.n_gpu_layers < 0 else min(w.n_gpu_layers, n_layer + 1)
    ub = min(w.ubatch, n_batch) if n_batch else w.ubatch
    model_b = {d: 0 for d in used}
    cpu_model = 0
    devices_with_layers = sorted({d for d in dev_of[:n_layer] if d is not None})
    any_cpu_layer = any(d is None for d in dev_of[:n_layer])
    row = split_mode == "row" and len(used) > 1
    rounding = row_rounding(compute_capability)
    row_shares = shares if any(ts) else [float(b) for b in (free_bytes or [1] * n_devices)]
    duplicated = output_dev is not None and duplicates_output(model)

    def put(dev: Optional[int], nbytes: int, rows: int, matrix: bool) -> None:
        nonlocal cpu_model
        if dev is None:
            cpu_model += nbytes
        elif row and matrix and rows > 1:
            for d, r in zip(used, row_split(rows, [row_shares[u] for u in used], rounding)):
                model_b[d] += nbytes * r // rows
        else:
            model_b[dev] += nbytes

    for name, layer, nbytes, rows, matrix in (tensors if tensors is not None else _tensors_shaped(model, w)):
        if _is_input(name):
            cpu_model += nbytes
            if duplicated and name in _TOKEN_EMBD:
                put(output_dev, nbytes, rows, matrix)  # TENSOR_DUPLICATED output copy
        elif layer is None and name in _PER_LAYER_DUPLICATED:
            for d in devices_with_layers:
                model_b[d] += nbytes
            cpu_model += nbytes if any_cpu_layer else 0
        elif layer is None:
            put(output_dev, nbytes, rows, matrix)
        else:
            il = min(layer, n_layer - 1)
            dev = dev_of[il]
            if overrides and il in overrides and fraction_moves(overrides[il][0], name):
                dev = overrides[il][1]
            put(dev, nbytes, rows, matrix)
    n_ctx = llama_n_ctx(w)
    kv_b, cpu_kv, ctk, ctv = _device_kv(model, w, dev_of, used, kv_offload, ub)
    pipeline = (len(used) > 1 and ngl > n_layer and split_mode == "layer" and kv_offload)
    out = [DeviceBuffers(device=d, layers=sum(1 for x in dev_of[:n_layer] if x == d), output_layer=output_dev == d,
                         model_buffer_bytes=model_b[d], kv_buffer_bytes=kv_b[d],
                         compute_buffer_bytes=_device_compute(spec, w, dev_of, d, output_dev == d, pipeline,
                                                              kv_offload, ub))
           for d in used]
    cpu_compute = host_compute(spec, n_ctx, ub, w.flash_attn, output_dev is not None, bool(used), llama_outputs(w))
    if not kv_offload:
        cpu_compute = max(cpu_compute, int(n_ctx * ub * (spec.num_heads + 1) * 4 + 4 * spec.hidden_size * ub * 4))
    host = Buffers(model_buffer_bytes=cpu_model, kv_buffer_bytes=cpu_kv, compute_buffer_bytes=cpu_compute)
    facts = {"used": used, "pipeline": pipeline, "n_ubatch": ub, "ctk": ctk, "ctv": ctv, "ngl": ngl,
             "output_dev": output_dev}
    return out, host, facts


def split_options(w: Workload) -> dict[str, Any]:
    """The multi-device options of a workload (plain values; their rows come with the option table)."""
    ts = getattr(w, "tensor_split", None)
    return {"split_mode": getattr(w, "split_mode", None) or "layer",
            "tensor_split": list(ts) if ts else None,
            "main_gpu": getattr(w, "main_gpu", None),
            "kv_offload": not getattr(w, "no_kv_offload", False),
            "n_batch": getattr(w, "batch_size", None),
            "no_mmap": bool(getattr(w, "no_mmap", False)), "mlock": bool(getattr(w, "mlock", False))}


def multi_device(w: Workload) -> bool:
    """Whether the estimate goes through :func:`llamacpp_devices` (several GPUs or a split option given)."""
    o = split_options(w)
    return (w.num_gpus > 1 or o["split_mode"] != "layer" or o["tensor_split"] is not None
            or o["main_gpu"] is not None or not o["kv_offload"] or o["n_batch"] is not None or o["no_mmap"]
            or o["mlock"])


def llamacpp_multi_inference(model: ResolvedModel, w: Workload, notes: list[Assumption],
                             gpus: tuple[Gpu, ...], overrides: Optional[dict] = None,
                             fit: Optional["FitReport"] = None) -> tuple[Phases, LlamacppReport]:
    """Phases of the fullest device and the report with every device's buffers (``overrides``, ``fit``: what
    ``--fit`` decided, :func:`llamacpp_fit_inference`)."""
    o = split_options(w)
    # the devices: --gpus, or as many as --tensor-split names (llama.cpp reads one entry per device it has)
    n = w.num_gpus if w.num_gpus > 1 or not o["tensor_split"] else len(o["tensor_split"])
    main = o["main_gpu"] if o["main_gpu"] is not None else 0
    if o["split_mode"] == "none" and main >= n:
        from ..errors import Text, VramscopeError

        raise VramscopeError("conflict", field="main_gpu", reason=Text("r_main_gpu_range", n=n, last=n - 1,
                                                                       main=main))
    cc = gpus[0].compute_capability if gpus else ""
    free = [g.usable_bytes for g in gpus[:1]] * n if gpus else None
    devs, host, f = llamacpp_devices(model, w, n, split_mode=o["split_mode"], tensor_split=o["tensor_split"],
                                     main_gpu=main, kv_offload=o["kv_offload"], n_batch=o["n_batch"],
                                     free_bytes=free, compute_capability=cc, overrides=overrides)
    top = max(devs, key=lambda d: d.total) if devs else None
    gpu = Buffers(model_buffer_bytes=top.model_buffer_bytes if top else 0,
                  kv_buffer_bytes=top.kv_buffer_bytes if top else 0,
                  compute_buffer_bytes=top.compute_buffer_bytes if top else 0)
    n_layer = model.spec.num_layers
    on_gpu = sum(d.layers for d in devs)
    notes.append(Assumption("a_llamacpp", {"ngl": on_gpu, "n_layer": n_layer, "ctx": w.seq, "ctk": f["ctk"],
                                           "ctv": f["ctv"], "ub": f["n_ubatch"],
                                           "fa": "on" if w.flash_attn else "off"}))
    _layout_note(model.spec, w.seq, f["n_ubatch"], KV_DTYPE_BYTES.get(f["ctk"], 2.0),
                 llama_sequences(w)[0], notes)
    out_dev = next((f"CUDA{d.device}" for d in devs if d.output_layer), "CPU")
    notes.append(Assumption("a_llamacpp_split", {
        "mode": Opt("split_mode", o["split_mode"]), "o_ts": Opt("tensor_split", flag="-ts"), "n": len(devs),
        "layers": ", ".join(f"CUDA{d.device} {d.layers}" for d in devs) or "-", "out": out_dev,
        "ts": ",".join(f"{x:g}" for x in o["tensor_split"]) if o["tensor_split"] else ",".join("1" * n)}))
    if f["pipeline"]:
        notes.append(Assumption("a_llamacpp_pipeline", {"copies": SCHED_MAX_COPIES,
                                                    "o_layer": Opt("split_mode", "layer")}))
    if not o["kv_offload"]:
        notes.append(Assumption("a_llamacpp_no_kv_offload", {"o_nkvo": Opt("no_kv_offload")}))
    # llama_model_loader: mmap by default (the CPU_Mapped buffer is the file's page cache, reclaimable);
    # --no-mmap reads the host tensors into an allocated buffer; --mlock pins the mapping in RAM
    host_kind = "locked" if o["mlock"] else ("allocated" if o["no_mmap"] else "mmap")
    if host.model_buffer_bytes:
        notes.append(Assumption(f"a_llamacpp_host_{host_kind}",
                                {"size": f"{host.model_buffer_bytes / 2**20:,.2f} MiB",
                                 "o_no_mmap": Opt("no_mmap"), "o_mlock": Opt("mlock")}))
    phases = {"load": {"weights": gpu.model_buffer_bytes},
              "prefill": {"weights": gpu.model_buffer_bytes, "kv_cache": gpu.kv_buffer_bytes,
                          "activations": gpu.compute_buffer_bytes}}
    report = LlamacppReport(n_gpu_layers=on_gpu, output_on_gpu=f["output_dev"] is not None, n_ctx=w.seq,
                            n_ubatch=f["n_ubatch"], cache_type_k=f["ctk"], cache_type_v=f["ctv"],
                            flash_attn=w.flash_attn, gpu=gpu, host=host,
                            host_bytes=host.model_buffer_bytes + host.kv_buffer_bytes + host.compute_buffer_bytes,
                            split_mode=o["split_mode"], tensor_split=o["tensor_split"], main_gpu=main,
                            pipeline_parallel=f["pipeline"], devices=devs, host_model_buffer=host_kind, fit=fit)
    return phases, report


#: the assumption naming what --fit did
FIT_NOTE = {"unchanged": "a_llamacpp_fit_unchanged", "fitted": "a_llamacpp_fit_fitted", "failed": "a_llamacpp_fit_failed"}
FIT_STATUS = {"unchanged": "fit_status_unchanged", "fitted": "fit_status_fitted", "failed": "fit_status_failed"}


def fit_free_bytes(gpu: Gpu) -> int:
    """What llama.cpp reads as a device's free memory (``cudaMemGetInfo``, after it created its CUDA context): the
    GPU's usable memory less the context vramscope counts (``memory/overhead.py`` ``CONTEXT_NOMINAL``)."""
    from ..memory.overhead import CONTEXT_NOMINAL

    return max(gpu.usable_bytes - CONTEXT_NOMINAL, 0)


def run_fit(model: ResolvedModel, w: Workload, gpus: tuple[Gpu, ...], *, n_devices: int,
            targets_mib: Optional["list[int]"] = None, auto_ctx: bool = False, n_ctx_min: int = 4096,
            user_ngl: Optional[int] = None) -> tuple[Workload, Optional[dict], FitReport]:
    """``common_fit_params`` on ``n_devices`` of the first GPU named: (the workload with what it set, the tensor
    overrides, the report)."""
    from .llamacpp_fit import FIT_TARGET, fit_params, llamacpp_measure, overrides as fit_overrides

    o = split_options(w)
    main = o["main_gpu"] if o["main_gpu"] is not None else 0
    used = [main] if o["split_mode"] == "none" else list(range(n_devices))
    free = [fit_free_bytes(gpus[0])] * n_devices
    cc = gpus[0].compute_capability
    spec = model.spec
    n_ctx_train = spec.max_position_embeddings or w.seq
    measure = llamacpp_measure(model, w, n_devices, n_ctx_train=n_ctx_train, split_mode=o["split_mode"],
                               tensor_split=o["tensor_split"], main_gpu=main, kv_offload=o["kv_offload"],
                               n_batch=o["n_batch"], free_bytes=free, compute_capability=cc)
    margins = [t * 2**20 for t in targets_mib] if targets_mib else [FIT_TARGET]
    margins = (margins + [margins[-1]] * len(used))[:len(used)]
    n_expert = spec.moe.num_experts if spec.moe is not None else 0
    r = fit_params(measure, free=[free[d] for d in used], names=[f"CUDA{d} ({gpus[0].name})" for d in used],
                   hp_ngl=spec.num_layers, n_ctx_train=n_ctx_train, n_expert=n_expert,
                   n_ctx=0 if auto_ctx else w.seq, margins=margins, n_ctx_min=n_ctx_min, n_gpu_layers=user_ngl,
                   user_tensor_split=o["tensor_split"] is not None, split_row=o["split_mode"] == "row",
                   total_mem=[gpus[0].usable_bytes] * len(used))
    new = w
    ovr = None
    if r.n_ctx:
        new = replace(new, seq=r.n_ctx)
    elif auto_ctx:
        new = replace(new, seq=n_ctx_train)
    if r.ngl is not None:
        new = replace(new, n_gpu_layers=r.n_gpu_layers,
                      tensor_split=tuple(float(x) for x in r.tensor_split) if r.tensor_split else None)
        ovr = fit_overrides(r.ngl, r.overflow, spec.num_layers) or None
    report = FitReport(status=r.status, target_mib=[m // 2**20 for m in margins], free_bytes=[free[d] for d in used],
                       n_gpu_layers=r.n_gpu_layers, tensor_split=r.tensor_split, overflowing=r.overflowing,
                       n_ctx=r.n_ctx or None, reason=r.reason or None, trace=r.trace)
    return new, ovr, report


def llamacpp_fit_inference(model: ResolvedModel, w: Workload, notes: list[Assumption],
                           gpus: tuple[Gpu, ...]) -> tuple[Phases, LlamacppReport]:
    """``llama-server --fit on``: fit on the first GPU named, then the buffers of what it decided."""
    o = split_options(w)
    n = w.num_gpus if w.num_gpus > 1 or not o["tensor_split"] else len(o["tensor_split"])
    targets = list(getattr(w, "fit_target", None) or ()) or None
    new, ovr, fit = run_fit(model, w, gpus, n_devices=n, targets_mib=targets,
                            auto_ctx=bool(getattr(w, "fit_auto_ctx", False)),
                            n_ctx_min=getattr(w, "fit_ctx", None) or 4096, user_ngl=w.n_gpu_layers)
    phases, report = llamacpp_multi_inference(model, new, notes, gpus, overrides=ovr, fit=fit)
    notes.append(Assumption(FIT_NOTE[fit.status], {
        "gpu": gpus[0].name, "free": f"{fit.free_bytes[0] / 2**20:,.0f} MiB", "target": fit.target_mib[0],
        "o_ngl": Opt("n_gpu_layers", report.n_gpu_layers + (1 if report.output_on_gpu else 0), flag="-ngl"),
        "n": model.spec.num_layers + 1,
        "ts": ",".join(map(str, fit.tensor_split)) if fit.tensor_split else "-", "part": fit.overflowing,
        "ctx": new.seq, "reason": fit.reason or ""}))
    return phases, report


class LlamaCpp(Engine):
    name = "llama.cpp"
    multi_gpu = True  # --gpus N: llama.cpp's layer / row split (llamacpp_devices)
    aliases = ("llamacpp", "llama-cpp")
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
               choices=LLAMA_CACHE_TYPES, help_en="like {k}", help_zh="同 {k}", help_opts={"k": Opt("cache_type_k")}),
        Option("flash_attn", ("--flash-attn", "-fa"), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="flash attention", help_zh="flash attention（闪电注意力）"),
        Option("ubatch", ("--ubatch-size", "-ub"), "int", 512, group="llama.cpp", owner="llama.cpp", lo=1,
               hi=1_000_000, help_en="physical micro-batch (default 512)", help_zh="物理微批大小（默认 512）"),
        # several devices (issue #17): llamacpp_devices
        Option("split_mode", ("--split-mode", "-sm"), "choice", None, group="llama.cpp", owner="llama.cpp",
               choices=SPLIT_MODES,
               help_en="how {gpus} share the model: layer (default), row (matrix rows spread), none ({main} only)",
               help_zh="{gpus} 如何分担模型：layer（默认）、row（矩阵按行分布）、none（仅 {main}）",
               help_opts={"gpus": Opt("num_gpus"), "main": Opt("main_gpu")}),
        Option("tensor_split", ("--tensor-split", "-ts"), "custom", None, group="llama.cpp", owner="llama.cpp",
               parse=_read_tensor_split, metavar="N0,N1,...",
               help_en="proportions of the model per GPU, e.g. 3,1 (default: each GPU's free memory)",
               help_zh="每张 GPU 分到的模型比例，例如 3,1（默认按各 GPU 的空闲显存）"),
        Option("main_gpu", ("--main-gpu", "-mg"), "int", None, group="llama.cpp", owner="llama.cpp", lo=0,
               hi=127, help_en="the GPU that holds the model with {none} (default 0)",
               help_zh="{none} 时放模型的 GPU（默认 0）", help_opts={"none": Opt("split_mode", "none")}),
        Option("no_kv_offload", ("--no-kv-offload", "-nkvo"), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="keep the KV cache (and attention) in host memory",
               help_zh="把 KV 缓存（及注意力计算）留在主机内存"),
        Option("no_op_offload", ("--no-op-offload",), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="keep ops whose weights sit in host memory on the CPU (llama.cpp's default runs them on the "
                       "GPU for prompt batches of 32 tokens or more, through a GPU compute buffer)",
               help_zh="权重在主机内存的算子留在 CPU 上计算（llama.cpp 默认在 32 个 token 及以上的提示批次时把它们放到 GPU 上，"
                       "经由 GPU 计算缓冲区）"),
        Option("batch_size", ("--batch-size", "-b"), "int", None, group="llama.cpp", owner="llama.cpp", lo=1,
               hi=1_000_000, help_en="logical batch (default 2048); n_ubatch is at most it",
               help_zh="逻辑批大小（默认 2048）；n_ubatch 不超过它"),
        Option("n_parallel", ("--parallel", "-np"), "int", None, group="llama.cpp", owner="llama.cpp", lo=1,
               hi=4096,
               help_en="parallel sequences (n_seq_max, default 1; llama-server's auto is 4): a recurrent / hybrid "
                       "model keeps one conv and one SSM state per sequence",
               help_zh="并行序列数（n_seq_max，默认 1；llama-server 的 auto 为 4）：循环/混合模型每条序列保留一份卷积状态和"
                       "一份 SSM 状态"),
        Option("llama_server", ("--llama-server",), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="the run is llama-server (not llama-cli): {np} left at auto means 4 sequences over one "
                       "unified KV buffer, and the compute graph keeps logits for {np} rows only (#23861)",
               help_zh="运行的是 llama-server（而不是 llama-cli）：{np} 为 auto 时为 4 条序列共用一个 KV 缓冲区，"
                       "计算图只为 {np} 行保留 logits（#23861）",
               help_opts={"np": Opt("n_parallel")}),
        Option("llamacpp_unpadded_ctx", ("--llamacpp-unpadded-ctx",), "flag", False, group="llama.cpp",
               owner="llama.cpp",
               help_en="a llama.cpp build from before 2025-11-07 (#17046), which kept n_ctx as given; later builds pad "
                       "it to a multiple of 256 for the caches and the compute graph",
               help_zh="2025-11-07（#17046）之前的 llama.cpp 版本，n_ctx 按给定值使用；之后的版本在缓存和计算图中把它填充到 256 "
                       "的倍数"),
        Option("kv_unified", ("--kv-unified", "-kvu"), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="one KV buffer shared by all {np} sequences (n_ctx cells) instead of one per sequence "
                       "(n_ctx / {np} each); sliding layers then keep n_swa x {np} + n_ubatch cells; llama-server "
                       "turns it on when {np} is left at auto (4 sequences)",
               help_zh="所有 {np} 条序列共用一个 KV 缓冲区（n_ctx 个单元），而不是每条序列一个（各 n_ctx / {np}）；"
                       "此时滑动窗口层保留 n_swa x {np} + n_ubatch 个单元；llama-server 在 {np} 为 auto（4 条序列）时开启",
               help_opts={"np": Opt("n_parallel")}),
        Option("swa_full", ("--swa-full",), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="sliding-window layers keep a full-size cache (all n_ctx cells, as the other layers)",
               help_zh="滑动窗口层保留完整大小的缓存（与其他层一样全部 n_ctx 个单元）"),
        Option("no_mmap", ("--no-mmap",), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="read host-side tensors into allocated RAM instead of mapping the file",
               help_zh="把主机侧张量读入分配的内存，而不是映射文件"),
        Option("mlock", ("--mlock",), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="pin the model in RAM", help_zh="把模型锁定在内存中"),
        # --fit (common/fit.cpp; llama-server's default is on, vramscope's off: every layer, as given)
        Option("fit", ("--fit",), "choice", None, group="llama.cpp", owner="llama.cpp", choices=("on", "off"),
               help_en="on: llama.cpp's fit lowers {ngl} and sets {ts} (and the context when left to the model) so "
                       "that each GPU named keeps {target} free (default off here; llama-server's default is on)",
               help_zh="on：llama.cpp 的 fit 降低 {ngl} 并设置 {ts}（上下文交给模型时也降低上下文），使每张所选 GPU 保留 "
                       "{target} 的空闲显存（此处默认 off；llama-server 默认 on）",
               help_opts={"ngl": Opt("n_gpu_layers", flag="-ngl"), "ts": Opt("tensor_split", flag="-ts"),
                          "target": Opt("fit_target")}),
        Option("fit_target", ("--fit-target",), "custom", None, group="llama.cpp", owner="llama.cpp",
               parse=_read_fit_target, metavar="MiB[,MiB...]",
               help_en="with {fit}: MiB to leave free on each device (default 1024; one value for all)",
               help_zh="配合 {fit}：每个设备保留的空闲 MiB（默认 1024；一个值表示全部设备）",
               help_opts={"fit": Opt("fit", "on")}),
        Option("fit_ctx", ("--fit-ctx",), "int", None, group="llama.cpp", owner="llama.cpp", lo=1, hi=10_000_000,
               help_en="with {fit}: the smallest context it may set (default 4096)",
               help_zh="配合 {fit}：可设置的最小上下文（默认 4096）", help_opts={"fit": Opt("fit", "on")}),
        Option("fit_auto_ctx", ("--fit-auto-ctx",), "flag", False, group="llama.cpp", owner="llama.cpp",
               help_en="with {fit}: the context was left to the model (llama.cpp's context size 0), so fit may "
                       "lower it",
               help_zh="配合 {fit}：上下文交给模型决定（llama.cpp 的上下文大小为 0），fit 可以降低它",
               help_opts={"fit": Opt("fit", "on")}),
    )

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        from .llamacpp_kv import refuse_unsupported

        refuse_unsupported(model)
        if getattr(w, "fit", None) == "on" and gpus:
            return llamacpp_fit_inference(model, w, notes, gpus)
        if getattr(w, "fit", None) == "on":
            notes.append(Assumption("a_llamacpp_fit_no_gpu", {"o_gpu": Opt("gpu")}))
        if multi_device(w):
            return llamacpp_multi_inference(model, w, notes, gpus)
        return llamacpp_inference(model, w, notes)

    overhead_note = "a_overhead_llamacpp"

    def runtime_overhead(self, transient: int, gpu: Optional[Gpu]) -> Any:
        """The CUDA context alone: llama.cpp runs no torch, so there is no torch cuBLAS workspace (ggml-cuda's
        cuBLAS handle keeps its own, inside the context's range); its compute buffer is counted above."""
        from ..memory.overhead import runtime_overhead

        return runtime_overhead(transient, 0)

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
            cands.append(("s_flash", {"opt": Opt("flash_attn", flag="-fa")}, {"flash_attn": True}, "none"))
        ngl = self.max_gpu_layers(model, w, usable, needs)
        if ngl is not None and ngl <= model.spec.num_layers:  # -ngl N: the output layer, then N - 1 layers
            key = "s_ngl" if ngl else "s_ngl_cpu"
            cands.append((key, {"n": ngl, "layers": max(ngl - 1, 0), "total": model.spec.num_layers,
                                "opt": Opt("n_gpu_layers", ngl, flag="-ngl")}, {"n_gpu_layers": ngl}, "speed"))
        return cands

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        host = e.engine["host"]
        lines = [t("llamacpp_device_line", lang, device=d["device"], layers=d["layers"],
                   out=t("llamacpp_output_layer", lang) if d["output_layer"] else "",
                   model=format_bytes(d["model_buffer_bytes"], units), kv=format_bytes(d["kv_buffer_bytes"], units),
                   compute=format_bytes(d["compute_buffer_bytes"], units))
                 for d in e.engine.get("devices") or ()]
        fit = e.engine.get("fit")
        if fit:
            lines.insert(0, t("llamacpp_fit_line", lang, status=t(FIT_STATUS[fit["status"]], lang),
                              ngl=fit.get("n_gpu_layers", "-"), ts=",".join(map(str, fit.get("tensor_split") or [])) or "-",
                              part=fit.get("overflowing", 0), ctx=e.engine["n_ctx"]))
        return lines + [t("llamacpp_host_line", lang, model=format_bytes(host["model_buffer_bytes"], units),
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
        # several devices: -ts names them (else the devices the log lists), -sm / -mg / -b / -nkvo as given
        for key, field in (("num_gpus", "num_gpus"), ("tensor_split", "tensor_split"), ("split_mode", "split_mode"),
                           ("main_gpu", "main_gpu"),
                           ("n_batch_logical", "batch_size"), ("no_kv_offload", "no_kv_offload"),
                           ("no_op_offload", "no_op_offload"), ("n_parallel", "n_parallel"),
                           ("kv_unified", "kv_unified"), ("swa_full", "swa_full"),
                           ("llamacpp_unpadded_ctx", "llamacpp_unpadded_ctx"), ("llama_server", "llama_server")):
            if src.get(key) is not None:
                out[field] = src[key]
        return out, True

    def printed_components(self, e: Estimate) -> dict[str, int]:
        """The GPU buffers of llama.cpp's load log; on several devices also each ``CUDA<i>`` buffer and the host
        model buffer (``CUDA_Host``/``CPU_Mapped``)."""
        g = e.engine["gpu"]
        out = {"weights": g["model_buffer_bytes"], "kv_cache": g["kv_buffer_bytes"],
               "compute_buffer": g["compute_buffer_bytes"]}
        for d in e.engine.get("devices") or ():
            i = d["device"]
            out.update({f"model_buffer_cuda{i}": d["model_buffer_bytes"], f"kv_buffer_cuda{i}": d["kv_buffer_bytes"],
                        f"compute_buffer_cuda{i}": d["compute_buffer_bytes"]})
        if e.engine.get("devices"):
            out["host_model_buffer"] = e.engine["host"]["model_buffer_bytes"]
        out["host_compute_buffer"] = e.engine["host"]["compute_buffer_bytes"]
        return out


ENGINE = LlamaCpp()
