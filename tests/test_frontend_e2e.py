"""The editor end to end: the built front end, served by the real gunicorn server over the tiny
model, driven in Debian's Chromium by frontend/e2e/*.e2e.mjs (node:test + playwright-core).

The browser scripts hold the scenarios (stream, accept, controls, stop, errors, layout,
screenshot; suggest-on-pause); this test builds what is missing, starts the server on a free
loopback port, runs the scripts with BASE_URL (and SERVER_PID, which the cancellation scenario
pauses) and fails with their output if any scenario fails. It never skips: a missing Node, npm
install or Chromium is a failure that says what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.live_gunicorn import live_server

REPO = Path(__file__).resolve().parent.parent
FRONTEND = REPO / "frontend"
DIST_INDEX = FRONTEND / "dist" / "index.html"
E2E_SCRIPTS = [FRONTEND / "e2e" / "editor.e2e.mjs", FRONTEND / "e2e" / "suggest-on-pause.e2e.mjs"]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOT = REPO / "artifacts" / "e2e" / "editor.png"
E2E_TIMEOUT_S = 420  # both scripts, one after the other, on a busy machine


def run(command: list[str], what: str, timeout: int) -> None:
    done = subprocess.run(command, cwd=FRONTEND, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def newest_source_mtime() -> float:
    sources = [FRONTEND / name for name in ("index.html", "package.json", "package-lock.json", "vite.config.ts")]
    sources += [path for path in (FRONTEND / "src").rglob("*") if path.is_file()]
    return max(path.stat().st_mtime for path in sources if path.exists())


@pytest.fixture(scope="module")
def built_frontend() -> Path:
    """frontend/dist as of the current sources (`make test` builds it first; this covers a bare pytest)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20+ and npm are needed for the browser tests (see README, Development)")
    if not (FRONTEND / "node_modules" / ".package-lock.json").is_file():
        run(["npm", "ci", "--no-audit", "--no-fund"], "npm ci", 600)
    if not DIST_INDEX.is_file() or DIST_INDEX.stat().st_mtime < newest_source_mtime():
        run(["npm", "run", "build"], "building the front end", 600)
    return DIST_INDEX.parent


@pytest.fixture(scope="module")
def server(built_frontend, tiny_model_dir, tmp_path_factory):
    """gunicorn exactly as `make run` starts it, serving the built editor and the tiny model:
    (base URL, master process)."""
    with live_server(
        tiny_model_dir, tmp_path_factory.mktemp("frontend-e2e"), AUTOCOMPLETE_FRONTEND_DIR=str(built_frontend)
    ) as (url, process):
        yield url, process


@pytest.fixture(scope="module")
def server_url(server):
    return server[0]


def test_server_serves_the_built_editor(server_url):
    with urllib.request.urlopen(f"{server_url}/", timeout=5) as response:
        page = response.read().decode()
    assert '<div id="root">' in page and "<title>Abstract autocomplete</title>" in page


def test_editor_in_a_real_browser(server):
    server_url, process = server
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` (or `make chromium`)"
        )
    if SCREENSHOT.exists():
        SCREENSHOT.unlink()
    env = {
        **os.environ,
        "BASE_URL": server_url,
        "SERVER_PID": str(process.pid),
        "CHROMIUM_PATH": str(CHROMIUM),
        "SCREENSHOT_PATH": os.environ.get("SCREENSHOT_PATH", str(SCREENSHOT)),
    }
    # One file at a time: scenarios read server-wide counters, and one pauses the server.
    command = ["node", "--test", "--test-concurrency=1", "--test-reporter=spec", *map(str, E2E_SCRIPTS)]
    done = subprocess.run(command, cwd=FRONTEND, env=env, capture_output=True, text=True, timeout=E2E_TIMEOUT_S)
    print(done.stdout)
    print(done.stderr, file=sys.stderr)
    assert done.returncode == 0, f"browser scenarios failed:\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
    assert Path(env["SCREENSHOT_PATH"]).is_file(), "the editor screenshot was saved"
