"""Issue #14: Megatron-LM's alltoall MoE dispatcher per rank (--framework megatron with MoE; capacity factor and
drop-and-pad). The permutation's saved bytes are Megatron core_v0.19.0's own (bench/megatron_moe_dispatch.py runs
its moe_utils functions on the CPU; validation/reference/megatron_moe_dispatch.json is their output)."""

import json
from pathlib import Path

import pytest

from tests.hostile_util import run_cli
from vramscope import estimate
from vramscope.memory.moe_dispatch import capacity, dispatcher_saved, gather_buffer, routed_rows

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "validation" / "reference" / "megatron_moe_dispatch.json"
MIRROR = Path("/work/.mirror/NVIDIA+Megatron-LM/repo")


def _cases():
    return json.loads(RECORD.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", _cases(),
                         ids=lambda c: f"{c['dispatcher']}-E{c['experts']}k{c['k']}cf{c['capacity_factor']}")
def test_dispatcher_saved_is_megatrons(case):
    args = case["tokens"], case["experts"], case["k"], case["capacity_factor"], case["drop_and_pad"]
    assert dispatcher_saved(*args, case["dispatcher"], case.get("probs_bytes", 4)) == case["saved_bytes"]
    assert routed_rows(*args) == case["routed_rows"]


def test_record_covers_both_paths():
    cases = _cases()
    assert {c["drop_and_pad"] for c in cases} == {True, False}
    assert {c["dispatcher"] for c in cases} == {"allgather", "alltoall"}
    # dropless: the whole E·T int64 argsort outlives forward (the probs are gathered with a slice of it)
    free = next(c for c in cases if not c["drop_and_pad"])
    assert free["saved_bytes"] > 8 * free["tokens"] * free["experts"]


@pytest.mark.skipif(not MIRROR.exists(), reason="no Megatron-LM clone")
def test_megatron_code_live():
    pytest.importorskip("torch")
    import importlib.util

    spec = importlib.util.spec_from_file_location("mmd", ROOT / "bench" / "megatron_moe_dispatch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = mod.megatron_functions(str(MIRROR), "core_v0.19.0")
    r = mod.run_case(fn, 256, 32, 4, 64, 4, 1.5, True)
    assert r["saved_bytes"] == dispatcher_saved(256, 32, 4, 1.5, True) == 16 * 32 * capacity(256, 32, 4, 1.5)
    r = mod.run_allgather(fn, 128, 16, 2, 64, 2)
    assert r["saved_bytes"] == dispatcher_saved(128, 16, 2, None, False, "allgather", 4)


BASE = dict(task="pretrain", framework="megatron", num_gpus=8, ep=8, seq=4096, precision="pure", hub=False)


def _acts(**kw):
    return estimate("qwen3-30b-a3b", **BASE, **kw).phases["forward"]["activations"]


# qwen3-30b-a3b: 128 experts, top-8, h 2048, expert I 768, 48 MoE layers; 4096 tokens on the rank
T, K, H, I, LAYERS = 4096, 8, 2048, 768, 48


@pytest.mark.parametrize("dispatcher", ["allgather", "alltoall"])
def test_capacity_factor_moves_the_expert_rows(dispatcher):
    e = estimate("qwen3-30b-a3b", **BASE, moe_dispatcher=dispatcher)
    assert any(a.key == "a_megatron_moe" for a in e.assumptions)
    per_row = 2 * H + 2 + 3 * 2 * I
    base = _acts(moe_dispatcher=dispatcher)
    pad = _acts(moe_dispatcher=dispatcher, moe_capacity_factor=1.25, moe_pad_to_capacity=True)
    rows = 128 * capacity(T, 128, K, 1.25)
    expect = LAYERS * ((rows - T * K) * per_row + dispatcher_saved(T, 128, K, 1.25, True, dispatcher)
                       - dispatcher_saved(T, 128, K, None, False, dispatcher))
    assert pad - base == expect
    # a capacity that drops nothing on a balanced rank changes only the indices (no padding)
    assert _acts(moe_dispatcher=dispatcher, moe_capacity_factor=2.0) == base


def test_allgather_holds_the_gathered_tokens_once():
    # Megatron's default dispatcher: the TP × EP group's hidden states in one global buffer (8 ranks × 4096 × 2048
    # bf16 = 128 MiB), besides its own indices
    ag, a2a = _acts(), _acts(moe_dispatcher="alltoall")
    assert ag - a2a == gather_buffer(T, H, 8, 1, 2) + LAYERS * (
        dispatcher_saved(T, 128, K, None, False, "allgather") - dispatcher_saved(T, 128, K, None, False))
    assert gather_buffer(T, H, 8, 1, 2) == 128 * 2**20


@pytest.mark.parametrize("args, named", [
    (["--moe-expert-capacity-factor", "1.0"], "--moe-expert-capacity-factor"),               # not megatron
    (["--moe-token-dispatcher-type", "alltoall"], "--moe-token-dispatcher-type"),
    (["--framework", "megatron", "--moe-token-dispatcher-type", "flex"], "--moe-token-dispatcher-type"),
    (["--framework", "megatron", "--moe-pad-expert-input-to-capacity"], "--moe-pad-expert-input-to-capacity"),
    (["--framework", "megatron", "--moe-expert-capacity-factor", "0"], "--moe-expert-capacity-factor"),
    (["--framework", "megatron", "--moe-expert-capacity-factor", "lots"], "--moe-expert-capacity-factor"),
])
def test_bad_values_one_line(args, named):
    rc, out, err = run_cli(["estimate", "qwen3-30b-a3b", "--task", "pretrain", "--no-hub"] + args)
    assert rc == 2 and named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_dense_model_refuses_a_capacity():
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--task", "pretrain", "--framework", "megatron",
                            "--moe-expert-capacity-factor", "1.0", "--no-hub"])
    assert rc == 2 and "--moe-expert-capacity-factor" in err and len(err.strip().splitlines()) == 1


def test_megatron_args_import_the_dispatcher():
    from vramscope.configs import from_megatron_args

    out = from_megatron_args("--bf16 --expert-model-parallel-size 8 --moe-token-dispatcher-type alltoall "
                             "--moe-expert-capacity-factor 1.25 --moe-pad-expert-input-to-capacity")
    assert (out["ep"], out["moe_dispatcher"], out["moe_capacity_factor"], out["moe_pad_to_capacity"]) == \
           (8, "alltoall", 1.25, True)
    for bad in ("--moe-token-dispatcher-type flex", "--moe-expert-capacity-factor many"):
        rc, _, err = run_cli(["estimate", "qwen3-30b-a3b", "--megatron-args", bad, "--no-hub"])
        assert rc == 2 and bad.split()[0] in err and len(err.strip().splitlines()) == 1
