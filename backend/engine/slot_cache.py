"""The running batch's KV cache for a GroupQueryAttention graph: right-padded, written in place.

A graph fused with GroupQueryAttention (model_creation/onnx_graph/attention_fusion.py) reads
each row's length from its attention mask and keeps a row's positions in the FIRST columns of
the cache. Bound to one buffer as both past and present (DecoderSession.decode_in_place), it
writes each row's new key and value into that buffer at the row's own next column and reads
only the row's own columns. So a decode step moves no cache at all, where MultiHeadAttention
copies the whole past into a new present every step (left-padded: padded_cache.py); at 8 rows
of 192 positions that copy was half of the step.

Layout: each of the session's past tensors is one buffer [capacity, heads, columns, head_dim];
row r of the batch is buffer row r, its positions in columns 0 .. lengths[r] - 1, and whatever
lies beyond is never read (the attention stops at each row's length: a test fills it with NaN).
Rows join at the end (their prefill's cache copied in) and leave by moving the kept rows' own
columns down; buffers grow by doubling, and go when the batch empties. No row ever moves within
its columns, so a row's attention sums run over the same positions in the same order as alone,
whoever shares the batch: batched rows are bit-identical to their runs alone with no padding
unit (`computes_rows_alone` checks this at load).
"""

from __future__ import annotations

import numpy as np

from backend.engine.session import DecoderSession, KVCache

_MIN_COLUMNS = 64


class SlotCache:
    """Rows of a running batch in preallocated, right-padded cache buffers."""

    def __init__(self):
        self.buffers: list[np.ndarray] = []  # [capacity, heads, columns, head_dim] each, in the session's past order
        self.lengths = np.zeros(0, dtype=np.int64)  # [rows]: each row's own positions

    @property
    def rows(self) -> int:
        return len(self.lengths)

    def can_join(self, length: int) -> bool:
        """Always: rows are never padded, so any prompt length joins at any step."""
        return True

    def _reserve(self, template: KVCache, rows: int, columns: int) -> None:
        """Buffers holding at least `rows` rows of `columns` positions, the current rows kept."""
        capacity, have = (self.buffers[0].shape[0], self.buffers[0].shape[2]) if self.buffers else (0, 0)
        if rows <= capacity and columns <= have:
            return
        capacity = capacity if rows <= capacity else max(rows, 2 * capacity)
        have = have if columns <= have else max(columns, 2 * have, _MIN_COLUMNS)
        grown = []
        for index, tensor in enumerate(template.tensors):
            _, heads, _, head_dim = tensor.shape
            buffer = np.zeros((capacity, heads, have, head_dim), dtype=tensor.dtype)
            if self.buffers:
                old = self.buffers[index]
                buffer[: self.rows, :, : old.shape[2]] = old[: self.rows]
            grown.append(buffer)
        self.buffers = grown

    def join(self, cache: KVCache) -> None:
        """Append the rows of a prefill's cache (tiled to n rows) after the existing ones."""
        start, end = self.rows, self.rows + cache.batch
        self._reserve(cache, end, cache.length + 1)
        for buffer, tensor in zip(self.buffers, cache.tensors, strict=True):
            buffer[start:end, :, : cache.length] = tensor  # the columns after it are never read
        self.lengths = np.concatenate([self.lengths, np.full(cache.batch, cache.length, dtype=np.int64)])

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (in this order) as rows 0 .. len(rows) - 1; an empty batch frees its buffers."""
        if not rows:
            self.buffers, self.lengths = [], np.zeros(0, dtype=np.int64)
            return
        moves = [(to, source) for to, source in enumerate(rows) if to != source]
        if moves and rows == sorted(rows):  # each source lies after its destination: move rows up in order
            for buffer in self.buffers:
                for to, source in moves:  # only a row's own columns: the rest is never read
                    buffer[to, :, : self.lengths[source]] = buffer[source, :, : self.lengths[source]]
        elif moves:
            width = int(self.lengths[rows].max())
            for buffer in self.buffers:
                buffer[: len(rows), :, :width] = buffer[rows, :, :width]  # fancy indexing copies first
        self.lengths = self.lengths[rows]

    def decode(self, session: DecoderSession, token_ids: np.ndarray) -> np.ndarray:
        """One token per row [rows] at each row's own next position; logits [rows, vocab]."""
        self._reserve(KVCache(self.buffers), self.rows, int(self.lengths.max()) + 1)
        logits = session.decode_in_place(token_ids, [buffer[: self.rows] for buffer in self.buffers], self.lengths)
        self.lengths = self.lengths + 1
        return logits


def computes_rows_alone(session: DecoderSession) -> bool:
    """Whether two rows of different lengths decoded together give, bit for bit, the logits each
    gives alone (DecoderSession.decode, its own cache): onnxruntime's kernels decide, so it is
    measured when the engine loads, as padded_cache.measure_alignment is for left padding."""
    rng = np.random.default_rng(0)
    together, alone = SlotCache(), []
    for length in (5, 23):
        logits, cache = session.prefill([int(t) for t in rng.integers(0, 256, length)])  # ids any vocabulary has
        token = np.array([int(logits[0].argmax())], dtype=np.int64)
        alone.append((token, session.decode(token, cache)[0]))
        together.join(cache)
    batched = together.decode(session, np.concatenate([token for token, _ in alone]))
    return all(np.array_equal(batched[row], logits[0]) for row, (_, logits) in enumerate(alone))
