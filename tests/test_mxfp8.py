"""Issue #14: MXFP8 training (--float8 mxfp8 | mxfp8_wgrad_with_hp; torchao 0.18 MXFP8Linear as torchtitan 0.3.0's
MXFP8LinearConverter applies it). What MXFP8Linear saves for backward is torchao's own code run on the CPU (its
emulated kernels share mx_mm.forward's save_for_backward with the Blackwell ones); its casts are modelled."""

import warnings

import pytest

from tests.hostile_util import run_cli
from vramscope import estimate
from vramscope.estimators.training import MXFP8_BYTES, mxfp8_head
from vramscope.sources import resolve


def _saved_bytes(model, x):
    import torch

    seen = {}

    def pack(t):
        s = t.untyped_storage()
        seen.setdefault(s.data_ptr(), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.float().sum().backward()
    return sum(seen.values()), out


def test_mxfp8_linear_saves_what_a_bf16_linear_saves():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchao")
    warnings.simplefilter("ignore")
    from torchao.prototype.moe_training.mxfp8_linear import MXFP8Linear
    from torchao.quantization.quantize_.common.kernel_preference import KernelPreference

    h, inter, tokens = 256, 512, 128

    class MLP(torch.nn.Module):  # a SwiGLU block: gate, up, down
        def __init__(self, linear):
            super().__init__()
            self.gate, self.up, self.down = linear(h, inter), linear(h, inter), linear(inter, h)

        def forward(self, x):
            return self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))

    def mx(i, o):
        return MXFP8Linear(i, o, bias=False, kernel_preference=KernelPreference.EMULATED)

    torch.manual_seed(0)
    plain = MLP(lambda i, o: torch.nn.Linear(i, o, bias=False)).to(torch.bfloat16)
    torch.manual_seed(0)
    mxfp8 = MLP(mx).to(torch.bfloat16)
    x = torch.randn(2, tokens, h, dtype=torch.bfloat16, requires_grad=True)
    ours, out = _saved_bytes(mxfp8, x)
    ref, _ = _saved_bytes(plain, x)
    assert type(out.grad_fn).__name__ == "mx_mmBackward"  # torchao's MXFP8 autograd function ran
    assert ours == ref  # the high-precision inputs and weights, nothing in float8


def test_head_casts():
    spec = resolve("llama-3-8b", hub=False).spec
    fwd, bwd = mxfp8_head(spec, _w(float8="mxfp8"), 8192)
    v, h, t = 128256, 4096, 8192
    assert fwd == int(MXFP8_BYTES * (t * h + v * h))
    assert bwd == int(max(MXFP8_BYTES * (t * v + v * h), MXFP8_BYTES * (t * v + t * h)))
    _, bwd_hp = mxfp8_head(spec, _w(float8="mxfp8_wgrad_with_hp"), 8192)
    assert bwd_hp == int(MXFP8_BYTES * (t * v + v * h))


def _w(**kw):
    from vramscope.workload import make_workload

    return make_workload(task="pretrain", seq=8192, **kw)


def test_estimate_keeps_the_saved_tensors():
    base = dict(task="pretrain", num_gpus=8, framework="torchtitan", seq=8192, hub=False)
    none = estimate("llama-3-8b", **base)
    mx = estimate("llama-3-8b", float8="mxfp8", **base)
    assert any(a.key == "a_mxfp8" for a in mx.assumptions)
    for phase in none.phases:
        assert mx.phases[phase].get("activations") == none.phases[phase].get("activations"), phase


def test_trace_refuses_mxfp8_in_one_line():
    rc, out, err = run_cli(["trace", "llama-3-8b", "--task", "pretrain", "--float8", "mxfp8", "--no-hub"])
    assert rc == 2 and "MXFP8" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--task", "pretrain", "--float8", "mxfp9", "--no-hub"])
    assert rc == 2 and "--float8" in err and "mxfp8" in err
