"""Turn a /v1/completions body into GenerationParams, with OpenAI's field names and defaults.

The OpenAI family's counterpart of validation.py, built from the same bounds and checked by the
same functions: only the names (max_tokens for max_new_tokens) and the defaults (OpenAI's
max_tokens=16, temperature=1, top_p=1) differ; top_k and repetition_penalty are accepted as
extensions, as vLLM does. openapi_schemas.py documents the request from the tables here.
"""

from __future__ import annotations

from dataclasses import replace

from backend.api.errors import ValidationError
from backend.api.validation import (
    check_bool,
    check_number,
    check_seed,
    check_stop,
    check_text,
    reject_unknown,
    served_vocab_size,
    type_name,
)
from backend.engine import GenerationParams
from backend.generation_contract import Bound, bounds

LOGPROBS_MAX = 5  # OpenAI's bound; only the chosen token's log-probability is returned
# OpenAI name -> (/generate name, OpenAI's default)
RENAMED = {
    "max_tokens": ("max_new_tokens", 16),
    "temperature": ("temperature", 1.0),
    "top_p": ("top_p", 1.0),
    "n": ("n", 1),
    "top_k": ("top_k", 0),
    "repetition_penalty": ("repetition_penalty", 1.0),
}
COMPLETION_FIELDS = ("model", "prompt", *RENAMED, "stop", "seed", "stream", "stream_options", "logprobs", "user")


def openai_bound(name: str, vocab_size: int | None) -> Bound:
    """The bound of OpenAI field `name`: /generate's, with OpenAI's default."""
    target, default = RENAMED[name]
    return replace(bounds(vocab_size)[target], default=default)


def parse_completion(body: dict) -> dict:
    """The /v1/completions body as keyword values; null means "the default", as in OpenAI's API."""
    reject_unknown(body, COMPLETION_FIELDS)
    for required in ("model", "prompt"):
        if body.get(required) is None:
            raise ValidationError(required, f"{required} is required")
    if not isinstance(body["model"], str):
        raise ValidationError("model", f"model must be a string, got {type_name(body['model'])}")
    prompt = body["prompt"]
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise ValidationError(
                "prompt", f"prompt must be a string or a list of exactly one string, got {len(prompt)} items"
            )
        prompt = prompt[0]
    vocab_size = served_vocab_size()
    numbers = {
        RENAMED[name][0]: check_number(name, body[name], openai_bound(name, vocab_size))
        for name in RENAMED
        if body.get(name) is not None
    }
    defaults = {RENAMED[name][0]: RENAMED[name][1] for name in RENAMED}
    logprobs = body.get("logprobs")
    if logprobs is not None:
        check_number("logprobs", logprobs, Bound(True, 0, LOGPROBS_MAX, 0, ""))
    options = {} if body.get("stream_options") is None else body["stream_options"]
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise ValidationError("stream_options", "stream_options must be an object with only include_usage")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise ValidationError("user", f"user must be a string, got {type_name(body['user'])}")
    params = GenerationParams(
        **{**defaults, **numbers},
        seed=check_seed("seed", body.get("seed")),
        stop=() if body.get("stop") is None else check_stop("stop", body["stop"], allow_single_string=True),
        logprobs=logprobs is not None,
    )
    return {
        "model": body["model"],
        "prompt": check_text("prompt", prompt),
        "params": params,
        "stream": body.get("stream") is not None and check_bool("stream", body["stream"]),
        "include_usage": check_bool("stream_options.include_usage", options.get("include_usage", False)),
    }
