"""Runtime overhead: memory a process holds on the GPU besides its tensors.

* CUDA context and loaded kernel images: ~0.3–1.4 GiB depending on GPU, driver and libraries, visible only
  to NVML/nvidia-smi (measured 911 MiB on an A100 by the asmirnov VRAM estimator; torch loads kernels
  lazily since CUDA 11.7, ``CUDA_MODULE_LOADING=LAZY``). Nominal 512 MiB.
* cuBLAS workspace: torch's default ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (8 × 4 MiB) per handle, i.e. 32 MiB on
  one stream, plus cuBLASLt's (``TORCH_CUBLASLT_WORKSPACE_SIZE``, 1 MiB by default before Hopper).
* Allocator rounding and fragmentation (``c10/cuda/CUDACachingAllocator.cpp``): blocks round up to 512 B,
  small blocks come from 2 MiB segments and large ones round to 2 MiB; reserved memory typically exceeds the
  allocated peak by a few percent up to ~30%. This is the uncertain part: the high end of the range adds
  15% of the allocated transient (activations and temporaries).
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 2**20

CONTEXT_NOMINAL = 512 * MiB
CONTEXT_LOW = 300 * MiB
CONTEXT_HIGH = 1400 * MiB
CUBLAS_WORKSPACE = 33 * MiB
FRAGMENTATION_HIGH = 0.15


@dataclass(frozen=True)
class Overhead:
    nominal: int
    low: int
    high: int


def runtime_overhead(transient_bytes: int) -> Overhead:
    """CUDA context + cuBLAS workspace, with fragmentation of ``transient_bytes`` in the high end."""
    return Overhead(nominal=CONTEXT_NOMINAL + CUBLAS_WORKSPACE,
                    low=CONTEXT_LOW + CUBLAS_WORKSPACE,
                    high=CONTEXT_HIGH + CUBLAS_WORKSPACE + int(FRAGMENTATION_HIGH * transient_bytes))
