"""vLLM 0.33.0's KV cache for DeepSeek-V4 (Flash / Pro): its cache layers, their pages and how its planner groups
and sizes them (read in the v0.33.0 wheel; checked against that code run on CPU, ``bench/vllm_dsv4_reference.py``,
``tests/test_vllm_dsv4.py``).

Cache layers (``vllm/models/deepseek_v4/attention.py: DeepseekV4Attention.__init__``, with the attention class
``nvidia/model.py: _select_dsv4_attn_cls`` picks on GPUs of compute capability 9 and 10,
``DeepseekV4FlashMLAAttention``: the ``fp8_ds_mla`` layout, which ``_resolve_dsv4_kv_cache_dtype`` forces, 584
bytes per stored token: 448 fp8 NoPE + 128 RoPE + 8 scale bytes). Per decoder layer of compress rate ``r``
(``compress_rates[layer_types[i]]``; 0 is a sliding-window-only layer):

* ``DeepseekV4SWACache`` (``v1/attention/backends/mla/sparse_swa.py``): a ``SlidingWindowMLASpec`` of block 64,
  window ``sliding_window``, page ``64 × 584`` (every layer);
* ``r > 1``: the attention's compressed latent, an ``MLAAttentionSpec`` of block ``block_size`` (256) and
  ``tokens_per_state`` ``r``: page ``256 / r × 584``; and its compressor's state (``compressor.py:
  CompressorStateCache``), a float32 ``SlidingWindowMLASpec`` of ``2 × coff × head_dim`` values per token
  (``coff`` 2 for ``r`` 4, else 1), block 4 (``r`` 4) or 8 (``r`` 128), window ``coff × r``;
* ``r == 4`` (CSA): the lightning indexer's keys (``DeepseekV4IndexerCache``: FP8, ``index_head_dim +
  index_head_dim / 128 × 4`` bytes per state, block 256, ``tokens_per_state`` 4) and its compressor's state
  (``2 × 2 × index_head_dim`` float32 values, block 4, window 8).

Every page is rounded up to 576 bytes (``_apply_alignment_padding``). The block size is 256: the smallest every
backend of those layers takes (``Platform._preferred_block_size_for_backends``: FlashMLA's and the indexer's 256).
The backends' layouts resolve to a block-outermost one (``BLHNC``), so the planner packs the layers
(``kv_cache_planning.py: _get_packed_kv_cache_groups``, ported in :func:`packed_groups`): layers bucketed by
type (same block size, same window), a bucket of equal layer counts per page size is "balanced", the balanced
buckets split into ``cdiv(layers per page size, repeats)`` strided groups, ``repeats`` being ``_approximate_gcd``
of their counts (the least padding, at least the largest mixed-page bucket's count); a pool block is the widest
group's pages (``_get_kv_cache_bytes_per_block``), a request takes in each group ``cdiv(max_model_len, block)``
blocks (full) or ``cdiv(min(window − 1 + max_in_flight_tokens, max_model_len), block) + 1`` (sliding,
``max_in_flight_tokens`` = 2 × ``max_num_batched_tokens`` with asynchronous scheduling). Every spec has
``max_tp_shards`` 1 (one latent head): tensor parallelism does not split this cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model.spec import ModelSpec

#: fp8_ds_mla: bytes per stored token (448 NoPE + 128 RoPE + 8 scale) and the page alignment (attention.py,
#: sparse_swa.py, compressor.py at v0.33.0)
DS_MLA_TOKEN = 584
ALIGN = 576
#: FlashMLA's and the indexer backend's only kernel block size, which the platform takes as the block size
BLOCK = 256
SWA_BLOCK = 64  # DeepseekV4SWACache's default block_size
FP32 = 4
#: first release read; earlier ones keep the standard layout (not read)
DSV4_SINCE = (0, 33, 0)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(x: int, a: int) -> int:
    return _cdiv(x, a) * a


@dataclass(frozen=True)
class Bucket:
    """Layers of one type (``UniformTypeKVCacheSpecs.is_uniform_type``: one block size, one window)."""

    kind: str  # full | sliding
    block: int
    window: int
    pages: tuple[tuple[int, int], ...]  # (layer, page bytes) in the order vLLM registers them


def layer_rate(spec: ModelSpec, i: int) -> int:
    comp = spec.compressed.compressors[i] if spec.compressed and i < len(spec.compressed.compressors) else ()
    return comp[0][0] if comp else 1


def buckets(spec: ModelSpec, layers: range) -> list[Bucket]:
    """The layers' specs, bucketed as ``_get_packed_kv_cache_groups`` buckets them (first appearance)."""
    head = spec.head_dim
    out: dict[tuple[str, int, int], list[tuple[int, int]]] = {}

    def add(kind: str, block: int, window: int, layer: int, page: int) -> None:
        out.setdefault((kind, block, window), []).append((layer, _round_up(page, ALIGN)))

    for i in layers:
        comp = spec.compressed.compressors[i] if spec.compressed and i < len(spec.compressed.compressors) else ()
        r = layer_rate(spec, i)
        if r == 4 and len(comp) > 1:  # the indexer, registered first
            ihd = comp[1][1]
            add("full", BLOCK, 0, i, BLOCK // r * (ihd + ihd // 128 * 4))
            add("sliding", 4, 8, i, 4 * 2 * 2 * ihd * FP32)
        add("sliding", SWA_BLOCK, spec.sliding_window or 0, i, SWA_BLOCK * DS_MLA_TOKEN)
        if r > 1:
            coff = 2 if r == 4 else 1
            add("full", BLOCK, 0, i, BLOCK // r * DS_MLA_TOKEN)
            state_block = 4 if r == 4 else 8
            add("sliding", state_block, coff * r, i, state_block * 2 * coff * head * FP32)
    return [Bucket(k, b, win, tuple(p)) for (k, b, win), p in out.items()]


def approximate_gcd(values: list[int], lower_bound: int) -> int:
    """``kv_cache_planning._approximate_gcd``: the chunk in ``[lower_bound, max]`` of least total upward padding,
    ties to the larger."""
    lo, hi = max(1, lower_bound), max(values)
    if lo > hi:
        return lo
    best, best_pad = lo, None
    for d in range(lo, hi + 1):
        pad = sum((d - x % d) % d for x in values)
        if best_pad is None or pad <= best_pad:
            best, best_pad = d, pad
    return best


def packed_groups(bs: list[Bucket]) -> list[tuple[Bucket, list[tuple[int, int]]]]:
    """``_get_packed_kv_cache_groups`` (v0.33.0) over buckets: (bucket, its (layer, page) members) per group."""
    info = []
    for b in bs:
        by_page: dict[int, list[int]] = {}
        for layer, page in b.pages:
            by_page.setdefault(page, []).append(layer)
        counts = [len(v) for v in by_page.values()]
        info.append((b, by_page, len(set(counts)) == 1, max(counts)))
    floor = max((m for _, by_page, bal, m in info if bal and len(by_page) > 1), default=0)
    repeats = approximate_gcd([m for *_, bal, m in info if bal], floor) if floor else None

    def n_groups(bal: bool, m: int) -> int:
        return _cdiv(m, repeats) if bal and repeats is not None else 1

    def widest(by_page: dict[int, list[int]], n: int) -> int:
        return sum(_cdiv(len(v), n) * p for p, v in by_page.items())

    def state(b: Bucket) -> bool:
        return repeats is None and b.kind == "sliding"

    anchor = max((widest(by_page, len(b.pages) if state(b) else n_groups(bal, m))
                  for b, by_page, bal, m in info), default=0)
    out = []
    for b, by_page, bal, m in info:
        n = n_groups(bal, m)
        if anchor and state(b):
            n = max(n, _cdiv(len(b.pages), max(anchor // b.pages[0][1], 1)))
        if n == 1:
            out.append((b, list(b.pages)))
            continue
        pattern = list(zip(*[[(layer, p) for layer in v] for p, v in by_page.items()]))
        for i in range(n):
            members = [x for rep in pattern[i::n] for x in rep]
            out.append((b, members))
    return out


def request_blocks(b: Bucket, max_len: int, in_flight: int) -> int:
    """Blocks one ``max_model_len`` request takes in a group of the bucket (``FullAttentionSpec`` /
    ``SlidingWindowSpec.max_admission_blocks_per_request``)."""
    if b.kind == "full":
        return _cdiv(max_len, b.block)
    return _cdiv(min(b.window - 1 + in_flight, max_len), b.block) + 1


@dataclass(frozen=True)
class Dsv4Plan:
    pool_block: int  # bytes of one block over the pool (the widest group)
    groups: tuple[tuple[str, int], ...]  # (kind, blocks per request) per group
    group_bytes: tuple[int, ...]
    group_layers: tuple[int, ...]
    specs: int  # cache layers with a spec


def plan(spec: ModelSpec, max_len: int, max_num_batched_tokens: int,
         stage: Optional[tuple[int, int]] = None) -> Dsv4Plan:
    """The groups of the whole model (``stage``: a pipeline stage's layers ``[lo, hi)``, the pool block being the
    widest group's pages over the stage's layers, as ``_project_kv_cache_groups_to_worker`` projects them; not
    checked against vLLM)."""
    bs = buckets(spec, range(spec.num_layers))
    groups = packed_groups(bs)
    lo, hi = stage if stage is not None else (0, spec.num_layers)
    in_flight = 2 * max_num_batched_tokens
    here = [sum(p for layer, p in m if lo <= layer < hi) for _, m in groups]
    return Dsv4Plan(pool_block=max(here), groups=tuple((b.kind, request_blocks(b, max_len, in_flight))
                                                       for b, _ in groups),
                    group_bytes=tuple(sum(p for _, p in m) for _, m in groups),
                    group_layers=tuple(len(m) for _, m in groups), specs=sum(len(b.pages) for b in bs))
