"""``vramscope serve``: a small web page and JSON API on top of the estimator, with the standard library only.

* ``GET /`` — a form (model, task, method, sequence, batch, precision, GPU) and the result table, in English or
  Chinese (``?lang=zh`` or the browser's ``Accept-Language``);
* ``GET /api/estimate?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090`` — ``vramscope.estimate/1`` JSON;
* ``GET /api/fit?model=...&gpu=...`` — ``vramscope.fit/1`` JSON.

Bad input gets HTTP 400 with ``{"error": "<the same one line the CLI prints>"}``. It binds to 127.0.0.1 by
default, accepts only GET, caps the query at 4 KiB and never reaches the Hub (catalog and local paths only).
"""

from __future__ import annotations

import html
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import VramscopeError
from .i18n import detect_lang

MAX_QUERY = 4096
WORKLOAD_FIELDS = ("task", "method", "dtype", "quant", "batch", "seq", "kv_dtype", "attn", "optimizer",
                   "lora_rank", "grad_accum", "precision", "engine", "framework", "lora_targets", "num_gpus",
                   "parallelism", "offload", "offload_device", "tp", "pp", "pp_schedule", "sp", "sp_mode", "ep", "nodes",
                   "fsdp_sharding", "fsdp_version", "checkpoint_mode", "checkpoint_every", "ce_chunks",
                   "max_model_len", "gpu_memory_utilization")
FLAGS = ("grad_checkpointing", "activation_offload", "optimizer_in_backward", "dora", "packing", "compile",
         "sequence_parallel")

PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>vramscope</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
label{{display:inline-block;margin:.2rem .6rem .2rem 0}}pre{{background:#f4f4f4;padding:1rem;overflow:auto}}
.err{{color:#a00}}</style></head><body>
<h1>vramscope</h1><p>{tagline}</p>
<form method="get" action="/">
<label>{l_model} <input name="model" value="{model}" size="34"></label>
<label>{l_task} <select name="task">{task_opts}</select></label>
<label>{l_method} <select name="method">{method_opts}</select></label>
<label>{l_seq} <input name="seq" value="{seq}" size="7"></label>
<label>{l_batch} <input name="batch" value="{batch}" size="4"></label>
<label>{l_quant} <input name="quant" value="{quant}" size="8"></label>
<label>GPU <input name="gpu" value="{gpu}" size="14"></label>
<input type="hidden" name="lang" value="{lang}">
<button type="submit">{l_go}</button></form>
{result}
<p><small>JSON: <code>/api/estimate?model=llama-3-8b&amp;task=finetune&amp;method=lora&amp;gpu=rtx-4090</code>,
<code>/api/fit?model=llama-3-8b&amp;gpu=rtx-4090</code></small></p></body></html>"""

TEXT = {
    "en": dict(tagline="How much GPU memory does this model need to run, fine-tune or train it?", l_model="model",
               l_task="task", l_method="method", l_seq="sequence", l_batch="batch", l_quant="quantization",
               l_go="Estimate"),
    "zh": dict(tagline="运行、微调或训练这个模型需要多少显存？", l_model="模型", l_task="任务", l_method="方法",
               l_seq="序列长度", l_batch="批大小", l_quant="量化", l_go="估算"),
}


def _params(query: str) -> dict[str, str]:
    if len(query) > MAX_QUERY:
        raise VramscopeError("conflict", field="query", reason="longer than 4 KiB")
    return {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=False).items()}


def _estimate(p: dict[str, str]) -> Any:
    from .api import estimate

    workload = {k: p[k] for k in WORKLOAD_FIELDS if p.get(k)}
    workload.update({k: p[k].lower() in ("1", "true", "on", "yes") for k in FLAGS if k in p})
    gpus = [g for g in p.get("gpu", "").split(",") if g.strip()]
    return estimate(p.get("model") or None, params=p.get("params") or None, gpus=gpus, hub=False, **workload)


def _fit(p: dict[str, str]) -> Any:
    from .api import fit

    workload = {k: p[k] for k in WORKLOAD_FIELDS if p.get(k)}
    return fit(p.get("model") or None, gpu=p.get("gpu") or "rtx-4090", params=p.get("params") or None, hub=False,
               **workload)


class Handler(BaseHTTPRequestHandler):
    server_version = "vramscope"

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        return

    def _send(self, code: int, body: str, ctype: str) -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        try:
            p = _params(url.query)
        except VramscopeError as e:
            return self._send(400, json.dumps({"error": e.render()}), "application/json")
        accept = self.headers.get("Accept-Language", "")
        lang = p.get("lang") or ("zh" if accept.lower().startswith("zh") else detect_lang(None))
        lang = lang if lang in ("en", "zh") else "en"
        if url.path in ("/api/estimate", "/api/fit"):
            try:
                result = _estimate(p) if url.path == "/api/estimate" else _fit(p)
            except VramscopeError as e:
                return self._send(400, json.dumps({"error": e.render(lang)}, ensure_ascii=False), "application/json")
            return self._send(200, json.dumps(result.to_dict(lang), ensure_ascii=False), "application/json")
        if url.path != "/":
            return self._send(404, json.dumps({"error": f"no such page: {url.path}"}), "application/json")
        result = ""
        if p.get("model") or p.get("params"):
            try:
                from .present.table import render_estimate

                result = "<pre>" + html.escape(render_estimate(_estimate(p), lang)) + "</pre>"
            except VramscopeError as e:
                result = f'<p class="err">{html.escape(e.render(lang))}</p>'

        def opts(values: tuple[str, ...], current: str) -> str:
            return "".join(f'<option{" selected" if v == current else ""}>{v}</option>' for v in values)

        page = PAGE.format(lang=lang, result=result, model=html.escape(p.get("model", "llama-3-8b")),
                           seq=html.escape(p.get("seq", "")), batch=html.escape(p.get("batch", "1")),
                           quant=html.escape(p.get("quant", "")), gpu=html.escape(p.get("gpu", "rtx-4090")),
                           task_opts=opts(("inference", "finetune", "pretrain"), p.get("task", "inference")),
                           method_opts=opts(("full", "lora", "qlora", "freeze"), p.get("method", "full")),
                           **TEXT[lang])
        self._send(200, page, "text/html")


def make_server(host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), Handler)


def serve(host: str = "127.0.0.1", port: int = 8765) -> None:
    server = make_server(host, port)
    print(f"vramscope: serving on http://{host}:{server.server_address[1]}/ (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
