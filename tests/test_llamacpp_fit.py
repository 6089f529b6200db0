"""llama.cpp's --fit (common/fit.cpp) as vramscope ports it (engines/llamacpp_fit.py), and Ollama from v0.30.0, which
hands the layer placement to it (engines/ollama.py, llama-server path).

* replays of llama.cpp's own verbose fit logs from public issues (validation/fit_replays.json): given the memory the
  log shows for each trial, the port must ask for the same trials in the same order and print the same lines;
* the search's result against brute force over vramscope's own per-device buffers;
* Ollama v0.32.15's own Go test cases (server/sched_test.go TestAutomaticGenerationBatch, TestSelectLlamaServerPlacement;
  llm/llama_server_test.go TestMemoryParsingWriter*, TestMemoryParsingPerDevice), case for case.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import replace

import pytest

import vramscope
from vramscope.engines.llamacpp import llamacpp_devices
from vramscope.engines.llamacpp_fit import Measured, Ngl, fit_params, llamacpp_measure
from vramscope.sources import resolve_catalog
from vramscope.workload import make_workload

MiB = 2**20
GiB = 2**30
REPLAYS = json.loads((pathlib.Path(__file__).resolve().parent.parent / "validation" / "fit_replays.json")
                     .read_text(encoding="utf-8"))["replays"]


class _Stop(Exception):
    pass


def _mib(values):
    return tuple(int(v * MiB) for v in values)


@pytest.mark.parametrize("r", REPLAYS, ids=[r["id"] for r in REPLAYS])
def test_replays_llamacpp_fit_logs(r):
    """The port asks for the logged trials, in order, and prints the logged lines (until the excerpt ends)."""
    table = {tuple(tuple(x) for x in p["ngl"]): _mib(p["mem_mib"]) for p in r["probes"]}
    unlogged = r.get("unlogged", {})
    nd = len(r["devices"])
    asked = []

    def measure(n_ctx, ngl, ovf, cpu_moe):
        if ngl is None:
            key = "cpu_moe_mib" if cpu_moe else "initial_mib"
            values = r.get(key) or unlogged[key]
            return Measured(total=_mib(values), model=_mib(values))
        key = tuple((n.n_layer, n.n_part, n.overflow_type) for n in ngl)
        asked.append(key)
        if key in table:
            return Measured(total=table[key], model=table[key])
        if all(k == (0, 0, 4) for k in key) and "zero_mib" in unlogged:
            return Measured(total=_mib(unlogged["zero_mib"]), model=_mib(unlogged["zero_mib"]))
        raise _Stop(key)

    lines = []
    with pytest.raises(_Stop):
        fit_params(measure, free=_mib(r["free_mib"]), names=r["devices"], hp_ngl=r["hp_ngl"],
                   n_ctx_train=262144, n_expert=r["n_expert"], n_ctx=r["n_ctx"],
                   margins=[r["margin_mib"] * MiB] * nd, trace=lines)
    logged = [tuple(tuple(x) for x in p["ngl"]) for p in r["probes"]]
    # the logged trials were asked for, one after the other, and the next one is not in the excerpt
    start = asked.index(logged[0])
    assert asked[start:start + len(logged)] == logged and asked[-1] not in table
    want = r["lines"]
    at = next(i for i in range(len(lines)) if lines[i:i + len(want)] == want) if want[0] in lines else None
    assert at is not None, "\n".join(lines)


# ---- the search over vramscope's buffers -----------------------------------------------------------------------

def _fit(name, quant, free_gib, nd=1, seq=8192, **kw):
    m = resolve_catalog(name)
    w = make_workload(task="inference", engine="llama.cpp", quant=quant, seq=seq)
    free = [int(free_gib * GiB)] * nd
    meas = llamacpp_measure(m, w, nd, n_ctx_train=m.spec.max_position_embeddings, free_bytes=free)
    n_exp = m.spec.moe.num_experts if m.spec.moe else 0
    r = fit_params(meas, free=free, names=[f"CUDA{i}" for i in range(nd)], hp_ngl=m.spec.num_layers,
                   n_ctx_train=m.spec.max_position_embeddings, n_expert=n_exp, n_ctx=kw.pop("n_ctx", seq), **kw)
    return m, w, free, meas, r


@pytest.mark.parametrize("free_gib", [3, 4.5, 5.5])
def test_dense_single_gpu_is_the_most_layers_that_fit(free_gib):
    """One GPU, a dense model: --fit's false position ends at the largest -ngl whose buffers leave the margin."""
    m, w, free, meas, r = _fit("llama-3.1-8b", "Q4_K_M", free_gib)
    target = free[0] - 1024 * MiB
    ok = [k for k in range(m.spec.num_layers + 2)
          if meas(8192, [Ngl(n_layer=k)], [None], False).total[0] <= target]
    assert r.status == "fitted" and r.n_gpu_layers == max(ok)
    devs, _, _ = llamacpp_devices(m, replace(w, n_gpu_layers=r.n_gpu_layers), 1, free_bytes=free)
    assert devs[0].total <= target < meas(8192, [Ngl(n_layer=r.n_gpu_layers + 1)], [None], False).total[0]


