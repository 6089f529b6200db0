"""Ollama's scheduler (issue #17), checked against Ollama's own test of it and its own logs.

``estimate_gpu_layers`` ports ``estimateGPULayers`` (ollama/ollama v0.12.10, llm/memory.go);
``test_ollama_own_scenarios`` is its ``TestEstimateGPULayers`` (llm/memory_test.go at the same tag), case for case.
"""

import pytest

import vramscope
from vramscope.api import load_model, make_workload
from vramscope.engines.ollama import (GgufFacts, MINIMUM_MEMORY, default_num_ctx, estimate_gpu_layers, facts,
                                      flash_attention, graph_size, human_bytes, human_bytes2, kv_cache_type,
                                      processor, schedule)

MiB, GiB = 2**20, 2**30

#: memory_test.go's dummy model: llama, 5 blocks of one F32 element (4 bytes), output.weight 4 bytes,
#: embedding 4096, 32 heads, 32 KV heads, one token; OLLAMA_CONTEXT_LENGTH=2048, num_batch 512
DUMMY = GgufFacts(arch="llama", block_count=5, embedding=4096, heads=32, heads_min=32, heads_kv=32, heads_kv_min=32,
                  head_k=128, head_v=128, vocab=1, context_length=32, layer_sizes=(4,) * 5, output_size=4)


def test_ollama_own_graph_numbers():
    # memory_test.go: "derived from the dummy ggml file above"
    kv, partial, full = graph_size(DUMMY, 2048, 512, 1, "f16", False)
    assert partial == 202377216 and full == 171968512
    assert 4 + kv[0] == 33554436  # layerSize


@pytest.mark.parametrize("layer0, layer1, expect0, expect1", [
    (1, 1, 1, 1), (2, 1, 2, 1), (2, 2, 2, 2), (1, 2, 1, 2), (3, 3, 3, 3), (4, 4, 3, 3), (6, 6, 3, 3), (0, 3, 0, 3),
])
def test_ollama_own_scenarios(layer0, layer1, expect0, expect1):
    """Dual CUDA with asymmetry: each GPU has room for its minimum, the graph, one buffer layer and N layers."""
    graph_partial, graph_full, layer_size, output = 202377216, 171968512, 33554436, 4
    free = [0, 0]
    if layer0 > 0:
        free[0] += output
    else:
        free[1] += output
    free[0] += MINIMUM_MEMORY + layer_size + layer0 * layer_size + 1 + max(graph_full, graph_partial)
    free[1] += MINIMUM_MEMORY + layer_size + layer1 * layer_size + 1 + max(graph_full, graph_partial)
    e = estimate_gpu_layers(DUMMY, free, num_ctx=2048, num_batch=512, num_parallel=1)
    assert e.layers == expect0 + expect1
    assert list(e.tensor_split) == [expect0, expect1]
    if e.layers < 5 + 1:
        assert e.vram_size < e.total_size and e.vram_size == sum(e.gpu_sizes)
    else:
        assert e.vram_size == e.total_size == sum(e.gpu_sizes)


def test_ollama_cpu_only():
    e = estimate_gpu_layers(DUMMY, [], num_ctx=2048, num_batch=512, num_parallel=1)
    assert e.layers == 0 and e.graph == 0


def test_graph_and_kv_match_ollama_log():
    """ollama/ollama#9181 (2025-02-18): an 80-layer Llama-70B-shaped model at num_ctx 64000 on four 22 GiB GPUs
    logged ``memory.required.kv="19.5 GiB"``, ``memory.graph.full="8.2 GiB" memory.graph.partial="8.2 GiB"``
    (several GPUs: the partial graph for both)."""
    m = load_model("llama-3.1-70b")
    f = facts(m, make_workload(engine="ollama", quant="Q4_K_M", seq=64000))
    kv, partial, full = graph_size(f, 64000, 512, 1, "f16", False)
    assert human_bytes2(sum(kv)) == "19.5 GiB"
    assert human_bytes2(partial) == "8.2 GiB"


