"""vLLM completed (issue #17 item 4; #13's hybrid KV cache manager): the KV planner against vLLM's own, defaults by
version, GPU and entry point, CUDA graphs by version, LoRA slots, data / expert parallelism, the pasted flags."""

import json
from pathlib import Path

import pytest

import vramscope
from vramscope.commandline import parse_command
from vramscope.engines.vllm import (GiB, batch_defaults, capture_sizes, kv_capacity, kv_groups, lora_buffer_bytes,
                                    resolved)
from vramscope.gpus import find_gpu as resolve_gpu
from vramscope.memory.kv_cache import parse_version
from vramscope.sources import resolve
from vramscope.workload import make_workload

REFERENCE = Path(__file__).resolve().parent.parent / "validation" / "reference" / "vllm_kv_cache_config.jsonl"
ALL_ROWS = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line and not line.startswith("#")]
ROWS = [r for r in ALL_ROWS if "pp" not in r]
PP_ROWS = [r for r in ALL_ROWS if "pp" in r]


def _reference_workload(row: dict):
    """The vLLM workload of a vllm_kv_cache_config.jsonl reference row."""
    return make_workload(engine="vllm", max_model_len=row["max_model_len"],
                         max_num_batched_tokens=row["max_num_batched_tokens"],
                         kv_dtype=None if row["kv_dtype"] == "bf16" else "fp8",
                         disable_hybrid_kv_cache_manager=row["disable_hybrid_kv_cache_manager"],
                         vllm_version=row["vllm_version"], num_gpus=row.get("tp", 1))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['vllm_version']}-{r['model'].split('/')[-1]}-"
                                                    f"{r['max_num_batched_tokens']}-{r['kv_dtype']}-"
                                                    f"{'nohybrid' if r['disable_hybrid_kv_cache_manager'] else 'hybrid'}"
                                                    f"-{r['available_bytes'] // GiB}G-tp{r.get('tp', 1)}")
def test_kv_planner_equals_vllms_own(row):
    """vLLM 0.11.0's and 0.33.0's own planners (their code run on CPU: bench/vllm_kv_reference.py) against
    vramscope's groups for the same model, batch and memory: the blocks, the tokens and concurrency vLLM logs, the
    number of groups and the memory it requires for one max_model_len request, all exact."""
    model = resolve(row["model"], hub=False)
    s = model.spec
    assert (s.num_layers, s.num_kv_heads, s.head_dim, s.sliding_window) == \
        (row["layers"], row["kv_heads"], row["head_dim"], row["sliding_window"])
    w = _reference_workload(row)
    v = parse_version(row["vllm_version"])
    g = kv_groups(model, w, 2.0, row["max_model_len"], version=v)
    assert g.needed_bytes() == row["needed_bytes"]
    blocks, tokens, conc = kv_capacity(g, row["available_bytes"], row["max_model_len"], v)
    if "num_blocks" in row and not (row.get("error") and v < (0, 21, 0)):
        assert blocks == row["num_blocks"]
        assert tokens == row["printed_tokens"]
        assert conc == pytest.approx(row["concurrency"], rel=1e-12)
        assert len(g.groups) == len(row["groups"]) and g.group_size == max(row["group_layers"])
    assert (g.needed_bytes() > row["available_bytes"]) == bool(row.get("error"))


@pytest.mark.parametrize("row", PP_ROWS, ids=lambda r: f"{r['vllm_version']}-{r['model'].split('/')[-1]}-pp{r['pp']}-"
                                                       f"{'nohybrid' if r['disable_hybrid_kv_cache_manager'] else 'hybrid'}"
                                                       f"-{r['kv_dtype']}")
