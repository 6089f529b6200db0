"""Three numbers per GPU, and the likely range of each.

* ``allocated``: what ``torch.cuda.max_memory_allocated`` reports — the tensors at the peak plus torch's cuBLAS
  workspace, which torch takes from the caching allocator (``CublasHandlePool.cpp``; torch's
  ``test_cublas_workspace_explicit_allocation`` sees it in ``active_bytes``);
* ``reserved``: ``torch.cuda.max_memory_reserved`` — the allocator's segments (``memory/allocator.py``): the
  trace estimator replays its allocation stream through the allocator model; the analytic estimator uses
  :func:`allocator_cache`, calibrated on those replays over the trace matrix (``bench/allocator_matrix.py``);
* ``device``: what NVML / ``nvidia-smi`` count for the process — reserved plus the CUDA context and, on several
  GPUs, NCCL's buffers (``memory/overhead.py``). This is the number compared with a GPU's capacity.

Engines that do not use torch's allocator for their buffers (llama.cpp) report their buffers as allocated and
reserved; vLLM sizes its pool from the GPU, so its device number is its own accounting.

The range of each number adds the sources of uncertainty that apply (``widened_by``): the CUDA context
(274 MiB – 1.4 GiB, the published measurements in ``overhead.CONTEXT_MEASUREMENTS``), the allocator's settings
and behaviour (from no cache at all, as with ``expandable_segments:True``, to twice the modelled cache, as with
side-stream frees under FSDP1/DeepSpeed), NCCL buffers (0–1 GiB), framework versions whose tensors differ from the
ones modelled (±:data:`VERSION_SPREAD` of the allocated bytes, calibrated so that the device/reserved/allocated
range holds ≥ 80% of the published measurements in ``validation/published.jsonl``: ``bench/range_coverage.py``),
and for unpacked training data the shorter batches (down to half the activations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .overhead import CONTEXT_HIGH, CONTEXT_LOW, CONTEXT_NOMINAL, NCCL, NCCL_HIGH

MiB = 2**20

#: Calibrated on the simulator (``bench/allocator_matrix.py``: the 36 workloads of tests/test_trace_matrix.py and 8
#: full-depth small models; ``--fit`` prints these constants):
#: the cache the allocator keeps beyond the allocated peak is, per phase, this share of the phase's transient
#: bytes (activations, temporaries, loss head) — more for MoE layers, whose routed token
#: groups have data-dependent sizes — taken at the phase where it is largest;
TRANSIENT_CACHE = 0.08
TRANSIENT_CACHE_MOE = 0.34
#: the optimizer step's temporaries (foreach AdamW's per-parameter lists) rarely fit the blocks that activations
#: freed: this share of them is cached anew;
OPTIMIZER_CACHE = 0.3
#: training: the logits and loss of the next step do not fit the blocks the optimizer step left, and this share of
#: the loss head's bytes is cached anew;
LOSS_CHURN = 0.25
#: FSDP2: the all-gather (copy-in) stream and the reduce-scatter stream keep their own blocks (per-stream pools), this
#: many times the largest FSDP unit's unsharded bytes (a decoder layer, or the embedding / head) — the reduce-scatter
#: term only when the base weights train.
FSDP_GATHER = 1.4
FSDP_REDUCE = 2.59
#: framework-version spread: of the persistent tensors (weights, gradients, optimizer states: exact per tensor, but
#: kept in other dtypes or copies by some versions) and of the transient ones (activations, temporaries, loss head,
#: optimizer temporaries: what versions, kernels and recipes change most), calibrated on the published records
#: (bench/range_coverage.py)
VERSION_SPREAD = 0.10
VERSION_SPREAD_TRANSIENT = 0.30
#: unpacked training data: batches padded to their longest sample may be this much shorter than ``--seq``
UNPACKED_SHORTER = 0.5

#: what an estimate's range can be widened by (``widened_by``), in display order; i18n keys ``w_<name>``
WIDENERS = ("context", "allocator", "nccl", "version", "unpacked", "engine")


@dataclass(frozen=True)
class DeviceMemory:
    """The three numbers of one GPU (the estimate's peak rank), their ranges and what they are made of."""

    allocated: int
    reserved: int
    device: int
    allocated_range: tuple[int, int]
    reserved_range: tuple[int, int]
    device_range: tuple[int, int]
    terms: dict[str, int] = field(default_factory=dict)
    basis: str = "calibrated"  # simulated (trace replay) | calibrated (analytic) | engine (its own accounting)
    widened_by: tuple[str, ...] = ()
    allocator: Optional[dict[str, Any]] = None  # the replay's result (trace estimator)

    def range_of(self, metric: str) -> tuple[int, int]:
        return {"allocated": self.allocated_range, "reserved": self.reserved_range,
                "device": self.device_range}[metric]

    def value_of(self, metric: str) -> int:
        return {"allocated": self.allocated, "reserved": self.reserved, "device": self.device}[metric]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "allocated_bytes": self.allocated, "reserved_bytes": self.reserved, "device_bytes": self.device,
            "allocated_range_bytes": list(self.allocated_range), "reserved_range_bytes": list(self.reserved_range),
            "device_range_bytes": list(self.device_range), "terms": dict(self.terms), "basis": self.basis,
            "widened_by": list(self.widened_by)}
        if self.allocator is not None:
            out["allocator"] = dict(self.allocator)
        return out


