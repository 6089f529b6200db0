"""``vramscope validate RECORDS.jsonl``: re-estimate measured records and report the errors.

Each record (``vramscope.record/1``, see ``validation/README.md``) names a model, a workload, what was measured
(``max_memory_allocated``, ``max_memory_reserved``, ``nvml_used``/``nvidia-smi``, an engine's log) and the value.
The estimate is compared like for like:

* ``max_memory_allocated``: the estimate's ``allocated`` number (tensors + cuBLAS workspace; torchtune's
  unspecified figures are its ``training.get_memory_stats`` peaks, read as this);
* ``max_memory_reserved``: its ``reserved`` number (the caching allocator's segments);
* ``nvml_used``, ``nvidia-smi``, ``unspecified``: its ``device`` number (CUDA context and NCCL included);
* ``engine_log``: each printed component (``weights``, ``kv_cache``, ...) against the same component.

Never a total against an allocated figure. Error = (estimate − measured) / measured; each compared row also says
whether the measured value lies in the estimate's likely range for that metric (``in_range``). Medians, worst
cases and the range's coverage are reported per kind of workload.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Optional

from .engines.base import ENGINES, engine_for
from .errors import Text, VramscopeError
from .i18n import register
from .sources.base import JsonProblem, decode_text, parse_json, read_limited, shown_path
from .units import shown

#: One record: published ones are ~2-3 KB, ``vramscope measure`` writes ~4 KB.
MAX_LINE = 1 << 20
MAX_RECORDS = 100_000
#: A records file: the shipped one (78 records) is ~0.2 MB; 32 MiB holds >10,000 records of the usual size.
MAX_FILE_BYTES = 32 * 1024 * 1024
#: bytes one GPU can hold, with room (1 PiB): a larger "measurement" is a typo
MAX_RECORD_BYTES = 2**50

#: figures a record may carry beside its main one (``vramscope measure`` writes both), and their metric
EXTRA_METRICS = (("max_memory_reserved", "reserved"), ("nvml_used", "device"))

MEASURED = ("max_memory_allocated", "max_memory_reserved", "nvml_used", "nvidia-smi", "unspecified", "engine_log")

@dataclass
class Row:
    id: str
    kind: str
    measured: str
    component: str
    measured_bytes: int
    analytic_bytes: Optional[int]
    trace_bytes: Optional[int]
    source: str
    skipped: str = ""  # why the record is not compared, in English (the JSON's "skipped")
    caveat: str = ""
    metric: str = ""  # allocated | reserved | device | the engine component's name
    analytic_range: Optional[tuple[int, int]] = None
    trace_range: Optional[tuple[int, int]] = None
    #: that reason as a keyed sentence (a Text or a VramscopeError), rendered in the reader's language
    skip_reason: Any = None

    def skip_text(self, lang: str = "en") -> str:
        """Why the record is not compared, in ``lang`` (the CLI's spelling of any option it names)."""
        return self.skipped if self.skip_reason is None else self.skip_reason.render(lang, "cli")

    @property
    def in_range(self) -> Optional[bool]:
        """Whether the measured value lies in the analytic estimate's range for the row's metric."""
        if self.analytic_range is None:
            return None
        return self.analytic_range[0] <= self.measured_bytes <= self.analytic_range[1]

    @staticmethod
    def err(est: Optional[int], meas: int) -> Optional[float]:
        return None if est is None or not meas else (est - meas) / meas

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "measured": self.measured, "component": self.component,
                "measured_bytes": self.measured_bytes, "analytic_bytes": self.analytic_bytes,
                "analytic_error": self.err(self.analytic_bytes, self.measured_bytes),
                "trace_bytes": self.trace_bytes, "trace_error": self.err(self.trace_bytes, self.measured_bytes),
                "source": self.source, "skipped": self.skipped, "caveat": self.caveat, "metric": self.metric,
                "analytic_range_bytes": None if self.analytic_range is None else list(self.analytic_range),
                "trace_range_bytes": None if self.trace_range is None else list(self.trace_range),
                "in_range": self.in_range}


