"""The train stage's configuration (one commented dataclass) and its named presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    # --- where ---
    dataset_dir: str = "runs/dataset"  # a dataset stage output; its packed/ train and validation splits are used
    output_dir: str = "runs/train"  # gets the HF model directory, checkpoint.pt, log.jsonl, loss_curve.png
    overwrite: bool = False  # replace a finished run in output_dir
    resume: bool = False  # continue from output_dir/checkpoint.pt (model, optimizer, step, RNG states)

    # --- model ---
    init: str = "scratch"  # "scratch": random weights; "pretrained": start from `base`
    base: str = "distilgpt2"  # Hub name or local path for init="pretrained" (the Colab route)
    n_layer: int = 6  # scratch only, as the rest of this block; defaults are DistilGPT2's shape
    n_embd: int = 768
    n_head: int = 12
    n_positions: int = 1024  # the model's context length
    dropout: float = 0.1  # residual, embedding and attention dropout

    # --- data ---
    block_size: int = 1024  # tokens per training sequence; a random window of a packed block if shorter
    batch_size: int = 8  # sequences per micro-batch
    grad_accum: int = 4  # micro-batches per optimizer step; tokens/step = batch_size * block_size * grad_accum

    # --- optimizer: AdamW, linear warmup then cosine decay to min_lr_ratio * learning_rate ---
    learning_rate: float = 6e-4  # peak
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    lr_decay_steps: int | None = None  # cosine horizon in steps; None = max_steps
    weight_decay: float = 0.1  # on 2-D weights only (matrices, embeddings), never biases or LayerNorm
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping

    # --- budget: training stops at whichever limit comes first (0 = no limit, except max_steps) ---
    max_steps: int = 1000
    max_tokens: int = 0
    max_seconds: float = 0.0

    # --- bookkeeping ---
    eval_interval: int = 100  # steps between validation perplexity measurements
    eval_batches: int = 20  # validation micro-batches per measurement (always the same, first ones)
    log_interval: int = 10  # steps between log.jsonl lines
    checkpoint_interval: int = 500  # steps between checkpoint.pt writes (also written at the end)
    seed: int = 1337

    # --- hardware ---
    device: str = "auto"  # "auto" (cuda if available), "cuda" or "cpu"
    precision: str = "auto"  # "auto" (bf16 autocast on a GPU, fp32 on CPU), "bf16" or "fp32"
    compile: bool = True  # torch.compile, used only on a GPU (compiling on CPU costs more than it saves)


PRESETS: dict[str, Config] = {
    # Seconds on a CPU; for tests and notebooks smoke runs.
    "tiny": Config(
        n_layer=2, n_embd=64, n_head=2, n_positions=128, dropout=0.0,
        block_size=64, batch_size=8, grad_accum=1,
        learning_rate=3e-3, warmup_steps=5, max_steps=30,
        eval_interval=10, eval_batches=2, log_interval=1, checkpoint_interval=10, compile=False,
    ),
    # An interim model on a 2-core CPU in about 25 minutes. Measured there: about 400-900
    # tokens/s (the 50257-way LM head dominates), so 600 steps of 2048 tokens fit the budget.
    "cpu-small": Config(
        n_layer=4, n_embd=256, n_head=4, n_positions=256, dropout=0.0,
        block_size=256, batch_size=8, grad_accum=1,
        learning_rate=2e-3, warmup_steps=30, max_steps=600, max_seconds=1500,
        eval_interval=100, eval_batches=5, log_interval=10, checkpoint_interval=100, compile=False,
    ),
    # The shipped model: one H100 in under 20 minutes. 32 x 1024 = 32K tokens per step;
    # 5200 steps is about 3 epochs of 57M tokens, and max_seconds is the safety net.
    "distilgpt2-arxiv": Config(
        n_layer=6, n_embd=768, n_head=12, n_positions=1024, dropout=0.1,
        block_size=1024, batch_size=32, grad_accum=1,
        learning_rate=1.2e-3, min_lr_ratio=0.1, warmup_steps=300, max_steps=5200, max_seconds=1100,
        eval_interval=250, eval_batches=20, log_interval=10, checkpoint_interval=1000,
        precision="bf16", compile=True,
    ),
}
