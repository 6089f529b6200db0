"""Element sizes of the dtypes users name, and the names they may use for them."""

from __future__ import annotations

from .errors import VramscopeError

#: bytes per element
DTYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}

_ALIASES = {
    "float32": "fp32", "f32": "fp32", "float": "fp32", "torch.float32": "fp32",
    "float16": "fp16", "f16": "fp16", "half": "fp16", "torch.float16": "fp16",
    "bfloat16": "bf16", "torch.bfloat16": "bf16",
    "float8": "fp8", "fp8_e4m3": "fp8", "e4m3": "fp8", "float8_e4m3fn": "fp8",
}

#: what --dtype accepts (weights and compute dtype)
DTYPES = ("fp32", "fp16", "bf16")


def normalize_dtype(value: str, field: str = "--dtype", allowed: tuple[str, ...] = DTYPES) -> str:
    v = str(value).strip().lower()
    v = _ALIASES.get(v, v)
    if v not in allowed:
        raise VramscopeError("bad_choice", field=field, value=value, allowed=", ".join(allowed))
    return v


def dtype_from_config(torch_dtype: str) -> str:
    """The checkpoint dtype a config names (``torch_dtype``), or bf16 when it names none we know."""
    v = _ALIASES.get(str(torch_dtype).lower(), str(torch_dtype).lower())
    return v if v in DTYPES else "bf16"
