"""torch 2.13's pipeline schedules run per stage rank on torch's fake process group with fake tensors, under
vramscope's live-bytes tracker (issue #14 items 5 and 7).

The one thing fake tensors refuse in ``torch.distributed.pipelining`` is the warm-up vote
(``schedules.py`` ``_PipelineSchedule._warmup_p2p``: ``result.item() == 1`` decides whether every rank built its
stages with static shapes). Every stage here is given ``input_args`` and ``output_args`` (static shapes), the
case in which the vote returns STATIC; the vote's outcome is set instead of read, and from there the schedule,
the stages, their P2P ops (on the fake group: right shapes, no data) and autograd run as torch wrote them.

Each stage is a bias-free ``Linear(H, H)`` on one micro-batch of ``(1, T, H)`` fp32 activations (one "unit" =
``T·H·4`` bytes), so what a rank holds after a step, beyond its inputs and weights, is its weight gradients and
what the schedule keeps: the per-micro-batch receive buffers (``memory/pipeline.py`` ``recv_buffers``). The
step is called as torchtitan calls it (``return_outputs=False``, ``trainer.py``).

Run:  python bench/pipeline_trace.py   (prints each schedule, rank, the persistent buffers traced and modelled)
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

H, T = 256, 64
SCHEDULES = {"Schedule1F1B": "1f1b", "ScheduleGPipe": "gpipe", "ScheduleInterleaved1F1B": "interleaved",
             "ScheduleZBVZeroBubble": "zbv"}


def _static_vote() -> None:
    from torch.distributed.pipelining import schedules
    from torch.distributed.pipelining._utils import InferenceMode

    def warmup(self, stages, has_backward, p2p_done):
        for stage in stages:  # what the vote decides when every stage was given static input/output shapes
            stage._inference_mode = InferenceMode.STATIC

    schedules._PipelineSchedule._warmup_p2p = warmup


def trace_schedule(cls_name: str, pp: int, m: int, rank: int, virtual: int = 2) -> dict:
    """Rank ``rank`` of ``pp`` running two steps of ``cls_name`` over ``m`` micro-batches; bytes in units of one
    micro-batch's activations: at the start, the steady step's peak, after it, and the weight gradients."""
    import torch
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg as fake_pg
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining import schedules

    from vramscope.trace.tracker import make_tracker

    warnings.filterwarnings("ignore")
    _static_vote()
    if dist.is_initialized():
        dist.destroy_process_group()
    dist.init_process_group("fake", store=fake_pg.FakeStore(), rank=rank, world_size=pp)
    mode = FakeTensorMode()
    tracker = make_tracker(None, mode)
    cls = getattr(schedules, cls_name)
    try:
        with mode, tracker:
            example = torch.randn(1, T, H)
            out = torch.randn(1, T, H, requires_grad=True)
            multi = issubclass(cls, schedules.PipelineScheduleMulti)
            if cls_name == "ScheduleZBVZeroBubble":
                idx, n = [rank, 2 * pp - 1 - rank], 2 * pp
            elif multi:
                idx, n = [rank + k * pp for k in range(virtual)], pp * virtual
            else:
                idx, n = [rank], pp
            stages = [PipelineStage(torch.nn.Linear(H, H, bias=False), i, n, torch.device("cpu"),
                                    input_args=(example,), output_args=(out,)) for i in idx]
            loss = lambda a, b: a.float().pow(2).mean()  # noqa: E731
            sched = cls(stages if multi else stages[0], n_microbatches=m, loss_fn=loss)
            x, target = torch.randn(m, T, H), torch.randn(m, T, H)
            tracker.set_phase("ready")
            for step in (1, 2):
                tracker.set_phase(f"step#{step}")
                args = (x,) if 0 in idx else ()
                kw = dict(target=target, losses=[]) if n - 1 in idx else {}
                sched.step(*args, return_outputs=False, **kw)
                tracker.set_phase(f"idle#{step}")
    finally:
        dist.destroy_process_group()
    log, unit = tracker.log, T * H * 4

    def live(index: int) -> float:
        return sum(log.sizes[k] for k in log.live_at(index)) / unit

    grads = len(idx) * H * H * 4 / unit
    return {"ready": live(log.marks["ready"]), "peak": log.phases["step#2"].bytes / unit,
            "after": live(len(log.events) - 1), "grads": grads,
            "kept": live(len(log.events) - 1) - live(log.marks["ready"]) - grads}


def main() -> None:
    """The markdown table of docs/accuracy.md's pipeline section, printed."""
    from vramscope.memory.pipeline import recv_buffers

    print("| schedule | pp | micro-batches | rank | kept after a step (traced) | recv_buffers | steady-step peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cls_name, name in SCHEDULES.items():
        for pp, m in ((4, 8), (2, 4)):
            for rank in range(pp):
                r = trace_schedule(cls_name, pp, m, rank)
                model = recv_buffers(rank, pp, m, name, 1)
                shown = "not modelled" if name == "zbv" else f"{model}"
                print(f"| {cls_name} | {pp} | {m} | {rank} | {r['kept']:.1f} | {shown} | {r['peak']:.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
