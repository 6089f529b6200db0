"""The ``vramscope`` command line.

argparse rather than Typer/Rich: the whole CLI must start in well under 0.3 s, and argparse is already loaded
with Python. Every user error becomes one line on stderr and exit code 2; ``VRAMSCOPE_DEBUG=1`` shows
tracebacks of internal errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence

from .errors import VramscopeError
from .i18n import detect_lang, t

EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """One-line errors, and no abbreviations: ``--check`` is never read as ``--checkpoint-every``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, not usage + line
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message, 300)} (see '{self.prog} --help')\n")


def _model_options(p: argparse.ArgumentParser) -> None:
    """MODEL, or a model from numbers (--params and shape overrides)."""
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="catalog name (llama-3-8b), Hub id (meta-llama/Meta-Llama-3-8B), folder, config.json, "
                        ".safetensors, .safetensors.index.json or .gguf")
    g = p.add_argument_group("model from numbers")
    g.add_argument("--params", help="parameter count instead of MODEL: 7B, 6.7e9, 70b, 1.5T")
    for opt in ("layers", "hidden", "heads", "kv-heads", "head-dim", "intermediate", "vocab"):
        g.add_argument(f"--{opt}", help=f"shape override for --params ({opt})")


def _run_options(w: Any) -> None:
    """What runs and how: task, method, engine, dtypes, batch and sequence, attention."""
    w.add_argument("--task", default="inference", help="inference | finetune | pretrain (default inference)")
    w.add_argument("--method", help="full | freeze | lora | qlora (training; default full)")
    w.add_argument("--estimator", default="analytic", help="analytic (default) | seed (the article's rule of thumb)")
    w.add_argument("--engine", default="transformers", help="transformers (default)")
    w.add_argument("--dtype", help="fp32 | fp16 | bf16 (default: the checkpoint's dtype, else bf16)")
    w.add_argument("--quant", help="none | int8 | int4 | nf4 | fp4 | nf4-dq | fp4-dq | fp8 | fp8-channel | fp8-block | "
                                   "gptq-4bit | gptq-8bit | gptq-3bit | gptq-2bit | awq-4bit; with --engine llama.cpp "
                                   "a GGUF type: Q4_K_M, Q5_K_M, Q8_0, Q4_0, IQ4_XS, ...")
    w.add_argument("--batch", "--concurrency", "--micro-batch", dest="batch",
                   help="batch size / micro-batch / concurrent sequences (default 1)")
    w.add_argument("--seq", "--ctx-size", "-c", dest="seq",
                   help="tokens per sequence / llama.cpp context (default 4096 for inference, 2048 for training)")
    w.add_argument("--kv-dtype", help="KV cache dtype: fp16 | bf16 | fp8 | int8 | q8_0 | q4_0 ... (default: dtype)")
    w.add_argument("--attn", default="sdpa", help="sdpa (default) | flash | eager")
    w.add_argument("--cache", default="dynamic", help="transformers KV cache: dynamic (default) | static")


