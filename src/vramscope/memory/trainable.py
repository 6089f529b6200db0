"""Which parameters train: full fine-tuning, freezing, LoRA and QLoRA adapters.

LoRA (Hu et al. 2021, arXiv 2106.09685; peft ``tuners/lora/layer.py``) adds, to each targeted linear layer of
shape (out, in), ``lora_A`` of shape (r, in) and ``lora_B`` of shape (out, r): ``r·(in + out)`` trainable
parameters per layer (per expert for MoE experts). ``all-linear`` targets every linear layer except the
output head, as peft's ``INCLUDE_LINEAR_LAYERS_SHORTHAND`` does. peft keeps adapter weights in fp32 by default
(``autocast_adapter_dtype=True``) even when the base model is bf16/fp16.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..model.spec import ModelSpec
from ..model.tensors import tensors

DEFAULT_LORA_TARGETS = ("all-linear",)


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
    for t in tensors(spec):
        if not t.linear or t.role in ("lm_head",):
            continue
        if "all-linear" in wanted or t.module in wanted:
            total += rank * (t.shape[0] + t.shape[-1]) * t.count
    return total


def trainable(spec: ModelSpec, total_params: int, method: str, lora_rank: int = 16,
              lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS, frozen_layers: int = 0) -> Trainable:
    if method in ("lora", "qlora"):
        adapters = lora_params(spec, lora_rank, lora_targets)
        return Trainable(adapters, adapters, total_params)
    if method == "freeze":
        frozen = sum(t.numel for t in tensors(spec)
                     if t.role in ("embedding", "position_embedding")
                     or (t.layer is not None and t.layer < frozen_layers))
        return Trainable(total_params - frozen, 0, frozen)
    return Trainable(total_params, 0, 0)
