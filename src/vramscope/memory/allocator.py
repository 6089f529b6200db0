"""A model of PyTorch's CUDA caching allocator, to turn a stream of tensor allocations into *reserved* memory.

Follows ``c10/cuda/CUDACachingAllocator.cpp`` (``DeviceCachingAllocator``: ``malloc``, ``get_free_block``,
``should_split``, ``alloc_found_block``, ``free_block``, ``try_merge_blocks``, ``alloc_block``,
``release_available_cached_blocks``, ``release_cached_blocks``, ``garbage_collect_cached_blocks``, the
expandable-segment ``map_block`` / ``unmap_block``) and ``c10/core/AllocatorConfig.{h,cpp}`` for the settings,
as read for torch 2.13 (the pinned version; its ``AllocatorConfig.h``, shipped in the wheel, gives the defaults:
``large_segment_size`` 20 MiB, ``max_split_size`` unlimited, ``max_non_split_rounding_size`` 20 MiB,
``garbage_collection_threshold`` 0, ``expandable_segments`` off; the allocator's rules were read in
pytorch/pytorch's ``CUDACachingAllocator.cpp`` and ``AllocatorConfig.cpp``, which these constants match):

* every request rounds up to 512 bytes (``kMinBlockSize``), or to a power-of-two division with
  ``roundup_power2_divisions`` (``round_size`` / ``roundup_power2_next_division``);
* requests of at most 1 MiB (``kSmallSize``) come from the small pool, whose segments are 2 MiB (``kSmallBuffer``);
  larger ones from the large pool: under 10 MiB (``kMinLargeAlloc``) a 20 MiB segment (``kLargeBuffer``),
  else the request rounded up to 2 MiB (``kRoundLarge``) — ``get_allocation_size``;
* a request takes the smallest cached block of its stream that fits (best fit over (stream, size, address)); a
  block at least ``max_split_size`` is not handed to a smaller request, and an oversize request takes a block
  only when it is less than ``max_non_split_rounding_size`` larger;
* the block is split when the rest would be useful: small pool (or expandable segments) at least 512 bytes left,
  large pool more than 1 MiB left and the request under ``max_split_size`` (``should_split``);
* a freed block merges with free neighbours of its segment and goes back to its pool; memory is never returned to
  the device except when a device allocation fails: then the oversize cached blocks that cover the request
  (``release_available_cached_blocks``, only with ``max_split_size``), then every unsplit cached block
  (``release_cached_blocks``) are freed and the allocation retried (``num_alloc_retries``); if it still fails,
  ``OutOfMemoryError`` (``num_ooms``);
* ``garbage_collection_threshold`` (active only under a memory fraction, ``set_fraction``): before a device
  allocation, when reserved memory exceeds the threshold times the allowed memory, unsplit large blocks older than
  the average (in ``get_free_block`` calls) are freed;
* ``expandable_segments:True``: one segment per stream and pool that grows by pages (2 MiB small, 20 MiB large)
  and gives its completely free pages back on OOM;
* every stream has its own blocks: a block freed by any stream goes back to the pool of the stream it was
  allocated on (the pools order blocks by stream first), so FSDP2's all-gather and reduce-scatter streams keep
  theirs; blocks used on another stream (``record_stream``) are only reusable once that stream's event completes
  (``insert_events`` / ``process_events``): here after ``event_lag`` further allocations, or at a cache flush.

Not modelled: CUDA graph private pools, IPC, ``cudaMallocAsync``. Pure Python, no torch.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

MiB = 2**20
K_MIN_BLOCK = 512
K_SMALL_SIZE = 1 * MiB
K_SMALL_BUFFER = 2 * MiB
K_MIN_LARGE_ALLOC = 10 * MiB
K_ROUND_LARGE = 2 * MiB
K_LARGE_BUFFER = 20 * MiB
UNLIMITED = 2**64 - 1
#: roundup_power2_divisions intervals: 16 of them, [1 MiB, 2 MiB) ... [32 GiB, 64 GiB) and above
ROUNDUP_INTERVALS = 16


class AllocConfError(ValueError):
    """A bad ``PYTORCH_CUDA_ALLOC_CONF``: ``key`` names the setting, ``reason`` (an i18n key, ``ac_*``) and
    ``params`` say what is wrong."""

    def __init__(self, key: str, reason: str, **params: Any) -> None:
        self.key, self.reason, self.params = key, reason, params
        super().__init__(f"{key}: {reason} {params}")


@dataclass(frozen=True)
class AllocatorConfig:
    """The caching allocator's settings (``PYTORCH_CUDA_ALLOC_CONF``), torch 2.13 defaults."""

    max_split_size: int = UNLIMITED
    max_non_split_rounding_size: int = K_LARGE_BUFFER
    roundup_power2_divisions: tuple[int, ...] = (0,) * ROUNDUP_INTERVALS
    garbage_collection_threshold: float = 0.0
    expandable_segments: bool = False
    large_segment_size: int = K_LARGE_BUFFER
    per_process_memory_fraction: float = 0.0  # 0: not set (set_fraction false)
    backend: str = "native"
    text: str = ""

    def divisions(self, size: int) -> int:
        """``AcceleratorAllocatorConfig::roundup_power2_divisions(size)``."""
        log_size = size.bit_length() - 1
        index = min(max(0, log_size - 20), ROUNDUP_INTERVALS - 1)  # intervals start at 1 MiB (2^20)
        return self.roundup_power2_divisions[index]

    def to_dict(self) -> dict[str, Any]:
        return {"max_split_size_mb": None if self.max_split_size == UNLIMITED else self.max_split_size // MiB,
                "max_non_split_rounding_mb": self.max_non_split_rounding_size // MiB,
                "roundup_power2_divisions": list(self.roundup_power2_divisions),
                "garbage_collection_threshold": self.garbage_collection_threshold,
                "expandable_segments": self.expandable_segments,
                "large_segment_size_mb": self.large_segment_size // MiB,
                "per_process_memory_fraction": self.per_process_memory_fraction, "backend": self.backend}


