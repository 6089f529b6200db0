#!/usr/bin/env bash
# Measure a small matrix of workloads on a real CUDA GPU and append the records to validation/measured.jsonl.
# Each record holds the three numbers per phase (torch's max_memory_allocated and max_memory_reserved, NVML used)
# and the allocator's segments at the end (torch.cuda.memory._snapshot()); two workloads run again under other
# PYTORCH_CUDA_ALLOC_CONF settings, so the allocator model's settings are checked too.
#
# For sessions that are lent a GPU (the device tool runs this in the repository root): one short script, each
# workload a separate `vramscope measure` process (peaks are per process), models built from their configs with
# random weights (no Hub access needed). Afterwards, on the development machine:
#     python bench/validation_report.py --trace --write docs/accuracy.md
#     python bench/allocator_vs_device.py validation/measured.jsonl --json bench/results/allocator_vs_device.json
# compare analytic, trace and these measurements, and the allocator model's replay with the real allocator
# (reserved bytes and segment counts). Budget: about 3-5 minutes on an H100/H200.
set -u
OUT=${1:-validation/measured.jsonl}
# The device machine reaches no network: run vramscope from the source tree with the device's own CUDA torch,
# transformers and peft (nothing to install).
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch, transformers, peft; assert torch.cuda.is_available()" || {
  echo "needs CUDA torch, transformers and peft on the device" >&2; exit 1; }
V="python -m vramscope"
run() {  # every workload in its own process; a failure is reported and the matrix goes on
  echo "== $*" >&2
  timeout 240 $V measure "$@" --output "$OUT" --json > /dev/null || echo "   failed: $*" >&2
}
if [ -z "${FSDP_ONLY:-}" ]; then
run qwen2.5-0.5b --seq 4096
run qwen2.5-0.5b --task finetune --seq 1024 --batch 2
run qwen2.5-0.5b --task finetune --seq 1024 --method lora
run qwen2.5-0.5b --task finetune --seq 2048 --grad-checkpointing
run qwen2.5-0.5b --task finetune --seq 2048 --chunked-ce --optimizer-in-backward --grad-checkpointing
run llama-3.2-1b --task finetune --seq 2048 --method lora --dora
run llama-3.2-1b --task finetune --seq 2048 --method lora --activation-offload --grad-checkpointing
run llama-3-8b --seq 8192
run llama-3-8b --task finetune --seq 2048 --method lora
run llama-3-8b --task finetune --seq 2048 --method lora --grad-checkpointing --attn eager
run qwen3-8b --task finetune --seq 1024 --method lora --grad-checkpointing
# QLoRA (peft + bitsandbytes): the config-built bf16 model quantized on the GPU (nf4 / nf4 double quant), prepared as
# peft's prepare_model_for_kbit_training (default) and as TRL 0.x's SFTTrainer does, beside its bf16 LoRA run above
if python -c "import bitsandbytes" 2>/dev/null; then
  run llama-3-8b --task finetune --seq 2048 --method qlora
  run llama-3-8b --task finetune --seq 2048 --method qlora --quant nf4-dq --kbit-prep trl0 --batch 2
  run llama-3-8b --task finetune --seq 2048 --method qlora --kbit-prep none
else
  echo "   skipped QLoRA: bitsandbytes is not installed on the device" >&2
fi
# the allocator's settings: the model replays the same workloads with them
run qwen2.5-0.5b --task finetune --seq 1024 --batch 2 --alloc-conf expandable_segments:True
run llama-3.2-1b --task finetune --seq 2048 --method lora --dora --alloc-conf max_split_size_mb:128
run llama-3.2-1b --task finetune --seq 1024 --alloc-conf roundup_power2_divisions:4
fi
# FSDP-LoRA (issue #19): FSDP2 as accelerate wraps it (every decoder layer, the untied embedding, [norm, head], the
# root), under torchrun: one process on a one-GPU machine (the all-gather / copy-out buffers are real there too),
# two where the machine has two GPUs. bf16 base; then the fp32 base of peft's SFT example under accelerate's mixed
# precision (fp32 shards, bf16 gathers). Each rank appends its own record.
fsdp() {  # fsdp NPROC MODEL OPTIONS...
  local n=$1; shift
  echo "== torchrun x$n $*" >&2
  timeout 300 torchrun --standalone --nproc_per_node "$n" -m vramscope measure "$@" --gpus "$n" --parallelism fsdp \
    --fsdp-version 2 --output "$OUT" --json > /dev/null || echo "   failed: fsdp x$n $*" >&2
}
NGPU=$(python -c "import torch; print(torch.cuda.device_count())")
fsdp 1 llama-3.2-1b --task finetune --seq 2048 --batch 2 --method lora
fsdp 1 llama-3.2-1b --task finetune --seq 2048 --batch 2 --method lora --precision mixed
if [ "$NGPU" -ge 2 ]; then
  fsdp 2 llama-3.2-1b --task finetune --seq 2048 --batch 2 --method lora
  fsdp 2 llama-3.2-1b --task finetune --seq 2048 --batch 2 --method lora --precision mixed
fi
echo "records appended to $OUT" >&2
