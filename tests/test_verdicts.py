"""One rule for every engine: the number a verdict compares with the GPU is the number shown, and headroom is the
memory it may use minus that number (issue #16)."""

import pytest

import vramscope
from vramscope.gpus import find_gpu
from vramscope.plan import fit

CASES = [
    dict(model="llama-3-8b"),
    dict(model="llama-3-8b", seq=65536, batch=4),
    dict(model="llama-3-8b", engine="vllm", max_model_len=8192),
    dict(model="qwen2.5-72b", engine="vllm", quant="awq-4bit", num_gpus=2),  # refuses to start on a 4090
    dict(model="qwen2.5-7b", engine="vllm", max_model_len=32768),
    dict(model="llama-3-8b", engine="llama.cpp", quant="Q4_K_M", seq=8192),
    dict(model="llama-3-8b", task="finetune", method="qlora"),
]
GPUS = ["rtx-4090", "h100", "rtx-4060-ti-16gb"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(f"{k}={v}" for k, v in c.items()))
def test_verdict_headroom_and_shown_number_agree(case):
    kw = dict(case)
    model = kw.pop("model")
    e = vramscope.estimate(model, gpus=GPUS, **kw)
    for g in e.gpus:
        assert (g.verdict == "no") == (g.headroom_bytes < 0), (g.name, g.verdict, g.headroom_bytes)
        if e.engine.get("name") == "vllm":
            per = next(p for p in e.engine["per_gpu"] if p["gpu"] == g.name)
            assert g.headroom_bytes == per["budget_bytes"] - e.engine["min_bytes"]
        else:
            assert g.headroom_bytes == g.usable_bytes - e.total_bytes
    if e.engine.get("name") == "vllm":
        per = e.engine["per_gpu"][0]
        # the total shown is the share vLLM preallocates, or what it needs when that share cannot hold one sequence
        assert e.total_bytes == (per["budget_bytes"] if per["fits_max_model_len"] else e.engine["min_bytes"])
        assert e.total_bytes >= e.engine["min_bytes"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(f"{k}={v}" for k, v in c.items()))
def test_fit_headroom_is_budget_minus_needed(case):
    kw = dict(case)
    model = vramscope.load_model(kw.pop("model"))
    from vramscope.workload import make_workload

    w = make_workload(**kw)
    for name in GPUS:
        a = fit(model, w, find_gpu(name), suggestions=False)
        assert a.headroom_bytes == a.budget - a.needed_bytes
        assert a.fits == (a.headroom_bytes >= 0)
        assert a.to_dict()["headroom_bytes"] == a.headroom_bytes


def test_vllm_table_says_what_it_preallocates():
    from vramscope.present.table import render_estimate

    e = vramscope.estimate("llama-3-8b", engine="vllm", max_model_len=8192, gpus=["h100"])
    out = render_estimate(e)
    # vllm serve on an H100 batches up to 1024 sequences (vLLM 0.33.0's get_batch_defaults): the profile run's
    # logits for 1024 rows (1.47 GiB with the sampler's copies) where 256 were assumed before
    assert "total (preallocated)" in out and "needs 18.93 GiB" in out and "440,320 tokens" in out
    refused = vramscope.estimate("qwen2.5-72b", engine="vllm", quant="awq-4bit", num_gpus=2, gpus=["rtx-4090"])
    out = render_estimate(refused)
    assert "total (needed)" in out and "does not fit" in out and "refuse" in out


def test_llamacpp_ladder_walks_every_gguf_type():
    """fit with llama.cpp walks every GGUF type: the 70B at 8,192 tokens fits a 4090 fully at IQ2_XXS (2.16 bits
    per weight), Q4_K_M only with part of its layers; each rung agrees with a plain estimate of that type."""
    from vramscope.memory.gguf_mix import GGUF_FTYPES
    from vramscope.present.table import render_fit
    from vramscope.workload import make_workload

    model = vramscope.load_model("llama-3-70b")
    gpu = find_gpu("rtx-4090")
    a = fit(model, make_workload(engine="llama.cpp", seq=8192), gpu)
    rungs = {r.quant: r for r in a.ladder}
    assert set(rungs) == set(GGUF_FTYPES)
    assert [r.bits_per_weight for r in a.ladder] == sorted((r.bits_per_weight for r in a.ladder), reverse=True)
    assert rungs["IQ2_XXS"].fits and not rungs["Q4_K_M"].fits and 0 < rungs["Q4_K_M"].n_gpu_layers < 81
    for q in ("IQ2_XXS", "Q2_K", "Q4_K_M"):
        e = vramscope.estimate("llama-3-70b", engine="llama.cpp", quant=q, seq=8192)
        assert rungs[q].total_bytes == e.total_bytes and rungs[q].fits == (e.total_bytes <= gpu.usable_bytes)
    part = vramscope.estimate("llama-3-70b", engine="llama.cpp", quant="Q4_K_M", seq=8192,
                              n_gpu_layers=rungs["Q4_K_M"].n_gpu_layers)
    more = vramscope.estimate("llama-3-70b", engine="llama.cpp", quant="Q4_K_M", seq=8192,
                              n_gpu_layers=rungs["Q4_K_M"].n_gpu_layers + 1)
    assert part.total_bytes <= gpu.usable_bytes < more.total_bytes
    assert any(s.changes.get("quant") == "IQ2_XS" and s.fits for s in a.suggestions)
    out = render_fit(a)
    assert "IQ2_XXS" in out and "--quant IQ2_XS" in out
    assert any("--quant Q4_K_M" in line and "--n-gpu-layers" in line for line in out.splitlines())
    assert max(len(line) for line in out.splitlines() if "vramscope fit" not in line and " - " not in line) <= 100
