"""SGLang's mamba state pool for hybrid and pure-SSM models (issue #13): vramscope's per-request state bytes, the
mamba pool's slots, the KV pool left to the attention layers and the running-request cap equal what SGLang
0.5.23's own code computes for the same transformers config (run on CPU from its wheel by
bench/sglang_state_reference.py: the config classes' mamba2_cache_params, KVCacheConfigurator's
_profile_available_bytes / _handle_max_mamba_cache / resolve_max_num_reqs, DefaultPoolConfigurator)."""

import json
from pathlib import Path

import pytest

import vramscope
from vramscope.engines.sglang import (has_mamba_pool, mamba_cache_per_req, mamba_ratio, mamba_split, ssm_dtype,
                                      state_pools)
from vramscope.memory import kv_cache
from vramscope.sources.base import ResolvedModel
from vramscope.sources.hf_config import spec_from_config
from vramscope.workload import make_workload

GiB = 2**30
REFERENCE = Path(__file__).resolve().parent.parent / "validation" / "reference" / "sglang_state_cache.jsonl"
ROWS = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line and not line.startswith("#")]


def _model(row):
    """The config as the bench gave it to SGLang: the installed transformers' defaults of the model type with the
    case's overrides (a config.json carries those keys; SGLang's group replication reads them)."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.AutoConfig.for_model(row["model_type"], **row["overrides"]).to_dict()
    cfg.update(row["overrides"], torch_dtype="bfloat16", architectures=[row["architecture"]])
    return ResolvedModel(spec=spec_from_config(cfg, row["model_type"]), kind="config", origin="test", params=1,
                         active_params=1, hf_config=cfg)


def _workload(row):
    tp = row["tensor_parallel_size"]
    kw = dict(parallelism="tp", num_gpus=tp) if tp > 1 else {}
    return make_workload(engine="sglang", context_length=row["context_len"], **row["server_args"], **kw)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['model_type']}-tp{r['tensor_parallel_size']}-"
                                                    + ("-".join(f"{k}={v}" for k, v in r["server_args"].items())
                                                       or "default"))
def test_state_pool_equals_sglangs_own(row):
    model = _model(row)
    assert has_mamba_pool(model)
    st = model.spec.state
    assert sum(st.has_kv(i) for i in range(len(st.kinds))) == row["attention_layers"]
    w = _workload(row)
    tp = row["tensor_parallel_size"]
    assert ssm_dtype(model, w) == row["ssm_dtype"] and row["conv_dtype"] == "bfloat16"
    assert mamba_cache_per_req(model, w, tp) == row["mamba_cache_per_req"]
    assert mamba_ratio(model, w) == row["mamba_ratio"]
    cell = kv_cache.kv_bytes_per_token(vramscope.engines.base.rank_spec(model, w), 2.0, row["attention_layers"],
                                       latent_mla=True)
    assert cell == row["cell_size"]
    weights = row["total_bytes"] - row["available_bytes"]
    o = {"max_total_tokens": None, "max_running_requests": row["server_args"].get("max_running_requests")}
    sp = state_pools(model, w, row["total_bytes"], weights, row["mem_fraction_static"], cell, tp, row["context_len"], o)
    assert sp.max_mamba_cache_size == row["max_mamba_cache_size"]
    assert sp.pool_bytes == row["mamba_pool_bytes"]
    assert sp.kv_budget_bytes == row["kv_budget_bytes"]
    assert sp.tokens == row["max_total_num_tokens"]
    assert sp.max_running_requests == row["max_running_requests"]


def test_split_rule():
    """The ratio split by hand: 0.9 / 1.9 of the rest, less one slot (the pool's padding slot comes on top)."""
    per = 32 * 2**20
    size, rest = mamba_split(19 * GiB, per, 0.9)
    assert size == int((19 * GiB * 0.9 / 1.9 - per) // per) == 287
    assert rest == pytest.approx(19 - 288 * per / GiB)
    assert mamba_split(19 * GiB, per, 0.9, max_mamba_cache_size=10)[0] == 10
    assert mamba_split(19 * GiB, per, 0.9, max_running=7, disable_radix_cache=True)[0] == 7


def test_estimate_hybrid_and_unsupported(tmp_path):
    """An estimate carries the mamba pool (its bytes in the serving phase's cache, the note), and a hybrid SGLang
    has no model for (Jamba) keeps keys and values on every layer with the note saying so."""
    cfg = {"model_type": "nemotron_h", "architectures": ["NemotronHForCausalLM"], "num_hidden_layers": 56,
           "hidden_size": 4480, "intermediate_size": 15680, "num_attention_heads": 40, "num_key_value_heads": 8,
           "head_dim": 128, "vocab_size": 131072, "mamba_num_heads": 128, "mamba_head_dim": 80, "n_groups": 8,
           "ssm_state_size": 128, "conv_kernel": 4, "torch_dtype": "bfloat16", "max_position_embeddings": 131072,
           "hybrid_override_pattern": "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-"}
    (tmp_path / "nano").mkdir()
    (tmp_path / "nano" / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "jamba").mkdir()
    (tmp_path / "jamba" / "config.json").write_text(json.dumps({"model_type": "jamba", "torch_dtype": "bfloat16"}))
    e = vramscope.estimate(str(tmp_path / "nano"), engine="sglang", gpus=["h100-sxm"])
    g = e.engine["per_gpu"][0]
    assert e.engine["mamba_cache_per_req"] == 27 * (3 * 12288 * 2 + 128 * 80 * 128 * 4)
    assert g["max_mamba_cache_size"] > 0 and g["mamba_pool_bytes"] == (g["max_mamba_cache_size"] + 1) * \
        e.engine["mamba_cache_per_req"]
    assert e.engine["cell_size"] == 4 * 8 * 128 * 2 * 2
    assert any(a.key == "a_sglang_mamba" for a in e.assumptions)
    half = vramscope.estimate(str(tmp_path / "nano"), engine="sglang", gpus=["h100-sxm"], mamba_ssm_dtype="bfloat16")
    assert half.engine["mamba_cache_per_req"] == 27 * (3 * 12288 * 2 + 128 * 80 * 128 * 2)
    jamba = vramscope.estimate(str(tmp_path / "jamba"), engine="sglang", gpus=["h100-sxm"])
    assert jamba.engine["mamba_cache_per_req"] == 0
    assert any(a.key == "a_sglang_no_mamba" for a in jamba.assumptions)


def test_published_cap_of_five_slots_per_request():
    """jpezzulli/sglang-rtxpro6000#5 (2026-09-14): with ``--max-mamba-cache-size 40`` SGLang reports
    ``max_running_requests=8 (40 / 5)``: a hybrid GDN model's radix cache with its extra buffer holds 5 state slots
    per running request (3 + 2 ping-pong), as ``_calculate_mamba_ratio`` gives for the extra-buffer architectures."""
    row = next(r for r in ROWS if r["model_type"] == "qwen3_next" and not r["server_args"])
    model = _model(row)
    w = make_workload(engine="sglang", context_length=row["context_len"], max_mamba_cache_size=40)
    o = {"max_total_tokens": None, "max_running_requests": None}
    sp = state_pools(model, w, row["total_bytes"], row["total_bytes"] - row["available_bytes"],
                     row["mem_fraction_static"], row["cell_size"], 1, row["context_len"], o)
    assert (sp.max_mamba_cache_size, sp.ratio, sp.max_running_requests) == (40, 5, 8)
