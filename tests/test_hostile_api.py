"""Hostile input to the Python API and the CLI options (issue #11).

Every public function validates its arguments as the command line does: a bad value, an unknown keyword or an
option that would be ignored raises :class:`VramscopeError` with one clear line naming the option; anything else
it answers with a sane estimate. The fuzz tests draw values of every Python type for every keyword of
``estimate``/``fit``/``load_model``/``make_workload`` (several thousand calls per run) and random flag/value
combinations from the real option list of ``vramscope estimate`` and ``vramscope fit``.
"""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vramscope
from hostile_util import assert_clean, assert_sane_estimate, call_api, run_cli
from vramscope.api import SHAPE_FIELDS, check_estimate, estimate, fit, load_model
from vramscope.cli import build_parser
from vramscope.errors import VramscopeError
from vramscope.workload import make_workload, workload_keywords

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ---- values of every Python type -----------------------------------------------------------------------------

HUGE = (10**18, -10**18, 10**400, -(10**400), 2**63, 10**4000)  # 10**5000 (str() refuses it): a test below
ODD_FLOATS = (float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 5e-324, -0.0, 0.5, 1.5, 1e-9)
ODD_TEXT = ("", " ", "abc", "0", "1", "-1", "1e3", "1e400", "nan", "inf", "-inf", "true", "false", "no", "off",
            "7B", "24GB", "0.4B", "é中文🙂", "a\nb", "\x00", "x" * 5000, "1" * 5000, "q_proj,", ",", "none",
            "lora", "finetune", "all-linear", "vllm", "llama.cpp", "fp8", "selective")
#: values a user might mean, so that draws also reach deep into the estimator
PLAUSIBLE = {
    "task": ("inference", "finetune", "pretrain"), "method": ("full", "lora", "qlora", "freeze"),
    "estimator": ("analytic", "seed"), "engine": ("transformers", "vllm", "llama.cpp", "ollama"),
    "dtype": ("fp16", "bf16", "fp32", "float16"), "quant": ("none", "int8", "int4", "nf4", "fp8", "Q4_K_M", "gptq-4bit"),
    "batch": (1, 2, "4", 64, 1000), "seq": (1, 128, "512", 4096, 100_000), "kv_dtype": ("fp8", "int8", "bf16"),
    "attn": ("sdpa", "flash", "eager"), "precision": ("auto", "mixed", "pure", "fp32"),
    "optimizer": ("adamw", "adamw-8bit", "sgd", "lion", "adafactor"), "grad_checkpointing": (True, "selective", "off"),
    "grad_accum": (1, 4), "lora_rank": (8, 64, 65536), "lora_targets": ("q_proj,v_proj", ["q_proj"], "all-linear"),
    "frozen_layers": (1, 4), "lora_dropout": (0.05, "0.1"), "train_modules": ("o_proj", ["down_proj"]),
    "activations_per_sample": (1000,), "num_gpus": (1, 2, 8), "parallelism": ("fsdp", "zero3", "tp", "ddp", "none"),
    "offload": ("optimizer", "optimizer+params"), "gpu_memory_utilization": (0.5, "0.95"),
    "max_model_len": (1024, 8192), "max_num_seqs": (8, 256), "max_num_batched_tokens": (2048,),
    "enforce_eager": (True, "yes"), "n_gpu_layers": (0, 10, 99), "cache_type_k": ("q8_0", "f16"),
    "cache_type_v": ("q4_0",), "flash_attn": ("on", True), "ubatch": (128, 512), "cache": ("static", "dynamic"),
    "pp": (2, 4), "pp_schedule": ("gpipe", "interleaved"), "framework": ("torchtune", "pytorch", "hf"),
    "lora_alpha": (16, 32.0), "dora": (True,), "checkpoint_mode": ("selective",), "checkpoint_every": (2,),
    "activation_offload": (True,), "ce_chunks": (8,), "packing": ("true",), "optimizer_in_backward": (True,),
    "compile": (True,), "tp": (2, 4), "sequence_parallel": (True,), "sp": (2,), "sp_mode": ("ulysses",), "ep": (2,),
    "nodes": (2,), "fsdp_sharding": ("hybrid",), "fsdp_version": (1,), "zero_prefetch": (10**6,),
    "zero_max_live": (10**8,), "zero_persistence": (0,), "reduce_bucket": (10**7,), "offload_device": ("nvme",),
    "params": ("7B", "1.5T", 125_000_000), "gpus": ("a100", ["rtx-4090", "24GB"], "auto"), "hub": (False,),
    "layers": (2, 80), "hidden": (1024,), "heads": (16,), "kv_heads": (4,), "head_dim": (64,),
    "intermediate": (4096,), "vocab": (32000,), "gpu": ("h100", "24GB", "rtx-4060-ti-16gb"),
    "model": ("llama-3-8b", "gpt2", "deepseek-ai/DeepSeek-V2-Lite", "t5-base", "phi-2"),
}


