"""The subset of OpenAI's API that lets the official `openai` client use this server unchanged.

POST /v1/completions (plain and stream=true) and GET /v1/models. Fields keep OpenAI's names
and defaults (max_tokens=16, temperature=1, top_p=1) but the bounds of /generate, checked by
the same functions; top_k and repetition_penalty are accepted as extensions, as vLLM does.
Errors use OpenAI's shape (errors.py switches on the /v1 prefix).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from typing import Iterator

from flask import Blueprint, Response, current_app, jsonify

from backend.api import engine_runner
from backend.api.errors import ApiError, ValidationError
from backend.api.validation import (Bound, bounds, check_bool, check_number, check_seed, check_stop, check_text,
                                    read_json_object, reject_unknown, served_vocab_size, type_name)
from backend.engine import GenerationParams, GenerationResult, TokenEvent

bp = Blueprint("openai", __name__, url_prefix="/v1")

OWNER = "abstract-autocomplete"
LOGPROBS_MAX = 5  # OpenAI's bound; only the chosen token's log-probability is returned
# OpenAI name -> (/generate name, OpenAI's default)
RENAMED = {"max_tokens": ("max_new_tokens", 16), "temperature": ("temperature", 1.0),
           "top_p": ("top_p", 1.0), "n": ("n", 1), "top_k": ("top_k", 0),
           "repetition_penalty": ("repetition_penalty", 1.0)}
COMPLETION_FIELDS = ("model", "prompt", *RENAMED, "stop", "seed", "stream", "stream_options", "logprobs", "user")
FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length"}


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
            raise ValidationError("prompt", f"prompt must be a string or a list of exactly one string, got {len(prompt)} items")
        prompt = prompt[0]
    vocab_size = served_vocab_size()
    numbers = {RENAMED[name][0]: check_number(name, body[name], openai_bound(name, vocab_size))
               for name in RENAMED if body.get(name) is not None}
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


def served_model(requested: str) -> str:
    name = engine_runner.loaded_engine().info["name"]
    if requested != name:
        raise ApiError(404, f"the model {requested!r} does not exist; this server serves {name!r}", field="model")
    return name


def logprobs_object(tokens: list[TokenEvent], offset: int) -> dict:
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token.text)
    return {"tokens": [t.text for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": None, "text_offset": offsets}


@bp.post("/completions")
def completions():
    parsed = parse_completion(read_json_object())
    model = served_model(parsed["model"])
    if parsed["stream"]:
        return stream_completions(parsed, model)
    params: GenerationParams = parsed["params"]
    result = engine_runner.generate(parsed["prompt"], params)
    choices = [{
        "text": completion.text,
        "index": index,
        "logprobs": logprobs_object(completion.tokens, len(parsed["prompt"])) if params.logprobs else None,
        "finish_reason": FINISH_REASONS[completion.finish_reason],
    } for index, completion in enumerate(result.completions)]
    return jsonify({
        "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
        "model": model, "choices": choices, "usage": usage(result),
    })


def usage(result: GenerationResult) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}


def stream_completions(parsed: dict, model: str) -> Response:
    params: GenerationParams = parsed["params"]
    stream = engine_runner.GenerationStream(parsed["prompt"], params)
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model}
    offsets = [len(parsed["prompt"])] * params.n

    def chunk(choices: list[dict], **extra) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra}, ensure_ascii=False)}\n\n"

    def render(event: TokenEvent | GenerationResult) -> Iterator[str]:
        if isinstance(event, GenerationResult):  # the last event: finish reasons, usage, then [DONE]
            yield chunk([{"text": "", "index": i, "logprobs": None, "finish_reason": FINISH_REASONS[c.finish_reason]}
                         for i, c in enumerate(event.completions)])
            if parsed["include_usage"]:
                yield chunk([], usage=usage(event))
            yield "data: [DONE]\n\n"
        else:
            logprobs = logprobs_object([event], offsets[event.index]) if params.logprobs else None
            offsets[event.index] += len(event.text)
            yield chunk([{"text": event.text, "index": event.index, "logprobs": logprobs, "finish_reason": None}])

    error = {"message": "generation failed", "type": "server_error", "param": None, "code": "internal"}
    return engine_runner.event_stream_response(stream, render, f"data: {json.dumps({'error': error})}\n\n")


def model_object() -> dict:
    engine = engine_runner.loaded_engine()
    return {"id": engine.info["name"], "object": "model",
            "created": current_app.extensions["engine_loaded_at"], "owned_by": OWNER}


@bp.get("/models")
def models():
    return jsonify({"object": "list", "data": [model_object()]})


@bp.get("/models/<path:model_id>")
def model(model_id: str):
    served_model(model_id)  # 404 for any other id
    return jsonify(model_object())
