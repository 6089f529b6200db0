"""SGLang: a static share of the GPU for the weights and the token pool, the rest for activations and CUDA graphs.

Read in sgl-project/sglang (``python/sglang/srt/model_executor/model_runner.py`` ``profile_max_num_token`` /
``init_memory_pool``, and ``python/sglang/srt/server_args.py`` ``ServerArgs._handle_gpu_memory_settings``, the
v0.5 series):

* SGLang measures the free memory once its distributed environment is up (``total_gpu_memory``: the GPU less the
  CUDA context, ~0.5 GiB nominal, as in ``memory/overhead.py``), loads the weights, measures again
  (``available_gpu_memory``) and gives the token pool
  ``rest = available − total × (1 − mem_fraction_static)``, i.e. ``mem_fraction_static × total − weights``;
  ``max_total_num_tokens = rest // cell_size``, ``cell_size = kv_heads_per_rank × head_dim × layers × 2 × bytes``
  (MLA: ``(kv_lora_rank + qk_rope_head_dim) × layers × bytes``); ``--max-total-tokens`` caps it. The radix cache
  lives inside that pool (cached prefixes are tokens of it), so it takes no memory of its own.
* ``mem_fraction_static`` when not given: ``reserved`` MB = 512 + 1.5 × max(``chunked_prefill_size``, 2048)
  + 2 × ``cuda_graph_max_bs`` + 1024 × tp × pp / 8 (at least 10 GiB on GPUs over 60 GiB), and
  ``mem_fraction_static = round((gpu_mem − reserved) / gpu_mem, 3)`` with ``gpu_mem`` the GPU's memory in MB.
* ``chunked_prefill_size`` and ``cuda_graph_max_bs`` by GPU memory: < 20 GiB 2048 / 8; < 35 GiB 2048 / 24 (80 from
  tp 4); < 60 GiB 4096 / 32 (160); < 90 GiB 8192 / 256 (512); < 160 GiB 8192 / 256 (512); else 16384 / 512.
* ``max_running_requests`` when not given: ``min(max(max_total_num_tokens / context_len × 512, 2048), 4096)``
  (``init_memory_pool``'s ``max_num_reqs``).
* ``--dp`` runs independent replicas: each GPU of a replica holds the same as with ``--dp 1``.

Recurrent / linear-attention hybrids and pure SSMs (read at SGLang 0.5.23, its wheel: ``configs/hybrid_arch.py``
``mambaish_config``, ``configs/mamba_utils.py``, ``mem_cache/kv_cache_configurator.py``, ``mem_cache/memory_pool.py``
``MambaPool``; checked against that code run on CPU, ``bench/sglang_state_reference.py``):

* the architectures with a mamba pool (:data:`STATE_TYPES`) keep one ``MambaPool`` slot per cached request state:
  per mamba layer a conv state ``(conv_dim / attn_tp, kernel − 1)`` in bfloat16 (``SGLANG_MAMBA_CONV_DTYPE``) and
  the SSM state ``(heads / attn_tp, head_dim, state)`` in float32 unless the config's ``mamba_ssm_dtype`` or
  ``--mamba-ssm-dtype`` says otherwise (``mamba2_state_dtype``); groups tensor parallelism does not divide are
  replicated (``extra_groups_for_head_shards``); the model's own dtype plays no part;
* ``_handle_max_mamba_cache`` takes the pool out of the token pool's budget first: ``max_mamba_cache_size`` =
  ``(rest × r / (1 + r) − per_req) // per_req`` with ``r = --mamba-full-memory-ratio`` (0.9), or
  ``--max-mamba-cache-size``, or (without the radix cache) ``--max-running-requests``; the pool holds one padding
  slot more; the KV pool of the attention layers (only they have a cell size) gets the rest; a model without
  attention layers gets ``--max-total-tokens`` or the context length;
* ``resolve_max_num_reqs`` caps the running requests at ``max_mamba_cache_size // ratio`` (3 state slots per request
  with the radix cache, 5 with its ping-pong extra buffer, which the architectures of :data:`EXTRA_BUFFER_TYPES`
  take by default, 1 with ``--disable-radix-cache``) and at half the token pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ..gpus import Gpu
from ..memory import kv_cache
from ..memory.kv_cache import KV_DTYPE_BYTES
from ..memory.overhead import CONTEXT_NOMINAL
from ..errors import Opt
from ..options import Option
from ..result import Assumption, Estimate, GpuVerdict
from ..sources.base import ResolvedModel
from .base import Engine, EngineReport, Phases, Record, rank_spec, rank_weights, record_serving

if TYPE_CHECKING:
    from ..workload import Workload

MB = 2**20
GiB = 2**30


def gpu_defaults(gpu_mem_mb: float, tp: int) -> tuple[int, int]:
    """``_handle_gpu_memory_settings``: (chunked_prefill_size, cuda_graph_max_bs) for a GPU of ``gpu_mem_mb``."""
    if gpu_mem_mb < 20 * 1024:
        return 2048, 8
    if gpu_mem_mb < 35 * 1024:
        return 2048, 24 if tp < 4 else 80
    if gpu_mem_mb < 60 * 1024:
        return 4096, 32 if tp < 4 else 160
    if gpu_mem_mb < 160 * 1024:
        return 8192, 256 if tp < 4 else 512
    return 16384, 512


def default_mem_fraction(gpu_mem_mb: float, chunked_prefill_size: int, cuda_graph_max_bs: int, tp: int,
                         pp: int = 1) -> float:
    """``mem_fraction_static`` as SGLang sets it when not given."""
    reserved = 512.0
    reserved += max(chunked_prefill_size, 2048) * 1.5
    reserved += cuda_graph_max_bs * 2
    reserved += tp * pp / 8 * 1024
    if gpu_mem_mb > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mem_mb - reserved) / gpu_mem_mb, 3)


def token_pool(total_free: int, weights: int, mem_fraction_static: float, cell_size: int,
               max_total_tokens: Optional[int] = None) -> tuple[int, int]:
    """(pool bytes, max_total_num_tokens): ``rest = (total − weights) − total × (1 − mfs)``, in cells."""
    available = total_free - weights
    rest = available - total_free * (1 - mem_fraction_static)
    tokens = int(rest // cell_size) if cell_size and rest > 0 else 0
    if max_total_tokens is not None:
        tokens = min(tokens, max_total_tokens)
    return max(0, tokens * cell_size), max(0, tokens)


#: model types SGLang 0.5.23 gives a mamba pool (``hybrid_arch.py``: ``mamba2_config`` — Falcon-H1, Nemotron-H, LFM2,
#: Mamba2, Mamba, Falcon-Mamba, GraniteMoeHybrid with mamba layers —, ``hybrid_gdn_config`` — Qwen3-Next, Qwen3.5 —
#: and ``kimi_linear_config``); Jamba, Bamba, Zamba and the rest have no SGLang model of their own
STATE_TYPES = ("falcon_h1", "nemotron_h", "lfm2", "lfm2_moe", "mamba2", "mamba", "falcon_mamba", "granitemoehybrid",
               "qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text", "kimi_linear")
#: their radix cache keeps the extra state buffer by default (``overrides.py`` ``_MAMBA_EXTRA_BUFFER_ARCHS`` with the
#: overlap scheduler and the triton linear-attention backend, both defaults): 2 more slots per request
EXTRA_BUFFER_TYPES = ("falcon_h1", "nemotron_h", "granitemoehybrid", "qwen3_next", "qwen3_5", "qwen3_5_text",
                      "qwen3_5_moe", "qwen3_5_moe_text", "kimi_linear")
#: (group count, state size) config keys of the Mamba2-style mixers whose conv state carries ``2 × groups × state``
#: channels (``Mamba2StateShape.create``'s callers in ``configs/<family>.py``)
GROUP_KEYS = {"falcon_h1": ("mamba_n_groups", "mamba_d_state"), "granitemoehybrid": ("mamba_n_groups", "mamba_d_state"),
              "nemotron_h": ("n_groups", "ssm_state_size"), "mamba2": ("n_groups", "state_size"),
              "qwen3_next": ("linear_num_key_heads", "linear_key_head_dim")}
SSM_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
MAMBA_SLOTS_PER_REQUEST = 3  # MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO
EXTRA_BUFFER_SLOTS = 2  # get_mamba_tracking_slots(extra_buffer=True, overlap=True)


def has_mamba_pool(model: ResolvedModel) -> bool:
    st = model.spec.state
    return (st is not None and model.spec.model_type in STATE_TYPES
            and any(k in ("state", "hybrid", "hybrid_sliding") for k in st.kinds))


def _config_value(model: ResolvedModel, key: str) -> Any:
    cfg = model.hf_config or {}
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    return text.get(key, cfg.get(key))


def ssm_dtype(model: ResolvedModel, w: Workload) -> str:
    """``mamba2_state_dtype``: ``--mamba-ssm-dtype``, else the config's ``mamba_ssm_dtype``, else float32."""
    given = getattr(w, "mamba_ssm_dtype", None)
    own = _config_value(model, "mamba_ssm_dtype")
    return given or (own if own in SSM_DTYPE_BYTES else "float32")


