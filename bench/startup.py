"""Benchmark: CLI cold start and in-process estimate latency, with competitors where they can run.

Run:  python bench/startup.py [--runs 15] [--write docs/benchmarks.md]

Cold start = a fresh interpreter per run (what a user waits for). Medians and the ratio to vramscope are
reported from one run on one machine; absolute numbers depend on the machine, ratios much less. Competitors
that need the Hugging Face Hub for an estimate (accelerate estimate-memory, hf-mem) are timed on `--help`,
the only thing they can do offline.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402


def time_cmd(cmd: list[str], runs: int) -> float | None:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        # with bytecode caches, as after `pip install` (which compiles them); a shell exporting
        # PYTHONDONTWRITEBYTECODE would otherwise time the compiler on every start
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**env, "HF_HUB_OFFLINE": "1"})
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            return None
    return statistics.median(times)


def in_process(runs: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "src"))
    import vramscope
    from vramscope.api import estimate_resolved
    from vramscope.sources import resolve
    from vramscope.workload import make_workload

    vramscope.estimate("llama-3-8b")  # warm the catalog cache
    cases = {
        "inference llama-3-8b": dict(model="llama-3-8b"),
        "lora finetune llama-3-8b": dict(model="llama-3-8b", task="finetune", method="lora"),
        "inference deepseek-v3 (61 layers, 256 experts)": dict(model="deepseek-ai/DeepSeek-V3"),
    }
    out = {}
    for label, kw in cases.items():
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            vramscope.estimate(**kw)
            times.append(time.perf_counter() - t)
        out[label] = statistics.median(times)
    m = resolve("llama-3-8b")
    w = make_workload()
    times = []
    for _ in range(runs * 10):
        t = time.perf_counter()
        estimate_resolved(m, w)
        times.append(time.perf_counter() - t)
    out["estimate only (model resolved)"] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--write", help="markdown file whose startup section is replaced")
    args = ap.parse_args()
    py = sys.executable
    bindir = Path(py).parent
    cmds = {
        "vramscope --help": [py, "-m", "vramscope", "--help"],
        "vramscope estimate llama-3-8b": [py, "-m", "vramscope", "estimate", "llama-3-8b"],
        "vramscope estimate llama-3-8b --task finetune --method lora --json":
            [py, "-m", "vramscope", "estimate", "llama-3-8b", "--task", "finetune", "--method", "lora", "--json"],
        "python -c pass (interpreter floor)": [py, "-c", "pass"],
    }
    acc = shutil.which("accelerate", path=str(bindir)) or shutil.which("accelerate")
    if acc:
        cmds["accelerate estimate-memory --help"] = [acc, "estimate-memory", "--help"]
    hfm = shutil.which("hf-mem", path=str(bindir)) or shutil.which("hf-mem")
    if hfm:
        cmds["hf-mem --help"] = [hfm, "--help"]
    cold = {label: time_cmd(cmd, args.runs) for label, cmd in cmds.items()}
    warm = in_process(args.runs)
    base = cold["vramscope estimate llama-3-8b"] or 1.0
    lines = [
        "## Startup and latency",
        "",
        f"Measured {datetime.date.today().isoformat()} by `python bench/startup.py --runs {args.runs}` on "
        f"{platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}; medians of "
        f"{args.runs} runs, each command in a fresh interpreter with its bytecode cached (as after pip install). Competitors that need the Hub to estimate are "
        "timed on `--help`.",
        "",
        "| command (cold start) | median | × vramscope estimate |",
        "|---|---:|---:|",
    ]
    for label, v in cold.items():
        lines.append(f"| `{label}` | {'n/a' if v is None else f'{v * 1000:.0f} ms'} | "
                     f"{'' if v is None else f'{v / base:.1f}×'} |")
    lines += ["", "| in-process (`vramscope.estimate`) | median |", "|---|---:|"]
    for label, v in warm.items():
        lines.append(f"| {label} | {v * 1000:.2f} ms |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, "## Startup and latency", text)


if __name__ == "__main__":
    main()
