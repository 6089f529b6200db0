"""Training frameworks as data: each profile says how its loop and modules differ, and which defaults its recipes
fill in where the user gave none (applied by ``make_workload`` before the cross-checks).

* ``hf``: the Hugging Face Trainer / TRL / peft (adapters in fp32, ``autocast_adapter_dtype=True``; the model
  outputs dropped before backward). Its defaults, read at transformers 5.24.0, peft 0.21.2 and TRL 1.10.0.dev0
  (huggingface/trl f2cd577): LoRA and QLoRA run with gradient checkpointing, which TRL's configs
  turn on (``SFTConfig``/``_BaseConfig``: ``gradient_checkpointing=True``) and peft's k-bit path too
  (``prepare_model_for_kbit_training(use_gradient_checkpointing=True)``), non-reentrant as transformers 5 sets it
  (``activation_checkpointing_kwargs`` default ``{"use_reentrant": False}``); full training keeps the Trainer's
  ``gradient_checkpointing=False``. The Trainer's ``optim`` is ``adamw_torch_fused`` when torch >= 2.8
  (``TrainingArguments``: ``default_optim``); the profile keeps torch's foreach AdamW and says so (see below);
* ``pytorch``: a plain loop (``out = model(...); out.loss.backward()``) that keeps ``out.logits`` through backward;
* ``torchtune``: its recipes' defaults (configs/llama3_1/8B_lora_single_device.yaml and the others: LoRA on
  q/v/output projections and the MLP, activation checkpointing, ``CEWithChunkedOutputLoss`` of 8 chunks, fused
  AdamW; the full_finetune_single_device configs: bitsandbytes PagedAdamW8bit stepped inside backward) and its
  own modules (adapters in the model dtype, torchao NF4 double-quantized bases whose eager dequantization builds
  int64 indices: 14.05 bytes per element, traced).
* ``accelerate``: accelerate 1.10.1 with FSDP (``FullyShardedDataParallelPlugin.set_mixed_precision``, called by
  ``AcceleratorState`` when ``mixed_precision`` is bf16/fp16): the model upcast to fp32 (``fsdp2_prepare_model``),
  ``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=bf16, output_dtype=bf16)`` (FSDP1: ``MixedPrecision`` of the
  same dtypes); autocast still wraps forward, a no-op cast for parameters already bf16. The Hugging Face Trainer
  (``hf``) prepares its model through accelerate, so ``hf`` shares the policy;
* ``torchtitan`` (pytorch/torchtitan b5bcd76, 2026-08-21; ``torchtitan/distributed/fsdp.py apply_fsdp_to_decoder``,
  ``config/configs.py``): ``training.dtype = float32`` sharded parameters, ``mixed_precision_param = bfloat16``,
  ``mixed_precision_reduce = float32`` given to ``fully_shard`` as its ``MixedPrecisionPolicy``; every block, the
  untied embedding, and [norm, output] with ``reshard_after_forward=False`` (the units accelerate builds); autocast
  only without sharding (DDP or one device); FSDP2 only;
* ``megatron``: Megatron-LM ``--bf16`` (docs/source/api-guide/dist_optimizer.md): bf16 model parameters, fp32
  main gradients (``accumulate_allreduce_grads_in_fp32``, one contiguous buffer whose buckets are views), fp32
  main parameters and Adam states in the optimizer — 18 bytes per parameter, 6 + 12/d with the distributed
  optimizer (``--use-distributed-optimizer``: ``--parallelism zero1`` here). It shards with its own optimizer, not
  torch FSDP.
* ``litgpt``: LitGPT 0.5.13 (Lightning-AI/litgpt 26857050) ``litgpt finetune lora | full``: its own model code
  (``litgpt/model.py``: fused qkv, k/v ``repeat_interleave``-d to every head before SDPA, RMSNorm in fp32; LoRA of
  ``litgpt/lora.py``, adapters built in the training dtype by ``fabric.init_module``) and its recipes' defaults
  (``litgpt/finetune/lora.py setup``: ``lora_r=8``, ``lora_alpha=16``, ``lora_dropout=0.05``, LoRA on query and
  value only; ``optimizer="AdamW"``, torch's; ``--precision bf16-true``, the config hub's choice: weights,
  gradients and AdamW states all bf16, no fp32 masters — vramscope's ``--precision pure``). Its loop
  (``fit``): ``logits = model(input_ids, lm_head_chunk_size=128)`` (the head in chunks of 128 tokens, every chunk
  kept by ``logits`` through backward) and ``chunked_cross_entropy`` (``litgpt/utils.py``: ``F.cross_entropy`` on
  each chunk, no upcast of its own); full fine-tuning: one unchunked head and the same per-128-token loss. The
  loop calls the model through Fabric's ``_FabricModule`` (Lightning 2.6.6 ``fabric/wrappers.py``), whose
  ``forward`` hands the output to the precision plugin's ``convert_output``: the 16-bit logits come back as fp32
  copies (torch's default dtype), so the loss, its log-probabilities and the logits the loop keeps are fp32
  (``Framework.logits_fp32``; the gemma-2b config-hub row was 10.9% under without it). On one
  device no activation checkpointing; on several, ``lora.py`` shards with FSDP2 (``ModelParallelStrategy``,
  ``parallelize_fn(activation_checkpointing=True)``) and ``full.py`` with FSDP1 (``FSDPStrategy``,
  ``activation_checkpointing_policy={Block}``), both checkpointing every Block. ``--quantize bnb.nf4`` (QLoRA):
  Lightning's ``BitsandbytesPrecision("nf4")`` (no double quantization) and bitsandbytes' 32-bit ``PagedAdamW``
  (``instantiate_bnb_optimizer``).
* ``unsloth`` (unslothai/unsloth 015bdef, 2026-08-22, and unsloth-zoo ce232d6 = 2026.8.13): ``get_peft_model``
  defaults (``r=16`` on q/k/v/o/gate/up/down, ``lora_dropout=0``, ``use_gradient_checkpointing="unsloth"``);
  unsloth_zoo ``training_utils.prepare_model_for_training`` upcasts the LoRA weights to fp32 and leaves the frozen
  embeddings and head in the model dtype; ``FastLlamaModel.from_pretrained(load_in_4bit=True)``: nf4 with double
  quantization (``bnb_4bit_use_double_quant=True``). Its offloaded checkpointing
  (``unsloth_zoo/gradient_checkpointing.py UnslothCheckpointFunction``) copies each checkpointed layer's input
  hidden state into a pinned CPU buffer (``non_blocking``) and keeps a GPU buffer of that size for the
  recomputation, two from the second step while more than 512 MiB is free (double buffering); the last layer's input
  stays on the GPU (``LAST_GC_INDEX``). Run on Unsloth's own code on the CPU (tests/unsloth_run.py: the kernels'
  Python autograd Functions with their Triton launches replaced by PyTorch references, and unsloth-zoo's checkpoint). Its fused LoRA kernels
  (``unsloth/kernels/fast_lora.py``) save: ``LoRA_QKV`` the normed input, ``LoRA_MLP`` the input and the gate and
  up outputs (``X, e, g``; SwiGLU recomputed in backward), ``LoRA_W`` (o_proj) its input; fast RMSNorm its input
  and an fp32 rstd per row. Its loss (``unsloth_zoo/fused_losses/cross_entropy_loss.py unsloth_fused_ce_loss``,
  used by its ``LlamaForCausalLM`` forward unless ``UNSLOTH_RETURN_LOGITS=1``) runs the head and cross-entropy in forward, chunk by
  chunk, writing the hidden states' gradient (saved for backward), no full logits; chunks sized so one chunk's fp32
  logits stay under ``min(free/2, 4 GiB)`` (4 GiB assumed); each chunk a torch.compile'd ``grad_and_value`` that
  holds the chunk's logits in the compute dtype (measured on CPU inductor). A layer recomputed in backward also
  holds its output gradient and its recomputed output (``UnslothCheckpointFunction.backward`` runs
  ``torch.autograd.backward(outputs, dY)``). ``--unsloth-version`` before 2025.3 (unslothai/unsloth 4f166026,
  2025-03-01): ``matmul_lora`` adds the adapter's product out of place (``out += (X @ A) @ (s * B)``, read at
  2024.12.3, 0e0d8fc322), a second ``DW``-sized tensor in ``LoRA_MLP.backward``; and (unsloth 3e5f0611, 2025-03-04,
  the 2025.3.1 wheel) the checkpointing is unsloth-zoo's older ``Unsloth_Offloaded_Gradient_Checkpointer`` (read in
  the unsloth 2024.12.4 and unsloth_zoo 2024.12.7 wheels): every layer's input, the last one's too, copied to host
  memory, no input or buffer left on the GPU (``estimators/training.py unsloth_offload``).
* ``llamafactory`` (hiyouga/LLaMA-Factory ff6d4d1, 2026-08-18; ``hparams/model_args.py``, ``finetuning_args.py``,
  ``data_args.py``, ``model/model_utils/checkpointing.py``, ``model/adapter.py``): ``finetuning_type: lora``,
  ``lora_rank: 8``, ``lora_target: all``, ``lora_dropout: 0``; checkpointing for every method
  (``disable_gradient_checkpointing: False``; reentrant, ``use_reentrant_gc: True``); ``flash_attn: auto`` leaves
  transformers' own choice (sdpa); ``enable_liger_kernel: False``, ``upcast_layernorm: False``, packing off
  (``packing: None`` is off for SFT), ``cutoff_len: 2048``; trainable parameters upcast to fp32
  (``cast_trainable_params_to_fp32``); 4-bit: nf4 with ``double_quantization: True``; its Trainer is the
  Hugging Face Seq2SeqTrainer (the loss only into backward).
* ``axolotl`` (axolotl-ai-cloud/axolotl 067b021, 2026-07-24; ``src/axolotl/utils/schemas/config.py``,
  ``training.py``, ``peft.py``, ``integrations/liger/args.py``): ``gradient_checkpointing: False``,
  ``sample_packing`` off, ``sequence_len: 512``, ``micro_batch_size: 1``, ``optimizer: adamw_torch_fused``,
  ``attn_implementation`` unset (transformers' sdpa), the ``liger_*`` plugin switches unset (off);
  ``lora_target_linear`` (all linear layers) as its example configs set it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Framework:
    name: str
    #: the loop holds out.logits (compute dtype) while backward starts
    keeps_logits: bool = False
    #: its own modules (TrainFlags.torchtune): adapters in the model dtype, k/v expanded to every head...
    own_modules: bool = False
    #: bytes per element of a 4-bit base's dequantized linear in eager mode (None: the compute dtype)
    eager_dequant_bytes: Optional[float] = None
    # the recipes' defaults, where the user gave none
    lora_targets: tuple[str, ...] = ("all-linear",)
    qlora_quant: str = "nf4"
    #: the methods its recipes run with activation checkpointing
    grad_checkpointing: tuple[str, ...] = ()
    ce_chunks: int = 1
    optimizer: str = "adamw"
    #: where that default optimizer comes from (an assumption's i18n key; "": say nothing)
    optimizer_note: str = ""
    #: full fine-tuning on one GPU: its optimizer, stepped inside backward unless gradients accumulate
    full_single_optimizer: Optional[str] = None
    #: ``--precision mixed`` under FSDP: the MixedPrecisionPolicy it gives fully_shard, as (bytes of param_dtype,
    #: bytes of reduce_dtype), fp32 sharded parameters kept as the masters; None: fp32 FSDP parameters under
    #: torch.autocast (a plain loop), whose weight-cast cache holds a 16-bit copy of every linear weight
    fsdp_policy: Optional[tuple[float, float]] = None
    #: torch.autocast still wraps forward under that policy (accelerate's native_amp: a no-op cast for the
    #: 16-bit parameters, fp32 for autocast's fp32 ops)
    autocast_with_fsdp_policy: bool = False
    #: the FSDP versions the stack runs
    fsdp_versions: tuple[int, ...] = (1, 2)
    #: ``--precision mixed`` is Megatron-LM's --bf16: bf16 parameters, fp32 main gradients, fp32 main parameters
    #: and states in the (distributed) optimizer
    megatron_mixed: bool = False
    #: FSDP is not how the stack shards (Megatron-LM: its distributed optimizer)
    runs_fsdp: bool = True
    #: what the stack calls "selective" activation checkpointing: Megatron's core-attention recompute, or
    #: (torchtitan) the per-op policy, vramscope's "op"
    selective_mode: str = "selective"
    #: the recipes' LoRA rank and dropout where the user gave none
    lora_rank: int = 16
    lora_dropout: float = 0.0
    #: the loss upcasts the logits to fp32 (transformers' ForCausalLMLoss, torchtune); False: cross-entropy on the
    #: 16-bit logits (LitGPT's chunked_cross_entropy)
    ce_upcast: bool = True
    #: the output head and loss in chunks of this many tokens (LitGPT's lm_head_chunk_size=128): --chunked-ce's
    #: default is ceil(seq / it); 0: ``ce_chunks``
    ce_chunk_tokens: int = 0
    #: the methods its recipes checkpoint only when sharded over several GPUs (LitGPT's FSDP strategies)
    grad_checkpointing_sharded: tuple[str, ...] = ()
    #: QLoRA's optimizer where the user gave none (None: ``optimizer``)
    qlora_optimizer: Optional[str] = None
    #: the loop's logits stay alive through the optimizer step (a local replaced by the next forward's)
    logits_outlive_step: bool = False
    #: the loop receives the model's output in fp32 (LitGPT: Lightning Fabric's ``_FabricModule.forward`` passes
    #: it to the precision plugin's ``convert_output``, which casts floating outputs to torch's default dtype)
    logits_fp32: bool = False
    #: a tied output head is a separate parameter in its model (LitGPT's GPT.lm_head)
    unties_embeddings: bool = False
    #: the model code the trace runs: transformers', or the stack's own (``litgpt``: litgpt.model.GPT)
    trace_model: str = "transformers"
    #: the recipes' training sequence where it differs from vramscope's 2048 (axolotl's sequence_len 512)
    seq: Optional[int] = None
    #: the methods whose recipes checkpoint: Unsloth's offloaded checkpointing (layer inputs in pinned host memory)
    offload_checkpoint: bool = False
    #: Unsloth's fused LoRA kernels (LoRA_QKV, LoRA_MLP, LoRA_W) and fast RMSNorm save their own tensors
    fused_lora: bool = False
    #: the loss: "" (transformers' ForCausalLMLoss), "unsloth" (unsloth_fused_ce_loss)
    fused_ce: str = ""
    #: Liger kernels the recipes turn on (none of them by default)
    liger: tuple[str, ...] = ()
    #: how its QLoRA prepares the 4-bit base (``--kbit-prep``): Unsloth (unsloth_zoo prepare_model_for_training) and
    #: LLaMA-Factory (model_utils/checkpointing.py, upcast_layernorm False) do not call peft's
    #: prepare_model_for_kbit_training: their frozen embeddings and head stay 16-bit; axolotl does (loaders/model.py)
    kbit_prep: str = "peft"
    #: its activation checkpointing is reentrant (``use_reentrant=True``: forward under no_grad, no graph kept)
    reentrant_checkpointing: bool = False
    #: the bitsandbytes release its QLoRA runs where the user gave none (``--bnb-version``)
    bnb_version: str = "0.50"
    #: how its 4-bit layers are made: "transformers" (``BitsAndBytesConfig``: ``lm_head`` kept 16-bit, the weights
    #: quantized from the dtype they were loaded in) or "lightning" (Lightning's ``BitsandbytesPrecision``:
    #: every ``nn.Linear``, ``lm_head`` included, quantized from an fp16 copy)
    bnb_convert: str = "transformers"

    @property
    def adapter_bytes(self) -> Optional[float]:
        """Bytes per adapter parameter: None for the model dtype (own modules), else fp32 (peft)."""
        return None if self.own_modules else 4.0


#: torchtune's LoRA recipes: lora_attn_modules q_proj, v_proj, output_proj and apply_lora_to_mlp: True (w1, w2, w3),
#: in transformers' names
TORCHTUNE_LORA_TARGETS = ("q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: torchtune's CEWithChunkedOutputLoss default number of chunks (torchtune/modules/loss/ce_chunked_output_loss.py)
TORCHTUNE_CE_CHUNKS = 8
TORCHTUNE_FULL_SINGLE_OPTIMIZER = "paged-adamw-8bit"
#: Unsloth's get_peft_model target_modules default
UNSLOTH_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: Liger's kernels (linkedin/Liger-Kernel 0.8.2, ead96b6): fused linear cross-entropy, RMSNorm, SwiGLU, RoPE
LIGER_KERNELS = ("flce", "rms-norm", "swiglu", "rope")

#: LitGPT's finetune/lora.py defaults lora_query=True, lora_value=True (key, projection, mlp, head False)
LITGPT_LORA_TARGETS = ("q_proj", "v_proj")
#: LitGPT's lm_head_chunk_size in its finetune loops and chunked_cross_entropy's chunk_size
LITGPT_CHUNK_TOKENS = 128
#: the newest bitsandbytes LitGPT 0.5.13 installs on Linux (pyproject.toml at 26857050: ``bitsandbytes>=0.45.2,<0.50``)
LITGPT_BNB_VERSION = "0.49.2"

#: LitGPT 0.5.13 ``Config.from_name`` names of catalog models: each config's ``hf_config`` org/name is the catalog
#: id (litgpt/config.py; tests/test_litgpt.py checks every row against the installed litgpt)
LITGPT_MODELS = {
    "falcon-7b": "tiiuae/falcon-7b", "falcon-40b": "tiiuae/falcon-40b", "falcon-180B": "tiiuae/falcon-180B",
    "Falcon3-7B-Base": "tiiuae/Falcon3-7B-Base", "Llama-2-7b-hf": "meta-llama/Llama-2-7b-hf",
    "Llama-2-13b-hf": "meta-llama/Llama-2-13b-hf", "Llama-2-70b-hf": "meta-llama/Llama-2-70b-hf",
    "Llama-3-8B": "meta-llama/Meta-Llama-3-8B", "Llama-3-70B": "meta-llama/Meta-Llama-3-70B",
    "Llama-3.2-1B": "meta-llama/Llama-3.2-1B", "Llama-3.2-3B": "meta-llama/Llama-3.2-3B",
    "Llama-3.3-70B-Instruct": "meta-llama/Llama-3.3-70B-Instruct", "Gemma-2b": "google/gemma-2b",
    "Gemma-7b": "google/gemma-7b", "Gemma-2-2b": "google/gemma-2-2b", "Gemma-2-9b": "google/gemma-2-9b",
    "Gemma-2-27b": "google/gemma-2-27b", "phi-2": "microsoft/phi-2",
    "Phi-3-mini-4k-instruct": "microsoft/Phi-3-mini-4k-instruct",
    "Phi-3.5-mini-instruct": "microsoft/Phi-3.5-mini-instruct", "phi-4": "microsoft/phi-4",
    "Mistral-7B-v0.1": "mistralai/Mistral-7B-v0.1", "Mistral-7B-v0.3": "mistralai/Mistral-7B-v0.3",
    "Mixtral-8x7B-v0.1": "mistralai/Mixtral-8x7B-v0.1", "Mixtral-8x22B-v0.1": "mistralai/Mixtral-8x22B-v0.1",
    "Qwen2.5-0.5B": "Qwen/Qwen2.5-0.5B", "Qwen2.5-1.5B": "Qwen/Qwen2.5-1.5B", "Qwen2.5-3B": "Qwen/Qwen2.5-3B",
    "Qwen2.5-7B": "Qwen/Qwen2.5-7B", "Qwen2.5-14B": "Qwen/Qwen2.5-14B", "Qwen2.5-32B": "Qwen/Qwen2.5-32B",
    "Qwen2.5-72B": "Qwen/Qwen2.5-72B", "Qwen2.5-Coder-7B": "Qwen/Qwen2.5-Coder-7B", "Qwen3-0.6B": "Qwen/Qwen3-0.6B",
    "Qwen3-1.7B": "Qwen/Qwen3-1.7B", "Qwen3-4B": "Qwen/Qwen3-4B", "Qwen3-8B": "Qwen/Qwen3-8B",
    "Qwen3-14B": "Qwen/Qwen3-14B", "Qwen3-32B": "Qwen/Qwen3-32B", "Qwen3-30B-A3B": "Qwen/Qwen3-30B-A3B",
    "Qwen3-235B-A22B": "Qwen/Qwen3-235B-A22B", "R1-Distill-Llama-8B": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    "R1-Distill-Llama-70B": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
}


def litgpt_model(name: str) -> Optional[str]:
    """The catalog id a LitGPT model name stands for: a ``Config.from_name`` name (any case), or a checkpoint
    directory as LitGPT's recipes take it (``checkpoints/meta-llama/Meta-Llama-3-8B`` → the Hub id)."""
    text = name.strip().rstrip("/")
    for prefix in ("checkpoints/", "./checkpoints/"):
        text = text[len(prefix):] if text.startswith(prefix) else text
    lowered = {k.lower(): v for k, v in LITGPT_MODELS.items()}
    if text.lower() in lowered:
        return lowered[text.lower()]
    if "/" not in text:
        return None
    from .sources import catalog

    # a Hub id the catalog knows by another name (meta-llama/Meta-Llama-3.1-8B: the catalog's Llama-3.1-8B)
    if catalog.find(text) is None:
        entry = catalog.find(text.rsplit("/", 1)[1])
        if entry is not None:
            return entry["id"]
    return text


