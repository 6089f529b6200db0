"""``vramscope serve``: a small web page and JSON API on top of the estimator — an ASGI app (Starlette) on uvicorn.

* ``GET /`` — the page (``web.py``): a form of every option of the option table, grouped, and the answer drawn
  as SVG, in English or Chinese (``?lang=zh``, the switch on the page, or the browser's ``Accept-Language``);
* ``GET /api/v1/estimate?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090`` — ``vramscope.estimate/1``;
* ``GET /api/v1/fit?model=...&gpu=...`` — ``vramscope.fit/1`` JSON;
* ``GET /api/v1/report?...`` — the page's answer as HTML in JSON (what the page's script shows);
* ``GET /api/v1/models?q=qwen``, ``/api/v1/gpus?q=4090`` — the catalogs, with parameter counts and memory;
* ``GET /api/v1/openapi.json`` — the OpenAPI 3 schema, generated from the option table;
* ``POST /api/v1/estimate?task=...`` (or ``fit``, ``report``) with a file as the body, its kind in ``upload=``:
  ``config`` (the default: a ``config.json``, at most 1 MiB) or ``gguf`` (a GGUF file's first bytes, at most
  32 MiB: the page sends ``File.slice(0, 32 MiB)``) for a model that is not in the catalog; ``deepspeed`` (a
  DeepSpeed JSON config, at most 1 MB) or ``accelerate`` (an ``accelerate config`` YAML with its FSDP or DeepSpeed
  section, at most 64 KiB) for the options they set, read by the same code as ``--deepspeed`` and ``--fsdp``
  (``configs.read_config``) and combined with the query's as the command line combines them (they must agree).

The paths without ``/v1`` are the same endpoints (the first version's).

What a client can make the server do is bounded:

* **no file system**: a model name is looked up in the built-in catalog and nowhere else — never as a path, so
  ``/etc/...``, ``~``, folders and symlinks all get the same "not in the catalog" answer whether or not they
  exist, and nothing is opened or even ``stat``-ed. The Hugging Face Hub only with ``--allow-hub`` (off by
  default) and only for names shaped like ``owner/name``;
* every request ends with an HTTP response: bad input is 400 with ``{"error": "<the one line the CLI prints>"}``
  in the request's language; an unknown parameter is 400 with "did you mean"; a bug is a JSON 500;
* limits: query 4 KiB and one of each known parameter (at least 64), request line and headers 16 KiB, a body at
  most its kind's limit (``UPLOADS``; read with a cap, at most 8 bodies at a time, 2 of them GGUF prefixes), a per-request time limit (``--request-timeout``, 10 s), an idle timeout that closes a
  connection which sends no (complete) request (``--idle-timeout``, 5 s; a half-sent request gets 408), at most
  ``--max-connections`` (2048) open connections (beyond that: 503 and closed), a listen backlog of 2048;
* GET (and HEAD) only, plus POST for uploads; 405 otherwise.

Estimates are CPU-bound and take about a millisecond; they run in a small thread pool (``THREADS``) so the event
loop keeps accepting and timing out connections while one runs, and so the time limit can answer for them.
Starlette and uvicorn are imported only here (the ``web`` extra): the rest of the CLI starts without them.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .errors import Opt, Text, VramscopeError
from .i18n import detect_lang, t

MAX_QUERY = 4096
MAX_HEADERS = 16 * 1024  # request line + headers
MAX_HEADER_COUNT = 100
#: the largest body of each kind of upload (``upload=``): a config.json; a GGUF file's first bytes (its header:
#: Llama 3's 128,256 tokens and 280,147 merges take 8.9 MB, Qwen2's 151,646 tokens 6.4 MB); the two configs as
#: ``configs.py`` bounds their files (DeepSpeed JSON 1 MB, accelerate YAML 64 KiB)
GGUF_PREFIX = 32 << 20
UPLOADS = {"config": 1 << 20, "gguf": GGUF_PREFIX, "deepspeed": 1_000_000, "accelerate": 64 * 1024}
MAX_BODY = max(UPLOADS.values())
MAX_UPLOADS = 8  # bodies being read at the same time
MAX_GGUF_UPLOADS = 2  # of them GGUF prefixes (at most 64 MiB held)
MAX_NAME = 256  # longer model names are not looked up at all (no catalog name is near that long)
BACKLOG = 2048
THREADS = 4
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")

def _params() -> tuple[str, ...]:
    """The parameters a request may give: the model, the GPU, the language, and every workload option of the
    option table (``options.web_fields``: the same names as the Python API's keywords)."""
    from .options import web_fields

    return ("model", "params", "gpu", "lang", "upload") + web_fields()


PARAMS = _params()
PAGE_PARAMS = tuple(k for k in PARAMS if k != "upload")  # the page's own GET form sends no body
#: parameters in one query at most: one of each the server knows (the page's form without its script submits every
#: control, blank or not); never fewer than 64. The query's 4 KiB bounds it too.
MAX_FIELDS = max(64, len(PARAMS))

HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-store", "referrer-policy": "no-referrer",
           "x-frame-options": "DENY"}