def test_pipeline_stages_equal_vllms_own_planner(row):
    """Pipeline parallel: vLLM 0.11.0's and 0.33.0's own ``get_kv_cache_configs`` over the stages' layer specs
    (``get_pp_indices``'s split), each with its own free memory, against vramscope's per-stage groups: the layers
    per stage, each stage's pool block (its fullest group), the memory each checks, the common block count, the
    logged capacity and concurrency, and the KV bytes each stage allocates (shrunk to the minimum at 0.33)."""
    from vramscope.engines.vllm import pp_kv_plan, pp_partition

    model = resolve(row["model"], hub=False)
    w = _reference_workload(row)
    v = parse_version(row["vllm_version"])
    sizes = pp_partition(model.spec.num_layers, row["pp"])
    assert sizes == row["stage_layers"]
    bounds = [(sum(sizes[:i]), sum(sizes[:i + 1])) for i in range(len(sizes))]
    plans = [kv_groups(model, w, 2.0, row["max_model_len"], version=v, stage=b) for b in bounds]
    plan = pp_kv_plan(plans, row["available_bytes"], row["max_model_len"], v)
    assert list(plan.needed_bytes) == row["needed_bytes"]
    if row.get("error"):
        assert any(n > f for n, f in zip(plan.needed_bytes, row["available_bytes"]))
        return
    assert [g.group_size for g in plans] == [max(x) for x in row["stage_group_layers"]]
    assert len(plans[0].groups) == len(row["groups"])
    assert plan.num_blocks == row["num_blocks"]
    assert plan.concurrency == pytest.approx(row["concurrency"], rel=1e-12)
    assert list(plan.pool_bytes) == row["stage_kv_bytes"]
    # v0.11.0 logs each worker's own count before the minimum; the capacity is the smallest of those lines
    assert plan.tokens == (min(row["printed_tokens"]) if isinstance(row["printed_tokens"], list)
                           else row["printed_tokens"])


def test_pipeline_names_the_limiting_stage_and_splits_hybrid_groups():
    """gemma-3-27b over 2 stages: the hybrid manager's groups per stage (5 of each group's 10 layers), not every
    layer as full attention; the stage with the output head's logits has the least room and is named."""
    kw = dict(engine="vllm", pp=2, max_model_len=32768, gpus=["h100"])
    e = vramscope.estimate("gemma-3-27b-pt", **kw)
    st = e.engine["stages"]
    assert [s["layers"] for s in st] == [31, 31] and [s["kv_group_size"] for s in st] == [5, 5]
    per = e.engine["per_gpu"][0]
    assert per["busiest_stage"] == 1 and per["num_gpu_blocks"] == st[1]["num_gpu_blocks"] < st[0]["num_gpu_blocks"]
    off = vramscope.estimate("gemma-3-27b-pt", disable_hybrid_kv_cache_manager=True, **kw)
    assert off.engine["stages"][0]["kv_group_size"] == 31
    # (2048 × 31) / ((2048 + 6 × 1089) × 5) = 1.48: six sliding groups of 1,089 blocks (window 1,024 + 2 × 8,192)
    assert per["max_concurrency"] > 1.4 * off.engine["per_gpu"][0]["max_concurrency"]
    assert any(a.key == "a_vllm_pp" and a.params["layers"] == "31, 31" for a in e.assumptions)


def test_hybrid_manager_gives_sliding_models_more_room():
    """gpt-oss-20b on an H100 (vllm serve defaults there: 8192 batched tokens, two in flight): its 12
    sliding-window layers (window 128) keep 16,511 tokens per request (1,033 blocks) against 8,192 blocks in a full
    layer, so the same pool serves 16,384 / 9,225 = 1.78 times the 131k-token requests of the unified manager."""
    on = vramscope.estimate("openai/gpt-oss-20b", engine="vllm", gpus=["h100"])
    off = vramscope.estimate("openai/gpt-oss-20b", engine="vllm", gpus=["h100"], disable_hybrid_kv_cache_manager=True)
    a, b = on.engine["per_gpu"][0], off.engine["per_gpu"][0]
    assert a["kv_pool_bytes"] == b["kv_pool_bytes"]
    assert a["max_concurrency"] / b["max_concurrency"] == pytest.approx(16384 / 9225, rel=2e-3)
    assert on.engine["kv_cache_groups"] == ["full", "sliding"] and off.engine["kv_cache_groups"] == ["full"]
    assert on.engine["min_bytes"] < off.engine["min_bytes"]
    assert any(n.key == "a_vllm_hybrid" for n in on.assumptions)


