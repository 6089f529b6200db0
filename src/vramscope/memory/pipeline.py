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


def torchtitan_stage_layers(num_layers: int, num_stages: int, input_weight: int = 1,
                            output_weight: int = 1) -> list[int]:
    """Each stage's decoder-layer count as torchtitan splits a decoder (pytorch/torchtitan b5bcd76, the same at
    v0.3.0: ``torchtitan/distributed/pipeline_parallel.py _generate_llm_fqn_per_model_part``): the layers and
    the embedding and output modules spread as ``L + input_weight + output_weight`` "effective layers"
    (``pipeline_parallel_first_stage_less_layers`` / ``..._last_stage_less_layers``, 1 each by default,
    ``config/configs.py``), ``(L + 2) // S`` per stage and one more on the first ``(L + 2) % S``; the first stage's
    embedding and the last stage's norm + head take one layer's place each. Raises ``ValueError`` where torchtitan
    refuses the split (an empty stage, a weight above a stage's share)."""
    if num_stages == 1:
        return [num_layers]
    effective = num_layers + input_weight + output_weight
    per, extra = divmod(effective, num_stages)
    if per == 0 or input_weight > per or output_weight > per:
        raise ValueError(f"{num_stages} stages for {num_layers} layers")
    out, left = [], num_layers
    for s in range(num_stages):
        n = per + (1 if s < extra else 0)
        n -= input_weight if s == 0 else (output_weight if s == num_stages - 1 else 0)
        n = min(n, left)
        out.append(n)
        left -= n
    return out


def total_stages(pp: int, schedule: str, virtual: int = 2) -> int:
    """Pipeline stages over all ranks: one per rank, two under ZBV, ``virtual`` under the interleaved ones."""
    return 2 * pp if schedule == "zbv" else (pp * virtual if schedule.startswith("interleaved") else pp)


