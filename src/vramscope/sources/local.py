"""Local files and folders: ``config.json``, ``.safetensors`` (single or sharded), ``.gguf``.

Only headers and JSON are read. Pickle checkpoints (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``) are
refused, since unpickling can run arbitrary code.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Optional

from ..errors import Phrase, VramscopeError
from ..model.spec import ModelSpec
from ..units import format_count, shown
from . import gguf as gguf_source
from . import safetensors as st
from .base import ResolvedModel, StoredTensor, file_kind, load_json, os_error, require_regular, shown_path, \
    stat_path, with_stored
from .hf_config import spec_from_config
from .processor_config import with_processor

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: A config.json: real ones are 1-50 KB; the largest (image classifiers with 21k labels twice) ~1-2 MB.
MAX_CONFIG_BYTES = 10 * 1000 * 1000
#: Entries listed in a model folder: a checkpoint has tens of files (a few hundred shards at most); a folder
#: with more is not a model folder (someone passed /usr/lib), and listing it all would only cost time.
MAX_DIR_ENTRIES = 100_000
#: Layers of a shape inferred from tensor names: the deepest public models have ~130 (Llama-3.1-405B: 126).
MAX_INFERRED_LAYERS = 1024


def read_config(path: Path) -> dict[str, Any]:
    """A config.json: a regular file of at most 10 MB of bounded JSON (see :func:`base.parse_json`)."""
    cfg = load_json(path, MAX_CONFIG_BYTES, max_containers=100_000, max_items=2_000_000)
    if not isinstance(cfg, dict):
        raise VramscopeError("config_not_object", origin=shown_path(path))
    return cfg


#: ``hf_quant_config.json``: NVIDIA ModelOpt's sidecar (a few hundred bytes to a few KB with long exclude lists)
MAX_SIDECAR_BYTES = 1000 * 1000
SIDECAR = "hf_quant_config.json"


def with_sidecar_quant(raw: dict[str, Any], cfg_path: Path) -> dict[str, Any]:
    """``raw`` with the ``hf_quant_config.json`` beside ``cfg_path`` as its ``quantization_config`` when config.json
    has none, as vLLM reads it (``transformers_utils/config.py``: "ModelOpt 0.29.0 and before saves the
    quantization config in a separate hf_quant_config.json"; a file with a ``quantization`` object is ModelOpt's,
    ``sources/quant_config.py``). Read bounded, like config.json."""
    if raw.get("quantization_config") is not None:
        return raw
    side = cfg_path.parent / SIDECAR
    if not os.path.lexists(side):
        return raw
    q = load_json(side, MAX_SIDECAR_BYTES, max_containers=10_000, max_items=100_000)
    return merge_sidecar_quant(raw, q, shown_path(side))


def merge_sidecar_quant(raw: dict[str, Any], q: Any, origin: str) -> dict[str, Any]:
    """``raw`` with a parsed ``hf_quant_config.json`` ``q`` as its ``quantization_config`` (vLLM's rule, see
    :func:`with_sidecar_quant`); a config.json's own ``quantization_config`` wins. Also used for a catalog entry
    that stores NVIDIA's sidecar beside its config.json (``sources/catalog.py: config_of``)."""
    if raw.get("quantization_config") is not None:
        return raw
    if not isinstance(q, dict) or not isinstance(q.get("quantization"), dict):
        raise VramscopeError("config_bad_value", origin=origin, key="quantization",
                             value=shown(q.get("quantization") if isinstance(q, dict) else q),
                             allowed="an object with quant_algo (NVIDIA ModelOpt's hf_quant_config.json)")
    return {**raw, "quantization_config": {"quant_method": "modelopt", **q}}


def _name_for(path: Path) -> str:
    """The model's name: its folder's (``.`` and ``dir/..`` named by the folder they are, not as typed)."""
    folder = path if path.is_dir() else path.parent
    return folder.name if folder.name not in ("", ".", "..") else (os.path.abspath(folder).rstrip(os.sep).rsplit(
        os.sep, 1)[-1] or str(path))


def _listing(folder: Path) -> list[str]:
    """The names in a folder (dot-files left out), at most :data:`MAX_DIR_ENTRIES`."""
    names: list[str] = []
    try:
        with os.scandir(folder) as it:
            for n, entry in enumerate(it):
                if n >= MAX_DIR_ENTRIES:
                    raise VramscopeError("dir_too_many", path=shown_path(folder), n=f"{MAX_DIR_ENTRIES:,}")
                if not entry.name.startswith("."):
                    names.append(entry.name)
    except OSError as e:
        raise os_error(folder, e) from None
    return sorted(names)


