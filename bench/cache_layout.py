"""Batched decode steps with the two KV cache layouts the engine knows, side by side in one process.

    .venv/bin/python -m bench.cache_layout      # builds artifacts/bench-model (bench/bench_model.py) if absent

The bench model (DistilGPT2's shape, seeded random weights, int8 with per-row activation scales)
is quantized twice from the same fp32 export, its attention fused as GroupQueryAttention (the
quantize stage's default: the batch's cache is written in place, backend/engine/slot_cache.py)
and as MultiHeadAttention (left-padded, a new cache copied out every step,
backend/engine/padded_cache.py). Each decodes batches of 1, 4 and 8 rows after prompts of 64
and 256 tokens, 32 steps per run, the layouts interleaved over the repeats; the table gives the
median step of the best run, per step and per row-token, and the ratio between the layouts.
"""

from __future__ import annotations

import os
import time

import numpy as np

from backend.engine.session import DecoderSession
from bench.bench_model import build_models, int8_dir, quantize_int8, shipped_activations, shipped_variant
from bench.step_cost import decode_steps

ROWS = (1, 4, 8)
PROMPTS = (64, 256)
STEPS = 32
REPEATS = 3


def layouts() -> dict[str, DecoderSession]:
    """layout name -> a session over the bench model fused for it (built once into artifacts/)."""
    paths = build_models()
    variant, activations = shipped_variant(), shipped_activations()
    sessions = {}
    for attention, name in (("group-query", "in place"), ("multi-head", "left-padded")):
        out = int8_dir(variant, activations, attention)
        if not (out / "model.onnx").exists():
            quantize_int8(paths["fp32"], out, variant, activations, attention)
        sessions[name] = DecoderSession(out / "model.onnx")
    return sessions


def median_step_ms(session: DecoderSession, rows: int, prompt: list[int]) -> float:
    """Median of STEPS decode steps over `rows` rows that each prefilled `prompt`."""
    _, cache = session.prefill(prompt)
    return decode_steps(session, cache, rows, STEPS)[0]


def main() -> None:
    sessions = layouts()
    prompt = [int(t) for t in np.random.default_rng(0).integers(0, 50_000, max(PROMPTS))]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    best: dict[tuple[str, int, int], float] = {}
    for _ in range(REPEATS):
        for length in PROMPTS:
            for rows in ROWS:
                for name, session in sessions.items():
                    measured = median_step_ms(session, rows, prompt[:length])
                    key = (name, length, rows)
                    best[key] = min(best.get(key, measured), measured)
    print(f"\n### Decode step, int8 bench model, 1 intra-op thread, median of {STEPS} steps, best of {REPEATS} runs\n")
    print(
        "| prompt tokens | rows | in place (ms) | left-padded (ms) | in place per row-token "
        "| left-padded per row-token | left-padded / in place |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for length in PROMPTS:
        for rows in ROWS:
            slot, padded = best[("in place", length, rows)], best[("left-padded", length, rows)]
            print(
                f"| {length} | {rows} | {slot:.2f} | {padded:.2f} | {slot / rows:.2f} | {padded / rows:.2f} | "
                f"{padded / slot:.2f}x |"
            )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
