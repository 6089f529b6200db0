"""Pictures of an estimate as SVG, in pure Python (no plotting library, nothing fetched: they work offline).

* :func:`phase_bars` — a stacked bar per phase (weights, KV cache, activations, gradients, optimizer states,
  temporaries, overhead: whatever components the estimate has), the GPUs' usable memory as lines across;
* :func:`gauges` — a fit gauge per GPU: the share of its usable memory the workload needs;
* :func:`curve_chart` — memory against context length or batch size (``curves.Curve``), each GPU's line and the
  largest value that fits it marked;
* :func:`suggestions_chart` — ``fit``'s suggestions: each one's re-estimated total against the GPU, with the
  command that reproduces it;
* :func:`document` — any of them stacked into one standalone ``.svg`` file (``--plot``, ``vramscope plot``).

Colours are Paul Tol's "muted" scheme (distinguishable with the common colour-vision deficiencies); every value
is also written as text, so no reading depends on colour alone. Text and axes follow ``prefers-color-scheme``
(dark or light), inline in the page and in a file opened on its own.
"""

from __future__ import annotations

import html
import math
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

from ..i18n import MESSAGES, register, t
from ..result import COMPONENTS, Estimate
from ..units import format_bytes

if TYPE_CHECKING:
    from ..curves import Curve
    from ..plan import FitAnswer

#: Paul Tol's muted scheme (https://personal.sron.nl/~pault/#sec:qualitative), by component
COLOURS = {"weights": "#332288", "master_weights": "#88CCEE", "kv_cache": "#117733", "activations": "#DDCC77",
           "loss_head": "#999933", "temporaries": "#CC6677", "gradients": "#882255", "optimizer_states": "#44AA99",
           "optimizer_temp": "#AA4499", "engine_overhead": "#6E6E6E", "allocator_cache": "url(#vs-hatch)",
           "overhead": "#BBBBBB"}
#: torch's allocator cache: hatched, so it reads as "held but not in use" beside the tensors
HATCH = ('<defs><pattern id="vs-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
         'patternTransform="rotate(45)"><rect width="6" height="6" fill="#DDDDDD"/>'
         '<line x1="0" y1="0" x2="0" y2="6" stroke="#777777" stroke-width="2"/></pattern></defs>')
SPARE = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499")
VERDICT_COLOUR = {"fits": "#117733", "tight": "#DDCC77", "no": "#CC6677"}
DASHES = ("6 4", "2 3", "10 3 2 3", "1 2", "12 4")
WIDTH = 760
FONT = 12

STYLE = (".vs-t{fill:#1b1b1b;font:12px system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','PingFang SC',"
         "'Microsoft YaHei',sans-serif}.vs-s{font-size:11px;fill:#555}.vs-b{font-weight:600}"
         ".vs-mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}"
         ".vs-ax{stroke:#8a8a8a;stroke-width:1;fill:none}.vs-grid{stroke:#d6d6d6;stroke-width:1}"
         ".vs-gpu{stroke:#1b1b1b;stroke-width:1.5;fill:none}.vs-line{stroke:#0072B2;stroke-width:2.2;fill:none}"
         ".vs-dot{fill:#0072B2}.vs-track{stroke:#e2e2e2}.vs-sep{stroke:#ffffff;stroke-width:.8}"
         "@media (prefers-color-scheme:dark){.vs-t{fill:#ececec}.vs-s{fill:#b4b4b4}.vs-grid{stroke:#3c3c3c}"
         ".vs-gpu{stroke:#ececec}.vs-line{stroke:#56B4E9}.vs-dot{fill:#56B4E9}.vs-track{stroke:#3a3a3a}"
         ".vs-sep{stroke:#1e1e1e}}")

