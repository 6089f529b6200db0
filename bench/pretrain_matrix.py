"""Pretraining at scale (issue #14): analytic vs trace for the framework policies, and vs torchtitan's published
measurements; written into docs/accuracy.md.

Run:  python bench/pretrain_matrix.py [--layers 4] [--write docs/accuracy.md]
      python bench/pretrain_matrix.py --full [--jobs 2] [--reuse] [--write docs/accuracy.md]

``--full``: the full-depth matrix (:func:`full_matrix`, llama-3-8b / 70b / 3.1-405b at their real depth, FSDP2 and
one GPU, each checkpointing policy, torchao float8 recipes, framework precision policies), traced on fake tensors
per rank; traces are cached in ``bench/results/pretrain_full.json`` (keyed by model and workload, with the torch
and torchao versions) so ``--reuse`` re-runs only the analytic side. Other rows drop in as entries of
:func:`full_matrix` (a list of ``(model, workload keywords)``).

Each configuration runs rank 0 of FSDP2 on torch's fake process group with the framework's MixedPrecisionPolicy
(torchtitan: bf16 parameters, fp32 reduce-scatter; hf/accelerate: bf16 both, autocast around forward; pytorch:
fp32 parameters under autocast) and each activation-checkpointing policy, on ``--layers``-layer variants of the
real configs (same layer shapes), beside the analytic estimate; the error of every phase is listed.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402
from accuracy_matrix import reduced  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))
from vramscope.api import estimate, estimate_resolved  # noqa: E402
from vramscope.workload import make_workload  # noqa: E402

HEADING = "## Pretraining at scale: framework precision policies and checkpointing, traced"
PUBLISHED_HEADING = "### Against torchtitan's published runs"
FULL_HEADING = "## Pretraining at full depth: the trace-vs-analytic matrix"
CACHE = ROOT / "bench" / "results" / "pretrain_full.json"
PHASES = ("load", "forward", "backward", "optimizer_step")


def matrix() -> list[tuple[str, dict]]:
    out = []
    base = dict(task="pretrain", precision="mixed", parallelism="fsdp", batch=1, seq=1024)
    for name in ("llama-3-8b", "qwen3-8b"):
        for framework in ("torchtitan", "hf"):
            for ckpt in (None, "full", "op"):
                for gpus in (8,) if ckpt else (4, 8):
                    kw = {**base, "framework": framework, "num_gpus": gpus}
                    if ckpt:
                        kw["grad_checkpointing"] = ckpt
                    out.append((name, kw))
    out.append(("llama-3-8b", {**base, "framework": "torchtitan", "num_gpus": 8, "checkpoint_every": 2}))
    out.append(("llama-3-8b", {**base, "framework": "hf", "num_gpus": 8, "grad_checkpointing": "selective",
                               "attn": "eager", "seq": 512}))
    out.append(("llama-3-8b", {**base, "framework": "torchtitan", "num_gpus": 8, "grad_checkpointing": "op",
                               "batch": 2, "seq": 2048}))
    out.append(("llama-3-8b", {**base, "framework": "pytorch", "num_gpus": 8, "grad_checkpointing": "full"}))
    out.append(("llama-3-8b", {**base, "framework": "pytorch", "num_gpus": 8}))
    return out


def tp_matrix() -> list[tuple[str, dict]]:
    """FSDP2 × tensor parallelism (± sequence parallelism) as torchtitan lays it out (trace/parallel.py): the
    (dp, tp) mesh on torch's fake process group, rank 0 traced."""
    base = dict(task="pretrain", precision="mixed", parallelism="fsdp", batch=1, seq=1024, framework="torchtitan")
    out = []
    for name in ("llama-3-8b", "qwen3-8b"):
        for sp in (False, True):
            out.append((name, {**base, "num_gpus": 8, "tp": 2, "sequence_parallel": sp}))
    out.append(("llama-3-8b", {**base, "num_gpus": 16, "tp": 4, "sequence_parallel": True}))
    out.append(("llama-3-8b", {**base, "num_gpus": 16, "tp": 4, "sequence_parallel": True, "seq": 4096}))
    out.append(("llama-3-8b", {**base, "num_gpus": 8, "tp": 2, "grad_checkpointing": "full"}))
    out.append(("llama-3-8b", {**base, "num_gpus": 8, "tp": 2, "grad_checkpointing": "op"}))
    out.append(("llama-3-8b", {**base, "num_gpus": 16, "tp": 4, "framework": "hf"}))
    out.append(("llama-3-70b", {**base, "num_gpus": 64, "tp": 8, "sequence_parallel": True}))
    return out

