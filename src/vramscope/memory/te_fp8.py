"""Transformer Engine FP8 under Megatron-LM (``--fp8-format`` / ``--fp8-recipe``; vramscope's ``--te-fp8``), per rank.

Read in NVIDIA/TransformerEngine v2.18 and Megatron-LM core_v0.19.0; the recipe defaults and the quantizers'
scale-shape rules were also run from the pure-Python files of the ``transformer_engine`` 2.20.2 wheel
(``bench/te_fp8_shapes.py``, ``validation/te_fp8_shapes.json``).

Which modules (Megatron ``models/gpt/gpt_layer_specs.py get_gpt_layer_with_transformer_engine_submodules``, a
dense layer): ``linear_qkv`` and ``linear_fc1`` are ``TELayerNormColumnParallelLinear`` (TE ``LayerNormLinear``:
the norm fused into the GEMM), ``linear_proj`` and ``linear_fc2`` ``TERowParallelLinear`` (TE ``Linear``); the
core attention and Megatron's SwiGLU stay in BF16 (``activation_func_fp8_input_store`` False), so do the
embedding and the output head (``fp8_output_proj`` False).

What each saves for backward instead of its BF16 input (TE ``module/layernorm_linear.py`` ``_LayerNormLinear.
forward``, ``module/linear.py`` ``_linear_forward_impl``):

* ``LayerNormLinear``: the norm writes ``ln_out`` already quantized (``with_quantized_norm``); for the weight
  gradient it keeps one FP8 copy: column-wise only (``ln_out.update_usage(rowwise_usage=False)``) unless
  sequence parallelism gathers it again in backward and the recipe can only gather row-wise data (delayed and
  tensorwise: ``supports_only_rowwise_all_gather``), then the row-wise data of the local shard. Either way one
  byte per element plus the recipe's scales. Its BF16 input, mu and rsigma are kept as without FP8;
* ``Linear``: its input quantized, column-wise only (``inputmat.update_usage(rowwise_usage=False,
  columnwise_usage=True)``). Megatron ``transformer/attention.py`` sets ``save_original_input`` on
  ``linear_proj`` for every recipe but ``delayed`` (TE >= 2.6): it then keeps the BF16 attention output the
  fused attention keeps anyway (nothing more); under ``delayed`` it keeps its own FP8 copy beside it.
  ``linear_fc2`` keeps an FP8 copy of the SwiGLU output instead of the BF16 one.

So per token and layer, ``e`` the bytes of one FP8 element with its scales, ``a`` the compute dtype's:
``2·(e − a)·h`` (``ln_out`` of qkv and fc1) ``+ (e − a)·I`` (fc2's input) ``+ e·q`` under ``delayed`` (proj's copy;
``(e − a)·q`` under selective recompute, where the attention output itself is recomputed and proj's input is
what stays).

The bytes of one quantized tensor (``tensor/*_tensor.py`` and ``csrc/quantizer.cpp`` ``create_tensor``):

* ``delayed`` (``Float8Quantizer``) and ``tensorwise`` (``Float8CurrentScalingQuantizer``): uint8 data, one fp32
  ``scale_inv``; row-wise usage is ``_data``, column-wise is ``_transpose``, a second byte per element, except where
  the GPU runs non-TN FP8 GEMMs (``utils.is_non_tn_fp8_gemm_supported``: compute capability 10.x, 11.x, >= 13),
  where one ``_data`` serves both;
* ``mxfp8`` (``MXFP8Quantizer``, 32-element blocks, ``MXFP8_BLOCK_SCALING_SIZE``): row-wise and column-wise data are
  separate uint8 tensors, each with uint8 (E8M0) scales of shape ``get_scale_shape``: row-wise
  ``(roundup(M, 128), roundup(K/32, 4))``, column-wise ``(roundup(M/32, 4), roundup(K, 128))``;
* ``blockwise`` (``Float8BlockQuantizer``, ``block_len`` 128, ``Float8BlockScaling``: inputs and gradients 1x128,
  weights 128x128 blocks): separate row-wise and (transposed) column-wise uint8 data, fp32 scales of
  ``get_scale_shape``.

FP8 weights (``module/base.py quantize_weight``): every ``forward`` with ``is_first_microbatch`` not None stores
the quantized weight in the module's ``_fp8_workspaces["weight"]`` and reuses it; Megatron's TE wrappers
(``extensions/transformer_engine.py``) pass it unless ``disable_parameter_transpose_cache``. The workspace has
row-wise usage and, as the input requires a gradient, column-wise usage (the data gradient's GEMM): alive for the
run, beside the BF16 weight. ``--fp8-param-gather`` (``fp8_param``: the model built under TE's quantized model
init) makes the weights themselves FP8 tensors: Megatron's parameter buffer holds them as uint8
(``distributed/param_and_grad_buffer.py``: ``param_dtype = torch.uint8``), there is no BF16 weight and no workspace
(``quantize_weight`` returns the parameter), the column-wise data is made after each all-gather
(``fp8_utils.post_all_gather_processing``) or in forward, and the distributed optimizer's fp32 main parameters are
the masters (as without FP8). The main gradients stay fp32.

Scaling state per TE module of one GEMM (``quantization.py``): ``delayed`` (``DelayedScalingRecipeState``) an fp32
``scale`` of 3 quantizers forward and 2 backward and an ``amax_history`` of ``amax_history_len`` rows each
(Megatron's ``--fp8-amax-history-len`` default 1; TE's own ``DelayedScaling`` default 1024); ``tensorwise`` one
fp32 ``scale`` and ``amax`` per quantizer; block recipes none. Each tensor takes one 512-byte block of the caching
allocator at least.

Not modelled (refused): MoE layers (``TEGroupedLinear``), multi-latent attention, the first/last layers kept in
BF16, MXFP8 FP8 parameters, fp8 attention (``fp8_dot_product_attention``).
"""

