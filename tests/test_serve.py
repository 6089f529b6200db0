"""The web page and JSON API, on a server the test starts on a loopback port."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from vramscope.serve import make_server


@pytest.fixture(scope="module")
def base_url():
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_api_estimate(base_url):
    code, body = get(base_url + "/api/estimate?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090")
    assert code == 200
    d = json.loads(body)
    assert d["schema"] == "vramscope.estimate/1" and d["model"]["trainable_params"] == 41_943_040
    assert d["gpus"][0]["name"].endswith("4090")


def test_api_fit_and_errors(base_url):
    code, body = get(base_url + "/api/fit?model=llama-3-70b&gpu=rtx-4090")
    assert code == 200 and json.loads(body)["schema"] == "vramscope.fit/1"
    code, body = get(base_url + "/api/estimate?model=llama-3-8b&batch=0")
    assert code == 400 and "--batch" in json.loads(body)["error"]
    code, body = get(base_url + "/api/estimate?model=no-such-model")
    assert code == 400 and "not in the catalog" in json.loads(body)["error"]
    code, _ = get(base_url + "/api/estimate?" + "x=" + "a" * 5000)
    assert code == 400
    assert get(base_url + "/nope")[0] == 404


def test_page_in_both_languages(base_url):
    code, body = get(base_url + "/?model=qwen2.5-7b&gpu=rtx-4090")
    assert code == 200 and "total (peak)" in body and "<form" in body
    code, body = get(base_url + "/?model=qwen2.5-7b&lang=zh")
    assert code == 200 and "合计（峰值）" in body
    code, body = get(base_url + "/?model=%3Cscript%3E")
    assert "<script>" not in body


def test_api_multi_gpu_and_recipe_options(base_url):
    code, body = get(base_url + "/api/estimate?model=llama-3-8b&task=finetune&num_gpus=16&tp=2&nodes=2"
                                "&fsdp_sharding=hybrid&ce_chunks=8&activation_offload=1&grad_checkpointing=on")
    assert code == 200
    d = json.loads(body)
    w = d["workload"]
    assert (w["tp"], w["nodes"], w["fsdp_sharding"], w["ce_chunks"], w["activation_offload"]) == (2, 2, "hybrid", 8,
                                                                                                 True)
    assert d["engine"]["parallel"]["dp"] == 8
