"""The caching-allocator model against the allocator's documented rules and torch's own tests.

Sources: ``c10/cuda/CUDACachingAllocator.cpp`` (the rules, quoted in ``memory/allocator.py``), torch's
``test/test_cuda.py`` (``test_memory_stats``, ``test_out_of_memory_retry``, ``test_set_per_process_memory_fraction``,
``test_allocator_settings``, ``test_cublas_workspace_explicit_allocation``) and ``c10/test/core/AllocatorConfig_test.cpp``.
"""

import pytest

from vramscope.memory.allocator import (K_LARGE_BUFFER, AllocConfError, CachingAllocator, OutOfMemory,
                                        allocation_size, parse_alloc_conf, replay, round_size)

MiB = 2**20


def power2_div(size, div_factor):
    """test_cuda.py test_allocator_settings' reference for roundup_power2_divisions."""
    pow2 = 1
    while pow2 < size:
        pow2 *= 2
    if pow2 == size:
        return pow2
    step = pow2 / 2 / div_factor
    ret = pow2 / 2
    while ret < size:
        ret += step
    return ret


def test_rounding_to_512_bytes():
    assert round_size(1) == 512
    assert round_size(512) == 512
    assert round_size(513) == 1024
    a = CachingAllocator()
    a.malloc(256 * 4)  # test_memory_stats: torch.randn(256) -> active_bytes grows by 1024
    assert a.stats.allocated == 1024


def test_pools_and_segment_sizes():
    assert allocation_size(round_size(1000)) == 2 * MiB  # small pool: 2 MiB segments
    assert allocation_size(1 * MiB) == 2 * MiB  # 1 MiB is still small
    assert allocation_size(1 * MiB + 512) == 20 * MiB  # 1-10 MiB: a 20 MiB segment
    assert allocation_size(10 * MiB - 512) == 20 * MiB
    assert allocation_size(10 * MiB) == 10 * MiB  # from 10 MiB: rounded up to 2 MiB
    assert allocation_size(11 * MiB) == 12 * MiB
    a = CachingAllocator()
    x = [a.malloc(100_000) for _ in range(20)]  # 20 x 100 kB share one 2 MiB small segment
    assert a.stats.reserved == 2 * MiB and len(x) == 20
    a.malloc(3 * MiB)
    a.malloc(3 * MiB)  # packed into the same 20 MiB segment (split)
    assert a.stats.reserved == 22 * MiB


def test_large_pool_splits_only_useful_remainders():
    a = CachingAllocator()
    b = a.malloc(12 * MiB)
    a.free(b)
    # 11.5 MiB in the cached 12 MiB block: the 0.5 MiB rest is not more than kSmallSize, so no split
    c = a.malloc(11 * MiB + 512 * 1024)
    assert c.size == 12 * MiB and a.stats.allocated == 12 * MiB
    a.free(c)
    d = a.malloc(4 * MiB)  # rest 8 MiB > 1 MiB: split
    assert d.size == 4 * MiB and a.stats.reserved == 12 * MiB


def test_free_blocks_merge_and_best_fit():
    a = CachingAllocator()
    x, y, z = a.malloc(4 * MiB), a.malloc(4 * MiB), a.malloc(4 * MiB)  # one 20 MiB segment
    a.free(x)
    a.free(y)  # x and y merge into 8 MiB
    w = a.malloc(8 * MiB)
    assert w.ptr == x.ptr and a.stats.reserved == 20 * MiB
    assert z.allocated


def test_max_split_size():
    conf = parse_alloc_conf("max_split_size_mb:40")
    a = CachingAllocator(config=conf)
    big = a.malloc(100 * MiB)
    a.free(big)
    small = a.malloc(30 * MiB)  # below max_split_size: never served from an oversize block
    assert a.stats.reserved == 100 * MiB + 30 * MiB
    a.free(small)
    near = a.malloc(90 * MiB)  # oversize request: takes the 100 MiB block (within 20 MiB), unsplit
    assert near.size == 100 * MiB
    a.free(near)
    far = a.malloc(60 * MiB)  # 100 >= 60 + 20: not taken
    assert far.size == 60 * MiB


