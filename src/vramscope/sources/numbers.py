"""Bare numbers: ``--params 7B`` with optional shape overrides.

With no shape given, a nominal dense decoder is synthesised so that KV cache and activations have something
to stand on: hidden size h = 128 × layers (the aspect ratio of Llama-1/2 7B–65B), multi-head attention with
head_dim 128, a non-gated MLP of 4h, a 32,000-token vocabulary, and the layer count whose
12·L·h² + 2·V·h is closest to P. For 7B this gives Llama-2-7B's own shape (32 layers, 4096 hidden). Weights
always use the user's P exactly; the estimate says the shape is nominal.
"""

from __future__ import annotations

from typing import Optional

from ..model.spec import ModelSpec
from .base import ResolvedModel

NOMINAL_VOCAB = 32000


def nominal_shape(params: int) -> tuple[int, int]:
    """(layers, hidden) of the nominal dense decoder closest to ``params`` parameters."""
    best = (1, 128)
    best_err = None
    for layers in range(1, 1025):
        h = 128 * layers
        err = abs(12 * layers * h * h + 2 * NOMINAL_VOCAB * h - params)
        if best_err is None or err < best_err:
            best, best_err = (layers, h), err
        elif 12 * layers * h * h > params:
            break
    return best


def resolve_params(params: int, *, layers: Optional[int] = None, hidden: Optional[int] = None,
                   heads: Optional[int] = None, kv_heads: Optional[int] = None, head_dim: Optional[int] = None,
                   intermediate: Optional[int] = None, vocab: Optional[int] = None) -> ResolvedModel:
    n_layers, h = nominal_shape(params)
    n_layers = layers or n_layers
    h = hidden or h
    hd = head_dim or 128
    n_heads = heads or max(1, h // hd)
    if head_dim is None and heads:
        hd = max(1, h // n_heads)
    given = any(v is not None for v in (layers, hidden, heads, kv_heads, head_dim, intermediate, vocab))
    spec = ModelSpec(
        name=f"{params / 1e9:g}B parameters", model_type="params", num_layers=n_layers, hidden_size=h,
        num_heads=n_heads, num_kv_heads=kv_heads or n_heads, head_dim=hd,
        intermediate_size=intermediate or 4 * h, vocab_size=vocab or NOMINAL_VOCAB, mlp_gated=False,
        source="--params",
    )
    note = "shape partly given by options, the rest nominal" if given else "shape nominal (from --params only)"
    return ResolvedModel(spec=spec, kind="params", origin="--params", params=params, active_params=params,
                         exact_shape=False, notes=(note,))