LIST_PARAMS = ("q", "lang")  # /api/v1/models, /api/v1/gpus
STATUS = {"serve_body_too_large": 413, "serve_not_found": 404, "serve_method": 405, "serve_timeout": 503}
log = logging.getLogger("vramscope.serve")


@dataclass(frozen=True)
class Options:
    """What the operator chose on the command line; the client chooses none of it."""

    allow_hub: bool = False
    request_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_connections: int = 2048
    threads: int = THREADS  # 0: run estimates on the event loop itself
    lang: str = "en"  # when neither ?lang= nor Accept-Language says


# ---------------------------------------------------------------- input: query, language, model


def _echo(text: str, limit: int = 80) -> str:
    """A client's string as an error line may quote it: printable characters only, at most ``limit``."""
    clean = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def parse_query(raw: bytes, allowed: tuple[str, ...] = PARAMS, page: str = "/api/estimate") -> dict[str, str]:
    """The query's parameters: each known, each once; blank values dropped (a form sends them)."""
    if len(raw) > MAX_QUERY:
        raise VramscopeError("serve_query_too_large", limit="4 KiB")
    text = raw.decode("utf-8", errors="replace")
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, errors="replace", max_num_fields=MAX_FIELDS)
    except ValueError:
        raise VramscopeError("serve_too_many_params", limit=MAX_FIELDS) from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key.strip().lower().replace("-", "_"), allowed, n=3, cutoff=0.6)
            if close:
                raise VramscopeError("serve_unknown_param", field=_echo(key, 40), page=page,
                                     suggestions=", ".join(close))
            raise VramscopeError("serve_unknown_param_nosuggest", field=_echo(key, 40), page=page,
                                 allowed=", ".join(allowed))
        if key in out:
            raise VramscopeError("serve_repeated_param", field=key)
        out[key] = value.strip()
    if (out.get("lang") or "en") not in ("en", "zh"):
        raise VramscopeError("bad_choice", field="lang", value=_echo(out["lang"], 40), allowed="en, zh")
    return {k: v for k, v in out.items() if v}


def _request_lang(raw: bytes, accept: str, default: str) -> str:
    """``lang=`` if the query has a valid one, else the first Accept-Language tag, else the server's."""
    m = re.search(rb"(?:^|&)lang=(en|zh)(?:&|$)", raw)
    if m:
        return m.group(1).decode()
    tag = accept.strip().lower()[:2]
    return "zh" if tag == "zh" else ("en" if tag == "en" else default)


def resolve_model(name: str, allow_hub: bool = False):
    """A catalog entry (or, with ``allow_hub``, a Hub id) — never a path; nothing on disk is looked at.

    Every other name gets the same message, which depends on the name's text only.
    """
    from .sources import resolve_name

    name = name.strip()
    if len(name) <= MAX_NAME:
        hub = allow_hub and HUB_ID.fullmatch(name) is not None and ".." not in name
        try:
            return resolve_name(name, hub=hub)
        except VramscopeError as e:
            if e.key not in ("unknown_model", "unknown_model_nosuggest"):
                raise
            if e.key == "unknown_model":
                raise VramscopeError("serve_unknown_model", name=_echo(name),
                                     suggestions=e.params["suggestions"]) from None
    raise VramscopeError("serve_unknown_model_nosuggest", name=_echo(name))


@dataclass(frozen=True)
class Upload:
    """A request's body and what it is (``upload=``: a key of ``UPLOADS``)."""

    kind: str
    body: bytes


@dataclass(frozen=True)
class Imported:
    """What an uploaded DeepSpeed or accelerate config set (the options, as ``--deepspeed`` / ``--fsdp`` set them)
    and the keys it has that nothing reads."""

    kind: str
    options: dict
    ignored: tuple


