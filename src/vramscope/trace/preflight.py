"""What ``vramscope trace`` checks before it imports torch: every refusal is one line and takes milliseconds.

A trace runs the real model code on fake tensors. Fake tensors hold no storage, so the bytes a model would use
cost nothing; what costs time is the number of modules and ops the Python code walks through (every layer,
every parameter, every rank's shard, every loss chunk), and what costs memory is the Python objects behind them
and the tracker's event log. Measured on 2 CPU cores (torch 2.13 CPU, transformers 5.24, peft 0.21; CPU seconds
of the trace itself, peak RSS of the process; torch's import adds ~2 s and ~300 MiB):

* Llama-3-8B full fine-tuning step, seq 2048 (32 layers): 5.2 s, 362 MiB
* the same shape at 64 / 128 / 256 layers: 9.9 / 17.9 / 35.7 s (wall, idle), 372 / 395 / 439 MiB
* 200 layers (the limit), full fine-tuning: 29.6 s, 420 MiB; inference: 10.7 s, 359 MiB
* 200 layers, DoRA + dropout + checkpointing (the heaviest method): 128.5 s, 582 MiB
* Llama-3.1-405B full fine-tuning (126 layers): 20.7 s, 395 MiB
* DeepSeek-V3 LoRA (61 layers, 256 experts): 26.5 s, 424 MiB
* Llama-3-8B, FSDP2 over 1,024 ranks: 45.8 s, 374 MiB
* Llama-3-8B, 1,024 cross-entropy chunks: 26.9 s (wall, idle), 413 MiB

So a layer costs ~0.15 s in training (~0.05 s in inference, up to ~0.65 s with DoRA and checkpointing), an
FSDP rank ~1.3 ms per layer, a loss chunk ~0.02 s; parameters and tensor sizes cost nothing by themselves. Each
limit below keeps its driver within ~2 CPU minutes and ~0.6 GiB (all of them at once: ~4 minutes); the
wall-clock ``--timeout`` (default 300 s) is the last guard, for a slower or busier machine. Nothing here
imports torch.
"""

from __future__ import annotations

import shlex
from typing import Any, Optional

from ..engines.base import engine_for
from ..errors import Opt, Text, VramscopeError
from ..i18n import register
from ..sources.base import ResolvedModel
from ..units import format_count, parse_int, shown
from ..workload import Workload

#: layers (encoder + decoder) of one trace: the deepest public models have 126 (Llama-3.1-405B); 200 layers of
#: a full fine-tuning step trace in ~30 CPU s and 0.42 GiB peak RSS (DoRA with checkpointing: 129 s, 0.58 GiB)
MAX_LAYERS = 200
#: parameters: beyond the largest public checkpoints (~1-2T); fake tensors make the bytes free, but a larger
#: count only comes from a synthetic shape (--params) that no real model code was written for
MAX_PARAMS = 2 * 10**12
#: FSDP ranks on the fake process group: every parameter is split into one shard per rank
MAX_WORLD = 1024
#: ranks × layers: the shard work (~1.3 ms per rank and layer; 32 layers × 1,024 ranks traced in 46 CPU s)
MAX_LAYER_RANKS = 65_536
#: chunked cross-entropy: one output projection and loss per chunk (~0.02 s each)
MAX_CE_CHUNKS = 1024
#: one tensor's bytes: torch computes sizes in 64-bit integers; no device holds an exabyte
MAX_TENSOR_BYTES = 2**60
DEFAULT_TIMEOUT_S = 300
MAX_TIMEOUT_S = 24 * 3600

#: model types whose learned position table is offset by the padding index (positions start at pad + 1)
_PLAIN_STORAGE = ("", "bf16", "f16", "fp16", "f32", "fp32", "f64", "fp64")
#: options the trace leaves out of the equivalent ``vramscope estimate`` command line
_TRACE_ONLY = ("quiet", "timeout")


def parse_timeout(value: Any) -> int:
    """``--timeout`` in whole seconds, 1 to a day."""
    return parse_int(DEFAULT_TIMEOUT_S if value is None else value, "--timeout", 1, MAX_TIMEOUT_S)


