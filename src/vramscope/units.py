"""Parsing and formatting of the numbers users type: parameter counts and memory sizes.

Parameter counts accept ``7B``, ``6.7e9``, ``70b``, ``1.5T``, ``350M``, ``125k`` or a plain integer.
Memory sizes accept ``24GB`` (decimal, 10^9), ``24GiB`` (binary, 2^30), ``24G`` (binary, as GPU vendors
mean it for GDDR parts) and plain bytes.
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
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
#: Largest memory size accepted (1 PiB): a bigger "GPU" is a typo.
MAX_BYTES = 2**50


def parse_count(text: str | int | float, field: str = "--params", maximum: int = MAX_PARAMS) -> int:
    """Parse a parameter count such as ``7B``; returns an int > 0 or raises :class:`VramscopeError`."""
    if isinstance(text, bool):
        raise VramscopeError("bad_count", field=field, value=text)
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _COUNT_RE.match(str(text))
        if not m:
            raise VramscopeError("bad_count", field=field, value=text)
        value = float(m.group(1)) * _COUNT_SUFFIX[m.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise VramscopeError("count_not_positive", field=field, value=text)
    if value > maximum:
        raise VramscopeError("count_too_large", field=field, value=text, maximum=f"{maximum:.0e}")
    return int(round(value))


def parse_int(text: str | int, field: str, minimum: int = 1, maximum: int = 10**9) -> int:
    """Parse an integer option within ``[minimum, maximum]``."""
    try:
        value = int(str(text).strip().replace("_", "").replace(",", ""))
    except ValueError:
        try:
            f = float(str(text))
        except ValueError:
            raise VramscopeError("bad_int", field=field, value=text, minimum=minimum, maximum=maximum) from None
        if not math.isfinite(f) or f != int(f):
            raise VramscopeError("bad_int", field=field, value=text, minimum=minimum, maximum=maximum) from None
        value = int(f)
    if value < minimum or value > maximum:
        raise VramscopeError("int_out_of_range", field=field, value=text, minimum=minimum, maximum=maximum)
    return value


def parse_bytes(text: str | int | float, field: str = "--gpu-memory") -> int:
    """Parse a memory size such as ``24GB``, ``80GiB`` or ``24G``; returns bytes > 0."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _SIZE_RE.match(str(text))
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise VramscopeError("bad_size", field=field, value=text)
        value = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value <= 0:
        raise VramscopeError("count_not_positive", field=field, value=text)
    if value > MAX_BYTES:
        raise VramscopeError("count_too_large", field=field, value=text, maximum="1 PiB")
    return int(round(value))


def looks_like_size(text: str) -> bool:
    """True when ``text`` is a memory size (``24GB``) rather than a name (``rtx-4090``)."""
    m = _SIZE_RE.match(text)
    return bool(m and m.group(2) and m.group(2).lower() in _SIZE_UNITS)


def format_bytes(n: float, units: str = "GiB", digits: int = 2) -> str:
    """Format bytes in ``GiB`` (2^30) or ``GB`` (10^9), the two units users compare with."""
    div = 2**30 if units == "GiB" else 10**9
    return f"{n / div:,.{digits}f} {units}"


def format_count(n: int) -> str:
    """``8030261248`` -> ``8.03B``."""
    for div, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)