def upload_kind(p: dict[str, str], post: bool) -> Optional[str]:
    """The kind of the request's body (``upload=``, ``config`` when a POST does not say); None without one."""
    kind = p.get("upload")
    if not post:
        if kind:
            raise VramscopeError("serve_upload_without_body", field="upload")
        return None
    kind = kind or "config"
    if kind not in UPLOADS:
        raise VramscopeError("bad_choice", field="upload", value=_echo(kind, 40), allowed=", ".join(UPLOADS))
    return kind


def upload_origin(kind: str) -> str:
    return {"config": "config.json (upload)", "gguf": "model.gguf (upload)", "deepspeed": "ds_config.json (upload)",
            "accelerate": "accelerate_config.yaml (upload)"}[kind]


def parse_gguf_upload(body: bytes):
    """A GGUF file's first bytes (at most ``GGUF_PREFIX``) as a model: the bounded GGUF reader on the bytes in
    memory, then the same steps as a ``.gguf`` on disk (``sources.local``)."""
    from .sources import gguf as gguf_source
    from .sources.base import with_stored

    origin = upload_origin("gguf")
    meta, tensors = gguf_source.read_gguf_upload(body, origin)
    from pathlib import Path

    name = meta.get("general.name") or "uploaded GGUF"
    spec = gguf_source.spec_from_gguf(meta, tensors, name=_echo(str(name), 100), path=Path(origin))
    fmt = gguf_source.file_type_name(meta)
    return with_stored(spec, "gguf", origin, tensors, f"gguf {fmt}".strip())


def parse_config_upload(kind: str, body: bytes) -> Imported:
    """A DeepSpeed or accelerate config sent as the body: the options ``configs.read_config`` reads from it."""
    from .configs import read_config

    options, ignored = read_config(kind, body, upload_origin(kind))
    return Imported(kind, options, tuple(ignored))


def parse_upload(body: bytes):
    """A config.json sent as the request body, read with the same checks as a file on disk."""
    from .sources import ResolvedModel
    from .sources.base import JsonProblem, parse_json
    from .sources.hf_config import spec_from_config

    origin = upload_origin("config")
    try:  # the bounded loader local config.json files go through (NaN, huge numbers, nesting, counts, UTF-8)
        raw = parse_json(body, max_containers=100_000, max_items=2_000_000)
    except JsonProblem as e:
        raise VramscopeError("config_bad_json", origin=origin, detail=_echo(str(e), 160)) from None
    if not isinstance(raw, dict):
        raise VramscopeError("config_not_object", origin=origin)
    name = raw.get("_name_or_path")
    name = _echo(name, 100) if isinstance(name, str) and name.strip() else "uploaded config.json"
    spec = spec_from_config(raw, name=name, origin=origin)
    return ResolvedModel(spec=spec, kind="config", origin=origin, params=spec.params,
                         active_params=spec.active_params, notes=spec.notes, hf_config=raw)


# ---------------------------------------------------------------- the work (runs in the thread pool)


def _workload(p: dict[str, str], imported: Optional[Imported] = None) -> dict[str, Any]:
    """The workload options of a request, read by make_workload through their rows (yes/no strictly), and an
    uploaded config's, combined as the command line combines ``--deepspeed`` / ``--fsdp`` with its flags."""
    from .options import web_fields

    given = {k: p[k] for k in web_fields() if k in p}
    if imported is None:
        return given
    from .cli import combine

    return combine(given, ("deepspeed" if imported.kind == "deepspeed" else "fsdp", imported.options),
                   Text(f"web_the_{imported.kind}"))


def _model(p: dict[str, str], upload: Optional[Upload], allow_hub: bool):
    from .api import load_model

    if upload is not None and upload.kind in ("config", "gguf"):
        if p.get("model") or p.get("params"):
            raise VramscopeError("serve_both_model_and_body")
        return parse_upload(upload.body) if upload.kind == "config" else parse_gguf_upload(upload.body)
    if p.get("model"):
        if p.get("params"):
            raise VramscopeError("conflict", field="params", reason=Text("r_model_or_params", params=Opt("params")))
        return resolve_model(p["model"], allow_hub)
    if not p.get("params"):
        raise VramscopeError("serve_no_model")
    return load_model(None, params=p["params"])


