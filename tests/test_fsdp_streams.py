"""FSDP2's side streams per rank (``memory/fsdp_streams.py``) against FSDP2 itself: torch 2.13's ``fully_shard`` on
torch's fake process group (``vramscope trace --gpus N``, the tracker numbering the CPU streams FSDP2 enters), two
training steps; every event the trace records on the all-gather copy-in and reduce-scatter streams, in order and in
512-byte units (the tracker's), is the written stream's, and replaying the written stream alone gives the
side-stream segments the replay of the whole trace holds at its reserved peak."""

import pytest

from conftest import requires_torch
from test_trace_matrix import two_layers
from vramscope.memory import fsdp_streams
from vramscope.memory.allocator import replay, stream_segments
from vramscope.memory.overhead import CUBLAS_WORKSPACE
from vramscope.workload import make_workload

CASES = [("llama-3-8b", 256, 2, 2), ("llama-3-8b", 256, 4, 2), ("mistral-7b-v0.1", 128, 8, 3),
         ("llama-2-7b", 128, 3, 2), ("qwen2.5-0.5b", 256, 2, 2), ("qwen2.5-0.5b", 128, 4, 3)]  # tied: the root


def _trace(name, seq, world, layers):
    from vramscope.trace.estimator import quiet_libraries, run_trace

    model = two_layers(name)
    if layers != 2:
        import copy

        from vramscope.sources.base import ResolvedModel
        from vramscope.sources.hf_config import spec_from_config

        cfg = copy.deepcopy(model.hf_config)
        cfg["num_hidden_layers"] = layers
        spec = spec_from_config(cfg, name=name)
        model = ResolvedModel(spec=spec, kind="catalog", origin=name, params=spec.params,
                              active_params=spec.active_params, hf_config=cfg)
    w = make_workload(task="finetune", seq=seq, num_gpus=world, parallelism="fsdp")
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    return model, w, log


def _side(log):
    out = []
    for ev in log.events[log.marks["ready"] + 1:log.marks["end"] + 1]:
        k = abs(ev) - 1
        if log.streams[k]:
            out.append((log.streams[k], log.sizes[k] if ev > 0 else -log.sizes[k]))
    return out


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("name, seq, world, layers", CASES,
                         ids=[f"{n}-{w}ranks-{la}layers" for n, _, w, la in CASES])
def test_side_streams_are_fsdp2s(name, seq, world, layers):
    model, w, log = _trace(name, seq, world, layers)
    assert fsdp_streams.covered(model.spec, w)
    # the tracker logs sizes rounded up to 512 bytes (the allocator gives the same block)
    ours = [(s, (1 if n > 0 else -1) * -(-abs(n) // 512) * 512)
            for s, n, _ in fsdp_streams.events(model.spec, world, 2)]
    theirs = _side(log)
    groups = layers + (1 if model.spec.tie_embeddings else 2)  # the layers, the embedding, [norm, head] / root
    # a step: 2G in forward (G gathers, G - 1 frees, the root's), 3G - 2 in backward, G gradient shards freed
    assert len(theirs) == 2 * (6 * groups - 2)
    assert ours == theirs
    # the side streams' segments: the written stream replayed alone, against the whole trace's replay
    side_peak = {1: 0, 2: 0}

    def on_event(alloc, k, ev):
        if log.streams[k]:
            held = stream_segments(alloc)[0]
            for s in side_peak:
                side_peak[s] = max(side_peak[s], held.get(s, 0))

    replay(log.sizes, log.events, start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,), streams=log.streams,
           on_event=on_event)
    assert fsdp_streams.side_reserved(model.spec, world, 2) == side_peak


def test_covered_only_where_written():
    llama, qwen = two_layers("llama-3-8b"), two_layers("qwen2.5-0.5b")
    fsdp = make_workload(task="finetune", seq=256, num_gpus=2, parallelism="fsdp")
    assert fsdp_streams.covered(llama.spec, fsdp)
    assert fsdp_streams.covered(qwen.spec, fsdp)  # tied: the root group holds the embedding
    for kw in (dict(num_gpus=1), dict(method="lora"), dict(task="pretrain", precision="mixed"),
               dict(grad_checkpointing=True), dict(grad_accum=2), dict(parallelism="zero3")):
        w = make_workload(**{**dict(task="finetune", seq=256, num_gpus=2, parallelism="fsdp"), **kw})
        assert not fsdp_streams.covered(llama.spec, w), kw


def test_groups_pad_dim0_to_the_world_size():
    spec = two_layers("llama-3-8b").spec
    g = dict(fsdp_streams.groups(spec, 3))
    # 128256 rows over 3 ranks pad to 128256 (divisible); the 4096-wide norm pads to 4098 rows of 1
    assert g["embed"] == 128256 * 4096
    assert g["tail"] == 128256 * 4096 + 4098
    tied = [name for name, _ in fsdp_streams.groups(two_layers("qwen2.5-0.5b").spec, 2)]
    assert tied == ["root", "layer0", "layer1"]
