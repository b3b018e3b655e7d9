"""The train stage's fast path and options against the plain fp32 reference: the loss function,
bf16 autocast and torch.compile parity, Muon's parameter split, and the WSD schedule."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from model_creation import train
from model_creation.training.loss_curve import read_log
from model_creation.training.optimizers import MUON_MATRICES, learning_rate, make_optimizers
from tests.tiny_model import build_tiny_dataset_dir

CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_tiny_dataset_dir(tmp_path_factory.mktemp("dataset"), CORPUS)


def tiny(dataset_dir, output_dir, **changes) -> train.Config:
    return dataclasses.replace(
        train.PRESETS["tiny"], dataset_dir=str(dataset_dir), output_dir=str(output_dir), **changes
    )


def train_losses(out: Path) -> list[float]:
    return [r["train_loss"] for r in read_log(out / "log.jsonl") if "train_loss" in r]


def test_lm_loss_equals_transformers_loss():
    torch.manual_seed(0)
    model = train.build_model(train.PRESETS["tiny"]).eval()
    x = torch.randint(50257, (3, 20))
    with torch.no_grad():
        torch.testing.assert_close(train.lm_loss(model, x), model(x, labels=x).loss, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("changes", [{"precision": "bf16"}, {"compile": True}], ids=["bf16-autocast", "torch-compile"])
def test_fast_path_tracks_fp32_over_a_few_steps(dataset_dir, tmp_path, changes):
    steps = dict(max_steps=6, eval_interval=6, checkpoint_interval=100)
    reference = train_losses(train.run(tiny(dataset_dir, tmp_path / "fp32", **steps)))
    fast_run = train.run(tiny(dataset_dir, tmp_path / "fast", **steps, **changes))
    fast = train_losses(fast_run)
    assert len(fast) == len(reference) == 6
    # bf16 keeps ~3 significant digits; the same batches and updates keep the curves together.
    assert fast == pytest.approx(reference, abs=0.05)
    assert fast[-1] < fast[0] - 0.3
    metrics = read_log(fast_run / "log.jsonl")[0]
    assert metrics["precision"] == ("bf16" if "precision" in changes else "fp32")


def test_muon_takes_the_block_matrices_and_adamw_the_rest():
    model = train.build_model(train.PRESETS["tiny"])
    muon, adamw = make_optimizers(model, dataclasses.replace(train.PRESETS["tiny"], optimizer="muon"), "cpu")
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    muon_names = {names[id(p)] for g in muon.param_groups for p in g["params"]}
    adamw_names = {names[id(p)] for g in adamw.param_groups for p in g["params"]}
    layers = train.PRESETS["tiny"].n_layer
    assert muon_names == {f"transformer.h.{i}.{m}" for i in range(layers) for m in MUON_MATRICES}
    assert muon_names.isdisjoint(adamw_names) and muon_names | adamw_names == set(names.values())
    assert "transformer.wte.weight" in adamw_names  # the embedding (and tied LM head) stays with AdamW


def test_muon_run_learns(dataset_dir, tmp_path):
    losses = train_losses(train.run(tiny(dataset_dir, tmp_path / "muon", optimizer="muon", max_steps=15)))
    assert losses[0] == pytest.approx(math.log(50257), abs=0.3)
    assert max(losses[-3:]) < losses[0] - 1.0


WSD = train.Config(learning_rate=1e-3, min_lr_ratio=0.1, warmup_steps=10, schedule="wsd", max_steps=10**6)


@pytest.mark.parametrize(
    ("changes", "decay_end", "step", "expected"),
    [
        ({}, None, 0, 1e-4),  # warmup as in cosine
        ({}, None, 9, 1e-3),
        ({}, None, 10, 1e-3),  # stable: the peak ...
        ({}, None, 500_000, 1e-3),  # ... for as long as the run goes on
        ({"decay_steps": 100}, 1000, 899, 1e-3),  # a fork: stable up to its decay
        ({"decay_steps": 100}, 1000, 900, 1e-3 - 0.9e-3 / 100),  # first decay step
        ({"decay_steps": 100}, 1000, 949, 0.55e-3),  # halfway down, linearly
        ({"decay_steps": 100}, 1000, 999, 1e-4),  # the last step is at the floor
        ({"decay_steps": 100, "max_steps": 300}, None, 249, 0.55e-3),  # one-run WSD: decay ends at max_steps
    ],
)
def test_wsd_schedule(changes, decay_end, step, expected):
    assert learning_rate(step, dataclasses.replace(WSD, **changes), decay_end) == pytest.approx(expected)
