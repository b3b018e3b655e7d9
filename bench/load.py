"""Load test on loopback: many concurrent clients against /generate while /health is watched.

    python -m bench.load --model-dir models/arxiv-gpt2-6x512-bpe16k --clients 16 --duration 30
    python -m bench.load --url http://127.0.0.1:8000 --clients 8 --duration 10
    python -m bench.load --slow-clients 256 --clients 2 --duration 20   # while 256 half-sent requests wait

Without --url it starts the production command itself (gunicorn with backend/gunicorn.conf.py,
as in the Procfile) on a free loopback port and stops it at the end. Each client thread keeps
one HTTP connection and posts small generations back to back until the time is up; a separate
thread polls /health the whole time. Reported: requests served, 429s (the admission queue
turning work away, expected under overload), errors (anything else), latency percentiles of
the served requests, and /health failures. --slow-clients N first opens N connections that each
send half a request (a head without its blank line, or a body shorter than its Content-Length)
and then wait: the report says how slow /health got meanwhile, and when and how the server
dropped them (it should answer 408 after its read timeout). Bounded in clients, time and tokens, and refuses
any target that is not loopback, so it cannot be pointed at someone else's server.
Exit status 1 when a request errored, /health failed, or the server died.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"clients": (1, 64), "duration": (1, 120), "max_new_tokens": (1, 64), "slow_clients": (0, 1024)}
SLOW_HEAD = b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
SLOW_REQUESTS = (
    SLOW_HEAD + b"X-Still-Typing: yes\r\n",  # the head never ends
    SLOW_HEAD + b'Content-Length: 100\r\n\r\n{"text": ',
)  # 10 of 100 body bytes
PROMPTS = (
    "We propose a method to",
    "In this paper, we study",
    "Large language models have",
    "We introduce a novel benchmark for",
    "Graph neural networks",
    "Reinforcement learning agents often",
)


class LoadError(RuntimeError):
    """The load test cannot run as asked."""


@dataclass
class Tally:
    served: int = 0
    rejected_429: int = 0
    errors: int = 0
    completion_tokens: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)  # streamed requests only
    error_samples: list[str] = field(default_factory=list)
    health_ok: int = 0
    health_failed: int = 0
    health_max_ms: float = 0.0
    slow_clients: int = 0
    slow_dropped: int = 0  # closed by the server before the run ended
    slow_answered: dict[str, int] = field(default_factory=dict)  # status line of what they got -> count
    slow_dropped_after_s: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(what)


def loopback_target(url: str) -> tuple[str, int]:
    """(host, port) of an http URL on this machine; anything else is refused without a lookup."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LoadError(f"--url must be http://HOST:PORT, got {url!r}")
    host = parts.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LoadError(f"refusing to load {host}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed")
    return host, parts.port or 80


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) / 100))
    return ordered[rank - 1]


def read_stream(response: http.client.HTTPResponse, start: float) -> tuple[dict, float | None]:
    """(the `done` event's data, ms from `start` to the first token) of a /generate/stream body."""
    first_ms, event, done = None, None, {}
    for line in iter(response.readline, b""):
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
            if event == "token" and first_ms is None:
                first_ms = (time.perf_counter() - start) * 1000
        elif line.startswith("data: ") and event in ("done", "error"):
            done = {"event": event, **json.loads(line[6:])}
    response.read()  # readline() at the end of the body leaves the response open; the next request needs it done
    return done, first_ms


def client_loop(
    host: str, port: int, index: int, deadline: float, max_new_tokens: int, tally: Tally, stream: bool = False
) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    path = "/generate/stream" if stream else "/generate"
    sent = 0
    while time.monotonic() < deadline:
        body = json.dumps(
            {
                "text": PROMPTS[(index + sent) % len(PROMPTS)],
                "max_new_tokens": max_new_tokens,
                "seed": index * 100003 + sent,
            }
        )
        sent += 1
        start = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            if stream and response.status == 200:
                done, first_ms = read_stream(response, start)
                payload = json.dumps(done).encode()
            else:
                payload, first_ms = response.read(), None
        except (OSError, http.client.HTTPException, ValueError) as error:
            tally.error(f"{type(error).__name__}: {error}")
            connection.close()  # reconnects on the next request
            time.sleep(0.05)
            continue
        elapsed_ms = (time.perf_counter() - start) * 1000
        if response.status == 200 and "usage" in (result := json.loads(payload)):
            with tally.lock:
                tally.served += 1
                tally.completion_tokens += result["usage"]["completion_tokens"]
                tally.latencies_ms.append(elapsed_ms)
                if first_ms is not None:
                    tally.first_token_ms.append(first_ms)
        elif response.status == 429:
            with tally.lock:
                tally.rejected_429 += 1
            # Back off as a polite client would, without waiting out the whole Retry-After.
            time.sleep(min(float(response.getheader("Retry-After") or 1), 0.2))
        else:
            tally.error(f"HTTP {response.status}: {payload[:200]!r}")
    connection.close()


def health_loop(host: str, port: int, stop: threading.Event, tally: Tally, interval: float = 0.5) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            ok = response.status == 200 and json.loads(response.read()).get("status") == "ok"
            connection.close()
        except (OSError, http.client.HTTPException, ValueError):
            ok = False
        elapsed_ms = (time.perf_counter() - start) * 1000
        with tally.lock:
            tally.health_ok += ok
            tally.health_failed += not ok
            tally.health_max_ms = max(tally.health_max_ms, elapsed_ms)
        stop.wait(interval)


