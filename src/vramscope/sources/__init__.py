"""Sources: everything that turns what the user typed into a :class:`ResolvedModel`.

Order of resolution for a MODEL argument: an existing local path, then the built-in catalog, then (if the
``hub`` extra is installed and the name looks like ``owner/name``) the Hugging Face Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import Phrase, VramscopeError
from . import catalog
from .base import ResolvedModel, StoredTensor, path_exists
from .hf_config import spec_from_config
from .numbers import resolve_params

__all__ = ["ResolvedModel", "StoredTensor", "resolve", "resolve_name", "resolve_params"]


def resolve_catalog(name: str) -> Optional[ResolvedModel]:
    entry = catalog.find(name)
    notes: tuple[str, ...] = ()
    shown = entry["id"] if entry else name
    if entry is None:
        variant = catalog.find_variant(name)
        if variant is None:
            return None
        entry, base = variant
        notes = (Phrase("n_variant", name=name, base=base),)
    cfg = catalog.config_of(entry)
    spec = spec_from_config(cfg, name=shown, origin=entry.get("source", "catalog"))
    return ResolvedModel(spec=spec, kind="catalog", origin=shown if notes else entry["id"], params=spec.params,
                         active_params=spec.active_params, notes=notes + spec.notes, hf_config=cfg)


def resolve(model: str, hub: bool = True) -> ResolvedModel:
    """Resolve MODEL (a path, a catalog name or a Hub id); unknown names get the closest suggestions."""
    if not isinstance(model, str) or not model.strip():
        raise VramscopeError("no_model")
    model = model.strip()
    path = Path(model).expanduser()
    looks_like_path = model.startswith((".", "/", "~")) or path.suffix in (".json", ".safetensors", ".gguf", ".bin")
    if looks_like_path or path_exists(path):
        from .local import resolve_path

        resolved = resolve_path(path)
        if resolved is not None:
            return resolved
        if looks_like_path:
            raise VramscopeError("file_not_found", path=model)
    return resolve_name(model, hub=hub)


def resolve_name(model: str, hub: bool = False) -> ResolvedModel:
    """Resolve a catalog name (or, with ``hub``, a Hub id) without ever touching the file system.

    What ``vramscope serve`` uses: a name a client sent is never taken for a path.
    """
    if not isinstance(model, str) or not model.strip():
        raise VramscopeError("no_model")
    model = model.strip()
    found = resolve_catalog(model)
    if found is not None:
        return found
    if hub and model.count("/") == 1 and not model.startswith("/"):
        from .hub import _hub, resolve_hub

        if _hub() is not None:
            return resolve_hub(model)
        hint = " (install 'vramscope[hub]' to read it from the Hugging Face Hub)"
    else:
        hint = ""
    suggestions = catalog.suggest(model)
    if suggestions:
        raise VramscopeError("unknown_model", name=model, hub=hint, suggestions=", ".join(suggestions))
    raise VramscopeError("unknown_model_nosuggest", name=model, hub=hint)
