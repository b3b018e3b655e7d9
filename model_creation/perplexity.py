"""The one definition of perplexity used by quantize and evaluate, for any model.

Each document is scored alone, framed as in training: `[50256] + tokens(text) + [50256]`,
truncated to the model's context. The cross-entropy of every token after the first is summed
over the whole set of documents and divided by the number of those tokens; PPL = exp(mean).
Models enter as a function `ids -> logits [seq, vocab]`, so the PyTorch model, the fp32 ONNX
graph and the int8 graph are measured by exactly the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from model_creation.tokenizer import END_OF_TEXT_ID

LogitsFn = Callable[[list[int]], np.ndarray]


@dataclass(frozen=True)
class Perplexity:
    perplexity: float
    mean_nll: float  # nats per predicted token
    tokens: int  # predicted tokens (every token after the first of each document)
    documents: int


def document_ids(tokenizer, text: str, max_tokens: int) -> list[int]:
    """`[<|endoftext|>] + tokens(text) + [<|endoftext|>]`, cut to `max_tokens`.

    `tokenizer` is a `tokenizers.Tokenizer` or a transformers fast tokenizer.
    """
    encoded = tokenizer.encode(text, add_special_tokens=False)
    ids = encoded.ids if hasattr(encoded, "ids") else list(encoded)
    return ([END_OF_TEXT_ID] + ids + [END_OF_TEXT_ID])[:max_tokens]


def sequence_nll(logits: np.ndarray, ids: list[int]) -> float:
    """Summed cross-entropy (nats) of ids[1:] given logits [seq, vocab] predicted at ids[:-1]."""
    predicting = logits[:-1].astype(np.float64)  # [seq-1, vocab]
    top = predicting.max(axis=-1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(predicting - top).sum(axis=-1))  # [seq-1]
    targets = np.asarray(ids[1:])
    picked = predicting[np.arange(len(targets)), targets]  # [seq-1]
    return float((log_norm - picked).sum())


def perplexity(logits_fn: LogitsFn, documents: Iterable[list[int]]) -> Perplexity:
    total_nll, total_tokens, count = 0.0, 0, 0
    for ids in documents:
        if len(ids) < 2:
            continue
        total_nll += sequence_nll(logits_fn(ids), ids)
        total_tokens += len(ids) - 1
        count += 1
    if total_tokens == 0:
        raise ValueError("perplexity needs at least one document of two or more tokens")
    mean = total_nll / total_tokens
    return Perplexity(perplexity=math.exp(mean), mean_nll=mean, tokens=total_tokens, documents=count)


def torch_logits_fn(model) -> LogitsFn:
    """Adapt a PyTorch causal LM (GPT2LMHeadModel) to `ids -> logits [seq, vocab]`."""
    import torch

    device = next(model.parameters()).device

    def logits(ids: list[int]) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.tensor([ids], device=device)).logits[0]  # [seq, vocab]
        return out.float().cpu().numpy()

    return logits
