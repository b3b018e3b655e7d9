"""GET /health: 200 with the model's facts once it is loaded, 503 with the reason otherwise.

Load balancers and `make run`'s users read this to know whether the server can generate; the
reason in a 503 is the same one-line message create_app logged when the model failed to load.
`generation_defaults` are what /generate uses for a field a request leaves out (the contract's,
or the model's generation_config.json's: backend/api/served_defaults.py).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from backend.api.validation import served_bounds
from backend.generation_contract import MODEL_DEFAULTABLE

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    engine = current_app.extensions.get("engine")
    if engine is None:
        # create_app loads the model before the app serves anything, so no engine means it failed.
        reason = current_app.extensions.get("engine_error", "the model is not loaded")
        return jsonify({"status": "error", "reason": reason}), 503
    info = engine.info
    defaults = served_bounds()
    return jsonify(
        {
            "status": "ok",
            "model": info["name"],
            "quantization": info["quantization"],
            "parameters": info["parameters"],
            "load_seconds": info["load_seconds"],
            "context_length": info["context_length"],
            "vocab_size": info["vocab_size"],
            "generation_defaults": {name: defaults[name].default for name in MODEL_DEFAULTABLE},
        }
    )
