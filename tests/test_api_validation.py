"""Every class of bad input to the generation endpoints gets the right 4xx JSON error, never a 500.

Each table row is one request body (or raw body) and what the client must get back: status,
error type, the field named, and words of the message. Every row runs against /generate and
/generate/stream (and the OpenAI endpoint where the field exists there). A valid request at
each bound succeeds.
"""

from __future__ import annotations

import json

import pytest

from backend.generation_contract import NUMBERS, SEED_MAX, TEXT_MAX_CHARS, bounds

GENERATION_PATHS = ["/generate", "/generate/stream"]
TINY_VOCAB = 50257  # the tiny test model keeps GPT-2's vocabulary (tests/tiny_model.py)

# (body, field, words the message must contain)
FIELD_ERRORS = [
    ({}, "text", "text is required"),
    ({"text": None}, "text", "text must be a string, got null"),
    ({"text": 5}, "text", "text must be a string, got integer"),
    ({"text": ["a"]}, "text", "text must be a string, got array"),
    ({"text": ""}, "text", "at least one non-whitespace"),
    ({"text": " \n\t\u00a0"}, "text", "at least one non-whitespace"),
    ({"text": "a" * (TEXT_MAX_CHARS + 1)}, "text", f"at most {TEXT_MAX_CHARS} characters, got {TEXT_MAX_CHARS + 1}"),
    ({"text": "a", "max_new_tokens": 0}, "max_new_tokens", "max_new_tokens must be >= 1 and <= 512, got 0"),
    ({"text": "a", "max_new_tokens": 513}, "max_new_tokens", "max_new_tokens must be >= 1 and <= 512, got 513"),
    ({"text": "a", "max_new_tokens": 1.5}, "max_new_tokens", "max_new_tokens must be an integer, got 1.5"),
    ({"text": "a", "max_new_tokens": True}, "max_new_tokens", "must be an integer, got boolean"),
    ({"text": "a", "max_new_tokens": "5"}, "max_new_tokens", "must be an integer, got string"),
    ({"text": "a", "max_new_tokens": None}, "max_new_tokens", "must be an integer, got null"),
    ({"text": "a", "max_new_tokens": 10**30}, "max_new_tokens", "<= 512"),
    ({"text": "a", "temperature": -0.001}, "temperature", "temperature must be >= 0 and <= 2, got -0.001"),
    ({"text": "a", "temperature": 2.001}, "temperature", "temperature must be >= 0 and <= 2, got 2.001"),
    ({"text": "a", "temperature": False}, "temperature", "temperature must be a number, got boolean"),
    ({"text": "a", "temperature": "0.5"}, "temperature", "temperature must be a number, got string"),
    ({"text": "a", "top_p": 0}, "top_p", "top_p must be > 0 and <= 1, got 0"),
    ({"text": "a", "top_p": 1.5}, "top_p", "top_p must be > 0 and <= 1, got 1.5"),
    ({"text": "a", "top_p": -1}, "top_p", "top_p must be > 0 and <= 1, got -1"),
    ({"text": "a", "top_k": -1}, "top_k", "top_k must be >= 0 and <= 50257, got -1"),
    ({"text": "a", "top_k": 50258}, "top_k", "top_k must be >= 0 and <= 50257, got 50258"),
    ({"text": "a", "top_k": True}, "top_k", "top_k must be an integer, got boolean"),
    ({"text": "a", "repetition_penalty": 0.999}, "repetition_penalty", "repetition_penalty must be >= 1 and <= 2"),
    ({"text": "a", "repetition_penalty": 2.0001}, "repetition_penalty", "repetition_penalty must be >= 1 and <= 2"),
    ({"text": "a", "n": 0}, "n", "n must be >= 1 and <= 4, got 0"),
    ({"text": "a", "n": 5}, "n", "n must be >= 1 and <= 4, got 5"),
    ({"text": "a", "n": True}, "n", "n must be an integer, got boolean"),
    ({"text": "a", "seed": -1}, "seed", f"seed must be >= 0 and <= {SEED_MAX}, got -1"),
    ({"text": "a", "seed": SEED_MAX + 1}, "seed", f"seed must be >= 0 and <= {SEED_MAX}"),
    ({"text": "a", "seed": 1.5}, "seed", "seed must be an integer, got 1.5"),
    ({"text": "a", "seed": "7"}, "seed", "seed must be an integer, got string"),
    ({"text": "a", "seed": True}, "seed", "seed must be an integer, got boolean"),
    ({"text": "a", "stop": "\n"}, "stop", "stop must be a list of strings, got string"),
    ({"text": "a", "stop": None}, "stop", "stop must be a list of strings, got null"),
    ({"text": "a", "stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4 strings, got 5"),
    ({"text": "a", "stop": [""]}, "stop", "1 to 100 characters, got 0"),
    ({"text": "a", "stop": ["x" * 101]}, "stop", "1 to 100 characters, got 101"),
    ({"text": "a", "stop": [1]}, "stop", "stop must hold only strings, got integer"),
    ({"text": "a", "logprobs": 1}, "logprobs", "logprobs must be a boolean, got integer"),
    ({"text": "a", "logprobs": "true"}, "logprobs", "logprobs must be a boolean, got string"),
    ({"text": "a", "foo": 1}, "foo", "unknown field 'foo'"),
    ({"text": "a", "max_tokens": 5}, "max_tokens", "unknown field 'max_tokens'"),
]

# Raw JSON bodies Python's json module accepts but no number field may hold.
NON_FINITE = [
    ('{"text": "a", "temperature": NaN}', "temperature", "temperature must be a finite number, got nan"),
    ('{"text": "a", "top_p": Infinity}', "top_p", "top_p must be a finite number, got inf"),
    ('{"text": "a", "repetition_penalty": -Infinity}', "repetition_penalty", "finite number, got -inf"),
    ('{"text": "a", "temperature": 1e999}', "temperature", "finite number, got inf"),
    ('{"text": "\\ud800 lone surrogate"}', "text", "text must be valid Unicode text"),
    ('{"text": "a", "stop": ["\\udfff"]}', "stop", "stop must be valid Unicode text"),
]

# (raw body, content type, status, error type)
BODY_ERRORS = [
    (b"{", "application/json", 400, "bad_request"),
    (b'{"text": "a",}', "application/json", 400, "bad_request"),
    (b"", "application/json", 400, "bad_request"),
    (b"[1, 2]", "application/json", 400, "bad_request"),
    (b'"text"', "application/json", 400, "bad_request"),
    (b"null", "application/json", 400, "bad_request"),
    (b"\xff\xfe{}", "application/json", 400, "bad_request"),
    (b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "bad_request"),
    (b'{"text": "a"}', "text/plain", 415, "unsupported_media_type"),
    (b'{"text": "a"}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"text": "a"}', None, 415, "unsupported_media_type"),
]


def assert_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["type"] == error_type
    return error


@pytest.mark.parametrize("path", GENERATION_PATHS)
@pytest.mark.parametrize("body, field, words", FIELD_ERRORS)
def test_bad_field_is_422_naming_the_field(client, path, body, field, words):
    error = assert_error(client.post(path, json=body), 422, "validation")
    assert error["field"] == field
    assert words in error["message"]
    assert field in error["message"]


@pytest.mark.parametrize("path", GENERATION_PATHS)
@pytest.mark.parametrize("raw, field, words", NON_FINITE)
def test_non_finite_numbers_and_lone_surrogates_are_422(client, path, raw, field, words):
    error = assert_error(client.post(path, data=raw, content_type="application/json"), 422, "validation")
    assert error["field"] == field
    assert words in error["message"]


@pytest.mark.parametrize("path", [*GENERATION_PATHS, "/v1/completions"])
@pytest.mark.parametrize("raw, content_type, status, error_type", BODY_ERRORS)
def test_malformed_bodies(client, path, raw, content_type, status, error_type):
    response = client.post(path, data=raw, content_type=content_type)
    assert response.status_code == status
    error = response.get_json()["error"]
    if path.startswith("/v1"):  # OpenAI's shape: our type becomes the code
        assert error["code"] == error_type and error["param"] is None
    else:
        assert error["type"] == error_type
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", GENERATION_PATHS)
def test_body_over_the_limit_is_413(make_app, path):
    client = make_app(MAX_CONTENT_LENGTH=1000).test_client()
    error = assert_error(client.post(path, json={"text": "a" * 2000}), 413, "payload_too_large")
    assert "1000 bytes" in error["message"]
    assert client.post(path, json={"text": "a" * 900, "max_new_tokens": 1}).status_code == 200


def bound_values(name):
    bound = bounds(TINY_VOCAB)[name]
    low = bound.minimum + (1e-6 if bound.exclusive_minimum else 0)
    return [int(low) if bound.integer else low, int(bound.maximum) if bound.integer else bound.maximum]


AT_THE_BOUNDS = [(name, value) for name in NUMBERS for value in bound_values(name)] + [
    ("seed", 0),
    ("seed", SEED_MAX),
    ("seed", None),
    ("stop", []),
    ("stop", ["x" * 100] * 4),
]


@pytest.mark.parametrize("name, value", AT_THE_BOUNDS)
def test_a_value_at_each_bound_succeeds(client, name, value):
    body = {"text": "We propose a method to", "max_new_tokens": 3, "seed": 0, name: value}
    response = client.post("/generate", json=body)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    expected_n = value if name == "n" else 1
    assert len(result["completions"]) == expected_n
    if name == "seed" and value is not None:
        assert result["seed"] == value


def test_integral_float_counts_as_an_integer(client):
    # JSON Schema (and so the OpenAPI spec) counts 3.0 as an integer.
    response = client.post("/generate", json={"text": "a", "max_new_tokens": 3.0, "seed": 1})
    assert response.status_code == 200
    assert response.get_json()["usage"]["completion_tokens"] <= 3


@pytest.mark.parametrize("text_length", [1, TEXT_MAX_CHARS])
def test_text_at_its_length_bounds_succeeds(client, text_length):
    text = ("We propose a method to learn. " * 1000)[:text_length]
    response = client.post("/generate", json={"text": text, "max_new_tokens": 1, "seed": 0})
    assert response.status_code == 200
    # The tiny model's context is 128 tokens: 20000 characters must be cut to fit.
    assert response.get_json()["truncated"] is (text_length == TEXT_MAX_CHARS)


def test_form_body_with_json_in_it_is_still_415(client):
    response = client.post("/generate", data={"text": "a"})
    assert_error(response, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(client):
    response = client.post(
        "/generate",
        data=json.dumps({"text": "a", "max_new_tokens": 1}).encode(),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200