def _imported(upload: Optional[Upload]) -> Optional[Imported]:
    if upload is None or upload.kind not in ("deepspeed", "accelerate"):
        return None
    return parse_config_upload(upload.kind, upload.body)


def question(p: dict[str, str], upload: Optional[Upload] = None, allow_hub: bool = False):
    """The model and the workload a request asks about, and what an uploaded config set (or None)."""
    from .workload import make_workload

    imported = _imported(upload)
    model = _model(p, upload, allow_hub)
    return model, make_workload(**_workload(p, imported)), imported


def estimate_for(p: dict[str, str], upload: Optional[Upload] = None, allow_hub: bool = False):
    from .api import estimate_resolved

    model, w, _ = question(p, upload, allow_hub)
    gpus = [g for g in p.get("gpu", "").split(",") if g.strip()]
    return estimate_resolved(model, w, gpus)


def fit_for(p: dict[str, str], upload: Optional[Upload] = None, allow_hub: bool = False):
    from .gpus import find_gpu
    from .plan import fit as plan_fit

    model, w, _ = question(p, upload, allow_hub)
    return plan_fit(model, w, find_gpu(p.get("gpu") or "rtx-4090"))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def api_answer(path: str, p: dict[str, str], upload: Optional[Upload], lang: str, allow_hub: bool) -> bytes:
    """The JSON answer of ``/api/estimate``, ``/api/fit`` or ``/api/report`` (``/api/v1/...`` the same)."""
    path = path.replace("/api/v1/", "/api/", 1)
    if path == "/api/report":
        return _dumps(report_answer(p, upload, lang, allow_hub))
    if path == "/api/estimate":
        return _dumps(estimate_for(p, upload, allow_hub).to_dict(lang, "web"))  # assumptions name the parameters
    return _dumps(fit_for(p, upload, allow_hub).to_dict(lang, "web"))  # suggestions name fields as the API does


def report_answer(p: dict[str, str], upload: Optional[Upload], lang: str, allow_hub: bool) -> dict[str, Any]:
    """What the page's script shows: the answer as HTML (the same HTML the page has without the script)."""
    from .web import report_html

    model, w, imported = question(p, upload, allow_hub)
    query = {k: v for k, v in p.items() if k != "upload"}
    return {"schema": "vramscope.report/1", "html": report_html(query, lang, model, w, imported, upload)}


def page_answer(p: dict[str, str], error: str, lang: str, allow_hub: bool) -> bytes:
    """The page: the form for the question ``p`` and its answer (or the error, in the form's terms). With no
    question at all, the form's example question is answered, so a first visit shows what the page does."""
    from .web import DEFAULT_QUESTION, error_html, render_page, report_html

    if not error and not (set(p) - {"lang"}):
        p = {**DEFAULT_QUESTION, **p}
    result = error_html(error, lang) if error else ""
    if not error and (p.get("model") or p.get("params")):
        try:
            model, w, _ = question(p, None, allow_hub)
            result = report_html(p, lang, model, w)
        except VramscopeError as e:
            result = error_html(e.render(lang, "web"), lang)
    return render_page(p, result, lang).encode("utf-8")


def list_answer(path: str, p: dict[str, str]) -> bytes:
    from .web import gpus_answer, models_answer

    q = p.get("q", "")
    return _dumps(models_answer(q) if path.endswith("/models") else gpus_answer(q))


def warm_up() -> None:
    """Load what the first requests would (catalogs, modules): before serving, not while a client waits.

    A bug on one of these paths is logged and the server starts anyway; its requests will get a JSON 500.
    """
    from .gpus import catalog as gpu_catalog
    from .sources import catalog
    from .sources.gguf import ggml_types

    catalog.entries(), gpu_catalog(), ggml_types()
    cases: list[tuple[Callable[..., Any], tuple]] = []
    for p in ({"model": "llama-3-8b", "gpu": "rtx-4090"}, {"model": "llama-3-8b", "task": "finetune", "method": "lora"},
              {"model": "llama-3-8b", "engine": "vllm", "gpu": "rtx-4090"},
              {"model": "llama-3-8b", "engine": "llama.cpp", "quant": "Q4_K_M"}, {"params": "7B"},
              {"model": "no-such-model"}, {"model": "llama-3-8b", "batch": "0"}):
        cases += [(api_answer, ("/api/estimate", p, None, lang, False)) for lang in ("en", "zh")]
    cases += [(api_answer, ("/api/fit", {"model": "llama-3-8b"}, None, "en", False)),
              (page_answer, ({"model": "qwen2.5-7b"}, "", "zh", False)), (page_answer, ({}, "", "en", False)),
              (list_answer, ("/api/models", {})), (list_answer, ("/api/gpus", {})),
              (parse_upload, (b'{"model_type": "llama"}',)), (parse_config_upload, ("deepspeed", b"{}")),
              (parse_config_upload, ("accelerate", b"distributed_type: FSDP\n")), (parse_gguf_upload, (b"GGUF",))]
    for fn, args in cases:
        try:
            fn(*args)
        except VramscopeError:
            pass
        except Exception as e:  # a bug: the request will say so; serving the rest is still worth it
            log.warning("vramscope serve: warm-up of %s failed: %s: %s", fn.__name__, type(e).__name__, e)


