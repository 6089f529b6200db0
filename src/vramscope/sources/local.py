"""Local files and folders: ``config.json``, ``.safetensors`` (single or sharded), ``.gguf``.

Only headers and JSON are read. Pickle checkpoints (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``) are
refused, since unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import VramscopeError
from ..model.spec import ModelSpec
from . import gguf as gguf_source
from . import safetensors as st
from .base import ResolvedModel, StoredTensor, read_bounded, with_stored
from .hf_config import spec_from_config

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_CONFIG_BYTES = 10 * 1000 * 1000


def read_config(path: Path) -> dict[str, Any]:
    raw = read_bounded(path, MAX_CONFIG_BYTES)
    if raw is None:
        raise VramscopeError("config_bad_json", origin=path, detail="larger than 10 MB")
    try:
        cfg = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VramscopeError("config_bad_json", origin=path, detail=str(e)[:120]) from None
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=path)
    return cfg


def _name_for(path: Path) -> str:
    folder = path if path.is_dir() else path.parent
    return folder.name or str(path)


def _safetensors_files(folder: Path) -> list[Path]:
    index = sorted(folder.glob("*.safetensors.index.json"))
    if index:
        return st.read_index(index[0])
    return sorted(folder.glob("*.safetensors"))


def _resolve_safetensors(files: list[Path], folder: Path, origin: str) -> ResolvedModel:
    headers = [st.read_header(p) for p in files]
    cfg_path = folder / "config.json"
    cfg = read_config(cfg_path) if cfg_path.is_file() else None
    quant = (cfg or {}).get("quantization_config")
    stored = st.stored_tensors(st.header_entries(headers), quant)
    notes: tuple[str, ...] = ()
    if cfg is not None:
        spec = spec_from_config(cfg, name=_name_for(folder), origin=str(cfg_path))
    else:
        spec = infer_spec_from_names(stored, _name_for(folder), origin)
        notes = ("no config.json beside the weights: shape inferred from tensor names, head_dim assumed 128",)
    return with_stored(spec, "safetensors", origin, stored, st.describe_format(stored, quant), notes, cfg)


_LAYER_RE = re.compile(r"layers\.(\d+)\.")


def infer_spec_from_names(stored: list[StoredTensor], name: str, origin: str) -> ModelSpec:
    """A Llama-layout spec from tensor names and shapes, for weights shipped without a config.json."""
    by_name = {t.name: t for t in stored}
    emb = by_name.get("model.embed_tokens.weight")
    q = by_name.get("model.layers.0.self_attn.q_proj.weight")
    k = by_name.get("model.layers.0.self_attn.k_proj.weight")
    if emb is None or q is None or k is None or len(emb.shape) != 2:
        raise VramscopeError("safetensors_bad", path=origin,
                             detail="no config.json beside it and the tensor names are not Llama-style; "
                                    "put the model's config.json next to the weights")
    layers = 1 + max(int(m.group(1)) for t in stored if (m := _LAYER_RE.search(t.name)))
    gate = by_name.get("model.layers.0.mlp.gate_proj.weight") or by_name.get("model.layers.0.mlp.up_proj.weight")
    head_dim = 128 if q.shape[0] % 128 == 0 else 64
    return ModelSpec(name=name, model_type="llama", num_layers=layers, hidden_size=emb.shape[1],
                     num_heads=max(1, q.shape[0] // head_dim), num_kv_heads=max(1, k.shape[0] // head_dim),
                     head_dim=head_dim, intermediate_size=gate.shape[0] if gate else 4 * emb.shape[1],
                     vocab_size=emb.shape[0], tie_embeddings="lm_head.weight" not in by_name,
                     qkv_bias="model.layers.0.self_attn.q_proj.bias" in by_name, source=origin)


def _resolve_gguf(path: Path) -> ResolvedModel:
    meta, tensors = gguf_source.read_gguf(path)
    spec = gguf_source.spec_from_gguf(meta, tensors, name=str(meta.get("general.name") or path.stem), path=path)
    fmt = gguf_source.file_type_name(meta)
    return with_stored(spec, "gguf", str(path), tensors, f"gguf {fmt}".strip())


def resolve_path(path: Path) -> Optional[ResolvedModel]:
    """A resolved model for a local path, or None when ``path`` does not exist."""
    if not path.exists():
        return None
    if path.is_dir():
        files = _safetensors_files(path)
        if files:
            return _resolve_safetensors(files, path, str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return _resolve_gguf(ggufs[0])
        cfg = path / "config.json"
        if cfg.is_file():
            raw = read_config(cfg)
            return _from_spec(spec_from_config(raw, name=path.name, origin=str(cfg)), "config", str(cfg), raw)
        if any(path.glob(f"*{s}") for s in PICKLE_SUFFIXES):
            raise VramscopeError("pickle_refused", path=path)
        raise VramscopeError("dir_no_model", path=path)
    name = path.name.lower()
    if name.endswith(PICKLE_SUFFIXES):
        raise VramscopeError("pickle_refused", path=path)
    if name.endswith(".gguf"):
        return _resolve_gguf(path)
    if name.endswith(".safetensors.index.json"):
        return _resolve_safetensors(st.read_index(path), path.parent, str(path))
    if name.endswith(".safetensors"):
        return _resolve_safetensors([path], path.parent, str(path))
    if name.endswith(".json"):
        raw = read_config(path)
        return _from_spec(spec_from_config(raw, name=_name_for(path), origin=str(path)), "config", str(path), raw)
    raise VramscopeError("bad_choice", field="MODEL", value=path,
                         allowed="a folder, config.json, *.safetensors, *.safetensors.index.json or *.gguf")


def _from_spec(spec: ModelSpec, kind: str, origin: str, raw: dict) -> ResolvedModel:
    return ResolvedModel(spec=spec, kind=kind, origin=origin, params=spec.params, active_params=spec.active_params,
                         notes=spec.notes, hf_config=raw)
