"""Planning: does it fit, how far can batch or context go, how many GPUs, and what to change if it does not.

Every answer is a search over the estimator, never an extrapolation: the largest batch ``b`` that fits is
the one where ``estimate(batch=b)`` fits and ``estimate(batch=b+1)`` does not (both evaluated). "Fits" means
the estimate's total is at most the GPU's usable memory; the estimate's range is reported beside it.
Searches assume the estimate grows with batch and context and shrinks with more GPUs (property-tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from .api import estimate_resolved
from .engines.base import Candidate, engine_for
from .errors import Opt, Text, VramscopeError, rendered
from .gpus import Gpu
from .i18n import register, t
from .options import CHECKPOINT_MODES
from .result import Estimate
from .sources import ResolvedModel
from .workload import MAX_SEQ, Workload, make_workload

SCHEMA = "vramscope.fit/1"
MAX_GPUS = 4096

#: GPUs checked when the user names none
DEFAULT_SHORTLIST = ("rtx-4060-ti-16gb", "rtx-4090", "rtx-5090", "a100-80gb", "h100-sxm", "h200")


@dataclass(frozen=True)
class Suggestion:
    key: str  # i18n key of the change
    params: dict[str, Any]
    changes: dict[str, Any]  # workload fields changed
    total_bytes: int
    saves_bytes: int
    fits: bool
    cost: str  # none | speed | quality | hardware
    command: Optional[str] = None  # the command line that reproduces it (None: a Workload built by hand)
    #: the options it changes, by field, as a user sets them (None: the option goes back to its default)
    options: Optional[dict[str, Any]] = None
    #: False where the baseline's allocator cache is replayed and the change's fitted (or the other way round):
    #: ``saves_bytes`` is then the difference with both caches from the fitted shares
    saves_alike: bool = True

    def render(self, lang: str = "en", surface: str = "cli") -> str:
        """The change in a sentence; an option it names (``errors.Opt``) is spelled for ``surface``: a flag on
        the command line, the form's field name on the web."""
        if self.key == "s_combo":
            parts = [t(k, lang, **rendered(p, lang, surface)) for k, p in self.params["parts"]]
            return t(self.key, lang, changes=" + ".join(parts))
        return t(self.key, lang, **rendered(self.params, lang, surface))

    @property
    def line_key(self) -> str:
        """The i18n key of the suggestion's line: it says when the saving compares the fitted caches."""
        return "fit_suggestion_line" if self.saves_alike else "fit_suggestion_line_fitted"

    def to_dict(self, lang: str = "en", surface: str = "cli") -> dict[str, Any]:
        return {"change": self.key.removeprefix("s_"), "description": self.render(lang, surface),
                "workload": self.changes, "total_bytes": self.total_bytes, "saves_bytes": self.saves_bytes,
                "saves_compared": "own" if self.saves_alike else "fitted_cache",
                "fits": self.fits, "cost": self.cost, "command": self.command}


@dataclass(frozen=True)
class Rung:
    """One GGUF file type of the quantization ladder (llama.cpp): its bits per weight for this model, whether it
    fits with every layer on the GPU at the workload's context and the longest context it does so at, else the
    most layers ``-ngl`` puts on the GPU; llama.cpp's quality note, and the command that reproduces it."""

    quant: str
    bits_per_weight: float
    total_bytes: int  # every layer on the GPU, at the workload's context
    fits: bool
    max_seq: int  # longest context with every layer on the GPU (0: none)
    n_gpu_layers: Optional[int]  # when it does not fit fully: the most -ngl that fits (None: not even -ngl 0)
    note: tuple[str, dict[str, Any]]
    command: Optional[str] = None

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {"quant": self.quant, "bits_per_weight": self.bits_per_weight, "total_bytes": self.total_bytes,
                "fits": self.fits, "max_seq": self.max_seq, "n_gpu_layers": self.n_gpu_layers,
                "quality": t(self.note[0], lang, **self.note[1]), "command": self.command}