register({
    "svg_phases_title": {"en": "Memory per GPU by phase", "zh": "各阶段每 GPU 显存"},
    "svg_peak": {"en": "peak", "zh": "峰值"},
    "svg_range": {"en": "range {low} – {high}", "zh": "范围 {low} – {high}"},
    "svg_usable": {"en": "{gpu}: {mem} usable", "zh": "{gpu}：可用 {mem}"},
    "svg_gauges_title": {"en": "Does it fit?", "zh": "放得下吗？"},
    "svg_gauge_of": {"en": "{need} of {usable}", "zh": "需 {need} / 共 {usable}"},
    "svg_fits": {"en": "✓ fits", "zh": "✓ 放得下"},
    "svg_tight": {"en": "! tight", "zh": "! 很紧"},
    "svg_no": {"en": "✗ does not fit", "zh": "✗ 放不下"},
    "svg_axis_seq": {"en": "context length (tokens per sequence)", "zh": "上下文长度（每条序列的 token 数）"},
    "svg_axis_batch": {"en": "batch size (sequences)", "zh": "批大小（序列数）"},
    "svg_axis_memory": {"en": "{units} per GPU", "zh": "每 GPU {units}"},
    "svg_curve_seq_title": {"en": "Memory against context length", "zh": "显存随上下文长度的变化"},
    "svg_curve_batch_title": {"en": "Memory against batch size", "zh": "显存随批大小的变化"},
    "svg_largest": {"en": "{gpu}: up to {n} fits", "zh": "{gpu}：最多 {n} 放得下"},
    "svg_largest_none": {"en": "{gpu}: even {n} does not fit", "zh": "{gpu}：连 {n} 也放不下"},
    "svg_current": {"en": "now: {n}", "zh": "当前：{n}"},
    "svg_point": {"en": "{axis} {x}: {mem}", "zh": "{axis} {x}：{mem}"},
    "svg_suggestions_title": {"en": "What to change to fit {gpu}", "zh": "要放进 {gpu} 可以改什么"},
    "svg_now": {"en": "as asked", "zh": "当前设置"},
    "svg_no_curve": {"en": "no point of this curve could be estimated", "zh": "这条曲线没有可估算的点"},
    "svg_mark_allocated_bytes": {"en": "allocated", "zh": "已分配"},
    "svg_mark_reserved_bytes": {"en": "reserved", "zh": "已预留"},
    "svg_mark_device_bytes": {"en": "device", "zh": "设备占用"},
})


# ---------------------------------------------------------------- small helpers


def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def text_width(s: str, size: float = FONT) -> float:
    """About how wide ``s`` is drawn (CJK characters twice as wide as Latin ones)."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.56 for c in s) * size


def wrap(s: str, width: float, size: float = FONT) -> list[str]:
    """``s`` broken at spaces (or anywhere in CJK text) into lines at most ``width`` wide."""
    lines: list[str] = []
    line = ""
    for word in s.replace("\n", " ").split(" "):
        piece = (line + " " + word) if line else word
        if text_width(piece, size) <= width:
            line = piece
            continue
        if line:
            lines.append(line)
        line = ""
        for c in word:  # a word (or CJK run) longer than the line is cut where it fills it
            if text_width(line + c, size) > width and line:
                lines.append(line)
                line = ""
            line += c
    if line:
        lines.append(line)
    return lines or [""]


def colour(component: str, i: int) -> str:
    return COLOURS.get(component) or SPARE[i % len(SPARE)]


def label(component: str, lang: str) -> str:
    key = f"c_{component}"
    return t(key, lang) if key in MESSAGES else component.replace("_", " ")


def _phase(p: str, lang: str) -> str:
    key = f"phase_{p}"
    return t(key, lang) if key in MESSAGES else p.replace("_", " ")


def _text(x: float, y: float, s: str, cls: str = "", anchor: str = "start", extra: str = "") -> str:
    c = "vs-t" + (" " + cls if cls else "")
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{c}" text-anchor="{anchor}"{extra}>{esc(s)}</text>'


@dataclass(frozen=True)
class Svg:
    """A picture: its size, its title (also its accessible name) and its drawing."""

    width: int
    height: int
    title: str
    body: str

    def element(self, cls: str = "vs-chart") -> str:
        """The picture as an inline ``<svg>`` (scales to its container's width)."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" viewBox="0 0 {self.width} {self.height}" '
                f'width="100%" role="img" aria-label="{esc(self.title)}" preserveAspectRatio="xMinYMin meet">'
                f"<title>{esc(self.title)}</title><style>{STYLE}</style>{self.body}</svg>")


