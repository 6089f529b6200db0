"""llama.cpp's ``--fit``: the parameters it changes so that the model fits the free memory of each device.

Ported from ``common/fit.cpp`` ``common_params_fit_impl`` (ggml-org/llama.cpp as synced at 82bb48500, 2026-08-07,
read in unslothai/llama.cpp d32676d; the code Ollama v0.31-v0.32.15 builds, ``LLAMA_CPP_VERSION`` b9840-b10488;
on by default in ``llama-server``: ``common.h`` ``fit_params = true``, ``fit_params_target`` 1024 MiB per
device, ``fit_params_min_ctx`` 4096). llama.cpp measures each trial by loading the model and a context with
``no_alloc`` and summing every device's model, context and compute buffers (``llama_get_memory_breakdown``);
vramscope measures the same trials with its own per-device buffers (``engines/llamacpp.py``
:func:`~vramscope.engines.llamacpp.llamacpp_devices`), so this module is the search alone, over a ``measure``
callback:

1. measure the parameters as given; when every device keeps at least its margin (``--fit-target``) free, change
   nothing;
2. only when the context was left to the model (``-c 0``) and the model's training context exceeds
   ``--fit-ctx``: measure at ``--fit-ctx`` and interpolate the context linearly between the two to the total
   memory target (several devices: less ``(nd + 1) × model per layer / 2``, ``/ 6`` for MoE), rounded down to a
   multiple of 256; one device then stops there;
3. give up (the parameters stay as they were, "failed to fit") when ``-ngl``, ``--tensor-split`` or ``-ot`` were
   set, or ``-sm row``; MoE models: measure once with every expert tensor in host memory;
4. fill the devices from the last to the first with whole layers (MoE: "dense-only" layers, whose expert tensors
   stay in host memory), each by the method of false position between the layers it has and all those still
   unassigned, stopping at the most that still meet ``free - margin``; the last device holds the output layer;
5. MoE models whose dense parts all fit: turn dense-only layers into full layers from the first device on, again by
   false position, and try to place part of one more layer (``UP``, then ``GATE``, else ``ATTN`` overflow to the
   next device or host memory).

The result is ``-ngl`` (the sum), ``--tensor-split`` (layers per device) and the tensor overrides; the trace keeps
what ``common_params_fit_impl`` prints (``LOG_TRC``, shown with ``-lv 4``), in its words.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

MiB = 2**20
#: common/common.h defaults
FIT_TARGET = 1024 * MiB
FIT_MIN_CTX = 4096
LAYER_FRACTION_ATTN, LAYER_FRACTION_UP, LAYER_FRACTION_GATE, LAYER_FRACTION_MOE = 1, 2, 3, 4
#: the partial layer's overflow types as common/fit.cpp logs them
FRACTION_NAMES = {LAYER_FRACTION_ATTN: "ATTN", LAYER_FRACTION_UP: "UP", LAYER_FRACTION_GATE: "GATE"}
#: the partial layer's next overflow type after a trial, by (this type, whether it fitted); none after the last
FRACTION_NEXT = {(LAYER_FRACTION_UP, True): LAYER_FRACTION_GATE, (LAYER_FRACTION_UP, False): LAYER_FRACTION_ATTN}
_U32 = 2**32


@dataclass(frozen=True)
class Ngl:
    """``ngl_t``: layers of one device, of which ``n_part`` partial (their expert tensors elsewhere)."""

    n_layer: int = 0
    n_part: int = 0
    overflow_type: int = LAYER_FRACTION_MOE

    @property
    def n_full(self) -> int:
        return self.n_layer - self.n_part


@dataclass(frozen=True)
class Measured:
    """One trial's projected use per device: total (model + context + compute) and model bytes."""

    total: tuple[int, ...]
    model: tuple[int, ...]
    host_total: int = 0


#: (n_ctx, per-device layers or None for the parameters as given, each device's overflow target
#: (None: host memory), every expert tensor in host memory) -> Measured
Measure = Callable[[int, Optional[Sequence[Ngl]], Sequence[Optional[int]], bool], Measured]