def estimate_command(args: Any = None, model: Optional[ResolvedModel] = None) -> str:
    """The ``vramscope estimate`` command line with the same options as this trace (argparse ``args``), or,
    without ``args``, the model alone."""
    if args is None:
        return "vramscope estimate" + ("" if model is None else " " + _quote(model.origin))
    from ..cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if getattr(a, "choices", None) and "trace" in a.choices).choices["trace"]
    parts = ["vramscope", "estimate"]
    for action in sub._actions:
        dest = action.dest
        if dest in ("help",) + _TRACE_ONLY or not hasattr(args, dest):
            continue
        value, default = getattr(args, dest), action.default
        if value == default or value is None or value is False or value == []:
            continue
        if not action.option_strings:
            parts.append(_quote(value))
            continue
        flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
        if value is True:
            parts.append(flag)
        elif isinstance(value, list):
            for v in value:
                parts += [flag, _quote(v)]
        else:
            parts += [flag, _quote(value)]
    return " ".join(parts)


def _quote(value: Any) -> str:
    return shlex.quote(shown(value, 200))


def _not_traced(field: str, reason: Text, command: str) -> VramscopeError:
    return VramscopeError("trace_not_traced", field=field, reason=reason, command=command)


def check_workload(w: Workload, command: str = "vramscope estimate") -> None:
    """The workloads the trace cannot run as asked; refused before anything is built."""
    if not engine_for(w).traceable:
        raise _not_traced("engine", Text("r_trace_engine", engine=w.engine), command)
    if w.estimator != "analytic":
        raise VramscopeError("conflict", field="estimator",
                             reason=Text("r_trace_estimator", drop=Opt("estimator", w.estimator)))
    if w.profile.own_modules and w.profile.trace_model == "transformers":
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_torchtune", hf=Opt("framework", "hf")))
    if w.method == "qlora" or w.quant not in ("none",):
        raise VramscopeError("trace_unsupported",
                             reason=Text("r_trace_quant", quant=w.quant))
    # tensor parallelism is traced under FSDP2 over a data-parallel dimension (torchtitan's 2-D layout): alone,
    # the parameters it leaves plain (norms without sequence parallelism) meet DTensors in the optimizer's foreach
    two_d = w.training and w.strategy.is_fsdp and w.num_gpus > w.tp_degree
    if w.pp > 1:
        check_pipeline(w, command)
    elif (w.tp_degree > 1 and not two_d) or w.ep > 1:
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_model_parallel", use=Opt("num_gpus", 1)))
    if w.sp > 1:
        # context parallelism: torch's ring attention (trace/context.py) under FSDP2, as torchtitan runs it
        if not (w.training and w.strategy.is_fsdp):
            raise VramscopeError("trace_unsupported", reason=Text("r_trace_model_parallel", use=Opt("num_gpus", 1)))
        if w.sp_mode != "ring":
            raise _not_traced("sp_mode", Text("r_trace_ulysses", ring=Opt("sp_mode", "ring")), command)
        if w.seq % (2 * w.sp):
            raise _not_traced("seq", Text("r_trace_cp_seq", n=2 * w.sp), command)
        if w.ce_chunks > 1 or w.activation_offload or w.sequence_parallel:
            raise _not_traced("sp", Text("r_trace_cp_combo"), command)
    if w.tp_degree > 1 and w.sequence_parallel and w.grad_checkpointing:
        # transformers builds its causal mask from the embedding's output, which sequence parallelism shards
        raise _not_traced("grad_checkpointing", Text("r_trace_sp_ckpt"), command)
    if w.num_gpus > 1 and not (w.training and w.strategy.is_fsdp and w.fsdp_version == 2
                                               and w.offload == "none" and w.fsdp_sharding == "full"):
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_multi_gpu", fsdp=Opt("parallelism", "fsdp"),
                                                              one=Opt("num_gpus", 1)))
    if w.offload != "none":
        raise _not_traced("offload", Text("r_trace_offload"), command)
    if w.training and w.precision == "deepspeed":
        raise _not_traced("precision", Text("r_trace_deepspeed"), command)
    if w.optimizer in ("adamw-8bit", "lion", "paged-adamw", "paged-adamw-8bit"):
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_optimizer", optimizer=w.optimizer))
    if w.kv_dtype not in (None, "fp16", "bf16", "fp32"):
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_kv_quant"))
    if w.compile:
        _check_compile(w, command)
    if w.float8.startswith("mxfp8"):
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_mxfp8", use=Opt("float8", "rowwise")))
    if w.cache != "dynamic":
        raise _not_traced("cache", Text("r_trace_cache"), command)


