"""Sampler benchmark, part of bench/decode.py's output: the engine's sampler alone against a
textbook full-sort sampler, per token, on the same logits side by side.
"""

from __future__ import annotations

import time

import numpy as np

from backend.engine.sampling import log_softmax_at, sample_token


def full_sort_sampler(logits: np.ndarray, rng: np.random.Generator, temperature: float, top_p: float) -> int:
    """The textbook sampler the engine's replaces: softmax, full argsort, cumsum, cut, choice."""
    scaled = logits.astype(np.float64) / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    order = np.argsort(-probs)
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
    return int(rng.choice(keep, p=probs[keep] / probs[keep].sum()))


def time_per_call(function, calls: int = 100, blocks: int = 7) -> float:
    """ms per call: the fastest of several blocks (as timeit does), so that bursts of load from
    other processes on this shared machine do not land in one side of the comparison only."""
    best = float("inf")
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) * 1000 / calls)
    return best


def sampler_rows(model_logits: np.ndarray) -> list[tuple[str, float, float]]:
    """(logits kind, engine sampler ms, full-sort sampler ms) per token, same logits side by side."""
    rng = np.random.default_rng(0)
    zipf = -1.1 * np.log(np.arange(1, 50258, dtype=np.float32))  # LM-like: a few likely tokens, a long tail
    rng.shuffle(zipf)
    return [
        (name, *_time_both_samplers(logits, rng))
        for name, logits in [
            ("Zipf-shaped (like a trained LM)", zipf * 1.5),
            ("bench model's (random weights: flat)", model_logits),
        ]
    ]


def _time_both_samplers(logits: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """(engine sampler ms, full-sort sampler ms) per token on these logits."""
    seen = np.arange(100)

    def ours():
        token = sample_token(logits, rng, seen_ids=seen, temperature=0.8, top_k=0, top_p=0.95, repetition_penalty=1.0)
        return log_softmax_at(logits, token)  # the engine reports a logprob with every token

    def textbook():
        return full_sort_sampler(logits, rng, 0.8, 0.95)

    return time_per_call(ours), time_per_call(textbook, calls=20)


def sampler_table(model_logits: np.ndarray) -> None:
    print("\n### Sampler alone, per token: temperature 0.8, top_p 0.95 (the engine's includes the logprob)\n")
    print("| logits | engine sampler (ms) | full-sort sampler (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, ours, textbook in sampler_rows(model_logits):
        print(f"| {name} | {ours:.3f} | {textbook:.3f} | {textbook / ours:.1f}x |")
