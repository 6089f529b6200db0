"""Engine profiles: llama.cpp buffers and quantization mixes, vLLM's KV pool, engine options."""

import pytest

import vramscope
from vramscope.errors import VramscopeError
from vramscope.memory.gguf_mix import gguf_tensors
from vramscope.sources import resolve

MiB = 2**20


@pytest.mark.parametrize("ftype, printed_mib", [
    # llama.cpp's own "CUDA0 buffer size" for LLaMA-7B-shaped models, all layers offloaded (validation/)
    ("F16", 12603.02), ("Q8_0", 6695.84), ("Q4_0", 3577.56), ("Q4_1", 3963.56), ("Q4_K_M", 3820.94),
    ("Q5_K_M", 4474.94),
])
def test_gguf_mix_matches_llama_cpp_buffers(ftype, printed_mib):
    spec = resolve("llama-2-7b").spec
    gpu = sum(t.nbytes for t in gguf_tensors(spec, ftype) if not t.name.endswith("embed_tokens.weight"))
    assert gpu / MiB == pytest.approx(printed_mib, abs=0.02)


def test_q4_k_m_mix_rules():
    spec = resolve("llama-2-7b").spec
    types = {t.name: t.ggml_type for t in gguf_tensors(spec, "Q4_K_M")}
    assert types["lm_head.weight"] == "Q6_K"
    assert types["model.layers.0.mlp.down_proj.weight"] == "Q6_K"  # use_more_bits: first eighth
    assert types["model.layers.5.mlp.down_proj.weight"] == "Q4_K"
    assert types["model.layers.6.mlp.down_proj.weight"] == "Q6_K"  # (6 - 4) % 3 == 2
    assert types["model.layers.10.self_attn.q_proj.weight"] == "Q4_K"
    assert types["model.norm.weight"] == "F32"
    mix = {t.ggml_type for t in gguf_tensors(resolve("mixtral-8x7b").spec, "Q4_K_M")}
    assert "Q8_0" in mix  # 8-expert models keep attn_v / attn_k at Q8_0


@pytest.mark.parametrize("ctx, compute_mib", [(2048, 164.00), (512, 70.50)])
def test_llama_cpp_buffers(ctx, compute_mib):
    e = vramscope.estimate("llama-2-7b", engine="llama.cpp", quant="Q4_K_M", seq=ctx)
    g = e.engine["gpu"]
    assert g["kv_buffer_bytes"] == ctx * 32 * 2 * 4096 * 2
    assert g["compute_buffer_bytes"] / MiB == pytest.approx(compute_mib, abs=0.01)
    assert g["model_buffer_bytes"] / MiB == pytest.approx(3820.94, abs=0.02)
    assert e.engine["host"]["model_buffer_bytes"] > 0  # the token embedding stays in host memory


def test_llama_cpp_partial_offload_and_cache_types():
    full = vramscope.estimate("llama-3-8b", engine="llama.cpp", quant="Q4_K_M", seq=8192)
    # -ngl 17 of 32 layers: the output layer first, then the last 16 layers (llama.cpp #18148)
    half = vramscope.estimate("llama-3-8b", engine="llama.cpp", quant="Q4_K_M", seq=8192, n_gpu_layers=17)
    assert half.engine["gpu"]["model_buffer_bytes"] < full.engine["gpu"]["model_buffer_bytes"] / 1.8
    assert half.engine["host"]["kv_buffer_bytes"] == half.engine["gpu"]["kv_buffer_bytes"]
    assert (half.engine["n_gpu_layers"], half.engine["output_on_gpu"]) == (16, True)
    q8 = vramscope.estimate("llama-3-8b", engine="llama.cpp", quant="Q4_K_M", seq=8192, cache_type_k="q8_0",
                            cache_type_v="q8_0", flash_attn=True)
    assert q8.engine["gpu"]["kv_buffer_bytes"] == int(full.engine["gpu"]["kv_buffer_bytes"] * 34 / 64)
    assert q8.engine["gpu"]["compute_buffer_bytes"] < full.engine["gpu"]["compute_buffer_bytes"]


