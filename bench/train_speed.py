"""Training-speed benchmark: the train stage's fp32 path against its fast CPU path, in one run.

    .venv/bin/python -m bench.train_speed                       # the `cpu` preset's shape, ~5 min
    .venv/bin/python -m bench.train_speed --n-layer 4 --n-embd 256 --vocab 50257

Approaches, on the same shape, seed and random token batches:
  fp32           the interim recipe: fp32, `model(x, labels=x).loss`, no compile
  bf16           bf16 autocast (AMX tiles), the train stage's `lm_loss`
  bf16+compile   the same, under torch.compile (what the `cpu` preset runs)
Each approach runs in a child process of its own, so its peak resident memory is its own; the
children run one after another, round-robin over the approaches for --repeats rounds, and the
best and median tokens/s of the rounds are printed with the ratio to fp32. A training step is
forward + backward + AdamW step; warmup steps (and compilation) are excluded from the timing.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

APPROACHES = {"fp32": (False, False, False), "bf16": (True, True, False), "bf16+compile": (True, True, True)}


def measure(args: argparse.Namespace, approach: str) -> dict:
    """Tokens/s of one approach (runs in a child process)."""
    import torch

    from model_creation.train import build_model, lm_loss
    from model_creation.training.config import Config

    bf16, fast_loss, compiled = APPROACHES[approach]
    torch.manual_seed(0)
    config = Config(n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head, n_positions=args.context, dropout=0.0)
    model = build_model(config, vocab_size=args.vocab, end_of_text=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def loss_of(m, x):
        return lm_loss(m, x) if fast_loss else m(x, labels=x).loss

    loss_fn = torch.compile(loss_of) if compiled else loss_of
    batches = torch.randint(
        args.vocab, (args.warmup + args.steps, args.batch, args.context), generator=torch.Generator().manual_seed(1)
    )

    def step(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    warm_start = time.perf_counter()
    for x in batches[: args.warmup]:
        step(x)
    start = time.perf_counter()
    for x in batches[args.warmup :]:
        step(x)
    seconds = time.perf_counter() - start
    return {
        "approach": approach,
        "tokens_per_second": args.steps * args.batch * args.context / seconds,
        "warmup_seconds": start - warm_start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from model_creation.training.config import PRESETS

    cpu = PRESETS["cpu"]
    parser.add_argument("--n-layer", type=int, default=cpu.n_layer)
    parser.add_argument("--n-embd", type=int, default=cpu.n_embd)
    parser.add_argument("--n-head", type=int, default=cpu.n_head)
    parser.add_argument("--context", type=int, default=cpu.block_size)
    parser.add_argument("--batch", type=int, default=cpu.batch_size)
    parser.add_argument("--vocab", type=int, default=16384)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", choices=sorted(APPROACHES), help=argparse.SUPPRESS)  # the child's role
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.only:
        print(json.dumps(measure(args, args.only)))
        return
    own = [a for a in (argv if argv is not None else sys.argv[1:])]
    runs: dict[str, list[dict]] = {name: [] for name in APPROACHES}
    for _ in range(args.repeats):
        for name in APPROACHES:
            child = subprocess.run(
                [sys.executable, "-m", "bench.train_speed", *own, "--only", name],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[name].append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(
        f"shape: {args.n_layer} layers x {args.n_embd} wide, {args.n_head} heads, vocabulary {args.vocab}, "
        f"batch {args.batch} x {args.context} tokens; {args.steps} timed steps after {args.warmup}, "
        f"{args.repeats} rounds"
    )
    print(
        f"{'approach':<14} {'best tok/s':>11} {'median tok/s':>13} {'x fp32 (best)':>14} "
        f"{'peak RSS MB':>12} {'warmup s':>9}"
    )
    base = max(r["tokens_per_second"] for r in runs["fp32"])
    for name, results in runs.items():
        speeds = [r["tokens_per_second"] for r in results]
        print(
            f"{name:<14} {max(speeds):>11.0f} {statistics.median(speeds):>13.0f} {max(speeds) / base:>14.2f} "
            f"{max(r['peak_rss_mb'] for r in results):>12.0f} {min(r['warmup_seconds'] for r in results):>9.1f}"
        )


if __name__ == "__main__":
    main()
