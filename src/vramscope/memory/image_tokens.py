"""Tokens an image (or a video) takes in a vision-language model's context, by each processor's own rules.

Two questions, both pure arithmetic on the config (no torch, no image):

* :func:`image_tokens`: the placeholder tokens one image of ``width × height`` pixels becomes, as the
  transformers 5.24 processor computes them: Qwen2-VL / Qwen2.5-VL / Qwen3-VL ``smart_resize`` to multiples of
  ``patch × merge`` inside ``[min_pixels, max_pixels]``, then ``(h / patch) · (w / patch) / merge²``
  (``image_processing_pil_qwen2_vl.py``); LLaVA ``(image_size / patch)²`` (+1 with the ``full`` feature
  strategy); LLaVA-NeXT the base tile plus the unpadded any-resolution grid and one newline per row
  (``processing_llava_next.py _get_number_of_features``, ``select_best_resolution``); Gemma 3
  ``mm_tokens_per_image`` (256; pan-and-scan off, its default); InternVL ``image_seq_length`` per tile, the tiles
  of ``GotOcr2ImageProcessor.crop_to_patches`` (``get_optimal_tiled_canvas``, a thumbnail when more than one);
  Llama-3.2-Vision one ``<|image|>`` token in the context, its image states (``max_num_tiles × (patches + 1)``)
  attended by the cross-attention layers.
* :func:`max_tokens_per_item`: the largest item of each modality as vLLM 0.33.0 sizes its encoder budget
  (``ProcessingInfo.get_mm_max_tokens_per_item``): Qwen's ``get_image_size_with_most_features`` (the most
  patches ``max_pixels`` allows, as a factor pair of aspect at most 200) and its video of as many frames as fit in
  ``max_model_len`` (at most 14; Qwen3-VL two frames at the video processor's own pixel bound); LLaVA the native
  size; LLaVA-NeXT the grid pinpoint with the most features; Gemma 3 ``(crops + 1) × 256`` (``get_num_crops``:
  0 with pan-and-scan off, its default; 4 with ``do_pan_and_scan``); InternVL (``InternS1ProcessingInfo``) 13
  tiles × 256 (12 and the thumbnail) and a video of what ``max_model_len`` leaves, one tile a frame.

The processors' pixel bounds are not in ``config.json``; the defaults are the published ``preprocessor_config.json``
values (:data:`QWEN_PIXELS`), overridden by vLLM's ``--mm-processor-kwargs`` (``min_pixels`` / ``max_pixels``).
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

from ..model.spec import ModelSpec, VisionSpec

#: (min_pixels, max_pixels) of the image processor, and of the video processor (Qwen3-VL has its own), as the
#: published preprocessor_config.json / video_preprocessor_config.json of Qwen/Qwen2-VL-*, Qwen/Qwen2.5-VL-* and
#: Qwen/Qwen3-VL-* set them (Qwen2-VL and 2.5-VL videos are sized with the image processor's bounds in vLLM)
QWEN_PIXELS = {
    "qwen2_vl": ((3136, 12845056), (3136, 12845056)),
    "qwen2_5_vl": ((3136, 12845056), (3136, 12845056)),
    "qwen3_vl": ((65536, 16777216), (4096, 25165824)),
}
#: vLLM qwen2_vl.py _MAX_FRAMES_PER_VIDEO
MAX_FRAMES = 14
#: GotOcr2ImageProcessor's (InternVL's) tiling defaults: min_patches 1, max_patches 12, a thumbnail
INTERNVL_TILES = (1, 12)


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """transformers ``qwen2_vl.image_processing_qwen2_vl.smart_resize`` (5.24): both sides multiples of ``factor``,
    the area inside ``[min_pixels, max_pixels]``, the aspect kept as closely as possible."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError("absolute aspect ratio must be smaller than 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def video_smart_resize(frames: int, height: int, width: int, temporal: int, factor: int, min_pixels: int,
                       max_pixels: int) -> tuple[int, int]:
    """transformers ``qwen3_vl.video_processing_qwen3_vl.smart_resize``: the bound counts frames × area."""
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(frames / temporal) * temporal
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _pixels(vs: VisionSpec, kwargs: Optional[Mapping[str, object]], video: bool = False) -> tuple[int, int]:
    """(min_pixels, max_pixels) as vLLM 0.33.0 ``Qwen2VLProcessingInfo._get_vision_size`` resolves them: the
    processor's own size (the folder's processor config, :mod:`vramscope.sources.processor_config`, else the
    published one), a requested ``size`` over it, ``min_pixels`` / ``max_pixels`` over that."""
    lo, hi = QWEN_PIXELS[vs.kind][1 if video else 0]
    own = dict(vs.processor)
    prefix = "video_" if video and vs.kind == "qwen3_vl" else ""
    lo, hi = own.get(prefix + "shortest_edge", lo), own.get(prefix + "longest_edge", hi)
    kw = dict(kwargs or {})
    size = kw.get("size") if isinstance(kw.get("size"), dict) else {}
    lo = int(kw.get("min_pixels") or size.get("shortest_edge") or lo)
    hi = int(kw.get("max_pixels") or size.get("longest_edge") or hi)
    return lo, hi


