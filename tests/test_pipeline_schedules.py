"""Pipeline schedules (issue #14 item 3): the micro-batches each rank keeps in flight, as torch 2.13's own schedules
order them (``torch.distributed.pipelining.schedules``: the ``pipeline_order`` each schedule computes per rank,
the schedules torchtitan runs), against ``memory/pipeline.py``; stage placement under ZBV; the option's checks."""

import pytest

from conftest import requires_torch
from vramscope.api import estimate
from vramscope.errors import VramscopeError
from vramscope.memory.pipeline import in_flight_layers, rank_layer_ranges

CASES = [  # (torch schedule class, vramscope schedule, pp, micro-batches, chunks per rank)
    ("Schedule1F1B", "1f1b", 4, 8, 1), ("Schedule1F1B", "1f1b", 4, 4, 1), ("ScheduleGPipe", "gpipe", 4, 8, 1),
    ("ScheduleInterleaved1F1B", "interleaved", 4, 8, 2), ("ScheduleInterleaved1F1B", "interleaved", 4, 16, 4),
    ("ScheduleInterleaved1F1B", "interleaved", 2, 4, 2),
    ("ScheduleZBVZeroBubble", "zbv", 4, 8, 2), ("ScheduleZBVZeroBubble", "zbv", 4, 4, 2),
    ("ScheduleZBVZeroBubble", "zbv", 8, 12, 2), ("ScheduleZBVZeroBubble", "zbv", 4, 2, 2),
    ("ScheduleInterleavedZeroBubble", "interleaved-zb", 4, 8, 2),
    ("ScheduleInterleavedZeroBubble", "interleaved-zb", 4, 16, 4),
]


def torch_in_flight(cls_name, pp, m, v):
    """The most micro-batch chunks each rank holds in torch's order: a chunk's activations from its forward (F)
    until its full backward (B) or, zero bubble, its weight-gradient step (W)."""
    import torch
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg as fake_pg
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining import schedules as S

    if dist.is_initialized():
        dist.destroy_process_group()
    dist.init_process_group("fake", store=fake_pg.FakeStore(), rank=0, world_size=pp)
    try:
        cls = getattr(S, cls_name)
        if issubclass(cls, S.PipelineScheduleMulti):
            idx = [0, 2 * pp - 1] if cls_name == "ScheduleZBVZeroBubble" else [r * pp for r in range(v)]
            stages = [PipelineStage(torch.nn.Linear(2, 2), i, pp * v, torch.device("cpu")) for i in idx]
            sched = cls(stages, n_microbatches=m, loss_fn=lambda a, b: a.sum())
        else:
            stage = PipelineStage(torch.nn.Linear(2, 2), 0, pp, torch.device("cpu"))
            sched = cls(stage, n_microbatches=m, loss_fn=lambda a, b: a.sum())
        C = S._ComputationType
        out = []
        for r in range(pp):
            held = most = 0
            for a in sched.pipeline_order[r]:
                if a is None:
                    continue
                if a.computation_type == C.FORWARD:
                    held += 1
                elif a.computation_type in (C.FULL_BACKWARD, C.BACKWARD_WEIGHT):
                    held -= 1
                most = max(most, held)
            out.append(most)
        return out
    finally:
        dist.destroy_process_group()


@requires_torch
@pytest.mark.parametrize("cls_name,schedule,pp,m,v", CASES)
def test_in_flight_matches_torch_schedules(cls_name, schedule, pp, m, v):
    layers = 8 * v  # a rank's layers, split into v chunks
    expect = [chunks * layers / v for chunks in torch_in_flight(cls_name, pp, m, v)]
    got = [in_flight_layers(s, pp, m, schedule, layers, v) for s in range(pp)]
    assert got == expect


def test_zbv_places_embedding_and_head_on_rank_0():
    # ZBV: rank r holds stages r and 2·pp − 1 − r of 2·pp
    assert rank_layer_ranges(16, 4, "zbv") == [[(0, 2), (14, 16)], [(2, 4), (12, 14)], [(4, 6), (10, 12)],
                                               [(6, 8), (8, 10)]]
    e = estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, pp_schedule="zbv", grad_accum=4,
                 parallelism="ddp")
    rows = e.engine["pipeline"]["ranks"]
    assert [r["layers"] for r in rows] == [8, 8, 8, 8]
    assert [r["micro_batches_in_flight"] for r in rows] == [2.5, 3.0, 3.5, 4.0]  # min(2pp, m + r + 1, 2m) / 2
    one = estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, grad_accum=4, parallelism="ddp")
    first = one.engine["pipeline"]["ranks"][0]
    # 1F1B's first stage has no head; ZBV's rank 0 has it, and the loss
    assert rows[0]["peak_bytes"] > first["peak_bytes"] * 0.5


def test_pp_virtual_checks():
    a = estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, pp_schedule="interleaved", pp_virtual=4,
                 grad_accum=8, parallelism="ddp")
    b = estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, pp_schedule="interleaved", grad_accum=8,
                 parallelism="ddp")
    # more chunks per GPU: fewer layers' worth in flight on the first stage (Korthikanti et al. 2022 §4.2.3)
    assert a.engine["pipeline"]["ranks"][0]["micro_batches_in_flight"] < \
        b.engine["pipeline"]["ranks"][0]["micro_batches_in_flight"]
    with pytest.raises(VramscopeError) as e:
        estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, pp_schedule="zbv", pp_virtual=4,
                 parallelism="ddp")
    assert "pp-virtual" in str(e.value) or "pp_virtual" in str(e.value)
    with pytest.raises(VramscopeError) as e:
        estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, pp_schedule="interleaved", pp_virtual=16,
                 grad_accum=8, parallelism="ddp")
    assert "pp-virtual" in str(e.value) or "pp_virtual" in str(e.value)
