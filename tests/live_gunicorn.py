"""gunicorn started the way `make run` starts it, on a free loopback port, for live-server tests.

Shared by the API's live tests, the browser end-to-end test and the shipped-model screenshot:
every wait is bounded, the server listens on 127.0.0.1 only, and SIGTERM ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(
    base: str,
    process: subprocess.Popen,
    timeout: float = START_TIMEOUT,
    log: Callable[[], str] = lambda: "",
    status: int = 200,
) -> dict:
    """Poll `base`/health until it answers `status` (200: the model is loaded; 503: a test of a
    model that must fail to load) and return its JSON body; fail if `process` exits or `timeout`
    seconds pass (`log` supplies the server's output for the message)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"server exited with {process.returncode}:\n{log()}"
        assert time.monotonic() < deadline, f"server not healthy after {timeout} s:\n{log()}"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if status == 200:
                    return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == status:
                return json.load(error)
        except (OSError, ValueError):  # refused, or a half-written body
            pass
        time.sleep(0.1)


@contextlib.contextmanager
def live_server(
    model_dir: Path, tmp_path: Path, *, health_status: int = 200, **env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start gunicorn over `model_dir`, wait for /health to answer `health_status`, yield
    (base_url, process). Other keyword arguments are environment variables (e.g.
    AUTOCOMPLETE_FRONTEND_DIR) over the defaults."""
    port = free_port()
    metrics_dir = tmp_path / f"metrics-{port}"
    metrics_dir.mkdir()
    environment = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "AUTOCOMPLETE_MODEL_DIR": str(model_dir),
        "AUTOCOMPLETE_FRONTEND_DIR": str(tmp_path / "no-frontend"),
        "AUTOCOMPLETE_INTRA_OP_THREADS": "1",
        "AUTOCOMPLETE_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **env,
    }
    log_path = tmp_path / f"gunicorn-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn.conf.py", "backend:create_app()"],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process, log=log_path.read_text, status=health_status)
            yield base, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
