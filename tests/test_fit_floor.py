"""fit's searches skip the allocator replay where the total with the replayed cache taken as 0 is already over the
budget (``synthetic.cache_floor``, ``plan._fits``): that total is a lower bound of the real one, the predicate
answers exactly as ``_total(model, w) <= usable`` does, and the answers do not move."""

import pytest

from vramscope import plan
from vramscope.gpus import find_gpu
from vramscope.memory import synthetic
from vramscope.sources import resolve
from vramscope.workload import make_workload

CASES = [
    ("llama-3.2-1b", {"task": "finetune", "method": "full"}),  # the training replay
    ("llama-3.2-1b", {"task": "finetune", "method": "full", "seq": 512, "batch": 3}),
    ("qwen2.5-0.5b", {"task": "finetune", "method": "full", "seq": 1024}),  # q/k/v biases, tied
    ("llama-3.2-1b", {"task": "finetune", "method": "freeze", "frozen_layers": 4}),
    ("llama-3.2-1b", {"seq": 4096}),  # the prefill replay
    ("llama-3.2-1b", {"task": "finetune", "method": "lora"}),  # the LoRA replay (checkpointed)
    ("llama-3.2-1b", {"task": "finetune", "method": "lora", "dora": True}),  # not replayed: the floor is the total
]


def _floor(model, w):
    with synthetic.cache_floor() as skipped:
        return plan._total(model, w), bool(skipped)


@pytest.mark.parametrize("name, kw", CASES)
def test_floor_is_a_lower_bound_and_fits_is_exact(name, kw):
    model, w = resolve(name), make_workload(**kw)
    floor, skipped = _floor(model, w)
    real = plan._total(model, w)
    replayed = not kw.get("dora")
    assert skipped == replayed
    if replayed:
        assert floor < real  # the replayed cache is positive on these workloads
    else:
        assert floor == real
    for usable in {floor - 1, floor, (floor + real) // 2, real - 1, real, real + 1}:
        assert plan._fits(model, w, usable) == (real <= usable), usable


def test_floor_skips_replays_without_moving_the_answer(monkeypatch):
    model, w, gpu = resolve("llama-3.2-1b"), make_workload(task="finetune", method="full"), find_gpu("rtx-4090")

    def answer():
        synthetic._train_cache.cache_clear()
        a = plan.fit(model, w, gpu).to_dict()
        return a, synthetic._train_cache.cache_info().misses

    got, replays = answer()
    monkeypatch.setattr(plan, "_fits", lambda m, new, usable: plan._total(m, new) <= usable)
    want, all_replays = answer()
    assert got == want
    assert replays < all_replays
