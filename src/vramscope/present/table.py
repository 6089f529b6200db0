"""Plain-text tables that align Chinese (double-width) characters correctly, with no dependency."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ..plan import FitAnswer

from ..engines.base import engine_for
from ..i18n import t
from ..result import COMPONENTS, Estimate
from ..units import format_bytes, format_count


#: assumptions that are warnings: printed as a "warning:" line of their own (the JSON keeps them in assumptions)
WARNINGS = ("a_beyond_context",)


def warnings(e: Estimate) -> list:
    return [a for a in e.assumptions if a.key in WARNINGS]


def width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def pad(s: str, n: int, right: bool = False) -> str:
    fill = " " * max(0, n - width(s))
    return fill + s if right else s + fill


def render_table(rows: Sequence[Sequence[str]], right: Sequence[bool], header: bool = True) -> str:
    widths = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(pad(c, widths[i], right[i]) for i, c in enumerate(row)).rstrip())
        if header and k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_estimate(e: Estimate, lang: str = "en", units: str = "GiB") -> str:
    m = e.model
    active = t("active_part", lang, active=format_count(m.active_params)) if m.active_params != m.params else ""
    tp = int(e.workload.get("tp") or 1) if e.task != "inference" else 1
    trainable = "" if not m.trainable_params else \
        t("trainable_part", lang, trainable=format_count(m.trainable_params)) if tp == 1 else \
        t("trainable_part_tp", lang, trainable=format_count(m.trainable_params), tp=tp)
    out = [t("model_line", lang, name=m.name, params=format_count(m.params), active=active, trainable=trainable),
           t("estimate_line", lang, task=t(f"task_{e.task}", lang), estimator=e.estimator), ""]
    rows = [[t("hdr_component", lang), t("hdr_memory", lang), t("hdr_share", lang)]]
    total = e.total_bytes or 1
    for name in COMPONENTS:
        value = e.components.get(name, 0)
        if value:
            rows.append([t(f"c_{name}", lang), format_bytes(value, units), f"{100 * value / total:.1f}%"])
    engine = engine_for(e.workload)
    rows.append([t(engine.total_key(e), lang), format_bytes(e.total_bytes, units), "100.0%"])
    out.append(render_table(rows, (False, True, True)))
    out.extend(memory_lines(e, lang, units))
    if len(e.phases) > 1:
        phases = t("list_sep", lang).join(f"{t('phase_' + p, lang)} {format_bytes(sum(v.values()), units)}"
                                          for p, v in e.phases.items())
        out.append(t("peak_line", lang, phase=t('phase_' + e.peak_phase, lang), phases=phases))
    out.extend(engine.table_lines(e, lang, units))
    if e.engine.get("host_bytes"):
        out.append(t("host_line", lang, host=format_bytes(e.engine["host_bytes"], units)))
    if e.engine.get("host_bytes_per_node"):
        out.append(t("host_node_line", lang, host=format_bytes(e.engine["host_bytes_per_node"], units),
                     n=e.workload["num_gpus"] // max(1, e.workload.get("nodes", 1))))
    if e.engine.get("nvme_bytes"):
        out.append(t("nvme_line", lang, nvme=format_bytes(e.engine["nvme_bytes"], units)))
    par = e.engine.get("parallel")
    if par:
        out.append(t("parallel_line", lang, world=par["world"], dp=par["dp"], tp=par.get("tp", 1), pp=par["pp"],
                     sp=par["sp"], ep=par["ep"], shard=par["shard_group"]))
    pipe = e.engine.get("pipeline") if e.estimator == "trace" else None
    if pipe:
        out.append(t("pp_ranks_line", lang))
        sep = t("list_sep", lang)
        out.extend(t("pp_rank_row", lang, rank=r["rank"], stages=sep.join(str(x) for x in r["stages"]),
                     layers=sep.join(str(x) for x in r["layers"]), peak=format_bytes(r["peak_bytes"], units),
                     phase=t('phase_' + r["peak_phase"], lang),
                     busiest=t("pp_busiest", lang) if r["rank"] == pipe["busiest"] else "")
                   for r in pipe["ranks"])
    out.extend(wrap(t("warning_line", lang, text=a.render(lang)), 100, "  ") for a in warnings(e))
    if e.gpus:
        out.append("")
        out.extend(engine.gpu_line(e, g, lang, units) for g in e.gpus)
    if e.assumptions:
        out.append("")
        out.append(t("assumptions_line", lang))
        out.extend(wrap(f"  - {a.render(lang)}", 100, "    ") for a in e.assumptions if a.key not in WARNINGS)
    return "\n".join(out)


def memory_lines(e: Estimate, lang: str, units: str) -> list[str]:
    """The three numbers per GPU and the device range with what widens it (or the plain range for an engine's
    own accounting)."""
    m = e.memory
    low, high = e.range_bytes
    if m is None or m.basis == "engine":
        if (low, high) == (e.total_bytes, e.total_bytes):
            return []
        return [t("range_line", lang, low=format_bytes(low, units), high=format_bytes(high, units))]
    from ..memory.device import VERSION_SPREAD, VERSION_SPREAD_TRANSIENT

    why = ", " if lang == "en" else "、"
    reasons = why.join(t(f"w_{k}", lang, pct=f"{100 * VERSION_SPREAD:g}", tpct=f"{100 * VERSION_SPREAD_TRANSIENT:g}")
                       for k in m.widened_by)
    lines = [t("mem_line", lang, allocated=format_bytes(m.allocated, units), reserved=format_bytes(m.reserved, units),
               device=format_bytes(m.device, units)),
             t("mem_range_line", lang, low=format_bytes(low, units), high=format_bytes(high, units), why=reasons)]
    if m.basis == "simulated":
        lines.append(t("mem_basis_simulated", lang))
    return lines


def render_assumed(a: "FitAnswer", lang: str = "en") -> str:
    """fit's header: what the answers assumed (the same for every GPU), in one wrapped line."""
    sep = t("list_sep", lang)
    return wrap(t("fit_assumed", lang, what=sep.join(a.assumed_lines(lang))), 100, "  ")


