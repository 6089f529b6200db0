"""The trace estimator: the real transformers (and peft) code on fake tensors, tracked tensor by tensor.

The model is built inside ``FakeTensorMode`` on the CPU (``shared/design/TRACE.md``: fake CUDA tensors abort
on a CPU-only torch at the first autograd op; fake CPU tensors work, and initialisation on them is free). The
live-bytes tracker sees every allocation; categories at each phase's peak come from what the tensors are:
parameters, gradients (seen at the end of backward), optimizer states, the KV cache, tensors autograd saved
for backward (``saved_tensors_hooks``), the logits and loss (allocated in the loss phase), and the rest
(temporaries). The same runtime-overhead model as the analytic estimator is added, so the JSON has the same
shape with ``estimator: "trace"``.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Optional

from ..errors import Text, VramscopeError
from ..i18n import register
from ..estimators.common import compute_dtype, pick_peak
from ..memory.activations import effective_attn
from ..memory.allocator import replay
from ..memory.device import alloc_config, device_memory
from ..memory.overhead import CONTEXT_NOMINAL, NCCL, cublas_workspace, runtime_overhead
from ..result import Assumption, Estimate, ModelInfo
from ..sources.base import ResolvedModel
from ..workload import Workload
from .build import (apply_lora, quiet_libraries, build_model, checkpoint_layers, op_selective_checkpointing, require_torch,
                    selective_attention_checkpointing, unpacked_positions)
from .preflight import DEFAULT_TIMEOUT_S, check_traceable, estimate_command
from .runner import make_optimizer, run_inference, run_training
from .tracker import TraceLog, TraceTimeout, make_tracker

#: torch's ring-attention rotate method for context parallelism (``allgather``: torch's default, which torchtitan
#: 0.3.0 keeps; ``alltoall``); a one-item list so bench/ can trace the other
CP_ROTATE = ["allgather"]
#: the rank traced on the fake process group (0; bench/ traces others: context parallelism's ring differs by rank)
FAKE_RANK = [0]
#: exceptions of fake tensors meeting code that reads tensor values
_DATA_DEPENDENT = ("DataDependentOutputException", "DynamicOutputShapeException", "UnsupportedOperatorException",
                   "UnsupportedFakeTensorException")


class Progress:
    """One line per phase on stderr once a trace has run for more than a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, phase: str) -> None:
        elapsed = time.perf_counter() - self.t0
        if self.enabled and elapsed > 1.0:
            print(f"vramscope trace: {elapsed:6.1f}s  {phase}", file=sys.stderr, flush=True)