@dataclass
class FitResult:
    status: str  # "unchanged" (fits as given), "fitted", "failed" (could not, parameters as given)
    n_ctx: int  # 0: the model's training context
    ngl: Optional[list[Ngl]] = None  # None: the parameters as given
    overflow: list[Optional[int]] = field(default_factory=list)
    reason: str = ""
    trace: list[str] = field(default_factory=list)
    projected: Optional[Measured] = None  # the initial measurement

    @property
    def n_gpu_layers(self) -> Optional[int]:
        return None if self.ngl is None else sum(n.n_layer for n in self.ngl)

    @property
    def tensor_split(self) -> Optional[list[int]]:
        return None if self.ngl is None or len(self.ngl) < 2 else [n.n_layer for n in self.ngl]

    @property
    def overflowing(self) -> int:
        return 0 if self.ngl is None else sum(n.n_part for n in self.ngl)


class _Failed(Exception):
    pass


def _div(a: int, b: int) -> int:
    """C integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _mib(b: int) -> int:
    return _div(b, MiB)


def overrides(ngl: Sequence[Ngl], overflow: Sequence[Optional[int]], hp_ngl: int
              ) -> dict[int, tuple[int, Optional[int]]]:
    """``set_ngl_tensor_split_tbo``'s tensor overrides: layer -> (fraction, device or None for host memory)."""
    n_gpu = sum(n.n_layer for n in ngl)
    il0 = hp_ngl + 1 - n_gpu
    out: dict[int, tuple[int, Optional[int]]] = {}
    for d, n in enumerate(ngl):
        il0 += n.n_full
        for il in range(il0, il0 + n.n_part):
            out[il] = (n.overflow_type, overflow[d]) if il == il0 else (LAYER_FRACTION_MOE, None)
        il0 += n.n_part
    return out


