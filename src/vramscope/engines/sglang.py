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


def max_running_requests(max_total_tokens: int, context_len: int) -> int:
    return min(max(int(max_total_tokens / context_len * 512), 2048), 4096) if context_len else 2048


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


@dataclass(frozen=True, kw_only=True)
class SglangReport(EngineReport):
    name: str = "sglang"
    tp_size: int
    dp_size: int
    context_length: int
    cell_size: int  # KV bytes per token on one GPU
    weights_bytes: int
    min_bytes: int
    per_gpu: list[SglangGpu]


def sglang_options(w: Workload) -> dict[str, Any]:
    return {"mem_fraction_static": getattr(w, "mem_fraction_static", None),
            "max_total_tokens": getattr(w, "max_total_tokens", None),
            "chunked_prefill_size": getattr(w, "chunked_prefill_size", None),
            "cuda_graph_max_bs": getattr(w, "cuda_graph_max_bs", None),
            "max_running_requests": getattr(w, "max_running_requests", None),
            "dp": getattr(w, "dp_size", None) or 1}


def sglang_inference(model: ResolvedModel, w: Workload, weights: int, a: float, gpus: tuple[Gpu, ...],
                     notes: list[Assumption]) -> tuple[Phases, SglangReport]:
    o = sglang_options(w)
    tp = w.num_gpus if w.parallelism == "tp" else 1
    spec = rank_spec(model, w)
    b = KV_DTYPE_BYTES[w.kv_dtype] if w.kv_dtype else a
    cell = kv_cache.kv_bytes_per_token(spec, b, latent_mla=True)
    ctx = getattr(w, "context_length", None) or model.spec.max_position_embeddings or w.seq
    per_gpu = []
    for g in gpus:
        mem_mb = g.memory_bytes / MB
        cps, cgbs = gpu_defaults(mem_mb, tp)
        cps = o["chunked_prefill_size"] or cps
        cgbs = o["cuda_graph_max_bs"] or cgbs
        mfs = o["mem_fraction_static"] or default_mem_fraction(mem_mb, cps, cgbs, tp, w.pp)
        total = max(0, g.usable_bytes - CONTEXT_NOMINAL)
        pool, tokens = token_pool(total, weights, mfs, cell, o["max_total_tokens"])
        mrr = o["max_running_requests"] or max_running_requests(tokens, ctx)
        per_gpu.append(SglangGpu(gpu=g.name, mem_fraction_static=mfs, chunked_prefill_size=cps,
                                 cuda_graph_max_bs=cgbs, total_free_bytes=total, kv_pool_bytes=pool,
                                 max_total_num_tokens=tokens, max_running_requests=mrr,
                                 max_concurrency=round(tokens / ctx, 2) if ctx else 0.0,
                                 reserved_bytes=int(total * (1 - mfs))))
    first = per_gpu[0] if per_gpu else None
    if first is not None:
        kv, reserved = first.kv_pool_bytes, first.reserved_bytes
    else:  # no GPU: one context of tokens and the reserve of an 80 GB GPU
        cps, cgbs = gpu_defaults(80 * 1024, tp)
        kv = cell * ctx
        reserved = int((1 - default_mem_fraction(80 * 1024, cps, cgbs, tp)) * 80 * 1024 * MB)
    phases = {"load": {"weights": weights},
              "serving": {"weights": weights, "kv_cache": kv, "engine_overhead": reserved}}
    for g in per_gpu:
        notes.append(Assumption("a_sglang", {"gpu": g.gpu, "mfs": g.mem_fraction_static,
                                             "tokens": f"{g.max_total_num_tokens:,}", "c": g.max_concurrency,
                                             "ctx": ctx, "cps": g.chunked_prefill_size, "bs": g.cuda_graph_max_bs,
                                             "reqs": g.max_running_requests}))
    if o["dp"] > 1:
        notes.append(Assumption("a_sglang_dp", {"dp": Opt("dp_size", o["dp"], flag="--dp")}))
    report = SglangReport(tp_size=tp, dp_size=o["dp"], context_length=ctx, cell_size=cell, weights_bytes=weights,
                          min_bytes=weights + cell * ctx + reserved, per_gpu=per_gpu)
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
            v = "no" if tokens <= 0 else ("tight" if tokens < ctx else "fits")
            out.append(GpuVerdict(name=g.name, memory_bytes=g.memory_bytes, usable_bytes=g.usable_bytes, verdict=v,
                                  headroom_bytes=r["kv_pool_bytes"] - report["cell_size"] * ctx))
        return tuple(out)

    def needed_bytes(self, e: Estimate) -> int:
        return e.engine["min_bytes"]

    def record_options(self, src: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """SGLang's server arguments; the rest of the record (dtype, ...) is translated as for transformers."""
        out: dict[str, Any] = {"engine": self.name}
        for key in ("mem_fraction_static", "max_total_tokens", "chunked_prefill_size", "max_running_requests"):
            if src.get(key) is not None:
                out[key] = src[key]
        if src.get("context_length") is not None:
            out["context_length"] = src["context_length"]
        record_serving(src, out, "SGLang", ("tensor_parallel_size", "tp_size"))
        return out, False

    def printed_components(self, e: Estimate) -> dict[str, int]:
        """``KV Cache is allocated. #tokens: N, K size: .. GB, V size: .. GB`` (MLA: one latent cache)."""
        per = e.engine["per_gpu"][0] if e.engine["per_gpu"] else {"kv_pool_bytes": 0}
        pool = per["kv_pool_bytes"]
        return {"weights": e.engine["weights_bytes"], "kv_cache": pool, "k_cache": pool // 2, "v_cache": pool // 2}

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        return [t("sglang_gpu_line", lang, gpu=g["gpu"], kv=format_bytes(g["kv_pool_bytes"], units),
                  tokens=f"{g['max_total_num_tokens']:,}", c=g["max_concurrency"], n=e.engine["context_length"],
                  mfs=g["mem_fraction_static"]) for g in e.engine["per_gpu"]]


ENGINE = Sglang()