# ---------------------------------------------------------------- the ASGI app


def _json_error(code: int, message: str, headers: Optional[dict] = None) -> Any:
    from starlette.responses import Response

    return Response(_dumps({"error": message}), code, {**HEADERS, **(headers or {})},
                    media_type="application/json; charset=utf-8")


def _abandon_on_timeout() -> dict:
    """At the time limit the request is answered and the thread left to finish (anyio < 4.1: "cancellable")."""
    import inspect

    import anyio

    takes = inspect.signature(anyio.to_thread.run_sync).parameters
    return {"abandon_on_cancel": True} if "abandon_on_cancel" in takes else {"cancellable": True}


def _too_large(kind: str) -> VramscopeError:
    from .sources.base import format_limit

    return VramscopeError("serve_body_too_large", limit=format_limit(UPLOADS[kind]), kind=Text(f"web_kind_{kind}"))


async def _read_body(request: Any, slots: Any, kind: str) -> bytes:
    """The request body, at most its kind's limit (``UPLOADS``), read while holding one of the ``slots``."""
    limit = UPLOADS[kind]
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise _too_large(kind)
    async with slots:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(kind)
            chunks.append(chunk)
    return b"".join(chunks)


class _HeaderLimit:
    """431 for a request whose line and headers together exceed the limit (h11 checks only incomplete ones)."""

    def __init__(self, app: Any, lang: str) -> None:
        self.app = app
        self.lang = lang

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            size += sum(len(k) + len(v) + 4 for k, v in headers)
            if size > MAX_HEADERS or len(headers) > MAX_HEADER_COUNT:
                accept = next((v for k, v in headers if k == b"accept-language"), b"")
                lang = _request_lang(scope.get("query_string") or b"", accept.decode("latin-1"), self.lang)
                message = t("serve_headers_too_large", lang, limit=f"{MAX_HEADERS // 1024} KiB",
                            count=MAX_HEADER_COUNT)
                return await _json_error(431, message)(scope, receive, send)
        await self.app(scope, receive, send)


