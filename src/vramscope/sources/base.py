"""What every source resolves to (a spec, plus the exact stored tensors when files were read), and the one safe way
to read a local file: :func:`open_regular`, :func:`read_limited` and the bounded JSON loader :func:`load_json`."""

from __future__ import annotations

import codecs
import errno
import json
import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Optional, Union

from ..errors import Text, VramscopeError
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


# ---- reading local files: one place for every reader (configs, indexes, headers, GGUF, records) ----------------
#
# Every local file vramscope reads goes through :func:`open_regular`: the path is stat'ed first and anything that
# is not a regular file (a named pipe, /dev/zero, /dev/stdin, a socket, a folder) is refused *before* it is
# opened, since open() on a FIFO blocks until a writer appears and reading a device never ends. The file is then
# opened with O_NONBLOCK (so even a FIFO swapped in between the stat and the open cannot block) and fstat'ed again,
# which closes that race. Every OSError becomes one clear line naming the path (missing, symbolic-link loop,
# name too long, permission denied).

_FILE_KINDS = ((stat.S_ISFIFO, Text("kind_fifo")), (stat.S_ISCHR, Text("kind_chardev")),
               (stat.S_ISBLK, Text("kind_blockdev")), (stat.S_ISSOCK, Text("kind_socket")),
               (stat.S_ISDIR, Text("kind_folder")))


def shown_path(path: Any, limit: int = 160) -> str:
    """A path as it goes into a one-line message: very long names are shortened in the middle."""
    s = os.fspath(path) if not isinstance(path, str) else path
    s = s if isinstance(s, str) else os.fsdecode(s)
    return s if len(s) <= limit else f"{s[: limit // 2 - 1]}…{s[-(limit // 2):]}"


def file_kind(mode: int) -> Text:
    """What a file that is not a regular one is, in both languages."""
    for test, kind in _FILE_KINDS:
        if test(mode):
            return kind
    return Text("kind_other")


def os_error(path: Any, e: OSError) -> VramscopeError:
    """An OSError from stat/open/read/listdir as one clear line naming the path."""
    shown = shown_path(path)
    code = e.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return VramscopeError("file_not_found", path=shown)
    if code == errno.ELOOP:
        return VramscopeError("path_loop", path=shown)
    if code == errno.ENAMETOOLONG:
        return VramscopeError("path_too_long", path=shown, n=len(os.fsencode(os.fspath(path))))
    if code in (errno.EACCES, errno.EPERM):
        return VramscopeError("permission_denied", path=shown)
    if code == errno.EISDIR:
        return VramscopeError("not_regular_file", path=shown, kind=Text("kind_folder"))
    return VramscopeError("file_unreadable", path=shown, detail=e.strerror or str(e))


def stat_path(path: Any, missing_ok: bool = False) -> Optional[os.stat_result]:
    """``os.stat(path)`` (following links); a missing path gives None when ``missing_ok``, every other problem
    (symbolic-link loop, name too long, permission denied, NUL byte, empty name) a :class:`VramscopeError`."""
    raw = os.fspath(path)
    if raw in ("", b""):
        raise VramscopeError("path_empty")
    try:
        return os.stat(raw)
    except OSError as e:
        if missing_ok and e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise os_error(path, e) from None
    except ValueError:  # embedded NUL byte
        raise VramscopeError("file_unreadable", path=shown_path(repr(raw)[1:-1]),
                             detail="the name contains a NUL character") from None


def path_exists(path: Any) -> bool:
    """Whether ``path`` exists, for a name that may or may not be a path (a catalog name, a Hub id).

    Unlike ``Path.exists()`` it never raises OSError: a name too long to be a file (over 255 bytes), or one
    with a NUL character, is simply not a file. A symbolic-link loop or a permission problem *is* there, so
    it counts as existing and the reader that follows says what is wrong with it.
    """
    raw = os.fspath(path)
    if raw in ("", b""):
        return False
    try:
        os.stat(raw)
        return True
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
            return True
        return False
    except ValueError:
        return False


def require_regular(path: Any) -> os.stat_result:
    """The stat of ``path``, which must be a regular file (not a FIFO, device, socket or folder)."""
    st = stat_path(path)
    assert st is not None
    if not stat.S_ISREG(st.st_mode):
        raise VramscopeError("not_regular_file", path=shown_path(path), kind=file_kind(st.st_mode))
    return st


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def open_regular(path: Any) -> BinaryIO:
    """Open a regular file for binary reading, refusing FIFOs, devices, sockets and folders *before* opening.

    Use it as ``with open_regular(path) as f:``; ``os.fstat(f.fileno()).st_size`` is the size of the file that
    was actually opened. Every failure is a :class:`VramscopeError` naming the path.
    """
    require_regular(path)
    try:
        fd = os.open(os.fspath(path), _OPEN_FLAGS)
    except OSError as e:
        raise os_error(path, e) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped for a FIFO/device between the stat and the open
            raise VramscopeError("not_regular_file", path=shown_path(path), kind=file_kind(st.st_mode))
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0) and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: Any, limit: int) -> bytes:
    """The whole of a small regular file; more than ``limit`` bytes is an error. At most ``limit + 1`` bytes are
    ever read, so neither a huge file nor a device can make vramscope read without end."""
    with open_regular(path) as f:
        if os.fstat(f.fileno()).st_size > limit:  # known too large: not a byte read
            raise VramscopeError("file_too_large", path=shown_path(path), limit=format_limit(limit))
        try:
            raw = f.read(limit + 1)  # the size can change while it is read: never more than this
        except OSError as e:
            raise os_error(path, e) from None
    if len(raw) > limit:
        raise VramscopeError("file_too_large", path=shown_path(path), limit=format_limit(limit))
    return raw


