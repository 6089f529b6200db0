"""The web page of ``vramscope serve``, generated from the option table, and the JSON API's OpenAPI schema.

Every control of the form is a row of ``options.py`` (a choice is a select, a yes/no option a checkbox, a number an
input with the row's bounds, the help text the row's in the page's language), so the page, the command line and
the API take the same options by the same names; an error names a field as the form does (``seq``). The
controls are grouped as a person asks the question: the model, the task, the engine and its options, precision,
sequence and batch, the GPUs, the training recipe, the parallel layout.

The answer is drawn server-side (``present/svg.py``): a fit gauge per GPU, a bar per phase, memory against context
and batch with the largest value that fits marked, the suggestions with their numbers and commands. The page works
without JavaScript (a GET form: the state is the URL); a small inline script updates the answer in place through
``/api/v1/report`` and keeps the URL in step. No file is served and nothing is fetched from elsewhere.

Pure Python: imported by ``serve.py`` (and usable without the web stack, e.g. to write the page to a file).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import urllib.parse
from functools import lru_cache
from typing import Any, Callable, Optional

from .errors import VramscopeError
from .i18n import MESSAGES, register, t
from .options import Option, table

MAX_PAGE_GPUS = 4  # GPUs drawn with curves and suggestions (every listed GPU still gets its gauge)
MAX_IGNORED_SHOWN = 12  # an uploaded config's ignored keys listed by name (the rest counted)

register({
    "web_title": {"en": "vramscope — GPU memory for LLMs", "zh": "vramscope —— 大模型显存估算"},
    "web_tagline": {"en": "How much GPU memory does this model need to run, fine-tune or train it — and what to "
                          "change if it does not fit?",
                    "zh": "运行、微调或训练这个模型需要多少显存？放不下时该改什么？"},
    "web_go": {"en": "Estimate", "zh": "估算"},
    "web_default": {"en": "default ({value})", "zh": "默认（{value}）"},
    "web_default_plain": {"en": "default", "zh": "默认"},
    "web_sec_model": {"en": "Model", "zh": "模型"},
    "web_sec_task": {"en": "Task and method", "zh": "任务与方法"},
    "web_sec_engine": {"en": "Engine and its options", "zh": "推理引擎及其选项"},
    "web_sec_precision": {"en": "Precision and quantization", "zh": "精度与量化"},
    "web_sec_sequence": {"en": "Sequence, batch and context", "zh": "序列、批大小与上下文"},
    "web_sec_gpus": {"en": "GPUs: kind and count", "zh": "GPU：型号与数量"},
    "web_sec_training": {"en": "Training recipe", "zh": "训练配置"},
    "web_sec_parallel": {"en": "Parallel layout", "zh": "并行布局"},
    "web_sec_other": {"en": "Other options", "zh": "其他选项"},
    "web_model_help": {"en": "a catalog name (type to search: {n} models) — or upload a config.json or a GGUF file "
                             "below",
                       "zh": "内置目录中的名称（输入即可搜索：{n} 个模型）——或在下方上传 config.json 或 GGUF 文件"},
    "web_gpu_help": {"en": "GPU kind (type to search: {n} GPUs), or a size such as 24GB; several separated by commas "
                           "to compare",
                     "zh": "GPU 型号（输入即可搜索：{n} 种），或显存大小如 24GB；用逗号分隔多个以便比较"},
    "web_upload": {"en": "Upload a file: config.json, GGUF, DeepSpeed or accelerate config",
                   "zh": "上传文件：config.json、GGUF、DeepSpeed 或 accelerate 配置"},
    "web_upload_help": {"en": "Sent with the options above as the request body (needs JavaScript): a config.json "
                              "at most {config}; of a GGUF file only its first {gguf} (the header: the weights are "
                              "not sent); a DeepSpeed JSON at most {deepspeed}; an accelerate YAML at most "
                              "{accelerate}. A config.json or GGUF replaces the model name; a DeepSpeed or "
                              "accelerate config sets options, which must agree with the form's.",
                        "zh": "连同上面的选项作为请求体发送（需要 JavaScript）：config.json 最多 {config}；GGUF 文件只发送"
                              "前 {gguf}（文件头，不发送权重）；DeepSpeed JSON 最多 {deepspeed}；accelerate YAML 最多 "
                              "{accelerate}。config.json 或 GGUF 取代模型名称；DeepSpeed 或 accelerate 配置设置选项，"
                              "这些选项须与表单一致。"},
    "web_upload_kind": {"en": "what it is", "zh": "文件类型"},
    "web_upload_file": {"en": "file", "zh": "文件"},
    "web_upload_text": {"en": "or paste its text", "zh": "或粘贴其文本"},
    "web_upload_clear": {"en": "Remove the upload", "zh": "移除上传"},
    "web_upload_gguf_state": {"en": "GGUF: the first {sent} of {name} ({size}) are sent",
                              "zh": "GGUF：发送 {name}（{size}）的前 {sent}"},
    "web_upload_set": {"en": "The uploaded {kind} sets: {fields}.", "zh": "上传的 {kind} 设置了：{fields}。"},
    "web_upload_none": {"en": "no option", "zh": "没有选项"},
    "web_upload_ignored": {"en": "Ignored (they do not change the estimate, or vramscope does not model them): {keys}",
                           "zh": "已忽略（不影响估算，或 vramscope 未建模）：{keys}"},
    "web_and_more": {"en": " and {n} more", "zh": " 等另外 {n} 项"},
    "web_gguf_read": {"en": "Read from the GGUF header in the file's first {size}: {tensors} tensors, type {fmt}.",
                      "zh": "从文件前 {size} 中的 GGUF 文件头读取：{tensors} 个张量，类型 {fmt}。"},
    "web_apply": {"en": "apply to the form", "zh": "应用到表单"},
    "web_language": {"en": "Language", "zh": "语言"},
    "web_verdict_fits": {"en": "Fits on {gpu}: needs {need} of {usable} usable.",
                         "zh": "{gpu} 放得下：需要 {need}，可用 {usable}。"},
    "web_verdict_tight": {"en": "Tight on {gpu}: needs {need} of {usable} usable.",
                          "zh": "{gpu} 很紧：需要 {need}，可用 {usable}。"},
    "web_verdict_no": {"en": "Does not fit on {gpu}: needs {need}, {usable} usable.",
                       "zh": "{gpu} 放不下：需要 {need}，可用 {usable}。"},
    "web_breakdown": {"en": "Breakdown at the peak ({phase})", "zh": "峰值时的组成（{phase}）"},
    "web_curves": {"en": "Context and batch", "zh": "上下文与批大小"},
    "web_suggestions": {"en": "What to change to fit {gpu}", "zh": "要放进 {gpu} 可以改什么"},
    "web_fits_as_asked": {"en": "It fits {gpu} as asked: largest batch {batch}, longest context {seq} tokens.",
                          "zh": "按当前设置可放进 {gpu}：最大批大小 {batch}，最长上下文 {seq} 个 token。"},
    "web_command": {"en": "reproduce:", "zh": "复现："},
    "web_json": {"en": "The same as JSON:", "zh": "JSON 格式："},
    "web_api": {"en": "API and its schema:", "zh": "API 及其模式："},
    "web_skip": {"en": "↓ to the answer", "zh": "↓ 跳到结果"},
    "web_error": {"en": "Error", "zh": "错误"},
    "web_loading": {"en": "updating…", "zh": "更新中…"},
    # the words of some choices, shown beside the value in the selects (the value is what the URL and API take)
    "method_full": {"en": "full fine-tuning", "zh": "全参数训练"},
    "method_freeze": {"en": "freeze some layers", "zh": "冻结部分层"},
    "method_lora": {"en": "LoRA adapters", "zh": "LoRA 适配器"},
    "method_qlora": {"en": "QLoRA: 4-bit base + LoRA", "zh": "QLoRA：4 位基座 + LoRA"},
    "estimator_analytic": {"en": "analytic", "zh": "解析估算"},
    "estimator_seed": {"en": "rule of thumb", "zh": "经验公式"},
    "cache_dynamic": {"en": "dynamic", "zh": "动态"},
    "cache_static": {"en": "static", "zh": "静态"},
    "offload_none": {"en": "no offload", "zh": "不卸载"},
    "offload_optimizer": {"en": "optimizer states to CPU", "zh": "优化器状态卸载到 CPU"},
    "offload_optimizer+params": {"en": "optimizer states and parameters to CPU", "zh": "优化器状态和参数卸载到 CPU"},
    "web_no_js_note": {"en": "Works without JavaScript: press Estimate; the link of the page is the question.",
                       "zh": "无需 JavaScript 也能使用：按“估算”即可；页面链接就是这个问题。"},
})

# ---------------------------------------------------------------- the form, from the option table

#: the page's sections, in the order a person asks; a row goes to the first section that claims it
SECTIONS: tuple[tuple[str, Callable[[Option], bool], bool], ...] = (
    # (key, which rows, open by default)
    ("model", lambda o: o.field == "params", True),
    ("task", lambda o: o.field in ("task", "method", "estimator"), True),
    ("gpus", lambda o: o.field in ("gpu", "num_gpus", "nodes"), True),
    ("sequence", lambda o: o.field in ("seq", "batch"), True),
    ("engine", lambda o: o.field == "engine" or o.owner in _engine_names(), True),
    ("precision", lambda o: o.field in ("dtype", "quant", "kv_dtype", "attn", "cache"), False),
    ("training", lambda o: o.group == "training" or o.owner in ("training", "seed") and o.group != "parallel",
     False),
    ("parallel", lambda o: o.group == "parallel", False),
    ("other", lambda o: True, False),
)
#: fields shown first in their sections, in this order (the rest follow in the table's order)
FIRST = ("task", "method", "gpu", "num_gpus", "seq", "batch", "engine", "quant", "dtype")
NOT_IN_FORM = ("lang",)  # the language is the page's own switch


def _engine_names() -> tuple[str, ...]:
    from .engines.base import ENGINE_NAMES

    return tuple(ENGINE_NAMES)


def form_rows() -> list[Option]:
    """The rows the form and the web API take: every web option of the table but the language."""
    return [o for o in table().values() if o.web and o.field not in NOT_IN_FORM]


def sections() -> list[tuple[str, list[Option], bool]]:
    placed: set[str] = set()
    out = []
    rows = form_rows()
    for key, claims, is_open in SECTIONS:
        mine = sorted((o for o in rows if o.field not in placed and claims(o)),
                      key=lambda o: FIRST.index(o.field) if o.field in FIRST else len(FIRST))
        placed.update(o.field for o in mine)
        if mine or key == "model":
            out.append((key, mine, is_open))
    return out


@lru_cache(maxsize=None)
def choices_of(field: str) -> tuple[str, ...]:
    """The values a row accepts when they are a closed list: its ``choices``, or the list its reader names when it
    refuses a value (a choice kept by the module that owns it: engines, optimizers, KV dtypes)."""
    o = table()[field]
    if o.choices:
        return tuple(o.choices)
    if o.kind != "custom" or o.parse is None:
        return ()
    if o.const is not None:  # a yes/no that also takes a mode (--grad-checkpointing MODE)
        from .options import CHECKPOINT_MODES

        return tuple(CHECKPOINT_MODES) + ("false",) if field == "grad_checkpointing" else ()
    try:
        o.read("\x00not-a-choice")
    except VramscopeError as e:
        allowed = e.params.get("allowed") if e.key == "bad_choice" else None
        if isinstance(allowed, str) and allowed:
            items = tuple(a.strip() for a in allowed.split(","))
            if all(a and " " not in a for a in items):
                return items
    return ()


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _default_text(o: Option) -> str:
    d = o.default
    if d is None or d == () or d == "":
        return ""
    if isinstance(d, tuple):
        return ",".join(d)
    if isinstance(d, bool):
        return "false" if not d else "true"
    return str(d)


def _option_label(field: str, value: str, lang: str) -> str:
    key = f"{field}_{value}"
    if key in MESSAGES:
        return f"{t(key, lang)} ({value})"
    return value


def control(o: Option, value: str, lang: str) -> str:
    """One option's control, its label and help (linked for screen readers)."""
    f = o.field
    cid, hid = f"f-{f}", f"h-{f}"
    help_text = o.help(lang, "web")
    if f == "gpu":
        help_text = t("web_gpu_help", lang, n=len(gpu_list()))
    described = f'aria-describedby="{hid}"'
    label = f'<label for="{cid}"><code>{_esc(f)}</code></label>'
    choices = choices_of(f)
    default = _default_text(o)
    if o.kind == "flag":
        checked = " checked" if value.lower() in ("1", "true", "yes", "on") else ""
        widget = (f'<input type="checkbox" id="{cid}" name="{f}" value="true"{checked} {described}>')
        return (f'<div class="vs-f vs-check" data-owner="{_esc(o.owner)}">{widget}{label}'
                f'<small id="{hid}">{_esc(help_text)}</small></div>')
    if choices:
        head = t("web_default", lang, value=default) if default else t("web_default_plain", lang)
        opts = [f'<option value=""{"" if value else " selected"}>{_esc(head)}</option>']
        known = value.lower() in choices
        for c in choices:
            sel = " selected" if value.lower() == c else ""
            opts.append(f'<option value="{_esc(c)}"{sel}>{_esc(_option_label(f, c, lang))}</option>')
        if value and not known:  # a value from the URL the row refuses: kept, so the error names it
            opts.append(f'<option value="{_esc(value)}" selected>{_esc(value)}</option>')
        widget = f'<select id="{cid}" name="{f}" {described}>{"".join(opts)}</select>'
    elif o.kind in ("int", "float"):
        bounds = "".join(f' {k}="{v}"' for k, v in (("min", o.lo), ("max", o.hi)) if v is not None)
        step = "1" if o.kind == "int" else "any"
        mode = "numeric" if o.kind == "int" else "decimal"
        widget = (f'<input type="number" id="{cid}" name="{f}" value="{_esc(value)}" step="{step}"{bounds} '
                  f'inputmode="{mode}" placeholder="{_esc(default)}" {described}>')
    else:
        extra = ' list="vs-gpus" autocomplete="off"' if f == "gpu" else ""
        widget = (f'<input type="text" id="{cid}" name="{f}" value="{_esc(value)}" placeholder="{_esc(default)}" '
                  f'maxlength="400" spellcheck="false"{extra} {described}>')
    return (f'<div class="vs-f" data-owner="{_esc(o.owner)}">{label}{widget}'
            f'<small id="{hid}">{_esc(help_text)}</small></div>')


