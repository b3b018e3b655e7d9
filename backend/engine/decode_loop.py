"""The generation loop: context fitting, prefill once, batched KV-cache decode, stops, timings.

Layering (as in text-generation-inference): the prompt is tokenised and fitted into the context
window, prefilled once with batch 1, then the cache is tiled to the n completions and decoded as
one batch; each row samples its own token, detokenises it incrementally and checks its own stop
conditions. Finished rows leave the batch. Events are yielded as soon as each token is decoded,
so closing the generator stops the loop before the next session run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from backend.engine.detokenize import IncrementalDecoder
from backend.engine.prefix_cache import PrefixCache, prefill
from backend.engine.sampling import log_softmax_at, sample_token
from backend.engine.schema import Completion, GenerationParams, GenerationResult, TokenEvent
from backend.engine.session import DecoderSession
from backend.engine.tokenizer import TextTokenizer


def fit_context(prompt_ids: list[int], max_new_tokens: int, n_positions: int) -> tuple[list[int], int, bool]:
    """(prompt ids kept, new tokens allowed, truncated): BOS + prompt + new tokens fit n_positions.

    The prompt loses its oldest tokens only to leave room for min(max_new_tokens, half the
    window) new tokens, so a long request can never push the prompt out (it once kept 1 of 5
    prompt tokens to make room for 512 new ones: issue 14). New tokens are then allowed up to
    the end of the window: a completion asking for more than that ends with finish_reason
    "length" when the context is full."""
    room = n_positions - 1  # BOS takes one position
    reserve = min(max_new_tokens, room - room // 2)
    kept = prompt_ids[len(prompt_ids) - min(len(prompt_ids), room - reserve) :]
    return kept, min(max_new_tokens, room - len(kept)), len(kept) < len(prompt_ids)


class StopStrings:
    """Finds stop strings in text that arrives piece by piece, holding back a tail that could
    still become one (a stop string may span tokens)."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self.pending = ""  # decoded text not yet released

    def push(self, piece: str, final: bool) -> tuple[str, bool]:
        """(text safe to release now, whether a stop string was found)."""
        self.pending += piece
        found = [p for p in (self.pending.find(s) for s in self.stops) if p >= 0]
        if found:
            released, self.pending = self.pending[: min(found)], ""
            return released, True
        hold = 0 if final else self._possible_stop_start()
        released, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold :]
        return released, False

    def _possible_stop_start(self) -> int:
        """Length of the longest tail of `pending` that is a proper prefix of some stop string."""
        longest = min(len(self.pending), max((len(s) - 1 for s in self.stops), default=0))
        for length in range(longest, 0, -1):
            tail = self.pending[-length:]
            if any(s.startswith(tail) for s in self.stops):
                return length
        return 0


class CompletionState:
    """One of the n completions: its decoder, stop matcher, tokens and finish reason."""

    def __init__(self, index: int, decoder: IncrementalDecoder, stops: tuple[str, ...], seen: np.ndarray):
        self.index = index
        self.decoder = decoder
        self.stops = StopStrings(stops)
        self.seen = seen  # unique ids in the sequence so far (repetition penalty)
        self.tokens: list[TokenEvent] = []
        self.parts: list[str] = []
        self.finish_reason: str | None = None

    def push(self, token_id: int, logprob: float, *, eos_id: int, last: bool) -> TokenEvent:
        if token_id == eos_id:
            text, stopped = self.stops.push(self.decoder.flush(), final=True)
            self.finish_reason = "stop" if stopped else "eos"
        else:
            piece = self.decoder.add(token_id) + (self.decoder.flush() if last else "")
            text, stopped = self.stops.push(piece, final=last)
            self.finish_reason = "stop" if stopped else ("length" if last else None)
            if token_id not in self.seen:
                self.seen = np.append(self.seen, token_id)
        event = TokenEvent(index=self.index, text=text, token_id=token_id, logprob=logprob)
        self.tokens.append(event)
        self.parts.append(text)
        return event

    def completion(self) -> Completion:
        return Completion(text="".join(self.parts), finish_reason=self.finish_reason or "length", tokens=self.tokens)


