"""Activations: what the forward pass keeps alive, and the transients around the loss.

Training (autograd keeps what backward needs)
----------------------------------------------
For the Llama layout (Llama, Mistral, Qwen, Gemma, Phi-3, GLM, Yi, DeepSeek, Mixtral, ...) the count follows,
op by op, the tensors the Hugging Face code saves for backward — autograd saves an input only when a gradient
that needs it is wanted, so what is saved depends on what trains. Per token and layer, ``a`` the compute dtype's
bytes, ``q``/``kv`` the query and key/value widths, ``I`` the MLP width:

* RMSNorm (``LlamaRMSNorm.forward``): its fp32 upcast of the input (``4h``) and ``rsqrt`` (4 B) always; the
  normalized value cast back (``a·h``) when the norm's weight trains (Gemma's ``1 + weight`` norm keeps the
  fp32 normalized value, ``4h``, instead);
* a linear layer saves its input when its weight trains (``a·in``; inputs shared by q/k/v or gate/up count
  once); a peft LoRA adapter casts its input to fp32 for ``lora_A`` and saves that copy (``4·in`` per adapted
  layer, not shared) and ``lora_A``'s output (``4·r``); with ``lora_dropout > 0`` it keeps the dropout's
  boolean mask and output instead (``5·in``);
* SDPA / flash attention: rotated q and k, v, the output (``o_proj`` reads it in place) and the log-sum-exp
  (``a·(2q + 2kv) + 4·heads``); eager attention repeats k and v to every head and keeps the fp32 softmax and
  its cast copy: ``a·3q + (4 + a)·heads·s`` plus ``o_proj``'s contiguous input;
* q/k norms (Qwen3, Gemma 3): ``(4 + a)·(q + kv)`` when they train, ``4·(q + kv)`` when frozen;
* gated MLP: gate output, activation output and up output (``3·a·I``), the product when ``down_proj`` trains
  (``a·I``); a plain MLP keeps its first output and activation (``2·a·I``);
* MoE: each routed token (``k`` per token) keeps the expert MLP tensors above plus its gathered input and the
  expert output before the routing weight (``2·a·h``); the router's softmax and top-k are a few floats per
  expert; shared experts run on every token.

* autocast over fp32 parameters (``--precision mixed`` without a framework's FSDP policy): the fp32 embedding
  output makes the residual stream fp32, so each norm keeps its fp32 normalized value (``4h``) and each linear
  reading the stream saves its own 16-bit cast of it (autocast caches weight casts only): three copies for q, k
  and v, two for gate and up, ``10·h`` bytes per token and layer more than 16-bit parameters for Llama-3-8B;
  a checkpointed layer keeps its fp32 input (``4h``). Traced at 32 layers under FSDP2 (backward within 2 MiB).

These reproduce fake-tensor traces of the real transformers code per layer: 49.03·h bytes per token for
Llama-3-8B full fine-tuning with SDPA, 64.0·h with eager at s=256, 72.14·h with LoRA on all linear layers,
52.57·h for Qwen3-8B, 85.06·h for Mixtral-8x7B (``docs/accuracy.md``). Layers frozen by ``--method freeze``
before the first trainable one keep nothing: no gradient flows through them.

The loss head (``ForCausalLMLoss``: logits upcast to fp32, then ``cross_entropy``) holds, per token, the saved
fp32 log-softmax (``4V``) from the end of forward; while the loss is computed the logits and their fp32 copy
(``a·V + 4V``; no copy when already fp32) are alive too; backward starts with two more fp32 ``V``-wide gradients
(``8V``). Gemma 2's logit soft-capping keeps its ``tanh`` output (``a·V``), and its attention soft-capping one
more score-sized tensor per layer. Other
layouts (GPT-2, BERT, T5, Falcon, Phi-2) use Korthikanti et al. 2022 (arXiv 2205.05198, eq. 2):
``s·b·h·(34 + 5·heads·s/h)`` bytes per layer at 16 bit, without the s² term when attention is not eager.

Gradient checkpointing (non-reentrant, per decoder layer): only each layer's input stays (``a·h`` per token and
layer); backward recomputes one layer at a time, so one layer's activations come back on top.

torch.compile per block (``--compile``, torchtitan's ``apply_compile``): a compiled block keeps what torch 2.13's
min-cut partitioner saves (``compiled_layer_bytes_per_token``; 34.03·h per token for Llama-3-8B with SDPA, 31%
under eager mode), read off the partitioned graph of the real transformers block (``trace/compiled.py``; every
family within 0.2% in ``bench/compile_blocks.py``).

Eager attention's score-sized transients (transformers 5.24 ``eager_attention_forward``: ``matmul(q, kᵀ)·scale +
mask``, ``softmax(dtype=float32).to(q.dtype)``, ``matmul(probs, v)``; ``S = b·heads·s²`` elements), beside what the
layer saves: forward peaks inside the softmax with the masked 16-bit scores, their fp32 upcast and the fp32 output
(``(a + 4 + 4)·S``; of which the fp32 output and its cast copy stay when the layer saves, a checkpointed layer's
forward saving nothing); backward peaks in the softmax's backward with the saved fp32 output, the fp32 gradient
cast from the 16-bit one and softmax's fp32 input gradient (``12·S``, the cast copy already freed by the
``matmul`` backward before it). The 4-D float mask (``b·s²·a``) lives through forward and backward. Measured on a
real CPU forward and backward (tests/test_stacks.py); SDPA and flash keep no score matrix.

Inference (no autograd): only transients live
---------------------------------------------
The peak inside one layer during prefill is the MLP: activation and up outputs alive while the product is
written (``3·a·I`` per token) beside the embedding output (the model's forward keeps ``inputs_embeds``), the
residual stream, the layer input and the normed input (``4·a·h``).
MoE layers run the routed experts as one grouped matmul over the ``k`` rows each token is routed to: the
gathered input, fused gate/up output, activation and product (``k·a·(h + 4·I_e)``). Eager attention peaks at
the softmax: ``(a + 4)·heads·s`` per token. ``generate()`` computes logits for the
last position only (``logits_to_keep=1``) and copies them to fp32: ``b·V·(a + 4)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..model.spec import ModelSpec

ATTN_IMPLS = ("sdpa", "flash", "eager")

def effective_attn(spec: ModelSpec, attn: str) -> str:
    """The attention implementation transformers actually runs for ``attn`` on this model (families whose
    transformers code refuses SDPA, Gemma 2 for its soft-capping, run eager: ``Family.sdpa``)."""
    return "eager" if attn == "sdpa" and not spec.family.sdpa else attn


@dataclass(frozen=True)
class TrainFlags:
    """What trains, as far as activations care (from the method)."""

    base: bool = True  # base weights (linear layers, norms) train: full / freeze
    embeddings: bool = True
    frozen_layers: int = 0  # --method freeze: the first N layers do not train
    lora: frozenset = frozenset()  # module names with LoRA adapters ("all-linear" expanded by the caller)
    lora_rank: int = 0
    lora_dropout: bool = False  # peft lora_dropout > 0: each adapter keeps a dropout mask and output
    modules: Optional[frozenset] = None  # --method freeze --train-modules: only these linear modules train
    dora: bool = False  # peft use_dora=True: each adapter also keeps the base output and its own output
    torchtune: bool = False  # torchtune's modules: adapters in the model dtype, k/v expanded to every head
    #: LitGPT's LoRA modules (litgpt/lora.py, with ``torchtune``'s traits): each LoRALinear drops out its own input
    #: (the copy and a bool mask kept per adapted module); q, k and v share one LoRAQKVLinear (one copy)
    litgpt: bool = False
    #: Liger kernels patched in ("rms-norm": its RMSNorm saves the input and an fp32 rstd; "swiglu": the gate and
    #: up outputs only, SiLU·up recomputed in backward)
    liger: frozenset = frozenset()
    #: Unsloth's fused LoRA kernels and fast RMSNorm (frameworks.py: what each saves)
    unsloth: bool = False
    #: Unsloth before 2025.3: ``matmul_lora`` adds the adapter's product out of place (a temporary of the output's
    #: width), in particular beside ``LoRA_MLP.backward``'s ``DW``
    unsloth_lora_temp: bool = False
    #: LitGPT's LLaMA-Adapter (1: ``litgpt/adapter.py``, 2: ``adapter_v2.py``; :func:`litgpt_adapter_bytes`)
    adapter: int = 0
    #: fp32 parameters under ``torch.autocast`` (the ``mixed`` recipe: a plain loop, the HF Trainer's amp): the
    #: fp32 embedding output makes the residual stream fp32 (:func:`stream_bytes`), so each RMSNorm keeps its fp32
    #: normalized value and every linear reading the stream casts its own 16-bit copy of it (autocast caches only
    #: casts of leaf tensors that require grad: the weights; torch 2.13 aten/src/ATen/autocast_mode.cpp
    #: ``cached_cast``), which its ``mm`` saves: q, k and v three copies, gate and up two
    autocast_fp32: bool = False
    #: Megatron-LM's alltoall dispatcher (memory/moe_dispatch.py): (rows the experts compute per routed token —
    #: 1 dropless, the padding or dropping of a capacity factor —, bytes per token its permutation keeps)
    moe_alltoall: Optional[tuple[float, float]] = None
    #: Transformer Engine FP8 under Megatron-LM (memory/te_fp8.py): the recipe whose FP8 copies the layer's four TE
    #: linears save instead of their BF16 inputs ("": none)
    te_fp8: str = ""

    def trains(self, module: str) -> bool:
        return self.base if self.modules is None else module in self.modules

    @property
    def norms_train(self) -> bool:
        return (self.base and self.modules is None) or self.adapter == 2


FULL_TRAINING = TrainFlags()


@dataclass(frozen=True)
class TrainingActivations:
    layers: int  # saved by the decoder layers (and the final norm) at the end of forward
    loss_resident: int  # the loss's saved fp32 log-softmax, from the end of forward into backward
    loss_forward_extra: int  # alive only while the loss is computed: bf16 logits + their fp32 copy
    loss_backward_extra: int  # cross-entropy backward's two fp32 gradients
    one_layer: int  # one layer's full activations (recomputed under checkpointing)
    layer_backward_extra: int = 0  # transient while one layer runs backward (merged expert weight gradients)
    #: transient while one layer runs forward, beyond what it saves (eager attention's score-sized tensors)
    layer_forward_extra: int = 0
    head_inputs: int = 0  # of ``layers``: the final norm's saved tensors and the output head's input
    #: alive when the model's 16-bit output has just been copied to fp32 (Lightning Fabric's convert_output):
    #: both, beside ``layers``, before the loss runs
    loss_convert: int = 0

    @property
    def saved(self) -> int:
        return self.layers + self.loss_resident


_ATTN_MODULES = ("q_proj", "k_proj", "v_proj")


def stream_bytes(a: float, t: TrainFlags) -> float:
    """Bytes per element of the residual stream: fp32 under autocast over fp32 parameters (the embedding runs in
    fp32 and each residual add promotes the 16-bit linear output to fp32), else the compute dtype's."""
    return 4.0 if t.autocast_fp32 else a