def test_batch_defaults_by_gpu_entrypoint_and_version():
    """EngineArgs.get_batch_defaults (v0.33.0) / _set_default_args (v0.11.0)."""
    h100, a100, l40s, b200 = (resolve_gpu(n) for n in ("h100", "a100-80gb", "l40s", "b200"))
    v11, v33 = (0, 11, 0), (0, 33, 0)
    assert batch_defaults(v11, h100, "serve") == (8192, 1024) == batch_defaults(v33, h100, "serve")
    assert batch_defaults(v11, h100, "llm") == (16384, 1024)
    assert batch_defaults(v33, a100, "serve") == (2048, 256)  # "a100" in the name: the small tier
    assert batch_defaults(v33, l40s, "serve") == (2048, 256) and batch_defaults(v33, l40s, "llm") == (8192, 256)
    assert batch_defaults(v33, b200, "serve") == (16384, 1024) and batch_defaults(v11, b200, "serve") == (8192, 1024)
    w = resolved(make_workload(engine="vllm", max_model_len=4), l40s)
    assert (w.max_num_seqs, w.max_num_batched_tokens) == (256, 1024)  # at most max_num_seqs × max_model_len
    e = vramscope.estimate("llama-3.1-8b", engine="vllm", gpus=["h100"], vllm_entrypoint="llm")
    assert (e.engine["max_num_seqs"], e.engine["max_num_batched_tokens"]) == (1024, 16384)


def test_cuda_graphs_taken_from_the_pool_from_0_21():
    old = vramscope.estimate("llama-3.1-8b", engine="vllm", gpus=["l40s"], vllm_version="0.11.0")
    new = vramscope.estimate("llama-3.1-8b", engine="vllm", gpus=["l40s"], vllm_version="0.21.0")
    assert not old.engine["cuda_graphs_in_pool"] and new.engine["cuda_graphs_in_pool"]
    diff = old.engine["per_gpu"][0]["kv_pool_bytes"] - new.engine["per_gpu"][0]["kv_pool_bytes"]
    assert diff == new.engine["cuda_graph_bytes"] > 0
    assert capture_sizes(256, 2048)[-1] == 512 and len(capture_sizes(256, 2048)) == 3 + 31 + 17
    assert capture_sizes(8, 2048) == [1, 2, 4, 8, 16]


def test_lora_slots_equal_peft_adapter_size():
    """One adapter slot of rank 16 on every attention and MLP projection of Llama-3-8B holds as many values as
    peft's LoRA r=16 on all linear layers: 41,943,040 (checked against peft on the meta device in
    tests/test_analytic.py), in bf16."""
    m = resolve("meta-llama/Meta-Llama-3-8B", hub=False)
    w = make_workload(engine="vllm", enable_lora=True, max_loras=1, max_lora_rank=16)
    assert lora_buffer_bytes(m, w, 2.0) == 41_943_040 * 2
    w4 = make_workload(engine="vllm", enable_lora=True, max_loras=4, max_lora_rank=64)
    assert lora_buffer_bytes(m, w4, 2.0) == 41_943_040 * 2 * 16
    base = vramscope.estimate("llama-3-8b", engine="vllm", gpus=["h100"])
    lora = vramscope.estimate("llama-3-8b", engine="vllm", gpus=["h100"], enable_lora=True, max_loras=4,
                              max_lora_rank=64)
    assert base.engine["per_gpu"][0]["kv_pool_bytes"] - lora.engine["per_gpu"][0]["kv_pool_bytes"] == \
        41_943_040 * 2 * 16


def test_data_and_expert_parallel():
    tp2 = vramscope.estimate("mixtral-8x7b", engine="vllm", gpus=["h100"], num_gpus=2, parallelism="tp")
    dp2 = vramscope.estimate("mixtral-8x7b", engine="vllm", gpus=["h100"], num_gpus=2, parallelism="tp",
                             data_parallel_size=2)
    ep = vramscope.estimate("mixtral-8x7b", engine="vllm", gpus=["h100"], num_gpus=2, parallelism="tp",
                            data_parallel_size=2, enable_expert_parallel=True)
    assert dp2.engine["weights_bytes"] == tp2.engine["weights_bytes"]  # a replica per TP group
    # the routed experts (~96% of Mixtral) now spread over 4 GPUs instead of 2
    assert 0.5 < ep.engine["weights_bytes"] / tp2.engine["weights_bytes"] < 0.53
    assert dp2.engine["data_parallel_size"] == 2