_SHARD_RE = re.compile(r"^(?P<prefix>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.safetensors$")


def _check_shard_names(folder: Path, names: list[str]) -> None:
    """Files named ``<prefix>-00001-of-00004.safetensors`` say how many shards there are: all must be there."""
    groups: dict[tuple[str, str], set[int]] = {}
    for name in names:
        m = _SHARD_RE.match(name)
        if m:
            groups.setdefault((m["prefix"], m["n"]), set()).add(int(m["i"]))
    for (prefix, n), present in groups.items():
        total = int(n)
        if total > st.MAX_SHARDS:
            raise VramscopeError("safetensors_bad", path=shown_path(folder),
                                 detail=f"shard names say {total:,} shards, more than the {st.MAX_SHARDS:,} allowed")
        missing = [f"{prefix}-{i:05d}-of-{n}.safetensors" for i in range(1, total + 1) if i not in present]
        if missing:
            raise VramscopeError("shards_missing", path=shown_path(folder), n=len(missing), total=total,
                                 names=st._names(missing))


def _resolve_safetensors(files: list[Path], folder: Path, origin: str,
                         index: Optional[st.Index] = None) -> ResolvedModel:
    headers = st.read_headers(files)
    if index is not None:
        st.check_index(index, headers)
    cfg_path = folder / "config.json"
    cfg = with_sidecar_quant(read_config(cfg_path), cfg_path) if os.path.lexists(cfg_path) else None
    notes: tuple[str, ...] = ()
    quant = None
    if cfg is not None:
        spec, notes = with_processor(spec_from_config(cfg, name=_name_for(folder), origin=str(cfg_path)), folder)
        quant = cfg.get("quantization_config")
        if quant is not None and not isinstance(quant, dict):
            raise VramscopeError("config_bad_value", origin=shown_path(cfg_path), key="quantization_config",
                                 value=shown(quant), allowed="an object")
        stored = st.stored_tensors(st.header_entries(headers), quant)
    else:
        stored = st.stored_tensors(st.header_entries(headers), quant)
        spec = infer_spec_from_names(stored, _name_for(folder), origin)
        notes = (Phrase("n_no_config"),)
    if spec.tie_embeddings:
        stored, dropped = drop_tied_head(stored)
        notes += dropped
    mtp = (cfg or {}).get("num_nextn_predict_layers")
    notes += check_stored(spec, stored, quant, origin, from_config=cfg is not None,
                          mtp_layers=mtp if type(mtp) is int and 0 <= mtp <= 64 else 0)
    return with_stored(spec, "safetensors", origin, stored, st.describe_format(stored, quant), notes, cfg)


# ---- do the stored tensors agree with the config? --------------------------------------------------------------

#: buffers some checkpoints store beside the parameters (rotary tables, position ids, GPT-2's causal masks)
_BUFFER_SUFFIXES = (".inv_freq", ".position_ids", ".masked_bias", "._float_tensor")
_LAYER_NUM = re.compile(r"(?:^|\.)(?:layers|h|blocks|block)\.(\d{1,6})\.")
#: quantization methods whose packed tensors vramscope decodes into parameter counts (others only warn)
_DECODED = ("", "gptq", "awq", "bitsandbytes", "fp8", "fbgemm_fp8", "compressed-tensors", "mxfp4", "modelopt",
            "modelopt_fp4")
#: beyond these fractions of what the config implies, the files cannot be this model's weights
GROSS_LOW, GROSS_HIGH = 0.5, 2.0
#: differences up to this fraction are what checkpoints legitimately add or leave out (norm variants, biases
#: written as zeros, extra heads), and are not mentioned
QUIET = 0.02


_EMBEDDINGS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "shared.weight", "embed_in.weight")


def drop_tied_head(stored: list[StoredTensor]) -> tuple[list[StoredTensor], tuple[str, ...]]:
    """A checkpoint that stores ``lm_head.weight`` although its config ties it to the embeddings: the model
    loads one matrix for both, so the stored copy is counted once (and said so)."""
    heads = [t for t in stored if t.name.endswith("lm_head.weight")]
    if len(heads) != 1 or not any(t.name.endswith(_EMBEDDINGS) and t.shape == heads[0].shape for t in stored):
        return stored, ()
    return [t for t in stored if t is not heads[0]], (Phrase("n_tied_head", name=heads[0].name),)


