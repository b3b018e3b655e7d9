"""Where a batched decode step's time goes, and how much batching can gain on this machine.

    .venv/bin/python -m bench.step_cost                  # the bench model (bench/bench_model.py), 4 rows
    .venv/bin/python -m bench.step_cost --model models/arxiv-gpt2-6x512-bpe16k/model.onnx

A worker serving one request at a time makes one token per c1 + s (a decode step over one row,
then sampling that row); batching B rows it makes B tokens per cB + B * s. With W workers on W
cores, each batching B of C = B * W clients, batching therefore gives
    gain = B * (c1 + s) / (cB + B * s)
times the tokens/s of one-at-a-time serving (issue 12 asks 3x at 8 clients on 2 workers: B = 4),
and each of a batched request's tokens waits
    slowdown = (cB + B * s) / (c1 + s)
times as long as alone (issue 12 asks a p50 latency within 1.5x a lone client's).
This measures c1, cB and s in one process, interleaved (the engine's batch cache; 8-token
prompts and 64 new tokens, as bench.batching's requests; the sampler with the served defaults
plus the log-probability the engine reports), and onnxruntime's profile of the same steps by
operator type. It prints what each operator adds per
extra row and both ratios with those additions taken away, largest first, so that one can read
what would have to go for them to reach their targets. The wall times are measured without the
profiler; its columns include the profiler's own cost, so only their shares are applied to them.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backend.engine.batch import batch_cache
from backend.engine.sampling import log_softmax_at, sample_token
from backend.engine.schema import GenerationParams
from backend.engine.session import DecoderSession, KVCache
from bench.sampler import time_per_call

PROMPT_TOKENS = 8
STEPS = 64  # decode steps per measurement, as bench.batching's requests: positions 8 to 72
ROUNDS = 7  # measurements of each batch size, interleaved; the best median counts
ROWS_BOUNDS = (2, 16)


def default_model() -> Path:
    """The bench model quantized as the shipped one is, built into artifacts/ if absent."""
    from bench.bench_model import build_models

    return build_models()["int8"] / "model.onnx"


def decode_steps(session: DecoderSession, cache: KVCache, rows: int, steps: int = STEPS) -> tuple[float, np.ndarray]:
    """(median ms, last logits [rows, vocab]) of `steps` decode steps over `rows` copies of
    `cache`, in the engine's batch cache for this graph (bench/cache_layout.py times it too)."""
    batch = batch_cache(session)
    for _ in range(rows):
        batch.join(cache)
    tokens = np.full(rows, 13, dtype=np.int64)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        logits = batch.decode(session, tokens)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), logits


def sampling_ms(logits: np.ndarray) -> float:
    """ms to sample one row and take its log-probability, with the served defaults."""
    params, rng, seen = GenerationParams(), np.random.default_rng(0), np.arange(PROMPT_TOKENS)

    def sample() -> float:
        token = sample_token(
            logits,
            rng,
            seen_ids=seen,
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            repetition_penalty=params.repetition_penalty,
        )
        return log_softmax_at(logits, token)

    return time_per_call(sample, calls=20, blocks=5)


def ms_by_operator(profile: Path) -> dict[str, float]:
    """onnxruntime profile -> ms each operator type takes in a run: the median over the runs, so
    that a run the host slowed down does not move the small differences this program reads."""
    events = json.loads(profile.read_text())
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    spent: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * len(starts))  # op -> ms in each run
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            run = bisect.bisect_right(starts, event["ts"]) - 1  # the run that holds this node's time
            spent[event["args"]["op_name"]][run] += event["dur"] / 1000  # microseconds -> ms
    return {op: statistics.median(per_run) for op, per_run in spent.items()}


def measure(model: Path, rows: int) -> dict:
    """c1, cB (wall), s, and both steps' ms by operator (profiled), interleaved over ROUNDS."""
    session = DecoderSession(model)
    prompt = [int(t) for t in np.random.default_rng(0).integers(0, 256, PROMPT_TOKENS)]  # ids any vocabulary has
    _, cache = session.prefill(prompt)
    wall: dict[int, list[float]] = {1: [], rows: []}
    with tempfile.TemporaryDirectory() as folder:
        # Profiled sessions run decode steps only: the prefill above is not in their profiles.
        profiled = {n: DecoderSession(model, profile_prefix=str(Path(folder) / f"rows{n}")) for n in wall}
        for _ in range(ROUNDS):
            for n in wall:
                median, logits = decode_steps(session, cache, n)
                wall[n].append(median)
                decode_steps(profiled[n], cache, n)
        by_op = {n: ms_by_operator(Path(profiled[n].session.end_profiling())) for n in wall}
    return {"c1": min(wall[1]), "cb": min(wall[rows]), "s": sampling_ms(logits[0]), "by_op": by_op}


