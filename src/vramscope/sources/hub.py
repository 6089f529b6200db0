"""Models not in the catalog, read from the Hugging Face Hub: config.json and safetensors metadata only.

Weights are never downloaded and repository code is never run (no ``trust_remote_code``). Needs the ``hub``
extra (``huggingface_hub``); offline, gated and missing repositories each get their own clear message.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import VramscopeError
from .base import ResolvedModel
from .hf_config import spec_from_config
from .safetensors import stored_tensors


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        return None
    return huggingface_hub


def _classify(name: str, e: Exception) -> VramscopeError:
    kind = type(e).__name__
    text = str(e).splitlines()[0][:160] if str(e) else kind
    if kind in ("GatedRepoError",) or "401" in text or "403" in text:
        return VramscopeError("hub_gated", name=name)
    if kind in ("RepositoryNotFoundError", "EntryNotFoundError", "RevisionNotFoundError") or "404" in text:
        return VramscopeError("hub_not_found", name=name)
    return VramscopeError("hub_offline", name=name, detail=text)


def resolve_hub(name: str) -> ResolvedModel:
    hub = _hub()
    if hub is None:
        raise VramscopeError("hub_missing", name=name)
    try:
        path = hub.hf_hub_download(repo_id=name, filename="config.json")
        with open(path, "rb") as f:
            raw = f.read(10 * 1000 * 1000)
        cfg = json.loads(raw)
    except VramscopeError:
        raise
    except ValueError as e:
        raise VramscopeError("config_bad_json", origin=f"{name}/config.json", detail=str(e)[:120]) from None
    except Exception as e:  # network, auth and not-found errors come from several libraries
        raise _classify(name, e) from None
    spec = spec_from_config(cfg, name=name, origin=f"hf://{name}/config.json")
    stored = None
    try:
        meta = hub.get_safetensors_metadata(name)
        stored = stored_tensors(((t, info.dtype, info.shape) for fm in meta.files_metadata.values()
                                 for t, info in fm.tensors.items()), cfg.get("quantization_config"))
    except Exception:  # no safetensors on the repo (or metadata unavailable): the spec alone is enough
        stored = None
    params = sum(t.params for t in stored) if stored else spec.params
    return ResolvedModel(spec=spec, kind="hub", origin=f"hf://{name}", params=params,
                         active_params=spec.active_params if not stored else params - (spec.params - spec.active_params),
                         stored=tuple(stored) if stored else None)
