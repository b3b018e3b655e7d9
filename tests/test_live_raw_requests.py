"""What a live server answers to requests no client library would send: contradictory or broken
framing, oversized heads, and bodies over the size limit sent chunked (issue 14, items 4 and 6).

Every request is written byte by byte on a raw loopback socket; every answer must be the API's
JSON error document (OpenAI's shape under /v1), never gunicorn's HTML page, and a body over the
limit must be a 413 however it is framed.
"""

from __future__ import annotations

import json

import pytest

from tests.live_gunicorn import live_server
from tests.raw_http import chunked, exchange

MAX_BODY = 4096  # AUTOCOMPLETE_MAX_BODY_BYTES for this server, so "over the limit" is cheap to send
HOST = b"Host: 127.0.0.1\r\n"
JSON_POST = b"POST /generate HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\nConnection: close\r\n"


@pytest.fixture(scope="module")
def port(tiny_model_dir, tmp_path_factory):
    with live_server(tiny_model_dir, tmp_path_factory.mktemp("raw"), AUTOCOMPLETE_MAX_BODY_BYTES=str(MAX_BODY)) as (
        base,
        _,
    ):
        yield int(base.rsplit(":", 1)[1])


def assert_json_error(reply, status: int, error_type: str) -> dict:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"] == "application/json"
    assert b"<html" not in reply.body.lower()
    error = reply.json()["error"]
    assert error["type"] == error_type and error["message"], error
    return error


MALFORMED = {
    "negative Content-Length": (JSON_POST + b"Content-Length: -1\r\n\r\n", 400, "bad_request"),
    "Content-Length and Transfer-Encoding": (
        JSON_POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "two Content-Lengths": (JSON_POST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "bad_request"),
    "9000-byte header": (
        b"GET /health HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    "9000-byte URL": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414, "uri_too_long"),
    "200 header fields": (
        b"GET /health HTTP/1.1\r\n" + HOST + b"".join(b"X-F%d: 1\r\n" % i for i in range(200)) + b"\r\n",
        431,
        "headers_too_large",
    ),
    "head over 64 KiB": (b"GET /health HTTP/1.1\r\n" + HOST + b"X-F: 1\r\n" * 9000, 431, "headers_too_large"),
    "garbage request line": (b"HELLO THERE\r\n\r\n", 400, "bad_request"),
    "bad chunk size": (JSON_POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, "bad_request"),
    "unknown transfer coding": (JSON_POST + b"Transfer-Encoding: gzip\r\n\r\n", 400, "bad_request"),
    "unknown expectation": (JSON_POST + b"Expect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417, "expectation_failed"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_errors_before_the_application_are_json(port, name):
    raw, status, error_type = MALFORMED[name]
    assert_json_error(exchange(port, raw), status, error_type)


def test_errors_before_the_application_use_openais_shape_under_v1(port):
    reply = exchange(port, b"POST /v1/completions HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n")
    assert reply.status == 400 and reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "bad_request" and error["param"] is None


def body_with_padding(size: int) -> bytes:
    """A valid /generate body followed by spaces (still valid JSON) up to `size` bytes."""
    body = json.dumps({"text": "We propose", "max_new_tokens": 1, "seed": 0}).encode()
    return body + b" " * (size - len(body))


OVERSIZED = {
    "valid JSON padded with spaces": body_with_padding(64 * MAX_BODY),
    "one long string": b'{"text": "' + b"a" * (64 * MAX_BODY) + b'"}',
    "one byte over": body_with_padding(MAX_BODY + 1),
}


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("name", OVERSIZED)
def test_a_body_over_the_limit_is_413_however_it_is_framed(port, name, framing):
    body = OVERSIZED[name]
    if framing == "chunked":
        raw = JSON_POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, size=1000)
    else:
        raw = JSON_POST + b"Content-Length: %d\r\n\r\n" % len(body) + body
    error = assert_json_error(exchange(port, raw), 413, "payload_too_large")
    assert f"{MAX_BODY} bytes" in error["message"]


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_body_at_the_limit_is_served(port, framing):
    body = body_with_padding(MAX_BODY)
    if framing == "chunked":
        raw = JSON_POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, size=1000)
    else:
        raw = JSON_POST + b"Content-Length: %d\r\n\r\n" % len(body) + body
    reply = exchange(port, raw)
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["usage"]["completion_tokens"] == 1


def test_expect_100_continue_is_answered_before_the_body_is_sent(port):
    import socket

    from tests.raw_http import parse_reply, read_until_closed

    body = body_with_padding(2000)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(JSON_POST + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        sock.settimeout(2)  # curl waits 1 s for this before it sends the body anyway
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        reply = parse_reply(read_until_closed(sock, 10))
    assert reply.status == 200
