"""Vision-language ``config.json`` readers (pure Python): Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA, LLaVA-NeXT,
InternVL (transformers' native ``internvl``) and Llama-3.2-Vision (``mllama``).

Each reads the language model from ``text_config`` with the built-in reader of its family (Qwen2-VL's
pre-5.x flat configs keep the text keys at the top level, as ``Qwen2VLConfig.__post_init__`` reads them) and the
vision tower + projector from ``vision_config`` into a :class:`~vramscope.model.spec.VisionSpec` whose tensors are
listed by :mod:`vramscope.model.vision`. Defaults are the transformers 5.24 configuration classes' (``_DEFAULTS``
in ``hf_config.py``). Tied embeddings follow each class's rule: Qwen2-VL / Qwen2.5-VL and LLaVA tie when the outer
``tie_word_embeddings`` or the text config's is true (their "BC: pre-v5 saves placed tie_word_embeddings inside
text_config"); Qwen3-VL, InternVL and Mllama read the outer one only (InternVL's default is true).

A LLaVA whose tower is not CLIP (SigLIP, Pixtral) or whose language model has no built-in reader, and an
InternVL with a non-square tile, are handed to transformers on the meta device (``sources/meta_device.py``).
"""

from __future__ import annotations

from typing import Any, Callable

from .. import i18n
from ..model.spec import ModelSpec, VisionSpec
from .hf_config import _DEFAULTS, _Reader

i18n.register({
    "shape_pinpoints": {
        "en": "{where}{field}: '{value}' is not a list of [height, width] pairs of whole numbers from 1 to {maximum}",
        "zh": "{where}{field}：'{value}' 不是由 1 到 {maximum} 的整数组成的 [高, 宽] 对列表",
    },
})

_QWEN_TEXT = {"qwen2_vl": "qwen2_vl_text", "qwen2_5_vl": "qwen2_5_vl_text", "qwen3_vl": "qwen3_vl_text"}


def _families() -> dict[str, Callable[[_Reader, str, str], ModelSpec]]:
    from . import hf_config

    return hf_config._FAMILIES


def _text_reader(r: _Reader, text_type: str, flat: bool = False) -> _Reader:
    """The language model's config: ``text_config`` over its class defaults, or (``flat``) the top-level keys."""
    arch = {"architectures": r.cfg.get("architectures")}
    if flat and not r.present("text_config"):
        top = {k: v for k, v in r.cfg.items() if k not in ("vision_config", "model_type")}
        return _Reader({**_DEFAULTS.get(text_type, {}), **top, **arch}, r.origin, r.prefix)
    return r.nested("text_config", _DEFAULTS.get(text_type, {}), arch)


#: the language models' configuration-class defaults a composite text_config builds on (llava-1.5's and
#: llava-v1.6-mistral's name a few keys only; transformers fills the rest from LlamaConfig / MistralConfig)
_TEXT_DEFAULTS = {"llama": "llava_text", "mistral": "llava_mistral_text", "qwen2": "internvl_qwen2_text"}


def _text_defaults(text_type: str) -> dict[str, Any]:
    return {**_DEFAULTS.get(text_type, {}), **_DEFAULTS.get(_TEXT_DEFAULTS.get(text_type, ""), {})}


def _meta(r: _Reader, name: str, mt: str) -> ModelSpec:
    from .hf_config import SUPPORTED_MODEL_TYPES
    from .meta_device import spec_from_meta

    return spec_from_meta(r.cfg, name, r.origin, mt, len(SUPPORTED_MODEL_TYPES))


