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


# ---------------------------------------------------------------- uploads: DeepSpeed, accelerate, GGUF headers

DS_ZERO3 = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4,
            "bf16": {"enabled": True}, "optimizer": {"type": "AdamW", "params": {"lr": "auto"}},
            "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu", "pin_memory": True},
                                  "overlap_comm": True, "stage3_prefetch_bucket_size": 5e7,
                                  "stage3_gather_16bit_weights_on_model_save": True}}
ACC_FSDP = ("compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nfsdp_config:\n"
            "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  fsdp_sharding_strategy: FULL_SHARD\n"
            "  fsdp_offload_params: false\n  fsdp_activation_checkpointing: true\n  fsdp_version: 2\n"
            "machine_rank: 0\nmixed_precision: bf16\nnum_machines: 1\nnum_processes: 4\nuse_cpu: false\n")
ACC_DS = ("compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\ndeepspeed_config:\n"
          "  gradient_accumulation_steps: 2\n  offload_optimizer_device: cpu\n  offload_param_device: none\n"
          "  zero3_init_flag: true\n  zero_stage: 3\nmixed_precision: bf16\nnum_machines: 1\nnum_processes: 8\n")
QUESTION = {"model": "llama-3-8b", "task": "finetune", "gpu": "h100"}


def _cli_json(argv):
    rc, out, err = run_cli([*argv, "--json"])
    assert rc == 0, err
    return json.loads(out)


def _same_numbers(api: dict, cli: dict) -> None:
    assert api["total_bytes"] == cli["total_bytes"] and api["components"] == cli["components"]
    assert api["workload"] == cli["workload"] and api["range_bytes"] == cli["range_bytes"]


@pytest.mark.parametrize("kind, text, flag, name, extra", [
    ("deepspeed", json.dumps(DS_ZERO3), "--deepspeed", "ds.json", {"num_gpus": "8"}),
    ("accelerate", ACC_FSDP, "--fsdp", "acc.yaml", {}),
    ("accelerate", ACC_DS, "--fsdp", "acc_ds.yaml", {}),
])
def test_uploaded_configs_give_the_clis_numbers(client, tmp_path, kind, text, flag, name, extra):
    """The body sets what the CLI's flag sets from the same file (the same reader): equal estimates."""
    (tmp_path / name).write_text(text)
    q = {**QUESTION, **extra}
    cli_args = ["estimate", "llama-3-8b", "--task", "finetune", "--gpu", "h100", flag, str(tmp_path / name)]
    cli_args += ["--gpus", extra["num_gpus"]] if "num_gpus" in extra else []
    r = client.post("/api/v1/estimate", params={**q, "upload": kind}, content=text.encode())
    assert r.status_code == 200, r.text
    _same_numbers(r.json(), _cli_json(cli_args))
    fit = client.post("/api/v1/fit", params={**q, "upload": kind}, content=text.encode()).json()
    cli_fit = _cli_json(["fit", *cli_args[1:]])
    for key in ("fits", "needed_bytes", "max_batch", "max_seq", "min_gpus", "total_bytes"):
        assert fit[key] == cli_fit[key], key
    assert [s["command"] for s in fit["suggestions"]] == [s["command"] for s in cli_fit["suggestions"]]


def test_the_page_shows_what_an_upload_set_and_ignored(client):
    for lang, words in (("en", "The uploaded DeepSpeed config (JSON) sets:"), ("zh", "上传的 DeepSpeed 配置（JSON） 设置了")):
        r = client.post("/api/v1/report", params={**QUESTION, "num_gpus": "8", "upload": "deepspeed", "lang": lang},
                        content=json.dumps(DS_ZERO3))
        html = r.json()["html"]
        line = re.search(r'<p class="vs-imported" data-kind="deepspeed">(.*?)</p>', html).group(1)
        assert words in line, line
        for field in ("parallelism=zero3", "offload=optimizer", "dtype=bf16", "batch=2", "grad_accum=4",
                      "zero_prefetch=50000000"):
            assert field in line
        for key in ("optimizer", "zero_optimization.overlap_comm", "zero_optimization.offload_optimizer.pin_memory",
                    "train_batch_size", "zero_optimization.stage3_gather_16bit_weights_on_model_save"):
            assert key in line  # ignored, by its dotted key
        assert "--" not in line  # the form's names, not flags
    html = client.post("/api/v1/report", params={**QUESTION, "upload": "accelerate"}, content=ACC_FSDP).json()["html"]
    line = re.search(r'data-kind="accelerate">(.*?)</p>', html).group(1)
    assert "parallelism=fsdp" in line and "num_gpus=4" in line and "grad_checkpointing=True" in line
    assert "fsdp_config.fsdp_auto_wrap_policy" in line and "use_cpu" in line and "machine_rank" in line


def test_an_upload_and_the_form_must_agree(client):
    r = client.post("/api/v1/estimate", params={**QUESTION, "batch": "4", "upload": "deepspeed"},
                    content=json.dumps(DS_ZERO3))
    assert r.status_code == 400 and r.json()["error"].startswith("batch:")
    assert "the uploaded DeepSpeed config" in r.json()["error"] and "--" not in r.json()["error"]
    r = client.post("/api/v1/estimate", params={**QUESTION, "batch": "2", "upload": "deepspeed"},
                    content=json.dumps(DS_ZERO3))
    assert r.status_code == 200  # the same value in both places is no conflict


