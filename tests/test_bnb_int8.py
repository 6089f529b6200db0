"""8-bit LoRA (``--method qlora --quant int8``: bitsandbytes LLM.int8, transformers ``load_in_8bit``) on real
bitsandbytes 0.50.2 CPU tensors.

Weights: transformers' own loader (``BitsAndBytesConfig(load_in_8bit=True)``) makes each linear a
``Linear8bitLt`` with an int8 weight (CB) and one fp32 scale per output row (SCB); ``lm_head`` stays 16-bit.
Saved tensors: on CUDA, ``bnb.matmul`` runs ``MatMul8bitLt`` (on a CPU device in training it switches to
``MatMul8bitFp``), whose forward keeps its input as ``ctx.tensors = (CAt, subA, A)``; run here on the CPU through
bitsandbytes' default kernels, it keeps the input alive after forward — also under non-reentrant checkpointing,
not under reentrant checkpointing."""

from __future__ import annotations

import tempfile
import warnings
import weakref

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")
transformers = pytest.importorskip("transformers")

import vramscope  # noqa: E402
from vramscope.api import load_model, make_workload  # noqa: E402
from vramscope.memory.weights import quantized_linear_bytes  # noqa: E402
from vramscope.model.tensors import groups  # noqa: E402

H, INTER, HEADS, KV, HEAD_DIM, VOCAB = 512, 1792, 4, 1, 128, 2048


def _config():
    return transformers.LlamaConfig(hidden_size=H, intermediate_size=INTER, num_hidden_layers=2,
                                    num_attention_heads=HEADS, num_key_value_heads=KV, head_dim=HEAD_DIM,
                                    vocab_size=VOCAB, max_position_embeddings=1024)


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    d = tempfile.mkdtemp()
    transformers.LlamaForCausalLM(_config()).to(torch.bfloat16).save_pretrained(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = transformers.AutoModelForCausalLM.from_pretrained(
            d, quantization_config=transformers.BitsAndBytesConfig(load_in_8bit=True), dtype=torch.bfloat16,
            device_map="cpu")
    return d, m


def test_int8_weights_match_transformers_loader(loaded):
    d, m = loaded
    spec = load_model(d).spec
    by_name = {g.tensor.name: g.tensor for g in groups(spec) if g.tensor.linear and g.tensor.layer == 0}
    checked = 0
    for name, mod in m.model.layers[0].named_modules():
        if isinstance(mod, bnb.nn.Linear8bitLt):
            w = mod.weight
            assert w.dtype == torch.int8 and w.SCB.dtype == torch.float32
            real = w.untyped_storage().nbytes() + w.SCB.untyped_storage().nbytes()
            t = by_name[f"model.layers.0.{name}.weight"]
            assert quantized_linear_bytes(t, "int8") // t.count == real, name
            checked += 1
    assert checked == 7
    assert m.lm_head.weight.dtype == torch.bfloat16  # kept, as the estimate keeps it


def _kept_after_forward(mod, reentrant):
    """Whether the linear's input is still alive once forward returned (None: no checkpointing)."""
    from bitsandbytes.autograd._functions import MatMul8bitLt
    from torch.utils.checkpoint import checkpoint

    refs = []

    def fn(x):
        a = x * 1.0  # a fresh input only the linear could keep
        refs.append(weakref.ref(a))
        return mod(a)

    x = torch.randn(2, 16, H, dtype=torch.bfloat16, requires_grad=True)
    own = bnb.matmul
    # what bnb.matmul runs on CUDA (it picks MatMul8bitFp for a CPU device in training)
    bnb.matmul = lambda A, B, out=None, state=None, threshold=0.0, bias=None: MatMul8bitLt.apply(A, B, out, bias, state)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = fn(x) if reentrant is None else checkpoint(fn, x, use_reentrant=reentrant)
            alive = refs[0]() is not None
            y.float().sum().backward()
    finally:
        bnb.matmul = own
    assert x.grad is not None and x.grad.shape == x.shape
    return alive


@pytest.mark.parametrize("reentrant,kept", [(None, True), (False, True), (True, False)])
def test_matmul8bitlt_keeps_its_input(loaded, reentrant, kept):
    _, m = loaded
    m.train()
    assert _kept_after_forward(m.model.layers[0].self_attn.q_proj, reentrant) is kept


def test_analytic_kept_inputs_follow_checkpointing():
    """The kept inputs (q/k/v one, gate/up one, down's: 2·h + intermediate per token, in the layer input's dtype)
    are in every layer without checkpointing and under non-reentrant checkpointing, in none under reentrant."""
    from vramscope.estimators import training
    from vramscope.estimators.common import trainable_for

    model = load_model("mistralai/Mistral-7B-v0.1")
    base = dict(task="finetune", method="qlora", quant="int8", batch=1, seq=512)
    for prep, width in (("none", 2), ("peft", 4)):
        w = make_workload(kbit_prep=prep, **base)
        p = training.precision(model, w, "bf16", trainable_for(model, w), [])
        assert training.bnb_saved_inputs(model.spec, w, p) == width * (2 * 4096 + 14336)
    per_layer = 512 * 2 * (2 * 4096 + 14336)
    args = dict(kbit_prep="none", **base)
    plain = vramscope.estimate("mistralai/Mistral-7B-v0.1", grad_checkpointing=True, checkpoint_reentrant=True, **args)
    kept = vramscope.estimate("mistralai/Mistral-7B-v0.1", grad_checkpointing=True, **args)
    assert kept.phases["forward"]["activations"] - plain.phases["forward"]["activations"] == 32 * per_layer


def test_int8_is_for_the_hf_stack():
    from vramscope.errors import VramscopeError

    w = make_workload(task="finetune", method="qlora", quant="int8")
    assert w.quant == "int8" and w.kbit_prep == "peft"
    with pytest.raises(VramscopeError) as e:
        make_workload(task="finetune", method="qlora", quant="int8", framework="litgpt")
    assert e.value.params["field"] == "quant"
    with pytest.raises(VramscopeError) as e:
        make_workload(task="finetune", method="lora", checkpoint_reentrant=True, grad_checkpointing=False)
    assert e.value.params["field"] == "checkpoint_reentrant"
