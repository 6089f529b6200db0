"""What the output says, in both languages (issue #16): warnings, plurals, ordinals, complete Chinese, widths."""

import re
import subprocess
import sys

import pytest

import vramscope
from vramscope.present.table import render_estimate, render_fit


def cli(*args):
    hub = ["--no-hub"] if args[0] in ("estimate", "fit") else []
    p = subprocess.run([sys.executable, "-m", "vramscope", *args, *hub], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_seq_beyond_trained_context_is_a_warning_line():
    e = vramscope.estimate("llama-3-8b", seq=8193, gpus=["h100"])
    out = render_estimate(e)
    warn = " ".join(out[out.index("warning:"):out.index("Assumptions:")].split())
    assert "8,193 tokens is beyond" in warn and "8,192" in warn and "factor 1.01" in warn and "not memory" in warn
    assert "beyond" not in out[out.index("Assumptions:"):]  # said once, as a warning
    assert "警告：" in render_estimate(e, "zh")
    rc, out, _ = cli("fit", "llama-3-8b", "--seq", "8193", "--gpu", "h100")
    assert rc == 0 and "warning: 8,193 tokens is beyond" in " ".join(out.split())
    rc, out, err = cli("estimate", "bert-base-uncased", "--seq", "100000")
    assert rc == 2 and "512" in err and "Traceback" not in err
    assert "warning" not in render_estimate(vramscope.estimate("llama-3-8b", seq=8192))


def test_index_without_config_is_named_by_its_folder(tmp_path, monkeypatch):
    """``vramscope estimate model.safetensors.index.json`` from inside the folder: the model is named after the
    folder, not '.'."""
    from fixtures import write_model_dir

    folder = write_model_dir(tmp_path / "my-llama", shards=2)
    (folder / "config.json").unlink()
    monkeypatch.chdir(folder)
    for given in ("model.safetensors.index.json", ".", "./model.safetensors.index.json"):
        assert vramscope.estimate(given, hub=False).model.name == "my-llama", given


def test_plurals_and_ordinals():
    from vramscope.i18n import ordinal, t

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert t("fit_max_seq", "en", n="1", limit="") == "longest context that fits: 1 token"
    assert t("fit_max_seq", "en", n="8,192", limit="") == "longest context that fits: 8,192 tokens"
    out = render_estimate(vramscope.estimate("llama-3-8b", gpus=["h100"]))
    assert "1 sequence of 4096 tokens" in out and "(s)" not in out
    e = vramscope.estimate("llama-3-8b", task="finetune", checkpoint_every=2, pp=2, grad_accum=1)
    out = render_estimate(e)
    assert "every 2nd" in out and "1 micro-batch per step" in out and "2th" not in out
    rc, out, _ = cli("fit", "llama-3-8b", "--gpu", "h100")
    assert "fewest GPUs of this kind: 1\n" in out and "(none)" not in out


def test_nominal_shape_names_the_given_kv_heads():
    e = vramscope.estimate(params="7B", kv_heads=8)
    text = " ".join(a.render() for a in e.assumptions)
    assert "GQA with 8 KV heads" in text and "MHA" not in text
    assert "MHA" in " ".join(a.render() for a in vramscope.estimate(params="7B").assumptions)


def test_llamacpp_has_no_torch_workspace():
    e = vramscope.estimate("llama-3-8b", engine="llama.cpp", quant="Q4_K_M", gpus=["rtx-4090"])
    text = " ".join(a.render() for a in e.assumptions)
    assert "torch's cuBLAS" not in text and "no torch cuBLAS workspace" in text
    from vramscope.memory.overhead import CONTEXT_NOMINAL

    assert e.components["overhead"] == CONTEXT_NOMINAL


def test_trainable_under_tensor_parallelism_says_per_gpu():
    out = render_estimate(vramscope.estimate("llama-3-70b", task="finetune", num_gpus=8, parallelism="tp"))
    assert "8.82B trainable per GPU (its shard of 8-way tensor parallelism)" in out.splitlines()[0]


def test_validate_table_fits_100_columns_and_signs_the_worst_error():
    import json
    import pathlib

    records = pathlib.Path(__file__).resolve().parent.parent / "validation" / "published.jsonl"
    for lang in ("en", "zh"):
        rc, out, err = cli("validate", str(records), "--lang", lang)
        assert rc == 0, err
        from vramscope.present.table import width

        assert max(width(line) for line in out.splitlines()) <= 100
    rc, out, _ = cli("validate", str(records), "--json")
    summ = json.loads(out)["summary"]["all"]["analytic"]
    assert summ["worst_error"] == pytest.approx(-summ["worst_abs_error"]) or \
        summ["worst_error"] == pytest.approx(summ["worst_abs_error"])
    rc, text, _ = cli("validate", str(records))
    worst = f"{100 * summ['worst_error']:+.1f}%"
    assert worst in text.split("worst error")[1]


def test_catalog_tables_in_chinese():
    rc, out, _ = cli("models", "mixtral", "--lang", "zh")
    assert "激活" in out and "active" not in out and "params" not in out
    rc, out, _ = cli("gpus", "4090", "--lang", "zh")
    assert "显存" in out and "usable" not in out
    rc, out, _ = cli("models", "qwen2.5-0.5")
    assert out.startswith("1 model in the catalog")


def test_fit_says_what_it_assumed():
    rc, out, _ = cli("fit", "llama-3-70b", "--task", "finetune", "--gpu", "h100")
    head = " ".join(out.split("meta-llama/")[0].split())
    for part in ("Assumed: fine-tuning (full)", "sequence 2,048 (default; --seq)", "micro-batch 1", "pure bf16",
                 "optimizer adamw", "gradient checkpointing off", "Hugging Face Trainer / TRL"):
        assert part in head, part
    rc, out, _ = cli("fit", "llama-3-70b", "--task", "finetune", "--gpu", "h100", "--precision", "mixed",
                     "--grad-checkpointing", "--seq", "4096", "--lang", "zh")
    head = out.split("meta-llama/")[0]
    assert "混合精度" in head and "梯度检查点开启" in head and "序列 4,096" in head and "Assumed" not in head
    rc, out, _ = cli("fit", "llama-3-8b", "--engine", "vllm", "--gpu", "h100", "--json")
    import json

    d = json.loads(out)
    assert any("max_model_len 8,192" in a for a in d["assumed"]) and d["headroom_bytes"] == \
        d["budget_bytes"] - d["needed_bytes"]


ZH_COMMANDS = [
    ["estimate", "llama-3-8b", "--gpu", "rtx-4090"],
    ["estimate", "llama-3-8b", "--task", "finetune", "--method", "qlora", "--gpu", "rtx-4090"],
    ["estimate", "llama-3-8b", "--task", "finetune", "--framework", "torchtune"],
    ["estimate", "llama-3-8b", "--engine", "vllm", "--gpu", "h100"],
    ["estimate", "mixtral-8x7b", "--task", "finetune", "--gpus", "8", "--zero", "2", "--ep", "8"],
    ["estimate", "llama-3-70b", "--task", "finetune", "--gpus", "8", "--tp", "4", "--pp", "2", "--grad-accum", "8"],
    ["estimate", "qwen2.5-7b", "--engine", "llama.cpp", "--quant", "Q4_K_M", "-ngl", "10", "--gpu", "rtx-4090"],
    ["estimate", "--params", "7B", "--kv-heads", "8"],
    ["estimate", "llama-3-8b", "--seq", "8193"],
    ["fit", "llama-3-8b", "--task", "finetune", "--gpu", "rtx-4090"],
    ["fit", "llama-3-70b", "--engine", "llama.cpp", "-c", "8192", "--gpu", "rtx-4090"],
    ["models", "mixtral"], ["gpus", "a100"],
    ["estimate", "llama-3-8b", "--gpus", "3"],  # an error
    ["estimate", "mixtral-8x7b", "--task", "finetune", "--ep", "3"],  # an error
]
#: English words that never belong in a Chinese sentence ("GPU" and "token" do: they are used as they are)
_ENGLISH = re.compile(r"\b(the|is|are|and|of|with|not|use|add|per|from|on|as|to|GPUs|layers?|tokens|parameters)\b")


def _prose(text):
    """The text a reader reads as sentences: commands, `code`, options, identifiers and file names removed."""
    text = "\n".join(line for line in text.splitlines() if "vramscope fit " not in line)
    text = re.sub(r"`[^`]*`|'[^']*'|--[\w-]+|-\w+\b|\S*[/_.=]\S*|\w+\(\)", " ", text)
    return text


@pytest.mark.parametrize("argv", ZH_COMMANDS, ids=" ".join)
def test_chinese_output_has_no_english_sentences(argv):
    rc, out, err = cli(*argv, "--lang", "zh")
    words = _ENGLISH.findall(_prose(out + err))
    assert not words, (words, out + err)
