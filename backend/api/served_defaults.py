"""The served model's own generation defaults, read once from its generation_config.json.

What the file means for the server: the values it sets among the contract's MODEL_DEFAULTABLE
fields (max_new_tokens, temperature, top_p, top_k, repetition_penalty) replace the contract's
fallback defaults (backend/generation_contract.py) for /generate and /generate/stream requests
that leave the field out; /openapi.json shows them as the defaults and GET /health lists the
defaults in force under `generation_defaults`. model_creation/train.py writes the contract's
defaults into every model it trains, so a model only changes them if someone edits its file.

- A field the file leaves out keeps the contract's default, not transformers' own (a file that
  says nothing about top_k does not switch on top_k=50, nor does a missing do_sample mean greedy).
- `"do_sample": false` is transformers' way to say greedy: the default temperature becomes 0.
- /v1/completions keeps OpenAI's defaults (max_tokens=16, temperature=1, top_p=1): that is what
  OpenAI clients expect whatever model answers.
- A value of the wrong type, or outside the contract's bound, fails the model load with a reason
  naming the file, the field and the bound, as a broken config.json does: /health answers 503
  with it and generation is refused, rather than serving with a default no request could ask for.
"""

from __future__ import annotations

import json
from pathlib import Path

from backend.generation_contract import MODEL_DEFAULTABLE, BoundError, bounds

FILE = "generation_config.json"


class GenerationDefaultsError(ValueError):
    """generation_config.json holds a default the contract does not allow; the message says which."""


def read_generation_defaults(model_dir: Path, vocab_size: int) -> dict[str, int | float]:
    """The defaults `model_dir`'s generation_config.json sets, checked against the contract's
    bounds for a model of `vocab_size` tokens; {} when there is no such file."""
    path = Path(model_dir) / FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise GenerationDefaultsError(f"{FILE} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise GenerationDefaultsError(f"{FILE} must hold a JSON object")
    greedy = config.get("do_sample") is False
    if "do_sample" in config and not isinstance(config["do_sample"], bool):
        raise GenerationDefaultsError(f"{FILE}: do_sample must be a boolean, got {config['do_sample']!r}")
    defaults: dict[str, int | float] = {"temperature": 0.0} if greedy else {}
    limits = bounds(vocab_size)
    for name in MODEL_DEFAULTABLE:
        if config.get(name) is None or name in defaults:  # transformers writes null for "not set"
            continue
        try:
            defaults[name] = limits[name].check(name, config[name], shown=repr)
        except BoundError as error:
            raise GenerationDefaultsError(f"{FILE}: {error}") from None
    return defaults
