"""The workload: what the user runs on the model (task, precision, batch, method, optimizer...).

Validation lives here, once, for the CLI and the Python API alike: every bad or contradictory option becomes a
:class:`VramscopeError` that names the option and what is allowed.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from .dtypes import DTYPES, normalize_dtype
from .engines.base import ENGINE_NAMES, ENGINES as _ENGINES, engine_named
from .errors import VramscopeError
from .frameworks import (FRAMEWORKS, PROFILES, TORCHTUNE_CE_CHUNKS, TORCHTUNE_FULL_SINGLE_OPTIMIZER,  # noqa: F401
                         TORCHTUNE_LORA_TARGETS, Framework)
from .memory.activations import ATTN_IMPLS
from .memory.kv_cache import KV_DTYPE_BYTES
from .memory.optimizer_states import OPTIMIZERS
from .memory.gguf_mix import GGUF_FTYPES
from .memory.weights import QUANTS, valid_quant
from .strategy import TRAINING_STRATEGIES, Strategy
from .units import parse_bool, parse_float, parse_int, shown

TASKS = ("inference", "finetune", "pretrain")
METHODS = ("full", "freeze", "lora", "qlora")
ESTIMATORS = ("analytic", "seed")
PRECISIONS = ("auto", "pure", "mixed", "fp32", "deepspeed")
#: gradient checkpointing: full (every op of a checkpointed layer recomputed) or selective (Megatron-LM's
#: --recompute-granularity selective: only the core attention — scores, softmax, attention·V — is recomputed)
CHECKPOINT_MODES = ("full", "selective")
FSDP_SHARDING = ("full", "hybrid")
SP_MODES = ("ring", "ulysses")
OFFLOAD_DEVICES = ("cpu", "nvme")
PARALLELISMS = ("auto",) + tuple(s.value for s in Strategy)
TRAINING_PARALLEL = TRAINING_STRATEGIES
OFFLOADS = ("none", "optimizer", "optimizer+params")
ENGINES = ENGINE_NAMES

MAX_BATCH = 1_000_000
#: llama.cpp --cache-type-k/-v (common/arg.cpp kv_cache_types)
LLAMA_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
MAX_SEQ = 100_000_000


def _choice(value: Any, field_name: str, allowed: tuple[str, ...]) -> str:
    v = value.strip().lower() if isinstance(value, str) else None
    if v not in allowed:
        raise VramscopeError("bad_choice", field=field_name, value=shown(value), allowed=", ".join(allowed))
    return v


def _text(value: Any, field_name: str, expected: str) -> str:
    """A free-text option (a dtype or quantization name): a str of a sane length, else a clear error."""
    if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
        raise VramscopeError("bad_choice", field=field_name, value=shown(value), allowed=expected)
    return value


def _flag(value: Any, field_name: str) -> Optional[bool]:
    """A yes/no option, parsed strictly (``"false"`` is False); None: not given."""
    return None if value is None else parse_bool(value, field_name)


_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def _names(value: Any, field_name: str, example: str) -> Optional[tuple[str, ...]]:
    """Module names as ``"q_proj,v_proj"`` or a list of them; None: not given; an empty list is an error."""
    if value is None:
        return None
    if isinstance(value, str):
        items: Any = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise VramscopeError("bad_type", field=field_name, value=shown(value), kind=type(value).__name__,
                             expected=f"comma-separated module names such as {example}")
    names = tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
    if not names:
        raise VramscopeError("empty_list", field=field_name, example=example)
    for n in names:
        if not _MODULE_NAME.match(n):
            raise VramscopeError("bad_choice", field=field_name, value=shown(n),
                                 allowed=f"module names (letters, digits, _ . -) such as {example}")
    return names


def workload_keywords() -> tuple[str, ...]:
    """Every keyword :func:`make_workload` takes (the workload options of the Python API)."""
    code = make_workload.__code__
    return code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]


def check_keywords(given: Any, known: Optional[tuple[str, ...]] = None, function: str = "vramscope.estimate") -> None:
    """Refuse keywords that are not options, with the closest option named (``unknown option 'x'; did you
    mean 'y'?``). The one place the Python API checks its keyword names; ``known`` defaults to the workload's."""
    known = workload_keywords() if known is None else known
    for name in given:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            if close:
                raise VramscopeError("unknown_option", name=shown(name), suggestion=close[0])
            raise VramscopeError("unknown_option_nosuggest", name=shown(name), function=function)


