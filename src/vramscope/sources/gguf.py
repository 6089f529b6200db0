"""Local ``.gguf`` files (llama.cpp, Ollama), read from the header only.

Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic ``GGUF``, version (2 or 3), tensor
count, metadata count, the metadata key/values, then one info record per tensor (name, dims, ggml type,
offset). Every count, string and array is bounded before it is read, so a hostile file cannot make vramscope
allocate or loop without limit. Tensor bytes are exact: ``numel / block_size × type_size`` from the ggml type
table in ``data/ggml_types.json``.
"""

from __future__ import annotations

import json
import os
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import VramscopeError
from ..model.spec import SLIDING, FULL, MLASpec, ModelSpec, MoESpec
from .base import StoredTensor

MAX_TENSORS = 1_000_000
MAX_KV = 100_000
MAX_STRING = 1 << 20  # 1 MiB per string
MAX_ARRAY = 1 << 24  # 16 M elements per array
MAX_DIMS = 8
KEEP_ARRAY = 4096  # arrays longer than this keep only their length

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


@lru_cache(maxsize=1)
def ggml_types() -> dict[str, Any]:
    with (Path(__file__).resolve().parent.parent / "data" / "ggml_types.json").open(encoding="utf-8") as f:
        return json.load(f)


class _Reader:
    def __init__(self, f: BinaryIO, path: Path, size: int) -> None:
        self.f, self.path, self.size = f, path, size

    def bad(self, detail: str) -> VramscopeError:
        return VramscopeError("gguf_bad", path=self.path, detail=detail)

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise self.bad("truncated header")
        return b

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self, limit: int = MAX_STRING) -> str:
        n = self.scalar("<Q")
        if n > limit:
            raise self.bad(f"string of {n} bytes exceeds the {limit}-byte limit")
        return self.read(n).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise self.bad(f"string of {n} bytes exceeds the {MAX_STRING}-byte limit")
        if self.f.tell() + n > self.size:
            raise self.bad("truncated header")
        self.f.seek(n, os.SEEK_CUR)

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            if depth > 2:
                raise self.bad("arrays nested too deeply")
            etype = self.scalar("<I")
            n = self.scalar("<Q")
            if n > MAX_ARRAY:
                raise self.bad(f"array of {n} elements exceeds the {MAX_ARRAY} limit")
            if n > KEEP_ARRAY:
                if etype in _SCALARS:
                    step = struct.calcsize(_SCALARS[etype]) * n
                    if self.f.tell() + step > self.size:
                        raise self.bad("truncated header")
                    self.f.seek(step, os.SEEK_CUR)
                elif etype == 8:
                    for _ in range(n):
                        self.skip_string()
                else:
                    raise self.bad(f"array element type {etype} not allowed in a long array")
                return _Length(n)
            return [self.value(etype, depth + 1) for _ in range(n)]
        raise self.bad(f"unknown metadata value type {vtype}")


class _Length(int):
    """Stands for a long array (e.g. the tokenizer's tokens) of which only the length is kept."""


