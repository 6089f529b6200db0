"""vLLM: the engine preallocates ``gpu_memory_utilization`` × GPU memory and gives what is left to the KV cache.

vLLM (``vllm/v1/worker/gpu_worker.py: determine_available_memory``, ``vllm/v1/core/kv_cache_utils.py``)
loads the weights, runs one profile forward pass with ``max_num_batched_tokens`` tokens spread over up to
``max_num_seqs`` sequences, measures the PyTorch activation peak and the memory used outside PyTorch (CUDA
context, cuBLAS, NCCL), captures CUDA graphs, and sizes the KV cache as

    kv_pool = gpu_memory_utilization × total_memory − weights − activation_peak − non_torch − cuda_graphs

in blocks of 16 tokens. Its log prints each term ("model weights take 14.96GiB; non_torch_memory 0.26GiB;
PyTorch activation peak memory 1.26GiB; the rest of the memory reserved for KV Cache is ..."), the KV cache
size in tokens and the maximum concurrency at ``max_model_len``; it refuses to start when one sequence of
``max_model_len`` tokens does not fit. vramscope computes each term:

* weights: per tensor, per tensor-parallel rank (heads, MLP and vocabulary split), in the checkpoint's format;
* activation peak: the prefill transient of ``max_num_batched_tokens`` tokens (no s² term: FlashAttention),
  plus fp32 logits for ``max_num_seqs`` rows and two sampler copies of them, not divided by tensor
  parallelism (vLLM logs the same peak at TP 1 and 2);
* non-torch memory: CUDA context and workspaces, 0.3 GiB nominal (0.16–1.8 GiB seen in vLLM's own logs,
  depending on version and GPU), plus NCCL buffers under tensor parallelism;
* CUDA graphs: 0.3 GiB nominal unless ``--enforce-eager`` (0.27 GiB in a published log);
* KV bytes per token: full-attention layers keep every token, MLA layers keep the latent
  (``kv_lora_rank + qk_rope_head_dim``, replicated on every rank); ``--kv-cache-dtype fp8`` halves it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import Opt
from ..gpus import Gpu
from ..memory.activations import inference_transient
from ..memory import kv_cache
from ..memory.kv_cache import KV_DTYPE_BYTES
from ..memory.overhead import NCCL
from ..result import Assumption, Estimate, GpuVerdict
from ..sources.base import ResolvedModel
from ..units import parse_float, parse_int
from ..options import MAX_SEQ, Option
from .base import (Candidate, Engine, EngineReport, Phases, Record, rank_spec, rank_weights,
                   record_serving)

if TYPE_CHECKING:
    from ..workload import Workload


GiB = 2**30
NON_TORCH = int(0.3 * GiB)
NON_TORCH_HIGH = int(1.8 * GiB)
CUDA_GRAPHS = int(0.3 * GiB)
BLOCK = 16


@dataclass(frozen=True, kw_only=True)
class VllmGpu(Record):
    """The KV pool vLLM would allocate on one GPU."""

    gpu: str
    budget_bytes: int
    kv_pool_bytes: int
    kv_tokens: int
    max_concurrency: float
    fits_max_model_len: bool
    busiest_stage: Optional[int] = None  # pipeline parallel: the stage whose layers fill the pool first


@dataclass(frozen=True, kw_only=True)
class VllmReport(EngineReport):
    """The terms of vLLM's memory profiling, as its log prints them (``engine`` in the JSON)."""

    name: str = "vllm"
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    tensor_parallel_size: int
    pipeline_parallel_size: Optional[int] = None
    kv_bytes_per_token: int
    weights_bytes: int
    activation_peak_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    min_bytes: int  # weights, activation peak, overhead and one max_model_len sequence: what it needs
    per_gpu: list[VllmGpu]
    stages: Optional[list[dict[str, int]]] = None


def kv_bytes_per_token(model: ResolvedModel, w: Workload, dtype_bytes: float, layers: Optional[int] = None) -> int:
    """KV bytes per token on one GPU (its tensor-parallel slice; ``layers``: a pipeline stage's layers)."""
    spec = rank_spec(model, w)
    b = KV_DTYPE_BYTES[w.kv_dtype] if w.kv_dtype else dtype_bytes
    return kv_cache.kv_bytes_per_token(spec, b, layers, latent_mla=True)  # vLLM caches MLA's latent