def test_llama_cpp_tied_output_copy_follows_ngl():
    """No GGUF file: a tied model (Gemma 2) gets llama.cpp's TENSOR_DUPLICATED output layer too, a second copy of
    the embedding in its stored type (Q6_K, the output rule of the mix) on the GPU whenever -ngl >= 1 puts the
    output layer there; -ngl 0 keeps one copy, in host memory."""
    spec = resolve("gemma-2-9b").spec
    n = spec.num_layers
    emb = next(t.nbytes for t in gguf_tensors(spec, "Q4_K_M") if t.name.endswith("embed_tokens.weight"))
    total = sum(t.nbytes for t in gguf_tensors(spec, "Q4_K_M"))
    run = {ngl: vramscope.estimate("gemma-2-9b", engine="llama.cpp", quant="Q4_K_M", n_gpu_layers=ngl).engine
           for ngl in (0, 1, n, n + 1)}
    assert run[n + 1]["gpu"]["model_buffer_bytes"] == total  # everything but the input embedding, plus its copy
    assert run[n + 1]["host"]["model_buffer_bytes"] == emb
    assert run[0]["gpu"]["model_buffer_bytes"] == 0 and run[0]["host"]["model_buffer_bytes"] == total
    assert run[1]["gpu"]["model_buffer_bytes"] == emb + spec.hidden_size * 4  # the copy and the F32 output norm
    assert run[n]["gpu"]["model_buffer_bytes"] + run[n]["host"]["model_buffer_bytes"] == total + emb
    assert run[n]["output_on_gpu"] and run[n]["n_gpu_layers"] == n - 1
    untied = {ngl: vramscope.estimate("llama-2-7b", engine="llama.cpp", quant="Q4_K_M", n_gpu_layers=ngl).engine
              for ngl in (1, 33)}
    assert untied[33]["gpu"]["model_buffer_bytes"] / MiB == pytest.approx(3820.94, abs=0.02)  # no copy
    out = next(t.nbytes for t in gguf_tensors(resolve("llama-2-7b").spec, "Q4_K_M") if t.name == "lm_head.weight")
    assert untied[1]["gpu"]["model_buffer_bytes"] == out + 4096 * 4


def test_llama_cpp_from_gguf_file(tmp_path):
    gguf = pytest.importorskip("gguf")
    from test_gguf import write_gguf

    path = tmp_path / "m.gguf"
    expected = write_gguf(path)
    e = vramscope.estimate(str(path), engine="llama.cpp", seq=1024)
    assert e.engine["gpu"]["model_buffer_bytes"] == sum(v for k, v in expected.items() if k != "token_embd.weight")
    assert e.engine["host"]["model_buffer_bytes"] == expected["token_embd.weight"]
    del gguf


def test_vllm_pool_and_concurrency():
    e = vramscope.estimate("llama-3-8b", engine="vllm", max_model_len=8192, gpus=["h100"])
    eng = e.engine
    per = eng["per_gpu"][0]
    assert eng["weights_bytes"] == 2 * 8_030_261_248
    assert per["budget_bytes"] == int(0.9 * e.gpus[0].usable_bytes)
    assert per["kv_pool_bytes"] == per["budget_bytes"] - eng["weights_bytes"] - eng["activation_peak_bytes"] \
        - eng["non_torch_bytes"] - eng["cuda_graph_bytes"]
    assert eng["kv_bytes_per_token"] == 32 * 2 * 8 * 128 * 2
    assert per["kv_tokens"] % 16 == 0 and per["kv_tokens"] * eng["kv_bytes_per_token"] <= per["kv_pool_bytes"]
    assert e.total_bytes == per["budget_bytes"]  # vLLM preallocates its share
    fp8 = vramscope.estimate("llama-3-8b", engine="vllm", kv_dtype="fp8", gpus=["h100"])
    assert fp8.engine["kv_bytes_per_token"] == eng["kv_bytes_per_token"] // 2