#: the workload keys the comparison reads, and what each must be (None is always allowed: "not stated")
_WORKLOAD_INT = {  # key: (minimum, maximum)
    "seq": (1, 10**9), "batch": (1, 10**6), "grad_accum": (1, 10**6), "lora_rank": (1, 10**6),
    "lora_alpha": (0, 10**9), "ctx_size": (1, 10**9), "n_batch": (1, 10**9), "n_ubatch": (1, 10**9),
    "n_gpu_layers": (-1, 10**6), "tensor_parallel_size": (1, 10**6), "max_model_len": (1, 10**9),
    "max_num_seqs": (1, 10**6), "zero_stage": (0, 3), "fsdp_version": (1, 2), "kv_cache_tokens": (0, 10**12),
    "max_new_tokens": (0, 10**9),
}
_WORKLOAD_FRACTION = ("gpu_memory_utilization", "mem_fraction_static", "lora_dropout")
_WORKLOAD_BOOL = ("grad_checkpointing", "flash_attn", "enforce_eager", "packed", "chunked_ce", "optimizer_in_bwd",
                  "activation_offloading", "compile", "lora_mlp", "lora_output", "fsdp", "fsdp_offload_params")
_WORKLOAD_STR = ("engine", "task", "dtype", "optimizer", "quant", "attn", "method", "kv_dtype", "precision",
                 "cache_type_k", "cache_type_v", "gguf_type", "quantization", "dataset", "cache_dtype",
                 "load_format", "phase", "framework", "fsdp_backward_prefetch")
_TOP_STR = ("kind", "source", "framework", "gpu", "schema", "where", "quantity", "value_text", "notes")


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def check_record(rec: Any, path: Any, line: int) -> None:
    """Every field the comparison reads has the type and range it needs, or a ``records_bad`` error naming the
    line and the field."""
    def bad(detail: str) -> VramscopeError:
        return VramscopeError("records_bad", path=shown_path(path), line=line, detail=detail)

    if not isinstance(rec, dict):
        kind = "null" if rec is None else "an array" if isinstance(rec, list) else f"a {type(rec).__name__}"
        raise bad(f"a record must be a JSON object, not {kind}")
    for key in ("id", "model", "measured", "value_bytes"):
        if key not in rec:
            raise bad(f"missing '{key}'")
    for key, limit in (("id", 200), ("model", 4096)):
        v = rec[key]
        if not isinstance(v, str) or not v.strip() or len(v) > limit:
            raise bad(f"'{key}' must be a non-empty text of at most {limit} characters, not {shown(v)!r}")
    if rec["measured"] not in MEASURED:
        raise bad(f"'measured' is {shown(rec['measured'])!r}; expected one of {', '.join(MEASURED)}")
    v = rec["value_bytes"]
    if not _is_number(v) or not 0 < v <= MAX_RECORD_BYTES:
        raise bad(f"'value_bytes' must be a number of bytes above 0 (at most 2^50), not {shown(v)}")
    for key in _TOP_STR:
        if rec.get(key) is not None and not isinstance(rec[key], str):
            raise bad(f"'{key}' must be a text, not {shown(rec[key])}")
    for key, _ in EXTRA_METRICS:
        v = rec.get(key)
        if v is not None and not (_is_number(v) and 0 <= v <= MAX_RECORD_BYTES):
            raise bad(f"'{key}' must be a number of bytes from 0 to 2^50, not {shown(v)}")
    n = rec.get("num_gpus")
    if n is not None and not (_is_int(n) and 1 <= n <= 10**6):
        raise bad(f"'num_gpus' must be a whole number from 1 to 1,000,000, not {shown(n)}")
    comps = rec.get("components_measured")
    if comps is not None:
        if not isinstance(comps, dict):
            raise bad(f"'components_measured' must be an object of byte counts, not {shown(comps)}")
        for name, value in comps.items():
            if not _is_number(value) or not 0 <= value <= MAX_RECORD_BYTES:
                raise bad(f"'components_measured.{shown(name)}' must be a number of bytes from 0 to 2^50, "
                          f"not {shown(value)}")
    w = rec.get("workload")
    if w is None:
        return
    if not isinstance(w, dict):
        raise bad(f"'workload' must be an object, not {shown(w)}")
    for key, value in w.items():
        if value is None:
            continue
        field = f"'workload.{shown(key)}'"
        if key in _WORKLOAD_INT:
            lo, hi = _WORKLOAD_INT[key]
            if not (_is_int(value) and lo <= value <= hi):
                raise bad(f"{field} must be a whole number from {lo:,} to {hi:,}, not {shown(value)}")
        elif key in _WORKLOAD_FRACTION:
            if not (_is_number(value) and 0 < value <= 1):
                raise bad(f"{field} must be a fraction above 0 and at most 1, not {shown(value)}")
        elif key in _WORKLOAD_BOOL:
            if not isinstance(value, bool):
                raise bad(f"{field} must be true or false, not {shown(value)}")
        elif key in _WORKLOAD_STR:
            if not isinstance(value, str):
                raise bad(f"{field} must be a text, not {shown(value)}")
        elif key == "lora_targets":
            if not (isinstance(value, list) and len(value) <= 64 and all(isinstance(t, str) for t in value)):
                raise bad(f"{field} must be a list of module names, not {shown(value)}")
        elif key in ("offload_optimizer", "offload_param"):
            if not isinstance(value, (str, bool)):
                raise bad(f"{field} must be a device name or true/false, not {shown(value)}")


