"""Next-token selection as pure numpy functions: penalty, temperature, top-k, top-p, sampling.

Semantics follow transformers' RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper and TopPLogitsWarper, applied in that order (as `generate` does). No function
mutates its input. Every function works on ONE row of logits [vocab] (float32).

Speed: a decode step must not sort 50,257 logits. Top-k uses np.argpartition (linear time).
Top-p samples from the softmax with a blocked inverse-CDF and then accepts the token only if
it lies inside the nucleus (the mass of strictly more likely tokens is < top_p), retrying
otherwise: rejection sampling from p restricted to the nucleus draws exactly from the
renormalised nucleus, and needs 1/mass(nucleus) <= 1/top_p tries on average. After a few
rejections (small top_p on a flat distribution) it falls back to an explicit sort.
"""

from __future__ import annotations

import numpy as np

# Rows are summed in blocks so that finding the sampled index needs a cumsum of ~200 block
# sums plus one block, not a cumsum of the whole vocabulary (cumsum is the slow numpy op here).
_BLOCK = 256
# Candidate sets this small are cheaper to sort than to sample by rejection.
_SORT_BELOW = 512
_MAX_REJECTIONS = 8


def apply_repetition_penalty(logits: np.ndarray, seen_ids: np.ndarray, penalty: float) -> np.ndarray:
    """For tokens already in the sequence: score < 0 ? score * penalty : score / penalty.
    With nothing to penalise the input itself comes back (no copy: nothing downstream writes to it)."""
    if penalty == 1.0 or len(seen_ids) == 0:
        return logits
    out = logits.copy()
    seen = out[seen_ids]  # [len(seen)] gathered copy
    out[seen_ids] = np.where(seen < 0, seen * penalty, seen / penalty)
    return out


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(logits - max) / temperature, for a temperature > 0 (0 means greedy and never gets here).

    The same distribution as logits / temperature, but every score is <= 0 and the largest is
    exactly 0, so however small the temperature, the others can only overflow towards -inf
    (probability 0) and the softmax tends to the argmax, as sampling does when temperature -> 0.
    Dividing first overflowed to +inf below about 1e-38 and the softmax became NaN (issue 14)."""
    shifted = logits - logits.max()
    divisor = np.float32(temperature)
    if divisor == 0:  # below float32's smallest subnormal (1.4e-45): divide in float64 instead
        shifted, divisor = shifted.astype(np.float64), np.float64(temperature)
    with np.errstate(over="ignore"):
        return shifted / divisor


def top_k_candidates(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits, unordered (all indices when k is 0 or >= vocab)."""
    if k <= 0 or k >= logits.shape[-1]:
        return np.arange(logits.shape[-1])
    return np.argpartition(logits, logits.shape[-1] - k)[-k:]


def nucleus_size(sorted_probs: np.ndarray, top_p: float) -> int:
    """How many of the descending-sorted probabilities top-p keeps: a token stays while the mass
    strictly before it is < top_p (so the token crossing top_p is kept, and always at least one)."""
    mass_before = np.cumsum(sorted_probs, dtype=np.float64)[:-1] / sorted_probs.sum(dtype=np.float64)
    return 1 + int(np.count_nonzero(mass_before < top_p))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())  # -inf -> 0
    return shifted / shifted.sum()


def log_softmax_at(logits: np.ndarray, token: int) -> float:
    """log p(token) under softmax(logits), without materialising the whole log-softmax."""
    peak = logits.max()
    return float(logits[token] - peak - np.log(np.exp(logits - peak).sum(dtype=np.float64)))


def _first_reaching(cdf: np.ndarray, value: float) -> int:
    """Index of the first cdf entry above `value`, never past the last entry with weight, so that
    rounding at the very top cannot select a zero-weight entry."""
    return min(int(np.searchsorted(cdf, value, side="right")), int(np.searchsorted(cdf, cdf[-1], side="left")))


def _draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    """Index drawn with probability weights[i] / sum(weights) (unnormalised weights >= 0)."""
    starts = np.arange(0, len(weights), _BLOCK)
    block_mass = np.add.reduceat(weights, starts, dtype=np.float64)  # [n_blocks]
    block_cdf = np.cumsum(block_mass)
    target = rng.random() * block_cdf[-1]
    block = _first_reaching(block_cdf, target)
    inner = np.cumsum(weights[starts[block] : starts[block] + _BLOCK], dtype=np.float64)
    # The same uniform draw, rescaled to the block's own cumsum (whose rounding differs slightly
    # from reduceat's).
    within = (target - (block_cdf[block] - block_mass[block])) / block_mass[block] * inner[-1]
    return int(starts[block] + _first_reaching(inner, within))


def _draw_from_nucleus(weights: np.ndarray, top_p: float, rng: np.random.Generator) -> int:
    total = weights.sum(dtype=np.float64)
    if top_p < 1.0 and len(weights) > _SORT_BELOW:
        for _ in range(_MAX_REJECTIONS):
            token = _draw(weights, rng)
            # Mass of strictly more likely tokens; a dot with the mask is ~20x faster than a masked sum.
            if float(np.dot(weights, (weights > weights[token]).astype(weights.dtype))) < top_p * total:
                return token
    if top_p < 1.0:
        order = np.argsort(-weights, kind="stable")
        order = order[: nucleus_size(weights[order], top_p)]
        return int(order[_draw(weights[order], rng)])
    return _draw(weights, rng)


def sample_token(
    logits: np.ndarray,
    rng: np.random.Generator,
    *,
    seen_ids: np.ndarray,
    temperature: float,
    top_k: int,
    top_p: float,
    repetition_penalty: float,
) -> int:
    """The next token for one row of raw logits [vocab]; `seen_ids` are the sequence's tokens so far."""
    scores = apply_repetition_penalty(logits, seen_ids, repetition_penalty)
    if temperature == 0:
        return int(np.argmax(scores))
    scores = apply_temperature(scores, temperature)
    candidates = top_k_candidates(scores, top_k) if top_k > 0 else None
    if candidates is not None:
        scores = scores[candidates]  # [k]
    # Unnormalised softmax. apply_temperature left the largest score at exactly 0 (top-k keeps it),
    # so subtracting the max again would change no bit: exp directly. -inf (a tiny temperature) gives 0.
    weights = np.exp(scores)
    token = _draw_from_nucleus(weights, top_p, rng)
    return int(candidates[token]) if candidates is not None else token
