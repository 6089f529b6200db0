"""What a bitsandbytes 4-bit linear materializes for its matmul, by version and dtypes (``--bnb-version``,
``--bnb-compute-dtype``, LitGPT's fp16 quant state): run on real CPU tensors, the ops recorded at dispatch.

The sizes of CPU kernels' own intermediates are the CPU backend's (its default ``dequantize_4bit`` computes in fp32
before its final cast), not CUDA's, whose kernel writes the dequantized weight in the requested dtype; what is
checked is the sequence the autograd function asks for: bitsandbytes 0.50.2's ``gemm_4bit`` dequantizes straight
to the compute dtype, 0.42.0's ``MatMul4Bit`` (vendored, tests/bnb_0_42_0.py) in the quant state's dtype and then
casts to the compute dtype, both alive during the cast. ``estimators/training.py`` ``bnb_dequant_bytes`` must give
the bytes of that sequence."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from vramscope.api import make_workload  # noqa: E402
from vramscope.estimators.training import bnb_dequant_bytes  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import bnb_0_42_0  # noqa: E402

OUT, IN, TOKENS = 512, 256, 16
WIDTH = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}
NAMES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _linear(stored, compute):
    lin = bnb.nn.Linear4bit(IN, OUT, bias=False, compute_dtype=NAMES[compute], quant_type="nf4")
    w4, state = bnb.functional.quantize_4bit(torch.randn(OUT, IN, dtype=NAMES[stored]), quant_type="nf4")
    lin.weight = bnb.nn.Params4bit(w4, requires_grad=False, quant_state=state, quant_type="nf4", bnb_quantized=True)
    return lin


def _weight_sized(version, stored, compute, phase):
    """Bytes per weight element of the weight-sized tensors forward or backward makes while the dequantized weight
    is alive (the dequantization's result and its cast) as the dispatcher sees them (0.50.2's forward is one
    ``gemm_4bit`` op: what its kernel makes is not seen here)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    made = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = str(func)
            if isinstance(out, torch.Tensor) and out.numel() == OUT * IN and (
                    "dequantize_4bit" in name or "_to_copy" in name):
                made.append(WIDTH[out.dtype])
            return out

    lin = _linear(stored, compute)
    x = torch.randn(TOKENS, IN, dtype=torch.bfloat16, requires_grad=True)
    own = bnb.matmul_4bit
    if version == "0.42.0":
        bnb.matmul_4bit = bnb_0_42_0.matmul_4bit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if phase == "forward":
                with Record():
                    y = lin(x)
            else:
                y = lin(x)
                with Record():
                    y.float().sum().backward()
    finally:
        bnb.matmul_4bit = own
    return sum(made)


@pytest.mark.parametrize("version,stored,compute,framework", [
    ("0.50.2", "bf16", "bf16", "hf"), ("0.50.2", "bf16", "fp32", "hf"), ("0.42.0", "bf16", "bf16", "hf"),
    ("0.42.0", "bf16", "fp32", "hf"), ("0.42.0", "fp16", "bf16", "litgpt"), ("0.50.2", "fp16", "bf16", "litgpt")])
def test_dequantized_weight_bytes(version, stored, compute, framework):
    w = make_workload(task="finetune", method="qlora", framework=framework, bnb_version=version,
                      bnb_compute_dtype=compute)
    assert _weight_sized(version, stored, compute, "backward") == bnb_dequant_bytes(w, "bf16")
    if version == "0.42.0":
        assert _weight_sized(version, stored, compute, "forward") == bnb_dequant_bytes(w, "bf16", forward=True)
    else:  # one gemm_4bit op, whose kernel dequantizes to A.dtype (backends/default/ops.py, cuda/ops.py)
        assert bnb_dequant_bytes(w, "bf16", forward=True) == WIDTH[NAMES[compute]]


def test_compute_dtype_option():
    import vramscope

    base = dict(task="finetune", method="qlora", batch=1, seq=512)
    bf16 = vramscope.estimate("mistralai/Mistral-7B-v0.1", **base)
    fp32 = vramscope.estimate("mistralai/Mistral-7B-v0.1", bnb_compute_dtype="fp32", **base)
    assert fp32.total_bytes >= bf16.total_bytes
    assert any("bnb_4bit_compute_dtype" in a.render() for a in fp32.assumptions)
    # before 0.43.2 each linear keeps its input cast to the compute dtype (Linear4bit.forward: x.to(compute_dtype)):
    # bf16 inputs under bf16 compute are shared (q/k/v one, gate/up one), under fp32 compute each linear has its copy
    from vramscope.api import load_model
    from vramscope.estimators import training
    from vramscope.estimators.common import trainable_for

    model = load_model("mistralai/Mistral-7B-v0.1")
    per_token = {}
    for compute in ("bf16", "fp32"):
        w = make_workload(bnb_version="0.43.1", kbit_prep="none", bnb_compute_dtype=compute, **base)
        p = training.precision(model, w, "bf16", trainable_for(model, w), [])
        per_token[compute] = training.bnb_saved_inputs(model.spec, w, p)
    assert per_token == {"bf16": 2 * (2 * 4096 + 14336), "fp32": 4 * (5 * 4096 + 14336)}


@pytest.mark.parametrize("value", ["fp8", "int4", "", "bfloat17"])
def test_compute_dtype_refused(value):
    import vramscope
    from vramscope.errors import VramscopeError

    with pytest.raises(VramscopeError) as e:
        vramscope.estimate("mistralai/Mistral-7B-v0.1", task="finetune", method="qlora", bnb_compute_dtype=value)
    assert e.value.params["field"] == "bnb_compute_dtype"


def test_compute_dtype_is_a_qlora_option():
    import vramscope
    from vramscope.errors import VramscopeError

    with pytest.raises(VramscopeError) as e:
        vramscope.estimate("mistralai/Mistral-7B-v0.1", task="finetune", method="lora", bnb_compute_dtype="fp32")
    assert e.value.params["field"] == "bnb_compute_dtype"


def test_compute_dtype_cli_refusal_is_one_line(capsys):
    from vramscope.cli import main

    rc = main(["estimate", "mistralai/Mistral-7B-v0.1", "--task", "finetune", "--method", "qlora",
               "--bnb-compute-dtype", "fp8", "--no-hub"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--bnb-compute-dtype" in err and len(err.splitlines()) == 1 and "Traceback" not in err