DEFAULT_CONFIG = AllocatorConfig()

#: keys torch 2.13 accepts (AllocatorConfig.cpp parseArgs and CUDAAllocatorConfig::getKeys) that do not change
#: device memory: accepted and ignored here
_NEUTRAL_KEYS = ("release_lock_on_cudamalloc", "release_lock_on_hipmalloc", "pinned_use_cuda_host_register",
                 "pinned_use_hip_host_register", "pinned_num_register_threads", "pinned_use_background_threads",
                 "pinned_reserve_segment_size_mb", "pinned_max_round_threshold", "pinned_max_cached_size",
                 "pinned_free_catch_all", "graph_capture_record_stream_reuse", "throw_on_cudamalloc_oom")


def _lex(text: str) -> list[str]:
    """``lexArgs``: split on ``, : [ ]`` (kept as tokens), spaces dropped."""
    out, buf = [], []
    for ch in text:
        if ch in ",:[]":
            if buf:
                out.append("".join(buf))
                buf = []
            out.append(ch)
        elif ch != " ":
            buf.append(ch)
    if buf:
        out.append("".join(buf))
    return out


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _int(tok: str, key: str) -> int:
    if not tok.isdigit() or len(tok) > 12:
        raise AllocConfError(key, "ac_int", value=tok)
    return int(tok)