def values() -> st.SearchStrategy:
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(-3, 3), st.sampled_from(HUGE),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(ODD_FLOATS),
        st.text(max_size=40), st.sampled_from(ODD_TEXT),
        st.lists(st.one_of(st.text(max_size=8), st.integers()), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        st.tuples(st.integers(), st.integers()), st.builds(object), st.binary(max_size=8),
        st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=1e300),
        st.sampled_from([complex("nan"), complex("inf"), 1j]),
        st.sampled_from([s for v in PLAUSIBLE.values() for s in v]),
    )


WORKLOAD_KEYS = workload_keywords()
API_KEYS = ("params", "gpus", "hub", *SHAPE_FIELDS)
UNKNOWN_KEYS = ("bach", "sequence", "lora_ranks", "gpu", "zzzqqq", "x y", "")
BASES = (dict(model="llama-3-8b"), dict(params="7B"), dict(model="qwen2.5-0.5b", task="finetune", method="lora"),
         dict(model="bert-base-uncased"), dict(model="mixtral-8x7b", task="finetune"),
         dict(model="qwen2.5-0.5b", engine="vllm"), dict(model="qwen2.5-0.5b", engine="llama.cpp"))


def check_error(e: VramscopeError) -> None:
    """A clear error: one line, bounded, in both languages."""
    for lang in ("en", "zh"):
        text = e.render(lang)
        assert text and "\n" not in text and len(text) < 1200, (lang, text[:300])