class _Handlers:
    """The app's endpoints and error handlers; they share the options, the thread limiter and the upload slots."""

    def __init__(self, options: Options) -> None:
        import anyio

        self.options = options
        self.limiter = anyio.CapacityLimiter(options.threads) if options.threads > 0 else None
        self.uploads = anyio.Semaphore(MAX_UPLOADS)
        self.gguf_uploads = anyio.Semaphore(MAX_GGUF_UPLOADS)  # taken before one of ``uploads``
        self.abandon = _abandon_on_timeout()
        from .web import CSP, openapi

        self.page_headers = {**HEADERS, "content-security-policy": CSP}
        self.openapi = _dumps(openapi())

    async def run(self, fn: Callable[..., bytes], *args: Any) -> bytes:
        import anyio

        if self.limiter is None:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter, **self.abandon)

    def lang_of(self, request: Any) -> str:
        return _request_lang(request.scope.get("query_string", b""), request.headers.get("accept-language", ""),
                             self.options.lang)

    async def guarded(self, request: Any, answer: Callable[[str], Any]) -> Any:
        """Runs one request under the time limit; whatever happens, a response comes back."""
        import anyio

        lang = self.lang_of(request)
        try:
            with anyio.fail_after(self.options.request_timeout):
                return await answer(lang)
        except VramscopeError as e:
            return _json_error(STATUS.get(e.key, 400), e.render(lang, "web"))
        except TimeoutError:
            return _json_error(503, t("serve_timeout", lang, seconds=f"{self.options.request_timeout:g}"))
        except Exception as e:  # a bug: logged, and still a JSON answer
            log.exception("vramscope serve: internal error on %s", request.scope["path"])
            return _json_error(500, t("serve_internal", lang, kind=type(e).__name__))

    async def api(self, request: Any) -> Any:
        from starlette.responses import Response

        async def answer(lang: str) -> Response:
            path = request.scope["path"]
            p = parse_query(request.scope.get("query_string", b""), PARAMS, path)
            kind = upload_kind(p, request.method == "POST")
            if kind == "gguf":  # a GGUF prefix is held (read and answered) under its own, smaller limit
                async with self.gguf_uploads:
                    upload = Upload(kind, await _read_body(request, self.uploads, kind))
                    data = await self.run(api_answer, path, p, upload, lang, self.options.allow_hub)
                    del upload
            else:
                upload = Upload(kind, await _read_body(request, self.uploads, kind)) if kind else None
                data = await self.run(api_answer, path, p, upload, lang, self.options.allow_hub)
            return Response(data, 200, HEADERS, media_type="application/json; charset=utf-8")

        return await self.guarded(request, answer)

    async def listing(self, request: Any) -> Any:
        from starlette.responses import Response

        async def answer(lang: str) -> Response:
            path = request.scope["path"]
            p = parse_query(request.scope.get("query_string", b""), LIST_PARAMS, path)
            data = await self.run(list_answer, path, p)
            return Response(data, 200, HEADERS, media_type="application/json; charset=utf-8")

        return await self.guarded(request, answer)

    async def schema(self, request: Any) -> Any:
        from starlette.responses import Response

        async def answer(lang: str) -> Response:
            parse_query(request.scope.get("query_string", b""), ("lang",), request.scope["path"])
            return Response(self.openapi, 200, HEADERS, media_type="application/json; charset=utf-8")

        return await self.guarded(request, answer)

    async def page(self, request: Any) -> Any:
        from starlette.responses import Response

        async def answer(lang: str) -> Response:
            try:
                p, problem = parse_query(request.scope.get("query_string", b""), PAGE_PARAMS, "/"), ""
            except VramscopeError as e:
                p, problem = {}, e.render(lang, "web")
            data = await self.run(page_answer, p, problem, lang, self.options.allow_hub)
            return Response(data, 400 if problem else 200, self.page_headers, media_type="text/html; charset=utf-8")

        return await self.guarded(request, answer)

    async def http_error(self, request: Any, exc: Any) -> Any:
        lang = self.lang_of(request)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "GET")
            return _json_error(405, t("serve_method", lang, method=_echo(request.method, 20), allowed=allowed),
                               {"allow": allowed})
        if exc.status_code == 404:
            return _json_error(404, t("serve_not_found", lang, path=_echo(request.scope["path"], 100)))
        return _json_error(exc.status_code, str(exc.detail))

    async def internal(self, request: Any, exc: Exception) -> Any:
        log.error("vramscope serve: internal error: %s: %s", type(exc).__name__, exc)
        return _json_error(500, t("serve_internal", self.lang_of(request), kind=type(exc).__name__))