def _torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def run_trace(model: ResolvedModel, w: Workload, progress: Optional[Callable[[str], None]] = None,
              fake: bool = True, timeout: Optional[float] = None,
              on_tracker: Optional[Callable[[Any], None]] = None) -> tuple[TraceLog, dict[int, str], int]:
    """Run the workload on fake tensors; returns the log, a category per storage key, trainable parameters.

    ``fake=False`` runs the same code on real CPU tensors (for small models): the cross-check that proves the
    tracker, since both must count the same bytes. ``timeout`` (seconds): past it the next module call or phase
    boundary raises :class:`~vramscope.trace.tracker.TraceTimeout` (a backward pass runs to its end first).
    ``on_tracker`` sees the tracker before the run starts.
    """
    check_traceable(model, w)
    require_torch(("torchao",) if w.float8 != "none" else ())
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    dtype = compute_dtype(model, w)
    recipe_mixed = w.training and w.method in ("full", "freeze") and (
        w.precision == "mixed" or (w.precision == "auto" and w.task == "pretrain" and dtype != "fp32"))
    if recipe_mixed and fsdp_policy(w, dtype) is not None and not w.profile.autocast_with_fsdp_policy:
        recipe_mixed_amp = False  # the framework's MixedPrecisionPolicy computes in bf16 without autocast
    else:
        recipe_mixed_amp = recipe_mixed
    # LoRA under accelerate's mixed precision, sharded by FSDP: the base loaded in fp32 (peft's SFT example)
    lora_mixed = fsdp_policy(w, dtype) is not None and w.method == "lora"
    if lora_mixed:
        recipe_mixed_amp = w.profile.autocast_with_fsdp_policy
    param_dtype = torch.float32 if recipe_mixed or lora_mixed or dtype == "fp32" or w.precision == "fp32" \
        else _torch_dtype(dtype)
    category: dict[int, str] = {}
    w = replace(w, attn=effective_attn(model.spec, w.attn))

    def mark(tensors: Any, cat: str) -> None:
        for t in tensors:
            k = tracker.key_of(t)
            if k is not None and k not in category:
                category[k] = cat

    torch.manual_seed(0)
    mode = FakeTensorMode() if fake else nullcontext()
    tracker = make_tracker(progress, mode if fake else None, compiled=compiled_blocks(w))
    if timeout is not None:
        tracker.deadline = time.monotonic() + timeout
    if on_tracker is not None:
        on_tracker(tracker)
    sharded = w.training and w.num_gpus > 1
    own_group = False
    undo_mesh = None
    if sharded:
        import torch.distributed as dist

        if not fake and dist.is_initialized() and dist.get_world_size() == w.num_gpus:
            # a real process group set up by the caller (tests: gloo ranks on real CPU tensors)
            from torch.distributed.device_mesh import init_device_mesh

            mesh = init_device_mesh("cpu", (w.num_gpus,)) if w.tp_degree == 1 else None
        else:
            plain = w.tp_degree == 1 and w.sp == 1
            mesh = fake_process_group(w.num_gpus) if plain else fake_process_group(w.num_gpus, mesh=False)
            own_group = True
        if w.sp > 1:  # (dp, cp, tp): ring attention on cp, FSDP2 on dp × cp (torchtitan's layout)
            from .context import cp_device_mesh
            from .parallel import fake_safe_mesh_concatenate

            mesh = cp_device_mesh(w.num_gpus, w.sp, w.tp_degree)
            undo_mesh = fake_safe_mesh_concatenate() if fake else None
        elif w.tp_degree > 1:  # a (dp, tp) mesh: tensor parallelism inside, FSDP2 across (torchtitan's layout)
            from .parallel import device_mesh, fake_safe_mesh_concatenate

            mesh = device_mesh(w.num_gpus, w.tp_degree)
            undo_mesh = fake_safe_mesh_concatenate() if fake else None

        def on_op(func: Any, args: Any, kwargs: Any) -> None:
            # FSDP2's all-gather output and the unsharded parameters copied out of it count as weights
            if func is torch.ops.c10d._allgather_base_.default:
                mark([args[0]], "weights")
            elif func is torch.ops.fsdp.split_with_sizes_copy.default:
                mark(kwargs["out"], "weights")

        tracker.on_op = on_op
    deadline_hook = None
    if timeout is not None:
        from torch.nn.modules.module import register_module_forward_pre_hook

        def check_deadline(module: Any, args: Any) -> None:
            # every module call outside backward (checkpointing recomputes forward from inside autograd's C++)
            if torch._C._current_graph_task_id() == -1:
                tracker.check_deadline()

        deadline_hook = register_module_forward_pre_hook(check_deadline)
    if compiled_blocks(w):
        from .compiled import compiled_run

        compile_ctx: Any = compiled_run()
    else:
        compile_ctx = nullcontext()
    try:
        with compile_ctx, unpacked_positions() if w.training else nullcontext(), mode, tracker:
            trainable = _run(model, w, tracker, mark, category, param_dtype, dtype, recipe_mixed_amp,
                             mesh if sharded else None)
    finally:
        if deadline_hook is not None:
            deadline_hook.remove()
        if undo_mesh is not None:
            undo_mesh()
        if own_group:
            import torch.distributed as dist

            dist.destroy_process_group()
    return tracker.log, category, trainable


def fake_process_group(world: int, mesh: bool = True) -> Any:
    """Rank 0 of a ``world``-rank fake process group (torch's ``FakeProcessGroup``: collectives return without
    communicating, with the right output shapes) and a 1-D CPU device mesh over it (``mesh=False``: none)."""
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg as fake_pg  # registers the "fake" backend
    from torch.distributed.device_mesh import init_device_mesh

    if dist.is_initialized():
        dist.destroy_process_group()
    dist.init_process_group("fake", store=fake_pg.FakeStore(), rank=FAKE_RANK[0], world_size=world)
    return init_device_mesh("cpu", (world,)) if mesh else None


