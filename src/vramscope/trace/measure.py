"""``vramscope measure``: the same workload run for real on a CUDA GPU, with torch's and NVML's counters.

Random weights (``from_config``), the same runner as the trace estimator, and per phase the three numbers
vramscope estimates: ``torch.cuda.max_memory_allocated`` (tensors, rounded by the caching allocator),
``max_memory_reserved`` (segments the allocator holds) and NVML's used memory for the whole device (adds the CUDA
context, kernel images and anything else on the GPU). At the end the allocator's segments
(``torch.cuda.memory._snapshot()``: each segment's size, allocated bytes, pool and its free blocks) are recorded,
so that ``memory/allocator.py``'s replay of the same workload can be compared segment by segment
(``bench/device_measure.sh``). Under ``torchrun`` each rank writes its own record (``RANK``/``LOCAL_RANK``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from typing import Any, Optional, Protocol

from ..errors import VramscopeError
from ..estimators.common import compute_dtype
from ..sources.base import ResolvedModel
from ..workload import Workload

RECORD_SCHEMA = "vramscope.record/1"


class Backend(Protocol):
    """What measure needs from a device; the real one is CUDA, tests use a fake."""

    name: str

    def check(self) -> None: ...
    def device(self) -> Any: ...
    def reset_peak(self) -> None: ...
    def max_allocated(self) -> int: ...
    def max_reserved(self) -> int: ...
    def nvml_used(self) -> Optional[int]: ...
    def gpu_name(self) -> str: ...
    def total_memory(self) -> int: ...


#: at most this many segments are written into a record (a large model has a few hundred)
MAX_SEGMENTS = 4096


def segment_summary(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """``torch.cuda.memory._snapshot()['segments']`` in a record's size: per segment its pool, size, allocated
    bytes and free blocks (sizes only), and the totals."""
    out = []
    for seg in segments[:MAX_SEGMENTS]:
        free = sorted((b["size"] for b in seg.get("blocks", []) if b.get("state") == "inactive"), reverse=True)
        out.append({"type": seg.get("segment_type", ""), "total_size": int(seg.get("total_size", 0)),
                    "allocated_size": int(seg.get("allocated_size", 0)),
                    "expandable": bool(seg.get("is_expandable", False)), "free_blocks": free[:64]})
    total = sum(s["total_size"] for s in out)
    allocated = sum(s["allocated_size"] for s in out)
    split_free = sum(s["total_size"] - s["allocated_size"] for s in out if s["allocated_size"])
    return {"segments": len(segments), "reserved_bytes": total, "allocated_bytes": allocated,
            "free_in_used_segments_bytes": split_free,
            "small_segments": sum(s["type"] == "small" for s in out), "large_segments": sum(s["type"] == "large" for s in out),
            "by_segment": out}


class CudaBackend:
    name = "cuda"

    def __init__(self, local_rank: int = 0) -> None:
        self.local_rank = local_rank

    def check(self) -> None:
        try:
            import torch
        except ImportError:
            raise VramscopeError("measure_no_cuda", detail="torch is not installed") from None
        if not torch.cuda.is_available():
            detail = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise VramscopeError("measure_no_cuda", detail=detail)
        torch.cuda.set_device(self.local_rank)

    def device(self) -> Any:
        import torch

        return torch.device("cuda", self.local_rank)

    def reset_peak(self) -> None:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def max_allocated(self) -> int:
        import torch

        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated())

    def max_reserved(self) -> int:
        import torch

        return int(torch.cuda.max_memory_reserved())

    def nvml_used(self) -> Optional[int]:
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.local_rank)
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        except Exception:  # NVML missing or not permitted: the torch counters still stand
            return None

    def gpu_name(self) -> str:
        import torch

        return torch.cuda.get_device_name(self.local_rank)

    def total_memory(self) -> int:
        import torch

        return int(torch.cuda.get_device_properties(self.local_rank).total_memory)

    def set_alloc_conf(self, conf: str) -> None:
        """``--alloc-conf``: the caching allocator's settings, applied before the model allocates anything."""
        import torch

        torch.cuda.memory._set_allocator_settings(conf)

    def segments(self) -> list[dict[str, Any]]:
        import torch

        torch.cuda.synchronize()
        return list(torch.cuda.memory._snapshot()["segments"])