@dataclass(frozen=True)
class FitAnswer:
    gpu: Gpu
    estimate: Estimate
    fits: bool
    max_batch: int  # 0 when even batch 1 does not fit
    max_seq: int  # 0 when even 1 token does not fit
    seq_limit: int  # the bound searched up to (the model's context length when known)
    min_gpus: Optional[int]  # None when no count up to the limit fits
    min_gpus_parallelism: str
    suggestions: tuple[Suggestion, ...] = field(default_factory=tuple)
    max_concurrency: Optional[int] = None  # vLLM: sequences of max_model_len the KV pool holds at once
    needed_bytes: int = 0  # what the workload needs (vLLM: its minimum, below its preallocation)
    budget_bytes: int = 0  # what it may use on the GPU (vLLM: its gpu_memory_utilization share); 0: usable
    #: what the answer assumed (fit's header): i18n keys and parameters
    assumed: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: llama.cpp: every GGUF file type, most bits first (empty for other engines)
    ladder: tuple[Rung, ...] = ()

    @property
    def budget(self) -> int:
        return self.budget_bytes or self.gpu.usable_bytes

    @property
    def headroom_bytes(self) -> int:
        """The budget minus what the workload needs: the numbers fit's header shows, for every engine."""
        return self.budget - (self.needed_bytes or self.estimate.total_bytes)

    def assumed_lines(self, lang: str = "en", surface: str = "cli") -> list[str]:
        """What the answer assumed, one phrase each, naming options as ``surface`` spells them."""
        return [t(k, lang, **rendered(p, lang, surface)) for k, p in self.assumed]

    def to_dict(self, lang: str = "en", surface: str = "cli") -> dict[str, Any]:
        """``surface``: how the suggestions' descriptions, the assumed phrases and the estimate's assumptions name
        options (``cli``: flags; ``web``: fields)."""
        g = self.gpu
        return {
            "schema": SCHEMA,
            "gpu": {"name": g.name, "id": g.id, "memory_bytes": g.memory_bytes, "usable_bytes": g.usable_bytes},
            "fits": self.fits,
            "total_bytes": self.estimate.total_bytes,
            "needed_bytes": self.needed_bytes,
            "budget_bytes": self.budget,
            "headroom_bytes": self.headroom_bytes,
            "assumed": self.assumed_lines(lang, surface),
            "max_batch": self.max_batch,
            "max_concurrency": self.max_concurrency,
            "max_seq": self.max_seq,
            "seq_limit": self.seq_limit,
            "min_gpus": self.min_gpus,
            "min_gpus_parallelism": self.min_gpus_parallelism,
            "suggestions": [s.to_dict(lang, surface) for s in self.suggestions],
            "quant_ladder": [r.to_dict(lang) for r in self.ladder],
            "estimate": self.estimate.to_dict(lang, surface),
        }


def largest_fitting(fits: Callable[[int], bool], lo: int, hi: int, start: Optional[int] = None) -> int:
    """Largest x in [lo, hi] with ``fits(x)`` for a monotone predicate; ``lo - 1`` when none fits.

    The device number is not monotone everywhere: the replayed allocator cache (``memory/synthetic.py``) is a
    sawtooth in the sequence (llama-3-8b full training on an H100 needs 80.67 GiB at 1,024 tokens and 78.95 at
    2,048). ``start``, where given and fitting (the workload's own value), is then a floor of the answer: the
    search gallops up from it, so "longest context that fits" is never below a context the verdict says fits."""
    if start is not None and lo <= start <= hi and fits(start):
        good = start
    elif not fits(lo):
        return lo - 1
    else:
        good = lo
    step = 1
    while True:  # gallop up until a failure or the bound
        probe = min(hi, good + step)
        if probe == good:
            return good
        if fits(probe):
            good, step = probe, step * 2
        else:
            bad = probe
            break
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def _total(model: ResolvedModel, w: Workload) -> int:
    """What the workload needs on one GPU (its engine's ``needed_bytes``: vLLM's is its minimum, below its
    preallocation)."""
    return engine_for(w).needed_bytes(estimate_resolved(model, w))


