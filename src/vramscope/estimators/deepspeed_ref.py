"""DeepSpeed's own model-state estimators, reproduced for comparison (not used by vramscope's estimates).

``estimate_zero2_model_states_mem_needs`` (``deepspeed/runtime/zero/stage_1_and_2.py``, DeepSpeed 0.19.8 lines
4017-4034) and ``estimate_zero3_model_states_mem_needs`` (``stage3.py`` 4016-4052), with ``P`` the total
parameters, ``L`` the largest layer's (one module's direct parameters), ``G`` GPUs per node, ``M`` nodes and
``f = additional_buffer_factor = 1.5`` (CPU only):

* ZeRO-2: GPU ``2P`` with optimizer offload, else ``2P + 18P/(G·M)``; CPU ``P·max(4·G·M, 16)·f`` with offload,
  else ``4P·G·f``;
* ZeRO-3: GPU ``4L`` (offload of parameters and optimizer), ``4L + 2P/(G·M)`` (optimizer only) or
  ``4L + 18P/(G·M)``; CPU per node ``18P/M·f`` / ``16P/M·f`` with ``zero_init`` (else at least ``4P·G·f``),
  without offload ``4L·G·f`` (``zero_init``) or ``4P·G·f``.

They count model states only (2-byte parameters and gradients, 4-byte fp32 gradients, 4-byte master weights,
8-byte Adam states) — no activations, no gradient buckets, no gathered layers beyond ``4L``, no prefetch, no
CUDA context. ``tests/test_configs.py`` checks these functions against the values DeepSpeed itself returned
(``validation/reference/deepspeed_estimators.jsonl``); ``bench/deepspeed_estimators.py`` compares them with vramscope.
"""

from __future__ import annotations

BUFFER_FACTOR = 1.5


def zero2_model_states(total_params: int, gpus_per_node: int = 1, nodes: int = 1, cpu_offload: bool = False,
                       additional_buffer_factor: float = BUFFER_FACTOR) -> tuple[int, int]:
    """(cpu_bytes, gpu_bytes) as DeepSpeed's ZeRO-2 estimator returns them."""
    total_gpus = nodes * gpus_per_node
    if cpu_offload:
        gpu = 2 * total_params
        cpu = total_params * max(4 * total_gpus, 16) * additional_buffer_factor
    else:
        gpu = 2 * total_params + int(18 * total_params / total_gpus)
        cpu = total_params * 4 * gpus_per_node * additional_buffer_factor
    return int(cpu), int(gpu)


def zero3_model_states(total_params: int, largest_layer_params: int, gpus_per_node: int = 1, nodes: int = 1,
                       cpu_offload: bool = True, cpu_offload_params: bool = True, zero_init: bool = True,
                       additional_buffer_factor: float = BUFFER_FACTOR) -> tuple[int, int]:
    """(cpu_bytes, gpu_bytes) as DeepSpeed's ZeRO-3 estimator returns them."""
    total_gpus = nodes * gpus_per_node
    gpus_factor = 1 / nodes
    largest_layer_memory = 4 * largest_layer_params
    p, f = total_params, additional_buffer_factor
    if cpu_offload:
        if cpu_offload_params:
            gpu = largest_layer_memory
            cpu = p * 18 * gpus_factor * f if zero_init else p * max(4 * gpus_per_node, 18 * gpus_factor) * f
        else:
            gpu = largest_layer_memory + int(2 * p / total_gpus)
            cpu = p * 16 * gpus_factor * f if zero_init else p * max(4 * gpus_per_node, 16 * gpus_factor) * f
    else:
        gpu = largest_layer_memory + int(18 * p / total_gpus)
        cpu = largest_layer_params * 4 * gpus_per_node * f if zero_init else p * 4 * gpus_per_node * f
    return int(cpu), int(gpu)
