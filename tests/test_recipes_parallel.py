"""Training recipes (issue #4) and multi-GPU layouts (issue #6): validation, profiles and per-rank properties."""

import pytest

import vramscope
from conftest import requires_torch
from vramscope.errors import VramscopeError
from vramscope.memory.trainable import dora_magnitude_params, lora_params
from vramscope.sources import resolve
from vramscope.workload import TORCHTUNE_LORA_TARGETS, make_workload

FT = dict(task="finetune")


def est(model="llama-3-8b", **kw):
    return vramscope.estimate(model, **{**FT, **kw})


# -- validation: every contradiction names the option ---------------------------------------------------------
@pytest.mark.parametrize("kw, field", [
    (dict(sp=2, attn="eager", num_gpus=2), "--sp"),
    (dict(sequence_parallel=True, num_gpus=2), "--sequence-parallel"),
    (dict(num_gpus=6, tp=4), "--gpus"),
    (dict(num_gpus=6, nodes=4), "--nodes"),
    (dict(num_gpus=8, fsdp_sharding="hybrid"), "--fsdp-sharding"),
    (dict(num_gpus=8, offload="optimizer", offload_device="nvme"), "--offload-device"),
    (dict(dora=True), "--dora"),
    (dict(optimizer_in_backward=True, grad_accum=4), "--optimizer-in-backward"),
    (dict(checkpoint_mode="partial"), "--grad-checkpointing"),
    (dict(checkpoint_every=0), "--checkpoint-every"),
    (dict(ce_chunks=0), "--chunked-ce"),
    (dict(sp_mode="zigzag", sp=2, num_gpus=2), "--sp-mode"),
    (dict(fsdp_version=3, num_gpus=2), "--fsdp-version"),
    (dict(lora_alpha=-1, method="lora"), "--lora-alpha"),
])
def test_bad_training_options_name_the_field(kw, field):
    with pytest.raises(VramscopeError) as e:
        make_workload(**{**FT, **kw})
    assert field in e.value.render("en", "cli")  # the flag on the command line
    from vramscope.options import table

    named = str(e.value).split(":")[0]
    assert named in table() and table()[named].flag == field, str(e.value)  # the keyword in the API


@pytest.mark.parametrize("kw, field", [(dict(compile=True), "--compile"), (dict(activation_offload=True),
                                                                          "--activation-offload"),
                                       (dict(sp=2), "--sp"), (dict(ep=2), "--ep")])
def test_training_options_refused_for_inference(kw, field):
    with pytest.raises(VramscopeError) as e:
        make_workload(task="inference", **kw)
    assert field in e.value.render("en", "cli") and str(e.value).startswith(next(iter(kw)) + ":")


def test_expert_parallel_needs_an_moe_that_divides():
    with pytest.raises(VramscopeError, match="^ep: "):
        est(num_gpus=2, ep=2)
    with pytest.raises(VramscopeError, match="^ep: "):
        est("mixtral-8x7b", num_gpus=3, ep=3, parallelism="zero2")


# -- the world size splits into dp x tp x pp x sp -------------------------------------------------------------
def test_world_size_decomposition():
    w = make_workload(**FT, num_gpus=64, tp=8, pp=2)
    assert (w.dp, w.tp, w.pp, w.sp, w.parallelism) == (4, 8, 2, 1, "fsdp")
    assert make_workload(**FT, pp=4).num_gpus == 4  # --pp alone means that many GPUs
    assert make_workload(**FT, num_gpus=4, parallelism="tp").tp_degree == 4
    e = est("llama-3-70b", num_gpus=64, tp=8, pp=2, grad_checkpointing=True)
    assert e.engine["parallel"] == {"world": 64, "dp": 4, "tp": 8, "pp": 2, "sp": 1, "ep": 1, "shard_group": 4,
                                    "parallelism": "fsdp"}


# -- per-rank properties ----------------------------------------------------------------------------------------
def _phase_sum(e, phase):
    return sum(e.phases[phase].values())


@pytest.mark.parametrize("kw", [dict(parallelism="fsdp"), dict(parallelism="zero3"), dict(parallelism="zero2"),
                                dict(parallelism="fsdp", fsdp_version=1), dict(parallelism="zero3",
                                                                               offload="optimizer")])
