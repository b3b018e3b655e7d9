"""Run an exported decoder (`model.onnx`, optimum's text-generation-with-past layout) in onnxruntime.

The pipeline needs this in three places: export's parity check against PyTorch, quantize's
perplexity comparison between variants, and evaluate's perplexity and decode latency. The
serving engine has its own loop (backend/engine); this one stays minimal: batch of one,
greedy decoding, and plain nucleus sampling for the model card's examples.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxDecoder:
    """One inference session over a decoder with a KV cache."""

    def __init__(self, model_path: str | Path, intra_op_threads: int = 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # Single-threaded inter-op: the decoder graph is a chain, parallel branches buy nothing.
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.input_names = set(inputs)
        self.past_names = sorted(n for n in inputs if n.startswith("past_key_values."))
        self.output_names = [o.name for o in self.session.get_outputs()]
        # Past tensors are [batch, heads, past, head_dim]; heads and head_dim are fixed in the graph.
        first = inputs[self.past_names[0]].shape
        self.n_head, self.head_dim = int(first[1]), int(first[3])

    def empty_past(self) -> dict[str, np.ndarray]:
        shape = (1, self.n_head, 0, self.head_dim)
        return {name: np.zeros(shape, dtype=np.float32) for name in self.past_names}

    def step(self, input_ids: np.ndarray, past: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Feed `input_ids` [1, seq] after `past`; returns logits [1, seq, vocab] and the new past."""
        past_len = next(iter(past.values())).shape[2]
        seq = input_ids.shape[1]
        feed = {"input_ids": input_ids.astype(np.int64), **past}
        feed["attention_mask"] = np.ones((1, past_len + seq), dtype=np.int64)
        if "position_ids" in self.input_names:
            feed["position_ids"] = np.arange(past_len, past_len + seq, dtype=np.int64)[None, :]
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, feed)))
        # present.i.key -> past_key_values.i.key: the outputs of one step are the inputs of the next.
        new_past = {name: outputs[name.replace("past_key_values.", "present.")] for name in self.past_names}
        return outputs["logits"], new_past

    def logits(self, input_ids: list[int] | np.ndarray) -> np.ndarray:
        """Logits [seq, vocab] for a whole sequence in one pass (no past)."""
        ids = np.asarray(input_ids, dtype=np.int64)[None, :]
        logits, _ = self.step(ids, self.empty_past())
        return logits[0]

    def greedy(self, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation using the KV cache: prompt once, then one token per step."""
        tokens, _ = self.greedy_timed(prompt_ids, max_new_tokens)
        return tokens

    def sample(
        self, prompt_ids: list[int], max_new_tokens: int, temperature: float, top_p: float, seed: int, stop_id: int
    ) -> list[int]:
        """Nucleus sampling until `stop_id` or `max_new_tokens`; for model-card samples only."""
        rng = np.random.default_rng(seed)
        ids = np.asarray(prompt_ids, dtype=np.int64)[None, :]
        past, generated = self.empty_past(), []
        for _ in range(max_new_tokens):
            logits, past = self.step(ids, past)
            scaled = logits[0, -1].astype(np.float64) / temperature
            probs = np.exp(scaled - scaled.max())
            probs /= probs.sum()
            order = np.argsort(-probs)
            # Keep the smallest prefix of the sorted tokens whose mass reaches top_p.
            keep = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
            token = int(rng.choice(keep, p=probs[keep] / probs[keep].sum()))
            if token == stop_id:
                break
            generated.append(token)
            ids = np.asarray([[token]], dtype=np.int64)
        return generated

    def greedy_timed(self, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], dict[str, float]]:
        """Like `greedy`, also returning {"prompt_ms", "per_token_ms"} wall-clock timings."""
        start = time.perf_counter()
        logits, past = self.step(np.asarray(prompt_ids, dtype=np.int64)[None, :], self.empty_past())
        prompt_ms = (time.perf_counter() - start) * 1000
        generated = [int(np.argmax(logits[0, -1]))]
        start = time.perf_counter()
        while len(generated) < max_new_tokens:
            logits, past = self.step(np.asarray([[generated[-1]]], dtype=np.int64), past)
            generated.append(int(np.argmax(logits[0, -1])))
        steps = max(len(generated) - 1, 1)
        per_token_ms = (time.perf_counter() - start) * 1000 / steps
        return generated, {"prompt_ms": prompt_ms, "per_token_ms": per_token_ms}


def kv_cache_max_diff(decoder: OnnxDecoder, ids: list[int], prefix: int = 1) -> float:
    """Largest |logit| difference between one full pass and feeding ids token by token after `prefix`.

    Zero up to float rounding for a correct KV cache; used to vet rewritten graphs.
    """
    full = decoder.logits(ids)  # [seq, vocab]
    logits, past = decoder.step(np.asarray(ids[:prefix], dtype=np.int64)[None, :], decoder.empty_past())
    rows = [logits[0]]
    for token in ids[prefix:]:
        logits, past = decoder.step(np.asarray([[token]], dtype=np.int64), past)
        rows.append(logits[0])
    return float(np.abs(np.concatenate(rows) - full).max())