def activation_peak(model: ResolvedModel, w: Workload, a: float) -> int:
    """The profile run's peak. It is taken unsharded: vLLM's own logs print the same peak for Llama-3-8B at
    tensor-parallel 1 and 2 (1.26 GiB, vllm-project/vllm#10511), so what peaks is not split across ranks."""
    spec = model.spec
    tokens = w.max_num_batched_tokens
    seqs = max(1, min(w.max_num_seqs, tokens))
    body = inference_transient(spec, 1, tokens, a, "flash")
    logits = seqs * spec.vocab_size * 4 * 3  # fp32 logits + sampler's probs and logprobs
    return int(body + logits)


def vllm_pipeline(model: ResolvedModel, w: Workload, weights: int, a: float, gpus: tuple[Gpu, ...],
                  notes: list[Assumption]) -> tuple[Phases, VllmReport]:
    """``--pipeline-parallel-size``: stage ``s`` holds its layers' share of the weights (the first the embedding,
    the last the final norm and output head; ``memory/pipeline.py``) and their KV cache. Every worker profiles
    and reports its free blocks; the engine allocates the smallest count on every worker
    (``vllm/v1/core/kv_cache_utils.py``: ``get_kv_cache_config`` takes the minimum over workers), so the stage
    with the least room for its layers decides the token capacity, and each GPU holds that many tokens of its own
    layers. Only the last stage computes logits."""
    from ..memory.pipeline import stage_layers, stage_param_fractions

    spec = rank_spec(model, w)
    max_len = w.max_model_len or model.spec.max_position_embeddings or w.seq
    sizes, fracs = stage_layers(spec.num_layers, w.pp), stage_param_fractions(spec, w.pp)
    body = inference_transient(model.spec, 1, w.max_num_batched_tokens, a, "flash")
    seqs = max(1, min(w.max_num_seqs, w.max_num_batched_tokens))
    logits = seqs * model.spec.vocab_size * 4 * 3
    non_torch = NON_TORCH + NCCL
    graphs = 0 if w.enforce_eager else CUDA_GRAPHS
    stages = []
    for s_, (n_layers, frac) in enumerate(zip(sizes, fracs)):
        stages.append({"stage": s_, "layers": n_layers, "weights_bytes": int(weights * frac),
                       "activation_peak_bytes": body + (logits if s_ == w.pp - 1 else 0),
                       "kv_bytes_per_token": kv_bytes_per_token(model, w, a, n_layers)})
    per_gpu = []
    for g in gpus:
        budget = int(w.gpu_memory_utilization * g.usable_bytes)
        blocks = min(max(0, (budget - st["weights_bytes"] - st["activation_peak_bytes"] - non_torch - graphs)
                         // (st["kv_bytes_per_token"] * BLOCK)) for st in stages)
        tokens = blocks * BLOCK
        busiest = max(stages, key=lambda st: st["weights_bytes"] + st["activation_peak_bytes"]
                      + tokens * st["kv_bytes_per_token"])
        per_gpu.append(VllmGpu(gpu=g.name, budget_bytes=budget, kv_pool_bytes=tokens * busiest["kv_bytes_per_token"],
                               kv_tokens=tokens, max_concurrency=round(tokens / max_len, 2) if max_len else 0.0,
                               fits_max_model_len=tokens >= max_len, busiest_stage=busiest["stage"]))
    top = max(stages, key=lambda st: st["weights_bytes"] + st["activation_peak_bytes"]
              + max_len * st["kv_bytes_per_token"])
    primary = per_gpu[0] if per_gpu else None
    st = stages[primary.busiest_stage or 0] if primary else top
    kv = max(primary.kv_pool_bytes, max_len * st["kv_bytes_per_token"]) if primary \
        else max_len * top["kv_bytes_per_token"]
    phases = {
        "load": {"weights": st["weights_bytes"]},
        "profile": {"weights": st["weights_bytes"], "activations": st["activation_peak_bytes"]},
        "serving": {"weights": st["weights_bytes"], "kv_cache": kv, "activations": st["activation_peak_bytes"],
                    "engine_overhead": non_torch + graphs},
    }
    notes.append(Assumption("a_vllm_pp", {"pp": w.pp, "tp": w.num_gpus, "stage": st["stage"]}))
    needed = max(x["weights_bytes"] + x["activation_peak_bytes"] + max_len * x["kv_bytes_per_token"]
                 for x in stages) + non_torch + graphs
    report = VllmReport(gpu_memory_utilization=w.gpu_memory_utilization, max_model_len=max_len,
                        max_num_seqs=w.max_num_seqs, max_num_batched_tokens=w.max_num_batched_tokens,
                        tensor_parallel_size=w.num_gpus, pipeline_parallel_size=w.pp,
                        kv_bytes_per_token=st["kv_bytes_per_token"], weights_bytes=st["weights_bytes"],
                        activation_peak_bytes=st["activation_peak_bytes"], non_torch_bytes=non_torch,
                        cuda_graph_bytes=graphs, min_bytes=needed, per_gpu=per_gpu, stages=stages)
    return phases, report


def vllm_inference(model: ResolvedModel, w: Workload, weights: int, a: float, gpus: tuple[Gpu, ...],
                   notes: list[Assumption]) -> tuple[Phases, VllmReport]:
    if w.pp > 1:
        return vllm_pipeline(model, w, weights, a, gpus, notes)
    max_len = w.max_model_len or model.spec.max_position_embeddings or w.seq
    per_token = kv_bytes_per_token(model, w, a)
    one_seq = per_token * max_len
    acts = activation_peak(model, w, a)
    non_torch = NON_TORCH + (NCCL if w.num_gpus > 1 else 0)
    graphs = 0 if w.enforce_eager else CUDA_GRAPHS
    needed = weights + acts + non_torch + graphs + one_seq
    per_gpu = []
    for g in gpus:
        budget = int(w.gpu_memory_utilization * g.usable_bytes)
        pool = budget - weights - acts - non_torch - graphs
        blocks = max(0, pool // (per_token * BLOCK)) if per_token else 0
        tokens = blocks * BLOCK
        per_gpu.append(VllmGpu(gpu=g.name, budget_bytes=budget, kv_pool_bytes=max(0, pool), kv_tokens=tokens,
                               max_concurrency=round(tokens / max_len, 2) if max_len else 0.0,
                               fits_max_model_len=tokens >= max_len))
    primary = per_gpu[0] if per_gpu else None
    # the pool vLLM takes; when it cannot hold one max_model_len sequence vLLM refuses to start, and what is shown
    # is what it would need (one sequence's KV cache), the number its verdict compares
    kv = max(primary.kv_pool_bytes, one_seq) if primary else one_seq
    phases = {
        "load": {"weights": weights},
        "profile": {"weights": weights, "activations": acts},
        "serving": {"weights": weights, "kv_cache": kv, "activations": acts, "engine_overhead": non_torch + graphs},
    }
    notes.append(Assumption("a_vllm", {"util": w.gpu_memory_utilization, "max_len": max_len,
                                       "seqs": w.max_num_seqs, "tokens": w.max_num_batched_tokens,
                                       "tp": w.num_gpus}))
    if primary is not None and not primary.fits_max_model_len:
        notes.append(Assumption("a_vllm_too_long", {"max_len": max_len, "tokens": primary.kv_tokens,
                                                 "o_max_len": Opt("max_model_len"),
                                                 "o_util": Opt("gpu_memory_utilization")}))
    report = VllmReport(gpu_memory_utilization=w.gpu_memory_utilization, max_model_len=max_len,
                        max_num_seqs=w.max_num_seqs, max_num_batched_tokens=w.max_num_batched_tokens,
                        tensor_parallel_size=w.num_gpus, kv_bytes_per_token=per_token, weights_bytes=weights,
                        activation_peak_bytes=acts, non_torch_bytes=non_torch, cuda_graph_bytes=graphs,
                        min_bytes=needed, per_gpu=per_gpu)
    return phases, report


class Vllm(Engine):
    name = "vllm"
    sizes_by_gpu = True
    pipeline_inference = True
    options = (
        Option("gpu_memory_utilization", ("--gpu-memory-utilization",), "float", 0.9, group="vllm", owner="vllm",
               lo=0.05, hi=1.0, expected="a fraction from 0.05 to 1.0",
               help_en="fraction of GPU memory vLLM preallocates (default 0.9)",
               help_zh="vLLM 预先占用的显存比例（默认 0.9）"),
        Option("max_model_len", ("--max-model-len",), "int", None, group="vllm", owner="vllm", lo=1, hi=MAX_SEQ,
               help_en="longest sequence (default: the model's max_position_embeddings)",
               help_zh="最长序列（默认：模型的 max_position_embeddings）"),
        Option("max_num_seqs", ("--max-num-seqs",), "int", 256, group="vllm", owner="vllm", lo=1, hi=1_000_000,
               help_en="concurrent sequences in one batch (default 256)", help_zh="一个批次中的并发序列数（默认 256）"),
        Option("max_num_batched_tokens", ("--max-num-batched-tokens",), "int", 8192, group="vllm", owner="vllm",
               lo=1, hi=MAX_SEQ, help_en="tokens in one scheduler step / the profile run (default 8192)",
               help_zh="一次调度步 / 显存探测运行中的 token 数（默认 8192）"),
        Option("enforce_eager", ("--enforce-eager",), "flag", False, group="vllm", owner="vllm",
               help_en="no CUDA graphs", help_zh="不使用 CUDA graph"),
    )
    overhead_note = "a_overhead_vllm"

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        a, _, held = rank_weights(model, w, dtype, notes, fp32_modules=False)
        return vllm_inference(model, w, held, a, gpus, notes)

    def runtime_overhead(self, transient: int, gpu: Optional[Gpu]) -> Any:
        """The CUDA context is inside vLLM's own non-torch accounting: only its spread remains."""
        from ..memory.overhead import Overhead

        return Overhead(0, 0, NON_TORCH_HIGH - NON_TORCH)

    def verdicts(self, gpus: tuple[Gpu, ...], total: int, high: int,
                 report: dict[str, Any]) -> tuple[GpuVerdict, ...]:
        return tuple(verdict(g, v, report) for g, v in zip(gpus, report["per_gpu"]))

    def total_key(self, e: Estimate) -> str:
        """The total is the share vLLM preallocates, or, when that cannot hold one max_model_len sequence, what
        it would need."""
        per = e.engine["per_gpu"]
        return "total_vllm" if not per or per[0]["fits_max_model_len"] else "total_vllm_needed"

    def gpu_line(self, e: Estimate, g: GpuVerdict, lang: str, units: str) -> str:
        """The verdict compares what vLLM needs (weights, activation peak, overhead, one max_model_len sequence)
        with the share it takes; headroom is that share minus what it needs, which its KV cache pool fills."""
        from ..i18n import t
        from ..units import format_bytes

        per = next((p for p in e.engine["per_gpu"] if p["gpu"] == g.name), None)
        if per is None:
            return super().gpu_line(e, g, lang, units)
        budget = per["budget_bytes"]
        verdict_text = t({"fits": "gpu_fits", "tight": "gpu_tight", "no": "gpu_no"}[g.verdict], lang)
        return t("gpu_line_vllm", lang, gpu=g.name, mem=format_bytes(g.usable_bytes, units),
                 util=e.engine["gpu_memory_utilization"], budget=format_bytes(budget, units), verdict=verdict_text,
                 needed=format_bytes(e.engine["min_bytes"], units), headroom=format_bytes(g.headroom_bytes, units),
                 pct=f"{100 * g.headroom_bytes / budget if budget else 0.0:+.1f}%")

    def needed_bytes(self, e: Estimate) -> int:
        """vLLM takes a fixed share of any GPU, so what it needs is its minimum: weights, activation peak,
        non-torch memory, CUDA graphs and the KV cache of one longest sequence."""
        return e.engine["min_bytes"]

    def budget(self, w: Workload, gpu: Gpu) -> int:
        return int(gpu.usable_bytes * w.gpu_memory_utilization)

    def fit_search(self, model: ResolvedModel, w: Workload, e: Estimate, fits: Callable[[Workload], bool],
                   seq_limit: int) -> tuple[int, int, Optional[int]]:
        """vLLM batches as many sequences as its KV pool holds: that, and the longest max_model_len."""
        from ..plan import largest_fitting

        max_concurrency = int(e.engine["per_gpu"][0]["max_concurrency"])
        max_seq = largest_fitting(lambda s: fits(replace(w, max_model_len=s)), 1, max(seq_limit, 1))
        return max_concurrency, max_seq, max_concurrency

    def suggestions(self, model: ResolvedModel, w: Workload, usable: int,
                    needs: Callable[[Workload], int]) -> list[Candidate]:
        cands: list[Candidate] = []
        if w.quant == "none":
            cands.append(("s_quant", {"quant": "fp8"}, {"quant": "fp8"}, "quality"))
        if w.kv_dtype not in ("fp8",):
            cands.append(("s_kv_dtype", {"kv_dtype": "fp8"}, {"kv_dtype": "fp8"}, "quality"))
        if w.gpu_memory_utilization < 0.95:
            cands.append(("s_util", {"util": 0.95, "opt": Opt("gpu_memory_utilization")}, {"gpu_memory_utilization": 0.95}, "none"))
        if not w.enforce_eager:
            cands.append(("s_eager", {"opt": Opt("enforce_eager")}, {"enforce_eager": True}, "speed"))
        if w.max_num_seqs > 64:
            cands.append(("s_seqs", {"n": 64, "opt": Opt("max_num_seqs", 64)}, {"max_num_seqs": 64, "max_num_batched_tokens": 2048}, "speed"))
        return cands

    def context_suggestions(self, model: ResolvedModel, w: Workload, max_seq: int) -> list[Candidate]:
        current_len = w.max_model_len or model.spec.max_position_embeddings or w.seq
        return [("s_max_len", {"seq": max_seq, "opt": Opt("max_model_len")}, {"max_model_len": max_seq}, "quality")] \
            if 0 < max_seq < current_len else []

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        return [t("vllm_gpu_line", lang, gpu=g["gpu"], budget=format_bytes(g["budget_bytes"], units),
                  util=e.engine["gpu_memory_utilization"], kv=format_bytes(g["kv_pool_bytes"], units),
                  tokens=f"{g['kv_tokens']:,}", c=g["max_concurrency"], n=f"{e.engine['max_model_len']:,}")
                for g in e.engine["per_gpu"]]

    def record_options(self, src: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """vLLM's engine arguments; the rest of the record (dtype, ...) is translated as for transformers."""
        out: dict[str, Any] = {}
        for key in ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "enforce_eager"):
            if src.get(key) is not None:
                out[key] = src[key]
        record_serving(src, out, "vLLM", ("tensor_parallel_size",))
        out["engine"] = self.name
        return out, False

    def printed_components(self, e: Estimate) -> dict[str, int]:
        """The terms of vLLM's memory profiling lines."""
        r = e.engine
        per = r["per_gpu"][0] if r["per_gpu"] else {}
        return {"weights": r["weights_bytes"], "activation_peak": r["activation_peak_bytes"],
                "non_torch": r["non_torch_bytes"], "kv_cache": per.get("kv_pool_bytes", 0),
                "instance_budget": per.get("budget_bytes", 0), "cuda_graphs": r["cuda_graph_bytes"]}


def verdict(gpu: Gpu, per_gpu: dict[str, Any], engine: dict[str, Any]) -> GpuVerdict:
    """vLLM fits when the KV pool left after weights, activations and overhead holds one ``max_model_len``
    sequence, that is when what it needs (``min_bytes``) is within the share it takes; *tight* when the pool holds
    fewer than two. Headroom is that share minus what it needs (the pool beyond the one sequence)."""
    tokens, max_len = per_gpu["kv_tokens"], engine["max_model_len"]
    v = "no" if tokens < max_len else ("tight" if tokens < 2 * max_len else "fits")
    return GpuVerdict(name=gpu.name, memory_bytes=gpu.memory_bytes, usable_bytes=gpu.usable_bytes, verdict=v,
                      headroom_bytes=per_gpu["budget_bytes"] - engine["min_bytes"])


ENGINE = Vllm()