# ---------------------------------------------------------------- the catalogs (type-ahead and /api/models)


@lru_cache(maxsize=1)
def model_list() -> tuple[dict[str, Any], ...]:
    """The built-in models with their parameter counts (each resolved once, from the catalog only)."""
    from .sources import catalog, resolve_catalog

    out = []
    for e in catalog.entries():
        r = resolve_catalog(e["id"])
        if r is None:
            continue
        out.append({"id": e["id"], "aliases": list(e.get("aliases", [])), "model_type": r.spec.model_type,
                    "params": r.params, "active_params": r.active_params,
                    "context": r.spec.max_position_embeddings or None})
    return tuple(out)


@lru_cache(maxsize=1)
def gpu_list() -> tuple[dict[str, Any], ...]:
    from .gpus import all_gpus, catalog

    usable = {g.id: g.usable_bytes for g in all_gpus()}
    return tuple({"id": g["id"], "name": g["name"], "aliases": list(g.get("aliases", [])),
                  "vendor": g.get("vendor", ""), "memory_bytes": g["memory_bytes"],
                  "usable_bytes": usable.get(g["id"], g["memory_bytes"])} for g in catalog()["gpus"])


def _matches(q: str, item: dict[str, Any], keys: tuple[str, ...]) -> bool:
    q = q.strip().lower()
    if not q:
        return True
    hay = " ".join([str(item.get(k, "")) for k in keys] + item.get("aliases", [])).lower()
    return all(part in hay for part in q.split())