def fit_params(measure: Measure, *, free: Sequence[int], names: Sequence[str], hp_ngl: int, n_ctx_train: int,
               n_expert: int, n_ctx: int = 0, margins: Optional[Sequence[int]] = None,
               n_ctx_min: int = FIT_MIN_CTX, n_gpu_layers: Optional[int] = None, user_tensor_split: bool = False,
               user_overrides: bool = False, split_row: bool = False,
               total_mem: Optional[Sequence[int]] = None, trace: Optional[list[str]] = None) -> FitResult:
    """``common_params_fit_impl`` over ``measure`` (module docstring). ``free``: each device's free memory
    (``total_mem``: its size, for the printout); ``hp_ngl``: the repeating layers (``n_layer``); ``n_ctx`` 0: left
    to the model; ``n_gpu_layers``: ``-ngl`` when the user set it."""
    user_ngl = n_gpu_layers is not None
    total_mem = list(total_mem) if total_mem is not None else list(free)
    nd = len(free)
    margins = list(margins) if margins is not None else [FIT_TARGET] * max(nd, 1)
    if len(margins) < nd:
        margins += [margins[-1]] * (nd - len(margins))
    trace = [] if trace is None else trace  # the caller's list: what was printed even if ``measure`` raises
    width = max((len(x) for x in names), default=0)
    names = [x.ljust(width) for x in names]
    res = FitResult(status="unchanged", n_ctx=n_ctx, trace=trace)
    calls: list[int] = [0]

    def log(text: str) -> None:
        trace.append(text)

    def measured(ctx: int, ngl: Optional[Sequence[Ngl]], ovf: Sequence[Optional[int]], cpu_moe: bool = False
                 ) -> Measured:
        calls[0] += 1
        return measure(ctx, ngl, ovf, cpu_moe)

    try:
        full = measured(n_ctx, None, [None] * nd)
        res.projected = full
        if nd == 0:
            raise _Failed("was unable to fit model into system memory by reducing context, abort")
        proj_free = [free[i] - full.total[i] for i in range(nd)]
        sum_free, sum_used, sum_model = sum(free), sum(full.total), sum(full.model)
        sum_proj_free = sum(proj_free)
        if nd > 1:
            log("projected memory use with initial parameters [MiB]:")
            for i in range(nd):
                log(f"  - {names[i]}: {_mib(total_mem[i]):6d} total, {_mib(full.total[i]):6d} used, "
                    f"{_mib(proj_free[i]):6d} free vs. target of {_mib(margins[i]):6d}")
        log(f"projected to use {_mib(sum_used)} MiB of device memory vs. {_mib(sum_free)} MiB of free device memory")
        if nd == 1 and proj_free[0] >= margins[0]:
            log(f"will leave {_mib(proj_free[0])} >= {_mib(margins[0])} MiB of free device memory, no changes needed")
            return res
        if nd > 1 and all(proj_free[i] >= margins[i] for i in range(nd)):
            log("targets for free memory can be met on all devices, no changes needed")
            return res
        # step 2: the context
        surplus = sum_proj_free - sum(margins[:nd])
        if surplus < 0:
            if nd <= 1:
                log(f"cannot meet free memory target of {_mib(margins[0])} MiB, need to reduce device memory by "
                    f"{_mib(-surplus)} MiB")
            else:
                log(f"cannot meet free memory targets on all devices, need to use {_mib(-surplus)} MiB less in total")
            if n_ctx == 0:
                if n_ctx_train > n_ctx_min:
                    target = sum_free - sum(margins[:nd])
                    if nd > 1:
                        ngl_cap = (n_gpu_layers % _U32) if user_ngl else _U32 - 1  # uint32_t(-1): every layer
                        per_layer = _div(sum_model, min(ngl_cap, hp_ngl) or 1)
                        target -= _div((nd + 1) * per_layer, 2 if n_expert == 0 else 6)
                    at_min = measured(n_ctx_min, None, [None] * nd)
                    used_min = sum(at_min.total)
                    res.n_ctx = n_ctx_min
                    if target > used_min:
                        c = n_ctx_min + _div((n_ctx_train - n_ctx_min) * (target - used_min), sum_used - used_min)
                        c = max(c - c % 256, n_ctx_min)
                        res.n_ctx = c
                        per_ctx = _div(sum_used - used_min, n_ctx_train - n_ctx_min)
                        log(f"context size reduced from {n_ctx_train} to {c} -> need "
                            f"{_mib((n_ctx_train - c) * per_ctx)} MiB less memory in total")
                        if nd <= 1:
                            log("entire model can be fit by reducing context")
                            res.status = "fitted"
                            return res
                        log("entire model should be fit across devices by reducing context")
                    else:
                        log(f"context size reduced from {n_ctx_train} to {n_ctx_min} -> need "
                            f"{_mib(sum_used - used_min)} MiB less memory in total")
                    res.status = "fitted"
                else:
                    log(f"default model context size is {n_ctx_train} which is <= the min. context size of "
                        f"{n_ctx_min} -> no change")
            else:
                log(f"context size set by user to {n_ctx} -> no change")
        ctx = res.n_ctx
        # step 3: preconditions
        if user_ngl:
            raise _Failed(f"n_gpu_layers already set by user to {n_gpu_layers}, abort")
        if nd > 1 and user_tensor_split:
            raise _Failed("model_params::tensor_split already set by user, abort")
        if nd > 1 and split_row:
            raise _Failed("changing weight allocation for LLAMA_SPLIT_MODE_ROW not implemented, abort")
        if user_overrides:
            raise _Failed("model_params::tensor_buft_overrides already set by user, abort")

        def for_layers(ngl: Sequence[Ngl], ovf: Sequence[Optional[int]]) -> list[int]:
            m = measured(ctx, list(ngl), list(ovf))
            log("memory for test allocation by device:")
            for i, n in enumerate(ngl):
                log(f"id={i}, n_layer={n.n_layer:2d}, n_part={n.n_part:2d}, overflow_type={n.overflow_type}, "
                    f"mem={_mib(m.total[i]):6d} MiB")
            return list(m.total)

        surplus_cpu_moe = 0
        if n_expert > 0:
            log("getting device memory data with all MoE tensors moved to system memory:")
            m = measured(ctx, None, [None] * nd, True)
            surplus_cpu_moe = sum(free[i] - m.total[i] - margins[i] for i in range(nd))
            if surplus_cpu_moe > 0:
                log(f"with only dense weights in device memory there is a total surplus of {_mib(surplus_cpu_moe)} MiB")
            else:
                log(f"with only dense weights in device memory there is still a total deficit of "
                    f"{_mib(-surplus_cpu_moe)} MiB")
        targets = [free[i] - margins[i] for i in range(nd)]
        for i in range(nd):
            log(f"id={i}, target={_mib(targets[i])} MiB")
        overflow: list[Optional[int]] = [None] * nd
        ngl = [Ngl() for _ in range(nd)]
        mem = for_layers(ngl, overflow)
        log("filling dense layers back-to-front:" if n_expert == 0 else "filling dense-only layers back-to-front:")

        def step(delta: int, t: int, lo: int, hi: int) -> int:
            s = _div(delta * (t - lo), hi - lo) % _U32  # int64 -> uint32_t
            return min(max(s, 1), delta - 1)

        for d in range(nd - 1, -1, -1):
            unassigned = hp_ngl + 1 - sum(ngl[j].n_layer for j in range(d + 1, nd))
            high = list(ngl)
            part = (unassigned if d < nd - 1 else unassigned - 1) if n_expert > 0 else high[d].n_part
            high[d] = replace(high[d], n_layer=unassigned, n_part=part)
            if high[d].n_layer > 0:
                mem_high = for_layers(high, overflow)
                if mem_high[d] > targets[d]:
                    delta = high[d].n_layer - ngl[d].n_layer
                    log(f"start filling device {d}, delta={delta}")
                    while delta > 1:
                        s = step(delta, targets[d], mem[d], mem_high[d])
                        test = list(ngl)
                        add_part = (s - 1 if d == nd - 1 and test[d].n_part == 0 else s) if n_expert else 0
                        test[d] = replace(test[d], n_layer=test[d].n_layer + s, n_part=test[d].n_part + add_part)
                        mem_test = for_layers(test, overflow)
                        if mem_test[d] <= targets[d]:
                            ngl, mem = test, mem_test
                            log(f"set ngl_per_device[{d}].n_layer={ngl[d].n_layer}")
                        else:
                            high, mem_high = test, mem_test
                            log(f"set ngl_per_device_high[{d}].n_layer={high[d].n_layer}")
                        delta = high[d].n_layer - ngl[d].n_layer
                else:
                    ngl, mem = high, mem_high
                    log(f"set ngl_per_device[{d}].n_layer={ngl[d].n_layer}")
            log(f"  - {names[d]}: {ngl[d].n_layer:2d} layers, {_mib(mem[d]):6d} MiB used, "
                f"{_mib(free[d] - mem[d]):6d} MiB free")
        if n_expert == 0 or surplus_cpu_moe <= 0:
            return _done(res, ngl, overflow)
        # step 4: MoE, dense-only layers into full layers front to back
        start = nd
        for d in range(nd - 1, -1, -1):
            if ngl[d].n_layer > 0:
                start = d
                continue
            break
        log("converting dense-only layers to full layers and filling them front-to-back with overflow to next "
            "device/system memory:")
        d = 0
        while d <= start and start < nd:
            high = list(ngl)
            for j in range(start, nd):
                move = high[j].n_layer if j < nd - 1 else high[j].n_layer - 1
                high[d] = replace(high[d], n_layer=high[d].n_layer + move)
                high[j] = replace(high[j], n_layer=high[j].n_layer - move, n_part=0)
            start_high = nd - 1
            mem_high = for_layers(high, overflow)
            if mem_high[d] > targets[d]:
                delta = high[d].n_full - ngl[d].n_full
                while delta > 1:
                    s = step(delta, targets[d], mem[d], mem_high[d])
                    test = list(ngl)
                    start_test, converted = start, 0
                    while start_test < nd:
                        c = min(s - converted, test[start_test].n_part)
                        test[start_test] = replace(test[start_test], n_layer=test[start_test].n_layer - c,
                                                   n_part=test[start_test].n_part - c)
                        test[d] = replace(test[d], n_layer=test[d].n_layer + c)
                        converted += c
                        if test[start_test].n_part > 0:
                            break
                        start_test += 1
                    mem_test = for_layers(test, overflow)
                    if mem_test[d] <= targets[d]:
                        ngl, mem, start = test, mem_test, start_test
                        log(f"set ngl_per_device[{d}].(n_layer, n_part)=({ngl[d].n_layer}, {ngl[d].n_part}), "
                            f"id_dense_start={start}")
                    else:
                        high, mem_high, start_high = test, mem_test, start_test
                        log(f"set ngl_per_device_high[{d}].(n_layer, n_part)=({high[d].n_layer}, {high[d].n_part}), "
                            f"id_dense_start_high={start_high}")
                    delta = high[d].n_full - ngl[d].n_full
            else:
                ngl, mem, start = high, mem_high, start_high
                log(f"set ngl_per_device[{d}].(n_layer, n_part)=({ngl[d].n_layer}, {ngl[d].n_part}), "
                    f"id_dense_start={start}")
            # part of one more layer
            if start < nd and ngl[start].n_layer > (0 if d < nd - 1 else 1):
                test = list(ngl)
                start_test = start
                test[start_test] = replace(test[start_test], n_layer=test[start_test].n_layer - 1,
                                           n_part=test[start_test].n_part - 1)
                test[d] = replace(test[d], n_layer=test[d].n_layer + 1, n_part=test[d].n_part + 1)
                if test[start_test].n_part == 0:
                    start_test += 1
                ovf_test = list(overflow)
                if d < nd - 1:
                    ovf_test[d] = d + 1
                # LAYER_FRACTION_UP first; then GATE where it fitted, ATTN where it did not
                kind = LAYER_FRACTION_UP
                while kind is not None:
                    test[d] = replace(test[d], overflow_type=kind)
                    log(f"trying to fit one extra layer with overflow_type=LAYER_FRACTION_{FRACTION_NAMES[kind]}")
                    mem_test = for_layers(test, ovf_test)
                    fitted = mem_test[d] < targets[d] and (d + 1 == nd or mem_test[d + 1] < targets[d + 1])
                    if fitted:
                        ngl, overflow, mem, start = list(test), ovf_test, mem_test, start_test
                        log(f"set ngl_per_device[{d}].(n_layer, n_part, overflow_type)=({ngl[d].n_layer}, "
                            f"{ngl[d].n_part}, {FRACTION_NAMES[kind]}), id_dense_start={start}")
                    kind = FRACTION_NEXT.get((kind, fitted))
            log(f"  - {names[d]}: {ngl[d].n_layer:2d} layers ({ngl[d].n_part:2d} overflowing), "
                f"{_mib(mem[d]):6d} MiB used, {_mib(free[d] - mem[d]):6d} MiB free")
            d += 1
        for j in range(start + 1, nd):
            log(f"  - {names[j]}: {ngl[j].n_layer:2d} layers ({ngl[j].n_part:2d} overflowing), "
                f"{_mib(mem[j]):6d} MiB used, {_mib(free[j] - mem[j]):6d} MiB free")
        return _done(res, ngl, overflow)
    except _Failed as e:
        log(f"failed to fit params to free device memory: {e}")
        res.status, res.reason, res.ngl = "failed", str(e), None
        return res


