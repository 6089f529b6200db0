"""Benchmark: what the replayed allocation stream (``memory/synthetic.py``) costs ``fit`` and one estimate, before
and after the replay starts from the loaded model's frozen allocator (``synthetic._loaded``, once per model) and
takes the allocator's inlined path (``CachingAllocator._fast``).

Run:  python bench/fit_replay.py [--runs 7] [--write docs/benchmarks.md]

Every ``fit`` probe of an inference workload under the transformers engine replays the prefill's allocation
stream through the allocator model (19 replays for llama-3-8b on an RTX 4090: the batch search and the context
search 1, 2, 4, … 8192); the replay caches are cleared before each answer, as a fresh process or a new model
sees them. "before" is the code as it was (the general ``malloc`` / ``free`` path, the weights replayed for every
probe), "after" the code as it is; both in this run, alternating, medians of ``--runs``. The answers (every field
of ``FitAnswer.to_dict()``) must be identical, here and on a sweep of models × GPUs × workloads.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
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

from vramscope import plan  # noqa: E402
from vramscope.gpus import find_gpu  # noqa: E402
from vramscope.memory import allocator, synthetic  # noqa: E402
from vramscope.sources import resolve  # noqa: E402
from vramscope.workload import make_workload  # noqa: E402

CASES = [
    ("llama-3-8b inference on rtx-4090", "llama-3-8b", {}, "rtx-4090"),
    ("qwen2.5-7b inference seq 8192 on a100-80gb", "qwen2.5-7b", {"seq": 8192}, "a100-80gb"),
    ("mistral-7b-v0.1 inference seq 4500 batch 2 on l40s", "mistral-7b-v0.1", {"seq": 4500, "batch": 2}, "l40s"),
    ("llama-3-70b inference on h100-80gb (does not fit)", "llama-3-70b", {}, "h100-80gb"),
    ("llama-3-8b LoRA seq 2048 on rtx-4090 (no replay)", "llama-3-8b",
     {"task": "finetune", "method": "lora", "seq": 2048}, "rtx-4090"),
]

#: the equality sweep
SWEEP_MODELS = ["llama-3.2-1b", "llama-3.2-3b", "llama-3-8b", "mistral-7b-v0.1", "qwen2.5-7b", "qwen3-8b",
                "gemma-2-2b", "mixtral-8x7b", "llama-3-70b"]
SWEEP_GPUS = ["rtx-3060-12gb", "rtx-4090", "a100-80gb"]
SWEEP_WORKLOADS = [{}, {"seq": 8192}, {"seq": 1500, "batch": 3, "attn": "eager"}, {"dtype": "fp32", "seq": 512},
                   {"task": "finetune", "method": "lora", "seq": 1024}]


_POST = allocator.CachingAllocator.__post_init__
_LOADED = synthetic._loaded


def _general(self) -> None:
    _POST(self)
    self._fast = False


class _Before:
    """The code as it was: the general allocator path (``_fast`` off, so nothing is frozen) and the weights
    replayed for every probe."""

    def __init__(self, old: bool) -> None:
        self.old = old

    def __enter__(self) -> None:
        if self.old:
            allocator.CachingAllocator.__post_init__ = _general
            synthetic._loaded = lambda *a: None

    def __exit__(self, *exc) -> None:
        allocator.CachingAllocator.__post_init__ = _POST
        synthetic._loaded = _LOADED


#: the training cases (``synthetic.train_cache``: two full training steps replayed per probe)
TRAIN_CASES = [
    ("llama-3-8b full fine-tuning on h100", "llama-3-8b", {"task": "finetune", "method": "full"}, "h100"),
    ("llama-3.2-1b full fine-tuning on rtx-4090", "llama-3.2-1b", {"task": "finetune", "method": "full"},
     "rtx-4090"),
    ("qwen2.5-7b full fine-tuning seq 1024 on h200", "qwen2.5-7b",
     {"task": "finetune", "method": "full", "seq": 1024}, "h200"),
    ("llama-3-70b full fine-tuning on h200 (does not fit)", "llama-3-70b", {"task": "finetune", "method": "full"},
     "h200"),
]
TRAIN_SWEEP_MODELS = ["llama-3.2-1b", "llama-3.2-3b", "llama-3-8b", "qwen2.5-7b"]
TRAIN_SWEEP_GPUS = ["rtx-4090", "a100-80gb", "h200"]
TRAIN_SWEEP_WORKLOADS = [{"task": "finetune", "method": "full"},
                         {"task": "finetune", "method": "full", "seq": 512, "batch": 2},
                         {"task": "finetune", "method": "freeze", "frozen_layers": 4}]


def _plain_fits(model, w, usable) -> bool:
    return plan._total(model, w) <= usable


def _prior_new(self, n):
    n = max(1, int(n))
    if self.log is not None:
        self.log.append(n)
    return self.alloc.malloc(n)


def _prior_stream_free(self, *blocks) -> None:
    for b in blocks:
        if b is not None:
            if self.log is not None:
                self.log.append(-b.requested)
            self.alloc.free(b)


def _prior_free(self, block) -> None:
    block.allocated = False
    st = self.stats
    st.allocated -= block.size
    st.requested -= block.requested
    if self._fast and not block.stream_uses:
        _prior_free_fast(self, block)
    elif block.stream_uses:
        block.events = len(block.stream_uses)
        block.stream_uses = set()
        self._pending.append((self._mallocs + self.event_lag, block))
    else:
        self._free_block(block)


def _prior_free_fast(self, b) -> None:
    import bisect

    pool = self.small if b.small else self.large
    keys, blocks = pool.keys, pool.blocks
    src = b.prev
    if src is not None and not src.allocated and not src.events and not src.stream_uses:
        pool.remove(src)
        b.ptr = src.ptr
        b.prev = src.prev
        if b.prev is not None:
            b.prev.next = b
        b.size += src.size
    src = b.next
    if src is not None and not src.allocated and not src.events and not src.stream_uses:
        pool.remove(src)
        b.next = src.next
        if b.next is not None:
            b.next.prev = b
        b.size += src.size
    self.active.discard(b)
    b.gc_base = pool.free_calls
    k = (b.stream, b.size, b.ptr)
    bisect.insort(keys, k)
    blocks[k] = b


_NOW = (plan._fits, synthetic.Stream.new, synthetic.Stream.free, allocator.CachingAllocator.free)


class _Prior:
    """The code before the training replay was made cheaper (issue #15): every probe of ``fit``'s searches
    replayed (no ``cache_floor``), ``Stream.new`` / ``free`` through ``malloc`` / ``free``'s frames, and
    ``_free_fast`` through ``pool.remove``."""

    def __init__(self, old: bool) -> None:
        self.old = old

    def __enter__(self) -> None:
        if self.old:
            plan._fits = _plain_fits
            synthetic.Stream.new, synthetic.Stream.free = _prior_new, _prior_stream_free
            allocator.CachingAllocator.free = _prior_free

    def __exit__(self, *exc) -> None:
        plan._fits, synthetic.Stream.new, synthetic.Stream.free, allocator.CachingAllocator.free = _NOW


def _train_answer(model, w, gpu, old: bool) -> tuple[dict, float, int]:
    _clear()
    synthetic._train_cache.cache_clear()
    with _Prior(old):
        t = time.perf_counter()
        a = plan.fit(model, w, gpu)
        dt = time.perf_counter() - t
    return a.to_dict(), dt, synthetic._train_cache.cache_info().misses


def timed_rows(cases, answer, runs: int, same_replays: bool = False) -> list[tuple[str, float, int, float, int]]:
    """Each case's ``fit`` answered by ``answer`` with the old code and the new, alternating, ``runs`` times:
    (label, median before, replays before, median after, replays after); the answers must be identical (and, with
    ``same_replays``, the replay counts too)."""
    rows = []
    for label, name, kw, gpu in cases:
        model, w, g = resolve(name), make_workload(**kw), find_gpu(gpu)
        times: dict[bool, list[float]] = {True: [], False: []}
        reps = {}
        for _ in range(runs):
            for old in (True, False):
                ans, dt, n = answer(model, w, g, old)
                times[old].append(dt)
                reps[old] = n
                if old:
                    before = ans
            assert json.dumps(before, sort_keys=True) == json.dumps(ans, sort_keys=True), label
        if same_replays:
            assert reps[True] == reps[False], label
        rows.append((label, statistics.median(times[True]), reps[True], statistics.median(times[False]),
                     reps[False]))
        print(rows[-1], flush=True)
    return rows


def train_sweep() -> tuple[int, int, list[str]]:
    same = total = 0
    differ = []
    for name, kw, gpu in itertools.product(TRAIN_SWEEP_MODELS, TRAIN_SWEEP_WORKLOADS, TRAIN_SWEEP_GPUS):
        model, w, g = resolve(name), make_workload(**kw), find_gpu(gpu)
        try:
            a, _, _ = _train_answer(model, w, g, old=True)
        except Exception as exc:  # a workload the model refuses (freezing an untied model): the same both ways
            a = repr(exc)
        try:
            b, _, _ = _train_answer(model, w, g, old=False)
        except Exception as exc:
            b = repr(exc)
        total += 1
        if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
            same += 1
        else:
            differ.append(f"{name} {kw} {gpu}")
    return same, total, differ


def _clear() -> None:
    synthetic._prefill_cache.cache_clear()
    _LOADED.cache_clear()


def _answer(model, w, gpu, old: bool) -> tuple[dict, float, int]:
    _clear()
    with _Before(old):
        t = time.perf_counter()
        a = plan.fit(model, w, gpu)
        dt = time.perf_counter() - t
    return a.to_dict(), dt, synthetic._prefill_cache.cache_info().misses


def sweep() -> tuple[int, int, list[str]]:
    same = total = 0
    differ = []
    for name, kw, gpu in itertools.product(SWEEP_MODELS, SWEEP_WORKLOADS, SWEEP_GPUS):
        model, w, g = resolve(name), make_workload(**kw), find_gpu(gpu)
        a, _, _ = _answer(model, w, g, old=True)
        b, _, _ = _answer(model, w, g, old=False)
        total += 1
        if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
            same += 1
        else:
            differ.append(f"{name} {kw} {gpu}")
    return same, total, differ


def single(runs: int) -> list[tuple[str, float, float, float]]:
    """One in-process estimate (``vramscope.estimate``) with nothing cached (before, after) and with its replay
    cached."""
    import vramscope

    out = []
    for label, name, kw in [("llama-3-8b inference", "llama-3-8b", {}),
                            ("llama-3-70b inference seq 8192", "llama-3-70b", {"seq": 8192})]:
        times: dict[str, list[float]] = {"before": [], "after": [], "cached": []}
        vramscope.estimate(name, **kw)
        for _ in range(runs):
            for key in ("before", "after"):
                _clear()
                with _Before(key == "before"):
                    t = time.perf_counter()
                    vramscope.estimate(name, **kw)
                    times[key].append(time.perf_counter() - t)
            t = time.perf_counter()
            vramscope.estimate(name, **kw)
            times["cached"].append(time.perf_counter() - t)
        out.append((label, *(statistics.median(times[k]) for k in ("before", "after", "cached"))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--write")
    args = ap.parse_args()
    rows = timed_rows(CASES, _answer, args.runs, same_replays=True)
    same, total, differ = sweep()
    print("sweep:", same, "of", total, "identical", differ)
    est = single(args.runs)
    print(est)
    trows = timed_rows(TRAIN_CASES, _train_answer, args.runs)
    tsame, ttotal, tdiffer = train_sweep()
    print("train sweep:", tsame, "of", ttotal, "identical", tdiffer)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["## Replay cost in `fit`", "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/fit_replay.py --runs {args.runs}` on "
             f"{platform.machine()} ({os.cpu_count()} cores, load average {load:.1f} from other jobs), Python "
             f"{platform.python_version()}. An inference answer under the transformers engine replays the "
             "prefill's allocation stream (`memory/synthetic.py`) once per probe of its batch and context "
             "searches; the replay caches are cleared before each answer (a fresh process). Before: the general "
             "`malloc` / `free` path of `memory/allocator.py` and the model's weights replayed for every probe; "
             "after: the weights replayed once per model, dtype and allocator settings and the allocator frozen "
             "there (`CachingAllocator.freeze` / `thaw`: only the segments holding a free block), and the "
             "inlined path for a cached block that fits and for a free (`_fast`: fixed-size segments, no "
             "garbage collection, no `max_split_size_mb`, 512-byte rounding; other settings keep the general "
             "path). Both in the same run, alternating; medians of "
             f"{args.runs}. Results do not move: the answers (every field of `FitAnswer.to_dict()`) are identical "
             f"in every case here and on a sweep of {total} answers ({len(SWEEP_MODELS)} models × "
             f"{len(SWEEP_WORKLOADS)} workloads × {len(SWEEP_GPUS)} GPUs): {same} of {total} identical "
             "(`tests/test_allocator.py` holds the inlined path to the general one on random streams under "
             "every setting, and the thawed allocator to the original; `tests/test_allocator_synthetic.py` the "
             "cache with and without them).", "",
             "| case | before | after | replays |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {b * 1000:.0f} ms | {a * 1000:.0f} ms | {ra} |" for label, b, rb, a, ra in rows]
    lines += ["", "| one in-process estimate (`vramscope.estimate`) | before | after | replay cached |",
              "|---|---:|---:|---:|"]
    lines += [f"| {label} | {b * 1000:.1f} ms | {a * 1000:.1f} ms | {c * 1000:.2f} ms |" for label, b, a, c in est]
    lines += ["", "Training (issue #15): a full training workload of Llama / Qwen2 on one GPU replays two training "
              "steps' stream (`synthetic.train_cache`, ~660 events per layer) once per probe. Before: the code "
              "before issue #15's fix (every probe replayed; `Stream.new` / `free` through the allocator's "
              "`malloc` / `free` frames, `_free_fast` through `pool.remove`), patched in by the benchmark; after: `fit`'s batch and context searches first estimate a probe with the replayed "
              "cache taken as 0 (`synthetic.cache_floor`: the cache is never negative and the total, its largest "
              "phase's sum, never falls as it grows, so that total is a lower bound) and skip the replay when that "
              "is already over the budget, and the stream calls the allocator's inlined paths directly. Replays: "
              "distinct training streams replayed (`_train_cache` misses). Both in the same run, alternating, "
              f"medians of {args.runs}; the answers are identical in every case and on a sweep of {ttotal} answers "
              f"({len(TRAIN_SWEEP_MODELS)} models × {len(TRAIN_SWEEP_WORKLOADS)} workloads × "
              f"{len(TRAIN_SWEEP_GPUS)} GPUs): {tsame} of {ttotal} identical.", "",
              "| training case | before | replays | after | replays |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | {b * 1000:.0f} ms | {rb} | {a * 1000:.0f} ms | {ra} |" for label, b, rb, a, ra in trows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(args.write, "## Replay cost in `fit`", text)
    return 0 if same == total and tsame == ttotal else 1


if __name__ == "__main__":
    sys.exit(main())
