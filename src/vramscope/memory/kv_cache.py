"""KV cache: the keys and values kept for every past token, per layer, as each engine stores them.

For standard attention (MHA, GQA, MQA) each layer keeps ``2 × kv_heads × head_dim`` values per token, with
``head_dim`` taken from the config when it is explicit (Gemma, Qwen3, Mistral-Nemo) rather than
``hidden / heads``. Summed over layers:

    kv_bytes = batch × Σ_layers tokens_l × values_l × bytes_per_value

where ``tokens_l`` and ``values_l`` depend on the engine and its version (:class:`CacheLayout`):

* **transformers** (``cache_utils.py``; read at 4.55.0, 4.56.0, 5.14.1, 5.15.0, 5.20.0, 5.21.0 and 5.24.0):

  - sliding-window layers of a dynamic cache are ``DynamicSlidingWindowLayer`` since 4.56.0. Its ``update``
    concatenates the new states to the old and keeps ``full[:, :, -sliding_window + 1:]``: a *view*, so the
    tensor shows ``sliding_window - 1`` tokens while its storage (what the GPU holds) is the whole
    concatenation. After the prefill that is every prompt token; from the first decode step on it is
    ``min(tokens, sliding_window)`` tokens. Before 4.56.0 a ``DynamicCache`` kept every token in every layer.
    A static cache (``StaticSlidingWindowLayer``, and ``SlidingWindowLayer``/``HybridCache`` before it)
    preallocates ``min(max_cache_len, sliding_window)`` tokens for sliding layers and ``max_cache_len`` for
    the others;
  - Falcon with ``new_decoder_architecture`` broadcasts its ``num_kv_heads`` keys and values to every query
    head before caching (``modeling_falcon.py``: ``torch.broadcast_to(key, query.shape)``, cached with
    ``num_heads`` heads), so it caches ``2 × num_heads × head_dim`` values per token (every version);
  - DeepSeek-V2/V3 (MLA) cache the compressed latent since 5.15.0 (``modeling_deepseek_v3.py``: "Cache read /
    write is performed while latent KV is still compressed": keys ``kv_lora_rank``, values
    ``qk_rope_head_dim``, one head); before, the decompressed per-head keys (``qk_nope + qk_rope``) and values
    (``v_head_dim``) of every head;
  - ``--kv-dtype fp8`` is ``QuantizedCache(backend="fp8")`` (since 5.21.0): every layer a ``Fp8QuantizedLayer``,
    one byte per value plus one fp32 scale for the keys and one for the values per layer. ``QuantizedCache``
    refuses models with sliding-window layers ("only supported for models with only full attention layers");
    for those, and before 5.21, an fp8 cache is one byte per value laid out as the dynamic cache;
  - before 4.42.0 ``generate()`` passed the cache between steps as legacy tuples (``to_legacy_cache`` /
    ``from_legacy_cache``; before 4.36.0 the models themselves built ``torch.cat([past_key_value[0], ...])``
    tuples): the previous step's tuple stays referenced by ``model_kwargs`` while the forward builds the next
    one, so a decode step holds the cache of ``tokens - 1`` tokens beside the new one (4.42.0 made a
    ``DynamicCache`` the default "to save memory", ``generation/utils.py``);
  - encoder-decoder models add a cross-attention cache of the encoder length (``EncoderDecoderCache``);
  - state-space and hybrid models (``ModelSpec.state``: Mamba, Mamba2, Jamba, Bamba, Falcon-H1, Zamba, Zamba2,
    GraniteMoeHybrid, Nemotron-H, Qwen3-Next / Qwen3.5, OLMo-Hybrid, LFM2, Kimi-Linear's KDA with MLA latents in
    its attention layers; MiniMax's lightning attention in ``MiniMaxCache``, its K^T V ``(heads, head_dim,
    head_dim)`` in the model's dtype and no conv state) keep keys and values only in their
    attention (and hybrid) layers, and in each recurrent layer a ``LinearAttentionLayer`` (since 5.12.0) of fixed
    size per sequence: the conv state ``(channels, conv_kernel_size)`` in the model's dtype and the recurrent state
    (``zeros_like`` the scan's final state: float32). Before, ``MambaCache`` / ``Mamba2Cache`` /
    ``HybridMambaAttentionDynamicCache`` (read at 5.0.0) preallocated both in the model's dtype
    (``Qwen3NextDynamicCache`` kept the float32 state it was given).

* **vLLM** reserves a block slot per token in every layer (:func:`kv_bytes_per_token`); MLA layers keep the
  latent (``kv_lora_rank + qk_rope_head_dim``, arXiv 2405.04434 §2.1.2) and Falcon its real KV heads; a
  recurrent / hybrid model's mamba layers one state page per request (``engines/vllm.py: state_groups``).
* **llama.cpp** sizes its own buffer (``engines/llamacpp.py``), a recurrent model's ``r_l`` / ``s_l`` f32 states
  per sequence beside it (``layer_cache_bytes``). Both keep ``kernel − 1`` conv columns
  (``StateSpec.engine_conv_values``).

Encoder-only models keep no cache. Checked against the cache objects transformers itself fills in a real
prefill and decode on CPU (``tests/test_kv_real.py``). Llama-2-7B fp16 at 4,096 tokens is
32 × 4096 × 2 × 32 × 128 × 2 B = 2 GiB exactly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional

from ..model.spec import SLIDING, ModelSpec

#: bytes per cached value for each --kv-dtype; llama.cpp block types are size-per-block / block-length
KV_DTYPE_BYTES = {
    "fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0, "int8": 1.0,
    "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32,
}

#: the newest transformers whose caches were read; what is modelled when none is installed or named
TRANSFORMERS_MODELLED = "5.24.0"
#: first versions with each behaviour (see the module docstring)
SLIDING_DYNAMIC_SINCE = (4, 56, 0)
MLA_LATENT_SINCE = (5, 15, 0)
FP8_CACHE_SINCE = (5, 21, 0)
DYNAMIC_BETWEEN_STEPS_SINCE = (4, 42, 0)
#: the --kv-dtype values transformers' own caches store (``Fp8QuantizedLayer.fp8_dtype`` is e4m3)
TRANSFORMERS_KV_DTYPES = ("fp32", "fp16", "bf16", "fp8", "fp8_e4m3")
FP8_CACHE_DTYPES = ("fp8", "fp8_e4m3")

_VERSION = re.compile(r"^\s*v?(\d{1,3})\.(\d{1,4})(?:\.(\d{1,4}))?")


def parse_version(text: str) -> Optional[tuple[int, int, int]]:
    """``"5.24.0"`` (or ``"4.56"``, ``"5.0.0rc1"``) as a tuple; None when it is not a version."""
    m = _VERSION.match(text) if isinstance(text, str) else None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def read_transformers_version(value: object, flag: str = "--transformers-version") -> Optional[str]:
    """An option's value as a transformers version (``4.56``, ``5.24.0``), refused with one line otherwise."""
    if value is None:
        return None
    from ..errors import VramscopeError
    from ..model.limits import shown

    v = parse_version(value) if isinstance(value, str) and len(value) <= 40 else None
    if v is None or v < (4, 0, 0):
        raise VramscopeError("bad_transformers_version", field=flag, value=shown(value),
                             example=TRANSFORMERS_MODELLED)
    return value.strip()


