"""The OpenAPI 3.1 description of the service, as plain data built from the generation contract.

Served at /openapi.json and rendered at /docs; schemathesis tests the running app against it.
Every bound is read from backend/generation_contract.py, whose tables validation.py enforces, so
the spec and the server agree by construction. When the model is loaded, `model` in
/v1/completions is an enum of its one name.
"""

from __future__ import annotations

from collections.abc import Mapping

from backend.api.errors import ERROR_TYPES
from backend.api.openai_validation import LOGPROBS_MAX, RENAMED, openai_bound
from backend.generation_contract import (
    LOGPROBS_DESCRIPTION,
    MODEL_DEFAULTABLE,
    SEED_DESCRIPTION,
    SEED_MAX,
    STOP_DESCRIPTION,
    STOP_MAX_CHARS,
    STOP_MAX_COUNT,
    TEXT_DESCRIPTION,
    TEXT_MAX_CHARS,
    Bound,
    bounds,
)

JSON = "application/json"
SSE = "text/event-stream"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def number_schema(bound: Bound, nullable: bool = False) -> dict:
    kind = "integer" if bound.integer else "number"
    schema = {"type": [kind, "null"] if nullable else kind, "default": bound.default, "description": bound.description}
    if bound.maximum is not None:
        schema["maximum"] = bound.maximum
    schema["exclusiveMinimum" if bound.exclusive_minimum else "minimum"] = bound.minimum
    return schema


TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": TEXT_MAX_CHARS,
    "pattern": r"\S",
    "description": TEXT_DESCRIPTION + " At least one non-whitespace character.",
}
STOP_ITEM = {"type": "string", "minLength": 1, "maxLength": STOP_MAX_CHARS}
STOP_LIST = {"type": "array", "items": STOP_ITEM, "maxItems": STOP_MAX_COUNT}
SEED = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": SEED_MAX,
    "default": None,
    "description": SEED_DESCRIPTION,
}
TIMINGS = {
    "type": "object",
    "required": ["prompt_ms", "per_token_ms", "total_ms"],
    "properties": {
        "prompt_ms": {"type": "number", "description": "Reading the prompt (first forward pass)."},
        "per_token_ms": {"type": "number", "description": "Mean time per generated token after the first."},
        "total_ms": {"type": "number"},
    },
}
INTEGER = {"type": "integer", "minimum": 0}


def obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties), **extra}


def health_schema(numbers: Mapping[str, Bound]) -> dict:
    return obj(
        {
            "status": {"const": "ok"},
            "model": {"type": "string"},
            "quantization": {"enum": ["int8", "fp32"]},
            "parameters": INTEGER,
            "load_seconds": {"type": "number"},
            "context_length": {
                **INTEGER,
                "description": "Tokens the model sees at once, its start-of-text token included.",
            },
            "vocab_size": {**INTEGER, "description": "Tokens in the model's vocabulary: top_k's maximum."},
            "generation_defaults": obj(
                {name: {"type": "integer" if numbers[name].integer else "number"} for name in MODEL_DEFAULTABLE},
                description="What /generate uses for a field a request leaves out: the contract's "
                "defaults, or the model's generation_config.json's.",
            ),
        }
    )


def generate_schemas(numbers: Mapping[str, Bound]) -> dict:
    """/generate's and /generate/stream's request, response and error."""
    generate_request = obj(
        {
            "text": TEXT,
            **{name: number_schema(b) for name, b in numbers.items()},
            "seed": SEED,
            "stop": {**STOP_LIST, "default": [], "description": STOP_DESCRIPTION},
            "logprobs": {"type": "boolean", "default": False, "description": LOGPROBS_DESCRIPTION},
        },
        ["text"],
        additionalProperties=False,
    )
    completion = obj(
        {
            "text": {"type": "string"},
            "finish_reason": {"enum": ["eos", "stop", "length"]},
            "tokens": {
                "type": "array",
                "description": "Only when logprobs was true.",
                "items": obj({"text": {"type": "string"}, "logprob": {"type": "number"}}),
            },
        },
        ["text", "finish_reason"],
    )
    usage = obj({"prompt_tokens": INTEGER, "completion_tokens": INTEGER})
    model = {"type": "string", "description": "The model that served the request."}
    generate_response = obj(
        {
            "completions": {"type": "array", "items": completion},
            "usage": usage,
            "truncated": {"type": "boolean", "description": "The prompt was cut to fit the context."},
            "seed": {"type": "integer", "description": "The seed used (drawn if none was given)."},
            "timings": TIMINGS,
            "model": model,
        }
    )
    error = obj(
        {
            "error": obj(
                {
                    "type": {"enum": sorted(set(ERROR_TYPES.values()))},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The offending field (validation only)."},
                },
                ["type", "message"],
            )
        }
    )
    return {"GenerateRequest": generate_request, "GenerateResponse": generate_response, "Error": error}


