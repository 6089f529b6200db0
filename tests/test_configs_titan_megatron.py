"""Issue #14: torchtitan TOML job configs (--torchtitan) and Megatron-LM argument lists (--megatron-args),
merged through cli.combine like the DeepSpeed and accelerate imports."""

import builtins
import json

import pytest

from tests.hostile_util import run_cli
from vramscope.configs import from_megatron_args, from_torchtitan
from vramscope.errors import VramscopeError

# torchtitan/models/llama3/train_configs/llama3_70b.toml at 238fa99 (the last TOML release), memory fields
LLAMA3_70B_TOML = """
[model]
name = "llama3"
flavor = "70B"

[training]
local_batch_size = 8
seq_len = 8192

[parallelism]
data_parallel_replicate_degree = 1
data_parallel_shard_degree = -1
tensor_parallel_degree = 8  # 8-way TP
pipeline_parallel_degree = 1
context_parallel_degree = 1

[activation_checkpoint]
mode = "full"

[compile]
enable=false
components = ["model", "loss"]

[quantize.linear.float8]
enable_fsdp_float8_all_gather = false
filter_fqns = ["output"]
"""


def _write(tmp_path, text, name="train.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_torchtitan_preset(tmp_path):
    out = from_torchtitan(_write(tmp_path, LLAMA3_70B_TOML))
    assert out == {"framework": "torchtitan", "task": "pretrain", "batch": 8, "seq": 8192, "dtype": "bf16",
                   "precision": "mixed", "tp": 8, "sequence_parallel": True, "parallelism": "fsdp",
                   "grad_checkpointing": True}


@pytest.mark.parametrize("extra, expect", [
    ('[activation_checkpoint]\nmode = "selective"\nselective_ac_option = "op"\n', {"grad_checkpointing": "op"}),
    ('[activation_checkpoint]\nmode = "selective"\n', {"checkpoint_every": 2}),  # JobConfig's default option "2"
    ('[activation_checkpoint]\nmode = "none"\n', {"grad_checkpointing": False}),
    ('[model]\nconverters = ["float8"]\n[quantize.linear.float8]\nrecipe_name = "rowwise"\n', {"float8": "rowwise"}),
    ('[model]\nconverters = ["float8"]\n[quantize.linear.float8]\nenable_fsdp_float8_all_gather = true\n',
     {"float8": "tensorwise", "fsdp_float8_all_gather": True}),
    ('[parallelism]\ndata_parallel_shard_degree = 8\ndata_parallel_replicate_degree = 4\n',
     {"parallelism": "fsdp", "fsdp_sharding": "hybrid", "nodes": 4, "num_gpus": 32}),
    ('[parallelism]\ndata_parallel_shard_degree = 8\nfsdp_reshard_after_forward = "never"\n',
     {"parallelism": "zero2", "num_gpus": 8}),
    # torchtitan's policy: "never" and "default" are both False under PP, the pipeline stage's FSDP2 kept gathered
    ('[parallelism]\ndata_parallel_shard_degree = 2\npipeline_parallel_degree = 4\n'
     'fsdp_reshard_after_forward = "never"\n', {"parallelism": "fsdp", "pp": 4, "num_gpus": 8}),
    # "always" under PP: every micro-batch's forward reshards (memory/pipeline.py _always_moments)
    ('[parallelism]\ndata_parallel_shard_degree = 2\npipeline_parallel_degree = 4\n'
     'fsdp_reshard_after_forward = "always"\n', {"parallelism": "fsdp", "pp": 4, "pp_reshard_after_forward": True}),
    ('[training]\ndtype = "bfloat16"\n', {"precision": "pure"}),
    ('[compile]\nenable = true\ncomponents = ["model"]\n', {"compile": True, "compile_components": "model"}),
    ('[compile]\nenable = true\ncomponents = ["loss", "model"]\n', {"compile": True, "compile_components": "model,loss"}),
])
def test_torchtitan_fields(tmp_path, extra, expect):
    out = from_torchtitan(_write(tmp_path, extra))
    for k, v in expect.items():
        assert out[k] == v, k


@pytest.mark.parametrize("text, key", [
    ('[activation_checkpoint]\nmode = "memory_budget"\n', "activation_checkpoint.mode"),
    ('[parallelism]\ntensor_parallel_degree = 0\n', "parallelism.tensor_parallel_degree"),
    ('[parallelism]\nfsdp_reshard_after_forward = "sometimes"\n', "parallelism.fsdp_reshard_after_forward"),
    ('[parallelism]\npipeline_parallel_degree = 2\npipeline_parallel_schedule = "ZBVZeroBubble"\n',
     "parallelism.pipeline_parallel_schedule"),
    ('[training]\nseq_len = "long"\n', "training.seq_len"),
    ('[compile]\nenable = true\ncomponents = ["model", "optimizer"]\n', "compile.components"),
])
def test_torchtitan_bad_values_are_named(tmp_path, text, key):
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--torchtitan", _write(tmp_path, text), "--no-hub"])
    assert rc == 2 and key in err and "Traceback" not in err


def test_torchtitan_bad_toml_and_no_reader(tmp_path, monkeypatch):
    rc, _, err = run_cli(["estimate", "llama-3-8b", "--torchtitan", _write(tmp_path, "[training\n"), "--no-hub"])
    assert rc == 2 and "not valid TOML" in err
    real_import = builtins.__import__

    def no_toml(name, *a, **k):
        if name in ("tomllib", "tomli"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_toml)
    with pytest.raises(VramscopeError, match="tomli"):
        from_torchtitan(_write(tmp_path, LLAMA3_70B_TOML))


def test_torchtitan_through_the_cli(tmp_path):
    path = _write(tmp_path, LLAMA3_70B_TOML)
    rc, out, err = run_cli(["estimate", "llama-3-70b", "--torchtitan", path, "--gpus", "64", "--json", "--no-hub"])
    assert rc == 0, err
    d = json.loads(out)
    w = d["workload"]
    assert (w["framework"], w["tp"], w["batch"], w["seq"], w["num_gpus"]) == ("torchtitan", 8, 8, 8192, 64)
    # torchtitan's 64-A100 preset fits its 80 GB GPUs: the tensors allocated per rank and the device total
    assert d["memory"]["allocated_bytes"] < 40 * 2**30 and d["total_bytes"] < 80 * 10**9
    rc, _, err = run_cli(["estimate", "llama-3-70b", "--torchtitan", path, "--seq", "4096", "--no-hub"])
    assert rc == 2 and "--seq" in err and "--torchtitan" in err  # a config and the command line disagree
    rc, _, err = run_cli(["estimate", "llama-3-70b", "--torchtitan", path, "--megatron-args=--bf16", "--no-hub"])
    assert rc == 2 and "one config" in err


MEGATRON = ("--num-layers 80 --hidden-size 8192 --micro-batch-size 1 --seq-length 4096 "
            "--tensor-model-parallel-size 8 --pipeline-model-parallel-size 4 --sequence-parallel "
            "--use-distributed-optimizer --bf16 --recompute-granularity full --recompute-method uniform "
            "--recompute-num-layers=1 --num-layers-per-virtual-pipeline-stage 5")


def test_megatron_args_text_and_file(tmp_path):
    want = {"framework": "megatron", "task": "pretrain", "parallelism": "zero1", "batch": 1, "seq": 4096, "tp": 8,
            "pp": 4, "sequence_parallel": True, "dtype": "bf16", "precision": "mixed", "grad_checkpointing": "full",
            "recompute_method": "uniform", "recompute_num_layers": 1, "pp_schedule": "interleaved"}
    assert from_megatron_args(MEGATRON) == want
    script = _write(tmp_path, "# pretrain_gpt.py arguments\n" + MEGATRON.replace(" --bf16", " \\\n  --bf16"), "args.sh")
    assert from_megatron_args(script) == want
    rc, out, err = run_cli(["estimate", "llama-3-70b", "--megatron-args", MEGATRON, "--gpus", "64", "--grad-accum",
                            "8", "--json", "--no-hub"])
    assert rc == 0, err
    assert json.loads(out)["workload"]["parallelism"] == "zero1"


@pytest.mark.parametrize("args, key", [
    ("--fp16", "--fp16"), ("--recompute-granularity everything", "--recompute-granularity"),
    ("--micro-batch-size", "--micro-batch-size"), ("--recompute-method block", "--recompute-method"),
    ("--seq-length x", "--seq-length"),
])
def test_megatron_bad_args_are_named(args, key):
    rc, _, err = run_cli(["estimate", "llama-3-8b", f"--megatron-args={args}", "--no-hub"])
    assert rc == 2 and key in err and "Traceback" not in err


def test_reshard_after_forward_always_under_pp_reaches_the_stages():
    """--pp-reshard-after-forward (the TOML's "always" under PP) runs pipeline_stages' "always" moments, traced
    and checked in tests/test_pipeline_real.py: the rank's step peak is never above the default's (a unit resharded
    after each forward), and below it on 1F1B's last rank (one layer's bf16 copy not yet re-gathered)."""
    import vramscope

    kw = dict(task="pretrain", framework="torchtitan", pp=2, num_gpus=4, parallelism="fsdp", precision="mixed",
              seq=2048, grad_accum=4)
    base = vramscope.estimate("llama-3-8b", **kw)
    always = vramscope.estimate("llama-3-8b", pp_reshard_after_forward=True, **kw)
    b = {r["stage"]: r["peak_bytes"] for r in base.to_dict()["engine"]["pipeline"]["ranks"]}
    a = {r["stage"]: r["peak_bytes"] for r in always.to_dict()["engine"]["pipeline"]["ranks"]}
    assert all(a[k] <= b[k] for k in b) and any(a[k] < b[k] for k in b), (a, b)
    ids = {n.key for n in always.assumptions}
    assert "a_pp_fsdp_always" in ids and "a_pp_fsdp_gathered" not in ids
