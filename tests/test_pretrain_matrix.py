"""Issue #14's trace-vs-analytic matrix: the fast subset in CI, and the published full-depth matrix held to.

- The full-depth matrix (bench/pretrain_matrix.py --full, docs/accuracy.md) caches each trace's phase totals in
  bench/results/pretrain_full.json; the analytic side is recomputed here (no torch needed) against every cached
  row (dense and MoE), so a change to the analytic estimator that breaks a full-depth agreement fails CI without
  re-tracing 8B-405B models.
- A fast subset re-traces 2-layer variants (same layer shapes) of the matrix's float8 and autocast rows with
  torchao's real Float8Linear on fake FSDP2 ranks, and of the FSDP2 × tensor-parallel rows.
- torchtitan's per-block torch.compile traced whole (trace/compiled.py) on 2-layer Llama-3-8B: the analytic
  compiled-block model within 3%, and not eager mode's.
- The per-layer extrapolation some full-depth rows use: from 2 and 3 layers it gives a 4-layer trace byte for byte.
- torchao's float8 tensors are wrapper subclasses: the tracker counts their inner tensors, once.
"""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from conftest import requires_torch
from vramscope.sources import catalog, resolve
from vramscope.sources.base import ResolvedModel
from vramscope.sources.hf_config import spec_from_config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import pretrain_matrix  # noqa: E402

requires_torchao = pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="needs torchao")


#: full-depth matrix rows in bench/results/pretrain_full.json (traced at full depth, or extrapolated per layer from two
#: reduced-depth traces where marked ``extrapolated_from``; docs/accuracy.md says which)
PUBLISHED_ROWS = 50
#: rows docs/accuracy.md names as known gaps, with the bound it states (none now). Float8 rowwise + full
#: checkpointing with compiled blocks was 4.17% under in backward: the partitioned backward run op by op kept each
#: weight's fp32 copy and abs from the recomputed forward to its backward, which inductor never stores
#: (trace/compiled.py inline_input_casts); llama-3-70b with every 2nd layer checkpointed (4.6% under in forward)
#: was the fake trace's causal mask (build.unpacked_positions)
KNOWN_GAPS: dict = {}


def _cached():
    cache = json.loads(pretrain_matrix.CACHE.read_text())
    return [(name, kw, cache[pretrain_matrix.cache_key(name, kw)]) for name, kw in pretrain_matrix.full_matrix()
            if pretrain_matrix.cache_key(name, kw) in cache]


def test_full_matrix_covers_the_issue():
    rows = pretrain_matrix.full_matrix()
    assert len(rows) >= 40
    names = {n for n, _ in rows}
    assert {"llama-3-8b", "llama-3-70b", "llama-3.1-405b"} <= names
    kws = [kw for _, kw in rows]
    assert {kw.get("float8", "none") for kw in kws} >= {"none", "tensorwise", "rowwise", "rowwise_with_gw_hp"}
    assert any(kw.get("fsdp_float8_all_gather") for kw in kws)
    assert {kw.get("grad_checkpointing") for kw in kws} >= {None, "full", "op", "selective"}
    assert any(kw.get("checkpoint_every", 1) > 1 for kw in kws)
    assert {kw["framework"] for kw in kws} >= {"torchtitan", "hf", "pytorch"}
    assert {kw["parallelism"] for kw in kws} == {"fsdp", "none"}
    compiled = [(n, kw) for n, kw in rows if kw.get("compile")]  # torchtitan's per-block compile, traced whole
    assert {kw.get("grad_checkpointing") for _, kw in compiled} >= {None, "full", "op"}
    assert any(kw.get("checkpoint_every", 1) > 1 for _, kw in compiled)
    assert any(kw.get("float8", "none") != "none" for _, kw in compiled)
    assert "llama-3-70b" in {n for n, _ in compiled}


def test_published_full_depth_traces_still_agree():
    """Every cached full-depth row (MoE included): the analytic estimate of today within 3% of its trace on every
    phase, the known gaps within their stated bound."""
    rows = [(n, kw, rec) for n, kw, rec in _cached() if "error" not in rec]
    assert len(rows) >= PUBLISHED_ROWS
    bad = []
    for name, kw, rec in rows:
        r = pretrain_matrix.against(resolve(name), kw, rec)
        bound = KNOWN_GAPS.get((name, pretrain_matrix.describe(kw)), 0.03)
        bad += [(name, pretrain_matrix.describe(kw), p, round(100 * e, 2)) for p, e in r["phases"].items()
                if abs(e) > bound]
    assert not bad, bad


def _two_layers(name):
    cfg = copy.deepcopy(catalog.find(name)["config"])
    cfg["num_hidden_layers"] = 2
    spec = spec_from_config(cfg, name=name)
    return ResolvedModel(spec=spec, kind="catalog", origin=name, params=spec.params,
                         active_params=spec.active_params, hf_config=cfg)


def _two_layer_llama_against_trace(kw: dict) -> dict:
    """bench/pretrain_matrix.py's comparison of the analytic estimate with the trace, for 2-layer Llama-3-8B."""
    model = _two_layers("llama-3-8b")
    return pretrain_matrix.against(model, kw, pretrain_matrix.traced(model, kw))


TITAN = dict(task="pretrain", precision="mixed", parallelism="fsdp", framework="torchtitan", num_gpus=8, batch=1,
             seq=256)
SUBSET = [
    dict(TITAN, float8="tensorwise"),
    dict(TITAN, float8="rowwise", grad_checkpointing="op"),
    dict(TITAN, float8="rowwise_with_gw_hp", grad_checkpointing="full"),
    dict(TITAN, float8="tensorwise", fsdp_float8_all_gather=True),
]


