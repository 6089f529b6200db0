"""FSDP2's side-stream segments per rank: the written stream (``memory/fsdp_streams.py``) against the trace.

Run:  python bench/fsdp_streams.py [name:seq:world[:layers]] ...

For each configuration the real FSDP2 step is traced on torch's fake process group (``run_trace``), its whole
allocation stream replayed through ``memory/allocator.py`` with each block on its stream; printed: the replay's
peak allocated and reserved, the segments the copy-in and reduce-scatter streams hold (their peaks, and at the
reserved peak, with the bytes allocated in them then), the written side stream's own replay (``side_reserved``),
and whether the side-stream events equal the trace's (512-byte units).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

GiB, MiB = 2**30, 2**20


def model_of(name: str, layers: int | None):
    from vramscope.sources import catalog
    from vramscope.sources.base import ResolvedModel
    from vramscope.sources.hf_config import spec_from_config

    cfg = copy.deepcopy(catalog.find(name)["config"])
    if layers:
        cfg["num_hidden_layers"] = layers
    spec = spec_from_config(cfg, name=name)
    return ResolvedModel(spec=spec, kind="catalog", origin=name, params=spec.params,
                         active_params=spec.active_params, hf_config=cfg)


def run(name: str, seq: int, world: int, layers: int | None) -> dict:
    from vramscope.memory import fsdp_streams
    from vramscope.memory.allocator import replay, stream_segments
    from vramscope.memory.overhead import CUBLAS_WORKSPACE
    from vramscope.trace.estimator import quiet_libraries, run_trace
    from vramscope.workload import make_workload

    model = model_of(name, layers)
    w = make_workload(task="finetune", seq=seq, num_gpus=world, parallelism="fsdp")
    t0 = time.perf_counter()
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    trace_s = time.perf_counter() - t0
    side_peak, side_events = {1: 0, 2: 0}, []
    peak = {"best": -1, "held": {}, "used": {}}

    def on_event(alloc, k: int, ev: int) -> None:
        if log.streams[k]:
            side_events.append((log.streams[k], log.sizes[k] if ev > 0 else -log.sizes[k]))
        if log.streams[k] or alloc.stats.reserved > peak["best"]:
            held, used = stream_segments(alloc)
            for s in side_peak:
                side_peak[s] = max(side_peak[s], held.get(s, 0))
            if alloc.stats.reserved > peak["best"]:
                peak.update(best=alloc.stats.reserved, held=held, used=used)

    sim = replay(log.sizes, log.events, start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,), streams=log.streams,
                 on_event=on_event)
    at_peak, in_use = peak["held"], peak["used"]
    ours = [(s, (1 if n > 0 else -1) * -(-abs(n) // 512) * 512)
            for s, n, _ in fsdp_streams.events(model.spec, world, a=2)]
    written = fsdp_streams.side_reserved(model.spec, world, 2)
    return {"model": name, "layers": model.spec.num_layers, "seq": seq, "world": world,
            "trace_s": round(trace_s, 1), "allocated": sim.peak_allocated,
            "reserved": sim.peak_reserved, "side_peak": side_peak,
            "segments_at_reserved_peak": {s: at_peak.get(s, 0) for s in (0, 1, 2)},
            "allocated_at_reserved_peak": {s: in_use.get(s, 0) for s in (0, 1, 2)},
            "written_side_peak": written, "events_equal": ours == side_events}


def main() -> int:
    for arg in sys.argv[1:] or ["llama-3-8b:2048:2", "llama-3-8b:2048:8"]:
        parts = arg.split(":")
        r = run(parts[0], int(parts[1]), int(parts[2]), int(parts[3]) if len(parts) > 3 else None)
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
