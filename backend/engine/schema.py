"""The engine's public data types: what a caller asks for and what it gets back.

These are the contract between the engine and the HTTP layer (backend/api). Parameters arrive
already validated at the edge; the engine trusts their bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.generation_contract import NUMBERS


class ModelLoadError(RuntimeError):
    """The model directory is missing, incomplete or unreadable; the message says which file and why."""


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = NUMBERS[
        "max_new_tokens"
    ].default  # tokens to generate at most (fewer if the context window is full)
    temperature: float = NUMBERS["temperature"].default  # 0 = greedy argmax
    top_p: float = NUMBERS["top_p"].default  # nucleus mass; 1.0 = off
    top_k: int = NUMBERS["top_k"].default  # 0 = off
    repetition_penalty: float = NUMBERS["repetition_penalty"].default  # transformers' semantics; 1.0 = off
    seed: int | None = None  # None = draw one (reported back in GenerationResult.seed)
    stop: tuple[str, ...] = ()  # up to 4 strings; the completion ends before the first one found
    n: int = NUMBERS["n"].default  # alternative completions of the same prompt, decoded as one batch
    logprobs: bool = False  # the HTTP layer shows per-token logprobs only when asked; the engine always fills them


@dataclass
class TokenEvent:
    """One sampled token. `logprob` is log-softmax of the model's RAW logits at that step, before
    repetition penalty, temperature, top-k and top-p: the model's own confidence, the same for
    greedy and sampled decoding (as OpenAI's API reports it), not the probability under the
    filtered distribution the token was drawn from."""

    index: int  # which of the n completions this token belongs to
    text: str  # text released by this token; "" while a UTF-8 character or a possible stop string is pending
    token_id: int
    logprob: float  # log-softmax of the model's raw logits at this step (before penalty/temperature/top-k/top-p)


@dataclass
class Completion:
    text: str  # the new text only (never the prompt), without the stop string
    finish_reason: str  # "eos" | "stop" | "length"
    tokens: list[TokenEvent] = field(default_factory=list)  # every sampled token, the final EOS/stop token included


@dataclass
class GenerationResult:
    completions: list[Completion]
    prompt_tokens: int  # the user's tokens that were fed to the model (after truncation; BOS not counted)
    completion_tokens: int  # sampled tokens summed over the n completions
    truncated: bool  # True when the prompt's oldest tokens were dropped to fit the context window
    seed: int  # the seed actually used (drawn when the request had none)
    timings: dict[str, float]  # {"prompt_ms", "per_token_ms", "total_ms"}
    # Prompt tokens whose KV cache came from a recent prompt (prefix_cache.py) instead of a prefill.
    cached_prompt_tokens: int = 0