def test_vllm_refuses_too_long_and_mla_latent():
    e = vramscope.estimate("llama-3-70b", engine="vllm", gpus=["a100-80gb"], num_gpus=2)
    assert e.engine["per_gpu"][0]["kv_tokens"] > 0
    small = vramscope.estimate("qwen2.5-7b", engine="vllm", max_model_len=32768, gpus=["16GB"])
    assert small.gpus[0].verdict == "no"
    assert any("refuse" in a.render() for a in small.assumptions)
    v3 = vramscope.estimate("deepseek-ai/DeepSeek-V3", engine="vllm", num_gpus=8)
    # MLA: the latent (kv_lora_rank 512 + rope 64) per layer, bf16, replicated on every tensor-parallel rank
    assert v3.engine["kv_bytes_per_token"] == 61 * 576 * 2


def test_engine_options_are_checked():
    with pytest.raises(VramscopeError, match="max_model_len: is a vllm option; add engine='vllm'"):
        vramscope.estimate("llama-3-8b", max_model_len=4096)
    with pytest.raises(VramscopeError, match="n_gpu_layers: is a llama.cpp option; add engine='llama.cpp'"):
        vramscope.estimate("llama-3-8b", n_gpu_layers=10)
    with pytest.raises(VramscopeError, match="GGUF type"):
        vramscope.estimate("llama-3-8b", quant="Q4_K_M")
    with pytest.raises(VramscopeError, match="^gpu_memory_utilization: "):
        vramscope.estimate("llama-3-8b", engine="vllm", gpu_memory_utilization=1.5)
    with pytest.raises(VramscopeError, match="inference engine"):
        vramscope.estimate("llama-3-8b", engine="vllm", task="finetune")


def test_fit_with_engines():
    a = vramscope.fit("llama-3-8b", engine="vllm", gpu="rtx-4090")
    assert a.fits and a.max_concurrency and a.max_concurrency >= 1
    b = vramscope.fit("llama-3-70b", engine="llama.cpp", quant="Q4_K_M", gpu="rtx-4090")
    ngl = [s for s in b.suggestions if s.changes.get("n_gpu_layers")]
    assert ngl and ngl[0].fits
    n = ngl[0].changes["n_gpu_layers"]
    over = vramscope.estimate("llama-3-70b", engine="llama.cpp", quant="Q4_K_M", n_gpu_layers=n + 1)
    assert over.total_bytes > b.gpu.usable_bytes


def test_instruct_variants_resolve_to_their_base():
    # an Instruct id the catalog does not hold itself (Llama-3.1-8B-Instruct now has its own published config)
    m = resolve("meta-llama/Llama-3.1-405B-Instruct")
    assert m.params == resolve("meta-llama/Llama-3.1-405B").params and any("variant" in n for n in m.notes)
    own = resolve("meta-llama/Llama-3.1-8B-Instruct")
    assert own.params == 8_030_261_248 and not any("variant" in n for n in own.notes)


def test_transformers_static_cache_caps_sliding_layers():
    dyn = vramscope.estimate("gemma-2-9b", seq=8192, dtype="bf16")
    static = vramscope.estimate("gemma-2-9b", seq=8192, cache="static", dtype="bf16")
    per_token_layer = 2 * 8 * 256 * 2
    assert dyn.components["kv_cache"] == per_token_layer * 42 * 8192
    assert static.components["kv_cache"] == per_token_layer * (21 * 4096 + 21 * 8192)
    with pytest.raises(VramscopeError, match="transformers option"):
        vramscope.estimate("gemma-2-9b", engine="vllm", cache="static")


