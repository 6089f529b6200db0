"""Runtime overhead: memory a process holds on the GPU besides its tensors.

* CUDA context and loaded kernel images, visible only to NVML/nvidia-smi: :data:`CONTEXT_MEASUREMENTS` lists the
  published measurements this range comes from. torch sets ``CUDA_MODULE_LOADING=LAZY`` since 1.13
  (pytorch/pytorch#86509) on CUDA >= 11.7, so kernels load when first used: 0.27–0.42 GiB at start-up, more as a
  run loads cuBLAS/cuDNN/attention kernels; before that every kernel image loaded with the library (0.62–1.31 GiB).
  Nominal 512 MiB (lazy loading after a training step's kernels), range 274 MiB – 1,400 MiB (eager loading).
* cuBLAS workspace, by GPU generation (torch ``aten/src/ATen/cuda/CublasHandlePool.cpp``,
  ``parseChosenWorkspaceSize``): ``:4096:2:16:8`` = 8.125 MiB per handle and stream on GPUs before Hopper, 32 MiB
  on compute capability 9.x–12.x (Hopper, Blackwell); on ROCm 32 MiB, 128 MiB on gfx942/gfx950 (MI300, MI350).
  Without a named GPU the pre-Hopper size is nominal and the Hopper size the high end.
* Allocator rounding and caching: for torch's caching allocator, ``memory/allocator.py`` models it and
  ``memory/device.py`` estimates the cache (the reserved number); the engines that keep their own buffers
  (llama.cpp) keep a 15% of their transient in the high end of the range (``FRAGMENTATION_HIGH``).
* What else allocates: NCCL communicators on several GPUs (:data:`NCCL`); bitsandbytes' paged optimizer states live
  in CUDA managed memory (``paged_bytes``: on the device, outside torch's counters); flash-attention and cuDNN's
  attention take their outputs and workspaces from torch's allocator (they are tensors), so they are in the
  allocated number; vLLM's CUDA-graph pool and non-torch memory are its own accounting (``engines/vllm.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

MiB = 2**20
GiB = 2**30


@dataclass(frozen=True)
class ContextMeasurement:
    """One published measurement of the memory a process holds before (or beside) its tensors."""

    bytes: int
    gpu: str
    software: str
    loading: str  # lazy | eager | unknown (CUDA_MODULE_LOADING)
    what: str
    source: str


#: Published CUDA-context measurements (what NVML counts that torch's allocator does not), smallest first.
CONTEXT_MEASUREMENTS = (
    ContextMeasurement(287_047_680, "not stated", "torch 1.13 (CUDA 11.7)", "lazy",
                       "cudaMemGetInfo used after one 6.4 MB tensor", "https://github.com/pytorch/pytorch/pull/86509"),
    ContextMeasurement(int(300e6), "not stated", "torch 2.0 (CUDA >= 11.7)", "lazy",
                       "CUDA context with lazy module loading, ~300 MB (ptrblck)",
                       "https://github.com/pytorch/pytorch/issues/107667"),
    ContextMeasurement(int(400e6), "not stated", "torch 2.0 (CUDA >= 11.7)", "lazy",
                       "first CUDA operation, ~400 MB (ptrblck)", "https://github.com/pytorch/pytorch/issues/109888"),
    ContextMeasurement(426 * MiB, "RTX 6000 Ada", "torch 2.10+cu130", "lazy",
                       "nvidia-smi after torch.cuda.mem_get_info (context only)",
                       "https://github.com/unslothai/unsloth-zoo/pull/1053"),
    ContextMeasurement(666_632_192, "not stated", "torch 1.13 (CUDA 11.7)", "eager",
                       "cudaMemGetInfo used with CUDA_MODULE_LOADING=DEFAULT",
                       "https://github.com/pytorch/pytorch/pull/86509"),
    ContextMeasurement(911 * MiB, "A100", "not stated", "unknown", "asmirnov VRAM estimator's measured overhead",
                       "https://asmirnov.xyz/vram"),
    ContextMeasurement(1343 * MiB, "V100-SXM2 16GB", "torch ~1.12, transformers 4.21", "eager",
                       "nvidia-smi after torch.ones((1, 1)).to('cuda')",
                       "https://huggingface.co/docs/transformers/v4.21.0/perf_train_gpu_one"),
)

CONTEXT_NOMINAL = 512 * MiB
CONTEXT_LOW = CONTEXT_MEASUREMENTS[0].bytes // MiB * MiB  # 274 MiB: the smallest published
CONTEXT_HIGH = 1400 * MiB  # above the largest published (1,343 MiB, eager loading on a V100)
#: NCCL communicator buffers per process under multi-GPU runs: 0.5 GiB nominal (vLLM's tensor-parallel logs show
#: the non-torch memory grow by about that much from TP 1 to TP 2, vllm-project/vllm#10511); a communicator
#: holds NCCL_BUFFSIZE (4 MiB) per channel and peer for each protocol, so the real size depends on the topology:
#: 0–1 GiB is the range used.
NCCL = int(0.5 * GiB)
NCCL_HIGH = 1 * GiB
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