def transformers_version(named: Optional[str] = None) -> str:
    """The transformers version whose caches are modelled: the one named, else ``VRAMSCOPE_TRANSFORMERS_VERSION``,
    else the installed one (read from its package metadata: nothing is imported), else
    :data:`TRANSFORMERS_MODELLED`."""
    for text in (named, os.environ.get("VRAMSCOPE_TRANSFORMERS_VERSION")):
        if text and parse_version(text):
            return text.strip()
    return _installed()


@lru_cache(maxsize=1)
def _installed() -> str:
    """The installed transformers' version, else the modelled one. Read from its ``*.dist-info`` folder name (or
    its ``__init__.py``'s ``__version__``) next to the package: neither transformers nor ``importlib.metadata``
    (40 ms of imports) is imported."""
    import importlib.util

    try:
        found = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for pkg in locations[:1]:
        site = os.path.dirname(pkg)
        try:
            names = os.listdir(site)
        except OSError:
            names = []
        for name in names:
            if name.startswith("transformers-") and name.endswith(".dist-info") and parse_version(name[13:-10]):
                return name[13:-10]
        try:
            with open(os.path.join(pkg, "__init__.py"), encoding="utf-8") as f:
                m = re.search(r'^__version__\s*=\s*["\']([^"\']{1,40})["\']', f.read(200_000), re.M)
            if m and parse_version(m.group(1)):
                return m.group(1)
        except OSError:
            pass
    return TRANSFORMERS_MODELLED


