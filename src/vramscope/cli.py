"""The ``vramscope`` command line.

argparse rather than Typer/Rich: the whole CLI must start in well under 0.3 s, and argparse is already loaded
with Python. Every user error becomes one line on stderr and exit code 2; ``VRAMSCOPE_DEBUG=1`` shows
tracebacks of internal errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence

from .errors import Opt, Text, VramscopeError
from .i18n import detect_lang, register, t

EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """One-line errors, and no abbreviations: ``--check`` is never read as ``--checkpoint-every``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, not usage + line
        lang = _ARGPARSE_LANG[0]
        self.exit(EXIT_USAGE, t("cli_usage_error", lang, prog=self.prog, message=_one_line(message, 300)) + "\n")


#: argparse's own words (its gettext message ids, Python 3.11–3.13) in Chinese. argparse looks its words up
#: through the module-level ``argparse._`` when it formats help and errors, so :func:`_argparse_words` points
#: that name at this table while the command line is parsed, and puts gettext back afterwards. Message ids not
#: listed (argparse's internal programming errors) stay English.
_ARGPARSE_ZH = {
    "usage: ": "用法：",
    "positional arguments": "位置参数",
    "options": "选项",
    "optional arguments": "选项",
    "show this help message and exit": "显示此帮助信息并退出",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的选择：%(value)r（可选：%(choices)s）",
    "expected one argument": "需要一个值",
    "expected at most one argument": "最多需要一个值",
    "expected at least one argument": "至少需要一个值",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "ambiguous option: %(option)s could match %(matches)s": "有歧义的选项：%(option)s 可匹配 %(matches)s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "one of the arguments %s is required": "需要以下参数之一：%s",
    "invalid %(type)s value: %(value)r": "无效的 %(type)s 值：%(value)r",
    "ignored explicit argument %r": "忽略了显式参数 %r",
    "unexpected option string: %s": "意外的选项字符串：%s",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "未知的子命令 %(parser_name)r（可选：%(choices)s）",
    "can't open '%(filename)s': %(error)s": "无法打开 '%(filename)s'：%(error)s",
}
_ARGPARSE_ZH_PLURAL = {"expected %s argument": "需要 %s 个值", "expected %s arguments": "需要 %s 个值"}

#: the language argparse speaks while :func:`_argparse_words` is active (read by ``_Parser.error``)
_ARGPARSE_LANG = ["en"]


