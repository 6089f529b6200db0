"""llama.cpp's KV cache per layer, per architecture, and the architectures llama.cpp has no code for.

Read in ggml-org/llama.cpp at commit 82bb48500 (master, 2026-08-07; the same ``src/`` as unslothai/llama.cpp
d32676d, which syncs it): ``src/llama-model.cpp`` (``llama_model::create_memory``, ``load_hparams``),
``src/llama-hparams.cpp``, ``src/llama-kv-cache.cpp`` (``llama_kv_cache::llama_kv_cache``),
``src/llama-kv-cache-iswa.cpp``, ``src/llama-kv-cache-dsv4.cpp``, ``src/llama-context.cpp``,
``src/models/{mimo2,gemma4,deepseek4}.cpp`` and the converter (``convert_hf_to_gguf.py``,
``conversion/{__init__,mimo,gemma,deepseek}.py``).

* Every layer ``il`` that has a cache keeps a K tensor ``n_embd_k_gqa(il) × kv_size × n_stream`` of
  ``--cache-type-k`` and a V tensor of ``--cache-type-v``, with ``n_embd_k_gqa(il) = n_embd_head_k(il) ×
  n_head_kv(il)``: ``n_head_kv`` per layer (``attention.head_count_kv`` may be an array) and the head sizes
  ``key_length`` / ``value_length``, on sliding layers ``key_length_swa`` / ``value_length_swa``. The V width is
  ``n_embd_v_gqa(il)`` under flash attention; without it the V cache is stored transposed and every layer's V is
  padded to the widest (``n_embd_v_gqa_max()`` over all layers, [TAG_V_CACHE_VARIABLE]). An MLA cache
  (``hparams.is_mla()``) has no V.
* Cells (``llama_context``'s constructor, [:func:`context_cells`]): ``n_ctx`` is first padded to 256
  (``GGML_PAD(n_ctx, 256)``, #17046, 2025-11-07); with ``--kv-unified`` one stream of ``kv_size = n_ctx`` cells,
  without it (``common``'s default, and llama-server's when ``-np`` is given) one stream per sequence
  (``n_stream = n_seq_max``) of ``kv_size = n_ctx_seq = GGML_PAD(n_ctx / n_seq_max, 256)`` cells. llama-server
  with ``-np`` left at auto runs ``n_parallel = 4`` and ``kv_unified = true`` (tools/server/server.cpp:
  "n_parallel is set to auto, using n_parallel = 4 and kv_unified = true").
* Sliding layers (``llama_kv_cache_iswa``): ``GGML_PAD(min(kv_size, n_swa × (unified ? n_seq_max : 1) +
  n_ubatch), 256)`` cells per stream ("the SWA cache is always padded to 256", #17037; ``--swa-full``: all of
  ``kv_size``). The others keep ``kv_size`` cells per stream.
* MiMo-V2-Flash (``mimo2``, ``MiMoV2FlashForCausalLM``; conversion/mimo.py): ``head_count_kv`` per layer
  (``swa_num_key_value_heads`` on sliding layers, ``num_key_value_heads`` on the others), keys of ``head_dim``
  (192) and values of ``value_length = v_head_dim`` (128) in every layer, ``sliding_window`` as config.json
  writes it (128; transformers' config adds one, ``sliding_window_size + 1``); the three MTP layers the GGUF adds
  are filtered out of the main context's cache (``il < n_layer()``).
* Gemma 4 (``gemma4``; conversion/gemma.py ``Gemma4Model``): ``key_length = value_length = global_head_dim``
  (512) on full-attention layers, ``head_dim`` on sliding ones, ``head_count_kv`` per layer
  (``num_global_key_value_heads`` on full layers); ``n_layer_kv_from_start = n_layer − num_kv_shared_layers``:
  the shared layers have no cache (``has_kv``) and reuse layer ``n_layer_kv_from_start − (is_swa ? 2 : 1)``. A
  layer whose keys are its values still stores a V tensor (``has_v = !is_mla``).
* DeepSeek-V4 (``deepseek4``, ``llama_kv_cache_dsv4``): every layer slides (``set_swa_pattern(0)``); caches are
  K only (``dsv4_make_k_only``) and kept per sequence whatever ``--kv-unified`` says. A raw sliding cache of
  ``head_dim × n_head_kv`` (512 × 1) in every layer; on CSA layers (``compress_ratios[il] == 4``) a compressed
  cache of the same width and ``GGML_PAD(max(1, ceil(kv_size / 4)), 256)`` cells plus the lightning indexer's
  (``indexer_head_size``, 128, wide, same cells); on HCA layers (ratio 128) a compressed cache of
  ``GGML_PAD(max(1, ceil(kv_size / 128)), 256)`` cells. Beside them f32 compressor states, two tensors (kv,
  score) per layer of ``n_stream × (1 + n_rs_seq)`` planes: CSA ``2 × head_dim`` × 8 rows, the indexer ``2 ×
  indexer_head_size`` × 8, HCA ``head_dim`` × 128. From a GGUF, the ratios and the indexer's size are its
  ``attention.compress_ratios`` and ``attention.indexer.key_length`` (:func:`vramscope.sources.gguf._dsv4_compressed`).
* Architectures: a Hugging Face checkpoint converts only when its ``architectures[0]`` (a vision-language
  model's ``text_config`` one) is in the converter's ``TEXT_MODEL_MAP`` (``conversion/__init__.py``,
  ``get_model_class``: "Model … is not supported"), and a GGUF loads only when ``general.architecture`` is one
  of ``LLM_ARCH_NAMES`` (``src/llama-arch.cpp``: "unknown model architecture"). Both lists are
  ``data/llamacpp_archs.json``, copied from that commit, with the architecture each checkpoint converts to and
  the architectures that slide at all: a config's ``sliding_window`` means nothing to llama.cpp unless its
  ``load_arch_hparams`` sets a ``swa_type`` (Phi-3's ``phi3.cpp`` disables it; Mistral and Qwen2 run as
  ``llama`` / ``qwen2``, full attention in every layer).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .. import i18n
from ..model.spec import SLIDING, ModelSpec

if TYPE_CHECKING:
    from ..sources.base import ResolvedModel

#: the llama.cpp commit these layouts were read at
LLAMACPP_LAYOUT_VERSION = "82bb48500 (2026-08-07)"

#: ``GGML_PAD(…, 256)`` of the SWA and DSV4 compressed caches
CACHE_PAD = 256
#: src/llama-kv-cache-dsv4.cpp ``DSV4_CSA_RATIO`` / ``DSV4_HCA_RATIO``
DSV4_CSA, DSV4_HCA = 4, 128
#: the compressor states' f32 (``GGML_TYPE_F32``)
F32 = 4

#: model types whose transformers config holds a sliding window other than the one the converter writes
#: (llama.cpp's ``n_swa``): MiMo-V2-Flash's ``MiMoV2FlashConfig`` sets ``sliding_window = sliding_window_size +
#: 1`` (transformers 5.24 configuration_mimo_v2_flash.py), conversion/mimo.py writes config.json's
#: ``sliding_window`` (128)
WINDOW_OFFSET = {"mimo_v2_flash": 1}

#: recurrent mixers (``StateSpec.mixer``) of checkpoints whose config names no architecture, for which
#: llama.cpp has none: xLSTM (transformers' ``xLSTMForCausalLM``), RecurrentGemma (Griffin), RWKV-4
#: (transformers' ``RwkvForCausalLM``; llama.cpp has RWKV-6 and -7 only)
NO_LLAMACPP_MIXERS = ("xLSTMLayer", "RecurrentGemmaRglru", "RwkvSelfAttention")


def _pad(n: int) -> int:
    return -(-n // CACHE_PAD) * CACHE_PAD


@lru_cache(maxsize=1)
def _archs() -> dict:
    with (Path(__file__).resolve().parent.parent / "data" / "llamacpp_archs.json").open(encoding="utf-8") as f:
        return json.load(f)


def llamacpp_arch(spec: ModelSpec) -> Optional[str]:
    """The llama.cpp architecture this model runs as (a GGUF's own; a checkpoint's, the one the converter writes
    for its ``architectures[0]``); None when the model names none or the converter lacks it."""
    if spec.model_type.startswith("gguf:"):
        return spec.model_type[5:]
    return _archs()["hf_to_gguf"].get(spec.architecture) if spec.architecture else None


def unsupported(model: "ResolvedModel") -> Optional[tuple[str, str]]:
    """(the architecture, where llama.cpp lacks it) when llama.cpp cannot run this model; None when it can or
    when the model does not say (no architecture named, no mixer llama.cpp lacks)."""
    spec, data = model.spec, _archs()
    if spec.model_type.startswith("gguf:"):
        arch = spec.model_type[5:]
        return (arch, "src/llama-arch.cpp LLM_ARCH_NAMES") if arch not in data["llm_arch_names"] else None
    # a VLM's text_config may name another architecture (not kept), also where its tower is not read here
    vlm = spec.vision is not None or isinstance((model.hf_config or {}).get("vision_config"), dict)
    if spec.architecture and not vlm:
        return (spec.architecture, "convert_hf_to_gguf.py TEXT_MODEL_MAP") \
            if spec.architecture not in data["convert_hf_to_gguf"] else None
    if spec.state is not None and spec.state.mixer in NO_LLAMACPP_MIXERS:
        return (f"{spec.model_type} ({spec.state.mixer})", "src/llama-arch.cpp LLM_ARCH_NAMES")
    return None


def slides(spec: ModelSpec) -> bool:
    """Whether llama.cpp gives this model's sliding layers a window (``swa_archs``: its ``load_arch_hparams``
    sets a ``swa_type``); a model that names no architecture keeps its config's window."""
    if not spec.sliding_window:
        return False
    arch = llamacpp_arch(spec)
    return arch is None or arch in _archs()["swa_archs"]


