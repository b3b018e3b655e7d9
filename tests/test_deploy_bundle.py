"""The Elastic Beanstalk source bundle: exactly what runs, pinned serving requirements, EB settings,
and the unzipped bundle started as EB starts it (also streaming through the platform nginx).

Bundles are built from a fake model directory and front-end build in tmp, so no real model is
needed. Oracles: an exact expected file list; git for .ebignore's gitignore semantics; pip for
the generated requirements.txt; a YAML parser for .ebextensions. The nginx settings themselves
are tested in test_nginx_platform.py.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from deploy import eb_bundle
from tests.live_gunicorn import free_port, wait_until_healthy
from tests.nginx_proxy import nginx_in_front_of
from tests.sse import parse_sse

REPO = Path(__file__).resolve().parents[1]
HEAVY_PACKAGES = {
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
    "onnx",
    "datasets",
    "arxiv",
    "matplotlib",
    "boto3",
    "moto",
    "pytest",
}


def write(path: Path, text: str = "x", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


@pytest.fixture
def fake_model(tmp_path):
    model = tmp_path / "model"
    for name in (
        "model.onnx",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "vocab.json",
        "merges.txt",
        "metrics.json",
    ):
        write(model / name, f"fake {name}")
    return model


@pytest.fixture
def fake_dist(tmp_path):
    dist = tmp_path / "dist"
    write(dist / "index.html", "<!doctype html><div id=root></div>")
    write(dist / "assets/index-abc123.js", "console.log(1)")
    return dist


@pytest.fixture
def fake_repo(tmp_path):
    """A repo tree holding what runs plus everything that must stay out of a deployment."""
    repo = tmp_path / "repo"
    for name in (
        "Procfile",
        "requirements/serve.txt",
        "requirements/constraints.txt",
        ".ebextensions/01-autocomplete.config",
        ".platform/nginx/conf.d/streaming.conf",
        ".platform/nginx/conf.d/elasticbeanstalk/generate-stream.conf",
    ):
        shutil.copy2(REPO / name, write(repo / name))
    write(repo / ".platform/hooks/postdeploy/01-warm.sh", "#!/bin/sh\n", mode=0o755)
    write(repo / "backend/__init__.py")
    write(repo / "backend/api/generate.py")
    write(repo / "backend/__pycache__/__init__.cpython-311.pyc")
    write(repo / "backend/api/stale.pyc")
    junk = [
        "tests/test_api.py",
        ".venv/bin/python",
        "frontend/src/main.tsx",
        "frontend/package.json",
        "frontend/node_modules/react/index.js",
        "model_creation/train.py",
        "runs/train/model.safetensors",
        "bench/load.py",
        "requirements/train.txt",
        "requirements/test.txt",
        "README.md",
        "Makefile",
        "Dockerfile",
        ".ebignore",
        "models/other-model/model.onnx",
        "artifacts/eb/old.zip",
    ]
    for name in junk:
        write(repo / name)
    return repo


def build(repo, model, dist, tmp_path, name="bundle.zip") -> zipfile.ZipFile:
    path = eb_bundle.build_bundle(tmp_path / name, repo=repo, model_dir=model, frontend_dist=dist)
    return zipfile.ZipFile(path)


EXPECTED = {
    "Procfile",
    "requirements.txt",
    "requirements/serve.txt",
    "requirements/constraints.txt",
    ".ebextensions/01-autocomplete.config",
    ".platform/nginx/conf.d/streaming.conf",
    ".platform/nginx/conf.d/elasticbeanstalk/generate-stream.conf",
    ".platform/hooks/postdeploy/01-warm.sh",
    "backend/__init__.py",
    "backend/api/generate.py",
    "models/arxiv-gpt2-6x512-bpe16k/model.onnx",
    "models/arxiv-gpt2-6x512-bpe16k/config.json",
    "models/arxiv-gpt2-6x512-bpe16k/generation_config.json",
    "models/arxiv-gpt2-6x512-bpe16k/tokenizer.json",
    "models/arxiv-gpt2-6x512-bpe16k/vocab.json",
    "models/arxiv-gpt2-6x512-bpe16k/merges.txt",
    "models/arxiv-gpt2-6x512-bpe16k/metrics.json",
    "frontend/dist/index.html",
    "frontend/dist/assets/index-abc123.js",
}


def test_bundle_holds_exactly_the_allow_list(fake_repo, fake_model, fake_dist, tmp_path):
    with build(fake_repo, fake_model, fake_dist, tmp_path) as bundle:
        assert set(bundle.namelist()) == EXPECTED
        assert bundle.read("models/arxiv-gpt2-6x512-bpe16k/model.onnx") == b"fake model.onnx"
        assert bundle.read("Procfile") == (REPO / "Procfile").read_bytes()
        # EB runs platform hooks only if they are executable.
        assert bundle.getinfo(".platform/hooks/postdeploy/01-warm.sh").external_attr >> 16 == 0o100755
        assert bundle.getinfo("backend/__init__.py").external_attr >> 16 == 0o100644


def test_bundle_is_reproducible(fake_repo, fake_model, fake_dist, tmp_path):
    first = eb_bundle.build_bundle(tmp_path / "a.zip", repo=fake_repo, model_dir=fake_model, frontend_dist=fake_dist)
    second = eb_bundle.build_bundle(tmp_path / "b.zip", repo=fake_repo, model_dir=fake_model, frontend_dist=fake_dist)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_bundle_from_this_repo_ships_serving_files_only(fake_model, fake_dist, tmp_path):
    with build(REPO, fake_model, fake_dist, tmp_path) as bundle:
        names = bundle.namelist()
    for required in (
        "Procfile",
        "requirements.txt",
        "backend/__init__.py",
        "backend/gunicorn.conf.py",
        ".ebextensions/01-autocomplete.config",
        ".platform/nginx/conf.d/streaming.conf",
        "models/arxiv-gpt2-6x512-bpe16k/model.onnx",
        "frontend/dist/index.html",
    ):
        assert required in names
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {
        "Procfile",
        "requirements.txt",
        "requirements",
        ".ebextensions",
        ".platform",
        "backend",
        "models",
        "frontend",
    }
    assert not [
        n
        for n in names
        if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("frontend/src", "frontend/node_modules", "tests"))
    ]


def test_ebignore_lets_the_eb_cli_upload_the_same_files(fake_repo, fake_model, fake_dist, tmp_path):
    """git applies .ebignore's gitignore syntax: what it leaves is what the bundler ships."""
    shutil.copytree(fake_model, fake_repo / "models/arxiv-gpt2-6x512-bpe16k")
    shutil.copytree(fake_dist, fake_repo / "frontend/dist")
    shutil.copy2(REPO / ".ebignore", fake_repo / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=fake_repo, check=True)
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=fake_repo, capture_output=True, text=True, check=True
    ).stdout
    assert set(listed.split()) == EXPECTED - {"requirements.txt"}