def _training_options(w: Any) -> None:
    """Training: precision, optimizer, checkpointing, adapters, freezing."""
    w.add_argument("--precision", help="auto | pure | mixed | fp32 | deepspeed (training)")
    w.add_argument("--optimizer",
                   help="adamw | adam | adamw-fused | adamw-8bit | paged-adamw | paged-adamw-8bit | sgd | "
                        "sgd-momentum | lion | adafactor (default adamw; torchtune full single-GPU: paged-adamw-8bit)")
    w.add_argument("--grad-checkpointing", nargs="?", const="full", metavar="MODE",
                   help="activation checkpointing: full (default when given; every layer recomputed) | selective "
                        "(only core attention recomputed, Megatron-LM)")
    w.add_argument("--no-grad-checkpointing", action="store_true", help="turn off a profile's checkpointing")
    w.add_argument("--checkpoint-every", metavar="N", help="checkpoint only every N-th layer (torchtune ac_option)")
    w.add_argument("--activation-offload", action="store_true", default=None,
                   help="saved activations to pinned CPU memory (torchtune / TRL activation offloading)")
    w.add_argument("--chunked-ce", nargs="?", const="8", metavar="N",
                   help="output head and cross-entropy in N chunks (default 8, torchtune); 1 = off")
    w.add_argument("--packing", action="store_true", help="sequences packed to --seq (every micro-batch full)")
    w.add_argument("--optimizer-in-backward", action="store_true", default=None,
                   help="step each parameter as its gradient lands (torchtune optimizer_in_bwd)")
    w.add_argument("--dora", action="store_true", help="DoRA adapters (peft use_dora) with --method lora/qlora")
    w.add_argument("--compile", action="store_true",
                   help="torch.compile (modelled for the loss head; layers as in eager mode)")
    w.add_argument("--lora-alpha", help="LoRA alpha (recorded; it does not change memory)")
    w.add_argument("--grad-accum", help="gradient accumulation steps (default 1)")
    w.add_argument("--lora-rank", help="LoRA rank (default 16)")
    w.add_argument("--lora-targets", help="comma-separated module names of the model (q_proj,v_proj) or all-linear "
                                          "(default); an empty list is an error")
    w.add_argument("--lora-dropout", help="peft lora_dropout (default 0; > 0 keeps dropout masks)")
    w.add_argument("--freeze-layers", help="with --method freeze: freeze the first N layers")
    w.add_argument("--train-modules", help="with --method freeze: train only these modules (e.g. o_proj,down_proj)")
    w.add_argument("--activations-per-sample", help="seed estimator: activation floats per sample (A)")


def _parallel_options(w: Any) -> None:
    """GPUs and how training is split over them: sharding, ZeRO, TP, SP, EP, PP, config imports."""
    w.add_argument("--gpus", help="number of GPUs the model is split across (default 1)")
    w.add_argument("--offload",
                   help="none | optimizer | optimizer+params (training: ZeRO-Offload / FSDP CPU offload)")
    w.add_argument("--parallelism",
                   help="auto | tp (tensor parallel, inference) | fsdp | ddp | zero1 | zero2 | zero3 (training)")
    w.add_argument("--zero", choices=("0", "1", "2", "3"), help="DeepSpeed ZeRO stage (= --parallelism zeroN; 0 = ddp)")
    w.add_argument("--framework", default="hf",
                   help="training loop: hf (Trainer / TRL, default) | pytorch (plain loop) | torchtune (its recipes' "
                        "defaults: checkpointing, chunked cross-entropy, bf16 adapters)")
    w.add_argument("--tp", dest="train_tp", metavar="N", help="tensor-parallel degree in training (Megatron split)")
    w.add_argument("--sequence-parallel", action="store_true", help="Megatron sequence parallelism inside --tp")
    w.add_argument("--sp", "--cp", dest="sp", default="1", metavar="N",
                   help="context / sequence parallel degree (the sequence split over N GPUs)")
    w.add_argument("--sp-mode", default="ring", help="ring (ring attention, torch context_parallel; default) | "
                                                     "ulysses (DeepSpeed-Ulysses all-to-all)")
    w.add_argument("--ep", default="1", metavar="N", help="expert-parallel degree (MoE experts split over N GPUs)")
    w.add_argument("--nodes", help="nodes the --gpus are spread over (hybrid sharding, per-node CPU)")
    w.add_argument("--fsdp-sharding", help="full (default) | hybrid (shard in a node, replicate "
                                                           "across nodes)")
    w.add_argument("--fsdp-version", help="PyTorch FSDP 1 (flat parameters) or 2 (per-parameter, default)")
    w.add_argument("--zero-prefetch-bucket", metavar="ELEMENTS", help="ZeRO-3 stage3_prefetch_bucket_size (5e7)")
    w.add_argument("--zero-max-live-params", metavar="ELEMENTS", help="ZeRO-3 stage3_max_live_parameters (1e9)")
    w.add_argument("--zero-param-persistence", metavar="ELEMENTS",
                   help="ZeRO-3 stage3_param_persistence_threshold (1e5)")
    w.add_argument("--reduce-bucket", metavar="ELEMENTS", help="DeepSpeed reduce_bucket_size (5e8)")
    w.add_argument("--offload-device", help="cpu (default) | nvme (ZeRO-Infinity)")
    w.add_argument("--pp", help="pipeline-parallel stages (training; micro-batches = --grad-accum)")
    w.add_argument("--pp-schedule", default="1f1b",
                   help="1f1b (default) | gpipe | interleaved (Megatron, 2 model chunks per GPU)")
    w.add_argument("--deepspeed", metavar="DS_CONFIG.json", help="read ZeRO stage, offload, precision, batch from it")
    w.add_argument("--fsdp", metavar="ACCELERATE_CONFIG", help="read sharding strategy, offload, processes from it")


