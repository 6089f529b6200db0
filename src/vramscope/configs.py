"""Import distributed-training configs: a DeepSpeed JSON and an accelerate FSDP config (YAML or JSON).

Only the fields that change memory are read; the rest is ignored. "auto" (the Hugging Face integration's
placeholder) leaves vramscope's own option in place. Every value is checked and a bad one is named.

DeepSpeed (https://www.deepspeed.ai/docs/config-json/): ``zero_optimization.stage`` (0-3),
``zero_optimization.offload_optimizer.device`` / ``offload_param.device`` (cpu, nvme), ``bf16.enabled`` /
``fp16.enabled``, ``train_micro_batch_size_per_gpu``, ``gradient_accumulation_steps``.

accelerate FSDP (``accelerate config`` → ``fsdp_config``; accelerate ``FullyShardedDataParallelPlugin``):
``fsdp_sharding_strategy`` (FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD — sharded inside a node, replicated across
``num_machines`` — NO_SHARD, HYBRID_SHARD_ZERO2, or 1-5), ``fsdp_version`` (1 by default), FSDP2's
``fsdp_reshard_after_forward: false`` (= SHARD_GRAD_OP), ``fsdp_offload_params``,
``fsdp_activation_checkpointing``, ``num_processes``, ``num_machines``; ``mixed_precision``. DeepSpeed also:
``offload_*.device: nvme``, ``stage3_prefetch_bucket_size``, ``stage3_max_live_parameters``,
``stage3_param_persistence_threshold``, ``reduce_bucket_size``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from .errors import VramscopeError
from .sources.base import MAX_DEPTH, MAX_INT_DIGITS, JsonProblem, decode_text, format_limit, parse_json, \
    read_limited, shown_path
from .options import ZERO_AUTO
from .units import shown

#: A DeepSpeed JSON config: real ones are 1-5 KB; 1 MB is generous, and the objects and values in it are bounded
#: again before parsing (10,000 / 100,000), so the parse is cheap whatever the text.
MAX_BYTES = 1_000_000
#: An accelerate YAML config: ``accelerate config`` writes ~20 lines (under 1 KB). YAML is parsed in pure
#: Python (~5 s per MB), so the bound is lower than for JSON: 64 KiB parses in well under a second.
MAX_YAML_BYTES = 64 * 1024
MAX_CONTAINERS = 10_000
MAX_ITEMS = 100_000
#: whole numbers a config may give: counts of GPUs, micro-batches and steps, and bucket sizes in elements
MAX_COUNT = 10**6
MAX_ELEMENTS = 2**50

_YAML_INT = re.compile(r"^[-+]?[0-9]{1,32}$")
_YAML_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


def _read(path: str, data: Optional[bytes] = None, is_yaml: Optional[bool] = None) -> Any:
    """The parsed config: a regular file only, bounded before it is read, JSON or (``.yaml``/``.yml``) YAML.

    ``data``: the config's bytes as a client sent them (``vramscope serve``), with the same bounds and checks;
    ``path`` is then only the name messages give it and nothing is opened."""
    if not isinstance(path, str) or not path.strip():
        raise VramscopeError("path_empty")
    if is_yaml is None:
        is_yaml = path.lower().endswith((".yaml", ".yml"))
    limit = MAX_YAML_BYTES if is_yaml else MAX_BYTES
    if data is None:
        raw = read_limited(path, limit)
    elif len(data) > limit:
        raise VramscopeError("file_too_large", path=shown_path(path), limit=format_limit(limit))
    else:
        raw = data
    try:
        if is_yaml:
            return _yaml(decode_text(raw))
        return parse_json(raw, MAX_CONTAINERS, MAX_ITEMS)
    except JsonProblem as e:
        raise VramscopeError("config_bad_yaml" if is_yaml else "config_bad_json", origin=shown_path(path),
                             detail=e.detail) from None


def _yaml(text: str) -> Any:
    """YAML through PyYAML's ``SafeLoader`` (imported only here) when it is installed, with aliases refused
    (a few aliases can stand for billions of nodes) and nesting bounded; else the subset accelerate writes."""
    try:
        import yaml
    except ImportError:
        return _simple_yaml(text)

    class _Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise JsonProblem("YAML aliases (*name) are not allowed in a config")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise JsonProblem(f"nested more than {MAX_DEPTH} levels deep")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def _int(loader: Any, node: Any) -> int:
        digits = len(str(node.value).replace("_", "").lstrip("+-"))
        if digits > MAX_INT_DIGITS:
            raise JsonProblem(f"an integer of {digits} digits at line {node.start_mark.line + 1} "
                              f"(at most {MAX_INT_DIGITS})")
        return yaml.SafeLoader.construct_yaml_int(loader, node)

    def _float(loader: Any, node: Any) -> float:
        value = yaml.SafeLoader.construct_yaml_float(loader, node)
        if not math.isfinite(value):
            raise JsonProblem(f"{shown(node.value)} at line {node.start_mark.line + 1} is not a number a config "
                              "may hold")
        return value

    _Loader.add_constructor("tag:yaml.org,2002:int", _int)
    _Loader.add_constructor("tag:yaml.org,2002:float", _float)
    if text.count("{") + text.count("[") + text.count("\n") > MAX_ITEMS:
        raise JsonProblem(f"more than {MAX_ITEMS:,} values")
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters already here
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or getattr(e, "reason", None) or type(e).__name__
        raise JsonProblem(f"{what}{where}") from None
    except RecursionError:
        raise JsonProblem(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise JsonProblem(str(e)[:120]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _simple_yaml(text: str) -> dict[str, Any]:
    """The subset of YAML accelerate writes: nested ``key: value`` mappings by indentation, scalars only."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if ":" not in line:
            raise JsonProblem(f"line {n} is not 'key: value'")
        key, _, value = line.strip().partition(":")
        while stack and indent <= stack[-1][0]:
            stack.pop()
        if not stack or len(stack) > MAX_DEPTH:
            raise JsonProblem(f"line {n} is indented in a way this reader does not follow")
        parent = stack[-1][1]
        value = value.strip()
        if value == "":
            child: dict[str, Any] = {}
            parent[key.strip()] = child
            stack.append((indent, child))
        else:
            parent[key.strip()] = _scalar(value)
    return root


def _scalar(v: str) -> Any:
    v = v.strip().strip("'\"")
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "~"):
        return None
    if _YAML_INT.match(v):
        return int(v)
    if _YAML_FLOAT.match(v) and len(v) <= 64 and math.isfinite(float(v)):
        return float(v)
    return v


def _given(value: Any) -> bool:
    return value is not None and value != "auto"


def _bad(path: str, key: str, value: Any, allowed: str) -> VramscopeError:
    return VramscopeError("config_bad_value", origin=shown_path(path), key=key, value=shown(value), allowed=allowed)