@pytest.fixture(scope="module")
def llama3_gguf(tmp_path_factory):
    gguf_real = pytest.importorskip("gguf_real")
    return gguf_real.write_sparse(gguf_real.llama3_8b(),
                                 tmp_path_factory.mktemp("gguf-upload") / "Meta-Llama-3-8B-Q4_K_M.gguf")


def test_a_gguf_header_prefix_gives_the_clis_numbers(client, llama3_gguf):
    """What the page sends of a multi-GB GGUF (its first 32 MiB: Llama 3's 128,256-token, 280,147-merge header
    is 8.9 MB) is read by the same bounded reader as the file; the estimate is the CLI's for the file."""
    from vramscope.serve import GGUF_PREFIX

    size = llama3_gguf.stat().st_size
    assert size > 1 << 30
    with open(llama3_gguf, "rb") as f:
        prefix = f.read(GGUF_PREFIX)
    for engine in ("llama.cpp", "ollama"):
        r = client.post("/api/v1/estimate", params={"upload": "gguf", "engine": engine, "gpu": "rtx-4090",
                                                    "seq": "8192"}, content=prefix)
        assert r.status_code == 200, r.text
        cli = _cli_json(["estimate", str(llama3_gguf), "--engine", engine, "--gpu", "rtx-4090", "--seq", "8192"])
        _same_numbers(r.json(), cli)
        assert r.json()["model"]["params"] == cli["model"]["params"]
    html = client.post("/api/v1/report", params={"upload": "gguf", "engine": "llama.cpp", "gpu": "rtx-4090"},
                       content=prefix).json()["html"]
    assert re.search(r'data-kind="gguf">Read from the GGUF header in the file&#x27;s first 32 MiB: 40 tensors, type Q4_K_M', html)


def _gguf_with_tokens(n: int, length: int = 8) -> bytes:
    """A GGUF header whose token array alone is ``n`` strings of ``length`` bytes (then one tensor record)."""
    import struct

    key = b"tokenizer.ggml.tokens"
    out = [b"GGUF", struct.pack("<IQQ", 3, 1, 1), struct.pack("<Q", len(key)), key, struct.pack("<IIQ", 9, 8, n)]
    out.append((struct.pack("<Q", length) + b"t" * length) * n)
    name = b"token_embd.weight"
    out += [struct.pack("<Q", len(name)), name, struct.pack("<I", 2), struct.pack("<QQ", 64, 1000),
            struct.pack("<IQ", 0, 0)]
    return b"".join(out)


def test_a_header_longer_than_the_prefix_names_the_limit(client):
    from vramscope.serve import GGUF_PREFIX

    body = _gguf_with_tokens(3_000_000)[:GGUF_PREFIX]  # a 48 MB header: the page sends its first 32 MiB
    for lang, words in (("en", "longer than the first 32 MiB"), ("zh", "超过了读取的前 32 MiB")):
        r = client.post("/api/v1/estimate", params={"upload": "gguf", "lang": lang}, content=body)
        assert r.status_code == 400 and words in r.json()["error"], r.text
        assert "tokenizer.ggml.tokens" in r.json()["error"] and "vramscope estimate" in r.json()["error"]


@pytest.mark.parametrize("query, body, status, words", [
    ({"upload": "zip"}, b"{}", 400, "upload: 'zip' is not allowed; allowed: config, gguf, deepspeed, accelerate"),
    ({"upload": "gguf", "model": "llama-3-8b"}, b"GGUF", 400, "model: give either model="),
    ({"upload": "gguf"}, b"GGML" + b"\0" * 60, 400, "model.gguf (upload)"),
    ({"upload": "gguf"}, b"GGUF\x03\0\0\0", 400, "the GGUF header is longer than the first 8 bytes"),
    ({"upload": "gguf"}, b"\0" * ((32 << 20) + 1), 413, "larger than 32 MiB"),
    ({"upload": "deepspeed", **QUESTION}, b"\0" * 1_000_001, 413, "larger than 1 MB"),
    ({"upload": "accelerate", **QUESTION}, b"a: b\n" * 13108, 413, "larger than 64 KiB"),
    ({"upload": "config"}, b" " * ((1 << 20) + 1), 413, "larger than 1 MiB"),
    ({"upload": "deepspeed", **QUESTION}, b'{"zero_optimization": {"stage": 5}}', 400,
     "ds_config.json (upload): key 'zero_optimization.stage' has value '5'"),
    ({"upload": "deepspeed", **QUESTION}, b"[1]", 400, "ds_config.json (upload)"),
    ({"upload": "deepspeed", **QUESTION}, b'{"bf16": {"enabled": NaN}}', 400, "not valid JSON"),
    ({"upload": "accelerate", **QUESTION}, b"distributed_type: TPU\n", 400, "'distributed_type' has value 'TPU'"),
    ({"upload": "accelerate", **QUESTION}, b"a: &x [1]\nb: *x\n", 400, "aliases"),
    ({"upload": "accelerate", **QUESTION}, b"distributed_type: DEEPSPEED\ndeepspeed_config:\n"
     b"  deepspeed_config_file: /etc/ds.json\n", 400, "deepspeed_config.deepspeed_config_file"),
    ({"upload": "deepspeed"}, b"{}", 400, "model"),  # a config sets options: the model is still needed
])
def test_upload_kinds_refused_in_one_line(client, query, body, status, words):
    r = client.post("/api/v1/estimate", params=query, content=body)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert "\n" not in r.json()["error"] and "Traceback" not in r.json()["error"]


