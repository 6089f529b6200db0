"""llama.cpp on several GPUs: --split-mode, --tensor-split, --main-gpu, --no-kv-offload, -b (issue #17).

Checked against llama.cpp's own load logs with two devices (the buffers it prints per device) and against the
placement rule of ``llama_model::load_tensors`` (src/llama-model.cpp)."""

import json
from pathlib import Path

import pytest

import vramscope
from vramscope.api import load_model, make_workload
from vramscope.engines.llamacpp import layer_devices, llamacpp_devices, row_split, split_points
from vramscope.errors import VramscopeError

MiB = 2**20


def test_two_gpu_model_buffers_match_koboldcpp_log():
    """LostRuins/koboldcpp#1882 (llama.cpp inside KoboldCpp 1.102.3, 2025-12-10):
    ``koboldcpp -m Cydonia-24B-v4zk-Q8_0.gguf -fa -c 150000 -b 4096 -ngl 99 -ts 1 1`` printed
    ``CUDA0 model buffer size = 11826.45 MiB``, ``CUDA1 model buffer size = 11380.14 MiB``,
    ``CUDA_Host model buffer size = 680.00 MiB`` (offloaded 41/41 layers). Cydonia-24B v4 is a Mistral-Small-24B
    fine-tune (40 layers, hidden 5120, vocab 131072, untied): 21 layers on CUDA0, 19 and the output on CUDA1."""
    m = load_model("mistralai/Mistral-Small-24B-Base-2501")
    w = make_workload(engine="llama.cpp", quant="Q8_0", seq=150272, ubatch=4096, flash_attn=True)
    devs, host, facts = llamacpp_devices(m, w, 2, tensor_split=[1, 1], n_batch=4096)
    assert [d.layers for d in devs] == [21, 19] and devs[1].output_layer
    assert devs[0].model_buffer_bytes / MiB == pytest.approx(11826.45, abs=0.01)
    assert devs[1].model_buffer_bytes / MiB == pytest.approx(11380.14, abs=0.01)
    assert host.model_buffer_bytes / MiB == pytest.approx(680.00, abs=0.01)
    assert facts["pipeline"]  # every layer offloaded, layer split, two devices


QWEN3_235B = {  # Qwen/Qwen3-235B-A22B config.json (the fields vramscope reads)
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 4096,
    "num_hidden_layers": 94, "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 128,
    "intermediate_size": 12288, "moe_intermediate_size": 1536, "num_experts": 128, "num_experts_per_tok": 8,
    "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "decoder_sparse_step": 1,
    "mlp_only_layers": [], "norm_topk_prob": True, "attention_bias": False,
}