def document(parts: Iterable[Svg], gap: int = 16) -> str:
    """Pictures stacked into one standalone SVG file."""
    parts = list(parts)
    width = max((p.width for p in parts), default=WIDTH)
    y, body = gap, []
    for p in parts:
        body.append(f'<svg x="0" y="{y}" width="{p.width}" height="{p.height}" viewBox="0 0 {p.width} {p.height}">'
                    f"<title>{esc(p.title)}</title>{p.body}</svg>")
        y += p.height + gap
    title = " · ".join(p.title for p in parts)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{y}" viewBox="0 0 {width} {y}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style>{''.join(body)}</svg>\n")


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _unit_div(units: str) -> float:
    return {"GiB": 2**30, "GB": 10**9}.get(units, 2**30)


# ---------------------------------------------------------------- the stacked bars


def markers(e: Estimate) -> dict[str, int]:
    """Extra memory numbers an estimate carries (``*_bytes`` numbers at its top level or in its ``memory``
    object, other than its total and ranges: allocated, reserved, device, ...), to be marked on the peak bar."""
    d = e.to_dict()
    found = dict(d)
    if isinstance(d.get("memory"), dict):
        found.update(d["memory"])
    return {k: v for k, v in found.items() if k.endswith("_bytes") and k not in ("total_bytes", "range_bytes")
            and isinstance(v, int) and not isinstance(v, bool) and v > 0}


def _mark(name: str, lang: str) -> str:
    key = f"svg_mark_{name}"
    return t(key, lang) if key in MESSAGES else name.removesuffix("_bytes").replace("_", " ")


def phase_bars(e: Estimate, lang: str = "en", units: str = "GiB", gpus: Sequence[Any] = ()) -> Svg:
    """A stacked bar per phase of ``e`` (components in the table's order), the GPUs' usable memory as lines."""
    verdicts = list(gpus or e.gpus)
    phases = list(e.phases.items()) or [(e.peak_phase, dict(e.components))]
    names = [c for c in COMPONENTS if any(v.get(c) for _, v in phases)]
    names += sorted({c for _, v in phases for c, b in v.items() if b and c not in names})
    left, right, bar_h, row = 150, 110, 22, 34
    marks = markers(e)
    lines_h = 18 * len(verdicts)
    top = 34 + lines_h
    scale_max = max([sum(v.values()) for _, v in phases] + [g.usable_bytes for g in verdicts]
                    + [e.range_bytes[1]] + list(marks.values()) + [1]) * 1.04
    plot_w = WIDTH - left - right

    def xpos(b: float) -> float:
        return left + plot_w * b / scale_max

    out = [HATCH, _text(0, 18, t("svg_phases_title", lang), "vs-b")]
    div = _unit_div(units)
    step = _nice_step(scale_max / div)
    bottom = top + row * len(phases)
    k = 0.0
    while k * step * div <= scale_max:
        x = xpos(k * step * div)
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" class="vs-grid"/>')
        out.append(_text(x, bottom + 14, f"{k * step:g}", "vs-s", "middle"))
        k += 1
    out.append(_text(left + plot_w, bottom + 28, units, "vs-s", "end"))
    for i, (phase, comps) in enumerate(phases):
        y = top + i * row
        total = sum(comps.values())
        peak = phase == e.peak_phase
        out.append(_text(left - 8, y + bar_h / 2 + 4, _phase(phase, lang) + (" ▲" if peak and len(phases) > 1 else ""),
                         "vs-b" if peak else "", "end"))
        x = float(left)
        for j, c in enumerate(names):
            b = comps.get(c, 0)
            if not b:
                continue
            w = plot_w * b / scale_max
            tip = f"{_phase(phase, lang)} · {label(c, lang)}: {format_bytes(b, units)}"
            out.append(f'<rect x="{x:.2f}" y="{y}" width="{max(w, 0.5):.2f}" height="{bar_h}" fill="{colour(c, j)}" '
                       f'class="vs-sep"><title>{esc(tip)}</title></rect>')
            x += w
        out.append(_text(x + 6, y + bar_h / 2 + 4, format_bytes(total, units)))
        if peak:
            low, high = e.range_bytes
            if (low, high) != (total, total):
                y2 = y + bar_h + 4
                out.append(f'<line x1="{xpos(low):.1f}" y1="{y2}" x2="{xpos(high):.1f}" y2="{y2}" class="vs-gpu">'
                           f'<title>{esc(t("svg_range", lang, low=format_bytes(low, units), high=format_bytes(high, units)))}'
                           "</title></line>")
            for name, b in marks.items():
                mx = xpos(b)
                out.append(f'<path d="M{mx:.1f},{y - 2} l-4,-6 h8 z" class="vs-t"><title>{esc(_mark(name, lang))}: '
                           f"{esc(format_bytes(b, units))}</title></path>")
    for i, g in enumerate(verdicts):  # the GPUs' lines, each labelled on its own row above the bars
        x = xpos(g.usable_bytes)
        ly = 34 + 18 * i
        dash = DASHES[i % len(DASHES)]
        out.append(f'<line x1="{x:.1f}" y1="{ly + 4}" x2="{x:.1f}" y2="{bottom}" class="vs-gpu" '
                   f'stroke-dasharray="{dash}"/>')
        s = t("svg_usable", lang, gpu=g.name, mem=format_bytes(g.usable_bytes, units))
        anchor = "end" if text_width(s) > WIDTH - x else "start"
        out.append(_text(x + (-4 if anchor == "end" else 4), ly, s, "vs-s", anchor))
    ly = bottom + 44
    if marks:  # the marked numbers in words too (the triangles above the peak bar)
        s = "▼ " + " · ".join(f"{_mark(k, lang)} {format_bytes(v, units)}" for k, v in marks.items())
        out.append(_text(0, ly, s, "vs-s"))
        ly += 20
    # the legend: every component present, with its value at the peak
    x = 0.0
    peak_comps = e.phases.get(e.peak_phase, e.components)
    for j, c in enumerate(names):
        s = f"{label(c, lang)} {format_bytes(peak_comps.get(c, 0), units)}"
        w = 18 + text_width(s, 11) + 16
        if x + w > WIDTH:
            x, ly = 0.0, ly + 18
        out.append(f'<rect x="{x:.1f}" y="{ly - 10}" width="12" height="12" fill="{colour(c, j)}"/>')
        out.append(_text(x + 17, ly, s, "vs-s"))
        x += w
    return Svg(WIDTH, int(ly + 12), t("svg_phases_title", lang), "".join(out))


