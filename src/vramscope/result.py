"""The estimate as data: the same content for the Python API, the JSON output and the table.

JSON schema ``vramscope.estimate/1`` is documented in ``docs/json.md``; fields are only ever added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .memory.device import DeviceMemory

from .i18n import t

SCHEMA = "vramscope.estimate/1"

#: component names, in display order (docs/json.md)
COMPONENTS = ("weights", "master_weights", "kv_cache", "activations", "loss_head", "temporaries", "gradients",
              "optimizer_states", "optimizer_temp", "engine_overhead", "allocator_cache", "overhead")


@dataclass(frozen=True)
class Assumption:
    """One stated assumption: an i18n key and its parameters, rendered in the reader's language."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, lang: str = "en", surface: str = "cli") -> str:
        """The sentence in ``lang``, the options it names (:class:`vramscope.errors.Opt`) spelled for ``surface``:
        flags on the command line (the default: the text table and ``--json``), the form's fields on the web."""
        from .errors import rendered  # a parameter may be a sentence fragment (errors.Text) in both languages

        return t(self.key, lang, **rendered(self.params, lang, surface))


@dataclass(frozen=True)
class GpuVerdict:
    name: str
    memory_bytes: int
    usable_bytes: int
    verdict: str  # fits | tight | no
    headroom_bytes: int
    #: torch's caching allocator would have to free its cache and retry cudaMalloc on this GPU (the tensors fit,
    #: the cache does not); None where not known (engines with their own buffers)
    allocator_retry: Optional[bool] = None

    @property
    def fits(self) -> bool:
        return self.verdict != "no"

    @property
    def headroom_pct(self) -> float:
        return 100.0 * self.headroom_bytes / self.usable_bytes if self.usable_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "memory_bytes": self.memory_bytes, "usable_bytes": self.usable_bytes,
               "fits": self.fits, "verdict": self.verdict, "headroom_bytes": self.headroom_bytes,
               "headroom_pct": round(self.headroom_pct, 2)}
        if self.allocator_retry is not None:
            out["allocator_retry"] = self.allocator_retry
        return out


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: int
    active_params: int
    trainable_params: int
    source: str
    origin: str
    storage: str = ""
    exact_shape: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "active_params": self.active_params,
                "trainable_params": self.trainable_params, "source": self.source, "origin": self.origin,
                "storage": self.storage, "exact_shape": self.exact_shape}


@dataclass(frozen=True)
class Estimate:
    """A per-GPU peak estimate, its breakdown at the peak phase and every phase's live set."""

    model: ModelInfo
    estimator: str
    task: str
    total_bytes: int
    range_bytes: tuple[int, int]
    components: dict[str, int]
    peak_phase: str
    phases: dict[str, dict[str, int]]
    workload: dict[str, Any]
    assumptions: tuple[Assumption, ...] = ()
    gpus: tuple[GpuVerdict, ...] = ()
    engine: dict[str, Any] = field(default_factory=dict)
    #: allocated / reserved / device and their ranges (``memory/device.py``); ``total_bytes`` is the device number
    memory: Optional["DeviceMemory"] = None

    def to_dict(self, lang: str = "en", surface: str = "cli") -> dict[str, Any]:
        """The ``vramscope.estimate/1`` JSON; the assumptions name options as ``surface`` spells them (``cli``: the
        command line's ``--json``; the web API passes ``web``, the Python API may pass ``api``)."""
        out = {
            "schema": SCHEMA,
            "model": self.model.to_dict(),
            "estimator": self.estimator,
            "task": self.task,
            "total_bytes": self.total_bytes,
            "range_bytes": list(self.range_bytes),
            "components": dict(self.components),
            "peak_phase": self.peak_phase,
            "phases": {k: dict(v) for k, v in self.phases.items()},
            "gpus": [g.to_dict() for g in self.gpus],
            "workload": dict(self.workload),
            "engine": dict(self.engine),
            "assumptions": [a.render(lang, surface) for a in self.assumptions],
        }
        if self.memory is not None:
            out["memory"] = self.memory.to_dict()
        return out

    def to_json(self, lang: str = "en", indent: Optional[int] = 2, surface: str = "cli") -> str:
        # allow_nan=False: Infinity and NaN are not JSON; check_estimate refuses them before this point
        return json.dumps(self.to_dict(lang, surface), indent=indent, ensure_ascii=False, allow_nan=False)
