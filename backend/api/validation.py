"""Turn a JSON request body into GenerationParams, or a 4xx that names the field and its bound.

The fields, bounds and defaults are backend/generation_contract.py's, the one place that defines
them; the OpenAPI spec (openapi_schemas.py) is built from the same tables, so the documentation cannot
drift from what the server enforces. The engine trusts whatever GenerationParams it is given,
so everything is checked here: types (a boolean is not a number), finiteness (NaN and infinity
are refused), bounds, unknown fields.
"""

from __future__ import annotations

import json

from flask import current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.api.errors import ApiError, ValidationError
from backend.engine import GenerationParams
from backend.generation_contract import (
    GENERATE_FIELDS,
    SEED_DESCRIPTION,
    SEED_MAX,
    STOP_MAX_CHARS,
    STOP_MAX_COUNT,
    TEXT_MAX_CHARS,
    Bound,
    BoundError,
    bounds,
)


def served_vocab_size() -> int | None:
    """The loaded model's vocabulary size (config.json's vocab_size), None when none is loaded."""
    engine = current_app.extensions.get("engine")
    return engine.info["vocab_size"] if engine is not None else None


def served_bounds() -> dict[str, Bound]:
    """The contract's numeric bounds for the served model: top_k up to its vocabulary, and the
    defaults its generation_config.json sets (backend/api/served_defaults.py) in place of the
    contract's."""
    return bounds(served_vocab_size(), current_app.extensions.get("generation_defaults"))


def type_name(value: object) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def read_json_object() -> dict:
    """The request body as a JSON object: 415 for another content type, 400 for anything else."""
    if not request.is_json:
        got = request.mimetype or "none"
        raise ApiError(415, f"Content-Type must be application/json, got {got}")
    raw = read_body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type_name(body)}")
    return body


def read_body() -> bytes:
    """The whole request body; 413 above MAX_CONTENT_LENGTH however it is framed.

    werkzeug refuses a Content-Length over the limit before reading, but a chunked body has no
    length: it reads such a body up to the limit and silently stops there. So when the limit is
    reached, one more byte is read from the server's own (chunk-decoding) stream: if there is one,
    the body was longer than the limit."""
    try:
        raw = request.get_data(cache=True)
        limit = request.max_content_length
        if (
            request.content_length is None
            and limit is not None
            and len(raw) >= limit
            and request.environ["wsgi.input"].read(1)
        ):
            raise RequestEntityTooLarge()
    except HTTPException:
        raise
    except Exception as error:  # the server's body reader refused the framing, e.g. a bad chunk size
        raise ApiError(400, f"request body could not be read: {error}") from None
    return raw


def check_number(name: str, value: object, bound: Bound) -> int | float:
    """`value` as the bound's type, or ValidationError naming `name` (the client's field name)."""
    try:
        return bound.check(name, value, shown=type_name)
    except BoundError as error:
        raise ValidationError(name, str(error)) from None


def check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, f"{name} must be a string, got {type_name(value)}")
    if len(value) > TEXT_MAX_CHARS:
        raise ValidationError(name, f"{name} must be at most {TEXT_MAX_CHARS} characters, got {len(value)}")
    if not value.strip():
        raise ValidationError(name, f"{name} must contain at least one non-whitespace character")
    check_encodable(name, value)
    return value


def check_encodable(name: str, value: str) -> None:
    # JSON can carry lone surrogates ("\ud800") that no tokenizer can encode.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(name, f"{name} must be valid Unicode text (it holds a lone surrogate)") from None


def check_seed(name: str, value: object) -> int | None:
    if value is None:
        return None
    return check_number(name, value, Bound(True, 0, SEED_MAX, 0, SEED_DESCRIPTION))


def check_stop(name: str, value: object, allow_single_string: bool = False) -> tuple[str, ...]:
    if allow_single_string and isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValidationError(name, f"{name} must be a list of strings, got {type_name(value)}")
    if len(value) > STOP_MAX_COUNT:
        raise ValidationError(name, f"{name} must hold at most {STOP_MAX_COUNT} strings, got {len(value)}")
    for item in value:
        if not isinstance(item, str):
            raise ValidationError(name, f"{name} must hold only strings, got {type_name(item)}")
        if not 1 <= len(item) <= STOP_MAX_CHARS:
            raise ValidationError(
                name, f"every {name} string must be 1 to {STOP_MAX_CHARS} characters, got {len(item)}"
            )
        check_encodable(name, item)
    return tuple(value)


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(name, f"{name} must be a boolean, got {type_name(value)}")
    return value


def reject_unknown(body: dict, allowed: tuple[str, ...]) -> None:
    for name in body:
        if name not in allowed:
            raise ValidationError(name, f"unknown field {name!r}; allowed fields: {', '.join(allowed)}")


def parse_generate(body: dict) -> tuple[str, GenerationParams]:
    """The /generate and /generate/stream body as (text, params)."""
    reject_unknown(body, GENERATE_FIELDS)
    if "text" not in body:
        raise ValidationError("text", "text is required")
    text = check_text("text", body["text"])
    # Every number is passed on, a field left out as its default: the served model's, not the engine's.
    numbers = {
        name: check_number(name, body[name], bound) if name in body else bound.default
        for name, bound in served_bounds().items()
    }
    return text, GenerationParams(
        **numbers,
        seed=check_seed("seed", body.get("seed")),
        stop=check_stop("stop", body.get("stop", [])),
        logprobs=check_bool("logprobs", body.get("logprobs", False)),
    )
