"""DeepSpeed ZeRO run for real (DeepSpeed 0.19.8 on its CPU accelerator, two gloo ranks; tests/ds_zero_real.py):
what each rank holds, read from DeepSpeed's own objects, against the analytic model's per-rank components.

One spawn runs ZeRO-3 full fine-tuning, ZeRO-3 with peft's LoRA (the model built inside ``zero.Init``, as the HF
Trainer builds it under ZeRO-3) and ZeRO-2 full fine-tuning on the tiny Llama
(bf16, one optimizer step each), with small buckets so that each is visible: ``reduce_bucket_size`` 20000
elements, ``stage3_prefetch_bucket_size`` 30000, ``stage3_param_persistence_threshold`` 100 (the norms, 64
elements, stay whole). The sweep with offload and ZeRO-1 is bench/deepspeed_real.py.
"""

import json

import pytest

from conftest import requires_torch
from fixtures import TINY_LLAMA

pytestmark = [requires_torch, pytest.mark.trace]

deepspeed = pytest.importorskip("deepspeed", reason="DeepSpeed (the test extra) is not installed")

import ds_zero_real as ds  # noqa: E402

from vramscope.api import estimate_resolved  # noqa: E402
from vramscope.memory.parallel import persistent_params, zero_bucket  # noqa: E402
from vramscope.model.tensors import largest_tensor  # noqa: E402
from vramscope.sources import resolve  # noqa: E402
from vramscope.workload import make_workload  # noqa: E402

