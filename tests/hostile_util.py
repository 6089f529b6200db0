"""Shared checks for the hostile-input suites (tests/test_hostile_*.py).

Every hostile case must end in exactly one of: a normal answer (exit 0, or 1 for ``--check``), or one clear line
naming the problem (exit 2). Never an internal error (exit 3), a traceback, a hang, or an absurd number.

* :func:`run_cli` runs the CLI in this process (fast enough for hypothesis) and returns ``(rc, out, err)``;
  :func:`assert_clean` checks the outcome.
* :func:`run_cli_subprocess` runs ``python -m vramscope`` with a hard timeout, for the cases that could hang
  (FIFOs, device files) or must be seen from outside.
* :func:`assert_sane_estimate` checks every number of an Estimate (or its ``to_dict()``) is finite, non-negative
  and consistent.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

CLEAN_EXITS = (0, 1, 2)

#: outcomes seen in this process: {(test module, how, outcome): [count, worst seconds]}; bench/reliability.py
#: writes them out (VRAMSCOPE_RELIABILITY_OUT) to make the figures in docs/reliability.md
TALLY: dict[tuple[str, str, str], list] = {}


def _caller_module() -> str:
    f = sys._getframe(2)
    while f is not None:
        name = os.path.basename(f.f_code.co_filename)
        if name.startswith("test_"):
            return name[:-3]
        f = f.f_back
    return "other"


def outcome_of(rc: int, err: str) -> str:
    if rc in (0, 1):
        return "answer"
    if rc == 2 and "Traceback" not in err and "internal error" not in err and "内部错误" not in err:
        return "clear error"
    return "internal error"


def record(how: str, outcome: str, seconds: float = 0.0) -> None:
    """Count one hostile input's outcome for the reliability report (no effect on the test)."""
    key = (_caller_module(), how, outcome)
    entry = TALLY.setdefault(key, [0, 0.0])
    entry[0] += 1
    entry[1] = max(entry[1], seconds)


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``vramscope ARGV`` in this process: exit code, stdout, stderr (SystemExit from argparse included)."""
    from vramscope.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as e:  # argparse's own exits
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    record("cli", outcome_of(rc, err.getvalue()), time.perf_counter() - start)
    return rc, out.getvalue(), err.getvalue()


def run_cli_subprocess(argv: Sequence[str], timeout: float = 30.0, stdin: Optional[str] = None,
                       env: Optional[dict] = None) -> tuple[int, str, str]:
    """``python -m vramscope ARGV`` with a hard timeout; a hang fails the test with the command line."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("VRAMSCOPE_DEBUG", None)
    start = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "vramscope", *argv], capture_output=True, text=True,
                           timeout=timeout, input=stdin, env=full_env)
    except subprocess.TimeoutExpired:
        record("subprocess", "hang", timeout)
        raise AssertionError(f"hang: vramscope {' '.join(argv)} ran past {timeout} s") from None
    record("subprocess", outcome_of(p.returncode, p.stderr), time.perf_counter() - start)
    return p.returncode, p.stdout, p.stderr


def assert_clean(rc: int, out: str, err: str, argv: Any = None) -> None:
    """A normal answer or one clear error line; never exit 3, a traceback or a multi-line error."""
    where = f" for {argv!r}" if argv is not None else ""
    assert rc in CLEAN_EXITS, f"exit {rc}{where}: {err.strip()[-500:]}"
    assert "Traceback" not in err and "Traceback" not in out, f"traceback{where}: {err[-800:]}"
    assert "internal error" not in err and "内部错误" not in err, f"internal error{where}: {err.strip()}"
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, f"error is not one line{where}: {err!r}"
        assert "error" in lines[0] or "错误" in lines[0], f"error line does not say so{where}: {lines[0]!r}"


def _numbers(obj: Any, path: str = ""):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")


# numbers that may legitimately be negative: headroom on a GPU that is too small, signed differences
_SIGNED = ("headroom", "margin", "delta", "difference", "error", "saving", "change", "less")


def assert_sane_estimate(est: Any) -> None:
    """Finite, non-negative, consistent: the checks a reader would make on the printed answer."""
    d = est.to_dict() if hasattr(est, "to_dict") else est
    text = json.dumps(d, allow_nan=False)  # raises on NaN / Infinity: --json must be valid JSON
    assert text
    for path, value in _numbers(d):
        assert math.isfinite(value), f"{path} = {value}"
        if not any(s in path.lower() for s in _SIGNED):
            assert value >= 0, f"{path} = {value} is negative"
    model = d.get("model", {})
    if model.get("params") is not None:
        assert model["params"] > 0, f"model.params = {model['params']}"
        if model.get("active_params") is not None:
            assert 0 < model["active_params"] <= model["params"], model
    total = d.get("total_bytes")
    if total is not None:
        assert total > 0, d
        lo, hi = d.get("range_bytes", (total, total))
        assert lo <= total <= hi, (lo, total, hi)


def call_api(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Call a public API function with hostile arguments: ``("answer", result)`` or ``("clear error", exc)``.

    Any exception other than :class:`vramscope.VramscopeError` is counted as an internal error and re-raised.
    """
    from vramscope.errors import VramscopeError

    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except VramscopeError as e:
        record("api", "clear error", time.perf_counter() - start)
        return "clear error", e
    except BaseException:
        record("api", "internal error", time.perf_counter() - start)
        raise
    record("api", "answer", time.perf_counter() - start)
    return "answer", result