def test_two_gpu_kv_buffers_match_log(tmp_path):
    """ikawrakow/ik_llama.cpp#500 (a llama.cpp fork, dual RTX 3090, 2025-06): Qwen3-235B-A22B at n_ctx 32768 with
    q8_0 K and V printed ``CUDA0 KV buffer size = 1632.02 MiB`` and ``CUDA1 KV buffer size = 1564.02 MiB``:
    the 95 layers split at 0.5 give 48 repeating layers to CUDA0 and 46 (and the output) to CUDA1, each layer
    32768 cells × 2 × 4 heads × 128 × 34/32 bytes = 34 MiB."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(QWEN3_235B))
    m = load_model(str(cfg))
    w = make_workload(engine="llama.cpp", quant="IQ3_S", seq=32768, cache_type_k="q8_0", cache_type_v="q8_0",
                      flash_attn=True)
    devs, host, _ = llamacpp_devices(m, w, 2)
    assert [d.layers for d in devs] == [48, 46]
    assert devs[0].kv_buffer_bytes / MiB == pytest.approx(1632.02, abs=0.03)
    assert devs[1].kv_buffer_bytes / MiB == pytest.approx(1564.02, abs=0.03)
    assert host.kv_buffer_bytes == 0


def test_layer_placement_rule():
    # upper_bound over the float32 split points of -ts 3,1: 0.75, 1.0
    assert split_points([3, 1]) == [0.75, 1.0]
    assert layer_devices(5, None, split_points([3, 1])) == [0, 0, 0, 0, 0, 1]
    # -ngl 10 of 80 layers on two equal devices: i_gpu_start = 71, the output layer counts as one of the ten
    placed = layer_devices(80, 10, split_points([1, 1]))
    assert placed[:71] == [None] * 71 and placed[71:76] == [0] * 5 and placed[76:] == [1] * 5
    # -ngl 0: everything on the CPU
    assert set(layer_devices(32, 0, split_points([1, 1]))) == {None}
    # a zero share gets no layer
    assert 0 not in layer_devices(32, None, split_points([0, 1]))


def test_row_split_rows():
    # get_row_split: boundaries rounded down to 128 rows, the last device takes the rest
    assert row_split(8192, [1, 1], 128) == [4096, 4096]
    assert row_split(1000, [1, 1], 128) == [384, 616]
    assert sum(row_split(28672, [3, 1, 2], 128)) == 28672


def _total(devs, host):
    return sum(d.model_buffer_bytes for d in devs) + host.model_buffer_bytes


def test_split_modes_conserve_the_model():
    m = load_model("llama-3-8b")
    w = make_workload(engine="llama.cpp", quant="Q4_K_M", seq=4096)
    one, host1, _ = llamacpp_devices(m, w, 1)
    layer, hl, fl = llamacpp_devices(m, w, 2, split_mode="layer")
    row, hr, fr = llamacpp_devices(m, w, 2, split_mode="row")
    none, hn, fn = llamacpp_devices(m, w, 2, split_mode="none", main_gpu=1)
    assert _total(one, host1) == _total(layer, hl) == _total(none, hn)
    assert abs(_total(row, hr) - _total(one, host1)) < 1024  # row slices of quantized blocks: integer division
    assert [d.device for d in none] == [1] and none[0].model_buffer_bytes == one[0].model_buffer_bytes
    # row: the matrices are spread, the KV cache follows the layer's device as under layer split
    assert [d.kv_buffer_bytes for d in row] == [d.kv_buffer_bytes for d in layer]
    assert abs(row[0].model_buffer_bytes - row[1].model_buffer_bytes) < 0.05 * row[0].model_buffer_bytes
    assert fl["pipeline"] and not fr["pipeline"] and not fn["pipeline"]


def test_no_kv_offload_and_batch():
    m = load_model("llama-3-8b")
    w = make_workload(engine="llama.cpp", quant="Q4_K_M", seq=8192, ubatch=512)
    devs, host, _ = llamacpp_devices(m, w, 2, kv_offload=False)
    assert all(d.kv_buffer_bytes == 0 for d in devs)
    assert host.kv_buffer_bytes == 32 * 8192 * 2 * 8 * 128 * 2  # every layer's f16 cache in host memory
    _, _, facts = llamacpp_devices(m, w, 2, n_batch=256)
    assert facts["n_ubatch"] == 256  # n_ubatch = min(n_batch, n_ubatch)


def test_pipeline_copies_inputs():
    """Pipeline parallelism (all layers offloaded) holds GGML_SCHED_MAX_COPIES = 4 copies of each device's inputs:
    with one layer left on the CPU it is off and the compute buffer drops by three copies of them."""
    m = load_model("llama-3-8b")
    full = make_workload(engine="llama.cpp", quant="Q4_K_M", seq=8192, flash_attn=True)
    part = make_workload(engine="llama.cpp", quant="Q4_K_M", seq=8192, flash_attn=True, n_gpu_layers=32)
    d_full, _, f_full = llamacpp_devices(m, full, 2)
    d_part, _, f_part = llamacpp_devices(m, part, 2)
    assert f_full["pipeline"] and not f_part["pipeline"]
    inputs = 8192 * 512 * 2 + 4096 * 512 * 4  # f16 KQ mask and the f32 hidden state of one micro-batch
    assert d_full[0].compute_buffer_bytes - d_part[0].compute_buffer_bytes == 3 * inputs


def test_estimate_answers_per_device():
    e = vramscope.estimate("qwen2.5-72b", engine="llama.cpp", quant="Q4_K_M", num_gpus=2)
    devs = e.engine["devices"]
    assert [d["device"] for d in devs] == [0, 1]
    assert [d["layers"] for d in devs] == [41, 39] and devs[1]["output_layer"]
    top = max(devs, key=lambda d: d["model_buffer_bytes"] + d["kv_buffer_bytes"] + d["compute_buffer_bytes"])
    assert e.engine["gpu"]["model_buffer_bytes"] == top["model_buffer_bytes"]
    one = vramscope.estimate("qwen2.5-72b", engine="llama.cpp", quant="Q4_K_M")
    assert "devices" not in one.engine  # one GPU: the report is unchanged
    assert e.total_bytes < 0.6 * one.total_bytes


@pytest.mark.parametrize("name, kw", [
    ("llama-3-8b", dict(quant="Q4_K_M", seq=8192)), ("gemma-2-9b", dict(quant="Q4_K_M", n_gpu_layers=20)),
    ("deepseek-v2-lite", dict(quant="Q4_K_M", flash_attn=True)), ("mixtral-8x7b", dict(quant="Q8_0", n_gpu_layers=0)),
    ("qwen2.5-7b", dict(quant="Q4_K_M", n_gpu_layers=28, cache_type_k="q8_0", cache_type_v="q8_0", flash_attn=True)),
])
def test_one_device_is_the_single_gpu_model(name, kw):
    """On one device the placement rule gives exactly the single-GPU buffers (checked against llama.cpp's logs in
    test_engines.py): the two paths cannot drift apart."""
    from vramscope.engines.llamacpp import llamacpp_inference

    m = load_model(name)
    w = make_workload(engine="llama.cpp", **kw)
    _, r = llamacpp_inference(m, w, [])
    (d,), host, _ = llamacpp_devices(m, w, 1)
    assert (d.model_buffer_bytes, d.kv_buffer_bytes, d.compute_buffer_bytes) == \
        (r.gpu.model_buffer_bytes, r.gpu.kv_buffer_bytes, r.gpu.compute_buffer_bytes)
    assert host == r.host


def test_published_two_gpu_record_validates():
    """validation/published.jsonl's koboldcpp#1882 record goes through validate (the llama.cpp record translation
    with -ts): every printed buffer within 0.01%."""
    from pathlib import Path

    from vramscope.validate import validate

    path = Path(__file__).resolve().parent.parent / "validation" / "published.jsonl"
    recs = [json.loads(ln) for ln in path.read_text().splitlines() if "koboldcpp-issue1882" in ln]
    rows = validate(recs)
    assert {r.component for r in rows} == {"model_buffer_cuda0", "model_buffer_cuda1", "host_model_buffer"}
    for r in rows:
        assert not r.skipped and abs(r.analytic_bytes - r.measured_bytes) <= 1e-4 * r.measured_bytes


def test_row_split_compute_and_kv_buffers_per_device_against_a_log():
    """ggml-org/llama.cpp#13661 (4 × K80, -sm row, Qwen3-30B-A3B Q8_0, n_ctx 30016, no flash attention): every
    device's compute buffer within 0.5% (1958.63 MiB each), CUDA2's and CUDA3's KV buffers (12 and 11 whole
    layers) and the CUDA_Host compute buffer (the graph inputs: KQ mask and embeddings) exact to the printed
    hundredth of a MiB."""
    path = Path(__file__).resolve().parent.parent / "validation" / "published.jsonl"
    recs = [json.loads(ln) for ln in path.read_text().splitlines() if "issue13661" in ln]
    from vramscope.validate import validate

    rows = {r.component: r for r in validate(recs)}
    assert set(rows) == {"compute_buffer_cuda0", "compute_buffer_cuda1", "compute_buffer_cuda2",
                         "compute_buffer_cuda3", "kv_buffer_cuda2", "kv_buffer_cuda3", "host_compute_buffer"}
    for name, r in rows.items():
        tol = 0.005 if name.startswith("compute") else 0.01 * 2**20 / r.measured_bytes
        assert not r.skipped and abs(r.analytic_bytes / r.measured_bytes - 1) <= tol, name


def test_host_compute_buffer_is_the_graph_inputs():
    """fedora-copr/logdetective#106: a 4096-wide, 32-head 7B (the log's KV 4096 MiB at 32768: 32 layers of 8 KV
    heads; the two compute buffers depend only on the width, the heads and the context, Mistral-7B's here) at -c 2048 and 32768, n_ubatch 512, no flash attention: 'CUDA0 compute buffer size'
    164.00 / 2144.00 MiB and 'CUDA_Host compute buffer size' 12.01 / 72.01 MiB (the KQ mask n_ctx × 512 f32 and
    the 4096 × 512 f32 embeddings)."""
    MiB = 2**20
    for ctx, gpu, host in ((2048, 164.00, 12.01), (32768, 2144.00, 72.01)):
        e = vramscope.estimate("mistral-7b", engine="llama.cpp", quant="Q4_K_M", seq=ctx, flash_attn=False)
        assert e.engine["gpu"]["compute_buffer_bytes"] == gpu * MiB
        assert abs(e.engine["host"]["compute_buffer_bytes"] / MiB - host) < 0.015