def test_vllm_serve_paste_reads_the_new_flags():
    p = parse_command("vllm serve google/gemma-3-27b-it --enable-lora --max-loras 4 --max-lora-rank 64 "
                      "--max-cpu-loras 8 -dp 2 --enable-expert-parallel --block-size 32 "
                      "--disable-hybrid-kv-cache-manager --kv-cache-dtype fp8_e5m2 --enable-prefix-caching".split())
    assert p.options == {"enable_lora": True, "max_loras": 4, "max_lora_rank": 64, "data_parallel_size": 2,
                         "enable_expert_parallel": True, "block_size": 32, "disable_hybrid_kv_cache_manager": True,
                         "kv_dtype": "fp8_e5m2"}
    assert p.ignored == ["--max-cpu-loras 8", "--enable-prefix-caching"] and not p.unknown


def test_block_size_and_bad_version():
    from vramscope.errors import VramscopeError

    a = vramscope.estimate("llama-3.1-8b", engine="vllm", gpus=["h100"], block_size=32)
    assert a.engine["block_size"] == 32 and a.engine["per_gpu"][0]["kv_tokens"] % 32 == 0
    with pytest.raises(VramscopeError, match="vllm_version"):
        vramscope.estimate("llama-3.1-8b", engine="vllm", vllm_version="latest")


@pytest.mark.parametrize("rid,tokens,conc,tol", [
    # (record, logged "GPU KV cache size" / blocks × 16, logged concurrency, the error docs/accuracy.md states)
    ("vllm-issue10517-llama3.1-8b-instruct-3090-ctx20k", 31232, 1.56, 0.12),
    ("vllm-issue10517-llama3.1-8b-instruct-3090-ctx29k", 23648, 0.82, 0.19),
    ("vllm-pr17122-llama3.1-8b-instruct-l40s", 158656, 4.84, 0.28),
])
def test_published_logs_tokens_and_concurrency(rid, tokens, conc, tol):
    """vLLM's own logged token capacity and concurrency (validation/published.jsonl) against the estimate of the
    same run, within the error docs/accuracy.md reports for it (the profile peak and the unexplained L40S terms)."""
    from vramscope.api import estimate_resolved
    from vramscope.validate import _record_gpu, read_records, workload_from_record

    path = Path(__file__).resolve().parent.parent / "validation" / "published.jsonl"
    rec = next(r for r in read_records(path) if r["id"] == rid)
    assert rec["engine_stats"]["kv_cache_tokens"] == tokens and rec["engine_stats"]["max_concurrency"] == conc
    w = make_workload(**workload_from_record(rec))
    per = estimate_resolved(resolve(rec["model"], hub=False), w, _record_gpu(rec, w)).engine["per_gpu"][0]
    assert abs(per["kv_tokens"] / tokens - 1) < tol
    assert abs(per["max_concurrency"] / conc - 1) < tol
    assert per["fits_max_model_len"] == (conc >= 1)


def test_auto_dtype_downcasts_float32_checkpoints():
    """vLLM's --dtype auto (``_resolve_auto_dtype``, v0.33.0): a float32 config runs in bfloat16 on sm80+; on a
    V100 in float16, except the model types vLLM refuses in float16 (Gemma 2 stays float32)."""
    g4090 = vramscope.estimate("google/gemma-2-9b", engine="vllm", gpus=["rtx-4090"], max_model_len=4096)
    v100 = vramscope.estimate("google/gemma-2-9b", engine="vllm", gpus=["v100"], max_model_len=4096)
    assert v100.engine["weights_bytes"] == 2 * g4090.engine["weights_bytes"]
    assert any(n.key == "a_vllm_dtype_auto" for n in g4090.assumptions)
    assert not any(n.key == "a_vllm_dtype_auto" for n in v100.assumptions)
    given = vramscope.estimate("google/gemma-2-9b", engine="vllm", gpus=["rtx-4090"], max_model_len=4096,
                               dtype="fp32")
    assert given.engine["weights_bytes"] == v100.engine["weights_bytes"]