def read_records(path: Any) -> list[dict[str, Any]]:
    """The records of a JSON Lines file (``#`` lines are comments), each checked by :func:`check_record`.

    The file must be a regular file; at most :data:`MAX_FILE_BYTES` are read, lines are at most
    :data:`MAX_LINE` characters and each is parsed with the bounded JSON loader."""
    if isinstance(path, str) and not path.strip():
        raise VramscopeError("path_empty")
    raw = read_limited(path, MAX_FILE_BYTES)
    try:
        text = decode_text(raw)
    except JsonProblem as e:
        try:
            raw.decode("utf-8-sig")
            at = 0
        except UnicodeDecodeError as u:
            at = u.start
        raise VramscopeError("records_bad", path=shown_path(path), line=raw.count(b"\n", 0, at) + 1,
                             detail=str(e)) from None
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE:
            raise VramscopeError("records_bad", path=shown_path(path), line=n, detail="line longer than 1 MiB")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rec = parse_json(line, max_containers=10_000, max_items=100_000)
        except JsonProblem as e:
            raise VramscopeError("records_bad", path=shown_path(path), line=n, detail=f"not JSON ({e})") from None
        check_record(rec, path, n)
        out.append(rec)
        if len(out) > MAX_RECORDS:
            raise VramscopeError("records_bad", path=shown_path(path), line=n, detail="more than 100,000 records")
    return out


#: record keys that describe something vramscope does not model yet: such records are skipped, with the reason
UNMODELLED = {"mem_fraction_static": "s_what_sglang", "kv_cache_tokens": "s_what_static_kv"}
#: record keys that are estimated but not modelled exactly: the row is compared and carries the caveat
CAVEATS = {
    "compile": "torch.compile: blocks as torch 2.13's partitioner saves for full training of transformers' "
               "Llama-layout blocks (torchtune's and LitGPT's own modules, adapters and other layouts as in eager "
               "mode), the loss head fused; other torch versions may partition differently",
}
#: record keys that are context only
INFORMATIONAL = {"dataset", "lora_alpha", "lora_output", "max_new_tokens", "cache_dtype", "load_format", "phase",
                 "lora_mlp", "fsdp_offload_params", "offload_optimizer", "offload_param", "fsdp"}
_TORCHTUNE_NAMES = {"output_proj": "o_proj"}


class Skip(Exception):
    """A record vramscope cannot compare yet: an i18n key and its parameters (``str()`` is the English reason)."""

    def __init__(self, key: str, **params: Any) -> None:
        self.text = Text(key, **params)
        super().__init__(self.text.render("en"))


register({
    "s_uses": {"en": "uses {what}", "zh": "用到了{what}"},
    "s_what_sglang": {"en": "SGLang's allocator", "zh": "SGLang 的分配器"},
    "s_what_static_kv": {"en": "a static KV cache of fixed size", "zh": "固定大小的静态 KV 缓存"},
    "s_engine": {"en": "the {engine} engine is not modelled", "zh": "未对 {engine} 引擎建模"},
    "s_task": {"en": "task '{task}' is not an estimate vramscope makes", "zh": "任务 '{task}' 不是 vramscope 所做的估算"},
    "s_no_seq": {"en": "the source does not state the sequence length", "zh": "来源未说明序列长度"},
    "s_unpacked": {"en": "unpacked batches are padded to their longest sample, whose length the source does not state",
                   "zh": "未打包的批次会填充到其最长样本，而来源未说明该长度"},
    "s_no_ckpt": {"en": "the source does not state whether activation checkpointing was on",
                  "zh": "来源未说明是否开启了激活检查点"},
    "s_multi_gpu_inference": {"en": "multi-GPU inference records need the engine profiles",
                              "zh": "多 GPU 推理记录需要引擎的配置"},
    "s_unknown_keys": {"en": "unknown workload keys: {keys}", "zh": "未知的 workload 键：{keys}"},
    "s_vllm_gpu": {"en": "vLLM's KV pool depends on the GPU, which the source does not state",
                   "zh": "vLLM 的 KV 池取决于 GPU，而来源未说明 GPU"},
    "s_engine_quant": {"en": "{engine} with {quant} weights is not modelled", "zh": "未对使用 {quant} 权重的 {engine} 建模"},
})