def _norm(width: int, a: float, trains: bool, gemma: bool) -> float:
    kept = (4.0 if gemma else a) * width if trains else 0.0
    return 4.0 * width + 4.0 + kept


def _llama_layer_bytes(spec: ModelSpec, seq: int, a: float, attn: str, t: TrainFlags) -> float:
    """Bytes saved for backward per token in one Llama-layout layer (module docstring)."""
    h = spec.hidden_size
    q_dim, kv_dim = spec.q_dim, spec.kv_dim
    if spec.mla is not None:
        q_dim = spec.num_heads * spec.mla.qk_head_dim
        kv_dim = spec.num_heads * (spec.mla.qk_head_dim + spec.mla.v_head_dim) // 2
    # Gemma's (1 + weight) norm keeps its fp32 normalized value; so does torchtune's RMSNorm, whose fp32 input
    # meets a bf16 weight and falls off the fused path (traced: 4h per norm more than transformers')
    gemma = spec.family.offset_norm or t.torchtune or t.autocast_fp32
    lora = t.lora
    r4 = 4.0 * t.lora_rank

    def adapted(*names: str) -> int:
        return sum(1 for n in names if n in lora)

    def lora_inputs(width: int, *names: str) -> float:
        """Saved by the adapters reading one input: an fp32 copy each (peft casts to the adapter dtype), or,
        when the model already computes in fp32, the shared input itself once (the cast is a no-op)."""
        n = adapted(*names)
        if not n:
            return 0.0
        if t.litgpt and t.lora_dropout:
            # LitGPT's LoRALinear: lora_A reads lora_dropout(x), a copy in the model dtype and its bool mask, per
            # module; the fused qkv's LoRAQKVLinear drops out once for all of q, k and v. A fused gate_up_proj
            # (Phi-3's Hugging Face layout) is LitGPT's LLaMAMLP fc_1 and fc_2 (litgpt/config.py Phi-3 configs:
            # mlp_class_name "LLaMAMLP"; the checkpoint converter splits gate_up_proj): two LoRALinear, two
            # dropouts and two lora_A outputs
            if names == ("gate_up_proj",):
                n *= 2
            modules = 1 if names == qkv_names else n
            return modules * (a + 1.0) * width + n * a * t.lora_rank
        if t.torchtune:
            # torchtune's LoRALinear: lora_a reads the (shared) input itself, in the model dtype
            return (0.0 if t.base else a * width) + n * a * t.lora_rank
        if t.lora_dropout:  # dropout of the fp32 input: a bool mask and the dropped-out copy, per adapter
            return n * (5.0 * width + r4)
        copies = n if a != 4.0 else (0 if t.base else 1)
        return copies * 4.0 * width + n * r4

    if _unsloth_layers(spec, attn, t):
        return _unsloth_layer_bytes(spec, a, q_dim, kv_dim)
    # norms before attention and MLP (Gemma 2/3 also normalize the block outputs: no linear reads those)
    out = 0.0
    if "rms-norm" in t.liger:  # LigerRMSNormFunction saves X (and W) and an fp32 rstd per row
        out += (a * h + 4.0) * spec.norms_per_layer
    else:
        out += _norm(h, a, t.norms_train, gemma) * spec.norms_per_layer
    # attention inputs: q/k/v share the normed input
    qkv = ("qkv_proj",) if spec.fused_qkv else _ATTN_MODULES
    qkv_names = qkv
    if any(t.trains(m) for m in qkv):
        out += a * h * (sum(1 for m in qkv if t.trains(m)) if t.autocast_fp32 else 1)
    out += lora_inputs(h, *qkv)
    if t.litgpt and t.lora:
        out += litgpt_qkv_pad_bytes(spec, a, lora)
    if attn == "selective":
        # core attention under a checkpoint: its inputs (rotated q and k, v) stay, and o_proj's input
        out += a * (2 * q_dim + 2 * kv_dim)
    elif attn == "eager":
        probs = 4.0 + (a if a != 4.0 else 0.0)  # fp32 softmax and, below fp32, its cast copy
        if spec.attn_softcap:
            probs += a  # tanh output
        out += a * 3 * q_dim + probs * spec.num_heads * seq + (a * q_dim if t.trains("o_proj") else 0.0)
    else:
        # torchtune's MultiHeadAttention expands k and v to every head before SDPA (a copy SDPA then saves)
        out += a * (2 * q_dim + 2 * (q_dim if t.torchtune else kv_dim)) + 4.0 * spec.num_heads
    # torchtune's output_proj adapter reads the attention output SDPA already keeps (no copy)
    out += (a * t.lora_rank if "o_proj" in lora else 0.0) if t.torchtune and not (t.litgpt and t.lora_dropout) \
        else lora_inputs(q_dim, "o_proj")
    if spec.qk_norm:
        out += (4.0 + (a if t.norms_train else 0.0)) * (q_dim + kv_dim) + 4.0 * (spec.num_heads + spec.num_kv_heads)
    # MLP input (normed) is shared by gate and up (and the router)
    gate_up = ("gate_up_proj",) if spec.fused_gate_up else ("gate_proj", "up_proj")
    readers = gate_up + ("gate",) if spec.moe is not None else gate_up  # the router reads it too
    if any(t.trains(m) for m in gate_up + ("gate",)):
        out += a * h * (sum(1 for m in readers if t.trains(m)) if t.autocast_fp32 else 1)
    k = 1
    inter = spec.intermediate_size
    if spec.moe is not None:
        # Llama4TextMoe repeats the hidden states once per expert: every expert runs on every token
        k = spec.moe.num_experts if spec.family.moe_dense_dispatch else spec.moe.experts_per_token
        inter = spec.moe.expert_intermediate_size
        out += 6.0 * 4 * spec.moe.num_experts  # router logits, softmax, top-k
        if t.moe_alltoall is not None:
            # Megatron-LM: the permutation's indices, then per computed row the grouped fc1's input and its prob
            # (applied inside the experts, so no expert output is kept before it); fc1's output and the fc2 input
            # below (the fused weighted SwiGLU keeps no separate activation)
            rows, indices = t.moe_alltoall
            k *= rows
            out += indices + k * (a * h + a)
        else:
            out += k * 2 * a * h  # gathered input, expert output before the routing weight
    if spec.moe is not None and t.moe_alltoall is not None:
        mlp = 3 * a * inter
    elif spec.moe is not None:
        # routed experts: fused 3-D weights; LoRA on them merges the weights (merged_expert_bytes), so the
        # grouped matmuls keep their inputs as they would for trained weights
        trains = t.base or "experts" in lora
        mlp = 3 * a * inter + (a * inter if trains else 0.0)
    else:
        gated = 2 * a * inter if "swiglu" in t.liger else 3 * a * inter  # LigerSiLUMulFunction saves a, b
        mlp = (gated + (a * inter if t.trains("down_proj") else 0.0)) if spec.mlp_gated else 2 * a * inter
        mlp += lora_inputs(h, *gate_up) + lora_inputs(inter, "down_proj")
    out += k * mlp
    if t.dora:
        out += (a + 4.0) * sum(width for name, width, _ in dora_modules(spec, lora))
    if spec.moe is not None and spec.moe.shared_intermediate_size:
        si = spec.moe.shared_intermediate_size
        out += 3 * a * si + (a * si if t.base else 0.0)
    if t.te_fp8:
        from .te_fp8 import layer_delta_per_token

        out += layer_delta_per_token(h, spec.q_dim, spec.intermediate_size, a, t.te_fp8, attn == "selective")
    return out


