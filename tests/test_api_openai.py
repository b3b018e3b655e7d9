"""/v1/completions and /v1/models in OpenAI's shapes, through the Flask test client.

The oracle for content is again the Engine called directly, with OpenAI's names and defaults
mapped onto GenerationParams; the official client itself is exercised in test_live_server.py.
"""

from __future__ import annotations

import json

import pytest

from backend.engine import GenerationParams

PROMPT = "We propose a method to"


@pytest.fixture
def model_id(tiny_engine):
    return tiny_engine.info["name"]


def parse_data_events(text: str) -> list:
    return [block[len("data: ") :] for block in text.split("\n\n") if block.strip()]


def test_models_lists_the_served_model(client, model_id):
    got = client.get("/v1/models").get_json()
    assert got["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in got["data"]] == [
        (model_id, "model", "abstract-autocomplete")
    ]
    assert client.get(f"/v1/models/{model_id}").get_json()["id"] == model_id
    error = client.get("/v1/models/gpt-4").get_json()["error"]
    assert error["param"] == "model" and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body, params",
    [
        ({"max_tokens": 7, "seed": 1}, {"max_new_tokens": 7, "seed": 1, "temperature": 1.0, "top_p": 1.0}),
        ({"seed": 2}, {"max_new_tokens": 16, "seed": 2, "temperature": 1.0, "top_p": 1.0}),  # OpenAI's defaults
        (
            {"max_tokens": 9, "seed": 3, "temperature": 0.5, "top_p": 0.9, "n": 2, "stop": "."},
            {"max_new_tokens": 9, "seed": 3, "temperature": 0.5, "top_p": 0.9, "n": 2, "stop": (".",)},
        ),
        (
            {
                "max_tokens": 6,
                "seed": 4,
                "stop": [" a", " the"],
                "top_k": 4,
                "repetition_penalty": 1.3,
                "temperature": None,
            },
            {
                "max_new_tokens": 6,
                "seed": 4,
                "temperature": 1.0,
                "top_p": 1.0,
                "top_k": 4,
                "repetition_penalty": 1.3,
                "stop": (" a", " the"),
            },
        ),
    ],
)
def test_completions_map_onto_the_engine(client, tiny_engine, model_id, body, params):
    response = client.post("/v1/completions", json={"model": model_id, "prompt": [PROMPT], **body})
    assert response.status_code == 200
    got = response.get_json()
    expected = tiny_engine.generate(PROMPT, GenerationParams(**params))
    assert got["object"] == "text_completion" and got["model"] == model_id and got["id"].startswith("cmpl-")
    assert [(c["index"], c["text"], c["finish_reason"], c["logprobs"]) for c in got["choices"]] == [
        (i, c.text, "length" if c.finish_reason == "length" else "stop", None)
        for i, c in enumerate(expected.completions)
    ]
    assert got["usage"] == {
        "prompt_tokens": expected.prompt_tokens,
        "completion_tokens": expected.completion_tokens,
        "total_tokens": expected.prompt_tokens + expected.completion_tokens,
    }


def test_logprobs_object(client, tiny_engine, model_id):
    got = client.post(
        "/v1/completions", json={"model": model_id, "prompt": PROMPT, "max_tokens": 5, "seed": 0, "logprobs": 0}
    ).get_json()
    expected = tiny_engine.generate(PROMPT, GenerationParams(max_new_tokens=5, seed=0, temperature=1.0, top_p=1.0))
    logprobs = got["choices"][0]["logprobs"]
    assert logprobs["tokens"] == [t.text for t in expected.completions[0].tokens]
    assert logprobs["token_logprobs"] == [t.logprob for t in expected.completions[0].tokens]
    assert logprobs["top_logprobs"] is None
    full = PROMPT + got["choices"][0]["text"]
    for token, offset in zip(logprobs["tokens"], logprobs["text_offset"], strict=True):
        assert full[offset : offset + len(token)] == token


