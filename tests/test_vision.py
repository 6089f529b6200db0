"""Vision-language models read without torch (sources/vision_config.py, model/vision.py): parameters, tensor
names, shapes and tied embeddings equal transformers 5.24's own model on the meta device, for each family's
defaults and small configs that turn each switch the readers read."""

import subprocess
import sys

import pytest

from conftest import requires_torch
from vramscope.model.tensors import groups, tensors
from vramscope.sources.hf_config import SUPPORTED_MODEL_TYPES, spec_from_config

_TEXT = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 320}
_QV = {"depth": 2, "num_heads": 4, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
_CLIP = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
         "image_size": 56, "patch_size": 14}

#: (model_type, architecture, config); {} is the configuration class's defaults
CASES = [
    ("qwen2_vl", "Qwen2VLForConditionalGeneration", {}),
    ("qwen2_vl", "Qwen2VLForConditionalGeneration", {  # a pre-5.x flat config: the text keys at the top level
        **_TEXT, "tie_word_embeddings": True,
        "vision_config": {**_QV, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 2}}),
    ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", {}),
    ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", {
        "text_config": {**_TEXT, "tie_word_embeddings": True},
        "vision_config": {**_QV, "hidden_size": 32, "intermediate_size": 40, "out_hidden_size": 64}}),
    ("qwen3_vl", "Qwen3VLForConditionalGeneration", {}),
    ("qwen3_vl", "Qwen3VLForConditionalGeneration", {
        "text_config": {**_TEXT, "head_dim": 16}, "tie_word_embeddings": True,
        "vision_config": {**_QV, "patch_size": 16, "hidden_size": 32, "intermediate_size": 40,
                          "out_hidden_size": 64, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}}),
    ("llava", "LlavaForConditionalGeneration", {}),
    ("llava", "LlavaForConditionalGeneration", {  # llava-1.5's config names a few text keys only
        "text_config": {"model_type": "llama", "vocab_size": 32064, "max_position_embeddings": 4096},
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "image_size": 336,
                          "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24,
                          "patch_size": 14, "projection_dim": 768}}),
    ("llava", "LlavaForConditionalGeneration", {
        "text_config": {**_TEXT, "model_type": "qwen2"}, "vision_config": _CLIP, "vision_feature_layer": [-2, -5],
        "multimodal_projector_bias": False, "tie_word_embeddings": True}),
    ("llava", "LlavaForConditionalGeneration", {"text_config": {**_TEXT, "model_type": "mistral",
                                                                "tie_word_embeddings": True},
                                                "vision_config": _CLIP}),
    ("llava_next", "LlavaNextForConditionalGeneration", {}),
    ("llava_next", "LlavaNextForConditionalGeneration", {"text_config": {**_TEXT, "model_type": "mistral"},
                                                         "vision_config": _CLIP}),
    ("internvl", "InternVLForConditionalGeneration", {}),
    ("internvl", "InternVLForConditionalGeneration", {
        "text_config": {**_TEXT, "model_type": "qwen2"}, "tie_word_embeddings": False,
        "vision_config": {**_CLIP, "image_size": [56, 56], "patch_size": [14, 14], "use_qk_norm": True,
                          "attention_bias": True, "norm_type": "rms_norm", "use_mean_pooling": False,
                          "use_mask_token": True}}),
    ("internvl", "InternVLForConditionalGeneration", {
        "text_config": {**_TEXT, "model_type": "qwen2"},
        "vision_config": {**_CLIP, "image_size": 56, "use_absolute_position_embeddings": False}}),
    ("mllama", "MllamaForConditionalGeneration", {}),
    ("mllama", "MllamaForConditionalGeneration", {
        "text_config": {**_TEXT, "num_hidden_layers": 5, "cross_attention_layers": [1, 4], "pad_token_id": 0},
        "vision_config": {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "attention_heads": 4,
                          "num_global_layers": 1, "image_size": 56, "patch_size": 14, "max_num_tiles": 2,
                          "vision_output_dim": 96, "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]]}}),
]


def _id(case):
    mt, _, cfg = case
    return f"{mt}-{'defaults' if not cfg else len(str(cfg))}"


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_vision_language_model_equals_meta_device(case):
    from meta_build import meta_model, meta_tied_embeddings

    mt, arch, cfg = case
    cfg = {"model_type": mt, "architectures": [arch], **cfg}
    spec = spec_from_config(cfg, mt)
    assert spec.layout == "llama" and spec.vision is not None  # built in: no torch needed
    model = meta_model(cfg)
    real = {n: tuple(p.shape) for n, p in model.named_parameters()}
    ours = {t.name: t.shape for t in tensors(spec)}
    assert ours == real  # every name and shape, tied tensors once
    assert spec.params == sum(p.numel() for p in model.parameters()) == sum(g.numel for g in groups(spec))
    assert spec.tie_embeddings == meta_tied_embeddings(model)
    vision = sum(t.numel for t in tensors(spec) if t.role in ("vision", "projector"))
    tower = next(getattr(model.model, a) for a in ("visual", "vision_tower", "vision_model") if hasattr(model.model, a))
    assert vision >= sum(p.numel() for p in tower.parameters())


def test_vision_readers_are_built_in_and_never_import_torch():
    for mt in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next", "internvl", "mllama"):
        assert mt in SUPPORTED_MODEL_TYPES
    code = ("import sys; from vramscope.sources.hf_config import spec_from_config; "
            "[spec_from_config({'model_type': mt}, mt).params for mt in "
            "('qwen2_vl', 'qwen2_5_vl', 'qwen3_vl', 'llava', 'llava_next', 'internvl', 'mllama')]; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mllama_cross_attention_layers_have_no_self_attention():
    spec = spec_from_config({"model_type": "mllama"}, "mllama")
    names = {t.name for t in tensors(spec)}
    assert spec.cross_layers == (3, 8, 13, 18, 23, 28, 33, 38)
    assert "model.language_model.layers.3.cross_attn.k_proj.weight" in names
    assert "model.language_model.layers.3.self_attn.k_proj.weight" not in names
    assert "model.language_model.layers.2.self_attn.k_proj.weight" in names
