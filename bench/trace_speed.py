"""Benchmark: how long a trace takes (target: Llama-3-8B full training step at seq 2048 under 30 s on 2 cores).

Run:  python bench/trace_speed.py [--write docs/benchmarks.md]
Wall time of the whole `vramscope trace` command (interpreter start, imports, fake model build, two training
steps) and the peak resident memory of the process, one run each (a trace takes seconds; noise is small
relative to that).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import replace_section  # noqa: E402

CASES = [
    ("Llama-3-8B full fine-tune, seq 2048 (target < 30 s)",
     ["meta-llama/Meta-Llama-3-8B", "--task", "finetune", "--method", "full", "--seq", "2048"]),
    ("Llama-3-8B LoRA r16 all-linear, seq 2048", ["llama-3-8b", "--task", "finetune", "--method", "lora", "--seq", "2048"]),
    ("Llama-3-8B inference, 4096 tokens", ["llama-3-8b", "--seq", "4096"]),
    ("Qwen2.5-0.5B full fine-tune, seq 1024", ["qwen2.5-0.5b", "--task", "finetune", "--seq", "1024"]),
    ("Llama-3-8B full fine-tune, FSDP2 rank 0 of 8 (fake process group), seq 2048",
     ["llama-3-8b", "--task", "finetune", "--seq", "2048", "--gpus", "8", "--parallelism", "fsdp"]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    args = ap.parse_args()
    rows = []
    for label, cli in CASES:
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "vramscope", "trace", *cli, "--quiet", "--json"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB, max over children so far
        ok = p.returncode == 0
        rows.append((label, wall, rss, ok))
        print(f"{label}: {wall:.1f} s, max RSS so far {rss:.0f} MiB, {'ok' if ok else p.stderr[-300:]}", flush=True)
    import torch
    import transformers

    lines = ["## Trace speed", "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/trace_speed.py` on {platform.machine()} "
             f"({os.cpu_count()} cores), torch {torch.__version__}, transformers {transformers.__version__}. Wall "
             "time of the whole command (interpreter, imports, fake model build, workload; two optimizer steps for "
             "training), one run each. The model's memory is never allocated: the RSS column is the largest "
             "resident set of any trace process up to that row.", "",
             "| trace | wall time | max RSS |", "|---|---:|---:|"]
    lines += [f"| {label} | {wall:.1f} s | {rss:.0f} MiB |" for label, wall, rss, ok in rows if ok]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, "## Trace speed", text)


if __name__ == "__main__":
    main()
