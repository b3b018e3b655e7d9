"""The OpenAPI 3.1 description of the service, as plain data: its paths, and the document.

Served at /openapi.json and rendered at /docs; schemathesis tests the running app against it.
The schemas the paths refer to (built from the generation contract, so the spec and the server
agree by construction) live in openapi_schemas.py. When the model is loaded, `model` in
/v1/completions is an enum of its one name.
"""

from __future__ import annotations

from collections.abc import Mapping

from backend.api.openapi_schemas import ref, schemas

JSON = "application/json"
SSE = "text/event-stream"


def response(description: str, schema: dict | None = None, media: str = JSON, headers: dict | None = None) -> dict:
    out: dict = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}


def errors(schema_name: str, *statuses: int) -> dict:
    descriptions = {
        400: "Malformed JSON, or a body that is not an object (OpenAI API: also invalid fields).",
        404: "Unknown model.",
        413: "Body larger than AUTOCOMPLETE_MAX_BODY_BYTES.",
        415: "Content-Type is not application/json.",
        422: "A field is unknown, missing, of the wrong type or out of its bound; `field` names it.",
        429: "Every generation slot is busy and the wait queue is full.",
        503: "The model is not loaded.",
    }
    return {
        str(s): response(descriptions[s], ref(schema_name), headers=RETRY_AFTER if s == 429 else None) for s in statuses
    }


def generation_operation(summary: str, description: str, ok: dict) -> dict:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("GenerateRequest")}}},
            "responses": {"200": ok, **errors("Error", 400, 413, 415, 422, 429, 503)},
        }
    }


def generation_paths() -> dict:
    """/generate and /generate/stream: the service's own API."""
    # OpenAPI 3.1 reads an event stream's schema as the schema of each event, parsed into its
    # fields; `data` holds one JSON document.
    json_text = {"type": "string", "contentMediaType": JSON}
    token_events = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"enum": ["token", "done", "error"]}, "data": json_text},
    }
    return {
        "/generate": generation_operation(
            "Complete the text",
            "Generate up to n completions of `text` and return them whole.",
            response("The completions.", ref("GenerateResponse")),
        ),
        "/generate/stream": generation_operation(
            "Complete the text, streaming tokens",
            "Server-Sent Events: `event: token` with data {index, text, logprob} for every token, then one "
            "`event: done` with {completions: [{finish_reason, text}], usage, truncated, seed, timings, "
            "model}. An error after the stream started is `event: error` with data {error: {...}}.",
            response("An event stream.", token_events, SSE),
        ),
    }


def openai_paths() -> dict:
    """/v1/completions and /v1/models: the OpenAI-compatible subset."""
    openai_chunks = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "string", "description": "A JSON chunk, or [DONE] last."}},
    }
    return {
        "/v1/completions": {
            "post": {
                "summary": "OpenAI-compatible completions",
                "description": "The completions subset of OpenAI's API; stream=true sends `data: {chunk}` "
                "events and a final `data: [DONE]`.",
                "requestBody": {"required": True, "content": {JSON: {"schema": ref("CompletionRequest")}}},
                "responses": {
                    "200": {
                        "description": "The completion (or its chunks when streaming).",
                        "content": {JSON: {"schema": ref("CompletionResponse")}, SSE: {"schema": openai_chunks}},
                    },
                    **errors("OpenAIError", 400, 404, 413, 415, 429, 503),
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The served model, OpenAI-style",
                "responses": {"200": response("One model.", ref("ModelList")), **errors("OpenAIError", 503)},
            }
        },
        "/v1/models/{model_id}": {
            "get": {
                "summary": "One model by id",
                "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": response("The model.", ref("Model")), **errors("OpenAIError", 404, 503)},
            }
        },
    }


def operations_paths() -> dict:
    """/health, /metrics, /openapi.json and /docs: what operators and tools read."""
    return {
        "/health": {
            "get": {
                "summary": "Readiness",
                "responses": {
                    "200": response("The model is loaded.", ref("Health")),
                    "503": response("The model failed to load; `reason` says why.", ref("HealthError")),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": response("Prometheus text format.", {"type": "string"}, "text/plain")},
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": response("OpenAPI 3.1.", {"type": "object"})}}
        },
        "/docs": {
            "get": {
                "summary": "This document as a web page",
                "responses": {"200": response("HTML.", {"type": "string"}, "text/html")},
            }
        },
    }


def build_spec(
    model_name: str | None = None, vocab_size: int | None = None, defaults: Mapping[str, float] | None = None
) -> dict:
    """The whole OpenAPI document; `model_name` (when loaded) pins /v1/completions' model field,
    `vocab_size` is top_k's maximum (the served model's vocabulary; unbounded when none is loaded)
    and `defaults` (its generation_config.json's) replace the contract's in GenerateRequest."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "abstract-autocomplete",
            "version": "1.0.0",
            "description": "Completions for machine-learning paper abstracts from a small GPT-2 model.",
        },
        "paths": {**generation_paths(), **openai_paths(), **operations_paths()},
        "components": {"schemas": schemas(model_name, vocab_size, defaults)},
    }
