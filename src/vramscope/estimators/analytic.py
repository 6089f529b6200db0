"""The analytic estimator: architecture-aware components, assembled into per-phase live sets.

Inference: the workload's engine gives the phases (``engines/``: transformers, vLLM, llama.cpp behind one
protocol, ``engines/base.py``).

Training (one optimizer step at steady state, i.e. step ≥ 2, when optimizer states exist):

* ``forward`` (end of forward): weights + optimizer states + saved activations + loss head
  (+ gradients kept across micro-batches under gradient accumulation, + the AMP cast cache);
* ``backward``: weights + optimizer states + the larger of (saved activations + cross-entropy backward
  transient) at its start and (all gradients + one layer's activations) at its end;
* ``optimizer_step``: weights + gradients + optimizer states + the step's temporaries.

The total is the largest phase; the components shown are that phase's. Precision recipes:

* ``pure``: parameters, gradients and optimizer states in the compute dtype (a model loaded with
  ``torch_dtype=bf16`` and trained with torch's AdamW, the Hugging Face Trainer / torchtune default for
  fine-tuning);
* ``mixed``: fp32 parameters, gradients and states with autocast computing in bf16/fp16, which caches a 16-bit
  copy of each linear weight during forward (``torch.autocast`` weight cast cache); the ``auto`` default for
  pretraining;
* ``fp32``: everything in fp32.

LoRA/QLoRA: the base is frozen (its weights in the compute dtype or 4-bit), adapters are fp32 with fp32
gradients and states (peft ``autocast_adapter_dtype=True``).
"""

from __future__ import annotations

from dataclasses import replace

from ..engines.base import ENGINES
from ..memory.activations import effective_attn
from ..memory.async_tp import symm_workspace
from ..memory.parallel import tp_shard_spec
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..strategy import Strategy
from ..units import format_bytes
from ..workload import Workload
from . import training
from .common import compute_dtype, shape_note, trainable_for

Phases = dict[str, dict[str, int]]



def _inference(model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption], extra: dict,
               gpus: tuple) -> Phases:
    """The workload's engine's phases (``engines/``); its report becomes the estimate's ``engine`` fields."""
    phases, report = ENGINES[w.engine].inference(model, w, dtype, notes, gpus)
    if report is not None:
        extra.update(report.to_dict())
    return phases