def read_gguf(path: Path) -> tuple[dict[str, Any], list[StoredTensor]]:
    """Metadata and tensors of a GGUF file; raises :class:`VramscopeError` on anything malformed."""
    types = ggml_types()["types"]
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")
    except OSError as e:
        raise VramscopeError("file_unreadable", path=path, detail=e.strerror or str(e)) from None
    with f:
        r = _Reader(f, path, size)
        if r.read(4) != b"GGUF":
            raise r.bad("missing GGUF magic")
        version = r.scalar("<I")
        if version not in (2, 3):
            raise r.bad(f"version {version} not supported (2 or 3)")
        n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
        if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
            raise r.bad(f"{n_tensors} tensors / {n_kv} metadata entries exceed the limits")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string(limit=65536)
            meta[key] = r.value(r.scalar("<I"))
        tensors: list[StoredTensor] = []
        for _ in range(n_tensors):
            name = r.string(limit=65536)
            n_dims = r.scalar("<I")
            if n_dims > MAX_DIMS:
                raise r.bad(f"tensor {name!r} has {n_dims} dimensions")
            dims = tuple(r.scalar("<Q") for _ in range(n_dims))
            ttype = r.scalar("<I")
            r.scalar("<Q")  # offset within the data section
            info = types.get(str(ttype))
            if info is None:
                raise r.bad(f"tensor {name!r} has unknown ggml type {ttype}")
            numel = 1
            for d in dims:
                if d > 2**40:
                    raise r.bad(f"tensor {name!r} has an absurd dimension {d}")
                numel *= d
            if numel % info["block"]:
                raise r.bad(f"tensor {name!r}: {numel} elements is not a multiple of the {info['name']} block")
            tensors.append(StoredTensor(name, dims, info["name"], numel // info["block"] * info["bytes"], numel))
        header_end = f.tell()
    align = int(meta.get("general.alignment", 32) or 32)
    data_start = (header_end + align - 1) // align * align
    if data_start + sum(t.nbytes for t in tensors) > size:
        raise VramscopeError("gguf_bad", path=path, detail="truncated: tensor data ends past the file")
    return meta, tensors


def file_type_name(meta: dict[str, Any]) -> str:
    ft = meta.get("general.file_type")
    return ggml_types()["file_types"].get(str(ft), "") if ft is not None else ""


def spec_from_gguf(meta: dict[str, Any], tensors: list[StoredTensor], name: str, path: Path) -> ModelSpec:
    """A spec from GGUF metadata (``<arch>.block_count``, ``<arch>.attention.head_count``, ...)."""
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise VramscopeError("gguf_bad", path=path, detail="general.architecture is missing")

    def get(key: str, default: Any = ...) -> Any:
        v = meta.get(f"{arch}.{key}")
        if v is None:
            if default is ...:
                raise VramscopeError("gguf_bad", path=path, detail=f"{arch}.{key} is missing")
            return default
        if isinstance(v, list):  # per-layer values (e.g. head_count_kv): the largest is what memory needs
            v = max(v) if v else default
        return int(v)

    names = {t.name for t in tensors}
    hidden, heads = get("embedding_length"), get("attention.head_count")
    kv_heads = get("attention.head_count_kv", heads) or heads
    head_dim = get("attention.key_length", hidden // heads)
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = get("vocab_size", len(tokens) if tokens is not None else 0)
    if not vocab:
        emb = next((t for t in tensors if t.name == "token_embd.weight"), None)
        vocab = emb.shape[1] if emb else 0
    n_layers = get("block_count")
    experts = get("expert_count", 0)
    moe = None
    if experts:
        moe = MoESpec(num_experts=experts, experts_per_token=get("expert_used_count", 1),
                      expert_intermediate_size=get("expert_feed_forward_length", get("feed_forward_length")),
                      shared_intermediate_size=get("expert_shared_count", 0) * get("expert_feed_forward_length", 0),
                      dense_layers=tuple(range(get("leading_dense_block_count", 0))))
    mla = None
    if get("attention.kv_lora_rank", 0):
        rope = get("rope.dimension_count")
        mla = MLASpec(q_lora_rank=get("attention.q_lora_rank", 0) or None, kv_lora_rank=get("attention.kv_lora_rank"),
                      qk_nope_head_dim=head_dim - rope, qk_rope_head_dim=rope,
                      v_head_dim=get("attention.value_length", head_dim - rope))
    window = get("attention.sliding_window", 0) or None
    types: tuple[str, ...] = ()
    if window and arch in ("gemma2",):
        types = tuple(SLIDING if (i + 1) % 2 else FULL for i in range(n_layers))
    elif window and arch in ("gemma3",):
        types = tuple(SLIDING if (i + 1) % 6 else FULL for i in range(n_layers))
    return ModelSpec(
        name=name, model_type=f"gguf:{arch}", architecture=arch, num_layers=n_layers, hidden_size=hidden,
        num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim,
        intermediate_size=get("feed_forward_length", 4 * hidden), vocab_size=vocab,
        tie_embeddings="output.weight" not in names, max_position_embeddings=get("context_length", 0),
        sliding_window=window, layer_types=types, moe=moe, mla=mla, source=str(path),
    )
