"""The option table: every option of an estimate, declared once.

A row (:class:`Option`) holds an option's field (the ``Workload`` field, the Python API's keyword and the web
query's name), its command-line flags (the first is the one messages and suggested commands print; the others
are engine-native spellings such as llama.cpp's ``-c``/``-ngl`` or vLLM's ``-tp``), its kind and parser, its
default, its help group and owner (``run``, ``training``, ``parallel``, ``seed``, or an engine's name), and its
help text in English and Chinese. From the rows come:

* the argparse groups of ``estimate``/``fit``/``trace``/``measure`` (:func:`add_arguments`), their help in the
  user's language;
* the ``Workload`` dataclass's fields and defaults (``workload.py``);
* the Python API's keyword check (unknown name: "did you mean"), :func:`read` of every value;
* the web form and the web API's parameters (``serve.py``: :func:`web_fields`);
* the options section of ``docs/json.md`` (:func:`markdown`, checked by ``tests/test_options.py``);
* the refusal of an option its owner does not run ("is a training option", "is a vllm option");
* how an error names a field on each surface (:func:`spell`: ``--seq`` on the command line, ``seq`` in the
  Python API and on the web).

The core rows are :data:`CORE`; each engine declares its own rows (``Engine.options``, ``engines/*.py``), so an
engine with its options is one file. :func:`table` is all of them, the engines imported on first use.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Optional

from .errors import Opt, VramscopeError
from .units import parse_bool, parse_float, parse_int, shown

MAX_BATCH = 1_000_000
MAX_SEQ = 100_000_000

# ---------------------------------------------------------------- value readers (one per kind)


def choice(value: Any, field: str, allowed: Iterable[str]) -> str:
    """One of ``allowed`` (case and surrounding blanks ignored), else a clear error naming ``field``."""
    allowed = tuple(allowed)
    v = value.strip().lower() if isinstance(value, str) else None
    if v not in allowed:
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed=", ".join(allowed))
    return v


def text(value: Any, field: str, expected: str) -> str:
    """A free-text option (a dtype or quantization name): a str of a sane length, else a clear error."""
    if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed=expected)
    return value


def flag(value: Any, field: str) -> Optional[bool]:
    """A yes/no option, parsed strictly (``"false"`` is False); None: not given."""
    return None if value is None else parse_bool(value, field)


_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def names(value: Any, field: str, example: str) -> Optional[tuple[str, ...]]:
    """Module names as ``"q_proj,v_proj"`` or a list of them; None: not given; an empty list is an error."""
    if value is None:
        return None
    if isinstance(value, str):
        items: Any = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise VramscopeError("bad_type", field=field, value=shown(value), kind=type(value).__name__,
                             expected=f"comma-separated module names such as {example}")
    out = tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
    if not out:
        raise VramscopeError("empty_list", field=field, example=example)
    for n in out:
        if not _MODULE_NAME.match(n):
            raise VramscopeError("bad_choice", field=field, value=shown(n),
                                 allowed=f"module names (letters, digits, _ . -) such as {example}")
    return out


# ---------------------------------------------------------------- the row


@dataclass(frozen=True)
class Option:
    """One option. ``kind``: choice | int | float | flag | text | names | count | custom (``parse``)."""

    field: str
    flags: tuple[str, ...]
    kind: str
    default: Any = None
    group: str = "run"
    owner: str = "run"
    help_en: str = ""
    help_zh: str = ""
    choices: tuple[str, ...] = ()
    lo: Any = None
    hi: Any = None
    metavar: Optional[str] = None
    #: ``nargs="?"``: the value of the bare flag (``--grad-checkpointing`` = full, ``--chunked-ce`` = 8)
    const: Any = None
    #: the flag that turns a yes/no option off (``--no-grad-checkpointing``)
    negation: Optional[str] = None
    #: custom reader ``parse(value, field)``; also the text shown as "allowed" by text options
    parse: Optional[Callable[[Any, str], Any]] = None
    expected: str = ""
    #: a Workload field (False: the model, the output, a config file to import)
    workload: bool = True
    #: a parameter of the web form and the web API
    web: bool = True
    #: repeatable on the command line (``--gpu a --gpu b``)
    append: bool = False
    #: how the command line names an option that has no flag of its own (``checkpoint_mode``: the MODE of
    #: ``--grad-checkpointing MODE``)
    shown_as: str = ""
    #: the default depends on other options (the task's sequence, a framework profile's optimizer...): a value
    #: equal to ``default`` is still worth writing in a command
    contextual: bool = False
    #: the options the help text names, as ``{name}`` placeholders in both languages (``{"freeze": Opt("method",
    #: "freeze")}``): spelled for the surface the help is shown on (``--method freeze``, the web's ``method=freeze``)
    help_opts: dict = dataclasses.field(default_factory=dict, hash=False, compare=False)

    @property
    def flag(self) -> str:
        """The command-line spelling messages and suggested commands print."""
        return self.flags[0] if self.flags else self.shown_as or self.field

    @property
    def switch(self) -> bool:
        return self.kind == "flag"

    def help(self, lang: str, surface: str = "cli") -> str:
        """The help text in ``lang``, the options it names spelled for ``surface`` (``cli``: ``--help`` and
        docs/json.md; ``web``: the form and the OpenAPI schema)."""
        text = self.help_zh if lang == "zh" and self.help_zh else self.help_en
        if not self.help_opts:
            return text
        from .errors import rendered

        return text.format(**rendered(self.help_opts, lang, surface))

    def read(self, value: Any) -> Any:
        """The given value, checked and typed (errors name this option's field)."""
        f = self.field
        if self.parse is not None:
            return self.parse(value, f)
        if self.kind == "choice":
            return choice(value, f, self.choices)
        if self.kind == "int":
            return parse_int(value, f, self.lo, self.hi)
        if self.kind == "float":
            return parse_float(value, f, self.lo, self.hi, self.expected)
        if self.kind == "flag":
            return flag(value, f)
        if self.kind == "text":
            return text(value, f, self.expected)
        if self.kind == "names":
            return names(value, f, self.expected)
        return value

    def given(self, value: Any) -> bool:
        """Whether ``value`` (as a workload field) means the user gave it: a switch that is on, else not None."""
        return bool(value) if self.switch else value is not None


#: help groups, in the order ``--help`` lists them: (title in English, in Chinese)
GROUPS = {
    "model": ("model from numbers", "按数字指定模型"),
    "run": ("workload: what runs", "工作负载：运行什么"),
    "training": ("training", "训练"),
    "parallel": ("GPUs and parallelism", "GPU 与并行"),
    "vllm": ("vLLM (--engine vllm)", "vLLM（--engine vllm）"),
    "llama.cpp": ("llama.cpp (--engine llama.cpp)", "llama.cpp（--engine llama.cpp）"),
    "ollama": ("Ollama (--engine ollama)", "Ollama（--engine ollama）"),
    "sglang": ("SGLang (--engine sglang)", "SGLang（--engine sglang）"),
    "output": ("output", "输出"),
}


def _engine(value: Any, field: str) -> str:
    from .engines.base import ENGINE_NAMES, engine_named

    return choice(engine_named(value), field, ENGINE_NAMES)


def _choices(module: str, name: str) -> tuple[str, ...]:
    import importlib

    return tuple(getattr(importlib.import_module(module, __package__), name))


def _lazy_choice(module: str, name: str) -> Callable[[Any, str], str]:
    """A choice among a tuple kept by the module that owns it (imported when a value is read)."""
    return lambda value, field: choice(value, field, _choices(module, name))


def _dtype(value: Any, field: str) -> str:
    """A compute dtype (fp32, fp16, bf16 and their spellings: ``dtypes.normalize_dtype``)."""
    from .dtypes import DTYPES, normalize_dtype

    return normalize_dtype(text(value, field, ", ".join(DTYPES)), field, DTYPES)


def _liger(value: Any, field: str) -> tuple[str, ...]:
    """Liger kernels: ``all``, ``none`` or a comma-separated subset of ``frameworks.LIGER_KERNELS``."""
    from .frameworks import LIGER_KERNELS

    allowed = "all, none or " + ",".join(LIGER_KERNELS)
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = text(value, field, allowed).split(",")
    items = [i.strip().lower() for i in items if i.strip()]
    if items in (["all"], ["none"]):
        return LIGER_KERNELS if items == ["all"] else ()
    for i in items:
        choice(i, field, LIGER_KERNELS)
    return tuple(k for k in LIGER_KERNELS if k in items)


#: DeepSpeed ZeRO sizes the HF Trainer fills from the model's hidden size when a config leaves them "auto"
ZERO_AUTO = ("reduce_bucket", "zero_persistence", "zero_prefetch")


def _zero_auto(value: Any, field: str) -> tuple[str, ...]:
    """A comma-separated subset of :data:`ZERO_AUTO` (none: empty)."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = text(value, field, "none or " + ",".join(ZERO_AUTO)).split(",")
    items = [i.strip().lower().replace("-", "_") for i in items if i.strip()]
    if items == ["none"]:
        return ()
    for i in items:
        choice(i, field, ZERO_AUTO)
    return tuple(k for k in ZERO_AUTO if k in items)


def _grad_checkpointing(value: Any, field: str) -> Any:
    """True/False, or a mode (full, selective) as ``--grad-checkpointing MODE`` gives it."""
    if isinstance(value, str) and value.strip().lower() in CHECKPOINT_MODES:
        return value.strip().lower()
    return flag(value, field)


TASKS = ("inference", "finetune", "pretrain")
METHODS = ("full", "freeze", "lora", "qlora", "adapter", "adapter-v2")
#: LitGPT's LLaMA-Adapter recipes (``litgpt finetune adapter | adapter_v2``), with ``--framework litgpt`` only
ADAPTER_METHODS = ("adapter", "adapter-v2")
ESTIMATORS = ("analytic", "seed")
PRECISIONS = ("auto", "pure", "mixed", "fp32", "deepspeed")
#: full (every op of a checkpointed layer recomputed), selective (Megatron-LM's --recompute-granularity
#: selective: only the core attention — scores, softmax, attention·V — is recomputed) or op (torchtitan's per-op
#: SelectiveAC: matmul outputs saved except every second one, attention outputs saved, the rest recomputed;
#: torchtitan's own "selective")
CHECKPOINT_MODES = ("full", "selective", "op")
#: torchao float8 training recipes (torchao/float8/config.py Float8LinearRecipeName), then torchao 0.18's MXFP8
#: ones (prototype/moe_training/config.py MXFP8TrainingRecipe mxfp8_rceil, mxfp8_rceil_wgrad_with_hp)
FLOAT8_RECIPES = ("none", "tensorwise", "rowwise", "rowwise_with_gw_hp", "mxfp8", "mxfp8_wgrad_with_hp")
#: Transformer Engine FP8 recipes as Megatron-LM core_v0.19.0 names them (transformer_config.py ``fp8_recipe``;
#: memory/te_fp8.py)
TE_FP8_RECIPES = ("none", "delayed", "tensorwise", "mxfp8", "blockwise")
#: Megatron-LM --recompute-method (megatron/core/transformer/transformer_block.py _checkpointed_forward)
RECOMPUTE_METHODS = ("uniform", "block")
FSDP_SHARDING = ("full", "hybrid")
SP_MODES = ("ring", "ulysses")
OFFLOAD_DEVICES = ("cpu", "nvme")
OFFLOADS = ("none", "optimizer", "optimizer+params")
PP_SCHEDULES = ("1f1b", "gpipe", "interleaved", "interleaved-zb", "zbv")
CACHES = ("dynamic", "static", "quantized")
ATTN = ("sdpa", "flash", "eager")  # memory/activations.ATTN_IMPLS is this tuple


def _parallelisms() -> tuple[str, ...]:
    from .strategy import Strategy

    return ("auto",) + tuple(s.value for s in Strategy)


#: how a k-bit base is prepared for adapter training (peft / TRL): see ``estimators/training.py`` ``kbit_casts``
KBIT_PREPS = ("peft", "trl0", "trl", "none")
_VERSION = re.compile(r"^(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?$")


def bnb_version(value: Any, field: str, allowed: str = "a bitsandbytes version such as 0.43.1 or 0.50") -> str:
    """A version, ``major.minor[.patch]`` (``0.43.1``), as given."""
    v = value.strip() if isinstance(value, str) else None
    if v is None or not _VERSION.match(v):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed=allowed)
    return v


def version_tuple(v: str) -> tuple[int, int, int]:
    m = _VERSION.match(v) or _CALVER.match(v)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else (0, 0, 0)


#: a calendar version, ``year.month[.release]`` (Unsloth's ``2024.12.3``)
_CALVER = re.compile(r"^(\d{4})\.(\d{1,2})(?:\.(\d{1,3}))?$")


def calendar_version(value: Any, field: str, allowed: str) -> str:
    """A calendar version (``2024.12.3``), as given."""
    v = value.strip() if isinstance(value, str) else None
    if v is None or not _CALVER.match(v):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed=allowed)
    return v


O = Option  # the rows below read as a table
CORE: tuple[Option, ...] = (
    # the workload's options, in the order of its fields (the order of the JSON's workload object); --help
    # lists them by group
    O("task", ("--task",), "choice", "inference", choices=TASKS,
      help_en="inference | finetune | pretrain (default inference)",
      help_zh="inference（推理）| finetune（微调）| pretrain（预训练），默认 inference"),
    O("method", ("--method",), "choice", "full", owner="training", choices=METHODS,
      help_en="full | freeze | lora | qlora | adapter | adapter-v2 (training; default full; adapter and "
              "adapter-v2: LitGPT's LLaMA-Adapter recipes, with {litgpt})",
      help_zh="full | freeze | lora | qlora | adapter | adapter-v2（训练；默认 full；adapter 与 adapter-v2："
              "LitGPT 的 LLaMA-Adapter 配方，配合 {litgpt}）", help_opts={"litgpt": Opt("framework", "litgpt")}),
    O("estimator", ("--estimator",), "choice", "analytic", choices=ESTIMATORS,
      help_en="analytic (default) | seed (the article's rule of thumb)",
      help_zh="analytic（默认）| seed（原文的经验公式）"),
    O("engine", ("--engine",), "custom", "transformers", parse=_engine,
      help_en="transformers (default) | vllm | llama.cpp | ollama | sglang",
      help_zh="transformers（默认）| vllm | llama.cpp | ollama | sglang"),
    O("dtype", ("--dtype",), "custom", None, parse=_dtype,
      help_en="fp32 | fp16 | bf16 (default: the checkpoint's dtype, else bf16)",
      help_zh="fp32 | fp16 | bf16（默认：检查点自身的类型，否则 bf16）"),
    O("quant", ("--quant",), "text", "none", contextual=True, expected="a quantization such as int8, nf4 or Q4_K_M",
      help_en="none | int8 | int4 | nf4 | fp4 | nf4-dq | fp4-dq | fp8 | fp8-channel | fp8-block | gptq-4bit | "
              "gptq-8bit | gptq-3bit | gptq-2bit | awq-4bit; with {llama} a GGUF type: Q4_K_M, Q5_K_M, "
              "Q8_0, Q4_0, IQ4_XS, ...",
      help_zh="none | int8 | int4 | nf4 | fp4 | nf4-dq | fp4-dq | fp8 | fp8-channel | fp8-block | gptq-4bit | "
              "gptq-8bit | gptq-3bit | gptq-2bit | awq-4bit；配合 {llama} 时为 GGUF 类型：Q4_K_M、"
              "Q5_K_M、Q8_0、Q4_0、IQ4_XS 等", help_opts={"llama": Opt("engine", "llama.cpp")}),
    O("batch", ("--batch", "--concurrency", "--micro-batch"), "int", 1, lo=1, hi=MAX_BATCH,
      help_en="batch size / micro-batch / concurrent sequences (default 1)",
      help_zh="批大小 / 微批大小 / 并发序列数（默认 1）"),
    O("seq", ("--seq", "--ctx-size", "-c"), "int", 2048, contextual=True, lo=1, hi=MAX_SEQ,
      help_en="tokens per sequence / llama.cpp context (default 4096 for inference, 2048 for training)",
      help_zh="每条序列的 token 数 / llama.cpp 上下文（推理默认 4096，训练默认 2048）"),
    O("kv_dtype", ("--kv-dtype",), "custom", None, parse=_lazy_choice(".memory.kv_cache", "KV_DTYPE_BYTES"),
      help_en="KV cache dtype: fp16 | bf16 | fp8 | int8 | q8_0 | q4_0 ... (default: dtype)",
      help_zh="KV 缓存类型：fp16 | bf16 | fp8 | int8 | q8_0 | q4_0 …（默认与 dtype 相同）"),
    O("attn", ("--attn",), "choice", "sdpa", choices=ATTN,
      help_en="sdpa (default) | flash | eager", help_zh="sdpa（默认）| flash | eager"),
    O("precision", ("--precision",), "choice", "auto", group="training", owner="training", choices=PRECISIONS,
      help_en="auto | pure | mixed | fp32 | deepspeed (training; with LoRA under FSDP, mixed is accelerate's mixed "
              "precision over an fp32-loaded base)",
      help_zh="auto | pure | mixed | fp32 | deepspeed（训练；FSDP 下的 LoRA 用 mixed 表示 accelerate 混合精度、基座以 fp32 加载）"),
    O("optimizer", ("--optimizer",), "custom", "adamw", contextual=True, group="training", owner="training",
      parse=_lazy_choice(".memory.optimizer_states", "OPTIMIZERS"),
      help_en="adamw | adam | adamw-fused | adamw-8bit | paged-adamw | paged-adamw-8bit | sgd | sgd-momentum | lion "
              "| adafactor (default: the framework's: hf and pytorch adamw; torchtune adamw-fused, full single-GPU "
              "paged-adamw-8bit; litgpt adamw, QLoRA paged-adamw)",
      help_zh="adamw | adam | adamw-fused | adamw-8bit | paged-adamw | paged-adamw-8bit | sgd | sgd-momentum | lion "
              "| adafactor（默认取框架的：hf 与 pytorch 为 adamw；torchtune 为 adamw-fused，单卡全量微调为 "
              "paged-adamw-8bit；litgpt 为 adamw，QLoRA 为 paged-adamw）"),
    O("grad_checkpointing", ("--grad-checkpointing",), "custom", False, contextual=True, group="training", owner="training",
      parse=_grad_checkpointing, const="full", metavar="MODE", negation="--no-grad-checkpointing",
      help_en="activation checkpointing: full (default when given; every layer recomputed) | selective (only core "
              "attention recomputed, Megatron-LM; torchtitan's selective is op) | op (torchtitan per-op policy: "
              "matmul outputs except every second, attention outputs saved); {off} turns a "
              "profile's off",
      help_zh="激活检查点：full（给出时的默认；每层重算）| selective（只重算核心注意力，Megatron-LM；torchtitan 的 "
              "selective 即 op）| op（torchtitan 逐算子策略：保存矩阵乘输出（每隔一个重算）和注意力输出）；"
              "{off} 关闭框架默认开启的检查点", help_opts={"off": Opt("grad_checkpointing", False)}),
    O("grad_accum", ("--grad-accum",), "int", 1, group="training", owner="training", lo=1, hi=1_000_000,
      help_en="gradient accumulation steps (default 1)", help_zh="梯度累积步数（默认 1）"),
    O("lora_rank", ("--lora-rank",), "int", 16, group="training", owner="training", lo=1, hi=65536,
      help_en="LoRA rank (default 16; litgpt 8)", help_zh="LoRA 秩（默认 16；litgpt 为 8）"),
    O("lora_dropout", ("--lora-dropout",), "float", 0.0, group="training", owner="training", lo=0.0, hi=0.99,
      help_en="peft lora_dropout (default 0, litgpt 0.05; > 0 keeps dropout masks)",
      help_zh="peft 的 lora_dropout（默认 0，litgpt 为 0.05；大于 0 时保留 dropout 掩码）"),
    O("lora_targets", ("--lora-targets",), "names", ("all-linear",), contextual=True, group="training", owner="training",
      expected="q_proj,v_proj or all-linear",
      help_en="comma-separated module names of the model (q_proj,v_proj) or all-linear (default); an empty list "
              "is an error",
      help_zh="以逗号分隔的模型模块名（q_proj,v_proj）或 all-linear（默认）；空列表是错误"),
    O("frozen_layers", ("--freeze-layers",), "int", 0, group="training", owner="training", lo=0, hi=100_000,
      help_en="with {freeze}: freeze the first N layers", help_zh="配合 {freeze}：冻结前 N 层",
      help_opts={"freeze": Opt("method", "freeze")}),
    O("train_modules", ("--train-modules",), "names", (), group="training", owner="training",
      expected="o_proj,down_proj",
      help_en="with {freeze}: train only these modules (e.g. o_proj,down_proj)",
      help_zh="配合 {freeze}：只训练这些模块（如 o_proj,down_proj）", help_opts={"freeze": Opt("method", "freeze")}),
    O("activations_per_sample", ("--activations-per-sample",), "int", None, group="training", owner="seed",
      lo=1, hi=10**13,
      help_en="seed estimator: activation floats per sample (A)", help_zh="seed 估算器：每个样本的激活浮点数（A）"),
    O("num_gpus", ("--gpus",), "int", 1, group="parallel", lo=1, hi=100_000,
      help_en="number of GPUs the model is split across (default 1)", help_zh="模型切分到的 GPU 数（默认 1）"),
    O("parallelism", ("--parallelism",), "custom", "none", contextual=True, group="parallel",
      parse=lambda value, field: choice(value, field, _parallelisms()),
      help_en="auto | tp (tensor parallel, inference) | fsdp | ddp | zero1 | zero2 | zero3 (training)",
      help_zh="auto | tp（张量并行，推理）| fsdp | ddp | zero1 | zero2 | zero3（训练）"),
    O("offload", ("--offload",), "choice", "none", group="parallel", owner="training", choices=OFFLOADS,
      help_en="none | optimizer | optimizer+params (training: ZeRO-Offload / FSDP CPU offload)",
      help_zh="none | optimizer | optimizer+params（训练：ZeRO-Offload / FSDP CPU 卸载）"),
    O("framework", ("--framework",), "custom", "hf", group="parallel", owner="training",
      parse=lambda value, field: choice(value, field, _choices(".frameworks", "FRAMEWORKS")),
      help_en="training loop: hf (Trainer / TRL, default; its defaults: LoRA/QLoRA with checkpointing) | pytorch "
              "(plain loop; {mixed}: autocast on fp32 FSDP parameters) | torchtune (its recipes' defaults: "
              "checkpointing, chunked cross-entropy, bf16 adapters) | accelerate | torchtitan (their FSDP "
              "MixedPrecisionPolicy under {mixed}) | megatron (--bf16, distributed optimizer as zero1) | litgpt "
              "(LitGPT 0.5.13's own model and finetune recipes: bf16-true, 128-token head chunks cast to fp32 for the loss) | unsloth "
              "(its fused LoRA kernels and loss, offloaded checkpointing) | llamafactory | axolotl (their config "
              "defaults)",
      help_zh="训练循环：hf（Trainer / TRL，默认；其默认值：LoRA/QLoRA 开启检查点）| pytorch（普通循环；"
              "{mixed} 时对 fp32 FSDP 参数使用 autocast）| torchtune（其配方的默认值：检查点、分块交叉熵、"
              "bf16 适配器）| accelerate | torchtitan（{mixed} 时使用其 FSDP MixedPrecisionPolicy）| "
              "megatron（--bf16，分布式优化器即 zero1）| litgpt（LitGPT 0.5.13 自己的模型与 finetune 配方：bf16-true、"
              "按 128 个 token 分块的输出头，损失前转为 fp32）| unsloth（其融合 LoRA 内核与损失、卸载式检查点）| "
              "llamafactory | axolotl（其配置默认值）", help_opts={"mixed": Opt("precision", "mixed")}),
    O("pp", ("--pp", "--pipeline-parallel-size", "-pp"), "int", 1, group="parallel", lo=1, hi=1024,
      help_en="pipeline-parallel stages (training: micro-batches = {accum}; vLLM: stages of {tp} GPUs)",
      help_zh="流水线并行的段数（训练：微批数 = {accum}；vLLM：每段 {tp} 个 GPU）",
      help_opts={"accum": Opt("grad_accum"), "tp": Opt("tp", flag="--tensor-parallel-size")}),
    O("lora_alpha", ("--lora-alpha",), "custom", None, group="training", owner="training",
      help_en="LoRA alpha (recorded; it does not change memory)", help_zh="LoRA alpha（仅记录；不影响显存）"),
    O("kbit_prep", ("--kbit-prep",), "choice", "peft", contextual=True, group="training", owner="training",
      choices=KBIT_PREPS,
      help_en="QLoRA with hf: how the 4-bit base is prepared: peft (prepare_model_for_kbit_training: embeddings, "
              "norms and head to fp32, default) | trl0 (TRL 0.7-0.2x SFTTrainer: that, then embeddings and head back "
              "to bf16) | trl (TRL 1.x, and sharded QLoRA under FSDP/ZeRO-3: no k-bit casts, adapters bf16) | none "
              "(get_peft_model only)",
      help_zh="hf 的 QLoRA：4 位基座如何准备：peft（prepare_model_for_kbit_training：词嵌入、归一化层和输出头转 fp32，"
              "默认）| trl0（TRL 0.7-0.2x 的 SFTTrainer：先如此，再把词嵌入和输出头转回 bf16）| trl（TRL 1.x：不做 k-bit "
              "转换，适配器 bf16；FSDP/ZeRO-3 下分片的 QLoRA 亦然）| none（只用 get_peft_model）"),
    O("bnb_version", ("--bnb-version",), "custom", "0.50", contextual=True, group="training", owner="training",
      parse=bnb_version, expected="a bitsandbytes version such as 0.43.1 or 0.50",
      help_en="bitsandbytes version of a QLoRA run (default 0.50; {litgpt}: 0.49.2, the newest its pin allows): "
              "before 0.43.2 its 4-bit matmul also keeps each linear's input for backward; before 0.50 it "
              "dequantizes a weight in the dtype it was quantized from, then casts it to the compute dtype",
      help_zh="QLoRA 运行所用的 bitsandbytes 版本（默认 0.50；{litgpt}：0.49.2，其版本约束允许的最新版）：0.43.2 之前其 4 位"
              "矩阵乘还会为反向保留每个线性层的输入；0.50 之前它先按量化时的类型反量化权重，再转换为计算类型",
      help_opts={"litgpt": Opt("framework", "litgpt")}),
    O("litgpt_version", ("--litgpt-version",), "custom", "0.5.13", group="training", owner="training",
      parse=lambda value, field: bnb_version(value, field, "a LitGPT version such as 0.4.13 or 0.5.13"),
      expected="a LitGPT version such as 0.4.13 or 0.5.13",
      help_en="LitGPT release of a {litgpt} QLoRA run (default 0.5.13): from 0.5.0 its --quantize swaps the "
              "embedding for bitsandbytes' StableEmbedding, whose gradient no optimizer steps or zeroes",
      help_zh="{litgpt} QLoRA 运行所用的 LitGPT 版本（默认 0.5.13）：从 0.5.0 起其 --quantize 把词嵌入换成 bitsandbytes 的 "
              "StableEmbedding，其梯度不被任何优化器更新或清零", help_opts={"litgpt": Opt("framework", "litgpt")}),
    O("unsloth_version", ("--unsloth-version",), "custom", "2026.8.13", group="training", owner="training",
      parse=lambda value, field: calendar_version(value, field, "an Unsloth release such as 2024.12.3 or 2026.8.13"),
      expected="an Unsloth release such as 2024.12.3 or 2026.8.13",
      help_en="Unsloth release of a {unsloth} LoRA or QLoRA run (default 2026.8.13): before 2025.3 its LoRA "
              "matmul adds the adapter's product out of place, so the recomputed MLP's backward holds one more "
              "gate/up-wide tensor per token, and its older offloaded checkpointer moves every layer's input to "
              "the host, keeping no input or buffer on the GPU; before 2026.5 one reload buffer, not two",
      help_zh="{unsloth} LoRA 或 QLoRA 运行所用的 Unsloth 版本（默认 2026.8.13）：2025.3 之前其 LoRA 矩阵乘以非原地方式加上"
              "适配器的乘积，因此重算的 MLP 反向每个 token 多持有一个 gate/up 宽度的张量，且其旧版卸载式检查点把每一层的输入"
              "都移到主机内存，GPU 上不保留任何输入或缓冲区；2026.5 之前只有一个拷回缓冲区，而不是两个",
      help_opts={"unsloth": Opt("framework", "unsloth")}),
    O("bnb_compute_dtype", ("--bnb-compute-dtype",), "custom", None, group="training", owner="training",
      parse=_dtype, help_en="QLoRA: bitsandbytes' compute dtype (bnb_4bit_compute_dtype: fp16 | bf16 | fp32; default: "
                            "the model's dtype, as the recipes set it; transformers' own default is fp32): each 4-bit "
                            "linear casts its input to it and dequantizes its weight to it",
      help_zh="QLoRA：bitsandbytes 的计算类型（bnb_4bit_compute_dtype：fp16 | bf16 | fp32；默认与模型类型相同，与常见配方一致；"
              "transformers 自身的默认是 fp32）：每个 4 位线性层把输入转换为该类型，并把权重反量化为该类型"),
    O("dora", ("--dora",), "flag", False, group="training", owner="training",
      help_en="DoRA adapters (peft use_dora) with {lora}/qlora",
      help_zh="DoRA 适配器（peft 的 use_dora），配合 {lora}/qlora", help_opts={"lora": Opt("method", "lora")}),
    O("checkpoint_mode", (), "choice", "full", group="training", owner="training", choices=CHECKPOINT_MODES,
      shown_as="--grad-checkpointing",
      help_en="the checkpointing mode (also given as {mode}); giving it turns checkpointing on",
      help_zh="检查点模式（也可写作 {mode}）；给出即开启检查点", help_opts={"mode": Opt("grad_checkpointing", "MODE")}),
    O("checkpoint_reentrant", ("--checkpoint-reentrant",), "flag", None, contextual=True, group="training",
      owner="training", negation="--no-checkpoint-reentrant",
      help_en="checkpointing with torch.utils.checkpoint(use_reentrant=True) (transformers 4.x's default; "
              "LLaMA-Factory, axolotl and Unsloth use it; transformers 5: non-reentrant): forward runs the checkpointed "
              "layers without building their graph, so what bitsandbytes' matmuls keep on ctx (LLM.int8, 4-bit before "
              "0.43.2) is not kept for every layer",
      help_zh="以 torch.utils.checkpoint(use_reentrant=True) 做检查点（transformers 4.x 的默认；LLaMA-Factory、axolotl 和 "
              "Unsloth 使用它；transformers 5 为非重入）：前向计算检查点层时不建立其计算图，因此 bitsandbytes 矩阵乘保存在 ctx 上的"
              "张量（LLM.int8、0.43.2 之前的 4 位）不会在每一层都保留"),
    O("checkpoint_every", ("--checkpoint-every",), "int", 1, group="training", owner="training", lo=1, hi=100_000,
      metavar="N", help_en="checkpoint only every N-th layer (torchtune ac_option)",
      help_zh="每 N 层只检查点一层（torchtune 的 ac_option）"),
    O("recompute_method", ("--recompute-method",), "choice", "uniform", group="training", owner="training",
      choices=RECOMPUTE_METHODS,
      help_en="Megatron-LM full recompute: uniform (default: checkpoint the input of every group of "
              "{n} layers) | block (checkpoint only the first {n} layers)",
      help_zh="Megatron-LM 完全重算：uniform（默认：每 {n} 层为一组，只保存组的输入）| block"
              "（只对前 {n} 层做检查点）", help_opts={"n": Opt("recompute_num_layers")}),
    O("recompute_num_layers", ("--recompute-num-layers",), "int", 1, group="training", owner="training", lo=1,
      hi=100_000, metavar="N",
      help_en="Megatron-LM {n}: layers per checkpointed group (uniform) or checkpointed layers (block); default 1",
      help_zh="Megatron-LM 的 {n}：每个检查点组的层数（uniform）或做检查点的层数（block）；默认 1",
      help_opts={"n": Opt("recompute_num_layers")}),
    O("float8", ("--float8",), "choice", "none", group="training", owner="training", choices=FLOAT8_RECIPES,
      help_en="torchao float8 training of the decoder layers' linears: none (default) | tensorwise | rowwise | "
              "rowwise_with_gw_hp (Float8LinearRecipeName) | mxfp8 | mxfp8_wgrad_with_hp (torchtitan's "
              "MXFP8LinearConverter: torchao's MXFP8Linear on every linear, the output head too; Blackwell GPUs)",
      help_zh="torchao 对解码层线性层做 float8 训练：none（默认）| tensorwise | rowwise | rowwise_with_gw_hp"
              "（Float8LinearRecipeName）| mxfp8 | mxfp8_wgrad_with_hp（torchtitan 的 MXFP8LinearConverter："
              "torchao 的 MXFP8Linear 用于所有线性层，包括输出头；Blackwell GPU）"),
    O("fsdp_float8_all_gather", ("--fsdp-float8-all-gather",), "flag", False, group="parallel", owner="training",
      help_en="FSDP2 all-gathers float8 weights (torchao enable_fsdp_float8_all_gather; tensorwise only)",
      help_zh="FSDP2 以 float8 聚合权重（torchao 的 enable_fsdp_float8_all_gather；仅 tensorwise）"),
    O("te_fp8", ("--te-fp8",), "choice", "none", group="training", owner="training", choices=TE_FP8_RECIPES,
      help_en="Transformer Engine FP8 under Megatron-LM ({fw}; its fp8-format with fp8-recipe): none (default) | "
              "delayed | tensorwise | mxfp8 (Blackwell GPUs) | blockwise: the decoder layers' linears save FP8 "
              "inputs and keep cached FP8 weights",
      help_zh="Megatron-LM 下的 Transformer Engine FP8（{fw}；即其 fp8-format 与 fp8-recipe）：none（默认）| "
              "delayed | tensorwise | mxfp8（Blackwell GPU）| blockwise：解码层线性层保存 FP8 输入并缓存 FP8 权重",
      help_opts={"fw": Opt("framework", "megatron")}),
    O("fp8_amax_history_len", ("--fp8-amax-history-len",), "int", 1, group="training", owner="training", lo=1,
      hi=1_000_000, metavar="N",
      help_en="amax history rows per FP8 tensor under {r} (Megatron-LM's default 1; Transformer Engine's own 1024)",
      help_zh="{r} 下每个 FP8 张量的 amax 历史行数（Megatron-LM 默认 1；Transformer Engine 自身默认 1024）",
      help_opts={"r": Opt("te_fp8", "delayed")}),
    O("fp8_param_gather", ("--fp8-param-gather",), "flag", False, group="training", owner="training",
      help_en="Megatron-LM keeps the decoder layers' linear weights in FP8 and all-gathers them in FP8 (with {te} "
              "and the distributed optimizer)",
      help_zh="Megatron-LM 以 FP8 保存解码层线性层权重并以 FP8 聚合（需 {te} 与分布式优化器）",
      help_opts={"te": Opt("te_fp8", "RECIPE")}),
    O("activation_offload", ("--activation-offload",), "flag", False, group="training", owner="training",
      help_en="saved activations to pinned CPU memory (torchtune / TRL activation offloading)",
      help_zh="把保存的激活卸载到锁页 CPU 内存（torchtune / TRL 的激活卸载）"),
    O("ce_chunks", ("--chunked-ce",), "int", 1, contextual=True, group="training", owner="training", lo=1, hi=1_000_000,
      const="8", metavar="N",
      help_en="output head and cross-entropy in N chunks (default 8, torchtune; litgpt: 128-token chunks); 1 = off",
      help_zh="输出层与交叉熵分 N 块计算（默认 8，torchtune；litgpt：每块 128 个 token）；1 = 关闭"),
    O("liger", ("--liger",), "custom", (), contextual=True, group="training", owner="training",
      parse=lambda value, field: _liger(value, field), metavar="KERNELS",
      help_en="Liger kernels patched into the model: all, none, or a comma-separated set of flce (fused linear "
              "cross-entropy), rms-norm, swiglu, rope (default: the framework's: none)",
      help_zh="打入模型的 Liger 内核：all、none，或以逗号分隔的 flce（融合线性交叉熵）、rms-norm、swiglu、rope"
              "（默认：框架的设置：不使用）"),
    O("compile", ("--compile",), "flag", False, group="training", owner="training",
      help_en="torch.compile, per decoder block as torchtitan compiles it (torch 2.13: what the partitioner saves) and the loss head",
      help_zh="torch.compile，按 torchtitan 的方式逐块编译解码层（torch 2.13：分区器保存的张量）及损失头"),
    O("compile_components", ("--compile-components",), "choice", "model,loss", group="training", owner="training",
      choices=("model,loss", "model", "loss"),
      help_en="what {compile} compiles (torchtitan's compile.components): the decoder blocks (model), the loss, or both",
      help_zh="{compile} 编译的部分（torchtitan 的 compile.components）：解码块（model）、损失（loss）或两者",
      help_opts={"compile": Opt("compile")}),
    O("packing", ("--packing",), "flag", False, group="training", owner="training",
      help_en="sequences packed to {seq} (every micro-batch full)",
      help_zh="序列打包到 {seq} 长度（每个微批都是满的）", help_opts={"seq": Opt("seq")}),
    O("optimizer_in_backward", ("--optimizer-in-backward",), "flag", False, contextual=True, group="training", owner="training",
      negation="--no-optimizer-in-backward",
      help_en="step each parameter as its gradient lands (torchtune optimizer_in_bwd; its full single-GPU recipes' "
              "default: {off} turns it off)",
      help_zh="梯度一到就更新对应参数（torchtune 的 optimizer_in_bwd；其单卡全量微调配方默认开启："
              "{off} 可关闭）", help_opts={"off": Opt("optimizer_in_backward", False)}),
    O("tp", ("--tp", "--tensor-parallel-size", "-tp"), "int", 1, group="parallel", lo=1, hi=1024, metavar="N",
      help_en="tensor-parallel degree (training: the Megatron split; vLLM: {tps}, = {gpus})",
      help_zh="张量并行度（训练：Megatron 切分；vLLM：{tps}，等于 {gpus}）",
      help_opts={"tps": Opt("tp", flag="--tensor-parallel-size"), "gpus": Opt("num_gpus")}),
    O("sequence_parallel", ("--sequence-parallel",), "flag", False, group="parallel", owner="training",
      help_en="Megatron sequence parallelism inside {tp}", help_zh="{tp} 组内的 Megatron 序列并行",
      help_opts={"tp": Opt("tp")}),
    O("async_tp", ("--async-tp",), "flag", False, group="parallel", owner="training",
      help_en="async tensor parallelism (torchtitan compile.enable_async_tensor_parallel: inductor's micro-pipeline TP "
              "fuses each all-gather / reduce-scatter with its matmul over a symmetric-memory workspace; needs "
              "{tp}, {sp} and {compile})",
      help_zh="异步张量并行（torchtitan 的 compile.enable_async_tensor_parallel：inductor 的 micro-pipeline TP 把每个 "
              "all-gather / reduce-scatter 与其矩阵乘在对称内存工作区上融合；需要 {tp}、{sp} 和 {compile}）",
      help_opts={"tp": Opt("tp", "N"), "sp": Opt("sequence_parallel"), "compile": Opt("compile")}),
    O("sp", ("--sp", "--cp"), "int", 1, group="parallel", owner="training", lo=1, hi=1024, metavar="N",
      help_en="context / sequence parallel degree (the sequence split over N GPUs)",
      help_zh="上下文 / 序列并行度（序列切分到 N 个 GPU）"),
    O("sp_mode", ("--sp-mode",), "choice", "ring", group="parallel", owner="training", choices=SP_MODES,
      help_en="ring (ring attention, torch context_parallel; default) | ulysses (DeepSpeed-Ulysses all-to-all)",
      help_zh="ring（环形注意力，torch context_parallel；默认）| ulysses（DeepSpeed-Ulysses all-to-all）"),
    O("ep", ("--ep",), "int", 1, group="parallel", owner="training", lo=1, hi=1024, metavar="N",
      help_en="expert-parallel degree (MoE experts split over N GPUs)", help_zh="专家并行度（MoE 专家切分到 N 个 GPU）"),
    O("moe_dispatcher", ("--moe-token-dispatcher-type",), "choice", "allgather", group="parallel", owner="training",
      choices=("allgather", "alltoall"),
      help_en="Megatron-LM's MoE token dispatcher: allgather (its default: the TP × EP group's tokens gathered into "
              "one global buffer) | alltoall (tokens sent to their experts' ranks); with {fw} only",
      help_zh="Megatron-LM 的 MoE 词元分发器：allgather（其默认：TP × EP 组的词元聚合到一个全局缓冲区）| alltoall"
              "（词元发送到其专家所在的进程）；仅用于 {fw}", help_opts={"fw": Opt("framework", "megatron")}),
    O("moe_capacity_factor", ("--moe-expert-capacity-factor",), "float", None, group="parallel", owner="training",
      lo=0.01, hi=1000.0, metavar="F",
      help_en="Megatron-LM MoE expert capacity factor: each expert takes at most ceil(tokens·k/experts·F) rows "
              "(get_capacity); default: dropless; with {fw} only",
      help_zh="Megatron-LM MoE 专家容量因子：每个专家最多接收 ceil(词元数·k/专家数·F) 行（get_capacity）；"
              "默认：不丢弃；仅用于 {fw}", help_opts={"fw": Opt("framework", "megatron")}),
    O("moe_pad_to_capacity", ("--moe-pad-expert-input-to-capacity",), "flag", False, group="parallel",
      owner="training",
      help_en="Megatron-LM drop-and-pad: every expert's input padded to its capacity (needs {cf})",
      help_zh="Megatron-LM 丢弃并填充：每个专家的输入都填充到其容量（需要 {cf}）",
      help_opts={"cf": Opt("moe_capacity_factor", "F")}),
    O("nodes", ("--nodes",), "int", 1, group="parallel", lo=1, hi=100_000,
      help_en="nodes the {gpus} are spread over (hybrid sharding, per-node CPU)",
      help_zh="{gpus} 分布的节点数（混合分片、每节点 CPU）", help_opts={"gpus": Opt("num_gpus")}),
    O("fsdp_sharding", ("--fsdp-sharding",), "choice", "full", group="parallel", owner="training",
      choices=FSDP_SHARDING, help_en="full (default) | hybrid (shard in a node, replicate across nodes)",
      help_zh="full（默认）| hybrid（节点内分片，节点间复制）"),
    O("fsdp_version", ("--fsdp-version",), "int", 2, group="parallel", owner="training", lo=1, hi=2,
      help_en="PyTorch FSDP 1 (flat parameters) or 2 (per-parameter, default)",
      help_zh="PyTorch FSDP 1（扁平参数）或 2（逐参数，默认）"),
    O("fsdp_backward_prefetch", ("--fsdp-backward-prefetch",), "choice", "none", group="parallel", owner="training",
      choices=("none", "pre"),
      help_en="FSDP1's backward prefetch: none (accelerate's default, NO_PREFETCH) | pre (BACKWARD_PRE, torch's own "
              "default: the next unit gathered during a unit's backward)",
      help_zh="FSDP1 的反向预取：none（accelerate 默认，NO_PREFETCH）| pre（BACKWARD_PRE，torch 自身的默认：在一个单元的反向"
              "期间聚合下一个单元）"),
    O("zero_prefetch", ("--zero-prefetch-bucket",), "int", 50_000_000, group="parallel", owner="training",
      lo=0, hi=10**13, metavar="ELEMENTS", help_en="ZeRO-3 stage3_prefetch_bucket_size (5e7)",
      help_zh="ZeRO-3 的 stage3_prefetch_bucket_size（5e7）"),
    O("zero_max_live", ("--zero-max-live-params",), "int", 1_000_000_000, group="parallel", owner="training",
      lo=0, hi=10**13, metavar="ELEMENTS", help_en="ZeRO-3 stage3_max_live_parameters (1e9)",
      help_zh="ZeRO-3 的 stage3_max_live_parameters（1e9）"),
    O("zero_persistence", ("--zero-param-persistence",), "int", 100_000, group="parallel", owner="training",
      lo=0, hi=10**13, metavar="ELEMENTS", help_en="ZeRO-3 stage3_param_persistence_threshold (1e5)",
      help_zh="ZeRO-3 的 stage3_param_persistence_threshold（1e5）"),
    O("reduce_bucket", ("--reduce-bucket",), "int", 500_000_000, group="parallel", owner="training", lo=0,
      hi=10**13, metavar="ELEMENTS", help_en="DeepSpeed reduce_bucket_size (5e8)",
      help_zh="DeepSpeed 的 reduce_bucket_size（5e8）"),
    O("zero_auto", ("--zero-auto",), "custom", (), group="parallel", owner="training",
      parse=lambda value, field: _zero_auto(value, field), metavar="SIZES",
      help_en="DeepSpeed sizes left \"auto\", as the HF Trainer fills them from the model's hidden size h: a "
              "comma-separated set of reduce_bucket (h²), zero_prefetch (0.9·h²), zero_persistence (10·h), as a DeepSpeed "
              "config that leaves them \"auto\" is read",
      help_zh="DeepSpeed 配置中留作 \"auto\" 的大小，按 HF Trainer 的做法由模型的 hidden size h 填入：以逗号分隔的 "
              "reduce_bucket（h²）、zero_prefetch（0.9·h²）、zero_persistence（10·h）；读入把它们留作 \"auto\" 的 DeepSpeed 配置时即按此设置"),
    O("offload_device", ("--offload-device",), "choice", "cpu", group="parallel", owner="training",
      choices=OFFLOAD_DEVICES, help_en="cpu (default) | nvme (ZeRO-Infinity)",
      help_zh="cpu（默认）| nvme（ZeRO-Infinity）"),
    O("pp_schedule", ("--pp-schedule",), "choice", "1f1b", group="parallel", owner="training",
      choices=PP_SCHEDULES, help_en="1f1b (default) | gpipe | interleaved (interleaved 1F1B, {v} model chunks per "
      "GPU) | interleaved-zb (torch's interleaved zero bubble) | zbv (zero bubble V: 2 chunks, the head on the first "
      "GPU)", help_zh="1f1b（默认）| gpipe | interleaved（交错 1F1B，每 GPU {v} 个模型块）| interleaved-zb（torch 的交错零气泡）"
      "| zbv（零气泡 V 形：2 个模型块，输出头在第一个 GPU）", help_opts={"v": Opt("pp_virtual")}),
    O("pp_reshard_after_forward", ("--pp-reshard-after-forward",), "flag", False, group="parallel",
      owner="training",
      help_en="torchtitan under {pp}: FSDP2 reshards each stage after every micro-batch's forward and gathers it "
              "again for its backward (fsdp_reshard_after_forward = \"always\"; the default keeps the stage "
              "gathered)",
      help_zh="torchtitan 在 {pp} 下：FSDP2 在每个微批次前向后对阶段重新分片，反向时再次聚合"
              "（fsdp_reshard_after_forward = \"always\"；默认保持阶段聚合）", help_opts={"pp": Opt("pp")}),
    O("pp_virtual", ("--pp-virtual",), "int", 2, group="parallel", owner="training", lo=2, hi=64, metavar="V",
      help_en="model chunks (virtual stages) per GPU of the interleaved schedules (Megatron-LM "
              "--num-virtual-stages-per-pipeline-rank; default 2)",
      help_zh="交错调度中每 GPU 的模型块（虚拟阶段）数（Megatron-LM --num-virtual-stages-per-pipeline-rank；默认 2）"),
    O("cache", ("--cache",), "choice", "dynamic", choices=CACHES,
      help_en="transformers KV cache: dynamic (default) | static | quantized (QuantizedCache: quanto / HQQ, "
              "see {b})",
      help_zh="transformers 的 KV 缓存：dynamic（默认）| static | quantized（QuantizedCache：quanto / HQQ，"
              "见 {b}）", help_opts={"b": Opt("kv_backend")}),
    # ---- not workload fields: the model, config files to import, the output
    O("params", ("--params",), "custom", group="model", owner="model", workload=False,
      help_en="parameter count instead of MODEL: 7B, 6.7e9, 70b, 1.5T",
      help_zh="不给 MODEL 时的参数量：7B、6.7e9、70b、1.5T"),
    *(O(f, (f"--{f.replace('_', '-')}",), "int", group="model", owner="model", workload=False, web=False,
        help_en=f"shape override for --params ({f.replace('_', '-')})",
        help_zh=f"--params 模型的形状覆盖（{f.replace('_', '-')}）")
      for f in ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab")),
    O("deepspeed", ("--deepspeed",), "custom", None, group="parallel", owner="training", workload=False, web=False,
      metavar="DS_CONFIG.json", help_en="read ZeRO stage, offload, precision, batch from it",
      help_zh="从中读取 ZeRO 阶段、卸载、精度、批大小"),
    O("fsdp", ("--fsdp",), "custom", None, group="parallel", owner="training", workload=False, web=False,
      metavar="ACCELERATE_CONFIG", help_en="read an accelerate config: its FSDP section (sharding strategy, offload, "
                                            "checkpointing) or DeepSpeed section (ZeRO stage, offload), processes",
      help_zh="读取 accelerate 配置：FSDP 部分（分片策略、卸载、检查点）或 DeepSpeed 部分（ZeRO 阶段、卸载）、进程数"),
    O("config", ("--config",), "custom", None, group="training", owner="training", workload=False, web=False,
      metavar="RECIPE", help_en="read a training recipe: axolotl, LLaMA-Factory, TRL / TrainingArguments (YAML or "
                                "JSON) or torchtune",
      help_zh="读取训练配方：axolotl、LLaMA-Factory、TRL / TrainingArguments（YAML 或 JSON）或 torchtune"),
    O("torchtitan", ("--torchtitan",), "custom", None, group="parallel", owner="training", workload=False, web=False,
      metavar="TRAIN.toml", help_en="read a torchtitan TOML job config: batch, sequence, precision, parallel degrees, "
                                    "activation checkpointing, compile, float8",
      help_zh="读取 torchtitan 的 TOML 任务配置：批大小、序列长度、精度、并行度、激活检查点、compile、float8"),
    O("megatron_args", ("--megatron-args",), "custom", None, group="parallel", owner="training", workload=False,
      web=False, metavar="ARGS|FILE",
      help_en="read Megatron-LM arguments (the text, as --megatron-args=\"--bf16 ...\", or a file): micro-batch, "
              "sequence, parallel sizes, distributed optimizer, --bf16, recompute",
      help_zh="读取 Megatron-LM 参数（文本，写作 --megatron-args=\"--bf16 ...\"，或文件）：微批、序列长度、并行规模、"
              "分布式优化器、--bf16、重算"),
    O("zero", ("--zero",), "choice", None, group="parallel", owner="training", workload=False, web=False,
      choices=("0", "1", "2", "3"), help_en="DeepSpeed ZeRO stage (= --parallelism zeroN; 0 = ddp)",
      help_zh="DeepSpeed ZeRO 阶段（等于 --parallelism zeroN；0 = ddp）"),
    O("gpu", ("--gpu",), "custom", None, group="output", owner="output", workload=False, append=True,
      metavar="NAME", help_en="GPU to check (repeatable): rtx-4090, a100, h100, 24GB, auto",
      help_zh="要检查的 GPU（可重复）：rtx-4090、a100、h100、24GB、auto"),
    O("gpu_memory", ("--gpu-memory",), "custom", None, group="output", owner="output", workload=False, web=False,
      append=True, metavar="SIZE", help_en="a GPU of this much memory (repeatable): 24GB, 80GiB, 16G",
      help_zh="这么大显存的 GPU（可重复）：24GB、80GiB、16G"),
    O("units", ("--units",), "choice", "GiB", group="output", owner="output", workload=False, web=False,
      choices=("GiB", "GB"), help_en="GiB (default) or GB", help_zh="GiB（默认）或 GB"),
    O("lang", ("--lang",), "choice", None, group="output", owner="output", workload=False,
      choices=("en", "zh"), help_en="en | zh (default from the locale)", help_zh="en | zh（默认取自系统区域设置）"),
    O("plot", ("--plot",), "custom", None, group="output", owner="output", workload=False, web=False,
      metavar="FILE.svg", help_en="also draw the estimate as a picture into FILE.svg (.png with rsvg-convert or "
      "cairosvg installed)", help_zh="同时把估算结果画成图写入 FILE.svg（装有 rsvg-convert 或 cairosvg 时可写 .png）"),
    O("json", ("--json",), "flag", False, group="output", owner="output", workload=False, web=False,
      help_en="print JSON (schema vramscope.estimate/1)", help_zh="输出 JSON（模式 vramscope.estimate/1）"),
    O("no_hub", ("--no-hub",), "flag", False, group="output", owner="output", workload=False, web=False,
      help_en="never contact the Hugging Face Hub", help_zh="从不连接 Hugging Face Hub"),
)
del O

# ---------------------------------------------------------------- the whole table

_TABLE: Optional[dict[str, Option]] = None


def table() -> dict[str, Option]:
    """Every option by field: the core rows, then each engine's (``Engine.options``)."""
    global _TABLE
    if _TABLE is None:
        from .engines.base import ENGINES

        rows = {o.field: o for o in CORE}
        for engine in ENGINES.values():
            for o in engine.options:
                if o.field in rows:
                    raise AssertionError(f"option {o.field} declared twice")
                rows[o.field] = o
        _TABLE = rows
    return _TABLE


def workload_rows() -> list[Option]:
    return [o for o in table().values() if o.workload]


def workload_fields() -> tuple[str, ...]:
    """The Python API's workload keywords (``vramscope.estimate(seq=...)``)."""
    return tuple(o.field for o in workload_rows())


def web_fields() -> tuple[str, ...]:
    """The web form's and the web API's parameters beside ``model``, ``params``, ``gpu`` and ``lang``."""
    return tuple(o.field for o in workload_rows() if o.web)


def row(field: str) -> Optional[Option]:
    return table().get(field)


def read(field: str, value: Any) -> Any:
    """``value`` of option ``field`` checked and typed by its row."""
    return table()[field].read(value)


def check_keywords(given: Iterable[str], known: Iterable[str], function: str = "vramscope.estimate") -> None:
    """Refuse names that are not options, with the closest option named (``unknown option 'x'; did you mean
    'y'?``): the one place the Python API and the web API check their parameter names."""
    known = tuple(known)
    for name in given:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            if close:
                raise VramscopeError("unknown_option", name=shown(name), suggestion=close[0])
            raise VramscopeError("unknown_option_nosuggest", name=shown(name), function=function)


# ---------------------------------------------------------------- spelling a field on each surface

SURFACES = ("api", "cli", "web")


def spell(field: str, surface: str, value: Any = None) -> str:
    """How ``field`` reads to a user of ``surface``: its flag on the command line (the negation when ``value``
    is False), its keyword in the Python API and the web. A name that is not an option is left as it is."""
    o = table().get(field) if isinstance(field, str) else None
    if o is None:
        return field
    if surface == "cli":
        return o.negation if value is False and o.negation else o.flag
    return field


def setting(field: str, value: Any, surface: str) -> str:
    """An option with a value as the user of ``surface`` writes it: ``--method lora``, ``method='lora'``,
    ``method=lora``."""
    name = spell(field, surface, value)
    if surface == "cli":
        if value is True or value is None or (value is False and name.startswith("--no-")):
            return name
        return f"{name} {value}"
    if surface == "api" and not (isinstance(value, str) and value.isupper()):  # a placeholder (N, MODE) bare
        return f"{name}={value!r}"
    return f"{name}={value}"


# ---------------------------------------------------------------- the command line


def add_arguments(parser: Any, lang: str = "en", groups: Iterable[str] = tuple(GROUPS)) -> None:
    """The argparse arguments of every option in ``groups``, each group under its title in ``lang``. Every
    default is None ("not given"): defaults are applied once, by ``make_workload``."""
    once = _once_action()
    rows = [o for o in table().values() if o.flags]
    for g in groups:
        mine = [o for o in rows if o.group == g]
        if not mine:
            continue
        title = GROUPS.get(g, (g, g))[1 if lang == "zh" else 0]
        ag = parser.add_argument_group(title)
        for o in mine:
            # a workload option's default is None ("not given"): make_workload applies the default, once
            default = None if o.workload else o.default
            kwargs: dict[str, Any] = {"dest": o.field, "help": o.help(lang), "default": default}
            if o.append:
                kwargs.update(action="append", default=[])
            elif o.switch:
                kwargs.update(action="store_true", default=default)
            elif o.const is not None:
                kwargs.update(nargs="?", const=o.const, action=once)
            elif o.choices and not o.workload:
                kwargs["choices"] = o.choices
            else:
                kwargs["action"] = once
            if o.metavar and not o.switch:
                kwargs["metavar"] = o.metavar
            ag.add_argument(*o.flags, **kwargs)
            if o.negation:
                ag.add_argument(o.negation, dest="no_" + o.field, action="store_true", default=None,
                                help=(f"关闭 {o.flag}（包括框架默认开启的）" if lang == "zh" else
                                      f"turn {o.flag} off (a framework profile's default too)"))


@lru_cache(maxsize=1)
def _once_action() -> type:
    """The argparse action of every valued option (made on first use: ``import vramscope`` needs no argparse)."""
    import argparse

    class Once(argparse.Action):
        """Stores the value; a second spelling with another value (``--tp 2 -tp 4``) is recorded as a conflict
        (raised by :func:`from_namespace` as one clear line)."""

        def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Optional[str] = None) -> None:
            seen = namespace.__dict__.setdefault("_spellings", {})
            prev = getattr(namespace, self.dest, None)
            if prev is not None and str(prev).strip() != str(values).strip():
                namespace.__dict__.setdefault("_conflicts", []).append((seen.get(self.dest), option_string))
            seen.setdefault(self.dest, option_string)
            setattr(namespace, self.dest, values)

    return Once