def _done(res: FitResult, ngl: list[Ngl], overflow: list[Optional[int]]) -> FitResult:
    res.status, res.ngl, res.overflow = "fitted", list(ngl), list(overflow)
    res.trace.append("successfully fit params to free device memory")
    return res


# ---- vramscope's measurement: llama.cpp's buffers per device (engines/llamacpp.py) ---------------------------

def llamacpp_measure(model, w, n_devices: int, *, n_ctx_train: int, split_mode: str = "layer",
                     tensor_split: Optional[Sequence[float]] = None, main_gpu: int = 0, kv_offload: bool = True,
                     n_batch: Optional[int] = None, free_bytes: Optional[Sequence[int]] = None,
                     compute_capability: str = "") -> Measure:
    """``common_get_device_memory_data`` with vramscope's buffers: each device's model + KV + compute bytes for the
    trial (``-ngl`` the layers' sum, ``--tensor-split`` their counts, the overflow as tensor overrides)."""
    from .llamacpp import _tensors_shaped, llamacpp_devices

    n_layer = model.spec.num_layers
    tensors = _tensors_shaped(model, w)  # the same for every trial

    def measure(n_ctx: int, ngl: Optional[Sequence[Ngl]], ovf: Sequence[Optional[int]], cpu_moe: bool) -> Measured:
        ww = replace(w, seq=n_ctx or n_ctx_train)
        ts = list(tensor_split) if tensor_split else None
        ovr: Optional[dict[int, tuple[int, Optional[int]]]] = None
        if ngl is None:
            if cpu_moe:
                ovr = {il: (LAYER_FRACTION_MOE, None) for il in range(n_layer)}
        else:
            ww = replace(ww, n_gpu_layers=sum(n.n_layer for n in ngl))
            ts = [float(n.n_layer) for n in ngl] if len(ngl) > 1 else None
            if ts is not None and not any(ts):
                ts = None
            ovr = overrides(ngl, ovf, n_layer)
        devs, host, _ = llamacpp_devices(model, ww, n_devices, split_mode=split_mode, tensor_split=ts,
                                         main_gpu=main_gpu, kv_offload=kv_offload, n_batch=n_batch,
                                         free_bytes=list(free_bytes) if free_bytes else None,
                                         compute_capability=compute_capability, overrides=ovr, tensors=tensors)
        return Measured(total=tuple(d.total for d in devs), model=tuple(d.model_buffer_bytes for d in devs),
                        host_total=host.model_buffer_bytes + host.kv_buffer_bytes + host.compute_buffer_bytes)
    return measure