def test_a_declared_body_over_its_kinds_limit_is_refused_unread(client):
    r = client.post("/api/estimate?upload=accelerate", content=b"{}", headers={"Content-Length": str(70_000)})
    assert r.status_code == 413 and "64 KiB" in r.json()["error"]


def test_a_split_gguf_shard_is_refused(client):
    import struct

    def kv(key: bytes, vtype: int, value: bytes) -> bytes:
        return struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + value

    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv(b"split.count", 2, struct.pack("<H", 3)) + \
        kv(b"split.no", 2, struct.pack("<H", 0))
    r = client.post("/api/v1/estimate?upload=gguf", content=body)
    assert r.status_code == 400 and "one shard of a model split in 3 files" in r.json()["error"], r.text


# ---------------------------------------------------------------- suggestions in the page's terms

FLAGS = re.compile(r"(?<![\w-])--?[a-z][a-z-]*")


@pytest.mark.parametrize("query", [
    {"model": "llama-3-70b", "engine": "vllm", "gpu": "rtx-4090", "seq": "100000"},
    {"model": "llama-3-8b", "engine": "llama.cpp", "quant": "Q8_0", "gpu": "rtx-4060", "seq": "16384"},
    {"model": "llama-3-8b", "task": "finetune", "method": "full", "gpu": "rtx-4090"},
])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_suggestions_name_the_forms_fields_and_link_to_the_form(client, query, lang):
    """Each description names options as the form labels them (the field), never a flag; the command that
    reproduces it stays the CLI's; the link applies the change to the form's URL."""
    import html as html_mod
    import urllib.parse

    page = client.get("/api/v1/report", params={**query, "lang": lang}).json()["html"]
    items = re.findall(r'<li data-fits="[a-z]+">(.*?)</li>', page)
    assert items
    fit = client.get("/api/v1/fit", params={**query, "lang": lang}).json()
    assert len(items) == len(fit["suggestions"])
    for li, s in zip(items, fit["suggestions"]):
        desc = html_mod.unescape(li.split("<")[0])
        assert desc.startswith(s["description"]), (desc, s["description"])  # the JSON API: the same words
        assert not FLAGS.search(s["description"]), s["description"]
        cmd = html_mod.unescape(re.search(r"<code>(.*?)</code>", li).group(1))
        assert cmd == s["command"] and cmd.startswith("vramscope fit ")
        link = re.search(r'class="vs-apply" href="([^"]*)" data-apply="([^"]*)"', li)
        assert link, li
        target = dict(urllib.parse.parse_qsl(html_mod.unescape(link.group(1))[1:]))
        changes = json.loads(html_mod.unescape(link.group(2)))
        for k, v in changes.items():
            assert target.get(k, "") == v
        assert target["lang"] == lang and all(target.get(k) == v for k, v in query.items() if k not in changes)
        # the link's question is the suggestion's: fit needs what the suggestion says
        again = client.get("/api/v1/fit", params=target)
        assert again.status_code == 200 and again.json()["needed_bytes"] == s["total_bytes"], s


def test_the_clis_suggestions_still_name_flags():
    rc, out, err = run_cli(["fit", "llama-3-70b", "--engine", "vllm", "--gpu", "rtx-4090", "--seq", "100000"])
    assert rc == 0 and "(--max-num-seqs 64)" in out and "(--enforce-eager)" in out
    rc, out, err = run_cli(["fit", "llama-3-70b", "--engine", "llama.cpp", "--quant", "Q4_K_M", "--gpu", "rtx-4090"])
    assert rc == 0 and "(-ngl 45)" in out and "(-fa)" in out


@pytest.mark.parametrize("query, field", [({"model": "llama-3-8b", "gpu": "rtx-3060"}, "gpu"),
                                          ({"model": "llama-3-8b", "task": "finetune", "method": "lora",
                                            "lora_targets": "q_projj"}, "lora_targets")])
def test_errors_once_spelled_as_flags_name_the_field(client, query, field):
    for lang in ("en", "zh"):
        r = client.get("/api/v1/estimate", params={**query, "lang": lang})
        assert r.status_code == 400 and r.json()["error"].startswith(field + (":" if lang == "en" else "："))
        assert "--" not in r.json()["error"]
    rc, out, err = run_cli(["estimate", *[x for k, v in query.items() for x in ((v,) if k == "model" else
                                                                             (f"--{k.replace('_', '-')}", v))]])
    assert rc == 2 and f"--{field.replace('_', '-')}:" in err  # the command line: its flag
