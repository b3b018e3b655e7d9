"""The Colab route: the `distilgpt2-finetune` preset starts from a pretrained GPT-2 (a small one
saved here with save_pretrained stands in for the Hub's distilgpt2), lowers the loss on the
training text, and goes on through export, quantize and evaluate to a model the server answers with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from backend import create_app
from backend.engine import Engine
from model_creation import evaluate, export, quantize, train
from model_creation.colab_route import FINETUNE_PRESET, SCRATCH_PRESET, choose_training_preset
from model_creation.stage_dir import StageError
from model_creation.tokenizer import END_OF_TEXT_ID
from tests.tiny_model import build_tiny_dataset_dir

CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A small GPT-2 saved the way the Hub's models are: the stand-in for distilgpt2."""
    torch.manual_seed(5)
    config = GPT2Config(
        n_layer=2, n_embd=64, n_head=2, n_positions=128, bos_token_id=END_OF_TEXT_ID, eos_token_id=END_OF_TEXT_ID
    )
    path = tmp_path_factory.mktemp("hub") / "distilgpt2"
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_tiny_dataset_dir(tmp_path_factory.mktemp("dataset"), CORPUS)


def finetune(pretrained: Path, dataset_dir: Path, out: Path, **changes) -> train.Config:
    """The preset, shrunk to a few CPU steps: only the batch shape, the budget and compile change."""
    shrunk = dict(
        block_size=64,
        batch_size=8,
        grad_accum=1,
        warmup_steps=2,
        max_steps=12,
        eval_interval=6,
        eval_batches=2,
        log_interval=1,
        compile=False,
    )
    return dataclasses.replace(
        train.PRESETS[FINETUNE_PRESET],
        base=str(pretrained),
        dataset_dir=str(dataset_dir),
        output_dir=str(out),
        **{**shrunk, **changes},
    )


def training_text_loss(model_dir: Path, dataset_dir: Path) -> float:
    blocks = train.load_split(dataset_dir, "train")[:16].astype(np.int64)
    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return train.lm_loss(model, torch.from_numpy(blocks)).item()


def test_preset_is_a_fine_tuning_recipe():
    preset = train.PRESETS[FINETUNE_PRESET]
    assert (preset.init, preset.base) == ("pretrained", "distilgpt2")
    assert preset.learning_rate <= 2e-4 < train.PRESETS[SCRATCH_PRESET].learning_rate
    assert preset.batch_size * preset.block_size * preset.grad_accum == 32 * 1024


def test_weights_start_from_the_pretrained_model(pretrained, dataset_dir, tmp_path):
    out = train.run(finetune(pretrained, dataset_dir, tmp_path / "frozen", learning_rate=0.0, max_steps=1))
    saved, started = (
        GPT2LMHeadModel.from_pretrained(pretrained).state_dict(),
        GPT2LMHeadModel.from_pretrained(out).state_dict(),
    )
    assert all(torch.equal(saved[k], started[k]) for k in saved)  # a zero learning rate leaves them as loaded


@pytest.fixture(scope="module")
def chain(pretrained, dataset_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    trained = train.run(finetune(pretrained, dataset_dir, root / "train"))
    exported = export.run(export.Config(input_dir=str(trained), output_dir=str(root / "export"), parity_new_tokens=4))
    quantized = quantize.run(
        quantize.Config(
            input_dir=str(exported), output_dir=str(root / "quantize"), variants=["per-channel"], max_eval_docs=4
        )
    )
    final = evaluate.run(
        evaluate.Config(
            quantize_dir=str(quantized),
            dataset_dir=str(dataset_dir),
            output_dir=str(root / "model"),
            max_documents=4,
            latency_new_tokens=4,
            sample_new_tokens=6,
        )
    )
    return {"train": trained, "model": final}


def test_fine_tuning_lowers_the_loss_on_the_training_text(chain, pretrained, dataset_dir):
    # A fine-tuning rate (1e-4) moves the loss little in 12 steps, but it must move it down.
    assert training_text_loss(chain["train"], dataset_dir) < training_text_loss(pretrained, dataset_dir) - 0.02


def test_the_fine_tuned_model_serves_and_its_card_names_the_base(chain, pretrained, tmp_path):
    card = (chain["model"] / "README.md").read_text()
    assert f"Initialisation: pretrained from `{pretrained}`" in card
    assert json.loads((chain["model"] / "eval.json").read_text())["vocab_size"] == 50257
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": Engine.load(chain["model"]),
            "FRONTEND_DIR": str(tmp_path / "none"),
            "CORS_ORIGINS": [],
        }
    )
    response = app.test_client().post("/generate", json={"text": "We propose", "max_new_tokens": 5, "seed": 1})
    assert response.status_code == 200 and response.get_json()["usage"]["completion_tokens"] >= 1


def test_route_choice(pretrained, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub made unreachable
    preset, message = choose_training_preset("distilgpt2")
    assert preset == SCRATCH_PRESET and "Falling back to the from-scratch preset 'distilgpt2-arxiv'" in message
    preset, message = choose_training_preset(str(pretrained))
    assert preset == FINETUNE_PRESET and "Fine-tuning the pretrained model" in message


def test_pretrained_init_refuses_a_dataset_with_another_vocabulary(pretrained, tmp_path):
    from model_creation import dataset

    data = dataset.run(
        dataset.Config(
            inputs=[str(CORPUS)],
            output_dir=str(tmp_path / "bpe"),
            block_size=64,
            validation_fraction=0.1,
            test_fraction=0.1,
            tokenizer="bpe",
            bpe_vocab_size=400,
        )
    )
    with pytest.raises(StageError, match="needs a dataset made with GPT-2's tokenizer"):
        train.run(finetune(pretrained, data, tmp_path / "t"))
