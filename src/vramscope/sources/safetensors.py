"""Local ``.safetensors`` files and sharded indexes, read from the header only.

Format (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header length N, then N
bytes of JSON mapping tensor names to ``{dtype, shape, data_offsets}``. Only the header is read, and every entry
is checked against the file size, so a truncated or forged file gets a clear error instead of a wrong number.

Every cost is bounded before it is paid (see the constants below for why each bound is where it is): the header
length is checked from its 8-byte prefix before a byte of JSON is read, the objects and values in the JSON are
counted before it is parsed, and the tensors, name lengths, ranks and dimensions are checked as it is walked.
Reading is linear in the header size and stops at the first bound passed.

Pre-quantized checkpoints are counted as the parameters they encode: GPTQ/AWQ ``qweight`` and
compressed-tensors ``weight_packed`` pack ``32 / bits`` values per int32; bitsandbytes 4-bit and MXFP4
``_blocks`` pack two values per uint8; scales, zeros, ``g_idx``, ``absmax`` and friends are storage overhead,
not parameters.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from ..errors import VramscopeError
from .base import JsonProblem, StoredTensor, format_limit, open_regular, os_error, parse_json, read_limited, \
    shown_path, stat_path

#: One file's header. The safetensors library itself refuses headers over 100,000,000 bytes
#: (``MAX_HEADER_SIZE`` in safetensors/src/tensor.rs); real headers are far smaller: an entry is ~100-150 bytes,
#: a shard of the largest public checkpoints holds a few thousand tensors (well under 1 MB), and even a whole
#: DeepSeek-V3 (~92k tensors: 58 MoE layers x 256 experts x 3 projections x weight + scale) in one file would
#: need ~14 MB. 16 MiB keeps all of that and bounds the worst parse to a fraction of a second.
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: Tensors in one file: more than any real single file (see above) and what 16 MiB of minimal entries allows.
MAX_FILE_TENSORS = 200_000
#: Tensors in one model, all shards together: the largest public checkpoints hold ~0.1-0.2 M (DeepSeek-V3 ~92k;
#: Kimi-K2, 60 MoE layers x 384 experts x 3 projections x weight + scale, ~140k); 1 M is the GGUF reader's bound.
MAX_TENSORS = 1_000_000
#: Header bytes of all shards together: ~150 bytes x MAX_TENSORS, and 5x what the largest real checkpoints need.
MAX_TOTAL_HEADER_BYTES = 128 * 1024 * 1024
#: Shard files one index may name: the most in a public checkpoint is a few hundred (Llama-3.1-405B: 191).
MAX_SHARDS = 4096
#: A ``*.safetensors.index.json``: ~100 bytes per weight_map entry; the largest real indexes (~0.2 M entries)
#: are ~20 MB.
MAX_INDEX_BYTES = 64 * 1024 * 1024
#: Characters in a tensor name: real names are under ~120 (``model.language_model.layers.0.mlp.experts...``).
MAX_NAME_CHARS = 1024
#: Dimensions of one tensor: real checkpoints use at most 5 (conv3d); GGUF allows 4, the GGUF reader 8.
MAX_RANK = 8
#: One dimension: 2^40 elements is already 1 TB of int8.
MAX_DIM = 1 << 40

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
    "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}

_SIDE_SUFFIXES = (
    ".qzeros", ".scales", ".g_idx", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB",
    ".weight_format", ".weight_scale", ".weight_scale_inv", ".input_scale", ".k_scale", ".v_scale",
    ".weight_zero_point", ".weight_global_scale", ".input_global_scale", ".weight_shape",
)


def _bad(path: Any, detail: str) -> VramscopeError:
    return VramscopeError("safetensors_bad", path=shown_path(path), detail=detail)


@dataclass
class Budget:
    """What is left of the per-model bounds while the shards of one checkpoint are read."""

    tensors: int = field(default_factory=lambda: MAX_TENSORS)
    header_bytes: int = field(default_factory=lambda: MAX_TOTAL_HEADER_BYTES)


def read_header(path: Path, budget: Optional[Budget] = None) -> dict[str, Any]:
    """The JSON header of one safetensors file, validated against the file's size and the bounds above."""
    budget = budget if budget is not None else Budget()
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            head = f.read(8)
            if len(head) < 8:
                raise _bad(path, "file shorter than 8 bytes")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise _bad(path, f"header of {n:,} bytes exceeds the {format_limit(MAX_HEADER_BYTES)} limit "
                                 "— real headers are at most a few MB")
            if 8 + n > size:
                raise _bad(path, "truncated header")
            if n > budget.header_bytes:
                raise _bad(path, f"the shards' headers add up to more than "
                                 f"{format_limit(MAX_TOTAL_HEADER_BYTES)}")
            raw = f.read(n)
        except OSError as e:
            raise os_error(path, e) from None
    if len(raw) != n:
        raise _bad(path, "truncated header")
    budget.header_bytes -= n
    cap = min(MAX_FILE_TENSORS, budget.tensors)
    try:
        # an entry is one object and two arrays, and at most MAX_RANK + 4 values
        header = parse_json(raw, max_containers=3 * cap + 1024, max_items=(MAX_RANK + 4) * cap + 100_000,
                            max_depth=None)
    except JsonProblem as e:
        raise _bad(path, f"header is not JSON: {e}" if "objects and arrays" not in str(e)
                   else f"more than {cap:,} tensors in one file") from None
    if not isinstance(header, dict):
        raise _bad(path, "header is not a JSON object")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise _bad(path, "__metadata__ must map names to strings")
    count = len(header) - ("__metadata__" in header)
    if count == 0:
        raise _bad(path, "it holds no tensors")
    if count > cap:
        raise _bad(path, f"{count:,} tensors, more than the {cap:,} allowed")
    budget.tensors -= count
    data_size = size - 8 - n
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        total += _check_entry(path, name, info, data_size)
    if total > data_size:
        raise _bad(path, "tensors overlap: their data adds up to more than the file holds")
    return header


