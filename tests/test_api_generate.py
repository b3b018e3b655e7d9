"""POST /generate and /generate/stream return what the engine generates, in the documented shapes.

The oracle is the Engine itself, called directly with the same text and parameters: the HTTP
layer must pass every parameter through and reshape the result without changing it.
"""

from __future__ import annotations

import json

import pytest

from backend.engine import GenerationParams
from tests.sse import parse_sse

PROMPT = "We propose a method to"

CASES = [
    {"max_new_tokens": 8, "seed": 1},
    {"max_new_tokens": 12, "seed": 2, "temperature": 0},
    {"max_new_tokens": 10, "seed": 3, "top_k": 5, "top_p": 0.5, "temperature": 1.3},
    {"max_new_tokens": 10, "seed": 4, "repetition_penalty": 1.7, "n": 3},
    {"max_new_tokens": 30, "seed": 5, "stop": [" the", "."], "n": 2},
]


@pytest.mark.parametrize("body", CASES)
def test_generate_returns_the_engines_result(client, tiny_engine, body):
    response = client.post("/generate", json={"text": PROMPT, **body, "logprobs": True})
    assert response.status_code == 200
    got = response.get_json()
    params = {**body, "stop": tuple(body.get("stop", ()))}
    expected = tiny_engine.generate(PROMPT, GenerationParams(**params))
    assert [(c["text"], c["finish_reason"]) for c in got["completions"]] == [
        (c.text, c.finish_reason) for c in expected.completions
    ]
    assert [[(t["text"], t["logprob"]) for t in c["tokens"]] for c in got["completions"]] == [
        [(t.text, t.logprob) for t in c.tokens] for c in expected.completions
    ]
    assert got["usage"] == {"prompt_tokens": expected.prompt_tokens, "completion_tokens": expected.completion_tokens}
    assert got["seed"] == body["seed"] and got["truncated"] is False
    assert got["model"] == tiny_engine.info["name"]
    assert set(got["timings"]) == {"prompt_ms", "per_token_ms", "total_ms"}


def test_stop_strings_end_completions(client):
    got = client.post("/generate", json={"text": PROMPT, **CASES[-1]}).get_json()
    for completion in got["completions"]:
        if completion["finish_reason"] == "stop":
            assert " the" not in completion["text"] and "." not in completion["text"]


def test_tokens_only_when_logprobs_asked(client):
    got = client.post("/generate", json={"text": PROMPT, "max_new_tokens": 3, "seed": 0}).get_json()
    assert list(got) == ["completions", "usage", "truncated", "seed", "timings", "model"]
    assert all(set(c) == {"text", "finish_reason"} for c in got["completions"])


def test_seed_is_drawn_when_absent_and_replays(client):
    first = client.post("/generate", json={"text": PROMPT, "max_new_tokens": 6}).get_json()
    assert isinstance(first["seed"], int)
    again = client.post("/generate", json={"text": PROMPT, "max_new_tokens": 6, "seed": first["seed"]}).get_json()
    assert again["completions"] == first["completions"]


@pytest.mark.parametrize("body", CASES)
def test_stream_sends_the_engines_tokens_then_done(client, tiny_engine, body):
    with client.post("/generate/stream", json={"text": PROMPT, **body}) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        events = parse_sse(response.get_data(as_text=True))
    params = GenerationParams(**{**body, "stop": tuple(body.get("stop", ()))})
    expected = list(tiny_engine.stream(PROMPT, params))
    names = [name for name, _ in events]
    assert names == ["token"] * (len(expected) - 1) + ["done"]
    assert [data for _, data in events[:-1]] == [
        {"index": e.index, "text": e.text, "logprob": e.logprob} for e in expected[:-1]
    ]
    done, result = events[-1][1], expected[-1]
    assert done["completions"] == [{"finish_reason": c.finish_reason, "text": c.text} for c in result.completions]
    assert done["usage"] == {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
    assert done["seed"] == body["seed"] and done["model"] == tiny_engine.info["name"]
    assert set(done) == {"completions", "usage", "truncated", "seed", "timings", "model"}


def test_stream_and_generate_agree(client):
    body = {"text": PROMPT, "max_new_tokens": 20, "seed": 9, "n": 2}
    whole = client.post("/generate", json=body).get_json()
    with client.post("/generate/stream", json=body) as response:
        events = parse_sse(response.get_data(as_text=True))
    texts = ["", ""]
    for _, data in events[:-1]:
        texts[data["index"]] += data["text"]
    assert texts == [c["text"] for c in whole["completions"]]  # no stop strings: tokens add up to the text
    assert events[-1][1]["completions"] == whole["completions"]


@pytest.mark.parametrize("path", ["/generate", "/generate/stream"])
def test_generation_holds_no_slot_afterwards(client, app, path):
    for _ in range(3):  # one slot, no queue: a leaked slot would make the second request a 429
        with client.post(path, json={"text": PROMPT, "max_new_tokens": 2}) as response:
            assert response.status_code == 200
            response.get_data()
    assert app.extensions["admission"].active == 0


def test_stream_closed_before_reading_frees_its_slot(client, app):
    admission = app.extensions["admission"]
    response = client.post("/generate/stream", json={"text": PROMPT, "max_new_tokens": 50})
    assert admission.active == 1  # taken before the first byte, so overload is a plain 429
    response.close()  # the client leaves without reading a single event
    assert admission.active == 0
    assert client.post("/generate", json={"text": PROMPT, "max_new_tokens": 1}).status_code == 200


class FailingMidStream:
    """Fault injection: the real engine, whose stream breaks after `after` tokens."""

    def __init__(self, engine, after: int):
        self.engine, self.after = engine, after
        self.info = engine.info

    def stream(self, text, params):
        for count, event in enumerate(self.engine.stream(text, params)):
            if count == self.after:
                raise RuntimeError("onnxruntime exploded at step 3")
            yield event


def test_error_after_the_stream_started_is_an_error_event(make_app, tiny_engine, caplog):
    app = make_app(ENGINE=FailingMidStream(tiny_engine, after=3))
    client = app.test_client()
    with client.post("/generate/stream", json={"text": PROMPT, "max_new_tokens": 10}) as response:
        assert response.status_code == 200
        body = response.get_data(as_text=True)
    events = parse_sse(body)
    assert [name for name, _ in events] == ["token"] * 3 + ["error"]
    assert events[-1][1] == {"error": {"type": "internal", "message": "generation failed"}}
    assert "exploded" not in body  # the cause is logged, not sent
    assert any("exploded" in (r.exc_text or "") for r in caplog.records)
    assert app.extensions["admission"].active == 0
    with client.post(
        "/v1/completions", json={"model": tiny_engine.info["name"], "prompt": PROMPT, "stream": True}
    ) as response:
        chunks = [block[len("data: ") :] for block in response.get_data(as_text=True).split("\n\n") if block]
    assert len(chunks) == 4 and json.loads(chunks[-1])["error"]["type"] == "server_error"
    assert app.extensions["admission"].active == 0
