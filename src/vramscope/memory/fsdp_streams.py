"""FSDP2's side-stream buffers per rank: the all-gather outputs and reduce-scatter outputs of a training step, in
the order and on the streams torch 2.13 allocates and frees them, replayed through the caching-allocator model
(``memory/allocator.py``) to give the segments those streams keep.

Read from torch 2.13.0 ``torch/distributed/fsdp/_fully_shard``:

* ``_fsdp_collectives.py foreach_all_gather``: under ``all_gather_copy_in_stream`` the flat output is allocated
  (``all_gather_comm.allocate``: ``world_size`` x the sum of the group's padded shard numels, in the all-gather
  dtype) and the rank's input is a ``narrow`` of it (``all_gather_copy_in``), so one block a group, on the
  copy-in stream. Shards are padded on dim 0 to a multiple of the world size (``_get_dim0_padded_size``).
* ``_fsdp_param_group.py wait_for_unshard``: in forward the previous group's result is dropped from
  ``comm_ctx.all_gather_state``, but the walrus' local ``prev_all_gather_state`` keeps it alive until the method
  returns, i.e. after this group's copy-out; this group's result then becomes the new ``all_gather_state``. In
  backward the result is dropped right after its copy-out (``self._all_gather_result = None``).
* ``_fsdp_state.py`` ``_root_post_forward``: the last forward state is freed when the root's forward ends.
* ``_backward_prefetch``: a group's pre-backward prefetches the group that ran before it in forward, so the next
  group's all-gather output is allocated before the current group's reduce-scatter.
* ``foreach_reduce``: the reduce-scatter input is allocated on the current (default) stream; the output
  (``reduce_scatter_output_numel`` = padded numel / world size, in the reduce dtype) under
  ``reduce_scatter_stream``; the sharded gradients are views of it, so it lives until ``zero_grad`` drops the
  group's last gradient (groups in the parameters' order).

Groups as accelerate's ``fsdp2_prepare_model`` builds them (``trace/estimator.py`` ``shard_like_accelerate``):
untied, the embedding, each decoder layer, [final norm, head] (``reshard_after_forward=False``), the root holding
no parameter; tied, each decoder layer and the root (the shared embedding, the final norm). Checked event for event
against FSDP2 itself on torch's fake process group (``tests/test_fsdp_streams.py``: the trace's events on the two
side streams).
"""

from __future__ import annotations

from typing import Any, Optional

from .allocator import DEFAULT_CONFIG, AllocatorConfig, CachingAllocator, stream_segments

#: stream numbers as the trace numbers them (in the order they are first current): the copy-in stream is made
#: and entered first (``FSDPCommContext.lazy_init``), then the reduce-scatter stream
COPY_IN, REDUCE_SCATTER = 1, 2


def covered(spec: Any, w: Any) -> bool:
    """Whether the side-stream events are written for this workload: FSDP2 (``--parallelism fsdp``, full
    sharding) full training, tied or untied embeddings, no mixed-precision policy, no offload, no gradient
    accumulation, no float8 all-gather, world size above 1."""
    return (w.parallelism == "fsdp" and w.fsdp_version == 2 and w.fsdp_sharding == "full" and w.num_gpus > 1
            and w.task == "finetune" and w.method == "full" and w.precision != "mixed" and not w.grad_checkpointing
            and w.offload in (None, "", "none") and w.grad_accum == 1 and not w.fsdp_float8_all_gather)


