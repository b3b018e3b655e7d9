"""The arXiv tokenizer option end to end: dataset (a BPE trained on the training split) -> train
(tiny) -> export -> quantize -> evaluate -> the server answers with the new vocabulary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from tokenizers import Tokenizer
from transformers import GPT2LMHeadModel

from backend import create_app
from backend.engine import Engine
from model_creation import dataset, evaluate, export, quantize, train
from model_creation.onnx_graph.decoder import OnnxDecoder
from model_creation.tokenizer import END_OF_TEXT, load_gpt2_tokenizer, train_bpe_tokenizer

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"
VOCAB = 600


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpe-pipeline")
    data = dataset.run(
        dataset.Config(
            inputs=[str(CORPUS)],
            output_dir=str(root / "dataset"),
            block_size=64,
            validation_fraction=0.1,
            test_fraction=0.1,
            tokenizer="bpe",
            bpe_vocab_size=VOCAB,
        )
    )
    trained = train.run(
        train.Config(
            **{
                **train.PRESETS["tiny"].__dict__,
                "dataset_dir": str(data),
                "output_dir": str(root / "train"),
                "max_steps": 20,
            }
        )
    )
    exported = export.run(export.Config(input_dir=str(trained), output_dir=str(root / "export"), parity_new_tokens=4))
    quantized = quantize.run(
        quantize.Config(
            input_dir=str(exported), output_dir=str(root / "quantize"), variants=["per-channel"], max_eval_docs=4
        )
    )
    final = evaluate.run(
        evaluate.Config(
            quantize_dir=str(quantized),
            output_dir=str(root / "model"),
            max_documents=6,
            latency_new_tokens=4,
            sample_new_tokens=6,
        )
    )
    return {"dataset": data, "train": trained, "export": exported, "model": final}


def texts(dataset_dir: Path, split: str) -> list[str]:
    return list(load_from_disk(str(dataset_dir / "documents"))[split]["text"])


def test_dataset_tokenizer_is_trained_on_the_training_split_only(pipeline):
    saved = Tokenizer.from_file(str(pipeline["dataset"] / "tokenizer" / "tokenizer.json"))
    assert saved.get_vocab_size() == VOCAB and saved.token_to_id(END_OF_TEXT) == 0
    from_train = train_bpe_tokenizer(texts(pipeline["dataset"], "train"), VOCAB)
    assert saved.get_vocab() == from_train.backend_tokenizer.get_vocab()
    everything = train_bpe_tokenizer(
        [t for s in ("train", "validation", "test") for t in texts(pipeline["dataset"], s)], VOCAB
    )
    assert saved.get_vocab() != everything.backend_tokenizer.get_vocab()  # held-out text would have changed it


def test_packed_ids_come_from_the_new_tokenizer(pipeline):
    tokenizer = Tokenizer.from_file(str(pipeline["dataset"] / "tokenizer" / "tokenizer.json"))
    first = texts(pipeline["dataset"], "train")[0]
    block = load_from_disk(str(pipeline["dataset"] / "packed"))["train"][0]["input_ids"]
    expected = [0] + tokenizer.encode(first, add_special_tokens=False).ids
    assert block[: len(expected)] == expected[: len(block)]
    metrics = json.loads((pipeline["dataset"] / "metrics.json").read_text())
    assert metrics["tokenizer"] == {"kind": "bpe", "vocab_size": VOCAB, "end_of_text_id": 0}


def test_trained_model_has_the_vocabulary_and_its_special_token(pipeline):
    model = GPT2LMHeadModel.from_pretrained(pipeline["train"])
    assert model.config.vocab_size == VOCAB and model.config.eos_token_id == model.config.bos_token_id == 0
    first_loss = next(
        r["train_loss"] for r in map(json.loads, (pipeline["train"] / "log.jsonl").open()) if "train_loss" in r
    )
    assert first_loss == pytest.approx(math.log(VOCAB), abs=0.3)  # untrained: uniform over 600, not 50,257
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        assert (pipeline["model"] / name).read_bytes() == (pipeline["dataset"] / "tokenizer" / name).read_bytes()


def test_onnx_matches_pytorch_with_the_new_vocabulary(pipeline):
    ids = [0, 5, 17, 300, 42]
    model = GPT2LMHeadModel.from_pretrained(pipeline["train"]).eval()
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()  # [seq, 600]
    got = OnnxDecoder(pipeline["export"] / "model.onnx").logits(ids)
    assert got.shape == (len(ids), VOCAB)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_evaluate_reports_both_perplexities(pipeline):
    result = json.loads((pipeline["model"] / "eval.json").read_text())
    gpt2 = load_gpt2_tokenizer()
    docs = texts(pipeline["dataset"], "test")[:6]
    assert result["gpt2_tokens"] == sum(len(gpt2.encode(t)) + 1 for t in docs)
    assert result["vocab_size"] == VOCAB
    for name in ("pytorch", "onnx_fp32", "onnx_int8"):
        total_nll = result["mean_nll"][name] * result["tokens"]
        assert result["perplexity_per_gpt2_token"][name] == pytest.approx(math.exp(total_nll / result["gpt2_tokens"]))
    assert result["tokens"] != result["gpt2_tokens"]  # another tokenizer: the two figures differ
    card = (pipeline["model"] / "README.md").read_text()
    assert f"{result['perplexity_per_gpt2_token']['onnx_int8']:,.2f}" in card.split("## Intended use")[0]
    assert "600-token byte-level BPE trained on the training split" in card


def test_server_answers_with_the_new_vocabulary(pipeline, tmp_path):
    engine = Engine.load(pipeline["model"])
    assert engine.info["vocab_size"] == VOCAB and engine.eos_id == 0
    app = create_app({"TESTING": True, "ENGINE": engine, "FRONTEND_DIR": str(tmp_path / "none"), "CORS_ORIGINS": []})
    response = app.test_client().post(
        "/generate", json={"text": "We propose a method to", "max_new_tokens": 8, "temperature": 0}
    )
    assert response.status_code == 200, response.get_json()
    tokenizer = Tokenizer.from_file(str(pipeline["model"] / "tokenizer.json"))
    prompt = [0] + tokenizer.encode("We propose a method to", add_special_tokens=False).ids
    greedy = OnnxDecoder(pipeline["model"] / "model.onnx").greedy(prompt, 8)
    assert all(0 <= i < VOCAB for i in greedy)
    greedy = greedy[: greedy.index(0)] if 0 in greedy else greedy  # the server ends a completion at <|endoftext|>
    assert response.get_json()["completions"][0]["text"] == tokenizer.decode(greedy)
