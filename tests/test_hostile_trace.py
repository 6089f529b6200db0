"""Hostile input to ``vramscope trace`` (issue #11).

Every option, the model, the GPUs and the trace's own bounds (layers, parameters, FSDP ranks, loss chunks,
tensor sizes) are checked before torch is imported: a refusal is one line, exit 2, in milliseconds. What the
model code raises while tracing becomes one line too, and a wall-clock ``--timeout`` stops a trace cleanly.

The refusals run in one subprocess, in-process case after case, so that the test can see torch was never
imported (``'torch' not in sys.modules``); the cases that trace run on tiny models.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import requires_torch
from fixtures import TINY_LLAMA, llama_tensors, write_safetensors
from hostile_util import assert_clean, run_cli, run_cli_subprocess

TESTS = os.path.dirname(os.path.abspath(__file__))

TINY_T5 = {
    "model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": 64, "d_kv": 16, "num_heads": 4,
    "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "vocab_size": 256, "decoder_start_token_id": 0,
    "pad_token_id": 0, "eos_token_id": 1, "feed_forward_proj": "relu", "tie_word_embeddings": True,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "torch_dtype": "float32",
}

_PROBE = r"""
import json, sys
sys.path.insert(0, {tests!r})
from hostile_util import run_cli
results = []
for argv in json.loads(sys.stdin.read()):
    rc, out, err = run_cli(argv)
    results.append({{"argv": argv, "rc": rc, "err": err[-3000:], "out": out[-500:], "torch": "torch" in sys.modules}})
print(json.dumps(results))
"""


def probe(cases: list[list[str]], timeout: float = 120.0) -> list[dict]:
    """Run ``vramscope ARGV`` for every case in one fresh interpreter; each result says whether torch was loaded."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("VRAMSCOPE_DEBUG", None)
    try:
        p = subprocess.run([sys.executable, "-c", _PROBE.format(tests=TESTS)], input=json.dumps(cases), text=True,
                           capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"hang: {len(cases)} trace refusals ran past {timeout} s") from None
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def assert_refused_before_torch(results: list[dict]) -> None:
    for r in results:
        assert_clean(r["rc"], r["out"], r["err"], r["argv"])
        assert r["rc"] == 2, (r["argv"], r["rc"], r["err"][-300:])
        assert not r["torch"], f"torch was imported before refusing {r['argv']!r}"


