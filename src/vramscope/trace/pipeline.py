"""Pipeline parallelism on the real transformers decoder, for the trace: the model split into stages the way
torchtitan splits it, run per rank through torch 2.13's ``torch.distributed.pipelining`` schedules on fake tensors
under torch's fake process group (issue #14 items 5 and 7).

torchtitan (pytorch/torchtitan b5bcd76, ``torchtitan/distributed/pipeline_parallel.py``; the same at v0.3.0):

* ``_generate_llm_fqn_per_model_part``: the ``L`` layers and the embedding and output modules spread over the
  stages as ``L + input_weight + output_weight`` "effective layers" (``pipeline_parallel_first_stage_less_layers``
  and ``..._last_stage_less_layers``, both 1 by default, ``config/configs.py``): each stage takes
  ``(L + 2) // S`` of them, the first ``(L + 2) % S`` stages one more; the first stage's embedding and the last
  stage's norm + output head count as one layer each (``memory/pipeline.py torchtitan_stage_layers``, which the
  analytic estimator uses too);
* stages per rank: one for single-stage schedules (1F1B, GPipe), two for the looped ones by default
  (``_get_pipeline_metadata``); rank ``r`` holds stages ``r, r + pp, …`` ("loop") or, for ZBV and DualPipeV, the
  V pair ``(r, 2·pp − 1 − r)`` (``_get_pp_rank_to_stage_indices_mapping``);
* ``_split_module``: each stage a copy of the whole model with the modules of other stages deleted
  (``tok_embeddings`` / ``norm`` / ``lm_head`` set to None, the layer dict pruned); its forward runs whatever is
  left (``Decoder.forward``: embedding if present, the layers, norm and head if present);
* each model part then gets the SPMD parallelisms: activation checkpointing per block and FSDP2
  (``distributed/fsdp.py apply_fsdp_to_decoder``) with the MixedPrecisionPolicy, and, because pipeline
  parallelism is on, ``reshard_after_forward=False`` for every unit (``get_fsdp_reshard_after_forward_policy``:
  "For PP, by default do not reshard after forward to avoid per-microbatch all-gathers");
* the schedule gets the loss function (``_build_pipeline_schedule``), ``scale_grads=False``, and is stepped with
  ``return_outputs=False`` (``trainer.py``), then the optimizer steps over all model parts.

Here the stage module holds transformers' own modules (embedding, decoder layers, rotary embedding, final norm,
output head) of the catalog model and runs them in that order; the loss is the model's own causal-LM loss
(``ForCausalLMLoss``, fp32 logits), as the one-rank trace runs it. The one thing fake tensors refuse in torch's
pipelining is the warm-up vote (``schedules.py _PipelineSchedule._warmup_p2p``: ``result.item() == 1`` decides
whether every rank built its stages with static shapes): every stage is given ``input_args`` / ``output_args``,
the case in which the vote returns STATIC, and the outcome is set instead of read.
"""

from __future__ import annotations

from typing import Any

from ..memory.pipeline import torchtitan_stage_layers

#: vramscope's schedule names → torch's schedule classes (torchtitan's ``pipeline_parallel_schedule``)
SCHEDULE_CLASSES = {"1f1b": "Schedule1F1B", "gpipe": "ScheduleGPipe", "interleaved": "ScheduleInterleaved1F1B",
                    "interleaved-zb": "ScheduleInterleavedZeroBubble", "zbv": "ScheduleZBVZeroBubble"}


def rank_stage_indices(rank: int, pp: int, schedule: str, stages_per_rank: int) -> list[int]:
    """The stages rank ``rank`` builds (torchtitan's ``_get_pp_rank_to_stage_indices_mapping``)."""
    if schedule == "zbv":
        return [rank, 2 * pp - 1 - rank]
    return [rank + k * pp for k in range(stages_per_rank)]


def _static_vote() -> Any:
    """The warm-up vote's outcome for stages built with static shapes (module docstring); returns the undo."""
    from torch.distributed.pipelining import schedules
    from torch.distributed.pipelining._utils import InferenceMode

    orig = schedules._PipelineSchedule._warmup_p2p

    def warmup(self: Any, stages: Any, has_backward: Any, p2p_done: Any) -> None:
        for stage in stages:
            stage._inference_mode = InferenceMode.STATIC

    schedules._PipelineSchedule._warmup_p2p = warmup

    def undo() -> None:
        schedules._PipelineSchedule._warmup_p2p = orig

    return undo