def test_requirements_are_serving_pins_constrained_like_the_repo(fake_repo, fake_model, fake_dist, tmp_path):
    with build(fake_repo, fake_model, fake_dist, tmp_path) as bundle:
        bundle.extractall(tmp_path / "unzipped")
    requirements = (tmp_path / "unzipped/requirements.txt").read_text()
    pins = [line for line in requirements.splitlines() if line and not line.startswith(("#", "-"))]
    serve = [
        line
        for line in (REPO / "requirements/serve.txt").read_text().splitlines()
        if line and not line.startswith(("#", "-"))
    ]
    assert pins == serve
    assert "-c requirements/constraints.txt" in requirements.splitlines()
    assert all(re.fullmatch(r"[\w.\-]+==[\w.]+", pin) for pin in pins)
    assert not {pin.split("==")[0].lower() for pin in pins} & HEAVY_PACKAGES
    # pip itself resolves the file, its -c path and the pins against this (serving-complete) venv.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-r", "requirements.txt"],
        cwd=tmp_path / "unzipped",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Would install" not in result.stdout


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda repo, model, dist: (model / "model.onnx").unlink(), "lacks model.onnx"),
        (lambda repo, model, dist: (model / "tokenizer.json").unlink(), "lacks tokenizer.json"),
        (
            lambda repo, model, dist: (dist / "index.html").unlink(),
            "has no index.html; build the front end (make frontend)",
        ),
        (lambda repo, model, dist: (repo / "Procfile").unlink(), "Procfile is missing"),
        (lambda repo, model, dist: shutil.rmtree(repo / ".ebextensions"), ".ebextensions/ is missing"),
        (
            lambda repo, model, dist: write(repo / "requirements/serve.txt", "-c constraints.txt\nFlask>=3\n"),
            "'Flask>=3' is not pinned with ==",
        ),
    ],
    ids=[
        "no-model-onnx",
        "no-tokenizer",
        "no-frontend-build",
        "no-procfile",
        "no-ebextensions",
        "unpinned-requirement",
    ],
)
def test_incomplete_sources_are_refused_with_a_reason(fake_repo, fake_model, fake_dist, tmp_path, breakage, message):
    breakage(fake_repo, fake_model, fake_dist)
    with pytest.raises(eb_bundle.BundleError, match=re.escape(message)):
        eb_bundle.build_bundle(tmp_path / "bundle.zip", repo=fake_repo, model_dir=fake_model, frontend_dist=fake_dist)
    assert not (tmp_path / "bundle.zip").exists()


