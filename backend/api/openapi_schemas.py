"""The OpenAPI components of the service: every request, response and error schema, built from
the generation contract.

openapi.py puts them under `components.schemas` and refers to them from its paths by name. Every
bound is read from backend/generation_contract.py (and openai_validation.py for /v1/completions),
whose tables validation.py enforces, so the schemas and the server agree by construction.
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