def stage_module(base: Any, layer_ids: list[int], first: bool, last: bool) -> Any:
    """One stage of a transformers causal LM: what torchtitan's ``_split_module`` keeps of the model, run as its
    ``Decoder.forward`` runs what is left (the embedding if present, the layers, the norm and head if present);
    positions and the rotary tables are built per stage (torchtitan keeps its ``freqs_cis`` buffer on every
    stage); SDPA without a mask runs causal."""
    import torch

    inner = base.model
    layers = torch.nn.ModuleDict({str(i): inner.layers[i] for i in layer_ids})
    return _stage_class()(inner.embed_tokens if first else None, layers, inner.rotary_emb,
                          inner.norm if last else None, base.lm_head if last else None)


_STAGE: list = []


def _stage_class() -> Any:
    """The stage module's class, built once (torch is imported lazily); it refers to nothing of the whole model,
    so what other stages hold is freed once split."""
    if _STAGE:
        return _STAGE[0]
    import torch

    class Stage(torch.nn.Module):
        def __init__(self, tok_embeddings: Any, layers: Any, rotary_emb: Any, norm: Any, lm_head: Any) -> None:
            super().__init__()
            self.tok_embeddings, self.layers, self.rotary_emb = tok_embeddings, layers, rotary_emb
            self.norm, self.lm_head = norm, lm_head

        def forward(self, x: Any) -> Any:
            h = self.tok_embeddings(x) if self.tok_embeddings is not None else x
            pos = torch.arange(h.shape[1], device=h.device)[None]
            rope = self.rotary_emb(h, position_ids=pos)
            for layer in self.layers.values():
                h = layer(h, attention_mask=None, position_ids=pos, position_embeddings=rope)
            if self.norm is not None:
                h = self.norm(h)
            if self.lm_head is not None:
                h = self.lm_head(h)
            return h

    _STAGE.append(Stage)
    return Stage


def shard_stage(stage: Any, mesh: Any, mp_policy: Any, reshard: bool = False) -> None:
    """torchtitan's ``apply_fsdp_to_decoder`` on one model part with pipeline parallelism on: the embedding
    and every layer with ``reshard_after_forward=False`` (the PP default: ``fsdp_reshard_after_forward``
    "default" or "never"), [norm, head] likewise, then the root (its own default). ``reshard=True``:
    ``fsdp_reshard_after_forward = "always"`` (torchtitan b5bcd76 ``distributed/fsdp.py``: True for the embedding
    and the layers, and ``reshard_after_forward_policy == "always"`` for [norm, head]: True as well)."""
    from torch.distributed.fsdp import fully_shard

    kw = {"mesh": mesh, "mp_policy": mp_policy, "reshard_after_forward": bool(reshard)}
    if stage.tok_embeddings is not None:
        fully_shard(stage.tok_embeddings, **kw)
    if stage.norm is not None and stage.lm_head is not None:
        fully_shard([stage.norm, stage.lm_head], **kw)
    for layer in stage.layers.values():
        fully_shard(layer, **kw)
    fully_shard(stage, mesh=mesh, mp_policy=mp_policy)


