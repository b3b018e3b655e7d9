"""A training run's log.jsonl: the loss curve (train and validation loss against tokens seen, over
the whole history of a resumed or forked run) and the run's stretches for the model card."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_loss_curve(log_path: str | Path, image_path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    millions = 1e-6
    train = [(r["tokens"] * millions, r["train_loss"]) for r in records if "train_loss" in r]
    val = [(r["tokens"] * millions, r["val_loss"]) for r in records if "val_loss" in r and "tokens" in r]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        axes.plot(*zip(*train, strict=True), label="train", linewidth=1)
    if val:
        axes.plot(*zip(*val, strict=True), label="validation", marker="o", linewidth=1.5)
    for start in (r for r in records if r.get("event") == "start"):
        style = (
            dict(color="tab:red", linestyle="--")
            if start.get("decay_end") is not None
            else dict(color="grey", linestyle=":")
        )
        axes.axvline(start["tokens"] * millions, linewidth=0.8, **style)  # where an invocation (or a decay) began
    axes.set_xlabel("tokens seen (millions); dotted: a resumed stretch, dashed red: the decay")
    axes.set_ylabel("cross-entropy (nats/token)")
    axes.set_title("Training loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(image_path)
    plt.close(figure)
    return Path(image_path)


def training_stretches(records: list[dict], final_tokens: int, final_seconds: float) -> list[dict]:
    """One entry per invocation of the train stage (its "start" record): where it started, the
    tokens it trained and its wall-clock seconds, and whether it was a decay."""
    starts = [r for r in records if r.get("event") == "start"]
    stretches = []
    for i, begin in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else {"tokens": final_tokens, "elapsed": final_seconds}
        stretches.append(
            {
                "start_step": begin["step"],
                "tokens": end["tokens"] - begin["tokens"],
                "seconds": end.get("elapsed", 0.0) - begin.get("elapsed", 0.0),
                "decay": begin.get("decay_end") is not None,
            }
        )
    return stretches
