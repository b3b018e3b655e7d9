"""Run an exported decoder (`model.onnx`) for the pipeline: a thin adapter over the serving engine's
DecoderSession, which alone knows the graph's input and output names.

The pipeline needs this in three places: export's parity check against PyTorch, quantize's
perplexity comparison between variants, and evaluate's perplexity and decode latency. It stays
minimal: batch of one and greedy decoding (the model card's samples come from the engine itself).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from backend.engine.session import DecoderSession


class OnnxDecoder:
    """One inference session over a decoder with a KV cache (dimensions read from the graph)."""

    def __init__(self, model_path: str | Path, intra_op_threads: int = 1):
        self.session = DecoderSession(Path(model_path), intra_op_threads=intra_op_threads)

    def logits(self, input_ids: list[int] | np.ndarray) -> np.ndarray:
        """Logits [seq, vocab] for a whole sequence in one pass (no past)."""
        return self.session.sequence_logits(input_ids)

    def greedy(self, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation using the KV cache: prompt once, then one token per step."""
        tokens, _ = self.greedy_timed(prompt_ids, max_new_tokens)
        return tokens

    def greedy_timed(self, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], dict[str, float]]:
        """Like `greedy`, also returning {"prompt_ms", "per_token_ms"} wall-clock timings."""
        start = time.perf_counter()
        logits, cache = self.session.prefill(prompt_ids)
        prompt_ms = (time.perf_counter() - start) * 1000
        generated = [int(np.argmax(logits[0]))]
        start = time.perf_counter()
        while len(generated) < max_new_tokens:
            logits, cache = self.session.decode(np.asarray([generated[-1]], dtype=np.int64), cache)
            generated.append(int(np.argmax(logits[0])))
        steps = max(len(generated) - 1, 1)
        per_token_ms = (time.perf_counter() - start) * 1000 / steps
        return generated, {"prompt_ms": prompt_ms, "per_token_ms": per_token_ms}


def kv_cache_max_diff(decoder: OnnxDecoder, ids: list[int], prefix: int = 1) -> float:
    """Largest |logit| difference between one full pass and feeding ids token by token after `prefix`.

    Zero up to float rounding for a correct KV cache; used to vet rewritten graphs.
    """
    session = decoder.session
    full = session.sequence_logits(ids)  # [seq, vocab]
    logits, cache = session.forward_all(np.asarray(ids[:prefix], dtype=np.int64)[None, :], session.empty_cache())
    rows = [logits[0]]  # [prefix, vocab]
    for token in ids[prefix:]:
        logits, cache = session.decode(np.asarray([token], dtype=np.int64), cache)
        rows.append(logits)  # [1, vocab]
    return float(np.abs(np.concatenate(rows) - full).max())
