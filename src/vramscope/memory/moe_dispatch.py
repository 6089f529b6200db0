"""Megatron-LM's alltoall token dispatcher for MoE layers (``--moe-token-dispatcher-type alltoall``), per rank.

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


def dispatcher_saved(tokens: int, experts: int, k: int, capacity_factor: Optional[float], pad: bool) -> int:
    """Bytes the dispatcher's own permutation keeps for backward, per MoE layer (the indices; see the module)."""
    if pad and capacity_factor is not None:
        return 2 * 8 * experts * capacity(tokens, experts, k, capacity_factor)
    return 8 * tokens * experts + 8 * routed_rows(tokens, experts, k, capacity_factor, False)
