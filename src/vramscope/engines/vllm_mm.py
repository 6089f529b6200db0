"""vLLM's multimodal encoder budget, encoder cache and the dummy-image profile (read at v0.33.0).

``vllm/multimodal/encoder_budget.py`` (``MultiModalBudget``) and ``vllm/v1/core/encoder_cache_manager.py``
(``compute_mm_encoder_budget``) size the encoder cache from the largest item of each modality the model accepts
(:func:`vramscope.memory.image_tokens.max_tokens_per_item`; modalities whose ``--limit-mm-per-prompt`` is 0 are
left out, 999 items each by default):

    encoder_compute_budget = max(max_num_encoder_input_tokens, max_tokens_per_item)
    encoder_cache_size     = max(encoder_cache_size, max_tokens_per_item)     (both scheduler values:
                                                                             max_num_batched_tokens)

``_get_max_items`` gives the items one batch may hold of the modality with the most tokens:
``max(1, min(budget // tokens, max_num_seqs × max(1, min(limit, max_model_len // tokens))))`` (chunked prefill on,
the V1 default). ``GPUModelRunner.profile_run`` then encodes that many dummy items of the largest size in one call
(``embed_multimodal``), keeps their outputs in ``encoder_cache`` and their inputs referenced while it runs the
language model's dummy batch of ``max_num_batched_tokens`` tokens, so the activation peak vLLM measures (and takes
from the KV cache) is

    peak = pixel inputs + max(tower forward + its outputs, outputs + the language model's peak)

The outputs are ``items × tokens × width`` in the model dtype (the text width; Qwen3-VL's deepstack mergers add
one width each). The tower's forward is its deepest layer's peak over its patches (the sequence before merging)
as vLLM's own tower modules allocate it (:func:`vramscope.memory.image_tokens.tower_layer_bytes`: read from
``qwen2_vl.py`` / ``qwen2_5_vl.py`` / ``qwen3_vl.py`` / ``clip.py`` / ``siglip.py`` / ``intern_vit.py`` at v0.33.0,
attention FlashAttention-varlen's, the backend ``get_vit_attn_backend`` picks on sm80+: no score matrix), with
Qwen3-VL's deepstack features held until the last layer; the same per-layer accounting for transformers' towers
agrees with their trace on fake tensors (``vramscope.trace.vision``) within 0.2 %. The dummy inputs are the processor's float32 pixel values (patches × channels × temporal
patch × patch²).

``--limit-mm-per-prompt`` 0 for every modality of a tower skips building it (``SupportsMultiModal.
_mark_tower_model``): its weights are not loaded and nothing is profiled. ``--skip-mm-profiling`` profiles the
language model alone. ``--mm-encoder-tp-mode data`` (Qwen2-VL, Qwen2.5-VL, Qwen3-VL: ``supports_encoder_tp_data``;
others fall back to ``weights``) keeps the whole tower on every tensor-parallel rank and splits the items; the
default ``weights`` shards the tower like the language model. ``--mm-processor-cache-gb`` (4) is host memory in
each API-server and engine-core process, not GPU memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

from ..errors import VramscopeError
from ..memory.image_tokens import encoder_patches, max_tokens_per_item, tower_transient
from ..model.tensors import tensors

if TYPE_CHECKING:
    from ..sources.base import ResolvedModel
    from ..workload import Workload

#: ``get_supported_mm_limits`` of the modelled processors
MODALITIES = {"qwen2_vl": ("image", "video"), "qwen2_5_vl": ("image", "video"), "qwen3_vl": ("image", "video"),
              "internvl": ("image", "video")}
#: models whose tower runs data-parallel under ``--mm-encoder-tp-mode data``
TP_DATA = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
#: MultiModalConfig.get_limit_per_prompt: an unspecified modality
DEFAULT_LIMIT = 999
MAX_ITEMS = 10**6


def read_limits(value: Any, field: str = "limit_mm_per_prompt") -> Optional[dict[str, int]]:
    """``--limit-mm-per-prompt``: JSON (``{"image": 2, "video": 0}`` or ``{"image": {"count": 2, ...}}``) or
    ``image=2,video=0``; counts from 0 to 10^6."""
    if value is None:
        return None
    from ..units import shown

    if isinstance(value, dict):
        raw: Any = value
    elif isinstance(value, str) and len(value) <= 2000:
        text = value.strip()
        try:
            raw = json.loads(text) if text.startswith("{") else dict(p.split("=", 1) for p in text.split(",") if p)
        except (ValueError, TypeError):
            raw = None
    else:
        raw = None
    out: dict[str, int] = {}
    if isinstance(raw, dict) and raw:
        for k, v in raw.items():
            count = v.get("count") if isinstance(v, dict) else v
            if isinstance(count, str) and count.strip().isdigit():
                count = int(count.strip())
            if not isinstance(k, str) or isinstance(count, bool) or not isinstance(count, int) \
                    or not 0 <= count <= MAX_ITEMS:
                out = {}
                break
            out[k.strip()] = count
    if not out:
        raise VramscopeError("bad_choice", field=field, value=shown(value),
                             allowed='JSON such as {"image": 2, "video": 0}, or image=2,video=0')
    return out


def read_processor_kwargs(value: Any, field: str = "mm_processor_kwargs") -> Optional[dict[str, Any]]:
    """``--mm-processor-kwargs``: a JSON object (the keys read: ``min_pixels``, ``max_pixels``, ``size`` (Qwen);
    ``do_pan_and_scan`` and its ``pan_and_scan_*`` bounds (Gemma 3); ``min_patches``, ``max_patches``,
    ``crop_to_patches`` (InternVL))."""
    if value is None:
        return None
    from ..units import shown

    raw = value
    if isinstance(value, str) and len(value) <= 2000:
        try:
            raw = json.loads(value)
        except ValueError:
            raw = None
    if not isinstance(raw, dict):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed='a JSON object such as '
                             '{"max_pixels": 1003520}')
    for key in ("min_pixels", "max_pixels"):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 2**40):
            raise VramscopeError("bad_choice", field=f"{field}.{key}", value=shown(v),
                                 allowed="a whole number of pixels from 1 to 2^40")
    for key in ("do_pan_and_scan", "crop_to_patches"):
        v = raw.get(key)
        if v is not None and not isinstance(v, bool):
            raise VramscopeError("bad_choice", field=f"{field}.{key}", value=shown(v), allowed="true or false")
    for key in ("pan_and_scan_max_num_crops", "pan_and_scan_min_crop_size", "min_patches", "max_patches"):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096):
            raise VramscopeError("bad_choice", field=f"{field}.{key}", value=shown(v),
                                 allowed="a whole number from 1 to 4096")
    v = raw.get("pan_and_scan_min_ratio_to_activate")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1000):
        raise VramscopeError("bad_choice", field=f"{field}.pan_and_scan_min_ratio_to_activate", value=shown(v),
                             allowed="a number above 0, at most 1000")
    if (raw.get("min_patches") or 1) > (raw.get("max_patches") or 4096):
        raise VramscopeError("bad_choice", field=f"{field}.min_patches", value=shown(raw.get("min_patches")),
                             allowed="at most max_patches")
    size = raw.get("size")
    if size is not None and (not isinstance(size, dict) or any(
            isinstance(size.get(k), bool) or not isinstance(size.get(k, 1), int) or not 1 <= size.get(k, 1) <= 2**40
            for k in ("shortest_edge", "longest_edge"))):
        raise VramscopeError("bad_choice", field=f"{field}.size", value=shown(size),
                             allowed='{"shortest_edge": N, "longest_edge": N}')
    return raw


@dataclass(frozen=True)
class MmProfile:
    """The encoder budget and what the dummy multimodal profile adds to vLLM's activation peak on one GPU."""

    max_tokens_per_item: dict[str, int]
    modality: str
    encoder_compute_budget: int
    encoder_cache_size: int
    items_per_prompt: int
    items_per_batch: int
    output_bytes: int  # the encoder cache the profile fills: items × tokens × output width × dtype
    input_bytes: int  # the dummy pixel values
    tower_peak_bytes: int  # the tower's forward over the batch (its outputs included)
    profiled: bool  # False under --skip-mm-profiling

    @property
    def budget(self) -> int:
        """``MultiModalBudget.get_encoder_budget``."""
        return min(self.encoder_compute_budget, self.encoder_cache_size)

    def peak(self, language_peak: int) -> int:
        if not self.profiled or not self.items_per_batch:
            return language_peak
        return self.input_bytes + max(self.tower_peak_bytes, self.output_bytes + language_peak)