def check_answer(kind: str, result: object) -> None:
    if kind == "answer":
        est = result.estimate if hasattr(result, "estimate") and not hasattr(result, "components") else result
        if hasattr(est, "components"):
            assert_sane_estimate(est)
            json.loads(est.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
        if hasattr(result, "to_dict") and hasattr(result, "fits"):
            json.dumps(result.to_dict(), allow_nan=False)
    else:
        check_error(result)


def mutated(data, keys) -> dict:
    """A base call, then up to three plausible options and up to two hostile ones."""
    kw = dict(data.draw(st.sampled_from(BASES)))
    for _ in range(data.draw(st.integers(0, 3))):
        key = data.draw(st.sampled_from(keys))
        if key in PLAUSIBLE:
            kw[key] = data.draw(st.sampled_from(PLAUSIBLE[key]))
    for _ in range(data.draw(st.integers(0, 2))):
        key = data.draw(st.sampled_from(keys))
        kw[key] = data.draw(values())
    if "model" in kw and "params" in kw and data.draw(st.booleans()):
        kw.pop("params")
    kw.setdefault("hub", False)
    return kw


@settings(max_examples=400, **SETTINGS)
@given(st.data())
def test_fuzz_estimate_every_keyword(data):
    kw = mutated(data, WORKLOAD_KEYS + API_KEYS + ("model",) + UNKNOWN_KEYS)
    model = kw.pop("model", None)
    check_answer(*call_api(estimate, model, **kw))


@settings(max_examples=300, **SETTINGS)
@given(st.data())
def test_fuzz_make_workload_every_keyword(data):
    kw = {}
    for _ in range(data.draw(st.integers(1, 4))):
        key = data.draw(st.sampled_from(WORKLOAD_KEYS + UNKNOWN_KEYS[:2]))
        kw[key] = data.draw(st.one_of(values(), st.sampled_from(PLAUSIBLE.get(key, (None,)))))
    kind, result = call_api(make_workload, **kw)
    if kind == "answer":
        check_answer(*call_api(estimate, "qwen2.5-0.5b", hub=False, **kw))
    else:
        check_error(result)


@settings(max_examples=200, **SETTINGS)
@given(model=st.one_of(values(), st.sampled_from(["llama-3-8b", "./nope.json", "/dev/null", "a" * 300,
                                                   "/" + "a" * 5000, "owner/name", "~", "."])),
       params=st.one_of(st.none(), values()), shape=st.dictionaries(st.sampled_from(tuple(SHAPE_FIELDS) + ("layer",)),
                                                                    values(), max_size=3),
       hub=st.sampled_from([False, "no", 0, "off", None, "maybe", 2]))
def test_fuzz_load_model(model, params, shape, hub):
    kind, result = call_api(load_model, model, params, hub=hub, **shape)
    if kind == "answer":
        assert result.params > 0 and 0 < result.active_params <= result.params
    else:
        check_error(result)


@settings(max_examples=150, **SETTINGS)
@given(st.data())
def test_fuzz_fit_every_keyword(data):
    kw = mutated(data, WORKLOAD_KEYS + ("params", "hub", "gpu", *SHAPE_FIELDS, "model", "gpus"))
    kw.setdefault("gpu", data.draw(st.sampled_from(["rtx-4090", "24GB", "h100", "0.4B", "nope-gpu"])))
    model = kw.pop("model", None)
    check_answer(*call_api(fit, model, **kw))


# ---- yes/no options are parsed strictly --------------------------------------------------------------------

#: each yes/no option with a workload where it is valid
FLAGS = {
    "grad_checkpointing": dict(task="finetune"), "activation_offload": dict(task="finetune"),
    "optimizer_in_backward": dict(task="finetune"), "dora": dict(task="finetune", method="lora"),
    "packing": dict(task="finetune"), "compile": dict(task="finetune"),
    "checkpoint_reentrant": dict(task="finetune", grad_checkpointing=True),
    "sequence_parallel": dict(task="finetune", tp=2, num_gpus=2), "enforce_eager": dict(engine="vllm"),
    "async_tp": dict(task="finetune", tp=2, num_gpus=2, sequence_parallel=True, compile=True),
    "disable_hybrid_kv_cache_manager": dict(engine="vllm"), "enable_lora": dict(engine="vllm"),
    "enable_expert_parallel": dict(engine="vllm"), "enable_prefix_caching": dict(engine="vllm"),
    "flash_attn": dict(engine="llama.cpp"),
    "no_kv_offload": dict(engine="llama.cpp"), "no_op_offload": dict(engine="llama.cpp"),
    "pp_reshard_after_forward": dict(task="pretrain", framework="torchtitan", pp=2, num_gpus=4, parallelism="fsdp"),
    "kv_unified": dict(engine="llama.cpp"), "swa_full": dict(engine="llama.cpp"),
    "llamacpp_unpadded_ctx": dict(engine="llama.cpp"), "llama_server": dict(engine="llama.cpp"),
    "no_mmap": dict(engine="llama.cpp"),
    "mlock": dict(engine="llama.cpp"), "sched_spread": dict(engine="ollama"),
    "fit_auto_ctx": dict(engine="llama.cpp", fit="on"),
    "disable_radix_cache": dict(engine="sglang"),
    "skip_mm_profiling": dict(engine="vllm"),
    "fsdp_float8_all_gather": dict(task="pretrain", float8="tensorwise", num_gpus=2, parallelism="fsdp"),
    "moe_pad_to_capacity": dict(task="pretrain", framework="megatron", moe_capacity_factor=1.0),
    "fp8_param_gather": dict(task="pretrain", framework="megatron", te_fp8="delayed", num_gpus=2, parallelism="zero1"),
}
#: the switches that need a model of another kind than the default's (an expert capacity needs experts)
FLAG_MODEL = {"moe_pad_to_capacity": "qwen3-30b-a3b"}
OFF = (False, 0, "false", "False", "no", "NO", "off", "0", " off ")
ON = (True, 1, "true", "TRUE", "yes", "on", "1")


def test_every_bool_parameter_of_make_workload_is_listed():
    import inspect

    from vramscope.options import workload_rows
    from vramscope.workload import Workload

    switches = {o.field for o in workload_rows() if o.switch} | {"grad_checkpointing"}
    assert switches == set(FLAGS), switches ^ set(FLAGS)
    bools = {f.name for f in __import__("dataclasses").fields(Workload) if isinstance(f.default, bool)}
    # None: the framework's or engine's own default (a switch, but not a bool field)
    tri_state = {"checkpoint_reentrant", "enable_prefix_caching"}
    assert bools - {"seq_default"} == set(FLAGS) - tri_state, bools ^ set(FLAGS)


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_flag_off_spellings_are_off(flag):
    ctx, model = FLAGS[flag], FLAG_MODEL.get(flag, "qwen2.5-0.5b")
    base = estimate(model, hub=False, **ctx)
    for v in OFF:
        e = estimate(model, hub=False, **ctx, **{flag: v})
        assert e.workload[flag] is False, (flag, v)
        assert e.total_bytes == base.total_bytes, (flag, v)


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_flag_on_spellings_are_on(flag):
    ctx = FLAGS[flag]
    for v in ON:
        e = estimate(FLAG_MODEL.get(flag, "qwen2.5-0.5b"), hub=False, **ctx, **{flag: v})
        assert e.workload[flag] is True, (flag, v)


@pytest.mark.parametrize("flag", sorted(FLAGS) + ["hub"])
@pytest.mark.parametrize("bad", ["maybe", "", "2", 2, -1, 0.5, float("nan"), [], {}, "yes please", b"true"])
def test_flag_bad_values_name_the_option(flag, bad):
    ctx = FLAGS.get(flag, {})
    with pytest.raises(VramscopeError) as e:
        estimate(FLAG_MODEL.get(flag, "qwen2.5-0.5b"), **({"hub": False} if flag != "hub" else {}), **ctx,
                 **{flag: bad})
    assert flag.replace("_", "-") in str(e.value) or flag in str(e.value)
    check_error(e.value)


def test_grad_checkpointing_takes_a_mode_and_refuses_contradictions():
    e = estimate("qwen2.5-0.5b", task="finetune", grad_checkpointing="selective", hub=False)
    assert e.workload["grad_checkpointing"] and e.workload["checkpoint_mode"] == "selective"
    with pytest.raises(VramscopeError, match="grad_checkpointing=False: turns checkpointing off") as e:
        estimate("qwen2.5-0.5b", task="finetune", grad_checkpointing=False, checkpoint_every=2, hub=False)
    assert e.value.render("en", "cli").startswith("--no-grad-checkpointing: ")
    rc, _, err = run_cli(["estimate", "qwen2.5-0.5b", "--task", "finetune", "--no-grad-checkpointing",
                          "--grad-checkpointing", "--no-hub"])
    assert rc == 2 and "no-grad-checkpointing" in err


# ---- keywords ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, kw, suggestion", [
    (estimate, {"bach": 4}, "batch"), (estimate, {"lora_ranks": 8}, "lora_rank"), (estimate, {"gpu": "a100"}, "gpus"),
    (estimate, {"layer": 80}, "layers"), (fit, {"seqq": 8}, "seq"), (fit, {"gpus": ["a100"]}, "gpu"),
    (load_model, {"layer": 3}, "layers"),
])
def test_unknown_keyword_suggests_the_closest(fn, kw, suggestion):
    args = ("llama-3-8b",) if fn is not load_model else (None, "7B")
    with pytest.raises(VramscopeError) as e:
        fn(*args, **kw)
    assert f"unknown option '{next(iter(kw))}'; did you mean '{suggestion}'?" == str(e.value)


