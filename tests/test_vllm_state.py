"""vLLM's state caches of recurrent / hybrid models (issue #13): vramscope's MambaSpec pages, raised block size,
groups, blocks, logged tokens, concurrency and needed memory equal what vLLM's own code computes for the same
transformers config (run on CPU by bench/vllm_state_reference.py: the model classes' state shapes and dtypes; at
0.11.0 HybridAttentionMambaModelConfig's block alignment and get_kv_cache_configs; at 0.33.0 the prefix-caching
'align' mode, Platform.update_block_size_for_backend, the mamba layers' own get_kv_cache_spec and the planner over
pipeline stages)."""

import json
from pathlib import Path

import pytest

from conftest import requires_torch
from vramscope.engines.vllm import (gdn_checkpoint, kv_capacity, kv_groups, mamba_blocks_per_request,
                                    mamba_cache_mode, mamba_state_bytes, pp_kv_plan, pp_partition)
from vramscope.memory.kv_cache import parse_version
from vramscope.sources.base import ResolvedModel
from vramscope.sources.hf_config import spec_from_config
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

REFERENCE = Path(__file__).resolve().parent.parent / "validation" / "reference" / "vllm_state_cache.jsonl"
ALL = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line and not line.startswith("#")]
ROWS = [r for r in ALL if r["vllm_version"] == "0.11.0"]
ROWS_V33 = [r for r in ALL if r["vllm_version"] == "0.33.0"]


def _model(row):
    cfg = {"model_type": row["model_type"], **row["overrides"], "torch_dtype": row["dtype"]}
    spec = spec_from_config(cfg, row["model_type"])
    return ResolvedModel(spec=spec, kind="config", origin="test", params=1, active_params=1)


def _workload(row):
    tp = row["tensor_parallel_size"]
    kw = dict(parallelism="tp", num_gpus=tp) if tp > 1 else {}
    return make_workload(engine="vllm", max_model_len=row["max_model_len"], vllm_version=row["vllm_version"],
                         mamba_ssm_cache_dtype=row["mamba_ssm_cache_dtype"], **kw)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['model_type']}-{r['max_model_len']}-"
                                                    f"{r['mamba_ssm_cache_dtype']}-tp{r['tensor_parallel_size']}")
def test_state_planner_equals_vllms_own(row):
    model = _model(row)
    st = model.spec.state
    assert st is not None
    assert sum(st.has_kv(i) for i in range(len(st.kinds))) == row["attention_layers"]
    assert sum(k in ("state", "hybrid", "hybrid_sliding") for k in st.kinds) == row["mamba_layers"]
    w = _workload(row)
    v = parse_version(row["vllm_version"])
    assert mamba_state_bytes(model.spec, w, 2.0, v)[0] == row["mamba_state_bytes"]
    g = kv_groups(model, w, 2.0, row["max_model_len"], version=v)
    if row["attention_layers"]:
        assert g.block == row["block_size"] == (row["logged_block_size"] or 16)
    assert g.page_bytes == row["mamba_page_bytes"]
    assert g.needed_bytes() == row["needed_bytes"]
    blocks, tokens, conc = kv_capacity(g, row["available_bytes"], row["max_model_len"], v)
    assert blocks == row["num_blocks"]
    assert tokens == row["printed_tokens"]
    assert conc == pytest.approx(row["concurrency"], rel=1e-12)
    assert len(g.groups) == len(row["groups"]) and g.group_size == max(row["group_layers"])
    assert [k for k, _ in g.groups] == ["full" if n == "FullAttentionSpec" else "state" for n in row["groups"]]


def test_reference_covers_prefix_caching_and_pipeline_stages():
    assert len(ROWS) >= 10 and len(ROWS_V33) >= 20
    assert {r["mamba_cache_mode"] for r in ROWS_V33} == {"none", "align"}
    assert {r["mamba_blocks_per_request"] for r in ROWS_V33} == {1, 2, 3}
    assert {r["pipeline_parallel_size"] for r in ROWS_V33} >= {1, 2, 3}
    assert any("error" in r for r in ROWS_V33)
    hopper = [r for r in ROWS_V33 if r.get("compute_capability") == "9.0"]
    assert {r["mamba_cache_mode"] for r in hopper} == {"none", "align"}
    assert all(r["block_size"] % 64 == 0 for r in hopper if r["mamba_cache_mode"] == "align")


@pytest.mark.parametrize("row", ROWS_V33, ids=lambda r: f"{r['model_type']}-{r['max_model_len']}-"
                                                        f"pc{r['enable_prefix_caching']}-tp{r['tensor_parallel_size']}-"
                                                        f"pp{r['pipeline_parallel_size']}-cc{r.get('compute_capability', '')}")