def full_matrix() -> list[tuple[str, dict]]:
    """The full-depth matrix (issue #14): (catalog model, workload keywords), one row each. FSDP2 rows run rank 0
    of ``num_gpus`` on torch's fake process group (every FSDP2 rank holds the same shard sizes up to padding);
    ``parallelism="none"`` rows are one GPU."""
    fsdp = dict(task="pretrain", precision="mixed", parallelism="fsdp", batch=1, seq=2048)
    one = dict(task="pretrain", precision="mixed", parallelism="none", num_gpus=1, batch=1, seq=2048)
    rows: list[tuple[str, dict]] = []

    def add(name: str, base: dict, **kw: object) -> None:
        rows.append((name, {**base, **kw}))

    titan8 = {**fsdp, "framework": "torchtitan", "num_gpus": 8}
    for ck in (None, "full", "op"):  # each checkpointing policy, bf16 and each torchao float8 recipe
        for f8 in ("none", "tensorwise", "rowwise"):
            add("llama-3-8b", titan8, **({"grad_checkpointing": ck} if ck else {}), float8=f8)
    add("llama-3-8b", titan8, checkpoint_every=2)
    add("llama-3-8b", titan8, grad_checkpointing="op", float8="rowwise_with_gw_hp")
    for ck in (None, "full", "op"):
        add("llama-3-8b", titan8, **({"grad_checkpointing": ck} if ck else {}), float8="tensorwise",
            fsdp_float8_all_gather=True)
    add("llama-3-8b", titan8, grad_checkpointing="op", float8="tensorwise", fsdp_float8_all_gather=True,
        batch=2, seq=8192)  # torchtitan's published Table 1 shape
    add("llama-3-8b", titan8, grad_checkpointing="full", batch=2, seq=4096)
    add("llama-3-8b", {**titan8, "num_gpus": 64}, grad_checkpointing="op")
    hf8 = {**fsdp, "framework": "hf", "num_gpus": 8}
    for ck in (None, "full", "op"):
        add("llama-3-8b", hf8, **({"grad_checkpointing": ck} if ck else {}))
    add("llama-3-8b", hf8, grad_checkpointing="selective", attn="eager", seq=1024)
    add("llama-3-8b", hf8, grad_checkpointing="op", float8="tensorwise")
    add("llama-3-8b", {**fsdp, "framework": "pytorch", "num_gpus": 8})
    add("llama-3-8b", {**fsdp, "framework": "pytorch", "num_gpus": 8}, grad_checkpointing="full")
    add("llama-3-8b", {**one, "framework": "hf"}, grad_checkpointing="full")
    add("llama-3-8b", {**one, "framework": "pytorch"}, grad_checkpointing="full", float8="tensorwise")
    titan70 = {**fsdp, "framework": "torchtitan", "num_gpus": 64}
    for ck in (None, "full", "op"):
        add("llama-3-70b", titan70, **({"grad_checkpointing": ck} if ck else {}))
    add("llama-3-70b", titan70, checkpoint_every=2)
    add("llama-3-70b", titan70, grad_checkpointing="full", float8="tensorwise", fsdp_float8_all_gather=True)
    add("llama-3-70b", titan70, grad_checkpointing="op", float8="rowwise")
    add("llama-3-70b", {**fsdp, "framework": "hf", "num_gpus": 64}, grad_checkpointing="full")
    add("llama-3-70b", {**fsdp, "framework": "pytorch", "num_gpus": 64}, grad_checkpointing="full")
    titan405 = {**fsdp, "framework": "torchtitan", "num_gpus": 128}
    add("llama-3.1-405b", titan405, grad_checkpointing="full", float8="tensorwise", fsdp_float8_all_gather=True)
    add("llama-3.1-405b", titan405, grad_checkpointing="full")
    add("llama-3.1-405b", titan405, grad_checkpointing="op")
    add("llama-3.1-405b", {**fsdp, "framework": "hf", "num_gpus": 128}, grad_checkpointing="full")
    add("llama-3-70b", titan70, grad_checkpointing="op", float8="tensorwise", fsdp_float8_all_gather=True)
    add("qwen3-8b", titan8, grad_checkpointing="full")
    # torch.compile per block as torchtitan applies it (trace/compiled.py: inductor's decompositions and min-cut
    # partitioner, the partitioned graphs run op by op), the loss eager (--compile-components model)
    for ck in (None, "full", "op"):
        add("llama-3-8b", titan8, **({"grad_checkpointing": ck} if ck else {}), **COMPILED_BLOCKS)
    add("llama-3-8b", titan8, checkpoint_every=2, **COMPILED_BLOCKS)
    add("llama-3-8b", titan8, grad_checkpointing="op", float8="tensorwise", **COMPILED_BLOCKS)
    add("llama-3-8b", titan8, grad_checkpointing="full", float8="rowwise", **COMPILED_BLOCKS)
    add("llama-3-70b", titan70, grad_checkpointing="full", **COMPILED_BLOCKS)
    add("llama-3-70b", titan70, grad_checkpointing="op", **COMPILED_BLOCKS)
    # MoE shapes: transformers' own DeepSeek-V3 and Qwen3-MoE code on fake tensors
    add("qwen3-30b-a3b", titan8, grad_checkpointing="full")
    add("deepseek-v3", {**titan8, "num_gpus": 64}, grad_checkpointing="full")
    return rows


def describe(kw: dict) -> str:
    ck = kw.get("grad_checkpointing")
    ck = f"ckpt {ck}" if ck else (f"ckpt every {kw['checkpoint_every']}" if kw.get("checkpoint_every") else "no ckpt")
    attn = f" {kw['attn']}" if kw.get("attn") else ""
    if kw.get("compile"):
        attn += " compile " + kw.get("compile_components", "model,loss").replace(",", "+")
    f8 = kw.get("float8", "none")
    f8 = "" if f8 == "none" else f" float8 {f8}" + (" +all-gather" if kw.get("fsdp_float8_all_gather") else "")
    if kw.get("tp", 1) > 1:
        sp = " + SP" if kw.get("sequence_parallel") else ""
        return (f"{kw['framework']} FSDP2×{kw['num_gpus'] // kw['tp']} × TP{kw['tp']}{sp} {ck}{attn}{f8} "
                f"b{kw['batch']} s{kw['seq']}")
    layout = f"FSDP2×{kw['num_gpus']}" if kw.get("parallelism") == "fsdp" else f"{kw['num_gpus']} GPU"
    return f"{kw['framework']} {layout} {ck}{attn}{f8} b{kw['batch']} s{kw['seq']}"


def tensors(ph: dict) -> int:  # the allocator's cache is compared on its own (bench/allocator_matrix.py)
    return sum(v for k, v in ph.items() if k != "allocator_cache")


def traced(model, kw: dict) -> dict:
    """The trace's phase totals (tensors and runtime overhead) for one configuration."""
    from vramscope.trace.estimator import trace_estimate

    t0 = time.perf_counter()
    tr = trace_estimate(model, make_workload(**kw), timeout=None)
    return {"phases": {p: tensors(tr.phases[p]) for p in PHASES if p in tr.phases},
            "peak": tensors(tr.components), "peak_phase": tr.peak_phase, "seconds": time.perf_counter() - t0}


def extrapolated(name: str, kw: dict, depths: tuple[int, int] = (4, 8), target: int | None = None) -> dict:
    """A full-depth trace record (:func:`traced`'s shape) from traces at two reduced depths of the same layer
    shapes: every phase's peak taken as affine in the number of layers, ``v(L) = v(l1) + (v(l2) - v(l1)) · (L -
    l1) / (l2 - l1)``. Exact where each phase peaks at the same place whatever the depth (a layer adds its shards,
    gradients, states and saved tensors, nothing else): checked on the rows traced at full depth
    (:func:`check_extrapolation`). The record says ``extrapolated_from``."""
    from vramscope.sources import resolve

    full = target or resolve(name).spec.num_layers  # ``target``: another depth than the model's own
    l1, l2 = depths
    t0 = time.perf_counter()
    a, b = traced(reduced(name, l1), kw), traced(reduced(name, l2), kw)

    def at(x: int, y: int) -> int:
        return x + (y - x) * (full - l1) // (l2 - l1)

    phases = {p: at(a["phases"][p], b["phases"][p]) for p in a["phases"] if p in b["phases"]}
    peak_phase = max(phases, key=phases.get)
    return {"phases": phases, "peak": phases[peak_phase], "peak_phase": peak_phase,
            "seconds": time.perf_counter() - t0, "extrapolated_from": [l1, l2]}


def against(model, kw: dict, tr: dict) -> dict:
    """The analytic estimate beside a trace record (:func:`traced`)."""
    an = estimate_resolved(model, make_workload(**kw))
    errs = {p: (tensors(an.phases[p]) - t) / t for p, t in tr["phases"].items()}
    a, t = tensors(an.components), tr["peak"]
    return {"trace": t, "analytic": a, "peak": (a - t) / t, "phases": errs, "seconds": tr["seconds"],
            "phase": (tr["peak_phase"], an.peak_phase)}