def test_unknown_keyword_without_a_close_one():
    with pytest.raises(VramscopeError, match="unknown option 'zzzqqq'"):
        estimate("llama-3-8b", zzzqqq=1)
    with pytest.raises(VramscopeError, match="unknown option"):
        fit("llama-3-8b", **{"x" * 5000: 1})


@pytest.mark.parametrize("shape", sorted(SHAPE_FIELDS))
@pytest.mark.parametrize("fn", [estimate, fit, load_model])
def test_shape_overrides_only_with_params(fn, shape):
    with pytest.raises(VramscopeError) as e:
        fn("llama-3-8b", hub=False, **{shape: 80})
    assert f"--{shape.replace('_', '-')} is a shape override for --params" in str(e.value)
    assert "cannot change MODEL" in str(e.value)


def test_shape_overrides_apply_to_params():
    e = estimate(params="70B", layers=80, hidden=8192, hub=False)
    assert_sane_estimate(e)
    assert fit(params="7B", layers=40, gpu="80GB").estimate.total_bytes > 0
    assert load_model(None, "70B", layers=80).spec.num_layers == 80
    # a shape holding more than twice the count cannot be that model (sources/numbers.py)
    with pytest.raises(VramscopeError, match="alone holds"):
        load_model(None, "7B", layers=80, hidden=8192)


def test_fit_refuses_the_seed_estimator_like_the_cli():
    with pytest.raises(VramscopeError, match="^estimator: fit searches the analytic estimator only"):
        fit("llama-3-8b", estimator="seed")
    rc, _, err = run_cli(["fit", "llama-3-8b", "--estimator", "seed", "--no-hub"])
    assert rc == 2 and "--estimator: fit searches the analytic estimator only" in err


@pytest.mark.parametrize("gpus", [5, 1.5, [1], ["a100", None], {"a100": 1}, object(), ("a100", b"h100")])
def test_gpus_of_the_wrong_type(gpus):
    with pytest.raises(VramscopeError, match="gpus"):
        estimate("llama-3-8b", gpus=gpus)
    assert estimate("llama-3-8b", gpus=None).gpus == ()
    assert len(estimate("llama-3-8b", gpus="a100").gpus) == 1


@pytest.mark.parametrize("model", [123, 1.5, ["llama-3-8b"], object(), b"llama-3-8b", "a\x00b", "x" * 10_000])
def test_model_of_the_wrong_type(model):
    with pytest.raises(VramscopeError, match="MODEL"):
        estimate(model)


