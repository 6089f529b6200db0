"""LitGPT's LLaMA-Adapter recipes (``litgpt finetune adapter | adapter_v2``, issue #19): LitGPT 0.5.13's own
``litgpt.adapter.GPT`` / ``litgpt.adapter_v2.GPT`` run on real CPU tensors and traced, against the analytic
``--framework litgpt --method adapter | adapter-v2``.

What LitGPT's code does that the model follows: ``fit`` validates under ``torch.no_grad()`` before training, which
fills every adapted layer's ``adapter_kv_cache`` from the prefix without a graph; nothing resets the cache, so
``adapter_wte`` never gets a gradient (only the gating factors, and in v2 the biases, scales and norms, train)."""

from __future__ import annotations

import json

import pytest

import vramscope
from vramscope.commandline import estimate_kwargs, parse_command
from vramscope.errors import VramscopeError
from vramscope.memory.trainable import LITGPT_ADAPTER_PROMPT, LITGPT_ADAPTER_START, litgpt_adapter_params
from vramscope.workload import make_workload

from test_litgpt import _config_file, _totals, needs_litgpt

METHODS = ("adapter", "adapter-v2")


def _tiny(tmp_path, layers=4):
    from vramscope.sources import resolve

    return resolve(_config_file(tmp_path, layers, hidden_size=128, intermediate_size=512, num_attention_heads=4,
                                num_key_value_heads=2, head_dim=32, vocab_size=1024, tie_word_embeddings=False))


def _litgpt_step(model, method):
    """LitGPT's own model built as the trace builds it, then ``fit``'s order: validation (no grad), one step."""
    import torch
    from litgpt.utils import chunked_cross_entropy

    from vramscope.trace.litgpt import build_litgpt, validate_first

    w = make_workload(task="finetune", framework="litgpt", method=method, seq=64, batch=2)
    net = build_litgpt(model, w, torch.bfloat16)
    validate_first(net, torch.bfloat16)
    x = torch.randint(0, net.config.padded_vocab_size, (2, 64))
    logits = net(x, lm_head_chunk_size=128)
    logits[-1] = logits[-1][..., :-1, :]
    chunked_cross_entropy(logits, x[..., 1:]).backward()
    return net


@needs_litgpt
@pytest.mark.parametrize("method", METHODS)
def test_parameters_and_gradients_are_litgpts(tmp_path, method):
    """The parameters the adapter adds, and those that get a gradient in LitGPT's loop, are what the analytic
    model counts; the prefix embeddings require a gradient but never get one (the cache from validation)."""
    import litgpt.adapter as adapter

    model = _tiny(tmp_path)
    net = _litgpt_step(model, method)
    with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
    wanted = {n for n, p in net.named_parameters() if p.requires_grad}
    assert with_grad and all("adapter_wte" not in n for n in with_grad)
    assert {n for n in wanted - with_grad} == {n for n in wanted if "adapter_wte" in n} != set()
    trained, added = litgpt_adapter_params(model.spec, method)
    assert trained == sum(p.numel() for n, p in net.named_parameters() if p.grad is not None)
    assert added == sum(p.numel() for n, p in net.named_parameters() if "adapter" in n or "gating" in n)
    prefixed = [m for m in net.modules() if isinstance(m, adapter.CausalSelfAttention) and hasattr(m, "adapter_wte")]
    assert len(prefixed) == model.spec.num_layers - LITGPT_ADAPTER_START
    assert all(m.adapter_wte.weight.shape[0] == LITGPT_ADAPTER_PROMPT for m in prefixed)