def _workload_options(p: argparse.ArgumentParser) -> None:
    """The "workload" group: what runs, its training options, its parallelism."""
    w = p.add_argument_group("workload")
    _run_options(w)
    _training_options(w)
    _parallel_options(w)


def _vllm_options(p: argparse.ArgumentParser) -> None:
    """vLLM's own flags."""
    v = p.add_argument_group("vLLM (--engine vllm)")
    v.add_argument("--gpu-memory-utilization", help="fraction of GPU memory vLLM preallocates (default 0.9)")
    v.add_argument("--max-model-len", help="longest sequence (default: the model's max_position_embeddings)")
    v.add_argument("--max-num-seqs", help="concurrent sequences in one batch (default 256)")
    v.add_argument("--max-num-batched-tokens", help="tokens in one scheduler step / the profile run (default 8192)")
    v.add_argument("--enforce-eager", action="store_true", default=None, help="no CUDA graphs")
    v.add_argument("--tensor-parallel-size", "-tp", dest="tp", help="GPUs to split the model across (= --gpus)")
    v.add_argument("--pipeline-parallel-size", "-pp", dest="pp_size",
                   help="pipeline stages (each with --tensor-parallel-size GPUs)")


def _llamacpp_options(p: argparse.ArgumentParser) -> None:
    """llama.cpp's / Ollama's own flags."""
    lc = p.add_argument_group("llama.cpp / Ollama (--engine llama.cpp)")
    lc.add_argument("--n-gpu-layers", "-ngl", help="layers on the GPU (default: all, and the output layer)")
    lc.add_argument("--cache-type-k", "-ctk", help="f16 (default), q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, bf16, f32")
    lc.add_argument("--cache-type-v", "-ctv", help="like --cache-type-k")
    lc.add_argument("--flash-attn", "-fa", action="store_true", default=None, help="flash attention")
    lc.add_argument("--ubatch-size", "-ub", dest="ubatch", help="physical micro-batch (default 512)")


def _output_options(p: argparse.ArgumentParser) -> None:
    """GPUs to check, units, language, JSON, the Hub."""
    o = p.add_argument_group("output")
    o.add_argument("--gpu", action="append", default=[], metavar="NAME",
                   help="GPU to check (repeatable): rtx-4090, a100, h100, 24GB, auto")
    o.add_argument("--gpu-memory", action="append", default=[], metavar="SIZE",
                   help="a GPU of this much memory (repeatable): 24GB, 80GiB, 16G")
    o.add_argument("--units", default="GiB", choices=("GiB", "GB"), help="GiB (default) or GB")
    o.add_argument("--lang", choices=("en", "zh"), help="en | zh (default from the locale)")
    o.add_argument("--json", action="store_true", help="print JSON (schema vramscope.estimate/1)")
    o.add_argument("--no-hub", action="store_true", help="never contact the Hugging Face Hub")


