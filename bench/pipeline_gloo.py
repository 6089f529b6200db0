"""torch 2.13's own pipeline schedules on two real gloo ranks (CPU tensors), bounded: the attempt at a gloo proof
of the pipeline trace (issue #14 items 5 and 7), which does not run.

Every rank builds one ``PipelineStage`` of a bias-free ``Linear(16, 16)`` (static ``input_args`` /
``output_args``) on 2 gloo ranks and runs two steps of ``ScheduleGPipe`` or ``Schedule1F1B`` with 4 micro-batches.
No vramscope code runs. On torch 2.13.0+cpu both schedules hang: rank 0 waits in the backward receive
(``schedules.py _step_microbatches``, ``_wait_batch_p2p`` after ``get_bwd_recv_ops``) while rank 1 waits in its
first forward receive, the warm-up vote (blocking ``send`` / ``recv``) having passed; the same schedules run on
torch's fake process group (bench/pipeline_trace.py). pytorch/pytorch#132644 reports pipelining hangs on gloo
(``batch_isend_irecv`` on gloo returns one ``Work`` per op; #152938 fixed the ``.pop()`` that dropped them, and its
review expects more hangs on non-NCCL backends). Each run is killed after ``--timeout`` seconds (default 240).

Run:  python bench/pipeline_gloo.py [--timeout S]   (prints, per schedule, "ran" or "hung after S s")
"""

from __future__ import annotations

import os
import socket
import sys


def _rank(rank: int, port: int, schedule: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.distributed.pipelining import PipelineStage, schedules

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    x, out = torch.zeros(1, 8, 16), torch.zeros(1, 8, 16, requires_grad=True)
    stage = PipelineStage(torch.nn.Linear(16, 16, bias=False), rank, 2, torch.device("cpu"), input_args=(x,),
                          output_args=(out,))
    sched = getattr(schedules, schedule)(stage, n_microbatches=4, loss_fn=lambda a, b: a.pow(2).mean())
    for _ in range(2):
        if rank == 0:
            sched.step(torch.randn(4, 8, 16), return_outputs=False)
        else:
            sched.step(target=torch.randn(4, 8, 16), losses=[], return_outputs=False)
    dist.destroy_process_group()


def run(schedule: str, timeout: float) -> bool:
    """Whether two gloo ranks ran ``schedule``'s two steps within ``timeout`` seconds (killed otherwise)."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.start_processes(_rank, args=(port, schedule), nprocs=2, join=False, start_method="spawn")
    import time

    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                return False
        return True
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()


if __name__ == "__main__":
    limit = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 240.0
    for name in ("ScheduleGPipe", "Schedule1F1B"):
        print(name, "ran" if run(name, limit) else f"hung after {limit:g} s", flush=True)
