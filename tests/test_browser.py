"""The page in a real browser: Playwright driving Debian's Chromium against the real server on 127.0.0.1.

Skipped (with the reason) when the ``playwright`` package or a ``chromium`` binary is absent, so a bare checkout
passes; ``.ci/run`` installs both, so they run in CI. Screenshots at desktop and phone widths are written under a
temporary folder (``VRAMSCOPE_SCREENSHOTS`` names another) and their paths printed.

Each number the page shows is checked against the JSON API's answer for the same question (the API is tested
against the estimator elsewhere), and each control against its row of the option table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
CHROMIUM = os.environ.get("VRAMSCOPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no chromium binary (apt-get install -y chromium; .ci/run does)", allow_module_level=True)

from vramscope.web import form_rows  # noqa: E402

LLAMA_CONFIG = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                "torch_dtype": "bfloat16", "_name_or_path": "my-uploaded-llama"}
TIMEOUT = 15_000  # ms: a hang guard, not a timed assertion


@pytest.fixture(scope="module")
def base():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    p = subprocess.Popen([sys.executable, "-m", "vramscope", "serve", "--host", "127.0.0.1", "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, p.stderr.read() if p.poll() is not None else "")
        yield f"http://127.0.0.1:{m.group(1)}"
    finally:
        p.kill()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    where = os.environ.get("VRAMSCOPE_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def page_of(browser, **context):
    ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a 400 answer is the error case's own (the browser logs it); anything else is a fault of the page
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 400" not in m.text
            else None)
    try:
        yield page
        assert errors == [], errors  # no script error, no CSP refusal
    finally:
        ctx.close()


def api(base: str, path: str, query: dict) -> dict:
    with urllib.request.urlopen(base + path + "?" + urllib.parse.urlencode(query), timeout=30) as r:
        return json.loads(r.read())


def wait_for_answer(page, text: str) -> None:
    """Until the answer's heading shows ``text`` and no update is in flight."""
    page.wait_for_function("t => { const r = document.getElementById('vs-result'); const h = r.querySelector('h2, "
                           ".vs-err'); return h && h.textContent.includes(t) && !r.hasAttribute('aria-busy'); }",
                           arg=text)


def shot(page, shots: Path, name: str, full: bool = True) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    print(f"screenshot: {path}")
    return path


def test_load_every_option_has_its_control(browser, base, shots):
    with page_of(browser) as page:
        page.goto(base + "/")
        assert page.title().startswith("vramscope")
        for o in form_rows():  # the form is the option table: one control per web row, labelled
            control = page.locator(f"#f-{o.field}")
            assert control.count() == 1, o.field
            assert page.locator(f"label[for='f-{o.field}']").count() == 1, o.field
            assert control.get_attribute("aria-describedby") == f"h-{o.field}", o.field
        seq = page.locator("#f-seq")
        assert seq.get_attribute("min") == "1" and seq.get_attribute("type") == "number"
        assert page.locator("#f-task option").all_inner_texts()[1:] == ["Inference (inference)",
                                                                        "Fine-tuning (finetune)", "Pretraining (pretrain)"]
        # the first visit answers the example question: llama-3-8b on an RTX 4090
        want = api(base, "/api/v1/estimate", {"model": "llama-3-8b", "gpu": "rtx-4090"})
        assert int(page.locator("#vs-total").get_attribute("data-bytes")) == want["total_bytes"]
        assert page.locator("#vs-bars svg rect").count() >= 2 and page.locator("#vs-gauges svg path").count() >= 2
        shot(page, shots, "desktop-en")