def _unsloth_layers(spec: ModelSpec, attn: str, t: TrainFlags) -> bool:
    """Whether Unsloth's fused LoRA kernels run the layers (dense Llama layouts with separate q/k/v, gate/up)."""
    return (t.unsloth and bool(t.lora) and not t.base and spec.layout == "llama" and spec.moe is None
            and spec.mla is None and not spec.fused_qkv and not spec.fused_gate_up and spec.mlp_gated
            and attn != "eager")


def _unsloth_layer_bytes(spec: ModelSpec, a: float, q_dim: int, kv_dim: int) -> float:
    """Per token, one Llama-layout layer under Unsloth's fused LoRA kernels (unslothai/unsloth 015bdef
    ``unsloth/kernels/fast_lora.py``, ``rms_layernorm.py``): each fast RMSNorm its input and an fp32 rstd;
    ``LoRA_QKV`` the normed input ``X``; attention (flash, xformers or SDPA) q, k, v, its output and the
    log-sum-exp, the output being what ``LoRA_W`` (o_proj) saves; ``LoRA_MLP`` ``X``, ``e`` (gate) and ``g`` (up)."""
    h = spec.hidden_size
    norms = (a * h + 4.0) * spec.norms_per_layer
    attention = a * h + a * (2 * q_dim + 2 * kv_dim) + 4.0 * spec.num_heads
    return norms + attention + a * h + 2 * a * spec.intermediate_size


