"""The web page and JSON API: the ASGI app through Starlette's TestClient, and the real server on a loopback port."""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from hostile_util import run_cli  # noqa: E402
from vramscope.serve import Options, create_app  # noqa: E402

LLAMA_CONFIG = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                "torch_dtype": "bfloat16"}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(Options()), raise_server_exceptions=False)


def get(client, url, **kw):
    r = client.get(url, **kw)
    return r.status_code, r.text


def test_api_estimate(client):
    code, body = get(client, "/api/estimate?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090")
    assert code == 200
    d = json.loads(body)
    assert d["schema"] == "vramscope.estimate/1" and d["model"]["trainable_params"] == 41_943_040
    assert d["gpus"][0]["name"].endswith("4090")


def test_api_fit_and_errors(client):
    code, body = get(client, "/api/fit?model=llama-3-70b&gpu=rtx-4090")
    assert code == 200 and json.loads(body)["schema"] == "vramscope.fit/1"
    code, body = get(client, "/api/estimate?model=llama-3-8b&batch=0")
    assert code == 400 and json.loads(body)["error"].startswith("batch: 0 is out of range")
    code, body = get(client, "/api/estimate?model=no-such-model")
    assert code == 400 and "not in the catalog" in json.loads(body)["error"]
    code, body = get(client, "/api/estimate?" + "model=" + "a" * 5000)
    assert code == 400 and "4 KiB" in json.loads(body)["error"]
    code, body = get(client, "/nope")
    assert code == 404 and "no such page" in json.loads(body)["error"]