def test_choose_model_and_gpus_change_engine_and_context(browser, base, shots):
    with page_of(browser) as page:
        page.goto(base + "/")
        page.fill("#f-model", "qwen2.5-7b")
        page.fill("#f-gpu", "rtx-4090,a100-80gb")
        wait_for_answer(page, "Qwen")
        # the answer for both GPUs (an earlier answer, for the form before the GPU field was filled, may show first)
        page.wait_for_function("() => document.querySelectorAll('.vs-verdict').length === 2")
        assert page.locator(".vs-verdict").count() == 2
        assert "model=qwen2.5-7b" in page.url and "gpu=rtx-4090%2Ca100-80gb" in page.url  # the state is the URL
        # the engine's own options appear with it; training options stay hidden for inference
        assert page.locator("#f-gpu_memory_utilization").is_hidden()
        page.select_option("#f-engine", "vllm")
        page.locator("#f-gpu_memory_utilization").wait_for(state="visible")
        assert page.locator("#f-lora_rank").is_hidden() and page.locator("#f-n_gpu_layers").is_hidden()
        page.select_option("#f-engine", "llama.cpp")  # every engine's rows follow it (owner = the engine)
        page.locator("#f-n_gpu_layers").wait_for(state="visible")
        assert page.locator("#f-gpu_memory_utilization").is_hidden()
        page.select_option("#f-engine", "vllm")
        page.locator("#f-gpu_memory_utilization").wait_for(state="visible")
        page.fill("#f-seq", "16384")
        page.wait_for_function("() => location.search.includes('seq=16384') && "
                               "!document.getElementById('vs-result').hasAttribute('aria-busy')")
        page.wait_for_function("() => document.querySelector('#vs-result p') !== null")
        query = {"model": "qwen2.5-7b", "gpu": "rtx-4090,a100-80gb", "engine": "vllm", "seq": "16384"}
        want = api(base, "/api/v1/estimate", query)
        page.wait_for_function("b => { const t = document.getElementById('vs-total'); return t && "
                               "t.dataset.bytes === String(b); }", arg=want["total_bytes"])
        # the chart marks the largest context that fits, the number `fit` gives
        fit = api(base, "/api/v1/fit", {**query, "gpu": "rtx-4090"})
        marks = page.locator("#vs-curve-seq").get_attribute("data-largest").split(",")
        assert int(marks[0]) == fit["max_seq"]
        assert page.locator("#vs-curve-seq svg polyline").count() == 1
        assert page.locator("#vs-curve-batch svg circle").count() >= 3
        # a reload of the URL gives the same page without the script having to run again
        page.reload()
        assert page.locator("#f-engine").input_value() == "vllm" and page.locator("#f-seq").input_value() == "16384"
        shot(page, shots, "desktop-vllm")


def test_fine_tune_that_does_not_fit_shows_suggestions(browser, base):
    with page_of(browser) as page:
        page.goto(base + "/?model=llama-3-8b&task=finetune&gpu=rtx-4090")
        items = page.locator(".vs-sugg li")
        want = api(base, "/api/v1/fit", {"model": "llama-3-8b", "task": "finetune", "gpu": "rtx-4090"})
        assert items.count() == len(want["suggestions"]) > 0
        assert want["suggestions"][0]["command"] in items.first.inner_text()
        assert page.locator("#vs-suggestions svg rect").count() == len(want["suggestions"]) + 1
        assert page.locator("#f-lora_rank").is_visible()  # training options shown for a training task


def test_switch_language_is_remembered(browser, base, shots):
    with page_of(browser) as page:
        page.goto(base + "/?model=qwen2.5-7b&gpu=rtx-4090")
        page.click("a[hreflang=zh]")
        page.wait_for_function("() => document.documentElement.lang === 'zh'")
        assert "模型" in page.locator("legend").first.inner_text()
        assert page.locator("#f-task option").all_inner_texts()[1] == "推理 (inference)"
        assert "合计（峰值）" in page.locator(".vs-table").inner_text()
        assert "model=qwen2.5-7b" in page.url  # the question survives the switch
        page.goto(base + "/")  # no lang= in the URL: the remembered choice wins
        page.wait_for_function("() => document.documentElement.lang === 'zh'")
        shot(page, shots, "desktop-zh")
        page.click("a[hreflang=en]")
        page.wait_for_function("() => document.documentElement.lang === 'en'")


FLAG = re.compile(r"(?<![\w\-.=/])--?[a-z][\w-]*")


