"""The whole pipeline on the fixture corpus: dataset -> train (tiny, CLI) -> export -> quantize -> evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from model_creation import dataset, evaluate, export, quantize
from model_creation.onnx_graph.decoder import OnnxDecoder
from model_creation.tokenizer import END_OF_TEXT_ID, load_gpt2_tokenizer
from tests.tiny_model import EVALUATED_FILES

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"
PROMPTS = ["We propose a method to", "Deep reinforcement learning"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = dataset.run(
        dataset.Config(
            inputs=[str(CORPUS)],
            output_dir=str(root / "dataset"),
            block_size=64,
            validation_fraction=0.1,
            test_fraction=0.1,
        )
    )
    # The train stage through the command line, as a user runs it.
    command = [
        sys.executable,
        "-m",
        "model_creation",
        "train",
        "--preset",
        "tiny",
        "--dataset-dir",
        str(data),
        "--output-dir",
        str(root / "train"),
        "--max-steps",
        "20",
        "--eval-interval",
        "10",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = Path(done.stdout.strip().splitlines()[-1])
    assert trained == root / "train"
    exported = export.run(export.Config(input_dir=str(trained), output_dir=str(root / "export")))
    quantized = quantize.run(
        quantize.Config(
            input_dir=str(exported),
            output_dir=str(root / "quantize"),
            variants=["per-tensor", "per-channel"],
            max_eval_docs=8,
        )
    )
    final = evaluate.run(
        evaluate.Config(
            quantize_dir=str(quantized),
            output_dir=str(root / "model"),
            max_documents=10,
            latency_new_tokens=8,
            sample_new_tokens=8,
        )
    )
    return {"dataset": data, "train": trained, "export": exported, "quantize": quantized, "model": final}


@pytest.mark.parametrize("prompt", PROMPTS)
def test_exported_logits_match_the_trained_pytorch_model(pipeline, prompt):
    ids = [END_OF_TEXT_ID] + load_gpt2_tokenizer().encode(prompt)
    model = GPT2LMHeadModel.from_pretrained(pipeline["train"]).eval()
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(OnnxDecoder(pipeline["export"] / "model.onnx").logits(ids), expected, atol=1e-4, rtol=0)


def test_export_parity_is_greedy_although_the_trained_model_samples(pipeline):
    # The train stage ships a sampling generation_config.json; the export's greedy check must not inherit it.
    assert json.loads((pipeline["train"] / "generation_config.json").read_text())["do_sample"] is True
    assert json.loads((pipeline["export"] / "metrics.json").read_text())["parity"]["greedy_match"] is True


@pytest.mark.parametrize("prompt", PROMPTS)
def test_int8_model_generates(pipeline, prompt):
    tokenizer = load_gpt2_tokenizer()
    ids = [END_OF_TEXT_ID] + tokenizer.encode(prompt)
    tokens = OnnxDecoder(pipeline["model"] / "model.onnx").greedy(ids, 6)
    assert len(tokens) == 6 and all(0 <= t < 50257 for t in tokens)
    assert tokenizer.decode(tokens).strip()


def test_eval_json_and_trained_model_beat_chance(pipeline):
    result = json.loads((pipeline["model"] / "eval.json").read_text())
    assert set(result["perplexity"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    assert result["perplexity"]["onnx_fp32"] == pytest.approx(result["perplexity"]["pytorch"], rel=1e-5)
    assert result["perplexity"]["onnx_int8"] == pytest.approx(result["perplexity"]["onnx_fp32"], rel=0.02)
    # 20 tiny steps cannot write abstracts, but must beat a uniform guess over 50257 tokens by far.
    assert result["perplexity"]["pytorch"] < 50257 / 5
    # Each stage found its input through the one before it.
    assert result["dirs"] == {k: str(pipeline[k].resolve()) for k in ("quantize", "export", "train", "dataset")}


def test_final_directory_is_what_the_backend_loads(pipeline):
    names = {p.name for p in pipeline["model"].iterdir()}
    assert EVALUATED_FILES | {"loss_curve.png"} <= names
    assert json.loads((pipeline["model"] / "config.json").read_text())["n_layer"] == 2
