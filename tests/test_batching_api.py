"""Batching behind the HTTP API: concurrent real clients share the batch and get what they would
alone; slots are the batch's capacity and the overflow still gets 429.

Oracles: the same requests sent one after another (each then runs alone in the batch) and
werkzeug's real HTTP server with http.client. The model runs are held back by a gate until
every client's request is in the scheduler, so they provably decode together.
"""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
from werkzeug.serving import make_server

from backend import create_app
from backend.engine import Engine
from tests.gated_session import WAIT, GatedSession
from tests.sse import parse_sse

BODIES = [
    {"text": "We propose a method to", "max_new_tokens": 12, "seed": 1},
    {"text": "Deep", "max_new_tokens": 20, "seed": 2, "temperature": 0},
    {"text": "Graph neural networks for the", "max_new_tokens": 9, "seed": 3, "top_k": 5, "n": 3, "logprobs": True},
    {"text": "In this paper, we study", "max_new_tokens": 15, "seed": 4, "stop": [" the", "."], "n": 2},
    {"text": "Large language models have", "max_new_tokens": 16, "seed": 5, "repetition_penalty": 1.5},
]
PATHS = ["/generate", "/generate/stream"]


@pytest.fixture(scope="module", params=["tiny_fp32_model_dir", "tiny_model_dir"], ids=["fp32", "int8"])
def batching_engine(request) -> Engine:
    """fp32 and int8 as shipped (activations scaled per row, rows padded by the measured unit):
    both compute a batched request as they would alone."""
    return Engine.load(request.getfixturevalue(request.param))


@pytest.fixture
def served(batching_engine, tmp_path, monkeypatch):
    """(port, app, gate): the batching engine behind werkzeug's threaded server."""
    gate = GatedSession(batching_engine.session.session)
    monkeypatch.setattr(batching_engine.session, "session", gate)
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": batching_engine,
            "FRONTEND_DIR": str(tmp_path / "none"),
            "CORS_ORIGINS": [],
            "GENERATION_SLOTS": len(BODIES),
            "QUEUE_SIZE": 1,
            "QUEUE_TIMEOUT_SECONDS": WAIT,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.port, app, gate
    gate.open()
    assert batching_engine.scheduler.wait_idle(WAIT)
    server.shutdown()


def post(port: int, path: str, body: dict) -> tuple[int, dict]:
    """Status and the result (the last SSE event's data for a stream), without timings."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    if response.status != 200:
        return response.status, json.loads(text)
    result = parse_sse(text)[-1][1] if path.endswith("stream") else json.loads(text)
    result.pop("timings", None)
    return response.status, result


def assert_same_result(batched: dict, alone: dict) -> None:
    """Token for token the same; logprobs equal to float32 rounding, since a padded batch's fp32
    matmuls may sum in another order (the logits differ by about 1e-6)."""
    others = [key for key in alone if key != "completions"]
    assert {key: batched[key] for key in others} == {key: alone[key] for key in others}
    assert batched.keys() == alone.keys()
    assert batched["completions"] == [
        {
            **completion,
            "tokens": [
                {**token, "logprob": pytest.approx(token["logprob"], abs=1e-4)}
                for token in completion.get("tokens", [])
            ],
        }
        if "tokens" in completion
        else completion
        for completion in alone["completions"]
    ]


def wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def send_concurrently(port: int, requests: list[tuple[str, dict]]) -> tuple[list[threading.Thread], dict]:
    outcomes: dict[int, tuple[int, dict]] = {}

    def send(index: int, path: str, body: dict) -> None:
        outcomes[index] = post(port, path, body)

    threads = [
        threading.Thread(target=send, args=(i, path, body), daemon=True) for i, (path, body) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    return threads, outcomes


@pytest.mark.parametrize("path", PATHS)
def test_concurrent_clients_get_what_they_get_alone(served, batching_engine, path):
    port, _, gate = served
    requests = [(path, body) for body in BODIES]
    threads, outcomes = send_concurrently(port, requests)
    wait_until(lambda: batching_engine.scheduler.requests == len(BODIES))  # all in, none has run yet
    gate.open()
    for thread in threads:
        thread.join(WAIT)
    assert max(gate.batch_sizes) > max(body.get("n", 1) for body in BODIES)  # clients shared decode steps
    for index, (_, body) in enumerate(requests):
        status, alone = post(port, path, body)  # sequential now: runs alone in the batch
        assert status == 200 and outcomes[index][0] == 200
        assert_same_result(outcomes[index][1], alone)


def test_beyond_capacity_and_queue_is_429(served, batching_engine):
    port, app, gate = served
    admission = app.extensions["admission"]
    assert admission.slots == len(BODIES)  # the batching engine gets the configured capacity
    body = {"text": "a", "max_new_tokens": 3, "seed": 0}
    threads, outcomes = send_concurrently(port, [("/generate", body)] * (len(BODIES) + 1))
    wait_until(lambda: admission.active == len(BODIES) and admission.waiting == 1)
    status, error = post(port, "/generate", body)
    assert status == 429 and error["error"]["type"] == "overloaded"
    gate.open()
    for thread in threads:
        thread.join(WAIT)
    assert [status for status, _ in outcomes.values()] == [200] * (len(BODIES) + 1)
    assert len({json.dumps(result, sort_keys=True) for _, result in outcomes.values()}) == 1


def test_an_engine_that_cannot_batch_runs_one_request_at_a_time(make_app, tiny_row_coupled_model_dir):
    """An int8 model with per-tensor activation scales: its engine refuses to batch, so its slots are 1."""
    engine = Engine.load(tiny_row_coupled_model_dir)
    assert not engine.batches
    assert make_app(ENGINE=engine, GENERATION_SLOTS=8).extensions["admission"].slots == 1
    assert make_app(GENERATION_SLOTS=8).extensions["admission"].slots == 8  # the shipped kind batches
