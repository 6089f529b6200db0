"""Context parallelism (torch 2.13's ring attention as torchtitan 0.3.0 applies it) under FSDP2, traced per rank.

The fake trace runs torch's CP code (trace/context.py): DTensor's SDPA handlers, ``_templated_ring_attention``
and its backward, the rotaters, the head-tail load balancer. It is proven against real gloo ranks on real CPU
tensors running the same code; there, the one piece a CPU lacks, the CUDA flash-attention kernel the ring
handler calls per block, is given CPU kernels (torch's own CPU flash attention, with grouped key/value heads
repeated as the CUDA kernel reads them) registered for the CUDA op's name in those processes only.
"""

import json

import pytest

from conftest import requires_torch
import gloo
from fixtures import TINY_LLAMA
from vramscope.errors import VramscopeError
from vramscope.sources import resolve
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

BASE = dict(task="pretrain", seq=64, batch=2, parallelism="fsdp", precision="mixed", framework="torchtitan")


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    return resolve(str(tmp_path))


def _cpu_flash_kernels():
    """``aten::_scaled_dot_product_flash_attention`` (+ backward) on CPU tensors: the outputs the CUDA kernel
    returns (output, fp32 logsumexp, no cumulative lengths, 16 + 8 bytes of RNG state, an empty debug mask),
    computed by ``_scaled_dot_product_flash_attention_for_cpu``. Kernel-internal tensors are below the tracker's
    dispatch mode on both sides."""
    import torch

    lib = torch.library.Library("aten", "IMPL")

    def rep(q, t):
        n = q.size(1) // t.size(1)
        return t.repeat_interleave(n, dim=1) if n > 1 else t

    def fwd(q, k, v, dropout_p=0.0, is_causal=False, return_debug_mask=False, *, scale=None):
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, rep(q, k), rep(q, v), dropout_p,
                                                                              is_causal, scale=scale)
        seed = torch.empty(2, dtype=torch.uint64)
        return (out, lse, None, None, q.size(2), k.size(2), seed, torch.empty((), dtype=torch.uint64),
                torch.empty(0, dtype=q.dtype))

    def bwd(grad_out, q, k, v, out, lse, cum_q, cum_k, max_q, max_k, dropout_p, is_causal, seed, offset, *,
            scale=None):
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad_out, q, rep(q, k), rep(q, v), out, lse, dropout_p, is_causal, scale=scale)
        n = q.size(1) // k.size(1)
        if n > 1:
            b, _, s, d = gk.shape
            gk, gv = (g.view(b, k.size(1), n, s, d).sum(2) for g in (gk, gv))
        return gq, gk, gv

    lib.impl("_scaled_dot_product_flash_attention", fwd, "CPU")
    lib.impl("_scaled_dot_product_flash_attention_backward", bwd, "CPU")
    return lib


def _muted(fn, trackers):
    """FSDP2's eager collectives with the tracker muted inside: gloo stages a flat copy of a reduce-scatter's
    input and of an all-gather's output within the call (freed before it returns; NCCL writes in place). The
    collectives' inputs and outputs are allocated by FSDP2 outside the call and stay counted."""
    def call(*a, **k):
        for t in trackers:
            t.muted += 1
        try:
            return fn(*a, **k)
        finally:
            for t in trackers:
                t.muted -= 1
    return call


def _cp_rank_setup():
    """Each real rank: CPU kernels for the flash op the ring handlers catch, and FSDP2's gloo collectives muted
    (:func:`_muted`); returns the tracker hook and the kernels' library, kept alive for the step."""
    import torch.distributed as dist

    lib = _cpu_flash_kernels()
    trackers = []
    for name in ("all_gather_single", "reduce_scatter_single"):
        setattr(dist, name, _muted(getattr(dist, name), trackers))
    return trackers.append, lib


def test_cp_fake_process_group_equals_real_gloo_ranks(tiny, tmp_path):
    """cp 2 (FSDP2 over the same 2 ranks) on real gloo ranks: the ring's all-gathered keys/values, the fp32
    merger and accumulators and the dK/dV all-to-all are real tensors there; rank 0 of the fake group on fake
    tensors counts the same bytes at every phase of the steady step."""
    from vramscope.trace.estimator import run_trace

    kw = {**BASE, "sp": 2}
    real = gloo.rank0(2, str(tiny.origin), kw, tmp_path, setup=_cp_rank_setup)
    log, _, trainable = run_trace(tiny, make_workload(num_gpus=2, **kw), fake=True)
    assert trainable == real["trainable"]
    assert log.phases.keys() == real["phases"].keys()
    for name, peak in log.phases.items():
        if name.endswith("#2"):
            assert abs(peak.bytes - real["phases"][name]) <= 4 * 512, (name, peak.bytes, real["phases"][name])


def test_cp_trace_runs_torch_ring_attention(tiny, monkeypatch):
    """The trace goes through torch's ring forward and backward with the all-gather rotater (torch's default,
    torchtitan 0.3.0's), not around them; the CP switches are restored afterwards."""
    import torch.nn.functional as F
    from torch.distributed.tensor.experimental._context_parallel import _attention as A

    from vramscope.trace.estimator import trace_estimate

    calls: dict = {}

    def count(name, fn):
        def inner(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a, **k)
        return inner

    for name in ("_templated_ring_attention", "_templated_ring_attention_backward"):
        monkeypatch.setattr(A, name, count(name, getattr(A, name)))
    monkeypatch.setattr(A._AllGatherRotater, "exchange_buffers",
                        count("allgather", A._AllGatherRotater.exchange_buffers))
    sdpa, balance = F.scaled_dot_product_attention, A._cp_options.enable_load_balance
    est = trace_estimate(tiny, make_workload(num_gpus=4, sp=2, **BASE))
    # 2 layers × 2 steps; the backward's dK/dV rotation is the all-to-all one whatever the method
    assert calls["_templated_ring_attention"] == 4 and calls["_templated_ring_attention_backward"] == 4
    assert calls["allgather"] >= 4
    assert F.scaled_dot_product_attention is sdpa and A._cp_options.enable_load_balance == balance
    assert est.engine["parallel"]["sp"] == 2 and est.engine["parallel"]["shard_group"] == 4


@pytest.mark.parametrize("kw,field", [
    (dict(sp=2, sp_mode="ulysses"), "sp_mode"),
    (dict(sp=4, seq=60), "seq"),
])
def test_cp_trace_refusals(tiny, kw, field):
    from vramscope.trace.estimator import trace_estimate

    with pytest.raises(VramscopeError) as e:
        trace_estimate(tiny, make_workload(num_gpus=4, **{**BASE, **kw}))
    assert e.value.params["field"] == field