def test_model_as_a_path_object(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 2,
                               "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 1000}))
    assert_sane_estimate(estimate(cfg))  # a pathlib.Path is a path, like its str
    with pytest.raises(VramscopeError):
        estimate(tmp_path / "missing" / "config.json")


# ---- options ignored in another mode are refused -----------------------------------------------------------

@pytest.mark.parametrize("kw, needle", [
    (dict(lora_rank=8), "--lora-rank"), (dict(lora_targets="q_proj"), "--lora-targets"),
    (dict(lora_dropout=0.1), "--lora-dropout"), (dict(lora_alpha=16), "--lora-alpha"),
    (dict(task="finetune", lora_rank=8), "--lora-rank: is a LoRA option: add --method lora"),
    (dict(task="finetune", frozen_layers=2), "--freeze-layers"),
    (dict(task="finetune", method="freeze", frozen_layers=2, train_modules="o_proj"), "--freeze-layers"),
    (dict(activations_per_sample=100), "--activations-per-sample"),
    (dict(train_modules="o_proj"), "--train-modules"),
    (dict(optimizer="sgd"), "--optimizer: is a training option"), (dict(precision="mixed"), "--precision"),
    (dict(grad_accum=4), "--grad-accum"), (dict(framework="torchtune"), "--framework"),
    (dict(zero_prefetch=10**6), "--zero-prefetch-bucket"),
    (dict(task="finetune", kv_dtype="fp8"), "--kv-dtype: is about the KV cache of inference"),
    (dict(task="finetune", cache="static"), "--cache"),
    (dict(estimator="seed", engine="vllm"), "--engine: the seed rule of thumb does not model it"),
    (dict(estimator="seed", kv_dtype="fp8"), "--kv-dtype"), (dict(estimator="seed", num_gpus=2), "--gpus"),
    (dict(estimator="seed", attn="eager"), "--attn"),
])
def test_options_of_another_mode_are_refused(kw, needle):
    """Refused; the API names the keyword (``lora_rank: ...``), the command line the flag (``--lora-rank: ...``)."""
    from vramscope.options import table

    with pytest.raises(VramscopeError) as e:
        estimate("qwen2.5-0.5b", hub=False, **kw)
    assert needle in e.value.render("en", "cli")
    assert str(e.value).split(":")[0] in table() and "--" not in str(e.value).split(":")[0], str(e.value)


# ---- module names checked against the model ----------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["--method", "lora", "--lora-targets", "nonexistent_proj"], "q_proj, k_proj, v_proj, o_proj"),
    (["--method", "lora", "--lora-targets", "q_proj,nonexistent_proj"], "nonexistent_proj"),
    (["--method", "freeze", "--train-modules", "nonexistent_proj"], "down_proj"),
    (["--method", "lora", "--lora-targets", ""], "empty"),
    (["--method", "lora", "--lora-targets", " , "], "empty"),
    (["--method", "freeze", "--train-modules", ""], "empty"),
    (["--method", "lora", "--lora-targets", "q_proj;rm -rf"], "--lora-targets"),
])
def test_module_names_the_model_does_not_have(argv, needle):
    rc, out, err = run_cli(["estimate", "qwen2.5-0.5b", "--task", "finetune", "--no-hub", *argv])
    assert_clean(rc, out, err, argv)
    assert rc == 2 and needle in err, err


def test_module_names_the_model_has():
    e = estimate("qwen2.5-0.5b", task="finetune", method="lora", lora_targets="q_proj,v_proj")
    assert e.model.trainable_params > 0
    e = estimate("bert-base-uncased", task="finetune", method="lora", lora_targets=["query", "value"], seq=128)
    assert e.model.trainable_params > 0
    with pytest.raises(VramscopeError, match="query, key, value"):
        estimate("bert-base-uncased", task="finetune", method="lora", lora_targets="q_proj", seq=128)
    e = estimate("mixtral-8x7b", task="finetune", method="lora", lora_targets="experts")
    assert e.model.trainable_params > 0
    e = estimate("qwen2.5-0.5b", task="finetune", method="freeze", train_modules="o_proj,down_proj")
    assert 0 < e.model.trainable_params < e.model.params


def test_torchtune_default_targets_still_work():
    e = estimate("llama-3-8b", task="finetune", method="lora", framework="torchtune")
    assert e.model.trainable_params > 0


# ---- lengths the model can take ----------------------------------------------------------------------------

@pytest.mark.parametrize("model, seq", [("bert-base-uncased", 100_000), ("bert-base-uncased", 513), ("gpt2", 1025)])
def test_seq_beyond_learned_positions_is_refused(model, seq):
    with pytest.raises(VramscopeError, match="learned position embeddings"):
        estimate(model, seq=seq)
    rc, out, err = run_cli(["estimate", model, "--seq", str(seq), "--no-hub"])
    assert rc == 2 and "hard limit" in err, err


def test_seq_within_learned_positions_and_the_default():
    assert estimate("bert-base-uncased", seq=512).workload["seq"] == 512
    e = estimate("bert-base-uncased")  # the default 4096 is capped to the model's 512 positions, with a note
    assert e.workload["seq"] == 512
    assert any("not given" in a.render() for a in e.assumptions)


def test_seq_beyond_rope_context_is_an_assumption():
    e = estimate("llama-3-8b", seq=100_000)
    assert e.workload["seq"] == 100_000
    assert any("beyond" in a.render() and "8,192" in a.render() for a in e.assumptions)
    assert not any("beyond" in a.render() for a in estimate("llama-3-8b", seq=8192).assumptions)


