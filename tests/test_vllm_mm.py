"""vLLM's multimodal encoder budget (issue #17 item 4, #13's image tokens): vramscope's largest item per modality,
encoder budget and profiled items against vLLM 0.33.0's own functions run on CPU (bench/vllm_mm_reference.py),
the profile's share of the activation peak, the tower's weights as vLLM holds them, the flags, and the pasted
command line."""

import json
from pathlib import Path

import pytest

import vramscope
from vramscope.commandline import parse_command
from vramscope.engines import vllm_mm
from vramscope.errors import VramscopeError
from vramscope.memory.image_tokens import gemma3_crops, max_tokens_per_item
from vramscope.sources import resolve
from vramscope.sources.hf_config import spec_from_config
from conftest import requires_torch

REFERENCE = Path(__file__).resolve().parent.parent / "validation" / "reference" / "vllm_mm_budget.jsonl"
ROWS = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line.strip()]


def _estimate(row, **kw):
    kw = {"limit_mm_per_prompt": row["limit_mm_per_prompt"] or None,
          "mm_processor_kwargs": row["mm_processor_kwargs"] or None, **kw}
    return vramscope.estimate(row["model"], engine="vllm", gpus=["h100"], max_model_len=row["max_model_len"],
                              max_num_batched_tokens=row["max_num_batched_tokens"], max_num_seqs=row["max_num_seqs"],
                              **kw)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['model'].split('/')[-1]}-{r['max_model_len']}-"
                                                    f"{r['max_num_batched_tokens']}-{len(str(r))}")
def test_encoder_budget_equals_vllms_own(row):
    """vLLM 0.33.0's get_mm_max_tokens_per_item, compute_mm_encoder_budget and MultiModalBudget._get_max_items
    against the engine's report for the same model, lengths and flags: every number exact."""
    e = _estimate(row).engine
    assert e["mm_max_tokens_per_item"] == row["max_tokens_per_item"]
    assert e["mm_encoder_budget"] == min(row["encoder_compute_budget"], row["encoder_cache_size"])
    assert e["mm_encoder_cache_size"] == row["encoder_cache_size"]
    assert e["mm_profile_modality"] == row["profile_modality"]
    assert (e["mm_items_per_prompt"], e["mm_profile_items"]) == (row["items_per_prompt"], row["items_per_batch"])


def test_profile_raises_the_activation_peak_and_shrinks_the_kv_cache():
    row = ROWS[0]
    on = _estimate(row).engine
    off = _estimate(row, skip_mm_profiling=True).engine
    text = _estimate(row, limit_mm_per_prompt={"image": 0, "video": 0}).engine
    assert on["activation_peak_bytes"] > off["activation_peak_bytes"] == text["activation_peak_bytes"]
    # what the profile adds is at least the encoder cache it fills (items × tokens × 3584 × 2 bytes)
    assert on["activation_peak_bytes"] - off["activation_peak_bytes"] >= 1 * 32768 * 3584 * 2
    assert on["per_gpu"][0]["kv_pool_bytes"] < off["per_gpu"][0]["kv_pool_bytes"]
    # every modality at 0: the tower is not built, its weights not loaded
    tower = vllm_mm.vision_params(resolve(row["model"], hub=False)) * 2
    assert off["weights_bytes"] - text["weights_bytes"] == tower
    assert "mm_profile_items" not in {k for k, v in text.items() if v is not None}


def test_encoder_tp_mode_weights_shards_the_tower_data_keeps_it():
    row = ROWS[0]
    model = resolve(row["model"], hub=False)
    tower = vllm_mm.vision_params(model) * 2
    sharded = _estimate(row, num_gpus=2, parallelism="tp").engine
    whole = _estimate(row, num_gpus=2, parallelism="tp", mm_encoder_tp_mode="data").engine
    assert whole["weights_bytes"] - sharded["weights_bytes"] == tower - tower // 2
    llava = vramscope.estimate("llava-hf/llava-1.5-7b-hf", engine="vllm", gpus=["h100"], num_gpus=2,
                               parallelism="tp", mm_encoder_tp_mode="data").engine
    plain = vramscope.estimate("llava-hf/llava-1.5-7b-hf", engine="vllm", gpus=["h100"], num_gpus=2,
                               parallelism="tp").engine
    assert llava["weights_bytes"] == plain["weights_bytes"]  # LLaVA has no data-parallel tower in vLLM: weights


