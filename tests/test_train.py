"""Train stage on the tiny preset: learning, schedule, resume, budgets, and the saved model directory."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import GPT2LMHeadModel

from model_creation import train
from model_creation.stage_dir import StageError
from model_creation.training.loss_curve import read_log
from model_creation.training.optimizers import make_optimizers
from tests.tiny_model import build_tiny_dataset_dir

CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_tiny_dataset_dir(tmp_path_factory.mktemp("dataset"), CORPUS)


def tiny(dataset_dir, output_dir, **changes) -> train.Config:
    return dataclasses.replace(
        train.PRESETS["tiny"], dataset_dir=str(dataset_dir), output_dir=str(output_dir), **changes
    )


def train_losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["train_loss"] for r in read_log(out / "log.jsonl") if "train_loss" in r}


@pytest.fixture(scope="module")
def trained(dataset_dir, tmp_path_factory):
    """One tiny-preset run (30 steps) shared by the tests that only read its outputs."""
    return train.run(tiny(dataset_dir, tmp_path_factory.mktemp("run") / "train"))


def test_loss_decreases(trained):
    losses = train_losses(trained)
    assert len(losses) == train.PRESETS["tiny"].max_steps
    first, last = [losses[s] for s in (1, 2, 3)], [losses[s] for s in range(26, 31)]
    assert losses[1] == pytest.approx(math.log(50257), abs=0.3)  # untrained: about uniform
    assert max(last) < min(first) - 1.5
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["final_val_loss"] < losses[1] - 1.5
    assert metrics["final_val_ppl"] == pytest.approx(math.exp(metrics["final_val_loss"]))


def test_outputs_and_metrics(trained, dataset_dir):
    names = {p.name for p in trained.iterdir()}
    expected = {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "vocab.json",
        "merges.txt",
        "checkpoint.pt",
        "log.jsonl",
        "loss_curve.png",
        "metrics.json",
    }
    assert expected <= names
    assert (trained / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["input_dir"] == str(Path(dataset_dir).resolve())
    assert metrics["steps"] == 30 and metrics["stop_reason"] == "max_steps"
    assert metrics["tokens_seen"] == 30 * 8 * 64
    assert metrics["tokens_per_second"] > 0 and metrics["wall_seconds"] > 0
    assert metrics["config"]["n_layer"] == 2 and metrics["precision"] == "fp32"
    # GPT-2's own tokenizer: the per-GPT-2-token figure is the ordinary one.
    assert metrics["final_val_ppl_per_gpt2_token"] == pytest.approx(metrics["final_val_ppl"], rel=1e-9)
    val = [r for r in read_log(trained / "log.jsonl") if "val_loss" in r]
    assert [r["step"] for r in val] == [10, 20, 30]


def test_saved_directory_reloads_with_identical_logits(trained):
    checkpoint = torch.load(trained / "checkpoint.pt", weights_only=False)
    config = train.Config(**checkpoint["config"])
    reference = train.build_model(config)
    reference.load_state_dict(checkpoint["model"])
    reloaded = GPT2LMHeadModel.from_pretrained(trained)
    x = torch.tensor([[50256, 464, 2746, 318, 257, 649]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x).logits, reference.eval()(x).logits, rtol=0, atol=0)
    assert reloaded.config.n_layer == 2 and reloaded.config.n_embd == 64


SCHEDULE = train.Config(learning_rate=1e-3, min_lr_ratio=0.1, warmup_steps=10, max_steps=110)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1e-4),  # first warmup step: peak / warmup
        (4, 5e-4),
        (9, 1e-3),  # warmup ends at the peak
        (10, 1e-3),  # cosine starts at the peak
        (60, 0.55e-3),  # halfway through the cosine: (peak + floor) / 2
        (110, 1e-4),  # end: a tenth of the peak
        (500, 1e-4),  # past the horizon it stays at the floor
    ],
)
def test_learning_rate_schedule(step, expected):
    assert train.learning_rate(step, SCHEDULE) == pytest.approx(expected)


def test_lr_decay_steps_sets_the_cosine_horizon():
    config = dataclasses.replace(SCHEDULE, lr_decay_steps=60, max_steps=1000)
    assert train.learning_rate(60, config) == pytest.approx(1e-4)
    assert train.learning_rate(35, config) == pytest.approx(0.55e-3)


def test_weight_decay_only_on_matrices():
    model = train.build_model(dataclasses.replace(train.PRESETS["tiny"]))
    [optimizer] = make_optimizers(model, train.PRESETS["tiny"], "cpu")
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    assert optimizer.defaults["betas"] == (0.9, 0.95)


def test_resume_continues_exactly_like_an_uninterrupted_run(dataset_dir, tmp_path):
    schedule = dict(max_steps=6, lr_decay_steps=6, warmup_steps=2, eval_interval=3, checkpoint_interval=100)
    straight = train.run(tiny(dataset_dir, tmp_path / "straight", **schedule))
    split = tiny(dataset_dir, tmp_path / "split", **{**schedule, "max_steps": 3})
    train.run(split)
    resumed = train.run(dataclasses.replace(split, max_steps=6, resume=True))
    assert train_losses(resumed) == train_losses(straight)  # exact: same batches, same updates
    a = GPT2LMHeadModel.from_pretrained(straight).state_dict()
    b = GPT2LMHeadModel.from_pretrained(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["tokens_seen"] == 6 * 8 * 64


def test_batches_are_reproducible_from_the_generator_state(dataset_dir):
    blocks = train.load_split(Path(dataset_dir), "train")
    config = dataclasses.replace(train.PRESETS["tiny"], block_size=32)  # windows inside 64-token blocks
    generator = torch.Generator().manual_seed(0)
    train.sample_batch(blocks, config, generator)
    state = generator.get_state()
    expected = train.sample_batch(blocks, config, generator)
    generator.set_state(state)
    assert torch.equal(train.sample_batch(blocks, config, generator), expected)
    assert expected.shape == (8, 32)


@pytest.mark.parametrize(
    ("budget", "steps", "reason"),
    [
        ({"max_steps": 3}, 3, "max_steps"),
        ({"max_tokens": 2 * 8 * 64 + 1}, 3, "max_tokens"),  # stops at the first step past the budget
        ({"max_seconds": 1e-9}, 1, "max_seconds"),
    ],
)
def test_budget_stops_training(dataset_dir, tmp_path, budget, steps, reason):
    out = train.run(tiny(dataset_dir, tmp_path / "t", **{"max_steps": 50, **budget}))
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["steps"], metrics["stop_reason"]) == (steps, reason)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"block_size": 256}, "block_size must be <= n_positions"),
        ({"n_positions": 512, "block_size": 128}, "block_size must be <= the dataset's block length 64"),
        ({"init": "random"}, "init must be 'scratch' or 'pretrained'"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"precision": "fp16", "device": "cpu"}, "precision 'fp16' needs a CUDA GPU"),
        ({"device": "tpu"}, "device must be one of"),
        ({"resume": True}, "resume asked for but"),
    ],
)
def test_bad_config_is_refused(dataset_dir, tmp_path, changes, message):
    with pytest.raises(StageError, match=message):
        train.run(tiny(dataset_dir, tmp_path / "t", **changes))