def _whole(path: str, key: str, value: Any, minimum: int, maximum: int, what: str) -> int:
    """A whole number given as an int or an integral float (DeepSpeed's configs write ``5e8``)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if type(value) is not int or not minimum <= value <= maximum:
        raise _bad(path, key, value, f"{what} from {minimum:,} to {maximum:,}")
    return value


#: yes/no as DeepSpeed's pydantic models accept them (lax bool) and accelerate's ``str_to_bool`` reads them
_TRUE = ("true", "yes", "on", "1", "y", "t")
_FALSE = ("false", "no", "off", "0", "n", "f")


def _flag(path: str, key: str, value: Any, auto: bool = False) -> Optional[bool]:
    """True/False from a bool, 0/1 or a yes/no word; None when absent (or "auto", where allowed)."""
    if value is None or (auto and value == "auto"):
        return None
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(path, key, value, "true or false" + (' (or "auto")' if auto else ""))


def _section(path: str, cfg: dict[str, Any], key: str, within: str = "") -> dict[str, Any]:
    value = cfg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, within + key, value, "an object")
    return value


#: what the readers below use of a config (dotted keys; the web page lists the rest as ignored)
DEEPSPEED_READ = ("zero_optimization.stage", "zero_optimization.offload_optimizer.device",
                  "zero_optimization.offload_param.device", "zero_optimization.cpu_offload",
                  "zero_optimization.cpu_offload_param", "zero_optimization.stage3_prefetch_bucket_size",
                  "zero_optimization.stage3_max_live_parameters",
                  "zero_optimization.stage3_param_persistence_threshold", "zero_optimization.reduce_bucket_size",
                  "bf16.enabled", "fp16.enabled", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps")
ACCELERATE_READ = ("distributed_type", "num_processes", "num_machines", "mixed_precision",
                   "fsdp_config.fsdp_sharding_strategy", "fsdp_config.fsdp_version",
                   "fsdp_config.fsdp_reshard_after_forward", "fsdp_config.fsdp_offload_params",
                   "fsdp_config.fsdp_activation_checkpointing", "deepspeed_config.zero_stage",
                   "deepspeed_config.offload_optimizer_device", "deepspeed_config.offload_param_device",
                   "deepspeed_config.gradient_accumulation_steps", "deepspeed_config.deepspeed_config_file")


def unread_keys(cfg: Any, read: tuple[str, ...], limit: int = 1000) -> list[str]:
    """The keys of ``cfg`` (dotted, leaves and unknown sections) that a reader whose keys are ``read`` ignores."""
    wanted = set(read)
    prefixes = {k.rsplit(".", i)[0] for k in read for i in range(1, k.count(".") + 1)}
    out: list[str] = []

    def walk(node: Any, at: str) -> None:
        for key, value in node.items():
            if len(out) >= limit:
                return
            name = f"{at}{key}"
            if name in wanted:
                continue
            if name in prefixes and isinstance(value, dict):
                walk(value, name + ".")
            else:
                out.append(name)

    if isinstance(cfg, dict):
        walk(cfg, "")
    return out


def read_config(kind: str, data: bytes, origin: str) -> tuple[dict[str, Any], list[str]]:
    """A config a client sent (``deepspeed`` JSON or an ``accelerate`` YAML/JSON): the options it sets, read by
    the same code as ``--deepspeed`` / ``--fsdp``, and the keys it ignored."""
    if kind == "deepspeed":
        cfg = _read(origin, data, is_yaml=False)
        return _deepspeed_options(origin, cfg), unread_keys(cfg, DEEPSPEED_READ)
    cfg = _read(origin, data, is_yaml=True)  # YAML is a superset of the JSON accelerate also writes
    return _accelerate_options(origin, cfg), unread_keys(cfg, ACCELERATE_READ)


def from_deepspeed(path: str) -> dict[str, Any]:
    """Workload options from a DeepSpeed config (the values DeepSpeed's own config models accept)."""
    return _deepspeed_options(path, _read(path))


def _deepspeed_options(path: str, cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=shown_path(path))
    out: dict[str, Any] = {}
    zero_raw = cfg.get("zero_optimization")
    if isinstance(zero_raw, bool):  # DeepSpeed's deprecated form: true is stage 1
        zero: dict[str, Any] = {"stage": int(zero_raw)}
    else:
        zero = _section(path, cfg, "zero_optimization")
    stage = zero.get("stage", 0)
    if isinstance(stage, float) and stage.is_integer():
        stage = int(stage)
    if type(stage) is not int or stage not in (0, 1, 2, 3):
        raise _bad(path, "zero_optimization.stage", stage, "0, 1, 2 or 3")
    out["parallelism"] = "ddp" if stage == 0 else f"zero{stage}"
    devices = {}
    for key, legacy in (("offload_optimizer", "cpu_offload"), ("offload_param", "cpu_offload_param")):
        section = _section(path, zero, key, "zero_optimization.")
        dev = section.get("device", "none")
        if dev is None:
            dev = "none"
        if dev not in ("none", "cpu", "nvme"):
            raise _bad(path, f"zero_optimization.{key}.device", dev, "none, cpu or nvme")
        if dev == "none" and _flag(path, f"zero_optimization.{legacy}", zero.get(legacy)):
            dev = "cpu"  # DeepSpeed's deprecated cpu_offload / cpu_offload_param
        devices[key] = dev
    offloaded = {key: dev != "none" for key, dev in devices.items()}
    if offloaded["offload_param"] and stage != 3:
        raise _bad(path, "zero_optimization.offload_param", "set", "only with stage 3")
    if offloaded["offload_optimizer"]:
        out["offload"] = "optimizer+params" if offloaded["offload_param"] else "optimizer"
    for key, dtype in (("bf16", "bf16"), ("fp16", "fp16")):
        section = _section(path, cfg, key)
        if _flag(path, f"{key}.enabled", section.get("enabled"), auto=True):
            if "dtype" in out:
                raise _bad(path, "fp16.enabled", True, "false when bf16.enabled is true (one precision)")
            out.update(dtype=dtype, precision="deepspeed")
    for key, opt in (("train_micro_batch_size_per_gpu", "batch"), ("gradient_accumulation_steps", "grad_accum")):
        value = cfg.get(key)
        if _given(value):
            out[opt] = _whole(path, key, value, 1, MAX_COUNT, 'a whole number (or "auto")')
    if "nvme" in devices.values():
        out["offload_device"] = "nvme"
    auto = []
    for key, opt in (("stage3_prefetch_bucket_size", "zero_prefetch"), ("stage3_max_live_parameters", "zero_max_live"),
                     ("stage3_param_persistence_threshold", "zero_persistence"), ("reduce_bucket_size", "reduce_bucket")):
        value = zero.get(key)
        if _given(value):
            out[opt] = _whole(path, f"zero_optimization.{key}", value, 0, MAX_ELEMENTS,
                              'a number of elements (or "auto")')
        elif value == "auto" and opt in ZERO_AUTO:
            auto.append(opt)  # the HF Trainer fills it from the model's hidden size (estimators.training.zero_sizes)
    if auto:
        out["zero_auto"] = tuple(sorted(auto))
    return out


_STRATEGIES = {"FULL_SHARD": "fsdp", "1": "fsdp", "SHARD_GRAD_OP": "zero2", "2": "zero2", "NO_SHARD": "ddp",
               "3": "ddp", "HYBRID_SHARD": "fsdp", "4": "fsdp", "HYBRID_SHARD_ZERO2": "zero2", "5": "zero2"}


def from_accelerate_fsdp(path: str) -> dict[str, Any]:
    """Workload options from an accelerate config with ``distributed_type: FSDP`` (or ``DEEPSPEED``)."""
    return _accelerate_options(path, _read(path))


def _accelerate_options(path: str, cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=shown_path(path))
    kind = cfg.get("distributed_type")
    if kind is not None and str(kind).upper() == "DEEPSPEED":
        return _accelerate_deepspeed(path, cfg)
    if kind is not None and str(kind).upper() != "FSDP":
        raise _bad(path, "distributed_type", kind, "FSDP or DEEPSPEED")
    fsdp = cfg.get("fsdp_config", cfg)
    if fsdp is None:
        fsdp = {}
    if not isinstance(fsdp, dict):
        raise _bad(path, "fsdp_config", fsdp, "a mapping")
    raw_strategy = fsdp.get("fsdp_sharding_strategy", "FULL_SHARD")
    if isinstance(raw_strategy, bool) or not isinstance(raw_strategy, (str, int)):
        raise _bad(path, "fsdp_sharding_strategy", raw_strategy,
                   "FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD, HYBRID_SHARD_ZERO2, NO_SHARD or 1-5")
    strategy = str(raw_strategy).strip().upper()
    if strategy not in _STRATEGIES:
        raise _bad(path, "fsdp_sharding_strategy", raw_strategy,
                   "FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD, HYBRID_SHARD_ZERO2, NO_SHARD or 1-5")
    out: dict[str, Any] = {"parallelism": _STRATEGIES[strategy]}
    version = fsdp.get("fsdp_version", 1)  # accelerate's default is FSDP1
    if isinstance(version, bool) or version not in (1, 2, "1", "2"):
        raise _bad(path, "fsdp_version", version, "1 or 2")
    out["fsdp_version"] = int(version)
    reshard = _flag(path, "fsdp_reshard_after_forward", fsdp.get("fsdp_reshard_after_forward"))
    if int(version) == 2 and reshard is False:
        out["parallelism"] = "zero2"  # FSDP2 without resharding after forward keeps parameters gathered: SHARD_GRAD_OP
    prefetch = fsdp.get("fsdp_backward_prefetch")  # accelerate: NO_PREFETCH (default), BACKWARD_PRE, BACKWARD_POST
    if int(version) == 1 and str(prefetch).strip().upper() in ("BACKWARD_PRE", "1"):
        out["fsdp_backward_prefetch"] = "pre"
    if _flag(path, "fsdp_offload_params", fsdp.get("fsdp_offload_params")):
        out["offload"] = "optimizer+params"
    if _flag(path, "fsdp_activation_checkpointing", fsdp.get("fsdp_activation_checkpointing")):
        out["grad_checkpointing"] = True
    n = cfg.get("num_processes")
    if _given(n):
        out["num_gpus"] = _whole(path, "num_processes", n, 1, MAX_COUNT, "a whole number")
    machines = cfg.get("num_machines")
    if _given(machines):
        out["nodes"] = _whole(path, "num_machines", machines, 1, MAX_COUNT, "a whole number")
    if strategy in ("HYBRID_SHARD", "4"):
        out["fsdp_sharding"] = "hybrid"
    mp = _mixed_precision(path, cfg)
    if mp in ("bf16", "fp16"):
        out.update(dtype=mp, precision="mixed")
    return out


def _mixed_precision(path: str, cfg: dict[str, Any]) -> Optional[str]:
    mp = cfg.get("mixed_precision")
    if mp is False:  # an unquoted `no` is YAML's false
        mp = "no"
    if mp not in (None, "no", "bf16", "fp16"):
        raise _bad(path, "mixed_precision", mp, "no, fp16 or bf16")
    return mp


def _accelerate_deepspeed(path: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """An accelerate config with ``distributed_type: DEEPSPEED``: its ``deepspeed_config`` section as the
    DeepSpeed config accelerate builds from it (accelerate 1.15 ``utils/dataclasses.py`` ``DeepSpeedPlugin``:
    ``zero_stage`` 2 by default, ``offload_optimizer_device`` / ``offload_param_device`` "none" by default,
    ``gradient_accumulation_steps``; ``set_mixed_precision`` turns ``mixed_precision`` into ``bf16.enabled`` /
    ``fp16.enabled``), read by the DeepSpeed reader; ``num_processes`` and ``num_machines`` as for FSDP."""
    ds = _section(path, cfg, "deepspeed_config")
    if ds.get("deepspeed_config_file") not in (None, "none"):
        raise _bad(path, "deepspeed_config.deepspeed_config_file", ds["deepspeed_config_file"],
                   "the DeepSpeed config itself (read it with --deepspeed)")
    zero: dict[str, Any] = {"stage": ds.get("zero_stage", 2)}
    for key, section in (("offload_optimizer_device", "offload_optimizer"), ("offload_param_device", "offload_param")):
        if ds.get(key) is not None:
            zero[section] = {"device": ds[key]}
    built: dict[str, Any] = {"zero_optimization": zero}
    if ds.get("gradient_accumulation_steps") is not None:
        built["gradient_accumulation_steps"] = ds["gradient_accumulation_steps"]
    mp = _mixed_precision(path, cfg)
    if mp in ("bf16", "fp16"):
        built[mp] = {"enabled": True}
    try:
        out = _deepspeed_options(path, built)
    except VramscopeError as e:  # name the key as the accelerate config spells it
        if e.key == "config_bad_value":
            spelled = {"zero_optimization.stage": "zero_stage",
                       "zero_optimization.offload_optimizer.device": "offload_optimizer_device",
                       "zero_optimization.offload_param.device": "offload_param_device",
                       "zero_optimization.offload_param": "offload_param_device"}
            key = e.params["key"]
            e.params["key"] = "deepspeed_config." + spelled.get(key, key)
            raise VramscopeError(e.key, **e.params) from None
        raise
    for key, opt in (("num_processes", "num_gpus"), ("num_machines", "nodes")):
        n = cfg.get(key)
        if _given(n):
            out[opt] = _whole(path, key, n, 1, MAX_COUNT, "a whole number")
    return out


# ---- training recipes people already have: axolotl, LLaMA-Factory, TRL / TrainingArguments, torchtune ----------
#
# Each reader maps the fields that change memory to vramscope's options and lists every other top-level field as
# ignored (``TrainingConfig.ignored``); fields that change memory in a way vramscope does not model are listed
# apart (``unmodelled``). Field names and defaults were read in:
#
# * axolotl: ``src/axolotl/utils/schemas/config.py`` (AxolotlInputConfig) and its ``peft.py``/``training.py``:
#   ``base_model``, ``adapter`` (lora/qlora), ``load_in_4bit``/``load_in_8bit``, ``lora_r``, ``lora_alpha``,
#   ``lora_dropout``, ``lora_target_modules``/``lora_target_linear``, ``sequence_len``, ``sample_packing``,
#   ``micro_batch_size``, ``gradient_accumulation_steps``, ``gradient_checkpointing`` (true, or "offload":
#   activations to the CPU), ``optimizer``, ``bf16``/``fp16``, ``flash_attention``/``sdp_attention``,
#   ``deepspeed``, ``fsdp``/``fsdp_config``, ``torch_compile``.
# * LLaMA-Factory: ``src/llamafactory/hparams/model_args.py``, ``finetuning_args.py``, ``data_args.py``:
#   ``finetuning_type`` (default lora), ``lora_rank`` (8), ``lora_target`` (all), ``quantization_bit``,
#   ``cutoff_len`` (2048), ``packing``, ``disable_gradient_checkpointing`` (default False: checkpointing on),
#   ``flash_attn``, ``pure_bf16``, ``use_dora``, and the TrainingArguments below.
# * TRL ``SFTConfig`` (``trl/trainer/sft_config.py``): ``max_length`` (1024; ``max_seq_length`` before TRL 0.20),
#   ``packing``, ``activation_offloading``, and defaults that differ from TrainingArguments: gradient checkpointing
#   on, bf16 on unless fp16; TRL's ``ModelConfig``: ``model_name_or_path``, ``use_peft``, ``lora_r``,
#   ``lora_target_modules``, ``load_in_4bit``. A file with none of the SFT fields is read as plain
#   ``transformers.TrainingArguments`` (``per_device_train_batch_size`` 8, checkpointing off, fp32).
# * torchtune recipe configs (``recipes/configs/*/*.yaml``): ``model._component_`` (``torchtune.models.<family>.
#   [q]lora_<family>_<size>``) with ``lora_rank``/``lora_alpha``/``lora_attn_modules``/``apply_lora_to_mlp``,
#   ``tokenizer.max_seq_len``, ``dataset.packed``, ``batch_size``, ``gradient_accumulation_steps``,
#   ``enable_activation_checkpointing``, ``enable_activation_offloading``, ``optimizer._component_``,
#   ``optimizer_in_bwd``, ``dtype``, ``compile``, ``loss._component_`` (CEWithChunkedOutputLoss: 8 chunks),
#   ``fsdp_cpu_offload``.

#: optimizer names of TrainingArguments.optim (transformers OptimizerNames), axolotl and LLaMA-Factory (``optim``)
_HF_OPTIM = {"adamw_torch": "adamw", "adamw_hf": "adamw", "adamw": "adamw", "adamw_torch_fused": "adamw-fused",
             "adamw_apex_fused": "adamw-fused", "adamw_bnb_8bit": "adamw-8bit", "adamw_8bit": "adamw-8bit",
             "paged_adamw_8bit": "paged-adamw-8bit", "paged_adamw_32bit": "paged-adamw", "paged_adamw": "paged-adamw",
             "sgd": "sgd", "adafactor": "adafactor", "lion_32bit": "lion", "lion_8bit": "lion", "adam": "adam"}
_TORCHTUNE_OPTIM = {"torch.optim.AdamW": "adamw", "torch.optim.Adam": "adam", "torch.optim.SGD": "sgd",
                    "bitsandbytes.optim.PagedAdamW8bit": "paged-adamw-8bit", "bitsandbytes.optim.AdamW8bit": "adamw-8bit",
                    "bitsandbytes.optim.PagedAdamW": "paged-adamw", "torchao.optim.AdamW8bit": "adamw-8bit"}
#: torchtune model builder families -> catalog names (``torchtune.models.llama3_1.lora_llama3_1_8b``)
_TORCHTUNE_FAMILY = (("llama3_3", "llama-3.3"), ("llama3_2", "llama-3.2"), ("llama3_1", "llama-3.1"),
                     ("llama3", "llama-3"), ("llama2", "llama-2"), ("qwen2_5", "qwen2.5"), ("qwen3", "qwen3"),
                     ("qwen2", "qwen2"), ("gemma2", "gemma-2"), ("gemma", "gemma"), ("mistral", "mistral"),
                     ("phi3", "phi-3"), ("phi4", "phi-4"))


_TORCHTUNE_MODULES = {"output_proj": "o_proj", "w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}


class TrainingConfig:
    """A training recipe read into vramscope's terms."""

    def __init__(self, fmt: str, path: str) -> None:
        self.format = fmt
        self.path = path
        self.model: Optional[str] = None
        self.options: dict[str, Any] = {}
        self.ignored: list[str] = []
        self.unmodelled: list[str] = []

    def __repr__(self) -> str:
        return f"TrainingConfig({self.format!r}, model={self.model!r}, options={self.options!r})"


def _text_field(path: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise _bad(path, key, value, "a name or path")
    return value.strip()


def _targets(path: str, key: str, value: Any) -> Any:
    if isinstance(value, str):
        return "all-linear" if value.strip().lower() in ("all", "all-linear", "all_linear") else value
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return [v for v in value]
    raise _bad(path, key, value, "module names (q_proj,v_proj) or all")


def _optim(cfg: TrainingConfig, key: str, value: Any) -> None:
    name = str(value).strip().lower()
    if name in _HF_OPTIM:
        cfg.options["optimizer"] = _HF_OPTIM[name]
    else:
        cfg.unmodelled.append(f"{key}: {shown(value)}")


def _relative(path: str, other: str) -> str:
    import os

    if os.path.isabs(other):
        return other
    here = os.path.join(os.path.dirname(path), other)
    return here if os.path.exists(here) else other


def _merge_deepspeed(cfg: TrainingConfig, key: str, value: Any) -> None:
    if isinstance(value, dict):
        raise _bad(cfg.path, key, "{...}", "the path of a DeepSpeed JSON file")
    ds = from_deepspeed(_relative(cfg.path, _text_field(cfg.path, key, value)))
    for k, v in ds.items():
        cfg.options.setdefault(k, v)


def _precision(cfg: TrainingConfig, bf16: Any, fp16: Any, key_bf16: str = "bf16", key_fp16: str = "fp16") -> None:
    b = _flag(cfg.path, key_bf16, bf16, auto=True) if bf16 is not None else None
    f = _flag(cfg.path, key_fp16, fp16, auto=True) if fp16 is not None else None
    if bf16 == "auto":
        b = True  # axolotl: bf16 where the GPU has it (Ampere and newer)
    if b and f:
        raise _bad(cfg.path, key_fp16, fp16, "false when bf16 is true (one precision)")
    if b:
        cfg.options["dtype"] = "bf16"
    elif f:
        cfg.options["dtype"] = "fp16"


def _apply(cfg: TrainingConfig, raw: dict[str, Any], table: dict[str, Any], unmodelled: tuple[str, ...] = ()) -> None:
    """Every top-level key: a handler of ``table`` (an option name or a function), unmodelled, or ignored."""
    for key, value in raw.items():
        if key in table:
            h = table[key]
            if value is None:
                continue
            if callable(h):
                h(cfg, key, value)
            else:
                opt, kind = h
                if kind == "int":
                    cfg.options[opt] = _whole(cfg.path, key, value, 1, MAX_COUNT, "a whole number")
                elif kind == "bool":
                    flag = _flag(cfg.path, key, value)
                    if flag is not None:
                        cfg.options[opt] = flag
                elif kind == "float":
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                        raise _bad(cfg.path, key, value, "a number")
                    cfg.options[opt] = float(value)
                else:
                    cfg.options[opt] = value
        elif key in unmodelled:
            cfg.unmodelled.append(key)
        else:
            cfg.ignored.append(key)


def _axolotl(cfg: TrainingConfig, raw: dict[str, Any]) -> None:
    def base(c: TrainingConfig, k: str, v: Any) -> None:
        c.model = _text_field(c.path, k, v)

    def adapter(c: TrainingConfig, k: str, v: Any) -> None:
        a = str(v).strip().lower()
        if a not in ("lora", "qlora"):
            raise _bad(c.path, k, v, "lora or qlora")
        c.options["method"] = a

    def gc(c: TrainingConfig, k: str, v: Any) -> None:
        if isinstance(v, str) and v.strip().lower() in ("offload", "offload_disk", "unsloth"):
            c.options.update(grad_checkpointing=True, activation_offload=v.strip().lower() != "unsloth")
        else:
            flag = _flag(c.path, k, v)
            if flag is not None:
                c.options["grad_checkpointing"] = flag

    def attn(name: str) -> Any:
        def h(c: TrainingConfig, k: str, v: Any) -> None:
            if _flag(c.path, k, v):
                c.options["attn"] = name
        return h

    def fsdp(c: TrainingConfig, k: str, v: Any) -> None:
        if v:
            c.options["parallelism"] = "fsdp"

    def fsdp_config(c: TrainingConfig, k: str, v: Any) -> None:
        if isinstance(v, dict):
            if _flag(c.path, f"{k}.fsdp_offload_params", v.get("fsdp_offload_params", v.get("offload_params"))):
                c.options["offload"] = "optimizer+params"
            version = v.get("fsdp_version", v.get("version"))
            if version in (1, 2):
                c.options["fsdp_version"] = version
            c.options.setdefault("parallelism", "fsdp")

    table = {
        "base_model": base, "adapter": adapter, "lora_r": ("lora_rank", "int"), "lora_alpha": ("lora_alpha", "float"),
        "lora_dropout": ("lora_dropout", "float"),
        "lora_target_modules": lambda c, k, v: c.options.__setitem__("lora_targets", _targets(c.path, k, v)),
        "lora_target_linear": lambda c, k, v: _flag(c.path, k, v) and c.options.__setitem__("lora_targets",
                                                                                             "all-linear"),
        "sequence_len": ("seq", "int"), "sample_packing": ("packing", "bool"), "micro_batch_size": ("batch", "int"),
        "gradient_accumulation_steps": ("grad_accum", "int"), "gradient_checkpointing": gc, "optimizer": _optim,
        "flash_attention": attn("flash"), "sdp_attention": attn("sdpa"), "deepspeed": _merge_deepspeed,
        "fsdp": fsdp, "fsdp_config": fsdp_config, "torch_compile": ("compile", "bool"),
        "load_in_4bit": lambda c, k, v: None, "load_in_8bit": lambda c, k, v: None, "bf16": lambda c, k, v: None,
        "fp16": lambda c, k, v: None, "peft_use_dora": ("dora", "bool"),
    }
    # axolotl's Liger plugin switches (integrations/liger/args.py) -> vramscope's kernels
    for key, kernel in (("liger_fused_linear_cross_entropy", "flce"), ("liger_rms_norm", "rms-norm"),
                        ("liger_glu_activation", "swiglu"), ("liger_swiglu", "swiglu"), ("liger_rope", "rope")):
        table[key] = (lambda kern: lambda c, k, v: _flag(c.path, k, v) and c.options.__setitem__(
            "liger", tuple(dict.fromkeys(c.options.get("liger", ()) + (kern,)))))(kernel)
    _apply(cfg, raw, table, unmodelled=("unfrozen_parameters", "lora_modules_to_save", "relora", "xformers_attention",
                                        "gradient_checkpointing_kwargs", "sequence_parallel_degree", "chunked_cross_entropy",
                                        "cut_cross_entropy"))
    cfg.options.setdefault("framework", "axolotl")
    _precision(cfg, raw.get("bf16"), raw.get("fp16"))
    if _flag(cfg.path, "load_in_4bit", raw.get("load_in_4bit")):
        cfg.options.setdefault("method", "qlora")
    elif _flag(cfg.path, "load_in_8bit", raw.get("load_in_8bit")):
        cfg.options["quant"] = "int8"
    cfg.options.setdefault("method", "full")


def _trainer_fields(cfg: TrainingConfig) -> dict[str, Any]:
    """transformers TrainingArguments fields (shared by TRL and LLaMA-Factory)."""
    return {
        "per_device_train_batch_size": ("batch", "int"), "gradient_accumulation_steps": ("grad_accum", "int"),
        "gradient_checkpointing": ("grad_checkpointing", "bool"), "optim": _optim, "deepspeed": _merge_deepspeed,
        "bf16": lambda c, k, v: None, "fp16": lambda c, k, v: None,
        "torch_compile": ("compile", "bool"),
        "fsdp": lambda c, k, v: v and c.options.__setitem__("parallelism", "fsdp"),
    }


def _llamafactory(cfg: TrainingConfig, raw: dict[str, Any]) -> None:
    def model(c: TrainingConfig, k: str, v: Any) -> None:
        c.model = _text_field(c.path, k, v)

    def ftype(c: TrainingConfig, k: str, v: Any) -> None:
        t = str(v).strip().lower()
        if t not in ("lora", "freeze", "full", "oft"):
            raise _bad(c.path, k, v, "lora, freeze or full")
        if t == "oft":
            c.unmodelled.append(f"{k}: oft")
        else:
            c.options["method"] = t

    def qbit(c: TrainingConfig, k: str, v: Any) -> None:
        if v not in (4, 8, 2, 3, 5, 6):
            raise _bad(c.path, k, v, "4 or 8")
        c.options["_qbit"] = v

    def stage(c: TrainingConfig, k: str, v: Any) -> None:
        s = str(v).strip().lower()
        if s not in ("sft", "pt"):
            c.unmodelled.append(f"stage: {s} (its reference/reward models)")

    def attn(c: TrainingConfig, k: str, v: Any) -> None:
        a = str(v).strip().lower()
        c.options["attn"] = {"fa2": "flash", "fa3": "flash", "sdpa": "sdpa", "disabled": "eager"}.get(a, "sdpa")

    table = dict(_trainer_fields(cfg))
    table.update({
        "model_name_or_path": model, "finetuning_type": ftype, "lora_rank": ("lora_rank", "int"),
        "lora_alpha": ("lora_alpha", "float"), "lora_dropout": ("lora_dropout", "float"),
        "lora_target": lambda c, k, v: c.options.__setitem__(
            "lora_targets", _targets(c.path, k, v.split(",") if isinstance(v, str) and "," in v else v)),
        "quantization_bit": qbit, "cutoff_len": ("seq", "int"), "packing": ("packing", "bool"),
        "disable_gradient_checkpointing": lambda c, k, v: c.options.__setitem__(
            "grad_checkpointing", not _flag(c.path, k, v)),
        "flash_attn": attn, "use_dora": ("dora", "bool"), "stage": stage,
        "pure_bf16": lambda c, k, v: _flag(c.path, k, v) and c.options.update(dtype="bf16", precision="pure"),
    })
    # enable_liger_kernel: apply_liger_kernel_to_<model>() with Liger's defaults (rope, rms_norm, swiglu, fused
    # linear cross-entropy) when the logits are not needed (model/model_utils/liger_kernel.py)
    table["enable_liger_kernel"] = lambda c, k, v: _flag(c.path, k, v) and c.options.__setitem__(
        "liger", ("flce", "rms-norm", "swiglu", "rope"))
    _apply(cfg, raw, table, unmodelled=("use_unsloth", "use_unsloth_gc", "freeze_trainable_layers",
                                        "freeze_trainable_modules", "additional_target", "use_galore", "use_badam",
                                        "use_apollo", "neftune_noise_alpha", "sequence_parallel_size"))
    cfg.options.setdefault("framework", "llamafactory")
    cfg.options.setdefault("method", "lora")  # finetuning_type's default
    cfg.options.setdefault("grad_checkpointing", True)  # disable_gradient_checkpointing defaults to False
    cfg.options.setdefault("seq", 2048)  # cutoff_len's default
    qbit_value = cfg.options.pop("_qbit", None)
    if qbit_value == 4:
        if cfg.options["method"] == "lora":
            cfg.options["method"] = "qlora"
    elif qbit_value == 8:
        cfg.options["quant"] = "int8"
    elif qbit_value is not None:
        cfg.unmodelled.append(f"quantization_bit: {qbit_value}")
    if "precision" not in cfg.options:
        _precision(cfg, raw.get("bf16"), raw.get("fp16"))
    cfg.options.setdefault("batch", 8)  # TrainingArguments.per_device_train_batch_size


_SFT_FIELDS = ("max_length", "max_seq_length", "packing", "dataset_text_field", "completion_only_loss",
               "assistant_only_loss", "padding_free", "use_peft", "lora_r", "activation_offloading")


def _trl(cfg: TrainingConfig, raw: dict[str, Any]) -> None:
    sft = any(k in raw for k in _SFT_FIELDS)
    cfg.format = "trl-sft" if sft else "training-arguments"

    def model(c: TrainingConfig, k: str, v: Any) -> None:
        c.model = _text_field(c.path, k, v)

    table = dict(_trainer_fields(cfg))
    table.update({
        "model_name_or_path": model, "max_length": ("seq", "int"), "max_seq_length": ("seq", "int"),
        "packing": ("packing", "bool"), "activation_offloading": ("activation_offload", "bool"),
        "use_peft": lambda c, k, v: _flag(c.path, k, v) and c.options.setdefault("method", "lora"),
        "lora_r": ("lora_rank", "int"), "lora_alpha": ("lora_alpha", "float"),
        "lora_dropout": ("lora_dropout", "float"),
        "lora_target_modules": lambda c, k, v: c.options.__setitem__("lora_targets", _targets(c.path, k, v)),
        "load_in_4bit": lambda c, k, v: _flag(c.path, k, v) and c.options.__setitem__("method", "qlora"),
        "load_in_8bit": lambda c, k, v: _flag(c.path, k, v) and c.options.__setitem__("quant", "int8"),
        "use_dora": ("dora", "bool"),
        "attn_implementation": lambda c, k, v: c.options.__setitem__(
            "attn", {"flash_attention_2": "flash", "flash_attention_3": "flash", "sdpa": "sdpa",
                     "eager": "eager"}.get(str(v), "sdpa")),
    })
    _apply(cfg, raw, table, unmodelled=("use_liger_kernel", "fsdp_config", "loss_type", "model_init_kwargs",
                                        "torch_dtype", "dtype"))
    if "load_in_4bit" in raw and cfg.options.get("method") == "qlora" and not raw.get("use_peft", True):
        cfg.options["method"] = "qlora"
    cfg.options.setdefault("batch", 8)  # TrainingArguments.per_device_train_batch_size
    if sft:
        cfg.options.setdefault("grad_checkpointing", True)  # SFTConfig overrides TrainingArguments' False
        cfg.options.setdefault("seq", 1024)  # SFTConfig.max_length
        fp16 = raw.get("fp16")
        _precision(cfg, raw.get("bf16", None if _flag(cfg.path, "fp16", fp16) else True), fp16)
    else:
        _precision(cfg, raw.get("bf16"), raw.get("fp16"))
    cfg.options.setdefault("method", "full")


def _torchtune_model(cfg: TrainingConfig, component: str) -> None:
    m = re.fullmatch(r"torchtune\.models\.(\w+)\.(?:(q?lora)_)?(\w+)", component)
    if not m:
        cfg.unmodelled.append(f"model._component_: {shown(component)}")
        return
    method, builder = m.group(2), m.group(3)
    cfg.options["method"] = method or "full"
    name = builder
    for prefix, family in _TORCHTUNE_FAMILY:
        if name.startswith(prefix + "_"):
            size = name[len(prefix) + 1:].replace("_instruct", "").replace("_base", "").replace("_", ".")
            name = f"{family}-{size}"
            break
    cfg.model = name


def _torchtune(cfg: TrainingConfig, raw: dict[str, Any]) -> None:
    cfg.options["framework"] = "torchtune"

    def model(c: TrainingConfig, k: str, v: Any) -> None:
        if not isinstance(v, dict):
            raise _bad(c.path, k, v, "a mapping with _component_")
        comp = v.get("_component_")
        if isinstance(comp, str):
            _torchtune_model(c, comp)
        if v.get("lora_rank") is not None:
            c.options["lora_rank"] = _whole(c.path, "model.lora_rank", v["lora_rank"], 1, MAX_COUNT, "a whole number")
        if isinstance(v.get("lora_alpha"), (int, float)) and not isinstance(v.get("lora_alpha"), bool):
            c.options["lora_alpha"] = float(v["lora_alpha"])
        if isinstance(v.get("lora_dropout"), (int, float)) and not isinstance(v.get("lora_dropout"), bool):
            c.options["lora_dropout"] = float(v["lora_dropout"])
        mods = v.get("lora_attn_modules")
        if isinstance(mods, list) and mods:  # torchtune's module names in transformers' (output_proj: o_proj)
            names = [_TORCHTUNE_MODULES.get(str(x), str(x)) for x in mods]
            if _flag(c.path, "model.apply_lora_to_mlp", v.get("apply_lora_to_mlp")):
                names += ["gate_proj", "up_proj", "down_proj"]  # w1, w3, w2
            if _flag(c.path, "model.apply_lora_to_output", v.get("apply_lora_to_output")):
                names.append("lm_head")
            c.options["lora_targets"] = names

    def tokenizer(c: TrainingConfig, k: str, v: Any) -> None:
        if isinstance(v, dict) and v.get("max_seq_len") is not None:
            c.options["seq"] = _whole(c.path, "tokenizer.max_seq_len", v["max_seq_len"], 1, 100_000_000, "a length")

    def dataset(c: TrainingConfig, k: str, v: Any) -> None:
        items = v if isinstance(v, list) else [v]
        if any(isinstance(d, dict) and _flag(c.path, "dataset.packed", d.get("packed")) for d in items):
            c.options["packing"] = True

    def optimizer(c: TrainingConfig, k: str, v: Any) -> None:
        comp = v.get("_component_") if isinstance(v, dict) else None
        if comp in _TORCHTUNE_OPTIM:
            name = _TORCHTUNE_OPTIM[comp]
            if name == "adamw" and isinstance(v, dict) and v.get("fused"):
                name = "adamw-fused"
            c.options["optimizer"] = name
        elif comp is not None:
            c.unmodelled.append(f"optimizer._component_: {shown(comp)}")

    def loss(c: TrainingConfig, k: str, v: Any) -> None:
        comp = v.get("_component_") if isinstance(v, dict) else None
        if isinstance(comp, str) and comp.endswith("CEWithChunkedOutputLoss"):
            c.options["ce_chunks"] = 8  # num_output_chunks' default
        elif isinstance(comp, str) and comp.endswith("LinearCrossEntropyLoss"):
            c.options["ce_chunks"] = 8
            c.unmodelled.append(f"loss._component_: {comp} (its chunking)")

    def dtype(c: TrainingConfig, k: str, v: Any) -> None:
        d = str(v).strip().lower()
        if d not in ("bf16", "fp32", "fp16"):
            raise _bad(c.path, k, v, "bf16 or fp32")
        c.options["dtype"] = d

    table = {"model": model, "tokenizer": tokenizer, "dataset": dataset, "optimizer": optimizer, "loss": loss,
             "dtype": dtype, "batch_size": ("batch", "int"), "gradient_accumulation_steps": ("grad_accum", "int"),
             "enable_activation_checkpointing": ("grad_checkpointing", "bool"),
             "enable_activation_offloading": ("activation_offload", "bool"),
             "optimizer_in_bwd": ("optimizer_in_backward", "bool"), "compile": ("compile", "bool"),
             "fsdp_cpu_offload": lambda c, k, v: _flag(c.path, k, v) and c.options.__setitem__(
                 "offload", "optimizer+params")}
    _apply(cfg, raw, table, unmodelled=("ac_mode", "ac_option", "quantizer", "custom_sharded_layers",
                                        "tensor_parallel_dim", "data_parallel_shard_dim"))


def _litgpt(cfg: TrainingConfig, raw: dict[str, Any]) -> None:
    """A LitGPT ``litgpt finetune`` YAML (config_hub/finetune/*/*.yaml): ``setup()``'s arguments (``litgpt_args``);
    the method from ``quantize`` and the LoRA fields (a config without ``lora_r`` is full fine-tuning's)."""
    from . import litgpt_args
    from .frameworks import litgpt_model

    method = "lora" if any(k.startswith("lora_") for k in raw) else "full"
    given = {k: v for k, v in litgpt_args.flatten(raw).items() if v is not None}  # `quantize:` empty is unset
    checkpoint, options, ignored, unmodelled, unknown = litgpt_args.read(method, given)
    cfg.options.update(options)
    cfg.ignored += [x.lstrip("-") for x in ignored] + [x.lstrip("-") for x in unknown]
    cfg.unmodelled += unmodelled
    if checkpoint:
        cfg.model = litgpt_model(str(checkpoint)) or str(checkpoint)


def detect_training_format(raw: dict[str, Any]) -> Optional[str]:
    """Which tool wrote a training config, from the keys only that tool uses."""
    def has_component(v: Any) -> bool:
        return isinstance(v, dict) and "_component_" in v
    if any(has_component(v) for v in raw.values()):
        return "torchtune"
    if "checkpoint_dir" in raw and isinstance(raw.get("train"), dict):
        return "litgpt"
    if "base_model" in raw or "micro_batch_size" in raw or "sequence_len" in raw:
        return "axolotl"
    if "finetuning_type" in raw or "cutoff_len" in raw or ("stage" in raw and "template" in raw):
        return "llama-factory"
    if "per_device_train_batch_size" in raw or any(k in raw for k in _SFT_FIELDS) or "model_name_or_path" in raw:
        return "trl"
    return None


def from_training_config(path: str, fmt: Optional[str] = None) -> TrainingConfig:
    """An axolotl, LLaMA-Factory, TRL/TrainingArguments (JSON or YAML) or torchtune config, read bounded (64 KiB
    YAML through PyYAML's safe loader, imported only here; 1 MB JSON) into vramscope's options."""
    raw = _read(path)
    if not isinstance(raw, dict):
        raise VramscopeError("config_not_object", origin=shown_path(path))
    kind = fmt or detect_training_format(raw)
    if kind is None:
        raise VramscopeError("config_unknown_training", origin=shown_path(path))
    cfg = TrainingConfig(kind, path)
    {"torchtune": _torchtune, "axolotl": _axolotl, "llama-factory": _llamafactory, "trl": _trl,
     "litgpt": _litgpt}[kind](cfg, raw)
    cfg.options.setdefault("task", "finetune")
    return cfg


# ---------------------------------------------------------------- torchtitan TOML job config

#: torchtitan's pipeline schedules (torch.distributed.pipelining) vramscope models, by their names in the config
_TT_SCHEDULES = {"1f1b": "1f1b", "gpipe": "gpipe", "interleaved1f1b": "interleaved"}


def _toml(path: str, raw: bytes) -> dict[str, Any]:
    """The TOML document: ``tomllib`` (Python 3.11+), else the ``tomli`` package, else a clear message."""
    try:
        import tomllib as toml_reader
    except ImportError:  # Python 3.10
        try:
            import tomli as toml_reader  # type: ignore[no-redef]
        except ImportError:
            raise VramscopeError("config_needs_tomli", origin=shown_path(path)) from None
    try:
        return toml_reader.loads(decode_text(raw))
    except (toml_reader.TOMLDecodeError, RecursionError) as e:
        raise VramscopeError("config_bad_toml", origin=shown_path(path), detail=shown(str(e))) from None


def _degree(path: str, section: dict[str, Any], key: str, allow_auto: bool = False) -> int:
    value = section.get(key, 1)
    if allow_auto and value == -1:
        return -1
    return _whole(path, f"parallelism.{key}", value, 1, MAX_COUNT, "a whole number" + (" (or -1)" if allow_auto else ""))


def from_torchtitan(path: str) -> dict[str, Any]:
    """Workload options from a torchtitan TOML job config, in the schema of torchtitan's ``JobConfig``
    (``torchtitan/config/job_config.py`` at 238fa99, the last release of the TOML configs, e.g.
    ``torchtitan/models/llama3/train_configs/llama3_70b.toml``): ``training.local_batch_size``, ``seq_len``,
    ``dtype`` (float32 with ``mixed_precision_param = bfloat16``: FSDP mixed precision; bfloat16: pure bf16);
    ``parallelism.*_degree`` (``data_parallel_shard_degree = -1``: the rest of the world, so ``--gpus`` says it),
    ``data_parallel_replicate_degree`` > 1 with sharding (HSDP: hybrid sharding over that many replicas),
    ``fsdp_reshard_after_forward = "never"``, ``pipeline_parallel_schedule`` (1F1B, GPipe, Interleaved1F1B);
    ``activation_checkpoint.mode`` (none, full, selective with ``selective_ac_option`` "op" or every N-th
    layer; its default is selective every 2nd layer); ``compile.enable`` and ``compile.components``;
    ``model.converters`` with "float8" and ``quantize.linear.float8`` (``recipe_name``, ``enable_fsdp_float8_all_gather``); ``parallelism.enable_async_tensor_parallel`` (``compile.`` in 0.3.0). Tensor parallelism comes
    with sequence parallelism, as torchtitan's TP plan always shards the norms. The loop is torchtitan's."""
    if not isinstance(path, str) or not path.strip():
        raise VramscopeError("path_empty")
    cfg = _toml(path, read_limited(path, MAX_BYTES))
    out: dict[str, Any] = {"framework": "torchtitan", "task": "pretrain"}
    for section in (_tt_training, _tt_parallelism, _tt_checkpointing, _tt_converters):
        section(path, cfg, out)
    return out


def _tt_training(path: str, cfg: dict, out: dict[str, Any]) -> None:
    """torchtitan's ``[training]``: batch, sequence, dtype and the FSDP mixed-precision parameter dtype."""
    training = _section(path, cfg, "training")
    for key, opt in (("local_batch_size", "batch"), ("seq_len", "seq")):
        if key in training:
            out[opt] = _whole(path, f"training.{key}", training[key], 1, MAX_ELEMENTS, "a whole number")
    dtype = training.get("dtype", "float32")
    if dtype not in ("float32", "bfloat16"):
        raise _bad(path, "training.dtype", dtype, "float32 or bfloat16")
    param = training.get("mixed_precision_param", "bfloat16")
    if param not in ("float32", "bfloat16"):
        raise _bad(path, "training.mixed_precision_param", param, "float32 or bfloat16")
    if dtype == "bfloat16":
        out.update(dtype="bf16", precision="pure")
    elif param == "bfloat16":
        out.update(dtype="bf16", precision="mixed")
    else:
        out["precision"] = "fp32"


def _tt_parallelism(path: str, cfg: dict, out: dict[str, Any]) -> None:
    """torchtitan's ``[parallelism]``: the degrees, FSDP/HSDP/DDP, resharding and the pipeline schedule."""
    par = _section(path, cfg, "parallelism")
    shard = _degree(path, par, "data_parallel_shard_degree", allow_auto=True) if "data_parallel_shard_degree" in par \
        else -1
    replicate = _degree(path, par, "data_parallel_replicate_degree")
    tp, pp, cp, ep = (_degree(path, par, f"{k}_parallel_degree") for k in ("tensor", "pipeline", "context", "expert"))
    for opt, n in (("tp", tp), ("pp", pp), ("sp", cp), ("ep", ep)):
        if n > 1:
            out[opt] = n
    if tp > 1:  # torchtitan's TP plan shards the norms with SequenceParallel() (models/llama3/infra/parallelize.py)
        out["sequence_parallel"] = True
        # the TOML release's switch (v0.2.2 distributed/tensor_parallel.py maybe_enable_async_tp); 0.3.0 moved it
        # to [compile] (_tt_converters)
        if _flag(path, "parallelism.enable_async_tensor_parallel", par.get("enable_async_tensor_parallel")):
            out["async_tp"] = True
    if shard != 1:
        out["parallelism"] = "fsdp"
        if replicate > 1:
            out.update(fsdp_sharding="hybrid", nodes=replicate)
        # torchtitan (b5bcd76) distributed/fsdp.py get_fsdp_reshard_after_forward_policy: "always" -> True,
        # "never" -> False, "default" -> ``not pp_enabled``. Under PP both "default" and "never" are False, the
        # stage kept gathered as the pipeline stage models it (memory/pipeline.py pipeline_stages ``unsharded``);
        # "always" under PP: every micro-batch's forward reshards, its backward gathers again
        # (pipeline_stages ``reshard_after_forward``)
        reshard = par.get("fsdp_reshard_after_forward", "default")
        if reshard not in ("default", "always", "never"):
            raise _bad(path, "parallelism.fsdp_reshard_after_forward", reshard, "default, always or never")
        if reshard == "always" and pp > 1:
            out["pp_reshard_after_forward"] = True
        if reshard == "never" and pp == 1:
            out["parallelism"] = "zero2"  # parameters stay gathered after forward: SHARD_GRAD_OP
    elif replicate > 1:
        out["parallelism"] = "ddp"
    if shard > 0:
        out["num_gpus"] = shard * replicate * tp * pp * cp
    schedule = par.get("pipeline_parallel_schedule")
    if schedule is not None and pp > 1:
        key = str(schedule).strip().lower()
        if key not in _TT_SCHEDULES:
            raise _bad(path, "parallelism.pipeline_parallel_schedule", schedule, "1F1B, GPipe or Interleaved1F1B")
        out["pp_schedule"] = _TT_SCHEDULES[key]


def _tt_checkpointing(path: str, cfg: dict, out: dict[str, Any]) -> None:
    """torchtitan's ``[activation_checkpoint]`` (its default: selective, every 2nd layer)."""
    ac = _section(path, cfg, "activation_checkpoint")
    mode = ac.get("mode", "selective")
    if mode == "none":
        out["grad_checkpointing"] = False
    elif mode == "full":
        out["grad_checkpointing"] = True
    elif mode == "selective":
        option = str(ac.get("selective_ac_option", "2")).strip()
        if option == "op":
            out["grad_checkpointing"] = "op"
        else:
            out["checkpoint_every"] = _whole(path, "activation_checkpoint.selective_ac_option",
                                             int(option) if option.isdigit() else option, 1, MAX_COUNT,
                                             '"op" or a whole number')
    else:
        raise _bad(path, "activation_checkpoint.mode", mode, "none, full or selective (memory_budget is the "
                                                             "compiler's partitioner, not modelled)")


def _tt_converters(path: str, cfg: dict, out: dict[str, Any]) -> None:
    """torchtitan's ``[compile]`` and the float8 converter of ``[model]`` / ``[quantize.linear.float8]``."""
    compile_ = _section(path, cfg, "compile")
    enabled = _flag(path, "compile.enable", compile_.get("enable"))
    if enabled:
        out["compile"] = True
    parts = compile_.get("components")
    if parts is not None and enabled:  # what torch.compile covers (its default: ["model", "loss"])
        if isinstance(parts, str):
            parts = [c.strip() for c in parts.split(",")]
        if not isinstance(parts, list) or not parts or any(c not in ("model", "loss") for c in parts):
            raise _bad(path, "compile.components", parts, '"model", "loss" or both')
        out["compile_components"] = ",".join(c for c in ("model", "loss") if c in parts)
    # torchtitan 0.3.0 CompileConfig.enable_async_tensor_parallel (distributed/compile.py _maybe_enable_async_tp)
    if _flag(path, "compile.enable_async_tensor_parallel", compile_.get("enable_async_tensor_parallel")):
        out["async_tp"] = True
    converters = _section(path, cfg, "model").get("converters", [])
    if isinstance(converters, str):
        converters = [c.strip() for c in converters.split(",")]
    if not isinstance(converters, list):
        raise _bad(path, "model.converters", converters, "a list of converter names")
    if any(c in ("float8", "quantize.linear.float8") for c in converters):
        f8 = _section(path, _section(path, _section(path, cfg, "quantize"), "linear", "quantize."), "float8",
                      "quantize.linear.")
        recipe = f8.get("recipe_name") or "tensorwise"
        if recipe not in ("tensorwise", "rowwise", "rowwise_with_gw_hp"):
            raise _bad(path, "quantize.linear.float8.recipe_name", recipe, "tensorwise, rowwise or rowwise_with_gw_hp")
        out["float8"] = recipe
        if _flag(path, "quantize.linear.float8.enable_fsdp_float8_all_gather", f8.get("enable_fsdp_float8_all_gather")):
            out["fsdp_float8_all_gather"] = True


# ---------------------------------------------------------------- Megatron-LM arguments

#: Megatron-LM's integer arguments (megatron/training/arguments.py) that change memory, and their options
_MEGATRON_INTS = {"--micro-batch-size": "batch", "--seq-length": "seq", "--tensor-model-parallel-size": "tp",
                  "--pipeline-model-parallel-size": "pp", "--context-parallel-size": "sp",
                  "--expert-model-parallel-size": "ep", "--recompute-num-layers": "recompute_num_layers",
                  "--fp8-amax-history-len": "fp8_amax_history_len"}
#: Megatron-LM arguments whose value is a word
_MEGATRON_WORDS = ("--recompute-granularity", "--recompute-method", "--num-layers-per-virtual-pipeline-stage",
                   "--virtual-pipeline-model-parallel-size", "--fp8-format", "--moe-token-dispatcher-type",
                   "--moe-expert-capacity-factor", "--fp8-recipe", "--fp8-amax-compute-algo", "--fp8-margin",
                   "--fp8-interval", "--num-layers-at-start-in-bf16", "--num-layers-at-end-in-bf16")
#: Megatron-LM core_v0.19.0 --fp8-recipe values vramscope models (transformer_config.py fp8_recipe; memory/te_fp8.py)
_MEGATRON_FP8_RECIPES = ("delayed", "tensorwise", "mxfp8", "blockwise")
#: FP8 switches that change what is kept and are not modelled
_MEGATRON_FP8_UNMODELLED = ("--first-last-layers-bf16", "--fp8-dot-product-attention", "--fp8-multi-head-attention",
                            "--fp8-output-proj", "--activation-func-fp8-input-store")
MAX_ARGS_BYTES = 64 * 1024


def from_megatron_args(value: str) -> dict[str, Any]:
    """Workload options from a Megatron-LM argument list (``pretrain_gpt.py`` arguments: the text itself, or a
    file holding it): ``--micro-batch-size``, ``--seq-length``, ``--tensor-/--pipeline-model-parallel-size``,
    ``--context-parallel-size``, ``--expert-model-parallel-size``, ``--sequence-parallel``,
    ``--use-distributed-optimizer`` (ZeRO-1 here; without it Megatron's DDP), ``--bf16``,
    ``--recompute-granularity`` (full, selective), ``--recompute-method``, ``--recompute-num-layers``, a virtual
    pipeline (interleaved 1F1B), ``--moe-token-dispatcher-type`` (allgather, alltoall),
    ``--moe-expert-capacity-factor``, ``--moe-pad-expert-input-to-capacity``, Transformer Engine FP8
    (``--fp8-format e4m3|hybrid`` with ``--fp8-recipe`` delayed (Megatron's default), tensorwise, mxfp8 or
    blockwise; ``--fp8-amax-history-len``; ``--fp8-param-gather``: memory/te_fp8.py). The loop is Megatron-LM's;
    other arguments (the model's shape comes from MODEL) are ignored. ``--fp16``, ``--fp8-recipe custom`` and the
    FP8 switches of ``_MEGATRON_FP8_UNMODELLED`` are refused: not modelled."""
    import os
    import shlex

    origin = "--megatron-args"
    if not isinstance(value, str) or not value.strip():
        raise VramscopeError("path_empty")
    text = value
    if os.path.isfile(value):
        origin = value
        text = decode_text(read_limited(value, MAX_ARGS_BYTES))
    if len(text) > MAX_ARGS_BYTES:
        raise _bad(origin, "arguments", f"{len(text)} characters", f"at most {MAX_ARGS_BYTES}")
    try:
        words = shlex.split(text.replace("\\\n", " "), comments=True)
    except ValueError as e:
        raise _bad(origin, "arguments", shown(text[:60]), f"shell words ({e})") from None
    out: dict[str, Any] = {"framework": "megatron", "task": "pretrain", "parallelism": "ddp"}
    fp8: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        flag_, eq, inline = word.partition("=")
        takes = flag_ in _MEGATRON_INTS or flag_ in _MEGATRON_WORDS
        arg = inline if eq else (words[i + 1] if takes and i + 1 < len(words) else None)
        i += 1 if eq or not takes else 2
        if takes and arg is None:
            raise _bad(origin, flag_, "nothing", "a value")
        if flag_ in _MEGATRON_INTS:
            n = int(arg) if arg.isdigit() else arg
            out[_MEGATRON_INTS[flag_]] = _whole(origin, flag_, n, 1, MAX_ELEMENTS, "a whole number")
        elif flag_ == "--sequence-parallel":
            out["sequence_parallel"] = True
        elif flag_ == "--use-distributed-optimizer":
            out["parallelism"] = "zero1"
        elif flag_ == "--bf16":
            out.update(dtype="bf16", precision="mixed")
        elif flag_ == "--fp16":
            raise _bad(origin, flag_, "given", "--bf16 (Megatron's fp16 recipe is not modelled yet)")
        elif flag_ == "--fp8-format":
            if arg not in ("e4m3", "hybrid"):
                raise _bad(origin, flag_, arg, "e4m3 or hybrid")
            fp8["format"] = arg
        elif flag_ == "--fp8-recipe":
            if arg not in _MEGATRON_FP8_RECIPES:
                raise _bad(origin, flag_, arg, "delayed, tensorwise, mxfp8 or blockwise (custom is not modelled)")
            fp8["recipe"] = arg
        elif flag_ == "--fp8-param-gather":
            fp8["param_gather"] = True
        elif flag_ in _MEGATRON_FP8_UNMODELLED:
            raise _bad(origin, flag_, "given", "none of it (not modelled with Transformer Engine FP8 yet)")
        elif flag_ == "--recompute-granularity":
            if arg not in ("full", "selective"):
                raise _bad(origin, flag_, arg, "full or selective")
            out["grad_checkpointing"] = arg
        elif flag_ == "--recompute-method":
            if arg not in ("uniform", "block"):
                raise _bad(origin, flag_, arg, "uniform or block")
            out["recompute_method"] = arg
        elif flag_ in ("--num-layers-per-virtual-pipeline-stage", "--virtual-pipeline-model-parallel-size"):
            out["pp_schedule"] = "interleaved"
        elif flag_ == "--moe-token-dispatcher-type":  # core_v0.19.0 memory/moe_dispatch.py
            if arg not in ("allgather", "alltoall"):
                raise _bad(origin, flag_, arg, "allgather or alltoall (flex is not modelled)")
            out["moe_dispatcher"] = arg
        elif flag_ == "--moe-expert-capacity-factor":
            try:
                cf = float(arg)
            except ValueError:
                cf = -1.0
            if not 0.01 <= cf <= 1000:
                raise _bad(origin, flag_, arg, "a number from 0.01 to 1000")
            out["moe_capacity_factor"] = cf
        elif flag_ == "--moe-pad-expert-input-to-capacity":
            out["moe_pad_to_capacity"] = True
    if fp8 and "format" not in fp8:
        given = "--fp8-recipe" if "recipe" in fp8 else "--fp8-param-gather"
        raise _bad(origin, given, "without --fp8-format", "with --fp8-format e4m3 or hybrid")
    if "fp8_amax_history_len" in out and "format" not in fp8:
        raise _bad(origin, "--fp8-amax-history-len", "without --fp8-format", "with --fp8-format e4m3 or hybrid")
    if fp8:
        out["te_fp8"] = fp8.get("recipe", "delayed")  # transformer_config.py: fp8_recipe = "delayed"
        if out["te_fp8"] != "delayed":
            out.pop("fp8_amax_history_len", None)  # only DelayedScaling reads it
        if fp8.get("param_gather"):
            if out["parallelism"] != "zero1":  # arguments.py: "--fp8-param-gather only supported with distributed optimizer"
                raise _bad(origin, "--fp8-param-gather", "without --use-distributed-optimizer",
                           "with --use-distributed-optimizer")
            out["fp8_param_gather"] = True
    if ("recompute_method" in out or "recompute_num_layers" in out) and out.get("grad_checkpointing") != "full":
        raise _bad(origin, "--recompute-method", out.get("recompute_method", "given"),
                   "with --recompute-granularity full")
    return out
