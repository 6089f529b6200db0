"""The Python API: ``vramscope.estimate(...)`` returns the same :class:`Estimate` the CLI prints.

>>> import vramscope
>>> e = vramscope.estimate("llama-3-8b", task="inference", seq=8192)
>>> e.total_bytes, e.components["kv_cache"]
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from functools import lru_cache
from typing import Any, Iterable, Optional, Union

from .engines.base import engine_for
from .errors import Opt, Text, VramscopeError
from .estimators.analytic import estimate_analytic
from .estimators.common import pick_peak
from .estimators.seed import estimate_seed
from .gpus import find_gpu
from .i18n import register
from .memory.device import (DeviceMemory, alloc_config, allocator_cache, allocator_retry, device_memory,
                            engine_memory)
from .memory.overhead import CONTEXT_NOMINAL, NCCL
from .result import Assumption, Estimate, ModelInfo
from .sources import ResolvedModel, resolve, resolve_params
from .units import parse_bool, parse_count, parse_int, shown
from .workload import Workload, check_keywords, make_workload, workload_keywords

#: shape overrides of a bare ``params=`` model, and their ranges
SHAPE_FIELDS = {"layers": (1, 10_000), "hidden": (1, 1_000_000), "heads": (1, 100_000), "kv_heads": (1, 100_000),
                "head_dim": (1, 100_000), "intermediate": (1, 10_000_000), "vocab": (1, 100_000_000)}
#: the longest MODEL accepted (a path longer than this is not one a file system holds)
MAX_MODEL_TEXT = 4096


def _model_text(model: Any) -> Optional[str]:
    """MODEL as text: a str or path-like; None or empty means none was given."""
    if model is None:
        return None
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise VramscopeError("bad_type", field="MODEL", value=shown(model), kind=type(model).__name__,
                             expected="a catalog name, a Hub id or a path (a string)")
    if len(model) > MAX_MODEL_TEXT or not model.isprintable():
        raise VramscopeError("bad_choice", field="MODEL", value=shown(model),
                             allowed="a catalog name, a Hub id or a path (printable, at most 4096 characters)")
    return model if model.strip() else None


def load_model(model: Optional[str] = None, params: Union[str, int, float, None] = None, hub: bool = True,
               **shape: Any) -> ResolvedModel:
    """Resolve MODEL (catalog name, Hub id, local path) or a bare ``params`` count with optional shape.

    The shape overrides (``layers``, ``hidden``, ``heads``, ``kv_heads``, ``head_dim``, ``intermediate``,
    ``vocab``) shape a ``params`` model only; given with MODEL they are refused, as on the command line."""
    check_keywords(shape, known=tuple(SHAPE_FIELDS), function="vramscope.load_model")
    given = {k: v for k, v in shape.items() if v is not None}
    name = _model_text(model)
    hub = parse_bool(hub, "hub")
    if name is not None:
        if params is not None:
            raise VramscopeError("conflict", field="params", reason=Text("r_model_or_params", params=Opt("params")))
        if given:
            field = "--" + next(iter(given)).replace("_", "-")
            raise VramscopeError("shape_needs_params", field=field, model=shown(name))
        if name.strip().startswith("~") and os.path.expanduser(name.strip()) == name.strip():
            raise VramscopeError("file_not_found", path=shown(name))  # ~nosuchuser: no home to expand
        try:
            return resolve(name, hub=hub)
        except OSError as e:  # a name the file system refuses to look at (too long, a device, no permission)
            raise VramscopeError("file_unreadable", path=shown(name), detail=shown(e.strerror or type(e).__name__))
        except VramscopeError as e:  # what the user typed, echoed in the message, shown bounded on one line
            typed = {k: shown(v, 200) for k, v in e.params.items() if k in ("name", "path", "value", "origin")}
            if not typed or all(e.params[k] == v for k, v in typed.items()):
                raise
            raise VramscopeError(e.key, **{**e.params, **typed}) from None
    if params is None:
        raise VramscopeError("no_model")
    clean = {key: parse_int(value, "--" + key.replace("_", "-"), *SHAPE_FIELDS[key]) for key, value in given.items()}
    return resolve_params(parse_count(params), **clean)


register({"r_model_or_params": {"en": "give either MODEL or {params}, not both",
                                "zh": "请给出 MODEL 或 {params} 之一，不要同时给出"}})


def gpu_names(gpus: Any, field: str = "gpus") -> tuple[str, ...]:
    """``gpus`` as a tuple of names: one name, a list or tuple of names, or None (none)."""
    if gpus is None:
        return ()
    if isinstance(gpus, str):
        return (gpus,)
    if isinstance(gpus, (list, tuple)) and all(isinstance(g, str) for g in gpus):
        return tuple(gpus)
    raise VramscopeError("bad_type", field=field, value=shown(gpus), kind=type(gpus).__name__,
                         expected="a GPU name or size (rtx-4090, 24GB), or a list of them")


@lru_cache(maxsize=64)
def _lora_layers(spec: Any) -> tuple[str, ...]:
    """The module names LoRA can target in this model (each adapts at least one parameter)."""
    from .memory.trainable import lora_params
    from .model.tensors import groups

    kinds = [g.tensor for g in groups(spec)]  # identical layers once: the cost does not grow with the depth
    names = dict.fromkeys(t.module for t in kinds if t.linear and t.role not in ("lm_head", "expert"))
    if any(t.role == "expert" for t in kinds):
        names["experts"] = None
    return tuple(n for n in names if lora_params(spec, 1, (n,)) > 0)


def _listed(names: Iterable[str], limit: int = 24) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def check_workload_for_model(model: ResolvedModel, w: Workload) -> tuple[Workload, tuple[Assumption, ...]]:
    """Where the workload meets the model: names of modules it has, lengths it can take.

    Refuses LoRA targets and trained modules the model does not have (they would train nothing), a ``--seq``
    beyond learned absolute position embeddings (a hard limit); notes a length beyond a RoPE model's trained
    context; caps a default ``--seq`` to the model's context. Returns the workload to estimate and notes."""
    spec = model.spec
    notes: tuple[Assumption, ...] = ()
    if w.training and w.method in ("lora", "qlora"):
        from .memory.trainable import lora_params

        available = _lora_layers(spec)
        recipe_default = w.lora_targets == w.profile.lora_targets != ("all-linear",)  # a recipe's own list
        unknown = [] if recipe_default else [t for t in w.lora_targets if t != "all-linear" and t not in available]
        if unknown or not lora_params(spec, 1, w.lora_targets):
            raise VramscopeError("lora_targets_unknown", field="lora_targets", names=shown(",".join(unknown or w.lora_targets), 120),
                                 model=shown(spec.name), available=_listed(available))
    if w.training and w.method == "freeze" and w.train_modules:
        from .model.tensors import groups

        modules = list(dict.fromkeys(g.tensor.module for g in groups(spec) if g.tensor.module))
        unknown = [m for m in w.train_modules if m not in modules]
        if unknown:
            raise VramscopeError("train_modules_unknown", field="train_modules", names=shown(",".join(unknown), 120),
                                 model=shown(spec.name), available=_listed(modules))
    learned = spec.learned_positions
    ctx = learned or (0 if spec.relative_attention_buckets else spec.max_position_embeddings)
    if ctx and w.seq > ctx and w.seq_default:
        notes += (Assumption("a_seq_default_capped", {"seq": ctx, "model": spec.name, "default": w.seq,
                                                      "o_seq": Opt("seq")}),)
        w = replace(w, seq=ctx)
    for field, length in (("--seq", w.seq), ("--max-model-len", w.max_model_len or 0)):
        if ctx and length > ctx:
            if learned:
                raise VramscopeError("seq_beyond_positions", field=field, seq=length, model=shown(spec.name), n=ctx)
            notes += (Assumption("a_beyond_context", {"seq": f"{length:,}", "model": spec.name, "n": f"{ctx:,}",
                                                      "factor": f"{math.ceil(length / ctx * 100) / 100:g}"}),)
    return w, notes