#: the pipeline schedules the trace runs (trace/pipeline.py): torch's own; ZBV's split backward leaves FSDP2's
#: sharded parameters without gradients on the fake process group (docs/accuracy.md), the interleaved zero-bubble
#: schedule is not checked against the analytic stage
PP_TRACED = ("1f1b", "gpipe", "interleaved")


def check_pipeline(w: Workload, command: str) -> None:
    """Pipeline parallelism as ``trace/pipeline.py`` runs it: torchtitan's layout (its split, FSDP2 over at least
    two data-parallel ranks inside each stage), full training, nothing else model-parallel."""
    if not w.training or w.tp_degree > 1 or w.sp > 1 or w.ep > 1:
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_pp_alone", use=Opt("pp", 1)))
    if w.framework != "torchtitan":
        raise _not_traced("framework", Text("r_trace_pp_framework", use=Opt("framework", "torchtitan")), command)
    if w.pp_schedule not in PP_TRACED:
        raise _not_traced("pp_schedule", Text("r_trace_pp_schedule", schedule=w.pp_schedule,
                                              allowed=", ".join(PP_TRACED)), command)
    if not w.strategy.is_fsdp or w.num_gpus // w.pp < 2:
        raise _not_traced("num_gpus", Text("r_trace_pp_dp", fsdp=Opt("parallelism", "fsdp"), pp=w.pp,
                                           gpus=2 * w.pp), command)
    parts = [("method", w.method != "full"), ("ce_chunks", w.ce_chunks > 1), ("activation_offload",
             bool(w.activation_offload)), ("optimizer_in_backward", bool(w.optimizer_in_backward)),
             ("float8", w.float8 != "none"), ("frozen_layers", bool(w.frozen_layers)), ("compile", bool(w.compile))]
    for field, on in parts:
        if on:
            raise _not_traced(field, Text("r_trace_pp_feature"), command)


def check_pipeline_model(model: ResolvedModel, w: Workload, command: str) -> None:
    """The stages torchtitan can cut from the model's layers (``memory/pipeline.py torchtitan_stage_layers``)."""
    from ..memory.pipeline import torchtitan_stage_layers, total_stages

    n = total_stages(w.pp, w.pp_schedule, w.pp_virtual)
    try:
        torchtitan_stage_layers(model.spec.num_layers, n)
    except ValueError:
        raise VramscopeError("conflict", field="pp", reason=Text("r_trace_pp_split", stages=n,
                                                                 layers=model.spec.num_layers)) from None


def _check_compile(w: Workload, command: str) -> None:
    """``--compile`` is traced as torchtitan's per-block compile (``trace/compiled.py``): full training of the
    decoder blocks on one GPU or FSDP2, without tensor or context parallelism (DTensor activations inside the
    compiled region are not traced), with the loss in eager mode."""
    parts = w.compile_components.split(",")
    if "model" not in parts or not w.training or w.method != "full" or w.tp_degree > 1 or w.sp > 1 \
            or (w.grad_checkpointing and w.checkpoint_mode == "selective") or w.profile.trace_model != "transformers":
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_compile", drop=Opt("compile")))
    if "loss" in parts:
        raise _not_traced("compile_components", Text("r_trace_compile_loss",
                                                     use=Opt("compile_components", "model")), command)


def check_model(model: ResolvedModel, w: Workload, command: str = "vramscope estimate") -> None:
    """Models the trace cannot build from a Hugging Face config."""
    fmt = (model.stored_format or "").strip().lower()
    if model.kind == "gguf" or fmt.startswith("gguf"):
        raise _not_traced("MODEL", Text("r_trace_gguf"), command)
    if model.hf_config is None and model.kind != "params":
        raise _not_traced("MODEL", Text("r_trace_no_config", kind=model.kind), command)
    if model.stored is not None and fmt not in _PLAIN_STORAGE:
        raise _not_traced("MODEL", Text("r_trace_stored_quant", storage=model.stored_format), command)
    if w.training and w.ce_chunks > 1 and model.spec.kind != "decoder":
        raise _not_traced("ce_chunks", Text("r_trace_chunked_ce"), command)
    if w.training and w.grad_checkpointing and w.checkpoint_mode == "selective" and \
            model.spec.layout in ("gpt2", "bert", "t5", "falcon"):
        raise _not_traced("grad_checkpointing", Text("r_trace_selective", layout=model.spec.layout), command)


