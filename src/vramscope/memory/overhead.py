"""Runtime overhead: memory a process holds on the GPU besides its tensors.

* CUDA context and loaded kernel images: ~0.3–1.4 GiB depending on GPU, driver and libraries, visible only
  to NVML/nvidia-smi (measured 911 MiB on an A100 by the asmirnov VRAM estimator; torch loads kernels
  lazily since CUDA 11.7, ``CUDA_MODULE_LOADING=LAZY``). Nominal 512 MiB.
* cuBLAS workspace, by GPU generation (torch ``aten/src/ATen/cuda/CublasHandlePool.cpp``,
  ``parseChosenWorkspaceSize``): ``:4096:2:16:8`` = 8.125 MiB per handle and stream on GPUs before Hopper, 32 MiB
  on compute capability 9.x–12.x (Hopper, Blackwell); on ROCm 32 MiB, 128 MiB on gfx942/gfx950 (MI300, MI350).
  Without a named GPU the pre-Hopper size is nominal and the Hopper size the high end.
* Allocator rounding and fragmentation (``c10/cuda/CUDACachingAllocator.cpp``): blocks round up to 512 B,
  small blocks come from 2 MiB segments and large ones round to 2 MiB; reserved memory typically exceeds the
  allocated peak by a few percent up to ~30%. This is the uncertain part: the high end of the range adds
  15% of the allocated transient (activations and temporaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

MiB = 2**20

CONTEXT_NOMINAL = 512 * MiB
CONTEXT_LOW = 300 * MiB
CONTEXT_HIGH = 1400 * MiB
CUBLAS_WORKSPACE = 4096 * 1024 * 2 + 16 * 1024 * 8  # :4096:2:16:8
CUBLAS_WORKSPACE_LARGE = 32 * MiB  # Hopper / Blackwell, ROCm
CUBLAS_WORKSPACE_MI300 = 128 * MiB
FRAGMENTATION_HIGH = 0.15


@dataclass(frozen=True)
class Overhead:
    nominal: int
    low: int
    high: int


def cublas_workspace(compute_capability: str = "", gfx_target: str = "", vendor: str = "") -> Optional[int]:
    """torch's default cuBLAS/hipBLAS workspace for a GPU, or None when the GPU is unknown."""
    if vendor == "amd" or gfx_target:
        return CUBLAS_WORKSPACE_MI300 if gfx_target.startswith(("gfx942", "gfx950")) else CUBLAS_WORKSPACE_LARGE
    if compute_capability:
        major = int(compute_capability.split(".")[0])
        return CUBLAS_WORKSPACE_LARGE if 9 <= major <= 12 else CUBLAS_WORKSPACE
    return None


def runtime_overhead(transient_bytes: int, workspace: Optional[int] = None) -> Overhead:
    """CUDA context + cuBLAS workspace, with fragmentation of ``transient_bytes`` in the high end."""
    nominal_ws = CUBLAS_WORKSPACE if workspace is None else workspace
    high_ws = CUBLAS_WORKSPACE_LARGE if workspace is None else workspace
    return Overhead(nominal=CONTEXT_NOMINAL + nominal_ws,
                    low=CONTEXT_LOW + nominal_ws,
                    high=CONTEXT_HIGH + high_ws + int(FRAGMENTATION_HIGH * transient_bytes))
