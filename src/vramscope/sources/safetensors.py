"""Local ``.safetensors`` files and sharded indexes, read from the header only.

Format (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header length N, then N
bytes of JSON mapping tensor names to ``{dtype, shape, data_offsets}``. Only the header is read, capped at
100 MB (the limit the safetensors library itself enforces), and every entry is checked against the file size,
so a truncated or forged file gets a clear error instead of a wrong number.

Pre-quantized checkpoints are counted as the parameters they encode: GPTQ/AWQ ``qweight`` packs
``32 / bits`` values per int32; bitsandbytes 4-bit packs two values per uint8; scales, zeros, ``g_idx``,
``absmax`` and friends are storage overhead, not parameters.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from ..errors import VramscopeError
from .base import StoredTensor, read_bounded

MAX_HEADER_BYTES = 100 * 1000 * 1000

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
    "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}

_SIDE_SUFFIXES = (
    ".qzeros", ".scales", ".g_idx", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB",
    ".weight_format", ".weight_scale", ".weight_scale_inv", ".input_scale", ".k_scale", ".v_scale",
    ".weight_zero_point", ".weight_global_scale", ".input_global_scale",
)


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file, validated against the file's size."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise VramscopeError("safetensors_bad", path=path, detail="file shorter than 8 bytes")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise VramscopeError("safetensors_bad", path=path,
                                     detail=f"header of {n} bytes exceeds the 100 MB limit")
            if 8 + n > size:
                raise VramscopeError("safetensors_bad", path=path, detail="truncated header")
            raw = f.read(n)
    except OSError as e:
        raise VramscopeError("file_unreadable", path=path, detail=e.strerror or str(e)) from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VramscopeError("safetensors_bad", path=path, detail=f"header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise VramscopeError("safetensors_bad", path=path, detail="header is not a JSON object")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        _check_entry(path, name, info, data_size)
    return header


def _check_entry(path: Path, name: str, info: Any, data_size: int) -> None:
    if not isinstance(info, dict):
        raise VramscopeError("safetensors_bad", path=path, detail=f"entry {name!r} is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise VramscopeError("safetensors_bad", path=path,
                             detail=f"tensor {name!r} has dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40
                                              for d in shape):
        raise VramscopeError("safetensors_bad", path=path, detail=f"tensor {name!r} has a bad shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise VramscopeError("safetensors_bad", path=path, detail=f"tensor {name!r} has bad data_offsets")
    numel = 1
    for d in shape:
        numel *= d
    if offsets[1] - offsets[0] != numel * DTYPE_BYTES[dtype]:
        raise VramscopeError("safetensors_bad", path=path,
                             detail=f"tensor {name!r}: data_offsets do not match shape × dtype size")
    if offsets[1] > data_size:
        raise VramscopeError("safetensors_bad", path=path, detail=f"truncated: tensor {name!r} ends past the file")


def _encoded_params(name: str, dtype: str, numel: int, names: set[str], bits: int) -> int:
    if name.endswith(_SIDE_SUFFIXES) or ".quant_state." in name:
        return 0
    if name.endswith(".qweight") and dtype == "I32":
        return numel * (32 // bits)
    if dtype == "U8" and name.endswith(".weight") and any(
            f"{name}.quant_state.bitsandbytes__{q}" in names for q in ("nf4", "fp4")):
        return numel * 2
    return numel


def stored_tensors(entries: Iterable[tuple[str, str, Sequence[int]]],
                   quant: Optional[dict[str, Any]] = None) -> list[StoredTensor]:
    """``(name, dtype, shape)`` entries → stored tensors with the parameters each encodes."""
    bits = int((quant or {}).get("bits") or (quant or {}).get("w_bit") or 4)
    if bits not in (2, 3, 4, 8):
        bits = 4
    entries = list(entries)
    names = {name for name, _, _ in entries}
    out = []
    for name, dtype, shape in entries:
        numel = 1
        for d in shape:
            numel *= d
        out.append(StoredTensor(name, tuple(shape), dtype, numel * DTYPE_BYTES.get(dtype, 2),
                                _encoded_params(name, dtype, numel, names, bits)))
    return out


def header_entries(headers: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, list[int]]]:
    """The ``(name, dtype, shape)`` entries of validated headers."""
    for header in headers:
        for name, info in header.items():
            if name != "__metadata__":
                yield name, info["dtype"], info["shape"]


def read_index(path: Path) -> list[Path]:
    """Shard files named by a ``*.safetensors.index.json``; each must exist next to it."""
    raw = read_bounded(path, MAX_HEADER_BYTES)
    if raw is None:
        raise VramscopeError("safetensors_bad", path=path, detail="index larger than 100 MB")
    try:
        index = json.loads(raw)
        weight_map = index["weight_map"]
        files = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise VramscopeError("safetensors_bad", path=path, detail=f"not a safetensors index ({e})") from None
    shards = []
    for name in files:
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith(".."):
            raise VramscopeError("safetensors_bad", path=path, detail=f"bad shard name {name!r}")
        shard = path.parent / name
        if not shard.is_file():
            raise VramscopeError("safetensors_bad", path=path, detail=f"shard {name} is missing")
        shards.append(shard)
    return shards


def describe_format(tensors: list[StoredTensor], quant: Optional[dict[str, Any]]) -> str:
    """A short label for how the checkpoint stores its weights, e.g. ``bf16`` or ``gptq-4bit-g128``."""
    if quant:
        method = str(quant.get("quant_method", "quantized")).lower()
        if method in ("gptq", "awq"):
            return f"{method}-{quant.get('bits', quant.get('w_bit', 4))}bit-g{quant.get('group_size', quant.get('q_group_size', 128))}"
        if method == "bitsandbytes":
            if quant.get("load_in_4bit") or quant.get("_load_in_4bit"):
                return f"bnb-{quant.get('bnb_4bit_quant_type', 'nf4')}"
            return "bnb-int8"
        return method
    by_dtype: dict[str, int] = {}
    for t in tensors:
        by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.params
    return max(by_dtype, key=by_dtype.__getitem__).lower() if by_dtype else ""
