"""Every catalog model under every kind of workload gives a positive estimate, and fit answers (no crash)."""

import pytest

import vramscope
from vramscope.sources import catalog

WORKLOADS = [
    dict(), dict(task="finetune"), dict(task="finetune", method="lora"),
    dict(task="finetune", method="qlora", grad_checkpointing=True), dict(task="pretrain", num_gpus=8),
    dict(engine="vllm", gpus=["h100"]), dict(engine="llama.cpp", quant="Q4_K_M"), dict(quant="nf4"),
    dict(estimator="seed"), dict(task="finetune", precision="deepspeed", num_gpus=4, parallelism="zero2"),
    dict(task="finetune", offload="optimizer"),
]


@pytest.mark.parametrize("entry", catalog.entries(), ids=[e["id"] for e in catalog.entries()])
def test_every_model_every_workload(entry):
    for kw in WORKLOADS:
        e = vramscope.estimate(entry["id"], **kw)
        assert e.total_bytes > 0 and e.total_bytes == sum(e.components.values()), kw
    a = vramscope.fit(entry["id"], gpu="rtx-4090", task="finetune")
    assert a.fits or a.suggestions or a.min_gpus is None
