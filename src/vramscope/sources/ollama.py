"""Ollama model names and Modelfiles: ``llama3.1:70b-instruct-q4_K_M`` -> a catalog model and a GGUF file type.

An Ollama library name is ``family[:tag]``; the tag is ``size[-variant...][-quant]`` (``70b-instruct-q4_K_M``,
``8b``, ``7b-q8_0``, ``latest``). The sizes each family publishes and the size ``latest`` points to are those of
the ollama.com library pages; the quantization of an untagged or size-only name is the library's default,
Q4_K_M (``llama3.1:8b`` and ``llama3.1:8b-instruct-q4_K_M`` are the same blob there). ``fp16``/``bf16`` tags are
F16/BF16 files.

A Modelfile (``docs/modelfile.md``) is read line by line, bounded like every other file vramscope opens
(``sources/base.read_limited``, 1 MiB): ``FROM`` (a library name or a GGUF path), ``PARAMETER`` lines (those that
change memory: ``num_ctx``, ``num_gpu``, ``num_batch``; the others are listed as ignored), ``ADAPTER`` (listed:
a LoRA adapter's own weights are not modelled) and the text instructions (``TEMPLATE``, ``SYSTEM``, ``LICENSE``,
``MESSAGE``, ``REQUIRES``), whose triple-quoted bodies may span lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import VramscopeError
from ..units import shown

#: family -> (its sizes -> catalog id, the size of ``latest``)
LIBRARY: dict[str, tuple[dict[str, str], str]] = {
    "llama2": ({"7b": "llama-2-7b", "13b": "llama-2-13b", "70b": "llama-2-70b"}, "7b"),
    "llama3": ({"8b": "llama-3-8b", "70b": "llama-3-70b"}, "8b"),
    "llama3.1": ({"8b": "llama-3.1-8b", "70b": "llama-3.1-70b", "405b": "llama-3.1-405b"}, "8b"),
    "llama3.2": ({"1b": "llama-3.2-1b", "3b": "llama-3.2-3b"}, "3b"),
    "llama3.3": ({"70b": "llama-3.3-70b"}, "70b"),
    "qwen2": ({"7b": "qwen2-7b", "72b": "qwen2-72b"}, "7b"),
    "qwen2.5": ({"0.5b": "qwen2.5-0.5b", "1.5b": "qwen2.5-1.5b", "3b": "qwen2.5-3b", "7b": "qwen2.5-7b",
                 "14b": "qwen2.5-14b", "32b": "qwen2.5-32b", "72b": "qwen2.5-72b"}, "7b"),
    "qwen2.5-coder": ({"7b": "qwen2.5-coder-7b"}, "7b"),
    "qwen3": ({"0.6b": "qwen3-0.6b", "1.7b": "qwen3-1.7b", "4b": "qwen3-4b", "8b": "qwen3-8b", "14b": "qwen3-14b",
               "32b": "qwen3-32b", "30b": "qwen3-30b-a3b", "235b": "qwen3-235b-a22b"}, "8b"),
    "gemma": ({"2b": "gemma-2b", "7b": "gemma-7b"}, "7b"),
    "gemma2": ({"2b": "gemma-2-2b", "9b": "gemma-2-9b", "27b": "gemma-2-27b"}, "9b"),
    "gemma3": ({"1b": "gemma-3-1b", "4b": "gemma-3-4b", "12b": "gemma-3-12b", "27b": "gemma-3-27b"}, "4b"),
    "mistral": ({"7b": "mistral-7b-v0.3"}, "7b"),
    "mistral-nemo": ({"12b": "mistral-nemo"}, "12b"),
    "mistral-small": ({"24b": "mistral-small-24b"}, "24b"),
    "mixtral": ({"8x7b": "mixtral-8x7b", "8x22b": "mixtral-8x22b"}, "8x7b"),
    "phi": ({"2.7b": "phi-2"}, "2.7b"),
    "phi3": ({"mini": "phi-3-mini", "3.8b": "phi-3-mini", "medium": "phi-3-medium", "14b": "phi-3-medium"}, "mini"),
    "phi3.5": ({"3.8b": "phi-3.5-mini"}, "3.8b"),
    "phi4": ({"14b": "phi-4"}, "14b"),
    "deepseek-r1": ({"1.5b": "deepseek-r1-distill-qwen-1.5b", "7b": "deepseek-r1-distill-qwen-7b",
                     "8b": "deepseek-r1-distill-llama-8b", "14b": "deepseek-r1-distill-qwen-14b",
                     "32b": "deepseek-r1-distill-qwen-32b", "70b": "deepseek-r1-distill-llama-70b",
                     "671b": "deepseek-r1"}, "8b"),
    "deepseek-v3": ({"671b": "deepseek-v3"}, "671b"),
    "deepseek-v2": ({"16b": "deepseek-v2-lite", "236b": "deepseek-v2"}, "16b"),
    "yi": ({"6b": "yi-6b", "34b": "yi-34b"}, "6b"),
    "falcon": ({"7b": "falcon-7b", "40b": "falcon-40b", "180b": "falcon-180b"}, "7b"),
    "falcon3": ({"7b": "falcon3-7b"}, "7b"),
    "glm4": ({"9b": "glm-4-9b"}, "9b"),
}
#: Ollama quantization tags -> GGUF file types (vramscope's --quant)
QUANTS = {q.lower(): q for q in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
                                 "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_XS", "IQ4_NL")}
QUANTS.update({"fp16": "F16", "f16": "F16", "bf16": "BF16", "fp32": "F32"})
DEFAULT_QUANT = "Q4_K_M"
_PREFIXES = ("registry.ollama.ai/library/", "ollama.com/library/", "library/")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}(:[A-Za-z0-9._-]{1,128})?$")


@dataclass(frozen=True)
class OllamaName:
    """An Ollama library name resolved: the catalog model, the GGUF file type, and what the tag said."""

    name: str
    family: str
    size: str
    model: str  # catalog id or alias
    quant: str
    variant: tuple[str, ...] = ()


def looks_like_ollama_name(text: str) -> bool:
    """``family:tag`` or a bare library family (``llama3.1``)."""
    t = text.strip()
    for p in _PREFIXES:
        if t.startswith(p):
            t = t[len(p):]
    return bool(_NAME.match(t)) and (":" in t or t in LIBRARY)


def parse_ollama_name(text: Any) -> OllamaName:
    """``llama3.1:70b-instruct-q4_K_M`` -> OllamaName(model='llama-3.1-70b', quant='Q4_K_M', ...)."""
    if not isinstance(text, str) or not text.strip() or len(text) > 200:
        raise VramscopeError("ollama_unknown_name", name=shown(text), known=", ".join(sorted(LIBRARY)))
    t = text.strip()
    for p in _PREFIXES:
        if t.startswith(p):
            t = t[len(p):]
    family, _, tag = t.partition(":")
    family = family.lower()
    if family not in LIBRARY:
        raise VramscopeError("ollama_unknown_name", name=shown(text), known=", ".join(sorted(LIBRARY)))
    sizes, latest = LIBRARY[family]
    size, quant, variant = latest, DEFAULT_QUANT, []
    if tag and tag.lower() != "latest":
        parts = tag.split("-")
        if parts[0].lower() in sizes:
            size = parts.pop(0).lower()
        for p in parts:
            if p.lower() in QUANTS:
                quant = QUANTS[p.lower()]
            elif re.match(r"^[a-z][a-z0-9.]*$", p.lower()):
                variant.append(p.lower())  # instruct, text, chat, base, ...
            else:
                raise VramscopeError("ollama_bad_tag", name=shown(text), sizes=", ".join(sizes),
                                     quants=", ".join(sorted(set(QUANTS))))
    return OllamaName(name=t, family=family, size=size, model=sizes[size], quant=quant, variant=tuple(variant))


# ---- Modelfile ---------------------------------------------------------------------------------------------

#: a Modelfile is a few lines of text; more than this is not one
MODELFILE_LIMIT = 1 << 20
_MEMORY_PARAMETERS = {"num_ctx": "seq", "num_gpu": "num_gpu", "num_batch": "num_batch"}
_TEXT_INSTRUCTIONS = ("template", "system", "license", "message", "requires")


@dataclass
class Modelfile:
    """What a Modelfile sets: its base (``FROM``), the parameters that change memory (as vramscope options) and
    everything else, listed (``ignored``)."""

    base: str = ""
    options: dict[str, int] = field(default_factory=dict)
    adapters: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _int_parameter(name: str, value: str, line: int) -> int:
    try:
        n = int(value.strip().strip('"'))
    except ValueError:
        raise VramscopeError("modelfile_bad_line", line=line, text=shown(f"PARAMETER {name} {value}"),
                             reason="an integer") from None
    if not -1 <= n <= 100_000_000:
        raise VramscopeError("modelfile_bad_line", line=line, text=shown(f"PARAMETER {name} {value}"),
                             reason="an integer from -1 to 100000000")
    return n


def parse_modelfile(text: str) -> Modelfile:
    """A Modelfile's text (see the module docstring); a line vramscope cannot read is an error naming it."""
    mf = Modelfile()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        word, _, rest = s.partition(" ")
        word = word.lower()
        rest = rest.strip()
        if word in _TEXT_INSTRUCTIONS:
            if rest.startswith('"""') and (rest.count('"""') == 1 or rest == '"""'):
                while i < len(lines) and '"""' not in lines[i]:
                    i += 1
                i += 1  # the closing line
            mf.ignored.append(word.upper())
        elif word == "from":
            if not rest:
                raise VramscopeError("modelfile_bad_line", line=i, text=shown(s), reason="FROM and a model")
            mf.base = rest
        elif word == "parameter":
            name, _, value = rest.partition(" ")
            name = name.lower()
            if name in _MEMORY_PARAMETERS:
                mf.options[_MEMORY_PARAMETERS[name]] = _int_parameter(name, value, i)
            elif name:
                mf.ignored.append(f"PARAMETER {name}")
        elif word == "adapter":
            mf.adapters.append(rest)
            mf.ignored.append("ADAPTER")
        else:
            raise VramscopeError("modelfile_bad_line", line=i, text=shown(s),
                                 reason="FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE or REQUIRES")
    if not mf.base:
        raise VramscopeError("modelfile_no_from")
    return mf


def read_modelfile(path: Any) -> Modelfile:
    """A Modelfile on disk: a regular file of at most 1 MiB, UTF-8 text (``sources/base.read_limited``)."""
    from .base import JsonProblem, decode_text, read_limited, shown_path

    raw = read_limited(path, MODELFILE_LIMIT)
    try:
        text = decode_text(raw)
    except JsonProblem as e:
        raise VramscopeError("modelfile_bad_text", path=shown_path(path), detail=e.detail) from None
    return parse_modelfile(text)
