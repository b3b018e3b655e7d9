"""backend.engine.sampling against transformers' own logits processors and warpers.

Each numpy function must give the same filtered distribution as its transformers counterpart
(-inf at the same positions, finite values close), must never modify its input, and the
sampler must draw from exactly the distribution the transformers chain describes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from backend.engine import sampling

VOCAB = 50257


def random_logits(seed: int, vocab: int = VOCAB, scale: float = 3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(vocab) * scale).astype(np.float32)


def oracle(processor, logits: np.ndarray, input_ids: np.ndarray | None = None) -> np.ndarray:
    ids = torch.as_tensor(np.asarray(input_ids if input_ids is not None else [0], dtype=np.int64))[None, :]
    return processor(ids, torch.from_numpy(logits.copy())[None, :])[0].numpy()


def assert_same_filter(ours: np.ndarray, theirs: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-6, atol=1e-6)


def unchanged(function, logits: np.ndarray, *args, **kwargs):
    before = logits.copy()
    result = function(logits, *args, **kwargs)
    np.testing.assert_array_equal(logits, before)  # the input was not mutated
    return result


@pytest.mark.parametrize("penalty", [1.0, 1.1, 1.5, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_repetition_penalty_matches_transformers(penalty, seed):
    logits = random_logits(seed)
    seen = np.random.default_rng(seed + 100).integers(0, VOCAB, size=300)  # with repeats
    ours = unchanged(sampling.apply_repetition_penalty, logits, np.unique(seen), penalty)
    assert_same_filter(ours, oracle(RepetitionPenaltyLogitsProcessor(penalty), logits, seen))


@pytest.mark.parametrize("temperature", [0.1, 0.7, 1.0, 1.5, 2.0])
def test_temperature_matches_transformers(temperature):
    logits = random_logits(2)
    ours = unchanged(sampling.apply_temperature, logits, temperature)
    theirs = oracle(TemperatureLogitsWarper(temperature), logits)
    assert_same_filter(ours, theirs - theirs.max())  # the same softmax: shifted so the largest is 0
    assert ours.max() == 0.0  # exactly: sample_token exponentiates the scores without shifting them again


@pytest.mark.parametrize("temperature", [1e-30, 1e-38, 1e-40, 1e-45, 1e-300, 5e-324])
def test_a_tiny_temperature_is_the_greedy_limit(temperature):
    """As temperature -> 0 sampling tends to the argmax; below ~1e-38 logits / T used to overflow
    to inf, the softmax became NaN and garbage was sampled (issue 14)."""
    logits = random_logits(5)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no warning either (underflow to 0 is the point)
        scores = unchanged(sampling.apply_temperature, logits, temperature)
        probabilities = np.exp(scores - scores.max())
    assert not np.isnan(scores).any() and scores.max() == 0.0
    assert probabilities[int(np.argmax(logits))] == 1.0 and probabilities.sum() == 1.0
    seen = np.array([int(np.argmax(logits))])
    for seed in range(5):
        for top_k, top_p, penalty in ((0, 1.0, 1.0), (50, 0.95, 1.0), (0, 0.5, 1.5), (VOCAB, 1e-300, 2.0)):
            token = sampling.sample_token(
                logits,
                np.random.default_rng(seed),
                seen_ids=seen,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=penalty,
            )
            greedy = sampling.sample_token(
                logits,
                np.random.default_rng(seed),
                seen_ids=seen,
                temperature=0,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=penalty,
            )
            assert token == greedy


@pytest.mark.parametrize("k", [0, 1, 5, 50, 1000, VOCAB])
@pytest.mark.parametrize("seed", [0, 3])
def test_top_k_candidates_are_what_transformers_keeps(k, seed):
    logits = random_logits(seed)
    ours = unchanged(sampling.top_k_candidates, logits, k)
    # generate() adds no top-k warper for top_k=0 ("off"): the oracle keeps everything.
    theirs = oracle(TopKLogitsWarper(k), logits) if k > 0 else logits
    assert len(ours) == len(set(ours.tolist()))
    np.testing.assert_array_equal(np.sort(ours), np.flatnonzero(np.isfinite(theirs)))


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.9, 0.95])  # 1.0 never reaches nucleus_size: no top-p
@pytest.mark.parametrize("scale", [0.5, 3.0, 8.0])  # flat, moderate, peaked distributions
def test_nucleus_size_is_what_transformers_keeps(top_p, scale):
    """The sampler's sorted path keeps the nucleus_size likeliest tokens: as many as TopPLogitsWarper
    (which tokens, and the rejection path, are checked by drawing against transformers below)."""
    logits = random_logits(4, scale=scale)
    theirs = np.isfinite(oracle(TopPLogitsWarper(top_p), logits))
    probs = sampling.softmax(logits)
    order = np.argsort(-probs, kind="stable")
    kept = order[: sampling.nucleus_size(probs[order], top_p)]
    np.testing.assert_array_equal(np.sort(kept), np.flatnonzero(theirs))


@pytest.mark.parametrize(
    "probs, top_p, kept",
    [
        ([0.5, 0.3, 0.2], 0.5, 1),  # the first token alone reaches top_p
        ([0.5, 0.3, 0.2], 0.6, 2),  # the token crossing top_p is kept
        ([0.5, 0.3, 0.2], 0.8, 2),
        ([0.5, 0.3, 0.2], 0.81, 3),
        ([0.9, 0.1], 0.01, 1),  # always at least one
        ([0.25, 0.25, 0.25, 0.25], 1.0, 4),
    ],
)
def test_nucleus_size_table(probs, top_p, kept):
    assert sampling.nucleus_size(np.asarray(probs, dtype=np.float64), top_p) == kept


def test_log_softmax_at_matches_torch():
    logits = random_logits(5)
    expected = torch.log_softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
    for token in [0, 17, int(np.argmax(logits)), VOCAB - 1]:
        assert unchanged(sampling.log_softmax_at, logits, token) == pytest.approx(expected[token], abs=1e-5)


def transformers_distribution(logits, seen, temperature, top_k, top_p, penalty) -> np.ndarray:
    """Probabilities after generate()'s processor chain, in its order: penalty, temperature, top-k, top-p."""
    scores = torch.from_numpy(logits.copy())[None, :]
    ids = torch.as_tensor(seen, dtype=torch.long)[None, :]
    chain = [RepetitionPenaltyLogitsProcessor(penalty), TemperatureLogitsWarper(temperature)]
    chain += [TopKLogitsWarper(top_k)] if top_k > 0 else []
    chain += [TopPLogitsWarper(top_p)] if top_p < 1.0 else []
    for processor in chain:
        scores = processor(ids, scores)
    return torch.softmax(scores.double(), dim=-1)[0].numpy()


