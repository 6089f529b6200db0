"""Megatron-LM's token dispatchers for MoE layers (``--moe-token-dispatcher-type allgather | alltoall``), per rank.

Read in Megatron-LM core_v0.19.0 (``megatron/core/transformer/moe/token_dispatcher.py``
``MoEAlltoAllTokenDispatcher``, ``moe_utils.py`` ``permute``/``unpermute``/``sort_chunks_by_idxs``/``get_capacity``,
``experts.py`` ``TEGroupedMLP``), unfused (``moe_permute_fusion`` off). Per MoE layer, ``T`` tokens on the rank, ``E``
experts, top-``k`` routing:

* ``permute`` (dropless): ``routing_map.T.reshape(-1).argsort(...)[:num_out]`` gives the routed rows; the probs are
  gathered with that slice, so autograd keeps the whole ``E·T`` int64 argsort (a view's storage), and
  ``tokens.index_select(0, sorted_indices)`` keeps ``sorted_indices`` (``T·k`` int64, reused by ``unpermute``'s
  ``scatter_add_``). With ``drop_and_pad`` (``--moe-pad-expert-input-to-capacity``) every expert takes exactly
  ``capacity = ceil(T·k/E · capacity_factor)`` rows (``get_capacity``): ``sorted_indices`` and the probs' ``indices_1D``
  (``E·capacity`` int64 each);
* the all-to-alls, ``sort_chunks_by_idxs`` (split + cat) and ``unpermute`` without probs save nothing more: the probs
  are applied inside the experts (``TEGroupedMLP``: the activation times ``permuted_probs``);
* the experts keep what a routed row needs: the grouped fc1's input (``h``), its output (``2·I``, read by the fused
  weighted SwiGLU with the row's prob), the fc2 input (``I``) — the received rows, ``T·k`` on a balanced rank
  (dropless), ``E·capacity`` padded.

``MoEAllGatherTokenDispatcher`` (Megatron's default type): the routing map, probs and hidden states are all-gathered
over the TP × EP group (the hidden states into the global memory buffer, ``use_global_buffer=True``: one
``ep·T × h`` tensor reused by every layer, alive for the run), each rank permutes the rows of its local experts
(``permute`` without probs: only ``sorted_indices``, ``rows`` int64, is kept) and takes their probs with
``masked_select``, which keeps its mask (``local_map.T``, ``E/ep × ep·T`` bool: ``T·E`` bytes) and its input
(the local probs transposed: ``T·E`` probs).

What transformers' grouped-matmul experts keep besides (the expert output before the routing weight, ``a·h`` per
routed row) Megatron does not.
"""

from __future__ import annotations

import math
from typing import Optional


def capacity(tokens: int, experts: int, k: int, capacity_factor: float) -> int:
    """``get_capacity(num_tokens=T·k, num_experts=E, capacity_factor)``: rows per expert (core_v0.19.0)."""
    return math.ceil((tokens * k / experts) * capacity_factor)


def routed_rows(tokens: int, experts: int, k: int, capacity_factor: Optional[float], pad: bool) -> int:
    """Rows the rank's experts compute on a balanced routing: ``T·k`` dropless (a capacity of at least 1 drops
    nothing when balanced), ``E·capacity`` padded to capacity, at most ``E·capacity`` dropping."""
    if capacity_factor is None:
        return tokens * k
    c = capacity(tokens, experts, k, capacity_factor)
    return experts * c if pad else min(tokens * k, experts * c)


def dispatcher_saved(tokens: int, experts: int, k: int, capacity_factor: Optional[float], pad: bool,
                     dispatcher: str = "alltoall", probs_bytes: float = 2.0) -> int:
    """Bytes the dispatcher's own permutation keeps for backward, per MoE layer (the indices; see the module);
    ``probs_bytes``: the router's probs (the logits' dtype: bf16, or fp32 with ``moe_router_dtype``)."""
    if dispatcher == "allgather":
        # the local experts' rows of the gathered tokens (a balanced rank computes T·k), and masked_select's mask
        # and its input (the local probs transposed), both E/ep × ep·T
        return int(8 * routed_rows(tokens, experts, k, capacity_factor, pad) + tokens * experts * (1 + probs_bytes))
    if pad and capacity_factor is not None:
        return 2 * 8 * experts * capacity(tokens, experts, k, capacity_factor)
    return 8 * tokens * experts + 8 * routed_rows(tokens, experts, k, capacity_factor, False)


def gather_buffer(tokens: int, hidden: int, ep: int, tp: int, act_bytes: float) -> int:
    """The allgather dispatcher's global buffer: the hidden states of the TP × EP group's tokens (``tokens`` being
    the TP group's, which Megatron's sequence parallelism splits ``tp`` ways: ``ep·tokens`` gathered), in the compute
    dtype; none when the group is one rank (``token_dispatch`` gathers only for ``tp_size > 1 or ep_size > 1``)."""
    return int(ep * tokens * hidden * act_bytes) if ep * tp > 1 else 0