def test_cli_names_the_bundle_after_the_version_and_reports_errors(fake_model, fake_dist, tmp_path, capsys):
    assert (
        eb_bundle.main(
            [
                "--model-dir",
                str(fake_model),
                "--frontend-dist",
                str(fake_dist),
                "--output-dir",
                str(tmp_path),
                "--version",
                "abc123",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "abstract-autocomplete-abc123.zip") and Path(out).is_file()

    assert (
        eb_bundle.main(
            [
                "--model-dir",
                str(tmp_path / "missing"),
                "--frontend-dist",
                str(fake_dist),
                "--output-dir",
                str(tmp_path),
                "--version",
                "x",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("eb_bundle: model directory") and "Traceback" not in err


def test_version_is_the_git_commit():
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(re.escape(sha) + r"(-dirty)?", eb_bundle.source_version(REPO))


def test_ebextensions_set_health_check_host_port_and_instance():
    options = yaml.safe_load((REPO / ".ebextensions/01-autocomplete.config").read_text())["option_settings"]
    env = options["aws:elasticbeanstalk:application:environment"]
    assert (env["HOST"], env["PORT"]) == ("0.0.0.0", "8000")
    assert all(isinstance(value, str) for value in env.values())  # EB environment values are strings
    assert options["aws:elasticbeanstalk:environment:process:default"]["HealthCheckPath"] == "/health"
    assert options["aws:elasticbeanstalk:application"]["Application Healthcheck URL"] == "/health"
    assert options["aws:autoscaling:launchconfiguration"]["InstanceType"] in {"t3.small", "t3.medium"}
    assert options["aws:elasticbeanstalk:environment:proxy"]["ProxyServer"] == "nginx"


def test_procfile_runs_gunicorn_with_the_app_factory():
    (line,) = (REPO / "Procfile").read_text().splitlines()
    assert line == "web: gunicorn -c backend/gunicorn.conf.py 'backend:create_app()'"


@pytest.fixture(scope="module")
def bundle_app(tiny_model_dir, tmp_path_factory):
    """The bundle unzipped and started as EB does: its Procfile line, from its root, with the .ebextensions environment.

    Nothing points at the repo: the model and front end are found at their default paths inside
    the bundle, so a module or file missing from the allow-list shows up here. Yields
    (port, index.html bytes); on teardown gunicorn must stop cleanly on SIGTERM.
    """
    tmp_path = tmp_path_factory.mktemp("bundle-app")
    dist = tmp_path / "dist"
    index = write(dist / "index.html", "<!doctype html><title>bundle</title>").read_bytes()
    with build(REPO, tiny_model_dir, dist, tmp_path) as bundle:
        bundle.extractall(tmp_path / "app")
    app = tmp_path / "app"
    options = yaml.safe_load((app / ".ebextensions/01-autocomplete.config").read_text())["option_settings"]
    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("AUTOCOMPLETE_") and key != "PYTHONPATH"
    }
    env.update(options["aws:elasticbeanstalk:application:environment"])
    # Loopback and one worker here; the rest as configured for EB.
    env.update(
        HOST="127.0.0.1", PORT=str(port), AUTOCOMPLETE_WORKERS="1", PATH=f"{Path(sys.executable).parent}:{env['PATH']}"
    )
    (line,) = (app / "Procfile").read_text().splitlines()
    server = subprocess.Popen(
        ["bash", "-c", "exec " + line.partition(":")[2].strip()],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_until_healthy(f"http://127.0.0.1:{port}", server, timeout=60)  # a 200 answer
        assert health["status"] == "ok"
        yield port, index
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output


def post_stream(port: int, body: dict) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/generate/stream",
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"},
    )
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    assert response.getheader("Content-Encoding") is None
    return response.read()


def test_unzipped_bundle_serves_health_page_and_generation(bundle_app):
    port, index = bundle_app
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/")
    page = connection.getresponse()
    assert page.status == 200 and page.read() == index
    connection.request(
        "POST",
        "/generate",
        body=json.dumps({"text": "We propose", "max_new_tokens": 3, "seed": 1}),
        headers={"Content-Type": "application/json"},
    )
    generated = connection.getresponse()
    body = json.loads(generated.read())
    assert generated.status == 200 and body["usage"]["completion_tokens"] <= 3 and len(body["completions"]) == 1


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light) to proxy through"
)
def test_token_stream_through_the_platform_nginx_is_the_direct_stream(bundle_app, tmp_path):
    """The bundle's .platform nginx settings in front of the bundle's gunicorn change nothing in the events."""
    port, _ = bundle_app
    request = {"text": "We propose a method to", "max_new_tokens": 12, "seed": 7, "temperature": 1.0}
    direct = parse_sse(post_stream(port, request).decode())
    nginx, proxy_port = nginx_in_front_of(port, tmp_path)
    try:
        proxied = parse_sse(post_stream(proxy_port, request).decode())
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
    tokens = [data for event, data in proxied if event == "token"]
    assert [event for event, _ in proxied] == ["token"] * len(tokens) + ["done"] and tokens
    assert tokens == [data for event, data in direct if event == "token"]
    (done,) = [data for event, data in proxied if event == "done"]
    assert "".join(t["text"] for t in tokens) == done["completions"][0]["text"]
