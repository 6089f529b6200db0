"""Hostile model shapes (issue #11): config.json values of the wrong JSON type or out of range, shapes that cannot
be real, ``--params`` counts and shape options that make no model, and the cost of an estimate.

Every case ends in one of two ways: one keyed error line naming the field and what is allowed (never quoting
more than 40 characters of what was there), or a sane estimate (:func:`hostile_util.assert_sane_estimate`).
The hypothesis tests start from the real catalog configs and mutate one to three fields, nested ones included,
to values of every JSON type. Hang guards (``pytest.mark.timeout``), never timed assertions.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_util import assert_clean, assert_sane_estimate, call_api, run_cli
from vramscope.api import estimate_resolved, load_model
from vramscope.errors import VramscopeError
from vramscope.model import tensors as T
from vramscope.model.limits import LIMITS, MIN_PARAMS, SHOWN_CHARS, shown
from vramscope.model.spec import MLASpec, ModelSpec, MoESpec
from vramscope.sources import catalog
from vramscope.sources.base import ResolvedModel
from vramscope.sources.hf_config import spec_from_config
from vramscope.sources.numbers import resolve_params
from vramscope.workload import make_workload

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                      HealthCheck.data_too_large])

ENTRIES = {e["id"]: e for e in catalog.entries()}


def cfg_of(name: str) -> dict:
    return json.loads(json.dumps(catalog.find(name)["config"]))


def resolved(cfg: dict, origin: str = "config.json") -> ResolvedModel:
    """The model ``sources/local.py`` makes of a parsed config.json."""
    spec = spec_from_config(cfg, name="hostile", origin=origin)
    return ResolvedModel(spec=spec, kind="config", origin=origin, params=spec.params,
                         active_params=spec.active_params, hf_config=cfg)


def refused(cfg: dict) -> str:
    with pytest.raises(VramscopeError) as e:
        spec_from_config(cfg, name="hostile", origin="config.json")
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg
    for lang in ("en", "zh"):
        assert not re.search(r"\{[a-z_]+\}", e.value.render(lang)), e.value.render(lang)  # every placeholder filled
    return msg


WORKLOADS = (dict(), dict(task="finetune", method="lora"), dict(task="pretrain"), dict(engine="vllm"),
             dict(engine="llama.cpp"))


def estimate_all(cfg: dict) -> None:
    model = resolved(cfg)
    for wl in WORKLOADS:
        outcome, est = call_api(estimate_resolved, model, make_workload(**wl))
        if outcome == "answer":
            assert_sane_estimate(est)


# ---- class 1: wrong JSON types, named by key ----------------------------------------------------------------

LLAMA, MIXTRAL, GEMMA3, DSV2, QWEN2, FALCON, T5 = ("llama-3-8b", "mixtral-8x7b", "gemma-3-4b", "deepseek-v2-lite",
                                                   "qwen2.5-7b", "falcon-7b", "t5-base")

TYPE_CASES = [
    (LLAMA, {"num_hidden_layers": "abc"}, "config.json num_hidden_layers: 'abc' is not a whole number; use 1 to 1024"),
    (LLAMA, {"num_hidden_layers": 32.5}, "num_hidden_layers: '32.5' is not a whole number"),
    (LLAMA, {"num_hidden_layers": True}, "num_hidden_layers: 'true' is not a whole number"),
    (LLAMA, {"num_hidden_layers": [32]}, "num_hidden_layers: '[32]' is not a whole number"),
    (LLAMA, {"num_hidden_layers": {"n": 32}}, "num_hidden_layers: '{\"n\": 32}' is not a whole number"),
    (LLAMA, {"num_attention_heads": 32.5}, "num_attention_heads: '32.5' is not a whole number; use 1 to 16384"),
    (LLAMA, {"num_attention_heads": False}, "num_attention_heads: 'false' is not a whole number"),
    (LLAMA, {"num_attention_heads": "32"}, "num_attention_heads: '32' is not a whole number"),
    (LLAMA, {"num_key_value_heads": 8.5}, "num_key_value_heads: '8.5' is not a whole number"),
    (LLAMA, {"hidden_size": float("nan")}, "hidden_size: 'nan' is not a whole number"),
    (LLAMA, {"hidden_size": float("inf")}, "hidden_size: 'inf' is not a whole number"),
    (LLAMA, {"vocab_size": "128256"}, "vocab_size: '128256' is not a whole number"),
    (LLAMA, {"intermediate_size": [1, 2]}, "intermediate_size: '[1, 2]' is not a whole number"),
    (LLAMA, {"head_dim": "128"}, "head_dim: '128' is not a whole number"),
    (LLAMA, {"max_position_embeddings": "8k"}, "max_position_embeddings: '8k' is not a whole number"),
    (LLAMA, {"sliding_window": "4096"}, "sliding_window: '4096' is not a whole number"),
    (LLAMA, {"sliding_window": True}, "sliding_window: 'true' is not a whole number"),
    (LLAMA, {"layer_types": 5}, "layer_types: '5' is not 32 entries"),
    (LLAMA, {"layer_types": "full_attention"}, "layer_types: 'full_attention' is not 32 entries"),
    (LLAMA, {"layer_types": ["full_attention"] * 31}, "layer_types"),
    (LLAMA, {"layer_types": ["banana"] * 32}, "layer_types: '<a list of 32 items>' is not 32 entries"),
    (LLAMA, {"layer_types": [1] * 32}, "layer_types"),
    (LLAMA, {"quantization_config": "gptq"}, "quantization_config: 'gptq' is not a JSON object"),
    (LLAMA, {"quantization_config": [1]}, "quantization_config: '[1]' is not a JSON object"),
    (LLAMA, {"quantization_config": {"quant_method": 4}}, "quantization_config.quant_method: '4' is not a string"),
    (LLAMA, {"architectures": {"LlamaForCausalLM": 1}}, "architectures: '{\"LlamaForCausalLM\": 1}' is not a list"),
    (LLAMA, {"architectures": "LlamaForCausalLM"}, "architectures: 'LlamaForCausalLM' is not a list of strings"),
    (LLAMA, {"architectures": [1]}, "architectures: '[1]' is not a list of strings"),
    (LLAMA, {"rope_scaling": "linear"}, "rope_scaling: 'linear' is not a JSON object"),
    (LLAMA, {"rope_scaling": {"rope_type": "llama3", "factor": "8"}}, "rope_scaling.factor: '8' is not a number"),
    (LLAMA, {"rope_scaling": {"rope_type": 3}}, "rope_scaling.rope_type: '3' is not a string"),
    (LLAMA, {"rope_scaling": {"factor": -1.0}}, "rope_scaling.factor: -1.0 is too small"),
    (LLAMA, {"tie_word_embeddings": "false"}, "tie_word_embeddings: 'false' is not true or false"),
    (LLAMA, {"tie_word_embeddings": 0}, "tie_word_embeddings: '0' is not true or false"),
    (LLAMA, {"attention_bias": "yes"}, "attention_bias: 'yes' is not true or false"),
    (LLAMA, {"mlp_bias": 1}, "mlp_bias: '1' is not true or false"),
    (LLAMA, {"torch_dtype": 16}, "torch_dtype: '16' is not a string"),
    (LLAMA, {"hidden_act": ["silu"]}, "hidden_act: '[\"silu\"]' is not a string"),
    (LLAMA, {"model_type": 7}, "model_type: '7' is not a string"),
    (LLAMA, {"text_config": "llama"}, "text_config: 'llama' is not a JSON object"),
    (LLAMA, {"vision_config": 3}, "vision_config: '3' is not a JSON object"),
    (GEMMA3, {"text_config": "gemma3_text"}, "text_config: 'gemma3_text' is not a JSON object"),
    (GEMMA3, {"text_config": []}, "text_config: '[]' is not a JSON object"),
    (GEMMA3, {"vision_config": ["siglip"]}, "vision_config: '[\"siglip\"]' is not a JSON object"),
    (MIXTRAL, {"num_local_experts": "8"}, "num_local_experts: '8' is not a whole number"),
    (MIXTRAL, {"num_experts_per_tok": 2.5}, "num_experts_per_tok: '2.5' is not a whole number"),
    (QWEN2, {"use_sliding_window": "false"}, "use_sliding_window: 'false' is not true or false"),
    (QWEN2, {"use_sliding_window": True, "max_window_layers": "28"}, "max_window_layers: '28' is not a whole number"),
    (DSV2, {"q_lora_rank": "1536"}, "q_lora_rank: '1536' is not a whole number"),
    (DSV2, {"kv_lora_rank": [512]}, "kv_lora_rank: '[512]' is not a whole number"),
    (FALCON, {"num_ln_in_parallel_attn": "2"}, "num_ln_in_parallel_attn: '2' is not a whole number"),
    (FALCON, {"multi_query": "true"}, "multi_query: 'true' is not true or false"),
    (T5, {"feed_forward_proj": 1}, "feed_forward_proj: '1' is not a string"),
    ("gemma-2-9b", {"attn_logit_softcapping": "50"}, "attn_logit_softcapping: '50' is not a number"),
    ("qwen1.5-moe-a2.7b", {"mlp_only_layers": "0"}, "mlp_only_layers: '0' is not a list of layer numbers"),
    ("qwen1.5-moe-a2.7b", {"mlp_only_layers": [0, 2000]}, "mlp_only_layers: '[0, 2000]' is not a list of layer"),
    ("qwen1.5-moe-a2.7b", {"decoder_sparse_step": 0}, "decoder_sparse_step: 0 is too small"),
]


@pytest.mark.parametrize("name,mutation,expected", TYPE_CASES,
                         ids=[f"{n}-{next(iter(m))}-{i}" for i, (n, m, _) in enumerate(TYPE_CASES)])
def test_wrong_json_types_are_one_keyed_line(name, mutation, expected):
    cfg = {**cfg_of(name), **mutation}
    msg = refused(cfg)
    assert expected in msg, msg
    assert msg.startswith("config.json "), msg


def test_nested_keys_are_named_with_their_object():
    cfg = cfg_of(GEMMA3)
    cfg["text_config"] = {**cfg["text_config"], "hidden_size": -4}
    assert "config.json text_config.hidden_size: -4 is too small; use 1 to 131072" in refused(cfg)
    cfg = cfg_of(GEMMA3)
    cfg["vision_config"] = {**cfg["vision_config"], "patch_size": "14"}
    assert "vision_config.patch_size: '14' is not a whole number" in refused(cfg)
    cfg = cfg_of(GEMMA3)
    cfg["vision_config"] = {**cfg["vision_config"], "patch_size": 1000, "image_size": 896}
    assert "vision_config.image_size: 896 is too small" in refused(cfg)
    cfg = cfg_of(GEMMA3)
    cfg["text_config"] = {**cfg["text_config"], "layer_types": ["full_attention"]}
    assert "text_config.layer_types" in refused(cfg)


def test_a_whole_float_counts_as_the_integer():
    a = spec_from_config({**cfg_of(LLAMA), "num_hidden_layers": 32.0, "hidden_size": 4096.0}, "x")
    b = spec_from_config(cfg_of(LLAMA), "x")
    assert a.params == b.params and a.num_layers == 32


# ---- messages never echo long content -------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["A" * 100_000, "\n" * 5000 + "x", "é中文🙂" * 5000, ["x" * 1000] * 10_000,
                                   {str(i): i for i in range(10_000)}, [[[[[[1]]]]]] * 50, 10**4000, -(10**400),
                                   "\x00\x1b[31mred", 1e308])
@pytest.mark.parametrize("key", ["num_hidden_layers", "sliding_window", "layer_types", "architectures",
                                 "quantization_config", "torch_dtype", "rope_scaling", "model_type"])
def test_messages_quote_at_most_40_characters(key, value):
    cfg = {**cfg_of(LLAMA), key: value}
    outcome, e = call_api(spec_from_config, cfg, "hostile")
    if outcome == "answer":  # e.g. 1e308 as a sliding window: "no window"
        return
    msg = str(e)
    assert len(msg) < 400 and "\n" not in msg and "\x1b" not in msg and "\x00" not in msg, msg
    quoted = re.findall(r"'([^']*)'", msg)
    assert all(len(q) <= SHOWN_CHARS + 1 for q in quoted), msg


def test_shown_is_bounded_for_anything():
    for v in (None, True, 0, -1, 10**5000, 1.5, float("nan"), "x" * 10**6, [1] * 10**6, {"a": [1] * 10**6},
              object(), b"bytes", ("t",), [{"a": "b" * 100}]):
        text = shown(v)
        assert len(text) <= SHOWN_CHARS + 1 and text.isprintable(), (v if not isinstance(v, (str, list)) else "", text)


# ---- class 2: sizes beyond any real model; bounded cost -------------------------------------------------------

RANGE_CASES = [
    (LLAMA, "num_hidden_layers", 10**6, "num_hidden_layers: 1000000 is more than any real model has"),
    (LLAMA, "num_hidden_layers", 10**9, "use 1 to 1024"),
    (LLAMA, "num_hidden_layers", 0, "num_hidden_layers: 0 is too small; use 1 to 1024"),
    (LLAMA, "num_hidden_layers", -3, "num_hidden_layers: -3 is too small"),
    (LLAMA, "num_hidden_layers", 1e300, "num_hidden_layers: 1e+300 is more than any real model has"),
    (LLAMA, "hidden_size", 131073, "hidden_size: 131073 is more than any real model has"),
    (LLAMA, "num_attention_heads", 16385, "num_attention_heads: 16385 is more than"),
    (LLAMA, "head_dim", 8193, "head_dim: 8193 is more than"),
    (LLAMA, "head_dim", -1, "head_dim: -1 is too small; use 0 to 8192"),
    (LLAMA, "intermediate_size", 10**6 + 1, "intermediate_size: 1000001 is more than"),
    (LLAMA, "intermediate_size", 0, "intermediate_size: 0 is too small"),
    (LLAMA, "vocab_size", 10**7 + 1, "vocab_size: 10000001 is more than"),
    (LLAMA, "vocab_size", 0, "vocab_size: 0 is too small"),
    (LLAMA, "max_position_embeddings", 2**27 + 1, "max_position_embeddings: 134217729 is more than"),
    (LLAMA, "max_position_embeddings", -1, "max_position_embeddings: -1 is too small"),
    (MIXTRAL, "num_local_experts", 8193, "num_local_experts: 8193 is more than"),
    (MIXTRAL, "num_local_experts", -8, "num_local_experts: -8 is too small; use 1 to 8192"),
    (MIXTRAL, "num_local_experts", 0, "num_local_experts: 0 is too small"),
    (MIXTRAL, "num_experts_per_tok", 0, "num_experts_per_tok: 0 is too small"),
    (DSV2, "n_routed_experts", -1, "n_routed_experts: -1 is too small"),
    (DSV2, "first_k_dense_replace", 10**6, "first_k_dense_replace: 1000000 is more than"),
    (QWEN2, "max_window_layers", -1, "max_window_layers: -1 is too small"),
]


@pytest.mark.parametrize("name,key,value,expected", RANGE_CASES,
                         ids=[f"{n}-{k}-{v}" for n, k, v, _ in RANGE_CASES])
@pytest.mark.timeout(20)
def test_sizes_outside_the_limits_are_refused(name, key, value, expected):
    extra = {"use_sliding_window": True} if key == "max_window_layers" else {}
    msg = refused({**cfg_of(name), **extra, key: value})
    assert expected in msg, msg


def test_the_limits_table_is_far_above_the_real_maxima():
    structural = {"norms_per_layer"}  # a layout fact (1 to 4 norms), not a size
    for field, lim in LIMITS.items():
        assert lim.minimum <= lim.maximum, field
        m = re.match(r"\d+", lim.real)
        assert m, (field, lim.real)
        if field not in structural:
            assert lim.maximum >= 4 * int(m.group()), f"{field}: {lim.maximum} is not well above {lim.real}"
    assert MIN_PARAMS <= 102_714  # sshleifer/tiny-gpt2, the smallest real LM we know of, stays allowed


def test_every_catalog_model_is_inside_the_limits():
    """The limits refuse no real model: each catalog shape, and its largest values, stay inside them."""
    worst: Counter = Counter()
    for e in catalog.entries():
        s = spec_from_config(e["config"], e["id"])
        for field in ("num_layers", "hidden_size", "num_heads", "head_dim", "intermediate_size", "vocab_size",
                      "max_position_embeddings"):
            worst[field] = max(worst[field], getattr(s, field))
    for field, value in worst.items():
        assert value <= LIMITS[field].maximum // 4, (field, value)


# the cost of an estimate does not grow with the layers: hang guards, not timed assertions

def big(name: str, layers: int = 1024, **extra) -> dict:
    cfg = {**cfg_of(name), "num_hidden_layers": layers, **extra}
    if "text_config" in cfg:
        cfg["text_config"] = {**cfg["text_config"], "num_hidden_layers": layers}
    return cfg


BIG_CONFIGS = {
    "llama": big(LLAMA),
    "mixtral": big(MIXTRAL),
    "qwen2-moe-alternating": big("qwen1.5-moe-a2.7b", decoder_sparse_step=2),
    "deepseek-v2-lite": big(DSV2, first_k_dense_replace=500),
    "gemma-3-4b (vision)": big(GEMMA3),
    "gemma-2-9b": big("gemma-2-9b"),
    "t5": big(T5, num_decoder_layers=1000),
    "gpt2": big("gpt2", n_layer=1024),
    "bert": big("bert-base-uncased"),
    "falcon": big(FALCON),
    "phi-2": big("phi-2"),
}

BIG_WORKLOADS = [
    dict(), dict(seq=131072), dict(task="finetune", method="lora"), dict(task="finetune", method="qlora"),
    dict(task="finetune", method="freeze", frozen_layers=1000), dict(task="pretrain", grad_checkpointing=True),
    dict(task="pretrain", num_gpus=512, pp=512, grad_accum=1024), dict(task="pretrain", num_gpus=8, parallelism="zero3"),
    dict(task="pretrain", num_gpus=8, parallelism="fsdp"), dict(engine="vllm"), dict(engine="llama.cpp"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", list(BIG_CONFIGS))
def test_a_1024_layer_config_estimates_within_a_hang_guard(name):
    model = resolved(BIG_CONFIGS[name])
    assert model.spec.num_layers == 1024
    answers = 0
    for wl in BIG_WORKLOADS:
        outcome, est = call_api(estimate_resolved, model, make_workload(**wl))
        if outcome == "answer":
            assert_sane_estimate(est)
            answers += 1
    assert answers >= 3, name


@pytest.mark.timeout(20)
@pytest.mark.parametrize("layers", [1025, 10**6, 10**9, 10**18])
def test_more_layers_than_any_real_model_are_refused_at_once(layers):
    assert "is more than any real model has" in refused(big(LLAMA, layers))


@pytest.mark.timeout(20)
def test_the_grouped_inventory_does_not_hold_a_tensor_per_layer():
    spec = resolved(BIG_CONFIGS["llama"]).spec
    assert len(T.groups(spec)) < 20
    assert T.count_params(spec) == sum(t.numel for t in T.tensors(spec))


def _alternating_moe() -> ModelSpec:
    return ModelSpec(name="alt", model_type="qwen2_moe", num_layers=37, hidden_size=64, num_heads=4, num_kv_heads=2,
                     head_dim=16, intermediate_size=96, vocab_size=1000, qkv_bias=True,
                     moe=MoESpec(num_experts=8, experts_per_token=2, expert_intermediate_size=32,
                                 shared_intermediate_size=48, shared_expert_gate=True,
                                 dense_layers=tuple(i for i in range(37) if i % 3 == 0 or i in (7, 8))))


@pytest.mark.parametrize("spec", [resolved(cfg_of(e)).spec for e in ENTRIES] + [_alternating_moe()],
                         ids=list(ENTRIES) + ["alternating-moe"])
def test_grouped_and_per_layer_inventories_hold_the_same_numbers(spec):
    full = T.tensors(spec)
    assert T.count_params(spec) == sum(t.numel for t in full)
    per_layer: dict[int, int] = {}
    for t in full:
        if t.layer is not None:
            per_layer[t.layer] = per_layer.get(t.layer, 0) + t.numel
    assert T.largest_layer(spec) == max(per_layer.values())
    n = spec.num_layers
    for lo, hi in ((0, 1), (0, n // 2), (n // 3, n - 1), (0, n), (n - 1, n), (5, 5)):
        assert T.params_in_layers(spec, lo, hi) == sum(per_layer.get(i, 0) for i in range(lo, hi)), (lo, hi)
    a = Counter((t.role, t.module, t.shape, t.count, t.linear, t.layer is None) for t in full)
    b: Counter = Counter()
    for g in T.groups(spec):
        t = g.tensor
        b[(t.role, t.module, t.shape, t.count, t.linear, t.layer is None)] += g.repeat
    assert a == b


def test_layer_sets_count_runs():
    s = T.LayerSet.of([0, 1, 2, 5, 7, 8])
    assert [(r.start, r.stop) for r in s.runs] == [(0, 3), (5, 6), (7, 9)] and s.count == 6
    assert [s.below(k) for k in range(11)] == [0, 1, 2, 3, 3, 3, 4, 4, 5, 6, 6]
    assert s.between(2, 8) == 3 and s.between(8, 2) == 0 and T.LayerSet(()).below(5) == 0


# ---- class 3: shapes that cannot be real, whatever the source --------------------------------------------------

CONSISTENCY_CASES = [
    (LLAMA, {"hidden_size": 16}, "num_attention_heads: hidden size 16 over 32 attention heads gives a head size of 0"),
    (FALCON, {"hidden_size": 8}, "hidden size 8 over 71 attention heads gives a head size of 0"),
    (LLAMA, {"num_key_value_heads": 64}, "num_key_value_heads: 64 key/value heads do not divide the 32 attention heads"),
    (LLAMA, {"num_key_value_heads": 3}, "3 key/value heads do not divide the 32 attention heads; use a divisor of 32"),
    (LLAMA, {"num_key_value_heads": 0}, "num_key_value_heads: 0 is too small"),
    (MIXTRAL, {"num_experts_per_tok": 9}, "num_experts_per_tok: 9 experts per token is more than the 8 experts"),
    (DSV2, {"num_experts_per_tok": 65}, "num_experts_per_tok: 65 experts per token is more than the 64 experts"),
    (LLAMA, {"sliding_window": 0}, "sliding_window: 0 is too small"),
    (LLAMA, {"sliding_window": -4096}, "sliding_window: -4096 is too small"),
    ("mistral-7b-v0.1", {"sliding_window": -1}, "sliding_window: -1 is too small"),
    (DSV2, {"kv_lora_rank": 0}, "kv_lora_rank: 0 is too small"),
    (DSV2, {"q_lora_rank": 0}, "q_lora_rank: 0 is too small"),
    (DSV2, {"qk_rope_head_dim": 0}, "qk_rope_head_dim: 0 is too small"),
    (DSV2, {"v_head_dim": -128}, "v_head_dim: -128 is too small"),
    (DSV2, {"moe_intermediate_size": 0}, "moe_intermediate_size: 0 is too small"),
    ("gpt2", {"n_positions": 0}, "n_positions: 0 is too small"),
    (T5, {"num_decoder_layers": 0}, "num_decoder_layers: 0 is too small"),
    (LLAMA, {"vocab_size": 10**7, "hidden_size": 131072, "num_hidden_layers": 1024, "num_attention_heads": 1024,
             "num_key_value_heads": 1024, "intermediate_size": 10**6}, "parameters: "),
]


@pytest.mark.parametrize("name,mutation,expected", CONSISTENCY_CASES,
                         ids=[f"{n}-{'-'.join(m)}" for n, m, _ in CONSISTENCY_CASES])
def test_shapes_that_cannot_be_real_are_refused(name, mutation, expected):
    msg = refused({**cfg_of(name), **mutation})
    assert expected in msg, msg


BASE = dict(name="x", model_type="llama", num_layers=2, hidden_size=64, num_heads=4, num_kv_heads=2, head_dim=16,
            intermediate_size=128, vocab_size=1000, source="model.gguf")


@pytest.mark.parametrize("change,expected", [
    (dict(head_dim=0), "model.gguf head_dim: 0 is too small"),
    (dict(num_kv_heads=8), "model.gguf num_kv_heads: 8 key/value heads do not divide the 4 attention heads"),
    (dict(num_kv_heads=3), "num_kv_heads: 3 key/value heads do not divide"),
    (dict(num_layers=10**6), "num_layers: 1000000 is more than any real model has"),
    (dict(num_layers=2.0), "num_layers: '2.0' is not a whole number"),
    (dict(num_heads=True), "num_heads: 'true' is not a whole number"),
    (dict(vocab_size=0), "vocab_size: 0 is too small"),
    (dict(intermediate_size=-5), "intermediate_size: -5 is too small"),
    (dict(sliding_window=0), "sliding_window: 0 is too small"),
    (dict(sliding_window=-1), "sliding_window: -1 is too small"),
    (dict(layer_types=("full_attention",)), "layer_types: "),
    (dict(layer_types=("full_attention", "chunky")), "layer_types: "),
    (dict(moe=MoESpec(num_experts=4, experts_per_token=5, expert_intermediate_size=8)),
     "experts_per_token: 5 experts per token is more than the 4 experts"),
    (dict(moe=MoESpec(num_experts=-4, experts_per_token=1, expert_intermediate_size=8)), "num_experts: -4"),
    (dict(moe=MoESpec(num_experts=4, experts_per_token=1, expert_intermediate_size=0)), "expert_intermediate_size: 0"),
    (dict(moe=MoESpec(num_experts=4, experts_per_token=1, expert_intermediate_size=8, dense_layers=(5,))),
     "dense_layers: '[5]' is not a list of layer numbers from 0 to 1"),
    (dict(mla=MLASpec(q_lora_rank=0, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8)),
     "q_lora_rank: 0 is too small"),
    (dict(mla=MLASpec(q_lora_rank=None, kv_lora_rank=0, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8)),
     "kv_lora_rank: 0 is too small"),
    (dict(layout="mamba"), "layout: 'mamba' is not allowed"),
    (dict(kind="diffusion"), "kind: 'diffusion' is not allowed"),
])
def test_model_spec_refuses_what_cannot_be_real_from_any_source(change, expected):
    """ModelSpec itself validates: GGUF metadata, safetensors names and --params build it too."""
    with pytest.raises(VramscopeError) as e:
        ModelSpec(**{**BASE, **change})
    assert expected in str(e.value), str(e.value)


def test_derived_specs_skip_validation_and_valid_specs_pass():
    spec = ModelSpec(**BASE)
    assert spec.params > 0 and spec.active_params == spec.params
    rank = spec.derived(num_heads=1, num_kv_heads=1, intermediate_size=64)
    assert rank.num_heads == 1 and rank.hidden_size == 64
    with pytest.raises(TypeError):
        spec.derived(no_such_field=1)


@pytest.mark.parametrize("name", [LLAMA, MIXTRAL, DSV2, GEMMA3, "gemma-2-9b", "mistral-7b-v0.1"])
def test_sane_answers_for_real_models_every_workload(name):
    """No negative KV cache, active <= total, positive totals: the answers hostile shapes used to get wrong."""
    model = resolved(cfg_of(name))
    assert 0 < model.active_params <= model.params
    for wl in WORKLOADS + (dict(cache="static", seq=100_000),):
        outcome, est = call_api(estimate_resolved, model, make_workload(**wl))
        assert outcome == "answer", est
        assert_sane_estimate(est)
        if wl.get("task", "inference") == "inference" and "kv_cache" in est.components:
            assert est.components["kv_cache"] > 0


# ---- class 4: --params and its shape options ---------------------------------------------------------------------

@pytest.mark.parametrize("params,shape,expected", [
    (0, {}, "--params: 0 parameters is fewer than the smallest real language model"),
    (1, {}, "fewer than the smallest real language model"),
    (99_999, {}, "use at least 100,000"),
    (1_000_000, {}, "--params: the shape (nominal: layers 1, hidden 128"),
    (7 * 10**9, dict(layers=1000), "alone holds 201,596,932,096 parameters, more than the 7,000,000,000 given"),
    (7 * 10**9, dict(hidden=65536), "alone holds"),
    (7 * 10**9, dict(layers=2000), "--layers: 2000 is more than any real model has"),
    (7 * 10**9, dict(layers=0), "--layers: 0 is too small"),
    (7 * 10**9, dict(vocab=10**8), "--vocab: 100000000 is more than"),
    (7 * 10**9, dict(heads=8192), "--heads: hidden size 4096 over 8192 attention heads gives a head size of 0"),
    (7 * 10**9, dict(kv_heads=5), "--kv-heads: 5 key/value heads do not divide the 32 attention heads"),
    (7 * 10**9, dict(kv_heads=64), "--kv-heads: 64 key/value heads do not divide the 32 attention heads"),
    (7 * 10**9, dict(heads=48, kv_heads=32), "--kv-heads: 32 key/value heads do not divide the 48"),
])
def test_params_that_make_no_model_are_refused(params, shape, expected):
    with pytest.raises(VramscopeError) as e:
        resolve_params(params, **shape)
    assert expected in str(e.value), str(e.value)


@pytest.mark.parametrize("params,shape", [
    ("7B", {}), ("100K", dict(hidden=2, vocab=20000, layers=2, heads=1)), ("70B", dict(layers=80, hidden=8192)),
    ("47B", dict(layers=32, hidden=4096, kv_heads=8)),  # Mixtral: an MoE holds more than its dense shape shows
    ("5M", {}), ("1.5T", {}), ("7B", dict(heads=32, head_dim=128, kv_heads=8)),
])
def test_params_with_a_consistent_shape_answer(params, shape):
    model = load_model(params=params, **shape)
    assert model.params >= MIN_PARAMS and model.spec.params <= 2 * model.params
    for wl in (dict(), dict(task="pretrain")):
        assert_sane_estimate(estimate_resolved(model, make_workload(**wl)))


def test_params_cli_is_one_line():
    for argv in (["--params", "0.5"], ["--params", "50K"], ["--params", "1M"], ["--params", "7B", "--layers", "1000"],
                 ["--params", "7B", "--kv-heads", "5"], ["--params", "7B", "--heads", "9999"]):
        rc, out, err = run_cli(["estimate", *argv, "--no-hub"])
        assert_clean(rc, out, err, argv)
        assert rc == 2, (argv, out)


# ---- fuzz: real configs, one to three fields made hostile ------------------------------------------------------

HOSTILE = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, -1, -4096, 1, 2, 3, 7, 10**9, 10**12, 2**63, 10**400, 1025, 131073, 16385, 8193, 10**7 + 1]),
    st.integers(-10, 300), st.integers(-2**70, 2**70),
    st.sampled_from([0.0, -1.0, 0.5, 32.5, 32.0, 1e308, float("nan"), float("inf"), -float("inf"), 1e-9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "abc", "32", "4096", "full_attention", "sliding_attention", "gptq", "true", "false",
                     "x" * 5000, "é中文🙂", "\x00\n", "llama", "bfloat16", "linear"]),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(-3, 40), st.sampled_from(["full_attention", "sliding_attention", "chunk"])),
             max_size=40),
    st.dictionaries(st.sampled_from(["quant_method", "factor", "type", "rope_type", "hidden_size", "bits"]),
                    st.one_of(st.integers(-5, 10**6), st.text(max_size=8), st.none(), st.floats()), max_size=4),
)

#: keys the readers look at, beside the keys each real config already has
READ_KEYS = (
    "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size",
    "vocab_size", "max_position_embeddings", "sliding_window", "use_sliding_window", "max_window_layers",
    "layer_types", "quantization_config", "architectures", "rope_scaling", "text_config", "vision_config",
    "torch_dtype", "hidden_act", "tie_word_embeddings", "attention_bias", "mlp_bias", "num_local_experts",
    "num_experts_per_tok", "num_experts", "moe_intermediate_size", "shared_expert_intermediate_size",
    "mlp_only_layers", "decoder_sparse_step", "n_routed_experts", "n_shared_experts", "first_k_dense_replace",
    "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "sliding_window_pattern",
    "attn_logit_softcapping", "final_logit_softcapping", "num_ln_in_parallel_attn", "new_decoder_architecture",
    "multi_query", "parallel_attn", "bias", "n_positions", "type_vocab_size", "d_kv", "num_decoder_layers",
    "relative_attention_num_buckets", "feed_forward_proj", "model_type", "multi_query_group_num", "kv_channels",
    "num_nextn_predict_layers", "qk_layernorm", "ffn_hidden_size", "n_head", "n_layer", "n_embd",
)

FUZZ_WORKLOADS = WORKLOADS + (dict(task="finetune", method="qlora"), dict(task="pretrain", num_gpus=2, pp=2),
                              dict(seq=8192, batch=4), dict(task="finetune", method="freeze", frozen_layers=2))


@st.composite
def hostile_configs(draw):
    name = draw(st.sampled_from(sorted(ENTRIES)))
    cfg = json.loads(json.dumps(ENTRIES[name]["config"]))
    for _ in range(draw(st.integers(1, 3))):
        target = cfg
        nested = [k for k in ("text_config", "vision_config", "quantization_config", "rope_scaling")
                  if isinstance(cfg.get(k), dict)]
        if nested and draw(st.integers(0, 4)) == 0:
            target = cfg[draw(st.sampled_from(nested))]
        key = draw(st.sampled_from(sorted(set(target) | set(READ_KEYS))))
        target[key] = draw(HOSTILE)
    return name, cfg


OUTCOMES: Counter = Counter()


@settings(max_examples=300, **SETTINGS)
@given(case=hostile_configs(), wl=st.sampled_from(FUZZ_WORKLOADS))
@pytest.mark.timeout(600)
def test_fuzz_hostile_configs_give_an_error_line_or_a_sane_estimate(case, wl):
    _, cfg = case
    outcome, model = call_api(resolved, cfg)
    if outcome == "clear error":
        msg = str(model)
        assert "\n" not in msg and len(msg) < 600, msg
        OUTCOMES["refused by the spec layer"] += 1
        return
    assert 0 < model.active_params <= model.params
    assert model.spec.num_layers <= LIMITS["num_layers"].maximum
    outcome, est = call_api(estimate_resolved, model, make_workload(**wl))
    if outcome == "answer":
        assert_sane_estimate(est)
        OUTCOMES["sane estimate"] += 1
    else:
        OUTCOMES["refused by the workload"] += 1


@settings(max_examples=40, **SETTINGS)
@given(case=hostile_configs(), argv=st.sampled_from([
    [], ["--task", "finetune", "--method", "lora"], ["--task", "pretrain"], ["--engine", "vllm"],
    ["--engine", "llama.cpp"], ["--json"]]))
@pytest.mark.timeout(600)
def test_fuzz_hostile_config_files_through_the_cli(case, argv):
    _, cfg = case
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "config.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        full = ["estimate", path, "--no-hub", *argv]
        rc, out, err = run_cli(full)
    assert_clean(rc, out, err, full)
    if rc == 0 and "--json" in argv:
        assert_sane_estimate(json.loads(out))


@pytest.mark.parametrize("argv", [[], ["--task", "finetune", "--method", "lora"], ["--task", "pretrain"],
                                  ["--engine", "vllm"], ["--engine", "llama.cpp"]])
@pytest.mark.parametrize("mutation,key", [
    ({}, None), ({"num_attention_heads": 32.5}, "num_attention_heads"), ({"sliding_window": "4096"}, "sliding_window"),
    ({"quantization_config": "gptq"}, "quantization_config"), ({"num_hidden_layers": 10**6}, "num_hidden_layers"),
    ({"hidden_size": 16}, "num_attention_heads"), ({"layer_types": 5}, "layer_types"),
    ({"num_hidden_layers": 1024}, None)])
@pytest.mark.timeout(60)
def test_hand_written_config_files_through_the_cli(tmp_path, mutation, key, argv):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg_of(LLAMA), **mutation}), encoding="utf-8")
    rc, out, err = run_cli(["estimate", str(path), "--no-hub", "--json", *argv])
    assert_clean(rc, out, err, argv)
    if key is None:
        assert rc == 0, err
        assert_sane_estimate(json.loads(out))
    else:
        assert rc == 2 and f"{path} {key}:" in err, err
