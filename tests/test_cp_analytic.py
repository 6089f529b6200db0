"""The analytic context-parallel model against the trace of torch's ring attention (trace/context.py).

A fast subset of bench/pretrain_matrix.py ``--cp``: 2-layer Llama-3-8B shapes at a short sequence (the fake
tensors' cost is the op count, not their size). Every phase within 3% of the trace, and the ring's own transients
(bytes above what is alive at the attention call's entry) against ``context_parallel_transient``.
"""

import sys
from pathlib import Path

import pytest

from conftest import requires_torch
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

BASE = dict(task="pretrain", precision="mixed", parallelism="fsdp", batch=1, framework="torchtitan")


def _tensors(ph):
    return sum(v for k, v in ph.items() if k != "allocator_cache")


def test_analytic_matches_cp_trace_per_phase():
    """Every phase within 3%, and what forward saves within 0.5%: without the ring's merged-output copy (one
    q-sized tensor per layer, saved by the output projection) it was 2.4% under at these shapes."""
    from accuracy_matrix import reduced

    from vramscope.api import estimate_resolved
    from vramscope.trace.estimator import trace_estimate

    model = reduced("llama-3-70b", 2)
    w = make_workload(**BASE, num_gpus=8, sp=4, seq=32768)
    tr, an = trace_estimate(model, w), estimate_resolved(model, w)
    for phase in ("load", "forward", "backward", "optimizer_step"):
        err = (_tensors(an.phases[phase]) - _tensors(tr.phases[phase])) / _tensors(tr.phases[phase])
        assert abs(err) < 0.03, (phase, err)
    saved_an, saved_tr = an.phases["forward"]["activations"], tr.phases["forward"]["activations"]
    assert abs(saved_an - saved_tr) / saved_tr < 0.005, (saved_an, saved_tr)
    assert tr.engine["parallel"]["sp"] == 4 and an.engine["parallel"]["sp"] == 4


@pytest.mark.parametrize("rotate,rank", [("allgather", 1), ("alltoall", 1), ("allgather", 0)])
def test_ring_transients_match_trace(rotate, rank):
    """The ring's transients per rotate method and rank: forward exact on ranks ≥ 1 (the peak ranks), below
    on rank 0 (half-block merges); backward within 3%."""
    from pretrain_matrix import cp_transients

    r = cp_transients("llama-3-8b", {**BASE, "num_gpus": 4, "sp": 4, "seq": 8192}, rotate, rank)
    tr, an = r["traced"], r["analytic"]
    if rank:
        assert abs(an["forward"] - tr["forward"]) <= 4096, (an, tr)
    else:
        assert tr["forward"] < an["forward"]
    assert abs(an["backward"] - tr["backward"]) / tr["backward"] < 0.03, (an, tr)