def _finite(v: Any) -> bool:
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))


def _impossible(component: str, value: Any) -> None:
    raise VramscopeError("impossible_result", component=component, value=shown(value))


def check_estimate(e: Estimate) -> Estimate:
    """The last line of defence: an estimate that cannot be true (a negative or non-finite component, a zero
    total, more active than total parameters, a range that misses the total) is refused, never printed."""
    for phase, comps in e.phases.items():
        for k, v in comps.items():
            if not (_finite(v) and v >= 0):
                _impossible(f"{phase}.{k}", v)
    for k, v in e.components.items():
        if not (_finite(v) and v >= 0):
            _impossible(k, v)
    if not (_finite(e.total_bytes) and e.total_bytes > 0):
        _impossible("total_bytes", e.total_bytes)
    low, high = e.range_bytes
    if not (_finite(low) and _finite(high) and 0 <= low <= e.total_bytes <= high):
        _impossible("range_bytes", f"{low}..{high}")
    m = e.model
    if not (_finite(m.params) and m.params > 0):
        _impossible("model.params", m.params)
    if not (_finite(m.active_params) and 0 < m.active_params <= m.params):
        _impossible("model.active_params", m.active_params)
    if not (_finite(m.trainable_params) and m.trainable_params >= 0):
        _impossible("model.trainable_params", m.trainable_params)
    for g in e.gpus:
        if not (_finite(g.headroom_bytes) and _finite(g.usable_bytes)):
            _impossible(f"gpus.{g.name}", g.headroom_bytes)

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, bool):
            return
        if isinstance(obj, (int, float)):
            if not _finite(obj):
                _impossible(path, obj)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk(e.engine, "engine")
    return e


