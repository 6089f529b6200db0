"""Hostile input for `vramscope serve`: client-named paths, fuzzed query strings, raw HTTP abuse, load.

* a model name is never a path: nothing on disk is opened or stat-ed on a client's say-so, and the answer for a
  path that exists is byte for byte the answer for one that does not;
* no query string gets a 5xx; every 4xx is JSON with "error" (the page answers HTML);
* the real server (a subprocess on 127.0.0.1, killed at the end) answers malformed, oversized, slow and idle
  connections with a JSON error or by closing them after its idle timeout, and 64 concurrent clients get 0
  errors;
* operator errors (port in use, bad host) are one line and exit 2; a public --host gets a warning.

No timed assertions: the timeouts here are hang guards. Every loop is bounded in count.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from hostile_util import assert_clean, record, run_cli, run_cli_subprocess  # noqa: E402
from vramscope import serve as serve_mod  # noqa: E402
from vramscope.serve import PARAMS, Options, create_app, is_loopback  # noqa: E402

SECRET = "SECRET_MODEL_TYPE_7f3a"
LLAMA = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 128, "vocab_size": 1000}
STATUSES: collections.Counter = collections.Counter()


def outcome(status: int) -> str:
    return "answer" if status < 400 else ("clear error" if status < 500 else "internal error")


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(Options()), raise_server_exceptions=False)


# ---------------------------------------------------------------- the file system is never touched

_AUDIT = {"on": False, "calls": []}
_WATCH = ("open", "os.listdir", "os.scandir", "os.chdir", "glob.glob", "os.walk", "os.readlink", "os.exec",
          "os.posix_spawn", "subprocess.Popen", "shutil.copyfile", "os.remove", "os.rename", "os.truncate")


def _audit_hook(event: str, args: tuple) -> None:
    if _AUDIT["on"] and event in _WATCH:
        _AUDIT["calls"].append((event, repr(args)[:200]))


sys.addaudithook(_audit_hook)  # audit hooks cannot be removed; this one records only inside no_file_system()


@contextlib.contextmanager
def no_file_system(monkeypatch):
    """Record every file-system call made meanwhile: opens (audit events) and the stat family (wrapped)."""
    calls = _AUDIT["calls"]
    calls.clear()

    def spy(name, fn):
        def wrapper(*a, **k):
            if _AUDIT["on"]:
                calls.append((name, repr(a[:1])[:200]))
            return fn(*a, **k)
        return wrapper

    targets = [(os, n) for n in ("stat", "lstat", "access", "open", "listdir", "scandir", "readlink")]
    targets += [(os.path, n) for n in ("exists", "lexists", "isfile", "isdir", "islink", "expanduser", "realpath",
                                       "getsize")]
    targets += [(builtins, "open"), (io, "open")]
    targets += [(Path, n) for n in ("exists", "is_file", "is_dir", "stat", "open", "read_bytes", "read_text",
                                    "resolve", "expanduser", "iterdir", "glob")]
    for obj, name in targets:
        monkeypatch.setattr(obj, name, spy(f"{getattr(obj, '__name__', obj)}.{name}", getattr(obj, name)))
    _AUDIT["on"] = True
    try:
        yield calls
    finally:
        _AUDIT["on"] = False


def hostile_names(tmp: Path) -> list[str]:
    """Model names that are paths (existing ones while the tree is there), in every disguise."""
    t = str(tmp)
    names = [
        f"{t}/secret.json", f"{t}/model", f"{t}/model/", f"{t}/model/config.json", f"{t}/link.json", f"{t}/linkdir",
        f"{t}//model/./config.json", f"{t}/model/../secret.json", f"{t}/secret.json\x00.txt", f"{t}\x00",
        "~/secret.json", "~/model", "~", "~/", "~root", "secret.json", "./secret.json", "model", "model/config.json",
        f"../{tmp.name}/secret.json", "file://" + t + "/secret.json", t, t + "/", "/", ".", "..", "/etc/passwd",
        "/dev/zero", "/proc/self/environ", "C:\\Windows\\win.ini", "..\\..\\secret.json", "\\\\?\\C:\\x",
        "／etc／passwd", "%2Fetc%2Fpasswd", f"{t}/" + "x" * 300, "/" * 1000, "a" * 3000, "\x00", " ",
        "model\n", "secret.json ", "meta-llama/../../secret.json", "owner/name", "model.safetensors", "x.gguf",
    ]
    return names


def build_tree(tmp: Path) -> None:
    (tmp / "secret.json").write_text(json.dumps({"model_type": SECRET}))
    (tmp / "model").mkdir()
    (tmp / "model" / "config.json").write_text(json.dumps(LLAMA))
    (tmp / "link.json").symlink_to(tmp / "secret.json")
    (tmp / "linkdir").symlink_to(tmp / "model")


def urls_for(name: str) -> list[str]:
    q = urllib.parse.quote(name, safe="")
    return [f"/api/estimate?model={q}", f"/api/fit?model={q}", f"/?model={q}", f"/api/v1/report?model={q}",
            f"/api/v1/models?q={q}",
            f"/api/estimate?model={urllib.parse.quote(q, safe='')}",  # double-encoded
            f"/api/estimate?model=llama-3-8b&gpu={q}", f"/api/estimate?model=llama-3-8b&quant={q}"]


def test_paths_are_never_touched_and_answers_do_not_depend_on_them(client, tmp_path, monkeypatch):
    root = tmp_path / "tree"
    root.mkdir()
    monkeypatch.setenv("HOME", str(root))  # so ~/secret.json exists
    monkeypatch.chdir(root)  # so secret.json and model/ exist relative to the server's directory
    urls = [u for n in hostile_names(root) for u in urls_for(n)]
    for u in urls[:6]:
        client.get(u)  # warm (first use of a code path may import a module)

    def answers() -> dict[str, tuple[int, bytes]]:
        out = {}
        with no_file_system(monkeypatch) as calls:
            for u in urls:
                r = client.get(u)
                out[u] = (r.status_code, r.content)
                record("http path", outcome(r.status_code))
        assert calls == [], f"file-system calls during requests: {calls[:10]}"
        return out

    build_tree(root)
    existing = answers()
    for p in sorted(root.rglob("*"), reverse=True):
        p.unlink() if p.is_symlink() or p.is_file() else p.rmdir()
    missing = answers()
    for u in urls:
        status, body = existing[u]
        assert status in (200, 400), (u, status, body[:300])
        assert SECRET.encode() not in body and b"hidden_size" not in body, u
        assert (status, body) == missing[u], f"{u}: answer depends on whether the path exists"
        if "/api/estimate?model=" in u and "gpu=" not in u and "quant=" not in u:
            error = json.loads(body)["error"]
            expected = ("never file paths", "4 KiB", "catalog name")
            assert status == 400 and any(w in error for w in expected), (u, body[:300])


def test_unknown_names_all_get_the_same_message(client):
    msgs = {json.loads(client.get(f"/api/estimate?model={urllib.parse.quote(n, safe='')}").content)["error"]
            .replace(n, "NAME") for n in ("/etc/passwd", "/no/such/file.json", "~/x", "zz-qq-xx")}
    assert len(msgs) == 1, msgs


def test_long_and_control_names_are_not_echoed_whole(client):
    r = client.get("/api/estimate?model=" + "b" * 3000)
    assert r.status_code == 400 and len(r.json()["error"]) < 400
    r = client.get("/api/estimate?model=a%00b%0Ac%1Bd")
    err = r.json()["error"]
    assert r.status_code == 400 and "\n" not in err and "\x00" not in err and "\x1b" not in err


def test_hub_only_when_allowed_and_never_for_paths(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("vramscope.sources.hub.resolve_hub", lambda name: calls.append(name) or 1 / 0)
    off = TestClient(create_app(Options()), raise_server_exceptions=False)
    assert off.get("/api/estimate?model=someone/some-model").status_code == 400 and calls == []
    on = TestClient(create_app(Options(allow_hub=True)), raise_server_exceptions=False)
    for name in ("/etc/passwd", "../a/b", "a/..", "./a/b", "~/a", "a/b/c", "a/b\x00", "-a/b"):
        r = on.get("/api/estimate?model=" + urllib.parse.quote(name, safe=""))
        assert r.status_code == 400 and "never file paths" in r.json()["error"], name
    assert calls == []
    r = on.get("/api/estimate?model=someone/some-model")
    assert calls == ["someone/some-model"] and r.status_code == 500 and "internal error" in r.json()["error"]


# ---------------------------------------------------------------- fuzzed query strings

JUNK_KEYS = st.one_of(st.sampled_from(("Model", "batch ", "bacth", "x", "", "model[]", "__class__", "LANG")),
                      st.text(max_size=12))
NUMBERS = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(("nan", "NaN", "inf", "-inf", "1e309", "-0", "0x10", "1_000", "٣", "1e-400",
                                     "9" * 400, "7B", "1T", "0.5", "", " ")))
GOOD = st.sampled_from(("inference", "finetune", "pretrain", "full", "lora", "qlora", "freeze", "bf16", "fp16", "fp32",
                        "int4", "nf4", "fp8", "Q4_K_M", "vllm", "llama.cpp", "transformers", "flash", "sdpa", "eager",
                        "adamw", "adamw-8bit", "sgd", "cpu", "nvme", "auto", "hybrid", "full", "1", "2", "4", "8",
                        "16", "1024", "4096", "0.9", "true", "false", "rtx-4090", "a100-80gb,h100", "zh", "en",
                        "llama-3-8b", "qwen2.5-7b", "mixtral-8x7b", "deepseek-ai/DeepSeek-V3", "7B"))
VALUES = st.one_of(GOOD, GOOD, NUMBERS, st.text(max_size=40),
                   st.sampled_from(("/etc/passwd", "~", "..", "a" * 500, "\x00", "%00", "llama-3-8b\n")))
PAIRS = st.tuples(st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=5),
                  st.lists(st.tuples(st.one_of(JUNK_KEYS, st.sampled_from(PARAMS)), VALUES), max_size=2)
                  | st.just([])).map(lambda t: list(t[0].items()) + t[1])
PAGES = st.sampled_from(("/api/estimate", "/api/fit", "/", "/api/v1/report", "/api/v1/fit"))


def check_response(page: str, r) -> None:
    STATUSES[r.status_code] += 1
    record("http query", outcome(r.status_code))
    assert r.status_code < 500, (page, r.status_code, r.text[:500])
    if page != "/" and r.status_code >= 400:
        assert isinstance(r.json()["error"], str) and r.json()["error"]
    elif page != "/":
        assert r.json()["schema"].startswith("vramscope.")
    else:
        assert r.headers["content-type"].startswith("text/html")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(page=PAGES, pairs=PAIRS, base=st.booleans(),
       accept=st.one_of(st.just(""), st.sampled_from(("zh-CN,zh;q=0.9", "en-US", "*", "zh")),
                        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)))
def test_fuzzed_query_strings_never_5xx(client, page, pairs, base, accept):
    if base:  # mostly-valid requests reach deeper into the estimator
        pairs = [("model", "llama-3-8b")] + pairs
    r = client.get(page + "?" + urllib.parse.urlencode(pairs), headers={"Accept-Language": accept} if accept else {})
    check_response(page, r)


CONFIG_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
               "vocab_size", "torch_dtype", "head_dim", "tie_word_embeddings", "num_local_experts",
               "num_experts_per_tok", "quantization_config", "model_type", "text_config")
CONFIG_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.integers(1, 4096)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
    | st.sampled_from(("llama", "mixtral", "bfloat16", "float16", "int4")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(page=st.sampled_from(("/api/estimate?task=finetune&method=lora", "/api/fit", "/api/estimate")),
       changes=st.dictionaries(st.sampled_from(CONFIG_KEYS), CONFIG_VALUES, max_size=3))
def test_fuzzed_uploads_never_5xx(client, page, changes):
    r = client.post(page, content=json.dumps({**LLAMA, **changes}))
    STATUSES[r.status_code] += 1
    record("http upload", outcome(r.status_code))
    assert r.status_code < 500, (changes, r.text[:500])
    assert r.json()["error"] if r.status_code >= 400 else r.json()["schema"].startswith("vramscope.")


@pytest.mark.parametrize("value", ["x", [1], 3])
def test_upload_with_a_quantization_config_that_is_not_an_object(client, value):
    r = client.post("/api/estimate", content=json.dumps({**LLAMA, "quantization_config": value}))
    assert r.status_code == 400, r.text


RAW = st.binary(max_size=200) | st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass"))


async def _asgi_get(app, path: str, query: bytes) -> tuple[int, bytes, dict]:
    """One GET straight into the ASGI app, with the query string's bytes exactly as given."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent: list = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, dict(start["headers"])