def test_more_gpus_never_increase_sharded_states(kw):
    prev = None
    for n in (2, 4, 8, 16):
        e = est(num_gpus=n, grad_checkpointing=True, **kw)
        states = e.phases["optimizer_step"].get("optimizer_states", 0) + e.phases["optimizer_step"].get(
            "gradients", 0)
        acts = e.phases["forward"].get("activations", 0)
        if prev is not None:
            assert states <= prev[0]
            assert acts == prev[1]  # data parallelism never shrinks a rank's activations
        prev = (states, acts)


def test_context_parallel_divides_activations_and_joins_the_shard_group():
    one = est(seq=32768, grad_checkpointing=True, num_gpus=8)
    four = est(seq=32768, grad_checkpointing=True, num_gpus=8, sp=4)
    a1, a4 = one.phases["forward"]["activations"], four.phases["forward"]["activations"]
    assert a4 == pytest.approx(a1 / 4, rel=0.01)
    assert four.engine["parallel"]["shard_group"] == 8 and four.engine["parallel"]["dp"] == 2
    ulysses = est(seq=32768, grad_checkpointing=True, num_gpus=8, sp=4, sp_mode="ulysses")
    # the peak is the loss head's backward, where neither exchange runs (it runs inside attention: traced,
    # tests/test_cp_analytic.py); the exchanges themselves differ
    assert ulysses.total_bytes == four.total_bytes
    from vramscope.memory.parallel import context_parallel_transient
    from vramscope.sources import resolve

    spec = resolve("llama-3-8b").spec
    assert context_parallel_transient(spec, 8192, 2, "ulysses", 4) != context_parallel_transient(spec, 8192, 2, "ring", 4)


def test_megatron_sequence_parallel_shards_replicated_activations():
    tp = est("llama-3-70b", num_gpus=8, tp=8)
    sp = est("llama-3-70b", num_gpus=8, tp=8, sequence_parallel=True)
    assert sp.phases["forward"]["activations"] < tp.phases["forward"]["activations"]
    assert sp.phases["optimizer_step"] == tp.phases["optimizer_step"]


def test_expert_parallel_splits_experts_unless_fully_sharded():
    z2 = est("mixtral-8x7b", num_gpus=8, parallelism="zero2", grad_checkpointing=True)
    z2ep = est("mixtral-8x7b", num_gpus=8, parallelism="zero2", ep=8, grad_checkpointing=True)
    assert z2ep.phases["load"]["weights"] < 0.3 * z2.phases["load"]["weights"]
    fsdp = est("mixtral-8x7b", num_gpus=8, grad_checkpointing=True)
    fsdp_ep = est("mixtral-8x7b", num_gpus=8, ep=8, grad_checkpointing=True)
    assert fsdp_ep.phases["load"]["weights"] == pytest.approx(fsdp.phases["load"]["weights"], rel=0.001)


def test_hybrid_shard_shards_inside_a_node():
    full = est(num_gpus=16, nodes=2)
    hybrid = est(num_gpus=16, nodes=2, fsdp_sharding="hybrid")
    assert hybrid.engine["parallel"]["shard_group"] == 8
    opt = "optimizer_step"
    assert hybrid.phases[opt]["optimizer_states"] == pytest.approx(2 * full.phases[opt]["optimizer_states"], rel=0.01)


def test_fsdp1_and_fsdp2_buffers_differ_as_traced():
    v1 = est(num_gpus=8, fsdp_version=1)
    v2 = est(num_gpus=8, fsdp_version=2)
    assert v1.phases["load"] == v2.phases["load"] and v1.total_bytes != v2.total_bytes


def test_zero3_prefetch_and_persistence_knobs():
    small = est(num_gpus=8, parallelism="zero3", zero_prefetch=0)
    big = est(num_gpus=8, parallelism="zero3", zero_prefetch=2_000_000_000)
    capped = est(num_gpus=8, parallelism="zero3", zero_prefetch=2_000_000_000, zero_max_live=600_000_000)
    f = "forward"
    assert _phase_sum(small, f) < _phase_sum(capped, f) < _phase_sum(big, f)
    persist = est(num_gpus=8, parallelism="zero3", zero_persistence=10**12)  # nothing partitioned
    assert persist.phases["load"]["weights"] > 7 * est(num_gpus=8, parallelism="zero3").phases["load"]["weights"]