def test_chinese_page_names_fields_not_flags(browser, base):
    """On the Chinese page the assumptions and every control's help name options as the form does
    (``method=freeze``, ``optimizer=adamw-fused``), before and after the script redraws the answer."""
    from vramscope.options import table

    flags = {f for o in table().values() for f in (*o.flags, o.negation, o.shown_as) if f}
    with page_of(browser) as page:
        page.goto(base + "/?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090&lang=zh")
        helps = page.locator("#vs-form small").all_text_contents()  # the hidden sections' too
        assert len(helps) >= 60 and "配合 method=freeze：冻结前 N 层" in helps
        notes = page.locator(".vs-assume li").all_inner_texts()
        assert any("optimizer=adamw-fused" in n for n in notes)  # the Trainer's fused AdamW, in the form's terms
        page.fill("#f-lora_rank", "64")  # the script redraws the answer (/api/report)
        page.wait_for_function("() => location.search.includes('lora_rank=64') && "
                               "!document.getElementById('vs-result').hasAttribute('aria-busy')")
        page.wait_for_function("() => [...document.querySelectorAll('.vs-assume li')].some("
                               "li => li.textContent.includes('64'))")
        notes += page.locator(".vs-assume li").all_inner_texts()
        assert [x for x in helps + notes if set(FLAG.findall(x)) & flags] == []


def test_phone_layout(browser, base, shots):
    with page_of(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                 device_scale_factor=2) as page:
        page.goto(base + "/?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, width  # nothing wider than the phone: no sideways scrolling
        form = page.locator("#vs-form").bounding_box()
        result = page.locator("#vs-result").bounding_box()
        assert result["y"] >= form["y"] + form["height"] - 1  # stacked, not side by side
        assert page.locator("#f-model").bounding_box()["width"] > 300
        shot(page, shots, "phone-en")
        shot(page, shots, "phone-en-top", full=False)
        page.locator("#vs-result h2").scroll_into_view_if_needed()
        shot(page, shots, "phone-en-answer", full=False)


def test_errors_in_the_forms_terms(browser, base):
    with page_of(browser) as page:
        page.goto(base + "/")
        page.fill("#f-batch", "0")
        alert = page.locator("#vs-result [role=alert]")
        alert.wait_for()
        assert "batch: 0 is out of range" in alert.inner_text()
    with page_of(browser, java_script_enabled=False) as page:  # the page without its script: a GET form
        page.goto(base + "/?model=llama-3-8b&engine=llama.cpp&method=lora")
        assert "method" in page.locator("[role=alert]").inner_text()
        assert "--" not in page.locator("[role=alert]").inner_text()  # no command-line flags on the web
        page.fill("#f-model", "mixtral-8x7b")
        page.fill("#f-gpu", "h100")
        page.select_option("#f-engine", "")
        page.select_option("#f-method", "")  # the person's correction: no LoRA for inference
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"model=mixtral-8x7b"))
        assert "Mixtral" in page.locator("#vs-result h2").inner_text()


def test_paste_a_config(browser, base):
    with page_of(browser) as page:
        page.goto(base + "/?gpu=rtx-4090&task=finetune&method=lora")
        page.click("summary:has-text('config.json')")
        page.fill("#vs-config", json.dumps(LLAMA_CONFIG))
        wait_for_answer(page, "my-uploaded-llama")
        direct = api(base, "/api/v1/estimate", {"model": "llama-3-8b", "task": "finetune", "method": "lora",
                                                "gpu": "rtx-4090"})
        assert int(page.locator("#vs-total").get_attribute("data-bytes")) == direct["total_bytes"]


# ---------------------------------------------------------------- uploads through the file input

DS_ZERO3 = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4,
            "bf16": {"enabled": True}, "optimizer": {"type": "AdamW", "params": {"lr": "auto"}},
            "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu", "pin_memory": True},
                                  "overlap_comm": True, "stage3_gather_16bit_weights_on_model_save": True}}