def test_roundup_power2_divisions_like_torch():
    nbytes = 4 * 21 * MiB
    assert round_size(nbytes) == nbytes
    assert round_size(nbytes, parse_alloc_conf("roundup_power2_divisions:4")) == power2_div(nbytes, 4)
    arr = parse_alloc_conf("garbage_collection_threshold:0.5,roundup_power2_divisions:[64:8,128:2,256:2,512:2,1024:1,>:1]")
    assert round_size(nbytes, arr) == power2_div(nbytes, 8)
    big = 4 * 100 * MiB
    assert round_size(big, arr) == power2_div(big, 2)


def test_alloc_conf_parse_like_c10_test():
    c = parse_alloc_conf("max_split_size_mb:40,max_non_split_rounding_mb:30,garbage_collection_threshold:0.5,"
                         "roundup_power2_divisions:[64:8,128:2,256:4,512:2,1024:4,>:1],expandable_segments:True")
    assert c.max_split_size == 40 * MiB and c.max_non_split_rounding_size == 30 * MiB
    assert c.garbage_collection_threshold == 0.5 and c.expandable_segments
    got = [c.divisions(n * MiB) for n in (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)]
    assert got == [8, 8, 2, 4, 2, 4, 1, 1, 1]
    assert parse_alloc_conf("").max_split_size == 2**64 - 1


@pytest.mark.parametrize("text, key", [
    ("max_split_size_mb:10", "max_split_size_mb"),  # below kLargeBuffer
    ("garbage_collection_threshold:1.5", "garbage_collection_threshold"),
    ("expandable_segments:yes", "expandable_segments"),
    ("roundup_power2_divisions:3", "roundup_power2_divisions"),
    ("roundup_power2_divisions:[64:8", "roundup_power2_divisions"),
    ("frobnicate:1", "frobnicate"),
    ("max_split_size_mb", "max_split_size_mb"),
])
def test_alloc_conf_errors_name_the_key(text, key):
    with pytest.raises(AllocConfError) as e:
        parse_alloc_conf(text)
    assert e.value.key == key