# ---- sizes and numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gpu", ["0.4B", "100MB", "1KiB", "12", "0GB", "-24GB", "nanGB", "infGB", "1e400GB",
                                 "24GB\n", "x" * 5000])
def test_gpu_sizes_that_are_not_a_gpu(gpu):
    with pytest.raises(VramscopeError) as e:
        estimate("llama-3-8b", gpus=gpu)
    check_error(e.value)
    for opt in ("--gpu", "--gpu-memory"):
        rc, out, err = run_cli(["estimate", "llama-3-8b", opt, gpu, "--no-hub"])
        assert_clean(rc, out, err, gpu)
        assert rc == 2


def test_small_but_real_gpu_sizes():
    assert estimate("qwen2.5-0.5b", gpus="256MiB").gpus[0].memory_bytes == 2**28
    assert estimate("qwen2.5-0.5b", gpus="24GB").gpus[0].memory_bytes == 24 * 2**30  # a "24 GB" card has 24 GiB


FLOAT_OPTIONS = {"lora_alpha": dict(task="finetune", method="lora"), "lora_dropout": dict(task="finetune",
                                                                                           method="lora"),
                 "gpu_memory_utilization": dict(engine="vllm")}


@pytest.mark.parametrize("name", sorted(FLOAT_OPTIONS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "nan", "inf", "Infinity", "-1", 10**400,
                                 "1e400", "", "abc", True, [0.5]])
def test_float_options_refuse_non_finite(name, bad):
    with pytest.raises(VramscopeError) as e:
        estimate("qwen2.5-0.5b", **FLOAT_OPTIONS[name], **{name: bad})
    assert str(e.value).startswith(name + ":") and name.replace("_", "-") in e.value.render("en", "cli")


def test_lora_alpha_inf_never_reaches_the_json():
    rc, out, err = run_cli(["estimate", "qwen2.5-0.5b", "--task", "finetune", "--method", "lora", "--lora-alpha",
                            "inf", "--json", "--no-hub"])
    assert rc == 2 and "--lora-alpha" in err and "Infinity" not in out
    rc, out, _ = run_cli(["estimate", "qwen2.5-0.5b", "--task", "finetune", "--method", "lora", "--lora-alpha",
                          "32", "--json", "--no-hub"])
    assert rc == 0 and json.loads(out)["workload"]["lora_alpha"] == 32.0


INT_OPTIONS = ("batch", "seq", "grad_accum", "lora_rank", "frozen_layers", "num_gpus", "pp", "tp", "sp", "ep",
               "nodes", "fsdp_version", "checkpoint_every", "ce_chunks", "zero_prefetch", "zero_max_live",
               "zero_persistence", "reduce_bucket", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
               "n_gpu_layers", "ubatch", "activations_per_sample")


@pytest.mark.parametrize("name", INT_OPTIONS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "nan", "inf", -1, "-5", 10**18, 10**400, "1e400", 1.5,
                                 "", "abc", True, [1], None])
def test_int_options_refuse_nonsense(name, bad):
    if bad is None:
        assert make_workload(**{name: bad}) == make_workload()  # None means "not given", for every option
        return
    with pytest.raises(VramscopeError) as e:
        make_workload(**{name: bad})
    check_error(e.value)


def test_batch_and_seq_are_capped_with_a_clear_message():
    with pytest.raises(VramscopeError, match=r"^batch: 1000000000000000000 is out of range; use an integer from 1 "
                                             r"to 1000000"):
        estimate("llama-3-8b", batch=10**18)
    with pytest.raises(VramscopeError, match="^seq: 1000000000000 is out of range") as e:
        estimate("llama-3-8b", seq=10**12)
    assert e.value.render("en", "cli").startswith("--seq: 1000000000000 is out of range")


CHOICES = ("task", "method", "estimator", "engine", "dtype", "quant", "kv_dtype", "attn", "precision", "optimizer",
           "parallelism", "offload", "cache", "pp_schedule", "framework", "checkpoint_mode", "sp_mode",
           "fsdp_sharding", "offload_device")


@pytest.mark.parametrize("name", CHOICES + ("cache_type_k", "cache_type_v"))
@pytest.mark.parametrize("bad", ["bogus", "", 7, pytest.param(10**5000, id="int-of-5000-digits"), ["full"],
                                 "x" * 5000, "fp\n16"])
def test_choice_options_refuse_bad_values(name, bad):
    extra = {"engine": "llama.cpp"} if name.startswith("cache_type") else {}
    if name == "checkpoint_mode":
        extra = {"task": "finetune"}
    with pytest.raises(VramscopeError) as e:
        make_workload(**extra, **{name: bad})
    text = str(e.value)
    assert text.startswith(name + ":") and len(text) < 700, text  # the API names the keyword
    assert name == "checkpoint_mode" or e.value.render("en", "cli").startswith("--"), text  # the CLI its flag
    check_error(e.value)


