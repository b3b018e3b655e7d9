"""The train stage's configuration (one commented dataclass) and its named presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    # --- where ---
    dataset_dir: str = "runs/dataset"  # a dataset stage output; its packed/ train and validation splits are used
    output_dir: str = "runs/train"  # gets the HF model directory, checkpoint.pt, log.jsonl, loss_curve.png
    overwrite: bool = False  # replace a finished run in output_dir
    resume: bool = False  # continue from output_dir/checkpoint.pt (model, optimizer, step, RNG states, data order)

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

    # --- optimizer and schedule (model_creation/training/optimizers.py) ---
    optimizer: str = "adamw"  # "adamw", or "muon": Muon for the blocks' 2-D matrices, AdamW for the rest
    learning_rate: float = 6e-4  # peak (Muon's step is scaled to AdamW's RMS, so one rate serves both)
    min_lr_ratio: float = 0.1  # the floor the decay ends at, as a fraction of the peak
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine": decay to the floor at lr_decay_steps; "wsd": warmup-stable-decay
    lr_decay_steps: int | None = None  # cosine horizon in steps; None = max_steps
    decay_steps: int = 0  # wsd: linear decay over the last decay_steps before max_steps; 0 = a stable run
    decay_from: str = ""  # wsd: fork a decay of decay_steps from this stable run's latest checkpoint
    weight_decay: float = 0.1  # on 2-D weights only (matrices, embeddings), never biases or LayerNorm
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping

    # --- budget: training stops at whichever limit comes first (0 = no limit, except max_steps) ---
    max_steps: int = 1000  # in all, across resumed invocations
    max_tokens: int = 0  # in all, across resumed invocations
    max_seconds: float = 0.0  # for this invocation: a resumed run gets this much more time

    # --- bookkeeping ---
    eval_interval: int = 100  # steps between validation perplexity measurements
    eval_batches: int = 20  # validation micro-batches per measurement (always the same, first ones)
    log_interval: int = 10  # steps between log.jsonl lines
    checkpoint_interval: int = 500  # steps between checkpoint.pt writes (also at the end, and on SIGTERM/SIGINT)
    seed: int = 1337

    # --- hardware ---
    device: str = "auto"  # "auto" (cuda if available), "cuda" or "cpu"
    precision: str = "auto"  # "auto" (bf16 autocast where the GPU or CPU has bf16 units), "bf16" or "fp32"
    compile: bool = True  # torch.compile the forward and loss (CPU too: gcc builds the kernels)


PRESETS: dict[str, Config] = {
    # Seconds on a CPU; for tests and notebooks smoke runs.
    "tiny": Config(
        n_layer=2,
        n_embd=64,
        n_head=2,
        n_positions=128,
        dropout=0.0,
        block_size=64,
        batch_size=8,
        grad_accum=1,
        learning_rate=3e-3,
        warmup_steps=5,
        max_steps=30,
        eval_interval=10,
        eval_batches=2,
        log_interval=1,
        checkpoint_interval=10,
        precision="fp32",
        compile=False,  # exact and quick to start: tests compare weights bit for bit
    ),
    # An interim model on a 2-core CPU in about 25 minutes. Measured there: about 400-900
    # tokens/s (the 50257-way LM head dominates), so 600 steps of 2048 tokens fit the budget.
    "cpu-small": Config(
        n_layer=4,
        n_embd=256,
        n_head=4,
        n_positions=256,
        dropout=0.0,
        block_size=256,
        batch_size=8,
        grad_accum=1,
        learning_rate=2e-3,
        warmup_steps=30,
        max_steps=600,
        max_seconds=1500,
        eval_interval=100,
        eval_batches=5,
        log_interval=10,
        checkpoint_interval=100,
        precision="fp32",
        compile=False,
    ),
    # Many hours on a 2-core CPU with bf16 units (AMX), in stretches: a stable WSD run resumed with
    # `--resume --max-seconds N` as often as time allows; a shipping candidate forks a decay
    # (`--decay-from <this run> --decay-steps N`). Needs a dataset with the arXiv BPE
    # (`dataset --tokenizer bpe`): the 50,257-way head would cost half of every step.
    # Shape, vocabulary, optimizer, rate and batch come from equal-wall-clock trials (docs/training.md).
    "cpu": Config(
        n_layer=6,
        n_embd=512,
        n_head=8,
        n_positions=256,
        dropout=0.0,
        block_size=256,
        batch_size=16,
        grad_accum=2,
        optimizer="muon",
        learning_rate=2e-3,
        warmup_steps=100,
        schedule="wsd",
        decay_steps=0,
        max_steps=10_000_000,
        max_seconds=3600,
        eval_interval=200,
        eval_batches=20,
        log_interval=10,
        checkpoint_interval=100,
        precision="bf16",
        compile=False,  # compiled steps measured slower here (bench/train_speed.py)
    ),
    # Fine-tuning pretrained DistilGPT2 (82M parameters, GPT-2's tokenizer) on the ~54M training
    # tokens of the abstracts: the Colab route, on one T4 or better (fp16 with loss scaling where
    # bf16 is missing). Where the numbers come from:
    # - 8 x 1024 tokens a micro-batch fits a 16 GB T4 in fp16 with room to spare; 4 accumulation
    #   steps make 32K tokens a step, the batch of the from-scratch GPU recipe.
    # - 1700 steps x 32K = about one epoch of the training split: fine-tuning a pretrained model
    #   needs far fewer tokens than training it, and a second epoch risks memorising abstracts.
    #   DistilGPT2 does ~6 x 82M FLOPs a token, ~2.7e16 for the epoch: under an hour on a T4
    #   at a quarter of its 65 TFLOPS fp16 peak, well within a free Colab session.
    # - Peak rate 1e-4 with 100 warmup steps and cosine decay to a tenth: transformers' causal-LM
    #   fine-tuning example uses 5e-5 at a quarter of this batch; the scratch recipe's 1.2e-3
    #   would wreck the pretrained weights. Weight decay 0.01 and dropout 0.1 as in GPT-2's own
    #   fine-tuning practice.
    # - A checkpoint every 100 steps (a few minutes) on Drive: a disconnect loses little.
    "distilgpt2-finetune": Config(
        init="pretrained",
        base="distilgpt2",
        n_positions=1024,
        dropout=0.1,
        block_size=1024,
        batch_size=8,
        grad_accum=4,
        learning_rate=1e-4,
        min_lr_ratio=0.1,
        warmup_steps=100,
        weight_decay=0.01,
        max_steps=1700,
        eval_interval=100,
        eval_batches=20,
        log_interval=10,
        checkpoint_interval=100,
        precision="auto",
        compile=True,
    ),
    # The shipped model: one H100 in under 20 minutes. 32 x 1024 = 32K tokens per step;
    # 5200 steps is about 3 epochs of 57M tokens, and max_seconds is the safety net.
    "distilgpt2-arxiv": Config(
        n_layer=6,
        n_embd=768,
        n_head=12,
        n_positions=1024,
        dropout=0.1,
        block_size=1024,
        batch_size=32,
        grad_accum=1,
        learning_rate=1.2e-3,
        min_lr_ratio=0.1,
        warmup_steps=300,
        max_steps=5200,
        max_seconds=1100,
        eval_interval=250,
        eval_batches=20,
        log_interval=10,
        checkpoint_interval=1000,
        precision="bf16",
        compile=True,
    ),
}