def limits(model: ResolvedModel, w: Workload) -> dict[str, int]:
    """``allowed_mm_limits``: each supported modality's limit (999 unless given)."""
    given = getattr(w, "limit_mm_per_prompt", None) or {}
    mods = MODALITIES.get(model.spec.model_type, ("image",))
    return {m: given.get(m, DEFAULT_LIMIT) for m in mods}


def tower_loaded(model: ResolvedModel, w: Workload) -> bool:
    """Whether vLLM builds the vision tower: not when every modality it serves is limited to 0."""
    return model.spec.vision is None or any(v > 0 for v in limits(model, w).values())


def vision_params(model: ResolvedModel) -> int:
    """Parameters of the vision tower and projector (the tensors vLLM skips when the tower is not built)."""
    return sum(t.numel for t in tensors(model.spec) if t.role in ("vision", "projector"))


def max_items(tokens: int, budget: int, limit: int, max_model_len: int, max_num_seqs: int) -> tuple[int, int]:
    """``MultiModalBudget._get_max_items`` (chunked prefill on): (items per prompt, items per batch)."""
    if tokens == 0 or budget == 0:
        return 0, 0
    per_prompt = max(1, min(limit, max_model_len // tokens))
    return per_prompt, max(1, min(budget // tokens, max_num_seqs * per_prompt))




def profile(model: ResolvedModel, w: Workload, a: float, max_len: int) -> Optional[MmProfile]:
    """The encoder budget and profile for ``model`` under ``w`` (None for a text-only model, a model whose processor
    is not modelled, or a tower not built)."""
    spec = model.spec
    if spec.vision is None or not tower_loaded(model, w):
        return None
    allowed = limits(model, w)
    active = {m: 1 for m, n in allowed.items() if n > 0}
    per_item = {m: t for m, t in max_tokens_per_item(spec, max_len, getattr(w, "mm_processor_kwargs", None),
                                                     active).items() if allowed.get(m, 0) > 0}
    if not per_item:
        return None
    top = max(per_item.values())
    tokens = w.max_num_batched_tokens
    compute, cache = max(tokens, top), max(tokens, top)
    modality, item_tokens = max(per_item.items(), key=lambda kv: (kv[1], kv[0]))
    per_prompt, items = max_items(item_tokens, min(compute, cache), allowed[modality], max_len, w.max_num_seqs)
    vs = spec.vision
    tp = w.num_gpus if w.strategy.is_tensor_parallel else 1
    data = getattr(w, "mm_encoder_tp_mode", None) == "data" and spec.model_type in TP_DATA and tp > 1
    here = -(-items // tp) if data else items  # data mode: each rank encodes its share of the items
    width = vs.text_hidden_size * (1 + vs.deepstack)
    outputs = int(items * item_tokens * width * a)
    patches = here * encoder_patches(spec, item_tokens, modality)
    pixel = vs.num_channels * max(vs.temporal_patch_size, 1) * vs.patch_size ** 2
    inputs = patches * pixel * 4
    # the deepest layer's peak (vLLM's own modules, tower_layer_bytes) beside the deepstack features already merged
    tower = tower_transient(spec, patches, a, 1 if data else tp) + int(here * item_tokens * vs.text_hidden_size
                                                                      * vs.deepstack * a)
    return MmProfile(per_item, modality, compute, cache, per_prompt, items, outputs, inputs, tower,
                     not getattr(w, "skip_mm_profiling", False))


def weights_adjustment(model: ResolvedModel, w: Workload, a: float) -> int:
    """Bytes to take from one GPU's weights as vramscope counts them (the whole tower on every rank): the tower not
    built (every modality limited to 0), or its tensor-parallel share under ``--mm-encoder-tp-mode weights``."""
    if model.spec.vision is None:
        return 0
    held = int(vision_params(model) * a)
    if not tower_loaded(model, w):
        return held
    tp = w.num_gpus if w.strategy.is_tensor_parallel else 1
    data = getattr(w, "mm_encoder_tp_mode", None) == "data" and model.spec.model_type in TP_DATA
    if tp > 1 and not data:
        return held - held // tp
    return 0


def processor_cache_bytes(w: Workload) -> int:
    """``--mm-processor-cache-gb`` × (API servers + data-parallel engines): host memory (MultiModalConfig)."""
    gb = getattr(w, "mm_processor_cache_gb", None)
    gb = 4.0 if gb is None else gb
    dp = getattr(w, "data_parallel_size", None) or 1
    return int(gb * 2**30 * (1 + dp))


def summary(p: MmProfile) -> Mapping[str, Any]:
    return {"mm_max_tokens_per_item": dict(p.max_tokens_per_item), "mm_profile_modality": p.modality,
            "mm_encoder_budget": p.budget, "mm_encoder_cache_size": p.encoder_cache_size,
            "mm_items_per_prompt": p.items_per_prompt, "mm_profile_items": p.items_per_batch,
            "mm_encoder_output_bytes": p.output_bytes, "mm_encoder_input_bytes": p.input_bytes,
            "mm_tower_peak_bytes": p.tower_peak_bytes, "mm_profiled": p.profiled}
