"""Parsing and formatting of the numbers users type: parameter counts and memory sizes.

Parameter counts accept ``7B``, ``6.7e9``, ``70b``, ``1.5T``, ``350M``, ``125k`` or a plain integer.
Memory sizes accept ``24GB`` (decimal, 10^9), ``24GiB`` (binary, 2^30), ``24G`` (binary, as GPU vendors
mean it for GDDR parts) and plain bytes. A GPU's memory (``--gpu 24GB``, ``--gpu-memory``) is binary in every
spelling: GPU makers' "24 GB" is 24 GiB (the RTX 4090's 24,564 MiB), so ``24GB``, ``24G`` and ``24GiB`` all
mean 24 GiB; plain bytes give any other size.
"""

from __future__ import annotations

import math
import re

from .errors import VramscopeError

_COUNT_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)

#: Largest parameter count accepted (100 trillion): anything above is a typo, not a model.
MAX_PARAMS = 10**14

_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}
#: a GPU's memory: GPU makers' GB, MB and TB are binary (a "24 GB" card has 24 GiB)
_GPU_SIZE_UNITS = {**_SIZE_UNITS, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
#: Largest memory size accepted (1 PiB): a bigger "GPU" is a typo.
MAX_BYTES = 2**50


#: Longest text of a number accepted: anything longer is not a number a person typed.
MAX_NUMBER_TEXT = 64
#: Smallest GPU memory accepted (256 MiB): a smaller "GPU" is a typo (``0.4B`` is 0 bytes, not 0.4 billion).
MIN_GPU_BYTES = 2**28
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def shown(value: object, limit: int = 60) -> str:
    """``value`` as it may appear in a one-line error: printable, without line breaks, at most ``limit`` chars.

    Safe for any object (an int too long for ``str()``, a ``__str__`` that raises, a 1 MB string)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return f"{'-' if value < 0 else ''}<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a broken __str__
        text = f"<{type(value).__name__}>"
    return printable(text, limit)


def printable(text: str, limit: int) -> str:
    """``text`` with control characters escaped (``\\n``), cut to ``limit`` characters with an ellipsis."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit + 1])
    return text if len(text) <= limit else text[:limit] + "…"


def _number_text(text: object, field: str, key: str, **params: object) -> str:
    """The text of a number option given as str or float (never a bool, list or object), not absurdly long."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise VramscopeError(key, field=field, value=shown(text), **params)
    s = repr(text) if isinstance(text, float) else text.strip() if isinstance(text, str) else ""
    if len(s) > MAX_NUMBER_TEXT:
        raise VramscopeError(key, field=field, value=shown(text), **params)
    return s


def _size(value: float | int, field: str, text: object, maximum: int, too_large: str) -> None:
    if isinstance(value, float) and not math.isfinite(value) or value <= 0:
        raise VramscopeError("count_not_positive", field=field, value=shown(text))
    if value > maximum:
        raise VramscopeError("count_too_large", field=field, value=shown(text), maximum=too_large)


def parse_count(text: str | int | float, field: str = "--params", maximum: int = MAX_PARAMS) -> int:
    """Parse a parameter count such as ``7B``; returns an int > 0 or raises :class:`VramscopeError`."""
    s = _number_text(text, field, "bad_count")
    value: float | int
    if isinstance(text, int):  # exact, however large (float() of a huge int overflows)
        value = text
    elif isinstance(text, float):
        value = text
    else:
        m = _COUNT_RE.match(s)
        if not m:
            raise VramscopeError("bad_count", field=field, value=shown(text))
        value = float(m.group(1)) * _COUNT_SUFFIX[m.group(2).lower()]
    _size(value, field, text, maximum, f"{maximum:.0e}")
    n = int(round(value))
    if n < 1:  # rounds to no parameters at all
        if value > 0:  # "0.5": a count of half a parameter; the user most likely forgot the suffix
            raise VramscopeError("count_below_one", field=field, value=shown(text))
        raise VramscopeError("count_not_positive", field=field, value=shown(text))
    return n


def parse_int(text: str | int, field: str, minimum: int = 1, maximum: int = 10**9) -> int:
    """Parse an integer option within ``[minimum, maximum]`` (``8``, ``"8"``, ``"1e3"``, ``"1_000"``, ``8.0``)."""
    s = _number_text(text, field, "bad_int", minimum=minimum, maximum=maximum)
    if isinstance(text, int):
        value = text
    else:
        try:
            value = int(s.replace("_", "").replace(",", ""))
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise VramscopeError("bad_int", field=field, value=shown(text), minimum=minimum,
                                     maximum=maximum) from None
            if not math.isfinite(f) or f != int(f):
                raise VramscopeError("bad_int", field=field, value=shown(text), minimum=minimum,
                                     maximum=maximum) from None
            value = int(f)
    if value < minimum or value > maximum:
        raise VramscopeError("int_out_of_range", field=field, value=shown(text), minimum=minimum, maximum=maximum)
    return value


def parse_float(text: str | int | float, field: str, minimum: float, maximum: float,
                allowed: str = "") -> float:
    """Parse a finite number within ``[minimum, maximum]``; NaN, infinities and non-numbers are refused."""
    allowed = allowed or f"a number from {minimum} to {maximum}"
    s = _number_text(text, field, "bad_choice", allowed=allowed)
    try:
        f = float(s)
    except ValueError:
        f = float("nan")
    if not (math.isfinite(f) and minimum <= f <= maximum):
        raise VramscopeError("bad_choice", field=field, value=shown(text), allowed=allowed)
    return f


def parse_bool(value: object, field: str) -> bool:
    """A yes/no option: True/False, 1/0, or the text true/false, yes/no, on/off, 1/0 (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise VramscopeError("bad_bool", field=field, value=shown(value))


def parse_bytes(text: str | int | float, field: str = "--gpu-memory", minimum: int = 1, gpu: bool = False) -> int:
    """Parse a memory size such as ``24GB``, ``80GiB`` or ``24G``; returns bytes, at least ``minimum``
    (``gpu``: a GPU's memory, where GB is binary as GPU makers count it)."""
    units = _GPU_SIZE_UNITS if gpu else _SIZE_UNITS
    s = _number_text(text, field, "bad_size")
    value: float | int
    if isinstance(text, (int, float)):
        value = text
    else:
        m = _SIZE_RE.match(s)
        if not m or m.group(2).lower() not in units:
            raise VramscopeError("bad_size", field=field, value=shown(text))
        value = float(m.group(1)) * units[m.group(2).lower()]
    _size(value, field, text, MAX_BYTES, "1 PiB")
    if value < minimum:
        raise VramscopeError("size_too_small", field=field, value=shown(text), bytes=f"{int(value):,}",
                             minimum=format_bytes(minimum, "MiB", 0))
    return int(round(value))


def looks_like_size(text: object) -> bool:
    """True when ``text`` is a memory size (``24GB``) rather than a name (``rtx-4090``)."""
    if not isinstance(text, str) or len(text) > MAX_NUMBER_TEXT:
        return False
    m = _SIZE_RE.match(text)
    return bool(m and m.group(2) and m.group(2).lower() in _SIZE_UNITS)


def format_bytes(n: float, units: str = "GiB", digits: int = 2) -> str:
    """Format bytes in ``GiB`` (2^30) or ``GB`` (10^9), the two units users compare with."""
    div = {"GiB": 2**30, "GB": 10**9, "MiB": 2**20}.get(units, 10**9)
    return f"{n / div:,.{digits}f} {units}"


def format_count(n: int) -> str:
    """``8030261248`` -> ``8.03B``."""
    for div, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)
