"""SGLang (issue #17): mem_fraction_static, the token pool and its defaults, checked against SGLang's own logs."""

import vramscope
from vramscope.api import load_model, make_workload
from vramscope.engines.sglang import (default_mem_fraction, gpu_defaults, max_running_requests, sglang_inference,
                                      token_pool)
from vramscope.gpus import find_gpu

GiB = 2**30


def test_default_fraction_matches_log():
    """SGLang's ServerArgs as printed on an H100 80GB (sglang docs, offline engine notebook, 2026-02-05, tp 1):
    ``mem_fraction_static=0.835 ... chunked_prefill_size=8192``: reserved 512 + 1.5 × 8192 + 2 × 256 + 1024/8 MB."""
    h100 = find_gpu("h100-sxm")
    cps, bs = gpu_defaults(h100.memory_bytes / 2**20, 1)
    assert (cps, bs) == (8192, 256)
    assert default_mem_fraction(h100.memory_bytes / 2**20, cps, bs, 1) == 0.835
    # a 24 GB card: 2048-token chunks, 24 graphs; tp 4 captures up to 80
    assert gpu_defaults(24 * 1024, 1) == (2048, 24) and gpu_defaults(24 * 1024, 4) == (2048, 80)


def test_cell_size_matches_log():
    """vllm-project/vllm#21348: SGLang with Qwen3-235B-A22B-FP8 on 4×H100 (--tp 4) logged
    ``KV Cache is allocated. #tokens: 367404, K size: 8.23 GB, V size: 8.23 GB``: one KV head of 128 per rank
    (4 heads over 4 ranks), 94 layers, bf16."""
    m = load_model("qwen3-235b-a22b")
    w = make_workload(engine="sglang", num_gpus=4, parallelism="tp")
    _, report = sglang_inference(m, w, 0, 2.0, (), [])
    assert report.cell_size == 94 * 1 * 128 * 2 * 2
    assert round(367404 * report.cell_size / 2 / GiB, 2) == 8.23


def test_token_pool_rule():
    # rest = (total - weights) - total × (1 - mfs)
    pool, tokens = token_pool(70 * GiB, 15 * GiB, 0.8, 131072)
    assert tokens == int((70 * 0.8 - 15) * GiB // 131072) and pool == tokens * 131072
    assert token_pool(70 * GiB, 15 * GiB, 0.8, 131072, max_total_tokens=1000)[1] == 1000
    assert token_pool(10 * GiB, 15 * GiB, 0.8, 131072) == (0, 0)
    assert max_running_requests(400_000, 131072) == 2048 and max_running_requests(10**7, 8192) == 4096


def test_estimate_sglang():
    e = vramscope.estimate("llama-3.1-8b", engine="sglang", gpus=["h100-sxm", "rtx-4090"])
    h100, ada = e.engine["per_gpu"]
    assert h100["mem_fraction_static"] == 0.835 and h100["max_total_num_tokens"] > 300_000
    assert e.gpus[0].verdict == "fits" and e.gpus[1].verdict == "tight"  # 40k tokens < 131072 context
    tp2 = vramscope.estimate("llama-3.1-8b", engine="sglang", num_gpus=2, gpus=["h100-sxm"])
    assert tp2.engine["cell_size"] * 2 == e.engine["cell_size"]