def test_fits_as_given_changes_nothing():
    m, w, free, meas, r = _fit("llama-3.1-8b", "Q4_K_M", 24)
    assert r.status == "unchanged" and r.ngl is None and "no changes needed" in r.trace[-1]


def test_two_gpus_fill_from_the_last():
    """Two GPUs: the last device (with the output layer) is filled first, then the one before it; each keeps its
    margin and the last could not take one more layer."""
    m, w, free, meas, r = _fit("llama-3.1-70b", "Q4_K_M", 16, nd=2)
    assert r.status == "fitted" and len(r.tensor_split) == 2
    target = free[0] - 1024 * MiB
    got = meas(8192, r.ngl, r.overflow, False).total
    assert all(t <= target for t in got)
    more = [r.ngl[0], Ngl(n_layer=r.ngl[1].n_layer + 1)]
    assert meas(8192, more, [None, None], False).total[1] > target
    assert r.n_gpu_layers < m.spec.num_layers + 1


def test_moe_keeps_dense_weights_and_overflows_experts():
    """A MoE model that does not fit: every layer's dense part on the GPU, the experts of some layers in host
    memory (n_part), one layer partly (UP/GATE/ATTN overflow); within the margin."""
    m, w, free, meas, r = _fit("qwen3-30b-a3b", "Q4_K_M", 12)
    assert r.status == "fitted" and r.n_gpu_layers == m.spec.num_layers + 1 and 0 < r.overflowing < m.spec.num_layers
    assert meas(8192, r.ngl, r.overflow, False).total[0] <= free[0] - 1024 * MiB
    assert any("converting dense-only layers" in x for x in r.trace)


def test_context_reduced_when_left_to_the_model():
    """-c 0: the context is interpolated between --fit-ctx and the training context to the target, rounded down
    to 256 (one device: done there)."""
    m, w, free, meas, r = _fit("llama-3.1-8b", "Q4_K_M", 12, n_ctx=0)
    assert r.status == "fitted" and r.ngl is None and 4096 < r.n_ctx < m.spec.max_position_embeddings
    assert r.n_ctx % 256 == 0 and "entire model can be fit by reducing context" in r.trace
    full, low = meas(0, None, [None], False).total[0], meas(4096, None, [None], False).total[0]
    target = free[0] - 1024 * MiB
    n_train = m.spec.max_position_embeddings
    want = 4096 + (n_train - 4096) * (target - low) // (full - low)
    assert r.n_ctx == want - want % 256


def test_user_settings_stop_the_fit():
    _, _, _, _, r = _fit("llama-3.1-8b", "Q4_K_M", 3, n_gpu_layers=99)
    assert r.status == "failed" and r.reason == "n_gpu_layers already set by user to 99, abort"
    _, _, _, _, r = _fit("llama-3.1-70b", "Q4_K_M", 16, nd=2, user_tensor_split=True)
    assert r.status == "failed" and "tensor_split already set by user" in r.reason