#: workload keys that :func:`workload_from_record` (or an engine's ``record_options``) translates
_TRANSLATED = frozenset({"engine", "task", "dtype", "optimizer", "quant", "attn", "lora_targets", "method", "seq",
                         "batch", "grad_accum", "grad_checkpointing", "lora_rank", "kv_dtype", "precision",
                         "ctx_size", "n_batch", "n_ubatch", "flash_attn", "cache_type_k", "cache_type_v",
                         "gguf_type", "n_gpu_layers", "gpu_memory_utilization", "tensor_parallel_size",
                         "max_model_len", "max_num_seqs", "enforce_eager", "quantization", "mem_fraction_static",
                         "packed", "chunked_ce", "optimizer_in_bwd", "activation_offloading", "zero_stage",
                         "compile", "fsdp_version", "lora_dropout", "kbit_prep", "bnb_version", "framework", "checkpoint_reentrant", "litgpt_version",
                         "unsloth_version", "fsdp_backward_prefetch", "vllm_version", "max_num_batched_tokens"})


def _check_modelled(src: dict[str, Any]) -> None:
    for key, value in src.items():
        if key == "engine":
            continue
        if key in UNMODELLED and value not in (False, None, "transformers"):
            raise Skip("s_uses", what=Text(UNMODELLED[key]))
    engine = src.get("engine")
    if engine is not None and engine not in ENGINES:
        raise Skip("s_engine", engine=engine)


def _task(src: dict[str, Any]) -> str:
    task = src.get("task", "inference")
    out = {"generate": "inference"}.get(task, task)
    if out not in ("inference", "finetune", "pretrain"):
        raise Skip("s_task", task=task)
    return out


def _translate_types(rec: dict[str, Any], src: dict[str, Any], out: dict[str, Any]) -> None:
    """dtype, optimizer, quantization and attention, from the spellings records use to vramscope's."""
    dtype = src.get("dtype")
    if dtype == "fp16-mixed":
        out.update(dtype="fp16", precision="mixed")
    elif dtype:
        out["dtype"] = dtype
    torchtune = "torchtune" in str(rec.get("framework", "")).lower()
    given = str(src.get("optimizer", ""))
    if given and not (torchtune and "recipe default" in given):  # else the framework profile's default
        opt = given.split(" ")[0].replace("_", "-")
        out["optimizer"] = {"paged-adamw8bit": "paged-adamw-8bit", "adamw8bit": "adamw-8bit"}.get(opt, opt)
    quant = src.get("quant")
    if quant:
        out["quant"] = "nf4-dq" if "double" in str(quant) else str(quant).split(" ")[0]
    attn = src.get("attn")
    if attn:
        out["attn"] = {"flash_attention_2": "flash"}.get(attn, attn)


def _translate_training(src: dict[str, Any], out: dict[str, Any]) -> None:
    """LoRA targets, the options copied as they are, the flags, and the sharding / offload settings."""
    targets = [_TORCHTUNE_NAMES.get(t, t) for t in src.get("lora_targets", []) or []]
    if targets and src.get("lora_mlp"):
        targets += ["gate_proj", "up_proj", "down_proj"]
    if targets:
        out["lora_targets"] = tuple(dict.fromkeys(targets))
    for key in ("method", "seq", "batch", "grad_accum", "grad_checkpointing", "lora_rank", "kv_dtype",
                "precision", "lora_dropout", "kbit_prep", "bnb_version", "checkpoint_reentrant", "litgpt_version",
                "unsloth_version"):
        if src.get(key) is not None:
            out[key] = src[key]
    for key, opt in (("packed", "packing"), ("optimizer_in_bwd", "optimizer_in_backward"),
                     ("activation_offloading", "activation_offload")):
        if src.get(key) is not None:
            out[opt] = bool(src[key])
    if src.get("compile"):
        out["compile"] = True
    if src.get("chunked_ce") is not None:
        out["ce_chunks"] = 8 if src["chunked_ce"] else 1
    if src.get("fsdp_version") is not None:
        out["fsdp_version"] = int(src["fsdp_version"])
    if src.get("fsdp_backward_prefetch") is not None:  # BACKWARD_PRE -> pre, NO_PREFETCH -> none
        out["fsdp_backward_prefetch"] = "pre" if "PRE" in str(src["fsdp_backward_prefetch"]).upper() else "none"
    if src.get("zero_stage") is not None:
        out["parallelism"] = "ddp" if int(src["zero_stage"]) == 0 else f"zero{int(src['zero_stage'])}"
    if src.get("offload_optimizer") or src.get("fsdp_offload_params"):
        out["offload"] = "optimizer+params" if (src.get("offload_param") or src.get("fsdp_offload_params")) \
            else "optimizer"