def test_nvme_offload_moves_states_off_the_host():
    # (the swap buffers are sized by the sub-group, 1e9 elements: for small partitions they pin about as much)
    cpu = est("llama-3-70b", num_gpus=8, parallelism="zero3", offload="optimizer+params")
    nvme = est("llama-3-70b", num_gpus=8, parallelism="zero3", offload="optimizer+params", offload_device="nvme")
    assert nvme.engine["nvme_bytes"] == cpu.engine["host_bytes"]
    assert nvme.engine["host_bytes"] < cpu.engine["host_bytes"]
    assert nvme.total_bytes == cpu.total_bytes


def test_deepspeed_runs_on_one_gpu_with_its_own_precision():
    e = est(parallelism="zero3", offload="optimizer")
    assert e.workload["parallelism"] == "zero3"
    assert any("DeepSpeed-style" in a.render() for a in e.assumptions)


# -- training recipes ----------------------------------------------------------------------------------------
def test_torchtune_profile_defaults_and_overrides():
    w = make_workload(**FT, method="lora", framework="torchtune")
    assert (w.grad_checkpointing, w.ce_chunks, w.lora_targets, w.optimizer) == (
        True, 8, TORCHTUNE_LORA_TARGETS, "adamw-fused")
    full = make_workload(**FT, framework="torchtune")
    assert (full.optimizer, full.optimizer_in_backward) == ("paged-adamw-8bit", True)
    multi = make_workload(**FT, framework="torchtune", num_gpus=8)
    assert (multi.optimizer, multi.optimizer_in_backward) == ("adamw-fused", False)
    mine = make_workload(**FT, framework="torchtune", grad_checkpointing=False, ce_chunks=1, optimizer="adamw",
                         optimizer_in_backward=False)
    assert (mine.grad_checkpointing, mine.ce_chunks, mine.optimizer, mine.optimizer_in_backward) == (
        False, 1, "adamw", False)
    q = make_workload(**FT, method="qlora", framework="torchtune")
    assert q.quant == "nf4-dq"


def test_torchtune_adapters_are_bf16_and_keep_less_than_peft():
    tt = est(method="lora", framework="torchtune", grad_checkpointing=False, ce_chunks=1, lora_targets="all-linear")
    hf = est(method="lora", grad_checkpointing=False)
    assert tt.model.trainable_params == hf.model.trainable_params
    assert tt.phases["optimizer_step"]["optimizer_states"] * 2 == hf.phases["optimizer_step"]["optimizer_states"]
    assert tt.phases["forward"]["activations"] < hf.phases["forward"]["activations"]


def test_paged_states_reported_apart():
    e = est(optimizer="paged-adamw-8bit")
    assert e.engine["paged_bytes"] == e.phases["optimizer_step"]["optimizer_states"]
    assert est(optimizer="paged-adamw").phases["optimizer_step"]["optimizer_states"] == pytest.approx(
        8 * 8_030_261_248, rel=1e-6)  # bitsandbytes' 32-bit states are fp32 whatever the parameters


def test_optimizer_in_backward_removes_the_step_and_the_gradients():
    e = est(grad_checkpointing=True, optimizer_in_backward=True)
    assert "optimizer_step" not in e.phases
    assert e.phases["backward"].get("gradients", 0) == 0
    assert e.total_bytes < est(grad_checkpointing=True).total_bytes


def test_checkpointing_variants_order():
    none = est(method="lora", grad_checkpointing=False)
    every2 = est(method="lora", checkpoint_every=2)
    full = est(method="lora", grad_checkpointing=True)
    assert full.total_bytes < every2.total_bytes < none.total_bytes
    sel = est(method="lora", attn="eager", checkpoint_mode="selective", seq=4096)
    eager = est(method="lora", attn="eager", seq=4096, grad_checkpointing=False)
    assert sel.total_bytes < eager.total_bytes
    assert any("Megatron" in a.render() for a in sel.assumptions)


def test_chunked_ce_compile_and_offload_lower_the_loss_and_layers():
    base = est(method="lora", seq=4096)
    assert est(method="lora", seq=4096, ce_chunks=8).phases["forward"]["loss_head"] < base.phases["forward"]["loss_head"]
    assert est(method="lora", seq=4096, compile=True).phases["forward"]["activations"] < \
        base.phases["forward"]["activations"]
    off = est(method="lora", seq=4096, activation_offload=True)
    assert off.engine["host_bytes"] > 0 and off.total_bytes < base.total_bytes