def _tensor_parallel(model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                     extra: dict, cc: str = "") -> tuple[Phases, int]:
    # Megatron tensor parallelism: each rank trains the slice of every layer that tp_shard_spec describes
    # (heads, MLP, vocabulary split); norms and the residual stream are replicated, and so are their
    # activations unless Megatron sequence parallelism shards them
    tp = w.tp_degree
    shard = tp_shard_spec(model.spec, tp)
    rank_model = replace(model, spec=shard, params=shard.params, active_params=shard.active_params,
                         stored=None, stored_format="")
    notes.append(Assumption("a_tp_train_sp" if w.sequence_parallel else "a_tp_train", {"n": tp}))
    whole = w.strategy.is_tensor_parallel  # --parallelism tp: every GPU a tensor-parallel rank
    sub = replace(w, parallelism=Strategy.NONE.value if whole else w.parallelism, tp=1,
                  num_gpus=1 if whole else max(1, w.num_gpus // tp))
    result = _training(rank_model, sub, dtype, notes, extra, tp if w.sequence_parallel else 1, tp=tp, cc=cc)
    extra.setdefault("parallel", {"dp": sub.dp, "pp": w.pp, "sp": w.sp, "ep": w.ep, "shard_group": 1,
                                  "parallelism": sub.parallelism})
    extra["parallel"].update(world=w.num_gpus, tp=tp)
    return result


def _training(model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
              extra: dict, seq_shard: int = 1, tp: int = 1, cc: str = "") -> tuple[Phases, int]:
    """One optimizer step as named steps (``training.py``): precision → saved activations → sharding →
    offload → the per-phase moments → pipeline stages. ``cc``: the first GPU's compute capability."""
    if w.tp_degree > 1:
        return _tensor_parallel(model, w, dtype, notes, extra, cc)
    spec, t = model.spec, trainable_for(model, w)
    p = training.precision(model, w, dtype, t, notes, cc=cc)
    saved = training.saved_activations(spec, w, p, training.train_flags(spec, w), seq_shard, notes, tp=tp)
    if w.async_tp and tp > 1:
        # the TP group's symmetric-memory workspace (outside torch's allocator) and the side stream's cuBLAS
        # workspace (memory/async_tp.py; api._with_device_terms puts both on the device)
        extra["_symm_mem"] = symm_workspace(spec.hidden_size, w.batch, saved.seq_local, tp, p.act_bytes)
        notes.append(Assumption("a_async_tp", {"n": tp, "workspace": format_bytes(extra["_symm_mem"], "MiB")}))
    lay = training.layout(spec, w, t, p, notes)
    if w.offload != "none":
        off = training.offload(spec, w, t, p, lay, notes)
        lay = off.layout
        if off.nvme is not None:
            extra["nvme_bytes"] = off.nvme
        extra.update(offload=w.offload, host_bytes=off.host)
    training.report_parallel(w, lay.n, extra)
    if w.profile.offload_checkpoint and w.grad_checkpointing and w.checkpoint_mode == "full" \
            and not w.activation_offload and w.checkpoint_every == 1:
        acts, host_acts = training.unsloth_offload(spec, w, saved.acts, p.act_bytes, notes)
        saved = replace(saved, acts=acts)
        extra["host_bytes"] = extra.get("host_bytes", 0) + host_acts
    if w.activation_offload:
        acts, host_acts = training.offload_activations(saved.acts, notes)
        saved = replace(saved, acts=acts)
        extra["host_bytes"] = extra.get("host_bytes", 0) + host_acts
    stuck = training.stable_embedding_grad(spec, w, p.a)  # LitGPT's StableEmbedding: a gradient nothing clears
    kept = training.kept_gradients(w, t, p, lay.grads, lay.backward_only) + stuck
    kept_bwd = training.kept_gradients(w, t, p, lay.grads, lay.backward_only, backward=True) + stuck
    if stuck:
        lay = replace(lay, grads=lay.grads + stuck)
    tr = training.transients(spec, w, p, saved.flags, lay.buf)
    if saved.acts.layer_forward_extra:
        # the loss head passes through forward where eager attention's scores are its peak moment: its churn of
        # the allocator's cache is still counted (api._with_device_terms takes it out of extra)
        extra["_loss_head"] = saved.acts.loss_forward_extra
    phases = training.step_phases(w, lay, training.forward_moment(saved, lay, tr, kept, p.cast_cache),
                                  training.backward_moment(spec, w, t, p, saved, lay, tr, kept_bwd), notes,
                                  logits=training.kept_logits(spec, w, p, saved.seq_local),
                                  kept_inputs=saved.kept_inputs)
    if w.pp > 1:
        # a micro-batch's loss head kept until its backward: the logits the schedule holds and what the loss saved
        logits = int(w.batch * saved.seq_local * spec.vocab_size * p.act_bytes)
        held = saved.acts.loss_resident + logits
        phases, extra["pipeline"] = training.pipeline(spec, w, phases, saved.acts.layers, notes, p.cast_cache,
                                                      p.act_bytes, p, held + saved.acts.loss_backward_extra, held,
                                                      logits)
    paged = training.paged_states(w, lay.states, notes)
    if paged:
        extra["paged_bytes"] = paged
    training.recipe_notes(spec, w, t, p, notes)
    return phases, t.params


def untied(model: ResolvedModel, w: Workload, notes: list[Assumption]) -> ResolvedModel:
    """A tied output head as a framework that unties it trains it: LitGPT's GPT has its own ``lm_head``, and its
    checkpoint conversion copies the embedding into it (``Framework.unties_embeddings``)."""
    spec = model.spec
    if not (w.profile.unties_embeddings and spec.tie_embeddings):
        return model
    extra = spec.vocab_size * spec.hidden_size
    notes.append(Assumption("a_untied_head", {"framework": w.framework, "params": f"{extra:,}"}))
    return replace(model, spec=replace(spec, tie_embeddings=False), params=model.params + extra,
                   active_params=model.active_params + extra, stored=None)


def estimate_analytic(model: ResolvedModel, w: Workload, gpus: tuple = ()
                      ) -> tuple[Phases, tuple[Assumption, ...], int, int, dict]:
    """Phases, assumptions, trainable parameters, the transient bytes used for the uncertainty range, and
    engine/host fields (``host_bytes`` under CPU offload)."""
    notes: list[Assumption] = []
    extra: dict = {}
    attn = effective_attn(model.spec, w.attn)
    if attn != w.attn:
        notes.append(Assumption("a_attn_eager", {"model_type": model.spec.model_type}))
        w = replace(w, attn=attn)
    dtype = compute_dtype(model, w)
    if w.task == "inference":
        phases = _inference(model, w, dtype, notes, extra, gpus)
        trainable = 0
        transient = max(p.get("activations", 0) for p in phases.values())
    else:
        model = untied(model, w, notes)
        cc = getattr(gpus[0], "compute_capability", "") if gpus else ""
        phases, trainable = _training(model, w, dtype, notes, extra, cc=cc)
        transient = max(p.get("activations", 0) + p.get("optimizer_temp", 0) for p in phases.values())
    return phases, tuple(notes) + shape_note(model), trainable, transient, extra