def mamba_cache_per_req(model: ResolvedModel, w: Workload, tp: int) -> int:
    """``BaseLinearStateParams.mamba_cache_per_req``: one request's conv (bfloat16) and SSM states over every
    mamba layer on one attention-TP rank, groups that ``tp`` does not divide replicated."""
    st = model.spec.state
    assert st is not None
    ssm_b = SSM_DTYPE_BYTES[ssm_dtype(model, w)]
    extra = 0
    keys = GROUP_KEYS.get(model.spec.model_type)
    if keys and tp > 1:
        groups, state = (_config_value(model, k) for k in keys)
        if isinstance(groups, int) and isinstance(state, int) and groups % tp:
            extra = 2 * (tp - groups) * state  # extra_groups_for_head_shards
    total = 0
    for i, k in enumerate(st.kinds):
        if k not in ("state", "hybrid", "hybrid_sliding"):
            continue
        kernel = st.conv_kernels[i] if i < len(st.conv_kernels) else 0
        conv = st.engine_conv_values(i) + extra * max(kernel - 1, 0)
        total += conv // tp * 2 + st.recurrent_values[i] // tp * ssm_b
    return total


def mamba_ratio(model: ResolvedModel, w: Workload) -> int:
    """``_calculate_mamba_ratio``: the state slots one running request may hold."""
    if getattr(w, "disable_radix_cache", False):
        return 1
    extra = EXTRA_BUFFER_SLOTS if model.spec.model_type in EXTRA_BUFFER_TYPES else 0
    return MAMBA_SLOTS_PER_REQUEST + extra


