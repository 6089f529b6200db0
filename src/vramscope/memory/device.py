"""Three numbers per GPU, and the likely range of each.

* ``allocated``: what ``torch.cuda.max_memory_allocated`` reports — the tensors at the peak plus torch's cuBLAS
  workspace, which torch takes from the caching allocator (``CublasHandlePool.cpp``; torch's
  ``test_cublas_workspace_explicit_allocation`` sees it in ``active_bytes``);
* ``reserved``: ``torch.cuda.max_memory_reserved`` — the allocator's segments (``memory/allocator.py``): the
  trace estimator replays its allocation stream through the allocator model; the analytic estimator uses
  :func:`allocator_cache`, calibrated on those replays over the trace matrix (``bench/allocator_matrix.py``);
* ``device``: what NVML / ``nvidia-smi`` count for the process — reserved plus the CUDA context and, on several
  GPUs, NCCL's buffers (``memory/overhead.py``) and async TP's symmetric-memory workspace (``memory/async_tp.py``). This is the number compared with a GPU's capacity.

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
from functools import lru_cache
from typing import Any, Mapping, Optional

from .overhead import CONTEXT_HIGH, CONTEXT_LOW, CONTEXT_NOMINAL, CUBLAS_WORKSPACE, NCCL, NCCL_HIGH

MiB = 2**20

#: The shares of :func:`cache_features`' bytes that the allocator keeps cached at the reserved peak: ``rounding``
#: and ``optimizer_big`` follow from the allocator's rules (1: the whole block; a free fit gave 0.98 for the
#: latter); the others were fitted (non-negative least absolute deviations of the relative error of the reserved
#: peak) on two thirds of the trace matrix's workloads (``bench/allocator_matrix.py --fit``, which prints them and
#: the error on the third held out) — replays of the real code's allocation streams through ``memory/allocator.py``.
CACHE_SHARES: dict[str, float] = {
    "rounding": 1.0, "optimizer_big": 1.0, "activations": 0.156, "temporaries": 0.079, "transient_moe": 0.663,
    "prefill_attention": 3.083, "optimizer_temp": 0.013, "loss_head": 0.296, "fsdp_gather": 1.11,
    "fsdp_gather_adapters": 1.024, "fsdp_reduce": 1.347,
    # the cache of the workload's own allocation stream replayed through the allocator model (memory/synthetic.py),
    # where that stream is written: the whole of it, nothing fitted
    "replayed": 1.0,
    # QLoRA (bitsandbytes 4-bit) is not traceable, so not in the matrix: the shares it had before (transient 0.08,
    # loss churn 0.25), which tests/test_qlora_bnb.py holds within 10% of Unsloth's published HF+FA2 lengths
    "qlora_transient": 0.08, "qlora_loss_head": 0.25,
}
#: framework-version spread: of the persistent tensors (weights, gradients, optimizer states: exact per tensor, but
#: kept in other dtypes or copies by some versions) and of the transient ones (activations, temporaries, loss head,
#: optimizer temporaries: what versions, kernels and recipes change most), calibrated on the published records
#: (bench/range_coverage.py)
VERSION_SPREAD = 0.0
VERSION_SPREAD_TRANSIENT = 0.20
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


@lru_cache(maxsize=64)
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


def cache_features(phases: Mapping[str, Mapping[str, int]], spec: Any, w: Any, dtype_bytes: float,
                   moe: bool, loss_head: int = 0, workspace: int = CUBLAS_WORKSPACE) -> dict[str, float]:
    """The bytes :func:`allocator_cache` weighs (:data:`CACHE_SHARES`), each one a set of blocks the caching
    allocator keeps free at the reserved peak for a reason of its rules (``memory/allocator.py``):

    * ``rounding``: the 2 MiB rounding of every persistent tensor of at least 10 MiB (exact, share 1);
    * ``activations`` / ``temporaries`` / ``transient_moe``: the blocks the peak phase's transients (saved
      activations; temporaries with the loss head) freed in an order and at sizes the next requests do not fit
      (best fit, no split under 1 MiB left); MoE's routed groups have data-dependent sizes (not under FSDP2, where
      the unsharded layer's freed blocks take them);
    * ``replayed``: where ``memory/synthetic.py`` writes the workload's allocation stream (inference prefill of
      the Llama layout; two training steps of Llama / Qwen2 on one GPU), the cache of its replay through the
      allocator model (after the cuBLAS ``workspace``, under the workload's ``alloc_conf``), which takes the place
      of every other transient term;
    * ``prefill_attention``: inference reaches its peak in a layer's MLP, while the blocks the attention part
      (q, k, v, their rotary copies, the attention output, the fp32 norm upcasts) freed are cached, too small for
      the MLP's requests — in proportion to the q/k/v bytes;
    * ``optimizer_temp``: the optimizer step's foreach temporaries that the blocks backward freed do not hold, and
      ``optimizer_big``: the largest tensor (the embedding / head). The first optimizer step leaves its
      temporaries' blocks cached, one per parameter; the next forward's requests take the smallest that fits (best
      fit), so when its largest request (:func:`largest_request`) is larger than every layer weight's block it
      splits the embedding-sized one, and the next step's embedding-sized temporary needs a new segment;
    * ``loss_head``: training's logits and loss, re-requested in the next step after the optimizer step took
      their blocks;
    * FSDP2's side-stream pools (per-stream blocks): ``fsdp_gather`` / ``fsdp_gather_adapters`` the all-gather
      stream's buffers for the two largest units gathered at once (decoder layers, the embedding, the untied
      head), ``fsdp_reduce`` the reduce-scatter stream's unsharded gradients of the largest unit in the reduce
      dtype (only when the base weights train).
    """
    from ..model.tensors import largest_layer, largest_tensor

    steps = {p: c for p, c in phases.items() if p != "load"} or dict(phases)
    peak = max(steps.values(), key=_tensors)
    t_peak = _transient(peak)
    f = dict.fromkeys(CACHE_SHARES, 0.0)
    if w.quant == "none" and w.method != "qlora":
        persistent = sum(peak.get(k, 0) for k in ("weights", "master_weights", "gradients", "optimizer_states"))
        f["rounding"] = rounding_share(spec, dtype_bytes) * persistent
    fsdp = w.training and w.num_gpus > 1 and w.strategy.is_fsdp
    if w.training and not fsdp:
        from .synthetic import train_cache

        replayed = train_cache(spec, w, dtype_bytes, (workspace,), alloc_config(getattr(w, "alloc_conf", None)))
        if replayed is not None:  # two training steps replayed, the weights in them: their rounding too
            f["rounding"] = 0.0
            f["replayed"] = float(replayed)
            return f
    if w.training:
        if moe:
            if not fsdp:  # under FSDP2 the unsharded MoE layer's freed blocks hold its routed groups
                f["transient_moe"] = float(t_peak)
        elif w.method == "qlora":  # not traceable: no replay to fit on; the calibration before the matrix grew
            f["qlora_transient"] = float(t_peak)
        else:
            f["activations"] = float(peak.get("activations", 0))
            f["temporaries"] = float(peak.get("temporaries", 0) + peak.get("loss_head", 0))
        opt = peak.get("optimizer_temp", 0)
        f["optimizer_temp"] = float(opt)
        big, layer_linear = trained_blocks(spec, w)
        if opt and w.method in ("full", "freeze") and largest_request(spec, w, dtype_bytes) > \
                layer_linear * dtype_bytes:
            f["optimizer_big"] = float(big * dtype_bytes)
        f["qlora_loss_head" if w.method == "qlora" else "loss_head"] = float(
            max([c.get("loss_head", 0) for c in phases.values()] + [loss_head]))
    else:
        from .synthetic import prefill_cache

        replayed = prefill_cache(spec, w, dtype_bytes, (workspace,), alloc_config(getattr(w, "alloc_conf", None)))
        if replayed is not None:  # the replay allocates the weights too: their rounding is in it
            f["rounding"] = 0.0
            f["replayed"] = float(replayed)
            return f
        tokens = w.batch * w.seq
        f["prefill_attention"] = float(tokens * dtype_bytes * (2 * spec.q_dim + 2 * spec.kv_dim))
    if fsdp:
        # FSDP2 units as accelerate / torchtitan build them: each decoder layer, the embedding, the norm with the
        # head (untied); tied, the embedding is the root's. Two units are gathered at once (the next one is
        # prefetched): the two largest
        embed, layer = largest_tensor(spec) * dtype_bytes, largest_layer(spec) * dtype_bytes
        units = sorted([layer] * min(2, spec.num_layers) + [embed] * (1 if spec.tie_embeddings else 2))
        two = sum(units[-2:])
        f["fsdp_gather" if w.method in ("full", "freeze") else "fsdp_gather_adapters"] = float(two)
        if w.method in ("full", "freeze"):
            reduce = w.profile.fsdp_policy[1] if w.precision == "mixed" and w.profile.fsdp_policy else dtype_bytes
            f["fsdp_reduce"] = float(max(embed, layer) * reduce / dtype_bytes)
    return f


def trained_blocks(spec: Any, w: Any) -> tuple[int, int]:
    """Elements of the largest trained tensor and of the largest trained linear weight inside the layers (the
    sizes of the optimizer step's per-parameter temporaries): every tensor for full training; for freezing, the
    ``--train-modules`` named, or all but the embeddings (``memory/trainable.py``'s rule)."""
    return _trained_blocks(spec, w.method == "freeze", tuple(w.train_modules or ()))


@lru_cache(maxsize=64)
def _trained_blocks(spec: Any, freeze: bool, modules: tuple[str, ...]) -> tuple[int, int]:
    from ..model.tensors import groups

    def trained(t: Any) -> bool:
        if not freeze:
            return True
        if modules:
            return t.module in modules
        return t.role not in ("embedding", "position_embedding")

    big = linear = 0
    for g in groups(spec):
        t = g.tensor
        if trained(t):
            n = t.numel // t.count
            big = max(big, n)
            if t.linear and t.layer is not None:
                linear = max(linear, n)
    return big, linear


def largest_request(spec: Any, w: Any, dtype_bytes: float) -> float:
    """The largest single transient a training step requests: the fp32 logits of one cross-entropy chunk, or an
    MLP intermediate (tokens × intermediate size)."""
    tokens = w.batch * w.seq
    return max(tokens * spec.vocab_size * 4 / max(1, w.ce_chunks), tokens * spec.intermediate_size * dtype_bytes)


def allocator_cache(phases: Mapping[str, Mapping[str, int]], spec: Any, w: Any, dtype_bytes: float,
                    moe: bool, loss_head: int = 0, workspace: int = CUBLAS_WORKSPACE) -> int:
    """The analytic estimate of ``reserved − allocated`` at the peak: :func:`cache_features` weighed by
    :data:`CACHE_SHARES`; ``loss_head``: the loss head's forward bytes where no phase's peak moment shows them;
    ``workspace``: torch's cuBLAS workspace, the first allocation of a replayed stream."""
    f = cache_features(phases, spec, w, dtype_bytes, moe, loss_head, workspace)
    return max(0, int(sum(CACHE_SHARES[k] * v for k, v in f.items())))


def device_memory(comps: Mapping[str, int], w: Any, *, cublas_workspace: int, cache: int,
                  context: int = CONTEXT_NOMINAL, torch_allocator: bool = True, basis: str = "calibrated",
                  allocator: Optional[dict[str, Any]] = None, symm_mem: int = 0) -> DeviceMemory:
    """The three numbers for the peak phase's components ``comps`` (which hold ``overhead`` = context + cuBLAS
    workspace + NCCL, and ``allocator_cache`` = ``cache``)."""
    tensors = _tensors(comps)
    multi = w.num_gpus > 1 and (w.training or w.tp_degree > 1 or w.pp > 1)
    nccl = NCCL if multi else 0
    allocated = tensors + cublas_workspace if torch_allocator else tensors
    reserved = allocated + cache
    device = reserved + context + nccl + symm_mem
    terms = {"cublas_workspace": cublas_workspace, "allocator_cache": cache, "cuda_context": context, "nccl": nccl}
    if symm_mem:  # async TP's symmetric-memory workspace: mapped outside torch's allocator (memory/async_tp.py)
        terms["symm_mem"] = symm_mem
    widened = ["context", "allocator", "version"]
    transient = _transient(comps) + comps.get("optimizer_temp", 0)
    spread = int(VERSION_SPREAD * (tensors - transient) + VERSION_SPREAD_TRANSIENT * transient)
    low_a, high_a = allocated - spread, allocated + spread
    if w.training and not w.packing:
        low_a -= int(UNPACKED_SHORTER * comps.get("activations", 0))
        widened.append("unpacked")
    low_r, high_r = low_a, high_a + 2 * cache
    low_d = low_r + CONTEXT_LOW + symm_mem
    high_d = high_r + CONTEXT_HIGH + (NCCL_HIGH if multi else 0) + symm_mem
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
