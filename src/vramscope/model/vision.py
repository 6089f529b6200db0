"""Vision towers and projectors of the vision-language models, named and shaped as transformers 5.24 builds them.

One generator per tower kind (:attr:`VisionSpec.kind`), each read from its modeling file:

* ``qwen2_vl`` / ``qwen2_5_vl`` / ``qwen3_vl``: ``modeling_qwen2_vl.py`` (``Qwen2VisionTransformerPretrainedModel``:
  Conv3d patch embedding without bias, LayerNorm blocks, fused ``qkv``, ``fc1``/``fc2`` MLP, ``PatchMerger``),
  ``modeling_qwen2_5_vl.py`` (RMSNorm blocks, gated ``gate_proj``/``up_proj``/``down_proj`` MLP with biases, RMSNorm
  merger), ``modeling_qwen3_vl.py`` (Conv3d with bias, learned ``pos_embed``, ``linear_fc1``/``linear_fc2``, one
  merger plus one per ``deepstack_visual_indexes`` entry, the deepstack ones normalising the merged width);
* ``clip`` (LLaVA, LLaVA-NeXT): ``modeling_clip.py`` ``CLIPVisionModel`` (class embedding, ``pre_layrnorm``,
  ``post_layernorm``) and ``modeling_llava.py`` ``LlavaMultiModalProjector`` (``linear_1`` from the vision width
  times the selected feature layers, ``linear_2``); LLaVA-NeXT adds ``image_newline`` (text width);
* ``internvl``: ``modeling_internvl.py`` (``cls_token``, absolute ``position_embeddings``, ``lambda_1``/``lambda_2``
  layer scales, ``projection_layer``, the pixel-shuffle projector's LayerNorm over ``hidden × (1/ratio)²``);
* ``mllama``: ``modeling_mllama.py`` (``MllamaVisionModel``: tile and aspect-ratio embeddings, a local and a gated
  global transformer; the projector from ``vision_output_dim``); its cross-attention decoder layers are in
  :mod:`vramscope.model.tensors`.
"""

from __future__ import annotations

from typing import Iterator

from .spec import ModelSpec, VisionSpec

#: tower kinds read here (the others, siglip and llama4, are in tensors.py)
KINDS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "clip", "internvl", "mllama")


def _t(name: str, shape: tuple[int, ...], role: str = "vision"):
    from .tensors import Tensor

    return Tensor(name, shape, role)


def _lin(prefix: str, module: str, out_f: int, in_f: int, bias: bool, role: str = "vision"):
    from .tensors import _linear

    return _linear(prefix, module, out_f, in_f, role, None, bias)


def _ln(name: str, size: int, bias: bool = True) -> Iterator:
    yield _t(f"{name}.weight", (size,))
    if bias:
        yield _t(f"{name}.bias", (size,))


def _stack(layer, n: int):
    from .tensors import _kinds, _Layers

    return _Layers(layer, n, _kinds(n))


def tensors(s: ModelSpec) -> Iterator:
    vs = s.vision
    assert vs is not None
    yield from _GEN[vs.kind](s, vs)


def _qwen(s: ModelSpec, vs: VisionSpec) -> Iterator:
    p = "model.visual."
    h, i, k = vs.hidden_size, vs.intermediate_size, vs.kind
    yield _t(p + "patch_embed.proj.weight", (h, vs.num_channels, vs.temporal_patch_size, vs.patch_size,
                                             vs.patch_size))
    if k == "qwen3_vl":
        yield _t(p + "patch_embed.proj.bias", (h,))
        yield _t(p + "pos_embed.weight", (vs.num_positions, h))
    rms = k == "qwen2_5_vl"

    def layer(j: int) -> Iterator:
        lp = f"{p}blocks.{j}."
        yield from _ln(lp + "norm1", h, not rms)
        yield from _ln(lp + "norm2", h, not rms)
        yield from _lin(lp + "attn.", "qkv", 3 * h, h, True)
        yield from _lin(lp + "attn.", "proj", h, h, True)
        if k == "qwen2_5_vl":
            yield from _lin(lp + "mlp.", "gate_proj", i, h, True)
            yield from _lin(lp + "mlp.", "up_proj", i, h, True)
            yield from _lin(lp + "mlp.", "down_proj", h, i, True)
        else:
            fc1, fc2 = ("linear_fc1", "linear_fc2") if k == "qwen3_vl" else ("fc1", "fc2")
            yield from _lin(lp + "mlp.", fc1, i, h, True)
            yield from _lin(lp + "mlp.", fc2, h, i, True)

    yield _stack(layer, vs.num_layers)
    merged = h * vs.merge_size ** 2
    if k == "qwen3_vl":
        for mp, norm in [(p + "merger.", h)] + [(f"{p}deepstack_merger_list.{j}.", merged)
                                                  for j in range(vs.deepstack)]:
            yield from _ln(mp + "norm", norm)
            yield from _lin(mp, "linear_fc1", merged, merged, True, "projector")
            yield from _lin(mp, "linear_fc2", vs.output_dim, merged, True, "projector")
        return
    yield from _ln(p + "merger.ln_q", h, not rms)
    yield from _lin(p + "merger.mlp.", "0", merged, merged, True, "projector")
    yield from _lin(p + "merger.mlp.", "2", vs.output_dim, merged, True, "projector")


