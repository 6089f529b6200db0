"""Paste what you run (issue #17): engines' own command lines read into vramscope's options."""

import json

import pytest

from vramscope.commandline import estimate_kwargs, parse_command
from vramscope.errors import VramscopeError


def test_vllm_serve():
    p = parse_command("vllm serve Qwen/Qwen2.5-7B --max-model-len 32768 -tp 2".split())
    assert (p.engine, p.model) == ("vllm", "Qwen/Qwen2.5-7B")
    assert p.options == {"max_model_len": 32768, "num_gpus": 2, "parallelism": "tp"}
    p = parse_command("python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.1-8B "
                      "--gpu-memory-utilization=0.8 --max-model-len 32k --kv-cache-dtype fp8_e4m3 --enforce-eager "
                      "--port 8000 --enable-lora --frobnicate 3".split())
    assert p.model == "meta-llama/Llama-3.1-8B"
    assert p.options == {"gpu_memory_utilization": 0.8, "max_model_len": 32000, "kv_dtype": "fp8_e4m3",
                         "enforce_eager": True, "enable_lora": True}
    assert p.ignored == ["--port 8000"] and p.unmodelled == [] and p.unknown == ["--frobnicate 3"]
    assert parse_command(["vllm", "serve", "m", "--max-model-len", "32K"]).options["max_model_len"] == 32768


def test_llama_server():
    p = parse_command("llama-server -m model.gguf -c 8192 -ngl 99 -ts 1,1".split())
    assert (p.engine, p.model) == ("llama.cpp", "model.gguf")
    # --fit is on by default (common.h fit_params = true); -ngl given, so it will leave the layers alone
    # -np left at auto: llama-server's four slots over one unified KV buffer (tools/server/server.cpp)
    assert p.options == {"seq": 8192, "n_gpu_layers": 99, "tensor_split": [1.0, 1.0], "num_gpus": 2, "fit": "on",
                         "n_parallel": 4, "kv_unified": True, "llama_server": True}
    assert parse_command("llama-server -m m.gguf -np 2".split()).options["n_parallel"] == 2
    assert "kv_unified" not in parse_command("llama-server -m m.gguf -np 2".split()).options
    assert parse_command("llama-server -m m.gguf -np 2 -kvu --swa-full".split()).options["kv_unified"] is True
    assert parse_command("llama-server -m m.gguf -no-kvu".split()).options["kv_unified"] is False
    assert "n_parallel" not in parse_command("llama-cli -m m.gguf".split()).options
    assert "llama_server" not in parse_command("llama-cli -m m.gguf".split()).options
    p = parse_command("./llama-cli -hf unsloth/Qwen3-8B-GGUF:Q4_K_M -fa on -ctk q8_0 -ctv q8_0 -sm row -mg 1 "
                      "-b 1024 -ub 256 -nkvo --mlock -t 8 -ot exps=CPU".split())
    assert p.model == "Qwen3-8B" and p.options["quant"] == "Q4_K_M"  # the repo name without -GGUF
    assert p.options["flash_attn"] and p.options["split_mode"] == "row" and p.options["main_gpu"] == 1
    assert p.options["batch_size"] == 1024 and p.options["ubatch"] == 256 and p.options["no_kv_offload"]
    assert p.ignored == ["--mlock", "-t 8"] and p.unmodelled == ["-ot exps=CPU"]
    # -c absent (0): the model's training context
    assert estimate_kwargs(parse_command(["llama-server", "-m", "x.gguf"]), model_context=131072)["seq"] == 131072
    # -fa alone (older builds) is on; -ngl auto leaves every layer on the GPU (and to --fit), -ngl all too, but
    # set by the user (-2, not the default -1), so --fit keeps its hands off ("n_gpu_layers already set by user")
    p = parse_command("llama-server -m x.gguf -fa -ngl all".split())
    assert p.options["flash_attn"] and p.options["n_gpu_layers"] == 100_000
    assert "n_gpu_layers" not in parse_command("llama-server -m x.gguf -ngl auto".split()).options
    p = parse_command("llama-server -m x.gguf --fit off -fitt 512,2048 -fitc 8192".split())
    assert p.options["fit"] == "off" and p.options["fit_target"] == (512, 2048) and p.options["fit_ctx"] == 8192
    assert parse_command("llama-server -m x.gguf".split()).options["fit_auto_ctx"]  # -c 0: fit may lower it
    assert parse_command("CUDA_VISIBLE_DEVICES=0,1,2 llama-server -m x.gguf".split()).options["num_gpus"] == 3


