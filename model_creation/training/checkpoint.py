"""A training run's resumable state: checkpoint.pt and the log that must agree with it.

checkpoint.pt holds the weights, every optimizer's state, the step and token counters, the
training time so far, the RNG states (the batch generator's included, so the data order goes on
exactly where it stopped) and, for a forked decay, where the decay ends. It is written to a
temporary file and renamed, so a kill during the write leaves the previous checkpoint whole.
A run killed between checkpoints logged steps that the checkpoint does not have; resuming cuts
the log back to the checkpoint's step so that those steps are not in the history twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "log.jsonl"


def rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, state: dict) -> None:
    """Write `state` as directory/checkpoint.pt atomically (write a temporary file, then rename)."""
    target = directory / CHECKPOINT_FILE
    partial = target.with_suffix(".pt.partial")
    torch.save(state, partial)
    os.replace(partial, target)


def load_checkpoint(directory: Path, device: str) -> dict:
    return torch.load(directory / CHECKPOINT_FILE, map_location=device, weights_only=False)


def truncate_log(log_path: Path, step: int) -> None:
    """Drop log records of steps after `step` (logged by a run killed before its next checkpoint)."""
    if not log_path.exists():
        return
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    log_path.write_text("".join(line + "\n" for line in kept))


def copy_log(source: Path, target: Path, step: int) -> None:
    """A fork starts its log with its parent's history up to the step it forked at."""
    target.write_text(source.read_text() if source.exists() else "")
    truncate_log(target, step)
