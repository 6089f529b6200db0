"""Reliability figures: every hostile-input suite run once, its outcomes counted per class of input.

Run:  python bench/reliability.py [--write docs/reliability.md]

Runs ``pytest tests/test_hostile_*.py`` with ``VRAMSCOPE_RELIABILITY_OUT`` set, so that every hostile input that
goes through ``tests/hostile_util.py`` (the CLI in-process, the CLI in a subprocess with a hard timeout, or the
Python API) is counted with its outcome: an answer, a clear one-line error (exit 2 / VramscopeError), an
internal error, or a hang. Hypothesis draws a different sample on every run, so counts vary a little between
runs; outcomes other than answers and clear errors fail the suites themselves. The peak memory is the largest
resident set of the pytest process (every input of a suite in one process), the time the slowest single input.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402

CLASSES = {
    "test_hostile_gguf": "GGUF files (real-size vocabularies, hostile headers)",
    "test_hostile_files": "local files: shards, headers, FIFOs/devices, JSON, DeepSpeed/FSDP configs, records",
    "test_hostile_config": "config.json fields: types, ranges, derived sizes",
    "test_hostile_safetensors": "safetensors header entries (dtype, shape, offsets, metadata) fuzzed",
    "test_hostile_api": "Python API arguments and CLI options",
    "test_hostile_trace": "trace options and models",
    "test_hostile_serve": "HTTP server: paths, query strings, load",
}


def run_suites() -> tuple[list[dict], dict[str, dict]]:
    suites = sorted(p.stem for p in (ROOT / "tests").glob("test_hostile_*.py"))
    rows: list[dict] = []
    runs: dict[str, dict] = {}
    for suite in suites:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        start = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "pytest", f"tests/{suite}.py", "-q", "-p", "no:cacheprovider"],
                           cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "VRAMSCOPE_RELIABILITY_OUT": out, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        last = [ln for ln in p.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
        runs[suite] = {"rc": p.returncode, "summary": last[0].strip("= "), "wall_s": wall, "max_rss_mib": 0.0}
        try:
            data = json.loads(Path(out).read_text(encoding="utf-8") or "{}")
            rows += data.get("rows", [])
            runs[suite]["max_rss_mib"] = data.get("max_rss_kib", 0) / 1024
        except (OSError, ValueError):
            pass
        os.unlink(out)
    return rows, runs


def table(rows: list[dict], runs: dict[str, dict]) -> str:
    per: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    worst: dict[str, float] = defaultdict(float)
    for r in rows:
        per[r["suite"]][r["outcome"]] += r["count"]
        worst[r["suite"]] = max(worst[r["suite"]], r["worst_s"])
    lines = ["| class of input | suite | inputs counted | answers | clear errors | internal errors | hangs "
             "| slowest input | suite result | suite wall | peak RSS |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    total = defaultdict(int)
    for suite in sorted(set(per) | set(runs)):
        if not suite.startswith("test_hostile"):
            continue
        c = per.get(suite, {})
        n = sum(c.values())
        for k in ("answer", "clear error", "internal error", "hang"):
            total[k] += c.get(k, 0)
        total["n"] += n
        run = runs.get(suite, {})
        lines.append(f"| {CLASSES.get(suite, suite)} | `{suite}` | {n} | {c.get('answer', 0)} | "
                     f"{c.get('clear error', 0)} | {c.get('internal error', 0)} | {c.get('hang', 0)} | "
                     f"{worst.get(suite, 0) * 1000:.0f} ms | {run.get('summary', '')} | "
                     f"{run.get('wall_s', 0):.0f} s | {run.get('max_rss_mib', 0):.0f} MiB |")
    lines.append(f"| **all** | | **{total['n']}** | {total['answer']} | {total['clear error']} | "
                 f"{total['internal error']} | {total['hang']} | | | | |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--write", help="replace the '## Hostile inputs' section of this markdown file")
    args = ap.parse_args()
    rows, runs = run_suites()
    when = datetime.date.today().isoformat()
    text = (f"## Hostile inputs\n\nMeasured {when} by `python bench/reliability.py` on {platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}. Inputs counted are those that went "
            "through `tests/hostile_util.py` (CLI in-process, CLI in a subprocess with a hard timeout, or the "
            "Python API); hypothesis draws new samples each run.\n\n" + table(rows, runs) + "\n")
    print(text)
    if args.write:
        replace_section(args.write, "## Hostile inputs", text)
    return 0 if all(r["rc"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
