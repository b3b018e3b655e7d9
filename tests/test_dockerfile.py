"""The Dockerfile and the Procfile, checked without a Docker engine (none runs here).

Oracles: dockerfile-parse reads the Dockerfile into instructions, docker-py's own build-context
code applies .dockerignore, and hadolint lints it. Checked: every COPY source exists and is in
the build context, the image runs the Procfile's command as a non-root user, installs serving
dependencies only, and its HEALTHCHECK command is run for real against a local /health.
The Procfile's command itself is started with the tiny model and must serve /health.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from tests.live_gunicorn import free_port, wait_until_healthy

REPO = Path(__file__).resolve().parents[1]
HEAVY_PACKAGES = {"torch", "transformers", "optimum", "optimum-onnx", "onnx", "datasets", "arxiv", "matplotlib"}


def split_stages(structure: list[dict]) -> list[dict]:
    """Stages: {"from": image, "name": alias or None, "instructions": [(INSTRUCTION, value), ...]}."""
    stages = []
    for item in structure:
        if item["instruction"] == "COMMENT":
            continue
        if item["instruction"] == "FROM":
            image, _, name = item["value"].partition(" AS ")
            stages.append({"from": image.strip(), "name": name.strip() or None, "instructions": []})
        else:
            stages[-1]["instructions"].append((item["instruction"], " ".join(item["value"].split())))
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not exec (JSON) form"
    return value


def copy_parts(args: str) -> tuple[dict, list[str], str]:
    words = shlex.split(args)
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


def shell_commands(runs: list[str]) -> list[str]:
    return [command.strip() for run in runs for command in run.split("&&")]


@pytest.fixture(scope="module")
def stages():
    return split_stages(DockerfileParser(path=str(REPO / "Dockerfile")).structure)


@pytest.fixture(scope="module")
def runtime(stages):
    return stages[-1]["instructions"]


@pytest.fixture(scope="module")
def build_context() -> set[str]:
    """Every path Docker would send as the build context, by docker-py's .dockerignore rules."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return set(exclude_paths(str(REPO), patterns))


def procfile_command() -> list[str]:
    (line,) = (REPO / "Procfile").read_text().splitlines()
    name, _, command = line.partition(":")
    assert name == "web"
    return shlex.split(command)


def test_two_stages_node_builds_python_runs(stages):
    assert [(s["from"], s["name"]) for s in stages] == [("node:20-slim", "frontend"), ("python:3.11-slim", "runtime")]
    builds = [args for keyword, args in stages[0]["instructions"] if keyword == "RUN"]
    assert any("npm ci" in run for run in builds) and any("npm run build" in run for run in builds)


def test_every_copy_source_exists_and_is_in_the_build_context(stages, build_context):
    copied = []
    for stage in stages:
        for keyword, args in stage["instructions"]:
            if keyword != "COPY":
                continue
            flags, sources, _ = copy_parts(args)
            if "from" in flags:
                continue
            for source in sources:
                path = REPO / source
                assert path.exists(), f"COPY {source}: not in the repo"
                assert source.rstrip("/") in build_context, (
                    f"COPY {source}: .dockerignore leaves it out of the build context"
                )
                if path.is_dir():
                    needed = {
                        p.relative_to(REPO).as_posix()
                        for p in path.rglob("*")
                        if p.is_file() and not {"__pycache__", "node_modules", "dist", "test-results"} & set(p.parts)
                    }
                    assert needed and not needed - build_context, (
                        f"COPY {source}: .dockerignore drops {sorted(needed - build_context)[:5]}"
                    )
                copied.append(source.rstrip("/"))
    assert {
        "backend",
        "models/arxiv-gpt2-6x512-bpe16k",
        "requirements/serve.txt",
        "requirements/constraints.txt",
    } <= set(copied)


