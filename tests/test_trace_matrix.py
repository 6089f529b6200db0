"""Continuous check: the analytic estimator agrees with traces of the real code on small configurations.

Real catalog configs cut to 2 layers (same layer shapes) at short sequences, so each trace takes seconds.
Every phase's tensors (the allocator cache aside) must agree within 3% and each component holding at least 1% of
the peak within 5%; the analytic reserved number (calibrated, ``memory/device.py``) must be within 20% of the one
the trace's replay through the allocator model gives (bench/allocator_matrix.py reports the agreement case by case).
The full-depth matrix is bench/accuracy_matrix.py (results in docs/accuracy.md).
"""

import copy

import pytest

from conftest import requires_torch
from vramscope.api import estimate_resolved
from vramscope.sources import catalog
from vramscope.sources.base import ResolvedModel
from vramscope.sources.hf_config import spec_from_config
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

CASES = [
    ("llama-3-8b", dict(task="finetune", seq=256)),
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora")),
    ("llama-3-8b", dict(task="finetune", seq=128, batch=2, method="lora", attn="eager")),
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora", grad_checkpointing=True)),
    ("llama-3-8b", dict(task="inference", seq=512, batch=2)),
    ("qwen3-8b", dict(task="finetune", seq=256, method="lora")),
    ("qwen3-8b", dict(task="finetune", seq=128, attn="eager", grad_checkpointing=True)),
    ("gemma-2-2b", dict(task="finetune", seq=256, attn="eager", dtype="bf16")),
    ("gemma-2-2b", dict(task="finetune", seq=256, attn="eager", method="lora")),
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, method="freeze", frozen_layers=1)),
    ("mixtral-8x7b", dict(task="finetune", seq=128)),
    ("mixtral-8x7b", dict(task="inference", seq=256)),
    ("mixtral-8x7b", dict(task="finetune", seq=128, method="lora")),
    ("mixtral-8x7b", dict(task="finetune", seq=128, method="lora", grad_checkpointing=True)),
    # MoE LoRA as these cases were written, without checkpointing (hf now checkpoints LoRA by default; the MoE
    # LoRA cases with checkpointing disagree with the trace and are not claimed yet)
    ("qwen3-30b-a3b", dict(task="finetune", seq=128, method="lora", grad_checkpointing=False)),
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora", framework="pytorch")),
    ("llama-3-8b", dict(task="finetune", seq=256, method="freeze", train_modules="o_proj,down_proj")),
    ("llama-3-8b", dict(task="inference", seq=1500, attn="eager")),
    ("mistral-7b-v0.1", dict(task="inference", seq=4500)),
    ("gemma-2-2b", dict(task="inference", seq=4500)),
    ("gemma-2-2b", dict(task="inference", seq=768, batch=3)),
    # issue #4's recipes: DoRA, selective and every-N checkpointing, chunked CE, optimizer in backward, offloading
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora", dora=True)),
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora", dora=True, grad_checkpointing=True)),
    ("llama-3-8b", dict(task="finetune", seq=256, attn="eager", checkpoint_mode="selective")),
    ("qwen3-8b", dict(task="finetune", seq=256, method="lora", checkpoint_every=2)),
    ("llama-3-8b", dict(task="finetune", seq=256, ce_chunks=8)),
    ("llama-3-8b", dict(task="finetune", seq=256, optimizer_in_backward=True)),
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora", activation_offload=True)),
    ("llama-3-8b", dict(task="finetune", seq=256, activation_offload=True, grad_checkpointing=True)),
    # issue #6: FSDP2 traced per rank on a fake process group
    ("llama-3-8b", dict(task="finetune", seq=256, num_gpus=2, parallelism="fsdp")),
    ("llama-3-8b", dict(task="finetune", seq=256, num_gpus=8, parallelism="fsdp")),
    ("llama-3-8b", dict(task="finetune", seq=256, num_gpus=4, parallelism="fsdp", method="lora",
                        grad_checkpointing=True)),
    ("llama-3-8b", dict(task="finetune", seq=256, num_gpus=4, parallelism="fsdp", grad_checkpointing=True)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, num_gpus=4, parallelism="fsdp")),
    ("qwen3-8b", dict(task="finetune", seq=512, num_gpus=4, parallelism="fsdp", method="lora")),
    ("mixtral-8x7b", dict(task="finetune", seq=512, num_gpus=8, parallelism="fsdp", method="lora",
                          grad_checkpointing=False)),
    # issue #14: --precision mixed under FSDP2 follows the framework's MixedPrecisionPolicy (torchtitan: bf16
    # parameters, fp32 reduce-scatter; hf/accelerate: bf16 both, autocast around forward)
    ("llama-3-8b", dict(task="pretrain", seq=256, num_gpus=8, parallelism="fsdp", precision="mixed",
                        framework="torchtitan", grad_checkpointing=True)),
    # torchtitan's per-op SelectiveAC (its "selective"), ported policy on transformers' layers
    ("llama-3-8b", dict(task="finetune", seq=256, checkpoint_mode="op")),
    ("qwen3-8b", dict(task="finetune", seq=256, checkpoint_mode="op")),
    ("llama-3-8b", dict(task="finetune", seq=128, attn="eager", checkpoint_mode="op")),
    ("llama-3-8b", dict(task="pretrain", seq=256, num_gpus=8, parallelism="fsdp", precision="mixed",
                        framework="torchtitan", grad_checkpointing="selective")),
]