def test_page_in_both_languages(client):
    code, body = get(client, "/?model=qwen2.5-7b&gpu=rtx-4090")
    assert code == 200 and "total (peak)" in body and "<form" in body
    code, body = get(client, "/?model=qwen2.5-7b&lang=zh")
    assert code == 200 and "合计（峰值）" in body
    code, body = get(client, "/?model=%3Cscript%3E")
    assert "<script>" not in body
    code, body = get(client, "/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert code == 200 and "估算" in body
    code, body = get(client, "/?model=qwen2.5-7b&seq=&batch=1&quant=&lang=en")  # a submitted form: blanks
    assert code == 200 and "total (peak)" in body


def test_api_multi_gpu_and_recipe_options(client):
    code, body = get(client, "/api/estimate?model=llama-3-8b&task=finetune&num_gpus=16&tp=2&nodes=2"
                             "&fsdp_sharding=hybrid&ce_chunks=8&activation_offload=1&grad_checkpointing=on")
    assert code == 200
    d = json.loads(body)
    w = d["workload"]
    assert (w["tp"], w["nodes"], w["fsdp_sharding"], w["ce_chunks"], w["activation_offload"]) == (2, 2, "hybrid", 8,
                                                                                                 True)
    assert d["engine"]["parallel"]["dp"] == 8


def test_fit_takes_the_flags_too(client):
    code, body = get(client, "/api/fit?model=llama-3-8b&task=finetune&grad_checkpointing=1&gpu=a100-80gb")
    assert code == 200 and json.loads(body)["schema"] == "vramscope.fit/1"


def test_params_instead_of_model(client):
    code, body = get(client, "/api/estimate?params=7B")
    assert code == 200 and json.loads(body)["model"]["source"] == "params"
    code, body = get(client, "/api/estimate?params=7B&model=llama-3-8b")
    assert code == 400 and "not both" in json.loads(body)["error"]


def test_unknown_and_repeated_parameters(client):
    code, body = get(client, "/api/estimate?model=llama-3-8b&bacth=4")
    assert code == 400 and json.loads(body)["error"] == "bacth: not a parameter of /api/estimate; did you mean: batch, ubatch, cache?"
    code, body = get(client, "/api/estimate?model=llama-3-8b&zzzzzz=4")
    assert code == 400 and "parameters: model, params" in json.loads(body)["error"]
    code, body = get(client, "/api/estimate?model=llama-3-8b&batch=1&batch=2")
    assert code == 400 and "more than once" in json.loads(body)["error"]
    code, body = get(client, "/api/estimate?model=llama-3-8b&packing=maybe")
    assert code == 400 and "packing" in json.loads(body)["error"]
    code, body = get(client, "/api/estimate?model=llama-3-8b&lang=fr")
    assert code == 400 and "lang" in json.loads(body)["error"]


def test_errors_in_the_requests_language(client):
    code, body = get(client, "/api/estimate?model=llama-3-8b&batch=0&lang=zh")
    assert code == 400 and "超出范围" in json.loads(body)["error"]
    code, body = get(client, "/api/estimate?model=llama-3-8b&batch=0", headers={"Accept-Language": "zh-CN"})
    assert code == 400 and "超出范围" in json.loads(body)["error"]
    code, body = get(client, "/api/estimate?model=nope-nope&lang=zh")
    assert code == 400 and "不在内置目录中" in json.loads(body)["error"]


def test_methods_and_headers(client):
    r = client.delete("/api/estimate?model=llama-3-8b")
    assert r.status_code == 405 and "DELETE" in r.json()["error"] and "GET" in r.headers["allow"]
    r = client.post("/")
    assert r.status_code == 405 and r.json()["error"]
    r = client.head("/api/estimate?model=llama-3-8b")
    assert r.status_code == 200
    r = client.get("/api/estimate?model=llama-3-8b")
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get("/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert client.get("/api/estimate/").status_code == 404  # no redirects


def test_upload_a_config(client):
    r = client.post("/api/estimate?task=finetune&method=lora", content=json.dumps(LLAMA_CONFIG))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["model"]["source"] == "config" and d["model"]["origin"] == "config.json (upload)"
    direct = client.get("/api/estimate?model=llama-3-8b&task=finetune&method=lora").json()
    assert d["total_bytes"] == direct["total_bytes"]
    r = client.post("/api/fit?gpu=rtx-4090", content=json.dumps(LLAMA_CONFIG))
    assert r.status_code == 200 and r.json()["schema"] == "vramscope.fit/1"


@pytest.mark.parametrize("body, status, words", [
    (b"x" * ((1 << 20) + 1), 413, "1 MiB"),
    (b"{not json", 400, "not valid JSON"),
    (b"[" * 200_000, 400, "objects and arrays"),
    (b"[" * 50 + b"]" * 50, 400, "levels deep"),
    (b'{"model_type": "llama", "hidden_size": NaN}', 400, "not valid JSON"),
    (b'{"model_type": "llama", "hidden_size": 1e999}', 400, "not valid JSON"),
    (b'{"model_type": "llama", "hidden_size": 1' + b"0" * 5000 + b"}", 400, "not valid JSON"),
    (b"\xff\xfe{}", 400, "UTF-16"),
    (b"{\xc3\x28}", 400, "not UTF-8"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"model_type": "no_such_family"}', 400, "not supported"),
    (b'{"model_type": "llama"}', 400, ""),
])
def test_upload_hostile_bodies(client, body, status, words):
    r = client.post("/api/estimate", content=body)
    assert r.status_code == status and words in r.json()["error"]


def test_upload_with_a_model_name_is_ambiguous(client):
    r = client.post("/api/estimate?model=llama-3-8b", content=json.dumps(LLAMA_CONFIG))
    assert r.status_code == 400 and "not both" in r.json()["error"]


def test_declared_body_too_large_is_refused_unread(client):
    r = client.post("/api/estimate", content=b"{}", headers={"Content-Length": str(10 << 20)})
    assert r.status_code == 413


def test_serve_without_the_web_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    rc, out, err = run_cli(["serve", "--port", "0"])
    assert rc == 2 and err.strip() == "vramscope: error: serve: needs the web extra; install it with: pip install " \
                                      "'vramscope[web]'"


def test_the_cli_does_not_import_the_web_stack():
    code = ("import sys, vramscope.cli, vramscope.serve; vramscope.cli.main(['estimate', 'llama-3-8b', '--json']); "
            "bad = [m for m in ('starlette', 'uvicorn', 'anyio', 'h11') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-500:]


@pytest.mark.timeout(60)
def test_the_real_server_answers():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    p = subprocess.Popen([sys.executable, "-m", "vramscope", "serve", "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, p.stderr.read() if p.poll() is not None else "")
        base = f"http://127.0.0.1:{m.group(1)}"
        with urllib.request.urlopen(base + "/api/estimate?model=llama-3-8b", timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["schema"] == "vramscope.estimate/1"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/api/estimate?model=/etc/passwd", timeout=10)
        assert e.value.code == 400 and "never file paths" in json.loads(e.value.read())["error"]
    finally:
        p.kill()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()