def alloc_config(text: Any, field: str = "alloc_conf") -> Any:
    """``PYTORCH_CUDA_ALLOC_CONF`` (a text, possibly empty or None) as the allocator model's settings; a bad value
    is one ``bad_alloc_conf`` error naming ``field`` and the setting."""
    from ..errors import Text, VramscopeError
    from ..units import shown
    from .allocator import DEFAULT_CONFIG, AllocConfError, parse_alloc_conf

    if not text:
        return DEFAULT_CONFIG
    try:
        return parse_alloc_conf(text)
    except AllocConfError as e:
        params = {k: shown(v, 40) for k, v in e.params.items()}
        raise VramscopeError("bad_alloc_conf", field=field, key=shown(e.key, 60),
                             reason=Text(e.reason, **params)) from None


def read_alloc_conf(value: Any, field: str) -> Optional[str]:
    """The ``alloc_conf`` option's reader: None (not given), or a ``PYTORCH_CUDA_ALLOC_CONF`` text that parses."""
    from ..errors import VramscopeError
    from ..units import shown

    if value is None:
        return None
    if not isinstance(value, str):
        raise VramscopeError("bad_type", field=field, value=shown(value), kind=type(value).__name__,
                             expected="a PYTORCH_CUDA_ALLOC_CONF text such as expandable_segments:True")
    alloc_config(value.strip(), field)
    return value.strip() or None


def _transient(comps: Mapping[str, int]) -> int:
    return sum(comps.get(k, 0) for k in ("activations", "temporaries", "loss_head"))


def _tensors(comps: Mapping[str, int]) -> int:
    return sum(v for k, v in comps.items() if k not in ("overhead", "allocator_cache"))