def test_fit_through_the_engine_and_the_pasted_command():
    e = vramscope.estimate("llama-3.1-8b", engine="llama.cpp", quant="Q4_K_M", seq=8192, gpus=["4GB"],
                           fit="on")
    fit = e.engine["fit"]
    assert fit["status"] == "fitted" and e.engine["n_gpu_layers"] + 1 == fit["n_gpu_layers"]
    assert e.gpus[0].verdict == "fits" and e.gpus[0].headroom_bytes >= 1024 * MiB - 2 * MiB
    # llama-server's default is --fit on; -ngl given: it leaves the layers as they are
    from vramscope.commandline import estimate_kwargs, parse_command

    def pasted(cmd):
        p = parse_command(cmd.split())
        return vramscope.estimate("llama-3.1-8b", gpus=["4GB"], **estimate_kwargs(p, 131072))

    e2 = pasted("llama-server -hf bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M -c 8192")
    assert e2.engine["fit"]["n_gpu_layers"] == fit["n_gpu_layers"]
    e3 = pasted("llama-server -hf bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M -c 8192 -ngl 99")
    assert e3.engine["fit"]["status"] == "failed" and e3.engine["n_gpu_layers"] == 32
    # -c 0 (the default): fit lowers the 131072-token context to what fits
    e4 = pasted("llama-server -hf bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M")
    assert e4.engine["fit"]["status"] == "fitted" and 4096 <= e4.engine["n_ctx"] < 131072


# ---- Ollama v0.32.15's own test cases -------------------------------------------------------------------------

from vramscope.engines.ollama import ServerMemory, automatic_batch, select_placement  # noqa: E402


@pytest.mark.parametrize("ctx, predicted, available, flash, cuda, memory, want", [
    (4096, 0, 0, "auto", False, 0, 512),  # small context keeps default
    (32768, 0, 0, "auto", False, 0, 1024),  # medium context uses 1024 with unknown memory
    (131072, 8 * GiB, 14 * GiB, "auto", False, 0, 2048),  # large context uses 2048 with headroom
    (131072, 9 * GiB, 14 * GiB, "auto", False, 0, 1024),  # steps down to 1024 without 2048 headroom
    (131072, 8 * GiB, 11 * GiB, "auto", False, 0, 1024),  # steps down to 1024 for headroom
    (32768, 8500 * MiB, 11 * GiB, "auto", False, 0, 512),  # medium context steps down to 512 for headroom
    (131072, 8 * GiB, 14 * GiB, "off", True, 14 * GiB, 512),  # flash attention disabled suppresses promotion
    (131072, 3 * GiB, 6 * GiB, "off", True, 6 * GiB, 256),  # constrained CUDA without flash attention
])
def test_ollama_automatic_generation_batch(ctx, predicted, available, flash, cuda, memory, want):
    assert automatic_batch(ctx, predicted, available, flash, cuda, memory) == want


GB = 10**9


@pytest.mark.parametrize("free, predicted, spread, want", [
    ([10 * GB, 20 * GB], 8 * GB, False, [1]),  # compacts onto largest same-backend GPU
    ([10 * GB, 20 * GB], 8 * GB, True, [0, 1]),  # spread disables automatic compaction
    ([10 * GB, 18 * GB], 30 * GB, False, [0, 1]),  # no single fit: the group for llama-server's split
])
def test_ollama_select_llama_server_placement(free, predicted, spread, want):
    assert select_placement(free, predicted, spread) == want


