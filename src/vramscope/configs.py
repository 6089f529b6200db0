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

import json
from pathlib import Path
from typing import Any

from .errors import VramscopeError

MAX_BYTES = 1_000_000


def _read(path: str) -> Any:
    p = Path(path)
    try:
        raw = p.read_bytes()[: MAX_BYTES + 1]
    except OSError as e:
        raise VramscopeError("file_unreadable", path=path, detail=e.strerror or str(e)) from None
    if len(raw) > MAX_BYTES:
        raise VramscopeError("config_bad_json", origin=path, detail="larger than 1 MB")
    text = raw.decode("utf-8", errors="replace")
    if p.suffix.lower() in (".yaml", ".yml"):
        return _simple_yaml(text, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise VramscopeError("config_bad_json", origin=path, detail=str(e)[:120]) from None


def _simple_yaml(text: str, path: str) -> dict[str, Any]:
    """The subset of YAML accelerate writes: nested ``key: value`` mappings by indentation, scalars only."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if ":" not in line:
            raise VramscopeError("config_bad_json", origin=path, detail=f"line {n} is not 'key: value'")
        key, _, value = line.strip().partition(":")
        while stack and indent <= stack[-1][0]:
            stack.pop()
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
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def _given(value: Any) -> bool:
    return value is not None and value != "auto"


def from_deepspeed(path: str) -> dict[str, Any]:
    """Workload options from a DeepSpeed config."""
    cfg = _read(path)
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=path)
    out: dict[str, Any] = {}
    zero = cfg.get("zero_optimization") or {}
    if not isinstance(zero, dict):
        raise VramscopeError("config_bad_value", origin=path, key="zero_optimization", value=zero,
                             allowed="an object")
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise VramscopeError("config_bad_value", origin=path, key="zero_optimization.stage", value=stage,
                             allowed="0, 1, 2 or 3")
    out["parallelism"] = "ddp" if stage == 0 else f"zero{stage}"
    devices = {}
    for key in ("offload_optimizer", "offload_param"):
        dev = (zero.get(key) or {}).get("device", "none") if isinstance(zero.get(key), dict) else "none"
        if dev not in ("none", "cpu", "nvme", None):
            raise VramscopeError("config_bad_value", origin=path, key=f"zero_optimization.{key}.device",
                                 value=dev, allowed="none, cpu, nvme")
        devices[key] = dev or "none"
    offloaded = {key: dev != "none" for key, dev in devices.items()}
    if offloaded["offload_param"] and stage != 3:
        raise VramscopeError("config_bad_value", origin=path, key="zero_optimization.offload_param",
                             value="set", allowed="only with stage 3")
    if offloaded["offload_optimizer"]:
        out["offload"] = "optimizer+params" if offloaded["offload_param"] else "optimizer"
    for key, dtype in (("bf16", "bf16"), ("fp16", "fp16")):
        section = cfg.get(key)
        if isinstance(section, dict) and section.get("enabled") is True:
            out.update(dtype=dtype, precision="deepspeed")
    micro = cfg.get("train_micro_batch_size_per_gpu")
    if _given(micro):
        out["batch"] = micro
    accum = cfg.get("gradient_accumulation_steps")
    if _given(accum):
        out["grad_accum"] = accum
    if "nvme" in devices.values():
        out["offload_device"] = "nvme"
    for key, opt in (("stage3_prefetch_bucket_size", "zero_prefetch"), ("stage3_max_live_parameters", "zero_max_live"),
                     ("stage3_param_persistence_threshold", "zero_persistence"), ("reduce_bucket_size", "reduce_bucket")):
        value = zero.get(key)
        if _given(value):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise VramscopeError("config_bad_value", origin=path, key=f"zero_optimization.{key}", value=value,
                                     allowed="a number of elements (or \"auto\")")
            out[opt] = int(value)
    return out



_STRATEGIES = {"FULL_SHARD": "fsdp", "1": "fsdp", "SHARD_GRAD_OP": "zero2", "2": "zero2", "NO_SHARD": "ddp",
               "3": "ddp", "HYBRID_SHARD": "fsdp", "4": "fsdp", "HYBRID_SHARD_ZERO2": "zero2", "5": "zero2"}


def from_accelerate_fsdp(path: str) -> dict[str, Any]:
    """Workload options from an accelerate config with ``distributed_type: FSDP``."""
    cfg = _read(path)
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=path)
    fsdp = cfg.get("fsdp_config", cfg)
    if not isinstance(fsdp, dict):
        raise VramscopeError("config_bad_value", origin=path, key="fsdp_config", value=fsdp, allowed="a mapping")
    strategy = str(fsdp.get("fsdp_sharding_strategy", "FULL_SHARD")).upper()
    if strategy not in _STRATEGIES:
        raise VramscopeError("config_bad_value", origin=path, key="fsdp_sharding_strategy", value=strategy,
                             allowed="FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD, NO_SHARD")
    out: dict[str, Any] = {"parallelism": _STRATEGIES[strategy]}
    version = fsdp.get("fsdp_version", 1)  # accelerate's default is FSDP1
    if version not in (1, 2, "1", "2"):
        raise VramscopeError("config_bad_value", origin=path, key="fsdp_version", value=version, allowed="1 or 2")
    out["fsdp_version"] = int(version)
    if int(version) == 2 and fsdp.get("fsdp_reshard_after_forward") is False:
        out["parallelism"] = "zero2"  # FSDP2 without resharding after forward keeps parameters gathered: SHARD_GRAD_OP
    if fsdp.get("fsdp_offload_params") is True:
        out["offload"] = "optimizer+params"
    if fsdp.get("fsdp_activation_checkpointing") is True:
        out["grad_checkpointing"] = True
    n = cfg.get("num_processes")
    if _given(n):
        out["num_gpus"] = n
    machines = cfg.get("num_machines")
    if _given(machines):
        out["nodes"] = machines
    if strategy in ("HYBRID_SHARD", "4"):
        out["fsdp_sharding"] = "hybrid"
    mp = cfg.get("mixed_precision")
    if mp in ("bf16", "fp16"):
        out.update(dtype=mp, precision="mixed")
    elif mp not in (None, "no"):
        raise VramscopeError("config_bad_value", origin=path, key="mixed_precision", value=mp,
                             allowed="no, fp16, bf16")
    return out
