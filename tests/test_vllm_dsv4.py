"""DeepSeek-V4 under vLLM 0.33.0 (issue #13 item 3): vramscope's pool block, groups, blocks per request, needed
memory, block count, logged tokens and concurrency equal what vLLM 0.33.0's own cache layers and planner compute
(run on CPU by bench/vllm_dsv4_reference.py: DeepseekV4Attention's cache layers with the FlashMLA attention
class, their get_kv_cache_spec, Platform.update_block_size_for_backend, resolve_kv_cache_layout,
get_kv_cache_groups / get_kv_cache_config_from_groups, get_kv_cache_capacity)."""

import json
from pathlib import Path

import pytest

from conftest import requires_torch
from vramscope.engines import vllm_dsv4
from vramscope.engines.vllm import kv_capacity, kv_groups
from vramscope.memory.kv_cache import parse_version
from vramscope.sources import resolve
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

REFERENCE = Path(__file__).resolve().parent.parent / "validation" / "reference" / "vllm_dsv4_cache.jsonl"
ROWS = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line and not line.startswith("#")]
_MODELS: dict = {}


def _model(name):
    if name not in _MODELS:
        _MODELS[name] = resolve(name, hub=False)
    return _MODELS[name]


def _workload(row, **extra):
    tp = row["tensor_parallel_size"]
    kw = dict(parallelism="tp", num_gpus=tp) if tp > 1 else {}
    return make_workload(engine="vllm", max_model_len=row["max_model_len"], vllm_version=row["vllm_version"],
                         max_num_batched_tokens=row["max_num_batched_tokens"], **kw, **extra)


def test_reference_covers_both_models_tp_lengths_and_budgets():
    assert {r["model"] for r in ROWS} == {"deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Pro"}
    assert {r["tensor_parallel_size"] for r in ROWS} == {1, 8}
    assert len({r["max_model_len"] for r in ROWS}) >= 5 and len({r["available_bytes"] for r in ROWS}) >= 5
    assert any(r["needed_bytes"] > r["available_bytes"] for r in ROWS)  # one that vLLM refuses to start
    assert all(r["block_size"] == vllm_dsv4.BLOCK and r["cache_dtype"] == "fp8_ds_mla" for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['model'].split('-')[-1]}-{r['max_model_len']}-"
                                                    f"{r['max_num_batched_tokens']}-tp{r['tensor_parallel_size']}")
def test_dsv4_planner_equals_vllms_own(row):
    model = _model(row["model"])
    v = parse_version(row["vllm_version"])
    g = kv_groups(model, _workload(row), 2.0, row["max_model_len"], version=v)
    assert g.block == row["block_size"]
    assert g.pool_block == row["pool_block_bytes"]
    assert sorted(g.groups) == sorted(("full" if grp[2] == vllm_dsv4.BLOCK else "sliding", grp[4])
                                      for grp in row["groups"])
    assert g.per_request_blocks() == row["blocks_per_request"]
    assert g.needed_bytes() == row["needed_bytes"]
    blocks, tokens, conc = kv_capacity(g, row["available_bytes"], row["max_model_len"], v)
    assert blocks == row["num_blocks"]
    assert tokens == row["printed_tokens"]
    assert conc == pytest.approx(row["concurrency"], rel=1e-12)
    p = vllm_dsv4.plan(model.spec, row["max_model_len"], row["max_num_batched_tokens"])
    assert sorted(zip(p.group_bytes, p.group_layers)) == sorted((grp[3], grp[1]) for grp in row["groups"])
    assert p.specs == sum(s[-1] for s in row["specs"])


def test_dsv4_estimate_says_how_vllm_stores_it():
    import vramscope

    row = ROWS[0]
    e = vramscope.estimate(row["model"], engine="vllm", gpus=["h200"], max_model_len=row["max_model_len"],
                           max_num_batched_tokens=row["max_num_batched_tokens"])
    keys = [n.key for n in e.assumptions]
    assert "a_vllm_dsv4" in keys and "a_vllm_hybrid" not in keys
    assert e.engine["kv_blocks_per_request"] == row["blocks_per_request"]
    assert e.engine["block_size"] == vllm_dsv4.BLOCK
    assert e.engine["min_bytes"] > row["needed_bytes"]
