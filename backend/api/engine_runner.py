"""Run one generation for a view: the loaded engine, a slot, metrics, and cleanup on every exit.

Both API families (/generate and /v1/completions) come through here, so a slot can only be
taken and given back in one place. A stream is an object rather than a bare generator because
its cleanup must also run when the client leaves before the first byte, which is when a
generator's own `finally` never runs: the view registers close() with response.call_on_close.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app, request

from backend.api.errors import ApiError
from backend.engine import Engine, GenerationParams, GenerationResult, TokenEvent

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of events


def loaded_engine() -> Engine:
    """The app's engine, or 503 with the reason it failed to load."""
    engine = current_app.extensions.get("engine")
    if engine is None:
        reason = current_app.extensions.get("engine_error", "the model is not loaded")
        raise ApiError(503, f"the model is not available: {reason}", reason="model_unavailable")
    return engine


def client_gone_check() -> Callable[[], bool]:
    """A check, callable outside the request, of whether this request's client has hung up: its
    request has been read whole, so its socket reading as closed (not merely empty) means it left."""
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")

    def gone() -> bool:
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False  # nothing to read: still connected
        except OSError:
            return True  # reset or closed

    return gone


def take_slot():
    return current_app.extensions["admission"].acquire(client_gone_check())


def generate(text: str, params: GenerationParams) -> GenerationResult:
    """A whole generation, holding a slot while it runs."""
    engine = loaded_engine()
    slot = take_slot()
    try:
        result = engine.generate(text, params)
    finally:
        slot.release()
    current_app.extensions["metrics"].generation_finished(result)
    return result


class GenerationStream:
    """Iterate for TokenEvents then one GenerationResult; close() frees the slot, idempotently."""

    def __init__(self, text: str, params: GenerationParams):
        engine = loaded_engine()
        self._metrics = current_app.extensions["metrics"]
        self._slot = take_slot()  # 429 here, before any byte is sent
        self._events = engine.stream(text, params)
        self._tokens = 0  # tokens generated so far, counted even if the client leaves
        self._finished = False
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[TokenEvent | GenerationResult]:
        for event in self._events:
            if isinstance(event, GenerationResult):
                self._finished = True
                self._metrics.generation_finished(event)
            else:
                self._tokens += 1
            yield event

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._events.close()  # stops the engine's loop at once if it is still running
        finally:
            self._slot.release()
            if not self._finished:
                self._metrics.cancelled.inc()
                self._metrics.tokens.inc(self._tokens)  # generated (the CPU was spent) though not all delivered


def event_stream_response(
    stream: GenerationStream, render: Callable[[TokenEvent | GenerationResult], Iterable[str]], failure: str
) -> Response:
    """The text/event-stream response of both API families: `render` turns each engine event into
    SSE text. Once the 200 is sent an error can only be reported in-band, so an exception is logged
    and ends the stream with `failure`. The slot is freed however the stream ends."""
    logger = current_app.logger

    def body() -> Iterator[str]:
        try:
            for event in stream:
                yield from render(event)
        except Exception:
            logger.exception("generation failed mid-stream")
            yield failure
        finally:
            stream.close()

    response = Response(body(), mimetype="text/event-stream", headers=SSE_HEADERS)
    response.call_on_close(stream.close)  # also runs when the client left before the first event
    return response