def _qwen_vl(r: _Reader, name: str, mt: str) -> ModelSpec:
    """``Qwen2VLConfig`` / ``Qwen2_5_VLConfig`` / ``Qwen3VLConfig``: a Qwen2 (Qwen3 for Qwen3-VL) language model and
    the Qwen ViT with its patch merger."""
    text_type = _QWEN_TEXT[mt]
    tr = _text_reader(r, text_type, flat=mt != "qwen3_vl")
    fam = _families()
    text = fam["qwen3" if mt == "qwen3_vl" else "qwen2"](tr, name, "qwen3" if mt == "qwen3_vl" else "qwen2")
    tie = r.bool("tie_word_embeddings", False)
    if mt != "qwen3_vl":
        tie = tie or tr.bool("tie_word_embeddings", False)
    vr = r.nested("vision_config", _DEFAULTS[f"{mt}_vision"], {})
    patch = vr.int("patch_size", limit="patch_size")
    if mt == "qwen2_vl":
        width = vr.int("embed_dim", limit="hidden_size")
        inter = int(width * vr.float("mlp_ratio", 0.01, 1000.0))
        out = vr.int("hidden_size", limit="hidden_size")
    else:
        width = vr.int("hidden_size", limit="hidden_size")
        inter = vr.int("intermediate_size", limit="intermediate_size")
        out = vr.int("out_hidden_size", limit="hidden_size")
    deep = len(vr.layer_list("deepstack_visual_indexes")) if mt == "qwen3_vl" else 0
    vision = VisionSpec(
        hidden_size=width, intermediate_size=inter, num_layers=vr.int("depth", limit="num_layers"),
        num_heads=vr.int("num_heads", limit="num_heads"), image_size=0, patch_size=patch,
        num_channels=vr.int("in_channels", "in_chans", limit="num_channels", default=3),
        text_hidden_size=text.hidden_size, kind=mt, output_dim=out,
        temporal_patch_size=vr.int("temporal_patch_size", limit="vision_count", default=2),
        merge_size=vr.int("spatial_merge_size", limit="vision_count", default=2),
        num_positions=vr.int("num_position_embeddings", limit="intermediate_size", default=0, minimum=0)
        if mt == "qwen3_vl" else 0, deepstack=deep)
    return text.with_overrides(model_type=mt, vision=vision, tie_embeddings=tie, architecture=text.architecture)


def _llava(r: _Reader, name: str, mt: str) -> ModelSpec:
    """``LlavaConfig`` / ``LlavaNextConfig``: a CLIP tower, the two-layer projector (LLaVA-NeXT: and the
    ``image_newline`` row), the language model of ``text_config`` (Llama by default)."""
    text_cfg = r.dict("text_config") or {}
    text_type = text_cfg.get("model_type") or "llama"
    vis_cfg = r.dict("vision_config") or {}
    fam = _families()
    if (vis_cfg.get("model_type") or "clip_vision_model") != "clip_vision_model" or text_type not in fam \
            or text_type in READERS:
        return _meta(r, name, mt)
    tr = r.nested("text_config", _text_defaults(text_type), {"architectures": r.cfg.get("architectures")})
    text = fam[text_type](tr, name, text_type)
    tie = r.bool("tie_word_embeddings", False) or tr.bool("tie_word_embeddings", False)
    vr = r.nested("vision_config", _DEFAULTS["llava_clip" if not r.present("vision_config") else
                                             "clip_vision_model"], {})
    layers = r.cfg.get("vision_feature_layer", -2)
    strategy = r.str("vision_feature_select_strategy", default="default")
    if strategy not in ("default", "full"):
        from ..errors import VramscopeError
        from ..model.limits import shown

        raise VramscopeError("shape_bad_choice", where=f"{r.origin} ", field="vision_feature_select_strategy",
                             value=shown(strategy), allowed="default, full")
    vision = _vit(vr, text.hidden_size, kind="clip", feature_layers=len(layers) if isinstance(layers, list) else 1,
                  projector_bias=r.bool("multimodal_projector_bias", True), newline=mt == "llava_next",
                  select_strategy=strategy, grid_pinpoints=_pinpoints(r) if mt == "llava_next" else ())
    return text.with_overrides(model_type=mt, vision=vision, tie_embeddings=tie)


#: LlavaNextConfig's default image_grid_pinpoints
_PINPOINTS = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))


def _pinpoints(r: _Reader) -> tuple[tuple[int, int], ...]:
    """``image_grid_pinpoints``: (height, width) pairs of whole numbers (the class default when absent)."""
    value = r.cfg.get("image_grid_pinpoints")
    if value is None:
        return _PINPOINTS
    if (not isinstance(value, list) or not 0 < len(value) <= 1024
            or any(not isinstance(p, list) or len(p) != 2 or any(isinstance(x, bool) or not isinstance(x, int)
                                                                 or not 0 < x <= 65536 for x in p) for p in value)):
        from ..errors import VramscopeError
        from ..model.limits import shown

        raise VramscopeError("shape_pinpoints", where=f"{r.origin} ", field="image_grid_pinpoints",
                             value=shown(value), maximum=65536)
    return tuple((p[0], p[1]) for p in value)


