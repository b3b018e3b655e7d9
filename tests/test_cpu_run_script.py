"""model_creation/cpu_run.sh, the one command behind `make train-cpu`: on the tiny preset and the
fixture corpus, two stretches train one stable run further and each ships a decayed candidate;
the second model's card shows both stretches and its decay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from backend.engine import Engine, GenerationParams

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"


def stretch(tmp_path: Path, max_steps: int) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "RUNS": str(tmp_path / "runs"),
        "MODEL_DIR": str(tmp_path / "model"),
        "PRESET": "tiny",
        "VOCAB": "500",
        "HOLDOUT": "0.1",
        "DECAY_FRACTION": "0.2",
        "TRAIN_ARGS": f"--max-steps {max_steps}",
        "PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        ["bash", "model_creation/cpu_run.sh", str(CORPUS), "600"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )  # a safety net, not a speed check


def test_two_stretches_resume_one_stable_run_and_ship_decayed_candidates(tmp_path):
    first = stretch(tmp_path, 10)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    runs = tmp_path / "runs"
    assert (runs / "cpu-6x512-muon-decay-at-10" / "train" / "metrics.json").exists()
    stable_after_first = torch.load(runs / "cpu-6x512-muon" / "checkpoint.pt", weights_only=False)["step"]
    assert stable_after_first == 10  # the fork trained elsewhere; the stable run was left where it stopped

    second = stretch(tmp_path, 20)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    decayed = json.loads((runs / "cpu-6x512-muon-decay-at-20" / "train" / "metrics.json").read_text())
    assert decayed["decay_end"] == 24 and decayed["steps"] == 24  # 20 stable steps + 20% decay
    card = (tmp_path / "model" / "README.md").read_text()
    assert "| 1 | 0 | " in card and "| 2 | 10 | " in card and "| 3 | 20 | " in card and "| decay |" in card
    assert json.loads((tmp_path / "model" / "eval.json").read_text())["vocab_size"] == 500
    engine = Engine.load(tmp_path / "model")
    result = engine.generate("We propose a method to", GenerationParams(max_new_tokens=5, temperature=0))
    assert result.completion_tokens >= 1
