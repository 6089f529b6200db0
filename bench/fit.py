"""Benchmark: a whole `fit` answer (fits?, largest batch, longest context, fewest GPUs, suggestions) in-process.

Run:  python bench/fit.py [--runs 21] [--write docs/benchmarks.md]
Target: under 50 ms per answer. Medians from one run on one machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402
sys.path.insert(0, str(ROOT / "src"))

from vramscope.gpus import find_gpu  # noqa: E402
from vramscope.plan import fit  # noqa: E402
from vramscope.sources import resolve  # noqa: E402
from vramscope.workload import make_workload  # noqa: E402

CASES = [
    ("llama-3-8b inference on rtx-4090 (fits)", "llama-3-8b", {}, "rtx-4090"),
    ("llama-3-8b full fine-tune on rtx-4090 (does not fit: suggestions)", "llama-3-8b", {"task": "finetune"},
     "rtx-4090"),
    ("llama-3-70b inference on rtx-4090 (tensor-parallel count)", "llama-3-70b", {}, "rtx-4090"),
    ("qwen2.5-7b LoRA seq 4096 on a100-80gb", "qwen2.5-7b", {"task": "finetune", "method": "lora", "seq": 4096},
     "a100-80gb"),
    ("deepseek-v3 inference on h200 (MoE + MLA)", "deepseek-ai/DeepSeek-V3", {}, "h200"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--write")
    args = ap.parse_args()
    rows = []
    for label, name, kw, gpu in CASES:
        model = resolve(name)
        w = make_workload(**kw)
        g = find_gpu(gpu)
        fit(model, w, g)  # warm caches as a long-lived process (API, web) would
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            fit(model, w, g)
            times.append(time.perf_counter() - t)
        cold_t = time.perf_counter()
        fit(resolve(name), make_workload(**kw), find_gpu(gpu))
        rows.append((label, statistics.median(times), time.perf_counter() - cold_t))
    lines = ["## Planning (`fit`)", "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/fit.py --runs {args.runs}` on "
             f"{platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}. One answer = "
             "fit verdict + largest batch + longest context + fewest GPUs + re-estimated suggestions. Target: "
             "under 50 ms.", "",
             "| case | median | incl. model resolution |", "|---|---:|---:|"]
    lines += [f"| {label} | {m * 1000:.1f} ms | {c * 1000:.1f} ms |" for label, m, c in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, "## Planning (`fit`)", text)


if __name__ == "__main__":
    main()