def _vit(vr: _Reader, text_hidden: int, **extra: Any) -> VisionSpec:
    patch = vr.int("patch_size", limit="patch_size")
    return VisionSpec(hidden_size=vr.int("hidden_size", limit="hidden_size"),
                      intermediate_size=vr.int("intermediate_size", limit="intermediate_size"),
                      num_layers=vr.int("num_hidden_layers", limit="num_layers"),
                      num_heads=vr.int("num_attention_heads", "attention_heads", limit="num_heads"),
                      image_size=vr.int("image_size", limit="image_size", minimum=patch), patch_size=patch,
                      num_channels=vr.int("num_channels", limit="num_channels", default=3),
                      text_hidden_size=text_hidden, **extra)


def _square(value: Any) -> Any:
    """InternVL's ``image_size`` / ``patch_size``: an int, or a list of two equal ones (else None)."""
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    return None if isinstance(value, list) else value


def _internvl(r: _Reader, name: str, mt: str) -> ModelSpec:
    """``InternVLConfig``: the InternViT tower, the pixel-shuffle projector, a Qwen2 language model by default."""
    text_cfg = r.dict("text_config") or {}
    text_type = text_cfg.get("model_type") or "qwen2"
    fam = _families()
    vis = {**_DEFAULTS["internvl_vision"], **(r.dict("vision_config") or {})}
    size, patch = _square(vis.get("image_size")), _square(vis.get("patch_size"))
    if text_type not in fam or text_type in READERS or size is None or patch is None:
        return _meta(r, name, mt)
    tr = r.nested("text_config", _text_defaults(text_type), {"architectures": r.cfg.get("architectures")})
    text = fam[text_type](tr, name, text_type)
    vr = r.nested("vision_config", _DEFAULTS["internvl_vision"], {"image_size": size, "patch_size": patch})
    ratio = r.float("downsample_ratio", 0.001, 1.0, default=0.5)
    positions = (size // patch) ** 2 + 1 if vr.bool("use_absolute_position_embeddings", True) else 0
    norm = vr.str("norm_type", default="layer_norm")
    vision = _vit(vr, text.hidden_size, kind="internvl", merge_size=int(1 / ratio), num_positions=positions,
                  image_tokens=r.int("image_seq_length", limit="intermediate_size", default=256),
                  qkv_bias=vr.bool("attention_bias", False), qk_norm=vr.bool("use_qk_norm", False),
                  norm="rmsnorm" if norm == "rms_norm" else "layernorm",
                  mean_pooling=vr.bool("use_mean_pooling", True), mask_token=vr.bool("use_mask_token", False))
    return text.with_overrides(model_type=mt, vision=vision, tie_embeddings=r.bool("tie_word_embeddings", True))


def _mllama(r: _Reader, name: str, mt: str) -> ModelSpec:
    """``MllamaConfig`` (Llama-3.2-Vision): a Llama language model whose ``cross_attention_layers`` attend to the
    image states instead of the text, and the tiled two-stage ViT."""
    tr = r.nested("text_config", _DEFAULTS["mllama_text_model"], {"architectures": r.cfg.get("architectures")})
    n = tr.int("num_hidden_layers", limit="num_layers")
    cross = tuple(sorted(set(i for i in tr.layer_list("cross_attention_layers") if i < n)))
    text = _families()["llama"](tr, name, "llama")
    vr = r.nested("vision_config", _DEFAULTS["mllama_vision_model"], {})
    ratios = vr.cfg.get("supported_aspect_ratios") or []
    vision = _vit(vr, text.hidden_size, kind="mllama",
                  output_dim=vr.int("vision_output_dim", limit="intermediate_size"),
                  global_layers=vr.int("num_global_layers", limit="num_layers", minimum=0),
                  max_tiles=vr.int("max_num_tiles", limit="vision_count"),
                  aspect_ratios=len(ratios) if isinstance(ratios, list) else 0)
    return text.with_overrides(model_type=mt, vision=vision, cross_layers=cross,
                               tie_embeddings=r.bool("tie_word_embeddings", False))


READERS: dict[str, Callable[[_Reader, str, str], ModelSpec]] = {
    "qwen2_vl": _qwen_vl, "qwen2_5_vl": _qwen_vl, "qwen3_vl": _qwen_vl,
    "llava": _llava, "llava_next": _llava, "internvl": _internvl, "mllama": _mllama,
}