@pytest.mark.parametrize("lines, want_gpu, want_total", [
    (["llama_model_load_from_file_impl:        Metal model buffer size =  1234.56 MiB\n",
      "llama_model_load_from_file_impl:          CPU model buffer size =    56.78 MiB\n"], 1234.56, 1234.56 + 56.78),
    (["llama_model_load_from_file_impl:        CUDA0 model buffer size =   800.00 MiB\n",
      "llama_model_load_from_file_impl:        CUDA1 model buffer size =   400.00 MiB\n",
      "llama_model_load_from_file_impl:    CUDA_Host model buffer size =   100.00 MiB\n"], 1200.0, 1300.0),
    (["llama_model_load_from_file_impl: Metal_Private model buffer size =   300.00 MiB\n",
      "llama_model_load_from_file_impl:  Metal_Mapped model buffer size =    20.00 MiB\n"], 320.0, 320.0),
    (["some random log line\n"], 0, 0),
    (["load_tensors:        CUDA0 model buffer size =  1000.00 MiB\n",
      "llama_kv_cache:      CUDA0 KV buffer size =  2000.00 MiB\n",
      "sched_reserve:      CUDA0 compute buffer size =   300.00 MiB\n",
      "sched_reserve:  CUDA_Host compute buffer size =   400.00 MiB\n",
      "load_tensors:        CUDA0 model buffer size =  1100.00 MiB\n",
      "llama_kv_cache:      CUDA0 KV buffer size =  2200.00 MiB\n",
      "sched_reserve:      CUDA0 compute buffer size =   330.00 MiB\n",
      "sched_reserve:  CUDA_Host compute buffer size =   440.00 MiB\n",
      "alloc_compute_meta:  CUDA0 compute buffer size =    10.00 MiB\n",
      "llama_memory_recurrent:      CUDA0 RS buffer size =    20.00 MiB\n"],
     1100 + 2200 + 330 + 10 + 20, 1100 + 2200 + 330 + 440 + 10 + 20),  # fit probe buffers replaced by the load
])
def test_ollama_memory_parsing_writer(lines, want_gpu, want_total):
    mem = ServerMemory()
    for line in lines:
        mem.write(line)
    assert abs(mem.mem_gpu - want_gpu * MiB) <= 1 and abs(mem.mem_total - want_total * MiB) <= 1


