"""The workload: what the user runs on the model (task, precision, batch, method, optimizer...).

Its fields are the rows of the option table (:mod:`vramscope.options`, and each engine's own rows), so an option
is declared once. :func:`make_workload` is the one constructor, for the CLI, the Python API, the web and the
planner's suggestions alike: it reads every given value by its row, fills in the framework profile's defaults
(:mod:`vramscope.frameworks`, data), then runs the cross-checks in named steps. Every bad or contradictory option
becomes a :class:`VramscopeError` naming the option's field (spelled ``--seq`` on the command line, ``seq`` in
the API: :func:`vramscope.options.spell`) and what is allowed; no option is silently ignored.
"""

from __future__ import annotations

import copy
from dataclasses import field as dc_field, fields, make_dataclass
from typing import Any, Optional

from .engines.base import ENGINE_NAMES, ENGINES as _ENGINES
from .errors import Opt, Text, VramscopeError
from .frameworks import (PROFILES, TORCHTUNE_LORA_TARGETS, Framework,  # noqa: F401 (TORCHTUNE_LORA_TARGETS: API)
                         checkpointing_default)
from .i18n import register
from .options import (ADAPTER_METHODS, CHECKPOINT_MODES, MAX_BATCH, MAX_SEQ, METHODS, Option, choice, table,  # noqa: F401
                      workload_fields, workload_rows)
from .options import check_keywords as _check_names
from .strategy import TRAINING_STRATEGIES, Strategy
from .units import shown

ENGINES = ENGINE_NAMES
TRAINING_PARALLEL = TRAINING_STRATEGIES

#: Workload fields that are not part of its JSON (how it was asked for, not what it is)
_NOT_IN_DICT = ("seq_default", "options")


def workload_keywords() -> tuple[str, ...]:
    """Every keyword :func:`make_workload` takes (the workload options of the Python API)."""
    return workload_fields()


def check_keywords(given: Any, known: Optional[tuple[str, ...]] = None, function: str = "vramscope.estimate") -> None:
    """Refuse keywords that are not options, with the closest option named; ``known`` defaults to the workload's."""
    _check_names(given, workload_fields() if known is None else known, function)


