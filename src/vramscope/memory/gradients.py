"""Gradients: one gradient per trainable parameter, in that parameter's dtype.

``param.grad`` has the parameter's dtype (torch autograd accumulates into a tensor like the parameter), so
pure-bf16 training keeps bf16 gradients (2 B), mixed precision with fp32 master parameters keeps fp32 (4 B),
and peft's fp32 LoRA adapters keep fp32 gradients. ``optimizer.zero_grad()`` sets them to None (the default
since torch 2.0), so between steps they are freed unless gradient accumulation keeps them.
"""

from __future__ import annotations


def gradient_bytes(trainable_params: int, grad_bytes: float) -> int:
    return int(trainable_params * grad_bytes)
