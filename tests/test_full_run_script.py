"""model_creation/full_run.sh, the one command behind `make train-gpu`: on the tiny preset and
the fixture corpus it chains every stage into a model directory the backend serves, replacing
whatever model was there before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backend.engine import Engine, GenerationParams

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"


def test_full_run_chains_every_stage_and_replaces_the_served_model(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "metrics.json").write_text("{}")  # a finished earlier model, as in a fresh clone
    env = {
        **os.environ,
        "RUNS": str(tmp_path / "runs"),
        "MODEL_DIR": str(model_dir),
        "PRESET": "tiny",
        "HOLDOUT": "0.1",
        "PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        ["bash", "model_creation/full_run.sh", str(CORPUS)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stages = {
        json.loads((tmp_path / "runs" / name / "metrics.json").read_text()).get("stage", name)
        for name in ("dataset", "train", "export", "quantize")
    }
    assert len(stages) == 4
    evaluation = json.loads((model_dir / "eval.json").read_text())
    assert set(evaluation["perplexity"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    engine = Engine.load(model_dir)
    assert engine.info["quantization"] == "int8"
    result = engine.generate("We propose a method to", GenerationParams(max_new_tokens=5, temperature=0))
    assert result.completion_tokens >= 1