def trace_pipeline_rank(model: Any, w: Any, pp_rank: int, progress: Any = None, timeout: Any = None,
                        on_tracker: Any = None, fake: bool = True, reshard_after_forward: bool = False) -> dict:
    """Pipeline rank ``pp_rank`` (data-parallel index 0) of ``w`` (``w.pp`` stages, ``w.grad_accum``
    micro-batches of ``w.batch × w.seq``, FSDP2 over ``w.num_gpus / w.pp`` ranks when more than one) running two
    training steps as torchtitan runs them, on fake tensors; returns the bytes at the steady (second) step's
    phases: ``load`` (alive before the first step: the stage's sharded parameters), ``step`` (the peak of the
    schedule's forwards and backwards), ``optimizer_step`` (the peak of the optimizer's step), the rank's stages
    and their layer counts, and the tracker's ``log`` with its ``category`` per storage.

    ``timeout`` (seconds): past it the next module call outside backward or phase boundary raises
    :class:`~vramscope.trace.tracker.TraceTimeout`; ``on_tracker`` sees the tracker first. ``fake=False`` runs
    the same on real CPU tensors in the process group the caller set up (``w.num_gpus`` ranks, this process
    pipeline rank ``pp_rank``: tests/test_pipeline_gloo.py's gloo ranks), the warm-up vote run as torch runs it.
    """
    import time
    from contextlib import nullcontext

    import torch
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg as fake_pg
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.pipelining import PipelineStage, schedules

    from .build import build_model, checkpoint_layers, op_selective_checkpointing
    from .estimator import _torch_dtype, compute_dtype, fsdp_policy
    from .runner import make_optimizer
    from .tracker import make_tracker

    pp, m = w.pp, w.grad_accum
    dp = w.num_gpus // pp
    cls = getattr(schedules, SCHEDULE_CLASSES[w.pp_schedule])
    multi = issubclass(cls, schedules.PipelineScheduleMulti)
    per_rank = (2 if w.pp_schedule == "zbv" else w.pp_virtual) if multi else 1
    n_stages = pp * per_rank
    sizes = torchtitan_stage_layers(model.spec.num_layers, n_stages)
    idx = rank_stage_indices(pp_rank, pp, w.pp_schedule, per_rank)
    dtype = compute_dtype(model, w)
    policy = fsdp_policy(w, dtype) if dp > 1 else None
    act = _torch_dtype(dtype if dtype != "fp32" else "bf16") if policy is not None else torch.float32
    if fake:
        if dist.is_initialized():
            dist.destroy_process_group()
        dist.init_process_group("fake", store=fake_pg.FakeStore(), rank=pp_rank * dp, world_size=w.num_gpus)
    undo = _static_vote() if fake else (lambda: None)
    mode = FakeTensorMode() if fake else nullcontext()
    tracker = make_tracker(progress, mode if fake else None)
    if timeout is not None:
        tracker.deadline = time.monotonic() + timeout
    if on_tracker is not None:
        on_tracker(tracker)
    category: dict[int, str] = {}

    def mark(tensors: Any, cat: str) -> None:
        for t in tensors:
            k = tracker.key_of(t)
            if k is not None and k not in category:
                category[k] = cat

    def on_op(func: Any, args: Any, kwargs: Any) -> None:  # FSDP2's all-gathered (unsharded) parameters
        if func is torch.ops.c10d._allgather_base_.default:
            mark([args[0]], "weights")
        elif func is torch.ops.fsdp.split_with_sizes_copy.default:
            mark(kwargs["out"], "weights")

    tracker.on_op = on_op
    deadline_hook = None
    if timeout is not None:
        from torch.nn.modules.module import register_module_forward_pre_hook

        def check_deadline(module: Any, args: Any) -> None:  # outside autograd's C++ (as run_trace does)
            if torch._C._current_graph_task_id() == -1:
                tracker.check_deadline()

        deadline_hook = register_module_forward_pre_hook(check_deadline)
    try:
        mesh = init_device_mesh("cpu", (pp, dp), mesh_dim_names=("pp", "dp"))
        with mode, tracker:
            torch.manual_seed(0)
            base = build_model(model, torch.float32, w.attn, init_weights=not fake)
            if w.grad_checkpointing and w.checkpoint_mode == "op":
                op_selective_checkpointing(base)
            elif w.grad_checkpointing:
                checkpoint_layers(base, w.checkpoint_every)
            base.train()
            vocab, hidden = base.config.vocab_size, base.config.hidden_size
            mb = w.batch
            stages, parts = [], []
            for s in idx:
                lo = sum(sizes[:s])
                part = stage_module(base, list(range(lo, lo + sizes[s])), s == 0, s == n_stages - 1)
                if policy is not None:
                    shard_stage(part, mesh["dp"], policy, reshard_after_forward)
                ids = torch.zeros(mb, w.seq, dtype=torch.long)
                hid = torch.zeros(mb, w.seq, hidden, dtype=act)
                out = torch.zeros(mb, w.seq, vocab if s == n_stages - 1 else hidden, dtype=act, requires_grad=True)
                stages.append(PipelineStage(part, s, n_stages, torch.device("cpu"), group=mesh["pp"].get_group(),
                                            input_args=(ids if s == 0 else hid,), output_args=(out,)))
                parts.append(part)
            del base, ids, hid, out
            cur = {"step": 1}

            def flip(name: str) -> None:  # a phase of the step, without a progress line per micro-batch
                shown, tracker._progress = tracker._progress, None
                try:
                    tracker.set_phase(f"{name}#{cur['step']}")
                finally:
                    tracker._progress = shown

            def loss_fn(logits: Any, labels: Any) -> Any:
                flip("loss")
                return _causal_lm_loss(logits, labels, vocab)

            for st, part in zip(stages, parts):
                _phased(st, part, flip, mark)
            sched = cls(stages if multi else stages[0], n_microbatches=m, loss_fn=loss_fn, scale_grads=False)
            params = [p for part in parts for p in part.parameters() if p.requires_grad]
            opt = make_optimizer(params, w.optimizer)
            tokens = torch.randint(0, vocab, (m * mb, w.seq))
            mark([p for part in parts for p in part.parameters()], "weights")
            tracker.set_phase("ready")
            for step in (1, 2):
                cur["step"] = step
                tracker.set_phase(f"step#{step}")
                args = (tokens,) if 0 in idx else ()
                kw = dict(target=tokens, losses=[]) if n_stages - 1 in idx else {}
                sched.step(*args, return_outputs=False, **kw)
                # torch's receive buffers, built at the first step and kept (memory/pipeline.py recv_buffers)
                mark([i.buffer for st in stages for infos in (*st.args_recv_info.values(),
                                                              *st.grad_recv_info.values())
                      for i in infos if getattr(i, "buffer", None) is not None], "activations")
                mark([p.grad for p in params if p.grad is not None], "gradients")
                tracker.set_phase(f"optimizer_step#{step}")
                opt.step()
                mark([v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)],
                     "optimizer_states")
                opt.zero_grad(set_to_none=True)
                tracker.set_phase(f"idle#{step}")
    finally:
        if deadline_hook is not None:
            deadline_hook.remove()
        undo()
        if fake:
            dist.destroy_process_group()
    log = tracker.log

    def parts_at(index: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for key in log.live_at(index):
            cat = category.get(log.storage[key], "other")
            out[cat] = out.get(cat, 0) + log.sizes[key]
        return out

    ready = sum(log.sizes[k] for k in log.live_at(log.marks["ready"]))
    steady = max((log.phases[f"{n}#2"] for n in ("step", "forward", "loss", "backward") if f"{n}#2" in log.phases),
                 key=lambda ph: ph.bytes)
    return {"load": ready, "step": steady.bytes, "optimizer_step": log.phases["optimizer_step#2"].bytes,
            "step_parts": parts_at(steady.index), "stages": idx, "layers": [sizes[s] for s in idx],
            "log": log, "category": category, "trainable": sum(p.numel() for p in params)}


def _phased(stage: Any, part: Any, flip: Any, mark: Any) -> None:
    """The stage's micro-batch forwards and backwards as the tracker's ``forward`` and ``backward`` phases (the
    schedule interleaves them); after each backward the gradients FSDP2 accumulates unsharded
    (``unsharded_accumulated_grad``, or the unsharded parameter's own ``.grad``), or the plain ``.grad``, are
    marked as gradients."""

    def grads() -> list:
        out = []
        for mod in part.modules():
            state = mod._get_fsdp_state() if hasattr(mod, "_get_fsdp_state") else None
            group = getattr(state, "_fsdp_param_group", None) if state is not None else None
            for fp in (group.fsdp_params if group is not None else ()):
                acc = getattr(fp, "unsharded_accumulated_grad", None)
                g = acc if acc is not None else getattr(getattr(fp, "_unsharded_param", None), "grad", None)
                if g is not None:
                    out.append(g)
        return out or [p.grad for p in part.parameters() if p.grad is not None]

    def wrap(name: str, phase: str) -> None:
        fn = getattr(stage, name, None)
        if fn is None:
            return

        def run(*a: Any, **k: Any) -> Any:
            flip(phase)
            out = fn(*a, **k)
            if phase == "backward":
                mark(grads(), "gradients")
            return out

        setattr(stage, name, run)

    wrap("forward_one_chunk", "forward")
    wrap("backward_one_chunk", "backward")
    wrap("backward_weight_one_chunk", "backward")


def _causal_lm_loss(logits: Any, labels: Any, vocab: int) -> Any:
    """transformers' ``ForCausalLMLoss`` (the one-rank trace's loss): fp32 logits, labels shifted by one."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    return ForCausalLMLoss(logits, labels, vocab)