def gain(c1: float, cb: float, s: float, rows: int) -> float:
    """Tokens/s of batching `rows` per worker against one request at a time per worker."""
    return rows * (c1 + s) / (cb + rows * s)


def slowdown(c1: float, cb: float, s: float, rows: int) -> float:
    """How much longer each token of a batched request takes than the same token alone."""
    return (cb + rows * s) / (c1 + s)


def most_added_per_row(
    c1: float, s: float, rows: int, *, gain_at_least: float = 0, slowdown_at_most: float = 0
) -> float:
    """The most a row may add to the step (ms) for gain() to reach `gain_at_least`, or for
    slowdown() to stay within `slowdown_at_most` (give one)."""
    longest = rows * (c1 + s) / gain_at_least if gain_at_least else slowdown_at_most * (c1 + s)  # cB + rows * s
    return (longest - c1 - rows * s) / (rows - 1)


def report(model: Path, rows: int, target: float, latency: float, m: dict) -> str:
    c1, cb, s, one, many = m["c1"], m["cb"], m["s"], m["by_op"][1], m["by_op"][rows]
    # What the extra rows add, apportioned by the profile: the profiler inflates every node by
    # about the same few microseconds, so its shares are kept and its absolute times are not.
    added = {op: many[op] - one.get(op, 0.0) for op in many}
    share = {op: extra / sum(added.values()) for op, extra in added.items()}
    largest = sorted(share, key=share.get, reverse=True)
    per_row = (cb - c1) / (rows - 1)  # wall ms a row adds to the step
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, model {model.parent.name}/{model.name}, 1 onnxruntime thread\n",
        f"| measure | 1 row | {rows} rows | added per extra row | share of what the rows add |",
        "|---|---:|---:|---:|---:|",
        f"| decode step, wall (ms) | {c1:.2f} | {cb:.2f} | {per_row:.2f} | |",
        f"| sampling + log-probability, served defaults (ms) | {s:.2f} | {rows * s:.2f} | {s:.2f} | |",
        f"| decode step, profiled: all kernels (ms) | {sum(one.values()):.2f} | {sum(many.values()):.2f} "
        f"| {sum(added.values()) / (rows - 1):.2f} | 100% |",
    ]
    for op in largest[:8]:
        lines.append(
            f"| {op} (profiled, ms) | {one.get(op, 0.0):.2f} | {many[op]:.2f} | {added[op] / (rows - 1):.2f} "
            f"| {share[op]:.0%} |"
        )
    lines += [
        "",
        f"| {rows} rows per worker against one at a time | tokens/s gain | per-token latency |",
        "|---|---:|---:|",
        f"| as measured | {gain(c1, cb, s, rows):.2f}x | {slowdown(c1, cb, s, rows):.2f}x |",
    ]
    step = cb
    for op in largest[:3]:
        step -= share[op] * (cb - c1)
        lines.append(
            f"| ... and without what {op} adds | {gain(c1, step, s, rows):.2f}x | {slowdown(c1, step, s, rows):.2f}x |"
        )
    lines.append(f"| ... and sampling free | {gain(c1, step, 0.0, rows):.2f}x | {slowdown(c1, step, 0.0, rows):.2f}x |")
    lines.append(
        f"\nA row adds {per_row:.2f} ms to the step, plus {s:.2f} ms of sampling. "
        f"For a {target:g}x gain it may add at most {most_added_per_row(c1, s, rows, gain_at_least=target):.2f} ms; "
        f"for a request's tokens at most {latency:g}x as slow as alone, "
        f"{most_added_per_row(c1, s, rows, slowdown_at_most=latency):.2f} ms."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.step_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a model.onnx (default: the int8 bench model, built if absent)")
    parser.add_argument("--rows", type=int, default=4, help="rows per batched step, 2-16 (default: %(default)s)")
    parser.add_argument("--target", type=float, default=3.0, help="the gain to solve for (default: %(default)s)")
    parser.add_argument(
        "--latency", type=float, default=1.5, help="the per-token slowdown to solve for (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    low, high = ROWS_BOUNDS
    if not low <= args.rows <= high:
        print(f"step_cost: --rows must be between {low} and {high}, got {args.rows}", file=sys.stderr)
        return 2
    for name in ("target", "latency"):
        if not getattr(args, name) > 1:
            print(f"step_cost: --{name} must be above 1, got {getattr(args, name):g}", file=sys.stderr)
            return 2
    model = args.model or default_model()
    if not model.is_file():
        print(f"step_cost: --model {model} is not a file", file=sys.stderr)
        return 2
    print(report(model, args.rows, args.target, args.latency, measure(model, args.rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