def fsdp_policy(w: Workload, dtype: str) -> Any:
    """The framework's ``MixedPrecisionPolicy`` when ``--precision mixed`` under FSDP follows it (torchtitan:
    bf16 parameters, fp32 reduction; accelerate / hf: bf16 both), else None (fp32 parameters, autocast)."""
    from ..estimators.training import recipe_for

    lora_mixed = w.method == "lora" and w.precision == "mixed" and w.profile.fsdp_policy is not None
    if not (w.training and w.strategy.is_fsdp and (lora_mixed or (w.method in ("full", "freeze")
                                                                  and recipe_for(w, dtype) == "fsdp_mixed"))):
        return None
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy

    width = {2.0: _torch_dtype(dtype if dtype != "fp32" else "bf16"), 4.0: torch.float32}
    param, reduce = w.profile.fsdp_policy
    return MixedPrecisionPolicy(param_dtype=width[param], reduce_dtype=width[reduce])


def compiled_blocks(w: Workload) -> bool:
    """Whether the workload torch.compiles each decoder block (``--compile`` with ``model`` among its components)."""
    return bool(w.compile) and "model" in w.compile_components.split(",")


def shard_like_accelerate(net: Any, mesh: Any, mp_policy: Any = None, blocks: bool = False) -> None:
    """FSDP2 units as accelerate's ``fsdp2_prepare_model`` builds them (and torchtitan's
    ``apply_fsdp_to_decoder``): every decoder layer, the input embedding when untied, the final norm with the
    output head (``reshard_after_forward=False``), then the root; ``mp_policy``: the framework's
    ``MixedPrecisionPolicy``. ``blocks``: the units are the entries of ``model.layers`` as they stand (torchtitan's
    ``apply_fsdp`` after ``apply_ac`` and ``apply_compile``: the checkpoint wrapper, compiled, is the unit)."""
    from torch.distributed.fsdp import fully_shard
    from transformers.modeling_layers import GradientCheckpointingLayer

    if mp_policy is not None:
        fully_shard = partial(fully_shard, mp_policy=mp_policy)

    base = net.get_base_model() if hasattr(net, "get_base_model") else net
    units = list(base.model.layers) if blocks else [m for m in base.modules()
                                                    if isinstance(m, GradientCheckpointingLayer)]
    for m in units:
        fully_shard(m, mesh=mesh)
    embed, head = base.get_input_embeddings(), base.get_output_embeddings()
    tied = head is not None and head.weight is embed.weight
    if not tied:
        fully_shard(embed, mesh=mesh)
    norm = getattr(getattr(base, "model", base), "norm", None)
    tail = [m for m in (norm, head) if m is not None]
    if tail and not tied:
        fully_shard(tail, mesh=mesh, reshard_after_forward=False)
    fully_shard(net, mesh=mesh)


def _run(model: ResolvedModel, w: Workload, tracker: Any, mark: Callable, category: dict, param_dtype: Any,
         dtype: str, recipe_mixed: bool, mesh: Any) -> int:
    import torch

    if w.profile.trace_model == "litgpt":
        from .litgpt import run_litgpt

        return run_litgpt(model, w, tracker, mark, category, param_dtype)
    net = build_model(model, param_dtype, w.attn, init_weights=False)
    trainable = 0
    if w.training:
        net, params, opt, optimizers = prepare_training(net, w, mesh, dtype)
        trainable = sum(_global_numel(p) for p in params)
        mark(net.parameters(), "weights")

        def on_grads() -> None:
            mark([p.grad for p in params if p.grad is not None], "gradients")

        def on_saved(t: Any) -> None:
            if isinstance(t, torch.Tensor):
                k = tracker.key_of(t)
                if k is not None:
                    category.setdefault(k, "activations")

        def on_logits(t: Any) -> None:
            mark([t], "loss_head")

        tracker.set_phase("ready")
        if w.sp > 1:
            from .context import context_parallel

            cp_ctx = context_parallel(mesh["cp"], CP_ROTATE[0])
        else:
            cp_ctx = nullcontext()
        with cp_ctx as shard_inputs:
            run_training(net, opt, w.batch, w.seq, tracker.set_phase,
                         amp_dtype=_torch_dtype(dtype) if recipe_mixed else None, saved_hook=on_saved,
                         on_grads=on_grads, on_logits=on_logits, keep_outputs=w.profile.keeps_logits,
                         ce_chunks=w.ce_chunks, offload=w.activation_offload,
                         step_in_backward=w.optimizer_in_backward, accumulate=w.grad_accum > 1,
                         loss_parallel=w.tp_degree > 1, shard_inputs=shard_inputs,
                         after_step=_float8_scales(net) if w.fsdp_float8_all_gather else None)
        for o in optimizers:
            for state in o.state.values():
                mark([v for v in state.values() if isinstance(v, torch.Tensor)], "optimizer_states")
    else:
        mark(net.parameters(), "weights")

        def on_cache(cache: Any) -> None:
            parts = [getattr(cache, n, None) for n in ("self_attention_cache", "cross_attention_cache")]
            for part in [p for p in parts if p is not None] or [cache]:  # an EncoderDecoderCache holds two
                for layer in getattr(part, "layers", []):
                    mark([t for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
                          if isinstance(t, torch.Tensor)], "kv_cache")

        tracker.set_phase("ready")
        run_inference(net, w.batch, w.seq, tracker.set_phase, on_cache=on_cache)
    mark(net.parameters(), "weights")
    mark(net.buffers(), "weights")
    tracker.set_phase("end")
    return trainable


