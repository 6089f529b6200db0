"""Activations: what the forward pass keeps alive.

Training (autograd keeps what backward needs)
----------------------------------------------
For the Llama layout (Llama, Mistral, Qwen, Gemma, Phi-3, GLM, DeepSeek, …) the count follows the tensors the
Hugging Face code saves for backward, per token and layer, with ``a`` the compute dtype's bytes:

* each RMSNorm: its fp32 upcast of the input (4h), the normalized value cast back (a·h) and the output
  (a·h), i.e. ``h·(4 + 2a)`` (``LlamaRMSNorm.forward``);
* attention: rotated q and k, v, the kernel output and the re-laid-out input of ``o_proj``:
  ``a·(3·q_dim + 2·kv_dim)`` plus ``a·q_dim`` for the kernel output; eager attention adds the fp32 softmax
  and its cast copy, ``(4 + a)·heads·s`` per token, and repeats k/v to every head (``repeat_kv``);
  SDPA/flash keep no s² tensor;
* the gated MLP: gate output (saved by the activation), activation output and up output (saved by the
  product) and the product (saved by ``down_proj``): ``4·a·I``; a plain MLP ``2·a·I``;
* q/k norms (Qwen3, Gemma 3) add ``(4 + 2a)·(q_dim + kv_dim)``.

Then the final norm and the loss head: bf16 logits (a·V) plus the fp32 log-softmax the loss keeps (4·V)
per token; cross-entropy backward adds ``4·V`` per token transiently (``ForCausalLMLoss`` upcasts logits).
Measured in fake-tensor traces of Llama-style models this gives ≈ 49–51·h bytes per token and layer with
SDPA at bf16 (``shared/design/TRACE.md``). Other layouts (GPT-2, BERT, T5, Falcon, Phi-2) use Korthikanti et
al. 2022 (arXiv 2205.05198, eq. 2): ``s·b·h·(34 + 5·heads·s/h)`` bytes per layer at 16 bit without the s² term
when attention is not eager; this is coarser, and the estimate says so.

Gradient checkpointing (full): only each layer's input stays (``a·h`` per token and layer); backward
recomputes one layer at a time, so one layer's full activations come back on top.

Inference (no autograd): only transients live
---------------------------------------------
The peak inside one layer during prefill is the MLP: activation and up outputs alive while the product is
written (``3·a·I`` per token) beside the residual stream, the layer input and the normed input (``3·a·h``).
Eager attention peaks at the softmax: ``(a + 4)·heads·s`` per token. ``generate()`` computes logits for the
last position only (``logits_to_keep=1``) and copies them to fp32: ``b·V·(a + 4)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.spec import ModelSpec

ATTN_IMPLS = ("sdpa", "flash", "eager")


@dataclass(frozen=True)
class TrainingActivations:
    saved: int  # all tensors alive at the end of forward, layers and loss head
    layers: int  # the part held by the decoder layers
    loss_head: int  # logits and the loss's fp32 copy
    loss_backward: int  # transient of cross-entropy backward
    one_layer: int  # one layer's full activations (recomputed under checkpointing)


def _llama_layer_bytes(spec: ModelSpec, seq: int, a: float, attn: str) -> float:
    """Bytes saved for backward per token in one Llama-layout layer (module docstring)."""
    h, inter = spec.hidden_size, spec.intermediate_size
    q_dim, kv_dim = spec.q_dim, spec.kv_dim
    if spec.mla is not None:
        q_dim = spec.num_heads * spec.mla.qk_head_dim
        kv_dim = spec.num_heads * (spec.mla.qk_head_dim + spec.mla.v_head_dim) // 2
    if spec.moe is not None:
        # routed tokens go through k experts of the expert size; shared experts run on every token
        inter = spec.moe.experts_per_token * spec.moe.expert_intermediate_size + spec.moe.shared_intermediate_size
    norms = spec.norms_per_layer * h * (4 + 2 * a)
    if attn == "eager":
        attention = a * (3 * q_dim + 2 * q_dim) + (4 + a) * spec.num_heads * seq
    else:
        attention = a * (3 * q_dim + 2 * kv_dim)
    if spec.qk_norm:
        attention += (4 + 2 * a) * (q_dim + kv_dim)
    mlp = (4 if spec.mlp_gated else 2) * a * inter
    return norms + attention + mlp


def _korthikanti_layer_bytes(spec: ModelSpec, seq: int, a: float, attn: str) -> float:
    """Korthikanti et al. 2022 eq. 2 per token, scaled from 16-bit to ``a`` bytes."""
    h = spec.hidden_size
    s2 = 5 * spec.num_heads * seq / h if attn == "eager" else 0
    return h * (34 + s2) * a / 2


def layer_bytes_per_token(spec: ModelSpec, seq: int, a: float, attn: str) -> float:
    if spec.layout == "llama":
        return _llama_layer_bytes(spec, seq, a, attn)
    return _korthikanti_layer_bytes(spec, seq, a, attn)


def training_activations(spec: ModelSpec, batch: int, seq: int, a: float, attn: str = "sdpa",
                         checkpointing: bool = False) -> TrainingActivations:
    tokens = batch * seq
    per_layer = layer_bytes_per_token(spec, seq, a, attn)
    n_layers = spec.num_layers + spec.num_decoder_layers
    one_layer = int(tokens * per_layer)
    if checkpointing:
        layers = int(tokens * n_layers * a * spec.hidden_size)
    else:
        layers = one_layer * n_layers
    final_norm = int(tokens * spec.hidden_size * (4 + 2 * a))
    if spec.kind == "encoder" and not spec.mlm_head:
        loss_head = loss_bwd = 0
    else:
        loss_head = int(tokens * spec.vocab_size * (a + 4))
        loss_bwd = int(tokens * spec.vocab_size * 4)
    return TrainingActivations(saved=layers + final_norm + loss_head, layers=layers + final_norm,
                               loss_head=loss_head, loss_backward=loss_bwd, one_layer=one_layer)


def inference_transient(spec: ModelSpec, batch: int, seq: int, a: float, attn: str = "sdpa",
                        all_logits: bool = False) -> int:
    """Peak transient bytes of one prefill forward over ``seq`` tokens (module docstring)."""
    tokens = batch * seq
    inter = spec.intermediate_size
    if spec.moe is not None:
        inter = max(spec.intermediate_size if spec.moe.dense_layers else 0,
                    spec.moe.experts_per_token * spec.moe.expert_intermediate_size,
                    spec.moe.shared_intermediate_size)
    mlp = tokens * (3 * a * inter)
    attention = tokens * a * (2 * spec.q_dim + 2 * spec.kv_dim)
    if attn == "eager":
        attention += tokens * (a + 4) * spec.num_heads * seq
    layer_peak = max(mlp, attention) + tokens * 3 * a * spec.hidden_size
    logit_rows = tokens if all_logits else batch
    logits = logit_rows * spec.vocab_size * (a + 4)
    return int(max(layer_peak, logits + tokens * a * spec.hidden_size))