def _fits(model: ResolvedModel, w: Workload, usable: int) -> bool:
    """``_total(model, w) <= usable``, answered without the allocator replay (``memory/synthetic.py``) where the
    total with the replayed cache taken as 0 (:func:`~vramscope.memory.synthetic.cache_floor`, a lower bound:
    the cache is never negative and the total grows with it) is already over the budget."""
    from .memory.synthetic import cache_floor

    try:
        with cache_floor() as skipped:
            floor = _total(model, w)
    except Exception:  # whatever the floor's estimate meets, the real one answers (and raises) as before
        return _total(model, w) <= usable
    if not skipped:  # no replay was skipped: this is the total itself
        return floor <= usable
    return False if floor > usable else _total(model, w) <= usable


def merge_options(options: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The user's options with a suggestion's changes on top (None removes an option), as the user would type
    them: an option the change makes meaningless is dropped with it."""
    out = dict(options)
    if "method" in changes and changes["method"] != "freeze":
        out.pop("frozen_layers", None)
        out.pop("train_modules", None)
    if "num_gpus" in changes:
        out.pop("tp", None) if out.get("task", "inference") == "inference" else None
    if "grad_checkpointing" in changes:
        out.pop("checkpoint_mode", None)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def rebuild(w: Workload, changes: dict[str, Any]) -> Workload:
    """The workload with ``changes``, built by the same constructor as the command line: the user's options and
    the changed ones through :func:`make_workload`, so every default and check applies (a Workload built by hand
    has no options to rebuild from: its fields are replaced)."""
    if w.options is None:
        return replace(w, **{k: v for k, v in changes.items() if v is not None})
    return make_workload(**merge_options(w.options, changes))


def _model_args(model: ResolvedModel) -> list[str]:
    if model.kind == "params":
        s = model.spec
        return ["--params", str(model.params), "--layers", str(s.num_layers), "--hidden", str(s.hidden_size),
                "--heads", str(s.num_heads), "--kv-heads", str(s.num_kv_heads), "--intermediate",
                str(s.intermediate_size), "--vocab", str(s.vocab_size)]
    return [model.origin]


def command_line(model: ResolvedModel, options: dict[str, Any], gpu: Gpu) -> str:
    """``vramscope fit MODEL OPTIONS --gpu GPU``: what reproduces a workload built from ``options`` (each option
    spelled by its row of the option table)."""
    import shlex

    from .options import spell, table
    from .units import parse_bool

    rows = table()
    order = {f: i for i, f in enumerate(rows)}
    args = ["vramscope", "fit", *_model_args(model)]
    for key, value in sorted(options.items(), key=lambda kv: order.get(kv[0], len(order))):  # the table's order
        o = rows.get(key)
        if value is None or o is None:
            continue
        if not o.contextual and str(value).strip().lower() == str(o.default).lower():
            continue  # the default, which the command does not need to say
        if key == "grad_checkpointing":
            if "checkpoint_mode" not in options:
                on = value if isinstance(value, str) and value in CHECKPOINT_MODES else parse_bool(value, key)
                args.append(spell(key, "cli", on) if isinstance(on, bool) else f"{o.flag}={on}")
        elif key == "checkpoint_mode":
            args.append(f"--grad-checkpointing={value}")
        elif o.switch:
            if parse_bool(value, key):
                args.append(o.flag)
        elif isinstance(value, (list, tuple)):
            args += [o.flag, ",".join(map(str, value))]
        else:
            args += [o.flag, str(value)]
    return shlex.join(args + ["--gpu", gpu.id])


def budget(w: Workload, gpu: Gpu) -> int:
    """Memory the workload may use on ``gpu`` (vLLM: its ``gpu_memory_utilization`` share)."""
    return engine_for(w).budget(w, gpu)


def _tp_counts(model: ResolvedModel) -> list[int]:
    heads = model.spec.num_heads
    return [n for n in range(1, min(heads, 512) + 1) if heads % n == 0]


def min_gpus(model: ResolvedModel, w: Workload, usable: int) -> tuple[Optional[int], str]:
    """Fewest GPUs of this size: tensor parallel for inference (heads must divide), FSDP for training."""
    engine = engine_for(w)
    if not engine.multi_gpu:
        return None, engine.name
    if w.task == "inference":
        for n in _tp_counts(model):
            try:
                if _total(model, rebuild(w, {"num_gpus": n, "parallelism": "tp" if n > 1 else "none"})) <= usable:
                    return n, "tp" if n > 1 else "none"
            except VramscopeError:
                continue
        return None, "tp"

    def fits(n: int) -> bool:
        try:
            return _total(model, rebuild(w, {"num_gpus": n, "parallelism": "fsdp" if n > 1 else "none"})) <= usable
        except VramscopeError:  # a count the user's other options refuse (e.g. --nodes that do not divide it)
            return False

    n = largest_fitting(lambda k: not fits(k), 1, MAX_GPUS) + 1  # first count that fits
    return (n, "fsdp" if n > 1 else "none") if n <= MAX_GPUS else (None, "fsdp")


def _diff(w: Workload, new: Workload) -> dict[str, Any]:
    """The workload fields a suggestion changes, as the estimate's ``workload`` object shows them."""
    old, now = w.to_dict(), new.to_dict()
    return {k: v for k, v in now.items() if old.get(k) != v}


def _evaluate(model: ResolvedModel, w: Workload, gpu: Gpu, usable: int, base: int, base_fitted: int, key: str,
              params: dict[str, Any], changes: dict[str, Any], cost: str) -> Suggestion:
    """A change re-estimated as the user would type it (raises VramscopeError when the change is refused);
    ``base_fitted``: the workload's own total with the fitted cache shares (:func:`_fitted_total`)."""
    new = rebuild(w, changes)
    total = _total(model, new)
    command = None if w.options is None else command_line(model, merge_options(w.options, changes), gpu)
    saves, alike = base - total, True
    new_fitted = _fitted_total(model, new)
    if (base_fitted != base) != (new_fitted != total):
        # one side's allocator cache is its replayed stream (memory/synthetic.py), the other's the fitted shares:
        # the difference of the two totals would be the two cache models' difference, not the change's
        saves, alike = base_fitted - new_fitted, False
    return Suggestion(key, params, _diff(w, new), total, saves, total <= usable, cost, command, dict(changes),
                      alike)


def _fitted_total(model: ResolvedModel, w: Workload) -> int:
    """:func:`_total` with the allocator cache from the fitted shares, where a replay would give it."""
    from .memory.synthetic import without_replay

    with without_replay():
        return _total(model, w)


def _training_candidates(w: Workload) -> list[Candidate]:
    """The changes that may make a training workload fit, in order."""
    cands: list[Candidate] = []
    if w.offload == "none" and w.method in ("full", "freeze"):
        cands.append(("s_offload", {}, {"offload": "optimizer"}, "speed"))
    if w.method in ("full", "freeze"):
        cands += [("s_method", {"method": "lora"}, {"method": "lora"}, "quality"),
                  ("s_method", {"method": "qlora"}, {"method": "qlora", "quant": None}, "quality")]
    elif w.method == "lora":
        cands.append(("s_method", {"method": "qlora"}, {"method": "qlora", "quant": None}, "quality"))
    if not w.grad_checkpointing:
        cands.append(("s_ckpt", {}, {"grad_checkpointing": True}, "speed"))
    if w.optimizer in ("adamw", "adam", "adamw-fused"):
        cands.append(("s_optimizer", {"optimizer": "adamw-8bit"}, {"optimizer": "adamw-8bit"}, "quality"))
    if w.batch > 1:
        cands.append(("s_microbatch", {"batch": 1, "accum": w.batch * w.grad_accum},
                      {"batch": 1, "grad_accum": w.batch * w.grad_accum}, "speed"))
    if w.ce_chunks == 1:
        cands.append(("s_chunked_ce", {"chunks": 8}, {"ce_chunks": 8}, "none"))
    if not w.activation_offload:
        cands.append(("s_act_offload", {}, {"activation_offload": True}, "speed"))
    if w.method in ("full", "freeze") and not w.optimizer_in_backward and w.grad_accum == 1 \
            and w.num_gpus == 1:
        cands.append(("s_opt_in_bwd", {}, {"optimizer_in_backward": True}, "none"))
    return cands


def _suggest(model: ResolvedModel, w: Workload, gpu: Gpu, usable: int, base: int, max_seq: int,
             gpus_needed: Optional[int], par: str, ladder: tuple[Rung, ...] = ()) -> list[Suggestion]:
    engine = engine_for(w)
    cands: list[Candidate] = []
    if w.task == "inference":
        cands += engine.suggestions(model, w, usable, lambda new: _total(model, new))
        best = next((r for r in ladder if r.fits), None)  # the most bits that fit with every layer on the GPU
        if best is not None and not any(c[2].get("quant") == best.quant for c in cands):
            cands.append(("s_quant", {"quant": best.quant}, {"quant": best.quant}, "quality"))
    else:
        cands += _training_candidates(w)
    if (w.dtype or "") == "fp32" and w.quant == "none" and not (w.training and w.method in ("lora", "qlora")):
        cands.append(("s_dtype", {"dtype": "bf16"}, {"dtype": "bf16"}, "quality"))
    if w.attn == "eager":
        cands.append(("s_attn", {"attn": "sdpa"}, {"attn": "sdpa"}, "none"))
    if w.batch > 1 and w.task == "inference":
        cands.append(("s_batch", {"batch": 1}, {"batch": 1}, "speed"))
    cands += engine.context_suggestions(model, w, max_seq)
    if gpus_needed and gpus_needed > w.num_gpus:
        cands.append(("s_gpus", {"n": gpus_needed, "parallelism": par},
                      {"num_gpus": gpus_needed, "parallelism": par}, "hardware"))
    out = []
    base_fitted = _fitted_total(model, w)  # once: every change's saving may be compared with it
    for key, params, changes, cost in cands:
        try:
            out.append(_evaluate(model, w, gpu, usable, base, base_fitted, key, params, changes, cost))
        except VramscopeError:
            continue
    cost_rank = {"none": 0, "speed": 1, "quality": 2, "hardware": 3}
    out = [s for s in out if s.saves_bytes > 0]
    if not any(s.fits and s.cost != "hardware" for s in out):
        combo = _combine(model, w, gpu, usable, base, base_fitted, [c for c in cands if c[3] != "hardware"])
        if combo is not None:
            out.append(combo)
    out.sort(key=lambda s: (not s.fits, cost_rank[s.cost] if s.fits else 0, -s.saves_bytes))
    return out


#: how much a change may cost in quality or speed, to prefer the gentlest combination that fits
_SEVERITY = {"s_quant": 2, "s_method": 2, "s_kv_dtype": 1, "s_optimizer": 1, "s_ckpt": 1, "s_microbatch": 1,
             "s_offload": 2, "s_seq": 3, "s_max_len": 3, "s_batch": 1, "s_ngl": 2, "s_ngl_cpu": 2, "s_dtype": 1}


def _severity(key: str, params: dict[str, Any]) -> int:
    if params.get("method") == "qlora" or str(params.get("quant", "")).lower() in ("nf4", "q3_k_m", "q2_k"):
        return 3
    return _SEVERITY.get(key, 1)


def _combine(model: ResolvedModel, w: Workload, gpu: Gpu, usable: int, base: int, base_fitted: int,
             cands: list[tuple[str, dict[str, Any], dict[str, Any], str]]) -> Optional[Suggestion]:
    """When no single change fits: the gentlest pair or triple of changes that fits (each re-estimated),
    gentlest meaning fewest changes, then least quality/speed cost, then most headroom."""
    from itertools import combinations

    best: Optional[tuple[tuple[int, int, int], tuple, dict[str, Any], int]] = None
    for size in (2, 3):
        for combo in combinations(cands, size):
            changes: dict[str, Any] = {}
            keys = [k for c in combo for k in c[2]]
            if len(keys) != len(set(keys)):
                continue  # e.g. lora and qlora both change the method
            for c in combo:
                changes.update(c[2])
            try:
                total = _total(model, rebuild(w, changes))
            except VramscopeError:
                continue
            if total > usable:
                continue
            rank = (size, sum(_severity(c[0], c[1]) for c in combo), total)
            if best is None or rank < best[0]:
                best = (rank, combo, changes, total)
        if best is not None:
            break
    if best is None:
        return None
    _, combo, changes, total = best
    parts = [Suggestion(k, p, ch, 0, 0, False, cost) for k, p, ch, cost in combo]
    costs = {"none": 0, "speed": 1, "quality": 2}
    worst = max((p.cost for p in parts), key=lambda c: costs.get(c, 3))
    return _evaluate(model, w, gpu, usable, base, base_fitted, "s_combo",
                     {"parts": tuple((p.key, p.params) for p in parts)}, changes, worst)


def fit(model: ResolvedModel, w: Workload, gpu: Gpu, suggestions: bool = True) -> FitAnswer:
    """The whole planning answer for one GPU (the analytic estimator's: the seed rule of thumb has no context or
    GPU count to search)."""
    if w.estimator != "analytic":
        raise VramscopeError("conflict", field="estimator", reason=Text("r_fit_analytic"))
    if w.options is not None and make_workload(**w.options) != w:
        w = replace(w, options=None)  # changed after make_workload (dataclasses.replace): its options are stale
    engine = engine_for(w)
    usable = engine.budget(w, gpu)
    est = estimate_resolved(model, w, (gpu.id,) if engine.sizes_by_gpu else ())
    base = _total(model, w)
    ctx = model.spec.max_position_embeddings
    seq_limit = ctx if ctx and model.exact_shape else MAX_SEQ
    max_batch, max_seq, max_concurrency = engine.fit_search(model, w, est, lambda new: _fits(model, new, usable),
                                                            seq_limit)
    n, par = min_gpus(model, w, usable)
    ladder = quant_ladder(model, w, gpu, usable, seq_limit) if suggestions and engine.gguf_quants else ()
    sugg = _suggest(model, w, gpu, usable, base, max_seq, n, par, ladder) if suggestions and base > usable else []
    return FitAnswer(gpu=gpu, estimate=est, fits=base <= usable, max_batch=max(0, max_batch),
                     max_seq=max(0, max_seq), seq_limit=seq_limit, min_gpus=n, min_gpus_parallelism=par,
                     suggestions=tuple(sugg), max_concurrency=max_concurrency, needed_bytes=base,
                     budget_bytes=usable, assumed=assumed(model, w), ladder=ladder)


def quant_ladder(model: ResolvedModel, w: Workload, gpu: Gpu, usable: int, seq_limit: int) -> tuple[Rung, ...]:
    """Every GGUF file type (``memory/gguf_mix.py``), most bits per weight first: which fits with every layer on
    the GPU at the workload's context (and up to which context), which only with part of the layers (``-ngl``).
    Each is re-estimated as the user would type it; a GGUF file's own type is the file's, so it has no ladder."""
    from .memory.gguf_mix import GGUF_FTYPES, gguf_weight_bytes
    from .memory.gguf_quality import quality_note

    if model.kind == "gguf" or not model.params:
        return ()
    engine = engine_for(w)
    rungs = []
    for q in GGUF_FTYPES:
        changes: dict[str, Any] = {"quant": q, "n_gpu_layers": None}
        try:
            new = rebuild(w, changes)
            total = _total(model, new)
        except VramscopeError:
            continue
        bpw = round(gguf_weight_bytes(model.spec, q) * 8 / model.params, 2)
        fits_full = total <= usable
        max_seq, ngl = 0, None
        if fits_full:
            max_seq = largest_fitting(lambda s_: _total(model, replace(new, seq=s_)) <= usable, new.seq,
                                      max(seq_limit, new.seq))
        else:
            # llama.cpp's -ngl; an engine that places layers itself (Ollama) has no such search
            layers = getattr(engine, "max_gpu_layers", None)
            ngl = layers(model, new, usable, lambda x: _total(model, x)) if layers is not None else None
            if ngl is not None:
                changes["n_gpu_layers"] = ngl
        command = None if w.options is None else command_line(model, merge_options(w.options, changes), gpu)
        rungs.append(Rung(q, bpw, total, fits_full, max_seq, ngl, quality_note(q), command))
    rungs.sort(key=lambda r: -r.bits_per_weight)
    return tuple(rungs)


def assumed(model: ResolvedModel, w: Workload) -> tuple[tuple[str, dict[str, Any]], ...]:
    """What a fit answer assumed, for its header: the task and method, sequence, batch, precision, optimizer,
    checkpointing and engine (framework), each as the estimate resolves it (defaults included)."""
    from .estimators.common import compute_dtype

    dtype = compute_dtype(model, w)
    quant = "" if w.quant == "none" else f" + {w.quant}"
    out: list[tuple[str, dict[str, Any]]] = [("fa_task_" + w.task, {"method": w.method})]
    if w.engine == "vllm":
        out.append(("fa_vllm", {"seq": f"{w.max_model_len or model.spec.max_position_embeddings or w.seq:,}",
                                "seqs": w.max_num_seqs or "auto", "util": w.gpu_memory_utilization}))
    else:
        out.append(("fa_seq_default" if w.seq_default else "fa_seq", {"seq": f"{w.seq:,}", "o_seq": Opt("seq")}))
        out.append(("fa_batch", {"batch": w.batch, "accum": w.grad_accum}) if w.training
                   else ("fa_batch_inf", {"batch": w.batch}))
    if w.training:
        from .estimators.training import recipe_for

        out.append(("fa_precision_" + recipe_for(w, dtype), {"dtype": dtype, "quant": quant}))
        out.append(("fa_optimizer", {"optimizer": w.optimizer}))
        given = w.options is None or any(k in w.options for k in ("grad_checkpointing", "checkpoint_mode",
                                                                  "checkpoint_every"))
        out.append(("fa_ckpt_off" if not w.grad_checkpointing else "fa_ckpt_on" if given else "fa_ckpt_on_default",
                    {"o_on": Opt("grad_checkpointing"), "o_off": Opt("grad_checkpointing", False)}))
        out.append(("fa_framework_" + w.framework, {"o_framework": Opt("framework")}))
    else:
        gguf = engine_for(w).gguf_quants
        kv = (w.cache_type_k or w.kv_dtype or "f16") if gguf else (w.kv_dtype or dtype)
        out.append(("fa_dtype", {"dtype": (w.quant if w.quant != "none" else "f16") if gguf else dtype + quant,
                                 "kv": kv}))
        out.append(("fa_engine", {"engine": w.engine}))
    return tuple(out)


register({"r_fit_analytic": {"en": "fit searches the analytic estimator only", "zh": "fit 只搜索解析估算器"}})
