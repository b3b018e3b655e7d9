"""The generation contract: every field of a generation request, its bound and its default, defined once.

Everything else derives from these tables or is checked against them:
- backend/api/validation.py enforces them on /generate and /generate/stream, and
  backend/api/openai_validation.py on /v1/completions (with OpenAI's names and defaults);
- backend/api/openapi_schemas.py builds /openapi.json's schemas (and so /docs) from them;
- backend/engine/schema.py takes GenerationParams' defaults from them;
- model_creation writes them into every model's generation_config.json, and a served model's
  generation_config.json may override the defaults (backend/api/served_defaults.py);
- the front end's request type and defaults are generated from /openapi.json
  (frontend/src/config/generate-contract.generated.ts; tests/test_generation_contract.py fails when
  the committed file is not what the server's contract renders).

This module is plain data with no Flask or engine import, so every layer can depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace


def fmt(number: float) -> str:
    """A bound as people write it: 512, not 512.0."""
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class Bound:
    """A numeric field: its JSON type, inclusive range (minimum exclusive where said) and default.
    A maximum of None means none (top_k's while no model is loaded)."""

    integer: bool
    minimum: float
    maximum: float | None
    default: float
    description: str
    exclusive_minimum: bool = False

    def describe(self, name: str) -> str:
        low = ">" if self.exclusive_minimum else ">="
        high = "" if self.maximum is None else f" and <= {fmt(self.maximum)}"
        return f"{name} must be {low} {fmt(self.minimum)}{high}"

    def allows(self, value: float) -> bool:
        too_low = value <= self.minimum if self.exclusive_minimum else value < self.minimum
        return not too_low and (self.maximum is None or value <= self.maximum)

    def check(self, name: str, value: object, shown: Callable[[object], str]) -> int | float:
        """`value` as this field's type (an int for an integer field, which accepts 3.0 as JSON Schema
        does), or BoundError saying why not: the type (a boolean is not a number), finiteness,
        integer-ness, the range. `shown` renders a value of the wrong type: a request's error names
        its JSON type, a generation_config.json's error quotes it."""
        kind = "an integer" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BoundError(f"{name} must be {kind}, got {shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise BoundError(f"{name} must be a finite number, got {value}")
        if self.integer and isinstance(value, float):
            if not value.is_integer():
                raise BoundError(f"{name} must be {kind}, got {value}")
            value = int(value)
        if not self.allows(value):
            raise BoundError(f"{self.describe(name)}, got {value}")
        return value if self.integer else float(value)


class BoundError(ValueError):
    """A value a Bound does not allow; the message names the field and says why."""


# Keyed by the /generate field names; /v1/completions maps its OpenAI names onto these.
# top_k's maximum is the served model's vocabulary size: bounds() fills it in.
NUMBERS: dict[str, Bound] = {
    "max_new_tokens": Bound(
        True,
        1,
        512,
        40,
        "How many tokens to generate at most. The prompt keeps "
        "room for them up to half the model's context; a completion that reaches the "
        "end of the context stops there, with finish_reason length.",
    ),
    "temperature": Bound(
        False,
        0,
        2,
        0.8,
        "Sampling temperature; 0 means greedy decoding (and a temperature close to 0 gives the same tokens).",
    ),
    "top_p": Bound(
        False,
        0,
        1,
        0.95,
        "Nucleus sampling: keep the smallest set of tokens whose probability adds up to top_p.",
        exclusive_minimum=True,
    ),
    "top_k": Bound(
        True,
        0,
        None,
        0,
        "Keep only the k most likely tokens; 0 turns it off. At most "
        "the served model's vocabulary size (GET /health: vocab_size).",
    ),
    "repetition_penalty": Bound(
        False, 1, 2, 1.0, "Divide the logits of tokens already in the text by this (CTRL's penalty); 1 turns it off."
    ),
    "n": Bound(True, 1, 4, 1, "How many completions to generate for the one prompt."),
}

# The sampling defaults a model may set in its generation_config.json (n is a request's choice).
MODEL_DEFAULTABLE = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")

TEXT_MAX_CHARS = 20_000
STOP_MAX_COUNT = 4
STOP_MAX_CHARS = 100
SEED_MAX = 2**32 - 1  # every RNG seeds from this range; JavaScript clients keep it exact too

TEXT_DESCRIPTION = "The abstract so far; the completion continues it."
SEED_DESCRIPTION = "Seed for sampling, for reproducible output; null draws one (returned in the response)."
STOP_DESCRIPTION = "Strings that end a completion when generated (not included in it)."
LOGPROBS_DESCRIPTION = "Return every generated token with its log-probability."

GENERATE_FIELDS = ("text", *NUMBERS, "seed", "stop", "logprobs")


def default(name: str) -> float:
    """The contract's own default of numeric field `name` (what applies when no model overrides it)."""
    return NUMBERS[name].default


def bounds(vocab_size: int | None, defaults: Mapping[str, float] | None = None) -> dict[str, Bound]:
    """NUMBERS for a model with `vocab_size` tokens (a larger top_k would be the same as none) and
    the served model's `defaults` (from its generation_config.json) in place of the contract's.
    None when no model is loaded leaves top_k without a maximum (generation answers 503 anyway)."""
    limits = {**NUMBERS, "top_k": replace(NUMBERS["top_k"], maximum=vocab_size)}
    for name, value in (defaults or {}).items():
        limits[name] = replace(limits[name], default=value)
    return limits
