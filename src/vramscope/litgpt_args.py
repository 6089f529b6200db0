"""LitGPT's own arguments (``litgpt finetune lora CHECKPOINT --precision bf16-true ...`` and its config-hub YAML)
read into vramscope's options with ``--framework litgpt``.

The arguments are ``setup()``'s of LitGPT 0.5.13 (Lightning-AI/litgpt 26857050): ``litgpt/finetune/lora.py``
(``precision``, ``quantize`` — bnb.nf4, bnb.nf4-dq, bnb.fp4, bnb.fp4-dq, bnb.int8-training — ``devices``,
``num_nodes``, ``lora_r``, ``lora_alpha``, ``lora_dropout``, ``lora_query/key/value/projection/mlp/head``,
``train``: ``litgpt/args.py TrainArgs``, ``optimizer``) and ``full.py``; jsonargparse spells nested fields with
dots (``--train.micro_batch_size 2``) and the YAML nests them (``train: {micro_batch_size: 2}``). Accumulation is
``TrainArgs.gradient_accumulation_iters``: ``global_batch_size // devices // micro_batch_size``. Several devices:
``lora.py`` shards with FSDP2 (``ModelParallelStrategy``), ``full.py`` with FSDP1 (``FSDPStrategy``).
"""

from __future__ import annotations

from typing import Any, Optional

from .errors import Text, VramscopeError
from .units import shown

#: ``litgpt finetune METHOD``: the methods vramscope models (adapter / adapter_v2: LLaMA-Adapter, its own modules)
METHODS = {"lora": "lora", "full": "full", "finetune_lora": "lora", "finetune_full": "full", "adapter": "adapter",
           "adapter_v2": "adapter-v2", "finetune_adapter": "adapter", "finetune_adapter_v2": "adapter-v2"}
#: setup()'s ``lora_*`` switches → vramscope's target names (transformers')
SWITCHES = {"lora_query": ("q_proj",), "lora_key": ("k_proj",), "lora_value": ("v_proj",),
            "lora_projection": ("o_proj",), "lora_mlp": ("gate_proj", "up_proj", "down_proj"),
            "lora_head": ("lm_head",)}
#: lora.py setup()'s defaults of those switches
DEFAULT_SWITCHES = {"lora_query": True, "lora_value": True}
QUANTIZE = {"bnb.nf4": "nf4", "bnb.nf4-dq": "nf4-dq", "bnb.fp4": "fp4", "bnb.fp4-dq": "fp4-dq"}
#: ``--precision`` → (vramscope dtype, --precision for full fine-tuning)
PRECISION = {"bf16-true": ("bf16", "pure"), "16-true": ("fp16", "pure"), "32-true": ("fp32", "fp32"),
             "bf16-mixed": ("bf16", "mixed"), "16-mixed": ("fp16", "mixed")}
#: torch optimizers by LitGPT's names (``instantiate_torch_optimizer``: "AdamW" is torch.optim.AdamW)
OPTIMIZERS = {"adamw": "adamw", "torch.optim.adamw": "adamw", "adam": "adam", "torch.optim.adam": "adam",
              "sgd": "sgd", "torch.optim.sgd": "sgd"}
#: setup() arguments that do not change memory
IGNORED = ("out_dir", "data", "eval", "log", "logger_name", "seed", "access_token", "resume", "train.save_interval",
           "train.log_interval", "train.lr_warmup_steps", "train.lr_warmup_fraction", "train.epochs",
           "train.max_tokens", "train.max_steps", "train.max_time", "train.min_lr", "train.max_norm",
           "optimizer.init_args", "config")
#: setup() arguments that change memory but are not modelled
UNMODELLED = ("train.tie_embeddings",)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise VramscopeError("bad_choice", field=key, value=shown(value), allowed="true, false")


def _int(key: str, value: Any, lo: int = 1, hi: int = 10**7) -> int:
    try:
        n = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        n = None
    if n is None or not lo <= n <= hi:
        raise VramscopeError("bad_choice", field=key, value=shown(value), allowed=Text("allowed_lg_int", lo=lo, hi=f"{hi:,}"))
    return n


def _float(key: str, value: Any) -> float:
    try:
        x = float(str(value).strip())
    except ValueError:
        x = -1.0
    if not 0.0 <= x < 1.0:
        raise VramscopeError("bad_choice", field=key, value=shown(value), allowed=Text("allowed_lg_prob"))
    return x


def flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A YAML's nested sections as jsonargparse's dotted names (``train.micro_batch_size``)."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and name in ("train", "optimizer"):
            if name == "optimizer" and "class_path" in v:
                out["optimizer"] = v["class_path"]
                if "init_args" in v:
                    out["optimizer.init_args"] = v["init_args"]
                continue
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def read(method: str, args: dict[str, Any]) -> tuple[Optional[str], dict[str, Any], list[str], list[str], list[str]]:
    """(checkpoint_dir, vramscope options, ignored, unmodelled, unknown) of ``litgpt finetune METHOD`` with the
    arguments ``args`` (dotted names without dashes → values; None = given without a value)."""
    if method not in METHODS:
        raise VramscopeError("cmd_litgpt_method", method=shown(method), methods="lora, full, adapter, adapter_v2")
    method = METHODS[method]
    options: dict[str, Any] = {"task": "finetune", "framework": "litgpt", "method": method}
    ignored: list[str] = []
    unmodelled: list[str] = []
    unknown: list[str] = []
    switches = dict(DEFAULT_SWITCHES)
    checkpoint = args.get("checkpoint_dir")
    for key, value in args.items():
        if value is None and key not in SWITCHES and key not in IGNORED:
            raise VramscopeError("cmd_needs_value", flag=shown(f"--{key}"))
    given = {k: v for k, v in args.items() if v is not None or k in SWITCHES}
    for key, value in given.items():
        if key == "checkpoint_dir":
            continue
        if key in SWITCHES:
            if method == "lora":
                switches[key] = True if value is None else _bool(key, value)
            continue
        if key == "precision":
            p = str(value).strip()
            if p not in PRECISION:
                raise VramscopeError("bad_choice", field="precision", value=shown(value),
                                     allowed=", ".join(PRECISION))
            dtype, precision = PRECISION[p]
            options["dtype"] = dtype
            if method == "full":
                options["precision"] = precision
            elif precision == "mixed":  # fp32 LoRA weights under autocast: not vramscope's LoRA recipe
                unmodelled.append(f"--precision {p}")
        elif key == "quantize":
            q = str(value).strip()
            if q in QUANTIZE and method == "lora":
                options["method"], options["quant"] = "qlora", QUANTIZE[q]
            elif q in QUANTIZE:  # adapter.py / adapter_v2.py take --quantize too: not modelled for them
                unmodelled.append(f"--quantize {q}")
            elif q not in ("", "None", "null"):
                unmodelled.append(f"--quantize {q}")
        elif key in ("devices", "num_nodes"):
            options[key] = _int(key, value, 1, 100_000)
        elif key == "lora_r" and method == "lora":
            options["lora_rank"] = _int(key, value, 1, 65536)
        elif key == "lora_alpha" and method == "lora":
            options["lora_alpha"] = str(value)
        elif key == "lora_dropout" and method == "lora":
            options["lora_dropout"] = _float(key, value)
        elif key in ("train.micro_batch_size", "train.global_batch_size", "train.max_seq_length"):
            options[key] = _int(key, value)
        elif key == "optimizer":
            name = OPTIMIZERS.get(str(value).strip().lower())
            if name is None:
                unmodelled.append(f"--optimizer {value}")
            else:
                options["optimizer"] = name
        elif key in IGNORED or key.startswith(("data.", "eval.", "log.")):
            ignored.append(f"--{key}")
        elif key in UNMODELLED:
            unmodelled.append(f"--{key} {value}")
        else:
            unknown.append(f"--{key}" + ("" if value is None else f" {shown(value)}"))
    if "precision" not in given:
        # setup(): precision or get_default_supported_precision(training=True), "bf16-mixed" on a bf16 GPU: fp32
        # weights under autocast. Full fine-tuning models it (--precision mixed); LoRA is estimated as bf16-true
        if method == "full":
            options["dtype"], options["precision"] = PRECISION["bf16-mixed"]
        else:
            unmodelled.append("--precision bf16-mixed (LitGPT's default when not given)")
    options = _finish(options, switches, method)
    unmodelled += options.pop("_unmodelled", [])
    return checkpoint, options, ignored, unmodelled, unknown


def _finish(options: dict[str, Any], switches: dict[str, bool], method: str) -> dict[str, Any]:
    """Devices, batch and accumulation, and LoRA targets in vramscope's terms."""
    devices = options.pop("devices", 1) * options.pop("num_nodes", 1)
    micro = options.pop("train.micro_batch_size", None)
    total = options.pop("train.global_batch_size", None)
    seq = options.pop("train.max_seq_length", None)
    if micro is not None:
        options["batch"] = micro
    if seq is not None:
        options["seq"] = seq
    if total is not None:
        # TrainArgs.gradient_accumulation_iters: global_batch_size // devices // micro_batch_size, at least 1
        options["grad_accum"] = max(1, total // devices // (micro or 1))
    if devices > 1:
        options["num_gpus"] = devices
        options["parallelism"] = "fsdp"
        options["fsdp_version"] = 1 if method == "full" else 2
    if method != "full" and options.get("method") == "qlora":
        if devices > 1:
            raise VramscopeError("cmd_litgpt_quant_devices")
        # instantiate_bnb_optimizer: an AdamW name or class_path becomes bitsandbytes' PagedAdamW
        if options.get("optimizer", "adamw") == "adamw":
            options["optimizer"] = "paged-adamw"
    if method == "lora":
        if switches.get("lora_head"):  # vramscope's LoRA adapts the decoder layers' linears, not the head
            options["_unmodelled"] = ["--lora_head true"]
        on = {k for k, v in switches.items() if v and k != "lora_head"}
        # every linear of the blocks: vramscope's all-linear, whatever the architecture names them
        everything = {"lora_query", "lora_key", "lora_value", "lora_projection", "lora_mlp"}
        targets = ("all-linear",) if on == everything else tuple(t for k in SWITCHES if k in on for t in SWITCHES[k])
        if not targets:
            raise VramscopeError("bad_choice", field="lora_targets", value="(none)",
                                 allowed="--lora_query/key/value/projection/mlp/head true")
        options["lora_targets"] = targets
    return options