def test_dora_adds_magnitudes_and_activations():
    spec = resolve("llama-3-8b").spec
    lora = est(method="lora", lora_targets="q_proj,v_proj")
    dora = est(method="lora", lora_targets="q_proj,v_proj", dora=True)
    assert dora.model.trainable_params - lora.model.trainable_params == 32 * (4096 + 1024)
    assert dora_magnitude_params(spec, ("q_proj", "v_proj")) == 32 * (4096 + 1024)
    assert dora.total_bytes > lora.total_bytes
    with pytest.raises(VramscopeError, match="^dora: "):
        est("mixtral-8x7b", method="lora", dora=True)


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("name, targets", [("llama-3-8b", ("all-linear",)), ("qwen2.5-0.5b", ("q_proj", "v_proj"))])
def test_dora_count_matches_peft(name, targets):
    import peft
    import torch
    import transformers

    from vramscope.sources import catalog

    cfg = transformers.AutoConfig.for_model(**catalog.find(name)["config"])
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    target = "all-linear" if targets == ("all-linear",) else list(targets)
    pm = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules=target, use_dora=True))
    expected = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    spec = resolve(name).spec
    assert lora_params(spec, 8, targets) + dora_magnitude_params(spec, targets) == expected


def test_cli_new_flags(capsys):
    from vramscope.cli import main

    assert main(["estimate", "llama-3-8b", "--task", "finetune", "--gpus", "16", "--tp", "2", "--sp", "2",
                 "--nodes", "2", "--fsdp-sharding", "hybrid", "--grad-checkpointing", "selective", "--attn", "sdpa",
                 "--chunked-ce", "--activation-offload", "--compile", "--json"]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    w = d["workload"]
    assert (w["tp"], w["sp"], w["nodes"], w["fsdp_sharding"], w["checkpoint_mode"], w["ce_chunks"]) == (
        2, 2, 2, "hybrid", "selective", 8)
    assert main(["estimate", "llama-3-8b", "--task", "finetune", "--sp", "2", "--attn", "eager"]) == 2
    assert "--sp" in capsys.readouterr().err


def test_vllm_pipeline_parallel_per_stage():
    tp2 = vramscope.estimate("llama-3-70b", engine="vllm", num_gpus=2, max_model_len=8192, gpus=["h100"])
    pp = vramscope.estimate("llama-3-70b", engine="vllm", num_gpus=2, pp=2, max_model_len=8192, gpus=["h100"])
    stages = pp.engine["stages"]
    assert len(stages) == 2 and sum(s["layers"] for s in stages) == 80
    assert sum(s["weights_bytes"] for s in stages) == pytest.approx(tp2.engine["weights_bytes"], rel=1e-6)
    # each stage holds half the layers' KV: more tokens than TP 2 alone, limited by the fuller stage
    assert pp.engine["per_gpu"][0]["kv_tokens"] > 1.8 * tp2.engine["per_gpu"][0]["kv_tokens"]
    with pytest.raises(VramscopeError, match="^pp: inference pipeline parallelism"):
        vramscope.estimate("llama-3-8b", pp=2)


def test_interleaved_pipeline_holds_korthikanti_factor_more_on_the_first_stage():
    kw = dict(pp=4, grad_accum=8, grad_checkpointing=True)
    f1b = est("llama-3-70b", **kw)
    inter = est("llama-3-70b", pp_schedule="interleaved", **kw)
    r1, ri = f1b.engine["pipeline"]["ranks"][0], inter.engine["pipeline"]["ranks"][0]
    assert ri["micro_batches_in_flight"] == pytest.approx(r1["micro_batches_in_flight"] * (1 + 3 / 8))
    with pytest.raises(VramscopeError, match="^pp_schedule: Megatron"):
        est("llama-3-70b", pp=4, grad_accum=6, pp_schedule="interleaved")


def test_host_memory_per_node():
    e = est("llama-3-70b", num_gpus=16, nodes=2, parallelism="zero3", offload="optimizer+params",
            grad_checkpointing=True)
    assert e.engine["host_bytes_per_node"] == 8 * e.engine["host_bytes"]