@pytest.fixture(scope="module")
def app():
    return create_app(Options())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=PAGES, query=RAW)
def test_raw_query_bytes_never_5xx(app, page, query):
    status, body, headers = asyncio.run(_asgi_get(app, page, query))
    STATUSES[status] += 1
    record("http raw query", outcome(status))
    assert status < 500, (query, body[:300])
    if page != "/" and status >= 400:
        assert json.loads(body)["error"]


@pytest.mark.parametrize("query", [b"model=llama-3-8b&" * 300, b"&" * 4096, b"=" * 4096, b"a=1&" * 65,
                                   b"model=%ff%fe", b"model=%", b"model=%%%", b"model=llama-3-8b;batch=2",
                                   b"model=llama-3-8b&batch=1e999", b"model=llama-3-8b&seq=99999999999999999999",
                                   b"model=llama-3-8b&gpu=" + b",".join([b"rtx-4090"] * 400),
                                   b"model=llama-3-8b&num_gpus=1000000&tp=1000000",
                                   b"params=1e400", b"params=-7B", b"params=nan"])
def test_edge_queries(app, query):
    for page in ("/api/estimate", "/api/fit", "/", "/api/v1/report"):
        status, body, _ = asyncio.run(_asgi_get(app, page, query))
        record("http raw query", outcome(status))
        assert status < 500, (page, query[:80], body[:300])


