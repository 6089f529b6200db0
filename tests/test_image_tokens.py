"""Tokens per image against the real transformers 5.24 processors (their PIL backends, on CPU, small images):
Qwen2-VL / Qwen2.5-VL / Qwen3-VL's grid after ``smart_resize``, LLaVA-NeXT's any-resolution features, InternVL's
tiles, Llama-3.2-Vision's tiles of cross-attention states; and vLLM's largest item (the rest of vLLM's side is in
tests/test_vllm_mm.py against vLLM's own code)."""

import pytest

from conftest import requires_torch
from vramscope.memory.image_tokens import (cross_attention_states, image_tokens, internvl_tiles, largest_image,
                                           max_tokens_per_item, read_image_size)
from vramscope.errors import VramscopeError
from vramscope.sources import resolve
from vramscope.sources.hf_config import spec_from_config

SIZES = [(32, 32), (300, 200), (640, 480), (1001, 333), (2000, 10), (250, 1500), (1280, 720)]


def _image(width, height):
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8))


pil = pytest.importorskip("PIL", reason="Pillow (the test extra) runs the processors")


@requires_torch
@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2-VL-2B-Instruct",
                                   "Qwen/Qwen3-VL-8B-Instruct"])
@pytest.mark.parametrize("kwargs", [None, {"max_pixels": 1003520, "min_pixels": 200704}])
def test_qwen_tokens_equal_the_processors_grid(model, kwargs):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from vramscope.memory.image_tokens import QWEN_PIXELS

    spec = resolve(model, hub=False).spec
    vs = spec.vision
    lo, hi = QWEN_PIXELS[vs.kind][0]
    if kwargs:
        lo, hi = kwargs["min_pixels"], kwargs["max_pixels"]
    proc = Qwen2VLImageProcessorPil(size={"shortest_edge": lo, "longest_edge": hi}, patch_size=vs.patch_size,
                                    merge_size=vs.merge_size, temporal_patch_size=vs.temporal_patch_size)
    for w, h in SIZES:
        t, gh, gw = proc(images=[_image(w, h)], return_tensors="np")["image_grid_thw"][0].tolist()
        assert image_tokens(spec, w, h, kwargs) == t * gh * gw // vs.merge_size ** 2, (w, h)


@requires_torch
def test_llava_next_tokens_equal_the_processors_features():
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
    from transformers.models.llava_next.processing_llava_next import LlavaNextProcessor

    spec = resolve("llava-hf/llava-v1.6-mistral-7b-hf", hub=False).spec
    proc = object.__new__(LlavaNextProcessor)  # as its published processor_config.json sets it
    proc.image_processor = LlavaNextImageProcessorPil(image_grid_pinpoints=[list(p) for p in
                                                                            spec.vision.grid_pinpoints])
    proc.patch_size, proc.num_additional_image_tokens, proc.vision_feature_select_strategy = 14, 1, "default"
    for w, h in SIZES + [(672, 672), (336, 1008)]:
        real = proc._get_number_of_features(h, w, 336, 336) - 1  # the "default" strategy drops the CLS token
        assert image_tokens(spec, w, h) == real, (w, h)
    # the first image of the published example: 2928 tokens at the largest pinpoint, as vLLM profiles
    assert max_tokens_per_item(spec, 32768) == {"image": 2928}


@requires_torch
def test_internvl_tiles_equal_got_ocr2_crop_to_patches():
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    proc = GotOcr2ImageProcessorPil(crop_to_patches=True, size={"height": 448, "width": 448})
    spec = spec_from_config({"model_type": "internvl"}, "internvl")
    for w, h in SIZES + [(896, 448), (448, 1344), (1500, 500)]:
        n = int(proc(images=[_image(w, h)], return_tensors="np")["num_patches"][0])
        assert internvl_tiles(h, w, 448) == n, (w, h)
        assert image_tokens(spec, w, h) == 256 * n


@requires_torch
def test_mllama_cross_attention_states_equal_the_processors_tiles():
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    spec = resolve("meta-llama/Llama-3.2-11B-Vision", hub=False).spec
    proc = MllamaImageProcessorPil(size={"height": 560, "width": 560}, max_image_tiles=4)
    px = proc(images=[[_image(640, 480)]], return_tensors="np")["pixel_values"]
    tiles, side = px.shape[2], px.shape[-1] // 14  # every image padded to max_image_tiles
    assert cross_attention_states(spec) == tiles * (side * side + 1) == 6404
    assert image_tokens(spec, 640, 480) == 1  # one <|image|> token in the context


def test_vllm_largest_items_by_vllm_rules():
    qwen = resolve("Qwen/Qwen2.5-VL-7B-Instruct", hub=False).spec
    assert max_tokens_per_item(qwen, 32768) == {"image": 16384, "video": 32768}
    assert largest_image(qwen) == (3584, 3584)  # 128 × 128 merged patches of 28 pixels
    llava = resolve("llava-hf/llava-1.5-7b-hf", hub=False).spec
    assert max_tokens_per_item(llava, 4096) == {"image": 576} and image_tokens(llava, 1000, 20) == 576
    gemma = resolve("google/gemma-3-4b-pt", hub=False).spec
    assert max_tokens_per_item(gemma, 8192) == {"image": 256}


@pytest.mark.parametrize("bad", ["1280", "0x10", "10x5000", "axb", "1x1x1"])
def test_image_size_is_read_or_refused(bad):
    assert read_image_size("1280x720") == (1280, 720)
    with pytest.raises(VramscopeError):
        read_image_size(bad)