def read_bounded(path: Any, limit: int) -> Optional[bytes]:
    """A whole small file (JSON config, index), or None when it is larger than ``limit`` bytes.

    Same checks as :func:`read_limited` (regular files only, at most ``limit + 1`` bytes read)."""
    try:
        return read_limited(path, limit)
    except VramscopeError as e:
        if e.key == "file_too_large":
            return None
        raise


def format_limit(n: int) -> str:
    """A byte limit as people write it: 1 MB, 16 MiB, 512 KiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


# ---- bounded JSON: one loader for config.json, indexes, safetensors headers, DeepSpeed/accelerate, records ----
#
# json.loads alone accepts NaN/Infinity (not JSON), turns 1e400 into inf, spends quadratic time on huge
# integers (Python >= 3.11 stops at 4300 digits with a ValueError), raises RecursionError on deep nesting and
# builds whatever millions of objects the text asks for. ``parse_json`` bounds each of these before or while
# parsing, and every problem is a :class:`JsonProblem` whose text the caller puts in its own message.

#: digits in one integer: uint64 has 20 and the largest integer published configs write is transformers'
#: ``model_max_length`` sentinel 1000000000000000019884624838656 (31 digits)
MAX_INT_DIGITS = 32
#: characters in one non-integer number (Python's repr of a float is at most 24)
MAX_FLOAT_CHARS = 64
#: nesting of objects and arrays: published config.json files nest at most ~5 levels (quantization_config ->
#: config_groups -> group -> weights -> ...); 32 leaves room and stays far below Python's recursion limit
MAX_DEPTH = 32


class JsonProblem(ValueError):
    """Why a JSON text was refused; the caller names the file (and line) and passes :attr:`detail` (a
    bilingual :class:`~vramscope.errors.Text`, or plain text from a parser's own message) to its message."""

    def __init__(self, key: str, /, **params: object) -> None:
        from ..i18n import MESSAGES

        self.detail: Any = Text(key, **params) if key in MESSAGES else key
        super().__init__(str(self.detail))


def _bad_constant(name: str) -> Any:
    raise JsonProblem("json_constant", name=name)


def _parse_float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise JsonProblem("json_long_number", n=len(text), limit=MAX_FLOAT_CHARS)
    value = float(text)
    if not math.isfinite(value):
        raise JsonProblem("json_float_overflow", text=text)
    return value


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise JsonProblem("json_long_int", digits=digits, limit=MAX_INT_DIGITS)
    return int(text)


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int, parse_constant=_bad_constant)


def decode_text(raw: bytes) -> str:
    """UTF-8 text of a file (a leading UTF-8 byte-order mark is allowed and dropped)."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise JsonProblem("json_utf16")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonProblem("json_not_utf8", at=e.start, byte=f"0x{raw[e.start]:02x}") from None


def _depth(value: Any, limit: int) -> int:
    """The nesting depth of a parsed value, walked without recursion; stops as soon as it passes ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def parse_json(raw: Union[bytes, str], max_containers: int, max_items: int,
               max_depth: Optional[int] = MAX_DEPTH) -> Any:
    """Parse JSON text with every cost bounded; raises :class:`JsonProblem`.

    Before parsing, the objects and arrays (``{``/``[``) and the commas are counted in the raw text (an upper
    bound: brackets and commas inside strings count too) against ``max_containers`` and ``max_items``, so the
    parser never builds more than that many objects. NaN/Infinity, floats that overflow, integers longer than
    :data:`MAX_INT_DIGITS` digits and nesting deeper than ``max_depth`` are refused (``None``: the caller checks
    the structure itself; only nesting deeper than Python's recursion limit is refused).
    """
    text = decode_text(raw) if isinstance(raw, (bytes, bytearray)) else raw
    containers = text.count("{") + text.count("[")
    if containers > max_containers:
        raise JsonProblem("json_containers", limit=f"{max_containers:,}")
    if text.count(",") > max_items:
        raise JsonProblem("json_items", limit=f"{max_items:,}")
    try:
        value = _DECODER.decode(text)
    except JsonProblem:
        raise
    except RecursionError:
        raise JsonProblem("json_depth", limit=max_depth or 500) from None
    except json.JSONDecodeError as e:
        raise JsonProblem("json_syntax", msg=e.msg, line=e.lineno, column=e.colno) from None
    except ValueError as e:  # anything else the decoder refuses
        raise JsonProblem(str(e)[:120]) from None
    if max_depth is not None and containers > max_depth and _depth(value, max_depth) > max_depth:
        raise JsonProblem("json_depth", limit=max_depth)
    return value


def load_json(path: Any, max_bytes: int, max_containers: int = 100_000, max_items: int = 2_000_000,
              max_depth: int = MAX_DEPTH) -> Any:
    """A bounded JSON file (regular files only, at most ``max_bytes + 1`` bytes read), or a
    :class:`VramscopeError` naming the file and the problem."""
    raw = read_limited(path, max_bytes)
    try:
        return parse_json(raw, max_containers, max_items, max_depth)
    except JsonProblem as e:
        raise VramscopeError("config_bad_json", origin=shown_path(path), detail=e.detail) from None