def phase_table(rows: list) -> list[str]:
    """The markdown table of (model, workload keywords, :func:`against` result) rows: peak and per-phase errors."""
    lines = ["| model | workload | trace | analytic | peak | load | forward | backward | optimizer step |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, kw, r in rows:
        lines.append(f"| {name} | {describe(kw)} | {r['trace'] / 2**30:.2f} GiB | {r['analytic'] / 2**30:.2f} GiB | "
                     f"{100 * r['peak']:+.2f}% | "
                     + " | ".join(f"{100 * r['phases'].get(p, 0):+.2f}%" for p in PHASES) + " |")
    return lines


def compare(model, kw: dict) -> dict:
    return against(model, kw, traced(model, kw))


def compare_rows(configs: list[tuple[str, dict]], layers: int, width: int) -> list[tuple[str, dict, dict]]:
    """:func:`compare` for each (model, keywords) at ``layers`` layers, each printed as it finishes."""
    rows = []
    for name, kw in configs:
        r = compare(reduced(name, layers), kw)
        rows.append((name, kw, r))
        print(f"{name:12s} {describe(kw):{width}s} peak {100 * r['peak']:+6.2f}% "
              + " ".join(f"{p} {100 * e:+6.2f}%" for p, e in r["phases"].items()) + f" ({r['seconds']:.0f} s)",
              flush=True)
    return rows


#: torchtitan's published runs (benchmarks/llama3_h100_202412_torchtitan.md, torchtitan 9dec370, torch 1963fc8):
#: the memory column is torchtitan's peak reserved memory (max over ranks). At 9dec370 ``training.compile``
#: compiled each TransformerBlock (``parallelize_llama.py apply_compile``) but not the loss (``train.py``:
#: "TODO: compiling loss function causes CUDA errors, turning off for now", ``loss_fn = torch.compile(loss_fn)``
#: commented out): ``compile_components="model"``. torchtitan 0.3.0 compiles both (``compile.components``).
COMPILED_BLOCKS = dict(compile=True, compile_components="model")
PUBLISHED = [
    ("Table 1, FSDP", "llama-3-8b", dict(num_gpus=8, batch=2, seq=8192, grad_checkpointing="op"), 82.4),
    ("Table 3, FSDP", "llama-3-8b", dict(num_gpus=128, batch=2, seq=8192, grad_checkpointing="op"), 67.0),
    ("Table 1, FSDP + compile + float8", "llama-3-8b",
     dict(num_gpus=8, batch=2, seq=8192, grad_checkpointing="op", float8="tensorwise", **COMPILED_BLOCKS), 76.8),
    ("Table 2, FSDP 8, seq 32768, compile + float8", "llama-3-8b",
     dict(num_gpus=8, batch=1, seq=32768, grad_checkpointing=True, float8="tensorwise", **COMPILED_BLOCKS), 83.9),
    ("Table 4, FSDP 32 × TP 8, compile + float8", "llama-3-70b",
     dict(num_gpus=256, tp=8, sequence_parallel=True, batch=16, seq=8192, grad_checkpointing=True,
          float8="tensorwise", **COMPILED_BLOCKS), 71.9),
]


def published_lines() -> list[str]:
    """The comparison with torchtitan's published runs (``PUBLISHED``), as markdown lines."""
    lines = [PUBLISHED_HEADING, "",
             "torchtitan's `benchmarks/llama3_h100_202412_torchtitan.md` (H100 96 GB; torchtitan 9dec370) reports "
             "peak *reserved* memory (`torch.cuda.max_memory_reserved`, max over ranks), compared here with "
             "vramscope's reserved figure (allocated at the peak plus the caching allocator's modelled cache, "
             "`memory/device.py`). torch.compile as torchtitan ran it at 9dec370: each TransformerBlock compiled "
             "(what torch 2.13's partitioner saves, \"torch.compile per block\" below), the loss not "
             "(`--compile-components model`: its `torch.compile(loss_fn)` was commented out, \"causes CUDA errors\"); "
             "float8 as torchao's eager Float8Linear. The last column is the same estimate with the loss compiled too "
             "(`--compile-components model,loss`, torchtitan 0.3.0's default). Before per-block compile was modelled, "
             "`--compile` meant a compiled loss and eager blocks: −23.6%, −49.1% and −38.6% on these three rows.", "",
             "| run | vramscope allocated | vramscope reserved (range) | published reserved | difference | "
             "with a compiled loss |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, name, kw, measured in PUBLISHED:
        e = estimate(name, task="pretrain", framework="torchtitan", precision="mixed", parallelism="fsdp", **kw)
        m = e.memory
        lo, hi = m.reserved_range
        both = ""
        if kw.get("compile"):
            e2 = estimate(name, task="pretrain", framework="torchtitan", precision="mixed", parallelism="fsdp",
                          **{**kw, "compile_components": "model,loss"})
            both = f"{100 * (e2.memory.reserved / 2**30 - measured) / measured:+.1f}%"
        lines.append(f"| {label}: {name}, {kw['num_gpus']} GPUs, b{kw['batch']} s{kw['seq']} | "
                     f"{m.allocated / 2**30:.1f} GiB | {m.reserved / 2**30:.1f} GiB ({lo / 2**30:.1f}–{hi / 2**30:.1f}) "
                     f"| {measured:.1f} GiB | {100 * (m.reserved / 2**30 - measured) / measured:+.1f}% | {both} |")
    lines += ["", "The eager FSDP rows agree within 5% of the published reserved peaks (the allocated figure is the "
              "modelled tensors; the cache between allocated and reserved is the allocator model's). The compile + "
              "float8 rows were 24–49% below while `--compile` counted the loss as compiled: torchtitan at 9dec370 ran "
              "its loss in eager mode, whose fp32 logits, log-softmax and gradients (7.8 GiB per copy at b2 s8192, "
              "15.7 GiB at b1 s32768, vocab 128,256) are what was missing. Per-block compile itself moves these rows "
              "little: under full checkpointing a block keeps only its input either way (it changes the one block "
              "recomputed in backward), and under the per-op policy the compiled block drops `down_proj`'s output, "
              "which nothing in backward reads (2·h bytes per token and layer: −4.0 GiB allocated in Table 1's row). "
              "float8 stays torchao's eager Float8Linear under compile (its casts fused by inductor are not modelled)."]
    return lines

def cache_key(name: str, kw: dict) -> str:
    import json

    return json.dumps([name, kw], sort_keys=True)


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "transformers", "torchao"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _trace_worker(job: tuple[str, dict]) -> tuple[str, dict]:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from vramscope.sources import resolve

    name, kw, depths = job if len(job) == 3 else (*job, None)
    try:
        rec = extrapolated(name, kw, depths) if depths else traced(resolve(name), kw)
        return cache_key(name, kw), {**rec, **_versions()}
    except Exception as e:  # reported in the table, never silently dropped
        return cache_key(name, kw), {"error": f"{type(e).__name__}: {e}"[:300], **_versions()}


def run_full(args: argparse.Namespace) -> None:
    """The full-depth matrix: trace what the cache lacks (``--jobs`` processes), then every analytic row."""
    import json
    from concurrent.futures import ProcessPoolExecutor

    from vramscope.sources import resolve

    rows = full_matrix()
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    versions = _versions()
    todo = [(n, k) for n, k in rows if not (args.reuse and cache_key(n, k) in cache
                                             and all(cache[cache_key(n, k)].get(p) == v for p, v in versions.items()))]
    if args.models:
        todo = [job for job in todo if job[0] in args.models.split(",")]
    if args.reverse:  # a second run filling the same cache from the other end
        todo.reverse()
    if args.extrapolate:  # traced at two reduced depths, every phase extrapolated (:func:`extrapolated`)
        depths = tuple(int(x) for x in args.extrapolate.split(","))
        todo = [(n, k, depths) for n, k in todo]
    if todo:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for key, rec in pool.map(_trace_worker, todo):
                # merged into the file as it is now: several runs (--models) may fill it side by side
                cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
                old = cache.get(key)
                if old and "error" not in old and "extrapolated_from" not in old and "extrapolated_from" in rec:
                    continue  # a full-depth trace that landed meanwhile stays
                cache[key] = rec
                CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
                print(f"traced {key}: {rec.get('error') or format(rec['seconds'], '.0f') + ' s'}", flush=True)
    if args.trace_only:
        return
    results, failed, pending = [], [], []
    for name, kw in rows:
        if cache_key(name, kw) not in cache:
            pending.append((name, kw))
            continue
        if "error" in cache[cache_key(name, kw)]:
            failed.append((name, kw, cache[cache_key(name, kw)]["error"]))
            continue
        r = against(resolve(name), kw, cache[cache_key(name, kw)])
        results.append((name, kw, r))
        print(f"{name:14s} {describe(kw):60s} peak {100 * r['peak']:+6.2f}% "
              + " ".join(f"{p} {100 * e:+6.2f}%" for p, e in r["phases"].items()), flush=True)
    dense = [(n, k, r) for n, k, r in results if n not in MOE_ROWS]
    worst = max(abs(e) for _, _, r in results for e in r["phases"].values())
    worst_row = max(results, key=lambda x: max(abs(e) for e in x[2]["phases"].values()))
    within = sum(all(abs(e) <= 0.03 for e in r["phases"].values()) for _, _, r in results)
    within_dense = sum(all(abs(e) <= 0.03 for e in r["phases"].values()) for _, _, r in dense)
    full_depth = [(n, k, r) for n, k, r in results if "extrapolated_from" not in cache[cache_key(n, k)]]
    slowest = max(full_depth or results, key=lambda x: x[2]["seconds"])
    rec = cache[cache_key(results[0][0], results[0][1])]
    lines = [FULL_HEADING, "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/pretrain_matrix.py --full` (torch "
             f"{rec['torch']}, transformers {rec['transformers']}, torchao {rec['torchao']}, Python "
             f"{platform.python_version()}): every configuration at its real depth (llama-3-8b 32 layers, "
             "llama-3-70b 80, llama-3.1-405b 126, Qwen3-30B-A3B 48, DeepSeek-V3 61; where marked, extrapolated per "
             "layer from two reduced depths, see below), traced on fake tensors as rank 0 of FSDP2 on torch's fake "
             "process group (every FSDP2 rank holds the same shards up to padding, so rank 0 stands for all) or on "
             "one GPU, beside the analytic estimate. Float8 rows run torchao's own `convert_to_float8_training` "
             "(Float8Linear; the output head filtered out, as torchtitan does) on the real `torch._scaled_mm` path, "
             "whose meta kernel gives the shapes on fake tensors; `+all-gather` is `enable_fsdp_float8_all_gather` "
             "with `precompute_float8_dynamic_scale_for_fsdp` after each optimizer step. Error = (analytic − trace) "
             "/ trace of the tensors and runtime overhead, per phase (the allocator's cache is compared on its own).",
             "",
             f"**{len(results)} configurations ({len(full_depth)} traced at full depth, {len(results) - len(full_depth)} "
             f"extrapolated per layer from two reduced-depth traces, marked): {within} of {len(results)} within 3% on "
             f"peak and every phase (dense models {within_dense} of {len(dense)}); worst phase error "
             f"{100 * worst:.2f}% ({worst_row[0]} {describe(worst_row[1])}). Slowest full-depth trace: {slowest[0]} "
             f"{describe(slowest[1])}, {slowest[2]['seconds']:.0f} s.**", "",
             "| model | workload | trace | analytic | peak | load | forward | backward | optimizer step | trace time |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, kw, r in results:
        lines.append(f"| {name} | {describe(kw)} | {r['trace'] / 2**30:.2f} GiB | {r['analytic'] / 2**30:.2f} GiB | "
                     f"{100 * r['peak']:+.2f}% | "
                     + " | ".join(f"{100 * r['phases'].get(p, 0):+.2f}%" for p in PHASES)
                     + f" | {r['seconds']:.0f} s{_extrapolation_mark(cache[cache_key(name, kw)])} |")
    for name, kw, err in failed:
        lines.append(f"| {name} | {describe(kw)} | trace failed: {err} | | | | | | | |")
    for name, kw in pending:
        lines.append(f"| {name} | {describe(kw)} | not traced yet | | | | | | | |")
    lines += ["", FULL_NOTES]
    text = "\n".join(lines) + "\n"
    if args.write:
        replace_section(args.write, FULL_HEADING, text)
    print(text)


def _extrapolation_mark(rec: dict) -> str:
    depths = rec.get("extrapolated_from")
    return f" (extrapolated from {depths[0]} and {depths[1]} layers)" if depths else ""


#: what :func:`check_extrapolation` measured (``python bench/pretrain_matrix.py --check-extrapolation``): rows traced
#: at full depth against their extrapolation from 4 and 8 layers, bytes off per phase
def check_extrapolation(depths: tuple[int, int] = (4, 8), names: tuple[str, ...] = ("llama-3-8b",)) -> list:
    """Each cached full-depth row of ``names``: its extrapolation from ``depths`` (:func:`extrapolated`) minus
    its full-depth trace, per phase (bytes; 0 = exact)."""
    import json

    cache = json.loads(CACHE.read_text())
    out = []
    for name, kw in full_matrix():
        rec = cache.get(cache_key(name, kw))
        if name not in names or not rec or "error" in rec or "extrapolated_from" in rec:
            continue
        ex = extrapolated(name, kw, depths)
        out.append((name, kw, {p: ex["phases"][p] - v for p, v in rec["phases"].items()}))
        print(f"{name} {describe(kw)}: " + " ".join(f"{p} {d:+d} B" for p, d in out[-1][2].items()), flush=True)
    return out


#: MoE rows: traced, and listed apart from the dense models' summary
MOE_ROWS = ("qwen3-30b-a3b", "deepseek-v3")
FULL_NOTES = (
    "What the rows show. Float8 (torchao 0.18.0, eager): `Float8Linear` saves the same high-precision input and "
    "weight a bf16 linear saves (`matmul_with_hp_or_float8_args.forward`: `ctx.save_for_backward(input_hp, "
    "weight_hp_t)`), and each cast to float8 lives only around its matmul (at its peak 9 bytes per element: the "
    "fp32 scaled copy, its clamp and the float8 result), so a float8 row peaks where its bf16 row peaks (the loss, "
    "the output head's backward, the optimizer step) with the same bytes; with `--fsdp-float8-all-gather` the "
    "layers' linear weights are gathered in 1 byte. The plain-loop rows (`--framework pytorch`: fp32 FSDP "
    "parameters under `torch.autocast`): the fp32 embedding output makes the residual stream fp32, so each RMSNorm "
    "keeps its fp32 normalized value and every linear reading the stream saves its own 16-bit cast of it (autocast "
    "caches only the weights' casts, torch 2.13 `autocast_mode.cpp` `cached_cast`): q, k and v three copies, gate "
    "and up two, 10·h bytes per token and layer more than 16-bit parameters (`memory/activations.py` "
    "`TrainFlags.autocast_fp32`; a checkpointed layer keeps its fp32 input). That was the plain-loop "
    "no-checkpointing row's −5.4% in forward and backward; it is now +0.09% / −0.00% (and the same fix moves "
    "single-GPU `--precision mixed` training, the HF Trainer's amp, by the same bytes: a 4-layer Llama-3-8B "
    "fine-tune trace, forward −0.62% → −0.00%). FSDP2's backward moments, from what the traces showed: when a "
    "decoder layer outweighs the untied embedding (MoE layers) the 2U moment is the second layer's backward, "
    "prefetching the first, with two layers' and the embedding's sharded gradients not yet there (Qwen3-30B-A3B at "
    "4 layers +1.27% → +0.19%; it was +7% at 2 layers, where no layer has a layer before it); and the last "
    "checkpointed layer's backward (full, every N-th, or torchtitan's per-op policy) holds it and the prefetched "
    "next layer, the output head's reduce-scatter input (retained until the next reduce-scatter is issued, "
    "`foreach_reduce`), the layer's weight gradients and its recomputed tensors beside everything else saved "
    "(llama-3-70b per-op −3.24% → +0.99%; every 2nd layer −7.10% → −3.58%). The every-2nd-layer gap that was left "
    "(llama-3-70b −4.61% in forward and −3.58% in backward, llama-3-8b −2.24% and −2.19%) was the trace's own: without a "
    "KV cache (transformers' checkpointing turns it off) transformers asks `find_packed_sequence_indices` whether the "
    "positions are packed, which fake tensors cannot answer, so the fake run built a causal mask that a real batch of "
    "positions 0..s-1 does not get; SDPA then ran with it instead of `is_causal`, keys and values repeated to every "
    "head (`use_gqa_in_sdpa` is false with a mask) and the mask cast to bf16, both saved by each layer that is not "
    "checkpointed (`2·a·(q − kv) + a·s` bytes per token: 4·h at the 8B and 70B shapes at s 2048, the 8B row's whole "
    "542 MB). The trace now answers as for real positions (`trace/build.py` `unpacked_positions`; tests/test_trace.py: "
    "every 2nd layer on fake tensors equals real CPU tensors, 20,480 B apart in forward before) and the rows are "
    "llama-3-8b −0.01% and −0.01% (at full depth), llama-3-70b +0.12% and +0.88% (extrapolated from 4 and 8 layers). The other checkpointed rows were traced before this fix and not re-traced: there only the one "
    "layer recomputed in backward held the mask and the repeated keys and values (4·h bytes per token of one layer: "
    "34 MB at 8B, 67 MB at 70B, beside backward peaks of 17-60 GB). MoE "
    "rows are now in the summary: DeepSeek-V3's FSDP2 ranks gather a whole 256-expert layer (21 GiB in bf16) with "
    "no expert parallelism, which is what these rows measure.\n\n"
    "Extrapolated rows. A full-depth trace costs one fake-tensor dispatch per aten op (about 1 ms in torch's "
    "`FakeTensorMode`; a 2-layer trace profiled: 12 of its 19 s import torch and transformers, the tracker's own "
    "bookkeeping is 0.1 s of the 5.4 s of dispatch), so 70B-405B rows take minutes and their wall time on this "
    "shared 2-core machine is mostly other engineers' load (the plain-loop 8B row: 310 s in the earlier run, 19 s on "
    "an idle machine, same bytes). Rows that did not finish at full depth are traced at two reduced depths of the "
    "same layer shapes and every phase is extrapolated linearly in the number of layers "
    "(`--full --extrapolate 4,8`, `extrapolated()`). That is exact when each phase peaks at the same moment "
    "whatever the depth: checked against the full-depth traces of llama-3-8b (`--check-extrapolation 4,8`), "
    "byte for byte equal on 5 of 6 rows (no checkpointing, float8 rowwise, the per-op policy, rowwise_with_gw_hp, "
    "FSDP2×64); on full checkpointing the backward came out 1.37 GB (6.8%) under, because at 4 and 8 layers the "
    "backward peaks at another moment than at 32 (each moment's bytes are affine in depth and the peak is their "
    "maximum, so an extrapolation from shallow depths can only fall short); from 8 and 16 layers it is exact too, and so were the "
    "8-and-16 extrapolations of Qwen3-30B-A3B and of llama-3.1-405b hf (full checkpointing), byte for byte equal to "
    "their full-depth traces that landed later in the same run. So full-checkpointing rows are extrapolated from 8 and 16 layers, the others from 4 and 8, except DeepSeek-V3: "
    "from 6 and 8 (its first 3 layers are dense, so at 4 no MoE layer follows another; 16 of its layers did not fit "
    "in the time this run had, and its full-checkpointing backward may therefore come out under, as above). Rows marked extrapolated are "
    "replaced by their full-depth trace whenever `--full --reuse` gets to run them.\n\n"
    "Compile rows (`compile model`): torchtitan's per-block torch.compile traced whole (`trace/compiled.py`, "
    "torch 2.13): each decoder block (inside its checkpoint wrapper, before FSDP2, torchtitan's order) compiled by "
    "Dynamo under the trace's FakeTensorMode with `fullgraph=True`, through AOTAutograd with inductor's "
    "decomposition table and partition function (the min-cut partitioner), and the partitioned forward and backward "
    "graphs run op by op on fake tensors instead of inductor's generated kernels; the tracker lets Dynamo compile "
    "past it (`ignore_compile_internals`) and counts what the compiled forward saves and what its backward "
    "allocates. The loss stays eager (`--compile-components model`, torchtitan at 9dec370; a compiled loss is not "
    "traced). What inductor would fuse inside a block is each allocated here, so a block's own transients are an "
    "upper bound, except one kind the trace runs as inductor does: a dtype conversion or `abs` of a graph input "
    "read by several consumers is run where each consumer reads it (`trace/compiled.py inline_input_casts`; "
    "inductor stores such a node only above 4 reads, a large inner function or a consumer needing realized "
    "inputs, `ir.py should_realize_on_reuse`, `graph.py run_node`). Without it llama-3-8b float8 rowwise with "
    "full checkpointing was −4.17% in backward: torchao's rowwise cast of a weight (`x.to(float32)`, "
    "`amax(abs(x))`) is one node in the forward cast and in the backward's other-axis cast, so the recomputed "
    "block's backward graph, run op by op, kept each weight's fp32 copy and bf16 `abs` (6 B per element) from "
    "the recomputed forward to its backward: at the peak, inside `down_proj`'s backward, those of the six weights "
    "after it, 912 MiB of the 924 MiB the 2-layer trace stood above eager mode (traced tensor by tensor); "
    "inductor's own CPU code for such a block (bench/compile_float8_inductor.py: three rowwise Float8Linear, "
    "checkpointed and compiled) holds no weight-shaped fp32 or `abs` buffer, only the float8 casts. Re-traced "
    "(86 s): backward 20197.6 → 19354.8 MiB, equal to the eager row's trace; every other compile row's phases "
    "are byte for byte the same with and without it at 2 layers (tests/test_pretrain_matrix.py: that row at 2 "
    "layers −11.6% before, within 3% now). All compile rows are within 0.5% on every phase except llama-3-70b "
    "full checkpointing's backward (+2.33%, extrapolated from 8 and 16 layers). Not modelled: torchao's "
    "MXFP8 training (`torchao.prototype.moe_training` `MXFP8TrainingOpConfig`): its real recipes (`MXFP8_RCEIL`) "
    "cast through Triton and CUDA kernels that fail on a CPU (\"needs triton\"), and its `EMULATED` recipe "
    "dequantizes to high precision, holding tensors the GPU kernels do not, so neither can prove a model of the GPU "
    "run. Transformer Engine FP8 for `--framework megatron` is not installable here (CUDA only) and is not modelled "
    "either; a source-only model would be unproven.")


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--write")
    ap.add_argument("--published", action="store_true",
                    help="only the comparison with torchtitan's published runs (no traces), rewritten in --write")
    ap.add_argument("--tp", action="store_true", help="only the FSDP2 × TP rows, into their own section")
    ap.add_argument("--cp", action="store_true", help="only the FSDP2 × context-parallel rows, their own section")
    ap.add_argument("--full", action="store_true", help="the full-depth matrix (full_matrix)")
    ap.add_argument("--jobs", type=int, default=1, help="--full: trace processes")
    ap.add_argument("--reuse", action="store_true", help="--full: reuse cached traces of the same versions")
    ap.add_argument("--models", help="--full: trace only these models (comma-separated)")
    ap.add_argument("--reverse", action="store_true", help="--full: trace from the last row")
    ap.add_argument("--trace-only", action="store_true", help="--full: trace into the cache, write nothing")
    ap.add_argument("--extrapolate", metavar="L1,L2",
                    help="--full: trace what the cache lacks at these two reduced depths and extrapolate per layer")
    ap.add_argument("--check-extrapolation", metavar="L1,L2",
                    help="the cached full-depth llama-3-8b rows against their extrapolation from L1 and L2 layers")
    args = ap.parse_args()
    if args.check_extrapolation:
        check_extrapolation(tuple(int(x) for x in args.check_extrapolation.split(",")))
        return
    if args.full:
        run_full(args)
        return
    if args.tp:
        tp_main(args)
        return
    if args.cp:
        cp_main(args)
        return
    if args.published:
        text = "\n".join(published_lines()) + "\n"
        if args.write:
            doc = Path(args.write)
            old = doc.read_text(encoding="utf-8")
            start = old.index(PUBLISHED_HEADING)
            end = old.find("\n## ", start)
            doc.write_text(old[:start] + text + (old[end:] if end >= 0 else ""), encoding="utf-8")
        print(text)
        return
    rows = compare_rows(matrix(), args.layers, 44)
    import torch

    worst = max(abs(e) for _, _, r in rows for e in r["phases"].values())
    titan = [(n, k, r) for n, k, r in rows if k["framework"] != "pytorch"]
    worst_titan = max(abs(e) for _, _, r in titan for e in r["phases"].values())
    lines = [HEADING, "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/pretrain_matrix.py --layers {args.layers}` "
             f"(torch {torch.__version__}, Python {platform.python_version()}): rank 0 of FSDP2 on torch's fake "
             f"process group, {args.layers}-layer variants of the real configs (same layer shapes), "
             "`--precision mixed` as each framework runs it (torchtitan's MixedPrecisionPolicy bf16/fp32; "
             "hf/accelerate's bf16/bf16 with autocast around forward; a plain PyTorch loop's fp32 parameters under "
             "autocast) and each checkpointing policy (full; `op`, torchtitan's per-op SelectiveAC ported onto "
             "transformers' layers; every 2nd layer; Megatron's core-attention `selective`). The trace itself is "
             "proven against two real gloo ranks with real CPU tensors (tests/test_trace.py, torchtitan's policy "
             "included). Error = (analytic − trace) / trace of the tensors and runtime overhead (the allocator's cache is "
             "compared on its own, in \"Reserved memory\").", "",
             f"**{len(rows)} configurations. Framework policies (torchtitan, hf/accelerate): worst phase error "
             f"{100 * worst_titan:.2f}%. All rows, the autocast rows included: worst {100 * worst:.2f}%.**", "",
             ] + phase_table(rows)
    lines += ["", "At full depth (llama-3-8b, 32 layers, FSDP2 × 8, b1 s1024, traced 2026-12-01): torchtitan no "
              "checkpointing 21.45 GiB traced / 21.47 analytic (+0.11%), hf 20.59 / 20.49 (−0.48%), torchtitan `op` "
              "19.20 / 19.20 (0.00%); every phase within 0.5%. Without checkpointing the backward peaks at the output "
              "head's reduce-scatter (its unsharded gradient beside the reduce_dtype input, one layer gathered, the "
              "saved tensors alive), a moment the traces showed and `training.py` now counts.",
              "", "The plain-loop rows (fp32 FSDP parameters under autocast): autocast's 16-bit copies of the "
              "gathered weights are saved by each linear for backward, and the output head's weight gradient exists "
              "in 16 bits and in fp32 at once; the analytic estimate counts both in backward since this wave (it "
              "was 24.7% under there). Their forward stays further off at 4 layers than at full depth (the "
              "full-depth matrix below); that path is kept for the loops that run it and is not what the frameworks "
              "do.", "",
              ] + published_lines()
    text = "\n".join(lines) + "\n"
    if args.write:
        replace_section(args.write, HEADING, text)
    print(text)


HEADING_TP = "## FSDP2 × tensor parallelism (± sequence parallelism), traced per rank"


def tp_main(args: argparse.Namespace) -> None:
    """The FSDP2 × TP rows (:func:`tp_matrix`), their own section of docs/accuracy.md."""
    import torch

    rows = compare_rows(tp_matrix(), args.layers, 52)
    worst = max(abs(e) for _, _, r in rows for e in r["phases"].values())
    lines = [HEADING_TP, "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/pretrain_matrix.py --tp --layers "
             f"{args.layers}` (torch {torch.__version__}, Python {platform.python_version()}): rank 0 of a (dp, tp) "
             "mesh on torch's fake process group, transformers' model with torchtitan's dense tensor-parallel plan "
             "written in torch's parallel styles (`trace/parallel.py`: q/k/v and gate/up column-wise, o and down "
             "row-wise, the embedding row-wise, the head column-wise with `loss_parallel`; with sequence parallelism "
             "the norms `SequenceParallel` and the attention and MLP inputs all-gathered), FSDP2 over dp with "
             "torchtitan's MixedPrecisionPolicy (hf: bf16/bf16). The fake trace is proven against four real gloo "
             "ranks (dp 2 × tp 2) on real CPU tensors in tests/test_trace_tp.py.", "",
             f"**{len(rows)} configurations, worst phase error {100 * worst:.2f}%.**", "",
             ] + phase_table(rows)
    lines += ["", "What the traces showed and the analytic model now counts (`estimators/training.py`): the loss under "
              "`loss_parallel` holds one fp32 vocabulary-shard tensor more in forward (`shifted` beside the result) "
              "and in backward (`grad_input`, `exp(x)` and their sum); torch's sequence parallelism saves the "
              "all-gathered attention and MLP inputs whole (Megatron's re-gathers them in backward, Korthikanti et "
              "al. 2022 §4.2.2); and backward peaks at the embedding's backward, where DTensor's strategy for "
              "`aten.embedding_dense_backward` writes the gradient of the whole vocabulary before splitting out this "
              "rank's rows, with the output head's unit still gathered.",
              "", "Not traced (refused with a reason): sequence parallelism with checkpointing (transformers builds "
              "the causal mask of a recomputed layer from the sequence-sharded hidden states), pipeline and context "
              "parallelism, expert parallelism."]
    text = "\n".join(lines) + "\n"
    if args.write:
        replace_section(args.write, HEADING_TP, text)
    print(text)



# ---------------------------------------------------------------------------------------------------------------
# Context parallelism (issue #14 items 5 and 7): a section of its own (the dense matrix above is edited elsewhere).
# ---------------------------------------------------------------------------------------------------------------

HEADING_CP = "## FSDP2 × context parallelism (ring attention), traced per rank"


def cp_matrix() -> list[tuple[str, dict]]:
    """FSDP2 on dp × cp with torch 2.13's ring attention as torchtitan 0.3.0 applies it (trace/context.py), 32k–128k
    tokens, rank 0 traced: (catalog model, workload keywords)."""
    base = dict(task="pretrain", precision="mixed", parallelism="fsdp", batch=1, framework="torchtitan")
    out = []
    for name in ("llama-3-8b", "llama-3-70b"):
        out.append((name, {**base, "num_gpus": 2, "sp": 2, "seq": 32768}))
        out.append((name, {**base, "num_gpus": 8, "sp": 4, "seq": 65536}))
        out.append((name, {**base, "num_gpus": 8, "sp": 8, "seq": 131072}))
    out.append(("llama-3-8b", {**base, "num_gpus": 8, "sp": 4, "seq": 32768, "grad_checkpointing": "full"}))
    out.append(("llama-3-8b", {**base, "num_gpus": 16, "sp": 4, "tp": 2, "seq": 65536}))
    return out


def describe_cp(kw: dict) -> str:
    dp = kw["num_gpus"] // (kw["sp"] * kw.get("tp", 1))
    tp = f" × TP{kw['tp']}" if kw.get("tp", 1) > 1 else ""
    ck = f" ckpt {kw['grad_checkpointing']}" if kw.get("grad_checkpointing") else ""
    return f"dp{dp} × CP{kw['sp']}{tp}{ck} b{kw['batch']} s{kw['seq']}"


def cp_transients(name: str, kw: dict, rotate: str = "allgather", rank: int = 0, layers: int = 2) -> dict:
    """The bytes torch's ring attention adds inside one attention call above what is alive at its entry (the
    last layer of the steady step; forward and backward), traced on rank ``rank`` of the fake process group with
    ``rotate`` (torch's two rotate methods), beside ``memory/parallel.py``'s ``context_parallel_transient``."""
    from torch.distributed.tensor.experimental._context_parallel import _attention as cp_attention

    from vramscope.memory.parallel import context_parallel_transient
    from vramscope.trace import estimator as trace_estimator

    model = reduced(name, layers)
    w = make_workload(**kw)
    spans: dict[str, list] = {"forward": [], "backward": []}
    trackers: list = []

    def spanned(fn, key):
        def inner(*a, **k):
            start = len(trackers[0].log.events)
            out = fn(*a, **k)
            spans[key].append((start, len(trackers[0].log.events)))
            return out
        return inner

    fwd, bwd = cp_attention._templated_ring_attention, cp_attention._templated_ring_attention_backward
    cp_attention._templated_ring_attention = spanned(fwd, "forward")
    cp_attention._templated_ring_attention_backward = spanned(bwd, "backward")
    trace_estimator.CP_ROTATE[0], trace_estimator.FAKE_RANK[0] = rotate, rank
    try:
        log, _, _ = trace_estimator.run_trace(model, w, on_tracker=trackers.append)
    finally:
        cp_attention._templated_ring_attention, cp_attention._templated_ring_attention_backward = fwd, bwd
        trace_estimator.CP_ROTATE[0], trace_estimator.FAKE_RANK[0] = "allgather", 0
    traced = {}
    for key, found in spans.items():
        start, end = found[-1]
        level = peak = 0
        for ev in log.events[start:end]:
            level += log.sizes[abs(ev) - 1] if ev > 0 else -log.sizes[abs(ev) - 1]
            peak = max(peak, level)
        traced[key] = peak
    tokens = w.batch * -(-w.seq // w.sp)
    spec = model.spec
    if w.tp_degree > 1:
        from vramscope.memory.parallel import tp_shard_spec

        spec = tp_shard_spec(spec, w.tp_degree)
    f, b = context_parallel_transient(spec, tokens, 2.0, "ring", w.sp, rotate)
    return {"traced": traced, "analytic": {"forward": f, "backward": b}}


def cp_transient_rows() -> list[tuple[str, dict, str, int]]:
    base = dict(task="pretrain", precision="mixed", parallelism="fsdp", batch=1, framework="torchtitan")
    rows = []
    for name in ("llama-3-8b", "llama-3-70b"):
        for sp, seq in ((2, 32768), (4, 65536), (8, 131072)):
            for rank in (0, 1):
                rows.append((name, {**base, "num_gpus": sp, "sp": sp, "seq": seq}, "allgather", rank))
        rows.append((name, {**base, "num_gpus": 8, "sp": 8, "seq": 131072}, "alltoall", 1))
    return rows


def cp_main(args: argparse.Namespace) -> None:
    """The FSDP2 × CP rows (:func:`cp_matrix`) and the ring's transients (:func:`cp_transient_rows`), their own
    section of docs/accuracy.md."""
    import torch

    rows = []
    for name, kw in cp_matrix():
        r = compare(reduced(name, args.layers), kw)
        rows.append((name, kw, r))
        print(f"{name:12s} {describe_cp(kw):34s} peak {100 * r['peak']:+6.2f}% "
              + " ".join(f"{p} {100 * e:+6.2f}%" for p, e in r["phases"].items()) + f" ({r['seconds']:.0f} s)",
              flush=True)
    worst = max(abs(e) for _, _, r in rows for e in r["phases"].values())
    lines = [HEADING_CP, "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/pretrain_matrix.py --cp --layers "
             f"{args.layers}` (torch {torch.__version__}, Python {platform.python_version()}): rank 0 of a (dp, cp, tp) "
             "mesh on torch's fake process group, FSDP2 on dp × cp with torchtitan's MixedPrecisionPolicy, and torch "
             "2.13's own context-parallel code as torchtitan 0.3.0 applies it (`trace/context.py`): "
             "`_enable_context_parallel_dispatcher()`, q/k/v entering attention as `Shard(2)` DTensors on the cp mesh, "
             "inputs and positions reordered by the head-tail load balancer and sharded by "
             "`_context_parallel_shard`, the all-gather rotate method (torch's default, which torchtitan keeps). "
             "DTensor's SDPA handler runs `_templated_ring_attention` and its backward on fake CPU tensors; the one "
             "substitution is the op entering it: a CUDA build's composite SDPA calls "
             "`aten._scaled_dot_product_flash_attention` (whose meta kernel gives each block's output and logsumexp), a "
             "CPU build's calls a CPU op with no CP handler, and fake CUDA tensors abort a CPU-only torch at the first "
             "autograd op, so the wrapper calls the flash op itself. The fake trace equals two real gloo ranks on real "
             "CPU tensors byte for byte at every phase of the steady step (tests/test_trace_cp.py; there the flash op "
             "is given CPU kernels, torch's CPU flash attention, and gloo's own staging copies inside FSDP2's "
             "collectives, which NCCL does not make, are left out).", "",
             f"**{len(rows)} configurations, worst phase error {100 * worst:.2f}%.**", "",
             "| model | workload | trace | analytic | peak | load | forward | backward | optimizer step |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, kw, r in rows:
        lines.append(f"| {name} | {describe_cp(kw)} | {r['trace'] / 2**30:.2f} GiB | {r['analytic'] / 2**30:.2f} GiB | "
                     f"{100 * r['peak']:+.2f}% | " + " | ".join(f"{100 * r['phases'].get(p, 0):+.2f}%" for p in PHASES)
                     + " |")
    lines += ["", "With Llama 3's 128,256-token vocabulary the loss head (fp32 logits and their gradient) sets every "
              "phase's peak at these depths, so the ring's own transients are compared inside the attention call: "
              "the bytes above what is alive at its entry, traced on a given rank and rotate method (last layer of "
              "the steady step) beside `context_parallel_transient` (`memory/parallel.py`, each term named from "
              "torch's source there).", "",
              "| model | ranks × tokens | rotate | rank | forward traced | analytic | backward traced | analytic |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for name, kw, rotate, rank in cp_transient_rows():
        t = cp_transients(name, kw, rotate, rank, args.layers)
        tr, an = t["traced"], t["analytic"]
        line = (f"| {name} | {kw['sp']} × {kw['seq'] // kw['sp']:,} | {rotate} | {rank} | "
                f"{tr['forward'] / 2**20:,.0f} MiB | {an['forward'] / 2**20:,.0f} MiB | "
                f"{tr['backward'] / 2**20:,.0f} MiB | {an['backward'] / 2**20:,.0f} MiB |")
        lines.append(line)
        print(line, flush=True)
    lines += ["", "What the traces showed and the analytic model now counts (`estimators/training.py`, "
              "`memory/parallel.py`): (1) the ring's merged output (`_SDPAMerger.results`) is laid out (batch, heads, "
              "seq, head_dim), so the attention output's `transpose(1, 2).contiguous()` is a copy, saved by the output "
              "projection beside the attention op's own saved output: one `T·q_dim·a` tensor more per layer (the flash "
              "kernel's output, laid out (batch, seq, heads, head_dim), needs no copy); it had been missing (70B: "
              "−0.62% forward at 16,384 local tokens); (2) the exchange's bytes exist inside attention only: they had "
              "been added at the loss head's moments too, and were one formula (`tokens·kv·(4a + 8)`) for both "
              "passes, without the all-gathered keys and values (`n` ranks' worth under the default rotate method) "
              "or the fp32 merge; (3) forward peaks on every rank but 0: the head-tail balancer gives rank 0 half-block "
              "merges (`partial=True`), the others whole ones.",
              "", "Not traced (refused with a reason): DeepSpeed-Ulysses (`--sp-mode ulysses`), sequences not divisible "
              "by 2 × cp (the head-tail balancer), CP with chunked cross-entropy, activation offload or sequence "
              "parallelism, flex attention, pipeline and expert parallelism."]
    text = "\n".join(lines) + "\n"
    if args.write:
        replace_section(args.write, HEADING_CP, text)
    print(text)


if __name__ == "__main__":
    main()