def test_a_bug_still_gets_a_json_answer(monkeypatch):
    c = TestClient(create_app(Options()), raise_server_exceptions=False)
    monkeypatch.setattr(serve_mod, "api_answer", lambda *a: 1 / 0)
    r = c.get("/api/estimate?model=llama-3-8b")
    assert r.status_code == 500 and r.json() == {"error": "internal error: ZeroDivisionError (please report it)"}


@pytest.mark.timeout(60)
def test_a_slow_request_is_stopped_at_the_time_limit(monkeypatch):
    c = TestClient(create_app(Options(request_timeout=0.5)), raise_server_exceptions=False)
    monkeypatch.setattr(serve_mod, "api_answer", lambda *a: time.sleep(3) or b"{}")
    r = c.get("/api/estimate?model=llama-3-8b&lang=zh")
    assert r.status_code == 503 and "0.5" in r.json()["error"] and "秒" in r.json()["error"]


# ---------------------------------------------------------------- the real server


@contextlib.contextmanager
def real_server(*args: str):
    """`vramscope serve --port 0 ARGS` on 127.0.0.1; yields (port, process); killed at the end."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    p = subprocess.Popen([sys.executable, "-m", "vramscope", "serve", "--host", "127.0.0.1", "--port", "0", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, p.stderr.read() if p.poll() is not None else "")
        yield int(m.group(1)), p
    finally:
        p.kill()
        p.wait(10)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        assert "Traceback" not in err, err[-2000:]


@pytest.fixture(scope="module")
def server():
    with real_server("--idle-timeout", "1", "--max-connections", "400") as (port, proc):
        yield port, proc


def raw(port: int, data: bytes, timeout: float = 15) -> bytes:
    """Send ``data``, read until the server closes (or stops sending for ``timeout`` s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def responses(data: bytes) -> list[tuple[int, dict]]:
    """(status, JSON body) of each response in a raw byte stream."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        m = re.search(rb"(?i)content-length: *(\d+)", head)
        n = int(m.group(1)) if m else len(rest)  # no length: the body runs to the close
        body, data = rest[:n], rest[n:]
        out.append((status, json.loads(body) if b"json" in head.lower() and body else None))
    return out


GET = b"GET /api/estimate?model=llama-3-8b HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label, data, status", [
    ("garbage", b"GARBAGE\r\n\r\n", 400),
    ("binary", bytes(range(256)) + b"\r\n\r\n", 400),
    ("headers over 16 KiB", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ("request line over 16 KiB", b"GET /?model=" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    ("query over 4 KiB", b"GET /api/estimate?model=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("many headers", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n", 431),
    ("PUT", b"PUT /api/estimate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    ("TRACE", b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    ("path traversal", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("encoded traversal", b"GET /api/estimate/..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("declared body 10 MiB", b"POST /api/estimate HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n{", 413),
    ("bad content-length", b"POST /api/estimate HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    ("chunked body over 1 MiB", b"POST /api/estimate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     + (b"10000\r\n" + b"a" * 0x10000 + b"\r\n") * 17 + b"0\r\n\r\n", 413),
    ("half a request", b"GET /api/estimate?model=llama-3-8b HTTP/1.1\r\nHost: x\r\n", 408),
    ("HTTP/1.0", b"GET /api/estimate?model=llama-3-8b HTTP/1.0\r\n\r\n", 200),
])
def test_raw_http_abuse_gets_a_json_answer(server, label, data, status):
    port, proc = server
    got = responses(raw(port, data))
    record("http raw", "clear error" if got and got[0][0] < 500 else "internal error")
    assert got and got[0][0] == status, (label, got)
    if status >= 400:
        assert got[0][1]["error"], label
    assert proc.poll() is None


@pytest.mark.timeout(120)
def test_headers_trickling_past_the_limit(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        data = b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(40):  # 40 KiB of header in 1 KiB pieces: h11 refuses once 16 KiB are pending
                s.sendall(b"X-Pad-" + b"a" * 1000 + b": b\r\n")
                time.sleep(0.005)
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while chunk := s.recv(65536):
                data += chunk
    got = responses(data)
    assert got and got[0][0] == 400 and "16 KiB" in got[0][1]["error"], data[:300]


@pytest.mark.timeout(120)
def test_pipelined_and_keep_alive(server):
    port, _ = server
    got = responses(raw(port, GET * 3))  # three at once; then the idle timeout closes the connection
    assert [s for s, _ in got] == [200, 200, 200]


@pytest.mark.timeout(120)
def test_idle_connections_are_closed(server):
    port, _ = server
    socks = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(50)]
    try:
        for s in socks[25:]:  # half of them after one request (keep-alive), half with none at all
            s.sendall(GET)
        for i, s in enumerate(socks):
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := s.recv(65536):
                    data += chunk
            # EOF: the server closed it; a timeout here (15 s) would raise and fail the test
            assert data == b"" if i < 25 else data.startswith(b"HTTP/1.1 200"), (i, data[:100])
    finally:
        for s in socks:
            s.close()


@pytest.mark.timeout(180)
def test_64_concurrent_clients_and_idle_connections_get_no_errors(server):
    import http.client

    port, proc = server
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(100)]
    errors: list[str] = []
    done = collections.Counter()
    paths = ["/api/estimate?model=llama-3-8b", "/api/estimate?model=qwen2.5-7b&task=finetune&method=lora",
             "/api/fit?model=llama-3-8b&gpu=rtx-4090", "/?model=mixtral-8x7b"]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for k in range(5):
                conn.request("GET", paths[(i + k) % len(paths)])
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or not body:
                    errors.append(f"{r.status} {body[:100]!r}")
                done[r.status] += 1
        except Exception as e:  # noqa: BLE001 — any failure is an error of the test's count
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    try:
        assert not any(th.is_alive() for th in threads), "clients hung"
        assert errors == [] and done[200] == 320, (errors[:5], done)
        for s in idle:  # held open through the load; the server closes them after its idle timeout
            assert s.recv(1) == b""
    finally:
        for s in idle:
            s.close()
    record("http load", "answer", 0.0)
    assert proc.poll() is None


@pytest.mark.timeout(120)
def test_connections_beyond_the_limit_get_503():
    with real_server("--max-connections", "4", "--idle-timeout", "5") as (port, _):
        held = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(4)]
        try:
            time.sleep(0.2)  # not a timed assertion: lets the server register the held connections
            got = responses(raw(port, GET))
            assert got and got[0][0] == 503 and "too many" in got[0][1]["error"]
        finally:
            for s in held:
                s.close()
        for _ in range(50):  # bounded: once they are gone, requests are answered again
            got = responses(raw(port, GET.replace(b"Host: x", b"Host: x\r\nConnection: close")))
            if got and got[0][0] == 200:
                break
            time.sleep(0.1)
        assert got[0][0] == 200


# ---------------------------------------------------------------- operator errors and the public-host warning


@pytest.mark.timeout(60)
def test_port_in_use_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        rc, out, err = run_cli_subprocess(["serve", "--port", str(port)], timeout=30)
    assert_clean(rc, out, err, "port in use")
    assert rc == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("host", ["192.0.2.1", "bad host", "", "a" * 300, "127.0.0.1\t"])
def test_bad_host_is_one_line(host):
    rc, out, err = run_cli_subprocess(["serve", "--host", host, "--port", "0"], timeout=30)
    assert_clean(rc, out, err, host)
    assert rc == 2 and "--host" in err and "warning" not in err


def test_nul_in_host_is_one_line():
    rc, out, err = run_cli(["serve", "--host", "127.0.0.1\x00", "--port", "0"])
    assert_clean(rc, out, err, "NUL host")
    assert rc == 2 and "--host" in err


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--port", "x"], ["--idle-timeout", "0"],
                                  ["--max-connections", "-1"], ["--request-timeout", "nan"]])
def test_bad_serve_options_are_one_line(argv):
    rc, out, err = run_cli(["serve", *argv])
    assert_clean(rc, out, err, argv)
    assert rc == 2


@pytest.mark.parametrize("lang, words", [("en", "warning: --host 0.0.0.0"), ("zh", "警告：--host 0.0.0.0")])
def test_public_host_warning(monkeypatch, lang, words):
    import uvicorn

    seen = {}

    def fake_bind(host, port, backlog=2048):  # tests only ever listen on 127.0.0.1
        seen["host"] = host
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        return s

    monkeypatch.setattr(serve_mod, "bind", fake_bind)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    rc, out, err = run_cli(["serve", "--host", "0.0.0.0", "--port", "0", "--lang", lang])
    assert rc == 0 and seen["host"] == "0.0.0.0"
    assert words in err and len(err.strip().splitlines()) == 1
    rc, out, err = run_cli(["serve", "--host", "127.0.0.1", "--port", "0", "--lang", lang])
    assert rc == 0 and err == ""


def test_loopback_detection():
    assert all(map(is_loopback, ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com", "")))


def test_status_tally_is_sane():
    """Runs last in this module: the fuzz saw answers and errors, and never a 5xx."""
    assert STATUSES and all(code < 500 for code in STATUSES), STATUSES
    print("\nserve fuzz statuses:", dict(sorted(STATUSES.items())))


# ---------------------------------------------------------------- uploads of configs and GGUF headers

DS_OK = {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "nvme", "nvme_path": "/etc"},
                               "offload_param": {"device": "cpu", "nvme_path": "~/secret.json"}},
         "bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": 1}
ACC_PATHS = (b"distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: /etc/passwd\n",
             b"distributed_type: FSDP\nfsdp_config:\n  fsdp_sharding_strategy: FULL_SHARD\n"
             b"  fsdp_transformer_layer_cls_to_wrap: ../../secret.json\nnum_processes: 2\n")


@pytest.fixture(scope="module")
def gguf_header(tmp_path_factory):
    """The first bytes (header and a little data) of a realistic Llama 2 GGUF: 32,000 tokens with scores."""
    gguf_real = pytest.importorskip("gguf_real")
    path = gguf_real.write_sparse(gguf_real.llama2_7b(),
                                  tmp_path_factory.mktemp("gguf-hostile") / "llama-2-7b.Q4_K_M.gguf")
    with open(path, "rb") as f:
        return f.read(1 << 20)


def test_uploads_never_touch_the_file_system(client, gguf_header, monkeypatch, tmp_path):
    """Paths inside an uploaded config (DeepSpeed's nvme_path, accelerate's deepspeed_config_file) are data: not
    one file-system call while the uploads are answered."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.json").write_text(json.dumps({"model_type": SECRET}))
    q = "model=llama-3-8b&task=finetune&gpu=rtx-4090"
    requests = [(f"/api/v1/estimate?{q}&upload=deepspeed", json.dumps(DS_OK).encode()),
                *[(f"/api/v1/report?{q}&upload=accelerate", body) for body in ACC_PATHS],
                ("/api/v1/estimate?upload=gguf&engine=llama.cpp", gguf_header),
                ("/api/v1/report?upload=gguf&engine=llama.cpp&gpu=rtx-4090", gguf_header),
                ("/api/v1/fit?upload=gguf&gpu=rtx-4090&engine=ollama", gguf_header[:300_000])]
    for url, body in requests:
        client.post(url, content=body)  # warm: a first use may import a module
    with no_file_system(monkeypatch) as calls:
        answers = [client.post(url, content=body) for url, body in requests]
    assert calls == [], f"file-system calls during uploads: {calls[:10]}"
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 400, 200, 200, 200, 400], [(r.status_code, r.text[:200]) for r in answers]
    assert "deepspeed_config.deepspeed_config_file" in answers[1].json()["error"]
    assert SECRET not in "".join(r.text for r in answers)