def models_answer(q: str = "") -> dict[str, Any]:
    return {"schema": "vramscope.models/1", "models": [m for m in model_list() if _matches(q, m, ("id", "model_type"))]}


def gpus_answer(q: str = "") -> dict[str, Any]:
    return {"schema": "vramscope.gpus/1", "gpus": [g for g in gpu_list() if _matches(q, g, ("id", "name", "vendor"))]}


def _datalists() -> str:
    from .units import format_bytes, format_count

    models = "".join(f'<option value="{_esc(m["id"])}">{_esc(format_count(m["params"]))} · {_esc(m["model_type"])}'
                     f"{'' if m['active_params'] == m['params'] else ' · ' + format_count(m['active_params']) + ' active'}"
                     "</option>" for m in model_list())
    gpus = "".join(f'<option value="{_esc(g["id"])}">{_esc(g["name"])} · {_esc(format_bytes(g["memory_bytes"]))}'
                   "</option>" for g in gpu_list())
    return f'<datalist id="vs-models">{models}</datalist><datalist id="vs-gpus">{gpus}</datalist>'


# ---------------------------------------------------------------- the answer


def _gpu_names(p: dict[str, str]) -> list[str]:
    names = [g.strip() for g in p.get("gpu", "").split(",") if g.strip()]
    return list(dict.fromkeys(names))