def test_out_of_memory_retry_like_torch():
    total = 1000 * MiB
    a = CachingAllocator(capacity=total - 100 * MiB)  # the CUDA context holds part of the device
    first = a.malloc(total // 2)
    with pytest.raises(OutOfMemory):
        a.malloc(total // 2)
    assert a.stats.num_ooms == 1
    a.free(first)
    second = a.malloc(total // 2)  # the cached block is reused
    a.free(second)
    a.malloc(total * 6 // 10)  # no cached block fits and no room: cache freed, retried
    # the failed request retried once before its OOM, this one once and succeeded
    assert a.stats.num_alloc_retries == 2 and a.stats.num_ooms == 1 and a.stats.reserved == 600 * MiB


def test_per_process_memory_fraction_like_torch():
    total = 1000 * MiB
    a = CachingAllocator(config=parse_alloc_conf("per_process_memory_fraction:0.5"), capacity=total,
                         total_memory=total)
    a.malloc(1024 * 4)
    ok = a.malloc(int(total * 0.499) - a.stats.peak_reserved)
    a.free(ok)
    a.empty_cache()
    with pytest.raises(OutOfMemory):
        a.malloc(int(total * 0.5))


def test_garbage_collection_frees_old_blocks_under_a_fraction():
    total = 1000 * MiB

    def run(conf):
        a = CachingAllocator(config=parse_alloc_conf(conf), capacity=total, total_memory=total)
        a.free(a.malloc(200 * MiB))
        for _ in range(5):  # a larger size in use: the cached 200 MiB block ages
            a.free(a.malloc(400 * MiB))
        assert a.stats.reserved == 600 * MiB
        a.malloc(500 * MiB)
        return a.stats
    gc = run("garbage_collection_threshold:0.3,per_process_memory_fraction:1.0")
    # reserved 600 > 0.3 x 1000: the cached blocks are freed, oldest first, before cudaMalloc
    assert gc.num_alloc_retries == 0 and gc.reserved == 500 * MiB
    plain = run("")  # no memory fraction: garbage collection is off, the cudaMalloc fails and the cache is flushed
    assert plain.num_alloc_retries == 1 and plain.reserved == 500 * MiB


def test_expandable_segments_tile_growing_requests():
    # Note [Expandable Segments]: sizes that grow slightly leave slivers in fixed segments, not in expandable ones
    def run(conf):
        a = CachingAllocator(config=parse_alloc_conf(conf))
        for n in (30, 31, 32, 33):
            blocks = [a.malloc(n * MiB) for _ in range(8)]
            for b in blocks:
                a.free(b)
        return a.stats.peak_reserved
    fixed, grown = run(""), run("expandable_segments:True")
    assert grown < fixed
    assert grown == -(-8 * 33 * MiB // K_LARGE_BUFFER) * K_LARGE_BUFFER  # whole 20 MiB pages
    a = CachingAllocator(config=parse_alloc_conf("expandable_segments:True"))
    b = a.malloc(30 * MiB)
    a.free(b)
    a.empty_cache()
    assert a.stats.reserved == 0


def test_streams_have_their_own_blocks_and_record_stream_delays_reuse():
    a = CachingAllocator()
    b = a.malloc(50 * MiB, stream=1)
    a.free(b)
    a.malloc(50 * MiB, stream=0)  # a block cached on stream 1 is not reused on stream 0
    assert a.stats.reserved == 100 * MiB
    lagged = CachingAllocator(event_lag=2)
    c = lagged.malloc(50 * MiB)
    lagged.record_stream(c, 7)  # e.g. an NCCL side stream still reading it
    lagged.free(c)
    lagged.malloc(50 * MiB)  # its event has not completed: a new segment
    assert lagged.stats.reserved == 100 * MiB
    lagged.empty_cache()  # synchronizes the events and frees what is unsplit and unused
    assert lagged.stats.reserved == 50 * MiB


def test_replay_of_a_trace_stream():
    sizes = [4 * MiB, 4 * MiB, 30 * MiB, 512]
    events = [1, 2, -1, 3, -2, 4, -3, -4]
    r = replay(sizes, events, marks={"forward": -1, "backward": 3})
    assert r.peak_allocated == 34 * MiB  # 4 + 30
    assert r.peak_reserved == 20 * MiB + 30 * MiB + 2 * MiB
    assert r.phase_reserved["forward"] == 50 * MiB and r.phase_reserved["backward"] == 52 * MiB
    assert r.fragmentation == pytest.approx(52 / 34 - 1)
    oom = replay(sizes, events, capacity=40 * MiB)
    assert oom.num_ooms == 1


def test_cublas_workspace_is_an_allocation():
    # test_cublas_workspace_explicit_allocation: the workspace shows in active_bytes (:4096:2:16:8 = 8.125 MiB)
    ws = 4096 * 2 * 1024 + 16 * 8 * 1024
    r = replay([], [], extra=[ws])
    # 8.125 MiB is between 1 and 10 MiB: a 20 MiB segment, whose 11.875 MiB rest stays free for other requests
    assert r.peak_allocated == ws and r.peak_reserved == 20 * MiB and r.inactive_split_bytes == 20 * MiB - ws


def test_replay_from_a_loaded_state_skips_construction_temporaries():
    sizes = [40 * MiB, 100 * MiB, 40 * MiB, 30 * MiB]
    events = [1, 2, -2, 3, 4, -4]  # a 100 MiB construction temporary, then two weights, then a forward transient
    whole = replay(sizes, events)
    loaded = replay(sizes, events, start=3)  # tensors live after event 3: keys 0 and 2
    # the temporary's 100 MiB segment stays reserved and takes the second weight and the transient (split)
    assert whole.peak_reserved == 40 * MiB + 100 * MiB
    assert loaded.peak_reserved == 40 * MiB + 40 * MiB + 30 * MiB


def test_segment_summary_reads_the_snapshot_format():
    # measure records torch.cuda.memory._snapshot()['segments']; the model's snapshot has the same fields
    from vramscope.trace.measure import segment_summary

    a = CachingAllocator()
    keep = a.malloc(4 * MiB)
    a.free(a.malloc(3 * MiB))
    a.malloc(100)
    s = segment_summary(a.snapshot())
    assert s["segments"] == 2 and s["large_segments"] == 1 and s["small_segments"] == 1
    assert s["reserved_bytes"] == a.stats.reserved == 22 * MiB
    assert s["allocated_bytes"] == a.stats.allocated
    large = next(x for x in s["by_segment"] if x["type"] == "large")
    assert large["allocated_size"] == keep.size and large["free_blocks"] == [16 * MiB]


PUBLISHED_INIT = [  # torchtune's "Memory stats after model init": (allocated, reserved), validation/published.jsonl
    ("llama-3.2-3b", dict(lora_rank=64, lora_targets="q_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"),
     6_667_936_727, 6_732_361_236),  # torchtune-e2e-llama3.2-3b-lora-init (6.21 / 6.27 GiB)
    ("llama-2-7b", dict(lora_rank=8, lora_targets="q_proj,v_proj"),
     13_960_000_000, 13_980_000_000),  # torchtune-qlora-tutorial-llama2-7b-lora-init (13.96 / 13.98 GB)
]


@pytest.mark.trace
@pytest.mark.parametrize("name, kw, allocated, reserved", PUBLISHED_INIT, ids=[p[0] for p in PUBLISHED_INIT])
def test_replayed_model_load_matches_published_allocated_and_reserved(name, kw, allocated, reserved):
    """The loaded model's allocations (the trace's live set at 'ready', in the order they were made) through the
    allocator model: the reserved/allocated ratio torch printed, within half a percentage point."""
    pytest.importorskip("torch")
    from vramscope.sources import resolve
    from vramscope.trace.estimator import quiet_libraries, run_trace
    from vramscope.workload import make_workload

    model = resolve(name, hub=False)
    with quiet_libraries():
        log, _, _ = run_trace(model, make_workload(task="finetune", method="lora", seq=8, **kw))
    ready = log.marks["ready"]
    r = replay(log.sizes, log.events[: ready + 1], start=ready)
    assert r.peak_reserved / r.peak_allocated - 1 == pytest.approx(reserved / allocated - 1, abs=0.005)
    assert r.peak_allocated == pytest.approx(allocated, rel=0.1)


def test_replay_keeps_each_stream_in_its_own_pool():
    sizes = [50 * MiB, 50 * MiB]
    events = [1, -1, 2, -2]  # the second tensor could reuse the first's block, on the same stream
    assert replay(sizes, events).peak_reserved == 50 * MiB
    assert replay(sizes, events, streams=[1, 0]).peak_reserved == 100 * MiB  # an all-gather stream's block


@pytest.mark.trace
def test_tracker_records_the_stream_current_at_each_allocation():
    torch = pytest.importorskip("torch")
    from vramscope.trace.tracker import make_tracker

    tracker = make_tracker()
    side = torch.cpu.Stream()
    with tracker:
        a = torch.empty(1000)
        with torch.cpu.stream(side):  # as FSDP2 selects its all-gather stream on a CPU device
            b = torch.empty(2000)
        c = torch.empty(3000)
    assert tracker.log.streams == [0, 1, 0] and a.numel() + b.numel() + c.numel() == 6000


def _random_stream(seed, n=3000, streams=1, lag=0, persistent=0):
    """A reproducible stream of requests (small, mid-size and large, with ties) and frees in random order;
    ``persistent`` first requests never freed (a loaded model); ``streams`` > 1 allocates on side streams too
    and records some blocks on another stream (their frees wait ``lag`` mallocs)."""
    import random

    rnd = random.Random(seed)
    sizes = [1, 511, 4096, 70_000, 1 * MiB, 1 * MiB + 1, 3 * MiB, 8 * MiB + 512, 10 * MiB, 24 * MiB + 7, 130 * MiB]
    ops, live, k = [], [], 0
    for i in range(n):
        if i < persistent:
            ops.append(("new", k, rnd.choice(sizes) + rnd.randrange(0, 3) * 512, 0, None))
            k += 1
        elif live and rnd.random() < 0.48:
            ops.append(("free", live.pop(rnd.randrange(len(live))), 0, 0, None))
        else:
            s = rnd.randrange(streams)
            rec = (s + 1) % streams if streams > 1 and rnd.random() < 0.2 else None
            ops.append(("new", k, rnd.choice(sizes) + rnd.randrange(0, 3) * 512, s, rec))
            live.append(k)
            k += 1
    return ops


def _run(a, ops, live=None):
    live = {} if live is None else live
    trail = []
    for op, key, size, stream, rec in ops:
        if op == "new":
            live[key] = a.malloc(size, stream)
            if rec is not None:
                a.record_stream(live[key], rec)
        else:
            a.free(live.pop(key))
        st = a.stats
        trail.append((st.allocated, st.reserved, st.peak_allocated, st.peak_reserved, st.segments))
    return trail


@pytest.mark.parametrize("conf", ["", "roundup_power2_divisions:4", "max_split_size_mb:64",
                                  "expandable_segments:True", "garbage_collection_threshold:0.6"])
@pytest.mark.parametrize("streams, lag", [(1, 0), (3, 5)])
def test_fast_path_is_the_general_path(conf, streams, lag):
    """``malloc`` / ``free``'s inlined path (a cached block found, every block mapped: ``_fast``) makes the same
    decisions as the general one: the same counters after every event and the same segments at the end, on
    random streams (ties of size, splits, merges, side streams and their delayed frees)."""
    ops = _random_stream(streams * 7 + lag, streams=streams, lag=lag)
    cfg = parse_alloc_conf(conf)
    frac = {"per_process_memory_fraction": 0.9} if "garbage" in conf else {}
    runs = []
    for fast in (True, False):
        a = CachingAllocator(config=cfg, event_lag=lag, total_memory=64 * 2**30 if frac else None)
        if frac:
            a.set_fraction, a.allowed = True, int(0.9 * 64 * 2**30)
            a._fast = a._fast and not a.config.garbage_collection_threshold
        a._fast = a._fast and fast
        runs.append((_run(a, ops), a.snapshot()))
    assert runs[0] == runs[1]
    assert CachingAllocator(config=cfg)._fast == (not conf or conf.startswith("garbage"))


@pytest.mark.parametrize("seed", range(4))
def test_frozen_state_answers_as_the_allocator(seed):
    """:meth:`CachingAllocator.freeze` after a loaded model (blocks never freed) and :meth:`thaw`: the thawed
    allocator answers a random stream of later requests and frees with the same counters as the original after
    every event, and keeps the same free blocks (segments with nothing free are left out of it)."""
    ops = _random_stream(100 + seed, n=2500, persistent=300)
    load, rest = ops[:300], ops[300:]
    a = CachingAllocator()
    _run(a, load)
    frozen = a.freeze()
    assert frozen is not None and len(frozen.segments) < a.stats.segments
    b = CachingAllocator.thaw(frozen)
    assert _run(b, rest) == _run(a, rest)

    def free_blocks(x):
        return sorted((s["segment_type"], blk["size"]) for s in x.snapshot() for blk in s["blocks"]
                      if blk["state"] == "inactive")

    assert free_blocks(a) == free_blocks(b)
    assert CachingAllocator(config=parse_alloc_conf("expandable_segments:True")).freeze() is None
    assert CachingAllocator(capacity=2**30).freeze() is None