def _dirs(tmp_path) -> dict[str, str]:
    """Model sources the trace cannot build: safetensors without config.json, a GPTQ checkpoint."""
    bare = tmp_path / "bare"
    bare.mkdir()
    write_safetensors(bare / "model.safetensors", {k: ("BF16", s) for k, s in llama_tensors().items()})
    gptq = tmp_path / "gptq"
    gptq.mkdir()
    (gptq / "config.json").write_text(json.dumps(dict(TINY_LLAMA, quantization_config={
        "quant_method": "gptq", "bits": 4, "group_size": 32})))
    tensors = {}
    for name, shape in llama_tensors().items():
        if ".layers." in name and name.endswith("proj.weight"):
            out_f, in_f = shape
            base = name[: -len(".weight")]
            tensors[base + ".qweight"] = ("I32", (in_f // 8, out_f))
            tensors[base + ".qzeros"] = ("I32", (in_f // 32, out_f // 8))
            tensors[base + ".scales"] = ("F16", (in_f // 32, out_f))
            tensors[base + ".g_idx"] = ("I32", (in_f,))
        else:
            tensors[name] = ("F16", shape)
    write_safetensors(gptq / "model.safetensors", tensors)
    return {"bare": str(bare), "gptq": str(gptq)}


FT = ["--task", "finetune"]
PT = ["--task", "pretrain", "--framework", "torchtitan", "--precision", "mixed", "--parallelism", "fsdp"]
#: (argv after "trace", a phrase the one line must contain)
REFUSALS = [
    # the work is bounded before it starts
    (["--params", "1e14"], "limit of 200 layers"),
    (["--params", "150b", "--layers", "500", "--hidden", "4096"], "limit of 200 layers"),
    (["--params", "7b", "--layers", "10000"], "10000"),
    (["--params", "3T", "--layers", "150"], "limit of 2.00T"),
    (["llama-3-8b", *FT, "--gpus", "2000"], "1,024 ranks"),
    (["llama-3-70b", *FT, "--gpus", "1000"], "65,536 rank-layers"),
    (["llama-3-8b", *FT, "--chunked-ce", "5000"], "1,024 chunks"),
    (["llama-3-8b", "--batch", "1000000", "--seq", "100000000"], "64-bit"),
    # lengths the model cannot take
    (["bert-base-uncased", "--seq", "100000"], "learned position"),
    (["roberta-base", "--seq", "513"], "512"),
    (["gpt2", *FT, "--seq", "1025"], "1024"),
    # options checked before any tracing
    (["llama-3-8b", "--gpu", "nope"], "not a known GPU"),
    (["llama-3-8b", "--gpu", "a100", "--gpu", "h100", "--gpu", "no-such-gpu"], "no-such-gpu"),
    (["llama-3-8b", "--gpu-memory", "lots"], "--gpu-memory"),
    (["llama-3-8b", "--gpu", "auto"], "--gpu"),
    (["llama-3-8b", "--timeout", "0"], "--timeout"),
    (["llama-3-8b", "--timeout", "-5"], "--timeout"),
    (["llama-3-8b", "--timeout", "nan"], "--timeout"),
    (["llama-3-8b", "--timeout", "1e9"], "--timeout"),
    (["llama-3-8b", "--timeout", ""], "--timeout"),
    (["no-such-model-xyz"], "no-such-model-xyz"),
    # what the trace does not run
    (["llama-3-8b", "--engine", "vllm"], "vramscope estimate llama-3-8b --engine vllm"),
    (["llama-3-8b", "--engine", "llama.cpp"], "llama.cpp"),
    (["llama-3-8b", "--estimator", "seed"], "--estimator"),
    (["llama-3-8b", "--cache", "static"], "dynamic cache"),
    (["llama-3-8b", *FT, "--method", "qlora"], "bitsandbytes"),
    (["llama-3-8b", "--quant", "int4"], "bitsandbytes"),
    (["llama-3-8b", "--quant", "gptq-4bit"], "gptq"),
    (["llama-3-8b", "--kv-dtype", "fp8"], "quantized KV"),
    (["llama-3-8b", "--gpus", "2"], "model-parallel"),
    (["llama-3-8b", *FT, "--gpus", "2", "--parallelism", "zero3"], "multi-GPU"),
    (["llama-3-8b", *FT, "--zero", "2", "--gpus", "8"], "multi-GPU"),
    (["llama-3-8b", *FT, "--gpus", "4", "--fsdp-version", "1"], "multi-GPU"),
    (["llama-3-8b", *FT, "--tp", "2", "--gpus", "2"], "model-parallel"),
    # pipeline parallelism is traced as torchtitan runs it (trace/pipeline.py); what it does not run is refused
    (["llama-3-8b", *FT, "--pp", "2", "--gpus", "4"], "as torchtitan runs it"),
    (["llama-3-8b", *PT, "--pp", "2", "--gpus", "2"], "at least 2 GPUs inside each of the 2 stages"),
    (["llama-3-8b", *PT, "--pp", "2", "--gpus", "4", "--pp-schedule", "zbv"], "traced: 1f1b, gpipe, interleaved"),
    (["llama-3-8b", *PT, "--pp", "2", "--gpus", "8", "--tp", "2"], "without tensor, context or expert"),
    (["llama-3-8b", "--pp", "2", "--gpus", "4", "--framework", "torchtitan"], "vLLM"),
    (["llama-3-8b", *FT, "--framework", "torchtitan", "--parallelism", "fsdp", "--method", "lora", "--pp", "2",
      "--gpus", "4"], "full training only"),
    (["llama-3-8b", *PT, "--pp", "2", "--gpus", "4", "--chunked-ce", "4"], "full training only"),
    (["llama-3-8b", *PT[:-2], "--pp", "2", "--gpus", "4", "--parallelism", "ddp"], "FSDP2"),
    (["llama-3-8b", *PT, "--pp", "40", "--gpus", "80"], "--pp"),
    (["llama-3-8b", *PT, "--pp", "3", "--gpus", "8"], "pp 3"),
    (["llama-3-8b", *FT, "--sp", "2", "--gpus", "2", "--sp-mode", "ulysses"], "Ulysses"),
    (["llama-3-8b", *FT, "--sp", "4", "--gpus", "4", "--seq", "100"], "head-tail"),
    (["llama-3-8b", "--sp", "2", "--gpus", "2"], "modelled for training"),
    (["mixtral-8x7b", *FT, "--ep", "2", "--gpus", "2"], "model-parallel"),
    (["llama-3-8b", *FT, "--offload", "optimizer"], "offload"),
    (["llama-3-8b", *FT, "--precision", "deepspeed"], "DeepSpeed"),
    (["llama-3-8b", *FT, "--optimizer", "adamw-8bit"], "adamw-8bit"),
    (["llama-3-8b", *FT, "--optimizer", "paged-adamw-8bit"], "paged-adamw-8bit"),
    (["llama-3-8b", *FT, "--optimizer", "lion"], "lion"),
    (["llama-3-8b", *FT, "--compile"], "--compile-components model"),  # the compiled loss is not traced
    (["llama-3-8b", *FT, "--compile", "--compile-components", "model", "--method", "lora"], "drop --compile"),
    (["llama-3-8b", *FT, "--compile", "--compile-components", "loss"], "drop --compile"),
    (["llama-3-8b", *FT, "--framework", "torchtune"], "torchtune"),
    (["t5-small", *FT, "--chunked-ce", "4"], "decoder-only"),
    (["gpt2", *FT, "--grad-checkpointing", "selective"], "selective"),
]


@pytest.mark.timeout(180)
def test_every_refusal_is_one_line_before_torch(tmp_path):
    dirs = _dirs(tmp_path)
    cases = [(["trace", *argv], phrase) for argv, phrase in REFUSALS]
    cases += [(["trace", dirs["bare"]], "config.json"), (["trace", dirs["gptq"]], "gptq-4bit-g32")]
    try:
        from test_gguf import write_gguf

        write_gguf(tmp_path / "tiny-Q4_K_M.gguf")
        cases.append((["trace", str(tmp_path / "tiny-Q4_K_M.gguf")], "GGUF"))
    except ImportError:  # the gguf package is optional
        pass
    results = probe([argv for argv, _ in cases])
    assert_refused_before_torch(results)
    for (argv, phrase), r in zip(cases, results):
        assert phrase in r["err"], (argv, r["err"])


@pytest.mark.timeout(120)
def test_suggested_estimate_command_runs():
    """The analytic command a refusal suggests is the same workload, and it answers."""
    for argv in (["--params", "1e14"], ["llama-3-8b", *FT, "--gpus", "2000", "--gpu", "h100"],
                 ["llama-3-8b", "--engine", "vllm", "--max-model-len", "8192"]):
        rc, out, err = run_cli(["trace", *argv, "--quiet", "--timeout", "60"])
        assert rc == 2 and "`vramscope estimate" in err, err
        command = err.split("`")[1]
        assert "--quiet" not in command and "--timeout" not in command
        words = shlex.split(command)
        assert words[:2] == ["vramscope", "estimate"]
        rc, out, err = run_cli(words[1:])
        assert_clean(rc, out, err, words)
        assert rc == 0, err


def test_limits_admit_the_deepest_real_models():
    from vramscope.sources import resolve
    from vramscope.trace.preflight import MAX_LAYERS, check_traceable, position_limit
    from vramscope.workload import make_workload

    for name in ("llama-3.1-405b", "deepseek-v3", "qwen3-235b-a22b"):
        m = resolve(name)
        assert m.spec.num_layers <= MAX_LAYERS
        check_traceable(m, make_workload(task="finetune", seq=2048))
    assert position_limit(resolve("roberta-base")) == 512  # 514 rows, positions start after the padding index
    assert position_limit(resolve("bert-base-uncased")) == 512
    assert position_limit(resolve("gpt2")) == 1024
    assert position_limit(resolve("llama-3-8b")) == 0  # RoPE: no table


# ---- every option of `trace` with hostile values: each refused (or ignored) before torch -------------------

HOSTILE = ("", "-1", "0", "nan", "1e400", "99999999999999999999", "x" * 300, "a\nb", "é中文", "--")
#: a base that is always refused (798 layers, 1e14 parameters), so no value below can start a trace
BASE = ["trace", "--params", "1e14"]


def _trace_options() -> list:
    from vramscope.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if getattr(a, "choices", None) and "trace" in a.choices).choices["trace"]
    return [a for a in sub._actions if a.option_strings and a.dest != "help"]


@pytest.mark.timeout(300)
def test_every_option_with_hostile_values_refused_before_torch():
    cases = []
    for action in _trace_options():
        flag = action.option_strings[-1]
        if action.nargs == 0:
            cases.append([*BASE, flag])
            continue
        for v in HOSTILE:
            cases.append([*BASE, flag, v] if v != "--" else [*BASE, f"{flag}=--"])
    results = probe(cases, timeout=240)
    assert_refused_before_torch(results)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([a.option_strings[-1] for a in _trace_options()]),
                          st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20), st.integers().map(str))),
                max_size=4))