SAMPLER_CASES = [
    # vocab, scale, temperature, top_k, top_p, penalty
    (2000, 4.0, 1.0, 0, 0.9, 1.0),  # rejection path for top-p
    (2000, 4.0, 0.7, 0, 1.0, 1.3),  # plain sampling with penalty and temperature
    (2000, 4.0, 1.2, 20, 0.8, 1.0),  # top-k, then top-p on the k survivors (sorted path)
    (2000, 0.3, 1.0, 0, 0.05, 1.0),  # flat distribution, small top_p: rejection gives up, sort fallback
    (300, 2.0, 1.0, 0, 0.95, 1.2),  # small vocabulary: sorted path
]


@pytest.mark.parametrize("vocab, scale, temperature, top_k, top_p, penalty", SAMPLER_CASES)
def test_sampler_draws_from_the_transformers_distribution(vocab, scale, temperature, top_k, top_p, penalty):
    logits = random_logits(6, vocab=vocab, scale=scale)
    seen = np.unique(np.random.default_rng(7).integers(0, vocab, size=40))
    expected = transformers_distribution(logits, seen, temperature, top_k, top_p, penalty)
    rng = np.random.default_rng(8)
    draws = 20000
    before = logits.copy()
    samples = np.array(
        [
            sampling.sample_token(
                logits,
                rng,
                seen_ids=seen,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=penalty,
            )
            for _ in range(draws)
        ]
    )
    np.testing.assert_array_equal(logits, before)
    assert expected[samples].min() > 0, "a token outside the filtered support was drawn"
    observed = np.bincount(samples, minlength=vocab) / draws
    support = int(np.count_nonzero(expected))
    # Total variation between the empirical and the true distribution; its expectation for N draws
    # over `support` outcomes is about 0.4 * sqrt(support / N); allow 2.5x that.
    tolerance = 2.5 * 0.4 * np.sqrt(support / draws)
    assert 0.5 * np.abs(observed - expected).sum() < tolerance


@pytest.mark.parametrize("penalty", [1.0, 1.5])
def test_temperature_zero_is_greedy_argmax(penalty):
    logits = random_logits(9)
    seen = np.array([int(np.argmax(logits))])  # the penalty can move the argmax
    expected = int(np.argmax(oracle(RepetitionPenaltyLogitsProcessor(penalty), logits, seen)))
    rng = np.random.default_rng(0)
    token = sampling.sample_token(
        logits, rng, seen_ids=seen, temperature=0, top_k=0, top_p=0.9, repetition_penalty=penalty
    )
    assert token == expected


def test_same_generator_seed_gives_same_tokens_and_different_seeds_differ():
    logits = random_logits(10, scale=1.0)
    params = dict(seen_ids=np.array([], dtype=np.int64), temperature=1.0, top_k=0, top_p=0.95, repetition_penalty=1.0)

    def draw(seed):
        rng = np.random.default_rng(seed)
        return [sampling.sample_token(logits, rng, **params) for _ in range(20)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_tokens_with_zero_probability_are_never_drawn(top_p):
    """Logits far below the maximum underflow to weight 0, including the vocabulary's last block."""
    logits = random_logits(11, vocab=3000, scale=1.0)
    impossible = np.random.default_rng(12).random(3000) < 0.7
    impossible[-300:] = True
    logits[impossible] = -1e4
    rng = np.random.default_rng(13)
    params = dict(seen_ids=np.array([], dtype=np.int64), temperature=1.0, top_k=0, top_p=top_p, repetition_penalty=1.0)
    samples = [sampling.sample_token(logits, rng, **params) for _ in range(5000)]
    assert not impossible[samples].any()
