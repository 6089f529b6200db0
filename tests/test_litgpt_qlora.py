"""LitGPT QLoRA (``litgpt finetune lora --quantize bnb.nf4``) traced on real bitsandbytes 4-bit CPU tensors.

The model is LitGPT 0.5.13's own ``litgpt.lora.GPT``, built under Lightning 2.6.6's
``BitsandbytesPrecision("nf4", bf16).module_init_context()`` (every ``torch.nn.Linear`` replaced while it is
built: ``lm_head`` too) and quantized as Lightning's ``_Linear4bit.quantize`` does (an fp16 copy, then
``quantize_4bit``); the step is LitGPT's ``fit`` (``vramscope.trace.litgpt.run_litgpt``), two iterations under
vramscope's tracker. bitsandbytes 0.50.2 is what is installed; the published rows ran 0.42.0, whose
``MatMul4Bit`` (vendored verbatim in ``tests/bnb_0_42_0.py``) keeps each input as ``ctx.tensors = (A, B)`` and
dequantizes through the quant state's fp16. The analytic ``--framework litgpt --method qlora`` estimate must agree
with both, phase by phase."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")
pytest.importorskip("litgpt")
pytest.importorskip("lightning")

import vramscope  # noqa: E402
from vramscope.api import make_workload  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import bnb_0_42_0  # noqa: E402

pytestmark = pytest.mark.trace

SHAPE = dict(num_hidden_layers=2, hidden_size=256, intermediate_size=1024, num_attention_heads=4,
             num_key_value_heads=2, head_dim=64, vocab_size=4096, tie_word_embeddings=False)
RUN = dict(task="finetune", framework="litgpt", method="qlora", quant="nf4", seq=256, batch=2, optimizer="adamw",
           lora_dropout=0.05)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from vramscope.sources import catalog

    path = tmp_path_factory.mktemp("litgpt_qlora") / "config.json"
    path.write_text(json.dumps(dict(catalog.find("llama-3.2-1b")["config"], **SHAPE)))
    return str(path)


_TRACED: dict = {}


def _trace(config, version, litgpt="0.5.13"):
    """Per-phase live bytes of the LitGPT step on real tensors, bitsandbytes' matmul as ``version`` runs it."""
    if (config, version, litgpt) not in _TRACED:
        _TRACED[config, version, litgpt] = _run(config, version, litgpt)
    return _TRACED[config, version, litgpt]


def _run(config, version, litgpt):
    from vramscope.sources import resolve
    from vramscope.trace.estimator import _trace_phases
    from vramscope.trace.litgpt import run_litgpt
    from vramscope.trace.tracker import make_tracker

    w = make_workload(bnb_version=version, litgpt_version=litgpt, **RUN)
    category, tracker = {}, make_tracker(None, None)

    def mark(tensors, cat):
        for t in tensors:
            k = tracker.key_of(t)
            if k is not None and k not in category:
                category[k] = cat

    own = bnb.matmul_4bit
    if version == "0.42.0":
        bnb.matmul_4bit = bnb_0_42_0.matmul_4bit
    torch.manual_seed(0)
    try:
        with warnings.catch_warnings(), tracker:
            warnings.simplefilter("ignore")
            run_litgpt(resolve(config), w, tracker, mark, category, torch.bfloat16)
    finally:
        bnb.matmul_4bit = own
    return {ph: sum(parts.values()) for ph, parts in _trace_phases(tracker.log, category, w).items()}


def _analytic(config, version, litgpt="0.5.13"):
    e = vramscope.estimate(config, bnb_version=version, litgpt_version=litgpt, **RUN)
    return {ph: sum(v for k, v in parts.items() if k not in ("overhead", "allocator_cache"))
            for ph, parts in e.phases.items()}