def apply_link(p: dict[str, str], options: Optional[dict[str, Any]]) -> Optional[tuple[str, dict[str, str]]]:
    """The page's URL with a suggestion's option changes applied to the question ``p`` (a field set back to its
    default is left out), and the changes as the form's values; None when it changes an option the form lacks."""
    from .options import web_fields

    if not options:
        return None
    fields = set(web_fields())
    if any(k not in fields for k in options):
        return None
    form: dict[str, str] = {}
    for k, v in options.items():
        if v is None:
            form[k] = ""
        elif isinstance(v, bool):
            form[k] = "true" if v else "false"
        elif isinstance(v, (list, tuple)):
            form[k] = ",".join(map(str, v))
        else:
            form[k] = str(v)
    new = {**{k: v for k, v in p.items() if k not in form}, **{k: v for k, v in form.items() if v}}
    return "?" + urllib.parse.urlencode(new), form


def _imported_html(imported: Any, lang: str) -> str:
    """What an uploaded DeepSpeed / accelerate config set (as the form names the fields) and what it ignored."""
    from .options import setting

    set_ = ", ".join(setting(k, v, "web") for k, v in imported.options.items()) or t("web_upload_none", lang)
    out = [f'<p class="vs-imported" data-kind="{_esc(imported.kind)}">'
           f'{_esc(t("web_upload_set", lang, kind=t(f"web_kind_{imported.kind}", lang), fields=set_))}']
    if imported.ignored:
        shown = list(imported.ignored[:MAX_IGNORED_SHOWN])
        more = len(imported.ignored) - len(shown)
        keys = ", ".join(shown) + (t("web_and_more", lang, n=more) if more > 0 else "")
        out.append(f'<br><span class="vs-s">{_esc(t("web_upload_ignored", lang, keys=keys))}</span>')
    return "".join(out) + "</p>"


def _gguf_html(model: Any, size: int, lang: str) -> str:
    """What was read of an uploaded GGUF file: the first bytes (the page sends at most the limit) or all of it."""
    from .sources.base import format_limit

    fmt = model.stored_format.removeprefix("gguf").strip() or "?"
    text = t("web_gguf_read", lang, tensors=len(model.stored), fmt=fmt, size=format_limit(size))
    return f'<p class="vs-imported" data-kind="gguf">{_esc(text)}</p>'



def _gguf_limit() -> int:
    from .serve import GGUF_PREFIX

    return GGUF_PREFIX


def _text_limit() -> int:
    """The most of a text file the page's script reads (one byte past it: the server then names the limit)."""
    from .serve import UPLOADS

    return max(v for k, v in UPLOADS.items() if k != "gguf")


def report_html(p: dict[str, str], lang: str, model: Any, w: Any, imported: Any = None, upload: Any = None) -> str:
    """The answer to the question ``p`` (``model`` and workload ``w`` already read from it) as HTML: verdict,
    gauges, bars, breakdown, curves, suggestions, assumptions; what an uploaded config set (``imported``) or what
    was read of an uploaded GGUF header (``upload``). Raises :class:`VramscopeError` for a question that cannot
    be answered."""
    from .api import estimate_resolved
    from .curves import curves
    from .gpus import find_gpu
    from .plan import fit
    from .present import svg
    from .result import COMPONENTS
    from .units import format_bytes, format_count

    names = _gpu_names(p)
    e = estimate_resolved(model, w, names)
    out = ['<div class="vs-answer">']
    m = e.model
    active = t("active_part", lang, active=format_count(m.active_params)) if m.active_params != m.params else ""
    trainable = t("trainable_part", lang, trainable=format_count(m.trainable_params)) if m.trainable_params else ""
    out.append(f'<h2>{_esc(t("model_line", lang, name=m.name, params=format_count(m.params), active=active, trainable=trainable))}</h2>')
    out.append(f'<p>{_esc(t("estimate_line", lang, task=t(f"task_{e.task}", lang), estimator=e.estimator))}</p>')
    if imported is not None:
        out.append(_imported_html(imported, lang))
    if upload is not None and upload.kind == "gguf":
        out.append(_gguf_html(model, len(upload.body), lang))
    for g in e.gpus:
        need = g.usable_bytes - g.headroom_bytes
        out.append(f'<p class="vs-verdict vs-{g.verdict}" data-verdict="{g.verdict}">'
                   + _esc(t(f"web_verdict_{g.verdict}", lang, gpu=g.name, need=format_bytes(need),
                            usable=format_bytes(g.usable_bytes))) + "</p>")
    if e.gpus:
        out.append(f'<figure id="vs-gauges">{svg.gauges(e.gpus, lang).element()}</figure>')
    out.append(f'<figure id="vs-bars">{svg.phase_bars(e, lang).element()}</figure>')
    # the breakdown at the peak as a table (numbers a screen reader reads, aligned by the browser)
    rows = [f'<caption>{_esc(t("web_breakdown", lang, phase=svg._phase(e.peak_phase, lang)))}</caption>',
            f'<tr><th scope="col">{_esc(t("hdr_component", lang))}</th><th scope="col">{_esc(t("hdr_memory", lang))}'
            f'</th><th scope="col">{_esc(t("hdr_share", lang))}</th></tr>']
    total = e.total_bytes or 1
    shown = [c for c in COMPONENTS if e.components.get(c)] + [c for c in e.components if c not in COMPONENTS
                                                              and e.components[c]]
    for c in shown:
        v = e.components[c]
        rows.append(f'<tr data-component="{_esc(c)}"><th scope="row">{_esc(svg.label(c, lang))}</th>'
                    f"<td>{_esc(format_bytes(v))}</td><td>{100 * v / total:.1f}%</td></tr>")
    rows.append(f'<tr class="vs-total"><th scope="row">{_esc(t("total", lang))}</th>'
                f'<td id="vs-total" data-bytes="{e.total_bytes}">{_esc(format_bytes(e.total_bytes))}</td>'
                "<td>100.0%</td></tr>")
    low, high = e.range_bytes
    out.append(f'<table class="vs-table">{"".join(rows)}</table>')
    if (low, high) != (e.total_bytes, e.total_bytes):
        out.append(f'<p>{_esc(t("range", lang))}: {_esc(format_bytes(low))} – {_esc(format_bytes(high))}</p>')
    # curves and suggestions for the first GPUs (a search over the estimator per GPU: bounded)
    gpus = [find_gpu(n) for n in names[:MAX_PAGE_GPUS]]
    if gpus and e.estimator == "analytic":
        out.append(f'<h3>{_esc(t("web_curves", lang))}</h3>')
        answers = [fit(model, w, g, suggestions=(i == 0)) for i, g in enumerate(gpus)]
        for c in curves(model, w, gpus, answers=answers):
            out.append(f'<figure id="vs-curve-{c.axis}" data-largest="{",".join(str(g.largest) for g in c.gpus)}">'
                       f"{svg.curve_chart(c, lang).element()}</figure>")
        a = answers[0]
        if a.suggestions:
            out.append(f'<h3>{_esc(t("web_suggestions", lang, gpu=a.gpu.name))}</h3>')
            chart = svg.suggestions_chart(a, lang, surface="web")
            if chart is not None:
                out.append(f'<figure id="vs-suggestions">{chart.element()}</figure>')
            items = []
            for s in a.suggestions:
                mark = t("fit_fits_mark", lang) if s.fits else ""
                line = t(s.line_key, lang, desc=s.render(lang, "web"), total=format_bytes(s.total_bytes),
                         saves=format_bytes(s.saves_bytes), cost=t(f"cost_{s.cost}", lang), fits=mark)
                link = apply_link({**p, "lang": lang}, s.options)
                apply = (f' <a class="vs-apply" href="{_esc(link[0])}" data-apply="{_esc(json.dumps(link[1]))}">'
                         f'{_esc(t("web_apply", lang))}</a>' if link else "")
                cmd = (f'<br><span class="vs-s">{_esc(t("web_command", lang))}</span> <code>{_esc(s.command)}</code>'
                       if s.command else "")
                items.append(f'<li data-fits="{str(s.fits).lower()}">{_esc(line)}{apply}{cmd}</li>')
            out.append(f'<ol class="vs-sugg">{"".join(items)}</ol>')
        elif a.fits:
            out.append(f'<p class="vs-fits-note">{_esc(t("web_fits_as_asked", lang, gpu=a.gpu.name, batch=a.max_batch, seq=f"{a.max_seq:,}"))}</p>')
    if e.assumptions:
        out.append(f'<h3>{_esc(t("assumptions", lang))}</h3><ul class="vs-assume">'
                   + "".join(f"<li>{_esc(x.render(lang, 'web'))}</li>" for x in e.assumptions) + "</ul>")
    if upload is None:  # with an upload the same question is a POST with its body: no link asks it
        q = urllib.parse.urlencode({k: v for k, v in p.items()})
        out.append(f'<p class="vs-s">{_esc(t("web_json", lang))} <a href="/api/v1/estimate?{_esc(q)}">'
                   f'/api/v1/estimate</a> · <a href="/api/v1/fit?{_esc(q)}">/api/v1/fit</a></p>')
    out.append("</div>")
    return "".join(out)