def test_cublas_workspace_by_generation():
    from vramscope.memory.overhead import CUBLAS_WORKSPACE, CUBLAS_WORKSPACE_LARGE, CUBLAS_WORKSPACE_MI300

    a = vramscope.estimate("qwen2.5-0.5b", gpus=["a100-80gb"]).components["overhead"]
    h = vramscope.estimate("qwen2.5-0.5b", gpus=["h100"]).components["overhead"]
    m = vramscope.estimate("qwen2.5-0.5b", gpus=["mi300x"]).components["overhead"]
    assert h - a == CUBLAS_WORKSPACE_LARGE - CUBLAS_WORKSPACE == 32 * 2**20 - 8_519_680
    assert m - a == CUBLAS_WORKSPACE_MI300 - CUBLAS_WORKSPACE


def test_llama_cpp_ngl0_says_the_gpu_still_runs_prompt_batches():
    """Issue #17: at -ngl 0 llama.cpp's scheduler still runs prompt batches of >= 32 tokens on the GPU (op offload,
    ggml_backend_cuda_device_offload_op's min_batch_size), copying each host weight into a GPU compute buffer that
    vramscope does not size; the estimate says so instead of implying the GPU is idle. Below 32 tokens it is idle."""
    from vramscope.engines.llamacpp import OP_OFFLOAD_MIN_BATCH

    def note_ids(**kw):
        e = vramscope.estimate("llama-3-8b", engine="llama.cpp", quant="Q4_K_M", **kw)
        return e, {a.key for a in e.assumptions}

    e, ids = note_ids(n_gpu_layers=0)
    assert "a_llamacpp_op_offload" in ids and e.engine["gpu"]["compute_buffer_bytes"] == 0
    assert OP_OFFLOAD_MIN_BATCH == 32
    _, ids = note_ids(n_gpu_layers=0, ubatch=16)
    assert "a_llamacpp_op_offload" not in ids
    _, ids = note_ids(n_gpu_layers=1)
    assert "a_llamacpp_op_offload" not in ids
    # llama.cpp's --no-op-offload keeps those ops on the CPU: the GPU then computes nothing at -ngl 0
    off, ids = note_ids(n_gpu_layers=0, no_op_offload=True)
    assert "a_llamacpp_op_offload" not in ids and off.engine["gpu"]["compute_buffer_bytes"] == 0


def test_llama_cpp_partial_offload_says_host_layers_run_on_the_gpu_too():
    """Issue #17, read at 82bb48500 (ggml/src/ggml-backend.cpp ``ggml_backend_sched_backend_id_from_cur``, pass 2
    of ``ggml_backend_sched_split_graph``): a host layer's weights sit in a host buffer (CPU_Mapped with mmap, the
    GPU's host buffer type without), so with op offload its prompt ops run on the GPU and its weights and K/V views
    are copied into the GPU compute buffer, which vramscope does not size; the estimate says so for every -ngl that
    leaves a repeating layer on the host (1..n_layer), not at full offload, below 32 tokens or with
    --no-op-offload, and the compute buffer it prints is unchanged by the statement."""
    def note(**kw):
        e = vramscope.estimate("llama-3-8b", engine="llama.cpp", quant="Q4_K_M", **kw)
        return e, {a.key: a for a in e.assumptions}

    e16, ids = note(n_gpu_layers=16)
    assert ids["a_llamacpp_op_offload_partial"].params["n"] == 17  # layers 0..16 (32 - 15 repeating on the GPU)
    _, ids = note(n_gpu_layers=32)
    assert ids["a_llamacpp_op_offload_partial"].params["n"] == 1
    for kw in ({"n_gpu_layers": 33}, {"n_gpu_layers": 0}, {"n_gpu_layers": 16, "ubatch": 16},
               {"n_gpu_layers": 16, "no_op_offload": True}):
        _, ids = note(**kw)
        assert "a_llamacpp_op_offload_partial" not in ids, kw
    off, _ = note(n_gpu_layers=16, no_op_offload=True)
    assert off.engine["gpu"]["compute_buffer_bytes"] == e16.engine["gpu"]["compute_buffer_bytes"] > 0