_PACKED_DTYPES = ("I16", "I32", "I64", "U8", "U16", "U32", "U64")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _is_buffer(t: StoredTensor) -> bool:
    return t.name.endswith(_BUFFER_SUFFIXES) or (t.name.endswith(".attn.bias") and len(t.shape) == 4)


def _ranges(nums: list[int]) -> str:
    out, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}–{n}")
            start = None
    return ", ".join(out[:4]) + (", …" if len(out) > 4 else "")


def check_stored(spec: ModelSpec, stored: list[StoredTensor], quant: Any, origin: str,
                 from_config: bool = True, mtp_layers: int = 0) -> tuple[str, ...]:
    """Compare the parameters the files hold with those the config implies.

    An output head stored although the config ties it (see :func:`drop_tied_head`), multi-token-prediction
    layers beyond
    ``num_hidden_layers``, stored buffers and quantization side tensors are accounted for. What is left over:
    within 2% nothing is said; beyond 50% or 200% (with a quantization vramscope decodes) it is an error; in
    between, a note that the CLI prints with both numbers. Never a quiet override.
    """
    present: set[int] = set()
    mtp = 0  # parameters of the multi-token-prediction layers past num_hidden_layers (DeepSeek-V3)
    for t in stored:
        m = _LAYER_NUM.search(t.name)
        if m and not any(w in t.name for w in ("vision", "visual", "image")):
            i = int(m.group(1))
            present.add(i)
            if t.name.startswith("model.layers.") and spec.num_layers <= i < spec.num_layers + mtp_layers:
                mtp += t.params
    got = sum(t.params for t in stored if not _is_buffer(t)) - mtp
    if got <= 0:
        raise VramscopeError("safetensors_bad", path=shown_path(origin), detail="its tensors hold no parameters")
    missing = sorted(set(range(spec.num_layers)) - present) if present else []
    extra = sorted(i for i in present if i >= spec.num_layers + mtp_layers)
    why = f"; layers {_ranges(missing)} of {spec.num_layers} have no tensors" if missing else ""
    if extra:
        why += f"; the files have layers {_ranges(extra)}, beyond the config's {spec.num_layers}"
    if not from_config:
        if missing:
            raise VramscopeError("safetensors_bad", path=shown_path(origin), detail=why[2:])
        return ()
    expected = spec.params
    if expected <= 0:
        return ()
    diff = abs(got - expected)
    if diff <= QUIET * expected and not missing and not extra:
        return ()
    ratio = got / expected
    pct = f"{ratio:.0%} of it"
    # integer tensors counted one parameter per element are a packing vramscope does not decode (EXL2, HQQ, ...):
    # then the numbers cannot prove the checkpoint incomplete, and only the warning is given
    packed = any(t.dtype in _PACKED_DTYPES and t.params == _numel(t.shape) > 0 and not _is_buffer(t) for t in stored)
    decoded = st.quant_method(quant) in _DECODED and not packed
    if decoded and (ratio < GROSS_LOW or ratio > GROSS_HIGH or (missing and ratio < 1) or (extra and ratio > 1)):
        raise VramscopeError("stored_mismatch", path=shown_path(origin), stored=format_count(got),
                             expected=format_count(expected), pct=pct, why=why)
    return (Phrase("n_stored_mismatch", stored=format_count(got), expected=format_count(expected), pct=pct, why=why),)


_LAYER_RE = re.compile(r"layers\.(\d{1,6})\.")


