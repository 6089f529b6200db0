"""Training memory as named steps, each a small function returning its state (a frozen dataclass) and appending
its assumptions; :func:`vramscope.estimators.analytic._training` runs them top to bottom.

1. :func:`precision` – the recipe (pure / mixed / fp32 / DeepSpeed / LoRA) and the unsharded bytes of weights,
   gradients, optimizer states and the step's temporaries (ZeRO paper §3 for 2 + 2 + 12 bytes; peft
   ``autocast_adapter_dtype``; ``torch.autocast`` weight cast cache);
2. :func:`saved_activations` – what forward saves (``memory/activations.py``: Korthikanti et al. 2022, traced
   per family) and the context-parallel exchange (``memory/parallel.py``);
3. :func:`layout` – the shard group and what the strategy (:class:`vramscope.strategy.Strategy`) splits:
   FSDP 1/2 and ZeRO-3 gather buffers, ZeRO-1/2 reduce buckets, DDP's reducer buckets, expert parallelism
   (``memory/parallel.py``, DeepSpeed stage_1_and_2.py / stage3.py);
4. :func:`offload` – ZeRO-Offload (arXiv 2101.06840) / FSDP CPUOffload / ZeRO-Infinity on NVMe;
   :func:`offload_activations` – torchtune / TRL ``OffloadActivations``;
5. the per-phase moments: :func:`forward_moment` and :func:`backward_moment` pick the largest live set among a
   phase's candidate moments (loss, a layer's gather, the last layer's backward, the gradient reduce, chunked
   heads, checkpoint recomputation, the optimizer stepped in backward), each traced on real runs
   (docs/accuracy.md); the pipeline stages (``memory/pipeline.py``) then split the phases per rank.

The framework (:class:`vramscope.frameworks.Framework`) enters as data: its loop keeps the logits or not, its
modules keep adapters in the model dtype or in fp32, its 4-bit bases dequantize at some bytes per element.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..errors import Opt, Text, VramscopeError
from ..i18n import register
from ..memory.activations import (FULL_TRAINING, TrainFlags, TrainingActivations, checkpointed_layers, dora_forward_transient,
                                  fused_ce_chunk,
                                  merged_expert_bytes, op_sac_bytes_per_token, training_activations,
                                  compiled_layers_modelled, compiled_op_sac_bytes_per_token)
from ..memory.gradients import gradient_bytes
from ..memory.moe_dispatch import dispatcher_saved, gather_buffer, routed_rows
from ..memory.optimizer_states import deepspeed_step_temporary, optimizer_state_bytes, step_temporary_bytes
from ..memory.parallel import (NO_BUFFERS, FsdpBuffers, bnb_quant_state_bytes, context_parallel_transient, ring_merged_output,
                               expert_fraction, fsdp_buffers, largest_layer_params, nvme_pinned_bytes, persistent_params, split_bytes,
                               zero3_buffers, zero_bucket, zero_sizes)
from ..memory.pipeline import pipeline_stages
from ..memory.trainable import (LITGPT_ADAPTER_PROMPT, LITGPT_ADAPTER_START, Trainable, dora_magnitude_params,
                                lora_modules)
from ..memory.weights import quantized_linear_bytes, spec_weight_bytes
from ..options import version_tuple
from ..units import format_bytes
from ..model.spec import ModelSpec
from ..model.tensors import groups, largest_layer_linear, largest_tensor
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..engines.base import weights as weights_on_rank
from ..workload import Workload
from .common import dtype_bytes

Phases = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Precision:
    """Step 1: the recipe, its byte widths, and the unsharded per-rank tensors."""
    recipe: str
    dtype: str
    a: float  # compute dtype bytes
    act_bytes: float  # saved activations
    param_bytes: float  # trainable parameters and their gradients
    gather_bytes: float  # parameters as FSDP gathers them
    cast_cache: int  # autocast's 16-bit copies of the linear weights, alive from forward until autocast exits
    weights: int
    grads: int
    states: int
    temp: int
    layer_params: int
    largest: int
    #: bytes per element of FSDP's unsharded gradients (the parameters' compute dtype) and of its reduce-scatter
    #: input (MixedPrecisionPolicy.reduce_dtype); 0: the parameters' bytes
    unsharded_grad_bytes: float = 0.0
    reduce_bytes: float = 0.0
    #: the k-bit preparation of a peft QLoRA base (:func:`kbit_casts`)
    kbit: "KbitCasts | None" = None


def recipe_for(w: Workload, dtype: str) -> str:
    if w.method in ("lora", "qlora", "adapter", "adapter-v2"):
        return "lora"
    if w.precision != "auto":
        recipe = w.precision
    elif dtype == "fp32":
        return "fp32"
    elif w.strategy.is_zero and not w.profile.megatron_mixed:
        return "deepspeed"  # DeepSpeed keeps fp32 master weights and states for bf16/fp16 training
    else:
        recipe = "mixed" if w.task == "pretrain" else "pure"
    if recipe != "mixed":
        return recipe
    if w.strategy.is_fsdp and w.profile.fsdp_policy is not None:
        return "fsdp_mixed"  # the framework's MixedPrecisionPolicy, not autocast
    if w.profile.megatron_mixed:
        return "megatron"
    return recipe


def precision(model: ResolvedModel, w: Workload, dtype: str, t: Trainable, notes: list[Assumption],
              cc: str = "") -> Precision:
    """The precision recipe's bytes; ``cc``: the GPU's compute capability (Transformer Engine's FP8 layout)."""
    spec = model.spec
    adapters = w.method in ("lora", "qlora", "adapter", "adapter-v2")
    recipe = recipe_for(w, dtype)
    if recipe == "fp32":
        dtype = "fp32"
    a = dtype_bytes(dtype)
    master, cast_cache = 0, 0
    grad_bytes = reduce_bytes = 0.0
    adapter_weight_bytes = 0.0  # the adapters' stored bytes when not param_bytes (ZeRO-3 under zero.Init)
    if recipe == "fsdp_mixed":
        # FSDP with the framework's MixedPrecisionPolicy: fp32 sharded parameters are the optimizer's masters,
        # with fp32 sharded gradients and states; each unit is all-gathered in param_dtype (the all-gather input
        # cast per shard: torch _fsdp_param.py all_gather_inputs) and computes there, its unsharded gradients in
        # param_dtype, copied into a reduce_dtype reduce-scatter input (_fsdp_collectives.py foreach_reduce); no
        # autocast cache: the parameters are already 16-bit
        gather, reduce_bytes = w.profile.fsdp_policy
        a, grad_bytes = gather, gather
        weights = int(model.params * 4)
        param_bytes = 4.0
        notes.append(Assumption("a_fsdp_policy", {"framework": w.framework, "param": _dtype_name(gather, dtype),
                                                  "reduce": _dtype_name(reduce_bytes, dtype)}))
    elif recipe == "megatron":
        # Megatron-LM --bf16 (docs/source/api-guide/dist_optimizer.md): bf16 model parameters, fp32 main
        # gradients (accumulate_allreduce_grads_in_fp32), fp32 main parameters and Adam states in the optimizer:
        # 2 + 4 + 12 bytes, the last sharded by the distributed optimizer
        weights = weights_on_rank(model, w, a, notes)
        param_bytes = 4.0
        master = int(t.params * 4)
        if w.te_fp8 != "none":
            weights += te_fp8_weights(spec, w, dtype, a, cc, notes)
    elif recipe == "mixed":
        weights = int(model.params * 4)
        param_bytes = 4.0
        cast_cache = int(cast_params(model, float8=w.float8 != "none") * 2)
        if w.strategy.is_fsdp:
            # fp32 FSDP parameters under torch.autocast: every unsharded linear weight's bf16 cast stays in the
            # cache until autocast exits, so a whole 16-bit copy of the model outlives the resharding
            notes.append(Assumption("a_fsdp_autocast", {"cache": f"{cast_cache / 2**30:.1f} GiB",
                                                            "o_framework": Opt("framework")}))
    elif recipe == "deepspeed":
        # DeepSpeed / Megatron mixed precision (ZeRO paper §3: 2 + 2 + 12 bytes per parameter): 16-bit
        # parameters and gradients, fp32 master weights and fp32 Adam states held by the optimizer
        weights = weights_on_rank(model, w, a, notes, training=True)
        param_bytes = a
        master = int(t.params * 4)
    elif adapters and w.precision == "mixed":
        # LoRA sharded by FSDP under accelerate's mixed_precision, the base loaded in fp32 as peft's
        # examples/sft/utils.py loads it without 4-bit (torch_dtype float32): fp32 flat parameters, every unit
        # all-gathered in the policy's param_dtype (FSDP1 _flat_param.py _use_low_precision_shard casts the shard
        # first; FSDP2 _fsdp_param.py all_gather_inputs) and computed there; the adapters stay fp32 (accelerate
        # upcasts only what requires grad)
        weights = int(model.params * 4)
        param_bytes = 4.0
        notes.append(Assumption("a_fsdp_lora_fp32", {"param": _dtype_name(w.profile.fsdp_policy[0], dtype)}))
    else:
        weights = weights_on_rank(model, w, a, notes, training=True)
        # peft keeps adapters in fp32 (autocast_adapter_dtype); torchtune builds them in the model dtype
        adapter_bytes = w.profile.adapter_bytes
        kbit = kbit_casts(model.spec, w, a)
        if kbit is not None and kbit.adapters_bf16:
            adapter_bytes = a
        param_bytes = (a if adapter_bytes is None else adapter_bytes) if adapters else a
        if w.method == "lora" and w.strategy.is_zero and not w.profile.own_modules and a < 4 \
                and recipe == "lora":
            # DeepSpeed 0.19.8's engine casts every floating parameter to its bf16/fp16 dtype
            # (engine.py _cast_module_mixed_precision, the model not built under zero.Init): peft's fp32 adapters
            # become 16-bit, with 16-bit gradients and bucket, and the ZeRO optimizer keeps their fp32 master
            # partition (measured on two gloo ranks: tests/test_deepspeed_real.py)
            param_bytes = a
            master = int(t.params * 4)
            if w.strategy.stage == 3:
                # ZeRO-3 under the HF Trainer (and accelerate's zero3_init_flag): from_pretrained builds the model
                # inside zero.Init (transformers is_deepspeed_zero3_enabled), so the engine sees a zero-init model
                # and casts nothing (engine.py _configure_distributed_model: is_zero_init_model): the base is
                # partitioned in the config's dtype at construction, peft's fp32 adapters become fp32 partitions
                # (convert_to_zero_parameters keeps their dtype); gradients, bucket and master are as without
                # zero.Init (two gloo ranks: bench/deepspeed_real.py, "ZeRO-3 lora (zero.Init)")
                adapter_weight_bytes = 4.0
                notes.append(Assumption("a_zero3_init_lora", {"dtype": dtype}))
            else:
                notes.append(Assumption("a_zero_lora", {"dtype": dtype}))
    if adapters:
        weights += int(t.adapter_params * (adapter_weight_bytes or param_bytes))
    kbit = kbit_casts(model.spec, w, a) if recipe == "lora" else None
    if kbit is not None:
        weights += kbit.fp32_params * int(4 - a)
    weights -= quantized_head_saving(spec, w, a)
    largest = largest_tensor(spec) if not adapters else 0
    return Precision(
        recipe=recipe, dtype=dtype, a=a, act_bytes=2.0 if recipe == "mixed" else a, param_bytes=param_bytes,
        gather_bytes=4.0 if recipe == "mixed" else a, cast_cache=cast_cache, weights=weights,
        grads=gradient_bytes(t.params, param_bytes),
        states=optimizer_state_bytes(w.optimizer, t.params, 4.0 if recipe in ("deepspeed", "megatron") or master
                                     else param_bytes) + master,
        temp=step_temporary_bytes(w.optimizer, t.params, param_bytes, largest),
        layer_params=largest_layer_params(spec) if not adapters and not w.train_modules else 0, largest=largest,
        unsharded_grad_bytes=grad_bytes, reduce_bytes=reduce_bytes, kbit=kbit)


@dataclass(frozen=True)
class KbitCasts:
    """What preparing a bitsandbytes 4-bit base for peft adapters changes (``--kbit-prep``), read at peft 0.21.2
    (``peft/utils/other.py`` ``prepare_model_for_kbit_training``: every fp16/bf16 parameter that is not
    ``Params4bit`` to fp32) and TRL (huggingface/trl v0.13.0 ``trl/trainer/sft_trainer.py``: that, then
    ``peft_module_casting_to_bf16``: modules named ``norm`` to fp32, ``embed_tokens``/``lm_head`` back to bf16;
    f2cd577 (1.x): no k-bit casts, trainable parameters to bf16).

    An fp32 norm weight times its 16-bit input is fp32 (transformers' ``LlamaRMSNorm``: ``weight *
    hidden_states.to(input_dtype)``), bitsandbytes' ``Linear4bit.forward`` returns ``.to(inp_dtype)`` (fp32 for an
    fp32 input) and the residual adds keep fp32: from the first norm on the residual stream, every checkpointed
    layer input and most of a layer's saved tensors are fp32 (traced on real bitsandbytes 0.50.2 CPU tensors:
    tests/test_qlora_bnb.py). Under the Trainer's autocast the head still computes bf16 logits; an fp32 head weight
    is cast to bf16 for it and that copy is saved for backward."""
    fp32_params: int  # parameters cast to fp32 (beside the 4-bit linears)
    layer_bytes: float  # bytes per element of the decoder layers' saved tensors (0: the compute dtype)
    head_cast: int  # elements of the head weight's 16-bit cast autocast saves (an fp32 head)
    adapters_bf16: bool  # TRL 1.x casts the trainable parameters to bf16


def kbit_casts(spec: ModelSpec, w: Workload, a: float) -> KbitCasts | None:
    """The ``--kbit-prep`` of a QLoRA run with peft's modules (None: not QLoRA with peft, or fp32 compute)."""
    if w.method != "qlora" or w.profile.own_modules or a == 4:
        return None
    prep = w.kbit_prep
    kept = spec_weight_bytes(spec, a, w.quant).kept_params
    head = spec.vocab_size * spec.hidden_size * (1 if spec.tie_embeddings else 2)
    if prep == "peft":
        return KbitCasts(kept, 4.0, spec.vocab_size * spec.hidden_size, False)
    if prep == "trl0":
        return KbitCasts(max(0, kept - head), 4.0, 0, False)
    return KbitCasts(0, 0.0, 0, prep == "trl")


def bnb_saved_inputs(spec: ModelSpec, w: Workload, p: Precision) -> float:
    """Bytes per token and layer bitsandbytes' ``MatMul4Bit`` saves beyond what the layer saves anyway: before
    0.43.2 (bitsandbytes-foundation/bitsandbytes 0.43.1 ``autograd/_functions.py``: ``ctx.tensors = (A, B)``,
    removed by 9e75374 "fix QLoRA mem bug: delete useless buffered activation (#1270)") each 4-bit linear keeps
    its input ``A``, cast to the compute dtype; from 0.43.2 on (``ctx.tensors = (None, B)``, through 0.50.x) only
    the packed weight. Under the k-bit casts the fp32 inputs become one compute-dtype copy per linear (q, k, v,
    gate, up, down); without them q/k/v share one input, gate/up another. o_proj reads SDPA's saved output."""
    h, inter = spec.hidden_size, spec.intermediate_size if spec.moe is None else 0
    if w.method == "qlora" and w.quant == "int8" and not w.profile.own_modules:
        # LLM.int8 (bitsandbytes 0.42.0 through 0.50.2 ``MatMul8bitLt.forward``: ``ctx.tensors = (CAt, subA, A)``
        # whenever an input needs a gradient, ``A`` the input itself, reshaped to 2-D, in its own dtype; CAt is None
        # for a frozen weight, subA the outlier columns, data-dependent and not counted): shared as the layer
        # shares its inputs (q/k/v one, gate/up one), fp32 under the k-bit casts
        layer_in = 4.0 if p.kbit is not None and p.kbit.layer_bytes == 4.0 else p.a
        return layer_in * (2 * h + inter)
    if w.method != "qlora" or w.profile.own_modules or version_tuple(w.bnb_version) >= (0, 43, 2):
        return 0.0
    # Linear4bit.forward casts its input to the compute dtype (``x.to(self.compute_dtype)``: a copy per linear
    # unless the input already has it)
    compute = bnb_dtypes(w, p.dtype)[1]
    layer_in = "fp32" if p.kbit is not None and p.kbit.layer_bytes == 4.0 else p.dtype
    return dtype_bytes(compute) * ((2 * h if layer_in == compute else 5 * h) + inter)


def quantized_head_saving(spec: ModelSpec, w: Workload, a: float) -> int:
    """Bytes a 4-bit output head saves: Lightning's ``BitsandbytesPrecision`` (lightning 2.6.6
    ``fabric/plugins/precision/bitsandbytes.py``: ``module_init_context`` replaces ``torch.nn.Linear`` while LitGPT
    builds its model, and ``_convert_layers`` converts every ``nn.Linear`` not under ``ignore_modules``, which
    LitGPT's ``finetune/*.py`` never pass) quantizes ``lm_head`` like the blocks' linears; transformers keeps it."""
    if w.method != "qlora" or w.profile.bnb_convert != "lightning":
        return 0
    head = head_tensor(spec)
    return int(head.numel * a) - quantized_linear_bytes(head, w.quant) if head is not None else 0


def stable_embedding_grad(spec: ModelSpec, w: Workload, a: float) -> int:
    """LitGPT from 0.5.0 under ``--quantize`` (``finetune/lora.py main``, ae798aba): the embedding becomes a new
    bitsandbytes ``StableEmbedding`` after ``mark_only_lora_as_trainable`` and after the optimizer took
    ``model.parameters()``, so its weight requires a gradient no optimizer steps or zeroes: from the first
    backward on, a gradient of the whole embedding in the training dtype stays (checked on LitGPT's code:
    tests/test_litgpt_qlora.py)."""
    if w.method != "qlora" or w.profile.bnb_convert != "lightning" or version_tuple(w.litgpt_version) < (0, 5, 0):
        return 0
    return int(spec.vocab_size * spec.hidden_size * a)


def head_tensor(spec: ModelSpec):  # -> Tensor | None
    return next((g.tensor for g in groups(spec) if g.tensor.role == "lm_head" and g.tensor.linear), None)


def bnb_dtypes(w: Workload, dtype: str) -> tuple[str, str]:
    """(the dtype bitsandbytes' quant state records — the weight's dtype when it was quantized —, the compute
    dtype). transformers quantizes the weights as loaded (``--dtype``); Lightning's ``_Linear4bit.quantize`` casts
    each weight to fp16 first (``weight.contiguous().to(device=device, dtype=torch.half)``). The compute dtype is
    ``bnb_4bit_compute_dtype`` (``--bnb-compute-dtype``), by default the model's (Lightning: its precision's)."""
    stored = "fp16" if w.profile.bnb_convert == "lightning" else dtype
    return stored, w.bnb_compute_dtype or dtype


def bnb_dequant_bytes(w: Workload, dtype: str, forward: bool = False) -> float:
    """Bytes per element alive while a 4-bit weight is dequantized for its matmul. Backward, every release through
    0.50.2 (``MatMul4Bit.backward``: ``F.dequantize_4bit(B, ctx.state).to(grad_output.dtype)``): the weight first
    in the quant state's dtype, then cast to the gradient's (the compute dtype), both alive during the cast when
    they differ. Forward, the same before 0.50 (0.42.0-0.49.x ``MatMul4Bit.forward``:
    ``F.dequantize_4bit(B, quant_state).to(A.dtype)``); from 0.50 ``gemm_4bit`` dequantizes straight to the
    compute dtype (``backends/cuda/ops.py`` ``_dequant_linear_fallback``; for a few hundred tokens or fewer its
    fused kernel materializes nothing, not modelled)."""
    stored, compute = bnb_dtypes(w, dtype)
    if stored == compute or (forward and version_tuple(w.bnb_version) >= (0, 50, 0)):
        return dtype_bytes(compute)
    return dtype_bytes(stored) + dtype_bytes(compute)


#: the transformers module names of LitGPT's attn.qkv, attn.proj, mlp.fc_1/fc_2 (fc) and mlp.proj
_QKV = ("q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value", "Wqkv", "c_attn")
_ATTN_OUT = ("o_proj", "dense", "out_proj", "c_proj")
_MLP_IN = ("gate_proj", "up_proj", "gate_up_proj", "fc1", "dense_h_to_4h", "c_fc")
_MLP_OUT = ("down_proj", "fc2", "dense_4h_to_h")


def litgpt_bnb_inputs(spec: ModelSpec, w: Workload, a: float) -> tuple[float, float]:
    """bitsandbytes before 0.43.2 under LitGPT's modules (``litgpt/model.py``, ``litgpt/lora.py``): bytes per token
    of one layer's, and of the output head's, 4-bit linear inputs that ``MatMul4Bit`` keeps as ``ctx.tensors = (A,
    B)`` and nothing else saves: the qkv input (norm_1's output), ``proj``'s (the attention output reshaped to
    ``(B, T, n_head · head_size)``, a copy), the MLP's (norm_2's; with a shared attention norm, norm_1's, counted
    once) and the MLP projection's (``silu(fc_1) · fc_2`` or the activation's output); the head's adds nothing
    (tests/test_litgpt_qlora.py). A module with LoRA and no dropout saves its input for the adapter anyway (``lora_dropout`` is the
    identity for p = 0); with dropout the adapter saves the dropped copy instead."""
    if w.method != "qlora" or w.profile.bnb_convert != "lightning" or version_tuple(w.bnb_version) >= (0, 43, 2):
        return 0.0, 0.0
    h = spec.hidden_size
    inter = spec.intermediate_size if spec.moe is None else 0
    targets = set(lora_modules(spec, w.lora_targets))
    kept = w.lora_dropout == 0  # the adapter keeps the same input

    def extra(width: int, *modules: str) -> int:
        return 0 if kept and targets & set(modules) else width

    shared_norm = spec.layout in ("phi", "falcon", "gptj")
    per_layer = (extra(h, *_QKV) + extra(spec.num_heads * spec.head_dim, *_ATTN_OUT)
                 + (0 if shared_norm else extra(h, *_MLP_IN)) + extra(inter, *_MLP_OUT))
    # the head's input (the final norm's output, whose 128-token views each chunk's MatMul4Bit keeps) is already
    # among the saved tensors the layer model counts (``head_inputs``): traced, nothing more
    return a * per_layer, 0.0


def te_fp8_weights(spec: ModelSpec, w: Workload, dtype: str, a: float, cc: str, notes: list[Assumption]) -> int:
    """What Transformer Engine FP8 adds to the weights on this rank (memory/te_fp8.py): each decoder layer's four TE
    linears keep an FP8 copy of their weight (row-wise and column-wise usage) and their scaling state; with
    ``--fp8-param-gather`` that FP8 copy is the parameter and the BF16 weight is gone. Refuses what is not
    modelled (MoE, MLA, non-Llama layouts, another precision, a GPU the recipe does not run on)."""
    from ..memory import te_fp8

    if spec.layout != "llama" or spec.moe is not None or spec.mla is not None or spec.num_decoder_layers:
        raise VramscopeError("conflict", field="te_fp8", reason=Text("r_te_fp8_layout"))
    if dtype != "bf16":
        raise VramscopeError("conflict", field="te_fp8", reason=Text("r_te_fp8_bf16", use=Opt("dtype", "bf16")))
    if cc and not te_fp8.supported(w.te_fp8, cc):
        raise VramscopeError("conflict", field="te_fp8", reason=Text("r_te_fp8_gpu", recipe=w.te_fp8, cc=cc))
    nontn = te_fp8.non_tn(cc)
    shapes = te_fp8.layer_linears(spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size, spec.mlp_gated)
    layers = spec.num_layers
    fp8 = te_fp8.weight_bytes(shapes, w.te_fp8, nontn) * layers
    meta = te_fp8.meta_bytes(w.te_fp8, w.fp8_amax_history_len) * len(shapes) * layers
    bf16 = int(a * sum(o * i for o, i in shapes) * layers) if w.fp8_param_gather else 0
    e = te_fp8.element_bytes(w.te_fp8)
    notes.append(Assumption("a_te_fp8", {
        "recipe": w.te_fp8, "te": te_fp8.TE_VERSION, "megatron": te_fp8.MEGATRON_VERSION, "e": f"{e:.4g}",
        "weights": format_bytes(fp8, "GiB"), "meta": format_bytes(meta, "MiB"),
        "layout": Text("te_fp8_blocks" if w.te_fp8 in ("mxfp8", "blockwise") else
                       "te_fp8_nontn" if nontn else "te_fp8_transpose", cc=cc or "9.0"),
        "proj": Text("te_fp8_proj_copy" if w.te_fp8 == "delayed" else "te_fp8_proj_original"),
        "params": Text("te_fp8_params" if w.fp8_param_gather else "te_fp8_workspace")}))
    return fp8 + meta - bf16


def cast_params(model: ResolvedModel, float8: bool = False) -> int:
    """Parameters autocast casts to 16-bit (the linear weights; embeddings and norms run in fp32). ``float8``: the
    layers' linears are torchao Float8Linears, whose forward casts only the input to autocast's dtype and the fp32
    weight straight to float8 (torchao 0.18.0 float8_linear.py ``Float8Linear.forward``: no ``F.linear``, so no
    autocast cache); the output head, left high precision, is still cast by autocast."""
    if not model.exact_shape:
        return model.params
    return sum(g.numel for g in groups(model.spec) if g.tensor.linear and not (float8 and g.tensor.layer is not None))


def _dtype_name(nbytes: float, dtype: str) -> str:
    return "fp32" if nbytes == 4 else dtype


@dataclass(frozen=True)
class Saved:
    """Step 2: what forward saves on this rank, and the context-parallel exchange."""
    acts: TrainingActivations
    flags: TrainFlags
    seq_local: int
    sp_temp: int
    #: bitsandbytes < 0.43.2 under LitGPT: the 4-bit linears' inputs the previous step's graph still holds (its
    #: ``loss``) while the next forward runs, and through the optimizer step
    kept_inputs: int = 0
    #: tensor-parallel ranks the per-rank spec was cut for (1: none)
    tp: int = 1
    #: the context-parallel exchange inside one attention backward (``sp_temp``: forward's)
    sp_back: int = 0


def compiles(w: Workload, part: str) -> bool:
    """Whether ``--compile`` compiles ``part`` ("model": the decoder blocks, "loss"; ``--compile-components``)."""
    return bool(w.compile) and part in w.compile_components.split(",")


def saved_activations(spec: ModelSpec, w: Workload, p: Precision, flags: TrainFlags, seq_shard: int,
                      notes: list[Assumption], tp: int = 1) -> Saved:
    seq_local = -(-w.seq // w.sp)  # context parallelism: each rank holds seq / sp tokens
    if p.recipe == "mixed":
        # fp32 parameters under torch.autocast: the residual stream is fp32 and each linear reading it saves its
        # own 16-bit cast (TrainFlags.autocast_fp32; traced: 10·h bytes per token and Llama layer more than bf16
        # parameters, the plain-loop FSDP2 row's whole gap)
        flags = replace(flags, autocast_fp32=True)
    flags = megatron_dispatch(spec, w, flags, p.act_bytes)
    if w.te_fp8 != "none":
        flags = replace(flags, te_fp8=w.te_fp8)
    if flags.moe_alltoall is not None:
        rows, indices = flags.moe_alltoall
        cf = w.moe_capacity_factor
        notes.append(Assumption("a_megatron_moe", {
            "rows": f"{rows:.3f}", "indices": f"{indices:.0f}", "dispatcher": w.moe_dispatcher,
            "policy": Text("moe_dropless") if cf is None else Text(
                "moe_pad" if w.moe_pad_to_capacity else "moe_drop", cf=f"{cf:g}")}))
    op_sac = w.grad_checkpointing and w.checkpoint_mode == "op"
    if op_sac and (op_sac_bytes_per_token(spec, seq_local, p.act_bytes, w.attn) is None or w.method != "full"):
        raise VramscopeError("conflict", field="checkpoint_mode", reason=Text("r_op_sac_layout"))
    def acts_at(a: float) -> TrainingActivations:
        return training_activations(spec, w.batch, seq_local, a, w.attn, w.grad_checkpointing and not op_sac,
                                    flags, every=w.checkpoint_every, selective=w.checkpoint_mode == "selective",
                                    ce_chunks=w.ce_chunks, replicated_shard=seq_shard, compiled_loss=compiles(w, "loss"),
                                    op_sac=op_sac, megatron=megatron_recompute(spec, w),
                                    ce_upcast=w.profile.ce_upcast, fused_ce=fused_loss(w), compiled_layers=compiles(w, "model"),
                                    gathered_inputs=w.framework != "megatron",
                                    logits_fp32=w.profile.logits_fp32 and p.act_bytes != 4.0)
    acts = acts_at(p.act_bytes)
    kbit = p.kbit
    if kbit is not None and kbit.layer_bytes:
        # the k-bit casts: fp32 layers, the loss head still on the compute dtype's logits (the Trainer's autocast)
        fp32 = acts_at(kbit.layer_bytes)
        acts = replace(fp32, loss_resident=acts.loss_resident + int(kbit.head_cast * p.a),
                       loss_forward_extra=acts.loss_forward_extra, loss_backward_extra=acts.loss_backward_extra,
                       loss_convert=acts.loss_convert)
    if kbit is not None:
        sharded = w.kbit_prep == "trl" and w.strategy.shards_params and not _given(w, "kbit_prep")
        saves = (Text("a_bnb_saves_input", o_bnb=Opt("bnb_version", "0.50"))
                 if version_tuple(w.bnb_version) < (0, 43, 2) else Text("a_bnb_saves_weight"))
        notes.append(Assumption("a_kbit_trl_sharded" if sharded else f"a_kbit_{w.kbit_prep}", {
            "version": w.bnb_version, "saves": saves, "prep": Opt("kbit_prep", w.kbit_prep),
            "peft": Opt("kbit_prep", "peft")}))
    if w.method == "qlora" and w.profile.bnb_convert == "lightning":
        head, dq = head_tensor(spec), bnb_dequant_bytes(w, p.dtype)
        notes.append(Assumption("a_bnb_lightning", {
            "version": w.bnb_version, "dequant": f"{dq:g}", "head": format_bytes(quantized_head_saving(spec, w, p.a), "GiB"),
            "head_dq": format_bytes(int(head.numel * dq) if head is not None else 0, "GiB")}))
    if w.method == "qlora" and w.bnb_compute_dtype:
        notes.append(Assumption("a_bnb_compute", {"compute": w.bnb_compute_dtype,
                                                  "dequant": f"{bnb_dequant_bytes(w, p.dtype):g}"}))
    extra = int(w.batch * seq_local * bnb_saved_inputs(spec, w, p))
    layers = spec.num_layers + spec.num_decoder_layers
    if extra:
        # ctx attributes, not saved tensors: non-reentrant checkpointing builds each layer's graph in forward and
        # keeps them for every layer; reentrant checkpointing runs forward under no_grad (needs_input_grad False)
        acts = replace(acts, one_layer=acts.one_layer + extra,
                       layers=acts.layers + (0 if w.grad_checkpointing and w.checkpoint_reentrant else extra * layers))
    if flags.moe_alltoall is not None and w.moe_dispatcher == "allgather":
        # Megatron's allgather dispatcher: one global buffer of the group's gathered hidden states, reused by every
        # MoE layer and alive from the first one on (memory/moe_dispatch.py)
        gathered = gather_buffer(w.batch * seq_local, spec.hidden_size, w.ep, tp, p.act_bytes)
        acts = replace(acts, layers=acts.layers + gathered)
    if stable_embedding_grad(spec, w, p.a):
        # StableEmbedding's LayerNorm (in the training dtype under bf16-true's default dtype) saves its input, the
        # embedding's output, and an fp32 mean and rstd per token; the first block's input now needs a gradient, so
        # its first norm saves its input too (LitGPT's RMSNorm: x.float(), 4 bytes; a LayerNorm: the dtype's)
        first = 4.0 if spec.norm == "rmsnorm" else p.a
        norm = int(w.batch * seq_local * (spec.hidden_size * (p.a + first) + 8))
        acts = replace(acts, layers=acts.layers + norm)
        notes.append(Assumption("a_litgpt_stable_embedding", {
            "version": w.litgpt_version, "grad": format_bytes(stable_embedding_grad(spec, w, p.a), "GiB")}))
    kept_inputs = 0
    per_layer, head_in = litgpt_bnb_inputs(spec, w, p.a)
    if per_layer or head_in:
        # a ctx attribute, not a saved tensor: backward leaves it, and it lives as long as the graph, which LitGPT's
        # loop keeps through ``loss`` until the next step's loss replaces it (the next forward runs beside it)
        one, head_bytes = int(w.batch * seq_local * per_layer), int(w.batch * seq_local * head_in)
        kept_inputs = one * layers + head_bytes
        acts = replace(acts, one_layer=acts.one_layer + one, layers=acts.layers + kept_inputs)
        notes.append(Assumption("a_bnb_litgpt_inputs", {"version": w.bnb_version,
                                                        "inputs": format_bytes(kept_inputs, "GiB")}))
    if tp > 1 and acts.loss_resident and w.profile.ce_upcast and w.ce_chunks == 1 and not compiles(w, "loss") \
            and not fused_loss(w):
        acts = loss_parallel(acts, w.batch * seq_local * spec.vocab_size)
    sp_temp, sp_back = context_parallel_transient(spec, w.batch * seq_local, p.act_bytes, w.sp_mode, w.sp) \
        if w.sp > 1 else (0, 0)
    if w.sp > 1:
        notes.append(Assumption("a_sp", {"n": w.sp, "mode": w.sp_mode, "seq": seq_local}))
    if w.sp > 1 and w.sp_mode == "ring":
        merged = ring_merged_output(spec, w.batch * seq_local, p.act_bytes)
        full = 0 if w.grad_checkpointing else spec.num_layers + spec.num_decoder_layers
        acts = replace(acts, layers=acts.layers + merged * full, one_layer=acts.one_layer + merged)
    return Saved(acts, flags, seq_local, sp_temp, kept_inputs=kept_inputs, tp=tp, sp_back=sp_back)


def loss_parallel(acts: TrainingActivations, logits: int) -> TrainingActivations:
    """torch's ``loss_parallel`` (torch 2.13 ``distributed/tensor/parallel/loss.py``) on vocabulary-sharded logits
    (``logits``: this rank's elements), as torchtitan runs the loss under tensor parallelism: ``_log_softmax``
    keeps the fp32 input, ``shifted = x - max`` and ``exp(shifted)`` (or the result) at once, one fp32 tensor
    more than aten's fused log-softmax; its backward (``_nll_loss_and_log_softmax_backward``) builds
    ``grad_input = zeros_like(x)``, ``exp(x)``, their sum and the product with the output gradient: three fp32
    tensors beside the saved one, where aten's needs two."""
    return replace(acts, loss_forward_extra=acts.loss_forward_extra + 4 * logits,
                   loss_backward_extra=acts.loss_backward_extra + 4 * logits)


#: the first Unsloth release whose matmul_lora adds the adapter's product in place (unslothai/unsloth 4f166026,
#: 2025-03-01, "LoRA": ``out.addmm_(XA, B, alpha = s)``; the 2025.2.14 tag still has ``out += (X @ A) @ (s * B)``,
#: the 2025.3.11 tag has addmm_)
UNSLOTH_ADDMM = (2025, 3, 0)
#: the first unsloth-zoo release whose UnslothCheckpointFunction double-buffers the reload (``GPU_BUFFERS_B``,
#: ``DOUBLE_BUFFER_HEADROOM``): absent from the 2026.4.1 wheel, present in 2026.5.1 (and 2026.8.13)
UNSLOTH_DOUBLE_BUFFER = (2026, 5, 0)
#: the first Unsloth release whose Llama-family forward checkpoints through unsloth-zoo's buffered
#: ``UnslothCheckpointFunction`` (unslothai/unsloth 3e5f0611, 2025-03-04, "Bug fixes (#1891)": the 2025.3.1 wheel,
#: ``patch_unsloth_smart_gradient_checkpointing(dtype = dtype)`` in ``FastLanguageModel.from_pretrained``); through
#: 2025.2.15 ``LlamaModel_fast_forward`` calls ``Unsloth_Offloaded_Gradient_Checkpointer.apply`` per layer
UNSLOTH_SMART_GC = (2025, 3, 0)


def fused_loss(w: Workload) -> str:
    """The fused head and loss the run uses: Liger's fused linear cross-entropy, Unsloth's, or none."""
    if "flce" in w.liger:
        return "liger"
    return w.profile.fused_ce if w.method in ("lora", "qlora") else ""


def unsloth_offload(spec: ModelSpec, w: Workload, acts: TrainingActivations, a: float,
                    notes: list[Assumption]) -> tuple[TrainingActivations, int]:
    """Unsloth's offloaded checkpointing (unsloth-zoo 2026.8.13 ``UnslothCheckpointFunction``): every checkpointed
    layer's input hidden state larger than 2 MiB goes to a pinned CPU buffer, except the last layer's; the GPU
    keeps one buffer of that size the recomputation copies it back into (``GPU_BUFFERS``) and, from the second step
    on when more than 512 MiB is free (``DOUBLE_BUFFER_HEADROOM``), a second one (``GPU_BUFFERS_B``: double
    buffering, the reload overlapping compute; from unsloth-zoo 2026.5, :data:`UNSLOTH_DOUBLE_BUFFER`), counted
    here; under that headroom it is freed. Host: those inputs
    and the 200 pinned buffers of 128K elements it allocates first (``initialize_unsloth_gradient_checkpointing``).
    Run on unsloth-zoo's code (tests/test_unsloth_run.py): steps 2 and 3 keep the last input and two buffers,
    one buffer with 256 MiB free.

    Before Unsloth 2025.3 (:data:`UNSLOTH_SMART_GC`; read in the unsloth-2024.12.4 wheel's ``models/llama.py`` and
    unsloth_zoo-2024.12.7's ``gradient_checkpointing.py``) every layer goes through
    ``Unsloth_Offloaded_Gradient_Checkpointer``: forward saves ``hidden_states.to("cpu", non_blocking = True)``
    (a new host tensor, pinned by torch's ``_to_copy`` for a non-blocking device-to-host copy), the last layer's
    and small ones too, and keeps nothing on the GPU; backward copies it back with ``.to("cuda:0")`` into a new
    tensor that lives only while its layer is recomputed (the input its first norm saves: counted in
    ``one_layer``). No GPU buffer, no pre-allocated host buffers. Run on unsloth-zoo 2024.12.7's code
    (tests/test_unsloth_run.py): no input kept on the device at the end of forward, one host copy per layer, one
    reloaded input alive at a time in backward."""
    n_layers = spec.num_layers + spec.num_decoder_layers
    one = int(w.batch * w.seq * spec.hidden_size * a)
    if version_tuple(w.unsloth_version) < UNSLOTH_SMART_GC:
        host = n_layers * one
        notes.append(Assumption("a_unsloth_offload_2024", {"host": format_bytes(host, "GiB"), "layers": n_layers,
                                                           "version": w.unsloth_version}))
        return replace(acts, layers=acts.layers - host), host
    if one <= 2 * 2**20 or n_layers < 2:
        return acts, 0
    host = (n_layers - 1) * one
    double = version_tuple(w.unsloth_version) >= UNSLOTH_DOUBLE_BUFFER
    notes.append(Assumption("a_unsloth_offload" if double else "a_unsloth_offload_single",
                            {"host": format_bytes(host, "GiB"), "layers": n_layers - 1}))
    # the second buffer is alive through backward too, beside the recomputed layer (whose first norm saves the
    # first buffer, its reloaded input: counted in one_layer)
    return (replace(acts, layers=acts.layers - host + (2 if double else 1) * one,
                    one_layer=acts.one_layer + (one if double else 0)), host + int(200 * 128 * 1024 * a))


def megatron_recompute(spec: ModelSpec, w: Workload) -> tuple[int, int, int] | None:
    """Megatron-LM's --recompute-granularity full per pipeline rank (megatron/core/transformer/transformer_block.py
    ``_checkpointed_forward``), over all ranks: (inputs kept, layers covered, layers recomputed together). None:
    the default (uniform, one layer), which is plain per-layer checkpointing."""
    if not w.grad_checkpointing or w.checkpoint_mode != "full" or (
            w.recompute_method == "uniform" and w.recompute_num_layers == 1):
        return None
    n = w.recompute_num_layers
    per_rank = [spec.num_layers // w.pp + (1 if s < spec.num_layers % w.pp else 0) for s in range(w.pp)]
    if w.recompute_method == "uniform":
        return sum(-(-layers // n) for layers in per_rank), spec.num_layers, min(n, max(per_rank))
    return sum(min(n, layers) for layers in per_rank), sum(min(n, layers) for layers in per_rank), 1


@dataclass(frozen=True)
class Layout:
    """Step 3 (and 4): per-rank bytes after sharding (and offload), the gather buffers, the shard group."""
    weights: int
    grads: int
    states: int
    temp: int
    buf: FsdpBuffers
    n: int
    #: weight bytes that stay on the GPU under parameter offload (bitsandbytes' quant state: no parameter)
    resident: int = 0
    #: gradient bytes that exist only inside backward (DeepSpeed ZeRO-1/2's reduce bucket: ``setup_buckets`` at
    #: the first gradient hook, ``_release_ipg_buffers`` when the reduction ends)
    backward_only: int = 0


def shard_group(w: Workload) -> int:
    """Data-parallel ranks times context-parallel ranks (inside one node for hybrid sharding)."""
    return max(1, w.dp * w.sp // (w.nodes if w.fsdp_sharding == "hybrid" else 1))


def _expert_share(spec: ModelSpec, w: Workload, notes: list[Assumption]) -> float:
    if w.ep <= 1:
        return 0.0
    if spec.moe is None or spec.moe.num_experts % w.ep:
        raise VramscopeError("conflict", field="ep", reason=Text("r_ep_needs_moe", n=w.ep) if spec.moe is None else
                             Text("r_ep_divide", experts=spec.moe.num_experts, n=w.ep))
    share = expert_fraction(spec)
    notes.append(Assumption("a_ep", {"n": w.ep, "experts": spec.moe.num_experts // w.ep}))
    return share


def layout(spec: ModelSpec, w: Workload, t: Trainable, p: Precision, notes: list[Assumption]) -> Layout:
    n = shard_group(w)
    share = _expert_share(spec, w, notes)
    s = w.strategy

    def split(x: int, shard: int) -> int:
        return split_bytes(x, share, shard, w.ep)

    buf = NO_BUFFERS
    backward_only = 0
    # bitsandbytes' 4-bit quant state (absmax, nested absmax, code) is no parameter: whole on every rank
    resident = bnb_quant_state_bytes(spec, w.quant) if (
        w.method == "qlora" and not w.profile.own_modules and (s.is_fsdp or (s.is_zero and s.shards_params))) else 0
    if resident:
        notes.append(Assumption("a_bnb_quant_state", {"state": format_bytes(resident, "GiB")}))
    if s.is_fsdp:
        weights, grads, states, temp = (split(x, n) for x in (p.weights, p.grads, p.states, p.temp))
        weights += resident - resident // n
        layer_bytes = 0.0
        if resident:  # bitsandbytes: only the packed 4-bit data is a (flat) parameter, gathered as stored
            layer = largest_layer_params(spec)
            linear = sum(g.tensor.numel for g in groups(spec) if g.tensor.linear and g.tensor.layer == 0)
            layer_bytes = (linear * 0.5 + (layer - linear) * p.a) / layer if layer else 0.0
        elif w.quant != "none":  # quantized linears are gathered as stored; embeddings and head stay 16-bit
            qb = spec_weight_bytes(spec, p.a, w.quant)
            if qb.quantized_params:
                layer_bytes = (qb.total - qb.kept_params * p.a) / qb.quantized_params
        if w.fsdp_float8_all_gather:
            # torchao WeightWithDynamicFloat8CastTensor: the layers' linear weights are cast to float8 per shard
            # and all-gathered in 1 byte (fsdp_utils.py fsdp_pre_all_gather); their norms stay in param_dtype
            layer = largest_layer_params(spec)
            linear = sum(g.tensor.numel for g in groups(spec) if g.tensor.linear and g.tensor.layer == 0)
            layer_bytes = (linear * 1.0 + (layer - linear) * p.gather_bytes) / layer if layer else 0.0
        trains_layers = w.method not in ("lora", "qlora") and not w.train_modules
        buf = fsdp_buffers(spec, w.fsdp_version, p.gather_bytes, p.unsharded_grad_bytes or p.param_bytes,
                           trains_layers, w.method == "full", w.grad_checkpointing and w.method != "full", layer_bytes,
                           reduce_bytes=p.reduce_bytes, backward_prefetch=w.fsdp_backward_prefetch == "pre")
        notes.append(Assumption("a_fsdp_v", {"n": n, "v": w.fsdp_version,
                                             "hybrid": f" × {w.nodes} replicas" if w.fsdp_sharding == "hybrid" else ""}))
        if w.method in ("lora", "qlora") and w.fsdp_version == 1 and not w.profile.own_modules:
            notes.append(Assumption("a_fsdp1_adapters"))
    elif s.is_zero and s.shards_params:
        bucket, prefetch, persistence = zero_sizes(spec, w.zero_auto, w.reduce_bucket, w.zero_prefetch,
                                                   w.zero_persistence)
        weights, grads, states, temp = (split(x, n) for x in (p.weights, p.grads, p.states, p.temp))
        # parameters at or under the persistence threshold stay whole on every rank beside their partition, on the
        # GPU even under offload_param (what parameter offload leaves there: resident)
        persistent = int(persistent_params(spec, persistence) * p.a)
        weights += persistent + resident - resident // n
        resident += persistent
        grads += zero_bucket(bucket, p.param_bytes)
        buf = zero3_buffers(spec, p.a, prefetch, w.zero_max_live, bucket, t.params, persistence)
        _zero_auto_note(spec, w, notes)
        notes.append(Assumption("a_zero3", {"n": n, "prefetch": f"{prefetch:.2g}",
                                            "live": f"{w.zero_max_live:.2g}", "bucket": f"{bucket:.2g}"}))
    elif s.is_zero:
        # ZeRO stage 1 shards optimizer states (and the step), stage 2 also gradients, which then pass through
        # one reduce bucket (DeepSpeed's reduce_bucket_size, 5e8 elements by default), allocated in backward
        weights, states, temp = split(p.weights, 1), split(p.states, n), split(p.temp, n)
        grads = split(p.grads, n if s.shards_grads else 1)
        if p.recipe == "megatron":
            # Megatron's distributed optimizer: the fp32 main-gradient buffer stays whole (its buckets are
            # views of it), the fp32 main parameters and Adam states are sharded
            notes.append(Assumption("a_megatron_dist_opt", {"n": n}))
        else:
            bucket = zero_sizes(spec, w.zero_auto, w.reduce_bucket, 0, 0)[0]
            backward_only = zero_bucket(bucket, p.param_bytes)
            grads += backward_only
            _zero_auto_note(spec, w, notes)
            notes.append(Assumption("a_zero", {"stage": str(s.stage), "n": n, "bucket": f"{bucket:.2g}"}))
    else:
        weights, grads, states, temp = (split(x, 1) for x in (p.weights, p.grads, p.states, p.temp))
        if s.is_ddp and p.recipe != "megatron":  # Megatron's DDP reduces views of its gradient buffer
            # DDP's reducer keeps flat communication buckets beside .grad (gradient_as_bucket_view=False)
            grads *= 2
            notes.append(Assumption("a_ddp", {"n": n}))
    if p.recipe == "deepspeed" and s.is_zero:
        temp = deepspeed_step_temporary(t.params, p.a, n, s.shards_params)
    return Layout(weights, grads, states, temp, buf, n, resident, backward_only)


@dataclass(frozen=True)
class Offloaded:
    """Step 4: the GPU layout left after offload, and what went to host memory (or NVMe)."""
    layout: Layout
    host: int
    nvme: int | None


def offload(spec: ModelSpec, w: Workload, t: Trainable, p: Precision, lay: Layout,
            notes: list[Assumption]) -> Offloaded:
    # ZeRO-Offload (arXiv 2101.06840) / FSDP CPUOffload: fp32 master weights, Adam states, fp32 gradients
    # and the optimizer step live in pinned host memory; the GPU keeps gradient buckets (two layers' worth)
    adapters = w.method in ("lora", "qlora", "adapter", "adapter-v2")
    n, buf, weights = lay.n, lay.buf, lay.weights
    layer_grads = int(p.layer_params * p.param_bytes) if not adapters else lay.grads
    host = int(t.params * (4 + 4 + 8)) // (n if w.strategy.shards_optimizer else 1)
    grads = min(lay.grads, 2 * layer_grads)
    if w.strategy.is_zero and p.recipe != "megatron":
        # DeepSpeed puts the gradient partition on the offload device (stage3.py: grad_partitions_flat_buffer on
        # self.device, cpu; stage_1_and_2.py: the fp32 partition's .grad pinned on the host); the GPU keeps the
        # reduce bucket, allocated whole
        grads = zero_bucket(zero_sizes(spec, w.zero_auto, w.reduce_bucket, 0, 0)[0], p.param_bytes)
    params_off = w.offload == "optimizer+params"
    if params_off:
        # FSDP's CPUOffload and ZeRO's offload_param move parameters only: the quant state stays
        host += weights - lay.resident
        weights = lay.resident
        if buf is NO_BUFFERS:
            buf = fsdp_buffers(spec, w.fsdp_version, p.a, p.param_bytes, not adapters, w.method == "full")
    backward_only = lay.backward_only
    if params_off and w.strategy.is_fsdp:
        # the optimizer steps on the host's gradients: on the GPU they exist inside backward only
        backward_only = grads
    if params_off and host_sharded_grads(w):
        # torch 2.13 FSDP2 CPUOffloadPolicy (_fsdp_collectives.py foreach_reduce): each reduce-scattered gradient is
        # copied to the host at once (new_sharded_grad.to("cpu")) and the reduce-scatter output, allocated in the
        # reduce-scatter stream, loses its last reference when foreach_reduce returns: no sharded gradient stays
        # on the GPU. The output exists (1/n of a unit) only after the unit's unsharded gradients were copied into
        # the reduce-scatter input and cleared, a moment below the layer's own (its gradients beside the previous
        # reduce-scatter input: fsdp_buffers); the gradient buckets are those buffers
        grads = backward_only = 0
        notes.append(Assumption("a_fsdp2_offload", {}))
    if params_off and w.strategy.is_fsdp and w.fsdp_version == 1:
        # torch 2.13 FSDP1 CPUOffload(offload_params=True): each unshard first copies the pinned host shard to the
        # GPU (_flat_param.py pre_unshard: flat_param_to(device), or the _mp_shard under a MixedPrecision policy),
        # freed once the all-gather has filled the unsharded parameter (two unshards in flight: the rate limiter);
        # each reduce-scattered gradient is kept on the GPU as _saved_grad_shard beside its pinned host copy
        # (_runtime_utils.py _accumulate_sharded_grad, _offload_grad) until the post-backward callback hands the
        # host copy to the optimizer (_flat_param.py prepare_gradient_for_optim): every trainable unit's sharded
        # gradient is on the GPU at the end of backward, none at the step
        layer = max(0, buf.forward_layer - buf.forward_loss) // 2
        staged = 2 * (-(-layer // n))
        buf = replace(buf, forward_layer=buf.forward_layer + staged,
                      backward_layer=(buf.backward_layer[0] + staged // 2, buf.backward_layer[1]))
        grads = lay.grads
        backward_only = lay.grads
        notes.append(Assumption("a_fsdp1_offload", {"staged": format_bytes(staged, "GiB"),
                                                     "grads": format_bytes(grads, "GiB")}))
    nvme = None
    if w.offload_device == "nvme":
        # ZeRO-Infinity: states (and parameters) on NVMe; the host keeps pinned swap buffers only
        nvme = host
        host = nvme_pinned_bytes(int(t.params // n), int(t.params // n), params_off, p.a)
    notes.append(Assumption("a_offload", {"what": w.offload, "host": f"{host / 2**30:.1f} GiB"}))
    return Offloaded(Layout(weights, grads, 0, 0, buf, n, lay.resident, backward_only), host, nvme)


def host_sharded_grads(w: Workload) -> bool:
    """FSDP2 with ``CPUOffloadPolicy`` (parameter offload): every sharded gradient lives on the host, none on the
    GPU (torch 2.13 ``_fsdp_collectives.py foreach_reduce``: ``new_sharded_grad.to(torch.device("cpu"))`` before it
    becomes ``sharded_param.grad``; proven on torch's own objects in tests/test_fsdp2_offload.py)."""
    return w.offload == "optimizer+params" and w.strategy.is_fsdp and w.fsdp_version == 2


def offload_activations(acts: TrainingActivations, notes: list[Assumption]) -> tuple[TrainingActivations, int]:
    # torchtune / TRL OffloadActivations: every saved tensor of at least 1 KiB that is not a parameter goes
    # to pinned host memory during forward (the output head excepted) and comes back, one autograd node at a
    # time, in backward; the loss head runs outside the context and keeps its tensors on the GPU, and the
    # last few offloaded tensors (the final norm's) stay stashed until backward begins
    host_acts = acts.layers - acts.head_inputs
    notes.append(Assumption("a_act_offload", {"host": f"{host_acts / 2**30:.1f} GiB"}))
    return replace(acts, layers=acts.head_inputs), host_acts


def kept_gradients(w: Workload, t: Trainable, p: Precision, grads: int, backward_only: int = 0,
                   backward: bool = False) -> int:
    """Gradients alive through forward (or, ``backward``, from backward's start): kept across micro-batches, or
    ZeRO's partition/bucket."""
    kept = grads if w.grad_accum > 1 else 0
    s = w.strategy
    if s.is_zero and s.shards_params:
        kept = grads  # the gradient partition and the bucket are allocated once and stay (stage3.py 780-801)
    elif s.is_zero and p.recipe != "megatron":
        # ZeRO-1/2 (measured on two gloo ranks: tests/test_deepspeed_real.py): nothing in forward but what
        # accumulation keeps; the reduce bucket comes at backward's first gradient hook (setup_buckets), and ZeRO-2's
        # gradient partition (grads_in_partition) with the first reduction, both while the activations are alive
        kept = grads - backward_only if w.grad_accum > 1 else 0
        if backward:
            kept = grads if s.shards_grads else kept + backward_only
    elif s.is_zero and p.recipe == "megatron":
        kept = grads  # the main-gradient buffer is allocated once
    return kept


def _zero_auto_note(spec: ModelSpec, w: Workload, notes: list[Assumption]) -> None:
    if not w.zero_auto:
        return
    bucket, prefetch, persistence = zero_sizes(spec, w.zero_auto, w.reduce_bucket, w.zero_prefetch,
                                               w.zero_persistence)
    shown = {"reduce_bucket": f"reduce_bucket_size = {bucket:,}", "zero_prefetch":
             f"stage3_prefetch_bucket_size = {prefetch:,}", "zero_persistence":
             f"stage3_param_persistence_threshold = {persistence:,}"}
    notes.append(Assumption("a_zero_auto", {"h": spec.hidden_size,
                                            "sizes": ", ".join(shown[k] for k in w.zero_auto)}))


@dataclass(frozen=True)
class Transients:
    """Short-lived bytes inside a layer: peft's merged expert weights, a 4-bit base's dequantized linear, DoRA."""
    in_flight: int
    merged_last: int
    dequant: int
    dora_forward: int
    dora_recompute: int
    #: a 4-bit output head (Lightning's) dequantized whole for each chunk's matmul, forward and backward
    head_dequant: int = 0
    #: the logits alive when the last chunk's head dequantizes: the chunks before it, and (a loop that keeps them,
    #: LitGPT's) the previous step's, replaced only when forward returns
    head_beside: int = 0
    #: the previous step's logits while the next forward runs (a loop that keeps them: LitGPT's ``fit``)
    prev_logits: int = 0
    #: the same in forward (bitsandbytes 0.50 dequantizes there straight to the compute dtype)
    forward_dequant: int = 0
    head_forward_dequant: int = 0
    #: beside one Float8Linear's matmuls (:func:`float8_transient`), while its layer computes
    float8: int = 0
    #: MXFP8 on the output head (:func:`mxfp8_head`): its casts in forward and in backward (beside the logits' grad)
    head_mx_forward: int = 0
    head_mx_backward: int = 0


#: bytes per element while torchao casts a high-precision tensor to float8 in eager mode (torchao 0.18.0
#: float8/float8_training_tensor.py ``_ToFloat8ConstrFunc.forward``: ``tensor.to(torch.float32) * scale`` (fp32),
#: float8_utils.py ``to_fp8_saturated``: ``x.clamp(...)`` (fp32, the scaled tensor still referenced), ``.to(float8)``
FLOAT8_CAST = 4 + 4 + 1


def float8_transient(spec: ModelSpec, w: Workload, tokens: int) -> int:
    """Bytes alive beside one Float8Linear's matmuls (torchao 0.18.0, torchao/float8/float8_linear.py
    ``matmul_with_hp_or_float8_args``; recipes from config.py ``Float8LinearConfig.from_recipe_name``). Forward
    saves only the high-precision input and weight, as a bf16 linear does, and casts the input, then the weight,
    to float8 for ``torch._scaled_mm``; each cast holds :data:`FLOAT8_CAST` bytes per element at its peak (the
    already cast operand, 1 byte per element plus its fp32 scales, beside it: one per row under rowwise scaling,
    one per tensor under tensorwise). Backward casts the output gradient and the weight for the input's gradient,
    then the output gradient and the input again for the weight's (``rowwise_with_gw_hp``: the weight's gradient
    in high precision, no casts). With FSDP float8 all-gather the weight arrives already cast (fsdp_utils.py
    ``WeightWithDynamicFloat8CastTensor``). The largest linear of a layer counts; the output head stays high
    precision (torchtitan's converter filters ``output``)."""
    if w.float8 == "none":
        return 0
    if w.float8.startswith("mxfp8"):
        return mxfp8_transient(spec, w, tokens)
    rowwise = w.float8 != "tensorwise"
    worst = 0
    for g in groups(spec):
        t = g.tensor
        if not t.linear or t.layer is None or len(t.shape) < 2:
            continue
        out_f, in_f = t.shape[-2], t.shape[-1]
        x = tokens * in_f + (4 * tokens if rowwise else 0)  # cast input, bytes
        go = tokens * out_f + (4 * tokens if rowwise else 0)
        wt = out_f * in_f + (4 * out_f if rowwise else 0)
        cast_w = 0 if w.fsdp_float8_all_gather else FLOAT8_CAST * out_f * in_f
        forward = max(FLOAT8_CAST * tokens * in_f, x + cast_w)
        grad_input = max(FLOAT8_CAST * tokens * out_f, go + cast_w)
        if w.float8 == "rowwise_with_gw_hp":
            grad_weight = 0
        else:
            grad_weight = max(FLOAT8_CAST * tokens * out_f, go + FLOAT8_CAST * tokens * in_f)
        worst = max(worst, forward, grad_input, grad_weight, go + wt if not w.fsdp_float8_all_gather else go)
    return worst


#: bytes per element of an MXFP8 operand: the float8 data and one e8m0 scale per 32-element block (torchao 0.18
#: mx_formats MXTensor, block_size 32)
MXFP8_BYTES = 1 + 1 / 32


def mxfp8_transient(spec: ModelSpec, w: Workload, tokens: int) -> int:
    """Bytes alive beside one MXFP8Linear's matmul (torchao 0.18 prototype/moe_training/mxfp8_linear.py ``mx_mm``,
    as torchtitan 0.3.0's ``MXFP8LinearConverter`` puts it on every linear, the output head included). Forward saves
    the high-precision input and weight (as a bf16 linear does: traced on the CPU, tests/test_mxfp8.py) and casts
    both along dim 0; backward casts the output gradient (dim 0) and the weight (dim 1) for the input's gradient,
    then the output gradient and the input along dim 1 for the weight's (``wgrad_with_hp``: in high precision, no
    casts). Each operand is :data:`MXFP8_BYTES` per element as the CUDA/Triton cast kernels write it; what the cast
    kernels hold inside is not modelled. The largest layer linear counts (the head: :func:`mxfp8_head`)."""
    worst = 0
    for g in groups(spec):
        t = g.tensor
        if t.linear and len(t.shape) >= 2 and t.layer is not None:
            worst = max(worst, *_mx_casts(w, tokens, t.shape[-2], t.shape[-1]))
    return worst


def _mx_casts(w: Workload, tokens: int, out_f: int, in_f: int) -> tuple[int, int]:
    """(forward's casts, backward's largest pair of casts) of one MXFP8Linear."""
    x, go, wt = (MXFP8_BYTES * n for n in (tokens * in_f, tokens * out_f, out_f * in_f))
    grad_weight = 0.0 if w.float8 == "mxfp8_wgrad_with_hp" else go + x
    return int(x + wt), int(max(go + wt, grad_weight))


def mxfp8_head(spec: ModelSpec, w: Workload, tokens: int) -> tuple[int, int]:
    """The output head's MXFP8 casts (torchtitan's converter takes every linear): forward, backward."""
    head = head_tensor(spec) if w.float8.startswith("mxfp8") else None
    return _mx_casts(w, tokens, head.shape[-2], head.shape[-1]) if head is not None else (0, 0)


def transients(spec: ModelSpec, w: Workload, p: Precision, flags: TrainFlags, buf: FsdpBuffers) -> Transients:
    merged = merged_expert_bytes(spec, p.act_bytes, flags)
    # 4-bit bases (QLoRA) dequantize each layer's weight to the compute dtype for its matmul, forward and
    # backward (bitsandbytes matmul_4bit, torchao linear_nf4): one linear's weight alive at a time. torchao's
    # NF4Tensor.get_original_weight (torchtune) builds int64 indices on the way: 14.05 bytes per element in eager
    # mode, traced on real tensors; compiled layers fuse it to the bf16 weight only
    eager = w.profile.eager_dequant_bytes
    per_element = eager if eager is not None and not compiles(w, "model") else (
        p.a if w.profile.own_modules and w.profile.bnb_convert != "lightning" else bnb_dequant_bytes(w, p.dtype))
    dequant = int(largest_layer_linear(spec) * per_element) \
        if w.method == "qlora" else 0
    bnb = w.method == "qlora" and eager is None and not (w.profile.own_modules and w.profile.bnb_convert != "lightning")
    forward_element = bnb_dequant_bytes(w, p.dtype, forward=True) if bnb else per_element
    forward_dequant = int(largest_layer_linear(spec) * forward_element) if w.method == "qlora" else dequant
    if w.method == "qlora" and w.quant == "int8":
        # MatMul8bitLt: forward quantizes the input (A.to(fp16), then int8 CA and fp32 row scales) and multiplies
        # in int8, no weight materialized; backward dequantizes the weight in the input's dtype
        # (``state.CB.to(ctx.dtype_A, copy=True).mul_(SCB / 127)``)
        kbit = p.kbit is not None and p.kbit.layer_bytes == 4.0
        dequant = int(largest_layer_linear(spec) * (4.0 if kbit else p.a))
        widest = max(spec.hidden_size, spec.intermediate_size)
        forward_dequant = int(w.batch * -(-w.seq // w.sp) * (widest * 3 + 4))
    head = head_tensor(spec) if quantized_head_saving(spec, w, p.a) else None
    logits = int(w.batch * -(-w.seq // w.sp) * spec.vocab_size * p.act_bytes)
    prev = kept_logits(spec, w, p, -(-w.seq // w.sp)) if w.profile.logits_outlive_step else 0
    head_beside = logits * (w.ce_chunks - 1) // w.ce_chunks + prev
    dora_temp = dora_forward_transient(spec, flags.lora, not w.grad_checkpointing) if flags.dora else 0
    head_mx = mxfp8_head(spec, w, w.batch * -(-w.seq // w.sp))
    if flags.dora and spec.moe is not None and "experts" in flags.lora:
        raise VramscopeError("conflict", field="dora", reason=Text("r_dora_moe", targets=Opt("lora_targets")))
    return Transients(
        # under checkpointing a layer's forward still builds its merged expert weights, then drops them
        in_flight=merged if w.grad_checkpointing else 0,
        # under FSDP the last layer's merged expert weights appear after its copy-out (below)
        merged_last=merged if buf is not NO_BUFFERS and not w.grad_checkpointing else 0,
        dequant=dequant, dora_forward=dora_temp, float8=float8_transient(spec, w, w.batch * -(-w.seq // w.sp)),
        head_mx_forward=head_mx[0], head_mx_backward=head_mx[1],
        # a recomputed DoRA layer rebuilds its weights with autograd recording
        dora_recompute=dora_forward_transient(spec, flags.lora) if flags.dora and w.grad_checkpointing else 0,
        head_dequant=int(head.numel * per_element) if head is not None else 0,
        head_beside=head_beside if head is not None else 0, prev_logits=prev, forward_dequant=forward_dequant,
        head_forward_dequant=int(head.numel * forward_element) if head is not None else 0)


def logit_bytes(w: Workload, p: Precision) -> float:
    """Bytes per element of the logits the training loop holds: fp32 where the loop receives the model's output
    in fp32 (``Framework.logits_fp32``: LitGPT under Lightning Fabric), else the compute dtype."""
    return 4.0 if w.profile.logits_fp32 else p.act_bytes


def kept_logits(spec: ModelSpec, w: Workload, p: Precision, seq_local: int) -> int:
    """The logits a loop that keeps them (``Framework.keeps_logits``) holds, as it holds them."""
    return int(w.batch * seq_local * spec.vocab_size * logit_bytes(w, p))


def _at(moment: tuple[int, int], phase: dict) -> dict:
    """``phase`` with the unsharded parameters (weights) and gradient buffers (temporaries) of a moment."""
    return {**phase, "weights": phase["weights"] + moment[0], "temporaries": phase.get("temporaries", 0) + moment[1]}


def _largest(candidates: list[dict]) -> dict:
    return max(candidates, key=lambda c: sum(c.values()))


def forward_moment(sv: Saved, lay: Layout, tr: Transients, kept: int, cast_cache: int) -> dict:
    # forward peaks while the loss is computed, or (sharded) while a layer's parameters are copied out (peft's
    # merged expert weights of that last layer not built yet), or (DoRA) while the last layer rebuilds its
    # adapted weights, nearly everything saved being alive
    acts, buf, sp_temp = sv.acts, lay.buf, sv.sp_temp
    base = {"weights": lay.weights, "optimizer_states": lay.states, "gradients": kept}
    if sv.kept_inputs:  # the previous step's 4-bit inputs (bitsandbytes < 0.43.2 under LitGPT's loop)
        acts = replace(acts, layers=acts.layers + sv.kept_inputs)
    candidates = [
        _at((buf.forward_loss, 0), {**base, "loss_head": acts.loss_forward_extra,
                                    "activations": acts.layers + cast_cache + acts.loss_resident + tr.in_flight}),
        _at((buf.forward_layer, 0), {**base, "temporaries": sp_temp + tr.forward_dequant,
                                     "activations": acts.layers + cast_cache + tr.in_flight - tr.merged_last}),
    ]
    if tr.float8:  # a layer computing: its parameters and the retained gather buffer (or the prefetched layer)
        candidates.append(_at((buf.forward_held, 0), {**base, "temporaries": sp_temp + tr.float8,
                                                      "activations": acts.layers + cast_cache}))
    if tr.head_mx_forward:  # the MXFP8 head's forward casts, the layers' saved tensors complete
        candidates.append(_at((buf.forward_loss, 0), {**base, "temporaries": tr.head_mx_forward,
                                                      "activations": acts.layers + cast_cache}))
    if acts.loss_convert:
        # the model has returned: its 16-bit logits and their fp32 copy (Fabric's convert_output) beside what
        # the layers saved, the previous step's logits not yet replaced
        candidates.append(_at((buf.forward_loss, 0), {**base, "loss_head": acts.loss_convert + tr.prev_logits,
                                                      "activations": acts.layers + cast_cache}))
    if tr.dora_forward:
        candidates.append(_at((buf.forward_layer, 0), {**base, "activations": acts.layers + cast_cache
                                                       + tr.dora_forward}))
    if tr.head_forward_dequant:  # the last head chunk's matmul: the 4-bit head dequantized beside the logits
        candidates.append(_at((buf.forward_loss, 0), {**base, "temporaries": tr.head_forward_dequant,
                                                      "loss_head": tr.head_beside,
                                                      "activations": acts.layers + cast_cache}))
    if acts.layer_forward_extra:  # eager attention's scores inside the last layer's forward
        candidates.append(_at((buf.forward_layer, 0), {**base, "activations": acts.layers + cast_cache,
                                                       "temporaries": sp_temp + acts.layer_forward_extra}))
    if tr.merged_last:  # building them: only the layer and its retained gather buffer are unsharded
        candidates.append(_at((buf.forward_held, 0), {**base, "activations": acts.layers + cast_cache,
                                                      "temporaries": sp_temp}))
    return _largest(candidates)


def _head_grads(spec: ModelSpec, w: Workload, p: Precision) -> tuple[int, int]:
    """The trainable embedding's gradient, and (tied) the head's and the embedding's both alive when summed."""
    embed_grad = int(spec.vocab_size * spec.hidden_size * p.param_bytes) if w.method == "full" else 0
    return embed_grad, 2 * embed_grad if spec.tie_embeddings and embed_grad else 0


def _backward_candidates(spec: ModelSpec, w: Workload, p: Precision, sv: Saved, lay: Layout, tr: Transients,
                         kept: int) -> tuple[list[dict], dict | None]:
    """Backward's moments: its start (cross-entropy backward on top of everything forward saved), its end (all
    gradients), the sharded layers' gathers and reduces, a chunked head, the last recomputed layer."""
    # the context-parallel exchange runs inside attention's backward, not the loss's (traced: trace/context.py)
    acts, buf, n, grads, sp_temp = sv.acts, lay.buf, lay.n, lay.grads, sv.sp_back
    base = {"weights": lay.weights, "optimizer_states": lay.states}
    embed_grad, tied_extra = _head_grads(spec, w, p)
    logits = kept_logits(spec, w, p, sv.seq_local)
    # fp32 FSDP parameters under torch.autocast (torch 2.13 aten/src/ATen/autocast_mode.cpp cached_cast): each
    # linear's 16-bit weight cast, of the unsharded parameter, is what its matmul saved for backward, so without
    # checkpointing every cast outlives autocast's exit (which only empties the cache) until its own matmul's
    # backward; the output head's is released once its input gradient is computed. The head's weight gradient
    # comes out of its 16-bit matmul and the cast's backward (``_to_copy``) makes the fp32 one: both alive.
    # Traced (fake FSDP2 ranks, bench/pretrain_matrix.py): the moments below are the trace's
    autocast = p.recipe == "mixed" and w.method == "full" and w.strategy.is_fsdp and w.pp == 1
    casts = p.cast_cache if autocast and not (w.grad_checkpointing or w.activation_offload) else 0
    head_cast = int(spec.vocab_size * spec.hidden_size * p.act_bytes) if autocast and not spec.tie_embeddings else 0
    candidates = [
        _at((buf.backward_loss, 0), {**base, "gradients": kept, "activations": acts.saved + casts,
                                     "temporaries": max(acts.loss_backward_extra, acts.layer_backward_extra),
                                     # a plain PyTorch loop still holds out.logits (compute dtype) as backward starts
                                     "loss_head": logits if w.profile.keeps_logits else 0}),
        # backward's end: every gradient; a loop whose logits outlive the step (LitGPT's) still holds them
        _at(buf.backward_end, {**base, "gradients": grads - buf.end_pending // n, "temporaries": tied_extra,
                               **({"loss_head": logits} if w.profile.logits_outlive_step else {})}),
    ]
    if tr.head_mx_backward:
        # the MXFP8 head's backward: its casts beside the layers' saved tensors and the logits' gradient
        candidates.append(_at((buf.backward_loss, 0), {
            **base, "gradients": kept, "activations": acts.layers, "loss_head": logits if w.profile.keeps_logits else 0,
            "temporaries": logits + tr.head_mx_backward}))
    if tr.head_dequant:
        # a chunk's head backward (grad_A = grad_output · dequantized head): the head whole in the compute dtype
        # beside the layers' saved tensors and every chunk's logits gradient (the cross-entropy backwards run
        # first, their own saved tensors freed)
        candidates.append(_at((buf.backward_loss, 0), {
            **base, "gradients": kept, "activations": acts.layers, "loss_head": logits if w.profile.keeps_logits else 0,
            "temporaries": logits + tr.head_dequant}))
    if buf is not NO_BUFFERS:
        # the output head's backward (its unsharded gradient, the loss's tensors gone) and the first layers'
        # backward (nearly all gradients and a layer in flight)
        candidates.append(_at(buf.backward_start, {**base, "gradients": kept,
                                                   "activations": acts.layers + max(0, casts - head_cast),
                                                   "temporaries": head_cast}))
        # the last layer's backward: its parameters and the prefetched next layer beside nearly everything saved,
        # and (FSDP2, untied) the output head's reduce-scatter input, retained until the next reduce-scatter is
        # issued (traced: llama-3-70b with every 2nd layer checkpointed peaks here, the head's fp32 input 4 GiB)
        candidates.append(_at((buf.backward_layer[0], 0), {**base, "gradients": kept, "activations": acts.layers
                                                           + max(0, casts - head_cast),
                                                           "temporaries": acts.layer_backward_extra + sp_temp}))
        # the head's sharded gradient (the reduce-scatter output), on the host under FSDP2's CPU offload
        head_shard = int(spec.vocab_size * spec.hidden_size * p.param_bytes) // n if buf.head_reduce_input else 0
        head_shard = 0 if host_sharded_grads(w) else head_shard
        if buf.head_reduce_input:  # it and the prefetched layer before it (2U), not the embedding
            candidates.append(_at((buf.forward_held, 0), {**base, "gradients": kept + head_shard,
                                                          "activations": acts.layers + max(0, casts - head_cast),
                                                          "temporaries": acts.layer_backward_extra
                                                          + buf.head_reduce_input + sp_temp}))
        # the moment's layer (buf.layer_moment_layers): the second from the input when a layer outweighs the
        # embedding, whose own sharded gradient is not there yet either
        ahead = int(p.layer_params * p.param_bytes) // n * (buf.layer_moment_layers - 1)
        candidates.append(_at(buf.backward_layer, {**base, "gradients": grads - buf.layer_pending // n - ahead}))
        n_layers = spec.num_layers + spec.num_decoder_layers
        if (buf.head_reduce_input and w.grad_checkpointing and w.checkpoint_mode in ("full", "op") and n_layers > 1
                and n_layers % max(1, w.checkpoint_every) == 0 and not w.activation_offload):
            # the last layer, checkpointed, recomputed in backward: it and the prefetched next layer gathered (2U),
            # the output head's reduce-scatter input still retained, the layer's weight gradients arriving beside
            # its recomputed tensors (torchtitan's per-op policy: what it does not save), every other saved tensor
            # alive (traced: llama-3-70b, every 2nd layer checkpointed or the per-op policy, peaks inside the last
            # layer's MLP backward with two of its three MLP weight gradients written; this moment, taking the
            # layer's gradients whole, is the upper side: +2.7% of the 4-layer trace)
            recomputed = acts.one_layer
            if w.checkpoint_mode == "op":
                recomputed = max(0, acts.one_layer - (acts.layers - acts.head_inputs) // n_layers)
            candidates.append(_at((buf.forward_held, 0), {
                **base, "gradients": kept + head_shard, "activations": acts.layers,
                "temporaries": buf.head_reduce_input + buf.layer_grad + recomputed + sp_temp}))
        candidates.append(_at(buf.backward_reduce, {**base, "gradients": grads}))
        if buf.head_reduce[1] and p.recipe == "fsdp_mixed":
            # the output head's reduce-scatter under a MixedPrecisionPolicy (traced, FSDP2: fp32 sharded parameters
            # make it the backward's peak): its unsharded gradient copied into the reduce-scatter input
            # (reduce_dtype) and the sharded output allocated, the last layer gathered, nearly every saved tensor
            # alive (the trace: all but part of the last layer's)
            head_shard = 0 if host_sharded_grads(w) else int(spec.vocab_size * spec.hidden_size * p.param_bytes) // n
            candidates.append(_at(buf.head_reduce, {**base, "gradients": kept + head_shard,
                                                    "activations": acts.layers}))
        if sv.tp > 1 and buf.head_reduce[1] and w.method == "full":
            # under tensor parallelism (torch 2.13's parallel styles, the embedding row-wise) the embedding's
            # backward runs DTensor's replicated strategy: aten.embedding_dense_backward writes a gradient of the
            # whole vocabulary, then split and cloned into this rank's rows; meanwhile the output head's unit is
            # still gathered (its all-gather output kept until the root's post-backward callback) and the first
            # layer's reduce-scatter input retained, every other gradient sharded (traced on the fake process group)
            gb = p.unsharded_grad_bytes or p.param_bytes
            local = spec.vocab_size * spec.hidden_size
            shard = int(local * p.param_bytes) // n
            t = int((local + spec.hidden_size) * p.gather_bytes)
            ur = buf.backward_layer[1] - int(p.layer_params * gb)
            candidates.append(_at((t, int(local * sv.tp * gb + local * gb) + max(0, ur)),
                                  {**base, "gradients": grads - shard}))
    head_candidate = None
    if w.ce_chunks > 1 and w.method == "full":
        # a chunked output head runs lm_head once per chunk. Autograd runs every chunk's cross-entropy backward
        # first (later nodes first), leaving each chunk's logits gradient, then the head's matmuls: from the
        # second on, it adds each chunk's weight gradient to .grad out of place (old .grad, the new one and their
        # sum alive) while the other chunks' logits gradients wait
        head = int(spec.vocab_size * spec.hidden_size * p.param_bytes)
        head_candidate = {**base, "gradients": kept + head, "activations": acts.layers,
                          "temporaries": 2 * head + logits * (w.ce_chunks - 2) // w.ce_chunks}
        candidates.append(head_candidate)
    if w.grad_checkpointing or w.activation_offload:
        layer_grads = int(p.layer_params * p.param_bytes) // (n if w.strategy.shards_params else 1) \
            * (buf.layer_moment_layers if buf is not NO_BUFFERS else 1)
        # recomputed tensors are re-created inside backward: temporaries, as a trace sees them
        # at the second layer's moment (a layer outweighs the embedding: MoE) the embedding's sharded gradient is
        # what is not there yet (traced, Qwen3-30B-A3B, 4 layers: gradients exact); at the first layer's, the dense
        # case, the whole unsharded size is taken off as before (the dense full-depth rows' trace agrees)
        embed_share = embed_grad // n if buf is not NO_BUFFERS and buf.layer_moment_layers == 2 else embed_grad
        candidates.append(_at(buf.backward_layer, {
            **base, "gradients": max(kept, grads - layer_grads - embed_share),
            "temporaries": sp_temp + acts.one_layer + max(acts.layer_backward_extra, tr.dora_recompute, tr.dequant,
                                                          tr.float8)}))
    elif tr.dequant:
        candidates.append({**base, "gradients": kept, "activations": acts.layers, "temporaries": tr.dequant})
    if tr.float8 and not (w.grad_checkpointing or w.activation_offload):
        # the last layer's backward casting its output gradient, weight and input, nearly everything saved
        candidates.append(_at((buf.backward_layer[0], 0), {**base, "gradients": kept, "activations": acts.layers,
                                                           "temporaries": tr.float8}))
    return candidates, head_candidate


def _step_in_backward(spec: ModelSpec, w: Workload, t: Trainable, p: Precision, lay: Layout,
                      candidates: list[dict], head_candidate: dict | None) -> list[dict]:
    # torchtune's optimizer_in_bwd: a post-accumulate-grad hook steps each parameter as soon as its
    # gradient is complete and frees it, so gradients never pile up and there is no separate step
    # inside the layers at most one weight's gradient exists; the output head's accumulates over its chunks
    # and the embedding's, last, is the largest
    grads, largest, param_bytes = lay.grads, p.largest, p.param_bytes
    embed_grad, tied_extra = _head_grads(spec, w, p)
    one = int(largest * param_bytes) if largest else min(grads, int(p.layer_params * param_bytes))
    in_layer = min(one, int(largest_layer_linear(spec) * param_bytes)) if largest else one
    step_one = step_temporary_bytes(w.optimizer, largest or t.params, param_bytes, largest)
    # a tied output head's gradient waits in the autograd engine for the embedding's, at the very end
    waiting = embed_grad if spec.tie_embeddings else 0
    loss_start = candidates[0]
    candidates = [c if c is head_candidate else
                  {**c, "gradients": min(c.get("gradients", 0), in_layer) + (0 if c is loss_start else waiting)}
                  for c in candidates if c.get("gradients", 0) != grads]
    candidates.append(_at(lay.buf.backward_layer, {"weights": lay.weights, "optimizer_states": lay.states,
                                                   "gradients": one, "temporaries": step_one + tied_extra}))
    # a gradient that lives only until its own step is a temporary, as a trace sees it
    return [{**c, "gradients": 0, "temporaries": c.get("temporaries", 0) + c.get("gradients", 0)}
            for c in candidates]


def backward_moment(spec: ModelSpec, w: Workload, t: Trainable, p: Precision, sv: Saved, lay: Layout,
                    tr: Transients, kept: int) -> dict:
    candidates, head_candidate = _backward_candidates(spec, w, p, sv, lay, tr, kept)
    if w.optimizer_in_backward:
        candidates = _step_in_backward(spec, w, t, p, lay, candidates, head_candidate)
    return _largest(candidates)


def recipe_notes(spec: ModelSpec, w: Workload, t: Trainable, p: Precision, notes: list[Assumption]) -> None:
    """The closing assumptions: the recipe and framework, then the shape options in the order they print."""
    own = f"_{w.framework}" if p.recipe == "lora" and w.profile.own_modules else ""
    if not (p.recipe == "lora" and w.precision == "mixed"):  # a_fsdp_lora_fp32 says what the base is stored in
        notes.append(Assumption(f"a_recipe_{p.recipe}{own}", {"dtype": p.dtype}))
    notes.append(Assumption(f"a_framework_{w.framework}", {"chunks": w.ce_chunks}))
    if w.grad_checkpointing and train_flags(spec, w).unsloth:
        notes.append(Assumption("a_unsloth_recompute_old" if version_tuple(w.unsloth_version) < UNSLOTH_ADDMM
                                else "a_unsloth_recompute", {"version": w.unsloth_version}))
    notes.extend(default_notes(spec, w, t, p))
    if w.packing:
        notes.append(Assumption("a_packing", {"seq": w.seq, "o_seq": Opt("seq")}))
    if w.grad_checkpointing and w.checkpoint_mode == "selective":
        notes.append(Assumption("a_ckpt_selective"))
    elif w.grad_checkpointing and w.checkpoint_mode == "op":
        notes.append(Assumption("a_ckpt_op"))
    elif megatron_recompute(spec, w) is not None:
        notes.append(Assumption(f"a_recompute_{w.recompute_method}", {"n": w.recompute_num_layers}))
    elif w.grad_checkpointing and w.checkpoint_every > 1:
        n_layers = spec.num_layers + spec.num_decoder_layers
        notes.append(Assumption("a_ckpt_every", {"ckpt": checkpointed_layers(n_layers, w.checkpoint_every),
                                                 "layers": n_layers, "every": w.checkpoint_every}))
    if w.ce_chunks > 1:
        notes.append(Assumption("a_chunked_ce" if w.profile.ce_upcast else "a_chunked_ce_lowp",
                                {"chunks": w.ce_chunks}))
    if w.liger:
        chunk = fused_ce_chunk(w.batch * w.seq, spec, "liger")
        notes.append(Assumption("a_liger", {"kernels": ",".join(w.liger), "chunk": chunk}))
    if compiles(w, "model"):
        op = w.grad_checkpointing and w.checkpoint_mode == "op"
        layers = compiled_layers_modelled(spec, w.seq, p.act_bytes, w.attn, train_flags(spec, w)) and not (
            w.grad_checkpointing and w.checkpoint_mode == "selective") and not (
            op and compiled_op_sac_bytes_per_token(spec, w.seq, p.act_bytes, w.attn) is None)
        notes.append(Assumption("a_compile" if layers else "a_compile_eager_layers"))
    if w.compile:
        notes.append(Assumption("a_compile_loss" if compiles(w, "loss") else "a_compile_loss_eager",
                                {"o_model": Opt("compile_components", "model")}))
    if w.float8.startswith("mxfp8"):
        notes.append(Assumption("a_mxfp8", {"recipe": w.float8}))
    elif w.float8 != "none":
        notes.append(Assumption("a_float8", {"recipe": w.float8,
                                             "gather": " with float8 all-gather" if w.fsdp_float8_all_gather else ""}))
    if w.dora:
        notes.append(Assumption("a_dora", {"magnitude": f"{dora_magnitude_params(spec, w.lora_targets):,}"}))
    notes.append(Assumption("a_training_shape", {"batch": w.batch, "seq": w.seq, "attn": w.attn,
                                                 "optimizer": w.optimizer, "accum": w.grad_accum}))
    if spec.layout != "llama":
        notes.append(Assumption("a_activations_korthikanti"))
    if w.method in ("adapter", "adapter-v2"):
        notes.append(Assumption("a_litgpt_adapter", {"method": w.method, "start": LITGPT_ADAPTER_START,
                                                     "prompt": LITGPT_ADAPTER_PROMPT, "trainable": f"{t.params:,}"}))
    if w.method in ("lora", "qlora"):
        notes.append(Assumption("a_lora", {"rank": w.lora_rank, "targets": ",".join(w.lora_targets),
                                           "trainable": f"{t.params:,}"}))


def _given(w: Workload, *fields: str) -> bool:
    """Whether the user gave any of ``fields`` (a workload built by hand, with no options, gave everything)."""
    return w.options is None or any(f in w.options for f in fields)


def default_notes(spec: ModelSpec, w: Workload, t: Trainable, p: Precision) -> list[Assumption]:
    """The framework's defaults that set the number, each said as an assumption with the option that changes it:
    hf's checkpointing (TRL and peft's k-bit path for adapters, the Trainer's off for full training), the
    Trainer's fused AdamW, what TRL and peft's k-bit path would do differently with QLoRA's dtypes; torchtune's
    optimizer stepped in backward."""
    out: list[Assumption] = []
    profile = w.profile
    if w.framework == "hf" and not _given(w, "grad_checkpointing", "checkpoint_mode", "checkpoint_every"):
        if w.grad_checkpointing:
            out.append(Assumption("a_hf_ckpt_adapters", {"o_off": Opt("grad_checkpointing", False)}))
        else:
            out.append(Assumption("a_hf_ckpt_off", {"o_on": Opt("grad_checkpointing")}))
    if profile.optimizer_note and not _given(w, "optimizer") and w.optimizer == profile.optimizer:
        # the setting the note suggests (hf: the Trainer's own default, adamw_torch_fused)
        out.append(Assumption(profile.optimizer_note, {"fused": Opt("optimizer", "adamw-fused")}))
    if profile.full_single_optimizer and w.optimizer_in_backward and not _given(w, "optimizer_in_backward"):
        out.append(Assumption("a_tt_opt_in_bwd_default", {"o_off": Opt("optimizer_in_backward", False)}))
    return out


def megatron_moe(spec: ModelSpec, w: Workload) -> bool:
    """Whether Megatron-LM's token dispatchers route the MoE layers (memory/moe_dispatch.py)."""
    return w.framework == "megatron" and spec.moe is not None and w.method == "full"


def megatron_dispatch(spec: ModelSpec, w: Workload, flags: TrainFlags, a: float) -> TrainFlags:
    """``flags`` with Megatron's dispatcher (rows per routed token, permutation bytes per token), the router's probs
    in the compute dtype ``a`` (Megatron's default ``moe_router_dtype``: the logits' own)."""
    if not megatron_moe(spec, w):
        return flags
    tokens, m = w.batch * -(-w.seq // w.sp), spec.moe
    k, e = m.experts_per_token, m.num_experts
    rows = routed_rows(tokens, e, k, w.moe_capacity_factor, w.moe_pad_to_capacity)
    disp = dispatcher_saved(tokens, e, k, w.moe_capacity_factor, w.moe_pad_to_capacity, w.moe_dispatcher, a)
    return replace(flags, moe_alltoall=(rows / (tokens * k), disp / tokens))


def train_flags(spec: ModelSpec, w: Workload) -> TrainFlags:
    """What trains (the method's modules) and whose modules run it (the framework's)."""
    if w.moe_capacity_factor is not None and not megatron_moe(spec, w):
        raise VramscopeError("conflict", field="moe_capacity_factor", reason=Text("r_moe_cf_model"))
    return _train_flags(spec, w)


def _train_flags(spec: ModelSpec, w: Workload) -> TrainFlags:
    own = w.profile.own_modules
    liger = frozenset(w.liger)
    if w.method in ("adapter", "adapter-v2"):
        # LitGPT's LLaMA-Adapter (litgpt/adapter.py, adapter_v2.py): frozen base modules; v1 builds no graph below
        # the first adapted layer, v2 trains the norms and scales every linear's output
        v2 = w.method == "adapter-v2"
        return TrainFlags(base=False, embeddings=False, torchtune=True, litgpt=True, adapter=2 if v2 else 1,
                          frozen_layers=0 if v2 else LITGPT_ADAPTER_START)
    if w.method in ("lora", "qlora"):
        return TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, w.lora_targets),
                          lora_rank=w.lora_rank, lora_dropout=w.lora_dropout > 0, dora=w.dora, torchtune=own,
                          litgpt=w.profile.trace_model == "litgpt", liger=liger,
                          unsloth=w.profile.fused_lora and not w.dora and w.lora_dropout == 0,
                          unsloth_lora_temp=version_tuple(w.unsloth_version) < UNSLOTH_ADDMM)
    if liger:
        return replace(_train_flags(spec, replace(w, liger=())), liger=liger)
    if w.method == "freeze" and w.train_modules:
        return TrainFlags(base=False, embeddings=False, modules=frozenset(w.train_modules), torchtune=own)
    if w.method == "freeze":
        return TrainFlags(base=True, embeddings=False, frozen_layers=w.frozen_layers, torchtune=own)
    return TrainFlags(torchtune=True) if own else FULL_TRAINING


def report_parallel(w: Workload, n: int, extra: dict) -> None:
    """The host bytes a node pins and the parallel layout, as the estimate reports them."""
    if extra.get("host_bytes") and w.num_gpus > 1:
        # every GPU of a node pins its own share: the node's RAM must hold them all
        extra["host_bytes_per_node"] = extra["host_bytes"] * (w.num_gpus // w.nodes)
    if w.num_gpus > 1 or w.sp > 1 or w.ep > 1:
        extra["parallel"] = {"world": w.num_gpus, "dp": w.dp, "tp": 1, "pp": w.pp, "sp": w.sp, "ep": w.ep,
                             "shard_group": n if w.strategy.shards_optimizer else 1,
                             "parallelism": w.parallelism}


def step_phases(w: Workload, lay: Layout, forward: dict, backward: dict, notes: list[Assumption],
                logits: int = 0, kept_inputs: int = 0) -> Phases:
    phases: Phases = {
        "load": {"weights": lay.weights},
        "forward": forward,
        "backward": backward,
        "optimizer_step": {"weights": lay.weights, "gradients": lay.grads - lay.backward_only,
                           "optimizer_states": lay.states,
                           "optimizer_temp": lay.temp},
    }
    if w.profile.logits_outlive_step and logits:
        # the loop's ``logits`` local (LitGPT's fit) is replaced only by the next forward's: alive through the step
        phases["optimizer_step"]["loss_head"] = logits
    if kept_inputs:  # bitsandbytes < 0.43.2: the graph ``loss`` keeps holds its 4-bit linears' inputs
        phases["optimizer_step"]["activations"] = kept_inputs
    if w.optimizer_in_backward:
        del phases["optimizer_step"]
        notes.append(Assumption("a_opt_in_bwd"))
    return phases


def pipeline(spec: ModelSpec, w: Workload, phases: Phases, layer_acts: int,
             notes: list[Assumption], cast_cache: int = 0, act_bytes: float = 2.0,
             p: Optional[Precision] = None, loss_backward: int = 0,
             loss_held: int = 0, logits: int = 0) -> tuple[Phases, dict]:
    """The phases of the busiest pipeline rank, and the per-rank report (``memory/pipeline.py``). torchtitan
    splits the layers its own way (``memory/pipeline.py torchtitan_stage_layers``) and keeps every FSDP2 unit of a
    stage gathered under PP (``pipeline_stages``' ``unsharded``: with ``p``, its FSDP mixed-precision policy)."""
    if w.pp > spec.num_layers:
        raise VramscopeError("conflict", field="pp", reason=Text("r_pp_layers", pp=w.pp, layers=spec.num_layers))
    if w.pp_schedule == "zbv" and spec.num_layers < 2 * w.pp:
        raise VramscopeError("conflict", field="pp", reason=Text("r_pp_layers", pp=2 * w.pp, layers=spec.num_layers))
    if w.pp_schedule.startswith("interleaved") and spec.num_layers < w.pp * w.pp_virtual:
        raise VramscopeError("conflict", field="pp_virtual",
                             reason=Text("r_pp_layers", pp=w.pp * w.pp_virtual, layers=spec.num_layers))
    # a stage boundary's hidden states, one micro-batch: the residual stream in the compute dtype (fp32 params
    # under autocast keep it in fp32), sequence-sharded under tensor parallelism with sequence parallelism
    # (torch.distributed.pipelining's receive buffers; Megatron-LM allocates each received tensor per step)
    width = 4 if cast_cache else act_bytes
    boundary = int(w.batch * -(-w.seq // w.sp) * spec.hidden_size * width) // (w.tp if w.sequence_parallel else 1)
    if w.framework == "megatron":
        boundary = 0
    titan = w.framework == "torchtitan"
    split = "torchtitan" if titan else "even"
    unsharded = None
    if titan and p is not None and p.recipe == "fsdp_mixed" and w.strategy.is_fsdp and shard_group(w) > 1:
        unsharded = (p.gather_bytes, p.reduce_bytes, shard_group(w))
        notes.append(Assumption("a_pp_fsdp_always" if w.pp_reshard_after_forward else "a_pp_fsdp_gathered"))
    phases, rows = pipeline_stages(spec, w.pp, w.grad_accum, w.pp_schedule, phases, layer_acts,
                                   virtual=w.pp_virtual, cast_cache=cast_cache, boundary=boundary,
                                   boundary_saved=width == 4, split=split, unsharded=unsharded,
                                   loss_backward=loss_backward, loss_held=loss_held, logits=logits,
                                   reshard_after_forward=bool(unsharded and w.pp_reshard_after_forward))
    busiest = max(rows, key=lambda r: r["peak_bytes"])
    notes.append(Assumption("a_pp", {"pp": w.pp, "schedule": w.pp_schedule, "m": w.grad_accum,
                                     "kind": Text('stage_' + busiest["kind"].split()[0])}))
    return phases, {"stages": w.pp, "schedule": w.pp_schedule, "micro_batches": w.grad_accum, "ranks": rows}


def paged_states(w: Workload, states: int, notes: list[Assumption]) -> int:
    # bitsandbytes allocates paged states with cudaMallocManaged: on the GPU until it runs short, then paged
    # to host memory by the driver; torch's allocator counters (max_memory_allocated) never see them
    if not (w.optimizer.startswith("paged-") and states):
        return 0
    notes.append(Assumption("a_paged", {"states": f"{states / 2**30:.2f} GiB"}))
    return states


register({
    "a_bnb_litgpt_inputs": {
        "en": "bitsandbytes {version}: MatMul4Bit keeps each 4-bit linear's input as ctx.tensors (before 0.43.2), "
              "the output head's too: {inputs} per step, held by the graph LitGPT's loop keeps through `loss` into the "
              "next step's forward, where two steps' inputs are alive",
        "zh": "bitsandbytes {version}：MatMul4Bit 把每个 4 位线性层（包括输出头）的输入保留在 ctx.tensors 中（0.43.2 之前）："
              "每步 {inputs}，由 LitGPT 循环通过 `loss` 保留的计算图持有，直到下一步的前向，那时两步的输入同时存在"},
    "a_litgpt_adapter": {
        "en": "LitGPT's {method} (litgpt 0.5.13): adapters from layer {start} on, a {prompt}-token prefix; {trainable} "
              "parameters get gradients (the prefix embeddings never do: the validation before training caches each "
              "layer's prefix keys and values without a graph, and every step reuses them)",
        "zh": "LitGPT 的 {method}（litgpt 0.5.13）：从第 {start} 层起加适配器，前缀 {prompt} 个词元；{trainable} 个参数有梯度"
              "（前缀嵌入永远没有：训练前的验证在无计算图下缓存了每层前缀的键和值，之后每步都复用它们）"},
    "a_litgpt_stable_embedding": {
        "en": "LitGPT {version} swaps the embedding for bitsandbytes' StableEmbedding under --quantize, after the "
              "optimizer took the parameters: its gradient ({grad}) is never stepped or zeroed and stays from the first "
              "backward on",
        "zh": "LitGPT {version} 在 --quantize 下、优化器取得参数之后，把词嵌入换成 bitsandbytes 的 StableEmbedding：其梯度"
              "（{grad}）从不被更新或清零，从第一次反向起一直保留"},
    "a_bnb_lightning": {
        "en": "4-bit layers as Lightning's BitsandbytesPrecision makes them (LitGPT's --quantize): every nn.Linear, "
              "the output head included ({head} saved), quantized from an fp16 copy; bitsandbytes {version} "
              "dequantizes a weight to {dequant} bytes per element for each matmul (the head whole, per 128-token "
              "chunk, {head_dq})",
        "zh": "4 位层按 Lightning 的 BitsandbytesPrecision 构建（LitGPT 的 --quantize）：每个 nn.Linear（包括输出头，节省 "
              "{head}）都从 fp16 副本量化；bitsandbytes {version} 每次矩阵乘把权重反量化为每元素 {dequant} 字节（输出头每个 "
              "128 token 分块整体反量化一次，{head_dq}）"},
    "a_bnb_compute": {
        "en": "bitsandbytes compute dtype {compute} (bnb_4bit_compute_dtype): each 4-bit linear casts its input to "
              "it and dequantizes its weight to {dequant} bytes per element",
        "zh": "bitsandbytes 计算类型 {compute}（bnb_4bit_compute_dtype）：每个 4 位线性层把输入转换为该类型，并把权重反量化"
              "为每元素 {dequant} 字节"},
    "a_kbit_peft": {"en": "QLoRA base prepared by peft's prepare_model_for_kbit_training ({prep}): "
                          "after loading it casts the embeddings, norms and head to fp32, so the residual stream and the layers' saved tensors "
                          "are fp32; the head's logits bf16 under the Trainer's autocast, which saves a 16-bit copy "
                          "of the fp32 head weight; bitsandbytes {version}: {saves}",
                    "zh": "QLoRA 基座由 peft 的 prepare_model_for_kbit_training 准备（{prep}）：加载后把词嵌入、归一化层和"
                          "输出头转为 fp32，因此残差流和各层保存的张量为 fp32；在 Trainer 的 autocast 下输出头的 logits 为 "
                          "bf16，并为反向保存 fp32 输出头权重的 16 位副本；bitsandbytes {version}：{saves}"},
    "a_kbit_trl0": {"en": "QLoRA base prepared as TRL 0.7-0.2x's SFTTrainer does ({prep}): "
                          "prepare_model_for_kbit_training, then peft_module_casting_to_bf16 (norms fp32, embeddings "
                          "and head back to bf16): the fp32 norms make the residual stream and the layers' saved "
                          "tensors fp32; bitsandbytes {version}: {saves}",
                    "zh": "QLoRA 基座按 TRL 0.7-0.2x 的 SFTTrainer 准备（{prep}）：prepare_model_for_kbit_training，"
                          "再 peft_module_casting_to_bf16（归一化层 fp32，词嵌入和输出头转回 bf16）：fp32 的归一化层使残差流"
                          "和各层保存的张量为 fp32；bitsandbytes {version}：{saves}"},
    "a_kbit_trl": {"en": "QLoRA base as TRL 1.x's SFTTrainer leaves it ({prep}): no k-bit casts, the "
                         "adapters cast to bf16 (their gradients and optimizer states too); bitsandbytes {version}: "
                         "{saves}",
                   "zh": "QLoRA 基座按 TRL 1.x 的 SFTTrainer 的做法（{prep}）：不做 k-bit 转换，适配器转为 bf16"
                         "（其梯度和优化器状态随之）；bitsandbytes {version}：{saves}"},
    "a_kbit_trl_sharded": {"en": "sharded QLoRA (FSDP / ZeRO-3): TRL skips prepare_model_for_kbit_training "
                                 "(is_sharded_qlora) and builds the adapters in bf16 (autocast_adapter_dtype=False): "
                                 "no k-bit casts, bf16 adapter states ({prep}; {peft} for a script "
                                 "that calls it); bitsandbytes {version}: {saves}",
                           "zh": "分片的 QLoRA（FSDP / ZeRO-3）：TRL 跳过 prepare_model_for_kbit_training（is_sharded_qlora），"
                                 "以 bf16 构建适配器（autocast_adapter_dtype=False）：不做 k-bit 转换，适配器状态为 bf16"
                                 "（{prep}；自行调用它的脚本用 {peft}）；bitsandbytes {version}：{saves}"},
    "a_kbit_none": {"en": "QLoRA base as get_peft_model leaves it ({prep}): fp32 adapters, the rest of "
                          "the base 16-bit; bitsandbytes {version}: {saves}",
                    "zh": "QLoRA 基座按 get_peft_model 的结果（{prep}）：适配器 fp32，基座其余部分 16 位；"
                          "bitsandbytes {version}：{saves}"},
    "a_bnb_saves_weight": {"en": "its 4-bit matmul saves only the packed weight for backward (0.43.2 and later)",
                           "zh": "其 4 位矩阵乘只为反向保存打包的权重（0.43.2 及以后）"},
    "a_bnb_saves_input": {"en": "its 4-bit matmul also saves each linear's input for backward (before 0.43.2; "
                                "{o_bnb} for current releases)",
                          "zh": "其 4 位矩阵乘还为反向保存每个线性层的输入（0.43.2 之前；当前版本用 {o_bnb}）"},
    "a_fsdp_lora_fp32": {
        "en": "base loaded in fp32 (peft's SFT example without 4-bit) under accelerate's mixed precision: FSDP shards it "
              "in fp32 and gathers each unit in {param}, which forward and backward compute in; adapters fp32",
        "zh": "基座以 fp32 加载（peft 的 SFT 示例不用 4 位时如此），在 accelerate 混合精度下：FSDP 以 fp32 分片，每个单元以 "
              "{param} 聚合并在其中计算前向和反向；适配器为 fp32"},
    "a_bnb_quant_state": {
        "en": "bitsandbytes' 4-bit quant state ({state}: absmax and its scales) is no parameter: FSDP / ZeRO-3 leave it "
              "whole on every GPU; only the packed 4-bit data is sharded and gathered",
        "zh": "bitsandbytes 的 4 位量化状态（{state}：absmax 及其缩放）不是参数：FSDP / ZeRO-3 在每张 GPU 上保留完整一份；"
              "只有打包的 4 位数据被分片和聚合"},
    "a_fsdp1_adapters": {
        "en": "FSDP1 units as the Trainer wraps adapters (peft fsdp_auto_wrap_policy, use_orig_params=False): each decoder "
              "layer a frozen unit with no gradient, each LoRA A/B linear its own unit; frozen and trainable in one unit "
              "(use_orig_params=True) would give that unit's whole flat gradient",
        "zh": "FSDP1 单元按 Trainer 包装适配器的方式（peft fsdp_auto_wrap_policy，use_orig_params=False）：每个解码层是一个无"
              "梯度的冻结单元，每个 LoRA A/B 线性层单独成单元；若冻结与可训练参数同在一个单元（use_orig_params=True），该单元"
              "会有完整的扁平梯度"},
    "a_megatron_moe": {
        "en": "Megatron-LM core_v0.19.0 {dispatcher} dispatcher ({policy}), unfused permutation: each MoE layer keeps its "
              "permutation indices ({indices} bytes per token) and, per routed row ({rows} per routed token on a "
              "balanced rank), the grouped fc1's input, its prob, fc1's output and the fc2 input (the probs are "
              "applied inside the experts: no expert output is kept before them)",
        "zh": "Megatron-LM core_v0.19.0 的 {dispatcher} 分发器（{policy}），未融合的置换：每个 MoE 层保留置换索引（每词元 "
              "{indices} 字节），以及每个路由行（负载均衡时每个路由词元 {rows} 行）的分组 fc1 输入、其概率、fc1 输出和 fc2 "
              "输入（概率在专家内部施加：不保留加权前的专家输出）"},
    "moe_dropless": {"en": "dropless", "zh": "不丢弃"},
    "moe_drop": {"en": "capacity factor {cf}, overflow dropped", "zh": "容量因子 {cf}，超出的丢弃"},
    "moe_pad": {"en": "capacity factor {cf}, padded to capacity", "zh": "容量因子 {cf}，填充到容量"},
    "a_te_fp8": {
        "en": "Transformer Engine {te} FP8 ({recipe} recipe) under Megatron-LM {megatron}: in every decoder layer the "
              "fused-norm qkv and fc1 linears save their norm output and fc2 its input as FP8 ({e} B per element "
              "with its scales) instead of bf16; {proj}; FP8 weights {weights} ({layout}; {params}), scaling state "
              "{meta}; the embedding, attention, SwiGLU and output head stay bf16",
        "zh": "Megatron-LM {megatron} 下的 Transformer Engine {te} FP8（{recipe} 配方）：每个解码层中融合归一化的 qkv 与 fc1 "
              "线性层以 FP8（每元素 {e} B，含缩放因子）而非 bf16 保存归一化输出，fc2 保存其输入；{proj}；FP8 权重 "
              "{weights}（{layout}；{params}），缩放状态 {meta}；嵌入、注意力、SwiGLU 与输出头仍为 bf16"},
    "te_fp8_transpose": {"en": "row-wise data and its transpose: compute capability {cc} runs only TN FP8 GEMMs",
                         "zh": "按行数据及其转置：算力 {cc} 只运行 TN 布局的 FP8 GEMM"},
    "te_fp8_nontn": {"en": "one copy serves both usages: compute capability {cc} runs non-TN FP8 GEMMs",
                     "zh": "一份数据兼作按行与按列：算力 {cc} 支持非 TN 布局的 FP8 GEMM"},
    "te_fp8_blocks": {"en": "separate row-wise and column-wise data, each with its block scales",
                      "zh": "按行与按列数据分开保存，各带其分块缩放因子"},
    "te_fp8_proj_copy": {"en": "linear_proj keeps an FP8 copy of the attention output beside it",
                         "zh": "linear_proj 在注意力输出之外再保留其 FP8 副本"},
    "te_fp8_proj_original": {"en": "linear_proj keeps the attention output itself (save_original_input)",
                             "zh": "linear_proj 直接保留注意力输出本身（save_original_input）"},
    "te_fp8_workspace": {"en": "cached beside the bf16 weights", "zh": "与 bf16 权重并存的缓存"},
    "te_fp8_params": {"en": "the parameters themselves, no bf16 copy (fp32 main parameters in the distributed "
                                "optimizer)",
                      "zh": "即参数本身，无 bf16 副本（分布式优化器中保留 fp32 主参数）"},
    "r_te_fp8_layout": {"en": "Transformer Engine FP8 is modelled for dense Llama-layout decoders only (not MoE, "
                              "multi-latent attention or other layouts)",
                        "zh": "Transformer Engine FP8 只对稠密的 Llama 布局解码器建模（不含 MoE、多头潜在注意力或其他布局）"},
    "r_te_fp8_bf16": {"en": "is modelled over Megatron-LM's bf16 mixed precision; use {use}",
                      "zh": "仅在 Megatron-LM 的 bf16 混合精度下建模；请用 {use}"},
    "r_te_fp8_gpu": {"en": "Transformer Engine's {recipe} recipe does not run on compute capability {cc}",
                     "zh": "Transformer Engine 的 {recipe} 配方不能在算力 {cc} 上运行"},
    "a_mxfp8": {
        "en": "torchao 0.18 MXFP8 training ({recipe}; torchtitan 0.3.0 MXFP8LinearConverter, every linear with the "
              "output head): each matmul's operands cast to float8 with one e8m0 scale per 32 elements, alive only "
              "around it; the saved tensors are the high-precision ones a bf16 linear keeps",
        "zh": "torchao 0.18 MXFP8 训练（{recipe}；torchtitan 0.3.0 的 MXFP8LinearConverter，所有线性层包括输出头）：每次矩阵乘"
              "的操作数转换为 float8，每 32 个元素一个 e8m0 缩放因子，只在其前后存在；保存的张量与 bf16 线性层相同，为高精度张量"},
    "r_moe_cf_model": {"en": "an expert capacity needs an MoE model trained in full (Megatron-LM's alltoall dispatcher)",
                       "zh": "专家容量需要全量训练的 MoE 模型（Megatron-LM 的 alltoall 分发器）"},
    "r_ep_needs_moe": {"en": "expert parallelism needs an MoE model whose experts divide by {n}",
                       "zh": "专家并行需要专家数能被 {n} 整除的 MoE 模型"},
    "r_ep_divide": {"en": "{experts} experts do not divide by {n}", "zh": "{experts} 个专家无法被 {n} 整除"},
    "r_dora_moe": {"en": "peft has no DoRA for fused MoE experts; target the attention modules ({targets})",
                   "zh": "peft 没有针对融合 MoE 专家的 DoRA；请只对注意力模块使用（{targets}）"},
    "r_op_sac_layout": {"en": "the per-op policy is modelled for full training of dense Llama-layout models (no MoE, "
                               "MLA or adapters)",
                        "zh": "逐算子检查点策略只对稠密 Llama 结构模型的全参数训练建模（不含 MoE、MLA 或适配器）"},
    "r_pp_layers": {"en": "{pp} stages for {layers} layers", "zh": "{layers} 层无法分成 {pp} 段"},
})

register({
    "a_framework_unsloth": {
        "en": "training loop: Unsloth (unsloth 015bdef / unsloth-zoo 2026.8.13) — its fused LoRA kernels (LoRA_QKV, LoRA_MLP, LoRA_W: the inputs and the gate and up outputs saved), fast RMSNorm, its fused cross-entropy (head and loss chunked inside forward, no full logits; chunks sized to a 4 GiB target) and get_peft_model's defaults (r=16 on q/k/v/o/gate/up/down, fp32 adapters, use_gradient_checkpointing=\"unsloth\"); 4-bit as nf4 with double quantization; each overridable",
        "zh": "训练循环：Unsloth（unsloth 015bdef / unsloth-zoo 2026.8.13）——其融合 LoRA 内核（LoRA_QKV、LoRA_MLP、LoRA_W：保存输入及 gate、up 输出）、快速 RMSNorm、融合交叉熵（输出头与损失在前向中分块计算，不生成完整 logits；分块按 4 GiB 目标划分）以及 get_peft_model 的默认值（r=16，作用于 q/k/v/o/gate/up/down，fp32 适配器，use_gradient_checkpointing=\"unsloth\"）；4 位为带双重量化的 nf4；均可覆盖",
    },
    "a_framework_llamafactory": {
        "en": "training loop: LLaMA-Factory (ff6d4d1) — the Hugging Face Seq2SeqTrainer with its defaults: gradient checkpointing for every method (disable_gradient_checkpointing: false), lora_rank 8 on all linear layers, fp32 trainable parameters, flash_attn: auto (transformers' sdpa), enable_liger_kernel: false, cutoff_len 2048, 4-bit as nf4 with double_quantization; each overridable",
        "zh": "训练循环：LLaMA-Factory（ff6d4d1）——Hugging Face Seq2SeqTrainer 及其默认值：所有方法都开启梯度检查点（disable_gradient_checkpointing: false）、lora_rank 8 作用于全部线性层、fp32 可训练参数、flash_attn: auto（transformers 的 sdpa）、enable_liger_kernel: false、cutoff_len 2048、4 位为带 double_quantization 的 nf4；均可覆盖",
    },
    "a_framework_axolotl": {
        "en": "training loop: axolotl (067b021) — the Hugging Face Trainer with its config defaults: gradient_checkpointing: false, sample_packing off, sequence_len 512, micro_batch_size 1, optimizer adamw_torch_fused, liger plugins off, lora_target_linear (all linear layers) as its examples set it, 4-bit as nf4 with double quantization; each overridable",
        "zh": "训练循环：axolotl（067b021）——Hugging Face Trainer 及其配置默认值：gradient_checkpointing: false、sample_packing 关闭、sequence_len 512、micro_batch_size 1、优化器 adamw_torch_fused、liger 插件关闭、按其示例配置使用 lora_target_linear（全部线性层）、4 位为带双重量化的 nf4；均可覆盖",
    },
    "a_unsloth_recompute": {
        "en": "Unsloth {version}: a layer recomputed in backward holds, beside what its kernels save, its output gradient and its recomputed output (UnslothCheckpointFunction.backward), and LoRA_MLP.backward's DW",
        "zh": "Unsloth {version}：反向中被重算的层除其内核保存的张量外，还持有其输出梯度和重算出的输出（UnslothCheckpointFunction.backward），以及 LoRA_MLP.backward 的 DW",
    },
    "a_unsloth_recompute_old": {
        "en": "Unsloth {version} (before 2025.3): a layer recomputed in backward holds, beside what its kernels save, its output gradient and its recomputed output, LoRA_MLP.backward's DW and, while matmul_lora adds the adapter's product out of place (out += (X @ A) @ (s * B)), a second tensor of DW's size",
        "zh": "Unsloth {version}（2025.3 之前）：反向中被重算的层除其内核保存的张量外，还持有其输出梯度和重算出的输出、LoRA_MLP.backward 的 DW，以及 matmul_lora 以非原地方式加上适配器乘积时（out += (X @ A) @ (s * B)）与 DW 同样大小的第二个张量",
    },
    "a_unsloth_offload_single": {
        "en": "Unsloth's offloaded gradient checkpointing: the inputs of {layers} checkpointed layers ({host}) wait in pinned host memory (non_blocking copies); the GPU keeps the last layer's input and one buffer the recomputed layer's input is copied back into (no double buffering before unsloth-zoo 2026.5)",
        "zh": "Unsloth 的卸载式梯度检查点：{layers} 个检查点层的输入（{host}）存放在锁页主机内存中（non_blocking 拷贝）；GPU 只保留最后一层的输入和一个用于拷回被重算层输入的缓冲区（unsloth-zoo 2026.5 之前没有双缓冲）",
    },
    "a_unsloth_offload_2024": {
        "en": "Unsloth {version} (before 2025.3): Unsloth_Offloaded_Gradient_Checkpointer copies the input of each of the {layers} checkpointed layers ({host}) to host memory (non_blocking, pinned) and keeps none on the GPU; backward copies each back into a new tensor alive only while its layer is recomputed (no GPU buffer, no double buffering)",
        "zh": "Unsloth {version}（2025.3 之前）：Unsloth_Offloaded_Gradient_Checkpointer 把 {layers} 个检查点层各自的输入（{host}）拷贝到主机内存（non_blocking，锁页），GPU 上一个也不保留；反向时把每个输入拷回一个新张量，只在该层重算期间存在（没有 GPU 缓冲区，也没有双缓冲）",
    },
    "a_unsloth_offload": {
        "en": "Unsloth's offloaded gradient checkpointing: the inputs of {layers} checkpointed layers ({host}) wait in pinned host memory (non_blocking copies); the GPU keeps the last layer's input and two buffers the recomputed layer's input is copied back into (double buffering, from the second step while more than 512 MiB is free; one buffer below that)",
        "zh": "Unsloth 的卸载式梯度检查点：{layers} 个检查点层的输入（{host}）存放在锁页主机内存中（non_blocking 拷贝）；GPU 只保留最后一层的输入和两个用于拷回被重算层输入的缓冲区（双缓冲：从第二步起、空闲显存超过 512 MiB 时启用；低于此值时只有一个）",
    },
    "a_liger": {
        "en": "Liger kernels (Liger-Kernel 0.8.2): {kernels}; fused linear cross-entropy runs the head and loss in chunks of {chunk} tokens inside forward and saves only the hidden states' gradient; RMSNorm saves its input and an fp32 rstd; SwiGLU the gate and up outputs; RoPE changes nothing vramscope counts (cos/sin only, as transformers')",
        "zh": "Liger 内核（Liger-Kernel 0.8.2）：{kernels}；融合线性交叉熵在前向中以每块 {chunk} 个 token 计算输出头与损失，只保存隐藏状态的梯度；RMSNorm 保存其输入和 fp32 rstd；SwiGLU 保存 gate 与 up 输出；RoPE 不改变 vramscope 计入的内容（与 transformers 一样只有 cos/sin）",
    },
    "fa_framework_unsloth": {"en": "Unsloth ({o_framework})", "zh": "Unsloth（{o_framework}）"},
    "fa_framework_llamafactory": {"en": "LLaMA-Factory's defaults ({o_framework})", "zh": "LLaMA-Factory 默认值（{o_framework}）"},
    "fa_framework_axolotl": {"en": "axolotl's defaults ({o_framework})", "zh": "axolotl 默认值（{o_framework}）"},
})
