"""Pipeline parallelism (training): layers split into stages, micro-batches in flight, the busiest rank.

With ``pp`` stages, stage ``s`` holds ``n_layer / pp`` consecutive layers (the first stages take the
remainder); the first stage also holds the token embedding, the last the final norm, the output head and the loss
(Megatron-LM, ``megatron/core/pipeline_parallel``). Its parameters, gradients and optimizer states are its share of
the model's. Under the 1F1B schedule (Narayanan et al. 2021, arXiv 2104.04473 §2.2) stage ``s`` keeps the
activations of ``min(pp - s, m)`` micro-batches in flight (the first stage the most); under GPipe every stage keeps
all ``m`` (Huang et al. 2019). ``m`` is the number of micro-batches per step (``--grad-accum``). The loss head's
tensors live only on the last stage, one micro-batch at a time. The busiest stage is the per-GPU peak.

The interleaved 1F1B schedule (Narayanan et al. 2021 §2.2; Megatron-LM ``forward_backward_pipelining_with_
interleaving``) gives each GPU ``v`` model chunks of ``n_layer / (pp·v)`` layers; stage ``s`` warms up with
``2·(pp − s − 1) + (v − 1)·pp`` chunk forwards, so ``2·(pp − s − 1) + (v − 1)·pp + 1`` chunks' activations are in
flight (at most ``m·v``): on the first stage ``n_layer/pp · pp · (1 + (pp − 1)/(pp·v))`` layers' worth, the
factor of Korthikanti et al. 2022 §4.2.3.

Zero-bubble schedules (Qi et al. 2023, arXiv 2401.10241; torch ``distributed/pipelining/schedules.py``
``ScheduleZBVZeroBubble``, ``ScheduleInterleavedZeroBubble``, as torchtitan runs them) split each backward into the
input gradient (I) and the weight gradient (W); a micro-batch's chunk keeps what its W step needs (the linears'
inputs, most of what a layer saves) until W, so it is counted in flight from F to W. ZBV gives each rank two chunks
in a V: rank ``r`` holds stages ``r`` and ``2·pp − 1 − r``, so rank 0 holds the embedding *and* the output head and
loss; its order keeps ``min(2·pp, m + r + 1, 2·m)`` chunks in flight on rank ``r``. The interleaved zero-bubble
schedule (``v`` chunks per rank, stages ``r, r + pp, …``) keeps ``min(v·pp, v·m)``. Both counts, and the 1F1B,
GPipe and interleaved ones above, are what torch 2.13's own ``pipeline_order`` of each schedule gives per rank
(tests/test_pipeline_schedules.py builds the schedules on a fake process group and counts).
"""

from __future__ import annotations

from typing import Any

from ..model.spec import ModelSpec
from ..model.tensors import groups, params_in_layers

SCHEDULES = ("1f1b", "gpipe", "interleaved", "interleaved-zb", "zbv")


