"""Sequences of different lengths in one KV cache: left padding, the attention mask, positions.

The only module that knows how rows of a running batch are laid out. Every row's cache is
LEFT-padded to the batch's width W: [batch, heads, W, head_dim] with a row's own positions in its
last `lengths[row]` columns and zeros before them. A decode step feeds an attention mask that is
0 on the padding and the row's own next position as its position id, so that every row sees
exactly the keys, values and positions of its unbatched run (the graph must take position_ids:
see DecoderSession.has_position_ids). Rows join (a prefilled request, tiled to its n
completions) and leave (finished or cancelled) between steps; a join pads whichever side is
shorter, a leave drops the columns that only the leaving rows needed.
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

    def __init__(self):
        self.tensors: list[np.ndarray] = []  # [rows, heads, width, head_dim] each, in the session's past order
        self.lengths = np.zeros(0, dtype=np.int64)  # [rows]: each row's own positions

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return self.tensors[0].shape[2] if self.tensors else 0

    def join(self, cache: KVCache) -> None:
        """Append the rows of an unpadded cache (a prefill, tiled to n rows) after the existing ones."""
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
        unused = self.width - int(self.lengths.max())
        self.tensors = [np.ascontiguousarray(t[rows, :, unused:, :]) for t in self.tensors]

    def attention_mask(self) -> np.ndarray:
        """[rows, width + 1]: 1 on each row's own positions and the token being fed, 0 on padding."""
        columns = np.arange(self.width + 1, dtype=np.int64)
        return (columns[None, :] >= (self.width - self.lengths)[:, None]).astype(np.int64)

    def decode(self, session: DecoderSession, token_ids: np.ndarray) -> np.ndarray:
        """One token per row [rows] at each row's own next position; logits [rows, vocab]."""
        position_ids = self.lengths[:, None].copy()  # [rows, 1]: a row's positions are 0 .. length - 1
        logits, cache = session.decode(token_ids, KVCache(self.tensors), self.attention_mask(), position_ids)
        self.tensors, self.lengths = cache.tensors, self.lengths + 1
        return logits
