"""Issue #14: async tensor parallelism (--async-tp; torchtitan 0.3.0 enable_async_tensor_parallel, torch 2.13's
micro-pipeline TP and symmetric memory). The fusions and the workspace sizes come from torch's own code, run on the
CPU (tests/async_tp_worker.py); the estimate puts them on the device."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_util import run_cli
from vramscope import estimate
from vramscope.configs import from_torchtitan
from vramscope.memory.async_tp import SIGNAL_PAD, fused_requests, symm_workspace

WORKER = Path(__file__).with_name("async_tp_worker.py")


@pytest.mark.parametrize("b, s, h, f, tp", [(2, 4096, 4096, 14336, 4),   # Llama-3-8B, batch 2, 4-way TP
                                            (1, 8192, 8192, 28672, 8)])  # Llama-3-70B, 8-way TP
def test_workspace_requests_are_torchs(b, s, h, f, tp):
    pytest.importorskip("torch")
    run = subprocess.run([sys.executable, str(WORKER), str(b), str(s), str(h), str(f), str(tp)],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    fused = json.loads(run.stdout.strip().splitlines()[-1])["fused"]
    # inductor's pass fused the block's collectives: gather → wq, wo → scatter, gather → w1/w3, w2 → scatter. At
    # batch 1 the gathered (1, s, h) is reshaped twice before its matmul (the cat of the chunks folds into a view),
    # which _find_consumer_matmuls does not match: only the scatters fuse, and they set the workspace either way
    gathers = ["fused_all_gather_matmul"] if b > 1 else []
    assert [x["op"] for x in fused] == (gathers + ["fused_matmul_reduce_scatter"]) * 2
    ours = fused_requests(h, b, s, tp, 2)
    for x in fused:
        assert x["asked"] == ours[x["op"].removeprefix("fused_")], x
    assert symm_workspace(h, b, s, tp, 2) == max(x["asked"] for x in fused) + SIGNAL_PAD


def test_signal_pad_is_torchs():
    torch = pytest.importorskip("torch")
    assert torch._C._distributed_c10d._SymmetricMemory.signal_pad_size == SIGNAL_PAD


BASE = dict(task="pretrain", framework="torchtitan", num_gpus=16, tp=8, sequence_parallel=True, compile=True,
            seq=8192, batch=2, grad_checkpointing=True)


def test_estimate_adds_the_workspace_outside_the_allocator():
    off = estimate("llama-3-70b", hub=False, **BASE)
    on = estimate("llama-3-70b", hub=False, async_tp=True, **BASE)
    symm = symm_workspace(8192, 2, 8192, 8, 2)
    assert symm == 2 * 2 * 1024 * 8192 * 2 + SIGNAL_PAD  # two (b·s/tp) × h bf16 chunks: 64 MiB + the pad
    assert on.memory.terms["symm_mem"] == symm and "symm_mem" not in off.memory.terms
    ws = off.memory.terms["cublas_workspace"]
    assert on.memory.terms["cublas_workspace"] == 2 * ws  # the side stream's own cuBLAS workspace
    assert on.memory.allocated - off.memory.allocated == ws
    assert on.memory.device - off.memory.device == symm + ws
    assert on.total_bytes - off.total_bytes == symm + ws
    assert any(a.key == "a_async_tp" for a in on.assumptions)
    # the tensors themselves are the unfused graph's: every phase's components but the overhead are unchanged
    for phase, comps in off.phases.items():
        assert {k: v for k, v in on.phases[phase].items() if k != "overhead"} == \
               {k: v for k, v in comps.items() if k != "overhead"}, phase
    assert on.phases["load"]["overhead"] == off.phases["load"]["overhead"]  # mapped at the first forward


@pytest.mark.parametrize("drop, named", [("tp", "--tp"), ("sequence_parallel", "--sequence-parallel"),
                                         ("compile", "--compile")])
def test_async_tp_needs_tp_sp_and_compiled_blocks(drop, named):
    args = ["estimate", "llama-3-8b", "--task", "pretrain", "--gpus", "8", "--async-tp", "--no-hub"]
    given = {"tp": ["--tp", "8"], "sequence_parallel": ["--sequence-parallel"], "compile": ["--compile"]}
    for k, v in given.items():
        if k != drop and not (drop == "tp" and k == "sequence_parallel"):  # sequence parallelism needs TP itself
            args += v
    rc, out, err = run_cli(args)
    assert rc == 2 and "--async-tp" in err and named in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    rc, _, err = run_cli(["estimate", "llama-3-8b", "--task", "pretrain", "--gpus", "8", "--tp", "8",
                          "--sequence-parallel", "--compile", "--compile-components", "loss", "--async-tp", "--no-hub"])
    assert rc == 2 and "--compile" in err


@pytest.mark.parametrize("where", ["parallelism", "compile"])  # the TOML release's section, 0.3.0's CompileConfig
def test_torchtitan_toml_turns_it_on(tmp_path, where):
    p = tmp_path / "train.toml"
    switch = "enable_async_tensor_parallel = true\n"
    p.write_text("[parallelism]\ntensor_parallel_degree = 8\n" + (switch if where == "parallelism" else "") +
                 "[compile]\nenable = true\ncomponents = [\"model\", \"loss\"]\n" +
                 (switch if where == "compile" else ""), encoding="utf-8")
    out = from_torchtitan(str(p))
    assert out["async_tp"] is True and out["sequence_parallel"] is True
    rc, text, err = run_cli(["estimate", "llama-3-8b", "--torchtitan", str(p), "--gpus", "16", "--json", "--no-hub"])
    assert rc == 0, err
    d = json.loads(text)
    w = d["workload"]
    assert w["async_tp"] is True
    assert d["memory"]["terms"]["symm_mem"] == symm_workspace(4096, w["batch"], w["seq"], 8, 2)
