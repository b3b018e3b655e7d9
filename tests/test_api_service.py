"""Everything around generation: model loading and /health, /metrics, the spec and /docs, errors
for unknown routes and methods, security headers, CORS, serving the front end, configuration."""

from __future__ import annotations

import logging
import os
import runpy
import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend import create_app
from backend.api.openai_compat import LOGPROBS_MAX
from backend.api.validation import BOUNDS, SEED_MAX, STOP_MAX_COUNT, TEXT_MAX_CHARS
from backend.config import ConfigError, available_cores, from_env

REPO = Path(__file__).resolve().parent.parent
PROMPT = "We propose a method to"


# --- model loading and /health ---


def test_health_reports_the_loaded_model(tiny_model_dir, tiny_engine, caplog):
    with caplog.at_level(logging.INFO):
        app = create_app({"TESTING": True, "MODEL_DIR": str(tiny_model_dir), "INTRA_OP_THREADS": 1})
    got = app.test_client().get("/health")
    assert got.status_code == 200
    body = got.get_json()
    assert body["status"] == "ok" and body["quantization"] == "int8"
    assert body["model"] == tiny_engine.info["name"] and body["parameters"] == tiny_engine.info["parameters"]
    assert body["load_seconds"] >= 0
    assert any("loaded model" in r.getMessage() and str(tiny_model_dir) in r.getMessage() for r in caplog.records)


def corrupt_copy(tiny_model_dir: Path, tmp_path: Path, name: str) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / name).write_bytes(b"\x00 not what this file should hold {")
    return broken


@pytest.mark.parametrize("damage", ["missing dir", "model.onnx", "config.json", "tokenizer.json"])
def test_unloadable_model_dir_starts_the_app_and_answers_503(tiny_model_dir, tmp_path, caplog, damage):
    model_dir = tmp_path / "nowhere" if damage == "missing dir" else corrupt_copy(tiny_model_dir, tmp_path, damage)
    with caplog.at_level(logging.ERROR):
        app = create_app({"TESTING": True, "MODEL_DIR": str(model_dir)})
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and str(model_dir) in errors[0]
    client = app.test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["status"] == "error" and health.get_json()["reason"]
    for path in ("/generate", "/generate/stream"):
        error = client.post(path, json={"text": PROMPT}).get_json()["error"]
        assert error["type"] == "unavailable" and health.get_json()["reason"] in error["message"]
    response = client.post("/v1/completions", json={"model": "any", "prompt": PROMPT})
    assert response.status_code == 503 and response.get_json()["error"]["type"] == "server_error"
    assert client.get("/v1/models").status_code == 503
    rejected = samples(client)[("autocomplete_rejections_total", (("reason", "model_unavailable"),))]
    assert rejected == 4  # /generate, /generate/stream, /v1/completions, /v1/models
    # Bad input is still the client's fault, and the documentation still works.
    assert client.post("/generate", json={"text": PROMPT, "n": 9}).status_code == 422
    assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200


# --- /metrics ---


def samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_requests_tokens_and_latency(client):
    # A response is counted when the server closes it (for a stream, after its last byte).
    with client.post("/generate", json={"text": PROMPT, "max_new_tokens": 5, "seed": 0, "n": 2}) as response:
        generated = response.get_json()
    with client.post("/generate/stream", json={"text": PROMPT, "max_new_tokens": 4, "seed": 0}) as response:
        response.get_data()
    client.post("/generate", json={"text": PROMPT, "top_p": 2}).close()
    client.get("/v1/no/such/page").close()
    got = samples(client)
    requests = "autocomplete_http_requests_total"
    assert got[(requests, (("endpoint", "/generate"), ("method", "POST"), ("status", "200")))] == 1
    assert got[(requests, (("endpoint", "/generate"), ("method", "POST"), ("status", "422")))] == 1
    assert got[(requests, (("endpoint", "/generate/stream"), ("method", "POST"), ("status", "200")))] == 1
    assert got[(requests, (("endpoint", "unmatched"), ("method", "GET"), ("status", "404")))] == 1
    assert got[("autocomplete_http_request_duration_seconds_count", (("endpoint", "/generate"),))] == 2
    assert got[("autocomplete_generated_tokens_total", ())] == generated["usage"]["completion_tokens"] + 4
    assert got[("autocomplete_time_per_token_seconds_count", ())] == 2
    assert got[("autocomplete_generations_in_flight", ())] == 0
    assert got[("autocomplete_generations_queued", ())] == 0


def test_each_app_has_its_own_registry(make_app):
    first, second = make_app().test_client(), make_app().test_client()
    first.post("/generate", json={"text": PROMPT, "max_new_tokens": 1})
    assert ("autocomplete_generated_tokens_total", ()) in samples(second)
    assert samples(second)[("autocomplete_generated_tokens_total", ())] == 0


# --- /openapi.json and /docs ---


