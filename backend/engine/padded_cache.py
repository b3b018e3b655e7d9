"""Sequences of different lengths in one KV cache: left padding, the attention mask, positions.

How the rows of a running batch are laid out for a graph whose attention takes any padding
(the export's own, or MultiHeadAttention); a GroupQueryAttention graph keeps them in place
instead (slot_cache.py). Every row's cache is
LEFT-padded to the batch's width W: [batch, heads, W, head_dim] with a row's own positions in its
last `lengths[row]` columns and zeros before them. A decode step feeds an attention mask that is
0 on the padding and the row's own next position as its position id, so that every row sees
exactly the keys, values and positions of its unbatched run (the graph must take position_ids:
see DecoderSession.has_position_ids). Rows join (a prefilled request, tiled to its n
completions) and leave (finished or cancelled) between steps; a join pads whichever side is
shorter, a leave drops the columns that only the leaving rows needed.

Alignment: onnxruntime's attention sums over the key positions a few lanes at a time (4 on the
development CPU), so padding a row by an amount that is not a multiple of the lane count moves
its keys to other lanes and changes its sums by float rounding (~1e-7). In an int8 graph that
is enough to move an activation across a rounding boundary now and then, and a seeded text
changes. With `align` set to what `measure_alignment` finds, every row's padding stays a
multiple of it: a row joins only when the batch's width has its length's phase (`can_join`; the
scheduler holds it back at most align - 1 steps); a join that widens the batch and a leave that
narrows it then move every row by a multiple of it too. A batched row is then computed bit for
bit as it is alone.
"""

from __future__ import annotations

import numpy as np

from backend.engine.session import DecoderSession, KVCache


def _left_pad(tensor: np.ndarray, width: int) -> np.ndarray:
    """[batch, heads, past, head_dim] -> [batch, heads, width, head_dim] with zeros in front."""
    missing = width - tensor.shape[2]
    if missing == 0:
        return tensor
    return np.pad(tensor, ((0, 0), (0, 0), (missing, 0), (0, 0)))


class PaddedCache:
    """The running batch's KV cache and each row's true length."""

    def __init__(self, align: int = 1):
        self.align = align  # every row's padding is a multiple of this
        self.tensors: list[np.ndarray] = []  # [rows, heads, width, head_dim] each, in the session's past order
        self.lengths = np.zeros(0, dtype=np.int64)  # [rows]: each row's own positions

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return self.tensors[0].shape[2] if self.tensors else 0

    def can_join(self, length: int) -> bool:
        """Whether a row of `length` positions can join now with padding a multiple of `align`.
        The width grows by one per decode step, so this holds again within align - 1 steps."""
        return self.rows == 0 or (self.width - length) % self.align == 0

    def join(self, cache: KVCache) -> None:
        """Append the rows of an unpadded cache (a prefill, tiled to n rows) after the existing ones."""
        if not self.can_join(cache.length):
            raise ValueError(f"a row of length {cache.length} cannot join width {self.width} (align {self.align})")
        added = np.full(cache.batch, cache.length, dtype=np.int64)
        if self.rows == 0:
            self.tensors, self.lengths = list(cache.tensors), added
            return
        width = max(self.width, cache.length)
        self.tensors = [
            np.concatenate([_left_pad(mine, width), _left_pad(theirs, width)], axis=0)
            for mine, theirs in zip(self.tensors, cache.tensors, strict=True)
        ]
        self.lengths = np.concatenate([self.lengths, added])

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (in this order) and drop the leading columns no kept row uses."""
        if not rows:
            self.tensors, self.lengths = [], np.zeros(0, dtype=np.int64)
            return
        self.lengths = self.lengths[rows]
        # The smallest padding among the kept rows; a multiple of align, as every row's padding is.
        unused = self.width - int(self.lengths.max())
        self.tensors = [np.ascontiguousarray(t[rows, :, unused:, :]) for t in self.tensors]

    def attention_mask(self) -> np.ndarray:
        """[rows, width + 1]: 1 on each row's own positions and the token being fed, 0 on padding."""
        columns = np.arange(self.width + 1, dtype=np.int64)
        return (columns[None, :] >= (self.width - self.lengths)[:, None]).astype(np.int64)

    def decode(self, session: DecoderSession, token_ids: np.ndarray) -> np.ndarray:
        """One token per row [rows] at each row's own next position; logits [rows, vocab]."""
        if session.decodes_in_place:  # its attention reads a row's length from the mask: left padding breaks it
            raise ValueError("a GroupQueryAttention graph takes right-padded rows: use slot_cache.SlotCache")
        position_ids = self.lengths[:, None].copy()  # [rows, 1]: a row's positions are 0 .. length - 1
        logits, cache = session.decode(token_ids, KVCache(self.tensors), self.attention_mask(), position_ids)
        self.tensors, self.lengths = cache.tensors, self.lengths + 1
        return logits


def measure_alignment(session: DecoderSession, candidates: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> int | None:
    """The smallest padding unit that leaves a row's logits bit-identical on this machine, or None.

    A row decoded alone is compared with the same row left-padded by 1, 2 and 3 units, for two
    prompt lengths; onnxruntime's kernels decide the answer, so it is measured, not assumed."""
    rng = np.random.default_rng(0)
    probes = []
    for length in (5, 23):
        logits, cache = session.prefill([int(t) for t in rng.integers(0, 256, length)])  # ids any vocabulary has
        token = np.array([int(logits[0].argmax())], dtype=np.int64)
        probes.append((cache, token, session.decode(token, cache)[0]))

    def exact(pad: int) -> bool:
        for cache, token, alone in probes:
            padded = PaddedCache()
            padded.tensors = [_left_pad(t, cache.length + pad) for t in cache.tensors]
            padded.lengths = np.array([cache.length], dtype=np.int64)
            if not np.array_equal(padded.decode(session, token), alone):
                return False
        return True

    return next((unit for unit in candidates if all(exact(unit * k) for k in (1, 2, 3))), None)
