"""The engine protocol: what every caller (estimator, API, planner, tables, validation) asks an engine.

An engine answers, for a model and a workload: its inference phases and typed report (:meth:`Engine.inference`;
the report's ``to_dict()`` is the estimate's ``engine`` JSON object), the runtime overhead to add
(:meth:`Engine.runtime_overhead`), the number a GPU verdict compares and the verdicts
(:meth:`Engine.needed_bytes`, :meth:`Engine.verdicts`), the memory it may use on a GPU (:meth:`Engine.budget`),
what ``fit`` searches and suggests (:meth:`Engine.fit_search`, :meth:`Engine.suggestions`,
:meth:`Engine.context_suggestions`), its table lines (:meth:`Engine.table_lines`) and the components it prints
(:meth:`Engine.printed_components`). The defaults are those of an engine that sizes its memory by demand
(``transformers``); an engine overrides what differs.

To add an engine:

1. write ``engines/<name>.py``: a subclass of :class:`Engine` with its ``name``, ``aliases``, what it runs
   (``trains``, ``multi_gpu``, ``gguf_quants``, ...), its option rows (``options``: :class:`~vramscope.options.Option`,
   with ``owner`` and ``group`` the engine's name: they become ``Workload`` fields, flags, API keywords and web
   parameters) and ``inference`` returning the phases and a report dataclass deriving from
   :class:`EngineReport`; override the hooks whose default does not hold for it; end with
   ``ENGINE = <Subclass>()``;
2. name its module in ``_MODULES`` below (and, for its help group's title, a row in ``options.GROUPS``); its
   sentences go to ``i18n.py`` in both languages.

No caller compares engine names: the estimator, the API, ``fit``, the tables, ``validate`` and ``make_workload``
ask the engine (``ENGINES[w.engine]``, :func:`engine_for`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields, is_dataclass, replace
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import Opt
from ..options import Option
from ..result import Assumption

if TYPE_CHECKING:
    from ..gpus import Gpu
    from ..memory.overhead import Overhead
    from ..model.spec import ModelSpec
    from ..result import Estimate, GpuVerdict
    from ..sources.base import ResolvedModel
    from ..workload import Workload

Phases = dict[str, dict[str, int]]


#: a change ``fit`` may suggest: (i18n key, message parameters, workload changes, cost)
Candidate = tuple[str, dict[str, Any], dict[str, Any], str]


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return value.to_dict()  # type: ignore[union-attr]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class Record:
    """A typed part of an engine's report: its fields in order, a ``None`` field left out of the JSON."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = _plain(value)
        return out


@dataclass(frozen=True, kw_only=True)
class EngineReport(Record):
    """What an engine reports beside the phases; ``to_dict()`` is the estimate's ``engine`` object."""

    name: str


def weights(model: "ResolvedModel", w: "Workload", a: float, notes: list[Assumption],
            rank_spec: Optional["ModelSpec"] = None, fp32_modules: bool = True, training: bool = False) -> int:
    """The weights on one GPU (``rank_spec``: its tensor-parallel slice), noting where the bytes come from;
    ``fp32_modules``: the engine keeps transformers' fp32 modules in fp32 (``memory/weights.py``);
    ``training``: a pre-quantized checkpoint is counted in the dtype it trains in (quantized weights do not
    train)."""
    from ..memory.weights import spec_weight_bytes, weight_bytes

    use_stored = model.stored is not None and w.dtype is None and w.quant == "none"
    spec = model.spec
    # a pre-quantized checkpoint read from its config alone: its own storage unless --dtype / --quant say otherwise
    own = not use_stored and model.stored is None and model.exact_shape and spec.quant_method != ""
    use_own = own and bool(spec.quant_format) and w.dtype is None and w.quant == "none" and not training
    quant, skip = (spec.quant_format, spec.quant_skip) if use_own else (w.quant, ())
    wb = weight_bytes(model, a, quant, use_stored, skip, use_own, fp32_modules)
    split = rank_spec is not None and rank_spec is not model.spec
    if use_own and quant == "modelopt-mixed":
        from collections import Counter

        algos = Counter(f for _, f in spec.quant_layers)
        notes.append(Assumption("a_weights_modelopt_mixed", {
            "layers": len(spec.quant_layers), "algos": ", ".join(f"{n} {f}" for f, n in sorted(algos.items())),
            "skipped": len(skip), "o_dtype": Opt("dtype"), "o_quant": Opt("quant")}))
    elif use_own:
        notes.append(Assumption("a_weights_checkpoint", {"format": quant, "method": spec.quant_method,
                                                         "skipped": len(skip), "o_dtype": Opt("dtype"),
                                                         "o_quant": Opt("quant")}))
        if spec.quant_method in ("modelopt", "modelopt_fp4"):
            notes.append(Assumption("a_weights_modelopt", {"format": quant}))
    elif own and training:
        notes.append(Assumption("a_weights_checkpoint_training", {"method": spec.quant_method,
                                                                  "format": spec.quant_format or spec.quant_method}))
    elif own and w.dtype is None and w.quant == "none":
        notes.append(Assumption("a_weights_checkpoint_unread", {"method": spec.quant_method}))
    elif own:
        notes.append(Assumption("a_weights_override", {"method": spec.quant_method,
                                                       "format": spec.quant_format or spec.quant_method,
                                                       "o_dtype": Opt("dtype"), "o_quant": Opt("quant")}))
    if split:
        full = spec_weight_bytes(model.spec, a, quant, skip, use_own, fp32_modules).total
        part = spec_weight_bytes(rank_spec, a, quant, skip, use_own, fp32_modules).total
        return int(wb.total * part / full) if full else 0
    if wb.exact_from_files:
        notes.append(Assumption("a_weights_files", {"format": model.stored_format or "?"}))
    elif w.quant != "none":
        notes.append(Assumption("a_weights_quant", {"quant": w.quant}))
    return wb.total


