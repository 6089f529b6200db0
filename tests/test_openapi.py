"""The JSON API's OpenAPI schema: generated from the option table, served at /api/v1/openapi.json, and fuzzed with
schemathesis (a bounded number of generated requests per operation; 0 server errors, every answer as documented).

The fuzzing is skipped, with the reason, when schemathesis is not installed (it is in the ``test`` extra)."""

import json

import pytest
from hypothesis import HealthCheck, settings

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from vramscope.options import table  # noqa: E402
from vramscope.serve import PARAMS, Options, create_app  # noqa: E402
from vramscope.web import choices_of, form_rows, openapi  # noqa: E402

APP = create_app(Options())


@pytest.fixture(scope="module")
def client():
    return TestClient(APP, raise_server_exceptions=False)


def test_schema_is_the_option_table(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.json() == json.loads(json.dumps(openapi()))
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    params = {p["name"]: p for p in doc["paths"]["/api/v1/estimate"]["get"]["parameters"]}
    assert set(params) == set(PARAMS) - {"upload"}  # exactly what the server accepts without a body
    post = {p["name"]: p for p in doc["paths"]["/api/v1/estimate"]["post"]["parameters"]}
    assert set(post) == set(PARAMS) and post["upload"]["schema"]["enum"] == ["config", "gguf", "deepspeed", "accelerate"]
    for o in form_rows():
        s = params[o.field]["schema"]
        assert params[o.field]["description"].startswith(o.help("en", "web")), o.field
        if o.kind == "int":
            assert s["type"] == "integer" and s.get("minimum") == o.lo and s.get("maximum") == o.hi, o.field
        if o.choices:
            assert s["enum"] == list(o.choices), o.field
    from vramscope.engines.base import ENGINE_NAMES

    assert params["engine"]["schema"]["enum"] == list(ENGINE_NAMES) and "vllm" in ENGINE_NAMES
    assert "adamw-8bit" in params["optimizer"]["schema"]["enum"]  # a choice kept by the module that owns it


def test_every_choice_the_schema_lists_is_accepted(client):
    """Each enum value of the schema is a value the row reads (no drift between the schema and the reader)."""
    for o in form_rows():
        for value in choices_of(o.field):
            table()[o.field].read(value)


def test_versioned_and_unversioned_paths_agree(client):
    q = "?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090"
    for name in ("estimate", "fit"):
        a, b = client.get(f"/api/{name}{q}"), client.get(f"/api/v1/{name}{q}")
        assert a.status_code == b.status_code == 200 and a.json() == b.json()
    r = client.get("/api/v1/estimate?model=llama-3-8b&bacth=4")
    assert r.status_code == 400 and "did you mean: batch" in r.json()["error"]


def test_catalog_endpoints(client):
    r = client.get("/api/v1/models?q=qwen2.5 7b")
    models = r.json()["models"]
    assert r.status_code == 200 and any(m["id"] == "Qwen/Qwen2.5-7B" for m in models)
    assert all(m["params"] > 0 for m in models)
    r = client.get("/api/v1/gpus?q=4090")
    gpus = r.json()["gpus"]
    from vramscope.gpus import find_gpu

    want = find_gpu("rtx-4090")
    assert [(g["memory_bytes"], g["usable_bytes"]) for g in gpus if g["id"] == "rtx-4090"] == [
        (want.memory_bytes, want.usable_bytes)]
    assert client.get("/api/models").json() == client.get("/api/v1/models").json()
    r = client.get("/api/v1/gpus?query=4090")
    assert r.status_code == 400 and "q" in r.json()["error"]


def test_report_is_the_pages_answer(client):
    r = client.get("/api/v1/report?model=llama-3-8b&gpu=rtx-4090&lang=zh")
    d = r.json()
    assert r.status_code == 200 and d["schema"] == "vramscope.report/1"
    assert "<svg" in d["html"] and "合计（峰值）" in d["html"]
    page = client.get("/?model=llama-3-8b&gpu=rtx-4090&lang=zh").text
    assert d["html"] in page


schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
# the fuzzing phase only (generated cases, bounded below): the coverage phase's boundary cases for ~75 parameters
# take minutes of CI time; the boundaries are checked by test_hostile_serve's fuzz and test_edge_queries
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}})
SCHEMA = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP, config=CONFIG)
CALLS: dict = {}


@SCHEMA.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_the_schema(case):
    response = case.call()
    CALLS[response.status_code] = CALLS.get(response.status_code, 0) + 1
    assert response.status_code < 500, (case.path, case.query, response.text[:300])
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])


def test_fuzz_tally():
    """Runs after the fuzzing: it sent requests, and none got a 5xx."""
    if not CALLS:
        pytest.skip("the fuzz test did not run (deselected)")
    assert all(code < 500 for code in CALLS), CALLS
    print("\nschemathesis statuses:", dict(sorted(CALLS.items())))


def test_the_whole_form_fits_the_query_limits(client):
    """The page without its script submits every control, blank or not: that query is within the limits."""
    import urllib.parse

    from vramscope.serve import MAX_FIELDS, MAX_QUERY, PAGE_PARAMS

    q = urllib.parse.urlencode({p: "" for p in PAGE_PARAMS} | {"model": "llama-3-8b", "lang": "en"})
    assert len(q.encode()) < MAX_QUERY and len(PARAMS) <= MAX_FIELDS
    r = client.get("/?" + q)
    assert r.status_code == 200 and 'id="vs-total"' in r.text
    assert client.get("/?upload=gguf").status_code == 400  # the page's form sends no body: upload= is refused