def test_lightning_quantizes_every_linear_the_head_too(config):
    """Lightning's module_init_context makes every linear a Linear4bit, lm_head included, quantized from fp16; the
    weights the analytic estimate loads are the model's parameters and quant states (within the 16-value code
    maps and 512-byte rounding; the RoPE cos/sin buffers, 64 KiB here, are not among the analytic weights)."""
    from vramscope.sources import resolve
    from vramscope.trace import litgpt

    built = []
    quantize = litgpt.quantize_lightning
    litgpt.quantize_lightning = lambda net: built.append(quantize(net))
    try:
        net = litgpt.build_litgpt(resolve(config), make_workload(**RUN), torch.bfloat16)
    finally:
        litgpt.quantize_lightning = quantize
    assert built == [5 * SHAPE["num_hidden_layers"] + 1]  # qkv, proj, fc_1, fc_2, mlp.proj; lm_head
    assert isinstance(net.lm_head.linear, bnb.nn.Linear4bit)
    assert net.lm_head.linear.weight.quant_state.dtype == torch.float16
    real = sum(p.untyped_storage().nbytes() for p in net.parameters())
    real += sum(m.weight.quant_state.absmax.untyped_storage().nbytes() for m in net.modules()
                if isinstance(m, bnb.nn.Linear4bit))
    loaded = vramscope.estimate(config, **RUN).phases["load"]["weights"]
    assert abs(loaded - real) <= 9 * 16 * 4 + 4 * 512, (loaded, real)


@pytest.mark.parametrize("version,litgpt", [("0.50.2", "0.5.13"), ("0.42.0", "0.4")])
def test_trace_on_real_4bit_tensors_agrees_with_analytic(config, version, litgpt):
    """Phase by phase within 3% (measured: within 2%; load: the RoPE cache and 512-byte rounding). 0.42.0 with
    LitGPT 0.4.x, as the published rows ran."""
    traced, analytic = _trace(config, version, litgpt), _analytic(config, version, litgpt)
    for phase in ("load", "forward", "backward", "optimizer_step"):
        assert analytic[phase] == pytest.approx(traced[phase], rel=0.03), (phase, analytic, traced)


def test_bnb_0_42_0_keeps_two_steps_of_inputs(config):
    """0.42.0's ctx.tensors outlive backward: through the optimizer step one step's inputs more than 0.50.2 keeps,
    and in the next forward two steps'; the analytic kept inputs match both differences within 2%."""
    from vramscope.estimators.training import litgpt_bnb_inputs
    from vramscope.sources import resolve

    old, new = _trace(config, "0.42.0", "0.4"), _trace(config, "0.50.2", "0.4")
    spec = resolve(config).spec
    per_layer, head = litgpt_bnb_inputs(spec, make_workload(bnb_version="0.42.0", **RUN), 2.0)
    inputs = 2 * 256 * (per_layer * SHAPE["num_hidden_layers"] + head)
    assert inputs == pytest.approx(old["optimizer_step"] - new["optimizer_step"], rel=0.02)
    assert per_layer == 2 * (256 + 256 + 256 + 1024)  # qkv, proj, fc (shared by fc_1, fc_2), mlp.proj: q+v LoRA


def test_litgpt_0_5_stable_embedding_gradient_stays(config):
    """LitGPT 0.5.x swaps in bitsandbytes' StableEmbedding after the optimizer took the parameters: its gradient
    (vocabulary × width in bf16) is alive through the next step, where 0.4.x had none; the analytic gradients differ
    by exactly that."""
    new, old = _trace(config, "0.50.2"), _trace(config, "0.50.2", "0.4")
    grad = SHAPE["vocab_size"] * SHAPE["hidden_size"] * 2
    assert new["optimizer_step"] - old["optimizer_step"] == pytest.approx(grad, abs=4 * 512)
    a = vramscope.estimate(config, bnb_version="0.50.2", **RUN).phases["optimizer_step"]["gradients"]
    b = vramscope.estimate(config, bnb_version="0.50.2", litgpt_version="0.4", **RUN).phases["optimizer_step"]["gradients"]
    assert a - b == grad