#: transformers keeps every recurrent / hybrid model's state in ``LinearAttentionLayer`` (cache_utils.py: conv
#: states in the hidden states' dtype, recurrent states ``zeros_like`` the final state the scan returns, float32)
#: since this version (read at 5.12.0 and 5.24.0; 5.0.0 still had MambaCache, Mamba2Cache and
#: HybridMambaAttentionDynamicCache allocating both states in the model's dtype)
STATE_LAYERS_SINCE = (5, 12, 0)


#: ``QuantizedCache(backend="quanto" | "hqq")``'s layers (``QuantizedLayer``, read at 5.24.0): the bits each backend
#: accepts (``QuantoQuantizedLayer``: 2 and 4; ``HQQQuantizedLayer``: 1, 2, 3, 4 and 8) and the axes
KV_QUANT_BITS = {"quanto": (2, 4), "hqq": (1, 2, 3, 4, 8)}
KV_QUANT_AXES = {"quanto": (0, -1), "hqq": (0, 1)}


@dataclass(frozen=True)
class KvQuant:
    """transformers' group-wise quantized KV cache (``cache_implementation="quantized"``): the backend and
    ``nbits``, ``q_group_size``, ``residual_length``, ``axis_key``, ``axis_value`` (the layer's defaults: 4, 64,
    128, 0, 0)."""

    backend: str = "quanto"
    nbits: int = 4
    q_group_size: int = 64
    residual_length: int = 128
    axis_key: int = 0
    axis_value: int = 0


