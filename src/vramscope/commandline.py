"""Paste what you run: an engine's own command line read into vramscope's options (issue #17).

``vramscope estimate -- vllm serve Qwen/Qwen2.5-7B --max-model-len 32768 -tp 2``: everything after ``--`` is the
command the user runs. :func:`parse_command` recognizes the program and reads its flags by their real names
(and short forms) into vramscope's workload options; flags the program has that do not change memory are listed
as ``ignored``, flags that change memory but vramscope does not model as ``unmodelled``, and flags it does not
know at all as ``unknown`` (none is dropped silently). Leading ``NAME=value`` environment assignments are read
too (``CUDA_VISIBLE_DEVICES``, Ollama's ``OLLAMA_*``).

The flag tables were read from the programs' sources:

* vLLM: ``vllm/engine/arg_utils.py`` (``EngineArgs.add_cli_args``) and ``vllm/entrypoints/openai/cli_args.py``;
  ``vllm serve MODEL`` or ``python -m vllm.entrypoints.openai.api_server --model MODEL``. Integers accept
  vLLM's human-readable forms (``32k`` = 32,000, ``32K`` = 32,768; ``human_readable_int``).
* llama.cpp: ``common/arg.cpp`` (``llama-server``, ``llama-cli``); defaults from ``common/common.h``: ``-c 0``
  (the model's training context), ``-b 2048``, ``-ub 512``, ``-ngl`` auto, ``-fa auto``, ``-sm layer``.
* Ollama: ``ollama run MODEL`` (cmd/cmd.go) and ``ollama create NAME -f Modelfile``; the ``OLLAMA_*``
  environment of ``envconfig/config.go``.
* SGLang: ``python/sglang/srt/server_args.py`` (``python -m sglang.launch_server --model-path ...``).
* Training launchers: ``torchrun`` (``--nproc-per-node``, ``--nnodes``), ``accelerate launch``
  (``--num_processes``, ``--num_machines``, ``--config_file``), ``deepspeed`` (``--num_gpus``, ``--num_nodes``),
  then the script's Hugging Face ``TrainingArguments`` / TRL flags (``--deepspeed ds.json``,
  ``--per_device_train_batch_size``, ...).
* LitGPT 0.5.13: ``litgpt finetune lora | full CHECKPOINT`` with its jsonargparse flags (``litgpt_args.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .errors import VramscopeError
from .units import shown

#: a command line is short; more tokens than this is not one
MAX_TOKENS = 2000


@dataclass
class ParsedCommand:
    """A command line read into vramscope's terms."""

    program: str
    engine: str  # vllm | llama.cpp | ollama | sglang | transformers (training scripts)
    model: Optional[str] = None
    options: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # known flags that do not change memory
    unmodelled: list[str] = field(default_factory=list)  # known flags that change memory, not modelled
    unknown: list[str] = field(default_factory=list)
    config_files: dict[str, str] = field(default_factory=dict)  # deepspeed / accelerate config paths


# ---- value readers -------------------------------------------------------------------------------------------

def _bad(flag: str, value: Any, allowed: str) -> VramscopeError:
    return VramscopeError("bad_choice", field=flag, value=shown(value), allowed=allowed)


def _int(flag: str, value: str) -> int:
    if not re.fullmatch(r"-?\d{1,12}", value.strip()):
        raise _bad(flag, value, "an integer")
    return int(value)


def _human_int(flag: str, value: str) -> int:
    """vLLM's ``human_readable_int``: 1k = 1000, 1K = 1024, 1m = 10^6, 1M = 2^20, 1g/1G likewise."""
    m = re.fullmatch(r"(\d{1,12}(?:\.\d{1,6})?)([kKmMgG]?)", value.strip())
    if not m:
        raise _bad(flag, value, "an integer such as 32768, 32k or 32K")
    number, unit = float(m.group(1)), m.group(2)
    scale = {"": 1, "k": 10**3, "K": 2**10, "m": 10**6, "M": 2**20, "g": 10**9, "G": 2**30}[unit]
    if unit == "" and not m.group(1).isdigit():
        raise _bad(flag, value, "an integer such as 32768, 32k or 32K")
    return int(number * scale)