# ---- the command line -----------------------------------------------------------------------------------------

def _subparsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def test_every_parser_has_abbreviations_off():
    parsers = list(_subparsers(build_parser()))
    assert len(parsers) >= 9
    for p in parsers:
        assert p.allow_abbrev is False, p.prog


@pytest.mark.parametrize("argv, needle", [
    (["estimate", "llama-3-8b", "--check"], "unrecognized arguments: --check"),
    (["estimate", "llama-3-8b", "--batc", "2"], "unrecognized arguments"),
    (["fit", "llama-3-8b", "--chec"], "unrecognized arguments"),
    (["estimate", "llama-3-8b", "--grad-check"], "unrecognized arguments"),
])
def test_abbreviations_are_refused(argv, needle):
    rc, out, err = run_cli(argv + ["--no-hub"])
    assert_clean(rc, out, err, argv)
    assert rc == 2 and needle in err


def test_fit_check_is_still_an_option_of_fit():
    rc, _, _ = run_cli(["fit", "qwen2.5-0.5b", "--gpu", "h100", "--check", "--no-hub"])
    assert rc == 0


@pytest.mark.parametrize("argv, needle", [
    (["llama-3-8b", "--layers", "999", "--vocab", "abc"], "--layers is a shape override for --params"),
    (["llama-3-8b", "--vocab", "50000"], "--vocab is a shape override"),
    (["llama-3-8b", "--lora-rank", "8"], "--lora-rank"),
    (["llama-3-8b", "--zero", "3", "--parallelism", "fsdp", "--task", "finetune"], "--zero"),
    (["llama-3-8b", "--tp", "2", "--tensor-parallel-size", "4"], "give one"),
    (["llama-3-8b", "--pp", "2", "--pipeline-parallel-size", "4", "--engine", "vllm"], "give one"),
    (["llama-3-8b", "--seq", "1e12"], "--seq"),
    (["llama-3-8b", "--batch", "1000000000000000000"], "--batch"),
    (["llama-3-8b", "--gpu", "0.4B"], "too small for a GPU"),
])
def test_cli_refusals(argv, needle):
    rc, out, err = run_cli(["estimate", *argv, "--no-hub"])
    assert_clean(rc, out, err, argv)
    assert rc == 2 and needle in err, err