def _with_device_terms(model: ResolvedModel, w: Workload, phases: dict, ov: Any, extra: dict
                       ) -> tuple[dict, str, DeviceMemory]:
    """Each phase's runtime overhead (CUDA context + cuBLAS workspace, + NCCL on several GPUs) and, for engines on
    torch's caching allocator, the cache it keeps beyond the allocated peak; the peak and its three numbers."""
    from .estimators.common import compute_dtype, dtype_bytes

    engine = engine_for(w)
    for phase, comps in phases.items():  # refused before anything is derived from an impossible component
        for k, v in comps.items():
            if not (_finite(v) and v >= 0):
                _impossible(f"{phase}.{k}", v)
    cache = 0
    if engine.caching_allocator:
        moe = model.active_params != model.params
        cache = allocator_cache(phases, model.spec, w, dtype_bytes(compute_dtype(model, w)), moe,
                                loss_head=extra.get("_loss_head", 0), workspace=ov.nominal - CONTEXT_NOMINAL)
    extra.pop("_loss_head", None)
    multi = w.num_gpus > 1 and (w.training or w.tp_degree > 1 or w.pp > 1)
    nccl = NCCL if multi and engine.caching_allocator else 0
    # async TP (memory/async_tp.py): the symmetric-memory workspace, mapped from the first forward on, and the
    # side stream's cuBLAS workspace
    symm = extra.pop("_symm_mem", 0)
    side = ov.nominal - CONTEXT_NOMINAL if symm else 0
    for name, p in phases.items():
        p["overhead"] = ov.nominal + nccl + (symm + side if name != "load" else 0)
        if cache and name != "load":
            p["allocator_cache"] = cache
    for rank in extra.get("pipeline", {}).get("ranks", []):
        rank["peak_bytes"] += ov.nominal + nccl + cache + symm + side
    peak = pick_peak(phases)
    total = sum(phases[peak].values())
    if engine.caching_allocator:
        memory = device_memory(phases[peak], w, cublas_workspace=ov.nominal - CONTEXT_NOMINAL + side, cache=cache,
                               symm_mem=symm if peak != "load" else 0)
    else:
        own = phases[peak].get("engine_overhead", 0) + phases[peak].get("overhead", 0)
        memory = engine_memory(total, total - own, total - ov.nominal + ov.low, total - ov.nominal + ov.high)
    return phases, peak, memory


