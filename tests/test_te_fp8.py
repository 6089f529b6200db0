"""Transformer Engine FP8 under Megatron-LM (--te-fp8, --megatron-args "--fp8-format ..."): memory/te_fp8.py.

The scale-shape rules, the non-TN capability test and the recipe defaults are Transformer Engine's own answers
(bench/te_fp8_shapes.py runs TE v2.18's and the 2.20.2 wheel's Python on the CPU; validation/te_fp8_shapes.json);
the per-layer figures are derived by hand from TE v2.18 / Megatron-LM core_v0.19.0 (memory/te_fp8.py docstring)."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.hostile_util import run_cli
from vramscope import estimate
from vramscope.configs import from_megatron_args
from vramscope.memory import te_fp8

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "validation" / "te_fp8_shapes.json"


def _bench():
    spec = importlib.util.spec_from_file_location("te_fp8_shapes", ROOT / "bench" / "te_fp8_shapes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _records():
    return json.loads(RECORD.read_text(encoding="utf-8"))["records"]


@pytest.mark.parametrize("rec", _records(), ids=lambda r: r["source"][:40])
def test_te_answers_reproduced(rec):
    assert rec["mxfp8"] and rec["blockwise"] and rec["non_tn"]
    assert _bench().compare(rec) == []
    # the defaults the module docstring states
    assert rec["recipes"]["DelayedScaling.amax_history_len"] == 1024
    assert rec["recipes"]["Float8BlockScaling.x_block_scaling_dim"] == 1


def test_compare_catches_a_wrong_rule(monkeypatch):
    rec = _records()[0]
    monkeypatch.setattr(te_fp8, "mxfp8_scale_shape", lambda shape, col: (shape[0], shape[-1] // 32))
    assert any(b.startswith("mxfp8") for b in _bench().compare(rec))


@pytest.mark.skipif(not os.environ.get("VRAMSCOPE_TE_SRC"), reason="set VRAMSCOPE_TE_SRC to an unpacked TE wheel")
def test_te_live():
    mod = _bench()
    assert mod.compare(mod.answers(mod.load(Path(os.environ["VRAMSCOPE_TE_SRC"])))) == []


def test_quantized_bytes_by_hand():
    n = 4096 * 4096
    # Float8Tensor: _data and (Hopper) _transpose, one fp32 scale_inv
    assert te_fp8.quantized_bytes("delayed", (4096, 4096), True, True, nontn=False) == 2 * n + 4
    assert te_fp8.quantized_bytes("tensorwise", (4096, 4096), True, True, nontn=True) == n + 4
    assert te_fp8.quantized_bytes("delayed", (4096, 4096), False, True, nontn=False) == n + 4
    # MXFP8: two data tensors, row-wise scales 4096 x 128, column-wise 128 x 4096
    assert te_fp8.quantized_bytes("mxfp8", (4096, 4096), True, True) == 2 * n + 2 * 128 * 4096
    # padded scales: 1000 rows round to 1024 (row-wise), 1000 // 32 = 31 blocks round to 32 (column-wise)
    assert te_fp8.mxfp8_scale_shape((1000 * 32, 64), False) == (32000, 4)
    assert te_fp8.mxfp8_scale_shape((1000, 64), True) == (32, 128)
    # blockwise 128x128 weight: (32, 32) fp32 scales each way
    assert te_fp8.quantized_bytes("blockwise", (4096, 4096), True, True, block_dim=2) == 2 * n + 2 * 4 * 32 * 32


def test_layer_delta_by_hand():
    # Llama-3-8B: h 4096, q 4096, I 14336, bf16
    args = 4096, 4096, 14336, 2.0
    assert te_fp8.layer_delta_per_token(*args, "delayed") == -2 * 4096 - 14336 + 4096
    assert te_fp8.layer_delta_per_token(*args, "tensorwise") == -2 * 4096 - 14336
    assert te_fp8.layer_delta_per_token(*args, "delayed", selective=True) == -2 * 4096 - 14336 - 4096
    assert te_fp8.layer_delta_per_token(*args, "tensorwise", selective=True) == -2 * 4096 - 14336
    e = 1 + 1 / 32
    assert te_fp8.layer_delta_per_token(*args, "mxfp8") == pytest.approx((e - 2) * (2 * 4096 + 14336))


def test_meta_bytes():
    # DelayedScaling state of one GEMM: scale (3 and 2 fp32) and amax_history (len x 3, len x 2), 512-byte blocks
    assert te_fp8.meta_bytes("delayed", 1) == 4 * 512
    assert te_fp8.meta_bytes("delayed", 1024) == 512 + 512 + 12 * 1024 + 8 * 1024
    assert te_fp8.meta_bytes("mxfp8", 1024) == 0


def test_capabilities():
    assert not te_fp8.non_tn("9.0") and te_fp8.non_tn("10.0") and not te_fp8.non_tn("12.0") and te_fp8.non_tn("13.0")
    assert te_fp8.supported("mxfp8", "10.0") and not te_fp8.supported("mxfp8", "9.0")
    assert not te_fp8.supported("mxfp8", "12.0") and te_fp8.supported("blockwise", "9.0")
    assert not te_fp8.supported("delayed", "8.0") and te_fp8.supported("delayed", "8.9")


BASE = dict(task="pretrain", framework="megatron", num_gpus=8, parallelism="zero1", seq=4096, hub=False)
LAYERS, TOKENS = 32, 4096
LINEAR = 6144 * 4096 + 4096 * 4096 + 28672 * 4096 + 4096 * 14336  # one Llama-3-8B layer's four TE linears


def _forward(**kw):
    return estimate("llama-3-8b", **{**BASE, "gpus": ["h100"], **kw}).phases["forward"]


@pytest.mark.parametrize("recipe, per_token", [("delayed", -18432), ("tensorwise", -22528),
                                               ("blockwise", -21824)])
def test_estimate_moves_by_what_te_keeps(recipe, per_token):
    none, fp8 = _forward(), _forward(te_fp8=recipe)
    assert fp8["activations"] - none["activations"] == LAYERS * TOKENS * per_token
    meta = te_fp8.meta_bytes(recipe, 1) * 4 * LAYERS
    if recipe == "blockwise":
        scales = 4 * 2 * sum(-(-o // 128) * -(-(-(-i // 128)) // 4) * 4 for o, i in (
            (6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)))
        assert fp8["weights"] - none["weights"] == LAYERS * (2 * LINEAR + scales) + meta
    else:  # Hopper: _data and _transpose
        assert fp8["weights"] - none["weights"] == LAYERS * (2 * LINEAR + 4 * 4) + meta


def test_blackwell_and_param_gather():
    none = _forward(gpus=["b200"])
    one = _forward(gpus=["b200"], te_fp8="tensorwise")
    assert one["weights"] - none["weights"] == LAYERS * (LINEAR + 16) + te_fp8.meta_bytes("tensorwise", 1) * 4 * LAYERS
    gathered = _forward(te_fp8="delayed", fp8_param_gather=True)
    # the bf16 weights (2 bytes) give way to FP8 data and transpose (2 bytes on Hopper)
    assert gathered["weights"] - _forward()["weights"] == LAYERS * 16 + te_fp8.meta_bytes("delayed", 1) * 4 * LAYERS
    assert gathered["gradients"] == _forward()["gradients"]


def test_megatron_args_accepted(monkeypatch):
    base = "--bf16 --micro-batch-size 1 --seq-length 4096 --use-distributed-optimizer"
    assert from_megatron_args(base + " --fp8-format hybrid")["te_fp8"] == "delayed"
    got = from_megatron_args(base + " --fp8-format e4m3 --fp8-recipe mxfp8 --fp8-amax-history-len 16")
    assert got["te_fp8"] == "mxfp8" and "fp8_amax_history_len" not in got
    got = from_megatron_args(base + " --fp8-format hybrid --fp8-amax-history-len=1024 --fp8-param-gather")
    assert got["fp8_amax_history_len"] == 1024 and got["fp8_param_gather"] is True
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--megatron-args", base + " --fp8-format hybrid",
                            "--gpus", "8", "--gpu", "h100", "--json", "--no-hub"])
    assert rc == 0, err
    body = json.loads(out)
    assert body["workload"]["te_fp8"] == "delayed"
    assert any("Transformer Engine v2.18" in a and "core_v0.19.0" in a
               for a in body["assumptions"]), body["assumptions"]
    monkeypatch.setenv("VRAMSCOPE_LANG", "zh")
    rc, out, _ = run_cli(["estimate", "llama-3-8b", "--megatron-args", base + " --fp8-format hybrid",
                          "--gpus", "8", "--gpu", "h100", "--no-hub"])
    assert rc == 0 and "Transformer Engine v2.18 FP8" in out and "配方" in out


@pytest.mark.parametrize("args, key", [
    ("--fp8-format e5m2", "--fp8-format"), ("--fp8-format hybrid --fp8-recipe custom", "--fp8-recipe"),
    ("--fp8-recipe tensorwise", "--fp8-recipe"), ("--fp8-format hybrid --fp8-param-gather", "--fp8-param-gather"),
    ("--fp8-format hybrid --first-last-layers-bf16", "--first-last-layers-bf16"),
    ("--fp8-format hybrid --fp8-dot-product-attention", "--fp8-dot-product-attention"),
    ("--fp8-amax-history-len 4", "--fp8-amax-history-len"),
])
def test_megatron_fp8_refusals(args, key):
    rc, _, err = run_cli(["estimate", "llama-3-8b", f"--megatron-args=--bf16 {args}", "--no-hub"])
    assert rc == 2 and key in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, key", [
    (["--te-fp8", "delayed", "--task", "pretrain"], "--te-fp8"),  # not Megatron
    (["--framework", "megatron", "--task", "pretrain", "--te-fp8", "mxfp8", "--gpu", "h100"], "--te-fp8"),
    (["--framework", "megatron", "--task", "pretrain", "--te-fp8", "tensorwise", "--fp8-amax-history-len", "8"],
     "--fp8-amax-history-len"),
    (["--framework", "megatron", "--task", "pretrain", "--te-fp8", "mxfp8", "--fp8-param-gather", "--gpus", "2",
      "--parallelism", "zero1"], "--fp8-param-gather"),
    (["--framework", "megatron", "--task", "pretrain", "--fp8-param-gather"], "--fp8-param-gather"),
    (["--framework", "megatron", "--task", "pretrain", "--te-fp8", "delayed", "--dtype", "fp16"], "--te-fp8"),
    (["--framework", "megatron", "--task", "pretrain", "--te-fp8", "delayed", "--float8", "tensorwise"], "--te-fp8"),
])
def test_cli_refusals(argv, key):
    rc, _, err = run_cli(["estimate", "llama-3-8b", *argv, "--no-hub"])
    assert rc == 2 and key in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_moe_refused():
    rc, _, err = run_cli(["estimate", "qwen3-30b-a3b", "--framework", "megatron", "--task", "pretrain",
                          "--te-fp8", "delayed", "--no-hub"])
    assert rc == 2 and "--te-fp8" in err and "MoE" in err


def test_tensor_and_sequence_parallel_by_hand():
    # tp 2 with sequence parallelism: per rank q 2048, I 7168, kv 512; the norm outputs (h wide) are the local
    # sequence shard (LayerNormLinear saves ln_out before its all-gather)
    kw = dict(tp=2, sequence_parallel=True)
    none, fp8 = _forward(**kw), _forward(te_fp8="delayed", **kw)
    assert fp8["activations"] - none["activations"] == LAYERS * TOKENS * (2 * (1 - 2) * 4096 // 2 - 7168 + 2048)
    linear = 3072 * 4096 + 4096 * 2048 + 14336 * 4096 + 4096 * 7168
    assert fp8["weights"] - none["weights"] == LAYERS * (2 * linear + 16) + te_fp8.meta_bytes("delayed", 1) * 4 * LAYERS