def test_build_context_leaves_out_everything_else(build_context):
    top_level = {path.split("/")[0] for path in build_context}
    assert top_level <= {"Dockerfile", ".dockerignore", "backend", "frontend", "models", "requirements"}
    leaked = [
        path
        for path in build_context
        if re.search(r"(^|/)(__pycache__|node_modules|dist|\.venv|tests|runs|\.git)(/|$)", path)
        or path.startswith("models/")
        and not path.startswith("models/arxiv-gpt2-6x512-bpe16k")
        or path.startswith("requirements/")
        and path not in ("requirements/serve.txt", "requirements/constraints.txt")
    ]
    assert not leaked, leaked


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_frontend_build_output_is_copied_from_the_node_stage(stages):
    workdir = next(args for keyword, args in stages[0]["instructions"] if keyword == "WORKDIR")
    (copy,) = [
        copy_parts(args) for keyword, args in stages[1]["instructions"] if keyword == "COPY" and "--from" in args
    ]
    flags, sources, dest = copy
    assert flags["from"] == "frontend" and sources == [f"{workdir}/dist/"] and dest.rstrip("/") == "frontend/dist"


def test_image_runs_the_procfile_command_as_a_non_root_user(runtime):
    keywords = [keyword for keyword, _ in runtime]
    (cmd,) = [args for keyword, args in runtime if keyword == "CMD"]
    assert exec_form(cmd) == procfile_command()
    assert keywords[-1] == "CMD"
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and keywords.index("USER") < keywords.index("CMD")
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0")
    created = [
        c for c in shell_commands([args for keyword, args in runtime if keyword == "RUN"]) if c.startswith("useradd")
    ]
    assert created and f"--uid {uid}" in created[0]  # the numeric user exists in the image
    assert ("EXPOSE", "8000") in runtime
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert re.search(r"\bHOST=0\.0\.0\.0\b", env) and re.search(r"\bPORT=8000\b", env)


def test_only_serving_requirements_are_installed(runtime):
    installs = [
        command
        for command in shell_commands([args for keyword, args in runtime if keyword == "RUN"])
        if "pip" in command
    ]
    assert installs == ["pip install --no-cache-dir -r requirements/serve.txt"]
    serve = (REPO / "requirements/serve.txt").read_text().splitlines()
    assert not [line for line in serve if line.startswith("-r")]  # serve.txt pulls in no other requirement file
    names = {re.split(r"[=<>!~\[ ]", line)[0].lower() for line in serve if line and not line.startswith(("#", "-"))}
    assert names and not names & HEAVY_PACKAGES


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "healthy"), [(200, True), (503, False), (None, False)], ids=["ok", "loading", "down"]
)
def test_healthcheck_command_reports_health(runtime, status, healthy):
    (check,) = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    options, _, command = check.partition(" CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    argv = exec_form(command)
    assert argv[0] == "python" and "/health" in argv[-1] and "curl" not in command
    handler = type("Handler", (_Health,), {"status": status or 200})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    if status is None:
        server.server_close()  # nothing listens on the port: the check must fail, not hang
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run(
            [sys.executable, *argv[1:]], env={**os.environ, "PORT": str(port)}, capture_output=True, timeout=30
        )
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()
    assert (result.returncode == 0) == healthy


def test_gunicorn_accepts_the_procfile_configuration(tiny_model_dir, tmp_path):
    argv = procfile_command()
    env = {
        **os.environ,
        "AUTOCOMPLETE_MODEL_DIR": str(tiny_model_dir),
        "AUTOCOMPLETE_FRONTEND_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / argv[0]), "--check-config", *argv[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_procfile_command_serves_health_and_stops_gracefully(tiny_model_dir, tmp_path):
    argv = procfile_command()
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "AUTOCOMPLETE_WORKERS": "1",
        "AUTOCOMPLETE_INTRA_OP_THREADS": "1",
        "AUTOCOMPLETE_MODEL_DIR": str(tiny_model_dir),
        "AUTOCOMPLETE_FRONTEND_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_until_healthy(f"http://127.0.0.1:{port}", server, timeout=60)  # a 200 answer
        assert health["status"] == "ok"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert f"Listening at: http://127.0.0.1:{port}" in output
