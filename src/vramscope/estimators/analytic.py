"""The analytic estimator: architecture-aware components, assembled into per-phase live sets.

Inference (transformers ``generate``): ``load`` holds the weights; ``prefill`` adds the KV cache of the whole
context and the prefill transient; ``decode`` holds weights, the cache and a one-token transient.

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
from typing import Optional

from ..memory.activations import (FULL_TRAINING, TrainFlags, checkpointed_layers, dora_forward_transient,
                                  effective_attn,
                                  inference_transient, merged_expert_bytes, training_activations)
from ..memory.gradients import gradient_bytes
from ..memory.kv_cache import KV_DTYPE_BYTES, kv_cache_bytes
from ..memory.optimizer_states import deepspeed_step_temporary, optimizer_state_bytes, step_temporary_bytes
from ..errors import VramscopeError
from ..memory.parallel import (NO_BUFFERS, context_parallel_transient, expert_fraction, fsdp_buffers,
                               largest_layer_params,
                               nvme_pinned_bytes, persistent_params, split_bytes, tp_shard_spec, zero3_buffers,
                               zero_bucket)
from ..memory.pipeline import pipeline_stages
from ..memory.trainable import dora_magnitude_params, lora_modules
from ..memory.weights import spec_weight_bytes, weight_bytes
from ..model.spec import ModelSpec
from ..model.tensors import groups, largest_layer_linear, largest_tensor
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..workload import Workload
from .common import compute_dtype, dtype_bytes, shape_note, trainable_for

Phases = dict[str, dict[str, int]]



def _weights(model: ResolvedModel, w: Workload, a: float, notes: list[Assumption],
             rank_spec: Optional[ModelSpec] = None) -> int:
    use_stored = model.stored is not None and w.dtype is None and w.quant == "none"
    wb = weight_bytes(model, a, w.quant, use_stored)
    if rank_spec is not None and rank_spec is not model.spec:
        full = spec_weight_bytes(model.spec, a, w.quant).total
        part = spec_weight_bytes(rank_spec, a, w.quant).total
        return int(wb.total * part / full) if full else 0
    if wb.exact_from_files:
        notes.append(Assumption("a_weights_files", {"format": model.stored_format or "?"}))
    elif w.quant != "none":
        notes.append(Assumption("a_weights_quant", {"quant": w.quant}))
    return wb.total


def _inference(model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption], extra: dict,
               gpus: tuple) -> Phases:
    a = dtype_bytes(dtype)
    if w.engine == "llama.cpp":
        from ..engines.llamacpp import llamacpp_inference

        phases, engine = llamacpp_inference(model, w, notes)
        extra.update(engine)
        return phases
    spec = tp_shard_spec(model.spec, w.num_gpus) if w.parallelism == "tp" else model.spec
    weights = _weights(model, w, a, notes, spec)
    if w.parallelism == "tp":
        notes.append(Assumption("a_tp", {"n": w.num_gpus}))
    if w.engine == "vllm":
        from ..engines.vllm import vllm_inference

        phases, engine = vllm_inference(model, w, weights, a, gpus, notes)
        extra.update(engine)
        return phases
    kv_dtype = w.kv_dtype or dtype
    # transformers' DynamicCache keeps every prompt token through prefill, sliding-window layers included
    # (DynamicSlidingWindowLayer crops only from the first decode step on; checked by trace). A static cache
    # (cache_implementation="static") preallocates max_cache_len = the context, sliding layers only their window.
    kv = kv_cache_bytes(spec, w.seq, w.batch, KV_DTYPE_BYTES[kv_dtype], encoder_tokens=w.seq,
                        cap_sliding=w.cache == "static")
    prefill = inference_transient(spec, w.batch, w.seq, a, w.attn, all_logits=spec.kind == "encoder")
    decode = inference_transient(spec, w.batch, 1, a, w.attn)
    notes.append(Assumption("a_inference_context", {"seq": w.seq, "batch": w.batch, "kv_dtype": kv_dtype,
                                                    "attn": w.attn}))
    if spec.sliding_window and spec.kind != "encoder":
        notes.append(Assumption("a_sliding", {"window": spec.sliding_window}))
    if spec.mla is not None:
        notes.append(Assumption("a_mla_transformers"))
    return {
        "load": {"weights": weights},
        "prefill": {"weights": weights, "kv_cache": kv, "activations": prefill},
        "decode": {"weights": weights, "kv_cache": kv, "activations": decode},
    }


def _recipe(w: Workload, dtype: str) -> str:
    if w.precision != "auto":
        return w.precision
    if dtype == "fp32":
        return "fp32"
    if w.parallelism in ("zero1", "zero2", "zero3"):
        return "deepspeed"  # DeepSpeed keeps fp32 master weights and states for bf16/fp16 training
    return "mixed" if w.task == "pretrain" else "pure"


def _flags(spec: ModelSpec, w: Workload) -> TrainFlags:
    if w.method in ("lora", "qlora"):
        return TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, w.lora_targets),
                          lora_rank=w.lora_rank, lora_dropout=w.lora_dropout > 0, dora=w.dora,
                          torchtune=w.framework == "torchtune")
    if w.method == "freeze" and w.train_modules:
        return TrainFlags(base=False, embeddings=False, modules=frozenset(w.train_modules),
                          torchtune=w.framework == "torchtune")
    if w.method == "freeze":
        return TrainFlags(base=True, embeddings=False, frozen_layers=w.frozen_layers,
                          torchtune=w.framework == "torchtune")
    return TrainFlags(torchtune=True) if w.framework == "torchtune" else FULL_TRAINING


def _training(model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
              extra: dict, seq_shard: int = 1) -> tuple[Phases, int]:
    if w.tp_degree > 1:
        # Megatron tensor parallelism: each rank trains the slice of every layer that tp_shard_spec describes
        # (heads, MLP, vocabulary split); norms and the residual stream are replicated, and so are their
        # activations unless Megatron sequence parallelism shards them
        tp = w.tp_degree
        shard = tp_shard_spec(model.spec, tp)
        rank_model = replace(model, spec=shard, params=shard.params, active_params=shard.active_params,
                             stored=None, stored_format="")
        notes.append(Assumption("a_tp_train_sp" if w.sequence_parallel else "a_tp_train", {"n": tp}))
        dp_world = 1 if w.parallelism == "tp" else max(1, w.num_gpus // tp)
        sub = replace(w, parallelism="none" if w.parallelism == "tp" else w.parallelism, tp=1, num_gpus=dp_world)
        result = _training(rank_model, sub, dtype, notes, extra, tp if w.sequence_parallel else 1)
        extra.setdefault("parallel", {"dp": sub.dp, "pp": w.pp, "sp": w.sp, "ep": w.ep, "shard_group": 1,
                                      "parallelism": sub.parallelism})
        extra["parallel"].update(world=w.num_gpus, tp=tp)
        return result
    spec = model.spec
    t = trainable_for(model, w)
    adapters = w.method in ("lora", "qlora")
    recipe = "lora" if adapters else _recipe(w, dtype)
    if recipe == "fp32":
        dtype = "fp32"
    a = dtype_bytes(dtype)
    act_bytes = 2.0 if recipe == "mixed" else a
    master = 0
    if recipe == "mixed":
        weights = int(model.params * 4)
        param_bytes = 4.0
        linear = sum(g.numel for g in groups(spec) if g.tensor.linear) if model.exact_shape else model.params
        cast_cache = int(linear * 2)
    elif recipe == "deepspeed":
        # DeepSpeed / Megatron mixed precision (ZeRO paper §3: 2 + 2 + 12 bytes per parameter): 16-bit
        # parameters and gradients, fp32 master weights and fp32 Adam states held by the optimizer
        weights = _weights(model, w, a, notes)
        param_bytes = a
        master = int(t.params * 4)
        cast_cache = 0
    else:
        weights = _weights(model, w, a, notes)
        # peft keeps adapters in fp32 (autocast_adapter_dtype); torchtune builds them in the model dtype
        param_bytes = (a if w.framework == "torchtune" else 4.0) if adapters else a
        cast_cache = 0
    if adapters:
        weights += int(t.adapter_params * param_bytes)
    grads = gradient_bytes(t.params, param_bytes)
    states = optimizer_state_bytes(w.optimizer, t.params, 4.0 if recipe == "deepspeed" else param_bytes) + master
    layer_params = largest_layer_params(spec) if not adapters and not w.train_modules else 0
    largest = largest_tensor(spec) if not adapters else 0
    temp = step_temporary_bytes(w.optimizer, t.params, param_bytes, largest)
    seq_local = -(-w.seq // w.sp)  # context parallelism: each rank holds seq / sp tokens
    flags = _flags(spec, w)
    acts = training_activations(spec, w.batch, seq_local, act_bytes, w.attn, w.grad_checkpointing, flags,
                                every=w.checkpoint_every, selective=w.checkpoint_mode == "selective",
                                ce_chunks=w.ce_chunks, replicated_shard=seq_shard, compiled_loss=w.compile)
    sp_temp = context_parallel_transient(spec, w.batch * seq_local, act_bytes, w.sp_mode) if w.sp > 1 else 0
    if w.sp > 1:
        notes.append(Assumption("a_sp", {"n": w.sp, "mode": w.sp_mode, "seq": seq_local}))
    buf = NO_BUFFERS
    # the shard group: data-parallel ranks times context-parallel ranks (inside one node for hybrid sharding)
    n = max(1, w.dp * w.sp // (w.nodes if w.fsdp_sharding == "hybrid" else 1))
    ep_share = expert_fraction(spec) if w.ep > 1 else 0.0
    if w.ep > 1:
        if spec.moe is None or spec.moe.num_experts % w.ep:
            raise VramscopeError("conflict", field="--ep", reason="expert parallelism needs an MoE model whose "
                                 f"experts divide by {w.ep}" if spec.moe is None else
                                 f"{spec.moe.num_experts} experts do not divide by {w.ep}")
        notes.append(Assumption("a_ep", {"n": w.ep, "experts": spec.moe.num_experts // w.ep}))
    gather_bytes = 4.0 if recipe == "mixed" else a
    if w.parallelism == "fsdp":
        weights, grads, states, temp = (split_bytes(x, ep_share, n, w.ep) for x in (weights, grads, states, temp))
        layer_bytes = 0.0
        if w.quant != "none":  # quantized linears are gathered as stored; embeddings and head stay 16-bit
            qb = spec_weight_bytes(spec, a, w.quant)
            if qb.quantized_params:
                layer_bytes = (qb.total - qb.kept_params * a) / qb.quantized_params
        buf = fsdp_buffers(spec, w.fsdp_version, gather_bytes, param_bytes, not adapters and not w.train_modules,
                           w.method == "full", w.grad_checkpointing and w.method != "full", layer_bytes)
        notes.append(Assumption("a_fsdp_v", {"n": n, "v": w.fsdp_version,
                                             "hybrid": f" × {w.nodes} replicas" if w.fsdp_sharding == "hybrid" else ""}))
    elif w.parallelism == "zero3":
        persistent = int(persistent_params(spec, w.zero_persistence) * a)
        weights, grads, states, temp = (split_bytes(x, ep_share, n, w.ep) for x in (weights, grads, states, temp))
        weights += persistent
        grads += zero_bucket(w.reduce_bucket, t.params, param_bytes)
        buf = zero3_buffers(spec, a, w.zero_prefetch, w.zero_max_live, w.reduce_bucket, t.params)
        notes.append(Assumption("a_zero3", {"n": n, "prefetch": f"{w.zero_prefetch:.2g}",
                                            "live": f"{w.zero_max_live:.2g}", "bucket": f"{w.reduce_bucket:.2g}"}))
    elif w.parallelism in ("zero1", "zero2"):
        # ZeRO stage 1 shards optimizer states (and the step), stage 2 also gradients, which then pass through
        # one reduce bucket (DeepSpeed's reduce_bucket_size, 5e8 elements by default)
        weights = split_bytes(weights, ep_share, 1, w.ep)
        states, temp = split_bytes(states, ep_share, n, w.ep), split_bytes(temp, ep_share, n, w.ep)
        if w.parallelism == "zero2":
            grads = split_bytes(grads, ep_share, n, w.ep) + zero_bucket(w.reduce_bucket, t.params, param_bytes)
        else:
            grads = split_bytes(grads, ep_share, 1, w.ep) + zero_bucket(w.reduce_bucket, t.params, param_bytes)
        notes.append(Assumption("a_zero", {"stage": w.parallelism[-1], "n": n, "bucket": f"{w.reduce_bucket:.2g}"}))
    else:
        weights, grads, states, temp = (split_bytes(x, ep_share, 1, w.ep) for x in (weights, grads, states, temp))
        if w.parallelism == "ddp":
            # DDP's reducer keeps flat communication buckets beside .grad (gradient_as_bucket_view=False)
            grads *= 2
            notes.append(Assumption("a_ddp", {"n": n}))
    if recipe == "deepspeed" and w.parallelism in ("zero1", "zero2", "zero3"):
        temp = deepspeed_step_temporary(t.params, a, n, w.parallelism == "zero3")
    host = 0
    if w.offload != "none":
        # ZeRO-Offload (arXiv 2101.06840) / FSDP CPUOffload: fp32 master weights, Adam states, fp32 gradients
        # and the optimizer step live in pinned host memory; the GPU keeps gradient buckets (two layers' worth)
        layer_grads = int(layer_params * param_bytes) if not adapters else grads
        sharded = w.parallelism in ("fsdp", "zero3", "zero2", "zero1")
        host = int(t.params * (4 + 4 + 8)) // (n if sharded else 1)
        states, temp = 0, 0
        grads = min(grads, 2 * layer_grads)
        params_off = w.offload == "optimizer+params"
        if params_off:
            host += weights
            weights = 0
            if buf is NO_BUFFERS:
                buf = fsdp_buffers(spec, w.fsdp_version, a, param_bytes, not adapters, w.method == "full")
        if w.offload_device == "nvme":
            # ZeRO-Infinity: states (and parameters) on NVMe; the host keeps pinned swap buffers only
            extra["nvme_bytes"] = host
            host = nvme_pinned_bytes(int(t.params // n), int(t.params // n), params_off, a)
        notes.append(Assumption("a_offload", {"what": w.offload, "host": f"{host / 2**30:.1f} GiB"}))
        extra.update(offload=w.offload, host_bytes=host)
    if extra.get("host_bytes") and w.num_gpus > 1:
        # every GPU of a node pins its own share: the node's RAM must hold them all
        extra["host_bytes_per_node"] = extra["host_bytes"] * (w.num_gpus // w.nodes)
    if w.num_gpus > 1 or w.sp > 1 or w.ep > 1:
        extra["parallel"] = {"world": w.num_gpus, "dp": w.dp, "tp": 1, "pp": w.pp, "sp": w.sp, "ep": w.ep,
                             "shard_group": n if w.parallelism in ("fsdp", "zero3", "zero1", "zero2") else 1,
                             "parallelism": w.parallelism}
    if w.activation_offload:
        # torchtune / TRL OffloadActivations: every saved tensor of at least 1 KiB that is not a parameter goes
        # to pinned host memory during forward (the output head excepted) and comes back, one autograd node at a
        # time, in backward; the loss head runs outside the context and keeps its tensors on the GPU, and the
        # last few offloaded tensors (the final norm's) stay stashed until backward begins
        host_acts = acts.layers - acts.head_inputs
        acts = replace(acts, layers=acts.head_inputs)
        extra["host_bytes"] = extra.get("host_bytes", 0) + host_acts
        notes.append(Assumption("a_act_offload", {"host": f"{host_acts / 2**30:.1f} GiB"}))
    kept = grads if w.grad_accum > 1 else 0
    if w.parallelism in ("zero2", "zero3"):
        kept = grads  # the gradient partition and the bucket are allocated once and stay (stage3.py 786-801)
    elif w.parallelism == "zero1":
        kept = max(kept, zero_bucket(w.reduce_bucket, t.params, param_bytes))
    base = {"weights": weights, "optimizer_states": states}

    def at(moment: tuple[int, int], phase: dict) -> dict:
        """``phase`` with the unsharded parameters (weights) and gradient buffers (temporaries) of a moment."""
        return {**phase, "weights": phase["weights"] + moment[0],
                "temporaries": phase.get("temporaries", 0) + moment[1]}

    merged = merged_expert_bytes(spec, act_bytes, flags)
    # under checkpointing a layer's forward still builds its merged expert weights, then drops them
    in_flight = merged if w.grad_checkpointing else 0
    # under FSDP the last layer's merged expert weights appear after its copy-out (below)
    merged_last = merged if buf is not NO_BUFFERS and not w.grad_checkpointing else 0
    # 4-bit bases (QLoRA) dequantize each layer's weight to the compute dtype for its matmul, forward and
    # backward (bitsandbytes matmul_4bit, torchao linear_nf4): one linear's weight alive at a time. torchao's
    # NF4Tensor.get_original_weight (torchtune) builds int64 indices on the way: 14.05 bytes per element in eager
    # mode, traced on real tensors; compiled layers fuse it to the bf16 weight only
    dequant = int(largest_layer_linear(spec) * (14.05 if w.framework == "torchtune" and not w.compile else a)) \
        if w.method == "qlora" else 0
    dora_temp = dora_forward_transient(spec, flags.lora, not w.grad_checkpointing) if flags.dora else 0
    if flags.dora and spec.moe is not None and "experts" in flags.lora:
        raise VramscopeError("conflict", field="--dora", reason="peft has no DoRA for fused MoE experts; "
                                                                "target the attention modules (--lora-targets)")
    # forward peaks while the loss is computed, or (sharded) while a layer's parameters are copied out (peft's
    # merged expert weights of that last layer not built yet), or (DoRA) while the last layer rebuilds its
    # adapted weights, nearly everything saved being alive
    forward_candidates = [
        at((buf.forward_loss, 0), {**base, "gradients": kept, "loss_head": acts.loss_forward_extra,
                                   "activations": acts.layers + cast_cache + acts.loss_resident + in_flight,
                                   "temporaries": sp_temp}),
        at((buf.forward_layer, 0), {**base, "gradients": kept, "temporaries": sp_temp + dequant,
                                    "activations": acts.layers + cast_cache + in_flight - merged_last}),
    ]
    if dora_temp:
        forward_candidates.append(at((buf.forward_layer, 0), {**base, "gradients": kept,
                                                              "activations": acts.layers + cast_cache + dora_temp}))
    if merged_last:  # building them: only the layer and its retained gather buffer are unsharded
        forward_candidates.append(at((buf.forward_held, 0), {
            **base, "gradients": kept, "activations": acts.layers + cast_cache, "temporaries": sp_temp}))
    forward = max(forward_candidates, key=lambda c: sum(c.values()))
    # backward: the larger of its start (cross-entropy backward on top of everything forward saved), the end
    # (all gradients), and, under checkpointing, the last recomputed layer beside almost all gradients
    embed_grad = int(spec.vocab_size * spec.hidden_size * param_bytes) if w.method == "full" else 0
    # tied, trainable embeddings: the output head's gradient and the embedding's are both alive when autograd
    # sums them into the shared weight's gradient
    tied_extra = 2 * embed_grad if spec.tie_embeddings and embed_grad else 0
    candidates = [
        at((buf.backward_loss, 0), {**base, "gradients": kept, "activations": acts.saved,
                                "temporaries": max(acts.loss_backward_extra, acts.layer_backward_extra) + sp_temp,
                                # a plain PyTorch loop still holds out.logits (compute dtype) while backward starts
                                "loss_head": int(w.batch * seq_local * spec.vocab_size * act_bytes)
                                if w.framework == "pytorch" else 0}),
        at(buf.backward_end, {**base, "gradients": grads - buf.end_pending // n, "temporaries": tied_extra}),
    ]
    if buf is not NO_BUFFERS:
        # the output head's backward (its unsharded gradient, the loss's tensors gone) and the first layers'
        # backward (nearly all gradients and a layer in flight)
        candidates.append(at(buf.backward_start, {**base, "gradients": kept, "activations": acts.layers}))
        # the last layer's backward: its parameters and the prefetched next layer beside nearly everything saved
        candidates.append(at((buf.backward_layer[0], 0), {**base, "gradients": kept, "activations": acts.layers,
                                                          "temporaries": acts.layer_backward_extra}))
        candidates.append(at(buf.backward_layer, {**base, "gradients": grads - buf.layer_pending // n}))
        candidates.append(at(buf.backward_reduce, {**base, "gradients": grads}))
    head_candidate = None
    if w.ce_chunks > 1 and w.method == "full":
        # a chunked output head runs lm_head once per chunk. Autograd runs every chunk's cross-entropy backward
        # first (later nodes first), leaving each chunk's logits gradient, then the head's matmuls: from the
        # second on, it adds each chunk's weight gradient to .grad out of place (old .grad, the new one and their
        # sum alive) while the other chunks' logits gradients wait
        head = int(spec.vocab_size * spec.hidden_size * param_bytes)
        logits_grads = int(w.batch * seq_local * spec.vocab_size * act_bytes) * (w.ce_chunks - 2) // w.ce_chunks
        head_candidate = {**base, "gradients": kept + head, "activations": acts.layers,
                          "temporaries": 2 * head + logits_grads}
        candidates.append(head_candidate)
    # a recomputed DoRA layer rebuilds its weights with autograd recording
    dora_recompute = dora_forward_transient(spec, flags.lora) if flags.dora and w.grad_checkpointing else 0
    if w.grad_checkpointing or w.activation_offload:
        layer_grads = int(layer_params * param_bytes) // (n if w.parallelism in ("fsdp", "zero3") else 1)
        partial = max(kept, grads - layer_grads - embed_grad)
        # recomputed tensors are re-created inside backward: temporaries, as a trace sees them
        candidates.append(at(buf.backward_layer, {
            **base, "gradients": partial,
            "temporaries": sp_temp + acts.one_layer + max(acts.layer_backward_extra, dora_recompute, dequant)}))
    elif dequant:
        candidates.append({**base, "gradients": kept, "activations": acts.layers, "temporaries": dequant})
    if w.optimizer_in_backward:
        # torchtune's optimizer_in_bwd: a post-accumulate-grad hook steps each parameter as soon as its
        # gradient is complete and frees it, so gradients never pile up and there is no separate step
        # inside the layers at most one weight's gradient exists; the output head's accumulates over its chunks
        # and the embedding's, last, is the largest
        one = int(largest * param_bytes) if largest else min(grads, int(layer_params * param_bytes))
        in_layer = min(one, int(largest_layer_linear(spec) * param_bytes)) if largest else one
        step_one = step_temporary_bytes(w.optimizer, largest or t.params, param_bytes, largest)
        # a tied output head's gradient waits in the autograd engine for the embedding's, at the very end
        waiting = embed_grad if spec.tie_embeddings else 0
        loss_start = candidates[0]
        candidates = [c if c is head_candidate else
                      {**c, "gradients": min(c.get("gradients", 0), in_layer) + (0 if c is loss_start else waiting)}
                      for c in candidates if c.get("gradients", 0) != grads]
        candidates.append(at(buf.backward_layer, {**base, "gradients": one, "temporaries": step_one + tied_extra}))
        # a gradient that lives only until its own step is a temporary, as a trace sees it
        candidates = [{**c, "gradients": 0, "temporaries": c.get("temporaries", 0) + c.get("gradients", 0)}
                      for c in candidates]
    backward = max(candidates, key=lambda c: sum(c.values()))
    phases: Phases = {
        "load": {"weights": weights},
        "forward": forward,
        "backward": backward,
        "optimizer_step": {"weights": weights, "gradients": grads, "optimizer_states": states,
                           "optimizer_temp": temp},
    }
    if w.optimizer_in_backward:
        del phases["optimizer_step"]
        notes.append(Assumption("a_opt_in_bwd"))

    if w.pp > 1:
        if w.pp > spec.num_layers:
            raise VramscopeError("conflict", field="--pp", reason=f"{w.pp} stages for {spec.num_layers} layers")
        phases, rows = pipeline_stages(spec, w.pp, w.grad_accum, w.pp_schedule, phases, acts.layers)
        extra["pipeline"] = {"stages": w.pp, "schedule": w.pp_schedule, "micro_batches": w.grad_accum, "ranks": rows}
        busiest = max(rows, key=lambda r: r["peak_bytes"])
        notes.append(Assumption("a_pp", {"pp": w.pp, "schedule": w.pp_schedule, "m": w.grad_accum,
                                         "kind": busiest["kind"]}))
    if w.optimizer.startswith("paged-") and states:
        # bitsandbytes allocates paged states with cudaMallocManaged: on the GPU until it runs short, then paged
        # to host memory by the driver; torch's allocator counters (max_memory_allocated) never see them
        extra["paged_bytes"] = states
        notes.append(Assumption("a_paged", {"states": f"{states / 2**30:.2f} GiB"}))
    tt = "_torchtune" if recipe == "lora" and w.framework == "torchtune" else ""
    notes.append(Assumption(f"a_recipe_{recipe}{tt}", {"dtype": dtype}))
    notes.append(Assumption(f"a_framework_{w.framework}", {"chunks": w.ce_chunks}))
    if w.packing:
        notes.append(Assumption("a_packing", {"seq": w.seq}))
    if w.grad_checkpointing and w.checkpoint_mode == "selective":
        notes.append(Assumption("a_ckpt_selective"))
    elif w.grad_checkpointing and w.checkpoint_every > 1:
        n_layers = spec.num_layers + spec.num_decoder_layers
        notes.append(Assumption("a_ckpt_every", {"ckpt": checkpointed_layers(n_layers, w.checkpoint_every),
                                                 "layers": n_layers, "every": w.checkpoint_every}))
    if w.ce_chunks > 1:
        notes.append(Assumption("a_chunked_ce", {"chunks": w.ce_chunks}))
    if w.compile:
        notes.append(Assumption("a_compile"))
    if w.dora:
        notes.append(Assumption("a_dora", {"magnitude": f"{dora_magnitude_params(spec, w.lora_targets):,}"}))
    notes.append(Assumption("a_training_shape", {"batch": w.batch, "seq": w.seq, "attn": w.attn,
                                                 "optimizer": w.optimizer, "accum": w.grad_accum}))
    if spec.layout != "llama":
        notes.append(Assumption("a_activations_korthikanti"))
    if adapters:
        notes.append(Assumption("a_lora", {"rank": w.lora_rank, "targets": ",".join(w.lora_targets),
                                           "trainable": f"{t.params:,}"}))
    return phases, t.params


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
        phases, trainable = _training(model, w, dtype, notes, extra)
        transient = max(p.get("activations", 0) + p.get("optimizer_temp", 0) for p in phases.values())
    return phases, tuple(notes) + shape_note(model), trainable, transient, extra