def parse_alloc_conf(text: str) -> AllocatorConfig:
    """``PYTORCH_CUDA_ALLOC_CONF`` as torch 2.13 parses it (``AcceleratorAllocatorConfig::parseArgs`` and the
    CUDA keys), e.g. ``expandable_segments:True,max_split_size_mb:128``; raises :class:`AllocConfError`."""
    if not isinstance(text, str) or len(text) > 4096:
        raise AllocConfError("PYTORCH_CUDA_ALLOC_CONF", "ac_text")
    tok = _lex(text)
    vals: dict[str, Any] = {}
    div = [0] * ROUNDUP_INTERVALS
    i = 0

    def value(key: str) -> str:
        nonlocal i
        if i + 1 >= len(tok) or tok[i + 1] != ":" or i + 2 >= len(tok) or tok[i + 2] in ",:[]":
            raise AllocConfError(key, "ac_kv")
        i += 2
        return tok[i]

    while i < len(tok):
        key = tok[i]
        if key in ("max_split_size_mb", "max_non_split_rounding_mb"):
            mb = _int(value(key), key)
            if mb < K_LARGE_BUFFER // MiB:
                raise AllocConfError(key, "ac_min_mb", n=K_LARGE_BUFFER // MiB, value=mb)
            vals["max_split_size" if key == "max_split_size_mb" else "max_non_split_rounding_size"] = mb * MiB
        elif key == "large_segment_size_mb":
            mb = _int(value(key), key)
            if mb <= K_MIN_LARGE_ALLOC // MiB:
                raise AllocConfError(key, "ac_more_mb", n=K_MIN_LARGE_ALLOC // MiB, value=mb)
            vals["large_segment_size"] = mb * MiB
        elif key in ("garbage_collection_threshold", "per_process_memory_fraction"):
            raw = value(key)
            try:
                f = float(raw)
            except ValueError:
                raise AllocConfError(key, "ac_number", value=raw) from None
            ok = 0 < f < 1 if key == "garbage_collection_threshold" else 0 <= f <= 1
            if not ok:
                raise AllocConfError(key, "ac_open_unit" if key == "garbage_collection_threshold"
                                     else "ac_closed_unit")
            vals[key] = f
        elif key == "expandable_segments":
            raw = value(key)
            if raw not in ("True", "False", "true", "false"):
                raise AllocConfError(key, "ac_bool", value=raw)
            vals[key] = raw in ("True", "true")
        elif key == "backend":
            raw = value(key)
            if raw not in ("native", "cudaMallocAsync"):
                raise AllocConfError(key, "ac_backend", value=raw)
            vals[key] = raw
        elif key == "roundup_power2_divisions":
            i = _parse_divisions(tok, i, div)
        elif key in _NEUTRAL_KEYS:
            value(key)
        else:
            raise AllocConfError(key, "ac_unknown")
        i += 1
        if i < len(tok):
            if tok[i] != ",":
                raise AllocConfError(key, "ac_comma", value=tok[i])
            i += 1
    return AllocatorConfig(roundup_power2_divisions=tuple(div), text=text, **vals)


def _parse_divisions(tok: list[str], i: int, div: list[int]) -> int:
    """``parseRoundUpPower2Divisions``: one power of two for every size, or ``[MB:divs,...,>:divs]`` (the first
    entry also covers the sizes below it; ``>`` every interval above the last named one). Returns the index of
    the last token consumed."""
    key = "roundup_power2_divisions"
    if i + 2 >= len(tok) or tok[i + 1] != ":":
        raise AllocConfError(key, "ac_div_form")
    i += 2
    if tok[i] != "[":
        n = _int(tok[i], key)
        if not _is_pow2(n):
            raise AllocConfError(key, "ac_pow2", value=n)
        div[:] = [n] * ROUNDUP_INTERVALS
        return i
    first, last = True, 0
    i += 1
    while i < len(tok) and tok[i] != "]":
        interval = tok[i]
        if i + 2 >= len(tok) or tok[i + 1] != ":":
            raise AllocConfError(key, "ac_entries")
        n = _int(tok[i + 2], key)
        if n and not _is_pow2(n):
            raise AllocConfError(key, "ac_pow2_or0", value=n)
        i += 3
        if interval == ">":
            div[last + 1:] = [n] * (ROUNDUP_INTERVALS - last - 1)
        else:
            mb = _int(interval, key)
            if not _is_pow2(mb):
                raise AllocConfError(key, "ac_interval", value=mb)
            index = min(mb.bit_length() - 1, ROUNDUP_INTERVALS - 1)
            if first:
                div[:index] = [n] * index
                first = False
            div[index] = n
            last = index
        if i < len(tok) and tok[i] == ",":
            i += 1
    if i >= len(tok):
        raise AllocConfError(key, "ac_bracket")
    return i


def roundup_power2_next_division(size: int, divisions: int) -> int:
    if _is_pow2(size):
        return size
    floor = 1 << (size.bit_length() - 1)
    step = floor >> (divisions.bit_length() - 1)
    if step == 0:
        return floor << 1
    low = size & ~(step - 1)
    return size if low == size else low + step


def round_size(size: int, config: AllocatorConfig = DEFAULT_CONFIG) -> int:
    """``round_size``: what a request of ``size`` bytes occupies."""
    if size < K_MIN_BLOCK:
        return K_MIN_BLOCK
    divisions = config.divisions(size)
    if divisions > 1 and size > K_MIN_BLOCK * divisions:
        return roundup_power2_next_division(size, divisions)
    return K_MIN_BLOCK * (-(-size // K_MIN_BLOCK))


def allocation_size(size: int, config: AllocatorConfig = DEFAULT_CONFIG) -> int:
    """``get_allocation_size``: the segment a (rounded) request makes the allocator ``cudaMalloc``."""
    if size <= K_SMALL_SIZE:
        return K_SMALL_BUFFER
    if size < K_MIN_LARGE_ALLOC:
        return config.large_segment_size
    return K_ROUND_LARGE * (-(-size // K_ROUND_LARGE))


class OutOfMemory(Exception):
    """The allocator could not satisfy a request even after freeing its cache."""

    def __init__(self, size: int, allocated: int, reserved: int) -> None:
        super().__init__(f"out of memory: tried to allocate {size} bytes ({allocated} allocated, {reserved} reserved)")
        self.size, self.allocated, self.reserved = size, allocated, reserved


class Block:
    __slots__ = ("stream", "size", "ptr", "small", "allocated", "prev", "next", "seg", "mapped", "requested",
                 "gc_base", "stream_uses", "events")

    def __init__(self, stream: int, size: int, ptr: int, small: bool, seg: Optional["_Expandable"] = None) -> None:
        self.stream, self.size, self.ptr, self.small, self.seg = stream, size, ptr, small, seg
        self.allocated = False
        self.prev: Optional[Block] = None
        self.next: Optional[Block] = None
        self.mapped = True
        self.requested = 0
        self.gc_base = 0
        self.stream_uses: set[int] = set()
        self.events = 0

    def is_split(self) -> bool:
        return self.prev is not None or self.next is not None

    def key(self) -> tuple[int, int, int]:
        return (self.stream, self.size, self.ptr)


class _Pool:
    """``BlockPool``: free blocks ordered by (stream, size, address), and unmapped expandable ranges."""

    def __init__(self, small: bool) -> None:
        self.small = small
        self.keys: list[tuple[int, int, int]] = []
        self.blocks: dict[tuple[int, int, int], Block] = {}
        self.free_calls = 0  # get_free_blocks_call_count

    def insert(self, b: Block) -> None:
        b.gc_base = self.free_calls
        k = b.key()
        bisect.insort(self.keys, k)
        self.blocks[k] = b

    def remove(self, b: Block) -> None:
        k = b.key()
        i = bisect.bisect_left(self.keys, k)
        if i < len(self.keys) and self.keys[i] == k:
            del self.keys[i]
            del self.blocks[k]

    def lower_bound(self, stream: int, size: int) -> int:
        return bisect.bisect_left(self.keys, (stream, size, -1))


class _Expandable:
    """An expandable segment: a virtual range mapped page by page (``ExpandableSegment``)."""

    def __init__(self, base: int, size: int, page: int) -> None:
        self.base, self.size, self.page = base, size, page
        self.first: Optional[Block] = None  # the block at ``base``


@dataclass
class Stats:
    allocated: int = 0
    reserved: int = 0
    requested: int = 0
    peak_allocated: int = 0
    peak_reserved: int = 0
    num_alloc_retries: int = 0
    num_ooms: int = 0
    num_device_alloc: int = 0
    num_device_free: int = 0
    segments: int = 0


@dataclass
class CachingAllocator:
    """One device's caching allocator. ``capacity``: the bytes ``cudaMalloc`` can get (None: unlimited);
    ``total_memory``: the device's memory, for ``per_process_memory_fraction`` and garbage collection."""

    config: AllocatorConfig = DEFAULT_CONFIG
    capacity: Optional[int] = None
    total_memory: Optional[int] = None
    event_lag: int = 0
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self.small = _Pool(True)
        self.large = _Pool(False)
        self.active: set[Block] = set()
        self.expandable: dict[tuple[int, bool], _Expandable] = {}
        self._next_ptr = 1 << 40
        self._pending: list[tuple[int, Block]] = []  # (malloc count when the event completes, block)
        self._mallocs = 0
        frac = self.config.per_process_memory_fraction
        total = self.total_memory if self.total_memory is not None else self.capacity
        self.set_fraction = bool(frac) and total is not None
        self.allowed = int(frac * total) if self.set_fraction and total is not None else None
        self._plain_rounding = not any(self.config.roundup_power2_divisions)  # round_size: 512-byte units only
        # the rules a replay meets on almost every call, inlined (``_malloc_found``, ``_free_fast``): fixed-size
        # segments (no expandable ones), no garbage collection, no max_split_size, 512-byte rounding
        self._fast = (self._plain_rounding and not self.config.expandable_segments
                      and not (self.set_fraction and self.config.garbage_collection_threshold > 0)
                      and self.config.max_split_size == UNLIMITED)

    # -- public API ------------------------------------------------------------------------------------
    def malloc(self, orig_size: int, stream: int = 0) -> Block:
        self._mallocs += 1
        if self._pending:
            self._process_events()
        if self._fast:
            found = self._malloc_found(orig_size, stream)
            if found is not None:
                return found
        if self._plain_rounding:  # round_size without power-of-two divisions (the default), inlined: the hot path
            size = K_MIN_BLOCK if orig_size < K_MIN_BLOCK else K_MIN_BLOCK * (-(-orig_size // K_MIN_BLOCK))
        else:
            size = round_size(orig_size, self.config)
        pool = self.small if size <= K_SMALL_SIZE else self.large
        alloc = allocation_size(size, self.config)
        block = self._get_free_block(pool, stream, size)
        if block is None:
            if self.set_fraction and self.config.garbage_collection_threshold > 0:
                self._garbage_collect()
            block = (self._alloc_block(pool, stream, size, alloc)
                     or (self._release_available(pool, stream, size) and self._alloc_block(pool, stream, size, alloc))
                     or (self._release_cached() and self._alloc_block(pool, stream, size, alloc, retry=True)))
        if block is None:
            self.stats.num_ooms += 1
            raise OutOfMemory(alloc, self.stats.allocated, self.stats.reserved)
        return self._alloc_found(pool, block, size, orig_size)

    def free(self, block: Block) -> None:
        if self._fast and not block.stream_uses:
            self._free_fast(block)
            return
        block.allocated = False
        st = self.stats
        st.allocated -= block.size
        st.requested -= block.requested
        if block.stream_uses:
            block.events = len(block.stream_uses)
            block.stream_uses = set()
            self._pending.append((self._mallocs + self.event_lag, block))
        else:
            self._free_block(block)

    def record_stream(self, block: Block, stream: int) -> None:
        if stream != block.stream:
            block.stream_uses.add(stream)

    def empty_cache(self) -> None:
        self._release_cached()

    def reset_peak(self) -> None:
        self.stats.peak_allocated = self.stats.allocated
        self.stats.peak_reserved = self.stats.reserved

    @property
    def inactive_split_bytes(self) -> int:
        """Free bytes in segments that also hold live blocks (the fragmentation that ``empty_cache`` cannot
        return)."""
        return sum(b.size for p in (self.small, self.large) for b in p.blocks.values() if b.is_split() and b.mapped)

    def snapshot(self) -> list[dict[str, Any]]:
        """Segments as ``torch.cuda.memory._snapshot()['segments']`` lists them (address order)."""
        out = []
        heads = [b for b in self._all_blocks() if b.prev is None or (b.seg is not None and not b.prev.mapped)]
        for head in sorted(heads, key=lambda b: b.ptr):
            if not head.mapped:
                continue
            blocks, b = [], head
            while b is not None and b.mapped:
                blocks.append({"size": b.size, "requested_size": b.requested if b.allocated else 0,
                               "state": "active_allocated" if b.allocated else
                               ("active_pending_free" if b.events else "inactive")})
                b = b.next
            out.append({"address": head.ptr, "stream": head.stream, "segment_type": "small" if head.small else "large",
                        "is_expandable": head.seg is not None, "total_size": sum(x["size"] for x in blocks),
                        "allocated_size": sum(x["size"] for x in blocks if x["state"] == "active_allocated"),
                        "blocks": blocks})
        return out

    @property
    def freezable(self) -> bool:
        """Whether :meth:`freeze` can keep this allocator's state (its settings and limits allow it)."""
        return self._fast and self.capacity is None and self.allowed is None

    def freeze(self) -> Optional["Frozen"]:
        """This allocator's state for :meth:`thaw`, on the understanding that every block allocated now stays
        allocated (a loaded model): only the segments that hold a free block are kept, each run of allocated
        blocks in them as one block (never freed, it only stops merges), with the counters. None unless the rules
        of ``_fast`` hold with nothing pending and no capacity or memory fraction."""
        if not self.freezable or self._pending:
            return None
        heads: dict[int, Block] = {}
        for b in (*self.small.blocks.values(), *self.large.blocks.values()):
            while b.prev is not None:
                b = b.prev
            heads[id(b)] = b
        segs = []
        for head in sorted(heads.values(), key=lambda x: x.ptr):
            runs: list[list[Any]] = []
            x: Optional[Block] = head
            while x is not None:
                if x.allocated and runs and runs[-1][1]:
                    runs[-1][0] += x.size
                else:
                    runs.append([x.size, x.allocated])
                x = x.next
            segs.append((head.ptr, head.small, head.stream, tuple((n, al) for n, al in runs)))
        st = self.stats
        return Frozen(config=self.config, segments=tuple(segs), next_ptr=self._next_ptr, mallocs=self._mallocs,
                      stats=(st.allocated, st.reserved, st.requested, st.peak_allocated, st.peak_reserved,
                             st.num_alloc_retries, st.num_ooms, st.num_device_alloc, st.num_device_free,
                             st.segments))

    @classmethod
    def thaw(cls, f: "Frozen") -> "CachingAllocator":
        """A new allocator in the state :meth:`freeze` kept: it answers every later request and free (of blocks
        it hands out from now on) as the frozen one would, with the same counters."""
        a = cls(config=f.config, stats=Stats(*f.stats))
        a._next_ptr, a._mallocs = f.next_ptr, f.mallocs
        for ptr, small, stream, runs in f.segments:
            pool = a.small if small else a.large
            prev: Optional[Block] = None
            for size, allocated in runs:
                b = Block(stream, size, ptr, small)
                b.prev = prev
                if prev is not None:
                    prev.next = b
                if allocated:
                    b.allocated, b.requested = True, size
                    a.active.add(b)
                else:
                    pool.insert(b)
                ptr += size
                prev = b
        return a

    # -- internals -------------------------------------------------------------------------------------
    def _malloc_found(self, orig_size: int, stream: int) -> Optional[Block]:
        """``malloc`` when a cached block fits, under the rules of ``_fast``: ``round_size``, ``get_free_block``,
        ``should_split`` and ``alloc_found_block`` in one frame (the same steps as the general path, which
        ``tests/test_allocator.py`` holds equal); None (nothing changed) when no cached block fits."""
        size = K_MIN_BLOCK if orig_size < K_MIN_BLOCK else K_MIN_BLOCK * (-(-orig_size // K_MIN_BLOCK))
        small = size <= K_SMALL_SIZE
        pool = self.small if small else self.large
        keys = pool.keys
        i = bisect.bisect_left(keys, (stream, size, -1))
        if i == len(keys):
            return None
        k = keys[i]
        if k[0] != stream:
            return None
        del keys[i]
        b = pool.blocks.pop(k)
        remaining = b.size - size
        if (remaining >= K_MIN_BLOCK) if small else (remaining > K_SMALL_SIZE):
            rest = b
            b = Block(stream, size, rest.ptr, small)
            prev = rest.prev
            b.prev = prev
            if prev is not None:
                prev.next = b
            b.next = rest
            rest.prev = b
            rest.ptr += size
            rest.size = remaining
            rest.gc_base = pool.free_calls
            rk = (stream, remaining, rest.ptr)
            bisect.insort(keys, rk)
            pool.blocks[rk] = rest
        b.allocated = True
        b.requested = orig_size
        self.active.add(b)
        st = self.stats
        st.allocated += b.size
        st.requested += orig_size
        if st.allocated > st.peak_allocated:
            st.peak_allocated = st.allocated
        return b

    def _free_fast(self, b: Block) -> None:
        """``free`` of a block no other stream used: ``free_block`` with ``try_merge_blocks`` under the rules of
        ``_fast`` (every block mapped)."""
        b.allocated = False
        st = self.stats
        st.allocated -= b.size
        st.requested -= b.requested
        pool = self.small if b.small else self.large
        keys, blocks = pool.keys, pool.blocks
        src = b.prev
        if src is not None and not src.allocated and not src.events and not src.stream_uses:
            k = (src.stream, src.size, src.ptr)  # pool.remove, inlined (a free block is always in its pool)
            del keys[bisect.bisect_left(keys, k)]
            del blocks[k]
            b.ptr = src.ptr
            b.prev = src.prev
            if b.prev is not None:
                b.prev.next = b
            b.size += src.size
        src = b.next
        if src is not None and not src.allocated and not src.events and not src.stream_uses:
            k = (src.stream, src.size, src.ptr)
            del keys[bisect.bisect_left(keys, k)]
            del blocks[k]
            b.next = src.next
            if b.next is not None:
                b.next.prev = b
            b.size += src.size
        self.active.discard(b)
        b.gc_base = pool.free_calls
        k = (b.stream, b.size, b.ptr)
        bisect.insort(keys, k)
        blocks[k] = b

    def _all_blocks(self) -> Iterable[Block]:
        seen: set[int] = set()
        for b in list(self.active) + list(self.small.blocks.values()) + list(self.large.blocks.values()) + \
                [p[1] for p in self._pending]:
            while b.prev is not None:
                b = b.prev
            while b is not None:
                if id(b) not in seen:
                    seen.add(id(b))
                    yield b
                b = b.next

    def _process_events(self) -> None:
        if not self._pending:
            return
        keep = []
        for due, b in self._pending:
            if due <= self._mallocs:
                b.events = 0
                self._free_block(b)
            else:
                keep.append((due, b))
        self._pending = keep

    def _get_free_block(self, pool: _Pool, stream: int, size: int) -> Optional[Block]:
        cfg = self.config
        if self.set_fraction and cfg.garbage_collection_threshold > 0:
            pool.free_calls += 1
        i = pool.lower_bound(stream, size)
        if i == len(pool.keys) or pool.keys[i][0] != stream:
            return None
        b = pool.blocks[pool.keys[i]]
        if b.seg is not None and not cfg.expandable_segments:
            while i < len(pool.keys) and pool.keys[i][0] == stream and pool.blocks[pool.keys[i]].seg is not None:
                i += 1
            if i == len(pool.keys) or pool.keys[i][0] != stream:
                return None
            b = pool.blocks[pool.keys[i]]
        if size < cfg.max_split_size and b.size >= cfg.max_split_size:
            return None
        if size >= cfg.max_split_size and b.size >= size + cfg.max_non_split_rounding_size:
            return None
        pool.remove(b)
        return b

    def _should_split(self, b: Block, size: int) -> bool:
        remaining = b.size - size
        if b.small or self.config.expandable_segments:
            return remaining >= K_MIN_BLOCK
        return size < self.config.max_split_size and remaining > K_SMALL_SIZE

    def _alloc_found(self, pool: _Pool, b: Block, size: int, orig_size: int) -> Block:
        if self._should_split(b, size):
            rest = b
            b = Block(rest.stream, size, rest.ptr, rest.small, rest.seg)
            b.prev = rest.prev
            if b.prev is not None:
                b.prev.next = b
            b.next = rest
            rest.prev = b
            if rest.seg is not None and rest.seg.first is rest:
                rest.seg.first = b
            rest.ptr += size
            rest.size -= size
            pool.insert(rest)
        b.allocated = True
        b.requested = orig_size
        self.active.add(b)
        st = self.stats
        st.allocated += b.size
        st.requested += orig_size
        st.peak_allocated = max(st.peak_allocated, st.allocated)
        return b

    def _free_block(self, b: Block) -> None:
        pool = self.small if b.small else self.large
        for other in (b.prev, b.next):
            self._try_merge(b, other, pool)
        self.active.discard(b)
        pool.insert(b)

    def _try_merge(self, dst: Block, src: Optional[Block], pool: _Pool) -> int:
        if src is None or src.allocated or src.events or src.stream_uses or dst.mapped != src.mapped:
            return 0
        if src.mapped:
            pool.remove(src)
        if dst.prev is src:
            dst.ptr = src.ptr
            dst.prev = src.prev
            if dst.prev is not None:
                dst.prev.next = dst
        else:
            dst.next = src.next
            if dst.next is not None:
                dst.next.prev = dst
        dst.size += src.size
        if src.seg is not None and src.seg.first is src:
            src.seg.first = dst
        return src.size

    def _device_can(self, nbytes: int) -> bool:
        if self.allowed is not None and self.stats.reserved + nbytes > self.allowed:
            return False
        return self.capacity is None or self.stats.reserved + nbytes <= self.capacity

    def _alloc_block(self, pool: _Pool, stream: int, size: int, alloc: int, retry: bool = False
                     ) -> Optional[Block]:
        st = self.stats
        if retry:
            st.num_alloc_retries += 1
        if self.config.expandable_segments:
            return self._alloc_expandable(pool, stream, size)
        if not self._device_can(alloc):
            return None
        ptr = self._next_ptr
        self._next_ptr += -(-alloc // K_ROUND_LARGE) * K_ROUND_LARGE + K_ROUND_LARGE
        b = Block(stream, alloc, ptr, pool.small)
        st.reserved += alloc
        st.segments += 1
        st.num_device_alloc += 1
        st.peak_reserved = max(st.peak_reserved, st.reserved)
        return b

    def _release_block(self, b: Block) -> None:
        pool = self.small if b.small else self.large
        pool.remove(b)
        self.stats.reserved -= b.size
        self.stats.segments -= 1
        self.stats.num_device_free += 1

    def _release_available(self, pool: _Pool, stream: int, size: int) -> bool:
        """``release_available_cached_blocks``: free oversize blocks until the request is covered."""
        mss = self.config.max_split_size
        if mss == UNLIMITED:
            return False
        want = max(size, mss)
        i = pool.lower_bound(stream, want)
        if i < len(pool.keys) and pool.keys[i][0] == stream:
            self._release_block(pool.blocks[pool.keys[i]])
            return True
        released = 0
        i -= 1
        while released < want and i >= 0 and pool.keys[i][0] == stream and pool.keys[i][1] >= mss:
            b = pool.blocks[pool.keys[i]]
            released += b.size
            self._release_block(b)
            i -= 1
        return released >= want

    def _release_cached(self) -> bool:
        """``release_cached_blocks``: wait for pending events, free every unsplit cached block, unmap free pages."""
        for _, b in self._pending:
            b.events = 0
            self._free_block(b)
        self._pending = []
        for pool in (self.large, self.small):
            for b in [pool.blocks[k] for k in list(pool.keys)]:
                if b.seg is not None:
                    self._unmap(pool, b)
                elif not b.is_split():
                    self._release_block(b)
        return True

    def _garbage_collect(self) -> None:
        """``garbage_collect_cached_blocks``: free unsplit large blocks older than average until under the
        threshold."""
        assert self.allowed is not None
        threshold = int(self.config.garbage_collection_threshold * self.allowed)
        if self.stats.reserved <= threshold:
            return
        target = self.stats.reserved - threshold
        pool = self.large
        ages = [pool.free_calls - b.gc_base for b in pool.blocks.values() if not b.is_split() and b.seg is None]
        total_age, count = sum(ages), len(ages)
        reclaimed, freed = 0, True
        while reclaimed < target and freed and count > 0:
            threshold_age = total_age / count
            freed = False
            for k in list(pool.keys):
                b = pool.blocks.get(k)
                if b is None or b.is_split() or b.seg is not None:
                    continue
                age = pool.free_calls - b.gc_base
                if age >= threshold_age:
                    freed = True
                    reclaimed += b.size
                    total_age -= age
                    count -= 1
                    self._release_block(b)

    # -- expandable segments ---------------------------------------------------------------------------
    def _alloc_expandable(self, pool: _Pool, stream: int, size: int) -> Optional[Block]:
        """``try_allocate_expandable_block``: map pages after the segment's free tail (or the first gap) until a
        free block of ``size`` exists."""
        page = K_SMALL_BUFFER if pool.small else self.config.large_segment_size
        seg = self.expandable.get((stream, pool.small))
        if seg is None:
            seg = _Expandable(self._next_ptr, 1 << 46, page)
            self._next_ptr += seg.size + K_ROUND_LARGE
            self.expandable[(stream, pool.small)] = seg
            whole = Block(stream, seg.size, seg.base, pool.small, seg)
            whole.mapped = False
            seg.first = whole
        # the lowest unmapped range, with the free mapped block just before it
        b: Optional[Block] = seg.first
        cand = None
        while b is not None:
            if not b.mapped:
                start = b.prev if (b.prev is not None and b.prev.mapped and not b.prev.allocated
                                   and not b.prev.events) else b
                have, x = 0, start
                while x is not None and have < size and not x.allocated and not x.events:
                    have += x.size
                    x = x.next
                if have >= size:
                    cand = start
                    break
            b = b.next
        if cand is None:
            return None
        free_before = cand.mapped
        need = size - (cand.size if free_before else 0)
        target = cand.next if free_before else cand
        pages = -(-need // page) * page
        if not self._device_can(pages):
            return None
        assert target is not None and not target.mapped
        if target.size > pages:  # split the unmapped range: [mapped pages][rest unmapped]
            rest = Block(stream, target.size - pages, target.ptr + pages, pool.small, seg)
            rest.mapped = False
            rest.prev, rest.next = target, target.next
            if target.next is not None:
                target.next.prev = rest
            target.next = rest
            target.size = pages
        target.mapped = True
        st = self.stats
        st.reserved += pages
        st.num_device_alloc += 1
        st.peak_reserved = max(st.peak_reserved, st.reserved)
        if free_before:  # merge the new pages into the free block before them
            pool.remove(cand)
            self._try_merge(target, cand, pool)
        return target

    def _unmap(self, pool: _Pool, b: Block) -> None:
        """``unmap_block``: give back the completely free pages of a free expandable block."""
        page = b.seg.page if b.seg is not None else K_SMALL_BUFFER
        base = b.seg.base if b.seg is not None else 0
        first = base + -(-(b.ptr - base) // page) * page
        last = base + (b.ptr + b.size - base) // page * page
        if last <= first:
            return
        pool.remove(b)
        if first > b.ptr:
            before = Block(b.stream, first - b.ptr, b.ptr, b.small, b.seg)
            before.prev, before.next = b.prev, b
            if b.prev is not None:
                b.prev.next = before
            b.prev = before
            pool.insert(before)
            if b.seg is not None and b.seg.first is b:
                b.seg.first = before
        if b.ptr + b.size > last:
            after = Block(b.stream, b.ptr + b.size - last, last, b.small, b.seg)
            after.prev, after.next = b, b.next
            if b.next is not None:
                b.next.prev = after
            b.next = after
            pool.insert(after)
        b.ptr, b.size, b.mapped = first, last - first, False
        self.stats.reserved -= b.size
        self.stats.num_device_free += 1
        for other in (b.prev, b.next):
            self._try_merge(b, other, pool)


@dataclass(frozen=True)
class Frozen:
    """An allocator's state kept by :meth:`CachingAllocator.freeze`: per segment that holds a free block
    (address, small pool, stream, its blocks' (size, allocated) in address order), the next segment's address,
    the malloc count and the :class:`Stats` fields in order."""

    config: AllocatorConfig
    segments: tuple[tuple[int, bool, int, tuple[tuple[int, bool], ...]], ...]
    next_ptr: int
    mallocs: int
    stats: tuple[int, ...]


@dataclass(frozen=True)
class Replay:
    """What the allocator did with a trace: peaks and whether it had to flush its cache."""

    peak_allocated: int
    peak_reserved: int
    phase_reserved: dict[str, int]
    num_alloc_retries: int
    num_ooms: int
    segments: int
    inactive_split_bytes: int

    @property
    def fragmentation(self) -> float:
        """Reserved beyond the allocated peak, as a share of the allocated peak."""
        return self.peak_reserved / self.peak_allocated - 1 if self.peak_allocated else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"peak_allocated_bytes": self.peak_allocated, "peak_reserved_bytes": self.peak_reserved,
                "fragmentation": round(self.fragmentation, 4), "num_alloc_retries": self.num_alloc_retries,
                "oom": self.num_ooms > 0, "segments": self.segments}


def replay(sizes: list[int], events: list[int], config: AllocatorConfig = DEFAULT_CONFIG,
           capacity: Optional[int] = None, marks: Optional[dict[str, int]] = None,
           extra: Iterable[int] = (), start: Optional[int] = None,
           streams: Optional[list[int]] = None,
           on_event: Optional[Callable[["CachingAllocator", int, int], None]] = None) -> Replay:
    """Replay an allocation stream: ``events`` holds ``key+1`` for an allocation of ``sizes[key]`` bytes and
    ``-(key+1)`` for its free (the trace's :class:`~vramscope.trace.tracker.TraceLog`); ``extra`` are
    allocations made first and kept (the cuBLAS workspace). ``start``: an event index; the tensors live after it
    are allocated first, in the order they were made (a loaded model, without its construction's temporaries), and
    the replay goes on from there. ``marks`` (phase -> event index it starts after) gives the peak reserved per
    phase. ``streams`` (key -> stream) allocates each block on its stream: a freed block returns to the pool of the
    stream it was allocated on, which only that stream reuses. An OOM ends the replay (``num_ooms`` = 1).
    ``on_event(alloc, key, ev)`` is called after each event replayed past ``start`` (e.g. to read
    :func:`stream_segments` at a moment)."""
    alloc = CachingAllocator(config=config, capacity=capacity)
    live: dict[int, Block] = {}
    first = 0
    try:
        for n in extra:
            alloc.malloc(n)
        if start is not None:
            resident: set[int] = set()
            for ev in events[: start + 1]:
                if ev > 0:
                    resident.add(ev - 1)
                else:
                    resident.discard(-ev - 1)
            for key in sorted(resident):
                live[key] = alloc.malloc(sizes[key], streams[key] if streams else 0)
            first = start + 1
    except OutOfMemory:
        return _replayed(alloc, {})
    starts = sorted(((idx, name) for name, idx in (marks or {}).items()), key=lambda x: x[0])
    phase_reserved: dict[str, int] = {}
    current, si = "", 0
    try:
        for i in range(first, len(events)):
            ev = events[i]
            while si < len(starts) and starts[si][0] < i:
                current = starts[si][1]
                si += 1
            if ev > 0:
                live[ev - 1] = alloc.malloc(sizes[ev - 1], streams[ev - 1] if streams else 0)
            else:
                b = live.pop(-ev - 1, None)
                if b is not None:
                    alloc.free(b)
            if current:
                phase_reserved[current] = max(phase_reserved.get(current, 0), alloc.stats.reserved)
            if on_event is not None:
                on_event(alloc, abs(ev) - 1, ev)
    except OutOfMemory:
        pass
    return _replayed(alloc, phase_reserved)


def stream_segments(alloc: "CachingAllocator") -> tuple[dict[int, int], dict[int, int]]:
    """``(held, used)``: bytes of segments each stream's pool holds now, and of those allocated."""
    held: dict[int, int] = {}
    used: dict[int, int] = {}
    for seg in alloc.snapshot():
        held[seg["stream"]] = held.get(seg["stream"], 0) + seg["total_size"]
        used[seg["stream"]] = used.get(seg["stream"], 0) + seg["allocated_size"]
    return held, used


def _replayed(alloc: CachingAllocator, phase_reserved: dict[str, int]) -> Replay:
    st = alloc.stats
    return Replay(peak_allocated=st.peak_allocated, peak_reserved=st.peak_reserved, phase_reserved=phase_reserved,
                  num_alloc_retries=st.num_alloc_retries, num_ooms=st.num_ooms, segments=st.segments,
                  inactive_split_bytes=alloc.inactive_split_bytes)
