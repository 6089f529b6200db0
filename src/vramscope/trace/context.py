"""Context parallelism on the real transformers model, for the trace: torch 2.13's ring attention as torchtitan
0.3.0 applies it.

torchtitan (``models/llama3/parallelize.py`` → ``distributed/context_parallel/api.py``):

* ``apply_cp_to_forward``: for SDPA attention it calls torch's ``_enable_context_parallel_dispatcher()`` (DTensor's
  custom handlers for the SDPA ops, ``torch/distributed/tensor/experimental/_context_parallel/_attention.py``
  ``custom_ops``) and wraps each attention call so q, k and v enter as ``DTensor.from_local(..., [Shard(seq)])``
  on the ``cp`` mesh, the output leaving as its local tensor. Here the wrapper sits on
  ``torch.nn.functional.scaled_dot_product_attention``, which transformers' ``sdpa_attention_forward`` calls with
  (batch, heads, seq, head_dim) tensors (torch's own ``_ContextParallel.sdpa_input_fn`` with ``seq_dim=2``);
* ``prepare_context_parallel_input`` → ``cp_shard``: inputs, labels and positions are reordered by torch's
  ``_HeadTailLoadBalancer`` (``context_parallel_load_balancer = "headtail"``, the default) and sharded along the
  sequence by ``_context_parallel_shard`` (which turns ``_cp_options.enable_load_balance`` on);
* the rotate method is torch's default, ``_cp_options.rotate_method = ALL_GATHER`` (torchtitan 0.3.0 never calls
  ``set_rotate_method``); ``alltoall`` is torch's other one.

On a GPU, SDPA on DTensors decomposes (``aten/src/ATen/native/transformers/attention.cpp``
``scaled_dot_product_attention``) into ``_scaled_dot_product_flash_attention`` (bf16, no mask, causal: the flash
backend), which is the op DTensor hands to the ring handler. On a CPU tensor the same composite picks
``_scaled_dot_product_flash_attention_for_cpu``, which has no CP handler, and fake CUDA tensors abort a CPU-only
torch at the first autograd op (a CUDA device guard). So the wrapper calls what the CUDA composite calls on its
flash path, ``aten._scaled_dot_product_flash_attention(q, k, v, dropout_p, is_causal, scale=scale)[0]`` (head
dimensions that are multiples of 8 need no padding there), on fake CPU tensors; from there on everything is
torch's CP code: the sharding rule, ``_templated_ring_attention`` (rotater, the fp32 ``_SDPAMerger``) and its
backward (fp32 dq/dk/dv accumulators, the all-to-all dK/dV rotation), the flash op's meta kernel giving each
block's output and logsumexp.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ..errors import Text, VramscopeError


def cp_device_mesh(world: int, cp: int, tp: int) -> Any:
    """torchtitan's mesh for ``dp_shard × cp × tp``: FSDP2 on the flattened ``dp_shard_cp`` dimension
    (``parallel_dims.py``), ring attention on ``cp``, tensor parallelism on ``tp``; the three sub-meshes by
    name (torch deprecates slicing a flattened dimension out of the root mesh)."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world // (cp * tp), cp, tp), mesh_dim_names=("dp", "cp", "tp"))
    return {"cp": mesh["cp"], "tp": mesh["tp"], "dp_cp": mesh["dp", "cp"]._flatten("dp_cp")}


def _rotate_method(name: str) -> Any:
    from torch.distributed.tensor.experimental._context_parallel._attention import _RotateMethod

    return {"allgather": _RotateMethod.ALL_GATHER, "alltoall": _RotateMethod.ALL_TO_ALL}[name]


@contextmanager
def context_parallel(cp_mesh: Any, rotate: str = "allgather") -> Iterator[Callable[[Any], tuple]]:
    """torch's CP dispatcher and the SDPA wrapper (module docstring) for the duration of a run; yields the input
    sharding: ``ids`` (batch, seq) → (local ids, local positions), both reordered by the head-tail balancer."""
    import torch
    import torch.nn.functional as F
    from torch.distributed.tensor import DTensor, Shard
    from torch.distributed.tensor.experimental._attention import (_context_parallel_shard,
                                                                  _disable_context_parallel_dispatcher,
                                                                  _enable_context_parallel_dispatcher,
                                                                  _HeadTailLoadBalancer)
    from torch.distributed.tensor.experimental._context_parallel import _attention as cp_attention

    options = cp_attention._cp_options
    saved = (options.enable_load_balance, options.rotate_method, cp_attention._dispatch_mode)
    original = F.scaled_dot_product_attention
    placement = [Shard(2)]

    def sdpa(query: Any, key: Any, value: Any, attn_mask: Any = None, dropout_p: float = 0.0,
             is_causal: bool = False, scale: Any = None, enable_gqa: bool = False) -> Any:
        if attn_mask is not None or query.size(-1) % 8:
            raise VramscopeError("trace_unsupported", reason=Text("r_trace_cp_mask"))
        q, k, v = (DTensor.from_local(t, cp_mesh, placement, run_check=False) for t in (query, key, value))
        out = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, dropout_p, is_causal, scale=scale)[0]
        return out.to_local()

    def shard(ids: Any) -> tuple:
        seq = ids.size(1)
        positions = torch.arange(seq, device=ids.device)[None].expand(ids.size(0), seq)
        balancer = _HeadTailLoadBalancer(seq, cp_mesh.size(0), cp_mesh.device_type)
        local_ids, local_pos = _context_parallel_shard(mesh=cp_mesh, buffers=(ids, positions), seq_dims=(1, 1),
                                                       load_balancer=balancer)
        return local_ids, local_pos

    from transformers import masking_utils

    packed = masking_utils.find_packed_sequence_indices
    options.rotate_method = _rotate_method(rotate)
    _enable_context_parallel_dispatcher()
    F.scaled_dot_product_attention = sdpa
    # the balanced positions are not monotonic, so transformers (without a cache: under checkpointing) would take
    # them for packed sequences and build a mask; torchtitan's models attend with is_causal, positions only rotate
    masking_utils.find_packed_sequence_indices = lambda position_ids: None
    try:
        yield shard
    finally:
        masking_utils.find_packed_sequence_indices = packed
        F.scaled_dot_product_attention = original
        _disable_context_parallel_dispatcher()
        options.enable_load_balance, options.rotate_method, cp_attention._dispatch_mode = saved