def test_config_file_and_command_line_must_agree(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": 4}))
    base = ["estimate", "qwen2.5-0.5b", "--task", "finetune", "--deepspeed", str(ds), "--no-hub"]
    rc, out, err = run_cli(base + ["--batch", "8"])
    assert rc == 2 and "--batch" in err and "--deepspeed" in err
    rc, out, err = run_cli(base + ["--batch", "4", "--json"])
    assert rc == 0 and json.loads(out)["workload"]["batch"] == 4
    rc, out, err = run_cli(base + ["--fsdp", str(ds)])
    assert rc == 2 and "--fsdp" in err


# ---- the last line of defence ---------------------------------------------------------------------------------

def _broken(monkeypatch, component, value):
    import vramscope.api as api

    real = api.estimate_analytic

    def fake(model, workload, gpus):
        phases, notes, trainable, transient, extra = real(model, workload, gpus)
        for p in phases.values():
            p[component] = value
        return phases, notes, trainable, transient, extra

    monkeypatch.setattr(api, "estimate_analytic", fake)


@pytest.mark.parametrize("value", [-1, -10**12, float("nan"), float("inf"), float("-inf")])
def test_impossible_result_is_refused_not_printed(monkeypatch, value):
    _broken(monkeypatch, "kv_cache", value)
    with pytest.raises(VramscopeError, match=r"impossible result \(.*kv_cache"):
        estimate("llama-3-8b")
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--json", "--no-hub"])
    assert rc == 2 and "impossible result" in err and out == ""


def test_check_estimate_catches_every_inconsistency():
    from dataclasses import replace

    good = estimate("llama-3-8b", gpus="a100")
    assert check_estimate(good) is good
    bad = [replace(good, total_bytes=0), replace(good, range_bytes=(good.total_bytes + 1, good.total_bytes + 2)),
           replace(good, range_bytes=(0, good.total_bytes - 1)),
           replace(good, model=replace(good.model, active_params=good.model.params + 1)),
           replace(good, model=replace(good.model, params=0)),
           replace(good, engine={"x": {"y": [float("nan")]}}),
           replace(good, gpus=(replace(good.gpus[0], headroom_bytes=float("inf")),))]
    for b in bad:
        with pytest.raises(VramscopeError, match="impossible result"):
            check_estimate(b)


def test_json_writer_never_writes_nan():
    from dataclasses import replace

    e = replace(estimate("llama-3-8b"), engine={"x": float("nan")})
    with pytest.raises(ValueError):
        e.to_json()


# ---- the CLI fuzz ----------------------------------------------------------------------------------------------

def _options(command: str) -> list[tuple[str, bool]]:
    """(option, takes a value) for every option of ``vramscope COMMAND --help``."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    out = []
    for action in sub._actions:
        for opt in action.option_strings:
            if opt in ("-h", "--help"):
                continue
            out.append((opt, action.nargs != 0))
    return out


def test_option_list_matches_the_help_text():
    for command in ("estimate", "fit"):
        rc, out, _ = run_cli([command, "--help"])
        assert rc == 0
        for opt, _ in _options(command):
            assert opt in out, (command, opt)


CLI_VALUES = ("", "0", "1", "2", "-1", "8", "1e3", "1e400", "nan", "inf", "-inf", "0.5", "abc", "é中文", "x" * 3000,
              "finetune", "lora", "qlora", "freeze", "vllm", "llama.cpp", "fp8", "int4", "Q4_K_M", "all-linear",
              "q_proj", "nonexistent_proj", "selective", "fsdp", "zero3", "torchtune", "24GB", "0.4B", "a100",
              "true", "off", "none", "100000", "1000000000000000000", "--json", "-1e-9")


def _plausible_cli(opt: str) -> tuple:
    key = {"--gpus": "num_gpus", "--freeze-layers": "frozen_layers", "--chunked-ce": "ce_chunks",
           "--grad-checkpointing": "checkpoint_mode", "--ubatch-size": "ubatch", "--tp": "tp",
           "--tensor-parallel-size": "tp", "--pipeline-parallel-size": "pp", "--gpu-memory": "gpu",
           "--zero": "zero", "--units": "units", "--lang": "lang", "--ctx-size": "seq", "--concurrency": "batch",
           "--micro-batch": "batch", "--cp": "sp"}.get(opt, opt.lstrip("-").replace("-", "_"))
    extra = {"zero": ("0", "1", "2", "3"), "units": ("GB", "GiB"), "lang": ("en", "zh")}
    return tuple(str(v) if not isinstance(v, list) else ",".join(v) for v in PLAUSIBLE.get(key, extra.get(key, ())))


@pytest.mark.parametrize("command", ["estimate", "fit"])
@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_cli_fuzz_random_options(command, data):
    options = _options(command)
    argv = [command]
    model = data.draw(st.sampled_from([["llama-3-8b"], ["qwen2.5-0.5b"], ["bert-base-uncased"], ["--params", "7B"],
                                       [], ["mixtral-8x7b"]]))
    argv += model
    for _ in range(data.draw(st.integers(0, 4))):
        opt, takes = data.draw(st.sampled_from(options))
        argv.append(opt)
        if takes:
            plausible = _plausible_cli(opt)
            if plausible and data.draw(st.integers(0, 2)):
                argv.append(data.draw(st.sampled_from(plausible)))
            else:
                argv.append(data.draw(st.one_of(st.sampled_from(CLI_VALUES), st.text(max_size=12))))
    argv.append("--no-hub")
    rc, out, err = run_cli(argv)
    assert_clean(rc, out, err, argv)
    if rc in (0, 1) and "--json" in argv and out.strip():
        d = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in --json for {argv}"))
        for item in d if isinstance(d, list) else [d]:
            assert_sane_estimate(item.get("estimate", item))
    if rc == 2:
        assert len(err) < 1500, err[:300]


def test_values_never_print_huge():
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--task", "x" * 100_000, "--no-hub"])
    assert rc == 2 and len(err) < 500
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--batch", "1" * 100_000, "--no-hub"])
    assert rc == 2 and len(err) < 500
    with pytest.raises(VramscopeError) as e:
        vramscope.estimate("llama-3-8b", seq=10**5000)
    assert len(str(e.value)) < 200 and "digits" in str(e.value)


@pytest.mark.parametrize("model", ["~nosuchuser_xyz/config.json", "~" + "x" * 300, "/" + "a" * 300, "a" * 300,
                                   "a/" * 1500, "/dev/zero", "."])
def test_model_strings_the_file_system_refuses(model):
    with pytest.raises(VramscopeError) as e:
        estimate(model, hub=False)
    check_error(e.value)


@pytest.mark.parametrize("argv", [
    ["estimate", "llama-3-8b", "--units", "a\nb"], ["estimate", "llama-3-8b", "x" * 5000],
    ["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", "0\r"],
    ["estimate", "llama-3-8b", "--task", "a\r\nb"], ["estimate", "llama-3-8b", "--lang", "\x1b[31m"],
    ["estimate", "line\nbreak", "--no-hub"],
])
def test_cli_errors_stay_one_printable_line(argv):
    rc, out, err = run_cli(argv)
    assert_clean(rc, out, err, argv)
    assert rc == 2 and "\r" not in err and "\x1b" not in err and len(err) < 700, err
