"""Multi-GPU sharding, per rank (first version: tensor parallel for inference, FSDP full shard for training).

Tensor parallel (Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053; vLLM ``parallel_state``): attention heads,
MLP and expert intermediate sizes and the vocabulary (embedding and output head) split across ``n`` ranks;
norms are replicated. KV heads split too, and are replicated when there are fewer KV heads than ranks (vLLM
``get_num_kv_heads``: ``max(1, total_kv_heads // tp_size)``). vLLM requires the number of attention heads to
be divisible by the tensor-parallel size. The per-rank model is therefore a spec with those sizes divided,
and every per-rank component (weights, KV cache, activations) comes from it.

FSDP full shard / ZeRO-3 (Rajbhandari et al. 2020, arXiv 1910.02054; torch ``FSDP2``): parameters, gradients
and optimizer states are split evenly across ``n`` ranks; during forward and backward each rank all-gathers one
layer's parameters and prefetches the next (two unsharded layers alive), and backward holds one layer's
unsharded gradients before the reduce-scatter. Activations are not sharded: each rank runs its own micro-batch.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from ..errors import VramscopeError
from ..model.spec import ModelSpec
from ..model.tensors import tensors


def tp_shard_spec(spec: ModelSpec, n: int) -> ModelSpec:
    """The per-rank slice of ``spec`` under ``n``-way tensor parallelism."""
    if n == 1:
        return spec
    if spec.num_heads % n:
        raise VramscopeError("conflict", field="--gpus",
                             reason=f"tensor parallelism needs the {spec.num_heads} attention heads to divide "
                                    f"evenly by {n} GPUs")
    moe = spec.moe
    if moe is not None:
        moe = replace(moe, expert_intermediate_size=-(-moe.expert_intermediate_size // n),
                      shared_intermediate_size=-(-moe.shared_intermediate_size // n))
    mla = spec.mla
    return replace(spec, num_heads=spec.num_heads // n, num_kv_heads=max(1, spec.num_kv_heads // n),
                   intermediate_size=-(-spec.intermediate_size // n), vocab_size=-(-spec.vocab_size // n),
                   moe=moe, mla=mla)


@lru_cache(maxsize=64)
def largest_layer_params(spec: ModelSpec) -> int:
    sizes: dict[int, int] = {}
    for t in tensors(spec):
        if t.layer is not None:
            sizes[t.layer] = sizes.get(t.layer, 0) + t.numel
    return max(sizes.values(), default=0)


def fsdp_gather_bytes(spec: ModelSpec, param_bytes: float) -> int:
    """Unsharded parameters in flight: the current and the prefetched layer."""
    return int(2 * largest_layer_params(spec) * param_bytes)
