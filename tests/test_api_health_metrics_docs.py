"""The API's operational endpoints: model loading and /health (including an unloadable model
directory, which starts the app and answers 503), /metrics, and the spec and /docs."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend import create_app
from backend.api.openai_validation import LOGPROBS_MAX
from backend.generation_contract import NUMBERS, SEED_MAX, STOP_MAX_COUNT, TEXT_MAX_CHARS, bounds

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
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


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
    assert set(spec["paths"]) >= {
        "/generate",
        "/generate/stream",
        "/v1/completions",
        "/v1/models",
        "/health",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
    schemas = spec["components"]["schemas"]
    fields = schemas["GenerateRequest"]["properties"]
    for name, bound in bounds(tiny_engine.info["vocab_size"]).items():
        low = "exclusiveMinimum" if bound.exclusive_minimum else "minimum"
        assert (fields[name][low], fields[name]["maximum"], fields[name]["default"]) == (
            bound.minimum,
            bound.maximum,
            bound.default,
        )
        assert fields[name]["type"] == ("integer" if bound.integer else "number")
    assert fields["text"]["maxLength"] == TEXT_MAX_CHARS and fields["stop"]["maxItems"] == STOP_MAX_COUNT
    assert fields["seed"]["maximum"] == SEED_MAX
    assert schemas["GenerateRequest"]["additionalProperties"] is False
    completion = schemas["CompletionRequest"]["properties"]
    assert completion["max_tokens"]["maximum"] == NUMBERS["max_new_tokens"].maximum
    assert completion["logprobs"]["maximum"] == LOGPROBS_MAX
    assert completion["model"]["enum"] == [tiny_engine.info["name"]]


def test_docs_page_lists_every_endpoint_and_bound_without_scripts(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for path in ("/generate", "/generate/stream", "/v1/completions", "/v1/models", "/health", "/metrics"):
        assert f"<code>{path}</code>" in page
    for name in NUMBERS:
        assert f"<code>{name}</code>" in page
    assert "&gt; 0; &lt;= 1" in page  # top_p's bound, as the spec states it
    assert "<script" not in page and "http://" not in page and "https://" not in page
