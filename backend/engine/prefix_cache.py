"""Prefill only what is new: reuse the KV cache of a recent prompt that the new one extends.

A person writing an abstract pauses, reads a suggestion, types a few more words and pauses again:
each request sends the whole text so far, so it repeats the previous prompt and adds a few
tokens. Prefilling it whole costs time that grows with the prompt (bench.prefill: 152 ms for
400 tokens on the DistilGPT2-sized bench model, 14 ms for its last three words after the rest),
and in a running batch every other row waits for it. Here each worker keeps the caches of its
recent prompts (within a byte budget, least recently used first out), and a prompt is prefilled
as the cache of its longest known prefix plus a forward pass over the rest: at least its last
MIN_FED tokens, because onnxruntime's GroupQueryAttention computes a single fed token by its
decode path, whose sums round differently from a prompt's (measured: 3e-5 apart in the logits).
For the same reason only prompts are kept, not the tokens a completion decoded.

The result must be the one a whole prefill gives, bit for bit, or the same seed would no longer
give the same text once a prompt's prefix is known. That holds when the graph computes each
position alike however the prompt is split (integer matmuls are exact; GroupQueryAttention
sums a position's keys in the same order whether they came from a past or from the same pass):
`splits_exactly` measures it when the engine loads, as slot_cache.computes_rows_alone does for
batched rows, and without it the engine keeps no prefix cache.
"""

from __future__ import annotations

import threading

import numpy as np

from backend.engine.session import DecoderSession, KVCache

MIN_FED = 2  # tokens a prefill after a reused prefix feeds at least (one would take the decode path)


def _common_length(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading ids two id arrays share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PrefixCache:
    """The KV caches of recent prompts of one engine, at most `max_bytes` of them in all."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        # (ids [length], cache [1, heads, length, head_dim]) per prompt, least recently used first
        self._entries: list[tuple[np.ndarray, KVCache]] = []
        self._lock = threading.Lock()  # unbatched engines prefill in their callers' threads

    @property
    def bytes(self) -> int:
        return sum(cache.nbytes for _, cache in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def longest_prefix(self, ids: np.ndarray) -> tuple[int, KVCache | None]:
        """(n, the cache of ids[:n]) for the longest prefix of `ids` a stored prompt shares, with
        n <= len(ids) - MIN_FED; (0, None) when none shares any."""
        with self._lock:
            best, index = 0, -1
            for i, (known, _) in enumerate(self._entries):
                shared = min(_common_length(known, ids), len(ids) - MIN_FED)
                if shared > best:
                    best, index = shared, i
            if index < 0:
                return 0, None
            entry = self._entries.pop(index)
            self._entries.append(entry)  # most recently used goes last
        # onnxruntime takes contiguous inputs: a copy of the first `best` columns, or the stored
        # tensors themselves when all of them are reused (a session only reads its past, never writes it).
        return best, KVCache([np.ascontiguousarray(t[:, :, :best]) for t in entry[1].tensors])

    def add(self, ids: np.ndarray, cache: KVCache) -> None:
        """Keep the cache of prompt `ids`. A stored prompt it repeats up to at most that prompt's
        last token goes (typing on usually re-tokenises the last word, so the new prompt covers
        all the rest); then the least recently used go until the budget holds."""
        with self._lock:
            self._entries = [
                (known, kept) for known, kept in self._entries if _common_length(known, ids) < len(known) - 1
            ]
            self._entries.append((ids, cache))
            sizes = [kept.nbytes for _, kept in self._entries]
            while self._entries and sum(sizes) > self.max_bytes:
                self._entries.pop(0)
                sizes.pop(0)


def prefill(
    session: DecoderSession, input_ids: list[int], prefixes: PrefixCache | None
) -> tuple[np.ndarray, KVCache, int]:
    """(logits [1, vocab] of the last position, the prompt's cache, positions reused): the prompt
    prefilled after the longest stored prefix it extends, or whole."""
    if prefixes is None:
        return *session.prefill(input_ids), 0
    ids = np.asarray(input_ids, dtype=np.int64)
    reused, past = prefixes.longest_prefix(ids)
    logits, cache = session.prefill(input_ids[reused:], past)
    prefixes.add(ids, cache)
    return logits, cache, reused


def splits_exactly(session: DecoderSession) -> bool:
    """Whether a prompt prefilled after the cache of its first part gives, bit for bit, the
    logits and cache of the whole prompt prefilled at once (onnxruntime's kernels decide)."""
    rng = np.random.default_rng(0)
    ids = [int(t) for t in rng.integers(0, 256, 29)]  # ids any vocabulary has
    whole_logits, whole = session.prefill(ids)
    for split in (1, 11, len(ids) - MIN_FED):
        _, first = session.prefill(ids[:split])
        logits, cache = session.prefill(ids[split:], first)
        if not np.array_equal(logits, whole_logits):
            return False
        if not all(np.array_equal(a, b) for a, b in zip(cache.tensors, whole.tensors, strict=True)):
            return False
    return True
