"""The service's settings, read from AUTOCOMPLETE_* environment variables.

create_app() starts from these and lets a test_config mapping override any key. A value that
cannot be parsed stops the app at start-up with a message naming the variable: a typo in a
deployment should fail loudly, not serve with a silently different setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "AUTOCOMPLETE_"

DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "arxiv-gpt2-6x512-bpe16k"
DEFAULT_FRONTEND_DIR = REPO_ROOT / "frontend" / "dist"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
# Requests decoded together in one worker's running batch (backend/engine/batch.py); an engine
# that cannot batch (Engine.batches) runs one at a time whatever this says.
DEFAULT_GENERATION_SLOTS = 8
DEFAULT_QUEUE_SIZE = 8
# How long a queued request waits for a slot before it is turned away with 429.
DEFAULT_QUEUE_TIMEOUT_SECONDS = 30.0
# Per worker: the KV caches of recent prompts, so that a prompt extending one (a person typing
# on) prefills only its new tokens (backend/engine/prefix_cache.py). The shipped model's cache
# takes 24 KiB per position, so 64 MiB hold about a dozen prompts of 200 tokens.
DEFAULT_PREFIX_CACHE_MB = 64


# AUTOCOMPLETE_BATCHING, passed to Engine.load: "on" batches concurrent requests when the graph
# keeps rows independent, "force" batches a row-coupled (dynamically quantized) graph too, "off"
# never batches (backend.engine.engine.batching_refusal). Defined here, not in backend.engine:
# gunicorn's master imports this module, and importing the engine there would initialise
# onnxruntime before the fork, which made workers abort on exit (std::system_error).
BATCHING_MODES = ("on", "off", "force")


class ConfigError(ValueError):
    """An AUTOCOMPLETE_* variable holds a value the service cannot use."""


def available_cores() -> int:
    """CPU cores this process may run on (respects container CPU sets, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def env_int(name: str, default: int, minimum: int, environ: Mapping[str, str] | None = None) -> int:
    """Integer variable `name` (full name, prefix included), at least `minimum`."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None = None) -> str:
    """Variable `name` (full name), one of `choices`."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def from_env(environ: Mapping[str, str] | None = None) -> dict:
    """Flask config keys from the environment; names match the contract's variables."""
    environ = os.environ if environ is None else environ
    origins = environ.get(PREFIX + "CORS_ORIGINS", "")
    return {
        "MODEL_DIR": environ.get(PREFIX + "MODEL_DIR") or str(DEFAULT_MODEL_DIR),
        # Single-process default: every core. gunicorn.conf.py sets this to cores / workers.
        "INTRA_OP_THREADS": env_int(PREFIX + "INTRA_OP_THREADS", available_cores(), 1, environ),
        "BATCHING": env_choice(PREFIX + "BATCHING", "on", BATCHING_MODES, environ),
        "GENERATION_SLOTS": env_int(PREFIX + "GENERATION_SLOTS", DEFAULT_GENERATION_SLOTS, 1, environ),
        "QUEUE_SIZE": env_int(PREFIX + "QUEUE_SIZE", DEFAULT_QUEUE_SIZE, 0, environ),
        "QUEUE_TIMEOUT_SECONDS": DEFAULT_QUEUE_TIMEOUT_SECONDS,
        "PREFIX_CACHE_MB": env_int(PREFIX + "PREFIX_CACHE_MB", DEFAULT_PREFIX_CACHE_MB, 0, environ),
        # Flask/werkzeug answer 413 for bodies above this before any view reads them.
        "MAX_CONTENT_LENGTH": env_int(PREFIX + "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1, environ),
        "CORS_ORIGINS": [origin.strip().rstrip("/") for origin in origins.split(",") if origin.strip()],
        "FRONTEND_DIR": environ.get(PREFIX + "FRONTEND_DIR") or str(DEFAULT_FRONTEND_DIR),
    }
