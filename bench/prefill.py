"""Prefill benchmark: time to first token with and without the last-position slice, in one process.

    .venv/bin/python -m bench.prefill        # uses artifacts/bench-model from bench/decode.py (builds it if absent)

The engine on the bench model (DistilGPT2's shape, seeded random weights; int8 as shipped and
fp32), the same session timed both ways, interleaved: "last position" feeds the graph's
`logits_start` input so that the LM head runs on the prompt's last position only (issue 12);
"every position" leaves it at its default, as a graph exported before it would run. Time to first
token is measured through Engine.stream (tokenization, prefill, sampling, detokenization), best and
median of the repeats, for prompts of 64 and 400 tokens.

A second table times a person typing on: the same prompts right after a request for the same
text without its last TYPED_WORDS words, on an engine with a prefix cache (which then prefills
only the new tokens: backend/engine/prefix_cache.py) and on one without (the whole prompt).
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub, which reads it once

from backend.engine import Engine, GenerationParams, TokenEvent
from backend.engine.prefix_cache import PrefixCache
from bench.bench_model import PROMPT_TOKENS, build_models, prompts

REPEATS = 9
TYPED_WORDS = 3  # words typed since the previous request


def time_to_first_token(engine: Engine, text: str, params: GenerationParams) -> float:
    start = time.perf_counter()
    for item in engine.stream(text, params):
        if isinstance(item, TokenEvent):
            return (time.perf_counter() - start) * 1000
    raise RuntimeError("no token")


def typing_on(path, texts: dict[int, str], params: GenerationParams) -> dict[tuple[int, str], list[float]]:
    """Time to first token of each prompt after a request for it without its last words, with and
    without a prefix cache (int8, unbatched engines: one request at a time, as in the table above)."""
    whole = Engine.load(path, intra_op_threads=1, batching="off")
    cached = Engine.load(path, intra_op_threads=1, batching="off", prefix_cache_mb=64)
    assert cached.prefixes is not None, f"{path}: splitting a prompt changes its logits, so no prefix cache"
    times = {(n, mode): [] for n in texts for mode in ("whole prompt", "new tokens only")}
    for _ in range(REPEATS + 1):  # the first round warms up and is dropped
        for n, text in texts.items():
            before = text.rsplit(" ", TYPED_WORDS)[0]
            whole.generate(before, params)
            times[n, "whole prompt"].append(time_to_first_token(whole, text, params))
            # A fresh cache that will know only `before` (batching off: no scheduler holds the old one).
            cached.prefixes = PrefixCache(cached.prefixes.max_bytes)
            cached.generate(before, params)
            times[n, "new tokens only"].append(time_to_first_token(cached, text, params))
    return times


def main() -> None:
    import torch

    torch.set_num_threads(1)
    paths = build_models()
    engines = {name: Engine.load(paths[name], intra_op_threads=1) for name in ("int8", "fp32")}
    from tokenizers import Tokenizer

    texts = prompts(Tokenizer.from_file(str(paths["int8"] / "tokenizer.json")))
    params = GenerationParams(max_new_tokens=1, temperature=0.0)
    modes = {"every position": False, "last position": True}
    times = {(name, n, mode): [] for name in engines for n in PROMPT_TOKENS for mode in modes}
    for name, engine in engines.items():
        assert engine.session.has_logits_start, (
            f"{paths[name]} has no logits_start input: rebuild artifacts/bench-model"
        )
    for _ in range(REPEATS + 1):  # the first round warms up and is dropped
        for (name, n, mode), samples in times.items():
            session = engines[name].session
            session.has_logits_start = modes[mode]  # off: the graph computes every position, as an old export
            samples.append(time_to_first_token(engines[name], texts[n], params))
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"\n### Time to first token, batch 1, 1 intra-op thread, {REPEATS} interleaved repeats\n")
    print("| model | prompt tokens | LM head on | best (ms) | median (ms) | best / every position's best |")
    print("|---|---:|---|---:|---:|---:|")
    for (name, n, mode), samples in times.items():
        samples = samples[1:]
        everything = min(times[name, n, "every position"][1:])
        print(
            f"| {name} | {n} | {mode} | {min(samples):.1f} | {statistics.median(samples):.1f} "
            f"| {min(samples) / everything:.2f}x |"
        )
    typed = typing_on(paths["int8"], texts, params)
    print(f"\n### Typing on: the prompt right after a request without its last {TYPED_WORDS} words, int8\n")
    print("| prompt tokens | prefilled | best (ms) | median (ms) | best / whole prompt's best |")
    print("|---:|---|---:|---:|---:|")
    for (n, mode), samples in typed.items():
        samples = samples[1:]
        whole = min(typed[n, "whole prompt"][1:])
        print(f"| {n} | {mode} | {min(samples):.1f} | {statistics.median(samples):.1f} | {min(samples) / whole:.2f}x |")


if __name__ == "__main__":
    main()
