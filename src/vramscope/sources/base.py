"""What every source resolves to: a spec, plus the exact stored tensors when files were read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..model.spec import ModelSpec


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as a checkpoint file stores it (safetensors or GGUF header).

    ``params`` is the number of model parameters it encodes (a packed int32 GPTQ weight of shape
    ``(in/8, out)`` encodes ``in × out``); quantization side tensors (scales, zeros, g_idx, absmax) encode 0.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    params: int


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready for estimation.

    ``exact_shape`` is False when the shape was synthesised from a bare parameter count; then ``params`` is
    the user's number and the estimators say the shape is nominal.
    """

    spec: ModelSpec
    kind: str  # catalog | config | safetensors | gguf | hub | params
    origin: str
    params: int
    active_params: int
    exact_shape: bool = True
    stored: Optional[tuple[StoredTensor, ...]] = None
    stored_format: str = ""  # e.g. "bf16", "gptq-4bit-g128", "gguf Q4_K_M", "bnb-nf4"
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: the Hugging Face config the spec was read from (the trace estimator builds the real model from it)
    hf_config: Optional[dict] = field(default=None, compare=False, hash=False, repr=False)

    @property
    def stored_bytes(self) -> Optional[int]:
        return None if self.stored is None else sum(t.nbytes for t in self.stored)


def with_stored(spec: ModelSpec, kind: str, origin: str, stored: list[StoredTensor], fmt: str = "",
                notes: tuple[str, ...] = (), hf_config: Optional[dict] = None) -> ResolvedModel:
    """A model whose parameters come from the stored tensors; routed experts a token skips are taken off."""
    params = sum(t.params for t in stored)
    skipped = spec.params - spec.active_params
    return ResolvedModel(spec=spec, kind=kind, origin=origin, params=params, active_params=params - skipped,
                         stored=tuple(stored), stored_format=fmt, notes=notes + spec.notes, hf_config=hf_config)


def read_bounded(path: Any, limit: int) -> Optional[bytes]:
    """A whole small file (JSON config, index), or None when it is larger than ``limit`` bytes."""
    from ..errors import VramscopeError

    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise VramscopeError("file_unreadable", path=path, detail=e.strerror or str(e)) from None
    return None if len(raw) > limit else raw