def _check_training_record(rec: dict[str, Any], src: dict[str, Any], out: dict[str, Any]) -> None:
    """A training record must state what the estimate needs (or name a framework whose defaults do)."""
    if "seq" not in out:
        raise Skip("s_no_seq")
    if src.get("packed") is False:  # a real dataset, unpacked: the peak batch length is not --seq
        raise Skip("s_unpacked")
    framework = str(rec.get("framework", "")).lower()
    if src.get("framework") is not None:  # the vramscope profile whose loop the record's script runs
        out["framework"] = str(src["framework"])
    elif "litgpt" in framework:
        out["framework"] = "litgpt"  # its own model code and loop (the record states its recipe's settings)
    elif "torchtune" in framework:
        out["framework"] = "torchtune"  # its recipes' defaults fill what the record leaves out
    elif "unsloth" in framework:
        out["framework"] = "unsloth"  # its kernels, loss and offloaded checkpointing
    if "torchtune" not in framework and "grad_checkpointing" not in out:
        raise Skip("s_no_ckpt")


def workload_from_record(rec: dict[str, Any]) -> dict[str, Any]:
    """Translate a record's workload into vramscope's options; raises :class:`Skip` with the reason."""
    src = dict(rec.get("workload") or {})
    _check_modelled(src)
    own, complete = ENGINES[src.get("engine") or "transformers"].record_options(src)
    if complete:
        return own
    out = dict(own)
    out["task"] = _task(src)
    _translate_types(rec, src, out)
    _translate_training(src, out)
    n = int(rec.get("num_gpus") or 1)
    if n > 1 and not own:  # an engine's own options (vLLM's tensor_parallel_size) say how it uses the GPUs
        if out["task"] == "inference":
            raise Skip("s_multi_gpu_inference")
        out.update(num_gpus=n)
        out.setdefault("parallelism", "fsdp")
    unknown = set(src) - set(UNMODELLED) - INFORMATIONAL - _TRANSLATED
    if unknown:
        raise Skip("s_unknown_keys", keys=", ".join(sorted(unknown)))
    if out["task"] != "inference":
        _check_training_record(rec, src, out)
    return out


def metric_of(rec: dict[str, Any]) -> str:
    """Which of the estimate's three numbers the record's figure is: ``allocated`` (torch's
    ``max_memory_allocated``; torchtune's recipes log ``training.get_memory_stats``, whose peaks its unspecified
    figures are read as), ``reserved`` (``max_memory_reserved``) or ``device`` (NVML / nvidia-smi, and any other
    unspecified figure)."""
    m = rec["measured"]
    if m == "max_memory_allocated":
        return "allocated"
    if m == "max_memory_reserved":
        return "reserved"
    if m == "unspecified" and "torchtune" in str(rec.get("framework", "")).lower():
        return "allocated"
    return "device"


def torch_counters(rec: dict[str, Any]) -> bool:
    """Whether the record's figure comes from torch's allocator counters."""
    return metric_of(rec) in ("allocated", "reserved")


def compared_bytes(est: Any, metric: str) -> tuple[int, tuple[int, int]]:
    """The estimate's number for ``metric`` and its range. torch's counters do not see bitsandbytes' paged
    (managed) optimizer states."""
    m = est.memory
    if m is None:
        return est.total_bytes, tuple(est.range_bytes)
    unseen = est.engine.get("paged_bytes", 0) if metric != "device" else 0
    low, high = m.range_of(metric)
    return m.value_of(metric) - unseen, (low - unseen, high - unseen)


def record_caveats(rec: dict[str, Any]) -> str:
    """What the estimate does not model exactly about this record (empty when nothing)."""
    src = rec.get("workload") or {}
    notes = [text for key, text in CAVEATS.items() if src.get(key)]
    if "torchtune" in str(rec.get("framework", "")).lower() and rec.get("kind") == "training":
        if "grad_checkpointing" not in src:
            notes.append("activation checkpointing taken from torchtune's recipe defaults (on)")
        if rec["measured"] == "unspecified":
            notes.append("read as torch's memory counters (torchtune logs training.get_memory_stats)")
    return "; ".join(notes)


