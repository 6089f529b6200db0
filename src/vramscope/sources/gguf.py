"""Local ``.gguf`` files (llama.cpp, Ollama), read from the header only.

Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic ``GGUF``, version (2 or 3), tensor
count, metadata count, the metadata key/values, then one info record per tensor (name, dims, ggml type,
offset), then the tensor data, aligned to ``general.alignment`` (32).

Every count, string and array is bounded before it is read, so a hostile file cannot make vramscope allocate
or loop without limit; arrays longer than :data:`KEEP_ARRAY` (the tokenizer's tokens, merges, scores) are
skipped and kept as a :class:`LongArray` that knows only its length. The rules ggml's own loader
(``ggml/src/gguf.cpp``) enforces are enforced here too: unique keys and tensor names, at most 4 dimensions,
rows a multiple of the type's block, an element count that fits int64, and tensors laid out one after another
(each at the previous one's end, padded to the alignment) inside the file. Tensor bytes are exact:
``numel / block_size × type_size`` from the ggml type table in ``data/ggml_types.json``.

:func:`spec_from_gguf` reads the architecture from ``<arch>.*`` keys as llama.cpp's ``llama-model.cpp`` does,
checks every number against the allowed range, and checks the ones memory depends on against the tensors
themselves (embedding width and vocabulary, layers, K/V projection rows, expert tensors), so a file whose
metadata disagrees with its own tensors is refused with a line naming the key rather than estimated.
Split files (``name-00001-of-00003.gguf``) are read shard by shard and estimated as one model.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Optional

from ..errors import VramscopeError
from ..model.families import by_gguf_arch, sliding_layers
from ..model.limits import LIMITS
from ..model.spec import FULL, SLIDING, CompressedKVSpec, MLASpec, ModelSpec, MoESpec, StateSpec
from .base import StoredTensor, format_limit, open_regular

MAX_TENSORS = 1_000_000
MAX_KV = 100_000
MAX_STRING = 1 << 20  # 1 MiB per string value
MAX_KEY = 65_536  # bytes in a metadata key or a tensor name
MAX_ARRAY = 1 << 24  # 16 M elements per array
MAX_DIMS = 4  # GGML_MAX_DIMS
KEEP_ARRAY = 4096  # arrays longer than this keep only their length (LongArray)
KEEP_TOTAL = 1 << 20  # array elements kept over a whole header; later arrays keep only their length
MAX_SHARDS = 1000
INT64_MAX = 2**63 - 1

# limits on the architecture numbers: the plausible-shape table every source shares (model/limits.py: 4× to
# 50× the largest published model), so no real file is refused and no estimate loops or multiplies without bound
MAX_LAYERS = LIMITS["num_layers"].maximum
MAX_WIDTH = LIMITS["hidden_size"].maximum  # embedding_length
MAX_FFN = LIMITS["intermediate_size"].maximum  # feed_forward_length, expert_feed_forward_length
MAX_HEADS = LIMITS["num_heads"].maximum
MAX_HEAD_DIM = LIMITS["head_dim"].maximum  # key_length, value_length (576 for a latent-absorbed DeepSeek)
MAX_RANK = LIMITS["kv_lora_rank"].maximum  # q_lora_rank, kv_lora_rank
MAX_VOCAB = LIMITS["vocab_size"].maximum
MAX_EXPERTS = LIMITS["num_experts"].maximum
MAX_CONTEXT = LIMITS["max_position_embeddings"].maximum
MAX_WINDOW = LIMITS["sliding_window"].maximum  # a larger sliding window is no window (configs use 2^32 - 1)
LLAMA_MAX_LAYERS = 512  # src/llama-hparams.h: the per-layer arrays (compress_ratios) hold at most this many

_STRUCTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_SCALARS = {k: struct.Struct(v) for k, v in _STRUCTS.items()}
_TYPE_NAMES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32", 7: "bool",
               8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64"}
_U32, _U64 = _SCALARS[4], _SCALARS[10]
_CHUNK = 1 << 16
_ARCH = re.compile(r"[A-Za-z0-9_\-.]{1,64}")
_BLK = re.compile(r"^blk\.(\d{1,9})\.")
_SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


@lru_cache(maxsize=1)
def ggml_types() -> dict[str, Any]:
    with (Path(__file__).resolve().parent.parent / "data" / "ggml_types.json").open(encoding="utf-8") as f:
        return json.load(f)


class LongArray:
    """A metadata array longer than :data:`KEEP_ARRAY` (e.g. the tokenizer's tokens): only its length is kept.

    ``len()`` works; it is neither a list nor a number, so no consumer mistakes it for either.
    """

    __slots__ = ("etype", "length")

    def __init__(self, etype: int, length: int) -> None:
        self.etype, self.length = etype, length

    def __len__(self) -> int:
        return self.length

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LongArray) and (self.etype, self.length) == (other.etype, other.length)

    def __hash__(self) -> int:
        return hash((self.etype, self.length))

    def __repr__(self) -> str:
        return f"array[{self.length} × {_TYPE_NAMES.get(self.etype, self.etype)}]"


def _show(value: Any) -> str:
    """A metadata value as an error message shows it: short, one line."""
    if isinstance(value, LongArray):
        return repr(value)
    if isinstance(value, list):
        if len(value) <= 4:
            return "[" + ", ".join(_show(v) for v in value) + "]"
        return f"array[{len(value)}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        s = value if len(value) <= 40 else value[:40] + "…"
        return repr(s)
    return repr(value)


def _q(name: str) -> str:
    """A name from the file, safe for a one-line message."""
    return repr(name if len(name) <= 80 else name[:80] + "…")


class _Reader:
    """Bounded little-endian reads from a file through a small window (fast over long string arrays)."""

    def __init__(self, f: BinaryIO, path: Path, size: int, prefix: bool = False) -> None:
        self.f, self.path, self.size = f, path, size
        self.prefix = prefix  # the bytes are the first ``size`` of a longer file (an upload's prefix)
        self.buf, self.pos, self.base = b"", 0, 0  # buf starts at file offset base
        self.what = "the header"
        self.kept = 0

    def bad(self, detail: str) -> VramscopeError:
        return VramscopeError("gguf_bad", path=self.path, detail=detail)

    def truncated(self) -> VramscopeError:
        if self.prefix:
            return VramscopeError("gguf_header_past_prefix", path=self.path, what=self.what,
                                  limit=format_limit(self.size))
        return VramscopeError("gguf_truncated", path=self.path, what=self.what, size=self.size)

    def tell(self) -> int:
        return self.base + self.pos

    def need(self, n: int) -> None:
        """Fail cleanly unless ``n`` more bytes exist after the current position."""
        if self.tell() + n > self.size:
            raise self.truncated()

    def _fill(self, n: int) -> None:
        avail = len(self.buf) - self.pos
        if avail >= n:
            return
        self.need(n)
        more = self.f.read(max(n - avail, _CHUNK))
        self.buf, self.base, self.pos = self.buf[self.pos:] + more, self.tell(), 0
        if len(self.buf) < n:  # the file shrank while being read
            raise self.truncated()

    def read(self, n: int) -> bytes:
        self._fill(n)
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def skip(self, n: int) -> None:
        if len(self.buf) - self.pos >= n:
            self.pos += n
            return
        self.need(n)
        target = self.tell() + n
        self.f.seek(target)
        self.buf, self.pos, self.base = b"", 0, target

    def scalar(self, st: struct.Struct) -> Any:
        self._fill(st.size)
        v = st.unpack_from(self.buf, self.pos)[0]
        self.pos += st.size
        return v

    def u32(self) -> int:
        return self.scalar(_U32)

    def u64(self) -> int:
        return self.scalar(_U64)

    def string(self, limit: int = MAX_STRING) -> str:
        n = self.u64()
        if n > limit:
            raise self.bad(f"{self.what}: a string of {n} bytes exceeds the {limit}-byte limit")
        return self.read(n).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` strings (a long string array) without decoding them."""
        u64 = _U64.unpack_from
        buf, pos = self.buf, self.pos
        for _ in range(count):
            if len(buf) - pos < 8:
                self.pos = pos
                self._fill(8)
                buf, pos = self.buf, self.pos
            n = u64(buf, pos)[0]
            if n > MAX_STRING:
                raise self.bad(f"{self.what}: a string of {n} bytes exceeds the {MAX_STRING}-byte limit")
            pos += 8 + n
            if pos > len(buf):  # the string runs past the window
                self.pos = pos - n
                self.skip(n)
                buf, pos = self.buf, self.pos
        self.pos = pos

    def value(self, vtype: int) -> Any:
        st = _SCALARS.get(vtype)
        if st is not None:
            return self.scalar(st)
        if vtype == 8:
            return self.string()
        if vtype != 9:
            raise self.bad(f"{self.what}: unknown metadata value type {vtype}")
        etype, n = self.u32(), self.u64()
        if etype == 9:
            raise self.bad(f"{self.what}: arrays of arrays are not supported (ggml refuses them too)")
        est = _SCALARS.get(etype)
        if est is None and etype != 8:
            raise self.bad(f"{self.what}: unknown array element type {etype}")
        if n > MAX_ARRAY:
            raise self.bad(f"{self.what}: an array of {n} elements exceeds the {MAX_ARRAY} limit")
        self.need(n * (est.size if est is not None else 8))
        if n > KEEP_ARRAY or self.kept + n > KEEP_TOTAL:
            if est is not None:
                self.skip(n * est.size)
            else:
                self.skip_strings(n)
            return LongArray(etype, n)
        self.kept += n
        if est is not None:
            raw = self.read(n * est.size)
            return list(struct.unpack(f"<{n}{_STRUCTS[etype][1]}", raw))
        return [self.string() for _ in range(n)]


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    """Open ``path`` with the shared safe opener (FIFOs, devices and folders refused before opening)."""
    f = open_regular(path)
    return f, os.fstat(f.fileno()).st_size


def _read_one(path: Path, data: Optional[bytes] = None,
              prefix: bool = False) -> tuple[dict[str, Any], list[StoredTensor]]:
    """Metadata and tensors of one GGUF file (one shard of a split model). ``data``: the file's bytes (or, with
    ``prefix``, its first bytes: the tensors' data is then not there to check) instead of opening ``path``."""
    types = ggml_types()["types"]
    f, size = _open_regular(path) if data is None else (io.BytesIO(data), len(data))
    with f:
        r = _Reader(f, path, size, prefix)
        r.need(4)
        if r.read(4) != b"GGUF":
            raise VramscopeError("gguf_not_gguf", path=path)
        version = r.u32()
        if version not in (2, 3):
            if version & 0xFFFF == 0 and (version >> 24) in (2, 3):
                raise r.bad(f"big-endian GGUF (version {version >> 24}) is not supported; use a little-endian file")
            raise r.bad(f"version {version} not supported (2 or 3)")
        n_tensors, n_kv = r.u64(), r.u64()
        if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
            raise r.bad(f"{n_tensors} tensors / {n_kv} metadata entries exceed the limits "
                        f"({MAX_TENSORS} / {MAX_KV})")
        meta: dict[str, Any] = {}
        for i in range(n_kv):
            r.what = f"metadata entry #{i}"
            key = r.string(limit=MAX_KEY)
            r.what = f"metadata key {_q(key)}"
            if key in meta:
                raise r.bad(f"metadata key {_q(key)} appears twice")
            meta[key] = r.value(r.u32())
        tensors: list[StoredTensor] = []
        seen: set[str] = set()
        offsets: list[int] = []
        for i in range(n_tensors):
            r.what = f"tensor record #{i}"
            name = r.string(limit=MAX_KEY)
            r.what = f"tensor {_q(name)}"
            if name in seen:
                raise r.bad(f"tensor {_q(name)} appears twice")
            seen.add(name)
            n_dims = r.u32()
            if n_dims > MAX_DIMS:
                raise r.bad(f"tensor {_q(name)} has {n_dims} dimensions (at most {MAX_DIMS})")
            dims = tuple(r.u64() for _ in range(n_dims))
            ttype = r.u32()
            offsets.append(r.u64())  # within the data section
            info = types.get(str(ttype))
            if info is None:
                raise r.bad(f"tensor {_q(name)} has unknown ggml type {ttype}")
            numel = 1
            for d in dims:
                if d > INT64_MAX:
                    raise r.bad(f"tensor {_q(name)} has a negative dimension ({d - 2**64} as int64)")
                numel *= d
            if numel > INT64_MAX:
                raise r.bad(f"tensor {_q(name)}: dimensions {list(dims)} overflow int64 ({numel} elements)")
            row = dims[0] if dims else 1
            if row % info["block"]:
                raise r.bad(f"tensor {_q(name)}: a row of {row} elements is not a multiple of the "
                            f"{info['name']} block of {info['block']}")
            tensors.append(StoredTensor(name, dims, info["name"], numel // info["block"] * info["bytes"], numel))
        header_end = r.tell()
    align = meta.get("general.alignment", 32)
    if isinstance(align, bool) or not isinstance(align, int) or align < 1 or align > 1 << 30 \
            or align & (align - 1):
        raise VramscopeError("gguf_key_pow2", path=path, key="general.alignment", value=_show(align),
                             maximum=1 << 30)
    data_start = (header_end + align - 1) // align * align
    expected = 0
    for t, offset in zip(tensors, offsets):
        if offset != expected:
            raise VramscopeError("gguf_bad", path=path, detail=(
                f"tensor {_q(t.name)} has data offset {offset}; expected {expected} (each tensor follows the "
                f"previous one, padded to {align} bytes)"))
        end = data_start + offset + t.nbytes
        if end > size and not prefix:
            raise VramscopeError("gguf_truncated", path=path, what=f"the data of tensor {_q(t.name)}", size=size)
        expected += (t.nbytes + align - 1) // align * align
    name = meta.get("general.name")
    if name is not None and not isinstance(name, str):
        del meta["general.name"]  # a label only: the file name stands in for it
    elif isinstance(name, str):
        meta["general.name"] = "".join(c if c.isprintable() else " " for c in name[:200]).strip()
    return meta, tensors


def _split_count(meta: dict[str, Any], path: Path, key: str, default: Any, lo: int, hi: int) -> int:
    v = meta.get(key, default)
    if v is ...:
        raise VramscopeError("gguf_key_missing", path=path, key=key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise VramscopeError("gguf_key_int", path=path, key=key, value=_show(v), minimum=lo, maximum=hi)
    return v


def read_gguf(path: Path) -> tuple[dict[str, Any], list[StoredTensor]]:
    """Metadata and tensors of a GGUF file (every shard of a split one); :class:`VramscopeError` if malformed."""
    path = Path(path)
    meta, tensors = _read_one(path)
    count = _split_count(meta, path, "split.count", 1, 0, MAX_SHARDS)
    if count <= 1:
        if not tensors:
            raise VramscopeError("gguf_bad", path=path, detail="the file holds no tensors (a vocabulary-only file?)")
        return meta, tensors
    no = _split_count(meta, path, "split.no", 0, 0, count - 1)
    m = _SPLIT_NAME.match(path.name)
    if m is None or int(m.group("count")) != count or int(m.group("no")) != no + 1:
        raise VramscopeError("gguf_bad", path=path, detail=(
            f"shard {no + 1} of {count} of a split model, but its name does not follow the "
            f"NAME-{no + 1:05d}-of-{count:05d}.gguf pattern that locates the other shards"))
    shard = [path.with_name(f"{m.group('prefix')}-{i + 1:05d}-of-{count:05d}.gguf") for i in range(count)]
    if no != 0:
        meta, tensors = _read_one(shard[0])
        _split_count(meta, shard[0], "split.no", 0, 0, 0)
    total = _split_count(meta, shard[0], "split.tensors.count", 0, 0, MAX_TENSORS * MAX_SHARDS)
    names = {t.name for t in tensors}
    for i in range(1, count):
        if not shard[i].is_file():
            raise VramscopeError("gguf_bad", path=shard[0],
                                 detail=f"shard {shard[i].name} of the split model is missing")
        m_i, t_i = _read_one(shard[i])
        _split_count(m_i, shard[i], "split.no", ..., i, i)
        _split_count(m_i, shard[i], "split.count", ..., count, count)
        for t in t_i:
            if t.name in names:
                raise VramscopeError("gguf_bad", path=shard[i], detail=f"tensor {_q(t.name)} appears twice")
            names.add(t.name)
        tensors = tensors + t_i
    if total != len(tensors):
        raise VramscopeError("gguf_key_int", path=shard[0], key="split.tensors.count", value=total,
                             minimum=len(tensors), maximum=len(tensors))
    if not tensors:
        raise VramscopeError("gguf_bad", path=path, detail="the file holds no tensors (a vocabulary-only file?)")
    return meta, tensors


def read_gguf_upload(data: bytes, label: str) -> tuple[dict[str, Any], list[StoredTensor]]:
    """Metadata and tensors from a GGUF file's first bytes as a client sent them (the page sends
    ``File.slice(0, limit)``): the same bounded reader as :func:`read_gguf`, on the bytes in memory, so nothing
    is opened; the tensors' data is not there, so only its layout is checked, not that the file holds it. A header
    that runs past the bytes is refused with their size; so is a split model's shard (the others are not here)."""
    path = Path(label)
    meta, tensors = _read_one(path, data, prefix=True)
    count = _split_count(meta, path, "split.count", 1, 0, MAX_SHARDS)
    if count > 1:
        raise VramscopeError("gguf_upload_split", path=path, count=count)
    if not tensors:
        raise VramscopeError("gguf_bad", path=path, detail="the file holds no tensors (a vocabulary-only file?)")
    return meta, tensors


def file_type_name(meta: dict[str, Any]) -> str:
    """``Q4_K_M`` from ``general.file_type`` (a label only: anything else gives "")."""
    ft = meta.get("general.file_type")
    if isinstance(ft, bool) or not isinstance(ft, int):
        return ""
    return ggml_types()["file_types"].get(str(ft), "")


def layer_of(name: str) -> Optional[int]:
    """The block index of a GGUF tensor name (``blk.N.…``), else None."""
    m = _BLK.match(name)
    return int(m.group(1)) if m else None


class _Meta:
    """Typed, bounded access to the ``<arch>.*`` keys; every failure names the key and what is allowed."""

    def __init__(self, meta: dict[str, Any], arch: str, path: Path) -> None:
        self.meta, self.arch, self.path = meta, arch, path
        self.n_layers = 0  # set once block_count is known: per-layer arrays must have that many entries

    def key(self, key: str) -> str:
        return f"{self.arch}.{key}"

    def has(self, key: str) -> bool:
        return self.meta.get(self.key(key)) is not None

    def bad(self, key: str, value: Any, lo: Any, hi: Any) -> VramscopeError:
        return VramscopeError("gguf_key_int", path=self.path, key=self.key(key), value=_show(value), minimum=lo,
                              maximum=hi)

    def _whole(self, key: str, v: Any, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.bad(key, v, lo, hi)
        return v

    def int(self, key: str, default: Any = ..., lo: int = 1, hi: int = MAX_WIDTH) -> int:
        v = self.meta.get(self.key(key))
        if v is None:
            if default is ...:
                raise VramscopeError("gguf_key_missing", path=self.path, key=self.key(key))
            return default
        return self._whole(key, v, lo, hi)

    def layers(self, key: str, default: Any = ..., lo: int = 1, hi: int = MAX_WIDTH) -> list[int]:
        """A number that may also be given per layer (``head_count_kv``, ``feed_forward_length``): one per layer.

        Per-layer entries may be 0 (a layer without attention or FFN, as in hybrid models); the largest must
        still be at least ``lo``.
        """
        v = self.meta.get(self.key(key))
        if v is None:
            if default is ...:
                raise VramscopeError("gguf_key_missing", path=self.path, key=self.key(key))
            return [default] * self.n_layers
        if isinstance(v, (list, LongArray)):
            if len(v) != self.n_layers or isinstance(v, LongArray):
                raise VramscopeError("gguf_key_per_layer", path=self.path, key=self.key(key), count=len(v),
                                     layers=self.n_layers)
            out = [self._whole(key, x, 0, hi) for x in v]
            if max(out) < lo:
                raise self.bad(key, v, lo, hi)
            return out
        return [self._whole(key, v, lo, hi)] * self.n_layers

    def float(self, key: str, lo: float = 0.0, hi: float = 1e9) -> float:
        v = self.meta.get(self.key(key))
        if v is None:
            return 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise VramscopeError("gguf_key_number", path=self.path, key=self.key(key), value=_show(v),
                                 minimum=f"{lo:g}", maximum=f"{hi:g}")
        return float(v)


def _mismatch(path: Path, key: str, value: Any, tensor: str, actual: Any) -> VramscopeError:
    shown = value if isinstance(value, str) else _show(value)
    return VramscopeError("gguf_key_tensor", path=path, key=key, value=shown, tensor=tensor, actual=actual)


def _pair(m: "_Meta", a: str, b: str, op: str = "×") -> str:
    """Two keys whose product (or sum) a tensor's rows must equal, named together in the message."""
    return f"{m.key(a)}' {op} '{m.key(b)}"


def _swa_layers(m: _Meta, n_layers: int) -> Optional[list[bool]]:
    """Which layers use the sliding window, or None when every layer does (no pattern known)."""
    key = "attention.sliding_window_pattern"
    v = m.meta.get(m.key(key))
    if isinstance(v, (list, LongArray)):
        if isinstance(v, LongArray) or len(v) != n_layers or any(not isinstance(x, bool) for x in v):
            raise VramscopeError("gguf_key_bools", path=m.path, key=m.key(key), value=_show(v), layers=n_layers)
        return list(v)
    # llama.cpp's default pattern per architecture (llama-model.cpp ``set_swa_pattern``): Family.swa_pattern
    n = m.int(key, by_gguf_arch(m.arch).swa_pattern or -1, lo=0, hi=MAX_LAYERS)
    if n < 0:
        return None
    return sliding_layers(n, n_layers)


def _architecture(meta: dict[str, Any], path: Path) -> str:
    arch = meta.get("general.architecture")
    if arch is None:
        raise VramscopeError("gguf_key_missing", path=path, key="general.architecture")
    if not isinstance(arch, str) or not _ARCH.fullmatch(arch):
        raise VramscopeError("gguf_key_arch", path=path, key="general.architecture", value=_show(arch))
    return arch


def _block_count(m: _Meta, seen_layers: list[int]) -> int:
    """``block_count``, checked against the blocks the tensors name; sets ``m.n_layers``."""
    n_layers = m.int("block_count", lo=1, hi=MAX_LAYERS)
    # every block holds tensors named blk.N.* (llama.cpp loads them by that name): N runs over 0..block_count-1
    if seen_layers != list(range(n_layers)):
        shown = ", ".join(map(str, seen_layers[:8])) + (f", … {seen_layers[-1]}" if len(seen_layers) > 8 else "")
        raise VramscopeError("gguf_key_blocks", path=m.path, key=m.key("block_count"), value=n_layers,
                             blocks=shown or "-")
    m.n_layers = n_layers
    return n_layers


def _hidden_size(m: _Meta, emb: Optional[StoredTensor]) -> int:
    hidden = m.int("embedding_length", hi=MAX_WIDTH)
    if emb is not None and len(emb.shape) == 2 and emb.shape[0] != hidden:
        raise _mismatch(m.path, m.key("embedding_length"), hidden, emb.name, f"width {emb.shape[0]}")
    return hidden


class _Heads(NamedTuple):
    per_layer: list[int]
    kv_per_layer: list[int]
    key_len: int
    value_len: int
    swa_key_len: int


def _heads(m: _Meta, hidden: int) -> _Heads:
    """Attention heads per layer (KV heads must divide them) and the key / value lengths."""
    heads_l = m.layers("attention.head_count", lo=1, hi=MAX_HEADS)
    heads = max(heads_l)
    kv_l = m.layers("attention.head_count_kv", heads, lo=1, hi=MAX_HEADS)
    for kv, h in zip(kv_l, heads_l):
        if kv and h and (kv > h or h % kv):  # llama.cpp: n_gqa = n_head / n_head_kv, a whole number
            raise VramscopeError("gguf_key_divisor", path=m.path, key=m.key("attention.head_count_kv"), value=kv,
                                 other=m.key("attention.head_count"), total=h)
    if hidden // heads == 0 and not m.has("attention.key_length"):
        raise m.bad("attention.head_count", heads, 1, f"embedding_length ({hidden})")
    key_len = m.int("attention.key_length", hidden // heads, hi=MAX_HEAD_DIM)
    value_len = m.int("attention.value_length", key_len, hi=MAX_HEAD_DIM)
    swa_key_len = m.int("attention.key_length_swa", key_len, hi=MAX_HEAD_DIM)
    return _Heads(heads_l, kv_l, key_len, value_len, swa_key_len)


def _vocab_size(m: _Meta, emb: Optional[StoredTensor]) -> int:
    """The embedding's rows are what memory holds; the token list and vocab_size must agree with them."""
    path = m.path
    tokens = m.meta.get("tokenizer.ggml.tokens")
    n_tokens = None
    if tokens is not None:
        if isinstance(tokens, LongArray) and tokens.etype == 8:
            n_tokens = tokens.length
        elif isinstance(tokens, list) and all(isinstance(x, str) for x in tokens):
            n_tokens = len(tokens)
        else:
            raise VramscopeError("gguf_key_text", path=path, key="tokenizer.ggml.tokens", value=_show(tokens))
    vocab_key = m.int("vocab_size", None, lo=1, hi=MAX_VOCAB)
    if emb is not None and len(emb.shape) == 2:
        vocab = emb.shape[1]
        if vocab_key is not None and vocab_key != vocab:
            raise _mismatch(path, m.key("vocab_size"), vocab_key, emb.name, f"{vocab} rows")
        if n_tokens is not None and n_tokens != vocab:
            raise _mismatch(path, "tokenizer.ggml.tokens", LongArray(8, n_tokens), emb.name, f"{vocab} rows")
    else:
        vocab = vocab_key or n_tokens or 0
    if not vocab:
        raise VramscopeError("gguf_key_missing", path=path, key=m.key("vocab_size"))
    if vocab > MAX_VOCAB:
        raise m.bad("vocab_size", vocab, 1, MAX_VOCAB)
    return vocab


def _mla(m: _Meta, h: _Heads, kv_lora: int, by_name: dict[str, StoredTensor],
         seen_layers: list[int]) -> tuple[MLASpec, int, Optional[int]]:
    """MLA (DeepSeek-V2/V3 family): its spec, the head dim, and the KV head count when the file writes MQA."""
    q_lora = m.int("attention.q_lora_rank", 0, lo=0, hi=MAX_RANK)
    kv_heads = None
    if m.has("attention.key_length_mla"):
        # llama.cpp since 2025 writes MLA as MQA over the latent: head_count_kv 1, key_length
        # kv_lora_rank + rope, value_length kv_lora_rank, and the per-head sizes under *_mla
        qk = m.int("attention.key_length_mla", hi=MAX_HEAD_DIM)
        v_dim = m.int("attention.value_length_mla", hi=MAX_HEAD_DIM)
        kv_heads = max(h.per_layer)
    else:
        qk, v_dim = h.key_len, h.value_len
    qk_key = "attention.key_length_mla" if m.has("attention.key_length_mla") else "attention.key_length"
    if qk < 2:
        raise m.bad(qk_key, qk, 2, MAX_HEAD_DIM)
    rope = m.int("rope.dimension_count", lo=1, hi=qk - 1)
    mla = MLASpec(q_lora_rank=q_lora or None, kv_lora_rank=kv_lora, qk_nope_head_dim=qk - rope,
                  qk_rope_head_dim=rope, v_head_dim=v_dim)
    for i in seen_layers:
        t = by_name.get(f"blk.{i}.attn_kv_a_mqa.weight")
        if t is not None and len(t.shape) == 2 and t.shape[1] != kv_lora + rope:
            raise _mismatch(m.path, _pair(m, "attention.kv_lora_rank", "rope.dimension_count", "+"),
                            f"{kv_lora} + {rope}", t.name, f"{t.shape[1]} rows")
        t = by_name.get(f"blk.{i}.attn_q_b.weight") or by_name.get(f"blk.{i}.attn_q.weight")
        if t is not None and len(t.shape) == 2 and t.shape[1] != h.per_layer[i] * qk:
            raise _mismatch(m.path, _pair(m, "attention.head_count", qk_key), f"{h.per_layer[i]} × {qk}", t.name,
                            f"{t.shape[1]} rows")
    return mla, qk, kv_heads


def _check_attention_rows(m: _Meta, h: _Heads, by_name: dict[str, StoredTensor], seen_layers: list[int]) -> None:
    """Standard attention: each layer's K and Q projection rows must match its heads × key length."""
    swa = _swa_layers(m, m.n_layers) if m.has("attention.sliding_window") else None
    for i in seen_layers:
        k_len = h.swa_key_len if swa and swa[i] else h.key_len
        t = by_name.get(f"blk.{i}.attn_k.weight")
        k_key = "attention.key_length_swa" if swa and swa[i] and m.has("attention.key_length_swa") \
            else "attention.key_length"
        if t is not None and len(t.shape) == 2 and t.shape[1] != h.kv_per_layer[i] * k_len:
            raise _mismatch(m.path, _pair(m, "attention.head_count_kv", k_key), f"{h.kv_per_layer[i]} × {k_len}",
                            t.name, f"{t.shape[1]} rows")
        t = by_name.get(f"blk.{i}.attn_q.weight")
        if t is not None and len(t.shape) == 2 and t.shape[1] < h.per_layer[i] * k_len:
            raise _mismatch(m.path, _pair(m, "attention.head_count", k_key), f"{h.per_layer[i]} × {k_len}", t.name,
                            f"{t.shape[1]} rows")


def _layer_kv(m: _Meta, h: _Heads, n_layers: int) -> tuple[tuple[int, int], ...]:
    """Per-layer cache shapes (KV heads, head size) where llama.cpp's differ between layers, as
    ``ModelSpec.layer_kv`` holds them: ``head_count_kv`` per layer, ``key_length`` / ``value_length`` on full and
    ``key_length_swa`` / ``value_length_swa`` on sliding layers (``llama_hparams::n_embd_head_k(il)``), and (0, 0)
    for the last ``attention.shared_kv_layers`` (Gemma 4: ``n_layer_kv_from_start``, they store nothing). Read at
    ggml-org/llama.cpp 82bb48500 (src/llama-model.cpp ``load_hparams``, src/models/gemma4.cpp,
    src/llama-hparams.cpp). () where every layer is alike, or where a layer's keys and values differ in size
    (not representable as one head size)."""
    if not (m.has("attention.shared_kv_layers") or m.has("attention.key_length_swa")):
        return ()
    swa = _swa_layers(m, n_layers) if m.has("attention.sliding_window") else None
    shared = m.int("attention.shared_kv_layers", 0, lo=0, hi=n_layers)
    v_swa = m.int("attention.value_length_swa", h.value_len, hi=MAX_HEAD_DIM)
    shapes = []
    for i in range(n_layers):
        k, v = (h.swa_key_len, v_swa) if swa and swa[i] else (h.key_len, h.value_len)
        if k != v:
            return ()
        shapes.append((h.kv_per_layer[i], k) if i < n_layers - shared else (0, 0))
    uniform = (max(1, max(h.kv_per_layer)), h.key_len)
    return tuple(shapes) if any(x != uniform for x in shapes) else ()


def _kv_values(m: _Meta, h: _Heads, n_layers: int) -> dict[str, Any]:
    """Where keys and values differ in size (``attention.value_length`` ≠ ``key_length``, no MLA: MiMo-V2-Flash's
    ``mimo2``, keys 192 and values 128, ``head_count_kv`` per layer; conversion/mimo.py at ggml-org/llama.cpp
    82bb48500), each layer's cached values per token, ``head_count_kv(il) × (key_length + value_length)``
    (``n_embd_k_gqa(il) + n_embd_v_gqa(il)``, the sliding layers' ``*_swa`` lengths), as
    ``ModelSpec.kv_values_per_layer`` holds a checkpoint's ``k_proj + v_proj`` widths, with ``num_kv_heads`` the
    narrowest layer's heads (as MiMo's config names its full layers'): ``llamacpp_kv.layer_widths`` splits them
    back into K and V. Nothing where keys and values are alike (``ModelSpec.layer_kv`` covers the rest)."""
    swa = _swa_layers(m, n_layers) if m.has("attention.sliding_window") else None
    v_swa = m.int("attention.value_length_swa", h.value_len, hi=MAX_HEAD_DIM)
    lengths = [(h.swa_key_len, v_swa) if swa and swa[i] else (h.key_len, h.value_len) for i in range(n_layers)]
    if all(k == v for k, v in lengths) or len({k + v for k, v in lengths}) != 1:
        return {}
    heads = [x for x in h.kv_per_layer if x]
    if not heads:
        return {}
    return {"kv_values_per_layer": tuple(kv * (k + v) for kv, (k, v) in zip(h.kv_per_layer, lengths)),
            "num_kv_heads": min(heads)}


def _moe(m: _Meta, tensors: list[StoredTensor], ffn_l: list[int]) -> Optional[MoESpec]:
    """Mixture of experts: a layer routes when it holds ffn_*_exps tensors; their shapes must match the keys."""
    path, n_layers = m.path, m.n_layers
    experts = m.int("expert_count", 0, lo=0, hi=MAX_EXPERTS)
    moe_layers = {layer_of(t.name) for t in tensors if "_exps." in t.name} - {None}
    if not experts:
        if moe_layers:
            raise VramscopeError("gguf_key_missing", path=path, key=m.key("expert_count"))
        return None
    used = m.int("expert_used_count", lo=1, hi=experts)
    expert_ff = m.int("expert_feed_forward_length", max(ffn_l), lo=1, hi=MAX_FFN)
    shared_ff = m.int("expert_shared_feed_forward_length", 0, lo=0, hi=MAX_FFN) or \
        m.int("expert_shared_count", 0, lo=0, hi=MAX_EXPERTS) * expert_ff
    for t in tensors:
        if "_exps.weight" not in t.name or len(t.shape) != 3:
            continue
        if t.shape[2] != experts:
            raise _mismatch(path, m.key("expert_count"), experts, t.name, f"{t.shape[2]} experts")
        width = t.shape[0] if "ffn_down_exps" in t.name else t.shape[1]
        if width != expert_ff:
            raise _mismatch(path, m.key("expert_feed_forward_length"), expert_ff, t.name, f"width {width}")
    if moe_layers:
        dense = tuple(i for i in range(n_layers) if i not in moe_layers)
    else:
        dense = tuple(range(m.int("leading_dense_block_count", 0, lo=0, hi=n_layers)))
    return MoESpec(num_experts=experts, experts_per_token=used, expert_intermediate_size=expert_ff,
                   shared_intermediate_size=shared_ff,
                   shared_expert_gate=any(".ffn_gate_inp_shexp." in t.name for t in tensors),
                   dense_layers=dense, router_bias=any(".exp_probs_b" in t.name for t in tensors))


def _check_ffn_rows(m: _Meta, ffn_l: list[int], by_name: dict[str, StoredTensor], seen_layers: list[int]) -> None:
    for i in seen_layers:
        t = by_name.get(f"blk.{i}.ffn_up.weight")
        if t is not None and len(t.shape) == 2 and ffn_l[i] and t.shape[1] not in (ffn_l[i], 2 * ffn_l[i]):
            raise _mismatch(m.path, m.key("feed_forward_length"), ffn_l[i], t.name, f"width {t.shape[1]}")


def _sliding_window(m: _Meta) -> tuple[Optional[int], tuple[str, ...]]:
    """Sliding window (Gemma 2/3, Cohere 2): its size and its layers, from the pattern key or llama.cpp's default."""
    window = m.int("attention.sliding_window", 0, lo=0, hi=2**32 - 1)  # llama.cpp: uint32 n_swa
    window = window if 0 < window <= MAX_WINDOW else None
    layer_types: tuple[str, ...] = ()
    if window:
        swa = _swa_layers(m, m.n_layers)
        if swa is not None:
            layer_types = tuple(SLIDING if s else FULL for s in swa)
            if not any(swa):
                window, layer_types = None, ()
    return window, layer_types


#: DeepSeek-V4's compression ratios llama.cpp knows (src/models/deepseek4.cpp ``load_arch_tensors``: "only
#: supports compression ratios 0, 4, and 128"): none (a sliding layer), CSA (with the lightning indexer), HCA
DSV4_RATIOS = (0, 4, 128)


def _dsv4_compressed(m: _Meta, h: "_Heads", by_name: dict[str, StoredTensor],
                     seen_layers: list[int]) -> tuple[CompressedKVSpec, int]:
    """DeepSeek-V4 (``deepseek4``): its compressors per layer, as ``ModelSpec.compressed`` holds them from the
    checkpoint's modules on the meta device (transformers 5.24 ``DeepseekV4CSACompressor`` / ``HCACompressor`` /
    ``DeepseekV4Indexer``: ``(compress_rate, entry width, projection width)``), and the sliding window.

    Read in unslothai/llama.cpp d32676d (whose ``src/`` is ggml-org/llama.cpp 82bb48500's; its
    gguf-py/gguf/constants.py names the keys and tensors; ggml-org's conversion/deepseek.py at 01a723dc writes the
    same keys): conversion/deepseek.py ``DeepseekV4Model.set_gguf_parameters`` writes ``attention.compress_ratios``
    (config.json's ``compress_ratios``, an int32 array that may run past ``block_count``: the MTP layer's),
    ``attention.indexer.key_length`` (``index_head_dim``), ``attention.sliding_window`` and, through
    ``TextModel``, ``attention.key_length`` (``head_dim``); src/models/deepseek4.cpp ``load_arch_hparams``
    requires each (``compress_ratios`` at least ``block_count`` long, at most ``LLAMA_MAX_LAYERS``) and
    ``load_arch_tensors`` creates, on a layer of ratio ``r`` ≠ 0, ``attn_compressor_kv`` / ``_gate`` of
    ``coff × key_length`` rows (``coff`` 2 on CSA layers, whose windows overlap, else 1) and ``attn_compressor_ape``
    of ``r`` columns, and on CSA layers ``indexer_compressor_kv`` of ``2 × indexer.key_length`` rows; any other
    ratio is refused. So a CSA layer holds ``((4, key_length, 2 × key_length), (4, indexer, 2 × indexer))``, an HCA
    layer ``((128, key_length, key_length),)``, a ratio-0 layer nothing. The tensors present must agree; a
    compressing layer without its compressor is refused, as llama.cpp refuses it ("missing tensor")."""
    key = m.key("attention.compress_ratios")
    v = m.meta.get(key)
    if v is None:
        raise VramscopeError("gguf_key_missing", path=m.path, key=key)
    n = m.n_layers
    if isinstance(v, LongArray) or not isinstance(v, list) or not n <= len(v) <= LLAMA_MAX_LAYERS \
            or any(isinstance(x, bool) or not isinstance(x, int) for x in v) \
            or any(x not in DSV4_RATIOS for x in v[:n]):
        raise VramscopeError("gguf_key_ratios", path=m.path, key=key, value=_show(v), layers=n,
                             maximum=LLAMA_MAX_LAYERS)
    ratios = v[:n]
    window = m.int("attention.sliding_window", lo=1, hi=MAX_WINDOW)
    head = h.key_len
    indexer = m.int("attention.indexer.key_length", hi=MAX_HEAD_DIM)
    for i in seen_layers:
        r, at = ratios[i], f"attention.compress_ratios[{i}]"
        t = by_name.get(f"blk.{i}.attn_kv.weight")
        if t is not None and len(t.shape) == 2 and t.shape[1] != head:
            raise _mismatch(m.path, m.key("attention.key_length"), head, t.name, f"{t.shape[1]} rows")
        coff = 2 if r == 4 else 1  # CSA's overlapping windows project twice the entry
        for name, length_key, rows, wanted in (
                ("attn_compressor_kv", "attention.key_length", (coff, head), r != 0),
                ("indexer_compressor_kv", "attention.indexer.key_length", (2, indexer), r == 4)):
            t = by_name.get(f"blk.{i}.{name}.weight")
            if t is None:
                if wanted:
                    raise VramscopeError("gguf_tensor_needed", path=m.path, key=m.key(at), value=r,
                                         tensor=f"blk.{i}.{name}.weight")
                continue
            if not wanted:
                raise VramscopeError("gguf_tensor_unneeded", path=m.path, key=m.key(at), value=r,
                                     tensor=t.name)
            if len(t.shape) == 2 and t.shape[1] != rows[0] * rows[1]:
                raise _mismatch(m.path, _pair(m, at, length_key, "→"),
                                f"{r} → {rows[0]} × {rows[1]}", t.name, f"{t.shape[1]} rows")
        t = by_name.get(f"blk.{i}.attn_compressor_ape.weight")
        if t is not None and r and len(t.shape) == 2 and t.shape[1] != r:
            raise _mismatch(m.path, m.key(at), r, t.name, f"{t.shape[1]} columns")
    per_layer = tuple(((4, head, 2 * head), (4, indexer, 2 * indexer)) if r == 4 else
                      ((128, head, head),) if r == 128 else () for r in ratios)
    return CompressedKVSpec(compressors=per_layer), window


#: llama.cpp's hybrid architectures (``llm_arch_is_hybrid``, src/llama-arch.cpp at d32676d) with a Mamba / gated
#: delta net state read from the ``ssm.*`` keys, and how each marks its recurrent layers (``is_recr_impl``):
#: ``kv0`` a layer without KV heads (models/jamba.cpp, granite-hybrid.cpp, plamo2.cpp), ``kv0_ff0`` without KV
#: heads nor FFN (nemotron-h.cpp: the others are MLP blocks), ``all`` every layer beside its attention
#: (falcon-h1.cpp), ``interval`` ``attention.recurrent_layers`` or else every layer but each
#: ``full_attention_interval``-th (default 4) below the NextN layers (qwen3next.cpp, qwen35.cpp, qwen35moe.cpp).
#: The pure SSMs (``llm_arch_is_recurrent``: mamba, mamba2; models/mamba.cpp, graph-context-mamba.cpp) have no
#: attention at all: the converter writes ``attention.head_count`` 0 and ``feed_forward_length`` 0
#: (convert_hf_to_gguf.py ``MambaModel`` / ``Mamba2Model``), and llama.cpp keeps only ``llama_memory_recurrent``
#: (``llama_model::create_memory``), every layer recurrent
_HYBRID_ARCHS = {"mamba": ("kv0", "Mamba"), "mamba2": ("kv0", "Mamba2"), "jamba": ("kv0", "Mamba"), "granitehybrid": ("kv0", "Mamba2"), "plamo2": ("kv0", "Mamba"),
                 "nemotron_h": ("kv0_ff0", "Mamba2"), "nemotron_h_moe": ("kv0_ff0", "Mamba2"),
                 "falcon-h1": ("all", "Mamba2"), "qwen3next": ("interval", "GatedDeltaNet"),
                 "qwen35": ("interval", "GatedDeltaNet"), "qwen35moe": ("interval", "GatedDeltaNet")}


_PURE_SSM = ("mamba", "mamba2")


def _state(m: _Meta, arch: str, n_layers: int, h: "_Heads", ffn_l: list[int]) -> Optional[StateSpec]:
    """The conv and SSM states of a hybrid GGUF, per layer, from ``ssm.conv_kernel`` (d_conv), ``ssm.inner_size``
    (d_inner), ``ssm.state_size`` (d_state) and ``ssm.group_count`` (n_group): the conv state has
    ``d_inner + 2 × n_group × d_state`` channels (kept here as channels × d_conv, as transformers keeps it; the
    engines keep ``d_conv − 1`` columns: ``llama_hparams::n_embd_r``) and the SSM state ``d_state × d_inner`` values
    (``n_embd_s``)."""
    rule = _HYBRID_ARCHS.get(arch)
    if rule is None or not m.has("ssm.conv_kernel"):
        return None
    d_conv = m.int("ssm.conv_kernel", hi=MAX_WIDTH)
    d_inner = m.int("ssm.inner_size", hi=MAX_WIDTH)
    d_state = m.int("ssm.state_size", hi=MAX_WIDTH)
    n_group = m.int("ssm.group_count", 0, lo=0, hi=MAX_WIDTH)
    kv = h.kv_per_layer
    how, mixer = rule
    if how == "interval":
        given = m.meta.get(m.key("attention.recurrent_layers"))
        if isinstance(given, list) and len(given) == n_layers and all(isinstance(x, (bool, int)) for x in given):
            rec = [bool(x) for x in given]
        else:
            every = m.int("full_attention_interval", 4, hi=MAX_LAYERS)
            nextn = m.int("nextn_predict_layers", 0, lo=0, hi=n_layers - 1)
            rec = [i < n_layers - nextn and (i + 1) % every != 0 for i in range(n_layers)]
        kinds = ["state" if r else "full" for r in rec]
    elif how == "all":
        kinds = ["hybrid"] * n_layers
    elif how == "kv0_ff0":
        kinds = ["state" if kv[i] == 0 and ffn_l[i] == 0 else ("full" if kv[i] else "none") for i in range(n_layers)]
    else:
        kinds = ["state" if kv[i] == 0 else "full" for i in range(n_layers)]
    has_state = [k in ("state", "hybrid") for k in kinds]
    channels = d_inner + 2 * n_group * d_state
    return StateSpec(kinds=tuple(kinds), conv_values=tuple(channels * d_conv if s else 0 for s in has_state),
                     recurrent_values=tuple(d_state * d_inner if s else 0 for s in has_state),
                     mixer=f"{mixer} (GGUF {arch})", conv_kernels=tuple(d_conv if s else 0 for s in has_state))


def spec_from_gguf(meta: dict[str, Any], tensors: list[StoredTensor], name: str, path: Path) -> ModelSpec:
    """A spec from GGUF metadata (``<arch>.block_count``, ``<arch>.attention.head_count``, ...).

    Numbers are bounded (the ``MAX_*`` limits) and checked against the tensors that carry them.
    """
    arch = _architecture(meta, path)
    m = _Meta(meta, arch, path)
    by_name = {t.name: t for t in tensors}
    seen_layers = sorted({i for i in (layer_of(t.name) for t in tensors) if i is not None})
    n_layers = _block_count(m, seen_layers)
    emb = by_name.get("token_embd.weight")
    hidden = _hidden_size(m, emb)
    pure_ssm = arch in _PURE_SSM and not m.int("attention.head_count", 0, lo=0, hi=MAX_HEADS)
    # a pure SSM: no heads (one nominal head of the model's width, none caching keys and values), no FFN
    h = _Heads([1] * n_layers, [0] * n_layers, hidden, hidden, hidden) if pure_ssm else _heads(m, hidden)
    vocab = _vocab_size(m, emb)
    up = next((t for t in tensors if t.name.endswith(".ffn_up.weight") and len(t.shape) == 2), None)
    if pure_ssm:
        ffn_l = [m.int("ssm.inner_size", hi=MAX_WIDTH)] * n_layers  # the mixer's width, as transformers' config
    else:
        ffn_l = m.layers("feed_forward_length", up.shape[1] if up is not None else 4 * hidden, lo=1, hi=MAX_FFN)
    context = m.int("context_length", 0, lo=1, hi=MAX_CONTEXT)

    # attention: MLA (DeepSeek-V2/V3 family) or standard; K/V projection rows must match the heads
    mla, head_dim, kv_heads = None, h.key_len, max(1, max(h.kv_per_layer))
    kv_lora = m.int("attention.kv_lora_rank", 0, lo=0, hi=MAX_RANK)
    if kv_lora:
        mla, head_dim, mqa_heads = _mla(m, h, kv_lora, by_name, seen_layers)
        kv_heads = mqa_heads or kv_heads
    else:
        _check_attention_rows(m, h, by_name, seen_layers)
    moe = _moe(m, tensors, ffn_l)
    _check_ffn_rows(m, ffn_l, by_name, seen_layers)
    window, layer_types = _sliding_window(m)
    compressed = None
    if arch == "deepseek4":  # llama_kv_cache_dsv4 (src/llama-model.cpp create_memory): every layer slides
        compressed, window = _dsv4_compressed(m, h, by_name, seen_layers)
        layer_types = ()
    attn_cap = m.float("attn_logit_softcapping")
    final_cap = m.float("final_logit_softcapping")

    family = by_gguf_arch(arch, moe is not None)  # what the file does not say: norms a layer (Gemma 2/3, GLM-4)
    extra = {} if mla is not None else _kv_values(m, h, n_layers)
    kv_heads = extra.pop("num_kv_heads", kv_heads)
    return ModelSpec(
        name=name, model_type=f"gguf:{arch}", architecture=arch, num_layers=n_layers, hidden_size=hidden,
        num_heads=max(h.per_layer), num_kv_heads=kv_heads, head_dim=head_dim, intermediate_size=max(ffn_l),
        vocab_size=vocab, tie_embeddings="output.weight" not in by_name, max_position_embeddings=context,
        qkv_bias=any(layer_of(t.name) is not None and t.name.endswith(".attn_q.bias") for t in tensors),
        sliding_window=window, attn_softcap=attn_cap > 0, logit_softcap=final_cap > 0, layer_types=layer_types,
        moe=moe, mla=mla, norms_per_layer=family.norms_per_layer, source=str(path),
        state=_state(m, arch, n_layers, h, ffn_l), layer_kv=() if mla is not None else _layer_kv(m, h, n_layers),
        compressed=compressed, **extra,
    )
