"""Continuous batching: every request of an Engine decodes in one running batch.

One decode step over B rows reads the weights once for all of them, so it costs little more
than a step over one row. A scheduler thread runs while any request is active: each loop it
prefills the requests that arrived (batch 1, as alone; after the cache of a recent prompt a
prompt extends, prefix_cache.py), joins their n rows to the running batch (the cache, below,
lays them out), samples every row, lets finished and cancelled rows leave, and runs one decode
step for all the rows left. Each request keeps its own RNG and samples its rows in completion
order (backend/engine/decode_loop.py's sample_step), so with a row-independent graph its tokens
are those of its unbatched run. The cache is slot_cache.SlotCache for a GroupQueryAttention
graph (rows written in place, never moved) and padded_cache.PaddedCache otherwise, whose rows
are padded by multiples of the unit padded_cache.measure_alignment found, so a request whose
prompt length is out of phase with the batch waits (before its prefill) for at most that many
steps minus one. Either way a request is computed bit for bit as alone, int8 rounding included.

A request's events reach its consumer through a thread-safe queue; BatchedStream.close()
cancels it and its rows leave before the next decode step.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

from backend.engine.decode_loop import PreparedRequest, generation_result, prepare_request, sample_step
from backend.engine.padded_cache import PaddedCache
from backend.engine.prefix_cache import PrefixCache, prefill
from backend.engine.schema import GenerationParams, GenerationResult, TokenEvent
from backend.engine.session import DecoderSession
from backend.engine.slot_cache import SlotCache
from backend.engine.tokenizer import TextTokenizer

_DONE = object()  # put after a request's GenerationResult (or exception): its stream ends


def batch_cache(session: DecoderSession, align: int = 1) -> SlotCache | PaddedCache:
    """An empty cache for a running batch on `session`: in place for a GroupQueryAttention graph,
    else left-padded with rows padded by multiples of `align`."""
    return SlotCache() if session.decodes_in_place else PaddedCache(align)


class BatchedRequest:
    """A request in (or about to join) the batch, and the queue its consumer reads."""

    def __init__(self, prepared: PreparedRequest, streams: bool):
        self.prepared = prepared
        # False: the consumer wants the result only, so its thread is not woken for every token
        # (a wake-up per token and row costs the scheduler the GIL hand-off too).
        self.streams = streams
        self.events: queue.SimpleQueue = queue.SimpleQueue()  # TokenEvent | GenerationResult | Exception | _DONE
        self.cancelled = threading.Event()

    def finish(self, last: GenerationResult | Exception | None) -> None:
        if last is not None:
            self.events.put(last)
        self.events.put(_DONE)


class BatchedStream:
    """Iterate for TokenEvents then one GenerationResult; close() cancels the request."""

    def __init__(self, request: BatchedRequest):
        self._request = request
        self._ended = False

    def __iter__(self) -> Iterator[TokenEvent | GenerationResult]:
        return self

    def __next__(self) -> TokenEvent | GenerationResult:
        if self._ended:
            raise StopIteration
        item = self._request.events.get()
        if item is _DONE:
            self._ended = True
            raise StopIteration
        if isinstance(item, Exception):
            self._ended = True
            raise item
        return item

    def close(self) -> None:
        self._ended = True
        self._request.cancelled.set()


class BatchScheduler:
    """Owns the running batch of one Engine and the thread that steps it."""

    def __init__(
        self,
        session: DecoderSession,
        tokenizer: TextTokenizer,
        *,
        n_positions: int,
        eos_id: int,
        align: int = 1,
        prefixes: PrefixCache | None = None,
    ):
        self.session = session
        self.prefixes = prefixes  # recent prompts' caches: a prompt extending one prefills only the rest
        self.tokenizer = tokenizer
        self.n_positions = n_positions
        self.eos_id = eos_id
        self._lock = threading.Lock()
        self._arrived: list[BatchedRequest] = []
        self._joining: list[BatchedRequest] = []  # taken from _arrived, being prefilled this loop
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._unfinished = 0  # requests submitted and not yet finished (arrived, prefilling or in the batch)
        # The running batch, touched only by the scheduler thread: rows in batch order, each
        # (request, completion index); their cache; the logits each row samples from next.
        self._rows: list[tuple[BatchedRequest, int]] = []
        self._align = align  # PaddedCache: rows padded by multiples of it (padded_cache.measure_alignment)
        self._cache = self._new_cache()
        self._logits = np.zeros((0, 0), dtype=np.float32)

    def _new_cache(self) -> SlotCache | PaddedCache:
        return batch_cache(self.session, self._align)

    def submit(self, text: str, params: GenerationParams, stream: bool = True) -> BatchedStream:
        """Queue a request to join the batch; its BatchedStream yields the TokenEvents (only with
        `stream`) and then the GenerationResult."""
        prepared = prepare_request(self.tokenizer, text, params, n_positions=self.n_positions, eos_id=self.eos_id)
        request = BatchedRequest(prepared, stream)
        with self._lock:
            self._arrived.append(request)
            self._unfinished += 1
            if self._thread is None:
                self._idle.clear()
                self._thread = threading.Thread(target=self._run, name="batch-scheduler", daemon=True)
                self._thread.start()
        return BatchedStream(request)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no request is running or waiting (tests and shutdown use it)."""
        return self._idle.wait(timeout)

    @property
    def rows(self) -> int:
        """Rows in the running batch (completions being decoded)."""
        return len(self._rows)

    @property
    def requests(self) -> int:
        """Requests submitted and not yet finished."""
        with self._lock:
            return self._unfinished

    def _finish(self, request: BatchedRequest, last: GenerationResult | Exception | None) -> None:
        with self._lock:
            self._unfinished -= 1
        request.finish(last)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    self._joining, self._arrived = self._arrived, []
                    if not self._joining and not self._rows:
                        self._thread = None
                        self._idle.set()
                        return
                waiting = [request for request in self._joining if not self._join(request)]
                if waiting:  # their prompt length is out of phase with the batch: try after this step
                    with self._lock:
                        self._arrived[:0] = waiting
                self._sample()
                self._leave()
                if self._rows:
                    self._decode()
        except Exception as error:  # the batch cannot go on: every waiting consumer hears why
            self._fail_all(error)

    def _join(self, request: BatchedRequest) -> bool:
        """Prefill a new request alone and append its n rows to the batch; False (nothing done)
        while its prompt cannot join with aligned padding (at most align - 1 decode steps)."""
        prepared = request.prepared
        if request.cancelled.is_set():
            self._finish(request, None)
            return True
        if not self._cache.can_join(len(prepared.input_ids)):
            return False
        try:
            logits, cache, prepared.reused_positions = prefill(self.session, prepared.input_ids, self.prefixes)
        except Exception as error:  # this request's prompt failed; the batch goes on
            self._finish(request, error)
            return True
        prepared.prompt_ms = (time.perf_counter() - prepared.start) * 1000
        n = prepared.params.n
        if prepared.max_new == 0:
            self._finish(request, generation_result(prepared))
            return True
        self._cache.join(cache.tile(n) if n > 1 else cache)
        logits = np.repeat(logits, n, axis=0) if n > 1 else logits
        self._logits = logits if not self._rows else np.concatenate([self._logits, logits], axis=0)
        self._rows.extend((request, index) for index in range(n))
        return True

    def _sample(self) -> None:
        """Each request samples its own rows (contiguous, in completion order) and hears its tokens."""
        start = 0
        while start < len(self._rows):
            request = self._rows[start][0]
            end = start
            while end < len(self._rows) and self._rows[end][0] is request:
                end += 1
            if not request.cancelled.is_set():  # a cancelled request's rows leave untouched
                tick = time.perf_counter()
                indices = [index for _, index in self._rows[start:end]]
                events = sample_step(request.prepared, indices, self._logits[start:end], eos_id=self.eos_id)
                for event in events if request.streams else ():
                    request.events.put(event)
                request.prepared.busy_ms += (time.perf_counter() - tick) * 1000
            start = end

    def _leave(self) -> None:
        """Finished rows and every row of a cancelled request leave; finished requests get their result."""
        kept = [
            row
            for row, (request, index) in enumerate(self._rows)
            if not request.cancelled.is_set() and request.prepared.states[index].finish_reason is None
        ]
        staying = {id(self._rows[row][0]) for row in kept}
        for request in self._batched_requests():
            if id(request) not in staying:
                self._finish(request, None if request.cancelled.is_set() else generation_result(request.prepared))
        if len(kept) < len(self._rows):
            self._rows = [self._rows[row] for row in kept]
            self._cache.keep(kept)
            self._logits = self._logits[kept]

    def _batched_requests(self) -> list[BatchedRequest]:
        """Each request with rows in the batch, once, in row order."""
        return list({id(request): request for request, _ in self._rows}.values())

    def _decode(self) -> None:
        tick = time.perf_counter()
        tokens = np.array([r.prepared.states[i].tokens[-1].token_id for r, i in self._rows], dtype=np.int64)
        self._logits = self._cache.decode(self.session, tokens)  # [rows, vocab]
        elapsed = (time.perf_counter() - tick) * 1000
        for request in self._batched_requests():
            request.prepared.busy_ms += elapsed
            request.prepared.decode_steps += 1

    def _fail_all(self, error: Exception) -> None:
        with self._lock:
            waiting = self._arrived + self._joining + [r for r, _ in self._rows]
            self._arrived, self._joining, self._rows = [], [], []
            self._cache, self._thread = self._new_cache(), None
            self._unfinished = 0
            self._idle.set()
        for request in {id(r): r for r in waiting}.values():
            request.finish(error)
