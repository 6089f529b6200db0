"""Write tests/golden/commands.txt and tests/golden/refusals.txt: the golden matrix of ``vramscope`` commands.

Each line of commands.txt is the argument list of one ``vramscope`` command (``vramscope <line>``) that exits 0;
refusals.txt holds a few commands that must exit 2 with their one-line error. Candidates are built here by hand
and by small products over the options; every candidate is run once (in-process) and one that is refused is
dropped from commands.txt and named on stderr, so the committed list holds only commands that run.

    python tests/golden/make_commands.py          # rewrites both files, then: python tests/golden/regen.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: ≥ 15 catalog models across the families: dense MHA/GQA/MQA, sliding window, soft-capped, MoE, MLA,
#: encoder-only and encoder-decoder
DENSE = ["llama-3-8b", "llama-2-7b", "qwen2.5-7b", "qwen2.5-0.5b", "phi-3-mini", "falcon-7b", "gpt2",
         "glm-4-9b", "qwen3-8b", "llama-3.2-1b"]
SLIDING = ["mistral-7b-v0.1", "gemma-2-9b", "gemma-3-4b", "gemma-3-1b"]
MOE = ["mixtral-8x7b", "qwen3-30b-a3b", "qwen1.5-moe-a2.7b"]
MLA = ["deepseek-v2-lite", "deepseek-v3"]
ENCODER = ["bert-base-uncased", "roberta-base"]
ENC_DEC = ["t5-base", "flan-t5-xl"]
BIG = ["llama-3-70b", "qwen2.5-72b", "llama-3.1-405b"]
ALL = DENSE + SLIDING + MOE + MLA + ENCODER + ENC_DEC + BIG


def inference() -> list[str]:
    out = []
    gpus = ["rtx-4090", "rtx-4060-ti-16gb", "h100-sxm"]
    for i, m in enumerate(ALL):  # every model, default workload, one GPU each
        out.append(f"estimate {m} --gpu {gpus[i % 3]}")
    out.append("estimate llama-3-8b")  # the default shortlist of GPUs
    for m, dtype in itertools.product(["llama-3-8b", "gemma-2-9b", "t5-base"], ["fp32", "fp16", "bf16"]):
        out.append(f"estimate {m} --dtype {dtype} --gpu rtx-4090")
    for m, q in itertools.product(["llama-3-8b", "mixtral-8x7b", "qwen2.5-7b"],
                                  ["int8", "nf4", "nf4-dq", "fp4", "int4", "fp8", "fp8-block", "gptq-4bit",
                                   "gptq-3bit-g64", "awq-4bit"]):
        out.append(f"estimate {m} --quant {q} --gpu rtx-4090")
    for m, kv in itertools.product(["llama-3-8b", "mistral-7b-v0.1", "deepseek-v2-lite", "gemma-2-9b"],
                                   ["fp8", "int8", "fp32"]):
        out.append(f"estimate {m} --kv-dtype {kv} --seq 32768 --gpu a100-80gb")
    for m, attn, cache in itertools.product(["llama-3-8b", "gemma-2-9b", "phi-3-mini", "t5-base"],
                                            ["sdpa", "eager", "flash"], ["dynamic", "static"]):
        out.append(f"estimate {m} --attn {attn} --cache {cache} --batch 4 --seq 2048 --gpu rtx-4090")
    for m, b, s in itertools.product(["llama-3-8b", "qwen3-30b-a3b", "deepseek-v3"], [1, 16], [512, 131072]):
        out.append(f"estimate {m} --batch {b} --seq {s} --gpu h200")
    for m, n in itertools.product(["llama-3-70b", "qwen2.5-72b", "mixtral-8x7b", "deepseek-v3"], [2, 4, 8]):
        out.append(f"estimate {m} --gpus {n} --parallelism tp --gpu h100-sxm")
    out.append("estimate llama-3-70b --tp 4 --gpu a100-80gb")
    out += ["estimate llama-3-8b --gpu-memory 24GB --gpu-memory 12GB --units GB",
            "estimate gpt2 --seq 1024 --batch 8 --attn eager --gpu rtx-4090",
            "estimate qwen2.5-7b --lang zh --gpu rtx-4090",
            "estimate --params 7B --gpu rtx-4090",
            "estimate --params 13b --layers 40 --hidden 5120 --heads 40 --gpu a100-80gb"]
    return [c + " --json" for c in out]


def vllm() -> list[str]:
    out = []
    for m in ["llama-3-8b", "qwen2.5-7b", "mistral-7b-v0.1", "gemma-2-9b", "mixtral-8x7b", "qwen3-30b-a3b",
              "deepseek-v2-lite", "phi-3-mini", "qwen2.5-0.5b"]:
        out.append(f"estimate {m} --engine vllm --gpu h100-sxm")
    for m, mml, util in itertools.product(["llama-3-8b", "gemma-3-4b"], [4096, 32768], [0.5, 0.9, 0.95]):
        out.append(f"estimate {m} --engine vllm --max-model-len {mml} --gpu-memory-utilization {util} --gpu rtx-4090")
    for m, q, kv in itertools.product(["llama-3-8b", "qwen2.5-7b"], ["fp8", "awq-4bit", "gptq-4bit"],
                                      [None, "fp8"]):
        kvs = f" --kv-dtype {kv}" if kv else ""
        out.append(f"estimate {m} --engine vllm --quant {q}{kvs} --gpu rtx-4090")
    for m, tp, pp in [("llama-3-70b", 2, 1), ("llama-3-70b", 4, 1), ("llama-3-70b", 2, 2), ("qwen2.5-72b", 8, 1),
                      ("mixtral-8x7b", 2, 1), ("deepseek-v3", 8, 2), ("llama-3.1-405b", 8, 2)]:
        out.append(f"estimate {m} --engine vllm -tp {tp} -pp {pp} --gpu h100-sxm")
    out += ["estimate llama-3-8b --engine vllm --enforce-eager --max-num-seqs 64 --gpu rtx-4090",
            "estimate llama-3-8b --engine vllm --max-num-batched-tokens 2048 --max-num-seqs 16 --gpu rtx-4090",
            "estimate llama-3-8b --engine vllm --dtype fp16 --gpu a100-80gb",
            "estimate qwen2.5-7b --engine vllm --lang zh --gpu rtx-4090"]
    return [c + " --json" for c in out]


def llamacpp() -> list[str]:
    out = []
    for m, q in itertools.product(["llama-3-8b", "qwen2.5-7b", "gemma-2-9b", "mixtral-8x7b"],
                                  ["Q4_K_M", "Q5_K_M", "Q8_0", "Q4_0", "IQ4_XS", "Q2_K", "Q3_K_M", "Q6_K", "F16"]):
        out.append(f"estimate {m} --engine llama.cpp --quant {q} --gpu rtx-4090")
    for m in ["llama-3-70b", "deepseek-v2-lite", "phi-3-mini", "qwen3-30b-a3b", "mistral-7b-v0.1", "gemma-3-4b"]:
        out.append(f"estimate {m} --engine llama.cpp --quant Q4_K_M --gpu rtx-4090")
    for ngl, ctk, fa in itertools.product([0, 16, 33], ["f16", "q8_0", "q4_0"], [False, True]):
        if ctk != "f16" and not fa:
            continue  # a quantized V cache needs flash attention
        f = " -fa" if fa else ""
        out.append(f"estimate llama-3-8b --engine llama.cpp --quant Q4_K_M -ngl {ngl} -ctk {ctk} -ctv {ctk}{f} "
                   f"--gpu rtx-4060-ti-16gb")
    for c, ub in itertools.product([4096, 32768], [128, 512, 2048]):
        out.append(f"estimate llama-3-8b --engine llama.cpp --quant Q4_K_M -c {c} -ub {ub} --gpu rtx-4090")
    out += ["estimate llama-3-8b --engine llama.cpp --quant Q4_K_M -ctk q8_0 --gpu rtx-4090",
            "estimate llama-3-70b --engine llama.cpp --quant Q4_K_M -ngl 40 --gpu rtx-4090",
            "estimate llama-3-8b --engine ollama --quant Q4_K_M --gpu rtx-4090",
            "estimate llama-3-8b --engine llama.cpp --gpu rtx-4090",
            "estimate llama-3-8b --engine llama.cpp --quant Q4_K_M --batch 4 --gpu rtx-4090",
            # several GPUs (issue #17): llama.cpp's layer split, per device
            "estimate llama-3-8b --engine llama.cpp --gpus 2",
            "estimate qwen2.5-72b --engine llama.cpp --quant Q4_K_M --gpus 2 --gpu rtx-4090",
            "estimate llama-3-70b --engine llama.cpp --quant Q4_K_M --gpus 4 -ngl 60 --gpu rtx-4090",
            "estimate qwen2.5-72b --engine llama.cpp --quant Q4_K_M --gpus 2 -ts 3,1 -sm row -fa --gpu rtx-4090",
            "estimate qwen2.5-72b --engine llama.cpp --quant Q4_K_M --gpus 2 -sm none -mg 1 --gpu a100-80gb",
            "estimate llama-3-8b --engine llama.cpp --quant Q4_K_M --gpus 2 -nkvo -b 256 --no-mmap",
            "fit qwen2.5-72b --engine llama.cpp --quant Q4_K_M --gpus 2 --gpu rtx-4090"]
    return [c + " --json" for c in out]


def engines() -> list[str]:
    """Ollama's scheduler and SGLang's token pool (issue #17), and pasted command lines."""
    out = []
    for m, g in itertools.product(["llama-3-8b", "llama-3.1-70b", "qwen2.5-7b", "gemma-3-12b", "mixtral-8x7b"],
                                  ["rtx-4090", "a100-80gb"]):
        out.append(f"estimate {m} --engine ollama --gpu {g}")
    out += ["estimate llama-3.1-70b --engine ollama --ollama-version 0.12.10 --gpu rtx-4090",
            "estimate llama-3.1-70b --engine ollama --gpus 2 --num-parallel 4 --ollama-flash-attention true "
            "--ollama-kv-cache-type q8_0 --gpu rtx-4090",
            "estimate qwen2.5-32b --engine ollama --quant Q8_0 --num-gpu 30 --seq 16384 --gpu rtx-4090",
            "fit llama-3.1-70b --engine ollama --quant Q4_K_M --gpu rtx-4090"]
    for m, g in itertools.product(["llama-3-8b", "qwen2.5-7b", "deepseek-v2-lite", "llama-3-70b"],
                                  ["rtx-4090", "h100-sxm"]):
        out.append(f"estimate {m} --engine sglang --gpu {g}")
    out += ["estimate llama-3-70b --engine sglang --gpus 4 --mem-fraction-static 0.85 --context-length 32768 "
            "--gpu h100-sxm",
            "fit llama-3.1-8b --engine sglang --gpu rtx-4090",
            "estimate --gpu rtx-4090 -- vllm serve Qwen/Qwen2.5-7B --max-model-len 32768 -tp 2",
            "estimate --gpu rtx-4090 -- ollama run llama3.1:70b",
            "estimate --gpu h100-sxm -- python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct "
            "--tp 2 --mem-fraction-static 0.85",
            "estimate --gpu rtx-4090 -- llama-server -hf bartowski/Qwen2.5-72B-Instruct-GGUF:Q4_K_M -c 8192 "
            "-ngl 99 -ts 1,1"]
    return [c.replace(" -- ", " --json -- ", 1) if " -- " in c else c + " --json" for c in out]


def training() -> list[str]:
    out = []
    g = "--gpu a100-80gb"
    models = ["llama-3-8b", "qwen2.5-7b", "mistral-7b-v0.1", "gemma-2-9b", "qwen2.5-0.5b", "phi-3-mini",
              "mixtral-8x7b", "deepseek-v2-lite", "t5-base", "bert-base-uncased", "gpt2", "gemma-3-1b",
              "qwen3-30b-a3b", "falcon-7b"]
    for m, method in itertools.product(models, ["full", "lora", "qlora", "freeze"]):
        out.append(f"estimate {m} --task finetune --method {method} {g}")
    for m in ["llama-3-8b", "qwen2.5-0.5b", "gpt2", "mixtral-8x7b", "t5-base"]:
        out.append(f"estimate {m} --task pretrain {g}")
    for m, method in itertools.product(["llama-3-8b", "qwen2.5-7b", "gemma-2-9b"], ["lora", "qlora"]):
        out.append(f"estimate {m} --task finetune --method {method} --dora {g}")
    for prec, dtype in itertools.product(["auto", "pure", "mixed", "fp32", "deepspeed"], [None, "fp16", "bf16"]):
        d = f" --dtype {dtype}" if dtype else ""
        out.append(f"estimate llama-3.2-1b --task finetune --precision {prec}{d} {g}")
    for opt in ["adamw", "adam", "adamw-fused", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd",
                "sgd-momentum", "lion", "adafactor"]:
        out.append(f"estimate llama-3.2-1b --task finetune --optimizer {opt} {g}")
        out.append(f"estimate llama-3-8b --task finetune --method lora --optimizer {opt} {g}")
    for m, ck in itertools.product(["llama-3-8b", "gemma-2-9b", "qwen3-30b-a3b"],
                                   ["--grad-checkpointing", "--grad-checkpointing selective",
                                    "--checkpoint-every 2", "--grad-checkpointing --checkpoint-every 4"]):
        out.append(f"estimate {m} --task finetune --method lora {ck} --batch 4 {g}")
    extras = ["--activation-offload", "--chunked-ce", "--chunked-ce 16", "--optimizer-in-backward", "--packing",
              "--compile", "--grad-accum 8", "--lora-rank 64 --lora-alpha 128", "--lora-targets q_proj,v_proj",
              "--lora-dropout 0.1", "--attn eager", "--attn flash", "--seq 8192 --batch 2"]
    for e in extras:
        method = "full" if e == "--optimizer-in-backward" else "lora"
        out.append(f"estimate llama-3-8b --task finetune --method {method} {e} {g}")
    out += [f"estimate llama-3-8b --task finetune --method freeze --freeze-layers 16 {g}",
            f"estimate llama-3-8b --task finetune --method freeze --train-modules o_proj,down_proj {g}",
            f"estimate llama-3-8b --task finetune --offload optimizer {g}",
            f"estimate llama-3-8b --task finetune --offload optimizer+params {g}",
            f"estimate llama-3-8b --task finetune --no-grad-checkpointing --framework torchtune {g}"]
    for fw, method in itertools.product(["hf", "pytorch", "torchtune"], ["full", "lora", "qlora"]):
        out.append(f"estimate llama-3-8b --task finetune --method {method} --framework {fw} {g}")
    out.append(f"estimate qwen2.5-7b --task finetune --method lora --framework torchtune --batch 4 {g}")
    # the fine-tuning stacks (issue #19): Unsloth, LLaMA-Factory, axolotl profiles; Liger; eager attention's scores
    for fw, method in itertools.product(["unsloth", "llamafactory", "axolotl"], ["lora", "qlora"]):
        out.append(f"estimate llama-3-8b --task finetune --method {method} --framework {fw} {g}")
    out += [f"estimate llama-3-8b --task finetune --method full --framework llamafactory {g}",
            f"estimate llama-3-8b --task finetune --method qlora --framework unsloth --seq 16384 {g}",
            f"estimate llama-3-8b --task finetune --method lora --liger all {g}",
            f"estimate llama-3-8b --task finetune --method full --liger rms-norm,swiglu --no-grad-checkpointing {g}",
            f"estimate llama-3-8b --task finetune --method lora --attn eager --seq 4096 {g}",
            f"estimate llama-3-8b --task finetune --method full --attn eager --seq 1024 --no-grad-checkpointing {g}"]
    out.append("estimate llama-3-8b --task finetune --method lora --lang zh --gpu rtx-4090")
    out.append("estimate llama-3-8b --task finetune --method qlora --gpu rtx-4090 --gpu rtx-4060-ti-16gb "
               "--gpu rtx-3060-12gb")
    for m in ["llama-3-8b", "qwen2.5-7b", "gpt2"]:  # the seed estimator
        out.append(f"estimate {m} --estimator seed --gpu rtx-4090")
        out.append(f"estimate {m} --estimator seed --task finetune {g}")
    out += [f"estimate llama-3-8b --estimator seed --task finetune --method lora {g}",
            f"estimate llama-3-8b --estimator seed --quant int8 --gpu rtx-4090",
            f"estimate llama-3-8b --estimator seed --quant int4 --gpu rtx-4090",
            f"estimate llama-3-8b --estimator seed --task finetune --activations-per-sample 1000000 {g}"]
    return [c + " --json" for c in out]


def parallel() -> list[str]:
    out = []
    g = "--gpu h100-sxm"
    for m, par, n in itertools.product(["llama-3-8b", "llama-3-70b"], ["ddp", "fsdp", "zero1", "zero2", "zero3"],
                                       [2, 8]):
        out.append(f"estimate {m} --task finetune --gpus {n} --parallelism {par} {g}")
    for z in ["0", "1", "2", "3"]:
        out.append(f"estimate llama-3-8b --task finetune --gpus 4 --zero {z} {g}")
    for off, par in itertools.product(["optimizer", "optimizer+params"], ["fsdp", "zero2", "zero3"]):
        if off == "optimizer+params" and par == "zero2":
            continue
        out.append(f"estimate llama-3-70b --task finetune --gpus 8 --parallelism {par} --offload {off} {g}")
    out += [f"estimate llama-3-70b --task finetune --gpus 8 --zero 3 --offload optimizer+params "
            f"--offload-device nvme {g}",
            f"estimate llama-3-70b --task finetune --gpus 8 --zero 3 --zero-prefetch-bucket 1e8 "
            f"--zero-max-live-params 5e8 --zero-param-persistence 1e6 --reduce-bucket 2e8 {g}"]
    for v in ["1", "2"]:
        out.append(f"estimate llama-3-70b --task finetune --gpus 8 --parallelism fsdp --fsdp-version {v} {g}")
        out.append(f"estimate llama-3-8b --task finetune --method lora --gpus 4 --parallelism fsdp "
                   f"--fsdp-version {v} {g}")
    out += [f"estimate llama-3-70b --task finetune --gpus 16 --nodes 2 --parallelism fsdp --fsdp-sharding hybrid {g}",
            f"estimate llama-3-70b --task finetune --gpus 32 --nodes 4 --parallelism fsdp {g}",
            f"estimate llama-3-70b --task pretrain --gpus 64 --nodes 8 --parallelism fsdp --fsdp-sharding hybrid "
            f"--grad-checkpointing {g}"]
    for tp, sp in [(2, False), (4, False), (8, True), (4, True)]:
        s = " --sequence-parallel" if sp else ""
        out.append(f"estimate llama-3-70b --task pretrain --gpus 8 --tp {tp}{s} --grad-checkpointing {g}")
    for pp, sched, acc in [(2, "1f1b", 8), (4, "1f1b", 8), (4, "gpipe", 8), (4, "interleaved", 8),
                           (8, "1f1b", 16), (2, "gpipe", 4)]:
        out.append(f"estimate llama-3-70b --task pretrain --pp {pp} --pp-schedule {sched} --grad-accum {acc} {g}")
    out += [f"estimate llama-3-70b --task pretrain --gpus 16 --tp 4 --pp 2 --grad-accum 8 {g}",
            f"estimate llama-3-70b --task pretrain --gpus 64 --tp 8 --pp 4 --grad-accum 16 --nodes 8 "
            f"--sequence-parallel {g}",
            f"estimate llama-3.1-405b --task pretrain --gpus 512 --tp 8 --pp 8 --grad-accum 16 --nodes 64 "
            f"--grad-checkpointing {g}"]
    for sp, mode in itertools.product([2, 4], ["ring", "ulysses"]):
        out.append(f"estimate llama-3-8b --task finetune --gpus {sp} --sp {sp} --sp-mode {mode} --seq 65536 "
                   f"--grad-checkpointing {g}")
    out.append(f"estimate llama-3-8b --task finetune --gpus 8 --cp 4 --seq 131072 --grad-checkpointing {g}")
    for m, ep in itertools.product(["mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3"], [2, 8]):
        out.append(f"estimate {m} --task finetune --gpus 8 --ep {ep} --parallelism fsdp --grad-checkpointing {g}")
    out += [f"estimate llama-3-8b --task finetune --method qlora --gpus 2 --parallelism fsdp {g}",
            f"estimate llama-3-8b --task finetune --gpus 4 --parallelism tp {g}",
            f"estimate llama-3-8b --task finetune --framework torchtune --gpus 4 {g}",
            f"estimate llama-3-8b --task finetune --gpus 4 --parallelism ddp --lang zh {g}"]
    return [c + " --json" for c in out]


def fits() -> list[str]:
    out = []
    gpus = ["rtx-3060-12gb", "rtx-4090", "a100-80gb"]
    for m, g in itertools.product(["llama-3-8b", "qwen2.5-7b", "gemma-2-9b", "mixtral-8x7b", "llama-3-70b",
                                   "deepseek-v2-lite", "t5-base", "phi-3-mini"], gpus):
        out.append(f"fit {m} --gpu {g}")
    for m, method, g in itertools.product(["llama-3-8b", "qwen2.5-7b", "gemma-2-9b"],
                                          ["full", "lora", "qlora"], ["rtx-4060-ti-16gb", "rtx-4090"]):
        out.append(f"fit {m} --task finetune --method {method} --gpu {g}")
    for fw, method in itertools.product(["torchtune", "pytorch"], ["full", "lora"]):
        out.append(f"fit llama-3-8b --task finetune --method {method} --framework {fw} --gpu rtx-4060-ti-16gb")
    out += ["fit llama-3-8b --task finetune --framework torchtune --gpu rtx-4090",
            "fit llama-3-8b --task pretrain --gpu a100-80gb",
            "fit llama-3-8b --task finetune --dtype fp32 --precision fp32 --gpu rtx-4090",
            "fit llama-3-8b --task finetune --method lora --batch 8 --seq 4096 --gpu rtx-4090",
            "fit mixtral-8x7b --task finetune --method qlora --gpu rtx-4090",
            "fit llama-3-70b --task finetune --method qlora --gpu a100-80gb",
            "fit llama-3-8b --task finetune --attn eager --gpu rtx-4090",
            "fit llama-3-8b --task finetune --gpus 4 --parallelism fsdp --gpu rtx-4090",
            "fit llama-3-8b --batch 8 --seq 32768 --gpu rtx-4090",
            "fit llama-3-8b --dtype fp32 --gpu rtx-4090",
            "fit llama-3-8b --kv-dtype fp8 --seq 131072 --gpu rtx-4090",
            "fit llama-3-70b --gpus 2 --parallelism tp --gpu a100-80gb",
            "fit llama-3-8b --task finetune --method lora --lang zh --gpu rtx-3060-12gb",
            "fit llama-3-8b --gpu rtx-4090 --gpu rtx-3060-12gb",
            "fit llama-3-8b"]
    for m, g in itertools.product(["llama-3-8b", "qwen2.5-7b", "mixtral-8x7b", "llama-3-70b"],
                                  ["rtx-3060-12gb", "rtx-4090", "h100-sxm"]):
        out.append(f"fit {m} --engine vllm --gpu {g}")
    out += ["fit llama-3-8b --engine vllm --max-model-len 8192 --gpu-memory-utilization 0.8 --gpu rtx-4090",
            "fit llama-3-8b --engine vllm --enforce-eager --kv-dtype fp8 --gpu rtx-3060-12gb",
            "fit llama-3-70b --engine vllm -tp 4 --gpu a100-80gb"]
    for m, q, g in itertools.product(["llama-3-8b", "llama-3-70b", "mixtral-8x7b"], ["Q4_K_M", "Q8_0"],
                                     ["rtx-3060-12gb", "rtx-4090"]):
        out.append(f"fit {m} --engine llama.cpp --quant {q} --gpu {g}")
    out += ["fit llama-3-8b --engine llama.cpp --gpu rtx-3060-12gb",
            "fit llama-3-8b --engine llama.cpp --quant Q4_K_M -c 131072 -fa --gpu rtx-3060-12gb",
            "fit qwen2.5-7b --engine llama.cpp --quant Q4_K_M -ngl 10 --gpu rtx-4060-ti-16gb",
            # 8-bit LoRA (LLM.int8) and LitGPT's QLoRA on bitsandbytes 0.42.0 and its default
            "fit llama-3-8b --task finetune --method qlora --quant int8 --gpu rtx-4090",
            "fit llama-3-8b --task finetune --method qlora --framework litgpt --bnb-version 0.42.0 --gpu rtx-4090",
            "fit llama-3-8b --task finetune --method qlora --framework litgpt --bnb-compute-dtype fp32 --gpu rtx-4090",
            # LitGPT's LLaMA-Adapter recipes; LoRA under ZeRO-3 as the HF Trainer builds it (zero.Init)
            "estimate llama-3.2-1b --task finetune --framework litgpt --method adapter --seq 512 --batch 2 --gpu a10g",
            "estimate llama-3.2-1b --task finetune --framework litgpt --method adapter-v2 --seq 512 --batch 2 --gpu a10g",
            "estimate llama-3-70b --task finetune --method lora --gpus 8 --parallelism zero3 --gpu h100-sxm"]
    return [c + " --json" for c in out]


#: commands that must be refused (exit 2) with their one-line error
REFUSALS = [
    "estimate llama-3-8b --task finetune --engine vllm --json",
    "estimate llama-3-8b --quant Q4_K_M --json",
    "estimate llama-3-8b --engine llama.cpp --quant nf4 --json",
    "estimate llama-3-8b --optimizer adamw --json",
    "estimate llama-3-8b --task finetune --kv-dtype fp8 --json",
    "estimate llama-3-8b --task pretrain --method lora --json",
    "estimate llama-3-8b --task finetune --method adapter --json",
    "estimate llama-3-8b --task finetune --framework litgpt --method adapter-v2 --gpus 2 --json",
    "estimate llama-3-8b --task finetune --method full --quant nf4 --json",
    "estimate llama-3-8b --task finetune --method qlora --quant fp8 --json",
    "estimate llama-3-8b --task finetune --gpus 3 --tp 2 --json",
    "estimate llama-3-8b --task finetune --optimizer-in-backward --grad-accum 4 --json",
    "estimate llama-3-8b --task finetune --dora --json",
    "estimate llama-3-8b --max-model-len 4096 --json",
    "estimate llama-3-8b -ngl 10 --json",
    "estimate llama-3-8b --task finetune --gpus 4 --sp 2 --attn eager --json",
    "estimate llama-3-8b --task finetune --fsdp-sharding hybrid --gpus 4 --json",
    "estimate llama-3-8b --estimator seed --gpus 2 --json",
    "estimate qwen2.5-72b --engine llama.cpp --gpus 2 -sm none -mg 2 --json",
    "estimate llama-3-8b --engine ollama --num-parallel 0 --json",
    "estimate llama-3-8b --engine sglang --mem-fraction-static 2 --json",
    "estimate --json -- vllm serve Qwen/Qwen2.5-7B --max-model-len lots",
    "estimate llama-3-8b --batch 0 --json",
    "estimate llama-3-8b --cache static --engine vllm --json",
    "fit llama-3-8b --estimator seed --json",
]


def main() -> int:
    sys.path.insert(0, str(HERE))
    from regen import run  # noqa: E402  (the same in-process runner the test uses)

    candidates = list(dict.fromkeys(inference() + vllm() + llamacpp() + engines() + training() + parallel()
                                    + fits()))
    kept = []
    for c in candidates:
        rc, _, err = run(c)
        if rc == 0:
            kept.append(c)
        else:
            print(f"dropped (exit {rc}): {c}\n    {err.strip()}", file=sys.stderr)
    refused = []
    for c in REFUSALS:
        rc, _, err = run(c)
        if rc == 2:
            refused.append(c)
        else:
            print(f"not a refusal (exit {rc}): {c}", file=sys.stderr)
    (HERE / "commands.txt").write_text("\n".join(kept) + "\n")
    (HERE / "refusals.txt").write_text("\n".join(refused) + "\n")
    print(f"{len(kept)} commands, {len(refused)} refusals ({len(candidates) - len(kept)} candidates dropped)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