#: the LoRA case as the HF Trainer runs ZeRO-3: the model built inside zero.Init (tests/ds_zero_real.py _model)
CASES = [{"stage": 3}, {"stage": 3, "method": "lora", "zero_init": True}, {"stage": 2}]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds")
    return ds.run(CASES, folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    return resolve(str(folder))


def _estimate(tiny, case):
    z = ds.ZERO
    lora = {"lora_rank": 8} if case.get("method") == "lora" else {"precision": "deepspeed"}
    w = make_workload(task="finetune", method=case.get("method", "full"), dtype="bf16", **lora,
                      num_gpus=ds.WORLD, parallelism=f"zero{case['stage']}", batch=2, seq=16,
                      grad_checkpointing=False, reduce_bucket=z["reduce_bucket_size"],
                      zero_prefetch=z["stage3_prefetch_bucket_size"],
                      zero_persistence=z["stage3_param_persistence_threshold"])
    return estimate_resolved(tiny, w)


def _slack(tiny) -> int:
    """One tensor's bytes: DeepSpeed pads partitions, and ZeRO-1/2 hold a parameter that straddles two ranks'
    partitions whole on both."""
    return largest_tensor(tiny.spec) * 2


@pytest.mark.parametrize("i", [0, 1], ids=["zero3-full", "zero3-lora"])
def test_zero3_model_states_per_rank(runs, tiny, i):
    case = CASES[i]
    est = _estimate(tiny, case)
    step = est.phases["optimizer_step"]
    bucket = zero_bucket(ds.ZERO["reduce_bucket_size"], 2.0)
    persistent = persistent_params(tiny.spec, ds.ZERO["stage3_param_persistence_threshold"]) * 2
    assert persistent == 5 * 64 * 2  # the five RMSNorm weights
    for rank in runs:
        r = rank[i]
        assert r["trainable"] == est.model.trainable_params
        after = r["step0"]
        # every parameter's bf16 partition, and the persistent ones whole beside it
        assert after["persistent"] == persistent
        assert abs(after["param_partitions"] + after["persistent"] - step["weights"]) <= _slack(tiny)
        # the fp32 master partition and AdamW's two fp32 states (plus a 4-byte step counter)
        assert abs(after["fp32_partitions"] + after["optimizer_states"] - step["optimizer_states"]) <= 16
        # the reduce bucket is allocated whole at start-up, even where the trainable parameters are fewer (LoRA)
        assert r["init"]["ipg_bucket"] == bucket
        assert abs(after["grad_partition"] + after["ipg_bucket"] - step["gradients"]) <= _slack(tiny)
        # the first (untraced) forward gathers one module at a time: the largest, at most; the analytic moment
        # adds the prefetch a recorded trace allows, and the coalesced gather's copy
        gathered = r["seen"]["forward0_gathered"]
        assert largest_tensor(tiny.spec) * 2 <= gathered <= est.phases["forward"]["weights"] - step["weights"]
    if case.get("method") == "lora":
        assert est.model.trainable_params < ds.ZERO["reduce_bucket_size"]  # the case the old min() got wrong
        for rank in runs:
            # zero.Init partitions the base in the config's bf16 though it was built in fp32, and the engine casts
            # nothing for a zero-init model: peft's adapters stay fp32 partitions (the estimate's adapter bytes)
            assert rank[i]["frozen_dtypes"] == ["torch.bfloat16"] and rank[i]["trainable_dtypes"] == ["torch.float32"]
        assert "a_zero3_init_lora" in [a.key for a in est.assumptions]


def test_zero2_model_states_and_backward_bucket(runs, tiny):
    est = _estimate(tiny, CASES[2])
    step = est.phases["optimizer_step"]
    bucket = zero_bucket(ds.ZERO["reduce_bucket_size"], 2.0)
    for rank in runs:
        r = rank[2]
        # bf16 parameters whole on every rank; the fp32 master partition and AdamW's states
        assert r["step0"]["param_flat"] == step["weights"]
        assert abs(r["step0"]["fp32_partitions"] + r["step0"]["optimizer_states"] - step["optimizer_states"]) <= 16
        # the bucket exists inside backward only: none at rest or in forward, whole in backward
        assert r["init"]["ipg_bucket"] == r["forward0"]["ipg_bucket"] == 0
        assert r["seen"]["backward0_bucket"] == bucket
        # the bf16 gradient partition the step reads (grads_in_partition, averaged_gradients)
        assert abs(r["seen"]["backward0_partition_grads"] - step["gradients"]) <= _slack(tiny)
        assert r["step0"]["averaged_gradients"] == 0
    # the analytic forward holds no ZeRO-2 gradient memory (one micro-batch), backward the partition and the bucket
    assert est.phases["forward"].get("gradients", 0) == 0
    assert est.phases["backward"]["gradients"] >= step["gradients"] + bucket - _slack(tiny)


def test_deepspeed_auto_sizes_as_the_trainer_fills_them(tmp_path, tiny):
    """transformers 5.24 trainer_config_finalize: reduce_bucket_size = h², stage3_prefetch_bucket_size = 0.9·h²,
    stage3_param_persistence_threshold = 10·h for the keys a config leaves "auto"; a given number stays."""
    from vramscope.configs import from_deepspeed

    cfg = tmp_path / "ds.json"
    cfg.write_text(json.dumps({"bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto",
                               "zero_optimization": {"stage": 3, "reduce_bucket_size": "auto",
                                                     "stage3_prefetch_bucket_size": "auto",
                                                     "stage3_param_persistence_threshold": 1000}}))
    opts = from_deepspeed(str(cfg))
    assert opts["zero_auto"] == ("reduce_bucket", "zero_prefetch") and opts["zero_persistence"] == 1000
    w = make_workload(task="finetune", method="lora", num_gpus=2, **opts)
    est = estimate_resolved(tiny, w)
    h = tiny.spec.hidden_size
    note = next(a for a in est.assumptions if a.key == "a_zero_auto")
    assert f"{h * h:,}" in note.render("en") and f"{int(0.9 * h * h):,}" in note.render("en")
    plain = estimate_resolved(tiny, make_workload(task="finetune", method="lora", num_gpus=2, **{
        k: v for k, v in opts.items() if k != "zero_auto"}))
    # the bucket: h² elements in bf16 instead of DeepSpeed's own default 5e8
    assert plain.phases["optimizer_step"]["gradients"] - est.phases["optimizer_step"]["gradients"] == \
        zero_bucket(500_000_000, 2.0) - zero_bucket(h * h, 2.0)


def test_fsdp1_cpu_offload_keeps_the_sharded_gradients_on_the_gpu_until_backward_ends():
    """torch 2.13 FSDP1 CPUOffload(offload_params=True) (read from source: the CPU-only build cannot pin memory, which
    its offload needs): every reduce-scattered gradient waits on the GPU as _saved_grad_shard until the post-backward
    callback hands the pinned host copy to the optimizer; FSDP2 moves each one to the host at once."""
    model = resolve("llama-3-8b")  # model states well above one short sequence's activations
    kw = dict(task="finetune", method="full", dtype="bf16", num_gpus=2, parallelism="fsdp", offload="optimizer+params",
              batch=1, seq=16)
    v1 = estimate_resolved(model, make_workload(fsdp_version=1, **kw))
    v2 = estimate_resolved(model, make_workload(fsdp_version=2, **kw))
    sharded = model.params * 2 // 2
    assert "a_fsdp1_offload" in [a.key for a in v1.assumptions]
    assert "a_fsdp1_offload" not in [a.key for a in v2.assumptions]
    assert v1.phases["backward"]["gradients"] >= sharded
    for est in (v1, v2):  # the optimizer steps on the host copies
        assert est.phases["optimizer_step"].get("gradients", 0) == 0
    assert v1.phases["backward"]["gradients"] > v2.phases["backward"]["gradients"]