def prepare_training(net: Any, w: Workload, mesh: Any = None, compute: str = "bf16") -> tuple[Any, list, Any, list]:
    """What trains and how, as the workload says: adapters (LoRA / DoRA) or frozen parts, checkpointing (full,
    selective, every N-th layer), FSDP2 units on ``mesh``, and the optimizer (one per parameter when it steps
    inside backward). Shared by the trace and ``vramscope measure``; returns (model, trainable parameters,
    the optimizer or the per-parameter dict, the optimizers)."""
    if w.method == "qlora":  # a bitsandbytes 4-bit base (quantize_bnb_4bit), prepared as --kbit-prep says
        from .build import kbit_after_adapters, kbit_prepare

        net = apply_lora(kbit_prepare(net, w.kbit_prep), w.lora_rank, w.lora_targets, w.lora_dropout, w.dora)
        kbit_after_adapters(net, w.kbit_prep)
    elif w.method == "lora":
        net = apply_lora(net, w.lora_rank, w.lora_targets, w.lora_dropout, w.dora)
    elif w.method == "freeze" and w.train_modules:
        for name, p in net.named_parameters():
            p.requires_grad_(name.split(".")[-2] in w.train_modules if "." in name else False)
    elif w.method == "freeze":
        for name, p in net.named_parameters():
            layer = _layer_index(name)
            if "embed" in name or (layer is not None and layer < w.frozen_layers):
                p.requires_grad_(False)
    compiled = compiled_blocks(w)
    if w.grad_checkpointing and w.checkpoint_mode == "selective":
        selective_attention_checkpointing(net)
    elif compiled:
        pass  # torchtitan's checkpoint wrappers, inside the compiled region (below)
    elif w.grad_checkpointing and w.checkpoint_mode == "op":
        op_selective_checkpointing(net)
    elif w.grad_checkpointing:
        checkpoint_layers(net, w.checkpoint_every)
        if w.method in ("lora", "qlora"):
            net.enable_input_require_grads()
    if w.float8 != "none":  # before sharding, as torchtitan converts the model before parallelize
        from .build import convert_float8

        convert_float8(net, w.float8, w.fsdp_float8_all_gather)
    if compiled:  # torchtitan's order: convert, apply_ac, apply_compile, then FSDP2 on the compiled blocks
        from .compiled import compile_blocks, wrap_checkpoint

        # torchtitan's model has no KV cache; transformers turns its own off only under its own checkpointing
        net.config.use_cache = False

        wrap_checkpoint(net, w.checkpoint_mode if w.grad_checkpointing else "none", w.checkpoint_every)
        compile_blocks(net)
    if mesh is not None and w.sp > 1:  # torchtitan: TP first, FSDP2 on dp_shard × cp
        if w.tp_degree > 1:
            from .parallel import apply_tensor_parallel

            apply_tensor_parallel(net, mesh["tp"], w.sequence_parallel)
        shard_like_accelerate(net, mesh["dp_cp"], fsdp_policy(w, compute), compiled)
    elif mesh is not None and w.tp_degree > 1:
        from .parallel import apply_tensor_parallel

        apply_tensor_parallel(net, mesh["tp"], w.sequence_parallel)
        if mesh["dp"].size() > 1 and w.strategy.is_fsdp:
            shard_like_accelerate(net, mesh["dp"], fsdp_policy(w, compute), compiled)
    elif mesh is not None:
        shard_like_accelerate(net, mesh, fsdp_policy(w, compute), compiled)
    params = [p for p in net.parameters() if p.requires_grad]
    if w.optimizer_in_backward:
        per_param = {p: make_optimizer([p], w.optimizer) for p in params}
        return net, params, per_param, list(per_param.values())
    opt = make_optimizer(params, w.optimizer)
    return net, params, opt, [opt]