def _float(flag: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise _bad(flag, value, "a number") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise _bad(flag, value, "a number")
    return x


def _floats(flag: str, value: str) -> list[float]:
    """llama.cpp ``-ts 3,1`` (or ``3/1``): proportions."""
    parts = [p for p in re.split(r"[,/]", value.strip()) if p.strip()]
    if not parts or len(parts) > 128:
        raise _bad(flag, value, "proportions such as 1,1 or 3,1")
    out = [_float(flag, p) for p in parts]
    if any(x < 0 for x in out):
        raise _bad(flag, value, "proportions of zero or more")
    return out


# ---- flag tables ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    apply: Callable[[dict[str, Any], str, Optional[str]], None]  # (options, flag, value)
    takes_value: bool = True
    optional_value: tuple[str, ...] = ()  # values a flag may take or go without (-fa [on|off|auto])
    boolean: bool = False  # a switch that may be written --flag false (HfArgumentParser's bool fields)


def _set(key: str, reader: Optional[Callable[[str, str], Any]] = None) -> Callable[[dict, str, Optional[str]], None]:
    def apply(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
        o[key] = reader(flag, value) if reader is not None and value is not None else value
    return apply


def _true(key: str, value: Any = True) -> Callable[[dict, str, Optional[str]], None]:
    def apply(o: dict[str, Any], flag: str, _: Optional[str]) -> None:
        o[key] = value
    return apply


def _vllm_tp(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    o["_tp"] = _int(flag, value or "")


def _vllm_kv(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    """``--kv-cache-dtype`` (vllm/config/cache.py ``CacheDType`` at v0.11.0: auto, fp8, fp8_e4m3, fp8_e5m2,
    fp8_inc, fp8_ds_mla; one byte per value for every fp8 kind)."""
    v = (value or "").strip().lower()
    if v in ("fp8", "fp8_e4m3", "fp8_e5m2"):
        o["kv_dtype"] = v
    elif v.startswith("fp8"):
        o["kv_dtype"] = "fp8"
    elif v not in ("auto", "bfloat16", "float16", "half"):
        raise _bad(flag, value, "auto, fp8, fp8_e4m3, fp8_e5m2")


_DTYPES = {"auto": None, "half": "fp16", "float16": "fp16", "bfloat16": "bf16", "float": "fp32", "float32": "fp32",
           "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _dtype(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    v = (value or "").strip().lower()
    if v not in _DTYPES:
        raise _bad(flag, value, ", ".join(_DTYPES))
    if _DTYPES[v]:
        o["dtype"] = _DTYPES[v]


def _vllm_quant(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    v = (value or "").strip().lower()
    if v.startswith("fp8"):
        o["quant"] = "fp8"
    elif v in ("awq", "gptq", "awq_marlin", "gptq_marlin", "compressed-tensors", "bitsandbytes"):
        o["_quant_from_checkpoint"] = v  # the checkpoint's own format decides its bytes
    else:
        raise _bad(flag, value, "fp8, awq, gptq, compressed-tensors, bitsandbytes")


VLLM_FLAGS = (
    Flag(("--model",), _set("_model")),
    Flag(("-tp", "--tensor-parallel-size"), _vllm_tp),
    Flag(("-pp", "--pipeline-parallel-size"), _set("pp", _int)),
    Flag(("--max-model-len",), _set("max_model_len", _human_int)),
    Flag(("--gpu-memory-utilization",), _set("gpu_memory_utilization", _float)),
    Flag(("--max-num-seqs",), _set("max_num_seqs", _human_int)),
    Flag(("--max-num-batched-tokens",), _set("max_num_batched_tokens", _human_int)),
    Flag(("--enforce-eager",), _true("enforce_eager"), takes_value=False),
    Flag(("--no-enforce-eager",), _true("enforce_eager", False), takes_value=False),
    Flag(("--kv-cache-dtype",), _vllm_kv),
    Flag(("--dtype",), _dtype),
    Flag(("-q", "--quantization"), _vllm_quant),
    Flag(("--block-size",), _set("block_size", _int)),
    Flag(("--disable-hybrid-kv-cache-manager",), _true("disable_hybrid_kv_cache_manager"), takes_value=False),
    Flag(("--enable-lora",), _true("enable_lora"), takes_value=False),
    Flag(("--max-loras",), _set("max_loras", _int)),
    Flag(("--max-lora-rank",), _set("max_lora_rank", _int)),
    Flag(("-dp", "--data-parallel-size"), _set("data_parallel_size", _int)),
    Flag(("--enable-expert-parallel", "-ep"), _true("enable_expert_parallel"), takes_value=False),
    # multimodal (engines/vllm_mm.py); --language-model-only sets every modality's limit to 0
    Flag(("--limit-mm-per-prompt",), _set("limit_mm_per_prompt", lambda f, v: _mm().read_limits(v, f))),
    Flag(("--mm-processor-kwargs",), _set("mm_processor_kwargs", lambda f, v: _mm().read_processor_kwargs(v, f))),
    Flag(("--mm-encoder-tp-mode",), _set("mm_encoder_tp_mode", lambda f, v: _choice(f, v, ("weights", "data")))),
    Flag(("--mm-processor-cache-gb",), _set("mm_processor_cache_gb", _float)),
    Flag(("--skip-mm-profiling",), _true("skip_mm_profiling"), takes_value=False),
    Flag(("--language-model-only",), _true("limit_mm_per_prompt", {"image": 0, "video": 0, "audio": 0}),
         takes_value=False),
)


def _mm() -> Any:
    from .engines import vllm_mm

    return vllm_mm


def _choice(flag: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _bad(flag, value, ", ".join(allowed))
    return value


VLLM_IGNORED = {"--host": True, "--port": True, "--served-model-name": True, "--api-key": True,
                "--trust-remote-code": False, "--download-dir": True, "--tokenizer": True, "--revision": True,
                "--seed": True, "--disable-log-requests": False, "--disable-log-stats": False,
                "--uvicorn-log-level": True, "--chat-template": True, "--enable-auto-tool-choice": False,
                "--tool-call-parser": True, "--generation-config": True, "--load-format": True,
                "--tokenizer-mode": True, "--enable-prefix-caching": False, "--max-cpu-loras": True,
                "--lora-modules": True, "--no-enable-prefix-caching": False,
                "--enable-chunked-prefill": False, "--no-enable-chunked-prefill": False,
                "--reasoning-parser": True, "--root-path": True, "--config": True}
VLLM_UNMODELLED = {"--swap-space": True, "--cpu-offload-gb": True, "--kv-cache-memory-bytes": True,
                   "--speculative-config": True, "--max-num-partial-prefills": True,
                   "--lora-extra-vocab-size": True, "--fully-sharded-loras": False, "-cc": True,
                   "--compilation-config": True, "--cuda-graph-sizes": True}


def _llama_ngl(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    v = (value or "").strip().lower()
    if v in ("auto", "-1"):
        return  # every layer (auto: llama.cpp's --fit may lower it to fit the free memory)
    n = -2 if v == "all" else _int(flag, v)
    if n <= -2:
        # all (-2): every layer, and set by the user, so --fit leaves the layers alone ("already set by user")
        o["n_gpu_layers"] = 100_000
        return
    o["n_gpu_layers"] = n


def _llama_ctx(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    n = _int(flag, value or "")
    if n < 0:
        raise _bad(flag, value, "0 (the model's training context) or a number of tokens")
    if n > 0:
        o["seq"] = n
    else:
        o["_ctx_from_model"] = True


def _llama_fa(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    v = (value or "on").strip().lower()
    if v not in ("on", "off", "auto", "1", "0", "true", "false"):
        raise _bad(flag, value, "on, off or auto")
    o["flash_attn"] = v in ("on", "auto", "1", "true")  # auto: on where the backend has it (CUDA, Metal, Vulkan)


def _llama_cache(key: str) -> Callable[[dict, str, Optional[str]], None]:
    from .engines.llamacpp import LLAMA_CACHE_TYPES

    def apply(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
        v = (value or "").strip().lower()
        if v not in LLAMA_CACHE_TYPES:
            raise _bad(flag, value, ", ".join(LLAMA_CACHE_TYPES))
        o[key] = v
    return apply


def _llama_split(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    from .engines.llamacpp import SPLIT_MODES

    v = (value or "").strip().lower()
    if v not in SPLIT_MODES:
        raise _bad(flag, value, ", ".join(SPLIT_MODES))
    o["split_mode"] = v


def _llama_devices(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    devs = [d for d in (value or "").split(",") if d.strip() and d.strip().lower() != "none"]
    o["_devices"] = len(devs)


def _llama_hf(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    """``-hf owner/Model-GGUF[:quant]``: the model the GGUF repository holds (its name without ``-GGUF``, which the
    catalog knows: ``unsloth/Qwen3-8B-GGUF`` is qwen3-8b) and the file type."""
    repo, _, quant = (value or "").partition(":")
    name = repo.rsplit("/", 1)[-1]
    o["_model"] = re.sub(r"[-_.]gguf$", "", name, flags=re.IGNORECASE) or repo
    if quant:
        o["quant"] = quant.upper()


def _llama_fit(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    v = (value or "").strip().lower()
    if v in ("on", "1", "true", "enabled"):
        o["fit"] = "on"
    elif v in ("off", "0", "false", "disabled"):
        o["fit"] = "off"
    else:
        raise _bad(flag, value, "on or off")


def _llama_fit_target(o: dict[str, Any], flag: str, value: Optional[str]) -> None:
    from .engines.llamacpp import _read_fit_target

    o["fit_target"] = _read_fit_target(value or "", flag)


LLAMA_FLAGS = (
    Flag(("-m", "--model"), _set("_model")),
    Flag(("-fit", "--fit"), _llama_fit),
    Flag(("-fitt", "--fit-target"), _llama_fit_target),
    Flag(("-fitc", "--fit-ctx"), _set("fit_ctx", _int)),
    Flag(("-hf", "-hfr", "--hf-repo"), _llama_hf),
    Flag(("-c", "--ctx-size"), _llama_ctx),
    Flag(("-ngl", "--gpu-layers", "--n-gpu-layers"), _llama_ngl),
    Flag(("-ts", "--tensor-split"), _set("tensor_split", _floats)),
    Flag(("-sm", "--split-mode"), _llama_split),
    Flag(("-mg", "--main-gpu"), _set("main_gpu", _int)),
    Flag(("-b", "--batch-size"), _set("batch_size", _int)),
    Flag(("-ub", "--ubatch-size"), _set("ubatch", _int)),
    Flag(("-fa", "--flash-attn"), _llama_fa, optional_value=("on", "off", "auto", "1", "0", "true", "false")),
    Flag(("-ctk", "--cache-type-k"), _llama_cache("cache_type_k")),
    Flag(("-ctv", "--cache-type-v"), _llama_cache("cache_type_v")),
    Flag(("-nkvo", "--no-kv-offload"), _true("no_kv_offload"), takes_value=False),
    Flag(("--no-op-offload",), _true("no_op_offload"), takes_value=False),
    Flag(("--op-offload",), _true("no_op_offload", False), takes_value=False),
    Flag(("-np", "--parallel"), _set("n_parallel", _int)),
    Flag(("-kvu", "--kv-unified"), _true("kv_unified"), takes_value=False),
    Flag(("-no-kvu", "--no-kv-unified"), _true("kv_unified", False), takes_value=False),
    Flag(("--swa-full",), _true("swa_full"), takes_value=False),
    Flag(("-dev", "--device"), _llama_devices),
)
LLAMA_IGNORED = {"--host": True, "--port": True, "-t": True, "--threads": True, "-tb": True, "--threads-batch": True,
                 "--temp": True, "-n": True, "--n-predict": True, "--predict": True, "--jinja": False, "-a": True,
                 "--alias": True, "--api-key": True, "-s": True, "--seed": True, "--metrics": False, "--slots": False,
                 "--no-webui": False, "-v": False, "--verbose": False, "--log-disable": False, "--chat-template": True,
                 "-p": True, "--prompt": True, "-cnv": False, "--conversation": False, "--prio": True,
                 "--mlock": False, "--no-mmap": False, "--mmap": False,
                 "--cont-batching": False, "-cb": False, "--top-k": True, "--top-p": True, "--min-p": True,
                 "--repeat-penalty": True, "--no-context-shift": False, "--context-shift": False,
                 "--embedding": False, "--embeddings": False, "-sys": True, "--system-prompt": True,
                 "--no-warmup": False, "--reasoning-format": True, "--reasoning-budget": True, "--timeout": True}
LLAMA_UNMODELLED = {"-ot": True, "--override-tensor": True, "-cmoe": False, "--cpu-moe": False, "-ncmoe": True,
                    "--n-cpu-moe": True, "-md": True, "--model-draft": True, "--mmproj": True, "--lora": True,
                    "--rpc": True, "--cache-ram": True,
                    "-cram": True, "-ngld": True, "--gpu-layers-draft": True}

SGLANG_FLAGS = (
    Flag(("--model-path", "--model"), _set("_model")),
    Flag(("--tp-size", "--tp", "--tensor-parallel-size"), _vllm_tp),
    Flag(("--dp-size", "--dp", "--data-parallel-size"), _set("dp_size", _int)),
    Flag(("--mem-fraction-static",), _set("mem_fraction_static", _float)),
    Flag(("--context-length",), _set("context_length", _int)),
    Flag(("--max-running-requests",), _set("max_running_requests", _int)),
    Flag(("--max-total-tokens",), _set("max_total_tokens", _int)),
    Flag(("--chunked-prefill-size",), _set("chunked_prefill_size", _int)),
    Flag(("--kv-cache-dtype",), _vllm_kv),
    Flag(("--dtype",), _dtype),
    Flag(("--quantization",), _vllm_quant),
    Flag(("--cuda-graph-max-bs",), _set("cuda_graph_max_bs", _int)),
)
SGLANG_IGNORED = {"--host": True, "--port": True, "--trust-remote-code": False, "--served-model-name": True,
                  "--api-key": True, "--tokenizer-path": True, "--log-level": True, "--random-seed": True,
                  "--chat-template": True, "--disable-radix-cache": False, "--schedule-policy": True,
                  "--attention-backend": True, "--reasoning-parser": True, "--tool-call-parser": True,
                  "--revision": True, "--download-dir": True, "--enable-metrics": False}
SGLANG_UNMODELLED = {"--disable-cuda-graph": False, "--max-prefill-tokens": True, "--enable-dp-attention": False, "--ep-size": True, "--ep": True,
                     "--speculative-algorithm": True, "--page-size": True, "--cpu-offload-gb": True,
                     "--lora-paths": True, "--enable-torch-compile": False}

#: values HfArgumentParser accepts after a bool flag (``--bf16``, ``--bf16 true``, ``--bf16 False``)
_BOOL = ("true", "false", "True", "False", "1", "0")
# Hugging Face TrainingArguments / TRL SFTConfig / common script arguments
TRAIN_FLAGS = (
    Flag(("--model_name_or_path", "--model-name-or-path", "--model_name", "--model"), _set("_model")),
    Flag(("--per_device_train_batch_size", "--per-device-train-batch-size", "--batch_size", "--micro_batch_size"),
         _set("batch", _int)),
    Flag(("--gradient_accumulation_steps", "--gradient-accumulation-steps"), _set("grad_accum", _int)),
    Flag(("--max_seq_length", "--max_length", "--model_max_length", "--max-seq-length", "--seq_length",
          "--sequence_len", "--cutoff_len"), _set("seq", _int)),
    Flag(("--bf16",), _true("dtype", "bf16"), optional_value=_BOOL, boolean=True),
    Flag(("--fp16",), _true("dtype", "fp16"), optional_value=_BOOL, boolean=True),
    Flag(("--gradient_checkpointing", "--gradient-checkpointing"), _true("grad_checkpointing"),
         optional_value=_BOOL, boolean=True),
    Flag(("--deepspeed",), _set("_deepspeed")),
    Flag(("--lora_r", "--lora_rank", "--lora-r"), _set("lora_rank", _int)),
    Flag(("--use_peft", "--use-peft"), _true("method", "lora"), optional_value=_BOOL, boolean=True),
    Flag(("--load_in_4bit", "--load-in-4bit"), _true("method", "qlora"),
         optional_value=_BOOL, boolean=True),
    Flag(("--packing",), _true("packing"), optional_value=_BOOL, boolean=True),
    Flag(("--optim",), _set("_optim")),
)
TRAIN_IGNORED = {"--output_dir": True, "--output-dir": True, "--learning_rate": True, "--num_train_epochs": True,
                 "--max_steps": True, "--logging_steps": True, "--save_steps": True, "--save_strategy": True,
                 "--eval_strategy": True, "--evaluation_strategy": True, "--warmup_ratio": True,
                 "--warmup_steps": True, "--lr_scheduler_type": True, "--weight_decay": True, "--report_to": True,
                 "--dataset_name": True, "--dataset": True, "--seed": True, "--run_name": True, "--lora_alpha": True,
                 "--lora_dropout": True, "--push_to_hub": False, "--overwrite_output_dir": False,
                 "--do_train": False, "--logging_dir": True, "--dataloader_num_workers": True, "--tf32": True,
                 "--per_device_eval_batch_size": True, "--trust_remote_code": False}
TRAIN_UNMODELLED = {"--fsdp": True, "--fsdp_config": True, "--torch_compile": False, "--lora_target_modules": True}


# ---- recognizing the program ---------------------------------------------------------------------------------

_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _flag_table(flags: tuple[Flag, ...]) -> dict[str, Flag]:
    return {n: f for f in flags for n in f.names}


def _read_flags(args: list[str], flags: tuple[Flag, ...], ignored: dict[str, bool], unmodelled: dict[str, bool],
                out: ParsedCommand, positional: Optional[list[str]] = None) -> None:
    """Apply ``args`` (flags and their values) to ``out``; a positional goes to ``positional`` when given."""
    table = _flag_table(flags)
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if not tok.startswith("-") or tok == "-":
            if positional is not None:
                positional.append(tok)
            else:
                out.unknown.append(tok)
            continue
        name, eq, inline = tok.partition("=")
        value: Optional[str] = inline if eq else None
        if name in table:
            f = table[name]
            if f.takes_value and not f.optional_value and value is None:
                if i >= len(args):
                    raise VramscopeError("cmd_needs_value", flag=shown(name))
                value = args[i]
                i += 1
            elif f.optional_value and value is None and i < len(args) and args[i] in f.optional_value:
                value = args[i]
                i += 1
            if f.boolean and value is not None and value.lower() in ("false", "0"):
                continue  # --bf16 false
            f.apply(out.options, name, value)
            continue
        for kind, known in (("ignored", ignored), ("unmodelled", unmodelled)):
            if name in known:
                shown_tok = tok
                if known[name] and value is None and i < len(args):
                    shown_tok = f"{tok} {args[i]}"
                    i += 1
                getattr(out, kind).append(shown_tok)
                break
        else:
            shown_tok = tok
            if value is None and i < len(args) and not args[i].startswith("-"):
                shown_tok = f"{tok} {args[i]}"  # an unknown flag's value, most likely
                i += 1
            out.unknown.append(shown_tok)


def _gpus_from_env(env: dict[str, str], out: ParsedCommand) -> None:
    cvd = env.get("CUDA_VISIBLE_DEVICES", env.get("HIP_VISIBLE_DEVICES"))
    if cvd is not None:
        out.options["_visible_gpus"] = len([d for d in cvd.split(",") if d.strip() and d.strip() != "-1"])


def _vllm(args: list[str], env: dict[str, str]) -> ParsedCommand:
    out = ParsedCommand(program="vllm", engine="vllm")
    pos: list[str] = []
    _read_flags(args, VLLM_FLAGS, VLLM_IGNORED, VLLM_UNMODELLED, out, pos)
    out.model = out.options.pop("_model", None) or (pos.pop(0) if pos else None)
    out.unknown += pos
    _gpus_from_env(env, out)
    tp = out.options.pop("_tp", 1)
    pp = out.options.get("pp", 1)
    if tp * pp > 1:
        out.options["num_gpus"] = tp
        out.options["parallelism"] = "tp" if tp > 1 else "none"
    out.options.pop("_quant_from_checkpoint", None)
    out.options.pop("_visible_gpus", None)
    return out


def _llamacpp(program: str, args: list[str], env: dict[str, str]) -> ParsedCommand:
    out = ParsedCommand(program=program, engine="llama.cpp")
    _read_flags(args, LLAMA_FLAGS, LLAMA_IGNORED, LLAMA_UNMODELLED, out)
    out.model = out.options.pop("_model", None)
    _gpus_from_env(env, out)
    gpus = out.options.pop("_devices", None) or out.options.pop("_visible_gpus", None)
    ts = out.options.get("tensor_split")
    if ts and len(ts) > 1:
        gpus = max(gpus or 1, len(ts))
    if gpus and gpus > 1:
        out.options["num_gpus"] = gpus
    out.options.pop("_visible_gpus", None)
    out.options.pop("_ctx_from_model", None)
    if "seq" not in out.options:
        out.options["_ctx_from_model"] = True  # -c 0 (the default): the model's training context
    if program.startswith(("llama-server", "server")) and out.options.get("n_parallel", -1) < 0:
        # tools/server/server.cpp: "n_parallel is set to auto, using n_parallel = 4 and kv_unified = true"
        # (common/arg.cpp: params.n_parallel = -1, "auto by default", for LLAMA_EXAMPLE_SERVER only; -np N keeps
        # one KV stream per sequence unless -kvu)
        out.options["n_parallel"] = 4
        out.options.setdefault("kv_unified", True)
    if program.startswith(("llama-server", "server")):
        out.options["llama_server"] = True  # its reserved logits: n_parallel rows (engines/llamacpp.py llama_outputs)
    if not program.startswith("llama-run"):
        # common.h fit_params = true (every common_params tool: llama-server, llama-cli): fits -ngl / -ts (and a
        # -c left at 0) to the GPUs named
        out.options.setdefault("fit", "on")
    if out.options.get("fit") == "on" and out.options.get("_ctx_from_model"):
        out.options["fit_auto_ctx"] = True
    return out


_OLLAMA_ENV = {"OLLAMA_NUM_PARALLEL": ("num_parallel", int), "OLLAMA_CONTEXT_LENGTH": ("seq", int),
               "OLLAMA_GPU_OVERHEAD": ("gpu_overhead", int), "OLLAMA_KV_CACHE_TYPE": ("ollama_kv_cache_type", str)}


def _ollama(args: list[str], env: dict[str, str]) -> ParsedCommand:
    from .sources.ollama import parse_ollama_name, read_modelfile

    out = ParsedCommand(program="ollama", engine="ollama")
    if not args or args[0] not in ("run", "create", "serve", "pull"):
        raise VramscopeError("cmd_ollama_verb")
    verb, rest = args[0], args[1:]
    if verb == "create":
        name, modelfile = None, None
        i = 0
        while i < len(rest):
            if rest[i] in ("-f", "--file") and i + 1 < len(rest):
                modelfile = rest[i + 1]
                i += 2
                continue
            if not rest[i].startswith("-") and name is None:
                name = rest[i]
            elif rest[i].startswith("-"):
                out.ignored.append(rest[i])
            i += 1
        if modelfile is None:
            raise VramscopeError("cmd_ollama_verb")
        mf = read_modelfile(modelfile)
        out.config_files["modelfile"] = modelfile
        out.ignored += mf.ignored
        out.options.update(mf.options)
        base = mf.base
    else:
        pos: list[str] = []
        for tok in rest:
            if tok.startswith("-"):
                out.ignored.append(tok)  # --verbose, --keepalive, --format, --think: no memory
            else:
                pos.append(tok)
        base = pos[0] if pos else ""
        if len(pos) > 1:
            out.ignored.append("(prompt)")
    if base:
        if base.lower().endswith(".gguf") or os.sep in base or base.startswith("."):
            out.model = base
        else:
            n = parse_ollama_name(base)
            out.model = n.model
            out.options.setdefault("quant", n.quant)
    for key, (opt, kind) in _OLLAMA_ENV.items():
        if key in env:
            out.options[opt] = env[key] if kind is str else _int(key, env[key])
    for key, opt in (("OLLAMA_FLASH_ATTENTION", "ollama_flash_attention"), ("OLLAMA_SCHED_SPREAD", "sched_spread")):
        if key in env:
            out.options[opt] = env[key].strip().lower() in ("1", "true", "t", "yes", "on")
    _gpus_from_env(env, out)
    if out.options.get("_visible_gpus", 0) > 1:
        out.options["num_gpus"] = out.options["_visible_gpus"]
    out.options.pop("_visible_gpus", None)
    return out


def _sglang(args: list[str], env: dict[str, str]) -> ParsedCommand:
    out = ParsedCommand(program="sglang", engine="sglang")
    _read_flags(args, SGLANG_FLAGS, SGLANG_IGNORED, SGLANG_UNMODELLED, out)
    out.model = out.options.pop("_model", None)
    tp = out.options.pop("_tp", 1)
    if tp > 1:
        out.options["num_gpus"] = tp
        out.options["parallelism"] = "tp"
    out.options.pop("_quant_from_checkpoint", None)
    return out


_LAUNCHER_FLAGS = {"torchrun": {"--nproc-per-node": "gpus", "--nproc_per_node": "gpus", "--nnodes": "nodes"},
                   "accelerate": {"--num_processes": "gpus", "--num-processes": "gpus", "--num_machines": "nodes",
                                  "--num-machines": "nodes", "--config_file": "config", "--config-file": "config"},
                   "deepspeed": {"--num_gpus": "gpus", "--num-gpus": "gpus", "--num_nodes": "nodes",
                                 "--num-nodes": "nodes"}}
_LAUNCHER_SWITCHES = {"--standalone", "--multi_gpu", "--multi-gpu", "--use_deepspeed", "--use_fsdp", "-m"}


def _training(program: str, args: list[str], env: dict[str, str]) -> ParsedCommand:
    out = ParsedCommand(program=program, engine="transformers")
    known = _LAUNCHER_FLAGS.get(program, {})
    i = 0
    if program == "accelerate" and args and args[0] == "launch":
        i = 1
    gpus = nodes = None
    while i < len(args) and args[i].startswith("-"):
        name, eq, inline = args[i].partition("=")
        if name in known:
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if eq else 2
            what = known[name]
            if what == "gpus":
                gpus = _int(name, value) if value != "gpu" else None
            elif what == "nodes":
                nodes = _int(name, value.split(":")[-1])
            else:
                out.config_files["accelerate"] = value
            continue
        if name in _LAUNCHER_SWITCHES:
            out.ignored.append(args[i])
            i += 1
            if name == "-m" and i < len(args):
                break
            continue
        # a launcher flag vramscope does not need (--master_port 29500, --rdzv-endpoint ...)
        out.ignored.append(args[i] if eq or i + 1 >= len(args) or args[i + 1].startswith("-")
                           else f"{args[i]} {args[i + 1]}")
        i += 1 if eq or i + 1 >= len(args) or args[i + 1].startswith("-") else 2
    if i < len(args):
        out.ignored.append(f"(script) {args[i]}")
        i += 1
    _read_flags(args[i:], TRAIN_FLAGS, TRAIN_IGNORED, TRAIN_UNMODELLED, out)
    out.model = out.options.pop("_model", None)
    ds = out.options.pop("_deepspeed", None)
    if ds:
        out.config_files["deepspeed"] = ds
    optim = out.options.pop("_optim", None)
    if optim:
        o = optim.lower()
        table = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw", "adamw": "adamw",
                 "adamw_8bit": "adamw8bit", "adamw_bnb_8bit": "adamw8bit", "paged_adamw_8bit": "adamw8bit",
                 "paged_adamw_32bit": "adamw", "sgd": "sgd", "adafactor": "adafactor"}
        if o in table:
            out.options["optimizer"] = table[o]
        else:
            out.unmodelled.append(f"--optim {optim}")
    out.options["task"] = "finetune"
    n = (gpus or 1) * (nodes or 1)
    if n > 1:
        out.options["num_gpus"] = n
    if nodes and nodes > 1:
        out.options["nodes"] = nodes
    return out


def _litgpt(args: list[str], env: dict[str, str]) -> ParsedCommand:
    """``litgpt finetune METHOD CHECKPOINT [--name value | --name=value ...]`` (jsonargparse; ``litgpt_args``), and
    the older ``litgpt finetune_lora``; ``--config recipe.yaml`` is read like ``vramscope --config``."""
    from . import litgpt_args
    from .frameworks import litgpt_model

    out = ParsedCommand(program="litgpt", engine="transformers")
    if args and args[0] in ("finetune_lora", "finetune_full"):
        method, rest = args[0], args[1:]
    elif len(args) >= 2 and args[0] == "finetune":
        method, rest = args[1], args[2:]
    elif args and args[0] == "finetune":
        method, rest = "lora", args[1:]  # litgpt finetune = finetune lora (litgpt/__main__.py)
    else:
        raise VramscopeError("cmd_unknown_program", program=shown(" ".join(["litgpt"] + args[:1])))
    values: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if not tok.startswith("--"):
            if "checkpoint_dir" in values:
                out.unknown.append(tok)
            else:
                values["checkpoint_dir"] = tok
            continue
        name, eq, inline = tok[2:].partition("=")
        if eq:
            values[name] = inline
        elif i < len(rest) and not rest[i].startswith("--"):
            values[name] = rest[i]
            i += 1
        else:
            values[name] = None
    if "config" in values and values["config"]:
        out.config_files["litgpt"] = values.pop("config")
    checkpoint, options, out.ignored, out.unmodelled, unknown = litgpt_args.read(method, values)
    out.unknown = unknown + out.unknown
    out.options.update(options)
    if checkpoint:
        out.model = litgpt_model(checkpoint) or checkpoint
    _gpus_from_env(env, out)
    return out


def parse_command(argv: list[str]) -> ParsedCommand:
    """An engine's command line (the tokens after ``--``) in vramscope's terms; see the module docstring."""
    if not isinstance(argv, (list, tuple)) or not argv:
        raise VramscopeError("cmd_empty")
    if len(argv) > MAX_TOKENS or any(not isinstance(a, str) or len(a) > 4096 for a in argv):
        raise VramscopeError("cmd_too_long", limit=MAX_TOKENS)
    args = list(argv)
    env: dict[str, str] = {}
    while args and _ENV.match(args[0]):
        k, _, v = args.pop(0).partition("=")
        env[k] = v
    if args and os.path.basename(args[0]) == "env":
        args.pop(0)
        while args and _ENV.match(args[0]):
            k, _, v = args.pop(0).partition("=")
            env[k] = v
    if not args:
        raise VramscopeError("cmd_empty")
    prog = os.path.basename(args[0]).lower()
    rest = args[1:]
    if prog in ("python", "python3") or re.fullmatch(r"python3\.\d+", prog):
        if len(rest) >= 2 and rest[0] == "-m":
            module, rest = rest[1], rest[2:]
            if module.startswith("vllm.entrypoints"):
                return _vllm(rest, env)
            if module.startswith("sglang.launch_server") or module == "sglang.srt.server":
                return _sglang(rest, env)
            if module in ("torch.distributed.run", "torch.distributed.launch"):
                return _training("torchrun", rest, env)
            if module == "accelerate.commands.launch":
                return _training("accelerate", rest, env)
            return _training("python", [module] + rest, env)
        return _training("python", rest, env)
    if prog == "vllm":
        if not rest or rest[0] != "serve":
            raise VramscopeError("cmd_unknown_program", program=shown(" ".join(args[:2])))
        return _vllm(rest[1:], env)
    if prog in ("llama-server", "llama-cli", "llama-run", "server", "main", "llama-server.exe", "llama-cli.exe"):
        return _llamacpp(prog, rest, env)
    if prog in ("ollama", "ollama.exe"):
        return _ollama(rest, env)
    if prog == "sglang" and rest and rest[0] in ("serve", "launch_server"):
        return _sglang(rest[1:], env)
    if prog in ("torchrun", "accelerate", "deepspeed"):
        return _training(prog, rest, env)
    if prog == "litgpt":
        return _litgpt(rest, env)
    raise VramscopeError("cmd_unknown_program", program=shown(args[0]))


def estimate_kwargs(p: ParsedCommand, model_context: Optional[int] = None) -> dict[str, Any]:
    """The workload keywords of :func:`vramscope.estimate` for a parsed command: its options, the engine, and
    the configs it names (``--deepspeed ds.json``, ``accelerate launch --config_file``) read by ``configs.py``;
    an option on the command line wins over the same field of a config. ``model_context``: the model's
    training context, llama.cpp's ``-c 0`` (its default)."""
    from .configs import from_accelerate_fsdp, from_deepspeed

    out: dict[str, Any] = {}
    if "deepspeed" in p.config_files:
        out.update(from_deepspeed(p.config_files["deepspeed"]))
    if "accelerate" in p.config_files:
        out.update(from_accelerate_fsdp(p.config_files["accelerate"]))
    if "litgpt" in p.config_files:
        from .configs import from_training_config

        out.update(from_training_config(p.config_files["litgpt"], "litgpt").options)
    out.update({k: v for k, v in p.options.items() if not k.startswith("_")})
    out["engine"] = p.engine
    if p.options.get("_ctx_from_model") and "seq" not in out and model_context:
        out["seq"] = model_context
    if out.get("num_gpus", 1) > 1 and p.engine == "transformers" and "parallelism" not in out:
        out["parallelism"] = "ddp"  # torchrun / accelerate without a sharding config: data parallel replicas
    return out


def command_notes(p: ParsedCommand) -> list[Any]:
    """The estimate's assumptions about a pasted command: what was read and every flag not used."""
    from .result import Assumption

    notes = [Assumption("a_cmd_read", {"program": p.program, "engine": p.engine})]
    for key, items in (("a_cmd_ignored", p.ignored), ("a_cmd_unmodelled", p.unmodelled),
                       ("a_cmd_unknown", p.unknown)):
        if items:
            notes.append(Assumption(key, {"flags": ", ".join(shown(x) for x in items)}))
    return notes


def config_notes(c: Any) -> list[Any]:
    """The estimate's assumptions about a training recipe read with ``--config``."""
    from .result import Assumption

    notes = [Assumption("a_config_read", {"format": c.format})]
    if c.unmodelled:
        notes.append(Assumption("a_cmd_unmodelled", {"flags": ", ".join(shown(x) for x in c.unmodelled)}))
    if c.ignored:
        notes.append(Assumption("a_config_ignored", {"fields": ", ".join(shown(x) for x in c.ignored)}))
    return notes
