"""The generation contract (backend/generation_contract.py) is the one source of the request's
fields, bounds and defaults: everything that carries a copy of them is checked against it here.

A served model's generation_config.json may replace the defaults (backend/api/served_defaults.py):
/health, /openapi.json and /generate must then agree on them. The validation and /openapi.json
bound checks live in test_api_validation.py and test_api_health_metrics_docs.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend import create_app
from backend.api.served_defaults import GenerationDefaultsError, read_generation_defaults
from backend.engine import GenerationParams
from backend.generation_contract import MODEL_DEFAULTABLE, NUMBERS


@pytest.mark.parametrize("name", list(NUMBERS))
def test_the_engines_defaults_are_the_contracts(name):
    assert getattr(GenerationParams(), name) == NUMBERS[name].default


def test_the_pipeline_ships_and_samples_with_the_contracts_defaults():
    from model_creation import evaluate, train

    shipped = train.generation_config(end_of_text=0)  # what every trained model's generation_config.json holds
    assert shipped.do_sample is True
    assert (shipped.temperature, shipped.top_p, shipped.max_new_tokens) == (
        NUMBERS["temperature"].default,
        NUMBERS["top_p"].default,
        NUMBERS["max_new_tokens"].default,
    )
    card = evaluate.Config()  # the model card's sampled completions
    assert (card.sample_temperature, card.sample_top_p, card.sample_new_tokens) == (
        NUMBERS["temperature"].default,
        NUMBERS["top_p"].default,
        NUMBERS["max_new_tokens"].default,
    )


# --- the served model's generation_config.json (backend/api/served_defaults.py) ---

PROMPT = "We propose a method to"


def model_with_generation_config(tiny_model_dir, tmp_path, config: dict | str) -> Path:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    text = config if isinstance(config, str) else json.dumps(config)
    (model_dir / "generation_config.json").write_text(text)
    return model_dir


def test_the_models_generation_config_sets_the_defaults_a_request_leaves_out(tiny_model_dir, tiny_engine, tmp_path):
    model_dir = model_with_generation_config(
        tiny_model_dir,
        tmp_path,
        {
            "bos_token_id": 50256,
            "eos_token_id": 50256,
            "do_sample": True,
            "temperature": 0.5,
            "top_k": 3,
            "max_new_tokens": 6,
            "top_p": None,
        },
    )  # null: not set, as transformers writes it
    client = create_app({"TESTING": True, "MODEL_DIR": str(model_dir), "INTRA_OP_THREADS": 1}).test_client()
    expected = {
        "max_new_tokens": 6,
        "temperature": 0.5,
        "top_p": NUMBERS["top_p"].default,
        "top_k": 3,
        "repetition_penalty": NUMBERS["repetition_penalty"].default,
    }
    assert client.get("/health").get_json()["generation_defaults"] == expected
    fields = client.get("/openapi.json").get_json()["components"]["schemas"]["GenerateRequest"]["properties"]
    assert {name: fields[name]["default"] for name in expected} == expected
    # The unbatched engine with those values spelled out is the oracle.
    oracle = tiny_engine.generate(PROMPT, GenerationParams(seed=5, **expected)).completions[0].text
    assert client.post("/generate", json={"text": PROMPT, "seed": 5}).get_json()["completions"][0]["text"] == oracle
    # A field the request sets wins; OpenAI's endpoint keeps OpenAI's defaults (max_tokens=16).
    assert (
        client.post("/generate", json={"text": PROMPT, "max_new_tokens": 2}).get_json()["usage"]["completion_tokens"]
        <= 2
    )
    completion = client.post("/v1/completions", json={"model": "model", "prompt": PROMPT, "seed": 5}).get_json()
    assert (
        completion["choices"][0]["text"]
        == tiny_engine.generate(PROMPT, GenerationParams(seed=5, max_new_tokens=16, temperature=1.0, top_p=1.0))
        .completions[0]
        .text
    )


def test_without_a_generation_config_the_contracts_defaults_apply(client):
    health = client.get("/health").get_json()  # the tiny model's file sets no sampling field
    assert health["generation_defaults"] == {name: NUMBERS[name].default for name in MODEL_DEFAULTABLE}


# (generation_config.json's text, the defaults it sets, or the words of the error naming field and bound)
GENERATION_CONFIGS = [
    ({"do_sample": False}, {"temperature": 0.0}),  # transformers' greedy
    (
        {"do_sample": False, "temperature": 0.7},
        {"temperature": 0.0},
    ),  # greedy ignores temperature, as transformers does
    ({"max_new_tokens": 512, "repetition_penalty": 2}, {"max_new_tokens": 512, "repetition_penalty": 2.0}),
    ({"top_k": 50257}, {"top_k": 50257}),
    ({"top_k": 50.0}, {"top_k": 50}),
    ({"bos_token_id": 0, "transformers_version": "4.57.6"}, {}),
    ({"top_p": 0}, "generation_config.json: top_p must be > 0 and <= 1, got 0"),
    ({"temperature": 2.5}, "generation_config.json: temperature must be >= 0 and <= 2, got 2.5"),
    ({"max_new_tokens": 513}, "generation_config.json: max_new_tokens must be >= 1 and <= 512, got 513"),
    ({"top_k": 50258}, "generation_config.json: top_k must be >= 0 and <= 50257, got 50258"),
    ({"top_k": 2.5}, "generation_config.json: top_k must be an integer, got 2.5"),
    ({"temperature": "0.8"}, "generation_config.json: temperature must be a number, got '0.8'"),
    ({"temperature": True}, "generation_config.json: temperature must be a number, got True"),
    # the same checks and words as a request's (Bound.check): NaN is not finite, 513.0 is the integer 513
    ({"temperature": float("nan")}, "generation_config.json: temperature must be a finite number, got nan"),
    ({"max_new_tokens": 513.0}, "generation_config.json: max_new_tokens must be >= 1 and <= 512, got 513"),
    ({"do_sample": "yes"}, "generation_config.json: do_sample must be a boolean, got 'yes'"),
    ("[1, 2]", "generation_config.json must hold a JSON object"),
    ("{", "generation_config.json is not valid JSON"),
]


@pytest.mark.parametrize("config, expected", GENERATION_CONFIGS)
def test_generation_config_defaults_are_checked_against_the_contract(tmp_path, config, expected):
    (tmp_path / "generation_config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if isinstance(expected, dict):
        assert read_generation_defaults(tmp_path, vocab_size=50257) == expected
    else:
        with pytest.raises(GenerationDefaultsError) as error:
            read_generation_defaults(tmp_path, vocab_size=50257)
        assert expected in str(error.value)


def test_a_default_the_contract_refuses_fails_the_model_load_with_the_reason(tiny_model_dir, tmp_path):
    model_dir = model_with_generation_config(tiny_model_dir, tmp_path, {"temperature": 9})
    client = create_app({"TESTING": True, "MODEL_DIR": str(model_dir), "INTRA_OP_THREADS": 1}).test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["reason"] == "generation_config.json: temperature must be >= 0 and <= 2, got 9"
    error = client.post("/generate", json={"text": PROMPT}).get_json()["error"]
    assert error["type"] == "unavailable" and "temperature must be >= 0 and <= 2" in error["message"]


# --- the front end's copy (frontend/src/config/generate-contract.generated.ts) ---


def rendered_front_end_contract(tmp_path) -> str:
    from backend.api.typescript_contract import render

    # Without a model: the contract's own defaults, and no model's vocabulary as top_k's maximum.
    client = create_app({"TESTING": True, "MODEL_DIR": str(tmp_path / "no-model")}).test_client()
    return render(client.get("/openapi.json").get_json())


def test_the_front_ends_contract_is_what_the_servers_openapi_renders(tmp_path):
    from backend.api.typescript_contract import COMMAND, OUTPUT

    assert OUTPUT.read_text() == rendered_front_end_contract(tmp_path), (
        f"{OUTPUT.name} is out of date with backend/generation_contract.py: run {COMMAND}"
    )


def test_a_contract_change_not_carried_to_the_front_end_is_caught(tmp_path, monkeypatch):
    from dataclasses import replace

    from backend.api.typescript_contract import OUTPUT

    monkeypatch.setitem(NUMBERS, "temperature", replace(NUMBERS["temperature"], default=0.7))
    rendered = rendered_front_end_contract(tmp_path)
    assert rendered != OUTPUT.read_text()
    assert '"default": 0.7' in rendered