DS_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.integers(0, 4)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(("auto", "cpu", "nvme", "none", "true", "yes")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(("stage", "device", "enabled", "x")),
                                                                inner, max_size=3), max_leaves=6)
DS_KEYS = ("zero_optimization", "bf16", "fp16", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
           "optimizer", "zero_allow_untested_optimizer")
ACC_LINES = st.lists(st.sampled_from((
    "distributed_type: FSDP", "distributed_type: DEEPSPEED", "distributed_type: NO", "deepspeed_config:",
    "fsdp_config:", "  zero_stage: 3", "  zero_stage: 7", "  zero_stage: auto", "  offload_optimizer_device: cpu",
    "  offload_param_device: nvme", "  gradient_accumulation_steps: 0", "  fsdp_version: 2",
    "  fsdp_sharding_strategy: HYBRID_SHARD", "  fsdp_reshard_after_forward: false", "  fsdp_offload_params: 1",
    "mixed_precision: bf16", "mixed_precision: fp8", "num_processes: 8", "num_processes: -1", "num_machines: 3",
    "a: &x [1]", "b: *x", "  - item", "key: [1, {a: b}]", "\t", ": :", "num_processes: 1e400", "'x': \"y\"")),
    max_size=8).map(lambda lines: "\n".join(lines).encode())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(page=st.sampled_from(("/api/v1/estimate", "/api/v1/fit", "/api/v1/report")),
       kind=st.sampled_from(("deepspeed", "accelerate")),
       ds=st.dictionaries(st.sampled_from(DS_KEYS), DS_VALUES, max_size=4), acc=ACC_LINES,
       extra=st.sampled_from(("", "&batch=2", "&num_gpus=4", "&parallelism=fsdp", "&lang=zh")))