def infer_spec_from_names(stored: list[StoredTensor], name: str, origin: str) -> ModelSpec:
    """A Llama-layout spec from tensor names and shapes, for weights shipped without a config.json."""
    by_name = {t.name: t for t in stored}

    def matrix(key: str) -> Optional[StoredTensor]:
        t = by_name.get(key)
        return t if t is not None and len(t.shape) == 2 and min(t.shape) > 0 else None

    emb = matrix("model.embed_tokens.weight")
    q = matrix("model.layers.0.self_attn.q_proj.weight")
    k = matrix("model.layers.0.self_attn.k_proj.weight")
    if emb is None or q is None or k is None:
        raise VramscopeError("safetensors_bad", path=shown_path(origin),
                             detail="no config.json beside it and the tensor names are not Llama-style; "
                                    "put the model's config.json next to the weights")
    layers = 1 + max(int(m.group(1)) for t in stored if (m := _LAYER_RE.search(t.name)))
    if layers > MAX_INFERRED_LAYERS:
        raise VramscopeError("safetensors_bad", path=shown_path(origin),
                             detail=f"a tensor name says layer {layers - 1:,}; at most {MAX_INFERRED_LAYERS} "
                                    "layers are inferred without a config.json")
    gate = matrix("model.layers.0.mlp.gate_proj.weight") or matrix("model.layers.0.mlp.up_proj.weight")
    head_dim = 128 if q.shape[0] % 128 == 0 else 64
    return ModelSpec(name=name, model_type="llama", num_layers=layers, hidden_size=emb.shape[1],
                     num_heads=max(1, q.shape[0] // head_dim), num_kv_heads=max(1, k.shape[0] // head_dim),
                     head_dim=head_dim, intermediate_size=gate.shape[0] if gate else 4 * emb.shape[1],
                     vocab_size=emb.shape[0], tie_embeddings="lm_head.weight" not in by_name,
                     qkv_bias="model.layers.0.self_attn.q_proj.bias" in by_name, source=origin)


def _resolve_gguf(path: Path) -> ResolvedModel:
    require_regular(path)  # a FIFO or device named *.gguf: refused here, before the GGUF reader opens it
    meta, tensors = gguf_source.read_gguf(path)
    spec = gguf_source.spec_from_gguf(meta, tensors, name=str(meta.get("general.name") or path.stem), path=path)
    fmt = gguf_source.file_type_name(meta)
    return with_stored(spec, "gguf", str(path), tensors, f"gguf {fmt}".strip())


def resolve_path(path: Path) -> Optional[ResolvedModel]:
    """A resolved model for a local path, or None when ``path`` does not exist.

    Anything that is there but cannot be read (a symbolic-link loop, a name too long, no permission, a FIFO or
    a device) is a clear error, never a hang and never a message about something else."""
    info = stat_path(path, missing_ok=True)
    if info is None:
        return None
    if stat.S_ISDIR(info.st_mode):
        return _resolve_folder(path)
    if not stat.S_ISREG(info.st_mode):
        raise VramscopeError("not_regular_file", path=shown_path(path), kind=file_kind(info.st_mode))
    name = path.name.lower()
    if name.endswith(PICKLE_SUFFIXES):
        raise VramscopeError("pickle_refused", path=shown_path(path))
    if name.endswith(".gguf"):
        return _resolve_gguf(path)
    if name.endswith(".safetensors.index.json"):
        index = st.read_index(path)
        return _resolve_safetensors(index.shards, path.parent, str(path), index)
    if name.endswith(".safetensors"):
        return _resolve_safetensors([path], path.parent, str(path))
    if name.endswith(".json"):
        raw = with_sidecar_quant(read_config(path), path)
        return _from_spec(spec_from_config(raw, name=_name_for(path), origin=str(path)), "config", str(path), raw,
                          path.parent)
    raise VramscopeError("bad_choice", field="MODEL", value=shown_path(path),
                         allowed="a folder, config.json, *.safetensors, *.safetensors.index.json or *.gguf")


def _resolve_folder(path: Path) -> ResolvedModel:
    names = _listing(path)
    indexes = [n for n in names if n.endswith(".safetensors.index.json")]
    if indexes:
        index = st.read_index(path / indexes[0])
        return _resolve_safetensors(index.shards, path, str(path), index)
    shards = [n for n in names if n.endswith(".safetensors")]
    if shards:
        _check_shard_names(path, shards)
        return _resolve_safetensors([path / n for n in shards], path, str(path))
    ggufs = [n for n in names if n.endswith(".gguf")]
    if ggufs:
        return _resolve_gguf(path / ggufs[0])
    if "config.json" in names:
        cfg = path / "config.json"
        raw = with_sidecar_quant(read_config(cfg), cfg)
        return _from_spec(spec_from_config(raw, name=path.name, origin=str(cfg)), "config", str(cfg), raw, path)
    if any(n.lower().endswith(PICKLE_SUFFIXES) for n in names):
        raise VramscopeError("pickle_refused", path=shown_path(path))
    raise VramscopeError("dir_no_model", path=shown_path(path))


def _from_spec(spec: ModelSpec, kind: str, origin: str, raw: dict, folder: Path) -> ResolvedModel:
    spec, read = with_processor(spec, folder)
    return ResolvedModel(spec=spec, kind=kind, origin=origin, params=spec.params, active_params=spec.active_params,
                         notes=spec.notes + read, hf_config=raw)
