"""The command line: output, JSON schema, languages, and one clear line (exit 2) for every bad input."""

import json
import os
import subprocess
import sys

import pytest

from vramscope.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_estimate_table(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3-8b", "--gpu", "rtx-4090", "--lang", "en")
    assert code == 0
    assert "weights" in out and "KV cache" in out and "total (peak)" in out and "Assumptions" in out
    assert "RTX 4090" in out


def test_estimate_chinese(capsys):
    code, out, _ = run(capsys, "estimate", "qwen2.5-7b", "--lang", "zh", "--gpu", "24GB")
    assert code == 0 and "模型权重" in out and "合计" in out and "假设" in out


def test_json_schema(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3-8b", "--json", "--gpu", "a100", "--gpu", "8GB")
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "vramscope.estimate/1"
    assert set(d["model"]) >= {"name", "params", "active_params"}
    assert d["model"]["params"] == 8_030_261_248
    assert d["estimator"] == "analytic" and d["task"] == "inference"
    assert set(d["components"]) >= {"weights", "kv_cache", "activations", "overhead"}
    assert d["total_bytes"] == sum(d["components"].values())
    assert d["peak_phase"] in d["phases"]
    assert [g["fits"] for g in d["gpus"]] == [True, False]
    assert {"name", "memory_bytes", "fits", "headroom_bytes"} <= set(d["gpus"][0])
    assert isinstance(d["assumptions"], list) and all(isinstance(a, str) for a in d["assumptions"])


def test_seed_cli_exact(capsys):
    code, out, _ = run(capsys, "estimate", "--params", "7B", "--dtype", "fp16", "--estimator", "seed", "--json")
    assert json.loads(out)["total_bytes"] == 14_000_000_000
    code, out, _ = run(capsys, "estimate", "--params", "7B", "--quant", "int4", "--estimator", "seed", "--json")
    assert json.loads(out)["total_bytes"] == 3_500_000_000


def test_models_and_gpus_listing(capsys):
    code, out, _ = run(capsys, "models", "qwen3")
    assert code == 0 and "Qwen/Qwen3-8B" in out
    code, out, _ = run(capsys, "models", "--json")
    assert len(json.loads(out)) >= 60
    code, out, _ = run(capsys, "gpus", "h100")
    assert code == 0 and "H100" in out


BAD = [
    (["estimate", "no-such-model-xyz", "--no-hub"], "not in the catalog"),
    (["estimate", "llama-3-8", "--no-hub"], "did you mean"),
    (["estimate", "--params=-7B"], "--params"),
    (["estimate", "--params", "-7B"], "--params"),
    (["estimate", "--params", "0"], "--params"),
    (["estimate", "--params", "seven"], "--params"),
    (["estimate", "--params", "1e30"], "too large"),
    (["estimate", "llama-3-8b", "--batch", "0"], "--batch"),
    (["estimate", "llama-3-8b", "--batch", "-2"], "--batch"),
    (["estimate", "llama-3-8b", "--seq", "lots"], "--seq"),
    (["estimate", "llama-3-8b", "--seq", "1e30"], "--seq"),
    (["estimate", "llama-3-8b", "--method", "lora"], "--task"),
    (["estimate", "llama-3-8b", "--task", "pretrain", "--method", "qlora"], "--method"),
    (["estimate", "llama-3-8b", "--task", "finetune", "--quant", "int4"], "--quant"),
    (["estimate", "llama-3-8b", "--dtype", "fp12"], "--dtype"),
    (["estimate", "llama-3-8b", "--quant", "int3"], "--quant"),
    (["estimate", "llama-3-8b", "--task", "train"], "--task"),
    (["estimate", "llama-3-8b", "--gpu", "rtx-9999"], "--gpu"),
    (["estimate", "llama-3-8b", "--gpu", "-24GB"], "--gpu"),
    (["estimate", "llama-3-8b", "--params", "7B"], "either MODEL or --params"),
    (["estimate"], "MODEL"),
    (["estimate", "./missing/config.json"], "no such file"),
    (["estimate", "--units", "furlongs", "llama-3-8b"], "units"),
]


def exit_code(args):
    try:
        return main(args)
    except SystemExit as e:  # argparse's own errors (unknown choice, missing value)
        return e.code


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2(capsys, args, needle):
    code = exit_code(args)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_files_exit_2(capsys, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{truncated")
    code = main(["estimate", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "not valid JSON" in err and len(err.strip().splitlines()) == 1
    st = tmp_path / "w.safetensors"
    st.write_bytes(b"\x01\x02")
    assert main(["estimate", str(st)]) == 2
    g = tmp_path / "w.gguf"
    g.write_bytes(b"GGUF\x03\x00")
    assert main(["estimate", str(g)]) == 2
    pk = tmp_path / "pytorch_model.bin"
    pk.write_bytes(b"\x80\x04")
    assert main(["estimate", str(pk)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 3


def test_chinese_error(capsys):
    code = main(["estimate", "--params", "abc", "--lang", "zh"])
    err = capsys.readouterr().err
    assert code == 2 and "不是有效的数量" in err


def test_subprocess_entry_point_does_not_import_torch():
    code = ("import sys, vramscope.cli as c; rc = c.main(['estimate', 'llama-3-8b', '--json']); "
            "heavy = [m for m in ('torch', 'transformers', 'numpy', 'huggingface_hub') if m in sys.modules]; "
            "print('HEAVY', heavy, file=sys.stderr); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "LANG": "C"})
    assert p.returncode == 0, p.stderr
    assert "HEAVY []" in p.stderr
    assert json.loads(p.stdout)["schema"] == "vramscope.estimate/1"


@pytest.mark.parametrize("argv", [["--help"], ["estimate", "--help"], ["models", "--help"], ["serve", "--help"],
                                  ["validate", "--help"]])
def test_help_in_chinese_has_no_english_frame(capsys, argv):
    """argparse's own words ("usage:", "options") and every sub-command's help follow --lang zh."""
    import argparse

    words = argparse._
    with pytest.raises(SystemExit) as e:
        main(argv + ["--lang", "zh"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert out.startswith("用法：") and "选项:" in out and "显示此帮助信息并退出" in out
    for english in ("usage:", "options:", "positional arguments", "show this help message"):
        assert english not in out
    assert argparse._ is words  # gettext is put back: nothing else in the process speaks Chinese
    with pytest.raises(SystemExit):
        main(argv + ["--lang", "en"])
    out = capsys.readouterr().out
    assert out.startswith("usage: ") and "options:" in out and "用法" not in out


def test_sub_command_help_in_both_languages(capsys):
    with pytest.raises(SystemExit):
        main(["--help", "--lang", "zh"])
    zh = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help", "--lang", "en"])
    en = capsys.readouterr().out
    assert "估算模型在给定工作负载下所需的显存" in zh and "estimate GPU memory for a model and workload" in en
    assert "列出 GPU 目录" in zh and "list the GPU catalog" in en


def test_argparse_errors_in_chinese(capsys):
    with pytest.raises(SystemExit) as e:
        main(["estimate", "llama-3-8b", "--bogus", "--lang", "zh"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith("vramscope：错误：无法识别的参数：--bogus") and "--help" in err
    with pytest.raises(SystemExit) as e:
        main(["estimate", "llama-3-8b", "--seq", "--lang", "en"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "error: argument --seq/--ctx-size/-c: expected one argument" in err