def test_spec_bounds_are_the_enforced_bounds(client, tiny_engine):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert set(spec["paths"]) >= {"/generate", "/generate/stream", "/v1/completions", "/v1/models", "/health",
                                  "/metrics", "/openapi.json", "/docs"}
    schemas = spec["components"]["schemas"]
    fields = schemas["GenerateRequest"]["properties"]
    for name, bound in BOUNDS.items():
        low = "exclusiveMinimum" if bound.exclusive_minimum else "minimum"
        assert (fields[name][low], fields[name]["maximum"], fields[name]["default"]) == \
            (bound.minimum, bound.maximum, bound.default)
        assert fields[name]["type"] == ("integer" if bound.integer else "number")
    assert fields["text"]["maxLength"] == TEXT_MAX_CHARS and fields["stop"]["maxItems"] == STOP_MAX_COUNT
    assert fields["seed"]["maximum"] == SEED_MAX
    assert schemas["GenerateRequest"]["additionalProperties"] is False
    completion = schemas["CompletionRequest"]["properties"]
    assert completion["max_tokens"]["maximum"] == BOUNDS["max_new_tokens"].maximum
    assert completion["logprobs"]["maximum"] == LOGPROBS_MAX
    assert completion["model"]["enum"] == [tiny_engine.info["name"]]


def test_docs_page_lists_every_endpoint_and_bound_without_scripts(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for path in ("/generate", "/generate/stream", "/v1/completions", "/v1/models", "/health", "/metrics"):
        assert f"<code>{path}</code>" in page
    for name in BOUNDS:
        assert f"<code>{name}</code>" in page
    assert "&gt; 0; &lt;= 1" in page  # top_p's bound, as the spec states it
    assert "<script" not in page and "http://" not in page and "https://" not in page


# --- errors for routes and methods, and the catch-all ---


@pytest.mark.parametrize("method, path, status, allowed", [
    ("GET", "/nope", 404, None),
    ("GET", "/generate/nope", 404, None),
    ("GET", "/generate", 405, "OPTIONS, POST"),
    ("PUT", "/generate", 405, "OPTIONS, POST"),
    ("DELETE", "/generate/stream", 405, "OPTIONS, POST"),
    ("POST", "/health", 405, "GET, HEAD, OPTIONS"),
    ("POST", "/metrics", 405, "GET, HEAD, OPTIONS"),
    ("GET", "/v1/completions", 405, "OPTIONS, POST"),
    ("PATCH", "/v1/models", 405, "GET, HEAD, OPTIONS"),
])
def test_unknown_routes_and_wrong_methods_are_json(client, method, path, status, allowed):
    response = client.open(path, method=method)
    assert response.status_code == status and response.is_json
    error = response.get_json()["error"]
    if path.startswith("/v1"):
        assert error["code"] == ("not_found" if status == 404 else "method_not_allowed")
    else:
        assert error["type"] == ("not_found" if status == 404 else "method_not_allowed")
    if allowed:
        assert set(response.headers["Allow"].split(", ")) == set(allowed.split(", "))
        assert method in error["message"]


def test_unexpected_exception_is_a_bare_json_500(app, caplog):
    def explode():
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/explode", view_func=explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    assert response.status_code == 500
    assert response.get_json() == {"error": {"type": "internal", "message": "internal server error"}}
    assert "secret" not in response.get_data(as_text=True)
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


# --- security headers and CORS ---


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/health", None), ("GET", "/docs", None), ("GET", "/nope", None),
    ("POST", "/generate", {"text": PROMPT, "max_new_tokens": 1}), ("POST", "/generate", {"text": ""}),
    ("POST", "/generate/stream", {"text": PROMPT, "max_new_tokens": 1}),
])
def test_security_headers_on_every_response(client, method, path, body):
    with client.open(path, method=method, json=body) as response:
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        csp = headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
                          "connect-src 'self'", "frame-ancestors 'none'"):
            assert directive in csp
        assert "Access-Control-Allow-Origin" not in headers  # CORS is closed by default


