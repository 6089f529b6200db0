"""Which parameters train: full fine-tuning, freezing, LoRA and QLoRA adapters.

LoRA (Hu et al. 2021, arXiv 2106.09685; peft ``tuners/lora/layer.py``) adds, to each targeted linear layer of
shape (out, in), ``lora_A`` of shape (r, in) and ``lora_B`` of shape (out, r): ``r·(in + out)`` trainable
parameters per layer. ``all-linear`` targets every linear layer except the output head, as peft's
``INCLUDE_LINEAR_LAYERS_SHORTHAND`` does, and in transformers 5 that includes the MoE experts, which are stored
fused as 3-D parameters (``experts.gate_up_proj`` of shape (E, 2I, h) and ``experts.down_proj`` (E, h, I)):
peft 0.17+ wraps them with ``ParamWrapper``, giving the fused gate/up pair ``lora_A`` (2·E·r, h) and ``lora_B``
(2I, 2·E·r), and ``down_proj`` ``lora_A`` (E·r, I) and ``lora_B`` (h, E·r) (checked against peft on the meta
device in ``tests/test_analytic.py``). peft keeps adapter weights in fp32 by default
(``autocast_adapter_dtype=True``) even when the base model is bf16/fp16.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..model.spec import ModelSpec
from ..model.tensors import groups

DEFAULT_LORA_TARGETS = ("all-linear",)

# Which MoE parts peft's ``all-linear`` adapts, per family: ``Family.all_linear_moe`` (model/families.py).
# Dense models: every linear layer.


@dataclass(frozen=True)
class Trainable:
    params: int  # trainable parameters
    adapter_params: int  # of which new adapter parameters (LoRA), kept in adapter dtype
    frozen_params: int


@lru_cache(maxsize=256)
def lora_params(spec: ModelSpec, rank: int, targets: tuple[str, ...] = DEFAULT_LORA_TARGETS) -> int:
    """Trainable LoRA parameters: Σ over targeted linears of ``rank × (in + out)`` (× experts)."""
    total = 0
    wanted = set(targets)
    every = "all-linear" in wanted
    moe_rule = spec.family.all_linear_moe
    for g in groups(spec):
        t = g.tensor
        if not t.linear or t.role in ("lm_head",):
            continue
        part = "gate" if t.module == "gate" else t.role
        if every and not moe_rule.get(part, True):
            continue
        if t.role == "expert":
            if every or "experts" in wanted:
                e, out_f, in_f = t.count, t.shape[0], t.shape[-1]
                if t.module in ("gate_proj", "up_proj"):  # one fused (E, 2I, h) parameter: 2·E·r × (h + 2I) / 2 each
                    total += rank * e * (in_f + 2 * out_f) * g.repeat
                else:
                    total += rank * e * (in_f + out_f) * g.repeat
            continue
        if every or t.module in wanted:
            total += rank * (t.shape[0] + t.shape[-1]) * t.count * g.repeat
    return total


@lru_cache(maxsize=64)
def dora_magnitude_params(spec: ModelSpec, targets: tuple[str, ...] = DEFAULT_LORA_TARGETS) -> int:
    """DoRA (Liu et al. 2024, arXiv 2402.09353; peft ``lora/dora.py``) adds one trainable magnitude per output
    feature of every adapted linear layer (``lora_magnitude_vector``, shape (out,))."""
    wanted = lora_modules(spec, targets)
    return sum(g.tensor.shape[0] * g.tensor.count * g.repeat for g in groups(spec)
               if g.tensor.linear and g.tensor.role not in ("lm_head", "expert") and g.tensor.module in wanted)


#: LitGPT 0.5.13 ``litgpt/adapter.py Config``: the prefix length and the first layer with an adapter
LITGPT_ADAPTER_PROMPT = 10
LITGPT_ADAPTER_START = 2


def litgpt_adapter_params(spec: ModelSpec, method: str) -> tuple[int, int]:
    """(parameters that get gradients, parameters the adapter adds) of LitGPT 0.5.13's LLaMA-Adapter
    (``litgpt/adapter.py``: each layer from ``adapter_start_layer`` on gets ``adapter_wte`` (prompt × h) and a
    ``gating_factor`` per head) and Adapter v2 (``adapter_v2.py``: every linear, ``lm_head`` included, an
    ``AdapterV2Linear`` with ``adapter_bias`` and ``adapter_scale`` of its output width; ``adapter_filter`` also
    trains ``norm_1``, ``norm_2`` and ``ln_f``). ``adapter_wte`` never gets a gradient in LitGPT's recipe: ``fit``
    validates first under ``torch.no_grad()``, which fills each layer's ``adapter_kv_cache`` from the prefix, and the
    cache is reused by every training step (checked on LitGPT's code: tests/test_litgpt_adapter.py)."""
    h, layers = spec.hidden_size, spec.num_layers
    adapted = max(0, layers - LITGPT_ADAPTER_START)
    gating = spec.num_heads * adapted
    added, trained = gating + LITGPT_ADAPTER_PROMPT * h * adapted, gating
    if method == "adapter-v2":
        inter = spec.intermediate_size
        widths = (spec.q_dim + 2 * spec.kv_dim) + h + (2 * inter if spec.mlp_gated else inter) + h
        bias_scale = 2 * (widths * layers + spec.vocab_size)
        # norm_1 and norm_2 of each block (Gemma 2's post-attention / post-MLP norms do not match the filter) and
        # ln_f; a LayerNorm trains its bias too
        biased = any(g.tensor.role == "norm" and g.tensor.name.endswith(".bias") for g in groups(spec))
        norms = (2 * layers + 1) * h * (2 if biased else 1)
        added += bias_scale
        trained += bias_scale + norms
    return trained, added


def trainable(spec: ModelSpec, total_params: int, method: str, lora_rank: int = 16,
              lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS, frozen_layers: int = 0,
              train_modules: tuple[str, ...] = (), dora: bool = False) -> Trainable:
    if method in ("adapter", "adapter-v2"):
        trained, added = litgpt_adapter_params(spec, method)
        return Trainable(trained, added, total_params)
    if method in ("lora", "qlora"):
        adapters = lora_params(spec, lora_rank, lora_targets)
        if dora:
            adapters += dora_magnitude_params(spec, lora_targets)
        return Trainable(adapters, adapters, total_params)
    if method == "freeze" and train_modules:
        wanted = set(train_modules)
        params = sum(g.numel for g in groups(spec) if g.tensor.module in wanted)
        return Trainable(params, 0, total_params - params)
    if method == "freeze":
        frozen = 0
        for g in groups(spec):
            if g.tensor.role in ("embedding", "position_embedding"):
                frozen += g.numel
            elif g.tensor.layer is not None:
                frozen += g.tensor.numel * g.layers.below(frozen_layers)
        return Trainable(total_params - frozen, 0, frozen)
    return Trainable(total_params, 0, 0)


def lora_modules(spec: ModelSpec, targets: tuple[str, ...]) -> frozenset:
    """Names of the modules that get adapters (``all-linear`` expanded as peft expands it)."""
    if "all-linear" not in targets:
        return frozenset(targets)
    rule = spec.family.all_linear_moe
    names = set()
    for g in groups(spec):
        t = g.tensor
        part = "gate" if t.module == "gate" else t.role
        if t.linear and t.role != "lm_head" and rule.get(part, True):
            names.add("experts" if t.role == "expert" else t.module)
    return frozenset(names)