class _WorkloadBase:
    """What a workload derives from its fields."""

    @property
    def training(self) -> bool:
        return self.task != "inference"  # type: ignore[attr-defined]

    @property
    def strategy(self) -> Strategy:
        """The data-parallel strategy (what it shards), read from ``parallelism``."""
        return Strategy(self.parallelism)  # type: ignore[attr-defined]

    @property
    def profile(self) -> Framework:
        """The training framework's profile (its loop, modules and recipe defaults)."""
        return PROFILES[self.framework]  # type: ignore[attr-defined]

    @property
    def tp_degree(self) -> int:
        """Tensor-parallel ranks: --tp in training, --gpus under --parallelism tp."""
        return self.num_gpus if self.strategy.is_tensor_parallel else self.tp  # type: ignore[attr-defined]

    @property
    def dp(self) -> int:
        """Data-parallel ranks: the world size over the model-parallel degrees."""
        if self.strategy.is_tensor_parallel:
            return 1
        return max(1, self.num_gpus // (self.tp * self.pp * self.sp))  # type: ignore[attr-defined]

    @property
    def checkpointed_layers_every(self) -> int:
        return self.checkpoint_every if self.grad_checkpointing else 0  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        # field by field rather than dataclasses.asdict, which deep-copies the given options and every value on
        # fit's hot path (it was two thirds of a fit answer); the values are scalars, tuples and small dicts
        d = {f.name: copy.deepcopy(v) if isinstance(v := getattr(self, f.name), (dict, list)) else v
             for f in fields(self) if f.name not in _NOT_IN_DICT}  # type: ignore[arg-type]
        d["lora_targets"] = list(self.lora_targets)  # type: ignore[attr-defined]
        d["train_modules"] = list(self.train_modules)  # type: ignore[attr-defined]
        return d


def _workload_class() -> type:
    """The Workload dataclass: a field per option row (its default the row's), then how it was asked for."""
    spec: list[Any] = [(o.field, Any, dc_field(default=o.default)) for o in workload_rows()]
    #: --seq not given: the task's default (capped to the model's context when shorter)
    spec.append(("seq_default", bool, dc_field(default=False)))
    #: the options make_workload was given (None: built by hand); plan rebuilds its suggestions from them
    spec.append(("options", Optional[dict], dc_field(default=None, compare=False, repr=False)))
    cls = make_dataclass("Workload", spec, bases=(_WorkloadBase,), frozen=True)
    cls.__module__ = __name__  # (make_dataclass's module= is Python 3.12+)
    return cls


Workload = _workload_class()

# ---------------------------------------------------------------- the constructor


def make_workload(**given: Any) -> Workload:  # type: ignore[valid-type]
    """Validate user options into a :class:`Workload` (errors name the option and the allowed values).

    The keywords are the option table's fields (``vramscope.options``; ``python -m vramscope.options`` lists
    them); None means "not given". Yes/no options are parsed strictly (True/False, 1/0, "true"/"false",
    "yes"/"no", "on"/"off"); ``grad_checkpointing`` also takes a mode ("full", "selective"). Options of another
    method, estimator or engine are refused, never ignored. ``lora_targets`` and ``train_modules`` take
    "q_proj,v_proj" or a list; an empty list is an error. An unknown keyword names the closest option.
    """
    check_keywords(given, function="vramscope.make_workload")
    asked = {k: v for k, v in given.items() if v is not None}
    rows = table()
    v: dict[str, Any] = {k: rows[k].read(x) for k, x in asked.items()}
    runs = _ENGINES[v.get("engine", "transformers")]
    out = _run(v, asked, runs)
    out.update(_method(v, out["task"]))
    out.update(_quant(v.get("quant"), out, runs))
    out.update(_engine_options(out["engine"], v))
    out.update(_parallel(v, out, runs))
    out.update(_training(v, out))
    if out["method"] == "qlora" and "kbit_prep" not in v and Strategy(out["parallelism"]).shards_params:
        # sharded QLoRA (FSDP / ZeRO-3): TRL skips prepare_model_for_kbit_training (is_sharded_qlora, v0.9.6 on)
        # and builds bf16 adapters (get_peft_model(autocast_adapter_dtype=False)); 1.x never calls it
        out["kbit_prep"] = "trl"
    _refuse_ignored(v, out)
    return Workload(**out, options=asked)


def _run(v: dict[str, Any], asked: dict[str, Any], runs: Any) -> dict[str, Any]:
    """Task, estimator, engine, framework, dtypes, batch and sequence: read, and checked against each other."""
    task = v.get("task", "inference")
    if "activations_per_sample" in v and v.get("estimator", "analytic") != "seed":
        raise VramscopeError("conflict", field="activations_per_sample",
                             reason=Text("r_seed_option", add=Opt("estimator", "seed")))
    if not runs.trains and task != "inference":
        raise VramscopeError("conflict", field="engine", reason=Text("r_inference_engine", engine=runs.name))
    profile = PROFILES[v.get("framework", "hf")]
    default_seq = (profile.seq or 2048) if task != "inference" else 4096
    return {"task": task, "estimator": v.get("estimator", "analytic"), "engine": runs.name,
            "framework": v.get("framework", "hf"), "dtype": v.get("dtype"), "batch": v.get("batch", 1),
            "seq": v.get("seq", default_seq), "seq_default": "seq" not in v, "kv_dtype": v.get("kv_dtype"),
            "attn": v.get("attn", "sdpa"), "precision": v.get("precision", "auto"),
            "grad_accum": v.get("grad_accum", 1), "activations_per_sample": v.get("activations_per_sample"),
            "cache": v.get("cache", "dynamic"), "offload": v.get("offload", "none"),
            "pp_schedule": v.get("pp_schedule", "1f1b"), "pp_virtual": v.get("pp_virtual", 2),
            "lora_rank": v.get("lora_rank", profile.lora_rank),
            "lora_dropout": v.get("lora_dropout", profile.lora_dropout),
            "frozen_layers": v.get("frozen_layers", 0), "kbit_prep": v.get("kbit_prep", profile.kbit_prep),
            "bnb_version": v.get("bnb_version", profile.bnb_version), "bnb_compute_dtype": v.get("bnb_compute_dtype"),
            "litgpt_version": v.get("litgpt_version", "0.5.13"),
            "unsloth_version": v.get("unsloth_version", "2026.8.13")}


def _method(v: dict[str, Any], task: str) -> dict[str, Any]:
    """The training method, and the options that belong to one method only."""
    method = v.get("method")
    if method is not None:
        if task == "inference" and method != "full":
            raise VramscopeError("conflict", field="method", reason=Text(
                "r_training_method", method=method, task=Opt("task"), use=Opt("task", "finetune"), drop=Opt("method")))
        if task == "pretrain" and method in ("lora", "qlora", "freeze"):
            raise VramscopeError("conflict", field="method",
                                 reason=Text("r_finetune_method", method=method, use=Opt("task", "finetune")))
    method = method or "full"
    if method in ADAPTER_METHODS:
        # LitGPT's litgpt/finetune/adapter.py and adapter_v2.py (its own adapter modules): one device, no
        # activation checkpointing (neither recipe has the option)
        if v.get("framework") != "litgpt":
            raise VramscopeError("conflict", field="method",
                                 reason=Text("r_for_method", method=Opt("framework", "litgpt")))
        if task == "pretrain":
            raise VramscopeError("conflict", field="method",
                                 reason=Text("r_finetune_method", method=method, use=Opt("task", "finetune")))
        for name, bad in (("num_gpus", v.get("num_gpus", 1) > 1), ("grad_checkpointing", bool(v.get("grad_checkpointing")))):
            if bad:
                raise VramscopeError("conflict", field=name, reason=Text("r_litgpt_adapter_scope", method=method))
    lora = method in ("lora", "qlora")
    for name in ("lora_rank", "lora_targets", "lora_dropout", "lora_alpha"):
        if name in v and not lora:
            reason = (Text("r_lora_option_inference", task=Opt("task", "finetune"), add=Opt("method", "lora"))
                      if task == "inference" else Text("r_lora_option", add=Opt("method", "lora")))
            raise VramscopeError("conflict", field=name, reason=reason)
    if "litgpt_version" in v and (v.get("framework") != "litgpt" or method != "qlora"):
        raise VramscopeError("conflict", field="litgpt_version",
                             reason=Text("r_for_method", method=Opt("framework", "litgpt")))
    if "unsloth_version" in v and (v.get("framework") != "unsloth" or not lora):
        raise VramscopeError("conflict", field="unsloth_version",
                             reason=Text("r_for_method", method=Opt("framework", "unsloth")))
    for name in ("kbit_prep", "bnb_version", "bnb_compute_dtype"):  # bitsandbytes' 4-bit base
        if name in v and method != "qlora":
            raise VramscopeError("conflict", field=name, reason=Text("r_for_method", method=Opt("method", "qlora")))
    if "frozen_layers" in v and method != "freeze":
        raise VramscopeError("conflict", field="frozen_layers", reason=Text("r_for_method", method=Opt("method", "freeze")))
    if "frozen_layers" in v and "train_modules" in v:
        raise VramscopeError("conflict", field="frozen_layers",
                             reason=Text("r_freeze_either", method=Opt("method", "freeze"), modules=Opt("train_modules")))
    if "train_modules" in v and method != "freeze":
        raise VramscopeError("conflict", field="train_modules", reason=Text("r_for_method", method=Opt("method", "freeze")))
    return {"method": method, "train_modules": v.get("train_modules", ())}


def _quant(quant: Any, out: dict[str, Any], runs: Any) -> dict[str, Any]:
    """``quant``: a GGUF type for llama.cpp only, a 4-bit type for QLoRA (the profile's when not given), and no
    quantized weights a training method would have to update."""
    from .memory.gguf_mix import GGUF_FTYPES
    from .memory.weights import QUANTS, valid_quant

    task, method, profile = out["task"], out["method"], PROFILES[out["framework"]]
    q = "none" if quant is None else quant.strip().lower()  # read by its row: a str of a sane length
    if q.upper() in GGUF_FTYPES:
        if not runs.gguf_quants:
            raise VramscopeError("conflict", field="quant",
                                 reason=Text("r_gguf_type", quant=quant, add=Opt("engine", "llama.cpp")))
        q = q.upper()
    elif not valid_quant(q):
        raise VramscopeError("bad_choice", field="quant", value=shown(quant),
                             allowed=Text("allowed_quants", quants=", ".join(QUANTS), engine=Opt("engine", "llama.cpp")))
    elif runs.gguf_quants and q != "none":
        raise VramscopeError("conflict", field="quant", reason=Text("r_llamacpp_gguf_only", quant=quant))
    if method == "qlora":
        if q == "none":
            q = profile.qlora_quant
        elif q not in ("int4", "nf4", "fp4", "nf4-dq", "fp4-dq", "int8"):
            raise VramscopeError("conflict", field="quant", reason=Text("r_qlora_4bit", quant=quant))
        elif q == "int8" and (profile.own_modules or profile.bnb_convert != "transformers"):
            # LitGPT's bnb.int8-training (fp16 only), torchtune's NF4 modules: not modelled
            raise VramscopeError("conflict", field="quant", reason=Text("r_qlora_int8_hf", framework=out["framework"]))
    elif task != "inference" and q != "none" and method != "lora":
        raise VramscopeError("conflict", field="quant", reason=Text(
            "r_cannot_update_quant", method=method, quant=q, qlora=Opt("method", "qlora"), lora=Opt("method", "lora"),
            drop=Opt("quant")))
    return {"quant": q}


def _engine_options(engine: str, v: dict[str, Any]) -> dict[str, Any]:
    """The engines' own options (``Engine.options``): another engine's, when given, is refused."""
    for other in _ENGINES.values():
        if other.name == engine:
            continue
        named = [o.field for o in other.options if o.given(v.get(o.field))]
        if named:
            raise VramscopeError("conflict", field=named[0],
                                 reason=Text("r_engine_option", engine=other.name, add=Opt("engine", other.name)))
    # a switch whose default is None (vLLM's --enable-prefix-caching: the engine's own default) stays None unset
    return {o.field: bool(v.get(o.field)) if o.switch and (o.default is not None or v.get(o.field) is not None)
            else v.get(o.field, o.default) for e in _ENGINES.values() for o in e.options}


def _parallel(v: dict[str, Any], out: dict[str, Any], runs: Any) -> dict[str, Any]:
    """--gpus and the parallel layout: the strategy, pipeline stages and their schedule, the cache and offload
    that depend on the task."""
    task = out["task"]
    n_gpus = v.get("num_gpus", 1)
    par = v.get("parallelism", "auto")
    profile = PROFILES[out["framework"]]
    # data parallelism by default: FSDP, or (Megatron-LM) its DDP with the gradient buffer
    data_parallel = "fsdp" if profile.runs_fsdp else "ddp"
    if par == "auto":
        par = "none" if n_gpus == 1 else ("tp" if task == "inference" else data_parallel)
    if not runs.multi_gpu and n_gpus > 1:
        raise VramscopeError("conflict", field="num_gpus", reason=Text("r_one_gpu_engine", engine=runs.name,
                                                                        ngl=Opt("n_gpu_layers")))
    pp_n = v.get("pp", 1)
    if par == "none" and n_gpus > 1 and (task == "inference" or n_gpus > v.get("tp", 1) * pp_n * v.get("sp", 1)):
        raise VramscopeError("conflict", field="parallelism", reason=Text("r_none_many_gpus", n=n_gpus))
    if par in TRAINING_PARALLEL and task == "inference":
        raise VramscopeError("conflict", field="parallelism",
                             reason=Text("r_parallel_not_for_task", par=par, task=Opt("task", task), use="tp"))
    if "pp_virtual" in v and not out["pp_schedule"].startswith("interleaved"):
        raise VramscopeError("conflict", field="pp_virtual", reason=Text(
            "r_pp_virtual", schedule=Opt("pp_schedule", "interleaved")))
    if out["pp_schedule"] == "interleaved" and out["grad_accum"] % pp_n:
        raise VramscopeError("conflict", field="pp_schedule",
                             reason=Text("r_interleaved", accum=Opt("grad_accum"), pp=Opt("pp")))
    if pp_n > 1 and task == "inference" and not runs.pipeline_inference:
        raise VramscopeError("conflict", field="pp", reason=Text(
            "r_pp_inference", engine=Opt("engine", "vllm"), pp=Opt("pp", "N", flag="--pipeline-parallel-size")))
    par, n_gpus, dist = _distributed(v, task, par, n_gpus, pp_n, out["attn"], out["offload"], data_parallel)
    if par == "fsdp" and task != "inference":
        if not profile.runs_fsdp:
            raise VramscopeError("conflict", field="parallelism", reason=Text(
                "r_framework_no_fsdp", framework=out["framework"], use=Opt("parallelism", "zero1")))
        if dist["fsdp_version"] not in profile.fsdp_versions:
            raise VramscopeError("conflict", field="fsdp_version", reason=Text(
                "r_framework_fsdp_version", framework=out["framework"],
                use=Opt("fsdp_version", profile.fsdp_versions[-1])))
    if out["cache"] == "static" and not runs.static_cache:
        raise VramscopeError("conflict", field="cache", reason=Text("r_static_cache"))
    if out["offload"] != "none" and task == "inference":
        raise VramscopeError("conflict", field="offload", reason=Text("r_offload_training", use=Opt("task", "finetune")))
    return {"num_gpus": n_gpus, "pp": pp_n,
            "parallelism": par if n_gpus > 1 or par in TRAINING_PARALLEL else "none", **dist}


def _distributed(v: dict[str, Any], task: str, par: str, n_gpus: int, pp: int, attn: str,
                 offload: str, data_parallel: str = "fsdp") -> tuple[str, int, dict[str, Any]]:
    """Multi-GPU degrees: --gpus is the world size; data parallel = gpus / (tp · pp · sp)."""
    tp_n, sp_n, ep_n, nodes_n = v.get("tp", 1), v.get("sp", 1), v.get("ep", 1), v.get("nodes", 1)
    sequence_parallel = bool(v.get("sequence_parallel"))
    training = task != "inference"
    if not training:
        for name, on in (("sp", sp_n > 1), ("ep", ep_n > 1), ("sequence_parallel", sequence_parallel)):
            if on:
                raise VramscopeError("conflict", field=name, reason=Text(
                    "r_training_parallel", tp=Opt("tp", flag="--tensor-parallel-size")))
        if tp_n > 1:
            if n_gpus not in (1, tp_n):
                raise VramscopeError("conflict", field="tp", reason=Text("r_tp_or_gpus", gpus=Opt("num_gpus", n_gpus)))
            n_gpus, par, tp_n = tp_n, "tp", 1
    elif par == "tp":  # --parallelism tp in training: every GPU is a tensor-parallel rank
        tp_n, par = n_gpus, "none"
    model_parallel = tp_n * pp * sp_n
    if training and n_gpus == 1 and model_parallel > 1:
        n_gpus = model_parallel  # --pp 4 alone means four GPUs
    if training and n_gpus % model_parallel:
        raise VramscopeError("conflict", field="num_gpus",
                             reason=Text("r_gpus_divide", n=n_gpus, tp=tp_n, pp=pp, sp=sp_n))
    dp = n_gpus // model_parallel if training else 1
    if training and dp > 1 and par == "none":
        par = data_parallel
    if training and dp == 1 and par == "ddp":
        par = "none"  # ZeRO and FSDP on one GPU still run (their CPU offload is the point); DDP does nothing
    if sequence_parallel and tp_n == 1:
        raise VramscopeError("conflict", field="sequence_parallel", reason=Text("r_sp_needs_tp", add=Opt("tp", "N")))
    if sp_n > 1 and attn == "eager":
        raise VramscopeError("conflict", field="sp", reason=Text("r_cp_eager", use=Opt("attn", "sdpa")))
    if n_gpus % nodes_n:
        raise VramscopeError("conflict", field="nodes", reason=Text("r_nodes_gpus", n=n_gpus, nodes=nodes_n))
    shard = v.get("fsdp_sharding", "full")
    if shard == "hybrid" and (par != "fsdp" or nodes_n == 1):
        raise VramscopeError("conflict", field="fsdp_sharding",
                             reason=Text("r_hybrid", par=Opt("parallelism", "fsdp"), nodes=Opt("nodes")))
    if shard == "hybrid" and dp % nodes_n:
        raise VramscopeError("conflict", field="nodes", reason=Text("r_nodes_dp", dp=dp, nodes=nodes_n))
    prefetch = v.get("fsdp_backward_prefetch", "none")
    if prefetch != "none" and (par != "fsdp" or v.get("fsdp_version", 2) != 1):
        raise VramscopeError("conflict", field="fsdp_backward_prefetch",
                             reason=Text("r_backward_prefetch_fsdp1", use=Opt("fsdp_version", 1)))
    dev = v.get("offload_device", "cpu")
    if dev == "nvme" and (offload == "none" or not Strategy(par).is_zero):
        raise VramscopeError("conflict", field="offload_device",
                             reason=Text("r_nvme", zero=Opt("zero", "1-3"), offload=Opt("offload")))
    rows = table()
    knobs = {k: v.get(k, rows[k].default) for k in ("zero_prefetch", "zero_max_live", "zero_persistence",
                                                    "reduce_bucket", "zero_auto")}
    # a size both given and left "auto" is the given one
    knobs["zero_auto"] = tuple(k for k in knobs["zero_auto"] or () if k not in v)
    return par, n_gpus, {"tp": tp_n, "sequence_parallel": sequence_parallel, "sp": sp_n,
                         "sp_mode": v.get("sp_mode", "ring"), "ep": ep_n, "nodes": nodes_n, "fsdp_sharding": shard,
                         "fsdp_version": v.get("fsdp_version", 2), "fsdp_backward_prefetch": prefetch,
                         "offload_device": dev, **knobs}


def _checkpointing(v: dict[str, Any], training: bool, profile: Framework, method: str) -> dict[str, Any]:
    """``grad_checkpointing`` (yes/no, or a mode as the command line gives it), its mode and every-N-th layer,
    the profile's default where the user gave none."""
    ckpt, mode = v.get("grad_checkpointing"), v.get("checkpoint_mode")
    if isinstance(ckpt, str):  # grad_checkpointing="selective", as on the command line
        if mode is not None and mode != ckpt:
            raise VramscopeError("conflict", field="grad_checkpointing",
                                 reason=Text("r_ckpt_modes_disagree", mode=ckpt, other=shown(mode)))
        ckpt, mode = True, ckpt
    if ckpt is False and (mode is not None or "checkpoint_every" in v):
        raise VramscopeError("conflict", field=Opt("grad_checkpointing", False), reason=Text(
            "r_ckpt_off_on", on=Opt("grad_checkpointing", "MODE"), every=Opt("checkpoint_every")))
    if ckpt is None and mode is None and "checkpoint_every" not in v:
        # torchtune's recipes: enable_activation_checkpointing; hf: TRL's configs and peft's k-bit path for adapters
        on = training and checkpointing_default(profile, method, v.get("num_gpus", 1))
    else:
        on = bool(ckpt) or mode is not None or "checkpoint_every" in v
    if mode == "selective":
        mode = profile.selective_mode  # torchtitan's "selective" is its per-op policy
    if mode == "op" and "checkpoint_every" in v:
        raise VramscopeError("conflict", field="checkpoint_every", reason=Text("r_op_sac_every"))
    megatron = [k for k in ("recompute_method", "recompute_num_layers") if k in v]
    if megatron:
        # Megatron-LM's --recompute-granularity full: whole layers, grouped (uniform) or the first N (block)
        if ckpt is False or (mode or "full") != "full":
            raise VramscopeError("conflict", field=megatron[0], reason=Text(
                "r_recompute_full", on=Opt("grad_checkpointing", "full")))
        if "checkpoint_every" in v:
            raise VramscopeError("conflict", field=megatron[0], reason=Text(
                "r_recompute_every", every=Opt("checkpoint_every")))
        on = True
    return {"grad_checkpointing": on, "checkpoint_mode": mode or "full", "checkpoint_every": v.get("checkpoint_every", 1),
            "recompute_method": v.get("recompute_method", "uniform"),
            "recompute_num_layers": v.get("recompute_num_layers", 1)}


def _training(v: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Training options, with the framework profile's defaults (data) where the user gave none."""
    task, method, profile = out["task"], out["method"], PROFILES[out["framework"]]
    training = task != "inference"
    if not training:
        _refuse_training_options(v)
    # torchtune's full_finetune_single_device configs (llama3_1/8B, llama3_2/3B, llama2/7B_full_low_memory):
    # bitsandbytes PagedAdamW8bit stepped inside backward (optimizer_in_bwd: True)
    full_single = (profile.full_single_optimizer is not None and training and method == "full"
                   and v.get("num_gpus", 1) == 1)
    in_bwd = v.get("optimizer_in_backward")
    if full_single and in_bwd is None and out["grad_accum"] == 1:
        in_bwd = True
    if v.get("dora") and method not in ("lora", "qlora"):
        raise VramscopeError("conflict", field="dora", reason=Text("r_dora", add=Opt("method", "lora")))
    if in_bwd and out["grad_accum"] > 1:
        raise VramscopeError("conflict", field="optimizer_in_backward",
                             reason=Text("r_opt_bwd_accum", use=Opt("grad_accum", 1)))
    alpha = v.get("lora_alpha")
    if alpha is not None:
        from .units import parse_float

        allowed = Text("allowed_positive")
        alpha = parse_float(alpha, "lora_alpha", 0.0, 1e9, allowed)
        if not alpha > 0:
            raise VramscopeError("bad_choice", field="lora_alpha", value=shown(v["lora_alpha"]), allowed=allowed)
    # the one precision recipe adapters take: accelerate's mixed_precision over a base loaded in fp32 (peft's
    # examples/sft/utils.py without 4-bit: torch_dtype float32), sharded by FSDP and gathered in its policy's dtype
    fsdp_mixed_lora = (method == "lora" and v.get("precision") == "mixed" and out["parallelism"] == "fsdp"
                       and profile.fsdp_policy is not None)
    if v.get("precision", "auto") != "auto" and method in ("lora", "qlora") and not fsdp_mixed_lora:
        raise VramscopeError("conflict", field="precision", reason=Text(
            "r_precision_adapters", dtype=Opt("dtype"), quant=Opt("quant"), precision=Opt("precision")))
    f8 = v.get("float8", "none")
    if f8 != "none" and method != "full":
        raise VramscopeError("conflict", field="float8", reason=Text("r_float8_full", use=Opt("method", "full")))
    if v.get("fsdp_float8_all_gather") and f8 != "tensorwise":
        raise VramscopeError("conflict", field="fsdp_float8_all_gather",
                             reason=Text("r_float8_all_gather", use=Opt("float8", "tensorwise")))
    if v.get("fsdp_float8_all_gather") and (out["parallelism"] != "fsdp" or out["fsdp_version"] != 2):
        raise VramscopeError("conflict", field="fsdp_float8_all_gather",
                             reason=Text("r_float8_fsdp2", use=Opt("parallelism", "fsdp")))
    te = v.get("te_fp8", "none")
    if te != "none" and out["framework"] != "megatron":
        raise VramscopeError("conflict", field="te_fp8", reason=Text("r_te_fp8_megatron", use=Opt("framework", "megatron")))
    if te != "none" and method != "full":
        raise VramscopeError("conflict", field="te_fp8", reason=Text("r_float8_full", use=Opt("method", "full")))
    if te != "none" and f8 != "none":
        raise VramscopeError("conflict", field="te_fp8", reason=Text("r_te_fp8_torchao", use=Opt("float8", "none")))
    if "fp8_amax_history_len" in v and te != "delayed":
        raise VramscopeError("conflict", field="fp8_amax_history_len",
                             reason=Text("r_te_fp8_history", use=Opt("te_fp8", "delayed")))
    if v.get("fp8_param_gather") and te == "none":
        raise VramscopeError("conflict", field="fp8_param_gather", reason=Text("r_te_fp8_param", use=Opt("te_fp8", "RECIPE")))
    if v.get("fp8_param_gather") and te == "mxfp8":
        raise VramscopeError("conflict", field="fp8_param_gather", reason=Text("r_te_fp8_param_mx"))
    if v.get("fp8_param_gather") and out["parallelism"] != "zero1":
        raise VramscopeError("conflict", field="fp8_param_gather",
                             reason=Text("r_te_fp8_param_dist", use=Opt("parallelism", "zero1")))
    async_tp = bool(v.get("async_tp"))
    if async_tp:
        # torchtitan 0.3.0 CompileConfig.__post_init__ refuses it without compiled blocks; inductor's micro-pipeline pass
        # fuses only the all-gathers / reduce-scatters that sequence parallelism puts around the TP matmuls
        compiled = bool(v.get("compile")) and "model" in v.get("compile_components", "model,loss").split(",")
        for missing, add in ((out.get("tp", 1) < 2, Opt("tp", "N")),
                             (not out.get("sequence_parallel"), Opt("sequence_parallel")),
                             (not compiled, Opt("compile"))):
            if missing:
                raise VramscopeError("conflict", field="async_tp", reason=Text("r_async_tp_needs", add=add))
    if v.get("pp_reshard_after_forward"):
        # torchtitan's fsdp_reshard_after_forward = "always" under PP (memory/pipeline.py _always_moments)
        for missing, add in ((out.get("framework") != "torchtitan", Opt("framework", "torchtitan")),
                             (out.get("pp", 1) < 2, Opt("pp", "N")),
                             (out.get("parallelism") != "fsdp", Opt("parallelism", "fsdp"))):
            if missing:
                raise VramscopeError("conflict", field="pp_reshard_after_forward",
                                     reason=Text("r_pp_reshard_needs", add=add))
    cf = v.get("moe_capacity_factor")
    if "moe_dispatcher" in v and out["framework"] != "megatron":
        raise VramscopeError("conflict", field="moe_dispatcher",
                             reason=Text("r_megatron_moe", use=Opt("framework", "megatron")))
    if cf is not None and out["framework"] != "megatron":
        raise VramscopeError("conflict", field="moe_capacity_factor",
                             reason=Text("r_megatron_moe", use=Opt("framework", "megatron")))
    if v.get("moe_pad_to_capacity") and cf is None:
        raise VramscopeError("conflict", field="moe_pad_to_capacity",
                             reason=Text("r_moe_pad_needs_cf", add=Opt("moe_capacity_factor", "F")))
    ckpt = _checkpointing(v, training, profile, method)
    if v.get("checkpoint_reentrant") and not ckpt["grad_checkpointing"]:
        raise VramscopeError("conflict", field="checkpoint_reentrant",
                             reason=Text("r_reentrant_ckpt", on=Opt("grad_checkpointing")))
    reentrant = v["checkpoint_reentrant"] if v.get("checkpoint_reentrant") is not None else (
        profile.reentrant_checkpointing and ckpt["grad_checkpointing"])
    return {**ckpt, "checkpoint_reentrant": bool(reentrant),
            "compile": bool(v.get("compile")),
            "compile_components": v.get("compile_components", "model,loss"), "float8": f8,
            "fsdp_float8_all_gather": bool(v.get("fsdp_float8_all_gather")),
            "te_fp8": te, "fp8_amax_history_len": v.get("fp8_amax_history_len", 1),
            "fp8_param_gather": bool(v.get("fp8_param_gather")),
            "async_tp": async_tp, "pp_reshard_after_forward": bool(v.get("pp_reshard_after_forward")),
            "moe_capacity_factor": cf, "moe_pad_to_capacity": bool(v.get("moe_pad_to_capacity")),
            "moe_dispatcher": v.get("moe_dispatcher", "allgather"),
            "activation_offload": bool(v.get("activation_offload")),
            "ce_chunks": v.get("ce_chunks", _ce_chunks(profile, out) if training else 1),
            "packing": bool(v.get("packing")),
            "optimizer_in_backward": bool(in_bwd), "dora": bool(v.get("dora")), "lora_alpha": alpha,
            # inference runs no optimizer: its field keeps the row's default, whatever the framework's
            "optimizer": v.get("optimizer", _default_optimizer(profile, method, full_single)
                               if training else table()["optimizer"].default),
            "lora_targets": v.get("lora_targets") or profile.lora_targets,
            "liger": v.get("liger", profile.liger) if training else ()}


def _ce_chunks(profile: Framework, out: dict[str, Any]) -> int:
    """The framework's chunks of the output head and loss: LitGPT's are 128 tokens long (lm_head_chunk_size) for
    its adapter recipes; its full fine-tuning runs the head whole (``model(input_ids)``)."""
    if profile.ce_chunk_tokens and out["method"] != "full":
        return max(1, -(-out["seq"] // profile.ce_chunk_tokens))
    return profile.ce_chunks


def _default_optimizer(profile: Framework, method: str, full_single: bool) -> str:
    if full_single:
        return profile.full_single_optimizer or profile.optimizer
    if method == "qlora" and profile.qlora_optimizer:
        return profile.qlora_optimizer
    return profile.optimizer


def _refuse_training_options(v: dict[str, Any]) -> None:
    """At inference, an option the table says training owns (``owner="training"``), given with another value
    than its default (or at all, when its default depends on the training), is refused: inference would
    ignore it. A switch given off is not given."""
    rows = table()
    for name, value in v.items():
        o = rows[name]  # a contextual default (the optimizer: the framework's) is never "the default" here
        if o.owner == "training" and value is not False and (o.contextual or value != o.default):
            raise VramscopeError("conflict", field=name, reason=Text("r_training_option", add=Opt("task", "finetune")))


def _refuse_ignored(v: dict[str, Any], out: dict[str, Any]) -> None:
    """Options the chosen task or estimator would ignore are refused: no option is silently dropped."""
    if out["task"] == "inference":
        _refuse_training_options(v)
    elif out["kv_dtype"] is not None or out["cache"] != "dynamic":
        raise VramscopeError("conflict", field="kv_dtype" if out["kv_dtype"] is not None else "cache",
                             reason=Text("r_kv_inference"))
    if out["estimator"] == "seed":
        seed_ignores = (("engine", out["engine"] != "transformers"), ("kv_dtype", out["kv_dtype"] is not None),
                        ("cache", out["cache"] != "dynamic"), ("attn", out["attn"] != "sdpa"),
                        ("num_gpus", out["num_gpus"] > 1), ("offload", out["offload"] != "none"),
                        ("pp", out["pp"] > 1), ("tp", out["tp"] > 1), ("sp", out["sp"] > 1), ("ep", out["ep"] > 1))
        for name, on in seed_ignores:
            if on:
                raise VramscopeError("conflict", field=name, reason=Text("r_seed_ignores",
                                                                         use=Opt("estimator", "analytic")))


register({
    "r_precision_adapters": {
        "en": "LoRA and QLoRA train adapters on a frozen base, in no precision recipe: the base's dtype is {dtype} (or "
              "{quant}), the adapters' the framework's (peft: fp32; torchtune: the model's); {precision} is for full "
              "and freeze training, and for LoRA sharded by FSDP (accelerate's mixed precision over an fp32 base)",
        "zh": "LoRA 和 QLoRA 在冻结的基座上训练适配器，不套用精度配方：基座的精度由 {dtype}（或 {quant}）决定，适配器的精度由"
              "框架决定（peft：fp32；torchtune：模型精度）；{precision} 用于全参数和冻结训练，以及由 FSDP 分片的 LoRA（accelerate 混合精度，fp32 基座）"},
    "r_framework_no_fsdp": {"en": "{framework} shards with its distributed optimizer, not torch FSDP; use {use}",
                            "zh": "{framework} 用自己的分布式优化器分片，而不是 torch FSDP；请用 {use}"},
    "r_backward_prefetch_fsdp1": {"en": "backward prefetch is FSDP1's setting (FSDP2 always prefetches one unit); use {use}",
                                  "zh": "反向预取是 FSDP1 的设置（FSDP2 总是预取一个单元）；请用 {use}"},
    "r_framework_fsdp_version": {"en": "{framework} runs FSDP2 (fully_shard) only; use {use}",
                                 "zh": "{framework} 只使用 FSDP2（fully_shard）；请用 {use}"},
    "r_op_sac_every": {"en": "torchtitan's per-op policy wraps every block; give it or every N-th layer, not both",
                       "zh": "torchtitan 的逐算子策略作用于每个块；请只给它或每 N 层检查点之一"},
    "r_recompute_full": {"en": "is Megatron-LM's full recompute; it goes with {on}",
                         "zh": "是 Megatron-LM 的完全重算；需配合 {on}"},
    "r_recompute_every": {"en": "and {every} both choose which layers are checkpointed; give one",
                          "zh": "与 {every} 都在选择哪些层做检查点；请只给一个"},
    "r_float8_full": {"en": "float8 training converts the trained linears; use {use}",
                      "zh": "float8 训练转换的是要训练的线性层；请用 {use}"},
    "r_te_fp8_megatron": {"en": "is Transformer Engine FP8 as Megatron-LM runs it; use {use}",
                          "zh": "是 Megatron-LM 所用的 Transformer Engine FP8；请用 {use}"},
    "r_te_fp8_torchao": {"en": "Transformer Engine FP8 replaces torchao's float8 training; use {use}",
                         "zh": "Transformer Engine FP8 取代 torchao 的 float8 训练；请用 {use}"},
    "r_te_fp8_history": {"en": "is the amax history of delayed scaling; use {use}",
                         "zh": "是延迟缩放的 amax 历史；请用 {use}"},
    "r_te_fp8_param": {"en": "keeps FP8 parameters of a Transformer Engine FP8 recipe; add {use}",
                       "zh": "保存 Transformer Engine FP8 配方的 FP8 参数；请加上 {use}"},
    "r_te_fp8_param_mx": {"en": "FP8 parameters under the mxfp8 recipe (Megatron-LM's separate MXFP8 all-gather "
                                "buffer) are not modelled yet; use delayed, tensorwise or blockwise",
                          "zh": "mxfp8 配方下的 FP8 参数（Megatron-LM 单独的 MXFP8 聚合缓冲区）尚未建模；"
                                "请用 delayed、tensorwise 或 blockwise"},
    "r_te_fp8_param_dist": {"en": "Megatron-LM gathers FP8 parameters only with its distributed optimizer; use {use}",
                            "zh": "Megatron-LM 只在分布式优化器下以 FP8 聚合参数；请用 {use}"},
    "r_float8_all_gather": {"en": "torchao all-gathers float8 weights with tensorwise scaling only; use {use}",
                            "zh": "torchao 只在 tensorwise 缩放下以 float8 聚合权重；请用 {use}"},
    "r_float8_fsdp2": {"en": "is FSDP2's float8 all-gather; add {use} with FSDP2",
                       "zh": "是 FSDP2 的 float8 聚合；请加上 {use} 并使用 FSDP2"},
    "r_two_spellings": {"en": "and {other} give different values; give one",
                        "zh": "与 {other} 给出的值不同；请只给一个"},
    "r_seed_option": {"en": "is the seed estimator's A: add {add}", "zh": "是 seed 估算器的 A：请加上 {add}"},
    "r_inference_engine": {"en": "{engine} is an inference engine; training estimates follow transformers / PyTorch",
                           "zh": "{engine} 是推理引擎；训练估算按 transformers / PyTorch 计算"},
    "r_engine_option": {"en": "is a {engine} option; add {add}", "zh": "是 {engine} 的选项；请加上 {add}"},
    "r_training_method": {"en": "'{method}' is a training method but {task} is inference; use {use} (or drop {drop})",
                          "zh": "'{method}' 是训练方法，但 {task} 是推理；请用 {use}（或去掉 {drop}）"},
    "r_finetune_method": {"en": "'{method}' is a fine-tuning method; use {use}",
                          "zh": "'{method}' 是微调方法；请用 {use}"},
    "r_lora_option": {"en": "is a LoRA option: add {add} (or qlora)", "zh": "是 LoRA 选项：请加上 {add}（或 qlora）"},
    "r_lora_option_inference": {"en": "is a LoRA option: add {task} {add} (or qlora)",
                                "zh": "是 LoRA 选项：请加上 {task} {add}（或 qlora）"},
    "r_for_method": {"en": "is for {method}", "zh": "只用于 {method}"},
    "r_litgpt_adapter_scope": {
        "en": "LitGPT's {method} recipe (litgpt/finetune/adapter*.py) is modelled on one device without activation "
              "checkpointing",
        "zh": "LitGPT 的 {method} 配方（litgpt/finetune/adapter*.py）只按单卡、不含激活检查点建模"},
    "r_freeze_either": {"en": "{method} trains either all but the first N layers or {modules}: give one of them",
                        "zh": "{method} 要么训练除前 N 层外的所有层，要么只训练 {modules}：请只给其中一个"},
    "r_gguf_type": {"en": "'{quant}' is a GGUF type, run by llama.cpp: add {add}",
                    "zh": "'{quant}' 是 GGUF 类型，由 llama.cpp 运行：请加上 {add}"},
    "allowed_quants": {"en": "{quants} (GPTQ/AWQ with a group suffix: -g32, -g64, -g128, -g-1), or with {engine} a "
                             "GGUF type (Q4_K_M, Q8_0, ...)",
                       "zh": "{quants}（GPTQ/AWQ 可带分组后缀：-g32、-g64、-g128、-g-1），或配合 {engine} 使用 GGUF "
                             "类型（Q4_K_M、Q8_0 等）"},
    "r_llamacpp_gguf_only": {"en": "llama.cpp runs GGUF types (Q4_K_M, Q5_K_M, Q8_0, ...), not '{quant}'",
                             "zh": "llama.cpp 运行 GGUF 类型（Q4_K_M、Q5_K_M、Q8_0 等），不支持 '{quant}'"},
    "r_qlora_4bit": {"en": "QLoRA quantizes the base with bitsandbytes: 4-bit (nf4, fp4, nf4-dq, fp4-dq) or LLM.int8 "
                           "(int8), not '{quant}'",
                     "zh": "QLoRA 用 bitsandbytes 量化基座：4 位（nf4、fp4、nf4-dq、fp4-dq）或 LLM.int8（int8），不是 '{quant}'"},
    "r_qlora_int8_hf": {"en": "8-bit adapter training (bitsandbytes LLM.int8, load_in_8bit) is modelled with the Hugging "
                              "Face stack's modules, not {framework}'s",
                        "zh": "8 位适配器训练（bitsandbytes LLM.int8，load_in_8bit）只按 Hugging Face 技术栈的模块建模，不支持 "
                              "{framework}"},
    "r_cannot_update_quant": {"en": "{method} training cannot update '{quant}' quantized weights; use {qlora} or "
                                    "{lora}, or drop {drop}",
                              "zh": "{method} 训练无法更新 '{quant}' 量化的权重；请用 {qlora} 或 {lora}，或去掉 {drop}"},
    "r_one_gpu_engine": {"en": "{engine}'s multi-GPU layer split is not modelled yet; estimate one GPU with {ngl}",
                         "zh": "尚未对 {engine} 的多 GPU 分层建模；请用 {ngl} 估算单个 GPU"},
    "r_none_many_gpus": {"en": "'none' cannot use {n} GPUs; choose tp (inference) or fsdp (training)",
                         "zh": "'none' 无法使用 {n} 个 GPU；请选择 tp（推理）或 fsdp（训练）"},
    "r_parallel_not_for_task": {"en": "'{par}' is not available for {task} yet; use {use}",
                                "zh": "'{par}' 暂不支持 {task}；请用 {use}"},
    "r_pp_virtual": {"en": "model chunks per GPU are set for the interleaved schedules ({schedule}); zbv has two",
                     "zh": "每 GPU 的模型块数只用于交错调度（{schedule}）；zbv 固定为两个"},
    "r_interleaved": {"en": "Megatron's interleaved schedule needs the micro-batches ({accum}) to divide by {pp}",
                      "zh": "Megatron 的交错调度要求微批数（{accum}）能被 {pp} 整除"},
    "r_pp_inference": {"en": "inference pipeline parallelism is modelled for vLLM ({engine} {pp})",
                       "zh": "推理的流水线并行只对 vLLM 建模（{engine} {pp}）"},
    "r_static_cache": {"en": "static caches are a transformers option", "zh": "静态缓存是 transformers 的选项"},
    "r_offload_training": {"en": "CPU offload of optimizer states and parameters is for training; use {use}",
                           "zh": "优化器状态与参数的 CPU 卸载只用于训练；请用 {use}"},
    "r_training_parallel": {"en": "is modelled for training; vLLM inference splits with {tp}",
                            "zh": "只对训练建模；vLLM 推理用 {tp} 切分"},
    "r_tp_or_gpus": {"en": "inference splits the model across {gpus}; give one of them",
                     "zh": "推理已按 {gpus} 切分模型；请只给其中一个"},
    "r_gpus_divide": {"en": "{n} GPUs do not divide into tp {tp} × pp {pp} × sp {sp} groups",
                      "zh": "{n} 个 GPU 无法分成 tp {tp} × pp {pp} × sp {sp} 的组"},
    "r_megatron_moe": {"en": "this is Megatron-LM's MoE token dispatcher's: use {use}",
                       "zh": "这属于 Megatron-LM 的 MoE 词元分发器：请使用 {use}"},
    "r_moe_pad_needs_cf": {"en": "drop-and-pad pads each expert to its capacity: add {add}",
                           "zh": "丢弃并填充会把每个专家填充到其容量：请加上 {add}"},
    "r_pp_reshard_needs": {"en": "resharding after every micro-batch's forward is torchtitan's FSDP2 under pipeline "
                           "parallelism; add {add}",
                           "zh": "每个微批次前向后重新分片是 torchtitan 在流水线并行下的 FSDP2 行为；请加上 {add}"},
    "r_async_tp_needs": {"en": "async tensor parallelism fuses the all-gathers and reduce-scatters that sequence "
                                "parallelism puts around the tensor-parallel matmuls of compiled blocks (torchtitan "
                                "0.3.0 CompileConfig): add {add}",
                         "zh": "异步张量并行融合的是序列并行在编译块的张量并行矩阵乘前后插入的 all-gather 与 "
                               "reduce-scatter（torchtitan 0.3.0 的 CompileConfig）：请加上 {add}"},
    "r_sp_needs_tp": {"en": "Megatron sequence parallelism splits inside a TP group: add {add}",
                      "zh": "Megatron 序列并行在 TP 组内切分：请加上 {add}"},
    "r_cp_eager": {"en": "context parallelism runs SDPA/flash attention chunk by chunk; eager attention cannot: use "
                         "{use}",
                   "zh": "上下文并行按块运行 SDPA/flash 注意力，eager 注意力做不到：请用 {use}"},
    "r_nodes_gpus": {"en": "{n} GPUs do not split evenly over {nodes} nodes",
                     "zh": "{n} 个 GPU 无法平均分到 {nodes} 个节点"},
    "r_hybrid": {"en": "hybrid sharding (FSDP HYBRID_SHARD) shards inside a node and replicates across nodes: it needs "
                       "{par} and {nodes} > 1",
                 "zh": "混合分片（FSDP HYBRID_SHARD）在节点内分片、节点间复制：需要 {par} 且 {nodes} > 1"},
    "r_nodes_dp": {"en": "{dp} data-parallel ranks do not split evenly over {nodes} nodes",
                   "zh": "{dp} 个数据并行进程无法平均分到 {nodes} 个节点"},
    "r_nvme": {"en": "NVMe offload is DeepSpeed ZeRO-Infinity: it needs {zero} and {offload}",
               "zh": "NVMe 卸载是 DeepSpeed ZeRO-Infinity：需要 {zero} 和 {offload}"},
    "r_ckpt_modes_disagree": {"en": "'{mode}' and checkpoint_mode '{other}' disagree",
                              "zh": "'{mode}' 与 checkpoint_mode '{other}' 不一致"},
    "r_ckpt_off_on": {"en": "turns checkpointing off, but {on} or {every} turns it on: give one of them",
                      "zh": "关闭了检查点，但 {on} 或 {every} 又开启了它：请只给其中一个"},
    "r_training_option": {"en": "is a training option; add {add}", "zh": "是训练选项；请加上 {add}"},
    "r_reentrant_ckpt": {"en": "is how checkpointing runs; it goes with {on}", "zh": "说明检查点如何运行；需配合 {on}"},
    "r_dora": {"en": "DoRA is a LoRA variant: add {add} or qlora", "zh": "DoRA 是 LoRA 的变体：请加上 {add} 或 qlora"},
    "r_opt_bwd_accum": {"en": "stepping inside backward frees each gradient at once, so gradients cannot accumulate: "
                              "use {use} (torchtune refuses the same)",
                        "zh": "在反向传播中更新会立即释放每个梯度，因此梯度无法累积：请用 {use}（torchtune 同样拒绝）"},
    "allowed_positive": {"en": "a positive finite number", "zh": "一个有限的正数"},
    "r_kv_inference": {"en": "is about the KV cache of inference; training keeps no KV cache",
                       "zh": "针对推理的 KV 缓存；训练不保留 KV 缓存"},
    "r_seed_ignores": {"en": "the seed rule of thumb does not model it; use {use}",
                       "zh": "seed 经验公式不对它建模；请用 {use}"},
})
