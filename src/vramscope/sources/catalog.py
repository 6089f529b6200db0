"""The built-in model catalog: published ``config.json`` files stored as data, usable offline.

Entries live in ``vramscope/data/models/<family>.json``, each with its Hub id, short aliases and the URL of
the config it was copied from. A model is found by Hub id (``meta-llama/Meta-Llama-3-8B``), by the name
after the slash (``Meta-Llama-3-8B``) or by an alias (``llama-3-8b``), all case-insensitive.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

DATA = Path(__file__).resolve().parent.parent / "data" / "models"


@lru_cache(maxsize=1)
def entries() -> tuple[dict[str, Any], ...]:
    """All catalog entries, in file then list order."""
    out: list[dict[str, Any]] = []
    for path in sorted(DATA.glob("*.json")):
        with path.open(encoding="utf-8") as f:
            for e in json.load(f):
                e.setdefault("family_file", path.stem)
                out.append(e)
    return tuple(out)


def config_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The config an entry is estimated from: its ``config`` (the published config.json), with the NVIDIA ModelOpt
    ``hf_quant_config.json`` it stores beside it (``hf_quant_config``, copied from ``hf_quant_config_from``) as
    ``quantization_config`` when config.json has none, as a local checkpoint folder is read
    (``sources/local.py: with_sidecar_quant``, vLLM's rule)."""
    side = entry.get("hf_quant_config")
    if side is None:
        return entry["config"]
    from .local import merge_sidecar_quant

    return merge_sidecar_quant(entry["config"], side, entry.get("hf_quant_config_from", entry["id"]))


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, Any]]:
    idx: dict[str, dict[str, Any]] = {}
    for e in entries():
        keys = [e["id"], e["id"].split("/")[-1], *e.get("aliases", [])]
        for k in keys:
            idx.setdefault(_norm(k), e)
    return idx


#: suffixes of fine-tuned variants that keep their base model's architecture (config.json is the same)
VARIANT_SUFFIXES = ("-instruct", "-chat", "-it", "-base", "-hf", "-fp16", "-bf16")


def find(name: str) -> Optional[dict[str, Any]]:
    """The entry for ``name`` or None."""
    return _index().get(_norm(name))


def find_variant(name: str) -> Optional[tuple[dict[str, Any], str]]:
    """``(entry, base name)`` when ``name`` is an instruct/chat variant of a catalog model (same architecture)."""
    key = _norm(name)
    for suffix in VARIANT_SUFFIXES:
        if key.endswith(suffix):
            entry = _index().get(key[: -len(suffix)])
            if entry is not None:
                return entry, entry["id"]
    return None


def suggest(name: str, n: int = 5) -> list[str]:
    """Closest catalog names to ``name``: substring matches first, then fuzzy matches."""
    import difflib

    q = _norm(name)
    keys = list(_index())
    hits = [k for k in keys if q and (q in k or k in q)]
    hits += difflib.get_close_matches(q, keys, n=n, cutoff=0.5)
    seen: list[str] = []
    for k in hits:
        ident = _index()[k]["id"]
        if ident not in seen:
            seen.append(ident)
    return seen[:n]


def search(query: str = "") -> list[dict[str, Any]]:
    """Entries whose id, alias or family contains ``query`` (all entries when empty)."""
    q = _norm(query)
    return [e for e in entries() if not q or q in _norm(e["id"]) or any(q in _norm(a) for a in e.get("aliases", []))
            or q in _norm(e["config"].get("model_type", ""))]