def test_fuzzed_config_uploads_never_5xx(client, page, kind, ds, acc, extra):
    body = json.dumps(ds).encode() if kind == "deepspeed" else acc
    r = client.post(f"{page}?model=llama-3-8b&task=finetune&gpu=rtx-4090&upload={kind}{extra}", content=body)
    STATUSES[r.status_code] += 1
    record("http config upload", outcome(r.status_code))
    assert r.status_code < 500, (kind, body[:300], r.text[:500])
    if r.status_code >= 400:
        assert r.json()["error"] and "\n" not in r.json()["error"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(cut=st.integers(0, 1 << 20), flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=4),
       page=st.sampled_from(("/api/v1/estimate?engine=llama.cpp", "/api/v1/report?gpu=rtx-4090",
                             "/api/v1/fit?engine=ollama&gpu=rtx-4090")))
def test_fuzzed_gguf_headers_never_5xx(client, gguf_header, cut, flips, page):
    """A realistic header cut anywhere and with bytes of its first 4 KiB (the counts, the first keys) changed."""
    body = bytearray(gguf_header[:cut])
    for at, value in flips:
        if at < len(body):
            body[at] = value
    r = client.post(page + "&upload=gguf", content=bytes(body))
    STATUSES[r.status_code] += 1
    record("http gguf upload", outcome(r.status_code))
    assert r.status_code < 500, (cut, flips, r.text[:500])
    if r.status_code >= 400:
        assert r.json()["error"] and "\n" not in r.json()["error"] and "Traceback" not in r.json()["error"]
