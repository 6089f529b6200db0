"""The model spec: everything the memory model needs to know about an architecture.

A :class:`ModelSpec` is built by a *source* (catalog, config.json, safetensors, GGUF, Hub, bare numbers) and
read by the estimators. It never reaches back to the source. The tensors a spec implies are listed by
:mod:`vramscope.model.tensors`; parameter counts are sums over that list, never hard-coded numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional

from ..errors import VramscopeError
from .families import Family, family_of
from .limits import LIMITS, shown

#: the tower kinds of :mod:`vramscope.model.vision`
VISION_KINDS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "clip", "internvl", "mllama")

FULL = "full_attention"
SLIDING = "sliding_attention"

KINDS = ("decoder", "encoder", "encoder-decoder")
LAYOUT_NAMES = ("llama", "phi", "falcon", "gpt2", "bert", "t5", "gpt_neox", "bloom", "opt", "gptj", "gpt_bigcode",
                "mpt", "dbrx", "meta")
NORMS = ("rmsnorm", "layernorm")

#: the most parameters a spec may hold: 50× the largest real models (Switch-C 1.6T, Kimi K2 1.0T), as --params
MAX_SPEC_PARAMS = 10**14


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


#: what one decoder layer of a recurrent / hybrid model caches (:class:`StateSpec`): attention keys and values
#: (``full`` / ``sliding``), a fixed-size conv + recurrent state (``state``), both (``hybrid`` / ``hybrid_sliding``:
#: Falcon-H1, Zamba), or nothing (``none``: an MLP / MoE-only block, Nemotron-H)
STATE_KINDS = ("full", "sliding", "state", "hybrid", "hybrid_sliding", "none")


@dataclass(frozen=True)
class StateSpec:
    """The fixed-size caches of a state-space / linear-attention model (Mamba, Mamba2, Jamba, Bamba, Falcon-H1,
    Zamba, GraniteMoeHybrid, Nemotron-H, Qwen3-Next's gated delta net, LFM2's short convolution), per decoder
    layer: the kind of layer (:data:`STATE_KINDS`), the values of its causal-conv state (channels × kernel) and of
    its recurrent state (Mamba: channels × state size; Mamba2: heads × head size × state size; gated delta net:
    value heads × key size × value size) for one sequence. Independent of the sequence length."""

    kinds: tuple[str, ...]
    conv_values: tuple[int, ...]
    recurrent_values: tuple[int, ...]
    mixer: str = ""  # the token mixer's class, as transformers names it (MambaMixer, Qwen3NextGatedDeltaNet)
    #: per layer: the causal conv's kernel (``conv_values`` is channels × kernel; 0 where a layer has no state).
    #: transformers keeps the whole kernel window, the serving engines ``kernel − 1`` columns
    #: (:func:`vramscope.memory.kv_cache.engine_state_values`)
    conv_kernels: tuple[int, ...] = ()

    def engine_conv_values(self, layer: int) -> int:
        """The conv state values one sequence keeps in an engine that drops the column the next token shifts out
        (vLLM ``MambaStateShapeCalculator``: ``(conv_kernel − 1, conv_dim)``; llama.cpp ``n_embd_r()``:
        ``(ssm_d_conv − 1) × (d_inner + 2 × n_group × d_state)``)."""
        k = self.conv_kernels[layer] if layer < len(self.conv_kernels) else 0
        return self.conv_values[layer] // k * (k - 1) if k > 0 else self.conv_values[layer]

    def has_kv(self, layer: int) -> bool:
        return self.kinds[layer] in ("full", "sliding", "hybrid", "hybrid_sliding")

    def slides(self, layer: int) -> bool:
        return self.kinds[layer] in ("sliding", "hybrid_sliding")


@dataclass(frozen=True)
class CompressedKVSpec:
    """DeepSeek-V4's compressed attention, per decoder layer (transformers 5.24 ``modeling_deepseek_v4.py``): a
    layer without a compressor is a plain sliding layer (``DynamicSlidingWindowLayer``: separate keys and
    values); a CSA / HCA layer (``DeepseekV4CSACache`` / ``DeepseekV4HCACache``) keeps its sliding window once
    (keys and values are one tensor, ``self.values = self.keys``) and, for each of its compressors (the
    compressor, and the CSA layer's lightning indexer), ``(compress_rate, entry width, projection width)``: the
    projected ``kv`` and ``gate`` not yet compressed (``buffer_kv`` / ``buffer_gate``, views of the last
    concatenation), one compressed entry per ``compress_rate`` tokens (``compressed_kv``), and where the
    projection is twice the entry (CSA's overlapping windows) the last window's ``overlap_kv`` (the model's
    dtype) and ``overlap_gate`` (float32: the gate plus the float32 ``position_bias``)."""

    compressors: tuple[tuple[tuple[int, int, int], ...], ...]

    def has(self, layer: int) -> bool:
        return layer < len(self.compressors) and bool(self.compressors[layer])


@dataclass(frozen=True)
class VisionSpec:
    """A vision tower and its projector: SigLIP (Gemma 3), Llama 4's, and the kinds of
    :mod:`vramscope.model.vision` (Qwen2-VL / Qwen2.5-VL / Qwen3-VL, CLIP for LLaVA / LLaVA-NeXT, InternVL,
    Llama-3.2-Vision). ``image_size`` is 0 for the Qwen towers, which take any size (their processor's pixel
    bounds decide the tokens, :mod:`vramscope.memory.image_tokens`)."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    image_size: int
    patch_size: int
    num_channels: int = 3
    text_hidden_size: int = 0
    kind: str = "siglip"  # siglip (Gemma 3) | llama4 (Llama4VisionModel + pixel-shuffle adapter)
    output_dim: int = 0  # llama4: vision_output_dim, the projector's input
    projector_input_dim: int = 0  # llama4: the adapter's width
    projector_output_dim: int = 0
    temporal_patch_size: int = 0  # qwen: frames per Conv3d patch
    merge_size: int = 0  # qwen: spatial_merge_size; internvl: 1 / downsample_ratio (pixel shuffle)
    num_positions: int = 0  # qwen3_vl num_position_embeddings; internvl patches + 1 (0: no absolute positions)
    deepstack: int = 0  # qwen3_vl: deepstack mergers (len(deepstack_visual_indexes))
    feature_layers: int = 1  # llava: vision layers concatenated into the projector (a list vision_feature_layer)
    projector_bias: bool = True  # llava multimodal_projector_bias
    newline: bool = False  # llava_next image_newline
    qkv_bias: bool = False  # internvl attention_bias
    qk_norm: bool = False  # internvl use_qk_norm
    norm: str = "layernorm"  # internvl norm_type: layernorm | rmsnorm
    mean_pooling: bool = True  # internvl use_mean_pooling (False: a final LayerNorm)
    mask_token: bool = False  # internvl use_mask_token
    global_layers: int = 0  # mllama num_global_layers
    max_tiles: int = 0  # mllama max_num_tiles
    aspect_ratios: int = 0  # mllama len(supported_aspect_ratios)
    # what decides the tokens per image (memory/image_tokens.py)
    select_strategy: str = "default"  # llava vision_feature_select_strategy: default drops the CLS token, full not
    grid_pinpoints: tuple[tuple[int, int], ...] = ()  # llava_next image_grid_pinpoints, (height, width) each
    image_tokens: int = 0  # gemma3 mm_tokens_per_image, internvl image_seq_length: tokens per image (tile)
    #: the image/video processor's settings read from the model folder's processor config
    #: (:mod:`vramscope.sources.processor_config`), sorted (key, value) pairs; empty: the published defaults
    processor: tuple[tuple[str, Any], ...] = ()


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
    #: cached values (keys + values) per token of each decoder layer, where they are not ``2 × num_kv_heads ×
    #: head_dim`` in every layer: read from each layer's ``k_proj`` / ``v_proj`` widths on the meta device
    #: (MiMo-V2-Flash, transformers 5.24 ``MiMoV2FlashAttention``: keys of ``head_dim`` 192 and values of
    #: ``v_head_dim`` 128, twice the KV heads on its sliding layers); empty: uniform
    kv_values_per_layer: tuple[int, ...] = ()
    #: transformers broadcasts the K/V heads to every query head before caching them (Falcon's
    #: ``new_decoder_architecture``); vLLM and llama.cpp cache ``num_kv_heads``
    kv_broadcast: bool = False
    #: per decoder layer, (key/value heads, head size) of what the cache stores where layers differ (transformers'
    #: heterogeneous ``per_layer_config``: Gemma 4's full-attention layers have ``num_global_key_value_heads`` ×
    #: ``global_head_dim``), and (0, 0) for a layer that stores nothing (its cache is a ``DummyLayer``: Gemma 4's
    #: KV-shared layers, which read the last unshared layer of their type); () when every layer has
    #: ``num_kv_heads`` × ``head_dim`` (:func:`vramscope.sources.meta_device.layer_kv_dims`)
    layer_kv: tuple[tuple[int, int], ...] = ()
    moe: Optional[MoESpec] = None
    mla: Optional[MLASpec] = None
    vision: Optional[VisionSpec] = None
    #: Llama-3.2-Vision: decoder layers whose attention is cross-attention to the image states (no self-attention)
    cross_layers: tuple[int, ...] = ()
    state: Optional[StateSpec] = None  # conv / recurrent state caches of SSM and hybrid layers
    compressed: Optional[CompressedKVSpec] = None  # DeepSeek-V4's compressed attention caches
    num_decoder_layers: int = 0
    relative_attention_buckets: int = 0
    pooler: bool = False
    embed_dim: int = 0  # OPT word_embed_proj_dim, where it differs from hidden_size (0: the same)
    final_norm: bool = True  # the decoder's final norm holds parameters (OPT without do_layer_norm_before: none)
    mlm_head: bool = False
    #: layout ``meta``: the tensor inventory transformers built on the meta device (``tensors.Inventory``)
    inventory: Any = None
    dtype: str = ""
    quant_method: str = ""  # quantization_config.quant_method of a pre-quantized checkpoint
    #: the checkpoint's own weight storage (a memory/weights.py format; "" when not modelled) and the modules
    #: its quantization keeps in the compute dtype (sources/quant_config.py)
    quant_format: str = ""
    quant_skip: tuple[str, ...] = ()
    #: a ModelOpt MIXED_PRECISION checkpoint: (checkpoint module, format) per quantized_layers entry
    quant_layers: tuple[tuple[str, str], ...] = ()
    #: the KV cache dtype the checkpoint asks for ("fp8": a ModelOpt kv_cache_quant_algo FP8), which vLLM's
    #: kv_cache_dtype "auto" follows (engines/vllm.py); "" when it asks for none
    kv_quant: str = ""
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    # ---- derived facts -------------------------------------------------------------------------------
    @property
    def family(self) -> Family:
        """This model's row of the family table: the same for a Hugging Face config and its GGUF file."""
        return family_of(self.model_type, self.moe is not None)

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

    def derived(self, **changes: Any) -> "ModelSpec":
        """A copy with ``changes`` and without validation: for specs the estimators derive from a valid one
        (a tensor-parallel rank's slice, the hidden-size-wide part of a layer), never for what a source read."""
        new = object.__new__(ModelSpec)
        for f in fields(self):
            object.__setattr__(new, f.name, changes.pop(f.name) if f.name in changes else getattr(self, f.name))
        if changes:
            raise TypeError(f"unknown ModelSpec fields: {sorted(changes)}")
        return new

    # ---- validation ----------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        validate_spec(self)


def _where(spec: ModelSpec) -> str:
    return f"{shown(spec.source, 80)} " if spec.source else ""


def check_int(where: str, name: str, value: Any, limit: str, minimum: Optional[int] = None,
              given: Any = None) -> int:
    """``value`` as a whole number inside ``LIMITS[limit]`` (``minimum`` overrides its lower end), else the
    keyed error naming ``name`` and quoting ``given`` (what the source held; ``value`` by default). Shared by
    every source (config.json keys, GGUF metadata, ModelSpec fields)."""
    lim = LIMITS[limit]
    lo = lim.minimum if minimum is None else minimum
    text = shown(value if given is None else given)
    if isinstance(value, bool) or not isinstance(value, int):
        raise VramscopeError("shape_not_int", where=where, field=name, value=text, minimum=lo, maximum=lim.maximum)
    if value < lo:
        raise VramscopeError("shape_too_small", where=where, field=name, value=text, minimum=lo, maximum=lim.maximum)
    if value > lim.maximum:
        raise VramscopeError("shape_too_large", where=where, field=name, value=text, minimum=lo,
                             maximum=lim.maximum, real=lim.real)
    return value


def _decoder_count(s: ModelSpec) -> int:
    return s.num_decoder_layers if s.kind == "encoder-decoder" else s.num_layers


def validate_spec(s: ModelSpec) -> None:
    """Refuse a spec that cannot be a real model: every size a whole number inside :data:`LIMITS`, and
    consistent (key/value heads dividing the heads, top-k at most the experts, one layer type per layer)."""
    w = _where(s)
    for name in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                 "vocab_size", "max_position_embeddings", "learned_positions", "token_types", "num_decoder_layers",
                 "relative_attention_buckets", "norms_per_layer"):
        check_int(w, name, getattr(s, name), name)
    if s.kind not in KINDS:
        raise VramscopeError("shape_bad_choice", where=w, field="kind", value=shown(s.kind), allowed=", ".join(KINDS))
    if s.layout not in LAYOUT_NAMES:
        raise VramscopeError("shape_bad_choice", where=w, field="layout", value=shown(s.layout),
                             allowed=", ".join(LAYOUT_NAMES))
    if s.norm not in NORMS:
        raise VramscopeError("shape_bad_choice", where=w, field="norm", value=shown(s.norm), allowed=", ".join(NORMS))
    if s.num_heads % s.num_kv_heads:
        raise VramscopeError("shape_kv_heads", where=w, field="num_kv_heads", kv=s.num_kv_heads, heads=s.num_heads)
    check_int(w, "embed_dim", s.embed_dim, "hidden_size", minimum=0)
    if s.sliding_window is not None:
        check_int(w, "sliding_window", s.sliding_window, "sliding_window")
    if s.layer_types:
        if (not isinstance(s.layer_types, tuple) or len(s.layer_types) != s.num_layers
                or any(t not in (FULL, SLIDING) for t in s.layer_types)):
            raise VramscopeError("shape_layer_types", where=w, field="layer_types", value=shown(s.layer_types),
                                 layers=s.num_layers, allowed=f"{FULL} / {SLIDING}")
    if s.layout in ("gpt2", "bert"):
        check_int(w, "learned_positions", s.learned_positions, "learned_positions", minimum=1)
    if s.kind == "encoder-decoder":
        check_int(w, "num_decoder_layers", s.num_decoder_layers, "num_decoder_layers", minimum=1)
    if s.moe is not None:
        m = s.moe
        check_int(w, "num_experts", m.num_experts, "num_experts")
        check_int(w, "experts_per_token", m.experts_per_token, "experts_per_token")
        if m.experts_per_token > m.num_experts:
            raise VramscopeError("shape_top_k", where=w, field="experts_per_token", k=m.experts_per_token,
                                 n=m.num_experts)
        check_int(w, "expert_intermediate_size", m.expert_intermediate_size, "expert_intermediate_size")
        check_int(w, "shared_intermediate_size", m.shared_intermediate_size, "shared_intermediate_size")
        if not isinstance(m.dense_layers, tuple) or len(m.dense_layers) > s.num_layers:
            raise VramscopeError("shape_not_layers", where=w, field="dense_layers", value=shown(m.dense_layers),
                                 maximum=s.num_layers - 1)
        for i in m.dense_layers:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < s.num_layers:
                raise VramscopeError("shape_not_layers", where=w, field="dense_layers", value=shown(m.dense_layers),
                                     maximum=s.num_layers - 1)
    if s.mla is not None:
        a = s.mla
        if a.q_lora_rank is not None:
            check_int(w, "q_lora_rank", a.q_lora_rank, "q_lora_rank")
        for name in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            check_int(w, name, getattr(a, name), name)
    if s.state is not None:
        st = s.state
        n = _decoder_count(s)
        if (not all(isinstance(x, tuple) and len(x) == n for x in (st.kinds, st.conv_values, st.recurrent_values))
                or any(k not in STATE_KINDS for k in st.kinds)):
            raise VramscopeError("shape_layer_types", where=w, field="state.kinds", value=shown(st.kinds),
                                 layers=n, allowed=", ".join(STATE_KINDS))
        for name in ("conv_values", "recurrent_values"):
            for x in getattr(st, name):
                check_int(w, f"state.{name}", x, "state_values")
        if st.conv_kernels and (not isinstance(st.conv_kernels, tuple) or len(st.conv_kernels) != n):
            raise VramscopeError("shape_layer_types", where=w, field="state.conv_kernels",
                                 value=shown(st.conv_kernels), layers=n, allowed=", ".join(STATE_KINDS))
        for x in st.conv_kernels:
            check_int(w, "state.conv_kernels", x, "state_values")
    if s.vision is not None:
        v = s.vision
        any_size = v.kind in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
        for name, limit in (("hidden_size", "hidden_size"), ("intermediate_size", "intermediate_size"),
                            ("num_layers", "num_layers"), ("num_heads", "num_heads"),
                            ("patch_size", "patch_size"), ("num_channels", "num_channels"),
                            ("text_hidden_size", "hidden_size")):
            check_int(w, f"vision.{name}", getattr(v, name), limit)
        check_int(w, "vision.image_size", v.image_size, "image_size", minimum=0 if any_size else None)
        for name in ("output_dim", "projector_input_dim", "projector_output_dim", "num_positions"):
            check_int(w, f"vision.{name}", getattr(v, name), "intermediate_size", minimum=0)
        for name in ("temporal_patch_size", "merge_size", "deepstack", "feature_layers", "global_layers",
                     "max_tiles", "aspect_ratios"):
            check_int(w, f"vision.{name}", getattr(v, name), "vision_count", minimum=0)
        kinds = ("siglip", "llama4") + VISION_KINDS
        if v.kind not in kinds:
            raise VramscopeError("shape_bad_choice", where=w, field="vision.kind", value=shown(v.kind),
                                 allowed=", ".join(kinds))
        if not any_size and v.patch_size > v.image_size:
            raise VramscopeError("shape_patch", where=w, field="vision.patch_size", patch=v.patch_size,
                                 image=v.image_size)
    from .tensors import count_params

    total = count_params(s)
    if total > MAX_SPEC_PARAMS:
        raise VramscopeError("shape_too_large", where=w, field="parameters", value=f"{total:.3g}", minimum=1,
                             maximum=f"{MAX_SPEC_PARAMS:.0e}", real="1.6e+12 (Switch-C)")
