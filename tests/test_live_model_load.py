"""What a live server says about the model it serves (issue 14 item 5 and the 503 reason of item
8; issue 10's vocabulary): a model whose config.json disagrees with its graph is refused at load
with a 503 that says why without naming server paths, and a model with a vocabulary other than
GPT-2's sets top_k's bound, /health, /openapi.json and /docs. Real HTTP against gunicorn."""

from __future__ import annotations

import json
import shutil

import pytest
import requests

from tests.live_gunicorn import live_server
from tests.small_vocab_model import build_small_vocab_model_dir, build_torch_model, train_tokenizer

PROMPT = "We propose a method to"


def start_broken(model_dir, tmp_path):
    """A server over a model that must fail to load: up once /health answers 503."""
    return live_server(model_dir, tmp_path, health_status=503)


def assert_unavailable_everywhere(base: str, tmp_path) -> str:
    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 503
    reason = health.json()["reason"]
    generate = requests.post(f"{base}/generate", json={"text": PROMPT}, timeout=5)
    assert generate.status_code == 503 and reason in generate.json()["error"]["message"]
    completions = requests.post(f"{base}/v1/completions", json={"model": "m", "prompt": PROMPT}, timeout=5)
    assert completions.status_code == 503
    for text in (reason, generate.text, completions.text):
        assert str(tmp_path) not in text and "/tmp" not in text  # what is wrong, not where it lives
    return reason


def test_a_config_that_disagrees_with_the_graph_is_503_at_load(tiny_model_dir, tmp_path):
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "n_head": 4}))
    with start_broken(model_dir, tmp_path) as (base, _):
        reason = assert_unavailable_everywhere(base, tmp_path)
    assert "n_head=4" in reason and "test generation" in reason


def test_the_503_reason_names_no_server_path(tiny_model_dir, tmp_path):
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model_dir / "model.onnx").write_bytes(b"not a protobuf")  # onnxruntime's message holds the path
    with start_broken(model_dir, tmp_path) as (base, _):
        reason = assert_unavailable_everywhere(base, tmp_path)
    assert reason.startswith("model.onnx could not be loaded by onnxruntime")


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory):
    work = tmp_path_factory.mktemp("small-vocab")
    model_dir = build_small_vocab_model_dir(work)
    with live_server(model_dir, work) as (base, _):
        yield base, train_tokenizer()


def test_health_reports_the_served_vocabulary(small_vocab):
    base, tokenizer = small_vocab
    health = requests.get(f"{base}/health", timeout=5).json()
    assert health["vocab_size"] == tokenizer.get_vocab_size() == 320 and health["context_length"] == 64


def test_top_k_is_bounded_by_the_served_vocabulary(small_vocab):
    base, _ = small_vocab
    body = {"text": PROMPT, "max_new_tokens": 2, "seed": 0}
    assert requests.post(f"{base}/generate", json={**body, "top_k": 320}, timeout=10).status_code == 200
    refused = requests.post(f"{base}/generate", json={**body, "top_k": 321}, timeout=10)
    assert refused.status_code == 422
    assert refused.json()["error"] == {
        "type": "validation",
        "field": "top_k",
        "message": "top_k must be >= 0 and <= 320, got 321",
    }
    openai = requests.post(
        f"{base}/v1/completions", json={"model": "model", "prompt": PROMPT, "top_k": 321}, timeout=10
    )
    assert openai.status_code == 400 and openai.json()["error"]["param"] == "top_k"
    spec = requests.get(f"{base}/openapi.json", timeout=5).json()["components"]["schemas"]
    assert spec["GenerateRequest"]["properties"]["top_k"]["maximum"] == 320
    assert spec["CompletionRequest"]["properties"]["top_k"]["maximum"] == 320
    docs = requests.get(f"{base}/docs", timeout=5).text
    assert "&lt;= 320" in docs and "50257" not in docs


def test_completions_decode_with_the_models_own_tokenizer(small_vocab):
    """Greedy text from the server equals PyTorch's greedy tokens decoded by the trained tokenizer,
    whose end-of-text token (id 0) starts the prompt and ends a completion."""
    import torch

    base, tokenizer = small_vocab
    reply = requests.post(f"{base}/generate", json={"text": PROMPT, "max_new_tokens": 12, "temperature": 0}, timeout=10)
    completion = reply.json()["completions"][0]
    ids = [0, *tokenizer.encode(PROMPT, add_special_tokens=False).ids]
    model = build_torch_model(tokenizer.get_vocab_size())
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=0,
            pad_token_id=0,
        )
    new = out[0, len(ids) :].tolist()
    assert completion["text"] == tokenizer.decode(new, skip_special_tokens=True)
    assert completion["finish_reason"] == ("eos" if 0 in new else "length")