def rounding_share(spec: Any, dtype_bytes: float) -> float:
    """Bytes lost to the 2 MiB rounding of large blocks (``kRoundLarge``), as a share of the parameter bytes:
    every tensor of at least 10 MiB gets a block rounded up to 2 MiB, and so do its gradient and states."""
    from ..model.tensors import groups

    total = waste = 0
    for g in groups(spec):
        n = int(g.tensor.numel * dtype_bytes)
        total += n * g.repeat
        if n >= 10 * MiB:
            waste += (-(-n // (2 * MiB)) * 2 * MiB - n) * g.repeat
    return waste / total if total else 0.0


def allocator_cache(phases: Mapping[str, Mapping[str, int]], spec: Any, w: Any, dtype_bytes: float,
                    moe: bool, loss_head: int = 0) -> int:
    """The analytic estimate of ``reserved − allocated`` at the peak (calibrated on the allocator model);
    ``loss_head``: the loss head's forward bytes where no phase's peak moment shows them."""
    from ..model.tensors import largest_layer, largest_tensor

    steps = {p: c for p, c in phases.items() if p != "load"} or dict(phases)
    share = TRANSIENT_CACHE_MOE if moe else TRANSIENT_CACHE
    peak = max(_tensors(c) for c in steps.values())
    held = max(_tensors(c) + share * _transient(c) + OPTIMIZER_CACHE * c.get("optimizer_temp", 0)
               for c in steps.values())
    cache = held - peak
    peak_comps = max(steps.values(), key=_tensors)
    if w.quant == "none" and w.method != "qlora":
        persistent = sum(peak_comps.get(k, 0) for k in ("weights", "master_weights", "gradients",
                                                        "optimizer_states"))
        cache += rounding_share(spec, dtype_bytes) * persistent
    if w.training:
        cache += LOSS_CHURN * max([c.get("loss_head", 0) for c in phases.values()] + [loss_head])
    if w.training and w.num_gpus > 1 and w.strategy.is_fsdp:
        unit = max(largest_layer(spec), largest_tensor(spec)) * dtype_bytes
        cache += (FSDP_GATHER + (FSDP_REDUCE if w.method in ("full", "freeze") else 0)) * unit
    return max(0, int(cache))


def device_memory(comps: Mapping[str, int], w: Any, *, cublas_workspace: int, cache: int,
                  context: int = CONTEXT_NOMINAL, torch_allocator: bool = True, basis: str = "calibrated",
                  allocator: Optional[dict[str, Any]] = None) -> DeviceMemory:
    """The three numbers for the peak phase's components ``comps`` (which hold ``overhead`` = context + cuBLAS
    workspace + NCCL, and ``allocator_cache`` = ``cache``)."""
    tensors = _tensors(comps)
    multi = w.num_gpus > 1 and (w.training or w.tp_degree > 1 or w.pp > 1)
    nccl = NCCL if multi else 0
    allocated = tensors + cublas_workspace if torch_allocator else tensors
    reserved = allocated + cache
    device = reserved + context + nccl
    terms = {"cublas_workspace": cublas_workspace, "allocator_cache": cache, "cuda_context": context, "nccl": nccl}
    widened = ["context", "allocator", "version"]
    transient = _transient(comps) + comps.get("optimizer_temp", 0)
    spread = int(VERSION_SPREAD * (tensors - transient) + VERSION_SPREAD_TRANSIENT * transient)
    low_a, high_a = allocated - spread, allocated + spread
    if w.training and not w.packing:
        low_a -= int(UNPACKED_SHORTER * comps.get("activations", 0))
        widened.append("unpacked")
    low_r, high_r = low_a, high_a + 2 * cache
    low_d = low_r + CONTEXT_LOW
    high_d = high_r + CONTEXT_HIGH + (NCCL_HIGH if multi else 0)
    if multi:
        widened.insert(2, "nccl")
    return DeviceMemory(allocated=allocated, reserved=reserved, device=device,
                        allocated_range=(max(0, low_a), high_a), reserved_range=(max(0, low_r), high_r),
                        device_range=(max(0, low_d), high_d), terms=terms, basis=basis,
                        widened_by=tuple(widened), allocator=allocator)


def allocator_retry(m: DeviceMemory, usable: int) -> Optional[bool]:
    """Whether, on a GPU with ``usable`` bytes, torch's allocator would run out of device memory with its cache
    held and free it to retry (``release_cached_blocks``: slower, and a sign of fragmentation) — the tensors and
    the process's fixed terms fit, the cache does not. None for an engine's own accounting."""
    if m.basis == "engine":
        return None
    fixed = m.terms.get("cuda_context", 0) + m.terms.get("nccl", 0)
    return m.allocated + fixed <= usable < m.device


def engine_memory(total: int, allocated: int, low: int, high: int) -> DeviceMemory:
    """An engine's own accounting (vLLM's budget, llama.cpp's buffers): allocated = reserved, device = total."""
    return DeviceMemory(allocated=allocated, reserved=allocated, device=total,
                        allocated_range=(allocated, allocated), reserved_range=(allocated, allocated),
                        device_range=(low, high), terms={}, basis="engine", widened_by=("engine",))