def error_html(message: str, lang: str) -> str:
    return (f'<p class="vs-err" role="alert"><strong>{_esc(t("web_error", lang))}:</strong> '
            f"{_esc(message)}</p>")


# ---------------------------------------------------------------- the page

CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#555;--line:#d0d0d0;--card:#f6f6f6;--acc:#0072B2;
--bad:#a3324a;--good:#117733;--warn:#8a6d00}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#ececec;--muted:#b4b4b4;--line:#3a3a3a;--card:#1e1e1e;
--acc:#56B4E9;--bad:#e88aa0;--good:#6fcf8f;--warn:#e6d27a}}
*{box-sizing:border-box}[hidden]{display:none!important}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;
margin:0;background:var(--bg);color:var(--fg)}
header,main{max-width:76rem;margin:0 auto;padding:.6rem 1rem}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem 1rem}
header h1{margin:0;font-size:1.4rem}header p{margin:0;color:var(--muted);flex:1 1 20rem}
nav a{margin-left:.5rem;color:var(--acc)}nav a[aria-current]{font-weight:700;color:var(--fg);text-decoration:none}
.vs-layout{display:grid;grid-template-columns:minmax(18rem,26rem) 1fr;gap:1rem;align-items:start}
.vs-layout>*{min-width:0}
form fieldset,form details{border:1px solid var(--line);border-radius:.5rem;margin:0 0 .6rem;padding:.4rem .7rem;
background:var(--card)}
legend,summary{font-weight:600;padding:0 .2rem}summary{cursor:pointer;padding:.2rem}
.vs-f{margin:.35rem 0}.vs-f label{display:block;font-size:.9rem}.vs-f small{display:block;color:var(--muted);
font-size:.78rem;line-height:1.3}
.vs-check{display:grid;grid-template-columns:auto 1fr;gap:0 .4rem;align-items:center}.vs-check small{grid-column:2}
input[type=text],input[type=number],select,textarea{width:100%;font:inherit;padding:.35rem .45rem;border:1px solid
var(--line);border-radius:.35rem;background:var(--bg);color:var(--fg);min-height:2.2rem}
textarea{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;min-height:6rem}
button{font:inherit;font-weight:600;padding:.5rem 1.4rem;border-radius:.4rem;border:0;background:var(--acc);
color:#fff;cursor:pointer;min-height:2.6rem}
:focus-visible{outline:3px solid var(--acc);outline-offset:2px}
.vs-answer h2{font-size:1.15rem;margin:.2rem 0}.vs-answer h3{margin:1.2rem 0 .3rem;font-size:1.05rem}
figure{margin:.6rem 0;overflow-x:auto}figure svg{max-width:100%;height:auto;display:block}
.vs-verdict{font-weight:600;margin:.3rem 0;padding:.35rem .6rem;border-left:5px solid var(--line)}
.vs-fits{border-color:var(--good)}.vs-tight{border-color:var(--warn)}.vs-no{border-color:var(--bad)}
.vs-table{border-collapse:collapse;min-width:min(100%,26rem)}.vs-table caption{text-align:left;font-weight:600}
.vs-table th,.vs-table td{padding:.2rem .6rem;border-bottom:1px solid var(--line);text-align:left}
.vs-table td{text-align:right;font-variant-numeric:tabular-nums}.vs-total th,.vs-total td{font-weight:700}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere}
.vs-sugg li{margin:.35rem 0}.vs-assume li{margin:.2rem 0;overflow-wrap:anywhere}
.vs-err{color:var(--bad);border:1px solid var(--bad);border-radius:.4rem;padding:.5rem .7rem;overflow-wrap:anywhere}
.vs-s{color:var(--muted);font-size:.85rem}[aria-busy=true]{opacity:.6}
.vs-skip{color:var(--acc);font-size:.9rem}
.vs-apply{white-space:nowrap;margin-left:.3rem;color:var(--acc)}
.vs-imported{border-left:5px solid var(--acc);padding:.3rem .6rem;overflow-wrap:anywhere}
button.vs-secondary{background:transparent;color:var(--acc);border:1px solid var(--acc);padding:.3rem .8rem;
min-height:2.2rem;font-weight:500}input:disabled,textarea:disabled{opacity:.5;cursor:not-allowed}
@media (min-width:821px){.vs-skip{position:absolute;left:-999px}.vs-skip:focus{position:static}}
@media (max-width:820px){.vs-layout{grid-template-columns:1fr}header h1{font-size:1.2rem}
figure svg{min-width:640px;max-width:none}}
"""

SCRIPT = """(function(){"use strict";
var f=document.getElementById("vs-form"),out=document.getElementById("vs-result"),timer=0,seq=0;
if(!f||!out||!window.fetch||!window.URLSearchParams||!window.FormData)return;
var lang=document.documentElement.lang;
try{var saved=localStorage.getItem("vramscope.lang"),here=new URLSearchParams(location.search);
if(!here.has("lang")&&(saved==="en"||saved==="zh")&&saved!==lang){here.set("lang",saved);
location.replace("?"+here.toString());return;}localStorage.setItem("vramscope.lang",lang);}catch(e){}
function val(n){var el=f.elements[n];return el&&!el.disabled?String(el.value||""):"";}
var engines=(f.getAttribute("data-engines")||"").split(" "),engine0=f.getAttribute("data-engine-default")||"";
function shown(owner){if(owner==="training")return val("task")!==""&&val("task")!=="inference";
if(owner==="seed")return val("estimator")==="seed";
if(engines.indexOf(owner)>=0)return (val("engine")||engine0)===owner;return true;}
function layout(){document.querySelectorAll("[data-owner]").forEach(function(el){var on=shown(el.getAttribute("data-owner"));
el.hidden=!on;el.querySelectorAll("input,select").forEach(function(i){i.disabled=!on;});});
document.querySelectorAll("[data-section]").forEach(function(s){if(s.querySelector("[data-owner]"))
s.hidden=!s.querySelector("[data-owner]:not([hidden])");});
var byFile=modelFile();["model","params"].forEach(function(n){var el=f.elements[n];if(el)el.disabled=byFile;});}
function modelFile(){return !!(gguf||(box&&box.value.trim()&&kind&&kind.value==="config"));}
function query(){var q=new URLSearchParams();new FormData(f).forEach(function(v,k){if(typeof v==="string"&&v.trim()!=="")
q.append(k,v.trim());});return q;}
function links(q){document.querySelectorAll("a[hreflang]").forEach(function(a){var c=new URLSearchParams(q.toString());
c.set("lang",a.getAttribute("hreflang"));a.href="?"+c.toString();});}
function fail(msg){out.textContent="";var p=document.createElement("p");p.className="vs-err";p.setAttribute("role","alert");
p.textContent=msg;out.appendChild(p);}
var box=document.getElementById("vs-config"),kind=document.getElementById("vs-upload-kind"),
state=document.getElementById("vs-upload-state"),gguf=null,GG=+f.getAttribute("data-gguf-limit")||0,
TL=+f.getAttribute("data-text-limit")||0;
function upload(){if(gguf)return{kind:"gguf",body:gguf,type:"application/octet-stream"};
var text=box?box.value.trim():"";if(!text)return null;var k=kind?kind.value:"config";
return{kind:k,body:text,type:k==="accelerate"?"application/yaml":"application/json"};}
function guess(text,name){if(kind&&/\\.ya?ml$/i.test(name||""))kind.value="accelerate";
else if(kind&&/"zero_optimization"|"train_micro_batch_size_per_gpu"/.test(text))kind.value="deepspeed";
else if(kind&&/^\\s*distributed_type\\s*:/m.test(text))kind.value="accelerate";
else if(kind&&/"model_type"|"architectures"/.test(text))kind.value="config";}
function size(n){return n>=1048576?(n/1048576).toFixed(1)+" MiB":Math.max(1,Math.round(n/1024))+" KiB";}
function run(){var u=upload(),opts={};layout();var q=query(),n=++seq;
history.replaceState(null,"","?"+q.toString());links(q);
if(u){if(u.kind==="config"||u.kind==="gguf"){q.delete("model");q.delete("params");}q.set("upload",u.kind);
opts={method:"POST",body:u.body,headers:{"content-type":u.type}};}
out.setAttribute("aria-busy","true");
fetch("/api/v1/report?"+q.toString(),opts).then(function(r){return r.json();}).then(function(d){if(n!==seq)return;
if(d.html){out.innerHTML=d.html;}else{fail(d.error||"error");}}).catch(function(e){if(n===seq)fail(String(e));})
.then(function(){if(n===seq)out.removeAttribute("aria-busy");});}
function later(ms){clearTimeout(timer);timer=setTimeout(run,ms);}
f.addEventListener("input",function(ev){layout();later(ev.target&&ev.target.tagName==="SELECT"?30:400);});
f.addEventListener("change",function(){layout();later(30);});
f.addEventListener("submit",function(ev){ev.preventDefault();clearTimeout(timer);run();});
var file=document.getElementById("vs-file");if(file&&box)file.addEventListener("change",function(){
var fl=file.files&&file.files[0];if(!fl)return;
if(/\\.gguf$/i.test(fl.name)){var sent=Math.min(fl.size,GG);gguf=fl.slice(0,sent);if(kind)kind.value="gguf";
box.value="";box.disabled=true;state.textContent=(state.getAttribute("data-gguf")||"").replace("{sent}",size(sent))
.replace("{name}",fl.name).replace("{size}",size(fl.size));later(0);return;}
gguf=null;box.disabled=false;state.textContent="";var r=new FileReader();
r.onload=function(){box.value=String(r.result||"");guess(box.value,fl.name);later(0);};
r.readAsText(fl.slice(0,TL+1));});
if(box)box.addEventListener("input",function(){guess(box.value,"");});
var clear=document.getElementById("vs-upload-clear");if(clear&&box)clear.addEventListener("click",function(){
gguf=null;box.value="";box.disabled=false;if(file)file.value="";state.textContent="";later(0);});
out.addEventListener("click",function(ev){var a=ev.target&&ev.target.closest?ev.target.closest("a.vs-apply"):null;
if(!a)return;var ch;try{ch=JSON.parse(a.getAttribute("data-apply")||"{}");}catch(e){return;}ev.preventDefault();
Object.keys(ch).forEach(function(k){var el=f.elements[k];if(!el||!el.tagName)return;
if(el.type==="checkbox"){el.checked=ch[k]==="true";return;}el.value=ch[k];
if(el.tagName==="SELECT"&&el.value!==ch[k]){var o=document.createElement("option");o.value=o.textContent=ch[k];
el.appendChild(o);el.value=ch[k];}});layout();clearTimeout(timer);run();});
document.querySelectorAll("a[hreflang]").forEach(function(a){a.addEventListener("click",function(){
try{localStorage.setItem("vramscope.lang",a.getAttribute("hreflang"));}catch(e){}});});
document.documentElement.classList.add("js");layout();})();"""

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = (f"default-src 'none'; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'; connect-src 'self'; "
       "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

DEFAULT_QUESTION = {"model": "llama-3-8b", "gpu": "rtx-4090"}


def _lang_links(p: dict[str, str], lang: str) -> str:
    out = []
    for code, name in (("en", "English"), ("zh", "中文")):
        q = urllib.parse.urlencode({**p, "lang": code})
        current = ' aria-current="true"' if code == lang else ""
        out.append(f'<a href="?{_esc(q)}" hreflang="{code}" lang="{code}"{current}>{name}</a>')
    return f'<nav aria-label="{_esc(t("web_language", lang))}">' + "".join(out) + "</nav>"


def _upload_html(lang: str) -> str:
    """The upload section: what the file is (a select with no name: not part of the URL), the file, its text."""
    from .serve import UPLOADS
    from .sources.base import format_limit

    kinds = "".join(f'<option value="{k}">{_esc(t(f"web_kind_{k}", lang))}</option>' for k in UPLOADS)
    limits = {k: format_limit(v) for k, v in UPLOADS.items()}
    return (f'<details data-section="upload"><summary>{_esc(t("web_upload", lang))}</summary>'
            f'<div class="vs-f"><label for="vs-file">{_esc(t("web_upload_file", lang))}</label>'
            '<input type="file" id="vs-file" accept=".json,.yaml,.yml,.gguf,application/json" '
            'aria-describedby="h-upload"></div>'
            f'<div class="vs-f"><label for="vs-upload-kind">{_esc(t("web_upload_kind", lang))}</label>'
            f'<select id="vs-upload-kind" aria-describedby="h-upload">{kinds}</select></div>'
            f'<div class="vs-f"><label for="vs-config">{_esc(t("web_upload_text", lang))}</label>'
            '<textarea id="vs-config" spellcheck="false" aria-describedby="h-upload"></textarea>'
            f'<small id="h-upload">{_esc(t("web_upload_help", lang, **limits))}</small></div>'
            f'<p id="vs-upload-state" class="vs-s" aria-live="polite" '
            f'data-gguf="{_esc(t("web_upload_gguf_state", lang))}"></p>'
            f'<button type="button" id="vs-upload-clear" class="vs-secondary">{_esc(t("web_upload_clear", lang))}'
            "</button></details>")


def render_page(p: dict[str, str], result: str, lang: str) -> str:
    """The whole page: the form (the question ``p``), the answer ``result`` (HTML), the language switch."""
    parts = []
    for key, rows, is_open in sections():
        body = []
        if key == "model":
            body.append('<div class="vs-f" data-owner="model"><label for="f-model"><code>model</code></label>'
                        f'<input type="text" id="f-model" name="model" value="{_esc(p.get("model", ""))}" '
                        'list="vs-models" autocomplete="off" spellcheck="false" maxlength="256" '
                        f'aria-describedby="h-model"><small id="h-model">'
                        f'{_esc(t("web_model_help", lang, n=len(model_list())))}</small></div>')
        body += [control(o, p.get(o.field, ""), lang) for o in rows]
        title = _esc(t(f"web_sec_{key}", lang))
        given = any(p.get(o.field) for o in rows) or (key == "training" and p.get("task") in ("finetune", "pretrain"))
        if is_open:
            parts.append(f'<fieldset data-section="{key}"><legend>{title}</legend>{"".join(body)}</fieldset>')
            if key == "model":  # a config.json or GGUF stands for the model; a config's options come with it
                parts.append(_upload_html(lang))
        else:
            parts.append(f'<details data-section="{key}"{" open" if given else ""}><summary>{title}</summary>'
                         f'{"".join(body)}</details>')
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,"><title>{_esc(t("web_title", lang))}</title>
<style>{CSS}</style></head><body>
<header><h1>vramscope</h1><p>{_esc(t("web_tagline", lang))}</p>{_lang_links(p, lang)}
<a class="vs-skip" href="#vs-result">{_esc(t("web_skip", lang))}</a></header>
<main class="vs-layout">
<form id="vs-form" method="get" action="/" aria-label="{_esc(t("web_title", lang))}"
 data-engines="{_esc(" ".join(_engine_names()))}" data-engine-default="{_esc(table()["engine"].default)}"
 data-gguf-limit="{_gguf_limit()}" data-text-limit="{_text_limit()}">
{"".join(parts)}
<input type="hidden" name="lang" value="{lang}">
<button type="submit">{_esc(t("web_go", lang))}</button>
<p class="vs-s">{_esc(t("web_no_js_note", lang))}</p>
<p class="vs-s">{_esc(t("web_api", lang))} <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>
</form>
<section id="vs-result" aria-live="polite">{result}</section>
</main>{_datalists()}
<script id="vs-js">{SCRIPT}</script>
</body></html>"""


