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
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.load_clients import run_load

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"clients": (1, 64), "duration": (1, 120), "max_new_tokens": (1, 64), "slow_clients": (0, 1024)}


class LoadError(RuntimeError):
    """The load test cannot run as asked."""


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


def bounded(name: str, value: float) -> float:
    low, high = LIMITS[name]
    if not low <= value <= high:
        raise LoadError(f"--{name.replace('_', '-')} must be between {low} and {high}, got {value:g}")
    return value


def bounded_args(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """bounded() on each of these parsed arguments; a list (client counts) has each of its items checked."""
    for name in names:
        value = getattr(args, name)
        for item in value if isinstance(value, list) else [value]:
            bounded(name, item)


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
        bounded_args(args, ("clients", "duration", "max_new_tokens", "slow_clients"))
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
