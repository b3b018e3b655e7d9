"""The real thing: gunicorn with backend/gunicorn.conf.py on a loopback port, over the tiny model.

Checks what only a live server shows: the official openai client works unchanged, a client
that drops a stream frees its slot, overload gives 429 + Retry-After while the rest succeed,
metrics add up across workers, and SIGTERM lets a request in flight finish. Every wait is
bounded; the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.live_gunicorn import live_server

REPO = Path(__file__).resolve().parent.parent
PROMPT = "We propose a method to"
LONG = {"text": "We", "max_new_tokens": 512, "n": 4, "seed": 0}  # the tiny model's longest job, ~0.3 s


def metric(base: str, name: str, **labels: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """One worker with one generation slot and no queue: the strictest admission."""
    with live_server(
        tiny_model_dir,
        tmp_path_factory.mktemp("live"),
        AUTOCOMPLETE_GENERATION_SLOTS="1",
        AUTOCOMPLETE_QUEUE_SIZE="0",
        AUTOCOMPLETE_THREADS="8",
    ) as (base, _):
        yield base


def test_openai_client_plain_and_streamed(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=30)
    model = client.models.list().data[0].id
    plain = client.completions.create(
        model=model, prompt=PROMPT, max_tokens=12, seed=3, temperature=0.7, n=2, stop=["\n\n"], logprobs=1
    )
    assert len(plain.choices) == 2 and plain.usage.completion_tokens >= 2
    assert all(c.finish_reason in ("stop", "length") for c in plain.choices)
    assert len(plain.choices[0].logprobs.tokens) == len(plain.choices[0].logprobs.token_logprobs)
    streamed = client.completions.create(
        model=model, prompt=PROMPT, max_tokens=12, seed=3, temperature=0.7, n=2, stop=["\n\n"], stream=True
    )
    texts, finish = ["", ""], [None, None]
    for chunk in streamed:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
            finish[choice.index] = choice.finish_reason or finish[choice.index]
    # Same seed and parameters: the stream adds up to the plain completion.
    assert texts == [c.text for c in plain.choices]
    assert finish == [c.finish_reason for c in plain.choices]


def test_openai_client_sees_openai_errors(server):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError) as bad:
        client.completions.create(model="tiny-int8", prompt=PROMPT, top_p=1.5)
    assert bad.value.body["param"] == "top_p"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT)


def test_dropped_stream_frees_its_slot(server):
    cancelled_before = metric(server, "autocomplete_streams_cancelled_total")
    with requests.post(f"{server}/generate/stream", json=LONG, stream=True, timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        events = [line for line in (next(lines) for _ in range(12)) if line.startswith(b"event:")]
        assert events and all(e == b"event: token" for e in events)
    # The connection is closed mid-stream; the server notices on its next write.
    deadline = time.monotonic() + 10
    while metric(server, "autocomplete_generations_in_flight") != 0:
        assert time.monotonic() < deadline, "the dropped stream still holds its slot"
        time.sleep(0.05)
    assert metric(server, "autocomplete_streams_cancelled_total") == cancelled_before + 1
    # One slot and no queue: this would be a 429 if the slot had leaked.
    assert (
        requests.post(f"{server}/generate", json={"text": PROMPT, "max_new_tokens": 2}, timeout=30).status_code == 200
    )


def test_more_clients_than_slots_get_429_and_the_rest_succeed(server):
    clients = 6
    barrier = threading.Barrier(clients)
    responses: list = [None] * clients

    def call(i: int) -> None:
        barrier.wait(timeout=10)
        responses[i] = requests.post(f"{server}/generate", json=LONG, timeout=60)

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["error"]["type"] == "overloaded"
        else:
            assert response.json()["usage"]["completion_tokens"] > 0
    assert metric(server, "autocomplete_rejections_total", reason="queue_full") >= statuses.count(429)
    assert metric(server, "autocomplete_generations_in_flight") == 0


def test_metrics_add_up_across_workers(tiny_model_dir, tmp_path):
    with live_server(tiny_model_dir, tmp_path, AUTOCOMPLETE_WORKERS="2") as (base, _):
        for _ in range(6):  # a new connection each time, so the kernel spreads them over both workers
            with requests.Session() as session:
                assert (
                    session.post(f"{base}/generate", json={"text": PROMPT, "max_new_tokens": 3}, timeout=30).status_code
                    == 200
                )
        for _ in range(3):  # whichever worker answers the scrape, it reports the whole server
            assert metric(base, "autocomplete_http_requests_total", endpoint="/generate", status="200") == 6


def test_sigterm_lets_the_request_in_flight_finish(tiny_model_dir, tmp_path):
    body = json.dumps({"text": PROMPT, "max_new_tokens": 5, "seed": 0}).encode()
    with live_server(tiny_model_dir, tmp_path, AUTOCOMPLETE_TIMEOUT="20") as (base, process):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            # Headers and half the body: the worker is now inside this request, reading the rest.
            sock.sendall(
                b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(body[:10])
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None  # still draining, not gone
            sock.sendall(body[10:])
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, payload = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), reply[:300]
        assert json.loads(payload)["usage"]["completion_tokens"] == 5
        assert process.wait(timeout=30) == 0


def test_tokens_of_a_dropped_stream_are_counted(server):
    """Issue 14: a cancelled stream's tokens were missing from autocomplete_generated_tokens_total."""
    tokens_before = metric(server, "autocomplete_generated_tokens_total")
    cancelled_before = metric(server, "autocomplete_streams_cancelled_total")
    with requests.post(f"{server}/generate/stream", json=LONG, stream=True, timeout=30) as response:
        lines = response.iter_lines()
        seen = sum(1 for line in (next(lines) for _ in range(20)) if line == b"event: token")
    deadline = time.monotonic() + 10
    while metric(server, "autocomplete_streams_cancelled_total") == cancelled_before:
        assert time.monotonic() < deadline, "the dropped stream was never counted as cancelled"
        time.sleep(0.05)
    assert seen >= 5
    assert metric(server, "autocomplete_generated_tokens_total") - tokens_before >= seen


