"""Issue #14: pretraining at scale as the stacks run it — --precision mixed under FSDP follows the framework's
MixedPrecisionPolicy (torchtitan, accelerate / hf), autocast on fp32 FSDP parameters stays for a plain loop,
Megatron-LM's --bf16 with the distributed optimizer, and the autocast cache split by pipeline stage."""

import pytest

from vramscope.api import estimate
from vramscope.errors import VramscopeError
from vramscope.frameworks import PROFILES
from vramscope.memory.parallel import fsdp_buffers, largest_layer_params
from vramscope.memory.pipeline import stage_cast_fractions
from vramscope.sources import catalog
from vramscope.sources.hf_config import spec_from_config

GiB = 2**30
SEVENTY_B = dict(task="pretrain", num_gpus=64, parallelism="fsdp", fsdp_version=2, precision="mixed",
                 grad_checkpointing=True, seq=2048)


def _keys(e):
    return {a.key for a in e.assumptions}


@pytest.mark.parametrize("framework", ["torchtitan", "accelerate", "hf"])
def test_70b_on_64_gpus_follows_the_fsdp_policy(framework):
    e = estimate("llama-3-70b", framework=framework, **SEVENTY_B)
    params = 70.55e9
    # fp32 sharded masters, fp32 sharded gradients, fp32 Adam states over 64 ranks: 16 bytes / 64 per parameter
    assert e.phases["optimizer_step"]["optimizer_states"] == pytest.approx(8 * params / 64, rel=0.01)
    assert e.phases["load"]["weights"] == pytest.approx(4 * params / 64, rel=0.01)
    assert e.memory.allocated < 30 * GiB and e.total_bytes < 40 * GiB  # tensors; with the allocator's cache
    assert all(ph.get("activations", 0) < 4 * GiB for ph in e.phases.values())  # no cast cache
    assert "a_fsdp_policy" in _keys(e) and "a_recipe_fsdp_mixed" in _keys(e)


def test_torchtitan_reduces_in_fp32_accelerate_in_bf16():
    tt = estimate("llama-3-70b", framework="torchtitan", **SEVENTY_B)
    acc = estimate("llama-3-70b", framework="accelerate", **SEVENTY_B)
    spec = spec_from_config(catalog.find("llama-3-70b")["config"], name="llama-3-70b")
    layer = largest_layer_params(spec)
    # a layer's backward: its bf16 gradients beside the previous reduce-scatter input (fp32 vs bf16)
    assert tt.memory.allocated - acc.memory.allocated == pytest.approx(2 * layer, rel=0.02)


def test_fsdp_buffers_reduce_dtype():
    spec = spec_from_config(catalog.find("llama-3-8b")["config"], name="llama-3-8b")
    layer = largest_layer_params(spec)
    same = fsdp_buffers(spec, 2, 2.0, 2.0, True, True)
    fp32 = fsdp_buffers(spec, 2, 2.0, 2.0, True, True, reduce_bytes=4.0)
    assert same.backward_layer[1] == int(4 * layer)
    assert fp32.backward_layer[1] == int(6 * layer)
    assert fp32.backward_layer[0] == same.backward_layer[0]


def test_plain_loop_keeps_autocast_and_says_what_it_costs():
    e = estimate("llama-3-70b", framework="pytorch", **SEVENTY_B)
    assert "a_fsdp_autocast" in _keys(e) and "a_recipe_mixed" in _keys(e)
    assert e.phases["forward"]["activations"] > 120 * GiB  # a bf16 copy of every linear weight


def test_pipeline_stages_each_cache_their_own_casts():
    kw = dict(task="pretrain", num_gpus=4, pp=4, grad_accum=8, precision="mixed", framework="pytorch")
    e = estimate("llama-3-8b", **kw)
    rows = e.engine["pipeline"]["ranks"]
    # 1F1B: the first stage (4 micro-batches in flight) peaks, not the last one holding every stage's casts
    assert max(rows, key=lambda r: r["peak_bytes"])["kind"] == "first stage"
    spec = spec_from_config(catalog.find("llama-3-8b")["config"], name="llama-3-8b")
    fr = stage_cast_fractions(spec, 4)
    assert sum(fr) == pytest.approx(1.0)
    assert fr[0] == pytest.approx(fr[1]) and fr[3] > fr[0]  # the output head's cast on the last stage