def _estimate_options(p: argparse.ArgumentParser) -> None:
    """The arguments of an estimate, by group, in the order ``--help`` lists them."""
    _model_options(p)
    _workload_options(p)
    _vllm_options(p)
    _llamacpp_options(p)
    _output_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vramscope",
                     description="How much GPU memory does this model need to run, fine-tune or train? "
                                 "/ 运行、微调或训练这个模型需要多少显存？")
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    est = sub.add_parser("estimate", help="estimate GPU memory for a model and workload")
    _estimate_options(est)
    fit = sub.add_parser("fit", help="does it fit: largest batch and context, fewest GPUs, what to change")
    _estimate_options(fit)
    fit.add_argument("--check", action="store_true",
                     help="exit 0 when it fits on every --gpu, 1 when it does not (for scripts and CI)")
    tr = sub.add_parser("trace", help="run the real model code on fake tensors (needs the trace extra)")
    _estimate_options(tr)
    tr.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    tr.add_argument("--timeout", metavar="SECONDS",
                    help="stop the trace after this long (default 300; 200 layers of a training step take ~30 s)")
    me = sub.add_parser("measure", help="run the workload for real on a CUDA GPU and record the peaks")
    _estimate_options(me)
    me.add_argument("--output", help="append the record (JSON Lines) to this file")
    va = sub.add_parser("validate", help="compare estimates with measured records (JSON Lines)")
    va.add_argument("records", nargs="+", help="*.jsonl files of vramscope.record/1")
    va.add_argument("--trace", action="store_true", help="also re-estimate with the trace estimator (slow)")
    va.add_argument("--json", action="store_true")
    va.add_argument("--lang", choices=("en", "zh"))
    va.add_argument("--units", default="GiB", choices=("GiB", "GB"))
    sv = sub.add_parser("serve", help="a web page and JSON API on this machine (needs the 'web' extra)")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; anything else is reachable from other machines)")
    sv.add_argument("--port", default="8765", help="port (default 8765; 0 picks a free one)")
    sv.add_argument("--allow-hub", action="store_true",
                    help="also look up owner/name ids on the Hugging Face Hub (default: catalog names only)")
    sv.add_argument("--idle-timeout", default="5", metavar="SECONDS",
                    help="close a connection that sends no complete request for this long (default 5)")
    sv.add_argument("--request-timeout", default="10", metavar="SECONDS",
                    help="answer 503 to a request that takes longer (default 10)")
    sv.add_argument("--max-connections", default="2048", metavar="N",
                    help="open connections at most; more get 503 (default 2048)")
    sv.add_argument("--lang", choices=("en", "zh"), help="language when a request does not say (default: locale)")
    models = sub.add_parser("models", help="list the built-in model catalog")
    models.add_argument("query", nargs="?", default="")
    models.add_argument("--json", action="store_true")
    models.add_argument("--lang", choices=("en", "zh"))
    gpus = sub.add_parser("gpus", help="list the GPU catalog")
    gpus.add_argument("query", nargs="?", default="")
    gpus.add_argument("--json", action="store_true")
    gpus.add_argument("--lang", choices=("en", "zh"))
    gpus.add_argument("--units", default="GiB", choices=("GiB", "GB"))
    return parser


#: workload options a DeepSpeed / accelerate config can set, and the command-line option of each
_IMPORTED = {"batch": "--batch", "grad_accum": "--grad-accum", "num_gpus": "--gpus", "parallelism": "--parallelism",
             "offload": "--offload", "precision": "--precision", "dtype": "--dtype", "nodes": "--nodes",
             "fsdp_sharding": "--fsdp-sharding", "fsdp_version": "--fsdp-version", "offload_device": "--offload-device",
             "grad_checkpointing": "--grad-checkpointing", "zero_prefetch": "--zero-prefetch-bucket",
             "zero_max_live": "--zero-max-live-params", "zero_persistence": "--zero-param-persistence",
             "reduce_bucket": "--reduce-bucket"}


def _one_of(args: argparse.Namespace, a: str, b: str, flag_a: str, flag_b: str) -> object:
    """Two spellings of one option (--tp / --tensor-parallel-size): either, or both alike."""
    va, vb = getattr(args, a), getattr(args, b)
    if va is not None and vb is not None and str(va).strip() != str(vb).strip():
        raise VramscopeError("conflict", field=flag_a, reason=f"and {flag_b} give different values; give one")
    return va if va is not None else vb