def test_options_goes_only_to_api_paths(server):
    """Issue 14: OPTIONS /GENERATE answered 200 through the front end's catch-all route."""
    mistyped = requests.options(f"{server}/GENERATE", timeout=5)
    assert mistyped.status_code == 404 and mistyped.json()["error"]["type"] == "not_found"
    api = requests.options(f"{server}/generate", timeout=5)
    assert api.status_code == 200 and set(api.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    page = requests.options(f"{server}/editor", timeout=5)
    assert page.status_code == 405 and set(page.headers["Allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.parametrize("temperature", [1e-30, 1e-38, 1e-45, 5e-324])
def test_a_temperature_near_zero_gives_the_greedy_completion(server, temperature):
    """Issue 14: temperature 1e-38 answered "!!!!!!" with 200."""
    body = {"text": PROMPT, "max_new_tokens": 8, "seed": 1, "n": 2}
    greedy = requests.post(f"{server}/generate", json={**body, "temperature": 0}, timeout=30).json()
    near = requests.post(f"{server}/generate", json={**body, "temperature": temperature}, timeout=30).json()
    assert near["completions"] == greedy["completions"]
    model = requests.get(f"{server}/v1/models", timeout=5).json()["data"][0]["id"]
    openai = requests.post(
        f"{server}/v1/completions",
        json={"model": model, "prompt": PROMPT, "max_tokens": 8, "temperature": temperature, "seed": 1},
        timeout=30,
    )
    assert openai.json()["choices"][0]["text"] == greedy["completions"][0]["text"]


def test_more_new_tokens_than_the_context_keeps_the_prompt(server):
    """Issue 14: max_new_tokens beyond the context threw the prompt away to make room."""
    result = requests.post(
        f"{server}/generate", json={"text": PROMPT, "max_new_tokens": 512, "temperature": 0}, timeout=30
    ).json()
    prompt_tokens = result["usage"]["prompt_tokens"]
    assert prompt_tokens == 5 and result["truncated"] is False  # "We propose a method to", whole
    completion = result["completions"][0]
    if completion["finish_reason"] == "length":  # the context (128, BOS included) is full
        assert result["usage"]["completion_tokens"] == 128 - 1 - prompt_tokens
