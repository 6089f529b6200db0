"""The tensors a :class:`ModelSpec` implies, named as the Hugging Face implementation names them.

Every parameter count, weight byte count and LoRA target in vramscope is a sum over this list, so exactness
is proven once: ``tests/test_meta_device.py`` builds each catalog model with transformers on the meta device
and requires the same total. Routed experts are listed once per layer with ``count = num_experts``.

Two views of the same list: :func:`tensors` names every tensor of every layer (what GGUF files and the
llama.cpp engine need), :func:`groups` lists each distinct layer's tensors once with the number of layers that
repeat it (:class:`TensorGroup`), so that sums over the model cost the same for 32 layers as for 1024. Every
count in the estimators is a sum over :func:`groups`; the two views hold the same totals (tests/test_hostile_config.py).
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Union

from .spec import ModelSpec


class Tensor(NamedTuple):
    name: str
    shape: tuple[int, ...]
    role: str  # embedding | position_embedding | lm_head | attention | mlp | expert | shared_expert | router | norm | vision | projector | pooler | head
    module: str = ""  # leaf module name as in the HF model (q_proj, down_proj, ...) for linear weights
    layer: Optional[int] = None
    count: int = 1  # identical copies (routed experts)
    linear: bool = False  # weight of an nn.Linear (quantizable, LoRA-targetable)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * self.count


class LayerSet:
    """Layer indices as sorted runs (``range`` objects), with counts below any index in O(log runs)."""

    __slots__ = ("runs", "_starts", "_before", "count")

    def __init__(self, runs: Iterable[range]) -> None:
        self.runs = tuple(r for r in runs if len(r))
        self._starts = [r.start for r in self.runs]
        self._before = []
        total = 0
        for r in self.runs:
            self._before.append(total)
            total += len(r)
        self.count = total

    @classmethod
    def of(cls, indices: Iterable[int]) -> "LayerSet":
        """From sorted, distinct indices (consecutive ones become one run)."""
        runs: list[range] = []
        start = prev = None
        for i in indices:
            if prev is not None and i == prev + 1:
                prev = i
                continue
            if start is not None:
                runs.append(range(start, prev + 1))
            start = prev = i
        if start is not None:
            runs.append(range(start, prev + 1))
        return cls(runs)

    @property
    def first(self) -> int:
        return self.runs[0].start

    def below(self, k: int) -> int:
        """How many indices are < ``k``."""
        j = bisect_right(self._starts, k - 1) - 1
        if j < 0:
            return 0
        r = self.runs[j]
        return self._before[j] + min(len(r), k - r.start)

    def between(self, lo: int, hi: int) -> int:
        """How many indices are in ``[lo, hi)``."""
        return self.below(hi) - self.below(lo) if hi > lo else 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerSet) and self.runs == other.runs

    def __hash__(self) -> int:
        return hash(self.runs)

    def __repr__(self) -> str:
        return f"LayerSet({list(self.runs)})"


NO_LAYERS = LayerSet(())


class TensorGroup(NamedTuple):
    """One tensor of :func:`tensors` standing for ``repeat`` identical ones: the same tensor in every layer of
    ``layers`` (named after the first), or a vision tower's per-layer tensors (``layers`` empty, as outside the
    decoder layers)."""

    tensor: Tensor
    repeat: int = 1
    layers: LayerSet = NO_LAYERS

    @property
    def numel(self) -> int:
        return self.tensor.numel * self.repeat


class _Layers(NamedTuple):
    """``n`` layers built by ``layer(i)``; ``kinds`` partitions ``range(n)`` into sets of identical layers."""

    layer: Callable[[int], Iterator[Tensor]]
    n: int
    kinds: tuple[LayerSet, ...]


_Item = Union[Tensor, _Layers]


def _kinds(n: int, special: Iterable[int] = ()) -> tuple[LayerSet, ...]:
    """``range(n)`` split into the ``special`` layers and the others (empty parts dropped)."""
    sp = sorted({i for i in special if 0 <= i < n})
    if not sp:
        return (LayerSet((range(n),)),) if n > 0 else ()
    rest, prev = [], 0
    for i in sp:
        if i > prev:
            rest.append(range(prev, i))
        prev = i + 1
    if prev < n:
        rest.append(range(prev, n))
    return tuple(k for k in (LayerSet.of(sp), LayerSet(rest)) if k.count)


def _linear(prefix: str, module: str, out_f: int, in_f: int, role: str, layer: Optional[int], bias: bool,
            count: int = 1) -> Iterator[Tensor]:
    yield Tensor(f"{prefix}{module}.weight", (out_f, in_f), role, module, layer, count, True)
    if bias:
        yield Tensor(f"{prefix}{module}.bias", (out_f,), role, module, layer, count, False)


def _norm(name: str, size: int, bias: bool, layer: Optional[int]) -> Iterator[Tensor]:
    yield Tensor(f"{name}.weight", (size,), "norm", "", layer)
    if bias:
        yield Tensor(f"{name}.bias", (size,), "norm", "", layer)


def _mlp(prefix: str, spec: ModelSpec, inter: int, role: str, layer: int, bias: bool, count: int = 1,
         names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> Iterator[Tensor]:
    h = spec.hidden_size
    gate, up, down = names
    if spec.mlp_gated:
        if spec.fused_gate_up and role == "mlp":
            yield from _linear(prefix, "gate_up_proj", 2 * inter, h, role, layer, bias, count)
        else:
            yield from _linear(prefix, gate, inter, h, role, layer, bias, count)
            yield from _linear(prefix, up, inter, h, role, layer, bias, count)
    else:
        yield from _linear(prefix, up, inter, h, role, layer, bias, count)
    yield from _linear(prefix, down, h, inter, role, layer, bias, count)


# ---- decoder layouts ----------------------------------------------------------------------------------

def _attention_llama(p: str, s: ModelSpec, i: int) -> Iterator[Tensor]:
    h = s.hidden_size
    if s.mla is not None:
        m = s.mla
        if m.q_lora_rank:
            yield from _linear(p, "q_a_proj", m.q_lora_rank, h, "attention", i, s.qkv_bias)
            yield from _norm(f"{p}q_a_layernorm", m.q_lora_rank, False, i)
            yield from _linear(p, "q_b_proj", s.num_heads * m.qk_head_dim, m.q_lora_rank, "attention", i, False)
        else:
            yield from _linear(p, "q_proj", s.num_heads * m.qk_head_dim, h, "attention", i, False)
        yield from _linear(p, "kv_a_proj_with_mqa", m.kv_lora_rank + m.qk_rope_head_dim, h, "attention", i,
                           s.qkv_bias)
        yield from _norm(f"{p}kv_a_layernorm", m.kv_lora_rank, False, i)
        yield from _linear(p, "kv_b_proj", s.num_heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank,
                           "attention", i, False)
        yield from _linear(p, "o_proj", h, s.num_heads * m.v_head_dim, "attention", i, s.o_bias)
        return
    if s.fused_qkv:
        yield from _linear(p, "qkv_proj", s.q_dim + 2 * s.kv_dim, h, "attention", i, s.qkv_bias)
    else:
        yield from _linear(p, "q_proj", s.q_dim, h, "attention", i, s.qkv_bias)
        yield from _linear(p, "k_proj", s.kv_dim, h, "attention", i, s.qkv_bias)
        yield from _linear(p, "v_proj", s.kv_dim, h, "attention", i, s.qkv_bias)
    yield from _linear(p, "o_proj", h, s.q_dim, "attention", i, s.o_bias)
    if s.family.attn_sinks:
        yield Tensor(f"{p}sinks", (s.num_heads,), "attention", "", i)
    if s.qk_norm:
        shape = s.family.qk_norm_shape
        if shape == "full":  # OLMo 2 / OLMoE: over all heads at once
            yield from _norm(f"{p}q_norm", s.q_dim, False, i)
            yield from _norm(f"{p}k_norm", s.kv_dim, False, i)
        elif shape == "per_head":  # Cohere: one LayerNorm weight per head, [heads, head_dim]
            yield Tensor(f"{p}q_norm.weight", (s.num_heads, s.head_dim), "norm", "", i)
            yield Tensor(f"{p}k_norm.weight", (s.num_kv_heads, s.head_dim), "norm", "", i)
        elif shape == "per_head_list":  # StableLM: a ModuleList of LayerNorms, one per head
            for j in range(s.num_heads):
                yield from _norm(f"{p}q_layernorm.norms.{j}", s.head_dim, False, i)
            for j in range(s.num_kv_heads):
                yield from _norm(f"{p}k_layernorm.norms.{j}", s.head_dim, False, i)
        else:
            yield from _norm(f"{p}q_norm", s.head_dim, False, i)
            yield from _norm(f"{p}k_norm", s.head_dim, False, i)


_NORM_NAMES = {
    1: ("input_layernorm",),
    2: ("input_layernorm", "post_attention_layernorm"),
    4: ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
}


_MLP_NAMES = ("gate_proj", "up_proj", "down_proj")


def _layer_llama(s: ModelSpec, root: str, i: int, moe_layer: bool) -> Iterator[Tensor]:
    p = f"{root}layers.{i}."
    if i in s.cross_layers:  # MllamaCrossAttentionDecoderLayer: gated cross-attention instead of self-attention
        yield Tensor(p + "cross_attn_attn_gate", (1,), "attention", "", i)
        yield Tensor(p + "cross_attn_mlp_gate", (1,), "attention", "", i)
        yield from _attention_llama(p + "cross_attn.", s.derived(qk_norm=True, cross_layers=()), i)
    else:
        yield from _attention_llama(p + "self_attn.", s, i)
    fam = s.family
    mp = p + (fam.moe_prefix if moe_layer else fam.mlp_prefix)
    if moe_layer:
        moe = s.moe
        assert moe is not None
        yield from _linear(mp, fam.router_name, moe.num_experts, s.hidden_size, "router", i, moe.router_bias)
        yield from _mlp(mp + "experts.*.", s, moe.expert_intermediate_size, "expert", i, fam.expert_bias,
                        count=moe.num_experts)
        if moe.shared_intermediate_size:
            shared = fam.shared_name or ("shared_expert." if moe.shared_expert_gate else "shared_experts.")
            yield from _mlp(mp + shared, s, moe.shared_intermediate_size, "shared_expert", i, False)
        if moe.shared_expert_gate:
            yield from _linear(mp, "shared_expert_gate", 1, s.hidden_size, "router", i, False)
    else:
        yield from _mlp(mp, s, s.intermediate_size, "mlp", i, s.mlp_bias, names=fam.mlp_names or _MLP_NAMES)
    if fam.norm_free:  # OLMo: LayerNorm without parameters
        return
    names = fam.norm_names or _NORM_NAMES[s.norms_per_layer]
    for n in names:
        yield from _norm(p + n, s.hidden_size, s.norm_bias, i)


def _layers_llama(s: ModelSpec, root: str = "model.") -> _Layers:
    """The decoder layers: MoE layers and dense ones (``moe.dense_layers``) are the two kinds."""
    dense = frozenset(s.moe.dense_layers) if s.moe is not None else frozenset()
    moe = s.moe is not None
    special = dense if moe else frozenset(s.cross_layers)
    return _Layers(lambda i: _layer_llama(s, root, i, moe and i not in dense), s.num_layers,
                   _kinds(s.num_layers, special))


def _tensors_llama(s: ModelSpec) -> Iterator[_Item]:
    h, v = s.hidden_size, s.vocab_size
    text = s.family.text_prefix if s.vision else ""
    root = f"{text}model." if text else ("model.language_model." if s.vision else "model.")
    # MllamaTextModel: nn.Embedding(vocab_size + 8, hidden): eight rows beyond the vocabulary (the lm_head has not)
    rows = v + (8 if s.vision is not None and s.vision.kind == "mllama" else 0)
    yield Tensor(f"{root}embed_tokens.weight", (rows, h), "embedding")
    yield _layers_llama(s, root)
    if not s.family.norm_free:
        yield from _norm(f"{root}norm", h, s.norm_bias, None)
    if not s.tie_embeddings:
        yield Tensor(f"{text}lm_head.weight", (v, h), "lm_head", "lm_head", None, 1, True)
    if s.lm_head_bias:  # PhiMoE lm_head_bias
        yield Tensor(f"{text}lm_head.bias", (v,), "lm_head", "lm_head")
    if s.vision:
        from . import vision

        if s.vision.kind in vision.KINDS:
            yield from vision.tensors(s)
        else:
            yield from (_tensors_vision_llama4(s) if s.vision.kind == "llama4" else _tensors_vision(s))


def _tensors_vision_llama4(s: ModelSpec) -> Iterator[_Item]:
    """Llama 4's vision tower, pixel-shuffle adapter and projector (transformers ``modeling_llama4.py``
    ``Llama4VisionModel``, ``Llama4VisionMLP2``, ``Llama4MultiModalProjector``)."""
    vs = s.vision
    assert vs is not None
    hv, p = vs.hidden_size, "vision_model."
    yield Tensor(p + "class_embedding", (hv,), "vision")
    yield Tensor(p + "positional_embedding_vlm", ((vs.image_size // vs.patch_size) ** 2 + 1, hv), "vision")
    yield from _linear(p + "patch_embedding.", "linear", hv, vs.num_channels * vs.patch_size ** 2, "vision", None,
                       False)
    yield from _norm(p + "layernorm_pre", hv, True, None)
    yield from _norm(p + "layernorm_post", hv, True, None)

    def layer(i: int) -> Iterator[Tensor]:
        lp = f"{p}model.layers.{i}."
        for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield from _linear(lp + "self_attn.", m, hv, hv, "vision", None, True)
        yield from _linear(lp + "mlp.", "fc1", vs.intermediate_size, hv, "vision", None, True)
        yield from _linear(lp + "mlp.", "fc2", hv, vs.intermediate_size, "vision", None, True)
        yield from _norm(lp + "input_layernorm", hv, True, None)
        yield from _norm(lp + "post_attention_layernorm", hv, True, None)

    yield _Layers(layer, vs.num_layers, _kinds(vs.num_layers))
    yield from _linear(p + "vision_adapter.mlp.", "fc1", vs.projector_input_dim, vs.intermediate_size, "vision",
                       None, False)
    yield from _linear(p + "vision_adapter.mlp.", "fc2", vs.projector_output_dim, vs.projector_output_dim,
                       "vision", None, False)
    yield from _linear("multi_modal_projector.", "linear_1", vs.text_hidden_size, vs.output_dim, "projector",
                       None, False)


def _tensors_vision(s: ModelSpec) -> Iterator[_Item]:
    """SigLIP vision tower + Gemma 3 multimodal projector (transformers ``modeling_siglip.py``, ``gemma3``)."""
    vs = s.vision
    assert vs is not None
    hv, p = vs.hidden_size, "model.vision_tower.vision_model."
    yield Tensor(p + "embeddings.patch_embedding.weight", (hv, vs.num_channels, vs.patch_size, vs.patch_size),
                 "vision")
    yield Tensor(p + "embeddings.patch_embedding.bias", (hv,), "vision")
    yield Tensor(p + "embeddings.position_embedding.weight", ((vs.image_size // vs.patch_size) ** 2, hv), "vision")

    def layer(i: int) -> Iterator[Tensor]:
        lp = f"{p}encoder.layers.{i}."
        yield Tensor(lp + "layer_norm1.weight", (hv,), "vision")
        yield Tensor(lp + "layer_norm1.bias", (hv,), "vision")
        for m in ("k_proj", "v_proj", "q_proj", "out_proj"):
            yield from _linear(lp + "self_attn.", m, hv, hv, "vision", None, True)
        yield Tensor(lp + "layer_norm2.weight", (hv,), "vision")
        yield Tensor(lp + "layer_norm2.bias", (hv,), "vision")
        yield from _linear(lp + "mlp.", "fc1", vs.intermediate_size, hv, "vision", None, True)
        yield from _linear(lp + "mlp.", "fc2", hv, vs.intermediate_size, "vision", None, True)

    yield _Layers(layer, vs.num_layers, _kinds(vs.num_layers))
    yield Tensor(p + "post_layernorm.weight", (hv,), "vision")
    yield Tensor(p + "post_layernorm.bias", (hv,), "vision")
    yield Tensor("model.multi_modal_projector.mm_input_projection_weight", (hv, vs.text_hidden_size), "projector")
    yield Tensor("model.multi_modal_projector.mm_soft_emb_norm.weight", (hv,), "projector")


def _tensors_phi(s: ModelSpec) -> Iterator[_Item]:
    """microsoft/phi-1.5, phi-2 (``modeling_phi.py``): parallel attention and MLP under one LayerNorm."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("model.embed_tokens.weight", (v, h), "embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"model.layers.{i}."
        for m, out_f in (("q_proj", s.q_dim), ("k_proj", s.kv_dim), ("v_proj", s.kv_dim)):
            yield from _linear(p + "self_attn.", m, out_f, h, "attention", i, True)
        yield from _linear(p + "self_attn.", "dense", h, s.q_dim, "attention", i, True)
        if s.qk_norm:
            yield from _norm(p + "self_attn.q_layernorm", s.head_dim, True, i)
            yield from _norm(p + "self_attn.k_layernorm", s.head_dim, True, i)
        yield from _linear(p + "mlp.", "fc1", s.intermediate_size, h, "mlp", i, True)
        yield from _linear(p + "mlp.", "fc2", h, s.intermediate_size, "mlp", i, True)
        yield from _norm(p + "input_layernorm", h, True, i)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("model.final_layernorm", h, True, None)
    if not s.tie_embeddings:
        yield Tensor("lm_head.weight", (v, h), "lm_head", "lm_head", None, 1, True)
    if s.lm_head_bias:
        yield Tensor("lm_head.bias", (v,), "lm_head", "lm_head")