def test_ollama_run():
    p = parse_command("ollama run llama3.1:70b".split())
    assert (p.engine, p.model, p.options) == ("ollama", "llama-3.1-70b", {"quant": "Q4_K_M"})
    p = parse_command("OLLAMA_NUM_PARALLEL=4 OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0 "
                      "CUDA_VISIBLE_DEVICES=0,1 ollama run qwen2.5:32b-instruct-q8_0 --verbose".split())
    assert p.model == "qwen2.5-32b"
    assert p.options == {"quant": "Q8_0", "num_parallel": 4, "ollama_kv_cache_type": "q8_0",
                         "ollama_flash_attention": True, "num_gpus": 2}
    assert p.ignored == ["--verbose"]


def test_ollama_create_modelfile(tmp_path):
    mf = tmp_path / "Modelfile"
    mf.write_text("FROM llama3.1:8b-instruct-q8_0\nPARAMETER num_ctx 32768\nPARAMETER top_k 20\n")
    p = parse_command(["ollama", "create", "mine", "-f", str(mf)])
    assert p.model == "llama-3.1-8b" and p.options == {"seq": 32768, "quant": "Q8_0"}
    assert "PARAMETER top_k" in p.ignored


def test_sglang():
    p = parse_command("python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct --tp 2 "
                      "--mem-fraction-static 0.85 --context-length 8192 --max-running-requests 64 "
                      "--chunked-prefill-size 4096 --port 30000".split())
    assert (p.engine, p.model) == ("sglang", "meta-llama/Llama-3.1-8B-Instruct")
    assert p.options == {"num_gpus": 2, "parallelism": "tp", "mem_fraction_static": 0.85, "context_length": 8192,
                         "max_running_requests": 64, "chunked_prefill_size": 4096}
    assert p.ignored == ["--port 30000"]


def test_torchrun_deepspeed(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 3}, "bf16": {"enabled": True},
                              "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": 8}))
    cmd = (f"torchrun --nproc_per_node 8 --master_port 29500 train.py --deepspeed {ds} "
           "--model_name_or_path meta-llama/Llama-3.1-8B --per_device_train_batch_size 2 --bf16 "
           "--gradient_checkpointing True --max_seq_length 4096 --learning_rate 2e-5 --optim adamw_torch "
           "--my_custom_flag 1").split()
    p = parse_command(cmd)
    assert (p.engine, p.model) == ("transformers", "meta-llama/Llama-3.1-8B")
    assert p.config_files == {"deepspeed": str(ds)}
    assert "--learning_rate 2e-5" in p.ignored and p.unknown == ["--my_custom_flag 1"]
    kw = estimate_kwargs(p)
    assert kw["parallelism"] == "zero3" and kw["grad_accum"] == 8 and kw["batch"] == 2 and kw["num_gpus"] == 8
    assert kw["dtype"] == "bf16" and kw["grad_checkpointing"] and kw["seq"] == 4096 and kw["task"] == "finetune"
    assert kw["optimizer"] == "adamw"
    p = parse_command("accelerate launch --num_processes 4 sft.py --use_peft --lora_r 64 --bf16 false".split())
    assert p.options["method"] == "lora" and p.options["lora_rank"] == 64 and "dtype" not in p.options
    assert p.options["num_gpus"] == 4


def test_refusals():
    with pytest.raises(VramscopeError, match="not a command vramscope reads"):
        parse_command(["rm", "-rf", "/"])
    with pytest.raises(VramscopeError, match="needs a value"):
        parse_command(["vllm", "serve", "m", "--max-model-len"])
    with pytest.raises(VramscopeError, match="--max-model-len"):
        parse_command(["vllm", "serve", "m", "--max-model-len", "lots"])
    with pytest.raises(VramscopeError, match="-ts"):
        parse_command(["llama-server", "-ts", "1,-1"])
    with pytest.raises(VramscopeError):
        parse_command([])
    with pytest.raises(VramscopeError):
        parse_command(["vllm"] * 3000)


def test_llama_op_offload_switch():
    """common/arg.cpp: ``{"--op-offload"}, {"--no-op-offload"}`` (bool, default on): the negative sets
    no_op_offload, the positive (the default) clears it, and neither is left as unknown."""
    p = parse_command("llama-server -m x.gguf -ngl 0 --no-op-offload".split())
    assert p.options["no_op_offload"] is True and p.unknown == []
    p = parse_command("llama-server -m x.gguf -ngl 0 --no-op-offload --op-offload".split())
    assert p.options["no_op_offload"] is False and p.unknown == []
