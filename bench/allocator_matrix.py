"""The caching-allocator model on the trace matrix: simulated reserved memory, and the analytic estimate of it.

Run:  python bench/allocator_matrix.py [--fit] [--write docs/accuracy.md] [--json bench/results/allocator_matrix.json]
      python bench/allocator_matrix.py --from-json bench/results/allocator_matrix.json --fit   (no tracing)

Every workload of tests/test_trace_matrix.py (real catalog configs cut to 2 layers) plus a few full-depth small
models is traced (the real transformers/peft code on fake tensors); the trace's allocation stream is replayed
through ``memory/allocator.py`` from the loaded model on, after torch's cuBLAS workspace, which gives the
simulated ``max_memory_reserved``. The analytic estimator's reserved number (``memory/device.py``:
``allocator_cache``) is compared with it. ``--fit`` searches the calibration constants of ``allocator_cache``
again (grid over the transient shares, least squares for the loss-churn and FSDP terms, keeping the grid point
with the most workloads within 3% plus within 10%) and prints them with the agreement they give; the constants in
``memory/device.py`` are the ones this search printed.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
from _docs import replace_section  # noqa: E402

MiB = 2**20
GiB = 2**30

#: full-depth small models (the 2-layer cuts leave out how many layers' frees interleave)
FULL_DEPTH = [
    ("qwen2.5-0.5b", dict(task="finetune", seq=512)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=1024, method="lora")),
    ("qwen2.5-0.5b", dict(task="finetune", seq=2048, method="lora", grad_checkpointing=True)),
    ("qwen2.5-0.5b", dict(task="inference", seq=2048, batch=2)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=512, num_gpus=4, parallelism="fsdp")),
    ("llama-3.2-1b", dict(task="finetune", seq=512)),
    ("llama-3.2-1b", dict(task="finetune", seq=1024, method="lora")),
    ("llama-3.2-1b", dict(task="finetune", seq=1024, grad_checkpointing=True, ce_chunks=8)),
]


def cases() -> list[tuple[str, dict, bool]]:
    from test_trace_matrix import CASES

    return [(n, kw, False) for n, kw in CASES] + [(n, kw, True) for n, kw in FULL_DEPTH]


def resolved(name: str, full: bool):
    from test_trace_matrix import two_layers

    from vramscope.sources import catalog
    from vramscope.sources.base import ResolvedModel
    from vramscope.sources.hf_config import spec_from_config

    if not full:
        return two_layers(name)
    cfg = copy.deepcopy(catalog.find(name)["config"])
    spec = spec_from_config(cfg, name=name)
    return ResolvedModel(spec=spec, kind="catalog", origin=name, params=spec.params,
                         active_params=spec.active_params, hf_config=cfg)


def features(model, w) -> dict:
    """What ``allocator_cache`` reads from the analytic estimate, kept so that ``--fit`` needs no re-estimate."""
    from vramscope.api import estimate_resolved
    from vramscope.estimators.common import compute_dtype, dtype_bytes
    from vramscope.memory.device import rounding_share
    from vramscope.model.tensors import largest_layer, largest_tensor

    an = estimate_resolved(model, w)
    db = dtype_bytes(compute_dtype(model, w))
    phases = {}
    for p, c in an.phases.items():
        phases[p] = {k: v for k, v in c.items() if k not in ("overhead", "allocator_cache")}
    persistent = sum(an.components.get(k, 0) for k in ("weights", "master_weights", "gradients", "optimizer_states"))
    return {"phases": phases, "moe": model.active_params != model.params,
            "rounding": rounding_share(model.spec, db) * persistent if w.quant == "none" and w.method != "qlora"
            else 0.0, "big": largest_tensor(model.spec) * db,
            "training": bool(w.training),
            "fsdp_unit": float(max(largest_layer(model.spec), largest_tensor(model.spec)) * db
                               if w.training and w.num_gpus > 1 and w.strategy.is_fsdp else 0),
            "full": bool(w.method in ("full", "freeze")),
            "analytic_cache": an.memory.terms["allocator_cache"], "analytic_allocated": an.memory.allocated,
            "analytic_reserved": an.memory.reserved}


def run_one(name: str, kw: dict, full: bool) -> dict:
    from vramscope.memory.allocator import replay
    from vramscope.memory.overhead import CUBLAS_WORKSPACE
    from vramscope.trace.estimator import quiet_libraries, run_trace
    from vramscope.workload import make_workload

    model, w = resolved(name, full), make_workload(**kw)
    t0 = time.perf_counter()
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    sim = replay(log.sizes, log.events, marks=log.marks, start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,),
                 streams=log.streams)
    row = {"model": name, "workload": kw, "full_depth": full, "trace_s": round(time.perf_counter() - t0, 1),
           "sim_allocated": sim.peak_allocated, "sim_reserved": sim.peak_reserved,
           "sim_cache": sim.peak_reserved - sim.peak_allocated, "sim_phase_reserved": sim.phase_reserved,
           "retries": sim.num_alloc_retries, "streams": len(set(log.streams))}
    row.update(features(model, w))
    return row


def _tensors(c: dict) -> int:
    return sum(c.values())


def _transient(c: dict) -> int:
    return sum(c.get(k, 0) for k in ("activations", "temporaries", "loss_head"))


def predict(r: dict, b: float, bm: float, bo: float, loss: float, gather: float, reduce: float) -> float:
    steps = {p: c for p, c in r["phases"].items() if p != "load"}
    share = bm if r["moe"] else b
    peak = max(_tensors(c) for c in steps.values())
    held = max(_tensors(c) + share * _transient(c) + bo * c.get("optimizer_temp", 0) for c in steps.values())
    return (held - peak + r["rounding"] + loss * _loss(r) + gather * r["fsdp_unit"]
            + reduce * r["fsdp_unit"] * r["full"])


def _loss(r: dict) -> float:
    """The loss head's bytes (logits and loss) when training: their churn between steps."""
    return r["training"] * max(c.get("loss_head", 0) for c in r["phases"].values())


