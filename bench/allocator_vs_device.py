"""The caching-allocator model against the real allocator: ``vramscope measure`` records, replayed.

Run (after bench/device_measure.sh, on any machine with the trace extra):
    python bench/allocator_vs_device.py validation/measured.jsonl [--json bench/results/allocator_vs_device.json]

For each record written by ``vramscope measure`` (it stores the workload's options, the allocator settings it ran
under and the allocator's segments at the end), the same workload is traced on fake tensors and its allocation
stream replayed through ``memory/allocator.py`` with the same ``PYTORCH_CUDA_ALLOC_CONF``; the table compares the
measured ``max_memory_allocated`` / ``max_memory_reserved`` / NVML used and segment count with the simulated and
the analytic numbers. Nothing here has been run on a GPU yet: the first session with one fills it in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

GiB = 2**30


def compare(rec: dict) -> dict:
    from vramscope.api import estimate_resolved
    from vramscope.memory.allocator import replay
    from vramscope.memory.device import alloc_config
    from vramscope.memory.overhead import CUBLAS_WORKSPACE
    from vramscope.sources import resolve
    from vramscope.trace.estimator import quiet_libraries, run_trace
    from vramscope.workload import make_workload

    model = resolve(rec["model"], hub=False)
    w = make_workload(**rec["options"])
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    sim = replay(log.sizes, log.events, config=alloc_config(rec.get("alloc_conf", "")), marks=log.marks,
                 start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,), streams=log.streams)
    an = estimate_resolved(model, w).memory
    seg = rec.get("allocator") or {}
    return {"id": rec["id"], "gpu": rec.get("gpu"), "alloc_conf": rec.get("alloc_conf", ""),
            "measured": {"allocated": rec["value_bytes"], "reserved": rec.get("max_memory_reserved"),
                         "device": rec.get("nvml_used"), "segments": seg.get("segments")},
            "simulated": {"allocated": sim.peak_allocated, "reserved": sim.peak_reserved, "segments": sim.segments,
                          "num_alloc_retries": sim.num_alloc_retries},
            "analytic": {"allocated": an.allocated, "reserved": an.reserved, "device": an.device}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("--json")
    args = ap.parse_args()
    from vramscope.validate import read_records

    out = [compare(r) for r in read_records(args.records) if r.get("source") == "vramscope measure" and "options" in r]

    def g(x):
        return "" if x is None else f"{x / GiB:.2f}"

    print("| record | measured alloc / reserved / device (GiB) | simulated alloc / reserved | analytic alloc / reserved / "
          "device | segments measured / simulated |")
    print("|---|---|---|---|---|")
    for c in out:
        m, s, a = c["measured"], c["simulated"], c["analytic"]
        print(f"| {c['id']} | {g(m['allocated'])} / {g(m['reserved'])} / {g(m['device'])} | {g(s['allocated'])} / "
              f"{g(s['reserved'])} | {g(a['allocated'])} / {g(a['reserved'])} / {g(a['device'])} | "
              f"{m['segments']} / {s['segments']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