# ---------------------------------------------------------------- the gauges


def gauges(verdicts: Sequence[Any], lang: str = "en", units: str = "GiB") -> Svg:
    """A semicircular gauge per GPU verdict (``result.GpuVerdict``): the share of usable memory needed."""
    per_row = 4
    cell_w, cell_h, r = WIDTH / per_row, 150, 56
    out = [_text(0, 18, t("svg_gauges_title", lang), "vs-b")]
    for i, g in enumerate(verdicts):
        cx = cell_w * (i % per_row) + cell_w / 2
        cy = 30 + cell_h * (i // per_row) + r + 12
        need = g.usable_bytes - g.headroom_bytes
        frac = need / g.usable_bytes if g.usable_bytes else math.inf
        shown = min(frac, 1.0)
        ang = math.pi * (1 - shown)
        ex, ey = cx + r * math.cos(ang), cy - r * math.sin(ang)
        track = f"M{cx - r:.1f},{cy:.1f} A{r},{r} 0 0 1 {cx + r:.1f},{cy:.1f}"
        out.append(f'<path d="{track}" class="vs-track" stroke-width="14" fill="none"/>')
        if shown > 0:
            out.append(f'<path d="M{cx - r:.1f},{cy:.1f} A{r},{r} 0 0 1 {ex:.2f},{ey:.2f}" '
                       f'stroke="{VERDICT_COLOUR.get(g.verdict, "#888")}" stroke-width="14" fill="none"/>')
        pct = f"{100 * frac:.0f}%" if math.isfinite(frac) else "∞"
        out.append(_text(cx, cy - 8, pct, "vs-b", "middle", ' style="font-size:18px"'))
        out.append(_text(cx, cy + 16, t(f"svg_{g.verdict}", lang), "vs-b", "middle"))
        name = g.name if text_width(g.name) < cell_w - 8 else g.name.replace("NVIDIA ", "").replace("GeForce ", "")
        out.append(_text(cx, cy + 32, name, "vs-s", "middle"))
        out.append(_text(cx, cy + 46, t("svg_gauge_of", lang, need=format_bytes(need, units),
                                        usable=format_bytes(g.usable_bytes, units)), "vs-s", "middle"))
    rows = max(1, math.ceil(len(verdicts) / per_row))
    return Svg(WIDTH, 30 + cell_h * rows, t("svg_gauges_title", lang), "".join(out))


# ---------------------------------------------------------------- the curves


def curve_chart(c: "Curve", lang: str = "en", units: str = "GiB") -> Svg:
    """Memory against ``c.axis`` (log scale), each GPU's usable memory as a line, the largest fitting value and
    the current one marked."""
    title = t(f"svg_curve_{c.axis}_title", lang)
    left, right, top, height = 64, 24, 34 + 16 * len(c.gpus), 220
    plot_w = WIDTH - left - right
    out = [_text(0, 18, title, "vs-b")]
    if not c.points:
        out.append(_text(0, 44, t("svg_no_curve", lang), "vs-s"))
        return Svg(WIDTH, 60, title, "".join(out))
    xs = [x for x, _ in c.points]
    lo, hi = math.log2(xs[0]), math.log2(xs[-1])
    span = (hi - lo) or 1.0
    ymax = max([b for _, b in c.points] + [g.usable_bytes for g in c.gpus] + [1]) * 1.08
    div = _unit_div(units)
    bottom = top + height

    def px(x: float) -> float:
        return left + plot_w * (math.log2(max(x, 1)) - lo) / span

    def py(b: float) -> float:
        return bottom - height * b / ymax

    step = _nice_step(ymax / div)
    k = 0
    while k * step * div <= ymax:
        y = py(k * step * div)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="vs-grid"/>')
        out.append(_text(left - 6, y + 4, f"{k * step:g}", "vs-s", "end"))
        k += 1
    out.append(f'<path d="M{left},{top} V{bottom} H{left + plot_w}" class="vs-ax"/>')
    for x in xs:
        out.append(_text(px(x), bottom + 15, _short(x), "vs-s", "middle"))
    out.append(_text(left + plot_w / 2, bottom + 32, t(f"svg_axis_{c.axis}", lang), "vs-s", "middle"))
    out.append(_text(12, top + height / 2, t("svg_axis_memory", lang, units=units), "vs-s", "middle",
                     f' transform="rotate(-90 12 {top + height / 2:.1f})"'))
    for i, g in enumerate(c.gpus):
        y = py(g.usable_bytes)
        dash = DASHES[i % len(DASHES)]
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="vs-gpu" '
                   f'stroke-dasharray="{dash}"/>')
        ly = 34 + 16 * i - 4
        legend = (t("svg_largest", lang, gpu=g.name, n=f"{g.largest:,}") if g.largest else
                  t("svg_largest_none", lang, gpu=g.name, n=f"{xs[0]:,}"))
        out.append(f'<line x1="0" y1="{ly - 4}" x2="24" y2="{ly - 4}" class="vs-gpu" stroke-dasharray="{dash}"/>')
        out.append(_text(30, ly, f"{legend} ({format_bytes(g.usable_bytes, units)})", "vs-s"))
        if g.largest and xs[0] <= g.largest <= xs[-1]:
            mx = px(g.largest)
            out.append(f'<line x1="{mx:.1f}" y1="{y:.1f}" x2="{mx:.1f}" y2="{bottom}" class="vs-gpu" '
                       f'stroke-dasharray="1 3"/>')
            out.append(f'<path d="M{mx:.1f},{y:.1f} l-5,-9 h10 z" class="vs-t"><title>{esc(legend)}</title></path>')
    pts = " ".join(f"{px(x):.1f},{py(b):.1f}" for x, b in c.points)
    out.append(f'<polyline points="{pts}" class="vs-line"/>')
    for x, b in c.points:
        tip = t("svg_point", lang, axis=c.axis, x=f"{x:,}", mem=format_bytes(b, units))
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(b):.1f}" r="3.2" class="vs-dot"><title>{esc(tip)}</title>'
                   "</circle>")
    cur = next((b for x, b in c.points if x == c.current), None)
    if cur is not None:
        cx, cy = px(c.current), py(cur)
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" class="vs-gpu"/>')
        s = t("svg_current", lang, n=f"{c.current:,}")
        anchor = "end" if cx > left + plot_w - text_width(s) - 10 else "start"
        out.append(_text(cx + (-10 if anchor == "end" else 10), cy - 8, s, "vs-b", anchor))
    return Svg(WIDTH, int(bottom + 42), title, "".join(out))