def position_limit(model: ResolvedModel) -> int:
    """Tokens a model with a learned absolute position table can take (0: no such limit)."""
    spec = model.spec
    if not spec.learned_positions:
        return 0
    cfg = model.hf_config or {}
    offset = 0
    if spec.family.padded_positions:
        pad = cfg.get("pad_token_id", 1)
        offset = (pad if isinstance(pad, int) and 0 <= pad < spec.learned_positions else 1) + 1
    return max(1, spec.learned_positions - offset)


def check_positions(model: ResolvedModel, w: Workload) -> None:
    limit = position_limit(model)
    if limit and w.seq > limit:
        raise VramscopeError("seq_beyond_positions", field="seq", seq=f"{w.seq:,}", model=shown(model.spec.name), n=limit)


def largest_tensor_bytes(model: ResolvedModel, w: Workload) -> int:
    """An upper bound of the largest tensor a step makes: logits, MLP or expert activations, attention scores."""
    s = model.spec
    tokens = w.batch * w.seq
    widest = max(s.hidden_size, s.intermediate_size, s.num_heads * s.head_dim,
                 (s.moe.expert_intermediate_size * s.moe.num_experts) if s.moe else 0)
    out = [4 * tokens * widest, 4 * s.vocab_size * max(s.hidden_size, 1)]
    out.append(4 * (tokens if w.training else w.batch) * s.vocab_size)
    out.append(4 * w.batch * max(s.num_heads, 1) * w.seq * w.seq)  # eager / math attention scores
    return max(out)


def check_cost(model: ResolvedModel, w: Workload, command: str = "vramscope estimate") -> None:
    """The bounds on what a trace may cost (module docstring): refused before the model is built."""
    s = model.spec
    layers = s.num_layers + s.num_decoder_layers
    checks = [
        (layers > MAX_LAYERS, Text("tt_layers"), f"{layers:,}", Text("tt_n_layers", n=MAX_LAYERS),
         Text("tt_layers_why")),
        (model.params > MAX_PARAMS, Text("tt_params"), format_count(model.params), format_count(MAX_PARAMS),
         Text("tt_params_why")),
        (w.training and w.num_gpus > MAX_WORLD, "--gpus", f"{w.num_gpus:,}", Text("tt_n_ranks", n=f"{MAX_WORLD:,}"),
         Text("tt_ranks_why")),
        (w.training and w.num_gpus > 1 and w.num_gpus * layers > MAX_LAYER_RANKS, "--gpus × layers",
         f"{w.num_gpus:,} × {layers:,}", Text("tt_n_rank_layers", n=f"{MAX_LAYER_RANKS:,}"),
         Text("tt_rank_layers_why")),
        (w.training and min(w.ce_chunks, w.seq) > MAX_CE_CHUNKS, "--chunked-ce", f"{w.ce_chunks:,}",
         Text("tt_n_chunks", n=f"{MAX_CE_CHUNKS:,}"), Text("tt_chunks_why")),
    ]
    for over, what, value, limit, why in checks:
        if over:
            raise VramscopeError("trace_too_big", what=what, value=value, limit=limit, why=why, command=command)
    biggest = largest_tensor_bytes(model, w)
    if biggest > MAX_TENSOR_BYTES:
        raise VramscopeError("trace_too_big", what=Text("tt_tensor"), value=f"~{biggest:.2e} bytes",
                             limit="2^60 bytes", why=Text("tt_tensor_why"), command=command)


def check_traceable(model: ResolvedModel, w: Workload, command: str = "vramscope estimate") -> None:
    """Everything :func:`vramscope.trace.estimator.run_trace` would refuse, without importing torch."""
    check_workload(w, command)
    check_model(model, w, command)
    if w.pp > 1:
        check_pipeline_model(model, w, command)
    check_positions(model, w)
    check_cost(model, w, command)