def test_ollama_memory_parsing_per_device():
    mem = ServerMemory()
    for line in ("load_tensors:        CUDA0 model buffer size =   852.89 MiB\n",
                 "load_tensors:        CUDA1 model buffer size =  1065.46 MiB\n",
                 "load_tensors:   CPU_Mapped model buffer size =   308.23 MiB\n",
                 "llama_kv_cache:      CUDA0 KV buffer size =  1920.00 MiB\n",
                 "llama_kv_cache:      CUDA1 KV buffer size =  1664.00 MiB\n",
                 "sched_reserve:      CUDA0 compute buffer size =   378.04 MiB\n",
                 "sched_reserve:      CUDA1 compute buffer size =   408.55 MiB\n",
                 "sched_reserve:  CUDA_Host compute buffer size =   268.05 MiB\n"):
        mem.write(line)
    want = {"CUDA0": 852 + 1920 + 378, "CUDA1": 1065 + 1664 + 408}  # approx. MiB, within 2 as the Go test allows
    assert mem.by_device.keys() == want.keys()
    assert all(abs(mem.by_device[k] // MiB - v) <= 2 for k, v in want.items())


@pytest.mark.parametrize("lines, total, vram", [
    (["llm_load_tensors: offloading 32 repeating layers to GPU\n", "llm_load_tensors: offloaded 33/33 layers to GPU\n"],
     80, 80),
    (["llm_load_tensors: offloaded 22/33 layers to GPU\n"], 100, 80),
    (["llm_load_tensors: offloading 32 repeating layers to GPU\n"], 100, 80),
    (["llm_load_tensors: offloaded 0/33 layers to GPU\n", "llm_load_tensors: offloaded 33/33 layers to GPU\n"], 80, 80),
    (["common_params_fit_impl:   - ROCm0 (AMD Radeon RX 6700 XT): 25 layers ( 5 overflowing),  11065 MiB used,   "
      "1036 MiB free\n", "llm_load_tensors: offloaded 25/25 layers to GPU\n"], 100, 80),
    (["common_params_fit_impl:   - ROCm0 (AMD Radeon Pro W7900): 34 layers ( 0 overflowing),  32765 MiB used,   "
      "1144 MiB free\n", "llm_load_tensors: offloaded 34/34 layers to GPU\n"], 80, 80),
])
def test_ollama_memory_size_full_offload(lines, total, vram):
    mem = ServerMemory(mem_total=100, mem_gpu=80)
    for line in lines:
        mem.write(line)
    assert mem.memory_size() == (total, vram)


@pytest.mark.parametrize("file_mib, lines, total, vram", [
    (13578, ["load_tensors: offloaded 48/49 layers to GPU\n",  # ollama/ollama#16637's numbers
             "load_tensors:        CUDA0 model buffer size = 12900.00 MiB\n",
             "load_tensors:   CPU_Mapped model buffer size = 13260.00 MiB\n",
             "llama_kv_cache:      CUDA0 KV buffer size =   460.00 MiB\n",
             "sched_reserve:      CUDA0 compute buffer size =   350.00 MiB\n",
             "sched_reserve:  CUDA_Host compute buffer size =   270.00 MiB\n"],
     13578 + 460 + 350 + 270, 12900 + 460 + 350),
    (386400256 / MiB, ["load_tensors: offloaded 20/33 layers to GPU\n",
                       "load_tensors:   CPU_Mapped model buffer size =   364.31 MiB\n",
                       "load_tensors:   CPU_REPACK model buffer size =   129.49 MiB\n",
                       "load_tensors:  MTL0_Mapped model buffer size =   366.80 MiB\n",
                       "llama_context:        CPU  output buffer size =     0.75 MiB\n",
                       "llama_kv_cache:        CPU KV buffer size =    32.50 MiB\n",
                       "llama_kv_cache:       MTL0 KV buffer size =    47.50 MiB\n",
                       "sched_reserve:       MTL0 compute buffer size =    20.76 MiB\n",
                       "sched_reserve:        CPU compute buffer size =    24.51 MiB\n"],
     368.50 + 129.49 + 0.75 + 32.50 + 47.50 + 20.76 + 24.51, 366.80 + 47.50 + 20.76),
    (1919, ["load_tensors: offloaded 0/29 layers to GPU\n",
            "load_tensors:   CPU_Mapped model buffer size =  1918.35 MiB\n",
            "load_tensors:   CPU_REPACK model buffer size =  1299.38 MiB\n",
            "llama_kv_cache:        CPU KV buffer size =   112.00 MiB\n",
            "sched_reserve:        CPU compute buffer size =    72.00 MiB\n"], 1918.35 + 1299.38 + 112 + 72, 0),
    (386404992 / MiB, ["load_tensors: offloaded 20/33 layers to GPU\n",
                       "load_tensors:          CPU model buffer size =   234.82 MiB\n",
                       "load_tensors:   CPU_REPACK model buffer size =   129.49 MiB\n",
                       "load_tensors:         MTL0 model buffer size =   132.00 MiB\n",
                       "llama_kv_cache:       MTL0 KV buffer size =    47.50 MiB\n"],
     234.82 + 129.49 + 132 + 47.5, 132 + 47.5),
    (0, ["load_tensors: offloaded 48/49 layers to GPU\n",
         "load_tensors:        CUDA0 model buffer size = 12900.00 MiB\n",
         "load_tensors:   CPU_Mapped model buffer size = 13260.00 MiB\n"], 12900 + 13260, 12900),
    (13578, ["load_tensors: offloaded 24/49 layers to GPU\n",
             "load_tensors:        CUDA0 model buffer size =  6500.00 MiB\n",
             "load_tensors:   CPU_Mapped model buffer size =  7000.00 MiB\n"], 6500 + 7000, 6500),
])
def test_ollama_memory_size_mmap_partial_offload(file_mib, lines, total, vram):
    mem = ServerMemory()
    for line in lines:
        mem.write(line)
    got_total, got_vram = mem.memory_size(int(file_mib * MiB))
    assert abs(got_total - int(total * MiB)) <= 1024 and abs(got_vram - int(vram * MiB)) <= 1024


# ---- Ollama >= 0.30 through the engine -------------------------------------------------------------------------

def test_ollama_llama_server_path():
    """v0.32.15 (the default): the llama-server command line, --fit's split, ollama ps from the printed buffers."""
    e = vramscope.estimate("llama-3.1-70b", engine="ollama", gpus=["rtx-4090"])
    r = e.engine
    assert r["scheduler"] == "llama-server" and r["version"] == "0.32.15"
    assert r["llama_server_args"] == "-c 32768 -np 1 --flash-attn auto -b 512 -ub 512"
    g = r["per_gpu"][0]
    fit = r["fit"]
    assert fit["status"] == "fitted" and g["layers_offloaded"] == fit["n_gpu_layers"] < 81
    d = g["devices"][0]
    assert d["allocation_bytes"] <= d["free_bytes"] - 512 * MiB - 1024 * MiB  # --fit's margin after the context
    # ollama ps reads the buffers as llama-server prints them (0.01 MiB)
    assert g["processor"].endswith("CPU/GPU") and abs(g["vram_bytes"] - d["allocation_bytes"]) < 3 * 0.01 * MiB
    # two of them: the whole model over both GPUs (no single GPU holds 80% of the prediction), 100% GPU
    two = vramscope.estimate("llama-3.1-70b", engine="ollama", gpus=["a100-80gb"], num_gpus=2, seq=8192)
    g2 = two.engine["per_gpu"][0]
    assert g2["processor"] == "100% GPU" and g2["size_bytes"] == g2["vram_bytes"]
    # a small model on two GPUs: one of them (--split-mode none --main-gpu 0)
    small = vramscope.estimate("llama-3-8b", engine="ollama", gpus=["rtx-4090"], num_gpus=2)
    assert small.engine["llama_server_args"].endswith("--split-mode none --main-gpu 0")
    assert small.engine["per_gpu"][0]["gpus_used"] == 1
    # the old scheduler stays for old versions
    assert vramscope.estimate("llama-3.1-70b", engine="ollama", gpus=["rtx-4090"],
                              ollama_version="0.24.0").engine["scheduler"] == "layout"


def test_partial_layer_trials_follow_fit_cpp_order():
    """common/fit.cpp's extra partial MoE layer: LAYER_FRACTION_UP is tried first; where it fits, GATE is tried
    next; where it does not, ATTN; nothing after either (the trials as the fit trace logs them). The workloads
    below reach both branches."""
    import re

    step = re.compile(r"trying to fit one extra layer with overflow_type=LAYER_FRACTION_(\w+)$"
                      r"|set ngl_per_device\[\d+\]\.\(n_layer, n_part, overflow_type\)=\(\d+, \d+, (\w+)\)")
    branches = set()
    for model in ("qwen3-30b-a3b", "mixtral-8x7b", "deepseek-ai/DeepSeek-V2-Lite", "gpt-oss-20b"):
        for gpus in (["rtx-4090"], ["rtx-4060-ti-16gb"], ["8GB"], ["12GB", "8GB"]):
            e = vramscope.estimate(model, engine="llama.cpp", quant="Q4_K_M", gpus=gpus, fit="on")
            steps = [("try", m[1]) if m[1] else ("set", m[2])
                     for m in map(step.search, e.engine["fit"]["trace"]) if m]
            i = 0
            while i < len(steps):
                assert steps[i] == ("try", "UP"), steps
                up_fits = steps[i + 1:i + 2] == [("set", "UP")]
                then = "GATE" if up_fits else "ATTN"
                i += 2 if up_fits else 1
                assert steps[i] == ("try", then), steps
                i += 1 + (steps[i + 1:i + 2] == [("set", then)])
                branches.add(then)
    assert branches == {"GATE", "ATTN"}, branches