def _float8_scales(net: Any) -> Callable[[], None]:
    """torchao's ``precompute_float8_dynamic_scale_for_fsdp`` after each optimizer step, as torchtitan's
    ``Float8LinearConverter.post_optimizer_hook`` runs it with float8 all-gather (one all-reduce of every float8
    weight's amax; the scales ride on the weights until the next step)."""
    from torchao.float8 import precompute_float8_dynamic_scale_for_fsdp

    return lambda: precompute_float8_dynamic_scale_for_fsdp(net)


def _global_numel(p: Any) -> int:
    return p.numel()  # a DTensor reports its global shape


def _layer_index(name: str) -> Optional[int]:
    parts = name.split(".")
    for i, p in enumerate(parts[:-1]):
        if p in ("layers", "h", "layer", "block") and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def breakdown(log: TraceLog, category: dict[int, str], index: int, phase: str) -> dict[str, int]:
    """Bytes per category in the live set at event ``index``."""
    out: dict[str, int] = {}
    for key in log.live_at(index):
        cat = category.get(log.storage[key])
        if cat is None:
            alloc = log.alloc_phase[key]
            if alloc.startswith("loss"):
                cat = "loss_head"
            elif phase.startswith("optimizer_step"):
                cat = "optimizer_temp"
            else:
                cat = "activations" if alloc.startswith(("forward", "prefill", "decode")) else "temporaries"
        out[cat] = out.get(cat, 0) + log.sizes[key]
    return out


def _retries(log: TraceLog, w: Workload, gpu: Any, ws: int, nccl: int) -> bool:
    """Replayed on ``gpu`` (its usable memory less the CUDA context and NCCL): whether the allocator has to free
    its cache and retry, and then succeeds."""
    sim = replay(log.sizes, log.events, config=alloc_config(getattr(w, "alloc_conf", "")),
                 capacity=max(0, gpu.usable_bytes - CONTEXT_NOMINAL - nccl), start=log.marks["ready"], extra=(ws,),
                 streams=log.streams)
    return sim.num_alloc_retries > 0 and sim.num_ooms == 0


def _first_line(e: BaseException, limit: int = 160) -> str:
    from ..units import shown

    try:
        text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    except Exception:  # an exception whose __str__ fails
        text = ""
    return shown(text, limit)


def _run_guarded(model: ResolvedModel, w: Workload, progress: bool, timeout: Optional[float],
                 command: str, run: Optional[Callable[[Any], Any]] = None) -> Any:
    """The trace (``run(on_tracker)``, default :func:`run_trace`), with whatever the model code raises as one
    :class:`VramscopeError` naming it."""
    import os

    trackers: list = []
    try:
        with quiet_libraries():
            if run is not None:
                return run(trackers.append)
            return run_trace(model, w, Progress(progress), timeout=timeout, on_tracker=trackers.append)
    except Exception as e:  # the model code's, or torch's under it
        if trackers and trackers[0].timed_out or isinstance(e, TraceTimeout):
            raise VramscopeError("trace_timeout", seconds=f"{timeout:g}", command=command) from None
        if isinstance(e, VramscopeError):
            raise
        if os.environ.get("VRAMSCOPE_DEBUG"):
            raise
        name = type(e).__name__
        if name in _DATA_DEPENDENT:  # fake tensors cannot run data-dependent code (.item(), nonzero, ...)
            raise VramscopeError("trace_unsupported", reason=Text("r_trace_data_dependent", name=name,
                                                                  error=_first_line(e, 80))) from None
        raise VramscopeError("trace_model_failed", error=f"{name}: {_first_line(e)}".rstrip(": "),
                             command=command) from None


