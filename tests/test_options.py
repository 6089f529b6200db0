"""The option table (``vramscope.options``) is the one place an option is declared: these tests hold every
surface generated from it (argparse, the Workload dataclass, the API's keywords, the web's parameters, the
docs) to it, and check the rules read from its columns (owner, kind, default)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from vramscope import VramscopeError
from vramscope.cli import build_parser
from vramscope.options import DOC_END, DOC_START, markdown, table, workload_rows
from vramscope.workload import Workload, make_workload

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_workload_field_is_a_row_with_its_default():
    rows = {o.field: o for o in workload_rows()}
    fields = {f.name: f.default for f in dataclasses.fields(Workload)}
    assert set(fields) - {"seq_default", "options"} == set(rows)
    for name, o in rows.items():
        assert fields[name] == o.default, name


def test_rows_are_complete_and_unique():
    flags: dict[str, str] = {}
    for o in table().values():
        assert o.help_en and o.help_zh and CJK.search(o.help_zh), o.field
        assert o.kind in ("choice", "int", "float", "flag", "text", "names", "custom"), o.field
        if o.kind == "choice":
            assert o.choices, o.field
        for f in o.flags + ((o.negation,) if o.negation else ()):
            assert f not in flags, (f, o.field, flags.get(f))
            flags[f] = o.field


def test_each_default_passes_its_own_reader():
    for o in workload_rows():
        if o.default is None or o.default == () or o.field in ("parallelism",):
            continue  # parallelism's default "none" is what make_workload resolves "auto" to
        assert o.read(o.default) == o.default, o.field


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_argparse_is_generated_from_the_rows(lang):
    parser = build_parser(lang)
    sub = next(a for a in parser._actions if getattr(a, "choices", None) and "estimate" in a.choices)
    est = sub.choices["estimate"]
    strings = {s for a in est._actions for s in a.option_strings}
    for o in table().values():
        for f in o.flags:
            assert f in strings, f
    helptext = est.format_help()
    assert ("激活检查点" in helptext) == (lang == "zh")


def test_a_field_is_spelled_for_each_surface():
    for o in workload_rows():
        e = VramscopeError("bad_choice", field=o.field, value="x", allowed="y")
        assert str(e).startswith(o.field + ":")
        assert e.render("en", "cli").startswith(o.flag + ":")
        assert e.render("zh", "web").startswith(o.field + "：")


SAMPLE = {"optimizer": "sgd", "grad_checkpointing": True, "lora_alpha": 16, "framework": "torchtune",
          "lora_targets": "q_proj", "train_modules": "o_proj", "method": "lora", "bnb_version": "0.43.1", "liger": "all", "bnb_compute_dtype": "fp32", "litgpt_version": "0.4.13", "unsloth_version": "2024.12.3",
          "zero_auto": "reduce_bucket",
          # engine options read by a custom parser (issue #17)
          "tensor_split": "3,1", "ollama_version": "0.12.10", "ollama_flash_attention": "true",
          "gpu_overhead": "1GB", "vllm_version": "0.11.0", "fit_target": "512",
          # vision-language options (vLLM's multimodal flags, transformers' images)
          "limit_mm_per_prompt": '{"image": 1}', "mm_processor_kwargs": '{"max_pixels": 1003520}',
          "image_size": "640x480"}


def _other_value(o):
    if o.field in SAMPLE:
        return SAMPLE[o.field]
    if o.kind == "choice":
        return next(c for c in o.choices if c != o.default)
    if o.kind == "int":
        return min(o.hi, (o.default or o.lo) + 1) if o.default != o.hi else o.lo
    if o.kind == "float":
        return 0.5
    if o.kind == "flag":
        return True
    raise AssertionError(f"no sample value for {o.field}")


@pytest.mark.parametrize("o", [o for o in workload_rows() if o.owner == "training"], ids=lambda o: o.field)
def test_every_training_option_is_refused_at_inference(o):
    """owner="training": inference would ignore it, so it is refused, naming the option itself."""
    with pytest.raises(VramscopeError) as e:
        make_workload(task="inference", **{o.field: _other_value(o)})
    assert str(e.value).startswith(o.field + ":"), str(e.value)


@pytest.mark.parametrize("o", [o for o in workload_rows() if o.owner in ("vllm", "llama.cpp")], ids=lambda o: o.field)
def test_every_engine_option_is_refused_with_another_engine(o):
    with pytest.raises(VramscopeError) as e:
        make_workload(engine="transformers", **{o.field: _other_value(o)})
    assert str(e.value) == f"{o.field}: is a {o.owner} option; add engine='{o.owner}'"
    assert e.value.render("en", "cli") == f"{o.flag}: is a {o.owner} option; add --engine {o.owner}"


def test_two_spellings_of_one_option_must_agree():
    from tests.hostile_util import run_cli

    rc, _, err = run_cli(["estimate", "llama-3-8b", "--engine", "vllm", "--tp", "2", "-tp", "4", "--no-hub"])
    assert rc == 2 and "--tp: and -tp give different values; give one" in err
    rc, _, err = run_cli(["estimate", "llama-3-8b", "--batch", "2", "--concurrency", "2", "--no-hub", "--json"])
    assert rc == 0, err


def test_docs_list_the_table():
    text = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    assert text.split(DOC_START, 1)[1].split(DOC_END, 1)[0] == markdown(), \
        "docs/json.md is stale: python -m vramscope.options --write docs/json.md"


def test_web_parameters_are_the_rows():
    from vramscope import serve

    assert set(serve.PARAMS) == {"model", "params", "gpu", "lang", "upload"} | {o.field for o in workload_rows() if o.web}
