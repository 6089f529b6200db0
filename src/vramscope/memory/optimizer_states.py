"""Optimizer states and the temporaries of the optimizer step.

States per trainable parameter (torch ``torch/optim/*.py``, bitsandbytes ``bnb/optim``):

* ``adamw`` / ``adam``: ``exp_avg`` and ``exp_avg_sq``, each in the parameter's dtype (torch creates them with
  ``torch.zeros_like(p)``), plus a scalar step;
* ``adamw-8bit`` (bitsandbytes): two uint8 states with one fp32 absmax per 2,048-value block (parameters under
  4,096 elements stay 32-bit; ignored here);
* ``paged-adamw`` / ``paged-adamw-8bit`` (bitsandbytes paged optimizers, used by QLoRA): the same states in
  CUDA unified memory, which the driver pages out to host memory only when the GPU runs out; the estimate
  counts them on the GPU (the peak when memory suffices) and says so;
* ``sgd``: none; ``sgd-momentum``: one momentum buffer like the parameter;
* ``lion``: one ``exp_avg`` like the parameter;
* ``adafactor``: factored second moments, one row and one column vector per matrix (≈ 0 per parameter);
  counted as ``rows + cols`` values per 2-D weight, approximated here as 1% of the parameters.

The step's temporaries: torch's default ``foreach`` AdamW builds intermediate lists about the size of the
trainable parameters once more (``_multi_tensor_adamw``); ``fused`` and per-parameter (``foreach=False``)
implementations need only a few of the largest tensor.
"""

from __future__ import annotations

OPTIMIZERS = ("adamw", "adam", "adamw-fused", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd",
              "sgd-momentum", "lion", "adafactor")


def state_bytes_per_param(optimizer: str, param_bytes: float) -> float:
    if optimizer == "paged-adamw":  # bitsandbytes' 32-bit optimizers keep fp32 states whatever the parameters
        return 8.0
    optimizer = optimizer.removeprefix("paged-")  # paged states are the same bytes, in CUDA unified memory
    if optimizer in ("adamw", "adam", "adamw-fused"):
        return 2 * param_bytes
    if optimizer == "adamw-8bit":
        return 2 * (1 + 4 / 2048)
    if optimizer in ("sgd-momentum", "lion"):
        return param_bytes
    if optimizer == "adafactor":
        return 0.01 * 4
    return 0.0


def optimizer_state_bytes(optimizer: str, trainable_params: int, param_bytes: float) -> int:
    return int(trainable_params * state_bytes_per_param(optimizer, param_bytes))


def step_temporary_bytes(optimizer: str, trainable_params: int, param_bytes: float, largest_tensor: int) -> int:
    """Transient bytes during ``optimizer.step()`` (module docstring)."""
    optimizer = optimizer.removeprefix("paged-")
    if optimizer in ("adamw", "adam", "lion", "sgd-momentum"):
        return int(trainable_params * param_bytes)
    return int(2 * largest_tensor * param_bytes)


#: DeepSpeed ZeRO-3 optimizer-step tile (``zero_optimization.sub_group_size`` default, elements)
SUB_GROUP = 1_000_000_000


def deepspeed_step_temporary(trainable_params: int, grad_bytes: float, ranks: int, stage3: bool) -> int:
    """DeepSpeed's step (``deepspeed/runtime/zero``) upcasts the rank's 16-bit gradient partition to fp32 after
    flattening it: ``(grad_bytes + 4)`` per element of the partition (ZeRO-1/2, ``stage_1_and_2.py step``), or of
    one sub-group at a time (ZeRO-3, ``_prepare_fp32_grad_for_sub_group``: at most ``sub_group_size``)."""
    part = -(-trainable_params // ranks)
    if stage3:
        part = min(part, SUB_GROUP)
    return int(part * (grad_bytes + 4))