def _trace_phases(log: Any, category: Any, w: Workload) -> dict[str, dict[str, int]]:
    """Each phase's live set at its peak (training: the second step, the steady one)."""
    steady = "#2" if w.training else ""
    phases: dict[str, dict[str, int]] = {}
    # load: what is resident once the model is built (initialisation temporaries of from_config are not
    # what from_pretrained allocates, so the build's own peak is not reported)
    phases["load"] = breakdown(log, category, log.marks["ready"], "load")
    for name, peak in log.phases.items():
        if peak.index < 0 or name in ("end", "load", "ready") or name.startswith(("idle", "step#")):
            continue
        base = name.split("#")[0]
        if w.training and not name.endswith(steady):
            continue
        base = "forward" if base == "loss" else base
        b = breakdown(log, category, peak.index, name)
        if base not in phases or sum(b.values()) > sum(phases[base].values()):
            phases[base] = b
    return phases


def _device_phases(log: Any, category: Any, w: Workload, devices: list) -> tuple:
    """A traced rank's phases with the runtime overhead and the replayed allocator's cache; returns (phases,
    peak phase, the replay, the total at the peak, the overhead, cuBLAS workspace, NCCL, cache)."""
    phases = _trace_phases(log, category, w)
    transient = max(p.get("activations", 0) + p.get("temporaries", 0) + p.get("optimizer_temp", 0)
                    for p in phases.values())
    ov = runtime_overhead(transient, cublas_workspace(devices[0].compute_capability, devices[0].gfx_target,
                                                      devices[0].vendor) if devices else None)
    ws = ov.nominal - CONTEXT_NOMINAL
    # the allocation stream through the caching-allocator model, from the loaded model on (construction
    # temporaries of from_config are not what from_pretrained allocates), after torch's cuBLAS workspace
    sim = replay(log.sizes, log.events, config=alloc_config(getattr(w, "alloc_conf", "")), marks=log.marks,
                 start=log.marks["ready"], extra=(ws,), streams=log.streams)
    nccl = NCCL if w.num_gpus > 1 else 0
    peak = pick_peak(phases)
    # reserved is the replay's peak; the cache is what it holds beyond the tensors at the peak and the workspace
    cache = max(0, sim.peak_reserved - sum(phases[peak].values()) - ws)
    for name, p in phases.items():
        p["overhead"] = ov.nominal + nccl
        if cache and name != "load":
            p["allocator_cache"] = cache
    total = sum(phases[peak].values())
    return phases, peak, sim, total, ov, ws, nccl, cache


def _run_pipeline(model: ResolvedModel, w: Workload, progress: bool, timeout: Optional[float],
                  command: str) -> list[dict]:
    """Every pipeline rank traced (``trace/pipeline.py trace_pipeline_rank``) within ``timeout`` seconds in all,
    whatever the model code raises as one :class:`VramscopeError` (:func:`_run_guarded`)."""
    from .pipeline import trace_pipeline_rank

    deadline = None if timeout is None else time.monotonic() + timeout
    out = []
    for rank in range(w.pp):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        out.append(_run_guarded(model, w, progress, timeout, command, run=lambda on_tracker, r=rank: (
            trace_pipeline_rank(model, w, r, Progress(progress), timeout=left, on_tracker=on_tracker,
                                reshard_after_forward=bool(w.pp_reshard_after_forward)))))
    return out