# ---------------------------------------------------------------- the OpenAPI schema, from the same rows


def _schema_of(o: Option) -> dict[str, Any]:
    choices = choices_of(o.field)
    if o.kind == "flag":
        return {"type": "boolean"}
    if choices:
        return {"type": "string", "enum": list(choices)}
    if o.kind == "int":
        s: dict[str, Any] = {"type": "integer"}
    elif o.kind == "float":
        s = {"type": "number"}
    else:
        return {"type": "string", "maxLength": 400}
    if o.lo is not None:
        s["minimum"] = o.lo
    if o.hi is not None:
        s["maximum"] = o.hi
    return s


def openapi(version: str = "") -> dict[str, Any]:
    """OpenAPI 3.0 for the JSON API: every parameter a row of the option table (its type, bounds, choices, help)."""
    params = [{"name": "model", "in": "query", "required": False,
               "description": "a catalog name (GET /api/v1/models); not with params or a body",
               "schema": {"type": "string", "maxLength": 256}}]
    for o in form_rows():
        d = o.help("en", "web")
        if o.default not in (None, (), ""):
            d += f" (default {_default_text(o)})"
        params.append({"name": o.field, "in": "query", "required": False, "description": d, "schema": _schema_of(o)})
    params.append({"name": "lang", "in": "query", "required": False, "description": "en | zh: the error's language",
                   "schema": {"type": "string", "enum": ["en", "zh"]}})
    error = {"description": "a question that cannot be answered: one line naming the field",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    from .serve import UPLOADS
    from .sources.base import format_limit

    limits = {k: format_limit(v) for k, v in UPLOADS.items()}
    body = {"required": False,
            "description": (f"the file upload= names: a config.json (at most {limits['config']}) or a GGUF file's "
                            f"first bytes (at most {limits['gguf']}: its header) for a model not in the catalog; "
                            f"a DeepSpeed JSON config (at most {limits['deepspeed']}) or an accelerate config YAML "
                            f"(at most {limits['accelerate']}) for the options it sets, as --deepspeed and --fsdp "
                            "read them"),
            "content": {"application/json": {"schema": {"type": "object"}},
                        "application/yaml": {"schema": {"type": "string"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    upload = {"name": "upload", "in": "query", "required": False,
              "description": "what the request body is: " + ", ".join(UPLOADS) + " (default config)",
              "schema": {"type": "string", "enum": list(UPLOADS)}}

    def op(summary: str, schema: str, post: bool = True) -> dict[str, Any]:
        ok = {"description": summary, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
        get = {"summary": summary, "parameters": params, "responses": {"200": ok, "400": error, "503": error}}
        out: dict[str, Any] = {"get": {**get, "operationId": f"{schema.lower()}_get"}}
        if post:
            out["post"] = {**get, "operationId": f"{schema.lower()}_post", "requestBody": body,
                           "parameters": params + [upload],
                           "responses": {**get["responses"], "413": error}}
        return out

    q = [{"name": "q", "in": "query", "required": False, "description": "words the id or name contains",
          "schema": {"type": "string", "maxLength": 100}}]

    def listing(summary: str, schema: str) -> dict[str, Any]:
        ok = {"description": summary, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
        return {"get": {"summary": summary, "operationId": f"{schema.lower()}_list", "parameters": q,
                        "responses": {"200": ok, "400": error}}}

    from . import __version__

    obj = {"type": "object"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "vramscope", "version": version or __version__,
                 "description": "GPU memory estimates for LLM inference, fine-tuning and training. Every parameter "
                                "is an option of the command line (docs/json.md); unknown parameters are refused."},
        "paths": {
            "/api/v1/estimate": op("vramscope.estimate/1: the per-GPU peak and its breakdown", "Estimate"),
            "/api/v1/fit": op("vramscope.fit/1: does it fit, largest batch and context, what to change", "Fit"),
            "/api/v1/report": op("the page's answer as HTML (what the page's script shows)", "Report"),
            "/api/v1/models": listing("the built-in model catalog with parameter counts", "Models"),
            "/api/v1/gpus": listing("the GPU catalog with memory sizes", "Gpus"),
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Estimate": {**obj, "required": ["schema", "total_bytes", "components", "phases"],
                         "properties": {"schema": {"type": "string", "enum": ["vramscope.estimate/1"]},
                                        "total_bytes": {"type": "integer", "minimum": 1},
                                        "components": {"type": "object"}, "phases": {"type": "object"}}},
            "Fit": {**obj, "required": ["schema", "fits"], "properties": {
                "schema": {"type": "string", "enum": ["vramscope.fit/1"]}, "fits": {"type": "boolean"}}},
            "Report": {**obj, "required": ["schema", "html"], "properties": {
                "schema": {"type": "string", "enum": ["vramscope.report/1"]}, "html": {"type": "string"}}},
            "Models": {**obj, "required": ["models"], "properties": {"models": {"type": "array", "items": obj}}},
            "Gpus": {**obj, "required": ["gpus"], "properties": {"gpus": {"type": "array", "items": obj}}},
        }},
    }


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