def wrap(text: str, columns: int = 100, indent: str = "") -> str:
    """``text`` wrapped at spaces (Chinese: anywhere) to ``columns`` display columns, continuation lines indented."""
    lines: list[str] = []
    line = ""
    for unit in (" GiB", " GB", " MiB", " tokens", " token"):  # a number stays with its unit
        text = text.replace(unit, "\u00a0" + unit[1:])
    for part in _breakable(text):
        if line and width(line + part) > columns:
            lines.append(line.rstrip())
            line = indent + part.lstrip()
        else:
            line += part
    lines.append(line.rstrip())
    return "\n".join(lines).replace("\u00a0", " ")


_NO_LINE_START = "，。；：、）》」！？"
_NO_LINE_END = "（《「"


def _breakable(text: str) -> list[str]:
    """Pieces a line may break between: words with their leading space, and each double-width character."""
    parts: list[str] = []
    cur = ""
    for c in text:
        if c in _NO_LINE_START and (cur or parts):  # Chinese punctuation never starts a line
            if cur:
                cur += c
            else:
                parts[-1] += c
            continue
        if parts and not cur and parts[-1][-1] in _NO_LINE_END:  # nor does an opening bracket end one
            cur = parts.pop()
            if c == " " or width(c) != 2:
                cur += c
                continue
        if c == " " or width(c) == 2:
            if cur and cur[-1] in _NO_LINE_END:
                cur += c
                if width(c) == 2:
                    parts.append(cur)
                    cur = ""
                continue
            if cur:
                parts.append(cur)
            cur = c
            if width(c) == 2:
                parts.append(cur)
                cur = ""
        else:
            cur += c
    if cur:
        parts.append(cur)
    return parts


