"""vLLM's own multimodal encoder budget (its real ``vllm/multimodal/encoder_budget.py``,
``vllm/v1/core/encoder_cache_manager.py`` and the models' ``ProcessingInfo`` classes) for the catalog's
vision-language models, written to ``validation/reference/vllm_mm_budget.jsonl``.

Run with a vLLM source tree (a release's wheel unpacked; no GPU: only the pure-Python processing info and budget
code runs) and its Python dependencies on the path, transformers 5.24 and Pillow installed::

    PYTHONPATH=/tmp/eng_vllm/src-0.33.0:/tmp/eng_vllm/deps:/tmp/mmdeps python bench/vllm_mm_reference.py \
        [--write validation/reference/vllm_mm_budget.jsonl]

(``/tmp/mmdeps``: ``mistral_common`` and ``jsonschema``, which vLLM's LLaVA module imports through Pixtral's.)

For each case vLLM's ``<Model>ProcessingInfo`` is built around a stand-in context that hands it transformers'
own config class for the catalog config.json and transformers' own image (and video) processor with the sizes
of the model's published ``preprocessor_config.json`` (vramscope's ``QWEN_PIXELS``; overridden by the case's
``mm_processor_kwargs`` as vLLM's ``--mm-processor-kwargs`` would); vLLM's ``get_mm_max_tokens_per_item`` gives
the largest item of each modality. vLLM's ``compute_mm_encoder_budget`` then sizes the encoder budget from a
scheduler config carrying the case's ``max_num_batched_tokens``, and ``MultiModalBudget._get_max_items`` /
``get_modality_with_max_tokens`` (called on a namespace with the attributes they read) give the items the
profile run encodes. ``tests/test_vllm_mm.py`` compares vramscope's numbers with these rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vramscope.memory.image_tokens import QWEN_PIXELS  # noqa: E402
from vramscope.sources import catalog  # noqa: E402

#: (model, max_model_len, max_num_batched_tokens, max_num_seqs, limit_mm_per_prompt, mm_processor_kwargs)
CASES = (
    ("Qwen/Qwen2.5-VL-7B-Instruct", 32768, 8192, 1024, {}, {}),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 32768, 2048, 256, {}, {}),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 8192, 8192, 1024, {"image": 4, "video": 0}, {}),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 32768, 8192, 1024, {"image": 2, "video": 0}, {"max_pixels": 1003520}),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 128000, 16384, 1024, {}, {}),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 4096, 2048, 8, {"image": 1, "video": 0}, {"max_pixels": 802816}),
    ("Qwen/Qwen2.5-VL-3B-Instruct", 16384, 8192, 1024, {}, {}),
    ("Qwen/Qwen2-VL-7B-Instruct", 32768, 8192, 1024, {}, {}),
    ("Qwen/Qwen2-VL-2B-Instruct", 8192, 2048, 256, {"image": 5, "video": 0}, {"min_pixels": 200704,
                                                                              "max_pixels": 1003520}),
    ("Qwen/Qwen3-VL-8B-Instruct", 262144, 8192, 1024, {}, {}),
    ("Qwen/Qwen3-VL-8B-Instruct", 32768, 2048, 256, {"image": 3, "video": 0}, {}),
    ("llava-hf/llava-1.5-7b-hf", 4096, 2048, 256, {}, {}),
    ("llava-hf/llava-1.5-7b-hf", 4096, 8192, 1024, {"image": 2}, {}),
    ("llava-hf/llava-v1.6-mistral-7b-hf", 32768, 8192, 1024, {}, {}),
    ("llava-hf/llava-v1.6-mistral-7b-hf", 4096, 2048, 256, {"image": 1}, {}),
)


def stub_torchvision_processors() -> None:
    """transformers 5.24's torchvision image processor modules (Qwen2-VL's, Pixtral's, which vLLM's LLaVA module
    imports) cannot import without torchvision: the names vLLM takes from them come from their PIL twins (the
    same functions, ``# Copied from``)."""
    import importlib
    import types

    for family, names in (("qwen2_vl", {"smart_resize": "smart_resize",
                                        "Qwen2VLImageProcessor": "Qwen2VLImageProcessorPil"}),
                          ("pixtral", {"_num_image_tokens": "_num_image_tokens"})):
        name = f"transformers.models.{family}.image_processing_{family}"
        try:
            importlib.import_module(name)
        except ImportError:
            pil = importlib.import_module(f"transformers.models.{family}.image_processing_pil_{family}")
            stub = types.ModuleType(name)
            for ours, theirs in names.items():
                setattr(stub, ours, getattr(pil, theirs))
            sys.modules[name] = stub


def hf_config(cfg: dict):
    import transformers

    native = {k: v for k, v in cfg.items() if k not in ("transformers_version", "_name_or_path")}
    return transformers.AutoConfig.for_model(**native)


def processing_info(cfg: dict, kwargs: dict):
    """vLLM's ProcessingInfo for the config, its context a stand-in handing out transformers' objects."""
    mt = cfg["model_type"]
    config = hf_config(cfg)
    if mt in QWEN_PIXELS:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        (lo, hi), (vlo, vhi) = QWEN_PIXELS[mt]
        vc = config.vision_config
        image = Qwen2VLImageProcessorPil(size={"shortest_edge": lo, "longest_edge": hi}, patch_size=vc.patch_size,
                                         merge_size=vc.spatial_merge_size,
                                         temporal_patch_size=vc.temporal_patch_size)
        if mt == "qwen3_vl":
            from vllm.model_executor.models.qwen3_vl import Qwen3VLProcessingInfo as Info
            from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

            video = Qwen3VLVideoProcessor(size={"shortest_edge": vlo, "longest_edge": vhi}, patch_size=vc.patch_size,
                                          merge_size=vc.spatial_merge_size,
                                          temporal_patch_size=vc.temporal_patch_size)
        else:
            from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLProcessingInfo
            from vllm.model_executor.models.qwen2_vl import Qwen2VLProcessingInfo

            Info = Qwen2_5_VLProcessingInfo if mt == "qwen2_5_vl" else Qwen2VLProcessingInfo
            video = None
        info = object.__new__(Info)
        info.get_hf_config = lambda: config
        info.get_image_processor = lambda **kw: image
        info.get_video_processor = lambda **kw: video
        # vLLM's --mm-processor-kwargs reach the size resolution through the merged kwargs (both scopes)
        info._merge_and_resolve_mm_processor_kwargs = lambda mm: {"images_kwargs": dict(kwargs),
                                                                  "videos_kwargs": dict(kwargs)}
        return info
    from vllm.model_executor.models.llava import LlavaProcessingInfo
    from vllm.model_executor.models.llava_next import LlavaNextProcessingInfo

    info = object.__new__(LlavaNextProcessingInfo if mt == "llava_next" else LlavaProcessingInfo)
    info.get_hf_config = lambda: config
    return info


def run(model: str, max_len: int, mnbt: int, seqs: int, limits: dict, kwargs: dict) -> dict:
    from vllm.multimodal.encoder_budget import MultiModalBudget
    from vllm.v1.core.encoder_cache_manager import compute_mm_encoder_budget

    entry = catalog.find(model)
    info = processing_info(entry["config"], kwargs)
    supported = info.get_supported_mm_limits()
    allowed = {m: limits.get(m, 999) for m in supported}
    active = [m for m in supported if allowed[m] > 0]
    per_item = info.get_mm_max_tokens_per_item(seq_len=max_len, mm_counts=dict.fromkeys(active, 1))
    if per_item is None:
        # LLaVA / LLaVA-NeXT return None: get_mm_max_toks_per_item then counts the embeds of the dummy image of
        # get_image_size_with_most_features, whose placeholder the processor sizes with get_num_image_tokens
        per_item = {"image": info.get_max_image_tokens()}
    per_item = {m: t for m, t in per_item.items() if m in active}
    sched = SimpleNamespace(disable_chunked_mm_input=False, max_num_batched_tokens=mnbt,
                            max_num_encoder_input_tokens=mnbt, encoder_cache_size=mnbt, enable_chunked_prefill=True)
    compute, cache = compute_mm_encoder_budget(sched, per_item)
    fake = SimpleNamespace(encoder_compute_budget=compute, encoder_cache_size=cache, mm_limits=allowed,
                           max_model_len=max_len, scheduler_config=sched, max_num_reqs=seqs,
                           mm_max_toks_per_item=per_item)
    fake.get_encoder_budget = lambda: MultiModalBudget.get_encoder_budget(fake)
    modality = MultiModalBudget.get_modality_with_max_tokens(fake)
    per_prompt, per_batch = MultiModalBudget._get_max_items(fake, modality, per_item[modality])
    return {"vllm_version": "0.33.0", "model": model, "max_model_len": max_len, "max_num_batched_tokens": mnbt,
            "max_num_seqs": seqs, "limit_mm_per_prompt": limits, "mm_processor_kwargs": kwargs,
            "max_tokens_per_item": per_item, "encoder_compute_budget": compute, "encoder_cache_size": cache,
            "profile_modality": modality, "items_per_prompt": per_prompt, "items_per_batch": per_batch}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    stub_torchvision_processors()
    rows = [run(*c) for c in CASES]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if args.write:
        args.write.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
