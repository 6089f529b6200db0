"""The Python API: ``vramscope.estimate(...)`` returns the same :class:`Estimate` the CLI prints.

>>> import vramscope
>>> e = vramscope.estimate("llama-3-8b", task="inference", seq=8192)
>>> e.total_bytes, e.components["kv_cache"]
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from .errors import VramscopeError
from .estimators.analytic import estimate_analytic
from .estimators.common import pick_peak
from .estimators.seed import estimate_seed
from .gpus import find_gpu, verdict, vllm_verdict
from .memory.overhead import Overhead, cublas_workspace, runtime_overhead
from .result import Assumption, Estimate, ModelInfo
from .sources import ResolvedModel, resolve, resolve_params
from .units import parse_count, parse_int
from .workload import Workload, make_workload


def load_model(model: Optional[str] = None, params: Union[str, int, float, None] = None, hub: bool = True,
               **shape: Any) -> ResolvedModel:
    """Resolve MODEL (catalog name, Hub id, local path) or a bare ``params`` count with optional shape."""
    if model:
        if params is not None:
            raise VramscopeError("conflict", field="--params", reason="give either MODEL or --params, not both")
        return resolve(model, hub=hub)
    if params is None:
        raise VramscopeError("no_model")
    fields = {"layers": (1, 10_000), "hidden": (1, 1_000_000), "heads": (1, 100_000), "kv_heads": (1, 100_000),
              "head_dim": (1, 100_000), "intermediate": (1, 10_000_000), "vocab": (1, 100_000_000)}
    clean = {}
    for key, value in shape.items():
        if value is None:
            continue
        if key not in fields:
            raise VramscopeError("bad_choice", field=key, value=key, allowed=", ".join(fields))
        clean[key] = parse_int(value, "--" + key.replace("_", "-"), *fields[key])
    return resolve_params(parse_count(params), **clean)


def estimate_resolved(model: ResolvedModel, workload: Workload, gpus: Iterable[str] = ()) -> Estimate:
    """Estimate for an already resolved model and a validated workload."""
    extra: dict = {}
    gpu_objs = tuple(find_gpu(g) for g in gpus)
    if workload.estimator == "seed":
        phases, notes, trainable = estimate_seed(model, workload)
        peak = "steady"
        total = sum(phases[peak].values())
        low, high = total, total
        notes = (Assumption("a_seed_label"),) + notes
    else:
        phases, notes, trainable, transient, extra = estimate_analytic(model, workload, gpu_objs)
        first = gpu_objs[0] if gpu_objs else None
        ws = cublas_workspace(first.compute_capability, first.gfx_target, first.vendor) if first else None
        ov = runtime_overhead(transient, ws)
        if extra.get("name") == "vllm":  # the CUDA context is inside vLLM's own non-torch accounting
            from .engines.vllm import NON_TORCH, NON_TORCH_HIGH

            ov = Overhead(0, 0, NON_TORCH_HIGH - NON_TORCH)
        for p in phases.values():
            p["overhead"] = ov.nominal
        for rank in extra.get("pipeline", {}).get("ranks", []):
            rank["peak_bytes"] += ov.nominal
        peak = pick_peak(phases)
        total = sum(phases[peak].values())
        low, high = total - ov.nominal + ov.low, total - ov.nominal + ov.high
        notes = notes + (Assumption("a_overhead_vllm" if extra.get("name") == "vllm" else "a_overhead"),)
        if workload.grad_checkpointing and peak == "optimizer_step":
            notes = notes + (Assumption("a_ckpt_no_gain"),)
    if extra.get("name") == "vllm":
        verdicts = tuple(vllm_verdict(g, v, extra) for g, v in zip(gpu_objs, extra["per_gpu"]))
    else:
        verdicts = tuple(verdict(g, total, high) for g in gpu_objs)
    info = ModelInfo(name=model.spec.name, params=model.params, active_params=model.active_params,
                     trainable_params=trainable, source=model.kind, origin=model.origin,
                     storage=model.stored_format, exact_shape=model.exact_shape)
    source_notes = tuple(Assumption("a_note", {"text": n}) for n in model.notes)
    return Estimate(model=info, estimator=workload.estimator, task=workload.task, total_bytes=total,
                    range_bytes=(low, high), components={k: v for k, v in phases[peak].items()},
                    peak_phase=peak, phases=phases, workload=workload.to_dict(), assumptions=notes + source_notes,
                    gpus=verdicts, engine=extra)


def estimate(model: Optional[str] = None, *, params: Union[str, int, float, None] = None,
             gpus: Iterable[str] = (), hub: bool = True, layers: Any = None, hidden: Any = None,
             heads: Any = None, kv_heads: Any = None, head_dim: Any = None, intermediate: Any = None,
             vocab: Any = None, **workload: Any) -> Estimate:
    """Estimate GPU memory for MODEL (or ``params=``) under the workload options of :func:`make_workload`.

    Raises :class:`vramscope.VramscopeError` with a message naming the bad option.
    """
    if isinstance(gpus, str):
        gpus = (gpus,)
    resolved = load_model(model, params, hub=hub, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                          head_dim=head_dim, intermediate=intermediate, vocab=vocab)
    return estimate_resolved(resolved, make_workload(**workload), gpus)


def fit(model: Optional[str] = None, *, gpu: str = "rtx-4090", params: Union[str, int, float, None] = None,
        hub: bool = True, **workload: Any):
    """The planning answer for MODEL on ``gpu``: fits?, largest batch and context, fewest GPUs, suggestions.

    Returns a :class:`vramscope.plan.FitAnswer` (``.to_dict()`` gives the ``vramscope.fit/1`` JSON).
    """
    from .plan import fit as plan_fit

    resolved = load_model(model, params, hub=hub)
    return plan_fit(resolved, make_workload(**workload), find_gpu(gpu))
