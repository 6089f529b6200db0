"""The GPU catalog (``data/gpus.json``, each entry with its source) and fit verdicts.

A GPU is named by id or alias (``rtx-4090``, ``4090``, ``a100``), by a size (``24GB``, ``80GiB``: binary in
every spelling, as GPU makers count it, so ``24GB`` is 24 GiB; :func:`size_note` says so), or as
``auto`` (the local NVIDIA GPUs through NVML, from the ``gpu`` extra). Apple entries carry the fraction of
unified memory Metal lets the GPU use by default (``recommendedMaxWorkingSetSize``), which is what counts.

Verdict: *fits* when even the high end of the estimate's range fits in usable memory, *tight* when the
estimate fits but its high end does not, *does not fit* otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from .errors import VramscopeError
from .result import GpuVerdict
from .units import MIN_GPU_BYTES, looks_like_size, parse_bytes, shown

DATA = Path(__file__).resolve().parent / "data" / "gpus.json"


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    memory_bytes: int
    usable_fraction: float = 1.0
    vendor: str = ""
    segment: str = ""
    source: str = ""
    compute_capability: str = ""
    gfx_target: str = ""

    @property
    def usable_bytes(self) -> int:
        return int(self.memory_bytes * self.usable_fraction)


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    with DATA.open(encoding="utf-8") as f:
        return json.load(f)


def _gpu(e: dict[str, Any]) -> Gpu:
    return Gpu(id=e["id"], name=e["name"], memory_bytes=int(e["memory_bytes"]),
               usable_fraction=float(e.get("usable_fraction", 1.0)), vendor=e.get("vendor", ""),
               segment=e.get("segment", ""), source=e.get("source", ""),
               compute_capability=str(e.get("compute_capability", "") or ""), gfx_target=str(e.get("gfx_target", "") or ""))


def _key(s: str) -> str:
    return s.strip().lower().replace("_", "-").replace(" ", "-")


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, Any]]:
    idx: dict[str, dict[str, Any]] = {}
    for e in catalog()["gpus"]:
        for k in (e["id"], e["name"], *e.get("aliases", [])):
            idx.setdefault(_key(k), e)
    return idx


def all_gpus() -> list[Gpu]:
    return [_gpu(e) for e in catalog()["gpus"]]


def find_gpu(name: str) -> Gpu:
    """A catalog GPU, a custom size (``24GB``, at least 256 MiB), or a clear error with suggestions."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or not name.isprintable():
        raise VramscopeError("bad_choice", field="--gpu", value=shown(name),
                             allowed="a GPU name (rtx-4090, a100, h100), a memory size (24GB, 80GiB) or auto")
    text = name.strip()
    if looks_like_size(text):
        size = parse_bytes(text, "--gpu", minimum=MIN_GPU_BYTES, gpu=True)  # "24GB" is a 24 GiB card
        return Gpu(id=text, name=f"{text} GPU", memory_bytes=size)
    if text.lower() == "auto":
        detected = detect_gpus()
        return detected[0]
    e = _index().get(_key(text))
    if e is None:
        import difflib

        keys = list(_index())
        close = [k for k in keys if _key(text) in k][:3] + difflib.get_close_matches(_key(text), keys, n=3, cutoff=0.6)
        names = list(dict.fromkeys(_index()[k]["id"] for k in close)) or ["rtx-4090", "a100-80gb", "h100-sxm"]
        raise VramscopeError("unknown_gpu", field="gpu", name=text, suggestions=", ".join(names[:5]))
    return _gpu(e)


def size_note(name: str) -> "Optional[tuple[str, dict[str, Any]]]":
    """For a GPU given as a size in GB, G, MB... (not GiB): the i18n key and parameters of the line saying how it was read."""
    text = name.strip() if isinstance(name, str) else ""
    if not looks_like_size(text) or text.lower().endswith("ib"):
        return None  # 24GiB says what it means
    size = parse_bytes(text, "--gpu", minimum=MIN_GPU_BYTES, gpu=True)
    return "gpu_size_note", {"text": text, "gib": f"{size / 2**30:,.2f}", "bytes": f"{size:,}"}


def detect_gpus() -> list[Gpu]:
    """Local NVIDIA GPUs through NVML (``pip install 'vramscope[gpu]'``)."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        raise VramscopeError("gpu_auto_unavailable", detail="nvidia-ml-py is not installed") from None
    try:
        pynvml.nvmlInit()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else name
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            out.append(Gpu(id=f"cuda:{i}", name=name, memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
                           vendor="nvidia", compute_capability=f"{major}.{minor}"))
    except Exception as e:  # NVMLError has many subclasses; all mean "no usable GPU here"
        raise VramscopeError("gpu_auto_unavailable", detail=str(e) or type(e).__name__) from None
    if not out:
        raise VramscopeError("gpu_auto_unavailable", detail="NVML reports no devices")
    return out


def verdict(gpu: Gpu, total: int, high: int) -> GpuVerdict:
    usable = gpu.usable_bytes
    if high <= usable:
        v = "fits"
    elif total <= usable:
        v = "tight"
    else:
        v = "no"
    return GpuVerdict(name=gpu.name, memory_bytes=gpu.memory_bytes, usable_bytes=usable, verdict=v,
                      headroom_bytes=usable - total)

