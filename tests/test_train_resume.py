"""Runs that resume where they stopped: a killed or stopped run, resumed, ends with the very
weights and log of an uninterrupted run; a decay forked from a stable WSD run equals a one-run
WSD schedule and leaves the stable run untouched and resumable; time budgets are per invocation."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import GPT2LMHeadModel

from model_creation import train
from model_creation.training.loss_curve import read_log
from tests.tiny_model import build_tiny_dataset_dir

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"
RUN = dict(max_steps=12, eval_interval=4, checkpoint_interval=4, log_interval=1)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return build_tiny_dataset_dir(tmp_path_factory.mktemp("dataset"), CORPUS)


@pytest.fixture(scope="module")
def straight(dataset_dir, tmp_path_factory):
    """The uninterrupted run every interrupted one is compared with."""
    return train.run(tiny(dataset_dir, tmp_path_factory.mktemp("straight") / "run"))


def tiny(dataset_dir, output_dir, **changes) -> train.Config:
    return dataclasses.replace(
        train.PRESETS["tiny"], dataset_dir=str(dataset_dir), output_dir=str(output_dir), **{**RUN, **changes}
    )


def history(out: Path) -> list[tuple]:
    """The logged training and validation history, without the per-invocation records."""
    return [
        (r["step"], r.get("train_loss"), r.get("val_loss"))
        for r in read_log(out / "log.jsonl")
        if "train_loss" in r or "val_loss" in r
    ]


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = GPT2LMHeadModel.from_pretrained(a).state_dict(), GPT2LMHeadModel.from_pretrained(b).state_dict()
    assert left.keys() == right.keys()
    assert all(torch.equal(left[k], right[k]) for k in left)


def start_training(dataset_dir: Path, out: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "model_creation",
        "train",
        "--preset",
        "tiny",
        "--dataset-dir",
        str(dataset_dir),
        "--output-dir",
        str(out),
        *[f"--{k.replace('_', '-')}={v}" for k, v in RUN.items()],
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / f"{out.name}.stderr").open("w") as stderr:  # a file, not a pipe that could fill up
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_for_step(process: subprocess.Popen, out: Path, step: int) -> None:
    """Block until the run has logged `step` (a condition, not a time: slow machines only wait longer)."""
    log = out / "log.jsonl"
    while not (log.exists() and any(r.get("step", 0) >= step and "train_loss" in r for r in _records(log))):
        assert process.poll() is None, (out.parent / f"{out.name}.stderr").read_text()[-2000:]
        time.sleep(0.02)


def _records(log: Path) -> list[dict]:
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines[:-1] if line.strip()]  # the last line may be half-written


def test_run_killed_between_checkpoints_resumes_to_the_same_weights(dataset_dir, straight, tmp_path):
    out = tmp_path / "killed"
    process = start_training(dataset_dir, out)
    wait_for_step(process, out, 5)  # past the checkpoint of step 4
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint_step = torch.load(out / "checkpoint.pt", weights_only=False)["step"]
    assert checkpoint_step < RUN["max_steps"] and not (out / "metrics.json").exists()
    resumed = train.run(tiny(dataset_dir, out, resume=True))
    assert history(resumed) == history(straight)  # steps after the checkpoint are not logged twice
    assert_same_weights(resumed, straight)
    starts = [r for r in read_log(resumed / "log.jsonl") if r.get("event") == "start"]
    assert [r["step"] for r in starts] == [0, checkpoint_step]


def test_sigterm_checkpoints_the_current_step_and_resumes(dataset_dir, straight, tmp_path):
    out = tmp_path / "stopped"
    process = start_training(dataset_dir, out)
    wait_for_step(process, out, 5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stop_reason"] == "SIGTERM" and metrics["steps"] < RUN["max_steps"]
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == metrics["steps"]
    resumed = train.run(tiny(dataset_dir, out, resume=True))
    assert [h[:2] for h in history(resumed) if h[1] is not None] == [
        h[:2] for h in history(straight) if h[1] is not None
    ]
    assert_same_weights(resumed, straight)


def test_max_seconds_is_a_budget_per_invocation(dataset_dir, tmp_path):
    config = tiny(dataset_dir, tmp_path / "budget", max_seconds=1e-9)
    first = json.loads((train.run(config) / "metrics.json").read_text())
    second = json.loads((train.run(dataclasses.replace(config, resume=True)) / "metrics.json").read_text())
    assert (first["steps"], second["steps"]) == (1, 2)  # each invocation gets its own (tiny) budget
    assert second["stop_reason"] == "max_seconds" and second["wall_seconds"] > first["wall_seconds"]


def test_decay_fork_equals_one_run_wsd_and_leaves_the_stable_run_resumable(dataset_dir, tmp_path):
    wsd = dict(schedule="wsd", warmup_steps=2)
    one_run = train.run(tiny(dataset_dir, tmp_path / "one", **wsd, decay_steps=4))  # decays over steps 9-12
    stable = train.run(tiny(dataset_dir, tmp_path / "stable", **wsd, max_steps=8))
    checkpoint_before = (stable / "checkpoint.pt").read_bytes()
    fork = train.run(tiny(dataset_dir, tmp_path / "fork", **wsd, decay_steps=4, decay_from=str(stable)))
    assert_same_weights(fork, one_run)
    assert history(fork) == history(one_run)  # the fork's log starts with the stable run's history
    lrs = [r["lr"] for r in read_log(fork / "log.jsonl") if "lr" in r]
    assert lrs[7] == pytest.approx(3e-3) and lrs[-1] == pytest.approx(3e-4)  # tiny's peak, then its floor
    assert json.loads((fork / "metrics.json").read_text())["decay_end"] == 12
    assert (stable / "checkpoint.pt").read_bytes() == checkpoint_before
    resumed = train.run(tiny(dataset_dir, stable, **wsd, max_steps=10, resume=True))
    assert [r["lr"] for r in read_log(resumed / "log.jsonl") if "lr" in r][-1] == pytest.approx(3e-3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"decay_from": "x", "decay_steps": 4}, "decay_from needs schedule='wsd'"),
        ({"decay_from": "x", "schedule": "wsd"}, "decay_from needs schedule='wsd' and decay_steps >= 1"),
        ({"decay_from": "nowhere", "schedule": "wsd", "decay_steps": 4}, "does not exist"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"schedule": "linear"}, "schedule must be one of"),
    ],
)
def test_bad_fork_and_option_configs_are_refused(dataset_dir, tmp_path, changes, message):
    from model_creation.stage_dir import StageError

    with pytest.raises(StageError, match=message):
        train.run(tiny(dataset_dir, tmp_path / "t", **changes))
