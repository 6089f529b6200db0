"""Tensor parallelism splits a meta-built inventory (architectures without a built-in layout) as it splits the
built-in layouts: the same model built both ways gives the same per-rank weights (memory/parallel.py
``rank_inventory``), and a meta-built model's weights per GPU shrink with the ranks."""

import pytest

from conftest import requires_torch
from vramscope.memory.parallel import tp_shard_spec
from vramscope.memory.weights import spec_weight_bytes
from vramscope.sources import meta_device, resolve


def _both(name, shrink=None):
    cfg = dict(resolve(name, hub=False).hf_config)
    if shrink:
        cfg.update(shrink)
    from vramscope.sources.hf_config import spec_from_config

    built = spec_from_config(cfg, name=name, origin="config.json")
    meta = meta_device.spec_from_meta(cfg, name, "config.json", cfg["model_type"], 0)
    assert meta.layout == "meta" and built.layout != "meta"
    return built, meta


@requires_torch
@pytest.mark.parametrize("name, shrink, tol", [
    ("meta-llama/Meta-Llama-3-8B", {"num_hidden_layers": 2}, 0.0),
    ("Qwen/Qwen1.5-MoE-A2.7B", {"num_hidden_layers": 2}, 0.0),
    # MLA: q_a_proj / kv_a_proj_with_mqa replicated, q_b_proj / kv_b_proj column-, o_proj row-parallel
    ("deepseek-ai/DeepSeek-V3", {"num_hidden_layers": 4, "first_k_dense_replace": 1}, 0.0),
])
@pytest.mark.parametrize("n", [2, 8])
def test_meta_inventory_splits_as_the_built_in_layout(name, shrink, tol, n):
    built, meta = _both(name, shrink)
    def saved(spec):  # what the split takes off one rank
        return spec_weight_bytes(spec, 2.0, "none").total - spec_weight_bytes(tp_shard_spec(spec, n), 2.0, "none").total

    assert saved(built) > 0 and abs(saved(meta) - saved(built)) <= tol * saved(built), (saved(built), saved(meta))


@pytest.mark.parametrize("name", ["deepseek-v4-flash", "mimo-v2-flash", "qwen3-next-80b-a3b"])
def test_meta_built_models_split_their_weights_over_tensor_parallel_ranks(name):
    import vramscope

    one = vramscope.estimate(name, engine="vllm", gpus=["h200"]).components["weights"]
    eight = vramscope.estimate(name, engine="vllm", gpus=["h200"], num_gpus=8).components["weights"]
    # routed experts dominate and split 8 ways; norms, routers and replicated latents stay whole
    assert one / 8 < eight < one / 7