@requires_torch
@requires_torchao
@pytest.mark.trace
@pytest.mark.parametrize("kw", SUBSET, ids=pretrain_matrix.describe)
def test_float8_subset_matches_trace(kw):
    r = _two_layer_llama_against_trace(kw)
    assert all(abs(e) <= 0.03 for e in r["phases"].values()), r["phases"]


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("ckpt", [None, "full"])
def test_fp32_fsdp_autocast_backward_matches_trace(ckpt):
    """fp32 FSDP2 parameters under torch.autocast (``--framework pytorch``): the 16-bit weight casts saved by the
    linears and the output head's 16-bit weight gradient are in backward (it was 25% under before)."""
    kw = dict(TITAN, framework="pytorch", **({"grad_checkpointing": ckpt} if ckpt else {}))
    r = _two_layer_llama_against_trace(kw)
    assert abs(r["phases"]["backward"]) <= 0.03, r["phases"]


#: FSDP2 × tensor parallelism as bench/pretrain_matrix.py's TP section traces it (torchtitan's plan in torch's
#: parallel styles, rank 0 of a (dp, tp) mesh), 2 layers at s256: ± sequence parallelism, checkpointing, hf's policy
TP_SUBSET = [
    dict(TITAN, num_gpus=4, tp=2),
    dict(TITAN, num_gpus=4, tp=2, sequence_parallel=True),
    dict(TITAN, num_gpus=4, tp=2, grad_checkpointing="full"),
    dict(TITAN, num_gpus=8, tp=4, sequence_parallel=True, framework="hf"),
]


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("kw", TP_SUBSET, ids=pretrain_matrix.describe)
def test_tensor_parallel_subset_matches_trace(kw):
    r = _two_layer_llama_against_trace(kw)
    assert all(abs(e) <= 0.03 for e in r["phases"].values()), r["phases"]


@requires_torch
@pytest.mark.trace
def test_per_layer_extrapolation_equals_the_deeper_trace():
    """bench/pretrain_matrix.py ``extrapolated``: every phase from traces at 2 and 3 layers, extrapolated to 4, is
    the 4-layer trace byte for byte (each phase peaks at the same moment whatever the depth)."""
    kw = dict(TITAN, grad_checkpointing="op")
    ex = pretrain_matrix.extrapolated("llama-3-8b", kw, (2, 3), target=4)
    deep = pretrain_matrix.traced(pretrain_matrix.reduced("llama-3-8b", 4), kw)
    assert ex["phases"] == deep["phases"]


@requires_torch
@requires_torchao
def test_tracker_counts_float8_wrappers_by_their_inner_tensors():
    import torch
    from torchao.float8.float8_training_tensor import LinearMMConfig
    from torchao.float8.fsdp_utils import WeightWithDynamicFloat8CastTensor

    from vramscope.trace.tracker import make_tracker

    tr = make_tracker()
    with tr:
        w = torch.empty(64, 32)  # 8192 B
        wrapped = WeightWithDynamicFloat8CastTensor(w, LinearMMConfig(), torch.float8_e4m3fn)
        zeros = wrapped.new_zeros(16, 32)  # through the subclass's dispatch: a wrapper around a new 2048 B tensor
        assert type(zeros).__name__ == "WeightWithDynamicFloat8CastTensor"
        tr.track(wrapped)
        assert tr.live == 8192 + 2048  # the wrappers' placeholder storages are not memory
        del zeros
        assert tr.live == 8192



COMPILED = dict(TITAN, seq=4096, **pretrain_matrix.COMPILED_BLOCKS)


@requires_torch
@pytest.mark.trace
@pytest.mark.timeout(600)
@pytest.mark.parametrize("ckpt", [None, "op"])
def test_compiled_blocks_match_whole_run_trace(ckpt):
    """torchtitan's per-block torch.compile traced whole (trace/compiled.py: Dynamo, inductor's decompositions and
    min-cut partitioner, the partitioned graphs run op by op on fake tensors, FSDP2 on the compiled blocks), 2-layer
    Llama-3-8B at s4096: the analytic compiled-block model within 3% on every phase; without checkpointing the
    trace is not eager mode's (eager mode's analytic estimate is more than 3% over it in forward: 49.03·h bytes
    per token and layer saved instead of 34.03·h)."""
    kw = dict(COMPILED, **({"grad_checkpointing": ckpt} if ckpt else {}))
    model = _two_layers("llama-3-8b")
    tr = pretrain_matrix.traced(model, kw)
    r = pretrain_matrix.against(model, kw, tr)
    assert all(abs(e) <= 0.03 for e in r["phases"].values()), r["phases"]
    if ckpt is None:
        eager = pretrain_matrix.against(model, {k: v for k, v in kw.items() if not k.startswith("compile")}, tr)
        assert eager["phases"]["forward"] > 0.03, eager["phases"]


@requires_torch
@requires_torchao
@pytest.mark.trace
@pytest.mark.timeout(600)
def test_compiled_float8_rowwise_checkpointed_backward_matches_trace():
    """Float8 rowwise, full checkpointing, compiled blocks (2-layer Llama-3-8B, s2048): the recomputed block's
    backward holds one weight's rowwise cast at a time, as inductor's code does (trace/compiled.py
    ``inline_input_casts``; bench/compile_float8_inductor.py); run op by op without it the trace kept every
    later weight's fp32 copy and ``abs`` (the analytic backward 11.6% under that trace here, 4.17% at full
    depth)."""
    kw = dict(TITAN, seq=2048, grad_checkpointing="full", float8="rowwise", **pretrain_matrix.COMPILED_BLOCKS)
    r = _two_layer_llama_against_trace(kw)
    assert all(abs(e) <= 0.03 for e in r["phases"].values()), r["phases"]