def trace_estimate(model: ResolvedModel, w: Workload, gpus: tuple[str, ...] = (),
                   progress: bool = False, timeout: Optional[float] = DEFAULT_TIMEOUT_S,
                   command: Optional[str] = None) -> Estimate:
    """An :class:`Estimate` from a trace (``estimator: "trace"``).

    Everything that can be refused is refused first, GPU names included, without importing torch; the trace
    then runs under ``timeout`` seconds (None: no limit). Whatever the model code raises becomes one
    :class:`VramscopeError` naming it, with ``command`` (default: ``vramscope estimate MODEL``) as the analytic
    alternative; ``VRAMSCOPE_DEBUG=1`` lets the original exception through.
    """
    from ..gpus import find_gpu, verdict

    command = command or estimate_command(model=model)
    check_traceable(model, w, command)
    devices = [find_gpu(g) for g in gpus]
    t0 = time.perf_counter()
    pipeline: dict = {}
    if w.pp > 1:  # every pipeline rank traced; the answer is the busiest one's
        runs = _run_pipeline(model, w, progress, timeout, command)
        done = [(r, _device_phases(r["log"], r["category"], w, devices)) for r in runs]
        busiest = max(range(len(done)), key=lambda i: done[i][1][3])
        log, category = runs[busiest]["log"], runs[busiest]["category"]
        trainable = sum(r["trainable"] for r in runs)
        phases, peak, sim, total, ov, ws, nccl, cache = done[busiest][1]
        pipeline = {"stages": w.pp, "schedule": w.pp_schedule, "micro_batches": w.grad_accum, "busiest": busiest,
                    "ranks": [{"rank": i, "stages": r["stages"], "layers": r["layers"], "peak_phase": d[1],
                               "peak_bytes": d[3]} for i, (r, d) in enumerate(done)]}
    else:
        log, category, trainable = _run_guarded(model, w, progress, timeout, command)
        phases, peak, sim, total, ov, ws, nccl, cache = _device_phases(log, category, w, devices)
    memory = device_memory(phases[peak], w, cublas_workspace=ws, cache=cache, basis="simulated",
                           allocator=sim.to_dict())
    notes = (Assumption("a_trace", {"seconds": f"{time.perf_counter() - t0:.1f}",
                                    "dtype": compute_dtype(model, w)}), Assumption("a_overhead_torch"),
             Assumption("a_trace_allocator", {"reserved": f"{sim.peak_reserved / 2**30:.2f}",
                                              "retries": sim.num_alloc_retries}))
    info = ModelInfo(name=model.spec.name, params=model.params, active_params=model.active_params,
                     trainable_params=trainable if w.training else 0, source=model.kind, origin=model.origin,
                     storage=model.stored_format, exact_shape=model.exact_shape)
    low, high = memory.device_range
    engine: dict = {}
    if w.num_gpus > 1:  # rank 0 of FSDP2 on a fake process group (under PP: data-parallel index 0 of each stage)
        dp = w.num_gpus // (w.tp_degree * w.sp * w.pp)
        engine["parallel"] = {"world": w.num_gpus, "dp": dp, "tp": w.tp_degree, "pp": w.pp, "sp": w.sp, "ep": 1,
                              "shard_group": dp * w.sp if w.strategy.is_fsdp else 1, "parallelism": w.parallelism}
    if pipeline:
        engine["pipeline"] = pipeline
        notes += (Assumption("a_trace_pp", {"pp": w.pp, "schedule": w.pp_schedule, "m": w.grad_accum,
                                            "rank": pipeline["busiest"]}),)
    return Estimate(model=info, estimator="trace", task=w.task, total_bytes=total,
                    range_bytes=(low, high), components=dict(phases[peak]),
                    peak_phase=peak, phases=phases, workload=w.to_dict(), assumptions=notes,
                    gpus=tuple(replace(verdict(g, total, high), allocator_retry=_retries(log, w, g, ws, nccl))
                               for g in devices), engine=engine, memory=memory)


register({"a_trace_pp": {
    "en": "pipeline parallel traced per rank: the model split into {pp} stages as torchtitan splits it, run through "
          "torch's own {schedule} schedule ({m:~micro-batch~micro-batches} per step) on a fake process group, FSDP2 "
          "inside each stage without resharding after forward (torchtitan's PP default); the numbers are those of "
          "the busiest rank, rank {rank}",
    "zh": "流水线并行逐 rank 追踪：模型按 torchtitan 的方式切成 {pp} 个阶段，在伪进程组上用 torch 自带的 {schedule} 调度运行"
          "（每步 {m} 个微批次），每个阶段内用 FSDP2 且前向后不重新分片（torchtitan 在流水线并行下的默认设置）；"
          "给出的数字是最忙的 rank {rank} 的"},
})


register({"r_trace_data_dependent": {
    "en": "this model's code reads tensor values ({name}: {error}), which fake tensors do not have; use the analytic "
          "estimator or measure on a GPU",
    "zh": "该模型的代码读取张量的值（{name}：{error}），而伪张量没有值；请用解析估算器或在 GPU 上实测"}})