def rank_layer_ranges(n_layer: int, pp: int, schedule: str = "1f1b",
                      sizes: list[int] | None = None, split: str = "even",
                      virtual: int = 2) -> list[list[tuple[int, int]]]:
    """The decoder layers each rank holds, as ranges: consecutive ones (one stage per rank; ``sizes``: each
    stage's layer count, default :func:`stage_layers`), or under ZBV its two stages of the ``2·pp`` (``r`` and
    ``2·pp − 1 − r``). ``split="torchtitan"``: the stages as torchtitan cuts them (:func:`torchtitan_stage_layers`
    over :func:`total_stages`), rank ``r`` holding stages ``r, r + pp, …`` or the V pair under ZBV
    (``_get_pp_rank_to_stage_indices_mapping``)."""
    if split == "torchtitan" and sizes is None:
        n_stages = total_stages(pp, schedule, virtual)
        bounds, lo = [], 0
        for n in torchtitan_stage_layers(n_layer, n_stages):
            bounds.append((lo, lo + n))
            lo += n
        if schedule == "zbv":
            return [[bounds[r], bounds[2 * pp - 1 - r]] for r in range(pp)]
        return [[bounds[r + k * pp] for k in range(n_stages // pp)] for r in range(pp)]
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
                          sizes: list[int] | None = None, split: str = "even", virtual: int = 2) -> list[float]:
    """Each stage's share of the parameters (embedding on the first, head and final norm on the last; ZBV: both
    on rank 0); ``sizes``: each stage's layer count (default :func:`stage_layers`; vLLM splits its own way);
    ``split``, ``virtual``: as :func:`rank_layer_ranges`."""
    counts = stage_params(spec, pp, schedule, sizes, split, virtual)
    total = stage_params(spec, 1)[0]
    return [c / total if total else 0.0 for c in counts]


def stage_params(spec: ModelSpec, pp: int, schedule: str = "1f1b", sizes: list[int] | None = None,
                 split: str = "even", virtual: int = 2) -> list[int]:
    """Each rank's parameter count (:func:`stage_param_fractions`; a tied head's copy counted on its stage)."""
    ranges = rank_layer_ranges(spec.num_layers, pp, schedule, sizes, split, virtual)
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
    out = []
    for s in range(pp):
        p = sum(params_in_layers(spec, a, b) for a, b in ranges[s])
        p += emb if s == 0 else 0
        p += head if s == head_rank(pp, schedule) else 0
        out.append(p)
    return out


def stage_cast_fractions(spec: ModelSpec, pp: int, schedule: str = "1f1b", split: str = "even",
                         virtual: int = 2) -> list[float]:
    """Each stage's share of the linear weights autocast casts (its layers' linears; the output head's on the last
    stage, a tied head's being the embedding's weight): the weight-cast cache a stage holds is its own slice's."""
    ranges = rank_layer_ranges(spec.num_layers, pp, schedule, None, split, virtual)
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


def _stage_units(spec: ModelSpec, pp: int, schedule: str, ranges: list[list[tuple[int, int]]]
                 ) -> list[list[list[tuple[int, int]]]]:
    """Each rank's FSDP2 units as torchtitan wraps them, per stage the rank holds (its chunks, in the order held:
    ``r, r + pp, …``), each unit in the stage module's order (the embedding, the layers, [norm, head]) as
    ``(parameters, its last parameter)``: the last one is what ``foreach_reduce`` still holds when it allocates
    the reduce-scatter's output (:func:`_reduce_moments`). A decoder layer registers its norms last
    (transformers' ``LlamaDecoderLayer.__init__``: ``self_attn``, ``mlp``, ``input_layernorm``,
    ``post_attention_layernorm``), so its last parameter is ``hidden`` elements; [norm, head]'s is the head's
    weight (torchtitan ``fully_shard([model.norm, model.output])``), the embedding's its one weight."""
    emb = sum(g.numel for g in groups(spec) if g.tensor.layer is None and g.tensor.role in ("embedding",
                                                                                           "position_embedding"))
    tail = [g.numel for g in groups(spec) if g.tensor.layer is None and g.tensor.role not in (
        "embedding", "position_embedding")]
    head, head_last = sum(tail), max(tail, default=0)
    if spec.tie_embeddings:
        head += emb
        head_last = max(head_last, emb)
    out = []
    for s in range(pp):
        chunks = []
        for c, (a, b) in enumerate(ranges[s]):
            units = [(emb, emb)] if s == 0 and c == 0 else []
            units += [(params_in_layers(spec, i, i + 1), spec.hidden_size) for i in range(a, b)]
            if s == head_rank(pp, schedule) and c == len(ranges[s]) - 1:
                units.append((head, head_last))
            chunks.append(units)
        out.append(chunks)
    return out


def reduce_rounds(pp: int, micro_batches: int) -> int:
    """Micro-batches per round of torch 2.13's ``ScheduleInterleaved1F1B`` (``schedules.py``:
    ``number_of_rounds = max(1, n_microbatches // pp_group_size)``, ``microbatches_per_round = n_microbatches //
    number_of_rounds``): its backwards run in blocks of that many micro-batches per chunk, the chunks in reverse
    order (``backward_stage_index``), so when a rank's chunk ``c`` has run its last backward, each chunk below it
    still holds its last block's micro-batches."""
    return micro_batches // max(1, micro_batches // pp)


def _reduce_moments(chunks: list[list[tuple[int, int]]], schedule: str, m: int, pp: int, per_layer: float,
                    gather: float, reduce: float, dp: int, recv: int,
                    flight: int) -> list[tuple[int, int, int, int, int]]:
    """The last micro-batch's reduce-scatters on a rank, as moments ``(activations, gradients, temporaries,
    in flight, gathered weights freed)`` (:func:`_backward_moment`). Each unit is resharded first
    (``_fsdp_param_group.py post_backward``: ``if self.reshard_after_backward: self.reshard()`` before
    ``foreach_reduce``, ``perform_reduce_grad`` having set ``set_reshard_after_backward(True)``), so its
    param_dtype copy and those of the units reduced before are gone. torch 2.13's ``_PipelineScheduleRuntime``
    adds a ``REDUCE_GRAD`` after a stage's last backward (``schedules.py _add_reduce_grad``; ``stage.py perform_reduce_grad`` runs every
    FSDP2 unit's ``post_backward``), so a rank holding several stages (interleaved 1F1B) reduces its chunks in the
    order of their last backwards, the highest first, while each lower chunk still holds
    :func:`reduce_rounds` micro-batches' activations (traced: interleaved 1F1B's last rank peaks at its head
    stage's reduce-scatter, its first stage holding 4 micro-batches). A unit's ``foreach_reduce`` (torch 2.13
    ``distributed/fsdp/_fully_shard/_fsdp_collectives.py``) allocates the reduce_dtype input (``chunk_cat`` of
    the unit's gradients) beside its accumulated gradients, then clears them, but its ``for i, (fsdp_param,
    unsharded_grad) in enumerate(zip(...))`` loop variable keeps the unit's last gradient alive until it
    returns, through the allocation of the reduce-scatter's output (``reduce_scatter_output_numel =
    input // world_size``): the larger of ``u·R`` (the copy-in) and ``last·R + u·R/dp`` (the output) beside the
    gradients, the units reduced before sharded (``u·R/dp``), the receive buffers alive throughout."""
    full = int(sum(u for units in chunks for u, _ in units) * reduce)
    rounds = reduce_rounds(pp, m) if schedule == "interleaved" else 0
    out, done, freed = [], 0, 0
    for c in reversed(range(len(chunks))):
        lower = int(rounds * per_layer * sum(len(u) for u in chunks[:c]))  # the lower chunks' last blocks
        for u, last in chunks[c]:
            freed += int(u * gather)  # ``post_backward`` reshards the unit before its ``foreach_reduce``
            extra = max(int(u * reduce), int(last * reduce) + int(u * reduce / dp))
            out.append((recv + lower, full - done, extra, flight, freed))
            done += int(u * reduce * (1 - 1 / dp))
    return out


def _always_moments(s: int, chunks: list[list[tuple[int, int]]], acts: int, per_layer: float, layers: int,
                    gather: float, reduce: float, last: bool, loss_backward: int,
                    logits: int) -> list[tuple[int, int, int, int, int]]:
    """A steady micro-batch's backward under torchtitan's ``fsdp_reshard_after_forward = "always"`` (every unit
    ``reshard_after_forward=True``, [norm, head] too): the micro-batch's forward resharded each unit
    (``_fsdp_param_group.py post_forward`` → ``reshard``), its backward re-gathers them in reverse order
    (``pre_backward`` → ``unshard``, then ``_backward_prefetch`` of the next unit) and keeps them
    (``stage.py backward_maybe_with_nosync``: ``set_reshard_after_backward(False)``), so at unit ``j``'s backward
    the units from ``j`` to the stage's end and the prefetched one before are gathered, the rest not; the rank's
    other stages (interleaved) counted resharded (their last op a forward). Moments as :func:`_backward_moment`'s
    ``(activations, gradients, temporaries, in flight, gathered weights freed)``."""
    total = int(sum(u for c in chunks for u, _ in c) * gather)
    full = int(sum(u for c in chunks for u, _ in c) * reduce)
    out = []
    for c, chunk in enumerate(chunks):
        rev = [u for u, _ in reversed(chunk)]
        for j, u in enumerate(rev):
            held = int((sum(rev[:j + 1]) + (rev[j + 1] if j + 1 < len(rev) else 0)) * gather)
            emb = s == 0 and c == 0 and j == len(rev) - 1
            head = last and c == len(chunks) - 1 and j == 0
            if emb:  # the embedding's backward, the micro-batch's activations gone
                out.append((acts - int(per_layer * layers), full, int(u * gather), acts, total - held))
            elif head:  # the loss's backward (nothing gathered), then the head's beside the logits
                out.append((acts, full, loss_backward, acts, total))
                out.append((acts, full, int(u * gather) + 2 * logits, acts, total - held))
            else:
                out.append((acts, full, int(u * gather), acts, total - held))
    return out


def _backward_moment(s: int, chunks: list[list[tuple[int, int]]], schedule: str, m: int, acts: int,
                     per_layer: float, layers: int, gather: float, reduce: float, dp: int, last: bool,
                     loss_backward: int, loss_held: int, logits: int = 0, pp: int = 1,
                     recv: int = 0, always: bool = False) -> dict[str, int]:
    """The largest moment of a torchtitan stage's backward under FSDP2 (:func:`pipeline_stages` ``unsharded``), as
    its activations, gradients and temporaries. ``units``: the stage's FSDP2 units' parameter counts in the stage
    module's order (the embedding first on stage 0, the norm + head last on the last stage); ``acts``: every
    in-flight micro-batch's activations with the receive buffers.

    In a micro-batch's backward the units run in reverse order, each one's param_dtype gradient written beside
    the reduce_dtype ones accumulated before it is added in (``_fsdp_param.py to_accumulated_grad_if_needed``).
    1F1B and the interleaved schedules run their backwards with their full in-flight count and, from the
    second on, every unit's gradient accumulated: that moment is the largest. GPipe (``schedules.py
    ScheduleGPipe._step_microbatches``: every forward, then the backwards in order) holds ``m − k`` micro-batches
    in flight at the backward of micro-batch ``k``: at ``k = 0`` all of them but only the gradients of the units
    its backward has passed, each unit's post-backward converting its param_dtype gradient into the
    reduce_dtype one (``unsharded_grad.to(reduce_dtype)``, both alive; the activations of the layers passed in
    micro-batch 0 already freed); from ``k = 1`` on every gradient, added in place (``accumulate_unsharded_grad_
    if_needed``: ``+=``, no copy), but one micro-batch fewer; on the last stage the loss tensors of the
    micro-batches still waiting (``loss_held`` each) are alive through every moment of the backward at ``k``,
    whose loss backward comes before any unit's. The last stage's output head backward writes its param_dtype
    weight gradient beside the stage's output (``logits``: ``backward_one_chunk`` holds it to its end) and its
    gradient (traced: GPipe's last stage at 512 tokens peaks there, −3.6% without them). The last micro-batch's
    reduce-scatters (``PipelineStage.perform_reduce_grad``, unit by unit in the stage module's order, a rank's
    stages in the order of their last backwards) are moments too (:func:`_reduce_moments`). ``chunks``: the
    rank's units per stage (:func:`_stage_units`); ``recv``: its receive buffers (part of ``acts``)."""
    units = [u for chunk in chunks for u, _ in chunk]
    full = int(sum(units) * reduce)
    own = units[1:] if s == 0 else units  # the units with a layer's (or the head's) backward
    moments = []  # (activations, gradients, temporaries, the micro-batches' activations in flight at that moment)

    def at(k: int) -> None:
        flight = acts - (int(per_layer * layers) * k if schedule == "gpipe" else 0)
        # GPipe's last stage: the loss tensors of the micro-batches whose backward has not come yet
        waiting = (m - 1 - k) * loss_held if last and schedule == "gpipe" else 0
        # the head's backward: its param_dtype weight gradient written beside the stage's output (the logits,
        # held by ``backward_one_chunk`` to its end) and their gradient
        head = int(units[-1] * gather) + 2 * logits if last else 0
        if k == 0 and schedule == "gpipe":  # the first backward: only the units already passed have gradients
            done = freed = 0
            for j, u in enumerate(reversed(units)):
                layer = not (s == 0 and j == len(units) - 1) and not (last and j == 0)
                freed += int(per_layer) if layer else 0
                done += u
                # its post-backward: the param_dtype gradient beside its reduce_dtype copy (``.to``)
                moments.append((flight - freed, int(done * reduce), int(u * gather) + waiting, flight))
            if last:
                moments.append((flight, 0, loss_backward + waiting, flight))
                moments.append((flight, 0, head + waiting, flight))
            return
        moments.append((flight, full, int(max(own, default=0) * gather) + waiting, flight))
        if s == 0:  # the embedding's backward, that micro-batch's activations gone
            moments.append((flight - int(per_layer * layers), full, int(units[0] * gather), flight))
        if last:
            moments.append((flight, full, loss_backward + waiting, flight))
            moments.append((flight, full, head + waiting, flight))

    if always and schedule != "gpipe":
        moments = list(_always_moments(s, chunks, acts, per_layer, layers, gather, reduce, last,
                                                      loss_backward, logits))
    elif schedule == "gpipe":
        at(0)
        if m > 1:
            at(1)
    else:
        at(1)
    if not (always and schedule != "gpipe"):
        moments = [(*x, 0) for x in moments]
    moments = moments + _reduce_moments(chunks, schedule, m, pp, per_layer, gather, reduce, dp,
                                                           recv, acts)
    a, g, t, flight, freed = max(moments, key=lambda x: sum(x[:3]) - x[4])
    # reported as the in-flight activations and what the moment holds beside them (a temporary, or less), and
    # the gathered weights already resharded at that moment (taken off the stage's weights)
    return {"activations": flight, "gradients": g, "temporaries": a + t - flight, "weights_freed": freed}


def pipeline_stages(spec: ModelSpec, pp: int, micro_batches: int, schedule: str,
                    phases: dict[str, dict[str, int]], layer_activations: int, virtual: int = 2,
                    cast_cache: int = 0, boundary: int = 0,
                    boundary_saved: bool = False, collect: list | None = None, split: str = "even",
                    unsharded: tuple[float, float, int] | None = None, loss_backward: int = 0,
                    loss_held: int = 0, logits: int = 0, reshard_after_forward: bool = False,
                    ) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Per-stage phases from the one-rank phases; returns the busiest stage's phases and a row per stage.

    ``layer_activations`` is what all layers save for one micro-batch. Activations beyond it (the loss head's)
    stay on the last stage; a phase holding less than it (one recomputed layer) is kept as it is. ``cast_cache``
    (autocast's 16-bit weight copies, part of the forward phase's activations) splits by each stage's linear
    weights (:func:`stage_cast_fractions`): every stage caches the casts of its own slice, once for all its
    micro-batches. ``boundary``: one micro-batch's hidden states at a stage boundary, for torch's receive
    buffers (:func:`recv_buffers`), alive from the first step on (every phase but load); ``boundary_saved``: the
    received input is itself saved by the stage's first layer (an fp32 residual stream). ``collect``: a list
    that receives every stage's phases (the trace comparison, bench/pipeline_trace.py). ``split``: the layers'
    split over the stages (:func:`rank_layer_ranges`).

    ``unsharded`` (param bytes, reduce bytes, FSDP2 ranks): FSDP2 inside each stage as torchtitan applies it under pipeline
    parallelism (``distributed/fsdp.py get_fsdp_reshard_after_forward_policy``: ``reshard_after_forward`` is off
    for every unit when PP is on), run by torch 2.13's ``PipelineStage`` (``stage.py
    backward_maybe_with_nosync``: every micro-batch's backward but the last with ``set_requires_gradient_sync
    (False)`` and ``set_reshard_after_backward(False)``): once a unit is gathered it stays gathered to the step's
    last backward, so through forward and backward the rank holds its whole stage unsharded in param_dtype beside
    its fp32 shards, and the gradients accumulate unsharded in reduce_dtype (``_fsdp_param.py
    to_accumulated_grad_if_needed`` / ``accumulate_unsharded_grad_if_needed``) until the last micro-batch's
    reduce-scatter; the sharded gradients of the step before were set to None by ``zero_grad``. Traced on the real
    decoder (bench/pipeline_trace.py ``--real``). The backward phase is then the largest of its moments on the
    stage (each beside the shards, the gathered stage, the states and the accumulated gradients): a unit's
    backward (a layer, or the output head) with every in-flight micro-batch's activations, its param_dtype
    gradient not yet accumulated; on the first stage the embedding's backward, its
    param_dtype gradient of the whole vocabulary with one micro-batch's activations gone; on the last the loss's
    backward (``loss_backward``: the logits the schedule keeps, what the loss saved and its two fp32 gradients;
    under GPipe every micro-batch's forward runs first, each keeping its logits and what its loss saved,
    ``loss_held``, until its backward: traced, 8 micro-batches);
    and the last micro-batch's reduce-scatters (``PipelineStage.perform_reduce_grad``, unit by unit in the
    stage module's order), each unit's reduce_dtype input beside what is still accumulated, the activations gone.
    """
    ranges = rank_layer_ranges(spec.num_layers, pp, schedule, None, split, virtual)
    sizes = [sum(b - a for a, b in held) for held in ranges]
    fracs = stage_param_fractions(spec, pp, schedule, None, split, virtual)
    counts = stage_params(spec, pp, schedule, None, split, virtual)
    units = _stage_units(spec, pp, schedule, ranges)
    cast_fracs = stage_cast_fractions(spec, pp, schedule, split, virtual) if cast_cache else [0.0] * pp
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
            if unsharded is not None and name in ("forward", "backward"):
                gather, reduce, dp = unsharded
                new["weights"] = int(phases["load"].get("weights", 0) * fracs[s]) + int(counts[s] * gather)
                full = int(counts[s] * reduce)
                # GPipe runs every forward of the step before its first backward: no gradient is accumulated yet
                # (the step before's sharded ones were set to None by zero_grad)
                new["gradients"] = 0 if name == "forward" and schedule == "gpipe" else full
                acts = int(per_layer * held) + recv
                new["activations"] = acts
                new["temporaries"] = 0
                if name == "backward":
                    new.update(_backward_moment(s, units[s], schedule, micro_batches, acts, per_layer, sizes[s],
                                                gather, reduce, dp, last, loss_backward, loss_held, logits,
                                                pp=pp, recv=recv, always=reshard_after_forward))
                    new["weights"] -= new.pop("weights_freed")
                elif reshard_after_forward and schedule != "gpipe":
                    # "always": a forward after a backward starts with the stage gathered and reshards unit by
                    # unit as its micro-batch's activations grow: at most the larger of the two ends
                    mb = int(per_layer * sizes[s] / max(1, len(ranges[s])))
                    new["weights"] -= min(int(counts[s] * gather), mb)
            stage_phases[name] = new
        if collect is not None:
            collect.append(stage_phases)
        peak = max(sum(p.values()) for p in stage_phases.values())
        kind = "first stage" if s == 0 else ("last stage" if s == pp - 1 else "middle stage")
        rows.append({"stage": s, "kind": kind, "layers": sizes[s], "micro_batches_in_flight": in_flight,
                     "peak_bytes": peak})
        if peak > best[0]:
            best = (peak, stage_phases)
    return best[1], rows
