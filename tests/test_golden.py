"""The golden matrix: every command of tests/golden/commands.txt gives, byte for byte, the ``--json`` stdout
stored in tests/golden/outputs.jsonl.gz, and every command of refusals.txt its stored one-line error.

A change that means to move numbers regenerates the file (``python tests/golden/regen.py``) in its own commit,
saying which outputs changed and why; any other difference is a regression. On a failure the first differing
command is shown with the JSON path that differs and both values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import regen  # noqa: E402


def _paths(a: Any, b: Any, path: str = "$") -> Iterator[tuple[str, Any, Any]]:
    """Every JSON path where ``a`` and ``b`` differ (a key present on one side only counts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            yield from _paths(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            yield from _paths(a[i] if i < len(a) else "<absent>", b[i] if i < len(b) else "<absent>",
                              f"{path}[{i}]")
    elif a != b or type(a) is not type(b):
        yield path, a, b


def explain(stored: dict, got: dict) -> str:
    lines = [f"vramscope {stored['args']}"]
    if stored["rc"] != got["rc"]:
        lines.append(f"  exit code: stored {stored['rc']}, now {got['rc']}")
    for stream in ("stdout", "stderr"):
        if stored[stream] == got[stream]:
            continue
        try:
            a, b = json.loads(stored[stream]), json.loads(got[stream])
        except ValueError:
            lines.append(f"  {stream}: stored {stored[stream]!r}\n      now {got[stream]!r}")
            continue
        diffs = list(_paths(a, b))
        for p, x, y in diffs[:10]:
            lines.append(f"  {p}: stored {json.dumps(x, ensure_ascii=False)[:300]}, "
                         f"now {json.dumps(y, ensure_ascii=False)[:300]}")
        if len(diffs) > 10:
            lines.append(f"  ... and {len(diffs) - 10} more paths")
        if not diffs:
            lines.append(f"  {stream}: same JSON, different bytes (formatting or key order)")
    return "\n".join(lines)


def test_golden_matrix() -> None:
    stored = regen.load()
    commands, refusals = regen.lines(regen.COMMANDS), regen.lines(regen.REFUSALS)
    assert [r["args"] for r in stored] == commands + refusals, \
        "commands.txt / refusals.txt and outputs.jsonl.gz disagree: run python tests/golden/regen.py"
    failures = []
    for old, new in zip(stored, regen.records()):
        if old != new:
            failures.append((old, new))
    if failures:
        pytest.fail(f"{len(failures)} of {len(stored)} golden outputs differ; the first:\n"
                    + explain(*failures[0]) + "\nothers: " + "; ".join(f[0]["args"] for f in failures[1:6]),
                    pytrace=False)


def test_golden_matrix_spans_the_options() -> None:
    """The matrix keeps its breadth: tasks, engines, methods, layouts, models and verdicts."""
    commands = regen.lines(regen.COMMANDS)
    assert len(commands) >= 300
    text = "\n".join(commands)
    for needle in ("--task finetune", "--task pretrain", "--engine vllm", "--engine llama.cpp", "--method lora",
                   "--method qlora", "--method freeze", "--dora", "--estimator seed", "--parallelism zero3",
                   "--parallelism ddp", "--tp ", "--pp ", "--sp ", "--ep ", "--nodes ", "--fsdp-sharding hybrid",
                   "--fsdp-version 1", "--offload-device nvme", "--pp-schedule interleaved", "-ngl ", "-ctk ",
                   "-fa", "-ub ", "--cache static", "--framework torchtune", "--precision deepspeed",
                   "--optimizer paged-adamw-8bit", "--checkpoint-every", "--activation-offload", "--chunked-ce",
                   "--optimizer-in-backward", "--packing", "--compile"):
        assert needle in text, needle
    models = {c.split()[1] for c in commands if not c.split()[1].startswith("-")}
    assert len(models) >= 15
    assert sum(c.startswith("fit ") for c in commands) >= 50
    verdicts = set()
    for r in regen.load()[:len(commands)]:
        if r["args"].startswith("estimate "):
            verdicts |= {g.get("verdict") for g in json.loads(r["stdout"]).get("gpus", [])}
    assert {"fits", "tight", "no"} <= verdicts, verdicts
