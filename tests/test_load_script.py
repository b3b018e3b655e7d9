"""bench/load.py and bench/load_clients.py: loopback only, bounded, counts what the server answered,
and a tiny real run."""

from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest

from bench import load, load_clients


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8000",
        "http://example.com:8000",
        "http://127.0.0.1.nip.io:8000",
        "https://127.0.0.1:8000",
        "http://0.0.0.0:8000",
        "127.0.0.1:8000",
    ],
)
def test_non_loopback_targets_are_refused(url, capsys):
    assert load.main(["--url", url, "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("load: ") and ("only loopback" in err or "must be http://HOST:PORT" in err)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("http://127.9.9.9:1234", ("127.9.9.9", 1234)),
        ("http://[::1]:8000", ("::1", 8000)),
        ("http://localhost:5000/", ("localhost", 5000)),
    ],
)
def test_loopback_targets_are_accepted(url, target):
    assert load.loopback_target(url) == target


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--clients", "0"),
        ("--clients", "65"),
        ("--duration", "0.5"),
        ("--duration", "121"),
        ("--max-new-tokens", "65"),
        ("--slow-clients", "1025"),
    ],
)
def test_bounds_are_enforced(flag, value, capsys):
    assert load.main(["--url", "http://127.0.0.1:9", flag, value]) == 2
    assert f"{flag} must be between" in capsys.readouterr().err


@pytest.mark.parametrize("n", [1, 2, 7, 100, 101])
@pytest.mark.parametrize("q", [50, 90, 99])
def test_percentile_is_nearest_rank(n, q):
    values = list(np.random.default_rng(n * q).normal(100, 30, size=n))
    assert load_clients.percentile(values, q) == pytest.approx(np.percentile(values, q, method="inverted_cdf"))


def test_tally_matches_what_the_server_answered():
    """A local server answers 200, 429 and 500 in turn; the report must count each as the server did."""
    answered = {200: 0, 429: 0, 500: 0, "health": 0}
    lock = threading.Lock()
    cycle = [200, 429, 500]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/generate" and request["max_new_tokens"] == 3
            with lock:
                status = cycle[sum(answered[s] for s in cycle) % 3]
                answered[status] += 1
            self.reply(
                status,
                {"completions": [{"text": " a b c"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
                if status == 200
                else {"error": {}},
            )

        def do_GET(self):
            with lock:
                answered["health"] += 1
            self.reply(200, {"status": "ok"})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = load_clients.run_load("127.0.0.1", server.server_address[1], clients=3, duration=1.5, max_new_tokens=3)
    finally:
        server.shutdown()
        server.server_close()
    assert (report["served"], report["rejected_429"], report["errors"]) == (answered[200], answered[429], answered[500])
    assert report["served"] > 0 and report["rejected_429"] > 0 and report["errors"] > 0
    assert report["completion_tokens"] == 3 * answered[200]
    assert report["health_ok"] == answered["health"] > 0 and report["health_failed"] == 0
    assert report["error_samples"][0].startswith("HTTP 500")


def test_tiny_run_against_the_real_server(tiny_model_dir, tmp_path, capsys):
    """Starts the Procfile's gunicorn with the tiny model, loads it for 2 s, stops it gracefully."""
    assert (
        load.main(
            [
                "--model-dir",
                str(tiny_model_dir),
                "--clients",
                "3",
                "--duration",
                "2",
                "--max-new-tokens",
                "4",
                "--json",
                str(tmp_path / "report.json"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert report["served"] > 0 and report["errors"] == 0 and report["health_failed"] == 0 and report["health_ok"] > 0
    assert report["completion_tokens"] <= 4 * report["served"]
    assert report["server_alive"] is True and report["server_exit_code"] == 0
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]


def test_slow_clients_are_held_then_dropped_with_408(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """--slow-clients: 64 half-sent requests wait while the load runs; /health keeps answering and
    the server answers each 408 once its read timeout (2 s here) has passed."""
    monkeypatch.setenv("AUTOCOMPLETE_READ_TIMEOUT", "2")
    assert (
        load.main(
            [
                "--model-dir",
                str(tiny_model_dir),
                "--clients",
                "1",
                "--duration",
                "5",
                "--max-new-tokens",
                "2",
                "--slow-clients",
                "64",
                "--json",
                str(tmp_path / "report.json"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["slow_clients"] == report["slow_dropped"] == 64
    assert report["slow_answered"] == {"HTTP/1.1 408 Request Timeout": 64}
    assert 1.5 <= report["slow_dropped_after_s"]["min"] <= report["slow_dropped_after_s"]["max"] < 5
    assert report["health_failed"] == 0 and report["health_max_ms"] < 1000 and report["served"] > 0


def test_streaming_clients_count_tokens_and_time_the_first_one():
    """--stream clients (bench/batching.py) read /generate/stream's SSE: the done event's usage is
    counted and the first token event is timed, before the whole response has arrived."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            assert self.path == "/generate/stream"
            events = [
                ("token", {"index": 0, "text": " a"}),
                ("token", {"index": 0, "text": " b"}),
                ("done", {"completions": [{"text": " a b"}], "usage": {"prompt_tokens": 2, "completion_tokens": 2}}),
            ]
            body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            data = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = load_clients.run_load(
            "127.0.0.1", server.server_address[1], clients=2, duration=1.0, max_new_tokens=2, stream=True
        )
    finally:
        server.shutdown()
        server.server_close()
    assert report["served"] > 0 and report["errors"] == 0 and report["completion_tokens"] == 2 * report["served"]
    assert report["first_token_ms_p50"] is not None and report["first_token_ms_p50"] <= report["latency_ms"]["max"]


def test_engine_load_runs_both_modes_in_worker_processes(tiny_model_dir, capsys):
    """bench/engine_load.py: bench.batching's load on the engine alone, one row per mode and client count."""
    from bench import engine_load

    assert (
        engine_load.main(
            ["--model-dir", str(tiny_model_dir), "--workers", "2", "--clients", "1", "3"]
            + ["--duration", "1", "--max-new-tokens", "4"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "engine alone (no HTTP)" in out and "2 process(es)" in out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(("| off", "| on"))]
    assert [(r[0].strip("| "), r[1]) for r in rows] == [("off", "1"), ("off", "3"), ("on", "1"), ("on", "3")]
    for row in rows:
        assert float(row[2]) > 0 and float(row[4]) > 0 and float(row[5]) > 0  # tokens/s, requests/s, p50
    assert rows[0][3] == "1.00" and rows[2][6] == "1.00"  # each ratio's own reference row


def test_engine_load_bounds_are_enforced(capsys):
    from bench import engine_load

    assert engine_load.main(["--clients", "65"]) == 2
    assert "--clients must be between" in capsys.readouterr().err