def from_namespace(args: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The options the user gave on the command line (argparse ``args``), by field: what was not given is left
    out, so that ``make_workload`` applies each default once."""
    conflicts = args.__dict__.get("_conflicts")
    if conflicts:
        a, b = conflicts[0]
        from .errors import Text

        raise VramscopeError("conflict", field=a, reason=Text("r_two_spellings", other=b))
    out: dict[str, Any] = {}
    for f in fields:
        value = getattr(args, f, None)
        if value is not None:
            out[f] = value
        if getattr(args, "no_" + f, None):
            if value is not None and not isinstance(value, bool):
                out["checkpoint_mode" if f == "grad_checkpointing" else f] = value
            out[f] = False
    return out


# ---------------------------------------------------------------- docs/json.md


def markdown(lang: str = "en") -> str:
    """The options as a Markdown table (``docs/json.md``): field, flags, default, owner, help."""
    head = ("| field (API, web) | command line | default | owner | meaning |" if lang == "en" else
            "| 字段（API、网页）| 命令行 | 默认 | 归属 | 含义 |")
    lines = [head, "|---|---|---|---|---|"]
    for o in workload_rows():
        default = "" if o.default is None else (",".join(o.default) if isinstance(o.default, tuple) else
                                                str(o.default))
        flags = " ".join(f"`{f}`" for f in o.flags + ((o.negation,) if o.negation else ()))
        lines.append(f"| `{o.field}` | {flags} | {default} | {o.owner} | {o.help(lang).replace('|', '/')} |")
    return "\n".join(lines)


DOC_START, DOC_END = "<!-- options table: generated, do not edit -->\n", "\n<!-- end of options table -->"


def write_docs(path: str) -> None:
    """Put :func:`markdown` between the markers of ``path`` (docs/json.md)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(DOC_START, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + DOC_START + markdown() + DOC_END + rest.split(DOC_END, 1)[1])


if __name__ == "__main__":  # python -m vramscope.options [--write docs/json.md]
    import sys

    if sys.argv[1:2] == ["--write"]:
        write_docs(sys.argv[2])
    else:
        print(markdown())
