"""Analytic vs trace on a matrix of real model configs (full depth), written into docs/accuracy.md.

Run:  python bench/accuracy_matrix.py [--quick] [--write docs/accuracy.md] [--json bench/results/accuracy_matrix.json]

Each configuration is estimated analytically and traced (the real transformers/peft code on fake tensors);
the table gives the peak error and the largest per-component error at the peak phase (components that are at
least 1% of the peak). Needs the trace extra. --quick runs 4-layer variants of the same configs (same layer
shapes), which is what the CI test matrix does.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402
sys.path.insert(0, str(ROOT / "src"))

from vramscope.api import estimate_resolved  # noqa: E402
from vramscope.sources import catalog, resolve  # noqa: E402
from vramscope.sources.base import ResolvedModel  # noqa: E402
from vramscope.sources.hf_config import spec_from_config  # noqa: E402
from vramscope.workload import make_workload  # noqa: E402

SHAPES = [(1, 512), (1, 2048), (2, 1024)]


def matrix() -> list[tuple[str, dict]]:
    out = []
    for name, attns in (("llama-3-8b", ("sdpa", "eager")), ("qwen3-8b", ("sdpa", "eager")),
                        ("gemma-2-2b", ("eager",)), ("mixtral-8x7b", ("sdpa",))):
        for method in ("full", "lora"):
            for attn in attns:
                for ckpt in (False, True):
                    shapes = SHAPES if name == "llama-3-8b" and attn == "sdpa" else SHAPES[:1] + SHAPES[2:]
                    if name == "mixtral-8x7b":
                        shapes = SHAPES[:1]
                    for batch, seq in shapes:
                        out.append((name, dict(task="finetune", method=method, attn=attn, grad_checkpointing=ckpt,
                                               batch=batch, seq=seq)))
    for name in ("llama-3-8b", "qwen3-8b", "gemma-2-2b", "mixtral-8x7b"):
        for batch, seq in ((1, 4096), (4, 1024)):
            out.append((name, dict(task="inference", batch=batch, seq=seq)))
    # training recipes beyond the basics (DoRA, selective / every-N checkpointing, chunked cross-entropy,
    # optimizer step in backward, activation offloading) and FSDP2 per rank on a fake process group
    base = dict(task="finetune", attn="sdpa", batch=1, seq=2048)
    for name, extra in (
            ("llama-3-8b", dict(method="lora", dora=True)),
            ("llama-3-8b", dict(method="lora", dora=True, grad_checkpointing=True)),
            ("llama-3-8b", dict(method="full", attn="eager", seq=1024, checkpoint_mode="selective")),
            ("qwen3-8b", dict(method="lora", checkpoint_every=2)),
            ("llama-3-8b", dict(method="full", ce_chunks=8)),
            ("llama-3-8b", dict(method="full", grad_checkpointing=True, ce_chunks=8, optimizer_in_backward=True)),
            ("llama-3-8b", dict(method="lora", activation_offload=True)),
            ("qwen3-8b", dict(method="full", grad_checkpointing=True, activation_offload=True,
                              optimizer_in_backward=True)),
            ("llama-3-8b", dict(method="full", num_gpus=8, parallelism="fsdp")),
            ("llama-3-8b", dict(method="full", num_gpus=8, parallelism="fsdp", grad_checkpointing=True)),
            ("llama-3-8b", dict(method="lora", num_gpus=4, parallelism="fsdp", grad_checkpointing=True)),
            ("qwen3-8b", dict(method="full", num_gpus=4, parallelism="fsdp")),
            ("mixtral-8x7b", dict(method="lora", num_gpus=8, parallelism="fsdp", seq=512))):
        out.append((name, {**base, **extra}))
    return out


def reduced(name: str, layers: int) -> ResolvedModel:
    cfg = copy.deepcopy(catalog.find(name)["config"])
    cfg["num_hidden_layers"] = layers
    if "layer_types" in cfg:
        cfg["layer_types"] = cfg["layer_types"][:layers]
    spec = spec_from_config(cfg, name=f"{name} ({layers} layers)")
    return ResolvedModel(spec=spec, kind="catalog", origin=name, params=spec.params,
                         active_params=spec.active_params, hf_config=cfg)


def compare(model: ResolvedModel, kw: dict) -> dict:
    from vramscope.trace.estimator import trace_estimate

    w = make_workload(**kw)
    t0 = time.perf_counter()
    tr = trace_estimate(model, w)
    seconds = time.perf_counter() - t0
    an = estimate_resolved(model, w)

    def tensors(ph: dict) -> int:  # the allocator's cache is compared on its own (bench/allocator_matrix.py)
        return sum(v for k, v in ph.items() if k != "allocator_cache")

    a_total, t_total = tensors(an.components), tensors(tr.components)
    peak_err = (a_total - t_total) / t_total
    comps = {}
    phase = tr.peak_phase
    a_ph, t_ph = an.phases.get(phase, {}), tr.phases[phase]
    for k in set(a_ph) | set(t_ph):
        av, tv = a_ph.get(k, 0), t_ph.get(k, 0)
        if k in ("overhead", "allocator_cache") or max(av, tv) < 0.01 * t_total:
            continue
        comps[k] = (av - tv) / tv if tv else float("inf")
    worst = max(comps.items(), key=lambda kv: abs(kv[1])) if comps else ("", 0.0)
    phase_errs = {p: (tensors(an.phases[p]) - tensors(t)) / tensors(t)
                  for p, t in tr.phases.items() if p in an.phases}
    return {"model": model.spec.name, "workload": kw, "trace_bytes": t_total,
            "analytic_bytes": a_total, "trace_reserved_bytes": tr.memory.reserved,
            "analytic_reserved_bytes": an.memory.reserved, "trace_phase": tr.peak_phase, "analytic_phase": an.peak_phase,
            "peak_error": peak_err, "worst_component": worst[0], "worst_component_error": worst[1],
            "components": comps, "phase_errors": phase_errs,
            "worst_phase_error": max(phase_errs.values(), key=abs), "trace_seconds": seconds}


def describe(kw: dict) -> str:
    if kw["task"] == "inference":
        return f"inference b{kw['batch']} s{kw['seq']}"
    tags = {"dora": "dora", "optimizer_in_backward": "opt-in-bwd", "activation_offload": "act-offload"}
    extra = [tag for key, tag in tags.items() if kw.get(key)]
    if kw.get("checkpoint_mode") == "selective":
        extra.append("selective-ckpt")
    elif kw.get("checkpoint_every", 1) > 1:
        extra.append(f"ckpt-every-{kw['checkpoint_every']}")
    elif kw.get("grad_checkpointing"):
        extra.append("ckpt")
    if kw.get("ce_chunks", 1) > 1:
        extra.append(f"chunked-ce-{kw['ce_chunks']}")
    if kw.get("num_gpus", 1) > 1:
        extra.append(f"{kw['parallelism']}×{kw['num_gpus']} (rank 0)")
    return f"{kw['method']} {kw['attn']} {' '.join(extra)} b{kw['batch']} s{kw['seq']}".replace("  ", " ")


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for name, kw in matrix():
        model = reduced(name, 4) if args.quick else resolve(name)
        row = compare(model, kw)
        rows.append(row)
        print(f"{name:14s} {describe(kw):32s} trace {row['trace_bytes'] / 2**30:7.2f} GiB "
              f"analytic {row['analytic_bytes'] / 2**30:7.2f} GiB  peak {100 * row['peak_error']:+6.2f}%  "
              f"worst component {row['worst_component']} {100 * row['worst_component_error']:+6.2f}%  "
              f"worst phase {100 * row['worst_phase_error']:+6.2f}%  ({row['trace_seconds']:.0f} s)", flush=True)
    peaks = [abs(r["peak_error"]) for r in rows]
    comps = [abs(r["worst_component_error"]) for r in rows]
    phases = [abs(r["worst_phase_error"]) for r in rows]
    import torch
    import transformers

    versions = f"torch {torch.__version__}, transformers {transformers.__version__}"
    lines = ["## Analytic vs trace (training and inference)", "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/accuracy_matrix.py"
             f"{' --quick' if args.quick else ''}` ({versions}, Python {platform.python_version()}), "
             f"{len(rows)} configurations{' (4-layer variants of the real configs)' if args.quick else ', full depth'}. "
             "Peak error = (analytic − trace) / trace of the per-GPU peak of the tensors and runtime overhead (the "
             "allocator's cache is compared on its own, in \"Reserved memory\"); component error = the largest "
             "relative difference among the components of the trace's peak phase that hold at least 1% of it.", "",
             f"**Peak: median |error| {100 * statistics.median(peaks):.2f}%, worst {100 * max(peaks):.2f}%. "
             f"Components: median of the worst |error| {100 * statistics.median(comps):.2f}%, worst "
             f"{100 * max(comps):.2f}%. Every phase (load, forward, backward, optimizer step / prefill, decode): "
             f"median of the worst |error| {100 * statistics.median(phases):.2f}%, worst {100 * max(phases):.2f}%.**",
             "",
             "| model | workload | trace | analytic | peak error | peak phase (trace / analytic) | worst component "
             "| worst phase |",
             "|---|---|---:|---:|---:|---|---|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {describe(r['workload'])} | {r['trace_bytes'] / 2**30:.2f} GiB | "
                     f"{r['analytic_bytes'] / 2**30:.2f} GiB | {100 * r['peak_error']:+.2f}% | "
                     f"{r['trace_phase']} / {r['analytic_phase']} | {r['worst_component']} "
                     f"{100 * r['worst_component_error']:+.2f}% | {100 * r['worst_phase_error']:+.2f}% |")
    text = "\n".join(lines) + "\n"
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    if args.write:
        replace_section(args.write, "## Analytic vs trace (training and inference)", text)
    print(text)


if __name__ == "__main__":
    main()