def _clip(s: ModelSpec, vs: VisionSpec) -> Iterator:
    p = "model.vision_tower."
    h, i = vs.hidden_size, vs.intermediate_size
    yield _t(p + "embeddings.class_embedding", (h,))
    yield _t(p + "embeddings.patch_embedding.weight", (h, vs.num_channels, vs.patch_size, vs.patch_size))
    yield _t(p + "embeddings.position_embedding.weight", ((vs.image_size // vs.patch_size) ** 2 + 1, h))
    yield from _ln(p + "pre_layrnorm", h)

    def layer(j: int) -> Iterator:
        lp = f"{p}encoder.layers.{j}."
        for m in ("k_proj", "v_proj", "q_proj", "out_proj"):
            yield from _lin(lp + "self_attn.", m, h, h, True)
        yield from _ln(lp + "layer_norm1", h)
        yield from _lin(lp + "mlp.", "fc1", i, h, True)
        yield from _lin(lp + "mlp.", "fc2", h, i, True)
        yield from _ln(lp + "layer_norm2", h)

    yield _stack(layer, vs.num_layers)
    yield from _ln(p + "post_layernorm", h)
    th = vs.text_hidden_size
    yield from _lin("model.multi_modal_projector.", "linear_1", th, h * vs.feature_layers, vs.projector_bias,
                    "projector")
    yield from _lin("model.multi_modal_projector.", "linear_2", th, th, vs.projector_bias, "projector")
    if vs.newline:
        yield _t("model.image_newline", (th,), "projector")


def _internvl(s: ModelSpec, vs: VisionSpec) -> Iterator:
    p = "model.vision_tower."
    h, i = vs.hidden_size, vs.intermediate_size
    yield _t(p + "embeddings.cls_token", (1, 1, h))
    if vs.mask_token:
        yield _t(p + "embeddings.mask_token", (1, 1, h))
    if vs.num_positions:
        yield _t(p + "embeddings.position_embeddings", (1, vs.num_positions, h))
    yield _t(p + "embeddings.patch_embeddings.projection.weight", (h, vs.num_channels, vs.patch_size, vs.patch_size))
    yield _t(p + "embeddings.patch_embeddings.projection.bias", (h,))
    ln_bias = vs.norm == "layernorm"

    def layer(j: int) -> Iterator:
        lp = f"{p}encoder.layer.{j}."
        yield _t(lp + "lambda_1", (h,))
        yield _t(lp + "lambda_2", (h,))
        for m in ("q_proj", "k_proj", "v_proj"):
            yield from _lin(lp + "attention.", m, h, h, vs.qkv_bias)
        yield from _lin(lp + "attention.", "projection_layer", h, h, True)
        if vs.qk_norm:
            yield from _ln(lp + "attention.q_norm", h, False)
            yield from _ln(lp + "attention.k_norm", h, False)
        yield from _lin(lp + "mlp.", "fc1", i, h, True)
        yield from _lin(lp + "mlp.", "fc2", h, i, True)
        yield from _ln(lp + "layernorm_before", h, ln_bias)
        yield from _ln(lp + "layernorm_after", h, ln_bias)

    yield _stack(layer, vs.num_layers)
    if not vs.mean_pooling:
        yield from _ln(p + "layernorm", h)
    th, merged = vs.text_hidden_size, h * vs.merge_size ** 2
    yield from _ln("model.multi_modal_projector.layer_norm", merged)
    yield from _lin("model.multi_modal_projector.", "linear_1", th, merged, True, "projector")
    yield from _lin("model.multi_modal_projector.", "linear_2", th, th, True, "projector")


def _mllama(s: ModelSpec, vs: VisionSpec) -> Iterator:
    p = "model.vision_model."
    h, i, tiles = vs.hidden_size, vs.intermediate_size, vs.max_tiles
    patches = (vs.image_size // vs.patch_size) ** 2 + 1
    ratios = vs.aspect_ratios + 1
    yield _t(p + "class_embedding", (h,))
    yield _t(p + "patch_embedding.weight", (h, vs.num_channels, vs.patch_size, vs.patch_size))
    yield _t(p + "gated_positional_embedding.gate", (1,))
    yield _t(p + "gated_positional_embedding.embedding", (patches, h))
    yield _t(p + "gated_positional_embedding.tile_embedding.weight", (ratios, tiles * patches * h))
    for name in ("pre_tile_positional_embedding", "post_tile_positional_embedding"):
        yield _t(f"{p}{name}.gate", (1,))
        yield _t(f"{p}{name}.embedding.weight", (ratios, tiles * h))
    yield from _ln(p + "layernorm_pre", h)
    yield from _ln(p + "layernorm_post", h)

    def block(prefix: str, gated: bool):
        def layer(j: int) -> Iterator:
            lp = f"{p}{prefix}.layers.{j}."
            if gated:
                yield _t(lp + "gate_attn", (1,))
                yield _t(lp + "gate_ffn", (1,))
            for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
                yield from _lin(lp + "self_attn.", m, h, h, False)
            yield from _lin(lp + "mlp.", "fc1", i, h, True)
            yield from _lin(lp + "mlp.", "fc2", h, i, True)
            yield from _ln(lp + "input_layernorm", h)
            yield from _ln(lp + "post_attention_layernorm", h)
        return layer

    yield _stack(block("transformer", False), vs.num_layers)
    yield _stack(block("global_transformer", True), vs.global_layers)
    yield from _lin("model.", "multi_modal_projector", vs.text_hidden_size, vs.output_dim, True, "projector")


_GEN = {"qwen2_vl": _qwen, "qwen2_5_vl": _qwen, "qwen3_vl": _qwen, "clip": _clip, "internvl": _internvl,
        "mllama": _mllama}
