"""Assumptions and option help name options in the reader's terms (issue #18: "errors in the user's terms").

The command line reads ``--method freeze``; the web page and the JSON API read the form's field (``method=freeze``).
A sentence that names an option holds an :class:`vramscope.errors.Opt` (in an assumption's parameters, in an
option row's ``help_opts``), spelled when the sentence is rendered for its surface. These tests render every
assumption the golden matrix's estimates produce, and every help text of the web form, for ``web`` and ``api`` in
English and Chinese, and look for any flag of a vramscope option in them: a flag written into a message by hand
fails, wherever it comes from (the template, a fragment, a parameter).
"""

from __future__ import annotations

import re
import string
import sys
from pathlib import Path

import pytest

import vramscope.api  # noqa: F401  (modules that keep their messages beside their code register them on import)
import vramscope.cli  # noqa: F401
import vramscope.plan
import vramscope.result
import vramscope.present.svg  # noqa: F401
import vramscope.serve  # noqa: F401
import vramscope.trace.estimator  # noqa: F401
import vramscope.trace.preflight  # noqa: F401
import vramscope.web
import vramscope.workload  # noqa: F401
from vramscope.errors import Opt
from vramscope.i18n import MESSAGES
from vramscope.options import table

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import regen  # noqa: E402

#: a token that reads as a command-line flag: ``--seq``, ``-ngl`` (not ``8-way``, ``fp8-block``, ``e-5``)
TOKEN = re.compile(r"(?<![\w\-.=/])(--?[A-Za-z][\w-]*)")
#: assumptions whose parameters quote a command the user pasted: its flags are the command's, named as written
COMMAND_PARAMS = {"a_cmd_ignored": "flags", "a_cmd_unmodelled": "flags", "a_cmd_unknown": "flags",
                  "a_ollama_llama_server": "args"}  # the llama-server command line Ollama starts, quoted


def vramscope_flags() -> set[str]:
    """Every spelling of a vramscope option on the command line: its flags, negation, the flag it is shown as."""
    out: set[str] = set()
    for o in table().values():
        out.update(o.flags)
        out.update(x for x in (o.negation, o.shown_as) if x)
    return out


FLAGS = vramscope_flags()


def flags_in(text: str) -> list[str]:
    return [x for x in TOKEN.findall(text) if x in FLAGS]


def test_the_token_finder_sees_flags() -> None:
    """The check below would see a flag left in a sentence, in either language, and not a hyphenated word."""
    assert flags_in("as --dtype asks") == ["--dtype"]
    assert flags_in("llama.cpp 的 -ngl 22 先卸载") == ["-ngl"]
    assert flags_in("同 --cache-type-k") == ["--cache-type-k"]
    assert flags_in("（--grad-checkpointing）") == ["--grad-checkpointing"]
    assert flags_in("8-way ZeRO, fp8-block, 1e-5, --bf16 (Megatron-LM's own), dtype=bf16") == []
    assert flags_in(Opt("n_gpu_layers", 22, flag="-ngl").render("en", "cli")) == ["-ngl"]
    assert flags_in(Opt("n_gpu_layers", 22, flag="-ngl").render("en", "web")) == []


# ---------------------------------------------------------------- the messages themselves


def _assumption_keys() -> list[str]:
    """Keys of every assumption (``a_``), of a model's notes that become assumptions (``n_``) and of fit's assumed
    phrases (``fa_``)."""
    return [k for k in MESSAGES if k.startswith(("a_", "n_", "fa_"))]


def test_assumption_messages_name_no_flag() -> None:
    """No assumption's text, in either language, writes a vramscope flag by hand: an option it names is a
    placeholder the call site fills with ``Opt`` (engine flags that are no option of vramscope, such as
    Megatron-LM's ``--bf16``, are the engine's words and stay)."""
    table()  # the engines register theirs on import
    keys = _assumption_keys()
    assert len(keys) > 120
    bad = {(k, lang): flags_in(MESSAGES[k][lang]) for k in keys for lang in ("en", "zh")}
    assert not {k: v for k, v in bad.items() if v}