@pytest.mark.timeout(300)
def test_random_option_combinations_are_clean(pairs):
    argv = list(BASE)
    flags = {a.option_strings[-1]: a for a in _trace_options()}
    for flag, value in pairs:
        argv += [flag] if flags[flag].nargs == 0 else [f"{flag}={value}"]
    rc, out, err = run_cli(argv)
    assert_clean(rc, out, err, argv)
    assert rc == 2, (argv, err)


# ---- traces that run: tiny models ----------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    return tmp_path


@pytest.fixture
def tiny_t5(tmp_path):
    folder = tmp_path / "t5"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_T5))
    return folder


@requires_torch
@pytest.mark.timeout(300)
@pytest.mark.parametrize("kw", [dict(task="finetune", seq=64, batch=2), dict(task="inference", seq=96, batch=2),
                                dict(task="finetune", method="lora", seq=32)])
def test_t5_trace_equals_real_cpu_run(tiny_t5, kw):
    """Encoder-decoder training takes labels (the decoder input is them shifted right) and the model's own
    loss; inference encodes once and decodes with an EncoderDecoderCache. Fake and real CPU tensors count the
    same bytes (peft's torch.tensor() constants excepted, as for decoder-only models)."""
    from vramscope.sources import resolve
    from vramscope.trace.estimator import run_trace
    from vramscope.workload import make_workload

    m = resolve(str(tiny_t5))
    w = make_workload(**kw)
    fake, _, fake_trainable = run_trace(m, w, fake=True)
    real, _, real_trainable = run_trace(m, w, fake=False)
    assert fake_trainable == real_trainable
    assert fake.phases.keys() == real.phases.keys()
    for name, peak in fake.phases.items():
        assert 0 <= peak.bytes - real.phases[name].bytes <= 4 * 512, name


