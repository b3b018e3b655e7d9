"""bench/load.py's clients and what they count: threads posting generations back to back
(plain or streamed), a /health poller, connections holding half a request, and the report of a
run. bench/load.py starts the server and reads the command line; bench/batching.py reuses run_load.
"""

from __future__ import annotations

import http.client
import json
import math
import selectors
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field, fields

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
