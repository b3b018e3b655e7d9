"""Train stage: causal-LM training of a DistilGPT2-architecture model on the packed dataset.

A plain nanoGPT-style loop around transformers' GPT2LMHeadModel (so export works unchanged):
random blocks from a seeded generator, AdamW with linear warmup and cosine decay, gradient
accumulation and clipping, bf16 autocast + torch.compile on a GPU, validation perplexity every
`eval_interval` steps, resumable checkpoints, and a budget in steps, tokens or seconds.
Writes a HF model directory plus log.jsonl, loss_curve.png, checkpoint.pt and metrics.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from model_creation.loss_curve import plot_loss_curve
from model_creation.stage_dir import METRICS_FILE, StageError, prepare_output_dir, require_finished, write_metrics
from model_creation.tokenizer import ASSETS_DIR, END_OF_TEXT_ID, save_tokenizer
from model_creation.train_config import PRESETS, Config

__all__ = ["Config", "PRESETS", "run", "learning_rate", "build_model"]


def learning_rate(step: int, config: Config) -> float:
    """lr for optimizer step `step` (0-based): linear warmup, then cosine down to a floor."""
    peak, floor = config.learning_rate, config.learning_rate * config.min_lr_ratio
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    horizon = config.lr_decay_steps or config.max_steps
    if step >= horizon:
        return floor
    progress = (step - config.warmup_steps) / max(1, horizon - config.warmup_steps)
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - floor)


def build_model(config: Config):
    from transformers import GPT2Config, GPT2LMHeadModel

    dropout = dict(resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout)
    if config.init == "pretrained":
        return GPT2LMHeadModel.from_pretrained(config.base, **dropout)
    if config.init != "scratch":
        raise StageError(f"init must be 'scratch' or 'pretrained', got {config.init!r}")
    gpt2 = GPT2Config.from_json_file(ASSETS_DIR / "distilgpt2-config.json")
    for name in ("n_layer", "n_embd", "n_head", "n_positions"):
        setattr(gpt2, name, getattr(config, name))
    gpt2.n_ctx = config.n_positions
    for name, value in dropout.items():
        setattr(gpt2, name, value)
    return GPT2LMHeadModel(gpt2)


def load_split(dataset_dir: Path, split: str) -> np.ndarray:
    """One split of the packed dataset as a [blocks, block_len] uint16 array (vocab < 65536)."""
    from datasets import load_from_disk

    packed = load_from_disk(str(dataset_dir / "packed"))[split].with_format("numpy")
    return np.asarray(packed["input_ids"], dtype=np.uint16)


def sample_batch(blocks: np.ndarray, config: Config, generator: torch.Generator) -> torch.Tensor:
    """`batch_size` random blocks [batch, block_size], a random window of each if blocks are longer."""
    rows = torch.randint(len(blocks), (config.batch_size,), generator=generator).numpy()
    spare = blocks.shape[1] - config.block_size
    starts = torch.randint(spare + 1, (config.batch_size,), generator=generator).numpy()
    batch = np.stack([blocks[r, s : s + config.block_size] for r, s in zip(rows, starts)])
    return torch.from_numpy(batch.astype(np.int64))


def make_optimizer(model, config: Config, device: str) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), fused=device == "cuda"
    )


@torch.no_grad()
def validation_loss(model, blocks: np.ndarray, config: Config, device: str, autocast) -> float:
    """Mean loss over the first `eval_batches` validation micro-batches (the same ones every time)."""
    model.eval()
    losses = []
    for i in range(config.eval_batches):
        rows = blocks[i * config.batch_size : (i + 1) * config.batch_size, : config.block_size]
        if len(rows) == 0:
            break
        x = torch.from_numpy(rows.astype(np.int64)).to(device)
        with autocast():
            losses.append(model(x, labels=x).loss.item())
    model.train()
    if not losses:
        raise StageError("the validation split is empty")
    return float(np.mean(losses))


def _resolve_hardware(config: Config) -> tuple[str, bool]:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
    if device == "cuda" and not torch.cuda.is_available():
        raise StageError("device is 'cuda' but no GPU is available")
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device == "cuda")
    if bf16 and device == "cpu":
        bf16 = False  # bf16 autocast on CPU is slower than fp32 and not what the recipe measures
    return device, bf16


def _validate(config: Config) -> None:
    if config.block_size > config.n_positions and config.init == "scratch":
        raise StageError(f"block_size must be <= n_positions ({config.n_positions}), got {config.block_size}")
    for name, allowed in (("device", ("auto", "cuda", "cpu")), ("precision", ("auto", "bf16", "fp32"))):
        if getattr(config, name) not in allowed:
            raise StageError(f"{name} must be one of {list(allowed)}, got {getattr(config, name)!r}")
    for name in ("batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches", "log_interval"):
        if getattr(config, name) < 1:
            raise StageError(f"{name} must be >= 1, got {getattr(config, name)}")


def _rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _prepare(config: Config) -> Path:
    out = Path(config.output_dir)
    if not config.resume:
        return prepare_output_dir(out, config.overwrite)
    if not (out / "checkpoint.pt").exists():
        raise StageError(f"resume asked for but {out / 'checkpoint.pt'} does not exist")
    (out / METRICS_FILE).unlink(missing_ok=True)  # the run is unfinished again until it ends
    return out


def run(config: Config) -> Path:
    _validate(config)
    dataset_dir = require_finished(Path(config.dataset_dir), "dataset")
    out = _prepare(config)
    device, bf16 = _resolve_hardware(config)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_blocks, val_blocks = load_split(dataset_dir, "train"), load_split(dataset_dir, "validation")
    if train_blocks.shape[1] < config.block_size:
        raise StageError(f"block_size must be <= the dataset's block length {train_blocks.shape[1]}, got {config.block_size}")

    model = build_model(config).to(device)
    optimizer = make_optimizer(model, config, device)
    step, tokens, elapsed_before = 0, 0, 0.0
    if config.resume:
        checkpoint = torch.load(out / "checkpoint.pt", map_location=device, weights_only=False)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, tokens, elapsed_before = checkpoint["step"], checkpoint["tokens"], checkpoint["elapsed"]
        _restore_rng(checkpoint["rng"], generator)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    forward = torch.compile(model) if (config.compile and device == "cuda") else model

    def autocast():
        if bf16:
            return torch.autocast(device_type=device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def save_checkpoint() -> None:
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "tokens": tokens,
             "elapsed": elapsed_before + time.perf_counter() - start, "rng": _rng_state(generator),
             "config": dataclasses.asdict(config)},
            out / "checkpoint.pt",
        )

    # A fresh run starts a fresh log, even over an unfinished earlier run's leftovers.
    log = (out / "log.jsonl").open("a" if config.resume else "w")
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    start, stop_reason, train_loss, val_loss = time.perf_counter(), "max_steps", float("nan"), None
    first_step = step
    model.train()
    bar = tqdm(total=config.max_steps, initial=step, desc="train", unit="step")
    while step < config.max_steps:
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_losses = []
        for _ in range(config.grad_accum):
            x = sample_batch(train_blocks, config, generator).to(device, non_blocking=True)  # [batch, block]
            with autocast():
                loss = forward(x, labels=x).loss  # labels are shifted inside the model
            (loss / config.grad_accum).backward()
            step_losses.append(loss.item())
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step, tokens = step + 1, tokens + tokens_per_step
        train_loss = float(np.mean(step_losses))
        elapsed = elapsed_before + time.perf_counter() - start
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.3f}", lr=f"{lr:.2e}")
        if step % config.log_interval == 0:
            record = {"step": step, "train_loss": train_loss, "lr": lr, "tokens": tokens, "elapsed": elapsed}
            log.write(json.dumps(record) + "\n")
        if step % config.eval_interval == 0:
            val_loss = validation_loss(forward, val_blocks, config, device, autocast)
            log.write(json.dumps({"step": step, "val_loss": val_loss, "val_ppl": math.exp(val_loss)}) + "\n")
        log.flush()
        if step % config.checkpoint_interval == 0:
            save_checkpoint()
        if config.max_tokens and tokens >= config.max_tokens:
            stop_reason = "max_tokens"
            break
        if config.max_seconds and elapsed >= config.max_seconds:
            stop_reason = "max_seconds"
            break
    bar.close()
    loop_seconds = time.perf_counter() - start
    if val_loss is None or step % config.eval_interval != 0:
        val_loss = validation_loss(forward, val_blocks, config, device, autocast)
        log.write(json.dumps({"step": step, "val_loss": val_loss, "val_ppl": math.exp(val_loss)}) + "\n")
    log.close()
    save_checkpoint()
    _save_model_dir(model, out)
    plot_loss_curve(out / "log.jsonl", out / "loss_curve.png")
    write_metrics(
        out,
        {
            "stage": "train",
            "input_dir": str(dataset_dir.resolve()),
            "config": dataclasses.asdict(config),
            "steps": step,
            "stop_reason": stop_reason,
            "tokens_seen": tokens,
            "tokens_per_second": tokens_per_step * (step - first_step) / loop_seconds if loop_seconds else None,
            "wall_seconds": elapsed_before + time.perf_counter() - start,
            "final_train_loss": train_loss,
            "final_train_ppl": math.exp(train_loss) if math.isfinite(train_loss) else None,
            "final_val_loss": val_loss,
            "final_val_ppl": math.exp(val_loss),
            "parameters": sum(p.numel() for p in model.parameters()),
            "device": device,
            "precision": "bf16" if bf16 else "fp32",
        },
    )
    return out


def _save_model_dir(model, out: Path) -> None:
    """The HF model directory the export stage reads: weights, config, tokenizer, generation defaults."""
    from transformers import GenerationConfig

    model.save_pretrained(out)
    save_tokenizer(out)
    GenerationConfig(
        bos_token_id=END_OF_TEXT_ID, eos_token_id=END_OF_TEXT_ID, pad_token_id=END_OF_TEXT_ID,
        do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=40,
    ).save_pretrained(out)
