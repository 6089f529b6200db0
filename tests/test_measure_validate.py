"""measure (without a GPU: the error path, the record format, a fake-backend run) and validate."""

import json

import pytest

from conftest import requires_torch
from fixtures import TINY_LLAMA
from vramscope.cli import main
from vramscope.errors import VramscopeError
from vramscope.sources import resolve
from vramscope.workload import make_workload


@requires_torch
def test_measure_without_cuda_is_one_clear_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert main(["measure", "qwen2.5-0.5b"]) == 2
    err = capsys.readouterr().err
    assert "CUDA" in err and len(err.strip().splitlines()) == 1


class FakeBackend:
    """A CPU 'device' whose counters come from the live-bytes tracker (bookkeeping test)."""

    name = "fake"

    def __init__(self):
        from vramscope.trace.tracker import make_tracker

        self.tracker = make_tracker()
        self.peak = 0
        self.tracker.__enter__()

    def check(self):
        pass

    def device(self):
        import torch

        return torch.device("cpu")

    def reset_peak(self):
        self.peak = self.tracker.live

    def max_allocated(self):
        return max(self.peak, self.tracker.log.peak_bytes if self.peak == 0 else self._since())

    def _since(self):
        # the tracker's per-phase peak of the phase that is ending
        return max(self.peak, self.tracker.live, self.tracker._phase_peak.bytes)

    def max_reserved(self):
        return self.max_allocated() + 2 * 2**20

    def nvml_used(self):
        return self.max_allocated() + 500 * 2**20

    def gpu_name(self):
        return "Fake GPU"

    def total_memory(self):
        return 24 * 2**30


@requires_torch
@pytest.mark.trace
def test_measure_record_with_fake_backend(tmp_path):
    from vramscope.trace.measure import append_record, measure_record

    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    model = resolve(str(tmp_path))
    backend = FakeBackend()
    try:
        rec = measure_record(model, make_workload(task="finetune", seq=32), backend)
    finally:
        backend.tracker.__exit__(None, None, None)
    assert rec["schema"] == "vramscope.record/1" and rec["measured"] == "max_memory_allocated"
    assert set(rec["phases"]) >= {"load", "forward", "backward", "optimizer_step"}
    assert rec["value_bytes"] == max(p["max_memory_allocated"] for p in rec["phases"].values())
    assert rec["peak_phase"] in rec["phases"]
    assert rec["max_memory_reserved"] >= rec["value_bytes"]
    assert rec["nvml_used"] > rec["value_bytes"]
    assert rec["trainable_params"] == model.params
    assert rec["estimates"]["analytic"]["total_bytes"] > 0
    out = tmp_path / "records.jsonl"
    append_record(str(out), rec)
    append_record(str(out), rec)
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["id"] == rec["id"]


def test_validate_records(tmp_path, capsys):
    from vramscope.validate import read_records, summary, validate

    recs = [
        {"id": "a", "kind": "inference", "model": "llama-3-8b", "measured": "nvml_used",
         "value_bytes": 17 * 2**30, "workload": {"task": "inference", "seq": 4096}},
        {"id": "b", "kind": "training", "model": "llama-3-8b", "measured": "max_memory_allocated",
         "value_bytes": 20 * 2**30, "workload": {"task": "finetune", "method": "lora", "seq": 2048,
                                                    "grad_checkpointing": False}},
        {"id": "c", "kind": "engine-log", "model": "llama-3-8b", "measured": "engine_log", "value_bytes": 1,
         "components_measured": {"weights": 16_060_522_496}, "workload": {"seq": 8192}},
        {"id": "d", "kind": "training", "model": "no-such-model", "measured": "nvml_used", "value_bytes": 1},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n# a comment\n")
    rows = validate(read_records(path))
    by = {r.id: r for r in rows}
    assert by["c"].component == "weights" and by["c"].analytic_bytes == 16_060_522_496
    assert by["d"].skipped
    import vramscope

    e = vramscope.estimate("llama-3-8b", task="finetune", method="lora", seq=2048, grad_checkpointing=False)
    # each record against the number it states: allocated for max_memory_allocated, device for NVML
    assert by["b"].metric == "allocated" and by["b"].analytic_bytes == e.memory.allocated
    assert by["b"].analytic_range == e.memory.allocated_range
    assert by["a"].metric == "device"
    assert by["a"].analytic_bytes == vramscope.estimate("llama-3-8b", task="inference", seq=4096).memory.device
    s = summary(rows)
    assert s["all"]["records"] == 3 and s["engine-log"]["analytic"]["median_abs_error"] == 0
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "skipped" in out


def test_validate_skip_reasons_in_the_readers_language(tmp_path, capsys):
    """Why a record is not compared reads in the user's language (a record's own skip and a catalog miss alike);
    the JSON's ``skipped`` stays the English reason."""
    recs = [
        {"id": "s1", "kind": "training", "model": "llama-3-8b", "measured": "max_memory_allocated", "value_bytes": 1,
         "workload": {"task": "finetune", "method": "lora", "grad_checkpointing": False}},
        {"id": "s2", "kind": "training", "model": "no-such-model", "measured": "nvml_used", "value_bytes": 1},
        {"id": "s3", "kind": "training", "model": "llama-3-8b", "measured": "nvml_used", "value_bytes": 1,
         "workload": {"task": "finetune", "seq": 512, "mystery_key": 1}},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    assert main(["validate", str(path), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "来源未说明序列长度" in out and "未知的 workload 键：mystery_key" in out
    assert "does not state" not in out and "unknown workload keys" not in out
    assert "not in the catalog" not in out  # the catalog miss is the Chinese error too
    assert main(["validate", str(path), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["s1"]["skipped"] == "the source does not state the sequence length"
    assert rows["s3"]["skipped"] == "unknown workload keys: mystery_key"


@pytest.mark.parametrize("text, match", [
    ("{nope", "not JSON"),
    ('{"id": "x"}', "missing 'model'"),
])
def test_validate_bad_records(tmp_path, text, match):
    from vramscope.validate import read_records

    p = tmp_path / "bad.jsonl"
    p.write_text(text + "\n")
    with pytest.raises(VramscopeError, match=match):
        read_records(p)


def test_shipped_records_parse():
    from pathlib import Path

    from vramscope.validate import read_records

    root = Path(__file__).resolve().parent.parent / "validation"
    files = sorted(root.glob("*.jsonl"))
    assert files
    for f in files:
        recs = read_records(f)
        assert recs and all(r.get("source") for r in recs)
