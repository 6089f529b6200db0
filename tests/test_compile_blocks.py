"""torch.compile per block (issue #14 item 4): the analytic bytes a compiled decoder block saves equal what torch
2.13's partitioner saves for the real transformers block.

Each case compiles one reduced-width decoder layer (256 hidden, 8 heads, 2 KV heads, head_dim 32; the families'
own classes) with inductor's decompositions and partition function (``vramscope/trace/compiled.py``) and reads
the partitioned forward's saved tensors; ``compiled_layer_bytes_per_token`` (per-op SAC:
``compiled_op_sac_bytes_per_token``; full AC: the block's input) must match them within
``compile_blocks.TOLERANCE``. The full-width sweep of every family is ``bench/compile_blocks.py`` (docs/accuracy.md).
One case runs the compiled graphs for real and checks, with autograd's saved-tensor hooks, that what the compiled
block's backward really holds is the partition read here.
"""

import sys
from pathlib import Path

import pytest

from conftest import requires_torch

pytestmark = [requires_torch, pytest.mark.trace]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

CASES = [("llama-3-8b", "sdpa", "none"), ("llama-3-8b", "eager", "none"), ("qwen3-8b", "sdpa", "none"),
         ("qwen2.5-7b", "sdpa", "op"), ("gemma-3-12b", "sdpa", "op"),
         ("gemma-3-12b", "sdpa", "none"), ("gemma-2-9b", "eager", "none"), ("phi-3-mini", "sdpa", "op"),
         ("mixtral-8x7b", "sdpa", "none"), ("qwen3-30b-a3b", "sdpa", "none"), ("llama-3-8b", "sdpa", "full"),
         ("llama-3-8b", "sdpa", "op")]


@pytest.mark.parametrize("family,attn,ac", CASES, ids=["-".join(c) for c in CASES])
def test_analytic_equals_partitioner(family, attn, ac):
    import compile_blocks as cb

    r = cb.case(family, cb.reduced(cb.FAMILIES[family]), attn, ac, batch=2, seq=64, run=False)
    assert r["analytic"] is not None, "modelled family"
    assert r["graphs"] == 1  # fullgraph: one compiled graph per block
    assert abs(r["error"]) <= cb.TOLERANCE, (r["analytic"], r["partitioned"], r["saved"])
    if ac == "none":
        # the compiled block keeps less than the eager model of the same block (what compile is for)
        from vramscope.memory.activations import layer_bytes_per_token
        from vramscope.sources.hf_config import spec_from_config

        spec = spec_from_config({**cb.reduced(cb.FAMILIES[family]), "vocab_size": 128, "num_hidden_layers": 1}, "t")
        attn_run = "eager" if not spec.family.sdpa else attn
        assert r["partitioned"] < layer_bytes_per_token(spec, 64, 2.0, attn_run)


def test_partition_is_what_backward_holds():
    """Run the compiled block (forward and backward, real CPU tensors): the tensors autograd's saved-tensor hooks
    see the compiled graph keep are the partition's saved set, byte for byte."""
    import torch

    import compile_blocks as cb
    from vramscope.trace.compiled import block_saved

    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    cfg = cb.hf_config(cb.reduced(cb.FAMILIES["llama-3-8b"]), "sdpa")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        parts = block_saved(cfg, batch=2, seq=64, run=True)
    (part,) = parts
    block = part.bytes("activation", "input", "shared", "param")
    # the hooks also see what the eager embedding, final norm, head and loss save around the compiled block
    from vramscope.trace.compiled import decoder_model

    outside = {}

    def pack_outside(t):
        outside[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    torch.manual_seed(0)
    model = decoder_model(cb.hf_config(cb.reduced(cb.FAMILIES["llama-3-8b"]), "sdpa"), torch.bfloat16, 1)
    model.model.layers[0].forward = lambda hidden_states, *a, **k: hidden_states  # the block left out
    with torch.autograd.graph.saved_tensors_hooks(pack_outside, lambda t: t):
        model(input_ids=torch.randint(0, 128, (2, 64)), use_cache=False).logits.float().sum()
    assert sum(seen.values()) - sum(outside.values()) == pytest.approx(block, rel=0.02)


def test_estimate_counts_the_partitioned_blocks(tmp_path):
    """``--compile`` through the estimator: the layers' activations of a 2-layer reduced Llama move from the eager
    model to the partitioner's saved bytes (per token and layer), the loss head unchanged by the blocks; with
    ``--compile-components loss`` the layers stay eager and only the loss is fused."""
    import json

    import compile_blocks as cb
    from vramscope.api import estimate

    cfg = {**cb.reduced(cb.FAMILIES["llama-3-8b"]), "num_hidden_layers": 2, "vocab_size": 128,
           "tie_word_embeddings": False}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    kw = dict(task="pretrain", batch=2, seq=64, precision="pure")

    def acts(**extra):
        e = estimate(str(path), hub=False, **kw, **extra)
        return e.phases["forward"]["activations"], [a.key for a in e.assumptions]

    eager, _ = acts()
    blocks, keys = acts(compile=True, compile_components="model")
    loss_only, keys_loss = acts(compile=True, compile_components="loss")
    assert "a_compile" in keys and "a_compile_loss_eager" in keys
    assert "a_compile" not in keys_loss and "a_compile_loss" in keys_loss
    (part,) = [cb.case("llama-3-8b", cb.reduced(cb.FAMILIES["llama-3-8b"]), "sdpa", "none", 2, 64, run=False)]
    eager_layer = cb.eager(cb.reduced(cb.FAMILIES["llama-3-8b"]), "sdpa", "none", 64)
    assert (eager - blocks) == pytest.approx(2 * 2 * 64 * (eager_layer - part["partitioned"]), rel=1e-3)
    assert loss_only < eager and loss_only != blocks