@dataclass
class PreparedRequest:
    """A request ready for prefill: its seed and RNG, the fitted ids and one state per completion."""

    params: GenerationParams
    seed: int
    rng: np.random.Generator
    input_ids: list[int]  # BOS + the prompt ids kept
    prompt_tokens: int
    max_new: int
    truncated: bool
    states: list[CompletionState]
    start: float  # perf_counter when the request arrived
    prompt_ms: float = 0.0
    reused_positions: int = 0  # leading positions (BOS included) whose cache a recent prompt supplied
    busy_ms: float = 0.0  # time spent on this request's steps, not in its consumer between events
    decode_steps: int = 0


def prepare_request(
    tokenizer: TextTokenizer, text: str, params: GenerationParams, *, n_positions: int, eos_id: int
) -> PreparedRequest:
    """Seed, tokenize and fit the context: everything a request needs before its prefill."""
    start = time.perf_counter()
    seed = params.seed if params.seed is not None else int(np.random.default_rng().integers(0, 2**31 - 1))
    prompt_ids, max_new, truncated = fit_context(tokenizer.encode(text), params.max_new_tokens, n_positions)
    input_ids = [eos_id, *prompt_ids]  # <|endoftext|> starts every document in training
    seen = np.unique(np.asarray(input_ids, dtype=np.int64))
    states = [CompletionState(i, tokenizer.decoder(), params.stop, seen) for i in range(params.n)]
    return PreparedRequest(
        params, seed, np.random.default_rng(seed), input_ids, len(prompt_ids), max_new, truncated, states, start
    )


def sample_step(request: PreparedRequest, indices: list[int], logits: np.ndarray, *, eos_id: int) -> list[TokenEvent]:
    """Sample the next token of completions `indices` (ascending, so the RNG is drawn in the same
    order however the rows are batched) from their logits rows [len(indices), vocab]."""
    params = request.params
    last = len(request.states[indices[0]].tokens) == request.max_new - 1 if indices else False
    events = []
    for row, index in enumerate(indices):
        state = request.states[index]
        token = sample_token(
            logits[row],
            request.rng,
            seen_ids=state.seen,
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            repetition_penalty=params.repetition_penalty,
        )
        events.append(state.push(token, log_softmax_at(logits[row], token), eos_id=eos_id, last=last))
    return events


def generation_result(request: PreparedRequest) -> GenerationResult:
    completions = [state.completion() for state in request.states]
    return GenerationResult(
        completions=completions,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=sum(len(c.tokens) for c in completions),
        truncated=request.truncated,
        seed=request.seed,
        cached_prompt_tokens=max(0, request.reused_positions - 1),  # BOS is not a prompt token
        timings={
            "prompt_ms": request.prompt_ms,
            "per_token_ms": request.busy_ms / request.decode_steps if request.decode_steps else 0.0,
            "total_ms": (time.perf_counter() - request.start) * 1000,
        },
    )


def generate_events(
    session: DecoderSession,
    tokenizer: TextTokenizer,
    text: str,
    params: GenerationParams,
    *,
    n_positions: int,
    eos_id: int,
    prefixes: PrefixCache | None = None,
) -> Iterator[TokenEvent | GenerationResult]:
    """TokenEvents as tokens are decoded, then one GenerationResult, all in the caller's thread
    (one request at a time; backend/engine/batch.py runs several in one batch)."""
    request = prepare_request(tokenizer, text, params, n_positions=n_positions, eos_id=eos_id)
    logits, cache, request.reused_positions = prefill(session, request.input_ids, prefixes)  # logits [1, vocab]
    request.prompt_ms = (time.perf_counter() - request.start) * 1000
    if params.n > 1:
        cache = cache.tile(params.n)  # [n, heads, past, head_dim]
        logits = np.repeat(logits, params.n, axis=0)  # [n, vocab]
    active = list(range(params.n))  # completion index of each batch row
    for _ in range(request.max_new):
        tick = time.perf_counter()
        events = sample_step(request, active, logits, eos_id=eos_id)
        request.busy_ms += (time.perf_counter() - tick) * 1000
        yield from events
        running = [row for row, index in enumerate(active) if request.states[index].finish_reason is None]
        if not running:
            break
        tick = time.perf_counter()
        if len(running) < len(active):
            cache = cache.select(running)
            active = [active[row] for row in running]
        last_tokens = np.array([request.states[index].tokens[-1].token_id for index in active], dtype=np.int64)
        logits, cache = session.decode(last_tokens, cache)  # logits [len(active), vocab]
        request.decode_steps += 1
        request.busy_ms += (time.perf_counter() - tick) * 1000
    yield generation_result(request)