def validate(records: list[dict[str, Any]], trace: bool = False) -> list[Row]:
    from .api import estimate_resolved
    from .sources import resolve
    from .workload import make_workload

    rows = []
    for rec in records:
        kind = rec.get("kind", "unspecified")
        base = dict(id=rec["id"], kind=kind, measured=rec["measured"], source=rec.get("source", ""))
        try:
            model = resolve(rec["model"], hub=False)
            w = make_workload(**workload_from_record(rec))
            est = estimate_resolved(model, w, _record_gpu(rec, w))
        except (VramscopeError, Skip) as e:
            why = e if isinstance(e, VramscopeError) else e.text
            rows.append(Row(**base, component="total", measured_bytes=int(rec["value_bytes"]),
                            analytic_bytes=None, trace_bytes=None, skipped=why.render("en"), skip_reason=why))
            continue
        tr = None
        if trace:
            try:
                from .trace.estimator import trace_estimate

                tr = trace_estimate(model, w)
            except VramscopeError as e:
                tr = None
                base["source"] += f" (trace: {e.render()})"
        comps = rec.get("components_measured") or {}
        if rec["measured"] == "engine_log" and comps:
            ours = _engine_components(est)
            for name, value in comps.items():
                if name in ours:
                    rows.append(Row(**base, component=name, measured_bytes=int(value),
                                    analytic_bytes=ours[name], trace_bytes=None, metric=name))
            continue
        main_metric = metric_of(rec)
        # vramscope measure's records carry all three numbers: each is compared with its own estimate
        for metric, value, measured in ((main_metric, rec["value_bytes"], rec["measured"]),
                                        *(((m, rec[k], k) for k, m in EXTRA_METRICS
                                           if m != main_metric and rec.get(k)))):
            ours, span = compared_bytes(est, metric)
            theirs = compared_bytes(tr, metric) if tr else None
            rows.append(Row(**dict(base, measured=measured), component="total", measured_bytes=int(value),
                            analytic_bytes=ours, trace_bytes=theirs[0] if theirs else None,
                            caveat=record_caveats(rec), metric=metric, analytic_range=span,
                            trace_range=theirs[1] if theirs else None))
    return rows


def _record_gpu(rec: dict[str, Any], w: Any) -> tuple[str, ...]:
    """vLLM sizes its KV pool from the GPU: the record's printed total memory, else its named GPU."""
    if not engine_for(w).sizes_by_gpu:
        return ()
    total = (rec.get("components_measured") or {}).get("total_gpu_memory")
    if total:
        return (f"{int(total)}B",)
    from .gpus import find_gpu

    try:
        return (find_gpu(str(rec.get("gpu", "")).rstrip("?")).id,)
    except VramscopeError:
        raise Skip("s_vllm_gpu") from None


def _engine_components(est: Any) -> dict[str, int]:
    """Our numbers under the names engines print (vLLM memory profiling lines, llama.cpp buffer lines)."""
    return engine_for(est.workload).printed_components(est)


def summary(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Per kind (and overall): count, median absolute error and the worst error (its size, its sign: over- or
    underestimate, and its record) for each estimator."""
    out: dict[str, dict[str, Any]] = {}
    kinds = sorted({r.kind for r in rows}) + ["all"]
    for kind in kinds:
        sel = [r for r in rows if (kind == "all" or r.kind == kind) and not r.skipped]
        entry: dict[str, Any] = {"records": len(sel)}
        for est in ("analytic", "trace"):
            errs = [(abs(e), r.id, e) for r in sel
                    if (e := Row.err(getattr(r, f"{est}_bytes"), r.measured_bytes)) is not None]
            if errs:
                worst = max(errs)
                entry[est] = {"n": len(errs), "median_abs_error": statistics.median(e for e, _, _ in errs),
                              "worst_abs_error": worst[0], "worst_error": worst[2], "worst_id": worst[1]}
        ranged = [r for r in sel if r.component == "total" and r.in_range is not None]
        if ranged:
            held = sum(bool(r.in_range) for r in ranged)
            entry["range_coverage"] = {"n": len(ranged), "in_range": held, "share": held / len(ranged)}
        out[kind] = entry
    return out