def estimate_resolved(model: ResolvedModel, workload: Workload, gpus: Iterable[str] = ()) -> Estimate:
    """Estimate for an already resolved model and a validated workload."""
    extra: dict = {}
    gpu_objs = tuple(find_gpu(g) for g in gpu_names(gpus))
    workload, checked = check_workload_for_model(model, workload)
    engine = engine_for(workload)
    if workload.estimator == "seed":
        phases, notes, trainable = estimate_seed(model, workload)
        peak = "steady"
        total = sum(phases[peak].values())
        low, high = total, total
        notes = (Assumption("a_seed_label", {"o_analytic": Opt("estimator", "analytic")}),) + notes
        memory = engine_memory(total, total, low, high)
    else:
        phases, notes, trainable, transient, extra = estimate_analytic(model, workload, gpu_objs)
        ov = engine.runtime_overhead(transient, gpu_objs[0] if gpu_objs else None)
        phases, peak, memory = _with_device_terms(model, workload, phases, ov, extra)
        total = sum(phases[peak].values())
        low, high = memory.device_range
        notes = notes + (Assumption(engine.overhead_note),)
        conf = getattr(workload, "alloc_conf", "")
        if conf and engine.caching_allocator:
            alloc_config(conf)  # refused here when malformed
            from .memory.synthetic import covered, covered_training

            from .estimators.common import compute_dtype, dtype_bytes

            a = dtype_bytes(compute_dtype(model, workload))
            key = ("a_alloc_conf_replayed" if covered(model.spec, workload, a) else "a_alloc_conf_replayed_train"
                   if covered_training(model.spec, workload, a) else "a_alloc_conf_analytic")
            notes = notes + (Assumption(key, {"conf": conf}),)
        if workload.grad_checkpointing and peak == "optimizer_step":
            notes = notes + (Assumption("a_ckpt_no_gain"),)
    verdicts = engine.verdicts(gpu_objs, total, high, extra)
    if memory is not None and memory.basis != "engine":
        verdicts = tuple(replace(v, allocator_retry=allocator_retry(memory, v.usable_bytes)) for v in verdicts)
    info = ModelInfo(name=model.spec.name, params=model.params, active_params=model.active_params,
                     trainable_params=trainable, source=model.kind, origin=model.origin,
                     storage=model.stored_format, exact_shape=model.exact_shape)
    source_notes = tuple(Assumption(n.key, n.params) if isinstance(n, Text) else Assumption("a_note", {"text": n})
                         for n in model.notes)
    return check_estimate(Estimate(model=info, estimator=workload.estimator, task=workload.task, total_bytes=total,
                                   range_bytes=(low, high), components={k: v for k, v in phases[peak].items()},
                                   peak_phase=peak, phases=phases, workload=workload.to_dict(),
                                   assumptions=checked + notes + source_notes, gpus=verdicts, engine=extra,
                                   memory=memory))


def estimate(model: Optional[str] = None, *, params: Union[str, int, float, None] = None,
             gpus: Iterable[str] = (), hub: bool = True, layers: Any = None, hidden: Any = None,
             heads: Any = None, kv_heads: Any = None, head_dim: Any = None, intermediate: Any = None,
             vocab: Any = None, **workload: Any) -> Estimate:
    """Estimate GPU memory for MODEL (or ``params=``) under the workload options of :func:`make_workload`.

    Every argument is validated as the command line validates it: a bad value, an unknown keyword or an option
    that would be ignored raises :class:`vramscope.VramscopeError` with a message naming the option.
    """
    check_keywords(workload, known=workload_keywords() + ("model", "params", "gpus", "hub", *SHAPE_FIELDS),
                   function="vramscope.estimate")
    names = gpu_names(gpus)
    resolved = load_model(model, params, hub=hub, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                          head_dim=head_dim, intermediate=intermediate, vocab=vocab)
    return estimate_resolved(resolved, make_workload(**workload), names)


def fit(model: Optional[str] = None, *, gpu: str = "rtx-4090", params: Union[str, int, float, None] = None,
        hub: bool = True, layers: Any = None, hidden: Any = None, heads: Any = None, kv_heads: Any = None,
        head_dim: Any = None, intermediate: Any = None, vocab: Any = None, **workload: Any):
    """The planning answer for MODEL on ``gpu``: fits?, largest batch and context, fewest GPUs, suggestions.

    Returns a :class:`vramscope.plan.FitAnswer` (``.to_dict()`` gives the ``vramscope.fit/1`` JSON). Arguments
    are validated as in :func:`estimate`.
    """
    from .plan import fit as plan_fit

    check_keywords(workload, known=workload_keywords() + ("model", "params", "gpu", "hub", *SHAPE_FIELDS),
                   function="vramscope.fit")
    if not isinstance(gpu, str):
        raise VramscopeError("bad_type", field="gpu", value=shown(gpu), kind=type(gpu).__name__,
                             expected="a GPU name or size (rtx-4090, 24GB)")
    resolved = load_model(model, params, hub=hub, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                          head_dim=head_dim, intermediate=intermediate, vocab=vocab)
    return plan_fit(resolved, make_workload(**workload), find_gpu(gpu))
