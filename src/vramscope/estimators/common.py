"""Pieces both estimators share: the compute dtype, trainable parameters, peak selection."""

from __future__ import annotations

from ..errors import Text

from ..dtypes import DTYPE_BYTES, dtype_from_config
from ..memory.trainable import Trainable, trainable
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..workload import Workload


def compute_dtype(model: ResolvedModel, w: Workload) -> str:
    """The dtype the model computes in: ``--dtype``, else the checkpoint's, else bf16."""
    if w.dtype:
        return w.dtype
    if model.stored_format in ("f32", "f16", "bf16"):
        return {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}[model.stored_format]
    return dtype_from_config(model.spec.dtype) if model.spec.dtype else "bf16"


def dtype_bytes(dtype: str) -> float:
    return DTYPE_BYTES[dtype]


def trainable_for(model: ResolvedModel, w: Workload) -> Trainable:
    if not w.training:
        return Trainable(0, 0, model.params)
    return trainable(model.spec, model.params, w.method, w.lora_rank, w.lora_targets, w.frozen_layers,
                     w.train_modules, w.dora)


def pick_peak(phases: dict[str, dict[str, int]]) -> str:
    """The phase with the largest live total (the first one on ties)."""
    return max(phases, key=lambda p: sum(phases[p].values()))


def shape_note(model: ResolvedModel) -> tuple[Assumption, ...]:
    if model.exact_shape:
        return ()
    s = model.spec
    kv = s.num_kv_heads or s.num_heads
    attn = Text("attn_mha") if kv == s.num_heads else Text("attn_mqa") if kv == 1 else Text("attn_gqa", kv=kv)
    return (Assumption("a_nominal_shape", {"layers": s.num_layers, "hidden": s.hidden_size, "heads": s.num_heads,
                                           "attn": attn, "head_dim": s.head_dim}),)
