"""Ollama: its scheduler's own decision, the GPU/CPU layer split ``ollama ps`` shows, memory per GPU.

Ollama has placed the layers three ways, all ported as Ollama wrote them (ollama/ollama, read at the tags named),
chosen by ``--ollama-version`` (default 0.32.15, the newest release read):

* from v0.30.0 (#16031, 9db4bdbad): Ollama starts llama-server and its ``--fit`` places the layers
  (:func:`llama_server_run`, the section at the end; ``engines/llamacpp_fit.py``);

* to v0.12.10, for the models its llama.cpp runner serves: an estimate from the GGUF metadata alone
  (``llm/memory.go``, below);
* from v0.12.11 (commit f560bd077) for every model, and from v0.11.5 (d5a0d8d90) for those its own engine runs
  (gemma3, qwen3, gpt-oss, ...): a layout over what the runner reports each layer and graph takes
  (:func:`build_layout`; the sizes are the llama.cpp buffers ``engines/llamacpp.py`` computes).

The estimate of v0.12.10:

* ``llm/memory.go`` ``estimateGPULayers``: each GPU must hold ``MinimumMemory`` (457 MiB on CUDA/ROCm, 512 MiB on
  Metal) + ``OLLAMA_GPU_OVERHEAD`` + the graph + one layer as a buffer + at least one more layer, else it gets
  none; layers are placed from the last (``blk.N-1``) down, layer ``i`` tried on GPU ``i % j`` of the ``j`` GPUs
  still with room, a GPU that cannot take it dropped; a layer is its ``blk.i`` tensors plus its KV cache;
  ``num_gpu`` stops after that many layers; the output layer (``output_norm`` + ``output``, or ``token_embd`` when
  tied) goes last, if it fits; the graph (full offload when every layer and the output fit, partial otherwise;
  several GPUs always use the partial one) is added to every GPU that got a layer.
* ``pickBestFullFitByLibrary``: the GPUs sorted by free memory, the fewest that hold the whole model (all GPUs
  with ``OLLAMA_SCHED_SPREAD``), else all of them (a partial fit).
* ``fs/ggml/ggml.go`` ``GraphSize``: the KV cache per layer, ``num_ctx × num_parallel × (key_length +
  value_length) × head_count_kv`` × bytes of ``OLLAMA_KV_CACHE_TYPE`` (f16 2, q8_0 1, q4_0 0.5; only with flash
  attention), and the per-architecture graph formulas (ported one for one in :func:`graph_size`).
* ``ollama ps``: SIZE is the estimate's total, PROCESSOR ``100% GPU``, ``100% CPU`` or ``48%/52% CPU/GPU`` from
  the share of it in VRAM (``cmd/cmd.go``).

Its defaults: ``num_ctx`` 2048 before v0.6.4... (see :func:`default_num_ctx`), ``num_batch`` 512,
``num_gpu`` -1 (as many as fit), ``OLLAMA_NUM_PARALLEL`` 1, flash attention off unless the model family turns it
on by default (gemma3, gpt-oss, qwen3, qwen3moe, qwen3vl) or ``OLLAMA_FLASH_ATTENTION`` says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..errors import Opt
from ..options import Option
from ..result import Assumption, Estimate, GpuVerdict
from .base import Engine, EngineReport, Phases, Record

MiB = 2**20
GiB = 2**30
#: ml/device.go MinimumMemory
MINIMUM_MEMORY = 457 * MiB
MINIMUM_MEMORY_METAL = 512 * MiB
#: fs/ggml/ggml.go kvCacheBytesPerElement
KV_BYTES = {"q8_0": 1.0, "q4_0": 0.5, "f32": 4.0, "f16": 2.0}
#: fs/ggml/ggml.go FlashAttention(): the families that turn flash attention on by default
FA_DEFAULT_ARCHS = ("gemma3", "gptoss", "gpt-oss", "qwen3", "qwen3moe", "qwen3vl", "qwen3vlmoe")
#: the version modelled by default: the newest release read (v0.32.15, 2026-08-19; from v0.30.0 llama-server's
#: --fit places the layers, :func:`llama_server_run`)
OLLAMA_VERSION = "0.32.15"


# ---- defaults by version -------------------------------------------------------------------------------------

def _version(text: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", str(text))[:3]
    return tuple(int(n) for n in nums) + (0,) * (3 - len(nums))


def default_num_ctx(version: str, total_vram: int, gpu_overhead: int = 0) -> int:
    """Ollama's ``num_ctx`` when neither the request, the Modelfile nor ``OLLAMA_CONTEXT_LENGTH`` sets one.

    envconfig/config.go: 2048 until v0.6.x, 4096 from v0.7.0 (``ContextLength = Uint("OLLAMA_CONTEXT_LENGTH",
    4096)``), and from v0.15.5 (commit 0334ffa62, server/routes.go ``Serve``) by the total VRAM of all GPUs less
    ``OLLAMA_GPU_OVERHEAD`` each: at least 47 GiB 262144, at least 23 GiB 32768, else 4096."""
    v = _version(version)
    if v < (0, 7, 0):
        return 2048
    if v < (0, 15, 5):
        return 4096
    if total_vram >= 47 * GiB:
        return 262144
    if total_vram >= 23 * GiB:
        return 32768
    return 4096


def flash_attention(arch: str, env: Optional[bool], all_gpus_support: bool = True,
                    head_k: int = 1, head_v: int = 1, embedding_model: bool = False) -> bool:
    """``useFlashAttention``: ``OLLAMA_FLASH_ATTENTION`` (unset: the family's default), the GPUs support it and
    the model does (``SupportsFlashAttention``: not an embedding model, not gemma2, equal non-zero K/V head sizes)."""
    wanted = arch in FA_DEFAULT_ARCHS if env is None else env
    supports = not embedding_model and arch != "gemma2" and head_k != 0 and head_k == head_v
    return bool(wanted and all_gpus_support and supports)


def kv_cache_type(requested: Optional[str], flash: bool) -> str:
    """``OLLAMA_KV_CACHE_TYPE`` applies with flash attention and only f16, q8_0 and q4_0; else f16."""
    r = (requested or "").strip().lower()
    return r if flash and r in ("f16", "q8_0", "q4_0") else "f16"


# ---- GraphSize (fs/ggml/ggml.go) -----------------------------------------------------------------------------

@dataclass(frozen=True)
class GgufFacts:
    """What ``GraphSize`` and ``estimateGPULayers`` read from a GGUF file."""

    arch: str
    block_count: int
    embedding: int
    heads: int  # HeadCountMax
    heads_min: int
    heads_kv: int  # HeadCountKVMax
    heads_kv_min: int
    head_k: int  # EmbeddingHeadCountK
    head_v: int
    vocab: int
    context_length: int
    layer_sizes: tuple[int, ...]  # bytes of the blk.i tensors
    output_size: int  # output_norm + output (or token_embd when there is no output tensor)
    input_size: int = 0  # token_embd (kept on the CPU)
    ffn_length: int = 0
    ffn_gate_exps_size: int = 0  # blk.0.ffn_gate_exps.weight, bytes (Mixtral 8x22B branch)
    sliding_window: int = 0
    attention_layers: Optional[tuple[bool, ...]] = None  # per layer: has attention heads (else recurrent)
    #: ``n_embd_r + n_embd_s`` of a recurrent layer, from the file's ``ssm.conv_kernel``, ``ssm.inner_size``,
    #: ``ssm.state_size`` and ``ssm.group_count`` (one value for every layer without heads)
    recurrent_values: int = 0

    @property
    def embedding_heads(self) -> int:
        """EmbeddingHeadCountMax: embedding_length / HeadCountMin."""
        return self.embedding // self.heads_min if self.heads_min > 0 else 0


def graph_size(f: GgufFacts, context: int, batch: int, num_parallel: int, kv_type: str,
               flash: bool) -> tuple[list[int], int, int]:
    """``GGML.GraphSize``: (KV bytes per layer, partial-offload graph, full-offload graph). Integer arithmetic
    as Go's uint64 (``//`` for ``/``); a formula the file has not is 0 and the caller's fallback applies."""
    context *= num_parallel
    emb, heads, heads_kv, vocab = f.embedding, f.heads, f.heads_kv, f.vocab
    emb_heads, hk, hv = f.embedding_heads, f.head_k, f.head_v
    bpe = KV_BYTES.get(kv_type, 2.0)
    kv = []
    for i in range(f.block_count):
        if f.attention_layers is None or f.attention_layers[i]:
            kv.append(int(float(context * (hk + hv) * heads_kv) * bpe))
        else:
            # a recurrent layer (GraphSize since v0.11.11, #12186): llama.cpp's r and s states of one sequence,
            # f32 ("recurrent always uses F32 in llama.cpp backend"), not multiplied by num_parallel
            kv.append(f.recurrent_values * 4)
    kv_total = sum(kv)
    full = partial = 0
    arch = f.arch
    if arch in ("llama", "llama4"):
        full = max(4 * batch * (1 + 4 * emb + context * (1 + heads)), 4 * batch * (emb + vocab))
        partial = 4 * batch * emb
        partial += max(4 * batch * (1 + emb + max(context, emb)) + emb * emb * 9 // 16
                       + 4 * context * (batch * heads + emb_heads * heads_kv),
                       4 * batch * (emb + vocab) + emb * vocab * 105 // 128)
        if f.ffn_gate_exps_size:  # mixtral 8x22b (merged expert tensors)
            ff = f.ffn_length
            partial = max(3 * f.ffn_gate_exps_size
                          + 4 * batch * (2 * ff + heads_kv + emb + context + emb_heads * heads_kv),
                          4 * (context * batch * heads + context * emb_heads * heads_kv + batch * 1024
                               + emb_heads * heads_kv * batch))
    elif arch in ("gemma", "gemma2", "gemma3", "gemma3n"):
        full = max(4 * batch * (emb + vocab),
                   4 * batch * (2 + context + context * heads + 2 * emb + 2 * hk * heads))
        partial = max(4 * emb * batch + emb * vocab * 105 // 128 + 4 * vocab * batch,
                      4 * batch * (2 * emb + 1 + 2 * hk * heads + context + context * heads)
                      + 4 * hk * context * 8 + emb * hk * heads * 9 // 16)
        if arch == "gemma3n":
            full *= 4
            partial *= 4
        if arch == "gemma3":  # every 6th layer global, the others keep num_parallel × sliding_window + batch
            window = num_parallel * f.sliding_window + batch
            for i in range(len(kv)):
                if (i + 1) % 6 != 0:
                    kv[i] = int(float(window * (hk + hv) * heads_kv) * bpe)
    elif arch == "command-r":
        full = max(4 * batch * (emb + vocab), 4 * batch * (2 + 4 * emb + context * (1 + heads)))
        partial = max(4 * batch * (emb + vocab) + emb * vocab * 105 // 128,
                      4 * batch * (1 + 2 * emb + context * (1 + heads)) + 4 * emb * context + emb * emb * 9 // 16)
    elif arch == "qwen2":
        full = max(4 * batch * (emb + vocab), 4 * batch * (1 + 2 * emb + context + context * heads))
        partial = max(4 * batch * (emb + vocab) + emb * vocab * 105 // 128,
                      4 * (batch * (1 + 2 * emb + context * (1 + heads)) + emb * (1 + context)))
    elif arch == "phi2":
        full = max(4 * batch * (emb + vocab), 4 * batch * (1 + 4 * emb + context + context * heads))
        partial = max(4 * batch * (2 * emb + vocab) + emb * vocab * 105 // 128,
                      4 * batch * (2 + 3 * emb + context + context * heads))
    elif arch == "stablelm":
        full = 4 * batch * (context * (1 + heads) + 3 * emb + 2)
        partial = max(4 * batch * (vocab + 2 * emb), full)
    elif arch == "deepseek2":
        full = max(4 * batch * (3 * emb + vocab),
                   4 * batch * (3 * emb + 2 + context * (1 + heads_kv) + 2 * hk * heads_kv))
        partial = max(4 * batch * (3 * emb + vocab) + emb * vocab * 105 // 128,
                      4 * batch * (2 * emb + 1 + 2 * hk * heads_kv + context + context * heads_kv)
                      + 4 * hk * context * heads_kv + emb * hk * heads_kv * 9 // 16)
    elif arch in ("gptoss", "gpt-oss"):
        for i in range(len(kv)):
            kv[i] = int(float((hk + hv) * heads_kv) * bpe)
            kv[i] *= (num_parallel * 4096 + batch) if i % 2 == 0 else context
        partial = 2 * f.heads // max(f.heads_kv_min, 1) * kv_total // 6
        if flash:
            partial = (4 * num_parallel + (context >> 10) + 110) * MiB
    return kv, partial, full


# ---- estimateGPULayers (llm/memory.go) -----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class OllamaDevice(Record):
    """One GPU's share as Ollama's estimate allocates it (``memory.required.allocations``)."""

    device: int
    free_bytes: int
    layers: int  # layers.split entry (the output layer counts as one)
    allocation_bytes: int
    weights_bytes: int
    kv_bytes: int
    graph_bytes: int
    reserve_bytes: int  # MinimumMemory + one layer kept as a buffer


@dataclass(frozen=True)
class MemoryEstimate:
    layers: int
    graph: int
    vram_size: int
    total_size: int
    tensor_split: tuple[int, ...]
    gpu_sizes: tuple[int, ...]
    kv_total: int
    graph_full: int
    graph_partial: int
    memory_weights: int
    memory_layer_output: int
    devices: tuple[OllamaDevice, ...] = ()


def estimate_gpu_layers(f: GgufFacts, free: Sequence[int], num_ctx: int, num_batch: int, num_parallel: int,
                        num_gpu: int = -1, kv_type: str = "f16", flash: bool = False, overhead: int = 0,
                        metal: bool = False, projector_weights: int = 0) -> MemoryEstimate:
    """Port of ``estimateGPULayers`` for GPUs of one library with ``free`` bytes each (module docstring)."""
    minimum = MINIMUM_MEMORY_METAL if metal else MINIMUM_MEMORY
    n = f.block_count
    layer_size = f.layer_sizes[0] if f.layer_sizes else 0
    kv, partial, full = graph_size(f, num_ctx, min(num_ctx, num_batch), num_parallel, kv_type, flash)
    if kv:
        layer_size += kv[0]
    kv_total = sum(kv)
    if partial == 0:
        heads_kv = f.heads_kv_min or 1
        partial = f.heads // heads_kv * kv_total // 6
    if full == 0:
        full = partial
    if free and metal:
        partial = full
    elif len(free) > 1:
        full = partial
    output = f.output_size
    gpu_zero_overhead = projector_weights
    tensor_split = [0] * len(free)
    alloc = [0] * len(free)
    weights = [0] * len(free)
    kvs = [0] * len(free)
    reserve = [0] * len(free)
    with_space: list[int] = []
    overflow = 0
    for i, fr in enumerate(free):
        gzo = gpu_zero_overhead if not with_space else 0
        if fr < overhead + gzo + max(partial, full) + minimum + 2 * layer_size:
            continue
        with_space.append(i)
        alloc[i] += minimum + layer_size
        reserve[i] = minimum + layer_size
    if with_space:
        alloc[with_space[0]] += gpu_zero_overhead
    else:
        overflow += gpu_zero_overhead
    layer_count = 0
    memory_weights = 0
    for i in range(n - 1, -1, -1):
        if i < len(f.layer_sizes):
            layer_size = f.layer_sizes[i] + kv[i]
            memory_weights += f.layer_sizes[i]
        if num_gpu >= 0 and layer_count >= num_gpu:
            overflow += layer_size
            continue
        j = len(with_space)
        while j > 0:
            g = with_space[i % j]
            used = alloc[g] + max(partial, full)
            if free[g] > overhead + used + layer_size:
                alloc[g] += layer_size
                weights[g] += f.layer_sizes[i] if i < len(f.layer_sizes) else 0
                kvs[g] += kv[i]
                tensor_split[g] += 1
                layer_count += 1
                break
            del with_space[i % j]
            j -= 1
        if not with_space:
            overflow += layer_size
    fully = layer_count >= n
    last = output
    if last > 0:
        if num_gpu < 0 or layer_count < num_gpu:
            j = len(with_space)
            while j > 0:
                g = with_space[layer_count % j]
                used = alloc[g] + max(partial, full)
                if free[g] > overhead + used + last:
                    alloc[g] += last
                    weights[g] += last
                    tensor_split[g] += 1
                    layer_count += 1
                    break
                j -= 1  # (memory.go does not drop the GPU here)
        if layer_count < n + 1:
            fully = False
            overflow += last
    graph = full if fully else partial
    for i in range(len(free)):
        if tensor_split[i] > 0:
            alloc[i] += graph
    vram = sum(alloc)
    total = vram + overflow
    devices = tuple(OllamaDevice(device=i, free_bytes=free[i], layers=tensor_split[i], allocation_bytes=alloc[i],
                                 weights_bytes=weights[i], kv_bytes=kvs[i],
                                 graph_bytes=graph if tensor_split[i] > 0 else 0, reserve_bytes=reserve[i])
                    for i in range(len(free)))
    if not free or layer_count == 0:
        return MemoryEstimate(0, 0, 0, total, (), (), kv_total, full, partial, memory_weights, output)
    return MemoryEstimate(layer_count, graph, vram, total, tuple(tensor_split), tuple(alloc), kv_total, full,
                          partial, memory_weights, output, devices)


def fits_fully(f: GgufFacts, e: MemoryEstimate, num_gpu: int) -> bool:
    """``predictServerFit``: every layer and the output (or the ``num_gpu`` asked for) on the GPUs."""
    if num_gpu < 0:
        return e.layers > 0 and e.layers >= f.block_count + 1
    return e.layers > 0 and e.layers >= num_gpu


def schedule(f: GgufFacts, free: Sequence[int], spread: bool = False,
             **opts: Any) -> tuple[list[int], MemoryEstimate]:
    """``pickBestFullFitByLibrary`` then ``estimateGPULayers`` on the GPUs picked: (their indices, the estimate).

    The GPUs are tried by free memory, largest first: the fewest that hold everything (all of them with
    ``OLLAMA_SCHED_SPREAD``); when none do, all of them (a partial offload)."""
    order = sorted(range(len(free)), key=lambda i: -free[i])
    num_gpu = opts.get("num_gpu", -1)
    if spread:
        counts = [len(order)]
    else:
        counts = list(range(1, len(order) + 1))
    for k in counts:
        subset = order[:k]
        e = estimate_gpu_layers(f, [free[i] for i in subset], **opts)
        if fits_fully(f, e, num_gpu):
            return subset, e
    return order, estimate_gpu_layers(f, [free[i] for i in order], **opts)


def min_free_per_gpu(f: GgufFacts, n: int, plan: Optional[Any] = None, **opts: Any) -> tuple[int, MemoryEstimate]:
    """The least free memory per GPU with which ``n`` equal GPUs take every layer and the output, and the
    estimate then; found by bisection on the scheduler itself (``plan(free)``: memory.go's by default)."""
    if plan is None:
        def plan(free: list[int]) -> MemoryEstimate:
            return estimate_gpu_layers(f, free, **opts)
    alone = plan([1 << 62])
    if n <= 1:
        return (max(alone.gpu_sizes) if alone.gpu_sizes else alone.vram_size), alone
    lo, hi = 1, max(alone.total_size, 1) + MINIMUM_MEMORY_METAL
    best = plan([hi] * n)
    while lo < hi:
        mid = (lo + hi) // 2
        e = plan([mid] * n)
        if fits_fully(f, e, opts.get("num_gpu", -1)):
            hi, best = mid, e
        else:
            lo = mid + 1
    return hi, best


def human_bytes(b: int) -> str:
    """format.HumanBytes (``ollama ps`` SIZE): decimal units, no decimals from 10 on."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if b >= size:
            value = b / size
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{b} B"


def human_bytes2(b: int) -> str:
    """format.HumanBytes2 (the scheduler's log): binary units, one decimal."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


def processor(size: int, size_vram: int) -> str:
    """``ollama ps`` PROCESSOR (cmd/cmd.go): 100% GPU, 100% CPU or the CPU/GPU percentages."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = math.floor((size - size_vram) / size * 100 + 0.5)  # Go math.Round: half away from zero
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


# ---- from vramscope's model to what Ollama reads in the GGUF -------------------------------------------------

#: Hugging Face model_type -> GGUF general.architecture (llama.cpp's convert_hf_to_gguf.py model classes)
_ARCH = {"llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
         "qwen3_moe": "qwen3moe", "qwen2_moe": "qwen2moe", "gemma": "gemma", "gemma2": "gemma2",
         "gemma3": "gemma3", "gemma3_text": "gemma3", "phi": "phi2", "phi3": "phi3", "deepseek_v2": "deepseek2",
         "deepseek_v3": "deepseek2", "kimi_k2": "deepseek2", "cohere": "command-r", "stablelm": "stablelm",
         "chatglm": "chatglm",
         "falcon": "falcon", "starcoder2": "starcoder2", "internlm2": "internlm2", "gpt_oss": "gptoss"}


def gguf_arch(model: Any) -> str:
    mt = model.spec.model_type
    if mt.startswith("gguf:"):
        return mt[5:]
    if mt in _ARCH:
        return _ARCH[mt]
    archs = model.spec.family.gguf_archs
    return archs[0] if archs else mt


#: what ``ollama pull name:size`` fetches without a quantization tag (the library's default blobs)
DEFAULT_LIBRARY_QUANT = "Q4_K_M"


def library_default_quant(model: Any, w: Any) -> bool:
    """A model that is not a GGUF file, with no ``--quant``: Ollama would run the library's Q4_K_M blob."""
    return w.quant == "none" and w.dtype is None and not (model.kind == "gguf" and model.stored is not None)


def facts(model: Any, w: Any) -> GgufFacts:
    """The GGUF facts of a model as Ollama reads them, from the file or from llama.cpp's quantization mix."""
    from .llamacpp import _PER_LAYER_DUPLICATED, _is_input, _tensor_bytes, mla_absorbed

    from dataclasses import replace

    spec = model.spec
    if library_default_quant(model, w):
        w = replace(w, quant=DEFAULT_LIBRARY_QUANT)
    n = spec.num_layers
    layers = [0] * n
    output = embd = 0
    has_output = False
    gate_exps = 0
    for name, layer, nbytes in _tensor_bytes(model, w):
        if _is_input(name):
            embd += nbytes
        elif layer is None:
            if name in _PER_LAYER_DUPLICATED:
                continue
            output += nbytes
            has_output = has_output or "norm" not in name
        elif layer < n:
            layers[layer] += nbytes
            if layer == 0 and "gate" in name and ("exps" in name or "experts" in name):
                gate_exps += nbytes
    if not has_output:
        output += embd  # memory.go: no "output" layer -> token_embd
    arch = gguf_arch(model)
    if spec.mla is not None and mla_absorbed(model):
        hk, hv, kv_heads = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim, spec.mla.kv_lora_rank, 1
    elif spec.mla is not None:
        hk, hv, kv_heads = spec.mla.qk_head_dim, spec.mla.v_head_dim, spec.num_kv_heads
    else:
        hk = hv = spec.head_dim
        kv_heads = spec.num_kv_heads
    ffn = spec.moe.expert_intermediate_size if spec.moe else spec.intermediate_size
    recurrent: dict[str, Any] = {}
    st = spec.state
    if st is not None and _version(getattr(w, "ollama_version", None) or OLLAMA_VERSION) >= RECURRENT_FROM:
        # GraphSize: a layer with heads and KV heads is attention (Falcon-H1's hybrid layers too: their state is
        # not counted), every other layer recurrent (Nemotron-H's MLP blocks too: "will need a special case")
        per_layer = [st.engine_conv_values(i) + st.recurrent_values[i] for i in range(len(st.kinds))
                     if st.kinds[i] in ("state", "hybrid", "hybrid_sliding")]
        recurrent = {"attention_layers": tuple(st.has_kv(i) for i in range(len(st.kinds))),
                     "recurrent_values": max(per_layer, default=0)}
    return GgufFacts(arch=arch, block_count=n, embedding=spec.hidden_size, heads=spec.num_heads,
                     heads_min=spec.num_heads, heads_kv=kv_heads, heads_kv_min=kv_heads, head_k=hk, head_v=hv,
                     vocab=spec.vocab_size, context_length=spec.max_position_embeddings, layer_sizes=tuple(layers),
                     output_size=output, input_size=embd, ffn_length=ffn,
                     ffn_gate_exps_size=gate_exps if spec.moe is not None and arch == "llama" else 0,
                     sliding_window=spec.sliding_window or 0, **recurrent)


# ---- the engine ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class OllamaGpu(Record):
    """What Ollama's scheduler decides on a rig of ``num_gpus`` of one GPU model (``ollama ps`` included)."""

    gpu: str
    free_bytes: int  # per device
    gpus_used: int
    layers_offloaded: int  # layers.offload (of layers.model = block_count + 1)
    layers_split: list[int]
    size_bytes: int  # ollama ps SIZE (memory.required.full)
    vram_bytes: int  # memory.required.partial
    size: str  # as ollama ps prints it
    processor: str  # as ollama ps prints it
    devices: list[OllamaDevice]


@dataclass(frozen=True, kw_only=True)
class OllamaReport(EngineReport):
    """Ollama's scheduler estimate (its ``msg=offload`` log line) and what ``ollama ps`` shows, per GPU model."""

    name: str = "ollama"
    version: str
    scheduler: str  # memory.go (its estimate, to v0.12.10) or layout (its own memory management, v0.12.11 on)
    num_ctx: int
    num_batch: int
    num_parallel: int
    num_gpu: Optional[int]  # None (left out of the JSON): Ollama's -1, as many layers as fit
    flash_attention: bool
    kv_cache_type: str
    layers_model: int
    kv_bytes: int  # memory.required.kv
    graph_full_bytes: int
    graph_partial_bytes: int
    weights_repeating_bytes: int
    weights_nonrepeating_bytes: int
    full_offload_bytes: int  # the fullest GPU's allocation with everything offloaded (over --gpus equal GPUs)
    per_gpu: list[OllamaGpu]
    # from v0.30.0 (scheduler llama-server): how Ollama starts it on the first GPU named, what --fit decided there
    llama_server_args: Optional[str] = None
    fit: Optional[Any] = None
    predicted_bytes: Optional[int] = None  # PredictServerVRAM


def ollama_options(w: Any) -> dict[str, Any]:
    """Ollama's settings of a workload (environment variables and request options), as plain values."""
    return {"version": getattr(w, "ollama_version", None) or OLLAMA_VERSION,
            "num_parallel": getattr(w, "num_parallel", None) or 1,
            "num_gpu": -1 if getattr(w, "num_gpu", None) is None else w.num_gpu,
            "num_batch": getattr(w, "num_batch", None) or 512,
            "flash": (getattr(w, "ollama_flash_attention", None) if getattr(w, "ollama_flash_attention", None)
                      is not None else (True if getattr(w, "flash_attn", False) else None)),
            "kv_type": getattr(w, "ollama_kv_cache_type", None),
            "overhead": getattr(w, "gpu_overhead", None) or 0,
            "spread": bool(getattr(w, "sched_spread", False))}


def layout_estimate(spec: Any, f: GgufFacts, free: Sequence[int], *, num_ctx: int, num_batch: int,
                    num_parallel: int, num_gpu: int = -1, kv_type: str = "f16", flash: bool = False,
                    overhead: int = 0, metal: bool = False, spread: bool = False,
                    minimum: int = MINIMUM_MEMORY) -> MemoryEstimate:
    """Ollama's own layout (:func:`build_layout`) with the runner's sizes as vramscope computes them: each layer's
    weights (the GGUF's or llama.cpp's quantization mix) and cache (``num_ctx × num_parallel`` cells, GraphSize's
    per-layer cache), the output layer last, the token embedding on the CPU, and each GPU's graph the llama.cpp
    compute buffer of one ``num_batch`` micro-batch with the logits (``llamacpp.compute_buffer``)."""
    from .llamacpp import compute_buffer

    batch = min(num_ctx, num_batch)
    kv, _, _ = graph_size(f, num_ctx, batch, num_parallel, kv_type, flash)
    n = f.block_count
    layers = [f.layer_sizes[i] + kv[i] for i in range(n)] + [f.output_size]
    graph = compute_buffer(spec, num_ctx * num_parallel, batch, flash, True)
    cpu_graph = batch * 4 * 2 * f.embedding
    lay = build_layout(layers, list(free), [graph] * len(free), f.input_size, cpu_graph, num_gpu=num_gpu,
                       overhead=overhead, spread=spread, minimum=minimum)
    devices = []
    for g in range(len(free)):
        mine = [i for gg, ls in lay.assignment if gg == g for i in ls]
        weights = sum(f.layer_sizes[i] for i in mine if i < n) + (f.output_size if n in mine else 0)
        kvs = sum(kv[i] for i in mine if i < n)
        devices.append(OllamaDevice(device=g, free_bytes=free[g], layers=len(mine), allocation_bytes=lay.gpu_bytes[g],
                                    weights_bytes=weights, kv_bytes=kvs, graph_bytes=graph if mine else 0,
                                    reserve_bytes=minimum if mine else 0))
    count = sum(lay.gpu_layers)
    return MemoryEstimate(count, graph if count else 0, lay.vram_size, lay.total_size, tuple(lay.gpu_layers),
                          tuple(lay.gpu_bytes), sum(kv), graph, graph, sum(f.layer_sizes), f.output_size,
                          tuple(devices) if count else ())


def ollama_run(model: Any, w: Any, gpus: Sequence[Any]) -> tuple[OllamaReport, GgufFacts, dict[str, Any]]:
    """The scheduler's decision for each GPU model named (a rig of ``w.num_gpus`` of it)."""
    o = ollama_options(w)
    if _version(o["version"]) >= LLAMA_SERVER_FROM:
        return llama_server_run(model, w, gpus)
    f = facts(model, w)
    total_vram = (gpus[0].memory_bytes - o["overhead"]) * w.num_gpus if gpus else 0
    if w.seq_default:
        num_ctx = default_num_ctx(o["version"], total_vram)
    else:
        num_ctx = w.seq
    if f.context_length and num_ctx > f.context_length:  # NewLlamaServer: capped to the training context
        num_ctx = f.context_length
    num_ctx = max(num_ctx, 4)
    num_batch = min(o["num_batch"], num_ctx)
    metal = bool(gpus) and getattr(gpus[0], "vendor", "") == "apple"
    flash = flash_attention(f.arch, o["flash"],
                            head_k=f.head_k, head_v=f.head_v, embedding_model=model.spec.kind == "encoder")
    kvt = kv_cache_type(o["kv_type"], flash)
    opts = dict(num_ctx=num_ctx, num_batch=num_batch, num_parallel=o["num_parallel"], num_gpu=o["num_gpu"],
                kv_type=kvt, flash=flash, overhead=o["overhead"], metal=metal)
    layout = uses_layout(o["version"], f.arch)

    def plan(free: list[int], spread: bool = o["spread"]) -> tuple[list[int], MemoryEstimate]:
        if o["num_gpu"] == 0:
            free = []
        if layout:
            e = layout_estimate(model.spec, f, free, spread=spread, minimum=_minimum(gpus), **opts)
            return [d.device for d in e.devices if d.layers], e
        if not free:
            return [], estimate_gpu_layers(f, [], **opts)
        return schedule(f, free, spread=spread, **opts)

    _, spread_all = min_free_per_gpu(f, w.num_gpus, lambda free: plan(free, True)[1], **opts)
    alone = spread_all if w.num_gpus > 1 else plan([1 << 62])[1]
    per_gpu = []
    first: Optional[MemoryEstimate] = None
    for g in gpus:
        used, e = plan([g.usable_bytes] * w.num_gpus)
        first = first or e
        per_gpu.append(OllamaGpu(gpu=g.name, free_bytes=g.usable_bytes, gpus_used=len(used) if e.layers else 0,
                                 layers_offloaded=e.layers, layers_split=list(e.tensor_split),
                                 size_bytes=e.total_size, vram_bytes=e.vram_size, size=human_bytes(e.total_size),
                                 processor=processor(e.total_size, e.vram_size), devices=list(e.devices)))
    ref = first or alone
    report = OllamaReport(version=o["version"], scheduler="layout" if layout else "memory.go", num_ctx=num_ctx, num_batch=num_batch, num_parallel=o["num_parallel"],
                          num_gpu=None if o["num_gpu"] < 0 else o["num_gpu"], flash_attention=flash, kv_cache_type=kvt,
                          layers_model=f.block_count + 1, kv_bytes=ref.kv_total, graph_full_bytes=ref.graph_full,
                          graph_partial_bytes=ref.graph_partial, weights_repeating_bytes=ref.memory_weights,
                          weights_nonrepeating_bytes=ref.memory_layer_output,
                          full_offload_bytes=max(alone.gpu_sizes) if alone.gpu_sizes else alone.vram_size,
                          per_gpu=per_gpu)
    return report, f, {"alone": alone, "first": first}


def _outputs_note(report: OllamaReport) -> dict[str, Any]:
    """The logits rows of the llama-server graph Ollama ``report.version`` starts (:func:`server_semantics`)."""
    if report.scheduler != "llama-server":
        return {}
    if server_semantics(report.version)["llama_server"]:
        return {"outputs": report.num_parallel, "outputs_why": "n_parallel, llama.cpp#23861 (b9460) in b9479+"}
    return {"outputs": report.num_batch, "outputs_why": "n_ubatch, llama.cpp b9452 predates #23861 (b9460)"}


def _minimum(gpus: Sequence[Any]) -> int:
    return MINIMUM_MEMORY_METAL if gpus and getattr(gpus[0], "vendor", "") == "apple" else MINIMUM_MEMORY


def _version_text(value: Any, field: str) -> str:
    from ..errors import VramscopeError
    from ..units import shown

    v = str(value).strip().lstrip("v") if isinstance(value, (str, int, float)) else ""
    if not re.fullmatch(r"\d{1,3}(\.\d{1,4}){0,2}", v):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed="a version such as 0.12.10")
    return v


def _size(value: Any, field: str) -> int:
    from ..units import parse_bytes

    return parse_bytes(value, field, minimum=0)


def _tri(value: Any, field: str) -> Optional[bool]:
    from ..units import parse_bool

    return None if value is None else parse_bool(value, field)


class Ollama(Engine):
    name = "ollama"
    aliases = ("ollama",)
    gguf_quants = True
    sizes_by_gpu = True
    overhead_note = "a_overhead_ollama"
    options = (
        Option("ollama_version", ("--ollama-version",), "custom", None, group="ollama", owner="ollama",
               parse=_version_text, metavar="X.Y.Z",
               help_en="the Ollama release whose defaults and scheduler apply (default 0.32.15; from 0.30.0 "
                       "llama-server's fit, 0.12.11-0.24.x its own layout, up to 0.12.10 its memory.go estimate)",
               help_zh="采用其默认值和调度器的 Ollama 版本（默认 0.32.15；0.30.0 起为 llama-server 的 fit，"
                       "0.12.11-0.24.x 为其自身布局，0.12.10 及以前为 memory.go 估算）"),
        Option("num_parallel", ("--num-parallel",), "int", None, group="ollama", owner="ollama", lo=1, hi=1024,
               help_en="OLLAMA_NUM_PARALLEL: requests at once; the cache holds num_ctx × this (default 1)",
               help_zh="OLLAMA_NUM_PARALLEL：同时处理的请求数；缓存容量为 num_ctx × 该值（默认 1）"),
        Option("num_gpu", ("--num-gpu",), "int", None, group="ollama", owner="ollama", lo=-1, hi=100_000,
               help_en="Ollama's num_gpu: layers to offload (default -1: as many as fit)",
               help_zh="Ollama 的 num_gpu：卸载的层数（默认 -1：尽可能多）"),
        Option("num_batch", ("--num-batch",), "int", None, group="ollama", owner="ollama", lo=1, hi=1_000_000,
               help_en="Ollama's num_batch (default 512)", help_zh="Ollama 的 num_batch（默认 512）"),
        Option("ollama_flash_attention", ("--ollama-flash-attention",), "custom", None, group="ollama",
               owner="ollama", parse=_tri, metavar="BOOL",
               help_en="OLLAMA_FLASH_ATTENTION true/false (default: the model family's)",
               help_zh="OLLAMA_FLASH_ATTENTION true/false（默认取模型系列的设置）"),
        Option("ollama_kv_cache_type", ("--ollama-kv-cache-type",), "choice", None, group="ollama",
               owner="ollama", choices=("f16", "q8_0", "q4_0"),
               help_en="OLLAMA_KV_CACHE_TYPE: f16 (default) | q8_0 | q4_0 (with flash attention)",
               help_zh="OLLAMA_KV_CACHE_TYPE：f16（默认）| q8_0 | q4_0（需 flash attention）"),
        Option("gpu_overhead", ("--gpu-overhead",), "custom", None, group="ollama", owner="ollama", parse=_size,
               metavar="SIZE", help_en="OLLAMA_GPU_OVERHEAD: memory kept free on each GPU (default 0)",
               help_zh="OLLAMA_GPU_OVERHEAD：每张 GPU 预留的显存（默认 0）"),
        Option("sched_spread", ("--sched-spread",), "flag", False, group="ollama", owner="ollama",
               help_en="OLLAMA_SCHED_SPREAD: spread the model over every GPU",
               help_zh="OLLAMA_SCHED_SPREAD：把模型分布到全部 GPU"),
    )

    def inference(self, model: Any, w: Any, dtype: str, notes: list[Assumption],
                  gpus: tuple[Any, ...]) -> tuple[Phases, Optional[EngineReport]]:
        report, f, ex = ollama_run(model, w, gpus)
        e: MemoryEstimate = ex["first"] if ex["first"] is not None and ex["first"].devices else ex["alone"]
        dev = max(e.devices, key=lambda d: d.allocation_bytes) if e.devices else None
        if dev is None:
            phases = {"load": {"weights": 0}, "prefill": {"weights": 0}}
        else:
            phases = {"load": {"weights": dev.weights_bytes},
                      "prefill": {"weights": dev.weights_bytes, "kv_cache": dev.kv_bytes,
                                  "activations": dev.graph_bytes,
                                  "engine_overhead": dev.reserve_bytes - _minimum(gpus)}}
        key = {"layout": "a_ollama_layout", "llama-server": "a_ollama_llama_server"}.get(report.scheduler, "a_ollama")
        notes.append(Assumption(key, {"version": report.version, "ctx": report.num_ctx,
                                             "parallel": report.num_parallel, "batch": report.num_batch,
                                             "fa": "on" if report.flash_attention else "off",
                                             "kv": report.kv_cache_type, "args": report.llama_server_args or "",
                                             "o_np": Opt("n_parallel"), "o_kvu": Opt("kv_unified"),
                                             "o_swa": Opt("swa_full"), **_outputs_note(report)}))
        if report.fit is not None and gpus:
            fr = report.fit
            from .llamacpp import FIT_NOTE

            notes.append(Assumption(FIT_NOTE[fr.status], {
                "gpu": gpus[0].name, "free": f"{fr.free_bytes[0] / 2**20:,.0f} MiB", "target": fr.target_mib[0],
                "o_ngl": Opt("n_gpu_layers", fr.n_gpu_layers if fr.n_gpu_layers is not None else report.layers_model,
                             flag="-ngl"),
                "n": report.layers_model,
                "ts": ",".join(map(str, fr.tensor_split)) if fr.tensor_split else "-", "part": fr.overflowing,
                "ctx": report.num_ctx * report.num_parallel, "reason": fr.reason or ""}))
        if library_default_quant(model, w):
            notes.append(Assumption("a_ollama_default_quant", {"quant": DEFAULT_LIBRARY_QUANT, "o_quant": Opt("quant"),
                                                            "o_f16": Opt("quant", "F16")}))
        if model.spec.vision is not None:
            notes.append(Assumption("a_ollama_no_projector", {}))
        if f.attention_layers is not None:
            notes.append(Assumption("a_ollama_recurrent", {
                "attn": sum(f.attention_layers), "n": f.block_count,
                "state": f"{f.recurrent_values * 4 / 2**20:,.2f} MiB"}))
        for g in report.per_gpu:
            notes.append(Assumption("a_ollama_split", {"gpu": g.gpu, "n": w.num_gpus, "layers": g.layers_offloaded,
                                                       "total": report.layers_model,
                                                       "split": ",".join(map(str, g.layers_split)) or "-",
                                                       "ps": g.processor, "size": g.size}))
        return phases, report

    def runtime_overhead(self, transient: int, gpu: Optional[Any]) -> Any:
        """Ollama's own reserve for the CUDA context and the like: its MinimumMemory on each GPU."""
        from ..memory.overhead import Overhead

        m = _minimum((gpu,) if gpu is not None else ())
        return Overhead(m, m, m)

    def verdicts(self, gpus: tuple[Any, ...], total: int, high: int,
                 report: dict[str, Any]) -> tuple[GpuVerdict, ...]:
        out = []
        for g, r in zip(gpus, report["per_gpu"]):
            if r["processor"] == "100% GPU":
                v = "fits"
                headroom = min(d["free_bytes"] - d["allocation_bytes"] for d in r["devices"] if d["layers"]) \
                    if any(d["layers"] for d in r["devices"]) else g.usable_bytes
            else:
                v = "tight" if r["layers_offloaded"] else "no"
                headroom = r["vram_bytes"] - r["size_bytes"]  # what runs from host memory instead
            out.append(GpuVerdict(name=g.name, memory_bytes=g.memory_bytes, usable_bytes=g.usable_bytes, verdict=v,
                                  headroom_bytes=headroom))
        return tuple(out)

    def needed_bytes(self, e: Estimate) -> int:
        """On the first GPU named (a rig of ``--gpus`` of it): the fullest device's allocation when Ollama puts
        everything on the GPUs, else that GPU's memory plus what would run from host memory; with no GPU named,
        the fullest GPU's share of the whole model over ``--gpus`` GPUs (:func:`min_free_per_gpu`)."""
        per = e.engine["per_gpu"]
        if not per:
            return e.engine["full_offload_bytes"]
        g = per[0]
        if g["processor"] == "100% GPU":
            return max(d["allocation_bytes"] for d in g["devices"])
        return g["free_bytes"] + g["size_bytes"] - g["vram_bytes"]

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        r = e.engine
        lines = []
        for g in r["per_gpu"]:
            lines.append(t("ollama_ps_line", lang, gpu=g["gpu"], size=g["size"], processor=g["processor"],
                           ctx=r["num_ctx"], layers=g["layers_offloaded"], total=r["layers_model"],
                           split=",".join(map(str, g["layers_split"])) or "-"))
            for d in g["devices"]:
                if d["layers"]:
                    lines.append("  " + t("ollama_device_line", lang, device=d["device"], layers=d["layers"],
                                          alloc=format_bytes(d["allocation_bytes"], units),
                                          free=format_bytes(d["free_bytes"], units)))
        return lines


ENGINE = Ollama()


# ---- the layout of Ollama's own memory management (llm/server.go, v0.11.5 for its own engine; every model from
# v0.12.11, commit f560bd077, to v0.24.x; from v0.30.0, #16031, llama-server's --fit places the layers) ----------
#
# The runner reports what each layer takes (its weights and cache: ``layers[i]``, the output layer last) and the
# graph each device needs; ``buildLayout`` sorts the GPUs by free memory, reserves on each ``MinimumMemory`` +
# ``OLLAMA_GPU_OVERHEAD`` + its graph, and ``assignLayers`` packs the layers from the last one down onto the
# fewest GPUs that take them all (``findBestFit``: the smallest capacity factor, bisected, at which
# ``greedyFit`` still places as many layers; several GPUs end balanced), dropping the output layer when not
# everything fits. ``ollama ps`` then shows SIZE = input weights + every layer + the graphs, and its VRAM share
# the GPUs' (all of it when no layer is left on the CPU). Ported from v0.24.0 (the same code since v0.13.0).

LAYOUT_FROM = (0, 12, 11)  # every model: f560bd077 "Use Ollama engine memory layouts for both old and new engines"
LAYOUT_OWN_ENGINE_FROM = (0, 11, 5)  # its own engine: d5a0d8d90 "llm: New memory management"
LLAMA_SERVER_FROM = (0, 30, 0)  # #16031: llama-server places the layers itself (--fit)
RECURRENT_FROM = (0, 11, 11)  # 7b91c9ce5 (#12186) "Hybrid and recurrent memory estimates": GraphSize's SSM states
#: fs/ggml/ggml.go OllamaEngineRequired (v0.12.10): the families its own engine runs
OLLAMA_ENGINE_ARCHS = ("gemma3", "gemma3n", "gptoss", "gpt-oss", "llama4", "mistral3", "mllama", "qwen25vl",
                       "qwen3", "qwen3moe", "qwen3vl", "qwen3vlmoe")


def uses_layout(version: str, arch: str) -> bool:
    """Whether Ollama ``version`` places this architecture's layers with its own memory layout."""
    v = _version(version)
    return v >= LAYOUT_FROM or (v >= LAYOUT_OWN_ENGINE_FROM and arch in OLLAMA_ENGINE_ARCHS)


def _f32(x: float) -> float:
    import struct

    return struct.unpack("f", struct.pack("f", x))[0]


Assignment = list[tuple[int, list[int]]]  # (gpu index into the list given, its layers), in device order


def _sum(a: Assignment) -> int:
    return sum(len(layers) for _, layers in a)


def greedy_fit(layers: Sequence[int], free: Sequence[int], gpus: Sequence[int], capacity: float,
               requested: int) -> Assignment:
    """``greedyFit``: from the last layer down, onto the last GPU of ``gpus`` until it is full, then the one
    before; each GPU's room is ``uint64(float32(free) × capacity)``."""
    device = len(gpus) - 1
    out: Assignment = [(gpus[device], [])]
    room = int(_f32(_f32(float(free[gpus[device]])) * capacity))
    for i in range(len(layers) - 1, -1, -1):
        if requested >= 0 and len(layers) - 1 - i >= requested:
            break
        while True:
            if layers[i] <= room:
                out[0][1].insert(0, i)
                room -= layers[i]
                break
            device -= 1
            if device < 0:
                return out
            out.insert(0, (gpus[device], []))
            room = int(_f32(_f32(float(free[gpus[device]])) * capacity))
    return out


def find_best_fit(layers: Sequence[int], free: Sequence[int], gpus: Sequence[int], requested: int,
                  force: bool) -> Assignment:
    """``findBestFit``: the smallest capacity factor (float32 bisection to 1e-6) that places as many layers."""
    high, low = _f32(1000.0 if requested >= 0 and force else 1.0), _f32(0.0)
    best = greedy_fit(layers, free, gpus, high, requested)
    most = _sum(best)
    if most == 0:
        return best
    while _f32(high - low) > 1e-6:
        mid = _f32(_f32(low + high) / 2)
        a = greedy_fit(layers, free, gpus, mid, requested)
        if _sum(a) == most:
            high, best = mid, a
        else:
            low = mid
    return best


def assign_layers(layers: Sequence[int], free: Sequence[int], gpus: Sequence[int], require_full: bool,
                  requested: int, last_used: int = 0, spread: bool = False) -> Assignment:
    """``assignLayers``: the fewest GPUs (from ``last_used`` on) that take every layer, else as many as fit;
    without room for all of them, once more without the output layer."""
    layers = list(layers)
    out: Assignment = []
    for _ in range(2):
        requested = min(len(layers), requested)
        if not gpus:
            out = []
        elif not spread:
            for i in range(last_used, len(gpus)):
                force = i == len(gpus) - 1 and not require_full
                out = find_best_fit(layers, free, list(gpus[:i + 1]), requested, force)
                if _sum(out) == len(layers) or _sum(out) == requested:
                    break
        else:
            out = find_best_fit(layers, free, list(gpus), requested, not require_full)
        if _sum(out) == len(layers):
            return out
        layers = layers[:-1]
    return out


@dataclass(frozen=True)
class Layout:
    assignment: Assignment  # indices into the GPU list given
    gpu_bytes: tuple[int, ...]  # per GPU: its layers and its graph
    gpu_layers: tuple[int, ...]
    vram_size: int
    total_size: int


def build_layout(layers: Sequence[int], free: Sequence[int], graphs: Sequence[int], input_weights: int,
                 cpu_graph: int, num_gpu: int = -1, overhead: int = 0, spread: bool = False,
                 minimum: int = MINIMUM_MEMORY, require_full: bool = False) -> Layout:
    """``buildLayout`` + ``verifyLayout`` + ``VRAMSize``/``TotalSize`` for GPUs of one library, the runner's
    per-layer sizes and per-GPU graphs given (the steady state of ``Load``'s fit/alloc iterations)."""
    order = sorted(range(len(free)), key=lambda i: -free[i])
    room = list(free)
    for i in order:
        reserved = minimum + overhead + graphs[i]
        room[i] = room[i] - reserved if room[i] > reserved else 0
    a = assign_layers(layers, room, order, require_full, num_gpu, 0, spread)
    per = [0] * len(free)
    count = [0] * len(free)
    on_gpu: set[int] = set()
    for g, ls in a:
        if ls:
            per[g] += graphs[g] + sum(layers[i] for i in ls)
            count[g] += len(ls)
            on_gpu.update(ls)
    cpu = input_weights + cpu_graph + sum(layers[i] for i in range(len(layers)) if i not in on_gpu)
    vram = sum(per)
    if len(on_gpu) == len(layers):
        vram += input_weights + cpu_graph  # nothing left on the CPU: the whole size counts as offloaded
    return Layout(assignment=[(g, ls) for g, ls in a if ls], gpu_bytes=tuple(per), gpu_layers=tuple(count),
                  vram_size=vram, total_size=sum(per) + cpu)


# ---- from v0.30.0 (#16031, 9db4bdbad): llama-server places the layers itself (--fit) ---------------------------
#
# Read at ollama/ollama v0.32.15 (the newest release; the same code from v0.30.0): server/sched.go ``load``,
# llm/llama_server.go ``startLlamaServer`` / ``MemorySize`` / ``memoryParsingWriter``, server/routes.go,
# envconfig/config.go; llama.cpp b10488 (``LLAMA_CPP_VERSION``).
#
# * ``num_ctx``: the request / Modelfile / ``OLLAMA_CONTEXT_LENGTH``, else by total VRAM (4096, 32768 from 23 GiB,
#   262144 from 47 GiB), at least 2048 for vision models, capped to the training context (``NewLlamaServer``).
# * ``OLLAMA_NUM_PARALLEL`` (default 1); embedding models and the families of ``load``'s list run one sequence.
# * ``PredictServerVRAM``: the file's size + ``2 × block_count × head_count_kv(min) × (embedding / heads) ×
#   num_ctx × num_parallel × 2`` bytes; ``selectLlamaServerPlacement``: on several GPUs, without
#   ``OLLAMA_SCHED_SPREAD``, the one GPU with the most free memory when the prediction is at most 80% of it
#   (``--split-mode none --main-gpu 0``), else all of them.
# * ``num_batch`` when not set (``automaticGenerationBatch``): flash attention off on CUDA: 512 (256 when the
#   context is over 4096 on a GPU of at most 8 GiB); else 512, 1024 over 4096 tokens, 2048 over 32768, lowered
#   while the prediction exceeds 80% of the free memory, or 60% (2048) / 75% (1024) of it, or the surcharge (2 GiB /
#   768 MiB) does not fit in what the 80% leaves.
# * llama-server: ``-c num_ctx×num_parallel -np num_parallel -b B -ub B --flash-attn on|off|auto`` (auto unless
#   ``OLLAMA_FLASH_ATTENTION`` is set or a GPU lacks it), ``--cache-type-k/-v OLLAMA_KV_CACHE_TYPE`` when set,
#   ``-ngl num_gpu`` only when set (0: CPU), no ``-ts``: llama-server's ``--fit`` (on, 1024 MiB per device,
#   ``OLLAMA_GPU_OVERHEAD`` is not passed) sets ``-ngl`` and ``--tensor-split``.
# * ``ollama ps``: SIZE is the sum of every buffer llama-server prints (model, KV, RS, compute, on every device and
#   the host; from v0.30.11, #16709, the mmap overlap trimmed to the file), VRAM the GPU buffers'; SIZE is VRAM when
#   "offloaded N/N layers" and no layer overflows (``MemorySize``).

#: server/sched.go load: "Some architectures are not safe with num_parallel > 1"
SINGLE_PARALLEL_ARCHS = ("mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3next", "lfm2", "lfm2moe",
                         "nemotron_h", "nemotron_h_moe", "nemotron_h_omni")


#: llama.cpp#23861 (de6f727aa, b9460, 2026-06-01): llama-server reserves logits for ``n_parallel`` rows only.
#: Ollama v0.30.0 builds b9452 (19620004f, eight commits before it); v0.30.1 on b9479 and later (LLAMA_CPP_VERSION)
SERVER_OUTPUTS_FROM = (0, 30, 1)


def server_semantics(version: str) -> dict[str, Any]:
    """The llama.cpp semantics of the llama-server Ollama ``version`` starts (v0.30.0 to v0.32.15 read, and
    v0.33.0-rc2): ``-c num_ctx×num_parallel -np num_parallel`` always given, never ``--kv-unified`` nor
    ``--swa-full`` (llm/llama_server.go ``startLlamaServer``), so common's defaults hold: one KV stream per
    sequence (``kv_unified = false``, ``-np`` is not auto) and sliding layers their window (``swa_full =
    false``); n_ctx padded to 256 (#17046, 2025-11-07; every LLAMA_CPP_VERSION from b9409 has it); the reserved
    graph's logits ``n_parallel`` rows from v0.30.1 (b9479, after #23861 = b9460), ``n_ubatch`` rows at v0.30.0
    (b9452)."""
    return {"llama_server": _version(version) >= SERVER_OUTPUTS_FROM, "kv_unified": False, "swa_full": False,
            "llamacpp_unpadded_ctx": False}


def predict_server_vram(file_bytes: int, f: GgufFacts, num_ctx: int) -> int:
    """``llm.PredictServerVRAM``: the file plus an f16 cache of ``num_ctx`` cells with K and V heads of
    ``embedding / heads``."""
    head_dim = f.embedding // f.heads if f.heads else 0
    return file_bytes + 2 * f.block_count * (f.heads_kv_min or 1) * head_dim * num_ctx * 2


def automatic_batch(ctx: int, predicted: int, available: int, flash: str, cuda: bool, gpu_memory: int) -> int:
    """``automaticGenerationBatch`` (server/sched.go)."""
    if flash == "off" and cuda:
        return 256 if ctx > 4096 and 0 < gpu_memory <= 8 * GiB else 512
    batch = 2048 if ctx > 32768 else 1024 if ctx > 4096 else 512

    def fits(b: int) -> bool:
        if predicted == 0 or available == 0:
            return True
        threshold = available * 80 // 100
        if predicted > threshold:
            return False
        if b >= 2048 and predicted > available * 60 // 100:
            return False
        if 1024 <= b < 2048 and predicted > available * 75 // 100:
            return False
        surcharge = 2 * GiB if b >= 2048 else 768 * MiB if b >= 1024 else 0
        return surcharge <= threshold - predicted

    while batch > 512 and not fits(batch):
        batch = 1024 if batch > 1024 else 512
    return batch


def select_placement(free: Sequence[int], predicted: int, spread: bool, num_gpu: int = -1) -> list[int]:
    """``selectLlamaServerPlacement`` for discrete GPUs of one backend: with ``num_gpu`` 0 or one GPU, all of them;
    without ``OLLAMA_SCHED_SPREAD``, the GPU with the most free memory when the prediction is at most 80% of it
    (``bestSingleGPUFit``; llama-server then gets ``--split-mode none --main-gpu 0``); else all of them."""
    if len(free) <= 1 or num_gpu == 0:
        return list(range(len(free)))
    if not spread and predicted > 0:
        best = None
        for i, fr in enumerate(free):
            if predicted > fr * 80 // 100:
                continue
            if best is None or fr > free[best]:
                best = i
        if best is not None:
            return [best]
    return list(range(len(free)))


def fa_supported(gpu: Any) -> bool:
    """``ml.FlashAttentionSupported``: CUDA from compute capability 6.0 (not 7.2), Metal, ROCm, Vulkan."""
    vendor = (getattr(gpu, "vendor", "") or "").lower()
    if vendor in ("apple", "amd", "intel"):
        return True
    cc = str(getattr(gpu, "compute_capability", "") or "")
    try:
        major, minor = (int(x) for x in (cc.split(".") + ["0"])[:2])
    except ValueError:
        return True
    return major >= 6 and (major, minor) != (7, 2)


def _server_plan(model: Any, w: Any, f: GgufFacts, gpu: Any, n: int, o: dict[str, Any], num_ctx: int,
                 num_parallel: int, fit: bool = True, force_all: bool = False) -> dict[str, Any]:
    """What Ollama starts llama-server with on ``n`` of ``gpu`` and what ``--fit`` and ``ollama ps`` make of it."""
    from dataclasses import replace

    from .llamacpp import fit_free_bytes, llamacpp_devices, run_fit

    from .llamacpp import _tensor_bytes

    wq = replace(w, quant=DEFAULT_LIBRARY_QUANT) if library_default_quant(model, w) else w
    file_bytes = sum(nbytes for _, _, nbytes in _tensor_bytes(model, wq))  # the file's tensors (its size, less metadata)
    ctx_total = num_ctx * num_parallel
    predicted = predict_server_vram(file_bytes, f, ctx_total)
    free = fit_free_bytes(gpu)
    chosen = [0] if n == 1 else select_placement([free] * n, predicted, o["spread"] or force_all, o["num_gpu"])
    nd, single = len(chosen), n > 1 and len(chosen) == 1
    if o["flash"] is not None:
        fa = "on" if o["flash"] else "off"
    else:
        fa = "auto" if fa_supported(gpu) else "off"
    flash = fa != "off"  # llama.cpp resolves auto to on where the device runs the FA kernels
    available = free * nd
    cuda = (getattr(gpu, "vendor", "") or "nvidia").lower() in ("nvidia", "")
    if model.spec.kind == "encoder":
        # an embedding model: DefaultEmbeddingNumBatch 2048 (capped to num_ctx), then embeddingBatchSize
        batch = min(o["num_batch_set"] or min(2048, num_ctx), ctx_total)
    else:
        batch = o["num_batch_set"] or automatic_batch(ctx_total, predicted, available, fa, cuda,
                                                      min(free, gpu.memory_bytes))
    kv = (o["kv_type"] or "").lower() or None
    ngl = o["num_gpu"] if o["num_gpu"] >= 0 else None
    args = ["-c", str(ctx_total), "-np", str(num_parallel)]
    if kv:
        args += ["--cache-type-k", kv, "--cache-type-v", kv]
    args += ["--flash-attn", fa, "-b", str(batch), "-ub", str(batch)]
    if ngl is not None:
        args += ["-ngl", str(ngl)]
    if single:
        args += ["--split-mode", "none", "--main-gpu", "0"]
    lw = replace(wq, seq=ctx_total, ubatch=batch, batch_size=batch, flash_attn=flash, cache_type_k=kv,
                 cache_type_v=kv, n_gpu_layers=ngl, n_parallel=num_parallel, num_gpus=nd, tensor_split=None,
                 split_mode="none" if single else "layer", main_gpu=0, no_kv_offload=False,
                 **server_semantics(o["version"]))
    if fit:
        fitted, ovr, fit_report = run_fit(model, lw, (gpu,), n_devices=nd, user_ngl=ngl)
    else:
        fitted, ovr, fit_report = lw, None, None
    devs, host, facts = llamacpp_devices(model, fitted, nd, split_mode=fitted.split_mode, main_gpu=0,
                                         tensor_split=list(fitted.tensor_split) if fitted.tensor_split else None,
                                         n_batch=batch, free_bytes=[free] * nd,
                                         compute_capability=gpu.compute_capability, overrides=ovr)
    n_layer = f.block_count
    ngl_eff = n_layer + 1 if fitted.n_gpu_layers is None or fitted.n_gpu_layers < 0 else min(fitted.n_gpu_layers,
                                                                                             n_layer + 1)
    offloaded = min(ngl_eff, n_layer + 1) if devs else 0
    # ollama ps: Ollama's own reading of the buffers llama-server prints (memoryParsingWriter, MemorySize)
    lines = buffer_lines(devs, host, offloaded, n_layer + 1, fit_report.trace if fit_report else ())
    mem = ServerMemory(total_layers=n_layer + 1)
    for line in lines:
        mem.write(line + "\n")
    total, vram = mem.memory_size(file_bytes)
    devices = [OllamaDevice(device=d.device, free_bytes=gpu.usable_bytes, layers=d.layers + (1 if d.output_layer else 0),
                            allocation_bytes=d.total, weights_bytes=d.model_buffer_bytes, kv_bytes=d.kv_buffer_bytes,
                            graph_bytes=d.compute_buffer_bytes, reserve_bytes=MINIMUM_MEMORY)
               for d in devs if d.total]
    e = MemoryEstimate(offloaded if vram else 0, max((d.compute_buffer_bytes for d in devs), default=0), vram, total,
                       tuple(d.layers + (1 if d.output_layer else 0) for d in devs) if len(devs) > 1 else (),
                       tuple(d.total for d in devs), sum(d.kv_buffer_bytes for d in devs) + host.kv_buffer_bytes,
                       max((d.compute_buffer_bytes for d in devs), default=0),
                       max((d.compute_buffer_bytes for d in devs), default=0), sum(f.layer_sizes), f.output_size,
                       tuple(devices) if vram else ())
    return {"estimate": e, "fit": fit_report, "args": args, "batch": batch, "fa": fa, "kv": kv or "f16",
            "predicted": predicted, "single": single, "host": host}


def _min_usable(model: Any, w: Any, f: GgufFacts, n: int, o: dict[str, Any], num_ctx: int, num_parallel: int
                ) -> int:
    """The least usable memory per GPU at which ``n`` equal GPUs hold every layer with ``--fit`` changing nothing:
    every device's buffers plus the 1024 MiB margin within its free memory, under the placement Ollama picks at
    that size (one GPU once the prediction is at most 80% of its free memory) and the batch it picks there.
    (``--fit`` could rebalance the split across several GPUs to fit a little below this; that search is not run.)"""
    from ..gpus import Gpu
    from ..memory.overhead import CONTEXT_NOMINAL
    from .llamacpp_fit import FIT_TARGET

    def plan(usable: int, count: int) -> dict[str, Any]:
        g = Gpu(id="any", name="GPU", memory_bytes=usable, compute_capability="8.9")
        return _server_plan(model, w, f, g, count, o, num_ctx, num_parallel, fit=False)

    def need(p: dict[str, Any]) -> int:
        return max(p["estimate"].gpu_sizes, default=0) + FIT_TARGET + CONTEXT_NOMINAL

    big = 1 << 50
    single = plan(big, 1)
    predicted = single["predicted"]
    out = need(single)
    for _ in range(3):  # the batch Ollama picks depends on the size: settle it
        # several GPUs: one of them only once the prediction is at most 80% of its free memory
        u_single = max(out, -(-predicted * 100 // 80) + CONTEXT_NOMINAL) if n > 1 else out
        cands = [u_single]
        if n > 1 and o["num_gpu"] != 0:
            spread = plan(big, n) if o["spread"] else None
            pn = spread or _server_plan(model, w, f, Gpu(id="any", name="GPU", memory_bytes=out,
                                                         compute_capability="8.9"), n, o, num_ctx, num_parallel,
                                        fit=False, force_all=True)
            u_n = need(pn)
            if o["spread"] or (u_n - CONTEXT_NOMINAL) * 80 // 100 < predicted:
                cands.append(u_n)
        new = min(cands)
        again = plan(new, n)
        if need(again) <= new or again["single"] is False and n == 1:
            return new
        out = need(again)
    return out


def llama_server_run(model: Any, w: Any, gpus: Sequence[Any]) -> tuple[OllamaReport, GgufFacts, dict[str, Any]]:
    """Ollama from v0.30.0: what it starts llama-server with, what ``--fit`` places, what ``ollama ps`` shows."""
    from ..gpus import Gpu

    o = ollama_options(w)
    o["num_batch_set"] = getattr(w, "num_batch", None)
    f = facts(model, w)
    total_vram = (gpus[0].memory_bytes - o["overhead"]) * w.num_gpus if gpus else 0
    num_ctx = default_num_ctx(o["version"], total_vram) if w.seq_default else w.seq
    if model.spec.vision is not None:
        num_ctx = max(num_ctx, 2048)
    num_ctx = max(num_ctx, 4)
    if f.context_length and num_ctx > f.context_length:
        num_ctx = f.context_length
    num_parallel = o["num_parallel"]
    if model.spec.kind == "encoder" or f.arch in SINGLE_PARALLEL_ARCHS:
        num_parallel = 1
    big = Gpu(id="any", name="GPU", memory_bytes=1 << 50, compute_capability="8.9")
    alone = _server_plan(model, w, f, big, w.num_gpus, o, num_ctx, num_parallel, fit=False, force_all=True)
    need = _min_usable(model, w, f, w.num_gpus, o, num_ctx, num_parallel)
    per_gpu, plans = [], []
    for g in gpus:
        p = _server_plan(model, w, f, g, w.num_gpus, o, num_ctx, num_parallel)
        plans.append(p)
        e = p["estimate"]
        per_gpu.append(OllamaGpu(gpu=g.name, free_bytes=g.usable_bytes, gpus_used=len(e.devices),
                                 layers_offloaded=e.layers, layers_split=list(e.tensor_split),
                                 size_bytes=e.total_size, vram_bytes=e.vram_size, size=human_bytes(e.total_size),
                                 processor=processor(e.total_size, e.vram_size), devices=list(e.devices)))
    ref = plans[0] if plans else alone
    e = ref["estimate"]
    report = OllamaReport(version=o["version"], scheduler="llama-server", num_ctx=num_ctx, num_batch=ref["batch"],
                          num_parallel=num_parallel, num_gpu=None if o["num_gpu"] < 0 else o["num_gpu"],
                          flash_attention=ref["fa"] != "off", kv_cache_type=ref["kv"], layers_model=f.block_count + 1,
                          kv_bytes=e.kv_total, graph_full_bytes=e.graph_full, graph_partial_bytes=e.graph_partial,
                          weights_repeating_bytes=e.memory_weights, weights_nonrepeating_bytes=e.memory_layer_output,
                          full_offload_bytes=need, per_gpu=per_gpu, llama_server_args=" ".join(ref["args"]), fit=ref["fit"] if plans else None,
                          predicted_bytes=ref["predicted"])
    return report, f, {"alone": alone["estimate"], "first": plans[0]["estimate"] if plans else None,
                       "plan": ref}


# ---- ollama ps from llama-server's log (llm/llama_server.go memoryParsingWriter / MemorySize, v0.32.15) --------

_DEVICE_FREE = re.compile(r"using device (\S+)\s+\(.*\)\s+-\s+(\d+)\s+MiB free")
_BUFFER = re.compile(r"(?m)(?:^|\n)[^\n:]*?([A-Za-z_][A-Za-z0-9_]*):\s+(\S+)\s+(model|KV|compute|output|RS)\s+"
                     r"buffer size\s*=\s*([\d.]+)\s*MiB")
_OFFLOADED = re.compile(r"offloaded\s+(\d+)/(\d+)\s+layers to GPU")
_FIT_OVERFLOW = re.compile(r"common_params_fit_impl:\s+-\s+.+:\s+\d+\s+layers\s+\(\s*(\d+)\s+overflowing\)")


def is_gpu_buffer(name: str) -> bool:
    """``isGPUBuffer``: not CPU, BLAS, ``CPU_*`` or a ``*_Host`` buffer."""
    return not (name in ("CPU", "BLAS") or name.startswith("CPU_") or name.endswith("_Host"))


def device_name(backend: str) -> str:
    for suffix in ("_Mapped", "_REPACK", "_Private"):
        if backend.endswith(suffix):
            return backend[:-len(suffix)]
    return backend


class ServerMemory:
    """What Ollama reads from llama-server's output (``memoryParsingWriter``) and reports (``MemorySize``)."""

    def __init__(self, total_layers: int = 0, mem_total: int = 0, mem_gpu: int = 0) -> None:
        self.buffers: dict[tuple[str, str, str], int] = {}
        self.mem_total, self.mem_gpu = mem_total, mem_gpu
        self.file_backed = self.cpu_mapped = 0
        self.gpu_layers, self.total_layers, self.overflow = 0, total_layers, 0
        self.by_device: dict[str, int] = {}
        self.free_at_load: dict[str, int] = {}

    def write(self, text: str) -> None:
        m = _DEVICE_FREE.search(text)
        if m:
            self.free_at_load[m.group(1)] = int(m.group(2)) * MiB
        for m in _OFFLOADED.finditer(text):
            self.gpu_layers, self.total_layers = int(m.group(1)), int(m.group(2))
        for m in _FIT_OVERFLOW.finditer(text):
            if int(m.group(1)) > 0:
                self.overflow += int(m.group(1))
        for m in _BUFFER.finditer(text):
            self.buffers[(m.group(1), m.group(2), m.group(3))] = int(float(m.group(4)) * 1024 * 1024)
            self._update()

    def _update(self) -> None:
        total = gpu = backed = mapped = 0
        by: dict[str, int] = {}
        for (_, backend, kind), b in self.buffers.items():
            total += b
            if kind == "model":
                on_gpu, mmap = is_gpu_buffer(backend), backend.endswith("_Mapped")
                if on_gpu or mmap:
                    backed += b
                if not on_gpu and mmap:
                    mapped += b
            if is_gpu_buffer(backend):
                gpu += b
                by[device_name(backend)] = by.get(device_name(backend), 0) + b
        self.mem_total, self.mem_gpu, self.file_backed, self.cpu_mapped, self.by_device = total, gpu, backed, mapped, by

    def memory_size(self, file_size: int = 0) -> tuple[int, int]:
        """``MemorySize``: (SIZE, the part in VRAM); from v0.30.11 (#16709) the mmap overlap beyond the file
        trimmed; SIZE is VRAM when every layer is offloaded and none overflows."""
        if self.mem_total > 0:
            total, vram = self.mem_total, self.mem_gpu
            if self.cpu_mapped > 0 and file_size and self.file_backed > file_size:
                total -= min(self.cpu_mapped, self.file_backed - file_size)
            if self.total_layers > 0 and self.gpu_layers >= self.total_layers and self.overflow == 0:
                total = vram
            return total, vram
        return file_size, file_size


def buffer_lines(devs: Sequence[Any], host: Any, offloaded: int, total_layers: int,
                 fit_trace: Sequence[str] = ()) -> list[str]:
    """The lines llama-server prints for vramscope's buffers (llama.cpp's wording: ``load_tensors``,
    ``llama_kv_cache``, ``sched_reserve``; the host model buffer memory-mapped, ``CPU_Mapped``)."""
    out = [f"common_params_fit_impl: {line}" for line in fit_trace]
    out.append(f"load_tensors: offloaded {offloaded}/{total_layers} layers to GPU")
    for d in devs:
        out.append(f"load_tensors:        CUDA{d.device} model buffer size = {d.model_buffer_bytes / MiB:8.2f} MiB")
    if host.model_buffer_bytes:
        out.append(f"load_tensors:   CPU_Mapped model buffer size = {host.model_buffer_bytes / MiB:8.2f} MiB")
    for d in devs:
        out.append(f"llama_kv_cache:      CUDA{d.device} KV buffer size = {d.kv_buffer_bytes / MiB:8.2f} MiB")
    if host.kv_buffer_bytes:
        out.append(f"llama_kv_cache:        CPU KV buffer size = {host.kv_buffer_bytes / MiB:8.2f} MiB")
    for d in devs:
        out.append(f"sched_reserve:      CUDA{d.device} compute buffer size = {d.compute_buffer_bytes / MiB:8.2f} MiB")
    if host.compute_buffer_bytes:
        out.append(f"sched_reserve:  CUDA_Host compute buffer size = {host.compute_buffer_bytes / MiB:8.2f} MiB")
    return out
