"""The workload: what the user runs on the model (task, precision, batch, method, optimizer...).

Validation lives here, once, for the CLI and the Python API alike: every bad or contradictory option becomes a
:class:`VramscopeError` that names the option and what is allowed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from .dtypes import DTYPES, normalize_dtype
from .errors import VramscopeError
from .memory.activations import ATTN_IMPLS
from .memory.kv_cache import KV_DTYPE_BYTES
from .memory.optimizer_states import OPTIMIZERS
from .memory.gguf_mix import GGUF_FTYPES
from .memory.weights import QUANTS, valid_quant
from .units import parse_int

TASKS = ("inference", "finetune", "pretrain")
METHODS = ("full", "freeze", "lora", "qlora")
ESTIMATORS = ("analytic", "seed")
PRECISIONS = ("auto", "pure", "mixed", "fp32", "deepspeed")
#: training loops whose memory behaviour differs: the HF Trainer drops the model outputs before backward,
#: a plain PyTorch loop (``out = model(...); out.loss.backward()``) keeps out.logits alive through it
FRAMEWORKS = ("hf", "pytorch")
PARALLELISMS = ("auto", "none", "tp", "fsdp", "ddp", "zero1", "zero2", "zero3")
TRAINING_PARALLEL = ("fsdp", "ddp", "zero1", "zero2", "zero3")
OFFLOADS = ("none", "optimizer", "optimizer+params")
ENGINES = ("transformers", "vllm", "llama.cpp")
_ENGINE_ALIASES = {"llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "ollama": "llama.cpp", "hf": "transformers"}

MAX_BATCH = 1_000_000
#: llama.cpp --cache-type-k/-v (common/arg.cpp kv_cache_types)
LLAMA_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
MAX_SEQ = 100_000_000


def _choice(value: Any, field_name: str, allowed: tuple[str, ...]) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise VramscopeError("bad_choice", field=field_name, value=value, allowed=", ".join(allowed))
    return v


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
    pp: int = 1  # pipeline-parallel stages (training), on top of --gpus data-parallel ranks
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

    @property
    def training(self) -> bool:
        return self.task != "inference"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        d["train_modules"] = list(self.train_modules)
        return d


def make_workload(task: str = "inference", method: Optional[str] = None, estimator: str = "analytic",
                  engine: str = "transformers", dtype: Optional[str] = None, quant: Optional[str] = None,
                  batch: Any = 1, seq: Any = None, kv_dtype: Optional[str] = None, attn: str = "sdpa",
                  precision: str = "auto", optimizer: str = "adamw", grad_checkpointing: bool = False,
                  grad_accum: Any = 1, lora_rank: Any = 16, lora_targets: Any = None, frozen_layers: Any = 0,
                  lora_dropout: Any = 0.0, train_modules: Any = None,
                  activations_per_sample: Any = None, num_gpus: Any = 1, parallelism: str = "auto",
                  offload: str = "none", gpu_memory_utilization: Any = None, max_model_len: Any = None,
                  max_num_seqs: Any = None, max_num_batched_tokens: Any = None, enforce_eager: bool = False,
                  n_gpu_layers: Any = None, cache_type_k: Optional[str] = None, cache_type_v: Optional[str] = None,
                  flash_attn: bool = False, ubatch: Any = None, cache: str = "dynamic", pp: Any = 1,
                  pp_schedule: str = "1f1b", framework: str = "hf") -> Workload:
    """Validate user options into a :class:`Workload` (errors name the option and the allowed values)."""
    task = _choice(task, "--task", TASKS)
    estimator = _choice(estimator, "--estimator", ESTIMATORS)
    engine = _choice(_ENGINE_ALIASES.get(str(engine).strip().lower(), engine), "--engine", ENGINES)
    if engine != "transformers" and task != "inference":
        raise VramscopeError("conflict", field="--engine", reason=f"{engine} is an inference engine; training "
                                                                  "estimates follow transformers / PyTorch")
    engine_opts = _engine_options(engine, gpu_memory_utilization, max_model_len, max_num_seqs,
                                  max_num_batched_tokens, enforce_eager, n_gpu_layers, cache_type_k, cache_type_v,
                                  flash_attn, ubatch)
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
    if dtype is not None:
        dtype = normalize_dtype(dtype, "--dtype", DTYPES)
    q = "none" if quant is None else str(quant).strip().lower()
    if q.upper() in GGUF_FTYPES:
        if engine != "llama.cpp":
            raise VramscopeError("conflict", field="--quant",
                                 reason=f"'{quant}' is a GGUF type, run by llama.cpp: add --engine llama.cpp")
        q = q.upper()
    elif not valid_quant(q):
        raise VramscopeError("bad_choice", field="--quant", value=quant,
                             allowed=", ".join(QUANTS) + " (GPTQ/AWQ with a group suffix: -g32, -g64, -g128, -g-1), "
                                     "or with --engine llama.cpp a GGUF type (Q4_K_M, Q8_0, ...)")
    elif engine == "llama.cpp" and q != "none":
        raise VramscopeError("conflict", field="--quant",
                             reason=f"llama.cpp runs GGUF types (Q4_K_M, Q5_K_M, Q8_0, ...), not '{quant}'")
    if method == "qlora":
        if q == "none":
            q = "nf4"
        elif q not in ("int4", "nf4", "fp4", "nf4-dq", "fp4-dq"):
            raise VramscopeError("conflict", field="--quant",
                                 reason=f"QLoRA quantizes the base to 4-bit (nf4, fp4, nf4-dq, fp4-dq), not '{quant}'")
    elif task != "inference" and q != "none" and method != "lora":
        raise VramscopeError("conflict", field="--quant",
                             reason=f"{method} training cannot update '{q}' quantized weights; "
                                    "use --method qlora or --method lora, or drop --quant")
    if kv_dtype is not None:
        kv_dtype = _choice(kv_dtype, "--kv-dtype", tuple(KV_DTYPE_BYTES))
    targets = tuple(lora_targets) if lora_targets else ("all-linear",)
    if isinstance(lora_targets, str):
        targets = tuple(t.strip() for t in lora_targets.split(",") if t.strip())
    n_gpus = parse_int(num_gpus, "--gpus", 1, 100_000)
    par = _choice(parallelism, "--parallelism", PARALLELISMS)
    if par == "auto":
        par = "none" if n_gpus == 1 else ("tp" if task == "inference" else "fsdp")
    if engine == "llama.cpp" and n_gpus > 1:
        raise VramscopeError("conflict", field="--gpus", reason="llama.cpp's multi-GPU layer split is not modelled "
                                                                "yet; estimate one GPU with --n-gpu-layers")
    if par == "none" and n_gpus > 1:
        raise VramscopeError("conflict", field="--parallelism",
                             reason=f"'none' cannot use {n_gpus} GPUs; choose tp (inference) or fsdp (training)")
    if par in TRAINING_PARALLEL and task == "inference":
        raise VramscopeError("conflict", field="--parallelism",
                             reason=f"'{par}' is not available for --task {task} yet; use "
                                    f"{'tp' if task == 'inference' else 'fsdp'}")
    fw = _choice(framework, "--framework", FRAMEWORKS)
    pp_n = parse_int(pp, "--pp", 1, 1024)
    pp_sched = _choice(pp_schedule, "--pp-schedule", ("1f1b", "gpipe"))
    if pp_n > 1 and task == "inference":
        raise VramscopeError("conflict", field="--pp", reason="pipeline parallelism is modelled for training; "
                                                              "inference engines split with --tensor-parallel-size")
    cache = _choice(cache, "--cache", ("dynamic", "static"))
    if cache == "static" and engine != "transformers":
        raise VramscopeError("conflict", field="--cache", reason="static caches are a transformers option")
    off = _choice(offload, "--offload", OFFLOADS)
    if off != "none" and task == "inference":
        raise VramscopeError("conflict", field="--offload",
                             reason="CPU offload of optimizer states and parameters is for training; use --task finetune")
    default_seq = 2048 if task != "inference" else 4096
    apsa = None if activations_per_sample is None else parse_int(activations_per_sample,
                                                                 "--activations-per-sample", 1, 10**13)
    return Workload(
        task=task, method=method, estimator=estimator, engine=engine, dtype=dtype, quant=q,
        batch=parse_int(batch, "--batch", 1, MAX_BATCH),
        seq=parse_int(default_seq if seq is None else seq, "--seq", 1, MAX_SEQ),
        kv_dtype=kv_dtype, attn=_choice(attn, "--attn", ATTN_IMPLS),
        precision=_choice(precision, "--precision", PRECISIONS),
        optimizer=_choice(optimizer, "--optimizer", OPTIMIZERS),
        grad_checkpointing=bool(grad_checkpointing),
        grad_accum=parse_int(grad_accum, "--grad-accum", 1, 1_000_000),
        lora_rank=parse_int(lora_rank, "--lora-rank", 1, 65536),
        lora_targets=targets, frozen_layers=parse_int(frozen_layers, "--freeze-layers", 0, 100_000),
        lora_dropout=_fraction(lora_dropout, "--lora-dropout", 0.0, 0.99),
        train_modules=_modules(train_modules, method),
        activations_per_sample=apsa, num_gpus=n_gpus, parallelism=par if n_gpus > 1 else "none", offload=off,
        cache=cache, pp=pp_n, pp_schedule=pp_sched, framework=fw, **engine_opts,
    )


def _engine_options(engine: str, util: Any, max_model_len: Any, max_num_seqs: Any, max_batched: Any,
                    enforce_eager: bool, ngl: Any, ctk: Optional[str], ctv: Optional[str], flash_attn: bool,
                    ubatch: Any) -> dict[str, Any]:
    vllm = {"--gpu-memory-utilization": util, "--max-model-len": max_model_len, "--max-num-seqs": max_num_seqs,
            "--max-num-batched-tokens": max_batched, "--enforce-eager": enforce_eager or None}
    llama = {"--n-gpu-layers": ngl, "--cache-type-k": ctk, "--cache-type-v": ctv, "--flash-attn": flash_attn or None,
             "--ubatch-size": ubatch}
    for options, owner in ((vllm, "vllm"), (llama, "llama.cpp")):
        if engine != owner:
            given = [k for k, v in options.items() if v is not None]
            if given:
                raise VramscopeError("conflict", field=given[0], reason=f"is a {owner} option; add --engine {owner}")
    out: dict[str, Any] = {}
    if util is not None:
        try:
            u = float(util)
        except ValueError:
            u = -1.0
        if not 0.05 <= u <= 1.0:
            raise VramscopeError("bad_choice", field="--gpu-memory-utilization", value=util,
                                 allowed="a fraction from 0.05 to 1.0")
        out["gpu_memory_utilization"] = u
    if max_model_len is not None:
        out["max_model_len"] = parse_int(max_model_len, "--max-model-len", 1, MAX_SEQ)
    if max_num_seqs is not None:
        out["max_num_seqs"] = parse_int(max_num_seqs, "--max-num-seqs", 1, 1_000_000)
    if max_batched is not None:
        out["max_num_batched_tokens"] = parse_int(max_batched, "--max-num-batched-tokens", 1, MAX_SEQ)
    out["enforce_eager"] = bool(enforce_eager)
    if ngl is not None:
        out["n_gpu_layers"] = parse_int(ngl, "--n-gpu-layers", 0, 100_000)
    for name, value in (("cache_type_k", ctk), ("cache_type_v", ctv)):
        if value is not None:
            v = str(value).strip().lower()
            if v not in LLAMA_CACHE_TYPES:
                raise VramscopeError("bad_choice", field="--" + name.replace("_", "-"), value=value,
                                     allowed=", ".join(LLAMA_CACHE_TYPES))
            out[name] = v
    out["flash_attn"] = bool(flash_attn)
    if ubatch is not None:
        out["ubatch"] = parse_int(ubatch, "--ubatch-size", 1, 1_000_000)
    return out


def _modules(value: Any, method: str) -> tuple[str, ...]:
    if not value:
        return ()
    if method != "freeze":
        raise VramscopeError("conflict", field="--train-modules", reason="is for --method freeze")
    names = tuple(v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip())
    return names


def _fraction(value: Any, field_name: str, lo: float, hi: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if not lo <= f <= hi:
        raise VramscopeError("bad_choice", field=field_name, value=value, allowed=f"a number from {lo} to {hi}")
    return f
