"""The one definition of perplexity used by quantize and evaluate, for any model and tokenizer.

Each document is scored alone, framed as in training: `<eos> + tokens(text) + <eos>`. The
cross-entropy of every token after the first is summed over the whole set of documents. A
document longer than the model's context is scored with a sliding window (stride half the
context), so every token is predicted from at least half a context of text before it and none
is cut. Two figures come out of the same sum:
- per model token: exp(sum / number of predicted tokens), the usual perplexity;
- per GPT-2 token: exp(sum / (GPT-2 tokens of each text + 1)), which compares models whatever
  their tokenizer (a tokenizer with longer tokens predicts fewer, harder ones). For a model
  with GPT-2's tokenizer the two are the same number.
Models enter as a function `ids -> logits [seq, vocab]`, so the PyTorch model, the fp32 ONNX
graph and the int8 graph are measured by exactly the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from model_creation.tokenizer import end_of_text_id

LogitsFn = Callable[[list[int]], np.ndarray]


@dataclass(frozen=True)
class Perplexity:
    perplexity: float  # per model token
    mean_nll: float  # nats per predicted model token
    tokens: int  # predicted tokens (every token after the first of each document)
    documents: int
    perplexity_per_gpt2_token: float | None = None  # when GPT-2 token counts were given
    gpt2_tokens: int | None = None


def document_ids(tokenizer, text: str, max_tokens: int | None = None) -> list[int]:
    """`[<eos>] + tokens(text) + [<eos>]`, cut to `max_tokens` if given.

    `tokenizer` is a `tokenizers.Tokenizer` or a transformers fast tokenizer.
    """
    encoded = tokenizer.encode(text, add_special_tokens=False)
    ids = encoded.ids if hasattr(encoded, "ids") else list(encoded)
    eos = end_of_text_id(tokenizer)
    framed = [eos] + ids + [eos]
    return framed if max_tokens is None else framed[:max_tokens]


def gpt2_token_count(gpt2_tokenizer, text: str) -> int:
    """The denominator of the per-GPT-2-token figure for one document: its GPT-2 tokens + 1."""
    return len(gpt2_tokenizer.encode(text, add_special_tokens=False)) + 1


def sequence_nll(logits: np.ndarray, ids: list[int]) -> float:
    """Summed cross-entropy (nats) of ids[1:] given logits [seq, vocab] predicted at ids[:-1]."""
    predicting = logits[:-1].astype(np.float64)  # [seq-1, vocab]
    top = predicting.max(axis=-1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(predicting - top).sum(axis=-1))  # [seq-1]
    targets = np.asarray(ids[1:])
    picked = predicting[np.arange(len(targets)), targets]  # [seq-1]
    return float((log_norm - picked).sum())


def document_nll(logits_fn: LogitsFn, ids: list[int], context: int | None = None) -> float:
    """Summed cross-entropy of ids[1:]; windows of `context` tokens, stride context // 2, when longer."""
    if context is None or len(ids) <= context:
        return sequence_nll(logits_fn(ids), ids)
    stride, start, scored, total = context // 2, 0, 1, 0.0  # scored: first target not yet scored
    while scored < len(ids):
        window = ids[start : start + context]
        logits = logits_fn(window)  # [len(window), vocab]
        first = scored - start  # this window's first new target, as an index into the window
        total += sequence_nll(logits[first - 1 :], window[first - 1 :])
        scored, start = start + len(window), start + stride
    return total


def perplexity(
    logits_fn: LogitsFn,
    documents: Iterable[list[int]],
    context: int | None = None,
    gpt2_tokens: Iterable[int] | None = None,
) -> Perplexity:
    """Perplexity of `documents` (framed ids); `gpt2_tokens` pairs each with its gpt2_token_count."""
    counts = iter(gpt2_tokens) if gpt2_tokens is not None else None
    total_nll, total_tokens, total_gpt2, count = 0.0, 0, 0, 0
    for ids in documents:
        gpt2 = next(counts) if counts is not None else 0
        if len(ids) < 2:
            continue
        total_nll += document_nll(logits_fn, ids, context)
        total_tokens += len(ids) - 1
        total_gpt2 += gpt2
        count += 1
    if total_tokens == 0:
        raise ValueError("perplexity needs at least one document of two or more tokens")
    mean = total_nll / total_tokens
    per_gpt2 = math.exp(total_nll / total_gpt2) if counts is not None and total_gpt2 else None
    return Perplexity(
        perplexity=math.exp(mean),
        mean_nll=mean,
        tokens=total_tokens,
        documents=count,
        perplexity_per_gpt2_token=per_gpt2,
        gpt2_tokens=total_gpt2 if counts is not None else None,
    )


def torch_logits_fn(model) -> LogitsFn:
    """Adapt a PyTorch causal LM (GPT2LMHeadModel) to `ids -> logits [seq, vocab]`."""
    import torch

    device = next(model.parameters()).device

    def logits(ids: list[int]) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.tensor([ids], device=device)).logits[0]  # [seq, vocab]
        return out.float().cpu().numpy()

    return logits
