"""The API's configuration: AUTOCOMPLETE_* environment variables (defaults, values read, bad values
naming the variable) and the gunicorn config keeping threads within the available cores."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from backend.config import ConfigError, available_cores, from_env

REPO = Path(__file__).resolve().parent.parent


def test_env_defaults():
    config = from_env({})
    assert config["MODEL_DIR"] == str(REPO / "models" / "arxiv-gpt2-6x512-bpe16k")
    assert config["FRONTEND_DIR"] == str(REPO / "frontend" / "dist")
    assert (config["GENERATION_SLOTS"], config["QUEUE_SIZE"], config["MAX_CONTENT_LENGTH"]) == (8, 8, 256 * 1024)
    assert config["BATCHING"] == "on" and config["PREFIX_CACHE_MB"] == 64
    assert config["INTRA_OP_THREADS"] == available_cores() and config["CORS_ORIGINS"] == []


def test_env_values_are_read():
    config = from_env(
        {
            "AUTOCOMPLETE_MODEL_DIR": "/m",
            "AUTOCOMPLETE_INTRA_OP_THREADS": "3",
            "AUTOCOMPLETE_GENERATION_SLOTS": "2",
            "AUTOCOMPLETE_QUEUE_SIZE": "0",
            "AUTOCOMPLETE_BATCHING": "Off",
            "AUTOCOMPLETE_PREFIX_CACHE_MB": "0",
            "AUTOCOMPLETE_MAX_BODY_BYTES": "1000",
            "AUTOCOMPLETE_FRONTEND_DIR": "/f",
            "AUTOCOMPLETE_CORS_ORIGINS": " http://a.example/ ,https://b.example,, ",
        }
    )
    assert (
        config["MODEL_DIR"],
        config["INTRA_OP_THREADS"],
        config["GENERATION_SLOTS"],
        config["QUEUE_SIZE"],
        config["MAX_CONTENT_LENGTH"],
        config["FRONTEND_DIR"],
    ) == ("/m", 3, 2, 0, 1000, "/f")
    assert config["CORS_ORIGINS"] == ["http://a.example", "https://b.example"] and config["BATCHING"] == "off"
    assert config["PREFIX_CACHE_MB"] == 0


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("AUTOCOMPLETE_GENERATION_SLOTS", "0", "AUTOCOMPLETE_GENERATION_SLOTS must be >= 1, got 0"),
        ("AUTOCOMPLETE_QUEUE_SIZE", "-1", "AUTOCOMPLETE_QUEUE_SIZE must be >= 0, got -1"),
        ("AUTOCOMPLETE_MAX_BODY_BYTES", "256KiB", "AUTOCOMPLETE_MAX_BODY_BYTES must be an integer, got '256KiB'"),
        ("AUTOCOMPLETE_INTRA_OP_THREADS", "two", "AUTOCOMPLETE_INTRA_OP_THREADS must be an integer"),
        ("AUTOCOMPLETE_BATCHING", "yes", "AUTOCOMPLETE_BATCHING must be one of on, off, force, got 'yes'"),
        ("AUTOCOMPLETE_PREFIX_CACHE_MB", "-1", "AUTOCOMPLETE_PREFIX_CACHE_MB must be >= 0, got -1"),
    ],
)
def test_bad_env_values_stop_the_app_naming_the_variable(name, value, words):
    with pytest.raises(ConfigError, match=words):
        from_env({name: value})


@pytest.mark.parametrize(
    "env, workers, intra_op",
    [
        ({}, min(available_cores(), 4), max(1, available_cores() // min(available_cores(), 4))),
        ({"AUTOCOMPLETE_WORKERS": "2"}, 2, max(1, available_cores() // 2)),
        (
            {"AUTOCOMPLETE_WORKERS": "1", "AUTOCOMPLETE_INTRA_OP_THREADS": "64"},
            1,
            available_cores(),
        ),  # clamped to the cores
        ({"AUTOCOMPLETE_WORKERS": "3", "AUTOCOMPLETE_INTRA_OP_THREADS": "1"}, 3, 1),
    ],
)
def test_gunicorn_config_keeps_threads_within_the_cores(monkeypatch, tmp_path, env, workers, intra_op):
    for name in ("AUTOCOMPLETE_WORKERS", "AUTOCOMPLETE_INTRA_OP_THREADS", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOCOMPLETE_INTRA_OP_THREADS", env.get("AUTOCOMPLETE_INTRA_OP_THREADS", ""))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # restored after the test
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(REPO / "backend" / "gunicorn.conf.py"))
    assert settings["bind"] == "127.0.0.1:8000" and settings["worker_class"] == "backend.worker.BufferedThreadWorker"
    assert settings["workers"] == workers and settings["preload_app"] is False
    assert settings["graceful_timeout"] == settings["timeout"]
    assert int(os.environ["AUTOCOMPLETE_INTRA_OP_THREADS"]) == intra_op


def test_gunicorn_master_does_not_load_onnxruntime():
    """gunicorn's master reads backend/gunicorn.conf.py before it forks the workers: onnxruntime
    initialised there is inherited half-alive by every worker, which then aborted on exit
    (std::system_error) when backend.config imported the engine for its batching modes."""
    import subprocess
    import sys

    code = (
        "import runpy, sys; runpy.run_path('backend/gunicorn.conf.py'); "
        "print(sorted(m for m in ('onnxruntime', 'backend.engine', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