def test_stream_chunks_then_done(client, tiny_engine, model_id):
    body = {
        "model": model_id,
        "prompt": PROMPT,
        "max_tokens": 8,
        "seed": 5,
        "n": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.post("/v1/completions", json=body) as response:
        assert response.mimetype == "text/event-stream"
        events = parse_data_events(response.get_data(as_text=True))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "text_completion" for c in chunks)
    texts, finish = ["", ""], [None, None]
    for chunk in chunks[:-1]:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["text"]
            finish[choice["index"]] = choice["finish_reason"] or finish[choice["index"]]
    expected = tiny_engine.generate(PROMPT, GenerationParams(max_new_tokens=8, seed=5, n=2, temperature=1.0, top_p=1.0))
    assert texts == [c.text for c in expected.completions]
    assert finish == ["length" if c.finish_reason == "length" else "stop" for c in expected.completions]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == expected.completion_tokens


@pytest.mark.parametrize(
    "body, param, words",
    [
        ({"prompt": PROMPT}, "model", "model is required"),
        ({"model": "MODEL"}, "prompt", "prompt is required"),
        ({"model": "MODEL", "prompt": ["a", "b"]}, "prompt", "exactly one string"),
        ({"model": "MODEL", "prompt": []}, "prompt", "exactly one string"),
        ({"model": "MODEL", "prompt": "  "}, "prompt", "non-whitespace"),
        ({"model": "MODEL", "prompt": 5}, "prompt", "prompt must be a string"),
        ({"model": 5, "prompt": PROMPT}, "model", "model must be a string"),
        (
            {"model": "MODEL", "prompt": PROMPT, "max_tokens": 0},
            "max_tokens",
            "max_tokens must be >= 1 and <= 512, got 0",
        ),
        ({"model": "MODEL", "prompt": PROMPT, "max_tokens": True}, "max_tokens", "must be an integer, got boolean"),
        ({"model": "MODEL", "prompt": PROMPT, "temperature": 3}, "temperature", "temperature must be >= 0 and <= 2"),
        ({"model": "MODEL", "prompt": PROMPT, "top_p": 0}, "top_p", "top_p must be > 0 and <= 1, got 0"),
        ({"model": "MODEL", "prompt": PROMPT, "n": 5}, "n", "n must be >= 1 and <= 4"),
        ({"model": "MODEL", "prompt": PROMPT, "stop": ["a"] * 5}, "stop", "at most 4"),
        ({"model": "MODEL", "prompt": PROMPT, "stop": ""}, "stop", "1 to 100 characters"),
        ({"model": "MODEL", "prompt": PROMPT, "logprobs": 6}, "logprobs", "logprobs must be >= 0 and <= 5"),
        ({"model": "MODEL", "prompt": PROMPT, "logprobs": True}, "logprobs", "must be an integer, got boolean"),
        ({"model": "MODEL", "prompt": PROMPT, "stream": "yes"}, "stream", "stream must be a boolean"),
        ({"model": "MODEL", "prompt": PROMPT, "stream": 0}, "stream", "stream must be a boolean, got integer"),
        ({"model": "MODEL", "prompt": PROMPT, "stream_options": []}, "stream_options", "must be an object"),
        ({"model": "MODEL", "prompt": PROMPT, "user": 5}, "user", "user must be a string"),
        ({"model": "MODEL", "prompt": PROMPT, "stream_options": {"x": 1}}, "stream_options", "include_usage"),
        ({"model": "MODEL", "prompt": PROMPT, "echo": True}, "echo", "unknown field 'echo'"),
        ({"model": "MODEL", "prompt": PROMPT, "seed": -5}, "seed", "seed must be >= 0"),
    ],
)
def test_bad_fields_are_400_in_openai_shape(client, model_id, body, param, words):
    body = {k: (model_id if v == "MODEL" else v) for k, v in body.items()}
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["code"] == "validation"
    assert words in error["message"]


def test_unknown_model_is_404(client, model_id):
    response = client.post("/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": PROMPT})
    assert response.status_code == 404
    assert model_id in response.get_json()["error"]["message"]


def test_overload_is_429_in_openai_shape(client, app, model_id):
    slot = app.extensions["admission"].acquire()  # the only slot; the queue holds none
    try:
        response = client.post("/v1/completions", json={"model": model_id, "prompt": PROMPT})
    finally:
        slot.release()
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["error"]["type"] == "rate_limit_error"