class _argparse_words:
    """``with _argparse_words(lang):`` argparse's own words ("usage:", "options", its errors) in ``lang``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __enter__(self) -> None:
        self.saved = (argparse._, argparse.ngettext, _ARGPARSE_LANG[0])  # type: ignore[attr-defined]
        _ARGPARSE_LANG[0] = self.lang
        if self.lang == "zh":
            gettext, ngettext = self.saved[0], self.saved[1]
            argparse._ = lambda m: _ARGPARSE_ZH.get(m) or gettext(m)  # type: ignore[attr-defined]
            argparse.ngettext = lambda s, p, n: (  # type: ignore[attr-defined]
                _ARGPARSE_ZH_PLURAL.get(s if n == 1 else p) or ngettext(s, p, n))

    def __exit__(self, *exc: object) -> None:
        argparse._, argparse.ngettext, _ARGPARSE_LANG[0] = self.saved  # type: ignore[attr-defined]


def _estimate_options(p: argparse.ArgumentParser, lang: str = "en") -> None:
    """The arguments of an estimate: MODEL, then every option of the table (``options.py``) by group."""
    from .options import add_arguments

    p.add_argument("model", nargs="?", metavar="MODEL",
                   help=t("help_model", lang))
    add_arguments(p, lang)


def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    """The command line; every help text in ``lang`` (argparse's own words too, under :func:`_argparse_words`)."""

    def h(key: str) -> str:  # the help text cli_h_<key>
        return t(f"cli_h_{key}", lang)

    parser = _Parser(prog="vramscope",
                     description="How much GPU memory does this model need to run, fine-tune or train? "
                                 "/ 运行、微调或训练这个模型需要多少显存？")
    parser.add_argument("--version", action="store_true", help=h("version"))
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    est = sub.add_parser("estimate", help=h("estimate"))
    _estimate_options(est, lang)
    fit = sub.add_parser("fit", help=h("fit"))
    _estimate_options(fit, lang)
    fit.add_argument("--check", action="store_true", help=h("check"))
    tr = sub.add_parser("trace", help=h("trace"))
    _estimate_options(tr, lang)
    tr.add_argument("--quiet", action="store_true", help=h("quiet"))
    tr.add_argument("--timeout", metavar="SECONDS", help=h("timeout"))
    me = sub.add_parser("measure", help=h("measure"))
    _estimate_options(me, lang)
    me.add_argument("--output", help=h("output"))
    va = sub.add_parser("validate", help=h("validate"))
    va.add_argument("records", nargs="+", help=h("records"))
    va.add_argument("--trace", action="store_true", help=h("validate_trace"))
    va.add_argument("--json", action="store_true", help=h("json"))
    va.add_argument("--lang", choices=("en", "zh"), help=h("lang"))
    va.add_argument("--units", default="GiB", choices=("GiB", "GB"), help=h("units"))
    sv = sub.add_parser("serve", help=h("serve"))
    sv.add_argument("--host", default="127.0.0.1", help=h("host"))
    sv.add_argument("--port", default="8765", help=h("port"))
    sv.add_argument("--allow-hub", action="store_true", help=h("allow_hub"))
    sv.add_argument("--idle-timeout", default="5", metavar="SECONDS", help=h("idle_timeout"))
    sv.add_argument("--request-timeout", default="10", metavar="SECONDS", help=h("request_timeout"))
    sv.add_argument("--max-connections", default="2048", metavar="N", help=h("max_connections"))
    sv.add_argument("--lang", choices=("en", "zh"), help=h("serve_lang"))
    pl = sub.add_parser("plot", help=h("plot"))
    _estimate_options(pl, lang)
    pl.add_argument("--axis", default="both", choices=("seq", "batch", "both"), help=h("axis"))
    models = sub.add_parser("models", help=h("models"))
    models.add_argument("query", nargs="?", default="", help=h("query_models"))
    models.add_argument("--json", action="store_true", help=h("json"))
    models.add_argument("--lang", choices=("en", "zh"), help=h("lang"))
    gpus = sub.add_parser("gpus", help=h("gpus"))
    gpus.add_argument("query", nargs="?", default="", help=h("query_gpus"))
    gpus.add_argument("--json", action="store_true", help=h("json"))
    gpus.add_argument("--lang", choices=("en", "zh"), help=h("lang"))
    gpus.add_argument("--units", default="GiB", choices=("GiB", "GB"), help=h("units"))
    return parser


def _load(args: argparse.Namespace) -> tuple:
    from .api import load_model
    from .options import from_namespace, workload_fields
    from .workload import make_workload

    pasted, recipe = _pasted(args), _recipe(args)
    name = args.model
    for source, found in (("command", pasted.model if pasted else None), ("config", recipe.model if recipe else None)):
        if found and name and found != name and args.params is None:
            raise VramscopeError("conflict", field="model", reason=Text("r_model_disagrees", theirs=found,
                                                                        source=Opt(source)))
        name = name or (found if args.params is None else None)
    ollama_quant = None
    if name and ":" in name:  # an Ollama library name (llama3.1:70b-instruct-q4_K_M): its catalog model and quant
        from .sources.ollama import looks_like_ollama_name, parse_ollama_name

        if looks_like_ollama_name(name):
            ollama = parse_ollama_name(name)
            name, ollama_quant = ollama.model, ollama.quant
    model = load_model(name, args.params, hub=not args.no_hub, layers=args.layers, hidden=args.hidden,
                       heads=args.heads, kv_heads=args.kv_heads, head_dim=args.head_dim,
                       intermediate=args.intermediate, vocab=args.vocab)
    given = from_namespace(args, workload_fields())
    if args.zero:
        if "parallelism" in given:
            raise VramscopeError("conflict", field="zero", reason=Text("r_zero_is_parallelism",
                                                                       par=Opt("parallelism", "zeroN")))
        given["parallelism"] = {"0": "ddp"}.get(args.zero, f"zero{args.zero}")
    if ollama_quant and given.get("engine") in (None, "ollama", "llama.cpp"):
        given.setdefault("engine", "ollama")
        given.setdefault("quant", ollama_quant)
    merged = combine(given, _imported(args))
    if recipe is not None:
        merged = combine(merged, ("config", recipe.options))
    if pasted is not None:
        from .commandline import estimate_kwargs

        merged = combine(merged, ("command", estimate_kwargs(pasted, model.spec.max_position_embeddings or None)))
    args.notes = _notes(pasted, recipe)
    return model, make_workload(**merged)


def _pasted(args: argparse.Namespace) -> Any:
    """The engine command line given after ``--`` (``vramscope estimate -- vllm serve ...``), parsed."""
    tail = getattr(args, "pasted", None)
    if not tail:
        return None
    from .commandline import parse_command

    return parse_command(tail)


def _recipe(args: argparse.Namespace) -> Any:
    """The training recipe of ``--config`` (axolotl, LLaMA-Factory, TRL, torchtune), read."""
    if getattr(args, "config", None) is None:
        return None
    from .configs import from_training_config

    return from_training_config(args.config)


def _notes(pasted: Any, recipe: Any) -> tuple:
    from .commandline import command_notes, config_notes

    out: list = []
    if recipe is not None:
        out += config_notes(recipe)
    if pasted is not None:
        out += command_notes(pasted)
    return tuple(out)


def _imported(args: argparse.Namespace) -> tuple[str, dict]:
    """The options a config file given on the command line sets (``--deepspeed``, ``--fsdp``, ``--torchtitan``,
    ``--megatron-args``): (its flag, them)."""
    given = [k for k in ("deepspeed", "fsdp", "torchtitan", "megatron_args") if getattr(args, k, None) is not None]
    if len(given) > 1:
        raise VramscopeError("conflict", field=given[0], reason=Text("r_two_configs", other=Opt(given[1])))
    if given == ["torchtitan"]:
        from .configs import from_torchtitan

        return "torchtitan", from_torchtitan(args.torchtitan)
    if given == ["megatron_args"]:
        from .configs import from_megatron_args

        return "megatron_args", from_megatron_args(args.megatron_args)
    if args.deepspeed is not None:
        from .configs import from_deepspeed

        return "deepspeed", from_deepspeed(args.deepspeed)
    if args.fsdp is not None:
        from .configs import from_accelerate_fsdp

        return "fsdp", from_accelerate_fsdp(args.fsdp)
    return "", {}


def combine(given: dict, imported: tuple[str, dict], label: Any = None) -> dict:
    """The command line's options and a config file's, merged: the one step every config import goes through. A
    config and the command line must not disagree (neither wins silently). ``label``: how a disagreement names
    the config (its flag by default; the web page names an upload as the page does)."""
    config, values = imported
    out = dict(given)
    for key, value in values.items():
        mine = out.get(key)
        if mine is not None and str(mine).strip().lower() != str(value).strip().lower():
            raise VramscopeError("conflict", field=key, reason=Text("r_config_disagrees", mine=mine,
                                                                    config=label or Opt(config), theirs=value))
        out[key] = value
    return out


def _gpus(args: argparse.Namespace) -> list[str]:
    from .units import looks_like_size, shown

    for size in args.gpu_memory:
        if not looks_like_size(size):
            raise VramscopeError("bad_size", field="--gpu-memory", value=shown(size))
    return list(args.gpu) + list(args.gpu_memory)


def _size_notes(gpus: Sequence[str], lang: str) -> list[str]:
    """A line for each GPU given as a size, saying how the size was read."""
    from .gpus import size_note

    notes = [size_note(g) for g in dict.fromkeys(gpus)]
    return [t(n[0], lang, **n[1]) for n in notes if n is not None]


def _cmd_estimate(args: argparse.Namespace, lang: str) -> int:
    from .api import estimate_resolved
    from .plan import DEFAULT_SHORTLIST

    model, workload = _load(args)
    result = estimate_resolved(model, workload, _gpus(args) or DEFAULT_SHORTLIST)
    if getattr(args, "notes", ()):
        from dataclasses import replace

        result = replace(result, assumptions=result.assumptions + args.notes)
    if args.json:
        print(result.to_json(lang))  # allow_nan=False: never Infinity/NaN, which is not JSON
    else:
        from .present.table import render_estimate

        print("\n".join([render_estimate(result, lang, args.units), *_size_notes(_gpus(args), lang)]))
    if args.plot:
        from .present.svg import estimate_pictures

        write_plot(args.plot, estimate_pictures(result, lang, args.units))
    return 0


def write_plot(path: str, parts: list, lang: str = "en") -> None:
    """The pictures as one SVG file at ``path`` (or PNG, converted by rsvg-convert or cairosvg when one is
    installed: neither is a dependency). A file that cannot be written is one clear error."""
    import shutil
    import subprocess

    from .present.svg import document
    from .units import shown

    svg = document(parts)
    target = os.fspath(path)
    if not target.lower().endswith((".svg", ".png")):
        raise VramscopeError("plot_suffix", field="plot", path=shown(target))
    try:
        if target.lower().endswith(".svg"):
            with open(target, "w", encoding="utf-8") as f:
                f.write(svg)
            return
        converter = shutil.which("rsvg-convert")
        if converter:
            done = subprocess.run([converter, "-f", "png", "-o", target], input=svg.encode("utf-8"),
                                  capture_output=True, timeout=60)
            if done.returncode != 0:
                raise VramscopeError("plot_png_failed", field="plot", path=shown(target),
                                     detail=shown(done.stderr.decode("utf-8", "replace").strip()[:200]))
            return
        try:
            import cairosvg  # type: ignore[import-not-found]
        except ImportError:
            raise VramscopeError("plot_no_png", field="plot", path=shown(target)) from None
        cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=target)
    except OSError as e:
        raise VramscopeError("plot_unwritable", field="plot", path=shown(target),
                             detail=shown(e.strerror or type(e).__name__)) from None


