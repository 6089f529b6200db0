"""The image (and video) processor settings a local model folder ships, as transformers 5.24 and vLLM 0.33.0 load
them, for the tokens an image becomes (:mod:`vramscope.memory.image_tokens`).

Which file: transformers 5.24 ``ImageProcessingMixin.get_image_processor_dict`` takes ``processor_config.json``'s
nested ``image_processor`` object when there is one, else ``preprocessor_config.json``; the video processor
likewise ``processor_config.json``'s ``video_processor`` or ``video_preprocessor_config.json``. The processor is
built from that dict, so a key the file leaves out keeps the class default, and a ``size`` in the file replaces
the class's whole ``size`` (``Qwen2VLImageProcessor.__init__``: ``size = dict(self.size) if size is None else
size``, then ``min_pixels`` / ``max_pixels`` set its edges).

What is read, per vision kind (only keys that change the tokens vLLM budgets or the processor emits):

* Qwen2-VL / Qwen2.5-VL / Qwen3-VL: the image processor's ``size`` (``shortest_edge``, ``longest_edge``) after
  ``min_pixels`` / ``max_pixels``; the class default is ``Qwen2VLImageProcessor.size`` = {3,136, 1,003,520}
  (transformers 5.24 ``image_processing_qwen2_vl.py``), not the published checkpoints' 12,845,056. vLLM 0.33.0
  ``Qwen2VLProcessingInfo._get_vision_size(mm_kwargs, default_size=image_processor.size)`` starts from it.
  Qwen3-VL's video bounds come from its video processor (class default ``Qwen3VLVideoProcessor.size`` =
  {131,072, 786,432}).
* InternVL (``GotOcr2ImageProcessor``): ``min_patches``, ``max_patches``, ``crop_to_patches`` (class defaults 1,
  12 and **False**). vLLM 0.33.0 ``InternS1ProcessingInfo`` budgets with the image processor's own attributes
  (``resolve_target_ratios``: ``image_processor.crop_to_patches`` as the thumbnail switch,
  ``get_number_of_image_patches``: ``images_kwargs.get("crop_to_patches", self.crop_to_patches)``), so a folder
  whose processor config says ``crop_to_patches: false`` (or leaves it out) is budgeted one tile per image.
  transformers' own ``InternVLProcessor`` call sets ``images_kwargs = {"crop_to_patches": True}`` as a processor
  attribute (``processing_utils._merge_kwargs`` level 7, above the image processor's), so under the transformers
  engine the image is tiled whatever the file says; only the patch bounds come from the file there.
* Gemma 3: nothing. ``Gemma3ProcessorKwargs``' images defaults (``do_pan_and_scan: False`` and its bounds) are
  merged before the image processor's attributes are consulted, in transformers 5.24 and in vLLM 0.33.0
  ``Gemma3ProcessingInfo.get_num_crops`` alike, so the file's pan-and-scan keys never decide.
* LLaVA / LLaVA-NeXT / Llama-3.2-Vision: the tokens follow config.json (image size, grid pinpoints, tiles).

Read bounded like config.json (regular files, at most 1 MB each); a file that is there but malformed is refused
naming it, since the tokens would silently be the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

from ..errors import Opt, Phrase, VramscopeError
from ..model.spec import ModelSpec
from ..units import shown
from .base import load_json, shown_path

#: a processor config is a few hundred bytes to a few KB; 1 MB bounds the read
MAX_PROCESSOR_BYTES = 1000 * 1000
PROCESSOR = "processor_config.json"
IMAGE_PROCESSOR = "preprocessor_config.json"
VIDEO_PROCESSOR = "video_preprocessor_config.json"

#: transformers 5.24 class defaults: ``Qwen2VLImageProcessor.size`` (Qwen2-VL, 2.5-VL and 3-VL share the class)
#: and ``Qwen3VLVideoProcessor.size``
QWEN_IMAGE_SIZE = (3136, 1003520)
QWEN3_VIDEO_SIZE = (131072, 786432)
#: ``GotOcr2ImageProcessor``'s class attributes (crop_to_patches, min_patches, max_patches)
GOT_OCR2_DEFAULTS = {"crop_to_patches": False, "min_patches": 1, "max_patches": 12}
QWEN_KINDS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def _load(path: Path) -> Optional[dict[str, Any]]:
    if not os.path.lexists(path):
        return None
    raw = load_json(path, MAX_PROCESSOR_BYTES, max_containers=10_000, max_items=100_000)
    if not isinstance(raw, dict):
        raise VramscopeError("config_not_object", origin=shown_path(path))
    return raw


def _processor_dict(folder: Path, nested: str, flat: str) -> tuple[Optional[dict[str, Any]], str]:
    """The dict transformers builds the processor from, and the file it came from ('' when none)."""
    whole = _load(folder / PROCESSOR)
    if whole is not None and nested in whole:
        sub = whole[nested]
        if not isinstance(sub, dict):
            raise VramscopeError("config_bad_value", origin=shown_path(folder / PROCESSOR), key=nested,
                                 value=shown(sub), allowed="an object")
        return sub, PROCESSOR
    own = _load(folder / flat)
    return (own, flat) if own is not None else (None, "")


def _whole(d: dict[str, Any], key: str, origin: Path, low: int, high: int) -> Optional[int]:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise VramscopeError("config_bad_value", origin=shown_path(origin), key=key, value=shown(v),
                             allowed=f"a whole number from {low:,} to {high:,}")
    return v


def _qwen_size(d: dict[str, Any], origin: Path, default: tuple[int, int]) -> tuple[int, int]:
    """``Qwen2VLImageProcessor.__init__``'s size: the file's ``size`` (or the class's), edges from
    ``min_pixels`` / ``max_pixels``."""
    size = d.get("size")
    if size is not None and not isinstance(size, dict):
        raise VramscopeError("config_bad_value", origin=shown_path(origin), key="size", value=shown(size),
                             allowed='{"shortest_edge": N, "longest_edge": N}')
    base = {"shortest_edge": default[0], "longest_edge": default[1]} if size is None else size
    lo = _whole(d, "min_pixels", origin, 1, 2**40) or _whole(base, "shortest_edge", origin, 1, 2**40)
    hi = _whole(d, "max_pixels", origin, 1, 2**40) or _whole(base, "longest_edge", origin, 1, 2**40)
    return lo or default[0], hi or default[1]


def with_processor(spec: ModelSpec, folder: Path) -> tuple[ModelSpec, tuple[Any, ...]]:
    """``spec`` with ``vision.processor`` set from the folder's processor config (module docstring), and the note
    saying what was read; unchanged when the model has no vision tower or the folder no such file."""
    vs = spec.vision
    if vs is None or vs.kind not in QWEN_KINDS + ("internvl",):
        return spec, ()
    image, name = _processor_dict(folder, "image_processor", IMAGE_PROCESSOR)
    settings: dict[str, Any] = {}
    files = []
    if image is not None:
        files.append(name)
        origin = folder / name
        if vs.kind in QWEN_KINDS:
            settings["shortest_edge"], settings["longest_edge"] = _qwen_size(image, origin, QWEN_IMAGE_SIZE)
        else:
            crop = image.get("crop_to_patches", GOT_OCR2_DEFAULTS["crop_to_patches"])
            if not isinstance(crop, bool):
                raise VramscopeError("config_bad_value", origin=shown_path(origin), key="crop_to_patches",
                                     value=shown(crop), allowed="true or false")
            lo = _whole(image, "min_patches", origin, 1, 4096) or GOT_OCR2_DEFAULTS["min_patches"]
            hi = _whole(image, "max_patches", origin, 1, 4096) or GOT_OCR2_DEFAULTS["max_patches"]
            if lo > hi:
                raise VramscopeError("config_bad_value", origin=shown_path(origin), key="min_patches",
                                     value=shown(lo), allowed="at most max_patches")
            settings.update(crop_to_patches=crop, min_patches=lo, max_patches=hi)
    if vs.kind == "qwen3_vl":
        video, vname = _processor_dict(folder, "video_processor", VIDEO_PROCESSOR)
        if video is not None:
            if vname not in files:
                files.append(vname)
            settings["video_shortest_edge"], settings["video_longest_edge"] = _qwen_size(
                video, folder / vname, QWEN3_VIDEO_SIZE)
    if not settings:
        return spec, ()
    shown_settings = ", ".join(f"{k} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else
                               f"{k} {str(v).lower()}" for k, v in settings.items())
    vision = dataclasses.replace(vs, processor=tuple(sorted(settings.items())))
    return dataclasses.replace(spec, vision=vision), (Phrase("n_processor_config", files=", ".join(files),
                                                             settings=shown_settings,
                                                             o_mm=Opt("mm_processor_kwargs")),)