@pytest.mark.parametrize("origins, origin, allowed", [
    ([], "http://localhost:5173", False),
    (["http://localhost:5173"], "http://localhost:5173", True),
    (["http://localhost:5173"], "http://evil.example", False),
    (["https://a.example", "https://b.example"], "https://b.example", True),
    (["*"], "http://anything.example", True),
])
def test_cors_only_for_listed_origins(make_app, origins, origin, allowed):
    client = make_app(CORS_ORIGINS=origins).test_client()
    response = client.post("/generate", json={"text": PROMPT, "max_new_tokens": 1}, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
    preflight = client.options("/generate", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    if allowed:
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
        assert "Origin" in preflight.headers["Vary"]
    else:
        assert "Access-Control-Allow-Origin" not in preflight.headers


# --- the front end ---


@pytest.fixture
def frontend_client(make_app, tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    (dist / "assets" / "index-3f2a.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("not for the web")
    return make_app(FRONTEND_DIR=str(dist)).test_client()


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.parametrize("path, headers, status, expect", [
    ("/", {}, 200, "index"),
    ("/assets/index-3f2a.js", {}, 200, "asset"),
    ("/editor", HTML, 200, "index"),  # a client-side route, navigated to by a browser
    ("/papers/42/edit", HTML, 200, "index"),
    ("/editor", {"Accept": "application/json"}, 404, "json"),
    ("/assets/missing.js", HTML, 404, "json"),
    ("/v1/unknown", HTML, 404, "json"),
    ("/generate/unknown", HTML, 404, "json"),
    ("/../secret.txt", HTML, 404, "json"),
    ("/%2e%2e/secret.txt", {}, 404, "json"),
])
def test_frontend_files_and_spa_fallback(frontend_client, path, headers, status, expect):
    response = frontend_client.get(path, headers=headers)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert "not for the web" not in body
    if expect == "index":
        assert "<div id=root>" in body and response.headers["Cache-Control"] == "no-cache"
    elif expect == "asset":
        assert body == "console.log('app')" and "immutable" in response.headers["Cache-Control"]
    else:
        error = response.get_json()["error"]
        assert (error["code"] if path.startswith("/v1") else error["type"]) == "not_found"


def test_root_without_a_build_says_how_to_build(client):
    response = client.get("/")
    assert response.status_code == 404 and "make frontend" in response.get_json()["error"]["message"]


# --- configuration ---


def test_env_defaults():
    config = from_env({})
    assert config["MODEL_DIR"] == str(REPO / "models" / "distilgpt2-arxiv")
    assert config["FRONTEND_DIR"] == str(REPO / "frontend" / "dist")
    assert (config["GENERATION_SLOTS"], config["QUEUE_SIZE"], config["MAX_CONTENT_LENGTH"]) == (1, 4, 256 * 1024)
    assert config["INTRA_OP_THREADS"] == available_cores() and config["CORS_ORIGINS"] == []


def test_env_values_are_read():
    config = from_env({"AUTOCOMPLETE_MODEL_DIR": "/m", "AUTOCOMPLETE_INTRA_OP_THREADS": "3",
                       "AUTOCOMPLETE_GENERATION_SLOTS": "2", "AUTOCOMPLETE_QUEUE_SIZE": "0",
                       "AUTOCOMPLETE_MAX_BODY_BYTES": "1000", "AUTOCOMPLETE_FRONTEND_DIR": "/f",
                       "AUTOCOMPLETE_CORS_ORIGINS": " http://a.example/ ,https://b.example,, "})
    assert (config["MODEL_DIR"], config["INTRA_OP_THREADS"], config["GENERATION_SLOTS"], config["QUEUE_SIZE"],
            config["MAX_CONTENT_LENGTH"], config["FRONTEND_DIR"]) == ("/m", 3, 2, 0, 1000, "/f")
    assert config["CORS_ORIGINS"] == ["http://a.example", "https://b.example"]


@pytest.mark.parametrize("name, value, words", [
    ("AUTOCOMPLETE_GENERATION_SLOTS", "0", "AUTOCOMPLETE_GENERATION_SLOTS must be >= 1, got 0"),
    ("AUTOCOMPLETE_QUEUE_SIZE", "-1", "AUTOCOMPLETE_QUEUE_SIZE must be >= 0, got -1"),
    ("AUTOCOMPLETE_MAX_BODY_BYTES", "256KiB", "AUTOCOMPLETE_MAX_BODY_BYTES must be an integer, got '256KiB'"),
    ("AUTOCOMPLETE_INTRA_OP_THREADS", "two", "AUTOCOMPLETE_INTRA_OP_THREADS must be an integer"),
])
def test_bad_env_values_stop_the_app_naming_the_variable(name, value, words):
    with pytest.raises(ConfigError, match=words):
        from_env({name: value})


@pytest.mark.parametrize("env, workers, intra_op", [
    ({}, 1, available_cores()),
    ({"AUTOCOMPLETE_WORKERS": "2"}, 2, max(1, available_cores() // 2)),
    ({"AUTOCOMPLETE_INTRA_OP_THREADS": "64"}, 1, available_cores()),  # clamped to the cores
    ({"AUTOCOMPLETE_WORKERS": "3", "AUTOCOMPLETE_INTRA_OP_THREADS": "1"}, 3, 1),
])
def test_gunicorn_config_keeps_threads_within_the_cores(monkeypatch, tmp_path, env, workers, intra_op):
    for name in ("AUTOCOMPLETE_WORKERS", "AUTOCOMPLETE_INTRA_OP_THREADS", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOCOMPLETE_INTRA_OP_THREADS", env.get("AUTOCOMPLETE_INTRA_OP_THREADS", ""))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # restored after the test
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(REPO / "backend" / "gunicorn.conf.py"))
    assert settings["bind"] == "127.0.0.1:8000" and settings["worker_class"] == "gthread"
    assert settings["workers"] == workers and settings["preload_app"] is False
    assert settings["graceful_timeout"] == settings["timeout"]
    assert int(os.environ["AUTOCOMPLETE_INTRA_OP_THREADS"]) == intra_op