def rank_spec(model: "ResolvedModel", w: "Workload") -> "ModelSpec":
    """The model one GPU holds: its tensor-parallel slice under ``--parallelism tp``, else the whole model."""
    from ..memory.parallel import tp_shard_spec

    return tp_shard_spec(model.spec, w.num_gpus) if w.strategy.is_tensor_parallel else model.spec


def rank_weights(model: "ResolvedModel", w: "Workload", dtype: str, notes: list[Assumption],
                 fp32_modules: bool = True) -> tuple[float, "ModelSpec", int]:
    """For inference: bytes per parameter of ``dtype``, the model one GPU holds (:func:`rank_spec`) and its
    weights, noting where the bytes come from and the tensor-parallel split."""
    from ..estimators.common import dtype_bytes

    a = dtype_bytes(dtype)
    spec = rank_spec(model, w)
    held = weights(model, w, a, notes, spec, fp32_modules)
    # say where the dtype of unquantized weights came from (files and a checkpoint's own storage say it above)
    as_stored = w.dtype is None and w.quant == "none" and (
        model.stored is not None or (model.exact_shape and bool(model.spec.quant_format)))
    if w.quant == "none" and not as_stored:
        if w.dtype:
            notes.append(Assumption("a_weights_dtype_given", {"dtype": dtype, "o_dtype": Opt("dtype")}))
        elif model.spec.dtype:
            notes.append(Assumption("a_weights_dtype_config", {"dtype": dtype, "given": model.spec.dtype}))
        else:
            notes.append(Assumption("a_weights_dtype_default", {"dtype": dtype, "o_dtype": Opt("dtype")}))
    if w.strategy.is_tensor_parallel:
        notes.append(Assumption("a_tp", {"n": w.num_gpus}))
    return a, spec, held


