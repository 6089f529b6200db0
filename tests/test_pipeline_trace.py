"""torch 2.13's pipeline schedules run per stage rank on the fake process group (bench/pipeline_trace.py): the
receive buffers each stage keeps, one per micro-batch, against ``memory/pipeline.py``'s ``recv_buffers``."""

import sys
from pathlib import Path

import pytest

from conftest import requires_torch
from vramscope.memory.pipeline import recv_buffers

pytestmark = [requires_torch, pytest.mark.trace]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


@pytest.mark.parametrize("cls_name,schedule,pp,m,rank", [
    ("Schedule1F1B", "1f1b", 4, 8, 0), ("Schedule1F1B", "1f1b", 4, 8, 1), ("Schedule1F1B", "1f1b", 4, 8, 3),
    ("ScheduleGPipe", "gpipe", 4, 4, 2), ("ScheduleInterleaved1F1B", "interleaved", 4, 8, 0),
    ("ScheduleInterleaved1F1B", "interleaved", 4, 8, 1),
])
def test_recv_buffers_match_torch_schedules(cls_name, schedule, pp, m, rank):
    """What a rank keeps after a step beyond its inputs and weight gradients (units of one micro-batch's
    activations; 512-byte rounding of the small tensors aside)."""
    from pipeline_trace import trace_schedule

    r = trace_schedule(cls_name, pp, m, rank)
    assert abs(r["kept"] - recv_buffers(rank, pp, m, schedule, 1)) < 0.2, r


def test_pipeline_estimate_counts_recv_buffers():
    """The busiest stage's optimizer step (no saved activations left) holds exactly its receive buffers: a
    middle stage of 1F1B 2·m micro-batch boundaries (activations in, gradients in), the first and last m."""
    from vramscope.api import estimate

    e = estimate("llama-3-8b", task="pretrain", num_gpus=4, pp=4, grad_accum=8, seq=4096, batch=1,
                 precision="pure")
    boundary = 4096 * 4096 * 2
    assert recv_buffers(1, 4, 8, "1f1b", boundary) == 16 * boundary
    assert recv_buffers(0, 4, 8, "1f1b", boundary) == recv_buffers(3, 4, 8, "1f1b", boundary) == 8 * boundary
    rows = e.engine["pipeline"]["ranks"]
    busiest = max(rows, key=lambda r: r["peak_bytes"])["stage"]
    assert e.phases["optimizer_step"].get("activations", 0) == recv_buffers(busiest, 4, 8, "1f1b", boundary)
    assert "activations" not in e.phases["load"] or e.phases["load"]["activations"] == 0