def n_swa(spec: ModelSpec) -> int:
    """llama.cpp's ``n_swa`` of this model (0: no sliding layers)."""
    return max(0, (spec.sliding_window or 0) - WINDOW_OFFSET.get(spec.model_type, 0))


def layer_widths(spec: ModelSpec) -> list[tuple[int, int]]:
    """(``n_embd_k_gqa(il)``, ``n_embd_v_gqa(il)``) of each decoder layer for standard attention; (0, 0) where
    the layer has no cache of its own (Gemma 4's KV-shared layers).

    Gemma 4: ``ModelSpec.layer_kv`` (heads × size, keys and values alike; a shared layer's own shape, which
    llama.cpp's V padding also counts, is its type's: the widest V is found among the unshared layers as long
    as both types have one, as in every Gemma 4 checkpoint). MiMo-V2-Flash:
    ``kv_values_per_layer`` holds each layer's ``k_proj + v_proj`` width; one head's key + value size is the
    narrowest layer's width over ``num_kv_heads`` (its full layers: 1280 / 4 = 320), its key part ``head_dim``
    (192), so a layer keeps ``width / 320`` heads of 192 keys and 128 values. Otherwise ``num_kv_heads ×
    head_dim`` in every layer."""
    n = spec.num_layers
    if spec.layer_kv:
        return [(h * d, h * d) if h else (0, 0) for h, d in (spec.layer_kv[i] if i < len(spec.layer_kv) else
                                                            (spec.num_kv_heads, spec.head_dim) for i in range(n))]
    uniform = spec.num_kv_heads * spec.head_dim
    widths = spec.kv_values_per_layer
    if widths and len(widths) == n and spec.num_kv_heads:
        head = min(widths) // spec.num_kv_heads
        if head > spec.head_dim and all(x % head == 0 for x in widths):
            return [(x // head * spec.head_dim, x // head * (head - spec.head_dim)) for x in widths]
    return [(uniform, uniform)] * n


def context_cells(n_ctx: int, n_seq: int, unified: bool = False) -> tuple[int, int]:
    """``(kv_size, n_stream)`` of ``llama_context`` (module docstring) for the context it keeps (``n_ctx``, already
    padded to 256 by :func:`vramscope.engines.llamacpp.llama_n_ctx`): unified, one stream of ``n_ctx`` cells; else
    ``n_seq_max`` streams of ``GGML_PAD(n_ctx / n_seq_max, 256)`` cells."""
    streams = max(1, n_seq)
    if unified or streams == 1:
        return n_ctx, 1
    return _pad(n_ctx // streams), streams


def dsv4_layer_bytes(spec: ModelSpec, layer: int, n_ctx: int, ub: int, bk: float, n_seq: int) -> tuple[int, int]:
    """(K cache bytes, f32 compressor state bytes) of one DeepSeek-V4 layer (module docstring): per sequence
    whatever ``--kv-unified`` says; its raw sliding cache is never full-size."""
    comp = spec.compressed.compressors[layer] if layer < len(spec.compressed.compressors) else ()
    width = spec.head_dim * max(1, spec.num_kv_heads)
    kv_size, streams = context_cells(n_ctx, n_seq)
    raw = swa_cells(spec, n_ctx, ub, n_seq) * width * bk
    state = 0
    ratio = comp[0][0] if comp else 0
    if ratio in (DSV4_CSA, DSV4_HCA):
        cells = _pad(max(1, -(-kv_size // ratio))) * streams
        raw += cells * width * bk
        if ratio == DSV4_CSA:
            indexer = comp[1][1] if len(comp) > 1 else 0
            raw += cells * indexer * bk
            state = 2 * (2 * spec.head_dim * 2 * DSV4_CSA + 2 * indexer * 2 * DSV4_CSA) * streams * F32
        else:
            state = 2 * spec.head_dim * DSV4_HCA * streams * F32
    return int(raw), int(state)


def standard_layer_bytes(spec: ModelSpec, layer: int, widths: list[tuple[int, int]], n_ctx: int, ub: int,
                         bk: float, bv: float, n_seq: int, flash_attn: bool, sliding: bool, unified: bool = False,
                         swa_full: bool = False) -> int:
    """K + V bytes of one layer with standard attention (module docstring)."""
    k, v = widths[layer]
    if not k and not v:
        return 0
    if not flash_attn:
        v = max(x for _, x in widths)  # the transposed V cache is padded to the widest layer's
    if sliding and slides(spec):
        cells = swa_cells(spec, n_ctx, ub, n_seq, unified, swa_full)
    else:
        kv_size, streams = context_cells(n_ctx, n_seq, unified)
        cells = kv_size * streams
    return int(cells * (k * bk + v * bv))


def swa_cells(spec: ModelSpec, n_ctx: int, ub: int, n_seq: int, unified: bool = False,
              swa_full: bool = False) -> int:
    """Cells of a sliding layer, all streams: ``GGML_PAD(min(kv_size, n_swa × (unified ? n_seq_max : 1) +
    n_ubatch), 256)`` per stream (``llama_kv_cache_iswa``), ``kv_size`` with ``--swa-full``."""
    kv_size, streams = context_cells(n_ctx, n_seq, unified)
    if swa_full:
        return kv_size * streams
    # kv_size is a multiple of 256 unless n_ctx was kept unpadded (--llamacpp-unpadded-ctx): never above it
    return min(kv_size, _pad(min(kv_size, n_swa(spec) * (max(1, n_seq) if unified else 1) + ub))) * streams


def is_sliding(spec: ModelSpec, layer: int) -> bool:
    return slides(spec) and (spec.compressed is not None or spec.layer_type(layer) == SLIDING)


def layout_shown(spec: ModelSpec) -> str:
    """What the estimate's note names: the per-layer widths and windows llama.cpp keeps for this model."""
    if spec.compressed is not None:
        csa = sum(1 for c in spec.compressed.compressors if c and c[0][0] == DSV4_CSA)
        hca = sum(1 for c in spec.compressed.compressors if c and c[0][0] == DSV4_HCA)
        return (f"deepseek4: K {spec.head_dim * max(1, spec.num_kv_heads)}, n_swa {n_swa(spec)} (all "
                f"{spec.num_layers}), CSA {csa}, HCA {hca}")
    widths = layer_widths(spec)
    counts: dict[tuple[int, int, bool], int] = {}
    for i, (k, v) in enumerate(widths):
        key = (k, v, bool(k or v) and is_sliding(spec, i))
        counts[key] = counts.get(key, 0) + 1
    parts = [("—" if not k else f"K {k} V {v}{' SWA' if s else ''}") + f" ×{c}" for (k, v, s), c in counts.items()]
    return ", ".join(parts) + (f", n_swa {n_swa(spec)}" if spec.sliding_window else "")


def has_own_layout(spec: ModelSpec) -> bool:
    """Whether the layers differ from the uniform standard layout (the note is then shown)."""
    return spec.compressed is not None or bool(spec.layer_kv) or (
        len(set(layer_widths(spec))) > 1)


def refuse_unsupported(model: "ResolvedModel") -> None:
    """One clear line (exit 2) when llama.cpp has no architecture for this model (:func:`unsupported`)."""
    miss = unsupported(model)
    if miss is not None:
        from ..errors import Text, VramscopeError

        raise VramscopeError("conflict", field="engine", reason=Text(
            "r_llamacpp_no_arch", version=LLAMACPP_LAYOUT_VERSION, arch=miss[0], where=miss[1]))


def layout_note(spec: ModelSpec, n_ctx: int, ub: int, bk: float, n_seq: int) -> Optional[tuple[str, dict]]:
    """The assumption naming this architecture's llama.cpp layout (None: the uniform layout, nothing to say)."""
    if spec.sliding_window and not slides(spec):
        return "a_llamacpp_no_swa", {"version": LLAMACPP_LAYOUT_VERSION, "arch": llamacpp_arch(spec),
                                     "window": spec.sliding_window}
    if spec.state is not None or spec.mla is not None or not has_own_layout(spec):
        return None
    arch = spec.architecture or spec.model_type
    if spec.compressed is not None:
        state = sum(dsv4_layer_bytes(spec, i, n_ctx, ub, bk, n_seq)[1] for i in range(spec.num_layers))
        return "a_llamacpp_dsv4", {"version": LLAMACPP_LAYOUT_VERSION, "layout": layout_shown(spec),
                                   "state": f"{state / 2**20:,.2f} MiB"}
    return "a_llamacpp_layout", {"version": LLAMACPP_LAYOUT_VERSION, "arch": arch, "layout": layout_shown(spec)}


i18n.register({
    "a_llamacpp_layout": {
        "en": "llama.cpp's KV cache of this architecture as read at {version} ({arch}): {layout}; without flash "
              "attention every layer's V is padded to the widest layer's; sliding layers keep "
              "GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256) cells per sequence",
        "zh": "llama.cpp 对该架构的 KV 缓存，按 {version} 阅读（{arch}）：{layout}；不开 flash attention 时每层的 V "
              "都按最宽的层填充；滑动窗口层每条序列保留 GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256) 个单元",
    },
    "a_llamacpp_dsv4": {
        "en": "llama.cpp's DeepSeek-V4 cache as read at {version} (llama_kv_cache_dsv4): {layout}; keys only, per "
              "sequence: a raw sliding cache in every layer, compressed caches of ceil(n_ctx / 4) (CSA, with the "
              "lightning indexer's) or ceil(n_ctx / 128) (HCA) cells padded to 256, and f32 compressor states "
              "({state})",
        "zh": "llama.cpp 的 DeepSeek-V4 缓存，按 {version} 阅读（llama_kv_cache_dsv4）：{layout}；只存 K、按序列分配："
              "每层一个原始滑动窗口缓存，压缩缓存为 ceil(n_ctx / 4)（CSA，另含闪电索引器的）或 ceil(n_ctx / 128)（HCA）"
              "个单元并填充到 256，以及 f32 压缩器状态（{state}）",
    },
    "a_llamacpp_no_swa": {
        "en": "llama.cpp {version} runs this model as '{arch}', which has no sliding-window attention: the "
              "config's window ({window}) is not used and every layer keeps n_ctx cells",
        "zh": "llama.cpp {version} 以 '{arch}' 架构运行该模型，该架构没有滑动窗口注意力：配置中的窗口（{window}）"
              "不起作用，每层都保留 n_ctx 个单元",
    },
    "r_llamacpp_no_arch": {
        "en": "llama.cpp {version} has no architecture '{arch}' (not in {where}); it cannot run this model",
        "zh": "llama.cpp {version} 没有 '{arch}' 架构（不在 {where} 中）；无法运行该模型",
    },
})
