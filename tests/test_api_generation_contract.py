"""The generation contract (backend/generation_contract.py) is the one source of the request's
fields, bounds and defaults: everything that carries a copy of them is checked against it here.

The validation and /openapi.json checks against it live in test_api_validation.py and
test_api_health_metrics_docs.py.
"""

from __future__ import annotations

import pytest

from backend.engine import GenerationParams
from backend.generation_contract import NUMBERS


@pytest.mark.parametrize("name", list(NUMBERS))
def test_the_engines_defaults_are_the_contracts(name):
    assert getattr(GenerationParams(), name) == NUMBERS[name].default


def test_the_pipeline_ships_and_samples_with_the_contracts_defaults():
    from model_creation import evaluate, train

    shipped = train.generation_config(end_of_text=0)  # what every trained model's generation_config.json holds
    assert shipped.do_sample is True
    assert (shipped.temperature, shipped.top_p, shipped.max_new_tokens) == \
        (NUMBERS["temperature"].default, NUMBERS["top_p"].default, NUMBERS["max_new_tokens"].default)
    card = evaluate.Config()  # the model card's sampled completions
    assert (card.sample_temperature, card.sample_top_p, card.sample_new_tokens) == \
        (NUMBERS["temperature"].default, NUMBERS["top_p"].default, NUMBERS["max_new_tokens"].default)