def litgpt_name_for(model_id: str) -> Optional[str]:
    """The LitGPT name of a catalog id (the reverse of :data:`LITGPT_MODELS`)."""
    low = model_id.strip().lower()
    return next((k for k, v in LITGPT_MODELS.items() if v.lower() == low or k.lower() == low), None)


#: accelerate's FSDP policy for mixed_precision bf16: param_dtype and reduce_dtype bf16
ACCELERATE_FSDP_POLICY = (2.0, 2.0)
#: torchtitan's: mixed_precision_param bfloat16, mixed_precision_reduce float32
TORCHTITAN_FSDP_POLICY = (2.0, 4.0)

PROFILES: dict[str, Framework] = {
    # optimizer: torch's foreach AdamW, not the Trainer's adamw_torch_fused (transformers 5 with torch >= 2.8): the
    # analytic fused step (two of the largest tensor) disagrees with the trace in 16 cases of test_trace_matrix
    # (it peaks at the step, the trace in backward); said as an assumption until that is reconciled. Under FSDP the
    # Trainer goes through accelerate: its mixed-precision policy
    "hf": Framework("hf", grad_checkpointing=("lora", "qlora"), optimizer="adamw", optimizer_note="a_hf_optimizer",
                    fsdp_policy=ACCELERATE_FSDP_POLICY, autocast_with_fsdp_policy=True),
    "pytorch": Framework("pytorch", keeps_logits=True),
    # torchao's NF4Tensor double-quantizes its scalers like bitsandbytes' nf4-dq; the other torchtune recipes
    # pass fused: True to torch.optim.AdamW (118 of its configs in 0.6.1)
    "torchtune": Framework("torchtune", own_modules=True, eager_dequant_bytes=14.05,
                           lora_targets=TORCHTUNE_LORA_TARGETS, qlora_quant="nf4-dq",
                           grad_checkpointing=("full", "freeze", "lora", "qlora"),
                           ce_chunks=TORCHTUNE_CE_CHUNKS, optimizer="adamw-fused",
                           full_single_optimizer=TORCHTUNE_FULL_SINGLE_OPTIMIZER),
    # accelerate's examples (examples/nlp_example.py) run ``outputs = model(**batch)`` and keep ``outputs``
    # through ``accelerator.backward(outputs.loss)``
    "accelerate": Framework("accelerate", keeps_logits=True, fsdp_policy=ACCELERATE_FSDP_POLICY,
                            autocast_with_fsdp_policy=True),
    # activation_checkpoint.py: mode "selective" is SelectiveAC, the per-op policy
    "torchtitan": Framework("torchtitan", fsdp_policy=TORCHTITAN_FSDP_POLICY, fsdp_versions=(2,),
                            selective_mode="op"),
    "megatron": Framework("megatron", megatron_mixed=True, runs_fsdp=False),
    # LitGPT 0.5.13: finetune/lora.py setup's defaults (lora_query, lora_value; r 8, dropout 0.05); the loop keeps
    # ``logits`` (the list of head chunks) through fabric.backward; the head and loss in 128-token chunks;
    # --quantize bnb.nf4 with bitsandbytes.optim.PagedAdamW (utils.instantiate_bnb_optimizer)
    "litgpt": Framework("litgpt", keeps_logits=True, own_modules=True, lora_targets=LITGPT_LORA_TARGETS,
                        qlora_quant="nf4", lora_rank=8, lora_dropout=0.05, ce_upcast=False, ce_chunk_tokens=LITGPT_CHUNK_TOKENS,
                        grad_checkpointing_sharded=("full", "freeze", "lora", "qlora"),
                        qlora_optimizer="paged-adamw", unties_embeddings=True, logits_outlive_step=True,
                        logits_fp32=True,
                        trace_model="litgpt", bnb_version=LITGPT_BNB_VERSION, bnb_convert="lightning"),
    # Unsloth's kernels, loss and offloaded checkpointing are modelled for adapters (LoRA/QLoRA); its full
    # fine-tuning is estimated with transformers' modules and loss. The Trainer's optimizer default
    "unsloth": Framework("unsloth", grad_checkpointing=("lora", "qlora"), qlora_quant="nf4-dq",
                         lora_targets=UNSLOTH_LORA_TARGETS, optimizer="adamw", optimizer_note="a_hf_optimizer",
                         offload_checkpoint=True, fused_lora=True, fused_ce="unsloth", kbit_prep="none",
                         reentrant_checkpointing=True,
                         fsdp_policy=ACCELERATE_FSDP_POLICY, autocast_with_fsdp_policy=True),
    "llamafactory": Framework("llamafactory", grad_checkpointing=("full", "freeze", "lora", "qlora"),
                              qlora_quant="nf4-dq", lora_rank=8, optimizer="adamw", optimizer_note="a_hf_optimizer",
                              kbit_prep="none", reentrant_checkpointing=True,
                              fsdp_policy=ACCELERATE_FSDP_POLICY, autocast_with_fsdp_policy=True),
    "axolotl": Framework("axolotl", qlora_quant="nf4-dq", optimizer="adamw-fused", seq=512, reentrant_checkpointing=True,
                         fsdp_policy=ACCELERATE_FSDP_POLICY, autocast_with_fsdp_policy=True),
}
FRAMEWORKS = tuple(PROFILES)


def checkpointing_default(profile: Framework, method: str, num_gpus: int = 1) -> bool:
    """Whether the framework's recipe for ``method`` on ``num_gpus`` GPUs runs with activation checkpointing."""
    return method in profile.grad_checkpointing or (num_gpus > 1 and method in profile.grad_checkpointing_sharded)
