"""Clients that hold connections open: half-sent requests, and connections made while the server
shuts down (issue 14, items 1 and 7). Raw loopback sockets, every loop and wait bounded.

A request costs the server a thread only once it has arrived whole (backend/worker.py), so 256
connections that each stop halfway must not slow /health, and each is answered 408 and dropped
once AUTOCOMPLETE_READ_TIMEOUT has passed. After SIGTERM the port must refuse new connections at
once while the request in flight still finishes.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import requests

from tests.live_gunicorn import live_server
from tests.raw_http import parse_reply, read_until_closed

SLOW_CLIENTS = 256
READ_TIMEOUT = 3  # seconds: AUTOCOMPLETE_READ_TIMEOUT of these servers
HEAD = b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
BODY = json.dumps({"text": "We propose", "max_new_tokens": 3, "seed": 0}).encode()


def half_request(i: int) -> bytes:
    """Alternately a head without its blank line and a body shorter than its Content-Length."""
    if i % 2:
        return HEAD + b"X-Still-Typing: yes\r\n"
    return HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY[:5]


@pytest.fixture
def server(tiny_model_dir, tmp_path):
    with live_server(
        tiny_model_dir, tmp_path, AUTOCOMPLETE_READ_TIMEOUT=str(READ_TIMEOUT), AUTOCOMPLETE_TIMEOUT="20"
    ) as (base, process):
        yield base, int(base.rsplit(":", 1)[1]), process


def test_256_half_sent_requests_neither_block_health_nor_stay_open(server):
    base, port, _ = server
    slow = []
    try:
        for i in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            slow.append(sock)
            sock.sendall(half_request(i))
        opened = time.monotonic()
        for _ in range(3):  # /health and a generation, while all of them are open and waiting
            started = time.monotonic()
            health = requests.get(f"{base}/health", timeout=1)
            assert health.status_code == 200 and time.monotonic() - started < 1
        generated = requests.post(f"{base}/generate", json={"text": "We propose", "max_new_tokens": 3}, timeout=5)
        assert generated.status_code == 200
        assert time.monotonic() - opened < READ_TIMEOUT, "the checks above must run while the clients are held"
        for sock in slow:  # each is answered 408 once the read timeout has passed, then closed
            reply = parse_reply(read_until_closed(sock, timeout=READ_TIMEOUT + 5))
            assert reply.status == 408 and reply.json()["error"]["type"] == "request_timeout"
        assert time.monotonic() - opened < READ_TIMEOUT + 5
    finally:
        for sock in slow:
            sock.close()
    assert requests.get(f"{base}/health", timeout=1).status_code == 200


def test_a_connection_that_sends_nothing_is_closed_silently(server):
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        assert read_until_closed(sock, timeout=READ_TIMEOUT + 5) == b""
        assert READ_TIMEOUT - 0.5 < time.monotonic() - started < READ_TIMEOUT + 3


def test_a_slow_but_steady_request_within_the_timeout_is_served(server):
    _, port, _ = server
    raw = HEAD + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for start in range(0, len(raw), len(raw) // 4 + 1):  # four pieces, 0.2 s apart
            sock.sendall(raw[start : start + len(raw) // 4 + 1])
            time.sleep(0.2)
        reply = parse_reply(read_until_closed(sock, timeout=10))
    assert reply.status == 200 and reply.json()["usage"]["completion_tokens"] == 3


def connect_outcome(port: int) -> str:
    """'refused', '503', or what else a new connection gets within 2 s."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return "refused"
    with sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            received = read_until_closed(sock, timeout=2)
        except OSError as error:
            return f"{type(error).__name__} after connecting"
    return str(parse_reply(received).status) if received else "closed without an answer"


def test_new_connections_during_a_graceful_shutdown_are_refused_at_once(server):
    _, port, process = server
    with socket.create_connection(("127.0.0.1", port), timeout=30) as in_flight:
        # A request the worker has begun to serve keeps it draining after SIGTERM.
        in_flight.sendall(HEAD + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY[:10])
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert process.poll() is None  # still draining
        started = time.monotonic()
        assert connect_outcome(port) in ("refused", "503")
        assert time.monotonic() - started < 1
        in_flight.sendall(BODY[10:])
        reply = parse_reply(read_until_closed(in_flight, timeout=20))
    assert reply.status == 200 and reply.json()["usage"]["completion_tokens"] == 3
    assert process.wait(timeout=30) == 0


def test_responses_do_not_name_the_server_software(server):
    base, _, _ = server
    for response in (requests.get(f"{base}/health", timeout=5), requests.get(f"{base}/nope", timeout=5)):
        assert response.headers["Server"] == "abstract-autocomplete"
        assert "gunicorn" not in " ".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