def test_megatron_bf16_distributed_optimizer():
    params = 8.03e9
    e = estimate("llama-3-8b", task="pretrain", num_gpus=8, parallelism="zero1", framework="megatron")
    step = e.phases["optimizer_step"]
    # 6 + 12/d bytes per parameter (Megatron-LM docs/source/api-guide/dist_optimizer.md)
    assert step["weights"] + step["gradients"] == pytest.approx(6 * params, rel=0.01)
    assert step["optimizer_states"] == pytest.approx(12 * params / 8, rel=0.01)
    assert "a_megatron_dist_opt" in _keys(e)
    # Megatron's DDP by default: its gradient buffer, no reducer copies
    d = estimate("llama-3-8b", task="pretrain", num_gpus=8, framework="megatron")
    assert d.workload["parallelism"] == "ddp"
    assert d.phases["optimizer_step"]["gradients"] == pytest.approx(4 * params, rel=0.01)


@pytest.mark.parametrize("kw, field", [
    (dict(framework="megatron", parallelism="fsdp"), "parallelism"),
    (dict(framework="torchtitan", parallelism="fsdp", fsdp_version=1), "fsdp_version"),
])
def test_framework_refusals_name_the_field(kw, field):
    with pytest.raises(VramscopeError) as err:
        estimate("llama-3-8b", task="pretrain", num_gpus=8, **kw)
    assert str(err.value).startswith(f"{field}:")


def test_profiles_are_data():
    assert PROFILES["torchtitan"].fsdp_policy == (2.0, 4.0)
    assert PROFILES["accelerate"].fsdp_policy == PROFILES["hf"].fsdp_policy == (2.0, 2.0)
    assert PROFILES["pytorch"].fsdp_policy is None


def test_op_sac_keeps_block_input_odd_matmuls_and_attention():
    from vramscope.memory.activations import op_sac_bytes_per_token

    spec = spec_from_config(catalog.find("llama-3-70b")["config"], name="llama-3-70b")
    h, q, kv, inter = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size
    # input, q (1st mm), v (3rd), gate (5th), down (7th); SDPA output and its fp32 log-sum-exp
    assert op_sac_bytes_per_token(spec, 2048, 2.0, "sdpa") == 2 * (h + q + kv + inter + h) + 2 * q + 4 * spec.num_heads
    mixtral = spec_from_config(catalog.find("mixtral-8x7b")["config"], name="mixtral-8x7b")
    assert op_sac_bytes_per_token(mixtral, 2048, 2.0, "sdpa") is None


def test_torchtitan_selective_is_its_op_policy():
    kw = dict(task="pretrain", num_gpus=64, parallelism="fsdp", precision="mixed", seq=2048)
    full = estimate("llama-3-70b", framework="torchtitan", grad_checkpointing="full", **kw)
    sel = estimate("llama-3-70b", framework="torchtitan", grad_checkpointing="selective", **kw)
    op = estimate("llama-3-70b", framework="torchtitan", grad_checkpointing="op", **kw)
    none = estimate("llama-3-70b", framework="torchtitan", **kw)
    assert sel.workload["checkpoint_mode"] == "op" and sel.total_bytes == op.total_bytes
    assert full.memory.allocated < op.memory.allocated < none.memory.allocated
    # full checkpointing well under 40 GiB per GPU (the bar); the per-op policy at s2048 traces at 41.4 GiB
    # (bench/results/pretrain_full.json, 80 layers on the fake process group), which the estimate follows
    assert full.memory.allocated < 40 * GiB and op.memory.allocated < 42 * GiB
    hf = estimate("llama-3-70b", grad_checkpointing="selective", **kw)  # Megatron's core attention elsewhere
    assert hf.workload["checkpoint_mode"] == "selective"
    with pytest.raises(VramscopeError):
        estimate("mixtral-8x7b", task="pretrain", grad_checkpointing="op")