class PhaseCounters:
    """Per-phase peaks: at each boundary the finished phase's maxima are read and the peak is reset."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.current = "load"
        self.phases: dict[str, dict[str, Optional[int]]] = {}
        self.nvml_max: Optional[int] = None
        backend.reset_peak()

    def _close(self) -> None:
        b = self.backend
        nvml = b.nvml_used()
        if nvml is not None:
            self.nvml_max = max(self.nvml_max or 0, nvml)
        name = self.current.split("#")[0]
        name = "forward" if name == "loss" else name
        entry = {"max_memory_allocated": b.max_allocated(), "max_memory_reserved": b.max_reserved(),
                 "nvml_used": nvml}
        old = self.phases.get(name)
        if old is None or (entry["max_memory_allocated"] or 0) >= (old["max_memory_allocated"] or 0):
            self.phases[name] = entry

    def __call__(self, phase: str) -> None:
        self._close()
        self.current = phase
        self.backend.reset_peak()

    def finish(self) -> None:
        self._close()
        self.phases.pop("idle", None)
        self.phases.pop("ready", None)


#: bitsandbytes' 4-bit formats measure quantizes to (``--quant`` of ``--method qlora``)
BNB_4BIT = ("nf4", "fp4", "nf4-dq", "fp4-dq", "int4")


def run_measure(model: ResolvedModel, w: Workload, backend: Backend, counters: PhaseCounters) -> int:
    """Build and run the workload on the backend's device; returns the trainable parameter count."""
    import torch

    from .build import build_model
    from .estimator import fsdp_policy, prepare_training
    from .runner import run_inference, run_training

    if (w.quant != "none" and w.method != "qlora") or (w.method == "qlora" and w.quant not in BNB_4BIT):
        raise VramscopeError("trace_unsupported", reason="measure builds unquantized models from their config "
                                                         "(QLoRA: bitsandbytes nf4/fp4 quantized on the device); "
                                                         "other quantized loading needs the real checkpoint")
    if w.profile.own_modules or w.compile or w.pp > 1 or w.tp_degree > 1 or w.sp > 1 or w.ep > 1 or (
            w.num_gpus > 1 and not w.strategy.is_fsdp) or w.offload != "none":
        raise VramscopeError("trace_unsupported", reason="measure runs transformers training steps, FSDP2 under "
                                                         "torchrun included; this workload (torchtune, compile, "
                                                         "model parallel, ZeRO/DDP or offload) needs its own launcher")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[compute_dtype(model, w)]
    mixed = w.training and w.method in ("full", "freeze") and (
        w.precision == "mixed" or (w.precision == "auto" and w.task == "pretrain" and dtype != torch.float32))
    # LoRA over an fp32 base under the framework's FSDP policy (accelerate's mixed precision), autocast around
    # forward where the framework keeps it (hf, accelerate)
    lora_mixed = w.training and w.method == "lora" and fsdp_policy(w, compute_dtype(model, w)) is not None
    with backend.device():
        net = build_model(model, torch.float32 if mixed or lora_mixed else dtype, w.attn)
        if w.method == "qlora":
            from .build import quantize_bnb_4bit

            quantize_bnb_4bit(net, w.quant, dtype)
            # the Trainer (bf16=True) runs forward under autocast: the k-bit casts' fp32 head needs it
            mixed = w.kbit_prep in ("peft", "trl0")
        if not w.training:
            counters("ready")
            run_inference(net, w.batch, w.seq, counters)
            return 0
        mesh = None
        # under torchrun: FSDP2 over the real process group (one process too: FSDP's gathers on a single GPU)
        if w.strategy.is_fsdp and (w.num_gpus > 1 or "WORLD_SIZE" in os.environ):
            import torch.distributed as dist
            from torch.distributed.device_mesh import init_device_mesh

            if not dist.is_initialized():
                dist.init_process_group("nccl")
            mesh = init_device_mesh("cuda", (dist.get_world_size(),))
        net, params, opt, _ = prepare_training(net, w, mesh, compute_dtype(model, w))
        if mixed and fsdp_policy(w, compute_dtype(model, w)) is not None and not w.profile.autocast_with_fsdp_policy:
            mixed = False  # the framework's MixedPrecisionPolicy computes in bf16 without autocast
        mixed = mixed or (lora_mixed and w.profile.autocast_with_fsdp_policy)
        counters("ready")
        run_training(net, opt, w.batch, w.seq, counters, amp_dtype=dtype if mixed else None,
                     device_type=backend.device().type, keep_outputs=w.profile.keeps_logits,
                     ce_chunks=w.ce_chunks, offload=w.activation_offload, step_in_backward=w.optimizer_in_backward)
        return sum(p.numel() for p in params)


