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
from .sources.base import MAX_DEPTH, MAX_INT_DIGITS, JsonProblem, decode_text, parse_json, read_limited, \
    shown_path
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


def _read(path: str) -> Any:
    """The parsed config: a regular file only, bounded before it is read, JSON or (``.yaml``/``.yml``) YAML."""
    if not isinstance(path, str) or not path.strip():
        raise VramscopeError("path_empty")
    is_yaml = path.lower().endswith((".yaml", ".yml"))
    raw = read_limited(path, MAX_YAML_BYTES if is_yaml else MAX_BYTES)
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


def from_deepspeed(path: str) -> dict[str, Any]:
    """Workload options from a DeepSpeed config (the values DeepSpeed's own config models accept)."""
    cfg = _read(path)
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
    for key, opt in (("stage3_prefetch_bucket_size", "zero_prefetch"), ("stage3_max_live_parameters", "zero_max_live"),
                     ("stage3_param_persistence_threshold", "zero_persistence"), ("reduce_bucket_size", "reduce_bucket")):
        value = zero.get(key)
        if _given(value):
            out[opt] = _whole(path, f"zero_optimization.{key}", value, 0, MAX_ELEMENTS,
                              'a number of elements (or "auto")')
    return out


_STRATEGIES = {"FULL_SHARD": "fsdp", "1": "fsdp", "SHARD_GRAD_OP": "zero2", "2": "zero2", "NO_SHARD": "ddp",
               "3": "ddp", "HYBRID_SHARD": "fsdp", "4": "fsdp", "HYBRID_SHARD_ZERO2": "zero2", "5": "zero2"}


def from_accelerate_fsdp(path: str) -> dict[str, Any]:
    """Workload options from an accelerate config with ``distributed_type: FSDP``."""
    cfg = _read(path)
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=shown_path(path))
    kind = cfg.get("distributed_type")
    if kind is not None and str(kind).upper() != "FSDP":
        raise _bad(path, "distributed_type", kind, "FSDP (give a DeepSpeed config with --deepspeed)")
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
    mp = cfg.get("mixed_precision")
    if mp is False:  # an unquoted `no` is YAML's false
        mp = "no"
    if mp in ("bf16", "fp16"):
        out.update(dtype=mp, precision="mixed")
    elif mp not in (None, "no"):
        raise _bad(path, "mixed_precision", mp, "no, fp16 or bf16")
    return out