def errors(rows: list[dict], consts: tuple) -> list[float]:
    """(analytic reserved − simulated reserved) / simulated reserved, the analytic allocated taken as the trace's."""
    return [(r["sim_allocated"] + predict(r, *consts) - r["sim_reserved"]) / r["sim_reserved"] for r in rows]


def _lstsq(xs: list[list[float]], ys: list[float]) -> list[float]:
    """Least squares by the normal equations (3 unknowns, Gaussian elimination; no numpy needed)."""
    n = len(xs[0])
    a = [[sum(x[i] * x[j] for x in xs) for j in range(n)] + [sum(x[i] * y for x, y in zip(xs, ys))]
         for i in range(n)]
    for i in range(n):
        piv = max(range(i, n), key=lambda k: abs(a[k][i]))
        a[i], a[piv] = a[piv], a[i]
        if abs(a[i][i]) < 1e-9:
            continue
        for k in range(n):
            if k != i:
                f = a[k][i] / a[i][i]
                a[k] = [u - f * v for u, v in zip(a[k], a[i])]
    return [a[i][n] / a[i][i] if abs(a[i][i]) >= 1e-9 else 0.0 for i in range(n)]


def fit(rows: list[dict]) -> tuple:
    best = None
    grid = [i / 50 for i in range(0, 26)]
    for b in grid:
        for bm in grid:
            for bo in [i / 10 for i in range(0, 21)]:
                base = [predict(r, b, bm, bo, 0, 0, 0) for r in rows]
                # least squares for the three linear terms, clipped at zero
                xs = [[_loss(r), r["fsdp_unit"], r["fsdp_unit"] * r["full"]] for r in rows]
                ys = [r["sim_cache"] - p for r, p in zip(rows, base)]
                coef = [max(0.0, c) for c in _lstsq(xs, ys)]
                consts = (b, bm, bo) + tuple(round(c, 2) for c in coef)
                err = [abs(e) for e in errors(rows, consts)]
                score = (sum(e <= 0.03 for e in err) + sum(e <= 0.10 for e in err), -statistics.median(err))
                if best is None or score > best[0]:
                    best = (score, consts)
    return best[1]


def current() -> tuple:
    from vramscope.memory import device

    return (device.TRANSIENT_CACHE, device.TRANSIENT_CACHE_MOE, device.OPTIMIZER_CACHE, device.LOSS_CHURN,
            device.FSDP_GATHER, device.FSDP_REDUCE)


