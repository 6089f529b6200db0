"""Memory against context length and against batch size: the points of the curves ``vramscope plot`` and the
web page draw, each one an estimate (never an interpolation).

A point is what the workload needs on one GPU with ``seq`` (or ``batch``) set to ``x`` and every other option as
given, built by the same constructor as the command line (``plan.rebuild``). The largest value that fits each
GPU is ``vramscope fit``'s own answer (``plan.fit``: a search over the estimator), so the marked value and the
``fit`` command always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import VramscopeError

AXES = ("seq", "batch")
MAX_POINTS = 14


@dataclass(frozen=True)
class GpuLine:
    name: str  # the GPU's display name
    usable_bytes: int  # what the workload may use on it (the engine's budget: vLLM's is its utilization share)
    largest: int  # the largest value on the axis that fits (0: not even the smallest)


@dataclass(frozen=True)
class Curve:
    axis: str  # seq | batch
    current: int  # the workload's own value on this axis
    points: tuple[tuple[int, int], ...]  # (value, bytes needed per GPU), increasing values
    gpus: tuple[GpuLine, ...]
    limit: int  # the largest value the search may reach (the model's context for seq)

    def to_dict(self) -> dict[str, Any]:
        return {"axis": self.axis, "current": self.current, "limit": self.limit,
                "points": [{"x": x, "bytes": b} for x, b in self.points],
                "gpus": [{"name": g.name, "usable_bytes": g.usable_bytes, "largest": g.largest} for g in self.gpus]}


def _values(lo: int, hi: int, current: int, marks: Sequence[int]) -> list[int]:
    """Powers of two from ``lo`` to ``hi``, with the current value and the marked ones, at most MAX_POINTS (the
    powers thinned evenly; the current and marked values always kept)."""
    powers = []
    x = lo
    while x <= hi:
        powers.append(x)
        x *= 2
    if powers and powers[-1] != hi:
        powers.append(hi)
    keep = {v for v in (current, *marks) if lo <= v <= hi}
    room = max(2, MAX_POINTS - len(keep))
    if len(powers) > room:
        step = (len(powers) - 1) / (room - 1)
        powers = [powers[round(i * step)] for i in range(room)]
    return sorted(set(powers) | keep)


def curve(model: Any, w: Any, axis: str, gpus: Sequence[Any], answers: Optional[Sequence[Any]] = None) -> Curve:
    """The curve of ``axis`` (seq or batch) for ``model`` under workload ``w``, with each of ``gpus``' line
    (``answers``: their ``plan.fit`` answers, when already known)."""
    from .engines.base import engine_for
    from .plan import _total, fit, rebuild
    from .workload import MAX_BATCH, MAX_SEQ

    if axis not in AXES:
        raise VramscopeError("bad_choice", field="axis", value=str(axis)[:40], allowed=", ".join(AXES))
    engine = engine_for(w)
    if answers is None:
        answers = [fit(model, w, g, suggestions=False) for g in gpus]
    lines = []
    for g, a in zip(gpus, answers):
        largest = a.max_seq if axis == "seq" else (a.max_batch if a.max_concurrency is None else a.max_concurrency)
        lines.append(GpuLine(name=g.name, usable_bytes=engine.budget(w, g), largest=largest))
    current = w.seq if axis == "seq" else w.batch
    if axis == "seq":
        ctx = model.spec.max_position_embeddings
        limit = ctx if ctx and model.exact_shape else MAX_SEQ
        lo = min(256, current)
        hi = min(limit, max(current * 4, lo * 16, *(2 * ln.largest for ln in lines)))
    else:
        limit = MAX_BATCH
        lo = 1
        hi = min(limit, max(current * 4, 16, *(2 * ln.largest for ln in lines)))
    hi = max(hi, current)
    points: list[tuple[int, int]] = []
    for x in _values(lo, hi, current, [ln.largest for ln in lines]):
        try:
            points.append((x, _total(model, rebuild(w, {axis: x}))))
        except VramscopeError:  # a value the workload refuses (beyond learned positions): the curve stops
            break
    return Curve(axis=axis, current=current, points=tuple(points), gpus=tuple(lines), limit=limit)


def curves(model: Any, w: Any, gpus: Sequence[Any], axes: Sequence[str] = AXES,
           answers: Optional[Sequence[Any]] = None) -> tuple[Curve, ...]:
    """The curves of ``axes``; each GPU's fit answer searched once for all of them."""
    from .plan import fit

    if answers is None:
        answers = [fit(model, w, g, suggestions=False) for g in gpus]
    return tuple(curve(model, w, a, gpus, answers) for a in axes)


def first_gpus(names: Sequence[str], default: Optional[Sequence[str]] = None) -> list[Any]:
    """GPU objects for ``names`` (or ``default``), each looked up in the catalog."""
    from .gpus import find_gpu

    return [find_gpu(n) for n in (names or default or ())]
