"""Regenerate tests/golden/outputs.jsonl.gz: the exact ``--json`` stdout of every command in commands.txt and
the exact one-line error of every command in refusals.txt, run in-process through ``vramscope.cli.main``.

Run it only in a commit that means to change numbers, and say in that commit which outputs changed and why
(``python tests/golden/regen.py --diff`` lists the commands whose output differs from the stored one).

The file is deterministic: one JSON object per line (sorted keys), gzip with mtime 0 and no file name.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
COMMANDS = HERE / "commands.txt"
REFUSALS = HERE / "refusals.txt"
OUTPUTS = HERE / "outputs.jsonl.gz"
#: the transformers version the stored outputs model (memory/kv_cache.py: transformers_version)
TRANSFORMERS = "5.24.0"


def run(line: str) -> tuple[int, str, str]:
    """``vramscope <line>`` in this process: exit code, stdout, stderr (English unless the line says --lang)."""
    from vramscope.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in ("VRAMSCOPE_LANG", "HF_HUB_OFFLINE", "VRAMSCOPE_TRANSFORMERS_VERSION")}
    os.environ["VRAMSCOPE_LANG"], os.environ["HF_HUB_OFFLINE"] = "en", "1"
    # the transformers whose caches are modelled is pinned: the stored outputs do not follow the installed one
    os.environ["VRAMSCOPE_TRANSFORMERS_VERSION"] = TRANSFORMERS
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(shlex.split(line))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rc, out.getvalue(), err.getvalue()


def lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def records() -> Iterator[dict]:
    """Every stored record, freshly computed, in file order (commands, then refusals)."""
    for line in lines(COMMANDS):
        rc, out, err = run(line)
        yield {"args": line, "rc": rc, "stdout": out, "stderr": err}
    for line in lines(REFUSALS):
        rc, out, err = run(line)
        yield {"args": line, "rc": rc, "stdout": out, "stderr": err}


def load() -> list[dict]:
    with gzip.open(OUTPUTS, "rt", encoding="utf-8") as f:
        return [json.loads(ln) for ln in f]


def write(recs: list[dict]) -> None:
    raw = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in recs).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(raw)
    OUTPUTS.write_bytes(buf.getvalue())


def main() -> int:
    recs = list(records())
    bad = [r for r in recs[:len(lines(COMMANDS))] if r["rc"] != 0]
    bad += [r for r in recs[len(lines(COMMANDS)):] if r["rc"] != 2]
    if bad:
        for r in bad:
            print(f"unexpected exit {r['rc']}: {r['args']}\n    {r['stderr'].strip()}", file=sys.stderr)
        return 1
    if "--diff" in sys.argv[1:]:
        old = {r["args"]: r for r in load()} if OUTPUTS.exists() else {}
        changed = [r["args"] for r in recs if old.get(r["args"]) != r]
        print("\n".join(changed))
        print(f"{len(changed)} of {len(recs)} differ", file=sys.stderr)
        return 0
    write(recs)
    print(f"{len(recs)} records -> {OUTPUTS} ({OUTPUTS.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