def test_ps_strings():
    # cmd/cmd.go and format/bytes.go
    assert processor(100, 0) == "100% CPU" and processor(100, 100) == "100% GPU"
    assert processor(1000, 560) == "44%/56% CPU/GPU"
    assert processor(1000, 555) == "45%/55% CPU/GPU"  # math.Round: half away from zero
    assert human_bytes(45_300_000_000) == "45 GB" and human_bytes(5_500_000_000) == "5.5 GB"
    assert human_bytes(5_000_000_000) == "5 GB" and human_bytes2(3 * GiB // 2) == "1.5 GiB"


def test_defaults_by_version():
    # envconfig/config.go: 2048 through v0.6.x, 4096 from v0.7.0; from v0.15.5 by total VRAM (47/23 GiB tiers)
    assert default_num_ctx("0.6.8", 24 * GiB) == 2048
    assert default_num_ctx("0.12.10", 80 * GiB) == 4096
    assert default_num_ctx("0.15.5", 16 * GiB) == 4096
    assert default_num_ctx("0.15.5", 24 * GiB) == 32768
    assert default_num_ctx("0.20.0", 2 * 24 * GiB) == 262144
    assert flash_attention("qwen3", None) and not flash_attention("llama", None)
    assert flash_attention("llama", True) and not flash_attention("gemma2", True)
    assert kv_cache_type("q8_0", True) == "q8_0" and kv_cache_type("q8_0", False) == "f16"
    assert kv_cache_type("q5_1", True) == "f16"


def test_fewest_gpus_first():
    """pickBestFullFitByLibrary: an 8B model fits on one of two GPUs, so it takes one; a 70B takes both."""
    m8 = load_model("llama-3-8b")
    w = make_workload(engine="ollama", quant="Q4_K_M", seq=4096)
    used, e = schedule(facts(m8, w), [24 * GiB, 24 * GiB], num_ctx=4096, num_batch=512, num_parallel=1)
    assert len(used) == 1 and e.layers == 33
    m70 = load_model("llama-3.1-70b")
    used, e = schedule(facts(m70, w), [24 * GiB, 24 * GiB], num_ctx=4096, num_batch=512, num_parallel=1)
    assert len(used) == 2 and e.layers == 81 and sum(e.tensor_split) == 81
    spread, e2 = schedule(facts(m8, w), [24 * GiB, 24 * GiB], spread=True, num_ctx=4096, num_batch=512,
                          num_parallel=1)
    assert len(spread) == 2 and all(e2.tensor_split)


def test_parallel_multiplies_the_cache():
    m = load_model("llama-3-8b")
    f = facts(m, make_workload(engine="ollama", quant="Q4_K_M"))
    kv1, _, _ = graph_size(f, 4096, 512, 1, "f16", False)
    kv4, _, _ = graph_size(f, 4096, 512, 4, "q8_0", True)
    assert sum(kv4) == 2 * sum(kv1)  # 4 × the context at half the bytes


def test_estimate_through_the_engine():
    """v0.24.0, Ollama's own layout: a 24 GB card gets num_ctx 32768 (VRAM tiers since v0.15.5), capped by the
    model's training context."""
    e = vramscope.estimate("llama-3.1-70b", engine="ollama", quant="Q4_K_M", gpus=["rtx-4090"],
                           ollama_version="0.24.0")
    g = e.engine["per_gpu"][0]
    assert e.engine["scheduler"] == "layout" and e.engine["num_ctx"] == 32768 and e.engine["layers_model"] == 81
    assert 0 < g["layers_offloaded"] < 81 and g["processor"].endswith("CPU/GPU")
    assert e.gpus[0].verdict == "tight"
    d = g["devices"][0]
    # the phases add up to what Ollama counts on the GPU and the MinimumMemory it keeps free there
    assert e.total_bytes == d["allocation_bytes"] + MINIMUM_MEMORY
    assert d["allocation_bytes"] + MINIMUM_MEMORY <= d["free_bytes"]
    small = vramscope.estimate("llama-3-8b", engine="ollama", quant="Q4_K_M", gpus=["rtx-4090"],
                               ollama_version="0.24.0")
    assert small.engine["num_ctx"] == 8192  # llama-3-8b's training context
    assert small.engine["per_gpu"][0]["processor"] == "100% GPU" and small.gpus[0].verdict == "fits"


# ---- names and Modelfiles ----

from vramscope.errors import VramscopeError  # noqa: E402
from vramscope.sources.ollama import parse_modelfile, parse_ollama_name, read_modelfile  # noqa: E402


@pytest.mark.parametrize("text, model, quant", [
    ("llama3.1:70b-instruct-q4_K_M", "llama-3.1-70b", "Q4_K_M"),
    ("llama3.1:70b", "llama-3.1-70b", "Q4_K_M"),
    ("llama3.1", "llama-3.1-8b", "Q4_K_M"),
    ("llama3.1:latest", "llama-3.1-8b", "Q4_K_M"),
    ("qwen2.5:7b-instruct-fp16", "qwen2.5-7b", "F16"),
    ("mixtral:8x22b-instruct-v0.1-q8_0", "mixtral-8x22b", "Q8_0"),
    ("qwen3:30b", "qwen3-30b-a3b", "Q4_K_M"),
    ("registry.ollama.ai/library/gemma2:27b-text-q5_K_S", "gemma-2-27b", "Q5_K_S"),
])
def test_ollama_names(text, model, quant):
    n = parse_ollama_name(text)
    assert (n.model, n.quant) == (model, quant)
    assert vramscope.load_model(n.model).params > 0  # every mapped name is in the catalog


def test_ollama_library_names_all_resolve():
    from vramscope.sources.ollama import LIBRARY

    for family, (sizes, latest) in LIBRARY.items():
        assert latest in sizes
        for model in sizes.values():
            assert vramscope.load_model(model).params > 0, (family, model)


def test_ollama_bad_names():
    with pytest.raises(VramscopeError, match="not an Ollama library model"):
        parse_ollama_name("notamodel:7b")
    with pytest.raises(VramscopeError, match="size"):
        parse_ollama_name("llama3.1:70b-Q4?K")


def test_modelfile(tmp_path):
    text = '''# a Modelfile
FROM llama3.1:70b
PARAMETER num_ctx 16384
PARAMETER temperature 0.7
parameter num_gpu 40
TEMPLATE """{{ .System }}
FROM inside the template is text
{{ .Prompt }}"""
SYSTEM You are terse.
ADAPTER ./lora.gguf
'''
    mf = parse_modelfile(text)
    assert mf.base == "llama3.1:70b" and mf.options == {"seq": 16384, "num_gpu": 40}
    assert mf.adapters == ["./lora.gguf"]
    assert "PARAMETER temperature" in mf.ignored and "TEMPLATE" in mf.ignored
    p = tmp_path / "Modelfile"
    p.write_text(text)
    assert read_modelfile(p).options["seq"] == 16384
    with pytest.raises(VramscopeError, match="line 2"):
        parse_modelfile("FROM x\nPARAMETER num_ctx lots\n")
    with pytest.raises(VramscopeError, match="no FROM"):
        parse_modelfile("PARAMETER num_ctx 4\n")
    with pytest.raises(VramscopeError, match="line 1"):
        parse_modelfile("RUN rm -rf /\n")
    big = tmp_path / "big"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(VramscopeError):
        read_modelfile(big)
    bad = tmp_path / "bin"
    bad.write_bytes(b"FROM \xff\xfe\n")
    with pytest.raises(VramscopeError, match="not a Modelfile"):
        read_modelfile(bad)


def test_fit_finds_the_fewest_gpus():
    """With no GPU named, the need on --gpus N is the fullest GPU's share when Ollama takes every layer: the
    least free memory per GPU at which its own scheduler puts the whole model on the N GPUs."""
    from vramscope.engines.ollama import fits_fully, min_free_per_gpu

    f = facts(load_model("llama-3.1-70b"), make_workload(engine="ollama", quant="Q4_K_M"))
    opts = dict(num_ctx=4096, num_batch=512, num_parallel=1)
    need1, one = min_free_per_gpu(f, 1, **opts)
    need2, two = min_free_per_gpu(f, 2, **opts)
    assert fits_fully(f, two, -1) and not fits_fully(f, estimate_gpu_layers(f, [need2 - 1] * 2, **opts), -1)
    assert 0.45 * need1 < need2 < 0.6 * need1
    a = vramscope.fit("llama-3.1-70b", engine="ollama", quant="Q4_K_M", gpu="rtx-4090")
    assert not a.fits and a.min_gpus == 2


# ---- Ollama's own layout (llm/server.go, v0.13.0 - v0.24.0): its TestLLMServerFitGPU, case for case ----

from vramscope.engines.ollama import build_layout  # noqa: E402

MB = 2**20


@pytest.mark.parametrize("name, gpus, layers, num_gpu, expected", [
    ("No GPU", [], [50, 50, 50], -1, []),
    ("Full single GPU", [256], [50, 50, 50], -1, [(0, [0, 1, 2])]),
    ("Partial single GPU", [256], [100, 100, 100, 100], -1, [(0, [1, 2])]),
    ("Single GPU with numGPU 1", [256], [50, 50, 50], 1, [(0, [1])]),
    ("Single GPU with numGPU 0", [256], [50, 50, 50], 0, []),
    ("Single GPU with numGPU 999", [256], [100, 100, 100, 100], 999, [(0, [0, 1, 2, 3])]),
    ("Multi GPU fits on one", [128, 256], [50, 50, 50], -1, [(1, [0, 1, 2])]),
    ("Multi GPU split", [128, 256], [256, 50, 50], -1, [(1, [0]), (0, [1, 2])]),
    ("Multi GPU partial", [128, 256], [256, 256, 50], -1, [(1, [1])]),
    ("Multi GPU numGPU 1", [128, 256], [50, 50, 50], 1, [(1, [1])]),
    ("Multi GPU numGPU 2", [128, 256], [256, 50, 50], 2, [(1, [0]), (0, [1])]),
    ("Multi GPU numGPU 999", [128, 256], [256, 256, 50], 999, [(1, [0, 1]), (0, [2])]),
])
def test_ollama_own_layout_scenarios(name, gpus, layers, num_gpu, expected):
    """Each GPU has its MiB figure free beyond the 457 MiB MinimumMemory; no graph (as the test sets it)."""
    free = [g * MB + MINIMUM_MEMORY for g in gpus]
    lay = build_layout([x * MB for x in layers], free, [0] * len(free), 0, 0, num_gpu=num_gpu)
    assert lay.assignment == expected, name


def test_layout_sizes():
    free = [256 * MB + MINIMUM_MEMORY]
    lay = build_layout([100 * MB] * 4, free, [20 * MB], 30 * MB, 5 * MB)
    # 20 MiB graph: room for two 100 MiB layers, the last two before the output; the rest on the CPU
    assert lay.assignment == [(0, [1, 2])] and lay.vram_size == 220 * MB
    assert lay.total_size == 220 * MB + 30 * MB + 5 * MB + 200 * MB
    assert processor(lay.total_size, lay.vram_size) == "52%/48% CPU/GPU"  # 235 of 455 MiB on the CPU


def test_versions_through_the_engine():
    """--ollama-version 0.12.10: memory.go and its 4096 default; 0.6.8: 2048; every allocation includes the
    MinimumMemory and buffer layer there, so the phases add up to it."""
    old = vramscope.estimate("llama-3.1-70b", engine="ollama", quant="Q4_K_M", ollama_version="0.12.10",
                             gpus=["rtx-4090"])
    assert old.engine["scheduler"] == "memory.go" and old.engine["num_ctx"] == 4096
    d = old.engine["per_gpu"][0]["devices"][0]
    assert old.total_bytes == d["allocation_bytes"]
    assert vramscope.estimate("llama-3-8b", engine="ollama", ollama_version="0.6.8").engine["num_ctx"] == 2048
    # its own engine's families use the layout from v0.11.5
    qwen3 = vramscope.estimate("qwen3-8b", engine="ollama", ollama_version="0.12.0", gpus=["rtx-4090"])
    assert qwen3.engine["scheduler"] == "layout" and qwen3.engine["flash_attention"]  # qwen3 defaults FA on
    new = vramscope.estimate("llama-3-8b", engine="ollama", ollama_version="0.31.0", gpus=["rtx-4090"])
    assert new.engine["scheduler"] == "llama-server"
    assert any("llama-server's fit places the layers" in a.render() for a in new.assumptions)
    two = vramscope.estimate("llama-3.1-70b", engine="ollama", num_gpus=2, num_parallel=2, gpus=["rtx-4090"])
    assert two.engine["num_parallel"] == 2 and two.engine["num_ctx"] == 131072  # 48 GiB of VRAM: the top tier


def test_llama_server_semantics_follow_the_version():
    """Ollama from v0.30.0 starts llama-server with -np given and neither --kv-unified nor --swa-full
    (llm/llama_server.go, v0.30.0-v0.32.15): one KV stream per sequence of GGML_PAD(n_ctx / n_seq, 256) cells;
    its llama.cpp (LLAMA_CPP_VERSION) keeps logits for n_parallel rows from v0.30.1 (b9479, after #23861 =
    b9460), n_ubatch rows at v0.30.0 (b9452)."""
    from vramscope.engines.ollama import server_semantics

    assert server_semantics("0.30.0") == {"llama_server": False, "kv_unified": False, "swa_full": False,
                                          "llamacpp_unpadded_ctx": False}
    assert server_semantics("0.30.1")["llama_server"] and server_semantics("0.32.15")["llama_server"]
    runs = {v: vramscope.estimate("llama-3-8b", engine="ollama", ollama_version=v, gpus=["rtx-4090"], seq=1100,
                                  num_parallel=3) for v in ("0.30.0", "0.32.15")}
    per_cell = 32 * 8 * 128 * 2 * 2  # layers × KV heads × head size × (K, V) × f16
    for e in runs.values():
        # -c 3300 -np 3: n_ctx 3328, three streams of GGML_PAD(1109, 256) = 1280 cells (unified: 3328)
        assert e.engine["kv_bytes"] == 3 * 1280 * per_cell
    old, new = runs["0.30.0"].engine, runs["0.32.15"].engine
    # the logits of 3 rows instead of the 512-token micro-batch: at least 509 × 128256 × 4 bytes less... the graph
    # allocator reuses buffers, so only the sign and a floor of the logits' own size are checked
    assert old["graph_full_bytes"] - new["graph_full_bytes"] >= 500 * 128256 * 4 // 2
    assert any("logits for 3 rows" in a.render() for a in runs["0.32.15"].assumptions)
    assert any("logits for 512 rows" in a.render() for a in runs["0.30.0"].assumptions)
