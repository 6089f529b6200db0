"""A dispatch-level tracker of live tensor bytes, rounded as the CUDA caching allocator rounds.

Every tensor an aten op returns is looked up by its storage (so views are not counted twice); a new storage
adds ``round_up(nbytes, 512)`` (``c10/cuda/CUDACachingAllocator.cpp``: ``kMinBlockSize = 512``, every
allocation rounds up to a multiple of 512 bytes) and a weak reference subtracts it when the storage dies. This is
what ``torch.cuda.memory_allocated`` counts; segments, fragmentation and the CUDA context are not tensors and are
added afterwards by the overhead model.

The tracker keeps an event log (allocation / free, with the phase), so after the run the live set at any
moment — in particular at each phase's peak — can be rebuilt and split into categories.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

ROUND = 512


def round_up(n: int) -> int:
    return 0 if n <= 0 else -(-n // ROUND) * ROUND


@dataclass
class PhasePeak:
    bytes: int = 0
    index: int = -1  # event index at which the peak was reached


@dataclass
class TraceLog:
    sizes: list[int] = field(default_factory=list)  # key -> bytes
    alloc_phase: list[str] = field(default_factory=list)  # key -> phase it was allocated in
    events: list[int] = field(default_factory=list)  # key+1: allocated, -(key+1): freed
    phases: dict[str, PhasePeak] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)  # phase -> event index when it started
    peak_bytes: int = 0

    def live_at(self, index: int) -> set[int]:
        live: set[int] = set()
        for ev in self.events[: index + 1]:
            if ev > 0:
                live.add(ev - 1)
            else:
                live.discard(-ev - 1)
        return live


def make_tracker(progress: Optional[Callable[[str], None]] = None) -> Any:
    """A ``TorchDispatchMode`` subclass instance (built lazily so the module imports without torch)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.weak import WeakIdKeyDictionary

    class LiveBytes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.log = TraceLog()
            self.keys: WeakIdKeyDictionary = WeakIdKeyDictionary()
            self.live = 0
            self.phase = "load"
            self._phase_peak = self.log.phases.setdefault("load", PhasePeak())

        # -- phases ----------------------------------------------------------------------------------
        def set_phase(self, name: str) -> None:
            self.phase = name
            self.log.marks.setdefault(name, len(self.log.events) - 1)
            self._phase_peak = self.log.phases.setdefault(name, PhasePeak())
            self._note()
            if progress:
                progress(name)

        def _note(self) -> None:
            if self.live > self._phase_peak.bytes:
                self._phase_peak.bytes = self.live
                self._phase_peak.index = len(self.log.events) - 1
            if self.live > self.log.peak_bytes:
                self.log.peak_bytes = self.live

        # -- storages --------------------------------------------------------------------------------
        def key_of(self, t: torch.Tensor) -> Optional[int]:
            try:
                return self.keys.get(t.untyped_storage())
            except (RuntimeError, NotImplementedError):
                return None

        def track(self, t: torch.Tensor) -> None:
            try:
                st = t.untyped_storage()
            except (RuntimeError, NotImplementedError):
                return
            nbytes = round_up(st.nbytes())
            key = self.keys.get(st)
            if key is not None:
                if nbytes != self.log.sizes[key]:  # resized in place (resize_, set_)
                    self.live += nbytes - self.log.sizes[key]
                    self.log.sizes[key] = nbytes
                    self._note()
                return
            key = len(self.log.sizes)
            self.log.sizes.append(nbytes)
            self.log.alloc_phase.append(self.phase)
            self.keys[st] = key
            self.live += nbytes
            self.log.events.append(key + 1)
            self._note()
            weakref.finalize(st, self._free, key)

        def _free(self, key: int) -> None:
            self.live -= self.log.sizes[key]
            self.log.events.append(-(key + 1))

        def track_all(self, tensors: Iterable[torch.Tensor]) -> None:
            for t in tensors:
                self.track(t)

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.track(t)
            return out

    return LiveBytes()