class Engine:
    """An inference engine. Subclasses set ``name`` and implement :meth:`inference`."""

    name: str = ""
    #: whether the engine runs one model across several GPUs (``fit`` searches the fewest)
    multi_gpu: bool = True
    #: whether the engine sizes its memory from the GPU it runs on (the estimate then needs the GPU)
    sizes_by_gpu: bool = False
    #: the assumption that explains the overhead
    overhead_note: str = "a_overhead"
    #: whether ``--estimator trace`` can run the workload (it runs transformers' model code)
    traceable: bool = False
    #: whether the engine's tensors live in torch's caching allocator, whose cache beyond the allocated peak
    #: (``memory/device.py``) the estimate adds; otherwise the engine's own accounting is the device number
    caching_allocator: bool = False
    #: other names ``--engine`` accepts for it
    aliases: tuple[str, ...] = ()
    #: the engine's own options (``make_workload`` refuses them with another engine)
    options: tuple[Option, ...] = ()
    #: what ``make_workload`` lets the engine run: training, GGUF file types as ``--quant`` (and only those),
    #: inference pipeline parallelism (``--pp``), a static KV cache (``--cache static``)
    trains: bool = False
    gguf_quants: bool = False
    pipeline_inference: bool = False
    static_cache: bool = False

    def inference(self, model: "ResolvedModel", w: "Workload", dtype: str, notes: list[Assumption],
                  gpus: tuple["Gpu", ...]) -> tuple[Phases, Optional[EngineReport]]:
        """The inference phases on one GPU and the engine's report (None: no ``engine`` fields)."""
        raise NotImplementedError

    def runtime_overhead(self, transient: int, gpu: Optional["Gpu"]) -> "Overhead":
        """What runs beside the tensors: CUDA context, cuBLAS workspace (of the first GPU named), fragmentation."""
        from ..memory.overhead import cublas_workspace, runtime_overhead

        ws = cublas_workspace(gpu.compute_capability, gpu.gfx_target, gpu.vendor) if gpu else None
        return runtime_overhead(transient, ws)

    def verdicts(self, gpus: tuple["Gpu", ...], total: int, high: int,
                 report: dict[str, Any]) -> tuple["GpuVerdict", ...]:
        """Fits, tight or no on each GPU: the total and the top of its range against the usable memory."""
        from ..gpus import verdict

        return tuple(verdict(g, total, high) for g in gpus)

    def total_key(self, e: "Estimate") -> str:
        """The i18n key of the estimate table's total row."""
        return "total"

    def gpu_line(self, e: "Estimate", g: "GpuVerdict", lang: str, units: str) -> str:
        """The estimate table's line for one GPU: its verdict and headroom (usable memory minus the total)."""
        from ..i18n import t
        from ..units import format_bytes

        verdict = t({"fits": "gpu_fits", "tight": "gpu_tight", "no": "gpu_no"}[g.verdict], lang)
        return t("gpu_line", lang, gpu=g.name, mem=format_bytes(g.usable_bytes, units), verdict=verdict,
                 headroom=format_bytes(g.headroom_bytes, units), pct=f"{g.headroom_pct:+.1f}%") \
            + (t("gpu_retry_note", lang) if getattr(g, "allocator_retry", False) else "")

    def needed_bytes(self, e: "Estimate") -> int:
        """What the workload needs on one GPU, the number ``fit`` compares with :meth:`budget`."""
        return e.total_bytes

    def budget(self, w: "Workload", gpu: "Gpu") -> int:
        """The memory the workload may use on ``gpu``."""
        return gpu.usable_bytes

    def fit_search(self, model: "ResolvedModel", w: "Workload", e: "Estimate", fits: Callable[["Workload"], bool],
                   seq_limit: int) -> tuple[int, int, Optional[int]]:
        """``fit``'s searches: (largest batch, largest context, sequences served at once or None)."""
        from ..plan import largest_fitting
        from ..workload import MAX_BATCH

        max_batch = largest_fitting(lambda b: fits(replace(w, batch=b)), 1, MAX_BATCH, start=w.batch)
        max_seq = largest_fitting(lambda s: fits(replace(w, seq=s)), 1, max(seq_limit, 1), start=w.seq)
        return max_batch, max_seq, None

    def suggestions(self, model: "ResolvedModel", w: "Workload", usable: int,
                    needs: Callable[["Workload"], int]) -> list[Candidate]:
        """The engine's own changes that may make an inference workload fit, in order."""
        return []

    def context_suggestions(self, model: "ResolvedModel", w: "Workload", max_seq: int) -> list[Candidate]:
        """A shorter context when the largest that fits (``max_seq``) is below the workload's."""
        return [("s_seq", {"seq": max_seq}, {"seq": max_seq}, "quality")] if 0 < max_seq < w.seq else []

    def table_lines(self, e: "Estimate", lang: str, units: str) -> list[str]:
        """Lines the estimate table prints for this engine, after the phases."""
        return []

    def printed_components(self, e: "Estimate") -> dict[str, int]:
        """The estimate under the names the engine itself prints (compared with its logs)."""
        return dict(e.components)

    def record_options(self, src: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """A measurement record's workload (``validate.py``) in vramscope's options: (the engine's own options,
        whether they are all of them; False: the generic translation of task, dtype, ... follows)."""
        return {}, False


def record_serving(src: dict[str, Any], out: dict[str, Any], engine: str, tp_keys: tuple[str, ...]) -> None:
    """A serving engine's measurement record (``validate.py``): its tensor-parallel size (under any of
    ``tp_keys``) as ``--gpus N --parallelism tp``, fp8 weights as ``--quant fp8``; other quantizations are
    skipped as not modelled."""
    from ..validate import Skip

    tp = int(next((src[k] for k in tp_keys if src.get(k)), 1))
    if tp > 1:
        out.update(num_gpus=tp, parallelism="tp")
    quant = str(src.get("quantization") or "")
    if quant.startswith("fp8"):
        out["quant"] = "fp8"
    elif quant:
        raise Skip("s_engine_quant", engine=engine, quant=quant)


_MODULES = {"transformers": "transformers", "vllm": "vllm", "llama.cpp": "llamacpp", "ollama": "ollama",
            "sglang": "sglang"}
#: the engines' names, ``--engine``'s choices (known without importing the engines)
ENGINE_NAMES = tuple(_MODULES)


def _load() -> dict[str, Engine]:
    return {name: importlib.import_module(f".{module}", __package__).ENGINE for name, module in _MODULES.items()}


class _Registry(Mapping):
    """``ENGINES[name]``: the engines by name, their modules imported on first use (start-up stays light)."""

    def __init__(self) -> None:
        self._engines: Optional[dict[str, Engine]] = None

    def _all(self) -> dict[str, Engine]:
        if self._engines is None:
            self._engines = _load()
        return self._engines

    def __getitem__(self, name: str) -> Engine:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


ENGINES: Mapping[str, Engine] = _Registry()


def engine_named(text: Any) -> Any:
    """``--engine``'s value with an engine's alias (``ollama``, ``hf``, ...) replaced by its name."""
    if not isinstance(text, str):
        return text
    key = text.strip().lower()
    return next((e.name for e in ENGINES.values() if key in e.aliases), text)


def engine_for(w: Any) -> Engine:
    """The engine of a workload, or of an estimate's ``workload`` object (a dict)."""
    name = w.get("engine", "transformers") if isinstance(w, dict) else w.engine
    return ENGINES[name]