def mamba_split(rest_bytes: float, per_req: int, ratio_r: float, max_mamba_cache_size: Optional[int] = None,
                max_running: Optional[int] = None, disable_radix_cache: bool = False) -> tuple[int, float]:
    """``_handle_max_mamba_cache`` (no speculative decoding): (max_mamba_cache_size, what is left for the KV pool),
    in SGLang's own units (GB floats of 2**30 bytes) so that the rounding is its own."""
    rest = rest_bytes / GiB
    if max_mamba_cache_size is not None:
        size = max_mamba_cache_size
    elif disable_radix_cache and max_running is not None:
        size = max(1, max_running)
    else:
        budget = rest * ratio_r / (1 + ratio_r) * (1 << 30)
        size = int((budget - per_req) // per_req)
    return size, rest - (size + 1) * per_req / (1 << 30)


def max_running_requests(max_total_tokens: int, context_len: int) -> int:
    return min(max(int(max_total_tokens / context_len * 512), 2048), 4096) if context_len else 2048


@dataclass(frozen=True)
class StatePool:
    """One GPU's SGLang pools for a model with a mamba pool (:func:`state_pools`)."""

    per_req: int
    max_mamba_cache_size: int
    pool_bytes: int  # (max_mamba_cache_size + 1) × per_req
    kv_budget_bytes: int
    tokens: int
    max_running_requests: int
    ratio: int


def state_pools(model: ResolvedModel, w: Workload, total_free: int, weights: int, mfs: float, cell: int,
                tp: int, ctx: int, o: dict[str, Any]) -> StatePool:
    """SGLang 0.5.23's sizing of a hybrid / SSM model's pools on one GPU: ``_profile_available_bytes`` (with
    ``_handle_max_mamba_cache``), ``DefaultPoolConfigurator.calculate_pool_sizes`` (page size 1) and
    ``resolve_max_num_reqs``, in its own order and units."""
    per_req = mamba_cache_per_req(model, w, tp)
    available = (total_free - weights) / GiB
    rest_gb = available - total_free / GiB * (1 - mfs)
    ratio_r = getattr(w, "mamba_full_memory_ratio", None) or 0.9
    no_radix = bool(getattr(w, "disable_radix_cache", False))
    size, rest_gb = mamba_split(rest_gb * GiB, per_req, ratio_r, getattr(w, "max_mamba_cache_size", None),
                                o["max_running_requests"], no_radix)
    budget = int(rest_gb * (1 << 30)) if size > 0 and rest_gb > 0 else 0
    if cell:
        tokens = budget // cell
    else:  # no attention layer: the token pool is only the request bookkeeping
        tokens = o["max_total_tokens"] or ctx
    if o["max_total_tokens"] is not None:
        tokens = min(tokens, o["max_total_tokens"])
    ratio = mamba_ratio(model, w)
    estimated = max(min(int(tokens / ctx * 512), 4096), 2048) if ctx else 2048
    reqs = min(o["max_running_requests"] or estimated, tokens // 2)
    reqs = max(0, min(reqs, size // ratio)) if budget else 0
    return StatePool(per_req=per_req, max_mamba_cache_size=max(0, size), pool_bytes=max(0, size + 1) * per_req
                     if budget else 0, kv_budget_bytes=budget, tokens=max(0, tokens) if budget else 0,
                     max_running_requests=reqs, ratio=ratio)


@dataclass(frozen=True, kw_only=True)
class SglangGpu(Record):
    gpu: str
    mem_fraction_static: float
    chunked_prefill_size: int
    cuda_graph_max_bs: int
    total_free_bytes: int
    kv_pool_bytes: int
    max_total_num_tokens: int
    max_running_requests: int
    max_concurrency: float
    reserved_bytes: int  # (1 − mem_fraction_static) × total: activations, CUDA graphs
    #: hybrid / SSM models (:func:`state_pools`): the mamba pool's request slots and bytes (0 for the others)
    max_mamba_cache_size: int = 0
    mamba_pool_bytes: int = 0


@dataclass(frozen=True, kw_only=True)
class SglangReport(EngineReport):
    name: str = "sglang"
    tp_size: int
    dp_size: int
    context_length: int
    cell_size: int  # KV bytes per token on one GPU (the attention layers only, for a model with a mamba pool)
    mamba_cache_per_req: int  # one request's conv + SSM states on one GPU (0: no mamba pool)
    mamba_ssm_dtype: str
    weights_bytes: int
    min_bytes: int
    per_gpu: list[SglangGpu]


def sglang_options(w: Workload) -> dict[str, Any]:
    return {"mem_fraction_static": getattr(w, "mem_fraction_static", None),
            "max_total_tokens": getattr(w, "max_total_tokens", None),
            "chunked_prefill_size": getattr(w, "chunked_prefill_size", None),
            "cuda_graph_max_bs": getattr(w, "cuda_graph_max_bs", None),
            "max_running_requests": getattr(w, "max_running_requests", None),
            "max_mamba_cache_size": getattr(w, "max_mamba_cache_size", None),
            "dp": getattr(w, "dp_size", None) or 1}


def sglang_inference(model: ResolvedModel, w: Workload, weights: int, a: float, gpus: tuple[Gpu, ...],
                     notes: list[Assumption]) -> tuple[Phases, SglangReport]:
    o = sglang_options(w)
    tp = w.num_gpus if w.parallelism == "tp" else 1
    spec = rank_spec(model, w)
    b = KV_DTYPE_BYTES[w.kv_dtype] if w.kv_dtype else a
    state = has_mamba_pool(model)
    st = model.spec.state
    attn = sum(st.has_kv(i) for i in range(len(st.kinds))) if state and st is not None else None
    cell = kv_cache.kv_bytes_per_token(spec, b, attn, latent_mla=True)
    ctx = getattr(w, "context_length", None) or model.spec.max_position_embeddings or w.seq
    per_req = mamba_cache_per_req(model, w, tp) if state else 0
    per_gpu = []
    for g in gpus:
        mem_mb = g.memory_bytes / MB
        cps, cgbs = gpu_defaults(mem_mb, tp)
        cps = o["chunked_prefill_size"] or cps
        cgbs = o["cuda_graph_max_bs"] or cgbs
        mfs = o["mem_fraction_static"] or default_mem_fraction(mem_mb, cps, cgbs, tp, w.pp)
        total = max(0, g.usable_bytes - CONTEXT_NOMINAL)
        size = mamba = 0
        if state:
            sp = state_pools(model, w, total, weights, mfs, cell, tp, ctx, o)
            tokens, mrr, size, mamba = sp.tokens, sp.max_running_requests, sp.max_mamba_cache_size, sp.pool_bytes
            pool = tokens * cell
        else:
            pool, tokens = token_pool(total, weights, mfs, cell, o["max_total_tokens"])
            mrr = o["max_running_requests"] or max_running_requests(tokens, ctx)
        per_gpu.append(SglangGpu(gpu=g.name, mem_fraction_static=mfs, chunked_prefill_size=cps,
                                 cuda_graph_max_bs=cgbs, total_free_bytes=total, kv_pool_bytes=pool,
                                 max_total_num_tokens=tokens, max_running_requests=mrr,
                                 max_concurrency=round(tokens / ctx, 2) if ctx else 0.0,
                                 reserved_bytes=int(total * (1 - mfs)), max_mamba_cache_size=size,
                                 mamba_pool_bytes=mamba))
    first = per_gpu[0] if per_gpu else None
    if first is not None:
        kv, reserved, states = first.kv_pool_bytes, first.reserved_bytes, first.mamba_pool_bytes
    else:  # no GPU: one context of tokens, one request's states and the reserve of an 80 GB GPU
        cps, cgbs = gpu_defaults(80 * 1024, tp)
        kv, states = cell * ctx, per_req * mamba_ratio(model, w) if state else 0
        reserved = int((1 - default_mem_fraction(80 * 1024, cps, cgbs, tp)) * 80 * 1024 * MB)
    serving = {"weights": weights, "kv_cache": kv + states, "engine_overhead": reserved}
    phases = {"load": {"weights": weights}, "serving": serving}
    for g in per_gpu:
        notes.append(Assumption("a_sglang", {"gpu": g.gpu, "mfs": g.mem_fraction_static,
                                             "tokens": f"{g.max_total_num_tokens:,}", "c": g.max_concurrency,
                                             "ctx": ctx, "cps": g.chunked_prefill_size, "bs": g.cuda_graph_max_bs,
                                             "reqs": g.max_running_requests}))
    if state:
        for g in per_gpu:
            notes.append(Assumption("a_sglang_mamba", {
                "gpu": g.gpu, "per_req": f"{per_req / MB:,.2f}", "ssm": ssm_dtype(model, w),
                "slots": f"{g.max_mamba_cache_size:,}", "pool": f"{g.mamba_pool_bytes / GiB:,.2f}",
                "ratio": Opt("mamba_full_memory_ratio", getattr(w, "mamba_full_memory_ratio", None) or 0.9),
                "per": mamba_ratio(model, w), "reqs": g.max_running_requests}))
    elif model.spec.state is not None:
        notes.append(Assumption("a_sglang_no_mamba", {"type": model.spec.model_type}))
    if o["dp"] > 1:
        notes.append(Assumption("a_sglang_dp", {"dp": Opt("dp_size", o["dp"], flag="--dp")}))
    need_states = per_req * (mamba_ratio(model, w) + 1) if state else 0
    report = SglangReport(tp_size=tp, dp_size=o["dp"], context_length=ctx, cell_size=cell, weights_bytes=weights,
                          min_bytes=weights + cell * ctx + need_states + reserved, per_gpu=per_gpu,
                          mamba_cache_per_req=per_req, mamba_ssm_dtype=ssm_dtype(model, w) if state else "")
    return phases, report


class Sglang(Engine):
    name = "sglang"
    sizes_by_gpu = True
    aliases = ("sgl",)
    overhead_note = "a_overhead_sglang"
    options = (
        Option("mem_fraction_static", ("--mem-fraction-static",), "float", None, group="sglang", owner="sglang",
               lo=0.05, hi=1.0, expected="a fraction from 0.05 to 1.0",
               help_en="share of the free memory for weights and the token pool (default: SGLang's, by GPU memory)",
               help_zh="空闲显存中给权重和 token 池的比例（默认：SGLang 按显存给出的值）"),
        Option("context_length", ("--context-length",), "int", None, group="sglang", owner="sglang", lo=1,
               hi=100_000_000, help_en="SGLang's context length (default: the model's)",
               help_zh="SGLang 的上下文长度（默认取模型的）"),
        Option("max_total_tokens", ("--max-total-tokens",), "int", None, group="sglang", owner="sglang", lo=1,
               hi=10**10, help_en="cap on the token pool", help_zh="token 池的上限"),
        Option("chunked_prefill_size", ("--chunked-prefill-size",), "int", None, group="sglang", owner="sglang",
               lo=-1, hi=10**7, help_en="prefill chunk in tokens (default by GPU memory; -1 off)",
               help_zh="预填充分块的 token 数（默认按显存；-1 关闭）"),
        Option("cuda_graph_max_bs", ("--cuda-graph-max-bs",), "int", None, group="sglang", owner="sglang", lo=1,
               hi=100_000, help_en="largest CUDA-graph batch (default by GPU memory)",
               help_zh="最大的 CUDA Graph 批大小（默认按显存）"),
        Option("max_running_requests", ("--max-running-requests",), "int", None, group="sglang", owner="sglang",
               lo=1, hi=10**7, help_en="requests running at once (default from the pool)",
               help_zh="同时运行的请求数（默认由 token 池得出）"),
        Option("dp_size", ("--dp-size", "--dp"), "int", None, group="sglang", owner="sglang", lo=1, hi=1024,
               help_en="data-parallel replicas (each GPU holds one replica's share)",
               help_zh="数据并行副本数（每张 GPU 的占用与单个副本相同）"),
        Option("mamba_full_memory_ratio", ("--mamba-full-memory-ratio",), "float", None, group="sglang",
               owner="sglang", lo=0.01, hi=100.0, expected="a ratio from 0.01 to 100",
               help_en="hybrid / SSM models: mamba state pool to KV pool memory ratio (default 0.9)",
               help_zh="混合/SSM 模型：mamba 状态池与 KV 池的显存比（默认 0.9）"),
        Option("max_mamba_cache_size", ("--max-mamba-cache-size",), "int", None, group="sglang", owner="sglang",
               lo=1, hi=10**7, help_en="hybrid / SSM models: request states in the mamba pool (default from the ratio)",
               help_zh="混合/SSM 模型：mamba 池中的请求状态数（默认由比例得出）"),
        Option("mamba_ssm_dtype", ("--mamba-ssm-dtype",), "choice", None, group="sglang", owner="sglang",
               choices=("float32", "bfloat16", "float16"),
               help_en="hybrid / SSM models: dtype of SGLang's SSM states (default: the config's, else float32)",
               help_zh="混合/SSM 模型：SGLang SSM 状态的数据类型（默认取配置的，否则 float32）"),
        Option("disable_radix_cache", ("--disable-radix-cache",), "flag", False, group="sglang", owner="sglang",
               help_en="no prefix cache: a hybrid model's request holds one mamba state instead of 3 (or 5)",
               help_zh="关闭前缀缓存：混合模型每个请求只占一个 mamba 状态，而不是 3（或 5）个"),
    )

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        a, _, held = rank_weights(model, w, dtype, notes)
        return sglang_inference(model, w, held, a, gpus, notes)

    def runtime_overhead(self, transient: int, gpu: Optional[Gpu]) -> Any:
        """The CUDA context: measured before SGLang's first free-memory reading, so outside its fractions."""
        from ..memory.overhead import CONTEXT_HIGH, CONTEXT_LOW, Overhead

        return Overhead(CONTEXT_NOMINAL, CONTEXT_LOW, CONTEXT_HIGH)

    def verdicts(self, gpus: tuple[Gpu, ...], total: int, high: int,
                 report: dict[str, Any]) -> tuple[GpuVerdict, ...]:
        out = []
        ctx = report["context_length"]
        for g, r in zip(gpus, report["per_gpu"]):
            tokens = r["max_total_num_tokens"]
            no_state = report.get("mamba_cache_per_req") and r["max_running_requests"] <= 0
            v = "no" if tokens <= 0 or no_state else ("tight" if tokens < ctx else "fits")
            out.append(GpuVerdict(name=g.name, memory_bytes=g.memory_bytes, usable_bytes=g.usable_bytes, verdict=v,
                                  headroom_bytes=r["kv_pool_bytes"] - report["cell_size"] * ctx))
        return tuple(out)

    def needed_bytes(self, e: Estimate) -> int:
        return e.engine["min_bytes"]

    def record_options(self, src: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """SGLang's server arguments; the rest of the record (dtype, ...) is translated as for transformers."""
        out: dict[str, Any] = {"engine": self.name}
        for key in ("mem_fraction_static", "max_total_tokens", "chunked_prefill_size", "max_running_requests",
                    "mamba_full_memory_ratio", "max_mamba_cache_size", "mamba_ssm_dtype"):
            if src.get(key) is not None:
                out[key] = src[key]
        if src.get("context_length") is not None:
            out["context_length"] = src["context_length"]
        record_serving(src, out, "SGLang", ("tensor_parallel_size", "tp_size"))
        return out, False

    def printed_components(self, e: Estimate) -> dict[str, int]:
        """``KV Cache is allocated. #tokens: N, K size: .. GB, V size: .. GB`` (MLA: one latent cache)."""
        per = e.engine["per_gpu"][0] if e.engine["per_gpu"] else {"kv_pool_bytes": 0}
        pool = per["kv_pool_bytes"]  # the KV pool alone (a hybrid model's mamba pool is logged apart)
        return {"weights": e.engine["weights_bytes"], "kv_cache": pool, "k_cache": pool // 2, "v_cache": pool // 2}

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        return [t("sglang_gpu_line", lang, gpu=g["gpu"], kv=format_bytes(g["kv_pool_bytes"], units),
                  tokens=f"{g['max_total_num_tokens']:,}", c=g["max_concurrency"], n=e.engine["context_length"],
                  mfs=g["mem_fraction_static"]) for g in e.engine["per_gpu"]]


ENGINE = Sglang()