@needs_litgpt
@pytest.mark.parametrize("method", METHODS)
def test_saved_tensors_of_real_step_are_the_analytic_activations(tmp_path, method):
    """The bytes LitGPT's adapter models save for backward in one real step (saved-tensor hooks, each storage
    once), against the analytic activations of the same shapes: layers, final norm and head, within 2%."""
    import torch
    from litgpt.utils import chunked_cross_entropy

    from vramscope.memory.activations import training_activations
    from vramscope.estimators.training import train_flags
    from vramscope.trace.litgpt import build_litgpt, validate_first

    model = _tiny(tmp_path, layers=6)
    w = make_workload(task="finetune", framework="litgpt", method=method, seq=256, batch=2)
    net = build_litgpt(model, w, torch.bfloat16)
    validate_first(net, torch.bfloat16)
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen.setdefault(s.data_ptr(), s.nbytes())
        return t

    params = {p.untyped_storage().data_ptr() for p in net.parameters()} | {
        b.untyped_storage().data_ptr() for b in net.buffers()}
    x = torch.randint(0, net.config.padded_vocab_size, (2, 256))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = net(x, lm_head_chunk_size=128)
    saved = sum(n for k, n in seen.items() if k not in params)  # weights and the RoPE cache are not activations
    acts = training_activations(model.spec, 2, 256, 2.0, "sdpa", trainable=train_flags(model.spec, w))
    # the analytic layers include the final norm and, for v2, the head's unscaled logits
    assert saved == pytest.approx(acts.layers, rel=0.02), (saved, acts.layers)
    logits[-1] = logits[-1][..., :-1, :]
    chunked_cross_entropy(logits, x[..., 1:]).backward()


@needs_litgpt
@pytest.mark.parametrize("method", METHODS)
def test_trace_of_litgpt_adapter_agrees_with_analytic(tmp_path, method):
    from vramscope.sources import resolve
    from vramscope.trace.estimator import trace_estimate

    path = _config_file(tmp_path, 4)
    w = make_workload(task="finetune", framework="litgpt", seq=256, method=method)
    traced = _totals(trace_estimate(resolve(path), w))
    analytic = _totals(vramscope.estimate(path, task="finetune", framework="litgpt", seq=256, method=method))
    for phase in ("load", "forward", "backward", "optimizer_step"):
        assert analytic[phase] == pytest.approx(traced[phase], rel=0.01), (phase, analytic, traced)


@needs_litgpt
@pytest.mark.parametrize("method", METHODS)
def test_trace_on_real_cpu_tensors_counts_what_fake_ones_do(tmp_path, method):
    from vramscope.trace.estimator import run_trace

    model = _tiny(tmp_path, layers=3)
    w = make_workload(task="finetune", framework="litgpt", method=method, seq=64, batch=2)
    fake_log, _, fake_trainable = run_trace(model, w, fake=True)
    real_log, _, real_trainable = run_trace(model, w, fake=False)
    assert fake_trainable == real_trainable > 0
    for name, peak in fake_log.phases.items():
        assert abs(peak.bytes - real_log.phases[name].bytes) <= 4 * 512, name


def test_cli_reads_litgpt_adapter_commands():
    for program, method in (("adapter", "adapter"), ("adapter_v2", "adapter-v2")):
        p = parse_command(["litgpt", "finetune", program, "checkpoints/meta-llama/Llama-3.2-1B", "--precision",
                           "bf16-true", "--train.micro_batch_size", "4", "--lora_r", "8"])
        o = estimate_kwargs(p)
        assert (o["method"], o["framework"], o["batch"]) == (method, "litgpt", 4)
        assert "lora_rank" not in o and "lora_targets" not in o


@pytest.mark.parametrize("kw,field", [
    (dict(method="adapter"), "method"),  # the hf profile has no LLaMA-Adapter
    (dict(method="adapter-v2", framework="litgpt", num_gpus=2), "num_gpus"),
    (dict(method="adapter", framework="litgpt", grad_checkpointing=True), "grad_checkpointing"),
])
def test_refusals_name_the_field(kw, field):
    with pytest.raises(VramscopeError) as e:
        make_workload(task="finetune", **kw)
    assert e.value.params["field"] == field


def test_estimate_says_what_trains():
    e = vramscope.estimate("llama-3.2-1b", task="finetune", framework="litgpt", method="adapter", seq=512).to_dict()
    text = " ".join(e["assumptions"])
    assert "prefix embeddings never do" in text
    v1 = e["phases"]["backward"]
    v2 = vramscope.estimate("llama-3.2-1b", task="finetune", framework="litgpt", method="adapter-v2",
                            seq=512).to_dict()["phases"]["backward"]
    # v2 keeps every linear's unscaled output and the head's unscaled logits: far more activations than v1 beside
    # what both keep for the loss, the fp32 log-probabilities of the fp32 logits Fabric's convert_output returns
    from vramscope.sources import resolve

    logprobs = 512 * resolve("llama-3.2-1b").spec.vocab_size * 4
    assert v2["activations"] - logprobs > 2 * (v1["activations"] - logprobs)
    json.dumps(e)
