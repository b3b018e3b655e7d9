"""The Flask application factory: `create_app()` builds the API around one loaded Engine.

Settings come from AUTOCOMPLETE_* environment variables (backend/config.py); `test_config`
overrides any of them, and may hand over an already loaded engine as ENGINE. The model is
loaded here, before the app serves anything, once per process: onnxruntime sessions must not
cross a fork, so gunicorn does not preload the app and each worker loads its own copy. A
missing or corrupt model directory (or a generation_config.json whose defaults the contract does
not allow: backend/api/served_defaults.py) does not stop the app: it logs one line, /health
answers 503 with the reason, and generation endpoints answer 503.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

from backend import config

# The directories of an absolute path ("/srv/app/models/x/model.onnx" -> "model.onnx"), as
# onnxruntime and the OS put them in their error messages.
ABSOLUTE_DIRECTORY = re.compile(r"(?<![\w.~-])/(?:[^\s/'\"()\[\]:,]+/)+")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(config.from_env())
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False  # keep response fields in the documented order
    if app.logger.level == logging.NOTSET:  # Flask would inherit WARNING and hide the load line
        app.logger.setLevel(logging.INFO)

    from backend.api import admission, docs, errors, frontend, generate_routes, health, metrics, openai_routes, security

    errors.register_error_handlers(app)  # the service's shape; blueprints may register their own
    service_metrics = metrics.init_app(app)
    security.init_app(app)
    load_engine(app)
    engine = app.extensions.get("engine")
    # Slots are the running batch's capacity; an engine that cannot batch runs one request at a
    # time, since more unbatched generations at once only make each one slower.
    slots = app.config["GENERATION_SLOTS"] if engine is None or getattr(engine, "batches", False) else 1
    app.extensions["admission"] = admission.Admission(
        slots,
        app.config["QUEUE_SIZE"],
        app.config["QUEUE_TIMEOUT_SECONDS"],
        on_change=service_metrics.admission_changed,
    )
    for blueprint in (generate_routes.bp, openai_routes.bp, health.bp, docs.bp):
        app.register_blueprint(blueprint)
    frontend.init_app(app)  # last: its catch-all route must not shadow the API's
    return app


def _alignment_note(info: dict) -> str:
    if info.get("batch_alignment") is None:
        return " (batched rows are not bit-identical here: they may differ from alone by rounding)"
    if info.get("kv_cache") == "in-place":
        return " (KV cache written in place: a batched request computes as it would alone)"
    return f" (rows padded by multiples of {info['batch_alignment']}: a batched request computes as it would alone)"


def _prefix_cache_note(info: dict, asked_mb: int) -> str:
    if info.get("prefix_cache_mb"):
        mb = info["prefix_cache_mb"]
        return f"prefix cache {mb} MiB: a prompt extending a recent one prefills only its new tokens"
    if asked_mb:
        return "no prefix cache: splitting a prompt changes its logits on this machine"
    return "no prefix cache (AUTOCOMPLETE_PREFIX_CACHE_MB=0)"


def load_engine(app: Flask) -> None:
    """Put the Engine in app.extensions["engine"] and its generation_config.json's defaults in
    "generation_defaults", or the reason either could not load in "engine_error"."""
    from backend.api.served_defaults import GenerationDefaultsError, read_generation_defaults
    from backend.engine import Engine, ModelLoadError

    app.extensions["engine_loaded_at"] = int(time.time())
    given = app.config.get("ENGINE")
    model_dir = app.config["MODEL_DIR"]
    try:
        engine = (
            given
            if given is not None
            else Engine.load(
                model_dir,
                intra_op_threads=app.config["INTRA_OP_THREADS"],
                batching=app.config["BATCHING"],
                prefix_cache_mb=app.config["PREFIX_CACHE_MB"],
            )
        )
        # An engine handed over as ENGINE (a test's fault-injecting wrapper) may have no directory.
        served_dir = getattr(engine, "model_dir", None)
        defaults = {} if served_dir is None else read_generation_defaults(served_dir, engine.info["vocab_size"])
    except (ModelLoadError, GenerationDefaultsError) as error:
        reason = str(error)
    except Exception as error:  # a corrupt file can fail in ways the engine did not foresee
        reason = f"{type(error).__name__}: {error}"
    else:
        app.extensions["engine"] = engine
        app.extensions["generation_defaults"] = defaults
        if given is None:
            info = engine.info
            app.logger.info(
                "loaded model %s (%s, %d parameters) from %s in %.2f s with %d intra-op threads; batching %s%s; %s",
                info["name"],
                info["quantization"],
                info["parameters"],
                model_dir,
                info["load_seconds"],
                app.config["INTRA_OP_THREADS"],
                info["batching"],
                _alignment_note(info) if info["batching"] == "on" else "",
                _prefix_cache_note(info, app.config["PREFIX_CACHE_MB"]),
            )
        return
    model_dir = getattr(given, "model_dir", model_dir)
    reason = " ".join(reason.split())  # one line, whatever the exception's message looked like
    # Clients are told what is wrong, not where the server keeps its files; the log says both.
    app.extensions["engine_error"] = ABSOLUTE_DIRECTORY.sub("", reason)
    app.logger.error("model not loaded from %s: %s; /health and generation answer 503", model_dir, reason)
