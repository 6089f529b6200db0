"""bitsandbytes 0.42.0's 4-bit matmul (bitsandbytes-foundation/bitsandbytes tag 0.42.0, commit 4870580f,
``bitsandbytes/autograd/_functions.py`` lines 494-548, MIT License, Copyright (c) Facebook, Inc. and its
affiliates), copied verbatim so that tests run the autograd function LitGPT's published QLoRA rows ran with on
bitsandbytes 0.50.2's CPU tensors and ``F.dequantize_4bit`` (whose "BC shim" still takes the transposed packed
weight 0.42.0's ``Linear4bit.forward`` passed: ``bnb.matmul_4bit(x, self.weight.t(), ...)``).

:func:`matmul_4bit` is what 0.42.0's ``bnb.matmul_4bit`` does with a training input (``A.requires_grad`` or more
than one row: ``MatMul4Bit.apply``), called with 0.50.2's ``Linear4bit.forward`` arguments (the weight not
transposed): it transposes it as 0.42.0's caller did.
"""

import operator
from functools import reduce

import torch

import bitsandbytes.functional as F


def prod(iterable):
    return reduce(operator.mul, iterable, 1)


class MatMul4Bit(torch.autograd.Function):
    # forward is the same, but we added the fallback for pre-turing GPUs
    # backward is mostly the same, but adds one extra clause (see "elif state.CxB is not None")

    @staticmethod
    def forward(ctx, A, B, out=None, bias=None, quant_state: F.QuantState = None):
        # default of pytorch behavior if inputs are empty
        ctx.is_empty = False
        if prod(A.shape) == 0:
            ctx.is_empty = True
            ctx.A = A
            ctx.B = B
            ctx.bias = bias
            B_shape = quant_state.shape
            if A.shape[-1] == B_shape[0]:
                return torch.empty(A.shape[:-1] + B_shape[1:], dtype=A.dtype, device=A.device)
            else:
                return torch.empty(A.shape[:-1] + B_shape[:1], dtype=A.dtype, device=A.device)


        # 1. Dequantize
        # 2. MatmulnN
        output = torch.nn.functional.linear(A, F.dequantize_4bit(B, quant_state).to(A.dtype).t(), bias)

        # 3. Save state
        ctx.state = quant_state
        ctx.dtype_A, ctx.dtype_B, ctx.dtype_bias = A.dtype, B.dtype, None if bias is None else bias.dtype

        if any(ctx.needs_input_grad[:2]):
            ctx.tensors = (A, B)
        else:
            ctx.tensors = (None, None)

        return output

    @staticmethod
    def backward(ctx, grad_output):
        if ctx.is_empty:
            bias_grad = None if ctx.bias is None else torch.zeros_like(ctx.bias)
            return torch.zeros_like(ctx.A), torch.zeros_like(ctx.B), None, bias_grad, None

        req_gradA, _, _, req_gradBias, _= ctx.needs_input_grad
        A, B = ctx.tensors

        grad_A, grad_B, grad_bias = None, None, None

        if req_gradBias:
            # compute grad_bias first before changing grad_output dtype
            grad_bias = grad_output.sum(0, dtype=ctx.dtype_bias)

        # not supported by PyTorch. TODO: create work-around
        #if req_gradB: grad_B = torch.matmul(grad_output.t(), A)
        if req_gradA: grad_A = torch.matmul(grad_output, F.dequantize_4bit(B, ctx.state).to(grad_output.dtype).t())

        return grad_A, grad_B, None, grad_bias, None


def matmul_4bit(A, B, quant_state, out=None, bias=None):
    return MatMul4Bit.apply(A, B.t(), out, bias, quant_state)