def _load(args: argparse.Namespace) -> tuple:
    from .api import load_model
    from .workload import make_workload

    model = load_model(args.model, args.params, hub=not args.no_hub, layers=args.layers, hidden=args.hidden,
                       heads=args.heads, kv_heads=args.kv_heads, head_dim=args.head_dim,
                       intermediate=args.intermediate, vocab=args.vocab)
    imported: dict = {}
    if args.deepspeed is not None and args.fsdp is not None:
        raise VramscopeError("conflict", field="--deepspeed", reason="and --fsdp describe two different trainings; "
                                                                    "give one config")
    if args.deepspeed is not None:
        from .configs import from_deepspeed

        imported = from_deepspeed(args.deepspeed)
    if args.fsdp is not None:
        from .configs import from_accelerate_fsdp

        imported = from_accelerate_fsdp(args.fsdp)
    if args.zero and args.parallelism is not None:
        raise VramscopeError("conflict", field="--zero", reason="is --parallelism zeroN: give one of them")
    zero = {"0": "ddp"}.get(args.zero, f"zero{args.zero}") if args.zero else None
    given = dict(
        task=args.task, method=args.method, estimator=args.estimator, engine=args.engine,
        dtype=args.dtype, quant=args.quant, batch=args.batch,
        seq=args.seq, kv_dtype=args.kv_dtype, attn=args.attn,
        precision=args.precision, optimizer=args.optimizer,
        grad_checkpointing=False if args.no_grad_checkpointing else (True if args.grad_checkpointing else None),
        checkpoint_mode=args.grad_checkpointing, checkpoint_every=args.checkpoint_every,
        activation_offload=args.activation_offload, ce_chunks=args.chunked_ce, packing=args.packing,
        optimizer_in_backward=args.optimizer_in_backward, dora=args.dora, lora_alpha=args.lora_alpha,
        compile=args.compile,
        tp=_one_of(args, "tp", "train_tp", "--tensor-parallel-size", "--tp"), sequence_parallel=args.sequence_parallel,
        sp=args.sp, sp_mode=args.sp_mode,
        ep=args.ep, nodes=args.nodes, fsdp_sharding=args.fsdp_sharding, fsdp_version=args.fsdp_version,
        zero_prefetch=args.zero_prefetch_bucket, zero_max_live=args.zero_max_live_params,
        zero_persistence=args.zero_param_persistence, reduce_bucket=args.reduce_bucket,
        offload_device=args.offload_device, grad_accum=args.grad_accum,
        lora_rank=args.lora_rank, lora_targets=args.lora_targets, frozen_layers=args.freeze_layers,
        lora_dropout=args.lora_dropout, train_modules=args.train_modules,
        activations_per_sample=args.activations_per_sample, num_gpus=args.gpus,
        parallelism=zero or args.parallelism, offload=args.offload,
        gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
        enforce_eager=args.enforce_eager, n_gpu_layers=args.n_gpu_layers, cache_type_k=args.cache_type_k,
        cache_type_v=args.cache_type_v, flash_attn=args.flash_attn, ubatch=args.ubatch, cache=args.cache,
        pp=_one_of(args, "pp_size", "pp", "--pipeline-parallel-size", "--pp"), pp_schedule=args.pp_schedule,
        framework=args.framework)
    config = "--deepspeed" if args.deepspeed else "--fsdp"
    for key, value in imported.items():  # a config and the command line must not disagree (neither wins silently)
        mine = given.get(key)
        if mine is not None and str(mine).strip().lower() != str(value).strip().lower():
            raise VramscopeError("conflict", field=_IMPORTED.get(key, "--" + key.replace("_", "-")),
                                 reason=f"'{mine}' disagrees with {config} ('{value}'); give it in one place")
        given[key] = value
    workload = make_workload(**{k: v for k, v in given.items() if v is not None})
    return model, workload


def _gpus(args: argparse.Namespace) -> list[str]:
    from .units import looks_like_size, shown

    for size in args.gpu_memory:
        if not looks_like_size(size):
            raise VramscopeError("bad_size", field="--gpu-memory", value=shown(size))
    return list(args.gpu) + list(args.gpu_memory)