@requires_torch
@pytest.mark.timeout(300)
def test_t5_finetune_cli_and_kv_cache(tiny_t5):
    rc, out, err = run_cli(["trace", str(tiny_t5), "--task", "finetune", "--seq", "64", "--json", "--quiet"])
    assert_clean(rc, out, err)
    assert rc == 0, err
    d = json.loads(out)
    assert d["estimator"] == "trace" and d["model"]["trainable_params"] > 0
    assert d["phases"]["optimizer_step"]["gradients"] >= 4 * d["model"]["params"]  # fp32 config
    rc, out, err = run_cli(["trace", str(tiny_t5), "--seq", "96", "--batch", "2", "--json", "--quiet"])
    assert rc == 0, err
    kv = json.loads(out)["phases"]["decode"]["kv_cache"]
    # decoder layers × batch × (self-attention 97 tokens + cross-attention 96) × (k, v) × 4 heads × 16 × fp32,
    # and at the decode peak one layer's old 96-token self-attention keys or values beside the grown copy
    kv_exact, one_old = 2 * 2 * (97 + 96) * 2 * 4 * 16 * 4, 2 * 96 * 4 * 16 * 4
    assert kv_exact <= kv <= kv_exact + 2 * one_old, kv
    assert err.strip() == ""  # no library warnings or log lines


