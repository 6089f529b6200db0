"""The vision towers' forward peak (memory/image_tokens.py tower_layer_bytes) against transformers 5.24's own
towers traced on fake tensors on the CPU (vramscope.trace.vision): Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA's CLIP,
Gemma 3's SigLIP, InternVL's InternViT, at the real widths, one and several items, shallow and full depth."""

import pytest

from conftest import requires_torch
from vramscope.memory.image_tokens import tower_layer_bytes, tower_transient
from vramscope.sources import catalog
from vramscope.sources.hf_config import spec_from_config

#: the error the per-layer accounting is held to against the trace
TOLERANCE = 0.002

#: (model, Qwen grid (t, h, w) of one item, items)
CASES = [
    ("Qwen/Qwen2.5-VL-7B-Instruct", (1, 32, 48), 1),
    ("Qwen/Qwen2.5-VL-7B-Instruct", (1, 64, 64), 2),
    ("Qwen/Qwen2-VL-2B-Instruct", (2, 16, 16), 3),
    ("Qwen/Qwen3-VL-8B-Instruct", (1, 48, 32), 2),
    ("llava-hf/llava-1.5-7b-hf", (1, 0, 0), 3),
    ("llava-hf/llava-v1.6-mistral-7b-hf", (1, 0, 0), 5),
    ("google/gemma-3-4b-pt", (1, 0, 0), 2),
    ("internvl", (1, 0, 0), 4),
]


def _config(model):
    if model == "internvl":  # transformers' InternVLConfig defaults: InternVL3's InternViT-300M and Qwen2
        import transformers

        return transformers.InternVLConfig().to_dict()
    return catalog.find(model)["config"]


@requires_torch
@pytest.mark.parametrize("model,grid,items", CASES, ids=lambda v: str(v).split("/")[-1])
def test_tower_peak_equals_the_trace(model, grid, items):
    from vramscope.trace.vision import trace_tower

    cfg = _config(model)
    spec = spec_from_config(cfg, cfg["model_type"])
    r = trace_tower(cfg, grid, items=items, layers=3)
    ours = tower_transient(spec, r.patches, 2, impl="transformers")
    assert abs(ours - r.peak_bytes) <= TOLERANCE * r.peak_bytes, (ours, r.peak_bytes)
    # the peak is per position: twice the items, twice the bytes (to the 512-byte rounding of small tensors)
    r2 = trace_tower(cfg, grid, items=2 * items, layers=3)
    assert abs(r2.peak_bytes - 2 * r.peak_bytes) <= 0.001 * r2.peak_bytes


@requires_torch
@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-VL-3B-Instruct", "llava-hf/llava-1.5-7b-hf"])
def test_full_depth_peaks_where_one_layer_does(model):
    """Every layer frees its work: the full tower (Qwen2.5-VL-3B's 32 layers with their full-attention blocks;
    CLIP up to LLaVA's feature layer, 23 of 24) peaks as a 3-layer one does."""
    from vramscope.trace.vision import trace_tower

    cfg = _config(model)
    spec = spec_from_config(cfg, cfg["model_type"])
    full = trace_tower(cfg, (1, 32, 32), items=2)
    assert abs(tower_transient(spec, full.patches, 2, impl="transformers") - full.peak_bytes) \
        <= TOLERANCE * full.peak_bytes


def test_vllm_towers_shard_heads_and_mlp_and_keep_the_residual_whole():
    for model in ("Qwen/Qwen2.5-VL-7B-Instruct", "llava-hf/llava-1.5-7b-hf", "google/gemma-3-4b-pt"):
        cfg = catalog.find(model)["config"]
        vs = spec_from_config(cfg, cfg["model_type"]).vision
        one, two, many = (tower_layer_bytes(vs, 2, tp) for tp in (1, 2, 4096))
        assert many < two < one
        # what no rank shards: the layer input, the residual and the normed copy (3 widths)
        assert 3 * vs.hidden_size * 2 <= many <= 1.01 * 3 * vs.hidden_size * 2
        # vLLM's fused projections and bf16 rotary hold less than transformers' modules on one GPU
        assert one < tower_layer_bytes(vs, 2, impl="transformers")
