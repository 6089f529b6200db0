"""The analytic reserved number against the caching-allocator replay, on a fast subset of bench/allocator_matrix.py.

Each workload is traced (the real transformers/peft code on fake tensors, 2-layer cuts), its allocation stream is
replayed through ``memory/allocator.py`` after torch's cuBLAS workspace (the simulated ``max_memory_reserved``),
and the analytic estimator's cache (``memory/device.py`` ``allocator_cache``) added to the replay's allocated peak
must be within 3% of the simulated reserved peak — one case per class the shares were fitted for: inference (short
and long context, dense and MoE), LoRA, full training with its optimizer-step peak, FSDP2 (full, LoRA, torchtitan's
fp32 reduce-scatter). The whole matrix (73 workloads, where not every one is within 3%) is the bench's
(docs/accuracy.md).
"""

import pytest

from conftest import requires_torch
from test_trace_matrix import two_layers
from vramscope.api import estimate_resolved
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

FAST = [
    ("llama-3-8b", dict(task="inference", seq=512, batch=2)),
    ("mixtral-8x7b", dict(task="inference", seq=256)),
    ("qwen3-30b-a3b", dict(task="inference", seq=1024)),
    ("llama-3.1-8b", dict(task="inference", seq=32768)),
    ("llama-3.1-8b", dict(task="inference", seq=131072)),
    ("llama-3-8b", dict(task="finetune", seq=256, method="freeze", train_modules="o_proj,down_proj")),
    ("llama-3-8b", dict(task="finetune", seq=256, ce_chunks=8)),
    ("mixtral-8x7b", dict(task="finetune", seq=128, method="lora", grad_checkpointing=True)),
    ("llama-3-8b", dict(task="finetune", seq=256, num_gpus=4, parallelism="fsdp", method="lora",
                        grad_checkpointing=True)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, num_gpus=4, parallelism="fsdp")),
    ("qwen3-8b", dict(task="finetune", seq=512, num_gpus=2, parallelism="fsdp")),
    ("llama-3-8b", dict(task="pretrain", seq=256, num_gpus=8, parallelism="fsdp", precision="mixed",
                        framework="torchtitan", grad_checkpointing=True)),
]


@pytest.mark.parametrize("name, kw", FAST, ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in FAST])
def test_analytic_reserved_within_3pct_of_replay(name, kw):
    from vramscope.memory.allocator import replay
    from vramscope.memory.overhead import CUBLAS_WORKSPACE
    from vramscope.trace.estimator import quiet_libraries, run_trace

    model, w = two_layers(name), make_workload(**kw)
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    sim = replay(log.sizes, log.events, marks=log.marks, start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,),
                 streams=log.streams)
    cache = estimate_resolved(model, w).memory.terms["allocator_cache"]
    assert sim.peak_reserved > sim.peak_allocated
    assert sim.peak_allocated + cache == pytest.approx(sim.peak_reserved, rel=0.03)