def quantized_tensor_bytes(values: int, q: KvQuant, axis: int, dtype_bytes: float) -> int:
    """The storage one quantized key (or value) tensor of ``values`` values keeps, as the backend packs it.

    * quanto 0.2.7 (``quantize_weight`` with ``MaxOptimizer``: a ``WeightQBitsTensor``): the tensor grouped as
      ``(values / G, G)`` for axis 0 or ``(G, values / G)`` for axis −1 (``tensor/grouped.py``: ``group``), its
      rows packed ``8 / nbits`` to a uint8 (``PackedTensor.pack``: ``ceil(rows / (8 / nbits))`` rows), one scale
      and one shift per group in the states' dtype;
    * HQQ 0.2.8 (``Quantizer.quantize``): the tensor reshaped ``(G, values / G)`` for axis 0 or ``(values / G,
      G)`` for axis 1, rows packed by ``core/bitpack.py`` (8 bits: a byte each; 4: ``rows // 2`` uint8 rows; 2:
      ``rows // 4``; 1: ``rows // 8``; 3: ``ceil(rows / 10)`` int32 rows), one scale and one zero per group in
      the compute dtype (``HQQQuantizedLayer``: the states' dtype)."""
    g = q.q_group_size
    groups = values // g
    if q.backend == "quanto":
        rows, cols = (groups, g) if axis == 0 else (g, groups)
        packed = -(-rows // (8 // q.nbits)) * cols
    else:
        rows, cols = (g, groups) if axis == 0 else (groups, g)
        packed = {8: rows, 4: rows // 2, 2: rows // 4, 1: rows // 8}.get(q.nbits, -(-rows // 10) * 4) * cols
    return int(packed + 2 * groups * dtype_bytes)


def quantized_layer_bytes(spec: ModelSpec, tokens: int, batch: int, dtype_bytes: float, q: KvQuant,
                          phase: str, broadcast: bool = False) -> int:
    """One layer of ``QuantizedCache``: ``QuantizedLayer.update`` quantizes the whole prompt at the first update
    (nothing in full precision), then appends decoded tokens to a full-precision residual until it would reach
    ``residual_length``, when everything is dequantized, concatenated and quantized again and the residual
    emptied. After the prefill: every token quantized; while decoding, at most ``residual_length − 1`` tokens in
    the residual (the largest the layer gets, a residual token costing more than a quantized one)."""
    residual = 0 if phase == "prefill" else min(max(q.residual_length - 1, 0), max(tokens - 1, 0))
    per_token = values_per_token(spec, 0, False, broadcast) // 2  # keys; values alike
    out = 0
    for axis in (q.axis_key, q.axis_value):
        out += quantized_tensor_bytes(batch * (tokens - residual) * per_token, q, axis, dtype_bytes)
        out += int(batch * residual * per_token * dtype_bytes)
    return out


@dataclass(frozen=True)
class CacheLayout:
    """How an engine stores one model's cache in one phase."""

    latent_mla: bool = False  # MLA layers cache the compressed latent (else decompressed per-head K/V)
    broadcast_kv: bool = False  # K/V heads broadcast to every query head before caching (transformers' Falcon)
    cap_sliding: bool = True  # sliding-window layers hold at most ``sliding_window`` tokens
    all_full: bool = False  # every layer a full layer (transformers' quantized cache knows no window)
    scale_bytes_per_layer: int = 0  # per-layer scales beside the values (fp8 quantized cache: 2 fp32)
    previous_step: bool = False  # the previous decode step's cache (one token fewer) is still held
    #: bytes per conv-state and per recurrent-state value of a recurrent / hybrid model (``ModelSpec.state``);
    #: 0: the cache's own value size (``bytes_per_value``)
    conv_state_bytes: float = 0.0
    recurrent_state_bytes: float = 0.0
    #: transformers' quanto / HQQ quantized cache (:func:`quantized_layer_bytes`) and the phase it is in
    quant: Optional[KvQuant] = None
    phase: str = "decode"


def quantized_cache_applies(spec: ModelSpec) -> bool:
    """``QuantizedCache`` takes models whose layers are all ``full_attention`` (it raises for the others); MLA
    latents and encoder-decoders are not modelled with it."""
    return spec.state is None and not spec.sliding_window and spec.mla is None and spec.kind == "decoder"


def transformers_layout(spec: ModelSpec, version: str, phase: str, cache: str = "dynamic",
                        kv_dtype: str = "", compute_dtype: str = "", quant: Optional[KvQuant] = None) -> CacheLayout:
    """transformers ``version``'s cache for ``phase`` (``prefill``: the cache right after the prompt;
    ``decode``: while generating) with ``cache`` (``dynamic`` or ``static``); rules in the module docstring.
    ``compute_dtype`` (the model's) is the dtype of a recurrent model's conv states."""
    v = parse_version(version) or parse_version(TRANSFORMERS_MODELLED)
    latent = spec.mla is not None and v >= MLA_LATENT_SINCE
    broadcast = spec.kv_broadcast
    state = {}
    if spec.state is not None:
        conv = KV_DTYPE_BYTES.get(compute_dtype) or KV_DTYPE_BYTES.get(kv_dtype) or 2.0
        # before the unified layers the model's own caches preallocated the recurrent state in the model's dtype
        # (the kernel path copies into it), except Qwen3NextDynamicCache, which kept the scan's float32 state
        # MiniMaxCache (its own class, every version) keeps the lightning attention's K^T V as computed: the
        # model's dtype
        # RWKV's own state list keeps its WKV state in float32 in every version
        # RecurrentGemma's RG-LRU state is float32 in every version ("always computed in full precision")
        # xLSTMCache (its own class, read at 5.24.0) allocates its states in the model's dtype and copies into them
        fp32 = (v >= STATE_LAYERS_SINCE or any(m in spec.state.mixer for m in ("DeltaNet", "Rwkv", "Rglru"))) \
            and not any(m in spec.state.mixer for m in ("Lightning", "xLSTM"))
        state = {"conv_state_bytes": conv, "recurrent_state_bytes": 4.0 if fp32 else conv}
    if cache == "quantized" and quant is not None and quantized_cache_applies(spec):
        return CacheLayout(False, broadcast, cap_sliding=False, all_full=True, quant=quant, phase=phase)
    if kv_dtype in FP8_CACHE_DTYPES and cache == "dynamic" and v >= FP8_CACHE_SINCE and not spec.sliding_window \
            and spec.state is None:  # QuantizedCache refuses every layer type but full_attention
        return CacheLayout(latent, broadcast, cap_sliding=False, all_full=True, scale_bytes_per_layer=8)
    # DeepSeek-V4's compressor state lives on its own dynamic cache layers: transformers builds it no static cache
    # ("isn't compatible with StaticCache", DeepseekV4PreTrainedModel, 5.24: StaticCache(config=...) raises a
    # KeyError for its compressed layer types), so its dynamic cache is what runs
    if cache == "static" and spec.compressed is None:
        return CacheLayout(latent, broadcast, cap_sliding=True, phase=phase, **state)
    return CacheLayout(latent, broadcast, cap_sliding=phase == "decode" and v >= SLIDING_DYNAMIC_SINCE,
                       previous_step=phase == "decode" and v < DYNAMIC_BETWEEN_STEPS_SINCE, phase=phase, **state)


def state_layer_bytes(spec: ModelSpec, layer: int, batch: int, layout: CacheLayout, bytes_per_value: float) -> int:
    """The conv + recurrent state bytes of one layer of a recurrent / hybrid model for ``batch`` sequences:
    independent of the number of tokens (``ModelSpec.state``)."""
    st = spec.state
    if st is None:
        return 0
    conv = layout.conv_state_bytes or bytes_per_value
    rec = layout.recurrent_state_bytes or bytes_per_value
    return int(batch * (st.conv_values[layer] * conv + st.recurrent_values[layer] * rec))


def compressed_layer_bytes(spec: ModelSpec, layer: int, tokens: int, batch: int, bytes_per_value: float,
                           layout: CacheLayout) -> int:
    """One CSA / HCA layer of DeepSeek-V4 (``ModelSpec.compressed``; transformers 5.24, checked on real caches by
    ``tests/test_kv_real.py``): the sliding window once (K = V), and per compressor the not-yet-compressed
    ``kv`` and ``gate`` (after the prefill the storage of the whole prompt's projections, of which they are a
    view; while decoding ``(tokens − 1) mod rate + 1`` tokens, the last concatenation), ``tokens // rate``
    compressed entries, and for an overlapping (CSA) compressor that has closed a window its last window's
    ``overlap_kv`` and float32 ``overlap_gate``."""
    window = min(tokens, spec.sliding_window) if layout.cap_sliding and spec.sliding_window else tokens
    values = window * spec.num_kv_heads * spec.head_dim * bytes_per_value
    for rate, entry, width in spec.compressed.compressors[layer]:
        buffered = tokens if layout.phase == "prefill" else (tokens - 1) % rate + 1
        entries = tokens // rate
        values += 2 * buffered * width * bytes_per_value + entries * entry * bytes_per_value
        if width == 2 * entry and entries:
            values += rate * entry * (bytes_per_value + 4)
    return int(batch * values)


def values_per_token(spec: ModelSpec, layer: int, latent_mla: bool, broadcast_kv: bool = False) -> int:
    """Cached values (keys + values) per token in one layer."""
    if spec.layer_kv and layer < len(spec.layer_kv):  # per-layer shapes (Gemma 4); a K=V layer still stores both
        heads, dim = spec.layer_kv[layer]
        return 2 * heads * dim
    if spec.mla is not None:
        m = spec.mla
        if latent_mla:
            return m.kv_lora_rank + m.qk_rope_head_dim
        return spec.num_heads * (m.qk_head_dim + m.v_head_dim)
    if spec.kv_values_per_layer and not broadcast_kv and layer < len(spec.kv_values_per_layer):
        return spec.kv_values_per_layer[layer]
    return 2 * (spec.num_heads if broadcast_kv else spec.num_kv_heads) * spec.head_dim


def kv_bytes_per_token(spec: ModelSpec, bytes_per_value: float, layers: int | None = None, *,
                       latent_mla: bool = False) -> int:
    """Cached bytes per token over ``layers`` layers (all of them by default), no sliding-window cap: what a
    paged engine (vLLM) reserves a token's block slot for."""
    n = spec.num_layers if layers is None else layers
    if (spec.kv_values_per_layer or spec.layer_kv) and spec.mla is None:
        # layers of different widths (MiMo-V2-Flash) or shapes (Gemma 4, its shared layers storing nothing)
        return int(sum(values_per_token(spec, i, latent_mla) for i in range(min(n, spec.num_layers)))
                   * bytes_per_value)
    return int(n * values_per_token(spec, 0, latent_mla) * bytes_per_value)


def _decoder_layers(spec: ModelSpec) -> int:
    return spec.num_decoder_layers if spec.kind == "encoder-decoder" else spec.num_layers


def _sliding_layers(spec: ModelSpec, n_layers: int, layout: CacheLayout) -> int:
    if not layout.cap_sliding or layout.all_full or not spec.sliding_window:
        return 0
    return spec.layer_types[:n_layers].count(SLIDING) if spec.layer_types else n_layers


def layer_kv_bytes(spec: ModelSpec, tokens: int, batch: int, bytes_per_value: float, layout: CacheLayout,
                   encoder_tokens: int = 0) -> list[int]:
    """The cache bytes of each decoder layer (self-attention plus, for encoder-decoders, cross-attention)."""
    if spec.kind == "encoder":
        return []
    if layout.previous_step:
        now = replace(layout, previous_step=False)
        return [a + b for a, b in zip(layer_kv_bytes(spec, tokens, batch, bytes_per_value, now, encoder_tokens),
                                      layer_kv_bytes(spec, max(tokens - 1, 0), batch, bytes_per_value, now,
                                                     encoder_tokens))]
    n = _decoder_layers(spec)
    if layout.quant is not None:
        return [quantized_layer_bytes(spec, tokens, batch, bytes_per_value, layout.quant, layout.phase,
                                      layout.broadcast_kv)] * n
    per_value = [values_per_token(spec, i, layout.latent_mla, layout.broadcast_kv) for i in range(n)] \
        if spec.kv_values_per_layer or spec.layer_kv else [values_per_token(spec, 0, layout.latent_mla, layout.broadcast_kv)] * n
    cap = layout.cap_sliding and not layout.all_full and spec.sliding_window
    if spec.compressed is not None:
        return [compressed_layer_bytes(spec, i, tokens, batch, bytes_per_value, layout) if spec.compressed.has(i)
                else int(batch * (min(tokens, spec.sliding_window) if cap and spec.layer_type(i) == SLIDING
                                  else tokens) * per_value[i] * bytes_per_value) for i in range(n)]
    if spec.state is not None:
        st = spec.state
        return [(int(batch * (min(tokens, spec.sliding_window) if cap and st.slides(i) else tokens) * per_value[i]
                     * bytes_per_value) if st.has_kv(i) else 0)
                + state_layer_bytes(spec, i, batch, layout, bytes_per_value) for i in range(n)]
    out = []
    cross = frozenset(spec.cross_layers)
    for i in range(n):
        kept = min(tokens, spec.sliding_window) if cap and spec.layer_type(i) == SLIDING else tokens
        if i in cross:  # Llama-3.2-Vision: the image states (encoder_tokens), never the text
            kept = encoder_tokens
        values = kept * per_value[i]
        if spec.kind == "encoder-decoder":
            values += encoder_tokens * 2 * spec.num_kv_heads * spec.head_dim
        out.append(int(batch * values * bytes_per_value) + layout.scale_bytes_per_layer)
    return out


def kv_cache_bytes(spec: ModelSpec, tokens: int, batch: int, bytes_per_value: float, *,
                   latent_mla: bool = False, cap_sliding: bool = True, encoder_tokens: int = 0,
                   layout: Optional[CacheLayout] = None) -> int:
    """Exact KV cache bytes for ``batch`` sequences of ``tokens`` tokens: the sum of :func:`layer_kv_bytes`
    (computed by layer counts, so 1,000 layers cost what 1 does). ``layout`` wins over ``latent_mla`` and
    ``cap_sliding``."""
    if spec.kind == "encoder":
        return 0
    if layout is None:
        layout = CacheLayout(latent_mla=latent_mla, cap_sliding=cap_sliding)
    if layout.previous_step:
        now = replace(layout, previous_step=False)
        return (kv_cache_bytes(spec, tokens, batch, bytes_per_value, encoder_tokens=encoder_tokens, layout=now)
                + kv_cache_bytes(spec, max(tokens - 1, 0), batch, bytes_per_value, encoder_tokens=encoder_tokens,
                                 layout=now))
    if spec.state is not None or layout.quant is not None or spec.kv_values_per_layer or spec.layer_kv \
            or spec.compressed:
        # per layer (states; quantized layers; layers of different widths or shapes)
        return sum(layer_kv_bytes(spec, tokens, batch, bytes_per_value, layout, encoder_tokens))
    n_layers = _decoder_layers(spec)
    sliding = _sliding_layers(spec, n_layers, layout)
    cross = sum(1 for i in spec.cross_layers if i < n_layers)
    # Llama-3.2-Vision's cross-attention layers cache the image states (encoder_tokens), not the text
    kept = (n_layers - sliding - cross) * tokens + sliding * min(tokens, spec.sliding_window or 0) \
        + cross * encoder_tokens
    values = kept * values_per_token(spec, 0, layout.latent_mla, layout.broadcast_kv)
    if spec.kind == "encoder-decoder":
        values += n_layers * encoder_tokens * 2 * spec.num_kv_heads * spec.head_dim
    return int(batch * values * bytes_per_value) + n_layers * layout.scale_bytes_per_layer
