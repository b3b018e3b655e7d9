"""The subset of OpenAI's API that lets the official `openai` client use this server unchanged.

POST /v1/completions (plain and stream=true) and GET /v1/models. The body is parsed by
openai_validation.py (OpenAI's names and defaults, /generate's bounds); this module shapes
OpenAI's responses and chunks. The blueprint owns its errors: they use OpenAI's shape
(errors.openai_document), also for paths under /v1 that reach no view.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify

from backend.api import engine_runner
from backend.api.errors import ApiError, openai_document, register_error_handlers
from backend.api.openai_validation import parse_completion
from backend.api.validation import read_json_object
from backend.engine import GenerationParams, GenerationResult, TokenEvent

bp = Blueprint("openai", __name__, url_prefix="/v1")
register_error_handlers(bp, openai_document)

OWNER = "abstract-autocomplete"
FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length"}


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
    return {
        "tokens": [t.text for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": None,
        "text_offset": offsets,
    }


@bp.post("/completions")
def completions():
    parsed = parse_completion(read_json_object())
    model = served_model(parsed["model"])
    if parsed["stream"]:
        return stream_completions(parsed, model)
    params: GenerationParams = parsed["params"]
    result = engine_runner.generate(parsed["prompt"], params)
    choices = [
        {
            "text": completion.text,
            "index": index,
            "logprobs": logprobs_object(completion.tokens, len(parsed["prompt"])) if params.logprobs else None,
            "finish_reason": FINISH_REASONS[completion.finish_reason],
        }
        for index, completion in enumerate(result.completions)
    ]
    return jsonify(
        {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": usage(result),
        }
    )


def usage(result: GenerationResult) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def stream_completions(parsed: dict, model: str) -> Response:
    params: GenerationParams = parsed["params"]
    stream = engine_runner.GenerationStream(parsed["prompt"], params)
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model}
    offsets = [len(parsed["prompt"])] * params.n

    def chunk(choices: list[dict], **extra) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra}, ensure_ascii=False)}\n\n"

    def render(event: TokenEvent | GenerationResult) -> Iterator[str]:
        if isinstance(event, GenerationResult):  # the last event: finish reasons, usage, then [DONE]
            yield chunk(
                [
                    {"text": "", "index": i, "logprobs": None, "finish_reason": FINISH_REASONS[c.finish_reason]}
                    for i, c in enumerate(event.completions)
                ]
            )
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
    return {
        "id": engine.info["name"],
        "object": "model",
        "created": current_app.extensions["engine_loaded_at"],
        "owned_by": OWNER,
    }


@bp.get("/models")
def models():
    return jsonify({"object": "list", "data": [model_object()]})


@bp.get("/models/<path:model_id>")
def model(model_id: str):
    served_model(model_id)  # 404 for any other id
    return jsonify(model_object())
