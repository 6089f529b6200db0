"""Models not in the catalog, read from the Hugging Face Hub: config.json and safetensors metadata only.

Weights are never downloaded and repository code is never run (no ``trust_remote_code``). Needs the ``hub``
extra (``huggingface_hub``); offline, gated and missing repositories each get their own clear message.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
from typing import Any

from ..errors import VramscopeError
from .base import JsonProblem, ResolvedModel, parse_json, read_limited, with_stored
from .hf_config import spec_from_config
from .safetensors import stored_tensors

#: the same bound as for a local config.json (sources/local.py)
MAX_CONFIG_BYTES = 10 * 1000 * 1000


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        return None
    return huggingface_hub


def _probe(name: str) -> None:
    """Fail fast (3 s, one line) when the Hub's host cannot be reached, instead of the client's retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return  # the client answers from its cache, or says it is offline, at once
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urllib.parse.urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "huggingface.co", port), timeout=3).close()
    except OSError as e:
        raise VramscopeError("hub_offline", name=name, detail=f"{parsed.hostname}: {e.strerror or e}") from None


def _first_sentence(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    cut = line.find(". ")
    line = line[: cut + 1] if 0 < cut < limit else line
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _classify(name: str, e: Exception) -> VramscopeError:
    kind = type(e).__name__
    text = _first_sentence(str(e)) or kind
    if kind in ("GatedRepoError",) or "401" in text or "403" in text:
        return VramscopeError("hub_gated", name=name)
    if kind in ("RepositoryNotFoundError", "EntryNotFoundError", "RevisionNotFoundError") or "404" in text:
        return VramscopeError("hub_not_found", name=name)
    return VramscopeError("hub_offline", name=name, detail=text)


def resolve_hub(name: str) -> ResolvedModel:
    hub = _hub()
    if hub is None:
        raise VramscopeError("hub_missing", name=name)
    _probe(name)
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # no retry chatter on stderr
    try:
        path = hub.hf_hub_download(repo_id=name, filename="config.json")
    except VramscopeError:
        raise
    except Exception as e:  # network, auth and not-found errors come from several libraries
        raise _classify(name, e) from None
    raw = read_limited(path, MAX_CONFIG_BYTES)  # the cached copy: a regular file, bounded like a local one
    try:
        cfg = parse_json(raw, max_containers=100_000, max_items=2_000_000)
    except JsonProblem as e:
        raise VramscopeError("config_bad_json", origin=f"{name}/config.json", detail=e.detail) from None
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=f"{name}/config.json")
    spec = spec_from_config(cfg, name=name, origin=f"hf://{name}/config.json")
    stored = None
    try:
        meta = hub.get_safetensors_metadata(name)
        stored = stored_tensors(((t, info.dtype, info.shape) for fm in meta.files_metadata.values()
                                 for t, info in fm.tensors.items()), cfg.get("quantization_config"))
    except Exception:  # no safetensors on the repo (or metadata unavailable): the spec alone is enough
        stored = None
    if stored:
        return with_stored(spec, "hub", f"hf://{name}", stored, hf_config=cfg)
    return ResolvedModel(spec=spec, kind="hub", origin=f"hf://{name}", params=spec.params,
                         active_params=spec.active_params, notes=spec.notes, hf_config=cfg)