def test_pasted_vllm_serve_command_reads_the_multimodal_flags():
    cmd = ("vllm serve Qwen/Qwen2.5-VL-7B-Instruct --max-model-len 32768 --limit-mm-per-prompt "
           "'{\"image\": 2, \"video\": 0}' --mm-processor-kwargs '{\"max_pixels\": 1003520}' "
           "--mm-encoder-tp-mode data --mm-processor-cache-gb 8")
    import shlex

    parsed = parse_command(shlex.split(cmd))
    assert parsed.options["limit_mm_per_prompt"] == {"image": 2, "video": 0}
    assert parsed.options["mm_processor_kwargs"] == {"max_pixels": 1003520}
    assert parsed.options["mm_encoder_tp_mode"] == "data" and parsed.options["mm_processor_cache_gb"] == 8.0
    assert not getattr(parsed, "unknown", None)
    row = next(r for r in ROWS if r["mm_processor_kwargs"] == {"max_pixels": 1003520})
    e = vramscope.estimate(parsed.model, engine="vllm", gpus=["h100"], max_num_batched_tokens=8192,
                           **{k: v for k, v in parsed.options.items() if k != "engine"}).engine
    assert e["mm_max_tokens_per_item"] == row["max_tokens_per_item"] and e["mm_profile_items"] == \
        row["items_per_batch"]
    assert e["mm_processor_cache_host_bytes"] == 8 * 2**30 * 2


@pytest.mark.parametrize("bad", ['{"image": -1}', "image=two", "[1, 2]", '{"image": true}'])
def test_limit_mm_per_prompt_refuses_what_vllm_refuses(bad):
    with pytest.raises(VramscopeError) as err:
        vllm_mm.read_limits(bad)
    assert "limit_mm_per_prompt" in str(err.value)
    assert vllm_mm.read_limits("image=2,video=0") == {"image": 2, "video": 0}
    assert vllm_mm.read_limits('{"video": {"count": 1, "num_frames": 32}}') == {"video": 1}


def test_mllama_is_refused_by_vllm_033_and_estimated_by_transformers():
    with pytest.raises(VramscopeError) as err:
        vramscope.estimate("meta-llama/Llama-3.2-11B-Vision", engine="vllm", gpus=["h100"])
    assert "0.10.2" in str(err.value)
    e = vramscope.estimate("meta-llama/Llama-3.2-11B-Vision", engine="transformers", seq=1024)
    assert e.total_bytes > 20 * 2**30


def test_pipeline_parallel_puts_the_tower_and_its_profile_on_the_first_stage():
    """vLLM 0.33's Model Runner V2 (its default) builds the tower on the first stage only (_mark_tower_model) and
    profiles the encoder there (model_runner.py profile_run: is_first_pp_rank); the V1 runner of older releases on
    every stage."""
    row = ROWS[0]
    model = resolve(row["model"], hub=False)
    tower = vllm_mm.vision_params(model) * 2
    new = _estimate(row, pp=2).engine["stages"]
    old = _estimate(row, pp=2, vllm_version="0.11.0").engine["stages"]
    assert new[0]["weights_bytes"] - old[0]["weights_bytes"] == 0
    assert old[1]["weights_bytes"] - new[1]["weights_bytes"] == tower
    # the encoder profile raises the first stage's peak, not the second's (which is the text model's alone)
    assert new[1]["activation_peak_bytes"] < new[0]["activation_peak_bytes"]
    assert old[1]["activation_peak_bytes"] > new[1]["activation_peak_bytes"]
    text = _estimate(row, pp=2, limit_mm_per_prompt={"image": 0, "video": 0}).engine["stages"]
    assert text[0]["weights_bytes"] == new[0]["weights_bytes"] - tower
    assert text[1] == {**new[1], **{k: text[1][k] for k in ("num_gpu_blocks", "kv_pool_bytes")}}