ACC_FSDP = ("compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nfsdp_config:\n"
            "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  fsdp_sharding_strategy: FULL_SHARD\n"
            "  fsdp_offload_params: false\n  fsdp_activation_checkpointing: true\n  fsdp_version: 2\n"
            "machine_rank: 0\nmixed_precision: bf16\nnum_machines: 1\nnum_processes: 4\nuse_cpu: false\n")


def cli_json(*argv: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "vramscope", *argv, "--json"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def open_upload(page) -> None:
    page.click("details[data-section=upload] summary")


def total_is(page, total: int) -> None:
    page.wait_for_function("b => { const t = document.getElementById('vs-total'); const r = "
                           "document.getElementById('vs-result'); return t && t.dataset.bytes === String(b) && "
                           "!r.hasAttribute('aria-busy'); }", arg=total)


def test_upload_a_deepspeed_zero3_config(browser, base, shots, tmp_path):
    path = tmp_path / "ds_config_zero3.json"
    path.write_text(json.dumps(DS_ZERO3, indent=2))
    cli = cli_json("estimate", "llama-3-8b", "--task", "finetune", "--gpus", "8", "--gpu", "h100",
                   "--deepspeed", str(path))
    with page_of(browser) as page:
        page.goto(base + "/?model=llama-3-8b&task=finetune&gpu=h100&num_gpus=8")
        open_upload(page)
        page.set_input_files("#vs-file", str(path))
        page.locator(".vs-imported[data-kind=deepspeed]").wait_for()
        total_is(page, cli["total_bytes"])  # the CLI's number for --deepspeed with the same file
        assert page.locator("#vs-upload-kind").input_value() == "deepspeed"  # told apart from a config.json
        line = page.locator(".vs-imported").inner_text()
        assert "parallelism=zero3" in line and "offload=optimizer" in line and "zero_optimization.overlap_comm" in line
        assert "model=llama-3-8b" in page.url and "upload" not in page.url  # the URL holds the form, not the file
        shot(page, shots, "desktop-upload-deepspeed", full=False)
        page.fill("#f-batch", "4")  # the form disagrees with the config: one line naming the field
        alert = page.locator("#vs-result [role=alert]")
        alert.wait_for()
        assert alert.inner_text().startswith("batch:") and "DeepSpeed config" in alert.inner_text()
        page.fill("#f-batch", "")
        total_is(page, cli["total_bytes"])
        page.click("#vs-upload-clear")  # without the config: the form's own question again
        total_is(page, api(base, "/api/v1/estimate", {"model": "llama-3-8b", "task": "finetune", "gpu": "h100",
                                                      "num_gpus": "8"})["total_bytes"])


def test_upload_an_accelerate_fsdp_config_in_chinese(browser, base, shots, tmp_path):
    path = tmp_path / "fsdp_config.yaml"
    path.write_text(ACC_FSDP)
    cli = cli_json("estimate", "llama-3-8b", "--task", "finetune", "--gpu", "a100-80gb", "--fsdp", str(path))
    with page_of(browser) as page:
        page.goto(base + "/?model=llama-3-8b&task=finetune&gpu=a100-80gb&lang=zh")
        open_upload(page)
        page.set_input_files("#vs-file", str(path))
        page.locator(".vs-imported[data-kind=accelerate]").wait_for()
        total_is(page, cli["total_bytes"])
        assert page.locator("#vs-upload-kind").input_value() == "accelerate"
        line = page.locator(".vs-imported").inner_text()
        assert "上传的 accelerate 配置" in line and "num_gpus=4" in line and "fsdp_config.fsdp_auto_wrap_policy" in line
        shot(page, shots, "desktop-upload-accelerate-zh", full=False)


@pytest.fixture(scope="module")
def llama3_gguf(tmp_path_factory):
    gguf_real = pytest.importorskip("gguf_real")
    return gguf_real.write_sparse(gguf_real.llama3_8b(),
                                 tmp_path_factory.mktemp("gguf-browser") / "Meta-Llama-3-8B-Instruct-Q4_K_M.gguf")


def test_upload_a_gguf_file_sends_only_its_header(browser, base, shots, llama3_gguf):
    """A 1.3 GB GGUF picked in the file input: the page posts its first 32 MiB (File.slice) and the answer is the
    CLI's for the whole file."""
    from vramscope.serve import GGUF_PREFIX

    cli = cli_json("estimate", str(llama3_gguf), "--engine", "llama.cpp", "--gpu", "rtx-4060")
    with page_of(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                 device_scale_factor=2) as page:
        page.goto(base + "/?engine=llama.cpp&gpu=rtx-4060")
        open_upload(page)
        page.set_input_files("#vs-file", str(llama3_gguf))
        page.locator(".vs-imported[data-kind=gguf]").wait_for()
        total_is(page, cli["total_bytes"])
        assert GGUF_PREFIX == 32 << 20 < llama3_gguf.stat().st_size
        assert page.locator("#vs-upload-kind").input_value() == "gguf"
        assert "the first 32.0 MiB of" in page.locator("#vs-upload-state").inner_text()
        # the server says how many bytes came: the slice, not the 1.3 GB file
        assert "file's first 32 MiB: 40 tensors, type Q4_K_M" in page.locator(".vs-imported").inner_text()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, width
        page.locator("details[data-section=upload]").scroll_into_view_if_needed()
        shot(page, shots, "phone-upload-gguf", full=False)
        page.locator(".vs-imported").scroll_into_view_if_needed()
        shot(page, shots, "phone-upload-gguf-answer", full=False)
    with page_of(browser) as page:  # a model name in the form: the file stands for the model while it is there
        page.goto(base + "/?model=llama-3-8b&engine=llama.cpp&gpu=rtx-4060")
        open_upload(page)
        page.set_input_files("#vs-file", str(llama3_gguf))
        total_is(page, cli["total_bytes"])
        assert page.locator("#f-model").is_disabled() and "model=" not in page.url
        shot(page, shots, "desktop-upload-gguf", full=False)
        page.click("#vs-upload-clear")
        total_is(page, api(base, "/api/v1/estimate", {"model": "llama-3-8b", "engine": "llama.cpp",
                                                      "gpu": "rtx-4060"})["total_bytes"])
        assert page.locator("#f-model").is_enabled() and "model=llama-3-8b" in page.url


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_apply_a_suggestion(browser, base, shots, lang):
    query = {"model": "llama-3-8b", "engine": "llama.cpp", "quant": "Q8_0", "gpu": "rtx-4060", "seq": "16384"}
    fit = api(base, "/api/v1/fit", {**query, "lang": lang})
    with page_of(browser) as page:
        page.goto(base + "/?" + urllib.parse.urlencode({**query, "lang": lang}))
        items = page.locator(".vs-sugg li")
        assert items.count() == len(fit["suggestions"])
        texts = items.all_inner_texts()
        for text, s in zip(texts, fit["suggestions"]):
            assert text.startswith(s["description"]) and s["command"] in text
            assert not re.search(r"(?<![\w-])--?[a-z]", text.split(s["command"])[0]), text  # fields, not flags
        path = shots / f"desktop-suggestions-{lang}.png"
        page.locator(".vs-sugg").screenshot(path=str(path))
        print(f"screenshot: {path}")
        ngl = next(i for i, s in enumerate(fit["suggestions"]) if s["change"] == "ngl")
        assert "n_gpu_layers=" in texts[ngl]
        page.locator(".vs-sugg li").nth(ngl).locator("a.vs-apply").click()
        want = fit["suggestions"][ngl]
        layers = re.search(r"--n-gpu-layers (\d+)", want["command"]).group(1)
        page.wait_for_function("n => location.search.includes('n_gpu_layers=' + n) && "
                               "!document.getElementById('vs-result').hasAttribute('aria-busy')", arg=layers)
        assert page.locator("#f-n_gpu_layers").input_value() == layers
        again = api(base, "/api/v1/fit", {**query, "n_gpu_layers": layers})
        assert again["needed_bytes"] == want["total_bytes"] and again["fits"] == want["fits"]
        if lang == "zh":
            shot(page, shots, "desktop-suggestion-applied-zh")