def stage_layers(n_layer: int, pp: int) -> list[int]:
    return [n_layer // pp + (1 if s < n_layer % pp else 0) for s in range(pp)]


def rank_layer_ranges(n_layer: int, pp: int, schedule: str = "1f1b",
                      sizes: list[int] | None = None) -> list[list[tuple[int, int]]]:
    """The decoder layers each rank holds, as ranges: consecutive ones (one stage per rank; ``sizes``: each
    stage's layer count, default :func:`stage_layers`), or under ZBV its two stages of the ``2·pp`` (``r`` and
    ``2·pp − 1 − r``)."""
    if schedule != "zbv":
        sizes, lo, out = sizes or stage_layers(n_layer, pp), 0, []
        for n in sizes:
            out.append([(lo, lo + n)])
            lo += n
        return out
    sizes, bounds, lo = stage_layers(n_layer, 2 * pp), [], 0
    for n in sizes:
        bounds.append((lo, lo + n))
        lo += n
    return [[bounds[r], bounds[2 * pp - 1 - r]] for r in range(pp)]


def head_rank(pp: int, schedule: str) -> int:
    """The rank holding the final norm, the output head and the loss (ZBV: rank 0, the V's turn)."""
    return 0 if schedule == "zbv" else pp - 1


def stage_param_fractions(spec: ModelSpec, pp: int, schedule: str = "1f1b",
                          sizes: list[int] | None = None) -> list[float]:
    """Each stage's share of the parameters (embedding on the first, head and final norm on the last; ZBV: both
    on rank 0); ``sizes``: each stage's layer count (default :func:`stage_layers`; vLLM splits its own way)."""
    ranges = rank_layer_ranges(spec.num_layers, pp, schedule, sizes)
    layers = emb = head = 0
    for g in groups(spec):
        if g.tensor.layer is not None:
            layers += g.numel
        elif g.tensor.role in ("embedding", "position_embedding"):
            emb += g.numel
        else:
            head += g.numel
    if spec.tie_embeddings:
        head += sum(g.numel for g in groups(spec) if g.tensor.role == "embedding")  # the last stage keeps a copy
    total = layers + emb + head
    out = []
    for s in range(pp):
        p = sum(params_in_layers(spec, a, b) for a, b in ranges[s])
        p += emb if s == 0 else 0
        p += head if s == head_rank(pp, schedule) else 0
        out.append(p / total if total else 0.0)
    return out


def stage_cast_fractions(spec: ModelSpec, pp: int, schedule: str = "1f1b") -> list[float]:
    """Each stage's share of the linear weights autocast casts (its layers' linears; the output head's on the last
    stage, a tied head's being the embedding's weight): the weight-cast cache a stage holds is its own slice's."""
    ranges = rank_layer_ranges(spec.num_layers, pp, schedule)
    per = [0] * pp
    head = 0
    for g in groups(spec):
        if not g.tensor.linear and not (spec.tie_embeddings and g.tensor.role == "embedding"):
            continue
        if g.layers.count:
            for s, held in enumerate(ranges):
                per[s] += sum(g.tensor.numel * g.layers.between(a, b) for a, b in held)
        else:
            head += g.numel
    per[head_rank(pp, schedule)] += head
    total = sum(per)
    return [x / total if total else 1.0 / pp for x in per]


def in_flight_layers(stage: int, pp: int, micro_batches: int, schedule: str, stage_layers_: int,
                     virtual: int = 2) -> float:
    """Layers' worth of one micro-batch's activations stage ``stage`` holds at its peak (module docstring)."""
    if schedule == "gpipe":
        return stage_layers_ * micro_batches
    if schedule == "zbv":
        return min(2 * pp, micro_batches + stage + 1, 2 * micro_batches) * stage_layers_ / 2
    if schedule == "interleaved-zb":
        return min(virtual * pp, virtual * micro_batches) * stage_layers_ / virtual
    if schedule == "interleaved":
        chunks = min(2 * (pp - stage - 1) + (virtual - 1) * pp + 1, micro_batches * virtual)
        return chunks * stage_layers_ / virtual
    return stage_layers_ * min(pp - stage, micro_batches)


def recv_buffers(rank: int, pp: int, micro_batches: int, schedule: str, boundary: int, virtual: int = 2,
                 saved_in_flight: float = 0.0) -> int:
    """The receive buffers torch 2.13's ``PipelineStage`` preallocates, one per micro-batch, and keeps for the
    stage's life (``torch/distributed/pipelining/stage.py``: ``_prepare_forward_infra`` builds
    ``args_recv_info[chunk]`` for every chunk with ``_make_tensor_from_meta``, ``_setup_backward_recv_info`` a
    ``grad_recv_info[chunk]`` buffer each): every stage but the first receives its input activations, every stage
    but the last its output gradients, ``boundary`` bytes each (one micro-batch's hidden states). A rank's
    stages: one (1F1B, GPipe) or ``virtual`` of ``pp·virtual`` (interleaved, ``r + k·pp``). Traced by running
    the schedules on torch's fake process group (bench/pipeline_trace.py). The zero-bubble schedules (ZBV,
    interleaved zero bubble) hold other counts (traced there, not modelled: 0).

    ``saved_in_flight``: micro-batches whose input buffer is itself a saved activation (already counted as
    one): with an fp32 residual stream the first norm's ``x.float()`` is the buffer, so the in-flight ones
    overlap; a 16-bit stream is saved as its fp32 copy and the residual add saves nothing (0)."""
    if schedule in ("zbv", "interleaved-zb") or pp < 2:
        return 0
    n = pp * virtual if schedule == "interleaved" else pp
    stages = [rank + k * pp for k in range(virtual)] if schedule == "interleaved" else [rank]
    acts = sum(s > 0 for s in stages) * max(0.0, micro_batches - saved_in_flight)
    grads = sum(s < n - 1 for s in stages) * micro_batches
    return int((acts + grads) * boundary)


def pipeline_stages(spec: ModelSpec, pp: int, micro_batches: int, schedule: str,
                    phases: dict[str, dict[str, int]], layer_activations: int, virtual: int = 2,
                    cast_cache: int = 0, boundary: int = 0,
                    boundary_saved: bool = False) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Per-stage phases from the one-rank phases; returns the busiest stage's phases and a row per stage.

    ``layer_activations`` is what all layers save for one micro-batch. Activations beyond it (the loss head's)
    stay on the last stage; a phase holding less than it (one recomputed layer) is kept as it is. ``cast_cache``
    (autocast's 16-bit weight copies, part of the forward phase's activations) splits by each stage's linear
    weights (:func:`stage_cast_fractions`): every stage caches the casts of its own slice, once for all its
    micro-batches. ``boundary``: one micro-batch's hidden states at a stage boundary, for torch's receive
    buffers (:func:`recv_buffers`), alive from the first step on (every phase but load); ``boundary_saved``: the
    received input is itself saved by the stage's first layer (an fp32 residual stream).
    """
    sizes = [sum(b - a for a, b in held) for held in rank_layer_ranges(spec.num_layers, pp, schedule)]
    fracs = stage_param_fractions(spec, pp, schedule)
    cast_fracs = stage_cast_fractions(spec, pp, schedule) if cast_cache else [0.0] * pp
    per_layer = layer_activations / max(1, spec.num_layers)
    states = ("weights", "gradients", "optimizer_states", "optimizer_temp")
    rows = []
    best: tuple[int, dict[str, dict[str, int]]] = (-1, phases)
    for s in range(pp):
        held = in_flight_layers(s, pp, micro_batches, schedule, sizes[s], virtual)
        in_flight = round(held / sizes[s], 2) if sizes[s] else 0
        last = s == head_rank(pp, schedule)
        stage_phases: dict[str, dict[str, int]] = {}
        for name, comp in phases.items():
            new = {}
            for k, v in comp.items():
                if k in states:
                    new[k] = int(v * fracs[s])
                elif k == "activations" and v >= layer_activations:
                    # the stage's share of every in-flight micro-batch; whatever else (loss, casts) on the last
                    extra = v - layer_activations
                    cast = min(cast_cache, extra) if name == "forward" else 0
                    new[k] = int(per_layer * held) + (extra - cast if last else 0) + int(cast * cast_fracs[s])
                elif k in ("loss_head", "temporaries"):
                    new[k] = v if last else 0
                else:
                    new[k] = v
            recv = recv_buffers(s, pp, micro_batches, schedule, boundary, virtual,
                                in_flight if boundary_saved else 0.0) if name != "load" else 0
            if recv:
                new["activations"] = new.get("activations", 0) + recv
            stage_phases[name] = new
        peak = max(sum(p.values()) for p in stage_phases.values())
        kind = "first stage" if s == 0 else ("last stage" if s == pp - 1 else "middle stage")
        rows.append({"stage": s, "kind": kind, "layers": sizes[s], "micro_batches_in_flight": in_flight,
                     "peak_bytes": peak})
        if peak > best[0]:
            best = (peak, stage_phases)
    return best[1], rows
