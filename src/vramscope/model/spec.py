"""The model spec: everything the memory model needs to know about an architecture.

A :class:`ModelSpec` is built by a *source* (catalog, config.json, safetensors, GGUF, Hub, bare numbers) and
read by the estimators. It never reaches back to the source. The tensors a spec implies are listed by
:mod:`vramscope.model.tensors`; parameter counts are sums over that list, never hard-coded numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

FULL = "full_attention"
SLIDING = "sliding_attention"


@dataclass(frozen=True)
class MoESpec:
    """Mixture of experts: which layers route, to how many experts, and the shared experts beside them.

    ``shared_intermediate_size`` is the intermediate size of the single MLP that holds all shared experts
    (DeepSeek: ``moe_intermediate_size × n_shared_experts``; Qwen2-MoE: ``shared_expert_intermediate_size``).
    ``dense_layers`` lists the layers that keep an ordinary MLP of ``ModelSpec.intermediate_size``.
    """

    num_experts: int
    experts_per_token: int
    expert_intermediate_size: int
    shared_intermediate_size: int = 0
    shared_expert_gate: bool = False
    dense_layers: tuple[int, ...] = ()
    router_bias: bool = False


@dataclass(frozen=True)
class MLASpec:
    """Multi-head latent attention (DeepSeek-V2/V3, arXiv 2405.04434 §2.1).

    The KV cache holds one compressed latent of ``kv_lora_rank`` plus one shared RoPE key of
    ``qk_rope_head_dim`` per token and layer, instead of per-head keys and values.
    """

    q_lora_rank: Optional[int]
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim


@dataclass(frozen=True)
class VisionSpec:
    """A SigLIP-style vision tower and its projector (Gemma 3 multimodal checkpoints)."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    image_size: int
    patch_size: int
    num_channels: int = 3
    text_hidden_size: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """One architecture, as the memory model sees it.

    ``layout`` names how tensors are laid out and named (``llama``, ``phi``, ``falcon``, ``gpt2``, ``bert``,
    ``t5``); flags cover the variations inside a layout. ``layer_types`` holds one entry per decoder layer
    (``full_attention`` or ``sliding_attention``) when the model mixes them.
    """

    name: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    architecture: str = ""
    kind: str = "decoder"  # decoder | encoder | encoder-decoder
    layout: str = "llama"
    tie_embeddings: bool = False
    mlp_gated: bool = True
    activation: str = "silu"
    norm: str = "rmsnorm"  # rmsnorm | layernorm
    norm_bias: bool = False
    norms_per_layer: int = 2
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    qk_norm: bool = False
    fused_qkv: bool = False
    fused_gate_up: bool = False
    max_position_embeddings: int = 0
    learned_positions: int = 0
    token_types: int = 0
    sliding_window: Optional[int] = None
    attn_softcap: bool = False  # Gemma 2: tanh soft-capping of attention scores
    logit_softcap: bool = False  # Gemma 2: tanh soft-capping of the final logits
    layer_types: tuple[str, ...] = ()
    moe: Optional[MoESpec] = None
    mla: Optional[MLASpec] = None
    vision: Optional[VisionSpec] = None
    num_decoder_layers: int = 0
    relative_attention_buckets: int = 0
    pooler: bool = False
    mlm_head: bool = False
    dtype: str = ""
    quant_method: str = ""  # quantization_config.quant_method of a pre-quantized checkpoint
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    # ---- derived facts -------------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def layer_type(self, layer: int) -> str:
        """``full_attention`` or ``sliding_attention`` for decoder layer ``layer``."""
        if self.layer_types:
            return self.layer_types[layer]
        return SLIDING if self.sliding_window else FULL

    def is_moe_layer(self, layer: int) -> bool:
        return self.moe is not None and layer not in self.moe.dense_layers

    @property
    def params(self) -> int:
        """Total parameters, counted once (tied tensors once), from the tensor list."""
        from .tensors import count_params

        return count_params(self)

    @property
    def active_params(self) -> int:
        """Parameters used per token: all but the routed experts a token does not visit."""
        from .tensors import count_active_params

        return count_active_params(self)

    def with_overrides(self, **changes: object) -> "ModelSpec":
        return replace(self, **changes)
