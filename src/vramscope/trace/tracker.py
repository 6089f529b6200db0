"""A dispatch-level tracker of live tensor bytes, rounded as the CUDA caching allocator rounds.

Every tensor an aten op returns is looked up by its storage (so views are not counted twice); a new storage
adds ``round_up(nbytes, 512)`` (``c10/cuda/CUDACachingAllocator.cpp``: ``kMinBlockSize = 512``, every
allocation rounds up to a multiple of 512 bytes) and a weak reference subtracts it when the storage dies. This is
what ``torch.cuda.memory_allocated`` counts; segments, fragmentation and the CUDA context are not tensors and are
added afterwards by the overhead model.

The tracker keeps an event log (allocation / free, with the phase and the stream current at the allocation), so
after the run the live set at any moment — in particular at each phase's peak — can be rebuilt and split into
categories, and the stream can be replayed through the caching-allocator model (``memory/allocator.py``). Sizes
are logged rounded to 512 bytes; the allocator's ``round_size`` gives the same block for the rounded size (its
power-of-two division steps are multiples of 512 wherever they apply). Streams are the CPU stream objects that
device-agnostic code selects (``torch.cpu.stream``, as FSDP2's all-gather and reduce-scatter streams do on a CPU
device): 0 is the default stream, the others are numbered as they appear.

Every op also compares the clock with the tracker's ``deadline`` (``time.monotonic()``) and sets ``timed_out``
once it has passed; :meth:`check_deadline` raises :class:`TraceTimeout` from then on. The op itself never raises:
an exception thrown from a dispatch mode inside some of autograd's C++ paths aborts the process ("terminate
called after throwing an instance of 'python_error'"), so the trace raises only at Python-level points (phase
boundaries and every module call, see ``estimator.run_trace``).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

ROUND = 512


class TraceTimeout(Exception):
    """Raised by the tracker's ops once its deadline has passed."""


