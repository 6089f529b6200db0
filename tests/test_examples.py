"""examples/ (issue #17): every pasted command line and every training recipe there runs through the CLI."""

import json
import shlex
from pathlib import Path

import pytest

from vramscope.cli import main

EX = Path(__file__).resolve().parent.parent / "examples"
COMMANDS = [ln for ln in (EX / "commands.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("line", COMMANDS)
def test_pasted_commands(line, capsys, monkeypatch):
    monkeypatch.chdir(EX.parent)
    rc, out, err = run(["estimate", "--json", "--gpu", "rtx-4090", "--"] + shlex.split(line), capsys)
    assert rc == 0, err
    e = json.loads(out)
    read = [a for a in e["assumptions"] if a.startswith("read from the command line")]
    assert read, e["assumptions"]


def test_pasted_command_sets_the_workload(capsys):
    rc, out, err = run(["estimate", "--json", "--", "vllm", "serve", "Qwen/Qwen2.5-7B", "--max-model-len", "32768",
                        "-tp", "2"], capsys)
    e = json.loads(out)
    assert rc == 0 and e["workload"]["engine"] == "vllm" and e["workload"]["max_model_len"] == 32768
    assert e["workload"]["num_gpus"] == 2 and e["engine"]["tensor_parallel_size"] == 2
    rc, out, err = run(["estimate", "--json", "--gpu", "rtx-4090", "--", "llama-server", "-hf",
                        "bartowski/Qwen2.5-72B-Instruct-GGUF:Q4_K_M", "-c", "8192", "-ngl", "99", "-ts", "1,1"],
                       capsys)
    e = json.loads(out)
    assert rc == 0 and [d["layers"] for d in e["engine"]["devices"]] == [41, 39]
    assert e["workload"]["quant"] == "Q4_K_M" and e["workload"]["seq"] == 8192


def test_pasted_command_disagreeing_with_vramscope_flags(capsys):
    rc, out, err = run(["estimate", "--gpus", "4", "--", "vllm", "serve", "Qwen/Qwen2.5-7B", "-tp", "2"], capsys)
    assert rc == 2 and "disagrees" in err and "Traceback" not in err
    rc, out, err = run(["estimate", "--", "rm", "-rf", "/"], capsys)
    assert rc == 2 and "not a command vramscope reads" in err


@pytest.mark.parametrize("name", ["axolotl_llama3_qlora.yaml", "llamafactory_llama3_lora_sft.yaml",
                                  "trl_sft.yaml", "torchtune_llama3_1_8B_lora.yaml"])
def test_recipes(name, capsys):
    rc, out, err = run(["estimate", "--json", "--config", str(EX / name), "--gpu", "rtx-4090"], capsys)
    assert rc == 0, err
    e = json.loads(out)
    assert e["task"] == "finetune" and any(a.startswith("read from the training config") for a in e["assumptions"])


def test_modelfile_example(capsys):
    rc, out, err = run(["estimate", "--json", "--gpu", "rtx-4090", "--", "ollama", "create", "mine", "-f",
                        str(EX / "Modelfile")], capsys)
    e = json.loads(out)
    assert rc == 0 and e["workload"]["engine"] == "ollama" and e["engine"]["num_ctx"] == 16384


def test_ollama_name_as_the_model(capsys):
    """``vramscope estimate llama3.1:70b-instruct-q8_0``: the catalog model, the tag's quantization, Ollama."""
    rc, out, err = run(["estimate", "--json", "llama3.1:70b-instruct-q8_0", "--gpu", "a100-80gb"], capsys)
    e = json.loads(out)
    assert rc == 0 and e["model"]["name"] == "meta-llama/Llama-3.1-70B"
    assert e["workload"]["engine"] == "ollama" and e["workload"]["quant"] == "Q8_0"
    rc, out, err = run(["estimate", "--json", "qwen2.5:7b", "--engine", "llama.cpp"], capsys)
    e = json.loads(out)
    assert rc == 0 and e["workload"]["engine"] == "llama.cpp" and e["workload"]["quant"] == "Q4_K_M"