@requires_torch
@pytest.mark.parametrize("kwargs", [{}, {"max_patches": 6}, {"min_patches": 2, "max_patches": 9},
                                    {"max_patches": 1}, {"crop_to_patches": False}])
def test_internvl_dynamic_tiling_budget_is_vllms_interns1_info(kwargs):
    """vLLM 0.33.0 InternS1ProcessingInfo.get_max_image_tokens (interns1.py: the grids of resolve_target_ratios,
    the processor's max_patches plus the thumbnail) over transformers 5.24's own
    GotOcr2ImageProcessor.get_number_of_image_patches, and the dummy video's frames
    (get_num_frames_with_most_features): what max_model_len leaves beside the image, one 256-token tile each."""
    import transformers
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    spec = spec_from_config(transformers.InternVLConfig().to_dict(), "internvl")
    crop = kwargs.get("crop_to_patches", True)
    proc = GotOcr2ImageProcessorPil(crop_to_patches=crop, size={"height": 448, "width": 448})
    top = proc.max_patches + (1 if crop else 0)
    grids = {(i, j) for n in range(1, top + 1) for i in range(1, n + 1) for j in range(1, n + 1) if i * j <= top}
    image = max(256 * proc.get_number_of_image_patches(448 * j, 448 * i, dict(kwargs)) for i, j in grids)
    for max_len in (4096, 32768):
        assert max_tokens_per_item(spec, max_len, kwargs) == {"image": image,
                                                              "video": max((max_len - image) // 256, 1) * 256}
        assert max_tokens_per_item(spec, max_len, kwargs, {"video": 1}) == {"video": max_len // 256 * 256}


@requires_torch
def test_gemma3_pan_and_scan_crops_are_the_image_processors():
    """vLLM 0.33.0 Gemma3ProcessingInfo.get_num_crops ("Based on Gemma3ImageProcessor.pan_and_scan") against
    transformers 5.24's pan_and_scan on images of each shape; the budget is (crops + 1) × 256 at the most-features
    size (896 wide, max_num_crops × 896 high), 256 with pan-and-scan off (Gemma3ProcessorKwargs' default)."""
    import numpy as np
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    proc = Gemma3ImageProcessorPil()
    for w, h in [(896, 896), (896, 3584), (3584, 896), (1000, 1300), (300, 1000), (2000, 700), (500, 260)]:
        for most in (2, 4, 8):
            crops = proc.pan_and_scan(np.zeros((3, h, w), dtype=np.uint8), pan_and_scan_min_crop_size=256,
                                      pan_and_scan_max_num_crops=most, pan_and_scan_min_ratio_to_activate=1.2)
            assert gemma3_crops(w, h, {"do_pan_and_scan": True, "pan_and_scan_max_num_crops": most}) == len(crops)
    gemma = resolve("google/gemma-3-4b-pt", hub=False).spec
    assert max_tokens_per_item(gemma, 8192) == {"image": 256}
    assert max_tokens_per_item(gemma, 8192, {"do_pan_and_scan": True}) == {"image": 5 * 256}
    on = vramscope.estimate("google/gemma-3-4b-pt", engine="vllm", gpus=["h100"], max_model_len=8192,
                            mm_processor_kwargs={"do_pan_and_scan": True}).engine
    off = vramscope.estimate("google/gemma-3-4b-pt", engine="vllm", gpus=["h100"], max_model_len=8192).engine
    assert on["mm_max_tokens_per_item"] == {"image": 1280} and off["mm_max_tokens_per_item"] == {"image": 256}
    # the tower runs the image and its four crops: five times the patches
    assert on["mm_encoder_input_bytes"] * off["mm_profile_items"] == 5 * off["mm_encoder_input_bytes"] * \
        on["mm_profile_items"]


@pytest.mark.parametrize("bad", ['{"do_pan_and_scan": "yes"}', '{"max_patches": 0}',
                                 '{"min_patches": 8, "max_patches": 4}',
                                 '{"pan_and_scan_min_ratio_to_activate": -1}'])
def test_processor_kwargs_refuse_bad_tiling_values(bad):
    with pytest.raises(VramscopeError) as err:
        vllm_mm.read_processor_kwargs(bad)
    assert "mm_processor_kwargs." in str(err.value)
