"""Train stage: causal-LM training of a GPT-2-architecture model on the packed dataset.

A plain nanoGPT-style loop around transformers' GPT2LMHeadModel (so export works unchanged):
random windows of packed blocks from a seeded generator, AdamW or Muon + AdamW, a cosine or
warmup-stable-decay schedule (model_creation/training/optimizers.py), gradient accumulation and clipping,
bf16 autocast and torch.compile on a GPU or on a CPU with bf16 units (AMX), validation loss
every `eval_interval` steps, and a budget in steps, tokens or seconds per invocation. This module sets
the run up and writes the model directory; the loop itself is model_creation/training/loop.py.

Runs resume where they stopped (`resume`): checkpoint.pt has the weights, optimizer and RNG
states (model_creation/training/checkpoint.py), so a resumed run takes the very batches an
uninterrupted one would have; SIGTERM or Ctrl+C ends the current step, then checkpoints. A WSD
run is left stable (constant rate) and a shipping candidate forks a short decay from its latest
checkpoint into another directory (`decay_from`), leaving the stable run free to go on.
Writes a HF model directory plus log.jsonl, loss_curve.png, checkpoint.pt and metrics.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from backend.generation_contract import default as contract_default
from model_creation.stage_dir import METRICS_FILE, StageError, prepare_output_dir, require_finished, write_metrics
from model_creation.tokenizer import ASSETS_DIR, END_OF_TEXT_ID, end_of_text_id, load_tokenizer, save_tokenizer
from model_creation.training.checkpoint import CHECKPOINT_FILE, LOG_FILE, copy_log, load_checkpoint, truncate_log
from model_creation.training.config import PRESETS, Config
from model_creation.training.data import gpt2_tokens_per_model_token, load_split, sample_batch
from model_creation.training.loop import LoopEnd, Training, train_loop
from model_creation.training.loss_curve import plot_loss_curve
from model_creation.training.optimizers import OPTIMIZERS, SCHEDULES, learning_rate, make_optimizers
from model_creation.training.precision import Hardware, resolve_hardware

__all__ = ["Config", "PRESETS", "run", "learning_rate", "build_model", "lm_loss", "load_split", "sample_batch"]


def build_model(config: Config, vocab_size: int = 50257, end_of_text: int = END_OF_TEXT_ID):
    """A scratch GPT2LMHeadModel of the configured shape and vocabulary, or the pretrained base."""
    from transformers import GPT2Config, GPT2LMHeadModel

    dropout = dict(resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout)
    if config.init == "pretrained":
        return GPT2LMHeadModel.from_pretrained(config.base, attn_implementation="sdpa", **dropout)
    if config.init != "scratch":
        raise StageError(f"init must be 'scratch' or 'pretrained', got {config.init!r}")
    gpt2 = GPT2Config.from_json_file(ASSETS_DIR / "distilgpt2-config.json")
    for name in ("n_layer", "n_embd", "n_head", "n_positions"):
        setattr(gpt2, name, getattr(config, name))
    gpt2.n_ctx, gpt2.vocab_size = config.n_positions, vocab_size
    gpt2.bos_token_id = gpt2.eos_token_id = end_of_text
    for name, value in dropout.items():
        setattr(gpt2, name, value)
    gpt2._attn_implementation = "sdpa"  # PyTorch's fused attention (flash kernels on CPU and GPU)
    return GPT2LMHeadModel(gpt2)


def lm_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over x [batch, seq]: `model(x, labels=x).loss`, but the LM head
    runs only on the positions that predict something, and in the autocast dtype (bf16), and
    only the cross-entropy is upcast to fp32."""
    hidden = model.transformer(x).last_hidden_state[:, :-1]  # [batch, seq-1, embd]
    logits = model.lm_head(hidden)  # [batch, seq-1, vocab]
    return F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())


def _validate(config: Config) -> None:
    if config.block_size > config.n_positions and config.init == "scratch":
        raise StageError(f"block_size must be <= n_positions ({config.n_positions}), got {config.block_size}")
    choices = (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES))
    for name, allowed in choices:
        if getattr(config, name) not in allowed:
            raise StageError(f"{name} must be one of {list(allowed)}, got {getattr(config, name)!r}")
    for name in ("batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches", "log_interval"):
        if getattr(config, name) < 1:
            raise StageError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.decay_from and (config.schedule != "wsd" or config.decay_steps < 1):
        raise StageError("decay_from needs schedule='wsd' and decay_steps >= 1")
    if config.decay_from and Path(config.decay_from).resolve() == Path(config.output_dir).resolve():
        raise StageError("decay_from must be another directory than output_dir: the stable run stays resumable")


def _prepare(config: Config) -> Path:
    out = Path(config.output_dir)
    if not config.resume:
        return prepare_output_dir(out, config.overwrite)
    if not (out / CHECKPOINT_FILE).exists():
        raise StageError(f"resume asked for but {out / CHECKPOINT_FILE} does not exist")
    (out / METRICS_FILE).unlink(missing_ok=True)  # the run is unfinished again until it ends
    return out