def _placeholders(text: str) -> set[str]:
    return {name.split(".")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_form_help_names_fields(lang: str) -> None:
    """Every help text of the web form (and the OpenAPI schema, from the same rows) names options by their field;
    the command line's ``--help`` keeps the flags."""
    rows = vramscope.web.form_rows()
    for o in rows:
        web, api = o.help(lang, "web"), o.help(lang, "api")
        assert not flags_in(web) and not flags_in(api), (o.field, web)
    spelled = [o for o in rows if o.help_opts]
    assert len(spelled) >= 15
    for o in spelled:  # the command line still says --method freeze
        assert flags_in(o.help(lang)), o.field


def test_help_placeholders_are_the_rows_opts() -> None:
    """A help text's placeholders are exactly its row's ``help_opts``, the same in both languages."""
    for o in table().values():
        assert _placeholders(o.help_en) == _placeholders(o.help_zh) == set(o.help_opts), o.field


PAGE_QUESTIONS = (
    {"model": "llama-3-8b", "task": "finetune", "method": "lora", "gpu": "rtx-4090"},  # hf: checkpointing, AdamW
    {"model": "llama-3-8b", "task": "finetune", "method": "full", "framework": "torchtune", "gpu": "a100-80gb"},
    {"model": "llama-3-8b", "engine": "llama.cpp", "quant": "Q4_K_M", "n_gpu_layers": "20", "no_mmap": "true",
     "gpu": "rtx-4060-ti-16gb"},
)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("question", PAGE_QUESTIONS, ids=["lora", "torchtune", "llama.cpp"])
def test_page_names_fields(question: dict, lang: str) -> None:
    """The page as served: every control's help line (the ``<small>`` under it) and every assumption of the
    answer carry no flag (the reproduce commands, in ``<code>``, are commands and keep theirs)."""
    html = vramscope.serve.page_answer({**question, "lang": lang}, "", lang, False).decode("utf-8")
    helps = re.findall(r'<small id="h-[^"]+">([^<]*)</small>', html)
    assumptions = re.findall(r"<li>([^<]*)</li>", html.split('<ul class="vs-assume">', 1)[1].split("</ul>", 1)[0])
    assert len(helps) >= 60 and len(assumptions) >= 4
    assert not [h for h in helps + assumptions if flags_in(h)]


# ---------------------------------------------------------------- every assumption the matrix produces


@pytest.fixture(scope="module")
def produced() -> dict[str, object]:
    """The estimates and fit answers of the golden matrix's commands, caught as their JSON is written."""
    seen: dict[str, list] = {"estimates": [], "fits": []}
    est_to_dict, fit_to_dict = vramscope.result.Estimate.to_dict, vramscope.plan.FitAnswer.to_dict

    def est(self, *a, **k):
        seen["estimates"].append(self)
        return est_to_dict(self, *a, **k)

    def fit(self, *a, **k):
        seen["fits"].append(self)
        return fit_to_dict(self, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(vramscope.result.Estimate, "to_dict", est)
    mp.setattr(vramscope.plan.FitAnswer, "to_dict", fit)
    try:
        for line in regen.lines(regen.COMMANDS):
            if line.startswith("fit") and ("--engine llama.cpp" in line or "--engine ollama" in line):
                continue  # their searches take most of the matrix's time; the estimate commands give their notes
            rc, _, err = regen.run(line)
            assert rc == 0, (line, err)
    finally:
        mp.undo()
    return seen


def _without_commands(a: vramscope.result.Assumption) -> vramscope.result.Assumption:
    if a.key in COMMAND_PARAMS:
        return vramscope.result.Assumption(a.key, {**a.params, COMMAND_PARAMS[a.key]: "FLAGS"})
    return a


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_assumption_names_fields(produced: dict, lang: str) -> None:
    """Every assumption of every estimate of the matrix, rendered for the web and the API, names no flag; the
    same assumptions rendered for the command line keep theirs (the conversion is exercised, not bypassed)."""
    assumptions = {(a.key, repr(sorted(a.params.items(), key=lambda kv: kv[0]))): a
                   for e in produced["estimates"] for a in e.assumptions}
    keys = {a.key for a in assumptions.values()}
    assert len(produced["estimates"]) > 500 and len(keys) > 80
    bad, spelled = [], set()
    for a in assumptions.values():
        a = _without_commands(a)
        for surface in ("web", "api"):
            text = a.render(lang, surface)
            if flags_in(text):
                bad.append((a.key, surface, text))
        if any(isinstance(v, Opt) for v in a.params.values()) and flags_in(a.render(lang)):
            spelled.add(a.key)
    assert not bad
    # the matrix reaches most of the converted assumptions; each still names its flag on the command line
    assert len(spelled) >= 12, sorted(spelled)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_fit_assumed_names_fields(produced: dict, lang: str) -> None:
    """fit's header phrases (``assumed`` in its JSON) too."""
    assert len(produced["fits"]) > 50
    phrases = {p for f in produced["fits"] for surface in ("web", "api") for p in f.assumed_lines(lang, surface)}
    assert not [p for p in phrases if flags_in(p)]
    assert any(flags_in(p) for f in produced["fits"] for p in f.assumed_lines(lang))


def test_json_surfaces(produced: dict) -> None:
    """``--json`` (the golden matrix) keeps the command line's spelling; the web API's JSON names fields."""
    e = next(e for e in produced["estimates"] if any(a.key == "a_hf_optimizer" for a in e.assumptions))
    cli = [s for s in e.to_dict("en")["assumptions"] if "adamw-fused" in s]
    web = [s for s in e.to_dict("en", "web")["assumptions"] if "adamw-fused" in s]
    assert cli and cli[0].endswith("--optimizer adamw-fused")
    assert web and web[0].endswith("optimizer=adamw-fused")