register({
    "r_trace_engine": {"en": "the trace runs transformers' model code, not {engine}",
                       "zh": "追踪运行的是 transformers 的模型代码，不是 {engine}"},
    "r_trace_estimator": {"en": "trace is an estimator of its own; drop {drop}", "zh": "追踪本身就是一种估算器；请去掉 {drop}"},
    "r_trace_torchtune": {"en": "the trace runs transformers' model code, and torchtune's modules keep different tensors "
                                "(docs/accuracy.md; bench/torchtune_trace.py traces torchtune itself); trace the "
                                "transformers run with {hf}",
                          "zh": "追踪运行的是 transformers 的模型代码，而 torchtune 的模块保存的张量不同（见 docs/accuracy.md；"
                                "bench/torchtune_trace.py 追踪 torchtune 本身）；请用 {hf} 追踪 transformers 的运行"},
    "r_trace_quant": {"en": "'{quant}' weights need bitsandbytes/GPTQ CUDA kernels, which do not run on fake CPU "
                            "tensors; use the analytic estimator (or measure on a GPU)",
                      "zh": "'{quant}' 权重需要 bitsandbytes/GPTQ 的 CUDA 内核，无法在伪 CPU 张量上运行；请用解析估算器"
                            "（或在 GPU 上实测）"},
    "r_trace_tp_layout": {"en": "tensor parallelism is traced on Llama-layout decoders (q/k/v/o and gate/up/down "
                                "projections, RMSNorms) only",
                          "zh": "张量并行只在 Llama 结构的解码器（q/k/v/o 与 gate/up/down 投影、RMSNorm）上追踪"},
    "r_trace_tp_tied": {"en": "tensor parallelism is traced for untied output heads only (torchtitan's models are untied)",
                        "zh": "张量并行只追踪不共享权重的输出头（torchtitan 的模型均不共享）"},
    "r_trace_sp_ckpt": {"en": "sequence parallelism with checkpointing is not traced: transformers builds the causal mask "
                              "of a recomputed layer from the sequence-sharded hidden states",
                        "zh": "不追踪带检查点的序列并行：transformers 依据按序列切分的隐藏状态为重算的层构建因果掩码"},
    "r_trace_pp_alone": {"en": "pipeline parallelism is traced for training, without tensor, context or expert "
                                "parallelism; use {use}",
                         "zh": "流水线并行只追踪训练，且不与张量、上下文或专家并行同用；请用 {use}"},
    "r_trace_pp_framework": {"en": "pipeline parallelism is traced as torchtitan runs it (its stage split, FSDP2 inside "
                                    "each stage); use {use}",
                             "zh": "流水线并行按 torchtitan 的做法追踪（它的阶段切分，每个阶段内用 FSDP2）；请用 {use}"},
    "r_trace_pp_schedule": {"en": "the pipeline schedule {schedule} is not traced; traced: {allowed}",
                            "zh": "不追踪流水线调度 {schedule}；可追踪：{allowed}"},
    "r_trace_pp_dp": {"en": "pipeline parallelism is traced with FSDP2 over at least 2 GPUs inside each of the {pp} "
                            "stages; use {fsdp} and a multiple of {gpus} GPUs",
                      "zh": "流水线并行的追踪要求 {pp} 个阶段中每个阶段内用 FSDP2 覆盖至少 2 块 GPU；请用 {fsdp}，"
                            "GPU 数为 {gpus} 的倍数"},
    "r_trace_pp_feature": {"en": "under pipeline parallelism the trace runs full training only (no LoRA, freezing, "
                                 "chunked cross-entropy, activation offload, optimizer in backward, float8 or torch.compile)",
                           "zh": "流水线并行下追踪只运行全量训练（不含 LoRA、冻结、分块交叉熵、激活卸载、反向中的优化器、float8 或 torch.compile）"},
    "r_trace_pp_split": {"en": "torchtitan cannot cut {layers} layers into {stages} stages (the embedding and the "
                               "output head take one layer's place each, and no stage may be empty)",
                         "zh": "torchtitan 无法把 {layers} 层切成 {stages} 个阶段（嵌入层和输出头各占一层的位置，且任何阶段都不能为空）"},
    "r_trace_model_parallel": {"en": "model-parallel workloads are not traced; use {use}",
                               "zh": "不追踪模型并行的工作负载；请用 {use}"},
    "r_trace_ulysses": {"en": "DeepSpeed-Ulysses is not traced (the trace runs torch's ring attention); use {ring}",
                        "zh": "不追踪 DeepSpeed-Ulysses（追踪运行的是 torch 的环形注意力）；请用 {ring}"},
    "r_trace_cp_seq": {"en": "torch's head-tail load balancer splits the sequence into 2 chunks per context-parallel "
                             "rank: the tokens must divide by {n}",
                       "zh": "torch 的首尾负载均衡器把序列切成每个上下文并行 rank 2 块：token 数须能被 {n} 整除"},
    "r_trace_cp_mask": {
        "en": "context parallelism is traced for causal attention without a mask (torch's ring handlers take "
              "is_causal, not masks) and head dimensions that are multiples of 8",
        "zh": "上下文并行只追踪无掩码的因果注意力（torch 的环形注意力只接受 is_causal，不接受掩码），且头维度须为 8 的倍数"},
    "r_trace_cp_combo": {"en": "context parallelism is traced without chunked cross-entropy, activation offload and "
                               "sequence parallelism",
                         "zh": "上下文并行的追踪不含分块交叉熵、激活卸载与序列并行"},
    "r_trace_multi_gpu": {"en": "of the multi-GPU setups only FSDP2 full sharding without offload is traced (on a fake "
                                "process group); use {fsdp} or {one}",
                          "zh": "多 GPU 配置中只追踪不卸载的 FSDP2 完全分片（在伪进程组上）；请用 {fsdp} 或 {one}"},
    "r_trace_offload": {"en": "CPU offload of optimizer states and parameters is not traced",
                        "zh": "不追踪优化器状态与参数的 CPU 卸载"},
    "r_trace_deepspeed": {"en": "DeepSpeed's fp32 master weights and states are not traced",
                          "zh": "不追踪 DeepSpeed 的 fp32 主权重与状态"},
    "r_trace_optimizer": {"en": "optimizer '{optimizer}' is not in torch", "zh": "torch 中没有优化器 '{optimizer}'"},
    "r_trace_kv_quant": {"en": "quantized KV caches are not traced", "zh": "不追踪量化的 KV 缓存"},
    "r_trace_mxfp8": {"en": "MXFP8 is not traced: a CPU runs torchao's emulated kernels, which dequantize and keep "
                            "temporaries the Blackwell kernels do not (what MXFP8Linear saves is proven by "
                            "tests/test_mxfp8.py); the analytic estimate models it, or trace {use}",
                      "zh": "不追踪 MXFP8：CPU 上运行的是 torchao 的模拟内核，它会反量化并保留 Blackwell 内核没有的临时张量"
                            "（MXFP8Linear 保存的张量已由 tests/test_mxfp8.py 证明）；分析估计会对其建模，或者追踪 {use}"},
    "r_trace_compile": {"en": "torch.compile is traced as torchtitan compiles each decoder block, in full training on "
                                  "one GPU or under FSDP2 without tensor or context parallelism (per-layer or per-op "
                                  "checkpointing); drop {drop} for this workload",
                        "zh": "torch.compile 仅按 torchtitan 逐块编译解码层的方式追踪：在单 GPU 或 FSDP2 下的全量训练中，"
                              "不含张量并行或上下文并行（按层或按算子检查点）；此工作负载请去掉 {drop}"},
    "r_trace_compile_loss": {"en": "the trace compiles the decoder blocks and runs the loss in eager mode; trace with {use}",
                             "zh": "追踪会编译解码块，损失以 eager 模式运行；请用 {use} 追踪"},
    "r_trace_cache": {"en": "the trace runs transformers' dynamic cache", "zh": "追踪运行的是 transformers 的动态缓存"},
    "r_trace_gguf": {"en": "a GGUF file has no transformers config to build the model from; trace the original model's "
                           "config.json or catalog name",
                     "zh": "GGUF 文件没有可用来构建模型的 transformers 配置；请追踪原模型的 config.json 或目录名称"},
    "r_trace_no_config": {"en": "a {kind} source without config.json has no transformers config; pass the model's folder "
                                "with its config.json or a catalog name",
                          "zh": "没有 config.json 的 {kind} 来源没有 transformers 配置；请给出带 config.json 的模型文件夹"
                                "或目录名称"},
    "r_trace_stored_quant": {"en": "the checkpoint stores {storage} weights and the trace builds unquantized ones from "
                                   "the config",
                             "zh": "检查点存储的是 {storage} 权重，而追踪按配置构建未量化的权重"},
    "r_trace_chunked_ce": {"en": "chunked cross-entropy runs a decoder-only model's final hidden states",
                           "zh": "分块交叉熵作用于纯解码器模型的最终隐藏状态"},
    "r_trace_selective": {"en": "selective checkpointing wraps the attention function of models with self_attn modules, "
                                "not the {layout} layout",
                          "zh": "选择性检查点包装的是带 self_attn 模块的模型的注意力函数，而不是 {layout} 布局"},
})
