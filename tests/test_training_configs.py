"""Training recipes people already have (issue #17): axolotl, LLaMA-Factory, TRL / TrainingArguments, torchtune.

Each example in examples/ is read into vramscope's options with the tool's own field names and defaults (read in
its source: see configs.py), the fields that do not change memory listed as ignored, and estimated."""

import json
from pathlib import Path

import pytest

import vramscope
from vramscope.configs import detect_training_format, from_training_config
from vramscope.errors import VramscopeError

EX = Path(__file__).resolve().parent.parent / "examples"


def test_axolotl():
    c = from_training_config(str(EX / "axolotl_llama3_qlora.yaml"))
    assert (c.format, c.model) == ("axolotl", "meta-llama/Llama-3.1-8B")
    assert c.options == {"method": "qlora", "lora_rank": 32, "lora_alpha": 16.0, "lora_dropout": 0.05,
                         "lora_targets": "all-linear", "seq": 4096, "packing": True, "batch": 2, "grad_accum": 4,
                         "grad_checkpointing": True, "optimizer": "paged-adamw-8bit", "attn": "flash",
                         "dtype": "bf16", "task": "finetune", "framework": "axolotl"}
    assert set(c.ignored) == {"datasets", "num_epochs", "learning_rate", "output_dir"}


def test_llamafactory_defaults():
    c = from_training_config(str(EX / "llamafactory_llama3_lora_sft.yaml"))
    assert (c.format, c.model) == ("llama-factory", "meta-llama/Meta-Llama-3-8B")
    # LLaMA-Factory checkpoints by default (disable_gradient_checkpointing: False)
    assert c.options["grad_checkpointing"] is True and c.options["method"] == "lora"
    assert c.options["framework"] == "llamafactory"  # the importer selects the stack's profile
    assert c.options["lora_rank"] == 8 and c.options["lora_targets"] == "all-linear" and c.options["seq"] == 2048
    assert c.options["batch"] == 1 and c.options["grad_accum"] == 8 and c.options["dtype"] == "bf16"
    assert "template" in c.ignored and "learning_rate" in c.ignored


def test_trl_sft_defaults(tmp_path):
    c = from_training_config(str(EX / "trl_sft.yaml"))
    assert (c.format, c.model) == ("trl-sft", "Qwen/Qwen2.5-7B")
    # SFTConfig: gradient checkpointing on and bf16 unless fp16 (trl/trainer/sft_config.py)
    assert c.options["grad_checkpointing"] is True and c.options["dtype"] == "bf16"
    assert c.options["seq"] == 2048 and c.options["packing"] and c.options["method"] == "lora"
    plain = tmp_path / "args.json"
    plain.write_text(json.dumps({"model_name_or_path": "gpt2", "output_dir": "o"}))
    t = from_training_config(str(plain))
    # plain TrainingArguments: per_device_train_batch_size 8, no checkpointing, fp32
    assert t.format == "training-arguments" and t.options["batch"] == 8
    assert "grad_checkpointing" not in t.options and "dtype" not in t.options


def test_torchtune():
    c = from_training_config(str(EX / "torchtune_llama3_1_8B_lora.yaml"))
    assert (c.format, c.model) == ("torchtune", "llama-3.1-8b")
    assert c.options["framework"] == "torchtune" and c.options["method"] == "lora"
    assert c.options["lora_targets"] == ["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert c.options["seq"] == 4096 and c.options["packing"] and c.options["ce_chunks"] == 8
    assert c.options["optimizer"] == "adamw-fused" and c.options["grad_checkpointing"]


@pytest.mark.parametrize("name", ["axolotl_llama3_qlora.yaml", "llamafactory_llama3_lora_sft.yaml",
                                  "trl_sft.yaml", "torchtune_llama3_1_8B_lora.yaml"])
def test_examples_estimate(name):
    c = from_training_config(str(EX / name))
    e = vramscope.estimate(c.model, **c.options)
    assert e.task == "finetune" and 2 * 2**30 < e.total_bytes < 80 * 2**30


def test_deepspeed_reference(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    cfg = tmp_path / "ax.yaml"
    cfg.write_text("base_model: llama-3-8b\nmicro_batch_size: 1\ndeepspeed: ds.json\n")
    c = from_training_config(str(cfg))
    assert c.options["parallelism"] == "zero2"  # the path is relative to the config


def test_bad_configs(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("hello: world\n")
    with pytest.raises(VramscopeError, match="not a training config"):
        from_training_config(str(p))
    p.write_text("base_model: x\nmicro_batch_size: many\n")
    with pytest.raises(VramscopeError, match="micro_batch_size"):
        from_training_config(str(p))
    p.write_text("a: &x [1]\nb: *x\nbase_model: y\n")
    with pytest.raises(VramscopeError):
        from_training_config(str(p))
    big = tmp_path / "big.yaml"
    big.write_text("base_model: x\n" + "#" * 70000)
    with pytest.raises(VramscopeError):
        from_training_config(str(big))
    assert detect_training_format({"finetuning_type": "lora"}) == "llama-factory"
