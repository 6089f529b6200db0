"""Bare numbers: ``--params 7B`` with optional shape overrides.

With no shape given, a nominal dense decoder is synthesised so that KV cache and activations have something
to stand on: hidden size h = 128 × layers (the aspect ratio of Llama-1/2 7B–65B), multi-head attention with
head_dim 128, a non-gated MLP of 4h, a 32,000-token vocabulary, and the layer count whose
12·L·h² + 2·V·h is closest to P. For 7B this gives Llama-2-7B's own shape (32 layers, 4096 hidden). Weights
always use the user's P exactly; the estimate says the shape is nominal.

What cannot be real is refused: fewer parameters than the smallest real language model
(:data:`~vramscope.model.limits.MIN_PARAMS`), shape options outside the limits table, heads that leave a head
size of 0, key/value heads that do not divide the heads, and a shape that alone holds more than twice P (its
tensors are all parameters, so it cannot be the model; the nominal parts, the 32,000-token vocabulary and the
4h MLP, are allowed that margin). A shape holding fewer parameters than P is kept: a mixture of experts or a
vision tower holds parameters the dense nominal shape does not show.
"""

from __future__ import annotations

from typing import Optional

from ..errors import Opt, Phrase, VramscopeError
from ..model.limits import MIN_PARAMS
from ..model.spec import ModelSpec, check_int
from .base import ResolvedModel

NOMINAL_VOCAB = 32000

#: a shape may hold at most this many times the --params count (module docstring)
SHAPE_MARGIN = 2

#: option → the limit it is checked against (vramscope/model/limits.py)
_OPTION_LIMITS = {"layers": "num_layers", "hidden": "hidden_size", "heads": "num_heads", "kv_heads": "num_kv_heads",
                  "head_dim": "head_dim", "intermediate": "intermediate_size", "vocab": "vocab_size"}


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
    if isinstance(params, bool) or not isinstance(params, int) or params < MIN_PARAMS:
        raise VramscopeError("params_too_few", field="--params", value=f"{params:,}" if isinstance(params, int)
                             else str(params)[:40], minimum=f"{MIN_PARAMS:,}")
    options = dict(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                   intermediate=intermediate, vocab=vocab)
    for key, value in options.items():
        if value is not None:
            check_int("", "--" + key.replace("_", "-"), value, _OPTION_LIMITS[key])
    n_layers, h = nominal_shape(params)
    n_layers = layers or n_layers
    h = hidden or h
    hd = head_dim or 128
    n_heads = heads or max(1, h // hd)
    if head_dim is None and heads:
        if h // n_heads < 1:
            raise VramscopeError("shape_head_dim_zero", where="", field="--heads", hidden=h, heads=n_heads)
        hd = h // n_heads
    n_kv = kv_heads or n_heads
    if n_heads % n_kv:
        raise VramscopeError("shape_kv_heads", where="", field="--kv-heads", kv=n_kv, heads=n_heads)
    given = any(v is not None for v in options.values())
    spec = ModelSpec(
        name=f"{params / 1e9:g}B (--params)", model_type="params", num_layers=n_layers, hidden_size=h,
        num_heads=n_heads, num_kv_heads=n_kv, head_dim=hd,
        intermediate_size=intermediate or 4 * h, vocab_size=vocab or NOMINAL_VOCAB, mlp_gated=False,
        source="--params",
    )
    if spec.params > SHAPE_MARGIN * params:
        shape = (f"{'' if given else 'nominal: '}layers {n_layers}, hidden {h}, heads {n_heads} × {hd}, "
                 f"MLP {spec.intermediate_size}, vocabulary {spec.vocab_size}")
        raise VramscopeError("params_shape_too_big", field="--params", shape=shape, shape_params=f"{spec.params:,}",
                             params=f"{params:,}")
    note = Phrase("n_shape_partly") if given else Phrase("n_shape_nominal", o_params=Opt("params"))
    return ResolvedModel(spec=spec, kind="params", origin="--params", params=params, active_params=params,
                         exact_shape=False, notes=(note,))
