"""Measurement (not a test): what the worst inputs within each bound of the local-file readers cost.

Run:  python bench/hostile_bounds.py            (prints a markdown table; ~1 minute, ~1 GB of sparse files)

Each case builds its file in a temporary folder, then runs the reader in a fresh interpreter that reports its
own wall time and the growth of its peak resident memory (``resource.getrusage``: ru_maxrss after the case minus
after the imports), so the cases do not share caches or memory. The inputs are the worst of their kind that the
bounds let through, or the cheapest the bounds refuse: the refusal is what is timed.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import json, os, resource, sys, time
sys.path.insert(0, {src!r})
from vramscope.errors import VramscopeError
from vramscope.sources import base, local, safetensors as sts
from vramscope import configs, validate
import vramscope  # imported before the clock starts: the estimate is timed, not the import

def rss():
    try:  # the high-water mark of this process (Linux), reset below so a fork's inherited peak does not count
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r * (1 if sys.platform == "darwin" else 1024)

try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass

calls = {{
    "header": lambda p: "read %d tensors" % len([k for k in sts.read_header(p) if k != "__metadata__"]),
    "index": lambda p: "read %d entries" % len(sts.read_index(p).weight_map),
    "config": lambda p: "parsed (%d keys)" % len(local.read_config(p)),
    "model": lambda p: "resolved %s" % local.resolve_path(p).params,
    "deepspeed": lambda p: "read %s" % configs.from_deepspeed(p),
    "fsdp": lambda p: "read %s" % configs.from_accelerate_fsdp(p),
    "records": lambda p: "read %d records" % len(validate.read_records(p)),
    "estimate": lambda p: "estimated: " + ", ".join(
        "%s %.1f GiB" % (w.get("method") or w["task"], __import__("vramscope").estimate(p, **w).total_bytes / 2**30)
        for w in ({{"task": "inference"}}, {{"task": "finetune", "method": "lora"}},
                  {{"task": "pretrain", "num_gpus": 8, "pp": 4}})),
}}
kind, path = sys.argv[1], sys.argv[2]
if kind == "estimate":  # the lazily imported modules loaded first: the estimate is timed, not the imports
    import vramscope.sources.local, vramscope.plan
    for w in ({{"task": "inference"}}, {{"task": "finetune", "method": "lora"}}, {{"task": "pretrain", "num_gpus": 8, "pp": 4}}):
        vramscope.estimate("qwen2.5-0.5b", **w)
base_rss = rss()
t = time.perf_counter()
try:
    outcome = calls[kind](path if kind in ("deepspeed", "fsdp", "estimate") else __import__("pathlib").Path(path))
except VramscopeError as e:
    outcome = "refused: " + str(e).split(": ", 1)[-1]
wall = time.perf_counter() - t
print(json.dumps({{"outcome": outcome, "wall": wall, "rss": rss() - base_rss}}))
'''


def _st_file(path: Path, header: bytes, data: int = 0) -> Path:
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + data)
    return path


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def cases(d: Path):
    """(description, reader, path) for each worst case."""
    from vramscope.sources import safetensors as sts

    yield "safetensors header declared 99 MB (the reported 20 s / 1 GB case)", "header", _sparse(
        d / "h99.safetensors", 8 + 99 * 10**6, struct.pack("<Q", 99 * 10**6))
    entry = b'"t%07d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'
    n = (sts.MAX_HEADER_BYTES - 16) // (len(entry % 0) + 1)
    yield f"safetensors header of 16 MiB: {n:,} empty tensors", "header", _st_file(
        d / "empty.safetensors", b"{" + b",".join(entry % i for i in range(n)) + b"}")
    n = sts.MAX_FILE_TENSORS
    parts, off = [], 0
    for i in range(n):
        parts.append(b'"m.l.%06d.w":{"dtype":"U8","shape":[4,4],"data_offsets":[%d,%d]}' % (i, off, off + 16))
        off += 16
    raw = b"{" + b",".join(parts) + b"}"
    yield (f"safetensors header of {len(raw) / 2**20:.1f} MiB: {n:,} real tensors (the most one file may hold)",
           "header", _st_file(d / "max.safetensors", raw, off))
    yield "safetensors header of 16 MiB: one 16 MiB metadata string", "header", _st_file(
        d / "meta.safetensors", b'{"__metadata__":{"x":"' + b"a" * (sts.MAX_HEADER_BYTES - 128) + b'"},'
        b'"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)
    yield "safetensors header of 16 MiB: 5.6 M empty arrays", "header", _st_file(
        d / "lists.safetensors", b'{"w":[' + b",".join([b"[]"] * ((sts.MAX_HEADER_BYTES - 32) // 3)) + b"]}")
    n = sts.MAX_TENSORS
    wm = b",".join(b'"model.layers.%07d.weight":"model-00001-of-00001.safetensors"' % i for i in range(n))
    folder = d / "idx"
    folder.mkdir()
    _st_file(folder / "model-00001-of-00001.safetensors", b'{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)
    idx = folder / "model.safetensors.index.json"
    idx.write_bytes(b'{"metadata":{},"weight_map":{' + wm + b"}}")
    yield f"index of {idx.stat().st_size / 2**20:.0f} MiB: {n:,} entries (the most allowed)", "index", idx
    yield "index declared 50 GB (sparse)", "index", _sparse(d / "big.safetensors.index.json", 50 * 10**9, b"{")
    cfg = d / "config.json"
    cfg.write_text('{"model_type": "llama", "x": [' + ",".join(["0"] * 2_000_000) + "]}")
    yield "config.json of 4 MB: 2 M values (the most allowed)", "config", cfg
    deep = d / "deep" / "config.json"
    deep.parent.mkdir()
    deep.write_text('{"x": ' + "[" * 99_000 + "]" * 99_000 + "}")
    yield "config.json nested 99,000 deep", "config", deep
    num = d / "num" / "config.json"
    num.parent.mkdir()
    num.write_text('{"x": ' + "9" * 5000 + "}")
    yield "config.json with a 5,000-digit integer", "config", num
    (d / "c50").mkdir()
    yield "config.json of 50 GB (sparse)", "config", _sparse(d / "c50" / "config.json", 50 * 10**9, b"{")
    yield "--deepspeed /dev/zero", "deepspeed", Path("/dev/zero")
    yield "--deepspeed of 50 GB (sparse)", "deepspeed", _sparse(d / "ds.json", 50 * 10**9, b"{")
    ds = d / "ds_items.json"
    ds.write_text('{"x": [' + ",".join(["0"] * 99_999) + "]}")
    yield "--deepspeed of 0.2 MB: 100,000 values (the most allowed)", "deepspeed", ds
    acc = d / "acc.yaml"
    lines, size = ["fsdp_config:\n"], 13
    while size + 16 <= 64 * 1024:
        lines.append(f"  k{len(lines):05d}: {len(lines):05d}\n")
        size += len(lines[-1])
    acc.write_text("".join(lines))
    yield f"--fsdp YAML of 64 KiB (the most allowed): {len(lines) - 1:,} keys", "fsdp", acc
    if hasattr(os, "mkfifo"):
        os.mkfifo(d / "pipe.json")
        yield "model / config given as a FIFO", "config", d / "pipe.json"
    rec = json.dumps({"id": "r", "kind": "inference", "model": "llama-3-8b", "measured": "nvml_used",
                      "value_bytes": 17 * 2**30, "workload": {"task": "inference", "seq": 4096},
                      "notes": "x" * 2000})
    records = d / "r.jsonl"
    n = (32 * 2**20 - 1) // (len(rec) + 1)
    records.write_text((rec + "\n") * n)
    yield f"validate: 32 MiB of records ({n:,} lines, the most allowed; reading only)", "records", records
    yield "validate: one 32 MiB line", "records", _sparse(d / "line.jsonl", 32 * 2**20, b'{"id": "')
    family = json.loads((ROOT / "src" / "vramscope" / "data" / "models" / "llama.json").read_text())
    llama = next(e["config"] for e in family if e["id"] == "meta-llama/Meta-Llama-3-8B")
    for layers, note in ((32, "Llama-3-8B as published"), (1024, "the most layers allowed"),
                         (10**6, "the reported 148 s / 2.6 GB case"), (10**9, "the reported endless case")):
        path = d / f"layers-{layers}" / "config.json"
        path.parent.mkdir()
        path.write_text(json.dumps({**llama, "num_hidden_layers": layers}))
        yield (f"estimate config.json with {layers:,} layers ({note}): inference, LoRA, pretrain on 8 GPUs pp 4",
               "estimate", path)


def make(folder: str) -> None:
    """Write the cases' files (in its own process, so the measuring children fork from a small parent)."""
    sys.path.insert(0, str(ROOT / "src"))
    print(json.dumps([(desc, kind, str(path)) for desc, kind, path in cases(Path(folder))]))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make":
        return make(sys.argv[2])
    write = sys.argv[sys.argv.index("--write") + 1] if "--write" in sys.argv else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        made = subprocess.run([sys.executable, __file__, "--make", tmp], capture_output=True, text=True, check=True)
        for desc, kind, path in json.loads(made.stdout):
            p = subprocess.run([sys.executable, "-c", CHILD.format(src=str(ROOT / "src")), kind, path],
                               capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                rows.append((desc, f"CRASH: {p.stderr.strip().splitlines()[-1:]}", "", ""))
                continue
            r = json.loads(p.stdout)
            outcome = r["outcome"].replace(tmp, "…").replace("|", "/")
            outcome = outcome if len(outcome) <= 110 else outcome[:109] + "…"
            rows.append((desc, outcome, f"{r['wall'] * 1000:,.0f} ms", f"{r['rss'] / 2**20:,.0f} MiB"))
    import datetime
    import platform

    lines = ["## Bounds: what the worst inputs cost", "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/hostile_bounds.py` on "
             f"{platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}: each input in a "
             "fresh interpreter; wall time of the reader (or estimate) alone, and the growth of the process's "
             "peak resident memory. The inputs are the worst that each bound lets through, or the cheapest it "
             "refuses (then the refusal is what is timed).", "",
             "| input | outcome | wall time | peak RSS growth |", "|---|---|---:|---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        sys.path.insert(0, str(ROOT / "bench"))
        from _docs import replace_section

        replace_section(write, "## Bounds: what the worst inputs cost", text)


if __name__ == "__main__":
    main()