def _short(x: int) -> str:
    if x >= 1 << 20 and x % (1 << 20) == 0:
        return f"{x >> 20}M"
    if x >= 1024 and x % 1024 == 0:
        return f"{x >> 10}K"
    return f"{x:,}"


# ---------------------------------------------------------------- the suggestions


def suggestions_chart(a: "FitAnswer", lang: str = "en", units: str = "GiB", surface: str = "cli") -> Optional[Svg]:
    """``fit``'s suggestions for ``a.gpu``: each one's total against the GPU's usable memory, its description (the
    options it names spelled for ``surface``: flags, or the web form's fields) and the command that reproduces
    it. None when there are none (it fits as asked)."""
    if not a.suggestions:
        return None
    title = t("svg_suggestions_title", lang, gpu=a.gpu.name)
    usable = a.gpu.usable_bytes
    rows = [(t("svg_now", lang), a.needed_bytes or a.estimate.total_bytes, None, a.fits)]
    rows += [(s.render(lang, surface), s.total_bytes, s.command, s.fits) for s in a.suggestions]
    scale = max([b for _, b, _, _ in rows] + [usable]) * 1.04
    left, right = 8, 180
    plot_w = WIDTH - left - right
    out = [_text(0, 18, title, "vs-b")]
    y = 34.0
    xg = left + plot_w * usable / scale
    for i, (desc, total, command, fits) in enumerate(rows):
        lines = wrap(f"{i}. {desc}" if i else desc, WIDTH - 10)
        for ln in lines:
            y += 15
            out.append(_text(left, y, ln, "vs-b" if not i else ""))
        y += 5
        w = plot_w * total / scale
        fill = VERDICT_COLOUR["fits" if fits else "no"]
        out.append(f'<rect x="{left}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="14" fill="{fill}"/>')
        mark = t("svg_fits" if fits else "svg_no", lang)
        out.append(_text(left + w + 6, y + 11, f"{format_bytes(total, units)}  {mark}", "vs-s"))
        y += 14
        if command:
            for ln in wrap("$ " + command, WIDTH - 10, 12):
                y += 14
                out.append(_text(left, y, ln, "vs-s vs-mono"))
        y += 8
    out.insert(1, f'<line x1="{xg:.1f}" y1="30" x2="{xg:.1f}" y2="{y:.1f}" class="vs-gpu" stroke-dasharray="6 4"/>')
    out.append(_text(xg, 30, t("svg_usable", lang, gpu=a.gpu.name, mem=format_bytes(usable, units)), "vs-s",
                     "end" if xg > WIDTH / 2 else "start"))
    return Svg(WIDTH, int(y + 6), title, "".join(out))


# ---------------------------------------------------------------- what the CLI writes


def estimate_pictures(e: Estimate, lang: str = "en", units: str = "GiB") -> list[Svg]:
    parts = [phase_bars(e, lang, units)]
    if e.gpus:
        parts.append(gauges(e.gpus, lang, units))
    return parts


def fit_pictures(answers: Sequence["FitAnswer"], lang: str = "en", units: str = "GiB") -> list[Svg]:
    from ..result import GpuVerdict

    e = answers[0].estimate
    verdicts = [GpuVerdict(name=a.gpu.name, memory_bytes=a.gpu.memory_bytes, usable_bytes=a.gpu.usable_bytes,
                           verdict="fits" if a.fits else "no",
                           headroom_bytes=a.gpu.usable_bytes - (a.needed_bytes or a.estimate.total_bytes))
                for a in answers]
    parts = [phase_bars(e, lang, units, verdicts), gauges(verdicts, lang, units)]
    parts += [s for s in (suggestions_chart(a, lang, units) for a in answers) if s is not None]
    return parts