def _qwen_tokens(vs: VisionSpec, height: int, width: int, frames: int, lo: int, hi: int, video3: bool = False) -> int:
    """vLLM ``Qwen2VLProcessingInfo._get_vision_info`` (and Qwen3-VL's, whose videos use the video resize)."""
    factor = vs.patch_size * vs.merge_size
    if video3:
        h, w = video_smart_resize(frames, height, width, vs.temporal_patch_size, factor, lo, hi)
    else:
        h, w = smart_resize(height, width, factor, lo, hi)
    padded = frames + (-frames % vs.temporal_patch_size)
    grid_t = max(padded // vs.temporal_patch_size, 1)
    return grid_t * (h // vs.patch_size) * (w // vs.patch_size) // vs.merge_size ** 2


def _most_features(vs: VisionSpec, max_pixels: int) -> tuple[int, int]:
    """vLLM ``get_image_size_with_most_features``: (width, height) of the most merged patches ``max_pixels`` holds,
    the closest factor pair of that count with an aspect of at most 200 (fewer patches when none has)."""
    unit = vs.patch_size * vs.merge_size
    top = max_pixels // (unit * unit)
    hf, wf = 1, top
    for n in range(top, 0, -1):
        d = math.isqrt(n)
        while d > 0 and n % d:
            d -= 1
        hf, wf = d, n // d
        if wf / hf <= 200:
            break
    return unit * wf, unit * hf


def _qwen_max(vs: VisionSpec, seq_len: int, kwargs: Optional[Mapping[str, object]]) -> dict[str, int]:
    lo, hi = _pixels(vs, kwargs)
    w, h = _most_features(vs, hi)
    image = _qwen_tokens(vs, h, w, 1, lo, hi)
    if vs.kind == "qwen3_vl":  # Qwen3VLProcessingInfo.get_max_video_tokens: two frames at the video bound
        vlo, vhi = _pixels(vs, kwargs, video=True)
        vw, vh = _most_features(vs, vhi // vs.temporal_patch_size)
        return {"image": image, "video": _qwen_tokens(vs, vh, vw, 2, vlo, vhi, video3=True)}
    # _get_max_video_frames(seq_len): frames added while the video's tokens stay within seq_len, from 1
    frames = 1
    while _qwen_tokens(vs, h, w, frames + 1, lo, hi) <= seq_len:
        frames += 1
        if frames > 100000:
            break
    frames = max(min(frames, MAX_FRAMES), 1)
    return {"image": image, "video": _qwen_tokens(vs, h, w, frames, lo, hi)}


def select_best_resolution(height: int, width: int, pinpoints: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """transformers ``image_processing_utils.select_best_resolution``: the (height, width) pinpoint keeping the most
    of the image, the least wasted area on ties."""
    best, most, waste = pinpoints[0], 0, float("inf")
    for ph, pw in pinpoints:
        scale = min(pw / width, ph / height)
        eff = min(int(width * scale) * int(height * scale), width * height)
        wasted = ph * pw - eff
        if eff > most or (eff == most and wasted < waste):
            best, most, waste = (ph, pw), eff, wasted
    return best


def _llava_next(vs: VisionSpec, height: int, width: int) -> int:
    """LLaVA-NeXT: ``LlavaNextProcessor._get_number_of_features`` (vLLM's ``get_num_image_tokens`` alike)."""
    tile = vs.image_size
    bh, bw = select_best_resolution(height, width, vs.grid_pinpoints)
    side = tile // vs.patch_size
    cur_h, cur_w = side * (bh // tile), side * (bw // tile)
    if width / height > cur_w / cur_h:
        new_h = int(round(height * (cur_w / width), 7))
        cur_h -= (cur_h - new_h) // 2 * 2
    else:
        new_w = int(round(width * (cur_h / height), 7))
        cur_w -= (cur_w - new_w) // 2 * 2
    base = side * side + (1 if vs.select_strategy == "full" else 0)
    return cur_h * cur_w + cur_h + base


def internvl_tiles(height: int, width: int, tile: int, lo: int = INTERNVL_TILES[0],
                   hi: int = INTERNVL_TILES[1]) -> int:
    """``GotOcr2ImageProcessor.crop_to_patches`` tile count: ``get_optimal_tiled_canvas`` (the grid of closest
    aspect, more tiles on ties while the image area exceeds half of theirs), plus a thumbnail when more than one."""
    grids = sorted(((gw, gh) for gw in range(1, hi + 1) for gh in range(1, hi + 1) if lo <= gw * gh <= hi),
                   key=lambda g: g[0] * g[1])
    aspect, area = width / height, width * height
    best, diff = (1, 1), float("inf")
    for g in grids:
        d = abs(aspect - g[0] / g[1])
        if d < diff:
            best, diff = g, d
        elif d == diff and area > 0.5 * tile * tile * g[0] * g[1]:
            best = g
    n = best[0] * best[1]
    return n + 1 if n > 1 else n


def image_tokens(spec: ModelSpec, width: int, height: int,
                 processor_kwargs: Optional[Mapping[str, object]] = None) -> int:
    """Context tokens of one ``width × height`` image (module docstring); 1 for Llama-3.2-Vision (its image enters
    through cross-attention, :func:`cross_attention_states`)."""
    vs = spec.vision
    if vs is None:
        return 0
    if vs.kind in QWEN_PIXELS:
        lo, hi = _pixels(vs, processor_kwargs)
        return _qwen_tokens(vs, height, width, 1, lo, hi)
    if vs.kind == "clip" and vs.newline:
        return _llava_next(vs, height, width)
    if vs.kind == "clip":
        return (vs.image_size // vs.patch_size) ** 2 + (1 if vs.select_strategy == "full" else 0)
    if vs.kind == "siglip":
        return vs.image_tokens or 256
    if vs.kind == "internvl":  # InternVLProcessor's images_kwargs tile whatever the image processor says
        own = dict(vs.processor)
        return vs.image_tokens * internvl_tiles(height, width, vs.image_size,
                                                int(own.get("min_patches", INTERNVL_TILES[0])),
                                                int(own.get("max_patches", INTERNVL_TILES[1])))
    if vs.kind == "llama4":
        return 0
    if vs.kind == "mllama":
        return 1
    return 0


def cross_attention_states(spec: ModelSpec) -> int:
    """Llama-3.2-Vision: image states one image gives the cross-attention layers (``MllamaVisionModel`` output:
    ``max_num_tiles × ((image_size / patch)² + 1)``, the padding tiles included)."""
    vs = spec.vision
    if vs is None or vs.kind != "mllama":
        return 0
    return vs.max_tiles * ((vs.image_size // vs.patch_size) ** 2 + 1)


def max_tokens_per_item(spec: ModelSpec, seq_len: int, processor_kwargs: Optional[Mapping[str, object]] = None,
                        counts: Optional[Mapping[str, int]] = None) -> dict[str, int]:
    """vLLM 0.33.0's largest item per modality (``get_mm_max_tokens_per_item`` / the dummy inputs' embeds), empty
    for a model vLLM does not run as multimodal here; ``counts``: the active modalities (1 each, those whose limit
    is not 0; InternVL's dummy video takes what its image leaves)."""
    vs = spec.vision
    if vs is None:
        return {}
    if vs.kind in QWEN_PIXELS:
        return _qwen_max(vs, seq_len, processor_kwargs)
    if vs.kind == "clip" and vs.newline:  # get_image_size_with_most_features: the pinpoint with most features
        return {"image": max(_llava_next(vs, h, w) for h, w in vs.grid_pinpoints)}
    if vs.kind == "clip":  # CLIP's num_image_tokens (patches + CLS) through get_num_selected_vision_tokens
        return {"image": (vs.image_size // vs.patch_size) ** 2 + (1 if vs.select_strategy == "full" else 0)}
    if vs.kind == "siglip" and spec.model_type == "gemma3":
        return {"image": (gemma3_max_crops(vs, processor_kwargs) + 1) * (vs.image_tokens or 256)}
    if vs.kind == "internvl":
        return _internvl_max(vs, seq_len, processor_kwargs, counts)
    return {}


#: Gemma3ProcessorKwargs._defaults (transformers 5.24 processing_gemma3.py): pan-and-scan off, and its bounds
GEMMA3_PAN_AND_SCAN = {"do_pan_and_scan": False, "pan_and_scan_min_crop_size": 256, "pan_and_scan_max_num_crops": 4,
                       "pan_and_scan_min_ratio_to_activate": 1.2}


def gemma3_crops(width: int, height: int, kwargs: Optional[Mapping[str, object]] = None) -> int:
    """vLLM 0.33.0 ``Gemma3ProcessingInfo.get_num_crops`` (after ``Gemma3ImageProcessor.pan_and_scan``): the crops
    pan-and-scan adds to an image (0 when off, the image too square, or a crop under the minimum size)."""
    kw = {**GEMMA3_PAN_AND_SCAN, **{k: v for k, v in (kwargs or {}).items() if k in GEMMA3_PAN_AND_SCAN}}
    if not kw["do_pan_and_scan"]:
        return 0
    low, most, ratio = kw["pan_and_scan_min_crop_size"], kw["pan_and_scan_max_num_crops"], \
        kw["pan_and_scan_min_ratio_to_activate"]
    if width >= height:
        if width / height < ratio:
            return 0
        cw, ch = min(most, max(2, min(int(math.floor(width / low)), int(math.floor(width / height + 0.5))))), 1
    else:
        if height / width < ratio:
            return 0
        cw, ch = 1, min(most, max(2, min(int(math.floor(height / low)), int(math.floor(height / width + 0.5)))))
    if min(int(math.ceil(width / cw)), int(math.ceil(height / ch))) < low:
        return 0
    return cw * ch


def gemma3_max_crops(vs: VisionSpec, kwargs: Optional[Mapping[str, object]] = None) -> int:
    """The crops of vLLM's ``get_image_size_with_most_features``: the native width, ``max_num_crops`` heights."""
    most = (kwargs or {}).get("pan_and_scan_max_num_crops", GEMMA3_PAN_AND_SCAN["pan_and_scan_max_num_crops"])
    return gemma3_crops(vs.image_size, vs.image_size * int(most), kwargs)  # type: ignore[call-overload]


def internvl_settings(vs: VisionSpec, kwargs: Optional[Mapping[str, object]] = None) -> dict[str, object]:
    """What vLLM 0.33.0's ``InternS1ProcessingInfo`` tiles with: the image processor's own attributes (the
    folder's processor config; without one tiling on, 1 to 12 tiles) under the merged ``--mm-processor-kwargs``."""
    return {**dict(vs.processor), **(kwargs or {})}


def internvl_patches(vs: VisionSpec, height: int, width: int, kwargs: Optional[Mapping[str, object]] = None) -> int:
    """transformers 5.24 ``GotOcr2ImageProcessor.get_number_of_image_patches`` with vLLM's merged
    ``--mm-processor-kwargs`` over the image processor's attributes (:func:`internvl_settings`; ``min_patches``,
    ``max_patches``, ``crop_to_patches``; tiling on when nothing says otherwise)."""
    kw = internvl_settings(vs, kwargs)
    lo, hi = int(kw.get("min_patches", INTERNVL_TILES[0])), int(kw.get("max_patches", INTERNVL_TILES[1]))
    if not kw.get("crop_to_patches", True) or hi <= 1:
        return 1
    return internvl_tiles(height, width, vs.image_size, lo, hi)


def _internvl_max(vs: VisionSpec, seq_len: int, kwargs: Optional[Mapping[str, object]],
                  counts: Optional[Mapping[str, int]]) -> dict[str, int]:
    """vLLM 0.33.0 ``InternS1ProcessingInfo`` (the HF-format ``InternVLForConditionalGeneration``):
    ``get_max_image_tokens`` is the most tokens over the grids of ``resolve_target_ratios`` (the image processor's
    own ``max_patches``, one more for the thumbnail), and the dummy video (``get_mm_max_toks_per_item`` processes
    it) has ``get_num_frames_with_most_features`` frames of one tile each: what ``max_model_len`` leaves beside one
    image of the most tokens, at least one."""
    counts = counts if counts is not None else {"image": 1, "video": 1}
    per_tile = vs.image_tokens
    kw = internvl_settings(vs, kwargs)
    top = int(kw.get("max_patches", INTERNVL_TILES[1])) + (1 if kw.get("crop_to_patches", True) else 0)
    grids = {(wr, hr) for n in range(1, top + 1) for wr in range(1, n + 1) for hr in range(1, n + 1)
             if 1 <= wr * hr <= top}
    image = max(per_tile * internvl_patches(vs, vs.image_size * hr, vs.image_size * wr, kwargs) for wr, hr in grids)
    out = {}
    if counts.get("image", 0) > 0:
        out["image"] = image
    if counts.get("video", 0) > 0:
        frames = (seq_len - image * (1 if counts.get("image", 0) > 0 else 0)) // per_tile
        out["video"] = max(frames, 1) * per_tile
    return out


def encoder_patches(spec: ModelSpec, tokens: int, modality: str = "image") -> int:
    """Positions the vision tower runs for an item of ``tokens`` context tokens (its sequence before merging)."""
    vs = spec.vision
    if vs is None:
        return 0
    if vs.kind in QWEN_PIXELS:
        return tokens * vs.merge_size ** 2
    if vs.kind == "clip":
        side = vs.image_size // vs.patch_size
        tiles = 1 if not vs.newline else max(1, -(-tokens // (side * side)))
        return tiles * (side * side + 1)
    if vs.kind == "siglip":  # Gemma 3: the image and its pan-and-scan crops, 896² each
        return max(1, tokens // (vs.image_tokens or 256)) * (vs.image_size // vs.patch_size) ** 2
    if vs.kind == "internvl":  # InternViT over each tile (and the thumbnail), its CLS position included
        return max(1, tokens // max(vs.image_tokens, 1)) * ((vs.image_size // vs.patch_size) ** 2 + 1)
    return tokens


#: the vision towers whose forward is modelled per layer (:func:`tower_layer_bytes`)
TOWER_KINDS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "clip", "siglip", "internvl")


def tower_layer_bytes(vs: VisionSpec, a: float, tp: int = 1, impl: str = "vllm") -> float:
    """Bytes per patch (position before merging) one tower layer's forward holds at its peak, on one of ``tp``
    ranks sharding heads and MLP (``impl="vllm"`` only). ``h``: width, ``i``: MLP width, ``nh``: heads.

    ``impl="transformers"``: transformers 5.24's modules with SDPA (``vramscope.trace.vision`` traces them; the
    peaks below are the live tensors at the traced peak, equal to the trace within 0.2 %):

    * Qwen2-VL / Qwen2.5-VL, in attention: the layer input and its normed copy (2 ``h``), the fused qkv (3 ``h``),
      ``apply_rotary_pos_emb_vision``'s fp32 work (q and k upcast, ``q·cos``, ``rotate_half``, its product with
      ``sin`` and the sum: 6 ``h`` in fp32) and the fp32 cos / sin of the positions (2 head widths): ``5h·a + 24h
      + 8h/nh``; Qwen3-VL also keeps the interpolated position embeddings' fp32 sum (``fast_pos_embed_interpolate``,
      4 ``h``);
    * CLIP (LLaVA), in the MLP: 4 widths (the embeddings' pre-norm output, the layer input, the residual, the
      normed copy) and ``fc1``, ``sigmoid`` and the product of ``quick_gelu`` (3 ``i``);
    * SigLIP (Gemma 3): 4 widths and ``fc1`` and its tanh GELU (2 ``i``); InternViT: 5 widths (its layer scale
      ``lambda_1`` adds one) and 2 ``i``.

    ``impl="vllm"``: vLLM 0.33.0's own tower modules (``qwen2_vl.py``, ``qwen2_5_vl.py``, ``qwen3_vl.py``,
    ``clip.py``, ``siglip.py``, ``intern_vit.py``), eager (``compile_mm_encoder`` off by default), the larger of

    * attention: the layer input (held by the encoder loop's call) and its normed copy, then on the rank's heads
      the fused ``QKVParallelLinear`` output (3 ``h``), for the Qwen towers ``qk.contiguous()`` and
      ``ApplyRotaryEmb``'s bf16 output (vllm_flash_attn ``apply_rotary_emb``, not in place, fp32 compute off: 2
      ``h`` each) and the ``rearrange(...).contiguous()`` before ``proj`` (1 ``h``); FlashAttention-varlen's output
      (1 ``h``) and its fp32 log-sum-exp (``4·nh`` bytes); CLIP / SigLIP / InternViT the ``out_proj`` output (1
      ``h``, full width after its all-reduce) instead of the rearranged copy;
    * the MLP: three widths (the layer input, the residual, the normed copy; Qwen2.5-VL's ``fused_add_rms_norm``
      writes both in place, and ``down_proj``'s output is the third) and on the rank's share, ``fc1`` and its
      activation (2 ``i``; the activation is one kernel, ``QuickGELU`` / ``GELU`` / ``SiluAndMul``), Qwen2.5-VL's
      merged ``gate_up`` (2 ``i``) and ``SiluAndMul`` (1 ``i``) held together while ``down_proj`` runs.

    Read from the source, not traced (vLLM's modules need its distributed state and CUDA kernels).
    """
    h, inter, nh = vs.hidden_size, vs.intermediate_size, max(vs.num_heads, 1)
    kind = vs.kind
    if impl == "transformers":
        if kind in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
            return 5 * h * a + 24 * h + 8 * h / nh + (4 * h if kind == "qwen3_vl" else 0)
        if kind == "clip":
            return 4 * h * a + 3 * inter * a
        if kind == "siglip":
            return 4 * h * a + 2 * inter * a
        if kind == "internvl":
            return 5 * h * a + 2 * inter * a
        return 2 * h * a + max(2 * inter, 4 * h) * a
    hs, isr, nhs = h / tp, inter / tp, nh / tp
    lse = 4 * nhs
    if kind in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        attn = 2 * h * a + 9 * hs * a + lse
    else:
        attn = 2 * h * a + 4 * hs * a + h * a + lse
    mlp = 3 * h * a + (3 if kind == "qwen2_5_vl" else 2) * isr * a
    return max(attn, mlp)


def tower_transient(spec: ModelSpec, patches: int, a: float, tp: int = 1, impl: str = "vllm") -> int:
    """The tower's forward peak over ``patches`` positions (:func:`tower_layer_bytes`: every layer frees its
    work before the next, so the deepest layer's peak is the tower's, outputs not included)."""
    vs = spec.vision
    if vs is None or patches <= 0:
        return 0
    return int(patches * tower_layer_bytes(vs, a, tp, impl))


def read_image_size(value: object, field: str = "image_size") -> Optional[tuple[int, int]]:
    """``--image-size WxH`` (pixels, 1 to 65536 each)."""
    if value is None:
        return None
    from ..errors import VramscopeError
    from ..units import shown

    text = value.strip().lower() if isinstance(value, str) and len(value) <= 40 else ""
    parts = text.replace("×", "x").split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        w, h = (int(p) for p in parts)
        if 1 <= w <= 65536 and 1 <= h <= 65536 and max(w, h) / min(w, h) <= 200:
            return w, h
    raise VramscopeError("bad_choice", field=field, value=shown(value),
                         allowed="WIDTHxHEIGHT in pixels, e.g. 1280x720 (aspect at most 200)")


def largest_image(spec: ModelSpec) -> tuple[int, int]:
    """(width, height) of the image with the most tokens the processor allows (vLLM's
    ``get_image_size_with_most_features``): Qwen's pixel bound, LLaVA-NeXT's largest pinpoint, else the native
    size."""
    vs = spec.vision
    if vs is None:
        return (0, 0)
    if vs.kind in QWEN_PIXELS:
        return _most_features(vs, QWEN_PIXELS[vs.kind][0][1])
    if vs.kind == "clip" and vs.newline:
        h, w = max(vs.grid_pinpoints, key=lambda p: _llava_next(vs, p[0], p[1]))
        return w, h
    if vs.kind == "internvl":
        return vs.image_size * INTERNVL_TILES[1], vs.image_size
    return vs.image_size, vs.image_size