def create_app(options: Options = Options()) -> Any:
    """The Starlette app: ``/``, ``/api/v1/{estimate,fit,report,models,gpus}`` (and the same without ``v1``),
    ``/api/v1/openapi.json``; everything else a JSON 404/405."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Route

    warm_up()
    h = _Handlers(options)
    routes = [Route("/", h.page, methods=["GET"]), Route("/api/v1/openapi.json", h.schema, methods=["GET"])]
    for prefix in ("/api", "/api/v1"):  # the unversioned paths are the first version's
        routes += [Route(f"{prefix}/{name}", h.api, methods=["GET", "POST"]) for name in ("estimate", "fit", "report")]
        routes += [Route(f"{prefix}/{name}", h.listing, methods=["GET"]) for name in ("models", "gpus")]
    app = Starlette(routes=routes,
                    exception_handlers={HTTPException: h.http_error, Exception: h.internal},
                    middleware=[Middleware(_HeaderLimit, lang=options.lang)])
    app.router.redirect_slashes = False
    return app


# ---------------------------------------------------------------- the server


def _raw_response(code: int, reason: str, message: str) -> bytes:
    body = _dumps({"error": message})
    head = (f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\nx-content-type-options: nosniff\r\n\r\n")
    return head.encode("ascii") + body


def protocol_class(options: Options) -> type:
    """uvicorn's h11 protocol with the limits it lacks.

    uvicorn times out a connection only between requests, after a response; one that never sends a request, or
    sends it a byte at a time, would stay open for ever. Here every connection has ``idle_timeout`` seconds to
    deliver a complete request (from when it opened, or from the last response): after that it is closed, with
    a 408 if part of a request had come. Malformed requests get a JSON 400 instead of uvicorn's text, and
    connections beyond ``max_connections`` a JSON 503.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    idle, lang = options.idle_timeout, options.lang

    class Protocol(H11Protocol):
        _vs_timer: Any = None
        _vs_armed_for: Any = None
        _vs_partial = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > options.max_connections:
                transport.write(_raw_response(503, "Service Unavailable", t("serve_busy", lang)))
                transport.close()
                return
            self._vs_arm()

        def _vs_arm(self) -> None:
            if self._vs_timer is not None:
                self._vs_timer.cancel()
            self._vs_armed_for, self._vs_partial = self.cycle, False
            self._vs_timer = self.loop.call_later(idle, self._vs_expire)

        def _vs_expire(self) -> None:
            self._vs_timer = None
            if self.cycle is not self._vs_armed_for or self.transport.is_closing():
                return  # a request came and is being answered; its response arms the timer again
            if self._vs_partial:
                self.transport.write(_raw_response(408, "Request Timeout",
                                                   t("serve_request_timeout", lang, seconds=f"{idle:g}")))
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self.cycle is self._vs_armed_for:
                self._vs_partial = True
            super().data_received(data)

        def on_response_complete(self) -> None:
            self._vs_arm()  # before the base class starts a pipelined request
            super().on_response_complete()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            if self._vs_timer is not None:
                self._vs_timer.cancel()
                self._vs_timer = None
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            body = _dumps({"error": t("serve_bad_request", lang, limit=f"{MAX_HEADERS // 1024} KiB")})
            headers = [(b"content-type", b"application/json; charset=utf-8"), (b"connection", b"close"),
                       (b"content-length", str(len(body)).encode()), (b"x-content-type-options", b"nosniff")]
            try:
                for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                              h11.Data(data=body), h11.EndOfMessage()):
                    self.transport.write(self.conn.send(event))
            except h11.LocalProtocolError:  # a response had already started
                pass
            self.transport.close()

    return Protocol


LOOPBACK = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening socket, or one clear :class:`VramscopeError` (bad host, port in use, no permission)."""
    if not host or len(host) > 253 or any(c.isspace() or not c.isprintable() for c in host):
        raise VramscopeError("serve_bad_host", host=_echo(host, 60), detail="not a host name")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise VramscopeError("serve_bad_host", host=_echo(host, 60),
                             detail=_echo(getattr(e, "strerror", None) or str(e), 80)) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise VramscopeError("serve_cannot_listen", host=_echo(host, 60), port=port,
                             detail=_echo(e.strerror or str(e), 80)) from None
    sock.set_inheritable(True)
    return sock


def _raise_fd_limit() -> None:
    """500 idle clients need 500 descriptors; the soft limit is often 1024."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def serve(host: str = "127.0.0.1", port: int = 8765, options: Options = Options(), out: Any = None) -> None:
    """Listen on ``host:port`` until Ctrl+C. Raises :class:`VramscopeError` for what an operator can fix."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise VramscopeError("serve_needs_web") from None
    out = out or sys.stdout
    lang = options.lang
    _raise_fd_limit()
    sock = bind(host, port)
    if not is_loopback(host):
        print(t("serve_public_warning", lang, host=_echo(host, 60)), file=sys.stderr, flush=True)
    app = create_app(options)
    config = uvicorn.Config(app, http=protocol_class(options), backlog=BACKLOG, lifespan="off", ws="none",
                            interface="asgi3", timeout_keep_alive=max(1, math.ceil(options.idle_timeout)),
                            h11_max_incomplete_event_size=MAX_HEADERS, limit_concurrency=None,
                            timeout_graceful_shutdown=max(1, math.ceil(options.request_timeout)),
                            proxy_headers=False, server_header=False, access_log=False, log_level="warning")
    shown = f"[{host}]" if ":" in host else host
    print(t("serve_listening", lang, host=shown, port=sock.getsockname()[1]), file=out, flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
