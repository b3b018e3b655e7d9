"""Perplexity definition (checked against transformers' own loss) and the evaluate stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.engine import Engine, GenerationParams
from model_creation import evaluate, export, quantize
from model_creation.onnx_graph.decoder import OnnxDecoder
from model_creation.perplexity import document_ids, perplexity, sequence_nll, torch_logits_fn
from model_creation.stage_dir import StageError
from model_creation.tokenizer import END_OF_TEXT_ID, load_gpt2_tokenizer
from tests.tiny_model import EVALUATED_FILES, build_tiny_dataset_dir, build_tiny_hf_dir, build_tiny_torch_model

CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"
TEXTS = [
    "A title\nWe propose a method to learn sparse representations.",
    "Short",
    "Graph neural networks\nMessage passing on graphs with attention over neighbours, evaluated on citation data.",
]


@pytest.fixture(scope="module")
def model():
    return build_tiny_torch_model(seed=1)


def transformers_loss(model, ids: list[int]) -> float:
    """Mean next-token cross-entropy as transformers computes it (labels shifted inside)."""
    x = torch.tensor([ids])
    with torch.no_grad():
        return model(x, labels=x).loss.item()


@pytest.mark.parametrize("text", TEXTS)
def test_single_document_matches_transformers_loss(model, text):
    ids = document_ids(load_gpt2_tokenizer(), text, 128)
    result = perplexity(torch_logits_fn(model), [ids])
    assert result.tokens == len(ids) - 1 and result.documents == 1
    assert result.perplexity == pytest.approx(math.exp(transformers_loss(model, ids)), rel=1e-5)


@pytest.mark.parametrize("count", [2, 3])
def test_several_documents_weight_every_token_equally(model, count):
    docs = [document_ids(load_gpt2_tokenizer(), t, 128) for t in TEXTS[:count]]
    # transformers' per-document mean loss, re-weighted by each document's predicted tokens
    total = sum(transformers_loss(model, ids) * (len(ids) - 1) for ids in docs)
    tokens = sum(len(ids) - 1 for ids in docs)
    result = perplexity(torch_logits_fn(model), docs)
    assert result.tokens == tokens
    assert result.perplexity == pytest.approx(math.exp(total / tokens), rel=1e-5)


@pytest.mark.parametrize(("text", "max_tokens"), [("We propose", 128), ("We propose a new method for", 4)])
def test_documents_are_framed_by_end_of_text_and_truncated(text, max_tokens):
    tokenizer = load_gpt2_tokenizer()
    expected = ([END_OF_TEXT_ID] + tokenizer.encode(text) + [END_OF_TEXT_ID])[:max_tokens]
    assert document_ids(tokenizer, text, max_tokens) == expected


def test_sequence_nll_of_uniform_logits_is_log_vocab():
    logits = np.zeros((4, 10), dtype=np.float32)
    assert sequence_nll(logits, [0, 1, 2, 3]) == pytest.approx(3 * math.log(10))


def test_perplexity_refuses_empty_input(model):
    with pytest.raises(ValueError, match="at least one document"):
        perplexity(torch_logits_fn(model), [[END_OF_TEXT_ID]])


def test_onnx_perplexity_equals_pytorch(tiny_fp32_model_dir):
    docs = [document_ids(load_gpt2_tokenizer(), t, 128) for t in TEXTS]
    onnx_ppl = perplexity(OnnxDecoder(tiny_fp32_model_dir / "model.onnx").logits, docs).perplexity
    torch_ppl = perplexity(torch_logits_fn(build_tiny_torch_model(seed=0)), docs).perplexity
    assert onnx_ppl == pytest.approx(torch_ppl, rel=1e-5)


def test_model_card_sampling_with_a_tiny_top_p_is_greedy(tiny_fp32_model_dir):
    decoder = OnnxDecoder(tiny_fp32_model_dir / "model.onnx")
    ids = [END_OF_TEXT_ID] + load_gpt2_tokenizer().encode("We propose")
    greedy = decoder.greedy(ids, 10)
    assert END_OF_TEXT_ID not in greedy
    params = GenerationParams(max_new_tokens=10, temperature=1.0, top_p=1e-9, seed=3)  # as evaluate samples
    sampled = Engine.load(tiny_fp32_model_dir).generate("We propose", params).completions[0]
    assert [token.token_id for token in sampled.tokens] == greedy


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """dataset + tiny HF model -> export -> quantize: the inputs of evaluate."""
    root = tmp_path_factory.mktemp("chain")
    dataset = build_tiny_dataset_dir(root / "dataset", CORPUS, documents=60)
    hf = build_tiny_hf_dir(root / "train")  # records no input_dir: the dataset must be given
    exported = export.run(export.Config(input_dir=str(hf), output_dir=str(root / "export")))
    quantized = quantize.run(
        quantize.Config(
            input_dir=str(exported),
            output_dir=str(root / "quantize"),
            variants=["optimized-per-channel"],
            dataset_dir=str(dataset),
            max_eval_docs=4,
        )
    )
    return {"dataset": dataset, "train": hf, "export": exported, "quantize": quantized}


@pytest.fixture(scope="module")
def evaluated(chain, tmp_path_factory):
    config = evaluate.Config(
        quantize_dir=str(chain["quantize"]),
        dataset_dir=str(chain["dataset"]),
        output_dir=str(tmp_path_factory.mktemp("final") / "model"),
        max_documents=5,
        latency_new_tokens=8,
        sample_new_tokens=8,
        notes="Trained for a test, on 60 documents.",
    )
    return evaluate.run(config)


def test_eval_json_holds_three_consistent_perplexities(evaluated, chain):
    result = json.loads((evaluated / "eval.json").read_text())
    ppl = result["perplexity"]
    assert set(ppl) == {"pytorch", "onnx_fp32", "onnx_int8"}
    assert ppl["onnx_fp32"] == pytest.approx(ppl["pytorch"], rel=1e-5)
    assert ppl["onnx_int8"] == pytest.approx(ppl["onnx_fp32"], rel=0.02)
    assert result["documents"] == 5 and result["split"] == "test"
    assert result["latency"]["onnx_int8"]["per_token_ms"] > 0
    assert result["dirs"]["export"] == str(chain["export"].resolve())  # found via the recorded input_dir
    # The same definition computed here directly over the same documents agrees.
    from datasets import load_from_disk

    texts = load_from_disk(str(chain["dataset"] / "documents"))["test"]["text"][:5]
    docs = [document_ids(load_gpt2_tokenizer(), t) for t in texts]  # whole documents, windows of the context
    direct = perplexity(torch_logits_fn(build_tiny_torch_model(seed=0)), docs, context=128)
    assert ppl["pytorch"] == pytest.approx(direct.perplexity, rel=1e-5) and result["tokens"] == direct.tokens
    # GPT-2's tokenizer: the per-GPT-2-token figure is the ordinary one.
    assert result["gpt2_tokens"] == result["tokens"]
    assert result["perplexity_per_gpt2_token"] == pytest.approx(ppl, rel=1e-9)


def test_final_directory_is_a_complete_model_directory(evaluated, chain):
    names = {p.name for p in evaluated.iterdir()}
    assert EVALUATED_FILES <= names
    assert (evaluated / "model.onnx").read_bytes() == (chain["quantize"] / "model.onnx").read_bytes()
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert metrics["quantization"] == "int8" and metrics["input_dir"] == str(chain["quantize"].resolve())


def test_model_card_and_report_show_the_measurements(evaluated):
    result = json.loads((evaluated / "eval.json").read_text())
    card, report = (evaluated / "README.md").read_text(), (evaluated / "report.md").read_text()
    for text in (card, report):
        assert f"{result['perplexity']['onnx_int8']:,.2f}" in text
        assert f"{result['perplexity']['pytorch']:,.2f}" in text
    for heading in ("## Intended use", "## Data", "## Training recipe", "## Evaluation", "## Limitations"):
        assert heading in card
    for sample in result["samples"]:
        assert f"**{sample['prompt']}**" in card
    assert len(result["samples"]) == len(evaluate.SAMPLE_PROMPTS)
    assert "## About this build\n\nTrained for a test, on 60 documents.\n" in card
    # The tiny quantize stage scales activations per row, and the report says so.
    assert result["activation_scales"] == "per-row" and "activations scaled per row," in report
    # the tiny quantize runs the shipped model's variant: fused, GroupQueryAttention
    assert result["attention"] == "group-query" and "attention fused as GroupQueryAttention" in report


def test_missing_recorded_input_dir_is_a_clear_error(chain, tmp_path):
    config = evaluate.Config(quantize_dir=str(chain["quantize"]), output_dir=str(tmp_path / "m"))
    with pytest.raises(StageError, match="does not record its input_dir; pass the dataset directory"):
        evaluate.run(config)