def test_megatron_recompute_methods():
    kw = dict(task="pretrain", seq=2048, batch=4)
    spec = spec_from_config(catalog.find("llama-3-8b")["config"], name="llama-3-8b")
    per_layer = estimate("llama-3-8b", grad_checkpointing=True, **kw)
    none = estimate("llama-3-8b", **kw)
    block_all = estimate("llama-3-8b", recompute_method="block", recompute_num_layers=spec.num_layers, **kw)
    assert block_all.phases["forward"] == per_layer.phases["forward"]
    block_half = estimate("llama-3-8b", recompute_method="block", recompute_num_layers=spec.num_layers // 2, **kw)
    acts = lambda e: e.phases["forward"]["activations"]  # noqa: E731
    assert acts(block_half) - acts(per_layer) == pytest.approx((acts(none) - acts(per_layer)) / 2, rel=0.02)
    uni4 = estimate("llama-3-8b", recompute_method="uniform", recompute_num_layers=4, **kw)
    # one checkpoint input: the residual stream, fp32 under autocast over fp32 parameters (pretrain's default
    # recipe; traced, docs/accuracy.md's full-depth matrix)
    h_bytes = 4 * 2048 * spec.hidden_size * 4
    assert acts(per_layer) - acts(uni4) == pytest.approx(h_bytes * (spec.num_layers - spec.num_layers // 4), rel=0.01)
    with pytest.raises(VramscopeError):
        estimate("llama-3-8b", recompute_num_layers=2, checkpoint_every=2, **kw)


def test_float8_saves_what_bf16_saves_and_gathers_in_one_byte():
    from vramscope.estimators.training import float8_transient
    from vramscope.workload import make_workload

    kw = dict(task="pretrain", num_gpus=64, parallelism="fsdp", precision="mixed", framework="torchtitan", seq=2048)
    base = estimate("llama-3-70b", **kw)
    for recipe in ("tensorwise", "rowwise", "rowwise_with_gw_hp"):
        e = estimate("llama-3-70b", float8=recipe, **kw)
        # eager Float8Linear saves the high-precision input and weight (matmul_with_hp_or_float8_args)
        assert e.phases["forward"]["activations"] == base.phases["forward"]["activations"]
        assert "a_float8" in _keys(e)
    ag = estimate("llama-3-70b", float8="tensorwise", fsdp_float8_all_gather=True, **kw)
    spec = spec_from_config(catalog.find("llama-3-70b")["config"], name="llama-3-70b")
    layer = largest_layer_params(spec)
    # a layer's copy-out: 3 unsharded layers (the tail unit excepted), linears at 1 byte instead of 2
    saved = base.phases["forward"]["weights"] - ag.phases["forward"]["weights"]
    assert 0 < saved <= 3 * layer
    # the largest moment, tensorwise at 2048 tokens: gate/up's backward (out 28672, in 8192) casting the weight for
    # the input's gradient beside the already cast output gradient; a cast holds 9 bytes per element at its peak
    # (torchao 0.18.0 _ToFloat8ConstrFunc: fp32 scaled copy, its clamp, the float8 result)
    w = make_workload(float8="tensorwise", **kw)
    out_f, in_f, tokens = 28672, 8192, 2048
    assert float8_transient(spec, w, tokens) == tokens * out_f + 9 * out_f * in_f
    # with float8 all-gather the weight arrives cast: down_proj's (out 8192, in 28672) weight gradient, its input
    # cast beside its cast output gradient, is the largest
    w = make_workload(float8="tensorwise", fsdp_float8_all_gather=True, **kw)
    assert float8_transient(spec, w, tokens) == tokens * in_f + 9 * tokens * out_f
    with pytest.raises(VramscopeError):
        estimate("llama-3-8b", task="pretrain", float8="rowwise", fsdp_float8_all_gather=True, num_gpus=8)
    with pytest.raises(VramscopeError):
        estimate("llama-3-8b", task="finetune", method="lora", float8="rowwise")
