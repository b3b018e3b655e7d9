"""Perplexity of whole documents: the sliding window over documents longer than the context, and
the per-GPT-2-token figure, checked against transformers' own logits position by position."""

from __future__ import annotations

import math

import pytest
import torch

from model_creation.perplexity import document_ids, document_nll, gpt2_token_count, perplexity, torch_logits_fn
from model_creation.tokenizer import load_gpt2_tokenizer
from tests.tiny_model import build_tiny_torch_model

LONG = (
    "Graph neural networks\n" + "We study message passing on large graphs with attention over neighbours, "
    "and we evaluate it on citation networks, molecules and social graphs. " * 6
)
TEXTS = ["A title\nWe propose a method to learn sparse representations.", LONG]


@pytest.fixture(scope="module")
def model():
    return build_tiny_torch_model(seed=2)


def oracle_nll(model, ids: list[int], context: int) -> float:
    """Each target's loss from transformers, given exactly the text the documented window gives it:
    the first window predicts targets 1..context-1 from the start; after that, window k starts
    at k * stride (stride = context // 2) and predicts the targets its predecessor did not reach."""
    stride, total = context // 2, 0.0
    for t in range(1, len(ids)):
        start = 0 if t < context else ((t - context) // stride + 1) * stride
        with torch.no_grad():
            logits = model(torch.tensor([ids[start:t]])).logits[0, -1]  # [vocab]
        total -= torch.log_softmax(logits.double(), -1)[ids[t]].item()
    return total


@pytest.mark.parametrize("context", [16, 33, 64])
def test_long_document_is_scored_with_a_sliding_window(model, context):
    ids = document_ids(load_gpt2_tokenizer(), LONG)
    assert len(ids) > 2 * context  # three windows or more
    got = document_nll(torch_logits_fn(model), ids, context)
    assert got == pytest.approx(oracle_nll(model, ids, context), rel=1e-5)


def test_a_document_that_fits_is_one_window(model):
    ids = document_ids(load_gpt2_tokenizer(), TEXTS[0])
    x = torch.tensor([ids])
    with torch.no_grad():
        expected = model(x, labels=x).loss.item() * (len(ids) - 1)
    assert document_nll(torch_logits_fn(model), ids, 128) == pytest.approx(expected, rel=1e-5)
    assert document_nll(torch_logits_fn(model), ids, None) == pytest.approx(expected, rel=1e-5)


def test_nothing_is_cut_and_every_token_counts_once(model):
    tokenizer = load_gpt2_tokenizer()
    docs = [document_ids(tokenizer, t) for t in TEXTS]
    result = perplexity(torch_logits_fn(model), docs, context=32)
    assert result.tokens == sum(len(d) - 1 for d in docs) and result.documents == 2
    total = sum(oracle_nll(model, d, 32) for d in docs)
    assert result.mean_nll == pytest.approx(total / result.tokens, rel=1e-5)


def test_per_gpt2_token_equals_the_ordinary_figure_for_a_gpt2_model(model):
    tokenizer = load_gpt2_tokenizer()
    docs = [document_ids(tokenizer, t) for t in TEXTS]
    counts = [gpt2_token_count(tokenizer, t) for t in TEXTS]
    result = perplexity(torch_logits_fn(model), docs, context=64, gpt2_tokens=counts)
    assert result.gpt2_tokens == result.tokens
    assert result.perplexity_per_gpt2_token == pytest.approx(result.perplexity, rel=1e-12)


def test_per_gpt2_token_divides_the_same_loss_by_gpt2_counts(model):
    docs = [document_ids(load_gpt2_tokenizer(), t) for t in TEXTS]
    halved = [len(d) // 2 for d in docs]  # as if another tokenizer had made twice as many tokens
    result = perplexity(torch_logits_fn(model), docs, context=64, gpt2_tokens=halved)
    assert result.perplexity_per_gpt2_token == pytest.approx(math.exp(result.mean_nll * result.tokens / sum(halved)))