def render_ladder(a: "FitAnswer", lang: str = "en", units: str = "GiB") -> list[str]:
    """llama.cpp's quantization ladder: every GGUF type, its bits per weight, where it fits, llama.cpp's note;
    then the commands of the best type that fits fully and the best that fits with part of the layers."""
    seq = a.estimate.workload["seq"]
    rows = [[t("lh_type", lang), t("lh_bpw", lang), t("lh_gpu", lang), t("lh_ctx", lang), t("lh_quality", lang)]]
    for r in a.ladder:
        if r.fits:
            where = t("lr_full", lang, total=format_bytes(r.total_bytes, units))
        elif r.n_gpu_layers:
            where = t("lr_ngl", lang, n=r.n_gpu_layers)
        elif r.n_gpu_layers == 0:
            where = t("lr_cpu", lang)
        else:  # not even with every layer in host memory (or an engine that places layers itself)
            where = t("lr_no", lang)
        rows.append([r.quant, f"{r.bits_per_weight:.2f}", where, f"{r.max_seq:,}" if r.fits else "-",
                     t(r.note[0], lang, **r.note[1])])
    out = ["  " + t("fit_ladder", lang, seq=f"{seq:,}")]
    out += ["    " + line for line in render_table(rows, (False, True, False, True, False)).split("\n")]
    full = next((r for r in a.ladder if r.fits), None)
    # with part of the layers: Q4_K_M (llama.cpp's usual choice) when it runs so, else the most bits of the
    # quantized types that do
    partial = [r for r in a.ladder if not r.fits and r.n_gpu_layers and r.quant not in ("F32", "F16", "BF16")]
    partial = next((r for r in partial if r.quant == "Q4_K_M"), partial[0] if partial else None)
    for key, r in (("fit_ladder_full", full), ("fit_ladder_partial", partial)):
        if r is not None and r.command:
            out.append("    " + t(key, lang, quant=r.quant))
            out.append("      " + r.command)
    return out


def render_fit(a: "FitAnswer", lang: str = "en", units: str = "GiB") -> str:
    e = a.estimate
    verdict = t("gpu_fits" if a.fits else "gpu_no", lang)
    head = dict(model=e.model.name, gpu=a.gpu.name, usable=format_bytes(a.gpu.usable_bytes, units), verdict=verdict,
                total=format_bytes(a.needed_bytes or e.total_bytes, units),
                headroom=format_bytes(a.headroom_bytes, units))
    lines = [wrap(t("fit_header", lang, **head) if a.budget == a.gpu.usable_bytes else
                  t("fit_header_budget", lang, budget=format_bytes(a.budget, units),
                    util=e.workload.get("gpu_memory_utilization"), **head), 100, "  "),
             "  " + (t("fit_max_batch", lang, n=a.max_batch or t("fit_none", lang)) if a.max_concurrency is None
                     else t("fit_max_concurrency", lang, n=f"{e.engine.get('max_model_len') or 0:,}", c=a.max_concurrency)),
             "  " + (t("fit_max_seq", lang, n=f"{a.max_seq:,}",
                        limit=t("fit_seq_limit", lang) if a.max_seq == a.seq_limit else "")
                      if a.max_seq else t("fit_max_seq_none", lang))]
    if e.memory is not None and e.memory.basis != "engine":  # the device number is the one compared
        m = e.memory
        lines.insert(1, "  " + t("mem_line", lang, allocated=format_bytes(m.allocated, units),
                                 reserved=format_bytes(m.reserved, units), device=format_bytes(m.device, units)))
    lines.extend("  " + wrap(t("warning_line", lang, text=w.render(lang)), 98, "    ") for w in warnings(e))
    if not engine_for(e.workload).multi_gpu:
        lines.append("  " + t("fit_min_gpus_na", lang))
    elif a.min_gpus == 1:
        lines.append("  " + t("fit_min_gpus_one", lang))
    elif a.min_gpus is not None:
        lines.append("  " + t("fit_min_gpus", lang, n=a.min_gpus, parallelism=a.min_gpus_parallelism))
    else:
        lines.append("  " + t("fit_min_gpus_none", lang, parallelism=a.min_gpus_parallelism))
    if a.ladder:
        lines.extend(render_ladder(a, lang, units))
    if a.suggestions:
        lines.append("  " + t("fit_suggestions", lang))
        for s in a.suggestions:
            lines.append(wrap("    - " + t(s.line_key, lang, desc=s.render(lang),
                                             total=format_bytes(s.total_bytes, units),
                                             saves=format_bytes(s.saves_bytes, units), cost=t(f"cost_{s.cost}", lang),
                                             fits=t("fit_fits_mark", lang) if s.fits else ""), 100, "      "))
            if s.command:
                lines.append("      " + t("fit_suggestion_command", lang, command=s.command))
    return "\n".join(lines)