def round_up(n: int) -> int:
    return 0 if n <= 0 else -(-n // ROUND) * ROUND


@dataclass
class PhasePeak:
    bytes: int = 0
    index: int = -1  # event index at which the peak was reached


@dataclass
class TraceLog:
    sizes: list[int] = field(default_factory=list)  # allocation key -> bytes
    alloc_phase: list[str] = field(default_factory=list)  # allocation key -> phase it was allocated in
    storage: list[int] = field(default_factory=list)  # allocation key -> storage id (a storage resized to 0
    # and back, as FSDP2 does with unsharded parameters, gets a new allocation key but keeps its id)
    streams: list[int] = field(default_factory=list)  # allocation key -> stream current when it was allocated
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


class _Cell:
    """One storage followed by the tracker: its id and its current allocation key (None while it holds nothing)."""

    __slots__ = ("key", "sid", "__weakref__")

    def __init__(self, sid: int) -> None:
        self.key: Optional[int] = None
        self.sid = sid


class _StorageLedger:
    """The part of the tracker that needs no torch: phases, the deadline, and the allocation / free log.

    ``track`` (turning a tensor into its storage) is the dispatch mode's, see :func:`make_tracker`.
    """

    def _init_ledger(self, cells: Any, progress: Optional[Callable[[str], None]]) -> None:
        self._progress = progress
        self.log = TraceLog()
        self.cells = cells
        self.live = 0
        self.phase = "load"
        self._phase_peak = self.log.phases.setdefault("load", PhasePeak())
        self._sids = 0
        self.muted = 0
        self.on_op: Optional[Callable[[Any, Any, Any], None]] = None
        self.stream_of: Callable[[], int] = lambda: 0  # the current stream's number
        self.deadline: Optional[float] = None  # time.monotonic() after which every op raises
        self.timed_out = False

    # -- phases ----------------------------------------------------------------------------------
    def check_deadline(self) -> None:
        """Raise :class:`TraceTimeout` once the deadline has passed (call only from Python-level code)."""
        if self.deadline is not None and (self.timed_out or time.monotonic() > self.deadline):
            self.timed_out = True
            raise TraceTimeout()

    def set_phase(self, name: str) -> None:
        self.check_deadline()
        self.phase = name
        self.log.marks.setdefault(name, len(self.log.events) - 1)
        self._phase_peak = self.log.phases.setdefault(name, PhasePeak())
        self._note()
        if self._progress:
            self._progress(name)

    def _note(self) -> None:
        if self.live > self._phase_peak.bytes:
            self._phase_peak.bytes = self.live
            self._phase_peak.index = len(self.log.events) - 1
        if self.live > self.log.peak_bytes:
            self.log.peak_bytes = self.live

    # -- storages --------------------------------------------------------------------------------
    def _alloc(self, cell: _Cell, nbytes: int) -> None:
        key = len(self.log.sizes)
        self.log.sizes.append(nbytes)
        self.log.alloc_phase.append(self.phase)
        self.log.storage.append(cell.sid)
        self.log.streams.append(self.stream_of())
        cell.key = key
        self.live += nbytes
        self.log.events.append(key + 1)
        self._note()

    def _release(self, cell: _Cell) -> None:
        if cell.key is None:
            return
        self.live -= self.log.sizes[cell.key]
        self.log.events.append(-(cell.key + 1))
        cell.key = None

    def see_storage(self, st: Any) -> Optional[_Cell]:
        nbytes = round_up(st.nbytes())
        cell = self.cells.get(st)
        if cell is None:
            cell = _Cell(self._sids)
            self._sids += 1
            self.cells[st] = cell
            weakref.finalize(st, self._release, cell)
            if nbytes:
                self._alloc(cell, nbytes)
            return cell
        current = self.log.sizes[cell.key] if cell.key is not None else 0
        if nbytes != current:  # resized in place (resize_, set_, UntypedStorage.resize_)
            self._release(cell)
            if nbytes:
                self._alloc(cell, nbytes)
        return cell

    def track(self, t: Any) -> Optional[_Cell]:
        raise NotImplementedError

    def key_of(self, t: Any) -> Optional[int]:
        """The storage id of ``t`` (stable across resizes), or None."""
        cell = self.track(t)
        return None if cell is None else cell.sid

    def track_all(self, tensors: Iterable[Any]) -> None:
        for t in tensors:
            self.track(t)


def _patch_storage_resize(torch: Any, tracker: _StorageLedger) -> Any:
    """Make ``UntypedStorage.resize_`` report to ``tracker`` (it is not a dispatcher op); returns the original."""
    orig = torch.UntypedStorage.resize_

    def resize_(st: Any, size: int) -> Any:
        out = orig(st, size)
        tracker.see_storage(st)
        return out

    torch.UntypedStorage.resize_ = resize_
    return orig


def _mute_sharding_propagation(tracker: _StorageLedger) -> Any:
    """Mute ``tracker`` while DTensor propagates sharding on fake global shapes; returns the original."""
    from torch.distributed.tensor._sharding_prop import ShardingPropagator

    orig_prop = ShardingPropagator._propagate_tensor_meta_non_cached

    def prop(*a: Any, **k: Any) -> Any:
        tracker.muted += 1
        try:
            return orig_prop(*a, **k)
        finally:
            tracker.muted -= 1

    ShardingPropagator._propagate_tensor_meta_non_cached = prop
    return orig_prop


def _restore_sharding_propagation(orig_prop: Any) -> None:
    from torch.distributed.tensor._sharding_prop import ShardingPropagator

    ShardingPropagator._propagate_tensor_meta_non_cached = orig_prop


def make_tracker(progress: Optional[Callable[[str], None]] = None, fake_mode: Any = None,
                 compiled: bool = False) -> Any:
    """A ``TorchDispatchMode`` subclass instance (built lazily so the module imports without torch).

    Storages are followed one by one (``key_of`` gives a storage's id); an allocation is logged when a storage
    appears or grows, a free when it dies or shrinks. ``UntypedStorage.resize_`` is not a dispatcher op, so it is
    patched while the tracker is active: FSDP2 frees and re-allocates unsharded parameters that way
    (``_fsdp_param.py`` ``free_storage`` / ``alloc_storage``). DTensor ops are let through (``NotImplemented``) so
    their local ops come back here, and what DTensor's sharding propagation runs on global-shape fake arguments
    (``_sharding_prop.py`` ``_propagate_tensor_meta_non_cached``, in a fake mode of its own) is not counted: it
    allocates nothing on the rank. A traceable wrapper subclass (``__tensor_flatten__``: torchao's float8 tensors)
    is followed through its inner tensors, as its own storage is an unallocated placeholder. ``fake_mode``: the fake mode the workload runs in.

    ``compiled``: the workload runs torch.compile'd regions (``trace/compiled.py``). Dynamo compiles nothing while
    a dispatch mode is on the stack unless the mode says ``ignore_compile_internals()`` (torch 2.13
    ``_dynamo/convert_frame.py``: "non-infra torch dispatch mode present"); this one then says so, and sees the
    compiled artifact's own ops at run time (the partitioned forward and backward graphs, run op by op), while
    what Dynamo and AOTAutograd trace at compile time runs in their own fake mode and is not counted. The
    graphs' higher-order operators (a checkpointed region's ``run_and_save_rng_state``) pass through too
    (``supports_higher_order_operators``): their outputs are counted as any op's. The generator state a
    checkpointed region saves is the real CPU state under fake tensors (5,056 B, not counted; 16 B on CUDA).
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.utils._python_dispatch import TorchDispatchMode, is_traceable_wrapper_subclass
    from torch.utils._pytree import tree_leaves
    from torch.utils.weak import WeakIdKeyDictionary

    try:
        from torch._guards import active_fake_mode
        from torch.distributed._functional_collectives import AsyncCollectiveTensor
        from torch.distributed.tensor import DTensor

        wait_tensor = torch.ops._c10d_functional.wait_tensor.default
    except (ImportError, AttributeError):  # a torch built without distributed
        DTensor = AsyncCollectiveTensor = wait_tensor = None  # noqa: N806
        active_fake_mode = None

    class LiveBytes(TorchDispatchMode, _StorageLedger):
        def __init__(self) -> None:
            super().__init__()
            self.supports_higher_order_operators = compiled
            self._init_ledger(WeakIdKeyDictionary(), progress)
            # output storage -> the input it aliases (functional collectives' wait under fake tensors)
            self.aliases = WeakIdKeyDictionary()
            streams = {torch.cpu.current_stream(): 0}  # the objects are kept, so their numbers stay theirs

            def stream_of() -> int:
                return streams.setdefault(torch.cpu.current_stream(), len(streams))

            self.stream_of = stream_of

        def track(self, t: Any) -> Optional[_Cell]:
            if DTensor is not None and isinstance(t, DTensor):
                t = t._local_tensor
            # a functional collective's wrapper (eager tensor parallelism) owns no memory: its result does
            while AsyncCollectiveTensor is not None and isinstance(t, AsyncCollectiveTensor):
                t = t.elem
            if is_traceable_wrapper_subclass(t):
                # a wrapper subclass (torchao's WeightWithDynamicFloat8CastTensor, Float8TrainingTensor) owns no
                # memory: its storage is a placeholder of its logical size; the inner tensors hold the bytes. They
                # are read from its attributes: torchao 0.18's WeightWithDynamicFloat8CastTensor.__tensor_flatten__
                # tests ``if self._precomputed_scale`` (a tensor's truth value: data-dependent on fake tensors)
                inner = [v for v in vars(t).values() if isinstance(v, torch.Tensor)]
                cells = [self.track(v) for v in inner]
                return next((c for c in cells if c is not None), None)
            try:
                st = t.untyped_storage()
            except (RuntimeError, NotImplementedError):
                return None
            alias = self.aliases.get(st)
            if alias is not None:
                return self.track(alias)
            return self.see_storage(st)

        def ignore_compile_internals(self) -> bool:  # type: ignore[override]
            return compiled

        def __enter__(self) -> Any:
            self._orig_resize = _patch_storage_resize(torch, self)
            self._orig_prop = _mute_sharding_propagation(self) if DTensor is not None else None
            return super().__enter__()

        def __exit__(self, *a: Any) -> Any:
            torch.UntypedStorage.resize_ = self._orig_resize
            if self._orig_prop is not None:
                _restore_sharding_propagation(self._orig_prop)
            return super().__exit__(*a)

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if DTensor is not None and any(issubclass(t, DTensor) for t in types):
                return NotImplemented  # DTensor runs its local ops, which come back here
            kwargs = kwargs or {}
            if compiled and fake_mode is not None and getattr(func, "_name", None) == "run_with_rng_state" \
                    and isinstance(args[0], torch.Tensor) and not isinstance(args[0], FakeTensor):
                # the generator state ``run_and_save_rng_state``'s fake kernel saved is the real CPU state
                # (``torch.get_rng_state()``, torch 2.13 ``_prims/rng_prims.py``); the replay's fake kernel ignores it
                args = (fake_mode.from_tensor(args[0]), *args[1:])
            if self.deadline is not None and not self.timed_out and time.monotonic() > self.deadline:
                self.timed_out = True  # raised at the next safe point, never from inside an op
            out = func(*args, **kwargs)
            if self.muted or (fake_mode is not None and active_fake_mode is not None
                              and active_fake_mode() is not fake_mode):
                return out
            if func is wait_tensor and isinstance(out, torch.Tensor) and isinstance(args[0], torch.Tensor):
                # ``_c10d_functional.wait_tensor`` returns its input (the collective wrote it); its fake kernel
                # returns a fresh tensor instead: the output is the input's storage, alive while either is
                st_out, st_in = out.untyped_storage(), args[0].untyped_storage()
                if st_out is not st_in:
                    self.aliases[st_out] = args[0]
                    self.track(args[0])
                    return out
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.track(t)
            if self.on_op is not None:
                self.on_op(func, args, kwargs)
            return out

    return LiveBytes()