def test_v33_state_planner_equals_vllms_own(row):
    """vLLM 0.33.0: prefix caching (on by default for hybrid models) keeps mamba states in 'align' mode, two state
    blocks per request for MambaMixer, three for MambaMixer2 (its prefill checkpoint block); pipeline stages hold
    ``get_pp_indices``' layers of the whole model's groups, every stage at the smallest block count."""
    model = _model(row)
    w = make_workload(engine="vllm", max_model_len=row["max_model_len"], vllm_version=row["vllm_version"],
                      mamba_ssm_cache_dtype=row["mamba_ssm_cache_dtype"],
                      enable_prefix_caching=row["enable_prefix_caching"],
                      **(dict(parallelism="tp", num_gpus=row["tensor_parallel_size"])
                         if row["tensor_parallel_size"] > 1 else {}))
    v = parse_version(row["vllm_version"])
    spec = model.spec
    mode = mamba_cache_mode(spec, w, v)
    assert mode == row["mamba_cache_mode"]
    cc = row.get("compute_capability", "")  # the GPU vLLM's GDN kernel choice saw (Hopper: FlashInfer's)
    ckpt = gdn_checkpoint(spec, mode, cc)
    assert ckpt == (row["num_prefill_checkpoint_blocks"] == 1 and row["model_type"] == "qwen3_next")
    assert mamba_blocks_per_request(spec, mode) + ckpt == row["mamba_blocks_per_request"]
    assert mamba_state_bytes(spec, w, 2.0, v)[0] == row["mamba_state_bytes"]
    n, pp, max_len = len(spec.state.kinds), row["pipeline_parallel_size"], row["max_model_len"]
    assert n == row["layers"]
    plans, lo = [], 0
    for size in pp_partition(n, pp):
        plans.append(kv_groups(model, w, 2.0, max_len, version=v, stage=(lo, lo + size), cc=cc))
        lo += size
    g = plans[0]
    if row["attention_layers"]:
        assert g.block == row["block_size"]
    assert g.page_bytes == row["mamba_page_bytes"]
    assert [p.needed_bytes() for p in plans] == row["needed_bytes"]
    if "error" in row:  # vLLM refuses to start: a stage cannot hold one max_model_len request
        assert any(need > avail for need, avail in zip(row["needed_bytes"], row["available_bytes"]))
        return
    plan = pp_kv_plan(plans, row["available_bytes"], max_len, v)
    assert plan.num_blocks == row["num_blocks"]
    assert plan.tokens == row["printed_tokens"]
    assert plan.concurrency == pytest.approx(row["concurrency"], rel=1e-12)
    assert [p.group_size for p in plans] == [max(x) for x in row["stage_group_layers"]]
    assert list(plan.pool_bytes) == row["stage_kv_bytes"]
    assert sorted(k for k, _ in g.groups) == sorted("full" if n == "FullAttentionSpec" else "state"
                                                    for n in row["groups"])


def test_nemotron_nano_9b_v2_block_size_is_the_published_672():
    """vllm-project/vllm#24280 (2025-09-04, vLLM of the v0.10/v0.11 series): the hybrid manager's alignment "might
    cause large attention page sizes (672 tokens for nvidia/NVIDIA-Nemotron-Nano-9B-v2)". Its shape (as the model's
    config.json gives it, quoted alike by several public repositories: 56 layers, 4 attention, 128 Mamba2 heads of
    80, 8 groups, state 128, conv 4, 8 KV heads of 128): conv (3, 12,288) + SSM (128, 80, 128) in bf16 is a
    2,695,168-byte page, an attention token 4,096 bytes, so 16 × cdiv(2,695,168, 65,536) = 672."""
    cfg = {"model_type": "nemotron_h", "architectures": ["NemotronHForCausalLM"], "num_hidden_layers": 56,
           "hidden_size": 4480, "intermediate_size": 15680, "num_attention_heads": 40, "num_key_value_heads": 8,
           "head_dim": 128, "vocab_size": 131072, "mamba_num_heads": 128, "mamba_head_dim": 80, "n_groups": 8,
           "ssm_state_size": 128, "conv_kernel": 4, "torch_dtype": "bfloat16",
           "hybrid_override_pattern": "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-"}
    model = ResolvedModel(spec=spec_from_config(cfg, "nemotron-nano-9b-v2"), kind="config", origin="test",
                          params=1, active_params=1)
    st = model.spec.state
    assert (st.kinds.count("full"), st.kinds.count("state")) == (4, 27)
    w = make_workload(engine="vllm", max_model_len=131072, vllm_version="0.11.0")
    assert mamba_state_bytes(model.spec, w, 2.0, (0, 11, 0))[0] == 3 * 12288 * 2 + 128 * 80 * 128 * 2 == 2_695_168
    g = kv_groups(model, w, 2.0, 131072, version=(0, 11, 0))
    assert g.block == 672 and g.page_bytes == 672 * 2 * 8 * 128 * 2


@pytest.mark.parametrize("model_type, mixer", [("xlstm", "xLSTMLayer"), ("rwkv", "RwkvSelfAttention"),
                                               ("recurrent_gemma", "RecurrentGemmaRglru")])
def test_vllm_refuses_recurrent_architectures_its_registry_lacks(model_type, mixer, tmp_path, capsys):
    """vLLM 0.33.0's registry has no xLSTM, RWKV or RecurrentGemma architecture: one clear line, exit 2, both
    languages, instead of counting their states as mamba pages."""
    from vramscope.cli import main

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": model_type}))
    spec = spec_from_config({"model_type": model_type}, model_type)
    assert spec.state is not None and spec.state.mixer == mixer
    for lang, words in (("en", "does not run"), ("zh", "不支持")):
        assert main(["estimate", str(path), "--engine", "vllm", "--gpu", "h100", "--no-hub", "--lang", lang]) == 2
        err = capsys.readouterr().err
        line = err.strip().splitlines()[-1]  # torch may warn on stderr once, while the config is built
        assert line.startswith("vramscope") and words in line and mixer in line and "Traceback" not in err
    assert main(["estimate", str(path), "--engine", "transformers", "--gpu", "h100", "--no-hub"]) == 0
    capsys.readouterr()