def _starting_state(config: Config, out: Path, device: str) -> dict | None:
    """The checkpoint this invocation starts from: its own (resume), the stable run's (a new
    decay fork, whose log then starts with the stable run's history), or none."""
    if config.resume:
        checkpoint = load_checkpoint(out, device)
        truncate_log(out / LOG_FILE, checkpoint["step"])
        return checkpoint
    if config.decay_from:
        parent = Path(config.decay_from)
        if not (parent / CHECKPOINT_FILE).exists():
            raise StageError(f"decay_from: {parent / CHECKPOINT_FILE} does not exist")
        checkpoint = load_checkpoint(parent, device)
        copy_log(parent / LOG_FILE, out / LOG_FILE, checkpoint["step"])
        return {**checkpoint, "decay_end": checkpoint["step"] + config.decay_steps}
    return None


def _load_data(config: Config, dataset_dir: Path):
    """(train blocks, validation blocks, tokenizer), checked against the config."""
    train_blocks, val_blocks = load_split(dataset_dir, "train"), load_split(dataset_dir, "validation")
    if train_blocks.shape[1] < config.block_size:
        raise StageError(
            f"block_size must be <= the dataset's block length {train_blocks.shape[1]}, got {config.block_size}"
        )
    tokenizer = load_tokenizer(dataset_dir / "tokenizer")
    if config.init == "pretrained" and len(tokenizer) != 50257:
        raise StageError("init='pretrained' needs a dataset made with GPT-2's tokenizer (tokenizer='gpt2')")
    return train_blocks, val_blocks, tokenizer


def _start_training(config: Config, out: Path, hardware: Hardware, generator: torch.Generator, tokenizer) -> Training:
    """The model, optimizers and loss scaler: new (scratch or pretrained) or from a checkpoint."""
    device = hardware.device
    model = build_model(config, len(tokenizer), end_of_text_id(tokenizer)).to(device)
    optimizers = make_optimizers(model, config, device)
    training = Training(config, out, hardware, model, optimizers, hardware.grad_scaler(), generator)
    state = _starting_state(config, out, device)
    if state is not None:
        training.resume(state)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    training.loss_fn = torch.compile(lm_loss) if config.compile else lm_loss
    return training


def run(config: Config) -> Path:
    _validate(config)
    dataset_dir = require_finished(Path(config.dataset_dir), "dataset")
    hardware = resolve_hardware(config.device, config.precision)
    out = _prepare(config)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_blocks, val_blocks, tokenizer = _load_data(config, dataset_dir)
    training = _start_training(config, out, hardware, generator, tokenizer)
    gpt2_ratio = gpt2_tokens_per_model_token(dataset_dir, "validation", tokenizer)

    log = (out / LOG_FILE).open("a")
    start_event = {
        "step": training.step,
        "tokens": training.tokens,
        "elapsed": training.elapsed_before,
        "event": "start",
        "time": time.time(),
        "precision": hardware.precision,
        "compile": config.compile,
        "decay_end": training.decay_end,
    }
    log.write(json.dumps(start_event) + "\n")
    end = train_loop(training, log, train_blocks, val_blocks, gpt2_ratio)

    _save_model_dir(training.model, out, dataset_dir / "tokenizer", end_of_text_id(tokenizer))
    plot_loss_curve(out / LOG_FILE, out / "loss_curve.png")
    write_metrics(out, _metrics(config, training, end, dataset_dir, gpt2_ratio, len(tokenizer)))
    return out


def _metrics(config: Config, training: Training, end: LoopEnd, dataset_dir: Path, gpt2_ratio: float, vocab: int):
    """metrics.json: the run's configuration, progress, speed and final losses."""
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    steps_run = training.step - end.first_step
    return {
        "stage": "train",
        "input_dir": str(dataset_dir.resolve()),
        "config": dataclasses.asdict(config),
        "decay_from": str(Path(config.decay_from).resolve()) if config.decay_from else None,
        "decay_end": training.decay_end,
        "steps": training.step,
        "stop_reason": end.stop_reason,
        "tokens_seen": training.tokens,
        "tokens_per_second": tokens_per_step * steps_run / end.loop_seconds if end.loop_seconds else None,
        "wall_seconds": training.elapsed(),
        "final_train_loss": end.train_loss,
        "final_train_ppl": math.exp(end.train_loss) if math.isfinite(end.train_loss) else None,
        "final_val_loss": end.val_loss,
        "final_val_ppl": math.exp(end.val_loss),
        "final_val_ppl_per_gpt2_token": math.exp(end.val_loss / gpt2_ratio),
        "parameters": sum(p.numel() for p in training.model.parameters()),
        "vocab_size": vocab,
        "device": training.hardware.device,
        "precision": training.hardware.precision,
    }


def generation_config(end_of_text: int):
    """The generation_config.json a trained model ships: the generation contract's sampling defaults
    (backend/generation_contract.py), which the server reads back as the model's defaults."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=end_of_text,
        eos_token_id=end_of_text,
        pad_token_id=end_of_text,
        do_sample=True,
        temperature=contract_default("temperature"),
        top_p=contract_default("top_p"),
        max_new_tokens=int(contract_default("max_new_tokens")),
    )


def _save_model_dir(model, out: Path, tokenizer_dir: Path, end_of_text: int) -> None:
    """The HF model directory the export stage reads: weights, config, tokenizer, generation defaults."""
    model.save_pretrained(out)
    save_tokenizer(out, load_tokenizer(tokenizer_dir))
    generation_config(end_of_text).save_pretrained(out)