def fused_ce_chunk(tokens: int, spec: ModelSpec, kind: str) -> int:
    """Tokens per chunk of a fused head and loss. Liger 0.8.2 ``fused_linear_cross_entropy_forward``:
    ``next_power_of_2(ceil(BT / ceil(V / H)))``; Unsloth (unsloth-zoo 2026.8.13 ``get_chunk_size``): chunks a
    multiple of 4 that keep one chunk's fp32 logits under the target (``min(free / 2, 4 GiB)``: 4 GiB here)."""
    v, h = spec.vocab_size, spec.hidden_size
    if kind == "liger":
        inc = -(-v // h)
        per = -(-tokens // inc)
        return min(tokens, 1 << max(0, (per - 1).bit_length()))
    exact = tokens * v * 4 / 2**30 / 4.0
    chunks = 1 if exact <= 1.0 + 1e-9 else int(-(-exact // 4) * 4)
    return -(-tokens // chunks)


def dora_modules(spec: ModelSpec, lora: frozenset) -> list[tuple[str, int, int]]:
    """(name, out width, in width) of each DoRA-adapted linear in one Llama-layout layer."""
    h, q, kv, inter = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size
    shapes = {"q_proj": (q, h), "k_proj": (kv, h), "v_proj": (kv, h), "qkv_proj": (q + 2 * kv, h), "o_proj": (h, q),
              "gate_proj": (inter, h), "up_proj": (inter, h), "gate_up_proj": (2 * inter, h), "down_proj": (h, inter)}
    return [(n, *shapes[n]) for n in shapes if n in lora]


def dora_forward_transient(spec: ModelSpec, lora: frozenset, graph: bool = True) -> int:
    """peft's ``DoraLinearLayer.forward`` rebuilds the adapter's weight each call: an fp32 identity of
    ``in × in`` pushed through ``lora_A`` and ``lora_B`` (``get_lora_weight``), then the base weight in fp32,
    the scaled adapter weight and their sum for the column norm (``get_weight_norm``). With autograd recording
    (``graph``), ``lora_A`` keeps the identity until the norm is done: ``4·in² + 16·in·out`` bytes together at
    the largest adapted layer; inside a checkpointed forward nothing is kept, and the peak is the larger of
    the identity with the product (``4·in² + 4·in·out``) and the four weight-sized tensors (``16·in·out``)."""
    if graph:
        return max((4 * i * i + 16 * i * o for _, o, i in dora_modules(spec, lora)), default=0)
    return max((max(4 * i * i + 4 * i * o, 16 * i * o) for _, o, i in dora_modules(spec, lora)), default=0)


def _korthikanti_layer_bytes(spec: ModelSpec, seq: int, a: float, attn: str) -> float:
    """Korthikanti et al. 2022 eq. 2 per token, scaled from 16-bit to ``a`` bytes."""
    h = spec.hidden_size
    s2 = 5 * spec.num_heads * seq / h if attn == "eager" else 0
    return h * (34 + s2) * a / 2


def layer_bytes_per_token(spec: ModelSpec, seq: int, a: float, attn: str, t: TrainFlags = FULL_TRAINING) -> float:
    if spec.layout == "llama":
        return _llama_layer_bytes(spec, seq, a, attn, t)
    if spec.layout == "phi" and t.litgpt and t.lora and not t.base and attn != "eager":
        return _litgpt_phi_lora_layer_bytes(spec, a, t)
    return _korthikanti_layer_bytes(spec, seq, a, attn)


def litgpt_qkv_pad_bytes(spec: ModelSpec, a: float, lora: frozenset) -> float:
    """LitGPT's fused ``LoRAQKVLinear`` adapting some but not all of q, k and v (its default: q and v):
    ``zero_pad`` scatters the adapter's output into a zero qkv-wide tensor with ``index_copy_``, whose backward
    formula (``grad.index_select(dim, index).expand_as(source)``) keeps the source, the enabled widths' output,
    in the compute dtype (counted on LitGPT's code: tests/test_litgpt.py). Adapting all three skips the padding."""
    widths = {"q_proj": spec.q_dim, "k_proj": spec.kv_dim, "v_proj": spec.kv_dim}
    on = [n for n in widths if n in lora]
    return a * sum(widths[n] for n in on) if 0 < len(on) < 3 else 0.0


def _litgpt_phi_lora_layer_bytes(spec: ModelSpec, a: float, t: TrainFlags) -> float:
    """Bytes per token one LitGPT 0.5.13 block of phi-2's layout saves under LoRA (``litgpt/model.py`` with
    ``parallel_residual`` and ``shared_attention_norm``: one LayerNorm feeds attention and MLP; ``GptNeoxMLP``: fc,
    tanh-GELU, proj; ``litgpt/lora.py`` LoRA modules on a frozen base; counted on LitGPT's code with real CPU
    tensors, each storage once: tests/test_litgpt.py). The frozen linears save nothing; the LayerNorm keeps its
    input and fp32 mean and rstd; the fused qkv output's storage stays whole (``v`` is a view of it that SDPA
    keeps, while the partly rotated ``q`` and ``k`` are new tensors from ``torch.cat``); SDPA keeps q, k, its
    output and the log-sum-exp; GELU keeps its input (fc's output). Each LoRALinear with ``lora_dropout > 0``
    keeps its dropped-out input and the bool mask (one for the fused qkv) and ``lora_A``'s output; without dropout
    ``lora_A`` keeps the input itself: the shared norm output (qkv, fc), the attention output's reshaped copy
    (proj), GELU's output (the MLP's proj)."""
    h, q, kv, inter, r = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size, t.lora_rank
    lora = t.lora
    qkv = any(n in lora for n in ("q_proj", "k_proj", "v_proj", "qkv_proj"))
    proj, fc, down = "dense" in lora or "o_proj" in lora, "fc1" in lora, "fc2" in lora
    out = a * h + 8.0  # the LayerNorm's input, fp32 mean and rstd
    out += a * (q + 2 * kv) + a * (q + kv + q) + 4.0 * spec.num_heads  # qkv storage; q, k, output; lse
    out += a * inter  # GELU's input
    out += litgpt_qkv_pad_bytes(spec, a, lora)
    adapted = [(qkv, h), (proj, q), (fc, h), (down, inter)]
    out += sum(a * r for on, _ in adapted if on)
    if t.lora_dropout:
        out += sum((a + 1.0) * width for on, width in adapted if on)
    else:
        out += (a * h if qkv or fc else 0.0) + (a * q if proj else 0.0) + (a * inter if down else 0.0)
    return out


def merged_expert_bytes(spec: ModelSpec, a: float, t: TrainFlags) -> int:
    """peft's ``ParamWrapper`` LoRA on transformers 5's fused 3-D experts computes the merged weights
    ``W + scale·B·A`` each forward (``baddbmm``) and autograd keeps them: per MoE layer, every expert's fused
    gate/up and down weights once more, in the base dtype — independent of the number of tokens."""
    if spec.moe is None or "experts" not in t.lora:
        return 0
    return int(spec.moe.num_experts * 3 * spec.moe.expert_intermediate_size * spec.hidden_size * a)


def op_sac_bytes_per_token(spec: ModelSpec, seq: int, a: float, attn: str) -> Optional[float]:
    """Bytes per token one decoder layer keeps under torchtitan's per-op selective activation checkpointing
    (pytorch/torchtitan b5bcd76 ``torchtitan/distributed/activation_checkpoint.py`` ``SelectiveAC``): the block's
    input (the checkpoint's argument), the outputs of every odd matmul of the block in call order (``aten.mm``
    is counted; every second one is recomputed), the outputs of the other compute-intensive ops
    (``get_default_op_list().compute_intensive_ops``: SDPA flash/efficient — output and fp32 log-sum-exp —, and
    eager attention's ``bmm`` scores and output), nothing else: norms, RoPE, activations and products are
    recomputed in backward. None for layouts whose op order is not modelled (MoE, MLA, non-Llama)."""
    if spec.layout != "llama" or spec.moe is not None or spec.mla is not None:
        return None
    h, q, kv = spec.hidden_size, spec.q_dim, spec.kv_dim
    inter = spec.intermediate_size
    attn_mms = [q + 2 * kv] if spec.fused_qkv else [q, kv, kv]
    mlp_mms = ([2 * inter] if spec.fused_gate_up else [inter, inter]) if spec.mlp_gated else [inter]
    mms = attn_mms + [h] + mlp_mms + [h]
    out = a * h + sum(a * width for i, width in enumerate(mms) if i % 2 == 0)
    if attn == "eager":
        out += a * (spec.num_heads * seq + q)  # both bmm outputs (the scores and attention·V), saved
    else:
        out += a * q + 4.0 * spec.num_heads
    return out


def compiled_layer_bytes_per_token(spec: ModelSpec, seq: int, a: float, attn: str) -> Optional[float]:
    """Bytes per token one torch.compile'd decoder block saves for backward (torch 2.13 inductor: AOTAutograd's
    ``min_cut_rematerialization_partition``, full training; read off the partitioned graph of the real
    transformers block, ``trace/compiled.py``, ``bench/compile_blocks.py``). The partitioner saves matmul outputs
    and recomputes the cheap elementwise work (norm multiplies, RoPE's inputs, SiLU, residual sums) from them:

    * the block's input (``a·h``: the residual stream, re-added in backward) and ``o_proj``'s output (``a·h``: the
      second residual sum, recomputed for the MLP norm); per pre-norm its normed output, which the next matmul
      reads, and the fp32 ``rsqrt`` per row (``a·h + 4``); sandwich norms (Gemma 2/3: four per layer) add the
      post-attention norm's ``rsqrt`` (4) and the post-MLP norm's input and ``rsqrt`` (``a·h + 4``);
    * SDPA / flash: rotated q and k, v, the output and the fp32 log-sum-exp (``a·(2q + 2kv) + 4·heads``); eager
      attention: q and k, v repeated to every head and the output (``4·a·q``), the raw scores and the
      probabilities (``2·a·heads·s``), softmax's fp32 max and sum (``8·heads``); soft-capping is recomputed;
    * q/k norms (Qwen3, Gemma 3): the un-normed q and k projections and an ``rsqrt`` per head
      (``a·(q + kv) + 4·(heads + kv_heads)``);
    * gated MLP: gate, up and their product (``3·a·I``; fused gate/up the same);
    * MoE (transformers 5's grouped-matmul experts): the router logits (``a·E``), per routed row the top-k
      weight (fp32) and four int64 index tensors (``36·k``), the gathered input, the expert output before the
      routing weight and the expert MLP (``k·a·(2h + 3·I_e)``).

    None where not modelled (non-Llama layouts, MLA, shared experts, dense-dispatch MoE, ungated MLPs, per-head
    or full-width q/k norms, attention sinks): those layers are estimated as in eager mode."""
    fam = spec.family
    moe = spec.moe
    if (spec.layout != "llama" or spec.mla is not None or not spec.mlp_gated or fam.attn_sinks or fam.expert_bias
            or spec.norms_per_layer not in (2, 4) or (spec.qk_norm and fam.qk_norm_shape != "head")
            or (moe is not None and (moe.shared_intermediate_size or fam.moe_dense_dispatch))):
        return None
    h, q, kv, heads = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.num_heads
    out = a * h + a * h + 2 * (a * h + 4.0)  # input, o_proj output, two pre-norms
    if spec.norms_per_layer == 4:
        out += 4.0 + a * h + 4.0
    if spec.qk_norm:
        out += a * (q + kv) + 4.0 * (heads + spec.num_kv_heads)
    if attn == "eager":
        out += 4 * a * q + 2 * a * heads * seq + 8.0 * heads
    else:
        out += a * (2 * q + 2 * kv) + 4.0 * heads
    if moe is None:
        out += 3 * a * spec.intermediate_size
    else:
        k = moe.experts_per_token
        out += a * moe.num_experts + 36.0 * k + k * a * (2 * h + 3 * moe.expert_intermediate_size)
    return out


def compiled_layers_modelled(spec: ModelSpec, seq: int, a: float, attn: str, t: TrainFlags = FULL_TRAINING) -> bool:
    """Whether a compiled block of this model under this training is modelled (full training of the base weights
    with transformers' own modules; adapters, torchtune's or LitGPT's modules and patched kernels change the
    graph the partitioner sees, and are estimated as in eager mode)."""
    plain = (t.base and t.modules is None and not t.lora and not t.dora and not t.torchtune and not t.litgpt
             and not t.liger and not t.unsloth)
    return plain and compiled_layer_bytes_per_token(spec, seq, a, attn) is not None


def compiled_op_sac_bytes_per_token(spec: ModelSpec, seq: int, a: float, attn: str) -> Optional[float]:
    """torchtitan's per-op SAC (``trace/build.py sac_policy``) inside a compiled block (torch 2.13): the
    partitioner keeps the policy's MUST_SAVE outputs that backward reads and recomputes the rest. The policy
    counts ``aten.mm`` in call order (q, k, v or the fused qkv, o, gate and up or the fused gate_up, down) and
    recomputes every second one; a projection with a bias runs as ``aten.addmm``, saved always and not counted
    (Qwen2's q/k/v). Saved: the block's input, the saved projections' outputs, SDPA's output and log-sum-exp —
    less ``down_proj``'s output, which nothing in backward reads unless a post-MLP norm does (Gemma 2/3).
    Eager attention and MoE blocks are not modelled under this policy (None)."""
    if attn == "eager" or spec.moe is not None or compiled_layer_bytes_per_token(spec, seq, a, attn) is None:
        return None
    h, q, kv, inter = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size
    attn_mms = [(q + 2 * kv, spec.qkv_bias)] if spec.fused_qkv else [(q, spec.qkv_bias), (kv, spec.qkv_bias),
                                                                       (kv, spec.qkv_bias)]
    gate_up = [(2 * inter, spec.mlp_bias)] if spec.fused_gate_up else [(inter, spec.mlp_bias), (inter, spec.mlp_bias)]
    mms = attn_mms + [(h, spec.o_bias)] + gate_up + [(h, spec.mlp_bias)]
    out, count = a * h + a * q + 4.0 * spec.num_heads, 0
    for i, (width, bias) in enumerate(mms):
        if not bias:
            count += 1
        saved = bias or count % 2 == 1
        if i == len(mms) - 1 and spec.norms_per_layer != 4:
            saved = False  # down_proj's output: read by nothing in backward
        out += a * width if saved else 0.0
    return out


def eager_attention_transients(spec: ModelSpec, batch: int, seq: int, a: float, checkpointed: bool) -> tuple[int, int]:
    """(forward, backward) bytes eager attention holds beside what one layer saves (module docstring): forward
    ``(a + upcast + 4)·S`` inside a checkpointed layer (it saves nothing) or ``upcast + a − cast`` over the saved
    fp32 probabilities and their cast copy; backward ``12·S`` less the saved ``(4 + cast)·S``; the mask both times."""
    scores = batch * spec.num_heads * seq * seq
    upcast = 4.0 if a != 4.0 else 0.0  # softmax(dtype=float32) copies a 16-bit input; .to(q.dtype) casts back
    cast = a if a != 4.0 else 0.0
    saved = 4.0 + cast
    mask = batch * seq * seq * a
    forward = (a + upcast + 4.0) - (0.0 if checkpointed else saved)
    return int(scores * forward + mask), int(scores * (12.0 - saved) + mask)


def checkpointed_layers(n_layers: int, every: int) -> int:
    """Layers checkpointed when every ``every``-th one is (torchtune counts from 1: layers every, 2·every, ...)."""
    return n_layers // every if every else 0


def training_activations(spec: ModelSpec, batch: int, seq: int, a: float, attn: str = "sdpa",
                         checkpointing: bool = False, trainable: TrainFlags = FULL_TRAINING, every: int = 1,
                         selective: bool = False, ce_chunks: int = 1, replicated_shard: int = 1,
                         compiled_loss: bool = False, op_sac: bool = False,
                         megatron: Optional[tuple[int, int, int]] = None,
                         ce_upcast: bool = True, fused_ce: str = "", compiled_layers: bool = False,
                         gathered_inputs: bool = False, logits_fp32: bool = False) -> TrainingActivations:
    """What training keeps (module docstring). ``every``: with checkpointing, only every ``every``-th layer is
    checkpointed; ``selective``: Megatron's selective recomputation (only core attention recomputed) instead
    of whole layers; ``ce_chunks``: the output head and cross-entropy run chunk by chunk along the sequence;
    ``megatron``: Megatron-LM's full recompute as (checkpoint inputs kept, layers they cover, layers recomputed
    together in backward) — uniform: one input per group of N layers covering all, N recomputed at once; block:
    the first N layers each checkpointed, the others keeping everything. ``compiled_layers``: each block is
    torch.compile'd (``compiled_layers_modelled``: what its partitioned graph saves, and recomputes in backward)."""
    tokens = batch * seq
    compiled = compiled_layers and not (checkpointing and selective) and compiled_layers_modelled(spec, seq, a, attn,
                                                                                                  trainable)

    def per_token(s: ModelSpec, impl: str) -> float:
        if compiled:
            return compiled_layer_bytes_per_token(s, seq, a, impl) or 0.0
        return layer_bytes_per_token(s, seq, a, impl, trainable)

    if checkpointing and selective:
        per_layer = layer_bytes_per_token(spec, seq, a, "selective", trainable)
        checkpointing = False
    else:
        per_layer = per_token(spec, attn)
    if replicated_shard > 1:
        # Megatron sequence parallelism: what tensor parallelism replicates (hidden-size-wide tensors) is split
        # along the sequence inside the TP group; the head- and MLP-sharded part is unchanged
        narrow = spec.derived(head_dim=0, intermediate_size=0, mla=None, qk_norm=False,
                              moe=None if spec.moe is None else replace(spec.moe, expert_intermediate_size=0,
                                                                        shared_intermediate_size=0))
        wide = per_token(narrow, "sdpa")
        per_layer -= wide * (1 - 1 / replicated_shard)
        if gathered_inputs:
            # torch's sequence parallelism (PrepareModuleInput Shard(1) -> Replicate before the column-wise
            # linears, torchtitan's plan): the all-gathered attention and MLP inputs are what q/k/v and gate/up
            # save for backward, whole; Megatron saves the local shard and all-gathers again in backward
            per_layer += 2 * a * spec.hidden_size * (1 - 1 / replicated_shard)
    n_layers = spec.num_layers + spec.num_decoder_layers
    stream = stream_bytes(a, trainable)  # a checkpointed layer keeps its input: the residual stream
    live_layers = n_layers - min(trainable.frozen_layers, n_layers) if not trainable.embeddings else n_layers
    merged = merged_expert_bytes(spec, a, trainable)
    moe_layers = 0
    if merged and spec.moe is not None:  # the layers not listed as dense
        moe_layers = spec.num_layers - sum(1 for i in set(spec.moe.dense_layers) if 0 <= i < spec.num_layers)
    one_layer = int(tokens * per_layer) + merged
    if checkpointing and megatron is not None:
        inputs, covered, group = megatron
        covered = min(covered, live_layers)
        layers = int(tokens * min(inputs, live_layers) * stream * spec.hidden_size / replicated_shard)
        layers += int(tokens * per_layer) * (live_layers - covered) + merged * round(moe_layers * (1 - covered / n_layers))
        one_layer = (int(tokens * per_layer) + merged) * min(group, live_layers)
    elif checkpointing:
        ckpt = min(checkpointed_layers(n_layers, every), live_layers)
        layers = int(tokens * ckpt * stream * spec.hidden_size / replicated_shard)
        layers += int(tokens * per_layer) * (live_layers - ckpt) + merged * round(moe_layers * (1 - ckpt / n_layers))
    elif op_sac:  # torchtitan's per-op policy on every block; backward recomputes one block at a time
        sac = compiled_op_sac_bytes_per_token(spec, seq, a, attn) if compiled else None
        if sac is None:
            sac = op_sac_bytes_per_token(spec, seq, a, attn)
        layers = int(tokens * (per_layer if sac is None else sac)) * live_layers
    else:
        layers = int(tokens * per_layer) * live_layers + merged * moe_layers
    if trainable.adapter:
        layers += int(tokens * litgpt_adapter_bytes(spec, a, attn, trainable, n_layers))
    gemma = spec.family.offset_norm or trainable.torchtune or trainable.autocast_fp32
    final_norm = int(tokens * _norm(spec.hidden_size, a, trainable.norms_train, gemma) / replicated_shard)
    if trainable.adapter == 2:
        # lm_head is an AdapterV2Linear too: every 128-token chunk's ``linear(x) + adapter_bias`` is kept for
        # adapter_scale's gradient, beside the scaled chunk (the logits the loop keeps)
        final_norm += int(tokens * a * spec.vocab_size)
    if trainable.trains("lm_head"):
        final_norm += int(tokens * a * spec.hidden_size)  # lm_head's input, when lm_head trains
    resident, fwd_extra, bwd_extra = loss_terms(spec, batch, seq, a, trainable, ce_chunks, compiled_loss, ce_upcast,
                                                fused_ce, logits_fp32)
    la = 4.0 if logits_fp32 and not ce_upcast and not fused_ce and not compiled_loss else a
    convert = int(batch * seq * (a + la) * spec.vocab_size) if la != a else 0
    # backward through a merged expert weight materializes its full gradient (the down projection's first)
    layer_bwd, layer_fwd = merged // 3, 0
    if _unsloth_layers(spec, attn, trainable):
        # LoRA_MLP.backward: DW = dY·Wdownᵀ (b·s·I, the compute dtype) is new; h, df, de overwrite DW, e, g in
        # place and dX is written into X (inplace=True). Before 2025.3 (unsloth 2024.12.3 kernels/utils.py
        # matmul_lora: ``out += (X @ A.to(dtype)) @ (s * B.to(dtype))``) the adapter's product is a second
        # b·s·I tensor beside DW while it is added
        layer_bwd = int(tokens * a * spec.intermediate_size) * (2 if trainable.unsloth_lora_temp else 1)
        # the checkpoint's backward (unsloth-zoo 2026.8.13 UnslothCheckpointFunction.backward, and 2024.12's
        # Unsloth_Offloaded_Gradient_Checkpointer.backward alike) holds the layer's output gradient (its
        # argument) and the recomputed layer's output through torch.autograd.backward(outputs, dY): two
        # hidden-wide tensors beside what the recomputed layer saves. Its first fast RMSNorm saves its input
        # itself (Fast_RMS_Layernorm saves X): the checkpoint's GPU buffer the input was reloaded into, alive
        # through the whole backward, counted here as the layer's (run on Unsloth's code: tests/test_unsloth_run.py)
        one_layer += int(tokens * 2 * a * spec.hidden_size)
    if attn == "eager" and spec.layout == "llama" and not op_sac:
        layer_fwd, attn_bwd = eager_attention_transients(spec, batch, seq, a, checkpointing)
        layer_bwd = max(layer_bwd, attn_bwd)
    return TrainingActivations(layers=layers + final_norm, loss_resident=resident, loss_forward_extra=fwd_extra,
                               loss_backward_extra=bwd_extra, one_layer=one_layer, layer_backward_extra=layer_bwd,
                               head_inputs=final_norm, layer_forward_extra=layer_fwd, loss_convert=convert)


def litgpt_adapter_bytes(spec: ModelSpec, a: float, attn: str, t: TrainFlags, n_layers: int) -> float:
    """Bytes per token LitGPT 0.5.13's LLaMA-Adapter keeps beyond its frozen base layers (``litgpt/adapter.py``,
    ``adapter_v2.py``; traced on LitGPT's code with real CPU tensors: tests/test_litgpt_adapter.py).

    From ``adapter_start_layer`` (2) on, each layer attends to the prefix keys and values cached at the validation
    before training (batch 1, no graph) with an all-true mask: SDPA's fused kernels want equal batch sizes and no
    mask, so the math path runs it, upcast to fp32 (torch's default ``allow_fp16_bf16_reduction_math_sdp`` off),
    and keeps its fp32 softmax (heads × prefix per token); ``y + gating_factor * ay`` keeps ``ay`` for the gate's
    gradient. v1 builds no graph below the first adapted layer (nothing there requires a gradient: the caller
    counts ``n_layers - start`` layers), and that layer's attention inputs do not require one either: its norm and
    SDPA keep nothing. v2 (every linear an ``AdapterV2Linear``: ``adapter_scale * (linear(x) + adapter_bias)``)
    keeps each linear's unscaled output for ``adapter_scale``'s gradient, in every layer."""
    from .trainable import LITGPT_ADAPTER_PROMPT, LITGPT_ADAPTER_START

    h, q_dim, kv_dim = spec.hidden_size, spec.q_dim, spec.kv_dim
    adapted = max(0, n_layers - LITGPT_ADAPTER_START)
    out = adapted * (a * q_dim + 4.0 * spec.num_heads * LITGPT_ADAPTER_PROMPT)
    if t.adapter == 1 and adapted:
        # the first adapted layer: its norm_1 (fp32 input and rstd) and main SDPA (q, k and v expanded to every
        # head, the output and the log-sum-exp) keep nothing, nor does the prefix attention's softmax
        gemma = spec.family.offset_norm or t.torchtune
        sdpa = a * 4 * q_dim + 4.0 * spec.num_heads if attn != "eager" else 0.0
        out -= _norm(h, a, False, gemma) + sdpa + 4.0 * spec.num_heads * LITGPT_ADAPTER_PROMPT
    if t.adapter == 2:
        inter = spec.intermediate_size
        widths = (q_dim + 2 * kv_dim) + h + (2 * inter if spec.mlp_gated else inter) + h
        out += n_layers * a * widths
    return out


def loss_terms(spec: ModelSpec, batch: int, seq: int, a: float, trainable: TrainFlags, ce_chunks: int,
               compiled_loss: bool, ce_upcast: bool, fused_ce: str,
               logits_fp32: bool = False) -> tuple[int, int, int]:
    """The output head and loss: (what stays for backward, forward's transient, backward's transient) in bytes,
    by how the loss runs (transformers' upcast, torchtune's chunks, LitGPT's chunks, compiled, fused).
    ``logits_fp32``: the loop gets the model's output in fp32 (LitGPT: Lightning Fabric's ``_FabricModule.forward``
    hands it to the precision plugin's ``convert_output``, which casts it to torch's default dtype), so LitGPT's
    cross-entropy runs on fp32 chunks: its log-probabilities, the shifted chunk's copy and backward's gradients
    are fp32."""
    tokens = batch * seq
    if spec.kind == "encoder" and not spec.mlm_head:
        return 0, 0, 0
    v = spec.vocab_size
    upcast = 4.0 if a != 4.0 and ce_upcast else 0.0  # logits.float() copies only below fp32
    softcap = a if spec.logit_softcap else 0.0  # tanh output kept for backward
    # log_softmax keeps its output: fp32 after the upcast; without it (LitGPT's chunked_cross_entropy on the
    # 16-bit logits) in the compute dtype
    la = 4.0 if logits_fp32 else a  # the loss's input: the model's output as the loop receives it
    resident = int(tokens * ((4 if ce_upcast else la) + softcap) * v)
    fwd_extra, bwd_extra = int(tokens * (a + upcast) * v), int(tokens * 8 * v)
    if not ce_upcast:
        fwd_extra, bwd_extra = lowp_chunked_ce(batch, seq, la, v, ce_chunks)
    elif trainable.torchtune and ce_chunks == 1:
        # torchtune's model returns output(h).float(): only the fp32 logits outlive the model call
        fwd_extra = int(tokens * (upcast or a) * v)
    elif ce_chunks > 1:
        # all chunks' logits stay alive while the loss runs, but only one chunk's fp32 copy at a time;
        # backward's fp32 gradients (and the chunk's logits gradient) exist one chunk at a time
        chunk = -(-seq // ce_chunks) * batch
        fwd_extra = int(tokens * a * v + chunk * upcast * v)
        bwd_extra = int(chunk * 8 * v)  # two fp32 chunk gradients (traced: torchtune 4V + 1.0V)
    if compiled_loss:
        # torch.compile fuses upcast, log-softmax and NLL: the graph saves the logits it was given and one
        # fp32 log-sum-exp per row (bench/compile_loss.py); its backward writes the logits' gradient one chunk
        # (or the whole) at a time. torchtune's unchunked model upcasts inside the model (output(h).float()),
        # so the compiled loss keeps fp32 logits and backward also casts their gradient back
        chunk = -(-seq // ce_chunks) * batch
        given = (upcast or a) if (trainable.torchtune and ce_chunks == 1) else a
        resident = int(tokens * (given * v + 4))
        fwd_extra = 0
        bwd_extra = int(chunk * (given + (a if given != a else 0)) * v)
    if fused_ce and not compiled_loss:
        # the head and the loss run chunk by chunk inside forward, which writes the hidden states' gradient
        # (b·s·h in the compute dtype, saved for backward; no logits survive). Liger: one chunk's logits in the
        # compute dtype, overwritten in place by their gradient, and an fp32 loss per row; Unsloth: its
        # torch.compile'd grad_and_value of the chunk's loss, whose fused graph holds one chunk's logits in the
        # compute dtype (measured on CPU inductor: tests/test_stacks.py; eager, the fallback, holds a + 12 bytes
        # per logit). Backward scales the saved gradient (nothing V-wide)
        chunk = fused_ce_chunk(tokens, spec, fused_ce)
        resident = int(tokens * a * spec.hidden_size)
        fwd_extra = int(chunk * a * v + tokens * 4)
        bwd_extra = 0
    return resident, fwd_extra, bwd_extra


#: LitGPT's chunked_cross_entropy(chunk_size=128) on unchunked logits: rows (tokens) per cross-entropy call
LOWP_CE_ROWS = 128


def lowp_chunked_ce(batch: int, seq: int, a: float, v: int, ce_chunks: int) -> tuple[int, int]:
    """(forward, backward) transients of LitGPT's loss (``litgpt/utils.py chunked_cross_entropy``): cross-entropy
    on each 16-bit chunk of the logits, no fp32 copy. Forward: every chunk's logits alive, and with more than one
    sequence the shifted last chunk (``[..., :-1, :]``, not contiguous) copied by ``reshape(-1, V)`` (full
    fine-tuning: the whole shifted logits). Backward: a chunk's log-probability and logits gradients, three
    chunks' worth at its peak while one chunk's saved log-probabilities are already freed (traced: two chunks
    net). Unchunked logits (full.py) are split into 128-row calls."""
    tokens = batch * seq
    fwd = int(tokens * a * v)
    if ce_chunks > 1:
        per_chunk = -(-seq // ce_chunks)
        rows, last = per_chunk * batch, seq - (ce_chunks - 1) * per_chunk
    else:
        rows, last = min(tokens, LOWP_CE_ROWS), seq
    if batch > 1:
        fwd += int(batch * max(last - 1, 0) * a * v)
    return fwd, int(rows * 2 * a * v)


def inference_transient(spec: ModelSpec, batch: int, seq: int, a: float, attn: str = "sdpa",
                        all_logits: bool = False) -> int:
    """Peak transient bytes of one prefill forward over ``seq`` tokens (module docstring)."""
    tokens = batch * seq
    mlp = tokens * (3 * a * spec.intermediate_size)
    if spec.moe is not None:
        # transformers 5 runs routed experts as one grouped matmul over the k·tokens routed rows: gathered
        # input (h), fused gate/up output (2I), activation (I) and product (I) alive together
        moe = spec.moe
        k = moe.num_experts if spec.family.moe_dense_dispatch else moe.experts_per_token
        routed = tokens * k * a * (4 * moe.expert_intermediate_size + spec.hidden_size)
        shared = tokens * 3 * a * moe.shared_intermediate_size
        mlp = max(mlp if moe.dense_layers else 0, routed + (tokens * a * spec.hidden_size if shared else 0), shared)
    attention = tokens * a * (2 * spec.q_dim + 2 * spec.kv_dim)
    if attn == "eager":
        # scores + mask (a), their fp32 upcast inside softmax(dtype=float32) and its fp32 output (4 + 4)
        attention += tokens * (a + (8 if a != 4 else 4)) * spec.num_heads * seq
        # the decoder layer keeps the returned attention weights (in the compute dtype) through its MLP
        mlp += tokens * a * spec.num_heads * seq
    # masks live through the whole forward: eager builds 4-D float masks (a causal one, and a sliding one when
    # layers use windows); SDPA needs none unless a window forbids is_causal, then a boolean one
    if attn == "eager":
        masks = batch * seq * seq * a * (2 if spec.sliding_window else 1)
    else:
        masks = batch * seq * seq if spec.sliding_window else 0
    layer_peak = max(mlp, attention) + masks + tokens * 4 * a * spec.hidden_size
    logit_rows = tokens if all_logits else batch
    logits = logit_rows * spec.vocab_size * (a + 4)
    return int(max(layer_peak, logits + tokens * a * spec.hidden_size))
