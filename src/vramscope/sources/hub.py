"""Models not in the catalog, read from the Hugging Face Hub: config.json, the small side files that change the
estimate (``hf_quant_config.json``, the processor configs) and safetensors metadata only.

Weights are never downloaded and repository code is never run (no ``trust_remote_code``). Needs the ``hub``
extra (``huggingface_hub``); offline, gated and missing repositories each get their own clear message.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from ..errors import VramscopeError
from .base import JsonProblem, ResolvedModel, format_limit, parse_json, read_limited, with_stored
from .hf_config import spec_from_config
from .local import MAX_SIDECAR_BYTES, SIDECAR, with_sidecar_quant
from .processor_config import IMAGE_PROCESSOR, MAX_PROCESSOR_BYTES, PROCESSOR, VIDEO_PROCESSOR, with_processor
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


#: the small files beside config.json that change the estimate: NVIDIA ModelOpt's quantization sidecar and the
#: image / video processor configs (sources/local.py, sources/processor_config.py)
PROCESSOR_FILES = (PROCESSOR, IMAGE_PROCESSOR, VIDEO_PROCESSOR)
SIDE_FILES = (SIDECAR,) + PROCESSOR_FILES


def _side_files(hub: Any, name: str) -> dict[str, str]:
    """The side files the repository has, fetched into the same snapshot as its config.json (file name -> local
    path). Their sizes are read from the repository's listing first and a file over its bound is refused before a
    byte of it is downloaded; a listing that cannot be had (old client, network) means none are read, and the
    estimate says nothing more than config.json does."""
    try:
        info = hub.HfApi().model_info(name, files_metadata=True)
        sizes = {s.rfilename: s.size for s in (info.siblings or ())}
    except Exception:  # a listing is optional: config.json alone still answers
        return {}
    out = {}
    for fname in SIDE_FILES:
        if fname not in sizes:
            continue
        limit = MAX_SIDECAR_BYTES if fname == SIDECAR else MAX_PROCESSOR_BYTES
        if sizes[fname] is not None and sizes[fname] > limit:
            raise VramscopeError("file_too_large", path=f"hf://{name}/{fname}", limit=format_limit(limit))
        try:
            out[fname] = hub.hf_hub_download(repo_id=name, filename=fname)
        except Exception as e:
            raise _classify(name, e) from None
    return out


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
    fetched = _side_files(hub, name)
    if SIDECAR in fetched:
        cfg = with_sidecar_quant(cfg, Path(fetched[SIDECAR]).parent / "config.json")
    spec = spec_from_config(cfg, name=name, origin=f"hf://{name}/config.json")
    if fetched.keys() & set(PROCESSOR_FILES):
        spec, read = with_processor(spec, Path(next(iter(fetched.values()))).parent)
        spec = dataclasses.replace(spec, notes=spec.notes + read)
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
