"""POST /generate (one JSON response) and POST /generate/stream (Server-Sent Events).

Layering as in text-generation-inference: validate at the edge (validation.py), take a slot
and run the engine (engine_runner.py), shape the response here. Errors before a stream starts are
ordinary JSON error responses; once the 200 and its headers are sent, an error can only be
reported in-band, as an `event: error` whose data is the usual error body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Blueprint, jsonify

from backend.api import engine_runner
from backend.api.validation import parse_generate, read_json_object
from backend.engine import GenerationResult, TokenEvent

bp = Blueprint("generate", __name__)


def model_name() -> str:
    return engine_runner.loaded_engine().info["name"]


def result_body(result: GenerationResult, with_tokens: bool, model: str) -> dict:
    completions = []
    for completion in result.completions:
        item = {"text": completion.text, "finish_reason": completion.finish_reason}
        if with_tokens:
            item["tokens"] = [{"text": t.text, "logprob": t.logprob} for t in completion.tokens]
        completions.append(item)
    return {
        "completions": completions,
        "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens},
        "truncated": result.truncated,
        "seed": result.seed,
        "timings": {key: result.timings[key] for key in ("prompt_ms", "per_token_ms", "total_ms")},
        "model": model,
    }


def sse(event: str, data: dict) -> str:
    # json.dumps escapes newlines, so each event's data fits the one `data:` line SSE allows.
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@bp.post("/generate")
def generate():
    text, params = parse_generate(read_json_object())
    result = engine_runner.generate(text, params)
    return jsonify(result_body(result, params.logprobs, model_name()))


@bp.post("/generate/stream")
def generate_stream():
    text, params = parse_generate(read_json_object())
    model = model_name()
    stream = engine_runner.GenerationStream(text, params)

    def render(event: TokenEvent | GenerationResult) -> Iterator[str]:
        if isinstance(event, GenerationResult):
            body = result_body(event, False, model)
            body["completions"] = [
                {"finish_reason": c["finish_reason"], "text": c["text"]} for c in body["completions"]
            ]
            yield sse("done", body)
        else:
            yield sse("token", {"index": event.index, "text": event.text, "logprob": event.logprob})

    return engine_runner.event_stream_response(
        stream, render, sse("error", {"error": {"type": "internal", "message": "generation failed"}})
    )