def _check_entry(path: Path, name: str, info: Any, data_size: int) -> int:
    """Check one header entry; its data length in bytes."""
    if len(name) > MAX_NAME_CHARS:
        raise _bad(path, f"a tensor name of {len(name):,} characters (at most {MAX_NAME_CHARS})")
    if not isinstance(info, dict):
        raise _bad(path, f"entry {name!r} is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise _bad(path, f"tensor {name!r} has dtype {str(dtype)[:40]!r}; known: {', '.join(DTYPE_BYTES)}")
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise _bad(path, f"tensor {name!r} has a bad shape (a list of at most {MAX_RANK} dimensions)")
    if not all(type(d) is int and 0 <= d < MAX_DIM for d in shape):
        raise _bad(path, f"tensor {name!r} has a bad shape {str(shape)[:80]}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise _bad(path, f"tensor {name!r} has bad data_offsets")
    numel = 1
    for d in shape:
        numel *= d
    if offsets[1] - offsets[0] != numel * DTYPE_BYTES[dtype]:
        raise _bad(path, f"tensor {name!r}: data_offsets do not match shape × dtype size")
    if offsets[1] > data_size:
        raise _bad(path, f"truncated: tensor {name!r} ends past the file")
    return offsets[1] - offsets[0]


def read_headers(files: Sequence[Path]) -> list[dict[str, Any]]:
    """The headers of one checkpoint's files, with the per-model bounds shared across them."""
    budget = Budget()
    return [read_header(p, budget) for p in files]


def quant_method(quant: Any) -> str:
    return str(quant.get("quant_method", "quantized")).lower() if isinstance(quant, dict) else ""


def quant_bits(quant: Any) -> int:
    """Bits per packed weight: GPTQ ``bits``, AWQ ``w_bit``, compressed-tensors ``config_groups.*.weights.num_bits``
    (4 when the config does not say, or says something unusable)."""
    if not isinstance(quant, dict):
        return 4
    for v in (quant.get("bits"), quant.get("w_bit")):
        if type(v) is int and v in (2, 3, 4, 8):
            return v
    groups = quant.get("config_groups")
    if isinstance(groups, dict):
        for g in groups.values():
            w = g.get("weights") if isinstance(g, dict) else None
            if isinstance(w, dict) and type(w.get("num_bits")) is int and w["num_bits"] in (2, 4, 8):
                return w["num_bits"]
    return 4


def _encoded_params(name: str, dtype: str, numel: int, names: set[str], bits: int, method: str = "") -> int:
    if name.endswith(_SIDE_SUFFIXES) or ".quant_state." in name:
        return 0
    if name.endswith((".qweight", ".weight_packed")) and dtype == "I32":
        return numel * (32 // bits)
    if name.endswith(".weight_packed") and dtype == "U8":  # compressed-tensors 4-bit (nvfp4) packs two per byte
        return numel * 2
    if method in ("modelopt", "modelopt_fp4"):  # NVFP4: weight U8 holds two e2m1 values a byte (vLLM modelopt.py)
        if name.endswith(".weight_scale_2"):
            return 0
        if dtype == "U8" and name.endswith(".weight"):
            return numel * 2
    if method == "mxfp4" and dtype == "U8":  # gpt-oss: *_blocks hold two fp4 values per byte, *_scales one exponent
        if name.endswith("_scales"):
            return 0
        if name.endswith("_blocks"):
            return numel * 2
    if dtype == "U8" and name.endswith(".weight") and any(
            f"{name}.quant_state.bitsandbytes__{q}" in names for q in ("nf4", "fp4")):
        return numel * 2
    return numel


def stored_tensors(entries: Iterable[tuple[str, str, Sequence[int]]],
                   quant: Optional[dict[str, Any]] = None) -> list[StoredTensor]:
    """``(name, dtype, shape)`` entries → stored tensors with the parameters each encodes."""
    bits, method = quant_bits(quant), quant_method(quant)
    entries = list(entries)
    names = {name for name, _, _ in entries}
    out = []
    for name, dtype, shape in entries:
        numel = 1
        for d in shape:
            numel *= d
        out.append(StoredTensor(name, tuple(shape), dtype, numel * DTYPE_BYTES.get(dtype, 2),
                                _encoded_params(name, dtype, numel, names, bits, method)))
    return out


def header_entries(headers: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, list[int]]]:
    """The ``(name, dtype, shape)`` entries of validated headers."""
    for header in headers:
        for name, info in header.items():
            if name != "__metadata__":
                yield name, info["dtype"], info["shape"]


@dataclass
class Index:
    """A ``*.safetensors.index.json``: the shard files it names (all present) and which tensor is in which."""

    path: Path
    shards: list[Path]
    weight_map: dict[str, str] = field(repr=False)


def _names(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_index(path: Path) -> Index:
    """The shard files a ``*.safetensors.index.json`` names; every one must be next to it."""
    raw = read_limited(path, MAX_INDEX_BYTES)
    try:
        index = parse_json(raw, max_containers=1024, max_items=MAX_TENSORS + 100_000, max_depth=8)
    except JsonProblem as e:
        raise _bad(path, f"index is not JSON: {e}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise _bad(path, "not a safetensors index (no 'weight_map' object)")
    if not weight_map:
        raise _bad(path, "its weight_map is empty: the index names no tensors")
    if len(weight_map) > MAX_TENSORS:
        raise _bad(path, f"its weight_map names {len(weight_map):,} tensors, more than the {MAX_TENSORS:,} allowed")
    files: dict[str, None] = {}
    for tensor, name in weight_map.items():
        if name not in files:
            if (not isinstance(name, str) or not name or len(name) > 255 or "/" in name or "\\" in name
                    or "\0" in name or name.startswith("..")):
                raise _bad(path, f"weight_map: tensor {tensor[:80]!r} is in a bad shard name {str(name)[:80]!r}")
            files[name] = None
            if len(files) > MAX_SHARDS:
                raise _bad(path, f"it names more than {MAX_SHARDS:,} shard files")
    missing = [name for name in sorted(files) if stat_path(path.parent / name, missing_ok=True) is None]
    if missing:
        raise VramscopeError("shards_missing", path=shown_path(path), n=len(missing), total=len(files),
                             names=_names(missing))
    return Index(path, [path.parent / name for name in sorted(files)], weight_map)


def check_index(index: Index, headers: Sequence[dict[str, Any]]) -> None:
    """Every tensor the index names is in the shard it names (else the shards are not the index's)."""
    held = {p.name: h for p, h in zip(index.shards, headers)}
    absent = [t for t, shard in index.weight_map.items() if t not in held[shard]]
    if absent:
        raise _bad(index.path, f"{len(absent):,} of the {len(index.weight_map):,} tensors it lists are not in "
                               f"the shards it names ({_names(absent)}); the shards belong to another download")


def describe_format(tensors: list[StoredTensor], quant: Optional[dict[str, Any]]) -> str:
    """A short label for how the checkpoint stores its weights, e.g. ``bf16`` or ``gptq-4bit-g128``."""
    if isinstance(quant, dict) and quant:
        method = quant_method(quant)[:40]
        if method in ("gptq", "awq"):
            group = quant.get("group_size", quant.get("q_group_size", 128))
            return f"{method}-{quant_bits(quant)}bit-g{group if type(group) is int else 128}"
        if method == "bitsandbytes":
            if quant.get("load_in_4bit") is True or quant.get("_load_in_4bit") is True:
                kind = quant.get("bnb_4bit_quant_type", "nf4")
                return f"bnb-{kind if kind in ('nf4', 'fp4') else 'nf4'}"
            return "bnb-int8"
        return method
    by_dtype: dict[str, int] = {}
    for t in tensors:
        by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.params
    return max(by_dtype, key=by_dtype.__getitem__).lower() if by_dtype else ""
