"""DeepSpeed and accelerate FSDP configs parse into workloads; invalid ones get clear errors."""

import json
from pathlib import Path

import pytest

from vramscope.cli import main
from vramscope.configs import from_accelerate_fsdp, from_deepspeed
from vramscope.errors import VramscopeError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_deepspeed_example_from_the_docs():
    w = from_deepspeed(str(EXAMPLES / "ds_zero3_offload.json"))
    # the three sizes left "auto" are the HF Trainer's to fill from the model's hidden size
    assert w == {"parallelism": "zero3", "offload": "optimizer+params", "zero_max_live": 1_000_000_000,
                 "zero_auto": ("reduce_bucket", "zero_persistence", "zero_prefetch")}


def test_deepspeed_fields(tmp_path):
    p = tmp_path / "ds.json"
    p.write_text(json.dumps({"bf16": {"enabled": True}, "zero_optimization": {"stage": 2,
                 "offload_optimizer": {"device": "cpu"}}, "train_micro_batch_size_per_gpu": 4,
                 "gradient_accumulation_steps": 8}))
    assert from_deepspeed(str(p)) == {"parallelism": "zero2", "offload": "optimizer", "dtype": "bf16",
                                      "precision": "deepspeed", "batch": 4, "grad_accum": 8}


@pytest.mark.parametrize("cfg, match", [
    ({"zero_optimization": {"stage": 5}}, "stage"),
    ({"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}, "only with stage 3"),
    ({"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "gpu9"}}}, "none, cpu or nvme"),
    ([1, 2], "JSON object"),
])
def test_deepspeed_invalid(tmp_path, cfg, match):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(VramscopeError, match=match):
        from_deepspeed(str(p))


def test_accelerate_fsdp_example():
    w = from_accelerate_fsdp(str(EXAMPLES / "accelerate_fsdp.yaml"))
    assert w == {"parallelism": "fsdp", "num_gpus": 8, "dtype": "bf16", "precision": "mixed", "fsdp_version": 1,
                 "nodes": 1, "fsdp_backward_prefetch": "pre"}  # the example's fsdp_backward_prefetch: BACKWARD_PRE


def test_accelerate_invalid(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("fsdp_config:\n  fsdp_sharding_strategy: SOMETHING\n")
    with pytest.raises(VramscopeError, match="fsdp_sharding_strategy"):
        from_accelerate_fsdp(str(p))


def test_cli_with_configs(capsys):
    assert main(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", str(EXAMPLES / "accelerate_fsdp.yaml"),
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["workload"]["parallelism"] == "fsdp" and d["workload"]["num_gpus"] == 8
    # one GPU with ZeRO-3 + CPU offload is a real setup (ZeRO-Offload on a single card)
    assert main(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed",
                 str(EXAMPLES / "ds_zero3_offload.json"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["workload"]["parallelism"] == "zero3" and d["workload"]["num_gpus"] == 1
    assert d["engine"]["host_bytes"] > 8.03e9 * 16 * 0.99  # fp32 master + fp32 grads + Adam, all on the host


def test_deepspeed_reference_estimators_reproduce_deepspeed():
    """The reproduced formulas return exactly what DeepSpeed 0.19.8's own functions returned."""
    import json
    from pathlib import Path

    from vramscope.estimators.deepspeed_ref import zero2_model_states, zero3_model_states

    path = Path(__file__).parent.parent / "validation" / "reference" / "deepspeed_estimators.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert len(rows) == 64
    for r in rows:
        if r["stage"] == 2:
            got = zero2_model_states(r["total_params"], r["gpus_per_node"], r["nodes"], r["cpu_offload"])
        else:
            got = zero3_model_states(r["total_params"], r["largest_layer_params"], r["gpus_per_node"], r["nodes"],
                                     r["cpu_offload"], r["cpu_offload_params"], r["zero_init"])
        assert got == (r["cpu_bytes"], r["gpu_bytes"]), r


def test_config_imports_multi_gpu_knobs(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {
        "stage": 3, "offload_optimizer": {"device": "nvme", "nvme_path": "/nvme"}, "offload_param": {"device": "cpu"},
        "stage3_prefetch_bucket_size": 2e8, "stage3_max_live_parameters": 3e8, "reduce_bucket_size": "auto",
        "stage3_param_persistence_threshold": 1e4}}))
    got = from_deepspeed(str(ds))
    assert got["offload_device"] == "nvme" and got["zero_prefetch"] == 200_000_000
    assert got["zero_max_live"] == 300_000_000 and got["zero_persistence"] == 10_000 and "reduce_bucket" not in got
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"zero_optimization": {"stage": 3, "stage3_prefetch_bucket_size": "lots"}}))
    with pytest.raises(VramscopeError, match="stage3_prefetch_bucket_size"):
        from_deepspeed(str(bad))
    acc = tmp_path / "hsdp.yaml"
    acc.write_text("distributed_type: FSDP\nnum_machines: 2\nnum_processes: 16\nfsdp_config:\n"
                   "  fsdp_sharding_strategy: HYBRID_SHARD\n  fsdp_version: 1\n  fsdp_activation_checkpointing: true\n")
    got = from_accelerate_fsdp(str(acc))
    assert (got["fsdp_sharding"], got["nodes"], got["fsdp_version"], got["grad_checkpointing"]) == ("hybrid", 2, 1, True)
    v2 = tmp_path / "v2.yaml"
    v2.write_text("fsdp_config:\n  fsdp_version: 2\n  fsdp_reshard_after_forward: false\n")
    assert from_accelerate_fsdp(str(v2))["parallelism"] == "zero2"
    assert main(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", str(acc)]) == 0