def _cmd_plot(args: argparse.Namespace, lang: str) -> int:
    from .curves import AXES, curves, first_gpus
    from .present.svg import curve_chart

    model, workload = _load(args)
    if not args.plot:
        raise VramscopeError("plot_needs_file", field="plot")
    gpus = first_gpus(_gpus(args), ("rtx-4090",))
    axes = AXES if args.axis == "both" else (args.axis,)
    drawn = curves(model, workload, gpus, axes)
    write_plot(args.plot, [curve_chart(c, lang, args.units) for c in drawn], lang)
    if args.json:
        import json

        print(json.dumps([c.to_dict() for c in drawn], indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(t("plot_written", lang, path=args.plot))
    return 0


def _cmd_models(args: argparse.Namespace, lang: str) -> int:
    import json

    from .present.table import render_table
    from .sources import catalog, resolve_catalog
    from .units import format_count

    found = catalog.search(args.query)
    rows = []
    for e in found:
        r = resolve_catalog(e["id"])
        assert r is not None
        rows.append({"id": e["id"], "aliases": e.get("aliases", []), "model_type": r.spec.model_type,
                     "params": r.params, "active_params": r.active_params, "source": e.get("source", "")})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    if not rows:
        from .units import shown

        print(t("models_none", lang, query=shown(args.query)))
        return 0
    table = [[t("lh_id", lang), t("lh_alias", lang), t("lh_model_type", lang), t("lh_params", lang)]]
    for r in rows:
        p = format_count(r["params"])
        if r["active_params"] != r["params"]:
            p += t("models_active", lang, active=format_count(r["active_params"]))
        table.append([r["id"], (r["aliases"] or [""])[0], r["model_type"], p])
    print(t("models_header", lang, n=len(rows)))
    print(render_table(table, (False, False, False, True)))
    return 0


def _cmd_gpus(args: argparse.Namespace, lang: str) -> int:
    import json

    from .gpus import catalog
    from .present.table import render_table
    from .units import format_bytes

    q = args.query.lower()
    found = [g for g in catalog()["gpus"]
             if not q or q in g["id"] or q in g["name"].lower() or any(q in a for a in g.get("aliases", []))]
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    table = [[t("lh_id", lang), t("lh_name", lang), t("lh_memory", lang), t("lh_usable", lang)]]
    for g in found:
        usable = int(g["memory_bytes"] * g.get("usable_fraction", 1.0))
        table.append([g["id"], g["name"], format_bytes(g["memory_bytes"], args.units),
                      format_bytes(usable, args.units)])
    print(t("gpus_header", lang, n=len(found)))
    print(render_table(table, (False, False, True, True)))
    return 0


def _cmd_fit(args: argparse.Namespace, lang: str) -> int:
    import json

    from .gpus import find_gpu
    from .plan import DEFAULT_SHORTLIST, fit
    from .present.table import render_assumed, render_fit

    model, workload = _load(args)
    answers = [fit(model, workload, find_gpu(g)) for g in (_gpus(args) or DEFAULT_SHORTLIST)]
    if args.json:
        data = [a.to_dict(lang) for a in answers]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print("\n".join([render_assumed(answers[0], lang), "\n\n".join(render_fit(a, lang, args.units) for a in answers),
                         *_size_notes(_gpus(args), lang)]))
    if args.plot:
        from .present.svg import fit_pictures

        write_plot(args.plot, fit_pictures(answers, lang, args.units))
    if args.check:
        return 0 if all(a.fits for a in answers) else 1
    return 0


def _cmd_trace(args: argparse.Namespace, lang: str) -> int:
    # every option, the model, the GPUs and the trace's own limits are checked before torch is imported
    from .api import check_workload_for_model
    from .gpus import find_gpu
    from .present.table import render_estimate
    from .trace.build import require_torch
    from .trace.preflight import check_traceable, estimate_command, parse_timeout

    timeout = parse_timeout(args.timeout)
    model, workload = _load(args)
    workload, _ = check_workload_for_model(model, workload)
    gpus = tuple(_gpus(args))
    for g in gpus:
        find_gpu(g)
    command = estimate_command(args)
    check_traceable(model, workload, command)
    require_torch()
    from .trace.estimator import trace_estimate

    result = trace_estimate(model, workload, gpus, progress=not args.quiet, timeout=timeout, command=command)
    print(result.to_json(lang) if args.json else render_estimate(result, lang, args.units))
    if args.plot:
        from .present.svg import estimate_pictures

        write_plot(args.plot, estimate_pictures(result, lang, args.units))
    return 0


def _cmd_measure(args: argparse.Namespace, lang: str) -> int:
    import json

    from .trace.build import require_torch

    if args.plot:  # a record, not an estimate: nothing to draw (validate compares records with estimates)
        raise VramscopeError("plot_not_here", field="plot", command="measure")
    require_torch()
    from .trace.measure import append_record, measure_record

    from .api import check_workload_for_model

    model, workload = _load(args)
    workload, _ = check_workload_for_model(model, workload)
    record = measure_record(model, workload)
    if args.output:
        append_record(args.output, record)
    print(json.dumps(record, indent=None if args.output else 2, ensure_ascii=False, allow_nan=False))
    return 0


def _cmd_validate(args: argparse.Namespace, lang: str) -> int:
    import json
    from pathlib import Path

    from .present.table import render_table, wrap
    from .units import format_bytes
    from .validate import read_records, summary, validate

    records = [r for p in args.records for r in read_records(p)]
    rows = validate(records, trace=args.trace)
    summ = summary(rows)
    if args.json:
        print(json.dumps({"rows": [r.to_dict() for r in rows], "summary": summ}, indent=2, ensure_ascii=False,
                         allow_nan=False))
        return 0

    def pct(x: object, sign: str = "+") -> str:
        return "" if x is None else f"{100 * float(x):{sign}.1f}%"  # type: ignore[arg-type]

    traced = any(r.trace_bytes is not None for r in rows)
    # the metric compared (allocated, reserved, device, an engine's component) stands for how it was measured,
    # which the JSON keeps (rows[].measured)
    head = [t("vh_record", lang), t("vh_metric", lang), t("vh_value", lang),
            t("vh_analytic", lang), t("vh_error", lang), t("vh_in_range", lang)] + (
        [t("vh_trace", lang), t("vh_error", lang)] if traced else [])
    table, skipped = [head], []
    for r in rows:
        d = r.to_dict()
        name = r.id + ("" if r.component == "total" else f" [{r.component}]") + (" *" if r.caveat else "")
        if r.skipped:
            skipped.append((r.id, r.skip_text(lang)))
            cells = [t("vh_skipped", lang, n=len(skipped)), "", ""] + (["", ""] if traced else [])
        else:
            held = "" if r.in_range is None or r.component != "total" else t("vh_yes" if r.in_range else "vh_no", lang)
            cells = [format_bytes(r.analytic_bytes or 0, args.units), pct(d["analytic_error"]), held] + (
                ["" if r.trace_bytes is None else format_bytes(r.trace_bytes, args.units), pct(d["trace_error"])]
                if traced else [])
        table.append([name, r.metric or r.measured, format_bytes(r.measured_bytes, args.units)] + cells)
    # the table stays within 100 columns: long record ids wrap at their dashes, in what the other columns leave
    from .present.table import width

    others = sum(max(width(row[i]) for row in table) + 2 for i in range(1, len(head)))
    idw = max(20, 100 - others)
    wrapped = [table[0]]
    for row in table[1:]:
        parts = _wrap_id(row[0], idw)
        wrapped.append([parts[0]] + row[1:])
        wrapped += [[p] + [""] * (len(head) - 1) for p in parts[1:]]
    print(render_table(wrapped, (False, False, True, True, True, False) + ((True, True) if traced else ())))
    if skipped:
        print()
        for k, (rid, why) in enumerate(skipped, 1):
            print(wrap(f"({k}) {rid}: {why}", 100, "    "))
    caveats = [(r.id, r.caveat) for r in rows if r.caveat and not r.skipped]
    if caveats:
        print()
        notes = dict.fromkeys(part for _, c in caveats for part in c.split("; "))
        print(wrap("* " + t("list_sep_semi", lang).join(notes), 100, "  "))
    print()
    table = [[t("vh_kind", lang), t("vh_records", lang), t("vh_median", lang), t("vh_worst", lang),
              t("vh_in_range", lang)] + ([t("vh_trace_median", lang), t("vh_trace_worst", lang)] if traced else [])]
    for kind, e in summ.items():
        a, tr = e.get("analytic", {}), e.get("trace", {})
        cov = e.get("range_coverage")
        table.append([kind, str(e["records"]), pct(a.get("median_abs_error"), ""), pct(a.get("worst_error")),
                      t("vh_of", lang, k=cov["in_range"], n=cov["n"]) if cov else ""]
                     + ([pct(tr.get("median_abs_error"), ""), pct(tr.get("worst_error"))] if traced else []))
    print(render_table(table, (False, True, True, True, True) + ((True, True) if traced else ())))
    print(t("validate_legend", lang))
    return 0


def _wrap_id(name: str, width: int) -> list[str]:
    """A record id in pieces of at most ``width`` characters, broken after a dash where it can be."""
    parts: list[str] = []
    while len(name) > width:
        cut = name.rfind("-", 0, width) + 1 or width
        parts.append(name[:cut])
        name = "  " + name[cut:]
    return parts + [name]


def _cmd_serve(args: argparse.Namespace, lang: str) -> int:
    from .serve import Options, serve
    from .units import parse_int

    options = Options(allow_hub=args.allow_hub, idle_timeout=parse_int(args.idle_timeout, "--idle-timeout", 1, 3600),
                      request_timeout=parse_int(args.request_timeout, "--request-timeout", 1, 3600),
                      max_connections=parse_int(args.max_connections, "--max-connections", 1, 1_000_000), lang=lang)
    serve(args.host, parse_int(args.port, "--port", 0, 65535), options)
    return 0


COMMANDS = {"serve": _cmd_serve, "estimate": _cmd_estimate, "trace": _cmd_trace, "measure": _cmd_measure, "validate": _cmd_validate, "fit": _cmd_fit, "models": _cmd_models, "gpus": _cmd_gpus, "plot": _cmd_plot}


def _one_line(text: str, limit: int = 2000) -> str:
    """An error as one printable line: control characters a user typed (a path with a newline) escaped."""
    from .units import printable

    return printable(text, limit)


def _lang_asked(argv: Sequence[str]) -> Optional[str]:
    """``--lang X`` / ``--lang=X`` on the command line, read before parsing (for the language of ``--help``)."""
    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--lang="):
            return a.split("=", 1)[1]
    return None


#: the commands that take an engine's command line after ``--``
PASTING = ("estimate", "fit", "trace", "measure")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    pasted: list[str] = []
    if argv and argv[0] in PASTING and "--" in argv:  # vramscope estimate [options] -- <the command you run>
        cut = argv.index("--")
        argv, pasted = argv[:cut], argv[cut + 1:]
    help_lang = detect_lang(_lang_asked(argv))
    with _argparse_words(help_lang):
        parser = build_parser(help_lang)
        args = parser.parse_args(argv)
    args.pasted = pasted
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not args.command:
        with _argparse_words(help_lang):
            parser.print_help()
        return 0
    lang = detect_lang(getattr(args, "lang", None))
    try:
        return COMMANDS[args.command](args, lang)
    except VramscopeError as e:
        print(t("cli_error", lang, message=_one_line(e.render(lang, "cli"))), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:  # Ctrl+C: one line, the shell's usual code, no traceback
        print(f"vramscope: {t('interrupted', lang)}", file=sys.stderr)
        return 130
    except Exception as e:  # an internal bug: one line unless debugging
        if os.environ.get("VRAMSCOPE_DEBUG"):
            raise
        print(t("cli_internal_error", lang, kind=type(e).__name__, detail=_one_line(str(e), 300)), file=sys.stderr)
        return EXIT_INTERNAL


register({
    "cli_usage_error": {"en": "{prog}: error: {message} (see '{prog} --help')",
                        "zh": "{prog}：错误：{message}（见 '{prog} --help'）"},
    "cli_h_version": {"en": "print the version", "zh": "显示版本号"},
    "cli_h_estimate": {"en": "estimate GPU memory for a model and workload", "zh": "估算模型在给定工作负载下所需的显存"},
    "cli_h_fit": {"en": "does it fit: largest batch and context, fewest GPUs, what to change",
                  "zh": "能否装下：最大批量与上下文、最少 GPU 数、该改什么"},
    "cli_h_check": {"en": "exit 0 when it fits on every --gpu, 1 when it does not (for scripts and CI)",
                    "zh": "在每个 --gpu 上都装得下时退出码为 0，否则为 1（供脚本和 CI 使用）"},
    "cli_h_trace": {"en": "run the real model code on fake tensors (needs the trace extra)",
                    "zh": "在伪张量上运行真实的模型代码（需要 trace 附加依赖）"},
    "cli_h_quiet": {"en": "no progress lines on stderr", "zh": "不在 stderr 上输出进度"},
    "cli_h_timeout": {"en": "stop the trace after this long (default 300; 200 layers of a training step take ~30 s)",
                      "zh": "超过这么久就停止追踪（默认 300 秒；一个 200 层的训练步约需 30 秒）"},
    "cli_h_measure": {"en": "run the workload for real on a CUDA GPU and record the peaks",
                      "zh": "在 CUDA GPU 上真实运行该工作负载并记录峰值"},
    "cli_h_output": {"en": "append the record (JSON Lines) to this file", "zh": "把记录（JSON Lines）追加到这个文件"},
    "cli_h_validate": {"en": "compare estimates with measured records (JSON Lines)",
                       "zh": "把估算与实测记录（JSON Lines）对比"},
    "cli_h_records": {"en": "*.jsonl files of vramscope.record/1", "zh": "vramscope.record/1 格式的 *.jsonl 文件"},
    "cli_h_validate_trace": {"en": "also re-estimate with the trace estimator (slow)",
                             "zh": "同时用 trace 估算器重新估算（较慢）"},
    "cli_h_json": {"en": "print JSON instead of a table", "zh": "输出 JSON 而不是表格"},
    "cli_h_lang": {"en": "language of the output: en or zh (default: the locale)",
                   "zh": "输出语言：en 或 zh（默认：按系统区域设置）"},
    "cli_h_units": {"en": "GiB (1024³ bytes, as torch and nvidia-smi count) or GB (10⁹ bytes)",
                    "zh": "GiB（1024³ 字节，与 torch 和 nvidia-smi 一致）或 GB（10⁹ 字节）"},
    "cli_h_serve": {"en": "a web page and JSON API on this machine (needs the 'web' extra)",
                    "zh": "在本机提供网页和 JSON API（需要 web 附加依赖）"},
    "cli_h_host": {"en": "address to listen on (default 127.0.0.1; anything else is reachable from other machines)",
                   "zh": "监听地址（默认 127.0.0.1；其他地址可被别的机器访问）"},
    "cli_h_port": {"en": "port (default 8765; 0 picks a free one)", "zh": "端口（默认 8765；0 表示自动选一个空闲端口）"},
    "cli_h_allow_hub": {"en": "also look up owner/name ids on the Hugging Face Hub (default: catalog names only)",
                        "zh": "也在 Hugging Face Hub 上查找 owner/name 形式的 id（默认只用内置目录中的名称）"},
    "cli_h_idle_timeout": {"en": "close a connection that sends no complete request for this long (default 5)",
                           "zh": "连接在这么久内没有发来完整请求就关闭（默认 5 秒）"},
    "cli_h_request_timeout": {"en": "answer 503 to a request that takes longer (default 10)",
                              "zh": "请求处理超过这么久就回答 503（默认 10 秒）"},
    "cli_h_max_connections": {"en": "open connections at most; more get 503 (default 2048)",
                              "zh": "最多同时打开的连接数；超出的回答 503（默认 2048）"},
    "cli_h_serve_lang": {"en": "language when a request does not say (default: locale)",
                         "zh": "请求未指明语言时使用的语言（默认：按系统区域设置）"},
    "cli_h_plot": {"en": "draw memory against context length and batch size (SVG) for --gpu",
                   "zh": "针对 --gpu 画出显存随上下文长度和批量大小的变化（SVG）"},
    "cli_h_axis": {"en": "which curve: seq (context length), batch, or both (default)",
                   "zh": "画哪条曲线：seq（上下文长度）、batch，或 both（默认）"},
    "cli_h_models": {"en": "list the built-in model catalog", "zh": "列出内置模型目录"},
    "cli_h_query_models": {"en": "only models whose name contains this", "zh": "只列出名称包含此字符串的模型"},
    "cli_h_gpus": {"en": "list the GPU catalog", "zh": "列出 GPU 目录"},
    "cli_h_query_gpus": {"en": "only GPUs whose name contains this", "zh": "只列出名称包含此字符串的 GPU"},
})


register({
    "help_model": {"en": "catalog name (llama-3-8b), Hub id (meta-llama/Meta-Llama-3-8B), folder, config.json, "
                         ".safetensors, .safetensors.index.json or .gguf",
                   "zh": "目录中的名称（llama-3-8b）、Hub id（meta-llama/Meta-Llama-3-8B）、文件夹、config.json、"
                         ".safetensors、.safetensors.index.json 或 .gguf"},
    "plot_suffix": {"en": "{field}: '{path}' must end in .svg or .png", "zh": "{field}：'{path}' 必须以 .svg 或 .png 结尾"},
    "plot_no_png": {"en": "{field}: '{path}': PNG needs rsvg-convert (Debian: librsvg2-bin) or the cairosvg package; "
                          "neither is installed (write an .svg instead)",
                    "zh": "{field}：'{path}'：PNG 需要 rsvg-convert（Debian：librsvg2-bin）或 cairosvg 包，两者都未安装"
                          "（请改写为 .svg）"},
    "plot_png_failed": {"en": "{field}: '{path}': rsvg-convert failed: {detail}",
                        "zh": "{field}：'{path}'：rsvg-convert 失败：{detail}"},
    "plot_unwritable": {"en": "{field}: cannot write '{path}': {detail}", "zh": "{field}：无法写入 '{path}'：{detail}"},
    "plot_needs_file": {"en": "{field}: plot needs a file to draw into, such as --plot curves.svg",
                        "zh": "{field}：plot 需要一个输出文件，例如 --plot curves.svg"},
    "plot_not_here": {"en": "{field}: {command} writes a record, not an estimate; draw it with estimate or fit",
                      "zh": "{field}：{command} 写出的是测量记录而不是估算；请用 estimate 或 fit 画图"},
    "plot_written": {"en": "wrote {path}", "zh": "已写入 {path}"},
    "r_zero_is_parallelism": {"en": "is {par}: give one of them", "zh": "等同于 {par}：请只给其中一个"},
    "r_model_disagrees": {"en": "differs from the model of {source} ('{theirs}'); give one of them",
                          "zh": "与 {source} 中的模型（'{theirs}'）不同；请只给一个"},
    "r_two_configs": {"en": "and {other} describe two different trainings; give one config",
                      "zh": "与 {other} 描述的是两个不同的训练；请只给一个配置"},
    "r_config_disagrees": {"en": "'{mine}' disagrees with {config} ('{theirs}'); give it in one place",
                           "zh": "'{mine}' 与 {config}（'{theirs}'）不一致；请只在一处给出"},
})