def _tensors_falcon(s: ModelSpec) -> Iterator[_Item]:
    """tiiuae/falcon-* (``modeling_falcon.py``): fused query_key_value, parallel attention, 1 or 2 LayerNorms."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("transformer.word_embeddings.weight", (v, h), "embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.h.{i}."
        yield from _linear(p + "self_attention.", "query_key_value", s.q_dim + 2 * s.kv_dim, h, "attention", i,
                           s.qkv_bias)
        yield from _linear(p + "self_attention.", "dense", h, s.q_dim, "attention", i, s.qkv_bias)
        yield from _linear(p + "mlp.", "dense_h_to_4h", s.intermediate_size, h, "mlp", i, s.mlp_bias)
        yield from _linear(p + "mlp.", "dense_4h_to_h", h, s.intermediate_size, "mlp", i, s.mlp_bias)
        norms = {1: ("input_layernorm",), 2: ("ln_attn", "ln_mlp"), 3: ("input_layernorm", "post_attention_layernorm")}
        for n in norms[s.norms_per_layer]:
            yield from _norm(p + n, h, True, i)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.ln_f", h, True, None)
    if not s.tie_embeddings:
        yield Tensor("lm_head.weight", (v, h), "lm_head", "lm_head", None, 1, True)


def _tensors_gpt2(s: ModelSpec) -> Iterator[_Item]:
    """openai-community/gpt2 (``modeling_gpt2.py``): Conv1D layers (weights stored transposed), learned positions."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("transformer.wte.weight", (v, h), "embedding")
    yield Tensor("transformer.wpe.weight", (s.learned_positions, h), "position_embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.h.{i}."
        yield from _norm(p + "ln_1", h, True, i)
        yield from _linear(p + "attn.", "c_attn", 3 * h, h, "attention", i, True)
        yield from _linear(p + "attn.", "c_proj", h, h, "attention", i, True)
        yield from _norm(p + "ln_2", h, True, i)
        yield from _linear(p + "mlp.", "c_fc", s.intermediate_size, h, "mlp", i, True)
        yield from _linear(p + "mlp.", "c_proj", h, s.intermediate_size, "mlp", i, True)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.ln_f", h, True, None)
    if not s.tie_embeddings:
        yield Tensor("lm_head.weight", (v, h), "lm_head", "lm_head", None, 1, True)


def _tensors_bert(s: ModelSpec) -> Iterator[_Item]:
    """BERT / RoBERTa encoders (``modeling_bert.py``, ``modeling_roberta.py``) with the pooler or MLM head."""
    h, v = s.hidden_size, s.vocab_size
    root = s.family.tensor_root or "bert."
    yield Tensor(root + "embeddings.word_embeddings.weight", (v, h), "embedding")
    yield Tensor(root + "embeddings.position_embeddings.weight", (s.learned_positions, h), "position_embedding")
    if s.token_types:
        yield Tensor(root + "embeddings.token_type_embeddings.weight", (s.token_types, h), "position_embedding")
    yield from _norm(root + "embeddings.LayerNorm", h, True, None)

    def layer(i: int) -> Iterator[Tensor]:
        p = f"{root}encoder.layer.{i}."
        for m in ("query", "key", "value"):
            yield from _linear(p + "attention.self.", m, h, h, "attention", i, True)
        yield from _linear(p + "attention.output.", "dense", h, h, "attention", i, True)
        yield from _norm(p + "attention.output.LayerNorm", h, True, i)
        yield from _linear(p + "intermediate.", "dense", s.intermediate_size, h, "mlp", i, True)
        yield from _linear(p + "output.", "dense", h, s.intermediate_size, "mlp", i, True)
        yield from _norm(p + "output.LayerNorm", h, True, i)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    if s.pooler:
        yield from _linear(root + "pooler.", "dense", h, h, "pooler", None, True)
    if s.mlm_head:
        hp = "cls.predictions." if root == "bert." else "lm_head."
        dense = "transform.dense" if root == "bert." else "dense"
        ln = "transform.LayerNorm" if root == "bert." else "layer_norm"
        yield from _linear(hp, dense, h, h, "head", None, True)
        yield from _norm(hp + ln, h, True, None)
        if not s.tie_embeddings:
            yield Tensor(hp + "decoder.weight", (v, h), "lm_head", "decoder", None, 1, True)
        yield Tensor(hp + "bias", (v,), "head")


def _layer_t5(s: ModelSpec, stack: str, is_decoder: bool, i: int) -> Iterator[Tensor]:
    d, inner = s.hidden_size, s.q_dim
    p = f"{stack}.block.{i}.layer."
    attn = ["0.SelfAttention."] + (["1.EncDecAttention."] if is_decoder else [])
    for j, a in enumerate(attn):
        for m in ("q", "k", "v"):
            yield from _linear(p + a, m, inner, d, "attention", i, False)
        yield from _linear(p + a, "o", d, inner, "attention", i, False)
        if i == 0 and j == 0:
            yield Tensor(p + a + "relative_attention_bias.weight", (s.relative_attention_buckets,
                                                                   s.num_heads), "attention")
        yield from _norm(f"{p}{j}.layer_norm", d, False, i)
    ff = f"{p}{len(attn)}.DenseReluDense."
    if s.mlp_gated:
        yield from _linear(ff, "wi_0", s.intermediate_size, d, "mlp", i, False)
        yield from _linear(ff, "wi_1", s.intermediate_size, d, "mlp", i, False)
    else:
        yield from _linear(ff, "wi", s.intermediate_size, d, "mlp", i, False)
    yield from _linear(ff, "wo", d, s.intermediate_size, "mlp", i, False)
    yield from _norm(f"{p}{len(attn)}.layer_norm", d, False, i)


def _tensors_t5(s: ModelSpec) -> Iterator[_Item]:
    """T5 / Flan-T5 (``modeling_t5.py``): shared embedding, relative position bias in block 0 of each stack."""
    d, v = s.hidden_size, s.vocab_size
    yield Tensor("shared.weight", (v, d), "embedding")
    stacks = (("encoder", s.num_layers, False), ("decoder", s.num_decoder_layers, True))
    for stack, n_layers, is_decoder in stacks:
        # block 0 holds the relative position bias: a kind of its own
        yield _Layers(lambda i, stack=stack, dec=is_decoder: _layer_t5(s, stack, dec, i), n_layers,
                      _kinds(n_layers, (0,)))
        yield from _norm(f"{stack}.final_layer_norm", d, False, None)
    if not s.tie_embeddings:
        yield Tensor("lm_head.weight", (v, d), "lm_head", "lm_head", None, 1, True)


def _lm_head(s: ModelSpec, width: int = 0) -> Iterator[Tensor]:
    if not s.tie_embeddings:
        yield Tensor("lm_head.weight", (s.vocab_size, width or s.hidden_size), "lm_head", "lm_head", None, 1, True)
    if s.lm_head_bias:
        yield Tensor("lm_head.bias", (s.vocab_size,), "lm_head", "lm_head")


def _tensors_gpt_neox(s: ModelSpec) -> Iterator[_Item]:
    """EleutherAI GPT-NeoX / Pythia (``modeling_gpt_neox.py``): fused query_key_value, two LayerNorms a layer
    (``use_parallel_residual`` changes the order, not the tensors)."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("gpt_neox.embed_in.weight", (v, h), "embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"gpt_neox.layers.{i}."
        yield from _norm(p + "input_layernorm", h, True, i)
        yield from _norm(p + "post_attention_layernorm", h, True, i)
        yield from _linear(p + "attention.", "query_key_value", 3 * s.q_dim, h, "attention", i, s.qkv_bias)
        yield from _linear(p + "attention.", "dense", h, s.q_dim, "attention", i, s.o_bias)
        yield from _linear(p + "mlp.", "dense_h_to_4h", s.intermediate_size, h, "mlp", i, s.mlp_bias)
        yield from _linear(p + "mlp.", "dense_4h_to_h", h, s.intermediate_size, "mlp", i, s.mlp_bias)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("gpt_neox.final_layer_norm", h, True, None)
    yield from _lm_head(s)


def _tensors_bloom(s: ModelSpec) -> Iterator[_Item]:
    """BigScience BLOOM (``modeling_bloom.py``): ALiBi (no position parameters), a LayerNorm on the embeddings."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("transformer.word_embeddings.weight", (v, h), "embedding")
    yield from _norm("transformer.word_embeddings_layernorm", h, True, None)

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.h.{i}."
        yield from _norm(p + "input_layernorm", h, True, i)
        yield from _linear(p + "self_attention.", "query_key_value", 3 * h, h, "attention", i, True)
        yield from _linear(p + "self_attention.", "dense", h, h, "attention", i, True)
        yield from _norm(p + "post_attention_layernorm", h, True, i)
        yield from _linear(p + "mlp.", "dense_h_to_4h", s.intermediate_size, h, "mlp", i, True)
        yield from _linear(p + "mlp.", "dense_4h_to_h", h, s.intermediate_size, "mlp", i, True)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.ln_f", h, True, None)
    yield from _lm_head(s)


def _tensors_opt(s: ModelSpec) -> Iterator[_Item]:
    """Meta OPT (``modeling_opt.py``): learned positions offset by 2, embeddings of ``word_embed_proj_dim``
    projected in and out when it differs from the hidden size (OPT-350m), a final LayerNorm only with
    ``do_layer_norm_before`` (``final_norm``)."""
    h, v, e = s.hidden_size, s.vocab_size, s.embed_dim or s.hidden_size
    p = "model.decoder."
    yield Tensor(p + "embed_tokens.weight", (v, e), "embedding")
    yield Tensor(p + "embed_positions.weight", (s.learned_positions + 2, h), "position_embedding")
    if s.final_norm:
        yield from _norm(p + "final_layer_norm", h, s.norm_bias, None)
    if e != h:
        yield from _linear(p, "project_out", e, h, "projector", None, False)
        yield from _linear(p, "project_in", h, e, "projector", None, False)

    def layer(i: int) -> Iterator[Tensor]:
        lp = f"{p}layers.{i}."
        for m in ("k_proj", "v_proj", "q_proj", "out_proj"):
            yield from _linear(lp + "self_attn.", m, h, h, "attention", i, s.qkv_bias)
        yield from _norm(lp + "self_attn_layer_norm", h, s.norm_bias, i)
        yield from _linear(lp, "fc1", s.intermediate_size, h, "mlp", i, s.mlp_bias)
        yield from _linear(lp, "fc2", h, s.intermediate_size, "mlp", i, s.mlp_bias)
        yield from _norm(lp + "final_layer_norm", h, s.norm_bias, i)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _lm_head(s, e)


def _tensors_gptj(s: ModelSpec) -> Iterator[_Item]:
    """EleutherAI GPT-J (``modeling_gptj.py``): one LayerNorm a layer, parallel attention and MLP, biased head."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("transformer.wte.weight", (v, h), "embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.h.{i}."
        yield from _norm(p + "ln_1", h, True, i)
        for m in ("k_proj", "v_proj", "q_proj"):
            yield from _linear(p + "attn.", m, s.q_dim, h, "attention", i, False)
        yield from _linear(p + "attn.", "out_proj", h, s.q_dim, "attention", i, False)
        yield from _linear(p + "mlp.", "fc_in", s.intermediate_size, h, "mlp", i, True)
        yield from _linear(p + "mlp.", "fc_out", h, s.intermediate_size, "mlp", i, True)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.ln_f", h, True, None)
    yield from _lm_head(s)


def _tensors_gpt_bigcode(s: ModelSpec) -> Iterator[_Item]:
    """BigCode GPTBigCode / StarCoder / SantaCoder (``modeling_gpt_bigcode.py``): GPT-2 with multi-query attention
    (``c_attn`` = h + 2 head_dim) and nn.Linear layers."""
    h, v = s.hidden_size, s.vocab_size
    yield Tensor("transformer.wte.weight", (v, h), "embedding")
    yield Tensor("transformer.wpe.weight", (s.learned_positions, h), "position_embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.h.{i}."
        yield from _norm(p + "ln_1", h, True, i)
        yield from _linear(p + "attn.", "c_attn", s.q_dim + 2 * s.kv_dim, h, "attention", i, True)
        yield from _linear(p + "attn.", "c_proj", h, s.q_dim, "attention", i, True)
        yield from _norm(p + "ln_2", h, True, i)
        yield from _linear(p + "mlp.", "c_fc", s.intermediate_size, h, "mlp", i, True)
        yield from _linear(p + "mlp.", "c_proj", h, s.intermediate_size, "mlp", i, True)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.ln_f", h, True, None)
    yield from _lm_head(s)


def _tensors_mpt(s: ModelSpec) -> Iterator[_Item]:
    """MosaicML MPT (``modeling_mpt.py``): ALiBi, fused Wqkv, no biases with ``no_bias`` (norms included)."""
    h, v = s.hidden_size, s.vocab_size
    b = s.qkv_bias
    yield Tensor("transformer.wte.weight", (v, h), "embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.blocks.{i}."
        yield from _norm(p + "norm_1", h, s.norm_bias, i)
        yield from _linear(p + "attn.", "Wqkv", 3 * h, h, "attention", i, b)
        yield from _linear(p + "attn.", "out_proj", h, h, "attention", i, b)
        yield from _norm(p + "norm_2", h, s.norm_bias, i)
        yield from _linear(p + "ffn.", "up_proj", s.intermediate_size, h, "mlp", i, b)
        yield from _linear(p + "ffn.", "down_proj", h, s.intermediate_size, "mlp", i, b)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.norm_f", h, s.norm_bias, None)
    yield from _lm_head(s)


def _tensors_dbrx(s: ModelSpec) -> Iterator[_Item]:
    """Databricks DBRX (``modeling_dbrx.py``): fused Wqkv, bias-free LayerNorms, a router and per-projection
    expert matrices ``[E·I, h]`` (w1, v1, w2), listed as one ``[I, h]`` matrix with ``count = E``."""
    h, v = s.hidden_size, s.vocab_size
    moe = s.moe
    assert moe is not None
    yield Tensor("transformer.wte.weight", (v, h), "embedding")

    def layer(i: int) -> Iterator[Tensor]:
        p = f"transformer.blocks.{i}."
        yield from _norm(p + "norm_attn_norm.norm_1", h, False, i)
        yield from _linear(p + "norm_attn_norm.attn.", "Wqkv", s.q_dim + 2 * s.kv_dim, h, "attention", i, False)
        yield from _linear(p + "norm_attn_norm.attn.", "out_proj", h, s.q_dim, "attention", i, False)
        yield from _norm(p + "norm_attn_norm.norm_2", h, False, i)
        yield from _linear(p + "ffn.router.", "layer", moe.num_experts, h, "router", i, False)
        for m in ("w1", "v1", "w2"):
            yield Tensor(f"{p}ffn.experts.mlp.{m}", (moe.expert_intermediate_size, h), "expert", m, i,
                         moe.num_experts, True)

    yield _Layers(layer, s.num_layers, _kinds(s.num_layers))
    yield from _norm("transformer.norm_f", h, False, None)
    yield from _lm_head(s)


class MetaStack(NamedTuple):
    """A list of blocks of a model built on the meta device (``model.layers``, ``encoder.block``): each kind of
    identical block once, as tensors named relative to the block (``self_attn.q_proj.weight``)."""

    prefix: str  # "model.layers."
    n: int
    kinds: tuple[tuple[LayerSet, tuple[Tensor, ...]], ...]
    numbered: bool = True  # its blocks count as decoder layers (Tensor.layer); False: a vision tower's


class Inventory(NamedTuple):
    """The exact tensors of a model transformers built on the meta device (``sources/meta_device.py``):
    tensors outside the block lists, the block lists, and the names tied to a kept tensor (counted once)."""

    loose: tuple[Tensor, ...]
    stacks: tuple[MetaStack, ...]
    tied: tuple[tuple[str, str], ...] = ()  # (tied name, the name it shares storage with)


def _stack_layers(st: MetaStack) -> _Layers:
    where = {}
    for layers, template in st.kinds:
        for r in layers.runs:
            for i in r:
                where[i] = template

    def layer(i: int) -> Iterator[Tensor]:
        for t in where[i]:
            yield t._replace(name=f"{st.prefix}{i}.{t.name}", layer=i if st.numbered else None)

    return _Layers(layer, st.n, tuple(k for k, _ in st.kinds))


def _tensors_meta(s: ModelSpec) -> Iterator[_Item]:
    """The inventory transformers itself built (layout ``meta``: architectures not built in)."""
    inv = s.inventory
    yield from inv.loose
    for st in inv.stacks:
        yield _stack_layers(st)


_LAYOUTS = {
    "llama": _tensors_llama,
    "phi": _tensors_phi,
    "falcon": _tensors_falcon,
    "gpt2": _tensors_gpt2,
    "bert": _tensors_bert,
    "t5": _tensors_t5,
    "gpt_neox": _tensors_gpt_neox,
    "bloom": _tensors_bloom,
    "opt": _tensors_opt,
    "gptj": _tensors_gptj,
    "gpt_bigcode": _tensors_gpt_bigcode,
    "mpt": _tensors_mpt,
    "dbrx": _tensors_dbrx,
    "meta": _tensors_meta,
}

LAYOUTS = tuple(_LAYOUTS)


@lru_cache(maxsize=16)
def tensors(spec: ModelSpec) -> tuple[Tensor, ...]:
    """All parameter tensors of ``spec`` (tied ones once), as the HF implementation names them, layer by layer
    (cached). Sums over the model use :func:`groups`, whose cost does not grow with the layers."""
    out: list[Tensor] = []
    for item in _LAYOUTS[spec.layout](spec):
        if isinstance(item, _Layers):
            for i in range(item.n):
                out.extend(item.layer(i))
        else:
            out.append(item)
    return tuple(out)


@lru_cache(maxsize=64)
def groups(spec: ModelSpec) -> tuple[TensorGroup, ...]:
    """:func:`tensors` with identical layers grouped: each kind of layer once, ``repeat`` times (cached)."""
    out: list[TensorGroup] = []
    for item in _LAYOUTS[spec.layout](spec):
        if isinstance(item, _Layers):
            for kind in item.kinds:
                for t in item.layer(kind.first):
                    out.append(TensorGroup(t, kind.count, kind if t.layer is not None else NO_LAYERS))
        else:
            out.append(TensorGroup(item))
    return tuple(out)


@lru_cache(maxsize=64)
def layer_kinds(spec: ModelSpec) -> tuple[tuple[LayerSet, int], ...]:
    """``(layers, parameters of one such layer)`` for each kind of decoder layer (encoder and decoder stacks of
    T5 share the layer numbers, as in :attr:`Tensor.layer`)."""
    per: dict[LayerSet, int] = {}
    for g in groups(spec):
        if g.layers.count:
            per[g.layers] = per.get(g.layers, 0) + g.tensor.numel
    return tuple(per.items())


def params_in_layers(spec: ModelSpec, lo: int, hi: int) -> int:
    """Parameters of the tensors in layers ``lo`` to ``hi - 1``."""
    return sum(n * layers.between(lo, hi) for layers, n in layer_kinds(spec))


@lru_cache(maxsize=64)
def count_params(spec: ModelSpec) -> int:
    return sum(g.numel for g in groups(spec))


@lru_cache(maxsize=64)
def count_active_params(spec: ModelSpec) -> int:
    """Total minus the routed experts a token skips: ``(E - k) / E`` of each MoE layer's expert weights."""
    total = 0
    for g in groups(spec):
        t = g.tensor
        if t.role == "expert" and spec.moe is not None:
            total += t.numel // t.count * spec.moe.experts_per_token * g.repeat
        else:
            total += g.numel
    return total


@lru_cache(maxsize=64)
def largest_tensor(spec: ModelSpec) -> int:
    """Elements of the largest single tensor (one expert's, for routed experts)."""
    return max((g.tensor.numel // g.tensor.count for g in groups(spec)), default=0)


@lru_cache(maxsize=64)
def largest_layer_linear(spec: ModelSpec) -> int:
    """Elements of the largest linear weight inside the layers (what a 4-bit base dequantizes at once)."""
    return max((g.tensor.numel // g.tensor.count for g in groups(spec) if g.tensor.linear and g.tensor.layer is not None),
               default=0)


@lru_cache(maxsize=64)
def largest_layer(spec: ModelSpec) -> int:
    """Parameters of the largest decoder layer (the sum over the tensors sharing a layer number), by a sweep
    over the runs of each kind of layer."""
    events: dict[int, int] = {}
    for layers, n in layer_kinds(spec):
        for r in layers.runs:
            events[r.start] = events.get(r.start, 0) + n
            events[r.stop] = events.get(r.stop, 0) - n
    best = cur = 0
    for pos in sorted(events):
        cur += events[pos]
        best = max(best, cur)
    return best
