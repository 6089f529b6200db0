"""The seed estimator reproduces the DataLearner (2023) article's numbers exactly."""

import pytest

import vramscope


@pytest.mark.parametrize("params, dtype, quant, expected", [
    ("7B", "fp16", None, 14_000_000_000),
    ("13B", "fp16", None, 26_000_000_000),
    ("65B", "bf16", None, 130_000_000_000),
    ("7B", "fp32", None, 28_000_000_000),
    ("7B", None, "int4", 3_500_000_000),
    ("7B", None, "int8", 7_000_000_000),
])
def test_seed_inference(params, dtype, quant, expected):
    e = vramscope.estimate(params=params, dtype=dtype, quant=quant, estimator="seed")
    assert e.total_bytes == expected
    assert e.components == {"weights": expected}
    assert e.estimator == "seed"
    assert any("rule of thumb" in a.render("en") for a in e.assumptions)


def test_seed_pretrain_formula_exact():
    p, b, a = 7_000_000_000, 8, 123_456_789
    e = vramscope.estimate(params="7B", task="pretrain", estimator="seed", batch=b, activations_per_sample=a)
    assert e.total_bytes == (p + b * a + p + 2 * p) * 4
    assert e.components == {"weights": 4 * p, "activations": 4 * b * a, "gradients": 4 * p,
                            "optimizer_states": 8 * p}


def test_seed_finetune_counts_trainable_only():
    full = vramscope.estimate("llama-2-7b", task="finetune", estimator="seed", activations_per_sample=1000)
    lora = vramscope.estimate("llama-2-7b", task="finetune", method="lora", estimator="seed",
                              activations_per_sample=1000)
    p = 6_738_415_616
    assert full.total_bytes == (p + 1000 + p + 2 * p) * 4
    t = lora.model.trainable_params
    assert 0 < t < p // 100
    assert lora.total_bytes == (p + 1000 + t + 2 * t) * 4


def test_seed_default_activations_from_shape():
    from vramscope.estimators.seed import activations_per_sample
    from vramscope.sources import resolve

    m = resolve("llama-2-7b")
    # layers × s × h × (17 + 2.5 × heads × s / h) with 32 layers, h 4096, 32 heads, s 2048
    assert activations_per_sample(m, 2048) == int(32 * 2048 * 4096 * (17 + 2.5 * 32 * 2048 / 4096))
    e = vramscope.estimate("llama-2-7b", task="pretrain", estimator="seed", seq=2048)
    assert e.components["activations"] == 4 * activations_per_sample(m, 2048)
