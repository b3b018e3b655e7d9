"""Does a row's output depend on the other rows of a batch? The check behind AUTOCOMPLETE_BATCHING.

    python -m bench.row_independence models/arxiv-gpt2-6x512-bpe16k/model.onnx
    python -m bench.row_independence artifacts/bench-model/fp32/model.onnx --steps 16
    python -m bench.row_independence models/arxiv-gpt2-6x512-bpe16k/model.onnx --texts 32

Four random prompts of different lengths are prefilled alone, then decoded greedily both alone
and as one batch laid out as the server lays it out: in place for a GroupQueryAttention graph
(backend/engine/slot_cache.py), else left-padded (backend/engine/padded_cache.py), once with the
padding the lengths give and once with it kept a multiple of the unit
padded_cache.measure_alignment finds (what the engine does). It prints the largest logit
difference and how many greedy choices differ. A dynamically quantized graph (one activation
scale per tensor, i.e. per batch) differs either way, which is why the engine does not batch it
unless forced.

With --texts N, it also sends N seeded requests (the served defaults: temperature 0.8, top_p 0.95,
40 tokens; abstract openings as prompts) to a batching engine all at once and one by one to an
unbatched one, and counts the texts that came out the same: what a user sees of the difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from backend.engine.batch import batch_cache
from backend.engine.padded_cache import measure_alignment
from backend.engine.session import DecoderSession

PROMPT_LENGTHS = (3, 17, 40, 9)  # paddings 37, 23, 0, 31: not all multiples of any unit > 1


def compare(
    model_path: Path, steps: int, align: int = 1, seed: int = 0, lengths: list[int] | None = None
) -> tuple[float, int, int]:
    """(largest |logit| difference, greedy choices that differ, choices compared), with the rows'
    padding free (align 1) or kept a multiple of `align` as the engine keeps it (left padding; a
    GroupQueryAttention graph decodes in place, unpadded, whatever align is). `lengths` are the
    prompts' (by default ones whose paddings are, or are not, multiples of align)."""
    session = DecoderSession(model_path)
    vocab = session.session.get_outputs()[0].shape[-1]
    vocab = vocab if isinstance(vocab, int) else 1000
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = PROMPT_LENGTHS if align == 1 else [3 + align * k for k in (0, 4, 9, 2)]
    alone, batch, tokens = [], batch_cache(session, align), []
    for length in lengths:
        logits, cache = session.prefill([int(t) for t in rng.integers(1, vocab, length)])
        alone.append(cache)
        batch.join(cache)
        tokens.append(int(logits[0].argmax()))
    worst, differ = 0.0, 0
    for _ in range(steps):
        batched = batch.decode(session, np.array(tokens, dtype=np.int64))  # [rows, vocab]
        for row in range(len(alone)):
            logits, alone[row] = session.decode(np.array([tokens[row]]), alone[row])
            worst = max(worst, float(np.abs(logits[0] - batched[row]).max()))
            differ += int(logits[0].argmax() != batched[row].argmax())
            tokens[row] = int(logits[0].argmax())  # both continue with the unbatched choice
    return worst, differ, steps * len(alone)


OPENINGS = (
    "We propose a method to",
    "Large language models",
    "In this paper, we study the problem of",
    "Reinforcement learning agents",
    "Graph neural networks have",
    "Deep learning models are",
    "We present a new dataset for",
    "Diffusion models",
)


def compare_texts(model_dir: Path, requests: int) -> int:
    """How many of `requests` seeded completions are the same batched as alone."""
    from backend.engine import Engine, GenerationParams
    from backend.engine.schema import GenerationResult

    batched, alone = Engine.load(model_dir, batching="force"), Engine.load(model_dir, batching="off")
    cases = [(OPENINGS[i % len(OPENINGS)], GenerationParams(seed=i)) for i in range(requests)]
    streams = [batched.stream(text, params) for text, params in cases]  # all admitted before any is read
    together = [next(item for item in stream if isinstance(item, GenerationResult)) for stream in streams]
    return sum(
        result.completions[0].text == alone.generate(text, params).completions[0].text
        for result, (text, params) in zip(together, cases, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.row_independence", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model.onnx with a KV cache and position_ids")
    parser.add_argument("--steps", type=int, default=8, help="decode steps (default: %(default)s)")
    parser.add_argument("--texts", type=int, default=0, help="seeded requests to compare as texts (default: none)")
    args = parser.parse_args(argv)
    session = DecoderSession(args.model)
    align = None if session.decodes_in_place else measure_alignment(session)
    for unit in (1, align) if align and align > 1 else (1,):
        worst, differ, compared = compare(args.model, args.steps, unit)
        if session.decodes_in_place:
            padding = "in place, unpadded (the engine's)"
        else:
            padding = "any padding" if unit == 1 else f"padding by multiples of {unit} (the engine's)"
        print(
            f"{args.model}, {padding}: largest |logit difference| batched vs alone {worst:.3g}; "
            f"greedy choices that differ {differ} of {compared}"
        )
    if args.texts > 0:
        same = compare_texts(args.model.parent, args.texts)
        print(f"{args.model}: texts the same batched as alone {same} of {args.texts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
