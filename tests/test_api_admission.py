"""Generation slots and the bounded wait queue: who runs, who waits, who gets 429 + Retry-After."""

from __future__ import annotations

import threading
import time

import pytest

from backend.api.admission import Admission
from backend.api.errors import ApiError

WAIT = 5.0  # bound on every wait in these tests; none should come near it


def acquire_in_thread(admission: Admission):
    """Start acquire() in a thread; returns (thread, outcome dict filled with 'slot' or 'error')."""
    outcome: dict = {}

    def run():
        try:
            outcome["slot"] = admission.acquire()
        except ApiError as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_slots_then_queue_then_429():
    admission = Admission(slots=2, queue_size=1, queue_timeout=WAIT)
    first, second = admission.acquire(), admission.acquire()
    thread, outcome = acquire_in_thread(admission)
    wait_until(lambda: admission.waiting == 1)
    with pytest.raises(ApiError) as refused:
        admission.acquire()
    assert refused.value.status == 429 and refused.value.reason == "queue_full"
    assert int(refused.value.headers["Retry-After"]) >= 1
    assert "slot" not in outcome
    first.release()
    thread.join(WAIT)
    assert "slot" in outcome and admission.active == 2 and admission.waiting == 0
    second.release()
    outcome["slot"].release()
    assert admission.active == 0


def test_queue_zero_refuses_at_once():
    admission = Admission(slots=1, queue_size=0, queue_timeout=WAIT)
    slot = admission.acquire()
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        admission.acquire()
    assert refused.value.reason == "queue_full" and time.monotonic() - started < 1
    slot.release()
    admission.acquire().release()


def test_queued_request_gives_up_after_the_timeout():
    admission = Admission(slots=1, queue_size=1, queue_timeout=0.2)
    slot = admission.acquire()
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        admission.acquire()
    assert refused.value.status == 429 and refused.value.reason == "queue_timeout"
    assert 0.2 <= time.monotonic() - started < WAIT
    assert admission.waiting == 0
    slot.release()


def test_waiters_are_served_in_arrival_order():
    admission = Admission(slots=1, queue_size=3, queue_timeout=WAIT)
    slot = admission.acquire()
    waiters = []
    for _ in range(3):
        waiters.append(acquire_in_thread(admission))
        wait_until(lambda: admission.waiting == len(waiters))
    order = []
    for _ in waiters:
        slot.release()
        wait_until(lambda: any("slot" in outcome and i not in order for i, (_, outcome) in enumerate(waiters)))
        newest = next(i for i, (_, outcome) in enumerate(waiters) if "slot" in outcome and i not in order)
        order.append(newest)
        slot = waiters[newest][1]["slot"]
    slot.release()
    assert order == [0, 1, 2]


def test_release_is_idempotent_and_reports_changes():
    changes = []
    admission = Admission(slots=1, queue_size=0, queue_timeout=WAIT, on_change=lambda a, w: changes.append((a, w)))
    slot = admission.acquire()
    slot.release()
    slot.release()
    assert admission.active == 0
    assert changes == [(1, 0), (0, 0)]


def test_retry_after_follows_recent_generation_times():
    admission = Admission(slots=1, queue_size=0, queue_timeout=WAIT)
    assert admission.retry_after_seconds() == 1  # nothing measured yet
    admission._recent_seconds.extend([2.5, 3.5])  # as if two generations took 2.5 s and 3.5 s
    assert admission.retry_after_seconds() == 3
    admission._recent_seconds.extend([500.0] * 20)
    assert admission.retry_after_seconds() == 60  # capped: a client should come back within a minute


@pytest.mark.parametrize("path", ["/generate", "/generate/stream"])
def test_busy_server_answers_429_with_retry_after_and_counts_it(make_app, path):
    from prometheus_client.parser import text_string_to_metric_families

    app = make_app(GENERATION_SLOTS=1, QUEUE_SIZE=0)
    client = app.test_client()
    slot = app.extensions["admission"].acquire()
    try:
        response = client.post(path, json={"text": "a", "max_new_tokens": 1})
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert response.get_json()["error"]["type"] == "overloaded"
    finally:
        slot.release()
    assert client.post(path, json={"text": "a", "max_new_tokens": 1}).status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    rejections = {
        s.labels["reason"]: s.value for s in families["autocomplete_rejections"].samples if s.name.endswith("_total")
    }
    assert rejections == {"queue_full": 1.0}


def test_queued_request_runs_when_the_slot_frees(make_app):
    app = make_app(GENERATION_SLOTS=1, QUEUE_SIZE=1)
    admission = app.extensions["admission"]
    slot = admission.acquire()
    result = {}

    def request():
        result["response"] = app.test_client().post("/generate", json={"text": "a", "max_new_tokens": 2})

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    wait_until(lambda: admission.waiting == 1)
    slot.release()
    thread.join(WAIT)
    assert result["response"].status_code == 200


def test_a_queued_client_that_hangs_up_gives_its_place_up(make_app):
    """Issue 14: clients that left while queued kept their places (and the queued gauge) until a
    slot freed. Real HTTP over loopback to werkzeug's server; the test itself holds the one slot."""
    import http.client
    import json

    from prometheus_client.parser import text_string_to_metric_families
    from werkzeug.serving import make_server

    app = make_app(GENERATION_SLOTS=1, QUEUE_SIZE=4, QUEUE_TIMEOUT_SECONDS=30.0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    admission = app.extensions["admission"]
    slot = admission.acquire()
    body = json.dumps({"text": "a", "max_new_tokens": 1})
    try:
        queued = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT) for _ in range(3)]
        for connection in queued:
            connection.request("POST", "/generate", body=body, headers={"Content-Type": "application/json"})
        wait_until(lambda: admission.waiting == 3)
        for connection in queued:
            connection.close()  # hang up without reading the answer
        wait_until(lambda: admission.waiting == 0, timeout=2.0)  # while the slot is still held
        assert admission.active == 1
        metrics = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
        metrics.request("GET", "/metrics")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(metrics.getresponse().read().decode())
            for s in f.samples
        }
        assert samples[("autocomplete_generations_queued", ())] == 0
        assert samples[("autocomplete_rejections_total", (("reason", "client_closed"),))] == 3
    finally:
        slot.release()
    served = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    served.request("POST", "/generate", body=body, headers={"Content-Type": "application/json"})
    assert served.getresponse().status == 200
    server.shutdown()