@requires_torch
@pytest.mark.timeout(300)
def test_model_code_failure_is_one_line(tiny, monkeypatch):
    import vramscope.trace.estimator as est

    def broken(*a, **k):
        raise RuntimeError("shapes do not match\n  at some internal line")

    monkeypatch.delenv("VRAMSCOPE_DEBUG", raising=False)
    monkeypatch.setattr(est, "run_training", broken)
    rc, out, err = run_cli(["trace", str(tiny), "--task", "finetune", "--seq", "32", "--quiet"])
    assert_clean(rc, out, err)
    assert rc == 2
    assert "the model code raised RuntimeError: shapes do not match; the analytic estimate is `vramscope estimate " \
           in err, err
    assert "internal line" not in err


@requires_torch
@pytest.mark.timeout(300)
def test_timeout_stops_even_when_model_code_swallows_it(tiny, monkeypatch):
    """Past the deadline every module call raises; model code that catches the exception cannot keep the trace
    alive, and whatever it raises instead is reported as the timeout."""
    import torch

    import vramscope.trace.estimator as est

    def endless(net, *a, **k):
        layer = torch.nn.Linear(4, 4)
        swallowed = 0
        while True:
            try:
                layer(torch.ones(4))
            except Exception:
                swallowed += 1
                if swallowed > 100:
                    raise ValueError("gave up") from None

    monkeypatch.setattr(est, "run_training", endless)
    rc, out, err = run_cli(["trace", str(tiny), "--task", "finetune", "--seq", "32", "--quiet", "--timeout", "1"])
    assert_clean(rc, out, err)
    assert rc == 2 and "stopped after 1 s" in err and "--timeout" in err, err


@requires_torch
@pytest.mark.timeout(300)
def test_timeout_on_a_real_trace_is_one_line():
    rc, out, err = run_cli_subprocess(["trace", "qwen2.5-0.5b", "--task", "finetune", "--seq", "256", "--timeout", "1",
                                       "--quiet"], timeout=180)
    assert_clean(rc, out, err)
    assert rc == 2 and "stopped after 1 s" in err, err


@requires_torch
@pytest.mark.timeout(300)
def test_gradient_accumulation_keeps_gradients_through_forward(tiny):
    from vramscope.sources import resolve
    from vramscope.trace.estimator import trace_estimate
    from vramscope.workload import make_workload

    m = resolve(str(tiny))
    one = trace_estimate(m, make_workload(task="finetune", seq=64))
    accum = trace_estimate(m, make_workload(task="finetune", seq=64, grad_accum=4))
    assert one.phases["forward"].get("gradients", 0) == 0
    assert accum.phases["forward"]["gradients"] >= 2 * m.params  # bf16 gradients, alive from the last micro-batch
    assert accum.phases["forward"]["gradients"] == one.phases["optimizer_step"]["gradients"]


@requires_torch
@pytest.mark.timeout(300)
def test_config_architectures_is_only_a_hint(tmp_path):
    """``architectures`` comes from a file: a name that is not a transformers model class (or names something
    else in the package) falls back to the Auto class for the config instead of being called."""
    for name, cfg in (("llama", TINY_LLAMA), ("t5", TINY_T5)):
        for arch in ("pipeline", "__class__", "os.system", "NoSuchModelForCausalLM"):
            folder = tmp_path / f"{name}-{arch.strip('_').replace('.', '-')}"
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(dict(cfg, architectures=[arch])))
            from vramscope.sources import resolve
            from vramscope.trace.build import hf_config, model_class

            config, got = hf_config(resolve(str(folder)), "sdpa")
            assert model_class(config, got).__name__ in ("AutoModelForCausalLM", "AutoModelForSeq2SeqLM"), arch
    rc, out, err = run_cli(["trace", str(tmp_path / "llama-pipeline"), "--seq", "16", "--quiet"])
    assert_clean(rc, out, err)
    assert rc == 0, err
