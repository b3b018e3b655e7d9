"""The train stage's loop: optimizer steps with gradient accumulation and clipping, validation,
checkpoints, and stopping on a budget or a signal. model_creation/train.py sets it up and writes
the model directory."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from tqdm.auto import tqdm

from model_creation.stage_dir import StageError
from model_creation.training.checkpoint import restore_rng, rng_state, save_checkpoint
from model_creation.training.config import Config
from model_creation.training.data import sample_batch
from model_creation.training.optimizers import learning_rate, set_learning_rate
from model_creation.training.precision import Hardware


@torch.no_grad()
def validation_loss(loss_fn, model, blocks: np.ndarray, config: Config, device: str, autocast) -> float:
    """Mean loss over the first `eval_batches` validation micro-batches (the same ones every time)."""
    model.eval()
    losses = []
    for i in range(config.eval_batches):
        rows = blocks[i * config.batch_size : (i + 1) * config.batch_size, : config.block_size]
        if len(rows) == 0:
            break
        with autocast():
            losses.append(loss_fn(model, torch.from_numpy(rows.astype(np.int64)).to(device)).item())
    model.train()
    if not losses:
        raise StageError("the validation split is empty")
    return float(np.mean(losses))


@contextlib.contextmanager
def stop_requests():
    """SIGTERM and SIGINT set a flag the loop reads after each step, so a stopped run checkpoints."""
    requested: list[int] = []
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in handlers:
            signal.signal(sig, lambda signum, frame: requested.append(signum))
    except ValueError:  # not the main thread: signals stay as they were
        handlers = {}
    try:
        yield requested
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def stop_reason(config: Config, tokens: int, seconds: float, signals: list[int]) -> str | None:
    if signals:
        return signal.Signals(signals[0]).name
    if config.max_tokens and tokens >= config.max_tokens:
        return "max_tokens"
    if config.max_seconds and seconds >= config.max_seconds:
        return "max_seconds"
    return None


@dataclass
class Training:
    """What the loop works on, and how far it has got (what every checkpoint saves)."""

    config: Config
    out: Path
    hardware: Hardware
    model: torch.nn.Module
    optimizers: list[torch.optim.Optimizer]
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    loss_fn: object = None
    step: int = 0
    tokens: int = 0
    elapsed_before: float = 0.0  # seconds trained by earlier invocations
    decay_end: int | None = None
    start: float = 0.0  # time.perf_counter() when this invocation's loop started

    def resume(self, state: dict) -> None:
        """Continue from a checkpoint: weights, optimizer and scaler states, progress, RNG."""
        self.model.load_state_dict(state["model"])
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.tokens, self.elapsed_before = state["step"], state["tokens"], state["elapsed"]
        self.decay_end = state.get("decay_end")
        restore_rng(state["rng"], self.generator)

    def elapsed(self) -> float:
        """Seconds trained in all, this invocation included."""
        return self.elapsed_before + time.perf_counter() - self.start

    def checkpoint(self) -> None:
        save_checkpoint(
            self.out,
            {
                "model": self.model.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "step": self.step,
                "tokens": self.tokens,
                "elapsed": self.elapsed(),
                "rng": rng_state(self.generator),
                "decay_end": self.decay_end,
                "scaler": self.scaler.state_dict(),
                "config": dataclasses.asdict(self.config),
            },
        )

    def validate(self, log: IO[str], val_blocks: np.ndarray, gpt2_ratio: float) -> float:
        """The validation loss, also appended to the log."""
        loss = validation_loss(
            self.loss_fn, self.model, val_blocks, self.config, self.hardware.device, self.hardware.autocast
        )
        record = {
            "step": self.step,
            "tokens": self.tokens,
            "val_loss": loss,
            "val_ppl": math.exp(loss),
            "val_ppl_per_gpt2_token": math.exp(loss / gpt2_ratio),
        }
        log.write(json.dumps(record) + "\n")
        return loss

    def optimizer_step(self, train_blocks: np.ndarray, lr: float) -> float:
        """One optimizer step over `grad_accum` micro-batches; their mean loss."""
        config, device = self.config, self.hardware.device
        set_learning_rate(self.optimizers, lr)
        step_losses = []
        for _ in range(config.grad_accum):
            x = sample_batch(train_blocks, config, self.generator).to(device, non_blocking=True)  # [batch, block]
            with self.hardware.autocast():
                loss = self.loss_fn(self.model, x)
            self.scaler.scale(loss / config.grad_accum).backward()
            step_losses.append(loss.item())
        for optimizer in self.optimizers:
            self.scaler.unscale_(optimizer)  # clipping and the optimizers see the true gradients
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        for optimizer in self.optimizers:
            self.scaler.step(optimizer)  # skipped by the fp16 scaler when a gradient overflowed
            optimizer.zero_grad(set_to_none=True)
        self.scaler.update()
        return float(np.mean(step_losses))


@dataclass
class LoopEnd:
    stop_reason: str
    train_loss: float  # the last step's; nan if no step ran
    val_loss: float
    first_step: int  # where this invocation started
    loop_seconds: float


def train_loop(
    training: Training, log: IO[str], train_blocks: np.ndarray, val_blocks: np.ndarray, gpt2_ratio: float
) -> LoopEnd:
    """Steps until max_steps (or the decay's end), a budget or a signal; then a last validation
    (unless this step just had one) and a checkpoint. Closes the log."""
    config = training.config
    max_steps = training.decay_end if training.decay_end is not None else config.max_steps
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    training.start, reason, train_loss, val_loss = time.perf_counter(), "max_steps", float("nan"), None
    first_step = training.step
    training.model.train()
    bar = tqdm(total=max_steps, initial=training.step, desc="train", unit="step")
    with stop_requests() as stop_signals:
        while training.step < max_steps:
            lr = learning_rate(training.step, config, training.decay_end)
            train_loss = training.optimizer_step(train_blocks, lr)
            training.step, training.tokens = training.step + 1, training.tokens + tokens_per_step
            step, tokens = training.step, training.tokens
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", lr=f"{lr:.2e}")
            if step % config.log_interval == 0:
                record = {"step": step, "train_loss": train_loss, "lr": lr, "tokens": tokens}
                log.write(json.dumps({**record, "elapsed": training.elapsed()}) + "\n")
            if step % config.eval_interval == 0:
                val_loss = training.validate(log, val_blocks, gpt2_ratio)
            log.flush()
            if step % config.checkpoint_interval == 0:
                training.checkpoint()
            reason = stop_reason(config, tokens, time.perf_counter() - training.start, stop_signals)
            if reason:
                break
        reason = reason or "max_steps"
        bar.close()
        loop_seconds = time.perf_counter() - training.start
        if val_loss is None or training.step % config.eval_interval != 0:
            val_loss = training.validate(log, val_blocks, gpt2_ratio)
        log.close()
        training.checkpoint()
    return LoopEnd(reason, train_loss, val_loss, first_step, loop_seconds)