def summary(rows: list[dict], consts: tuple) -> dict:
    err = errors(rows, consts)
    flat = [(r["sim_allocated"] * 1.15 - r["sim_reserved"]) / r["sim_reserved"] for r in rows]
    none = [(r["sim_allocated"] - r["sim_reserved"]) / r["sim_reserved"] for r in rows]
    out = {}
    for name, e in (("calibrated", err), ("flat_15pct", flat), ("allocated_only", none)):
        a = [abs(x) for x in e]
        out[name] = {"within_3pct": sum(x <= 0.03 for x in a), "within_10pct": sum(x <= 0.10 for x in a),
                     "median": statistics.median(a), "worst": max(a), "n": len(a)}
    return out


def markdown(rows: list[dict], consts: tuple, meta: dict) -> str:
    s = summary(rows, consts)
    c, f, z = s["calibrated"], s["flat_15pct"], s["allocated_only"]
    lines = [
        "## Reserved memory: the caching-allocator model and the analytic estimate",
        "",
        f"`bench/allocator_matrix.py` ({meta['date']}, torch {meta['torch']}, transformers {meta['transformers']}) "
        "traces every workload of `tests/test_trace_matrix.py` (2-layer cuts) and "
        f"{sum(r['full_depth'] for r in rows)} full-depth small models, replays each trace's allocation stream "
        "through `memory/allocator.py` (a model of torch's `CUDACachingAllocator`, default settings) from the "
        "loaded model on, and compares the analytic estimator's reserved number (`memory/device.py`) with the "
        "simulated `max_memory_reserved`.",
        "",
        f"Analytic reserved vs simulated, {c['n']} workloads: within 3% for {c['within_3pct']}, within 10% for "
        f"{c['within_10pct']}; median error {100 * c['median']:.1f}%, worst {100 * c['worst']:.1f}%. "
        f"For comparison, allocated + a flat 15%: within 3% for {f['within_3pct']}, median {100 * f['median']:.1f}%, "
        f"worst {100 * f['worst']:.1f}%; allocated alone (no cache): within 3% for {z['within_3pct']}, median "
        f"{100 * z['median']:.1f}%, worst {100 * z['worst']:.1f}%.",
        "",
        f"Constants (share of the transient {consts[0]}, MoE {consts[1]}, optimizer-step temporaries {consts[2]}, "
        f"loss churn {consts[3]} × the loss head, FSDP's all-gather stream {consts[4]} and reduce-scatter stream "
        f"{consts[5]} × the largest unit's unsharded bytes). The issue's "
        "goal was 3% everywhere; the misses are listed below with the simulated cache.",
        "",
        "| model | depth | workload | allocated | simulated reserved | cache (sim) | cache (analytic) | error |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r, e in zip(rows, errors(rows, consts)):
        wl = ", ".join(f"{k}={v}" for k, v in r["workload"].items())
        lines.append(f"| {r['model']} | {'full' if r['full_depth'] else '2 layers'} | {wl} | "
                     f"{r['sim_allocated'] / GiB:.2f} GiB | {r['sim_reserved'] / GiB:.2f} GiB | "
                     f"{r['sim_cache'] / MiB:.0f} MiB | {predict(r, *consts) / MiB:.0f} MiB | {100 * e:+.1f}% |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", action="store_true", help="search the calibration constants again")
    ap.add_argument("--write", help="replace the section in this markdown file")
    ap.add_argument("--json", help="write the raw rows here")
    ap.add_argument("--from-json", help="read rows instead of tracing")
    args = ap.parse_args()
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        rows, meta = data["rows"], data["meta"]
    else:
        import torch
        import transformers

        meta = {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
                "transformers": transformers.__version__, "python": platform.python_version()}
        rows = []
        for name, kw, full in cases():
            rows.append(run_one(name, kw, full))
            r = rows[-1]
            print(f"{name:14s} {'full' if full else '2L  '} {str(kw)[:60]:60s} alloc {r['sim_allocated'] / MiB:8.0f} "
                  f"reserved {r['sim_reserved'] / MiB:8.0f} cache {r['sim_cache'] / MiB:6.0f} "
                  f"(analytic {r['analytic_cache'] / MiB:6.0f}) {r['trace_s']}s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    consts = fit(rows) if args.fit else current()
    print("constants:", consts)
    print(json.dumps(summary(rows, consts), indent=1))
    if args.write:
        replace_section(args.write, "## Reserved memory: the caching-allocator model", markdown(rows, consts, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