def open_slow_clients(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` connections, each holding half a request."""
    sockets = []
    for i in range(count):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(SLOW_REQUESTS[i % 2])
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def watch_slow_clients(sockets: list[socket.socket], opened: float, stop: threading.Event, tally: Tally) -> None:
    """Record what each slow connection is answered and when the server closes it."""
    selector = selectors.DefaultSelector()
    received = {}
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    while selector.get_map() and not stop.is_set():
        for key, _ in selector.select(0.2):
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            received[key.fileobj] += data
            if not data:
                selector.unregister(key.fileobj)
                answer = received[key.fileobj].split(b"\r\n", 1)[0].decode("latin-1") or "closed without an answer"
                with tally.lock:
                    tally.slow_dropped += 1
                    tally.slow_answered[answer] = tally.slow_answered.get(answer, 0) + 1
                    tally.slow_dropped_after_s.append(time.monotonic() - opened)
    selector.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    model_dir: Path, workers: int, log_path: Path, ready_timeout: float = 180.0, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int]:
    """The Procfile's gunicorn on a free loopback port, returned once /health says ok;
    `settings` are further environment variables (AUTOCOMPLETE_BATCHING=off, ...)."""
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "AUTOCOMPLETE_MODEL_DIR": str(model_dir),
        "AUTOCOMPLETE_WORKERS": str(workers),
        **(settings or {}),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = log_path.open("w")
    server = subprocess.Popen(
        [str(gunicorn), "-c", "backend/gunicorn.conf.py", "backend:create_app()"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise LoadError(f"gunicorn exited with {server.returncode} before it was healthy; see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server, port
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.25)
    stop_server(server)
    raise LoadError(f"gunicorn was not healthy within {ready_timeout:.0f} s; see {log_path}")


def stop_server(server: subprocess.Popen) -> int:
    server.send_signal(signal.SIGTERM)  # graceful: requests in flight finish first
    try:
        return server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.wait()


def run_load(
    host: str,
    port: int,
    clients: int,
    duration: float,
    max_new_tokens: int,
    server: subprocess.Popen | None = None,
    slow_clients: int = 0,
    stream: bool = False,
) -> dict:
    tally, stop = Tally(slow_clients=slow_clients), threading.Event()
    slow = open_slow_clients(host, port, slow_clients)
    slow_watcher = threading.Thread(target=watch_slow_clients, args=(slow, time.monotonic(), stop, tally), daemon=True)
    slow_watcher.start()
    watcher = threading.Thread(target=health_loop, args=(host, port, stop, tally), daemon=True)
    watcher.start()
    started = time.monotonic()
    deadline = started + duration
    threads = [
        threading.Thread(target=client_loop, args=(host, port, i, deadline, max_new_tokens, tally, stream), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 90)
    elapsed = time.monotonic() - started
    stop.set()
    watcher.join(timeout=10)
    slow_watcher.join(timeout=10)
    for sock in slow:
        sock.close()
    report = {
        f.name: getattr(tally, f.name)
        for f in fields(tally)
        if f.name not in ("latencies_ms", "first_token_ms", "lock", "slow_dropped_after_s")
    }
    dropped = tally.slow_dropped_after_s
    report["slow_dropped_after_s"] = {"min": round(min(dropped), 1), "max": round(max(dropped), 1)} if dropped else None
    report.update(
        clients=clients,
        duration_s=round(elapsed, 1),
        max_new_tokens=max_new_tokens,
        requests_per_s=round(tally.served / elapsed, 2),
        tokens_per_s=round(tally.completion_tokens / elapsed, 1),
        latency_ms={
            f"p{q}": (round(v, 1) if (v := percentile(tally.latencies_ms, q)) is not None else None)
            for q in (50, 90, 99)
        },
        server_alive=server.poll() is None if server else None,
    )
    report["latency_ms"]["max"] = round(max(tally.latencies_ms), 1) if tally.latencies_ms else None
    first = percentile(tally.first_token_ms, 50)
    report["first_token_ms_p50"] = round(first, 1) if first is not None else None
    report["health_max_ms"] = round(tally.health_max_ms, 1)
    return report


def bounded(name: str, value: float) -> float:
    low, high = LIMITS[name]
    if not low <= value <= high:
        raise LoadError(f"--{name.replace('_', '-')} must be between {low} and {high}, got {value:g}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="an already running server on loopback, e.g. http://127.0.0.1:8000")
    target.add_argument(
        "--model-dir",
        type=Path,
        default=REPO / "models/arxiv-gpt2-6x512-bpe16k",
        help="model to serve when starting gunicorn here (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="gunicorn workers when starting it here (default: %(default)s)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, 1-64 (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load, 1-120 (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="tokens per request, 1-64 (default: %(default)s)")
    parser.add_argument(
        "--slow-clients", type=int, default=0, help="connections holding half a request, 0-1024 (default: %(default)s)"
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    server = None
    try:
        bounded("clients", args.clients)
        bounded("duration", args.duration)
        bounded("max_new_tokens", args.max_new_tokens)
        bounded("slow_clients", args.slow_clients)
        if args.url:
            host, port = loopback_target(args.url)
        else:
            host = "127.0.0.1"
            log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"load-gunicorn-{os.getpid()}.log"
            server, port = start_server(args.model_dir, args.workers, log_path)
            print(
                f"load: gunicorn ({args.workers} worker(s), {args.model_dir}) on 127.0.0.1:{port}, log {log_path}",
                file=sys.stderr,
            )
        report = run_load(host, port, args.clients, args.duration, args.max_new_tokens, server, args.slow_clients)
    except LoadError as error:
        print(f"load: {error}", file=sys.stderr)
        return 2
    finally:
        exit_code = stop_server(server) if server else None
    if server:
        report["server_exit_code"] = exit_code
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    healthy = report["errors"] == 0 and report["health_failed"] == 0 and report["server_alive"] is not False
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
