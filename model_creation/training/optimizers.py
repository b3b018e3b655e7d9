"""The train stage's optimizers and learning-rate schedules.

Optimizers: AdamW alone, or Muon (torch.optim.Muon) for the transformer blocks' 2-D weight
matrices with AdamW for everything else (embeddings, which are also the tied LM head, biases
and LayerNorm), as Muon's authors recommend. Muon's step is scaled to match AdamW's update RMS
(`adjust_lr_fn="match_rms_adamw"`), so one learning rate and one schedule drive both.

Schedules: "cosine" (linear warmup, cosine decay to a floor at a fixed horizon) or "wsd"
(warmup-stable-decay: linear warmup, then a constant rate for as long as the run goes on, then
a linear decay to the floor over the last `decay_steps` before the decay's end). A stable WSD run
has no end, so it can be resumed for more hours at any time; a shipping candidate forks a decay
from one of its checkpoints.
"""

from __future__ import annotations

import math

import torch

from model_creation.training.config import Config

OPTIMIZERS = ("adamw", "muon")
SCHEDULES = ("cosine", "wsd")
MUON_MATRICES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def learning_rate(step: int, config: Config, decay_end: int | None = None) -> float:
    """lr for optimizer step `step` (0-based).

    `decay_end` is where a WSD decay reaches the floor; None means `max_steps` when
    `decay_steps` is set, and no decay at all (a stable run) when it is 0.
    """
    peak, floor = config.learning_rate, config.learning_rate * config.min_lr_ratio
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    if config.schedule == "wsd":
        end = decay_end if decay_end is not None else (config.max_steps if config.decay_steps else None)
        start = None if end is None else end - config.decay_steps
        if start is None or step < start:
            return peak
        progress = min(1.0, (step - start + 1) / max(1, config.decay_steps))
        return peak + progress * (floor - peak)
    horizon = config.lr_decay_steps or config.max_steps
    if step >= horizon:
        return floor
    progress = (step - config.warmup_steps) / max(1, horizon - config.warmup_steps)
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - floor)


def _adamw(groups: list[dict], config: Config, device: str) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), fused=device == "cuda"
    )


def make_optimizers(model: torch.nn.Module, config: Config, device: str) -> list[torch.optim.Optimizer]:
    """The optimizers that together update every trainable parameter exactly once.

    Weight decay applies to 2-D weights only (matrices, embeddings), never biases or LayerNorm.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # tied weights appear once
    muon = [p for n, p in named if config.optimizer == "muon" and n.endswith(MUON_MATRICES)]
    taken = {id(p) for p in muon}
    rest = [p for _, p in named if id(p) not in taken]
    adamw = _adamw(
        [
            {"params": [p for p in rest if p.dim() >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
        ],
        config,
        device,
    )
    if not muon:
        return [adamw]
    return [
        torch.optim.Muon(
            muon, lr=config.learning_rate, weight_decay=config.weight_decay, adjust_lr_fn="match_rms_adamw"
        ),
        adamw,
    ]


def set_learning_rate(optimizers: list[torch.optim.Optimizer], lr: float) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