def completion_request_schema(model_name: str | None, vocab_size: int | None) -> dict:
    """/v1/completions' request: OpenAI's fields this server accepts, with its bounds."""
    model_field = {"type": "string", "description": "The served model's id, from GET /v1/models."}
    if model_name is not None:
        model_field["enum"] = [model_name]
    completion_request = obj(
        {
            "model": model_field,
            "prompt": {"oneOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1, "maxItems": 1}]},
            **{name: number_schema(openai_bound(name, vocab_size), nullable=True) for name in RENAMED},
            "stop": {"oneOf": [STOP_ITEM, STOP_LIST, {"type": "null"}], "description": STOP_DESCRIPTION},
            "seed": SEED,
            "stream": {"type": ["boolean", "null"], "default": False},
            "stream_options": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {"include_usage": {"type": "boolean"}},
            },
            "logprobs": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": LOGPROBS_MAX,
                "default": None,
                "description": "Any integer returns each token's log-probability (top_logprobs stays null).",
            },
            "user": {"type": ["string", "null"]},
        },
        ["model", "prompt"],
        additionalProperties=False,
    )
    return completion_request


def openai_schemas(model_name: str | None, vocab_size: int | None) -> dict:
    """/v1/completions' and /v1/models' request, responses and error, in OpenAI's shapes."""
    openai_error = obj(
        {
            "error": obj(
                {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                }
            )
        }
    )
    completion_request = completion_request_schema(model_name, vocab_size)
    openai_logprobs = {
        "oneOf": [
            {"type": "null"},
            obj(
                {
                    "tokens": {"type": "array", "items": {"type": "string"}},
                    "token_logprobs": {"type": "array", "items": {"type": "number"}},
                    "top_logprobs": {"type": "null"},
                    "text_offset": {"type": "array", "items": INTEGER},
                }
            ),
        ]
    }
    choice = obj(
        {
            "text": {"type": "string"},
            "index": INTEGER,
            "logprobs": openai_logprobs,
            "finish_reason": {"enum": ["stop", "length", None]},
        }
    )
    completion_response = obj(
        {
            "id": {"type": "string"},
            "object": {"const": "text_completion"},
            "created": INTEGER,
            "model": {"type": "string"},
            "choices": {"type": "array", "items": choice},
            "usage": obj({"prompt_tokens": INTEGER, "completion_tokens": INTEGER, "total_tokens": INTEGER}),
        }
    )
    model_object = obj(
        {"id": {"type": "string"}, "object": {"const": "model"}, "created": INTEGER, "owned_by": {"type": "string"}}
    )
    return {
        "CompletionRequest": completion_request,
        "CompletionResponse": completion_response,
        "OpenAIError": openai_error,
        "Model": model_object,
        "ModelList": obj({"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}}),
    }


def schemas(model_name: str | None, vocab_size: int | None, defaults: Mapping[str, float] | None) -> dict:
    numbers = bounds(vocab_size, defaults)
    return {
        **generate_schemas(numbers),
        **openai_schemas(model_name, vocab_size),
        "Health": health_schema(numbers),
        "HealthError": obj({"status": {"enum": ["loading", "error"]}, "reason": {"type": "string"}}),
    }


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


def build_spec(
    model_name: str | None = None, vocab_size: int | None = None, defaults: Mapping[str, float] | None = None
) -> dict:
    """The whole OpenAPI document; `model_name` (when loaded) pins /v1/completions' model field,
    `vocab_size` is top_k's maximum (the served model's vocabulary; unbounded when none is loaded)
    and `defaults` (its generation_config.json's) replace the contract's in GenerateRequest."""
    # OpenAPI 3.1 reads an event stream's schema as the schema of each event, parsed into its
    # fields; `data` holds one JSON document.
    json_text = {"type": "string", "contentMediaType": JSON}
    token_events = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"enum": ["token", "done", "error"]}, "data": json_text},
    }
    openai_chunks = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "string", "description": "A JSON chunk, or [DONE] last."}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "abstract-autocomplete",
            "version": "1.0.0",
            "description": "Completions for machine-learning paper abstracts from a small GPT-2 model.",
        },
        "paths": {
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
        },
        "components": {"schemas": schemas(model_name, vocab_size, defaults)},
    }