#: Workload fields that are not part of its JSON (how it was asked for, not what it is)
_NOT_IN_DICT = ("seq_default", "options")


@dataclass(frozen=True)
class Workload:
    task: str = "inference"
    method: str = "full"
    estimator: str = "analytic"
    engine: str = "transformers"
    dtype: Optional[str] = None  # None: the checkpoint's own dtype (bf16 when unknown)
    quant: str = "none"
    batch: int = 1
    seq: int = 2048
    kv_dtype: Optional[str] = None  # None: the compute dtype
    attn: str = "sdpa"
    precision: str = "auto"
    optimizer: str = "adamw"
    grad_checkpointing: bool = False
    grad_accum: int = 1
    lora_rank: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("all-linear",)
    frozen_layers: int = 0
    train_modules: tuple[str, ...] = ()  # --method freeze: train only these modules (q_proj, o_proj, ...)
    activations_per_sample: Optional[int] = None  # seed estimator's A
    num_gpus: int = 1
    parallelism: str = "none"  # none | tp (inference) | fsdp (training)
    offload: str = "none"  # none | optimizer | optimizer+params (training: ZeRO-Offload / FSDP CPU offload)
    framework: str = "hf"  # training loop: hf (Trainer / TRL) | pytorch (plain loop keeping the model outputs)
    pp: int = 1  # pipeline-parallel stages (training)
    # training options beyond the basics (issue #4)
    lora_alpha: Optional[float] = None  # recorded only: alpha scales the update, it does not change memory
    dora: bool = False  # peft use_dora=True
    checkpoint_mode: str = "full"
    checkpoint_every: int = 1  # torchtune ac_mode=selective, ac_option=N: every N-th layer checkpointed
    activation_offload: bool = False  # saved activations to pinned host memory (torchtune / TRL OffloadActivations)
    ce_chunks: int = 1  # chunked cross-entropy (torchtune CEWithChunkedOutputLoss, 8 chunks); 1 = one call
    compile: bool = False  # torch.compile: modelled for the loss head (fused cross-entropy), layers as eager
    packing: bool = False  # sequences packed to --seq: every micro-batch is full
    optimizer_in_backward: bool = False  # each parameter stepped (and its gradient freed) as its gradient lands
    # multi-GPU (issue #6); --gpus is the world size, data parallel = gpus / (tp · pp · sp)
    tp: int = 1  # tensor-parallel degree in training (inference: --gpus with --parallelism tp)
    sequence_parallel: bool = False  # Megatron-LM sequence parallelism inside the TP group
    sp: int = 1  # context / sequence parallel degree (ring attention or DeepSpeed-Ulysses)
    sp_mode: str = "ring"
    ep: int = 1  # expert parallel degree (MoE)
    nodes: int = 1
    fsdp_sharding: str = "full"  # full | hybrid (shard inside a node, replicate across nodes)
    fsdp_version: int = 2
    zero_prefetch: int = 50_000_000  # DeepSpeed stage3_prefetch_bucket_size (elements)
    zero_max_live: int = 1_000_000_000  # stage3_max_live_parameters
    zero_persistence: int = 100_000  # stage3_param_persistence_threshold
    reduce_bucket: int = 500_000_000  # reduce_bucket_size (elements)
    offload_device: str = "cpu"  # cpu | nvme (ZeRO-Infinity)
    pp_schedule: str = "1f1b"
    cache: str = "dynamic"  # transformers generate(): dynamic | static (cache_implementation)
    # vLLM (vllm/config: CacheConfig, SchedulerConfig, ModelConfig)
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None  # None: the model's max_position_embeddings
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    enforce_eager: bool = False
    # llama.cpp (common/arg.cpp defaults): -ngl, -ctk/-ctv, -fa, -ub, -np; the context is --seq / --ctx-size
    n_gpu_layers: Optional[int] = None  # None: every layer and the output
    cache_type_k: Optional[str] = None  # None: --kv-dtype, else f16
    cache_type_v: Optional[str] = None
    flash_attn: bool = False
    ubatch: int = 512
    seq_default: bool = False  # --seq not given: the task's default (capped to the model's context when shorter)
    #: the options make_workload was given (None: built by hand); plan rebuilds its suggestions from them
    options: Optional[dict] = field(default=None, compare=False, repr=False)

    @property
    def training(self) -> bool:
        return self.task != "inference"

    @property
    def strategy(self) -> Strategy:
        """The data-parallel strategy (what it shards), read from ``parallelism``."""
        return Strategy(self.parallelism)

    @property
    def profile(self) -> Framework:
        """The training framework's profile (its loop, modules and recipe defaults)."""
        return PROFILES[self.framework]

    @property
    def tp_degree(self) -> int:
        """Tensor-parallel ranks: --tp in training, --gpus under --parallelism tp."""
        return self.num_gpus if self.strategy.is_tensor_parallel else self.tp

    @property
    def dp(self) -> int:
        """Data-parallel ranks: the world size over the model-parallel degrees."""
        if self.strategy.is_tensor_parallel:
            return 1
        return max(1, self.num_gpus // (self.tp * self.pp * self.sp))

    @property
    def checkpointed_layers_every(self) -> int:
        return self.checkpoint_every if self.grad_checkpointing else 0

    def to_dict(self) -> dict[str, Any]:
        # field by field rather than dataclasses.asdict, which deep-copies the given options and every value on
        # fit's hot path (it was two thirds of a fit answer); the values are scalars, tuples and small dicts
        d = {f.name: copy.deepcopy(v) if isinstance(v := getattr(self, f.name), (dict, list)) else v
             for f in fields(self) if f.name not in _NOT_IN_DICT}
        d["lora_targets"] = list(self.lora_targets)
        d["train_modules"] = list(self.train_modules)
        return d


def make_workload(task: str = "inference", method: Optional[str] = None, estimator: str = "analytic",
                  engine: str = "transformers", dtype: Optional[str] = None, quant: Optional[str] = None,
                  batch: Any = 1, seq: Any = None, kv_dtype: Optional[str] = None, attn: str = "sdpa",
                  precision: str = "auto", optimizer: Optional[str] = None, grad_checkpointing: Any = None,
                  grad_accum: Any = 1, lora_rank: Any = None, lora_targets: Any = None, frozen_layers: Any = None,
                  lora_dropout: Any = None, train_modules: Any = None,
                  activations_per_sample: Any = None, num_gpus: Any = 1, parallelism: str = "auto",
                  offload: str = "none", gpu_memory_utilization: Any = None, max_model_len: Any = None,
                  max_num_seqs: Any = None, max_num_batched_tokens: Any = None, enforce_eager: bool = False,
                  n_gpu_layers: Any = None, cache_type_k: Optional[str] = None, cache_type_v: Optional[str] = None,
                  flash_attn: bool = False, ubatch: Any = None, cache: str = "dynamic", pp: Any = 1,
                  pp_schedule: str = "1f1b", framework: str = "hf", lora_alpha: Any = None, dora: bool = False,
                  checkpoint_mode: Optional[str] = None, checkpoint_every: Any = None,
                  activation_offload: Optional[bool] = None, ce_chunks: Any = None, packing: bool = False,
                  optimizer_in_backward: Optional[bool] = None, compile: bool = False, tp: Any = 1, sequence_parallel: bool = False, sp: Any = 1,
                  sp_mode: str = "ring", ep: Any = 1, nodes: Any = 1, fsdp_sharding: str = "full",
                  fsdp_version: Any = 2, zero_prefetch: Any = None, zero_max_live: Any = None,
                  zero_persistence: Any = None, reduce_bucket: Any = None, offload_device: str = "cpu",
                  **unknown: Any) -> Workload:
    """Validate user options into a :class:`Workload` (errors name the option and the allowed values).

    None means "not given" for every option that defaults to None. Yes/no options are parsed strictly
    (True/False, 1/0, "true"/"false", "yes"/"no", "on"/"off"); ``grad_checkpointing`` also takes a mode
    ("full", "selective"). Options of another method, estimator or engine are refused, never ignored.
    ``lora_targets`` and ``train_modules`` take "q_proj,v_proj" or a list; an empty list is an error (leave the
    option out for the default, all-linear). An unknown keyword names the closest option.
    """
    given = {k: v for k, v in locals().items() if k != "unknown" and v is not None}
    check_keywords(unknown, function="vramscope.make_workload")
    task = _choice(task, "--task", TASKS)
    estimator = _choice(estimator, "--estimator", ESTIMATORS)
    engine = _choice(engine_named(engine), "--engine", ENGINES)
    runs = _ENGINES[engine]
    framework = _choice(framework, "--framework", FRAMEWORKS)
    profile = PROFILES[framework]  # its recipes' defaults fill what the user leaves out, before the checks below
    if isinstance(grad_checkpointing, str) and grad_checkpointing.strip().lower() in CHECKPOINT_MODES:
        mode_given = grad_checkpointing.strip().lower()  # grad_checkpointing="selective", as on the command line
        if checkpoint_mode is not None and _choice(checkpoint_mode, "--grad-checkpointing",
                                                   CHECKPOINT_MODES) != mode_given:
            raise VramscopeError("conflict", field="--grad-checkpointing",
                                 reason=f"'{mode_given}' and checkpoint_mode '{shown(checkpoint_mode)}' disagree")
        grad_checkpointing, checkpoint_mode = True, mode_given
    grad_checkpointing = _flag(grad_checkpointing, "--grad-checkpointing")
    if grad_checkpointing is False and (checkpoint_mode is not None or checkpoint_every is not None):
        raise VramscopeError("conflict", field="--no-grad-checkpointing",
                             reason="turns checkpointing off, but --grad-checkpointing MODE or --checkpoint-every "
                                    "turns it on: give one of them")
    activation_offload = _flag(activation_offload, "--activation-offload")
    optimizer_in_backward = _flag(optimizer_in_backward, "--optimizer-in-backward")
    dora, packing, compile = (bool(_flag(dora, "--dora")), bool(_flag(packing, "--packing")),
                              bool(_flag(compile, "--compile")))
    sequence_parallel = bool(_flag(sequence_parallel, "--sequence-parallel"))
    enforce_eager, flash_attn = bool(_flag(enforce_eager, "--enforce-eager")), bool(_flag(flash_attn, "--flash-attn"))
    if activations_per_sample is not None and estimator != "seed":
        raise VramscopeError("conflict", field="--activations-per-sample",
                             reason="is the seed estimator's A: add --estimator seed")
    if not runs.trains and task != "inference":
        raise VramscopeError("conflict", field="--engine", reason=f"{engine} is an inference engine; training "
                                                                  "estimates follow transformers / PyTorch")
    engine_opts = _engine_options(engine, dict(
        gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len, max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens, enforce_eager=enforce_eager, n_gpu_layers=n_gpu_layers,
        cache_type_k=cache_type_k, cache_type_v=cache_type_v, flash_attn=flash_attn, ubatch=ubatch))
    if method is not None:
        method = _choice(method, "--method", METHODS)
        if task == "inference" and method != "full":
            raise VramscopeError("conflict", field="--method",
                                 reason=f"'{method}' is a training method but --task is inference; "
                                        "use --task finetune (or drop --method)")
        if task == "pretrain" and method in ("lora", "qlora", "freeze"):
            raise VramscopeError("conflict", field="--method",
                                 reason=f"'{method}' is a fine-tuning method; use --task finetune")
    method = method or "full"
    lora = method in ("lora", "qlora")
    for name, value in (("--lora-rank", lora_rank), ("--lora-targets", lora_targets),
                        ("--lora-dropout", lora_dropout), ("--lora-alpha", lora_alpha)):
        if value is not None and not lora:
            raise VramscopeError("conflict", field=name, reason="is a LoRA option: add "
                                 + ("--task finetune --method lora" if task == "inference" else "--method lora")
                                 + " (or qlora)")
    if frozen_layers is not None and method != "freeze":
        raise VramscopeError("conflict", field="--freeze-layers", reason="is for --method freeze")
    if frozen_layers is not None and train_modules is not None:
        raise VramscopeError("conflict", field="--freeze-layers",
                             reason="--method freeze trains either all but the first N layers or --train-modules: "
                                    "give one of them")
    if dtype is not None:
        dtype = normalize_dtype(_text(dtype, "--dtype", ", ".join(DTYPES)), "--dtype", DTYPES)
    q = "none" if quant is None else _text(quant, "--quant", "a quantization such as int8, nf4 or Q4_K_M").strip().lower()
    if q.upper() in GGUF_FTYPES:
        if not runs.gguf_quants:
            raise VramscopeError("conflict", field="--quant",
                                 reason=f"'{quant}' is a GGUF type, run by llama.cpp: add --engine llama.cpp")
        q = q.upper()
    elif not valid_quant(q):
        raise VramscopeError("bad_choice", field="--quant", value=shown(quant),
                             allowed=", ".join(QUANTS) + " (GPTQ/AWQ with a group suffix: -g32, -g64, -g128, -g-1), "
                                     "or with --engine llama.cpp a GGUF type (Q4_K_M, Q8_0, ...)")
    elif runs.gguf_quants and q != "none":
        raise VramscopeError("conflict", field="--quant",
                             reason=f"llama.cpp runs GGUF types (Q4_K_M, Q5_K_M, Q8_0, ...), not '{quant}'")
    if method == "qlora":
        if q == "none":
            q = profile.qlora_quant
        elif q not in ("int4", "nf4", "fp4", "nf4-dq", "fp4-dq"):
            raise VramscopeError("conflict", field="--quant",
                                 reason=f"QLoRA quantizes the base to 4-bit (nf4, fp4, nf4-dq, fp4-dq), not '{quant}'")
    elif task != "inference" and q != "none" and method != "lora":
        raise VramscopeError("conflict", field="--quant",
                             reason=f"{method} training cannot update '{q}' quantized weights; "
                                    "use --method qlora or --method lora, or drop --quant")
    if kv_dtype is not None:
        kv_dtype = _choice(kv_dtype, "--kv-dtype", tuple(KV_DTYPE_BYTES))
    targets = _names(lora_targets, "--lora-targets", "q_proj,v_proj or all-linear") or profile.lora_targets
    n_gpus = parse_int(num_gpus, "--gpus", 1, 100_000)
    par = _choice(parallelism, "--parallelism", PARALLELISMS)
    if par == "auto":
        par = "none" if n_gpus == 1 else ("tp" if task == "inference" else "fsdp")
    if not runs.multi_gpu and n_gpus > 1:
        raise VramscopeError("conflict", field="--gpus", reason="llama.cpp's multi-GPU layer split is not modelled "
                                                                "yet; estimate one GPU with --n-gpu-layers")
    model_parallel = parse_int(tp, "--tp", 1, 1024) * parse_int(pp, "--pp", 1, 1024) * parse_int(sp, "--sp", 1, 1024)
    if par == "none" and n_gpus > 1 and (task == "inference" or n_gpus > model_parallel):
        raise VramscopeError("conflict", field="--parallelism",
                             reason=f"'none' cannot use {n_gpus} GPUs; choose tp (inference) or fsdp (training)")
    if par in TRAINING_PARALLEL and task == "inference":
        raise VramscopeError("conflict", field="--parallelism",
                             reason=f"'{par}' is not available for --task {task} yet; use "
                                    f"{'tp' if task == 'inference' else 'fsdp'}")
    fw = _choice(framework, "--framework", FRAMEWORKS)
    # torchtune's full_finetune_single_device configs (llama3_1/8B, llama3_2/3B, llama2/7B_full_low_memory):
    # bitsandbytes PagedAdamW8bit stepped inside backward (optimizer_in_bwd: True)
    full_single = (profile.full_single_optimizer is not None and task != "inference" and (method or "full") == "full"
                   and parse_int(num_gpus, "--gpus", 1, 100_000) == 1)
    if full_single and optimizer_in_backward is None and parse_int(grad_accum, "--grad-accum", 1,
                                                                              1_000_000) == 1:
        optimizer_in_backward = True
    training_opts = _training_options(task, method, fw, grad_checkpointing, checkpoint_mode, checkpoint_every,
                                      activation_offload, ce_chunks, packing, bool(optimizer_in_backward), dora,
                                      lora_alpha, grad_accum, lora_targets, bool(compile))
    pp_n = parse_int(pp, "--pp", 1, 1024)
    pp_sched = _choice(pp_schedule, "--pp-schedule", ("1f1b", "gpipe", "interleaved"))
    if pp_sched == "interleaved" and parse_int(grad_accum, "--grad-accum", 1, 1_000_000) % max(1, parse_int(
            pp, "--pp", 1, 1024)):
        raise VramscopeError("conflict", field="--pp-schedule", reason="Megatron's interleaved schedule needs the "
                                                                       "micro-batches (--grad-accum) to divide by --pp")
    if pp_n > 1 and task == "inference" and not runs.pipeline_inference:
        raise VramscopeError("conflict", field="--pp", reason="inference pipeline parallelism is modelled for vLLM "
                                                              "(--engine vllm --pipeline-parallel-size N)")
    par, n_gpus, dist = _distributed(task, par, n_gpus, pp_n, tp, sequence_parallel, sp, sp_mode, ep, nodes,
                                     fsdp_sharding, fsdp_version, zero_prefetch, zero_max_live, zero_persistence,
                                     reduce_bucket, offload_device, offload, attn)
    cache = _choice(cache, "--cache", ("dynamic", "static"))
    if cache == "static" and not runs.static_cache:
        raise VramscopeError("conflict", field="--cache", reason="static caches are a transformers option")
    off = _choice(offload, "--offload", OFFLOADS)
    if off != "none" and task == "inference":
        raise VramscopeError("conflict", field="--offload",
                             reason="CPU offload of optimizer states and parameters is for training; use --task finetune")
    _ignored(task, estimator, engine, optimizer, precision, grad_accum, fw, kv_dtype, cache, attn, n_gpus, off,
             pp_n, dist, (zero_prefetch, zero_max_live, zero_persistence, reduce_bucket))
    default_seq = 2048 if task != "inference" else 4096
    apsa = None if activations_per_sample is None else parse_int(activations_per_sample,
                                                                 "--activations-per-sample", 1, 10**13)
    return Workload(
        task=task, method=method, estimator=estimator, engine=engine, dtype=dtype, quant=q,
        batch=parse_int(batch, "--batch", 1, MAX_BATCH),
        seq=parse_int(default_seq if seq is None else seq, "--seq", 1, MAX_SEQ), seq_default=seq is None,
        kv_dtype=kv_dtype, attn=_choice(attn, "--attn", ATTN_IMPLS),
        precision=_choice(precision, "--precision", PRECISIONS),
        optimizer=_choice(optimizer, "--optimizer", OPTIMIZERS) if optimizer is not None else (
            profile.full_single_optimizer if full_single else profile.optimizer),

        grad_accum=parse_int(grad_accum, "--grad-accum", 1, 1_000_000),
        lora_rank=16 if lora_rank is None else parse_int(lora_rank, "--lora-rank", 1, 65536),
        lora_targets=targets,
        frozen_layers=0 if frozen_layers is None else parse_int(frozen_layers, "--freeze-layers", 0, 100_000),
        lora_dropout=0.0 if lora_dropout is None else parse_float(lora_dropout, "--lora-dropout", 0.0, 0.99),
        train_modules=_modules(train_modules, method),
        activations_per_sample=apsa, num_gpus=n_gpus, parallelism=par if n_gpus > 1 or par in TRAINING_PARALLEL else "none", offload=off,
        cache=cache, pp=pp_n, pp_schedule=pp_sched, framework=fw, **engine_opts, **training_opts, **dist,
        options=given,
    )


def _ignored(task: str, estimator: str, engine: str, optimizer: Any, precision: Any, grad_accum: Any, fw: str,
             kv_dtype: Optional[str], cache: str, attn: Any, n_gpus: int, offload: str, pp: int, dist: dict,
             zero_knobs: tuple) -> None:
    """Options the chosen task or estimator would ignore are refused: no option is silently dropped."""
    if task == "inference":
        for name, given in (("--optimizer", optimizer is not None),
                            ("--precision", _choice(precision, "--precision", PRECISIONS) != "auto"),
                            ("--grad-accum", parse_int(grad_accum, "--grad-accum", 1, 1_000_000) > 1),
                            ("--framework", fw != "hf"),
                            ("--zero-prefetch-bucket / --zero-max-live-params / --zero-param-persistence / "
                             "--reduce-bucket", any(k is not None for k in zero_knobs))):
            if given:
                raise VramscopeError("conflict", field=name, reason="is a training option; add --task finetune")
    elif kv_dtype is not None or cache != "dynamic":
        raise VramscopeError("conflict", field="--kv-dtype" if kv_dtype is not None else "--cache",
                             reason="is about the KV cache of inference; training keeps no KV cache")
    if estimator == "seed":
        seed_ignores = (("--engine", engine != "transformers"), ("--kv-dtype", kv_dtype is not None),
                        ("--cache", cache != "dynamic"), ("--attn", str(attn).strip().lower() != "sdpa"),
                        ("--gpus", n_gpus > 1), ("--offload", offload != "none"), ("--pp", pp > 1),
                        ("--tp", dist["tp"] > 1), ("--sp", dist["sp"] > 1), ("--ep", dist["ep"] > 1))
        for name, given in seed_ignores:
            if given:
                raise VramscopeError("conflict", field=name, reason="the seed rule of thumb does not model it; "
                                                                    "use --estimator analytic")


def _engine_options(engine: str, given: dict[str, Any]) -> dict[str, Any]:
    """The engines' own options (``Engine.options``: field, flag, reader): another engine's, when given, is
    refused; the workload's engine's are read, its switches always set."""
    for other in _ENGINES.values():
        named = [o.flag for o in other.options if o.given(given[o.field])] if other.name != engine else []
        if named:
            raise VramscopeError("conflict", field=named[0], reason=f"is a {other.name} option; add --engine "
                                                                   f"{other.name}")
    out: dict[str, Any] = {}
    for e in _ENGINES.values():
        for o in e.options:
            if o.switch:
                out[o.field] = bool(given[o.field])
            elif given[o.field] is not None and o.read is not None:
                out[o.field] = o.read(given[o.field], o.flag)
    return out


def _modules(value: Any, method: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if method != "freeze":
        raise VramscopeError("conflict", field="--train-modules", reason="is for --method freeze")
    return _names(value, "--train-modules", "o_proj,down_proj") or ()


def _training_options(task: str, method: str, fw: str, grad_checkpointing: Any, checkpoint_mode: Optional[str],
                      checkpoint_every: Any, activation_offload: Optional[bool], ce_chunks: Any, packing: bool,
                      optimizer_in_backward: bool, dora: bool, lora_alpha: Any, grad_accum: Any,
                      lora_targets: Any, compile: bool = False) -> dict[str, Any]:
    """Training options, with the framework profile's defaults where the user gave none."""
    training = task != "inference"
    given = {"--grad-checkpointing": grad_checkpointing or checkpoint_mode, "--checkpoint-every": checkpoint_every,
             "--activation-offload": activation_offload, "--chunked-ce": ce_chunks, "--packing": packing or None,
             "--optimizer-in-backward": optimizer_in_backward or None, "--dora": dora or None,
             "--compile": compile or None,
             "--lora-alpha": lora_alpha}
    if not training:
        for name, value in given.items():
            if value:
                raise VramscopeError("conflict", field=name, reason="is a training option; add --task finetune")
    profile = PROFILES[fw]
    mode = None if checkpoint_mode is None else _choice(checkpoint_mode, "--grad-checkpointing", CHECKPOINT_MODES)
    if grad_checkpointing is None and mode is None and checkpoint_every is None:
        ckpt = profile.grad_checkpointing and training  # torchtune's recipes: enable_activation_checkpointing
    else:
        ckpt = bool(grad_checkpointing) or mode is not None or checkpoint_every is not None
    every = 1 if checkpoint_every is None else parse_int(checkpoint_every, "--checkpoint-every", 1, 100_000)
    chunks = (profile.ce_chunks if training else 1) if ce_chunks is None else \
        parse_int(ce_chunks, "--chunked-ce", 1, 1_000_000)
    if dora and method not in ("lora", "qlora"):
        raise VramscopeError("conflict", field="--dora", reason="DoRA is a LoRA variant: add --method lora or qlora")
    if optimizer_in_backward and parse_int(grad_accum, "--grad-accum", 1, 1_000_000) > 1:
        raise VramscopeError("conflict", field="--optimizer-in-backward",
                             reason="stepping inside backward frees each gradient at once, so gradients cannot "
                                    "accumulate: use --grad-accum 1 (torchtune refuses the same)")
    alpha = None
    if lora_alpha is not None:
        alpha = parse_float(lora_alpha, "--lora-alpha", 0.0, 1e9, "a positive finite number")
        if not alpha > 0:
            raise VramscopeError("bad_choice", field="--lora-alpha", value=shown(lora_alpha),
                                 allowed="a positive finite number")
    return {"grad_checkpointing": ckpt, "checkpoint_mode": mode or "full", "checkpoint_every": every, "compile": compile,
            "activation_offload": bool(activation_offload), "ce_chunks": chunks, "packing": bool(packing),
            "optimizer_in_backward": bool(optimizer_in_backward), "dora": bool(dora), "lora_alpha": alpha}


def _distributed(task: str, par: str, n_gpus: int, pp: int, tp: Any, sequence_parallel: bool, sp: Any,
                 sp_mode: str, ep: Any, nodes: Any, sharding: str, version: Any, prefetch: Any, max_live: Any,
                 persistence: Any, bucket: Any, offload_device: str, offload: str, attn: str
                 ) -> tuple[str, int, dict[str, Any]]:
    """Multi-GPU degrees: --gpus is the world size; data parallel = gpus / (tp · pp · sp)."""
    tp_n = parse_int(tp, "--tp", 1, 1024)
    sp_n = parse_int(sp, "--sp", 1, 1024)
    ep_n = parse_int(ep, "--ep", 1, 1024)
    nodes_n = parse_int(nodes, "--nodes", 1, 100_000)
    training = task != "inference"
    if not training:
        for name, v in (("--sp", sp_n > 1), ("--ep", ep_n > 1), ("--sequence-parallel", sequence_parallel)):
            if v:
                raise VramscopeError("conflict", field=name, reason="is modelled for training; vLLM inference "
                                                                    "splits with --tensor-parallel-size")
        if tp_n > 1:
            if n_gpus not in (1, tp_n):
                raise VramscopeError("conflict", field="--tp", reason=f"inference splits the model across --gpus "
                                                                      f"{n_gpus}; give one of them")
            n_gpus, par = tp_n, "tp"
            tp_n = 1
    elif par == "tp":  # --parallelism tp in training: every GPU is a tensor-parallel rank
        tp_n, par = n_gpus, "none"
    model_parallel = tp_n * pp * sp_n
    if training and n_gpus == 1 and model_parallel > 1:
        n_gpus = model_parallel  # --pp 4 alone means four GPUs
    if training and n_gpus % model_parallel:
        raise VramscopeError("conflict", field="--gpus",
                             reason=f"{n_gpus} GPUs do not divide into tp {tp_n} × pp {pp} × sp {sp_n} groups")
    dp = n_gpus // model_parallel if training else 1
    if training and dp > 1 and par == "none":
        par = "fsdp"
    if training and dp == 1 and par == "ddp":
        par = "none"  # ZeRO and FSDP on one GPU still run (their CPU offload is the point); DDP does nothing
    if sequence_parallel and tp_n == 1:
        raise VramscopeError("conflict", field="--sequence-parallel", reason="Megatron sequence parallelism "
                                                                              "splits inside a TP group: add --tp N")
    if sp_n > 1 and attn == "eager":
        raise VramscopeError("conflict", field="--sp", reason="context parallelism runs SDPA/flash attention "
                                                              "chunk by chunk; eager attention cannot: use --attn sdpa")
    if n_gpus % nodes_n:
        raise VramscopeError("conflict", field="--nodes", reason=f"{n_gpus} GPUs do not split evenly over "
                                                                f"{nodes_n} nodes")
    shard = _choice(sharding, "--fsdp-sharding", FSDP_SHARDING)
    if shard == "hybrid" and (par != "fsdp" or nodes_n == 1):
        raise VramscopeError("conflict", field="--fsdp-sharding",
                             reason="hybrid sharding (FSDP HYBRID_SHARD) shards inside a node and replicates across "
                                    "nodes: it needs --parallelism fsdp and --nodes > 1")
    if shard == "hybrid" and dp % nodes_n:
        raise VramscopeError("conflict", field="--nodes", reason=f"{dp} data-parallel ranks do not split evenly "
                                                                f"over {nodes_n} nodes")
    version_n = parse_int(version, "--fsdp-version", 1, 2)
    dev = _choice(offload_device, "--offload-device", OFFLOAD_DEVICES)
    if dev == "nvme" and (offload == "none" or not Strategy(par).is_zero):
        raise VramscopeError("conflict", field="--offload-device",
                             reason="NVMe offload is DeepSpeed ZeRO-Infinity: it needs --zero 1-3 and --offload")
    knobs = {}
    for key, value, name, default in (("zero_prefetch", prefetch, "--zero-prefetch-bucket", 50_000_000),
                                      ("zero_max_live", max_live, "--zero-max-live-params", 1_000_000_000),
                                      ("zero_persistence", persistence, "--zero-param-persistence", 100_000),
                                      ("reduce_bucket", bucket, "--reduce-bucket", 500_000_000)):
        knobs[key] = default if value is None else parse_int(value, name, 0, 10**13)
    return par, n_gpus, {"tp": tp_n, "sequence_parallel": bool(sequence_parallel), "sp": sp_n,
                         "sp_mode": _choice(sp_mode, "--sp-mode", SP_MODES), "ep": ep_n, "nodes": nodes_n,
                         "fsdp_sharding": shard, "fsdp_version": version_n, "offload_device": dev, **knobs}
