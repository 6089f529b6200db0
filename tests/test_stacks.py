"""The fine-tuning stacks (issue #19): eager attention under checkpointed LoRA measured on a real CPU forward and
backward, Liger's kernels re-implemented in torch as Liger's source computes them, the Unsloth, LLaMA-Factory and
axolotl profiles as read from their sources."""

from __future__ import annotations

import pytest

from conftest import has_module

needs_torch = pytest.mark.skipif(not (has_module("torch") and has_module("transformers") and has_module("peft")),
                                 reason="needs torch, transformers and peft")

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 256,
        "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 64,
        "max_position_embeddings": 1024, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _measure(attn: str, seq: int) -> tuple[int, int, int, int]:
    """Peak live bytes in forward and in backward of a real bf16 LoRA step on CPU, layers checkpointed
    (non-reentrant, as transformers 5 and TRL run it), counted by vramscope's dispatch tracker; and at each peak
    the bytes of the live tensors at least a fifth of a score matrix (b·heads·s² elements) large."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from vramscope.trace.tracker import make_tracker

    torch.manual_seed(0)
    cfg = {k: v for k, v in TINY.items() if k not in ("model_type", "architectures", "torch_dtype")}
    net = LlamaForCausalLM(LlamaConfig(**cfg, attn_implementation=attn)).to(torch.bfloat16)
    net = get_peft_model(net, LoraConfig(r=4, target_modules="all-linear"))
    net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net.enable_input_require_grads()
    net.train()
    ids = torch.randint(0, TINY["vocab_size"], (1, seq))
    tracker = make_tracker()
    with tracker:
        tracker.set_phase("forward")
        out = net(input_ids=ids, labels=ids)
        loss = out.loss
        del out
        tracker.set_phase("backward")
        loss.backward()
    log = tracker.log
    scores = TINY["num_attention_heads"] * seq * seq

    def score_sized(phase: str) -> int:
        return sum(log.sizes[k] for k in log.live_at(log.phases[phase].index) if log.sizes[k] >= scores // 5)

    return log.phases["forward"].bytes, log.phases["backward"].bytes, score_sized("forward"), score_sized("backward")


@needs_torch
def test_eager_attention_scores_in_checkpointed_lora_backward():
    """transformers' eager attention under checkpointed LoRA: the score-sized tensors alive at the forward and the
    backward peaks are the ones the model says (the masked scores, fp32 upcast and fp32 softmax inside a
    checkpointed layer's forward; the saved fp32 softmax, the fp32 gradient and softmax's fp32 input gradient in
    the recomputed layer's backward; the 4-D mask in both), and the step's peaks rise over SDPA's by about them."""
    from vramscope.memory.activations import TrainFlags, eager_attention_transients, training_activations
    from vramscope.memory.trainable import lora_modules
    from vramscope.sources.hf_config import spec_from_config

    seq = 1024
    spec = spec_from_config(dict(TINY), "tiny")
    flags = TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, ("all-linear",)), lora_rank=4)
    fe, be, f_scores, b_scores = _measure("eager", seq)
    fs, bs, sdpa_f, sdpa_b = _measure("sdpa", seq)
    assert sdpa_f == sdpa_b == 0  # SDPA keeps no score matrix
    eager = training_activations(spec, 1, seq, 2.0, "eager", True, flags)
    fwd, bwd = eager_attention_transients(spec, 1, seq, 2.0, checkpointed=True)
    assert eager.layer_forward_extra == fwd and eager.layer_backward_extra == bwd
    scores = TINY["num_attention_heads"] * seq * seq
    saved_probs = (4 + 2) * scores  # in one_layer: the fp32 softmax output and its bf16 copy
    assert fwd == pytest.approx(f_scores, rel=0.01)
    assert saved_probs + bwd == pytest.approx(b_scores, rel=0.01)
    # the peaks over SDPA's: the score-sized tensors, less the little of the layer freed by then (under 10%)
    assert fe - fs == pytest.approx(fwd, rel=0.10)
    assert be - bs == pytest.approx(saved_probs + bwd, rel=0.15)
    # the saved probabilities alone (what vramscope modelled before) are half of it
    assert saved_probs < 0.6 * (be - bs)