def measure_record(model: ResolvedModel, w: Workload, backend: Optional[Backend] = None) -> dict[str, Any]:
    """One ``vramscope.record/1`` dict: what was measured, on what, beside the analytic estimate."""
    from ..api import estimate_resolved

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    backend = backend or CudaBackend(int(os.environ.get("LOCAL_RANK", "0")))
    backend.check()
    conf = getattr(w, "alloc_conf", None)
    if conf and hasattr(backend, "set_alloc_conf"):
        backend.set_alloc_conf(conf)
    counters = PhaseCounters(backend)
    trainable = run_measure(model, w, backend, counters)
    counters.finish()
    steady = {k: v for k, v in counters.phases.items()}
    peak_alloc = max((v["max_memory_allocated"] or 0) for v in steady.values())
    peak_phase = max(steady, key=lambda k: steady[k]["max_memory_allocated"] or 0)
    analytic = estimate_resolved(model, w)
    snap = getattr(backend, "segments", None)
    mem = analytic.memory
    return {
        "schema": RECORD_SCHEMA,
        "id": f"measure-{model.spec.name}-{w.task}-{w.method}-b{w.batch}-s{w.seq}-r{rank}",
        "source": "vramscope measure",
        "kind": "training" if w.training else "inference",
        "measured": "max_memory_allocated",
        "value_bytes": peak_alloc,
        "max_memory_reserved": max((v["max_memory_reserved"] or 0) for v in steady.values()),
        "nvml_used": counters.nvml_max,
        "peak_phase": peak_phase,
        "phases": steady,
        "allocator": segment_summary(snap()) if snap is not None else None,
        "alloc_conf": conf or os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF") or "",
        "model": model.origin,
        "gpu": backend.gpu_name(),
        "gpu_memory_bytes": backend.total_memory(),
        "num_gpus": world,
        "rank": rank,
        "trainable_params": trainable,
        "workload": {k: v for k, v in w.to_dict().items() if k not in ("estimator", "activations_per_sample")},
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in (w.options or {}).items()},
        "estimates": {"analytic": {"total_bytes": analytic.total_bytes,
                                   "allocated_bytes": mem.allocated if mem else analytic.total_bytes,
                                   "reserved_bytes": mem.reserved if mem else analytic.total_bytes,
                                   "device_bytes": mem.device if mem else analytic.total_bytes,
                                   "peak_phase": analytic.peak_phase}},
        "environment": _environment(backend),
        "date": datetime.date.today().isoformat(),
    }


def _environment(backend: Backend) -> dict[str, str]:
    env = {"python": platform.python_version(), "backend": backend.name}
    for mod in ("torch", "transformers", "peft"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # a missing optional package is simply not recorded
            continue
    return env


def append_record(path: str, record: dict[str, Any]) -> None:
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:  # one write per rank: appends do not interleave lines
        f.write(line)