def _padded(shape: tuple[int, ...], world: int) -> int:
    """``_get_dim0_padded_size`` numel: dim 0 rounded up to a multiple of ``world``."""
    rest = 1
    for d in shape[1:]:
        rest *= d
    return -(-shape[0] // world) * world * rest


def groups(spec: Any, world: int) -> list[tuple[str, int]]:
    """FSDP2's parameter groups in forward order with their padded unsharded numel (the all-gather output is
    this many elements, the reduce-scatter output this over ``world``): untied, the embedding, each layer, [final
    norm, head]; tied, the root (the shared embedding and the final norm), then each layer."""
    return [(name, n) for name, n, _ in _groups(spec, world)]


def _groups(spec: Any, world: int) -> list[tuple[str, int, int]]:
    """(name, padded numel, index of the group's last parameter in ``model.parameters()``), forward order."""
    from ..model.tensors import tensors

    layers = [[0, -1] for _ in range(spec.num_layers)]
    emb, tail = [0, -1], [0, -1]
    for i, t in enumerate(tensors(spec)):
        n = _padded(t.shape, world)
        g = layers[t.layer] if t.layer is not None else emb if t.role == "embedding" else tail
        g[0] += n
        g[1] = i
    body = [(f"layer{i}", n, last) for i, (n, last) in enumerate(layers)]
    if spec.tie_embeddings:
        return [("root", emb[0] + tail[0], max(emb[1], tail[1]))] + body
    return [("embed", emb[0], emb[1])] + body + [("tail", tail[0], tail[1])]


def events(spec: Any, world: int, a: int, steps: int = 2, grad_bytes: Optional[int] = None) -> list[tuple]:
    """The side streams' events of ``steps`` training steps: ``(stream, +bytes | -bytes, what)`` in order; ``a``
    the all-gather dtype's bytes, ``grad_bytes`` the reduce dtype's (default ``a``).

    Backward runs the groups' pre-backward hooks in reverse forward order (``post_forward_order``), each one
    prefetching the group before it; the group kept unsharded after forward (the untied [norm, head], with
    ``reshard_after_forward=False``, or the tied root, which FSDP2 never reshards after forward) gathers nothing.
    Post-backward (the reduce-scatter) follows each pre-backward, except the tied root's, which runs last
    (``_root_post_backward_final_callback``)."""
    g = _groups(spec, world)
    size = {name: n for name, n, _ in g}
    gb = a if grad_bytes is None else grad_bytes
    tied = spec.tie_embeddings
    resident = "root" if tied else "tail"
    out: list[tuple] = []

    def rs(name: str) -> None:
        out.append((REDUCE_SCATTER, size[name] // world * gb, f"reduce-scatter {name}"))

    for _ in range(steps):
        state: Optional[str] = None
        for name, n, _last in g:  # forward: pre_forward gathers; the previous result freed after the copy-out
            out.append((COPY_IN, n * a, f"all-gather {name}"))
            if state is not None:
                out.append((COPY_IN, -size[state] * a, f"free all-gather {state}"))
            state = name
        out.append((COPY_IN, -size[state] * a, f"free all-gather {state} (root post-forward)"))
        order = [name for name, _, _ in g][::-1]
        if tied:  # the root's pre-backward comes first (its output is the logits), its reduce-scatter last
            order = [resident] + order[:-1]
        for i, name in enumerate(order):
            if name != resident:
                out.append((COPY_IN, -size[name] * a, f"free all-gather {name} (copied out)"))
            if i + 1 < len(order) and order[i + 1] != resident:
                out.append((COPY_IN, size[order[i + 1]] * a, f"all-gather {order[i + 1]} (prefetch)"))
            if not (tied and name == resident):
                rs(name)
        if tied:
            rs(resident)
        for name, _, _ in sorted(g, key=lambda x: x[2]):  # zero_grad: a group's block goes with its last .grad
            out.append((REDUCE_SCATTER, -(size[name] // world) * gb, f"free gradient shard {name}"))
    return out


def side_reserved(spec: Any, world: int, a: int, steps: int = 2,
                  config: AllocatorConfig = DEFAULT_CONFIG) -> dict[int, int]:
    """Peak bytes of segments each side stream holds (stream -> bytes), from replaying its events alone: a
    stream's blocks return only to its own pool, so without an OOM flush the side streams' segments do not
    depend on the default stream's events."""
    alloc = CachingAllocator(config=config)
    live: dict[str, list] = {}
    peak: dict[int, int] = {COPY_IN: 0, REDUCE_SCATTER: 0}
    for stream, n, what in events(spec, world, a, steps):
        key = what.split(" (")[0].replace("free ", "").replace("gradient shard", "reduce-scatter")
        if n > 0:
            live.setdefault(key, []).append(alloc.malloc(n, stream))
        else:
            alloc.free(live[key].pop(0))
        held = stream_segments(alloc)[0]
        for s in peak:
            peak[s] = max(peak[s], held.get(s, 0))
    return peak