from __future__ import annotations

import math
from typing import Iterable

TE_VERSION = "v2.18"
MEGATRON_VERSION = "core_v0.19.0"
RECIPES = ("delayed", "tensorwise", "mxfp8", "blockwise")
#: transformer_engine/pytorch/constants.py MXFP8_BLOCK_SCALING_SIZE
MXFP8_BLOCK = 32
#: Float8BlockQuantizer.block_len
BLOCKWISE_BLOCK = 128
#: the caching allocator's smallest block (c10 CUDACachingAllocator kMinBlockSize)
MIN_BLOCK = 512


def round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def non_tn(compute_capability: str) -> bool:
    """TE ``utils.is_non_tn_fp8_gemm_supported``: ``(10, 0) <= cc < (12, 0) or cc >= (13, 0)``; unknown: False
    (Hopper's layout, the transpose kept)."""
    try:
        major, minor = (int(x) for x in str(compute_capability).split(".")[:2])
    except ValueError:
        return False
    return (10, 0) <= (major, minor) < (12, 0) or (major, minor) >= (13, 0)


def mxfp8_scale_shape(shape: Iterable[int], columnwise: bool) -> tuple[int, int]:
    """``MXFP8Quantizer.get_scale_shape``."""
    shape = tuple(shape)
    rows = math.prod(shape[:-1])
    if columnwise:
        return round_up(rows // MXFP8_BLOCK, 4), round_up(shape[-1], 128)
    return round_up(rows, 128), round_up(shape[-1] // MXFP8_BLOCK, 4)


def blockwise_scale_shape(shape: Iterable[int], columnwise: bool, dim: int) -> tuple[int, int]:
    """``Float8BlockQuantizer.get_scale_shape`` (``dim``: ``block_scaling_dim``, 1 for 1x128, 2 for 128x128)."""
    shape = tuple(shape)
    d0 = math.prod(shape[:-1])
    d1 = shape[-1] if shape else 1
    b = BLOCKWISE_BLOCK
    if dim == 2:
        s0, s1 = -(-d0 // b), -(-d1 // b)
        return (s1, round_up(s0, 4)) if columnwise else (s0, round_up(s1, 4))
    if columnwise:
        return -(-d0 // b), round_up(d1, 4)
    return -(-d1 // b), round_up(d0, 4)


def quantized_bytes(recipe: str, shape: Iterable[int], rowwise: bool, columnwise: bool, nontn: bool = False,
                    block_dim: int = 1) -> int:
    """Bytes of one TE quantized tensor with these usages (the data and its scales; module docstring)."""
    shape = tuple(shape)
    n = math.prod(shape)
    if recipe in ("delayed", "tensorwise"):
        data = n if (rowwise or nontn) else 0
        transpose = n if (columnwise and not nontn) else 0
        return data + transpose + 4
    out = 0
    for on, col in ((rowwise, False), (columnwise, True)):
        if not on:
            continue
        if recipe == "mxfp8":
            out += n + math.prod(mxfp8_scale_shape(shape, col))
        else:
            out += n + 4 * math.prod(blockwise_scale_shape(shape, col, block_dim))
    return out


def element_bytes(recipe: str) -> float:
    """Bytes per element of a saved FP8 activation (one usage), its scales spread over the elements: ``mxfp8`` one
    E8M0 byte per 32, ``blockwise`` (1x128) one fp32 per 128; per-tensor recipes one fp32 per tensor (nothing per
    element)."""
    if recipe == "mxfp8":
        return 1.0 + 1.0 / MXFP8_BLOCK
    if recipe == "blockwise":
        return 1.0 + 4.0 / BLOCKWISE_BLOCK
    return 1.0


def layer_delta_per_token(hidden: int, q_dim: int, inter: int, a: float, recipe: str,
                          selective: bool = False) -> float:
    """Bytes per token one dense Megatron layer saves under ``recipe`` minus what it saves in BF16 (module
    docstring); ``q_dim`` and ``inter`` per tensor-parallel rank."""
    e = element_bytes(recipe)
    out = 2 * (e - a) * hidden + (e - a) * inter
    if recipe == "delayed":
        out += (e - a) * q_dim if selective else e * q_dim
    return out


def layer_linears(hidden: int, q_dim: int, kv_dim: int, inter: int, gated: bool) -> tuple[tuple[int, int], ...]:
    """(out, in) of the four TE linears of one dense Megatron layer: ``linear_qkv``, ``linear_proj``,
    ``linear_fc1`` (gate and up fused under SwiGLU), ``linear_fc2``."""
    return ((q_dim + 2 * kv_dim, hidden), (hidden, q_dim), ((2 if gated else 1) * inter, hidden), (hidden, inter))


def weight_bytes(shapes: Iterable[tuple[int, int]], recipe: str, nontn: bool) -> int:
    """One layer's FP8 weights with row-wise and column-wise usage (the ``_fp8_workspaces`` entry, or the FP8
    parameter with its column-wise data); ``blockwise`` weights in 128x128 blocks."""
    dim = 2 if recipe == "blockwise" else 1
    return sum(quantized_bytes(recipe, s, True, True, nontn, dim) for s in shapes)


def meta_bytes(recipe: str, history: int) -> int:
    """Scaling state of one TE module of one GEMM, each tensor at least one allocator block: ``delayed`` two
    ``scale`` (3 and 2 fp32) and two ``amax_history`` (``history`` × 3 and × 2 fp32); ``tensorwise`` a ``scale`` and
    an ``amax`` (one fp32 each) per quantizer, 5 quantizers."""
    def block(nbytes: int) -> int:
        return round_up(max(nbytes, 1), MIN_BLOCK)

    if recipe == "delayed":
        return block(12) + block(8) + block(12 * history) + block(8 * history)
    if recipe == "tensorwise":
        return 10 * block(4)
    return 0


def supported(recipe: str, compute_capability: str) -> bool:
    """TE ``quantization.py``: FP8 from compute capability 8.9 (``_compute_fp8_support``), ``mxfp8`` on 10.x and
    11.x (``_compute_mxfp8_support``: not on 12.0+), ``blockwise`` from 9.0 (``_compute_fp8_block_scaling_support``)."""
    try:
        cc = tuple(int(x) for x in str(compute_capability).split(".")[:2])
    except ValueError:
        return True
    if recipe == "mxfp8":
        return (10, 0) <= cc < (12, 0)
    if recipe == "blockwise":
        return cc >= (9, 0)
    return cc >= (8, 9)