def _cmd_estimate(args: argparse.Namespace, lang: str) -> int:
    from .api import estimate_resolved
    from .plan import DEFAULT_SHORTLIST

    model, workload = _load(args)
    result = estimate_resolved(model, workload, _gpus(args) or DEFAULT_SHORTLIST)
    if args.json:
        print(result.to_json(lang))  # allow_nan=False: never Infinity/NaN, which is not JSON
    else:
        from .present.table import render_estimate

        print(render_estimate(result, lang, args.units))
    return 0


def _cmd_models(args: argparse.Namespace, lang: str) -> int:
    import json

    from .present.table import render_table
    from .sources import catalog, resolve_catalog
    from .units import format_count

    found = catalog.search(args.query)
    rows = []
    for e in found:
        r = resolve_catalog(e["id"])
        assert r is not None
        rows.append({"id": e["id"], "aliases": e.get("aliases", []), "model_type": r.spec.model_type,
                     "params": r.params, "active_params": r.active_params, "source": e.get("source", "")})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    if not rows:
        from .units import shown

        print(t("models_none", lang, query=shown(args.query)))
        return 0
    table = [["id", "alias", "type", "params"]]
    for r in rows:
        p = format_count(r["params"])
        if r["active_params"] != r["params"]:
            p += f" ({format_count(r['active_params'])} active)"
        table.append([r["id"], (r["aliases"] or [""])[0], r["model_type"], p])
    print(t("models_header", lang, n=len(rows)))
    print(render_table(table, (False, False, False, True)))
    return 0


def _cmd_gpus(args: argparse.Namespace, lang: str) -> int:
    import json

    from .gpus import catalog
    from .present.table import render_table
    from .units import format_bytes

    q = args.query.lower()
    found = [g for g in catalog()["gpus"]
             if not q or q in g["id"] or q in g["name"].lower() or any(q in a for a in g.get("aliases", []))]
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    table = [["id", "name", "memory", "usable"]]
    for g in found:
        usable = int(g["memory_bytes"] * g.get("usable_fraction", 1.0))
        table.append([g["id"], g["name"], format_bytes(g["memory_bytes"], args.units),
                      format_bytes(usable, args.units)])
    print(t("gpus_header", lang, n=len(found)))
    print(render_table(table, (False, False, True, True)))
    return 0


def _cmd_fit(args: argparse.Namespace, lang: str) -> int:
    import json

    from .gpus import find_gpu
    from .plan import DEFAULT_SHORTLIST, fit
    from .present.table import render_fit

    model, workload = _load(args)
    answers = [fit(model, workload, find_gpu(g)) for g in (_gpus(args) or DEFAULT_SHORTLIST)]
    if args.json:
        data = [a.to_dict(lang) for a in answers]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print("\n\n".join(render_fit(a, lang, args.units) for a in answers))
    if args.check:
        return 0 if all(a.fits for a in answers) else 1
    return 0


def _cmd_trace(args: argparse.Namespace, lang: str) -> int:
    # every option, the model, the GPUs and the trace's own limits are checked before torch is imported
    from .api import check_workload_for_model
    from .gpus import find_gpu
    from .present.table import render_estimate
    from .trace.build import require_torch
    from .trace.preflight import check_traceable, estimate_command, parse_timeout

    timeout = parse_timeout(args.timeout)
    model, workload = _load(args)
    workload, _ = check_workload_for_model(model, workload)
    gpus = tuple(_gpus(args))
    for g in gpus:
        find_gpu(g)
    command = estimate_command(args)
    check_traceable(model, workload, command)
    require_torch()
    from .trace.estimator import trace_estimate

    result = trace_estimate(model, workload, gpus, progress=not args.quiet, timeout=timeout, command=command)
    print(result.to_json(lang) if args.json else render_estimate(result, lang, args.units))
    return 0


def _cmd_measure(args: argparse.Namespace, lang: str) -> int:
    import json

    from .trace.build import require_torch

    require_torch()
    from .trace.measure import append_record, measure_record

    from .api import check_workload_for_model

    model, workload = _load(args)
    workload, _ = check_workload_for_model(model, workload)
    record = measure_record(model, workload)
    if args.output:
        append_record(args.output, record)
    print(json.dumps(record, indent=None if args.output else 2, ensure_ascii=False, allow_nan=False))
    return 0