#: the same without checkpointing: peak and every phase's total agree within 3%, but at the backward peak of a
#: 2-layer model (the output head's backward) the trace files part of it under other components than the
#: analytic moment does, so only the totals are checked here
POLICY_TOTALS = [
    ("llama-3-8b", dict(task="pretrain", seq=256, num_gpus=8, parallelism="fsdp", precision="mixed",
                        framework="torchtitan")),
    ("llama-3-8b", dict(task="pretrain", seq=256, num_gpus=8, parallelism="fsdp", precision="mixed")),
]


def two_layers(name):
    cfg = copy.deepcopy(catalog.find(name)["config"])
    cfg["num_hidden_layers"] = 2
    if "layer_types" in cfg:
        cfg["layer_types"] = cfg["layer_types"][:2]
    spec = spec_from_config(cfg, name=name)
    return ResolvedModel(spec=spec, kind="catalog", origin=name, params=spec.params,
                         active_params=spec.active_params, hf_config=cfg)


@pytest.mark.parametrize("name, kw", CASES, ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CASES])
def test_analytic_matches_trace(name, kw):
    from vramscope.trace.estimator import trace_estimate

    model = two_layers(name)
    w = make_workload(**kw)
    tr = trace_estimate(model, w)
    an = estimate_resolved(model, w)

    def tensors(comps):
        return sum(v for k, v in comps.items() if k != "allocator_cache")

    a_total, t_total = tensors(an.components), tensors(tr.components)
    assert an.peak_phase == tr.peak_phase or abs(a_total - t_total) <= 0.03 * t_total
    assert a_total == pytest.approx(t_total, rel=0.03)
    assert an.memory.allocated == pytest.approx(tr.memory.allocated, rel=0.03)
    assert an.memory.reserved == pytest.approx(tr.memory.reserved, rel=0.20)
    assert tr.memory.basis == "simulated" and tr.memory.reserved >= tr.memory.allocated
    for phase, t_ph in tr.phases.items():
        a_ph = an.phases[phase]
        assert tensors(a_ph) == pytest.approx(tensors(t_ph), rel=0.03), phase
    for comp in (set(tr.components) | set(an.components)) - {"allocator_cache"}:
        t, a = tr.components.get(comp, 0), an.components.get(comp, 0)
        if max(t, a) >= 0.01 * t_total:
            assert a == pytest.approx(t, rel=0.05), comp


@pytest.mark.parametrize("name, kw", POLICY_TOTALS, ids=[f"{n}-{kw.get('framework', 'hf')}" for n, kw in POLICY_TOTALS])
def test_fsdp_policy_phase_totals_match_trace(name, kw):
    from vramscope.trace.estimator import trace_estimate

    model = two_layers(name)
    w = make_workload(**kw)
    tr, an = trace_estimate(model, w), estimate_resolved(model, w)

    def tensors(comps):  # the allocator's cache is checked by test_analytic_matches_trace's cases
        return sum(v for k, v in comps.items() if k != "allocator_cache")

    assert an.memory.allocated == pytest.approx(tr.memory.allocated, rel=0.03)
    for phase, t_ph in tr.phases.items():
        assert tensors(an.phases[phase]) == pytest.approx(tensors(t_ph), rel=0.03), phase
    # no autocast cache under the policy: the forward's activations are the saved tensors only
    assert an.phases["forward"]["activations"] == pytest.approx(tr.phases["forward"]["activations"], rel=0.05)
