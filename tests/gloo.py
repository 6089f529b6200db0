"""Real gloo ranks on real CPU tensors, the other side of the trace's fake-process-group proofs
(tests/test_trace.py FSDP2, test_trace_tp.py FSDP2 × TP, test_trace_cp.py context parallelism): every rank runs
the same step the fake trace runs, and rank 0 writes what its tracker counted."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable, Optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, model_dir: str, out_path: str, kw: dict,
          setup: Optional[Callable[[], tuple[Any, Any]]]) -> None:
    import os

    import torch.distributed as dist

    from vramscope.sources import resolve
    from vramscope.trace.estimator import run_trace
    from vramscope.workload import make_workload

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    # setup (a module-level function, spawned by name): the tracker hook and what must stay alive for the step
    on_tracker, keep = setup() if setup else (None, None)
    try:
        log, _, trainable = run_trace(resolve(model_dir), make_workload(num_gpus=world, **kw), fake=False,
                                      on_tracker=on_tracker)
        if rank == 0:
            with open(out_path, "w") as f:
                json.dump({"peak": log.peak_bytes, "phases": {n: p.bytes for n, p in log.phases.items()},
                           "trainable": trainable}, f)
    finally:
        dist.destroy_process_group()
        del keep


def rank0(world: int, model_dir: str, kw: dict, out_dir: Path,
          setup: Optional[Callable[[], tuple[Any, Any]]] = None) -> dict:
    """``world`` real gloo ranks run ``kw``'s step on ``model_dir``; rank 0's peak, phases and trainable count."""
    import torch.multiprocessing as mp

    out = Path(out_dir) / "rank0.json"
    mp.spawn(_rank, args=(world, free_port(), model_dir, str(out), kw, setup), nprocs=world, join=True)
    return json.loads(out.read_text())