def _cmd_validate(args: argparse.Namespace, lang: str) -> int:
    import json
    from pathlib import Path

    from .present.table import render_table
    from .units import format_bytes
    from .validate import read_records, summary, validate

    records = [r for p in args.records for r in read_records(p)]
    rows = validate(records, trace=args.trace)
    summ = summary(rows)
    if args.json:
        print(json.dumps({"rows": [r.to_dict() for r in rows], "summary": summ}, indent=2, ensure_ascii=False,
                         allow_nan=False))
        return 0

    def pct(x: object) -> str:
        return "" if x is None else f"{100 * float(x):+.1f}%"  # type: ignore[arg-type]

    table = [["record", "measured", "value", "analytic", "error", "trace", "error"]]
    for r in rows:
        d = r.to_dict()
        if r.skipped:
            table.append([r.id, r.measured, format_bytes(r.measured_bytes, args.units), "skipped: " + r.skipped[:60],
                          "", "", ""])
            continue
        table.append([r.id + ("" if r.component == "total" else f" [{r.component}]") + (" *" if r.caveat else ""),
                      r.measured, format_bytes(r.measured_bytes, args.units),
                      format_bytes(r.analytic_bytes or 0, args.units), pct(d["analytic_error"]),
                      "" if r.trace_bytes is None else format_bytes(r.trace_bytes, args.units), pct(d["trace_error"])])
    print(render_table(table, (False, False, True, True, True, True, True)))
    caveats = [(r.id, r.caveat) for r in rows if r.caveat and not r.skipped]
    if caveats:
        print()
        notes = dict.fromkeys(part for _, c in caveats for part in c.split("; "))
        print("* " + "; ".join(notes))
    print()
    table = [["kind", "records", "analytic median", "analytic worst", "trace median", "trace worst"]]
    for kind, e in summ.items():
        a, tr = e.get("analytic", {}), e.get("trace", {})
        table.append([kind, str(e["records"]), pct(a.get("median_abs_error")), pct(a.get("worst_abs_error")),
                      pct(tr.get("median_abs_error")), pct(tr.get("worst_abs_error"))])
    print(render_table(table, (False, True, True, True, True, True)))
    return 0


def _cmd_serve(args: argparse.Namespace, lang: str) -> int:
    from .serve import Options, serve
    from .units import parse_int

    options = Options(allow_hub=args.allow_hub, idle_timeout=parse_int(args.idle_timeout, "--idle-timeout", 1, 3600),
                      request_timeout=parse_int(args.request_timeout, "--request-timeout", 1, 3600),
                      max_connections=parse_int(args.max_connections, "--max-connections", 1, 1_000_000), lang=lang)
    serve(args.host, parse_int(args.port, "--port", 0, 65535), options)
    return 0


COMMANDS = {"serve": _cmd_serve, "estimate": _cmd_estimate, "trace": _cmd_trace, "measure": _cmd_measure, "validate": _cmd_validate, "fit": _cmd_fit, "models": _cmd_models, "gpus": _cmd_gpus}


def _one_line(text: str, limit: int = 2000) -> str:
    """An error as one printable line: control characters a user typed (a path with a newline) escaped."""
    from .units import printable

    return printable(text, limit)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 0
    lang = detect_lang(getattr(args, "lang", None))
    try:
        return COMMANDS[args.command](args, lang)
    except VramscopeError as e:
        print(f"vramscope: error: {_one_line(e.render(lang))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:  # Ctrl+C: one line, the shell's usual code, no traceback
        print(f"vramscope: {t('interrupted', lang)}", file=sys.stderr)
        return 130
    except Exception as e:  # an internal bug: one line unless debugging
        if os.environ.get("VRAMSCOPE_DEBUG"):
            raise
        print(f"vramscope: internal error: {type(e).__name__}: {e} (set VRAMSCOPE_DEBUG=1 for the traceback "
              "and please report it)", file=sys.stderr)
        return EXIT_INTERNAL
