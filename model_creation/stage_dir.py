"""The contract every pipeline stage keeps with its output directory.

One new directory per run, refused if it already holds a finished run (unless overwrite is
asked for), and a `metrics.json` written last so its presence means "finished".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"
# The scrape stage's output file, which the dataset stage reads: defined here so that the dataset
# stage does not import the scrape stage (and with it arxiv and requests).
ABSTRACTS_FILE = "abstracts.jsonl"


class StageError(RuntimeError):
    """A stage cannot run with the inputs or output directory it was given."""


def prepare_output_dir(path: str | Path, overwrite: bool) -> Path:
    """Create `path` for a new run; a finished run there is kept unless `overwrite`."""
    path = Path(path)
    if (path / METRICS_FILE).exists():
        if not overwrite:
            raise StageError(f"{path} already holds a finished run; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_finished(path: str | Path, stage: str) -> Path:
    """The previous stage's output, which must exist and be finished."""
    path = Path(path)
    if not (path / METRICS_FILE).exists():
        raise StageError(f"{path} is not a finished {stage} output (no {METRICS_FILE}); run the {stage} stage first")
    return path


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> Path:
    """Write `metrics.json` (last, so that it marks the run as finished)."""
    target = Path(path) / METRICS_FILE
    target.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return target


def copy_stage_files(source: Path, out: Path, skip: tuple[str, ...] = ()) -> None:
    """Carry the previous stage's files (config, tokenizer, ...) into `out`, except its
    metrics.json and the names in `skip`: a model directory travels from stage to stage."""
    for item in source.iterdir():
        if item.is_file() and item.name != METRICS_FILE and item.name not in skip:
            shutil.copyfile(item, out / item.name)


def read_metrics(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / METRICS_FILE).read_text())
